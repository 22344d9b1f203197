"""The progress invariant's fast reading (a few lookups for the usual event) judges every event
exactly as its definition, the pointer-by-pointer reading, does."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import harness._catalog  # noqa: F401  (every rule registered, for violation())
from harness._contracts.invariants import _Progress

COUNTERS = {
    "current": (("data", "current"), ("data", "processed")),
    "total": (("data", "total"),),
    "percentage": (("data", "percentage"),),
}
numbers = st.one_of(
    st.integers(-3, 12), st.floats(-3, 12, allow_nan=False), st.booleans(), st.just("7")
)
inner = st.fixed_dictionaries(
    {}, optional={"current": numbers, "processed": numbers, "total": numbers}
)
events = st.one_of(
    st.fixed_dictionaries({"type": st.just("progress"), "data": inner}),
    st.fixed_dictionaries(
        {"type": st.just("progress"), "data": st.one_of(st.none(), st.just([1]))}
    ),
    st.just([]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=12))
def test_progress_fast_reading_when_any_events_then_the_same_violations_as_the_definition(
    stream: list[Any],
) -> None:
    fast, definition = _Progress(COUNTERS), _Progress(COUNTERS)
    assert fast._first is not None  # the prefab shape takes the fast reading
    for index, event in enumerate(stream):
        got = fast.feed("progress", event, index, ())
        want = definition._feed_any(event, index, ())
        assert [(v.rule, v.message, v.event_index) for v in got] == [
            (v.rule, v.message, v.event_index) for v in want
        ]
