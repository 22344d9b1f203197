"""Fake generator functions for tests/test_gen_runner.py: one per behaviour a worker must handle.

Run in the worker process only, never imported by the tests themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any


def counting(n: int = 3) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"type": "progress", "data": {"i": i, "text": "héllo ✓"}}


async def async_counting(n: int = 3) -> AsyncIterator[dict[str, Any]]:
    for i in range(n):
        await asyncio.sleep(0)
        yield {"type": "progress", "data": i}


def returns_list_iterator(n: int = 3) -> Iterator[int]:
    return iter(list(range(n)))


class _Countdown:
    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> _Countdown:
        return self

    def __next__(self) -> int:
        if self.n <= 0:
            raise StopIteration
        self.n -= 1
        return self.n


def returns_custom_iterator(n: int = 3) -> _Countdown:
    return _Countdown(n)


def returns_list() -> list[int]:
    return [1, 2, 3]


def returns_dict() -> dict[str, str]:
    return {"type": "done"}


def returns_none() -> None:
    return None


async def coroutine_without_yield() -> dict[str, str]:
    return {"type": "done"}


def _helper_that_fails(value: Any) -> int:
    return len(value)  # TypeError for an int


def raises_inside(items: list[Any]) -> Iterator[dict[str, Any]]:
    yield {"type": "start", "data": {}}
    for item in items:
        yield {"type": "progress", "data": _helper_that_fails(item)}


def raises_before_first() -> Iterator[int]:
    raise ValueError("failed during setup")
    yield 1  # unreachable: makes this a generator function


async def async_raises() -> AsyncIterator[int]:
    yield 1
    raise RuntimeError("async failure")


def calls_sys_exit() -> Iterator[int]:
    yield 1
    sys.exit(4)


_BAD_ITEMS: dict[str, Any] = {
    "nan": {"x": float("nan")},
    "inf": {"x": float("inf")},
    "set": {"tags": {"a"}},
    "datetime": {"at": datetime.datetime(2024, 1, 1)},
    "object": {"o": object()},
    "surrogate": {"s": "\ud800"},
    "bytes": b"raw",
}


def yields_bad(kind: str) -> Iterator[Any]:
    yield {"type": "start", "data": {}}
    yield _BAD_ITEMS[kind]
    yield {"type": "done", "data": {}}  # never sent: the run stops at the bad item


def hangs_before_first(seconds: float = 60.0) -> Iterator[int]:
    time.sleep(seconds)
    yield 1


def hangs_after_first(seconds: float = 60.0) -> Iterator[int]:
    yield 1
    time.sleep(seconds)
    yield 2


def trickles_forever(interval: float = 0.05, marker: str = "") -> Iterator[int]:
    """Never ends; with ``marker``, creates that file once three items were taken (a test
    waits for it rather than sleeping a guessed time)."""
    i = 0
    while True:
        yield i
        i += 1
        if marker and i == 3:
            open(marker, "w").close()
        time.sleep(interval)


def spawns_sleeper() -> Iterator[int]:
    child = subprocess.Popen(["sleep", "60"])
    yield child.pid
    time.sleep(60)
    yield 0


def exits(code: int = 3) -> Iterator[int]:
    yield 1
    os._exit(code)


def kills_itself() -> Iterator[int]:
    yield 1
    os.kill(os.getpid(), signal.SIGKILL)
    yield 2


def infinite(marker: str = "") -> Iterator[int]:
    i = 0
    try:
        while True:
            yield i
            i += 1
    finally:
        if marker:  # proves the worker closed the generator after max_events
            with open(marker, "w") as f:
                f.write(f"closed after {i}")


async def async_infinite() -> AsyncIterator[int]:
    i = 0
    while True:
        yield i
        i += 1


def noisy() -> Iterator[dict[str, Any]]:
    """Writes what looks like protocol messages everywhere a process can write."""
    print('item {"type": "fake"}')
    print("end")
    sys.stdout.flush()
    print("raised {}", file=sys.__stdout__)
    os.write(1, b"not-iterator {}\ncall\n")
    print("noisy stderr", file=sys.stderr)
    with contextlib.suppress(EOFError):  # stdin is not the protocol either: it is empty
        input()
    yield {"type": "start", "data": "NOISY-MARKER"}
    print("NOISY-MARKER printed between items")
    yield {"type": "done", "data": {}}


def pid() -> Iterator[int]:
    yield os.getpid()


def memory_limit() -> Iterator[int]:
    yield resource.getrlimit(resource.RLIMIT_AS)[0]


def eats_memory(nbytes: int) -> Iterator[int]:
    block = bytearray(nbytes)
    yield len(block)


def cwd() -> Iterator[str]:
    yield os.getcwd()


def needs_items(items: list[Any], *, label: str = "x") -> Iterator[int]:
    yield len(items)


not_callable = 42


def changes_directory(to: str) -> Iterator[str]:
    os.chdir(to)
    yield os.getcwd()


def yields_big_content(size: int, char: str = "x") -> Iterator[dict[str, Any]]:
    yield {"type": "start", "data": {}}
    yield {"type": "content", "data": char * size}
    yield {"type": "done", "data": {}}
