"""Opening a load test's connection: direct or through an http:// proxy, TLS-wrapped for
https -- with no gevent in sight, so the runner's preflight (in the user's process) and every
stream (in a Locust process, where the standard ``socket`` and ``ssl`` are gevent's) take the
same path and fail the same way.

Through a proxy an https target is reached by ``CONNECT host:port`` (a tunnel; TLS end to end)
and an http target by sending the request itself to the proxy, its target in absolute form
(``GET http://host/path``), as curl and httpx do.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

from harness._core import network
from harness._core.network import NetworkOptions, choose_proxy

from ._target import Target, parse_target

__all__ = ["PROXY_ENV", "ProxyError", "Route", "dial", "route_for", "ssl_context"]

#: `stream-harness load` tells the Locust processes the proxy it chose ("" = direct) here.
PROXY_ENV: Final = "STREAM_HARNESS_PROXY"
_HEAD_LIMIT: Final = 16 * 1024


class ProxyError(OSError):
    """The proxy refused or broke the tunnel."""


@dataclass(frozen=True, slots=True)
class Route:
    """How to reach one target: the proxy (or None), its credentials, the TLS context."""

    proxy: Target | None = None
    #: ``Proxy-Authorization`` value from the proxy URL's user:password.
    proxy_auth: str | None = None
    context: ssl.SSLContext | None = None

    @property
    def forwards(self) -> bool:
        """An http:// target through a proxy: the request goes to the proxy, absolute-form."""
        return self.proxy is not None and self.context is None

    def request_target(self, target: Target, path: str) -> str:
        return f"http://{target.authority}{path}" if self.forwards else path

    def proxy_headers(self) -> tuple[tuple[str, str], ...]:
        if self.forwards and self.proxy_auth:
            return (("Proxy-Authorization", self.proxy_auth),)
        return ()


def route_for(url: str, net: NetworkOptions, environ: Mapping[str, str] = os.environ) -> Route:
    """The route to ``url``.  In a Locust process started by `stream-harness load`, the proxy
    is the one the runner chose (``PROXY_ENV``); run alone, it is chosen here the same way."""
    target = parse_target(url)
    chosen = environ.get(PROXY_ENV)
    proxy = (chosen or None) if chosen is not None else choose_proxy(url, net, environ)
    context = ssl_context(net) if target.tls else None
    if proxy is None:
        return Route(None, None, context)
    parts = urlsplit(proxy)
    auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(pair.encode()).decode()
    return Route(parse_target(proxy), auth, context)


def ssl_context(net: NetworkOptions) -> ssl.SSLContext:
    """The TLS trust of ``check`` (in a Locust process ``ssl`` is gevent's, so the context
    makes gevent sockets)."""
    ctx: ssl.SSLContext = network.ssl_context(net, ssl)
    return ctx


def dial(
    target: Target,
    route: Route,
    timeout: float,
    *,
    address: Callable[[Target], tuple[str, int]] | None = None,
    wrap: bool = True,
) -> socket.socket:
    """A connected socket to ``target`` (through ``route``), the TLS handshake done -- or,
    with ``wrap=False``, the plain socket (tunnelled through the proxy) for the caller's own
    TLS.  Raises OSError (``ssl.SSLError`` for TLS, :class:`ProxyError` for the proxy)."""
    hop = route.proxy or target
    where = address(hop) if address is not None else (hop.host, hop.port)
    sock = socket.create_connection(where, timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if route.proxy is not None and route.context is not None:
            _tunnel(sock, target, route.proxy_auth)
        if route.context is not None and wrap:
            sock = route.context.wrap_socket(sock, server_hostname=target.host)
    except BaseException:
        sock.close()
        raise
    return sock


def _tunnel(sock: socket.socket, target: Target, auth: str | None) -> None:
    host = f"[{target.host}]" if ":" in target.host else target.host
    lines = [f"CONNECT {host}:{target.port} HTTP/1.1", f"Host: {host}:{target.port}"]
    if auth:
        lines.append(f"Proxy-Authorization: {auth}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            raise ProxyError("the proxy closed the connection before answering CONNECT")
        head += data
        if len(head) > _HEAD_LIMIT:
            raise ProxyError("the proxy's answer to CONNECT has no end")
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status.split(" ", 2)
    if len(parts) < 2 or not parts[1].startswith("2"):
        raise ProxyError(f"the proxy refused CONNECT {host}:{target.port}: {status.strip()}")
