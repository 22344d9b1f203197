"""Contract files: a team's own contract without Python, and one clear line for each mistake."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from contract_fixtures import check_events

from harness._contracts.file import load_contract_file
from harness._contracts.registry import get_checker, load_contract
from harness._core.errors import UsageError
from harness._core.session import StreamSession
from harness._core.sse import SSEEvent

EXE = Path(sys.executable).parent / "stream-harness"

# A team's own protocol: only JSON Schemas and an order -- no Python.
JOBS = {
    "version": 1,
    "name": "jobs",
    "summary": "batch jobs: queued, running updates, then finished or failed",
    "type": {"from": "/kind"},
    "types": {
        "queued": {"schema": {"type": "object", "required": ["kind", "job"]}},
        "running": {
            "schema": {
                "type": "object",
                "required": ["kind", "job", "done"],
                "properties": {"done": {"type": "integer", "minimum": 0}},
            }
        },
        "finished": {"schema": {"type": "object", "required": ["kind", "job", "result"]}},
        "failed": {
            "schema": {
                "type": "object",
                "required": ["kind", "reason"],
                "properties": {"reason": {"type": "string", "minLength": 1}},
            }
        },
    },
    "order": {"pattern": "queued running* (finished | failed)", "failure": ["failed"]},
    "invariants": [{"invariant": "constant", "pointers": ["/job"]}],
}
GOOD = [
    {"kind": "queued", "job": "j1"},
    {"kind": "running", "job": "j1", "done": 1},
    {"kind": "finished", "job": "j1", "result": {"ok": True}},
]


def write(path: Path, document: Any) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(document), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def problem(tmp_path: Path, document: Any, name: str = "c.yaml") -> str:
    path = write(tmp_path / name, document)
    with pytest.raises(UsageError) as info:
        load_contract(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path)) or str(path) in message
    return message


def edited(**changes: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(JOBS))
    for key, value in changes.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


# -- a user-defined contract ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_user_contract_when_stream_conforms_then_clean(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"jobs{suffix}", JOBS)
    assert check_events(str(path), GOOD) == []
    assert get_checker(str(path)).name == "jobs"


def test_user_contract_when_rules_broken_then_each_reported(tmp_path: Path) -> None:
    path = str(write(tmp_path / "jobs.yaml", JOBS))
    bad = [
        {"kind": "running", "job": "j1", "done": -1},  # schema; first is not queued
        {"kind": "running", "job": "j2", "done": 2},  # another job
        {"kind": "paused", "job": "j1"},
        {"kind": "queued", "job": "j1"},
    ]
    assert check_events(path, bad) == [
        ("event.schema", 0),
        ("seq.first", 0),
        ("field.constant", 1),
        ("event.unknown-type", 2),
        ("seq.order", 3),
        ("seq.terminal", None),
    ]


def test_user_contract_when_checked_in_a_session_then_verdict_names_it(tmp_path: Path) -> None:
    path = write(tmp_path / "jobs.yaml", JOBS)
    session = StreamSession("t", get_checker(str(path)), start=0.0)
    for item in GOOD:
        session.feed_event(SSEEvent(json.dumps(item)), 0.0)
    result = session.finish(0.0, bytes_stream=False)
    assert result.ok
    assert result.contract == "jobs"
    assert [e.kind for e in result.transcript] == ["queued", "running", "finished"]


def test_user_contract_when_schemas_referenced_by_relative_path_then_resolved(
    tmp_path: Path,
) -> None:
    (tmp_path / "schemas").mkdir()
    write(
        tmp_path / "schemas" / "running.json",
        {"type": "object", "properties": {"done": {"$ref": "count.json"}}},
    )
    write(tmp_path / "schemas" / "count.json", {"type": "integer", "minimum": 0})
    doc = edited()
    doc["types"]["running"] = {"schema": {"$ref": "schemas/running.json"}}
    # A bundled schema by its $id: an OpenAI error object will do for failed.
    doc["types"]["failed"] = {
        "schema": {"$ref": "https://stream-harness.example/schemas/openai-chat/error.schema.json"}
    }
    doc["types"]["queued"] = None
    doc["type"] = {"from": "/type"}
    doc["invariants"] = []
    path = str(write(tmp_path / "c.yaml", doc))
    stream = [
        {"type": "queued"},
        {"type": "running", "done": 2},
        {"type": "running", "done": -2},
        {"type": "failed", "error": {"message": "disk full"}},
    ]
    assert check_events(path, stream) == [("event.schema", 2)]
    stream[-1] = {"type": "failed", "error": {}}
    assert check_events(path, stream) == [("event.schema", 2), ("event.schema", 3)]


def test_user_contract_when_file_changes_then_reloaded(tmp_path: Path) -> None:
    path = write(tmp_path / "jobs.yaml", JOBS)
    first = load_contract(str(path))
    assert load_contract(str(path)) is first  # compiled once
    doc = edited(name="jobs-v2")
    path.write_text(yaml.safe_dump(doc) + "\n# changed\n", encoding="utf-8")
    os.utime(path, ns=(first_ns := path.stat().st_mtime_ns + 10**9, first_ns))
    assert load_contract(str(path)).name == "jobs-v2"


def test_text_contract_file_when_loaded_then_plain_text_checked(tmp_path: Path) -> None:
    doc = {
        "version": 1,
        "name": "lines",
        "data": "text",
        "type": {"from": "event"},
        "types": {"message": {"schema": {"type": "string", "maxLength": 5}}, "bye": None},
        "order": {"pattern": "message* bye"},
    }
    path = str(write(tmp_path / "lines.yaml", doc))
    assert check_events(path, ["hello", ("bye", "")]) == []
    assert check_events(path, ["too long", "ok"]) == [("event.schema", 0), ("seq.terminal", None)]


# -- one clear line per mistake -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (["a", "list"], '/: a contract file holds one object (a mapping), not ["a", "list"]'),
        (edited(types=None), "/: 'types' is a required property"),
        (edited(version=2), "/version: 1 was expected"),
        (edited(data="xml"), "/data: 'xml' is not one of ['json', 'text']"),
        (edited(order={"pattern": "queued (running"}), "/order/pattern: a '(' is never closed"),
        (
            edited(order={"pattern": "queued runing* finished"}),
            '/order/pattern: unknown type "runing"',
        ),
        (
            edited(order={"pattern": "queued running* finished"}),
            '/types/failed: type "failed" never fits',
        ),
        (
            edited(order={"pattern": "queued finished", "anywhere": ["running", "nope"]}),
            '/order/anywhere/1: unknown type "nope"',
        ),
        (
            edited(invariants=[{"invariant": "frobnicate"}]),
            '/invariants/0/invariant: unknown invariant "frobnicate"',
        ),
        (
            edited(
                invariants=[{"invariant": "constant", "pointers": ["/job"], "types": ["queue"]}]
            ),
            '/invariants/0/types/0: unknown type "queue"',
        ),
        (
            edited(invariants=[{"invariant": "progress", "types": ["running"], "curent": "/done"}]),
            "/invariants/0: Additional properties are not allowed ('curent' was unexpected)",
        ),
        (
            edited(invariants=[{"invariant": "constant", "pointers": ["job"]}]),
            "/invariants/0/pointers/0: 'job' does not match",
        ),
        (
            edited(invariants=[{"invariant": "once-per-key", "key": "/job"}]),
            '/invariants/0: give exactly one of "field" and "final_types"',
        ),
        (
            edited(data="text"),
            "/type/from: a text contract takes its type from the SSE event field",
        ),
        (edited(type={"cases": [{"type": "queue"}]}), '/type/cases/0/type: unknown type "queue"'),
        (edited(type={"from": "/"}), None),  # "/" points at the key "": allowed
    ],
)
def test_contract_file_when_wrong_then_one_line_naming_file_and_pointer(
    tmp_path: Path, document: Any, words: str | None
) -> None:
    if words is None:
        load_contract(str(write(tmp_path / "c.yaml", document)))
        return
    message = problem(tmp_path, document)
    assert f"c.yaml: {words}" in message, message


def test_contract_file_when_schema_invalid_then_pointer_into_the_schema(tmp_path: Path) -> None:
    doc = edited()
    doc["types"]["queued"] = {
        "schema": {"type": "object", "properties": {"job": {"type": "strin"}}}
    }
    message = problem(tmp_path, doc)
    assert "c.yaml: /types/queued/schema/properties/job/type: not a valid JSON Schema" in message


def test_contract_file_when_ref_unresolvable_then_pointer_to_the_ref(tmp_path: Path) -> None:
    doc = edited()
    doc["types"]["queued"] = {"schema": {"properties": {"job": {"$ref": "missing.json"}}}}
    message = problem(tmp_path, doc)
    assert (
        'c.yaml: /types/queued/schema/properties/job/$ref: cannot resolve "missing.json"' in message
    )


def test_contract_file_when_ref_is_remote_then_not_fetched(tmp_path: Path) -> None:
    doc = edited()
    doc["types"]["queued"] = {"schema": {"$ref": "https://example.invalid/s.json"}}
    assert 'cannot resolve "https://example.invalid/s.json"' in problem(tmp_path, doc)


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("c.yaml", "version: 1\nname: [unclosed\n", "not valid YAML"),
        ("c.json", '{"version": 1,', "not valid JSON: Expecting property name"),
    ],
)
def test_contract_file_when_not_parseable_then_line_and_column(
    tmp_path: Path, name: str, text: str, words: str
) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=words) as info:
        load_contract(str(tmp_path / name))
    assert "line" in str(info.value) and "column" in str(info.value)


def test_get_checker_when_name_unknown_then_suggests_and_mentions_files() -> None:
    with pytest.raises(UsageError) as info:
        get_checker("openai")
    assert "did you mean 'openai-chat'" in str(info.value)
    assert ".yaml/.yml/.json contract file" in str(info.value)


def test_get_checker_when_path_missing_or_wrong_suffix_then_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such contract file"):
        get_checker(str(tmp_path / "nope.yaml"))
    (tmp_path / "c.txt").write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match=r"ends in \.yaml, \.yml or \.json"):
        load_contract_file(tmp_path / "c.txt")


# -- the contract file's own schema ---------------------------------------------------------------


def test_contract_schema_when_builtin_files_checked_then_they_validate() -> None:
    from jsonschema import Draft202012Validator

    from harness._core.schemas import load_schema, schemas_dir

    schema = load_schema("contract.schema.json")
    Draft202012Validator.check_schema(schema)
    folder = Path(str(schemas_dir())) / "contracts"
    for path in sorted(folder.glob("*.yaml")):
        Draft202012Validator(schema).validate(yaml.safe_load(path.read_text(encoding="utf-8")))


# -- installed as a wheel, and from the command line ----------------------------------------------


def test_builtin_contracts_when_installed_as_wheel_then_found_in_packaged_data(
    tmp_path: Path,
) -> None:
    # The wheel layout: the package, with schemas/ force-included as harness/_data/schemas.
    root = Path(__file__).parent.parent
    shutil.copytree(
        root / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(root / "schemas", tmp_path / "harness" / "_data" / "schemas")
    code = (
        "from harness._contracts.registry import contract_names, get_checker;"
        "from harness._core.schemas import schemas_dir;"
        "from harness._core.sse import SSEEvent;"
        "print(schemas_dir());"
        "print(','.join(contract_names()));"
        "c = get_checker('openai-chat');"
        "print(c.feed(SSEEvent('[DONE]'))[0].rule)"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [
        str(tmp_path / "harness" / "_data" / "schemas"),
        "agent-stages,ai-sdk-ui,anthropic-messages,llm-debug,mcp,ndjson,ollama,openai-chat,openai-responses,prefab,text",
        "seq.first",
    ]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, timeout=50, cwd=cwd, check=False
    )


def test_cli_contracts_when_run_then_one_line_per_builtin(tmp_path: Path) -> None:
    r = run("contracts", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    names = [line.split()[0] for line in r.stdout.splitlines()]
    assert names == [
        "agent-stages",
        "ai-sdk-ui",
        "anthropic-messages",
        "llm-debug",
        "mcp",
        "ndjson",
        "ollama",
        "openai-chat",
        "openai-responses",
        "prefab",
        "text",
    ]
    assert all(len(line.split(None, 1)) == 2 for line in r.stdout.splitlines())


def test_cli_check_when_contract_is_a_file_then_used_and_bad_file_is_exit_2(tmp_path: Path) -> None:
    write(tmp_path / "jobs.yaml", JOBS)
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in GOOD)
    (tmp_path / "run.sse").write_text(body, encoding="utf-8")
    ok = run("check", "run.sse", "--contract", "./jobs.yaml", "--format", "json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["contract"] == "jobs"
    (tmp_path / "bad.yaml").write_text(
        textwrap.dedent("""\
            version: 1
            name: bad
            type: {from: /kind}
            types: {a: , b: }
            order: {pattern: 'a c'}
        """),
        encoding="utf-8",
    )
    bad = run("check", "run.sse", "--contract", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        'stream-harness: error: bad.yaml: /order/pattern: unknown type "c" '
        "(the contract's types: a, b)"
    ]
    valid = run("contracts", "jobs.yaml", cwd=tmp_path)
    assert valid.returncode == 0 and "jobs.yaml: ok" in valid.stdout
