"""``stream-harness manifest MANIFEST --module PATH | --url URL``: manifest and property tests.

Validates the manifest, matches it against the module's functions (imported in the worker
process), then property-tests every streaming function -- in the worker, or over HTTP at
``{url}/invoke/{name}`` -- and prints, for each failure, the minimal input and a command that
reproduces it.  Exit codes as ``check``: 0 conforms, 1 a finding (the manifest's or a
function's), 2 usage (missing file, bad flag, a module that cannot load), 3 unreachable.
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
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

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
from harness._core.config import integer
from harness._core.options import CheckOptions
from harness._core.session import CheckResult
from harness._report.transcript import print_violation

if TYPE_CHECKING:  # the engine imports Hypothesis: only when the command runs
    from harness._proptest import Failure, FunctionReport, ManifestResult

__all__ = ["ProgressDisplay", "print_function", "register", "render_manifest_text"]

#: Events of a failing example shown in text output (the rest is one line).
_SHOWN_EVENTS = 8


def register(sub: Any) -> None:
    m = sub.add_parser(
        "manifest",
        help="validate a prefab manifest and property-test its streaming functions",
        description="Validate prefab-manifest.json, match it against the module's functions, "
        "then drive every streaming function with generated inputs (Hypothesis) and check each "
        "stream against the contract; each failure is shrunk to a minimal input, with a "
        "command that reproduces it. --module runs the functions in a worker process; --url "
        "tests a gateway over HTTP (POST {url}/invoke/{name}), including invalid inputs; with "
        "neither, only the manifest is validated. "
        "Exit 0 conforms, 1 a finding, 2 usage error, 3 unreachable.",
    )
    m.add_argument("manifest", type=Path, help="path to prefab-manifest.json")
    m.add_argument("--module", help="the functions' module: src/main.py or a dotted name")
    m.add_argument(
        "--url",
        help="the gateway's base URL (functions at {url}/invoke/{name}; a {name} placeholder "
        "in the URL is replaced instead)",
    )
    m.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="NAME",
        help="test only this function (repeatable)",
    )
    m.add_argument(
        "--examples",
        type=_positive_int,
        metavar="N",
        help=f"generated inputs per function ({default('examples')})",
    )
    m.add_argument(
        "--seed", type=flag_type(integer), help="Hypothesis seed, for a reproducible run"
    )
    m.add_argument(
        "--database",
        type=Path,
        default=Path(".hypothesis"),
        metavar="DIR",
        help="where found failures are kept, to be tried first next time (default: %(default)s)",
    )
    m.add_argument("--no-database", action="store_true", help="keep no failures between runs")
    m.add_argument(
        "--no-invalid-inputs",
        action="store_true",
        help="over HTTP, do not send requests with invalid inputs",
    )
    m.add_argument("--contract", help=f"contract to check ({default('contract')})")
    m.add_argument(
        "--header", action="append", type=_header, default=[], metavar="'K: V'", help="URLs only"
    )
    m.add_argument("--format", choices=["text", "json"], default="text")
    m.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    add_strict_option(m)
    add_stream_limit_options(m, per="per example")
    add_network_options(m)
    add_threshold_option(m)
    add_report_options(m, "manifest")
    m.set_defaults(run=_cmd_manifest)


def _cmd_manifest(ns: argparse.Namespace) -> int:
    from harness._core.errors import UsageError
    from harness._core.urls import http_url
    from harness._proptest import run_manifest

    if ns.module is None and ns.url is None:
        return _validate_only(ns)
    if ns.header and ns.url is None:
        raise UsageError("--header only applies with --url")
    if ns.url is not None:
        http_url(ns.url, "--url")
    options = CheckOptions(
        contract=ns.contract,
        **stream_limits(ns),
        headers=tuple(ns.header),
        thresholds=thresholds(ns),
        network=network(ns),
    )
    directory = report_dir(ns, "manifest")
    color = {"auto": None, "always": True, "never": False}[ns.color]
    with ProgressDisplay(sys.stderr) as progress:
        result = run_manifest(
            ns.manifest,
            options,
            module=ns.module,
            url=ns.url,
            max_examples=ns.examples,
            seed=ns.seed,
            database=None if ns.no_database else ns.database,
            functions=ns.function,
            invalid_inputs=not ns.no_invalid_inputs,
            on_event=progress.on_event,
        )
    if ns.strict:
        result.make_strict()
    if ns.format == "json":
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    else:
        render_manifest_text(result, sys.stdout, color=color)
    if directory is not None:
        from harness._core.redact import secret_values
        from harness._report.model import manifest_report
        from harness._report.write import write_report

        command = shlex.join(["stream-harness", *sys.argv[1:]])
        secrets = secret_values(options.headers, ns.url)
        write_report(manifest_report(result, command, secrets), directory)
        announce_report(directory)
    if result.interrupted:
        sys.stderr.write("stream-harness: interrupted; the report holds the functions finished\n")
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_VIOLATION


def _validate_only(ns: argparse.Namespace) -> int:
    """A manifest on its own (neither ``--module`` nor ``--url``): its schema, duplicate names,
    defaults and enums of the declared type -- a prefab author's check before any code exists."""
    from harness._contracts.manifest import load_manifest
    from harness._core.results import ManifestResult

    _manifest, found = load_manifest(ns.manifest)
    result = ManifestResult(str(ns.manifest), "(manifest only)", ns.contract or "prefab", found, [])
    if ns.format == "json":
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    else:
        color = {"auto": None, "always": True, "never": False}[ns.color]
        render_manifest_text(result, sys.stdout, color=color)
    return EXIT_OK if result.ok else EXIT_VIOLATION


# -- progress ---------------------------------------------------------------------------------


class ProgressDisplay:
    """A bar per function on a terminal (stderr); nothing at all otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.enabled = out.isatty()
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        if self.enabled:
            self.progress = Progress(
                TextColumn("[bold]{task.fields[name]:<24}"),
                BarColumn(),
                TextColumn("{task.completed:>4.0f}/{task.total:.0f} examples"),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=Console(file=out),
                transient=False,
            )

    def __enter__(self) -> ProgressDisplay:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def on_event(self, event: object) -> None:
        from harness._proptest import ExampleRun, FunctionFinished, FunctionStarted

        p = self.progress
        if p is None:
            return
        if isinstance(event, FunctionStarted):
            self.tasks[event.name] = p.add_task(
                "", total=event.max_examples, name=event.name, status=""
            )
        elif isinstance(event, ExampleRun):
            task = self.tasks[event.name]
            total = p.tasks[task].total or 0
            status = (
                f"[red]{event.failures} failing, shrinking…[/]" if event.failures else "[green]ok"
            )
            p.update(task, completed=min(event.runs, total), status=status)
        elif isinstance(event, FunctionFinished):
            report = event.report
            task = self.tasks[report.name]
            if report.skipped:
                status = "[yellow]skipped"
            elif report.ok:
                status = "[green]✓ conforms"
            else:
                status = f"[red]✗ {len(report.failures) or 'invalid inputs'} failing"
            p.update(task, completed=p.tasks[task].total, status=status)


# -- text output ------------------------------------------------------------------------------


def render_manifest_text(result: ManifestResult, out: TextIO, *, color: bool | None = None) -> None:
    """The verdict for people: the manifest's findings, then each function's."""
    console = Console(
        file=out, highlight=False, soft_wrap=True, force_terminal=color, no_color=color is False
    )
    seed = f" · seed {result.seed}" if result.seed is not None else ""
    console.print(
        f"[bold]{escape(result.manifest)}[/] → [bold]{escape(result.target)}[/]  "
        f"[dim](contract: {escape(result.contract)} · up to {result.max_examples} examples "
        f"per function{seed})[/]"
    )
    if result.violations:
        console.print("  [bold]manifest[/]")
        for v in result.violations:
            print_violation(console, v, "    ")
    else:
        matched = ", and it matches the module's functions" if result.matched else ""
        console.print(f"  [bold]manifest[/]  [green]✓[/] valid{matched}")
    for report in result.functions:
        print_function(console, report)
    console.print(_verdict(result))


def print_function(console: Console, report: FunctionReport) -> None:
    name = escape(report.name)
    seconds = f"{report.duration_ms / 1000:.1f} s"
    if report.skipped:
        console.print(f"  [yellow]-[/] [bold]{name}[/]  [dim]{escape(report.skipped)}[/]")
        return
    mark = "[green]✓[/]" if report.ok else "[bold red]✗[/]"
    n = len(report.failures)
    what = f"{n} failure{'s' * (n != 1)} · " if n else ""
    examples = f"{report.examples} example{'s' * (report.examples != 1)}"
    console.print(f"  {mark} [bold]{name}[/]  [dim]{what}{examples} · {seconds}[/]")
    for failure in report.failures:
        _print_failure(console, failure)
    for case in report.invalid_inputs:
        if not case.ok:
            console.print(f"      [bold]invalid inputs[/] ({escape(case.case)})")
            for v in case.violations:
                print_violation(console, v, "        ")
            if case.curl:
                console.print(f"        [dim]reproduce[/]  {escape(case.curl)}")
    for v in report.warnings:
        print_violation(console, v, "      ")
    for t in report.thresholds:
        value = "not measured" if t.value is None else f"{t.value:.1f}"
        mark = "[green]✓[/]" if t.ok else "[bold red]✗[/]"
        console.print(f"      {mark} threshold {escape(t.expr)}: {value}")


def _print_failure(console: Console, failure: Failure) -> None:
    from harness._proptest import json_text

    shown = failure.inputs if failure.request is None else failure.request
    inputs = json_text(shown)
    what = "inputs" if failure.request is None else "request"
    label = f"minimal {what}" if failure.shrunk else f"{what} (a hang is not shrunk)"
    found = (
        "" if failure.found_after is None else f" [dim](found at example {failure.found_after})[/]"
    )
    console.print(f"      [bold]{escape(failure.rule)}[/] with {label} {escape(inputs)}{found}")
    _print_stream(console, failure.result)
    console.print(f"        [dim]reproduce[/]  {escape(failure.reproducer)}")
    if failure.curl:
        console.print(f"        [dim]curl[/]       {escape(failure.curl)}")


def _print_stream(console: Console, result: CheckResult) -> None:
    entries = result.transcript
    for entry in entries[:_SHOWN_EVENTS]:
        console.print(
            f"        [dim]#{entry.index:<3}[/] [cyan]{escape(entry.kind):<9}[/] "
            f"{escape(entry.preview)}"
        )
        for v in entry.violations:
            print_violation(console, v, "             ")
    hidden = entries[_SHOWN_EVENTS:]
    if hidden:
        console.print(f"        [dim]… {len(hidden)} more events[/]")
        for entry in hidden:
            for v in entry.violations:
                console.print(f"        [dim]#{entry.index}[/]")
                print_violation(console, v, "             ")
    for v in result.violations:
        if v.event_index is None or not 0 <= v.event_index < len(entries):
            print_violation(console, v, "        ")


def _verdict(result: ManifestResult) -> str:
    functions = result.functions
    failed = sum(not f.ok for f in functions)
    everything = list(result.violations) + [v for f in functions for v in f.violations]
    errors = sum(v.is_error for v in everything)
    warnings = len(everything) - errors
    head = "[bold green]PASS[/]" if result.ok else "[bold red]FAIL[/]"
    counts = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    tested = (
        f"{failed} of {len(functions)} functions failed"
        if failed
        else (f"{len(functions)} function{'s' * (len(functions) != 1)} conform")
    )
    examples = sum(f.examples for f in functions)
    return f"{head}  {tested} · {counts} · {examples} examples · {result.duration_ms / 1000:.1f} s"
