"""The report of `stream-harness load`: the files it writes, what CI parses from them, what must
never be in them, the page in a real browser, and a report after Ctrl-C.

The end-to-end tests run the real CLI (a real Locust run of a few seconds) against the loopback
fixture server; the rest test the sans-I/O pieces (``_capture``, ``_report``) on their own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st
from load_fixtures import LoadServer, running

from harness._cli.main import main
from harness._core.rules import violation
from harness._load._capture import MAX_CAPTURES, PER_RULES, ReportData, Sampler, Series
from harness._load._files import scrub_file
from harness._load._report import load_cases, load_report, ticks
from harness._load._runner import LoadOptions, locust_argv
from harness._load._stream import StreamResult

EXE = [sys.executable, "-m", "harness._cli.main"]
RUN_TIMEOUT = 90
CANARY = "CANARY-5d1e8b2a-secret"
ARTIFACTS = {"summary.json", "junit.xml", "summary.md", "report.html"}
LOCUST_FILES = {"verdict.json", "load-data.json", "locust.html", "locust_stats.csv", "locust.log"}

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, LoadServer]]:
    with running() as served:
        yield served


def _cli(*args: str, cwd: Path, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,  # Locust reads locust.conf / pyproject.toml from the working directory
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture(scope="module")
def failing_run(
    server: tuple[str, LoadServer], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One run that breaks rules (a bad event in every 3rd stream, no ``done`` in every 4th),
    with a canary planted in three headers and the query; the server echoes the Authorization
    header into the bad events, as a leaky server would."""
    base, _ = server
    tmp = tmp_path_factory.mktemp("load-report")
    r = _cli(
        "load", f"{base}/stream?n=6&gap_ms=10&bad_every=3&drop_every=4&api_token={CANARY}-q",
        "--users", "4", "--run-time", "3s",
        "--header", f"Authorization: Bearer {CANARY}-auth",
        "--header", f"X-Api-Key: {CANARY}-key",
        "--header", f"X-Custom-Session: {CANARY}-custom",
        "--threshold", "ttfb_ms.p95<5000",
        "--threshold", "failure_rate<0.01",
        "--format", "json", "--report-dir", str(tmp / "report"),
        cwd=tmp,
    )  # fmt: skip
    return tmp / "report", r


def _failed_cases(junit: Path) -> tuple[set[str], set[str]]:
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = list(suite.iter("testcase"))
    names = {str(c.get("name")) for c in cases}
    return names, {str(c.get("name")) for c in cases if c.find("failure") is not None}


def test_load_when_rules_break_then_every_artifact_and_junit_names_each_failure(
    failing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, r = failing_run
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"report: {out / 'report.html'}"
    names = {p.name for p in out.iterdir()}
    assert names >= ARTIFACTS | LOCUST_FILES
    assert any(n.startswith("failing-") and n.endswith(".sse") for n in names)
    assert not any(n.endswith(".tmp") for n in names)
    # summary.json is exactly the --format json verdict
    verdict = json.loads(r.stdout)
    assert json.loads((out / "summary.json").read_text()) == verdict
    assert "incomplete" not in verdict
    # junit: a case per threshold, per broken rule, and the streams as a whole
    cases, failed = _failed_cases(out / "junit.xml")
    # (plus a note, never a failure, when a busy machine made the load generator lag)
    assert cases - {"load generator"} == {
        "threshold ttfb_ms.p95<5000",
        "threshold failure_rate<0.01",
        "streams conform",
        "event.schema",
        "seq.terminal",
    }
    assert failed == cases - {"threshold ttfb_ms.p95<5000", "load generator"}
    md = (out / "summary.md").read_text()
    assert (
        "FAIL" in md and "seq.terminal" in md and len(md.splitlines()) < 80
    )  # short: the tables, the failures
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 4 and "INCOMPLETE" not in page
    for title in ("TTFB distribution", "inter-event gaps", "open streams", "per-stream timeline"):
        assert title in page
    assert 'id="rule-event.schema"' in page  # the rule's explanation


def test_load_report_data_holds_a_bounded_sample_with_failing_streams_and_their_bad_events(
    failing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, r = failing_run
    verdict = json.loads(r.stdout)
    data = json.loads((out / "load-data.json").read_text())
    assert data["streams"] == verdict["requests"]
    assert 0 < len(data["failing"]) <= 30 and 0 < len(data["passing"]) <= 30
    schema = [row for row in data["failing"] if "event.schema" in row["rules"]]
    assert schema and all(row["bad"] == [3] for row in schema)
    per_second = sum(n for _, n in data["series"]["events"])
    assert per_second >= verdict["run"]["events"]  # and the events of streams cut by the end
    assert max(n for _, n in data["series"]["active"]) <= 4
    assert len(data["captures"]) <= MAX_CAPTURES


def test_load_failing_streams_saved_as_sse_are_reproduced_by_check(
    failing_run: tuple[Path, subprocess.CompletedProcess[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = failing_run
    captures = json.loads((out / "load-data.json").read_text())["captures"]
    saved = sorted(out.glob("failing-*.sse"), key=lambda p: int(p.name.split("-")[1]))
    assert len(saved) == len(captures) >= 2
    assert {tuple(c["rules"]) for c in captures} >= {("event.schema",), ("seq.terminal",)}
    for path, c in zip(saved, captures, strict=True):
        capsys.readouterr()
        code = main(["check", str(path), "--no-report", "--format", "json"])
        found = {v["rule"] for v in json.loads(capsys.readouterr().out)["violations"]}
        assert code == 1 and found == set(c["rules"]), path.name


def test_load_secrets_never_reach_any_file_of_the_run_or_its_output(
    failing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, r = failing_run
    assert CANARY not in r.stdout + r.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= ARTIFACTS | LOCUST_FILES
    for p in files:
        assert CANARY.encode() not in p.read_bytes(), p.name
    # The server echoed the credential: it was there to scrub, in the bytes and the messages.
    assert any(b'"echo":"[REDACTED]"' in p.read_bytes() for p in out.glob("failing-*.sse"))
    assert b"[REDACTED]" in (out / "locust_failures.csv").read_bytes()


SHORT = ("T0K", "K3y")  # 3-character secrets: in the query, and in a header


def _alone(token: str) -> re.Pattern[bytes]:
    return re.compile(rb"(?<![A-Za-z0-9])" + token.encode() + rb"(?![A-Za-z0-9])")


def test_short_secrets_never_reach_any_file_of_a_load_or_check_run(
    server: tuple[str, LoadServer], tmp_path: Path
) -> None:
    """The canary: a 3-character token in the query and in a header, over every file a load
    run and a check run write, and what they print (it used to survive in summary.md and
    report.html, where the command line is quoted)."""
    base, _ = server
    url = f"{base}/stream?n=6&gap_ms=10&bad_every=2&token={SHORT[0]}"
    header = f"X-Api-Key: {SHORT[1]}"
    load = _cli("load", url, "--users", "2", "--run-time", "2s", "--header", header,
                "--format", "json", "--report-dir", str(tmp_path / "load"),
                cwd=tmp_path)  # fmt: skip
    check = _cli("check", url, "--header", header, "--format", "json",
                 "--report-dir", str(tmp_path / "check"), cwd=tmp_path)  # fmt: skip
    assert load.returncode == 1 and check.returncode in (0, 1), load.stderr + check.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= ARTIFACTS | LOCUST_FILES
    for token in SHORT:
        pattern = _alone(token)
        for p in files:
            assert not pattern.search(p.read_bytes()), (token, p)
        for out in (load.stdout, load.stderr, check.stdout, check.stderr):
            assert not pattern.search(out.encode()), token
    assert b"[REDACTED]" in (tmp_path / "load" / "summary.md").read_bytes()
    json.loads((tmp_path / "load" / "summary.json").read_text())  # still JSON


def test_load_argv_holds_neither_header_values_nor_the_query(tmp_path: Path) -> None:
    o = LoadOptions(url=f"http://h/x?api_token={CANARY}", headers=(("X-Api-Key", CANARY),))
    assert CANARY not in " ".join(locust_argv(o, tmp_path))  # `ps` shows command lines


# -- Ctrl-C -----------------------------------------------------------------------------------


def test_load_when_interrupted_then_partial_report_marked_incomplete(
    server: tuple[str, LoadServer], tmp_path: Path
) -> None:
    """SIGINT to `stream-harness load` (Ctrl-C): exit 130, the verdict of what was measured so
    far on stdout, and the whole report, marked incomplete -- long before --run-time."""
    base, srv = server
    out = tmp_path / "report"
    started = time.monotonic()
    proc = subprocess.Popen(
        [*EXE, "load", f"{base}/stream?n=10&gap_ms=20", "--users", "4", "--run-time", "60s",
         "--format", "json", "--report-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"}, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    done = srv.stats.completed
    deadline = time.monotonic() + 45
    while srv.stats.completed < done + 8 and time.monotonic() < deadline:  # streams measured
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - started < 50
    assert "Traceback" not in stderr
    verdict = json.loads(stdout)
    assert verdict["incomplete"] is True and verdict["requests"] > 0
    assert json.loads((out / "summary.json").read_text()) == verdict
    assert verdict["run"]["duration_s"] < 50
    assert "INCOMPLETE" in (out / "report.html").read_text()
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert {p.get("name"): p.get("value") for p in suite.iter("property")} == {"incomplete": "true"}
    assert "Incomplete" in (out / "summary.md").read_text()
    assert (out / "locust.html").exists()  # Locust stopped as on its own Ctrl-C


# -- the page in a real browser ---------------------------------------------------------------


def test_load_report_renders_in_a_browser_with_four_plots(
    failing_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    import test_report_browser as browser

    if browser.CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian package 'chromium'; .ci/run installs it)")
    out, _ = failing_run
    page = (out / "report.html").as_uri()
    shot = tmp_path / "screenshot.png"
    r = browser.chromium("--window-size=1200,2400", f"--screenshot={shot}", page, tmp=tmp_path)
    assert shot.exists(), r.stderr[-2000:]
    dom = browser.chromium("--dump-dom", page, tmp=tmp_path)
    log = r.stderr + dom.stderr
    assert "Uncaught" not in log and "SyntaxError" not in log
    assert dom.stdout.count("<svg") == 4
    assert "per-stream timeline" in dom.stdout and "event.schema" in dom.stdout
    # It opens with the figures: the metrics table (p50..max, units) before the first plot.
    assert dom.stdout.index("<h2>Metrics</h2>") < dom.stdout.index("<svg")
    assert "<th>p99</th>" in dom.stdout and "<td>ttfb_ms</td>" in dom.stdout
    assert "<h2>Errors by code</h2>" in dom.stdout
    # Drawn, not blank: the blue lines and bars, and the failing streams in red.
    # (Less what the page shows without its plots: the red is in the text too.)
    html = out / "report.html"
    blue, red = browser.drawn_shares(html, shot, tmp_path)
    assert blue > 0.0005
    assert red > 0.00002


# -- the sans-I/O pieces ----------------------------------------------------------------------


@given(st.lists(st.floats(0, 1, allow_nan=False), max_size=80, unique=True), st.integers(1, 5))
def test_sampler_merged_from_parts_is_the_sample_of_the_whole(
    keys: list[float], parts: int
) -> None:
    whole = Sampler(size=10)
    for i, k in enumerate(keys):
        whole.offer(k, {"i": i})
    master = Sampler(size=10)
    for p in range(parts):
        worker = Sampler(size=10)
        for i, k in enumerate(keys):
            if i % parts == p:
                worker.offer(k, {"i": i})
        master.merge(worker.dump())
    assert sorted(i["i"] for i in master.items()) == sorted(i["i"] for i in whole.items())


def test_series_from_two_processes_sum_per_second() -> None:
    a, b, master = Series(), Series(), Series()
    a.add_events(100, 5)
    a.add_events(100, 2)
    b.add_events(100, 1)
    b.add_events(101, 4)
    a.sample_active(100, 3)
    a.sample_active(100, 2)  # the most open at once in a second is kept
    b.sample_active(100, 4)
    master.merge(a.dump(), "a")
    master.merge(b.dump(), "b")
    assert master.events == {100: 8, 101: 4} and master.active == {100: 7}
    # A worker's next report holds the rest of a second its last one had begun.
    later = Series()
    later.sample_active(100, 5)
    later.sample_active(101, 1)
    master.merge(later.dump(), "a")
    assert master.active == {100: 9, 101: 1}  # a's 100: max(3, 5), not 3 + 5


def _failed(rule: str, raw: bytes = b"data: {}\n\n") -> StreamResult:
    r = StreamResult(start=0.0, events=1, raw=[raw])
    r.add(violation(rule, "broken"))
    return r


def test_report_data_keeps_few_captures_per_rule_set_and_in_all() -> None:
    worker = ReportData()
    for _ in range(5):
        worker.add(_failed("seq.terminal"), 0.0, 0.5)
    assert len(worker.captures) == PER_RULES
    rules = [
        "event.schema",
        "seq.after-terminal",
        "progress.bounds",
        "http.status",
        "sse.truncated",
    ]
    for rule in rules * 3:
        worker.add(_failed(rule), 0.0, 0.5)
    assert len(worker.captures) == MAX_CAPTURES == sum(worker.captured.values())
    sent = worker.take()
    assert not worker.wants_capture()  # the quota lasts the run, across reports
    master = ReportData()
    master.merge(sent)
    master.merge(sent)  # a second worker that found the same
    assert len(master.captures) == MAX_CAPTURES
    assert master.streams == 2 * (5 + len(rules) * 3)


def test_report_data_when_no_raw_bytes_then_nothing_captured() -> None:
    data = ReportData()
    r = StreamResult(start=0.0, error="Connection refused")
    data.add(r, 0.0, 0.3)
    assert data.captures == [] and len(data.failing.items()) == 1


def test_ticks_bounded_keep_bad_events_and_their_positions() -> None:
    arrivals = [[float(i), 10] for i in range(100)]  # 1000 events, 10 per read
    times, bad = ticks(arrivals, [3, 555, 5000], limit=50)
    assert len(times) <= 52 and times == sorted(times)
    assert {times[p] for p in bad} == {0.0, 55.0}  # event 3 came in read 0, 555 in read 55


def _verdict(**over: Any) -> dict[str, Any]:
    v: dict[str, Any] = {
        "ok": True,
        "requests": 10,
        "failures": 0,
        "thresholds": [],
        "violations": [],
        "errors": [],
        "warnings": [],
        "run": {"target": "http://h/x"},
    }
    return v | over


def test_load_cases_when_everything_passes_then_one_green_case() -> None:
    (case,) = load_cases(_verdict())
    assert case.name == "streams conform" and not case.failures


def test_load_cases_when_a_threshold_tolerates_failures_then_rules_are_notes() -> None:
    broken = [
        {"rule": "seq.terminal", "severity": "error", "count": 1, "streams": 1, "message": "m"}
    ]
    gate = [{"expr": "failure_rate<0.5", "ok": True, "value": 0.1}]
    cases = load_cases(_verdict(failures=1, violations=broken, thresholds=gate))
    assert [c.name for c in cases] == [
        "threshold failure_rate<0.5",
        "streams conform",
        "seq.terminal",
    ]
    assert not any(c.failures for c in cases)
    assert "tolerated" in cases[2].output
    cases = load_cases(_verdict(ok=False, failures=1, violations=broken))
    assert [c.name for c in cases if c.failures] == ["streams conform", "seq.terminal"]


def test_load_report_when_nothing_was_measured_then_four_empty_plots() -> None:
    report = load_report(_verdict(), {}, contract="prefab", command_line="x", secrets=())
    assert len(report.plots) == 4 and all("no data" in p.svg for p in report.plots)


def test_load_report_when_a_stream_timed_out_then_the_live_rule_is_shown_and_said_apart() -> None:
    r = StreamResult(start=0.0, events=2, raw=[b'data: {"type": "start"}\n\ndata: {"type": "co'])
    r.arrived(5.0, 1)
    r.add(violation("timeout.idle", "no bytes for 30 s"))
    capture = ReportData()
    capture.add(r, 0.0, 0.1)
    data = capture.dump()
    report = load_report(
        _verdict(ok=False, failures=1), data, contract="prefab", command_line="x", secrets=()
    )
    (stream,) = report.streams
    rules = [v.rule for v in stream.result.violations]
    assert rules == ["timeout.idle"]  # cut short by the timeout: not also seq.terminal
    assert any("timeout.idle" in line and "not in the bytes" in line for line in stream.reproducers)
    assert stream.result.transcript[0].time_ms == 5.0


def test_scrub_file_when_secret_is_json_or_html_escaped_then_replaced(tmp_path: Path) -> None:
    secret = 'tok"en<&>/é'
    path = tmp_path / "f.html"
    path.write_text(json.dumps({"m": secret}) + "\n" + "tok&quot;en&lt;&amp;&gt;/é")
    assert scrub_file(path, [secret])
    text = path.read_text()
    assert "tok" not in text and text.count("[REDACTED]") == 2
    assert not scrub_file(path, [secret])  # nothing left: the file is not rewritten


def test_load_report_when_a_stream_was_truncated_then_its_bytes_show_it_alone() -> None:
    r = StreamResult(start=0.0, events=1, raw=[b'data: {"type": "start"}\n\ndata: {"ty'])
    r.complete = True  # the server closed the connection: the bytes are all there is
    r.add(violation("sse.truncated", "ended inside an event"))
    capture = ReportData()
    capture.add(r, 0.0, 0.1)
    report = load_report(
        _verdict(ok=False, failures=1),
        capture.dump(),
        contract="prefab",
        command_line="x",
        secrets=(),
    )
    (stream,) = report.streams
    assert [v.rule for v in stream.result.violations] == ["sse.truncated"]
    assert stream.reproducers == [
        "stream-harness check failing-1-sse.truncated.sse  # in the report directory"
    ]
