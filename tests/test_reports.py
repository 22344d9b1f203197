"""Reports: the files every run writes, what CI parses from them, and what must never be in them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tests import fake_servers
from tests.fake_servers import FakeGatewayApp
from tests.http_fixtures import serving

DATA = Path(__file__).parent / "data"
EXE = Path(sys.executable).parent / "stream-harness"
BUGGY = Path(__file__).parent.parent / "examples" / "prefab_buggy.py"
ARTIFACTS = {"summary.json", "junit.xml", "summary.md", "report.html"}

pytestmark = pytest.mark.timeout(90)


def _wait_until(ready: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll for what a test is waiting for (a busy machine starts processes slowly)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with serving(FakeGatewayApp()) as url:
        yield url


def test_check_when_stream_fails_then_all_artifacts_and_a_reproducing_sse(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    r = run(
        "check",
        f"{BUGGY}:batch_process",
        "--inputs",
        '{"items": [1, 2, 3]}',
        "--report-dir",
        str(out),
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert r.returncode == 1
    assert r.stderr.strip() == f"report: {out / 'report.html'}"
    assert {p.name for p in out.iterdir()} == ARTIFACTS | {"stream.sse"}
    # summary.json is the --format json verdict
    assert json.loads((out / "summary.json").read_text()) == json.loads(r.stdout)
    # junit: a failing test case named by each rule that fired
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == {"progress.bounds", "progress.current-le-total"}
    # the saved raw stream reproduces the same violations
    again = run("check", str(out / "stream.sse"), "--format", "json", "--no-report", cwd=tmp_path)
    rules = lambda text: sorted(v["rule"] for v in json.loads(text)["violations"])  # noqa: E731
    assert again.returncode == 1
    assert rules(again.stdout) == rules(r.stdout)
    # the page explains the rules and shows the transcript around the failure
    page = (out / "report.html").read_text()
    assert 'id="rule-progress.current-le-total"' in page  # the rule's explanation
    assert "percentage 133" in page  # the transcript around the failure
    md = (out / "summary.md").read_text()
    assert "FAIL" in md and len(md.splitlines()) < 40


def test_check_when_stream_passes_then_no_sse_and_a_green_junit_case(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    r = run("check", str(DATA / "good.sse"), "--report-dir", str(out), cwd=tmp_path)
    assert r.returncode == 0
    assert {p.name for p in out.iterdir()} == ARTIFACTS
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == "1"


def test_check_without_report_dir_then_default_under_reports(tmp_path: Path) -> None:
    r = run("check", str(DATA / "good.sse"), cwd=tmp_path)
    assert r.returncode == 0
    (made,) = (tmp_path / "reports").iterdir()
    assert made.name.endswith("-check")
    assert {p.name for p in made.iterdir()} == ARTIFACTS
    assert not any(p.name.endswith(".tmp") for p in made.iterdir())


def test_no_report_writes_nothing(tmp_path: Path) -> None:
    run("check", str(DATA / "good.sse"), "--no-report", cwd=tmp_path)
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        # echoes every request header back inside the stream
        # (the long ones are sse.event-too-large), so the saved raw stream holds them
        ("/sse/echo-headers", ("--max-event-bytes", "100")),
        ("/sse/unauthorized", ()),  # a 401 whose error body quotes the credential
        ("/sse/missing-done", ()),
    ],
)
def test_secrets_never_reach_any_artifact_or_output(
    tmp_path: Path, gateway: str, path: str, extra: tuple[str, ...]
) -> None:
    """A canary planted in headers and the query string; grep every byte the run writes."""
    canary = "CANARY-7f3a9c1e-secret"
    out = tmp_path / "rep"
    r = run(
        "check",
        f"{gateway}{path}?api_token={canary}-q",
        "--header",
        f"Authorization: Bearer {canary}-auth",
        "--header",
        f"X-Api-Key: {canary}-key",
        "--header",
        f"X-Custom-Session: {canary}-custom",
        "--report-dir",
        str(out),
        "--format",
        "json",
        *extra,
        cwd=tmp_path,
    )
    assert r.returncode == 1, r.stderr
    assert canary not in r.stdout + r.stderr
    written = list(out.iterdir())
    assert {p.name for p in written} == ARTIFACTS | {"stream.sse"}
    for p in written:
        assert canary.encode() not in p.read_bytes(), p.name
    if path == "/sse/echo-headers":
        assert b"[REDACTED]" in (out / "stream.sse").read_bytes()


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_check_when_interrupted_then_partial_report_marked_incomplete(
    tmp_path: Path, gateway: str, fmt: str
) -> None:
    """Ctrl-C mid-stream: exit 130, and a report of what was measured so far, marked so."""
    out = tmp_path / "rep"
    sent = fake_servers.SENT[0]
    proc = subprocess.Popen(
        [
            str(EXE),
            "check",
            f"{gateway}/sse/drip?n=400&gap=0.02",
            "--report-dir",
            str(out),
            "--format",
            fmt,
            "--color",
            "never",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    _wait_until(lambda: fake_servers.SENT[0] >= sent + 5)  # some events: the stream takes 8 s
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["incomplete"] is True
    assert 0 < summary["events"] < 400
    assert "seq.terminal" not in {v["rule"] for v in summary["violations"]}  # cut short by us
    assert "INCOMPLETE" in (out / "report.html").read_text()
    if fmt == "json":
        assert json.loads(stdout)["events"] == summary["events"]
    else:
        assert "INTERRUPTED" in stdout


def test_check_generator_when_interrupted_then_partial_report(tmp_path: Path) -> None:
    """Ctrl-C while a generator (in the worker process) is streaming."""
    fakes = Path(__file__).parent / "gen_targets" / "fake_generators.py"
    out = tmp_path / "rep"
    marker = tmp_path / "streaming"
    proc = subprocess.Popen(
        [str(EXE), "check", f"{fakes}:trickles_forever", "--inputs",
         json.dumps({"interval": 0.02, "marker": str(marker)}),
         "--report-dir", str(out), "--format", "json", "--idle-timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    _wait_until(marker.exists)  # the generator is streaming
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["incomplete"] is True and summary["events"] > 0
    assert json.loads(stdout)["events"] == summary["events"]
