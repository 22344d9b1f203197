"""What a server can get wrong below the events: the response head, the body's compression and
the body's framing -- and the bounded, incremental decoding of a compressed body.

The server was reached in every case, so none of these is "cannot reach" (exit 3): each is a
violation (exit 1), and the message says what arrived, not what h11 or zlib called it.

A compressed body is decoded piece by piece (:class:`BodyDecoder`): no piece is larger than
``PIECE`` bytes, so a few KB that inflate to a GB (``Content-Encoding: gzip, gzip``) are never
held at once, and decoding stops once the body has grown past ``BOMB_RATIO`` times what arrived
(and past ``BOMB_MIN_BYTES``): no single layer of deflate reaches that ratio, so only a body
compressed to explode does.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Final

from harness._core.rules import Severity, rule

__all__ = [
    "BOMB_MIN_BYTES",
    "BOMB_RATIO",
    "PIECE",
    "BodyDecoder",
    "DecodingFailed",
    "DecompressionBomb",
    "http_decoding",
    "http_decompression_bomb",
    "http_incomplete_body",
    "http_protocol",
    "protocol_message",
    "resume_bad_id",
]

PIECE: Final = 64 * 1024
BOMB_RATIO: Final = 2000
BOMB_MIN_BYTES: Final = 16 * 1024 * 1024
_QUOTE: Final = 60


class DecodingFailed(Exception):
    """The body does not decode as its Content-Encoding says; ``str(e)`` is the message."""


class DecompressionBomb(Exception):
    """The body inflated past the bounds; ``str(e)`` is the message."""


@rule("http.protocol", Severity.ERROR, "The response was not well-formed HTTP/1.1.")
def http_protocol(what: str) -> str:
    """The server answered, but not with an HTTP response a client can read: no status line
    (an HTTP/0.9 body, another protocol on the port), a head without its blank line, a header
    section too large for any client to buffer, or ``101 Switching Protocols`` to a request that
    asked for no upgrade.  Browsers and HTTP libraries fail such a response outright; look at
    what the server (or a proxy in front of it) writes on the socket."""
    return f"the response is not valid HTTP/1.1: {what}"


@rule("http.decoding", Severity.ERROR, "The body did not decode as its Content-Encoding says.")
def http_decoding(encoding: str, why: str) -> str:
    """The response said ``Content-Encoding: gzip`` (or ``deflate``, ``br``) but the body is not
    data in that encoding, or the encoding is one no client knows.  A client fails the response
    at the first such byte.  Usually a proxy adds the header to a body it did not compress, or
    compresses twice; an event stream is best sent uncompressed (the harness asks for
    ``Accept-Encoding: identity``)."""
    return f"the body does not decode as Content-Encoding: {encoding}: {why}"


@rule(
    "http.decompression-bomb",
    Severity.ERROR,
    "The compressed body inflated far beyond any real stream.",
)
def http_decompression_bomb(encoding: str, received: int, inflated: int) -> str:
    """The body inflated to more than 2000 times the bytes that arrived (and past 16 MiB).  One
    layer of deflate never gets beyond about 1030 times, so the body was compressed to explode --
    nested encodings such as ``gzip, gzip``, or a crafted stream.  Reading stops there: a client
    that decompressed it all would run out of memory."""
    return (
        f"{_size(received)} sent as Content-Encoding: {encoding} inflated past "
        f"{_size(inflated)} (more than {BOMB_RATIO} times): a decompression bomb; reading stopped"
    )


@rule(
    "http.incomplete-body",
    Severity.ERROR,
    "The connection closed before the body its framing announced was complete.",
)
def http_incomplete_body(why: str) -> str:
    """The response announced its length (``Content-Length``, or chunked encoding with its
    last, empty chunk) and the connection closed before that much arrived: the server or a
    proxy crashed or cut the connection mid-stream (curl reports it as exit 18).  Or the
    connection was reset (a TCP RST) rather than closed, which ends no body cleanly -- not even
    one without a length, that ends at the close.  This is not a clean early end of the
    stream: whatever followed was lost in transit.  How the stream ends is not judged after
    it."""
    return f"the connection closed before the body was complete ({why}): cut in transit"


@rule(
    "resume.bad-id",
    Severity.WARNING,
    "An event id cannot travel back as an ASCII Last-Event-ID header.",
)
def resume_bad_id(event_id: str) -> str:
    """To resume, a client sends the last event id back in the ``Last-Event-ID`` header.  The
    SSE standard lets an id hold any text and browsers send it UTF-8 encoded, but HTTP header
    values are ASCII by convention: many servers, proxies and HTTP libraries reject or mangle
    other bytes, so the resume may fail.  Use ASCII ids (numbers, UUIDs)."""
    shown = event_id[:_QUOTE] + ("..." if len(event_id) > _QUOTE else "")
    return (
        f"event id {shown!r} is not printable ASCII; it was sent back UTF-8 encoded in "
        "Last-Event-ID, as browsers do, which many servers and proxies reject or mangle"
    )


def is_header_safe(event_id: str) -> bool:
    """True if ``event_id`` can be sent as an ASCII header value."""
    return event_id.isascii() and all(" " <= c <= "~" or c == "\t" for c in event_id)


_H11_HEAD_LIMIT: Final = 100 * 1024  # httpcore's h11 max_incomplete_event_size


def protocol_message(h11_text: str) -> str:
    """What h11's complaint about a response head means, in words (for :func:`http_protocol`)."""
    text = h11_text.strip()
    low = text.lower()
    if "receive buffer too long" in low:
        return (
            f"the response head is larger than {_H11_HEAD_LIMIT} bytes "
            "(a header line or the number of headers past what a client buffers)"
        )
    if low.startswith("illegal status line"):
        got = text.partition(":")[2].strip()
        for prefix in ("bytearray(", "b'", 'b"'):
            got = got.removeprefix(prefix)
        got = got.rstrip(")").rstrip("'\"")
        return f"it does not start with an HTTP/1.x status line (got {got[:_QUOTE]!r})"
    if "_switch_upgrade" in low or "switch_upgrade" in low:
        return "101 Switching Protocols, but the request asked for no upgrade"
    if "disconnected without sending a response" in low:
        return "the connection closed before the response head was complete"
    return text.splitlines()[0] if text else "malformed response"


def incomplete_message(h11_text: str) -> str:
    low = h11_text.lower()
    if "chunked" in low:
        return "the chunked body had no last chunk"
    if "content-length" in low or "incomplete" in low or "complete message body" in low:
        return "fewer bytes than its Content-Length"
    return h11_text.strip().splitlines()[0] if h11_text.strip() else "cut"


# -- decoding ------------------------------------------------------------------------------------


class _Zlib:
    """gzip (every member) or deflate (zlib-wrapped, or raw as some servers send it)."""

    def __init__(self, gzip: bool) -> None:
        self.gzip = gzip
        self.d: Any = zlib.decompressobj(31) if gzip else None
        self.pending = b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.d is None:  # deflate: zlib header or raw? (RFC 9110 says zlib; IIS sent raw)
            self.pending += data
            if len(self.pending) < 2:
                return
            data, self.pending = self.pending, b""
            cmf, flg = data[0], data[1]
            wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self.d = zlib.decompressobj(15 if wrapped else -15)
        while True:
            if self.gzip and self.d.eof:  # the next gzip member, if any
                data = self.d.unused_data + data
                if not data:
                    return
                self.d = zlib.decompressobj(31)
            out = self.d.decompress(data, PIECE)
            # (At the end of a member CPython leaves the rest in both unconsumed_tail and
            # unused_data: take it once.)
            data = b"" if self.d.eof else self.d.unconsumed_tail
            if out:
                yield out
            more = self.gzip and self.d.eof and self.d.unused_data
            if not data and len(out) < PIECE and not more:
                return

    def finish(self) -> Iterator[bytes]:
        if self.d is None:
            if self.pending:
                raise zlib.error("the body ended after one byte")
            return
        if not self.d.eof:
            yield from self.feed(b"")
            if not self.d.eof:
                raise zlib.error("the compressed data ended early")


class _Brotli:
    def __init__(self) -> None:
        # The same optional dependency httpx decodes br with (untyped: imported by name).
        self.d: Any = importlib.import_module("brotli").Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        out = self.d.process(data, output_buffer_limit=PIECE)
        while True:
            if out:
                yield out
            if self.d.can_accept_more_data():
                return
            out = self.d.process(b"", output_buffer_limit=PIECE)

    def finish(self) -> Iterator[bytes]:
        if not self.d.is_finished():
            raise ValueError("the compressed data ended early")
        return iter(())


def _stage(coding: str) -> _Zlib | _Brotli:
    if coding in ("gzip", "x-gzip"):
        return _Zlib(gzip=True)
    if coding == "deflate":
        return _Zlib(gzip=False)
    if coding == "br":
        try:
            return _Brotli()
        except ImportError:
            raise DecodingFailed(
                "br is not installed here (pip install brotli), so the body cannot be read"
            ) from None
    raise DecodingFailed(f"{coding!r} is not a content coding a client can decode")


class BodyDecoder:
    """Undoes ``Content-Encoding`` (a comma list, applied in order) in bounded pieces.

    Raises :class:`DecodingFailed` for bytes that do not decode (or an unknown coding, at
    construction) and :class:`DecompressionBomb` past the bounds in the module docstring.
    """

    def __init__(self, content_encoding: str) -> None:
        self.encoding = content_encoding.strip()
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        try:
            self.stages = [_stage(c) for c in reversed(codings) if c and c != "identity"]
        except DecodingFailed as e:
            raise DecodingFailed(http_decoding(self.encoding, str(e))) from None
        self.received = 0
        self.inflated = 0

    @property
    def identity(self) -> bool:
        return not self.stages

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.received += len(data)
        yield from self._through(0, data, final=False)

    def finish(self) -> Iterator[bytes]:
        yield from self._through(0, b"", final=True)

    def _through(self, i: int, data: bytes, *, final: bool) -> Iterator[bytes]:
        if i == len(self.stages):
            if data:
                self._count(len(data))
                yield data
            return
        stage = self.stages[i]
        pieces: Callable[[], Iterator[bytes]] = lambda: stage.feed(data)  # noqa: E731
        for piece in self._guard(pieces):
            yield from self._through(i + 1, piece, final=False)
        if final:
            for piece in self._guard(stage.finish):
                yield from self._through(i + 1, piece, final=False)
            yield from self._through(i + 1, b"", final=True)

    def _guard(self, pieces: Callable[[], Iterator[bytes]]) -> Iterator[bytes]:
        try:
            yield from pieces()
        except (DecodingFailed, DecompressionBomb):
            raise
        except Exception as e:  # zlib.error, brotli.error: the bytes are not what was said
            raise DecodingFailed(http_decoding(self.encoding, _why(e))) from None

    def _count(self, n: int) -> None:
        self.inflated += n
        if self.inflated > BOMB_MIN_BYTES and self.inflated > BOMB_RATIO * max(1, self.received):
            raise DecompressionBomb(
                http_decompression_bomb(self.encoding, self.received, self.inflated)
            )


def _why(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.removeprefix("Error -3 while decompressing data: ").splitlines()[0]


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
