"""Each suite test that takes ``stream_function`` runs once per streaming function of the
manifest (test ids are the function names), ``stream_endpoint`` once for the endpoint given
(its id is the request, ``POST /path``), and ``stream_operation`` once per operation of the
``--stream-openapi`` document (``GET /stream``; one the tool cannot test is a skip, with
why).  Tests that do not apply to the target given are deselected, with one line per suite
in the terminal summary naming the option missing (``suites/_select.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from suites._select import deselect, summary_lines
from suites._support import endpoint_label, operation_params, streaming_functions


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stream_operation" in metafunc.fixturenames:
        metafunc.parametrize("stream_operation", operation_params(metafunc.config))
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


_SUMMARY = pytest.StashKey[list[str]]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A document whose every operation was skipped tested nothing: not a pass (exit 5,
    pytest's "no tests ran", as when every suite is deselected)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != pytest.ExitCode.OK:
        return
    outcomes = {
        outcome
        for outcome, reports in reporter.stats.items()
        if outcome in ("passed", "failed", "skipped", "error")
        for r in reports
        if "test_operation_conforms[" in getattr(r, "nodeid", "")
    }
    if outcomes == {"skipped"}:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
        session.config.stash.setdefault(_SUMMARY, []).append(
            "test_openapi.py: every operation was skipped: nothing was tested"
        )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = [*summary_lines(config), *config.stash.get(_SUMMARY, [])]
    if lines:
        terminalreporter.write_sep("-", "stream-harness: suites that do not apply")
        for line in lines:
            terminalreporter.write_line(line)
