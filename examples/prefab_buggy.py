"""The functions of ``prefab_good.py`` with planted bugs, for tests and the demo.

Every bug is marked ``# BUG`` and fires only for some inputs, as real ones do; a happy-path
unit test (``list(batch_process([1, 2]))``) passes on all of them:

    batch_process([])            ZeroDivisionError escapes the generator        gen.raised
    batch_process([1, 2, 3])     an odd-length list: current > total (4 of 3)  progress.bounds
    process_lines("a\\nb", start=-5)   a negative number: negative progress     progress.bounds
    process_lines("héllo")       non-ASCII text: the stream ends without done  seq.terminal
    chat_stream(<long message>)  a datetime in the done event                  gen.not-serializable

Property testing (``stream-harness manifest examples/prefab-manifest.json --module
examples/prefab_buggy.py``) finds each of them and shrinks it to a minimal input -- ``{"items":
[]}``, ``{"items": [null]}``, ``{"text": "0", "start": -1}``, ``{"text": "\\u0080"}``, a user
message of eleven one-character words -- and two more that the same shortcuts cause:

    chat_stream([])              no user message: the error event comes before start   seq.first
    batch_process([1.7e308])     a huge number doubled is infinity, not JSON   gen.not-serializable

    stream-harness check examples/prefab_buggy.py:batch_process --inputs '{"items": [1, 2, 3]}'
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

Event = dict[str, Any]

WORK_SECONDS = 0.001
BATCH_SIZE = 2
MAX_REPLY_TOKENS = 12


def batch_process(items: list[Any]) -> Iterator[Event]:
    """Process items in batches of two, reporting progress."""
    total = len(items)
    # BUG (empty list): computed before the try below, so the ZeroDivisionError escapes the
    # generator instead of becoming an error event.
    step = 100 / total
    try:
        yield {"type": "start", "data": {"total": total, "message": f"processing {total} items"}}
        for batch_no, start in enumerate(range(0, total, BATCH_SIZE), 1):
            batch = items[start : start + BATCH_SIZE]
            results = [_process_item(item) for item in batch]
            # BUG (a list whose length is not a multiple of BATCH_SIZE, e.g. [1, 2, 3]):
            # counts whole batches, so the short last batch pushes current past total
            # (4 of 3, 133 %).  Should be start + len(batch).
            current = batch_no * BATCH_SIZE
            yield {
                "type": "progress",
                "data": {
                    "current": current,
                    "total": total,
                    "percentage": round(current * step),
                    "result": results,
                },
            }
            time.sleep(WORK_SECONDS)
        yield {"type": "done", "data": {"total": total, "message": "all items processed"}}
    except Exception as e:
        yield {"type": "error", "data": str(e), "error_code": "PROCESSING_ERROR"}


def _process_item(item: Any) -> Any:
    if isinstance(item, int | float) and not isinstance(item, bool):
        return item * 2
    return item


def chat_stream(messages: list[dict[str, Any]], model: str = "demo-model") -> Iterator[Event]:
    """A simulated LLM that stops after MAX_REPLY_TOKENS tokens."""
    try:
        prompt = _last_user_message(messages)
        yield {"type": "start", "data": {"model": model}}
        tokens = _simulated_reply(prompt)
        for token in tokens[:MAX_REPLY_TOKENS]:
            time.sleep(WORK_SECONDS)
            yield {"type": "content", "data": token}
        done: dict[str, Any] = {"finish_reason": "stop"}
        if len(tokens) > MAX_REPLY_TOKENS:
            # BUG (a long message): a datetime is not JSON; should be .isoformat().
            done = {"finish_reason": "length", "truncated_at": datetime.now(UTC)}
        yield {"type": "done", "data": done}
    except Exception as e:
        yield {"type": "error", "data": str(e), "error_code": "LLM_ERROR"}


def _last_user_message(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    raise ValueError("no user message to reply to")


def _simulated_reply(prompt: str) -> list[str]:
    words = f"You said: {prompt}".split() if prompt.strip() else ["(silence)"]
    return [words[0]] + [" " + w for w in words[1:]]


def process_lines(text: str, start: int = 1) -> Iterator[Event]:
    """Process text line by line; ``start`` is the number shown for the first line."""
    try:
        lines = text.splitlines()
        total = len(lines)
        yield {"type": "start", "data": {"total_lines": total}}
        for line_no, line in enumerate(lines, start):
            # BUG (a negative or large start): reports the displayed line number as progress,
            # so start=-5 gives current -5 and a negative percentage.
            yield {
                "type": "progress",
                "data": {
                    "current": line_no,
                    "total": total,
                    "percentage": line_no * 100 // total,
                    "result": {"line_no": line_no, "words": len(line.split())},
                },
            }
            time.sleep(WORK_SECONDS)
        # BUG (non-ASCII text): the checksum assumes ASCII; on "é" the bare return ends the
        # stream with neither done nor error.
        try:
            checksum = sum(text.encode("ascii"))
        except UnicodeEncodeError:
            return
        yield {"type": "done", "data": {"processed": total, "checksum": checksum}}
    except Exception as e:
        yield {"type": "error", "data": str(e), "error_code": "FILE_ERROR"}
