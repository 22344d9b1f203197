"""What the suites share: the functions to test, the executor that reads the reference
gateway's reserved error codes, and failure messages that name the rules."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import harness._runners.gen  # noqa: F401  (registers the gen.* rules the gateway's codes map to)
from harness._contracts.gateway_codes import GatewayCodes
from harness._contracts.manifest import FunctionSpec, load_manifest
from harness._core.errors import UsageError
from harness._core.results import OperationReport
from harness._core.rules import Violation
from harness._proptest import FunctionReport, simplest_value

__all__ = [
    "GatewayCodes",
    "describe_operation",
    "describe_report",
    "endpoint_label",
    "failing",
    "operation_params",
    "rich_value",
    "streaming_functions",
]

_FUNCTIONS = pytest.StashKey[tuple[list[FunctionSpec], str | None]]()


def streaming_functions(config: pytest.Config) -> tuple[list[FunctionSpec], str | None]:
    """The manifest's streaming functions, or why there are none to test (loaded once)."""
    if _FUNCTIONS not in config.stash:
        config.stash[_FUNCTIONS] = _load(config.getoption("--stream-manifest", None))
    return config.stash[_FUNCTIONS]


def _load(path: str | None) -> tuple[list[FunctionSpec], str | None]:
    if not path:
        return [], "--stream-manifest not given: the stream-harness suites need a manifest"
    try:
        manifest, found = load_manifest(Path(path))
    except UsageError as e:
        return [], str(e)
    if manifest is None:
        rules = ", ".join(sorted({v.rule for v in found}))
        return [], f"the manifest is invalid ({rules}): see the manifest suite"
    specs = list(manifest.streaming)
    return specs, None if specs else "the manifest declares no streaming function"


def endpoint_label(config: pytest.Config) -> str | None:
    """``POST /api/v1/chat``: the request an endpoint checked alone gets (its test id)."""
    from urllib.parse import urlsplit

    from harness._pytest_plugin import endpoint_request

    url: str | None = config.getoption("--stream-url", None)
    if not url:
        return None
    method, _ = endpoint_request(config)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"{method} {path}"


def operation_params(config: pytest.Config) -> list[Any]:
    """One parameter per operation ``--stream-openapi`` plans to test (its id the operation's
    label, ``POST /path``); one it cannot test is skipped with the engine's reason."""
    from harness._pytest_plugin import openapi_plan

    plan = openapi_plan(config)
    if plan is None:
        return [pytest.param(None, id="no-document")]
    return [
        pytest.param(
            p,
            id=p.label,
            marks=[pytest.mark.skip(reason=p.skipped)] if p.skipped is not None else [],
        )
        for p in plan.operations
    ]


def failing(violations: list[Violation], strict: bool) -> list[Violation]:
    """The violations that fail a test: errors, and under ``--stream-strict`` warnings too."""
    return [v for v in violations if v.is_error or strict]


# -- inputs -----------------------------------------------------------------------------------

_TEXT = "alpha beta gamma\ndelta epsilon\nzeta eta theta"


def rich_value(schema: Mapping[str, Any] | bool) -> Any:
    """A valid value that makes a stream of several events: three items, three lines."""
    if not isinstance(schema, Mapping):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        n = max(int(schema.get("minItems", 0)), min(3, int(schema.get("maxItems", 3))))
        return [rich_value(schema.get("items", {"type": "integer"}))] * n
    if kind == "string" and "pattern" not in schema and "format" not in schema:
        text = _TEXT[: int(schema.get("maxLength", len(_TEXT)))]
        return text if len(text) >= int(schema.get("minLength", 0)) else simplest_value(schema)
    if kind == "object":
        props = schema.get("properties", {})
        return {k: rich_value(v) for k, v in props.items()}
    return simplest_value(schema)  # its default, if it has one


# -- messages ---------------------------------------------------------------------------------


def describe_report(report: FunctionReport) -> str:
    """Each distinct failure: its rules, the minimal inputs, the violations, reproducers."""
    n = len(report.failures)
    lines = [
        f"{report.name}: {n} distinct failure{'s' * (n != 1)} in {report.examples} examples "
        f"(rules: {', '.join(sorted({v.rule for f in report.failures for v in f.errors}))})"
    ]
    for f in report.failures:
        what = "inputs" if f.request is None else "request"
        shrunk = f"minimal {what}" if f.shrunk else f"{what} (not shrunk: it cost a timeout)"
        lines.append(
            f"  {f.rule} -- {shrunk}: {json_text(f.inputs if f.request is None else f.request)}"
        )
        lines += [f"    {describe(v)}" for v in f.errors]
        lines.append(f"    reproduce: {f.reproducer}")
        if f.curl:
            lines.append(f"    or: {f.curl}")
    return "\n".join(lines)


def describe_operation(op: OperationReport) -> str:
    """An OpenAPI operation's findings: each failure with its minimal request and reproducers,
    the invalid requests mishandled, the warnings and thresholds that fail."""
    report = op.report
    ident = f" ({op.operation_id})" if op.operation_id else ""
    lines = [
        f"{op.operation}{ident}: contract {op.contract}, {report.examples} examples"
        + (f", {op.rejected} rejected with a documented 4xx" if op.rejected else "")
    ]
    if report.failures:
        lines += describe_report(report).splitlines()[1:]
    for case in report.invalid_inputs:
        if not case.ok:
            lines.append(f"  invalid request ({case.case}) -- answered wrongly:")
            lines += [f"    {describe(v)}" for v in case.violations if v.is_error]
            if case.curl:
                lines.append(f"    reproduce: {case.curl}")
    lines += [f"  {describe(v)}" for v in report.warnings if v.is_error]
    for t in report.thresholds:
        if not t.ok:
            value = "not measured" if t.value is None else f"{t.value:.1f}"
            lines.append(f"  threshold {t.expr}: {value}")
    return "\n".join(lines)


def json_text(obj: Any) -> str:
    """JSON as people read it: non-ASCII text as is, unless some character would not show."""
    text = json.dumps(obj, ensure_ascii=False)
    return text if text.isprintable() else json.dumps(obj)


def describe(v: Violation) -> str:
    at = f" at event #{v.event_index}" if v.event_index is not None else ""
    return f"{v.rule} ({v.severity.value}){at}: {v.message}"
