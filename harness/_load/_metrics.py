"""Full-resolution load metrics: HDR histograms, counters, rule counts; mergeable across workers.

Locust keeps response times at two significant digits and whole milliseconds, which erases
the sub-millisecond gaps of a token stream.  Every metric here is an HDR histogram of integer
*micro*-units (microseconds for the ``_ms`` metrics, thousandths for the rates) at three
significant digits, plus the exact count, sum, min and max alongside -- so a percentile is
within 0.1 % of the true value and the max is exact.

A worker process sends :meth:`LoadMetrics.dump` (what it measured since its last report) in
Locust's ``report_to_master`` event and starts afresh; the master :meth:`merge`\\ s every
``worker_report`` into its own.  The dump is plain JSON-able data (histograms as HDR's own
compressed base64 encoding), so it survives Locust's msgpack transport unchanged.

No gevent, no Locust, no clock here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from harness._core.rules import Violation

__all__ = ["DIST_METRICS", "PERCENTILES", "Dist", "LoadMetrics"]

#: name -> scale: the value recorded is round(value * scale).
DIST_METRICS: Final = {
    "ttfb_ms": 1000,
    "first_event_ms": 1000,
    "first_content_ms": 1000,
    "second_content_ms": 1000,
    "tpot_ms": 1000,
    "output_tokens": 1,
    "inter_event_ms": 1000,
    "stream_ms": 1000,
    "events_per_s": 1000,
    "bytes_per_s": 1,
    "reconnect_ms": 1000,
    "server_delay_ms": 1000,
    "queue_ms": 1000,
    "connect_ms": 1000,
}
PERCENTILES: Final = (50.0, 90.0, 95.0, 99.0)
_HIGHEST: Final = 10**11
_DIGITS: Final = 3
#: Example messages kept per rule.
_EXAMPLES: Final = 3
#: Distinct error texts, and in-band error codes, counted one by one; the rest are counted
#: together under OTHER (a target can put a number, an id or a timestamp in every one).
MAX_KEYS: Final = 100
OTHER: Final = "(others)"


def _hist() -> HdrHistogram:
    return HdrHistogram(1, _HIGHEST, _DIGITS)


class Dist:
    """One metric's distribution: an HDR histogram plus exact count, sum, min and max."""

    __slots__ = ("count", "hist", "max", "min", "scale", "sum")

    def __init__(self, scale: int) -> None:
        self.scale = scale
        self.reset()

    def reset(self) -> None:
        self.hist: HdrHistogram | None = None  # made on first use: most runs skip some metrics
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def record(self, value: float, count: int = 1) -> None:
        if count <= 0:
            return
        if value < 0.0:
            value = 0.0  # a clock step cannot make time run backwards in a report
        h = self.hist
        if h is None:
            h = self.hist = _hist()
        h.record_value(min(round(value * self.scale), _HIGHEST), count)
        self.count += count
        self.sum += value * count
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def percentile(self, q: float) -> float | None:
        if not self.count or self.hist is None:
            return None
        v: int = self.hist.get_value_at_percentile(q)
        return min(max(v / self.scale, self.min), self.max)

    def summary(self) -> dict[str, float | None]:
        """p50, p90, p95, p99, max, min, mean (None when nothing was measured) and count."""
        out: dict[str, float | None] = {f"p{q:g}": self.percentile(q) for q in PERCENTILES}
        has = self.count > 0
        out["max"] = self.max if has else None
        out["min"] = self.min if has else None
        out["mean"] = self.sum / self.count if has else None
        out["count"] = float(self.count)
        return out

    def buckets(self) -> list[tuple[float, int]]:
        """(value, count) of every recorded bucket, lowest first: the distribution's shape at
        the histogram's full resolution, for plots, without keeping a single raw value."""
        if self.hist is None or not self.count:
            return []
        return [
            (min(max(step.value_iterated_to / self.scale, self.min), self.max),
             int(step.count_added_in_this_iter_step))
            for step in self.hist.get_recorded_iterator()
        ]  # fmt: skip

    def dump(self) -> dict[str, Any]:
        enc = self.hist.encode() if self.hist is not None else b""
        return {
            "hist": enc.decode("ascii") if isinstance(enc, bytes) else enc,
            "count": self.count,
            "sum": self.sum,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
        }

    def merge(self, d: dict[str, Any]) -> None:
        if not d.get("count"):
            return
        if self.hist is None:
            self.hist = _hist()
        self.hist.decode_and_add(d["hist"])
        self.count += int(d["count"])
        self.sum += float(d["sum"])
        self.min = min(self.min, float(d["min"]))
        self.max = max(self.max, float(d["max"]))


def _tally(counts: dict[str, int], key: str, n: int) -> None:
    """``counts[key] += n``, with at most MAX_KEYS keys (then OTHER takes the count)."""
    if key not in counts and len(counts) >= MAX_KEYS:
        key = OTHER
    counts[key] = counts.get(key, 0) + n


@dataclass
class RuleStat:
    severity: str
    count: int = 0
    streams: int = 0
    examples: list[str] = field(default_factory=list)


_COUNTERS: Final = (
    "streams",  # streams finished (abandoned ones included)
    "failures",  # streams with an error: a contract error, HTTP error, no connection
    "errors",  # streams that never got a response (refused, reset, bad HTTP)
    "abandoned",
    "events",
    "bytes",
    "arrivals_planned",  # open loop: arrivals due by the schedule
    "arrivals_started",
    "arrivals_dropped",  # open loop: due while --max-inflight streams were open
    "after_storm_streams",
    "after_storm_failures",
    "inband_failures",  # streams that ended in the contract's failure type (an error event)
    "output_tokens",  # summed over streams
    "tokens_from_usage",  # streams whose output_tokens the stream itself reported
    "slo_met",  # streams that met every --slo (goodput)
    "open_at_end",  # streams still open when the run ended (cut, not judged)
    "lag_samples",  # event-loop lag probes
    "lag_late",  # ... that woke LOOP_LAG_MS or more late
)


class LoadMetrics:
    """Everything one process (or, merged, a whole run) measured."""

    def __init__(self) -> None:
        self.dists: dict[str, Dist] = {k: Dist(s) for k, s in DIST_METRICS.items()}
        self.counters: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self.rules: dict[str, RuleStat] = {}
        self.errors: dict[str, int] = {}  # error text -> count (streams with no response)
        #: In-band failures by the code the stream gave (its type when it gave none).
        self.errors_by_code: dict[str, int] = {}
        self.cpu_max = 0.0
        self.loop_lag_max_ms = 0.0

    def record(self, name: str, value: float | None, count: int = 1) -> None:
        if value is not None:
            self.dists[name].record(value, count)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def rule(self, v: Violation, occurrences: int = 1) -> None:
        stat = self.rules.get(v.rule)
        if stat is None:
            stat = self.rules[v.rule] = RuleStat(v.severity.value)
        stat.count += occurrences
        stat.streams += 1
        if len(stat.examples) < _EXAMPLES:
            stat.examples.append(v.message)

    def error(self, text: str, n: int = 1) -> None:
        _tally(self.errors, text, n)

    def failure_code(self, code: str, n: int = 1) -> None:
        _tally(self.errors_by_code, code, n)

    def dump(self) -> dict[str, Any]:
        return {
            "dists": {k: d.dump() for k, d in self.dists.items() if d.count},
            "counters": dict(self.counters),
            "errors_by_code": dict(self.errors_by_code),
            "rules": {
                k: [r.severity, r.count, r.streams, list(r.examples)] for k, r in self.rules.items()
            },
            "errors": dict(self.errors),
            "cpu_max": self.cpu_max,
            "loop_lag_max_ms": self.loop_lag_max_ms,
        }

    def merge(self, data: dict[str, Any]) -> None:
        for k, d in data.get("dists", {}).items():
            if k in self.dists:
                self.dists[k].merge(d)
        for k, n in data.get("counters", {}).items():
            self.counters[k] = self.counters.get(k, 0) + int(n)
        for k, (severity, count, streams, examples) in data.get("rules", {}).items():
            stat = self.rules.setdefault(k, RuleStat(severity))
            stat.count += count
            stat.streams += streams
            stat.examples.extend(examples[: max(0, _EXAMPLES - len(stat.examples))])
        for k, n in data.get("errors", {}).items():
            self.error(k, int(n))
        for k, n in data.get("errors_by_code", {}).items():
            self.failure_code(k, int(n))
        self.cpu_max = max(self.cpu_max, float(data.get("cpu_max", 0.0)))
        self.loop_lag_max_ms = max(self.loop_lag_max_ms, float(data.get("loop_lag_max_ms", 0.0)))

    def take(self) -> dict[str, Any]:
        """:meth:`dump`, then start afresh (a worker's report holds what is new since the last).

        The :class:`Dist` objects are reset in place, not replaced: a stream that is still open
        keeps references to them (``user._Sink``) and must go on recording into this run."""
        data = self.dump()
        for d in self.dists.values():
            d.reset()
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self.rules = {}
        self.errors = {}
        self.errors_by_code = {}
        self.cpu_max = 0.0
        self.loop_lag_max_ms = 0.0
        return data
