"""A stream dropped half-way resumes: the client reconnects with ``Last-Event-ID`` and gets
the events after it -- no repeat, no gap, no fresh start.

Each function is run once whole, then again dropped after half of its events and resumed.
Only what the resumption adds is reported (``resume.*``, or a rule the whole stream did not
break): the contract suite reports the function's own bugs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from harness._contracts.manifest import FunctionSpec
from harness._contracts.registry import get_checker
from harness._core.errors import TargetUnreachable
from harness._core.options import CheckOptions
from harness._core.session import CheckResult
from harness._proptest import simplest_value
from harness._runners.http import run_url
from suites._select import needs
from suites._support import GatewayCodes, describe, failing, rich_value

pytestmark = pytest.mark.timeout(300)


@needs(
    "--stream-url",
    "--stream-manifest",
    why="resumes a prefab gateway's functions; one endpoint: stream-harness check URL "
    "--resume-after K",
)
def test_stream_resumes(
    stream_function: FunctionSpec, stream_url: str, stream_options: CheckOptions
) -> None:
    inputs = _inputs(stream_function)
    url = f"{stream_url}/invoke/{stream_function.name}"
    whole = _run(url, stream_options, inputs)
    if whole.events < 2:
        pytest.skip(f"{stream_function.name} sent {whole.events} event(s): nothing to resume")
    after = max(1, whole.events // 2)
    resumed = _run(url, stream_options, inputs, resume_after=after, max_retry_wait=0.1)
    already = {v.rule for v in whole.violations}
    new = [v for v in failing(resumed.violations, stream_options.strict) if v.rule not in already]
    if new:
        lines = [
            f"{stream_function.name}: dropped after {after} of {whole.events} events and "
            f"resumed with Last-Event-ID; inputs {inputs}"
        ]
        lines += [f"  {describe(v)}" for v in new]
        pytest.fail("\n".join(lines), pytrace=False)


def _inputs(spec: FunctionSpec) -> dict[str, Any]:
    """Inputs that make a stream of several events (three items, three lines), else the
    simplest valid ones."""
    validator = Draft202012Validator(spec.inputs_schema())
    rich = {p.name: rich_value(p.schema) for p in spec.parameters if p.required}
    if validator.is_valid(rich):
        return rich
    return {p.name: simplest_value(p.schema) for p in spec.parameters if p.required}


def _run(url: str, options: CheckOptions, inputs: dict[str, Any], **extra: Any) -> CheckResult:
    opts = dataclasses.replace(options, inputs=inputs, **extra)
    try:
        return run_url(url, opts, GatewayCodes(get_checker(options.contract)))
    except TargetUnreachable as e:
        pytest.fail(str(e), pytrace=False)
