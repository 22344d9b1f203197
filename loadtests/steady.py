"""Steady concurrency: --users streams open at all times, each started as the last one ends.

    locust -f loadtests/steady.py --host http://127.0.0.1:8000 --sse-path /invoke/chat \\
        --sse-inputs '{"messages": [{"role": "user", "content": "hi"}]}' \\
        --headless -u 50 -r 50 -t 1m --sse-threshold 'ttfb_ms.p95<800'

Our metrics appear as rows of Locust's table (type SSE: ttfb_ms, first_event_ms,
inter_event_ms, stream_ms, ...); the full-resolution verdict is printed when Locust quits
(``--sse-report FILE`` writes it as JSON).  See docs/load.md.
"""

from __future__ import annotations

from harness._load.user import SSEUser


class SteadyStreams(SSEUser):
    path = "/invoke/chat"
