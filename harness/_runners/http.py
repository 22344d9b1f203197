"""Check a stream served over HTTP: httpx does the I/O, a :class:`StreamSession` the checking.

One request, streamed: the body is read with ``aiter_raw()`` -- bytes as they arrive, not lines
-- and every chunk is stamped with ``time.monotonic()`` on arrival, so the timing rules see what
a browser would.  The request asks for ``Accept-Encoding: identity`` because a compressing proxy
holds an event stream back until its compression buffer fills.

Every wait has a deadline (``asyncio.timeout_at`` around each await, never a bare read):

    request sent  -> response headers    --first-byte-timeout   timeout.first-byte
    chunk         -> next chunk          --idle-timeout         timeout.idle
    start         -> anything            --total-timeout        timeout.total

A timeout is a violation and ends the run with ``complete=False`` (how the stream ends is then
not judged: one problem, one violation).  Not reaching the server at all -- connection refused,
DNS, TLS, no connection within the first-byte timeout -- raises :class:`TargetUnreachable`.

``--resume-after K`` reads K events, drops the connection, waits the server's ``retry:`` hint
(capped by ``--max-retry-wait``; no hint, no wait) and reconnects with ``Last-Event-ID``; the
resumed stream is fed to the same session and checker, through a :class:`ResumingChecker`.

Redirects are not followed (a 3xx is ``http.status``), and no header value the user passed
appears in any message: results are scrubbed before they are returned.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Iterable
from enum import Enum
from typing import Any, Final, TypeVar

import httpx

from harness._core.errors import TargetUnreachable, UsageError
from harness._core.framing import framings_of, headers_of
from harness._core.http_rules import (
    BURST_MAX_SPREAD_MS,
    BURST_MAX_TAIL_MS,
    BURST_MIN_EVENTS,
    BURST_MIN_SILENCE_MS,
    SSE_REQUEST_HEADERS,
    Expired,
    judge_head,
    request_headers,
    timeout_first_byte,
    timeout_idle,
    timeout_total,
    timing_buffered,
)
from harness._core.network import choose_proxy, tls_failure, user_agent
from harness._core.options import CheckOptions
from harness._core.redact import redact_text, redact_url, secret_values
from harness._core.resume import ResumingChecker, resume_unreachable
from harness._core.rules import violation
from harness._core.session import CheckResult, ContractChecker, StreamSession
from harness._core.sse import SSEDecoder
from harness._core.text import shorten
from harness._core.wire_rules import (
    BodyDecoder,
    DecodingFailed,
    DecompressionBomb,
    http_incomplete_body,
    http_protocol,
    incomplete_message,
    is_header_safe,
    protocol_message,
    resume_bad_id,
)
from harness._runners.tls import ssl_context

__all__ = [
    "BURST_MAX_SPREAD_MS",
    "BURST_MAX_TAIL_MS",
    "BURST_MIN_EVENTS",
    "BURST_MIN_SILENCE_MS",
    "fetch_text",
    "make_client",
    "run_url",
    "run_url_async",
]

T = TypeVar("T")

_ERROR_BODY_BYTES: Final = 4096
_DETAIL_CHARS: Final = 200
_CLOSE_WAIT: Final = 1.0

# -- running ----------------------------------------------------------------------------------


def run_url(
    url: str,
    options: CheckOptions,
    checker: ContractChecker,
    *,
    client: httpx.AsyncClient | None = None,
) -> CheckResult:
    """Check the event stream at ``url`` against ``checker``; blocks until the run is over.

    ``client`` is used as given (its transport may be an ``httpx.MockTransport``, an ASGI app);
    without one, a client is made and closed here.  Raises :class:`TargetUnreachable` when no
    response could be had and :class:`UsageError` for a bad URL or request options.
    """
    return asyncio.run(run_url_async(url, options, checker, client=client))


async def run_url_async(
    url: str,
    options: CheckOptions,
    checker: ContractChecker,
    *,
    client: httpx.AsyncClient | None = None,
) -> CheckResult:
    """:func:`run_url` for callers already inside an event loop."""
    run = _UrlRun(url, options, checker)
    if client is not None:
        return await run.run(client)
    async with make_client(url, options) as own:
        return await run.run(own)


#: The largest document ``fetch_text`` reads (an OpenAPI document of a large API is a few MB).
FETCH_LIMIT: Final = 32 * 1024 * 1024


def fetch_text(url: str, options: CheckOptions, what: str, limit: int = FETCH_LIMIT) -> str:
    """GET a small text document (an OpenAPI document): its text, decoded as UTF-8.

    The request uses ``options``' headers, TLS trust and proxy, with ``--first-byte-timeout``
    for the answer and ``--total-timeout`` for all of it; redirects are followed (at most 5).
    An unreachable host is :class:`TargetUnreachable`; an answer that is not a 200 with a
    body under ``limit`` bytes is :class:`UsageError` (the URL is not the document).
    """
    shown = redact_url(url)

    async def get() -> str:
        async with make_client(url, options) as client:
            client.follow_redirects = True
            client.max_redirects = 5
            async with asyncio.timeout(options.total_timeout):
                headers = [(k, v) for k, v in options.headers if k.lower() != "accept"]
                headers.append(("Accept", "application/json, application/yaml;q=0.9, */*;q=0.5"))
                async with client.stream("GET", url, headers=headers) as response:
                    if response.status_code != 200:
                        raise UsageError(
                            f"{what} {shown}: HTTP {response.status_code} "
                            f"{response.reason_phrase}, not the document".rstrip()
                        )
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > limit:
                            raise UsageError(f"{what} {shown} is larger than {limit} bytes")
                    return body.decode("utf-8-sig", "replace")

    try:
        return asyncio.run(get())
    except TimeoutError:
        raise TargetUnreachable(
            f"cannot reach {shown}: no document within {options.total_timeout:g} s"
        ) from None
    except httpx.UnsupportedProtocol as e:
        raise UsageError(f"cannot request {shown!r}: {_one_line(e)}") from None
    except httpx.TooManyRedirects:
        raise UsageError(f"{what} {shown}: more than 5 redirects") from None
    except (httpx.RemoteProtocolError, httpx.DecodingError) as e:
        raise UsageError(f"{what} {shown}: a broken answer: {_one_line(e)}") from None
    except httpx.TransportError as e:
        raise TargetUnreachable(
            redact_text(
                f"cannot reach {shown}: {_root_cause(e)}", secret_values(options.headers, url)
            )
        ) from None


def make_client(url: str, options: CheckOptions, **extra: Any) -> httpx.AsyncClient:
    """The client a check of ``url`` uses: our TLS trust and proxy choice (``_core.network``),
    not httpx's own reading of the environment, so ``check`` and ``load`` agree.  No overall
    timeout (the runner keeps the deadlines), no redirects followed."""
    net = options.network
    return httpx.AsyncClient(
        timeout=httpx.Timeout(None, connect=options.first_byte_timeout),
        follow_redirects=False,
        verify=ssl_context(net),
        proxy=choose_proxy(url, net, os.environ),
        trust_env=False,
        **extra,
    )


class _Outcome(Enum):
    END = "the body ended"
    LIMIT = "--max-events reached"
    DROPPED = "dropped after --resume-after events"
    IGNORED = "resume.ignored: the restarted stream is not read"
    NOT_RESUMED = "no event id to resume from"
    REJECTED = "the response was rejected (http.status)"
    TIMEOUT = "a deadline passed"
    BROKEN = "the body could not be read (http.decoding, http.incomplete-body, ...)"


class _ConnectTracer:
    """httpcore's ``trace`` extension: tells a connect timeout from a slow server, and stamps
    the phases -- TCP connect, TLS handshake, the request's first byte written, the response
    head read -- so timing starts when the request is written, not when httpx starts up.

    Transports that do not trace (mock, ASGI) never call it: a timeout then counts as a slow
    first byte, as there was no connection to wait for, and the clock is the runner's own.
    """

    def __init__(self) -> None:
        self.traced = False
        self.connected = False
        self.stamps: dict[str, float] = {}

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        # (Through a proxy the CONNECT request is traced first; the last stamp of each phase
        # is the real request's.)
        self.stamps[name] = time.monotonic()
        self.traced = True
        if name.startswith(("http11.", "http2.")):  # the request is being sent: connected
            self.connected = True

    def between(self, phase: str) -> float | None:
        """Milliseconds from ``phase.started`` to ``phase.complete``, if both were traced."""
        a, b = self.stamps.get(f"{phase}.started"), self.stamps.get(f"{phase}.complete")
        return None if a is None or b is None else (b - a) * 1000.0

    def at(self, name: str) -> float | None:
        return self.stamps.get(name)

    @property
    def connecting(self) -> bool:
        return self.traced and not self.connected


class _UrlRun:
    """One run: one request, or two with ``--resume-after``, into one session."""

    def __init__(self, url: str, options: CheckOptions, checker: ContractChecker) -> None:
        if options.resume_after is not None and options.resume_after < 1:
            raise UsageError(f"--resume-after must be at least 1, got {options.resume_after}")
        self.url = url
        self.options = options
        self.method, self.content, self.content_headers = _request_parts(options)
        self.resuming = ResumingChecker(checker) if options.resume_after is not None else None
        self.checker: ContractChecker = self.resuming or checker
        self.secrets = secret_values(options.headers, url)
        self.session = StreamSession(
            redact_url(url),
            self.checker,
            start=time.monotonic(),
            max_event_bytes=options.max_event_bytes,
            max_events=options.max_events,
        )
        self.total_at = math.inf
        self.sse_type = True  # the response's Content-Type was text/event-stream
        self.last_event_id = ""  # the id in force at the event the connection was dropped after
        self.dropped_at: float | None = None
        self.reconnecting = False

    async def run(self, client: httpx.AsyncClient) -> CheckResult:
        s = self.session
        s.start = time.monotonic()
        self.total_at = asyncio.get_running_loop().time() + self.options.total_timeout
        try:
            outcome = await self._stream(client)
        except Expired as e:
            s.add(violation(e.rule_id, self._timeout_message(e.rule_id)))
            outcome = _Outcome.TIMEOUT
        except asyncio.CancelledError:
            # Ctrl-C: asyncio.run cancels this task.  What was measured so far is still a
            # result; returning it (not re-raising) lets the caller write a partial report.
            s.extra["interrupted"] = True
            outcome = _Outcome.TIMEOUT
        end = time.monotonic()
        if outcome is _Outcome.END and self.dropped_at is None:
            self._check_burst(end)
        # A body that is not an event stream at all: http.content-type already says so.
        complete = outcome is _Outcome.END and (self.sse_type or s.events > 0)
        if outcome is _Outcome.NOT_RESUMED:
            s.extra["resume"] = "not attempted: the event before the drop had no id"
        result = s.finish(end, complete=complete, ended=outcome is _Outcome.END)
        result.redact(self.secrets)  # servers echo credentials back: never pass them on
        return result

    async def _stream(self, client: httpx.AsyncClient) -> _Outcome:
        response = await self._open(client, None)
        if response is None:
            return _Outcome.REJECTED
        outcome = await self._read_and_close(response, self.options.resume_after)
        if outcome is not _Outcome.DROPPED:
            if self.options.resume_after is not None and outcome is _Outcome.END:
                self.session.extra["resume"] = (
                    f"not attempted: the stream ended after {self.session.events} event(s)"
                )
            return outcome
        return await self._resume(client)

    async def _resume(self, client: httpx.AsyncClient) -> _Outcome:
        """Reconnect with Last-Event-ID after the server's retry hint; read the rest."""
        s = self.session
        if not self.last_event_id or self.resuming is None:
            return _Outcome.NOT_RESUMED  # resume.no-id was reported at or before this event
        if not is_header_safe(self.last_event_id):
            s.add(violation("resume.bad-id", resume_bad_id(self.last_event_id)))
        dropped_at = time.monotonic()
        wait = min((s.decoder.retry or 0) / 1000.0, self.options.max_retry_wait)
        await self._within(asyncio.sleep(wait), math.inf, "timeout.total")
        s.decoder = SSEDecoder(max_event_bytes=self.options.max_event_bytes)
        self.resuming.tracker.reconnect()
        self.dropped_at = dropped_at
        self.reconnecting = True
        try:
            response = await self._open(client, self.last_event_id)
        except TargetUnreachable as e:
            # What the first connection showed is still a result: report, do not raise.
            s.add(violation("resume.unreachable", resume_unreachable(str(e))))
            return _Outcome.REJECTED
        if response is None:
            return _Outcome.REJECTED
        return await self._read_and_close(response, None)

    # -- one connection -----------------------------------------------------------------------

    async def _open(
        self, client: httpx.AsyncClient, last_event_id: str | None
    ) -> httpx.Response | None:
        """Send the request; the response once its headers are in, or None if rejected."""
        tracer = _ConnectTracer()
        try:
            request = client.build_request(
                self.method,
                self.url,
                headers=self._headers(last_event_id),
                content=self.content,
                extensions={"trace": tracer},
            )
        except httpx.InvalidURL as e:
            raise UsageError(f"invalid URL {redact_url(self.url)!r}: {e}") from None
        except UnicodeEncodeError:
            raise UsageError("a --header value is not ASCII (HTTP header values must be)") from None
        send = client.send(request, stream=True, follow_redirects=False)
        try:
            response = await self._within(
                send, self.options.first_byte_timeout, "timeout.first-byte"
            )
        except Expired as e:
            if e.rule_id == "timeout.first-byte" and tracer.connecting:
                t = self.options.first_byte_timeout
                raise self._unreachable(
                    f"no connection within {t:g} s (--first-byte-timeout)"
                ) from None
            raise
        except httpx.UnsupportedProtocol as e:
            raise UsageError(f"cannot request {redact_url(self.url)!r}: {_one_line(e)}") from None
        except httpx.ReadTimeout:  # an injected client's own read timeout
            raise Expired("timeout.first-byte") from None
        except httpx.LocalProtocolError as e:  # h11 refused to send it: our request is bad
            raise UsageError(redact_text(_invalid_request(e), self.secrets)) from None
        except httpx.RemoteProtocolError as e:  # reached, and answered with something broken
            msg = http_protocol(protocol_message(str(e)))
            if self.reconnecting:
                msg = f"on reconnecting with Last-Event-ID: {msg}"
            self.session.add(violation("http.protocol", msg))
            return None
        except httpx.TransportError as e:
            raise self._unreachable(_root_cause(e)) from None
        head_at = time.monotonic()
        if last_event_id is None:
            self._start_clock(tracer)
            head_at = tracer.at("http11.receive_response_headers.complete") or head_at
        self.session.mark_first_byte(head_at)
        if await self._accept(response):
            return response
        await _close(response)
        return None

    def _start_clock(self, tracer: _ConnectTracer) -> None:
        """Time from the request's first byte written, where the transport says when that was;
        the connection's set-up is reported beside it (``connect_ms``, ``tls_ms``)."""
        s = self.session
        sent = tracer.at("http11.send_request_headers.started")
        if sent is not None:
            s.start = sent
        s.connect_ms = tracer.between("connection.connect_tcp")
        s.tls_ms = tracer.between("connection.start_tls")

    async def _accept(self, response: httpx.Response) -> bool:
        """Check the status and headers; False if there is no stream to read."""
        status = response.status_code
        if not self.reconnecting:  # what came back, for callers that judge it (``openapi``)
            self.session.extra["status"] = status
            self.session.extra["content_type"] = response.headers.get("content-type")
        detail = "" if 200 <= status < 400 else await self._error_detail(response)
        head = judge_head(
            status,
            response.reason_phrase,
            response.headers.get,
            framings_of(self.checker),
            headers_of(self.checker),
            reconnecting=self.reconnecting,
            detail=detail,
        )
        for v in head.violations:
            self.session.add(v)
        if head.framing is not None:
            self.session.set_framing(head.framing)
        self.sse_type = self.sse_type and head.typed
        return head.readable

    async def _read_and_close(self, response: httpx.Response, stop_after: int | None) -> _Outcome:
        # Raw bytes as they arrive; decoded here, in bounded pieces, only if the server
        # compressed though asked not to (httpx would inflate each chunk whole: a bomb's GB).
        chunks, encoding = _body(response)
        try:
            body = BodyDecoder(encoding)
            return await self._read(chunks, body, stop_after)
        except (DecodingFailed, DecompressionBomb) as e:
            rule_id = (
                "http.decoding" if isinstance(e, DecodingFailed) else "http.decompression-bomb"
            )
            self.session.add(violation(rule_id, str(e)))
            return _Outcome.BROKEN
        finally:
            await _close(response, chunks)

    async def _read(
        self, chunks: AsyncIterator[bytes], body: BodyDecoder, stop_after: int | None
    ) -> _Outcome:
        s = self.session
        while True:
            try:
                chunk = await self._within(anext(chunks), self.options.idle_timeout, "timeout.idle")
            except StopAsyncIteration:
                pieces = () if body.identity else tuple(body.finish())
                return self._feed(pieces, time.monotonic(), stop_after) or _Outcome.END
            except httpx.ReadTimeout:  # an injected client's own read timeout
                raise Expired("timeout.idle") from None
            except httpx.RemoteProtocolError as e:
                # The body's framing (chunked, Content-Length) was announced and not kept.
                why = incomplete_message(str(e))
                s.add(violation("http.incomplete-body", http_incomplete_body(why)))
                s.extra["disconnected"] = _one_line(e)
                return _Outcome.BROKEN
            except httpx.ReadError as e:
                # A reset (TCP RST), not a close: no body ends that way, not even one that
                # ends at the close (no Content-Length, not chunked).  The server or a proxy
                # crashed or cut it; what it held is lost.
                why = f"the connection was reset: {_root_cause(e)}"
                s.add(violation("http.incomplete-body", http_incomplete_body(why)))
                s.extra["disconnected"] = _one_line(e)
                return _Outcome.BROKEN
            except httpx.TransportError as e:
                # The server or a proxy cut the connection: the end of the stream, as for a
                # browser.  sse.truncated or the contract's rules say what was lost.
                s.extra["disconnected"] = _one_line(e)
                return _Outcome.END
            at = time.monotonic()
            outcome = self._feed((chunk,) if body.identity else body.feed(chunk), at, stop_after)
            if outcome is not None:
                return outcome

    def _feed(self, pieces: Iterable[bytes], at: float, stop_after: int | None) -> _Outcome | None:
        """Decode and check one chunk's bytes; an outcome if the stream should stop here."""
        s = self.session
        for chunk in pieces:
            s.record(chunk)
            for event in s.decoder.feed(chunk, at):
                if self.dropped_at is not None and "reconnect_ms" not in s.extra:
                    s.extra["reconnect_ms"] = round((at - self.dropped_at) * 1000.0, 3)
                if not s.feed_event(event, at):
                    return _Outcome.LIMIT
                if self.resuming is not None and self.resuming.tracker.ignored:
                    return _Outcome.IGNORED
                if stop_after is not None and s.events >= stop_after:
                    self.last_event_id = event.id
                    return _Outcome.DROPPED
        return None

    async def _error_detail(self, response: httpx.Response) -> str:
        """The start of an error response's body, as one short line."""
        chunks, encoding = _body(response)
        body = b""
        try:
            decoder = BodyDecoder(encoding)
            while len(body) < _ERROR_BODY_BYTES:
                raw = await self._within(anext(chunks), self.options.idle_timeout, "timeout.idle")
                for piece in decoder.feed(raw):
                    body += piece
                    if len(body) >= _ERROR_BODY_BYTES:
                        break
        except (StopAsyncIteration, Expired, httpx.HTTPError, DecodingFailed, DecompressionBomb):
            pass  # what arrived is enough for a message; http.status is the violation
        finally:
            await _close(response, chunks)
        return _error_text(body[:_ERROR_BODY_BYTES])

    # -- helpers ------------------------------------------------------------------------------

    async def _within(self, aw: Awaitable[T], limit: float, rule_id: str) -> T:
        """Await ``aw`` for at most ``limit`` seconds and no later than the total deadline."""
        loop = asyncio.get_running_loop()
        phase_at = loop.time() + limit
        at = min(phase_at, self.total_at)
        try:
            async with asyncio.timeout_at(None if math.isinf(at) else at) as cm:
                return await aw
        except TimeoutError:
            if not cm.expired():
                raise
            raise Expired.of(rule_id, phase_at, self.total_at) from None

    def _headers(self, last_event_id: str | None) -> list[tuple[bytes, bytes]]:
        """Ours (SSE, body type), unless the user gave the same header; theirs; Last-Event-ID
        (UTF-8 encoded, as a browser sends it, when the server's id is not ASCII).  Any other
        value that is not ASCII raises UnicodeEncodeError."""
        ours = (*SSE_REQUEST_HEADERS, ("User-Agent", user_agent()), *self.content_headers)
        headers = []
        for k, v in request_headers(ours, self.options.headers, last_event_id):
            own_id = last_event_id is not None and k == "Last-Event-ID" and v == last_event_id
            headers.append((k.encode("ascii"), v.encode("utf-8" if own_id else "ascii")))
        return headers

    def _timeout_message(self, rule_id: str) -> str:
        o, events = self.options, self.session.events
        if rule_id == "timeout.total":
            return timeout_total(o.total_timeout, events)
        if rule_id == "timeout.idle":
            return timeout_idle(o.idle_timeout, events)
        return timeout_first_byte(o.first_byte_timeout, self.reconnecting)

    def _check_burst(self, end: float) -> None:
        s = self.session
        if s.first_byte is None:
            return
        ttfb_ms = (s.first_byte - s.start) * 1000.0
        msg = timing_buffered(ttfb_ms, s.event_times_ms, (end - s.start) * 1000.0)
        if msg:
            s.add(violation("timing.buffered", msg))

    def _unreachable(self, reason: str) -> TargetUnreachable:
        url = httpx.URL(self.url)
        where = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
        when = " on reconnecting" if self.reconnecting else ""
        return TargetUnreachable(redact_text(f"cannot reach {where}{when}: {reason}", self.secrets))


def _request_parts(options: CheckOptions) -> tuple[str, bytes | None, tuple[tuple[str, str], ...]]:
    """Method, body and body headers: POST ``{"inputs": ...}`` or ``--body`` as is, else GET."""
    if options.inputs is not None and options.body is not None:
        raise UsageError("give either --inputs or --body, not both")
    content: bytes | None = None
    if options.inputs is not None:
        try:
            content = json.dumps({"inputs": options.inputs}).encode()
        except (TypeError, ValueError) as e:
            raise UsageError(f"--inputs cannot be sent as JSON: {e}") from None
    elif options.body is not None:
        content = options.body.encode()
    method = (options.method or ("POST" if content is not None else "GET")).upper()
    headers = (("Content-Type", "application/json"),) if content is not None else ()
    return method, content, headers


def _error_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for key in ("error", "detail", "message"):
            value = doc.get(key)
            if isinstance(value, dict) and "message" in value:
                value = value["message"]
            if value:
                text = value if isinstance(value, str) else json.dumps(value)
                break
    text = " ".join(text.split())
    return shorten(text, _DETAIL_CHARS)


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _invalid_request(e: httpx.LocalProtocolError) -> str:
    text = _one_line(e)
    if "header value" in text.lower():  # never quote it: it may be a credential
        return "a --header value is invalid: it cannot hold line breaks or control characters"
    return f"the request cannot be sent: {text} (check --header and --method)"


def _root_cause(e: BaseException) -> str:
    """Why a connection failed, in words: httpx's own message is often "All connection
    attempts failed", with the refused connection or the DNS error further down the chain."""
    seen: set[int] = set()
    x: BaseException | None = e
    while x is not None and id(x) not in seen:
        seen.add(id(x))
        if isinstance(x, ssl.SSLError):
            return tls_failure(x)
        if isinstance(x, socket.gaierror):
            return f"DNS lookup failed: {x.strerror or _one_line(x)}"
        if isinstance(x, OSError) and x.errno and x.errno > 0:
            return os.strerror(x.errno)
        x = x.__cause__ or x.__context__
    return _one_line(e)


def _body(response: httpx.Response) -> tuple[AsyncIterator[bytes], str]:
    """The body's bytes as they arrived and their Content-Encoding -- or, from a transport that
    read the body already (httpx then has it decoded), those bytes as identity."""
    if hasattr(response, "_content"):
        return response.aiter_bytes(), "identity"
    return response.aiter_raw(), response.headers.get("content-encoding", "identity")


async def _close(response: httpx.Response, chunks: AsyncIterator[bytes] | None = None) -> None:
    """Close the body iterator and the response, bounded: a stuck close must not hang a run."""
    try:
        async with asyncio.timeout(_CLOSE_WAIT):
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
            await response.aclose()
    except (TimeoutError, httpx.HTTPError):
        pass
