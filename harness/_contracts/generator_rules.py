"""The ``gen.*`` rules: what a streaming generator function did wrong.

They live below both places that see these failures -- the generator runner
(:mod:`harness._runners.gen`), which watches the function itself, and the gateway's reserved
error codes (:mod:`harness._contracts.gateway_codes`), which report the same failures from
over HTTP -- so each can report them without importing the other.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any, Final

from harness._core.rules import Severity, rule

__all__ = [
    "GEN_NOT_ITERATOR",
    "GEN_NOT_SERIALIZABLE",
    "GEN_RAISED",
    "exit_status",
    "gen_crashed",
    "gen_garbled",
    "gen_item_too_large",
    "gen_memory",
    "gen_not_iterator",
    "gen_not_serializable",
    "gen_raised",
    "gen_timeout",
]
#: Rule ids others name (the gateway's reserved codes map to them).
GEN_RAISED: Final = "gen.raised"
GEN_NOT_ITERATOR: Final = "gen.not-iterator"
GEN_NOT_SERIALIZABLE: Final = "gen.not-serializable"


@rule(GEN_RAISED, Severity.ERROR, "An exception escaped the generator.")
def gen_raised(report: Mapping[str, Any]) -> str:
    """The generator raised instead of yielding an ``error`` event.  Behind a gateway the
    connection is then cut mid-stream: the client gets neither ``done`` nor ``error`` and
    cannot tell a failure from a network problem.  Catch the exception inside the generator
    (around setup code too, not only the loop) and yield
    ``{"type": "error", "data": str(e), "error_code": "..."}``."""
    text = f"{report['type']}: {report['message']}" if report["message"] else report["type"]
    where = f" at {report['where']}" if report.get("where") else ""
    line = f" ({report['line']})" if report.get("line") else ""
    return (
        f"{text}, raised{where}{line} after {_items(report['items'])}; "
        "yield an error event instead of raising"
    )


@rule(GEN_NOT_ITERATOR, Severity.ERROR, "The function returned something other than an iterator.")
def gen_not_iterator(report: Mapping[str, Any]) -> str:
    """A streaming function must be a generator (``def`` with ``yield``, or ``async def`` with
    ``yield``) or return an iterator.  A function that returns a list, a dict or ``None`` sends
    everything at once, or nothing; an ``async def`` without ``yield`` returns a coroutine,
    which a gateway does not iterate."""
    kind = report["type"]
    hint = (
        "an async def function without yield"
        if kind == "coroutine"
        else "use yield to stream the events one by one"
    )
    return f"{report['target']} returned {kind} {report['repr']}, not an iterator ({hint})"


@rule(GEN_NOT_SERIALIZABLE, Severity.ERROR, "A yielded item cannot be sent as JSON.")
def gen_not_serializable(report: Mapping[str, Any]) -> str:
    """Every yielded item is sent as ``json.dumps(item, ensure_ascii=False, allow_nan=False)``.
    NaN and infinities, sets, datetimes, bytes and arbitrary objects are not JSON: the gateway
    fails on that item and the stream breaks there.  Convert values first (``isoformat()``,
    ``list(...)``, ``str(...)``, ``None`` for a missing number).  The run stopped at that item."""
    return (
        f"item #{report['index']} ({report['type']}) cannot be sent as JSON: {report['error']}; "
        f"the item: {report['repr']}"
    )


@rule("gen.timeout", Severity.ERROR, "The generator exceeded a time limit and was stopped.")
def gen_timeout(limit: str, seconds: float, items: int) -> str:
    """``first_byte_timeout`` bounds the wait from calling the function to its first item,
    ``idle_timeout`` the silence between two items, ``total_timeout`` the whole run.  A
    generator that blocks for longer (a network call without a timeout, an endless loop that
    yields nothing) was killed; a client would have given up too.  Raise the limit if the
    wait is intended, or yield progress events while working."""
    when = {
        "first_byte_timeout": "no item arrived",
        "idle_timeout": "no further item arrived",
        "total_timeout": "the run was not finished",
    }[limit]
    return f"{when} within {limit} = {seconds:g} s; stopped after {_items(items)}"


@rule("gen.crashed", Severity.ERROR, "The process running the generator died.")
def gen_crashed(returncode: int, items: int, *, loading: bool = False) -> str:
    """The worker process that ran the generator ended in the middle of the run: the code
    called ``os._exit()``, a native extension crashed, or the process was killed (the
    out-of-memory killer sends SIGKILL; so does ``os.kill(0, SIGKILL)``, which reaches the
    worker's own process group, never the harness's).  A gateway would drop the connection the
    same way.  The same rule reports a worker whose pipe to the harness carried something
    that is not the harness's protocol -- the generator, or a process it started, wrote into
    it: the run cannot be trusted past that point.  Whatever the worker started is killed
    with it, daemons included."""
    when = "while loading the target" if loading else f"after {_items(items)}"
    return f"the worker process {exit_status(returncode)} {when}"


def gen_garbled(detail: str, items: int) -> str:
    """The message of ``gen.crashed`` for a pipe that carried something else than the protocol."""
    return (
        f"the worker's output is not the harness protocol: {detail} (something the generator "
        f"ran wrote into the harness's pipe); stopped after {_items(items)}"
    )


@rule("gen.item-too-large", Severity.ERROR, "A yielded item is larger than --max-event-bytes.")
def gen_item_too_large(report: Mapping[str, Any]) -> str:
    """Every yielded item is sent as its JSON text, and a client keeps at most
    ``--max-event-bytes`` (1 MiB by default) of one event.  The worker bounds the item's size
    before serialising it, with a walk that stops at the limit, so an item of a gigabyte costs
    neither process a gigabyte; the run stopped at that item.  Send large results in parts
    (several content events), or raise ``--max-event-bytes`` if items that large are
    intended."""
    size = f"{report['bytes']} bytes" if report["exact"] else f"at least {report['bytes']} bytes"
    return (
        f"item #{report['index']} ({report['type']}) is {size} of JSON, more than "
        f"--max-event-bytes = {report['limit']}; the run stopped there"
    )


@rule("gen.memory", Severity.ERROR, "The generator ran out of memory (MemoryError).")
def gen_memory(report: Mapping[str, Any]) -> str:
    """The worker runs the generator under an address-space cap (4 GiB; a hard limit, which
    the generator cannot raise), so that a runaway generator meets ``MemoryError`` instead of
    the machine's out-of-memory killer.  The run stopped there and the next run gets a fresh
    worker.  Look for a collection that grows without bound, or read large inputs in parts."""
    limit = int(report.get("limit") or 0)
    cap = f"the worker's memory cap of {limit >> 20} MB" if limit else "the memory available"
    where = f" at {report['where']}" if report.get("where") else ""
    line = f" ({report['line']})" if report.get("line") else ""
    items = f" after {_items(int(report['items']))}" if "items" in report else ""
    return f"the generator exceeded {cap}: MemoryError{where}{line}{items}"


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def exit_status(returncode: int) -> str:
    """``exited with code 3`` / ``was killed by SIGKILL (...)``, for messages."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    hints = {
        int(signal.SIGKILL): " (by the code itself, or perhaps the out-of-memory killer)",
        int(signal.SIGSEGV): " (a crash in native code)",
    }
    hint = hints.get(-returncode, "")
    return f"was killed by {name}{hint}"
