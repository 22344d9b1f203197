"""The ``stream-harness`` command line.

Exit codes (public interface): 0 conforms (warnings allowed), 1 a violation of severity error,
2 usage or configuration error, 3 target unreachable.  The verdict goes to stdout; diagnostics
go to stderr, one line each, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from harness import __version__
from harness._cli.config import apply_config, read_config
from harness._cli.flags import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VIOLATION,
    _header,
    _load_json,
    _positive_float,
    _positive_int,
    _read,
    add_network_options,
    add_report_options,
    add_stream_limit_options,
    add_strict_option,
    add_threshold_option,
    announce_report,
    default,
    network,
    report_dir,
    stream_limits,
    thresholds,
)
from harness._core.config import COMMANDS
from harness._core.errors import HarnessError, UsageError
from harness._core.options import CheckOptions

if TYPE_CHECKING:
    pass

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit 2 (not a usage dump)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"stream-harness: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _build_parser() -> _Parser:
    p = _Parser(
        prog="stream-harness",
        description="Conformance tests for streaming endpoints and generator functions.",
    )
    p.add_argument("--version", action="version", version=f"stream-harness {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    c = sub.add_parser(
        "check",
        help="check one stream against a contract",
        description="Check one stream — a URL, a module:function generator, or a recorded "
        ".sse / .ndjson / .jsonl file — against a contract. Exit 0 conforms, 1 violation, "
        "2 usage error, 3 target unreachable.",
    )
    c.add_argument(
        "target",
        help="https://…/invoke/fn, path/to/module.py:function, or a recording x.sse / x.ndjson",
    )
    c.add_argument(
        "--contract",
        help="a built-in contract (stream-harness contracts) or a .yaml/.json contract file "
        f"({default('contract')})",
    )
    c.add_argument(
        "--inputs",
        metavar="JSON",
        help='function inputs as a JSON object (URLs: POSTed as {"inputs": …}); @file reads a file',
    )
    c.add_argument("--method", help="HTTP method (default: POST with --inputs/--body, else GET)")
    c.add_argument(
        "--header", action="append", type=_header, default=[], metavar="'K: V'", help="repeatable"
    )
    c.add_argument("--body", metavar="JSON", help="raw JSON request body (instead of --inputs)")
    c.add_argument("--format", choices=["text", "json"], default="text")
    add_stream_limit_options(c)
    c.add_argument(
        "--resume-after",
        type=_positive_int,
        metavar="K",
        help="read K events, drop the connection, resume with Last-Event-ID",
    )
    c.add_argument(
        "--max-retry-wait", type=_positive_float, metavar="S", help=f"({default('max-retry-wait')})"
    )
    c.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    add_strict_option(c)
    add_network_options(c)
    add_threshold_option(c)
    add_report_options(c, "check")

    r = sub.add_parser("rules", help="list the rule catalog")
    r.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    c.set_defaults(run=_cmd_check)
    r.set_defaults(run=_cmd_rules)
    for module in _command_modules():
        module.register(sub)
    return p


def _command_modules() -> list[Any]:
    """The modules that each add one subcommand with ``register(sub)``, which calls
    ``sub.add_parser(...)`` and ``set_defaults(run=fn)`` with ``fn(ns) -> int``.  Registered
    explicitly, here: one list, no discovery by module name."""
    from harness._cli import contracts, demo, load, manifest, openapi, serve, worker

    return [contracts, demo, load, manifest, openapi, serve, worker]


def _options(ns: argparse.Namespace) -> CheckOptions:
    inputs = None
    if ns.inputs is not None:
        inputs = _load_json("--inputs", ns.inputs)
        if not isinstance(inputs, dict):
            raise UsageError(f"--inputs must be a JSON object, got {type(inputs).__name__}")
    if ns.body is not None:
        _load_json("--body", ns.body)  # validate early, send as given
    return CheckOptions(
        contract=ns.contract,
        **stream_limits(ns),
        resume_after=ns.resume_after,
        max_retry_wait=ns.max_retry_wait,
        method=ns.method.upper() if ns.method else None,
        headers=tuple(ns.header),
        body=ns.body if ns.body is None or not ns.body.startswith("@") else _read(ns.body),
        inputs=inputs,
        thresholds=thresholds(ns),
        network=network(ns),
        strict=ns.strict,
    )


def _cmd_check(ns: argparse.Namespace) -> int:
    from harness._core.redact import secret_values
    from harness._report.model import check_report
    from harness._report.transcript import render_json, render_text
    from harness._report.write import write_report
    from harness._runners.check import check

    options = _options(ns)
    directory = report_dir(ns, "check")
    result = check(ns.target, options)
    if ns.format == "json":
        render_json(result, sys.stdout)
    else:
        color = {"auto": None, "always": True, "never": False}[ns.color]
        render_text(result, sys.stdout, color=color)
    if directory is not None:
        secrets = secret_values(options.headers, ns.target)
        command = shlex.join(["stream-harness", *sys.argv[1:]])
        write_report(check_report(result, command, secrets), directory)
        announce_report(directory)
    if result.extra.get("interrupted"):
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_VIOLATION


def _cmd_rules(ns: argparse.Namespace) -> int:
    from harness._contracts.catalog import all_rules, rules_markdown

    if ns.format == "markdown":
        sys.stdout.write(rules_markdown())
    elif ns.format == "json":
        rows = [
            {
                "id": r.id,
                "severity": r.severity.value,
                "summary": r.summary,
                "explanation": r.explanation,
            }
            for r in all_rules()
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        width = max(len(r.id) for r in all_rules())
        for r in all_rules():
            sys.stdout.write(f"{r.id:<{width}}  {r.severity.value:<7}  {r.summary}\n")
    return EXIT_OK


def _tune_gc() -> None:
    """Collect garbage at the pace of a stream checker, in a process of our own.

    A check allocates millions of small objects (events, parsed JSON) that die young; the
    collector's default young generation (700 objects) ran it every ~100 events and cost ``check``
    15 % of its time.  Every object alive after start-up (modules, the contract) is frozen out of
    the scans.  Cycles are rare here, and 50 000 pending objects are a few MB at most."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def main(argv: Sequence[str] | None = None) -> int:
    ns = _build_parser().parse_args(argv)
    if argv is None:  # the process's own command line (not a caller's, nor a test's process)
        _tune_gc()
    try:
        if ns.command in COMMANDS:
            apply_config(ns, read_config(ns.command))
        return int(ns.run(ns))
    except HarnessError as e:
        sys.stderr.write(f"stream-harness: error: {e}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("stream-harness: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # a bug of ours: still one line, and the way to see more
        if os.environ.get("STREAM_HARNESS_DEBUG"):
            raise
        sys.stderr.write(
            f"stream-harness: internal error: {type(e).__name__}: {e} (a bug in stream-harness; "
            "set STREAM_HARNESS_DEBUG=1 for the traceback)\n"
        )
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
