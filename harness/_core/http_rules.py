"""The rules of a stream served over HTTP: status, content type, caching, the three timeouts
and ``timing.buffered``.  Pure functions of what a runner measured -- the ``check`` runner
(:mod:`harness._runners.http`) and the load tester's stream reader both report them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from harness._core.framing import MEDIA_TYPES, SSE, choose_framing, framing_of_media_type
from harness._core.rules import Severity, Violation, rule, violation

__all__ = [
    "BURST_MAX_SPREAD_MS",
    "BURST_MAX_TAIL_MS",
    "BURST_MIN_EVENTS",
    "BURST_MIN_SILENCE_MS",
    "SSE_REQUEST_HEADERS",
    "Expired",
    "ResponseHead",
    "header_violations",
    "http_cache_control",
    "http_content_type",
    "http_header",
    "http_status",
    "judge_head",
    "request_headers",
    "timeout_first_byte",
    "timeout_idle",
    "timeout_total",
    "timing_buffered",
]


class Expired(Exception):
    """A deadline passed while reading a stream; ``rule_id`` names the timeout rule it breaks
    (both runners raise it inside their read loops and turn it into that rule's violation)."""

    def __init__(self, rule_id: str) -> None:
        super().__init__(rule_id)
        self.rule_id = rule_id

    @classmethod
    def of(cls, rule_id: str, deadline: float, total_at: float) -> Expired:
        """``rule_id``'s deadline passed -- or the total one, when that came first."""
        return cls("timeout.total" if deadline >= total_at else rule_id)


#: What every stream request asks for (``check`` and ``load`` alike): the stream, not a cached
#: copy, and no compression -- a compressing proxy holds a stream back until its buffer fills.
SSE_REQUEST_HEADERS: Final = (
    ("Accept", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("Accept-Encoding", "identity"),
)


def request_headers(
    ours: Sequence[tuple[str, str]],
    given: Sequence[tuple[str, str]],
    last_event_id: str | None = None,
) -> list[tuple[str, str]]:
    """The headers of one stream request: ours unless the user gave the same header, then
    theirs; on a resume, ``Last-Event-ID`` replaces any the user gave.

    >>> request_headers([("Accept", "x/y")], [("accept", "a/b"), ("Last-Event-ID", "0")], "7")
    [('accept', 'a/b'), ('Last-Event-ID', '7')]
    """
    user = [(k, v) for k, v in given if last_event_id is None or k.lower() != "last-event-id"]
    names = {k.lower() for k, _ in user}
    out = [(k, v) for k, v in ours if k.lower() not in names] + user
    if last_event_id is not None:
        out.append(("Last-Event-ID", last_event_id))
    return out


# timing.buffered: see the rule's docstring for why these values.
BURST_MIN_EVENTS: Final = 3
BURST_MIN_SILENCE_MS: Final = 500.0
BURST_MAX_SPREAD_MS: Final = 50.0
BURST_MAX_TAIL_MS: Final = 100.0


@rule("http.status", Severity.ERROR, "The response status was not 2xx.")
def http_status(
    status: int, reason: str, detail: str = "", location: str | None = None
) -> str | None:
    """An event stream is served with status 200; ``EventSource`` fails the connection on any
    other status.  The message carries the start of the response body (a JSON error's
    ``error``/``detail``/``message`` when there is one).  Redirects are reported, not followed:
    a 3xx on a streaming endpoint is usually a wrong URL (a missing trailing slash, http
    instead of https), following it silently would hide that, and it could carry the request's
    credentials to another origin.  Point the harness at the final URL."""
    if 200 <= status < 300:
        return None
    if status == 304:
        return (
            f"HTTP 304 {reason}: the answer to a cache's revalidation (If-None-Match or "
            "If-Modified-Since), but an event stream has no cached copy; it must answer 200"
        ).replace("304 :", "304:")
    if 300 <= status < 400:
        where = f"to {location}" if location else "without a Location header"
        return f"HTTP {status} {reason}: a redirect {where}; not followed -- check the URL"
    head = f"HTTP {status} {reason}".rstrip()
    return f"{head}: {detail}" if detail else head


@rule("http.content-type", Severity.ERROR, "The response was not text/event-stream.")
def http_content_type(content_type: str | None, framings: Sequence[str] = (SSE,)) -> str | None:
    """An event stream must be served as ``Content-Type: text/event-stream``; ``EventSource``
    refuses anything else, and proxies treat other types as ordinary responses they may buffer
    or compress.  The harness still decodes the body, so the events are checked too.  A
    contract for another framing asks for its own types instead: ``application/x-ndjson`` or
    ``application/jsonl`` for NDJSON, ``text/plain`` or ``application/octet-stream`` for raw
    text."""
    if framing_of_media_type(content_type) in framings:
        return None
    got = repr(content_type) if content_type else "missing"
    if tuple(framings) == (SSE,):
        return f"Content-Type is {got}; an event stream must be text/event-stream"
    wanted = " or ".join(MEDIA_TYPES[f][0] for f in framings)
    return f"Content-Type is {got}; this contract's streams are {wanted}"


@rule("http.header", Severity.ERROR, "A response header the contract requires was missing.")
def http_header(name: str, wanted: str | bool, got: str | None) -> str | None:
    """The contract requires this response header.  Some are how a client or proxy knows to
    stream: ``X-Accel-Buffering: no`` keeps nginx from buffering the stream, and the AI SDK's
    UI reads a response as a message stream only with ``x-vercel-ai-ui-message-stream: v1``.
    Values are compared case-insensitively, surrounding spaces ignored."""
    if got is not None and (wanted is True or got.strip().lower() == str(wanted).strip().lower()):
        return None
    need = f"{name}: {wanted}" if wanted is not True else f"a {name} header"
    if got is None:
        return f"the response has no {name} header; the contract requires {need}"
    return f"{name} is {got!r}; the contract requires {need}"


def header_violations(
    required: Mapping[str, str | bool], get: Callable[[str], str | None]
) -> list[tuple[str, str]]:
    """``(rule id, message)`` for each header in ``required`` the response does not satisfy;
    ``get`` reads a response header by its lower-case name."""
    found = []
    for name, wanted in required.items():
        msg = http_header(name, wanted, get(name))
        if msg:
            found.append(("http.header", msg))
    return found


@rule("http.cache-control", Severity.WARNING, "The response did not forbid caching.")
def http_cache_control(value: str | None) -> str | None:
    """An event stream is live: a cache or proxy that stores it may replay an old stream or
    hold the response until it ends.  Send ``Cache-Control: no-cache`` (or ``no-store``)."""
    directives = {d.split("=", 1)[0].strip().lower() for d in (value or "").split(",")}
    if directives & {"no-cache", "no-store"}:
        return None
    got = repr(value) if value else "missing"
    return f"Cache-Control is {got}; send 'no-cache' so no cache or proxy stores the stream"


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """What a stream response's status line and headers say, judged the same way by ``check``
    and by ``load``."""

    #: A 2xx: there is a stream to read.
    readable: bool
    #: The framing to decode the body with (first connection only; None: keep the current).
    framing: str | None
    #: The content type is one the contract reads.
    typed: bool
    violations: tuple[Violation, ...]


def judge_head(
    status: int,
    reason: str,
    header: Callable[[str], str | None],
    framings: Sequence[str],
    required: Mapping[str, str | bool],
    *,
    reconnecting: bool = False,
    detail: str = "",
) -> ResponseHead:
    """Judge a response head: status, then (first connection only: a reconnection's headers
    were judged already) content type, the contract's ``required`` headers and caching.
    ``header`` reads a response header by its lower-case name; ``detail`` is the start of an
    error response's body."""
    msg = http_status(status, reason, detail, header("location"))
    if msg:
        if reconnecting:
            msg = f"on reconnecting with Last-Event-ID: {msg}"
        return ResponseHead(False, None, True, (violation("http.status", msg),))
    if reconnecting:
        return ResponseHead(True, None, True, ())
    content_type = header("content-type")
    found = []
    type_msg = http_content_type(content_type, framings)
    if type_msg:
        found.append(violation("http.content-type", type_msg))
    found += [violation(rule_id, m) for rule_id, m in header_violations(required, header)]
    # Caching matters for a stream only: an HTML or JSON error page is http.content-type's.
    cache_msg = None if type_msg else http_cache_control(header("cache-control"))
    if cache_msg:
        found.append(violation("http.cache-control", cache_msg))
    framing = choose_framing(framing_of_media_type(content_type), framings)
    return ResponseHead(True, framing, type_msg is None, tuple(found))


@rule("timeout.first-byte", Severity.ERROR, "No response headers within --first-byte-timeout.")
def timeout_first_byte(limit: float, reconnect: bool = False) -> str:
    """The server accepted the connection but sent no response headers in time.  An SSE
    endpoint should answer at once and stream the work as events, rather than do the work
    first.  Raise ``--first-byte-timeout`` if the wait is expected."""
    when = "reconnecting" if reconnect else "sending the request"
    return f"no response headers within {limit:g} s of {when} (--first-byte-timeout)"


@rule("timeout.idle", Severity.ERROR, "The stream went silent for longer than --idle-timeout.")
def timeout_idle(limit: float, events: int) -> str:
    """No bytes arrived for longer than ``--idle-timeout`` in the middle of the stream.
    Clients and proxies drop silent connections (often after 30-60 s): a server doing long
    work should send a comment line (``: keep-alive``) every few seconds."""
    return f"no bytes for {limit:g} s after {events} event(s) (--idle-timeout)"


@rule("timeout.total", Severity.ERROR, "The stream did not end within --total-timeout.")
def timeout_total(limit: float, events: int) -> str:
    """The stream was still open when ``--total-timeout`` ran out.  Either it never ends (no
    ``done`` event and no close), or it is slower than the limit allows."""
    return f"the stream was still open after {limit:g} s, {events} event(s) read (--total-timeout)"


@rule("timing.buffered", Severity.WARNING, "The events arrived in one burst at the end.")
def timing_buffered(ttfb_ms: float, event_times_ms: Sequence[float], end_ms: float) -> str | None:
    """All events arrived together, at the end of the stream, after a long silence: something
    held the stream back -- a proxy buffering responses (nginx ``proxy_buffering``, add
    ``X-Accel-Buffering: no``), compression, or a server that yields only once all work is done.
    The client saw nothing until the end, which is what streaming is meant to avoid.

    The heuristic, on times from the request's start: at least 3 events, all within 50 ms of
    each other, and the stream ending within 100 ms of the last one; and before them a silence
    of at least 500 ms (shorter waits are jitter, and nobody notices them) -- either between
    the response headers and the first event, or, when the headers came with the events (a
    buffer that holds the headers back too: Debian's stock nginx proxying HTTP/1.0 with
    ``proxy_buffering on``), between the request and the headers.  Events paced 100 ms apart
    are streaming however late they start, and a fast server that sends everything at once is
    not flagged (no silence before it)."""
    if len(event_times_ms) < BURST_MIN_EVENTS:
        return None
    first, last = event_times_ms[0], event_times_ms[-1]
    silence, spread = first - ttfb_ms, last - first
    if spread > BURST_MAX_SPREAD_MS or end_ms - last > BURST_MAX_TAIL_MS:
        return None
    n = len(event_times_ms)
    if silence >= BURST_MIN_SILENCE_MS:
        return (
            f"all {n} events arrived in one burst ({spread:.0f} ms) as the stream "
            f"ended, {silence:.0f} ms after the response headers: the stream was held back (a "
            "buffering proxy, compression, or a server that yields only when all work is done)"
        )
    if ttfb_ms >= BURST_MIN_SILENCE_MS and silence <= BURST_MAX_SPREAD_MS:
        return (
            f"the response headers and all {n} events arrived in one burst as the stream ended, "
            f"{ttfb_ms:.0f} ms after the request: the whole response was held back (a buffering "
            "proxy -- nginx buffers by default: proxy_buffering off, or X-Accel-Buffering: no "
            "-- or a server that sends only when all work is done)"
        )
    return None
