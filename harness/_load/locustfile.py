"""The locustfile ``stream-harness load`` runs (``locust -f`` this file, one class by name).

Steady    closed loop: --users streams at a time (--spawn-rate ramps them up)
Arrivals  open loop: --sse-arrival-rate new streams per second per user
Abandon   clients that vanish mid-stream, then the target's health after the storm
Reconnect closed loop, each stream dropped after --sse-reconnect-after K events and
          resumed with Last-Event-ID (``Steady`` with that option does the same; this
          name is what the verdict and report call the run)
"""

from __future__ import annotations

from harness._load.user import AbandonUser, ArrivalUser, SSEUser


class Steady(SSEUser):
    pass


class Arrivals(ArrivalUser):
    pass


class Abandon(AbandonUser):
    pass


class Reconnect(SSEUser):
    pass
