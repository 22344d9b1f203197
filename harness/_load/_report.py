"""The report of a load run: a :class:`harness._report.model.Report` from the verdict and the report
data the Locust master wrote (``_capture.ReportData``, ``--sse-report-data``).

    cases    one per threshold, one per rule broken under load, one for streams that got no
             response, and "streams conform" -- so CI lists failures by name and a passing run
             still shows a green test
    plots    TTFB (CDF), inter-event gaps (histogram), events/s and open streams per second,
             and a waterfall of a sample of streams, failing ones first
    streams  the raw bytes of a few failing streams, re-checked by the same core
             ``stream-harness check FILE.sse`` runs, so the page shows what that command says

Sans-I/O: dicts in, a Report out; ``_runner`` writes it.  When a rule fails a stream but the run
passes (a ``failure_rate`` threshold tolerates it), its case is a note, not a failure: the
JUnit file agrees with the exit code.
"""

from __future__ import annotations

import bisect
import math
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, Final

from harness._contracts.registry import get_checker
from harness._core.rules import Severity, Violation
from harness._core.session import CheckResult, StreamSession, Timing
from harness._report import svg as _svg
from harness._report.model import Case, Plot, Report, StreamArtifact, Table

from ._capture import SAMPLE
from ._metrics import DIST_METRICS, Dist

__all__ = ["load_cases", "load_plots", "load_report", "load_tables"]

#: Points a CDF is drawn from (quantiles of the full-resolution histogram).
_CDF_POINTS: Final = 400
#: Points of a time series; longer runs are averaged down to this.
_SERIES_POINTS: Final = 600
#: Event ticks drawn per waterfall row (bad events always among them).
_TICKS: Final = 200


def load_report(
    verdict: Mapping[str, Any],
    data: Mapping[str, Any],
    *,
    contract: str,
    command_line: str,
    secrets: tuple[str, ...],
    incomplete: bool = False,
) -> Report:
    """The report of one load run; ``data`` may be empty (Locust never got to write it)."""
    title = str(verdict.get("run", {}).get("target", ""))
    report = Report(
        command="load",
        title=title,
        verdict=dict(verdict),
        cases=load_cases(verdict),
        plots=load_plots(verdict, data),
        tables=load_tables(verdict),
        reproducers=[command_line],
        secrets=secrets,
        incomplete=incomplete,
    )
    flag = "" if contract == "prefab" else f" --contract {shlex.quote(contract)}"
    for i, c in enumerate(data.get("captures", []), 1):
        rules = c.get("rules") or ["failed"]
        result, only_live = _replay(c, contract, title)
        stream = StreamArtifact(f"failing-{i}-{rules[0]}", result)
        stream.reproducers = [
            f"stream-harness check {stream.filename}{flag}  # in the report directory"
        ]
        stream.reproducers += _caveats(c, only_live)
        report.streams.append(stream)
        report.reproducers.append(stream.reproducers[0])
    return report


# -- tables -----------------------------------------------------------------------------------

#: The metrics table's rows, in order, and each one's unit.
_UNITS: Final = {
    "connect_ms": "ms",
    "ttfb_ms": "ms",
    "first_event_ms": "ms",
    "first_content_ms": "ms",
    "second_content_ms": "ms",
    "inter_event_ms": "ms",
    "tpot_ms": "ms",
    "stream_ms": "ms",
    "reconnect_ms": "ms",
    "server_delay_ms": "ms",
    "queue_ms": "ms",
    "output_tokens": "tokens",
    "events_per_s": "events/s",
    "bytes_per_s": "bytes/s",
}
_STATS: Final = ("p50", "p90", "p95", "p99", "max")


def _cell(v: object) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return "-"
    if isinstance(v, int):
        return f"{v:,}"
    if abs(v) >= 10_000:
        return f"{v:,.0f}"
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3g}"


def load_tables(verdict: Mapping[str, Any]) -> list[Table]:
    """The metrics a person reads first: per metric count, p50, p90, p95, p99, max and unit;
    the run-wide rates; and the in-band errors by code."""
    metrics = verdict.get("metrics", {})
    rows = []
    for name, unit in _UNITS.items():
        s = metrics.get(name)
        if isinstance(s, Mapping) and s.get("count"):
            rows.append([name, f"{int(s['count']):,}", *(_cell(s.get(k)) for k in _STATS), unit])
    tables = [
        Table(
            "Metrics",
            ["metric", "count", *_STATS, "unit"],
            rows,
            "Full-resolution HDR histograms over every stream (docs/load.md defines each).",
        )
    ]
    run = [
        (name, metrics.get(name), unit)
        for name, unit in (
            ("requests", "streams"),
            ("failure_rate", "share"),
            ("error_rate", "share"),
            ("output_tokens_per_s", f"tokens/s ({metrics.get('output_tokens_source') or '-'})"),
            ("goodput", "share meeting every --slo"),
            ("goodput_per_s", "streams/s"),
            ("total_events_per_s", "events/s"),
            ("streams_per_s", "streams/s"),
            ("buffered_streams", "streams"),
        )
    ]
    tables.append(
        Table(
            "Run",
            ["metric", "value", "unit"],
            [[n, _cell(v), u] for n, v, u in run if v is not None],
        )
    )
    by_code = metrics.get("errors_by_code") or {}
    requests = int(verdict.get("requests") or 0)
    errors = [[str(code), f"{int(n):,}", _cell(n / requests if requests else None)]
              for code, n in by_code.items()]  # fmt: skip
    errors += [[f"no response: {e['error']}", f"{int(e['count']):,}",
                _cell(e["count"] / requests if requests else None)]
               for e in verdict.get("errors", [])]  # fmt: skip
    tables.append(
        Table(
            "Errors by code",
            ["error", "streams", "share"],
            errors,
            "" if errors else "None: no stream ended in an in-band error or went unanswered.",
        )
    )
    return tables


# -- cases ------------------------------------------------------------------------------------


def load_cases(verdict: Mapping[str, Any]) -> list[Case]:
    """JUnit cases: thresholds, broken rules, streams without a response, and the streams."""
    ok = bool(verdict.get("ok"))
    requests, failures = int(verdict.get("requests", 0)), int(verdict.get("failures", 0))
    tolerated = "tolerated: every threshold holds"

    def gate(kind: str, message: str) -> tuple[list[tuple[str, str]], str]:
        return ([], f"{message} ({tolerated})") if ok else ([(kind, message)], "")

    cases = []
    for t in verdict.get("thresholds", []):
        value = "not measured" if t.get("value") is None else f"{t['value']:g}"
        cases.append(
            Case(
                f"threshold {t['expr']}",
                [] if t.get("ok") else [("threshold", f"{t['expr']}: {value}")],
                f"value: {value}",
            )
        )
    streams = f"{failures} of {requests} streams failed"
    fails, note = gate("failures", streams) if failures else ([], "")
    cases.append(Case("streams conform", fails, note or f"{requests} streams"))
    for v in verdict.get("violations", []):
        message = f"{v['streams']} of {requests} streams ({v['count']} times), e.g.: {v['message']}"
        if v.get("severity") != Severity.ERROR.value:
            cases.append(Case(v["rule"], [], message))
            continue
        fails, note = gate(v["rule"], message)
        cases.append(Case(v["rule"], fails, note))
    by_code = verdict.get("metrics", {}).get("errors_by_code") or {}
    if by_code:
        n = sum(by_code.values())
        tally = ", ".join(f"{code} {count}x" for code, count in by_code.items())
        fails, note = gate("in-band-error", f"{n} of {requests} streams ended in an error: {tally}")
        cases.append(Case("streams end without an in-band error", fails, note))
    errors = verdict.get("errors", [])
    if errors:
        text = "\n".join(f"{e['count']}x {e['error']}" for e in errors)
        fails, note = gate("no-response", f"streams that got no response:\n{text}")
        cases.append(Case("streams got a response", fails, note))
    if verdict.get("warnings"):
        cases.append(Case("load generator", [], "\n".join(verdict["warnings"])))
    return cases


# -- plots ------------------------------------------------------------------------------------


def load_plots(verdict: Mapping[str, Any], data: Mapping[str, Any]) -> list[Plot]:
    dists = data.get("dists", {})
    return [
        _ttfb(_dist("ttfb_ms", dists)),
        _gaps(_dist("inter_event_ms", dists)),
        _rates(data),
        _waterfall(verdict, data),
    ]


def _dist(name: str, dists: Mapping[str, Any]) -> Dist:
    d = Dist(DIST_METRICS[name])
    if name in dists:
        d.merge(dists[name])
    return d


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _ttfb(d: Dist) -> Plot:
    points = [d.percentile(100.0 * (i + 0.5) / _CDF_POINTS) for i in range(_CDF_POINTS)]
    values = [p for p in points if p is not None]
    s = d.summary()
    caption = (
        f"{d.count:,} streams · p50 {_ms(s['p50'])} · p90 {_ms(s['p90'])} · p99 {_ms(s['p99'])}"
        f" · max {_ms(s['max'])} ms (start → response head)"
        if d.count
        else "no stream got a response head"
    )
    return Plot("TTFB distribution", _svg.cdf(values, "ttfb_ms", "TTFB CDF"), caption)


def _gaps(d: Dist) -> Plot:
    p99 = d.percentile(99.0)
    shown = [(v, c) for v, c in d.buckets() if p99 is None or v <= p99]
    hidden = d.count - sum(c for _, c in shown)
    svg = _svg.histogram(
        [v for v, _ in shown],
        "inter_event_ms",
        "inter-event gap histogram",
        weights=[float(c) for _, c in shown],
    )
    caption = "no gaps: no stream had two events"
    if d.count:
        caption = f"{d.count:,} gaps between events · p50 {_ms(d.percentile(50))} ms"
        caption += f" · p99 {_ms(p99)} ms"
        if hidden:
            caption += f"; {hidden:,} above p99 (up to {_ms(d.max)} ms) not drawn"
    return Plot("inter-event gaps", svg, caption)


def _rates(data: Mapping[str, Any]) -> Plot:
    series = data.get("series", {})
    seconds = [int(s) for s, _ in series.get("events", []) + series.get("active", [])]
    t0 = float(data.get("started") or (min(seconds) if seconds else 0))
    t1 = float(data.get("stopped") or (max(seconds) + 1 if seconds else 1))
    ev = _thin(_per_second(series.get("events", []), t0, t1, rate=True))
    op = _thin(_per_second(series.get("active", []), t0, t1, rate=False))
    peak_e = max((n for _, n in ev), default=0.0)
    peak_a = max((n for _, n in op), default=0.0)
    ev_name, op_name = "events/s", "open streams"
    if peak_e and peak_a:  # one y axis: scale the smaller line up so both can be read
        if peak_e >= 10 * peak_a:
            k = _nice(peak_e / peak_a)
            op, op_name = [(t, n * k) for t, n in op], f"open streams ×{k:g}"
        elif peak_a >= 10 * peak_e:
            k = _nice(peak_a / peak_e)
            ev, ev_name = [(t, n * k) for t, n in ev], f"events/s ×{k:g}"
    svg = _svg.series(
        [(ev_name, ev), (op_name, op)], "seconds since the run started", "per second", "rates"
    )
    caption = (
        f"events arrived per second (peak {peak_e:,.0f}/s) and streams open at once "
        f"(peak {peak_a:,.0f}), all load processes summed"
    )
    return Plot("events/s and open streams over time", svg, caption)


def _per_second(
    counts: Sequence[Sequence[int]], t0: float, t1: float, rate: bool
) -> list[tuple[float, float]]:
    """(seconds since ``t0``, value) at the middle of the part of each wall-clock second the
    run covered; with ``rate``, a count over that part (the run starts and stops mid-second,
    and its first and last seconds must not look like a ramp)."""
    out = []
    for sec, n in counts:
        lo, hi = max(float(sec), t0), min(sec + 1.0, t1)
        if hi - lo < 0.25:  # a sliver of a second: its rate would be noise
            continue
        out.append(((lo + hi) / 2 - t0, n / (hi - lo) if rate else float(n)))
    return out


def _thin(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    points = sorted(points)
    k = math.ceil(len(points) / _SERIES_POINTS)
    if k <= 1:
        return points
    out = []
    for i in range(0, len(points), k):
        group = points[i : i + k]
        out.append((group[0][0], sum(n for _, n in group) / len(group)))
    return out


def _nice(ratio: float) -> float:
    """The largest of 1, 2, 5 × 10^k not above ``ratio``."""
    base = 10 ** math.floor(math.log10(ratio))
    return float(max(m * base for m in (1, 2, 5) if m * base <= ratio))


def _waterfall(verdict: Mapping[str, Any], data: Mapping[str, Any]) -> Plot:
    failing = _by_key(data.get("failing", []))
    passing = _by_key(data.get("passing", []))
    n_fail = min(len(failing), max(SAMPLE // 2, SAMPLE - len(passing)))
    rows = failing[:n_fail] + passing[: SAMPLE - n_fail]
    rows.sort(key=lambda r: r.get("start", 0.0))
    streams: list[_svg.Stream] = []
    for i, r in enumerate(rows):
        times, bad = ticks(r.get("arrivals", []), r.get("bad", []))
        streams.append((f"stream {i}", 0.0, r.get("ttfb_ms"), times, r["reconnects_ms"], bad))
    failed = {i for i, r in enumerate(rows) if not r.get("ok")}
    svg = _svg.waterfall(streams, failed=failed, ends=[r.get("stream_ms") for r in rows])
    total = int(verdict.get("requests", 0))
    caption = (
        f"{len(rows)} of {total:,} streams, sampled at random ({len(failed)} of the "
        f"{int(verdict.get('failures', 0)):,} that failed), each from its own start: "
        "◆ response head, | an event (red: it broke a rule), red bar: the stream failed, "
        "dashed: a reconnect"
    )
    return Plot("per-stream timeline", svg, caption)


def _by_key(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(i) for i in sorted(items, key=lambda i: -float(i.get("key", 0.0)))]


def ticks(
    arrivals: Sequence[Sequence[float]], bad: Sequence[int], limit: int = _TICKS
) -> tuple[list[float], set[int]]:
    """Event arrival times from a run-length timeline ``[(ms, events), ...]``, at most
    ``limit`` of them, evenly spread but always including the ``bad`` events; and the
    positions of the bad ones in the list returned."""
    ends = []
    total = 0
    for _, n in arrivals:
        total += int(n)
        ends.append(total)
    bad_in = {b for b in bad if 0 <= b < total}
    if total <= limit:
        keep = list(range(total))
    else:
        spread = {round(i * (total - 1) / (limit - 1)) for i in range(limit)}
        keep = sorted(spread | bad_in)
    times = [float(arrivals[bisect.bisect_right(ends, k)][0]) for k in keep]
    return times, {pos for pos, k in enumerate(keep) if k in bad_in}


# -- failing streams --------------------------------------------------------------------------


def _replay(c: Mapping[str, Any], contract: str, title: str) -> tuple[CheckResult, list[str]]:
    """Check the captured bytes with the core, as ``stream-harness check FILE.sse`` will; then
    add what only the live run could see (HTTP status, timeouts, a reconnect) and its times."""
    framing = str(c.get("framing") or "sse")
    session = StreamSession(title, get_checker(contract), start=0.0, framing=framing)
    raw = str(c.get("raw", "")).encode("latin-1")
    session.feed_bytes(raw, 0.0)
    stream_ms = float(c.get("stream_ms") or 0.0)
    result = session.finish(stream_ms / 1000.0, complete=bool(c.get("complete", True)))
    found = {v.rule for v in result.violations}
    only_live = []
    for rule_id, severity, message, index, _count in c.get("violations", []):
        if rule_id in found:
            continue
        only_live.append(rule_id)
        v = Violation(rule_id, Severity(severity), message, index)
        result.violations.append(v)
        entry = None if index is None else result.entry(index)
        if entry is not None:
            entry.violations.append(v)
    times, _ = ticks(c.get("arrivals", []), [], limit=10**9)
    for entry in result.transcript:
        entry.time_ms = times[entry.index] if entry.index < len(times) else None
    result.event_times_ms = times[: result.events]
    result.timing = Timing(c.get("ttfb_ms"), c.get("first_event_ms"), stream_ms)
    return result, only_live


def _caveats(c: Mapping[str, Any], only_live: Sequence[str]) -> list[str]:
    """What ``check FILE.sse`` cannot show of this stream, said next to the command."""
    out = []
    if c.get("reconnects_ms"):
        out.append(
            "# it reconnected: the file holds what both connections sent, one after the other "
            "(check reads it as one stream; resume.* rules need the live reconnect)"
        )
    if only_live:
        out.append(f"# under load it also broke {', '.join(only_live)}: not in the bytes alone")
    return out
