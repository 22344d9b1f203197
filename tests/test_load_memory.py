"""The Locust user keeps bounded state: a stream of millions of events, or thousands of short
streams that each break a rule in words of their own, do not grow the load process.

Each test runs the real `stream-harness load` against a raw-socket fake server
(``load_fixtures.FakeFastServer``) that writes as fast as the client reads, and samples the
Locust process's RSS (psutil) while it runs:
once warm (after the first events or streams), and again after many more.  The growth between
the two must be small beside what a per-event or per-stream leak would cost (a list of gaps
alone is 32 bytes an event; a kept result a few KB a stream).  Every process a test starts is
killed at its end, group and all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from load_fixtures import FakeFastServer

EXE = [sys.executable, "-m", "harness._cli.main"]


@pytest.fixture
def fake_server() -> Iterator[FakeFastServer]:
    server = FakeFastServer()
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def _load(tmp: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`stream-harness load` in a session of its own, killed with its Locust at the end."""
    proc = subprocess.Popen(
        [*EXE, "load", *args, "--no-report", "--format", "json"],
        cwd=tmp,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _locust(proc: subprocess.Popen[bytes], deadline: float) -> psutil.Process:
    """The Locust process `stream-harness load` started."""
    while time.monotonic() < deadline and proc.poll() is None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any("locust" in part for part in child.cmdline()):
                    return child
        time.sleep(0.05)
    raise AssertionError("no Locust process started")


def _rss_when(
    locust: psutil.Process,
    done: Callable[[], bool],
    count: Callable[[], int],
    at_least: int,
    deadline: float,
) -> tuple[int, int]:
    """Wait until ``count()`` reaches ``at_least``; then the process's RSS and the count."""
    while count() < at_least:
        assert not done(), f"the load run ended after {count()} (wanted {at_least})"
        assert time.monotonic() < deadline, f"only {count()} in time (wanted {at_least})"
        time.sleep(0.05)
    return int(locust.memory_info().rss), int(count())


def _flat(
    tmp: Path,
    url: str,
    users: str,
    count: Callable[[], int],
    warm_at: int,
    late_at: int,
    margin_mb: int,
) -> None:
    deadline = time.monotonic() + 150
    with _load(tmp, url, "--users", users, "--run-time", "150s") as proc:
        locust = _locust(proc, deadline)
        done = lambda: proc.poll() is not None  # noqa: E731
        warm, at_warm = _rss_when(locust, done, count, warm_at, deadline)
        late, at_late = _rss_when(locust, done, count, late_at, deadline)
    assert at_late - at_warm >= (late_at - warm_at) * 0.9, (at_warm, at_late)
    assert late - warm < margin_mb << 20, (warm >> 20, late >> 20, at_warm, at_late)


# The margins: far below what a leak costs, above the noise measured once warm (1-3 MB: the
# allocator's arenas, Locust's per-second counters).  A list of every gap (40 bytes an event)
# grew the first case by 23 MB; a list of every StreamResult (3 KB each) the second by 8 MB.
# Until ~2 500 short streams the process still grows (young garbage the load process's lazy GC
# thresholds let pile up): the first sample is taken after that.


@pytest.mark.timeout(200)
@pytest.mark.parametrize(
    ("warm_at", "late_at", "margin_mb"),
    [(100_000, 700_000, 8), pytest.param(200_000, 1_950_000, 16, marks=pytest.mark.slow)],
)
def test_load_when_one_stream_has_a_million_events_then_rss_stays_flat(
    fake_server: FakeFastServer, tmp_path: Path, warm_at: int, late_at: int, margin_mb: int
) -> None:
    url = f"http://127.0.0.1:{fake_server.port}/long?n={late_at + 50_000}"
    _flat(tmp_path, url, "1", lambda: fake_server.events, warm_at, late_at, margin_mb)


@pytest.mark.timeout(200)
@pytest.mark.parametrize(
    ("warm_at", "late_at", "margin_mb"),
    [(2_500, 5_000, 5), pytest.param(2_500, 12_000, 8, marks=pytest.mark.slow)],
)
def test_load_when_thousands_of_short_streams_each_fail_in_words_of_their_own_then_rss_stays_flat(
    fake_server: FakeFastServer, tmp_path: Path, warm_at: int, late_at: int, margin_mb: int
) -> None:
    url = f"http://127.0.0.1:{fake_server.port}/short"
    _flat(tmp_path, url, "20", lambda: fake_server.streams, warm_at, late_at, margin_mb)


def test_metrics_when_every_stream_gives_a_new_error_text_then_the_tally_is_bounded() -> None:
    from harness._load._metrics import MAX_KEYS, OTHER, LoadMetrics

    m, master = LoadMetrics(), LoadMetrics()
    for i in range(1000):
        m.error(f"bad chunk size {i!r}")
        m.failure_code(f"req-{i}")
    assert len(m.errors) == len(m.errors_by_code) == MAX_KEYS + 1
    assert sum(m.errors.values()) == sum(m.errors_by_code.values()) == 1000
    assert m.errors[OTHER] == 1000 - MAX_KEYS
    for _ in range(3):  # a master merging many workers' reports stays bounded too
        master.merge(m.dump())
    assert len(master.errors_by_code) == MAX_KEYS + 1
    assert sum(master.errors_by_code.values()) == 3000
