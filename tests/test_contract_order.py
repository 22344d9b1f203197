"""The order pattern: parsed, compiled to a DFA that agrees with Python's ``re``; its helpers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness._contracts.order import MAX_STATES, OrderError, compile_order

PREFAB = "start (progress | content)* (done | error)"


def accepts(pattern: str, kinds: list[str], **extra: list[str]) -> bool:
    order = compile_order(pattern, **extra)
    state: int | None = 0
    for kind in kinds:
        assert state is not None
        state = order.step(state, kind)
        if state is None:
            return False
    return state in order.accepting


@pytest.mark.parametrize(
    ("kinds", "ok"),
    [
        (["start", "done"], True),
        (["start", "progress", "content", "progress", "error"], True),
        (["start"], False),
        (["done"], False),
        (["start", "start", "done"], False),
        (["start", "done", "done"], False),
        ([], False),
    ],
)
def test_prefab_pattern_when_stepped_then_accepts_exactly_its_language(
    kinds: list[str], ok: bool
) -> None:
    assert accepts(PREFAB, kinds) is ok


def test_quoted_names_when_used_then_any_text_is_a_name() -> None:
    assert accepts('chunk+ "[DONE]"', ["chunk", "chunk", "[DONE]"])
    assert not accepts('chunk+ "[DONE]"', ["[DONE]"])


@pytest.mark.parametrize(
    ("pattern", "words", "column"),
    [
        ("", "empty", 0),
        ("a (b | c", "never closed", 9),
        ("a | | b", "expected a type name", 5),
        ("a )", "unexpected ')'", 3),
        ("* a", "unexpected '*'", 1),
        ("a & b", "unexpected '&'", 3),
        ('a ""', "empty quoted name", 3),
        ("()", "expected a type name", 2),
    ],
)
def test_compile_when_pattern_malformed_then_order_error_with_column(
    pattern: str, words: str, column: int
) -> None:
    with pytest.raises(OrderError, match=re.escape(words)) as info:
        compile_order(pattern)
    assert info.value.column == column


def test_compile_when_pattern_explodes_then_refused() -> None:
    # (a|b)* a (a|b){n}: the classic exponential DFA.
    pattern = "(a | b)* a " + " ".join(["(a | b)"] * 12)
    with pytest.raises(OrderError, match=str(MAX_STATES)):
        compile_order(pattern)


def test_helpers_when_prefab_then_name_first_ending_and_only_first_types() -> None:
    order = compile_order(PREFAB)
    rank = ["start", "progress", "content", "done", "error"]
    assert order.expected(0, rank) == ["start"]
    body = order.step(0, "start")
    assert body is not None
    assert order.expected(body, rank) == ["progress", "content", "done", "error"]
    assert order.ending(rank) == ["done", "error"]
    assert order.only_first == {"start"}
    assert order.names == ("start", "progress", "content", "done", "error")
    ended = order.step(body, "done")
    assert ended in order.ended and body not in order.ended


def test_recover_when_type_comes_early_then_jumps_to_nearest_state_allowing_it() -> None:
    order = compile_order(PREFAB)
    body = order.step(0, "start")
    assert order.recover(0, "content") == body
    assert order.recover(0, "done") in order.ended
    assert order.recover(body or 0, "start") is None  # a second start: nowhere to go


def test_anywhere_types_when_used_then_allowed_between_events_but_not_after_the_end() -> None:
    pattern = "a b"
    assert accepts(pattern, ["ping", "a", "ping", "ping", "b"], anywhere=["ping"])
    assert not accepts(pattern, ["a", "b", "ping"], anywhere=["ping"])
    assert compile_order(pattern, anywhere=["ping"]).expected(0, ["a", "b", "ping"]) == ["a"]


def test_abort_types_when_used_then_end_the_stream_from_anywhere() -> None:
    assert accepts("a b c", ["a", "error"], abort=["error"])
    assert accepts("a b c", ["error"], abort=["error"])
    assert not accepts("a b c", ["a", "b", "c", "error"], abort=["error"])
    order = compile_order("a b c", abort=["error"])
    assert order.ending(["a", "b", "c", "error"]) == ["c", "error"]


def test_compile_when_type_both_anywhere_and_abort_then_refused() -> None:
    with pytest.raises(OrderError, match="both"):
        compile_order("a", anywhere=["x"], abort=["x"])


# -- the DFA agrees with Python's regular expressions ------------------------------------------

LETTERS = "abc"


@st.composite
def patterns(draw: st.DrawFn, depth: int = 3) -> str:
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(LETTERS))
    kind = draw(st.sampled_from(["seq", "alt", "star", "plus", "opt"]))
    inner = draw(patterns(depth - 1))
    if kind == "seq":
        return f"{inner} {draw(patterns(depth - 1))}"
    if kind == "alt":
        return f"({inner} | {draw(patterns(depth - 1))})"
    return f"({inner}){ {'star': '*', 'plus': '+', 'opt': '?'}[kind] }"


@settings(max_examples=300)
@given(patterns(), st.lists(st.lists(st.sampled_from(LETTERS), max_size=6), max_size=8))
def test_dfa_when_compared_with_python_re_then_same_language(
    pattern: str, words: list[list[str]]
) -> None:
    python = re.compile(pattern.replace(" ", ""))
    for word in words:
        assert accepts(pattern, word) == bool(python.fullmatch("".join(word))), (pattern, word)
