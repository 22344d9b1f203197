"""Serving fake apps for real, and a fake contract checker, for the HTTP runner's tests."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from harness._core.rules import Violation
from harness._core.sse import SSEEvent

__all__ = ["FakeRecordingChecker", "closed_port", "serving"]

_START_WAIT = 10.0
_STOP_WAIT = 10.0


@contextmanager
def serving(app: ASGIApp, lifespan: str = "off") -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yield its base URL.

    The socket is bound here, before the thread starts, so the port is known and nobody else
    can take it.  On exit the server is told to stop; streams still open get one second.
    """
    # IPPROTO_TCP named, as getaddrinfo gives it: asyncio sets TCP_NODELAY on the accepted
    # sockets only then.  Without it Nagle held each keep-alive response ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan=lifespan,  # "on" for apps that start work at startup (the MCP SDK's)
        ws="none",
        http="h11",
        log_config=None,
        log_level="error",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + _START_WAIT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(_STOP_WAIT)
        sock.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class FakeRecordingChecker:
    """A contract checker that reports nothing and remembers every event it was fed."""

    name = "fake-recording"

    def __init__(self) -> None:
        self.events: list[SSEEvent] = []
        self.finished: list[bool] = []

    def feed(self, event: SSEEvent) -> list[Violation]:
        self.events.append(event)
        return []

    def finish(self, complete: bool = True) -> list[Violation]:
        self.finished.append(complete)
        return []

    def event_type(self, event: SSEEvent) -> str:
        try:
            obj = json.loads(event.data)
        except ValueError:
            return event.event
        kind: object = obj.get("type") if isinstance(obj, dict) else None
        return kind if isinstance(kind, str) else event.event

    def json_events(self) -> list[dict[str, object]]:
        out = []
        for event in self.events:
            obj = json.loads(event.data)
            assert isinstance(obj, dict)
            out.append(obj)
        return out
