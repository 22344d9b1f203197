"""A planted-bug app whose document is OpenAPI 3.2: events checked by ``itemSchema`` alone.

No contract anywhere (no ``x-stream-contract``): the ``itemSchema`` of the
``text/event-stream`` media type is all the tool has.  As OpenAPI 3.2 (section 4.14.4) and
FastAPI's own SSE support write it, the item is the parsed event -- ``{"event", "data", "id",
"retry"}`` -- with the JSON in ``data`` described by ``contentMediaType``/``contentSchema``.

    GET /v2/tokens?text=&upper=   tokens  every word as an ``event: token``, then ``event: end``;
        correct, never flagged.
    GET /v2/words?text=           words   the same, but
        BUG: a word longer than MAX_WORD characters is sent as an ``event: truncated`` item,
        which the itemSchema does not allow (``event`` is one of token, end).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from openapi_apps.tally import TALLY

__all__ = ["ITEM_SCHEMA", "MAX_WORD", "PLANTED", "app"]

MAX_WORD = 10
PLANTED = {"GET /v2/words": f"an event outside the itemSchema for a word over {MAX_WORD} chars"}
TOKEN: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "required": ["token"],
            "properties": {"token": {"type": "string", "minLength": 1}},
        },
        {
            "type": "object",
            "required": ["count"],
            "properties": {"count": {"type": "integer", "minimum": 0}},
        },
    ]
}
ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["token", "end"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": TOKEN,
        },
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "retry": {"type": "integer", "minimum": 0},
    },
}

app = FastAPI(title="fake OpenAPI 3.2 token stream", version="1.0")


async def _events(text: str, upper: bool, cut: int | None) -> AsyncIterator[ServerSentEvent]:
    words = text.split()
    for i, word in enumerate(words[:20]):
        shown = word.upper() if upper else word
        if cut is not None and len(word) > cut:
            # The planted bug: long words get an event name the document does not allow.
            TALLY.bug("GET /v2/words")
            yield ServerSentEvent(event="truncated", data={"token": shown[:cut]}, id=str(i))
        else:
            yield ServerSentEvent(event="token", data={"token": shown}, id=str(i))
    count = min(len(words), 20)
    yield ServerSentEvent(event="end", data={"count": count}, id=str(count))


@app.get("/v2/tokens", operation_id="tokens", response_class=EventSourceResponse)
async def tokens(
    text: Annotated[str, Query(max_length=100)],
    upper: bool = False,
) -> AsyncIterator[ServerSentEvent]:
    async for event in _events(text, upper, None):
        yield event


@app.get("/v2/words", operation_id="words", response_class=EventSourceResponse)
async def words(text: Annotated[str, Query(max_length=100)]) -> AsyncIterator[ServerSentEvent]:
    TALLY.hit("GET /v2/words")
    async for event in _events(text, False, MAX_WORD):
        yield event


def _openapi() -> dict[str, Any]:
    """FastAPI's document, as 3.2, with the item schema above on every event stream."""
    if app.openapi_schema is None:
        doc = FastAPI.openapi(app)
        doc["openapi"] = "3.2.0"
        for item in doc["paths"].values():
            for op in item.values():
                media = op["responses"]["200"]["content"]["text/event-stream"]
                media["itemSchema"] = ITEM_SCHEMA
        app.openapi_schema = doc
    return app.openapi_schema


app.openapi = _openapi  # type: ignore[method-assign]
