"""``stream-harness openapi SPEC``: property tests of every streaming operation of an OpenAPI
document.

SPEC is a file (JSON or YAML) or a URL (FastAPI serves one at ``/openapi.json``).  Each
streaming operation -- or each named with ``--operation`` -- is driven with generated
requests (Hypothesis) and every stream checked against its contract and the document; each
failure is shrunk to a minimal request, with a ``stream-harness check`` and a ``curl -N``
line that replay it.  Then requests that break the schema must be answered with a 4xx or a
failure event.  Exit codes as ``check``: 0 conforms, 1 a finding, 2 usage (a broken document
names its JSON pointer), 3 unreachable.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.markup import escape

from harness._cli.flags import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_VIOLATION,
    _header,
    _positive_int,
    add_network_options,
    add_report_options,
    add_stream_limit_options,
    add_strict_option,
    add_threshold_option,
    announce_report,
    default,
    flag_type,
    network,
    report_dir,
    stream_limits,
    thresholds,
)
from harness._cli.manifest import ProgressDisplay, print_function
from harness._core.config import integer
from harness._core.options import CheckOptions
from harness._report.transcript import print_violation

if TYPE_CHECKING:  # the engine imports Hypothesis: only when the command runs
    from harness._core.results import OpenAPIResult, OperationReport

__all__ = ["register", "render_openapi_text"]


def register(sub: Any) -> None:
    o = sub.add_parser(
        "openapi",
        help="property-test every streaming operation of an OpenAPI document",
        description="Read an OpenAPI 3.0/3.1/3.2 document (a file, or a URL such as "
        "FastAPI's /openapi.json), drive each streaming operation with generated requests "
        "(Hypothesis) and check every stream against its contract and the document; each "
        "failure is shrunk to a minimal request, with the commands that replay it. Requests "
        "that break the schema must get a 4xx or a failure event. "
        "Exit 0 conforms, 1 a finding, 2 usage error, 3 unreachable.",
    )
    o.add_argument("spec", metavar="SPEC", help="openapi.json / openapi.yaml, or its URL")
    o.add_argument(
        "--base-url",
        metavar="URL",
        help="where the API is (default: the document's first server, or the origin of SPEC "
        "when it is a URL)",
    )
    o.add_argument(
        "--operation",
        action="append",
        default=[],
        metavar="ID|'METHOD /path'",
        help="test only this operation (repeatable); also one the document does not "
        "describe as a stream, with --contract",
    )
    o.add_argument(
        "--contract",
        action="append",
        default=[],
        metavar="NAME|FILE|OP=NAME",
        help="the contract for every operation, or OP=NAME for one (repeatable); default: "
        "the operation's x-stream-contract, else the document's itemSchema and framing",
    )
    o.add_argument(
        "--examples",
        type=_positive_int,
        metavar="N",
        help=f"generated requests per operation ({default('examples')})",
    )
    o.add_argument(
        "--seed", type=flag_type(integer), help="Hypothesis seed, for a reproducible run"
    )
    o.add_argument(
        "--database",
        type=Path,
        default=Path(".hypothesis"),
        metavar="DIR",
        help="where found failures are kept, to be tried first next time (default: %(default)s)",
    )
    o.add_argument("--no-database", action="store_true", help="keep no failures between runs")
    o.add_argument(
        "--no-invalid-inputs",
        action="store_true",
        help="do not send requests that break the schema",
    )
    o.add_argument(
        "--header",
        action="append",
        type=_header,
        default=[],
        metavar="'K: V'",
        help="sent with every request, e.g. the credentials a security scheme asks for "
        "(repeatable; also used to fetch a SPEC URL)",
    )
    o.add_argument("--format", choices=["text", "json"], default="text")
    o.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    add_strict_option(o)
    add_stream_limit_options(o, per="per request")
    add_network_options(o)
    add_threshold_option(o)
    add_report_options(o, "openapi")
    o.set_defaults(run=_cmd_openapi)


def _cmd_openapi(ns: argparse.Namespace) -> int:
    from harness._proptest.openapi import run_openapi

    options = CheckOptions(
        **stream_limits(ns),
        headers=tuple(ns.header),
        thresholds=thresholds(ns),
        network=network(ns),
    )
    directory = report_dir(ns, "openapi")
    color = {"auto": None, "always": True, "never": False}[ns.color]
    with ProgressDisplay(sys.stderr) as progress:
        result = run_openapi(
            ns.spec,
            options,
            base_url=ns.base_url,
            operations=ns.operation,
            contracts=ns.contract,
            max_examples=ns.examples,
            seed=ns.seed,
            database=None if ns.no_database else ns.database,
            invalid_inputs=not ns.no_invalid_inputs,
            on_event=progress.on_event,
        )
    if ns.strict:
        result.make_strict()
    if ns.format == "json":
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    else:
        render_openapi_text(result, sys.stdout, color=color)
    if directory is not None:
        from harness._core.redact import secret_values
        from harness._report.model import openapi_report
        from harness._report.write import write_report

        command = shlex.join(["stream-harness", *sys.argv[1:]])
        secrets = secret_values(options.headers, ns.base_url or ns.spec)
        write_report(openapi_report(result, command, secrets), directory)
        announce_report(directory)
    if result.interrupted:
        sys.stderr.write("stream-harness: interrupted; the report holds the operations finished\n")
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_VIOLATION


# -- text output ------------------------------------------------------------------------------


def render_openapi_text(result: OpenAPIResult, out: TextIO, *, color: bool | None = None) -> None:
    """The verdict for people: each operation's findings, the skipped ones with the reason."""
    console = Console(
        file=out, highlight=False, soft_wrap=True, force_terminal=color, no_color=color is False
    )
    seed = f" · seed {result.seed}" if result.seed is not None else ""
    console.print(
        f"[bold]{escape(result.spec)}[/] → [bold]{escape(result.base_url)}[/]  "
        f"[dim](up to {result.max_examples} examples per operation{seed})[/]"
    )
    for v in result.violations:
        print_violation(console, v, "  ")
    for op in result.operations:
        _print_operation(console, op)
    for label, reason in result.skipped:
        console.print(f"  [yellow]-[/] [bold]{escape(label)}[/]  [dim]skipped: {escape(reason)}[/]")
    if result.not_streaming:
        n = result.not_streaming
        console.print(
            f"  [dim]{n} operation{'s' * (n != 1)} without a streaming response not tested "
            "(name one with --operation and --contract)[/]"
        )
    console.print(_verdict(result))


def _print_operation(console: Console, op: OperationReport) -> None:
    ident = f" ({op.operation_id})" if op.operation_id else ""
    rejected = f" · {op.rejected} rejected with a documented 4xx" if op.rejected else ""
    console.print(
        f"  [dim]{escape(op.operation)}{escape(ident)} · contract {escape(op.contract)}"
        f"{rejected}[/]"
    )
    print_function(console, op.report)


def _verdict(result: OpenAPIResult) -> str:
    ops = result.operations
    failed = sum(not o.ok for o in ops)
    everything = list(result.violations) + [v for o in ops for v in o.violations]
    errors = sum(v.is_error for v in everything)
    warnings = len(everything) - errors
    head = "[bold green]PASS[/]" if result.ok else "[bold red]FAIL[/]"
    counts = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    if not ops:
        tested = "nothing was tested"
    elif failed:
        tested = f"{failed} of {len(ops)} operations failed"
    else:
        tested = f"{len(ops)} operation{'s' * (len(ops) != 1)} conform"
    skipped = f" · {len(result.skipped)} skipped" if result.skipped else ""
    examples = sum(o.examples for o in ops)
    seconds = result.duration_ms / 1000
    return f"{head}  {tested}{skipped} · {counts} · {examples} examples · {seconds:.1f} s"
