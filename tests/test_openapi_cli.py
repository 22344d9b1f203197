"""``stream-harness openapi`` end to end: the real CLI, in a subprocess, against the planted-bug
apps of ``tests/openapi_apps`` served by real uvicorn on loopback (issue 10).

Each planted bug must be found within the default 100 examples, without a seed, and shrunk to
the minimal request that shows it; every operation not in an app's ``PLANTED`` must pass (no
false positives); the verdict is the public JSON shape; the reproducer it prints reproduces.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from http_fixtures import closed_port
from openapi_apps import APPS
from openapi_fixtures import serving_apps, spec_url, write_document

EXE = Path(sys.executable).parent / "stream-harness"
#: Seconds one run may take: a few on an idle machine; a busy 2-core CI machine is slower.
RUN_LIMIT_S = 120


@pytest.fixture(scope="module", name="apps")
def apps_fixture() -> Iterator[dict[str, str]]:
    with serving_apps() as urls:
        yield urls


def run_cli(*args: str, cwd: Path) -> tuple[int, str, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [str(EXE), "openapi", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=RUN_LIMIT_S,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started


def verdict_of(app: str, apps: dict[str, str], tmp: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """One JSON run against a served app (default examples, no seed, no saved failures)."""
    rc, out, err, _ = run_cli(
        spec_url(apps[app]), "--format", "json", "--no-database", "--no-report", *args, cwd=tmp
    )
    assert "Traceback" not in err, err
    return rc, json.loads(out)


def by_label(verdict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["operation"]: o for o in verdict["operations"]}


def assert_shape(verdict: dict[str, Any]) -> None:
    """The public shape: these keys, never renamed (keys may be added inside an operation)."""
    assert set(verdict) == {"ok", "violations", "operations", "skipped"}
    for o in verdict["operations"]:
        assert {
            "operation", "operation_id", "ok", "examples", "violations", "minimal_request",
            "reproducer", "contract", "rejected", "failures", "invalid_inputs", "duration_ms",
        } <= set(o)  # fmt: skip
        assert o["examples"] > 0
        for v in o["violations"]:
            assert {"rule", "severity", "message"} <= set(v)


# -- each planted bug found, shrunk, and nothing else flagged ----------------------------------


def shrunk_to(request: dict[str, Any], minimal: dict[str, Any]) -> bool:
    """``request`` has ``minimal``'s values, and besides them at most empty ones: a hang's
    shrinking is bounded (8 more timeouts), so an optional ``"prompt": ""`` may stay."""
    for part, want in minimal.items():
        got = request[part]
        if isinstance(want, dict) and isinstance(got, dict):
            extra = {k: v for k, v in got.items() if k not in want}
            if any(v not in ("", 0, [], {}, None) for v in extra.values()):
                return False
            got = {k: v for k, v in got.items() if k in want}
        if got != want:
            return False
    return True


#: (app, extra flags, operation, first error's rule, what the minimal request is).
FOUND = [
    pytest.param(
        "llm_debug", (), "POST /api/debug/chat", "http.incomplete-body",
        {"body": {"model_id": "llama-3-8b", "prompt": ""}, "query": {}},
        id="llm-debug-crash-on-one-model",
    ),
    pytest.param(
        "token_stream", (), "GET /stream", "http.incomplete-body",
        {"query": {"prompt": ""}, "body": None},
        id="token-stream-empty-prompt",
    ),
    pytest.param(
        "token_stream", (), "GET /stream/quota", "openapi.undocumented-status",
        {"query": {"n": "21"}, "body": None},
        id="undocumented-429-just-over-quota",
    ),
    pytest.param(
        "agent_stages", ("--contract", "generateRoadmapStream=agent-stages"),
        "POST /api/v1/roadmaps/generate-stream", "seq.terminal",
        {"body": {"goals": ["", "", "", ""]}},
        id="agent-stages-no-done-past-three-goals",
    ),
    pytest.param(
        "ndjson", ("--idle-timeout", "1"), "POST /api/generate", "timeout.idle",
        {"body": {"model": "0", "num_predict": -1}},
        id="ndjson-hang-on-negative-num-predict",
    ),
    pytest.param(
        "item_schema", (), "GET /v2/words", "openapi.item-schema",
        {"query": {"text": "0" * 11}},
        id="item-schema-word-over-ten-chars",
    ),
    pytest.param(
        "json_documented", ("--operation", "complete", "--contract", "text"),
        "POST /v1/complete", "seq.after-terminal",
        {"body": {"prompt": "", "max_tokens": 9}},
        id="json-documented-tokens-after-error",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("app", "flags", "label", "rule", "minimal"), FOUND)
def test_openapi_when_a_bug_is_planted_then_found_in_100_examples_and_shrunk(
    apps: dict[str, str],
    tmp_path: Path,
    app: str,
    flags: tuple[str, ...],
    label: str,
    rule: str,
    minimal: dict[str, Any],
) -> None:
    rc, verdict = verdict_of(app, apps, tmp_path, *flags)
    assert_shape(verdict)
    assert rc == 1 and verdict["ok"] is False
    ops = by_label(verdict)
    found = ops[label]
    assert found["ok"] is False
    assert found["failures"][0]["violations"][0]["rule"] == rule, found["failures"]
    assert 1 <= found["failures"][0]["found_after_examples"] <= 100  # within the default 100
    request = found["minimal_request"]
    assert shrunk_to(request, minimal), request
    assert request["method"] + " " + request["path"] == label
    assert found["reproducer"].startswith("stream-harness check ")
    assert found["curl"].startswith("curl -N ")
    # No false positive: each operation not planted passes.  (Named operations only, where
    # the run was limited with --operation.)
    planted = APPS[app].PLANTED
    for other, report in ops.items():
        if other not in planted:
            assert report["ok"] is True, (other, report["violations"])
            assert report["violations"] == [] and report["failures"] == []


@pytest.mark.parametrize(
    ("app", "label", "rule", "case"),
    [
        pytest.param(
            "agent_stages", "POST /api/v1/roadmaps/preview-stream",
            "openapi.invalid-input-accepted", "required body property 'goals' missing",
            id="missing-required-streamed-not-422",
        ),
        pytest.param(
            "llm_debug", "POST /api/debug/chat/raw", "openapi.invalid-input-response",
            "body.prompt: 12345 instead of a string", id="wrong-type-answered-500",
        ),
    ],
)  # fmt: skip
def test_openapi_when_invalid_requests_are_mishandled_then_each_break_is_reported(
    apps: dict[str, str], tmp_path: Path, app: str, label: str, rule: str, case: str
) -> None:
    rc, verdict = verdict_of(app, apps, tmp_path, "--operation", label)
    assert rc == 1
    (op,) = verdict["operations"]
    assert op["failures"] == []  # every valid request conformed: the finding is the negative
    bad = {c["case"]: c for c in op["invalid_inputs"] if not c["ok"]}
    assert case in bad, sorted(bad)
    assert bad[case]["violations"][0]["rule"] == rule
    assert bad[case]["curl"].startswith("curl -N ")


def test_openapi_when_document_says_ndjson_but_wire_says_json_then_content_type(
    apps: dict[str, str], tmp_path: Path
) -> None:
    rc, verdict = verdict_of("ndjson", apps, tmp_path, "--operation", "pull")
    assert rc == 1
    (op,) = verdict["operations"]
    assert op["failures"][0]["violations"][0]["rule"] == "openapi.content-type"


def test_openapi_when_a_failure_is_found_then_its_reproducer_reproduces_it(
    apps: dict[str, str], tmp_path: Path
) -> None:
    _, verdict = verdict_of("token_stream", apps, tmp_path, "--operation", "streamTokens")
    (op,) = verdict["operations"]
    replay = subprocess.run(
        [str(EXE), *shlex.split(op["reproducer"])[1:], "--format", "json", "--no-report"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert replay.returncode == 1, replay.stderr
    rules = [v["rule"] for v in json.loads(replay.stdout)["violations"]]
    assert "http.incomplete-body" in rules


# -- what is run, and how it is named -----------------------------------------------------------


def test_openapi_when_nothing_is_named_then_the_streaming_operations_and_the_rest_skipped(
    apps: dict[str, str], tmp_path: Path
) -> None:
    """The JSON-documented app streams only ``transcribe``, whose audio body cannot be made:
    skipped with the reason, and a run that tested nothing does not pass."""
    rc, verdict = verdict_of("json_documented", apps, tmp_path)
    assert_shape(verdict)
    assert rc == 1 and verdict["ok"] is False and verdict["operations"] == []
    (skipped,) = verdict["skipped"]
    assert skipped["operation"] == "POST /v1/transcribe"
    assert "application/octet-stream" in skipped["reason"]


def test_openapi_when_correct_operation_then_exit_0_with_100_examples_in_seconds(
    apps: dict[str, str], tmp_path: Path
) -> None:
    """The whole process -- start-up, the document, 100 requests, the negative tests -- for a
    correct operation: a few seconds (5 s on an idle machine; CI's margin on a busy one)."""
    rc, out, err, took = run_cli(
        spec_url(apps["llm_debug"]), "--operation", "summarize", "--no-database",
        "--no-report", "--format", "json", cwd=tmp_path,
    )  # fmt: skip
    assert rc == 0, err
    verdict = json.loads(out)
    (op,) = verdict["operations"]
    assert op["ok"] and op["examples"] >= 80 and op["invalid_inputs"]
    assert took < 30, took


def test_openapi_when_spec_is_a_yaml_file_then_base_url_and_method_path_select(
    apps: dict[str, str], tmp_path: Path
) -> None:
    spec = write_document("token_stream", tmp_path, "yaml")
    assert yaml.safe_load(spec.read_text())["openapi"].startswith("3.")
    rc, out, err, _ = run_cli(
        str(spec), "--base-url", apps["token_stream"], "--operation", "GET /stream/count",
        "--examples", "20", "--no-database", "--no-report", cwd=tmp_path,
    )  # fmt: skip
    assert rc == 0, out + err
    assert "GET /stream/count" in out and "GET /stream/quota" not in out


def test_openapi_when_text_format_then_minimal_request_and_replay_lines(
    apps: dict[str, str], tmp_path: Path
) -> None:
    rc, out, err, _ = run_cli(
        spec_url(apps["token_stream"]), "--operation", "quotaTokens", "--no-database", cwd=tmp_path
    )
    assert rc == 1, err
    assert "openapi.undocumented-status with minimal request" in out
    assert '"query": {"n": "21"}' in out
    assert "reproduce  stream-harness check " in out and "curl -N " in out
    # The report is written where it says.
    (line,) = [x for x in (out + err).splitlines() if x.startswith("report: ")]
    assert (tmp_path / line.removeprefix("report: ")).exists()


# -- bad input: one line, the right exit code -------------------------------------------------


def test_openapi_when_document_is_broken_then_exit_2_naming_the_pointer(
    apps: dict[str, str], tmp_path: Path
) -> None:
    spec = write_document("llm_debug", tmp_path)
    doc = json.loads(spec.read_text())
    body = doc["paths"]["/api/debug/chat"]["post"]["requestBody"]["content"]["application/json"]
    body["schema"] = {"$ref": "#/components/schemas/Nope"}
    spec.write_text(json.dumps(doc))
    rc, out, err, _ = run_cli(str(spec), "--base-url", apps["llm_debug"], cwd=tmp_path)
    assert rc == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("stream-harness: error: /paths/~1api~1debug~1chat/post/requestBody")
    assert "'#/components/schemas/Nope' points at nothing" in line


@pytest.mark.parametrize(
    ("args", "rc", "says"),
    [
        (("missing.yaml",), 2, "no such OpenAPI document: missing.yaml"),
        (("{spec}", "--operation", "noSuchOp"), 2, "noSuchOp"),
        (("{spec}", "--examples", "0"), 2, "--examples"),
        (("{spec}", "--base-url", "http://127.0.0.1:{closed}"), 3, "cannot reach"),
        (("http://127.0.0.1:{closed}/openapi.json",), 3, "cannot reach"),
    ],
)
def test_openapi_when_bad_input_then_one_line_and_the_exit_code(
    apps: dict[str, str], tmp_path: Path, args: tuple[str, ...], rc: int, says: str
) -> None:
    filled = [a.format(spec=spec_url(apps["token_stream"]), closed=closed_port()) for a in args]
    code, out, err, _ = run_cli(*filled, "--no-database", "--no-report", cwd=tmp_path)
    assert code == rc, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], err
    assert "Traceback" not in err
