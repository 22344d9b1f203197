"""The verdict of a load run, sans-I/O: merged metrics and thresholds in, JSON and a table out.

``--format json`` prints :func:`build_verdict`'s dict; its shape is public interface (keys are
added, never renamed): ``ok``, ``requests`` (streams), ``failures`` (streams with an error),
``metrics`` (each distribution as ``{"p50", "p90", "p95", "p99", "max", "min", "mean",
"count"}``, and the run-wide numbers), ``thresholds`` (``[{"expr", "ok", "value"}]``),
``violations`` (one entry per rule), plus ``warnings``, ``errors`` and ``run``.

``ok``: every threshold holds; with no thresholds, no stream failed; and at least one stream
finished (a run in which every stream was still open at its end is not a pass).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from harness._core.errors import UsageError
from harness._core.thresholds import Threshold, evaluate, parse_threshold

from ._metrics import DIST_METRICS, LoadMetrics

__all__ = [
    "SATURATED_CPU",
    "SLO_METRICS",
    "build_verdict",
    "meets_slos",
    "parse_slo",
    "render_table",
]

#: What a --slo may name: the numbers every stream has of its own.
SLO_METRICS: Final = (
    "ttfb_ms",
    "first_event_ms",
    "first_content_ms",
    "second_content_ms",
    "tpot_ms",
    "stream_ms",
    "output_tokens",
    "events_per_s",
    "reconnect_ms",
    "queue_ms",
)

#: CPU percent of one load process at which its measurements stop being trustworthy.
SATURATED_CPU: Final = 90.0
#: Open loop: streams starting later than this behind schedule (p99) mean the generator lags.
LATE_START_MS: Final = 10.0
#: The gevent loop waking later than this (its wake-up lag: how busy the machine and the
#: process are) means a stamp taken on a wake-up may be late by as much.
LOOP_LAG_MS: Final = 20.0
#: Share of late loop wake-ups above which the verdict warns.
LAG_SHARE: Final = 0.01
#: Achieved arrival rate below this share of the requested one: warn.
ARRIVAL_SHARE: Final = 0.95

_TABLE: Final = (
    "connect_ms",
    "ttfb_ms",
    "first_event_ms",
    "first_content_ms",
    "second_content_ms",
    "tpot_ms",
    "output_tokens",
    "inter_event_ms",
    "stream_ms",
    "reconnect_ms",
    "server_delay_ms",
    "queue_ms",
    "events_per_s",
    "bytes_per_s",
)


def parse_slo(text: str) -> Threshold:
    """One ``--slo``: a bound on a number each stream has (``first_content_ms<500``, no
    percentile: a stream meets it or not); UsageError otherwise."""
    t = parse_threshold(text)
    if t.metric not in SLO_METRICS:
        raise UsageError(
            f"--slo {text!r}: a goal for each stream names one of {', '.join(SLO_METRICS)}"
        )
    if t.key is not None:
        raise UsageError(
            f"--slo {text!r}: a stream meets a goal or not; drop .{t.key} "
            "(gate percentiles with --threshold)"
        )
    return t


def meets_slos(stream: Any, slos: Iterable[Threshold]) -> bool:
    """The stream conformed, did not fail in-band, and meets every goal (a number it does not
    have, such as tpot_ms of a one-token stream, misses)."""
    if not stream.ok or stream.failure is not None:
        return False
    for t in slos:
        value = getattr(stream, t.metric)
        if value is None or not t.holds(float(value)):
            return False
    return True


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _metrics(
    m: LoadMetrics, thresholds: Iterable[Threshold], run_s: float, slos: Sequence[str] = ()
) -> dict[str, Any]:
    extra = {t.quantile for t in thresholds if t.quantile is not None}
    out: dict[str, Any] = {}
    for name in DIST_METRICS:
        d = m.dists[name]
        summary = {k: _r(v) for k, v in d.summary().items()}
        summary["count"] = d.count
        for q in sorted(extra):
            summary.setdefault(f"p{q:g}", _r(d.percentile(q)))
        out[name] = summary
    c = m.counters
    streams = c["streams"]
    storm = c["after_storm_streams"]
    out["requests"] = streams
    out["failures"] = c["failures"]
    out["failure_rate"] = _r(c["failures"] / streams) if streams else None
    # Streams that errored: the server said so in-band (the contract's failure type), or there
    # was no response at all.
    errored = c["errors"] + c["inband_failures"]
    out["error_rate"] = _r(errored / streams) if streams else None
    out["errors_by_code"] = dict(sorted(m.errors_by_code.items(), key=lambda kv: -kv[1]))
    out["total_events_per_s"] = _r(c["events"] / run_s) if run_s > 0 else None
    out["output_tokens_per_s"] = _r(c["output_tokens"] / run_s) if run_s > 0 else None
    whole = streams - c["abandoned"]
    out["output_tokens_source"] = (
        None
        if not whole
        else "usage"
        if c["tokens_from_usage"] == whole
        else "content events"
        if not c["tokens_from_usage"]
        else "usage, else content events"
    )
    if slos:
        out["goodput"] = _r(c["slo_met"] / whole) if whole else None
        out["goodput_per_s"] = _r(c["slo_met"] / run_s) if run_s > 0 else None
    else:
        out["goodput"] = out["goodput_per_s"] = None
    out["streams_per_s"] = _r(streams / run_s) if run_s > 0 else None
    out["after_storm_error_rate"] = _r(c["after_storm_failures"] / storm) if storm else None
    # Streams held back whole by something on the way (timing.buffered), a number to gate on.
    buffered = m.rules.get("timing.buffered")
    out["buffered_streams"] = buffered.streams if buffered is not None else 0
    return out


def _warnings(m: LoadMetrics, metrics: Mapping[str, Any], run: Mapping[str, Any]) -> list[str]:
    out = []
    if m.cpu_max >= SATURATED_CPU:
        out.append(
            f"a load process reached {m.cpu_max:.0f}% CPU: the load generator is saturated and "
            "its latencies measure the harness, not the target -- add --processes or machines"
        )
    c = m.counters
    # One late wake-up is a hiccup (another process on the machine); 1 % of them is a pattern.
    if c["lag_late"] > LAG_SHARE * c["lag_samples"]:
        share = c["lag_late"] / c["lag_samples"]
        lag = m.loop_lag_max_ms
        out.append(
            f"the load process's event loop woke up {LOOP_LAG_MS:g} ms or more late in "
            f"{share:.0%} of its probes (at most {lag:.0f} ms late): a measure of how busy the "
            "machine and this process were (other processes, this one's own work), not of how "
            "many streams it holds. Times the process reads from its own clock as it wakes up "
            "(connect_ms, queue_ms, and every arrival where the kernel gives no receive stamp) "
            f"may read up to {lag:.0f} ms long: that matters for timings of that order, little "
            "for ones far longer"
        )
    if c["streams"] == 0:
        out.append(
            f"no stream finished within the run ({c['open_at_end']} still open at its end, "
            "cut and not judged): a longer --run-time, or a shorter --total-timeout, gives a "
            "verdict"
        )
    elif c["open_at_end"]:
        out.append(f"{c['open_at_end']} streams were still open at the end of the run (not judged)")
    rate = run.get("arrival_rate")
    if rate and c["arrivals_planned"]:
        # The schedule counts every slot that came due, even while the scheduler was starved
        # (it catches up at once, and the lateness is queue_ms); only dropped ones are missing.
        share = c["arrivals_started"] / c["arrivals_planned"]
        if share < ARRIVAL_SHARE:
            achieved = share * float(rate)
            out.append(
                f"achieved {achieved:.1f} new streams/s of the {float(rate):g}/s requested "
                f"({c['arrivals_dropped']} dropped at --max-inflight): the generator could not "
                "keep the schedule"
            )
        late = metrics["queue_ms"].get("p99")
        if late is not None and late > LATE_START_MS:
            out.append(
                f"streams started up to {late:.0f} ms (p99) behind schedule: the generator is "
                "saturated (latencies still count from the intended start)"
            )
    return out


def build_verdict(
    m: LoadMetrics, thresholds: list[Threshold], run: Mapping[str, Any]
) -> dict[str, Any]:
    """The verdict dict; ``run`` carries ``duration_s``, ``target``, ``scenario``, ``users``..."""
    run_s = float(run.get("duration_s") or 0.0)
    metrics = _metrics(m, thresholds, run_s, run.get("slos") or ())
    results = evaluate(thresholds, metrics)
    c = m.counters
    # With no gate: no stream failed, and none ended in an in-band error.
    ok = all(r.ok for r in results) if results else not (c["failures"] or c["inband_failures"])
    ok = ok and c["streams"] > 0  # a run in which no stream finished proved nothing
    violations = [
        {
            "rule": rule,
            "severity": stat.severity,
            "count": stat.count,
            "streams": stat.streams,
            "message": stat.examples[0] if stat.examples else "",
        }
        for rule, stat in sorted(m.rules.items(), key=lambda kv: -kv[1].streams)
    ]
    return {
        "ok": ok,
        "requests": c["streams"],
        "failures": c["failures"],
        "metrics": metrics,
        "thresholds": [r.to_json() for r in results],
        "violations": violations,
        "errors": [
            {"error": k, "count": n} for k, n in sorted(m.errors.items(), key=lambda kv: -kv[1])
        ],
        "warnings": _warnings(m, metrics, run),
        "run": {
            **dict(run),
            "events": c["events"],
            "bytes": c["bytes"],
            "abandoned": c["abandoned"],
            "open_at_end": c["open_at_end"],
            "arrivals": {
                "planned": c["arrivals_planned"],
                "started": c["arrivals_started"],
                "dropped": c["arrivals_dropped"],
            },
            "after_storm": {
                "streams": c["after_storm_streams"],
                "failures": c["after_storm_failures"],
            },
            "cpu_max": round(m.cpu_max, 1),
            "loop_lag_max_ms": round(m.loop_lag_max_ms, 3),
        },
    }


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 10_000:
        return f"{v:,.0f}"
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}"


def render_table(verdict: Mapping[str, Any]) -> str:
    """The final table people read."""
    run, metrics = verdict["run"], verdict["metrics"]
    lines = [
        f"stream-harness load  {run.get('target', '')}  ({run.get('scenario', '')}, "
        f"{float(run.get('duration_s') or 0):.1f} s)",
        "",
        f"  {'metric':<18}{'p50':>10}{'p90':>10}{'p95':>10}{'p99':>10}{'max':>10}{'count':>10}",
    ]
    for name in _TABLE:
        s = metrics[name]
        if not s.get("count"):
            continue
        cells = "".join(f"{_fmt(s.get(k)):>10}" for k in ("p50", "p90", "p95", "p99", "max"))
        lines.append(f"  {name:<18}{cells}{s['count']:>10}")
    rate = metrics.get("failure_rate")
    lines.append("")
    lines.append(
        f"  streams {verdict['requests']}  failures {verdict['failures']}"
        + (f" ({rate:.2%})" if rate is not None else "")
        + f"  events {run['events']}"
        + (f" ({metrics['total_events_per_s']:,.0f}/s)" if metrics["total_events_per_s"] else "")
        + f"  bytes {run['bytes']:,}"
    )
    if metrics.get("errors_by_code"):
        tally = ", ".join(f"{code} {n}" for code, n in metrics["errors_by_code"].items())
        lines.append(f"  in-band errors: {tally}  (error_rate {metrics['error_rate']:.2%})")
    if metrics.get("output_tokens_per_s"):
        lines.append(
            f"  output tokens {metrics['output_tokens_per_s']:,.1f}/s "
            f"(counted from {metrics['output_tokens_source']})"
        )
    if metrics.get("goodput") is not None:
        lines.append(
            f"  goodput {metrics['goodput']:.2%} of streams met every --slo "
            f"({metrics['goodput_per_s'] or 0:,.2f}/s)"
        )
    if run["after_storm"]["streams"]:
        a = run["after_storm"]
        lines.append(f"  after the storm: {a['failures']} of {a['streams']} streams failed")
    for v in verdict["violations"][:10]:
        lines.append(
            f"  ✗ {v['severity']:<7} {v['rule']} in {v['streams']} stream(s): {v['message']}"
        )
    for e in verdict["errors"][:5]:
        lines.append(f"  ✗ no stream  {e['error']} ({e['count']}x)")
    for t in verdict["thresholds"]:
        mark = "✓" if t["ok"] else "✗"
        lines.append(f"  {mark} threshold {t['expr']}  (value: {_fmt(t['value'])})")
    for w in verdict["warnings"]:
        lines.append(f"  ! {w}")
    lines.append("")
    lines.append("PASS" if verdict["ok"] else "FAIL")
    return "\n".join(lines) + "\n"
