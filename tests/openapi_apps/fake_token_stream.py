"""A planted-bug app: ``GET`` token streams with query parameters (the ``text`` contract, SSE).

GET /stream?prompt=&n=       streamTokens  the prompt's words, cycled to n tokens
    BUG: an empty (or all-blank) prompt fails after the headers and a first chunk went
    out -- ``words[i % len(words)]`` divides by zero -- so the stream is cut.
GET /stream/count?upto=      countTokens   correct, never flagged (optional X-Trace-Id
    header with a pattern, optional ``session`` cookie).
GET /stream/quota?n=         quotaTokens   correct for n <= QUOTA, then a 429 the document
    does not list (``openapi.undocumented-status``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Cookie, FastAPI, Header, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from openapi_apps.tally import TALLY

__all__ = ["PLANTED", "QUOTA", "app"]

QUOTA = 20
PLANTED = {
    "GET /stream": "a cut stream (an exception after the first chunk) on an empty prompt",
    "GET /stream/quota": f"an undocumented 429 when n > {QUOTA}",
}
TEXT: dict[str, Any] = {"x-stream-contract": "text"}
SSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Tokens as server-sent events",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
NO_CACHE = {"Cache-Control": "no-cache"}

app = FastAPI(title="fake token stream", version="1.0")


def _stream(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=NO_CACHE)


async def _tokens(prompt: str, n: int) -> AsyncIterator[str]:
    yield ": tokens follow\n\n"
    words = prompt.split()
    if not words:
        TALLY.bug("GET /stream")
    for i in range(n):
        # The planted bug: no words (an empty prompt) -> ZeroDivisionError, mid-stream.
        yield f"data: {words[i % len(words)]}\n\n"


@app.get(
    "/stream",
    operation_id="streamTokens",
    response_class=StreamingResponse,
    responses=SSE,
    openapi_extra=TEXT,
)
async def stream_tokens(
    prompt: Annotated[str, Query(max_length=200)],
    n: Annotated[int, Query(ge=1, le=50)] = 5,
) -> StreamingResponse:
    TALLY.hit("GET /stream")
    return _stream(_tokens(prompt, n))


async def _count(upto: int) -> AsyncIterator[str]:
    for i in range(1, upto + 1):
        yield f"data: {i}\n\n"


@app.get(
    "/stream/count",
    operation_id="countTokens",
    response_class=StreamingResponse,
    responses=SSE,
    openapi_extra=TEXT,
)
async def count_tokens(
    upto: Annotated[int, Query(ge=0, le=30)],
    x_trace_id: Annotated[str | None, Header(pattern=r"^[a-z0-9-]{1,16}$")] = None,
    session: Annotated[str | None, Cookie()] = None,
) -> StreamingResponse:
    return _stream(_count(upto))


@app.get(
    "/stream/quota",
    operation_id="quotaTokens",
    response_class=StreamingResponse,
    responses=SSE,
    openapi_extra=TEXT,
)
async def quota_tokens(n: Annotated[int, Query(ge=1, le=50)]) -> Response:
    TALLY.hit("GET /stream/quota")
    if n > QUOTA:
        TALLY.bug("GET /stream/quota")
        # The planted bug: a status the document does not list (only 200 and 422 are).
        return JSONResponse({"detail": "token quota exceeded"}, status_code=429)
    return _stream(_count(n))
