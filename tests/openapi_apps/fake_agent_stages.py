"""A planted-bug app: a roadmap generator streaming agent stages (the ``agent-stages`` contract).

    POST /api/v1/roadmaps/generate-stream  generateRoadmapStream  {"goals": [str], "level"}
        BUG: with more than GOALS_PER_PAGE goals the final ``done`` event is never sent (the
        summary is written only when every goal fits on one page).  No ``x-stream-contract``:
        the tests name the contract with ``--contract generateRoadmapStream=agent-stages``.
    POST /api/v1/roadmaps/outline-stream   outlineRoadmapStream   correct, never flagged.
    POST /api/v1/roadmaps/preview-stream   previewRoadmapStream   correct for valid requests,
        but a request without the required "goals" (or with an empty list) is answered with a
        normal stream instead of a 422 (``openapi.invalid-input-accepted``).

The streams use FastAPI's own SSE support (``response_class=EventSourceResponse`` and
``yield``), so the document carries the ``itemSchema`` FastAPI writes for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, Field

from openapi_apps.tally import TALLY

__all__ = ["GOALS_PER_PAGE", "PLANTED", "app"]

GOALS_PER_PAGE = 3
GENERATE = "POST /api/v1/roadmaps/generate-stream"
PLANTED = {
    "POST /api/v1/roadmaps/generate-stream": (
        f"no terminal done event when there are more than {GOALS_PER_PAGE} goals"
    ),
    "POST /api/v1/roadmaps/preview-stream": "a missing or empty goals list is streamed, not 422",
}
AGENT_STAGES: dict[str, Any] = {"x-stream-contract": "agent-stages"}
Event = dict[str, Any]

app = FastAPI(title="fake roadmap generator", version="1.0")


class RoadmapRequest(BaseModel):
    goals: list[str] = Field(min_length=1, max_length=8)
    level: Literal["beginner", "intermediate", "advanced"] = "beginner"


class OutlineRequest(BaseModel):
    topic: str = Field(min_length=1, max_length=100)
    depth: int = Field(default=2, ge=1, le=5)


def _stage(agent: str, text: str, result: dict[str, Any]) -> list[Event]:
    return [
        {"type": "chunk", "content": text, "agent": agent},
        {"type": "complete", "data": result, "agent": agent},
    ]


async def _roadmap(goals: list[str], level: str) -> AsyncIterator[Event]:
    for event in _stage("intent_analyzer", f"{len(goals)} goals", {"level": level}):
        yield event
    for page in range(0, len(goals), GOALS_PER_PAGE):
        for i, goal in enumerate(goals[page : page + GOALS_PER_PAGE], start=page):
            for event in _stage(f"goal_planner_{i}", goal, {"goal": goal}):
                yield event
        if page + GOALS_PER_PAGE >= len(goals) and page == 0:
            # The planted bug: the summary is written when the last page is the first one.
            yield {"type": "done", "summary": {"stages": len(goals) + 1}}
            return
    TALLY.bug(GENERATE)


@app.post(
    "/api/v1/roadmaps/generate-stream",
    operation_id="generateRoadmapStream",
    response_class=EventSourceResponse,
)
async def generate_roadmap_stream(req: RoadmapRequest) -> AsyncIterator[Event]:
    TALLY.hit(GENERATE)
    async for event in _roadmap(req.goals, req.level):
        yield event


async def _outline(topic: str, depth: int) -> AsyncIterator[Event]:
    for event in _stage("intent_analyzer", topic, {"topic": topic}):
        yield event
    for level in range(depth):
        for event in _stage(f"curriculum_architect_{level}", f"level {level}", {"n": level}):
            yield event
    yield {"type": "done", "summary": {"stages": depth + 1}}


@app.post(
    "/api/v1/roadmaps/outline-stream",
    operation_id="outlineRoadmapStream",
    response_class=EventSourceResponse,
    openapi_extra=AGENT_STAGES,
)
async def outline_roadmap_stream(req: OutlineRequest) -> AsyncIterator[Event]:
    async for event in _outline(req.topic, req.depth):
        yield event


PREVIEW: dict[str, Any] = {
    **AGENT_STAGES,
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["goals"],
                    "properties": {
                        "goals": {
                            "type": "array",
                            "items": {"type": "string", "maxLength": 50},
                            "minItems": 1,
                            "maxItems": 3,
                        }
                    },
                }
            }
        },
    },
}


async def _preview_goals(request: Request) -> list[str]:
    try:
        body = await request.json()
    except ValueError:  # no body at all: treated like an empty object (and so accepted)
        body = {}
    # The planted negative-testing bug: a missing (or empty) goals list falls back to a default
    # instead of being refused.  Everything else is checked as the document says.
    goals = (body.get("goals") if isinstance(body, dict) else None) or ["general"]
    if not (
        isinstance(goals, list)
        and len(goals) <= 3
        and all(isinstance(g, str) and len(g) <= 50 for g in goals)
    ):
        raise HTTPException(422, "goals: a list of at most 3 strings of at most 50 characters")
    return goals


@app.post(
    "/api/v1/roadmaps/preview-stream",
    operation_id="previewRoadmapStream",
    response_class=EventSourceResponse,
    responses={422: {"description": "Validation Error"}},
    openapi_extra=PREVIEW,
)
async def preview_roadmap_stream(
    goals: Annotated[list[str], Depends(_preview_goals)],
) -> AsyncIterator[Event]:
    async for event in _roadmap(goals, "beginner"):
        yield event
