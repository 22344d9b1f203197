"""Invariants: the checks a contract names, with parameters, that look across events.

A JSON Schema judges one event; an order pattern judges which type may follow which.  What
is left -- a progress counter that must not go down, a ``model`` that must not change, one
``finish_reason`` per choice -- a contract file lists by name::

    invariants:
      - invariant: constant
        pointers: [/id, /model]
      - invariant: once-per-key
        types: [chunk]
        items: /choices
        key: /index
        field: /finish_reason
        name: choice

Each built-in name has a builder here that reads its parameters (errors name the contract
file's JSON pointer) and returns an :class:`InvariantSpec`; the engine makes one fresh
:class:`Invariant` per stream from it.  A name that is not built in is looked up among the
``stream_harness.rules`` entry points: the escape hatch for rules that need code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Final, Protocol

from harness._contracts.pointer import (
    MISSING,
    Pointer,
    is_under,
    parse_pointer,
    pointer_name,
    resolve,
)
from harness._contracts.rules import (
    Number,
    error_code,
    field_after_final,
    field_constant,
    field_matches_request,
    field_once_per_key,
    field_sequential,
    field_sum,
    fragment_first,
    fragment_json,
    one_of,
    progress_current_le_total,
    progress_monotonic,
    progress_total_stable,
    seq_requested,
    show,
)
from harness._contracts.spans import SpanError, Spans, build_spans
from harness._core.errors import UsageError
from harness._core.rules import Violation, violation

if TYPE_CHECKING:
    from harness._contracts.roles import ContractRoles

__all__ = [
    "BUILT_IN",
    "ENTRY_POINT_GROUP",
    "NO_INVALID",
    "ContractError",
    "Invalid",
    "Invariant",
    "InvariantSpec",
    "build_invariant",
]

#: The entry-point group a package uses to contribute invariants.
ENTRY_POINT_GROUP: Final = "stream_harness.rules"

#: The locations (as tuples of str) of the values a schema rejected in one event.
Invalid = frozenset[tuple[str, ...]]
NO_INVALID: Final[Invalid] = frozenset()


class ContractError(Exception):
    """A problem in a contract file, at ``pointer`` (a JSON pointer into the file)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer


class Invariant(Protocol):
    """One stream's state of one invariant.

    An invariant whose class sets ``explains_order = True`` (the spans) says more about an
    event the order rejected than ``seq.order`` does: the engine then keeps its violation only.
    """

    def feed(self, kind: str, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        """An event of one of the spec's types (with the locations its schema rejected)."""
        ...

    def finish(self) -> list[Violation]:
        """The stream ended normally (its last event ended it, and no failure came)."""
        ...


#: How the engine asks an invariant to report a schema error itself: (type, error) -> words.
Claim = Callable[[str, Any], str | None]


@dataclass(frozen=True, slots=True)
class InvariantSpec:
    """A parsed invariant: which event types it sees, and how to make one per stream."""

    name: str
    types: frozenset[str] | None  # None: every type
    make: Callable[[object], Invariant]  # (the request body, or None) -> per-stream state
    claim: Claim | None = None
    claim_rule: str = ""


# -- reading parameters ---------------------------------------------------------------------


class _Params:
    """An invariant's parameters, read with errors that point into the contract file."""

    def __init__(
        self,
        raw: Mapping[str, Any],
        where: str,
        declared: Sequence[str],
        roles: ContractRoles | None = None,
    ) -> None:
        self.raw, self.where, self.declared, self.roles = raw, where, declared, roles
        self.used = {"invariant"}

    def _get(self, key: str, required: bool) -> Any:
        self.used.add(key)
        if key not in self.raw:
            if required:
                raise ContractError(self.where, f'"{key}" is required')
            return None
        return self.raw[key]

    def pointer(self, key: str, required: bool = True) -> Pointer | None:
        value = self._get(key, required)
        if value is None:
            return None
        return _pointer(value, f"{self.where}/{key}")

    def alternatives(self, key: str) -> tuple[Pointer, ...] | None:
        """A pointer, or a non-empty list of them to try in turn."""
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, list) and value:
            return tuple(_pointer(v, f"{self.where}/{key}/{i}") for i, v in enumerate(value))
        return (_pointer(value, f"{self.where}/{key}"),)

    def pointers(self, key: str) -> list[Pointer]:
        value = self._get(key, True)
        if not isinstance(value, list) or not value:
            raise ContractError(f"{self.where}/{key}", "expected a non-empty list of JSON pointers")
        return [_pointer(v, f"{self.where}/{key}/{i}") for i, v in enumerate(value)]

    def types(self, key: str = "types", required: bool = False) -> frozenset[str] | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            raise ContractError(f"{self.where}/{key}", "expected a non-empty list of type names")
        for i, name in enumerate(value):
            if name not in self.declared:
                raise ContractError(
                    f"{self.where}/{key}/{i}",
                    f"unknown type {show(name)} (the contract's types: {', '.join(self.declared)})",
                )
        return frozenset(value)

    def text(self, key: str, default: str) -> str:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise ContractError(f"{self.where}/{key}", "expected a non-empty string")
        return value

    def integer(self, key: str, default: int) -> int:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ContractError(f"{self.where}/{key}", "expected an integer")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ContractError(f"{self.where}/{key}", "expected true or false")
        return value

    def done(self) -> None:
        """Refuse parameters the invariant does not take (a typo would be silently ignored)."""
        for key in self.raw:
            if key not in self.used:
                raise ContractError(
                    f"{self.where}/{key}",
                    f"the {self.raw['invariant']} invariant takes no parameter {show(key)}",
                )


def _pointer(value: object, where: str) -> Pointer:
    if not isinstance(value, str):
        raise ContractError(
            where, f'expected a JSON pointer such as "/data/current", got {show(value)}'
        )
    try:
        return parse_pointer(value)
    except ValueError as e:
        raise ContractError(where, str(e)) from None


def _number(value: object) -> Number | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def _valid(invalid: Invalid, pointer: Pointer) -> bool:
    return not invalid or not any(is_under(path, pointer) for path in invalid)


def _add(found: list[Violation], rule_id: str, message: str | None, index: int | None) -> None:
    if message is not None:
        found.append(violation(rule_id, message, index))


# -- progress -------------------------------------------------------------------------------

_BOUND_WORDS: Final = {
    "minimum": "is below the minimum",
    "maximum": "is above the maximum",
    "exclusiveMinimum": "is not above",
    "exclusiveMaximum": "is not below",
}


class _Progress:
    """``current <= total`` in an event, ``current`` never down and ``total`` unchanged across.

    Most streams send a progress event every few items, so the usual case is compiled when the
    contract is loaded: every counter's pointers below one object (prefab's ``/data``) are read
    with one lookup for that object and one per key, and nothing is allocated unless a rule is
    broken.  Any other shape, or an event the schema rejected somewhere, is read pointer by
    pointer (:meth:`_feed_any`), which is the definition."""

    __slots__ = (
        "_current",
        "_current_at",
        "_first",
        "_keys",
        "_prefix",
        "_total",
        "_total_at",
        "counters",
    )

    def __init__(self, counters: Mapping[str, tuple[Pointer, ...]]) -> None:
        self.counters = counters
        self._current: Number = 0
        self._current_at = -1  # the index of the last event with a current (-1: none yet)
        self._total: Number = 0
        self._total_at = -1
        shape = _one_object(counters)
        self._prefix: Pointer = () if shape is None else shape[0]
        self._keys: tuple[tuple[str, ...], tuple[str, ...]] | None = (
            None if shape is None else shape[1]
        )
        #: (object key, first current key, first total key) when the counters are keys of a
        #: top-level object (prefab's /data/current, /data/total): the usual event, numbers
        #: that keep every rule, is judged by :meth:`feed` in a few lookups.
        self._first: tuple[str, str, str] | None = None
        if shape is not None and len(shape[0]) == 1 and shape[1][0] and shape[1][1]:
            self._first = (shape[0][0], shape[1][0][0], shape[1][1][0])

    def feed(self, kind: str, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        first = self._first
        if first is not None and not invalid and type(event) is dict:
            inner = event.get(first[0])
            if type(inner) is dict:
                current: Any = inner.get(first[1])
                total: Any = inner.get(first[2])
                tc, tt = type(current), type(total)
                if (
                    (tc is int or tc is float)
                    and (tt is int or tt is float)
                    and current <= total
                    and (self._current_at < 0 or current >= self._current)
                    and (self._total_at < 0 or total == self._total)
                ):
                    self._current, self._current_at = current, index
                    self._total, self._total_at = total, index
                    return _NONE
        return self._feed_keys(event, index, invalid)

    def _feed_keys(self, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        keys = self._keys
        if invalid or keys is None:
            return self._feed_any(event, index, invalid)
        prefix = self._prefix
        if len(prefix) == 1:
            inner = event.get(prefix[0], MISSING) if type(event) is dict else MISSING
        else:
            inner = resolve(event, prefix) if prefix else event
        if type(inner) is not dict:
            return self._feed_any(event, index, invalid)
        current: Any = MISSING
        for key in keys[0]:
            current = inner.get(key, MISSING)
            if current is not MISSING:
                break
        total: Any = MISSING
        for key in keys[1]:
            total = inner.get(key, MISSING)
            if total is not MISSING:
                break
        if type(current) is not int and type(current) is not float:
            current = None if current is MISSING else _number(current)
        if type(total) is not int and type(total) is not float:
            total = None if total is MISSING else _number(total)
        if current is not None:
            if (
                (total is not None and current > total)
                or (self._current_at >= 0 and current < self._current)
                or (total is not None and self._total_at >= 0 and total != self._total)
            ):
                return self._judge(current, total, index)
            self._current, self._current_at = current, index
        elif total is not None and self._total_at >= 0 and total != self._total:
            return self._judge(current, total, index)
        if total is not None:
            self._total, self._total_at = total, index
        return _NONE

    def _judge(self, current: Number | None, total: Number | None, index: int) -> list[Violation]:
        found = _NONE
        if current is not None:
            if total is not None and current > total:
                found = [_violation_of("progress.current-le-total", current, total, index)]
            if self._current_at >= 0 and current < self._current:
                message = progress_monotonic((self._current, self._current_at), current)
                found = [*found, violation("progress.monotonic", message or "", index)]
            self._current, self._current_at = current, index
        if total is not None:
            if self._total_at >= 0 and total != self._total:
                message = progress_total_stable((self._total, self._total_at), total)
                found = [*found, violation("progress.total-stable", message or "", index)]
            self._total, self._total_at = total, index
        return found

    def _value(self, event: Any, name: str, invalid: Invalid) -> Number | None:
        # The first of the counter's pointers that is there (/data/current, /data/processed).
        for pointer in self.counters.get(name, ()):
            value = resolve(event, pointer)
            if value is MISSING:
                continue
            return _number(value) if _valid(invalid, pointer) else None
        return None

    def _feed_any(self, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        current = self._value(event, "current", invalid)
        total = self._value(event, "total", invalid)
        return self._judge(current, total, index)

    def finish(self) -> list[Violation]:
        return []


#: What an invariant returns for an event without violations, shared: never mutate it.
_NONE: Final[list[Violation]] = []


def _violation_of(rule_id: str, current: Number, total: Number, index: int) -> Violation:
    return violation(rule_id, progress_current_le_total(current, total) or "", index)


def _one_object(
    counters: Mapping[str, tuple[Pointer, ...]],
) -> tuple[Pointer, tuple[tuple[str, ...], tuple[str, ...]]] | None:
    """(the object's pointer, the keys of current and of total in it), when the ``current``
    and ``total`` counters are keys of one object, not array indexes; else None."""
    pointers = [p for name in ("current", "total") for p in counters.get(name, ())]
    if not pointers:
        return None
    prefix = pointers[0][:-1]
    if any(len(p) != len(prefix) + 1 or p[:-1] != prefix for p in pointers):
        return None
    if any(p[-1].isdigit() for p in pointers):
        return None  # /data/0 may index an array: the general reading knows how
    current = tuple(p[-1] for p in counters.get("current", ()))
    total = tuple(p[-1] for p in counters.get("total", ()))
    return prefix, (current, total)


def _build_progress(p: _Params) -> InvariantSpec:
    role = p.roles.progress if p.roles is not None else None
    types = p.types(required=role is None)
    counters = {
        name: pointers
        for name in ("current", "total", "percentage")
        if (pointers := p.alternatives(name)) is not None
    }
    if not counters and role is not None:
        counters = dict(role.counters)
        types = types if types is not None else role.types
    if not counters:
        raise ContractError(
            p.where, 'give at least one of "current", "total", "percentage" (or a progress role)'
        )

    def claim(kind: str, error: Any) -> str | None:
        """Range errors at a counter are progress.bounds, not event.schema."""
        words = _BOUND_WORDS.get(error.validator)
        if words is None or (types is not None and kind not in types):
            return None
        path = tuple(map(str, error.absolute_path))
        for name, pointers in counters.items():
            if path in pointers:
                return f"progress {name} {show(error.instance)} {words} {error.validator_value}"
        return None

    return InvariantSpec("progress", types, lambda _: _Progress(counters), claim, "progress.bounds")


# -- error-code -----------------------------------------------------------------------------


class _ErrorCode:
    def __init__(self, pointers: Mapping[str, Pointer]) -> None:
        self.pointers = pointers

    def feed(self, kind: str, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        pointer = self.pointers.get(kind)
        if pointer is None:
            return []
        present = resolve(event, pointer) is not MISSING
        message = error_code(kind, pointer_name(pointer), present)
        return [] if message is None else [violation("error.code", message, index)]

    def finish(self) -> list[Violation]:
        return []


def _build_error_code(p: _Params) -> InvariantSpec:
    """``pointer`` for every one of ``types``; or, without it, each failure role's ``code``."""
    roles = p.roles.failure if p.roles is not None else {}
    coded = {kind: role.code for kind, role in roles.items() if role.code is not None}
    types = p.types(required=not coded)
    pointer = p.pointer("pointer", required=not coded)
    if pointer is not None:
        pointers = dict.fromkeys(types or p.declared, pointer)
    else:
        pointers = {kind: code for kind, code in coded.items() if types is None or kind in types}
    if not pointers:
        raise ContractError(p.where, "none of these types is a failure role with a code")
    return InvariantSpec("error-code", frozenset(pointers), lambda _: _ErrorCode(pointers))


# -- constant -------------------------------------------------------------------------------


class _Constant:
    def __init__(self, pointers: Sequence[Pointer], until: frozenset[str]) -> None:
        self.pointers, self.until = pointers, until
        self._first: dict[Pointer, tuple[object, int]] = {}

    def feed(self, kind: str, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        found: list[Violation] = []
        for pointer in self.pointers:
            value = resolve(event, pointer)
            if value is MISSING or (invalid and not _valid(invalid, pointer)):
                continue
            first = self._first.get(pointer)
            if first is None:
                self._first[pointer] = (value, index)
            elif first[0] != value or type(first[0]) is not type(value):
                _add(
                    found,
                    "field.constant",
                    field_constant(pointer_name(pointer), first, value),
                    index,
                )
        if kind in self.until:
            self._first.clear()
        return found

    def finish(self) -> list[Violation]:
        return []


def _build_constant(p: _Params) -> InvariantSpec:
    types = p.types()
    pointers = p.pointers("pointers")
    until = p.types("until") or frozenset()
    return InvariantSpec("constant", types, lambda _: _Constant(pointers, until))


# -- once-per-key ---------------------------------------------------------------------------


def _tag(key: object) -> object:
    """A dict key with JSON's equality: 1 and 1.0 are one key, true and 1 are two."""
    if isinstance(key, bool) or key is None:
        return ("literal", key)
    return key


class _OncePerKey:
    def __init__(self, spec: _OnceSpec) -> None:
        self.spec = spec
        self._keys: dict[object, str] = {}  # key -> its label, in order of appearance
        self._final: dict[object, tuple[object, int]] = {}

    def feed(self, kind: str, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        s = self.spec
        items = [event] if s.items is None else resolve(event, s.items)
        if not isinstance(items, list):
            return []
        found: list[Violation] = []
        final_map = self._final
        for i, item in enumerate(items):
            key = resolve(item, s.key)
            if key is MISSING or isinstance(key, dict | list):
                continue
            if invalid and not self._valid_item(invalid, i):
                continue  # its key or its value was rejected by the schema: reported there
            tag = _tag(key)
            if tag not in self._keys:
                self._keys[tag] = f"{s.name} {show(key)}"
            value: object = kind
            if s.field is not None:
                value = resolve(item, s.field)
                final = value is not MISSING and value is not None
            else:
                final = kind in s.final_types
            earlier = final_map.get(tag)
            if earlier is None:
                if final:
                    final_map[tag] = (value, index)
                continue
            label = self._keys[tag]
            if final:
                found.append(
                    violation(
                        "field.once-per-key",
                        field_once_per_key(label, s.what, earlier, value),
                        index,
                    )
                )
            else:
                found.append(
                    violation("field.after-final", field_after_final(label, s.what, earlier), index)
                )
        return found

    def _valid_item(self, invalid: Invalid, i: int) -> bool:
        s = self.spec
        base = () if s.items is None else (*s.items, str(i))
        pointers = [(*base, *s.key)] + ([] if s.field is None else [(*base, *s.field)])
        return all(_valid(invalid, p) for p in pointers)

    def finish(self) -> list[Violation]:
        if not self.spec.required:
            return []
        never = self.spec.never
        return [
            violation("field.once-per-key", field_once_per_key(label, never, None), None)
            for tag, label in self._keys.items()
            if tag not in self._final
        ]


@dataclass(frozen=True, slots=True)
class _OnceSpec:
    items: Pointer | None
    key: Pointer
    field: Pointer | None
    final_types: frozenset[str]
    name: str
    required: bool
    what: str  # "finish_reason" / "final event"
    never: str  # "finish_reason" / 'final event ("complete" or "error")'


def _build_once_per_key(p: _Params) -> InvariantSpec:
    types = p.types()
    items = p.pointer("items", required=False)
    key = p.pointer("key")
    field = p.pointer("field", required=False)
    final_types = p.types("final_types")
    if (field is None) == (final_types is None):
        raise ContractError(p.where, 'give exactly one of "field" and "final_types"')
    assert key is not None
    name = p.text("name", key[-1] if key else "key")
    if field is not None:
        what = pointer_name(field)
        never = f"a {what}"
    else:
        assert final_types is not None
        ordered = [t for t in p.declared if t in final_types]
        what, never = "final event", f"a final event ({one_of(ordered)})"
    spec = _OnceSpec(
        items, key, field, final_types or frozenset(), name, p.flag("required", True), what, never
    )
    return InvariantSpec("once-per-key", types, lambda _: _OncePerKey(spec))


# -- sum ------------------------------------------------------------------------------------


class _Sum:
    def __init__(self, total: Pointer, parts: Sequence[Pointer]) -> None:
        self.total, self.parts = total, parts

    def feed(self, kind: str, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        values = [_number(resolve(event, p)) for p in (self.total, *self.parts)]
        if any(v is None for v in values) or not all(
            _valid(invalid, p) for p in (self.total, *self.parts)
        ):
            return []
        named = [
            (pointer_name(p), v)
            for p, v in zip((self.total, *self.parts), values, strict=True)
            if v is not None
        ]
        message = field_sum(named[0], named[1:])
        return [] if message is None else [violation("field.sum", message, index)]

    def finish(self) -> list[Violation]:
        return []


def _build_sum(p: _Params) -> InvariantSpec:
    types = p.types()
    total = p.pointer("total")
    parts = p.pointers("parts")
    assert total is not None
    return InvariantSpec("sum", types, lambda _: _Sum(total, parts))


# -- sequential -----------------------------------------------------------------------------


class _Sequential:
    def __init__(
        self, pointer: Pointer, start: int, advance: frozenset[str], gaps: bool = False
    ) -> None:
        self.pointer, self.start, self.advance, self.gaps = pointer, start, advance, gaps
        self.field = pointer_name(pointer)
        self.current: int | None = None  # the number of the last advance (None: none yet)

    def feed(self, kind: str, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        value = resolve(event, self.pointer)
        if value is MISSING or not _valid(invalid, self.pointer):
            return []
        whole = _number(value)
        if kind in self.advance or not self.advance:
            expected = self.start if self.current is None else self.current + 1
            if self.gaps and isinstance(whole, int) and whole >= expected:
                message = None  # gaps allowed: it only has to count up
            else:
                message = field_sequential(self.field, value, expected, None, self.gaps)
        elif self.current is None:
            message = None  # an event of a numbered thing that never began: seq.order's
        else:
            message = field_sequential(self.field, value, self.current, sorted(self.advance))
            whole = self.current if message is not None else whole
        if isinstance(whole, int):
            self.current = whole
        elif kind in self.advance or not self.advance:
            self.current = expected
        return [] if message is None else [violation("field.sequential", message, index)]

    def finish(self) -> list[Violation]:
        return []


def _build_sequential(p: _Params) -> InvariantSpec:
    types = p.types(required=True)
    pointer = p.pointer("pointer")
    start = p.integer("start", 0)
    advance = p.types("advance") or frozenset()
    gaps = p.flag("gaps", False)
    assert pointer is not None
    if gaps and advance:
        raise ContractError(f"{p.where}/gaps", "gaps: true applies to a plain count, not advance")
    return InvariantSpec("sequential", types, lambda _: _Sequential(pointer, start, advance, gaps))


# -- requested ------------------------------------------------------------------------------


class _Requested:
    def __init__(self, flag: Pointer, kind: str, request: object) -> None:
        value = resolve(request, flag) if request is not None else MISSING
        self.known = request is not None
        self.asked = value not in (MISSING, None, False, 0, "")
        self.flag, self.kind, self.seen = pointer_name(flag), kind, False

    def feed(self, kind: str, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        first, self.seen = not self.seen, True
        if not self.known or self.asked or not first:
            return []
        return [violation("seq.requested", seq_requested(kind, self.flag, False, index), index)]

    def finish(self) -> list[Violation]:
        if not self.known or not self.asked or self.seen:
            return []
        return [violation("seq.requested", seq_requested(self.kind, self.flag, True, None), None)]


def _build_requested(p: _Params) -> InvariantSpec:
    types = p.types(required=True)
    flag = p.pointer("request")
    assert types is not None and flag is not None
    if len(types) != 1:
        raise ContractError(f"{p.where}/types", "a requested invariant is about one type")
    (kind,) = types
    return InvariantSpec("requested", types, lambda request: _Requested(flag, kind, request))


# -- the escape hatch: entry points ---------------------------------------------------------


class _Plugin:
    """A per-stream object from a ``stream_harness.rules`` entry point, held to the protocol."""

    def __init__(self, name: str, inner: Any) -> None:
        self.name, self.inner = name, inner

    def feed(self, kind: str, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        return self._call("feed", kind, event, index)

    def finish(self) -> list[Violation]:
        if not hasattr(self.inner, "finish"):
            return []
        return self._call("finish")

    def _call(self, method: str, *args: Any) -> list[Violation]:
        try:
            found = list(getattr(self.inner, method)(*args))
        except Exception as e:
            where = f" at event {args[2]}" if args else ""
            raise UsageError(
                f"the {self.name} invariant failed{where}: {type(e).__name__}: {e}"
            ) from None
        if not all(isinstance(v, Violation) for v in found):
            raise UsageError(
                f"the {self.name} invariant returned something that is not a Violation"
            )
        return found


def _entry_point(name: str) -> EntryPoint | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep
    return None


def _build_plugin(name: str, p: _Params) -> InvariantSpec:
    ep = _entry_point(name)
    if ep is None:
        known = ", ".join(sorted(BUILT_IN))
        raise ContractError(
            f"{p.where}/invariant",
            f"unknown invariant {show(name)} (built-in: {known}; and no "
            f'"{ENTRY_POINT_GROUP}" entry point is named so)',
        )
    types = p.types()
    params = {k: v for k, v in p.raw.items() if k != "invariant"}
    try:
        factory = ep.load()
        sample = factory(dict(params))
    except Exception as e:
        raise ContractError(
            p.where, f"the {name} invariant ({ep.value}) cannot be used: {type(e).__name__}: {e}"
        ) from None
    if not callable(getattr(sample, "feed", None)):
        raise ContractError(p.where, f"the {name} invariant ({ep.value}) has no feed() method")
    declared = getattr(sample, "types", None)
    if types is None and declared is not None:
        types = frozenset(declared)
    return InvariantSpec(name, types, lambda _: _Plugin(name, factory(dict(params))))


# -- spans (harness._contracts.spans) --------------------------------------------------------


def _build_spans(p: _Params) -> InvariantSpec:
    try:
        spec = build_spans(p, ordered)
    except SpanError as e:
        raise ContractError(f"{p.where}/{e.role}", str(e)) from None
    return InvariantSpec("spans", spec.types, lambda _: Spans(spec))


# -- matches-request ------------------------------------------------------------------------


class _MatchesRequest:
    def __init__(self, pointer: Pointer, asked: object) -> None:
        self.pointer, self.asked = pointer, asked
        self.field = pointer_name(pointer)

    def feed(self, kind: str, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        value = resolve(event, self.pointer)
        if self.asked is MISSING or value is MISSING or not _valid(invalid, self.pointer):
            return []
        message = field_matches_request(self.field, value, self.asked)
        return [] if message is None else [violation("field.matches-request", message, index)]

    def finish(self) -> list[Violation]:
        return []


def _build_matches_request(p: _Params) -> InvariantSpec:
    types = p.types(required=True)
    pointer, asked = p.pointer("pointer"), p.pointer("request")
    assert pointer is not None and asked is not None

    def make(request: object) -> Invariant:
        value = resolve(request, asked) if request is not None else MISSING
        return _MatchesRequest(pointer, value)

    return InvariantSpec("matches-request", types, make)


# -- fragments ------------------------------------------------------------------------------

#: Bytes of joined fragments kept per item (beyond, the JSON check is skipped: memory stays flat).
_MAX_JOINED = 1 << 20


@dataclass(frozen=True, slots=True)
class _FragmentSpec:
    items: Pointer  # the array of items (choices), each with its key
    key: Pointer
    fragments: Pointer  # within an item: the array of fragments
    fragment_key: Pointer
    first: tuple[Pointer, ...]  # within a fragment: only in the first of its key, and there
    join: Pointer | None  # within a fragment: string pieces, concatenated
    finish: Pointer | None  # within an item: its finish value ...
    finish_json: frozenset[str]  # ... which, when one of these, makes the joined text JSON
    name: str  # what a fragment belongs to, for messages ("tool call")
    item_name: str  # "choice"


class _Fragments:
    """Fragments keyed by index inside keyed items, as OpenAI streams tool calls."""

    def __init__(self, spec: _FragmentSpec) -> None:
        self.spec = spec
        self.pieces: dict[tuple[str, str], list[str]] = {}
        self.sizes: dict[tuple[str, str], int] = {}

    def feed(self, kind: str, event: Any, index: int, invalid: Invalid) -> list[Violation]:
        s = self.spec
        items = resolve(event, s.items)
        if not isinstance(items, list) or invalid:
            return []
        found: list[Violation] = []
        for item in items:
            item_key = resolve(item, s.key)
            fragments = resolve(item, s.fragments)
            if isinstance(fragments, list):
                for fragment in fragments:
                    found += self._fragment(show(item_key), fragment, index)
            if s.finish is not None and resolve(item, s.finish) in s.finish_json:
                found += self._finished(show(item_key), index)
        return found

    def _what(self, item: str, frag: str) -> str:
        return f"{self.spec.name} {frag} of {self.spec.item_name} {item}"

    def _fragment(self, item: str, fragment: object, index: int) -> list[Violation]:
        s = self.spec
        frag = show(resolve(fragment, s.fragment_key))
        key = (item, frag)
        first = key not in self.pieces
        pieces = self.pieces.setdefault(key, [])
        found = []
        for pointer in s.first:
            value = resolve(fragment, pointer)
            present = value is not MISSING and value is not None
            if present != first:
                message = fragment_first(self._what(item, frag), pointer_name(pointer), first)
                found.append(violation("fragment.first", message, index))
        if s.join is not None:
            piece = resolve(fragment, s.join)
            size = self.sizes.get(key, 0)
            if isinstance(piece, str) and size <= _MAX_JOINED:
                pieces.append(piece)
                self.sizes[key] = size + len(piece)
        return found

    def _finished(self, item: str, index: int) -> list[Violation]:
        s = self.spec
        found = []
        for (owner, frag), pieces in self.pieces.items():
            if owner != item or s.join is None or self.sizes.get((owner, frag), 0) > _MAX_JOINED:
                continue
            text = "".join(pieces)
            try:
                json.loads(text)
            except ValueError as e:
                error = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
                message = fragment_json(self._what(item, frag), pointer_name(s.join), text, error)
                found.append(violation("fragment.json", message, index))
        return found

    def finish(self) -> list[Violation]:
        return []


def _build_fragments(p: _Params) -> InvariantSpec:
    types = p.types()
    items, key = p.pointer("items"), p.pointer("key")
    fragments, fragment_key = p.pointer("fragments"), p.pointer("fragment_key")
    assert items is not None and key is not None
    assert fragments is not None and fragment_key is not None
    first = tuple(p.pointers("first")) if "first" in p.raw else ()
    join, finish = p.pointer("join", required=False), p.pointer("finish", required=False)
    raw_json = p._get("finish_json", False) or []
    if not isinstance(raw_json, list) or not all(isinstance(v, str) for v in raw_json):
        raise ContractError(f"{p.where}/finish_json", "expected a list of strings")
    spec = _FragmentSpec(
        items,
        key,
        fragments,
        fragment_key,
        first,
        join,
        finish,
        frozenset(raw_json),
        p.text("name", "fragment"),
        p.text("item_name", "item"),
    )
    return InvariantSpec("fragments", types, lambda _: _Fragments(spec))


# -- dispatch -------------------------------------------------------------------------------

BUILT_IN: Final[Mapping[str, Callable[[_Params], InvariantSpec]]] = {
    "progress": _build_progress,
    "error-code": _build_error_code,
    "constant": _build_constant,
    "once-per-key": _build_once_per_key,
    "sum": _build_sum,
    "sequential": _build_sequential,
    "requested": _build_requested,
    "fragments": _build_fragments,
    "matches-request": _build_matches_request,
    "spans": _build_spans,
}


def build_invariant(
    raw: object, where: str, declared: Sequence[str], roles: ContractRoles | None = None
) -> InvariantSpec:
    """Read one entry of a contract's ``invariants`` list (``where`` is its JSON pointer).

    ``roles`` are the contract's: ``progress`` and ``error-code`` read their pointers there
    when the entry gives none."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("invariant"), str):
        raise ContractError(where, 'expected an object with "invariant": <name>')
    p = _Params(raw, where, declared, roles)
    name = raw["invariant"]
    builder = BUILT_IN.get(name)
    if builder is None:
        return _build_plugin(name, p)
    spec = builder(p)
    p.done()
    return spec


def ordered(types: Iterable[str], rank: Sequence[str]) -> list[str]:
    return [t for t in rank if t in set(types)]
