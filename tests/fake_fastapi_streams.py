"""A small FastAPI app of agent-stages streams, as users write them: the endpoints the suites'
``--stream-url`` checks are pointed at (``tests/test_suites.py``), served by real uvicorn.

    POST /api/v1/roadmaps/generate-stream  {"goal": str}: two agents, chunks, results, done
    POST /api/v1/roadmaps/broken-stream    the same, cut short after the first agent: no done
    GET  /api/v1/roadmaps/stream?goal=...  the good stream, for GET requests
    POST /api/v1/roadmaps/private-stream   the good stream, 401 without ``X-Api-Key: sesame``
    POST /api/v1/roadmaps/cached-stream    the good stream without ``Cache-Control: no-cache``
                                           (http.cache-control: a warning, not an error)

Every stream is a short fixed list of events: each response ends by itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

__all__ = ["API_KEY", "app"]

API_KEY = "sesame"
AGENTS = ("intent_analyzer", "curriculum_architect")


class Roadmap(BaseModel):
    goal: str


def _events(goal: str, *, cut_short: bool = False) -> Iterator[str]:
    for agent in AGENTS:
        for word in (f"planning {goal}", "..."):
            yield _sse({"type": "chunk", "content": word, "agent": agent})
        yield _sse({"type": "complete", "data": {"goal": goal}, "agent": agent})
        if cut_short:
            return
    yield _sse({"type": "done", "summary": {"stages": len(AGENTS)}})


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def _stream(events: Iterator[str], *, cache: str = "no-cache") -> StreamingResponse:
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": cache}
    )


app = FastAPI(title="fake roadmaps")


@app.post("/api/v1/roadmaps/generate-stream")
def generate_stream(body: Roadmap) -> StreamingResponse:
    return _stream(_events(body.goal))


@app.post("/api/v1/roadmaps/broken-stream")
def broken_stream(body: Roadmap) -> StreamingResponse:
    return _stream(_events(body.goal, cut_short=True))


@app.get("/api/v1/roadmaps/stream")
def get_stream(goal: str = "python web") -> StreamingResponse:
    return _stream(_events(goal))


@app.post("/api/v1/roadmaps/private-stream")
def private_stream(
    body: Roadmap, x_api_key: str | None = Header(default=None)
) -> StreamingResponse:
    if x_api_key != API_KEY:
        raise HTTPException(status_code=401, detail="no valid API key")
    return _stream(_events(body.goal))


@app.post("/api/v1/roadmaps/cached-stream")
def cached_stream(body: Roadmap) -> StreamingResponse:
    return _stream(_events(body.goal), cache="max-age=60")
