"""The JSON Schemas and PrefabChecker agree on which single events are valid.

The schemas in ``schemas/prefab/`` are what other teams read; the checker's fast path is a
pydantic mirror of them.  These properties generate valid events and mutants of them (wrong
types, bools for numbers, missing keys, out-of-range counters, ``NaN`` in the text, extra keys,
non-objects, broken text) and require the two verdicts to match.

Strategies are written by hand: hypothesis-jsonschema 0.23 does not run against this
Hypothesis version, and its draft 2020-12 support was partial.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from harness._contracts.prefab import (
    _COUNTERS,
    _NO_VIOLATIONS,
    SCHEMA,
    PrefabChecker,
    _validate_json,
)
from harness._core.schemas import load_schema, registry, schema_validator, schemas_dir
from harness._core.sse import SSEEvent

#: The rules that judge one event on its own (the rest judge order and relations).
EVENT_LEVEL = {"event.schema", "event.unknown-type", "progress.bounds", "sse.data-not-json"}
PER_TYPE = ["start", "progress", "content", "done", "error"]
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- oracles --------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def schema_says_valid(text: str) -> bool:
    """The JSON Schema verdict; text that is not RFC 8259 JSON (NaN, ...) is invalid."""
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return False
    return bool(schema_validator(SCHEMA).is_valid(obj))


def checker_event_rules(text: str) -> set[str]:
    """The event-level rules a fresh checker raises for ``text`` fed right after a start."""
    checker = PrefabChecker()
    assert checker.feed(SSEEvent('{"type": "start"}')) == []
    event = SSEEvent(text)
    found = {v.rule for v in checker.feed(event)}
    assert checker.event_type(event)
    return found & EVENT_LEVEL


# -- strategies -----------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers(-(10**20), 10**20) | finite | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
non_objects = json_values.filter(lambda v: not isinstance(v, dict))
objects = st.dictionaries(st.text(max_size=6), json_values, max_size=4)

counts = st.integers(0, 10**12) | st.floats(0, 1e12)
percents = st.integers(0, 100) | st.floats(0, 100)
counters = st.fixed_dictionaries(
    {}, optional={"current": counts, "total": counts, "percentage": percents}
)
other_keys = st.dictionaries(
    st.text(max_size=6).filter(lambda k: k not in _COUNTERS), json_values, max_size=3
)
progress_objects = st.builds(lambda c, rest: {**rest, **c}, counters, other_keys)

valid_events = st.one_of(
    st.fixed_dictionaries({"type": st.just("start")}, optional={"data": objects}),
    st.fixed_dictionaries({"type": st.just("progress"), "data": progress_objects | non_objects}),
    st.fixed_dictionaries({"type": st.just("content"), "data": st.text()}),
    st.fixed_dictionaries({"type": st.just("done")}, optional={"data": objects}),
    st.fixed_dictionaries(
        {"type": st.just("error"), "data": st.text()},
        optional={"error_code": st.text(min_size=1, max_size=20)},
    ),
)


@st.composite
def dumped(draw: st.DrawFn, obj: object) -> str:
    """``obj`` as JSON text, in one of the spellings servers produce."""
    separators = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    indent = draw(st.sampled_from([None, None, 2]))
    ensure_ascii = draw(st.booleans())
    return json.dumps(obj, separators=separators, indent=indent, ensure_ascii=ensure_ascii)


Mutation = Callable[[st.DrawFn, dict[str, Any]], object]


def _as_progress(draw: st.DrawFn, event: dict[str, Any]) -> dict[str, Any]:
    data = draw(progress_objects)
    return {"type": "progress", "data": data}


def _set_counter(value: st.SearchStrategy[object]) -> Mutation:
    def mutate(draw: st.DrawFn, event: dict[str, Any]) -> object:
        event = _as_progress(draw, event)
        event["data"][draw(st.sampled_from(_COUNTERS))] = draw(value)
        return event

    return mutate


def _replace_data(draw: st.DrawFn, event: dict[str, Any]) -> object:
    event["data"] = draw(json_values)
    return event


def _drop_key(draw: st.DrawFn, event: dict[str, Any]) -> object:
    del event[draw(st.sampled_from(sorted(event)))]
    return event


def _add_key(draw: st.DrawFn, event: dict[str, Any]) -> object:
    key = draw(st.sampled_from(["error_code", "message", "id", "Data"]) | st.text(max_size=5))
    event[key] = draw(json_values)
    return event


def _set_type(draw: st.DrawFn, event: dict[str, Any]) -> object:
    near = st.sampled_from(["Start", "finish", "message", "", "content "])
    event["type"] = draw(near | st.text(max_size=8) | non_objects | objects)
    return event


def _bad_error_code(draw: st.DrawFn, event: dict[str, Any]) -> object:
    return {"type": "error", "data": "x", "error_code": draw(st.just("") | json_values)}


def _non_finite(draw: st.DrawFn, event: dict[str, Any]) -> object:
    event = _as_progress(draw, event) if draw(st.booleans()) else event
    target = event["data"] if isinstance(event.get("data"), dict) else event
    target[draw(st.sampled_from([*_COUNTERS, "x"]))] = draw(
        st.sampled_from([math.nan, math.inf, -math.inf])
    )
    return event


MUTATIONS: list[Mutation] = [
    _replace_data,
    _set_counter(st.booleans()),
    _set_counter(st.integers(0, 99).map(str)),
    _set_counter(st.integers(-(10**6), -1) | st.floats(max_value=-1e-9, allow_infinity=False)),
    _set_counter(st.integers(101, 10**6) | st.floats(min_value=100.0001, max_value=1e9)),
    _set_counter(json_values),
    _drop_key,
    _add_key,
    _set_type,
    _bad_error_code,
    _non_finite,
    lambda draw, event: draw(non_objects),
]


@st.composite
def mutant_texts(draw: st.DrawFn) -> str:
    mutant = draw(st.sampled_from(MUTATIONS))(draw, draw(valid_events))
    text = draw(dumped(mutant))
    # Now and then damage the text itself (sampled_from leans to its first element, which
    # Hypothesis also shrinks towards: most mutants keep their text intact).
    damage = draw(st.sampled_from(["none"] * 9 + ["cut", "junk", "quotes"]))
    if damage == "cut":
        text = text[: draw(st.integers(1, max(1, len(text) - 1)))]
    elif damage == "junk":
        text += draw(st.sampled_from([" x", ",", "}", "\x00"]))
    elif damage == "quotes":
        text = text.replace('"', "'")
    return text


# -- properties -----------------------------------------------------------------------------


@SETTINGS
@given(valid_events.flatmap(dumped))
def test_checker_when_event_valid_per_schema_then_no_event_level_violation(text: str) -> None:
    assert schema_says_valid(text)
    assert checker_event_rules(text) == set()


@SETTINGS
@given(valid_events.flatmap(dumped))
def test_fast_path_when_event_valid_then_accepts_it(text: str) -> None:
    # Not a correctness property (the slow path is the authority) but a performance one: if
    # the pydantic mirror drifted stricter than the schema, valid events would go the slow way.
    _validate_json(text)


@SETTINGS
@given(mutant_texts())
def test_checker_when_event_mutated_then_verdict_equals_schema_verdict(text: str) -> None:
    assert (checker_event_rules(text) == set()) == schema_says_valid(text)


@SETTINGS
@given(mutant_texts())
def test_fast_path_when_it_accepts_then_schema_accepts(text: str) -> None:
    try:
        _validate_json(text)
    except ValidationError:
        return
    assert schema_says_valid(text) or "NaN" in text or "Infinity" in text


@SETTINGS
@given(st.builds(lambda c, rest: {**rest, **c}, counters, other_keys), st.data())
def test_checker_when_only_counters_out_of_range_then_only_progress_bounds(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    key = draw.draw(st.sampled_from(_COUNTERS))
    data[key] = draw.draw(
        st.integers(-(10**6), -1)
        | (st.integers(101, 10**6) if key == "percentage" else st.nothing())
    )
    text = json.dumps({"type": "progress", "data": data})
    assert not schema_says_valid(text)
    assert checker_event_rules(text) == {"progress.bounds"}


# -- the schema files themselves ------------------------------------------------------------


@pytest.mark.parametrize("name", [*PER_TYPE, "event"])
def test_schema_when_loaded_then_is_valid_draft_2020_12_with_metadata(name: str) -> None:
    schema = load_schema(f"prefab/{name}.schema.json")
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/prefab/{name}.schema.json")
    assert schema["title"]
    assert "top-level key" in schema["description"] or "only the keys" in schema["description"]


@pytest.mark.parametrize("name", PER_TYPE)
def test_schema_examples_when_checked_then_valid_everywhere(name: str) -> None:
    for example in load_schema(f"prefab/{name}.schema.json")["examples"]:
        text = json.dumps(example)
        assert schema_says_valid(text), example
        assert schema_validator(f"prefab/{name}.schema.json").is_valid(example)
        _validate_json(text)
        checker = PrefabChecker()
        checker.feed(SSEEvent('{"type": "start"}'))
        found = checker.feed(SSEEvent(text))
        assert {v.rule for v in found} <= {"seq.order", "error.code"}, found


def test_shared_empty_list_when_properties_ran_then_still_empty() -> None:
    assert _NO_VIOLATIONS == []


def test_registry_when_built_then_holds_every_prefab_schema_by_id() -> None:
    for name in [*PER_TYPE, "event"]:
        schema = load_schema(f"prefab/{name}.schema.json")
        assert registry().contents(schema["$id"]) == schema


def test_schemas_dir_when_installed_as_wheel_then_uses_packaged_data(tmp_path: Path) -> None:
    # The wheel layout: pyproject force-includes schemas/ as harness/_data/schemas.
    package = tmp_path / "harness"
    (package / "_core").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "_core" / "__init__.py").write_text("")
    shutil.copy(
        Path(__file__).parent.parent / "harness" / "_core" / "schemas.py", package / "_core"
    )
    shutil.copytree(Path(str(schemas_dir())), package / "_data" / "schemas")
    code = (
        "from harness._core.schemas import schemas_dir, schema_validator as v;"
        "print(schemas_dir());"
        "print(v('prefab/event.schema.json').is_valid({'type': 'content', 'data': 1}))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(package / "_data" / "schemas"), "False"]
