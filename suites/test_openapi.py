"""Every streaming operation of an OpenAPI document, property-tested: one test per operation.

    pytest --pyargs suites --stream-openapi http://127.0.0.1:8000/openapi.json

The engine of ``stream-harness openapi`` (``harness._proptest.openapi``): requests drawn from
the parameter and body schemas, every stream checked against the operation's contract
(``--stream-contract NAME`` or ``OPERATION=NAME``, its ``x-stream-contract``, else the
document's ``itemSchema`` and framing) and held to the document (statuses, media type); then
requests that break the schema, which must be rejected.  A failure is shrunk to a minimal
request, shown with the ``stream-harness check`` and ``curl -N`` lines that replay it.  An
operation the tool cannot test is a skip with the reason; test ids are the operations
(``test_operation_conforms[POST /api/debug/chat]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness._core.errors import HarnessError
from harness._core.options import CheckOptions
from harness._proptest.openapi import OpenAPIPlan, PlannedOperation, run_openapi
from harness._pytest_plugin import in_pytest, openapi_plan
from suites._select import needs
from suites._support import describe, describe_operation

pytestmark = pytest.mark.timeout(900)


@needs("--stream-openapi", why="an OpenAPI document: one test per streaming operation")
def test_operation_conforms(
    stream_operation: PlannedOperation,
    stream_options: CheckOptions,
    stream_settings: dict[str, Any],
    pytestconfig: pytest.Config,
) -> None:
    plan = openapi_plan(pytestconfig)
    assert plan is not None  # selected only with --stream-openapi
    database: str = pytestconfig.getoption("--stream-database")
    one = OpenAPIPlan(plan.spec, plan.base_url, [stream_operation])
    failed: str | None = None
    try:
        result = run_openapi(
            plan.spec,
            stream_options,
            plan=one,
            max_examples=stream_settings["examples"],
            seed=stream_settings["seed"],
            database=None if database.lower() == "none" else Path(database),
        )
    except HarnessError as e:
        failed = f"{stream_operation.label}: {e}"
    if failed is not None:  # outside the except: no "during handling" chain shown
        pytest.fail(failed, pytrace=False)
    if stream_options.strict:
        result.make_strict()
    if result.interrupted:
        pytest.exit("stream-harness: interrupted", returncode=2)
    if not result.operations:
        [(_, reason)] = result.skipped
        pytest.skip(in_pytest(reason))
    [op] = result.operations
    # What passes is printed (pytest -rP, or junit_logging=system-out).
    print(f"{op.operation}: {op.examples} examples, contract {op.contract}")
    for v in op.report.warnings:
        print(f"  {describe(v)}")
    if not op.ok:
        pytest.fail(describe_operation(op), pytrace=False)
