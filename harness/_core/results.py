"""What a property test returns -- the results of a manifest run and its progress events --
as plain data, so the writers (:mod:`harness._report`) read them typed without importing the
engine that produced them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness._core.options import DEFAULT_EXAMPLES
from harness._core.rules import Violation, strict
from harness._core.session import CheckResult
from harness._core.thresholds import ThresholdResult

# -- events for progress ----------------------------------------------------------------------


__all__ = [
    "Event",
    "ExampleRun",
    "Failure",
    "FunctionFinished",
    "FunctionReport",
    "FunctionStarted",
    "InvalidInputCase",
    "ManifestResult",
    "OpenAPIResult",
    "OperationReport",
]


@dataclass(frozen=True, slots=True)
class FunctionStarted:
    name: str
    max_examples: int


@dataclass(frozen=True, slots=True)
class ExampleRun:
    name: str
    #: Inputs run so far for this function (explore, replay and shrink steps together).
    runs: int
    #: Distinct failing rules found so far.
    failures: int
    #: This example's first error rule, or None when it passed.
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionFinished:
    report: FunctionReport


Event = FunctionStarted | ExampleRun | FunctionFinished

# -- results ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Failure:
    """One distinct failure, shrunk: its minimal inputs and what the stream did with them."""

    rule: str
    inputs: dict[str, Any]
    result: CheckResult
    reproducer: str
    curl: str | None = None
    shrunk: bool = True
    #: ``openapi``: the minimal request itself (``{"method", "path", "query", "headers",
    #: "body"}``); ``inputs`` are then the generated parts it was built from.
    request: dict[str, Any] | None = None
    #: How many examples had run when the rule first failed (a stored failure replayed first
    #: counts as one); None if unknown.
    found_after: int | None = None

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.result.violations if v.is_error]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "minimal_inputs": self.inputs,
            "shrunk": self.shrunk,
            "violations": [v.to_json() for v in self.errors],
            "reproducer": self.reproducer,
        }
        if self.found_after is not None:
            out["found_after_examples"] = self.found_after
        if self.curl is not None:
            out["curl"] = self.curl
        if self.request is not None:
            out["minimal_request"] = self.request
        return out


@dataclass(slots=True)
class InvalidInputCase:
    """One request with invalid inputs, and how the endpoint answered it."""

    case: str
    inputs: dict[str, Any]
    violations: list[Violation]
    status: int | None = None
    curl: str | None = None

    @property
    def ok(self) -> bool:
        return not any(v.is_error for v in self.violations)

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "inputs": self.inputs,
            "ok": self.ok,
            "status": self.status,
            "violations": [v.to_json() for v in self.violations],
            "curl": self.curl,
        }


@dataclass(slots=True)
class FunctionReport:
    name: str
    examples: int = 0
    failures: list[Failure] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)
    invalid_inputs: list[InvalidInputCase] = field(default_factory=list)
    #: Why the function was not property-tested (a manifest finding), or None.
    skipped: str | None = None
    duration_ms: float = 0.0
    #: ``--threshold`` gates evaluated over all of the function's examples.
    thresholds: list[ThresholdResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.skipped is None
            and not self.failures
            and not any(v.is_error for v in self.warnings)  # under --strict they are
            and all(c.ok for c in self.invalid_inputs)
            and all(t.ok for t in self.thresholds)
        )

    @property
    def violations(self) -> list[Violation]:
        found = [v for f in self.failures for v in f.errors]
        found += [v for c in self.invalid_inputs for v in c.violations]
        return found + self.warnings

    @property
    def minimal_inputs(self) -> dict[str, Any] | None:
        return self.failures[0].inputs if self.failures else None

    def to_json(self) -> dict[str, Any]:
        first = self.failures[0] if self.failures else None
        out: dict[str, Any] = {
            "name": self.name,
            "ok": self.ok,
            "examples": self.examples,
            "violations": [v.to_json() for v in self.violations],
            "minimal_inputs": self.minimal_inputs,
            "reproducer": first.reproducer if first else None,
        }
        if first is not None and first.curl is not None:
            out["curl"] = first.curl
        out["failures"] = [f.to_json() for f in self.failures]
        out["invalid_inputs"] = [c.to_json() for c in self.invalid_inputs]
        out["skipped"] = self.skipped
        out["duration_ms"] = round(self.duration_ms, 3)
        if self.thresholds:  # only when gates were given
            out["thresholds"] = [t.to_json() for t in self.thresholds]
        return out


@dataclass(slots=True)
class ManifestResult:
    manifest: str
    target: str
    contract: str
    violations: list[Violation]
    functions: list[FunctionReport]
    seed: int | None = None
    max_examples: int = DEFAULT_EXAMPLES
    duration_ms: float = 0.0
    #: Whether the manifest was matched against the module's functions (needs --module).
    matched: bool = False
    #: Ctrl-C stopped the run: ``functions`` holds those finished before it.
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not any(v.is_error for v in self.violations) and all(f.ok for f in self.functions)

    def make_strict(self) -> None:
        """``--strict``: every warning fails, the manifest's and each function's."""
        self.violations[:] = [strict(v) for v in self.violations]
        for f in self.functions:
            f.warnings[:] = [strict(v) for v in f.warnings]
            for case in f.invalid_inputs:
                case.violations[:] = [strict(v) for v in case.violations]

    def to_json(self) -> dict[str, Any]:
        """The ``--format json`` verdict, exactly ``{"ok", "violations", "functions"}``: public
        interface.  Keys may be added inside a function object, never renamed."""
        return {
            "ok": self.ok,
            "violations": [v.to_json() for v in self.violations],
            "functions": [f.to_json() for f in self.functions],
        }


@dataclass(slots=True)
class OperationReport:
    """One operation of an OpenAPI document, property-tested: the function report of its
    examples (failures shrunk to minimal requests, invalid requests, warnings) and which
    operation and contract it was."""

    operation: str  # "POST /api/debug/chat"
    operation_id: str | None
    contract: str  # a contract's name or file, or "itemSchema" / "generic <framing>"
    report: FunctionReport
    #: Generated requests answered with a documented 4xx (no stream to check).
    rejected: int = 0

    @property
    def ok(self) -> bool:
        return self.report.ok

    @property
    def examples(self) -> int:
        return self.report.examples

    @property
    def violations(self) -> list[Violation]:
        return self.report.violations

    @property
    def minimal_request(self) -> dict[str, Any] | None:
        failures = self.report.failures
        return failures[0].request if failures else None

    def to_json(self) -> dict[str, Any]:
        first = self.report.failures[0] if self.report.failures else None
        out: dict[str, Any] = {
            "operation": self.operation,
            "operation_id": self.operation_id,
            "ok": self.ok,
            "examples": self.examples,
            "violations": [v.to_json() for v in self.violations],
            "minimal_request": self.minimal_request,
            "reproducer": first.reproducer if first else None,
        }
        if first is not None and first.curl is not None:
            out["curl"] = first.curl
        out["contract"] = self.contract
        out["rejected"] = self.rejected
        out["failures"] = [f.to_json() for f in self.report.failures]
        out["invalid_inputs"] = [c.to_json() for c in self.report.invalid_inputs]
        out["duration_ms"] = round(self.report.duration_ms, 3)
        if self.report.thresholds:
            out["thresholds"] = [t.to_json() for t in self.report.thresholds]
        return out


@dataclass(slots=True)
class OpenAPIResult:
    """``stream-harness openapi``: every selected operation's report, and the ones skipped."""

    spec: str
    base_url: str
    violations: list[Violation]
    operations: list[OperationReport]
    #: ``(operation, reason)`` of each selected operation that could not be tested.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Operations of the document without a streaming response (not selected).
    not_streaming: int = 0
    seed: int | None = None
    max_examples: int = DEFAULT_EXAMPLES
    duration_ms: float = 0.0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """No error, and something was tested: a run whose every operation was skipped
        passes nothing."""
        return (
            bool(self.operations)
            and not any(v.is_error for v in self.violations)
            and all(o.ok for o in self.operations)
        )

    def make_strict(self) -> None:
        """``--strict``: every warning fails."""
        self.violations[:] = [strict(v) for v in self.violations]
        for o in self.operations:
            f = o.report
            f.warnings[:] = [strict(v) for v in f.warnings]
            for case in f.invalid_inputs:
                case.violations[:] = [strict(v) for v in case.violations]

    def to_json(self) -> dict[str, Any]:
        """The ``--format json`` verdict, ``{"ok", "violations", "operations", "skipped"}``:
        public interface.  Keys may be added inside an operation, never renamed."""
        return {
            "ok": self.ok,
            "violations": [v.to_json() for v in self.violations],
            "operations": [o.to_json() for o in self.operations],
            "skipped": [{"operation": op, "reason": why} for op, why in self.skipped],
        }
