"""The manifest: loading (manifest.invalid-json, manifest.schema), and matching it to a module's
functions (manifest.missing-function, manifest.signature, manifest.streaming-flag), with the
module inspected in a real worker process."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from harness._contracts.manifest import (
    FunctionInfo,
    Manifest,
    ParamInfo,
    load_manifest,
    match_functions,
)
from harness._core.errors import TargetLoadError, UsageError
from harness._core.rules import CATALOG, Severity
from harness._runners.gen import GeneratorWorker

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_MANIFEST = ROOT / "examples" / "prefab-manifest.json"
GUIDE = Path("/work/shared/seeds/000_1a8e2077075bdd67.txt")

#: The manifest sample of the prefab guide, verbatim (with its // comment).
GUIDE_SAMPLE = """\
{
  "functions": [
    {
      "name": "my_stream_function",
      "streaming": true,  // 👈 关键配置
      "description": "流式处理示例",
      "parameters": [
        {
          "name": "param",
          "type": "string",
          "required": true
        }
      ],
      "returns": {
        "type": "object",
        "description": "SSE 事件流"
      }
    }
  ]
}
"""


@pytest.fixture(scope="module")
def worker() -> Iterator[GeneratorWorker]:
    with GeneratorWorker() as w:
        yield w


def write(tmp_path: Path, text: str, name: str = "prefab-manifest.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def manifest_of(tmp_path: Path, functions: list[dict[str, Any]]) -> Path:
    return write(tmp_path, json.dumps({"functions": functions}))


def rules(violations: list[Any]) -> list[str]:
    return [v.rule for v in violations]


# -- manifest.invalid-json --------------------------------------------------------------------


def test_guide_sample_is_the_one_in_the_guide() -> None:
    if not GUIDE.exists():
        pytest.skip("the guide is not on this machine")
    assert GUIDE_SAMPLE.strip() in GUIDE.read_text(encoding="utf-8")


def test_load_when_guide_sample_has_a_comment_then_invalid_json_with_line_and_column(
    tmp_path: Path,
) -> None:
    manifest, found = load_manifest(write(tmp_path, GUIDE_SAMPLE))
    assert manifest is None
    assert rules(found) == ["manifest.invalid-json"]
    message = found[0].message
    assert "line 5, column 27" in message
    assert "JSON has no comments" in message
    assert "'//'" in message


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        ('{"functions": [] /* note */}', "line 1, column 18", "JSON has no comments"),
        ('{"functions": [1, 2,]}', "line 1, column 21", "trailing comma"),
        ('{"functions": [{"name": "f", "streaming": True}]}', "line 1, column 43", "true, false"),
        ("{'functions': []}", "line 1, column 2", "double quotes"),
        ('{\n  "functions": [\n', "line 3, column 1", ""),
    ],
)
def test_load_when_not_json_then_invalid_json_says_where_and_why(
    tmp_path: Path, text: str, where: str, hint: str
) -> None:
    manifest, found = load_manifest(write(tmp_path, text))
    assert manifest is None
    assert rules(found) == ["manifest.invalid-json"]
    assert where in found[0].message
    assert hint in found[0].message


def test_load_when_not_utf8_then_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(b'{"functions": [{"name": "\xff"}]}')
    _, found = load_manifest(path)
    assert rules(found) == ["manifest.invalid-json"]
    assert "not UTF-8" in found[0].message and "column 26" in found[0].message


def test_load_when_utf8_bom_then_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(b'\xef\xbb\xbf{"functions": []}')
    manifest, found = load_manifest(path)
    assert found == [] and manifest is not None


def test_load_when_file_missing_then_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such manifest file"):
        load_manifest(tmp_path / "nope.json")


def test_load_when_directory_then_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        load_manifest(tmp_path)


# -- manifest.schema --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({}, "'functions' is a required property"),
        ({"functions": {}}, "is not of type 'array'"),
        ({"functions": [{"streaming": True}]}, "'name' is a required property"),
        ({"functions": [{"name": "my-fn"}]}, "does not match"),
        ({"functions": [{"name": "f", "streaming": "yes"}]}, "is not of type 'boolean'"),
        (
            {"functions": [{"name": "f", "parameters": [{"name": "p", "type": "str"}]}]},
            "did you mean 'string'?",
        ),
        (
            {"functions": [{"name": "f", "parameters": [{"name": "p"}]}]},
            "'type' is a required property",
        ),
        (
            {
                "functions": [
                    {"name": "f", "parameters": [{"name": "p", "type": "string", "maxlength": 3}]}
                ]
            },
            "unknown key 'maxlength' (did you mean 'maxLength'?)",
        ),
        (
            {"functions": [{"name": "f"}, {"name": "f"}]},
            "two functions are named 'f'",
        ),
        (
            {
                "functions": [
                    {
                        "name": "f",
                        "parameters": [
                            {"name": "p", "type": "string"},
                            {"name": "p", "type": "integer"},
                        ],
                    }
                ]
            },
            "two parameters are named 'p'",
        ),
        (
            {
                "functions": [
                    {"name": "f", "parameters": [{"name": "n", "type": "integer", "default": "1"}]}
                ]
            },
            'the default "1" is not a valid integer',
        ),
        (
            {
                "functions": [
                    {"name": "f", "parameters": [{"name": "m", "type": "string", "enum": ["a", 2]}]}
                ]
            },
            "enum values [2] are not valid string values",
        ),
        (
            {
                "functions": [
                    {"name": "f", "parameters": [{"name": "m", "type": "string", "pattern": "("}]}
                ]
            },
            "is not a regular expression",
        ),
        (
            {
                "functions": [
                    {
                        "name": "f",
                        "parameters": [
                            {"name": "n", "type": "integer", "minimum": 5, "maximum": 1}
                        ],
                    }
                ]
            },
            "minimum 5 is greater than maximum 1",
        ),
    ],
)
def test_load_when_manifest_breaks_schema_then_manifest_schema_says_where(
    tmp_path: Path, doc: dict[str, Any], expected: str
) -> None:
    manifest, found = load_manifest(write(tmp_path, json.dumps(doc)))
    assert manifest is None
    assert set(rules(found)) == {"manifest.schema"}
    assert any(expected in v.message for v in found), [v.message for v in found]
    assert all(v.message.startswith("manifest") for v in found)


def test_load_when_many_problems_then_at_most_ten_and_a_count(tmp_path: Path) -> None:
    doc = {"functions": [{"name": "f", "parameters": [{"name": f"p{i}"} for i in range(15)]}]}
    _, found = load_manifest(write(tmp_path, json.dumps(doc)))
    assert len(found) == 11
    assert "5 more problems not shown" in found[-1].message


def test_load_when_example_manifest_then_clean_and_complete() -> None:
    manifest, found = load_manifest(EXAMPLE_MANIFEST)
    assert found == []
    assert manifest is not None
    assert [f.name for f in manifest.functions] == [
        "batch_process",
        "chat_stream",
        "process_lines",
    ]
    assert all(f.streaming for f in manifest.functions)
    process = manifest.function("process_lines")
    assert process is not None
    start = process.parameter("start")
    assert start is not None and not start.required and start.has_default
    assert start.schema["type"] == "integer" and start.schema["default"] == 1
    assert "name" not in start.schema and "required" not in start.schema
    assert manifest.function("nope") is None


def test_inputs_schema_when_built_then_valid_2020_12_and_strict() -> None:
    manifest, _ = load_manifest(EXAMPLE_MANIFEST)
    assert manifest is not None
    chat = manifest.function("chat_stream")
    assert chat is not None
    schema = chat.inputs_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["messages"]
    assert schema["additionalProperties"] is False
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"messages": [{"role": "user", "content": "hi"}]})
    assert not validator.is_valid({"messages": [{"role": "robot", "content": "hi"}]})
    assert not validator.is_valid({"model": "m"})
    assert not validator.is_valid({"messages": [], "extra": 1})


def test_load_when_required_is_omitted_then_parameter_is_optional(tmp_path: Path) -> None:
    path = manifest_of(tmp_path, [{"name": "f", "parameters": [{"name": "p", "type": "string"}]}])
    manifest, found = load_manifest(path)
    assert found == [] and manifest is not None
    spec = manifest.function("f")
    assert spec is not None and not spec.streaming and spec.parameters[0].required is False


def test_load_when_unknown_keys_on_functions_and_top_then_allowed(tmp_path: Path) -> None:
    doc = {"name": "my-prefab", "version": "1.0", "functions": [{"name": "f", "timeout": 30}]}
    manifest, found = load_manifest(write(tmp_path, json.dumps(doc)))
    assert found == [] and manifest is not None


# -- matching: pure ---------------------------------------------------------------------------


def spec_manifest(tmp_path: Path, functions: list[dict[str, Any]]) -> Manifest:
    manifest, found = load_manifest(manifest_of(tmp_path, functions))
    assert found == [] and manifest is not None
    return manifest


def gen_info(name: str, *params: ParamInfo, kind: str = "generator") -> FunctionInfo:
    return FunctionInfo(name, kind, tuple(params))


def p(name: str, kind: str = "POSITIONAL_OR_KEYWORD", default: bool = False) -> ParamInfo:
    return ParamInfo(name, kind, default, "1" if default else None)


def test_match_when_manifest_fits_then_no_findings_and_testable(tmp_path: Path) -> None:
    m = spec_manifest(
        tmp_path,
        [
            {
                "name": "f",
                "streaming": True,
                "parameters": [
                    {"name": "a", "type": "string", "required": True},
                    {"name": "b", "type": "integer"},
                ],
            }
        ],
    )
    out = match_functions(m, "mod.py", {"f": gen_info("f", p("a"), p("b", default=True))})
    assert out.violations == [] and out.testable == ["f"] and out.skipped == {}


def test_match_when_function_missing_then_missing_function_with_suggestion(
    tmp_path: Path,
) -> None:
    m = spec_manifest(tmp_path, [{"name": "batch_proces", "streaming": True}])
    out = match_functions(m, "mod.py", {"batch_proces": None}, ["batch_process", "chat"])
    assert rules(out.violations) == ["manifest.missing-function"]
    assert "did you mean 'batch_process'?" in out.violations[0].message
    assert out.testable == [] and "manifest.missing-function" in out.skipped["batch_proces"]


@pytest.mark.parametrize(
    ("params", "declared", "expected"),
    [
        (
            [p("a")],
            [{"name": "a", "type": "string", "required": True}, {"name": "b", "type": "string"}],
            "no such parameter",
        ),
        ([p("a")], [], "requires 'a' (it has no default), but the manifest does not declare it"),
        ([p("a")], [{"name": "a", "type": "string"}], "but the manifest marks it optional"),
        ([p("a", "KEYWORD_ONLY")], [{"name": "a", "type": "string"}], "marks it optional"),
        (
            [p("a", "POSITIONAL_ONLY")],
            [{"name": "a", "type": "string", "required": True}],
            "positional-only",
        ),
    ],
)
def test_match_when_parameters_disagree_then_manifest_signature(
    tmp_path: Path, params: list[ParamInfo], declared: list[dict[str, Any]], expected: str
) -> None:
    m = spec_manifest(tmp_path, [{"name": "f", "streaming": True, "parameters": declared}])
    out = match_functions(m, "mod.py", {"f": gen_info("f", *params)})
    assert rules(out.violations) == ["manifest.signature"]
    assert expected in out.violations[0].message
    assert out.testable == []


def test_match_when_function_takes_kwargs_then_any_declared_parameter_fits(
    tmp_path: Path,
) -> None:
    declared = [{"name": "anything", "type": "string", "required": True}]
    m = spec_manifest(tmp_path, [{"name": "f", "streaming": True, "parameters": declared}])
    out = match_functions(m, "mod.py", {"f": gen_info("f", p("kw", "VAR_KEYWORD"))})
    assert out.violations == []


def test_match_when_required_in_manifest_but_defaulted_in_function_then_fine(
    tmp_path: Path,
) -> None:
    declared = [{"name": "a", "type": "string", "required": True}]
    m = spec_manifest(tmp_path, [{"name": "f", "streaming": True, "parameters": declared}])
    out = match_functions(
        m, "mod.py", {"f": gen_info("f", p("a", default=True), p("args", "VAR_POSITIONAL"))}
    )
    assert out.violations == []


@pytest.mark.parametrize(
    ("streaming", "kind", "expected"),
    [
        (False, "generator", "is a generator function, but the manifest does not mark it"),
        (False, "async-generator", "is an async generator"),
        (True, "function", 'is marked "streaming": true but is an ordinary function'),
        (True, "coroutine", "an async def without yield"),
        (True, "class", "is a class"),
    ],
)
def test_match_when_streaming_flag_wrong_then_streaming_flag(
    tmp_path: Path, streaming: bool, kind: str, expected: str
) -> None:
    m = spec_manifest(tmp_path, [{"name": "f", "streaming": streaming}])
    out = match_functions(m, "mod.py", {"f": gen_info("f", kind=kind)})
    assert rules(out.violations) == ["manifest.streaming-flag"]
    assert expected in out.violations[0].message


@pytest.mark.parametrize(
    ("streaming", "kind"),
    [
        (True, "generator"),
        (True, "async-generator"),
        (True, "iterator"),
        (False, "function"),
        (False, "coroutine"),
        (False, "iterator"),
    ],
)
def test_match_when_streaming_flag_fits_then_no_finding(
    tmp_path: Path, streaming: bool, kind: str
) -> None:
    m = spec_manifest(tmp_path, [{"name": "f", "streaming": streaming}])
    out = match_functions(m, "mod.py", {"f": gen_info("f", kind=kind)})
    assert out.violations == []
    assert out.testable == (["f"] if streaming else [])


def test_match_rules_are_catalogued_as_errors() -> None:
    for rule_id in (
        "manifest.invalid-json",
        "manifest.schema",
        "manifest.missing-function",
        "manifest.signature",
        "manifest.streaming-flag",
    ):
        assert CATALOG[rule_id].severity is Severity.ERROR
        assert CATALOG[rule_id].explanation


# -- the worker inspects a real module --------------------------------------------------------

MODULE = textwrap.dedent(
    """
    import functools
    from collections.abc import AsyncIterator, Iterator
    from typing import Any

    def gen(a: str, b: int = 2) -> Iterator[dict[str, Any]]:
        yield {"type": "start"}

    async def agen(*, q: str) -> AsyncIterator[int]:
        yield 1

    def _wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            return fn(*args, **kwargs)
        return inner

    @_wrap
    def decorated(x: int):
        yield x

    def returns_iter(n: int) -> Iterator[int]:
        return iter(range(n))

    def plain(a, /, b, *args, c=3, **kw) -> dict:
        return {}

    async def coro() -> dict:
        return {}

    class Thing:
        def __init__(self, v: int) -> None:
            self.v = v

    NOT_CALLABLE = 3
    """
)


def test_inspect_when_module_has_each_kind_then_kinds_and_parameters(
    tmp_path: Path, worker: GeneratorWorker
) -> None:
    path = write(tmp_path, MODULE, "kinds_mod.py")
    names = ["gen", "agen", "decorated", "returns_iter", "plain", "coro", "Thing", "NOT_CALLABLE"]
    facts = worker.inspect(str(path), [*names, "absent"])
    f = facts.functions
    kinds = {n: (None if f[n] is None else f[n].kind) for n in f}  # type: ignore[union-attr]
    assert kinds == {
        "gen": "generator",
        "agen": "async-generator",
        "decorated": "generator",
        "returns_iter": "iterator",
        "plain": "function",
        "coro": "coroutine",
        "Thing": "class",
        "NOT_CALLABLE": None,
        "absent": None,
    }
    gen = f["gen"]
    assert gen is not None and gen.signature == "(a, b=2)"
    assert gen.parameters == (
        ParamInfo("a", "POSITIONAL_OR_KEYWORD", False, None),
        ParamInfo("b", "POSITIONAL_OR_KEYWORD", True, "2"),
    )
    plain = f["plain"]
    assert plain is not None and plain.parameters is not None
    assert [q.kind for q in plain.parameters] == [
        "POSITIONAL_ONLY",
        "POSITIONAL_OR_KEYWORD",
        "VAR_POSITIONAL",
        "KEYWORD_ONLY",
        "VAR_KEYWORD",
    ]
    assert plain.accepts_any
    assert set(facts.available) >= {"gen", "agen", "plain", "coro", "Thing"}
    assert "Iterator" not in facts.available  # imported, not the module's own


def test_inspect_when_module_prints_and_has_side_effects_then_they_stay_in_the_child(
    tmp_path: Path, worker: GeneratorWorker
) -> None:
    marker = tmp_path / "imported"
    source = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\nprint('hello')\n"
    path = write(tmp_path, source + "def f():\n    yield 1\n", "side_effects.py")
    facts = worker.inspect(str(path), ["f"])
    assert facts.functions["f"] is not None
    assert marker.exists()  # the module ran -- in the worker, which is alive and well
    assert worker.pid is not None


def test_inspect_when_import_fails_then_target_load_error(
    tmp_path: Path, worker: GeneratorWorker
) -> None:
    path = write(tmp_path, "import not_a_module_anywhere\n", "broken_mod.py")
    with pytest.raises(TargetLoadError, match="No module named 'not_a_module_anywhere'"):
        worker.inspect(str(path), ["f"])


def test_inspect_when_import_exits_then_target_load_error_and_worker_restarts(
    tmp_path: Path, worker: GeneratorWorker
) -> None:
    path = write(tmp_path, "import os\nos._exit(4)\n", "exits_mod.py")
    with pytest.raises(TargetLoadError, match="exited with code 4"):
        worker.inspect(str(path), ["f"])
    ok = write(tmp_path, "def f():\n    yield 1\n", "fine_mod.py")
    assert worker.inspect(str(ok), ["f"]).functions["f"] is not None


def test_inspect_when_import_hangs_then_target_load_error_within_timeout(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "import time\ntime.sleep(60)\n", "hangs_mod.py")
    with GeneratorWorker() as w, pytest.raises(TargetLoadError, match=r"longer than 0\.5 s"):
        w.inspect(str(path), ["f"], timeout=0.5)


def test_inspect_when_no_such_file_then_target_load_error(worker: GeneratorWorker) -> None:
    with pytest.raises(TargetLoadError, match="no such file"):
        worker.inspect("does/not/exist.py", ["f"])


def test_inspect_when_dotted_module_then_found(worker: GeneratorWorker) -> None:
    facts = worker.inspect("json", ["loads", "nope"])
    loads = facts.functions["loads"]
    assert loads is not None and loads.kind == "function" and facts.functions["nope"] is None


def test_match_when_example_modules_inspected_then_both_fit_the_manifest(
    worker: GeneratorWorker,
) -> None:
    manifest, _ = load_manifest(EXAMPLE_MANIFEST)
    assert manifest is not None
    for module in ("prefab_good.py", "prefab_buggy.py"):
        path = str(ROOT / "examples" / module)
        facts = worker.inspect(path, [f.name for f in manifest.functions])
        out = match_functions(manifest, path, facts.functions, facts.available)
        assert out.violations == [], module
        assert out.testable == ["batch_process", "chat_stream", "process_lines"]


def test_match_when_module_mismatches_then_every_rule_fires(
    tmp_path: Path, worker: GeneratorWorker
) -> None:
    module = write(
        tmp_path,
        textwrap.dedent(
            """
            def not_a_generator(x):
                return [x]

            def unflagged(x):
                yield x

            def needs_two(a, b):
                yield a

            def extra_ok(a, unlisted_module_function=None):
                yield a

            def not_in_manifest():
                yield 1
            """
        ),
        "mismatch_mod.py",
    )
    manifest = spec_manifest(
        tmp_path,
        [
            {
                "name": "not_a_generator",
                "streaming": True,
                "parameters": [{"name": "x", "type": "string", "required": True}],
            },
            {
                "name": "unflagged",
                "parameters": [{"name": "x", "type": "string", "required": True}],
            },
            {
                "name": "needs_two",
                "streaming": True,
                "parameters": [
                    {"name": "a", "type": "string", "required": True},
                    {"name": "c", "type": "string"},
                ],
            },
            {
                "name": "extra_ok",
                "streaming": True,
                "parameters": [{"name": "a", "type": "string", "required": True}],
            },
            {"name": "vanished", "streaming": True},
        ],
    )
    facts = worker.inspect(str(module), [f.name for f in manifest.functions])
    out = match_functions(manifest, str(module), facts.functions, facts.available)
    found = [(v.rule, v.message.split(":")[0]) for v in out.violations]
    assert sorted(rules(out.violations)) == [
        "manifest.missing-function",
        "manifest.signature",
        "manifest.signature",
        "manifest.streaming-flag",
        "manifest.streaming-flag",
    ], found
    messages = " | ".join(v.message for v in out.violations)
    assert re.search(r"needs_two: the manifest declares parameter 'c'", messages)
    assert "needs_two(a, b) requires 'b'" in messages
    assert out.testable == ["extra_ok"]
    assert set(out.skipped) == {"not_a_generator", "needs_two", "vanished"}
