"""Ramp: concurrency climbs in steps, holds, and comes down -- where does the target break?

    locust -f loadtests/ramp.py --host http://127.0.0.1:8000 --sse-path /invoke/chat --headless

The stages are a Locust LoadTestShape (``-u``/``-t`` are ignored); edit ``STAGES`` or set
``RAMP_PEAK`` (users at the top, default 200) and ``RAMP_STEP_S`` (seconds per step, default 20).
Contract violations under load show up as failures named by rule id (``seq.terminal`` when a
server starts dropping ``done`` events at 500 users).
"""

from __future__ import annotations

import os

from locust import LoadTestShape

from harness._load.user import SSEUser

PEAK = int(os.environ.get("RAMP_PEAK", "200"))
STEP_S = float(os.environ.get("RAMP_STEP_S", "20"))
#: (users, seconds at that level): up in quarters, hold the peak twice as long, down.
STAGES = [(PEAK // 4, STEP_S), (PEAK // 2, STEP_S), (3 * PEAK // 4, STEP_S), (PEAK, 2 * STEP_S)]
STAGES += [(PEAK // 4, STEP_S)]


class RampStreams(SSEUser):
    path = "/invoke/chat"


class Ramp(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        t: float = self.get_run_time()  # type: ignore[no-untyped-call]
        for users, seconds in STAGES:
            if t < seconds:
                return users, max(1.0, users / 5)
            t -= seconds
        return None
