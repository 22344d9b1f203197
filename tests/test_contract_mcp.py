"""The mcp contract against the real ``mcp`` SDK, both ends, on uvicorn at 127.0.0.1: the SDK's
own server's Streamable HTTP responses conform, and the SDK's client reads what the contract
accepts and fails on streams the contract rejects (crafted answers to ``tools/call``, served
beside the real server, which still does the handshake)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from http_fixtures import serving
from starlette.types import Message, Receive, Scope, Send

from harness._core.options import CheckOptions
from harness._runners.check import check

mcp = pytest.importorskip("mcp", reason="the mcp SDK is in the dev extra")
from mcp.server.mcpserver import MCPServer  # noqa: E402

pytestmark = pytest.mark.timeout(120)

ACCEPT = "application/json, text/event-stream"
VERSION = "2025-06-18"


def build_server() -> MCPServer:
    server = MCPServer("harness-test")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    return server


def frame(*messages: object, priming: bool = False) -> bytes:
    head = b"id: p0\nretry: 1000\ndata:\n\n" if priming else b""
    body = b"".join(
        b"event: message\ndata: "
        + (m if isinstance(m, bytes) else json.dumps(m).encode())
        + b"\n\n"
        for m in messages
    )
    return head + body


def result(rid: object) -> dict[str, Any]:
    content = [{"type": "text", "text": "3"}]
    # resultType: the 2026-07-28 protocol revision the SDK's client negotiates asks for it.
    answer = {
        "content": content,
        "isError": False,
        "resultType": "complete",
        "structuredContent": {"result": 3},
    }
    return {"jsonrpc": "2.0", "id": rid, "result": answer}


PROGRESS = {
    "jsonrpc": "2.0",
    "method": "notifications/progress",
    "params": {"progressToken": 1, "progress": 1},
}
CRAFTED = {
    "conforming": lambda rid: frame(PROGRESS, result(rid), priming=True),
    "conforming-error": lambda rid: frame(
        {"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": "Unknown tool"}}
    ),
    "wrong-id": lambda rid: frame(PROGRESS, result(f"{rid}-other")),
    "no-response": lambda rid: frame(PROGRESS),
    "not-jsonrpc-2": lambda rid: frame({**result(rid), "jsonrpc": "1.0"}),
    "not-json": lambda rid: frame(b"{oops", result(rid)),
    "after-response": lambda rid: frame(result(rid), PROGRESS),
}
RULES = {
    "wrong-id": "field.matches-request",
    "no-response": "seq.terminal",
    "not-jsonrpc-2": "event.schema",
    "not-json": "sse.data-not-json",
    "after-response": "seq.after-terminal",
}


class Crafting:
    """ASGI: the real SDK server at /mcp; at /crafted/<case> the same, except that a
    ``tools/call`` is answered with that case's stream."""

    def __init__(self) -> None:
        self.real = build_server().streamable_http_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/crafted/"):
            await self.real(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body or b"{}")
        if request.get("method") == "tools/call":
            stream = CRAFTED[path.removeprefix("/crafted/")](request.get("id"))
            headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": stream})
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.real({**scope, "path": "/mcp", "raw_path": b"/mcp"}, replay, send)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serving(Crafting(), lifespan="on") as url:
        yield url


CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "tools/call",
    "params": {"name": "add", "arguments": {"a": 1, "b": 2}},
}


def session_headers(url: str) -> tuple[tuple[str, str], ...]:
    """Initialize with the real server (as a client would); the headers of the session."""
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": VERSION,
            "capabilities": {},
            "clientInfo": {"name": "stream-harness-test", "version": "1"},
        },
    }
    headers = {"Accept": ACCEPT, "Content-Type": "application/json"}
    r = httpx.post(url, json=init, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    session = (("Mcp-Session-Id", r.headers["mcp-session-id"]),)
    more = (("MCP-Protocol-Version", VERSION), ("Accept", ACCEPT))
    notified = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    httpx.post(url, json=notified, headers={**headers, **dict(session + more)}, timeout=10)
    return session + more


def rules_of(url: str, headers: tuple[tuple[str, str], ...] = ()) -> list[str]:
    options = CheckOptions(contract="mcp", body=json.dumps(CALL), headers=headers)
    return sorted({v.rule for v in check(url, options).violations})


def test_mcp_contract_when_real_sdk_server_answers_a_tool_call_then_conforms(base: str) -> None:
    url = f"{base}/mcp"
    assert rules_of(url, session_headers(url)) == []


@pytest.mark.parametrize("name", ["conforming", "conforming-error"])
def test_mcp_contract_when_crafted_stream_conforms_then_no_violation(base: str, name: str) -> None:
    assert rules_of(f"{base}/crafted/{name}") == []


@pytest.mark.parametrize("name", sorted(RULES))
def test_mcp_contract_when_stream_broken_then_its_rule(base: str, name: str) -> None:
    assert rules_of(f"{base}/crafted/{name}") == [RULES[name]]


async def client_call(url: str) -> Any:
    async with mcp.Client(url) as client:
        return await asyncio.wait_for(client.call_tool("add", {"a": 1, "b": 2}), 5)


def test_mcp_client_when_stream_conforms_then_reads_the_result(base: str) -> None:
    result = asyncio.run(client_call(f"{base}/crafted/conforming"))
    assert [c.text for c in result.content] == ["3"]


@pytest.mark.parametrize("name", ["no-response", "not-jsonrpc-2", "not-json"])
def test_mcp_client_fails_on_streams_the_contract_rejects(base: str, name: str) -> None:
    # (A response whose id is not the request's the SDK takes as the answer anyway, since it
    # came on that request's stream: the contract is stricter, as other clients match ids.)
    with pytest.raises(BaseException) as caught:  # a timeout, or the SDK's own error
        asyncio.run(client_call(f"{base}/crafted/{name}"))
    assert not isinstance(caught.value, KeyboardInterrupt)
