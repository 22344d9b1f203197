"""The pytest plugin (entry point ``pytest11``): options that point conformance suites at a
target.  Thin by design: it reads options and hands them to the library; Locust, httpx and
Hypothesis strategies are imported lazily by the suites that need them."""

from __future__ import annotations

import pytest

__all__ = ["pytest_addoption"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stream-harness", "stream-harness conformance suites")
    group.addoption("--stream-url", help="base URL of the gateway under test (…/invoke/{name})")
    group.addoption("--stream-manifest", help="path to prefab-manifest.json")
    group.addoption("--stream-contract", default="prefab", help="contract name (default: prefab)")
