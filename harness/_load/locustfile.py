"""The locustfile ``stream-harness load`` runs (``locust -f`` this file, one class by name).

    Steady    closed loop: --users streams at a time (--spawn-rate ramps them up)
    Arrivals  open loop: --sse-arrival-rate new streams per second per user
    Abandon   clients that vanish mid-stream, then the target's health after the storm

The reconnect scenario is ``Steady`` with ``--sse-reconnect-after K``.
"""

from __future__ import annotations

from harness._load.user import AbandonUser, ArrivalUser, SSEUser


class Steady(SSEUser):
    pass


class Arrivals(ArrivalUser):
    pass


class Abandon(AbandonUser):
    pass
