"""Timing gates, sans-I/O: ``ttfb_ms.p95<800``, ``failure_rate<0.01``, ``events_per_s>20``.

One syntax for ``load``, ``check`` and ``manifest`` (``--threshold``, repeatable)::

    METRIC[.STAT] OP NUMBER[UNIT]

    METRIC  a distribution (ttfb_ms, first_event_ms, first_content_ms, inter_event_ms,
            stream_ms / duration_ms, events_per_s, bytes_per_s, reconnect_ms,
            server_delay_ms, queue_ms, connect_ms, tls_ms, second_content_ms, tpot_ms,
            output_tokens) or a run-wide number (failure_rate,
            requests, failures, error_rate, total_events_per_s, streams_per_s,
            after_storm_error_rate, buffered_streams, goodput, goodput_per_s,
            output_tokens_per_s)
    STAT    pNN (any percentile: p50, p95, p99.9), max, min, mean (avg), median
    OP      <  <=  >  >=
    UNIT    optional: ms, or s (converted to ms), for the _ms metrics; % for the rates

A distribution without ``.STAT`` is gated on its worst value, so that it holds for *every*
stream: ``ttfb_ms<500`` is ``ttfb_ms.max<500`` and ``events_per_s>20`` is
``events_per_s.min>20``.  For a single ``check`` each metric is one number (its every
percentile is that number), except ``inter_event_ms``, which is the distribution of the
stream's gaps.

A gate on something the run did not measure (``reconnect_ms`` without reconnects) fails, with
``value: null``: a gate that cannot be evaluated must not pass silently.
"""

from __future__ import annotations

import difflib
import itertools
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from harness._core.errors import UsageError
from harness._core.timings import GapHistogram

__all__ = [
    "DISTRIBUTIONS",
    "SCALARS",
    "Threshold",
    "ThresholdResult",
    "evaluate",
    "metrics_from_check",
    "metrics_from_checks",
    "parse_threshold",
    "percentile",
]

#: Metrics that are distributions (over streams, or over gaps).
DISTRIBUTIONS: Final = frozenset(
    {
        "ttfb_ms",
        "first_event_ms",
        "first_content_ms",
        "inter_event_ms",
        "stream_ms",
        "duration_ms",
        "events_per_s",
        "bytes_per_s",
        "reconnect_ms",
        "server_delay_ms",
        "queue_ms",
        "connect_ms",
        "tls_ms",
        "second_content_ms",
        "tpot_ms",
        "output_tokens",
    }
)
#: Run-wide single numbers.
SCALARS: Final = frozenset(
    {
        "failure_rate",
        "error_rate",
        "requests",
        "failures",
        "total_events_per_s",
        "streams_per_s",
        "after_storm_error_rate",
        "buffered_streams",
        "goodput",
        "goodput_per_s",
        "output_tokens_per_s",
    }
)
_RATES: Final = frozenset({"failure_rate", "error_rate", "after_storm_error_rate", "goodput"})
_ALIASES: Final = {"duration_ms": "stream_ms"}

_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_SYNTAX: Final = re.compile(
    r"""^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)
        (?:\.(?P<stat>[A-Za-z0-9_.]*))?
        \s*(?P<op><=|>=|==|=|<|>)
        \s*(?P<number>[^\s]*?)
        \s*(?P<unit>ms|s|%)?\s*$""",
    re.X,
)
_EXAMPLE: Final = "e.g. 'ttfb_ms.p95<800' or 'failure_rate<0.01'"


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed gate.  ``key`` is the statistic looked up (``p95``, ``max``...), or None."""

    expr: str
    metric: str
    key: str | None
    op: str
    limit: float

    @property
    def quantile(self) -> float | None:
        """The percentile this gate needs (95.0 for ``p95``), or None."""
        return float(self.key[1:]) if self.key and self.key.startswith("p") else None

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.limit)

    def worst_key(self) -> str:
        """The statistic a bare distribution is gated on: its worst value for ``op``."""
        return "max" if self.op in ("<", "<=") else "min"


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    threshold: Threshold
    ok: bool
    value: float | None

    @property
    def expr(self) -> str:
        return self.threshold.expr

    def to_json(self) -> dict[str, Any]:
        value = None if self.value is None else round(self.value, 6)
        return {"expr": self.expr, "ok": self.ok, "value": value}


def parse_threshold(text: str) -> Threshold:
    """Parse ``METRIC[.STAT] OP NUMBER``; raises :class:`UsageError` with a one-line reason."""
    expr = " ".join(text.split())
    if not expr:
        raise UsageError(f"empty --threshold: expected METRIC[.STAT]<NUMBER, {_EXAMPLE}")
    m = _SYNTAX.match(text)
    if m is None:
        if not any(c in text for c in "<>="):
            raise UsageError(
                f"--threshold {expr!r} has no comparison: expected <, <=, > or >=, {_EXAMPLE}"
            )
        raise UsageError(f"--threshold {expr!r} is not METRIC[.STAT] OP NUMBER, {_EXAMPLE}")
    metric = _metric(m["metric"], expr)
    key = _stat(metric, m["stat"], expr)
    op = m["op"]
    if op in ("=", "=="):
        raise UsageError(f"--threshold {expr!r}: use <, <=, > or >= (a timing is never exact)")
    limit = _number(m["number"], expr)
    limit = _unit(metric, m["unit"], limit, expr)
    return Threshold(expr.replace(" ", ""), metric, key, op, limit)


def _metric(name: str, expr: str) -> str:
    known = DISTRIBUTIONS | SCALARS
    if name in known:
        return _ALIASES.get(name, name)
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UsageError(
        f"unknown metric {name!r} in --threshold {expr!r}{hint} (known: {', '.join(sorted(known))})"
    )


def _stat(metric: str, stat: str | None, expr: str) -> str | None:
    if stat is None:
        return None
    if metric in SCALARS:
        raise UsageError(f"--threshold {expr!r}: {metric} is one number, it has no .{stat}")
    low = stat.lower()
    if low in ("max", "min", "mean"):
        return low
    if low == "avg":
        return "mean"
    if low == "median":
        return "p50"
    pm = re.fullmatch(r"p(\d{1,2}(?:\.\d+)?|100)", low)
    if pm is None:
        raise UsageError(
            f"unknown statistic {stat!r} in --threshold {expr!r}: "
            "use pNN (p50, p95, p99.9), max, min or mean"
        )
    q = float(pm[1])
    if not 0 < q <= 100:
        raise UsageError(f"--threshold {expr!r}: a percentile is between 0 and 100, got {q:g}")
    return f"p{q:g}"


def _number(text: str, expr: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UsageError(f"--threshold {expr!r}: {text!r} is not a number")
    return value


def _unit(metric: str, unit: str | None, value: float, expr: str) -> float:
    if unit is None:
        return value
    if unit in ("ms", "s") and metric.endswith("_ms"):
        return value * 1000.0 if unit == "s" else value
    if unit == "%" and metric in _RATES:
        return value / 100.0
    raise UsageError(f"--threshold {expr!r}: unit {unit!r} does not apply to {metric}")


# -- evaluation ---------------------------------------------------------------------------------

MetricValue = float | Mapping[str, float | None] | None


def evaluate(
    thresholds: Iterable[Threshold], metrics: Mapping[str, MetricValue]
) -> list[ThresholdResult]:
    """Each gate against ``metrics``: a name maps to a number, or to ``{"p95": ..., "max": ...}``.

    A number stands for every statistic of a one-sample distribution (a single check).  A
    missing metric or statistic, or ``None``, fails the gate with ``value`` None.
    """
    return [_evaluate_one(t, metrics) for t in thresholds]


def _evaluate_one(t: Threshold, metrics: Mapping[str, MetricValue]) -> ThresholdResult:
    raw = metrics.get(t.metric)
    if raw is None and t.metric == "stream_ms":
        raw = metrics.get("duration_ms")
    value: float | None
    if raw is None or isinstance(raw, int | float):
        value = None if raw is None else float(raw)
    else:
        got = raw.get(t.key or t.worst_key())
        value = None if got is None else float(got)
    ok = value is not None and not math.isnan(value) and t.holds(value)
    return ThresholdResult(t, ok, value)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(values: Sequence[float], extra: Iterable[float] = ()) -> dict[str, float | None]:
    """p50, p90, p95, p99 (and any ``extra`` percentiles), max, min, mean of ``values``."""
    out: dict[str, float | None] = {
        f"p{q:g}": percentile(values, q) for q in (50.0, 90.0, 95.0, 99.0, *extra)
    }
    out["max"] = max(values) if values else None
    out["min"] = min(values) if values else None
    out["mean"] = sum(values) / len(values) if values else None
    return out


def metrics_from_check(result: Any, thresholds: Iterable[Threshold] = ()) -> dict[str, MetricValue]:
    """The metrics one ``check`` (a :class:`~harness.CheckResult`) provides, for :func:`evaluate`.

    ``ttfb_ms``, ``first_event_ms``, ``first_content_ms``, ``stream_ms``/``duration_ms``,
    ``events_per_s``, ``reconnect_ms`` (with --resume-after) are numbers; ``inter_event_ms`` is
    the distribution of the stream's gaps (any percentile a threshold names is computed).
    ``failure_rate`` is 0 or 1, ``requests`` 1.
    """
    timing = result.timing
    extra = {t.quantile for t in thresholds if t.quantile is not None}
    arrivals = getattr(result, "arrivals", None)
    gap_stats = None if arrivals is None else arrivals.gap_summary(extra)
    if gap_stats is None:  # a short stream: its exact times
        times: list[float] = list(result.event_times_ms)
        gap_stats = summarize([b - a for a, b in itertools.pairwise(times)], extra)
    duration = timing.duration_ms
    first_content = _first_content_ms(result)
    events_per_s = result.events * 1000.0 / duration if duration else None
    reconnect = result.extra.get("reconnect_ms")
    return {
        "ttfb_ms": timing.ttfb_ms,
        "first_event_ms": timing.first_event_ms,
        "first_content_ms": first_content,
        "stream_ms": duration,
        "duration_ms": duration,
        "inter_event_ms": gap_stats,
        "events_per_s": events_per_s,
        "reconnect_ms": float(reconnect) if isinstance(reconnect, int | float) else None,
        "connect_ms": getattr(timing, "connect_ms", None),
        "tls_ms": getattr(timing, "tls_ms", None),
        "failure_rate": 0.0 if result.ok else 1.0,
        "requests": 1.0,
        "failures": 0.0 if result.ok else 1.0,
    }


def _first_content_ms(result: Any) -> float | None:
    """The time of the first event the contract calls content (``CheckResult.first_content``)."""
    index = getattr(result, "first_content", None)
    entry = None if index is None else result.entry(index)
    time_ms: float | None = None if entry is None else entry.time_ms
    return time_ms


def _pooled_gaps(results: Sequence[Any], extra: Iterable[float]) -> dict[str, float | None]:
    """Every gap of every stream: exact while all were short, else in one histogram."""
    long = [h for r in results if (h := getattr(getattr(r, "arrivals", None), "gaps", None))]
    if not long:
        gaps = [b - a for r in results for a, b in itertools.pairwise(list(r.event_times_ms))]
        return summarize(gaps, extra)
    pooled = GapHistogram()
    for r in results:
        histogram = getattr(getattr(r, "arrivals", None), "gaps", None)
        if histogram is not None:
            pooled.merge(histogram)
        else:
            for a, b in itertools.pairwise(list(r.event_times_ms)):
                pooled.add(b - a)
    return pooled.summary(extra)


def metrics_from_checks(
    results: Sequence[Any], thresholds: Iterable[Threshold] = ()
) -> dict[str, MetricValue]:
    """The metrics of many checked streams (a function's property-test examples), pooled.

    Each per-stream number becomes a distribution over the streams (so ``ttfb_ms.p95`` and a
    bare ``ttfb_ms``, its worst value, both work); ``inter_event_ms`` pools every gap of every
    stream; ``failure_rate`` is the share of streams that did not conform.
    """
    thresholds = list(thresholds)
    extra = {t.quantile for t in thresholds if t.quantile is not None}
    singles = [metrics_from_check(r, thresholds) for r in results]
    out: dict[str, MetricValue] = {}
    for name in ("ttfb_ms", "first_event_ms", "first_content_ms", "stream_ms", "duration_ms",
                 "events_per_s", "reconnect_ms"):  # fmt: skip
        values = [float(v) for m in singles if isinstance(v := m.get(name), int | float)]
        out[name] = summarize(values, extra) if values else None
    out["inter_event_ms"] = _pooled_gaps(results, extra)
    failed = sum(not r.conforms for r in results)
    out["requests"] = float(len(results))
    out["failures"] = float(failed)
    out["failure_rate"] = failed / len(results) if results else None
    return out
