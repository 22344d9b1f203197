"""Abandon: a storm of clients that vanish mid-stream (connection reset after 1..K events),
then whole streams that measure whether the target stayed healthy.

    locust -f loadtests/abandon.py --host http://127.0.0.1:8000 --sse-path /invoke/chat \\
        --headless -u 100 -r 100 -t 40s --sse-storm-seconds 30 --sse-abandon-after 3

The verdict's ``after_storm_error_rate`` (and ``run.after_storm``) is the failure rate of the
streams started after the storm: a server that leaks a worker per abandoned stream fails here.
"""

from __future__ import annotations

from harness._load.user import AbandonUser


class AbandoningClients(AbandonUser):
    path = "/invoke/chat"
    abandon_after = 3
    storm_seconds = 30.0
