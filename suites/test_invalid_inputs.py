"""Inputs the manifest rules out -- a required parameter missing, a value of the wrong type,
an unknown function -- get a 4xx JSON error or a stream of one ``error`` event: never a 5xx, a
hang, a broken stream or a normal run."""

from __future__ import annotations

import httpx
import pytest

from harness._contracts.manifest import FunctionSpec, invalid_input_accepted, invalid_input_response
from harness._core.http_rules import http_status
from harness._core.options import CheckOptions
from harness._proptest import UrlExecutor, check_invalid_inputs
from suites._select import needs
from suites._support import describe, failing

pytestmark = pytest.mark.timeout(300)

_UNKNOWN = "no_such_function_stream_harness"
_GATEWAY = "probes a prefab gateway's /invoke/{name}"


@needs("--stream-url", "--stream-manifest", why=_GATEWAY)
def test_invalid_inputs_rejected(
    stream_function: FunctionSpec, stream_url: str, stream_options: CheckOptions
) -> None:
    executor = UrlExecutor(stream_url, stream_options)
    try:
        cases = check_invalid_inputs(stream_function, executor, stream_options.contract)
    finally:
        executor.close()
    strict = stream_options.strict
    failed = [c for c in cases if not c.ok or failing(c.violations, strict)]
    if failed:
        lines = [f"{stream_function.name}: {len(failed)} of {len(cases)} invalid calls mishandled"]
        for c in failed:
            lines += [f"  {describe(v)}" for v in failing(c.violations, strict)]
            if c.curl:
                lines.append(f"    reproduce: {c.curl}")
        pytest.fail("\n".join(lines), pytrace=False)


@needs("--stream-url", "--stream-manifest", why=_GATEWAY)
def test_unknown_function_rejected(stream_url: str, stream_options: CheckOptions) -> None:
    case = f"the function {_UNKNOWN!r}, which the manifest does not list"
    timeout = httpx.Timeout(stream_options.total_timeout, connect=stream_options.first_byte_timeout)
    with httpx.Client(timeout=timeout, headers=dict(stream_options.headers)) as client:
        r = client.post(f"{stream_url}/invoke/{_UNKNOWN}", json={"inputs": {}})
    if 400 <= r.status_code < 500:
        try:
            r.json()
        except ValueError:
            msg = invalid_input_response(case, r.status_code, r.text)
            pytest.fail(f"manifest.invalid-input-response: {msg}", pytrace=False)
        return
    if r.status_code >= 500:
        msg = http_status(r.status_code, r.reason_phrase, r.text[:200])
        pytest.fail(f"http.status: calling {case}: {msg}", pytrace=False)
    msg = invalid_input_accepted(case, None)
    pytest.fail(f"manifest.invalid-input-accepted: {msg} (HTTP {r.status_code})", pytrace=False)
