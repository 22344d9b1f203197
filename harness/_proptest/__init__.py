"""Property-based testing: Hypothesis strategies from a manifest's schemas, examples run
through the runners, every failure shrunk to a minimal input with the commands that replay it.

    strategies.py  JSON Schema -> Hypothesis strategies
    invalid.py     inputs that break the schema, and how an endpoint must answer them
    reproduce.py   the `stream-harness check` and `curl -N` lines of a failure
    requests.py    an OpenAPI operation's requests: drawn, serialised, broken, replayed
    executors.py   one example in, one checked stream out (a module's generator, a URL)
    engine.py      the property test of one function, and of a whole manifest

The results are plain data in :mod:`harness._core.results`, re-exported here.
"""

from harness._core.results import (
    ExampleRun,
    Failure,
    FunctionFinished,
    FunctionReport,
    FunctionStarted,
    InvalidInputCase,
    ManifestResult,
)
from harness._proptest.engine import DEFAULT_DATABASE, property_test, run_manifest
from harness._proptest.executors import ModuleExecutor, UrlExecutor
from harness._proptest.invalid import check_invalid_inputs, invalid_input_cases, simplest_value
from harness._proptest.reproduce import check_command, curl_command, json_text
from harness._proptest.requests import (
    NO_BODY,
    ApiRequest,
    CannotGenerate,
    InvalidRequest,
    build_request,
    check_line,
    curl_line,
    invalid_requests,
    request_schema,
    request_strategy,
)
from harness._proptest.strategies import inputs_strategy, strategy_for

__all__ = [
    "DEFAULT_DATABASE",
    "NO_BODY",
    "ApiRequest",
    "CannotGenerate",
    "ExampleRun",
    "Failure",
    "FunctionFinished",
    "FunctionReport",
    "FunctionStarted",
    "InvalidInputCase",
    "InvalidRequest",
    "ManifestResult",
    "ModuleExecutor",
    "UrlExecutor",
    "build_request",
    "check_command",
    "check_invalid_inputs",
    "check_line",
    "curl_command",
    "curl_line",
    "inputs_strategy",
    "invalid_input_cases",
    "invalid_requests",
    "json_text",
    "property_test",
    "request_schema",
    "request_strategy",
    "run_manifest",
    "simplest_value",
    "strategy_for",
]
