"""Framings, sans-I/O: how a stream's bytes become events, for the three a server may pick.

``sse`` is the Server-Sent Events decoder (:mod:`harness._core.sse`).  This module adds:

``text``
    Raw text (``text/plain``, ``application/octet-stream``): each received chunk is one token,
    as a FastAPI ``StreamingResponse`` of bare strings sends it.  Chunks are decoded as UTF-8
    with the bytes of a character torn across two chunks carried over, so a token never holds
    half a character.
``ndjson``
    NDJSON / JSON Lines (``application/x-ndjson``, ``application/jsonl``): one JSON value per
    line; CR, LF and CRLF end lines; blank lines are ignored; a last line without a line end
    is accepted at the end of the stream.  A line over the size limit is reported and its
    bytes skipped, never buffered (``ndjson.line-too-large``); a line that is not JSON is
    reported and skipped (``ndjson.not-json``).

Every decoder has the SSE decoder's interface -- ``feed(chunk, at) -> events``, ``finish()``,
``bytes_fed``, ``truncated``, ``retry`` -- and yields :class:`~harness._core.sse.SSEEvent`
values (type ``message``, no id), so a contract checks them as it checks SSE events.  What a
framing found wrong that is not an event is kept as one :class:`FramingProblem` per rule: the
first occurrence and a count, so memory stays flat and one problem is reported once.

Why splitting NDJSON is simple: a blank line means nothing, so CR, LF and CRLF can all be read
as LF (``bytes.replace`` keeps every offset) and a CRLF torn across chunks is just a blank
line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from harness._core.jsonvalue import loads as json_value
from harness._core.sse import DEFAULT_MAX_EVENT_BYTES, SSEDecoder, SSEEvent
from harness._core.text import shorten

__all__ = [
    "FRAMINGS",
    "MEDIA_TYPES",
    "NDJSON",
    "SSE",
    "SUFFIXES",
    "TEXT",
    "FrameDecoder",
    "FramingProblem",
    "NDJSONDecoder",
    "TextDecoder",
    "choose_framing",
    "framing_of_media_type",
    "framings_of",
    "headers_of",
    "make_decoder",
]

SSE: Final = "sse"
NDJSON: Final = "ndjson"
TEXT: Final = "text"
FRAMINGS: Final = (SSE, NDJSON, TEXT)

#: The media types each framing is served as (the first is the one to send).
MEDIA_TYPES: Final[dict[str, tuple[str, ...]]] = {
    SSE: ("text/event-stream",),
    NDJSON: (
        "application/x-ndjson",
        "application/jsonl",
        "application/ndjson",
        "application/json-lines",
        "application/x-jsonlines",
        "application/jsonlines",
    ),
    TEXT: ("text/plain", "application/octet-stream"),
}

#: Recorded streams: the framing a file's suffix names.
SUFFIXES: Final[dict[str, str]] = {
    ".sse": SSE,
    ".ndjson": NDJSON,
    ".jsonl": NDJSON,
    ".txt": TEXT,
}

_BY_MEDIA: Final = {m: f for f, ms in MEDIA_TYPES.items() for m in ms}
_PREVIEW: Final = 120


def framing_of_media_type(content_type: str | None) -> str | None:
    """The framing a ``Content-Type`` header names, or None (missing, or another type)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return _BY_MEDIA.get(media)


def choose_framing(detected: str | None, accepted: Sequence[str]) -> str:
    """The framing to decode with: what the response (or file) says, if the contract accepts
    it; otherwise the contract's own first framing."""
    return detected if detected is not None and detected in accepted else accepted[0]


def _contract_attr(checker: object, name: str) -> Any:
    """An attribute of a contract checker, looking through wrappers (the resume tracker)."""
    while checker is not None:
        value = getattr(checker, name, None)
        if value:
            return value
        checker = getattr(checker, "inner", None)
    return None


def framings_of(checker: object) -> tuple[str, ...]:
    """The framings a contract checker accepts (SSE for a checker that does not say)."""
    return tuple(_contract_attr(checker, "framings") or (SSE,))


def headers_of(checker: object) -> Mapping[str, str | bool]:
    """The response headers a contract checker requires (lower-case names)."""
    return _contract_attr(checker, "headers") or {}


@dataclass(slots=True)
class FramingProblem:
    """What a framing found wrong, per rule: the first occurrence and how many there were."""

    rule: str
    offset: int  # byte offset of the first occurrence
    preview: str  # the start of the first offending line
    detail: str  # what was wrong with it
    size: int = 0  # its size in bytes
    count: int = 1


class FrameDecoder(Protocol):
    """What a session needs of a decoder (``SSEDecoder`` and the decoders below)."""

    bytes_fed: int
    truncated: bool
    retry: int | None
    last_event_id: str

    def feed(self, chunk: bytes, at: float | None = None) -> list[SSEEvent]: ...

    def finish(self) -> list[SSEEvent]: ...


_new = tuple.__new__


def _preview(raw: bytes) -> str:
    text = raw[: _PREVIEW * 4].decode("utf-8", "replace")
    return shorten(text, _PREVIEW)


class _Problems:
    """What both framings share with :class:`SSEDecoder`'s interface -- the byte count, the
    size bound, no ``retry``/``id`` -- and framing problems by rule, bounded (see
    :class:`FramingProblem`)."""

    retry: int | None = None
    last_event_id = ""

    def __init__(self, max_event_bytes: int) -> None:
        if max_event_bytes < 1:
            raise ValueError("max_event_bytes must be at least 1")
        self.max_event_bytes = max_event_bytes
        self.bytes_fed = 0
        self.truncated = False
        self.problems: dict[str, FramingProblem] = {}

    def _report(self, rule: str, offset: int, raw: bytes, detail: str, size: int) -> None:
        seen = self.problems.get(rule)
        if seen is None:
            self.problems[rule] = FramingProblem(rule, offset, _preview(raw), detail, size)
        else:
            seen.count += 1


class TextDecoder(_Problems):
    """Raw text: each chunk is one token (an event of type ``message``).

    >>> d = TextDecoder()
    >>> [e.data for e in d.feed(b"Hel")] + [e.data for e in d.feed(b"lo \\xe4\\xb8")]
    ['Hel', 'lo ']
    >>> [e.data for e in d.feed(b"\\xad")], d.finish()
    (['中'], [])
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        super().__init__(max_event_bytes)
        self._pending = b""  # the start of a character torn across chunks (at most 3 bytes)

    def feed(self, chunk: bytes, at: float | None = None) -> list[SSEEvent]:
        if not chunk:
            return []
        offset = self.bytes_fed - len(self._pending)
        self.bytes_fed += len(chunk)
        if len(chunk) > self.max_event_bytes:
            self._pending = b""
            return [_new(SSEEvent, ("", "message", "", None, offset, at, False, True))]
        raw = self._pending + chunk if self._pending else chunk
        self._pending = b""
        try:
            text, bad = raw.decode(), False
        except UnicodeDecodeError as e:
            if e.end == len(raw) and e.reason == "unexpected end of data":
                self._pending = raw[e.start :]  # completed by the next chunk, we hope
                raw = raw[: e.start]
            try:
                text, bad = raw.decode(), False
            except UnicodeDecodeError:
                text, bad = raw.decode("utf-8", "replace"), True
        if not text:
            return []
        return [_new(SSEEvent, (text, "message", "", None, offset, at, bad, False))]

    def finish(self) -> list[SSEEvent]:
        """The end: a torn character that was never completed becomes a replacement char."""
        if not self._pending:
            return []
        offset = self.bytes_fed - len(self._pending)
        text = self._pending.decode("utf-8", "replace")
        self._pending = b""
        return [_new(SSEEvent, (text, "message", "", None, offset, None, True, False))]


class NDJSONDecoder(_Problems):
    """NDJSON / JSON Lines: one JSON value per line, each an event of type ``message``.

    >>> d = NDJSONDecoder()
    >>> [e.data for e in d.feed(b'{"a": 1}\\r\\n\\n{"b"')], [e.data for e in d.feed(b": 2}")]
    (['{"a": 1}'], [])
    >>> [e.data for e in d.finish()]
    ['{"b": 2}']
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        super().__init__(max_event_bytes)
        self.max_line_bytes = max_event_bytes
        self._tail: list[bytes] = []  # the unterminated last line, in pieces
        self._tail_len = 0
        self._skipping = False  # inside an oversize line: drop bytes until its end
        self._skip_start = 0
        self._skip_size = 0
        self._skip_head = b""

    def feed(self, chunk: bytes, at: float | None = None) -> list[SSEEvent]:
        if not chunk:
            return []
        start = self.bytes_fed  # stream offset of chunk[0]
        self.bytes_fed += len(chunk)
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r", b"\n")  # same length: offsets stay exact
        first_nl = chunk.find(b"\n")
        if first_nl < 0:
            self._carry(chunk)
            return []
        out: list[SSEEvent] = []
        lines = chunk.split(b"\n")
        last = lines.pop()
        pos = start
        head = lines[0]
        if self._skipping:
            self._end_skip(len(head))
            pos += len(head) + 1
            lines = lines[1:]
        elif self._tail:
            self._tail.append(head)
            line = b"".join(self._tail)
            line_start = start - self._tail_len
            self._tail, self._tail_len = [], 0
            self._line(line, line_start, at, out)
            pos += len(head) + 1
            lines = lines[1:]
        limit = self.max_line_bytes
        loads = json.loads
        for line in lines:
            n = len(line)
            if n and n <= limit:
                try:
                    text = line.decode()
                    loads(text)
                except (ValueError, RecursionError):  # Unicode/JSONDecodeError: ValueErrors
                    self._line(line, pos, at, out)  # (or valid JSON json.loads cannot read)
                else:
                    out.append(_new(SSEEvent, (text, "message", "", None, pos, at, False, False)))
            elif n:
                self._line(line, pos, at, out)
            pos += n + 1
        if last:
            self._carry(last)
        return out

    def finish(self) -> list[SSEEvent]:
        """The end: a last line without a line end is a line (JSON Lines allows it)."""
        out: list[SSEEvent] = []
        if self._skipping:
            self._end_skip(0)
        elif self._tail:
            line = b"".join(self._tail)
            self._tail, self._tail_len = [], 0
            self._line(line, self.bytes_fed - len(line), None, out)
        return out

    # -- lines ---------------------------------------------------------------------------------

    def _line(self, line: bytes, offset: int, at: float | None, out: list[SSEEvent]) -> None:
        """One complete line, the slow way: blank, too large, not JSON, or an event."""
        if not line.strip():
            return  # blank (or only whitespace): ignored
        if len(line) > self.max_line_bytes:
            detail = f"{len(line)} bytes, over the {self.max_line_bytes}-byte limit"
            self._report("ndjson.line-too-large", offset, line, detail, len(line))
            return
        try:
            text = line.decode()
        except UnicodeDecodeError as e:
            self._report("ndjson.not-json", offset, line, f"not UTF-8 (byte {e.start})", len(line))
            return
        try:
            json_value(text)  # huge integers and deep nesting are JSON too
        except ValueError as e:
            detail = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
            self._report("ndjson.not-json", offset, line, detail, len(line))
            return
        out.append(_new(SSEEvent, (text, "message", "", None, offset, at, False, False)))

    def _carry(self, piece: bytes) -> None:
        """Keep the start of an unterminated line, unless the line is already too large."""
        if self._skipping:
            self._skip_size += len(piece)
            return
        self._tail.append(piece)
        self._tail_len += len(piece)
        if self._tail_len > self.max_line_bytes:  # never buffer more than the limit
            self._skipping = True
            self._skip_start = self.bytes_fed - self._tail_len
            self._skip_size = self._tail_len
            self._skip_head = b"".join(self._tail)[: _PREVIEW * 4]
            self._tail, self._tail_len = [], 0

    def _end_skip(self, more: int) -> None:
        size = self._skip_size + more
        detail = f"{size} bytes, over the {self.max_line_bytes}-byte limit"
        self._report("ndjson.line-too-large", self._skip_start, self._skip_head, detail, size)
        self._skipping = False
        self._skip_head = b""


def make_decoder(framing: str, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> FrameDecoder:
    """A fresh decoder for ``framing`` (one of :data:`FRAMINGS`)."""
    if framing == SSE:
        return SSEDecoder(max_event_bytes)
    if framing == NDJSON:
        return NDJSONDecoder(max_event_bytes)
    if framing == TEXT:
        return TextDecoder(max_event_bytes)
    raise ValueError(f"unknown framing {framing!r}: one of {', '.join(FRAMINGS)}")
