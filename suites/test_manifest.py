"""The manifest is valid, and the target serves every function the manifest lists."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from harness._contracts.manifest import Manifest, load_manifest, manifest_missing_function
from harness._core.errors import UsageError
from harness._core.options import CheckOptions
from harness._proptest import simplest_value
from suites._select import needs
from suites._support import describe, failing

pytestmark = pytest.mark.timeout(120)

#: Statuses that say the endpoint does not exist (rather than rejecting these inputs).
_NOT_SERVED = {404, 405, 410, 501}


@needs("--stream-manifest")
def test_manifest_is_valid(stream_manifest_path: Path, stream_options: CheckOptions) -> None:
    try:
        manifest, found = load_manifest(stream_manifest_path)
    except UsageError as e:
        pytest.fail(str(e), pytrace=False)
    errors = failing(found, stream_options.strict)
    if errors:
        listed = "\n".join(f"  {describe(v)}" for v in errors)
        pytest.fail(f"{stream_manifest_path} is not a valid manifest:\n{listed}", pytrace=False)
    assert manifest is not None


@needs("--stream-url", "--stream-manifest")
def test_every_function_is_served(
    stream_url: str, stream_manifest: Manifest, stream_options: CheckOptions
) -> None:
    """POST each function with its simplest valid inputs; only the status is read."""
    missing = []
    headers = dict(stream_options.headers)
    timeout = httpx.Timeout(stream_options.total_timeout, connect=stream_options.first_byte_timeout)
    with httpx.Client(timeout=timeout, headers=headers) as client:
        for spec in stream_manifest.functions:
            inputs = {p.name: simplest_value(p.schema) for p in spec.parameters if p.required}
            url = f"{stream_url}/invoke/{spec.name}"
            with client.stream("POST", url, json={"inputs": inputs}) as r:
                if r.status_code in _NOT_SERVED:
                    shown = json.dumps(inputs, ensure_ascii=False)
                    why = f"{manifest_missing_function(spec.name, stream_url)}: POST {url} "
                    missing.append(f"  manifest.missing-function: {why}{shown} -> {r.status_code}")
    if missing:
        pytest.fail("functions the manifest lists are not served:\n" + "\n".join(missing))
