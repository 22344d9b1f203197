"""Compiled fast paths: pydantic-core validators generated from a contract's JSON Schemas.

A healthy stream is millions of small valid events, so the common case must cost about a
microsecond: one call into Rust that parses *and* validates.  This module translates a JSON
Schema into a pydantic-core schema that accepts a subset of what the JSON Schema accepts --
never more.  Whatever the translation cannot express exactly (``pattern``, ``oneOf``, ``not``,
``multipleOf``, a float ``const``, a recursive ``$ref``, ...) becomes a validator that rejects
everything, so such events simply take the slow path, where ``jsonschema`` decides.  A fast
path that is too strict costs time, never a wrong verdict; one that is too lenient would be a
bug, which is why every construct below errs on the strict side:

- ``strict`` everywhere: no ``"5"`` -> 5, no ``true`` for a number, no ``1.0`` for an integer;
- a number is ``int | float`` with ``allow_inf_nan=False`` (``int`` first, so 7 stays 7);
- a non-string ``const``/``enum`` value is checked for its type first (pydantic's literal
  matching alone would take ``true`` for ``1``);
- objects are typed dicts: ``additionalProperties: false`` forbids extra keys, otherwise they
  are kept; ``required`` keys are required.

One gap is not the translation's to close: pydantic's JSON parser reads ``NaN`` and
``Infinity``, which are not JSON, so callers send texts containing those words the slow way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pydantic_core import CoreSchema, PydanticCustomError, SchemaValidator
from pydantic_core import core_schema as cs
from referencing import Registry
from referencing.exceptions import Unresolvable

__all__ = ["compile_schema", "never", "tagged_union", "validator"]

# Keywords that never constrain an instance (2020-12 annotations and structure).
_ANNOTATIONS: Final = frozenset(
    {
        "$schema", "$id", "$anchor", "$comment", "$defs", "$vocabulary", "$dynamicAnchor",
        "definitions", "title", "description", "examples", "default", "deprecated",
        "readOnly", "writeOnly", "format", "contentMediaType", "contentEncoding",
        "contentSchema",
    }
)  # fmt: skip
# Keywords the translation understands; any other 2020-12 assertion makes it give up.
_UNDERSTOOD: Final = frozenset(
    {
        "type", "const", "enum", "properties", "required", "additionalProperties", "items",
        "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "anyOf", "allOf", "oneOf", "$ref",
    }
)  # fmt: skip
_ASSERTIONS: Final = frozenset(
    {
        "not", "if", "then", "else", "dependentSchemas", "dependentRequired", "prefixItems",
        "contains", "minContains", "maxContains", "uniqueItems", "patternProperties",
        "propertyNames", "minProperties", "maxProperties", "unevaluatedItems",
        "unevaluatedProperties", "pattern", "multipleOf", "$dynamicRef",
    }
)  # fmt: skip
_KINDS: Final = ("null", "boolean", "number", "string", "array", "object")


class _GiveUp(Exception):
    """This (sub)schema cannot be translated exactly: reject, and let jsonschema decide."""


def _reject(value: object) -> object:
    raise PydanticCustomError("slow_path", "left to the JSON Schema validator")


def never() -> CoreSchema:
    """A schema that rejects every value."""
    return cs.no_info_plain_validator_function(_reject)


class _Translator:
    def __init__(self, registry: Registry[Any], base_uri: str) -> None:
        self.resolver = registry.resolver(base_uri=base_uri)
        self.active: list[int] = []  # $refs being translated: a cycle gives up

    def schema(self, node: object) -> CoreSchema:
        try:
            return self._schema(node)
        except _GiveUp:
            return never()

    def _schema(self, node: object) -> CoreSchema:
        if node is True:
            return cs.any_schema()
        if not isinstance(node, Mapping):
            raise _GiveUp
        keys = node.keys() - _ANNOTATIONS
        if keys & _ASSERTIONS:
            raise _GiveUp
        if "$ref" in keys:
            if keys != {"$ref"}:
                raise _GiveUp  # $ref next to assertions is an allOf: not expressible
            return self._ref(str(node["$ref"]))
        for combinator in ("anyOf", "allOf", "oneOf"):
            if combinator in keys:
                return self._combinator(combinator, node, keys)
        if "const" in keys or "enum" in keys:
            return self._literal(node, keys)
        kinds = _kinds(node.get("type"))
        choices = [self._kind(kind, node) for kind in kinds]
        return _union(choices, by_kind=True)

    def _ref(self, ref: str) -> CoreSchema:
        try:
            resolved = self.resolver.lookup(ref)
        except Unresolvable:
            raise _GiveUp from None
        key = id(resolved.contents)
        if key in self.active:
            raise _GiveUp  # recursive schema: jsonschema handles those
        outer = self.resolver
        self.active.append(key)
        self.resolver = resolved.resolver
        try:
            return self._schema(resolved.contents)
        finally:
            self.resolver = outer
            self.active.pop()

    def _combinator(self, name: str, node: Mapping[str, Any], keys: set[str]) -> CoreSchema:
        branches = node[name]
        if keys != {name} or not isinstance(branches, list) or not branches:
            raise _GiveUp
        if len(branches) == 1:
            return self._schema(branches[0])
        if name != "anyOf":
            raise _GiveUp  # allOf needs an intersection, oneOf "exactly one": neither exists
        return _union([self.schema(b) for b in branches])

    def _literal(self, node: Mapping[str, Any], keys: set[str]) -> CoreSchema:
        if keys - {"const", "enum", "type"} or ("const" in keys and "enum" in keys):
            raise _GiveUp
        values = [node["const"]] if "const" in keys else node["enum"]
        if not isinstance(values, list):
            raise _GiveUp
        kinds = set(_kinds(node.get("type")))
        allowed = [
            v
            for v in values
            if _kind_of(v) in kinds or (_kind_of(v) == "integer" and "number" in kinds)
        ]
        by_kind: dict[str, list[Any]] = {}
        for value in allowed:
            by_kind.setdefault(_kind_of(value), []).append(value)
        choices = [_literal_of(kind, vals) for kind, vals in by_kind.items()]
        if not choices:
            return never()
        return _union(choices)

    def _kind(self, kind: str, node: Mapping[str, Any]) -> CoreSchema:
        if kind == "null":
            return cs.none_schema()
        if kind == "boolean":
            return cs.bool_schema(strict=True)
        if kind in ("integer", "number"):
            b = _bounds(node)
            w = _whole(b)
            whole = cs.int_schema(
                strict=True, ge=w.get("ge"), le=w.get("le"), gt=w.get("gt"), lt=w.get("lt")
            )
            if kind == "integer":
                return whole
            real = cs.float_schema(
                strict=True,
                allow_inf_nan=False,
                ge=b.get("ge"),
                le=b.get("le"),
                gt=b.get("gt"),
                lt=b.get("lt"),
            )
            return _union([whole, real], by_kind=True)  # int first: 7 stays 7
        if kind == "string":
            low, high = _lengths(node, "minLength", "maxLength")
            return cs.str_schema(strict=True, min_length=low, max_length=high)
        if kind == "array":
            items = self._schema(node["items"]) if "items" in node else cs.any_schema()
            low, high = _lengths(node, "minItems", "maxItems")
            return cs.list_schema(items, strict=True, min_length=low, max_length=high)
        return self._object(node)

    def _object(self, node: Mapping[str, Any]) -> CoreSchema:
        properties = node.get("properties", {})
        required = node.get("required", [])
        extra = node.get("additionalProperties", True)
        if not isinstance(properties, Mapping) or not isinstance(required, list):
            raise _GiveUp
        if not properties and not required and extra is True:
            return cs.dict_schema(cs.str_schema(strict=True), cs.any_schema(), strict=True)
        fields = {
            str(name): cs.typed_dict_field(self._schema(sub), required=name in required)
            for name, sub in properties.items()
        }
        for name in map(str, required):
            if name not in fields:
                # A required key the properties do not describe is an additional property.
                if extra is False:
                    raise _GiveUp  # required yet forbidden: nothing is valid
                sub = cs.any_schema() if extra is True else self._schema(extra)
                fields[name] = cs.typed_dict_field(sub, required=True)
        if extra is False:
            return cs.typed_dict_schema(fields, extra_behavior="forbid", strict=True)
        extras = None if extra is True else self._schema(extra)
        return cs.typed_dict_schema(
            fields, extra_behavior="allow", extras_schema=extras, strict=True
        )


def _union(choices: Sequence[CoreSchema], *, by_kind: bool = False) -> CoreSchema:
    """``by_kind``: the choices are one per JSON kind (an integer before a number), so at most
    one can accept a value and trying them in turn is exact.  An object's schema goes first:
    events carry objects, and pydantic's "smart" union would try every choice (a value of any
    kind, ``data``, costs four times as much)."""
    if len(choices) == 1:
        return choices[0]
    members: list[CoreSchema | tuple[CoreSchema, str]] = list(choices)
    if not by_kind:
        return cs.union_schema(members)
    objects = [m for m in choices if m["type"] in ("typed-dict", "dict")]
    members = [*objects, *(m for m in choices if m["type"] not in ("typed-dict", "dict"))]
    return cs.union_schema(members, mode="left_to_right")


def _kinds(declared: object) -> list[str]:
    """The JSON kinds a ``type`` keyword allows (all of them when absent)."""
    if declared is None:
        return list(_KINDS)
    names = declared if isinstance(declared, list) else [declared]
    if not all(isinstance(n, str) for n in names):
        raise _GiveUp
    if "number" in names:
        names = [n for n in names if n != "integer"]
    unknown = set(names) - {*_KINDS, "integer"}
    if unknown or not names:
        raise _GiveUp
    return list(dict.fromkeys(names))


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "string"
    return "other"  # floats, arrays, objects: not translated


def _literal_of(kind: str, values: Sequence[Any]) -> CoreSchema:
    if kind == "other":
        raise _GiveUp
    if kind == "null":
        return cs.none_schema()
    if kind == "string":
        return cs.literal_schema(list(values))
    # Check the type first: pydantic's literal matching alone would take true for 1.
    first = cs.bool_schema(strict=True) if kind == "boolean" else cs.int_schema(strict=True)
    return cs.chain_schema([first, cs.literal_schema(list(values))])


def _number(node: Mapping[str, Any], key: str) -> int | float | None:
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _GiveUp
    return value


def _bounds(node: Mapping[str, Any]) -> dict[str, int | float]:
    pairs = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}
    found = {arg: _number(node, key) for arg, key in pairs.items()}
    return {arg: value for arg, value in found.items() if value is not None}


def _whole(bounds: dict[str, int | float]) -> dict[str, int]:
    """Bounds for an ``int`` schema: a fractional bound is left to jsonschema."""
    if any(isinstance(v, float) and not v.is_integer() for v in bounds.values()):
        raise _GiveUp
    return {arg: int(v) for arg, v in bounds.items()}


def _lengths(node: Mapping[str, Any], low: str, high: str) -> tuple[int | None, int | None]:
    found: list[int | None] = []
    for key in (low, high):
        value = node.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _GiveUp
        found.append(value)
    return found[0], found[1]


def compile_schema(schema: object, registry: Registry[Any], base_uri: str = "") -> CoreSchema:
    """The strict pydantic-core translation of ``schema`` (a rejecting one if impossible)."""
    return _Translator(registry, base_uri).schema(schema)


def tagged_union(choices: Mapping[str, CoreSchema], path: Sequence[str]) -> CoreSchema:
    """Dispatch on the string at ``path`` (a JSON pointer's segments) to one type's schema."""
    discriminator: str | list[str | int] = path[0] if len(path) == 1 else list(path)
    return cs.tagged_union_schema(dict(choices), discriminator=discriminator)


def validator(schema: CoreSchema) -> SchemaValidator:
    return SchemaValidator(schema)


#: The shape of a fast path: text (or a parsed value) in, the validated value out; raises
#: ``pydantic_core.ValidationError`` for anything it does not accept.
FastPath = Callable[[Any], Any]
