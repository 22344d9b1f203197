"""`stream-harness demo` from the editable install: the real command in a subprocess, on
loopback, bounded by its own --time-limit and by the subprocess timeout.  Then the demo's
judgement (what is expected of the good and of the buggy example) on hand-made results.

The wheel-installed demo is tests/test_wheel.py."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import harness._catalog  # noqa: F401  (every rule registered, for violation())
from harness._cli.tour import caught_bugs, judge_buggy, judge_good, judge_load
from harness._core.rules import violation
from harness._core.session import CheckResult, Timing
from harness._proptest import Failure, FunctionReport, ManifestResult

EXE = Path(sys.executable).parent / "stream-harness"
EXAMPLES = Path(__file__).parent.parent / "examples"
#: The promise is "under a minute" (about 20 s measured on an idle machine); the margin is for
#: a busy shared CI machine, where the demo's own --time-limit still bounds it.
WALL_LIMIT_S = 90
REPORT_FILES = {"summary.json", "junit.xml", "summary.md", "report.html"}
#: The planted bugs that are found whatever the seed: each function's easiest one or two.
SURE_BUGS = {
    ("batch_process", "gen.raised", '{"items": []}'),
    ("chat_stream", "seq.first", '{"messages": []}'),
}

pytestmark = pytest.mark.timeout(240)


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float
    pid: int


def _demo(tmp: Path, *args: str, timeout: float = 150) -> Run:
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(EXE), "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=tmp,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the demo did not finish within {timeout} s:\n{out}\n{err}")
    return Run(proc.returncode, out, err, time.monotonic() - started, proc.pid)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    tmp = tmp_path_factory.mktemp("demo")
    run = _demo(tmp, "--report-dir", "out")
    print(f"demo wall time: {run.seconds:.1f} s")
    return run, tmp / "out"


def test_demo_when_run_then_everything_is_as_expected_in_under_the_limit(
    demo: tuple[Run, Path],
) -> None:
    run, _ = demo
    assert run.code == 0, run.out + run.err
    assert run.seconds < WALL_LIMIT_S
    lines = run.out.splitlines()
    steps = [line.split("]")[0] + "]" for line in lines if line.startswith("[")]
    assert steps == ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"]
    assert re.search(
        r"✓ http://127\.0\.0\.1:\d+ serves batch_process, chat_stream, process_lines", run.out
    )
    assert re.search(r"✓ conforms: 5 events checked", run.out)
    assert re.search(r"✓ 3 of 3 functions conform · \d+ generated inputs", run.out)
    assert re.search(r"✓ \d+ bugs caught in 3 of 3 functions, as planted", run.out)
    assert re.search(r"✓ \d+ streams, 0 failed · \d+ resumed after 3 events without gap", run.out)
    assert lines[-2].startswith("demo OK in ")
    assert lines[-1] == "report: out/index.html"
    assert "Traceback" not in run.err


def test_demo_when_buggy_example_then_its_bugs_are_shown_as_caught_with_minimal_inputs(
    demo: tuple[Run, Path],
) -> None:
    run, _ = demo
    caught = re.findall(
        r"caught bug: (\w+): (.+) \(([\w.-]+)\), minimal input (\{.*\})$", run.out, re.M
    )
    found = {(fn, rule, inputs) for fn, _, rule, inputs in caught}
    assert found >= SURE_BUGS
    assert {fn for fn, *_ in caught} == {"batch_process", "chat_stream", "process_lines"}
    raised = next(c for c in caught if c[2] == "gen.raised")
    # the path is shortened, the message is the exception in plain words
    assert raised[1].startswith("ZeroDivisionError: division by zero, raised at prefab_buggy.py:")
    assert "error" not in run.err.lower()


def test_demo_when_run_then_each_step_has_its_report_and_the_index_links_them(
    demo: tuple[Run, Path],
) -> None:
    _, out = demo
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is True and summary["incomplete"] is False
    assert [s["step"] for s in summary["steps"]] == [
        "serve", "check", "manifest-good", "manifest-buggy", "load",
    ]  # fmt: skip
    assert all(s["status"] == "expected" for s in summary["steps"])
    assert {
        (b["function"], b["rule"], json.dumps(b["minimal_inputs"])) for b in summary["caught_bugs"]
    } >= SURE_BUGS
    for step in ("check", "manifest-good", "manifest-buggy"):
        assert {p.name for p in (out / step).iterdir()} >= REPORT_FILES, step
    assert json.loads((out / "manifest-good/summary.json").read_text())["ok"] is True
    buggy = json.loads((out / "manifest-buggy/summary.json").read_text())
    assert buggy["ok"] is False  # the manifest run itself failed: that is what the demo expects
    assert {f"{fn}-{rule}.sse" for fn, rule, _ in SURE_BUGS} <= {
        p.name for p in (out / "manifest-buggy").iterdir()
    }
    verdict = json.loads((out / "load/verdict.json").read_text())
    assert verdict["ok"] and verdict["metrics"]["reconnect_ms"]["count"] > 0

    index = (out / "index.html").read_text()
    links = _links(index)
    assert [link.split("/")[0] for link in links] == [
        "check", "manifest-good", "manifest-buggy", "load",
    ]  # fmt: skip
    for link in links:
        assert (out / link).is_file(), link
    # self-contained: nothing loaded from anywhere, no script
    assert "<script" not in index and " src=" not in index and "<link" not in index
    assert "AS EXPECTED" in index and "Bugs caught in the buggy example" in index


def test_demo_when_it_ends_then_gateway_worker_and_locust_are_gone(demo: tuple[Run, Path]) -> None:
    run, out = demo
    url = re.search(r"http://127\.0\.0\.1:(\d+)", run.out)
    assert url is not None
    _assert_port_closed(int(url.group(1)))
    assert _processes_mentioning(f"--parent-pid={run.pid}") == []  # the generator worker
    assert _processes_mentioning(str(out / "load")) == []  # locust


@pytest.mark.parametrize("step", [4, 5], ids=["during-property-tests", "during-load"])
def test_demo_when_ctrl_c_then_it_stops_cleanly_with_a_partial_report(
    tmp_path: Path, step: int
) -> None:
    proc = subprocess.Popen(
        [str(EXE), "demo"],  # the default report directory: reports/<timestamp>-demo/
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        start_new_session=True,
    )
    with _killed_at_exit(proc):
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith(f"[{step}/5]"):
                break
        # Into the step: the generator worker, or Locust, is running (waited for, not slept:
        # a busy machine starts processes slowly).
        _wait_for_child(proc, "--parent-pid=" if step == 4 else "locust")
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
        out, err = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - started
    out = "".join(seen) + out
    assert proc.returncode == 130, out + err
    assert stopped_in < 15
    assert "demo interrupted (Ctrl-C)" in out
    assert "Traceback" not in err and "Exception ignored" not in err
    (directory,) = (tmp_path / "reports").glob("*-demo")
    assert out.splitlines()[-1] == f"report: reports/{directory.name}/index.html"
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["incomplete"] is True and summary["interrupted"] == "Ctrl-C"
    assert [s["status"] for s in summary["steps"]] == ["expected"] * (step - 1) + ["interrupted"]
    assert "INCOMPLETE" in (directory / "index.html").read_text()
    url = re.search(r"http://127\.0\.0\.1:(\d+)", out)
    assert url is not None
    _assert_port_closed(int(url.group(1)))
    assert _processes_mentioning(f"--parent-pid={proc.pid}") == []
    assert _processes_mentioning(str(directory / "load")) == []


def test_demo_when_time_limit_runs_out_then_it_stops_and_exits_1(tmp_path: Path) -> None:
    run = _demo(tmp_path, "--report-dir", "out", "--time-limit", "4", timeout=60)
    assert run.code == 1, run.out + run.err
    assert run.seconds < 30
    assert "demo STOPPED: it took longer than its 4 s limit" in run.out
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["interrupted"] == "time limit" and summary["ok"] is False
    assert summary["steps"][-1]["status"] == "interrupted"
    assert _processes_mentioning(f"--parent-pid={run.pid}") == []


def test_demo_when_bad_flag_then_usage_error(tmp_path: Path) -> None:
    run = _demo(tmp_path, "--examples", "0", timeout=30)
    assert run.code == 2
    assert "--examples" in run.err and not (tmp_path / "reports").exists()


# -- the judgement, on hand-made results --------------------------------------------------------


def _stream(*violations: Any) -> CheckResult:
    return CheckResult("t", "prefab", 3, list(violations), Timing(), [])


def _failure(rule: str, message: str, inputs: dict[str, Any]) -> Failure:
    return Failure(rule, inputs, _stream(violation(rule, message)), "stream-harness check …")


def _result(*functions: FunctionReport) -> ManifestResult:
    return ManifestResult("m.json", "buggy.py", "prefab", [], list(functions))


def test_judge_buggy_when_every_function_has_a_planted_bug_then_expected() -> None:
    result = _result(
        FunctionReport("a", 10, [_failure("seq.first", "starts with error", {"x": []})]),
        FunctionReport("b", 10, [_failure("progress.bounds", "current -1", {"n": -1})]),
    )
    bugs = caught_bugs(result, EXAMPLES)
    status, outcome, details = judge_buggy(result, bugs, EXAMPLES)
    assert status == "expected"
    assert outcome.startswith("2 bugs caught in 2 of 2 functions, as planted")
    assert details == [
        'caught bug: a: starts with error (seq.first), minimal input {"x": []}',
        'caught bug: b: current -1 (progress.bounds), minimal input {"n": -1}',
    ]


def test_judge_buggy_when_a_function_passes_then_unexpected() -> None:
    result = _result(
        FunctionReport("a", 10, [_failure("seq.first", "starts with error", {"x": []})]),
        FunctionReport("b", 40),
    )
    status, _, details = judge_buggy(result, caught_bugs(result, EXAMPLES), EXAMPLES)
    assert status == "unexpected"
    assert "b: no bug caught in 40 inputs (one is planted)" in details


def test_judge_buggy_when_a_failure_is_a_timeout_then_it_is_not_a_caught_bug() -> None:
    slow = _failure("gen.timeout", "no item arrived within first_byte_timeout = 10 s", {"x": [1]})
    result = _result(FunctionReport("a", 10, [_failure("seq.first", "e", {}), slow]))
    bugs = caught_bugs(result, EXAMPLES)
    status, _, details = judge_buggy(result, bugs, EXAMPLES)
    assert [b.rule for b in bugs] == ["seq.first"]
    assert status == "unexpected"
    assert any(d.startswith("not a planted bug: a: no item arrived") for d in details)


def test_judge_good_when_a_function_fails_then_unexpected_with_its_failure() -> None:
    result = _result(
        FunctionReport("a", 10),
        FunctionReport("b", 10, [_failure("seq.terminal", "no done", {"t": "é"})]),
    )
    status, outcome, details = judge_good(result, EXAMPLES)
    assert status == "unexpected"
    assert "1 of 2 functions failed" in outcome
    assert details == ['b: no done (seq.terminal), input {"t": "\\u00e9"}']
    assert judge_good(_result(FunctionReport("a", 10)), EXAMPLES)[0] == "expected"


def test_judge_good_when_message_names_the_example_file_then_its_path_is_shortened() -> None:
    where = f"ValueError: x, raised at {EXAMPLES}/prefab_good.py:3 in f; yield an error event"
    result = _result(FunctionReport("f", 1, [_failure("gen.raised", where, {})]))
    _, _, details = judge_good(result, EXAMPLES)
    assert details == ["f: ValueError: x, raised at prefab_good.py:3 in f (gen.raised), input {}"]


def test_judge_load_when_no_stream_resumed_then_unexpected() -> None:
    verdict: dict[str, Any] = {
        "ok": True,
        "requests": 5,
        "failures": 0,
        "metrics": {"reconnect_ms": {"count": 0}, "ttfb_ms": {"p95": 3.0}},
        "violations": [],
        "errors": [],
        "run": {"events": 40},
    }
    status, outcome, details = judge_load(verdict, 3)
    assert status == "unexpected" and details == ["no stream was resumed"]
    assert outcome.startswith("5 streams, 0 failed")
    verdict["metrics"]["reconnect_ms"]["count"] = 5
    assert judge_load(verdict, 3)[0] == "expected"


# -- helpers ------------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append(href)


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.links


def _assert_port_closed(port: int) -> None:
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


def _wait_for_child(proc: subprocess.Popen[str], text: str, timeout: float = 60.0) -> None:
    """Until a descendant of ``proc`` has ``text`` in its command line."""
    import psutil  # type: ignore[import-untyped]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any(text in part for part in child.cmdline()):
                    return
        time.sleep(0.05)
    raise AssertionError(f"no process with {text!r} started")


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text in cmdline and _alive(entry):
                found.append(cmdline)
    return found


def _alive(entry: Path) -> bool:
    with contextlib.suppress(OSError):
        return " Z " not in (entry / "stat").read_text().split(")", 1)[1][:3]
    return False


@contextlib.contextmanager
def _killed_at_exit(proc: subprocess.Popen[str]) -> Iterator[None]:
    try:
        yield
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


class _OutInterruptedAtHeaderFake:
    """The demo's output, with a Ctrl-C landing as step ``n``'s header is printed: the moment
    a user (or the test above) sees the step begin."""

    def __init__(self, n: int) -> None:
        self.header = f"[{n}/5]"
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        if text.startswith(self.header):
            raise KeyboardInterrupt
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_demo_when_ctrl_c_lands_as_a_step_begins_then_that_step_is_interrupted(
    tmp_path: Path,
) -> None:
    from harness._cli.tour import DemoOptions, run_demo

    out = _OutInterruptedAtHeaderFake(2)
    result = run_demo(DemoOptions(tmp_path / "r", time_limit=60), out)  # type: ignore[arg-type]
    assert result.interrupted == "Ctrl-C"
    assert [s.status for s in result.steps] == ["expected", "interrupted"]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert [s["status"] for s in summary["steps"]] == ["expected", "interrupted"]
