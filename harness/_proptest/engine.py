"""Property-based conformance: drive every streaming function of a manifest with generated
inputs, check each stream against the contract, and shrink every failure to a minimal input.

    run_manifest(manifest, module=..., url=...)   -> ManifestResult
    inputs_strategy(spec) / strategy_for(schema)   JSON Schema -> Hypothesis strategies

How a function is tested
------------------------
The declared parameters become a JSON Schema (``FunctionSpec.inputs_schema``), and that schema
a Hypothesis strategy -- our own mapping (hypothesis-jsonschema does not work with our
Hypothesis), biased towards what breaks streaming code: empty strings and lists, non-ASCII
text, text of many words and lines, zero and negative numbers, long lists.  Optional
parameters are sometimes omitted.  Each example runs the function once -- in the one
long-lived generator worker, or as ``POST {url}/invoke/{name}`` -- and a fresh contract
checker judges the stream; the timeout and limit options apply to each example.

An example fails when its stream has a violation of severity ``error``.  Hypothesis then
shrinks it to a minimal input.  Failures are told apart by their first error's rule, so a
function with two bugs (an empty list raises, an odd-length list overshoots ``total``) gets
two minimal inputs, not one.  Warnings are collected across examples and reported without
failing anything.  Found failures are saved in the Hypothesis database (``.hypothesis/``)
and tried first next time.

Every input is run at most once: results are memoised by the input's JSON, so Hypothesis'
final replay of a failure costs nothing and a nondeterministic function cannot make it
"flaky".  A failure that cost a timeout (a hang) costs the timeout again on every attempt to
shrink it, so its shrinking may spend at most ``SLOW_SHRINK_BUDGET`` more hangs; whatever
Hypothesis reached by then is reported (the simplifications it tries first are the large
ones).  Exploring stops at the third hang (``EXPLORE_SLOW_BUDGET``).

Over HTTP, each function also gets invalid inputs (a required parameter missing, a parameter
of the wrong type); the endpoint must reject them with a 4xx JSON error, or stream one
``error`` event -- never a 5xx, a hang, a broken stream, or a normal run.

The engine reports progress through plain dataclass events (:class:`FunctionStarted`,
:class:`ExampleRun`, :class:`FunctionFinished`); the command line draws them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    InMemoryExampleDatabase,
)
from hypothesis.errors import FlakyStrategyDefinition, Unsatisfiable
from hypothesis.reporting import with_reporter

from harness._contracts.manifest import (
    FunctionSpec,
    Manifest,
    load_manifest,
    match_functions,
)
from harness._contracts.registry import get_checker
from harness._core.errors import HarnessError, UsageError
from harness._core.options import DEFAULT_EXAMPLES, CheckOptions
from harness._core.redact import redact_url
from harness._core.results import (
    Event,
    ExampleRun,
    Failure,
    FunctionFinished,
    FunctionReport,
    FunctionStarted,
    ManifestResult,
)
from harness._core.rules import Violation
from harness._core.session import CheckResult, ContractChecker
from harness._core.text import shorten
from harness._core.thresholds import Threshold, evaluate, metrics_from_checks
from harness._proptest.executors import Executor, ModuleExecutor, UrlExecutor
from harness._proptest.invalid import check_invalid_inputs
from harness._proptest.reproduce import json_text
from harness._proptest.strategies import inputs_strategy
from harness._runners.gen import GeneratorWorker

__all__ = [
    "DEFAULT_DATABASE",
    "property_test",
    "run_manifest",
    "run_property_test",
]

DEFAULT_DATABASE: Final = Path(".hypothesis")

#: Failures that cost a timeout each time they are tried: reported unshrunk.
_EXPENSIVE: Final = frozenset(
    {"gen.timeout", "timeout.first-byte", "timeout.idle", "timeout.total"}
)
_INPUT_PREVIEW: Final = 200
#: The hangs (timeouts) the shrinking of a hang may cost: each costs a whole timeout.
SLOW_SHRINK_BUDGET: Final = 8
#: The hangs exploring may meet before it stops generating (a hang behind a hang is rare; a
#: bug behind a hang is not, so the first one does not end the search).
EXPLORE_SLOW_BUDGET: Final = 2

# -- the property test of one function --------------------------------------------------------
#
# Hypothesis stops generating soon after it finds a first failure (ten calls, or twice the
# calls it took), so one Hypothesis run per function would miss every bug behind a shallow one:
# the empty list is tried first, and the long chat message that breaks the same function never
# comes.  So each function is tested in three steps, all of them Hypothesis runs:
#
#   replay   for each rule that failed last time (remembered in the database), replay the
#            stored minimal input: a known failure is tried first;
#   explore  --examples inputs, none of which fails the Hypothesis test; every outcome is
#            recorded, and for each rule's first failure its choice sequence is kept;
#   shrink   for each failing rule, the kept choice sequence is saved to the database under
#            that rule's key (its secondary corpus) and replayed with only the reuse and
#            shrink phases, by a test that fails exactly when the stream's first error is
#            that rule.  Hypothesis' shrinker does the rest, and leaves the minimal example
#            in the database for next time.


class _StreamFailure(Exception):
    """Raised inside a shrinking run for an input that breaks the rule being shrunk."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _Abort(Exception):
    """The harness itself cannot go on (target unreachable, module gone): stop testing."""


@dataclass(slots=True)
class _Outcome:
    inputs: dict[str, Any]
    result: CheckResult
    rule_id: str | None  # the first error's rule: None when the example passed
    choices: bytes | None  # Hypothesis' choice sequence that drew the inputs

    @property
    def expensive(self) -> bool:
        return any(v.rule in _EXPENSIVE for v in self.result.violations if v.is_error)


class _FunctionRun:
    """State of one function's property test, shared by every call Hypothesis makes."""

    def __init__(
        self,
        name: str,
        executor: Executor,
        checkers: Callable[[], ContractChecker],
        emit: Callable[[Event], None],
    ) -> None:
        self.name = name
        self.executor = executor
        self.checkers = checkers
        self.emit = emit
        self.memo: dict[str, _Outcome] = {}
        self.runs = 0
        #: The first failing outcome of each rule, in the order found.
        self.first_failure: dict[str, _Outcome] = {}
        #: How many inputs had run when each rule first failed (replayed ones included).
        self.found_after: dict[str, int] = {}
        self.warnings: dict[str, tuple[Violation, dict[str, Any], int]] = {}
        self.stopped = False  # the step's budget of hangs is spent: run no new inputs
        self.slow_runs = 0  # hangs met in this step
        self.slow_budget = 0  # hangs this step may spend before it stops
        self.exploring = False
        self.error: HarnessError | None = None

    def outcome(self, inputs: dict[str, Any]) -> _Outcome:
        """The outcome of one input: run it, or recall it if it ran before."""
        key = _key(inputs)
        outcome = self.memo.get(key)
        if outcome is None:
            if self.error is not None:
                raise _Abort(str(self.error))
            if self.stopped and self.exploring:
                raise _Abort("the hangs this step may cost are spent")  # ends the step at once
            if self.stopped:
                reject()  # do not spend another timeout
            outcome = self.memo[key] = self._run(inputs)
        return outcome

    def _run(self, inputs: dict[str, Any]) -> _Outcome:
        try:
            result = self.executor.run(self.name, inputs, self.checkers())
        except HarnessError as e:
            self.error = e
            raise _Abort(str(e)) from None
        self.runs += 1
        for v in result.violations:
            if not v.is_error:
                self._warn(v, inputs)
        errors = [v for v in result.violations if v.is_error]
        rule_id = errors[0].rule if errors else None
        outcome = _Outcome(inputs, result, rule_id, _current_choices())
        if rule_id is not None:
            self.first_failure.setdefault(rule_id, outcome)
            self.found_after.setdefault(rule_id, self.runs)
            if outcome.expensive:
                self.slow_runs += 1
                self.stopped = self.slow_runs > self.slow_budget
        self.emit(ExampleRun(self.name, self.runs, len(self.first_failure), rule_id))
        return outcome

    def _warn(self, v: Violation, inputs: dict[str, Any]) -> None:
        seen = self.warnings.get(v.rule)
        self.warnings[v.rule] = (v, inputs, 1) if seen is None else (seen[0], seen[1], seen[2] + 1)

    def collected_warnings(self) -> list[Violation]:
        out = []
        for v, inputs, count in self.warnings.values():
            times = "1 example" if count == 1 else f"{count} examples"
            shown = _preview(json_text(inputs))
            message = f"{v.message} (in {times}; first with inputs {shown})"
            out.append(dataclasses.replace(v, message=message))
        return out


def _key(inputs: Mapping[str, Any]) -> str:
    return json.dumps(inputs, sort_keys=True, ensure_ascii=False)


def _current_choices() -> bytes | None:
    """The choice sequence of the example being run (Hypothesis internals, pinned version)."""
    try:
        from hypothesis.control import current_build_context
        from hypothesis.database import choices_to_bytes

        return choices_to_bytes(current_build_context().data.choices)
    except Exception:  # not inside a Hypothesis run, or the internals moved
        return None


def _preview(text: str) -> str:
    return shorten(text, _INPUT_PREVIEW)


def _hypothesis_settings(
    max_examples: int, database: ExampleDatabase | None, phases: Sequence[Phase]
) -> settings:
    return settings(
        max_examples=max_examples,
        database=database,
        deadline=None,
        derandomize=False,
        phases=tuple(phases),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )


def _flatten(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _flatten(inner)
    else:
        yield exc


@dataclass(slots=True)
class _Hypothesis:
    """How to run one function's Hypothesis runs: strategy, settings, database keys."""

    strategy: st.SearchStrategy[dict[str, Any]]
    max_examples: int
    seed: int | None
    database: ExampleDatabase
    key: bytes

    def rule_key(self, rule_id: str) -> bytes:
        return self.key + b".rule." + rule_id.encode()

    @property
    def rules_key(self) -> bytes:
        return self.key + b".rules"

    def run(
        self, body: Callable[[dict[str, Any]], None], phases: Sequence[Phase], key: bytes
    ) -> list[BaseException]:
        """Run ``body`` as a Hypothesis test; the exceptions it ended with (none: passed)."""

        def test(inputs: dict[str, Any]) -> None:
            body(inputs)

        wrapped = given(self.strategy)(test)
        # Only replay and shrink read the database; generating must not write to it (a step
        # ended early by _Abort would be saved there as a failure).
        database = self.database if Phase.reuse in phases else None
        wrapped = _hypothesis_settings(self.max_examples, database, phases)(wrapped)
        if self.seed is not None and Phase.generate in phases:
            # Only for generating: Hypothesis ignores the database of a seeded test, and the
            # replay and shrink steps are nothing but the database.
            wrapped = hypothesis_seed(self.seed)(wrapped)
        wrapped._hypothesis_internal_database_key = key  # type: ignore[attr-defined]
        with with_reporter(lambda _msg: None):
            try:
                wrapped()
            except Unsatisfiable:
                return []  # every input was rejected (after a hang): nothing to report
            except FlakyStrategyDefinition:
                # Hypothesis saw a choice sequence draw differently twice: a shrink step that
                # rejected an input (its budget of hangs spent) on one pass and not another.
                # The step found nothing more; what was found before it stands.
                return []
            except BaseException as exc:
                return list(_flatten(exc))
        return []


def property_test(
    spec: FunctionSpec,
    executor: Executor,
    *,
    contract: str,
    max_examples: int,
    seed: int | None,
    database: Path | None,
    emit: Callable[[Event], None],
    identity: str,
    thresholds: Sequence[Threshold] = (),
) -> FunctionReport:
    """Run one function's property test: replay, explore, shrink (see above).  ``thresholds``
    are evaluated over every example's stream, pooled (``first_event_ms.p95<500``)."""
    return run_property_test(
        spec.name,
        inputs_strategy(spec),
        executor,
        checkers=lambda: get_checker(contract),
        identity=[identity, spec.name, spec.inputs_schema()],
        max_examples=max_examples,
        seed=seed,
        database=database,
        emit=emit,
        thresholds=thresholds,
    )


def run_property_test(
    name: str,
    strategy: st.SearchStrategy[dict[str, Any]],
    executor: Executor,
    *,
    checkers: Callable[[], ContractChecker],
    identity: object,
    max_examples: int,
    seed: int | None,
    database: Path | None,
    emit: Callable[[Event], None],
    thresholds: Sequence[Threshold] = (),
) -> FunctionReport:
    """The property test of anything that takes generated inputs (a dict) and streams: each
    input drawn from ``strategy`` is run by ``executor`` and judged by a fresh checker from
    ``checkers``.  ``identity`` (JSON) names it in the Hypothesis database: a changed schema
    is a new test."""
    run = _FunctionRun(name, executor, checkers, emit)
    digest = json.dumps(identity, sort_keys=True, default=str)
    hyp = _Hypothesis(
        strategy,
        max_examples,
        seed,
        InMemoryExampleDatabase()
        if database is None
        else DirectoryBasedExampleDatabase(str(database)),
        hashlib.sha256(digest.encode()).hexdigest()[:32].encode(),
    )
    shrunk: dict[str, _Outcome] = {}
    unshrunk: set[str] = set()
    for stored in sorted(hyp.database.fetch(hyp.rules_key)):
        rule_id = stored.decode("utf-8", "replace")
        found = _shrink(run, hyp, rule_id, _budget(rule_id in _EXPENSIVE))
        if found is None:
            hyp.database.delete(hyp.rules_key, stored)  # fixed since: forget it
        else:
            shrunk[rule_id] = found
    _explore(run, hyp)
    pending = [r for r in run.first_failure if r not in shrunk]
    while pending:  # shrinking may meet failures of other rules: those are shrunk too
        rule_id = pending.pop(0)
        first = run.first_failure[rule_id]
        found = None
        if first.choices is not None:
            # The secondary corpus: Hypothesis takes what is in the primary one as already
            # shrunk (it is where it keeps minimal examples) and would not shrink it again.
            hyp.database.save(hyp.rule_key(rule_id) + b".secondary", first.choices)
            found = _shrink(run, hyp, rule_id, _budget(first.expensive))
        if found is None:
            unshrunk.add(rule_id)
        shrunk[rule_id] = found or first
        hyp.database.save(hyp.rules_key, rule_id.encode())
        pending += [r for r in run.first_failure if r not in shrunk and r not in pending]
    if run.error is not None:
        raise run.error
    report = FunctionReport(name, examples=run.runs, warnings=run.collected_warnings())
    for rule_id, outcome in shrunk.items():
        command, curl = executor.reproducer(name, outcome.inputs)
        report.failures.append(
            Failure(
                rule_id,
                outcome.inputs,
                outcome.result,
                command,
                curl,
                rule_id not in unshrunk,
                found_after=run.found_after.get(rule_id),
            )
        )
    report.failures.sort(key=lambda f: (len(json_text(f.inputs)), json_text(f.inputs)))
    if thresholds:
        results = [outcome.result for outcome in run.memo.values()]
        report.thresholds = evaluate(thresholds, metrics_from_checks(results, thresholds))
    return report


def _explore(run: _FunctionRun, hyp: _Hypothesis) -> None:
    """``max_examples`` generated inputs, all run and recorded; none fails the Hypothesis test
    (so Hypothesis does not stop generating at the first bug)."""
    run.stopped, run.slow_runs, run.slow_budget = False, 0, EXPLORE_SLOW_BUDGET
    run.exploring = True

    def record(inputs: dict[str, Any]) -> None:
        run.outcome(inputs)

    try:
        raised = hyp.run(record, (Phase.generate,), hyp.key)
    finally:
        run.exploring = False
    _reraise_unexpected(run, raised)


def _budget(slow: bool) -> int:
    return SLOW_SHRINK_BUDGET if slow else 0


def _shrink(run: _FunctionRun, hyp: _Hypothesis, rule_id: str, budget: int) -> _Outcome | None:
    """Replay the stored example(s) of ``rule_id`` and shrink, spending at most ``budget``
    hangs; the minimal outcome, if any stored example still breaks the rule."""
    run.stopped, run.slow_runs, run.slow_budget = False, 0, budget

    def breaks_rule(inputs: dict[str, Any]) -> None:
        outcome = run.outcome(inputs)
        if outcome.rule_id == rule_id:
            raise _StreamFailure(_key(inputs))

    raised = hyp.run(breaks_rule, (Phase.reuse, Phase.shrink), hyp.rule_key(rule_id))
    _reraise_unexpected(run, raised)
    keys = [e.key for e in raised if isinstance(e, _StreamFailure)]
    return run.memo[keys[0]] if keys else None


def _reraise_unexpected(run: _FunctionRun, raised: list[BaseException]) -> None:
    if run.error is not None:
        raise run.error
    for problem in raised:
        if not isinstance(problem, _StreamFailure | _Abort):
            raise problem


# -- the whole manifest -----------------------------------------------------------------------


def run_manifest(
    manifest_path: Path,
    options: CheckOptions,
    *,
    module: str | None = None,
    url: str | None = None,
    max_examples: int = DEFAULT_EXAMPLES,
    seed: int | None = None,
    database: Path | None = DEFAULT_DATABASE,
    functions: Sequence[str] | None = None,
    invalid_inputs: bool = True,
    worker: GeneratorWorker | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> ManifestResult:
    """Validate the manifest, match it to ``module`` (if given), and property-test every
    streaming function -- in the worker (``module``) or over HTTP (``url``).

    Raises :class:`UsageError` for a missing manifest or bad arguments, ``TargetLoadError``
    for a module that cannot be imported, ``TargetUnreachable`` for a URL that cannot be
    reached; every finding about the manifest or the functions is in the result.
    """
    if module is None and url is None:
        raise UsageError("give --module (a .py file or module name) or --url (the gateway)")
    if max_examples < 1:
        raise UsageError(f"--examples must be at least 1, got {max_examples}")
    started = time.monotonic()
    emit = on_event or (lambda _event: None)
    get_checker(options.contract)  # an unknown contract is a usage error, before any work
    manifest, found = load_manifest(manifest_path)
    target = url if url is not None else str(module)
    result = ManifestResult(
        str(manifest_path),
        redact_url(target) if url is not None else target,
        options.contract,
        found,
        [],
        seed,
        max_examples,
    )
    if manifest is None:
        result.duration_ms = (time.monotonic() - started) * 1000.0
        return result
    selected = _select(manifest, functions)
    own_worker = worker is None and module is not None
    active = worker or (GeneratorWorker() if module is not None else None)
    executor: Executor | None = None
    try:
        testable, skipped = _match(manifest, module, active, result)
        if url is not None:
            executor = UrlExecutor(url, options)
        else:
            assert module is not None and active is not None
            executor = ModuleExecutor(module, options, active)
        for spec in selected:
            if not spec.streaming:
                continue
            try:
                report = _test_function(
                    spec,
                    executor,
                    skipped,
                    testable,
                    options,
                    emit,
                    max_examples=max_examples,
                    seed=seed,
                    database=database,
                    invalid_inputs=invalid_inputs,
                )
            except KeyboardInterrupt:
                # Ctrl-C: the functions finished so far are still a result (a partial report);
                # the one in progress is left out rather than reported half-tested.
                result.interrupted = True
                break
            result.functions.append(report)
    finally:
        if executor is not None:
            executor.close()
        if own_worker and active is not None:
            active.close()
    result.duration_ms = (time.monotonic() - started) * 1000.0
    return result


def _select(manifest: Manifest, names: Sequence[str] | None) -> list[FunctionSpec]:
    if not names:
        return list(manifest.functions)
    out = []
    for name in names:
        spec = manifest.function(name)
        if spec is None:
            known = ", ".join(f.name for f in manifest.functions) or "none"
            raise UsageError(f"--function {name!r} is not in the manifest (it lists: {known})")
        out.append(spec)
    return out


def _match(
    manifest: Manifest,
    module: str | None,
    worker: GeneratorWorker | None,
    result: ManifestResult,
) -> tuple[set[str], dict[str, str]]:
    """Signature checks against the module, when there is one; which functions to test."""
    if module is None or worker is None:
        return {f.name for f in manifest.streaming}, {}
    facts = worker.inspect(module, [f.name for f in manifest.functions])
    match = match_functions(manifest, module, facts.functions, facts.available)
    result.violations.extend(match.violations)
    result.matched = True
    return set(match.testable), match.skipped


def _test_function(
    spec: FunctionSpec,
    executor: Executor,
    skipped: Mapping[str, str],
    testable: set[str],
    options: CheckOptions,
    emit: Callable[[Event], None],
    *,
    max_examples: int,
    seed: int | None,
    database: Path | None,
    invalid_inputs: bool,
) -> FunctionReport:
    started = time.monotonic()
    emit(FunctionStarted(spec.name, max_examples))
    if spec.name not in testable:
        reason = skipped.get(spec.name, "not property-tested")
        report = FunctionReport(spec.name, skipped=reason)
    else:
        report = property_test(
            spec,
            executor,
            contract=options.contract,
            max_examples=max_examples,
            seed=seed,
            database=database,
            emit=emit,
            identity=executor.target,
            thresholds=options.thresholds,
        )
        if invalid_inputs and isinstance(executor, UrlExecutor):
            report.invalid_inputs = check_invalid_inputs(spec, executor, options.contract)
    report.duration_ms = (time.monotonic() - started) * 1000.0
    emit(FunctionFinished(report))
    return report
