"""A small fake prefab gateway for the property tests over HTTP: Starlette, served for real.

``POST /invoke/{name}`` with ``{"inputs": {...}}`` calls the module's function and streams each
yielded item as ``id: n`` + ``data: <json>``.  How it treats inputs the manifest rules out is
the knob the tests turn (``on_invalid``):

    "422"        validate against the manifest; 422 with a JSON error (what a gateway should do)
    "400-text"   validate, but answer 400 with a plain-text body (no JSON reason)
    "none"       no validation: the call is made, and a TypeError becomes a bare 500

An exception inside the generator, or an item that is not JSON, ends the stream where it
happened, as a careless gateway does.  The module is imported into the test process: these
are the repository's own example modules.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from harness._contracts.manifest import Manifest

__all__ = ["ManifestGatewayApp", "import_file"]

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def import_file(path: Path) -> ModuleType:
    name = f"_manifest_gateway_{zlib.crc32(str(path).encode()):08x}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class ManifestGatewayApp(Starlette):
    def __init__(self, manifest: Manifest, module_path: Path, *, on_invalid: str = "422") -> None:
        self.manifest = manifest
        self.module = import_file(module_path)
        self.on_invalid = on_invalid
        self.requests: list[dict[str, Any]] = []
        super().__init__(routes=[Route("/invoke/{name}", self.invoke, methods=["POST"])])

    async def invoke(self, request: Request) -> Response:
        name = request.path_params["name"]
        spec = self.manifest.function(name)
        if spec is None:
            return JSONResponse({"error": f"no function {name!r}"}, status_code=404)
        body = json.loads(await request.body() or b"{}")
        inputs = body.get("inputs", {})
        self.requests.append({"name": name, "inputs": inputs, "headers": dict(request.headers)})
        if self.on_invalid != "none":
            problems = [
                e.message for e in Draft202012Validator(spec.inputs_schema()).iter_errors(inputs)
            ]
            if problems and self.on_invalid == "422":
                return JSONResponse(
                    {"error": "invalid inputs", "detail": problems}, status_code=422
                )
            if problems:
                return PlainTextResponse("bad request", status_code=400)
        try:
            items = getattr(self.module, name)(**inputs)
        except TypeError:
            return PlainTextResponse("Internal Server Error", status_code=500)
        return StreamingResponse(
            _frames(items), media_type="text/event-stream", headers=SSE_HEADERS
        )


async def _frames(items: Iterator[Any]) -> AsyncIterator[bytes]:
    n = 0
    try:
        async for item in iterate_in_threadpool(items):
            try:
                data = json.dumps(item, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError):
                return
            yield f"id: {n}\ndata: {data}\n\n".encode()
            n += 1
    except Exception:
        return
