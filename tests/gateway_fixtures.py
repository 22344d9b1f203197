"""Functions the gateway tests serve (``tests/data/gateway-manifest.json``), and helpers to
run ``stream-harness serve`` as a real subprocess.

Functions that must prove they were closed write a marker file from their ``finally``: that
works whether the gateway runs in a thread of the test process or in a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

Event = dict[str, Any]

DATA = Path(__file__).parent / "data"
MANIFEST = DATA / "gateway-manifest.json"
EXE = Path(sys.executable).parent / "stream-harness"
_LISTENING = re.compile(r" at (http://\S+)")

# -- the functions ------------------------------------------------------------------------------


def count(n: int = 3, delay: float = 0.0) -> Iterator[Event]:
    yield {"type": "start", "data": {"total": n}}
    for i in range(1, n + 1):
        time.sleep(delay)
        yield {"type": "progress", "data": {"current": i, "total": n}}
    yield {"type": "done", "data": {"total": n}}


async def acount(n: int = 3, delay: float = 0.0) -> AsyncIterator[Event]:
    yield {"type": "start", "data": {"total": n}}
    for i in range(1, n + 1):
        await asyncio.sleep(delay)
        yield {"type": "progress", "data": {"current": i, "total": n}}
    yield {"type": "done", "data": {"total": n}}


def raises(after: int = 1) -> Iterator[Event]:
    yield {"type": "start", "data": {}}
    for i in range(after - 1):
        yield {"type": "content", "data": f"token {i}"}
    raise ValueError("boom")


async def araises() -> AsyncIterator[Event]:
    yield {"type": "start", "data": {}}
    raise KeyError("missing")


def bad_item(kind: str = "datetime") -> Iterator[Event]:
    yield {"type": "start", "data": {}}
    value: Any = datetime.now(UTC) if kind == "datetime" else float("nan")
    yield {"type": "done", "data": {"at": value}}
    yield {"type": "content", "data": "never sent"}


def not_iterator() -> list[Event]:
    return [{"type": "start", "data": {}}]


def endless(marker: str, delay: float = 0.01) -> Iterator[Event]:
    """Never ends by itself; its finally writes ``marker`` when the gateway closes it."""
    try:
        yield {"type": "start", "data": {}}
        i = 0
        while True:
            time.sleep(delay)
            i += 1
            yield {"type": "content", "data": f"token {i}"}
    finally:
        Path(marker).write_text("closed")


async def aendless(marker: str, delay: float = 0.01) -> AsyncIterator[Event]:
    try:
        yield {"type": "start", "data": {}}
        i = 0
        while True:
            await asyncio.sleep(delay)
            i += 1
            yield {"type": "content", "data": f"token {i}"}
    finally:
        await asyncio.sleep(0)  # the finally may await: the gateway cancelled only once
        Path(marker).write_text("closed")


def echo(text: str, mode: str = "plain", times: int = 1) -> Iterator[Event]:
    yield {"type": "start", "data": {"mode": mode}}
    for _ in range(times):
        yield {"type": "content", "data": text.upper() if mode == "upper" else text}
    yield {"type": "done", "data": {}}


def add(a: int, b: int = 0) -> dict[str, int]:
    """Not streaming: the gateway answers with {"result": ...}."""
    return {"sum": a + b}


# -- serve as a subprocess ----------------------------------------------------------------------


class Served:
    """``stream-harness serve`` running in a subprocess on 127.0.0.1, on a free port."""

    def __init__(self, proc: subprocess.Popen[str], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve(
    manifest: Path, module: str, *extra: str, log: Path, cwd: Path | None = None
) -> Iterator[Served]:
    """Start ``stream-harness serve --port 0``; wait for its address and for /healthz; stop it
    (SIGINT, then SIGKILL) on exit, whatever happened."""
    args = [str(EXE), "serve", str(manifest), "--module", module, "--port", "0"]
    args += ["--log-level", "warning", *extra]
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=cwd, start_new_session=True
        )
    try:
        url = _wait_listening(proc, log)
        _wait_healthy(url, proc)
        yield Served(proc, url, log)
    finally:
        _stop(proc)


def _wait_listening(proc: subprocess.Popen[str], log: Path, wait: float = 20.0) -> str:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        m = _LISTENING.search(log.read_text(errors="replace"))
        if m:
            return m.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}:\n{log.read_text()}")
        time.sleep(0.02)
    raise RuntimeError(f"serve did not print its address within {wait} s:\n{log.read_text()}")


def _wait_healthy(url: str, proc: subprocess.Popen[str], wait: float = 20.0) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{url}/healthz did not answer within {wait} s")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
