"""``stream-harness load``: runs Locust as a subprocess and reads back our verdict.

Why a ``locust`` subprocess and not Locust's ``Environment`` API in this process: importing
Locust monkey-patches the whole standard library with gevent, which must not happen to the
process a user (or a pytest plugin) called us from; ``--processes N`` is Locust's own fork-based
master/worker mode, which only its command line drives; CSV and HTML reports, ``--run-time``,
live stats and signal handling come for free; and the run is *exactly* what ``locust -f
loadtests/...`` does, so the CLI and plain Locust cannot drift apart.  The cost is a second or
so of start-up.  Our metrics travel inside Locust (worker reports); the master writes the verdict
JSON and the report data into the report directory and sets the exit code, which this side maps
to ours; then this side writes the report (``_report.py``, ``harness._report.model``).

Header values and the URL's path and query go to the subprocess in the environment
(``STREAM_HARNESS_HEADERS``, ``STREAM_HARNESS_PATH``), not on its command line, where ``ps``
would show them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from harness._core.config import duration
from harness._core.errors import HarnessError, TargetUnreachable, UsageError
from harness._core.network import NetworkOptions, choose_proxy, tls_failure
from harness._core.options import (
    DEFAULT_CONTRACT,
    DEFAULT_FIRST_BYTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_PROCESSES,
    DEFAULT_RUN_TIME,
    DEFAULT_TOTAL_TIMEOUT,
    DEFAULT_USERS,
)
from harness._core.redact import redact_json, redact_text, redact_url, secret_values
from harness._core.thresholds import parse_threshold
from harness._report.write import write_report

from ._dial import PROXY_ENV, dial, route_for
from ._files import read_bodies, scrub_file, write_json
from ._metrics import LoadMetrics
from ._report import load_report
from ._sweep import sweep_report, sweep_verdict
from ._target import Target, parse_target
from ._verdict import build_verdict, parse_slo

__all__ = [
    "LoadInterrupted",
    "LoadOptions",
    "command_line",
    "parse_duration",
    "run_load",
    "run_sweep",
]

LOCUSTFILE: Final = Path(__file__).with_name("locustfile.py")
#: What the Locust process reads instead of its command line, which ``ps`` shows: header
#: values, and the URL's path and query (which may hold a token).  ``user.py`` reads them.
HEADERS_ENV: Final = "STREAM_HARNESS_HEADERS"
PATH_ENV: Final = "STREAM_HARNESS_PATH"
#: The report data the Locust master writes (``_capture.ReportData``) beside the verdict.
DATA_FILE: Final = "load-data.json"
#: Beyond --run-time: start-up, stopping, writing reports.  Then the run is killed.
_GRACE_S: Final = 90.0
#: How long a master waits for its --expect-workers to connect.
_WORKERS_WAIT_S: Final = 60.0
#: Locust's own --run-time, beyond ours: it should never be the one that ends a run.
_BACKSTOP_S: Final = 10
#: After Ctrl-C: how long Locust may take to stop and write what it measured.
_STOP_S: Final = 30.0
#: How long the output relay may take to drain once Locust has exited.
_RELAY_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class LoadOptions:
    url: str
    users: int = DEFAULT_USERS
    spawn_rate: float | None = None
    run_time_s: float = DEFAULT_RUN_TIME
    #: Open loop: new streams per second (whole run), instead of --users at a time.
    arrival_rate: float | None = None
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    processes: int = DEFAULT_PROCESSES
    method: str | None = None
    inputs: Any = None
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    contract: str = DEFAULT_CONTRACT
    reconnect_after: int | None = None
    abandon_after: int | None = None
    storm_seconds: float | None = None
    thresholds: tuple[str, ...] = ()
    #: This run's report directory; None: ``reports/<timestamp>-<scenario>/``.
    report_dir: Path | None = None
    first_byte_timeout: float = DEFAULT_FIRST_BYTE_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    extra_locust_args: tuple[str, ...] = field(default=())
    #: TLS trust and proxy, as in ``check`` (``harness/_core/network.py``).
    network: NetworkOptions = field(default_factory=NetworkOptions)
    #: ``--no-report``: Locust's files go to a temporary directory, removed afterwards.
    no_report: bool = False
    #: ``--slo``: per-stream goals; goodput is the share of streams meeting all of them.
    slos: tuple[str, ...] = ()
    #: ``--bodies FILE.jsonl``: a request body per line, in turn (or at random: ``random``).
    bodies: Path | None = None
    random: bool = False
    #: ``--strict``: a stream that broke a warning rule fails too.
    strict: bool = False
    #: A rate sweep (``--arrival-rate 1,2,4``): every rate, for the command line it came from.
    sweep: tuple[float, ...] = ()
    #: ``--master --expect-workers N``: workers on other machines (``stream-harness worker``).
    expect_workers: int | None = None
    master_bind_host: str = "*"
    master_port: int = 5557


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``2m``, ``1h30m``; raises UsageError."""
    try:
        return duration(text)
    except ValueError as e:
        raise UsageError(f"--run-time: {e}") from None


def _scenario(o: LoadOptions) -> str:
    if o.arrival_rate is not None:
        return "Arrivals"
    if o.abandon_after is not None:
        return "Abandon"
    if o.reconnect_after is not None:
        return "Reconnect"
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
        users = spawn = max(1, o.expect_workers or o.processes)
        argv += ["--sse-arrival-rate", f"{o.arrival_rate / users:g}"]
        argv += ["--sse-max-inflight", str(max(1, o.max_inflight // users))]
    # The path goes in the environment (PATH_ENV): its query may hold a token.
    argv += ["--host", origin, "-u", str(users), "-r", f"{spawn:g}"]
    # Our own timer ends the run to the millisecond from the test's start (--sse-run-time);
    # Locust's -t (whole seconds, counted from its own start-up) is only a backstop.
    argv += ["--sse-run-time", f"{o.run_time_s:g}"]
    argv += ["--sse-processes", str(o.expect_workers or o.processes)]
    argv += ["-t", f"{math.ceil(o.run_time_s) + _BACKSTOP_S}s", "--stop-timeout", "0"]
    argv += ["--csv", str(run_dir / "locust"), "--html", str(run_dir / "locust.html")]
    argv += ["--sse-report", str(run_dir / "verdict.json"), "--sse-contract", o.contract]
    argv += ["--sse-report-data", str(run_dir / DATA_FILE)]
    if o.expect_workers is not None:
        argv += ["--master", "--expect-workers", str(o.expect_workers)]
        argv += ["--expect-workers-max-wait", f"{_WORKERS_WAIT_S:g}", "--sse-share-env"]
        argv += ["--master-bind-host", o.master_bind_host, "--master-bind-port", str(o.master_port)]
    elif o.processes > 1:
        # A free loopback port for master and workers, not Locust's fixed 5557: two runs on
        # one machine (two CI jobs, two engineers) must not collide.
        port = str(_free_port())
        argv += ["--processes", str(o.processes), "--master-bind-host", "127.0.0.1"]
        argv += ["--master-bind-port", port, "--master-port", port]
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
    for t in o.slos:
        argv += ["--sse-slo", t]
    if o.bodies is not None:
        argv += ["--sse-bodies", str(o.bodies.resolve())]
        if o.random:
            argv += ["--sse-random"]
    if o.network.cacert is not None:
        argv += ["--sse-cacert", str(Path(o.network.cacert).resolve())]
    if o.network.insecure:
        argv += ["--sse-insecure"]
    if o.strict:
        argv += ["--sse-strict"]
    return argv + list(o.extra_locust_args)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def preflight(url: str, timeout: float, net: NetworkOptions | None = None) -> None:
    """Raise TargetUnreachable unless a connection to the target can be made as the streams
    will make it: through the same proxy, with the TLS handshake (an untrusted certificate is
    "unreachable", exit 3, before a single stream runs)."""
    t = parse_target(url)
    route = route_for(url, net or NetworkOptions())
    via = f" through the proxy {redact_url(_origin(route.proxy))}" if route.proxy else ""
    try:
        with dial(t, route, timeout):
            pass
    except socket.gaierror as e:
        host = route.proxy.host if route.proxy else t.host
        raise TargetUnreachable(f"cannot reach {host}: DNS lookup failed: {e.strerror}") from None
    except ssl.SSLError as e:
        raise TargetUnreachable(
            f"cannot reach {t.scheme}://{t.authority}: {tls_failure(e)}"
        ) from None
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        raise TargetUnreachable(f"cannot reach {t.scheme}://{t.authority}{via}: {why}") from None


def _origin(t: Target | None) -> str:
    return "" if t is None else f"{t.scheme}://{t.authority}"


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


class LoadInterrupted(KeyboardInterrupt):
    """Ctrl-C during a load run, after the report of what was measured so far was written."""

    def __init__(self, verdict: dict[str, Any], run_dir: Path) -> None:
        super().__init__("interrupted")
        self.verdict, self.run_dir = verdict, run_dir


def run_sweep(o: LoadOptions, rates: Sequence[float], *, live: bool) -> tuple[dict[str, Any], Path]:
    """A rate sweep: the open-loop run once per rate, each with its own report in
    ``<run dir>/rate-<R>/``, then the sweep's verdict and report (table and plots against the
    offered rate) in the run directory.  Ctrl-C stops the sweep after writing what was measured
    (the sweep report marked incomplete) and raises :class:`LoadInterrupted`."""
    o = dataclasses.replace(o, sweep=tuple(rates))
    target = redact_url(o.url)
    base = (
        Path(tempfile.mkdtemp(prefix="stream-harness-sweep-"))
        if o.no_report
        else new_run_dir(o.report_dir, "sweep")
    )
    runs: list[tuple[float, dict[str, Any]]] = []
    interrupted: LoadInterrupted | None = None
    try:
        for rate in rates:
            one = dataclasses.replace(o, arrival_rate=rate, report_dir=base / f"rate-{rate:g}")
            try:
                verdict, _ = run_load(one, live=live)
            except LoadInterrupted as e:
                runs.append((rate, e.verdict))
                interrupted = e
                break
            runs.append((rate, verdict))
        verdict = sweep_verdict(runs, target)
        verdict["run"]["report_dir"] = None if o.no_report else str(base)
        if not o.no_report:
            secrets = secret_values(o.headers, o.url)
            report = sweep_report(verdict, command_line(o), secrets)
            report.incomplete = interrupted is not None
            write_report(report, base)
    finally:
        if o.no_report:
            shutil.rmtree(base, ignore_errors=True)
    if interrupted is not None:
        raise LoadInterrupted(verdict, base)
    return verdict, base


def run_load(o: LoadOptions, *, live: bool) -> tuple[dict[str, Any], Path]:
    """Run the load test; return the verdict and the report directory.

    The report -- ``summary.json``, ``junit.xml``, ``summary.md``, ``report.html`` and the
    failing streams' ``.sse`` files -- is written into the run directory beside Locust's CSV
    and HTML.  ``live``: Locust's progress goes to stderr (a terminal); otherwise to
    ``locust.log``; either way with every secret scrubbed.  Ctrl-C stops Locust as its own
    Ctrl-C would (it writes the verdict of what it measured), writes the report marked
    incomplete and raises :class:`LoadInterrupted`; any other exception meanwhile (a caller's
    time limit) is re-raised after the same.  Raises UsageError, TargetUnreachable, or
    HarnessError when Locust fails.
    """
    for t in o.thresholds:
        parse_threshold(t)
    for t in o.slos:
        parse_slo(t)
    if o.bodies is not None:
        read_bodies(o.bodies)
    parse_target(o.url)
    preflight(o.url, o.first_byte_timeout, o.network)
    if o.no_report:
        run_dir = Path(tempfile.mkdtemp(prefix="stream-harness-load-"))
        try:
            return _run(o, run_dir, live)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    return _run(o, new_run_dir(o.report_dir, _scenario(o)), live)


def _run(o: LoadOptions, run_dir: Path, live: bool) -> tuple[dict[str, Any], Path]:
    secrets = secret_values(o.headers, o.url)
    proxy = choose_proxy(o.url, o.network, os.environ)
    if proxy:  # its password, if it has one
        secrets = tuple(sorted({*secrets, *secret_values((), proxy)}, key=len, reverse=True))
    code, stopped_by = _run_locust(o, run_dir, live, secrets)
    verdict_path = run_dir / "verdict.json"
    if verdict_path.exists():
        verdict = json.loads(verdict_path.read_text(encoding="utf-8"))
    elif stopped_by is not None:  # stopped before Locust had measured anything
        verdict = _empty_verdict(o)
    else:
        where = "its output above" if live else run_dir / "locust.log"
        if o.no_report and not live:
            where = "its last lines:\n" + _tail(run_dir / "locust.log")
        raise HarnessError(f"locust failed (exit {code}) before writing a verdict; see {where}")
    verdict = redact_json(verdict, secrets)
    verdict["run"]["target"] = redact_url(o.url)
    verdict["run"]["report_dir"] = None if o.no_report else str(run_dir)
    write_json(verdict_path, verdict)
    data = _read_data(run_dir / DATA_FILE)
    for path in sorted(run_dir.iterdir()):
        if path.is_file():
            scrub_file(path, secrets)
    report = load_report(
        verdict,
        data,
        contract=o.contract,
        command_line=command_line(o),
        secrets=secrets,
        incomplete=stopped_by is not None,
    )
    if not o.no_report:
        write_report(report, run_dir)
    if isinstance(stopped_by, KeyboardInterrupt):
        raise LoadInterrupted(verdict, run_dir) from None
    if stopped_by is not None:
        raise stopped_by
    return verdict, run_dir


def _run_locust(
    o: LoadOptions, run_dir: Path, live: bool, secrets: tuple[str, ...]
) -> tuple[int, BaseException | None]:
    """Run Locust to its end; its exit code, and the exception that stopped it early, if any.

    Locust runs in a session of its own, so a Ctrl-C on the terminal reaches this process only,
    which then stops Locust exactly once.  Its output is relayed line by line, scrubbed."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env[PATH_ENV] = parse_target(o.url).path
    # The proxy chosen here, once, for every Locust process ("": direct).
    env[PROXY_ENV] = choose_proxy(o.url, o.network, os.environ) or ""
    if o.headers:
        env[HEADERS_ENV] = json.dumps([list(h) for h in o.headers])
    log_path = run_dir / "locust.log"
    with contextlib.ExitStack() as stack:
        sink: IO[str] = sys.stderr
        if not live:
            sink = stack.enter_context(open(log_path, "w", encoding="utf-8"))
        proc = subprocess.Popen(
            locust_argv(o, run_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        assert proc.stdout is not None
        relay = threading.Thread(target=_relay, args=(proc.stdout, sink, secrets), daemon=True)
        relay.start()
        stopped_by: BaseException | None = None
        try:
            wait = o.run_time_s + _GRACE_S + (_WORKERS_WAIT_S if o.expect_workers else 0.0)
            code = proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            _kill(proc)
            relay.join(_RELAY_S)
            raise HarnessError(
                f"locust did not finish within --run-time + {_GRACE_S:g} s; see {log_path}"
            ) from None
        except BaseException as e:  # Ctrl-C, or a caller's time limit: keep what was measured
            stopped_by = e
            code = _stop(proc)
        relay.join(_RELAY_S)
    return code, stopped_by


def _relay(stream: IO[bytes], sink: IO[str], secrets: tuple[str, ...]) -> None:
    for line in iter(stream.readline, b""):
        with contextlib.suppress(OSError, ValueError):  # the terminal or the log went away
            sink.write(redact_text(line.decode("utf-8", "replace"), secrets))
            sink.flush()


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """Stop Locust as Ctrl-C would: it stops the users, writes its reports and our verdict of
    what it measured.  A second Ctrl-C, or _STOP_S seconds without it exiting, kills it."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=_STOP_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        _kill(proc)
        return proc.wait()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill Locust and the worker processes it forked (its session's process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _read_data(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _empty_verdict(o: LoadOptions) -> dict[str, Any]:
    run = {"target": redact_url(o.url), "scenario": _scenario(o), "duration_s": 0.0}
    run |= {"arrival_rate": o.arrival_rate, "workers": 0, "slos": list(o.slos)}
    return build_verdict(LoadMetrics(), [parse_threshold(t) for t in o.thresholds], run)


def command_line(o: LoadOptions) -> str:
    """The ``stream-harness load`` command that runs ``o`` again (secrets included: the report
    scrubs them)."""
    default = LoadOptions(url=o.url)
    argv = ["stream-harness", "load", o.url]
    if o.sweep:
        argv += ["--arrival-rate", ",".join(f"{r:g}" for r in o.sweep)]
    elif o.arrival_rate is not None:
        argv += ["--arrival-rate", f"{o.arrival_rate:g}"]
        if o.max_inflight != default.max_inflight:
            argv += ["--max-inflight", str(o.max_inflight)]
    else:
        argv += ["--users", str(o.users)]
        if o.spawn_rate is not None:
            argv += ["--spawn-rate", f"{o.spawn_rate:g}"]
    argv += ["--run-time", f"{o.run_time_s:g}s"]
    if o.expect_workers is not None:
        argv += ["--master", "--expect-workers", str(o.expect_workers)]
        if o.master_bind_host != default.master_bind_host:
            argv += ["--master-bind-host", o.master_bind_host]
        if o.master_port != default.master_port:
            argv += ["--master-port", str(o.master_port)]
    elif o.processes > 1:
        argv += ["--processes", str(o.processes)]
    if o.method:
        argv += ["--method", o.method]
    if o.inputs is not None:
        argv += ["--inputs", json.dumps(o.inputs)]
    elif o.body is not None:
        argv += ["--body", o.body]
    for k, v in o.headers:
        argv += ["--header", f"{k}: {v}"]
    if o.contract != default.contract:
        argv += ["--contract", o.contract]
    for flag, value in (
        ("--reconnect-after", o.reconnect_after),
        ("--abandon-after", o.abandon_after),
        ("--storm-seconds", o.storm_seconds),
    ):
        if value is not None:
            argv += [flag, f"{value:g}"]
    for t in o.thresholds:
        argv += ["--threshold", t]
    for t in o.slos:
        argv += ["--slo", t]
    if o.bodies is not None:
        argv += ["--bodies", str(o.bodies)] + (["--random"] if o.random else [])
    for name in ("first_byte_timeout", "idle_timeout", "total_timeout"):
        if getattr(o, name) != getattr(default, name):
            argv += [f"--{name.replace('_', '-')}", f"{getattr(o, name):g}"]
    net = o.network
    if net.cacert is not None:
        argv += ["--cacert", net.cacert]
    if net.insecure:
        argv += ["--insecure"]
    if net.proxy is not None:
        argv += ["--proxy", net.proxy]
    if net.no_proxy:
        argv += ["--no-proxy"]
    return shlex.join(argv)
