"""Streams by the contract: one endpoint as given, or every function of a prefab gateway.

``--stream-url URL`` alone: that URL, requested once as given (``--stream-method``,
``--stream-body``, ``--stream-header``), streams by ``--stream-contract``.  A 404, a 5xx, a
page that is not a stream or a stream cut short is a failure, with a reproducer.

``--stream-url`` with ``--stream-manifest``: every streaming function at ``{url}/invoke/{name}``,
driven with generated inputs.  Inputs come from the manifest's parameter schemas (the property
engine of ``stream-harness manifest``: Hypothesis, biased towards empty, long, zero, negative
and non-ASCII values); each failure is shrunk to a minimal input and reported with a command
that reproduces it.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from harness._contracts.manifest import FunctionSpec
from harness._core.errors import HarnessError
from harness._core.options import CheckOptions
from harness._core.redact import PUBLIC_HEADERS, REDACTED
from harness._core.rules import Violation
from harness._core.session import CheckResult
from harness._proptest import UrlExecutor, property_test
from harness._pytest_plugin import endpoint_request
from suites._select import needs
from suites._support import describe, describe_report, failing

pytestmark = pytest.mark.timeout(900)

#: What a failing status most likely means for an endpoint checked alone.
_STATUS_HINTS = {
    404: "nothing is served at this URL (a prefab gateway's functions are at {url}/invoke/{name}: "
    "give --stream-manifest)",
    405: "the endpoint does not take {method}: give --stream-method, or --stream-body '{{...}}' "
    "for a POST",
    422: "the endpoint rejected the request: give the body it expects with --stream-body",
}


@needs(
    "--stream-url",
    unless=(
        "--stream-manifest",
        "--stream-url is then a gateway's base URL, and test_stream_conforms checks each function",
    ),
)
def test_endpoint_conforms(
    stream_endpoint: str, stream_options: CheckOptions, pytestconfig: pytest.Config
) -> None:
    """The one endpoint given, requested once as given, streams by the contract."""
    from harness._runners.check import check

    stream_url: str = pytestconfig.getoption("--stream-url")  # exactly: a trailing / matters
    method, body = endpoint_request(pytestconfig)
    options = dataclasses.replace(stream_options, method=method, body=body)
    unreachable: str | None = None
    try:
        result = check(stream_url, options)
    except HarnessError as e:
        unreachable = f"{stream_endpoint}: {e}"
    if unreachable is not None:  # outside the except: no "during handling" chain shown
        pytest.fail(unreachable, pytrace=False)
    failed = failing(result.violations, options.strict)
    # What passes is printed (pytest -rP, or junit_logging=system-out): the count, warnings.
    print(f"{stream_endpoint}: {result.events} events, contract {options.contract}")
    for v in result.violations:
        if v not in failed:
            print(f"  {describe(v)}")
    if failed:
        pytest.fail(_describe_endpoint(stream_endpoint, result, failed, options), pytrace=False)


def _describe_endpoint(
    label: str, result: CheckResult, failed: list[Violation], options: CheckOptions
) -> str:
    status = _status(failed)
    head = f"{label}: {len(failed)} violation{'s' * (len(failed) != 1)} in {result.events} events"
    lines = [f"{head} (contract {options.contract}{', strict' if options.strict else ''})"]
    lines += [f"  {describe(v)}" for v in failed]
    hint = _STATUS_HINTS.get(status) if status is not None else None
    if hint is not None:
        lines.append("  hint: " + hint.format(url="{url}", name="{name}", method=options.method))
    lines.append(f"  reproduce: {_check_line(result.target, options)}")
    return "\n".join(lines)


def _status(violations: list[Violation]) -> int | None:
    """The status an ``http.status`` violation reports (its message starts ``HTTP 404``)."""
    for v in violations:
        found = re.match(r"HTTP (\d{3})\b", v.message) if v.rule == "http.status" else None
        if found:
            return int(found.group(1))
    return None


def _check_line(url: str, options: CheckOptions) -> str:
    """``stream-harness check URL ...``: the same request, secret header values redacted."""
    parts = ["stream-harness", "check", url, "--contract", options.contract]
    if options.method and options.method != ("POST" if options.body is not None else "GET"):
        parts += ["--method", options.method]
    if options.body is not None:
        parts += ["--body", options.body]
    for name, value in options.headers:
        parts += ["--header", f"{name}: {value if name.lower() in PUBLIC_HEADERS else REDACTED}"]
    if options.strict:
        parts.append("--strict")
    return shlex.join(parts)


@needs("--stream-url", "--stream-manifest")
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
    # Warnings fail nothing unless --stream-strict; they are printed (pytest -rP, or
    # junit_logging=system-out).
    print(f"{stream_function.name}: {report.examples} examples")
    for v in report.warnings:
        print(f"  {describe(v)}")
    lines = [describe_report(report)] if report.failures else []
    if stream_options.strict and report.warnings:
        lines.append(f"{stream_function.name}: warnings, which fail under --stream-strict:")
        lines += [f"  {describe(v)}" for v in report.warnings]
    if lines:
        pytest.fail("\n".join(lines), pytrace=False)
