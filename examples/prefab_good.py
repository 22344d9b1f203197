"""A prefab whose streaming functions keep the event contract.

Each function yields ``start`` first, whatever its inputs, then ``progress`` or ``content``
events, then ``done``; when something fails it yields one ``error`` event with an
``error_code`` instead of ``done``, and never lets an exception escape.  Every item is plain
JSON.  No network, no dependencies, and only a few milliseconds of simulated work, so the
harness can run them hundreds of times.

    stream-harness check examples/prefab_good.py:batch_process --inputs '{"items": [1, 2, 3]}'

``prefab_buggy.py`` holds the same functions with planted bugs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

Event = dict[str, Any]

#: Simulated work per item or token: enough to make a stream, too little to slow tests.
WORK_SECONDS = 0.001


def batch_process(items: list[Any]) -> Iterator[Event]:
    """Process items one by one, reporting progress (current, total, percentage)."""
    # start comes first whatever the inputs, so it is computed from nothing that can fail.
    total = len(items) if isinstance(items, list) else 0
    yield {"type": "start", "data": {"total": total, "message": f"processing {total} items"}}
    try:
        if not isinstance(items, list):
            raise TypeError(f"items must be a list, not {type(items).__name__}")
        for current, item in enumerate(items, 1):
            result = _process_item(item)
            yield {
                "type": "progress",
                "data": {
                    "current": current,
                    "total": total,
                    "percentage": current * 100 // total,  # total >= current >= 1 here
                    "result": result,
                },
            }
            time.sleep(WORK_SECONDS)
        yield {"type": "done", "data": {"total": total, "message": "all items processed"}}
    except Exception as e:
        yield {"type": "error", "data": str(e), "error_code": "PROCESSING_ERROR"}


def _process_item(item: Any) -> dict[str, Any]:
    """The work on one item; its result is plain JSON whatever the item (no float overflow)."""
    if item is None:
        raise ValueError("cannot process a null item")
    return {"kind": type(item).__name__, "size": len(json.dumps(item))}


def chat_stream(messages: list[dict[str, Any]], model: str = "demo-model") -> Iterator[Event]:
    """A simulated LLM: streams a reply to the last user message as ``content`` tokens."""
    yield {"type": "start", "data": {"model": str(model)}}
    try:
        prompt = _last_user_message(messages)
        tokens = _simulated_reply(prompt)
        for token in tokens:
            time.sleep(WORK_SECONDS)
            yield {"type": "content", "data": token}
        yield {
            "type": "done",
            "data": {"finish_reason": "stop", "usage": {"completion_tokens": len(tokens)}},
        }
    except Exception as e:
        yield {"type": "error", "data": str(e), "error_code": "LLM_ERROR"}


def _last_user_message(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    raise ValueError("no user message to reply to")


def _simulated_reply(prompt: str) -> list[str]:
    """Tokens as a real model streams them: words with their leading space."""
    words = f"You said: {prompt}".split() if prompt.strip() else ["(silence)"]
    return [words[0]] + [" " + w for w in words[1:]]


def process_lines(text: str, start: int = 1) -> Iterator[Event]:
    """Process text line by line; ``start`` is the number shown for the first line."""
    lines = text.splitlines() if isinstance(text, str) else []
    total = len(lines)
    yield {"type": "start", "data": {"total_lines": total}}
    try:
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, not {type(text).__name__}")
        for processed, line in enumerate(lines, 1):
            yield {
                "type": "progress",
                "data": {
                    "current": processed,  # how many are done, whatever the line numbers say
                    "total": total,
                    "percentage": processed * 100 // total,
                    "result": {"line_no": start + processed - 1, "words": len(line.split())},
                },
            }
            time.sleep(WORK_SECONDS)
        yield {"type": "done", "data": {"processed": total, "characters": len(text)}}
    except Exception as e:
        yield {"type": "error", "data": str(e), "error_code": "FILE_ERROR"}
