"""``make bench`` section ``load_accuracy``: how close the Locust user's stamps are to the truth.

A loopback fixture server (``tests/load_fixtures.py``, its own process) waits D ms before the
response and sends an event every G ms, stamping each write with ``time.monotonic()`` (one clock
for every process on the machine).  A real Locust run of the streaming user (``--sse-trace``)
records, per stream, when the head and each event arrived.  Joining the two by stream id gives
*measured minus true* for TTFB (head arrival minus head send) and for every gap, at 1, 100 and
1000 concurrent streams.  Every run is bounded (``--run-time``, subprocess timeouts, the server's
``--seconds``).

The peer row: ``requests`` + ``iter_lines`` (what Locust's ``HttpUser`` does) on the same server,
one stream, close-delimited and chunked: its gaps show the batching our client avoids.
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "load_fixtures.py"
LOCUSTFILE = ROOT / "harness" / "_load" / "locustfile.py"
DELAY_MS, GAP_MS, EVENTS = 50, 100, 20
SERVER_SECONDS = 600
Row = tuple[str, str, str, str]


@contextlib.contextmanager
def fixture_server() -> Iterator[str]:
    """The fixture server in a process of its own; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, str(FIXTURES), "--seconds", str(SERVER_SECONDS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"fixture server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()


def server_stats(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/stats", timeout=30) as r:
        stats: dict[str, Any] = json.loads(r.read())
    return stats


def run_locust(
    base: str,
    path: str,
    users: int,
    seconds: float,
    extra: list[str],
    locustfile: Path = LOCUSTFILE,
) -> dict[str, Any]:
    """A headless Locust run of ``Steady`` (or ``locustfile``'s users); the verdict JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "verdict.json"
        argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless"]
        argv += ["--host", base, "-u", str(users), "-r", str(min(users, 500))]
        argv += ["-t", f"{math.ceil(seconds)}s", "--stop-timeout", "0", "--only-summary"]
        if locustfile == LOCUSTFILE:
            argv += ["Steady", "--sse-path", path, "--sse-report", str(report)]
        argv += extra
        subprocess.run(
            argv,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=seconds + 120,
            check=False,
        )
        return json.loads(report.read_text()) if report.exists() else {}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def accuracy_at(base: str, users: int) -> tuple[list[float], list[float], dict[str, Any]]:
    """(TTFB errors, gap errors) in ms, and the verdict, for ``users`` concurrent streams."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = str(Path(tmp) / "trace")
        path = f"/stream?n={EVENTS}&delay_ms={DELAY_MS}&gap_ms={GAP_MS}"
        stream_s = (DELAY_MS + (EVENTS + 1) * GAP_MS) / 1000.0
        verdict = run_locust(base, path, users, 2 * stream_s + 3, ["--sse-trace", trace])
        rows: list[dict[str, Any]] = []
        for f in glob.glob(f"{trace}.*.json"):
            rows += json.loads(Path(f).read_text())
    sends = server_stats(base)["sends"]
    ttfb_err, gap_err = [], []
    for row in rows:
        sent = sends.get(row["sid"])
        if not sent or row["ttfb_ms"] is None or len(row["gaps"]) != len(sent) - 1:
            continue
        ttfb_err.append((row["start"] + row["ttfb_ms"] / 1000.0 - sent[0]) * 1000.0)
        for k, gap in enumerate(row["gaps"], 1):
            gap_err.append(gap - (sent[k] - sent[k - 1]) * 1000.0)
    return ttfb_err, gap_err, verdict


def naive_gap_error(base: str, framing: str) -> float:
    """p99 of measured-minus-true gaps for requests' iter_lines, one stream (the peer)."""
    import requests

    sid = f"naive-{framing}-{time.time_ns()}"
    url = f"{base}/stream?n=10&gap_ms={GAP_MS}&size=120&framing={framing}&sid={sid}"
    stamps = []
    with requests.get(url, stream=True, timeout=30) as r:
        for line in r.iter_lines():
            if line.startswith(b"data:"):
                stamps.append(time.monotonic())
    sent = server_stats(base)["sends"][sid]
    errs = [
        (stamps[k] - stamps[k - 1]) * 1000.0 - (sent[k] - sent[k - 1]) * 1000.0
        for k in range(1, min(len(stamps), len(sent)))
    ]
    return _pct([abs(e) for e in errs], 99)


def section_load_accuracy(repeat: int) -> list[Row]:
    del repeat  # one run per concurrency: each takes seconds and is itself many samples
    rows: list[Row] = []
    with fixture_server() as base:
        for users in (1, 100, 1000):
            ttfb, gaps, verdict = accuracy_at(base, users)
            if not ttfb or not gaps:
                rows.append((f"accuracy @{users} streams", "no data", "", "run failed"))
                continue
            goal = "(goal ≤ 2 ms p99)" if users <= 100 else "(beyond the goal's range)"
            lag = verdict.get("run", {}).get("loop_lag_max_ms", 0.0)
            cpu = verdict.get("run", {}).get("cpu_max", 0.0)
            rows.append(
                (
                    f"accuracy @{users} streams: TTFB err p50/p99",
                    f"{_pct(ttfb, 50):.2f} / {_pct(ttfb, 99):.2f} ms",
                    "",
                    f"{len(ttfb)} streams {goal}",
                )
            )
            peer = ""
            if users == 1:
                peer = (
                    f"iter_lines |err| p99: close {naive_gap_error(base, 'close'):.0f} ms, "
                    f"chunked {naive_gap_error(base, 'chunked'):.0f} ms"
                )
            rows.append(
                (
                    f"accuracy @{users} streams: gap err p50/p99",
                    f"{_pct(gaps, 50):.2f} / {_pct(gaps, 99):.2f} ms",
                    peer,
                    f"{len(gaps)} gaps; cpu {cpu:.0f}%, loop lag max {lag:.0f} ms",
                )
            )
    return rows


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    for r in section_load_accuracy(1):
        print(" | ".join(r))
