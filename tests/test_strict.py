"""--strict: warnings fail too, in check, manifest's verdict, load's streams and assert_conforms."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import assert_conforms
from harness._core.rules import Severity, Violation
from harness._proptest import FunctionReport, ManifestResult

EXE = str(Path(sys.executable).parent / "stream-harness")
#: A prefab stream that fails in-band without an error_code: a warning, not an error.
UNCODED = [{"type": "start", "data": {}}, {"type": "error", "data": "the model crashed"}]


def _sse(events: list[dict[str, object]]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


def _check(path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, "check", str(path), "--format", "json", "--no-report", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_when_only_warnings_then_exit_0_and_with_strict_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "uncoded.sse"
    path.write_bytes(_sse(UNCODED))
    plain = _check(path)
    assert plain.returncode == 0, plain.stderr
    assert [v["severity"] for v in json.loads(plain.stdout)["violations"]] == ["warning"]
    strict = _check(path, "--strict")
    assert strict.returncode == 1, strict.stderr
    verdict = json.loads(strict.stdout)
    assert verdict["ok"] is False
    assert [v["severity"] for v in verdict["violations"]] == ["error"]
    assert verdict["violations"][0]["message"].endswith("(a warning; --strict)")


def test_assert_conforms_when_strict_then_a_warning_raises() -> None:
    assert assert_conforms(UNCODED).violations  # a warning: passes
    with pytest.raises(AssertionError, match="--strict"):
        assert_conforms(UNCODED, strict=True)


def test_manifest_result_when_made_strict_then_a_function_with_warnings_fails() -> None:
    warning = Violation("error.code", Severity.WARNING, "no error_code", 1)
    result = ManifestResult("m.json", "t", "prefab", [], [FunctionReport("f", warnings=[warning])])
    assert result.ok
    result.make_strict()
    assert not result.ok
    assert result.to_json()["functions"][0]["violations"][0]["severity"] == "error"


def test_load_when_strict_then_locust_users_are_told(tmp_path: Path) -> None:
    from harness._load._runner import LoadOptions, locust_argv

    argv = locust_argv(LoadOptions(url="http://127.0.0.1:9/s", strict=True), tmp_path)
    assert "--sse-strict" in argv
    assert "--sse-strict" not in locust_argv(LoadOptions(url="http://127.0.0.1:9/s"), tmp_path)
