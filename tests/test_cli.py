"""The command line as users and CI jobs run it: a real subprocess of the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
EXE = Path(sys.executable).parent / "stream-harness"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands write reports/ under the working directory: keep them out of the repo."""
    monkeypatch.chdir(tmp_path)


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, timeout=50, cwd=cwd, check=False
    )


def test_check_when_recording_conforms_then_exit_0_and_pass_line() -> None:
    r = run("check", str(DATA / "good.sse"), "--color", "never", "--no-report")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith("PASS  0 errors, 0 warnings in 4 events")
    assert r.stderr == ""


def test_check_when_recording_breaks_rules_then_exit_1_and_each_rule_named() -> None:
    r = run("check", str(DATA / "bad.sse"), "--color", "never")
    assert r.returncode == 1, r.stderr
    for rule in (
        "progress.current-le-total",
        "progress.bounds",
        "sse.data-not-json",
        "sse.truncated",
    ):
        assert rule in r.stdout
    assert "seq.terminal" not in r.stdout  # one problem (truncation), one violation
    assert r.stdout.splitlines()[-1].startswith("FAIL")


def test_check_json_verdict_has_exactly_the_public_shape() -> None:
    r = run("check", str(DATA / "bad.sse"), "--format", "json")
    assert r.returncode == 1
    verdict = json.loads(r.stdout)
    assert set(verdict) == {"ok", "target", "contract", "events", "violations", "timing"}
    assert verdict["ok"] is False
    assert verdict["contract"] == "prefab"
    assert verdict["events"] == 3
    assert set(verdict["timing"]) == {"ttfb_ms", "first_event_ms", "duration_ms"}
    assert all(
        set(v) == {"rule", "severity", "event_index", "message"} for v in verdict["violations"]
    )
    by_rule = {v["rule"]: v for v in verdict["violations"]}
    assert by_rule["progress.current-le-total"]["event_index"] == 1
    assert by_rule["sse.data-not-json"]["event_index"] == 2
    assert by_rule["sse.truncated"]["event_index"] is None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("check", "nope.sse"), "no such file: nope.sse"),
        (("check", "ftp://x/y"), "unsupported URL scheme"),
        (("check", "http://[::1/x"), "invalid URL 'http://[::1/x': Invalid IPv6 URL"),
        (("check", "http://h:99999/x"), "Port out of range"),
        (("manifest", str(DATA / "good.sse"), "--url", "http://[::1"), "invalid --url"),
        (("load", "http://[::1"), "invalid URL"),
        (("check", "what"), "cannot tell what 'what' is"),
        (("check", str(DATA / "good.sse"), "--contract", "prefob"), "did you mean 'prefab'"),
        (("check", "m.py:f", "--inputs", "{bad"), "--inputs is not valid JSON"),
        (("check", "m.py:f", "--inputs", "[1]"), "--inputs must be a JSON object"),
        (("check", str(DATA / "good.sse"), "--header", "X-Key: v"), "applies only to URL targets"),
        (("check", str(DATA / "good.sse"), "--idle-timeout", "-1"), "must be greater than 0"),
        (("check", str(DATA / "good.sse"), "--max-events", "x"), "expected a whole number"),
        (("check",), "the following arguments are required: target"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
    ],
)
def test_cli_when_usage_error_then_one_line_on_stderr_and_exit_2(
    args: tuple[str, ...], needle: str
) -> None:
    r = run(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_check_when_url_unreachable_then_exit_3() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run("check", f"http://127.0.0.1:{port}/invoke/x", "--first-byte-timeout", "2")
    assert r.returncode == 3
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_rules_lists_every_catalogued_rule_with_severity() -> None:
    from harness._catalog import all_rules

    r = run("rules")
    assert r.returncode == 0
    listed = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()}
    assert listed == {rule.id: rule.severity.value for rule in all_rules()}


def test_rules_doc_page_when_a_rule_changes_then_make_docs_regenerates_it() -> None:
    """docs/rules.md is what `make docs` writes: the `rules --format markdown` output."""
    root = Path(__file__).parent.parent
    recipe = (root / "Makefile").read_text(encoding="utf-8").split("\ndocs:", 1)[1]
    assert "stream-harness rules --format markdown > docs/rules.md" in recipe.split("\n\n")[0]
    r = run("rules", "--format", "markdown")
    assert r.returncode == 0, r.stderr
    page = (root / "docs" / "rules.md").read_text(encoding="utf-8")
    assert page == r.stdout, "docs/rules.md is stale: run `make docs`"


def test_version_flag() -> None:
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("stream-harness ")


GOOD = Path(__file__).parent.parent / "examples" / "prefab_good.py"


def test_check_threshold_when_missed_then_exit_1_and_listed_in_verdict() -> None:
    args = ("check", f"{GOOD}:batch_process", "--inputs", '{"items": [1, 2, 3]}', "--no-report")
    r = run(*args, "--threshold", "first_event_ms<60000", "--threshold", "inter_event_ms.max<0.001",
            "--format", "json")  # fmt: skip
    assert r.returncode == 1, r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["violations"] == []  # the stream conforms: only the gate failed
    assert [(t["expr"], t["ok"]) for t in verdict["thresholds"]] == [
        ("first_event_ms<60000", True),
        ("inter_event_ms.max<0.001", False),
    ]
    assert verdict["thresholds"][1]["value"] > 0.001
    ok = run(*args, "--threshold", "first_event_ms<60000", "--color", "never")
    assert ok.returncode == 0
    assert "✓ threshold first_event_ms<60000" in ok.stdout


def test_check_without_threshold_then_verdict_has_no_thresholds_key() -> None:
    r = run("check", str(DATA / "good.sse"), "--format", "json", "--no-report")
    assert "thresholds" not in json.loads(r.stdout)


def test_check_threshold_when_malformed_then_exit_2_one_line() -> None:
    r = run("check", str(DATA / "good.sse"), "--threshold", "ttfb_msec<5", "--no-report")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "ttfb_msec" in r.stderr


def test_main_when_a_bug_raises_then_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last resort: an exception nobody foresaw is still one line, not a traceback."""
    import harness._cli.main as cli

    def broken(ns: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_cmd_rules", broken)
    monkeypatch.delenv("STREAM_HARNESS_DEBUG", raising=False)
    assert cli.main(["rules"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "internal error: RuntimeError: boom" in err and "STREAM_HARNESS_DEBUG=1" in err
    monkeypatch.setenv("STREAM_HARNESS_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["rules"])
