"""Contract roles: what a contract's types mean (content, failure, terminal, restart, progress).

The built-in contracts are fed real streams (the shapes their servers send), first through the
checker's roles directly, then over HTTP from a real uvicorn server: ``check`` measures
``first_content_ms`` from the first event the contract calls content -- for the ``text``
contract too, and not from an OpenAI chunk that only names the role -- and records an
in-band failure's code without changing the verdict.
"""

from __future__ import annotations

import ast
import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from harness._contracts.pointer import MISSING, parse_pointer, resolve_first
from harness._contracts.registry import builtin_contract, contract_names, get_checker
from harness._core.errors import UsageError
from harness._core.options import CheckOptions
from harness._core.resume import ResumeTracker, ResumingChecker
from harness._core.roles import NO_ROLES, Failure, roles_of
from harness._core.session import StreamSession
from harness._core.sse import SSEEvent
from harness._core.thresholds import metrics_from_check, parse_threshold
from harness._runners.check import check

ROOT = Path(__file__).parent.parent
EXE = Path(sys.executable).parent / "stream-harness"


def _session(contract: str, events: list[SSEEvent]) -> StreamSession:
    session = StreamSession("t", get_checker(contract), start=0.0)
    for i, event in enumerate(events):
        session.feed_event(event, float(i))
    return session


def _json(obj: object, event: str = "") -> SSEEvent:
    return SSEEvent(json.dumps(obj), event)


# -- streams as each contract's servers send them -------------------------------------------


def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


OPENAI_ROLE_ONLY = _json(openai_chunk({"role": "assistant", "content": ""}))
OPENAI_TOKEN = _json(openai_chunk({"content": "Hel"}))
OPENAI_DONE = SSEEvent("[DONE]")


def anthropic(kind: str, **data: Any) -> SSEEvent:
    return _json({"type": kind, **data}, kind)


ANTHROPIC_START = anthropic(
    "message_start",
    message={
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    },
)


def prefab(kind: str, data: object = None, **extra: object) -> SSEEvent:
    obj: dict[str, object] = {"type": kind, **extra}
    if data is not None:
        obj["data"] = data
    return _json(obj)


# -- the roles of each built-in contract ----------------------------------------------------


def test_roles_when_openai_role_only_chunk_then_not_content_and_first_token_is() -> None:
    s = _session("openai-chat", [OPENAI_ROLE_ONLY, OPENAI_TOKEN, OPENAI_DONE])
    roles = roles_of(s.checker)
    assert s.first_content == 1
    assert not roles.is_content(OPENAI_ROLE_ONLY)
    assert roles.content(OPENAI_TOKEN) == "Hel"
    assert roles.is_terminal("[DONE]") and not roles.is_terminal("chunk")
    assert s.finish(3.0).failure is None


def test_roles_when_openai_tool_call_chunk_then_it_is_content() -> None:
    call = [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f"}}]
    s = _session("openai-chat", [OPENAI_ROLE_ONLY, _json(openai_chunk({"tool_calls": call}))])
    assert s.first_content == 1


def test_roles_when_openai_second_choice_has_the_token_then_wildcard_finds_it() -> None:
    chunk = openai_chunk({"content": ""})
    chunk["choices"].append({"index": 1, "delta": {"content": "B"}, "finish_reason": None})
    s = _session("openai-chat", [_json(chunk)])
    assert s.first_content == 0 and roles_of(s.checker).content(_json(chunk)) == "B"


def test_roles_when_openai_error_chunk_then_failure_code_is_the_number_as_text() -> None:
    error = _json({"error": {"message": "the model crashed", "type": "Internal", "code": 500}})
    s = _session("openai-chat", [OPENAI_TOKEN, error, OPENAI_DONE])
    assert roles_of(s.checker).stream_failure() == Failure("error", "500", "the model crashed", 1)
    result = s.finish(3.0)
    assert result.failure == Failure("error", "500", "the model crashed", 1)
    assert result.failure_code == "500"


def test_roles_when_anthropic_stream_then_text_delta_is_content_and_error_type_the_code() -> None:
    block = anthropic("content_block_start", index=0, content_block={"type": "text", "text": ""})
    empty = anthropic("content_block_delta", index=0, delta={"type": "text_delta", "text": ""})
    text = anthropic("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hi"})
    error = anthropic("error", error={"type": "overloaded_error", "message": "Overloaded"})
    s = _session("anthropic-messages", [ANTHROPIC_START, block, empty, text, error])
    assert s.first_content == 3
    roles = roles_of(s.checker)
    assert roles.is_restart("message_start") and roles.is_terminal("message_stop")
    result = s.finish(5.0)
    assert result.failure == Failure("error", "overloaded_error", "Overloaded", 4)
    assert result.conforms, result.violations  # an abort is a conforming end


def test_roles_when_anthropic_tool_input_streams_then_partial_json_is_content() -> None:
    block = anthropic(
        "content_block_start",
        index=0,
        content_block={"type": "tool_use", "id": "t", "name": "f", "input": {}},
    )
    delta = anthropic(
        "content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": "{"}
    )
    assert _session("anthropic-messages", [ANTHROPIC_START, block, delta]).first_content == 2


def test_roles_when_prefab_empty_content_then_not_content_and_error_code_read() -> None:
    events = [
        prefab("start"),
        prefab("content", ""),
        prefab("content", "Hi"),
        prefab("error", "connection refused", error_code="LLM_ERROR"),
    ]
    s = _session("prefab", events)
    assert s.first_content == 2
    assert s.finish(4.0).failure == Failure("error", "LLM_ERROR", "connection refused", 3)
    roles = roles_of(s.checker)
    assert roles.is_restart("start") and not roles.is_restart("content")
    assert roles.is_terminal("done") and roles.is_terminal("error")


def test_roles_when_prefab_error_has_no_code_then_failure_without_code_and_a_warning() -> None:
    s = _session("prefab", [prefab("start"), prefab("error", "file not found")])
    result = s.finish(2.0)
    assert result.failure == Failure("error", None, "file not found", 1)
    assert result.failure_code is None
    assert [v.rule for v in result.violations] == ["error.code"]  # as before roles


def test_roles_when_error_event_after_done_then_not_the_streams_failure() -> None:
    late = prefab("error", "too late", error_code="LATE")
    s = _session("prefab", [prefab("start"), prefab("done"), late])
    result = s.finish(3.0)
    assert [v.rule for v in result.violations] == ["seq.after-terminal"]
    assert result.failure is None  # the client stopped reading at done
    assert roles_of(s.checker).failure(late) == Failure("error", "LATE", "too late")


def test_roles_when_text_stream_then_every_token_is_content_and_error_data_the_message() -> None:
    s = _session("text", [SSEEvent("Hel"), SSEEvent("lo"), SSEEvent("boom", "error")])
    assert s.first_content == 0
    assert s.finish(3.0).failure == Failure("error", None, "boom", 2)


def test_roles_when_agent_stages_and_llm_debug_then_content_and_failure() -> None:
    stages = _session(
        "agent-stages",
        [
            _json({"type": "chunk", "content": "", "agent": "a"}),
            _json({"type": "chunk", "content": "x", "agent": "a"}),
            _json({"type": "error", "error": "bad JSON", "agent": "a"}),
        ],
    )
    assert stages.first_content == 1
    assert stages.finish(3.0).failure == Failure("error", None, "bad JSON", 2)
    debug = _session(
        "llm-debug",
        [
            _json({"content": "", "done": False}),
            _json({"content": "这", "done": False}),
            _json({"done": True, "error": "rate limited", "status": "error"}),
            SSEEvent("[DONE]"),
        ],
    )
    assert debug.first_content == 1
    assert debug.finish(4.0).failure == Failure("error", None, "rate limited", 2)


@pytest.mark.parametrize("name", contract_names())
def test_roles_when_builtin_contract_then_it_declares_every_role(name: str) -> None:
    document = builtin_contract(name)
    path = ROOT / "schemas" / "contracts" / f"{name}.yaml"
    assert "roles:" in path.read_text(encoding="utf-8")
    roles = document.roles
    assert roles.content, f"{name} declares no content"
    assert roles.failure, f"{name} declares no failure"
    assert roles.terminal <= set(document.types)
    assert set(roles.failure) <= document.failure  # failures end the owed checks, as before


def _resumed(contract: str, before: list[SSEEvent], after: list[SSEEvent]) -> list[str]:
    checker = ResumingChecker(get_checker(contract))
    rules = [v.rule for e in before for v in checker.feed(e)]
    checker.tracker.reconnect()
    return rules + [v.rule for e in after for v in checker.feed(e)]


def test_resume_when_a_restart_type_follows_the_reconnect_then_resume_ignored() -> None:
    started = [_with_id(prefab("start"), "1"), _with_id(prefab("content", "a"), "2")]
    again = [_with_id(prefab("start"), "3")]
    assert _resumed("prefab", started, again) == ["resume.ignored"]
    anthropic_again = [_with_id(ANTHROPIC_START, "3")]
    first = [_with_id(ANTHROPIC_START, "1"), _with_id(anthropic("ping"), "2")]
    assert _resumed("anthropic-messages", first, anthropic_again) == ["resume.ignored"]
    # A tracker told of no restart type reads a "start" event as any other.
    assert ResumeTracker().feed("3", 0, "start") == []


def _with_id(event: SSEEvent, event_id: str) -> SSEEvent:
    return SSEEvent(event.data, event.event, event_id)


# -- progress: the guide's example 3 counts "processed" -------------------------------------


def _example3(processed: list[int], total: int = 300) -> list[SSEEvent]:
    """The prefab guide's example 3 (file processing): progress carries processed, not current."""
    events = [prefab("start", {"total_lines": total})]
    events += [
        prefab(
            "progress", {"processed": n, "total": total, "percentage": min(100, n * 100 // total)}
        )
        for n in processed
    ]
    return [*events, prefab("done", {"processed": processed[-1]})]


def test_progress_when_guide_example_3_then_processed_is_the_counter() -> None:
    good = _session("prefab", _example3([100, 200, 300])).finish(5.0)
    assert good.violations == []
    falling = _session("prefab", _example3([200, 100, 300])).finish(5.0)
    assert [v.rule for v in falling.violations] == ["progress.monotonic"]
    beyond = _session("prefab", _example3([100, 400], total=300)).finish(5.0)
    assert [v.rule for v in beyond.violations] == ["progress.current-le-total"]


def test_progress_when_current_and_processed_both_there_then_current_wins() -> None:
    events = [
        prefab("start"),
        prefab("progress", {"current": 1, "processed": 50, "total": 3}),
        prefab("progress", {"current": 2, "processed": 10, "total": 3}),
        prefab("done"),
    ]
    assert _session("prefab", events).finish(4.0).violations == []


# -- the contract file format ---------------------------------------------------------------


def _compile(tmp_path: Path, body: str) -> Any:
    from harness._contracts.file import load_contract_file

    path = tmp_path / "c.yaml"
    path.write_text(body, encoding="utf-8")
    return load_contract_file(path)


JOBS = """\
version: 1
name: jobs
type: {from: /type}
types: {queued: , running: , line: , finished: , failed: }
order:
  pattern: queued running line* (finished | failed)
"""


def test_roles_when_file_declares_none_then_defaults_come_from_the_order(tmp_path: Path) -> None:
    roles = _compile(tmp_path, JOBS + "  failure: [failed]\n").roles
    assert set(roles.failure) == {"failed"}
    assert roles.terminal == {"finished", "failed"}
    assert roles.restart == {"queued"}  # only ever the first event
    assert roles.content == {}  # no type has a name the harness used to guess from


def test_roles_when_file_declares_them_then_pointers_and_failures_are_read(tmp_path: Path) -> None:
    c = _compile(
        tmp_path,
        JOBS
        + """\
roles:
  content: [{type: line, pointer: /text}]
  failure: [{type: failed, code: /reason/code}]
  terminal: [finished, failed]
  restart: []
""",
    )
    assert c.failure == {"failed"}  # a failure role is a failure of the order's checks too
    assert c.roles.content_of("line", {"type": "line", "text": "x"}) == "x"
    assert c.roles.content_of("line", {"type": "line", "text": ""}) is None
    assert c.roles.failure_of("failed", {"reason": {"code": "E1"}}) == Failure("failed", "E1")
    assert c.roles.restart == frozenset()


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ("content: [{type: lines}]", '/roles/content/0/type: unknown type "lines"'),
        ("failure: [{type: failed, code: data}]", "/roles/failure/0/code:"),
        ("terminal: [done]", '/roles/terminal/0: unknown type "done"'),
        (
            "content: [{type: line}, {type: line, pointer: /text}]",
            '/roles/content/1: type "line" is listed twice',
        ),
        ("progress: {types: [line]}", '/roles/progress: give at least one of "current"'),
        ("content: [{type: line, pointr: /x}]", "/roles/content/0: Additional properties"),
    ],
)
def test_roles_when_file_has_a_mistake_then_one_line_with_its_pointer(
    tmp_path: Path, roles: str, message: str
) -> None:
    with pytest.raises(UsageError) as e:
        _compile(tmp_path, JOBS + f"roles:\n  {roles}\n")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_roles_when_text_contract_gives_a_pointer_then_refused(tmp_path: Path) -> None:
    body = "version: 1\nname: t\ndata: text\ntype: {from: event}\ntypes: {message: }\n"
    with pytest.raises(UsageError, match="text contract's events have no fields"):
        _compile(tmp_path, body + "roles: {content: [{type: message, pointer: /x}]}\n")


def test_resolve_first_when_wildcard_then_first_accepted_element() -> None:
    pointer = parse_pointer("/choices/*/delta/content")
    value = {"choices": [{"delta": {}}, {"delta": {"content": ""}}, {"delta": {"content": "c"}}]}
    assert resolve_first(value, pointer, lambda v: v != "") == "c"
    assert resolve_first({"choices": []}, pointer, bool) is MISSING
    assert resolve_first({"choices": {"*": {"delta": {"content": "k"}}}}, pointer, bool) == "k"


def test_roles_of_when_checker_has_none_then_nothing_means_anything() -> None:
    assert roles_of(object()) is NO_ROLES
    assert not NO_ROLES.is_content(SSEEvent("x")) and NO_ROLES.failure(SSEEvent("x")) is None


# -- over HTTP: what check and load measure -------------------------------------------------


SSE = {"content-type": "text/event-stream", "cache-control": "no-cache"}


def _sse(data: str, event: str = "") -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


async def _openai(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield _sse(OPENAI_ROLE_ONLY.data)  # at once, as vLLM does
        await asyncio.sleep(0.3)  # the model thinks: the first token comes later
        yield _sse(OPENAI_TOKEN.data)
        yield _sse(json.dumps(openai_chunk({}, "stop")))
        yield _sse("[DONE]")

    return StreamingResponse(body(), headers=SSE)


async def _text(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        await asyncio.sleep(0.05)
        for token in ("Hel", "lo"):
            yield _sse(token)

    return StreamingResponse(body(), headers=SSE)


async def _prefab_error(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield _sse(prefab("start").data)
        yield _sse(prefab("content", "partial").data)
        yield _sse(prefab("error", "the model is down", error_code="LLM_ERROR").data)

    return StreamingResponse(body(), headers=SSE)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/openai", _openai),
            Route("/text", _text),
            Route("/prefab-error", _prefab_error),
        ]
    )
    with serving(app) as url:
        yield url


def _check(url: str, contract: str, *gates: str) -> Any:
    options = CheckOptions(contract=contract, thresholds=tuple(map(parse_threshold, gates)))
    return check(url, options)


def test_check_when_openai_role_chunk_first_then_first_content_is_the_first_token(
    base: str,
) -> None:
    result = _check(f"{base}/openai", "openai-chat", "first_content_ms<60s")
    assert result.ok, result.violations
    metrics = metrics_from_check(result)
    first_event, first_content = metrics["first_event_ms"], metrics["first_content_ms"]
    assert isinstance(first_event, float) and isinstance(first_content, float)
    # The server waited 300 ms between the role chunk and the token: the gap shows it.
    assert first_content - first_event >= 250.0


def test_check_when_text_contract_then_first_content_ms_is_measured(base: str) -> None:
    result = _check(f"{base}/text", "text", "first_content_ms<60s")
    assert result.ok, (result.violations, result.thresholds)
    assert result.thresholds[0].value is not None and result.thresholds[0].value >= 40.0


def test_check_when_stream_ends_in_in_band_failure_then_verdict_as_before_and_code_kept(
    base: str,
) -> None:
    result = _check(f"{base}/prefab-error", "prefab")
    assert result.failure == Failure("error", "LLM_ERROR", "the model is down", 2)
    assert result.failure_code == "LLM_ERROR"
    r = subprocess.run(
        [str(EXE), "check", f"{base}/prefab-error", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["ok"] is True and verdict["events"] == 3 and verdict["violations"] == []
    assert set(verdict) == {"ok", "target", "contract", "events", "violations", "timing"}


def test_load_stream_when_openai_then_first_content_after_role_chunk_and_failure_kept(
    base: str,
) -> None:
    from harness._load._client import Connection, parse_target
    from harness._load._stream import StreamSpec, run_stream

    class FakeSink:
        def events(self, n: int, at: float) -> None: ...
        def gaps(self, gap_ms: float, repeat: int) -> None: ...
        def delay(self, ms: float) -> None: ...

    def run(path: str, contract: str) -> Any:
        t = parse_target(base + path)
        return run_stream(
            StreamSpec(base + path, contract=contract),
            lambda timeout: Connection(t, timeout),
            FakeSink(),  # type: ignore[arg-type]
            authority=t.authority,
            path=t.path,
        )

    r = run("/openai", "openai-chat")
    assert r.ok and r.first_event_ms is not None and r.first_content_ms is not None
    assert r.first_content_ms - r.first_event_ms >= 250.0
    assert r.failure is None
    failed = run("/prefab-error", "prefab")
    assert failed.ok and failed.failure == Failure("error", "LLM_ERROR", "the model is down", 2)


# -- nothing outside the contracts names an event type --------------------------------------

#: String literals equal to a built-in type name that are not about event types, by file.
NOT_TYPE_NAMES = {
    # The SSE specification's default event type, which the decoders give an unnamed event.
    ("harness/_core/sse.py", "message"),
    ("harness/_core/framing.py", "message"),
}


def _type_names() -> set[str]:
    return {name for c in contract_names() for name in builtin_contract(c).types}


def _compared_literals(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """String constants a value is compared with or looked up in: ``x == "done"``,
    ``kind in {"content", "chunk"}``, ``frozenset({"start"})`` -- how type names leak.
    Dictionary keys (a verdict's ``"error"``, a request's ``"content"``) are not compared."""
    for node in ast.walk(tree):
        operands: list[ast.expr] = []
        if isinstance(node, ast.Compare):
            # ``"message" in body`` asks for a key; ``kind in (...)`` and ``== "done"`` compare.
            keyed = all(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            operands = node.comparators if keyed else [node.left, *node.comparators]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("frozenset", "set"):
            operands = list(node.args)
        elif isinstance(node, ast.Set):
            operands = [node]
        for operand in operands:
            items = (
                operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [operand]
            )
            for item in items:
                if isinstance(item, ast.Constant) and isinstance(item.value, str):
                    yield item.lineno, item.value


def test_no_event_type_name_is_compared_outside_the_contracts() -> None:
    names = _type_names()
    found = []
    for path in sorted((ROOT / "harness").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("harness/_contracts/"):
            continue
        for line, value in _compared_literals(ast.parse(path.read_text(encoding="utf-8"))):
            if value in names and (rel, value) not in NOT_TYPE_NAMES:
                found.append(f"{rel}:{line}: {value!r}")
    assert not found, "ask the contract's roles (harness._core.roles) instead: " + str(found)
