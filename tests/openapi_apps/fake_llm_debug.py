"""A planted-bug app: an llm-debug chat backend (the ``llm-debug`` contract, SSE).

    POST /api/debug/chat       debugChat   {"model_id", "prompt", "stream"} -> chunks, final, [DONE]
        BUG: model_id "llama-3-8b" crashes after the first chunk (the stream is cut).
    POST /api/debug/summarize  summarize   correct, never flagged.
    POST /api/debug/chat/raw   debugChatRaw  correct for valid requests, but it reads the JSON
        by hand: a request without "prompt" (or with a non-string one) gets a 500
        (``openapi.invalid-input-response``).

The stream is a ``StreamingResponse`` documented as ``text/event-stream`` through
``responses=``, as FastAPI users write it, and each operation names its contract with the
``x-stream-contract`` extension (``openapi_extra``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from openapi_apps.tally import TALLY

__all__ = ["CRASHING_MODEL", "MODELS", "PLANTED", "app"]

MODELS = ("gpt-4o-mini", "claude-3-haiku", "llama-3-8b", "qwen-7b")
CRASHING_MODEL = "llama-3-8b"
PLANTED = {
    "POST /api/debug/chat": f"crashes mid-stream when model_id is {CRASHING_MODEL!r}",
    "POST /api/debug/chat/raw": "a 500 (not a 422) when prompt is missing or not a string",
}

SSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer as server-sent events (llm-debug)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
NO_CACHE = {"Cache-Control": "no-cache"}
LLM_DEBUG: dict[str, Any] = {"x-stream-contract": "llm-debug"}

app = FastAPI(title="fake llm-debug chat", version="1.0")


class ChatRequest(BaseModel):
    model_id: Literal["gpt-4o-mini", "claude-3-haiku", "llama-3-8b", "qwen-7b"]
    prompt: str
    stream: bool = True


class SummarizeRequest(BaseModel):
    text: str = Field(max_length=2000)
    style: Literal["short", "bullets"] = "short"


def _sse(obj: object) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def _final(model: str, words: list[str]) -> str:
    return _sse(
        {
            "done": True,
            "final_response": {"output": " ".join(words), "model": model},
            "metrics": {"prompt_tokens": len(words), "completion_tokens": len(words)},
            "status": "success",
        }
    )


async def _answer(model: str, prompt: str) -> AsyncIterator[str]:
    words = prompt.split() or ["(empty)"]
    for i, word in enumerate(words[:20]):
        yield _sse({"content": word, "done": False})
        if i == 0 and model == CRASHING_MODEL:
            # The planted bug: this model's tokenizer is "not loaded" -- an exception after the
            # headers and the first chunk went out, so uvicorn cuts the connection.
            TALLY.bug("POST /api/debug/chat")
            raise RuntimeError(f"tokenizer for {model} not loaded")
    yield _final(model, words[:20])
    yield "data: [DONE]\n\n"


def _stream(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=NO_CACHE)


@app.post(
    "/api/debug/chat",
    operation_id="debugChat",
    response_class=StreamingResponse,
    responses=SSE,
    openapi_extra=LLM_DEBUG,
)
async def debug_chat(req: ChatRequest) -> StreamingResponse:
    TALLY.hit("POST /api/debug/chat")
    return _stream(_answer(req.model_id, req.prompt))


async def _summary(text: str, style: str) -> AsyncIterator[str]:
    words = text.split()[:10]
    for word in words:
        yield _sse({"content": ("- " if style == "bullets" else "") + word, "done": False})
    yield _final("summarizer", words)
    yield "data: [DONE]\n\n"


@app.post(
    "/api/debug/summarize",
    operation_id="summarize",
    response_class=StreamingResponse,
    responses=SSE,
    openapi_extra=LLM_DEBUG,
)
async def summarize(req: SummarizeRequest) -> StreamingResponse:
    return _stream(_summary(req.text, req.style))


RAW_BODY: dict[str, Any] = {
    "x-stream-contract": "llm-debug",
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model_id", "prompt"],
                    "properties": {
                        "model_id": {"type": "string", "enum": list(MODELS[:2])},
                        "prompt": {"type": "string", "maxLength": 200},
                    },
                }
            }
        },
    },
}


@app.post(
    "/api/debug/chat/raw",
    operation_id="debugChatRaw",
    response_class=StreamingResponse,
    responses={**SSE, 422: {"description": "Validation Error"}},
    openapi_extra=RAW_BODY,
)
async def debug_chat_raw(request: Request) -> Response:
    # The planted negative-testing bug: the body is read by hand.  model_id is checked (a 422,
    # as FastAPI would), prompt is not: missing, it is a KeyError; a number or a list has no
    # .split() -- both a 500 before the response starts.
    body = await request.json()
    model = body.get("model_id") if isinstance(body, dict) else None
    if model not in MODELS[:2]:
        return JSONResponse({"detail": "model_id: not a known model"}, status_code=422)
    prompt = body["prompt"]
    words = prompt.split()
    if len(prompt) > 200:
        return JSONResponse({"detail": "prompt: at most 200 characters"}, status_code=422)
    return _stream(_answer(model, " ".join(words)))
