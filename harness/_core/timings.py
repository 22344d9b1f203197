"""A stream's event arrival times in bounded memory: exact while short, a histogram when long.

A session stamps every event with its arrival time, and three readers want them: the timing
thresholds (``inter_event_ms`` percentiles), ``timing.buffered`` (how many events, the first
and the last time) and the report's timeline (a few thousand ticks, as many as a person can
see).  None needs 5 million numbers, so :class:`ArrivalTimes` keeps the exact times of the
first :data:`EXACT_TIMES` events only (8 bytes each, the default ``--max-events``: every
stream short enough to be read event by event keeps its exact figures), and from then on:

- the gaps between events in a histogram of log-scale buckets, :data:`SUB_BUCKETS` per power
  of two, so a percentile is off by at most 1/128 of its value;
- a sample of every ``step``-th event's time (the step doubles whenever the sample is full):
  at most ``2 * MAX_SAMPLES`` (index, time) pairs, evenly spread over the stream;
- the first and last time, and the count.

The events of one chunk arrive together, so :meth:`ArrivalTimes.add` takes a run of ``n``
events at one time: O(1) per chunk, not per event, once the exact times are gone.
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, overload

__all__ = ["EXACT_TIMES", "ArrivalTimes", "EventTimes", "GapHistogram", "Span"]

#: Events whose exact arrival times are kept (8 bytes each); a longer stream keeps a histogram.
EXACT_TIMES: Final = 100_000
#: Buckets per power of two of the gap histogram: a bucket spans 1/128 of its value at most.
SUB_BUCKETS: Final = 128
#: The timeline sample holds between this many and twice this many events (the report's
#: timeline draws at most 2000 ticks).
MAX_SAMPLES: Final = 1000


class EventTimes(array):  # type: ignore[type-arg]
    """Event arrival times, 8 bytes each (an ``array('d')``), equal to a list of the same
    numbers, as the ``list[float]`` it replaces was."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return super().__eq__(other)

    __hash__ = None


class GapHistogram:
    """Counts of gaps (ms) in log-scale buckets; zero and negative gaps in a bucket of their own.

    >>> h = GapHistogram()
    >>> h.add(0.0, 3); h.add(10.0); h.add(20.0)
    >>> h.count, h.percentile(50), round(h.percentile(100), 1), h.max
    (5, 0.0, 20.0, 20.0)
    """

    __slots__ = ("buckets", "count", "max", "min", "total", "zeros")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.zeros = 0  # gaps <= 0: events of one chunk
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, gap: float, n: int = 1) -> None:
        """``n`` gaps of ``gap`` ms."""
        if n <= 0:
            return
        self.count += n
        self.total += gap * n
        self.min = min(self.min, gap)
        self.max = max(self.max, gap)
        if gap <= 0.0:
            self.zeros += n
            return
        mantissa, exponent = math.frexp(gap)  # gap = mantissa * 2**exponent, 0.5 <= m < 1
        key = exponent * SUB_BUCKETS + int((mantissa - 0.5) * 2 * SUB_BUCKETS)
        self.buckets[key] = self.buckets.get(key, 0) + n

    def merge(self, other: GapHistogram) -> None:
        for key, n in other.buckets.items():
            self.buckets[key] = self.buckets.get(key, 0) + n
        self.zeros += other.zeros
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile: the middle of the bucket holding that rank (within the
        bucket's 1/128), clamped to the exact minimum and maximum."""
        if not self.count:
            return None
        rank = min(max(1, math.ceil(q / 100.0 * self.count)), self.count)
        seen = self.zeros
        if rank <= seen:
            return 0.0 if self.min >= 0.0 else self.min
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if rank <= seen:
                exponent, sub = divmod(key, SUB_BUCKETS)
                middle = math.ldexp(0.5 + (sub + 0.5) / (2 * SUB_BUCKETS), exponent)
                return min(max(middle, self.min), self.max)
        return self.max

    def summary(self, extra: Iterable[float] = ()) -> dict[str, float | None]:
        """The statistics ``harness._core.thresholds.summarize`` gives of a list of gaps."""
        out: dict[str, float | None] = {
            f"p{q:g}": self.percentile(q) for q in (50.0, 90.0, 95.0, 99.0, *extra)
        }
        out["max"] = self.max if self.count else None
        out["min"] = self.min if self.count else None
        out["mean"] = self.total / self.count if self.count else None
        return out


class Span(Sequence[float]):
    """``n`` arrival times of which only the first and the last are known (``timing.buffered``
    reads no others); any other index is an IndexError."""

    def __init__(self, n: int, first: float, last: float) -> None:
        self._n, self._first, self._last = n, first, last

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> float: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[float]: ...
    def __getitem__(self, i: int | slice) -> float | Sequence[float]:
        if isinstance(i, slice):
            raise IndexError("a Span has no slices")
        if i in (0, -self._n):
            return self._first
        if i in (-1, self._n - 1):
            return self._last
        raise IndexError(i)

    def __iter__(self) -> Iterator[float]:
        raise TypeError("a Span knows its first and last time only")


class ArrivalTimes:
    """The arrival times (ms) of one stream's events, fed in runs; bounded however long."""

    __slots__ = ("_exact", "_last_sample", "count", "first", "gaps", "last", "samples", "step")

    def __init__(self) -> None:
        self._exact: EventTimes | None = EventTimes("d")
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        #: Once the stream is longer than EXACT_TIMES: the gaps, and the timeline's sample.
        self.gaps: GapHistogram | None = None
        self.samples: list[tuple[int, float]] = []
        self.step = 1
        self._last_sample = -1

    @property
    def exact(self) -> EventTimes | None:
        """Every event's time, in order; None once the stream outgrew EXACT_TIMES."""
        return self._exact

    def add(self, t: float, n: int = 1) -> None:
        """``n`` events arrived at ``t`` ms."""
        if n <= 0:
            return
        if not self.count:
            self.first = t
        exact = self._exact
        if exact is not None:
            if self.count + n <= EXACT_TIMES:
                if n == 1:
                    exact.append(t)
                else:
                    exact.extend(array("d", (t,)) * n)
                self.count += n
                self.last = t
                return
            self._outgrow(exact)
        gaps = self.gaps
        assert gaps is not None
        if self.count:
            gaps.add(t - self.last)
        gaps.add(0.0, n - 1)  # the rest of the run came with it
        self._sample(t, n)
        self.count += n
        self.last = t

    def _outgrow(self, exact: array[float]) -> None:
        """From exact times to the histogram and the sample, when the stream gets long."""
        gaps = GapHistogram()
        for a, b in itertools.pairwise(exact):
            gaps.add(b - a)
        self.gaps, self._exact = gaps, None
        self.step = 1
        while len(exact) // self.step > 2 * MAX_SAMPLES:
            self.step *= 2
        self.samples = [(i, exact[i]) for i in range(0, len(exact), self.step)]
        self._last_sample = self.samples[-1][0] if self.samples else -1

    def _sample(self, t: float, n: int) -> None:
        step, start = self.step, self.count
        nxt = self._last_sample + step
        if nxt >= start + n:
            return
        nxt = max(nxt, start)
        nxt += -nxt % step  # samples stay at multiples of the step
        self.samples.extend((i, t) for i in range(nxt, start + n, step))
        self._last_sample = self.samples[-1][0]
        while len(self.samples) > 2 * MAX_SAMPLES:
            self.step *= 2
            self.samples = [s for s in self.samples if s[0] % self.step == 0]
            self._last_sample = self.samples[-1][0]

    def span(self) -> Sequence[float]:
        """What ``timing.buffered`` reads: the count, the first and the last time."""
        if self._exact is not None:
            return self._exact
        return Span(self.count, self.first, self.last)

    def gap_summary(self, extra: Iterable[float] = ()) -> dict[str, float | None] | None:
        """The gaps' statistics from the histogram; None while the exact times are kept."""
        return None if self.gaps is None else self.gaps.summary(extra)

    def timeline(self) -> tuple[list[int], list[float]]:
        """The sample's event indexes and times (every event's, while exact)."""
        if self._exact is not None:
            return list(range(len(self._exact))), list(self._exact)
        indexes = [i for i, _ in self.samples]
        times = [t for _, t in self.samples]
        if indexes and indexes[-1] != self.count - 1:
            indexes.append(self.count - 1)
            times.append(self.last)
        return indexes, times
