"""The contract engine: one compiled contract, one stream, one event in, its violations out.

Every contract -- prefab, the LLM dialects, a team's own file -- is checked by
:class:`ContractEngine`; nothing in here knows any contract by name.

Hot path and slow path
----------------------
A healthy stream is millions of small valid events, so the common case must cost about a
microsecond: the event's text goes through the contract's compiled fast path (pydantic-core
validators generated from its JSON Schemas, ``harness._contracts.fastpath``), the type is read
from the result, and the order automaton takes one dictionary lookup.  Events of a type no
invariant watches then return at once, with a shared empty list.

Whatever the fast path rejects, or cannot judge (``NaN``/``Infinity`` in the text, invalid
UTF-8, an oversize placeholder), takes the slow path: :func:`json.loads`, the type resolved
step by step so the message can say what is wrong with it, and the type's JSON Schema
through ``jsonschema`` -- the one authority on what is valid.  The fast path may only ever be
stricter than the schemas, so the two can only disagree by costing time.

One problem, one violation: each event is reported under the most specific rule that fits
(an invariant may claim a schema error as its own, as ``progress.bounds`` does), sequence rules
only look at events whose type could be read, and events after the end are reported as
``seq.after-terminal`` and nothing else.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from jsonschema.exceptions import best_match
from pydantic_core import ValidationError, from_json

from harness._contracts.file import Contract
from harness._contracts.invariants import NO_INVALID, Invalid, Invariant
from harness._contracts.pointer import MISSING, resolve
from harness._contracts.rules import (
    PREVIEW,
    event_schema,
    event_unknown_type,
    event_unknown_type_open,
    json_kind,
    seq_after_terminal,
    seq_first,
    seq_order,
    seq_terminal,
    show,
    sse_data_not_json,
    sse_event_too_large,
    sse_invalid_utf8,
)
from harness._core.jsonvalue import JSONNote, json_notes
from harness._core.jsonvalue import loads as json_loads
from harness._core.rules import Violation, violation
from harness._core.sse import SSEEvent
from harness._core.text import shorten

__all__ = ["NO_VIOLATIONS", "ContractEngine"]

#: Returned for every event without violations, so the hot path allocates nothing.  Shared by
#: all checkers: callers may read, iterate or ``extend(...)`` *from* it, never mutate it.
NO_VIOLATIONS: Final[list[Violation]] = []
#: In ContractEngine._hooks: the type's events take the whole _advance.
_ADVANCE: Final = object()


class _Reading(NamedTuple):
    """What the slow path made of an event."""

    label: str  # the event's name in the transcript
    kind: str | None  # its type, when it is one the contract declares
    obj: Any = MISSING  # its content (MISSING: could not be parsed)
    rule: str = ""  # the rule the event broke as a whole, if any
    message: str = ""
    readable: bool = True  # False: the type could not be read at all
    note: JSONNote | None = None  # valid JSON many parsers refuse (huge integers, deep nesting)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _loads(text: str) -> tuple[Any, Exception | None, JSONNote | None]:
    """Any valid JSON (huge integers, deep nesting: harness._core.jsonvalue) and its note."""
    try:
        obj, note = json_loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as e:
        return MISSING, e, None
    return obj, None, note


_TYPE_NAMES: Final = {
    "object": "an object",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "array": "an array",
    "boolean": "true or false",
    "null": "null",
}


def _type_words(limit: object) -> str:
    names = limit if isinstance(limit, list) else [limit]
    return " or ".join(_TYPE_NAMES.get(str(n), str(n)) for n in names)


def describe(error: Any, hints: dict[str, str] | None = None) -> str:
    """A jsonschema error in plain words, naming the field and the value."""
    where = ".".join(map(str, error.absolute_path)) or "the event"
    value, limit = error.instance, error.validator_value
    words = f"{where}: {error.message}"
    match error.validator:
        case "type":
            words = f"{where} is {show(value)}, not {_type_words(limit)}"
        case "required":
            missing = [k for k in limit if k not in value]
            words = ", ".join(f'"{k}" is missing' for k in missing)
        case "additionalProperties" if limit is False:
            extra = [show(k) for k in value if k not in error.schema.get("properties", {})]
            keys = "key" if len(extra) == 1 else "keys"
            words = f"unexpected {keys} {', '.join(extra)}"
        case "minLength" if limit == 1:
            words = f"{where} is an empty string"
        case "minLength":
            words = f"{where} is shorter than {limit} characters"
        case "minimum":
            words = f"{where} {show(value)} is below the minimum {limit}"
        case "maximum":
            words = f"{where} {show(value)} is above the maximum {limit}"
        case "const":
            words = f"{where} is {show(value)}, not {show(limit)}"
        case "enum":
            words = f"{where} is {show(value)}, not one of {', '.join(map(show, limit))}"
        case "anyOf" | "oneOf" if error.context:
            words = describe(best_match(error.context), hints)
    words = shorten(words, 200)
    hint = (hints or {}).get(error.validator)
    return f"{words} ({hint})" if hint else words


class ContractEngine:
    """Checks one stream against one :class:`Contract` (a :class:`ContractChecker`).

    ``request`` is the request body, when the caller knows it: some invariants depend on what
    was asked (``requested``).  Event indexes in violations are 0-based and count every event
    fed.  A returned empty list may be shared: do not mutate what ``feed`` returns.
    """

    __slots__ = (
        "_alts",
        "_ambiguous",
        "_by_type",
        "_c",
        "_count",
        "_disordered",
        "_ended",
        "_ends",
        "_failed",
        "_failure",
        "_failure_kinds",
        "_fast",
        "_guess",
        "_hooks",
        "_invariants",
        "_kind_of",
        "_last_event",
        "_last_label",
        "_last_obj",
        "_last_seq",
        "_seen",
        "_sentinel",
        "_sentinel_type",
        "_state",
        "_terminal",
        "_trans",
        "_unreadable",
        "framings",
        "headers",
        "name",
        "roles",
    )

    def __init__(self, contract: Contract, request: object = None) -> None:
        self.name = contract.name
        #: The framings the stream may come in, and the response headers it needs.
        self.framings = contract.framings
        self.headers = contract.headers
        self._c = contract
        # One state past the automaton's, with no transitions: while the stream is checked
        # under several hypotheses (after an order violation), _state is this one, so the hot
        # path's lookup fails and _advance follows every hypothesis in _alts.
        self._ambiguous = len(contract.order.transitions)
        self._trans = (*contract.order.transitions, {})
        self._alts: tuple[int, ...] = ()
        self._ends = contract.order.ended
        self._fast = contract.fast
        self._kind_of = contract.kind_of
        self._sentinel = contract.sentinel[0] if contract.sentinel else None
        self._sentinel_type = contract.sentinel[1] if contract.sentinel else None
        self._guess: str | None = None  # cases typing: the type the last event had
        self._state = 0
        self._ended = False
        self._count = 0
        self._last_seq = -1  # index of the last event that moved along the order
        self._seen: dict[str, int] = {}  # first accepted event of each only-first type
        self._terminal = ("", -1)  # (type, index) of the event that ended the stream
        self._failed = False
        # The first event of a failure role's type (type, content, index), for the roles.
        self._failure: tuple[str, Any, int] | None = None
        self._failure_kinds = frozenset(contract.roles.failure)
        self._disordered = False  # a seq.first or seq.order was reported
        self._unreadable = -1  # index of the last event whose type could not be read
        # event_type() is called right after feed() with the same event: remember its name.
        self._last_event: SSEEvent | None = None
        self._last_label = ""
        self._last_obj: Any = MISSING  # and its content, for the roles
        #: What this stream's events mean (harness._core.roles.Roles), from what feed parsed.
        self.roles = contract.roles.bind(self.event_type, self.parsed, self._first_failure)
        made = [(spec, spec.make(request)) for spec in contract.invariants]
        self._invariants: list[Invariant] = [inv for _, inv in made]
        self._by_type: dict[str, list[Invariant]] = {}
        for kind in contract.types:
            watching = [inv for spec, inv in made if spec.types is None or kind in spec.types]
            if watching:
                self._by_type[kind] = watching
        # What the hot path does after the automaton's step, by type: nothing (a type not
        # here), call the one invariant that watches it, or take _advance (_ADVANCE: several
        # invariants, or a type the order or a failure role must note).
        self._hooks: dict[str, Any] = {
            kind: watching[0].feed for kind, watching in self._by_type.items() if len(watching) == 1
        }
        for kind in (
            {k for k, w in self._by_type.items() if len(w) > 1}
            | contract.order.only_first
            | contract.failure
        ):
            self._hooks[kind] = _ADVANCE

    def feed(self, event: SSEEvent) -> list[Violation]:
        """Check the next event; return the violations it revealed (usually none)."""
        index = self._count
        self._count = index + 1
        if self._ended:
            return self._after_terminal(index)
        text = event.data
        if event.oversize or event.invalid_utf8:
            return self._feed_slow(event, index)
        fast = self._fast
        if text == self._sentinel or fast is None:
            return self._feed_other(event, index)
        if "NaN" in text or "Infinity" in text:
            return self._feed_slow(event, index)
        try:
            obj = fast(text)
        except ValidationError:
            return self._feed_slow(event, index)
        kind = self._kind_of(obj)
        self._last_event, self._last_label, self._last_obj = event, kind, obj
        nxt = self._trans[self._state].get(kind)
        hook = self._hooks.get(kind)
        if nxt is None or hook is _ADVANCE:
            return self._advance(kind, obj, index, NO_INVALID) or NO_VIOLATIONS
        self._state = nxt
        self._last_seq = index
        if nxt in self._ends:
            self._ended, self._terminal = True, (kind, index)
        if hook is None:
            return NO_VIOLATIONS
        return hook(kind, obj, index, NO_INVALID) or NO_VIOLATIONS

    def finish(self, complete: bool = True) -> list[Violation]:
        """End of stream: report a missing final event, unless the stream was cut short."""
        last = self._count - 1
        if not complete or (last >= 0 and self._unreadable == last):
            return []  # cut short, or the last event (perhaps the final one) was unreadable
        order, types = self._c.order, self._c.types
        if not any(s in order.accepting for s in self._alts or (self._state,)):
            message = seq_terminal(
                False, self._count, order.expected(0, types), order.ending(types)
            )
            return [violation("seq.terminal", message or "", None)]
        if self._failed or self._disordered:
            # After a failure, what a complete stream owes is not owed; after an order
            # violation, what is missing was already reported there.
            return []
        found: list[Violation] = []
        for invariant in self._invariants:
            found.extend(invariant.finish())
        return found

    def event_type(self, event: SSEEvent) -> str:
        """The event's type (or what was wrong with it), for the transcript."""
        if event is self._last_event:
            return self._last_label
        if event.oversize:
            return "(oversize)"
        reading = self._read(event)
        self._last_event, self._last_label, self._last_obj = event, reading.label, reading.obj
        return reading.label

    def _fail(self, kind: str, obj: Any, index: int) -> None:
        self._failed = True
        if self._failure is None and kind in self._failure_kinds:
            self._failure = (kind, obj, index)

    def _first_failure(self) -> tuple[str, Any, int] | None:
        return self._failure

    def parsed(self, event: SSEEvent) -> Any:
        """The event's content as checked (JSON as Python, or the text), MISSING if unreadable."""
        if event is self._last_event:
            return self._last_obj
        if event.oversize:
            return MISSING
        self.event_type(event)  # reads it, and remembers what it read
        return self._last_obj

    # -- the other fast paths: a sentinel, the SSE event field, cases, plain text -------------

    def _feed_other(self, event: SSEEvent, index: int) -> list[Violation]:
        c, text = self._c, event.data
        if c.sentinel is not None and text == c.sentinel[0]:
            return self._accept(event, c.sentinel[1], text, index)
        if c.json and c.type_from != "event" and ("NaN" in text or "Infinity" in text):
            return self._feed_slow(event, index)
        kind: str | None
        try:
            if c.type_from == "event":
                kind = event.event
                json_type = kind in c.json_types  # a mixed contract: per type
                if json_type and ("NaN" in text or "Infinity" in text):
                    return self._feed_slow(event, index)
                check = c.fast_by_type.get(kind) if kind != self._sentinel_type else None
                if check is None:
                    if kind not in c.fast_by_type or json_type:
                        return self._feed_slow(event, index)
                    obj: Any = text  # a text type without a schema
                else:
                    obj = check(text)
                    if not json_type:
                        obj = text
            else:
                kind, obj = self._guess_case(text)
                if kind is None:
                    return self._feed_slow(event, index)
        except ValueError:  # pydantic_core.ValidationError is a ValueError
            return self._feed_slow(event, index)
        return self._accept(event, kind, obj, index)

    def _guess_case(self, text: str) -> tuple[str | None, Any]:
        """Type and content of a JSON event typed by cases; raises ValueError if invalid.

        Streams repeat one type for long runs, so the type of the previous event is tried
        first, parsing and validating in one call; only if the result is not of that type is
        the text parsed on its own, classified, and validated.
        """
        c, guess = self._c, self._guess
        if guess is not None:
            try:
                obj = c.fast_json_by_type[guess](text)
            except ValueError:
                pass
            else:
                if c.classify(obj) == guess:
                    return guess, obj
        obj = from_json(text)
        kind = c.classify(obj)
        if kind is not None:
            check = c.fast_by_type.get(kind)
            if check is not None:
                check(obj)
            self._guess = kind
        return kind, obj

    def _accept(self, event: SSEEvent, kind: str, obj: Any, index: int) -> list[Violation]:
        self._last_event, self._last_label, self._last_obj = event, kind, obj
        return self._advance(kind, obj, index, NO_INVALID) or NO_VIOLATIONS

    # -- the slow path ------------------------------------------------------------------------

    def _after_terminal(self, index: int) -> list[Violation]:
        # The client has stopped reading, so the content of this event no longer matters.
        kind, at = self._terminal
        return [violation("seq.after-terminal", seq_after_terminal(kind, at), index)]

    def _feed_slow(self, event: SSEEvent, index: int) -> list[Violation]:
        """An event the fast path rejected or could not judge: find out exactly what is wrong."""
        found: list[Violation] = []
        message = sse_invalid_utf8(event)
        if message is not None:
            found.append(violation("sse.invalid-utf8", message, index))
        if event.oversize:
            self._last_event, self._last_label, self._unreadable = event, "(oversize)", index
            self._last_obj = MISSING
            found.append(violation("sse.event-too-large", sse_event_too_large(event) or "", index))
            return found
        reading = self._read(event)
        self._last_event, self._last_label, self._last_obj = event, reading.label, reading.obj
        if not reading.readable:
            self._unreadable = index
        if reading.rule:
            found.append(violation(reading.rule, reading.message, index))
        if reading.kind is None:
            return found
        invalid = NO_INVALID
        if reading.obj is not MISSING:
            try:
                invalid = self._check_schema(reading.kind, reading.obj, index, found)
            except RecursionError:  # nested deeper than the validator goes: not judged
                found.extend(json_notes(reading.note, index, reading.obj, checked=False))
            else:
                found.extend(json_notes(reading.note, index))
        found.extend(self._advance(reading.kind, reading.obj, index, invalid))
        return found

    def _read(self, event: SSEEvent) -> _Reading:
        c, text = self._c, event.data
        sentinel_type = c.sentinel[1] if c.sentinel else None
        if c.sentinel is not None and text == c.sentinel[0]:
            return _Reading(c.sentinel[1], c.sentinel[1], text)
        if c.type_from == "event":
            kind = event.event
            if kind not in c.types or kind == sentinel_type:
                return self._unknown(kind)
            if kind not in c.json_types:
                return _Reading(kind, kind, text)
            obj, error, note = _loads(text)
            if error is not None:
                return _Reading(
                    kind, kind, MISSING, "sse.data-not-json", self._not_json(text, error)
                )
            return _Reading(kind, kind, obj, note=note)
        obj, error, note = _loads(text)
        if error is not None:
            message = self._not_json(text, error)
            return _Reading("(not json)", None, MISSING, "sse.data-not-json", message, False)
        if c.type_from == "cases":
            found = c.classify(obj)
            if found is None:
                names = ", ".join(dict.fromkeys(case.type for case in c.cases))
                problem = f"the event matches none of the types {names}"
                return _Reading("(no type)", None, MISSING, "event.schema", problem, False)
            return _Reading(found, found, obj, note=note)
        if not isinstance(obj, dict):
            problem = f"the event is {json_kind(obj)}, not a JSON object"
            return _Reading("(not an object)", None, MISSING, "event.schema", problem, False)
        value = resolve(obj, c.type_pointer)
        if not isinstance(value, str):
            name = c.type_name
            problem = (
                f'the event has no "{name}"'
                if value is MISSING
                else f'the event "{name}" is {show(value)}, not a string'
            )
            return _Reading("(no type)", None, MISSING, "event.schema", problem, False)
        if value not in c.types or value == sentinel_type:
            return self._unknown(value)
        return _Reading(value, value, obj, note=note)

    def _unknown(self, kind: str) -> _Reading:
        c = self._c
        if c.open:
            message = event_unknown_type_open(kind, c.name, c.types) or ""
            return _Reading(
                kind[:PREVIEW] or '""', None, MISSING, "event.unknown-type-open", message
            )
        message = event_unknown_type(kind, c.name, c.types) or ""
        return _Reading(kind[:PREVIEW] or '""', None, MISSING, "event.unknown-type", message)

    @staticmethod
    def _not_json(text: str, error: Exception) -> str:
        return sse_data_not_json(text, error) or ""

    def _check_schema(self, kind: str, obj: Any, index: int, found: list[Violation]) -> Invalid:
        """Validate against the type's schema; return where the event is invalid.

        The JSON Schema is the authority here.  An invariant may claim an error as its own
        (a progress counter out of range is ``progress.bounds``, not ``event.schema``).
        """
        validator = self._c.slow.get(kind)
        if validator is None:
            return NO_INVALID
        errors = list(validator.iter_errors(obj))
        if not errors:
            return NO_INVALID
        specs = self._c.invariants
        claimed: dict[int, list[str]] = {}
        others: list[str] = []
        for error in errors:
            for i, spec in enumerate(specs):
                words = spec.claim(kind, error) if spec.claim is not None else None
                if words is not None:
                    claimed.setdefault(i, []).append(words)
                    break
            else:
                others.append(describe(error, dict(self._c.hints)))
        message = event_schema(kind, others)
        if message is not None:
            found.append(violation("event.schema", message, index))
        for i, words_list in claimed.items():
            found.append(violation(specs[i].claim_rule, "; ".join(words_list), index))
        return frozenset(tuple(map(str, e.absolute_path)) for e in errors)

    def _advance(self, kind: str, obj: Any, index: int, invalid: Invalid) -> list[Violation]:
        """Move along the order with an event of type ``kind``; run the invariants on it.

        After an event the order does not allow, checking goes on under two hypotheses at
        once -- the event was extra (stay), or events before it are missing (jump to the
        nearest place that allows it) -- until the next events tell them apart.  A stream
        that begins with ``content`` is thus checked as if its ``start`` were missing, and
        one that begins with an OpenAI usage chunk as if that chunk were extra: one
        violation each, not one per event that follows.
        """
        c = self._c
        if not self._alts:
            nxt = self._trans[self._state].get(kind)
            if nxt is not None:  # the common case: the order allows it, one reading
                if kind in c.order.only_first:
                    self._seen.setdefault(kind, index)
                self._state = nxt
                if nxt in self._ends:
                    self._ended, self._terminal = True, (kind, index)
                self._last_seq = index
                if kind in c.failure:
                    self._fail(kind, obj, index)
                watching = self._by_type.get(kind)
                if watching is None or obj is MISSING:
                    return []
                if len(watching) == 1:
                    return watching[0].feed(kind, obj, index, invalid)
                found: list[Violation] = []
                for invariant in watching:
                    found.extend(invariant.feed(kind, obj, index, invalid))
                return found
        return self._advance_order(kind, obj, index, invalid)

    def _advance_order(self, kind: str, obj: Any, index: int, invalid: Invalid) -> list[Violation]:
        """:meth:`_advance` when the order does not allow ``kind``, or under several readings."""
        found: list[Violation] = []
        order = self._c.order
        states = self._alts or (self._state,)
        # Once an event came the stream has begun -- also under the hypothesis that the first
        # event was extra -- so a type that only opens a stream cannot come any more.
        if self._last_seq >= 0 and kind in order.only_first:
            states = tuple(s for s in states if s != 0)
        moves = order.transitions
        nexts = list(dict.fromkeys(t for s in states if (t := moves[s].get(kind)) is not None))
        rejected = not nexts
        if rejected:
            types = self._c.types
            if self._last_seq < 0:
                message = seq_first(kind, order.expected(0, types)) or ""
                found.append(violation("seq.first", message, index))
            else:
                expected = order.expected(self._alts or (self._state,), types)
                message = seq_order(
                    kind,
                    [t for t in expected if t not in order.only_first],
                    self._last_seq,
                    kind in order.only_first,
                    self._seen.get(kind),
                )
                found.append(violation("seq.order", message, index))
            jumps = [t for s in states if (t := order.recover(s, kind)) is not None]
            nexts = list(dict.fromkeys([*(self._alts or (self._state,)), *jumps]))
            self._disordered = True
        elif kind in order.only_first:
            self._seen.setdefault(kind, index)
        ended = [t for t in nexts if t in self._ends]
        if ended:  # a client stops reading at the end, whatever else might have been meant
            self._state, self._alts = ended[0], ()
            self._ended, self._terminal = True, (kind, index)
        elif len(nexts) == 1:
            self._state, self._alts = nexts[0], ()
        else:
            self._state, self._alts = self._ambiguous, tuple(nexts)
        self._last_seq = index
        if kind in self._c.failure:
            self._fail(kind, obj, index)
        if obj is not MISSING:
            for invariant in self._by_type.get(kind, ()):
                more = invariant.feed(kind, obj, index, invalid)
                if more and rejected and getattr(invariant, "explains_order", False):
                    # A span's words for what is out of order ("a delta for part 1, which no
                    # content_part.added opened") say more than the order's: one violation.
                    found = [v for v in found if v.rule != "seq.order"]
                found.extend(more)
        return found
