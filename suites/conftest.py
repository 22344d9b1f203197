"""Each suite test that takes ``stream_function`` runs once per streaming function of the
manifest (test ids are the function names), and ``stream_endpoint`` once for the endpoint
given (its id is the request, ``POST /path``).  Tests that do not apply to the target given
are deselected, with one line per suite in the terminal summary naming the option missing
(``suites/_select.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from suites._select import deselect, summary_lines
from suites._support import endpoint_label, streaming_functions


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stream_endpoint" in metafunc.fixturenames:
        label = endpoint_label(metafunc.config)
        metafunc.parametrize("stream_endpoint", [pytest.param(label, id=label or "no-endpoint")])
    if "stream_function" not in metafunc.fixturenames:
        return
    specs, reason = streaming_functions(metafunc.config)
    params: list[Any] = [pytest.param(spec, id=spec.name) for spec in specs]
    if reason is not None:
        params = [pytest.param(None, id="no-function", marks=pytest.mark.skip(reason=reason))]
    metafunc.parametrize("stream_function", params)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect(config, items)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = summary_lines(config)
    if lines:
        terminalreporter.write_sep("-", "stream-harness: suites that do not apply")
        for line in lines:
            terminalreporter.write_line(line)
