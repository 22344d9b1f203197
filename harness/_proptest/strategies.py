"""JSON Schema -> Hypothesis strategies: realistic and hostile values for a function's inputs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from hypothesis import strategies as st

from harness._contracts.manifest import (
    FunctionSpec,
)

# -- strategies -------------------------------------------------------------------------------

__all__ = [
    "bounds",
    "inputs_strategy",
    "strategy_for",
]

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
    """A strategy for JSON values valid against ``schema``: the subset manifests use, plus
    OpenAPI's ``nullable``, ``allOf``/``oneOf``/``anyOf`` and common string formats."""
    if schema is True or schema == {}:
        return _any_json()
    if schema is False:
        return st.nothing()
    assert isinstance(schema, Mapping)
    if schema.get("nullable") is True:  # OpenAPI 3.0
        rest = {k: v for k, v in schema.items() if k != "nullable"}
        return st.one_of(st.none(), strategy_for(rest))
    if isinstance(schema.get("allOf"), list):
        return strategy_for(_merge_all_of(schema))
    for key in ("oneOf", "anyOf"):  # oneOf drawn as anyOf: a branch, plus the siblings' keys
        if isinstance(schema.get(key), list) and schema[key]:
            rest = {k: v for k, v in schema.items() if k != key}
            return st.one_of([strategy_for(_merged(rest, b)) for b in schema[key]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([strategy_for({**schema, "type": k}) for k in kind])
    if kind == "string" and schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]]
    make = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    return _any_json() if make is None else make(schema)


def _merged(a: Mapping[str, Any], b: Any) -> Mapping[str, Any] | bool:
    if not isinstance(b, Mapping):
        return bool(b)
    out = {**a, **b}
    if "properties" in a and "properties" in b:
        out["properties"] = {**a["properties"], **b["properties"]}
    if "required" in a and "required" in b:
        out["required"] = sorted({*a["required"], *b["required"]})
    return out


def _merge_all_of(schema: Mapping[str, Any]) -> Mapping[str, Any] | bool:
    """``allOf`` as one schema: properties and ``required`` joined, other keys the last one's
    (enough for the object compositions OpenAPI documents use)."""
    out: Mapping[str, Any] | bool = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        out = _merged(out, part) if isinstance(out, Mapping) else out
    return out


_FORMATS: Final[dict[str, st.SearchStrategy[str]]] = {
    "date-time": st.datetimes().map(lambda d: d.isoformat() + "Z"),
    "date": st.dates().map(str),
    "uuid": st.uuids().map(str),
    "email": st.emails(),
    "uri": st.sampled_from(["https://example.com/", "https://example.com/a?b=c"]),
    "ipv4": st.ip_addresses(v=4).map(str),
}


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
    low, high = bounds(schema, integral=True)
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        lo = None if low is None else math.ceil(low / step)
        hi = None if high is None else math.floor(high / step)
        return st.integers(lo, hi).map(lambda n: n * step)
    return st.integers(
        None if low is None else math.ceil(low), None if high is None else math.floor(high)
    )


def _number(schema: Mapping[str, Any]) -> st.SearchStrategy[int | float]:
    low, high = bounds(schema, integral=False)
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


def bounds(schema: Mapping[str, Any], *, integral: bool) -> tuple[float | None, float | None]:
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
