"""Real nginx (Debian's package) in front of a real uvicorn server, on loopback, as non-root.

``nginx_in_front(upstream)`` starts ``nginx`` with a configuration of its own in a temporary
prefix (listening on 127.0.0.1, a free port) and yields its base URL; its locations:

    /on/      proxy_buffering on   (nginx's default; proxied over HTTP/1.0, as stock nginx does)
    /off/     proxy_buffering off

The upstream app streams 5 prefab events 200 ms apart at ``/s``; ``/s?accel=no`` adds the
``X-Accel-Buffering: no`` header that tells nginx not to buffer.  When nginx is not installed the
test skips and says so (``.ci/run`` installs it, as it does Chromium).  Run as root (a CI
container), nginx is started as ``nobody``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

__all__ = ["NGINX", "nginx_in_front", "upstream_app"]

NGINX = shutil.which("nginx") or (
    "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
)


async def _paced(request: Request) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        yield b'id: 1\ndata: {"type": "start", "data": {}}\n\n'
        for i in range(3):
            await asyncio.sleep(0.2)
            yield b'id: %d\ndata: {"type": "progress", "data": {"current": %d, "total": 3}}\n\n' % (
                i + 2,
                i + 1,
            )
        await asyncio.sleep(0.2)
        yield b'id: 5\ndata: {"type": "done", "data": {}}\n\n'

    headers = {"Cache-Control": "no-cache"}
    if request.query_params.get("accel") == "no":
        headers["X-Accel-Buffering"] = "no"
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def upstream_app() -> Starlette:
    return Starlette(routes=[Route("/s", _paced)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


_CONF = """
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /on/ {{ proxy_pass http://{upstream}/; proxy_buffering on; }}
        location /off/ {{ proxy_pass http://{upstream}/; proxy_buffering off; }}
    }}
}}
"""


@contextlib.contextmanager
def nginx_in_front(upstream: str) -> Iterator[str]:
    """nginx proxying to ``upstream`` (``host:port``); yields ``http://127.0.0.1:<port>``."""
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian package 'nginx'; .ci/run installs it)")
    # Not under pytest's tmp_path: its parents are private to root, and nginx runs as nobody.
    prefix = Path(tempfile.mkdtemp(prefix="stream-harness-nginx-"))
    prefix.chmod(0o777)
    port = _free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(_CONF.format(prefix=prefix, port=port, upstream=upstream))
    user = "nobody" if os.getuid() == 0 else None
    proc = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        user=user,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.skip(f"nginx did not start: {err.strip()[-300:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                pytest.fail("nginx did not listen within 10 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(prefix, ignore_errors=True)
