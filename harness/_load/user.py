"""Locust users that stream SSE through the harness's decoder and checker, and their plumbing.

Importing this module imports Locust (which monkey-patches the standard library with gevent):
import it only from a locustfile.

    SSEUser       closed loop: one stream after another (steady and ramp scenarios)
    ArrivalUser   open loop: starts streams on a fixed schedule, whatever the target's speed
    AbandonUser   clients that vanish mid-stream for ``storm_seconds``, then full streams whose
                  failures are the target's error rate after the storm

Every stream is reported to Locust as request events (``request_type`` ``SSE``, one name per
metric), so Locust's UI, CSV and master/worker aggregation show them; failed streams are
failures of the ``stream`` row, and each broken rule of severity error is a failure of a row
named by the rule id (``request_type`` ``rule``).  Our own full-resolution metrics
(``_metrics.LoadMetrics``) ride along in Locust's worker reports and are merged on the master,
which writes the verdict when Locust quits (``--sse-report``) and sets the exit code from
``--sse-threshold``\\ s.

Options (``locust --help``, group "stream-harness"; locustfile class attributes are defaults)::

    --sse-path /invoke/chat    --sse-inputs JSON     --sse-header 'K: V'    --sse-contract prefab
    --sse-reconnect-after K    --sse-abandon-after K --sse-storm-seconds S
    --sse-arrival-rate R (per ArrivalUser)           --sse-max-inflight N
    --sse-threshold EXPR       --sse-report verdict.json    --sse-report-data data.json

``--sse-report-data`` is what ``stream-harness load`` builds its report.html from: events and
open streams per second, a sample of stream timelines, the TTFB and gap histograms, and the raw
bytes of a few failing streams (``_capture.ReportData``; bounded, merged like the metrics).
Both files are written atomically, with every secret the run was given scrubbed out.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import itertools
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar

import gevent  # type: ignore[import-untyped]
import gevent.pool  # type: ignore[import-untyped]
import locust.runners
import psutil  # type: ignore[import-untyped]
from locust import User, constant, events, task
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from harness._contracts.registry import get_checker
from harness._core.errors import UsageError
from harness._core.network import NetworkOptions
from harness._core.options import (
    DEFAULT_CONTRACT,
    DEFAULT_FIRST_BYTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_TOTAL_TIMEOUT,
)
from harness._core.redact import redact_json, redact_url, secret_values
from harness._core.rules import CATALOG, Violation
from harness._core.thresholds import Threshold, parse_threshold

from ._capture import Budget, ReportData
from ._client import Connection, Route, Target, parse_target
from ._dial import route_for
from ._files import read_bodies, write_json
from ._metrics import LoadMetrics
from ._stream import StreamResult, StreamSpec, run_stream
from ._verdict import LOOP_LAG_MS, build_verdict, meets_slos, parse_slo, render_table

__all__ = ["AbandonUser", "ArrivalUser", "SSEUser", "process_metrics"]

_TYPE = "SSE"
_SIDS = itertools.count()
_MONITOR_EVERY = 1.0
_LAG_PROBE = 0.05
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0
#: Master, at the end of the run: how long it waits for the workers' last reports (less than
#: the backstop of Locust's own -t, _runner._BACKSTOP_S).
_LAST_REPORT_S = 8.0
#: Wall-clock seconds = monotonic + this (per-second series must line up across workers).
_WALL = time.time() - time.monotonic()
#: `stream-harness load` passes the path and headers here, not on the command line: its query
#: may hold a token, and ``ps`` shows command lines.
PATH_ENV = "STREAM_HARNESS_PATH"
HEADERS_ENV = "STREAM_HARNESS_HEADERS"
#: --sse-trace: the gaps kept of one stream (the bench's streams are far shorter).
_TRACE_GAPS = 100_000
#: Report data the master also sends with the verdict: the TTFB and gap histograms.
_PLOTTED = ("ttfb_ms", "inter_event_ms")


class _Process:
    """What this process measured, and the run's bookkeeping (one per process)."""

    def __init__(self) -> None:
        self.metrics = LoadMetrics()
        self.report = ReportData()
        self.budget = Budget()
        #: Streams open in this process now.
        self.active = 0
        #: What this process has sent to the master, summed (for the distributed test).
        self.sent = {"streams": 0, "events": 0, "failures": 0}
        self.started_wall: float | None = None
        self.started_mono: float | None = None
        self.stopped_wall: float | None = None
        self.monitor: Any = None
        #: Open loop: the most arrivals per second this process was asked for at once.
        self.arrival_rate = 0.0
        self.arrival_rate_now = 0.0
        #: Master: each worker's ``arrival_rate`` (and so, which workers reported).
        self.arrival_rate_by_worker: dict[str, float] = {}
        self.scenario = ""
        #: --sse-slo: what a stream must meet to count as goodput.
        self.slos: list[Threshold] = []
        self.trace: list[dict[str, Any]] | None = None
        self.done = False
        self.words = _Words()
        #: Worker: its users were stopped (the report it sends now is its last).
        self.stopped = False
        #: Master: the workers whose last report arrived.
        self.last_reports: set[str] = set()


class _Words:
    """The texts this process hands Locust's failures table, which keeps a row for every
    distinct text for the whole run (the master's never shrinks): a target that puts an index,
    an id or a time in every message would grow it by a row a stream.  Each kind (a rule, the
    connection errors, the in-band codes) keeps its first LIMIT texts; later ones are told in
    the kind's fixed words."""

    LIMIT: ClassVar[int] = 5

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = {}

    def say(self, kind: str, text: str, otherwise: str) -> str:
        seen = self.seen.setdefault(kind, set())
        if text in seen:
            return text
        if len(seen) < self.LIMIT:
            seen.add(text)
            return text
        return otherwise


_P = _Process()

# A master drops a worker it has not heard from in HEARTBEAT_LIVENESS seconds (Locust's: 3),
# and its streams with it.  A worker's loop is busy for that long while its users start on a
# loaded machine (each compiles its contract's validators): on two busy cores the distributed
# runs lost a worker.  Locust reads the constant when it counts, so ours holds on the master.
locust.runners.HEARTBEAT_LIVENESS = max(locust.runners.HEARTBEAT_LIVENESS, 10)


def process_metrics() -> LoadMetrics:
    """This process's metrics (the master's: merged from every worker)."""
    return _P.metrics


# -- options --------------------------------------------------------------------------------


def _options(parser: Any) -> None:
    g = parser  # Locust's own parser: an argument group would drop include_in_web_ui/is_secret
    g.add_argument("--sse-path", default=None, help="path (and query) of the stream, after --host")
    g.add_argument("--sse-method", default=None, help="HTTP method (default POST with a body)")
    g.add_argument("--sse-inputs", default=None, help='JSON: POSTed as {"inputs": ...}')
    g.add_argument("--sse-body", default=None, help="raw JSON request body")
    g.add_argument(
        "--sse-bodies", default=None, metavar="FILE", help="JSON lines: one request body each"
    )
    g.add_argument(
        "--sse-random", action="store_true", default=False, help="--sse-bodies in random order"
    )
    g.add_argument(
        "--sse-header", action="append", default=None, help="'K: V', repeatable", is_secret=True
    )
    g.add_argument("--sse-contract", default=None, help="contract to check (default prefab)")
    g.add_argument("--sse-reconnect-after", type=int, default=None, metavar="K")
    g.add_argument("--sse-abandon-after", type=int, default=None, metavar="K")
    g.add_argument("--sse-storm-seconds", type=float, default=None, metavar="S")
    g.add_argument("--sse-arrival-rate", type=float, default=None, help="streams/s per user")
    g.add_argument(
        "--sse-processes", type=int, default=None, help=argparse.SUPPRESS, include_in_web_ui=False
    )
    g.add_argument("--sse-max-inflight", type=int, default=None, metavar="N")
    g.add_argument("--sse-first-byte-timeout", type=float, default=None, metavar="S")
    g.add_argument("--sse-idle-timeout", type=float, default=None, metavar="S")
    g.add_argument("--sse-total-timeout", type=float, default=None, metavar="S")
    g.add_argument("--sse-cacert", default=None, metavar="FILE", help="trust this CA (PEM)")
    g.add_argument("--sse-strict", action="store_true", default=False, help="warnings fail too")
    g.add_argument(
        "--sse-insecure", action="store_true", default=False, help="do not verify TLS certificates"
    )
    g.add_argument(
        "--sse-run-time",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds from the test's start, to the millisecond (Locust's -t "
        "counts whole seconds from its own start-up)",
    )
    g.add_argument("--sse-threshold", action="append", default=None, metavar="EXPR")
    g.add_argument(
        "--sse-slo",
        action="append",
        default=None,
        metavar="EXPR",
        help="a per-stream goal, e.g. 'first_content_ms<500': goodput is the share meeting all",
    )
    g.add_argument("--sse-report", default=None, metavar="FILE", help="write the JSON verdict")
    g.add_argument(
        "--sse-report-data",
        default=None,
        metavar="FILE",
        help="write the data of stream-harness's report (series, sampled streams) as JSON",
    )
    # `stream-harness load --master`: hand the path and headers (kept off the command line) to
    # the workers through Locust's own options, which it sends to every worker.
    g.add_argument(
        "--sse-share-env", action="store_true", help=argparse.SUPPRESS, include_in_web_ui=False
    )
    # For bench/load_accuracy.py: per-stream arrival stamps to FILE.<pid>.json, a sid per stream.
    g.add_argument("--sse-trace", default=None, help=argparse.SUPPRESS, include_in_web_ui=False)


def _opt(env: Environment, name: str) -> Any:
    return getattr(env.parsed_options, name, None) if env.parsed_options is not None else None


# -- the users ------------------------------------------------------------------------------


class SSEUser(User):
    """Streams one response after another (closed loop).  Class attributes are defaults that
    the ``--sse-*`` options override."""

    abstract = True
    wait_time = constant(0)
    #: Path and query after the host (``--sse-path``).
    path: ClassVar[str] = "/"
    method: ClassVar[str | None] = None
    #: POSTed as ``{"inputs": ...}`` (``--sse-inputs``).
    inputs: ClassVar[dict[str, Any] | None] = None
    body: ClassVar[str | None] = None
    request_headers: ClassVar[dict[str, str]] = {}
    contract: ClassVar[str] = DEFAULT_CONTRACT
    reconnect_after: ClassVar[int | None] = None
    abandon_after: ClassVar[int | None] = None
    max_retry_wait: ClassVar[float] = DEFAULT_MAX_RETRY_WAIT
    first_byte_timeout: ClassVar[float] = DEFAULT_FIRST_BYTE_TIMEOUT
    idle_timeout: ClassVar[float] = DEFAULT_IDLE_TIMEOUT
    total_timeout: ClassVar[float] = DEFAULT_TOTAL_TIMEOUT
    strict: ClassVar[bool] = False

    _spec_cache: ClassVar[dict[type, tuple[StreamSpec, Target]]] = {}
    _routes: ClassVar[dict[str, Route]] = {}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.spec, self.target = self._spec()
        self.route = self._route(self.spec.url)
        self._bodies = _bodies(environment)
        #: Closed loop: seconds to wait after a stream that got no response (doubling).
        self._backoff = 0.0

    def _route(self, url: str) -> Route:
        """How streams reach ``url`` (proxy, TLS trust): decided once per process."""
        route = SSEUser._routes.get(url)
        if route is None:
            env = self.environment
            net = NetworkOptions(
                cacert=_opt(env, "sse_cacert"), insecure=bool(_opt(env, "sse_insecure"))
            )
            route = SSEUser._routes[url] = route_for(url, net)
        return route

    def _spec(self, **override: Any) -> tuple[StreamSpec, Target]:
        cls = type(self)
        if not override and cls in SSEUser._spec_cache:
            return SSEUser._spec_cache[cls]
        env = self.environment
        path = _path(env) or self.path
        url = (self.host or "").rstrip("/") + ("/" + path.lstrip("/") if path else "")
        inputs_text = _opt(env, "sse_inputs")
        inputs = json.loads(inputs_text) if inputs_text else self.inputs
        body_text = _opt(env, "sse_body") or self.body
        body: bytes | None = None
        if inputs is not None:
            body = json.dumps({"inputs": inputs}).encode()
        elif body_text is not None:
            body = body_text.encode()
        posts = body is not None or _opt(env, "sse_bodies") is not None
        method = (_opt(env, "sse_method") or self.method or ("POST" if posts else "GET")).upper()
        headers = list(self.request_headers.items())
        # `stream-harness load` passes header values here, not on the command line (ps shows it).
        headers += _given_headers(env)
        headers += self._route(url).proxy_headers()

        def pick(name: str, default: Any) -> Any:
            value = _opt(env, f"sse_{name}")
            return default if value is None else value

        spec = StreamSpec(
            url=url,
            method=method,
            body=body,
            headers=tuple(headers),
            contract=pick("contract", self.contract),
            reconnect_after=pick("reconnect_after", self.reconnect_after),
            abandon_after=pick("abandon_after", self.abandon_after),
            max_retry_wait=self.max_retry_wait,
            first_byte_timeout=pick("first_byte_timeout", self.first_byte_timeout),
            idle_timeout=pick("idle_timeout", self.idle_timeout),
            total_timeout=pick("total_timeout", self.total_timeout),
            strict=bool(_opt(env, "sse_strict")) or self.strict,
        )
        if override:
            spec = _replace(spec, **override)
        get_checker(spec.contract)  # the first call imports the contract: not in a stream's time
        result = (spec, parse_target(url))
        if not override:
            SSEUser._spec_cache[cls] = result
        return result

    @task
    def one_stream(self) -> None:
        # The only @task: Locust collects decorated methods from every base class, so a
        # subclass that decorated its own would run both.  Subclasses override iteration().
        self.iteration()

    def iteration(self) -> None:
        """One turn of this user's loop: here, one stream."""
        self.stream()

    def stream(
        self,
        spec: StreamSpec | None = None,
        *,
        intended_start: float | None = None,
        after_storm: bool = False,
    ) -> StreamResult:
        """Run one stream and report it (Locust events + our metrics)."""
        spec = spec or self.spec
        if self._bodies is not None:
            spec = _replace(spec, body=self._bodies.next())
        target, route = self.target, self.route
        path = route.request_target(target, target.path)
        trace = _P.trace
        if trace is not None:
            sid = f"{os.getpid()}.{next(_SIDS)}"
            path += ("&" if "?" in path else "?") + f"sid={sid}"
        sink = _Sink(self.environment, trace is not None)
        keep = _P.budget.keeper() if _P.report.wants_capture() else None
        _P.active += 1
        finished = False
        try:
            result = run_stream(
                spec,
                lambda timeout: Connection(target, timeout, route),
                sink,
                authority=target.authority,
                path=path,
                intended_start=intended_start,
                keep=keep,
            )
            finished = True
            _report(self.environment, result, after_storm=after_storm)
            _P.report.add(result, result.start + _WALL, random.random())
        finally:  # (a stream killed at the end of the run gives its bytes back too)
            _P.active -= 1
            if not finished:  # still open when the run ended: counted, not judged
                _P.metrics.count("open_at_end")
            if keep is not None:
                keep.release()
        if trace is not None and len(trace) < 20_000:
            trace.append(_trace_row(sid, result, sink.gap_list))
        if intended_start is None:
            self._back_off(result)
        return result

    def _back_off(self, result: StreamResult) -> None:
        """Closed loop: after a stream that got no response (refused, TLS failed), wait before
        the next -- 0.1 s, doubling to 5 s -- rather than spin a core on failures."""
        if result.error is None:
            self._backoff = 0.0
            return
        self._backoff = min(max(_BACKOFF_FIRST, self._backoff * 2), _BACKOFF_MAX)
        gevent.sleep(self._backoff)


class ArrivalUser(SSEUser):
    """Open loop: starts ``arrival_rate`` streams per second, on a fixed schedule.

    Each stream runs in its own greenlet, so a slow target cannot slow the schedule down --
    the arrivals keep coming, as real users' do.  Every time is measured from the stream's
    *intended* start (its slot in the schedule), so if this process falls behind, the delay
    shows up in the latencies (and separately as ``queue_ms``) instead of being omitted
    (coordinated omission).  At most ``max_inflight`` streams are open per user; an arrival due
    while that many are open is dropped and counted, never queued.
    """

    abstract = True
    arrival_rate: ClassVar[float] = 1.0
    max_inflight: ClassVar[int] = 5_000

    def iteration(self) -> None:
        rate = _opt(self.environment, "sse_arrival_rate") or self.arrival_rate
        cap = _opt(self.environment, "sse_max_inflight") or self.max_inflight
        if rate <= 0:
            raise UsageError("the arrival rate must be greater than 0")
        _P.arrival_rate_now += rate
        _P.arrival_rate = max(_P.arrival_rate, _P.arrival_rate_now)
        self._pool = gevent.pool.Pool()
        interval = 1.0 / rate
        # The schedule starts with the run (not when this user was spawned), so a run of T
        # seconds plans rate x T arrivals; the processes' schedules interleave.
        processes = max(1, int(_opt(self.environment, "sse_processes") or 1))
        index = getattr(self.environment.runner, "worker_index", 0) % processes
        t0 = (_P.started_mono or time.monotonic()) + interval * index / processes
        run_time = _opt(self.environment, "sse_run_time")
        last = math.inf if not run_time else math.ceil(run_time * rate - index / processes) - 1
        k = 0
        try:
            while k <= last:
                due = t0 + k * interval
                delay = due - time.monotonic()
                if delay > 0:
                    gevent.sleep(delay)
                    continue
                k += 1
                _P.metrics.count("arrivals_planned")
                if len(self._pool) >= cap:
                    _P.metrics.count("arrivals_dropped")
                    continue
                _P.metrics.count("arrivals_started")
                self._pool.spawn(self.stream, intended_start=due)
            gevent.sleep(math.inf)  # every arrival planned: wait for the end of the run
        finally:
            _P.arrival_rate_now -= rate

    def on_stop(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.kill(block=False)  # streams cut by the end of the run are not reported


class AbandonUser(SSEUser):
    """For ``storm_seconds`` after the test starts, read 1..``abandon_after`` events (at random)
    then vanish (connection reset); after it, read whole streams, which are counted as the
    target's health after the storm (``after_storm_error_rate``)."""

    abstract = True
    abandon_after: ClassVar[int | None] = 3
    storm_seconds: ClassVar[float] = 5.0

    def iteration(self) -> None:
        storm = _opt(self.environment, "sse_storm_seconds") or self.storm_seconds
        since = time.monotonic() - (_P.started_mono or time.monotonic())
        k = self.spec.abandon_after or 3
        if since < storm:
            spec, _ = self._spec(abandon_after=random.randint(1, k))
            self.stream(spec)
        else:
            spec, _ = self._spec(abandon_after=None)
            self.stream(spec, after_storm=True)


class _Bodies:
    """--sse-bodies: the request bodies, in turn (each process from its own place) or at
    random (--sse-random)."""

    def __init__(self, bodies: list[bytes], shuffle: bool, start: int) -> None:
        self.bodies, self.shuffle, self.i = bodies, shuffle, start

    def next(self) -> bytes:
        if self.shuffle:
            return random.choice(self.bodies)
        body = self.bodies[self.i % len(self.bodies)]
        self.i += 1
        return body


_BODIES: dict[str, _Bodies] = {}


def _bodies(env: Environment) -> _Bodies | None:
    path = _opt(env, "sse_bodies")
    if not path:
        return None
    bodies = _BODIES.get(path)
    if bodies is None:  # one turn per process, shared by its users
        index = getattr(env.runner, "worker_index", 0)
        bodies = _BODIES[path] = _Bodies(read_bodies(path), bool(_opt(env, "sse_random")), index)
    return bodies


def _replace(spec: StreamSpec, **changes: Any) -> StreamSpec:
    return dataclasses.replace(spec, **changes)


# -- reporting ------------------------------------------------------------------------------


class _Sink:
    """Per-event measurements: into our histograms, and into Locust's stats."""

    def __init__(self, env: Environment, keep: bool) -> None:
        self.fire: Callable[..., Any] = env.events.request.fire
        self.gap_list: list[float] | None = [] if keep else None
        m = _P.metrics
        self._gaps = m.dists["inter_event_ms"]
        self._delays = m.dists["server_delay_ms"]

    def gaps(self, first_ms: float, zeros: int) -> None:
        self._gaps.record(first_ms)
        fire = self.fire
        fire(request_type=_TYPE, name="inter_event_ms", response_time=first_ms, response_length=0)
        if zeros:
            self._gaps.record(0.0, zeros)
            for _ in range(zeros):
                fire(request_type=_TYPE, name="inter_event_ms", response_time=0, response_length=0)
        gap_list = self.gap_list
        if gap_list is not None and len(gap_list) < _TRACE_GAPS:
            gap_list.append(first_ms)
            gap_list.extend([0.0] * min(zeros, _TRACE_GAPS - len(gap_list)))

    def server_delays(self, values_ms: list[float]) -> None:
        for v in values_ms:
            self._delays.record(v)
            self.fire(
                request_type=_TYPE, name="server_delay_ms", response_time=v, response_length=0
            )

    def events(self, n: int, at: float) -> None:
        _P.report.series.add_events(int(at + _WALL), n)


class StreamFailure(Exception):
    """A stream that broke rules of severity error (the message names them)."""


class InBandFailure(Exception):
    """A stream that ended in the contract's failure type (the message is its code)."""


class RuleFailure(Exception):
    """One broken rule, for Locust's failures table (the message is the rule's summary)."""


_PER_STREAM = (
    "ttfb_ms",
    "first_event_ms",
    "first_content_ms",
    "second_content_ms",
    "tpot_ms",
    "stream_ms",
    "reconnect_ms",
    "queue_ms",
    "connect_ms",
)


def _report(env: Environment, r: StreamResult, *, after_storm: bool = False) -> None:
    m = _P.metrics
    fire: Callable[..., Any] = env.events.request.fire
    m.count("streams")
    m.count("events", r.events)
    m.count("bytes", r.bytes)
    if r.abandoned:
        m.count("abandoned")
    if after_storm:
        m.count("after_storm_streams")
        if not r.ok:
            m.count("after_storm_failures")
    if r.error is not None:
        m.count("errors")
        m.count("failures")
        m.error(r.error)
        fire(
            request_type=_TYPE,
            name="stream",
            response_time=r.stream_ms,
            response_length=0,
            exception=ConnectionError(_P.words.say("error", r.error, "(another error)")),
        )
        return
    for name in _PER_STREAM:
        value = getattr(r, name)
        if value is not None:
            m.record(name, value)
            fire(request_type=_TYPE, name=name, response_time=value, response_length=0)
    m.record("events_per_s", r.events_per_s)
    m.record("bytes_per_s", r.bytes_per_s)
    if not r.abandoned:
        tokens = r.output_tokens
        m.record("output_tokens", tokens)
        m.count("output_tokens", tokens)
        if r.reported_tokens is not None:
            m.count("tokens_from_usage")
    if r.failure is not None:  # the stream ended in the contract's failure type
        m.count("inband_failures")
        m.failure_code(r.failure.code or r.failure.kind)
    if _P.slos and not r.abandoned and meets_slos(r, _P.slos):
        m.count("slo_met")
    for v in r.violations:
        m.rule(v, r.rule_counts.get(v.rule, 1))
        if v.is_error:
            fire(
                request_type="rule",
                name=v.rule,
                response_time=0,
                response_length=0,
                exception=RuleFailure(_rule_words(v)),
            )
    failure: Exception | None = None
    if r.failed_rules:
        m.count("failures")
        failure = StreamFailure(", ".join(r.failed_rules))
    elif r.failure is not None:
        failure = InBandFailure(
            _P.words.say("code", r.failure.code or r.failure.kind, "(another error code)")
        )
    name = "stream (abandoned)" if r.abandoned else "stream"
    fire(
        request_type=_TYPE,
        name=name,
        response_time=r.stream_ms,
        response_length=r.bytes,
        exception=failure,
    )


def _rule_words(v: Violation) -> str:
    """What Locust's failures table says of a broken rule: its first messages, then (and for
    a message too long for a table) the rule's summary."""
    rule = CATALOG.get(v.rule)
    summary = rule.summary if rule is not None else v.rule
    if len(v.message) >= 200:
        return summary
    return _P.words.say(v.rule, v.message, summary)


def _trace_row(sid: str, r: StreamResult, gaps: list[float] | None) -> dict[str, Any]:
    return {
        "sid": sid,
        "start": r.start,
        "ttfb_ms": r.ttfb_ms,
        "first_event_ms": r.first_event_ms,
        "first_content_ms": r.first_content_ms,
        "tpot_ms": r.tpot_ms,
        "output_tokens": r.output_tokens,
        "gaps": gaps or [],
    }


# -- run lifecycle: monitor, worker reports, the verdict -------------------------------------


def _monitor() -> None:
    """CPU of this process (psutil) and how late the gevent loop wakes up (lag)."""
    proc = psutil.Process()
    proc.cpu_percent(None)
    m_last = time.monotonic()
    gevent.sleep(1.0)  # not the start-up: imports, the first spawns, the resolver's threads
    while True:
        t = time.monotonic()
        gevent.sleep(_LAG_PROBE)
        lag = (time.monotonic() - t - _LAG_PROBE) * 1000.0
        m = _P.metrics
        _P.report.series.sample_active(int(time.time()), _P.active)
        m.loop_lag_max_ms = max(m.loop_lag_max_ms, lag)
        m.count("lag_samples")
        if lag >= LOOP_LAG_MS:
            m.count("lag_late")
        if time.monotonic() - m_last >= _MONITOR_EVERY:
            m_last = time.monotonic()
            m.cpu_max = max(m.cpu_max, proc.cpu_percent(None))


def _on_init(environment: Environment, **_: Any) -> None:
    """A master for workers on other machines: they cannot read this process's environment, so
    the path and headers it was given there go into the options Locust sends them."""
    o = environment.parsed_options
    if o is None or not getattr(o, "sse_share_env", False):
        return
    if not getattr(o, "sse_path", None) and os.environ.get(PATH_ENV):
        o.sse_path = os.environ[PATH_ENV]
    given = json.loads(os.environ.get(HEADERS_ENV, "[]"))
    if given:
        o.sse_header = [*(getattr(o, "sse_header", None) or []), *(f"{k}: {v}" for k, v in given)]


def _on_test_start(environment: Environment, **_: Any) -> None:
    _P.metrics = LoadMetrics()  # read through _P every time: never keep a reference to it
    _P.report = ReportData()
    _P.words = _Words()
    _P.started_wall = time.time()
    _P.started_mono = time.monotonic()
    _P.stopped_wall = None
    _P.stopped = False
    _P.last_reports = set()
    _P.done = False
    _P.arrival_rate = _P.arrival_rate_now = 0.0
    _P.arrival_rate_by_worker = {}
    _P.slos = [parse_slo(t) for t in _opt(environment, "sse_slo") or []]
    if _opt(environment, "sse_trace") and not isinstance(environment.runner, MasterRunner):
        _P.trace = []
    run_time = _opt(environment, "sse_run_time")
    if run_time and not isinstance(environment.runner, WorkerRunner):
        gevent.spawn(_end_of_run, environment, _P.started_mono + float(run_time))
    if not isinstance(environment.runner, MasterRunner) and _P.monitor is None:
        # Everything imported so far (Locust, Flask, pydantic's schemas) is long-lived: freeze it
        # out of the collector, or a full collection stalls every stream's clock for ~40 ms.
        # And collect young objects less often: a thousand streams allocate fast, and each
        # collection pauses them all at once.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        _P.monitor = gevent.spawn(_monitor)


def _end_of_run(environment: Environment, at: float) -> None:
    """--sse-run-time: the measured window ends at ``at`` (monotonic), then Locust quits."""
    while (left := at - time.monotonic()) > 0:
        gevent.sleep(left)
    _P.stopped_wall = time.time()
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        _quit_workers(runner)
    if runner is not None:
        runner.quit()


def _quit_workers(runner: MasterRunner) -> None:
    """Tell every worker to quit, and wait (bounded) for each one's last report.  Locust's own
    quit waits a fixed 0.5 s for them, then stops listening: on a busy machine a worker's last
    report came later, and its streams were missing from the verdict."""
    runner.stop(send_stop_to_client=False)  # as Locust's quit: no users re-dispatched on a quit
    workers = {c.id for c in runner.clients.all}
    for worker in workers:
        runner.server.send_to_client(Message("quit", None, worker))  # type: ignore[no-untyped-call]
    until = time.monotonic() + _LAST_REPORT_S
    while not workers <= _P.last_reports and time.monotonic() < until:
        gevent.sleep(0.05)


def _on_test_stop(environment: Environment, **_: Any) -> None:
    _P.stopped = True  # a worker's users are gone: its next report is its last
    if _P.stopped_wall is None:  # (--sse-run-time set it when the window closed)
        _P.stopped_wall = time.time()
    if _P.monitor is not None:
        _P.monitor.kill(block=False)
        _P.monitor = None
    path = _opt(environment, "sse_trace")
    if path and _P.trace is not None:
        with open(f"{path}.{os.getpid()}.json", "w", encoding="utf-8") as f:
            json.dump(_P.trace, f)
        _P.trace = None


def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    dumped = _P.metrics.take()
    c = dumped["counters"]
    for k in _P.sent:
        _P.sent[k] += int(c.get(k, 0))
    dumped["arrival_rate"] = _P.arrival_rate
    dumped["report"] = _P.report.take()
    dumped["last"] = _P.stopped
    data["stream_harness"] = dumped


def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    dumped = data.get("stream_harness")
    if dumped:
        _P.metrics.merge(dumped)
        _P.report.merge(dumped.get("report") or {}, client_id)
        rate = float(dumped.get("arrival_rate", 0.0))
        by_worker = _P.arrival_rate_by_worker
        by_worker[client_id] = max(by_worker.get(client_id, 0.0), rate)
        if dumped.get("last"):
            _P.last_reports.add(client_id)


def _on_quit(exit_code: int, **_: Any) -> None:
    # A worker says what it sent, so the distributed test can check the master's sums.
    if _P.sent["streams"] or _P.sent["events"]:
        sys.stderr.write(f"stream-harness worker {os.getpid()} sent {json.dumps(_P.sent)}\n")


def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or _P.done:
        return
    _P.done = True
    try:
        thresholds = [parse_threshold(t) for t in _opt(environment, "sse_threshold") or []]
    except UsageError as e:
        sys.stderr.write(f"stream-harness: error: {e}\n")
        environment.process_exit_code = 2
        return
    secrets = _secrets(environment)
    verdict = redact_json(build_verdict(_P.metrics, thresholds, _run_info(environment)), secrets)
    report = _opt(environment, "sse_report")
    if report:
        write_json(report, verdict)
    else:
        sys.stderr.write(render_table(verdict))
    data_file = _opt(environment, "sse_report_data")
    if data_file:
        write_json(data_file, redact_json(_report_data(), secrets), indent=None)
    environment.process_exit_code = 0 if verdict["ok"] else 1


def _report_data() -> dict[str, Any]:
    data = _P.report.dump()
    data["started"] = _P.started_wall
    data["stopped"] = _P.stopped_wall or time.time()  # Ctrl-C: the users are still running
    data["dists"] = {k: _P.metrics.dists[k].dump() for k in _PLOTTED}
    return data


def _path(env: Environment) -> str | None:
    path: str | None = _opt(env, "sse_path") or os.environ.get(PATH_ENV)
    return path


def _given_headers(env: Environment) -> list[tuple[str, str]]:
    """Headers from the environment (`stream-harness load` puts them there) and --sse-header."""
    headers = [(k, v) for k, v in json.loads(os.environ.get(HEADERS_ENV, "[]"))]
    for h in _opt(env, "sse_header") or []:
        k, _, v = h.partition(":")
        headers.append((k.strip(), v.strip()))
    return headers


def _secrets(env: Environment) -> tuple[str, ...]:
    """Every value the verdict and report data must not hold: header values, URL tokens."""
    classes = env.user_classes
    headers = [h for c in classes for h in getattr(c, "request_headers", {}).items()]
    return secret_values([*headers, *_given_headers(env)], (env.host or "") + (_path(env) or ""))


def _run_info(env: Environment) -> dict[str, Any]:
    start = _P.started_wall
    end = _P.stopped_wall or time.time()
    duration = (end - start) if start else 0.0
    runner = env.runner
    rate = _P.arrival_rate
    if isinstance(runner, MasterRunner):
        rate = sum(_P.arrival_rate_by_worker.values())
    classes = [c.__name__ for c in env.user_classes]
    return {
        "target": redact_url((env.host or "") + (_path(env) or "")),
        "scenario": ", ".join(classes),
        "duration_s": round(duration, 3),
        "arrival_rate": rate or None,
        "workers": len(_P.arrival_rate_by_worker),
        "slos": list(_opt(env, "sse_slo") or []),
    }


def _listen(hook: Any, fn: Callable[..., Any]) -> None:
    add: Callable[[Callable[..., Any]], Any] = hook.add_listener
    add(fn)


# Listeners are added once, when a locustfile imports this module.
# (Locust's EventHook.add_listener carries no annotations, hence the casts.)
_listen(events.init_command_line_parser, _options)
_listen(events.init, _on_init)
_listen(events.test_start, _on_test_start)
_listen(events.test_stop, _on_test_stop)
_listen(events.report_to_master, _on_report_to_master)
_listen(events.worker_report, _on_worker_report)
_listen(events.quit, _on_quit)
_listen(events.quitting, _on_quitting)
