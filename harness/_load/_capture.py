"""What a load run keeps for its report, bounded, and mergeable across workers; sans-I/O.

The verdict's histograms say *how much*; the report also shows *when* and *which*:

    Series    events and open streams per wall-clock second (summed over workers)
    Sampler   a uniform sample of stream timelines, failing streams sampled apart so they are
              always shown.  Each stream draws a random key; every process keeps the streams
              with the highest keys, and the highest keys of a union are the highest of its
              parts' -- so a worker can send its sample and start afresh, and the master's
              merge is still a uniform sample of the whole run.
    Captures  the raw bytes of a few failing streams (at most PER_RULES for one set of broken
              rules, MAX_CAPTURES in all), for ``.sse`` files ``stream-harness check``
              reproduces.

:class:`ReportData` holds all three with ``dump`` / ``merge`` / ``take`` as ``LoadMetrics``
does; its dump is plain JSON (raw bytes as latin-1 text, which round-trips every byte and keeps
ASCII readable -- so a secret that slipped through would show up to a grep, not hide in base64).
No gevent, no Locust, no clock, no randomness here: callers pass times and keys.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Final

from ._stream import StreamResult

__all__ = [
    "MAX_CAPTURES",
    "SAMPLE",
    "Budget",
    "Keeper",
    "ReportData",
    "Sampler",
    "Series",
    "capture",
    "timeline",
]

#: Stream timelines kept of each kind (failing, passing).
SAMPLE: Final = 30
#: Failing streams whose raw bytes are kept, in all and per set of broken rules.
MAX_CAPTURES: Final = 10
PER_RULES: Final = 2
#: Bytes kept of one stream, and of all the streams a process is capturing at once.
CAPTURE_BYTES: Final = 1 << 20
CAPTURE_BUDGET: Final = 64 << 20
#: Seconds a series keeps (a day at one point per second); later seconds are not kept.
MAX_SECONDS: Final = 86_400

_TIE = itertools.count()


class Series:
    """Per wall-clock second: events that arrived, and the most streams open at once."""

    def __init__(self) -> None:
        self.events: dict[int, int] = {}
        self.active: dict[int, int] = {}
        #: Per source (worker): the last second merged and its value.  A worker's reports are
        #: in order, so only that second can come again (a second its report cut in two).
        self._last: dict[str, tuple[int, int]] = {}

    def add_events(self, second: int, n: int) -> None:
        events = self.events
        if second in events:
            events[second] += n
        elif len(events) < MAX_SECONDS:
            events[second] = n

    def sample_active(self, second: int, n: int) -> None:
        """One process's open streams now (the most seen in a second is kept)."""
        active = self.active
        if second in active:
            active[second] = max(active[second], n)
        elif len(active) < MAX_SECONDS:
            active[second] = n

    def dump(self) -> dict[str, Any]:
        return {
            "events": sorted(self.events.items()),
            "active": sorted(self.active.items()),
        }

    def merge(self, data: dict[str, Any], source: str = "") -> None:
        """Add a report of ``source``'s seconds: events and open streams sum across sources;
        a second that two reports of one source both hold counts once, at its most."""
        for sec, n in data.get("events", []):
            self.add_events(int(sec), int(n))
        last_sec, last_n = self._last.get(source, (None, 0))
        for sec, n in data.get("active", []):
            sec, n = int(sec), int(n)
            add = max(0, n - last_n) if sec == last_sec else n
            last_sec, last_n = sec, (max(n, last_n) if sec == last_sec else n)
            if sec in self.active:
                self.active[sec] += add
            elif len(self.active) < MAX_SECONDS:
                self.active[sec] = add
        if last_sec is not None:
            self._last[source] = (last_sec, last_n)


class Sampler:
    """The ``size`` items with the highest keys: a uniform sample when keys are uniform."""

    def __init__(self, size: int = SAMPLE) -> None:
        self.size = size
        self._heap: list[tuple[float, int, dict[str, Any]]] = []

    def offer(self, key: float, item: dict[str, Any]) -> None:
        entry = (key, next(_TIE), item)
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, entry)
        elif key > self._heap[0][0]:
            heapq.heapreplace(self._heap, entry)

    def would_keep(self, key: float) -> bool:
        return len(self._heap) < self.size or key > self._heap[0][0]

    def items(self) -> list[dict[str, Any]]:
        return [item for _, _, item in sorted(self._heap, key=lambda e: -e[0])]

    def dump(self) -> list[dict[str, Any]]:
        return [{**item, "key": key} for key, _, item in self._heap]

    def merge(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            item = dict(item)
            self.offer(float(item.pop("key")), item)


class Budget:
    """The raw bytes the streams being captured may hold at once, each at most ``each``: so
    a thousand open streams cannot hold a gigabyte in case one of them fails."""

    def __init__(self, total: int = CAPTURE_BUDGET, each: int = CAPTURE_BYTES) -> None:
        self.total, self.each, self.held = total, each, 0

    def keeper(self) -> Keeper:
        return Keeper(self)


class Keeper:
    """One stream's share of a :class:`Budget`: ``keeper(n)`` says whether n more bytes may be
    kept; :meth:`release` gives them back when the stream is done."""

    __slots__ = ("budget", "held")

    def __init__(self, budget: Budget) -> None:
        self.budget, self.held = budget, 0

    def __call__(self, n: int) -> bool:
        b = self.budget
        if self.held + n > b.each or b.held + n > b.total:
            return False
        self.held += n
        b.held += n
        return True

    def release(self) -> None:
        self.budget.held -= self.held
        self.held = 0


def timeline(r: StreamResult, start_wall: float) -> dict[str, Any]:
    """One stream's row of the report's waterfall (JSON-able)."""
    return {
        "start": round(start_wall, 6),
        "ttfb_ms": r.ttfb_ms,
        "stream_ms": round(r.stream_ms, 3),
        "events": r.events,
        "arrivals": [[round(t, 3), n] for t, n in r.arrivals],
        "bad": list(r.bad_events),
        "reconnects_ms": [round(t, 3) for t in r.reconnects_ms],
        "rules": list(r.failed_rules),
        "error": r.error,
        "ok": r.ok,
        "abandoned": r.abandoned,
    }


def capture(r: StreamResult, start_wall: float) -> dict[str, Any]:
    """A failing stream's raw bytes, its timeline and what it broke (JSON-able)."""
    assert r.raw is not None
    return {
        **timeline(r, start_wall),
        "raw": b"".join(r.raw).decode("latin-1"),
        "complete": r.complete,
        "framing": r.framing,
        "first_event_ms": r.first_event_ms,
        "violations": [
            [v.rule, v.severity.value, v.message, v.event_index, r.rule_counts.get(v.rule, 1)]
            for v in r.violations
        ],
    }


class ReportData:
    """Everything one process (or, merged, a whole run) keeps for the report."""

    def __init__(self) -> None:
        self.series = Series()
        self.failing = Sampler()
        self.passing = Sampler()
        self.captures: list[dict[str, Any]] = []
        #: Captures per set of broken rules, over the whole run (a worker's survive ``take``).
        self.captured: dict[str, int] = {}
        self.streams = 0

    # -- one process ------------------------------------------------------------------------

    def wants_capture(self) -> bool:
        """Whether a new stream's raw bytes may still be needed (room for more captures)."""
        return sum(self.captured.values()) < MAX_CAPTURES

    def add(self, r: StreamResult, start_wall: float, key: float) -> None:
        """A finished stream: into the sample (maybe), its bytes kept if it failed (maybe)."""
        self.streams += 1
        sampler = self.passing if r.ok else self.failing
        if sampler.would_keep(key):
            sampler.offer(key, timeline(r, start_wall))
        if r.ok or not r.raw or r.raw_truncated:
            return
        rules = ",".join(sorted(r.failed_rules))
        if self.captured.get(rules, 0) < PER_RULES and self.wants_capture():
            self.captured[rules] = self.captured.get(rules, 0) + 1
            self.captures.append(capture(r, start_wall))

    # -- across processes -------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "series": self.series.dump(),
            "failing": self.failing.dump(),
            "passing": self.passing.dump(),
            "captures": list(self.captures),
            "streams": self.streams,
        }

    def merge(self, data: dict[str, Any], source: str = "") -> None:
        """Add a report of ``source`` (a worker's id)."""
        self.series.merge(data.get("series", {}), source)
        self.failing.merge(data.get("failing", []))
        self.passing.merge(data.get("passing", []))
        self.streams += int(data.get("streams", 0))
        for c in data.get("captures", []):
            rules = ",".join(sorted(c.get("rules", [])))
            if self.captured.get(rules, 0) < PER_RULES and self.wants_capture():
                self.captured[rules] = self.captured.get(rules, 0) + 1
                self.captures.append(c)

    def take(self) -> dict[str, Any]:
        """:meth:`dump`, then start afresh but for the capture quota (which lasts the run)."""
        data = self.dump()
        captured = self.captured
        self.__init__()  # type: ignore[misc]
        self.captured = captured
        return data
