"""Contract files: read, validated against ``schemas/contract.schema.json``, compiled once.

A contract file (YAML or JSON, documented in ``docs/contracts.md``) becomes a
:class:`Contract`: an immutable, compiled value shared by every stream checked against it --
the order pattern as a DFA, a ``jsonschema`` validator per type (the authority), a
pydantic-core fast path generated from the same schemas, the type resolution, the invariant
specs.  Compiling is the expensive part (milliseconds), so it happens once per contract per
process; a checker per stream costs a few attribute stores.

Every problem in a file is reported as one line naming the file and the JSON pointer of the
problem -- ``my.yaml: /order/pattern: unknown type "finsh" (column 23)`` -- raised as
:class:`~harness._core.errors.UsageError` (exit 2).

Schema references: a type's schema is inline, or a ``$ref``.  Relative references resolve
against the contract file's own location, as in any JSON Schema: a user's file can refer to
``schemas/start.json`` next to it, and the built-in contracts (which live at
``<schemas>/contracts/``) to ``../prefab/start.schema.json``.  Bundled schemas can also be
named by their ``$id`` from anywhere.  Only local files are ever read; nothing is fetched.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable, Unretrievable
from referencing.jsonschema import DRAFT202012

from harness._contracts.fastpath import FastPath, compile_schema, tagged_union
from harness._contracts.invariants import ContractError, InvariantSpec, build_invariant
from harness._contracts.order import Order, OrderError, compile_order
from harness._contracts.pointer import MISSING, Pointer, parse_pointer, pointer_name, resolve
from harness._contracts.roles import ContractRoles, compile_roles
from harness._contracts.rules import json_equal, show
from harness._core.errors import UsageError
from harness._core.schemas import resources, schema_validator
from harness._core.text import shorten

__all__ = ["Case", "Contract", "compile_contract", "load_contract_file", "read_document"]

CONTRACT_SCHEMA: Final = "contract.schema.json"
_SUFFIXES: Final = (".yaml", ".yml", ".json")


# -- the compiled contract ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """``type`` names an event when every ``(pointer, test)`` holds."""

    type: str
    tests: tuple[tuple[Pointer, Callable[[object], bool]], ...]

    def holds(self, event: object) -> bool:
        return all(test(resolve(event, pointer)) for pointer, test in self.tests)


@dataclass(frozen=True, slots=True)
class Contract:
    """A compiled contract (see the module docstring); shared, never mutated."""

    name: str
    summary: str
    source: str  # the file, for messages
    json: bool  # data is JSON (else plain text)
    type_from: str  # "pointer" | "event" | "cases"
    types: tuple[str, ...]  # every type, in declaration order
    order: Order
    type_pointer: Pointer = ()
    cases: tuple[Case, ...] = ()
    sentinel: tuple[str, str] | None = None  # (data text, type)
    slow: Mapping[str, Any] = field(default_factory=dict)  # type -> jsonschema validator
    #: pointer typing: one tagged union over every type, ``validate_json(text)``.
    fast: FastPath | None = None
    #: event/cases typing: type -> ``validate_json`` (event+JSON) or ``validate_python``.
    fast_by_type: Mapping[str, FastPath | None] = field(default_factory=dict)
    #: cases typing: type -> ``validate_json``, to try the previous event's type first.
    fast_json_by_type: Mapping[str, FastPath] = field(default_factory=dict)
    kind_of: Callable[[Any], Any] = operator.itemgetter("type")
    failure: frozenset[str] = frozenset()
    #: What the types mean (content, failure, terminal, restart, progress): ``roles:``.
    roles: ContractRoles = field(default_factory=ContractRoles)
    invariants: tuple[InvariantSpec, ...] = ()
    hints: Mapping[str, str] = field(default_factory=dict)
    #: The framings the stream may come in (``harness._core.framing``), the preferred first.
    framings: tuple[str, ...] = ("sse",)
    #: Response headers required: lower-case name -> value (case-insensitive), or True: any.
    headers: Mapping[str, str | bool] = field(default_factory=dict)
    #: Unknown event types are passed over with a warning (the protocol allows new ones).
    open: bool = False
    #: The types whose data is JSON (all when ``json``, unless a type says ``data: text``).
    json_types: frozenset[str] = frozenset()

    @property
    def type_name(self) -> str:
        """How messages name the type field: ``type`` for ``/type``."""
        return pointer_name(self.type_pointer)

    def classify(self, event: object) -> str | None:
        for case in self.cases:
            for pointer, test in case.tests:
                if not test(resolve(event, pointer)):
                    break
            else:
                return case.type
        return None


# -- reading files --------------------------------------------------------------------------


def read_document(path: Path, what: str = "contract file") -> object:
    """A contract (or schema) file's content; UsageError with line and column if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the file is not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(
                f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"{path}: not valid YAML: {problem}{where}") from None


def load_contract_file(path: str | Path) -> Contract:
    """Read, validate and compile the contract file at ``path``."""
    p = Path(path)
    if p.suffix.lower() not in _SUFFIXES:
        raise UsageError(f"{p}: a contract file ends in .yaml, .yml or .json")
    if not p.is_file():
        raise UsageError(f"no such contract file: {p}")
    return compile_contract(read_document(p), label=str(p), base_uri=p.resolve().as_uri())


def compile_contract(document: object, *, label: str, base_uri: str) -> Contract:
    """Validate ``document`` (a parsed contract file) and compile it.

    ``label`` names the file in messages; relative ``$ref``\\ s resolve against ``base_uri``.
    """
    try:
        _validate(document)
        assert isinstance(document, dict)
        return _Compiler(document, label, base_uri).contract()
    except ContractError as e:
        message = " ".join(str(e).split())
        raise UsageError(f"{label}: {e.pointer or '/'}: {message}") from None


def _validate(document: object) -> None:
    if not isinstance(document, dict):
        raise ContractError(
            "", f"a contract file holds one object (a mapping), not {show(document)}"
        )
    error = best_match(schema_validator(CONTRACT_SCHEMA).iter_errors(document))
    if error is not None:
        message = shorten(error.message, 200)
        raise ContractError(_pointer_text(error.absolute_path), message)


def _pointer_text(path: Sequence[object]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


# -- schema references ----------------------------------------------------------------------


def _retrieve(uri: str) -> Resource[Any]:
    """Load a local schema file a ``$ref`` names (``file:`` URIs only: nothing is fetched)."""
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise NoSuchResource(uri)
    path = Path(unquote(parts.path))
    try:
        contents = read_document(path, "schema file")
    except UsageError as e:
        raise NoSuchResource(uri) from e  # the UsageError says why, for the message
    return Resource.from_contents(contents, default_specification=DRAFT202012)


def _base_registry() -> Registry[Any]:
    return Registry(retrieve=_retrieve).with_resources(resources())  # type: ignore[call-arg]


def _reason(error: BaseException) -> str:
    """Why a reference did not resolve, if a local file was at fault."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, UsageError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return ""


_ANNOTATION_VALUES: Final = frozenset({"const", "enum", "examples", "default"})


def _check_refs(node: object, resolver: Any, where: str, seen: set[int]) -> None:
    """Resolve every ``$ref`` reachable from ``node`` now, so a bad one is a load error."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _check_refs(item, resolver, f"{where}/{i}", seen)
        return
    if not isinstance(node, dict) or id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node.get("$id"), str):
        resolver = resolver.in_subresource(
            Resource.from_contents(node, default_specification=DRAFT202012)
        )
    ref = node.get("$ref")
    if isinstance(ref, str):
        try:
            resolved = resolver.lookup(ref)
        except (Unresolvable, Unretrievable) as e:
            why = _reason(e)
            detail = f" ({why})" if why else ""
            raise ContractError(f"{where}/$ref", f"cannot resolve {show(ref)}{detail}") from None
        try:
            Draft202012Validator.check_schema(resolved.contents)
        except SchemaError as e:
            raise ContractError(
                f"{where}/$ref", f"{show(ref)} is not a valid JSON Schema: {e.message}"
            ) from None
        _check_refs(resolved.contents, resolved.resolver, f"{where}/$ref", seen)
    for key, value in node.items():
        if key not in _ANNOTATION_VALUES:
            _check_refs(value, resolver, f"{where}/{_pointer_text([key])[1:]}", seen)


# -- the compiler ---------------------------------------------------------------------------

_TESTS: Final[Mapping[str, Callable[[object], bool]]] = {
    "present": lambda v: v is not MISSING and v is not None,
    "absent": lambda v: v is MISSING or v is None,
    "empty": lambda v: v is MISSING or v is None or v in ("", [], {}),
    "non-empty": lambda v: not (v is MISSING or v is None or v in ("", [], {})),
}


def _at(obj: object, pointer: Pointer) -> object:
    return resolve(obj, pointer)


def _equals(expected: object) -> Callable[[object], bool]:
    def test(value: object) -> bool:
        return value is not MISSING and json_equal(value, expected)

    return test


class _Compiler:
    def __init__(self, doc: dict[str, Any], label: str, base_uri: str) -> None:
        self.doc, self.label, self.base_uri = doc, label, base_uri
        self.types: list[str] = list(doc["types"])
        sentinel = doc.get("sentinel")
        self.sentinel = (sentinel["data"], sentinel["type"]) if sentinel else None
        if self.sentinel and self.sentinel[1] not in self.types:
            self.types.append(self.sentinel[1])
        self.json = doc.get("data", "json") == "json"
        default = doc.get("data", "json")
        #: Types whose data is JSON: all of them, none, or (a mixed contract) those that say so.
        self.json_types = frozenset(
            name
            for name in self.types
            if ((doc["types"].get(name) or {}).get("data") or default) == "json"
        )
        if self.sentinel:
            self.json_types -= {self.sentinel[1]}
        self.registry = _base_registry()

    def contract(self) -> Contract:
        type_from, pointer, cases = self._type_source()
        mixed = [
            name
            for name, spec in self.doc["types"].items()
            if (spec or {}).get("data", self.doc.get("data", "json"))
            != self.doc.get("data", "json")
        ]
        if mixed and type_from != "event":
            raise ContractError(
                f"/types/{_pointer_text([mixed[0]])[1:]}/data",
                "a type may read its data differently from the contract only when types come "
                "from the SSE event field ({from: event}): the type must be known first",
            )
        slow, cores = self._schemas()
        order, failure = self._order()
        roles = compile_roles(
            self.doc.get("roles"), types=self.types, json=self.json, order=order, failure=failure
        )
        failure |= frozenset(roles.failure)
        invariants = tuple(
            build_invariant(raw, f"/invariants/{i}", self.types, roles)
            for i, raw in enumerate(self.doc.get("invariants", []))
        )
        fast, by_type = self._fast_paths(type_from, pointer, cores)
        by_type_json: dict[str, FastPath] = {}
        if type_from == "cases":
            by_type_json = {
                name: SchemaValidator(cores.get(name) or cs.any_schema()).validate_json
                for name in self.types
            }
        kind_of: Callable[[Any], Any] = operator.itemgetter(pointer[0] if pointer else "type")
        if len(pointer) > 1:
            kind_of = functools.partial(_at, pointer=pointer)
        return Contract(
            name=self.doc["name"],
            summary=self.doc.get("summary", ""),
            source=self.label,
            json=self.json,
            json_types=self.json_types,
            type_from=type_from,
            types=tuple(self.types),
            order=order,
            type_pointer=pointer,
            cases=cases,
            sentinel=self.sentinel,
            slow=slow,
            fast=fast,
            fast_by_type=by_type,
            fast_json_by_type=by_type_json,
            kind_of=kind_of,
            failure=failure,
            roles=roles,
            invariants=invariants,
            hints=dict(self.doc.get("hints", {})),
            framings=self._framings(),
            open=bool(self.doc.get("open", False)),
            headers={str(k).lower(): v for k, v in self.doc.get("headers", {}).items()},
        )

    def _framings(self) -> tuple[str, ...]:
        framing = self.doc.get("framing", "sse")
        framings = (framing,) if isinstance(framing, str) else tuple(framing)
        if "ndjson" in framings and not self.json:
            raise ContractError(
                "/framing", "an ndjson stream is JSON, one value per line: it needs data: json"
            )
        return framings

    # -- where the type comes from --

    def _type_source(self) -> tuple[str, Pointer, tuple[Case, ...]]:
        spec = self.doc["type"]
        if "cases" in spec:
            if not self.json:
                raise ContractError(
                    "/type/cases",
                    "cases read JSON data; a text contract takes its type from the SSE event "
                    "field ({from: event})",
                )
            return (
                "cases",
                (),
                tuple(self._case(c, f"/type/cases/{i}") for i, c in enumerate(spec["cases"])),
            )
        if spec["from"] == "event":
            return "event", (), ()
        if not self.json:
            raise ContractError(
                "/type/from",
                "a text contract takes its type from the SSE event field ({from: event})",
            )
        try:
            pointer = parse_pointer(spec["from"])
        except ValueError as e:
            raise ContractError("/type/from", str(e)) from None
        if not pointer:
            raise ContractError(
                "/type/from", 'the type is a string inside the event: point at it ("/type")'
            )
        return "pointer", pointer, ()

    def _case(self, raw: Mapping[str, Any], where: str) -> Case:
        self._declared(raw["type"], f"{where}/type")
        tests = []
        for text, condition in raw.get("when", {}).items():
            try:
                pointer = parse_pointer(text)
            except ValueError as e:
                raise ContractError(f"{where}/when", str(e)) from None
            test = (
                _equals(condition["equals"]) if isinstance(condition, dict) else _TESTS[condition]
            )
            tests.append((pointer, test))
        return Case(raw["type"], tuple(tests))

    def _declared(self, name: object, where: str) -> None:
        if name not in self.types:
            raise ContractError(
                where, f"unknown type {show(name)} (the contract's types: {', '.join(self.types)})"
            )

    # -- schemas --

    def _type_uri(self, name: str) -> str:
        return f"{self.base_uri}?type={quote(name, safe='')}"

    def _schemas(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """type -> jsonschema validator (or None), and type -> fast core schema (or None)."""
        raw_types = self.doc["types"]
        documents: dict[str, dict[str, Any]] = {}
        for name in self.types:
            entry = raw_types.get(name)
            schema = entry.get("schema") if isinstance(entry, dict) else None
            if schema is None:
                continue
            where = f"/types/{_pointer_text([name])[1:]}/schema"
            document = self._document(name, schema)
            try:
                Draft202012Validator.check_schema(document)
            except SchemaError as e:
                raise ContractError(
                    where + _pointer_text(e.absolute_path), f"not a valid JSON Schema: {e.message}"
                ) from None
            documents[name] = document
            self.registry = self.registry.with_resource(
                document["$id"], Resource.from_contents(document, default_specification=DRAFT202012)
            )
        slow: dict[str, Any] = {}
        cores: dict[str, Any] = {}
        for name, document in documents.items():
            where = f"/types/{_pointer_text([name])[1:]}/schema"
            resolver = self.registry.resolver(base_uri=document["$id"])
            _check_refs(document, resolver, where, set())
            slow[name] = Draft202012Validator(document, registry=self.registry)
            cores[name] = compile_schema(document, self.registry, document["$id"])
        return slow, cores

    def _document(self, name: str, schema: object) -> dict[str, Any]:
        uri = self._type_uri(name)
        if schema is True:
            return {"$id": uri}
        if schema is False:
            return {"$id": uri, "not": {}}
        assert isinstance(schema, dict)
        if isinstance(schema.get("$id"), str):
            return dict(schema)
        return {"$id": uri, **schema}

    # -- the order --

    def _order(self) -> tuple[Order, frozenset[str]]:
        raw = self.doc.get("order")
        if raw is None:
            raw = {"pattern": "(" + " | ".join(json.dumps(t) for t in self.types) + ")*"}
        for key in ("anywhere", "abort", "failure"):
            for i, name in enumerate(raw.get(key, [])):
                self._declared(name, f"/order/{key}/{i}")
        try:
            order = compile_order(raw["pattern"], raw.get("anywhere", ()), raw.get("abort", ()))
        except OrderError as e:
            column = f" (column {e.column})" if e.column else ""
            raise ContractError("/order/pattern", f"{e}{column}") from None
        for name in order.names:
            if name not in self.types:
                raise ContractError(
                    "/order/pattern",
                    f"unknown type {show(name)} (the contract's types: {', '.join(self.types)})",
                )
        for name in self.types:
            if name not in order.names:
                where = (
                    "/sentinel/type"
                    if self.sentinel and name == self.sentinel[1]
                    else f"/types/{_pointer_text([name])[1:]}"
                )
                raise ContractError(
                    where, f"type {show(name)} never fits the order: add it to /order/pattern"
                )
        return order, frozenset(raw.get("failure", ())) | order.abort

    # -- fast paths --

    def _fast_paths(
        self, type_from: str, pointer: Pointer, cores: Mapping[str, Any]
    ) -> tuple[FastPath | None, dict[str, FastPath | None]]:
        sentinel_type = self.sentinel[1] if self.sentinel else None
        if type_from == "pointer":
            choices = {
                name: cores.get(name)
                or cs.dict_schema(cs.str_schema(strict=True), cs.any_schema(), strict=True)
                for name in self.types
                if name != sentinel_type
            }
            return SchemaValidator(tagged_union(choices, pointer)).validate_json, {}
        by_type: dict[str, FastPath | None] = {}
        for name in self.types:
            core = cores.get(name)
            if name not in self.json_types:
                by_type[name] = None if core is None else SchemaValidator(core).validate_python
            elif type_from == "event":
                by_type[name] = SchemaValidator(core or cs.any_schema()).validate_json
            else:
                by_type[name] = None if core is None else SchemaValidator(core).validate_python
        return None, by_type
