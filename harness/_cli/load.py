"""``stream-harness load URL``: a Locust load test of a streaming endpoint, gated on thresholds.

Exit codes as everywhere: 0 every threshold holds (with none given: no stream failed), 1 a
threshold missed, 2 usage, 3 the target unreachable, 130 interrupted (Ctrl-C).  ``--format json``
prints the verdict (``harness/_load/_verdict.py`` documents its shape; after Ctrl-C it carries
``"incomplete": true``); text prints the final table.  Locust's live stats go to stderr on a
terminal, else to ``<report dir>/locust.log``.  The report (summary.json, junit.xml, summary.md,
report.html, failing streams' .sse) goes into the report directory, named on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness._cli.flags import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_VIOLATION,
    _header,
    _load_json,
    _positive_float,
    _positive_int,
    add_network_options,
    add_strict_option,
    add_timeout_options,
    announce_report,
    default,
    flag_type,
    network,
)
from harness._core.config import duration
from harness._core.errors import UsageError

__all__ = ["register"]


def _rates(text: str) -> list[float]:
    from harness._load._sweep import parse_rates

    try:
        return parse_rates(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub: Any) -> None:
    p = sub.add_parser(
        "load",
        help="load-test a streaming endpoint with Locust, gated on thresholds",
        description="Stream URL from many clients at once (Locust), check every stream against "
        "the contract, and report TTFB, event timing, throughput and failures. Exit 0 all "
        "thresholds hold, 1 a threshold missed, 2 usage error, 3 target unreachable.",
    )
    p.add_argument("url", help="the streaming endpoint, https://…/invoke/fn")
    _add_shape_options(p)
    _add_request_options(p)
    _add_scenario_options(p)
    _add_gate_options(p)
    add_network_options(p)
    add_timeout_options(p, "per stream")
    p.add_argument("--format", choices=["text", "json"], default="text")
    add_strict_option(p)
    p.set_defaults(run=_cmd_load)


def _add_shape_options(p: argparse.ArgumentParser) -> None:
    """How many streams, for how long, on how many processes or machines."""
    g = p.add_argument_group("load shape")
    g.add_argument(
        "--users", type=_positive_int, help=f"concurrent streams, closed loop ({default('users')})"
    )
    g.add_argument(
        "--spawn-rate", type=_positive_float, metavar="N", help="users started per second"
    )
    g.add_argument(
        "--run-time",
        type=flag_type(duration),
        metavar="T",
        help=f"30s, 2m, 1h30m ({default('run-time', ' s')})",
    )
    g.add_argument(
        "--arrival-rate",
        type=_rates,
        metavar="R",
        help="open loop: start R new streams per second whatever the target's speed; a list "
        "(1,2,4,8) sweeps the rates, each for --run-time, and reports where latency climbs",
    )
    g.add_argument(
        "--max-inflight",
        type=_positive_int,
        metavar="N",
        help="open loop: most streams open at once; later arrivals are dropped and counted "
        f"({default('max-inflight')})",
    )
    g.add_argument(
        "--processes",
        type=_positive_int,
        metavar="N",
        help=f"Locust worker processes ({default('processes')})",
    )
    g.add_argument(
        "--master",
        action="store_true",
        help="run as the master of workers on other machines (stream-harness worker); "
        "it writes the verdict and the report",
    )
    g.add_argument(
        "--expect-workers", type=_positive_int, metavar="N", help="--master: wait for N workers"
    )
    g.add_argument(
        "--master-bind-host",
        default="*",
        metavar="HOST",
        help="--master: the interface workers connect to (default: all)",
    )
    g.add_argument(
        "--master-port", type=_positive_int, default=5557, metavar="PORT", help="default 5557"
    )


def _add_request_options(p: argparse.ArgumentParser) -> None:
    """What each stream asks for and which contract checks it."""
    g = p.add_argument_group("request")
    g.add_argument("--inputs", metavar="JSON", help='POSTed as {"inputs": …}; @file reads a file')
    g.add_argument("--body", metavar="JSON", help="raw JSON request body (instead of --inputs)")
    g.add_argument(
        "--bodies",
        type=Path,
        metavar="FILE.jsonl",
        help="one JSON request body per line, used in turn (so a run is not one cached prompt)",
    )
    g.add_argument("--random", action="store_true", help="--bodies in random order")
    g.add_argument("--method", help="HTTP method (default: POST with --inputs/--body, else GET)")
    g.add_argument(
        "--header", action="append", type=_header, default=[], metavar="'K: V'", help="repeatable"
    )
    g.add_argument("--contract", help=f"contract to check ({default('contract')})")


def _add_scenario_options(p: argparse.ArgumentParser) -> None:
    """Client behaviours beyond streaming to the end."""
    g = p.add_argument_group("scenarios")
    g.add_argument(
        "--reconnect-after",
        type=_positive_int,
        metavar="K",
        help="reconnect scenario: drop after K events, resume with Last-Event-ID",
    )
    g.add_argument(
        "--abandon-after",
        type=_positive_int,
        metavar="K",
        help="abandon scenario: clients vanish after 1..K events for --storm-seconds",
    )
    g.add_argument("--storm-seconds", type=_positive_float, metavar="S", help="default 5")


def _add_gate_options(p: argparse.ArgumentParser) -> None:
    """What fails the run, and where its report goes."""
    g = p.add_argument_group("gates and reports")
    g.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="EXPR",
        help="a goal each stream must meet, e.g. 'first_content_ms<500', 'tpot_ms<50' "
        "(repeatable): goodput is the share of streams meeting all",
    )
    g.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="EXPR",
        help="a gate, e.g. 'ttfb_ms.p95<800', 'failure_rate<0.01', 'events_per_s>20' (repeatable)",
    )
    g.add_argument(
        "--report-dir",
        type=Path,
        metavar="DIR",
        help="report and Locust's files (default: reports/<timestamp>-load-<scenario>/)",
    )
    g.add_argument(
        "--no-report",
        action="store_true",
        help="write no report files (Locust's go to a temporary directory, then are removed)",
    )


def _cmd_load(ns: argparse.Namespace) -> int:
    from harness._contracts.registry import get_checker
    from harness._core.thresholds import parse_threshold
    from harness._load._runner import LoadInterrupted, LoadOptions, run_load, run_sweep

    for text in ns.threshold:
        parse_threshold(text)  # a bad gate is a usage error before anything runs
    get_checker(ns.contract)
    if ns.reconnect_after is not None and ns.abandon_after is not None:
        raise UsageError("give either --reconnect-after or --abandon-after, not both")
    if ns.arrival_rate is not None and ns.abandon_after is not None:
        raise UsageError("--abandon-after runs closed loop: drop --arrival-rate")
    inputs = None
    if ns.inputs is not None:
        inputs = _load_json("--inputs", ns.inputs)
        if not isinstance(inputs, dict):
            raise UsageError(f"--inputs must be a JSON object, got {type(inputs).__name__}")
    if ns.inputs is not None and ns.body is not None:
        raise UsageError("give either --inputs or --body, not both")
    if ns.bodies is not None and (ns.inputs is not None or ns.body is not None):
        raise UsageError("give --bodies alone, not with --inputs or --body")
    if ns.random and ns.bodies is None:
        raise UsageError("--random picks among --bodies: give --bodies FILE.jsonl")
    body = None
    if ns.body is not None:
        body = json.dumps(_load_json("--body", ns.body))
    options = LoadOptions(
        url=ns.url,
        users=ns.users,
        spawn_rate=ns.spawn_rate,
        run_time_s=ns.run_time,
        arrival_rate=None if ns.arrival_rate is None else ns.arrival_rate[0],
        max_inflight=ns.max_inflight,
        processes=ns.processes,
        method=ns.method.upper() if ns.method else None,
        inputs=inputs,
        body=body,
        headers=tuple(ns.header),
        contract=ns.contract,
        reconnect_after=ns.reconnect_after,
        abandon_after=ns.abandon_after,
        storm_seconds=ns.storm_seconds,
        thresholds=tuple(ns.threshold),
        report_dir=ns.report_dir,
        first_byte_timeout=ns.first_byte_timeout,
        idle_timeout=ns.idle_timeout,
        total_timeout=ns.total_timeout,
        network=network(ns),
        no_report=ns.no_report,
        slos=tuple(ns.slo),
        expect_workers=ns.expect_workers if ns.master else None,
        master_bind_host=ns.master_bind_host,
        master_port=ns.master_port,
        bodies=ns.bodies,
        random=ns.random,
        strict=ns.strict,
    )
    if ns.master and ns.expect_workers is None:
        raise UsageError("--master needs --expect-workers N (how many workers to wait for)")
    if ns.expect_workers is not None and not ns.master:
        raise UsageError("--expect-workers applies to --master")
    if ns.master and (ns.processes or 1) > 1:
        raise UsageError("--master runs no users itself: give --processes to each worker")
    if ns.no_report and ns.report_dir is not None:
        raise UsageError("give either --report-dir or --no-report, not both")
    sweep = ns.arrival_rate is not None and len(ns.arrival_rate) > 1
    try:
        if sweep:
            verdict, run_dir = run_sweep(options, ns.arrival_rate, live=sys.stderr.isatty())
        else:
            verdict, run_dir = run_load(options, live=sys.stderr.isatty())
    except LoadInterrupted as e:
        _print(ns.format, {**e.verdict, "incomplete": True}, None if ns.no_report else e.run_dir)
        return EXIT_INTERRUPTED
    _print(ns.format, verdict, None if ns.no_report else run_dir)
    return EXIT_OK if verdict["ok"] else EXIT_VIOLATION


def _print(fmt: str, verdict: dict[str, Any], run_dir: Path | None) -> None:
    from harness._load._sweep import render_sweep
    from harness._load._verdict import render_table

    if fmt == "json":
        sys.stdout.write(json.dumps(verdict) + "\n")
    elif "sweep" in verdict:
        sys.stdout.write(render_sweep(verdict))
    else:
        sys.stdout.write(render_table(verdict))
        if verdict.get("incomplete"):
            sys.stdout.write("INTERRUPTED: this is what was measured before Ctrl-C\n")
    sys.stdout.flush()
    announce_report(run_dir)
