"""One streaming HTTP connection on a gevent socket: every ``recv`` stamped on arrival.

Imported only inside load processes (it imports gevent).  Each stream gets its own connection:
an event stream holds its connection for its whole life, a close-delimited body cannot share
one, and a fresh connection is what a new client pays for.  ``TCP_NODELAY`` so the request is
not held back by Nagle, and no ``Accept-Encoding: gzip``: a compressing proxy holds SSE back.
"""

from __future__ import annotations

import ipaddress
import socket as _stdsocket
import struct
import time
from typing import Final

import gevent.socket  # type: ignore[import-untyped]

from harness._core.network import NetworkOptions

from ._dial import Route, dial, ssl_context
from ._target import Target, parse_target

__all__ = ["RECV_BYTES", "Connection", "Route", "Target", "parse_target"]

#: Bytes asked of one ``recv``.  recv returns what has arrived, up to this: never waits to fill.
RECV_BYTES: Final = 256 * 1024


#: Linux's SO_TIMESTAMPNS (and SCM_TIMESTAMPNS): Python's socket module does not name it.
_SO_TIMESTAMPNS: Final = 35
_ANCILLARY: Final = _stdsocket.CMSG_SPACE(16)


def _kernel_arrival(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive stamp (wall clock) moved onto the monotonic clock.  The offset is
    read now, beside the stamp, so a wall clock slewed during a long run does not drift it."""
    for level, kind, data in ancillary:
        if level == _stdsocket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            offset = time.time() - time.monotonic()
            stamp: float = sec + nsec / 1e9 - offset
            return min(stamp, time.monotonic())
    return None


#: (host, port) -> address, resolved once per process: a load generator that asked DNS for
#: every stream would measure its resolver (gevent resolves in a thread pool) as TTFB.
_RESOLVED: dict[tuple[str, int], tuple[str, int]] = {}


def _address(target: Target) -> tuple[str, int]:
    key = (target.host, target.port)
    addr = _RESOLVED.get(key)
    if addr is None and _is_ip(target.host):
        addr = _RESOLVED[key] = key
    if addr is None:
        infos = gevent.socket.getaddrinfo(target.host, target.port, 0, _stdsocket.SOCK_STREAM)
        addr = _RESOLVED[key] = infos[0][4][:2]
    return addr


_DEFAULT_ROUTES: dict[bool, Route] = {}


def _default_route(target: Target) -> Route:
    """Direct, with the default TLS trust (made once per process: loading it costs ~50 ms)."""
    route = _DEFAULT_ROUTES.get(target.tls)
    if route is None:
        context = ssl_context(NetworkOptions()) if target.tls else None
        route = _DEFAULT_ROUTES[target.tls] = Route(None, None, context)
    return route


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Connection:
    """A connected (TLS-wrapped for https) socket; ``recv`` honours a timeout in seconds.

    On plain TCP (Linux) the kernel stamps each read with the time its bytes reached the socket
    (``SO_TIMESTAMPNS``), and :attr:`arrived` gives it on the monotonic clock.  That is what
    keeps timing honest when many streams' bytes land at once: the process reads the sockets
    one after another, and without the kernel's stamp the last would be stamped when it got
    its turn rather than when its bytes arrived.
    """

    def __init__(self, target: Target, connect_timeout: float, route: Route | None = None) -> None:
        # (The standard socket and ssl modules are gevent's here: Locust patched them.)
        if route is None:
            route = _default_route(target)
        sock = dial(target, route, connect_timeout, address=_address)
        self.kernel_stamps = False
        if not target.tls:  # (no recvmsg on TLS: stamped on return from recv)
            try:
                sock.setsockopt(_stdsocket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                self.kernel_stamps = True
            except OSError:
                pass  # not Linux: stamp on return from recv
        self.sock = sock
        #: When the bytes of the last ``recv`` arrived (monotonic clock), or None if unknown.
        self.arrived: float | None = None

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: float) -> bytes:
        """What has arrived (b"" at EOF); raises ``TimeoutError`` after ``timeout`` seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        if not self.kernel_stamps:
            data: bytes = self.sock.recv(RECV_BYTES)
            return data
        data, ancillary, _flags, _addr = self.sock.recvmsg(RECV_BYTES, _ANCILLARY)
        self.arrived = _kernel_arrival(ancillary)
        return data

    def close(self, abort: bool = False) -> None:
        """Close; ``abort`` resets the connection (RST), as a client that vanishes does."""
        try:
            if abort:
                linger = struct.pack("ii", 1, 0)
                self.sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_LINGER, linger)
            self.sock.close()
        except OSError:
            pass
