"""Hostile generator functions for tests/test_hostile_targets.py: each attacks the worker that
runs it (or the harness behind it) one way.  Run in the worker process only.

None of them yields an item before it attacks, so the verdict holds the one ``gen.*`` rule the
attack must end in and nothing a contract would add about the items.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def hostile_huge_item(kind: str = "shared", mib: int = 1024) -> Iterator[Any]:
    """An item whose JSON text is ``mib`` MiB: one string, or 1 KiB strings shared a million
    times (a few MB in the worker, a gigabyte once serialised)."""
    if kind == "string":
        yield {"type": "content", "data": "x" * (mib << 20)}
    elif kind == "bytes-like-text":
        yield "é" * (mib << 19)  # two UTF-8 bytes a character: the limit counts bytes
    else:
        yield {"type": "content", "data": ["x" * 1022] * (mib << 10)}
    yield {"type": "done", "data": {}}


def hostile_lifts_memory_cap(mib: int = 0) -> Iterator[Any]:
    """Tries to raise the worker's address-space cap, then allocates past it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with contextlib.suppress(ValueError, OSError):  # a hard cap cannot be raised
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    block = bytearray((mib << 20) or 2 * soft)  # never touched: no real memory, if it works
    yield {"type": "done", "data": {"soft": soft, "hard": hard, "got": len(block)}}


def hostile_raises_memory_cap() -> Iterator[Any]:
    """Tries to raise the cap, and reports what it is afterwards."""
    raised = True
    try:
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        raised = False
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    yield {"raised": raised, "soft": soft, "hard": hard}


def hostile_fills_memory() -> Iterator[Any]:
    """Allocates 1 MiB blocks until the cap stops it (keep the cap small where this runs)."""
    blocks = []
    while True:
        blocks.append(bytearray(1 << 20))
        blocks[-1][:: 1 << 12] = b"x" * 256  # touch the pages: real memory, so a real limit
    yield {"type": "done", "data": {}}


def hostile_daemon_then_crash(pidfile: str) -> Iterator[Any]:
    """Double-forks a daemon (new session, the worker's pipes still open in it), then dies:
    the pipes never reach EOF, only the worker's exit says it is gone."""
    first = os.fork()
    if first == 0:
        os.setsid()
        if os.fork() == 0:
            Path(pidfile).write_text(str(os.getpid()))
            time.sleep(120)
        os._exit(0)
    os.waitpid(first, 0)
    deadline = time.monotonic() + 10
    while not Path(pidfile).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os._exit(7)
    yield {"type": "done", "data": {}}


def hostile_writes_protocol_garbage(fd: int = -1) -> Iterator[Any]:
    """Writes garbage into the worker's protocol pipe (found on its command line)."""
    if fd < 0:
        flag = next(a for a in sys.argv if a.startswith("--out-fd="))
        fd = int(flag.partition("=")[2])
    os.write(fd, b"garbage\n")
    yield {"type": "done", "data": {}}


def hostile_writes_binary_item(fd: int = -1) -> Iterator[Any]:
    """An ``item`` line in the protocol pipe that is not UTF-8, then one with no line end."""
    flag = next(a for a in sys.argv if a.startswith("--out-fd="))
    fd = int(flag.partition("=")[2])
    os.write(fd, b"item \xff\xfe\n")
    yield {"type": "done", "data": {}}


def hostile_floods_protocol_pipe(mib: int = 256) -> Iterator[Any]:
    """Writes ``mib`` MiB into the protocol pipe without a line end: the harness must not keep
    it all waiting for one."""
    flag = next(a for a in sys.argv if a.startswith("--out-fd="))
    fd = int(flag.partition("=")[2])
    block = b"x" * (1 << 20)
    with contextlib.suppress(OSError):  # the harness closes the pipe once it has seen enough
        for _ in range(mib):
            os.write(fd, block)
    yield {"type": "done", "data": {}}


def hostile_prints_to_stdout() -> Iterator[Any]:
    """Writes protocol-looking lines on fd 1 and via print(): not the protocol, a clean run."""
    os.write(1, b"garbage\nend\n")
    print('item {"type": "error"}')
    yield {"type": "start", "data": {}}
    yield {"type": "done", "data": {}}


def hostile_kills_own_group() -> Iterator[Any]:
    """``kill(0, SIGKILL)``: every process of its own process group."""
    os.kill(0, signal.SIGKILL)
    yield {"type": "done", "data": {}}


def hostile_kills_parents_group() -> Iterator[Any]:
    """SIGKILL to the process group of its parent, which it takes for the harness's."""
    os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)
    yield {"type": "done", "data": {}}


def hostile_kills_supervisor() -> Iterator[Any]:
    """SIGKILL to its parent, the worker's supervisor."""
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(30)
    yield {"type": "done", "data": {}}


def hostile_daemon_then_hang(pidfile: str) -> Iterator[Any]:
    """Double-forks a daemon (a session of its own), then hangs: the timeout kills both."""
    first = os.fork()
    if first == 0:
        os.setsid()
        if os.fork() == 0:
            Path(pidfile).write_text(str(os.getpid()))
            time.sleep(120)
        os._exit(0)
    os.waitpid(first, 0)
    while not Path(pidfile).exists():
        time.sleep(0.01)
    yield int(Path(pidfile).read_text())
    time.sleep(120)


def hostile_closes_protocol_pipe() -> Iterator[Any]:
    """Closes the worker's end of the protocol pipe, then yields: the worker cannot report."""
    flag = next(a for a in sys.argv if a.startswith("--out-fd="))
    os.close(int(flag.partition("=")[2]))
    yield {"type": "done", "data": {}}
