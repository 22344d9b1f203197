"""Writers for a check's result: the transcript people read and the JSON CI parses."""

from __future__ import annotations

import json
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from harness._core.rules import Severity, Violation
from harness._core.session import CheckResult, TranscriptEntry

__all__ = ["print_violation", "render_json", "render_text"]

#: How much of a long transcript to show: the first events, the last ones, and this many
#: events of context around each violation.
HEAD, TAIL, CONTEXT = 12, 3, 1


def render_json(result: CheckResult, out: TextIO) -> None:
    out.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")


def render_text(result: CheckResult, out: TextIO, *, color: bool | None = None) -> None:
    console = Console(
        file=out, highlight=False, soft_wrap=True, force_terminal=color, no_color=color is False
    )
    console.print(
        f"[bold]{escape(result.target)}[/]  [dim](contract: {escape(result.contract)})[/]"
    )
    shown = _visible(result.transcript, result.events)
    last = -1
    for entry in result.transcript:
        if entry.index not in shown:
            continue
        if entry.index != last + 1:
            console.print(f"   [dim]… {entry.index - last - 1} events not shown …[/]")
        _print_entry(console, entry)
        last = entry.index
    if result.transcript and last < result.events - 1:
        console.print(f"   [dim]… {result.events - 1 - last} events not shown …[/]")
    for v in result.violations:
        if v.event_index is None:
            print_violation(console, v, indent="   ")
    for t in result.thresholds:
        mark = "[green]✓[/]" if t.ok else "[bold red]✗[/]"
        value = "not measured" if t.value is None else f"{t.value:.1f}"
        console.print(f"   {mark} threshold {escape(t.expr)}: {value}")
    console.print(_verdict_line(result))


def _visible(transcript: list[TranscriptEntry], n: int) -> set[int]:
    shown = set(range(min(HEAD, n))) | set(range(max(0, n - TAIL), n))
    for e in transcript:
        if e.violations:
            shown.update(range(max(0, e.index - CONTEXT), min(n, e.index + CONTEXT + 1)))
    return shown


def _print_entry(console: Console, e: TranscriptEntry) -> None:
    facts = [f"id={escape(e.id)}"] if e.id else []
    if e.time_ms is not None:
        facts.append(f"+{e.time_ms:.1f} ms")
    suffix = f"  [dim]{'  '.join(facts)}[/]" if facts else ""
    console.print(
        f"  [dim]#{e.index:<4}[/] [cyan]{escape(e.kind):<9}[/] {escape(e.preview)}{suffix}"
    )
    for v in e.violations:
        print_violation(console, v, indent="        ")


def print_violation(console: Console, v: Violation, indent: str) -> None:
    """One violation, one line: its mark, rule id and message (``check`` and ``manifest``)."""
    mark = "[bold red]✗ error  [/]" if v.severity is Severity.ERROR else "[yellow]! warning[/]"
    console.print(f"{indent}{mark} [bold]{escape(v.rule)}[/]: {escape(v.message)}")


def _verdict_line(result: CheckResult) -> str:
    errors = sum(v.is_error for v in result.violations)
    warnings = len(result.violations) - errors
    missed = sum(not t.ok for t in result.thresholds)
    head = "[bold green]PASS[/]" if result.ok else "[bold red]FAIL[/]"
    if result.extra.get("interrupted"):
        head = f"[bold yellow]INTERRUPTED[/] (partial) {head}"
    counts = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    if missed:
        counts += f", {missed} threshold{'s' * (missed != 1)} missed"
    parts = [f"{head}  {counts} in {result.events} event{'s' * (result.events != 1)}"]
    t = result.timing
    if t.ttfb_ms is not None:
        parts.append(f"first byte {t.ttfb_ms:.1f} ms")
    if t.first_event_ms is not None:
        parts.append(f"first event {t.first_event_ms:.1f} ms")
    if t.duration_ms is not None:
        parts.append(f"total {t.duration_ms:.1f} ms")
    reconnect = result.extra.get("reconnect_ms")
    if isinstance(reconnect, int | float):
        parts.append(f"reconnect {reconnect:.1f} ms")
    return " · ".join(parts)
