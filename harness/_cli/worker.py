"""``stream-harness worker --master-host H``: one machine's share of a distributed load test.

The master is ``stream-harness load URL --master --expect-workers N``: it sends the workers
the run's options (the scenario, the stream's path and headers, thresholds) over Locust's own
channel, collects their measurements, and writes the verdict and the report.  A worker runs
Locust's worker mode on the same locustfile ``load`` uses, so its users are ours, and exits when
the master ends the run.  Exit codes: Locust's (0 when the master let it go), 2 usage, 130
interrupted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from harness._cli.flags import EXIT_INTERRUPTED, _positive_int

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "worker",
        help="run the streams of a distributed load test for a `load --master`",
        description="Connect to a `stream-harness load URL --master --expect-workers N` and run "
        "its streams on this machine (Locust's worker mode on stream-harness's users).",
    )
    p.add_argument("--master-host", required=True, metavar="HOST", help="where the master runs")
    p.add_argument("--master-port", type=_positive_int, default=5557, metavar="PORT")
    p.add_argument(
        "--processes", type=_positive_int, default=1, metavar="N", help="worker processes here"
    )
    p.set_defaults(run=_cmd_worker)


def _cmd_worker(ns: argparse.Namespace) -> int:
    from harness._load._runner import LOCUSTFILE

    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker"]
    argv += ["--master-host", ns.master_host, "--master-port", str(ns.master_port)]
    if ns.processes > 1:
        argv += ["--processes", str(ns.processes)]
    try:
        return subprocess.call(argv, stdin=subprocess.DEVNULL)
    except KeyboardInterrupt:  # Locust, in the same process group, got the Ctrl-C too
        return EXIT_INTERRUPTED
