"""One streaming HTTP connection on a gevent socket: every ``recv`` stamped on arrival.

Imported only inside load processes (it imports gevent).  Each stream gets its own connection:
an event stream holds its connection for its whole life, a close-delimited body cannot share
one, and a fresh connection is what a new client pays for.  ``TCP_NODELAY`` so the request is
not held back by Nagle, and no ``Accept-Encoding: gzip``: a compressing proxy holds SSE back.
"""

from __future__ import annotations

import ipaddress
import socket as _stdsocket
import ssl
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
#: Seconds a stream may keep this process's event loop before ``recv`` lets the others run.
#: A socket that always has bytes waiting never blocks, so without this one fast stream held
#: the loop for its whole life (seconds): other streams, the lag probe, the end of the run and
#: Locust's reports all waited for it.  The arrival stamps are the kernel's, so the pause does
#: not move them.
TURN_S: Final = 0.01
_turn = [0.0]  # when a stream of this process last gave the loop back


#: Linux's SO_TIMESTAMPNS (and SCM_TIMESTAMPNS): Python's socket module does not name it.
_SO_TIMESTAMPNS: Final = 35
_ANCILLARY: Final = _stdsocket.CMSG_SPACE(16)


def _stamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive stamp (wall clock, seconds) in ``ancillary``, or None."""
    for level, kind, data in ancillary:
        if level == _stdsocket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return float(sec + nsec / 1e9)
    return None


def measure_kernel_skew(tries: int = 8) -> float:
    """Seconds to add to the kernel's receive stamps to put them on ``time.time()``'s clock.

    Zero where the two agree, as they should.  Some virtual machines' kernels stamp with a
    wall clock a millisecond or two away from the one processes read (seen in CI: every stamp
    1.5-1.9 ms before its bytes were sent), which would make every TTFB that much short.  So a
    process measures it once, over a loopback TCP connection (the path the streams take): a
    byte's stamp must lie between the clock read before its send and the one after its
    receipt; where the nearest of ``tries`` does not, the gap is the skew.  Zero where it
    cannot be measured.
    """
    socks: list[_stdsocket.socket] = []
    early = late = float("inf")
    try:
        listener = _stdsocket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_STREAM)
        socks.append(listener)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        sender = _stdsocket.create_connection(listener.getsockname(), timeout=1.0)
        socks.append(sender)
        sender.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
        listener.settimeout(1.0)
        receiver, _ = listener.accept()
        socks.append(receiver)
        receiver.setsockopt(_stdsocket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        receiver.settimeout(1.0)
        for _ in range(tries):
            before = time.time()
            sender.sendall(b".")
            _data, ancillary, _flags, _addr = receiver.recvmsg(1, _ANCILLARY)
            after = time.time()
            stamp = _stamp(ancillary)
            if stamp is None:
                return 0.0
            early = min(early, stamp - before)  # >= 0 when the clocks agree
            late = min(late, after - stamp)  # >= 0 when the clocks agree
    except OSError:
        return 0.0
    finally:
        for sock in socks:
            sock.close()
    if early < 0:
        return -early  # the kernel's clock is behind: stamps came before their sends
    if late < 0:
        return late  # ahead: stamps came after their receipts
    return 0.0


_skew: list[float] = []  # measure_kernel_skew(), once per process


def _kernel_arrival(ancillary: list[tuple[int, int, bytes]], floor: float) -> float | None:
    """The kernel's receive stamp moved onto the monotonic clock, kept between ``floor`` (the
    bytes cannot have come before the request went, nor before the last read's) and now.  The
    wall-to-monotonic offset is read now, beside the stamp, so a wall clock slewed during a
    long run does not drift it."""
    stamp = _stamp(ancillary)
    if stamp is None:
        return None
    if not _skew:
        # Claimed first: gevent may run other streams while it is measured, and they must not
        # each measure it too (a thousand streams, a thousand connections).
        _skew.append(0.0)
        _skew[0] = measure_kernel_skew()
    now = time.monotonic()
    arrived = stamp + _skew[0] - (time.time() - now)
    return min(max(arrived, floor), now)


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
    r"""A connected (TLS-wrapped for https) socket; ``recv`` honours a timeout in seconds.

    On Linux the kernel stamps each read with the time its bytes reached the socket
    (``SO_TIMESTAMPNS``), and :attr:`arrived` gives it on the monotonic clock.  That is what
    keeps timing honest when many streams' bytes land at once: the process reads the sockets
    one after another, and without the kernel's stamp the last would be stamped when it got
    its turn rather than when its bytes arrived.  Over TLS too: the TLS is done in memory
    (``ssl.SSLObject`` over ``MemoryBIO``\ s) on bytes read with ``recvmsg``, so each decrypted
    read carries the stamp of the socket read that brought its record.
    """

    def __init__(self, target: Target, connect_timeout: float, route: Route | None = None) -> None:
        # (The standard socket and ssl modules are gevent's here: Locust patched them.)
        if route is None:
            route = _default_route(target)
        #: No byte read from here on can have arrived before this (see _kernel_arrival).
        self._floor = time.monotonic()
        sock = dial(target, route, connect_timeout, address=_address, wrap=False)
        self.sock = sock
        #: When the bytes of the last ``recv`` arrived (monotonic clock), or None if unknown.
        self.arrived: float | None = None
        self.kernel_stamps = False
        try:
            sock.setsockopt(_stdsocket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            self.kernel_stamps = True
        except OSError:
            pass  # not Linux: stamp on return from recv
        self.tls: ssl.SSLObject | None = None
        self._in: ssl.MemoryBIO | None = None
        self._out: ssl.MemoryBIO | None = None
        if route.context is not None:
            try:
                self._handshake(route.context, target.host, connect_timeout)
            except BaseException:
                sock.close()
                raise

    def _handshake(self, context: ssl.SSLContext, host: str, timeout: float) -> None:
        incoming = self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, self._out, server_hostname=host)
        self.sock.settimeout(timeout)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self._read_raw()
                if not data:
                    raise ConnectionResetError(
                        "the server closed the connection during the TLS handshake"
                    ) from None
                incoming.write(data)
        self._flush()
        self.tls = tls

    def _flush(self) -> None:
        assert self._out is not None
        pending = self._out.read()
        if pending:
            self.sock.sendall(pending)

    def _read_raw(self) -> bytes:
        if not self.kernel_stamps:
            data: bytes = self.sock.recv(RECV_BYTES)
            return data
        data, ancillary, _flags, _addr = self.sock.recvmsg(RECV_BYTES, _ANCILLARY)
        arrived = self.arrived = _kernel_arrival(ancillary, self._floor)
        if arrived is not None:
            self._floor = arrived
        return data

    def send(self, data: bytes) -> None:
        self._floor = time.monotonic()
        if self.tls is None:
            self.sock.sendall(data)
            return
        self.tls.write(data)
        self._flush()

    def recv(self, timeout: float) -> bytes:
        """What has arrived (b"" at EOF); raises ``TimeoutError`` after ``timeout`` seconds."""
        now = time.monotonic()
        if now - _turn[0] >= TURN_S:
            # The other greenlets' turn (see TURN_S).  Not sleep(0): that runs the greenlets
            # already ready, but the loop does not turn, so no timer fires and no socket is read.
            gevent.sleep(1e-6)
            _turn[0] = time.monotonic()
        self.sock.settimeout(max(timeout, 0.001))
        tls = self.tls
        if tls is None:
            return self._read_raw()
        assert self._in is not None
        while True:
            try:
                return tls.read(RECV_BYTES)
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""  # close_notify, or a close without it: the end of the body
            self._flush()  # (a key update wants an answer)
            data = self._read_raw()
            if not data:
                self._in.write_eof()
                continue
            self._in.write(data)

    def close(self, abort: bool = False) -> None:
        """Close; ``abort`` resets the connection (RST), as a client that vanishes does."""
        try:
            if abort:
                linger = struct.pack("ii", 1, 0)
                self.sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_LINGER, linger)
            self.sock.close()
        except OSError:
            pass
