"""Property-based conformance: strategies from manifest parameters, the buggy example's bugs
found and shrunk (in the worker and over HTTP), warnings, hangs, the database, invalid inputs."""

from __future__ import annotations

import json
import shlex
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import closed_port, serving
from hypothesis import given, settings
from jsonschema import Draft202012Validator
from manifest_gateway import ManifestGatewayApp

from harness._cli.main import main as cli_main
from harness._contracts.manifest import load_manifest
from harness._core.errors import TargetLoadError, TargetUnreachable, UsageError
from harness._core.options import CheckOptions
from harness._core.rules import CATALOG, Severity
from harness._proptest import (
    FunctionReport,
    ManifestResult,
    inputs_strategy,
    invalid_input_cases,
    json_text,
    run_manifest,
    strategy_for,
)
from harness._runners.gen import GeneratorWorker

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "examples" / "prefab-manifest.json"
GOOD = ROOT / "examples" / "prefab_good.py"
BUGGY = ROOT / "examples" / "prefab_buggy.py"
SEED = 20240611


@pytest.fixture(scope="module")
def worker() -> Iterator[GeneratorWorker]:
    with GeneratorWorker() as w:
        yield w


def function(result: ManifestResult, name: str) -> FunctionReport:
    return next(f for f in result.functions if f.name == name)


def failures(report: FunctionReport) -> dict[str, dict[str, Any]]:
    return {f.rule: f.inputs for f in report.failures}


# -- strategies -------------------------------------------------------------------------------

SCHEMAS: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "string", "minLength": 2, "maxLength": 5},
    {"type": "string", "maxLength": 0},
    {"type": "string", "pattern": "^[a-z]{1,4}-[0-9]$"},
    {"type": "integer"},
    {"type": "integer", "minimum": -3, "maximum": 7},
    {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 4},
    {"type": "integer", "multipleOf": 5, "minimum": 1},
    {"type": "number", "minimum": 0.5, "maximum": 2},
    {"type": "number", "exclusiveMinimum": 0},
    {"type": "boolean"},
    {"type": "string", "enum": ["a", "b"]},
    {"type": "array"},
    {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "maxItems": 3},
    {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 40},
    {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
    {"type": "array", "items": {"type": "boolean"}, "uniqueItems": True, "maxItems": 30},
    {"type": "object"},
    {
        "type": "object",
        "properties": {"role": {"enum": ["user", "system"]}, "n": {"type": "number"}},
        "required": ["role"],
        "additionalProperties": False,
    },
    {"type": ["string", "null"]},
    {"const": 3},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[json.dumps(s) for s in SCHEMAS])
def test_strategy_when_drawn_then_valid_against_its_schema(schema: dict[str, Any]) -> None:
    validator = Draft202012Validator(schema)

    @settings(max_examples=60, database=None)
    @given(strategy_for(schema))
    def valid(value: Any) -> None:
        assert validator.is_valid(value), value
        json.dumps(value, allow_nan=False)  # every value travels as JSON

    valid()


@pytest.mark.parametrize(
    ("schema", "condition"),
    [
        ({"type": "string"}, lambda s: any(ord(c) > 127 for c in s)),
        ({"type": "string"}, lambda s: s == ""),
        ({"type": "string"}, lambda s: s.count("\n") >= 2),
        ({"type": "string"}, lambda s: len(s.split()) >= 11),
        ({"type": "integer"}, lambda n: n == 0),
        ({"type": "integer"}, lambda n: n < 0),
        ({"type": "number"}, lambda x: x < 0),
        ({"type": "array"}, lambda xs: xs == []),
        ({"type": "array"}, lambda xs: len(xs) >= 30),
        ({"type": "array", "maxItems": 100}, lambda xs: len(xs) >= 30),
    ],
)
def test_strategy_when_drawn_100_times_then_hostile_values_among_them(
    schema: dict[str, Any], condition: Any
) -> None:
    hits: list[bool] = []

    @settings(max_examples=100, database=None)
    @given(strategy_for(schema))
    def draw(value: Any) -> None:
        hits.append(bool(condition(value)))

    draw()
    assert any(hits), f"none of {len(hits)} values qualified"


def test_inputs_when_parameter_optional_then_sometimes_omitted() -> None:
    manifest, _ = load_manifest(MANIFEST)
    assert manifest is not None
    spec = manifest.function("process_lines")
    assert spec is not None
    strategy = inputs_strategy(spec)
    seen: set[frozenset[str]] = set()

    @settings(max_examples=80, database=None)
    @given(strategy)
    def record(inputs: dict[str, Any]) -> None:
        assert "text" in inputs
        seen.add(frozenset(inputs))

    record()
    assert seen == {frozenset({"text"}), frozenset({"text", "start"})}


def test_invalid_input_cases_when_built_then_each_breaks_the_schema() -> None:
    manifest, _ = load_manifest(MANIFEST)
    assert manifest is not None
    for spec in manifest.functions:
        validator = Draft202012Validator(spec.inputs_schema())
        cases = invalid_input_cases(spec)
        assert len(cases) == sum(p.required for p in spec.parameters) + len(spec.parameters)
        for description, inputs in cases:
            assert not validator.is_valid(inputs), description
    process = manifest.function("process_lines")
    assert process is not None
    assert invalid_input_cases(process)[0] == ("the required parameter 'text' missing", {})


def test_json_text_when_non_printable_then_escaped_and_equal() -> None:
    value = {"t": "héllo\x80\u200d日本😀\U000e0001", "n": [1, None]}
    text = json_text(value)
    assert json.loads(text) == value
    assert "héllo" in text and "日本😀" in text
    assert "\\u0080" in text and "\\u200d" in text and "\\udb40\\udc01" in text
    assert text.isprintable()


# -- the buggy example, in the worker ---------------------------------------------------------


@pytest.fixture(scope="module")
def buggy(worker: GeneratorWorker) -> ManifestResult:
    # The default 100 examples; a fixed seed keeps the test deterministic.
    return run_manifest(
        MANIFEST, CheckOptions(), module=str(BUGGY), seed=SEED, database=None, worker=worker
    )


def test_buggy_when_property_tested_then_manifest_is_clean_but_functions_fail(
    buggy: ManifestResult,
) -> None:
    assert buggy.violations == []
    assert not buggy.ok
    assert [f.name for f in buggy.functions] == ["batch_process", "chat_stream", "process_lines"]
    assert all(not f.ok for f in buggy.functions)
    for f in buggy.functions:
        assert f.examples > 0
        assert f.failures and all(fail.shrunk for fail in f.failures)


def test_buggy_batch_when_empty_list_then_gen_raised_shrunk_to_empty(
    buggy: ManifestResult,
) -> None:
    found = failures(function(buggy, "batch_process"))
    assert found["gen.raised"] == {"items": []}
    report = function(buggy, "batch_process")
    raised = next(f for f in report.failures if f.rule == "gen.raised")
    assert "ZeroDivisionError" in raised.errors[0].message


def test_buggy_batch_when_odd_length_then_overshoot_shrunk_to_one_item(
    buggy: ManifestResult,
) -> None:
    found = failures(function(buggy, "batch_process"))
    # One item of any kind: batch 1 of size 2 reports current 2 of total 1, 200 %.
    assert found["progress.bounds"] == {"items": [None]}
    report = function(buggy, "batch_process")
    overshoot = next(f for f in report.failures if f.rule == "progress.bounds")
    assert {v.rule for v in overshoot.errors} == {"progress.bounds", "progress.current-le-total"}


def test_buggy_process_lines_when_negative_start_then_shrunk_to_minus_one(
    buggy: ManifestResult,
) -> None:
    found = failures(function(buggy, "process_lines"))
    assert found["progress.bounds"] == {"text": "0", "start": -1}


def test_buggy_process_lines_when_non_ascii_then_missing_done_shrunk_to_one_char(
    buggy: ManifestResult,
) -> None:
    text = failures(function(buggy, "process_lines"))["seq.terminal"]
    assert set(text) == {"text"}  # start omitted: it plays no part
    assert len(text["text"]) == 1 and ord(text["text"]) > 127


def test_buggy_chat_when_long_message_then_datetime_found_and_shrunk(
    buggy: ManifestResult,
) -> None:
    found = failures(function(buggy, "chat_stream"))
    messages = found["gen.not-serializable"]["messages"]
    assert set(found["gen.not-serializable"]) == {"messages"}
    assert len(messages) == 1 and messages[0]["role"] == "user"
    # MAX_REPLY_TOKENS is 12 and the reply starts "You said:": 11 words is the shortest.
    assert len(messages[0]["content"].split()) == 11
    assert len(messages[0]["content"]) == 21
    assert found["seq.first"] == {"messages": []}  # no user message: error before start


def test_buggy_when_reproducer_run_then_it_fails_the_same_way(buggy: ManifestResult) -> None:
    report = function(buggy, "process_lines")
    failure = next(f for f in report.failures if f.rule == "progress.bounds")
    argv = shlex.split(failure.reproducer)
    assert argv[:3] == ["stream-harness", "check", f"{BUGGY}:process_lines"]
    assert argv[3] == "--inputs" and json.loads(argv[4]) == failure.inputs
    assert failure.curl is None  # no HTTP here
    assert cli_main([*argv[1:], "--format", "json", "--no-report"]) == 1


def test_buggy_when_to_json_then_the_public_shape(buggy: ManifestResult) -> None:
    doc = json.loads(json.dumps(buggy.to_json()))
    assert set(doc) == {"ok", "violations", "functions"}
    assert doc["ok"] is False and doc["violations"] == []
    for f in doc["functions"]:
        assert {"name", "ok", "examples", "violations", "minimal_inputs"} <= set(f)
        assert f["ok"] is False and isinstance(f["examples"], int)
        assert f["minimal_inputs"] == f["failures"][0]["minimal_inputs"]
        assert f["reproducer"].startswith("stream-harness check ")
        assert all(v["severity"] == "error" for v in f["violations"])
    batch = doc["functions"][0]
    assert batch["minimal_inputs"] == {"items": []}


# -- the good example -------------------------------------------------------------------------


def test_good_when_property_tested_then_everything_conforms_quickly(
    worker: GeneratorWorker,
) -> None:
    started = time.monotonic()
    result = run_manifest(
        MANIFEST, CheckOptions(), module=str(GOOD), seed=SEED, database=None, worker=worker
    )
    elapsed = time.monotonic() - started
    assert result.ok, [(f.name, [v.message for v in f.violations]) for f in result.functions]
    assert all(f.ok and f.failures == [] and f.minimal_inputs is None for f in result.functions)
    assert all(f.examples >= 50 for f in result.functions)  # distinct inputs actually run
    assert elapsed < 60  # a few seconds normally; generous for a loaded CI machine


# -- warnings, hangs, load errors, the database -----------------------------------------------


def write_prefab(tmp_path: Path, source: str, functions: list[dict[str, Any]]) -> tuple[Path, Path]:
    module = tmp_path / "prefab_under_test.py"
    module.write_text(textwrap.dedent(source), encoding="utf-8")
    manifest = tmp_path / "prefab-manifest.json"
    manifest.write_text(json.dumps({"functions": functions}), encoding="utf-8")
    return manifest, module


def test_warning_when_found_then_reported_as_warning_and_function_ok(
    tmp_path: Path, worker: GeneratorWorker
) -> None:
    manifest, module = write_prefab(
        tmp_path,
        """
        def wobbles(n: int):
            yield {"type": "start"}
            yield {"type": "progress", "data": {"current": 2, "total": 3}}
            if n < 0:
                yield {"type": "progress", "data": {"current": 1, "total": 3}}
            yield {"type": "done"}
        """,
        [
            {
                "name": "wobbles",
                "streaming": True,
                "parameters": [{"name": "n", "type": "integer", "required": True}],
            }
        ],
    )
    result = run_manifest(
        manifest, CheckOptions(), module=str(module), max_examples=40, database=None, worker=worker
    )
    report = function(result, "wobbles")
    assert result.ok and report.ok and report.failures == []
    assert [v.rule for v in report.warnings] == ["progress.monotonic"]
    assert report.warnings[0].severity is Severity.WARNING
    assert 'first with inputs {"n": -' in report.warnings[0].message
    assert report.to_json()["violations"][0]["severity"] == "warning"


def test_hang_when_some_input_hangs_then_one_timeout_not_one_per_example(
    tmp_path: Path, worker: GeneratorWorker
) -> None:
    manifest, module = write_prefab(
        tmp_path,
        """
        import time

        def sometimes_hangs(flag: bool):
            yield {"type": "start"}
            if flag:
                time.sleep(60)
            yield {"type": "done"}
        """,
        [
            {
                "name": "sometimes_hangs",
                "streaming": True,
                "parameters": [{"name": "flag", "type": "boolean", "required": True}],
            }
        ],
    )
    options = CheckOptions(idle_timeout=0.3, first_byte_timeout=0.3, total_timeout=5)
    started = time.monotonic()
    result = run_manifest(
        manifest, options, module=str(module), max_examples=50, database=None, worker=worker
    )
    assert time.monotonic() - started < 10
    report = function(result, "sometimes_hangs")
    assert [f.rule for f in report.failures] == ["gen.timeout"]
    assert report.failures[0].inputs == {"flag": True}
    # Shrinking it may cost a few more hangs (SLOW_SHRINK_BUDGET), never one per example.
    assert report.failures[0].shrunk is True


def test_flaky_when_function_is_nondeterministic_then_reported_not_crashed(
    tmp_path: Path, worker: GeneratorWorker
) -> None:
    manifest, module = write_prefab(
        tmp_path,
        """
        import random

        def coin(text: str):
            yield {"type": "start"}
            if random.random() < 0.3:
                raise RuntimeError("unlucky")
            yield {"type": "done"}
        """,
        [
            {
                "name": "coin",
                "streaming": True,
                "parameters": [{"name": "text", "type": "string", "required": True}],
            }
        ],
    )
    result = run_manifest(
        manifest, CheckOptions(), module=str(module), max_examples=60, database=None, worker=worker
    )
    report = function(result, "coin")
    assert [f.rule for f in report.failures] == ["gen.raised"]


def test_database_when_failure_found_then_replayed_first_next_time(
    tmp_path: Path, worker: GeneratorWorker
) -> None:
    manifest, module = write_prefab(
        tmp_path,
        """
        def picky(n: int):
            yield {"type": "start"}
            if 1000 <= n <= 1200:
                raise ValueError(n)
            yield {"type": "done"}
        """,
        [
            {
                "name": "picky",
                "streaming": True,
                "parameters": [{"name": "n", "type": "integer", "required": True}],
            }
        ],
    )
    database = tmp_path / ".hypothesis"
    kwargs: dict[str, Any] = {"module": str(module), "database": database, "worker": worker}
    first = run_manifest(manifest, CheckOptions(), max_examples=300, seed=1, **kwargs)
    assert failures(function(first, "picky")) == {"gen.raised": {"n": 1000}}
    assert database.is_dir()
    # One generated example could not find it again; the database replays it first.
    again = run_manifest(manifest, CheckOptions(), max_examples=1, seed=2, **kwargs)
    assert failures(function(again, "picky")) == {"gen.raised": {"n": 1000}}
    fresh = run_manifest(
        manifest, CheckOptions(), max_examples=1, seed=2, module=str(module), database=None
    )
    assert function(fresh, "picky").ok


def test_skipped_when_manifest_finding_then_function_not_tested(
    tmp_path: Path, worker: GeneratorWorker
) -> None:
    manifest, module = write_prefab(
        tmp_path,
        """
        def needs(a, b):
            yield {"type": "start"}
            yield {"type": "done"}
        """,
        [
            {
                "name": "needs",
                "streaming": True,
                "parameters": [{"name": "a", "type": "string", "required": True}],
            }
        ],
    )
    result = run_manifest(manifest, CheckOptions(), module=str(module), worker=worker)
    assert [v.rule for v in result.violations] == ["manifest.signature"]
    report = function(result, "needs")
    assert not report.ok and report.examples == 0
    assert report.skipped is not None and "manifest.signature" in report.skipped
    assert not result.ok


def test_invalid_manifest_when_run_then_only_manifest_violations(tmp_path: Path) -> None:
    path = tmp_path / "prefab-manifest.json"
    path.write_text('{"functions": [] // none yet\n}', encoding="utf-8")
    result = run_manifest(path, CheckOptions(), module=str(GOOD))
    assert [v.rule for v in result.violations] == ["manifest.invalid-json"]
    assert result.functions == [] and not result.ok


def test_run_when_module_cannot_load_then_target_load_error(tmp_path: Path) -> None:
    manifest, module = write_prefab(tmp_path, "raise ImportError('nope')\n", [{"name": "f"}])
    with pytest.raises(TargetLoadError, match="nope"):
        run_manifest(manifest, CheckOptions(), module=str(module))


def test_run_when_arguments_wrong_then_usage_error() -> None:
    with pytest.raises(UsageError, match="--module"):
        run_manifest(MANIFEST, CheckOptions())
    with pytest.raises(UsageError, match="not in the manifest"):
        run_manifest(MANIFEST, CheckOptions(), module=str(GOOD), functions=["nope"])
    with pytest.raises(UsageError, match="unknown contract"):
        run_manifest(MANIFEST, CheckOptions(contract="nope"), module=str(GOOD))


def test_invalid_input_rules_are_catalogued() -> None:
    for rule_id in ("manifest.invalid-input-accepted", "manifest.invalid-input-response"):
        assert CATALOG[rule_id].severity is Severity.ERROR and CATALOG[rule_id].explanation


# -- over HTTP --------------------------------------------------------------------------------


def manifest_value() -> Any:
    manifest, _ = load_manifest(MANIFEST)
    assert manifest is not None
    return manifest


def test_http_when_good_gateway_then_conforms_and_invalid_inputs_rejected() -> None:
    app = ManifestGatewayApp(manifest_value(), GOOD)
    with serving(app) as base:
        result = run_manifest(
            MANIFEST, CheckOptions(), url=base, max_examples=25, seed=SEED, database=None
        )
    assert result.ok, [(f.name, [v.message for v in f.violations]) for f in result.functions]
    for report in result.functions:
        # Distinct inputs run: Hypothesis repeats values, and fewer distinct ones were seen on
        # a loaded machine (16 of 25); a floor that still proves the functions were driven.
        assert report.examples >= 10
        assert report.invalid_inputs and all(
            c.ok and c.status == 422 for c in report.invalid_inputs
        )
    names = {r["name"] for r in app.requests}
    assert names == {"batch_process", "chat_stream", "process_lines"}


def test_http_when_buggy_gateway_then_bugs_found_with_curl_and_secrets_redacted() -> None:
    app = ManifestGatewayApp(manifest_value(), BUGGY)
    options = CheckOptions(headers=(("Authorization", "Bearer sekret-token-123"),))
    with serving(app) as base:
        result = run_manifest(
            MANIFEST,
            options,
            url=base,
            seed=SEED,
            database=None,
            functions=["batch_process"],
            invalid_inputs=False,
        )
    assert app.requests[0]["headers"]["authorization"] == "Bearer sekret-token-123"
    report = function(result, "batch_process")
    assert report.minimal_inputs == {"items": []}
    failure = report.failures[0]
    assert failure.curl is not None
    argv = shlex.split(failure.curl)
    assert argv[:5] == ["curl", "-N", "-X", "POST", f"{base}/invoke/batch_process"]
    assert argv[5:7] == ["-H", "Content-Type: application/json"]
    assert argv[7:9] == ["-H", "Authorization: [REDACTED]"]
    assert argv[9] == "-d" and json.loads(argv[10]) == {"inputs": {"items": []}}
    check = shlex.split(failure.reproducer)
    assert check[:3] == ["stream-harness", "check", f"{base}/invoke/batch_process"]
    assert "Authorization: [REDACTED]" in check
    assert "sekret" not in json.dumps(result.to_json())


def test_http_when_gateway_does_not_validate_then_5xx_and_accepted_inputs_found() -> None:
    app = ManifestGatewayApp(manifest_value(), GOOD, on_invalid="none")
    with serving(app) as base:
        result = run_manifest(
            MANIFEST, CheckOptions(), url=base, max_examples=5, seed=SEED, database=None
        )
    assert not result.ok
    chat = function(result, "chat_stream")
    cases = {c.case: c for c in chat.invalid_inputs}
    missing = cases["the required parameter 'messages' missing"]
    assert missing.status == 500 and [v.rule for v in missing.violations] == ["http.status"]
    assert missing.violations[0].message.startswith("invalid inputs (the required parameter")
    accepted = cases["'model' an integer instead of a string"]
    assert [v.rule for v in accepted.violations] == ["manifest.invalid-input-accepted"]
    assert 'the stream ended with "done"' in accepted.violations[0].message
    # The good functions turn a wrong type into an error event: a fine answer.
    assert cases["'messages' a string instead of an array"].ok
    assert chat.failures == [] and not chat.ok
    assert any(v.rule == "http.status" for v in chat.violations)


def test_http_when_gateway_rejects_without_json_then_invalid_input_response() -> None:
    app = ManifestGatewayApp(manifest_value(), GOOD, on_invalid="400-text")
    with serving(app) as base:
        result = run_manifest(
            MANIFEST,
            CheckOptions(),
            url=base,
            max_examples=3,
            database=None,
            functions=["batch_process"],
        )
    cases = function(result, "batch_process").invalid_inputs
    assert {c.status for c in cases} == {400}
    assert all([v.rule for v in c.violations] == ["manifest.invalid-input-response"] for c in cases)
    assert "'bad request'" in cases[0].violations[0].message


def test_http_when_unreachable_then_target_unreachable() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(TargetUnreachable):
        run_manifest(MANIFEST, CheckOptions(), url=url, max_examples=5, database=None)


def test_http_when_url_has_name_placeholder_then_used_as_template() -> None:
    app = ManifestGatewayApp(manifest_value(), GOOD)
    with serving(app) as base:
        result = run_manifest(
            MANIFEST,
            CheckOptions(),
            url=f"{base}/invoke/{{name}}?x=1",
            max_examples=3,
            database=None,
            functions=["process_lines"],
            invalid_inputs=False,
        )
    assert result.ok and function(result, "process_lines").examples >= 1


def test_http_when_reference_gateway_then_good_conforms_and_buggy_fails() -> None:
    gateway = pytest.importorskip("harness._gateway.server")
    manifest = manifest_value()
    with serving(gateway.build_app(manifest, str(GOOD))) as base:
        good = run_manifest(
            MANIFEST, CheckOptions(), url=base, max_examples=10, seed=SEED, database=None
        )
    assert good.ok, [(f.name, [v.message for v in f.violations]) for f in good.functions]
    assert all(c.ok for f in good.functions for c in f.invalid_inputs)
    with serving(gateway.build_app(manifest, str(BUGGY))) as base:
        buggy = run_manifest(
            MANIFEST,
            CheckOptions(),
            url=base,
            max_examples=40,
            seed=SEED,
            database=None,
            functions=["batch_process", "process_lines"],
            invalid_inputs=False,
        )
    assert not buggy.ok
    assert function(buggy, "batch_process").minimal_inputs == {"items": []}
    assert {"text": "0", "start": -1} in [
        f.inputs for f in function(buggy, "process_lines").failures
    ]


# -- robustness over seeds (slow) -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8))
def test_buggy_when_any_seed_then_every_planted_bug_found(
    seed: int, worker: GeneratorWorker
) -> None:
    result = run_manifest(
        MANIFEST, CheckOptions(), module=str(BUGGY), seed=seed, database=None, worker=worker
    )
    assert {"gen.raised", "progress.bounds"} <= set(failures(function(result, "batch_process")))
    assert {"gen.not-serializable", "seq.first"} <= set(failures(function(result, "chat_stream")))
    assert {"progress.bounds", "seq.terminal"} <= set(failures(function(result, "process_lines")))
    assert failures(function(result, "batch_process"))["gen.raised"] == {"items": []}


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "nullable": True, "minLength": 2},
        {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                   {"properties": {"b": {"enum": ["x"]}}, "required": ["b"]}]},
        {"oneOf": [{"type": "integer", "minimum": 3}, {"type": "string", "format": "uuid"}]},
        {"anyOf": [{"type": "null"}, {"type": "string", "format": "date-time"}]},
        {"type": "string", "format": "email"},
    ],
)  # fmt: skip
def test_strategy_for_when_openapi_keywords_then_every_value_is_valid(
    schema: dict[str, Any],
) -> None:
    from jsonschema import Draft202012Validator, FormatChecker

    plain = {k: v for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable"):
        plain = {"anyOf": [{"type": "null"}, plain]}
    validator = Draft202012Validator(plain, format_checker=FormatChecker())
    seen: list[Any] = []

    @settings(max_examples=40, database=None, deadline=None)
    @given(strategy_for(schema))
    def valid(value: Any) -> None:
        seen.append(value)
        assert validator.is_valid(value), value

    valid()
    assert len({json.dumps(v, default=str) for v in seen}) > 3
