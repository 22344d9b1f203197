"""Reconnect: read K events, drop the connection, wait the server's ``retry:`` hint, reconnect
with ``Last-Event-ID`` -- and check the resumed stream has no gap and no duplicate.

    locust -f loadtests/reconnect.py --host http://127.0.0.1:8000 --sse-path /invoke/chat \\
        --headless -u 20 -r 20 -t 30s --sse-reconnect-after 5

``reconnect_ms`` is from the drop to the first event of the resumed stream (the retry wait
included).  A server that starts over shows as ``resume.ignored`` failures; one that skips or
repeats events as ``resume.gap`` / ``resume.duplicate``.
"""

from __future__ import annotations

from harness._load.user import SSEUser


class ReconnectingStreams(SSEUser):
    path = "/invoke/chat"
    reconnect_after = 5
