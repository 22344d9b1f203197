"""Invalid inputs: requests that break a function's schema, and how an endpoint must answer."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from harness._contracts.manifest import (
    FunctionSpec,
    invalid_input_accepted,
    invalid_input_response,
)
from harness._contracts.registry import get_checker
from harness._core.redact import redact_url
from harness._core.results import InvalidInputCase
from harness._core.roles import Roles, roles_of
from harness._core.rules import Violation, violation
from harness._core.session import CheckResult, ContractChecker
from harness._core.sse import SSEEvent
from harness._proptest.reproduce import curl_command
from harness._proptest.strategies import bounds

if TYPE_CHECKING:  # executors import the request layer, which builds on this module
    from harness._proptest.executors import UrlExecutor

# -- invalid inputs ---------------------------------------------------------------------------

__all__ = [
    "TypeRecorder",
    "check_invalid_inputs",
    "invalid_input_cases",
    "simplest_value",
]

_WRONG: Final[dict[str, Any]] = {
    "string": 12345,
    "integer": "not a number",
    "number": "not a number",
    "boolean": "yes",
    "array": "not a list",
    "object": "not an object",
}


def simplest_value(schema: Mapping[str, Any] | bool) -> Any:
    """A small valid value for ``schema``: the base of an invalid-inputs request."""
    if not isinstance(schema, Mapping) or not schema:
        return 0  # any JSON value will do
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind in ("integer", "number"):
        low, high = bounds(schema, integral=kind == "integer")
        value = 0 if low is None or low <= 0 else low
        value = value if high is None or value <= high else high
        return math.ceil(value) if kind == "integer" else value
    if kind == "string":
        return "a" * int(schema.get("minLength", 0) or 1)
    if kind == "boolean":
        return False
    if kind == "array":  # one item: an empty list is often a valid call that does nothing
        high = schema.get("maxItems")
        n = max(int(schema.get("minItems", 0)), 1 if high is None or high >= 1 else 0)
        return [simplest_value(schema.get("items", True))] * n
    if kind == "object":
        props = schema.get("properties", {})
        return {k: simplest_value(props[k]) for k in schema.get("required", []) if k in props}
    return 0 if kind is None else None


def invalid_input_cases(spec: FunctionSpec) -> list[tuple[str, dict[str, Any]]]:
    """``(description, inputs)`` for each request the manifest rules out: every required
    parameter left out in turn, then every parameter given a value of the wrong type."""
    base = {p.name: simplest_value(p.schema) for p in spec.parameters if p.required}
    cases: list[tuple[str, dict[str, Any]]] = []
    for p in spec.parameters:
        if p.required:
            without = {k: v for k, v in base.items() if k != p.name}
            cases.append((f"the required parameter {p.name!r} missing", without))
    for p in spec.parameters:
        wrong = _WRONG[p.type]
        kind = {"str": "string", "int": "integer"}[type(wrong).__name__]
        cases.append(
            (f"{p.name!r} {_article(kind)} instead of {_article(p.type)}", {**base, p.name: wrong})
        )
    return cases


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


# -- invalid inputs over HTTP -----------------------------------------------------------------


class TypeRecorder:
    """Delegates to a contract checker and remembers the type of each event."""

    def __init__(self, inner: ContractChecker) -> None:
        self.inner = inner
        self.name = inner.name
        self.roles: Roles = roles_of(inner)
        self.types: list[str] = []

    def feed(self, event: SSEEvent) -> list[Violation]:
        self.types.append(self.inner.event_type(event))
        return self.inner.feed(event)

    def finish(self, complete: bool = True) -> list[Violation]:
        return self.inner.finish(complete)

    def event_type(self, event: SSEEvent) -> str:
        return self.inner.event_type(event)


def check_invalid_inputs(
    spec: FunctionSpec, executor: UrlExecutor, contract: str
) -> list[InvalidInputCase]:
    """Send each invalid-inputs request of :func:`invalid_input_cases` and judge the answer."""
    out = []
    url = executor.url(spec.name)
    for case, inputs in invalid_input_cases(spec):
        recorder = TypeRecorder(get_checker(contract))
        result, status, body = executor.probe(spec.name, inputs, recorder)
        found = _judge_invalid(case, result, recorder, status, body)
        shown = redact_url(url)
        out.append(
            InvalidInputCase(
                case, inputs, found, status, curl_command(shown, inputs, executor.options)
            )
        )
    return out


def _judge_invalid(
    case: str, result: CheckResult, recorder: TypeRecorder, status: int | None, body: bytes
) -> list[Violation]:
    prefix = f"invalid inputs ({case}): "
    if status is not None and 400 <= status < 500:
        try:
            json.loads(body)
        except ValueError:
            text = body.decode("utf-8", "replace")
            msg = invalid_input_response(case, status, text)
            return [violation("manifest.invalid-input-response", msg)] if msg else []
        return []  # rejected, with a JSON reason: right
    types, roles = recorder.types, recorder.roles
    found = []
    for v in result.violations:
        if v.rule == "seq.first" and types and roles.is_failure(types[0]):
            continue  # a stream that is one failure event is a fine answer to bad inputs
        found.append(dataclasses.replace(v, message=prefix + v.message))
    if status is not None and 200 <= status < 300 and not any(v.is_error for v in found):
        last = types[-1] if types and roles.is_terminal(types[-1]) else None
        msg = invalid_input_accepted(case, last, failed=result.failure is not None)
        if msg:
            found.append(violation("manifest.invalid-input-accepted", msg))
    return found
