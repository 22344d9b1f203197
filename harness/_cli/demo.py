"""``stream-harness demo``: the bundled example prefab served, checked, property-tested and
load-tested, in under a minute.

Exit 0 when everything behaved as expected (the good example conforms, the buggy example's
bugs are caught), 1 when anything else happened, 2 usage, 130 Ctrl-C.  The summary goes to
stdout, with the report to open on its last line.  The steps are :mod:`harness._cli.tour`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness._cli.flags import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_VIOLATION,
    _positive_float,
    _positive_int,
    add_report_options,
    report_dir,
)

__all__ = ["register"]


def register(sub: Any) -> None:
    d = sub.add_parser(
        "demo",
        help="show what stream-harness does, on the bundled examples (under a minute)",
        description="Serve the bundled good example prefab on 127.0.0.1, check one stream over "
        "HTTP, property-test every function of the good and of the buggy example (whose bugs "
        "are planted: catching them is the point), run a short load test with reconnects, and "
        "write a report per step with an index.html linking them. Exit 0 when everything "
        "behaved as expected, 1 when something unexpected happened, 130 on Ctrl-C.",
    )
    d.add_argument(
        "--examples",
        type=_positive_int,
        default=40,
        metavar="N",
        help="generated inputs per function (default: %(default)s)",
    )
    d.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default: %(default)s)")
    d.add_argument(
        "--load-time",
        type=_positive_float,
        default=5.0,
        metavar="S",
        help="seconds of load test (default: %(default)s)",
    )
    d.add_argument(
        "--users", type=_positive_int, default=4, help="load-test users (default: %(default)s)"
    )
    d.add_argument(
        "--time-limit",
        type=_positive_float,
        default=120.0,
        metavar="S",
        help="stop, as Ctrl-C would, after S seconds; exit 1 (default: %(default)s)",
    )
    add_report_options(d, "demo")
    d.set_defaults(run=_cmd_demo)


def _cmd_demo(ns: argparse.Namespace) -> int:
    from harness._cli.tour import DemoOptions, run_demo

    options = DemoOptions(
        report_dir=report_dir(ns, "demo"),
        examples=ns.examples,
        seed=ns.seed,
        load_users=ns.users,
        load_seconds=ns.load_time,
        time_limit=ns.time_limit,
    )
    result = run_demo(options, sys.stdout)
    if result.interrupted == "Ctrl-C":
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_VIOLATION
