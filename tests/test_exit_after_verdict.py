"""A finished run exits at once: the time from the verdict line to the process's exit does not
grow with the stream (a process once spent ~35 s after the verdict of a 1 M-event stream,
building a repr of the whole result at shutdown), and a load run ends with its --run-time even
when one stream has more bytes waiting than the load process can read.

Every bound compares with a reference measured in the same test (a tiny stream), with a wide
margin: the machine may be busy.  Every process is killed at the end, group and all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from load_fixtures import FakeFastServer

EXE = [sys.executable, "-m", "harness._cli.main"]
TIMEOUT = 150


@pytest.fixture
def fake_server() -> Iterator[FakeFastServer]:
    server = FakeFastServer()
    try:
        yield server
    finally:
        server.close()


def _timed(cwd: Path, *args: str) -> tuple[float, float, int, str]:
    """Run the CLI: (seconds from start to the verdict line, from the verdict line to exit,
    exit code, output).  The verdict line starts with PASS or FAIL."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [*EXE, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "NO_COLOR": "1"},
        start_new_session=True,
    )
    verdict_at: float | None = None
    out: list[bytes] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if verdict_at is None and line.lstrip().startswith((b"PASS", b"FAIL")):
                verdict_at = time.monotonic()
            assert time.monotonic() - start < TIMEOUT, b"".join(out[-20:]).decode()
        code = proc.wait(TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    end = time.monotonic()
    text = b"".join(out).decode("utf-8", "replace")
    assert verdict_at is not None, text[-3000:]
    return verdict_at - start, end - verdict_at, code, text


@pytest.mark.timeout(2 * TIMEOUT)
def test_check_url_when_the_stream_is_long_then_it_exits_as_soon_after_the_verdict_as_a_tiny_one(
    fake_server: FakeFastServer, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{fake_server.port}"
    _, ref, code, out = _timed(tmp_path, "check", f"{base}/long?n=2000", "--report-dir", "r1")
    assert code == 0, out[-2000:]
    # 400 000 events, one in 2000 breaking the schema: a failing result, a report, a reproducer.
    took, after, code, out = _timed(
        tmp_path, "check", f"{base}/long?n=400000&bad=1", "--max-events", "1000000",
        "--report-dir", "r2",
    )  # fmt: skip
    assert code == 1 and "event.schema" in out, out[-2000:]
    assert (tmp_path / "r2" / "stream.sse").stat().st_size > 1 << 20
    assert after < 3 * ref + 3.0, (ref, after, took)


@pytest.mark.timeout(2 * TIMEOUT)
def test_load_when_a_stream_floods_the_process_then_the_run_ends_on_time_and_exits_at_once(
    fake_server: FakeFastServer, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{fake_server.port}"
    run = ("--run-time", "4s", "--format", "text")
    ref_took, ref, code, out = _timed(
        tmp_path, "load", f"{base}/long?n=2000", "--users", "1", *run, "--report-dir", "r1"
    )
    assert code == 0, out[-2000:]
    # Two streams of 2 M events, one in 2000 breaking the schema: more than the run can read,
    # always a recv's worth waiting (a socket that never blocks never yields the loop).
    took, after, code, out = _timed(
        tmp_path, "load", f"{base}/long?n=2000000&bad=1", "--users", "2", *run,
        "--report-dir", "r2",
    )  # fmt: skip
    assert code == 1, out[-2000:]
    assert fake_server.events < 4_000_000  # the run ended before the streams did
    assert took < ref_took + 5.0, (ref_took, took)
    assert after < 3 * ref + 3.0, (ref, after)
