"""``assert_conforms``: events checked in-process, failures that name the rule and the event."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness._core.errors import UsageError
from harness._core.rules import Severity
from harness._core.sse import SSEEvent
from harness._gateway.server import load_module
from harness._runners.inprocess import assert_conforms, assert_conforms_async

pytestmark = pytest.mark.timeout(30)

EXAMPLES = Path(__file__).parent.parent / "examples"
Event = dict[str, Any]


@pytest.fixture(scope="module")
def good() -> ModuleType:
    return load_module(str(EXAMPLES / "prefab_good.py"))


@pytest.fixture(scope="module")
def buggy() -> ModuleType:
    return load_module(str(EXAMPLES / "prefab_buggy.py"))


def failure(events: Any) -> str:
    with pytest.raises(AssertionError) as info:
        assert_conforms(events)
    return str(info.value)


# -- the prefab guide's own test, rewritten ------------------------------------------------------


def my_stream_function(param: str) -> Iterator[Event]:
    """The guide's example function, with its progress made concrete."""
    try:
        yield {"type": "start", "data": {"param": param}}
        for i in range(5):
            yield {"type": "progress", "data": {"current": i + 1, "total": 5}}
        yield {"type": "done", "data": {"status": "completed"}}
    except Exception as e:
        yield {"type": "error", "data": str(e), "error_code": "UNEXPECTED_ERROR"}


def test_my_stream_function() -> None:
    assert_conforms(my_stream_function("test"))


def test_assert_conforms_when_stream_conforms_then_returns_the_result() -> None:
    result = assert_conforms(my_stream_function("test"))
    assert result.ok
    assert result.events == 7
    assert result.contract == "prefab"
    assert result.target == "my_stream_function(...)"


# -- what it accepts ----------------------------------------------------------------------------


def test_assert_conforms_when_list_of_dicts_then_checked() -> None:
    assert assert_conforms([{"type": "start"}, {"type": "done"}]).events == 2


def test_assert_conforms_when_sse_events_then_fed_as_they_are() -> None:
    evs = [SSEEvent('{"type": "start"}', id="0"), SSEEvent("not json", id="1")]
    message = failure(evs)
    assert "sse.data-not-json (error) at event #1" in message


def test_assert_conforms_when_async_generator_outside_a_loop_then_run() -> None:
    async def agen() -> AsyncIterator[Event]:
        yield {"type": "start"}
        await asyncio.sleep(0)
        yield {"type": "progress", "data": {"current": 2, "total": 1}}

    message = failure(agen())
    assert "progress.current-le-total (error) at event #1" in message


def test_assert_conforms_async_when_awaited_then_checks_and_closes_the_generator() -> None:
    closed = []

    async def agen() -> AsyncIterator[Event]:
        try:
            yield {"type": "start"}
            yield {"type": "done"}
            yield {"type": "content", "data": "late"}
        finally:
            closed.append(True)

    async def main() -> None:
        with pytest.raises(AssertionError, match=r"seq\.after-terminal \(error\) at event #2"):
            await assert_conforms_async(agen())
        with pytest.raises(TypeError, match="await assert_conforms_async"):
            assert_conforms(agen())

    asyncio.run(main())
    assert closed == [True]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (my_stream_function, "call it: assert_conforms(fn(...))"),
        ({"type": "start"}, "got dict"),
        ("start", "got str"),
        (42, "got int"),
    ],
)
def test_assert_conforms_when_not_events_then_type_error(value: Any, needle: str) -> None:
    with pytest.raises(TypeError, match=re.escape(needle)):
        assert_conforms(value)


def test_assert_conforms_when_unknown_contract_then_usage_error() -> None:
    with pytest.raises(UsageError, match="did you mean 'prefab'"):
        assert_conforms([], contract="prefob")


# -- failures -----------------------------------------------------------------------------------


def test_assert_conforms_when_rule_broken_then_message_names_rule_index_and_event() -> None:
    message = failure(
        [
            {"type": "start", "data": {"total": 2}},
            {"type": "progress", "data": {"current": 3, "total": 2}},
            {"type": "done"},
        ]
    )
    assert message.splitlines()[0] == (
        "the stream does not conform to the prefab contract: 1 error, 0 warnings in 3 events"
    )
    assert "progress.current-le-total (error) at event #1: progress current 3 is greater" in message
    assert 'event #1: {"type": "progress", "data": {"current": 3, "total": 2}}' in message


def test_assert_conforms_when_no_terminal_event_then_seq_terminal_without_index() -> None:
    message = failure([{"type": "start"}, {"type": "content", "data": "x"}])
    assert "  seq.terminal (error): the stream ended after 2 events" in message


def test_assert_conforms_when_only_warnings_then_passes_and_returns_them() -> None:
    result = assert_conforms([{"type": "start"}, {"type": "error", "data": "no code"}])
    assert [(v.rule, v.severity) for v in result.violations] == [("error.code", Severity.WARNING)]


def test_assert_conforms_when_generator_raises_then_gen_raised_with_cause_chained() -> None:
    def gen() -> Iterator[Event]:
        yield {"type": "start"}
        raise ZeroDivisionError("division by zero")

    with pytest.raises(AssertionError) as info:
        assert_conforms(gen())
    message = str(info.value)
    assert "gen.raised (error): ZeroDivisionError: division by zero, raised at" in message
    assert "test_assert.py" in message
    assert "after 1 item" in message
    assert "seq.terminal" not in message  # one problem, one violation
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_assert_conforms_when_item_not_json_then_gen_not_serializable_and_generator_closed() -> (
    None
):
    closed = []

    def gen() -> Iterator[Event]:
        try:
            yield {"type": "start"}
            yield {"type": "done", "data": {"x": float("nan")}}
        finally:
            closed.append(True)

    message = failure(gen())
    assert "gen.not-serializable (error): item #1 (dict) cannot be sent as JSON" in message
    assert closed == [True]


def test_assert_conforms_when_endless_then_stops_at_max_events_with_a_warning() -> None:
    def endless() -> Iterator[Event]:
        yield {"type": "start"}
        while True:
            yield {"type": "content", "data": "x"}

    result = assert_conforms(endless(), max_events=50)
    assert result.events == 50
    assert [v.rule for v in result.violations] == ["limit.max-events"]


# -- the bundled examples -----------------------------------------------------------------------


def test_assert_conforms_when_good_example_then_every_function_passes(good: ModuleType) -> None:
    assert_conforms(good.batch_process([1, 2, 3]))
    assert_conforms(good.batch_process([]))
    assert_conforms(good.chat_stream([{"role": "user", "content": "héllo " * 30}]))
    assert_conforms(good.process_lines("a\nb", start=-5))
    assert_conforms(good.process_lines("héllo"))


@pytest.mark.parametrize(
    ("call", "rule"),
    [
        (lambda m: m.batch_process([]), "gen.raised"),
        (lambda m: m.batch_process([1, 2, 3]), "progress.current-le-total"),
        (lambda m: m.process_lines("a\nb", start=-5), "progress.bounds"),
        (lambda m: m.process_lines("héllo"), "seq.terminal"),
        (lambda m: m.chat_stream([{"role": "user", "content": "w " * 20}]), "gen.not-serializable"),
    ],
)
def test_assert_conforms_when_buggy_example_then_the_planted_bug_is_named(
    buggy: ModuleType, call: Any, rule: str
) -> None:
    assert_conforms(buggy.batch_process([1, 2]))  # the happy path passes, as the guide's test does
    assert f"{rule} (error)" in failure(call(buggy))
