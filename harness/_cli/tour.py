"""``stream-harness demo``: what the product does, in under a minute, on the bundled examples.

    1. serve     the good example prefab on 127.0.0.1 (the reference gateway, in a thread)
    2. check     one stream over HTTP
    3. manifest  property-test every function of the good example   expected: all conform
    4. manifest  property-test every function of the buggy example  expected: each one's bugs caught
    5. load      a few seconds of Locust against the gateway, every stream dropped and resumed

Each step prints a few lines when it finishes and writes its report into a subdirectory of the
demo's directory; ``index.html`` links them with each step's one-line outcome, and
``summary.json`` holds the same facts for machines.

"Expected" is the demo's verdict: the buggy example's failures are caught bugs, a success.  The
demo fails only when something else happens -- a good function fails, a buggy function passes,
a failure that is not a planted bug (a timeout: the machine is too slow), a step that cannot
run, the time limit.  Ctrl-C (or the time limit) stops the step in progress, shuts the gateway
and the worker down, and still writes the index, marked incomplete.

The gateway runs in a thread of this process rather than as a ``serve`` subprocess: it is up in
a fraction of a second, its port is known without parsing output, and stopping it is a flag.
The generators under property test still run in the worker process, as ``manifest`` runs them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import shlex
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, TextIO

from harness._core.errors import HarnessError, UsageError
from harness._core.options import DEFAULT_FIRST_BYTE_TIMEOUT, CheckOptions
from harness._core.resources import data_dir
from harness._core.session import CheckResult
from harness._core.text import shorten
from harness._report.model import Report, check_report, manifest_report
from harness._report.write import atomic_write, write_report
from harness._runners.gen import GeneratorWorker

if TYPE_CHECKING:  # the engine imports Hypothesis: only when the step runs
    from harness._proptest import Failure, ManifestResult

__all__ = ["CaughtBug", "DemoOptions", "DemoResult", "Step", "run_demo"]

GOOD: Final = "prefab_good.py"
BUGGY: Final = "prefab_buggy.py"
MANIFEST: Final = "prefab-manifest.json"
#: The stream ``check`` reads, and the one the load test drives (long enough to be resumed).
CHECK_FUNCTION: Final = "batch_process"
CHECK_INPUTS: Final = {"items": [1, 2, 3]}
LOAD_FUNCTION: Final = "chat_stream"
LOAD_INPUTS: Final = {
    "messages": [{"role": "user", "content": "what does a conformance test of a stream check"}]
}
#: Rules that say the machine was too slow or the worker died: never a planted bug.
_NOT_PLANTED: Final = frozenset({"gen.timeout", "gen.crashed"})
_STEPS: Final = 5
_MESSAGE_WIDTH: Final = 120
#: Once stopping, how often the interrupt is raised again until the demo notices it.
_REPEAT_S: Final = 0.5
_MARKS: Final = {"expected": "✓", "unexpected": "✗", "skipped": "-", "interrupted": "!"}


@dataclass(frozen=True, slots=True)
class DemoOptions:
    #: Where the demo's reports go; None: nowhere (a temporary directory, removed).
    report_dir: Path | None
    examples: int = 40
    seed: int = 0
    load_users: int = 4
    load_seconds: float = 5.0
    #: Events after which each load-test stream is dropped and resumed with Last-Event-ID.
    reconnect_after: int = 3
    #: Stop everything (like Ctrl-C) after this many seconds; None: no limit.
    time_limit: float | None = 120.0


@dataclass(slots=True)
class Step:
    key: str  # the id, and the name of the step's report directory
    title: str
    status: str = "running"  # expected | unexpected | skipped | interrupted
    outcome: str = ""
    details: list[str] = field(default_factory=list)
    #: The step's report, relative to the demo directory.
    report: str | None = None
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.key,
            "title": self.title,
            "status": self.status,
            "expected": self.status == "expected",
            "outcome": self.outcome,
            "details": self.details,
            "report": self.report,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass(frozen=True, slots=True)
class CaughtBug:
    function: str
    rule: str
    message: str
    minimal_inputs: dict[str, Any]
    reproducer: str

    def line(self) -> str:
        inputs = json.dumps(self.minimal_inputs, ensure_ascii=True)
        return f"caught bug: {self.function}: {self.message} ({self.rule}), minimal input {inputs}"

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "rule": self.rule,
            "message": self.message,
            "minimal_inputs": self.minimal_inputs,
            "reproducer": self.reproducer,
        }


@dataclass(slots=True)
class DemoResult:
    directory: Path | None
    steps: list[Step] = field(default_factory=list)
    bugs: list[CaughtBug] = field(default_factory=list)
    #: "Ctrl-C" or "time limit" when the demo was stopped before its end.
    interrupted: str | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.interrupted is None and all(s.status == "expected" for s in self.steps)

    @property
    def index(self) -> Path | None:
        return None if self.directory is None else self.directory / "index.html"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "incomplete": self.interrupted is not None,
            "interrupted": self.interrupted,
            "duration_s": round(self.duration_s, 3),
            "steps": [s.to_json() for s in self.steps],
            "caught_bugs": [b.to_json() for b in self.bugs],
        }


# -- the run ----------------------------------------------------------------------------------


def run_demo(options: DemoOptions, out: TextIO) -> DemoResult:
    """Run the five steps, printing as they finish; write the index (unless no report dir).
    Returns with ``interrupted`` set after Ctrl-C or the time limit, never raising for them."""
    with contextlib.ExitStack() as stack:
        directory = options.report_dir
        if directory is not None:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UsageError(
                    f"cannot create report directory {directory}: {e.strerror}"
                ) from None
        else:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="demo-")))
        demo = _Demo(options, out, DemoResult(options.report_dir), directory)
        demo.run()
        return demo.result


class _Demo:
    def __init__(
        self, options: DemoOptions, out: TextIO, result: DemoResult, directory: Path
    ) -> None:
        self.options, self.out, self.result, self.dir = options, out, result, directory
        self.examples = data_dir("examples")
        self.manifest = self.examples / MANIFEST
        self.url: str | None = None
        self.started = time.monotonic()
        self.stopper = _Stopper(options.time_limit)

    def run(self) -> None:
        where = f" (report: {self.result.directory}/)" if self.result.directory else ""
        self.say(f"stream-harness demo: the bundled example prefab, end to end{where}")
        try:
            with contextlib.ExitStack() as stack:
                worker = stack.enter_context(GeneratorWorker())
                # Its handlers end before the clean-up: the gateway and the worker always stop.
                with self.stopper.running():
                    self.serve(stack)
                    self.check()
                    self.property_test(GOOD, worker)
                    self.property_test(BUGGY, worker)
                    self.load()
        except KeyboardInterrupt:
            self.stopper.noticed()
            self.result.interrupted = self.stopper.reason or "Ctrl-C"
        finally:
            self.result.interrupted = self.stopper.reason or self.result.interrupted
            for step in self.result.steps:
                # Stopped where no step's handler saw it (as the step began).
                if step.status == "running" and self.result.interrupted:
                    step.status, step.outcome = "interrupted", "stopped before it finished"
            self.result.duration_s = time.monotonic() - self.started
            if self.result.directory is not None:
                write_index(self.result, self.result.directory)
        self.say("")
        self.say(verdict_line(self.result, self.options.time_limit))

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    @contextlib.contextmanager
    def step(self, key: str, title: str) -> Iterator[Step]:
        """One step: its header now, its outcome when it ends.  A step that cannot run is an
        unexpected outcome, and the demo goes on with the next one; Ctrl-C goes up."""
        step = Step(key, title)
        self.result.steps.append(step)
        started = time.monotonic()
        try:
            self.say(f"[{len(self.result.steps)}/{_STEPS}] {title}")
            yield step
        except KeyboardInterrupt:
            self.stopper.noticed()
            step.status, step.outcome = "interrupted", "stopped before it finished"
            raise
        except HarnessError as e:
            step.status, step.outcome = "unexpected", f"could not run: {e}"
        except Exception as e:  # a bug of ours: say so in the summary, keep the traceback
            step.status, step.outcome = "unexpected", f"broke: {type(e).__name__}: {e}"
            traceback.print_exc()
        finally:
            step.duration_s = time.monotonic() - started
            self.say(f"      {_MARKS.get(step.status, '?')} {step.outcome}")
            for line in step.details:
                self.say(f"        {line}")

    def skip_without_gateway(self, step: Step) -> bool:
        if self.url is not None:
            return False
        step.status, step.outcome = "skipped", "not run: the gateway did not start"
        return True

    # -- the steps --------------------------------------------------------------------------

    def serve(self, stack: contextlib.ExitStack) -> None:
        with self.step("serve", "serve the good example on loopback (the reference gateway)") as s:
            module = self.examples / GOOD
            self.url, names = stack.enter_context(served_gateway(self.manifest, module))
            s.status = "expected"
            s.outcome = f"{self.url} serves {', '.join(names)} at POST /invoke/{{name}}"

    def check(self) -> None:
        inputs = json.dumps(CHECK_INPUTS)
        title = f"check one stream over HTTP: POST /invoke/{CHECK_FUNCTION} {inputs}"
        with self.step("check", title) as s:
            if self.skip_without_gateway(s):
                return
            url = f"{self.url}/invoke/{CHECK_FUNCTION}"
            result = run_check(url)
            command = shlex.join(["stream-harness", "check", url, "--inputs", inputs])
            s.report = self.report(s.key, check_report(result, command, ()))
            if result.extra.get("interrupted"):  # check keeps a partial stream on Ctrl-C
                raise KeyboardInterrupt
            s.status, s.outcome, s.details = judge_check(result)

    def property_test(self, example: str, worker: GeneratorWorker) -> None:
        good = example == GOOD
        key = "manifest-good" if good else "manifest-buggy"
        what = "the good example" if good else "the buggy example (bugs planted on purpose)"
        title = f"property-test {what}, up to {self.options.examples} inputs per function"
        with self.step(key, title) as s:
            result = self.manifest_run(example, worker)
            command = self.manifest_command(example)
            s.report = self.report(key, manifest_report(result, command, ()))
            if result.interrupted:  # run_manifest keeps the functions finished on Ctrl-C
                raise KeyboardInterrupt
            if good:
                s.status, s.outcome, s.details = judge_good(result, self.examples)
            else:
                bugs = caught_bugs(result, self.examples)
                self.result.bugs.extend(bugs)
                s.status, s.outcome, s.details = judge_buggy(result, bugs, self.examples)

    def manifest_run(self, example: str, worker: GeneratorWorker) -> ManifestResult:
        from harness._proptest import run_manifest

        return run_manifest(
            self.manifest,
            _check_options(),
            module=str(self.examples / example),
            max_examples=self.options.examples,
            seed=self.options.seed,
            database=None,  # the same run every time, whatever an earlier run found
            worker=worker,
        )

    def manifest_command(self, example: str) -> str:
        o = self.options
        module = str(self.examples / example)
        run = ["--examples", str(o.examples), "--seed", str(o.seed), "--no-database"]
        return shlex.join(
            ["stream-harness", "manifest", str(self.manifest), "--module", module, *run]
        )

    def load(self) -> None:
        o = self.options
        title = (
            f"load-test {LOAD_FUNCTION}: {o.load_users} users for {o.load_seconds:g} s, each "
            f"stream dropped after {o.reconnect_after} events and resumed with Last-Event-ID"
        )
        with self.step("load", title) as s:
            if self.skip_without_gateway(s):
                return
            verdict, run_dir = run_load_step(f"{self.url}/invoke/{LOAD_FUNCTION}", o, self.dir)
            s.report = _load_report_file(run_dir, self.dir)
            if verdict.get("incomplete"):  # a runner that keeps a partial verdict on Ctrl-C
                raise KeyboardInterrupt
            s.status, s.outcome, s.details = judge_load(verdict, o.reconnect_after)

    def report(self, key: str, report: Report) -> str:
        write_report(report, self.dir / key)
        return f"{key}/report.html"


# -- the gateway ------------------------------------------------------------------------------


@contextlib.contextmanager
def served_gateway(
    manifest_path: Path, module: Path, start_timeout: float = 15.0
) -> Iterator[tuple[str, list[str]]]:
    """The reference gateway for ``manifest_path``'s functions on 127.0.0.1, a free port, in a
    thread; yields its base URL and the functions' names, and stops it on exit."""
    import uvicorn

    from harness._cli.serve import _bind, _url
    from harness._contracts.manifest import load_manifest
    from harness._gateway.server import GatewayOptions, build_app

    manifest, found = load_manifest(manifest_path)
    if manifest is None:
        problems = "; ".join(f"{v.rule}: {v.message}" for v in found if v.is_error)
        raise HarnessError(f"{manifest_path} is invalid: {problems}")
    # A short retry hint: the load test resumes at once instead of after the default 3 s.
    options = GatewayOptions(retry_ms=100, send_timestamps=True)
    app = build_app(manifest, str(module), options)
    sock = _bind("127.0.0.1", 0)
    config = uvicorn.Config(
        app, log_level="warning", timeout_graceful_shutdown=2, ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="demo-gateway", daemon=True
    )
    thread.start()
    try:
        _wait_started(server, thread, start_timeout)
        yield _url(sock), [f.name for f in manifest.functions]
    finally:
        server.should_exit = True
        thread.join(5)
        if thread.is_alive():  # streams still open after the graceful period: cut them
            server.force_exit = True
            thread.join(5)
        sock.close()


def _wait_started(server: Any, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise HarnessError("the gateway stopped while starting (see its log above)")
        if time.monotonic() > deadline:
            raise HarnessError(f"the gateway did not start within {timeout:g} s")
        time.sleep(0.01)


# -- check ------------------------------------------------------------------------------------


#: The tour's bounds of one stream (check and load): generous for functions that take
#: milliseconds, short enough that nothing can stall.
_FIRST_BYTE_S: Final = DEFAULT_FIRST_BYTE_TIMEOUT
_IDLE_S: Final = 10.0
_TOTAL_S: Final = 20.0


def _check_options() -> CheckOptions:
    return CheckOptions(
        first_byte_timeout=_FIRST_BYTE_S, idle_timeout=_IDLE_S, total_timeout=_TOTAL_S
    )


def run_check(url: str) -> CheckResult:
    from harness._runners.check import check

    options = dataclasses.replace(_check_options(), inputs=dict(CHECK_INPUTS))
    return check(url, options)


def judge_check(result: CheckResult) -> tuple[str, str, list[str]]:
    """The good example's stream must conform."""
    t = result.timing
    if result.ok:
        first = f", first byte after {t.ttfb_ms:.1f} ms" if t.ttfb_ms is not None else ""
        return "expected", f"conforms: {result.events} events checked{first}", []
    errors = [v for v in result.violations if v.is_error]
    return (
        "unexpected",
        f"the good example does not conform: {len(errors)} errors in {result.events} events",
        [f"{v.rule}: {_clip(v.message)}" for v in errors[:5]],
    )


# -- property tests ---------------------------------------------------------------------------


def judge_good(result: ManifestResult, examples: Path) -> tuple[str, str, list[str]]:
    """The good example: every function must conform."""
    functions = result.functions
    inputs = sum(f.examples for f in functions)
    took = f"{result.duration_ms / 1000:.1f} s"
    problems = [f"manifest {v.rule}: {_clip(v.message)}" for v in result.violations if v.is_error]
    for f in functions:
        if f.skipped:
            problems.append(f"{f.name} was not tested: {_clip(f.skipped)}")
        for failure in f.failures:
            problems.append(_failure_line(f.name, failure, examples))
    if not problems and functions:
        n = len(functions)
        return "expected", f"{n} of {n} functions conform · {inputs} generated inputs · {took}", []
    failed = sum(not f.ok for f in functions)
    outcome = f"the good example does not conform: {failed} of {len(functions)} functions failed"
    return "unexpected", outcome if functions else "no function was tested", problems


def caught_bugs(result: ManifestResult, examples: Path) -> list[CaughtBug]:
    """Each distinct failure of the buggy example that is a planted bug, not a slow machine."""
    return [
        CaughtBug(
            f.name,
            failure.rule,
            _message(failure, examples),
            failure.inputs,
            failure.reproducer,
        )
        for f in result.functions
        for failure in f.failures
        if _planted(failure.rule)
    ]


def judge_buggy(
    result: ManifestResult, bugs: list[CaughtBug], examples: Path
) -> tuple[str, str, list[str]]:
    """The buggy example: every function must fail, with bugs, and with nothing else."""
    functions = result.functions
    caught = {b.function for b in bugs}
    problems = [f"manifest {v.rule}: {_clip(v.message)}" for v in result.violations if v.is_error]
    for f in functions:
        if f.skipped:
            problems.append(f"{f.name} was not tested: {_clip(f.skipped)}")
        elif f.name not in caught:
            problems.append(f"{f.name}: no bug caught in {f.examples} inputs (one is planted)")
        for failure in f.failures:
            if not _planted(failure.rule):
                problems.append("not a planted bug: " + _failure_line(f.name, failure, examples))
    inputs = sum(f.examples for f in functions)
    took = f"{result.duration_ms / 1000:.1f} s"
    counted = f"{len(bugs)} bug{'s' * (len(bugs) != 1)} caught in {len(caught)} of {len(functions)}"
    lines = [b.line() for b in bugs]
    if problems or not functions:
        return "unexpected", f"{counted} functions, and something else went wrong", problems + lines
    return (
        "expected",
        f"{counted} functions, as planted · {inputs} generated inputs · {took}",
        lines,
    )


def _planted(rule: str) -> bool:
    return rule not in _NOT_PLANTED and not rule.startswith("timeout.")


def _failure_line(name: str, failure: Failure, examples: Path) -> str:
    inputs = json.dumps(failure.inputs, ensure_ascii=True)
    return f"{name}: {_message(failure, examples)} ({failure.rule}), input {inputs}"


def _message(failure: Failure, examples: Path) -> str:
    """The failure's first error in a few words: the first clause, the file path shortened."""
    errors = [v for v in failure.result.violations if v.is_error and v.rule == failure.rule]
    text = errors[0].message if errors else failure.rule
    return _clip(_relative(text.split("; ")[0], examples))


def _relative(text: str, examples: Path) -> str:
    return text.replace(f"{examples}/", "")


def _clip(text: str, width: int = _MESSAGE_WIDTH) -> str:
    line = " ".join(text.split())
    return shorten(line, width)


# -- load -------------------------------------------------------------------------------------


def run_load_step(url: str, o: DemoOptions, directory: Path) -> tuple[dict[str, Any], Path]:
    from harness._load._runner import LoadOptions, run_load

    options = LoadOptions(
        url=url,
        users=o.load_users,
        spawn_rate=float(o.load_users),
        run_time_s=o.load_seconds,
        inputs=LOAD_INPUTS,
        reconnect_after=o.reconnect_after,
        report_dir=directory / "load",
        first_byte_timeout=_FIRST_BYTE_S,
        idle_timeout=_IDLE_S,
        total_timeout=_TOTAL_S,
    )
    return run_load(options, live=False)


def judge_load(verdict: dict[str, Any], reconnect_after: int) -> tuple[str, str, list[str]]:
    m = verdict["metrics"]
    streams, failed = verdict["requests"], verdict["failures"]
    reconnects = m["reconnect_ms"]["count"]
    ttfb = m["ttfb_ms"].get("p95")
    events = verdict.get("run", {}).get("events")
    facts = [f"{streams} streams, {failed} failed"]
    facts.append(f"{reconnects} resumed after {reconnect_after} events without gap or duplicate")
    if ttfb is not None:
        facts.append(f"TTFB p95 {ttfb:.1f} ms")
    if events is not None:
        facts.append(f"{events:,} events checked")
    outcome = " · ".join(facts)
    problems = [
        f"{v['rule']} in {v['streams']} stream(s): {_clip(v['message'])}"
        for v in verdict["violations"][:5]
    ]
    problems += [f"no stream: {e['error']} ({e['count']}x)" for e in verdict["errors"][:3]]
    if verdict["ok"] and streams > 0 and reconnects > 0 and not problems:
        return "expected", outcome, []
    if not reconnects:
        problems.append("no stream was resumed")
    return "unexpected", outcome, problems


def _load_report_file(run_dir: Path, directory: Path) -> str:
    """The load run's page: its report.html when the load command writes one, else Locust's."""
    for name in ("report.html", "locust.html", "verdict.json"):
        if (run_dir / name).exists():
            return str((run_dir / name).relative_to(directory))
    return str(run_dir.relative_to(directory))


# -- Ctrl-C and the time limit -----------------------------------------------------------------


class _Stopper:
    """Ctrl-C and the time limit, made reliable.

    Both raise KeyboardInterrupt in the main thread from a signal handler (the limit by
    SIGALRM), so a blocking wait is interrupted and every runner's Ctrl-C handling applies --
    some keep a partial result and return it instead of raising, and the steps check for
    those.  An exception raised by a signal handler can land where Python swallows it (a
    garbage-collector callback, which Hypothesis installs, or a ``__del__``), so once stopping,
    the interrupt repeats every half second until the demo has :meth:`noticed` it.  Off the
    main thread, or without ``setitimer``, Python's own Ctrl-C applies and there is no limit.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        #: "Ctrl-C" or "time limit" once stopping.
        self.reason: str | None = None
        self._noticed = False

    def noticed(self) -> None:
        """An interrupt reached the demo: raise no more."""
        self._noticed = True

    def _stop(self, reason: str) -> None:
        self.reason = self.reason or reason
        if not self._noticed:
            signal.setitimer(signal.ITIMER_REAL, _REPEAT_S, _REPEAT_S)
            raise KeyboardInterrupt(self.reason)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        self._stop("time limit")

    def _on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        self._stop("Ctrl-C")

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        main = threading.current_thread() is threading.main_thread()
        if not main or not hasattr(signal, "setitimer"):
            yield
            return
        previous_hook = sys.unraisablehook
        sys.unraisablehook = functools.partial(_quiet_interrupts, previous_hook)
        previous_alarm = signal.signal(signal.SIGALRM, self._on_alarm)
        previous_int = signal.getsignal(signal.SIGINT)
        if previous_int is not signal.SIG_IGN:  # started in the background: stay deaf to it
            signal.signal(signal.SIGINT, self._on_interrupt)
        if self.seconds is not None:
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_alarm)
            signal.signal(signal.SIGINT, previous_int)
            sys.unraisablehook = previous_hook


def _quiet_interrupts(previous: Callable[[Any], object], unraisable: Any) -> None:
    """A swallowed interrupt is raised again (see :class:`_Stopper`): no traceback for it."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        previous(unraisable)


# -- summary ----------------------------------------------------------------------------------


def verdict_line(result: DemoResult, time_limit: float | None) -> str:
    took = f"{result.duration_s:.0f} s"
    if result.interrupted == "Ctrl-C":
        head = f"demo interrupted (Ctrl-C) after {took}"
    elif result.interrupted is not None:
        head = f"demo STOPPED: it took longer than its {time_limit:g} s limit"
    elif result.ok:
        head = (
            f"demo OK in {took}: everything behaved as expected -- the good example conforms, "
            f"the buggy example's {len(result.bugs)} bugs were caught, and the gateway held up "
            "under load with reconnects"
        )
    else:
        odd = ", ".join(s.key for s in result.steps if s.status != "expected")
        head = f"demo FAILED in {took}: something unexpected happened in: {odd} (see above)"
    if result.index is not None:
        head += f"\nreport: {result.index}"
    return head


def write_index(result: DemoResult, directory: Path) -> None:
    """``index.html`` (self-contained: inline CSS, no script) and ``summary.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    summary = json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n"
    atomic_write(directory / "summary.json", summary.encode())
    atomic_write(directory / "index.html", render_index(result).encode())


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#171717}
main{max-width:1100px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e5e5}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:700;color:#fff;
margin-right:8px}
.pass{background:#16a34a}.fail{background:#dc2626}.incomplete{background:#ea580c}
.meta{color:#525252} code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid #eee;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#fafafa} .expected{color:#15803d;font-weight:700}
.unexpected{color:#b91c1c;font-weight:700}
.skipped,.interrupted{color:#b45309;font-weight:700} ul{margin:4px 0;padding-left:20px}
.nowrap{white-space:nowrap}
"""


def render_index(result: DemoResult) -> str:
    if result.interrupted is not None:
        badge = '<span class="badge incomplete">INCOMPLETE</span>'
    elif result.ok:
        badge = '<span class="badge pass">AS EXPECTED</span>'
    else:
        badge = '<span class="badge fail">UNEXPECTED</span>'
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    note = (
        f"<p><strong>Stopped ({escape(result.interrupted)})</strong>: the steps below are those "
        "that ran; the rest did not.</p>"
        if result.interrupted
        else ""
    )
    body = (
        f"<h1>{badge}stream-harness demo</h1>"
        f'<p class="meta">{when} · {result.duration_s:.1f} s · the bundled example prefab, end to '
        "end: served, checked over HTTP, property-tested (good and buggy), load-tested.</p>"
        f"{note}<h2>Steps</h2>{_steps_table(result)}{_bugs_section(result)}"
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>stream-harness demo</title><style>{_CSS}</style></head>"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def _steps_table(result: DemoResult) -> str:
    rows = []
    for n, s in enumerate(result.steps, 1):
        link = f'<a href="{escape(s.report)}">report</a>' if s.report else ""
        details = "".join(f"<li>{escape(d)}</li>" for d in s.details if s.status != "expected")
        rows.append(
            f"<tr><td>{n}</td><td>{escape(s.title)}</td>"
            f'<td class="{escape(s.status)} nowrap">{_MARKS.get(s.status, "?")} '
            f"{escape(s.status)}</td>"
            f"<td>{escape(s.outcome)}{f'<ul>{details}</ul>' if details else ''}</td>"
            f'<td class="nowrap">{s.duration_s:.1f} s</td><td>{link}</td></tr>'
        )
    head = "<tr><th>#</th><th>step</th><th></th><th>outcome</th><th>time</th><th></th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _bugs_section(result: DemoResult) -> str:
    if not result.bugs:
        return ""
    rows = "".join(
        f"<tr><td><code>{escape(b.function)}</code></td><td><code>{escape(b.rule)}</code></td>"
        f"<td>{escape(b.message)}</td><td><code>{escape(json.dumps(b.minimal_inputs))}</code></td>"
        f"<td><code>{escape(b.reproducer)}</code></td></tr>"
        for b in result.bugs
    )
    return (
        "<h2>Bugs caught in the buggy example</h2>"
        "<p>Planted on purpose: each is a success of the demo. Property testing found each one "
        "and shrank it to its smallest input.</p>"
        "<table><tr><th>function</th><th>rule</th><th>what happened</th><th>minimal input</th>"
        f"<th>reproduce</th></tr>{rows}</table>"
    )
