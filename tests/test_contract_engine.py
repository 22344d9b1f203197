"""The engine on small inline contracts: recovery after order violations, invariants, labels."""

from __future__ import annotations

import json
from typing import Any

import pytest
from contract_fixtures import to_events

from harness._contracts.engine import NO_VIOLATIONS, ContractEngine
from harness._contracts.file import Contract, compile_contract
from harness._contracts.registry import get_checker
from harness._core.sse import SSEEvent


def compiled(**doc: Any) -> Contract:
    base = {"version": 1, "name": "t", "type": {"from": "/type"}}
    return compile_contract({**base, **doc}, label="t.yaml", base_uri="file:///tmp/t.yaml")


def run(
    contract: Contract, events: list[Any], request: object = None
) -> list[tuple[str, int | None, str]]:
    engine = ContractEngine(contract, request)
    found = []
    for event in to_events(events):
        found += engine.feed(event)
        engine.event_type(event)
    found += engine.finish()
    return [(v.rule, v.event_index, v.message) for v in found]


ABC = compiled(types={"a": None, "b": None, "c": None}, order={"pattern": "a b* c"})


def test_recovery_when_first_event_extra_then_one_violation_not_a_cascade() -> None:
    # "b" first: either an "a" is missing (jump) or the "b" is extra (stay); what follows decides.
    repeated = compiled(types={"a": None, "b": None, "c": None}, order={"pattern": "(a b* c)+"})
    for stream in (["b", "a", "b", "c"], ["b", "b", "c"], ["c", "a", "c"]):
        found = run(repeated, [{"type": t} for t in stream])
        assert [(r, i) for r, i, _ in found] == [("seq.first", 0)], stream


def test_recovery_when_only_first_type_comes_late_then_it_is_out_of_order() -> None:
    # "a" may only open the stream: once "b" came, the stream has begun under every reading.
    found = run(ABC, [{"type": "b"}, {"type": "a"}, {"type": "c"}])
    assert found == [
        ("seq.first", 0, 'the stream begins with a "b" event instead of "a"'),
        ("seq.order", 1, 'a "a" event after the stream had already begun'),
    ]


def test_recovery_when_event_misplaced_then_message_lists_what_was_expected() -> None:
    found = run(ABC, [{"type": "a"}, {"type": "c"}, {"type": "b"}])
    assert found == [
        ("seq.after-terminal", 2, 'an event after the "c" event (event 1) that ended the stream')
    ]
    found = run(ABC, [{"type": "a"}, {"type": "a"}, {"type": "c"}])
    assert found == [("seq.order", 1, 'a second "a" event (the first was event 0)')]
    two = compiled(types={"a": None, "b": None, "c": None}, order={"pattern": "a (b c)+"})
    found = run(two, [{"type": "a"}, {"type": "b"}, {"type": "a"}, {"type": "c"}])
    assert found == [("seq.order", 2, 'a second "a" event (the first was event 0)')]
    found = run(two, [{"type": "a"}, {"type": "c"}, {"type": "b"}, {"type": "c"}])
    assert found == [("seq.order", 1, "expected b after event 0, got c")]


def test_feed_when_event_valid_then_shared_empty_list_for_every_contract() -> None:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
    }
    for name, event in [
        ("openai-chat", SSEEvent(json.dumps(chunk))),
        ("text", SSEEvent("tok")),
        ("agent-stages", SSEEvent('{"type": "chunk", "content": "x", "agent": "a"}')),
    ]:
        assert get_checker(name).feed(event) is NO_VIOLATIONS
    assert NO_VIOLATIONS == []


def test_checkers_when_two_streams_then_state_is_not_shared() -> None:
    first, second = get_checker("openai-chat"), get_checker("openai-chat")
    first.feed(SSEEvent("[DONE]"))
    assert [v.rule for v in first.feed(SSEEvent("[DONE]"))] == ["seq.after-terminal"]
    assert [v.rule for v in second.feed(SSEEvent("[DONE]"))] == ["seq.first"]


def test_constant_when_until_type_comes_then_value_may_change() -> None:
    contract = compiled(
        types={"open": None, "item": None, "close": None},
        order={"pattern": "(open item* close)*"},
        invariants=[{"invariant": "constant", "pointers": ["/id"], "until": ["close"]}],
    )
    stream = [
        {"type": "open", "id": 1},
        {"type": "item", "id": 1},
        {"type": "close", "id": 1},
        {"type": "open", "id": 2},
        {"type": "item", "id": 3},
        {"type": "close"},
    ]
    assert run(contract, stream) == [("field.constant", 4, "id changed from 2 (event 3) to 3")]


def test_invariants_when_field_invalid_per_schema_then_not_reported_twice() -> None:
    contract = compiled(
        types={"t": {"schema": {"properties": {"n": {"type": "integer"}}}}},
        invariants=[{"invariant": "constant", "pointers": ["/n"]}],
    )
    assert [r for r, _, _ in run(contract, [{"type": "t", "n": 1}, {"type": "t", "n": "x"}])] == [
        "event.schema"
    ]


def test_requested_when_request_unknown_then_not_applied() -> None:
    contract = compiled(
        types={"a": None, "u": None},
        order={"pattern": "a u?"},
        invariants=[{"invariant": "requested", "types": ["u"], "request": "/want"}],
    )
    assert run(contract, [{"type": "a"}]) == []
    assert run(contract, [{"type": "a"}], {"want": False}) == []
    assert [r for r, _, _ in run(contract, [{"type": "a"}], {"want": True})] == ["seq.requested"]


def test_hints_when_given_then_appended_to_schema_messages() -> None:
    contract = compiled(
        types={
            "t": {
                "schema": {
                    "type": "object",
                    "properties": {"type": {"const": "t"}},
                    "additionalProperties": False,
                }
            }
        },
        hints={"additionalProperties": "see the wiki"},
    )
    [(_, _, message)] = run(contract, [{"type": "t", "x": 1}])
    assert message == 'the "t" event does not match its schema: unexpected key "x" (see the wiki)'


def test_type_at_deep_pointer_when_missing_or_wrong_then_named_in_the_message() -> None:
    contract = compiled(type={"from": "/meta/kind"}, types={"t": None})
    found = run(contract, [{"meta": {}}, {"meta": {"kind": 1}}, {"meta": {"kind": "t"}}])
    assert found == [
        ("event.schema", 0, 'the event has no "meta.kind"'),
        ("event.schema", 1, 'the event "meta.kind" is 1, not a string'),
    ]


def test_event_type_when_framings_differ_then_labels_name_the_type_or_the_fault() -> None:
    checker = get_checker("openai-chat")
    assert checker.event_type(SSEEvent("[DONE]")) == "[DONE]"
    assert checker.event_type(SSEEvent("{")) == "(not json)"
    assert checker.event_type(SSEEvent('{"error": {"message": "x"}}')) == "error"
    assert checker.event_type(SSEEvent("[1]")) == "chunk"  # the catch-all case
    text = get_checker("text")
    assert text.event_type(SSEEvent("tok")) == "message"
    assert text.event_type(SSEEvent("tok", event="error")) == "error"
    assert text.event_type(SSEEvent("tok", event="weird")) == "weird"
    assert get_checker("llm-debug").event_type(SSEEvent('{"content": "x"}')) == "(no type)"
    anthropic = get_checker("anthropic-messages")
    assert anthropic.event_type(SSEEvent("{", event="ping")) == "ping"


@pytest.mark.parametrize("text", ['{"type": "t", "x": NaN}', '{"type": "t", "x": Infinity}'])
def test_feed_when_not_json_constants_then_sse_data_not_json(text: str) -> None:
    engine = ContractEngine(compiled(types={"t": None}))
    assert [v.rule for v in engine.feed(SSEEvent(text))] == ["sse.data-not-json"]
