"""Streams in each dialect, and a fake LLM server on loopback that serves them to the real SDKs.

``openai_stream`` / ``anthropic_stream`` / ... build conforming event lists that a test then
breaks one way at a time; :func:`sse` turns events into the bytes a server sends.
:class:`FakeLLMApp` answers ``POST /v1/chat/completions`` (OpenAI) and ``POST /v1/messages``
(Anthropic) with whatever bytes were registered under the request's ``model``, so a test can
point the real ``openai`` / ``anthropic`` client at it (``base_url`` on 127.0.0.1, a dummy key,
no other network) and see whether the SDK consumes a stream or rejects it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from harness._contracts.registry import get_checker
from harness._core.session import CheckResult, StreamSession
from harness._core.sse import SSEEvent

__all__ = [
    "DONE",
    "FakeLLMApp",
    "anthropic_stream",
    "check_bytes",
    "check_events",
    "openai_chunk",
    "openai_stream",
    "sse",
    "summary",
]

#: An event given to :func:`sse`: a JSON value or raw text as data, optionally with a name.
Event = Any
DONE = "[DONE]"


def _data(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def sse(events: Iterable[Event]) -> bytes:
    """The bytes of a stream: ``("name", data)`` pairs get an ``event:`` line; data may be
    a JSON value or raw text (one ``data:`` line per text line)."""
    out = []
    for item in events:
        name, data = item if isinstance(item, tuple) else (None, item)
        head = f"event: {name}\n" if name is not None else ""
        lines = "".join(f"data: {line}\n" for line in _data(data).split("\n"))
        out.append(f"{head}{lines}\n")
    return "".join(out).encode()


def to_events(events: Iterable[Event]) -> list[SSEEvent]:
    out = []
    for item in events:
        name, data = item if isinstance(item, tuple) else ("message", item)
        out.append(SSEEvent(_data(data), event=name))
    return out


def check_events(
    contract: str, events: Iterable[Event], *, request: object = None, complete: bool = True
) -> list[tuple[str, int | None]]:
    """``(rule, event index)`` of every violation of a whole stream of ``events``."""
    checker = get_checker(contract, request=request)
    found = []
    for event in to_events(events):
        found += checker.feed(event)
        assert checker.event_type(event)
    found += checker.finish(complete=complete)
    return [(v.rule, v.event_index) for v in found]


def check_bytes(contract: str, body: bytes, *, request: object = None) -> CheckResult:
    """Decode and check raw SSE bytes, as ``check`` does for a recording."""
    session = StreamSession("test", get_checker(contract, request=request), start=0.0)
    session.feed_bytes(body, 0.0)
    return session.finish(0.0)


def summary(result: CheckResult) -> list[tuple[str, int | None]]:
    return [(v.rule, v.event_index) for v in result.violations]


# -- OpenAI chat completions --------------------------------------------------------------------

HEAD: dict[str, Any] = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "test-model",
    "system_fingerprint": None,
}


def openai_chunk(
    delta: dict[str, Any], finish: str | None = None, index: int = 0, **top: Any
) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {**HEAD, "choices": [choice], **top}


def openai_usage(prompt: int = 5, completion: int = 3, total: int | None = None) -> dict[str, Any]:
    total = prompt + completion if total is None else total
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    return {**HEAD, "choices": [], "usage": usage}


def openai_stream(
    tokens: Iterable[str] = ("Hel", "lo", "!"), *, usage: bool = False
) -> list[Event]:
    """A conforming stream as vLLM sends it: role first, content, finish, [usage], [DONE]."""
    events: list[Event] = [openai_chunk({"role": "assistant", "content": ""})]
    events += [openai_chunk({"content": t}) for t in tokens]
    events.append(openai_chunk({}, "stop"))
    if usage:
        events.append(openai_usage())
    events.append(DONE)
    return events


# -- Anthropic messages -------------------------------------------------------------------------


def anthropic_event(name: str, **data: Any) -> tuple[str, dict[str, Any]]:
    return (name, {"type": name, **data})


MESSAGE: dict[str, Any] = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "content": [],
    "model": "claude-test",
    "stop_reason": None,
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 1},
}


def anthropic_stream(blocks: Iterable[list[str]] = (["Hel", "lo"], ["!"])) -> list[Event]:
    """A conforming stream as the Messages API documents it (with a ping)."""
    events: list[Event] = [anthropic_event("message_start", message=MESSAGE)]
    events.append(anthropic_event("ping"))
    for i, texts in enumerate(blocks):
        events.append(
            anthropic_event(
                "content_block_start", index=i, content_block={"type": "text", "text": ""}
            )
        )
        events += [
            anthropic_event("content_block_delta", index=i, delta={"type": "text_delta", "text": t})
            for t in texts
        ]
        events.append(anthropic_event("content_block_stop", index=i))
    events.append(
        anthropic_event(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={"output_tokens": 7},
        )
    )
    events.append(anthropic_event("message_stop"))
    return events


# -- the fake server ----------------------------------------------------------------------------


class FakeLLMApp:
    """Serves registered bytes at the OpenAI (chat, Responses) and Anthropic streaming endpoints,
    by ``model``."""

    def __init__(self) -> None:
        self.streams: dict[str, bytes] = {}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._next = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._serve, methods=["POST"]),
                Route("/v1/messages", self._serve, methods=["POST"]),
                Route("/v1/responses", self._serve, methods=["POST"]),
            ]
        )

    def register(self, body: bytes) -> str:
        """Register a stream; returns the model name that gets it served."""
        with self._lock:
            self._next += 1
            key = f"case-{self._next}"
            self.streams[key] = body
        return key

    async def _serve(self, request: Request) -> Response:
        payload = await request.json()
        self.requests.append(payload)
        body = self.streams.get(str(payload.get("model")))
        if body is None:
            return JSONResponse({"error": {"message": "unknown model"}}, status_code=404)

        async def chunks() -> Any:
            yield body

        return StreamingResponse(
            chunks(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )


@contextmanager
def fake_llm_server() -> Iterator[tuple[str, FakeLLMApp]]:
    """A :class:`FakeLLMApp` served on 127.0.0.1: yields ``(base URL, app)``."""
    from http_fixtures import serving

    fake = FakeLLMApp()
    with serving(fake.app) as url:
        yield url, fake
