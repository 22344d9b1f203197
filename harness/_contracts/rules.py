"""The rules a contract checks, one function each, and the helpers that word their messages.

Every contract -- the prefab one, the OpenAI and Anthropic dialects, a team's own file -- is
checked by the same engine (``harness._contracts.engine``), so the rules are the engine's, not
one contract's: ``seq.order`` means "this type may not come here" whatever the contract, and
``progress.bounds`` means a progress counter out of range wherever a contract declares
progress counters.  A rule function returns its message when the rule is broken and ``None``
when it holds; the engine and the invariants (``harness._contracts.invariants``) decide when to
ask.  Messages name the values as JSON (users write JSON): ``true``, not ``True``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Final

from harness._core.rules import Severity, rule
from harness._core.sse import SSEEvent
from harness._core.text import shorten

__all__ = ["Number", "json_kind", "one_of", "preview", "show"]

PREVIEW: Final = 60

Number = int | float


# -- wording --------------------------------------------------------------------------------


def show(value: object) -> str:
    """A value as JSON, shortened: users write JSON, so ``true`` rather than ``True``."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(value)
        except (ValueError, RecursionError):  # nested deeper than repr goes
            text = f"a deeply nested {type(value).__name__}"
    return shorten(text, PREVIEW)


def preview(text: str) -> str:
    return repr(shorten(text, PREVIEW))


def json_kind(value: object) -> str:
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"the number {show(value)}"
    return show(value)  # true, false, null


def one_of(names: Sequence[str], joiner: str = "or") -> str:
    """``"a"``, ``"a" or "b"``, ``"a", "b" or "c"`` (JSON-quoted)."""
    quoted = [show(n) for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return f"{', '.join(quoted[:-1])} {joiner} {quoted[-1]}"


# -- reading an event -----------------------------------------------------------------------


@rule("sse.event-too-large", Severity.ERROR, "An event was larger than the size limit.")
def sse_event_too_large(event: SSEEvent) -> str | None:
    """An event (or a single line of one) was larger than ``--max-event-bytes`` (1 MiB by
    default).  The harness drops such an event unread so memory stays bounded, so it could not
    check its content.  Comment lines (``: keep-alive``) do not count towards an event's size:
    they are dropped as they arrive, however many come before the blank line.  Clients usually
    have a limit too.  Send large results in pieces (several
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
    """In a contract whose events are JSON (prefab, openai-chat, anthropic-messages, llm-debug,
    agent-stages) every event's ``data:`` is one JSON document; a client calls ``JSON.parse``
    on it and fails here.  Common causes: sending ``str(dict)`` (single quotes,
    ``True``/``None``) instead of ``json.dumps``, ``NaN``/``Infinity`` (not JSON:
    ``json.dumps(..., allow_nan=False)`` catches them), a plain-text keep-alive or log line
    sent as data, or an empty ``data:`` line.  Use an SSE comment (``: ping``) for keep-alives;
    a contract with a sentinel (``[DONE]``) accepts exactly that text."""
    if error is None:
        return None
    return f"the data {preview(text)} is not JSON: {error}"


# -- one event ------------------------------------------------------------------------------


@rule("event.unknown-type", Severity.ERROR, "An event has a type the contract does not define.")
def event_unknown_type(kind: str, contract: str, known: Sequence[str]) -> str | None:
    """Every contract lists its event types (``stream-harness contracts``); clients ignore or
    reject anything else.  A prefab event's ``type`` is one of ``start``, ``progress``,
    ``content``, ``done`` and ``error``; an Anthropic stream's SSE ``event:`` names are
    ``message_start`` ... ``message_stop``, ``ping`` and ``error``.  Check the spelling
    (``finish`` for ``done``, ``message`` for ``content``) and put custom information inside
    an event the contract defines."""
    if kind in known:
        return None
    return f"unknown event type {show(kind)}; the {contract} types are {', '.join(known)}"


@rule(
    "event.unknown-type-open",
    Severity.WARNING,
    "An event has a type the contract does not define, in a contract open to new types.",
)
def event_unknown_type_open(kind: str, contract: str, known: Sequence[str]) -> str | None:
    """The contract declares itself open (``open: true``): its protocol says new event types
    may appear and clients must ignore the ones they do not know -- Anthropic's Messages API
    says so of its stream.  Such an event is passed over (it does not move the order along)
    and reported as a warning, so a new type is noticed but does not fail a check; a
    misspelled known type looks the same, hence the list of known types."""
    if kind in known:
        return None
    return (
        f"event type {show(kind)} is not one the {contract} contract knows (ignored, as its "
        f"protocol allows); the known types are {', '.join(known)}"
    )


@rule("event.schema", Severity.ERROR, "An event does not match its type's schema.")
def event_schema(kind: str | None, problems: Iterable[str]) -> str | None:
    """The event's content does not have the shape its contract's JSON Schema for that type
    defines (``schemas/<contract>/<type>.schema.json``, or one inline in a contract file).  For
    prefab: a JSON object with ``type``, ``data`` (a string for content and error events, an
    object for start and done, anything for progress) and, for errors only, ``error_code``; no
    other top-level keys.  It is also reported when an event's type cannot be read at all (not
    an object, no type).  The message names each field that is wrong.  Problems a more
    specific rule covers are reported under that rule instead (a negative progress counter is
    ``progress.bounds``)."""
    listed = "; ".join(problems)
    if not listed:
        return None
    if kind is None:
        return listed
    return f'the "{kind}" event does not match its schema: {listed}'


# -- the order of events --------------------------------------------------------------------


@rule("seq.first", Severity.ERROR, "The stream does not begin with the event its contract wants.")
def seq_first(kind: str, expected: Sequence[str]) -> str | None:
    """Each contract says which event opens a stream: prefab's ``start``, Anthropic's
    ``message_start``, an OpenAI chunk.  Clients use it to reset their state and learn that the
    call was accepted.  Send it before anything else.  This is reported once, at the first
    event whose type could be read; the rest of the stream is then checked as if it had
    begun properly."""
    if kind in expected:
        return None
    return f"the stream begins with a {show(kind)} event instead of {one_of(expected)}"


@rule("seq.order", Severity.ERROR, "An event came where the event order does not allow it.")
def seq_order(
    kind: str,
    expected: Sequence[str],
    after: int,
    only_first: bool = False,
    first_index: int | None = None,
) -> str:
    """The contract's order pattern -- prefab's ``start (progress | content)* (done | error)``
    -- does not allow this event here; the message lists the types it expected after the
    previous event.  For prefab this is in practice a second ``start`` event, after which a
    client would reset what it has shown so far (a generator that calls another streaming
    generator should not forward the inner ``start``); for Anthropic, a ``content_block_delta``
    outside a ``content_block_start`` ... ``content_block_stop`` pair.  The stream is then
    checked on from the nearest place in the order where the event would have fit."""
    if only_first:
        if first_index is None:
            return f"a {show(kind)} event after the stream had already begun"
        return f"a second {show(kind)} event (the first was event {first_index})"
    listed = ", ".join(expected)
    words = f"one of {listed}" if len(expected) > 1 else listed or "the end of the stream"
    return f"expected {words} after event {after}, got {kind}"


@rule("seq.after-terminal", Severity.ERROR, "An event came after the event that ended the stream.")
def seq_after_terminal(terminal: str, terminal_index: int) -> str:
    """A contract's last event ends the stream -- prefab's ``done`` or ``error``, the OpenAI
    ``[DONE]`` sentinel, Anthropic's ``message_stop`` -- and clients stop reading there, so
    whatever follows is lost.  Make it the last thing the server sends, and return (or re-raise)
    right after sending an error.  Each event after the end is reported, and nothing else is
    checked in it."""
    return f'an event after the "{terminal}" event (event {terminal_index}) that ended the stream'


@rule("seq.terminal", Severity.ERROR, "The stream ended without the event that ends it.")
def seq_terminal(
    terminated: bool, events: int, first: Sequence[str], ending: Sequence[str]
) -> str | None:
    """Every stream ends with the event its contract ends with -- prefab's ``done`` (success)
    or ``error`` (failure), OpenAI's ``data: [DONE]``, Anthropic's ``message_stop`` -- and
    without one a client cannot tell a finished stream from a dropped connection.  Send it
    after the last result, and the error event in an ``except`` block.  Not reported when the
    stream was cut short for a reason reported elsewhere (timeout, truncation, a limit), nor
    when its last event could not be read (it may have been the final event)."""
    if terminated:
        return None
    if events == 0:
        return (
            f"the stream had no events (it should be {one_of(first)}, ..., then {one_of(ending)})"
        )
    return f"the stream ended after {events} events without a {one_of(ending)} event"


@rule(
    "seq.requested", Severity.ERROR, "An event the request asked for is missing, or came unasked."
)
def seq_requested(kind: str, flag: str, asked: bool, index: int | None) -> str:
    """Some events are sent only when the request asks for them: an OpenAI-compatible server
    sends one final usage chunk (empty ``choices``, token counts in ``usage``) just before
    ``[DONE]`` exactly when the request set ``stream_options.include_usage``.  A client that
    asked waits for it to report token counts; one that did not may mistake it for an empty
    answer.  The harness knows the request when it sends it (``--body``); for a recording it
    cannot tell, and this rule is not applied."""
    if asked:
        return f"the request set {flag}, but no {show(kind)} event came"
    return f"a {show(kind)} event (event {index}), but the request did not set {flag}"


# -- progress counters ----------------------------------------------------------------------


@rule("progress.bounds", Severity.ERROR, "A progress counter is negative or above 100 %.")
def progress_bounds(problems: Iterable[str]) -> str | None:
    """``current``, ``total`` and ``percentage`` in a progress event count work done, so none is
    negative and ``percentage`` is at most 100.  A value out of range usually means an
    off-by-one, a ratio not multiplied by 100 (or multiplied twice), or a total computed after
    the fact.  Clamp or fix the computation.  (A contract names its counters with JSON pointers
    in its ``progress`` invariant; prefab's are ``/data/current``, ``/data/total`` and
    ``/data/percentage``.)"""
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
    return f"progress current {show(current)} is greater than total {show(total)}"


@rule("progress.monotonic", Severity.WARNING, "A progress event's current went down.")
def progress_monotonic(previous: tuple[Number, int] | None, current: Number) -> str | None:
    """``current`` is compared with the last progress event that had one: it should never
    decrease, or a progress bar jumps back.  This happens when parallel workers report their own
    counters, or a retry restarts the count.  Report one shared counter, or restart the stream."""
    if previous is None or current >= previous[0]:
        return None
    value, index = previous
    return f"progress current went down from {show(value)} (event {index}) to {show(current)}"


@rule("progress.total-stable", Severity.WARNING, "A progress event's total changed.")
def progress_total_stable(previous: tuple[Number, int] | None, total: Number) -> str | None:
    """``total`` is compared with the last progress event that had one: clients size their
    progress bar by it, so a changing total makes the bar jump.  If the amount of work is not
    known up front, leave ``total`` out and report ``current`` (or a message) alone."""
    if previous is None or total == previous[0]:
        return None
    value, index = previous
    return f"progress total changed from {show(value)} (event {index}) to {show(total)}"


@rule("error.code", Severity.WARNING, "An error event has no error code.")
def error_code(kind: str, field: str, present: bool) -> str | None:
    """An error event should carry a stable, machine-readable code (prefab's ``error_code``:
    ``PROCESSING_ERROR``, ``LLM_ERROR``) next to the human-readable message: without it a
    client can only show the message, not decide whether to retry or what to tell the user."""
    if present:
        return None
    return f'the {kind} event has no "{field}"'


# -- fields across events -------------------------------------------------------------------


@rule("field.constant", Severity.ERROR, "A field that must stay the same across events changed.")
def field_constant(field: str, previous: tuple[object, int], value: object) -> str | None:
    """Some fields name the stream rather than the event and must not change while it lasts:
    every OpenAI chunk carries the same ``id`` and ``model``, and an Anthropic content block's
    deltas and stop carry the index of the block that is open.  A change usually means two
    streams were interleaved, or a gateway rewrote some chunks and not others; clients key
    their state by these fields and either mix answers up or drop chunks."""
    before, index = previous
    if _same(before, value):
        return None
    return f"{field} changed from {show(before)} (event {index}) to {show(value)}"


@rule(
    "field.once-per-key",
    Severity.ERROR,
    "A value that must come once per key came twice, or never.",
)
def field_once_per_key(
    item: str, what: str, first: tuple[object, int] | None, value: object = None
) -> str:
    """Some values come exactly once for each key: every OpenAI choice ``index`` gets one
    non-null ``finish_reason``; every agent of an agent-stages stream ends with one
    ``complete`` or ``error``.  A second one makes a client finish the same answer twice;
    a missing one leaves it waiting (reported at the end of a stream that ended normally,
    not after an error)."""
    if first is None:
        return f"{item} never got {what}"
    before, index = first
    earlier = f"(the first, {show(before)}, was at event {index})"
    return f"{item} got a second {what} {show(value)} {earlier}"


@rule("field.after-final", Severity.ERROR, "Something came for a key after its final value.")
def field_after_final(item: str, what: str, final: tuple[object, int]) -> str:
    """Once a key has its final value -- an OpenAI choice its ``finish_reason``, an agent its
    ``complete`` event -- nothing more may come for it: clients have closed that answer, so a
    late delta is lost or appended to the wrong place."""
    value, index = final
    return f"{item} continued after its {what} {show(value)} (event {index})"


@rule("field.sum", Severity.ERROR, "A total is not the sum of its parts.")
def field_sum(total: tuple[str, Number], parts: Sequence[tuple[str, Number]]) -> str | None:
    """A field declared as the sum of others must equal it: an OpenAI usage chunk's
    ``total_tokens`` is ``prompt_tokens + completion_tokens``.  Billing and quota code reads
    the total; a mismatch means one of the counts is wrong."""
    name, value = total
    expected = sum(v for _, v in parts)
    if value == expected:
        return None
    added = " + ".join(n for n, _ in parts)
    return f"{name} is {show(value)}, but {added} is {show(expected)}"


@rule(
    "fragment.first",
    Severity.ERROR,
    "A streamed fragment's identifying fields were missing from its first piece or repeated.",
)
def fragment_first(what: str, field: str, first: bool) -> str:
    """Some things stream in fragments keyed by an index, and only the first fragment says
    what the thing is: an OpenAI tool call's ``id`` and ``function.name`` come in the first
    fragment of that ``index`` and never again (the SDK and every client accumulate by index,
    taking the name from the first and concatenating the arguments).  A first fragment
    without them leaves the call unnamed; a later fragment that sends them again makes a client
    that concatenates (``name += fragment.name``) call a function that does not exist."""
    if first:
        return f"the first fragment of {what} has no {field}"
    return f"a later fragment of {what} repeats {field} (only the first fragment carries it)"


@rule("fragment.json", Severity.ERROR, "Streamed fragments, joined, were not the JSON expected.")
def fragment_json(what: str, field: str, text: str, error: str) -> str:
    """When the item finished the way that says its fragments are complete (an OpenAI choice
    with ``finish_reason: tool_calls``), the joined pieces must parse as JSON: the arguments
    of a tool call are what the client passes to ``json.loads`` before calling the tool."""
    return f"the {field} of {what}, joined, is not JSON ({error}): {show(text)}"


@rule("field.matches-request", Severity.ERROR, "A field that must repeat the request's did not.")
def field_matches_request(field: str, value: object, asked: object) -> str | None:
    """Some responses must say which request they answer: a JSON-RPC response's ``id`` is the
    id of the request it answers (MCP's Streamable HTTP sends it last on the stream the request
    opened).  A client waits for the id it sent; a response with another id answers nobody,
    and the client waits until it times out.  Checked when the harness sent the request
    (``--body``)."""
    if json_equal(value, asked):
        return None
    return f"{field} is {show(value)}, but the request's is {show(asked)}"


@rule(
    "span.not-open",
    Severity.ERROR,
    "An event belongs to a span that was never opened, or was closed.",
)
def span_not_open(kind: str, span: str, opened_by: str, closed_at: int | None) -> str:
    """Some streams interleave spans -- a text part, a reasoning part, a tool call's input, a
    Responses content part -- each opened by a start event, continued by deltas and closed by an
    end event, all carrying the span's key (an id, or several fields together such as
    ``output_index`` and ``content_index``).  A client looks the key up to append a delta: the
    AI SDK's UI fails a ``text-delta`` whose ``text-start`` never came ("text part not found"),
    which is the bug users hit when a server skips the start.  A delta or end after the span's
    end goes nowhere too; so does what follows a span (a tool's output) for a key no span had.
    The span is then taken as open, so its other events are not reported again."""
    if closed_at is not None:
        return f'a "{kind}" for {span} after that span ended (event {closed_at})'
    return f'a "{kind}" for {span}, which no {opened_by} opened'


@rule("span.unclosed", Severity.ERROR, "A span opened in the stream was never closed.")
def span_unclosed(
    span: str, opened: int, closed_by: str, ended_by: str = "", ended_at: int | None = None
) -> str:
    """A span (a text part, a tool call's input) was opened and the stream ended without its
    end event: a client keeps it marked as still streaming (a spinner that never stops, a tool
    call whose input never becomes available).  A span nested in another (a Responses content
    part in its output item) must also be closed before the enclosing one is."""
    if ended_at is not None:
        return (
            f"{span} was opened at event {opened} and not closed by {closed_by} "
            f'before the "{ended_by}" at event {ended_at} that encloses it'
        )
    return f"{span} was opened at event {opened} and never closed by {closed_by}"


@rule("span.reopened", Severity.ERROR, "A span was opened a second time.")
def span_reopened(kind: str, span: str, opened: int, closed_at: int | None) -> str:
    """A key opens one span: a second start for a text part that is still open leaves the
    first one streaming forever in the client, and a tool call's id names one call -- a
    second ``tool-input-start`` for it, even after the first input ended, makes the client
    overwrite the call it had (contracts say ``unique: true`` for such keys)."""
    if closed_at is None:
        return f'a second "{kind}" for {span}, which event {opened} opened and is still open'
    return (
        f'a second "{kind}" for {span} (event {opened} opened it, event {closed_at} '
        "closed it; the key names one span per stream)"
    )


@rule(
    "span.not-closed",
    Severity.ERROR,
    "An event that follows a span came while the span was still open.",
)
def span_not_closed(kind: str, span: str, opened: int, closed_by: str) -> str:
    """Some events follow a span rather than belong to it: a tool's output comes after the
    tool call's input is complete (``tool-input-available``).  An output while the input is
    still streaming answers a call the client cannot run yet."""
    return (
        f'a "{kind}" for {span} before that span ended '
        f"(it opened at event {opened} and ends with {closed_by})"
    )


@rule("field.sequential", Severity.ERROR, "A number across events did not count up by one.")
def field_sequential(
    field: str,
    value: object,
    expected: int,
    within: Sequence[str] | None,
    increasing: bool = False,
) -> str | None:
    """A field declared sequential numbers things 0, 1, 2, ... in the order they begin, and
    the events inside one of them repeat its number: Anthropic content blocks are indexed in
    the order their ``content_block_start`` events come, and each block's deltas and stop
    carry the index of the block that is open.  Clients store blocks by this index, so a gap,
    a repeat or a stray number leaves a hole in the message or writes into the wrong block.
    With ``gaps: true`` the numbers need only increase (OpenAI's ``sequence_number`` counts
    events of types a contract may not know)."""
    if _same(value, expected):
        return None
    if increasing:
        return f"{field} is {show(value)} where {expected} or more was expected (it counts up)"
    if within is None:
        return f"{field} is {show(value)} where {expected} was expected (they count up by one)"
    opened = " or ".join(within)
    return f"{field} is {show(value)} where {expected} was expected (that of the last {opened})"


def _same(a: object, b: object) -> bool:
    """JSON equality: ``1 == 1.0`` but ``true != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


json_equal = _same
