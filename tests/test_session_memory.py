"""A session keeps bounded state however long the stream or however many violations: the
transcript's head, the events around the first failures and the tail; violations up to a
bound, then counts per rule; arrival times at 8 bytes an event."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

from harness._core.rules import Severity, Violation
from harness._core.session import (
    MAX_VIOLATIONS,
    TRANSCRIPT_CONTEXT,
    TRANSCRIPT_FAILURES,
    TRANSCRIPT_HEAD,
    TRANSCRIPT_TAIL,
    StreamSession,
)
from harness._core.sse import SSEEvent

EXE = Path(sys.executable).parent / "stream-harness"


class FakeEveryNthChecker:
    """Breaks a rule, with a message of its own, on every ``n``-th event."""

    name = "fake"

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def feed(self, event: SSEEvent) -> list[Violation]:
        self.seen += 1
        if self.seen % self.n:
            return []
        return [Violation("fake.rule", Severity.ERROR, f"bad {self.seen}", self.seen - 1)]

    def finish(self, complete: bool = True) -> list[Violation]:
        return []

    def event_type(self, event: SSEEvent) -> str:
        return "x"


def _run(events: int, every: int) -> StreamSession:
    s = StreamSession("t", FakeEveryNthChecker(every), start=0.0, max_events=10**9)
    for i in range(events):
        s.feed_event(SSEEvent(data=str(i)), float(i))
    return s


def test_session_when_stream_is_long_and_failing_then_transcript_and_violations_are_bounded() -> (
    None
):
    n = 60_000
    s = _run(n, every=10)
    r = s.finish(float(n))
    bound = TRANSCRIPT_HEAD + TRANSCRIPT_TAIL + TRANSCRIPT_FAILURES * (2 * TRANSCRIPT_CONTEXT + 1)
    assert len(r.transcript) <= bound
    indexes = [e.index for e in r.transcript]
    assert indexes == sorted(set(indexes))
    assert indexes[0] == 0 and indexes[-1] == n - 1  # head and tail
    assert r.entry(TRANSCRIPT_HEAD + 9) is not None  # the first failure past the head, kept
    assert r.entry(TRANSCRIPT_HEAD + 9).violations  # type: ignore[union-attr]
    assert len(r.violations) == MAX_VIOLATIONS + 1
    summary = r.violations[-1]
    assert summary.rule == "fake.rule" and summary.event_index is None
    assert f"{n // 10 - MAX_VIOLATIONS} more violation(s)" in summary.message
    assert len(r.event_times_ms) == n and r.event_times_ms[5] == 5000.0


def test_session_when_a_runner_adds_a_violation_to_a_tail_event_then_it_is_shown_there() -> None:
    s = _run(5000, every=10**9)
    s.add(Violation("fake.late", Severity.ERROR, "late", 4998))
    r = s.finish(5000.0)
    entry = r.entry(4998)
    assert entry is not None and [v.rule for v in entry.violations] == ["fake.late"]


def peak_rss_kb(args: list[str], cwd: Path) -> int:
    """``stream-harness ARGS --report-dir rep`` under a fresh parent, so the peak RSS (KB) is
    this run's alone (not an earlier test's); the run must pass."""
    probe = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    argv = [str(EXE), *args, "--report-dir", "rep"]
    r = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )
    code, kb = r.stdout.split()[-2:]
    assert code == "0", r.stdout[-2000:] + r.stderr
    return int(kb)


@pytest.mark.timeout(120)
def test_check_when_recording_grows_tenfold_then_peak_rss_does_not(tmp_path: Path) -> None:
    def peak(events: int) -> int:
        path = tmp_path / f"s{events}.sse"
        with path.open("wb") as f:
            f.write(b'data: {"type": "start", "data": {"total": 1}}\n\n')
            for i in range(events):
                f.write(b'id: %d\ndata: {"type": "content", "data": "tok"}\n\n' % i)
            f.write(b'data: {"type": "done", "data": {"total": 1}}\n\n')
        return peak_rss_kb(["check", str(path), "--max-events", "10000000"], tmp_path)

    small = peak(20_000)
    big = peak(200_000)
    assert big - small < 16 * 1024, (small, big)  # KB: 180 000 more events, not 100+ MB more


class _OneBodyServerFake:
    """A loopback server that answers every request with one prebuilt event stream (close-
    delimited), as fast as the socket takes it."""

    def __init__(self, body: bytes) -> None:
        import socket
        import threading

        self.body = body
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/stream"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                peer, _ = self.sock.accept()
            except OSError:
                return
            with peer:
                peer.recv(65536)
                head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                head += b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
                with contextlib.suppress(OSError):  # the client stopped reading
                    peer.sendall(head + self.body)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.timeout(150)
def test_check_url_when_stream_grows_tenfold_then_peak_rss_does_not(tmp_path: Path) -> None:
    def peak(events: int) -> int:
        body = b'data: {"type": "start", "data": {"total": 1}}\n\n'
        body += b"".join(b'id: %d\ndata: {"type": "content", "data": "tok"}\n\n' % i
                         for i in range(events))  # fmt: skip
        body += b'data: {"type": "done", "data": {"total": 1}}\n\n'
        server = _OneBodyServerFake(body)
        try:
            argv = ["check", server.url, "--max-events", "10000000", "--total-timeout", "100"]
            return peak_rss_kb(argv, tmp_path)
        finally:
            server.close()

    # Both past the 8 MB of raw bytes kept for the reproducer (RAW_LIMIT: ~160 000 of these
    # events), which a shorter stream would still be filling.
    small = peak(200_000)
    big = peak(2_000_000)
    assert big - small < 16 * 1024, (small, big)  # KB: 1.8 M more events, not 100+ MB more
