"""One stream under load: connect, send, read every ``recv`` into the decoder and the checker.

The Locust user calls :func:`run_stream` once per stream.  It owns the socket and the clock
(``time.monotonic``, read once per ``recv``, so every event in one ``recv`` shares its arrival
stamp); the decoding and checking are the sans-I/O core's.  Measurements that come once per
stream are returned in a :class:`StreamResult`; the ones that come per event -- inter-event
gaps and server-to-client delays -- go to a :class:`Sink` as they happen, so Locust's live view
moves while a long stream is still open.

Definitions (``docs/load.md`` has the full text), all in milliseconds from the stream's start,
which is when the request was sent -- or, in open-loop runs, when it was *meant* to be sent:

    ttfb_ms           the response head (status line and headers) complete
    first_event_ms    the first SSE event dispatched
    first_content_ms  the first event the contract calls content, with a non-empty value (its
                      ``roles``: an OpenAI chunk that only names the role is not content)
    inter_event_ms    every gap between consecutive events' arrival; the wait before the first
                      event is not a gap, nor is the gap across a reconnect
    stream_ms         the whole stream: to the end of the body (or the drop, when abandoning)
    reconnect_ms      from dropping the connection to the first event of the resumed stream,
                      the ``retry:`` wait included -- what a user sees as a stall
    server_delay_ms   per ``: sent=<unix time>`` comment: its arrival minus the server's stamp

For the report, each stream also keeps a bounded timeline (when each ``recv`` completed how many
events, which events broke a rule, when it reconnected) and, when the caller asks, its raw body
bytes, so a failing stream can be saved as a ``.sse`` file that ``stream-harness check``
reproduces.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from harness._contracts.registry import get_checker
from harness._core.errors import UsageError
from harness._core.framing import (
    FrameDecoder,
    framings_of,
    headers_of,
    make_decoder,
)
from harness._core.http_rules import (
    SSE_REQUEST_HEADERS,
    Expired,
    judge_head,
    request_headers,
    timeout_first_byte,
    timeout_idle,
    timeout_total,
    timing_buffered,
)
from harness._core.network import tls_failure, user_agent
from harness._core.options import (
    DEFAULT_CONTRACT,
    DEFAULT_FIRST_BYTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_TOTAL_TIMEOUT,
)
from harness._core.resume import ResumingChecker, resume_unreachable
from harness._core.roles import Failure, Roles, roles_of
from harness._core.rules import Violation, strict, violation
from harness._core.session import ContractChecker, end_of_stream
from harness._core.sse import DEFAULT_MAX_EVENT_BYTES, SSEDecoder, SSEEvent
from harness._core.timings import Span

from ._wire import ProtocolError, ResponseReader, build_request

__all__ = ["SentScanner", "Sink", "StreamResult", "StreamSpec", "run_stream"]

#: Timeline entries kept per stream; past this, neighbours are merged (the shape stays whole).
MAX_ARRIVALS: Final = 512
#: Event indexes of violations kept per stream.
MAX_BAD_EVENTS: Final = 64
_REQUEST_HEADERS: Final = (*SSE_REQUEST_HEADERS, ("User-Agent", user_agent()))
_REQUEST_HEADERS_WITH_BODY: Final = (*_REQUEST_HEADERS, ("Content-Type", "application/json"))


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What one stream asks and how it behaves; the same for every stream of a run."""

    url: str
    method: str = "GET"
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    contract: str = DEFAULT_CONTRACT
    #: Read K events, drop the connection, resume with Last-Event-ID (the reconnect scenario).
    reconnect_after: int | None = None
    #: Read K events, then vanish (connection reset): the abandon scenario.
    abandon_after: int | None = None
    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT
    first_byte_timeout: float = DEFAULT_FIRST_BYTE_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    #: ``--strict``: a warning fails the stream too.
    strict: bool = False

    def request_bytes(self, authority: str, path: str, last_event_id: str | None) -> bytes:
        ours = _REQUEST_HEADERS if self.body is None else _REQUEST_HEADERS_WITH_BODY
        headers = request_headers(ours, self.headers, last_event_id)
        return build_request(self.method, path, authority, headers, self.body)


class Sink(Protocol):
    """Where per-event measurements go as they happen (the Locust user's recorder)."""

    def gaps(self, first_ms: float, zeros: int) -> None:
        """One gap of ``first_ms``, then ``zeros`` gaps of 0 ms (events in the same recv)."""

    def server_delays(self, values_ms: list[float]) -> None:
        """Arrival minus send time of ``: sent=`` stamps."""

    def events(self, n: int, at: float) -> None:
        """``n`` events arrived at ``at`` (the clock's time): for events per second."""


class Conn(Protocol):
    def send(self, data: bytes) -> None: ...
    def recv(self, timeout: float) -> bytes: ...
    def close(self, abort: bool = False) -> None: ...


_Chunks = list[bytes]  # (inside StreamResult, ``bytes`` is a field's name)


@dataclass(slots=True)
class StreamResult:
    """What one stream measured and broke."""

    start: float
    queue_ms: float | None = None
    #: The TCP connect (and, for https, the TLS handshake) of the first connection.
    connect_ms: float | None = None
    ttfb_ms: float | None = None
    first_event_ms: float | None = None
    first_content_ms: float | None = None
    #: The second content event: with the first, the first inter-token latency.
    second_content_ms: float | None = None
    stream_ms: float = 0.0
    reconnect_ms: float | None = None
    events: int = 0
    bytes: int = 0
    #: The first violation of each rule, and how often each rule was broken.
    violations: list[Violation] = field(default_factory=list)
    rule_counts: dict[str, int] = field(default_factory=dict)
    #: The rules of severity error that were broken, in the order first seen.
    failed_rules: list[str] = field(default_factory=list)
    #: No stream at all (connection refused, reset before the head, bad HTTP): the reason.
    error: str | None = None
    abandoned: bool = False
    #: The timeline: (ms since start, events completed) per recv, at most MAX_ARRIVALS.
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    #: Indexes of events that broke a rule (at most MAX_BAD_EVENTS).
    bad_events: list[int] = field(default_factory=list)
    #: When the connection was dropped to reconnect, ms since start.
    reconnects_ms: list[float] = field(default_factory=list)
    #: The body bytes as received (both connections' when it reconnected), if captured.
    raw: _Chunks | None = None
    #: The capture stopped before the end (a byte budget): ``raw`` is only the start.
    raw_truncated: bool = False
    #: The connection ended as the server meant (not cut short by a timeout, an HTTP error,
    #: a reconnect that failed): what a replay of ``raw`` passes to ``finish(complete=...)``.
    complete: bool = False
    #: The in-band failure the stream reported (its first event of a failure type, with the
    #: code where the contract's roles say), or None: the base of error rates and tallies.
    failure: Failure | None = None
    #: How the body was framed (``harness._core.framing``), so a replay decodes it the same way.
    framing: str = "sse"
    #: ``--strict``: warnings fail the stream too.
    strict: bool = False
    #: Events the contract calls content (with a value).
    content_events: int = 0
    #: The output tokens the stream reported (its last usage), or None when it reported none.
    reported_tokens: int | None = None

    @property
    def output_tokens(self) -> int:
        """The stream's output tokens: as it reported them, else its content events."""
        return self.content_events if self.reported_tokens is None else self.reported_tokens

    @property
    def tokens_source(self) -> str:
        return "content events" if self.reported_tokens is None else "usage"

    @property
    def tpot_ms(self) -> float | None:
        """Time per output token after the first: (end - first content) / (tokens - 1)."""
        tokens = self.output_tokens
        if self.first_content_ms is None or tokens < 2:
            return None
        return (self.stream_ms - self.first_content_ms) / (tokens - 1)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed_rules

    @property
    def events_per_s(self) -> float | None:
        return self.events * 1000.0 / self.stream_ms if self.stream_ms > 0 else None

    @property
    def bytes_per_s(self) -> float | None:
        return self.bytes * 1000.0 / self.stream_ms if self.stream_ms > 0 else None

    def add(self, v: Violation) -> None:
        if self.strict:
            v = strict(v)
        if v.event_index is not None and len(self.bad_events) < MAX_BAD_EVENTS:
            self.bad_events.append(v.event_index)
        seen = self.rule_counts.get(v.rule, 0)
        self.rule_counts[v.rule] = seen + 1
        if not seen:
            self.violations.append(v)
            if v.is_error:
                self.failed_rules.append(v.rule)

    def arrived(self, at_ms: float, n: int) -> None:
        """``n`` events completed at ``at_ms``; the timeline stays within MAX_ARRIVALS entries
        by merging neighbours pairwise (the first entry and the last time stay exact)."""
        arrivals = self.arrivals
        arrivals.append((at_ms, n))
        if len(arrivals) > MAX_ARRIVALS:
            head, rest = arrivals[0], arrivals[1:]
            merged = [(b[0], a[1] + b[1]) for a, b in zip(rest[::2], rest[1::2], strict=False)]
            if len(rest) % 2:
                merged.append(rest[-1])
            self.arrivals = [head, *merged]


class SentScanner:
    """Finds ``: sent=<unix seconds>`` comment lines in raw body bytes, across chunk splits.

    The decoder drops comments, so the Locust user scans the bytes for them before decoding.

    >>> s = SentScanner()
    >>> s.feed(b": sent=12.5\\ndata: x\\n\\n: se"), s.feed(b"nt=13\\ndata: y\\n\\n")
    ([12.5], [13.0])
    """

    _MARK: Final = b": sent="

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, chunk: bytes) -> list[float]:
        buf = self._carry + chunk if self._carry else chunk
        self._carry = b""
        nl = buf.rfind(b"\n")
        tail = buf[nl + 1 :]
        if tail and len(tail) < 64 and (tail.startswith(self._MARK) or self._MARK.startswith(tail)):
            self._carry = tail
        if b"sent=" not in buf:
            return []
        out: list[float] = []
        pos = 0 if buf.startswith(self._MARK) else buf.find(b"\n" + self._MARK)
        while 0 <= pos <= nl:
            start = pos + (len(self._MARK) if pos == 0 and buf.startswith(self._MARK) else 8)
            end = buf.find(b"\n", start)
            if end < 0:
                break
            with contextlib.suppress(ValueError):
                out.append(float(buf[start:end].rstrip(b"\r")))
            pos = buf.find(b"\n" + self._MARK, end)
        return out


class _Stream:
    """The state of one stream across its one or two connections."""

    def __init__(
        self,
        spec: StreamSpec,
        connect: Callable[[float], Conn],
        clock: Callable[[], float],
        sink: Sink,
        start: float,
        authority: str,
        path: str,
        keep: Callable[[int], bool] | None = None,
    ) -> None:
        self.spec, self.connect, self.clock, self.sink = spec, connect, clock, sink
        self.authority, self.path = authority, path
        self.result = StreamResult(start=start, strict=spec.strict)
        #: Closed loop: times count from the request written (open loop: the intended start).
        self.clock_at_send = True
        self.keep = keep
        if keep is not None:
            self.result.raw = []
        inner: ContractChecker = get_checker(spec.contract)
        self.resuming = ResumingChecker(inner) if spec.reconnect_after else None
        self.checker: ContractChecker = self.resuming or inner
        self.roles: Roles = roles_of(inner)
        # The contract's first framing, until the response's Content-Type picks another.
        self.framings = framings_of(self.checker)
        self.framing = self.result.framing = self.framings[0]
        self.decoder: FrameDecoder = make_decoder(self.framing, spec.max_event_bytes)
        self.scanner = SentScanner()
        self.wall_offset = time.time() - clock()
        self.total_at = start + spec.total_timeout
        self.last_at: float | None = None  # arrival of the previous event
        self.first_event_at = 0.0
        self.dropped_at: float | None = None
        self.last_event_id = ""
        self.sse_type = True

    # -- one connection -----------------------------------------------------------------------

    def open(self, last_event_id: str | None) -> tuple[Conn, ResponseReader, bytes] | None:
        """Connect, send, read the head; the connection, reader and first body bytes."""
        spec, clock, r = self.spec, self.clock, self.result
        before = clock()
        deadline = min(before + spec.first_byte_timeout, self.total_at)
        conn = self.connect(max(deadline - before, 0.001))
        request = spec.request_bytes(self.authority, self.path, last_event_id)
        if last_event_id is None:
            connected = clock()
            r.connect_ms = (connected - before) * 1000.0
            if self.clock_at_send:
                # The clock starts as the request is written, as check's does: the connection
                # is connect_ms, beside it; and what other streams of this process did while
                # this one waited for its connection (a burst of a hundred starting at once
                # is served one after another) is not the target's time.
                r.start = connected
        try:
            conn.send(request)
            reader = ResponseReader()
            body = b""
            while not reader.head_done:
                data = self._recv(conn, deadline, "timeout.first-byte")
                if not data:
                    raise ProtocolError("the connection closed before the response head")
                body = reader.feed(data)
        except BaseException:
            conn.close(abort=True)
            raise
        at = getattr(conn, "arrived", None) or clock()  # the head's kernel receive stamp
        r = self.result
        if r.ttfb_ms is None:
            r.ttfb_ms = (at - r.start) * 1000.0
        if not self._accept(reader, last_event_id is not None):
            conn.close()
            return None
        return conn, reader, body

    def _accept(self, reader: ResponseReader, reconnecting: bool) -> bool:
        head = judge_head(
            reader.status,
            reader.reason,
            reader.header,
            self.framings,
            headers_of(self.checker),
            reconnecting=reconnecting,
        )
        for v in head.violations:
            self.result.add(v)
        if head.framing is not None and head.framing != self.framing:
            self.framing = self.result.framing = head.framing
            self.decoder = make_decoder(head.framing, self.spec.max_event_bytes)
        self.sse_type = self.sse_type and head.typed
        return head.readable

    def _recv(self, conn: Conn, deadline: float, rule_id: str) -> bytes:
        now = self.clock()
        if now >= deadline:
            raise Expired.of(rule_id, deadline, self.total_at)
        try:
            return conn.recv(deadline - now)
        except TimeoutError:
            raise Expired.of(rule_id, deadline, self.total_at) from None

    def read(self, conn: Conn, reader: ResponseReader, body: bytes, stop_after: int | None) -> str:
        """Read to the end of the body; ``"end"``, ``"dropped"`` (K events) or ``"ignored"``."""
        spec, clock, r = self.spec, self.clock, self.result
        decoder, sink, scanner = self.decoder, self.sink, self.scanner
        data = body
        at = getattr(conn, "arrived", None) or clock()  # body bytes that came with the head
        while True:
            if data:
                r.bytes += len(data)
                if self.keep is not None:
                    self._capture(data)
                stamps = scanner.feed(data)
                if stamps:
                    off = (at + self.wall_offset) * 1000.0
                    sink.server_delays([off - s * 1000.0 for s in stamps])
                events = decoder.feed(data, at)
                if events:
                    outcome = self._events(events, at, stop_after)
                    if outcome:
                        return outcome
            if reader.done:
                return "end"
            try:
                data = self._recv(conn, min(clock() + spec.idle_timeout, self.total_at), "")
            except Expired as e:
                raise Expired(e.rule_id or "timeout.idle") from None
            except OSError:
                return "end"  # reset by the server or a proxy: the rules say what was lost
            # The kernel's receive stamp when the connection has one (see _client.Connection).
            at = getattr(conn, "arrived", None) or clock()
            if not data:
                reader.eof()
                return "end"
            try:
                data = reader.feed(data)
            except ProtocolError:
                return "end"

    def _capture(self, data: bytes) -> None:
        r = self.result
        assert self.keep is not None and r.raw is not None
        if self.keep(len(data)):
            r.raw.append(data)
        else:
            r.raw_truncated = True
            self.keep = None

    def _events(self, events: list, at: float, stop_after: int | None) -> str:  # type: ignore[type-arg]
        r, checker = self.result, self.checker
        n = len(events)
        self.sink.events(n, at)
        r.arrived((at - r.start) * 1000.0, n)
        if self.last_at is None:
            if self.dropped_at is not None:
                r.reconnect_ms = (at - self.dropped_at) * 1000.0
            else:
                r.first_event_ms = (at - r.start) * 1000.0
                self.first_event_at = at
            if n > 1:
                self.sink.gaps(0.0, n - 2)
        else:
            self.sink.gaps((at - self.last_at) * 1000.0, n - 1)
        self.last_at = at
        roles = self.roles
        for ev in events:
            found = checker.feed(ev)
            if found:
                for v in found:
                    r.add(v)
            r.events += 1
            if roles.is_content(ev):
                r.content_events += 1
                if r.content_events <= 2:
                    ms = (at - r.start) * 1000.0
                    if r.content_events == 1:
                        r.first_content_ms = ms
                    else:
                        r.second_content_ms = ms
            tokens = roles.output_tokens(ev)
            if tokens is not None:
                r.reported_tokens = tokens
            if self.resuming is not None and self.resuming.tracker.ignored:
                return "ignored"
            if stop_after is not None and r.events >= stop_after:
                self.last_event_id = ev.id
                return "dropped"
        return ""

    # -- the whole stream ---------------------------------------------------------------------

    def run(self) -> None:
        spec, r = self.spec, self.result
        stop_after = spec.abandon_after or spec.reconnect_after
        opened = self.open(None)
        if opened is None:
            return self._finish(complete=False)
        conn, reader, body = opened
        try:
            outcome = self.read(conn, reader, body, stop_after)
        finally:
            conn.close(abort=spec.abandon_after is not None and not reader.done)
        if outcome == "dropped" and spec.abandon_after is not None:
            r.abandoned = True
            r.stream_ms = (self.clock() - r.start) * 1000.0
            return None
        if outcome == "dropped":
            outcome = self.resume()
        ended = outcome == "end"
        self._finish(complete=ended and (self.sse_type or r.events > 0), ended=ended)

    def resume(self) -> str:
        if not self.last_event_id or self.resuming is None:
            return "end"  # resume.no-id was reported: nothing to resume from
        self.dropped_at = self.clock()
        self.result.reconnects_ms.append((self.dropped_at - self.result.start) * 1000.0)
        wait = min((self.decoder.retry or 0) / 1000.0, self.spec.max_retry_wait)
        if wait:
            import gevent  # type: ignore[import-untyped]

            gevent.sleep(wait)
        self.decoder = SSEDecoder(self.spec.max_event_bytes)
        self.resuming.tracker.reconnect()
        self.last_at = None
        try:
            opened = self.open(self.last_event_id)
        except OSError as e:
            self.result.add(violation("resume.unreachable", resume_unreachable(_reason(e))))
            return "rejected"
        if opened is None:
            return "rejected"
        conn, reader, body = opened
        try:
            return self.read(conn, reader, body, None)
        finally:
            conn.close()

    def _finish(self, complete: bool, ended: bool | None = None) -> None:
        r, end = self.result, self.clock()
        r.stream_ms = (end - r.start) * 1000.0
        r.complete = complete  # before the truncation check, which a replay makes again

        def feed_tail(events: Sequence[SSEEvent]) -> int:
            if events:
                self._events(list(events), end, None)
            return r.events

        found = end_of_stream(self.decoder, self.framing, self.checker, feed_tail, complete, ended)
        for v in found:
            r.add(v)
        complete = complete and not self.decoder.truncated
        if complete and self.dropped_at is None and r.events >= 3 and r.ttfb_ms is not None:
            assert self.last_at is not None
            # From when the request was sent: in an open-loop run a late start is the load
            # generator's queue, not a silence of the target's.
            q = r.queue_ms or 0.0
            span = Span(
                r.events,
                (self.first_event_at - r.start) * 1000.0 - q,
                (self.last_at - r.start) * 1000.0 - q,
            )
            msg = timing_buffered(r.ttfb_ms - q, span, r.stream_ms - q)
            if msg:
                r.add(violation("timing.buffered", msg))

    def timed_out(self, rule_id: str) -> None:
        s = self.spec
        if rule_id == "timeout.total":
            msg = timeout_total(s.total_timeout, self.result.events)
        elif rule_id == "timeout.idle":
            msg = timeout_idle(s.idle_timeout, self.result.events)
        else:
            msg = timeout_first_byte(s.first_byte_timeout, self.dropped_at is not None)
        self.result.add(violation(rule_id, msg))
        self._finish(complete=False)


def _reason(e: BaseException) -> str:
    if isinstance(e, ssl.SSLError):
        return tls_failure(e)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def run_stream(
    spec: StreamSpec,
    connect: Callable[[float], Conn],
    sink: Sink,
    *,
    authority: str,
    path: str,
    clock: Callable[[], float] = time.monotonic,
    intended_start: float | None = None,
    keep: Callable[[int], bool] | None = None,
) -> StreamResult:
    """Run one stream to its end; never raises for what the target does (it is in the result).

    ``connect(timeout)`` returns a connected :class:`Conn`.  With ``intended_start`` (open loop)
    every time is measured from it, and ``queue_ms`` is how late the stream actually started.
    With ``keep``, the raw body bytes are captured into ``result.raw`` for as long as
    ``keep(n)`` allows ``n`` more bytes (the caller's budget); then the capture stops.
    """
    if spec.reconnect_after is not None and spec.abandon_after is not None:
        raise UsageError("a stream either reconnects or abandons, not both")
    s = _Stream(spec, connect, clock, sink, 0.0, authority, path, keep)  # the checker, before t=0
    now = clock()
    start = now if intended_start is None else intended_start
    s.result.start = start
    s.total_at = start + spec.total_timeout
    if intended_start is not None:
        s.clock_at_send = False
        s.result.queue_ms = max(0.0, (now - intended_start) * 1000.0)
    try:
        s.run()
    except Expired as e:
        s.timed_out(e.rule_id)
    except (OSError, ProtocolError) as e:
        s.result.error = _reason(e)
        s.result.stream_ms = (clock() - s.result.start) * 1000.0
    # However it ended (finished, abandoned, cut off): the checker noted any failure it saw.
    s.result.failure = s.roles.stream_failure()
    return s.result
