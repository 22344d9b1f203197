"""The child process that runs users' generator functions: ``python -P -m harness._runners.worker``.

User code runs here, not in the harness, because it may hang, print, read stdin, eat memory,
call ``os._exit``, start daemons or kill its process group; the parent
(:mod:`harness._runners.gen`) keeps the clock and stops this process when a limit passes.  The
process lives across many runs so that a property test sending hundreds of examples pays
Python's start-up and the user's imports once.

Isolation
---------
The parent starts this module in a session and process group of its own.  It forks at once
(Linux): the first process, the *supervisor*, runs no user code; it is the child subreaper of
everything below it, and once the worker has ended it kills every process left (a
double-forked daemon in a session of its own included) and exits with the worker's status.
The address space is capped with ``RLIMIT_AS``, soft and hard, so the user's code cannot
raise it.  This is isolation against accidents, not a sandbox: the code runs as the same user
and can still kill the harness by its pid (see ``docs/generators.md``).

Protocol
--------
The child's stdin and stdout belong to the user's code (stdout goes to the parent's stderr), so
the two sides talk over two dedicated pipes whose fd numbers are given on the command line,
one message per line::

    parent -> child   {"target", "module", "is_path", "function", "inputs", "cwd",
                       "max_events", "max_event_bytes"}
                      (JSON; "module" is an absolute path or a dotted name)
                      {"op": "inspect", "target", "module", "is_path", "cwd", "names"}
    child -> parent   ready <pid>                 once, after start-up: the worker's pid
                      call                        loaded and inputs bound: calling the function
                      item <json text>            one yielded item, exactly as a gateway sends it
                      end                         exhausted, or max_events reached and closed
                      load-error {"message"}      the target cannot be loaded or called so
                      raised {...}                an exception escaped the generator
                      not-iterator {...}          the function returned something else
                      not-serializable {...}      an item json.dumps rejects; the run stopped
                      too-large {...}             an item over max_event_bytes; the run stopped
                      memory {...}                MemoryError; the parent restarts the worker

An inspect request is answered by one line, ``functions {"functions": {name: {"name", "kind",
"parameters", "signature"} | null}, "available": [...]}`` or ``load-error {"message"}``: the
module is imported here, never in the parent, because importing runs the user's code.

Every run ends with exactly one of the last seven messages; ``call`` precedes all but
``load-error``.  An item is never serialised past ``max_event_bytes``: its size is bounded
first (:func:`json_size_floor`), so a gigabyte item costs no gigabyte frame.  Control payloads
are ASCII JSON; only item payloads carry raw UTF-8, and ``json.dumps`` never puts a line break
in its output, so one line is always one message.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import importlib.util
import json
import os
import signal
import sys
import threading
import time
import traceback
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, NoReturn

if TYPE_CHECKING:
    import inspect
from harness._core.text import shorten

__all__ = ["main"]

_MAX_TEXT = 300
#: The report of a MemoryError when not even it can be built: written as is, no allocation.
_OUT_OF_MEMORY = b"memory {}\n"


class LoadError(Exception):
    """The target cannot be loaded or called with these inputs; ``str(e)`` is one line."""


# -- talking to the parent --------------------------------------------------------------------


class Channel:
    """The child's end of the parent-bound pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, tag: bytes, payload: bytes = b"") -> None:
        data = memoryview(tag + b" " + payload + b"\n" if payload else tag + b"\n")
        while data:  # a pipe write may be partial when the message outgrows the pipe buffer
            data = data[os.write(self.fd, data) :]

    def send_json(self, tag: bytes, obj: dict[str, Any]) -> None:
        self.send(tag, json.dumps(obj).encode())


# -- loading ----------------------------------------------------------------------------------


class Loader:
    """Imports target modules once and keeps them: a worker serves many runs of one target."""

    def __init__(self) -> None:
        self._by_path: dict[str, ModuleType] = {}
        self._cwd = ""

    def function(self, request: dict[str, Any]) -> tuple[Callable[..., Any], str | None]:
        """The callable a request names, and the file of its module (for traceback frames)."""
        module = self.module(request)
        shown = request["target"].rpartition(":")[0]  # as the user wrote it, for messages
        fn = _attribute(module, shown, request["function"])
        return fn, getattr(module, "__file__", None)

    def module(self, request: dict[str, Any]) -> ModuleType:
        """The module a request names, imported on first use."""
        self._enter(request["cwd"])
        module_name: str = request["module"]
        if request["is_path"]:
            return self._path_module(module_name)
        return _dotted_module(module_name)

    def _enter(self, cwd: str) -> None:
        # The parent may have changed directory since this process started, and a previous
        # run may have too: relative paths in user code, and dotted targets, resolve against
        # the parent's current directory, as they would in-process.
        if os.getcwd() != cwd:
            os.chdir(cwd)
        if cwd == self._cwd:
            return
        if self._cwd and self._cwd in sys.path:
            sys.path.remove(self._cwd)
        sys.path.insert(0, cwd)
        self._cwd = cwd

    def _path_module(self, path: str) -> ModuleType:
        module = self._by_path.get(path)
        if module is None:
            module = self._by_path[path] = _import_path(path)
        return module


def _import_path(path: str) -> ModuleType:
    if not os.path.isfile(path):
        raise LoadError(f"no such file: {path}")
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the module can import its siblings, as it would at home
    name = os.path.splitext(os.path.basename(path))[0]
    # The plain stem keeps reprs readable; a stem that is taken (json.py, a second fake.py)
    # gets a unique name so it never shadows or replaces another module.
    if not name.isidentifier() or name in sys.modules:
        name = f"_harness_target_{zlib.crc32(path.encode()):08x}_{name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot import {path}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        raise LoadError(f"importing {path} raised {_describe(exc, path)}") from None
    return module


def _dotted_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise LoadError(
                f"no module named {name!r} importable from {os.getcwd()} "
                "(give a path to a .py file, or run from the folder that holds the module)"
            ) from None
        raise LoadError(f"importing {name} raised {_describe(exc, None)}") from None
    except BaseException as exc:
        raise LoadError(f"importing {name} raised {_describe(exc, None)}") from None


def _attribute(module: ModuleType, module_name: str, dotted: str) -> Callable[..., Any]:
    obj: Any = module
    for part in dotted.split("."):
        if not hasattr(obj, part):
            raise LoadError(f"{module_name} has no function {dotted!r}{_did_you_mean(obj, part)}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise LoadError(f"{module_name}:{dotted} is a {type(obj).__name__}, not a function")
    fn: Callable[..., Any] = obj
    return fn


def _did_you_mean(obj: object, name: str) -> str:
    names = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
    # Suggest what the module defines, not what it imported (Any, Iterator, datetime...).
    home = getattr(obj, "__name__", None)
    own = [n for n in names if getattr(getattr(obj, n), "__module__", None) == home]
    names = own or names
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return " (did you mean " + ", ".join(repr(c) for c in close) + "?)"
    return f" (it has: {', '.join(names[:10])})" if names else ""


def check_inputs(fn: Callable[..., Any], inputs: dict[str, Any], name: str) -> None:
    """Bind the inputs before calling, so that a TypeError here is the caller's mistake and a
    TypeError from the call itself is the function's own."""
    import inspect  # only on the first run: it is the slowest import of the worker

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # some builtins have no signature: let the call itself decide
    try:
        sig.bind(**inputs)
    except TypeError as exc:
        bare = sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
        given = ", ".join(inputs) or "none"
        why = _misfit(sig, inputs) or str(exc)
        raise LoadError(
            f"cannot call {name}{bare} with the inputs given ({given}): {why}"
        ) from None


def _misfit(sig: inspect.Signature, inputs: dict[str, Any]) -> str:
    """Every input the function does not take and every argument it lacks, not just the first."""
    params = sig.parameters.values()
    named = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    unexpected = [k for k in inputs if k not in named and not takes_any]
    missing = [n for n, p in named.items() if p.default is p.empty and n not in inputs]
    parts = [
        f"{label} {', '.join(repr(n) for n in names)}"
        for label, names in (("unexpected input", unexpected), ("missing input", missing))
        if names
    ]
    return "; ".join(parts)


# -- describing failures ----------------------------------------------------------------------


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return shorten(text, _MAX_TEXT)


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe(exc: BaseException, user_file: str | None) -> str:
    """``Type: message (at file:line)`` for load errors, which are one line for the user."""
    message = _safe_str(exc)
    text = f"{_type_name(exc)}: {message}" if message else _type_name(exc)
    where = _where(exc, user_file)
    return f"{text} (at {where['where']})" if where else text


def _where(exc: BaseException, user_file: str | None) -> dict[str, str] | None:
    """The last traceback frame in the user's file (else the last one outside this worker):
    the line the user has to look at, not the library line that raised."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename != __file__ and not f.filename.startswith("<frozen ")
    ]
    mine = [f for f in frames if f.filename == user_file]
    if isinstance(exc, SyntaxError) and exc.filename:
        return {"where": f"{_short(exc.filename)}:{exc.lineno}", "line": (exc.text or "").strip()}
    if not (mine or frames):
        return None
    f = (mine or frames)[-1]
    return {"where": f"{_short(f.filename)}:{f.lineno} in {f.name}", "line": f.line or ""}


def _short(path: str) -> str:
    rel = os.path.relpath(path) if os.path.isabs(path) else path
    return path if rel.startswith("..") else rel


def raised_report(exc: BaseException, user_file: str | None, items: int) -> dict[str, Any]:
    report: dict[str, Any] = {
        "type": _type_name(exc),
        "message": _safe_str(exc),
        "items": items,
    }
    report.update(_where(exc, user_file) or {})
    return report


def _safe_repr(obj: object) -> str:
    try:
        return _one_line(repr(obj))
    except Exception as exc:  # a broken __repr__ must not take the worker down
        return f"<{type(obj).__name__} object; repr() raised {_type_name(exc)}>"


def _safe_str(exc: BaseException) -> str:
    try:
        return _one_line(str(exc))
    except Exception:  # a broken __str__ must not take the worker down
        return "(its message could not be read)"


# -- running ----------------------------------------------------------------------------------


def _dumps(item: object) -> bytes:
    return json.dumps(item, ensure_ascii=False, allow_nan=False).encode("utf-8")


def json_size_floor(item: object, limit: int) -> int:
    """A lower bound on ``len(_dumps(item))``, found without building the text; the walk stops
    as soon as the bound passes ``limit``.

    It counts each character of a string as one byte and each number by its fewest digits, so
    it never overestimates; and while it stays within the limit the real text is at most a few
    times larger (escapes, UTF-8, float digits), so serialising the item is then safe.  A walk,
    not the length of the largest string: a list holding one 1 KiB string a million times is a
    few MB in memory and a gigabyte as JSON.  The walk keeps its own stack (no recursion limit:
    nesting cannot cut it short) of at most about ``limit`` entries, since every value pushed
    has been counted as one byte at least.  A long list of strings or of numbers -- the shape of
    nearly every large item -- is counted in C (``set(map(type, ...))``, ``sum(map(len, ...))``).
    """
    total = 0
    walking: set[int] = set()  # the containers around the current one: a cycle is left to dumps
    stack: list[Any] = [item]
    while stack and total <= limit:
        obj = stack.pop()
        kind = type(obj)
        if kind is str:
            total += len(obj) + 2
        elif kind is _Done:
            walking.discard(obj.key)
        elif kind is dict or kind is list or kind is tuple or isinstance(obj, dict | list | tuple):
            key = id(obj)
            if key in walking:
                continue
            n = len(obj)
            if n > limit:
                return total + n
            walking.add(key)
            stack.append(_Done(key))
            if n <= _SMALL:  # the usual item: a few keys, strings and numbers, in a plain loop
                total += n + 1  # brackets and commas
                if isinstance(obj, dict):
                    for name in obj:  # quoted, and a colon
                        total += len(name) + 3 if type(name) is str else _leaf_floor(name) + 1
                    obj = obj.values()
                for v in obj:
                    if type(v) is str:
                        total += len(v) + 2
                    else:
                        stack.append(v)
                continue
            parts = [list(obj), list(obj.values())] if isinstance(obj, dict) else [obj]
            for values in parts:  # keys and values as two lists: still a floor
                total, rest = _count_values(values, total, limit)
                stack.extend(rest)
        else:
            total += _leaf_floor(obj)
    return total


class _Done:
    """On the walk's stack: the container ``key`` has been walked (it may appear again)."""

    __slots__ = ("key",)

    def __init__(self, key: int) -> None:
        self.key = key


def _count_values(values: Sequence[Any], total: int, limit: int) -> tuple[int, Sequence[Any]]:
    """Count a container's values where C can; the new total and the values left to walk."""
    n = len(values)
    total += n + 1  # brackets and commas
    if total > limit:
        return total, ()
    kinds = set(map(type, values))
    if kinds == {str}:
        return total + sum(map(len, values)) + 2 * n, ()
    if kinds <= {int, bool}:  # a digit or more each, and fewer than 77/256 a bit, never
        return total + max(n, sum(map(int.bit_length, values)) * 77 >> 8), ()
    if kinds <= _SCALARS and int not in kinds:  # at most 24 characters each
        return total + n, ()
    return total, values


_SCALARS: Final = frozenset({int, float, bool, type(None)})
_SMALL: Final = 16


def _leaf_floor(obj: object) -> int:
    if isinstance(obj, str):
        return len(obj) + 2
    if obj is None or isinstance(obj, bool):
        return 4
    if isinstance(obj, int):
        return max(1, obj.bit_length() * 77 >> 8)  # 77/256 < log10(2): fewest decimal digits
    if isinstance(obj, float):
        return 3  # "0.0"
    return 0  # not JSON: json.dumps raises, and the item is not-serializable


class Run:
    """One call of the target: drives the iterator and reports what it yields."""

    def __init__(
        self, channel: Channel, user_file: str | None, request: dict[str, Any], memory_limit: int
    ) -> None:
        self.channel = channel
        self.user_file = user_file
        self.max_events: int = request["max_events"]
        self.max_event_bytes: int = request.get("max_event_bytes") or sys.maxsize
        self.memory_limit = memory_limit
        self.items = 0

    def emit(self, item: object) -> bool:
        """Send one item as a gateway would serialise it; False (and reported) if it cannot."""
        limit = self.max_event_bytes
        try:
            floor = json_size_floor(item, limit)
            text = b"" if floor > limit else _dumps(item)
        except MemoryError:
            raise  # the run's report: gen.memory
        except Exception as exc:  # TypeError, ValueError (NaN, circular), UnicodeEncodeError
            self.channel.send_json(
                b"not-serializable",
                {
                    "index": self.items,
                    "repr": _safe_repr(item),
                    "type": type(item).__name__,
                    "error": f"{_type_name(exc)}: {_safe_str(exc)}",
                },
            )
            return False
        if floor > limit or len(text) > limit:
            exact = floor <= limit
            self.channel.send_json(
                b"too-large",
                {
                    "index": self.items,
                    "type": type(item).__name__,
                    "bytes": len(text) if exact else floor,
                    "exact": exact,
                    "limit": limit,
                },
            )
            return False
        self.channel.send(b"item", text)
        self.items += 1
        return True

    def raised(self, exc: BaseException) -> None:
        if isinstance(exc, MemoryError):
            return self.out_of_memory(exc)
        self.channel.send_json(b"raised", raised_report(exc, self.user_file, self.items))
        return None

    def out_of_memory(self, exc: MemoryError) -> None:
        """Report a MemoryError (the run's end: the parent restarts this process after it)."""
        report: dict[str, Any] = {"items": self.items, "limit": self.memory_limit}
        try:
            report.update(_where(exc, self.user_file) or {})
            del exc  # its traceback holds the frames that hold the memory
            self.channel.send_json(b"memory", report)
        except MemoryError:  # too little left even for the report: a message built in advance
            os.write(self.channel.fd, _OUT_OF_MEMORY)

    def sync(self, it: Iterator[Any]) -> None:
        while self.items < self.max_events:
            try:
                item = next(it)
            except StopIteration:
                break
            except BaseException as exc:  # SystemExit and KeyboardInterrupt are the user's too
                return self.raised(exc)
            if not self.emit(item):
                return _close_quietly(it)
        else:
            try:  # max_events reached: let the generator run its finally blocks
                _close(it)
            except BaseException as exc:
                return self.raised(exc)
        self.channel.send(b"end")

    async def async_(self, ait: AsyncIterator[Any]) -> None:
        while self.items < self.max_events:
            try:
                item = await ait.__anext__()
            except StopAsyncIteration:
                break
            except BaseException as exc:
                return self.raised(exc)
            if not self.emit(item):
                # One problem, one report: the item that could not be sent.
                with contextlib.suppress(BaseException):
                    await _aclose(ait)
                return None
        else:
            try:
                await _aclose(ait)
            except BaseException as exc:
                return self.raised(exc)
        self.channel.send(b"end")
        return None


def _close(it: object) -> None:
    close = getattr(it, "close", None)
    if callable(close):
        close()


def _close_quietly(it: object) -> None:
    with contextlib.suppress(BaseException):  # one problem, one report: the unsendable item
        _close(it)


async def _aclose(ait: object) -> None:
    aclose = getattr(ait, "aclose", None)
    if callable(aclose):
        await aclose()


def handle(
    request: dict[str, Any], loader: Loader, channel: Channel, memory_limit: int = 0
) -> None:
    """One request: ``"op": "inspect"`` describes functions, anything else is a run."""
    if request.get("op") == "inspect":
        return inspect_module(request, loader, channel)
    return serve(request, loader, channel, memory_limit)


def serve(request: dict[str, Any], loader: Loader, channel: Channel, memory_limit: int = 0) -> None:
    """Handle one run request, ending with exactly one terminal message."""
    target: str = request["target"]
    inputs: dict[str, Any] = request["inputs"]
    try:
        fn, user_file = loader.function(request)
        check_inputs(fn, inputs, request["function"])
    except LoadError as exc:
        return channel.send_json(b"load-error", {"message": str(exc)})
    except BaseException as exc:  # e.g. a module __getattr__ that raises
        message = f"loading {target} raised {_describe(exc, None)}"
        return channel.send_json(b"load-error", {"message": message})
    run = Run(channel, user_file, request, memory_limit)
    channel.send(b"call")
    try:
        _call(fn, inputs, target, run)
    except MemoryError as exc:  # in the worker's own code, serialising what the function made
        run.out_of_memory(exc)


def _call(fn: Callable[..., Any], inputs: dict[str, Any], target: str, run: Run) -> None:
    try:
        result = fn(**inputs)
    except BaseException as exc:
        return run.raised(exc)
    if isinstance(result, Iterator):
        return run.sync(result)
    if isinstance(result, AsyncIterator):
        import asyncio  # only for async targets: it is a large import

        return asyncio.run(run.async_(result))
    return _not_iterator(result, target, run.channel)


def _not_iterator(result: object, target: str, channel: Channel) -> None:
    close = getattr(result, "close", None)
    if type(result).__name__ == "coroutine" and callable(close):
        close()  # never awaited on purpose: no "coroutine was never awaited" warning
    channel.send_json(
        b"not-iterator",
        {"type": type(result).__name__, "repr": _safe_repr(result), "target": target},
    )


# -- inspecting --------------------------------------------------------------------------------

#: Return annotations that make an ordinary function a stream (it returns an iterator).
_ITERATOR_RETURN = (
    r"^(?:typing\.|collections\.abc\.|t\.)?(?:Iterator|Generator|AsyncIterator|AsyncGenerator)\b"
)


def inspect_module(request: dict[str, Any], loader: Loader, channel: Channel) -> None:
    """Describe the functions ``request["names"]`` of a module: one ``functions`` message
    (``null`` for a name with nothing callable behind it), or ``load-error``."""
    try:
        module = loader.module(request)
    except LoadError as exc:
        return channel.send_json(b"load-error", {"message": str(exc)})
    except BaseException as exc:
        message = f"loading {request['target']} raised {_describe(exc, None)}"
        return channel.send_json(b"load-error", {"message": message})
    functions: dict[str, Any] = {}
    for name in request["names"]:
        try:
            obj = getattr(module, name, None)
        except Exception:  # a module __getattr__ that raises: nothing usable under that name
            obj = None
        functions[name] = describe_callable(name, obj) if callable(obj) else None
    channel.send_json(b"functions", {"functions": functions, "available": _public(module)})


def _public(module: ModuleType) -> list[str]:
    """The module's own public callables (not what it imported), for "did you mean"."""
    home = module.__name__
    names = []
    for name, obj in list(vars(module).items()):
        if not name.startswith("_") and callable(obj) and getattr(obj, "__module__", None) == home:
            names.append(name)
    return sorted(names)


def describe_callable(name: str, obj: Callable[..., Any]) -> dict[str, Any]:
    """Kind (generator, async-generator, iterator, function, coroutine, class, other) and the
    parameters, as ``harness._contracts.manifest.FunctionInfo.from_json`` reads them."""
    import inspect

    try:
        sig: inspect.Signature | None = inspect.signature(obj)
    except (TypeError, ValueError):
        sig = None
    params = None
    text = ""
    if sig is not None:
        params = [
            {
                "name": p.name,
                "kind": p.kind.name,
                "has_default": p.default is not p.empty,
                "default": None if p.default is p.empty else _safe_repr(p.default),
            }
            for p in sig.parameters.values()
        ]
        bare = sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
        text = str(bare)
    return {"name": name, "kind": _kind(obj, sig), "parameters": params, "signature": text}


def _kind(obj: Callable[..., Any], sig: inspect.Signature | None) -> str:
    import inspect
    import re

    if inspect.isclass(obj):
        return "class"
    try:
        inner = inspect.unwrap(obj)  # a decorator with functools.wraps keeps the generator
    except ValueError:
        inner = obj
    call = type(obj).__call__ if callable(obj) else None
    candidates = [obj, inner] if inspect.isroutine(obj) else [obj, inner, call]
    for f in candidates:
        if inspect.isasyncgenfunction(f):
            return "async-generator"
        if inspect.isgeneratorfunction(f):
            return "generator"
    if sig is not None and sig.return_annotation is not sig.empty:
        ann = sig.return_annotation
        shown = ann if isinstance(ann, str) else getattr(ann, "__qualname__", None) or repr(ann)
        if re.match(_ITERATOR_RETURN, str(shown)):
            return "iterator"
    if any(inspect.iscoroutinefunction(f) for f in candidates):
        return "coroutine"
    return "function" if inspect.isroutine(inner) else "other"


# -- the process ------------------------------------------------------------------------------


def _limit_memory(limit: int) -> int:
    """Cap the address space so a runaway generator meets MemoryError, not the OOM killer; the
    cap in bytes (0: none).

    The hard limit is lowered to the soft one: a process cannot raise its hard limit without
    privileges (CAP_SYS_RESOURCE), so the user's code cannot lift the cap, only lower it.
    """
    capped = 0
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if limit > 0:
            capped = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (capped, capped))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfault should not dump GiBs
    except (ImportError, ValueError, OSError):
        pass  # not every platform supports these limits; the timeouts still hold
    return capped


def _watch_parent(parent: int, gone: Callable[[], None]) -> None:
    """Call ``gone`` when the parent has gone away (it was killed and could not clean up)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        gone()

    threading.Thread(target=watch, name="harness-parent-watch", daemon=True).start()


def _kill_own_group() -> NoReturn:
    """No orphans: this process and anything the user's code started, at once."""
    try:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    finally:
        os._exit(1)


# -- the supervisor ---------------------------------------------------------------------------
#
# The process the harness starts forks at once: the child runs the protocol and the user's
# code, the first process (the supervisor) runs nothing but the code below.  It is the child
# subreaper of everything below it (Linux), so a double-forked daemon -- in a session of its
# own, out of reach of a process-group kill, holding the protocol pipes open -- is reparented
# to it, and once the worker has ended, for whatever reason, the supervisor kills what is left
# and exits with the worker's status.  The harness learns of the end from that exit, not from
# the pipes, and stops a run by SIGTERM to the supervisor, which kills the worker first.

_PR_SET_CHILD_SUBREAPER = 36
_CLEANUP_S = 2.0


def _become_subreaper() -> bool:
    """Make orphaned descendants this process's children rather than init's (Linux >= 3.4)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _supervise(worker: int, harness: int) -> NoReturn:
    """Wait for the worker, kill what it left behind, exit with its status; never returns."""

    def stop(_signum: int, _frame: object) -> None:
        if _unreaped(worker):  # once reaped, its pid may name someone else
            os.kill(worker, signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    if harness:
        _watch_parent(harness, lambda: os.kill(os.getpid(), signal.SIGTERM))
    status = _wait_for(worker)
    _kill_descendants(time.monotonic() + _CLEANUP_S)
    _exit_like(status)


def _unreaped(pid: int) -> bool:
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _wait_for(worker: int) -> int:
    while True:
        try:
            pid, status = os.wait()  # reaps the orphans that end meanwhile, too
        except ChildProcessError:
            return 0
        if pid == worker:
            return status


def _kill_descendants(deadline: float) -> None:
    """SIGKILL this process's children until none is left: each one killed hands its own
    children to us, the subreaper.  Bounded, for a process that cannot die (stuck in I/O)."""
    while time.monotonic() < deadline:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass  # reap all that have ended
        except ChildProcessError:
            return  # no children left
        for pid in _children():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.002)


def _children() -> list[int]:
    me = os.getpid()
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{me}/task"):
            with open(f"/proc/{me}/task/{task}/children", "rb") as f:
                found.extend(int(pid) for pid in f.read().split())
        return found
    except (FileNotFoundError, ProcessLookupError):
        return _children_by_scan(me)  # a kernel without CONFIG_PROC_CHILDREN
    except OSError:
        return found


def _children_by_scan(parent: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()  # the name in (...) may hold spaces
            if len(fields) > 1 and int(fields[1]) == parent:
                found.append(int(name))
    return found


def _exit_like(status: int) -> NoReturn:
    """End this process the way the worker ended: same exit code, or killed by the same signal."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1.0)  # the signal's default action ends us; this is its time to arrive
    os._exit(code if code >= 0 else 128 - code)


# -- the worker -------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness._runners.worker", description=__doc__)
    p.add_argument("--cmd-fd", type=int, required=True)
    p.add_argument("--out-fd", type=int, required=True)
    p.add_argument("--parent-pid", type=int, default=0)
    p.add_argument("--memory-limit", type=int, default=0, help="bytes of address space; 0: none")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    for fd in (args.cmd_fd, args.out_fd):
        os.set_inheritable(fd, False)  # processes the user starts must not hold our pipes open
    memory_limit = _limit_memory(args.memory_limit)
    parent = args.parent_pid
    if _become_subreaper():
        worker = os.fork()
        if worker:
            os.close(args.cmd_fd)  # only the worker talks to the harness
            os.close(args.out_fd)
            _supervise(worker, parent)
        parent = os.getppid()  # the supervisor: if it dies, so do we
    if parent:
        _watch_parent(parent, _kill_own_group)
    channel, loader = Channel(args.out_fd), Loader()
    try:
        channel.send(b"ready", str(os.getpid()).encode())
        with os.fdopen(args.cmd_fd, "rb") as commands:
            for line in commands:
                handle(json.loads(line), loader, channel, memory_limit)
    except BrokenPipeError:
        pass  # the parent went away: nothing left to report to
    except OSError as exc:  # EBADF: the user's code closed or replaced one of our pipes
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(
                f"stream-harness worker: the pipe to the harness failed ({exc}); "
                "did the generator close it?\n"
            )
        return 1
    except MemoryError:  # outside any run: nothing to attribute it to but the process
        with contextlib.suppress(OSError):
            os.write(args.out_fd, _OUT_OF_MEMORY)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
