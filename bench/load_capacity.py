"""``make bench`` section ``load_capacity``: what one Locust worker process holds and consumes.

Against the loopback fixture server (its own process), with one Locust process:

* concurrency: N users each holding a stream that sends an event a second for 8 s: are all
  N held open at once (the server's own count), with no failure, and how late are the stamps?
* throughput: 20 users on streams of 20 000 small events written 200 at a time, for 8 s:
  validated events per second (every event decoded, checked against the prefab contract and
  measured), against the naive locustfile (``bench/naive_locustfile.py``: HttpUser +
  iter_lines + json.loads + jsonschema per event) on the same server in the same run.

Bounded: fixed --run-time, subprocess timeouts, the server's --seconds.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.load_accuracy import ROOT, Row, fixture_server, run_locust, server_stats

NAIVE = ROOT / "bench" / "naive_locustfile.py"
RUN_S = 8
FAST_PATH = "/stream?n=20000&batch=200"


def _concurrency(base: str, users: int) -> Row:
    v = run_locust(base, "/stream?n=8&gap_ms=1000", users, RUN_S + 4, [])
    held = server_stats(base)["max_inflight"]
    run = v.get("run", {})
    gaps = v.get("metrics", {}).get("inter_event_ms", {})
    ok = v.get("failures", 1) == 0 and held >= users
    return (
        f"capacity: {users} concurrent streams, 1 process",
        f"{held} held, {v.get('failures', '?')} failed",
        "",
        f"gap p99 {gaps.get('p99') or 0:.0f} ms (true 1000); cpu {run.get('cpu_max', 0):.0f}%"
        + ("" if ok else " NOT HELD"),
    )


def _naive_events_per_s(base: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        count = Path(tmp) / "count"
        env = {**os.environ, "NAIVE_PATH": FAST_PATH, "NAIVE_COUNT_FILE": str(count)}
        env["NAIVE_RUN_S"] = str(RUN_S)
        argv = [sys.executable, "-m", "locust", "-f", str(NAIVE), "--headless", "--host", base]
        argv += ["-u", "20", "-r", "20", "-t", f"{RUN_S}s", "--stop-timeout", "0", "--only-summary"]
        subprocess.run(
            argv,
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=RUN_S + 120,
            check=False,
        )
        if not count.exists():
            return math.nan
        events, seconds = count.read_text().split()
        # Over the time it actually counted, not the nominal -t (users finish late).
        return int(events) / float(seconds) if float(seconds) > 0 else math.nan


def section_load_capacity(repeat: int) -> list[Row]:
    rows: list[Row] = []
    with fixture_server() as base:
        for users in (1000, 2000):
            rows.append(_concurrency(base, users))
        best_ours, best_naive, cpu = 0.0, 0.0, 0.0
        for _ in range(max(1, min(repeat, 2))):
            v = run_locust(base, FAST_PATH, 20, RUN_S, [])
            run = v.get("run", {})
            if run.get("duration_s"):
                best_ours = max(best_ours, run["events"] / run["duration_s"])
                cpu = run.get("cpu_max", 0.0)
            best_naive = max(best_naive, _naive_events_per_s(base))
        ratio = best_ours / best_naive if best_naive else math.nan
        rows.append(
            (
                "capacity: validated events/s, 1 process",
                f"{best_ours / 1e3:.1f} k/s (cpu {cpu:.0f}%)",
                f"{best_naive / 1e3:.1f} k/s naive",
                f"{ratio:.1f}x (goal ≥ 50 k/s, ≥ 5x)",
            )
        )
    return rows


if __name__ == "__main__":
    for r in section_load_capacity(1):
        print(" | ".join(r))
