"""`stream-harness load` end to end: the real CLI, a real Locust run of a few seconds, against
a loopback fixture server (tests/load_fixtures.py).  Each run is bounded by --run-time and by
the subprocess timeout."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from http_fixtures import closed_port
from load_fixtures import LagProbe, LoadServer, running

RUN_TIMEOUT = 90
EXE = [sys.executable, "-m", "harness._cli.main"]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, LoadServer]]:
    with running() as served:
        yield served


def _load(tmp: Path, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    proc = subprocess.run(
        [*EXE, "load", *args, "--format", "json", "--report-dir", str(tmp / "report")],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=tmp,  # Locust reads locust.conf / pyproject.toml from the working directory
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdin=subprocess.DEVNULL,
    )
    verdict = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, verdict, proc.stderr


def _log(tmp: Path) -> str:
    return (tmp / "report" / "locust.log").read_text(encoding="utf-8")


def test_load_when_short_run_then_verdict_is_sane_and_a_missed_threshold_exits_1(
    server: tuple[str, LoadServer], tmp_path: Path
) -> None:
    base, _ = server
    with LagProbe() as lag:
        code, v, err = _load(
            tmp_path,
            f"{base}/stream?n=10&gap_ms=20&sent=1",
            "--users", "8", "--run-time", "3s",
            "--threshold", "ttfb_ms.p95<1000",
            "--threshold", "inter_event_ms.p99<1",  # events are 20 ms apart: missed
        )  # fmt: skip
    assert code == 1, err
    assert v is not None
    # The margins below widen by how late the server's thread and the load process woke up
    # in this very run: tight on an idle machine, honest on a busy one.
    slack = lag.slack_ms(v)
    assert {"ok", "requests", "failures", "metrics", "thresholds", "violations"} <= set(v)
    assert not v["ok"] and v["failures"] == 0 and v["violations"] == []
    assert 8 <= v["requests"] <= 8 * 3 / 0.2 + 8
    # --run-time to within 100 ms (3 s measured about 2.2 s when Locust's -t ended the run).
    assert abs(v["run"]["duration_s"] - 3.0) < 0.1 + slack / 1000.0, (v["run"], slack)
    assert v["run"]["scenario"] == "Steady"
    m = v["metrics"]
    for name in ("ttfb_ms", "first_event_ms", "inter_event_ms", "stream_ms", "events_per_s"):
        assert set(m[name]) >= {"p50", "p90", "p95", "p99", "max"}, name
        assert m[name]["count"] > 0 and m[name]["p50"] <= m[name]["p99"] <= m[name]["max"]
    assert "reconnect_ms" in m and m["reconnect_ms"]["count"] == 0
    assert 0 < m["ttfb_ms"]["p50"] < 50 + slack
    assert m["ttfb_ms"]["p50"] <= m["first_event_ms"]["p50"] < m["first_content_ms"]["p50"]
    # 20 ms, sub-millisecond resolution (a late wake-up makes one gap long, the next short)
    assert 15 - slack < m["inter_event_ms"]["p50"] < 30 + slack, slack
    assert 200 - slack < m["stream_ms"]["p50"] < 400 + slack, slack  # 11 gaps of 20 ms
    assert 30 * 400 / (400 + slack) < m["events_per_s"]["p50"] < 60 * 200 / max(200 - slack, 50)
    assert m["server_delay_ms"]["p50"] < 20 + slack
    assert v["thresholds"] == [
        {"expr": "ttfb_ms.p95<1000", "ok": True, "value": m["ttfb_ms"]["p95"]},
        {"expr": "inter_event_ms.p99<1", "ok": False, "value": m["inter_event_ms"]["p99"]},
    ]
    report = tmp_path / "report"
    assert {"verdict.json", "locust.html", "locust_stats.csv"} <= {p.name for p in report.iterdir()}


def test_load_when_server_ignores_last_event_id_then_reconnect_scenario_fails_it(
    server: tuple[str, LoadServer], tmp_path: Path
) -> None:
    base, srv = server
    resumed = srv.stats.to_json()["resumed"]
    code, v, err = _load(
        tmp_path, f"{base}/stream?n=6&gap_ms=10&resume=ignore",
        "--users", "4", "--run-time", "2s", "--reconnect-after", "3",
    )  # fmt: skip
    assert code == 1, err
    assert v is not None and v["failures"] == v["requests"] > 0
    rules = {x["rule"]: x for x in v["violations"]}
    assert set(rules) == {"resume.ignored"}
    assert rules["resume.ignored"]["streams"] == v["requests"]
    assert v["metrics"]["reconnect_ms"]["count"] == v["requests"]
    assert srv.stats.to_json()["resumed"] > resumed  # it really reconnected with Last-Event-ID
    assert v["run"]["scenario"] == "Reconnect"  # (it said "Steady")


def test_load_when_two_processes_then_master_counts_equal_the_workers_sums(
    server: tuple[str, LoadServer], tmp_path: Path
) -> None:
    base, _ = server
    code, v, err = _load(
        tmp_path, f"{base}/stream?n=5&gap_ms=10",
        "--users", "6", "--run-time", "4s", "--processes", "2",
        "--threshold", "failure_rate<0.01",
    )  # fmt: skip
    assert code == 0, err + _log(tmp_path)
    assert v is not None and v["run"]["workers"] == 2
    sent = [
        json.loads(s)
        for s in re.findall(r"stream-harness worker \d+ sent (\{.*\})", _log(tmp_path))
    ]
    assert len(sent) == 2, _log(tmp_path)
    assert all(s["streams"] > 0 for s in sent)  # both workers streamed
    assert v["requests"] == sum(s["streams"] for s in sent)
    assert v["run"]["events"] == sum(s["events"] for s in sent)
    assert v["metrics"]["stream_ms"]["count"] == v["requests"]
    with open(tmp_path / "report" / "locust_stats.csv", encoding="utf-8") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    assert int(rows["stream"]["Request Count"]) == v["requests"]  # Locust's own aggregation
    # The report's data is merged from both workers too: every stream, both workers' seconds.
    data = json.loads((tmp_path / "report" / "load-data.json").read_text(encoding="utf-8"))
    assert data["streams"] == v["requests"]
    assert len(data["passing"]) == min(30, v["requests"]) and data["failing"] == []
    assert 3 < max(n for _, n in data["series"]["active"]) <= 6  # summed, never counted twice
    assert sum(n for _, n in data["series"]["events"]) >= v["run"]["events"]
    suite = ET.parse(tmp_path / "report" / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"  # a green run: green cases
    assert json.loads((tmp_path / "report" / "summary.json").read_text()) == v


def test_load_when_open_loop_then_arrivals_keep_the_schedule(
    server: tuple[str, LoadServer], tmp_path: Path
) -> None:
    base, _ = server
    with LagProbe() as lag:
        code, v, err = _load(
            tmp_path, f"{base}/stream?n=3&gap_ms=200",  # streams last ~1 s: 20/s overlap
            "--arrival-rate", "20", "--run-time", "3s",
        )  # fmt: skip
    assert code == 0, err
    assert v is not None
    slack = lag.slack_ms(v)
    arrivals = v["run"]["arrivals"]
    assert arrivals["dropped"] == 0 and arrivals["started"] == arrivals["planned"]
    # The schedule runs from the test's start for --run-time: every arrival is planned (it
    # planned 41 of 50 before), and the window is --run-time to the millisecond.
    assert arrivals["planned"] == 20 * 3, arrivals
    assert abs(v["run"]["duration_s"] - 3.0) < 0.1 + slack / 1000.0, (v["run"], slack)
    assert v["run"]["scenario"] == "Arrivals"
    assert v["run"]["arrival_rate"] == 20
    q = v["metrics"]["queue_ms"]
    assert q["count"] > 0 and q["p50"] < 10 + slack
    # Latency counts from the intended start, so it is never less than the queueing delay.
    assert v["metrics"]["ttfb_ms"]["min"] >= q["min"]


def test_load_when_clients_abandon_then_target_health_after_the_storm_is_reported(
    server: tuple[str, LoadServer], tmp_path: Path
) -> None:
    base, srv = server
    aborted = srv.stats.aborted
    code, v, err = _load(
        tmp_path, f"{base}/stream?n=20&gap_ms=20",
        "--users", "6", "--run-time", "3s", "--abandon-after", "3", "--storm-seconds", "1.5",
    )  # fmt: skip
    assert code == 0, err
    assert v is not None and v["run"]["abandoned"] > 0
    assert srv.stats.aborted > aborted
    storm = v["run"]["after_storm"]
    assert storm["streams"] > 0 and storm["failures"] == 0
    assert v["metrics"]["after_storm_error_rate"] == 0.0


def test_load_when_no_report_then_verdict_printed_and_no_file_left(
    server: tuple[str, LoadServer], tmp_path: Path
) -> None:
    base, _ = server
    proc = subprocess.run(
        [*EXE, "load", f"{base}/stream?n=3", "--users", "2", "--run-time", "1s", "--no-report",
         "--format", "json"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"}, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    v = json.loads(proc.stdout)
    assert v["requests"] > 0 and v["run"]["report_dir"] is None
    assert list(tmp_path.iterdir()) == [] and "report:" not in proc.stderr


def test_load_when_target_unreachable_then_exit_3(tmp_path: Path) -> None:
    code, v, err = _load(tmp_path, f"http://127.0.0.1:{closed_port()}/x", "--run-time", "1")
    assert code == 3 and v is None and "cannot reach" in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--threshold", "tffb_ms<5"], "did you mean 'ttfb_ms'"),
        (["--run-time", "soon"], "--run-time"),
        (["--contract", "nope"], "unknown contract"),
        (["--reconnect-after", "2", "--abandon-after", "2"], "not both"),
        (["--cacert", "c.pem", "--insecure"], "not both"),
        (["--proxy", "socks5://p:1"], "proxy URL"),
    ],
)
def test_load_when_usage_error_then_exit_2_in_one_line(
    tmp_path: Path, args: list[str], says: str
) -> None:
    code, v, err = _load(tmp_path, "http://127.0.0.1:1/x", *args)
    assert code == 2 and v is None and says in err and len(err.strip().splitlines()) == 1


def test_load_when_no_stream_finishes_within_the_run_then_it_is_not_a_pass(
    server: tuple[str, LoadServer], tmp_path: Path
) -> None:
    """A trickling stream (an event a second, for 100 s) and a 2 s run: every stream is still
    open at the end.  That proved nothing about the target: exit 1, the open streams counted."""
    base, _ = server
    code, v, err = _load(
        tmp_path, f"{base}/stream?n=100&gap_ms=1000", "--users", "2", "--run-time", "2s"
    )
    assert code == 1, err
    assert v is not None and v["ok"] is False and v["requests"] == 0
    assert v["run"]["open_at_end"] == 2
    assert any("no stream finished within the run" in w for w in v["warnings"]), v["warnings"]
