"""A planted-bug app: an Ollama-style NDJSON backend (the ``ollama`` contract).

POST /api/generate  generate  {"model", "prompt", "num_predict"} -> chunks, one final line
    BUG: a negative num_predict ("until the context is full", as Ollama's -1 means) sends
    one chunk and then hangs (sleeps an hour): the idle timeout must catch it.
POST /api/chat      chat      correct, never flagged.
POST /api/pull      pull      correct lines, but sent as ``application/json`` although the
    document says ``application/x-ndjson`` (``openapi.content-type``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from openapi_apps.tally import TALLY

__all__ = ["HANG_SECONDS", "PLANTED", "app"]

HANG_SECONDS = 3600.0
PLANTED = {
    "POST /api/generate": "hangs after the first line when num_predict < 0",
    "POST /api/pull": "application/json on the wire, application/x-ndjson in the document",
}
OLLAMA: dict[str, Any] = {"x-stream-contract": "ollama"}
CREATED = "2026-12-02T10:00:00Z"
NO_CACHE = {"Cache-Control": "no-cache"}

app = FastAPI(title="fake ollama", version="1.0")


def _ndjson(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {"application/x-ndjson": {"schema": {"type": "object"}}},
        }
    }


def _line(obj: object) -> str:
    return json.dumps(obj) + "\n"


def _final(model: str, count: int, reason: str, **extra: Any) -> str:
    return _line(
        {
            "model": model,
            "created_at": CREATED,
            "done": True,
            "done_reason": reason,
            "total_duration": 1000 * (count + 1),
            "eval_count": count,
            "eval_duration": 1000 * count,
            **extra,
        }
    )


class GenerateRequest(BaseModel):
    model: Annotated[str, Field(min_length=1, max_length=40)]
    prompt: Annotated[str, Field(max_length=200)] = ""
    num_predict: int = 8


async def _generate(model: str, prompt: str, num_predict: int) -> AsyncIterator[str]:
    words = prompt.split() or ["ok"]
    yield _line({"model": model, "created_at": CREATED, "response": words[0], "done": False})
    if num_predict < 0:
        # The planted bug: "generate until the context is full" never ends on this backend.
        TALLY.bug("POST /api/generate")
        await asyncio.sleep(HANG_SECONDS)
    count = min(max(num_predict, 1), 20)
    for i in range(1, count):
        word = words[i % len(words)]
        yield _line({"model": model, "created_at": CREATED, "response": word, "done": False})
    yield _final(model, count, "length" if num_predict > count else "stop", response="")


@app.post(
    "/api/generate",
    operation_id="generate",
    response_class=StreamingResponse,
    responses=_ndjson("NDJSON: chunks, then one done line"),
    openapi_extra=OLLAMA,
)
async def generate(req: GenerateRequest) -> StreamingResponse:
    TALLY.hit("POST /api/generate")
    body = _generate(req.model, req.prompt, req.num_predict)
    return StreamingResponse(body, media_type="application/x-ndjson", headers=NO_CACHE)


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(max_length=200)]


class ChatRequest(BaseModel):
    model: Annotated[str, Field(min_length=1, max_length=40)]
    messages: Annotated[list[Message], Field(min_length=1, max_length=5)]


async def _chat(model: str, messages: list[Message]) -> AsyncIterator[str]:
    words = messages[-1].content.split()[:10] or ["..."]
    for word in words:
        message = {"role": "assistant", "content": word}
        yield _line({"model": model, "created_at": CREATED, "message": message, "done": False})
    end = {"role": "assistant", "content": ""}
    yield _final(model, len(words), "stop", message=end)


@app.post(
    "/api/chat",
    operation_id="chat",
    response_class=StreamingResponse,
    responses=_ndjson("NDJSON chat chunks, then one done line"),
    openapi_extra=OLLAMA,
)
async def chat(req: ChatRequest) -> StreamingResponse:
    body = _chat(req.model, req.messages)
    return StreamingResponse(body, media_type="application/x-ndjson", headers=NO_CACHE)


class PullRequest(BaseModel):
    model: Annotated[str, Field(min_length=1, max_length=40)]


async def _pull(model: str) -> AsyncIterator[str]:
    for status in ("pulling manifest", f"pulling {len(model)} layers", "success"):
        yield _line({"status": status})


@app.post(
    "/api/pull",
    operation_id="pull",
    response_class=StreamingResponse,
    responses=_ndjson("NDJSON progress lines"),
)
async def pull(req: PullRequest) -> StreamingResponse:
    # The planted bug: the wrong media type (a copy-paste of FastAPI's JSON default).
    return StreamingResponse(_pull(req.model), media_type="application/json", headers=NO_CACHE)
