"""The ollama contract (NDJSON) against the real ``ollama`` Python client, both served by uvicorn
on 127.0.0.1: what the contract accepts the client reads, and streams the client chokes on the
contract rejects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from harness._core.options import CheckOptions
from harness._runners.check import check
from tests.http_fixtures import serving

ollama = pytest.importorskip("ollama", reason="the ollama client is in the dev extra")

MODEL = "llama3.2"
AT = "2026-12-02T10:00:00.000000Z"
FINAL_COUNTS = {
    "done_reason": "stop",
    "total_duration": 4_883_583_458,
    "load_duration": 1_334_875,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 342_546_000,
    "eval_count": 3,
    "eval_duration": 4_535_599_000,
}


def chat_chunk(text: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "created_at": AT,
        "message": {"role": "assistant", "content": text},
        "done": False,
    }


def chat_final() -> dict[str, Any]:
    return {
        "model": MODEL,
        "created_at": AT,
        "message": {"role": "assistant", "content": ""},
        "done": True,
        **FINAL_COUNTS,
    }


def gen_chunk(text: str) -> dict[str, Any]:
    return {"model": MODEL, "created_at": AT, "response": text, "done": False}


def gen_final() -> dict[str, Any]:
    return {"model": MODEL, "created_at": AT, "response": "", "done": True, **FINAL_COUNTS}


def lines(*values: object) -> list[bytes]:
    return [v if isinstance(v, bytes) else json.dumps(v).encode() + b"\n" for v in values]


TOKENS = ["Hel", "lo", " 世界"]
STREAMS: dict[str, list[bytes]] = {
    "chat": lines(*map(chat_chunk, TOKENS), chat_final()),
    "generate": lines(*map(gen_chunk, TOKENS), gen_final()),
    "error": lines(chat_chunk("Hel"), {"error": "model runner has unexpectedly stopped"}),
    # broken, each in one way:
    "no-message": lines(
        chat_chunk("Hel"), {"model": MODEL, "created_at": AT, "done": False}, chat_final()
    ),
    "not-json": lines(chat_chunk("Hel"), b"data: {}\n", chat_final()),
    "no-final": lines(*map(chat_chunk, TOKENS)),
    "two-finals": lines(chat_chunk("Hel"), chat_final(), chat_final()),
    "no-done-reason": lines(
        chat_chunk("Hel"), {k: v for k, v in chat_final().items() if k != "done_reason"}
    ),
    "model-changed": lines(chat_chunk("Hel"), {**chat_final(), "model": "other"}),
}


async def serve(request: Request) -> Response:
    name = request.query_params.get("s") or request.path_params.get("name", "")
    if request.url.path.startswith("/api/"):  # the client's own URL: the stream is in a header
        name = request.headers.get("x-stream", "chat")

    async def body() -> AsyncIterator[bytes]:
        for line in STREAMS[name]:
            yield line

    return StreamingResponse(
        body(), media_type="application/x-ndjson", headers={"Cache-Control": "no-cache"}
    )


APP = Starlette(
    routes=[
        Route("/s/{name}", serve, methods=["GET", "POST"]),
        Route("/api/chat", serve, methods=["POST"]),
        Route("/api/generate", serve, methods=["POST"]),
    ]
)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serving(APP) as url:
        yield url


def rules(base: str, name: str) -> list[str]:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    result = check(f"{base}/s/{name}", CheckOptions(contract="ollama", body=body))
    return sorted({v.rule for v in result.violations})


@pytest.fixture
def client(base: str) -> Iterator[Any]:
    """``client(stream)``: a real ollama.Client whose requests get that stream; all closed."""
    made: list[Any] = []

    def make(stream: str) -> Any:
        made.append(ollama.Client(host=base, headers={"x-stream": stream}))
        return made[-1]

    yield make
    for c in made:
        c._client.close()


@pytest.mark.parametrize("name", ["chat", "generate", "error"])
def test_ollama_contract_when_stream_conforms_then_no_violation(base: str, name: str) -> None:
    assert rules(base, name) == []


def test_ollama_client_when_chat_conforms_then_reads_every_token(client: Any) -> None:
    parts = list(client("chat").chat(model=MODEL, messages=[], stream=True))
    assert "".join(p.message.content or "" for p in parts) == "".join(TOKENS)
    assert parts[-1].done and parts[-1].done_reason == "stop" and parts[-1].eval_count == 3


def test_ollama_client_when_generate_conforms_then_reads_every_token(client: Any) -> None:
    parts = list(client("generate").generate(model=MODEL, prompt="hi", stream=True))
    assert "".join(p.response or "" for p in parts) == "".join(TOKENS)


def test_ollama_client_when_error_line_then_raises_what_the_contract_calls_failure(
    base: str, client: Any
) -> None:
    with pytest.raises(ollama.ResponseError, match="unexpectedly stopped"):
        list(client("error").chat(model=MODEL, messages=[], stream=True))
    result = check(f"{base}/s/error", CheckOptions(contract="ollama"))
    assert result.failure is not None and "unexpectedly stopped" in (result.failure.message or "")


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("no-message", "event.schema"),
        ("not-json", "ndjson.not-json"),
        ("no-final", "seq.terminal"),
        ("two-finals", "seq.after-terminal"),
        ("no-done-reason", "event.schema"),
        ("model-changed", "field.constant"),
    ],
)
def test_ollama_contract_when_stream_broken_then_its_rule(base: str, name: str, rule: str) -> None:
    assert rules(base, name) == [rule]


@pytest.mark.parametrize("name", ["no-message", "not-json"])
def test_ollama_client_chokes_on_streams_the_contract_rejects(client: Any, name: str) -> None:
    with pytest.raises(ValueError) as caught:  # pydantic's ValidationError, or json's error
        list(client(name).chat(model=MODEL, messages=[], stream=True))
    assert not isinstance(caught.value, ollama.ResponseError)
