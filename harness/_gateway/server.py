"""The reference gateway: a prefab's functions over SSE, served as the prefab guide's gateway
serves them -- ``POST /invoke/{name}`` with ``{"inputs": {...}}``, one ``data: <json>`` event
per yielded item.  ``stream-harness serve`` runs it on uvicorn; it is for trying functions with
curl, a browser or a load test, and it is the server the conformance suites are tested against.

    GET  /healthz             200 {"status": "ok", "functions": N}
    GET  /  and  /functions   the manifest's functions
    POST /invoke/{name}       404 unknown function, 400 body not JSON, 413 body too large,
                              422 inputs that break the manifest, else the event stream

The user's module is imported in this process, unlike in ``check``: the gateway *is* the user's
server, so their code runs where it would in production.

The stream
----------
Each item is sent as ``id: n`` + ``data: <json.dumps(item, ensure_ascii=False, allow_nan=False)>``
and a blank line, n = 0, 1, 2...  The body opens with a ``retry:`` hint; while the function is
slow (no bytes for ``heartbeat`` seconds) a ``: ping`` comment keeps proxies from timing the
connection out.  With ``send_timestamps`` every event is preceded by ``: sent=<time.time()>``,
the moment the gateway wrote it, so a load test can tell server latency from proxy buffering.

The gateway keeps the contract even when the function does not: an exception escaping the
generator ends the stream with one ``error`` event whose ``error_code`` is
``UNHANDLED_EXCEPTION``, an item ``json.dumps`` rejects with one whose code is
``NOT_SERIALIZABLE`` (the generator is then closed), and a function that returns no iterator
with ``NOT_AN_ITERATOR``.  These codes are reserved: the conformance suites read them as the
function's fault (``gen.raised``, ``gen.not-serializable``, ``gen.not-iterator``).  Whatever
else the function yields is forwarded as is -- the reference must not hide a bug.

Sync generators run in a thread pool, so a slow function never blocks the event loop; async
generators run on the loop.  Each item is handed to the stream the moment it is yielded and
sent at once (items that pile up while a write is in progress go out in one write: about
200 000 events/s on one stream, sync or async).  When the client disconnects the generator is
closed -- ``close()`` in a pool thread, ``aclose()`` on the loop -- so its ``finally`` runs:
after the ``next()`` in progress for a sync generator (a thread cannot be interrupted), at its
current ``await`` for an async one.  A ``next()`` that outlasts ``close_wait`` is not waited
for; CPython closes the generator when it returns and the last reference to it goes.

Resuming (``Last-Event-ID: k``) re-runs the function with the same inputs and sends the events
after id k, with their original ids; heartbeats continue while the first k+1 are skipped.  This
assumes a *deterministic* function -- same inputs, same events -- as the examples are; a real
LLM call would resume with different text, and the function runs twice.  It needs no state in
the gateway, so it survives a restart and works behind a load balancer.  (A replay buffer would
only help while the first run is still going, and the first run is closed when its client goes.)
A ``Last-Event-ID`` that is not a number the gateway sent is ignored: the stream starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

import anyio
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from harness._contracts.gateway_codes import (
    NOT_AN_ITERATOR_CODE,
    NOT_SERIALIZABLE_CODE,
    RAISED_CODE,
    gateway_error,
)
from harness._contracts.manifest import FunctionSpec, Manifest, manifest_missing_function
from harness._core.errors import TargetLoadError
from harness._core.text import shorten

__all__ = [
    "NOT_AN_ITERATOR_CODE",
    "NOT_SERIALIZABLE_CODE",
    "RAISED_CODE",
    "GatewayOptions",
    "build_app",
    "load_module",
]

MAX_BODY_BYTES: Final = 10 << 20
_TEXT_LIMIT: Final = 500
_log = logging.getLogger("stream_harness.gateway")


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    #: Seconds without a byte sent before a ``: ping`` comment.
    heartbeat: float = 15.0
    #: The ``retry:`` hint (ms) at the start of every stream: how long a client waits to resume.
    retry_ms: int = 3000
    #: Precede each event with ``: sent=<time.time()>``.
    send_timestamps: bool = False
    #: Threads running sync generators' steps: how many can be inside ``next()`` at once.
    threads: int = 64
    #: Seconds to wait, after a disconnect, for the generator's current step and its ``finally``.
    close_wait: float = 10.0


# -- loading the user's module ----------------------------------------------------------------


def load_module(module: str) -> ModuleType:
    """Import ``module`` -- a path to a ``.py`` file or a dotted name -- in this process.

    A file's folder goes on ``sys.path`` so it can import its siblings, as it would at home.
    Raises :class:`TargetLoadError` (exit 2) with one line on what went wrong.
    """
    from harness._runners.worker import LoadError, _dotted_module, _import_path

    is_path = module.endswith(".py") or "/" in module or os.sep in module
    try:
        return _import_path(os.path.abspath(module)) if is_path else _dotted_module(module)
    except LoadError as e:
        raise TargetLoadError(str(e)) from None


# -- the app ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Function:
    spec: FunctionSpec
    fn: Callable[..., Any] | None  # None: the module has no such function
    validator: Draft202012Validator
    defaults: Mapping[str, Any]


def build_app(
    manifest: Manifest, module: str | ModuleType, options: GatewayOptions | None = None
) -> Starlette:
    """The gateway for ``manifest``'s functions, found in ``module`` (imported here if a path
    or a dotted name is given).  Functions the manifest lists but the module lacks are logged
    and answered with 501; ``app.state.missing`` lists them."""
    opts = options or GatewayOptions()
    mod = load_module(module) if isinstance(module, str) else module
    shown = module if isinstance(module, str) else mod.__name__
    functions: dict[str, _Function] = {}
    missing: list[str] = []
    for spec in manifest.functions:
        fn = getattr(mod, spec.name, None)
        if not callable(fn):
            fn = None
            missing.append(spec.name)
            _log.warning(
                "manifest.missing-function: %s", manifest_missing_function(spec.name, shown)
            )
        defaults = {p.name: p.schema["default"] for p in spec.parameters if p.has_default}
        functions[spec.name] = _Function(
            spec, fn, Draft202012Validator(spec.inputs_schema()), defaults
        )
    pool = ThreadPoolExecutor(max_workers=opts.threads, thread_name_prefix="gateway-fn")
    gateway = _Gateway(manifest, functions, opts, pool)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = Starlette(
        routes=[
            Route("/healthz", gateway.healthz, methods=["GET"]),
            Route("/", gateway.functions, methods=["GET"]),
            Route("/functions", gateway.functions, methods=["GET"]),
            Route("/invoke/{name}", gateway.invoke, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.missing = missing
    return app


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """Every error the gateway answers is JSON: ``{"error": {"code", "message", ...}}``."""
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return _error(exc.status_code, code, message)


class _Gateway:
    def __init__(
        self,
        manifest: Manifest,
        functions: dict[str, _Function],
        options: GatewayOptions,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.manifest = manifest
        self.by_name = functions
        self.options = options
        self.pool = pool

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "functions": len(self.by_name)})

    async def functions(self, request: Request) -> Response:
        return JSONResponse({"functions": [_describe(f.spec) for f in self.by_name.values()]})

    async def invoke(self, request: Request) -> Response:
        name = request.path_params["name"]
        entry = self.by_name.get(name)
        if entry is None:
            known = ", ".join(self.by_name) or "none"
            return _error(404, "UNKNOWN_FUNCTION", f"no function {name!r} (known: {known})")
        if entry.fn is None:
            return _error(501, "FUNCTION_NOT_FOUND", f"the module has no function {name!r}")
        inputs = await _read_inputs(request)
        if isinstance(inputs, Response):
            return inputs
        problems = _input_problems(entry.validator, inputs)
        if problems:
            message = f"invalid inputs for {name}: " + "; ".join(problems)
            return _error(422, "INVALID_INPUTS", message, details=problems)
        kwargs = {**entry.defaults, **inputs}
        if not entry.spec.streaming:
            return await self._call(entry, entry.fn, kwargs)
        source = _make_source(entry.fn, kwargs, self.pool)
        skip = _last_event_id(request.headers.get("last-event-id"))
        return _EventStream(source, self.options, name, skip)

    async def _call(
        self, entry: _Function, fn: Callable[..., Any], kwargs: dict[str, Any]
    ) -> Response:
        """A function not marked streaming: its return value as ``{"result": ...}``."""
        try:
            if inspect.iscoroutinefunction(fn):
                result = await fn(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self.pool, lambda: fn(**kwargs))
        except Exception as exc:
            _log.warning("%s raised", entry.spec.name, exc_info=exc)
            return _error(500, RAISED_CODE, _exception_text(exc))
        try:
            body = json.dumps({"result": result}, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            hint = " (a generator: mark it streaming)" if inspect.isgenerator(result) else ""
            return _error(500, NOT_SERIALIZABLE_CODE, f"the result is not JSON{hint}: {exc}")
        return Response(body, media_type="application/json")


def _describe(spec: FunctionSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "streaming": spec.streaming,
        "description": spec.description,
        "parameters": [
            {**p.schema, "name": p.name, "type": p.type, "required": p.required}
            for p in spec.parameters
        ],
        "returns": spec.returns,
        "url": f"/invoke/{spec.name}",
    }


async def _read_inputs(request: Request) -> dict[str, Any] | Response:
    """The request's ``inputs`` object, or the error response to send instead.  An empty
    body, or one without ``inputs``, means no inputs."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return _error(413, "BODY_TOO_LARGE", f"the body is over {MAX_BODY_BYTES} bytes")
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as e:
        return _error(
            400, "INVALID_BODY", f'the body is not JSON ({e}); send {{"inputs": {{...}}}}'
        )
    if not isinstance(doc, dict):
        return _error(400, "INVALID_BODY", 'the body must be a JSON object: {"inputs": {...}}')
    inputs = doc.get("inputs", {})
    if not isinstance(inputs, dict):
        kind = type(inputs).__name__
        return _error(422, "INVALID_INPUTS", f"inputs must be a JSON object, not {kind}")
    return inputs


def _input_problems(validator: Draft202012Validator, inputs: dict[str, Any]) -> list[str]:
    errors = sorted(validator.iter_errors(inputs), key=lambda e: list(map(str, e.absolute_path)))
    out = []
    for e in errors:
        where = "inputs" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path
        )
        out.append(f"{where}: {_clip(e.message)}")
    return out


def _last_event_id(header: str | None) -> int:
    """The id to resume after, or -1: ids the gateway sends are decimal counters."""
    if header is None or not header.strip().isdigit():
        return -1
    return int(header.strip())


def _exception_text(exc: BaseException) -> str:
    message = str(exc)
    name = type(exc).__qualname__
    return _clip(f"{name}: {message}" if message else name)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return shorten(text, _TEXT_LIMIT)


# -- running the function ---------------------------------------------------------------------
#
# A source runs the generator one *step* at a time -- up to _STEP_ITEMS items -- and hands
# each item to the loop the moment it is yielded, through a shared list and an asyncio.Event.
# The stream's task drains the list while the step goes on, so a generator that works between
# items has each one sent at once, and one that yields in a tight loop costs a wake-up per
# drained batch, not a thread hop per item.  Steps are what bound the work done ahead of a
# slow client (backpressure) and where a closing stream stops the generator.


class _End:
    """A step's outcome when the generator is exhausted."""


_END: Final = _End()
_STEP_ITEMS: Final = 256

#: How a step ended: None (more to come), _END, or the exception the generator raised.
Outcome = _End | Exception | None


class _NotAnIterator(Exception):
    pass


class _Source:
    """What both kinds of generator share: the items yielded and not yet taken."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()  # set when items arrive or a step ends
        self._items: list[Any] = []
        self._lock = threading.Lock()
        self._closing = False

    def take(self) -> list[Any]:
        with self._lock:
            items, self._items = self._items, []
        return items

    def step(self) -> asyncio.Future[Outcome]:
        """Start the next step; its future never raises (an exception is its outcome)."""
        future = self._start_step()
        future.add_done_callback(lambda _: self.ready.set())
        return future

    def _start_step(self) -> asyncio.Future[Outcome]:
        raise NotImplementedError

    async def close(self, pending: asyncio.Future[Outcome] | None) -> None:
        """Close the generator (its ``finally`` runs), once ``pending`` has stopped."""
        raise NotImplementedError


def _make_source(
    fn: Callable[..., Any], kwargs: dict[str, Any], pool: ThreadPoolExecutor
) -> _Source:
    if inspect.isasyncgenfunction(fn):
        return _AsyncSource(fn, kwargs)
    return _SyncSource(fn, kwargs, pool)


class _SyncSource(_Source):
    """A sync generator, its steps in the pool: the call itself runs there too, as a function
    returning an iterator may do its work before returning."""

    def __init__(
        self, fn: Callable[..., Any], kwargs: dict[str, Any], pool: ThreadPoolExecutor
    ) -> None:
        super().__init__()
        self._fn, self._kwargs, self._pool = fn, kwargs, pool
        self._it: Iterator[Any] | None = None
        self._loop = asyncio.get_running_loop()

    def _start_step(self) -> asyncio.Future[Outcome]:
        return self._loop.run_in_executor(self._pool, self._run_step)

    def _run_step(self) -> Outcome:  # in a pool thread
        try:
            if self._it is None:
                self._it = self._call()
            for _ in range(_STEP_ITEMS):
                if self._closing:
                    return None
                item = next(self._it)
                with self._lock:
                    wake = not self._items  # else a wake-up is on its way already
                    self._items.append(item)
                if wake:
                    self._loop.call_soon_threadsafe(self.ready.set)
            return None
        except StopIteration:
            return _END
        except Exception as exc:
            return exc

    def _call(self) -> Iterator[Any]:
        result = self._fn(**self._kwargs)
        if inspect.iscoroutine(result):
            result.close()  # never awaited: say so in the error event, not in a warning
            raise _NotAnIterator("an async def function without yield returned a coroutine")
        if not isinstance(result, Iterator):
            raise _NotAnIterator(f"it returned {type(result).__name__}, not an iterator")
        return result

    async def close(self, pending: asyncio.Future[Outcome] | None) -> None:
        self._closing = True  # the step stops before its next item
        if pending is not None:
            await asyncio.wait({pending})  # a next() in progress cannot be interrupted
        close = getattr(self._it, "close", None)
        if close is not None:
            await self._loop.run_in_executor(self._pool, close)


class _AsyncSource(_Source):
    """An async generator, on the loop; each step is a task, so that the stream's task can
    wait for items with a timeout (heartbeats) without cancelling the generator."""

    def __init__(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        super().__init__()
        self._fn, self._kwargs = fn, kwargs
        self._agen: Any = None

    def _start_step(self) -> asyncio.Future[Outcome]:
        return asyncio.ensure_future(self._run_step())

    async def _run_step(self) -> Outcome:
        try:
            if self._agen is None:
                self._agen = self._fn(**self._kwargs)  # here, so a TypeError is an event
            for _ in range(_STEP_ITEMS):
                item = await self._agen.__anext__()
                self._items.append(item)  # after the await: take() may swap the list meanwhile
                self.ready.set()
            return None
        except StopAsyncIteration:
            return _END
        except Exception as exc:
            return exc

    async def close(self, pending: asyncio.Future[Outcome] | None) -> None:
        if pending is not None:
            pending.cancel()  # once: the generator's finally may await what it likes
            await asyncio.wait({pending})
        if self._agen is not None:
            await self._agen.aclose()


# -- the response -----------------------------------------------------------------------------

_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class _EventStream(Response):
    """The SSE response.  Written as a plain ASGI callable rather than a StreamingResponse so
    that one task owns the generator from the first step to its close, and heartbeats can be
    sent while a step is still running."""

    def __init__(self, source: _Source, options: GatewayOptions, name: str, skip: int) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = list(_HEADERS)
        self._source, self._options, self._name, self._skip = source, options, name, skip
        self._last_write = 0.0
        self._index = 0  # the id of the next event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        gone = False
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                nonlocal gone
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone = True
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            try:
                await self._pump(send)
            except OSError:  # servers on ASGI spec 2.4 raise on a send to a closed client
                gone = True
            tg.cancel_scope.cancel()
        if not gone:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, send: Send, data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})
        self._last_write = time.monotonic()

    async def _pump(self, send: Send) -> None:
        """Run the generator and send its items, until it ends or the client goes."""
        await self._write(send, b"retry: %d\n\n" % self._options.retry_ms)
        source = self._source
        pending: asyncio.Future[Outcome] | None = None
        try:
            while True:
                if pending is None:
                    pending = source.step()
                source.ready.clear()
                items = source.take()
                outcome: Outcome = None
                if not items:
                    if not pending.done():
                        await self._idle(source.ready, send)
                        continue
                    outcome, pending = pending.result(), None
                    items = source.take()  # whatever came just before the step ended
                stop = await self._send_items(send, items, outcome)
                if stop:
                    return
        finally:
            with anyio.move_on_after(self._options.close_wait, shield=True) as scope:
                await source.close(pending)
            if scope.cancelled_caught:
                _log.warning(
                    "%s: the generator was not closed within %g s of the stream ending",
                    self._name,
                    self._options.close_wait,
                )

    async def _send_items(self, send: Send, items: list[Any], outcome: Outcome) -> bool:
        """Frame and send ``items`` (one write), then the error event ``outcome`` calls for;
        True when the stream ends here."""
        frames: list[bytes] = []
        for item in items:
            try:
                data = json.dumps(item, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError, RecursionError) as exc:
                text = _clip(f"item #{self._index} cannot be sent as JSON: {exc}")
                frames.append(self._error(text, NOT_SERIALIZABLE_CODE))
                outcome = _END  # the stream stops here; _pump closes the generator
                break
            frames.append(self._frame(data))
        else:
            if isinstance(outcome, _NotAnIterator):
                frames.append(self._error(str(outcome), NOT_AN_ITERATOR_CODE))
            elif isinstance(outcome, Exception):
                message = "%s raised; the stream ends with an error event"
                _log.warning(message, self._name, exc_info=outcome)
                frames.append(self._error(_exception_text(outcome), RAISED_CODE))
        body = b"".join(frames)
        if body:
            await self._write(send, body)
        return outcome is not None

    async def _idle(self, ready: asyncio.Event, send: Send) -> None:
        """Wait for items, sending a heartbeat whenever nothing was sent for a while."""
        beat = self._options.heartbeat
        while not ready.is_set():
            timeout = max(0.0, self._last_write + beat - time.monotonic())
            try:
                await asyncio.wait_for(ready.wait(), timeout)
            except TimeoutError:
                await self._write(send, b": ping\n\n")

    def _frame(self, data: str) -> bytes:
        index, self._index = self._index, self._index + 1
        if index <= self._skip:
            return b""  # resuming: the client has it
        head = f": sent={time.time():.6f}\n" if self._options.send_timestamps else ""
        return f"{head}id: {index}\ndata: {data}\n\n".encode()

    def _error(self, message: str, code: str) -> bytes:
        return self._frame(json.dumps(gateway_error(code, message), ensure_ascii=False))
