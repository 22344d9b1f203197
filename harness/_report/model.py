"""Reports people read and CI consumes, written into one directory per run.

Every command builds a :class:`Report` from its result and hands it to :func:`write_report`,
which writes, atomically and with every secret redacted:

    summary.json   the ``--format json`` verdict (plus ``"incomplete": true`` after Ctrl-C)
    junit.xml      one test case per function / rule / threshold, so CI shows failures by name
    summary.md     short enough for a CI job summary page
    report.html    one self-contained page: verdict, violations with each rule's explanation,
                   the transcript around each failure, reproducers, plots (inline SVG, no JS)
    *.sse          the raw bytes of every failing stream; ``stream-harness check X.sse``
                   reproduces it

Writers consume the report; the engine never imports a writer.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from harness._contracts.catalog import load_all
from harness._core.errors import UsageError
from harness._core.redact import REDACTED
from harness._core.rules import Violation
from harness._core.session import CheckResult, TranscriptEntry

__all__ = [
    "Case",
    "Report",
    "StreamArtifact",
    "atomic_write",
    "default_report_dir",
    "write_report",
]


@dataclass(slots=True)
class Case:
    """One JUnit test case: a function, a rule or a threshold."""

    name: str
    failures: list[tuple[str, str]] = field(default_factory=list)  # (rule id or kind, message)
    output: str = ""  # warnings and notes: shown, not failing
    time_s: float = 0.0


@dataclass(slots=True)
class StreamArtifact:
    """A failing stream: its raw bytes, transcript and violations, and how to reproduce it."""

    name: str
    result: CheckResult
    reproducers: list[str] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return _safe_name(self.name) + ".sse"


@dataclass(slots=True)
class Plot:
    title: str
    svg: str
    caption: str = ""


@dataclass(slots=True)
class Report:
    command: str
    title: str
    verdict: dict[str, Any]
    cases: list[Case]
    streams: list[StreamArtifact] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    reproducers: list[str] = field(default_factory=list)
    #: Values (header values, tokens) that must not appear in any artifact.
    secrets: tuple[str, ...] = ()
    incomplete: bool = False
    created: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return bool(self.verdict.get("ok"))


def default_report_dir(command: str, root: Path = Path("reports")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{stamp}-{command}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{command}-{n}"
    return path


def write_report(report: Report, directory: Path) -> list[Path]:
    """Write every artifact into ``directory``; returns the paths written."""
    from harness._report.html import render_html

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create report directory {directory}: {e.strerror or e}") from None
    scrub = _scrubber(report.secrets)
    summary = dict(report.verdict)
    if report.incomplete:
        summary["incomplete"] = True
    files: list[tuple[str, bytes]] = [
        ("summary.json", scrub(json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode()),
        ("junit.xml", scrub(_junit(report)).encode()),
        ("summary.md", scrub(_markdown(report)).encode()),
        ("report.html", scrub(render_html(report)).encode()),
    ]
    for stream in report.streams:
        files.append((stream.filename, _scrub_bytes(stream.result.raw, report.secrets)))
    written = []
    for name, data in files:
        path = directory / name
        atomic_write(path, data)
        written.append(path)
    return written


# -- junit ------------------------------------------------------------------------------------


def _junit(report: Report) -> str:
    failures = sum(bool(c.failures) for c in report.cases)
    suite = ET.Element(
        "testsuite",
        name=f"stream-harness.{report.command}",
        tests=str(len(report.cases)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{sum(c.time_s for c in report.cases):.3f}",
    )
    for case in report.cases:
        el = ET.SubElement(
            suite,
            "testcase",
            classname=f"stream-harness.{report.command}",
            name=case.name,
            time=f"{case.time_s:.3f}",
        )
        for kind, message in case.failures:
            failure = ET.SubElement(el, "failure", type=kind, message=_one_line(message))
            failure.text = message
        if case.output:
            ET.SubElement(el, "system-out").text = case.output
    if report.incomplete:
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="incomplete", value="true")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- markdown ---------------------------------------------------------------------------------


def _markdown(report: Report) -> str:
    head = "✅ PASS" if report.ok else "❌ FAIL"
    lines = [f"## stream-harness {report.command}: {head}", "", f"`{_md(report.title)}`", ""]
    if report.incomplete:
        lines += [
            "> **Incomplete**: the run was interrupted; this is what was measured so far.",
            "",
        ]
    failed = [c for c in report.cases if c.failures]
    lines.append(f"{len(report.cases) - len(failed)} of {len(report.cases)} checks passed.")
    if failed:
        lines += ["", "| check | rule | message |", "|---|---|---|"]
        shown = 0
        for case in failed:
            for kind, message in case.failures:
                if shown == 20:
                    break
                lines.append(f"| {_md(case.name)} | `{kind}` | {_md(_one_line(message))} |")
                shown += 1
        total = sum(len(c.failures) for c in failed)
        if total > shown:
            lines.append(f"\n… and {total - shown} more in report.html")
    if report.reproducers:
        lines += ["", "Reproduce:", "", "```sh", *report.reproducers[:5], "```"]
    return "\n".join(lines) + "\n"


# -- cases from a check -----------------------------------------------------------------------


def check_cases(result: CheckResult) -> list[Case]:
    """A check's JUnit cases: one per rule that fired, and one for the stream as a whole."""
    by_rule: dict[str, list[Violation]] = {}
    for v in result.violations:
        by_rule.setdefault(v.rule, []).append(v)
    # A passing run still needs a case, so CI shows a green test rather than none.
    cases = [Case("stream conforms")] if result.conforms else []
    for t in result.thresholds:
        value = "not measured" if t.value is None else f"{t.value:g}"
        cases.append(
            Case(f"threshold {t.expr}", [] if t.ok else [("threshold", f"{t.expr}: {value}")])
        )
    for rule_id in sorted(by_rule):
        found = by_rule[rule_id]
        errors = [(v.rule, _located(v)) for v in found if v.is_error]
        notes = "\n".join(_located(v) for v in found if not v.is_error)
        cases.append(Case(rule_id, failures=errors, output=notes))
    return cases


def _located(v: Violation) -> str:
    at = "stream" if v.event_index is None else f"event {v.event_index}"
    return f"{at}: {v.message}"


def check_report(result: CheckResult, command_line: str, secrets: tuple[str, ...]) -> Report:
    """The report of one ``check``: a failing stream is saved with its reproducers."""
    from harness._report import svg as _svg

    report = Report(
        command="check",
        title=result.target,
        verdict=result.to_json(),
        cases=check_cases(result),
        reproducers=[command_line],
        secrets=secrets,
        incomplete=bool(result.extra.get("interrupted")),
    )
    if result.event_times_ms:
        bad = sorted({v.event_index for v in result.violations if v.event_index is not None})
        report.plots.append(
            Plot(
                "event arrivals",
                _svg.timeline(result.event_times_ms, bad),
                "red: an event that broke a rule",
            )
        )
    if not result.ok:
        stream = StreamArtifact("stream", result)
        stream.reproducers = [f"stream-harness check {stream.filename}  # in the report directory"]
        report.streams.append(stream)
        report.reproducers.append(stream.reproducers[0])
    return report


def manifest_report(result: Any, command_line: str, secrets: tuple[str, ...]) -> Report:
    """The report of a ``manifest`` run (a
    :class:`~harness._proptest.engine.ManifestResult`): a JUnit case per manifest rule and
    per function, and each shrunk failure's stream with the commands that reproduce it."""
    cases: list[Case] = []
    by_rule: dict[str, list[Violation]] = {}
    for v in result.violations:
        by_rule.setdefault(v.rule, []).append(v)
    for rule_id in sorted(by_rule):
        found = by_rule[rule_id]
        errors = [(v.rule, v.message) for v in found if v.is_error]
        cases.append(
            Case(
                f"manifest {rule_id}", errors, "\n".join(v.message for v in found if not v.is_error)
            )
        )
    if not by_rule:
        cases.append(Case("manifest is valid"))
    report = Report(
        command="manifest",
        title=f"{result.manifest} against {result.target}",
        verdict=result.to_json(),
        cases=cases,
        reproducers=[command_line],
        secrets=secrets,
        incomplete=bool(getattr(result, "interrupted", False)),
    )
    for fn in result.functions:
        report.cases.append(_function_case(fn))
        for t in fn.thresholds:
            value = "not measured" if t.value is None else f"{t.value:g}"
            failures = (
                [] if t.ok else [("threshold", f"{t.expr}: {value} over {fn.examples} examples")]
            )
            report.cases.append(Case(f"{fn.name}: threshold {t.expr}", failures))
        for failure in fn.failures:
            stream = StreamArtifact(f"{fn.name}-{failure.rule}", failure.result)
            stream.reproducers = [failure.reproducer]
            if failure.curl:
                stream.reproducers.append(failure.curl)
            stream.reproducers.append(
                f"stream-harness check {stream.filename}  # in the report directory"
            )
            report.streams.append(stream)
            report.reproducers.append(failure.reproducer)
    return report


def _function_case(fn: Any) -> Case:
    if fn.skipped:
        return Case(f"function {fn.name}", [("manifest", f"not property-tested: {fn.skipped}")])
    failures = [
        (f.rule, f"minimal inputs {json.dumps(f.inputs, ensure_ascii=False)}: "
                 + "; ".join(v.message for v in f.errors))
        for f in fn.failures
    ]  # fmt: skip
    failures += [
        (v.rule, f"invalid inputs ({c.case}): {v.message}")
        for c in fn.invalid_inputs
        for v in c.violations
        if v.is_error
    ]
    notes = "\n".join(f"{v.rule}: {v.message}" for v in fn.warnings)
    return Case(
        f"function {fn.name}",
        failures,
        f"{fn.examples} examples\n{notes}".strip(),
        fn.duration_ms / 1000,
    )


# -- helpers ----------------------------------------------------------------------------------


def explanation(rule_id: str) -> str:
    rule = load_all().get(rule_id)  # the complete catalog, whichever runner reported it
    return rule.explanation if rule else ""


def around_failures(
    transcript: Sequence[TranscriptEntry], context: int = 2
) -> list[TranscriptEntry | None]:
    """The transcript entries near violations, with ``None`` marking elided runs."""
    keep: set[int] = set()
    for e in transcript:
        if e.violations:
            keep.update(range(e.index - context, e.index + context + 1))
    if not keep:
        keep = set(range(min(10, len(transcript))))
    out: list[TranscriptEntry | None] = []
    last = -1
    for e in transcript:
        if e.index in keep:
            if e.index != last + 1 and out is not None:
                out.append(None)
            out.append(e)
            last = e.index
    if transcript and last != transcript[-1].index:
        out.append(None)
    return out


def _scrubber(secrets: Iterable[str]) -> Any:
    values = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for s in values:
            text = text.replace(s, REDACTED)
        return text

    return scrub


def _scrub_bytes(data: bytes, secrets: Iterable[str]) -> bytes:
    for s in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        data = data.replace(s.encode(), REDACTED.encode())
    return data


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; CI jobs upload these as artifacts
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:80] or "stream"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 300 else line[:299] + "…"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
