"""The report model: what a run's report holds (:class:`Report` and its parts), and the
builders that make one from a command's result (:func:`check_report`, :func:`manifest_report`).

Data and builders only: the writers (``write.py``: JSON, JUnit, Markdown and the files;
``html.py``) import this module, never the reverse.  The engine never imports a writer.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness._contracts.catalog import load_all
from harness._core.results import FunctionReport, ManifestResult, OpenAPIResult
from harness._core.rules import Violation
from harness._core.session import CheckResult, TranscriptEntry

#: A saved stream's suffix, by its framing: what ``stream-harness check FILE`` reads it as.
_SUFFIX = {"sse": ".sse", "ndjson": ".ndjson", "text": ".txt"}

__all__ = [
    "Case",
    "Plot",
    "Report",
    "StreamArtifact",
    "Table",
    "around_failures",
    "check_cases",
    "check_report",
    "explanation",
    "manifest_report",
    "openapi_report",
]


@dataclass(slots=True)
class Case:
    """One JUnit test case: a function, a rule or a threshold."""

    name: str
    failures: list[tuple[str, str]] = field(default_factory=list)  # (rule id or kind, message)
    output: str = ""  # warnings and notes: shown, not failing
    time_s: float = 0.0
    #: Not run (an operation that cannot be tested): a JUnit ``<skipped>`` with ``output``.
    skipped: bool = False


@dataclass(slots=True)
class StreamArtifact:
    """A failing stream: its raw bytes, transcript and violations, and how to reproduce it."""

    name: str
    result: CheckResult
    reproducers: list[str] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return _safe_name(self.name) + _SUFFIX.get(self.result.framing, ".sse")


@dataclass(slots=True)
class Table:
    """A table of figures a report opens with (the load run's metrics, its error tally)."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


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
    #: Shown first, before the plots (summary.md and report.html).
    tables: list[Table] = field(default_factory=list)
    reproducers: list[str] = field(default_factory=list)
    #: Values (header values, tokens) that must not appear in any artifact.
    secrets: tuple[str, ...] = ()
    incomplete: bool = False
    created: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return bool(self.verdict.get("ok"))


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
    arrivals = result.arrivals
    if arrivals is not None and arrivals.exact is None and arrivals.count:
        # A long stream: its sample of arrival times, and the broken events the transcript kept.
        times = {e.index: e.time_ms for e in result.transcript if e.violations}
        bad = {i: t for i, t in times.items() if t is not None}
        indexes, sampled = arrivals.timeline()
        svg = _svg.sampled_timeline(list(zip(indexes, sampled, strict=True)), arrivals.count,
                                    arrivals.step, bad)  # fmt: skip
        report.plots.append(Plot("event arrivals", svg, "red: an event that broke a rule"))
    elif result.event_times_ms:
        bad_indexes = {v.event_index for v in result.violations if v.event_index is not None}
        report.plots.append(
            Plot(
                "event arrivals",
                _svg.timeline(result.event_times_ms, sorted(bad_indexes)),
                "red: an event that broke a rule",
            )
        )
    if not result.ok:
        stream = StreamArtifact("stream", result)
        stream.reproducers = [f"stream-harness check {stream.filename}  # in the report directory"]
        report.streams.append(stream)
        report.reproducers.append(stream.reproducers[0])
    return report


def manifest_report(result: ManifestResult, command_line: str, secrets: tuple[str, ...]) -> Report:
    """The report of a ``manifest`` run: a JUnit case per manifest rule and per
    function, and each shrunk failure's stream with the commands that reproduce it."""
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


def _function_case(fn: FunctionReport, kind: str = "function") -> Case:
    if fn.skipped:
        return Case(f"{kind} {fn.name}", [("manifest", f"not property-tested: {fn.skipped}")])
    failures = []
    for f in fn.failures:
        what, shown = ("inputs", f.inputs) if f.request is None else ("request", f.request)
        problems = "; ".join(v.message for v in f.errors)
        failures.append(
            (f.rule, f"minimal {what} {json.dumps(shown, ensure_ascii=False)}: {problems}")
        )
    failures += [
        (v.rule, f"invalid inputs ({c.case}): {v.message}")
        for c in fn.invalid_inputs
        for v in c.violations
        if v.is_error
    ]
    notes = "\n".join(f"{v.rule}: {v.message}" for v in fn.warnings)
    return Case(
        f"{kind} {fn.name}",
        failures,
        f"{fn.examples} examples\n{notes}".strip(),
        fn.duration_ms / 1000,
    )


def openapi_report(result: OpenAPIResult, command_line: str, secrets: tuple[str, ...]) -> Report:
    """The report of an ``openapi`` run: a JUnit case per operation (a skipped one is a
    skipped case, with the reason), and each shrunk failure's stream with its reproducers."""
    report = Report(
        command="openapi",
        title=f"{result.spec} against {result.base_url}",
        verdict=result.to_json(),
        cases=[Case(f"document {v.rule}", [(v.rule, v.message)]) for v in result.violations],
        reproducers=[command_line],
        secrets=secrets,
        incomplete=result.interrupted,
    )
    for op in result.operations:
        fn = op.report
        report.cases.append(_function_case(fn, "operation"))
        for t in fn.thresholds:
            value = "not measured" if t.value is None else f"{t.value:g}"
            failures = (
                [] if t.ok else [("threshold", f"{t.expr}: {value} over {fn.examples} examples")]
            )
            report.cases.append(Case(f"{fn.name}: threshold {t.expr}", failures))
        for failure in fn.failures:
            stream = StreamArtifact(f"{fn.name}-{failure.rule}", failure.result)
            stream.reproducers = [failure.reproducer, *([failure.curl] if failure.curl else [])]
            report.streams.append(stream)
            report.reproducers.append(failure.curl or failure.reproducer)
    for label, reason in result.skipped:
        report.cases.append(Case(f"operation {label}", [], f"skipped: {reason}", skipped=True))
    return report


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


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:80] or "stream"
