"""The built-in contracts: a conforming stream passes, and each rule, broken alone, fires once.

Prefab's own rules are tested rule by rule in ``test_prefab_checker.py``; here are the other
dialects -- openai-chat, anthropic-messages, llm-debug, agent-stages, text -- and what every
contract shares (the catalog, the listing).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from contract_fixtures import (
    DONE,
    MESSAGE,
    anthropic_event,
    anthropic_stream,
    check_bytes,
    check_events,
    openai_chunk,
    openai_stream,
    openai_usage,
    sse,
    summary,
)

from harness._contracts.registry import builtin_contract, contract_names, get_checker
from harness._core.rules import CATALOG, Severity
from harness._core.sse import SSEEvent

USAGE_ASKED = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
USAGE_NOT_ASKED = {"model": "m", "stream": True}


def test_contract_names_when_listed_then_every_dialect_is_built_in() -> None:
    assert contract_names() == [
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
    for name in contract_names():
        contract = builtin_contract(name)
        assert contract.name == name
        assert contract.summary and "\n" not in contract.summary


NEW_RULES = {
    "field.constant": Severity.ERROR,
    "field.once-per-key": Severity.ERROR,
    "field.after-final": Severity.ERROR,
    "field.sum": Severity.ERROR,
    "field.sequential": Severity.ERROR,
    "seq.requested": Severity.ERROR,
}


@pytest.mark.parametrize("rule_id", sorted(NEW_RULES))
def test_catalog_when_contracts_loaded_then_new_rules_registered_and_explained(
    rule_id: str,
) -> None:
    import harness._catalog  # noqa: F401  (the catalog the `rules` command lists)

    entry = CATALOG[rule_id]
    assert entry.severity is NEW_RULES[rule_id]
    assert entry.summary.endswith(".") and "\n" not in entry.summary
    assert len(entry.explanation) > 80


# -- openai-chat ------------------------------------------------------------------------------


def openai(events: list[Any], request: object = None) -> list[tuple[str, int | None]]:
    return check_events("openai-chat", events, request=request)


def test_openai_when_stream_conforms_then_clean() -> None:
    assert openai(openai_stream()) == []
    assert openai(openai_stream(usage=True), USAGE_ASKED) == []
    assert openai(openai_stream(), USAGE_NOT_ASKED) == []
    assert openai(openai_stream(usage=True)) == []  # request unknown: usage is optional


def test_openai_when_several_choices_and_tool_calls_then_clean() -> None:
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    more = {"index": 0, "function": {"arguments": '{"x": 1}'}}
    events = [
        openai_chunk({"role": "assistant", "content": None, "tool_calls": [call]}, index=0),
        openai_chunk({"role": "assistant", "content": "hi"}, index=1),
        openai_chunk({"tool_calls": [more]}, index=0),
        openai_chunk({}, "tool_calls", index=0),
        openai_chunk({"content": "!"}, "stop", index=1),
        DONE,
    ]
    assert openai(events) == []


def test_openai_when_error_object_mid_stream_then_it_ends_the_stream_cleanly() -> None:
    error = {"error": {"message": "the model crashed", "type": "InternalServerError", "code": 500}}
    assert openai([*openai_stream()[:2], error, DONE]) == []
    assert openai([error]) == []  # an immediate failure; nothing owed after it
    assert openai([*openai_stream()[:2], error, openai_chunk({"content": "x"})]) == [
        ("seq.order", 3)
    ]


def test_openai_when_data_is_not_json_then_sse_data_not_json() -> None:
    events = openai_stream()
    events[1] = "{'content': 'x'}"
    assert openai(events) == [("sse.data-not-json", 1)]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c.update(object="chat.completion"), 'object is "chat.completion"'),
        (lambda c: c["choices"][0]["delta"].update(role="user"), 'role is "user"'),
        (lambda c: c.update(usage={"prompt_tokens": 1}), "usage is"),
        (lambda c: c["choices"][0].update(finish_reason="done"), 'finish_reason is "done"'),
        (lambda c: c.pop("id"), '"id" is missing'),
        (lambda c: c["choices"][0]["delta"].update(content=5), "content is 5"),
    ],
    ids=["object", "role", "usage-on-content", "finish-reason", "no-id", "content-type"],
)
def test_openai_when_chunk_malformed_then_event_schema(change: Any, words: str) -> None:
    events = openai_stream()
    change(events[1])
    checker = get_checker("openai-chat")
    found = [v for e in events for v in checker.feed(SSEEvent(e if e == DONE else _dumps(e)))]
    assert [(v.rule, v.event_index) for v in found] == [("event.schema", 1)]
    assert words in found[0].message


def test_openai_when_error_object_has_no_message_then_event_schema() -> None:
    assert openai([openai_stream()[0], {"error": {"code": 500}}, DONE]) == [("event.schema", 1)]


def test_openai_when_stream_begins_with_done_or_usage_then_seq_first() -> None:
    assert openai([DONE]) == [("seq.first", 0)]
    assert openai([openai_usage(), *openai_stream()]) == [("seq.first", 0)]


def test_openai_when_chunk_after_usage_then_seq_order_naming_what_was_expected() -> None:
    events = openai_stream(usage=True)
    events.insert(-1, openai_chunk({"content": "late"}, index=1))
    checker = get_checker("openai-chat")
    found = [v for e in events for v in checker.feed(SSEEvent(e if e == DONE else _dumps(e)))]
    assert [(v.rule, v.event_index) for v in found] == [("seq.order", 6)]
    assert found[0].message == "expected [DONE] after event 5, got chunk"


def test_openai_when_no_done_sentinel_then_seq_terminal() -> None:
    found = openai(openai_stream()[:-1])
    assert found == [("seq.terminal", None)]


def test_openai_when_anything_after_done_then_seq_after_terminal() -> None:
    assert openai([*openai_stream(), DONE]) == [("seq.after-terminal", 6)]
    assert openai([*openai_stream(), openai_chunk({"content": "x"})]) == [("seq.after-terminal", 6)]


@pytest.mark.parametrize("field", ["id", "model"])
def test_openai_when_id_or_model_changes_then_field_constant(field: str) -> None:
    events = openai_stream()
    events[2] = {**events[2], field: "other"}
    assert openai(events) == [("field.constant", 2)]


def test_openai_when_choice_finishes_twice_then_field_once_per_key() -> None:
    events = openai_stream()
    events.insert(-1, openai_chunk({}, "length"))
    assert openai(events) == [("field.once-per-key", 5)]


def test_openai_when_choice_never_finishes_then_field_once_per_key_at_the_end() -> None:
    events = [openai_chunk({"content": "x"}, index=0), openai_chunk({}, "stop", index=1), DONE]
    checker = get_checker("openai-chat")
    for e in events:
        assert checker.feed(SSEEvent(e if e == DONE else _dumps(e))) == []
    [v] = checker.finish()
    assert (v.rule, v.event_index, v.message) == (
        "field.once-per-key",
        None,
        "choice 0 never got a finish_reason",
    )


def test_openai_when_content_after_finish_reason_then_field_after_final() -> None:
    events = openai_stream()
    events.insert(-1, openai_chunk({"content": "late"}))
    assert openai(events) == [("field.after-final", 5)]


def test_openai_when_total_tokens_wrong_then_field_sum() -> None:
    events = openai_stream(usage=True)
    events[-2] = openai_usage(5, 3, total=9)
    assert openai(events, USAGE_ASKED) == [("field.sum", 5)]


def test_openai_when_usage_asked_but_missing_then_seq_requested() -> None:
    assert openai(openai_stream(), USAGE_ASKED) == [("seq.requested", None)]


def test_openai_when_usage_sent_unasked_then_seq_requested() -> None:
    assert openai(openai_stream(usage=True), USAGE_NOT_ASKED) == [("seq.requested", 5)]


def test_openai_when_checked_as_bytes_then_transcript_names_chunks_and_sentinel() -> None:
    result = check_bytes("openai-chat", sse(openai_stream(usage=True)))
    assert result.ok, result.violations
    assert [e.kind for e in result.transcript] == ["chunk"] * 5 + ["usage", "[DONE]"]


def test_openai_when_invalid_utf8_or_oversize_then_sse_rules() -> None:
    body = sse(openai_stream()).replace(b'"lo"', b'"l\xff"')
    assert summary(check_bytes("openai-chat", body)) == [("sse.invalid-utf8", 2)]
    checker = get_checker("openai-chat")
    assert [v.rule for v in checker.feed(SSEEvent("", oversize=True))] == ["sse.event-too-large"]


# -- anthropic-messages -------------------------------------------------------------------------


def anthropic(events: list[Any]) -> list[tuple[str, int | None]]:
    return check_events("anthropic-messages", events)


def test_anthropic_when_stream_conforms_then_clean() -> None:
    assert anthropic(anthropic_stream()) == []
    assert anthropic(anthropic_stream([])) == []  # no content blocks at all


def test_anthropic_when_tool_use_and_thinking_blocks_then_clean() -> None:
    start, *_, delta, stop = anthropic_stream([])
    blocks = [
        anthropic_event(
            "content_block_start",
            index=0,
            content_block={"type": "thinking", "thinking": "", "signature": ""},
        ),
        anthropic_event(
            "content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "hm"}
        ),
        anthropic_event(
            "content_block_delta", index=0, delta={"type": "signature_delta", "signature": "s"}
        ),
        anthropic_event("content_block_stop", index=0),
        anthropic_event(
            "content_block_start",
            index=1,
            content_block={"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        ),
        anthropic_event(
            "content_block_delta",
            index=1,
            delta={"type": "input_json_delta", "partial_json": '{"a"'},
        ),
        anthropic_event("ping"),
        anthropic_event("content_block_stop", index=1),
    ]
    assert anthropic([start, *blocks, delta, stop]) == []


def test_anthropic_when_error_event_mid_stream_then_it_ends_the_stream_cleanly() -> None:
    error = anthropic_event("error", error={"type": "overloaded_error", "message": "Overloaded"})
    assert anthropic([*anthropic_stream()[:4], error]) == []
    assert anthropic([error]) == []
    assert anthropic([*anthropic_stream()[:4], error, anthropic_event("ping")]) == [
        ("seq.after-terminal", 5)
    ]


def test_anthropic_when_event_name_unknown_or_missing_then_a_warning_as_the_contract_is_open() -> (
    None
):
    events = anthropic_stream()
    events.insert(2, ("completion", {"type": "completion"}))
    events.insert(3, {"type": "ping"})  # no event: name -- the SDK skips it silently
    assert anthropic(events) == [("event.unknown-type-open", 2), ("event.unknown-type-open", 3)]


def test_closed_contract_when_event_type_unknown_then_still_an_error() -> None:
    assert check_events("text", [("bogus", "a token")])[:1] == [("event.unknown-type", 0)]


def test_anthropic_when_data_is_not_json_then_sse_data_not_json() -> None:
    events = anthropic_stream()
    events[1] = ("ping", "{")
    assert anthropic(events) == [("sse.data-not-json", 1)]


@pytest.mark.parametrize(
    ("index", "change"),
    [
        (2, lambda d: d.update(type="content_block_delta")),  # data disagrees with the name
        (-2, lambda d: d["delta"].update(stop_reason="finished")),
        (0, lambda d: d["message"].update(role="user")),
        (3, lambda d: d["delta"].update(type="text")),
    ],
    ids=["type-mismatch", "stop-reason", "role", "delta-type"],
)
def test_anthropic_when_event_malformed_then_event_schema(index: int, change: Any) -> None:
    events = copy.deepcopy(anthropic_stream())
    change(events[index][1])
    assert anthropic(events) == [("event.schema", index % len(events))]


def test_anthropic_when_block_before_message_start_then_seq_first() -> None:
    events = anthropic_stream()
    assert anthropic(events[2:]) == [("seq.first", 0)]


def test_anthropic_when_delta_outside_a_block_then_seq_order() -> None:
    events = anthropic_stream()
    del events[2]  # the first content_block_start
    checker = get_checker("anthropic-messages")
    from contract_fixtures import to_events

    found = [v for e in to_events(events) for v in checker.feed(e)]
    assert [(v.rule, v.event_index) for v in found] == [("seq.order", 2)]
    assert found[0].message == (
        "expected one of content_block_start, message_delta after event 1, got content_block_delta"
    )


def test_anthropic_when_second_message_start_then_seq_order_names_the_first() -> None:
    events = anthropic_stream()
    events.insert(3, events[0])
    checker = get_checker("anthropic-messages")
    from contract_fixtures import to_events

    found = [v for e in to_events(events) for v in checker.feed(e)]
    assert [(v.rule, v.message) for v in found] == [
        ("seq.order", 'a second "message_start" event (the first was event 0)')
    ]


def test_anthropic_when_message_stop_missing_then_seq_terminal() -> None:
    assert anthropic(anthropic_stream()[:-1]) == [("seq.terminal", None)]


def test_anthropic_when_event_after_message_stop_then_seq_after_terminal() -> None:
    assert anthropic([*anthropic_stream(), anthropic_event("ping")]) == [("seq.after-terminal", 11)]


def test_anthropic_when_block_index_skips_then_field_sequential() -> None:
    events = anthropic_stream()
    for i in (6, 7, 8):
        events[i][1]["index"] = 2
    assert anthropic(events) == [("field.sequential", 6)]


def test_anthropic_when_delta_index_is_not_the_open_block_then_field_sequential() -> None:
    events = copy.deepcopy(anthropic_stream())
    events[4][1]["index"] = 1
    checker = get_checker("anthropic-messages")
    from contract_fixtures import to_events

    found = [v for e in to_events(events) for v in checker.feed(e)]
    assert [(v.rule, v.event_index, v.message) for v in found] == [
        (
            "field.sequential",
            4,
            "index is 1 where 0 was expected (that of the last content_block_start)",
        )
    ]


# -- llm-debug ----------------------------------------------------------------------------------

FINAL = {"done": True, "final_response": {"output": "这是测试"}, "metrics": {"tokens": 3}}
LLM_ERROR = {"done": True, "error": "rate limited", "status": "error"}


def chunks(*texts: str) -> list[Any]:
    return [{"content": t, "done": False} for t in texts]


def llm(events: list[Any]) -> list[tuple[str, int | None]]:
    return check_events("llm-debug", events)


def test_llm_debug_when_stream_conforms_then_clean() -> None:
    assert llm([*chunks("这", "是", "测试"), FINAL, DONE]) == []
    assert llm([*chunks("这"), LLM_ERROR, DONE]) == []
    assert llm([{"tool_call": {"name": "search"}, "done": False}, FINAL, DONE]) == []
    assert llm([FINAL, DONE]) == []


def test_llm_debug_when_data_is_not_json_then_sse_data_not_json() -> None:
    assert llm([*chunks("a"), "a", FINAL, DONE]) == [("sse.data-not-json", 1)]


@pytest.mark.parametrize(
    "bad",
    [
        {"content": "x"},  # no done: none of the types
        {"content": 5, "done": False},
        {"contents": "x", "done": False},
        {"done": True, "error": "", "status": "error"},
        {"done": True},  # final without final_response
    ],
    ids=["no-done", "content-type", "typo", "empty-error", "bare-final"],
)
def test_llm_debug_when_object_malformed_then_event_schema(bad: dict[str, Any]) -> None:
    events = [*chunks("a"), bad, FINAL, DONE] if not bad.get("done") else [*chunks("a"), bad, DONE]
    assert llm(events) == [("event.schema", 1)]


def test_llm_debug_when_done_first_then_seq_first() -> None:
    assert llm([DONE]) == [("seq.first", 0)]


def test_llm_debug_when_chunk_after_final_then_seq_order() -> None:
    assert llm([*chunks("a"), FINAL, *chunks("b"), DONE]) == [("seq.order", 2)]


def test_llm_debug_when_done_missing_then_seq_terminal() -> None:
    assert llm([*chunks("a"), FINAL]) == [("seq.terminal", None)]


def test_llm_debug_when_event_after_done_then_seq_after_terminal() -> None:
    assert llm([*chunks("a"), FINAL, DONE, DONE]) == [("seq.after-terminal", 3)]


# -- agent-stages -------------------------------------------------------------------------------


def chunk(agent: str, text: str = "x") -> dict[str, Any]:
    return {"type": "chunk", "content": text, "agent": agent}


def complete(agent: str) -> dict[str, Any]:
    return {"type": "complete", "data": {"ok": True}, "agent": agent}


AGENT_DONE = {"type": "done", "summary": {"stages": 2}}
A, B = "intent_analyzer", "curriculum_architect"


def agents(events: list[Any]) -> list[tuple[str, int | None]]:
    return check_events("agent-stages", events)


def test_agent_stages_when_stream_conforms_then_clean() -> None:
    assert agents([chunk(A), chunk(A), complete(A), chunk(B), complete(B), AGENT_DONE]) == []
    failed = {"type": "error", "error": "invalid JSON", "agent": B}
    assert agents([chunk(A), complete(A), chunk(B), failed, AGENT_DONE]) == []
    assert agents([chunk(A), complete(A), failed]) == []  # the run may stop at the failure


def test_agent_stages_when_type_unknown_then_event_unknown_type() -> None:
    assert agents([{"type": "progress", "agent": A}, AGENT_DONE]) == [("event.unknown-type", 0)]


def test_agent_stages_when_chunk_has_no_agent_then_event_schema() -> None:
    assert agents([{"type": "chunk", "content": "x"}, complete(A), AGENT_DONE]) == [
        ("event.schema", 0)
    ]


def test_agent_stages_when_done_cuts_a_stage_short_then_seq_order() -> None:
    assert agents([chunk(A), AGENT_DONE]) == [("seq.order", 1)]


def test_agent_stages_when_done_missing_then_seq_terminal() -> None:
    assert agents([chunk(A), complete(A)]) == [("seq.terminal", None)]


def test_agent_stages_when_event_after_done_then_seq_after_terminal() -> None:
    assert agents([complete(A), AGENT_DONE, chunk(B)]) == [("seq.after-terminal", 2)]


def test_agent_stages_when_agent_completes_twice_then_field_once_per_key() -> None:
    assert agents([chunk(A), complete(A), complete(A), AGENT_DONE]) == [("field.once-per-key", 2)]


def test_agent_stages_when_interleaved_agent_never_completes_then_field_once_per_key() -> None:
    assert agents([chunk(A), chunk(B), complete(A), AGENT_DONE]) == [("field.once-per-key", None)]


def test_agent_stages_when_agent_speaks_after_completing_then_field_after_final() -> None:
    assert agents([chunk(A), complete(A), chunk(A), complete(B), AGENT_DONE]) == [
        ("field.after-final", 2)
    ]


# -- text ---------------------------------------------------------------------------------------


def test_text_when_stream_conforms_then_clean() -> None:
    body = b"data: \xe4\xbd\xa0\n\ndata: \xe5\xa5\xbd\n\ndata: {not json, fine}\n\n"
    assert summary(check_bytes("text", body)) == []
    assert summary(check_bytes("text", body + b"event: error\ndata: timeout\n\n")) == []
    assert summary(check_bytes("text", b"")) == []  # nothing to say is a complete answer


def test_text_when_event_name_unknown_then_event_unknown_type() -> None:
    body = b"data: a\n\nevent: done\ndata: x\n\n"
    assert summary(check_bytes("text", body)) == [("event.unknown-type", 1)]


def test_text_when_error_has_no_message_then_event_schema() -> None:
    body = b"data: a\n\nevent: error\ndata:\n\n"
    assert summary(check_bytes("text", body)) == [("event.schema", 1)]


def test_text_when_token_after_error_then_seq_after_terminal() -> None:
    body = b"event: error\ndata: boom\n\ndata: a\n\n"
    assert summary(check_bytes("text", body)) == [("seq.after-terminal", 1)]


def test_text_when_bytes_are_not_utf8_then_sse_invalid_utf8() -> None:
    assert summary(check_bytes("text", b"data: \xff\n\n")) == [("sse.invalid-utf8", 0)]


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value)


def test_message_fixture_is_not_mutated() -> None:
    assert MESSAGE["content"] == []
