"""The public API is what `harness.__all__` lists, and every rule the issues name exists."""

from __future__ import annotations

import harness
from harness._catalog import all_rules
from harness._rules import Severity

# Rule ids are public interface: CI jobs grep for them. This list may grow; never shrink it.
PUBLIC_RULE_IDS = {
    "event.schema": Severity.ERROR,
    "event.unknown-type": Severity.ERROR,
    "seq.first": Severity.ERROR,
    "seq.terminal": Severity.ERROR,
    "seq.after-terminal": Severity.ERROR,
    "seq.order": Severity.ERROR,
    "progress.current-le-total": Severity.ERROR,
    "progress.bounds": Severity.ERROR,
    "progress.monotonic": Severity.WARNING,
    "progress.total-stable": Severity.WARNING,
    "error.code": Severity.WARNING,
    "sse.truncated": Severity.ERROR,
    "sse.event-too-large": Severity.ERROR,
    "sse.invalid-utf8": Severity.WARNING,
    "sse.data-not-json": Severity.ERROR,
    "http.status": Severity.ERROR,
    "http.content-type": Severity.ERROR,
    "http.cache-control": Severity.WARNING,
    "timeout.first-byte": Severity.ERROR,
    "timeout.idle": Severity.ERROR,
    "timeout.total": Severity.ERROR,
    "gen.raised": Severity.ERROR,
    "gen.not-iterator": Severity.ERROR,
    "gen.not-serializable": Severity.ERROR,
    "gen.timeout": Severity.ERROR,
    "gen.crashed": Severity.ERROR,
    "resume.no-id": Severity.ERROR,
    "resume.ignored": Severity.ERROR,
    "resume.gap": Severity.ERROR,
    "resume.duplicate": Severity.ERROR,
    "timing.buffered": Severity.WARNING,
    # added since: the issues' ids above plus these are all public now
    "limit.max-events": Severity.WARNING,
    "resume.unreachable": Severity.ERROR,
    "manifest.invalid-json": Severity.ERROR,
    "manifest.schema": Severity.ERROR,
    "manifest.missing-function": Severity.ERROR,
    "manifest.signature": Severity.ERROR,
    "manifest.streaming-flag": Severity.ERROR,
    "manifest.invalid-input-accepted": Severity.ERROR,
    "manifest.invalid-input-response": Severity.ERROR,
    "field.constant": Severity.ERROR,
    "field.once-per-key": Severity.ERROR,
    "field.after-final": Severity.ERROR,
    "field.sum": Severity.ERROR,
    "field.sequential": Severity.ERROR,
    "seq.requested": Severity.ERROR,
}


def test_every_public_name_is_exported_and_nothing_private_is() -> None:
    exported = set(harness.__all__)
    # "@py_builtins"/"@pytest_ar" appear when pytest rewrites the package (pytest11 plugin).
    public = {n for n in vars(harness) if not n.startswith(("_", "@"))} - {"annotations"}
    assert exported - {"__version__"} == public
    for name in harness.__all__:
        assert hasattr(harness, name), name


def test_every_rule_the_issues_name_is_catalogued_with_its_severity() -> None:
    catalog = {r.id: r.severity for r in all_rules()}
    for rule_id, severity in PUBLIC_RULE_IDS.items():
        assert catalog.get(rule_id) == severity, rule_id


def test_every_rule_has_a_summary_and_an_explanation() -> None:
    for r in all_rules():
        assert r.summary and len(r.summary) <= 100, r.id
        assert len(r.explanation) > len(r.summary), r.id
        assert "\n" not in r.summary, r.id
