"""One stream as the Locust user runs it (gevent socket, decoder, checker), against real loopback
sockets: every event is stamped within a few ms of when the server sent it, whatever the
framing, and reconnects, drops and abandons are judged as the issue says.

These run in the pytest process with gevent's sockets but *without* Locust, so nothing is
monkey-patched here: gevent's cooperative sockets work in the main thread as they are.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator

import pytest
from http_fixtures import closed_port
from load_fixtures import LagProbe, LoadServer, running

from harness._load._capture import Budget
from harness._load._client import Connection, parse_target
from harness._load._stream import MAX_ARRIVALS, StreamResult, StreamSpec, run_stream

GAP_MS = 200
#: How late an event may be stamped after the server wrote it, on loopback.
STAMP_SLACK_MS = 5.0


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, LoadServer]]:
    # The server is a thread of this process: with the default 5 ms GIL switch interval, a
    # stamp can wait 5 ms for the server thread to let go -- a test artefact (in a load run the
    # target is another process), so switch faster here.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        with running() as served:
            yield served
    finally:
        sys.setswitchinterval(interval)


def _run(
    url: str, sink: Sink2 | None = None, keep: Callable[[int], bool] | None = None, **spec: object
) -> StreamResult:
    t = parse_target(url)
    return run_stream(
        StreamSpec(url, **spec),  # type: ignore[arg-type]
        lambda timeout: Connection(t, timeout),
        sink or Sink2(),
        authority=t.authority,
        path=t.path,
        keep=keep,
    )


class Sink2:
    """Records every gap, so arrival times can be rebuilt: first event + running sum of gaps."""

    def __init__(self) -> None:
        self.gap_list: list[float] = []
        self.delays: list[float] = []
        self.arrived: list[tuple[int, float]] = []

    def gaps(self, first_ms: float, zeros: int) -> None:
        self.gap_list.append(first_ms)
        self.gap_list += [0.0] * zeros

    def server_delays(self, values_ms: list[float]) -> None:
        self.delays += values_ms

    def events(self, n: int, at: float) -> None:
        self.arrived.append((n, at))


@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_stream_when_events_200ms_apart_then_each_stamped_within_few_ms_of_send(
    server: tuple[str, LoadServer], framing: str
) -> None:
    base, srv = server
    sid = f"stamp-{framing}"
    url = f"{base}/stream?n=4&gap_ms={GAP_MS}&size=120&framing={framing}&sid={sid}&sent=1"
    sink = Sink2()
    with LagProbe() as lag:  # the server's thread and the reader share this process
        r = _run(url, sink)
    slack = STAMP_SLACK_MS + lag.max_ms  # a late wake-up, measured in this run, stretches it
    assert r.ok and r.events == 6, r.violations
    assert r.first_event_ms is not None
    arrivals = [r.start + r.first_event_ms / 1000.0]
    for gap in sink.gap_list:
        arrivals.append(arrivals[-1] + gap / 1000.0)
    sends = srv.stats.sends[sid]
    assert len(arrivals) == len(sends) == 6
    late = [(a - s) * 1000.0 for a, s in zip(arrivals, sends, strict=True)]
    assert all(abs(x) < slack for x in late), (late, slack)  # the server stamps after write()
    assert all(abs(g - GAP_MS) < slack for g in sink.gap_list), (sink.gap_list, slack)
    if framing != "length":  # a Content-Length body is built (and stamped) up front
        assert len(sink.delays) == 6 and max(sink.delays) < slack


def test_stream_when_good_then_metrics_are_consistent(server: tuple[str, LoadServer]) -> None:
    base, _ = server
    r = _run(f"{base}/stream?n=20&gap_ms=5&batch=4")
    assert r.ok and r.events == 22 and r.error is None
    assert r.ttfb_ms is not None and r.first_event_ms is not None
    assert r.first_content_ms is not None
    assert 0 < r.ttfb_ms <= r.first_event_ms <= r.first_content_ms <= r.stream_ms
    assert r.events_per_s and r.bytes_per_s and r.bytes > 22 * 20


def test_stream_when_server_ignores_last_event_id_then_resume_ignored(
    server: tuple[str, LoadServer],
) -> None:
    base, _ = server
    r = _run(f"{base}/stream?n=6&resume=ignore", reconnect_after=3)
    assert not r.ok and r.failed_rules == ["resume.ignored"]


def test_stream_when_server_resumes_then_no_gap_no_duplicate_and_retry_is_honoured(
    server: tuple[str, LoadServer],
) -> None:
    base, srv = server
    before = len(srv.stats.last_event_ids)
    with LagProbe() as lag:
        r = _run(f"{base}/stream?n=6&retry=300", reconnect_after=3)
    assert r.ok, r.violations
    assert r.events == 8  # start, 6 content, done: each once
    assert srv.stats.last_event_ids[before:] == ["3"]
    assert r.reconnect_ms is not None and 300.0 <= r.reconnect_ms < 400.0 + lag.max_ms


def test_stream_when_done_dropped_then_seq_terminal(server: tuple[str, LoadServer]) -> None:
    base, _ = server
    r = _run(f"{base}/stream?n=3&drop_done_over=0")
    assert r.failed_rules == ["seq.terminal"]


def test_stream_when_abandoned_then_client_resets_and_is_not_judged(
    server: tuple[str, LoadServer],
) -> None:
    base, srv = server
    aborted = srv.stats.aborted
    r = _run(f"{base}/stream?n=50&gap_ms=10", abandon_after=2)
    assert r.abandoned and r.ok and r.events == 2
    deadline = time.monotonic() + 2.0
    while srv.stats.aborted == aborted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.stats.aborted == aborted + 1


def test_stream_when_silent_then_timeout_idle(server: tuple[str, LoadServer]) -> None:
    base, _ = server
    with LagProbe() as lag:
        r = _run(f"{base}/stream?n=3&gap_ms=1000", idle_timeout=0.2)
    assert r.failed_rules == ["timeout.idle"]
    assert r.stream_ms < 600 + lag.max_ms  # the limit, not the 1 s gap


def test_stream_when_refused_then_error_not_violation() -> None:
    r = _run(f"http://127.0.0.1:{closed_port()}/stream")
    assert r.error is not None and "refused" in r.error.lower() and not r.ok


# -- what a stream keeps for the report -------------------------------------------------------


def test_stream_when_captured_then_raw_bytes_reproduce_and_timeline_counts_every_event(
    server: tuple[str, LoadServer],
) -> None:
    from harness._contracts.prefab import PrefabChecker
    from harness._core.session import StreamSession

    base, _ = server
    sink = Sink2()
    r = _run(f"{base}/stream?n=6&gap_ms=5&drop_every=1", sink, keep=lambda n: True)
    assert r.failed_rules == ["seq.terminal"] and r.complete and not r.raw_truncated
    assert r.raw is not None and sum(map(len, r.raw)) == r.bytes
    assert sum(n for _, n in r.arrivals) == r.events == sum(n for n, _ in sink.arrived) == 7
    times = [t for t, _ in r.arrivals]
    assert times == sorted(times) and r.first_event_ms is not None
    assert times[0] == pytest.approx(r.first_event_ms)
    # The bytes alone say what the live stream said.
    session = StreamSession("x", PrefabChecker(), start=0.0)
    session.feed_bytes(b"".join(r.raw), 0.0)
    assert [v.rule for v in session.finish(0.0).violations] == ["seq.terminal"]


def test_stream_when_bad_event_then_its_index_is_kept(server: tuple[str, LoadServer]) -> None:
    base, _ = server
    r = _run(f"{base}/stream?n=5&bad_every=1", headers=(("Authorization", "Bearer x"),))
    assert r.failed_rules == ["event.schema"] and r.bad_events == [3]


def test_stream_when_over_budget_then_capture_stops_and_is_marked_truncated(
    server: tuple[str, LoadServer],
) -> None:
    base, _ = server
    budget = Budget(total=1 << 20, each=100)
    keep = budget.keeper()
    r = _run(f"{base}/stream?n=20&gap_ms=2", keep=keep)
    assert r.ok and r.raw_truncated and sum(map(len, r.raw or [])) <= 100
    assert budget.held == keep.held <= 100
    keep.release()
    assert budget.held == 0


def test_stream_when_reconnected_then_the_drop_is_on_its_timeline(
    server: tuple[str, LoadServer],
) -> None:
    base, _ = server
    r = _run(f"{base}/stream?n=6&gap_ms=5", reconnect_after=3)
    assert r.ok and len(r.reconnects_ms) == 1
    assert r.arrivals[0][0] < r.reconnects_ms[0] < r.arrivals[-1][0]


def test_stream_timeline_when_long_then_bounded_and_every_event_counted() -> None:
    r = StreamResult(start=0.0)
    for i in range(10 * MAX_ARRIVALS + 3):
        r.arrived(float(i), 1 + i % 3)
    assert len(r.arrivals) <= MAX_ARRIVALS
    assert sum(n for _, n in r.arrivals) == sum(1 + i % 3 for i in range(10 * MAX_ARRIVALS + 3))
    assert r.arrivals[0] == (0.0, 1) and r.arrivals[-1][0] == 10 * MAX_ARRIVALS + 2
    assert [t for t, _ in r.arrivals] == sorted(t for t, _ in r.arrivals)


@pytest.mark.skipif(sys.platform != "linux", reason="SO_TIMESTAMPNS is Linux's")
def test_connection_when_read_late_then_arrival_is_the_kernel_stamp_not_the_read() -> None:
    """With many streams the process reads sockets one after another; the kernel's receive
    stamp keeps each read's arrival time at when its bytes came, not when it got its turn."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    sent: list[float] = []

    def serve() -> None:
        peer, _ = srv.accept()
        time.sleep(0.05)
        sent.append(time.monotonic())
        peer.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
        sent.append(time.monotonic())
        time.sleep(0.5)
        peer.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    conn = Connection(parse_target(f"http://127.0.0.1:{srv.getsockname()[1]}/"), 5.0)
    try:
        assert conn.kernel_stamps
        deadline = time.monotonic() + 10
        while len(sent) < 2 and time.monotonic() < deadline:  # a busy machine: wait for it
            time.sleep(0.005)
        time.sleep(0.3)  # blocks the whole process: the bytes wait in the socket
        read_at = time.monotonic()
        assert conn.recv(5.0).startswith(b"HTTP/1.1 200")
        assert conn.arrived is not None
        # When sent (between the server's two stamps), not when read (0.3 s later).
        assert sent[0] - 0.001 <= conn.arrived <= sent[1] + 0.01, (conn.arrived, sent)
        assert read_at - conn.arrived > 0.2
    finally:
        conn.close()
        thread.join(2)
        srv.close()


class _ShiftedClockFake:
    """``time`` with a wall clock ``shift`` seconds away from the kernel's: a VM's skew."""

    def __init__(self, shift: float) -> None:
        self.shift = shift
        self.monotonic = time.monotonic

    def time(self) -> float:
        return time.time() + self.shift


@pytest.mark.skipif(sys.platform != "linux", reason="SO_TIMESTAMPNS is Linux's")
@pytest.mark.parametrize("shift", [0.0, 0.0017, -0.0017])
def test_kernel_stamps_once_corrected_for_skew_lie_between_send_and_receipt(
    shift: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a kernel stamps with a clock away from the process's (CI's VMs: 1.5-1.9 ms
    behind), the measured skew puts each stamp back between its datagram's send and receipt.
    The process's clock is shifted by a fake to make such a machine here."""
    import socket

    from harness._load import _client
    from harness._load._client import _ANCILLARY, _SO_TIMESTAMPNS, _stamp, measure_kernel_skew

    clock = _ShiftedClockFake(shift)
    monkeypatch.setattr(_client, "time", clock)
    skew = measure_kernel_skew()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        rx.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        rx.settimeout(5)
        inside = 0
        for _ in range(20):
            before = clock.time()
            tx.sendto(b".", rx.getsockname())
            _data, ancillary, _flags, _addr = rx.recvmsg(1, _ANCILLARY)
            after = clock.time()
            stamp = _stamp(ancillary)
            assert stamp is not None
            # 0.2 ms for the clock reads themselves; a preempted round is what the count allows.
            inside += before - 0.0002 <= stamp + skew <= after + 0.0002
        assert inside >= 15, (inside, skew)
    finally:
        rx.close()
        tx.close()


def test_kernel_arrival_is_kept_between_the_floor_and_now() -> None:
    """A stamp from before the request went (a clock that jumped back) is the send time; one
    from the future is now: never a negative TTFB nor an arrival not yet happened."""
    import socket
    import struct

    from harness._load import _client

    now_wall = time.time()
    floor = time.monotonic()

    def ancillary(wall: float) -> list[tuple[int, int, bytes]]:
        sec = int(wall)
        return [
            (
                socket.SOL_SOCKET,
                _client._SO_TIMESTAMPNS,
                struct.pack("qq", sec, int((wall - sec) * 1e9)),
            )
        ]

    early = _client._kernel_arrival(ancillary(now_wall - 5), floor)
    late = _client._kernel_arrival(ancillary(now_wall + 5), floor)
    assert early is not None and late is not None
    assert early == floor
    assert floor <= late <= time.monotonic()
    assert _client._kernel_arrival([], floor) is None
