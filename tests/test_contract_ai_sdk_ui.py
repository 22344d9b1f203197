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


START = {"type": "tool-input-start", "toolCallId": "c1", "toolName": "weather"}
DELTA = {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '{"city":"Paris"}'}
AVAILABLE = {
    "type": "tool-input-available",
    "toolCallId": "c1",
    "toolName": "weather",
    "input": {"city": "Paris"},
}
OUTPUT = {"type": "tool-output-available", "toolCallId": "c1", "output": {"temperature": 21}}
GOOD = parts(
    {"type": "start", "messageId": "msg_1"},
    {"type": "start-step"},
    {"type": "text-start", "id": "t1"},
    {"type": "text-delta", "id": "t1", "delta": "Hel"},
    {"type": "text-delta", "id": "t1", "delta": "lo 世界"},
    {"type": "text-end", "id": "t1"},
    START,
    DELTA,
    AVAILABLE,
    OUTPUT,
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
    # tool calls: input start -> deltas -> available (or input error) -> output, by toolCallId
    "conforming-tool-not-streamed": parts(
        {"type": "start"}, AVAILABLE, {**OUTPUT, "preliminary": True}, OUTPUT, {"type": "finish"}
    ),
    "conforming-tool-errors": parts(
        {"type": "start"},
        START,
        DELTA,
        {**AVAILABLE, "type": "tool-input-error", "errorText": "not JSON"},
        {"type": "tool-output-error", "toolCallId": "c1", "errorText": "cannot run"},
        {"type": "finish"},
    ),
    "tool-delta-without-start": [p for p in GOOD if p != START],
    "tool-output-without-input": parts({"type": "start"}, OUTPUT, {"type": "finish"}),
    "tool-output-before-input-available": parts(
        {"type": "start"}, START, DELTA, OUTPUT, AVAILABLE, {"type": "finish"}
    ),
    "tool-started-twice": [*GOOD[:8], START, *GOOD[8:]],
    "tool-id-used-twice": [*GOOD[:10], START, AVAILABLE, *GOOD[10:]],
    "tool-input-never-available": parts({"type": "start"}, START, DELTA, {"type": "finish"}),
}
RULES = {
    "tool-delta-without-start": {"span.not-open"},
    "tool-output-without-input": {"span.not-open"},
    "tool-output-before-input-available": {"span.not-closed"},
    "tool-started-twice": {"span.reopened"},
    "tool-id-used-twice": {"span.reopened"},
    "tool-input-never-available": {"span.unclosed"},
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
  const tools = last.parts.filter((p) => p.type.startsWith("tool-"))
    .map((p) => ({ id: p.toolCallId, state: p.state, output: p.output }));
  process.stdout.write(JSON.stringify({ text, tools }));
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


@needs_node
@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("conforming", "output-available"),
        ("conforming-tool-not-streamed", "output-available"),
        ("conforming-tool-errors", "output-error"),
    ],
)
def test_ai_package_when_tool_call_conforms_then_reads_it(name: str, state: str) -> None:
    done = read_with_ai(CASES[name])
    assert done.returncode == 0, done.stderr
    [tool] = json.loads(done.stdout)["tools"]
    assert (tool["id"], tool["state"]) == ("c1", state)


@needs_node
@pytest.mark.parametrize("name", ["tool-delta-without-start", "tool-output-without-input"])
def test_ai_package_fails_on_a_tool_part_without_its_call(name: str) -> None:
    done = read_with_ai(CASES[name])
    assert done.returncode != 0
    assert "c1" in done.stderr  # the SDK's own words name the tool call it cannot find
