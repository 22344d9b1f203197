"""The ai-sdk-ui contract: the AI SDK's UI message stream (v1), served by uvicorn on 127.0.0.1,
and -- where Node and the ``ai`` npm package are installed -- read by the real ``ai`` package's
``readUIMessageStream``; skipped with the reason where they are not (nothing is downloaded)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from harness._core.options import CheckOptions
from harness._runners.check import check

HEADER = {"x-vercel-ai-ui-message-stream": "v1", "Cache-Control": "no-cache"}


def parts(*items: dict[str, Any]) -> list[dict[str, Any] | str]:
    return [*items, "[DONE]"]


GOOD = parts(
    {"type": "start", "messageId": "msg_1"},
    {"type": "start-step"},
    {"type": "text-start", "id": "t1"},
    {"type": "text-delta", "id": "t1", "delta": "Hel"},
    {"type": "text-delta", "id": "t1", "delta": "lo 世界"},
    {"type": "text-end", "id": "t1"},
    {"type": "tool-input-start", "toolCallId": "c1", "toolName": "weather"},
    {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '{"city":"Paris"}'},
    {
        "type": "tool-input-available",
        "toolCallId": "c1",
        "toolName": "weather",
        "input": {"city": "Paris"},
    },
    {"type": "tool-output-available", "toolCallId": "c1", "output": {"temperature": 21}},
    {"type": "finish-step"},
    {"type": "finish"},
)
CASES: dict[str, list[dict[str, Any] | str]] = {
    "conforming": GOOD,
    "conforming-error": parts(
        {"type": "start"},
        {"type": "text-start", "id": "t1"},
        {"type": "error", "errorText": "boom"},
    ),
    "conforming-data-part": [
        *GOOD[:3],
        {"type": "data-weather", "data": {"city": "Paris"}},
        *GOOD[3:],
    ],
    "delta-without-start": [
        p for p in GOOD if not (isinstance(p, dict) and p["type"] == "text-start")
    ],
    "delta-after-end": [*GOOD[:6], {"type": "text-delta", "id": "t1", "delta": "!"}, *GOOD[6:]],
    "never-ended": [p for p in GOOD if not (isinstance(p, dict) and p["type"] == "text-end")],
    "no-done": GOOD[:-1],
    "no-start": GOOD[1:],
    "delta-not-text": [*GOOD[:3], {"type": "text-delta", "id": "t1", "delta": 5}, *GOOD[4:]],
}
RULES = {
    "delta-without-start": {"span.not-open"},
    "delta-after-end": {"span.not-open"},
    "never-ended": {"span.unclosed"},
    "no-done": {"seq.terminal"},
    "no-start": {"seq.first"},
    "delta-not-text": {"event.schema"},
}


def sse(items: list[dict[str, Any] | str]) -> bytes:
    return b"".join(
        b"data: "
        + (i if isinstance(i, str) else json.dumps(i, ensure_ascii=False)).encode()
        + b"\n\n"
        for i in items
    )


async def serve(request: Request) -> Response:
    name = request.path_params["name"]
    headers = {} if request.query_params.get("bare") else HEADER

    async def body() -> AsyncIterator[bytes]:
        yield sse(CASES[name])

    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serving(Starlette(routes=[Route("/chat/{name}", serve, methods=["GET", "POST"])])) as url:
        yield url


def rules(url: str) -> set[str]:
    return {v.rule for v in check(url, CheckOptions(contract="ai-sdk-ui")).violations if v.is_error}


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("conforming")])
def test_ai_sdk_ui_when_stream_conforms_then_no_error(base: str, name: str) -> None:
    assert rules(f"{base}/chat/{name}") == set()


@pytest.mark.parametrize("name", sorted(RULES))
def test_ai_sdk_ui_when_stream_broken_then_its_rule(base: str, name: str) -> None:
    assert rules(f"{base}/chat/{name}") == RULES[name]


def test_ai_sdk_ui_when_header_missing_then_http_header(base: str) -> None:
    assert rules(f"{base}/chat/conforming?bare=1") == {"http.header"}


# -- the real `ai` package, in Node ------------------------------------------------------------

READER = r"""
const { readUIMessageStream } = require("ai");
const input = require("fs").readFileSync(0, "utf8");
const chunks = input.split("\n\n").filter((b) => b.startsWith("data: "))
  .map((b) => b.slice(6)).filter((d) => d !== "[DONE]").map((d) => JSON.parse(d));
const stream = new ReadableStream({
  start(c) { for (const x of chunks) c.enqueue(x); c.close(); },
});
(async () => {
  let last;
  const messages = readUIMessageStream({ stream, terminateOnError: true });
  for await (const message of messages) last = message;
  const text = last.parts.filter((p) => p.type === "text").map((p) => p.text).join("");
  process.stdout.write(JSON.stringify({ text }));
})().catch((e) => { process.stderr.write(String(e)); process.exit(1); });
"""


def _node_with_ai() -> tuple[str, Path] | None:
    node = shutil.which("node")
    if node is None:
        return None
    for root in (Path(__file__).parent / "node", Path.cwd()):
        if (root / "node_modules" / "ai" / "package.json").is_file():
            return node, root
    return None


NODE = _node_with_ai()
needs_node = pytest.mark.skipif(
    NODE is None,
    reason="needs node and the `ai` npm package in tests/node/node_modules "
    "(cd tests/node && npm install: ai 7.0.173, pinned); not downloaded at test time",
)


def read_with_ai(items: list[dict[str, Any] | str]) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    node, root = NODE
    return subprocess.run(
        [node, "-e", READER],
        input=sse(items).decode(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
    )


@needs_node
def test_ai_package_when_stream_conforms_then_reads_the_text() -> None:
    done = read_with_ai(GOOD)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["text"] == "Hello 世界"


@needs_node
@pytest.mark.parametrize("name", ["delta-without-start", "delta-after-end"])
def test_ai_package_fails_on_a_delta_outside_its_part(name: str) -> None:
    done = read_with_ai(CASES[name])
    assert done.returncode != 0
    assert "text-start" in done.stderr  # the SDK's own words: a text-delta needs its text-start
