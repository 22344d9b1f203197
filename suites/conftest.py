"""Each suite test that takes ``stream_function`` runs once per streaming function of the
manifest (test ids are the function names); without a usable manifest, once, skipped."""

from __future__ import annotations

from typing import Any

import pytest

from suites._support import streaming_functions


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stream_function" not in metafunc.fixturenames:
        return
    specs, reason = streaming_functions(metafunc.config)
    params: list[Any] = [pytest.param(spec, id=spec.name) for spec in specs]
    if reason is not None:
        params = [pytest.param(None, id="no-function", marks=pytest.mark.skip(reason=reason))]
    metafunc.parametrize("stream_function", params)
