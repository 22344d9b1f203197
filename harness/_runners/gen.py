"""Run users' generator functions in a worker process and check what they yield.

    GeneratorWorker   one long-lived child (``python -m harness._runners.worker``), started on first
                      use and started afresh after a crash or a timeout kill
    run_generator()   the same through one shared worker, stopped when the interpreter exits

Why a child process: user code may hang, print, eat memory, call ``os._exit``, leave daemons
or kill its process group.  The parent keeps the clock, so a limit holds even when the
generator never gives control back; the child is killed (with anything it started: it leads
its own session, and its supervisor kills what is left below it) and the run reported.  The
end of the worker is its process's exit (a pidfd), never only the pipe's EOF, which a daemon
can hold back; what comes through the pipe is checked and bounded, and anything else than the
protocol ends the run as ``gen.crashed``.  What the isolation does not promise (the code runs
as the same user and can kill the harness by pid): ``docs/generators.md``.
Why a long-lived one: a property test sends hundreds of examples through one function, and
Python's start-up and the user's imports should be paid once, not per example.

Each yielded item reaches the contract checker as the gateway would send it: the text of
``json.dumps(item, ensure_ascii=False, allow_nan=False)`` as the data of one SSE event.  Inputs
travel as JSON too, so the function sees what a gateway would give it (lists, not tuples).
The wire protocol between the two processes is described in :mod:`harness._runners.worker`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from harness._contracts.generator_rules import (
    exit_status,
    gen_crashed,
    gen_garbled,
    gen_item_too_large,
    gen_memory,
    gen_not_iterator,
    gen_not_serializable,
    gen_raised,
    gen_timeout,
)
from harness._contracts.manifest import FunctionInfo
from harness._core.errors import TargetLoadError
from harness._core.options import CheckOptions
from harness._core.rules import Violation, violation
from harness._core.session import CheckResult, ContractChecker, StreamSession
from harness._core.sse import SSEEvent

__all__ = ["DEFAULT_MEMORY_LIMIT", "GeneratorWorker", "ModuleFunctions", "run_generator"]

#: Address-space cap of the worker: generous for real code, small enough to save the machine.
DEFAULT_MEMORY_LIMIT: Final = 4 << 30
#: Bound on the worker's own start-up (not the user's imports, which total_timeout bounds).
START_TIMEOUT: Final = 60.0
_T = TypeVar("_T")
_READ_SIZE: Final = 1 << 20
_EXIT_WAIT: Final = 2.0  # after the pipe closes, how long the process may take to exit
#: The longest protocol line kept while it is incomplete (an item may be max_event_bytes).
_MIN_LINE_LIMIT: Final = 16 << 20
_LINE_SLACK: Final = 64 << 10
#: Without a pidfd (not Linux), how often a wait checks whether the worker is still there.
_EXIT_POLL_MS: Final = 100

_TERMINAL_REPORTS: Final[dict[bytes, tuple[str, Callable[[Mapping[str, Any]], str]]]] = {
    b"raised": ("gen.raised", gen_raised),
    b"not-iterator": ("gen.not-iterator", gen_not_iterator),
    b"not-serializable": ("gen.not-serializable", gen_not_serializable),
    b"too-large": ("gen.item-too-large", gen_item_too_large),
    b"memory": ("gen.memory", gen_memory),
}


class _ProtocolError(Exception):
    """What came through the worker's pipe is not the protocol; ``str()`` says what it was."""


def _garbage(line: bytes) -> _ProtocolError:
    more = "..." if len(line) > 60 else ""
    return _ProtocolError(f"{repr(line[:60])[1:]}{more}")  # the bytes' repr, without its b


# -- targets ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    text: str  # as the user gave it, for messages
    module: str  # an absolute path to a .py file, or a dotted module name
    function: str
    is_path: bool


def _parse_target(target: str) -> _Target:
    module, sep, function = target.rpartition(":")
    example = "e.g. examples/prefab_good.py:batch_process or mypkg.streams:chat"
    if not (sep and module and function):
        raise TargetLoadError(f"{target!r} is not module:function ({example})")
    if not all(part.isidentifier() for part in function.split(".")):
        raise TargetLoadError(f"{function!r} in {target!r} is not a function name ({example})")
    resolved, is_path = _module_ref(module, f" (in the target {target!r})", example)
    return _Target(target, resolved, function, is_path)


def _module_ref(module: str, context: str, example: str) -> tuple[str, bool]:
    """``(absolute path, True)`` for a .py file, ``(dotted name, False)`` for a module name."""
    if module.endswith(".py") or "/" in module or os.sep in module:
        path = os.path.abspath(module)
        if not os.path.isfile(path):
            raise TargetLoadError(f"no such file: {module}{context}")
        return path, True
    if not all(part.isidentifier() for part in module.split(".")):
        raise TargetLoadError(f"{module!r} is neither a .py file nor a module name ({example})")
    return module, False


def _request(target: _Target, inputs: Mapping[str, Any] | None, options: CheckOptions) -> bytes:
    if inputs is not None and not isinstance(inputs, Mapping):
        raise TargetLoadError(f"the inputs must be a JSON object of arguments, not {inputs!r}")
    request = {
        "target": target.text,
        "module": target.module,
        "is_path": target.is_path,
        "function": target.function,
        "inputs": dict(inputs or {}),
        "cwd": os.getcwd(),
        "max_events": options.max_events,
        "max_event_bytes": options.max_event_bytes,
    }
    try:
        return json.dumps(request).encode() + b"\n"
    except (TypeError, ValueError) as exc:
        raise TargetLoadError(f"the inputs cannot be sent as JSON: {exc}") from None


# -- the child process ------------------------------------------------------------------------


class _LineReader:
    """Lines from the worker's pipe, with a deadline on each wait.

    The end of the worker is its process's exit, not the pipe's EOF: a process the user's code
    started can hold the pipe open long after the worker died.  Raises :class:`_ProtocolError`
    for a line longer than :attr:`limit`, which is never kept whole.
    """

    def __init__(self, fd: int, pid: int) -> None:
        self.fd = fd
        self.pid = pid
        self.limit = _MIN_LINE_LIMIT
        self._poll = select.poll()  # not select(): it fails on fd numbers above 1023
        self._poll.register(fd, select.POLLIN)
        self.pidfd = _pidfd(pid)  # readable once the process has exited
        if self.pidfd is not None:
            self._poll.register(self.pidfd, select.POLLIN)
        self._lines: deque[bytes] = deque()
        self._partial: list[bytes] = []  # pieces of an unfinished line, joined once it ends
        self._partial_size = 0
        self.eof = False

    def read_line(self, deadline: float) -> bytes | None:
        """The next line (no LF); ``b""`` once the worker is gone; ``None`` if the deadline
        passed."""
        while not self._lines:
            if self.eof:
                return b""
            # Polling once even past the deadline: data that already arrived is not a timeout.
            wait_ms = max(0, math.ceil((deadline - time.monotonic()) * 1000))
            if self.pidfd is None:
                wait_ms = min(wait_ms, _EXIT_POLL_MS)
            ready = [fd for fd, _ in self._poll.poll(wait_ms)]
            if self.fd in ready:
                self._fill()  # first what the pipe holds: written before the process ended
            elif ready or (self.pidfd is None and _has_exited(self.pid)):
                self.eof = True  # gone, and the pipe drained: whoever else holds it open
            elif time.monotonic() >= deadline:
                return None
        return self._lines.popleft()

    def _fill(self) -> None:
        chunk = os.read(self.fd, _READ_SIZE)
        if not chunk:
            self.eof = True
            return
        if b"\n" not in chunk:
            self._partial.append(chunk)
            self._partial_size += len(chunk)
            if self._partial_size > self.limit:
                raise _ProtocolError(f"a line of more than {self.limit} bytes")
            return
        first = self._partial_size + chunk.index(b"\n")
        if first > self.limit:
            raise _ProtocolError(f"a line of {first} bytes, more than {self.limit}")
        self._partial.append(chunk)
        lines = b"".join(self._partial).split(b"\n")
        last = lines.pop()
        self._partial = [last] if last else []
        self._partial_size = len(last)
        self._lines.extend(line for line in lines if line)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
        return None


def _has_exited(pid: int) -> bool:
    return _wait_exited(pid, 0.0)


class _Child:
    """One worker process and the parent's ends of its two pipes."""

    def __init__(self, memory_limit: int | None) -> None:
        self.owner = os.getpid()
        self.dead = False
        self.worker_pid = 0
        cmd_r, self.cmd_w = os.pipe()
        self.out_r, out_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                _command(cmd_r, out_w, memory_limit),
                pass_fds=(cmd_r, out_w),
                stdin=subprocess.DEVNULL,
                stdout=_stderr_target(),  # the user's prints go to our stderr, never the protocol
                start_new_session=True,  # its own process group: killed with all it started
                env=_child_env(),
            )
        except OSError as exc:
            os.close(self.cmd_w)
            os.close(self.out_r)
            raise TargetLoadError(f"cannot start the generator worker: {exc}") from None
        finally:
            os.close(cmd_r)
            os.close(out_w)
        self.reader = _LineReader(self.out_r, self.proc.pid)
        fds = [self.cmd_w, self.out_r] + ([] if self.reader.pidfd is None else [self.reader.pidfd])
        self._finalizer = weakref.finalize(self, _stop, self.proc, fds, self.owner)
        self._await_ready()

    @property
    def pid(self) -> int:
        """The process that runs the user's code (below its supervisor, where there is one)."""
        return self.worker_pid or self.proc.pid

    def _await_ready(self) -> None:
        try:
            line = self.reader.read_line(time.monotonic() + START_TIMEOUT)
        except _ProtocolError as exc:
            line, status = b"?", f"sent {exc} instead of the harness protocol"
        else:
            tag, payload = _split(line or b"")
            if tag == b"ready" and (not payload or payload.isdigit()):
                self.worker_pid = int(payload or 0)
                return
            status = "did not start in time" if line is None else self.ended()
        self.kill()
        raise TargetLoadError(f"the generator worker {status} (see the messages above)")

    def send(self, message: bytes) -> bool:
        """Write one request; False if the process is gone."""
        view = memoryview(message)
        try:
            while view:
                view = view[os.write(self.cmd_w, view) :]
        except OSError:  # BrokenPipeError: it died
            return False
        return True

    def read_line(self, deadline: float) -> bytes | None:
        return self.reader.read_line(deadline)

    def reap(self) -> int:
        """The exit status of a process whose pipe closed; the process is then gone."""
        _wait_exited(self.proc.pid, _EXIT_WAIT)
        _killpg(self.proc)  # before waiting: the group id cannot be reused while we hold it
        code = self.proc.wait()
        self.close()
        return code

    def ended(self) -> str:
        return exit_status(self.reap())

    def kill(self) -> None:
        """Stop at once (a timeout, a broken protocol): no grace, the state is unknown.

        SIGTERM goes to the supervisor, which kills the worker and then everything left below
        it (a daemon in a session of its own included); the process group is killed too once
        the supervisor has exited, or after :data:`_EXIT_WAIT` if it has not."""
        if self.worker_pid in (0, self.proc.pid):  # no supervisor (not Linux): the group at once
            _killpg(self.proc)
        elif self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                self.proc.send_signal(signal.SIGTERM)
        self.close()

    def close(self) -> None:
        self.dead = True
        self._finalizer()

    def detach(self) -> None:
        """Forget a worker inherited through fork(): it belongs to the parent process."""
        self.dead = True
        self._finalizer.detach()


def _command(cmd_fd: int, out_fd: int, memory_limit: int | None) -> list[str]:
    return [
        sys.executable,
        "-u",  # unbuffered: the user's prints interleave with the harness's own output
        "-P",  # no current directory on sys.path at start-up: a local harness/ cannot shadow us
        "-m",
        "harness._runners.worker",
        f"--cmd-fd={cmd_fd}",
        f"--out-fd={out_fd}",
        f"--parent-pid={os.getpid()}",
        f"--memory-limit={memory_limit or 0}",
    ]


def _stderr_target() -> int:
    try:
        os.fstat(2)
    except OSError:
        return subprocess.DEVNULL
    return 2


def _child_env() -> dict[str, str]:
    # The worker must import this very harness even when it is not installed (a checkout).
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([*paths, root])
    return env


def _killpg(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is not None:
        return  # already reaped: its group id may belong to someone else by now
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_exited(pid: int, timeout: float) -> bool:
    """Wait for the process to exit *without* reaping it (WNOWAIT), so its group stays ours."""
    end = time.monotonic() + timeout
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.005)


def _stop(proc: subprocess.Popen[bytes], fds: list[int], owner: int) -> None:
    """End a worker: EOF on its command pipe asks it to exit; whatever is left is killed."""
    if os.getpid() != owner:
        return  # a forked copy of the parent: the worker is not ours to stop
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    if proc.returncode is None:
        _wait_exited(proc.pid, _EXIT_WAIT)
        _killpg(proc)  # the stragglers: a process the user started, or a worker that hung
        proc.wait()


# -- running ----------------------------------------------------------------------------------


class GeneratorWorker:
    """Runs generator functions in one reusable child process.

    >>> with GeneratorWorker() as worker:                                   # doctest: +SKIP
    ...     result = worker.run("examples/prefab_good.py:batch_process",
    ...                         {"items": [1, 2]}, CheckOptions(), PrefabChecker())

    One worker runs one generator at a time: runs from several threads take turns.
    """

    def __init__(self, *, memory_limit: int | None = DEFAULT_MEMORY_LIMIT) -> None:
        #: Bytes of address space the worker may use; ``None``: no limit.
        self.memory_limit = memory_limit
        self._child: _Child | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The worker's process id, or ``None`` while none is running."""
        child = self._child
        return None if child is None or child.dead else child.pid

    def __enter__(self) -> GeneratorWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker process; a later :meth:`run` starts a new one."""
        with self._lock:
            if self._child is not None:
                self._child.close()
                self._child = None

    def run(
        self,
        target: str,
        inputs: Mapping[str, Any] | None,
        options: CheckOptions,
        checker: ContractChecker,
    ) -> CheckResult:
        """Call ``target(**inputs)`` in the worker and check every item it yields.

        Raises :class:`TargetLoadError` when the target cannot be loaded or called with these
        inputs; everything the generator does wrong is a violation in the result.
        """
        request = _request(_parse_target(target), inputs, options)
        with self._lock:
            child = self._send(request)
            child.reader.limit = max(options.max_event_bytes + _LINE_SLACK, _MIN_LINE_LIMIT)
            sent = time.monotonic()
            try:
                try:
                    start = _await_call(child, target, options.total_timeout)
                except _ProtocolError as exc:  # before the call: the module's own code did it
                    child.kill()
                    return _unstarted(target, checker, options, sent, gen_garbled(str(exc), 0))
                if start is None:  # died while loading the target
                    message = gen_crashed(child.reap(), 0, loading=True)
                    return _unstarted(target, checker, options, sent, message)
                session = StreamSession(target, checker, start=start, max_events=options.max_events)
                try:
                    return _stream(child, session, options)
                except KeyboardInterrupt:
                    # Ctrl-C: what was checked so far is still a result (a partial report).
                    child.kill()
                    session.extra["interrupted"] = True
                    return session.finish(time.monotonic(), complete=False, bytes_stream=False)
            except TargetLoadError:
                raise  # the worker is in step (a load error) or already stopped
            except BaseException:
                child.kill()  # interrupted mid-run: the worker's state is unknown
                raise
            finally:
                if child.dead:
                    self._child = None

    def inspect(
        self, module: str, names: Sequence[str], *, timeout: float = START_TIMEOUT
    ) -> ModuleFunctions:
        """Import ``module`` (a .py path or a dotted name) in the worker and describe the
        callables ``names`` there: kind (generator or not) and parameters.

        Importing runs the user's code, which is why it happens in the worker.  Raises
        :class:`TargetLoadError` when the module cannot be imported, or takes longer than
        ``timeout`` seconds to.
        """
        example = "e.g. src/main.py or mypkg.main"
        resolved, is_path = _module_ref(module, "", example)
        request = {
            "op": "inspect",
            "target": module,
            "module": resolved,
            "is_path": is_path,
            "cwd": os.getcwd(),
            "names": list(names),
        }
        with self._lock:
            child = self._send(json.dumps(request).encode() + b"\n")
            try:
                line = child.read_line(time.monotonic() + timeout)
                if line is None:
                    child.kill()
                    raise TargetLoadError(
                        f"importing {module} took longer than {timeout:g} s "
                        "(does the module wait for something when imported?)"
                    )
                tag, payload = _split(line)
                if tag == b"functions":
                    return _decode(payload, lambda obj: ModuleFunctions.from_json(module, obj))
                if tag == b"load-error":
                    raise TargetLoadError(_decode(payload, _load_error))
                if line:
                    raise _garbage(line)
                status = child.ended()
                raise TargetLoadError(f"the generator worker {status} while importing {module}")
            except _ProtocolError as exc:
                child.kill()
                raise TargetLoadError(
                    f"the generator worker's output is not the harness protocol: {exc}, "
                    f"while importing {module} (does the module write to the harness's pipe?)"
                ) from None
            except TargetLoadError:
                raise
            except BaseException:
                child.kill()
                raise
            finally:
                if child.dead:
                    self._child = None

    def _send(self, request: bytes) -> _Child:
        child = self._ensure()
        if child.send(request):
            return child
        # It died between runs (a thread the user left behind called os._exit, say): once more.
        child.kill()
        self._child = None
        child = self._ensure()
        if child.send(request):
            return child
        child.kill()
        self._child = None
        raise TargetLoadError("the generator worker died before it could take the run")

    def _ensure(self) -> _Child:
        child = self._child
        if child is not None and child.owner != os.getpid():
            child.detach()
            child = None
        elif child is not None and child.dead:
            child = None
        if child is None:
            child = self._child = _Child(self.memory_limit)
        return child


@dataclass(frozen=True, slots=True)
class ModuleFunctions:
    """What :meth:`GeneratorWorker.inspect` found in a module."""

    module: str
    #: Each name asked about: its facts, or ``None`` when nothing callable has that name.
    functions: dict[str, FunctionInfo | None]
    #: The module's own public callables (for "did you mean").
    available: tuple[str, ...]

    @classmethod
    def from_json(cls, module: str, obj: Mapping[str, Any]) -> ModuleFunctions:
        functions = {
            name: None if info is None else FunctionInfo.from_json(info)
            for name, info in obj["functions"].items()
        }
        return cls(module, functions, tuple(obj.get("available", ())))


def _split(line: bytes) -> tuple[bytes, bytes]:
    tag, _, payload = line.partition(b" ")
    return tag, payload


def _decode(payload: bytes, build: Callable[[Any], _T]) -> _T:
    """``build(json.loads(payload))``; a payload that does not fit is not the protocol."""
    try:
        return build(json.loads(payload))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _garbage(payload) from None


def _load_error(obj: Mapping[str, Any]) -> str:
    return str(obj["message"])


def _await_call(child: _Child, target: str, total_timeout: float) -> float | None:
    """Wait while the worker loads the target: the time it calls the function, or ``None``
    if the worker died meanwhile."""
    line = child.read_line(time.monotonic() + total_timeout)
    if line is None:
        child.kill()
        raise TargetLoadError(
            f"loading {target} took longer than total_timeout = {total_timeout:g} s "
            "(does the module wait for something when imported?)"
        )
    tag, payload = _split(line)
    if tag == b"call" and not payload:
        return time.monotonic()
    if tag == b"load-error":
        raise TargetLoadError(_decode(payload, _load_error))
    if line:
        raise _garbage(line)
    return None


def _unstarted(
    target: str, checker: ContractChecker, options: CheckOptions, sent: float, message: str
) -> CheckResult:
    """The verdict of a run that ended before the function was called: ``gen.crashed``."""
    session = StreamSession(target, checker, start=sent, max_events=options.max_events)
    session.add(violation("gen.crashed", message))
    return session.finish(time.monotonic(), complete=False, bytes_stream=False)


def _stream(child: _Child, session: StreamSession, options: CheckOptions) -> CheckResult:
    """Feed the items to the session until the run ends, a limit passes or the worker dies."""
    total_end = session.start + options.total_timeout
    last = session.start
    items = 0
    while True:
        limit, seconds = (
            ("idle_timeout", options.idle_timeout)
            if items
            else ("first_byte_timeout", options.first_byte_timeout)
        )
        deadline = last + seconds
        if total_end <= deadline:
            limit, seconds, deadline = "total_timeout", options.total_timeout, total_end
        try:
            line = child.read_line(deadline)
            now = time.monotonic()
            if line is None:
                child.kill()
                session.add(violation("gen.timeout", gen_timeout(limit, seconds, items)))
                return session.finish(now, complete=False, bytes_stream=False)
            tag, payload = _split(line)
            if tag == b"item":
                session.mark_first_byte(now)
                session.feed_item(_item(payload, items, now, options.max_event_bytes), now)
                items, last = items + 1, now
            elif line == b"end":
                return session.finish(now, bytes_stream=False)
            else:
                session.add(_terminal_violation(child, tag, payload, items))
                return session.finish(now, complete=False, bytes_stream=False)
        except _ProtocolError as exc:
            child.kill()
            session.add(violation("gen.crashed", gen_garbled(str(exc), items)))
            return session.finish(time.monotonic(), complete=False, bytes_stream=False)


def _item(payload: bytes, index: int, now: float, max_event_bytes: int) -> SSEEvent:
    if len(payload) > max_event_bytes:  # the worker sends none; as a client would, if it did
        return SSEEvent("", id=str(index), time=now, oversize=True)
    try:
        return SSEEvent(data=payload.decode(), id=str(index), time=now)
    except UnicodeDecodeError:
        raise _ProtocolError(f"an item that is not UTF-8 ({_garbage(payload)})") from None


def _terminal_violation(child: _Child, tag: bytes, payload: bytes, items: int) -> Violation:
    if not tag:  # the worker is gone
        return violation("gen.crashed", gen_crashed(child.reap(), items))
    if tag not in _TERMINAL_REPORTS:
        raise _garbage(tag + b" " + payload if payload else tag)
    rule_id, describe = _TERMINAL_REPORTS[tag]
    found = violation(rule_id, _decode(payload, describe))
    if tag == b"memory":
        child.kill()  # its heap is spent: the next run gets a fresh process
    return found


# -- the shared worker ------------------------------------------------------------------------

_shared: GeneratorWorker | None = None
_shared_lock = threading.Lock()


def run_generator(target: str, options: CheckOptions, checker: ContractChecker) -> CheckResult:
    """Run ``target(**options.inputs)`` through a worker shared by the whole process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = GeneratorWorker()
        worker = _shared
    return worker.run(target, options.inputs, options, checker)
