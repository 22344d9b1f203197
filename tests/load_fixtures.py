"""A fast, precise fake SSE server for load tests and ``bench/``: raw asyncio, no framework.

Why not the Starlette fake (``fake_servers.py``): a load test needs a server that costs far less
than the client it measures, controls its framing byte for byte (chunked, close-delimited,
Content-Length), and knows *when* it sent each event -- the truth the client's stamps are
compared with.  Each write is stamped with ``time.monotonic()`` as soon as it was handed to the
socket (``CLOCK_MONOTONIC`` is one clock for every process on the machine).

``GET|POST /stream?...`` serves a prefab stream (``start``, ``n`` content events, ``done``, ids
from 1); the query tunes it:

    n=10            content events
    delay_ms=0      wait before the response head
    gap_ms=0        between writes, scheduled on absolute times (no drift)
    batch=1         events per write
    size=0          pad each content event's text to about this many bytes
    framing=chunked chunked | close | length
    sent=0          1: a ``: sent=<unix time>`` comment line before each event
    retry=          a ``retry: <ms>`` line first
    resume=honour   honour | ignore Last-Event-ID (ignore: always from ``start``)
    drop_done_over= omit ``done`` while more than this many streams are open ("under load")
    drop_every=     omit ``done`` from every K-th stream (counted as the server starts them)
    bad_every=      every K-th stream's third content event breaks the schema: its data is an
                    object echoing the request's Authorization header (a server that leaks
                    what it was sent, for the secrets tests)
    sid=            record this stream's send times under this id (bench/tests)

``GET /stats`` answers the counters (and recorded send times) as JSON.  Every stream is bounded
(``n`` and the delays are capped), so every response ends by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeFastServer", "LagProbe", "LoadServer", "running"]

MAX_EVENTS = 200_000
MAX_DELAY_S = 10.0
MAX_RECORDED = 20_000


@dataclass
class Stats:
    started: int = 0
    completed: int = 0
    aborted: int = 0
    inflight: int = 0
    max_inflight: int = 0
    done_dropped: int = 0
    last_event_ids: list[str] = field(default_factory=list)
    #: Every User-Agent a request carried ("" for none).
    user_agents: set[str] = field(default_factory=set)
    #: sid -> [head time, event-write times...] (monotonic seconds)
    sends: dict[str, list[float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "completed": self.completed,
            "aborted": self.aborted,
            "inflight": self.inflight,
            "max_inflight": self.max_inflight,
            "done_dropped": self.done_dropped,
            "resumed": len(self.last_event_ids),
            "user_agents": sorted(self.user_agents),
            "sends": self.sends,
        }


def _event(kind: str, data: Any, event_id: int, sent: bool) -> bytes:
    body = json.dumps({"type": kind, "data": data}, separators=(",", ":"))
    stamp = f": sent={time.time():.6f}\n" if sent else ""
    return f"{stamp}id: {event_id}\ndata: {body}\n\n".encode()


class LoadServer:
    """The server; :func:`running` serves it in a thread, ``python tests/load_fixtures.py``
    in a process of its own (it prints ``PORT <n>``)."""

    def __init__(self) -> None:
        self.stats = Stats()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # (asyncio sets it for plain TCP; over TLS the transport differs)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        target = [*lines[0].split(" "), ""][1]
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        self.stats.user_agents.add(headers.get("user-agent", ""))
        length = int(headers.get("content-length", "0") or 0)
        if length:
            with contextlib.suppress(asyncio.IncompleteReadError):
                await reader.readexactly(length)
        url = urlsplit(target)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path == "/stats":
                await self._stats(writer)
            elif url.path == "/stream":
                await self._stream(writer, q, headers)
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _stats(self, writer: asyncio.StreamWriter) -> None:
        body = json.dumps(self.stats.to_json()).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()

    def _events(
        self, q: dict[str, str], last_id: str | None, headers: dict[str, str], number: int
    ) -> list[tuple[str, Any, int]]:
        n = min(int(q.get("n", 10)), MAX_EVENTS)
        pad = "x" * max(0, int(q.get("size", 0)) - 50)
        events: list[tuple[str, Any, int]] = [("start", {"total": n}, 1)]
        events += [("content", f"tok{i}{pad}", i + 1) for i in range(1, n + 1)]
        if _every(q, "bad_every", number) and n >= 3:
            events[3] = ("content", {"echo": headers.get("authorization", "")}, 4)
        if not _every(q, "drop_every", number + 1):
            events.append(("done", {}, n + 2))
        if last_id is not None and last_id.isdigit() and q.get("resume") != "ignore":
            events = [e for e in events if e[2] > int(last_id)]
        return events

    async def _stream(
        self, writer: asyncio.StreamWriter, q: dict[str, str], headers: dict[str, str]
    ) -> None:
        st = self.stats
        loop = asyncio.get_running_loop()
        last_id = headers.get("last-event-id")
        if last_id is not None:
            st.last_event_ids.append(last_id)
        framing = q.get("framing", "chunked")
        sent = q.get("sent") == "1"
        gap = min(float(q.get("gap_ms", 0)) / 1000.0, MAX_DELAY_S)
        batch = max(1, int(q.get("batch", 1)))
        drop_over = int(q["drop_done_over"]) if "drop_done_over" in q else None
        sid = q.get("sid")
        record: list[float] | None = None
        if sid is not None and len(st.sends) < MAX_RECORDED:
            record = st.sends[sid] = []
        st.started += 1
        number = st.started
        st.inflight += 1
        st.max_inflight = max(st.max_inflight, st.inflight)
        try:
            await asyncio.sleep(min(float(q.get("delay_ms", 0)) / 1000.0, MAX_DELAY_S))
            events = self._events(q, last_id, headers, number)
            pre = b""
            if "retry" in q and last_id is None:
                pre = b"retry: %d\n\n" % int(q["retry"])
            groups = [events[i : i + batch] for i in range(0, len(events), batch)]
            if framing == "length":
                await self._length(writer, pre, groups, sent, gap, record, drop_over)
                return
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            )
            head += "Transfer-Encoding: chunked\r\n" if framing == "chunked" else ""
            head += "Connection: close\r\n\r\n"
            chunked = framing == "chunked"
            t0 = loop.time()
            first = True
            for k, group in enumerate(groups):
                if not first:
                    delay = t0 + k * gap - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if k == len(groups) - 1 and drop_over is not None and st.inflight > drop_over:
                    group = [e for e in group if e[0] != "done"]
                    st.done_dropped += 1
                payload = b"".join(_event(kind, d, i, sent) for kind, d, i in group)
                if first:
                    payload = pre + payload
                data = b"%x\r\n%s\r\n" % (len(payload), payload) if chunked and payload else payload
                if first:
                    data = head.encode() + data
                    first = False
                writer.write(data)  # to the kernel now, unless the socket's buffer is full
                if record is not None:
                    record.append(time.monotonic())
                await writer.drain()
            if chunked:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
            st.completed += 1
        except (ConnectionError, OSError):
            st.aborted += 1
        finally:
            st.inflight -= 1

    async def _length(
        self,
        writer: asyncio.StreamWriter,
        pre: bytes,
        groups: list[list[tuple[str, Any, int]]],
        sent: bool,
        gap: float,
        record: list[float] | None,
        drop_over: int | None,
    ) -> None:
        """Content-Length framing: the body is built up front (so ``sent=`` stamps are the
        build time, not the send time: use another framing to measure server delay)."""
        loop = asyncio.get_running_loop()
        parts = [b"".join(_event(k, d, i, sent) for k, d, i in g) for g in groups]
        parts[0] = pre + parts[0]
        total = sum(map(len, parts))
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            f"Content-Length: {total}\r\nConnection: close\r\n\r\n"
        ).encode()
        t0 = loop.time()
        for k, part in enumerate(parts):
            delay = t0 + k * gap - loop.time()
            if k and delay > 0:
                await asyncio.sleep(delay)
            if record is not None:
                record.append(time.monotonic())
            writer.write(head + part if k == 0 else part)
            await writer.drain()
        self.stats.completed += 1
        del drop_over

    async def serve(
        self,
        sock: socket.socket,
        ready: threading.Event | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        server = await asyncio.start_server(self.handle, sock=sock, backlog=4096, ssl=tls)
        self._server = server
        if ready is not None:
            ready.set()
        async with server:
            await server.serve_forever()


_CONTENT = b'data: {"type": "content", "data": "tok"}\n\n'
_BAD = b'data: {"type": "content", "data": 5}\n\n'
_BATCH = 2000
_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\n\r\n"
)


class FakeFastServer:
    """Loopback SSE server in daemon threads, for streams far longer than LoadServer's (it
    builds each stream up front).  ``/long?n=N``: a prefab stream of N content events, written
    in batches of 2000 as fast as the client reads; with ``&bad=1`` the first event of every
    batch breaks the schema (its data is a number).  ``/short``: a stream of
    one content event whose data is the stream's number, not a string -- an ``event.schema``
    violation whose message differs in every stream.  Counts events and streams written."""

    def __init__(self) -> None:
        self.events = 0  # content events handed to the kernel
        self.streams = 0  # streams written to their end
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(512)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            target = head.split(b" ", 2)[1]
            conn.sendall(_HEAD + b'data: {"type": "start", "data": {"total": 1}}\n\n')
            if target.startswith(b"/short"):
                number = self.streams
                conn.sendall(b'data: {"type": "content", "data": %d}\n\n' % number)
            else:
                n = int(target.partition(b"n=")[2].partition(b"&")[0] or b"2000000")
                batch = _CONTENT * _BATCH
                if b"bad=1" in target:
                    batch = _BAD + _CONTENT * (_BATCH - 1)
                for _ in range(n // _BATCH):
                    if self._stop.is_set():
                        return
                    conn.sendall(batch)
                    self.events += _BATCH
            conn.sendall(b'data: {"type": "done", "data": {"total": 1}}\n\n')
            self.streams += 1

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


class LagProbe:
    """How late this process's threads wake up while the ``with`` block runs: the lateness of
    the fixture servers that run here, measured in the same run as what a test asserts.  A test
    of timings adds it (and the load process's own ``loop_lag_max_ms``) to its margins, so a
    busy machine widens them and an idle one keeps them tight."""

    PERIOD = 0.01

    def __init__(self) -> None:
        self.max_ms = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            time.sleep(self.PERIOD)
            self.max_ms = max(self.max_ms, (time.monotonic() - t - self.PERIOD) * 1000.0)

    def __enter__(self) -> LagProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def slack_ms(self, verdict: dict[str, Any] | None = None) -> float:
        """This process's worst lateness, plus the load process's (from its verdict)."""
        run = (verdict or {}).get("run") or {}
        return self.max_ms + float(run.get("loop_lag_max_ms") or 0.0)


def _every(q: dict[str, str], name: str, number: int) -> bool:
    k = int(q.get(name, 0))
    return k > 0 and number % k == 0


def _bound() -> socket.socket:
    # IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then (see http_fixtures).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    return sock


@contextlib.contextmanager
def running(
    server: LoadServer | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[tuple[str, LoadServer]]:
    """Serve on 127.0.0.1 (a free port) in a daemon thread; yield (base URL, server).  With
    ``tls`` (a server context), over TLS: the URL is https://."""
    server = server or LoadServer()
    sock = _bound()
    port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    task: list[asyncio.Task[None]] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        task.append(loop.create_task(server.serve(sock, ready, tls)))
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task[0])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the load fixture server did not start")
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", server
    finally:
        loop.call_soon_threadsafe(task[0].cancel)
        thread.join(10)
        with contextlib.suppress(Exception):
            # Tasks of streams still open when the server stopped: cancel, let them finish.
            pending = asyncio.all_tasks(loop)
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        sock.close()


def main() -> None:
    """A server process of its own (bench): prints ``PORT <n>``, serves until stdin closes
    or ``--seconds`` pass (bounded: it always stops by itself)."""
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 600
    sock = _bound()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server = LoadServer()

    async def bounded() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.serve(sock), seconds)

    asyncio.run(bounded())


if __name__ == "__main__":
    main()
