"""`stream-harness load --master` and `stream-harness worker`, as on separate machines: a
master and two worker processes started separately on loopback.  The path (with its query)
and the header values reach the workers through Locust's channel, not their environment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from load_fixtures import LoadServer, running

EXE = [sys.executable, "-m", "harness._cli.main"]

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, LoadServer]]:
    with running() as served:
        yield served


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _start(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _start(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_load_master_with_two_workers_started_apart_then_one_verdict_of_both(
    server: tuple[str, LoadServer], tmp_path: Path
) -> None:
    base, srv = server
    port = str(_free_port())
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # The workers' environment holds neither the path nor the headers: another machine's.
    worker_env = {k: v for k, v in env.items() if not k.startswith("STREAM_HARNESS_")}
    started = srv.stats.started
    master = subprocess.Popen(
        [*EXE, "load", f"{base}/stream?n=4&gap_ms=10&bad_every=1000000", "--master",
         "--expect-workers", "2", "--master-bind-host", "127.0.0.1", "--master-port", port,
         "--users", "4", "--run-time", "6s", "--header", "Authorization: Bearer T0KEN-xyz",
         "--format", "json", "--report-dir", str(tmp_path / "report")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    worker = [*EXE, "worker", "--master-host", "127.0.0.1", "--master-port", port]
    workers = [_start(worker, tmp_path, worker_env) for _ in range(2)]
    try:
        out, err = master.communicate(timeout=120)
        worker_errs = [w.communicate(timeout=30)[1] for w in workers]
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert master.returncode == 0, err + out[-1000:] + "".join(worker_errs)[-3000:]
    v = json.loads(out)
    assert v["run"]["workers"] == 2
    assert v["requests"] > 0 and v["failures"] == 0, v["violations"]
    assert srv.stats.started - started >= v["requests"]
    # Both workers streamed, and say what they sent; the master's sums are theirs.
    sent = [json.loads(e.split(" sent ", 1)[1].splitlines()[0]) for e in worker_errs
            if " sent " in e]  # fmt: skip
    assert len(sent) == 2 and all(s["streams"] > 0 for s in sent), worker_errs
    assert sum(s["streams"] for s in sent) == v["requests"]
    assert "T0KEN-xyz" not in out + err
    assert (tmp_path / "report" / "report.html").exists()
