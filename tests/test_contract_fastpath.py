"""The compiled fast path never accepts what its JSON Schema rejects, and accepts the examples.

``harness._contracts.fastpath`` translates JSON Schemas into pydantic-core validators; the
translation must only ever be *stricter* than ``jsonschema`` (a stricter fast path costs time,
a laxer one a wrong verdict).  Hypothesis throws JSON values at a zoo of schemas that use every
keyword the translation understands, and some it must give up on.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic_core import SchemaValidator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from harness._contracts.fastpath import compile_schema
from harness._contracts.registry import builtin_contract, contract_names
from harness._core.schemas import load_schema, registry, resources

DEFS = {
    "$id": "https://example.test/defs.json",
    "$defs": {"count": {"type": "integer", "minimum": 0}, "node": {"$ref": "#/$defs/node"}},
}
SCHEMAS: list[dict[str, Any]] = [
    {"type": "string", "minLength": 1, "maxLength": 3},
    {"type": "integer", "minimum": -2, "exclusiveMaximum": 4},
    {"type": "number", "minimum": 0.5, "maximum": 10},
    {"type": ["string", "null"]},
    {"const": 1},
    {"const": True},
    {"enum": ["a", 1, None, False]},
    {"enum": [1.5, "x"]},
    {"type": "string", "enum": ["a", 1]},
    {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 2},
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
        "required": ["a", "c"],
        "additionalProperties": False,
    },
    {"type": "object", "additionalProperties": {"type": "integer"}},
    {"properties": {"n": {"type": "number", "maximum": 100}}},  # no type: any non-object too
    {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 2}]},
    {"oneOf": [{"type": "integer"}, {"type": "number"}]},  # not translated: rejects everything
    {"allOf": [{"type": "integer"}]},
    {"type": "string", "pattern": "^a"},  # not translated
    {"type": "integer", "minimum": 0.5},  # a fractional bound on an integer: not translated
    {"not": {"type": "null"}},
    {"$ref": "https://example.test/defs.json#/$defs/count"},
    {"$ref": "https://example.test/defs.json#/$defs/node"},  # recursive: not translated
    {
        "type": "object",
        "properties": {"x": {"$ref": "https://example.test/defs.json#/$defs/count"}},
    },
    True,
    False,
]
REGISTRY = Registry().with_resource(
    DEFS["$id"], Resource.from_contents(DEFS, default_specification=DRAFT202012)
)

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 12)
    | st.floats(-2, 12, allow_nan=False)
    | st.sampled_from(["", "a", "ab", "abcd", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "n", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.mark.parametrize("schema", SCHEMAS, ids=[json.dumps(s)[:40] for s in SCHEMAS])
@settings(max_examples=150)
@given(value=values)
def test_fast_path_when_it_accepts_a_value_then_jsonschema_accepts_it(
    schema: Any, value: Any
) -> None:
    fast = SchemaValidator(compile_schema(schema, REGISTRY))
    slow = Draft202012Validator(schema, registry=REGISTRY)
    for validate in (fast.validate_python, lambda v: fast.validate_json(json.dumps(v))):
        try:
            validate(value)
        except ValidationError:
            continue
        assert slow.is_valid(value), (schema, value)


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "integer", "minimum": -2, "exclusiveMaximum": 4}, 3),
        ({"enum": ["a", 1, None, False]}, False),
        ({"properties": {"n": {"type": "number", "maximum": 100}}}, "free text"),
        ({"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 2}]}, "ab"),
        ({"$ref": "https://example.test/defs.json#/$defs/count"}, 7),
    ],
)
def test_fast_path_when_schema_translatable_then_valid_values_take_it(
    schema: Any, value: Any
) -> None:
    SchemaValidator(compile_schema(schema, REGISTRY)).validate_python(value)


@pytest.mark.parametrize("value", [True, 1.0], ids=["true-for-1", "float-for-int"])
def test_fast_path_when_value_only_looks_equal_then_rejected(value: Any) -> None:
    # pydantic's literal matching alone would take true for 1; JSON Schema takes 1.0 for 1,
    # the fast path does not (stricter is allowed).
    fast = SchemaValidator(compile_schema({"const": 1}, REGISTRY))
    with pytest.raises(ValidationError):
        fast.validate_json(json.dumps(value))


def _dialect_schemas() -> list[str]:
    return sorted(
        uri.removeprefix("https://stream-harness.example/schemas/")
        for uri, _ in resources()
        if "/" in uri.removeprefix("https://stream-harness.example/schemas/")
    )


@pytest.mark.parametrize("relpath", _dialect_schemas())
def test_bundled_schema_when_examples_checked_then_valid_and_on_the_fast_path(relpath: str) -> None:
    schema = load_schema(relpath)
    Draft202012Validator.check_schema(schema)
    fast = SchemaValidator(compile_schema(schema, registry(), str(schema["$id"])))
    for example in schema.get("examples", []):
        assert Draft202012Validator(schema, registry=registry()).is_valid(example), example
        fast.validate_json(json.dumps(example))


@pytest.mark.parametrize("name", contract_names())
def test_builtin_contract_when_examples_fed_then_its_own_fast_path_takes_them(name: str) -> None:
    """No built-in type falls back to jsonschema for its valid events (a silent speed bug)."""
    contract = builtin_contract(name)
    for kind, validator in contract.slow.items():
        for example in _examples(validator.schema):
            text = json.dumps(example)
            if contract.fast is not None:
                contract.fast(text)
                continue
            fast = contract.fast_by_type[kind]
            assert fast is not None
            fast(text if contract.type_from == "event" else example)


def _examples(schema: dict[str, Any]) -> list[Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return list(schema.get("examples", []))
    target = registry().resolver(base_uri=schema["$id"]).lookup(ref).contents
    return list(target.get("examples", []))
