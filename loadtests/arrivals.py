"""Open loop: a fixed rate of new streams per second, however slow the target gets.

    locust -f loadtests/arrivals.py --host http://127.0.0.1:8000 --sse-path /invoke/chat \\
        --headless -u 2 -r 2 -t 1m --sse-arrival-rate 10     # 2 users x 10/s = 20 streams/s

Each user is a scheduler: it starts a stream every 1/rate seconds in its own greenlet, and
measures every time from the stream's intended start, so a stalled target cannot hide the
queueing behind it (no coordinated omission); how late streams actually started is reported
separately as ``queue_ms``.  At most ``--sse-max-inflight`` streams per user are open; arrivals
beyond it are dropped and counted, and the verdict warns when the achieved rate falls short.
"""

from __future__ import annotations

from harness._load.user import ArrivalUser


class StreamArrivals(ArrivalUser):
    path = "/invoke/chat"
    arrival_rate = 10.0
