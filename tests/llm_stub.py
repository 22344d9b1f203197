"""An OpenAI-compatible chat-completions stub that knows its truth: raw asyncio, loopback.

``POST|GET /v1/chat/completions?...`` streams what a real server does -- a role-only chunk at
once (not a token), then ``tokens`` content chunks, the first ``first_ms`` after the request,
then one every ``gap_ms`` (scheduled on absolute times, so there is no drift), a usage chunk
(``usage=1``; its ``completion_tokens`` is ``tokens``, or ``report`` when given: a server whose
count differs from what it sent), and ``[DONE]``.  ``error=CODE`` ends the stream after
``error_after`` tokens (default 0) with an in-band ``{"error": {...}}`` instead: HTTP 200, as a
real overloaded server does.  The request body is echoed back in the first token's text
(``echo=1``), so a test can see which ``--bodies`` line it was sent.

Used by ``tests/test_load_llm.py`` and ``bench/llm_bench.py`` (``python tests/llm_stub.py`` runs
it in a process of its own and prints ``PORT <n>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["LLMStub", "running"]

MAX_TOKENS = 10_000
MAX_MS = 10_000.0


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "stub",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _data(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


class LLMStub:
    def __init__(self) -> None:
        self.requests = 0
        self.bodies: list[bytes] = []
        #: sid -> [first token written, last token written] (monotonic seconds), for the bench.
        self.sends: dict[str, list[float]] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            t0 = asyncio.get_running_loop().time()  # the request is in: the truth's clock
            lines = head.decode("latin-1").split("\r\n")
            target = [*lines[0].split(" "), ""][1]
            length = 0
            for line in lines[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip() or 0)
            body = await reader.readexactly(length) if length else b""
            self.requests += 1
            if len(self.bodies) < 10_000:
                self.bodies.append(body)
            url = urlsplit(target)
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/stats":
                data = json.dumps({"requests": self.requests, "sends": self.sends}).encode()
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                writer.write(head + b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
                await writer.drain()
                return
            await self._stream(writer, q, body, t0)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _stream(
        self, writer: asyncio.StreamWriter, q: dict[str, str], body: bytes, t0: float
    ) -> None:
        loop = asyncio.get_running_loop()
        tokens = min(int(q.get("tokens", 64)), MAX_TOKENS)
        first = min(float(q.get("first_ms", 300)), MAX_MS) / 1000.0
        gap = min(float(q.get("gap_ms", 20)), MAX_MS) / 1000.0
        error = q.get("error")
        error_after = int(q.get("error_after", 0))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )

        async def send(data: bytes) -> None:
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()

        await send(_data(_chunk({"role": "assistant", "content": ""})))
        for i in range(tokens):
            if error is not None and i >= error_after:
                break
            delay = t0 + first + i * gap - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            text = f"t{i} "
            if i == 0 and q.get("echo") == "1":
                text = body.decode("utf-8", "replace")
            await send(_data(_chunk({"content": text})))
            sid = q.get("sid")
            if sid is not None and len(self.sends) < 20_000:
                self.sends.setdefault(sid, []).append(time.monotonic())
        if error is not None:
            await send(_data({"error": {"message": "the stub is overloaded", "type": error,
                                        "code": error}}))  # fmt: skip
        else:
            await send(_data(_chunk({}, "stop")))
            if q.get("usage", "1") == "1":
                reported = int(q.get("report", tokens))
                usage = {"prompt_tokens": 5, "completion_tokens": reported,
                         "total_tokens": 5 + reported}  # fmt: skip
                obj = {**_chunk({}), "choices": [], "usage": usage}
                await send(_data(obj))
        await send(b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def serve(self, sock: socket.socket, ready: threading.Event | None = None) -> None:
        server = await asyncio.start_server(self.handle, sock=sock, backlog=4096)
        if ready is not None:
            ready.set()
        async with server:
            await server.serve_forever()


def _bound() -> socket.socket:
    # IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then (see http_fixtures).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    return sock


@contextlib.contextmanager
def running() -> Iterator[tuple[str, LLMStub]]:
    """Serve on 127.0.0.1 in a daemon thread; yield (base URL, stub)."""
    stub, sock = LLMStub(), _bound()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    tasks: list[asyncio.Task[None]] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        tasks.append(loop.create_task(stub.serve(sock, ready)))
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(tasks[0])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the LLM stub did not start")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", stub
    finally:
        loop.call_soon_threadsafe(tasks[0].cancel)
        thread.join(10)
        with contextlib.suppress(Exception):
            pending = asyncio.all_tasks(loop)
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        sock.close()


def main() -> None:
    """A process of its own (bench): prints ``PORT <n>``; serves ``--seconds`` (default 600)."""
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 600
    sock = _bound()
    print(f"PORT {sock.getsockname()[1]}", flush=True)

    async def bounded() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(LLMStub().serve(sock), seconds)

    asyncio.run(bounded())


if __name__ == "__main__":
    main()
