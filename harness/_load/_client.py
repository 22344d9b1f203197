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
from typing import Final

import gevent.socket  # type: ignore[import-untyped]
import gevent.ssl  # type: ignore[import-untyped]

from ._target import Target, parse_target

__all__ = ["RECV_BYTES", "Connection", "Target", "parse_target"]

#: Bytes asked of one ``recv``.  recv returns what has arrived, up to this: never waits to fill.
RECV_BYTES: Final = 256 * 1024


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


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Connection:
    """A connected (TLS-wrapped for https) socket; ``recv`` honours a timeout in seconds."""

    def __init__(self, target: Target, connect_timeout: float) -> None:
        sock = gevent.socket.create_connection(_address(target), timeout=connect_timeout)
        sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
        if target.tls:
            ctx = gevent.ssl.create_default_context()
            sock = ctx.wrap_socket(sock, server_hostname=target.host)
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: float) -> bytes:
        """What has arrived (b"" at EOF); raises ``TimeoutError`` after ``timeout`` seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        data: bytes = self.sock.recv(RECV_BYTES)
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
