"""The ``spans`` invariant: things opened, continued and closed under one key.

Streams interleave spans -- an AI SDK text part (``text-start``, ``text-delta``*, ``text-end``
under one ``id``), a tool call's input (by ``toolCallId``), a Responses content part -- and a
client finds the span a delta belongs to by its key.  The key is one JSON pointer or several
(``[/output_index, /content_index]``): a content part is known by its item and its index in
that item together.

A span is opened by an ``open`` type, continued by ``inside`` types and closed by a ``close``
type.  Around that, a contract may say:

* ``parent_close`` -- types that close the span *enclosing* these ones: a Responses
  ``output_item.done`` carries ``output_index`` but no ``content_index``, and every content
  part whose key begins with that ``output_index`` must be closed by then.  The event's values
  at the leading pointers of ``key`` (up to the first it lacks) are the prefix it closes.
* ``after`` -- types that follow a span and may only come once it closed (a tool's output after
  its input became available).
* ``unique: true`` -- a key names one span per stream (a tool call id): opening it again, even
  after it closed, is ``span.reopened``.  Opening a key that is still open always is.
* ``open_optional: true`` -- a close event may stand alone for a key never opened: a span of
  one event (the AI SDK sends ``tool-input-available`` alone when the input was not streamed).

One problem, one violation: an event for a key that is not open opens it as it stands (its
other events then pass, and it is not owed a close), and what this invariant finds on an event
the order rejected replaces the ``seq.order`` (:attr:`Spans.explains_order`).  Memory is
bounded: past :data:`MAX_TRACKED` keys, unknown keys are no longer judged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from harness._contracts.pointer import MISSING, Pointer, is_under, pointer_name, resolve
from harness._contracts.rules import (
    one_of,
    show,
    span_not_closed,
    span_not_open,
    span_reopened,
    span_unclosed,
)
from harness._core.rules import Violation, violation

__all__ = ["MAX_TRACKED", "SpanError", "SpanSpec", "Spans", "build_spans"]

#: Keys (open, and closed) one stream's spans keep before unknown keys are no longer judged.
MAX_TRACKED: Final = 10_000

_Key = tuple[object, ...]
_Invalid = frozenset[tuple[str, ...]]


class _Params(Protocol):
    """What :func:`build_spans` reads parameters with (``invariants._Params``)."""

    where: str
    declared: Sequence[str]
    raw: Any

    def pointer(self, key: str, required: bool = True) -> Pointer | None: ...
    def pointers(self, key: str) -> list[Pointer]: ...
    def types(self, key: str = "types", required: bool = False) -> frozenset[str] | None: ...
    def flag(self, key: str, default: bool) -> bool: ...


@dataclass(frozen=True, slots=True)
class SpanSpec:
    keys: tuple[Pointer, ...]
    opens: frozenset[str]
    inside: frozenset[str]
    closes: frozenset[str]
    parent_closes: frozenset[str] = frozenset()
    after: frozenset[str] = frozenset()
    unique: bool = False
    open_optional: bool = False
    opened_by: str = ""  # for messages: '"text-start"', '"a" or "b"'
    begun_by: str = ""  # what may begin a span: with open_optional, the close types too
    closed_by: str = ""

    @property
    def types(self) -> frozenset[str]:
        return self.opens | self.inside | self.closes | self.parent_closes | self.after


def _tag(value: object) -> object:
    """A hashable stand-in for a key value that keeps JSON values apart (``1`` vs ``"1"``)."""
    if type(value) is str or type(value) is int:
        return value
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    try:
        return ("json", json.dumps(value, sort_keys=True))
    except (TypeError, ValueError, RecursionError):
        return ("repr", repr(value))


class Spans:
    """One stream's spans of one ``spans`` invariant."""

    #: A violation found on an event the order rejected replaces the ``seq.order`` (the engine
    #: reads this): it names the key and the event that opened or closed it.
    explains_order: Final = True

    __slots__ = ("closed", "lossy", "names", "open", "spec")

    def __init__(self, spec: SpanSpec) -> None:
        self.spec = spec
        self.names = [pointer_name(p) for p in spec.keys]
        # key -> (its values, the opening event, taken as open after a violation)
        self.open: dict[_Key, tuple[tuple[object, ...], int, bool]] = {}
        self.closed: dict[_Key, tuple[int, int]] = {}  # key -> (opening event, closing event)
        self.lossy = False  # a key was not kept (memory bound): unknown keys are not judged

    def _label(self, values: Sequence[object]) -> str:
        return ", ".join(f"{n} {show(v)}" for n, v in zip(self.names, values, strict=False))

    def feed(self, kind: str, event: Any, index: int, invalid: _Invalid) -> list[Violation]:
        s = self.spec
        values = []
        for pointer in s.keys:
            value = resolve(event, pointer)
            if value is MISSING or (invalid and any(is_under(at, pointer) for at in invalid)):
                if kind in s.parent_closes:
                    break  # the enclosing span's key is a prefix of this one
                return []
            values.append(value)
        key = tuple(map(_tag, values))
        if kind in s.inside:  # the common case first: a delta of an open span
            if key in self.open:
                return []
            return self._not_open(key, values, kind, index)
        if kind in s.opens:
            return self._open(key, values, kind, index)
        if kind in s.closes:
            return self._close(key, values, kind, index)
        if kind in s.parent_closes:
            return self._close_under(key, kind, index)
        return self._after(key, values, kind, index)

    def _keep(self, table: dict[_Key, Any], key: _Key, value: object) -> None:
        if key in table or len(table) < MAX_TRACKED:
            table[key] = value
        else:
            self.lossy = True

    def _open(self, key: _Key, values: list[object], kind: str, index: int) -> list[Violation]:
        found: list[Violation] = []
        was = self.open.get(key)
        closed = self.closed.pop(key, None)
        if was is not None:
            message = span_reopened(kind, self._label(values), was[1], None)
            found.append(violation("span.reopened", message, index))
        elif self.spec.unique and closed is not None:
            message = span_reopened(kind, self._label(values), *closed)
            found.append(violation("span.reopened", message, index))
        self._keep(self.open, key, (tuple(values), index, False))
        return found

    def _close(self, key: _Key, values: list[object], kind: str, index: int) -> list[Violation]:
        was = self.open.pop(key, None)
        if was is not None:
            self._keep(self.closed, key, (was[1], index))
            return []
        if self.spec.open_optional and key not in self.closed:
            self._keep(self.closed, key, (index, index))  # a span of one event
            return []
        found = self._not_open(key, values, kind, index, reopen=False)
        if key not in self.closed:
            self._keep(self.closed, key, (index, index))
        return found

    def _not_open(
        self, key: _Key, values: list[object], kind: str, index: int, reopen: bool = True
    ) -> list[Violation]:
        closed = self.closed.get(key)
        if closed is None and self.lossy:
            return []  # perhaps opened while the tables were full: cannot tell
        if reopen:  # taken as open as it stands: its other events are not reported again
            self._keep(self.open, key, (tuple(values), index, True))
        at = None if closed is None else closed[1]
        message = span_not_open(kind, self._label(values), self.spec.opened_by, at)
        return [violation("span.not-open", message, index)]

    def _after(self, key: _Key, values: list[object], kind: str, index: int) -> list[Violation]:
        if key in self.closed:
            return []
        was = self.open.get(key)
        if was is not None:
            if was[2]:
                return []  # taken as open after a violation: already reported
            message = span_not_closed(kind, self._label(values), was[1], self.spec.closed_by)
            return [violation("span.not-closed", message, index)]
        if self.lossy:
            return []
        self._keep(self.closed, key, (index, index))  # as if its span had been: reported once
        message = span_not_open(kind, self._label(values), self.spec.begun_by, None)
        return [violation("span.not-open", message, index)]

    def _close_under(self, prefix: _Key, kind: str, index: int) -> list[Violation]:
        n = len(prefix)
        found: list[Violation] = []
        for key in [key for key in self.open if key[:n] == prefix]:
            values, opened, taken = self.open.pop(key)
            self._keep(self.closed, key, (opened, index))
            if not taken:
                message = span_unclosed(
                    self._label(values), opened, self.spec.closed_by, kind, index
                )
                found.append(violation("span.unclosed", message, index))
        return found

    def finish(self) -> list[Violation]:
        closed_by = self.spec.closed_by
        return [
            violation("span.unclosed", span_unclosed(self._label(values), at, closed_by), None)
            for values, at, taken in self.open.values()
            if not taken
        ]


class SpanError(ValueError):
    """A ``spans`` entry is wrong at its parameter ``role``."""

    def __init__(self, role: str, message: str) -> None:
        super().__init__(message)
        self.role = role


def build_spans(
    p: _Params, ordered: Callable[[frozenset[str], Sequence[str]], list[str]]
) -> SpanSpec:
    """Read a ``spans`` entry (``ordered`` lists types in the contract's order); a wrong one
    raises :class:`SpanError`."""
    if isinstance(p.raw.get("key"), list):
        keys = tuple(p.pointers("key"))
    else:
        key = p.pointer("key")
        assert key is not None  # required
        keys = (key,)
    opens = p.types("open", required=True)
    closes = p.types("close", required=True)
    assert opens is not None and closes is not None
    inside = p.types("inside") or frozenset()
    parent_closes = p.types("parent_close") or frozenset()
    after = p.types("after") or frozenset()
    roles = {"open": opens, "inside": inside, "close": closes}
    roles |= {"parent_close": parent_closes, "after": after}
    seen: dict[str, str] = {}
    for role, names in roles.items():
        for name in sorted(names):
            if name in seen:
                raise SpanError(role, f"{show(name)} is already one of the {seen[name]} types")
            seen[name] = role
    open_optional = p.flag("open_optional", False)
    return SpanSpec(
        keys=keys,
        opens=opens,
        inside=inside,
        closes=closes,
        parent_closes=parent_closes,
        after=after,
        unique=p.flag("unique", False),
        open_optional=open_optional,
        opened_by=one_of(ordered(opens, p.declared)),
        begun_by=one_of(ordered(opens | closes if open_optional else opens, p.declared)),
        closed_by=one_of(ordered(closes, p.declared)),
    )
