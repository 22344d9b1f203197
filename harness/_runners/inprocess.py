"""``assert_conforms``: one call in a unit test instead of hand-written asserts on a stream.

    def test_my_stream_function():
        assert_conforms(my_stream_function("test"))

It takes the events as the function produced them -- a list, a generator or any iterator of
dicts (each serialised with ``json.dumps(item, ensure_ascii=False, allow_nan=False)``, exactly
as the gateway sends it), or :class:`SSEEvent` values already decoded -- and checks them
in-process with the contract's checker.  On a violation of severity error it raises
``AssertionError`` naming the rule, the event's index and the event; otherwise it returns the
:class:`CheckResult` (warnings included).  An exception escaping the generator is ``gen.raised``
and an item that is not JSON ``gen.not-serializable``, as in ``check``; the exception is chained
to the ``AssertionError`` so its traceback is shown.

The generator runs in the test's own thread, so there is no timeout: a generator that blocks
forever blocks the test (use pytest-timeout, or ``stream-harness check``, which runs it in a
child process).  An endless one stops at ``max_events``.  Async generators: ``await
assert_conforms_async(agen)`` inside async tests; ``assert_conforms(agen)`` runs it with
``asyncio.run`` when no event loop is running.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
import traceback
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, Final

from harness._contracts.generator_rules import gen_not_serializable, gen_raised
from harness._contracts.registry import get_checker
from harness._core.rules import violation
from harness._core.session import DEFAULT_MAX_EVENTS, CheckResult, StreamSession
from harness._core.sse import SSEEvent
from harness._core.text import shorten

__all__ = ["assert_conforms", "assert_conforms_async"]

_EVENT_PREVIEW: Final = 300
_REPR_LIMIT: Final = 200

Events = Iterable[Any] | AsyncIterable[Any]


def assert_conforms(
    events: Events,
    contract: str = "prefab",
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
    strict: bool = False,
) -> CheckResult:
    """Check ``events`` against ``contract``; raise ``AssertionError`` on any error-severity
    violation (``strict=True``: on any warning too), else return the result.  ``events`` is a
    list, generator or iterator of dicts (or of :class:`SSEEvent`); an async iterable is run
    with ``asyncio.run``."""
    if isinstance(events, AsyncIterable):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(
                assert_conforms_async(events, contract, max_events=max_events, strict=strict)
            )
        raise TypeError(
            "assert_conforms() got an async iterable inside a running event loop; "
            "use: await assert_conforms_async(...)"
        )
    run = _Run(contract, max_events, _target(events))
    iterator = _iterate(events)
    try:
        while run.wants_more:
            try:
                item = next(iterator)
            except StopIteration:
                break
            except Exception as exc:
                run.raised(exc)
                break
            run.feed(item)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    return run.verdict(strict)


async def assert_conforms_async(
    events: Events,
    contract: str = "prefab",
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
    strict: bool = False,
) -> CheckResult:
    """:func:`assert_conforms` for async tests; takes async and sync iterables alike."""
    if not isinstance(events, AsyncIterable):
        return assert_conforms(events, contract, max_events=max_events, strict=strict)
    run = _Run(contract, max_events, _target(events))
    iterator: AsyncIterator[Any] = aiter(events)
    try:
        while run.wants_more:
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                break
            except Exception as exc:
                run.raised(exc)
                break
            run.feed(item)
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
    return run.verdict(strict)


def _iterate(events: Iterable[Any]) -> Iterator[Any]:
    if isinstance(events, dict | str | bytes) or not isinstance(events, Iterable):
        if inspect.iscoroutine(events):
            events.close()  # never awaited: avoid the RuntimeWarning on top of this error
        hint = (
            " -- call it: assert_conforms(fn(...))"
            if callable(events)
            else " (a list or generator of events)"
        )
        raise TypeError(f"assert_conforms() needs the events, got {type(events).__name__}{hint}")
    return iter(events)


def _target(events: object) -> str:
    name = getattr(events, "__qualname__", None)
    if inspect.isgenerator(events) or inspect.isasyncgen(events):
        return f"{name}(...)"
    return type(events).__name__


class _Run:
    """One stream fed to a session, item by item, as the gateway would frame it."""

    def __init__(self, contract: str, max_events: int, target: str) -> None:
        start = time.monotonic()
        self.session = StreamSession(
            target, get_checker(contract), start=start, max_events=max_events
        )
        self.items = 0
        self.cut_short = False
        self.cause: BaseException | None = None

    @property
    def wants_more(self) -> bool:
        return not (self.cut_short or self.session.stopped)

    def feed(self, item: Any) -> None:
        index = self.items
        if isinstance(item, SSEEvent):
            event = item
        else:
            try:
                data = json.dumps(item, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError, RecursionError) as exc:
                report = {
                    "index": index,
                    "type": type(item).__name__,
                    "error": str(exc),
                    "repr": _repr(item),
                }
                self.session.add(violation("gen.not-serializable", gen_not_serializable(report)))
                self.cut_short = True
                return
            event = SSEEvent(data, id=str(index))
        self.items += 1
        self.session.feed_item(event, time.monotonic())

    def raised(self, exc: Exception) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        last = frames[-1] if frames else None
        report = {
            "type": type(exc).__qualname__,
            "message": str(exc),
            "items": self.items,
            "where": f"{_short(last.filename)}:{last.lineno} in {last.name}" if last else "",
            "line": (last.line or "") if last else "",
        }
        self.session.add(violation("gen.raised", gen_raised(report)))
        self.cut_short = True
        self.cause = exc

    def verdict(self, strict: bool = False) -> CheckResult:
        result = self.session.finish(
            time.monotonic(), complete=not self.cut_short, bytes_stream=False
        )
        if strict:
            result.make_strict()
        if not result.ok:
            raise AssertionError(failure_message(result)) from self.cause
        return result


def failure_message(result: CheckResult) -> str:
    """Every violation: rule, severity, the event's index, the message, and the event."""
    errors = sum(v.is_error for v in result.violations)
    warnings = len(result.violations) - errors
    lines = [
        f"the stream does not conform to the {result.contract} contract: "
        f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)} "
        f"in {result.events} event{'s' * (result.events != 1)}"
    ]
    ordered = sorted(result.violations, key=lambda v: (v.event_index is None, v.event_index or 0))
    for i, v in enumerate(ordered):
        at = f" at event #{v.event_index}" if v.event_index is not None else ""
        lines.append(f"  {v.rule} ({v.severity.value}){at}: {v.message}")
        index = v.event_index
        last_of_event = i + 1 == len(ordered) or ordered[i + 1].event_index != index
        entry = None if index is None or not last_of_event else result.entry(index)
        if entry is not None:
            lines.append(f"    event #{index}: {_clip(entry.preview)}")
    return "\n".join(lines)


def _short(path: str) -> str:
    """A path relative to the working directory when it is under it (as tracebacks read)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel


def _clip(text: str) -> str:
    return shorten(text, _EVENT_PREVIEW)


def _repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return shorten(text, _REPR_LIMIT)
