"""A sans-I/O Server-Sent Events decoder: bytes in, events out.

It follows the WHATWG HTML "event stream interpretation" (section 9.2.6) to the letter, with two
additions a test harness needs: every event records the byte offset where it started, and the
decoder is *bounded* -- an event (or a single line) larger than ``max_event_bytes`` is reported as
an oversize placeholder event and its bytes are skipped, never buffered, so memory stays flat on
a stream of any length.

Design, and why it is fast
--------------------------
Line terminators (CR, LF, CRLF) are ASCII bytes that never occur inside a multi-byte UTF-8
sequence, so lines can be split on *bytes* and each finished event decoded to text once, at
dispatch.  Decoding a line on its own with ``errors="replace"`` gives exactly what decoding the
whole stream with replacement would, because a UTF-8 decoder resynchronises at every ASCII byte.

The common case -- a chunk with no CR in it -- is split with one ``bytes.split(b"\\n")`` call and
the lines are walked by a tight loop that recognises ``data: `` and ``id: `` by prefix before
falling back to the general field parser.  A chunk containing CR takes the general splitter,
which also handles a CRLF torn across two chunks (the CR ends the line at once, so the event is
not held back waiting for the next chunk; a leading LF in the next chunk is then dropped).

A chunk whose line ends are all CRLF and which completes an event is normalised to LF and takes
the same bulk path; what it leaves unparsed is kept raw, CRs and all, and flagged, so that the
next chunk is read by a path that knows CR (the LF path would keep the CR in a field's value).

Only the unterminated last line of a chunk is carried over (``_tail``), as a list of pieces so
that an event arriving one byte per chunk is joined once, not quadratically.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import accumulate, repeat
from operator import add
from typing import Final, NamedTuple

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSEDecoder", "SSEEvent"]

DEFAULT_MAX_EVENT_BYTES: Final = 1 << 20
#: The largest reconnection time kept, in milliseconds: a longer ``retry:`` value (the spec sets
#: no bound; Python's int parser refuses over 4 300 digits) is capped to it, never an error.
MAX_RETRY: Final = (1 << 63) - 1
_BOM: Final = b"\xef\xbb\xbf"
_LINE_END: Final = re.compile(rb"\r\n|\r|\n")
_DIGITS: Final = re.compile(rb"[0-9]+")
_PREFIXES: Final = (b"data: ", b"id: ", b"event: ")


def _layout(block: bytes) -> tuple[bytes, ...] | None:
    """The field prefixes of ``block``'s lines, if it is a plain event the bulk path takes."""
    layout = []
    for line in block.split(b"\n"):
        prefix = next((p for p in _PREFIXES if line.startswith(p)), None)
        if prefix is None or prefix in layout:
            return None
        layout.append(prefix)
    return tuple(layout) if b"data: " in layout else None


class SSEEvent(NamedTuple):
    """One dispatched event.

    ``event`` is the event type (``"message"`` when the stream named none), ``data`` the data
    lines joined with LF, ``id`` the last event id in force when the event was dispatched (``""``
    if none), ``retry`` the reconnection time this event's block set (``None`` if it set none).
    ``offset`` is the byte offset of the event's first line in the raw stream and ``time`` the
    arrival time the caller stamped (``SSEDecoder.feed(chunk, at=...)``), or ``None``.
    ``invalid_utf8`` is true when replacement characters were substituted; ``oversize`` marks a
    placeholder for an event over the size limit, whose data was dropped.

    An immutable tuple: the decoder builds millions of them, and ``tuple.__new__`` is the
    cheapest object Python can make.
    """

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None
    offset: int = 0
    time: float | None = None
    invalid_utf8: bool = False
    oversize: bool = False


_new = tuple.__new__
_RETRY_DIGITS: Final = len(str(MAX_RETRY))
_KEEP_UNKNOWN: Final = 200  # bytes of the first unknown field line kept for the message


def _retry(digits: bytes) -> int:
    """The spec's base-ten integer of an all-digit ``retry`` value, capped at ``MAX_RETRY``
    (checked on length first: ``int()`` of a 5 000-digit string raises)."""
    digits = digits.lstrip(b"0")
    if len(digits) > _RETRY_DIGITS:
        return MAX_RETRY
    return min(int(digits or b"0"), MAX_RETRY)


def _decode(raw: bytes) -> tuple[str, bool]:
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), True


class SSEDecoder:
    """Incremental decoder: ``feed(chunk)`` returns the events the chunk completed.

    >>> d = SSEDecoder()
    >>> [(e.data, e.id) for e in d.feed(b'id: 1\\ndata: {"n": 1}\\n\\nda')]
    [('{"n": 1}', '1')]
    >>> [e.data for e in d.feed(b"ta: x\\n\\n")], d.last_event_id
    (['x'], '1')
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        if max_event_bytes < 1:
            raise ValueError("max_event_bytes must be at least 1")
        self.max_event_bytes = max_event_bytes
        #: The last event id in force (persists across events, as the spec says).
        self.last_event_id = ""
        #: The reconnection time in milliseconds the stream asked for, if any.
        self.retry: int | None = None
        #: Total bytes fed so far.
        self.bytes_fed = 0
        #: Set by ``finish()``: the stream ended inside an event, which was discarded.
        self.truncated = False
        #: Lines that were neither a field the spec knows nor a comment (the spec ignores them;
        #: almost always an unescaped newline inside data): how many, and the first one with
        #: its byte offset.  Plain events never reach the code that counts them.
        self.unknown_fields = 0
        self.first_unknown_field: tuple[int, bytes] | None = None

        # Bytes not yet parsed, starting at a line start: on the LF-only path, every line of the
        # unfinished event; on the general path, only the unterminated last line.
        self._tail: list[bytes] = []
        self._tail_len = 0
        self._pos = 0  # stream offset of the first byte of _tail
        self._bom_pending = True
        self._after_cr = False  # previous chunk ended in CR: drop one leading LF
        self._tail_cr = False  # _tail may hold CR line ends (left by the CRLF path)
        # Fields of the event being built from parsed lines.
        self._data: list[bytes] = []
        self._type = b""
        self._id_buf = ""
        self._ev_retry: int | None = None
        self._ev_start = -1  # offset of the event's first line; -1 while none was parsed
        self._size = 0  # bytes of the parsed lines of the event, terminators included
        self._skipping = False  # inside an oversize event: drop lines until a blank line
        self._skip_mid_line = False  # ... and the bytes dropped last ended mid-line
        # Comments do not count towards an event's size, and are not kept: a comment line
        # still arriving when the unparsed bytes pass the limit is dropped as it streams.
        self._in_comment = False  # inside such a comment line: drop bytes to its line end
        self._cr_comment = False  # the line the last chunk's final CR ended was a comment

    # -- public -------------------------------------------------------------------------------

    def feed(self, chunk: bytes, at: float | None = None) -> list[SSEEvent]:
        """Decode ``chunk``; return the events it completed, stamped with ``time=at``."""
        if not chunk:
            return []
        self.bytes_fed += len(chunk)
        if self._bom_pending:
            chunk = self._strip_bom(chunk)
            if not chunk:
                return []
        out: list[SSEEvent] = []
        if self._after_cr:
            self._after_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                self._lf_after_cr(out)
                if not chunk:
                    return out
        if self._in_comment:
            chunk = self._end_comment(chunk)
            if not chunk:
                return out
        if b"\r" not in chunk and not (self._skipping or self._tail_cr):
            self._feed_lf(chunk, out, at)
            return out
        self._tail_cr = False  # both other paths take up the tail
        if b"\r\n\r\n" in chunk and chunk[-1:] != b"\r" and not self._skipping:
            self._feed_crlf(chunk, out, at)
        else:
            self._feed_general(chunk, out, at)
        return out

    def _lf_after_cr(self, out: list[SSEEvent]) -> None:
        """The LF of a CRLF torn across chunks: the line already ended at the CR, but the LF
        still counts towards the size of the event being built, whatever the chunking."""
        self._pos += 1
        if self._ev_start >= 0 and not self._skipping and not self._cr_comment:
            self._size += 1
            if self._size > self.max_event_bytes:
                self._overflow(out)

    def finish(self) -> list[SSEEvent]:
        """Signal the end of the stream.

        The spec discards an event that the stream ends inside of, so this never completes an
        event; it sets ``truncated`` when such a partial event (or partial line) was dropped.
        """
        rest = b"".join(self._tail)
        self._tail, self._tail_len = [], 0
        self._bom_pending = False
        lines = _LINE_END.split(rest) if self._tail_cr else rest.split(b"\n")
        self._tail_cr = False
        partial = lines.pop()
        sink: list[SSEEvent] = []
        for line in lines:  # complete lines of an unfinished event: parse them to see what is lost
            self._line(line, len(line) + 1, sink, None)
        pending = bool(self._data or self._type or self._ev_retry is not None or self._skipping)
        self.truncated = pending or bool(partial and not partial.startswith(b":"))
        self._reset_event()
        self._skipping = self._in_comment = False
        return []

    # -- splitting ----------------------------------------------------------------------------

    def _strip_bom(self, chunk: bytes) -> bytes:
        seen = b"".join(self._tail) + chunk
        self._tail, self._tail_len = [], 0
        if len(seen) < 3 and _BOM.startswith(seen):
            self._tail, self._tail_len = [seen], len(seen)  # could still become a BOM
            return b""
        self._bom_pending = False
        if seen.startswith(_BOM):
            self._pos = 3
            return seen[3:]
        return seen

    def _feed_lf(self, chunk: bytes, out: list[SSEEvent], at: float | None) -> None:
        """The hot path, for chunks without CR: split into whole event blocks at once."""
        tail = self._tail
        if tail:
            tail.append(chunk)
            self._tail_len += len(chunk)
            if b"\n\n" not in chunk and not (chunk[:1] == b"\n" and tail[-2][-1:] == b"\n"):
                if self._size + self._tail_len > self.max_event_bytes:
                    self._compact(out, at)
                return  # no event boundary yet: nothing to parse
            buf = b"".join(tail)
            self._tail, self._tail_len = [], 0
        else:
            buf = chunk
        rest = self._split(buf, out, at, 1)
        if rest:
            self._keep(rest, out, at)

    def _feed_crlf(self, chunk: bytes, out: list[SSEEvent], at: float | None) -> None:
        """A chunk that completes an event and has CR in it: if every line end in the buffer
        is CRLF (sse-starlette's framing), normalise to LF and take the hot path with
        two-byte line ends, so that offsets stay exact; otherwise, the general path."""
        if self._tail:
            self._tail.append(chunk)
            chunk = b"".join(self._tail)
            self._tail, self._tail_len = [], 0
        n_crlf = chunk.count(b"\r\n")
        if chunk.count(b"\r") != n_crlf or chunk.count(b"\n") != n_crlf:
            self._feed_general(chunk, out, at)
            return
        rest = self._split(chunk.replace(b"\r\n", b"\n"), out, at, 2)
        if rest:  # keep the raw bytes, so that the next CRLF chunk can take the bulk path too
            # ... but they may hold CRLF line ends, which the LF path would misread.
            self._tail_cr = b"\n" in rest
            self._keep(chunk[len(chunk) - len(rest) - rest.count(b"\n") :], out, at)

    def _split(self, buf: bytes, out: list[SSEEvent], at: float | None, w: int) -> bytes:
        """Parse the complete events in LF-only ``buf``; return the unparsed rest.

        ``w`` is the width of a line end in the raw stream (1 for LF, 2 for CRLF), used only
        to keep offsets exact.
        """
        cut = buf.rfind(b"\n\n") + 2
        if cut < 2:
            rest = buf
        else:
            rest = buf[cut:]
            region = buf[:cut] if rest else buf
            if not (self._ev_start < 0 and self._bulk(region, out, at, w)):
                self._blocks(region[:-2].split(b"\n\n"), out, at, w)
        if rest[:1] == b"\n":  # an empty line right after the last boundary
            self._line(b"", w, out, at)
            rest = rest[1:]
        return rest

    def _keep(self, rest: bytes, out: list[SSEEvent], at: float | None) -> None:
        self._tail, self._tail_len = [rest], len(rest)
        if self._size + len(rest) > self.max_event_bytes:
            self._compact(out, at)

    def _compact(self, out: list[SSEEvent], at: float | None) -> None:
        """The unparsed bytes passed the limit: parse their complete lines now, to see how
        much of them counts (comments do not), and keep only the unfinished last line."""
        buf = b"".join(self._tail)
        self._tail, self._tail_len = [], 0
        may_cr, self._tail_cr = self._tail_cr, False
        end = buf.rfind(b"\n") + 1
        if (
            end
            and buf[:1] == b":"
            and not may_cr
            and b"\r" not in buf
            and buf.count(b"\n:", 0, end - 1) == buf.count(b"\n", 0, end) - 1
        ):  # whole lines, every one a comment (a keep-alive flood): skipped at C speed
            if self._ev_start < 0:
                self._ev_start = self._pos
            self._pos += end
            buf = buf[end:]
            if not buf:
                return
        self._feed_general(buf, out, at)

    def _end_comment(self, chunk: bytes) -> bytes:
        """Drop the rest of a comment line being skipped; return what follows its line end."""
        lf, cr = chunk.find(b"\n"), chunk.find(b"\r")
        end = lf if cr < 0 or 0 <= lf < cr else cr
        if end < 0:
            self._pos += len(chunk)
            return b""
        self._in_comment = False
        if end == cr and chunk[end + 1 : end + 2] == b"\n":
            end += 1  # CRLF
        elif end == cr == len(chunk) - 1:
            self._after_cr = self._cr_comment = True  # perhaps a CRLF torn across chunks
        self._pos += end + 1
        return chunk[end + 1 :]

    def _blocks(self, blocks: list[bytes], out: list[SSEEvent], at: float | None, w: int) -> None:
        """Parse complete blocks, with inline fast paths for the two shapes servers send."""
        if self._ev_start >= 0 or self._skipping:
            # The first block finishes an event whose first lines were parsed earlier.
            self._block(blocks[0], out, at, w)
            blocks = blocks[1:]
        pos = self._pos
        limit = self.max_event_bytes + 1 - 2 * w  # a block of n bytes is at most n + 2w - 1
        one, two = 2 * w, 3 * w - 1  # raw size of the line ends of a 1- and a 2-line block
        id_buf = self._id_buf
        for block in blocks:
            n = len(block)
            if n <= limit:
                if block[:6] == b"data: ":
                    if b"\n" not in block:
                        raw = block[6:]
                        try:
                            text, bad = raw.decode(), False
                        except UnicodeDecodeError:
                            text, bad = raw.decode("utf-8", "replace"), True
                        out.append(
                            _new(SSEEvent, (text, "message", id_buf, None, pos, at, bad, False))
                        )
                        pos += n + one
                        continue
                elif block[:4] == b"id: ":
                    nl = block.find(b"\n")
                    if block[nl + 1 : nl + 7] == b"data: " and block.find(b"\n", nl + 1) < 0:
                        value = block[4:nl]
                        if b"\x00" not in value:
                            id_buf = _decode(value)[0]
                        text, bad = _decode(block[nl + 7 :])
                        out.append(
                            _new(SSEEvent, (text, "message", id_buf, None, pos, at, bad, False))
                        )
                        pos += n + two
                        continue
            self._id_buf, self._pos = id_buf, pos
            self._block(block, out, at, w)
            id_buf, pos = self._id_buf, self._pos
        self._id_buf = self.last_event_id = id_buf
        self._pos = pos

    def _bulk(self, region: bytes, out: list[SSEEvent], at: float | None, w: int) -> bool:
        """Decode a run of complete events in one go when all have the same plain layout.

        ``region`` ends with a blank line and no event is half-built.  The first event's lines
        fix a layout -- one ``data: `` line, at most one ``id: `` and one ``event: `` line, in
        any order (what servers send) -- and when every event in the run has that layout, the
        run is decoded with C-level ``split``/``map``/``zip`` instead of a Python loop per
        event.  Anything else (other fields, comments, multi-line data, invalid UTF-8, a NUL,
        a large event) returns False and takes the general path, which is exact.
        """
        layout = _layout(region[: region.find(b"\n\n")])
        if layout is None:
            return False
        k = len(layout)
        lines = region.split(b"\n")
        n, odd = divmod(len(lines) - 1, k + 1)
        if odd or any(lines[k :: k + 1]):  # every (k+1)-th line blank: n events of k lines
            return False
        fields: dict[bytes, list[str]] = {}
        for j, prefix in enumerate(layout):
            # One column: the j-th line of every event, joined.  Lines hold no LF, so the
            # column has the layout's prefix on every line iff it starts with it and holds
            # it after n - 1 LFs; then the values are one replace, one decode, one split.
            column = b"\n".join(lines[j : -1 : k + 1])
            marker = b"\n" + prefix
            if not column.startswith(prefix) or column.count(marker) != n - 1:
                return False
            try:
                fields[prefix] = column.replace(marker, b"\n")[len(prefix) :].decode().split("\n")
            except UnicodeDecodeError:
                return False
        sizes = list(map(len, region.split(b"\n\n")))
        sizes.pop()
        step = (k + 1) * w - (k - 1)  # a block's line ends in the raw stream, less its k-1 LFs
        if max(sizes) + step > self.max_event_bytes:  # conservative: the general path is exact
            return False
        ids: Iterable[str] = repeat(self._id_buf)
        if b"id: " in fields:
            if b"\x00" in region:
                return False
            ids = fields[b"id: "]
            self._id_buf = ids[-1]
        types: Iterable[str] = repeat("message")
        if b"event: " in fields:
            types = fields[b"event: "]
            if "" in types:
                types = [t or "message" for t in types]
        offsets = list(accumulate(map(add, sizes, repeat(step)), initial=self._pos))
        self._pos = offsets.pop()
        self.last_event_id = self._id_buf
        out.extend(
            map(
                _new,
                repeat(SSEEvent),
                zip(
                    fields[b"data: "],
                    types,
                    ids,
                    repeat(None),
                    offsets,
                    repeat(at),
                    repeat(False),
                    repeat(False),
                ),
            )
        )
        return True

    def _block(self, block: bytes, out: list[SSEEvent], at: float | None, w: int) -> None:
        """Parse one block (the lines before a blank line) line by line, then the blank line."""
        for line in block.split(b"\n"):
            self._line(line, len(line) + w, out, at)
        self._line(b"", w, out, at)

    def _feed_general(self, chunk: bytes, out: list[SSEEvent], at: float | None) -> None:
        """Any chunk: CR, LF or CRLF line ends, and the skipping of an oversize event."""
        if self._tail:
            self._tail.append(chunk)
            chunk = b"".join(self._tail)
            self._tail, self._tail_len = [], 0
        start = 0
        line_end = _LINE_END
        for m in line_end.finditer(chunk):
            end = m.end()
            self._line(chunk[start : m.start()], end - start, out, at)
            start = end
        rest = chunk[start:]
        if not rest:
            if chunk[-1:] == b"\r":
                self._after_cr = True  # perhaps the first half of a CRLF torn across chunks
                # ... whose LF counts towards the event's size, unless the line is a comment
                line_start = max(chunk.rfind(b"\n", 0, -1), chunk.rfind(b"\r", 0, -1)) + 1
                self._cr_comment = chunk[line_start : line_start + 1] == b":"
            return
        if self._skipping:
            self._pos += len(rest)
            self._skip_mid_line = True
            return
        if self._size + len(rest) > self.max_event_bytes:
            if rest[:1] == b":":  # a comment line, still arriving: not counted, not kept
                if self._ev_start < 0:
                    self._ev_start = self._pos
                self._pos += len(rest)
                self._in_comment = True
                return
            self._tail, self._tail_len = [rest], len(rest)
            self._overflow(out)
            return
        self._tail, self._tail_len = [rest], len(rest)

    # -- fields -------------------------------------------------------------------------------

    def _line(self, line: bytes, n: int, out: list[SSEEvent], at: float | None) -> None:
        """One complete line, whose terminator took ``n - len(line)`` bytes."""
        if self._skipping:
            self._pos += n
            if not line and not self._skip_mid_line:
                self._skipping = False
                self._reset_event()
            self._skip_mid_line = False
            return
        if not line:
            self._pos += n
            self.last_event_id = self._id_buf
            if self._data:
                self._dispatch(out, at)
            else:
                self._reset_event()
            return
        if self._ev_start < 0:
            self._ev_start = self._pos
        if line[:1] == b":":
            self._pos += n  # a comment: ignored, and not counted towards the event's size
            return
        self._size += n
        if self._size > self.max_event_bytes:
            self._size -= n
            self._tail, self._tail_len = [line + b"\n"], n
            self._overflow(out)
            return
        self._pos += n
        self._field(line, n)

    def _field(self, line: bytes, n: int = 0) -> None:
        colon = line.find(b":")
        if colon == 0:
            return  # a comment
        if colon < 0:
            name, value = line, b""
        else:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"id":
            if b"\x00" not in value:
                self._id_buf = _decode(value)[0]
        elif name == b"event":
            self._type = value
        elif name == b"retry":
            if _DIGITS.fullmatch(value):
                self._ev_retry = self.retry = _retry(value)
        else:  # any other field name is ignored, as the spec says -- but counted
            self.unknown_fields += 1
            if self.first_unknown_field is None:
                self.first_unknown_field = (self._pos - n, line[:_KEEP_UNKNOWN])

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, out: list[SSEEvent], at: float | None) -> None:
        data = self._data
        text, bad = _decode(data[0] if len(data) == 1 else b"\n".join(data))
        if self._type:
            etype, bad_type = _decode(self._type)
            bad = bad or bad_type
        else:
            etype = "message"
        out.append(
            _new(
                SSEEvent,
                (text, etype, self._id_buf, self._ev_retry, self._ev_start, at, bad, False),
            )
        )
        self._reset_event()

    def _reset_event(self) -> None:
        self._data = []
        self._type = b""
        self._ev_retry = None
        self._size = 0
        self._ev_start = -1

    def _overflow(self, out: list[SSEEvent]) -> None:
        """The event outgrew the limit: report a placeholder, drop it, skip to its end."""
        start = self._ev_start if self._ev_start >= 0 else self._pos
        etype = _decode(self._type)[0] if self._type else "message"
        out.append(_new(SSEEvent, ("", etype, self._id_buf, None, start, None, False, True)))
        self._skip_mid_line = bool(self._tail) and not self._tail[-1].endswith(b"\n")
        self._pos += self._tail_len
        self._tail, self._tail_len = [], 0
        self._reset_event()
        self._skipping = True
