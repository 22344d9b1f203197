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
"flaky".  A failure that cost a timeout (a hang) is not shrunk: each attempt would cost the
timeout again, so it is reported with the input that first showed it.

Over HTTP, each function also gets invalid inputs (a required parameter missing, a parameter
of the wrong type); the endpoint must reject them with a 4xx JSON error, or stream one
``error`` event -- never a 5xx, a hang, a broken stream, or a normal run.

The engine reports progress through plain dataclass events (:class:`FunctionStarted`,
:class:`ExampleRun`, :class:`FunctionFinished`); the command line draws them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import shlex
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    InMemoryExampleDatabase,
)
from hypothesis.errors import Unsatisfiable
from hypothesis.reporting import with_reporter

from harness._contracts.gateway_codes import GatewayCodes
from harness._contracts.manifest import (
    FunctionSpec,
    Manifest,
    invalid_input_accepted,
    invalid_input_response,
    load_manifest,
    match_functions,
)
from harness._contracts.registry import get_checker
from harness._core.errors import HarnessError, UsageError
from harness._core.options import DEFAULT_EXAMPLES, CheckOptions
from harness._core.redact import PUBLIC_HEADERS, REDACTED, redact_url
from harness._core.roles import Roles, roles_of
from harness._core.rules import Violation, strict, violation
from harness._core.session import CheckResult, ContractChecker
from harness._core.sse import SSEEvent
from harness._core.text import shorten
from harness._core.thresholds import Threshold, ThresholdResult, evaluate, metrics_from_checks
from harness._runners.gen import GeneratorWorker

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_EXAMPLES",
    "ExampleRun",
    "Failure",
    "FunctionFinished",
    "FunctionReport",
    "FunctionStarted",
    "InvalidInputCase",
    "ManifestResult",
    "inputs_strategy",
    "invalid_input_cases",
    "run_manifest",
    "strategy_for",
]

DEFAULT_DATABASE: Final = Path(".hypothesis")

#: Failures that cost a timeout each time they are tried: reported unshrunk.
_EXPENSIVE: Final = frozenset(
    {"gen.timeout", "timeout.first-byte", "timeout.idle", "timeout.total"}
)
_INPUT_PREVIEW: Final = 200

# -- rules ------------------------------------------------------------------------------------


# -- events for progress ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionStarted:
    name: str
    max_examples: int


@dataclass(frozen=True, slots=True)
class ExampleRun:
    name: str
    #: Inputs run so far for this function (explore, replay and shrink steps together).
    runs: int
    #: Distinct failing rules found so far.
    failures: int
    #: This example's first error rule, or None when it passed.
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionFinished:
    report: FunctionReport


Event = FunctionStarted | ExampleRun | FunctionFinished

# -- results ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Failure:
    """One distinct failure, shrunk: its minimal inputs and what the stream did with them."""

    rule: str
    inputs: dict[str, Any]
    result: CheckResult
    reproducer: str
    curl: str | None = None
    shrunk: bool = True

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.result.violations if v.is_error]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "minimal_inputs": self.inputs,
            "shrunk": self.shrunk,
            "violations": [v.to_json() for v in self.errors],
            "reproducer": self.reproducer,
        }
        if self.curl is not None:
            out["curl"] = self.curl
        return out


@dataclass(slots=True)
class InvalidInputCase:
    """One request with invalid inputs, and how the endpoint answered it."""

    case: str
    inputs: dict[str, Any]
    violations: list[Violation]
    status: int | None = None
    curl: str | None = None

    @property
    def ok(self) -> bool:
        return not any(v.is_error for v in self.violations)

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "inputs": self.inputs,
            "ok": self.ok,
            "status": self.status,
            "violations": [v.to_json() for v in self.violations],
            "curl": self.curl,
        }


@dataclass(slots=True)
class FunctionReport:
    name: str
    examples: int = 0
    failures: list[Failure] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)
    invalid_inputs: list[InvalidInputCase] = field(default_factory=list)
    #: Why the function was not property-tested (a manifest finding), or None.
    skipped: str | None = None
    duration_ms: float = 0.0
    #: ``--threshold`` gates evaluated over all of the function's examples.
    thresholds: list[ThresholdResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.skipped is None
            and not self.failures
            and not any(v.is_error for v in self.warnings)  # under --strict they are
            and all(c.ok for c in self.invalid_inputs)
            and all(t.ok for t in self.thresholds)
        )

    @property
    def violations(self) -> list[Violation]:
        found = [v for f in self.failures for v in f.errors]
        found += [v for c in self.invalid_inputs for v in c.violations]
        return found + self.warnings

    @property
    def minimal_inputs(self) -> dict[str, Any] | None:
        return self.failures[0].inputs if self.failures else None

    def to_json(self) -> dict[str, Any]:
        first = self.failures[0] if self.failures else None
        out: dict[str, Any] = {
            "name": self.name,
            "ok": self.ok,
            "examples": self.examples,
            "violations": [v.to_json() for v in self.violations],
            "minimal_inputs": self.minimal_inputs,
            "reproducer": first.reproducer if first else None,
        }
        if first is not None and first.curl is not None:
            out["curl"] = first.curl
        out["failures"] = [f.to_json() for f in self.failures]
        out["invalid_inputs"] = [c.to_json() for c in self.invalid_inputs]
        out["skipped"] = self.skipped
        out["duration_ms"] = round(self.duration_ms, 3)
        if self.thresholds:  # only when gates were given
            out["thresholds"] = [t.to_json() for t in self.thresholds]
        return out


@dataclass(slots=True)
class ManifestResult:
    manifest: str
    target: str
    contract: str
    violations: list[Violation]
    functions: list[FunctionReport]
    seed: int | None = None
    max_examples: int = DEFAULT_EXAMPLES
    duration_ms: float = 0.0
    #: Whether the manifest was matched against the module's functions (needs --module).
    matched: bool = False
    #: Ctrl-C stopped the run: ``functions`` holds those finished before it.
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not any(v.is_error for v in self.violations) and all(f.ok for f in self.functions)

    def make_strict(self) -> None:
        """``--strict``: every warning fails, the manifest's and each function's."""
        self.violations[:] = [strict(v) for v in self.violations]
        for f in self.functions:
            f.warnings[:] = [strict(v) for v in f.warnings]
            for case in f.invalid_inputs:
                case.violations[:] = [strict(v) for v in case.violations]

    def to_json(self) -> dict[str, Any]:
        """The ``--format json`` verdict, exactly ``{"ok", "violations", "functions"}``: public
        interface.  Keys may be added inside a function object, never renamed."""
        return {
            "ok": self.ok,
            "violations": [v.to_json() for v in self.violations],
            "functions": [f.to_json() for f in self.functions],
        }


# -- strategies -------------------------------------------------------------------------------

#: Words that make text realistic and hostile at once: ASCII, accents, CJK, emoji, RTL, a
#: zero-width joiner, a long run without spaces.
_WORDS: Final = (
    "a",
    "hello",
    "héllo",
    "naïve",
    "日本語",
    "😀",
    "שלום",
    "e\u0301",
    "\u200d",
    "x" * 40,
    "0",
    "-1",
    "null",
    '"quoted"',
    "tab\there",
)
_SHORT_LIST: Final = 8
#: Long lists and sentences are concatenations of this many lists of at most _PART_MAX.
_LONG_PARTS: Final = 8
_SENTENCE_PARTS: Final = 3
_PART_MAX: Final = 20
_JSON_LEAVES: Final = 6


def strategy_for(schema: Mapping[str, Any] | bool) -> st.SearchStrategy[Any]:
    """A strategy for JSON values valid against ``schema`` (the subset manifests use)."""
    if schema is True or schema == {}:
        return _any_json()
    if schema is False:
        return st.nothing()
    assert isinstance(schema, Mapping)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([strategy_for({**schema, "type": k}) for k in kind])
    make = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    return _any_json() if make is None else make(schema)


def inputs_strategy(spec: FunctionSpec) -> st.SearchStrategy[dict[str, Any]]:
    """The ``inputs`` object of one call: required parameters always, optional ones sometimes."""
    required = {p.name: strategy_for(p.schema) for p in spec.parameters if p.required}
    optional = {p.name: strategy_for(p.schema) for p in spec.parameters if not p.required}
    return st.fixed_dictionaries(required, optional=optional)


def _any_json() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=_JSON_LEAVES,
    )


def _string(schema: Mapping[str, Any]) -> st.SearchStrategy[str]:
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    high = None if high is None else int(high)
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        regex = st.from_regex(pattern, fullmatch=True)
        return regex.filter(lambda s: low <= len(s) and (high is None or len(s) <= high))
    # Plain text first: it is what a failure shrinks towards.
    plain = st.text(min_size=low, max_size=high)
    separators = st.sampled_from([" ", " ", " ", "\n", "  ", "\r\n", "\t"])
    word = st.tuples(st.sampled_from(_WORDS) | st.text(min_size=1, max_size=6), separators)
    sentence = _long(word, _SENTENCE_PARTS).map(lambda ws: "".join(w + s for w, s in ws).strip(" "))
    if high is not None:
        sentence = sentence.map(lambda s: s[:high])
    if low:
        sentence = sentence.filter(lambda s: len(s) >= low)
    return st.one_of(plain, sentence)


def _long(element: st.SearchStrategy[Any], parts: int) -> st.SearchStrategy[list[Any]]:
    """Lists several times longer than ``st.lists`` makes (its lists average about five
    elements, however large ``max_size``), which still shrink to the empty list: the
    concatenation of ``parts`` independent lists, each of which shrinks on its own."""
    pieces = [st.lists(element, max_size=_PART_MAX)] * parts
    return st.tuples(*pieces).map(lambda lists: [x for part in lists for x in part])


def _integer(schema: Mapping[str, Any]) -> st.SearchStrategy[int]:
    low, high = _bounds(schema, integral=True)
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        lo = None if low is None else math.ceil(low / step)
        hi = None if high is None else math.floor(high / step)
        return st.integers(lo, hi).map(lambda n: n * step)
    return st.integers(
        None if low is None else math.ceil(low), None if high is None else math.floor(high)
    )


def _number(schema: Mapping[str, Any]) -> st.SearchStrategy[int | float]:
    low, high = _bounds(schema, integral=False)
    floats = st.floats(
        min_value=low,
        max_value=high,
        allow_nan=False,
        allow_infinity=False,
        exclude_min=_excluded(schema, "exclusiveMinimum", low),
        exclude_max=_excluded(schema, "exclusiveMaximum", high),
    )
    ints = _integer(schema)  # JSON numbers include integers, and code meets them most
    out: st.SearchStrategy[int | float] = st.one_of(ints, floats)
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        out = out.filter(lambda x: math.isclose(x / step, round(x / step)))
    return out


def _excluded(schema: Mapping[str, Any], key: str, bound: float | None) -> bool:
    return bound is not None and key in schema and schema[key] == bound


def _bounds(schema: Mapping[str, Any], *, integral: bool) -> tuple[float | None, float | None]:
    low = schema.get("minimum")
    high = schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    tick = 1 if integral else 0
    if isinstance(ex_low, int | float):
        low = max(low, ex_low + tick) if low is not None else ex_low + tick
    if isinstance(ex_high, int | float):
        high = min(high, ex_high - tick) if high is not None else ex_high - tick
    return low, high


def _boolean(schema: Mapping[str, Any]) -> st.SearchStrategy[bool]:
    return st.booleans()


def _array(schema: Mapping[str, Any]) -> st.SearchStrategy[list[Any]]:
    items = strategy_for(schema.get("items", True))
    low = int(schema.get("minItems", 0))
    high = schema.get("maxItems")
    high = None if high is None else int(high)
    unique = bool(schema.get("uniqueItems", False))
    short = st.lists(
        items,
        min_size=low,
        max_size=max(low, _SHORT_LIST) if high is None else high,
        unique_by=(lambda v: json.dumps(v, sort_keys=True)) if unique else None,
    )
    if high is not None and high <= _SHORT_LIST:
        return short

    def fit(xs: list[Any]) -> list[Any]:
        if unique:
            seen: dict[str, Any] = {}
            for x in xs:
                seen.setdefault(json.dumps(x, sort_keys=True), x)
            xs = list(seen.values())
        return xs if high is None else xs[:high]

    long = _long(items, _LONG_PARTS).map(fit)
    if low:
        long = long.filter(lambda xs: len(xs) >= low)
    return st.one_of(short, short, short, long)  # long lists a quarter of the time


def _object(schema: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    fixed = st.fixed_dictionaries(
        {k: strategy_for(v) for k, v in props.items() if k in required},
        optional={k: strategy_for(v) for k, v in props.items() if k not in required},
    )
    extra = schema.get("additionalProperties", not props)
    if extra is False:
        return fixed
    values = strategy_for(extra if isinstance(extra, Mapping) else True)
    more = st.dictionaries(st.text(max_size=8).filter(lambda k: k not in props), values, max_size=3)
    return st.tuples(fixed, more).map(lambda pair: {**pair[1], **pair[0]})


_BY_TYPE: Final[dict[str, Callable[[Mapping[str, Any]], st.SearchStrategy[Any]]]] = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "array": _array,
    "object": _object,
    "null": lambda _schema: st.none(),
}

# -- invalid inputs ---------------------------------------------------------------------------

_WRONG: Final[dict[str, Any]] = {
    "string": 12345,
    "integer": "not a number",
    "number": "not a number",
    "boolean": "yes",
    "array": "not a list",
    "object": "not an object",
}


def simplest_value(schema: Mapping[str, Any] | bool) -> Any:
    """A small valid value for ``schema``: the base of an invalid-inputs request."""
    if not isinstance(schema, Mapping) or not schema:
        return 0  # any JSON value will do
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind in ("integer", "number"):
        low, high = _bounds(schema, integral=kind == "integer")
        value = 0 if low is None or low <= 0 else low
        value = value if high is None or value <= high else high
        return math.ceil(value) if kind == "integer" else value
    if kind == "string":
        return "a" * int(schema.get("minLength", 0) or 1)
    if kind == "boolean":
        return False
    if kind == "array":  # one item: an empty list is often a valid call that does nothing
        high = schema.get("maxItems")
        n = max(int(schema.get("minItems", 0)), 1 if high is None or high >= 1 else 0)
        return [simplest_value(schema.get("items", True))] * n
    if kind == "object":
        props = schema.get("properties", {})
        return {k: simplest_value(props[k]) for k in schema.get("required", []) if k in props}
    return 0 if kind is None else None


def invalid_input_cases(spec: FunctionSpec) -> list[tuple[str, dict[str, Any]]]:
    """``(description, inputs)`` for each request the manifest rules out: every required
    parameter left out in turn, then every parameter given a value of the wrong type."""
    base = {p.name: simplest_value(p.schema) for p in spec.parameters if p.required}
    cases: list[tuple[str, dict[str, Any]]] = []
    for p in spec.parameters:
        if p.required:
            without = {k: v for k, v in base.items() if k != p.name}
            cases.append((f"the required parameter {p.name!r} missing", without))
    for p in spec.parameters:
        wrong = _WRONG[p.type]
        kind = {"str": "string", "int": "integer"}[type(wrong).__name__]
        cases.append(
            (f"{p.name!r} {_article(kind)} instead of {_article(p.type)}", {**base, p.name: wrong})
        )
    return cases


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


# -- reproducers ------------------------------------------------------------------------------


def json_text(obj: Any) -> str:
    """Compact JSON for people and shells: readable non-ASCII text ("héllo", "日本語"), but
    every character that does not print (controls such as U+0080, NBSP, zero-width joiners,
    unassigned code points) escaped as ``\\uXXXX``, so that what is shown is what is sent."""
    text = json.dumps(obj, ensure_ascii=False)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    code = ord(c)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def check_command(target: str, inputs: Mapping[str, Any], options: CheckOptions) -> str:
    """``stream-harness check TARGET --inputs '<json>'``, shell-quoted, secrets redacted."""
    parts = ["stream-harness", "check", target, "--inputs", json_text(inputs)]
    if options.contract != "prefab":
        parts += ["--contract", options.contract]
    for name, value in _shown_headers(options.headers):
        parts += ["--header", f"{name}: {value}"]
    return shlex.join(parts)


def curl_command(url: str, inputs: Mapping[str, Any], options: CheckOptions) -> str:
    """The same request as a ``curl -N`` line (secret header values redacted)."""
    parts = ["curl", "-N", "-X", "POST", url, "-H", "Content-Type: application/json"]
    for name, value in _shown_headers(options.headers):
        parts += ["-H", f"{name}: {value}"]
    parts += ["-d", json_text({"inputs": inputs})]
    return shlex.join(parts)


def _shown_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    shown = []
    for name, value in headers:
        if name.lower() == "content-type":
            continue  # the command sets it
        shown.append((name, value if name.lower() in PUBLIC_HEADERS else REDACTED))
    return shown


# -- executors: one example in, one checked stream out ----------------------------------------


class _Executor:
    """Runs one function with one input and checks the stream."""

    target: str

    def run(self, name: str, inputs: dict[str, Any], checker: ContractChecker) -> CheckResult:
        raise NotImplementedError

    def reproducer(self, name: str, inputs: dict[str, Any]) -> tuple[str, str | None]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _ModuleExecutor(_Executor):
    def __init__(self, module: str, options: CheckOptions, worker: GeneratorWorker) -> None:
        self.target = module
        self.options = options
        self.worker = worker

    def run(self, name: str, inputs: dict[str, Any], checker: ContractChecker) -> CheckResult:
        result = self.worker.run(f"{self.target}:{name}", inputs, self.options, checker)
        if result.extra.get("interrupted"):
            raise KeyboardInterrupt  # the runner kept a partial stream; the run must stop
        return result

    def reproducer(self, name: str, inputs: dict[str, Any]) -> tuple[str, str | None]:
        return check_command(f"{self.target}:{name}", inputs, self.options), None


class UrlExecutor(_Executor):
    """Examples as HTTP requests, all on one event loop with one client: a new client per
    example would pay for loading the TLS trust store (about 50 ms) and a connection each
    time, which is most of an example's cost on loopback."""

    def __init__(self, url: str, options: CheckOptions) -> None:
        self.target = redact_url(url)
        self.base = url
        self.options = options
        self.loop = asyncio.new_event_loop()
        self._client: httpx.AsyncClient | None = None
        self._probe: httpx.AsyncClient | None = None
        #: What the probe client saw of the last response: status, and an error's body.
        self.seen: dict[str, Any] = {}

    def url(self, name: str) -> str:
        if "{name}" in self.base:
            return self.base.replace("{name}", name)
        return f"{self.base.rstrip('/')}/invoke/{name}"

    def run(self, name: str, inputs: dict[str, Any], checker: ContractChecker) -> CheckResult:
        from harness._runners.http import run_url_async

        if self._client is None:
            self._client = self._new_client()
        options = dataclasses.replace(self.options, inputs=inputs)
        # The reference gateway turns a function's crash into a well-formed error event with a
        # reserved code: read it back as the bug it is (other servers never send these codes).
        checker = GatewayCodes(checker)
        return self.loop.run_until_complete(
            run_url_async(self.url(name), options, checker, client=self._client)
        )

    def probe(
        self, name: str, inputs: dict[str, Any], checker: ContractChecker
    ) -> tuple[CheckResult, int | None, bytes]:
        """One request whose status and error body are kept (for invalid inputs)."""
        from harness._runners.http import run_url_async

        if self._probe is None:
            self._probe = self._new_client(hooks={"response": [self._on_response]})
        self.seen = {}
        options = dataclasses.replace(self.options, inputs=inputs, resume_after=None)
        result = self.loop.run_until_complete(
            run_url_async(self.url(name), options, checker, client=self._probe)
        )
        return result, self.seen.get("status"), self.seen.get("body", b"")

    async def _on_response(self, response: httpx.Response) -> None:
        self.seen["status"] = response.status_code
        if not 200 <= response.status_code < 300:
            try:  # an error body is small: read it here, bounded, to judge it
                async with asyncio.timeout(self.options.idle_timeout):
                    await response.aread()
                self.seen["body"] = response.content[:4096]
            except (TimeoutError, httpx.HTTPError):
                self.seen["body"] = b""

    def _new_client(self, hooks: dict[str, list[Any]] | None = None) -> httpx.AsyncClient:
        from harness._runners.http import make_client

        # As run_url makes its own (the same TLS trust and proxy).
        return make_client(self.base, self.options, event_hooks=hooks)

    def reproducer(self, name: str, inputs: dict[str, Any]) -> tuple[str, str | None]:
        url = redact_url(self.url(name))
        return (
            check_command(url, inputs, self.options),
            curl_command(url, inputs, self.options),
        )

    def close(self) -> None:
        for client in (self._client, self._probe):
            if client is not None:
                self.loop.run_until_complete(client.aclose())
        self._client = self._probe = None
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


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
        executor: _Executor,
        contract: str,
        emit: Callable[[Event], None],
    ) -> None:
        self.name = name
        self.executor = executor
        self.contract = contract
        self.emit = emit
        self.memo: dict[str, _Outcome] = {}
        self.runs = 0
        #: The first failing outcome of each rule, in the order found.
        self.first_failure: dict[str, _Outcome] = {}
        self.warnings: dict[str, tuple[Violation, dict[str, Any], int]] = {}
        self.stopped = False  # a hang was met: run no new inputs in this step
        self.error: HarnessError | None = None

    def outcome(self, inputs: dict[str, Any]) -> _Outcome:
        """The outcome of one input: run it, or recall it if it ran before."""
        key = _key(inputs)
        outcome = self.memo.get(key)
        if outcome is None:
            if self.error is not None:
                raise _Abort(str(self.error))
            if self.stopped:
                reject()  # do not spend another timeout
            outcome = self.memo[key] = self._run(inputs)
        return outcome

    def _run(self, inputs: dict[str, Any]) -> _Outcome:
        try:
            result = self.executor.run(self.name, inputs, get_checker(self.contract))
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
            self.stopped = self.stopped or outcome.expensive
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
    max_examples: int, database: ExampleDatabase, phases: Sequence[Phase]
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
        wrapped = _hypothesis_settings(self.max_examples, self.database, phases)(wrapped)
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
            except BaseException as exc:
                return list(_flatten(exc))
        return []


def property_test(
    spec: FunctionSpec,
    executor: _Executor,
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
    run = _FunctionRun(spec.name, executor, contract, emit)
    digest = json.dumps([identity, spec.name, spec.inputs_schema()], sort_keys=True)
    hyp = _Hypothesis(
        inputs_strategy(spec),
        max_examples,
        seed,
        InMemoryExampleDatabase()
        if database is None
        else DirectoryBasedExampleDatabase(str(database)),
        hashlib.sha256(digest.encode()).hexdigest()[:32].encode(),
    )
    shrunk: dict[str, _Outcome] = {}
    for stored in sorted(hyp.database.fetch(hyp.rules_key)):
        rule_id = stored.decode("utf-8", "replace")
        found = _shrink(run, hyp, rule_id)
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
        if first.choices is not None and not first.expensive:
            # The secondary corpus: Hypothesis takes what is in the primary one as already
            # shrunk (it is where it keeps minimal examples) and would not shrink it again.
            hyp.database.save(hyp.rule_key(rule_id) + b".secondary", first.choices)
            found = _shrink(run, hyp, rule_id)
        shrunk[rule_id] = found or first
        hyp.database.save(hyp.rules_key, rule_id.encode())
        pending += [r for r in run.first_failure if r not in shrunk and r not in pending]
    if run.error is not None:
        raise run.error
    report = FunctionReport(spec.name, examples=run.runs, warnings=run.collected_warnings())
    for rule_id, outcome in shrunk.items():
        command, curl = executor.reproducer(spec.name, outcome.inputs)
        report.failures.append(
            Failure(rule_id, outcome.inputs, outcome.result, command, curl, not outcome.expensive)
        )
    report.failures.sort(key=lambda f: (len(json_text(f.inputs)), json_text(f.inputs)))
    if thresholds:
        results = [outcome.result for outcome in run.memo.values()]
        report.thresholds = evaluate(thresholds, metrics_from_checks(results, thresholds))
    return report


def _explore(run: _FunctionRun, hyp: _Hypothesis) -> None:
    """``max_examples`` generated inputs, all run and recorded; none fails the Hypothesis test
    (so Hypothesis does not stop generating at the first bug)."""
    run.stopped = False

    def record(inputs: dict[str, Any]) -> None:
        run.outcome(inputs)

    raised = hyp.run(record, (Phase.generate,), hyp.key)
    _reraise_unexpected(run, raised)


def _shrink(run: _FunctionRun, hyp: _Hypothesis, rule_id: str) -> _Outcome | None:
    """Replay the stored example(s) of ``rule_id`` and shrink; the minimal outcome, if any
    stored example still breaks the rule."""
    run.stopped = False

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


# -- invalid inputs over HTTP -----------------------------------------------------------------


class _TypeRecorder:
    """Delegates to a contract checker and remembers the type of each event."""

    def __init__(self, inner: ContractChecker) -> None:
        self.inner = inner
        self.name = inner.name
        self.roles: Roles = roles_of(inner)
        self.types: list[str] = []

    def feed(self, event: SSEEvent) -> list[Violation]:
        self.types.append(self.inner.event_type(event))
        return self.inner.feed(event)

    def finish(self, complete: bool = True) -> list[Violation]:
        return self.inner.finish(complete)

    def event_type(self, event: SSEEvent) -> str:
        return self.inner.event_type(event)


def check_invalid_inputs(
    spec: FunctionSpec, executor: UrlExecutor, contract: str
) -> list[InvalidInputCase]:
    """Send each invalid-inputs request of :func:`invalid_input_cases` and judge the answer."""
    out = []
    url = executor.url(spec.name)
    for case, inputs in invalid_input_cases(spec):
        recorder = _TypeRecorder(get_checker(contract))
        result, status, body = executor.probe(spec.name, inputs, recorder)
        found = _judge_invalid(case, result, recorder, status, body)
        shown = redact_url(url)
        out.append(
            InvalidInputCase(
                case, inputs, found, status, curl_command(shown, inputs, executor.options)
            )
        )
    return out


def _judge_invalid(
    case: str, result: CheckResult, recorder: _TypeRecorder, status: int | None, body: bytes
) -> list[Violation]:
    prefix = f"invalid inputs ({case}): "
    if status is not None and 400 <= status < 500:
        try:
            json.loads(body)
        except ValueError:
            text = body.decode("utf-8", "replace")
            msg = invalid_input_response(case, status, text)
            return [violation("manifest.invalid-input-response", msg)] if msg else []
        return []  # rejected, with a JSON reason: right
    types, roles = recorder.types, recorder.roles
    found = []
    for v in result.violations:
        if v.rule == "seq.first" and types and roles.is_failure(types[0]):
            continue  # a stream that is one failure event is a fine answer to bad inputs
        found.append(dataclasses.replace(v, message=prefix + v.message))
    if status is not None and 200 <= status < 300 and not any(v.is_error for v in found):
        last = types[-1] if types and roles.is_terminal(types[-1]) else None
        msg = invalid_input_accepted(case, last, failed=result.failure is not None)
        if msg:
            found.append(violation("manifest.invalid-input-accepted", msg))
    return found


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
    executor: _Executor | None = None
    try:
        testable, skipped = _match(manifest, module, active, result)
        if url is not None:
            executor = UrlExecutor(url, options)
        else:
            assert module is not None and active is not None
            executor = _ModuleExecutor(module, options, active)
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
    executor: _Executor,
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
