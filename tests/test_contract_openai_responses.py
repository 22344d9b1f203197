"""The openai-responses contract against the real ``openai`` SDK (strict validation, the raw
event stream and the accumulating ``responses.stream()`` helper), served by uvicorn on
127.0.0.1: what the contract accepts the SDK consumes, and the contract rejects the streams the
SDK chokes on."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from contract_fixtures import FakeLLMApp, check_bytes, fake_llm_server

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.timeout(120)

Served = tuple[str, FakeLLMApp]
RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1764669600,
    "model": "gpt-5",
    "status": "in_progress",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
}


def _message(status: str, text: str | None) -> dict[str, Any]:
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": []}]
    return {
        "id": "msg_1",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _call(status: str, arguments: str) -> dict[str, Any]:
    return {
        "id": "fc_1",
        "type": "function_call",
        "status": status,
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": arguments,
    }


def text_stream(tokens: tuple[str, ...] = ("Hel", "lo", " 世界")) -> list[dict[str, Any]]:
    """A conforming Responses stream: one message with one text part."""
    text = "".join(tokens)
    part = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    done = {**RESPONSE, "status": "completed", "output": [_message("completed", text)]}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": RESPONSE},
        {"type": "response.in_progress", "response": RESPONSE},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _message("in_progress", None),
        },
        {
            "type": "response.content_part.added",
            **part,
            "part": {"type": "output_text", "text": "", "annotations": []},
        },
        *(
            {"type": "response.output_text.delta", **part, "delta": t, "logprobs": []}
            for t in tokens
        ),
        {"type": "response.output_text.done", **part, "text": text, "logprobs": []},
        {
            "type": "response.content_part.done",
            **part,
            "part": {"type": "output_text", "text": text, "annotations": []},
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": _message("completed", text),
        },
        {"type": "response.completed", "response": done},
    ]
    return number(events)


def call_stream() -> list[dict[str, Any]]:
    """A conforming stream whose one output item is a function call."""
    args = '{"city": "Paris"}'
    at = {"item_id": "fc_1", "output_index": 0}
    done = {**RESPONSE, "status": "completed", "output": [_call("completed", args)]}
    return number(
        [
            {"type": "response.created", "response": RESPONSE},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": _call("in_progress", ""),
            },
            {"type": "response.function_call_arguments.delta", **at, "delta": args[:8]},
            {"type": "response.function_call_arguments.delta", **at, "delta": args[8:]},
            {"type": "response.function_call_arguments.done", **at, "arguments": args},
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": _call("completed", args),
            },
            {"type": "response.completed", "response": done},
        ]
    )


def two_items_stream() -> list[dict[str, Any]]:
    """A conforming stream with a message of two text parts, then a function call: content
    parts nest in their item by output_index and content_index."""
    text = text_stream(("Hel", "lo"))
    created, _, added, part_added, d1, d2, text_done, part_done, item_done, _ = text
    second = {"content_index": 1}
    parts = [
        {**part_added, **second},
        {**d1, **second, "delta": "!"},
        {**text_done, **second, "text": "!"},
        {**part_done, **second},
    ]
    call = call_stream()[1:-1]
    for e in call:
        e["output_index"] = 1
    message = _message("completed", "Hello")
    message["content"].append({"type": "output_text", "text": "!", "annotations": []})
    output = [message, _call("completed", '{"city": "Paris"}')]
    done = {**RESPONSE, "status": "completed", "output": output}
    body = [created, added, part_added, d1, d2, text_done, part_done, *parts]
    finished = {**item_done, "item": message}
    return number([*body, finished, *call, {"type": "response.completed", "response": done}])


def number(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**e, "sequence_number": i} for i, e in enumerate(events)]


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(
        f"event: {e['type']}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n".encode()
        for e in events
    )


def without(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return number([e for e in events if e["type"] != kind])


def _part(event: dict[str, Any], content_index: int) -> dict[str, Any]:
    return {**event, "content_index": content_index}


def changed(events: list[dict[str, Any]], i: int, **fields: Any) -> list[dict[str, Any]]:
    out = copy.deepcopy(events)
    out[i].update(fields)
    return out


FAILED = {
    **RESPONSE,
    "status": "failed",
    "error": {"code": "server_error", "message": "the model crashed"},
}
CASES: dict[str, list[dict[str, Any]]] = {
    "conforming-text": text_stream(),
    "conforming-call": call_stream(),
    "conforming-two-items": two_items_stream(),
    "conforming-no-output": number(
        [
            {"type": "response.created", "response": RESPONSE},
            {"type": "response.completed", "response": {**RESPONSE, "status": "completed"}},
        ]
    ),
    "server-failed": number([*text_stream()[:5], {"type": "response.failed", "response": FAILED}]),
    # broken, each in one way:
    "no-created": number(text_stream()[1:]),
    "delta-without-part": without(text_stream(), "response.content_part.added"),
    "no-completed": text_stream()[:-1],
    "two-completed": number([*text_stream(), text_stream()[-1]]),
    "sequence-goes-back": changed(text_stream(), 4, sequence_number=3),
    "output-index-wrong": changed(text_stream(), 4, output_index=3),
    "item-index-skips": number(
        [
            text_stream()[0],
            *({**e, "output_index": 1} for e in text_stream()[2:-1]),
            text_stream()[-1],
        ]
    ),
    "delta-other-part": changed(text_stream(), 5, content_index=1),
    "part-added-twice": number([*text_stream()[:4], text_stream()[3], *text_stream()[4:]]),
    "part-index-used-twice": number(
        [*text_stream()[:9], *(text_stream()[i] for i in (3, 7, 8)), *text_stream()[9:]]
    ),
    "part-done-twice": number([*text_stream()[:9], text_stream()[8], *text_stream()[9:]]),
    "part-open-at-item-done": [*text_stream()[:8], _part(text_stream()[8], 1), *text_stream()[9:]],
    "call-delta-other-item": changed(call_stream(), 2, output_index=1),
    "delta-not-text": changed(text_stream(), 4, delta=7),
    "completed-not-completed": changed(
        text_stream(), -1, response={**RESPONSE, "status": "in_progress"}
    ),
}
RULES: dict[str, set[str]] = {
    "no-created": {"seq.first"},
    "delta-without-part": {"span.not-open"},  # the order breaks too: the span says it better
    "no-completed": {"seq.terminal"},
    "two-completed": {"seq.after-terminal"},
    "sequence-goes-back": {"field.sequential"},
    "output-index-wrong": {"span.not-open"},
    "item-index-skips": {"field.sequential"},
    "delta-other-part": {"span.not-open"},
    "part-added-twice": {"span.reopened"},
    "part-index-used-twice": {"span.reopened"},
    "part-done-twice": {"span.not-open"},
    # the part.done names part 1, which never opened; part 0 is still open at the item's done
    "part-open-at-item-done": {"span.not-open", "span.unclosed"},
    "call-delta-other-item": {"span.not-open"},
    "delta-not-text": {"event.schema"},
    "completed-not-completed": {"event.schema"},
}


@pytest.fixture(scope="module")
def llm() -> Iterator[Served]:
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            mp.delenv(var, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1")
        with fake_llm_server() as served:
            yield served


def sdk_outcome(served: Served, body: bytes) -> Exception | None:
    """What the ``openai`` SDK makes of ``body`` -- the raw events, then the helper that
    accumulates the response: None, or the exception it raised."""
    url, app = served
    model = app.register(body)
    client = openai.OpenAI(
        base_url=f"{url}/v1",
        api_key="sk-test-not-a-key",
        max_retries=0,
        timeout=10,
        _strict_response_validation=True,
    )
    try:
        for _ in client.responses.create(model=model, input="hi", stream=True):
            pass
        with client.responses.stream(model=model, input="hi") as stream:
            for _ in stream:
                pass
            stream.get_final_response()
    except Exception as e:
        return e
    finally:
        client.close()
    return None


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith(("conforming", "server"))])
def test_responses_when_stream_conforms_then_contract_and_sdk_accept(
    llm: Served, name: str
) -> None:
    body = sse(CASES[name])
    result = check_bytes("openai-responses", body)
    assert result.violations == [], [(v.rule, v.message) for v in result.violations]
    outcome = sdk_outcome(llm, body)
    if name == "server-failed":  # the protocol's way to fail: the contract's failure
        assert result.failure is not None and result.failure.code == "server_error"
    else:
        assert outcome is None, repr(outcome)


def test_responses_sdk_when_conforming_then_reads_the_text(llm: Served) -> None:
    url, app = llm
    model = app.register(sse(text_stream()))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0, timeout=10)
    try:
        with client.responses.stream(model=model, input="hi") as stream:
            deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
            final = stream.get_final_response()
    finally:
        client.close()
    assert "".join(deltas) == final.output_text == "Hello 世界"


@pytest.mark.parametrize("name", sorted(RULES))
def test_responses_when_stream_broken_then_its_rule(name: str) -> None:
    result = check_bytes("openai-responses", sse(CASES[name]))
    assert {v.rule for v in result.violations if v.is_error} == RULES[name], [
        (v.rule, v.message) for v in result.violations
    ]


@pytest.mark.parametrize(
    "name",
    ["no-created", "delta-without-part", "no-completed", "delta-not-text", "delta-other-part"],
)
def test_responses_sdk_chokes_on_streams_the_contract_rejects(llm: Served, name: str) -> None:
    assert sdk_outcome(llm, sse(CASES[name])) is not None


def test_responses_when_unknown_event_type_then_a_warning_only() -> None:
    events = text_stream()
    events.insert(5, {"type": "response.output_text.annotation.added", "annotation": {}})
    result = check_bytes("openai-responses", sse(number(events)))
    assert [(v.rule, v.severity.value) for v in result.violations] == [
        ("event.unknown-type-open", "warning")
    ]
