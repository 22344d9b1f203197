"""Every streaming function, driven over HTTP with generated inputs, streams by the contract.

Inputs come from the manifest's parameter schemas (the property engine of ``stream-harness
manifest``: Hypothesis, biased towards empty, long, zero, negative and non-ASCII values); each
failure is shrunk to a minimal input and reported with a command that reproduces it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness._contracts.manifest import FunctionSpec
from harness._core.errors import HarnessError
from harness._core.options import CheckOptions
from harness._proptest import UrlExecutor, property_test
from suites._support import describe, describe_report

pytestmark = pytest.mark.timeout(900)


def test_stream_conforms(
    stream_function: FunctionSpec,
    stream_url: str,
    stream_options: CheckOptions,
    stream_settings: dict[str, Any],
    pytestconfig: pytest.Config,
) -> None:
    executor = UrlExecutor(stream_url, stream_options)
    database: str = pytestconfig.getoption("--stream-database")
    try:
        report = property_test(
            stream_function,
            executor,
            contract=stream_options.contract,
            max_examples=stream_settings["examples"],
            seed=stream_settings["seed"],
            database=None if database.lower() == "none" else Path(database),
            emit=lambda _event: None,
            identity=executor.target,
        )
    except HarnessError as e:
        pytest.fail(f"{stream_function.name}: {e}", pytrace=False)
    finally:
        executor.close()
    # Warnings fail nothing; they are printed (pytest -rP, or junit_logging=system-out).
    print(f"{stream_function.name}: {report.examples} examples")
    for v in report.warnings:
        print(f"  {describe(v)}")
    if report.failures:
        pytest.fail(describe_report(report), pytrace=False)
