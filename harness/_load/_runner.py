"""``stream-harness load``: runs Locust as a subprocess and reads back our verdict.

Why a ``locust`` subprocess and not Locust's ``Environment`` API in this process: importing
Locust monkey-patches the whole standard library with gevent, which must not happen to the
process a user (or a pytest plugin) called us from; ``--processes N`` is Locust's own fork-based
master/worker mode, which only its command line drives; CSV and HTML reports, ``--run-time``,
live stats and signal handling come for free; and the run is *exactly* what ``locust -f
loadtests/...`` does, so the CLI and plain Locust cannot drift apart.  The cost is a second or
so of start-up.  Our metrics travel inside Locust (worker reports); the master writes the verdict
JSON into the report directory and sets the exit code, which this side maps to ours.

Header values go to the subprocess in the environment (``STREAM_HARNESS_HEADERS``), not on its
command line, where ``ps`` would show them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from harness._errors import HarnessError, TargetUnreachable, UsageError
from harness._redact import redact_text, redact_url
from harness._thresholds import parse_threshold

from ._target import parse_target

__all__ = ["LoadOptions", "parse_duration", "run_load"]

LOCUSTFILE: Final = Path(__file__).with_name("locustfile.py")
HEADERS_ENV: Final = "STREAM_HARNESS_HEADERS"
#: Beyond --run-time: start-up, stopping, writing reports.  Then the run is killed.
_GRACE_S: Final = 90.0
_DURATION: Final = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(frozen=True, slots=True)
class LoadOptions:
    url: str
    users: int = 10
    spawn_rate: float | None = None
    run_time_s: float = 30.0
    #: Open loop: new streams per second (whole run), instead of --users at a time.
    arrival_rate: float | None = None
    max_inflight: int = 5_000
    processes: int = 1
    method: str | None = None
    inputs: Any = None
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    contract: str = "prefab"
    reconnect_after: int | None = None
    abandon_after: int | None = None
    storm_seconds: float | None = None
    thresholds: tuple[str, ...] = ()
    #: This run's report directory; None: ``reports/<timestamp>-<scenario>/``.
    report_dir: Path | None = None
    first_byte_timeout: float = 10.0
    idle_timeout: float = 30.0
    total_timeout: float = 120.0
    extra_locust_args: tuple[str, ...] = field(default=())


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``2m``, ``1h30m``; raises UsageError."""
    t = text.strip().lower()
    try:
        value = float(t)
    except ValueError:
        m = _DURATION.match(t)
        if not t or m is None:
            raise UsageError(f"--run-time: expected 90, 90s, 2m or 1h30m, got {text!r}") from None
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        value = h * 3600.0 + mi * 60.0 + s
    if value <= 0:
        raise UsageError(f"--run-time must be greater than 0, got {text!r}")
    return value


def _scenario(o: LoadOptions) -> str:
    if o.arrival_rate is not None:
        return "Arrivals"
    if o.abandon_after is not None:
        return "Abandon"
    return "Steady"


def locust_argv(o: LoadOptions, run_dir: Path) -> list[str]:
    """The ``locust`` command line for ``o``."""
    target = parse_target(o.url)
    origin = f"{target.scheme}://{target.authority}"
    scenario = _scenario(o)
    users, spawn = o.users, o.spawn_rate or float(o.users)
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), scenario, "--headless"]
    if scenario == "Arrivals":
        assert o.arrival_rate is not None
        # One scheduler per process, each starting its share of the arrivals.
        users = spawn = max(1, o.processes)
        argv += ["--sse-arrival-rate", f"{o.arrival_rate / users:g}"]
        argv += ["--sse-max-inflight", str(max(1, o.max_inflight // users))]
    argv += ["--host", origin, "--sse-path", target.path, "-u", str(users), "-r", f"{spawn:g}"]
    # Locust takes whole seconds only.
    argv += ["-t", f"{max(1, math.ceil(o.run_time_s))}s", "--stop-timeout", "0"]
    argv += ["--csv", str(run_dir / "locust"), "--html", str(run_dir / "locust.html")]
    argv += ["--sse-report", str(run_dir / "verdict.json"), "--sse-contract", o.contract]
    if o.processes > 1:
        argv += ["--processes", str(o.processes)]
    if o.method:
        argv += ["--sse-method", o.method]
    if o.inputs is not None:
        argv += ["--sse-inputs", json.dumps(o.inputs)]
    elif o.body is not None:
        argv += ["--sse-body", o.body]
    if o.reconnect_after is not None:
        argv += ["--sse-reconnect-after", str(o.reconnect_after)]
    if o.abandon_after is not None:
        argv += ["--sse-abandon-after", str(o.abandon_after)]
    if o.storm_seconds is not None:
        argv += ["--sse-storm-seconds", f"{o.storm_seconds:g}"]
    for name in ("first_byte_timeout", "idle_timeout", "total_timeout"):
        argv += [f"--sse-{name.replace('_', '-')}", f"{getattr(o, name):g}"]
    for t in o.thresholds:
        argv += ["--sse-threshold", t]
    return argv + list(o.extra_locust_args)


def preflight(url: str, timeout: float) -> None:
    """Raise TargetUnreachable unless a TCP connection to the target can be made."""
    t = parse_target(url)
    try:
        with socket.create_connection((t.host, t.port), timeout=timeout):
            pass
    except socket.gaierror as e:
        raise TargetUnreachable(f"cannot reach {t.host}: DNS lookup failed: {e.strerror}") from None
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        raise TargetUnreachable(f"cannot reach {t.scheme}://{t.authority}: {why}") from None


def new_run_dir(given: Path | None, scenario: str) -> Path:
    if given is not None:
        try:
            given.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"--report-dir {given}: {e.strerror or e}") from None
        return given
    root = Path("reports")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        name = f"{stamp}-load-{scenario.lower()}" + (f"-{n}" if n else "")
        run = root / name
        try:
            run.mkdir(parents=True)
        except FileExistsError:
            continue
        return run
    raise UsageError(f"cannot make a run directory under {root}")


def run_load(o: LoadOptions, *, live: bool) -> tuple[dict[str, Any], Path]:
    """Run the load test; return the verdict and the report directory.

    ``live``: Locust's progress goes to stderr (a terminal); otherwise to ``locust.log``.
    Raises UsageError, TargetUnreachable, or HarnessError when Locust fails.
    """
    for t in o.thresholds:
        parse_threshold(t)
    parse_target(o.url)
    preflight(o.url, o.first_byte_timeout)
    run_dir = new_run_dir(o.report_dir, _scenario(o))
    env = dict(os.environ)
    if o.headers:
        env[HEADERS_ENV] = json.dumps([list(h) for h in o.headers])
    log_path = run_dir / "locust.log"
    with contextlib.ExitStack() as stack:
        out: IO[Any] = sys.stderr
        if not live:
            out = stack.enter_context(open(log_path, "w", encoding="utf-8"))
        proc = subprocess.Popen(
            locust_argv(o, run_dir), stdout=out, stderr=out, env=env, stdin=subprocess.DEVNULL
        )
        try:
            code = proc.wait(timeout=o.run_time_s + _GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise HarnessError(
                f"locust did not finish within --run-time + {_GRACE_S:g} s; see {log_path}"
            ) from None
        except KeyboardInterrupt:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            raise
    verdict_path = run_dir / "verdict.json"
    if not verdict_path.exists():
        where = "its output above" if live else log_path
        raise HarnessError(f"locust failed (exit {code}) before writing a verdict; see {where}")
    verdict = json.loads(verdict_path.read_text(encoding="utf-8"))
    secrets = tuple(v for _, v in o.headers if len(v) >= 4)
    verdict = _scrub(verdict, secrets)
    verdict["run"]["target"] = redact_url(o.url)
    verdict["run"]["report_dir"] = str(run_dir)
    verdict_path.write_text(json.dumps(verdict, indent=2) + "\n", encoding="utf-8")
    return verdict, run_dir


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    if not secrets:
        return value
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    return value
