"""``stream-harness manifest`` as users and CI jobs run it: a real subprocess of the console
script, its exit codes, its JSON verdict, its text for people and its progress on a terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import closed_port, serving
from manifest_gateway import ManifestGatewayApp

from harness._cli.manifest import ProgressDisplay
from harness._contracts.manifest import load_manifest
from harness._proptest import ExampleRun, FunctionFinished, FunctionReport, FunctionStarted

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "examples" / "prefab-manifest.json"
GOOD = ROOT / "examples" / "prefab_good.py"
BUGGY = ROOT / "examples" / "prefab_buggy.py"
EXE = Path(sys.executable).parent / "stream-harness"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Hypothesis database goes to .hypothesis/ under the working directory."""
    monkeypatch.chdir(tmp_path)


def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it; no report directory unless the test asks for one."""
    if "--report-dir" not in args:
        args = (*args, "--no-report")
    return subprocess.run(
        [str(EXE), "manifest", *args],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        **kwargs,
    )


def test_manifest_when_guide_sample_then_exit_1_with_invalid_json_verdict(
    tmp_path: Path,
) -> None:
    from test_manifest import GUIDE_SAMPLE

    path = tmp_path / "prefab-manifest.json"
    path.write_text(GUIDE_SAMPLE, encoding="utf-8")
    r = run(str(path), "--module", str(GOOD), "--format", "json")
    assert r.returncode == 1, r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["ok"] is False and verdict["functions"] == []
    [v] = verdict["violations"]
    assert v["rule"] == "manifest.invalid-json" and v["severity"] == "error"
    assert "line 5, column 27" in v["message"] and "JSON has no comments" in v["message"]
    assert r.stderr == ""


def test_manifest_when_guide_sample_in_text_then_readable(tmp_path: Path) -> None:
    from test_manifest import GUIDE_SAMPLE

    path = tmp_path / "prefab-manifest.json"
    path.write_text(GUIDE_SAMPLE, encoding="utf-8")
    r = run(str(path), "--module", str(GOOD), "--color", "never")
    assert r.returncode == 1
    assert "✗ error   manifest.invalid-json:" in r.stdout
    assert r.stdout.splitlines()[-1].startswith("FAIL  0 functions conform · 1 error, 0 warnings")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.json", "--module", str(GOOD)], "no such manifest file: nope.json"),
        ([str(MANIFEST), "--module", str(GOOD), "--examples", "0"], "must be at least 1"),
        ([str(MANIFEST), "--module", str(GOOD), "--function", "nope"], "not in the manifest"),
        ([str(MANIFEST), "--module", "missing_dir/x.py"], "no such file: missing_dir/x.py"),
        ([str(MANIFEST), "--module", str(GOOD), "--header", "A: b"], "--header only applies"),
        ([str(MANIFEST), "--module", str(GOOD), "--contract", "nope"], "unknown contract"),
    ],
)
def test_manifest_when_harness_cannot_run_then_exit_2_and_one_line(
    args: list[str], message: str
) -> None:
    r = run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert message in r.stderr and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr


def test_manifest_when_module_import_fails_then_exit_2(tmp_path: Path) -> None:
    module = tmp_path / "broken.py"
    module.write_text("raise RuntimeError('cannot start')\n", encoding="utf-8")
    r = run(str(MANIFEST), "--module", str(module))
    assert r.returncode == 2
    assert "RuntimeError: cannot start" in r.stderr and "Traceback" not in r.stderr


def test_manifest_when_url_unreachable_then_exit_3() -> None:
    r = run(str(MANIFEST), "--url", f"http://127.0.0.1:{closed_port()}", "--examples", "3")
    assert r.returncode == 3
    assert "cannot reach" in r.stderr and r.stdout == ""


def test_manifest_when_module_mismatches_then_exit_1_manifest_findings(tmp_path: Path) -> None:
    module = tmp_path / "other.py"
    module.write_text("def batch_process(items, extra):\n    yield items\n", encoding="utf-8")
    r = run(str(MANIFEST), "--module", str(module), "--format", "json")
    assert r.returncode == 1, r.stderr
    verdict = json.loads(r.stdout)
    rules = sorted(v["rule"] for v in verdict["violations"])
    assert rules == [
        "manifest.missing-function",
        "manifest.missing-function",
        "manifest.signature",
    ]
    assert all(f["examples"] == 0 and f["ok"] is False for f in verdict["functions"])


def test_manifest_when_good_module_then_exit_0_and_public_json_shape() -> None:
    r = run(
        str(MANIFEST), "--module", str(GOOD), "--examples", "10", "--seed", "7", "--format", "json"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    verdict = json.loads(r.stdout)
    assert set(verdict) == {"ok", "violations", "functions"}
    assert verdict["ok"] is True and verdict["violations"] == []
    assert [f["name"] for f in verdict["functions"]] == [
        "batch_process",
        "chat_stream",
        "process_lines",
    ]
    for f in verdict["functions"]:
        assert {"name", "ok", "examples", "violations", "minimal_inputs"} <= set(f)
        assert f["ok"] is True and f["minimal_inputs"] is None and f["violations"] == []
        assert 0 < f["examples"] <= 10
    assert r.stderr == ""  # not a terminal: no progress


def test_manifest_when_buggy_module_then_exit_1_minimal_inputs_and_working_reproducer() -> None:
    r = run(
        str(MANIFEST),
        "--module",
        str(BUGGY),
        "--function",
        "batch_process",
        "--examples",
        "40",
        "--seed",
        "3",
        "--format",
        "json",
    )
    assert r.returncode == 1, r.stderr
    verdict = json.loads(r.stdout)
    [batch] = verdict["functions"]
    assert batch["name"] == "batch_process" and batch["ok"] is False
    assert batch["minimal_inputs"] == {"items": []}
    assert {f["rule"] for f in batch["failures"]} >= {"gen.raised", "progress.bounds"}
    argv = shlex.split(batch["reproducer"])
    assert argv[:2] == ["stream-harness", "check"]
    again = subprocess.run(
        [str(EXE), *argv[1:], "--no-report", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1
    assert json.loads(again.stdout)["violations"][0]["rule"] == "gen.raised"
    assert Path(".hypothesis").is_dir()  # found failures are kept for next time


def test_manifest_when_buggy_in_text_then_people_see_input_stream_and_command() -> None:
    r = run(
        str(MANIFEST),
        "--module",
        str(BUGGY),
        "--function",
        "process_lines",
        "--seed",
        "3",
        "--no-database",
        "--color",
        "never",
    )
    assert r.returncode == 1
    out = r.stdout
    assert "✗ process_lines" in out
    assert 'progress.bounds with minimal inputs {"text": "0", "start": -1}' in out
    assert "✗ error   progress.bounds: progress current -1 is below the minimum 0" in out
    assert "reproduce  stream-harness check" in out
    assert 'seq.terminal with minimal inputs {"text": "\\u0080"}' in out
    assert out.splitlines()[-1].startswith("FAIL  1 of 1 functions failed")
    # Hypothesis keeps its own caches there; no failure was stored.
    kept = (
        {p.name for p in Path(".hypothesis").iterdir()} if Path(".hypothesis").exists() else set()
    )
    assert kept <= {"constants", "unicode_data", ".gitignore"}


def test_manifest_when_url_then_property_tested_over_http_with_curl() -> None:
    manifest, _ = load_manifest(MANIFEST)
    assert manifest is not None
    with serving(ManifestGatewayApp(manifest, BUGGY)) as base:
        r = run(
            str(MANIFEST),
            "--url",
            base,
            "--function",
            "batch_process",
            "--header",
            "X-Api-Key: topsecret-value",
            "--examples",
            "30",
            "--seed",
            "3",
            "--format",
            "json",
        )
    assert r.returncode == 1, r.stderr
    [batch] = json.loads(r.stdout)["functions"]
    assert batch["minimal_inputs"] == {"items": []}
    assert batch["curl"].startswith(f"curl -N -X POST {base}/invoke/batch_process")
    assert "'X-Api-Key: [REDACTED]'" in batch["curl"]
    assert all(c["ok"] and c["status"] == 422 for c in batch["invalid_inputs"])
    assert "topsecret" not in r.stdout + r.stderr


def test_manifest_when_stderr_is_a_terminal_then_a_progress_bar_per_function() -> None:
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [
                str(EXE),
                "manifest",
                str(MANIFEST),
                "--module",
                str(GOOD),
                "--examples",
                "5",
                "--format",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=110,
            check=False,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
        )
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)
    assert proc.returncode == 0
    text = shown.decode("utf-8", "replace")
    for name in ("batch_process", "chat_stream", "process_lines"):
        assert name in text
    assert "examples" in text and "conforms" in text
    json.loads(proc.stdout)  # the verdict on stdout is untouched by the bars


class _FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_when_not_a_terminal_then_silent() -> None:
    out = io.StringIO()
    with ProgressDisplay(out) as progress:
        progress.on_event(FunctionStarted("f", 10))
        progress.on_event(ExampleRun("f", 3, 0))
        progress.on_event(FunctionFinished(FunctionReport("f", examples=3)))
    assert out.getvalue() == ""


def test_progress_when_terminal_then_bar_reports_failures_and_outcome() -> None:
    out = _FakeTerminal()
    with ProgressDisplay(out) as progress:
        progress.on_event(FunctionStarted("fails_a_lot", 10))
        progress.on_event(ExampleRun("fails_a_lot", 4, 1))
        progress.on_event(FunctionFinished(FunctionReport("fails_a_lot", examples=4, skipped="x")))
    text = out.getvalue()
    assert "fails_a_lot" in text and "skipped" in text


def test_manifest_report_dir_holds_every_artifact_and_each_failure_reproduces(
    tmp_path: Path,
) -> None:
    """Issue 5: the manifest run's report — JUnit case per function, one .sse per shrunk
    failure that `stream-harness check FILE.sse` reproduces."""
    import json as _json
    import subprocess
    import sys
    from xml.etree import ElementTree as ET

    exe = Path(sys.executable).parent / "stream-harness"
    root = Path(__file__).parent.parent / "examples"
    out = tmp_path / "rep"
    r = subprocess.run(
        [str(exe), "manifest", str(root / "prefab-manifest.json"), "--module",
         str(root / "prefab_buggy.py"), "--function", "process_lines", "--examples", "40",
         "--no-database", "--report-dir", str(out), "--threshold", "first_event_ms<60000",
         "--format", "json"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    names = {p.name for p in out.iterdir()}
    assert {"summary.json", "junit.xml", "summary.md", "report.html"} <= names
    assert _json.loads((out / "summary.json").read_text()) == _json.loads(r.stdout)
    (fn,) = _json.loads(r.stdout)["functions"]
    assert fn["thresholds"] == [
        {"expr": "first_event_ms<60000", "ok": True, "value": fn["thresholds"][0]["value"]}
    ]
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == {"function process_lines"}
    streams = sorted(n for n in names if n.endswith(".sse"))
    assert streams == ["process_lines-progress.bounds.sse", "process_lines-seq.terminal.sse"]
    again = subprocess.run(
        [str(exe), "check", str(out / "process_lines-progress.bounds.sse"), "--no-report",
         "--format", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert "progress.bounds" in {v["rule"] for v in _json.loads(again.stdout)["violations"]}


def test_manifest_when_interrupted_then_partial_report_and_exit_130(tmp_path: Path) -> None:
    import json as _json
    import signal
    import subprocess
    import sys
    import time

    import psutil  # type: ignore[import-untyped]

    exe = Path(sys.executable).parent / "stream-harness"
    root = Path(__file__).parent.parent / "examples"
    out = tmp_path / "rep"
    proc = subprocess.Popen(
        [str(exe), "manifest", str(root / "prefab-manifest.json"), "--module",
         str(root / "prefab_good.py"), "--examples", "5000", "--no-database",
         "--report-dir", str(out), "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    # Not a guessed sleep (a busy machine starts slowly): the worker process runs the
    # functions, so the property tests are under way once it is there.
    deadline = time.monotonic() + 60
    while not psutil.Process(proc.pid).children() and proc.poll() is None:
        assert time.monotonic() < deadline, "no worker process started"
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    summary = _json.loads((out / "summary.json").read_text())
    assert summary["incomplete"] is True
    assert len(summary["functions"]) < 3  # stopped before testing every function
    printed = _json.loads(stdout)
    assert printed["functions"] == summary["functions"]


def test_manifest_alone_when_valid_then_exit_0_without_running_anything() -> None:
    r = run(str(MANIFEST), "--color", "never")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "manifest  ✓ valid" in r.stdout


@pytest.mark.parametrize(
    ("function", "finding"),
    [
        ({"name": "a", "streaming": True, "parameters": []}, "two functions are named 'a'"),
        (
            {
                "name": "b",
                "streaming": True,
                "parameters": [{"name": "n", "type": "integer", "default": "ten"}],
            },
            'the default "ten" is not a valid integer',
        ),
    ],
)
def test_manifest_alone_when_broken_then_exit_1_with_the_finding(
    tmp_path: Path, function: dict[str, Any], finding: str
) -> None:
    path = tmp_path / "prefab-manifest.json"
    first = {"name": "a", "streaming": True, "parameters": []}
    path.write_text(json.dumps({"functions": [first, function]}), encoding="utf-8")
    r = run(str(path), "--format", "json")
    assert r.returncode == 1, (r.stdout, r.stderr)
    verdict = json.loads(r.stdout)
    assert verdict["ok"] is False and verdict["functions"] == []
    assert any(finding in v["message"] for v in verdict["violations"]), verdict
