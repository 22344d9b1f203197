"""A rate sweep: ``--arrival-rate 1,2,4,8`` runs the open-loop test once per rate, each for
``--run-time``, and reports where the endpoint saturates -- latency percentiles, goodput and
achieved throughput against the offered rate.  Sans-I/O: the verdicts of the runs in, the
sweep's verdict and report out (``_runner.run_sweep`` runs them).

The sweep's JSON verdict: ``{"ok", "sweep": [{"arrival_rate", "ok", "requests", "failures",
"metrics", "thresholds", "report_dir"}, ...], "run": {"target", "scenario": "Sweep",
"duration_s", "rates"}}``; ``ok`` when every rate's verdict is ok.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from harness._report import svg as _svg
from harness._report.model import Case, Plot, Report, Table

from ._report import _cell

__all__ = ["LATENCY", "parse_rates", "render_sweep", "sweep_report", "sweep_verdict"]

#: The latency a sweep plots: time to first content when the stream has content, else TTFB.
LATENCY: Final = ("first_content_ms", "ttfb_ms")
_KEEP: Final = ("ok", "requests", "failures", "metrics", "thresholds", "warnings")


def parse_rates(text: str) -> list[float]:
    """``4`` or ``1,2,4,8`` -> the rates, each > 0; ValueError with the reason."""
    rates = []
    for part in text.split(","):
        try:
            rate = float(part.strip())
        except ValueError:
            raise ValueError(f"expected a number or a list such as 1,2,4,8, got {text!r}") from None
        if not rate > 0:
            raise ValueError(f"every rate must be greater than 0, got {part.strip()!r}")
        rates.append(rate)
    if len(set(rates)) != len(rates):
        raise ValueError(f"a rate is given twice in {text!r}")
    return rates


def sweep_verdict(runs: Sequence[tuple[float, Mapping[str, Any]]], target: str) -> dict[str, Any]:
    steps = []
    for rate, v in runs:
        step = {"arrival_rate": rate, **{k: v.get(k) for k in _KEEP}}
        step["report_dir"] = v.get("run", {}).get("report_dir")
        step["duration_s"] = v.get("run", {}).get("duration_s")
        steps.append(step)
    return {
        "ok": all(bool(s["ok"]) for s in steps),
        "requests": sum(int(s["requests"] or 0) for s in steps),
        "failures": sum(int(s["failures"] or 0) for s in steps),
        "sweep": steps,
        "run": {
            "target": target,
            "scenario": "Sweep",
            "rates": [rate for rate, _ in runs],
            "duration_s": round(sum(float(s["duration_s"] or 0) for s in steps), 3),
        },
    }


def _latency_metric(steps: Sequence[Mapping[str, Any]]) -> str:
    for name in LATENCY:
        if any((s["metrics"] or {}).get(name, {}).get("count") for s in steps):
            return name
    return LATENCY[-1]


def sweep_table(verdict: Mapping[str, Any]) -> Table:
    steps = verdict["sweep"]
    lat = _latency_metric(steps)
    rows = []
    for s in steps:
        m = s["metrics"] or {}
        d = m.get(lat, {})
        rows.append(
            [
                f"{s['arrival_rate']:g}",
                _cell(m.get("streams_per_s")),
                f"{int(s['requests'] or 0):,}",
                *(_cell(d.get(k)) for k in ("p50", "p90", "p99")),
                _cell(m.get("tpot_ms", {}).get("p50")),
                _cell(m.get("error_rate")),
                _cell(m.get("goodput")),
                "✓" if s["ok"] else "✗",
            ]
        )
    return Table(
        "Rate sweep",
        ["offered /s", "achieved /s", "streams", f"{lat} p50", "p90", "p99", "tpot_ms p50",
         "error_rate", "goodput", "ok"],
        rows,
        f"{lat} in ms; goodput is the share of streams meeting every --slo (- without --slo). "
        "Where achieved falls behind offered, or the percentiles climb, the endpoint saturates.",
    )  # fmt: skip


def sweep_plots(verdict: Mapping[str, Any]) -> list[Plot]:
    steps = verdict["sweep"]
    lat = _latency_metric(steps)
    lines = []
    for q in ("p50", "p90", "p99"):
        pts = [
            (float(s["arrival_rate"]), float(v))
            for s in steps
            if (v := (s["metrics"] or {}).get(lat, {}).get(q)) is not None
        ]
        lines.append((f"{lat} {q}", pts))
    latency = Plot(
        f"{lat} against offered rate",
        _svg.series(lines, "offered streams/s", "ms", f"{lat} by rate"),
        "latency percentiles at each offered arrival rate",
    )
    good = [
        (float(s["arrival_rate"]), float(g))
        for s in steps
        if (g := (s["metrics"] or {}).get("goodput")) is not None
    ]
    achieved = [
        (float(s["arrival_rate"]), float(a))
        for s in steps
        if (a := (s["metrics"] or {}).get("streams_per_s")) is not None
    ]
    offered = [(float(s["arrival_rate"]), float(s["arrival_rate"])) for s in steps]
    rate_lines = [("offered streams/s", offered), ("achieved streams/s", achieved)]
    if good:
        rate_lines.append(("goodput streams/s", [
            (float(s["arrival_rate"]), float(g))
            for s in steps
            if (g := (s["metrics"] or {}).get("goodput_per_s")) is not None
        ]))  # fmt: skip
    throughput = Plot(
        "throughput and goodput against offered rate",
        _svg.series(rate_lines, "offered streams/s", "streams/s", "throughput by rate"),
        "achieved and good streams per second against the offered rate: the gap is saturation",
    )
    return [latency, throughput]


def sweep_report(verdict: Mapping[str, Any], command_line: str, secrets: tuple[str, ...]) -> Report:
    cases = [
        Case(
            f"rate {s['arrival_rate']:g}/s",
            [] if s["ok"] else [("rate", f"the run at {s['arrival_rate']:g}/s failed")],
            f"report: {s['report_dir']}" if s.get("report_dir") else "",
        )
        for s in verdict["sweep"]
    ]
    return Report(
        command="load",
        title=str(verdict["run"]["target"]),
        verdict=dict(verdict),
        cases=cases,
        plots=sweep_plots(verdict),
        tables=[sweep_table(verdict)],
        reproducers=[command_line],
        secrets=secrets,
    )


def render_sweep(verdict: Mapping[str, Any]) -> str:
    """The sweep's table, for the terminal."""
    t = sweep_table(verdict)
    widths = [max(len(h), *(len(r[i]) for r in t.rows)) for i, h in enumerate(t.header)]
    line = "  ".join(h.rjust(w) for h, w in zip(t.header, widths, strict=True))
    rows = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in t.rows]
    run = verdict["run"]
    head = f"stream-harness load  {run['target']}  (rate sweep, {run['duration_s']:.1f} s)"
    return "\n".join([head, "", line, *rows, "", "PASS" if verdict["ok"] else "FAIL"]) + "\n"
