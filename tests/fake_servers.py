"""Fake SSE endpoints for the HTTP runner's tests: one Starlette app, good and broken streams.

:class:`FakeGatewayApp` imitates the prefab gateway (``POST /invoke/{fn}`` with
``{"inputs": {...}}``, ``id: n`` + ``data: {"type": ...}`` events) and serves one scenario per
path under ``/sse/``, each a known way of getting a stream right or wrong.  It is served by a
real uvicorn server on loopback (``tests/http_fixtures.py``), so the runner's timing, chunking
and timeouts meet real sockets.

Every stream is a bounded script -- a list of ``(delay in seconds, bytes)`` -- so every
response ends by itself, and no delay can exceed ``MAX_DELAY``.  Query parameters tune a
scenario: ``n`` progress events, ``gap`` seconds between events, ``delay`` seconds of silence,
``ms`` a retry hint.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["MAX_DELAY", "FakeGatewayApp", "sse_event"]

MAX_DELAY = 5.0
_MAX_EVENTS = 1000
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

Script = list[tuple[float, bytes]]


def sse_event(kind: str, data: Any = None, *, event_id: int | str | None = None) -> bytes:
    """One prefab event as SSE bytes: an optional ``id:`` line, one ``data:`` line, a blank line."""
    obj: dict[str, Any] = {"type": kind}
    if data is not None:
        obj["data"] = data
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}data: {json.dumps(obj)}\n\n".encode()


def prefab_stream(progress: int = 3, *, ids: bool = True) -> list[tuple[int, bytes]]:
    """``start``, ``progress`` x n, ``done``, numbered from 1: ``(id, bytes)`` pairs."""
    kinds = [("start", {"total": progress})]
    kinds += [("progress", {"current": i, "total": progress}) for i in range(1, progress + 1)]
    kinds += [("done", {"success": True})]
    return [(n, sse_event(k, d, event_id=n if ids else None)) for n, (k, d) in enumerate(kinds, 1)]


def _number(request: Request, name: str, default: float, cap: float) -> float:
    try:
        value = float(request.query_params.get(name, default))
    except ValueError:
        value = default
    return max(0.0, min(value, cap))


def _last_id(request: Request) -> int | None:
    value = request.headers.get("last-event-id", "")
    return int(value) if value.isdigit() else None


def _paced(events: Sequence[bytes], gap: float) -> Script:
    return [(gap if i else 0.0, e) for i, e in enumerate(events)]


#: Chunks every fake stream of this process has handed to the server so far: a test waits for
#: it to grow (the client is reading) instead of sleeping a guessed time.
SENT = [0]


async def _play(script: Script) -> AsyncIterator[bytes]:
    for delay, chunk in script:
        if delay:
            await asyncio.sleep(min(delay, MAX_DELAY))
        yield chunk
        SENT[0] += 1


def _stream(
    script: Script, *, media_type: str = "text/event-stream", cache: bool = True
) -> Response:
    headers = dict(SSE_HEADERS) if cache else {"X-Accel-Buffering": "no"}
    return StreamingResponse(_play(script), media_type=media_type, headers=headers)


class FakeGatewayApp(Starlette):
    """A fake prefab gateway and a zoo of fake SSE endpoints (see the module docstring)."""

    def __init__(self) -> None:
        scenarios: dict[str, Callable[[Request], Any]] = {
            "good": self.good,
            "fast": self.fast,
            "paced": self.paced,
            "missing-done": self.missing_done,
            "error-500": self.error_500,
            "unauthorized": self.unauthorized,
            "wrong-type": self.wrong_type,
            "no-cache-control": self.no_cache_control,
            "slow-first-byte": self.slow_first_byte,
            "stall": self.stall,
            "drip": self.drip,
            "buffered": self.buffered,
            "resume-ignore": self.resume_ignore,
            "resume-gap": self.resume_gap,
            "resume-duplicate": self.resume_duplicate,
            "no-ids": self.no_ids,
            "retry": self.retry,
            "truncated": self.truncated,
            "redirect": self.redirect,
            "echo-headers": self.echo_headers,
        }
        routes = [Route("/invoke/{fn}", self.invoke, methods=["POST"])]
        routes += [
            Route(f"/sse/{name}", fn, methods=["GET", "POST", "PUT"])
            for name, fn in scenarios.items()
        ]
        super().__init__(routes=routes)

    # -- good streams -------------------------------------------------------------------------

    async def invoke(self, request: Request) -> Response:
        """The gateway: ``POST /invoke/{fn}`` with ``{"inputs": {...}}``; start echoes both."""
        body = json.loads(await request.body() or b"{}")
        start = {"function": request.path_params["fn"], "inputs": body.get("inputs")}
        events = [sse_event("start", start, event_id=1), sse_event("done", {}, event_id=2)]
        return _stream(_paced(events, 0.0))

    async def good(self, request: Request) -> Response:
        """A correct prefab stream, events ``gap`` s apart, that honours Last-Event-ID."""
        events = self._resumable(request, prefab_stream(int(_number(request, "n", 3, _MAX_EVENTS))))
        return _stream(_paced(events, _number(request, "gap", 0.01, 1.0)))

    async def fast(self, request: Request) -> Response:
        """Everything in one chunk, at once: fast, not buffered."""
        return _stream([(0.0, b"".join(e for _, e in prefab_stream()))])

    async def paced(self, request: Request) -> Response:
        """Events 100 ms apart (``gap``): streaming, however it looks."""
        return _stream(_paced([e for _, e in prefab_stream()], _number(request, "gap", 0.1, 1.0)))

    async def retry(self, request: Request) -> Response:
        """A ``retry:`` hint of ``ms`` milliseconds first, then the good, resumable stream."""
        hint = f"retry: {int(_number(request, 'ms', 300, 60_000))}\n\n".encode()
        events = self._resumable(request, prefab_stream())
        if _last_id(request) is None:
            events = [hint, *events]
        return _stream(_paced(events, 0.01))

    @staticmethod
    def _resumable(request: Request, events: list[tuple[int, bytes]]) -> list[bytes]:
        last = _last_id(request)
        return [e for n, e in events if last is None or n > last]

    # -- broken streams -----------------------------------------------------------------------

    async def missing_done(self, request: Request) -> Response:
        return _stream(_paced([e for _, e in prefab_stream()[:-1]], 0.01))

    async def error_500(self, request: Request) -> Response:
        return JSONResponse({"error": "the model backend is unavailable"}, status_code=500)

    async def unauthorized(self, request: Request) -> Response:
        """A careless 401 that echoes the credential it got."""
        token = request.headers.get("authorization", "")
        return JSONResponse({"detail": f"invalid credentials: {token}"}, status_code=401)

    async def wrong_type(self, request: Request) -> Response:
        return _stream(_paced([e for _, e in prefab_stream()], 0.0), media_type="text/plain")

    async def no_cache_control(self, request: Request) -> Response:
        return _stream(_paced([e for _, e in prefab_stream()], 0.0), cache=False)

    async def slow_first_byte(self, request: Request) -> Response:
        """No response headers for ``delay`` seconds."""
        await asyncio.sleep(_number(request, "delay", 2.0, MAX_DELAY))
        return _stream(_paced([e for _, e in prefab_stream()], 0.0))

    async def stall(self, request: Request) -> Response:
        """Two events, ``delay`` seconds of silence, then the rest."""
        events = [e for _, e in prefab_stream()]
        silence = _number(request, "delay", 3.0, MAX_DELAY)
        return _stream([*_paced(events[:2], 0.0), (silence, events[2]), *_paced(events[3:], 0.0)])

    async def drip(self, request: Request) -> Response:
        """An event every ``gap`` seconds, ``n`` of them: long, never silent."""
        n = int(_number(request, "n", 50, _MAX_EVENTS))
        return _stream(_paced([e for _, e in prefab_stream(n)], _number(request, "gap", 0.1, 1.0)))

    async def buffered(self, request: Request) -> Response:
        """What a buffering proxy delivers: headers at once, ``delay`` s of nothing, one burst."""
        burst = b"".join(e for _, e in prefab_stream())
        return _stream([(_number(request, "delay", 1.0, MAX_DELAY), burst)])

    async def resume_ignore(self, request: Request) -> Response:
        """Ignores Last-Event-ID: always the whole stream from ``start``."""
        return _stream(_paced([e for _, e in prefab_stream()], 0.01))

    async def resume_gap(self, request: Request) -> Response:
        """Resumes one event too far: after Last-Event-ID N comes N + 2."""
        last = _last_id(request)
        events = prefab_stream()
        return _stream(_paced([e for n, e in events if last is None or n > last + 1], 0.01))

    async def resume_duplicate(self, request: Request) -> Response:
        """Resumes *at* Last-Event-ID N instead of after it: event N comes twice."""
        last = _last_id(request)
        events = prefab_stream()
        return _stream(_paced([e for n, e in events if last is None or n >= last], 0.01))

    async def no_ids(self, request: Request) -> Response:
        return _stream(_paced([e for _, e in prefab_stream(ids=False)], 0.01))

    async def truncated(self, request: Request) -> Response:
        """The final event lacks its blank line, so a client discards it (the ``done``)."""
        events = [e for _, e in prefab_stream()]
        return _stream(_paced([*events[:-1], events[-1][:-1]], 0.0))

    async def redirect(self, request: Request) -> Response:
        return RedirectResponse("/sse/good", status_code=302)

    async def echo_headers(self, request: Request) -> Response:
        """``start`` with the method and body, a progress event per request header, ``done``."""
        body = (await request.body()).decode("utf-8", "replace")
        events = [sse_event("start", {"method": request.method, "body": body}, event_id=1)]
        for n, (name, value) in enumerate(request.headers.items(), 2):
            events.append(sse_event("progress", {"name": name, "value": value}, event_id=n))
        events.append(sse_event("done", {}, event_id=len(events) + 1))
        return _stream(_paced(events, 0.0))
