"""``python -m bench contracts``: checking speed of every built-in contract and a user's own.

Each row is decode + validate + sequence + invariants on one core, for a conforming stream of
that dialect cut into 64 KiB chunks, against the naive stack (httpx-sse's decoder, then
``json.loads`` and ``jsonschema`` with the type's schema, per event) on the same events.  The
"user contract" row is a contract file with nothing but JSON Schemas and an order pattern,
loaded from disk as ``--contract ./jobs.yaml`` would load it (goal: at least 50 k events/s).
"""

from __future__ import annotations

import codecs
import gc
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx_sse._decoders as peer
import yaml

from harness._contracts.registry import get_checker, load_contract
from harness._core.framing import framings_of, make_decoder

__all__ = ["section_contracts"]

CHUNK = 64 * 1024
N_EVENTS = 100_000
Row = tuple[str, str, str, str]

# A team's own protocol: JSON Schemas and an order, no invariants, no Python.
USER_CONTRACT: dict[str, Any] = {
    "version": 1,
    "name": "jobs",
    "summary": "batch jobs: queued, running updates, then finished or failed",
    "type": {"from": "/kind"},
    "types": {
        "queued": {
            "schema": {
                "type": "object",
                "required": ["kind", "job"],
                "properties": {"kind": {"const": "queued"}, "job": {"type": "string"}},
            }
        },
        "running": {
            "schema": {
                "type": "object",
                "required": ["kind", "job", "done", "of"],
                "additionalProperties": False,
                "properties": {
                    "kind": {"const": "running"},
                    "job": {"type": "string", "minLength": 1},
                    "done": {"type": "integer", "minimum": 0},
                    "of": {"type": "integer", "minimum": 1},
                    "note": {"type": ["string", "null"]},
                },
            }
        },
        "finished": {"schema": {"type": "object", "required": ["kind", "job", "result"]}},
        "failed": {"schema": {"type": "object", "required": ["kind", "reason"]}},
    },
    "order": {"pattern": "queued running* (finished | failed)"},
}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _ndjson(events: list[tuple[str | None, Any]]) -> list[bytes]:
    body = "".join(_dumps(data) + "\n" for _, data in events).encode()
    return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]


def _sse(events: list[tuple[str | None, Any]]) -> list[bytes]:
    parts = []
    for i, (name, data) in enumerate(events):
        head = f"event: {name}\n" if name else ""
        parts.append(f"id: {i}\n{head}data: {data if isinstance(data, str) else _dumps(data)}\n\n")
    body = "".join(parts).encode()
    return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]


def _streams(n: int) -> dict[str, tuple[list[tuple[str | None, Any]], object]]:
    """name -> (events, request body) of a conforming stream of about ``n`` events."""
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    choice = {"index": 0, "delta": {"content": "tok"}, "logprobs": None, "finish_reason": None}
    last = {**choice, "delta": {}, "finish_reason": "stop"}
    usage = {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5}
    msg = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "c",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "tok"},
    }
    resp = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "m",
        "status": "in_progress",
        "output": [],
    }
    end = {**resp, "status": "completed"}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    item = {"output_index": 0, "item": message}
    at = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    part = {**at, "part": {"type": "output_text", "text": "", "annotations": []}}
    text, done = {**at, "delta": "tok"}, {**at, "text": "tok" * n}
    ollama_chunk = {
        "model": "llama3.2",
        "created_at": "2026-12-02T10:00:00Z",
        "message": {"role": "assistant", "content": "tok"},
        "done": False,
    }
    ollama_counts = {"total_duration": 9, "eval_count": n, "eval_duration": 7}
    return {
        "openai-chat": (
            [(None, {**head, "choices": [choice]})] * n
            + [(None, {**head, "choices": [last]}), (None, {**head, "choices": [], "usage": usage})]
            + [(None, "[DONE]")],
            {"stream_options": {"include_usage": True}},
        ),
        "anthropic-messages": (
            [("message_start", {"type": "message_start", "message": msg})]
            + [
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            ]
            + [("content_block_delta", delta)] * n
            + [("content_block_stop", {"type": "content_block_stop", "index": 0})]
            + [
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn"},
                        "usage": {"output_tokens": n},
                    },
                )
            ]
            + [("message_stop", {"type": "message_stop"})],
            None,
        ),
        "llm-debug": (
            [(None, {"content": "tok", "done": False})] * n
            + [(None, {"done": True, "final_response": {}, "metrics": {}}), (None, "[DONE]")],
            None,
        ),
        "agent-stages": (
            [(None, {"type": "chunk", "content": "tok", "agent": "a"})] * n
            + [(None, {"type": "complete", "data": {}, "agent": "a"})]
            + [(None, {"type": "done", "summary": {}})],
            None,
        ),
        "text": ([(None, "tok")] * n, None),
        "openai-responses": (
            [(None, {"type": "response.created", "sequence_number": 0, "response": resp})]
            + [(None, {"type": "response.output_item.added", "sequence_number": 1, **item})]
            + [(None, {"type": "response.content_part.added", "sequence_number": 2, **part})]
            + [
                (None, {"type": "response.output_text.delta", "sequence_number": i, **text})
                for i in range(3, n + 3)
            ]
            + [
                (None, {"type": "response.output_text.done", "sequence_number": n + 3, **done}),
                (None, {"type": "response.content_part.done", "sequence_number": n + 4, **part}),
                (None, {"type": "response.output_item.done", "sequence_number": n + 5, **item}),
                (None, {"type": "response.completed", "sequence_number": n + 6, "response": end}),
            ],
            None,
        ),
        "ai-sdk-ui": (
            [(None, {"type": "start"}), (None, {"type": "text-start", "id": "t1"})]
            + [(None, {"type": "text-delta", "id": "t1", "delta": "tok"})] * n
            + [(None, {"type": "text-end", "id": "t1"}), (None, {"type": "finish"})]
            + [(None, "[DONE]")],
            None,
        ),
        "ollama (NDJSON)": (
            [(None, ollama_chunk)] * n
            + [(None, {**ollama_chunk, "done": True, "done_reason": "stop", **ollama_counts})],
            None,
        ),
        "user contract (schemas only)": (
            [(None, {"kind": "queued", "job": "j1"})]
            + [(None, {"kind": "running", "job": "j1", "done": i, "of": n}) for i in range(n)]
            + [(None, {"kind": "finished", "job": "j1", "result": {"ok": True}})],
            None,
        ),
    }


def _best(fn: Callable[[], int], repeat: int) -> float:
    """Events per second of the fastest of ``repeat`` runs (GC paused, as bench/__main__ does)."""
    times, count = [], 0
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            t = time.perf_counter()
            count = fn()
            times.append(time.perf_counter() - t)
        finally:
            gc.enable()
    return count / min(times)


def _ours(contract: str, chunks: list[bytes], request: object) -> int:
    checker, n = get_checker(contract, request=request), 0
    decoder = make_decoder(framings_of(checker)[0])
    for chunk in chunks:
        for event in decoder.feed(chunk):
            if checker.feed(event):
                raise AssertionError(f"the {contract} benchmark stream must conform")
            n += 1
    for event in decoder.finish():
        checker.feed(event)
        n += 1
    if checker.finish():
        raise AssertionError(f"the {contract} benchmark stream must conform")
    return n


def _peer_events(chunks: list[bytes]) -> Iterator[tuple[str, str]]:
    text = codecs.getincrementaldecoder("utf-8")("replace")
    lines, sse = peer.SSELineDecoder(), peer.SSEDecoder()
    for chunk in chunks:
        for line in lines.decode(text.decode(chunk)):
            event = sse.decode(line)
            if event is not None:
                yield event.event, event.data


def _naive(contract: str, chunks: list[bytes], kind_of: Callable[[str, Any], str | None]) -> int:
    """httpx-sse + json.loads + jsonschema with the event's type schema, per event."""
    compiled = load_contract(contract)
    n = 0
    events = _peer_events(chunks)
    if compiled.framings[0] == "ndjson":  # the obvious way: splitlines
        events = (("message", line.decode()) for line in b"".join(chunks).splitlines() if line)
    for name, data in events:
        value: Any = data
        if compiled.json and data != "[DONE]":
            value = json.loads(data)
        kind = kind_of(name, value)
        validator = compiled.slow.get(kind or "")
        if validator is not None:
            validator.validate(value)
        n += 1
    return n


def _kind_of(contract: str) -> Callable[[str, Any], str | None]:
    compiled = load_contract(contract)
    if compiled.type_from == "event":
        return lambda name, value: name
    if compiled.type_from == "cases":
        return lambda name, value: None if isinstance(value, str) else compiled.classify(value)
    return lambda name, value: (
        value.get(compiled.type_pointer[0]) if isinstance(value, dict) else None
    )


def section_contracts(repeat: int) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        user = Path(folder) / "jobs.yaml"
        user.write_text(yaml.safe_dump(USER_CONTRACT, sort_keys=False), encoding="utf-8")
        for name, (events, request) in _streams(N_EVENTS).items():
            contract = str(user) if name.startswith("user") else name.split()[0]
            frame = _ndjson if "NDJSON" in name else _sse
            chunks = frame(events)
            ours = _best(lambda c=contract, ch=chunks, r=request: _ours(c, ch, r), repeat)
            small = frame(events[: N_EVENTS // 10] + events[-3:])
            kind_of = _kind_of(contract)
            theirs = _best(lambda c=contract, ch=small, k=kind_of: _naive(c, ch, k), repeat)
            goal = " (goal ≥ 50 k/s)" if name.startswith("user") else ""
            rows.append(
                (
                    f"contract {name}",
                    f"{ours / 1e3:.0f} k/s",
                    f"{theirs / 1e3:.1f} k/s",
                    f"{ours / theirs:.1f}x{goal}",
                )
            )
    return rows
