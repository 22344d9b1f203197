"""The prefab streaming contract, checked incrementally: one event in, its violations out.

A prefab streaming function yields ``{"type": ..., "data": ..., "error_code"?: ...}`` objects,
which the gateway sends as plain ``data:`` lines (the SSE ``event:`` name is not used).  The
event shapes are defined by the JSON Schemas in ``schemas/prefab/``; the order is
``start (progress | content)* (done | error)``.

Hot path and slow path
----------------------
A healthy stream is millions of small valid events, so the common case must cost about a
microsecond.  Every event's text goes first through a pydantic ``TypeAdapter`` over a tagged
union of ``TypedDict``\\ s, compiled once at import: one call in Rust that parses *and*
validates, and returns the object.  Those types mirror the JSON Schemas but may only ever be
*stricter* (``tests/test_prefab_schema_agreement.py`` checks it): whatever they reject falls to
the slow path, which re-reads the text with :func:`json.loads` and validates it against the
JSON Schema itself, so the schema files stay the one authority on what is valid and the slow
path also decides *which* rule was broken (not JSON, unknown type, out of range, ...).

Two gaps of the fast parser are closed before it runs: it accepts ``NaN`` and ``Infinity``,
which are not JSON, so texts containing those words go the slow way (an ordinary token like
"NaN" merely costs a few microseconds); and events with invalid UTF-8 or oversize placeholders
always go the slow way, since they need a violation anyway.

One problem, one violation: each event is reported under the most specific rule that fits, and
sequence rules only look at events whose ``type`` could be read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final, Literal, NamedTuple, NotRequired

from pydantic import ConfigDict, Discriminator, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from harness._rules import Severity, Violation, rule, violation
from harness._schemas import schema_validator
from harness._sse import SSEEvent

__all__ = ["EVENT_TYPES", "SCHEMA", "PrefabChecker"]

#: The prefab event types, in the order a stream uses them.
EVENT_TYPES: Final = ("start", "progress", "content", "done", "error")
#: The union schema of one prefab event, relative to the schemas directory.
SCHEMA: Final = "prefab/event.schema.json"

_TERMINAL: Final = frozenset({"done", "error"})
_COUNTERS: Final = ("current", "total", "percentage")
_PREVIEW: Final = 60

#: Returned for every event without violations, so the hot path allocates nothing.  Shared by
#: all checkers: callers may read, iterate or ``extend(...)`` *from* it, never mutate it.
_NO_VIOLATIONS: Final[list[Violation]] = []

Number = int | float

# -- the fast-path types: a strict mirror of schemas/prefab/*.schema.json ---------------------

# Closed objects, like the schemas (additionalProperties: false); strict: no "5" -> 5, no bools.
_EVENT_CONFIG: Final = ConfigDict(strict=True, extra="forbid")

# int first so that a JSON 7 stays 7 (not 7.0) in messages.
_Count = Annotated[int, Field(ge=0)] | Annotated[float, Field(ge=0, allow_inf_nan=False)]
_Percent = (
    Annotated[int, Field(ge=0, le=100)] | Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
)


@with_config(ConfigDict(strict=True, extra="allow"))
class _ProgressData(TypedDict, total=False):
    current: _Count
    total: _Count
    percentage: _Percent


@with_config(_EVENT_CONFIG)
class _Start(TypedDict):
    type: Literal["start"]
    data: NotRequired[dict[str, Any]]


@with_config(_EVENT_CONFIG)
class _Progress(TypedDict):
    type: Literal["progress"]
    # Any JSON value; only an object has its counters checked.
    data: _ProgressData | list[Any] | str | int | float | bool | None


@with_config(_EVENT_CONFIG)
class _Content(TypedDict):
    type: Literal["content"]
    data: str


@with_config(_EVENT_CONFIG)
class _Done(TypedDict):
    type: Literal["done"]
    data: NotRequired[dict[str, Any]]


@with_config(_EVENT_CONFIG)
class _Error(TypedDict):
    type: Literal["error"]
    data: str
    error_code: NotRequired[Annotated[str, Field(min_length=1)]]


_Event = Annotated[_Start | _Progress | _Content | _Done | _Error, Discriminator("type")]
_validate_json: Final = TypeAdapter(_Event).validate_json


# -- the rules ----------------------------------------------------------------------------------


@rule("sse.event-too-large", Severity.ERROR, "An event was larger than the size limit.")
def sse_event_too_large(event: SSEEvent) -> str | None:
    """An event (or a single line of one) was larger than ``--max-event-bytes`` (1 MiB by
    default).  The harness drops such an event unread so memory stays bounded, so it could not
    check its content.  Clients usually have a limit too.  Send large results in pieces (several
    progress events, or a file URL), or raise the limit if the event is meant to be that big."""
    if event.oversize:
        return f"the event at byte {event.offset} is over the size limit; it was not checked"
    return None


@rule("sse.invalid-utf8", Severity.WARNING, "An event's bytes were not valid UTF-8.")
def sse_invalid_utf8(event: SSEEvent) -> str | None:
    """SSE streams are UTF-8.  Invalid bytes are replaced with U+FFFD by every client, so the
    text the user sees is corrupted (often a multi-byte character split by a byte-level
    truncation, or text encoded as Latin-1/GBK).  Encode the text as UTF-8 and never cut a
    string at a byte offset."""
    if event.invalid_utf8:
        return "the event data is not valid UTF-8; invalid bytes were read as U+FFFD"
    return None


@rule("sse.data-not-json", Severity.ERROR, "An event's data is not JSON.")
def sse_data_not_json(text: str, error: Exception | None) -> str | None:
    """Every prefab event's ``data:`` is one JSON object; a client calls ``JSON.parse`` on it
    and fails here.  Common causes: sending ``str(dict)`` (single quotes, ``True``/``None``)
    instead of ``json.dumps``, ``NaN``/``Infinity`` (not JSON: ``json.dumps(...,
    allow_nan=False)`` catches them), a plain-text keep-alive or log line sent as data, or an
    empty ``data:`` line.  Use an SSE comment (``: ping``) for keep-alives."""
    if error is None:
        return None
    return f"the data {_preview(text)} is not JSON: {error}"


@rule("event.unknown-type", Severity.ERROR, "An event has a type the contract does not define.")
def event_unknown_type(kind: str) -> str | None:
    """A prefab event's ``type`` is one of ``start``, ``progress``, ``content``, ``done`` and
    ``error``; clients ignore or reject anything else.  Check the spelling (``finish`` for
    ``done``, ``message`` for ``content``) and put custom information inside ``data`` of a
    progress event instead."""
    if kind in EVENT_TYPES:
        return None
    return f"unknown event type {_show(kind)}; the prefab types are {', '.join(EVENT_TYPES)}"


@rule("event.schema", Severity.ERROR, "An event does not match the prefab event schema.")
def event_schema(kind: str | None, problems: Iterable[str]) -> str | None:
    """The event's JSON does not have the shape ``schemas/prefab/<type>.schema.json`` defines:
    a JSON object with ``type``, ``data`` (a string for content and error events, an object for
    start and done, anything for progress) and, for errors only, ``error_code``; no other
    top-level keys (extra information belongs inside ``data``).  The message names each field
    that is wrong.  Out-of-range progress numbers are reported as ``progress.bounds`` instead."""
    listed = "; ".join(problems)
    if not listed:
        return None
    if kind is None:
        return listed
    return f'the "{kind}" event does not match its schema: {listed}'


@rule("seq.first", Severity.ERROR, "The stream does not begin with a start event.")
def seq_first(kind: str) -> str | None:
    """A prefab stream begins with a ``start`` event, which clients use to reset their state
    and learn that the function accepted the call.  Yield ``{"type": "start", ...}`` before
    anything else.  This is reported once, at the first event whose type could be read; the
    rest of the stream is then checked as if it had started."""
    if kind == "start":
        return None
    return f'the stream begins with a "{kind}" event instead of "start"'


@rule("seq.order", Severity.ERROR, "An event came where the event order does not allow it.")
def seq_order(kind: str, start_index: int | None) -> str | None:
    """The order is ``start (progress | content)* (done | error)``.  In practice this means a
    second ``start`` event: a client would reset what it has shown so far.  A generator that
    calls another streaming generator should not forward the inner ``start``."""
    if kind != "start":
        return None
    if start_index is None:
        return 'a "start" event after the stream had already begun'
    return f'a second "start" event (the first was event {start_index})'


@rule("seq.after-terminal", Severity.ERROR, "An event came after the done or error event.")
def seq_after_terminal(terminal: str, terminal_index: int) -> str:
    """``done`` and ``error`` end a prefab stream; clients stop reading there, so whatever
    follows is lost.  Make ``done`` the last thing the generator yields, and return (or
    re-raise) right after yielding ``error``.  Each event after the end is reported, and nothing
    else is checked in it."""
    return f'an event after the "{terminal}" event (event {terminal_index}) that ended the stream'


@rule("seq.terminal", Severity.ERROR, "The stream ended without a done or error event.")
def seq_terminal(terminated: bool, events: int) -> str | None:
    """Every prefab stream ends with ``done`` (success) or ``error`` (failure); without one a
    client cannot tell a finished stream from a dropped connection.  Yield ``done`` after the
    last result and ``error`` in an ``except`` block.  Not reported when the stream was cut
    short for a reason reported elsewhere (timeout, truncation, a limit), nor when its last
    event could not be read (it may have been the ``done`` event)."""
    if terminated:
        return None
    if events == 0:
        return 'the stream had no events (it should be "start", ..., then "done" or "error")'
    return f'the stream ended after {events} events without a "done" or "error" event'


@rule("progress.bounds", Severity.ERROR, "A progress counter is negative or above 100 %.")
def progress_bounds(problems: Iterable[str]) -> str | None:
    """``current``, ``total`` and ``percentage`` in a progress event's ``data`` count work done,
    so none is negative and ``percentage`` is at most 100.  A value out of range usually means
    an off-by-one, a ratio not multiplied by 100 (or multiplied twice), or a total computed
    after the fact.  Clamp or fix the computation."""
    listed = "; ".join(problems)
    return listed or None


@rule("progress.current-le-total", Severity.ERROR, "A progress event has current above total.")
def progress_current_le_total(current: Number | None, total: Number | None) -> str | None:
    """In one progress event ``current`` cannot exceed ``total``: a progress bar would pass
    100 %.  Usually ``total`` was computed before more work was found, or ``current`` counts
    from 1 on the item *after* the last one.  Compute ``total`` first, and count each item once,
    after it is done."""
    if current is None or total is None or current <= total:
        return None
    return f"progress current {_show(current)} is greater than total {_show(total)}"


@rule("progress.monotonic", Severity.WARNING, "A progress event's current went down.")
def progress_monotonic(previous: tuple[Number, int] | None, current: Number) -> str | None:
    """``current`` is compared with the last progress event that had one: it should never
    decrease, or a progress bar jumps back.  This happens when parallel workers report their own
    counters, or a retry restarts the count.  Report one shared counter, or restart the stream."""
    if previous is None or current >= previous[0]:
        return None
    value, index = previous
    return f"progress current went down from {_show(value)} (event {index}) to {_show(current)}"


@rule("progress.total-stable", Severity.WARNING, "A progress event's total changed.")
def progress_total_stable(previous: tuple[Number, int] | None, total: Number) -> str | None:
    """``total`` is compared with the last progress event that had one: clients size their
    progress bar by it, so a changing total makes the bar jump.  If the amount of work is not
    known up front, leave ``total`` out and report ``current`` (or a message) alone."""
    if previous is None or total == previous[0]:
        return None
    value, index = previous
    return f"progress total changed from {_show(value)} (event {index}) to {_show(total)}"


@rule("error.code", Severity.WARNING, "An error event has no error_code.")
def error_code(event: Mapping[str, object]) -> str | None:
    """An ``error`` event should carry ``error_code``, a stable machine-readable code
    (``PROCESSING_ERROR``, ``LLM_ERROR``) next to the human-readable ``data``: without it a
    client can only show the message, not decide whether to retry or what to tell the user."""
    if "error_code" in event:
        return None
    return 'the error event has no "error_code"'


# -- reading an event the slow way ----------------------------------------------------------


class _Reading(NamedTuple):
    """What the slow path made of an event's text."""

    label: str  # the event's name in the transcript
    event: dict[str, Any] | None  # the JSON object, when its type is one of EVENT_TYPES
    rule: str = ""  # the rule broken by the event as a whole, if any
    message: str = ""
    readable: bool = True  # False: the type could not be read at all


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _read(text: str) -> _Reading:
    try:
        obj = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as e:
        message = sse_data_not_json(text, e) or ""
        return _Reading("(not json)", None, "sse.data-not-json", message, readable=False)
    if not isinstance(obj, dict):
        problem = event_schema(None, [f"the event is {_json_kind(obj)}, not a JSON object"])
        return _Reading("(not an object)", None, "event.schema", problem or "", readable=False)
    kind = obj.get("type")
    if not isinstance(kind, str):
        bad = f'the event "type" is {_show(kind)}, not a string'
        problem = event_schema(None, [bad if "type" in obj else 'the event has no "type"'])
        return _Reading("(no type)", None, "event.schema", problem or "", readable=False)
    unknown = event_unknown_type(kind)
    if unknown is not None:
        return _Reading(kind[:_PREVIEW] or '""', None, "event.unknown-type", unknown)
    return _Reading(kind, obj)


def _is_bounds(error: Any) -> bool:
    """A progress counter's minimum/maximum: reported as progress.bounds, not event.schema."""
    path = tuple(error.absolute_path)
    return (
        error.validator in ("minimum", "maximum")
        and len(path) == 2
        and path[0] == "data"
        and path[1] in _COUNTERS
    )


def _describe(error: Any) -> str:
    """A jsonschema error in plain words, naming the field and the value."""
    where = ".".join(map(str, error.absolute_path)) or "the event"
    value, limit = error.instance, error.validator_value
    match error.validator:
        case "type":
            return f"{where} is {_show(value)}, not {_TYPE_NAMES.get(limit, limit)}"
        case "required":
            missing = [k for k in limit if k not in value]
            return ", ".join(f'"{k}" is missing' for k in missing)
        case "additionalProperties":
            extra = [_show(k) for k in value if k not in error.schema["properties"]]
            keys = "key" if len(extra) == 1 else "keys"
            return f"unexpected {keys} {', '.join(extra)} (put extra information inside data)"
        case "minLength":
            return f"{where} is an empty string"
        case "minimum":
            return f"progress {error.absolute_path[-1]} {_show(value)} is below the minimum {limit}"
        case "maximum":
            return f"progress {error.absolute_path[-1]} {_show(value)} is above the maximum {limit}"
    return f"{where}: {error.message}"


_TYPE_NAMES: Final = {"object": "an object", "string": "a string", "number": "a number"}


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"the number {_show(value)}"
    return _show(value)  # true, false, null


def _without_invalid_fields(obj: dict[str, Any], errors: list[Any]) -> dict[str, Any]:
    """``obj`` without the ``data`` fields the schema rejected.

    Relations between counters (current <= total, a falling current) are judged only on
    counters that are valid themselves: one bad value is one problem, reported once.
    """
    paths = [tuple(e.absolute_path) for e in errors]
    bad = {p[1] for p in paths if len(p) > 1 and p[0] == "data"}
    data = obj.get("data")
    if not bad or not isinstance(data, dict):
        return obj
    return {**obj, "data": {k: v for k, v in data.items() if k not in bad}}


def _show(value: object) -> str:
    """A value as JSON, shortened: users write JSON, so ``true`` rather than ``True``."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def _preview(text: str) -> str:
    return repr(text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…")


def _number(data: Mapping[str, object], key: str) -> Number | None:
    value = data.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def _add(found: list[Violation], rule_id: str, message: str | None, index: int | None) -> None:
    if message is not None:
        found.append(violation(rule_id, message, index))


# -- the checker ----------------------------------------------------------------------------

_BEFORE, _BODY, _ENDED = 0, 1, 2  # where the stream is in start (progress|content)* (done|error)


class PrefabChecker:
    """Checks one stream against the prefab contract (a :class:`ContractChecker`).

    >>> c = PrefabChecker()
    >>> c.feed(SSEEvent('{"type": "start"}')), c.feed(SSEEvent('{"type": "done"}'))
    ([], [])
    >>> [v.rule for v in c.feed(SSEEvent('{"type": "content", "data": "late"}'))]
    ['seq.after-terminal']

    Event indexes in violations are 0-based and count every event fed.  A returned empty list
    may be shared: do not mutate what ``feed`` returns.
    """

    name = "prefab"

    __slots__ = (
        "_count",
        "_current",
        "_last_event",
        "_last_label",
        "_phase",
        "_start_index",
        "_terminal",
        "_total",
        "_unreadable",
    )

    def __init__(self) -> None:
        self._count = 0
        self._phase = _BEFORE
        self._start_index: int | None = None
        self._terminal = ("", -1)  # (type, index) of the done/error event
        self._current: tuple[Number, int] | None = None  # last progress current, its event
        self._total: tuple[Number, int] | None = None
        self._unreadable = -1  # index of the last event whose type could not be read
        # event_type() is called right after feed() with the same event: remember its name.
        self._last_event: SSEEvent | None = None
        self._last_label = ""

    def feed(self, event: SSEEvent) -> list[Violation]:
        """Check the next event; return the violations it revealed (usually none)."""
        index = self._count
        self._count = index + 1
        if self._phase == _ENDED:
            return self._after_terminal(index)
        text = event.data
        if event.oversize or event.invalid_utf8 or "NaN" in text or "Infinity" in text:
            return self._feed_slow(event, index)
        try:
            obj = _validate_json(text)
        except ValidationError:
            return self._feed_slow(event, index)
        kind = obj["type"]
        self._last_event, self._last_label = event, kind
        if kind == "content" and self._phase == _BODY:
            return _NO_VIOLATIONS
        return self._advance(kind, obj, index) or _NO_VIOLATIONS

    def finish(self, complete: bool = True) -> list[Violation]:
        """End of stream: report a missing done/error event, unless it was cut short."""
        last = self._count - 1
        if not complete or (last >= 0 and self._unreadable == last):
            return []  # cut short, or the last event (perhaps the done event) was unreadable
        message = seq_terminal(self._phase == _ENDED, self._count)
        return [] if message is None else [violation("seq.terminal", message, None)]

    def event_type(self, event: SSEEvent) -> str:
        """The event's prefab ``type`` (or what was wrong with it), for the transcript."""
        if event is self._last_event:
            return self._last_label
        if event.oversize:
            return "(oversize)"
        return _read(event.data).label

    # -- internals ----------------------------------------------------------------------------

    def _after_terminal(self, index: int) -> list[Violation]:
        # The client has stopped reading, so the content of this event no longer matters.
        kind, at = self._terminal
        return [violation("seq.after-terminal", seq_after_terminal(kind, at), index)]

    def _feed_slow(self, event: SSEEvent, index: int) -> list[Violation]:
        """An event the fast path rejected or could not judge: find out exactly what is wrong."""
        found: list[Violation] = []
        _add(found, "sse.invalid-utf8", sse_invalid_utf8(event), index)
        if event.oversize:
            self._last_event, self._last_label, self._unreadable = event, "(oversize)", index
            _add(found, "sse.event-too-large", sse_event_too_large(event), index)
            return found
        reading = _read(event.data)
        self._last_event, self._last_label = event, reading.label
        if not reading.readable:
            self._unreadable = index
        if reading.event is None:
            found.append(violation(reading.rule, reading.message, index))
            return found
        kind = reading.label
        checked = self._check_schema(kind, reading.event, index, found)
        found.extend(self._advance(kind, checked, index))
        return found

    @staticmethod
    def _check_schema(
        kind: str, obj: dict[str, Any], index: int, found: list[Violation]
    ) -> dict[str, Any]:
        """Validate against the type's schema; return the event without its invalid counters.

        The JSON Schema is the authority here, so the two paths can only disagree by the fast
        one being stricter -- which costs time, never a wrong verdict.
        """
        errors = list(schema_validator(f"prefab/{kind}.schema.json").iter_errors(obj))
        if not errors:
            return obj
        bounds = [e for e in errors if _is_bounds(e)]
        others = [_describe(e) for e in errors if not _is_bounds(e)]
        _add(found, "event.schema", event_schema(kind, others), index)
        _add(found, "progress.bounds", progress_bounds(map(_describe, bounds)), index)
        return _without_invalid_fields(obj, errors)

    def _advance(self, kind: str, obj: Mapping[str, object], index: int) -> list[Violation]:
        """Move along ``start (progress|content)* (done|error)`` with an event of type ``kind``."""
        found: list[Violation] = []
        if self._phase == _BEFORE:
            self._phase = _BODY
            if kind == "start":
                self._start_index = index
                return found
            _add(found, "seq.first", seq_first(kind), index)
        else:
            _add(found, "seq.order", seq_order(kind, self._start_index), index)
        if kind == "progress":
            data = obj.get("data")
            if isinstance(data, dict):
                self._progress(data, index, found)
        elif kind in _TERMINAL:
            self._phase, self._terminal = _ENDED, (kind, index)
            if kind == "error":
                _add(found, "error.code", error_code(obj), index)
        return found

    def _progress(self, data: Mapping[str, object], index: int, found: list[Violation]) -> None:
        current, total = _number(data, "current"), _number(data, "total")
        _add(found, "progress.current-le-total", progress_current_le_total(current, total), index)
        if current is not None:
            _add(found, "progress.monotonic", progress_monotonic(self._current, current), index)
            self._current = (current, index)
        if total is not None:
            _add(found, "progress.total-stable", progress_total_stable(self._total, total), index)
            self._total = (total, index)
