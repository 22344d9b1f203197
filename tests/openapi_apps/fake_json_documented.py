"""A planted-bug app that documents its streams as ``application/json``, FastAPI's default.

A route that returns a ``StreamingResponse`` without ``response_class`` or ``responses`` is
written into the document as ``200: application/json`` -- nothing says it streams.  The tool
runs such an operation only when it is named: ``--operation complete --contract text``.

    POST /v1/complete    complete  {"prompt", "max_tokens"} -> SSE tokens (the ``text`` contract)
        BUG: with max_tokens over CONTEXT the backend sends ``event: error`` ("context window
        exceeded") and then goes on sending tokens, which the contract forbids after an error.
    POST /v1/echo        echo      correct, never flagged.
    POST /v1/transcribe  transcribe  documented as ``text/event-stream``, but its request body
        is ``application/octet-stream`` audio: an operation the tool has no inputs for (it must
        be reported as skipped, with the reason).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from openapi_apps.tally import TALLY

__all__ = ["CONTEXT", "PLANTED", "app"]

CONTEXT = 8
PLANTED = {"POST /v1/complete": f"tokens after event: error when max_tokens > {CONTEXT}"}
NO_CACHE = {"Cache-Control": "no-cache"}

app = FastAPI(title="fake completions (documented as JSON)", version="1.0")


class CompleteRequest(BaseModel):
    prompt: Annotated[str, Field(max_length=200)]
    max_tokens: Annotated[int, Field(ge=1, le=64)] = 4


def _stream(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=NO_CACHE)


async def _complete(prompt: str, max_tokens: int) -> AsyncIterator[str]:
    words = prompt.split() or ["ok"]
    for i in range(max_tokens):
        if i == CONTEXT:
            # The planted bug: the error is reported in-band, but the loop does not stop.
            TALLY.bug("POST /v1/complete")
            yield "event: error\ndata: context window exceeded\n\n"
        yield f"data: {words[i % len(words)]}\n\n"


@app.post("/v1/complete", operation_id="complete")
async def complete(req: CompleteRequest) -> StreamingResponse:
    TALLY.hit("POST /v1/complete")
    return _stream(_complete(req.prompt, req.max_tokens))


class EchoRequest(BaseModel):
    text: Annotated[str, Field(max_length=200)]


async def _echo(text: str) -> AsyncIterator[str]:
    for word in text.split()[:20]:
        yield f"data: {word}\n\n"


@app.post("/v1/echo", operation_id="echo")
async def echo(req: EchoRequest) -> StreamingResponse:
    return _stream(_echo(req.text))


AUDIO: dict[str, Any] = {
    "x-stream-contract": "text",
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}


@app.post(
    "/v1/transcribe",
    operation_id="transcribe",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The transcript as server-sent events",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
    openapi_extra=AUDIO,
)
async def transcribe(request: Request) -> StreamingResponse:
    audio = await request.body()
    return _stream(_echo(f"{len(audio)} bytes"))
