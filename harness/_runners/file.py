"""Check a recorded stream: the raw bytes of a response saved to a file.

The suffix says the framing (``.sse``, ``.ndjson``/``.jsonl``, ``.txt``) when the contract accepts
it; otherwise the contract's own first framing is used.  A ``.txt`` recording has no chunk
boundaries left, so as raw text it is one token per read."""

from __future__ import annotations

import time
from pathlib import Path

from harness._core.errors import UsageError
from harness._core.framing import SUFFIXES, choose_framing, framings_of
from harness._core.http_rules import timeout_total
from harness._core.options import CheckOptions
from harness._core.rules import violation
from harness._core.session import CheckResult, ContractChecker, StreamSession, Timing

__all__ = ["run_file"]

_CHUNK = 1 << 16


def run_file(path: Path, options: CheckOptions, checker: ContractChecker) -> CheckResult:
    """Decode and check ``path`` in fixed-size chunks (memory stays flat on any size)."""
    start = time.monotonic()
    framing = choose_framing(SUFFIXES.get(path.suffix.lower()), framings_of(checker))
    session = StreamSession(
        str(path),
        checker,
        start=start,
        max_event_bytes=options.max_event_bytes,
        max_events=options.max_events,
        framing=framing,
    )
    interrupted = timed_out = False
    deadline = start + options.total_timeout  # a recording is bounded like any stream
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                now = time.monotonic()
                if now > deadline:
                    timed_out = True
                    break
                if not session.feed_bytes(chunk, now):
                    break
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    except KeyboardInterrupt:  # a partial result still makes a (marked) report
        interrupted = True
    if timed_out:
        session.add(
            violation("timeout.total", timeout_total(options.total_timeout, session.events))
        )
    result = session.finish(time.monotonic(), complete=not (interrupted or timed_out))
    if interrupted:
        result.extra["interrupted"] = True
    # A recording has no network timing: only how long checking it took.
    result.timing = Timing(duration_ms=result.timing.duration_ms)
    result.event_times_ms, result.arrivals = [], None
    for entry in result.transcript:
        entry.time_ms = None
    return result
