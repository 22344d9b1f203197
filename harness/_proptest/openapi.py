"""Property tests of the streaming operations of an OpenAPI document (``stream-harness openapi``).

    run_openapi(spec, options, base_url=..., operations=..., contracts=...) -> OpenAPIResult
    plan_openapi(spec, options, ...)  -> OpenAPIPlan   (what would run; the pytest plugin's
                                                        one test per operation)

What runs
---------
The document is read from a file (JSON or YAML) or a URL; every ``$ref`` is resolved
offline (``harness._contracts.openapi``).  The operations tested are those with a streaming
response media type (``text/event-stream``, ``application/x-ndjson``, ``application/jsonl``,
``text/plain`` with ``x-stream: true``), or those named with ``--operation`` (its id, or
``"METHOD /path"``).  Each is checked against, in this order: ``--contract OPERATION=NAME``,
``--contract NAME``, the operation's ``x-stream-contract``, or what the document says of the
stream -- its framing, and the OpenAPI 3.2 ``itemSchema`` on every item
(``harness._contracts.openapi_contract``).  An operation that cannot be tested (no framing
for its media type, documented as ``application/json`` with no contract given, requests
that cannot be generated) is reported as skipped, with the reason.

How an operation is tested
--------------------------
Exactly as a manifest's function (``engine.run_property_test``): Hypothesis draws the
request's parts from the parameter and body schemas (``requests.request_strategy``), each
example is one request and one checked stream, failures are told apart by their first
error's rule and each is shrunk to a minimal request, with the ``stream-harness check`` and
``curl -N`` lines that replay it.  Beyond the contract, every response is held to the
document: a status it does not list is ``openapi.undocumented-status``, a streaming media type
other than the documented one ``openapi.content-type``; a documented 4xx to a valid request
is the operation's answer, counted (``rejected``), and when every request got one the
operation was not tested at all (``openapi.nothing-streamed``, a warning).

Then the negative tests: requests that break the schema in one place each
(``requests.invalid_requests``) must get a 4xx or a stream ending in the contract's failure
event -- never a normal stream (``openapi.invalid-input-accepted``), a 5xx, a hang or a
broken stream (``openapi.invalid-input-response``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

from harness._contracts.openapi import (
    Operation,
    load_document,
    parse_document,
    server_url,
    streaming_operations,
)
from harness._contracts.openapi_contract import FRAMING_OF_MEDIA_TYPE, document_checker
from harness._contracts.openapi_rules import (
    INVALID_INPUT_ACCEPTED,
    INVALID_INPUT_RESPONSE,
    NOTHING_STREAMED,
    UNDOCUMENTED_STATUS,
    invalid_input_accepted,
    invalid_input_response,
    nothing_streamed,
    undocumented_status,
)
from harness._contracts.registry import get_checker
from harness._core.errors import UsageError
from harness._core.options import DEFAULT_EXAMPLES, CheckOptions
from harness._core.redact import redact_url
from harness._core.results import (
    Event,
    FunctionFinished,
    FunctionStarted,
    InvalidInputCase,
    OpenAPIResult,
    OperationReport,
)
from harness._core.rules import Violation, violation
from harness._core.session import CheckResult, ContractChecker
from harness._core.urls import http_url
from harness._proptest.engine import DEFAULT_DATABASE, run_property_test
from harness._proptest.executors import OpenAPIExecutor
from harness._proptest.invalid import TypeRecorder
from harness._proptest.requests import (
    CannotGenerate,
    build_request,
    curl_line,
    invalid_requests,
    request_strategy,
)

__all__ = ["OpenAPIPlan", "PlannedOperation", "plan_openapi", "run_openapi"]

#: The contract the reproducer's ``check`` line names for a stream the document describes.
_CHECK_CONTRACT: Final = {"sse": "text", "text": "text", "ndjson": "ndjson"}


@dataclass(slots=True)
class PlannedOperation:
    """One selected operation: how it will be checked, or why it cannot be."""

    operation: Operation
    contract: str  # the label shown: a contract's name or file, "itemSchema", "generic sse"
    checkers: Callable[[], ContractChecker] | None = None
    skipped: str | None = None
    #: The contract the reproducer's ``check`` line names.
    check_contract: str = "text"

    @property
    def label(self) -> str:
        return self.operation.label


@dataclass(slots=True)
class OpenAPIPlan:
    spec: str  # the document, as shown (a path, or a URL with secrets redacted)
    base_url: str
    operations: list[PlannedOperation] = field(default_factory=list)
    #: Operations of the document without a streaming response, not named with --operation.
    not_streaming: int = 0


# -- the plan ---------------------------------------------------------------------------------


def plan_openapi(
    spec: str,
    options: CheckOptions,
    *,
    base_url: str | None = None,
    operations: Sequence[str] = (),
    contracts: Sequence[str] = (),
) -> OpenAPIPlan:
    """Read the document and decide what runs: which operations, against which contracts.

    Raises :class:`UsageError` for a document that cannot be read or is broken (one line
    naming the JSON pointer), an ``--operation`` or ``--contract`` that names nothing, or a
    document with nothing to test; :class:`TargetUnreachable` when SPEC is a URL that cannot
    be reached.
    """
    doc, directory, source_url, shown = _read(spec, options)
    base = _base_url(base_url, doc, source_url)
    every = streaming_operations(doc, directory, every=True)
    selected = _select(every, operations)
    per_op, overall = _contract_flags(contracts, every)
    plan = OpenAPIPlan(shown, base, not_streaming=0 if operations else _not_streaming(every))
    for op in selected:
        plan.operations.append(_plan_one(op, per_op.get(op.label), overall))
    if not plan.operations:
        raise UsageError(
            f"{shown}: no operation has a streaming response (text/event-stream, "
            "application/x-ndjson, application/jsonl, or text/plain with x-stream: true); "
            "name one with --operation and give --contract"
        )
    return plan


def _read(spec: str, options: CheckOptions) -> tuple[dict[str, Any], Path | None, str | None, str]:
    """(document, the directory of its relative ``$ref`` files, its URL, how it is shown)."""
    if spec.startswith(("http://", "https://")):
        from harness._runners.http import fetch_text

        http_url(spec, "SPEC")
        shown = redact_url(spec)
        return (
            parse_document(fetch_text(spec, options, "the OpenAPI document"), shown),
            None,
            spec,
            shown,
        )
    path = Path(spec)
    return load_document(path), path.resolve().parent, None, spec


def _base_url(given: str | None, doc: Mapping[str, Any], source_url: str | None) -> str:
    if given is not None:
        http_url(given, "--base-url")
        return given.rstrip("/")
    server = server_url(doc)
    if server is not None and server.startswith(("http://", "https://")):
        return server
    if source_url is not None:
        parts = urlsplit(source_url)
        origin = f"{parts.scheme}://{parts.netloc}/"
        return urljoin(origin, server) if server else origin.rstrip("/")
    where = f"its first server is {server!r}, a relative URL" if server else "it names no server"
    raise UsageError(f"give --base-url: the document was read from a file and {where}")


def _matches(op: Operation, name: str) -> bool:
    if name == op.operation_id:
        return True
    method, _, path = name.strip().partition(" ")
    return method.lower() == op.method and path.strip() == op.path


def _select(every: Sequence[Operation], names: Sequence[str]) -> list[Operation]:
    if not names:
        return [op for op in every if op.media_type is not None]
    out: list[Operation] = []
    for name in names:
        found = [op for op in every if _matches(op, name)]
        if not found:
            known = ", ".join(op.operation_id or op.label for op in every[:12]) or "none"
            more = " …" if len(every) > 12 else ""
            raise UsageError(f"--operation {name!r} is not in the document (it has: {known}{more})")
        out += [op for op in found if op not in out]
    return out


def _not_streaming(every: Sequence[Operation]) -> int:
    return sum(op.media_type is None for op in every)


def _contract_flags(
    values: Sequence[str], every: Sequence[Operation]
) -> tuple[dict[str, str], str | None]:
    """``--contract``: ``OPERATION=NAME`` for one operation, or ``NAME|FILE`` for all."""
    per_op: dict[str, str] = {}
    overall: str | None = None
    for value in values:
        left, sep, right = value.partition("=")
        ops = [op for op in every if sep and _matches(op, left)]
        if ops:
            if not right:
                raise UsageError(f"--contract {value!r}: give a contract after '='")
            get_checker(right)  # an unknown contract is a usage error, before any request
            per_op |= {op.label: right for op in ops}
            continue
        if sep and (" /" in left or (left and "/" not in left and "." not in left)):
            raise UsageError(
                f"--contract {value!r}: the document has no operation {left!r} "
                '(give its operationId or "METHOD /path")'
            )
        if overall is not None:
            raise UsageError(
                f"--contract given twice ({overall!r}, {value!r}): one contract for all "
                "operations, or OPERATION=NAME for one"
            )
        get_checker(value)
        overall = value
    return per_op, overall


def _plan_one(op: Operation, named: str | None, overall: str | None) -> PlannedOperation:
    chosen = named or overall
    if chosen is None and op.contract is not None:
        try:
            get_checker(op.contract)
        except UsageError as e:
            return PlannedOperation(op, op.contract, skipped=f"its x-stream-contract: {e}")
        chosen = op.contract
    if chosen is not None:
        name = chosen
        return PlannedOperation(op, name, lambda: get_checker(name), check_contract=name)
    if op.media_type is None:
        return PlannedOperation(
            op,
            "none",
            skipped="its responses are not documented as a stream (FastAPI documents a "
            "StreamingResponse as application/json); give --contract to test it as one",
        )
    framing = FRAMING_OF_MEDIA_TYPE.get(op.media_type)
    if framing is None:
        return PlannedOperation(
            op, "none", skipped=f"{op.media_type} is not a framing stream-harness reads yet"
        )
    media, item = op.media_type, op.item_schema

    def checkers() -> ContractChecker:
        checker = document_checker(media, item)
        assert checker is not None
        return checker

    label = "itemSchema" if item is not None else f"generic {framing}"
    return PlannedOperation(op, label, checkers, check_contract=_CHECK_CONTRACT[framing])


# -- the run ----------------------------------------------------------------------------------


def run_openapi(
    spec: str,
    options: CheckOptions,
    *,
    base_url: str | None = None,
    operations: Sequence[str] = (),
    contracts: Sequence[str] = (),
    max_examples: int = DEFAULT_EXAMPLES,
    seed: int | None = None,
    database: Path | None = DEFAULT_DATABASE,
    invalid_inputs: bool = True,
    on_event: Callable[[Event], None] | None = None,
    plan: OpenAPIPlan | None = None,
) -> OpenAPIResult:
    """Property-test every selected operation (see the module's docstring).

    Raises :class:`UsageError` as :func:`plan_openapi` does, and :class:`TargetUnreachable`
    when the base URL cannot be reached; every finding about the operations is in the result.
    """
    if max_examples < 1:
        raise UsageError(f"--examples must be at least 1, got {max_examples}")
    started = time.monotonic()
    emit = on_event or (lambda _event: None)
    if plan is None:
        plan = plan_openapi(
            spec, options, base_url=base_url, operations=operations, contracts=contracts
        )
    result = OpenAPIResult(
        plan.spec,
        redact_url(plan.base_url),
        [],
        [],
        not_streaming=plan.not_streaming,
        seed=seed,
        max_examples=max_examples,
    )
    runnable = {p.label: p for p in plan.operations if p.skipped is None}
    executor = OpenAPIExecutor(
        plan.base_url,
        options,
        {label: p.operation for label, p in runnable.items()},
        {label: p.check_contract for label, p in runnable.items()},
    )
    try:
        for planned in plan.operations:
            try:
                report = _test_operation(
                    planned,
                    executor,
                    options,
                    emit,
                    max_examples=max_examples,
                    seed=seed,
                    database=database,
                    invalid_inputs=invalid_inputs,
                )
            except KeyboardInterrupt:
                result.interrupted = True
                break
            if report is None:
                assert planned.skipped is not None
                result.skipped.append((planned.label, planned.skipped))
            else:
                result.operations.append(report)
    finally:
        executor.close()
    result.duration_ms = (time.monotonic() - started) * 1000.0
    return result


def _test_operation(
    planned: PlannedOperation,
    executor: OpenAPIExecutor,
    options: CheckOptions,
    emit: Callable[[Event], None],
    *,
    max_examples: int,
    seed: int | None,
    database: Path | None,
    invalid_inputs: bool,
) -> OperationReport | None:
    """One operation's property test and negative tests; None when it is skipped (the reason
    goes into ``planned.skipped``)."""
    op = planned.operation
    if planned.skipped is None:
        try:
            strategy = request_strategy(op)
        except CannotGenerate as e:
            planned.skipped = f"cannot generate its requests: {e}"
    if planned.skipped is not None or planned.checkers is None:
        return None
    started = time.monotonic()
    emit(FunctionStarted(op.label, max_examples))
    report = run_property_test(
        op.label,
        strategy,
        executor,
        checkers=planned.checkers,
        identity=[executor.target, op.label, op.parameters, op.body_schema, planned.contract],
        max_examples=max_examples,
        seed=seed,
        database=database,
        emit=emit,
        thresholds=options.thresholds,
    )
    for failure in report.failures:
        failure.request = build_request(op, failure.inputs).as_json()
    rejected = executor.rejected.pop(op.label, [])
    if report.examples and len(rejected) >= report.examples and not report.failures:
        msg = nothing_streamed(report.examples, rejected)
        if msg:
            report.warnings.append(violation(NOTHING_STREAMED, msg))
    if invalid_inputs:
        report.invalid_inputs = _negative_tests(planned, executor)
    report.duration_ms = (time.monotonic() - started) * 1000.0
    emit(FunctionFinished(report))
    return OperationReport(op.label, op.operation_id, planned.contract, report, len(rejected))


# -- negative tests ---------------------------------------------------------------------------


def _negative_tests(planned: PlannedOperation, executor: OpenAPIExecutor) -> list[InvalidInputCase]:
    op = planned.operation
    assert planned.checkers is not None
    cases = []
    for case in invalid_requests(op):
        recorder = TypeRecorder(planned.checkers())
        result = executor.send(op.label, case.raw, recorder)
        request = build_request(op, case.raw)
        status = result.extra.get("status")
        found = _judge_invalid(case.description, result, recorder, op, status)
        cases.append(
            InvalidInputCase(
                case.description,
                request.as_json(),
                found,
                status if isinstance(status, int) else None,
                curl_line(request, executor.base, executor.options.headers),
            )
        )
    return cases


def _judge_invalid(
    case: str, result: CheckResult, recorder: TypeRecorder, op: Operation, status: object
) -> list[Violation]:
    """How a request that breaks the schema was answered: a 4xx, or a stream that ends with
    the contract's failure event, is right."""
    if not isinstance(status, int):  # no response head at all: the protocol broke
        errors = [v for v in result.violations if v.is_error]
        what = f"no answer ({errors[0].message})" if errors else "no answer"
        return [violation(INVALID_INPUT_RESPONSE, invalid_input_response(case, what))]
    found = []
    msg = undocumented_status(status, op.statuses)
    if msg:
        found.append(violation(UNDOCUMENTED_STATUS, f"invalid request ({case}): {msg}"))
    if 400 <= status < 500:
        return found
    if not 200 <= status < 300:
        what = f"HTTP {status}" + (" (a server error)" if status >= 500 else "")
        return [*found, violation(INVALID_INPUT_RESPONSE, invalid_input_response(case, what))]
    types, roles = recorder.types, recorder.roles
    errors = [
        v
        for v in result.violations
        if v.is_error and not (v.rule == "seq.first" and types and roles.is_failure(types[0]))
    ]
    if errors:
        what = f"a broken stream ({errors[0].rule}: {errors[0].message})"
        return [*found, violation(INVALID_INPUT_RESPONSE, invalid_input_response(case, what))]
    if result.failure is not None:
        return found  # the stream reported the bad input as its failure: right
    accepted = invalid_input_accepted(case, status, result.events)
    return [*found, violation(INVALID_INPUT_ACCEPTED, accepted)]
