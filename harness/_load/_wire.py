"""HTTP/1.1 on the wire, sans-I/O: a request's bytes out, a response's head and body bytes in.

Why our own, and not the client Locust ships: an event stream must reach the decoder the
moment its bytes arrive.  ``FastHttpUser.iter_lines`` reads 1024-byte blocks and waits for each
block to fill, and ``requests``' ``iter_content(None)`` on a close-delimited body waits for the
end; both hold events back by seconds.  Reading the socket ourselves and un-framing here gives
the decoder exactly what each ``recv`` returned, for all three framings a server may pick:
``Transfer-Encoding: chunked``, ``Content-Length``, and a body delimited by closing the
connection.  The parser also never copies more than one partial chunk-size line.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

__all__ = ["Framing", "ProtocolError", "ResponseReader", "build_request"]

_MAX_HEAD: Final = 64 * 1024
_CRLF: Final = b"\r\n"


class ProtocolError(Exception):
    """The response is not HTTP/1.x we can read (the message says what was wrong)."""


class Framing(Enum):
    CHUNKED = "chunked"
    LENGTH = "content-length"
    CLOSE = "close-delimited"


def build_request(
    method: str,
    target: str,
    host: str,
    headers: list[tuple[str, str]],
    body: bytes | None,
) -> bytes:
    """The request's bytes: request line, ``Host``, the headers as given, a length, the body."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class ResponseReader:
    """Feed it what the socket returns; it hands back the body bytes in that data.

    >>> r = ResponseReader()
    >>> r.feed(b"HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhel")
    b'hel'
    >>> r.status, r.framing, r.feed(b"lo\\r\\n0\\r\\n\\r\\n"), r.done
    (200, <Framing.CHUNKED: 'chunked'>, b'lo', True)
    """

    def __init__(self) -> None:
        self.status = 0
        self.reason = ""
        #: Header names lower-cased, in order.
        self.headers: list[tuple[str, str]] = []
        self.framing = Framing.CLOSE
        self.head_done = False
        #: The body is complete (chunked: the last chunk; length: all bytes; close: EOF).
        self.done = False
        self._head = b""
        self._remaining = 0  # body bytes left: of the current chunk, or of the whole body
        self._chunk_state = 0  # 0: size line, 1: data, 2: CRLF after data, 3: trailers
        self._partial = b""  # an unfinished size line / CRLF / trailer line

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def feed(self, data: bytes) -> bytes:
        """The body bytes ``data`` holds (b"" while the head is still coming)."""
        if not self.head_done:
            data = self._feed_head(data)
            if not self.head_done:
                return b""
        if self.done or not data:
            return b""
        if self.framing is Framing.CLOSE:
            return data
        if self.framing is Framing.LENGTH:
            body = data[: self._remaining]
            self._remaining -= len(body)
            self.done = self._remaining == 0
            return body
        return self._dechunk(data)

    def eof(self) -> bool:
        """The connection closed; True if the body was complete (False: cut short)."""
        if self.head_done and self.framing is Framing.CLOSE:
            self.done = True
        return self.done

    # -- head ---------------------------------------------------------------------------------

    def _feed_head(self, data: bytes) -> bytes:
        buf = self._head + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > _MAX_HEAD:
                raise ProtocolError(f"response head larger than {_MAX_HEAD} bytes")
            self._head = buf
            return b""
        self._head = b""
        self._parse_head(buf[:end].decode("latin-1"))
        return buf[end + 4 :]

    def _parse_head(self, text: str) -> None:
        status_line, *lines = text.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:60]!r}")
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        for line in lines:
            name, sep, value = line.partition(":")
            if sep:
                self.headers.append((name.strip().lower(), value.strip()))
        self.head_done = True
        te = (self.header("transfer-encoding") or "").lower()
        length = self.header("content-length")
        if "chunked" in te:
            self.framing = Framing.CHUNKED
        elif length is not None:
            if not length.strip().isdigit():
                raise ProtocolError(f"bad Content-Length {length!r}")
            self.framing = Framing.LENGTH
            self._remaining = int(length)
            self.done = self._remaining == 0
        if self.status in (204, 304) or 100 <= self.status < 200:
            self.done = True

    # -- chunked ------------------------------------------------------------------------------

    def _dechunk(self, data: bytes) -> bytes:
        out: list[bytes] = []
        pos, n = 0, len(data)
        while pos < n and not self.done:
            state = self._chunk_state
            if state == 1:  # chunk data: the common case, one slice
                take = min(self._remaining, n - pos)
                out.append(data[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._chunk_state = 2
                continue
            end = data.find(b"\n", pos)
            if end < 0:
                self._partial += data[pos:]
                if len(self._partial) > 4096:
                    raise ProtocolError("chunk size line too long")
                break
            line = (self._partial + data[pos:end]).rstrip(b"\r")
            self._partial = b""
            pos = end + 1
            if state == 0:
                self._size_line(line)
            elif state == 2:
                if line:
                    raise ProtocolError("missing CRLF after chunk data")
                self._chunk_state = 0
            elif not line:  # state 3: trailers end with an empty line
                self.done = True
        return out[0] if len(out) == 1 else b"".join(out)

    def _size_line(self, line: bytes) -> None:
        size = line.split(b";", 1)[0].strip()
        try:
            self._remaining = int(size, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size[:20]!r}") from None
        self._chunk_state = 1 if self._remaining else 3
