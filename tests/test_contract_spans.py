"""The ``spans`` invariant (harness/_contracts/spans.py) on small contracts of its own: keys of
several pointers, spans nested in spans (``parent_close``), what follows a span (``after``),
``unique`` keys, a close standing alone (``open_optional``), and bad parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness._contracts import spans
from harness._contracts.engine import ContractEngine
from harness._contracts.file import Contract, compile_contract
from harness._core.errors import UsageError
from harness._core.sse import SSEEvent

TYPES = ["item", "part", "delta", "part_end", "item_end", "result", "end"]


def compiled(order: str | None = None, **span: Any) -> Contract:
    doc: dict[str, Any] = {
        "version": 1,
        "name": "t",
        "type": {"from": "/type"},
        "types": dict.fromkeys(TYPES),
        "invariants": [{"invariant": "spans", **span}],
    }
    if order is not None:
        doc["order"] = {"pattern": order}
    return compile_contract(doc, label="t.yaml", base_uri="file:///tmp/t.yaml")


def run(contract: Contract, events: list[dict[str, Any]]) -> list[tuple[str, int | None, str]]:
    engine = ContractEngine(contract)
    found = []
    for event in events:
        found += engine.feed(SSEEvent(json.dumps(event)))
    found += engine.finish()
    return [(v.rule, v.event_index, v.message) for v in found]


def ev(kind: str, item: int | None = None, part: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    if item is not None:
        out["i"] = item
    if part is not None:
        out["j"] = part
    return out


PARTS = compiled(
    key=["/i", "/j"],
    open=["part"],
    inside=["delta"],
    close=["part_end"],
    parent_close=["item_end"],
)


def test_compound_key_when_parts_interleave_by_both_values_then_no_violation() -> None:
    stream = [
        ev("part", 0, 0),
        ev("part", 0, 1),
        ev("part", 1, 0),
        ev("delta", 0, 1),
        ev("delta", 1, 0),
        ev("delta", 0, 0),
        ev("part_end", 0, 0),
        ev("part_end", 0, 1),
        ev("item_end", 0),
        ev("part_end", 1, 0),
        ev("item_end", 1),
    ]
    assert run(PARTS, stream) == []


def test_compound_key_when_one_value_differs_then_not_open_naming_both() -> None:
    found = run(PARTS, [ev("part", 0, 0), ev("delta", 0, 1), ev("part_end", 0, 0)])
    assert found == [
        ("span.not-open", 1, 'a "delta" for i 0, j 1, which no "part" opened'),
    ]


def test_not_open_when_more_events_of_that_span_then_reported_once() -> None:
    found = run(PARTS, [ev("delta", 0, 0), ev("delta", 0, 0), ev("part_end", 0, 0)])
    assert [(rule, at) for rule, at, _ in found] == [("span.not-open", 0)]


def test_parent_close_when_a_part_is_still_open_then_unclosed_at_that_event() -> None:
    stream = [ev("part", 0, 0), ev("part", 0, 1), ev("part_end", 0, 0), ev("item_end", 0)]
    [(rule, at, message)] = run(PARTS, stream)
    assert (rule, at) == ("span.unclosed", 3)
    assert message == (
        'i 0, j 1 was opened at event 1 and not closed by "part_end" before the "item_end" '
        "at event 3 that encloses it"
    )


def test_parent_close_when_other_item_then_its_parts_are_left_alone() -> None:
    stream = [ev("part", 1, 0), ev("item_end", 0), ev("part_end", 1, 0), ev("item_end", 1)]
    assert run(PARTS, stream) == []


def test_parent_close_when_event_lacks_every_key_then_closes_all_spans() -> None:
    found = run(PARTS, [ev("part", 0, 0), ev("part", 3, 1), ev("item_end")])
    assert [(rule, at) for rule, at, _ in found] == [("span.unclosed", 2), ("span.unclosed", 2)]


def test_part_closed_twice_then_not_open_names_the_first_close() -> None:
    found = run(PARTS, [ev("part", 0, 0), ev("part_end", 0, 0), ev("part_end", 0, 0)])
    assert found == [
        ("span.not-open", 2, 'a "part_end" for i 0, j 0 after that span ended (event 1)'),
    ]


def test_reopened_when_open_key_opens_again_then_violation_and_unique_after_close() -> None:
    again = [ev("part", 0, 0), ev("part", 0, 0), ev("part_end", 0, 0)]
    assert [r for r, _, _ in run(PARTS, again)] == ["span.reopened"]
    reuse = [ev("part", 0, 0), ev("part_end", 0, 0), ev("part", 0, 0), ev("part_end", 0, 0)]
    assert run(PARTS, reuse) == []  # without unique, a key may be used again once closed
    unique = compiled(key=["/i", "/j"], open=["part"], close=["part_end"], unique=True)
    [(rule, at, message)] = run(unique, reuse)
    assert (rule, at) == ("span.reopened", 2)
    assert "(event 0 opened it, event 1 closed it" in message


TOOLS = compiled(
    key="/i",
    open=["item"],
    inside=["delta"],
    close=["item_end"],
    after=["result"],
    unique=True,
    open_optional=True,
)


def test_after_when_span_closed_or_standing_alone_then_no_violation() -> None:
    streamed = [ev("item", 1), ev("delta", 1), ev("item_end", 1), ev("result", 1), ev("result", 1)]
    assert run(TOOLS, streamed) == []
    assert run(TOOLS, [ev("item_end", 2), ev("result", 2)]) == []  # open_optional


def test_after_when_span_still_open_then_not_closed() -> None:
    [(rule, at, message)] = run(TOOLS, [ev("item", 1), ev("result", 1), ev("item_end", 1)])
    assert (rule, at) == ("span.not-closed", 1)
    assert message == (
        'a "result" for i 1 before that span ended (it opened at event 0 and ends with "item_end")'
    )


def test_after_when_key_never_had_a_span_then_not_open_once() -> None:
    found = run(TOOLS, [ev("result", 4), ev("result", 4)])
    assert found == [
        ("span.not-open", 0, 'a "result" for i 4, which no "item" or "item_end" opened')
    ]


def test_unclosed_at_end_when_complete_stream_then_reported_without_index() -> None:
    found = run(TOOLS, [ev("item", 1), ev("delta", 1)])
    assert found == [
        ("span.unclosed", None, 'i 1 was opened at event 0 and never closed by "item_end"')
    ]


def test_order_rejects_event_when_span_explains_it_then_only_the_span_violation() -> None:
    ordered = compiled(
        order="(item | item_end | result | (part delta* part_end))* end",
        key=["/i", "/j"],
        open=["part"],
        inside=["delta"],
        close=["part_end"],
    )
    found = run(ordered, [ev("part", 0, 0), ev("part_end", 0, 0), ev("delta", 0, 0), ev("end")])
    assert [(rule, at) for rule, at, _ in found] == [("span.not-open", 2)]
    # an order violation the span has nothing to say about stays the order's
    found = run(ordered, [ev("part", 0, 0), ev("part", 0, 1), ev("part_end", 0, 1), ev("end")])
    assert [rule for rule, _, _ in found] == ["seq.order"]


def test_memory_bound_when_too_many_keys_then_unknown_keys_not_judged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spans, "MAX_TRACKED", 3)
    stream = [ev("item", k) for k in range(5)] + [ev("delta", 4), ev("delta", 0)]
    stream += [ev("item_end", k) for k in range(5)]
    assert run(TOOLS, stream) == []  # key 4 was not kept: its delta is not called not-open


@pytest.mark.parametrize(
    ("span", "where"),
    [
        ({"key": "/i", "open": ["item"], "close": ["item"]}, "/invariants/0/close"),
        (
            {"key": "/i", "open": ["item"], "close": ["end"], "after": ["end"]},
            "/invariants/0/after",
        ),
        ({"key": [], "open": ["item"], "close": ["end"]}, "/invariants/0/key"),
        ({"key": ["i"], "open": ["item"], "close": ["end"]}, "/invariants/0/key"),
        ({"key": "/i", "open": ["item"], "close": ["end"], "unique": "yes"}, "/invariants/0"),
    ],
)
def test_bad_parameters_when_compiled_then_usage_error_with_pointer(
    span: dict[str, Any], where: str
) -> None:
    with pytest.raises(UsageError) as caught:
        compiled(**span)
    assert f"t.yaml: {where}" in str(caught.value)
