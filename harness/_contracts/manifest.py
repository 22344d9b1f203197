"""The prefab manifest (``prefab-manifest.json``): loading it, and matching it to the functions.

The manifest lists a prefab's functions -- name, ``streaming``, description, parameters with
JSON types, ``returns`` -- and is defined by ``schemas/prefab-manifest.schema.json``.  Loading
it is sans-I/O apart from reading the one file: every problem is a :class:`Violation`, because
a broken manifest is a finding like any broken stream (exit 1), not a reason to stop.  Only a
file that cannot be read at all raises :class:`UsageError` (exit 2).

    load_manifest(path)            -> (Manifest | None, [manifest.invalid-json / manifest.schema])
    match_functions(manifest, ...) -> [manifest.missing-function / .signature / .streaming-flag]

The ``manifest.invalid-input-*`` rules (an endpoint's answer to inputs the manifest rules out)
are catalogued here too, with the other ``manifest.*`` rules, so that every catalog has them;
:mod:`harness._proptest`, which sends those requests, applies them.

Matching needs facts about the user's functions -- their parameters, whether each is a
generator -- and finding those out means importing the user's module, which runs their code.
That happens in the generator worker's child process (``GeneratorWorker.inspect``), which
sends back :class:`FunctionInfo` values; this module only compares them with the manifest.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from harness._core.errors import UsageError
from harness._core.rules import Severity, Violation, rule, violation
from harness._core.schemas import schema_validator
from harness._core.text import shorten

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "MANIFEST_SCHEMA",
    "FunctionInfo",
    "FunctionSpec",
    "Manifest",
    "ParamInfo",
    "Parameter",
    "invalid_input_accepted",
    "invalid_input_response",
    "load_manifest",
    "match_functions",
]

#: The manifest's schema, relative to the schemas directory.
MANIFEST_SCHEMA: Final = "prefab-manifest.schema.json"
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

#: Keys of a manifest parameter that are about the parameter, not JSON Schema of its value.
_PARAMETER_ONLY: Final = frozenset({"name", "required"})
_SCHEMA_ERRORS_SHOWN: Final = 10

# -- the model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One declared parameter.  ``schema`` is the JSON Schema of its value: ``type`` plus any
    keywords the manifest gave (``enum``, ``minimum``, ``maxLength``, ``items``, ``default``...)."""

    name: str
    type: str
    required: bool
    schema: dict[str, Any]

    @property
    def has_default(self) -> bool:
        return "default" in self.schema


@dataclass(frozen=True)
class FunctionSpec:
    """One function the manifest declares."""

    name: str
    streaming: bool
    description: str
    parameters: tuple[Parameter, ...]
    returns: dict[str, Any] | None

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def inputs_schema(self) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of the ``inputs`` object a call sends."""
        return {
            "$schema": JSON_SCHEMA_DIALECT,
            "type": "object",
            "properties": {p.name: dict(p.schema) for p in self.parameters},
            "required": [p.name for p in self.parameters if p.required],
            "additionalProperties": False,
        }


@dataclass(frozen=True)
class Manifest:
    path: Path
    functions: tuple[FunctionSpec, ...]

    def function(self, name: str) -> FunctionSpec | None:
        return next((f for f in self.functions if f.name == name), None)

    @property
    def streaming(self) -> tuple[FunctionSpec, ...]:
        return tuple(f for f in self.functions if f.streaming)


# -- facts about the user's functions (found in the worker process) ---------------------------


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a Python function, as ``inspect.signature`` sees it.

    ``kind`` is ``inspect.Parameter.kind``'s name: ``POSITIONAL_ONLY``,
    ``POSITIONAL_OR_KEYWORD``, ``VAR_POSITIONAL``, ``KEYWORD_ONLY`` or ``VAR_KEYWORD``.
    """

    name: str
    kind: str
    has_default: bool
    default: str | None = None  # repr() of the default, for messages

    @property
    def by_name(self) -> bool:
        """Whether an input of this name reaches it (a gateway calls ``fn(**inputs)``)."""
        return self.kind in ("POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ParamInfo:
        return cls(str(obj["name"]), str(obj["kind"]), bool(obj["has_default"]), obj.get("default"))


@dataclass(frozen=True)
class FunctionInfo:
    """What the worker found under a name in the user's module.

    ``kind``: ``generator`` / ``async-generator`` (a ``def``/``async def`` with ``yield``),
    ``iterator`` (an ordinary function annotated to return an iterator), ``function``,
    ``coroutine`` (``async def`` without ``yield``), ``class``, or ``other`` (a callable
    object).  ``parameters`` is ``None`` when the callable has no readable signature.
    """

    name: str
    kind: str
    parameters: tuple[ParamInfo, ...] | None
    signature: str = ""

    @property
    def streams(self) -> bool:
        return self.kind in ("generator", "async-generator", "iterator")

    @property
    def accepts_any(self) -> bool:
        """``**kwargs``, or no signature to go by: any input name is taken."""
        return self.parameters is None or any(p.kind == "VAR_KEYWORD" for p in self.parameters)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FunctionInfo:
        params = obj.get("parameters")
        return cls(
            name=str(obj["name"]),
            kind=str(obj["kind"]),
            parameters=None if params is None else tuple(ParamInfo.from_json(p) for p in params),
            signature=str(obj.get("signature", "")),
        )


# -- rules ------------------------------------------------------------------------------------


@rule("manifest.invalid-json", Severity.ERROR, "The manifest file is not valid JSON.")
def manifest_invalid_json(
    path: str, msg: str, line: int, column: int, near: str = ""
) -> str | None:
    """``prefab-manifest.json`` must be strict JSON: a gateway parses it with a JSON parser
    and refuses the whole prefab otherwise.  The message gives the line and column of the first
    error.  Common causes: comments (``//`` or ``/* */`` -- JSON has no comments, even though
    the prefab guide's own sample shows one; move the note into ``description``), a trailing
    comma after the last item, single quotes, or Python's ``True``/``None`` instead of
    ``true``/``null``."""
    where = f"{path} line {line}, column {column}"
    if near.startswith(("//", "/*")):
        return (
            f"{where}: {near[:2]!r} starts a comment, and JSON has no comments "
            f'(the parser says: {msg}); remove it, or move the note into a "description"'
        )
    hint = ""
    if near.startswith(("True", "False", "None")):
        hint = "; JSON spells these true, false and null"
    elif near.startswith("'"):
        hint = "; JSON strings use double quotes"
    elif near.startswith(("}", "]")) and msg.startswith(("Expecting property", "Expecting value")):
        hint = "; a trailing comma before it? JSON allows none"
    return f"{where}: {msg}{hint}"


@rule("manifest.schema", Severity.ERROR, "The manifest does not match the manifest schema.")
def manifest_schema(where: str, problem: str) -> str | None:
    """The manifest is JSON but not a prefab manifest: a missing ``functions`` list, a
    parameter without ``name`` or ``type``, a type that is not one of the JSON names the guide
    uses (``string``, ``integer``, ``number``, ``boolean``, ``array``, ``object`` -- not
    ``str`` or ``int``), an unknown key on a parameter (usually a misspelt JSON Schema keyword:
    ``maxlength`` for ``maxLength``), two functions or two parameters with one name, or a
    ``default`` or ``enum`` value that does not have the parameter's type.  The schema is
    ``schemas/prefab-manifest.schema.json``."""
    return f"{where}: {problem}"


@rule("manifest.missing-function", Severity.ERROR, "A function the manifest lists is missing.")
def manifest_missing_function(name: str, module: str, hint: str = "") -> str | None:
    """The manifest declares a function the module does not define (or defines as something
    that cannot be called).  A gateway answers every call of it with an error.  Check the
    spelling in both places, and that the manifest points at the right module.  Functions the
    module defines but the manifest does not list are fine: they are simply not exposed."""
    return f"the manifest lists {name!r}, but {module} has no such function{hint}"


@rule("manifest.signature", Severity.ERROR, "The manifest's parameters do not fit the function.")
def manifest_signature(name: str, problem: str) -> str | None:
    """A gateway calls ``fn(**inputs)`` with the inputs the manifest allows, so the two must
    agree: every declared parameter must be a parameter of the function (unless it takes
    ``**kwargs``), and every function parameter without a default must be declared and
    ``"required": true`` -- otherwise a valid call fails with a ``TypeError`` before the first
    event.  Positional-only parameters (before ``/``) cannot be passed by name at all.  A
    required parameter the function gives a default is fine."""
    return f"{name}: {problem}"


@rule("manifest.streaming-flag", Severity.ERROR, "The streaming flag does not match the function.")
def manifest_streaming_flag(name: str, streaming: bool, kind: str) -> str | None:
    """``"streaming": true`` tells the gateway to iterate the function's result and send each
    item as an SSE event.  A generator not marked streaming is called as an ordinary function:
    the gateway tries to send the generator object itself and fails.  A function marked
    streaming that is not a generator (and does not return an iterator) has nothing to
    iterate.  Mark generators ``"streaming": true`` and nothing else."""
    if streaming and kind in ("generator", "async-generator", "iterator"):
        return None
    if not streaming and kind not in ("generator", "async-generator"):
        return None
    if streaming:
        what = {
            "coroutine": "an async def without yield (it returns a coroutine, not a stream)",
            "class": "a class",
        }.get(kind, "an ordinary function, not a generator (it has no yield)")
        return f'{name} is marked "streaming": true but is {what}'
    what = "an async generator" if kind == "async-generator" else "a generator function"
    return (
        f'{name} is {what}, but the manifest does not mark it "streaming": true; '
        "a gateway would not stream its events"
    )


@rule(
    "manifest.invalid-input-accepted",
    Severity.ERROR,
    "The endpoint ran the function on inputs the manifest does not allow.",
)
def invalid_input_accepted(case: str, last: str | None, failed: bool = False) -> str | None:
    """The harness sent inputs the manifest rules out -- a required parameter missing, a
    parameter of the wrong type -- and the endpoint streamed as if they were fine (the stream
    ended with ``done``).  A gateway should validate the inputs against the manifest and
    answer 422 with a JSON error, or the function should report the problem as an ``error``
    event; otherwise bad calls look like successes to the client."""
    # last: the stream's terminal event type; failed: it reported an in-band failure.
    if failed:
        return None
    end = f'ended with "{last}"' if last else "had no terminal event"
    return f"invalid inputs ({case}) were accepted: the stream {end}, not an error"


@rule(
    "manifest.invalid-input-response",
    Severity.ERROR,
    "Invalid inputs were rejected without a JSON error body.",
)
def invalid_input_response(case: str, status: int, body: str) -> str | None:
    """A 4xx status is the right answer to invalid inputs, but clients (and the prefab
    gateway's own clients) read the reason from a JSON body such as
    ``{"error": "...", "detail": [...]}``.  This response had no JSON body, so the caller
    cannot tell which input was wrong."""
    shown = shorten(body, 80)
    return (
        f"invalid inputs ({case}) got HTTP {status} without a JSON error body (the body: {shown!r})"
    )


# -- loading ----------------------------------------------------------------------------------


def load_manifest(path: Path) -> tuple[Manifest | None, list[Violation]]:
    """Read and validate ``path``.  Returns the manifest (``None`` when it is unusable) and
    the ``manifest.invalid-json`` / ``manifest.schema`` violations found.

    Raises :class:`UsageError` when the file cannot be read at all.
    """
    shown = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such manifest file: {shown}") from None
    except IsADirectoryError:
        raise UsageError(f"{shown} is a directory; give the path of prefab-manifest.json") from None
    except OSError as e:
        raise UsageError(f"cannot read the manifest {shown}: {e.strerror or e}") from None
    doc, found = _parse(shown, raw)
    if found:
        return None, found
    found = _schema_violations(doc)
    if found:
        return None, found
    manifest = _build(path, doc)
    found = _semantic_violations(manifest)
    return (None, found) if found else (manifest, [])


def _parse(shown: str, raw: bytes) -> tuple[Any, list[Violation]]:
    try:
        text = raw.decode("utf-8-sig")  # a BOM is tolerated: editors on Windows add one
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        msg = f"the file is not UTF-8 (byte 0x{raw[e.start]:02x})"
        text = _must(manifest_invalid_json(shown, msg, line, column))
        return None, [violation("manifest.invalid-json", text)]
    try:
        return json.loads(text), []
    except json.JSONDecodeError as e:
        near = text[e.pos : e.pos + 8]
        msg = _must(manifest_invalid_json(shown, e.msg, e.lineno, e.colno, near))
        return None, [violation("manifest.invalid-json", msg)]


def _schema_violations(doc: Any) -> list[Violation]:
    validator = schema_validator(MANIFEST_SCHEMA)
    errors = sorted(validator.iter_errors(doc), key=lambda e: (list(e.absolute_path), e.message))
    found = []
    for error in errors[:_SCHEMA_ERRORS_SHOWN]:
        where = _json_path(error.absolute_path)
        found.append(violation("manifest.schema", _must(manifest_schema(where, _problem(error)))))
    if len(errors) > _SCHEMA_ERRORS_SHOWN:
        more = f"and {len(errors) - _SCHEMA_ERRORS_SHOWN} more problems not shown"
        found.append(violation("manifest.schema", _must(manifest_schema("manifest", more))))
    return found


def _problem(error: Any) -> str:
    """jsonschema's message, shortened where it would quote a whole sub-document."""
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        known = list(error.schema.get("properties", {}))
        parts = []
        for key in extra:
            close = difflib.get_close_matches(key, known, n=1)
            parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return f"unknown key {', '.join(parts)}; a parameter takes {', '.join(known)}"
    if error.validator == "enum" and error.path and error.path[-1] == "type":
        python = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
        python |= {"list": "array", "dict": "object"}
        spelt = python.get(str(error.instance))
        said = f" (did you mean {spelt!r}?)" if spelt else ""
        return (
            f"{error.instance!r} is not a manifest type{said}; use one of {error.validator_value}"
        )
    message: str = error.message
    return shorten(message, 200)


def _json_path(parts: Iterable[Any]) -> str:
    out = "manifest"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _build(path: Path, doc: Mapping[str, Any]) -> Manifest:
    functions = []
    for fn in doc["functions"]:
        params = tuple(
            Parameter(
                name=p["name"],
                type=p["type"],
                required=bool(p.get("required", False)),
                schema={k: v for k, v in p.items() if k not in _PARAMETER_ONLY},
            )
            for p in fn.get("parameters", [])
        )
        returns = fn.get("returns")
        functions.append(
            FunctionSpec(
                name=fn["name"],
                streaming=bool(fn.get("streaming", False)),
                description=str(fn.get("description", "")),
                parameters=params,
                returns=dict(returns) if isinstance(returns, dict) else None,
            )
        )
    return Manifest(path, tuple(functions))


def _semantic_violations(manifest: Manifest) -> list[Violation]:
    """What JSON Schema cannot say: unique names, defaults and enums of the declared type,
    regular expressions that compile, bounds that leave some value."""
    found: list[Violation] = []

    def add(where: str, problem: str) -> None:
        found.append(violation("manifest.schema", _must(manifest_schema(where, problem))))

    for name in _duplicates(f.name for f in manifest.functions):
        add("manifest.functions", f"two functions are named {name!r}")
    for i, fn in enumerate(manifest.functions):
        for name in _duplicates(p.name for p in fn.parameters):
            add(f"manifest.functions[{i}] ({fn.name})", f"two parameters are named {name!r}")
        for j, p in enumerate(fn.parameters):
            where = f"manifest.functions[{i}].parameters[{j}] ({fn.name}.{p.name})"
            for problem in _parameter_problems(p):
                add(where, problem)
    return found


def _parameter_problems(p: Parameter) -> list[str]:
    from jsonschema import Draft202012Validator

    problems = []
    bare = {k: v for k, v in p.schema.items() if k not in ("default", "examples", "enum", "const")}
    check = Draft202012Validator(bare)
    if "default" in p.schema and not check.is_valid(p.schema["default"]):
        problems.append(f"the default {json.dumps(p.schema['default'])} is not a valid {p.type}")
    bad = [v for v in p.schema.get("enum", []) if not check.is_valid(v)]
    if bad:
        problems.append(f"enum values {json.dumps(bad)} are not valid {p.type} values")
    pattern = p.schema.get("pattern")
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as e:
            problems.append(f"the pattern {pattern!r} is not a regular expression: {e}")
    for low, high in (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems")):
        if low in p.schema and high in p.schema and p.schema[low] > p.schema[high]:
            problems.append(f"{low} {p.schema[low]} is greater than {high} {p.schema[high]}")
    return problems


def _duplicates(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for n in names:
        if n in seen and n not in dup:
            dup.append(n)
        seen.add(n)
    return dup


def _must(msg: str | None) -> str:
    assert msg is not None
    return msg


# -- matching against the module --------------------------------------------------------------


@dataclass
class MatchResult:
    """Findings of :func:`match_functions`, and which functions may be property-tested."""

    violations: list[Violation] = field(default_factory=list)
    #: Streaming functions with no finding: their calls will bind, and they yield.
    testable: list[str] = field(default_factory=list)
    #: Why a streaming function is not property-tested, by name.
    skipped: dict[str, str] = field(default_factory=dict)


def match_functions(
    manifest: Manifest,
    module: str,
    infos: Mapping[str, FunctionInfo | None],
    available: Sequence[str] = (),
) -> MatchResult:
    """Compare each declared function with what the module holds under its name.

    ``infos`` maps every declared name to its :class:`FunctionInfo` (``None``: the module has
    nothing callable of that name); ``available`` lists the module's public callables, for
    "did you mean".  Functions of the module the manifest does not list are not findings.
    """
    out = MatchResult()
    for spec in manifest.functions:
        info = infos.get(spec.name)
        before = len(out.violations)
        if info is None:
            close = difflib.get_close_matches(spec.name, list(available), n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            msg = _must(manifest_missing_function(spec.name, module, hint))
            out.violations.append(violation("manifest.missing-function", msg))
        else:
            flag = manifest_streaming_flag(spec.name, spec.streaming, info.kind)
            if flag:
                out.violations.append(violation("manifest.streaming-flag", flag))
            out.violations.extend(
                violation("manifest.signature", _must(manifest_signature(spec.name, problem)))
                for problem in signature_problems(spec, info)
            )
        if spec.streaming:
            if len(out.violations) == before:
                out.testable.append(spec.name)
            else:
                rules = sorted({v.rule for v in out.violations[before:]})
                out.skipped[spec.name] = f"not property-tested: see {', '.join(rules)}"
    return out


def signature_problems(spec: FunctionSpec, info: FunctionInfo) -> list[str]:
    """Each way a call with the manifest's inputs would not bind to the function."""
    if info.parameters is None:
        return []
    params = {p.name: p for p in info.parameters}
    sig = f"{info.name}{info.signature}" if info.signature else info.name
    problems = []
    for declared in spec.parameters:
        p = params.get(declared.name)
        if p is None:
            if not info.accepts_any:
                problems.append(
                    f"the manifest declares parameter {declared.name!r}, but {sig} has no such "
                    "parameter (and no **kwargs): every call passing it fails with a TypeError"
                )
        elif p.kind == "POSITIONAL_ONLY":
            problems.append(
                f"parameter {p.name!r} of {sig} is positional-only; a gateway passes inputs "
                "by name, so it can never receive it"
            )
    for p in info.parameters:
        if p.has_default or not (p.by_name or p.kind == "POSITIONAL_ONLY"):
            continue
        declared_p = spec.parameter(p.name)
        if declared_p is None:
            problems.append(
                f"{sig} requires {p.name!r} (it has no default), but the manifest does not "
                "declare it: every call fails with a TypeError"
            )
        elif not declared_p.required and p.kind != "POSITIONAL_ONLY":
            problems.append(
                f"{sig} requires {p.name!r} (it has no default), but the manifest marks it "
                'optional: a call that omits it fails; mark it "required": true or give the '
                "function a default"
            )
    return problems
