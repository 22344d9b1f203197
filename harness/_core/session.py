"""One checked stream, sans-I/O: bytes or events in, a :class:`CheckResult` out.

Every runner (a ``.sse`` file, a generator in the worker process, an HTTP response) owns the
I/O and the clock; it hands each chunk or event to a :class:`StreamSession` with the time it
arrived, reports what only it can see (an HTTP status, a timeout, a crash) with :meth:`add`,
and calls :meth:`finish`.  The session runs the decoder and the contract checker, enforces
``max_events``, keeps the transcript people read, and builds the verdict CI parses.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness._core.framing import SSE, FrameDecoder, make_decoder
from harness._core.framing_rules import framing_violations
from harness._core.redact import redact_text
from harness._core.roles import Failure, Roles, roles_of
from harness._core.rules import Severity, Violation, rule, strict, violation
from harness._core.sse import DEFAULT_MAX_EVENT_BYTES, SSEEvent
from harness._core.text import readable_escapes, shorten
from harness._core.thresholds import ThresholdResult
from harness._core.timings import ArrivalTimes

__all__ = [
    "CheckResult",
    "ContractChecker",
    "StreamSession",
    "Timing",
    "TranscriptEntry",
    "end_of_stream",
]

DEFAULT_MAX_EVENTS = 100_000
#: How much of a stream's raw bytes a session keeps for the report's ``.sse`` reproducer.
RAW_LIMIT = 8 << 20
_PREVIEW = 160
#: The transcript a session keeps, however long the stream: the first ``TRANSCRIPT_HEAD`` events,
#: ``TRANSCRIPT_CONTEXT`` events either side of each of the first ``TRANSCRIPT_FAILURES`` events
#: that broke a rule, and the last ``TRANSCRIPT_TAIL``.  Violations are all counted; after
#: ``MAX_VIOLATIONS`` distinct ones, later ones are counted per rule, not kept one by one.
TRANSCRIPT_HEAD = 1000
TRANSCRIPT_TAIL = 1000
TRANSCRIPT_CONTEXT = 3
TRANSCRIPT_FAILURES = 200
MAX_VIOLATIONS = 1000


class ContractChecker(Protocol):
    """The incremental checker a contract provides (see ``harness._contracts.prefab``)."""

    name: str

    def feed(self, event: SSEEvent) -> list[Violation]:
        """Check the next event; return the violations it revealed (usually none)."""
        ...

    def finish(self, complete: bool = True) -> list[Violation]:
        """End of stream. ``complete=False``: it was cut short by a cause already reported
        (timeout, crash, truncation, a limit), so rules about how it ended are not applied."""
        ...

    def event_type(self, event: SSEEvent) -> str:
        """A short name of the event for the transcript (e.g. the prefab ``type``)."""
        ...


@dataclass(frozen=True, slots=True)
class Timing:
    ttfb_ms: float | None = None
    first_event_ms: float | None = None
    duration_ms: float | None = None
    #: HTTP only: the TCP connect, and the TLS handshake (None for http://), before the clock
    #: above starts -- which is when the request's first byte is written.
    connect_ms: float | None = None
    tls_ms: float | None = None

    def to_json(self) -> dict[str, float | None]:
        r = _round
        out = {
            "ttfb_ms": r(self.ttfb_ms),
            "first_event_ms": r(self.first_event_ms),
            "duration_ms": r(self.duration_ms),
        }
        if self.connect_ms is not None:  # a connection was made (URL targets): its set-up
            out["connect_ms"] = r(self.connect_ms)
            out["tls_ms"] = r(self.tls_ms)
        return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


@dataclass(slots=True)
class TranscriptEntry:
    index: int
    kind: str
    id: str
    preview: str
    time_ms: float | None
    violations: list[Violation] = field(default_factory=list)


#: The violations of an event that has none, as ``_recent`` keeps them: a tuple, so that the
#: garbage collector untracks the (index, event, time, ()) of a healthy event.  A list there
#: kept a thousand tracked tuples alive at any time, promoted to the oldest generation by the
#: million on a long stream: full collections cost the CLI a third of its time.
_NO_VIOLATIONS: tuple[Violation, ...] = ()

#: An event seen but not (yet) in the transcript: (index, event, time ms, its violations).
_Seen = tuple[int, SSEEvent, float, Sequence[Violation]]


@dataclass(slots=True)
class CheckResult:
    """The outcome of checking one stream."""

    target: str
    contract: str
    events: int
    violations: list[Violation]
    timing: Timing
    #: The events a person reads, in order (``entry.index`` is the event's number): for a long
    #: stream, its head, the events around failures and its tail (see ``TRANSCRIPT_HEAD``).
    transcript: list[TranscriptEntry]
    #: Arrival time of each event, in ms since the request started (for timing thresholds);
    #: an ``array('d')`` from a session, 8 bytes an event -- for a stream of at most
    #: ``harness._core.timings.EXACT_TIMES`` events.  A longer one leaves it empty: its
    #: ``arrivals`` keep a histogram of the gaps and a sample instead (memory stays flat).
    event_times_ms: Sequence[float] = field(default_factory=list)
    #: Extra facts a runner measured (e.g. ``reconnect_ms``), reported in text output.
    extra: dict[str, Any] = field(default_factory=dict)
    #: The stream's raw bytes (at most ``RAW_LIMIT``), so a failing stream can be saved as a
    #: ``.sse`` file that ``stream-harness check`` reproduces; generator runs are framed as the
    #: gateway frames them.
    raw: bytes = b""
    #: True when the stream was longer than ``RAW_LIMIT`` and ``raw`` holds only its start.
    raw_truncated: bool = False
    #: Timing gates (``--threshold``) evaluated on this stream; any miss fails the check.
    thresholds: list[ThresholdResult] = field(default_factory=list)
    #: Index of the first event the contract calls content (with a non-empty value), if any:
    #: ``first_content_ms`` is its time in the transcript.
    first_content: int | None = None
    #: The in-band failure the stream reported (the first event of a failure type: its code
    #: and message), if any.  Not a violation: a stream may fail and still keep its contract.
    failure: Failure | None = None

    @property
    def failure_code(self) -> str | None:
        """The in-band failure's code (None: no failure, or one without a code)."""
        return None if self.failure is None else self.failure.code

    #: How the bytes were framed (``harness._core.framing``): a saved stream's suffix says it.
    framing: str = SSE
    #: The session's arrival times (bounded: exact, or a gap histogram and a sample), when a
    #: session measured them; thresholds and the timeline read them for a long stream.
    arrivals: ArrivalTimes | None = None

    def entry(self, index: int) -> TranscriptEntry | None:
        """The transcript entry of event ``index``, if it was kept."""
        t = self.transcript
        i = bisect.bisect_left(t, index, key=lambda e: e.index)
        return t[i] if i < len(t) and t[i].index == index else None

    @property
    def conforms(self) -> bool:
        """No violation of severity error (thresholds aside)."""
        return not any(v.is_error for v in self.violations)

    @property
    def ok(self) -> bool:
        return self.conforms and all(t.ok for t in self.thresholds)

    def redact(self, secrets: Sequence[str]) -> None:
        """Replace every secret value (header values, tokens) wherever a server may have
        echoed it: messages, the transcript, ids and the runner's extra facts."""
        if not secrets:
            return

        def scrub(v: Violation) -> Violation:
            message = redact_text(v.message, secrets)
            return v if message == v.message else dataclasses.replace(v, message=message)

        self.violations[:] = [scrub(v) for v in self.violations]
        for entry in self.transcript:
            entry.preview = redact_text(entry.preview, secrets)
            entry.id = redact_text(entry.id, secrets)
            entry.violations = [scrub(v) for v in entry.violations]
        for key, value in self.extra.items():
            if isinstance(value, str):
                self.extra[key] = redact_text(value, secrets)

    def make_strict(self) -> None:
        """``--strict``: every warning becomes a failure, in the verdict and the transcript."""
        self.violations[:] = [strict(v) for v in self.violations]
        for entry in self.transcript:
            if entry.violations:
                entry.violations[:] = [strict(v) for v in entry.violations]

    def to_json(self) -> dict[str, Any]:
        """The ``--format json`` verdict. Its shape is public interface: add, never reshape."""
        verdict: dict[str, Any] = {
            "ok": self.ok,
            "target": self.target,
            "contract": self.contract,
            "events": self.events,
            "violations": [v.to_json() for v in self.violations],
            "timing": self.timing.to_json(),
        }
        if self.thresholds:  # only when gates were given: the shape above stays as it was
            verdict["thresholds"] = [t.to_json() for t in self.thresholds]
        return verdict


@rule("sse.truncated", Severity.ERROR, "The stream ended in the middle of an event.")
def sse_truncated(truncated: bool) -> str | None:
    """The last bytes of the stream did not end with a blank line, so the final event was never
    completed.  The SSE specification says a client discards such an event: whatever it held
    (often the ``done`` event) never reaches the application.  Usually the server or a proxy
    closed the connection early, or the server forgot the blank line after its last event."""
    if truncated:
        return "the stream ended inside an event (no blank line after it); a client discards it"
    return None


@rule("limit.max-events", Severity.WARNING, "The run stopped at --max-events before the end.")
def max_events_reached(events: int, limit: int) -> str | None:
    """The harness reads at most ``--max-events`` events from one stream (100 000 by default) so
    that an endless stream cannot hang a CI job.  The stream had not ended when the limit was
    reached, so how it ends was not checked.  Raise the limit if the stream is meant to be
    this long."""
    if events >= limit:
        return f"stopped after {limit} events (--max-events); the rest was not checked"
    return None


def end_of_stream(
    decoder: FrameDecoder,
    framing: str,
    checker: ContractChecker,
    feed_tail: Callable[[Sequence[SSEEvent]], int],
    complete: bool,
    ended: bool | None = None,
) -> list[Violation]:
    """How a byte stream ended, judged the same way by every runner (``check``'s session and
    the load tester's reader): ``feed_tail`` takes what the decoder still held (an NDJSON last
    line without a line end) and returns the stream's event count; then truncation, the
    framing's end rules and the contract's, on a stream cut short (``complete=False``) only the
    rules that still apply.  ``ended``: the body ended as the server ended it, even where the
    stream is not complete for the contract (a wrong Content-Type): a body of bytes without
    one event is then still worth saying (``sse.no-events``); by default, ``complete``."""
    events = feed_tail(decoder.finish())
    found = []
    whole = complete if ended is None else ended
    msg = sse_truncated(decoder.truncated)
    if msg and complete:
        found.append(violation("sse.truncated", msg, None))
        complete = whole = False  # one problem, one violation: the truncation says it
    found += framing_violations(framing, decoder, events, whole)
    found += checker.finish(complete=complete)
    return found


class StreamSession:
    """Feeds one stream through the decoder and a contract checker."""

    def __init__(
        self,
        target: str,
        checker: ContractChecker,
        *,
        start: float,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_events: int = DEFAULT_MAX_EVENTS,
        framing: str = SSE,
    ) -> None:
        self.target = target
        self.checker = checker
        #: How the bytes are framed (``harness._core.framing``): ``sse``, ``ndjson``, ``text``.
        self.framing = framing
        self.max_event_bytes = max_event_bytes
        self.decoder: FrameDecoder = make_decoder(framing, max_event_bytes)
        self.roles: Roles = roles_of(checker)
        self.first_content: int | None = None
        self.failure: Failure | None = None
        self.max_events = max_events
        self.start = start
        self.first_byte: float | None = None
        self.first_event: float | None = None
        #: Set by the HTTP runner: connection set-up, before ``start``.
        self.connect_ms: float | None = None
        self.tls_ms: float | None = None
        self.violations: list[Violation] = []
        # (rule, message) -> [first violation, how many more events broke it the same way]
        self._repeats: dict[tuple[str, str], list[Any]] = {}
        # The kept transcript (in order), and the latest entries not (yet) kept: the tail, or
        # the context before a failure.
        self.transcript: list[TranscriptEntry] = []
        self._recent: deque[_Seen] = deque(maxlen=TRANSCRIPT_TAIL)
        self._keep_next = 0
        self._failure_sites = 0
        self._dropped: dict[str, int] = {}  # rule -> violations past MAX_VIOLATIONS
        #: Arrival times, ms since ``start``: exact for a short stream, bounded for any.
        self.arrivals = ArrivalTimes()
        self.extra: dict[str, Any] = {}
        self.events = 0
        self.stopped = False  # max_events reached: the runner should stop reading
        self._raw: list[bytes] = []
        self._raw_len = 0
        self._raw_truncated = False

    # -- input --------------------------------------------------------------------------------

    def set_framing(self, framing: str) -> None:
        """Decode with ``framing`` from now on (a runner learns it from the response headers,
        before the first byte of the body)."""
        if framing != self.framing:
            self.framing = framing
            self.decoder = make_decoder(framing, self.max_event_bytes)

    def mark_first_byte(self, at: float) -> None:
        if self.first_byte is None:
            self.first_byte = at

    def record(self, chunk: bytes) -> None:
        """Keep raw bytes for the reproducer (bounded by ``RAW_LIMIT``)."""
        room = RAW_LIMIT - self._raw_len
        if room <= 0:
            self._raw_truncated = True
            return
        if len(chunk) > room:
            chunk, self._raw_truncated = chunk[:room], True
        self._raw.append(chunk)
        self._raw_len += len(chunk)

    @property
    def event_times_ms(self) -> Sequence[float]:
        """Every event's arrival time while the stream is short; then its count, first and last
        (what ``timing.buffered`` reads)."""
        return self.arrivals.span()

    def feed_bytes(self, chunk: bytes, at: float) -> bool:
        """Feed raw SSE bytes; returns False once ``max_events`` is reached (stop reading)."""
        if self.first_byte is None:
            self.first_byte = at
        self.record(chunk)
        events = self.decoder.feed(chunk, at)
        return self._feed_run(events, at) if events else True

    def _feed_run(self, events: Sequence[SSEEvent], at: float) -> bool:
        """The events of one chunk, which arrived together at ``at``.

        Past the transcript's head, most events are healthy and most of those are never kept:
        they only have to be checked and counted.  So runs of them take a loop that does just
        that, and leave the last ``TRANSCRIPT_TAIL`` of the run in ``_recent`` at C speed; an
        event the contract objects to (or the first content) leaves the loop for
        :meth:`_note`, the one place that decides what is kept."""
        n, i = len(events), 0
        feed, recent = self.checker.feed, self._recent
        while i < n:
            if (
                self.events < TRANSCRIPT_HEAD
                or self._keep_next
                or self.max_events - self.events <= n - i
                or self.first_event is None
            ):
                if not self.feed_event(events[i], at):
                    return False
                i += 1
                continue
            looking = self.first_content is None
            is_content = self.roles.is_content
            start = index = self.events
            found: list[Violation] = []
            notable: SSEEvent | None = None
            for event in itertools.islice(events, i, None):
                found = feed(event)
                if found or (looking and is_content(event)):
                    notable = event
                    break
                index += 1
            t = (at - self.start) * 1000.0
            plain = index - start
            if plain:
                first = max(start, index - TRANSCRIPT_TAIL)
                recent.extend(
                    zip(
                        range(first, index),
                        itertools.islice(events, i + first - start, i + plain),
                        itertools.repeat(t),
                        itertools.repeat(_NO_VIOLATIONS),
                        strict=False,
                    )
                )
                self.arrivals.add(t, plain)
                self.events = index
            i += plain
            if notable is None:
                return True
            if not self._note(notable, t, found):
                return False
            i += 1
        return True

    def feed_item(self, event: SSEEvent, at: float) -> bool:
        """Feed an event that did not come as SSE bytes (a generator's item): it is recorded
        framed as the gateway would send it, so the saved stream reproduces it."""
        lines = [f"id: {event.id}"] if event.id else []
        lines += [f"data: {line}" for line in event.data.split("\n")]
        self.record(("\n".join(lines) + "\n\n").encode())
        return self.feed_event(event, at)

    def feed_event(self, event: SSEEvent, at: float) -> bool:
        """Feed one decoded event; returns False once ``max_events`` is reached."""
        if self.stopped:
            return False
        if self.first_event is None:
            self.first_event = at
        found = self.checker.feed(event)
        return self._note(event, (at - self.start) * 1000.0, found)

    def _note(self, event: SSEEvent, t: float, found: list[Violation]) -> bool:
        """The event was checked (``found``: its violations), at ``t`` ms: keep what is due."""
        self.arrivals.add(t)
        index = self.events
        if self.first_content is None and self.roles.is_content(event):
            self.first_content = index
        notable = self.first_content == index
        if found:
            found = self._first_of_their_kind(found)
            self.violations.extend(found)
            notable = True
        self._keep((index, event, t, found or _NO_VIOLATIONS), notable)
        self.events += 1
        if self.events >= self.max_events:
            self.stopped = True
            return False
        return True

    def _keep(self, seen: _Seen, notable: bool) -> None:
        """Bounded transcript: keep the head, the context of the first failures, the tail.
        An event not kept (yet) waits in ``_recent`` as it came: most never become an entry."""
        if seen[0] < TRANSCRIPT_HEAD:
            self.transcript.append(self._make(seen))
        elif notable and self._failure_sites < TRANSCRIPT_FAILURES:
            self._failure_sites += 1
            recent, before = self._recent, list[_Seen]()
            while recent and len(before) < TRANSCRIPT_CONTEXT:
                before.append(recent.pop())
            self.transcript.extend(self._make(b) for b in reversed(before))
            self.transcript.append(self._make(seen))
            self._keep_next = TRANSCRIPT_CONTEXT
        elif self._keep_next:
            self._keep_next -= 1
            self.transcript.append(self._make(seen))
        else:
            self._recent.append(seen)

    def _make(self, seen: _Seen) -> TranscriptEntry:
        index, event, t, found = seen
        data = event.data
        if "\\u" in data and data[:1] in "{[":  # JSON that escaped non-ASCII: show the text
            data = readable_escapes(data)
        kind = self.checker.event_type(event)
        return TranscriptEntry(index, kind, event.id, shorten(data, _PREVIEW), t, list(found))

    def _entry(self, index: int) -> TranscriptEntry | None:
        t = self.transcript
        i = bisect.bisect_left(t, index, key=lambda e: e.index)
        if i < len(t) and t[i].index == index:
            return t[i]
        for i, seen in enumerate(self._recent):
            if seen[0] == index:  # a list of its own (the checker's may be shared), shared here
                kept = list(seen[3])
                self._recent[i] = (index, seen[1], seen[2], kept)
                return TranscriptEntry(index, "", "", "", None, kept)
        return None

    def _first_of_their_kind(self, found: list[Violation]) -> list[Violation]:
        """One problem, one violation: a rule broken again for the same reason (the same
        message) on a later event is counted, not reported again; ``finish`` adds the count
        to the first one."""
        repeats = self._repeats
        kept = []
        for v in found:
            key = (v.rule, v.message)
            seen = repeats.get(key)
            if seen is None and len(repeats) >= MAX_VIOLATIONS:
                self._dropped[v.rule] = self._dropped.get(v.rule, 0) + 1
            elif seen is None:
                repeats[key] = [v, 0]
                kept.append(v)
            else:
                seen[1] += 1
        return kept

    def _count_repeats(self) -> None:
        """Say on each first violation how many events broke the rule the same way after it."""
        changed: dict[int, Violation] = {}
        for v, more in self._repeats.values():
            if more:
                events = "event" if more == 1 else "events"
                note = f" ({more} more {events} like this)"
                changed[id(v)] = dataclasses.replace(v, message=v.message + note)
        if not changed:
            return
        self.violations[:] = [changed.get(id(v), v) for v in self.violations]
        lists = [e.violations for e in self.transcript] + [seen[3] for seen in self._recent]
        for found in lists:
            if found and isinstance(found, list):
                found[:] = [changed.get(id(v), v) for v in found]

    def add(self, v: Violation) -> None:
        """Record a violation only the runner can see (HTTP, timeouts, the generator)."""
        self.violations.append(v)
        entry = None if v.event_index is None else self._entry(v.event_index)
        if entry is not None:
            entry.violations.append(v)

    # -- output -------------------------------------------------------------------------------

    def finish(
        self,
        end: float,
        *,
        complete: bool = True,
        bytes_stream: bool = True,
        ended: bool | None = None,
    ) -> CheckResult:
        """End of stream at time ``end``.

        ``complete=False`` when the runner already reported why the stream was cut short (a
        timeout, a crash): rules about how a stream ends are then not applied.  ``bytes_stream``
        is False for generator runs, which have no SSE framing to be truncated.
        """
        if self.stopped:
            msg = max_events_reached(self.events, self.max_events)
            if msg:
                self.add(violation("limit.max-events", msg))
            complete = False
        if bytes_stream and not self.stopped:

            def feed_tail(events: Sequence[SSEEvent]) -> int:
                for event in events:
                    if not self.feed_event(event, end):
                        break
                return self.events

            found = end_of_stream(
                self.decoder, self.framing, self.checker, feed_tail, complete, ended
            )
        else:
            found = self.checker.finish(complete=complete)
        for v in found:
            self.add(v)
        self._count_repeats()
        for rule_id, more in self._dropped.items():
            first = next(v for v in self.violations if v.rule == rule_id)
            self.violations.append(
                dataclasses.replace(
                    first,
                    message=f"{more} more violation(s) of {rule_id} not kept one by one "
                    f"(over {MAX_VIOLATIONS} distinct violations in this stream)",
                    event_index=None,
                )
            )
        if self._recent:  # the tail, and any context not kept before it
            self.transcript.extend(self._make(seen) for seen in self._recent)
            self.transcript.sort(key=lambda e: e.index)
            self._recent.clear()
        self.failure = self.roles.stream_failure()
        return CheckResult(
            target=self.target,
            contract=self.checker.name,
            events=self.events,
            violations=self.violations,
            timing=Timing(
                ttfb_ms=_ms(self.start, self.first_byte),
                first_event_ms=_ms(self.start, self.first_event),
                duration_ms=(end - self.start) * 1000.0,
                connect_ms=self.connect_ms,
                tls_ms=self.tls_ms,
            ),
            transcript=self.transcript,
            event_times_ms=self.arrivals.exact if self.arrivals.exact is not None else [],
            extra=self.extra,
            raw=b"".join(self._raw),
            raw_truncated=self._raw_truncated,
            first_content=self.first_content,
            failure=self.failure,
            framing=self.framing,
            arrivals=self.arrivals,
        )


def _ms(start: float, t: float | None) -> float | None:
    return None if t is None else (t - start) * 1000.0
