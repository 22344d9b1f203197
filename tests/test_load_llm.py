"""LLM metrics under load, against a stub that knows its truth (tests/llm_stub.py): in-band
errors counted and tallied by code, honest first and second token, output tokens from the
usage chunk (or counted, and said so), TPOT, goodput against --slo, varied bodies.  Real CLI,
real Locust runs of 2-3 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_stub import LLMStub, running
from load_fixtures import LagProbe

from harness._core.errors import UsageError
from harness._load._verdict import parse_slo

EXE = [sys.executable, "-m", "harness._cli.main"]
CHAT = "/v1/chat/completions"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[str, LLMStub]]:
    with running() as served:
        yield served


def _load(tmp: Path, url: str, *args: str) -> tuple[int, Any, str]:
    r = subprocess.run(
        [*EXE, "load", url, "--contract", "openai-chat", "--users", "4", "--run-time", "2s",
         "--format", "json", "--no-report", *args],
        capture_output=True, text=True, timeout=90, cwd=tmp, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr


def test_load_when_every_stream_ends_in_an_inband_error_then_it_fails_with_a_tally(
    stub: tuple[str, LLMStub], tmp_path: Path
) -> None:
    base, _ = stub
    code, v, err = _load(
        tmp_path, f"{base}{CHAT}?first_ms=10&gap_ms=5&tokens=5&error=overloaded_error&error_after=2"
    )
    assert code == 1, err  # it passed before: every real client raised
    m = v["metrics"]
    assert v["requests"] > 0 and m["error_rate"] == 1.0
    assert m["errors_by_code"] == {"overloaded_error": v["requests"]}
    assert m["failure_rate"] == 0.0  # the streams kept their contract: an error, then [DONE]
    code, v, _ = _load(
        tmp_path, f"{base}{CHAT}?first_ms=10&gap_ms=5&tokens=5&error=overloaded_error",
        "--threshold", "error_rate<0.5",
    )  # fmt: skip
    assert code == 1 and v["thresholds"][0]["value"] == 1.0


def test_load_llm_metrics_when_usage_reported_then_tokens_ttft_and_tpot_are_the_truth(
    stub: tuple[str, LLMStub], tmp_path: Path
) -> None:
    """The stub: a role-only chunk at once, the first token at 200 ms, then 10 ms per token,
    20 tokens, a usage chunk.  The role-only chunk is not the first token."""
    base, _ = stub
    with LagProbe() as lag:
        code, v, err = _load(
            tmp_path, f"{base}{CHAT}?first_ms=200&gap_ms=10&tokens=20",
            "--slo", "first_content_ms<5000", "--slo", "tpot_ms<500",
        )  # fmt: skip
    assert code == 0, err
    m = v["metrics"]
    # Margins widen by how late the stub's thread and the load process woke up in this run.
    slack = lag.slack_ms(v)
    assert m["first_event_ms"]["p50"] < 50 + slack  # the role-only chunk
    assert 195 < m["first_content_ms"]["p50"] < 260 + slack, slack
    assert 5 - slack < m["second_content_ms"]["p50"] - m["first_content_ms"]["p50"] < 30 + slack
    assert m["output_tokens"]["min"] == m["output_tokens"]["max"] == 20
    assert m["output_tokens_source"] == "usage"
    assert 9 - slack / 19 < m["tpot_ms"]["p50"] < 15 + slack / 19  # 19 gaps of 10 ms, the tail
    assert m["output_tokens_per_s"] == pytest.approx(20 * v["requests"] / v["run"]["duration_s"],
                                                     rel=0.01)  # fmt: skip
    assert m["goodput"] == 1.0 and m["goodput_per_s"] > 0
    assert m["error_rate"] == 0.0 and m["errors_by_code"] == {}


def test_load_tokens_when_no_usage_then_content_events_counted_and_labelled(
    stub: tuple[str, LLMStub], tmp_path: Path
) -> None:
    base, _ = stub
    code, v, err = _load(tmp_path, f"{base}{CHAT}?first_ms=5&gap_ms=2&tokens=7&usage=0",
                         "--slo", "tpot_ms<0.001")  # fmt: skip
    assert code == 0, err
    m = v["metrics"]
    assert m["output_tokens"]["min"] == m["output_tokens"]["max"] == 7
    assert m["output_tokens_source"] == "content events"
    assert m["goodput"] == 0.0  # nobody meets a 1 us TPOT


def test_load_when_bodies_file_then_each_line_is_sent_in_turn(
    stub: tuple[str, LLMStub], tmp_path: Path
) -> None:
    base, srv = stub
    bodies = tmp_path / "bodies.jsonl"
    ask = [{"model": "m", "stream": True, "messages": [{"role": "user", "content": f"q{i}"}]}
           for i in range(3)]  # fmt: skip
    lines = [json.dumps(a) for a in ask]
    bodies.write_text("\n".join(lines) + "\n\n")
    before = len(srv.bodies)
    code, _, err = _load(tmp_path, f"{base}{CHAT}?first_ms=5&gap_ms=2&tokens=3",
                         "--bodies", str(bodies))  # fmt: skip
    assert code == 0, err
    sent = [b.decode() for b in srv.bodies[before:]]
    assert set(sent) == set(lines)  # every line, and nothing else (the blank one skipped)
    # In turn: taken round-robin, so no line is sent more than once per user ahead of another
    # (4 users' requests may reach the server out of order, never out of balance).
    counts = [sent.count(line) for line in lines]
    assert max(counts) - min(counts) <= 4, counts


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--slo", "first_content_ms.p95<5"], "drop .p95"),
        (["--slo", "failure_rate<0.1"], "a goal for each stream"),
        (["--bodies", "missing.jsonl"], "--bodies missing.jsonl"),
        (["--random"], "give --bodies"),
    ],
)
def test_load_llm_options_when_wrong_then_exit_2_in_one_line(
    tmp_path: Path, args: list[str], says: str
) -> None:
    code, v, err = _load(tmp_path, "http://127.0.0.1:1/x", *args)
    assert code == 2 and v is None and says in err and len(err.strip().splitlines()) == 1, err


def test_parse_slo_when_bad_json_line_then_usage_error_names_the_line(tmp_path: Path) -> None:
    from harness._load._files import read_bodies

    f = tmp_path / "b.jsonl"
    f.write_text('{"a": 1}\n{nope\n')
    with pytest.raises(UsageError, match="line 2"):
        read_bodies(f)
    assert parse_slo("tpot_ms<50").limit == 50


def test_load_report_opens_with_the_metrics_table_and_the_error_tally(
    stub: tuple[str, LLMStub], tmp_path: Path
) -> None:
    base, _ = stub
    out = tmp_path / "report"
    url = f"{base}{CHAT}?first_ms=5&gap_ms=2&tokens=4&error=rate_limit_exceeded&error_after=2"
    r = subprocess.run(
        [*EXE, "load", url,
         "--contract", "openai-chat", "--users", "2", "--run-time", "2s", "--format", "json",
         "--report-dir", str(out)],
        capture_output=True, text=True, timeout=90, cwd=tmp_path, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    v = json.loads(r.stdout)
    md = (out / "summary.md").read_text()
    head = md[: md.index("checks passed")]
    assert "| metric | count | p50 | p90 | p95 | p99 | max | unit |" in head
    assert "| first_content_ms |" in head and "| ms |" in head
    assert f"| rate_limit_exceeded | {v['requests']:,} | 1 |" in head
    html = (out / "report.html").read_text()
    assert html.index("<h2>Metrics</h2>") < html.index("<h2>Plots</h2>")
    assert "<td>rate_limit_exceeded</td>" in html


def test_load_rate_sweep_when_rates_listed_then_each_runs_and_the_sweep_is_reported(
    stub: tuple[str, LLMStub], tmp_path: Path
) -> None:
    base, _ = stub
    out = tmp_path / "sweep"
    r = subprocess.run(
        [*EXE, "load", f"{base}{CHAT}?first_ms=20&gap_ms=5&tokens=5", "--contract",
         "openai-chat", "--arrival-rate", "5,20", "--run-time", "2s", "--slo",
         "first_content_ms<5000", "--format", "json", "--report-dir", str(out)],
        capture_output=True, text=True, timeout=90, cwd=tmp_path, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v["ok"] and v["run"]["scenario"] == "Sweep" and v["run"]["rates"] == [5, 20]
    steps = v["sweep"]
    assert [s["arrival_rate"] for s in steps] == [5, 20]
    runs = [json.loads((Path(s["report_dir"]) / "summary.json").read_text())["run"] for s in steps]
    assert [r["arrivals"]["planned"] for r in runs] == [10, 40]  # every arrival, each rate
    # Each one finished, or (a busy machine) was still open when its step ended: counted.
    assert [s["requests"] + r["open_at_end"] for s, r in zip(steps, runs, strict=True)] == [10, 40]
    for s in steps:
        assert s["metrics"]["goodput"] == 1.0 and s["metrics"]["first_content_ms"]["count"]
    md = (out / "summary.md").read_text()
    assert "| offered /s | achieved /s |" in md and "| 20 |" in md
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 2 and "against offered rate" in html
    assert html.index("<h2>Rate sweep</h2>") < html.index("<svg")
    import test_report_browser as browser

    if browser.CHROMIUM is not None:  # the page in a real browser, when there is one
        dom = browser.chromium("--dump-dom", (out / "report.html").as_uri(), tmp=tmp_path)
        assert dom.stdout.count("<svg") == 2 and "Rate sweep" in dom.stdout
        assert "Uncaught" not in dom.stderr
