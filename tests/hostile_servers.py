"""A hostile HTTP server on 127.0.0.1: raw sockets, no HTTP library, so it can answer in ways no
framework would (a garbage status line, a decompression bomb, a header line of 10 MB).

``hostile_server(reply)`` serves every connection by reading the request head and sending what
``reply(request_head)`` yields (bytes; a float is a pause in seconds), then closing.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator

Reply = Callable[[bytes], Iterable[bytes | float]]
#: In a reply: reset the connection (TCP RST, SO_LINGER 0) instead of closing it.
RESET = -1.0

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
GOOD_BODY = (
    b'event: progress\ndata: {"current": 1, "total": 2}\n\n'
    b'event: content\ndata: {"text": "hi"}\n\n'
    b"event: done\ndata: {}\n\n"
)


@contextlib.contextmanager
def hostile_server(reply: Reply) -> Iterator[str]:
    """Serve ``reply`` on a free port; yields the base URL.  Every connection is closed and the
    thread joined on exit."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            head = b""
            conn.settimeout(10)
            try:
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        return
                    head += data
                for part in reply(head):
                    if stop.is_set():
                        return
                    if part == RESET:
                        linger = struct.pack("ii", 1, 0)
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                        return
                    if isinstance(part, float):
                        stop.wait(part)
                    else:
                        conn.sendall(part)
            except OSError:
                return  # the client went away: that is its right

    def accept() -> None:
        threads = []
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            conns.append(conn)
            t = threading.Thread(target=serve, args=(conn,), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join(5)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        listener.close()
        acceptor.join(10)


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"


def gzip_gzip_bomb(size: int = 1 << 30) -> bytes:
    """``size`` bytes of zeros gzipped twice: a few KB that inflate to ``size`` (the inner
    layer is one 1 MiB member repeated, so making it costs milliseconds)."""
    member = gzip.compress(bytes(1 << 20), 9)
    return gzip.compress(member * (size >> 20), 9)


def fixed(*parts: bytes | float) -> Reply:
    return lambda _head: parts


def now() -> float:
    return time.monotonic()
