"""The requests of an OpenAPI operation: drawn as JSON parts, serialised as the document says.

    request_strategy(op)   -> raw parts   {"path": {...}, "query": {...}, "header": {...},
                                           "cookie": {...}, "body": value}
    build_request(op, raw) -> ApiRequest  (style/explode applied; never raises)
    invalid_requests(op)   -> [InvalidRequest]   a valid request broken in one place each
    curl_line / check_line -> the shell lines that replay a request, secrets redacted

Hypothesis draws *raw parts* (plain JSON values, valid against the parameter and body
schemas) so that the engine can memoise, shrink and show them; turning them into a path, a
query string, headers and a body is a pure function, the same for a valid drawn request and
for an invalid one (which carries wrong types), so it serialises any JSON value.

Serialisation follows the style table of OpenAPI 3.1.1/3.2 (RFC 6570 for the path styles):
path ``simple`` (default), ``label``, ``matrix``; query ``form`` (default, exploded),
``spaceDelimited``, ``pipeDelimited``, ``deepObject``; header ``simple``; cookie ``form``.
Booleans are ``true``/``false``, null is the empty string, a nested value is compact JSON,
and a parameter described by ``content: application/json`` is sent as JSON text.

What is drawn must also *arrive as drawn*: header and cookie strings are visible ASCII (httpx
refuses anything else, servers strip edge spaces), path values never make an empty, ``.`` or
``..`` segment nor hold ``/`` (Starlette routes on the decoded path), and the strings inside
an array or object parameter avoid its style's delimiter.  Every value is finally filtered
through jsonschema, so a schema our mapping approximates (``oneOf`` drawn as ``anyOf``,
``not``, ``minProperties``) still yields only valid requests.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final
from urllib.parse import quote, urlencode

import jsonschema
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from harness._contracts.openapi import Operation
from harness._core.options import DEFAULT_CONTRACT, CheckOptions
from harness._core.redact import redact_url
from harness._proptest.invalid import _WRONG, simplest_value
from harness._proptest.reproduce import json_text, shown_headers
from harness._proptest.strategies import _merge_all_of, _merged, strategy_for

__all__ = [
    "NO_BODY",
    "ApiRequest",
    "CannotGenerate",
    "InvalidRequest",
    "build_request",
    "check_line",
    "curl_line",
    "invalid_requests",
    "request_schema",
    "request_strategy",
]


class CannotGenerate(Exception):
    """An operation whose requests cannot be generated; ``str(e)`` is the one-line reason."""


class _NoBody:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_BODY"


#: ``ApiRequest.body`` when no body is sent (``None`` would be the JSON body ``null``).
NO_BODY: Final[object] = _NoBody()

_LOCATIONS: Final = ("path", "query", "header", "cookie")
_DEFAULT_STYLE: Final = {"path": "simple", "query": "form", "header": "simple", "cookie": "form"}
#: Header parameters the specification says to ignore: the request's own fields set them.
_IGNORED_HEADERS: Final = frozenset({"accept", "content-type", "authorization"})
_TOKEN: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_TEMPLATE: Final = re.compile(r"\{([^{}]+)\}")
#: Cookie-octets (RFC 6265) that need no quoting; a generated value uses only these.
_COOKIE_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%,;=\\')
#: Keywords our mapping does not draw from and that a filter alone would rarely satisfy.
_UNSUPPORTED: Final = frozenset(
    {
        "prefixItems",
        "contains",
        "if",
        "dependentSchemas",
        "dependentRequired",
        "unevaluatedItems",
        "unevaluatedProperties",
        "$ref",
        "$dynamicRef",
    }
)
_TYPES: Final = frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})


# -- the request ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One request, serialised: what goes on the wire, before the base URL is known."""

    method: str
    path: str  # the template filled and percent-encoded: "/items/7"
    query: tuple[tuple[str, str], ...] = ()  # serialised pairs, not yet percent-encoded
    headers: tuple[tuple[str, str], ...] = ()  # header parameters, "Cookie"; no Content-Type
    body: Any = NO_BODY
    #: The media type of the body (the document's first JSON one): the Content-Type sent.
    content_type: str = "application/json"

    def url(self, base_url: str) -> str:
        """``base_url`` (which may end in a path prefix) + path + the encoded query."""
        url = base_url.rstrip("/") + self.path
        if self.query:
            url += "?" + urlencode(self.query, quote_via=quote, safe="")
        return url

    def body_text(self) -> str | None:
        """The body as compact JSON text, non-ASCII kept; ``None`` without a body."""
        if self.body is NO_BODY:
            return None
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":"))

    def as_json(self) -> dict[str, Any]:
        """``{"method", "path", "query": {name: value | [values]}, "headers", "body"}``."""
        query: dict[str, Any] = {}
        for name, value in self.query:
            if name not in query:
                query[name] = value
            elif isinstance(query[name], list):
                query[name].append(value)
            else:
                query[name] = [query[name], value]
        return {
            "method": self.method,
            "path": self.path,
            "query": query,
            "headers": dict(self.headers),
            "body": None if self.body is NO_BODY else self.body,
        }


# -- parameters -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Text:
    """Where a string leaves JSON: the characters it may hold, and a test for a whole value."""

    chars: st.SearchStrategy[str]
    allowed: Callable[[str], bool]


def _text_without(excluded: str) -> _Text:
    return _Text(
        st.characters(exclude_characters=excluded, exclude_categories=["Cs"]),
        lambda s: not any(c in excluded for c in s),
    )


def _visible_header(s: str) -> bool:
    return all(" " <= c <= "~" and c != "," for c in s) and s == s.strip(" ")


_HEADER_TEXT: Final = _Text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=","),
    _visible_header,
)
_COOKIE_TEXT: Final = _Text(
    st.sampled_from(_COOKIE_SAFE), lambda s: all(c in _COOKIE_SAFE for c in s)
)
#: The delimiters of each style: strings inside an array or object parameter avoid them.
_DELIMITERS: Final = {
    "simple": ",=",
    "label": ".,=",
    "matrix": ";,=",
    "form": ",",
    "spaceDelimited": " ",
    "pipeDelimited": "|",
}


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    where: str  # path, query, header, cookie
    required: bool
    style: str
    explode: bool
    schema: dict[str, Any] | bool  # plain JSON Schema (request_schema)
    json: bool = False  # ``content: application/json``: sent as JSON text
    seeds: tuple[Any, ...] = ()  # the parameter's own example / examples
    validator: Any = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.where} parameter {self.name!r}"

    @property
    def text(self) -> _Text | None:
        """The strings this parameter may carry (None: any)."""
        if self.where == "header":
            return _HEADER_TEXT
        if self.where == "cookie":
            return _COOKIE_TEXT
        if self.json:
            return None
        if self.where == "path":
            return _text_without("/" + _DELIMITERS.get(self.style, ""))
        if (self.style == "form" and self.explode) or self.style == "deepObject":
            return None
        return _text_without(_DELIMITERS.get(self.style, ""))


def _param(p: Mapping[str, Any]) -> _Param | str | None:
    """A usable parameter, the reason it is not (a str), or None when it is to be ignored."""
    name, where = str(p.get("name")), p.get("in")
    if where not in _LOCATIONS:
        return f"parameters in {where!r} are not supported ({name!r})"
    if where == "header" and name.lower() in _IGNORED_HEADERS:
        return None
    if where in ("header", "cookie") and not _TOKEN.match(name):
        return f"{where} parameter {name!r}: not a valid {where} name"
    style = str(p.get("style") or _DEFAULT_STYLE[where])
    if style == "cookie":  # OpenAPI 3.2: form without percent-encoding; ours is the same here
        style = "form"
    explode = bool(p.get("explode", style == "form"))
    schema: Any = p.get("schema", {})
    is_json = False
    content = p.get("content")
    if isinstance(content, Mapping) and content:
        kind = next(iter(content))
        if "json" not in str(kind).lower():
            return f"{where} parameter {name!r} is {kind} content, not JSON"
        media = content[kind]
        schema, is_json = (media.get("schema", {}) if isinstance(media, Mapping) else {}), True
    seeds = _param_examples(p, content)
    required = where == "path" or bool(p.get("required", False))
    return _Param(name, where, required, style, explode, request_schema(schema), is_json, seeds)


def _param_examples(p: Mapping[str, Any], content: Any) -> tuple[Any, ...]:
    out = []
    for holder in (p, *(content.values() if isinstance(content, Mapping) else ())):
        if not isinstance(holder, Mapping):
            continue
        if "example" in holder:
            out.append(holder["example"])
        examples = holder.get("examples")
        if isinstance(examples, Mapping):
            out += [
                e["value"] for e in examples.values() if isinstance(e, Mapping) and "value" in e
            ]
    return tuple(out)


def _usable_params(op: Operation) -> dict[tuple[str, str], _Param]:
    """The parameters build_request serialises (lenient: unusable ones are left out)."""
    out = {}
    for p in op.parameters:
        param = _param(p) if isinstance(p, Mapping) else None
        if isinstance(param, _Param):
            out[(param.where, param.name)] = param
    return out


def _checked_params(op: Operation) -> list[_Param]:
    """The parameters to draw; CannotGenerate when a required one cannot be drawn."""
    out = []
    for p in op.parameters:
        param = _param(p) if isinstance(p, Mapping) else "a parameter is not an object"
        if isinstance(param, str):
            if isinstance(p, Mapping) and not (p.get("required") or p.get("in") == "path"):
                continue  # an optional parameter we cannot send is simply never sent
            raise CannotGenerate(param)
        if param is not None:
            out.append(_with_validator(param))
    names = {p.name for p in out if p.where == "path"}
    for var in _TEMPLATE.findall(op.path):
        if var not in names:
            raise CannotGenerate(f"the path template variable {{{var}}} has no path parameter")
    return out


def _with_validator(p: _Param) -> _Param:
    validator = _validator(p.schema, p.label)
    return _Param(
        p.name, p.where, p.required, p.style, p.explode, p.schema, p.json, p.seeds, validator
    )


# -- schemas ----------------------------------------------------------------------------------

_SCHEMA_MAPS: Final = ("properties", "patternProperties", "dependentSchemas", "$defs")
_SCHEMA_ONE: Final = (
    "items",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_SCHEMA_LISTS: Final = ("allOf", "anyOf", "oneOf", "prefixItems")


def request_schema(schema: Any) -> dict[str, Any] | bool:
    """An OpenAPI 3.0/3.1/3.2 Schema Object as plain JSON Schema 2020-12, for a request:
    ``nullable`` as a null alternative, 3.0's boolean ``exclusiveMinimum``/``Maximum`` as
    numbers, ``readOnly`` properties left out (a client never sends them)."""
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {k: request_schema(v) for k, v in value.items()}
        elif key in _SCHEMA_ONE and isinstance(value, Mapping | bool):
            out[key] = request_schema(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [request_schema(v) for v in value]
        else:
            out[key] = value
    _drop_read_only(out, schema)
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(exclusive) is True and bound in out:
            out[exclusive] = out.pop(bound)
        elif isinstance(out.get(exclusive), bool):
            del out[exclusive]
    if out.pop("nullable", False) is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _drop_read_only(out: dict[str, Any], original: Mapping[str, Any]) -> None:
    props = original.get("properties")
    if not isinstance(props, Mapping):
        return
    hidden = {k for k, v in props.items() if isinstance(v, Mapping) and v.get("readOnly") is True}
    if hidden:
        out["properties"] = {k: v for k, v in out["properties"].items() if k not in hidden}
        if isinstance(out.get("required"), list):
            out["required"] = [r for r in out["required"] if r not in hidden]


def _validator(schema: Any, where: str) -> Any:
    """A 2020-12 validator; CannotGenerate for a schema it refuses or we cannot draw from."""
    _check_supported(schema, where)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        at = "".join(f"/{p}" for p in e.path)
        raise CannotGenerate(f"{where}: invalid schema at {at or '/'}: {e.message}") from None
    return jsonschema.Draft202012Validator(schema)


def _check_supported(schema: Any, where: str) -> None:
    for node in _subschemas(schema):
        found = sorted(_UNSUPPORTED & set(node))
        if found:
            raise CannotGenerate(f"{where}: the schema keyword {found[0]!r} is not supported")
        kinds = node.get("type")
        for kind in kinds if isinstance(kinds, list) else [kinds]:
            if kind is not None and kind not in _TYPES:
                raise CannotGenerate(f"{where}: unknown schema type {kind!r}")
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as e:
                raise CannotGenerate(f"{where}: pattern {pattern!r} is not usable: {e}") from None


def _subschemas(schema: Any) -> Iterable[Mapping[str, Any]]:
    if not isinstance(schema, Mapping):
        return
    yield schema
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            for sub in value.values():
                yield from _subschemas(sub)
        elif key in _SCHEMA_ONE:
            yield from _subschemas(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            for sub in value:
                yield from _subschemas(sub)


def _schema_seeds(schema: Mapping[str, Any]) -> list[Any]:
    """``default``, ``example`` and ``examples`` of one schema level, the valid ones."""
    found: list[Any] = []
    if isinstance(schema.get("examples"), list):
        found += schema["examples"]
    found += [schema[k] for k in ("example", "default") if k in schema]
    return _valid_seeds(found, schema) if found else []


def _valid_seeds(values: Iterable[Any], schema: Any) -> list[Any]:
    try:
        validator = jsonschema.Draft202012Validator(schema)
    except jsonschema.exceptions.JsonSchemaException:
        return []
    out = []
    for v in values:
        try:
            json.dumps(v)  # YAML may hold dates: not JSON, not sent
            if validator.is_valid(v) and v not in out:
                out.append(v)
        except (TypeError, ValueError, jsonschema.exceptions.JsonSchemaException):
            continue
    return out


# -- strategies -------------------------------------------------------------------------------


def _strategy(schema: Any, text: _Text | None) -> st.SearchStrategy[Any]:
    """strategy_for, plus the examples of every level as seeds and, where strings leave JSON
    (``text``), only strings that can be sent there."""
    if schema is False:
        return st.nothing()
    if schema is True or not isinstance(schema, Mapping) or not schema:
        return strategy_for(True) if text is None else _any_sendable(text)
    if isinstance(schema.get("allOf"), list):
        return _strategy(_merge_all_of(schema), text)
    for key in ("oneOf", "anyOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            rest = {k: v for k, v in schema.items() if k != key}
            branches = [_merged(rest, b) for b in schema[key]]
            if key == "oneOf" and len(branches) > 1:
                return st.one_of([_only_branch(branches, i, text) for i in range(len(branches))])
            return st.one_of([_strategy(b, text) for b in branches])
    core = _core(schema, text)
    seeds = _schema_seeds(schema)
    if text is not None:
        seeds = [v for v in seeds if _sendable(v, text)]
    return st.one_of(st.sampled_from(seeds), core) if seeds else core


def _only_branch(branches: list[Any], i: int, text: _Text | None) -> st.SearchStrategy[Any]:
    """Branch ``i`` of a ``oneOf``, without the values another branch accepts too (those
    would break "exactly one")."""
    try:
        others = [jsonschema.Draft202012Validator(b) for j, b in enumerate(branches) if j != i]
    except jsonschema.exceptions.JsonSchemaException:
        return _strategy(branches[i], text)
    return _strategy(branches[i], text).filter(lambda v: not any(o.is_valid(v) for o in others))


def _core(schema: Mapping[str, Any], text: _Text | None) -> st.SearchStrategy[Any]:
    if "const" in schema or "enum" in schema:
        values = [schema["const"]] if "const" in schema else list(schema["enum"] or [])
        if text is not None:
            values = [v for v in values if _sendable(v, text)]
        return st.sampled_from(values) if values else st.nothing()
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_core({**schema, "type": k}, text) for k in kind])
    if kind == "object" and (isinstance(schema.get("properties"), Mapping) or text is not None):
        return _object(schema, text)
    if text is None:
        return strategy_for(schema)
    if kind == "string" and schema.get("format") is None:
        return _text_string(schema, text)
    if kind == "array":
        return _lists(schema, text)
    if kind is None:
        return _any_sendable(text)
    return strategy_for(schema).filter(lambda v: _sendable(v, text))


def _text_string(schema: Mapping[str, Any], text: _Text) -> st.SearchStrategy[str]:
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    high = None if high is None else int(high)

    def fits(s: str) -> bool:
        return low <= len(s) and (high is None or len(s) <= high) and text.allowed(s)

    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        return st.from_regex(pattern, fullmatch=True, alphabet=text.chars).filter(fits)
    return st.text(text.chars, min_size=low, max_size=high).filter(text.allowed)


def _lists(schema: Mapping[str, Any], text: _Text) -> st.SearchStrategy[list[Any]]:
    low = int(schema.get("minItems", 0))
    high = schema.get("maxItems")
    return st.lists(
        _strategy(schema.get("items", True), text),
        min_size=low,
        max_size=max(low, 8) if high is None else int(high),
        unique_by=(lambda v: json.dumps(v, sort_keys=True)) if schema.get("uniqueItems") else None,
    )


def _object(schema: Mapping[str, Any], text: _Text | None) -> st.SearchStrategy[dict[str, Any]]:
    given = schema.get("properties")
    props: dict[str, Any] = dict(given) if isinstance(given, Mapping) else {}
    required = [r for r in schema.get("required", []) if isinstance(r, str)]
    props.update({r: True for r in required if r not in props})
    fixed = st.fixed_dictionaries(
        {k: _strategy(v, text) for k, v in props.items() if k in required},
        optional={
            k: _strategy(_without_default(v), text) for k, v in props.items() if k not in required
        },
    )
    extra = schema.get("additionalProperties", not props)
    if extra is False:
        return fixed
    keys = st.text(max_size=8) if text is None else st.text(text.chars, min_size=1, max_size=8)
    more = st.dictionaries(
        keys.filter(lambda k: k not in props),
        _strategy(extra if isinstance(extra, Mapping) else True, text),
        max_size=3,
    )
    return st.tuples(fixed, more).map(lambda pair: {**pair[1], **pair[0]})


def _without_default(schema: Any) -> Any:
    """An optional property's or parameter's schema, its ``default`` not a seed: leaving it out
    already sends the default, and drawing it as well took a quarter of the examples from
    everything else (a negative ``num_predict`` was missed in one run of three)."""
    if isinstance(schema, Mapping) and "default" in schema:
        return {k: v for k, v in schema.items() if k != "default"}
    return schema


def _any_sendable(text: _Text) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.text(text.chars, max_size=10).filter(text.allowed),
    )


def _sendable(value: Any, text: _Text) -> bool:
    if isinstance(value, str):
        return text.allowed(value)
    if isinstance(value, list):
        return all(_sendable(v, text) for v in value)
    if isinstance(value, Mapping):
        return all(text.allowed(str(k)) and _sendable(v, text) for k, v in value.items())
    return True


def _value_strategy(p: _Param) -> st.SearchStrategy[Any]:
    drawn = _strategy(p.schema if p.required else _without_default(p.schema), p.text)
    seeds = _valid_seeds(p.seeds, p.schema)
    if p.text is not None:
        seeds = [v for v in seeds if _sendable(v, p.text)]
    if seeds:
        drawn = st.one_of(st.sampled_from(seeds), drawn)
    drawn = drawn.filter(p.validator.is_valid).filter(partial(_drawable, p))
    return _checked(drawn, p.label)


def _drawable(p: _Param, value: Any) -> bool:
    """A valid value of ``p`` that reaches the server as drawn."""
    if not _sendable_value(p, value) or not _arrives(p, value):
        return False
    # null is "undefined" in the style table, sent as an empty value that servers read as an
    # empty string (FastAPI: a 422 for an Optional[int]); leaving the parameter out says it.
    return p.json or _types(p.schema) == {"null"} or not _holds_null(value)


def _sendable_value(p: _Param, value: Any) -> bool:
    """Text the location can carry; for a path, a segment that routes as written."""
    if p.text is not None and not _sendable(value, p.text):
        return False
    return p.where != "path" or _segment_ok(p, value)


def _checked(strategy: st.SearchStrategy[Any], where: str) -> st.SearchStrategy[Any]:
    """``strategy``, built now: an argument Hypothesis refuses (bounds that cross), or no
    value at all, is a CannotGenerate naming the part."""
    try:
        strategy.validate()
    except HypothesisException as e:
        raise CannotGenerate(f"{where}: {str(e).splitlines()[0]}") from None
    if strategy.is_empty:
        raise CannotGenerate(f"{where}: no value satisfies the schema")
    return strategy


def _holds_null(value: Any) -> bool:
    if isinstance(value, list):
        return any(_holds_null(v) for v in value)
    if isinstance(value, Mapping):
        return any(_holds_null(v) for v in value.values())
    return value is None


def _arrives(p: _Param, value: Any) -> bool:
    """An array or object that a server reads back as drawn: not empty (an exploded empty
    list is no value at all, an unexploded one reads as ``[""]``), nor one empty item."""
    if p.json or not isinstance(value, list | Mapping):
        return True
    if not value:
        return False
    if p.where in ("query", "cookie"):
        pairs = _pairs(p, value, str)
        return not (len(pairs) == 1 and pairs[0][1] == "" and not p.explode)
    return _path_value(p, value, str).lstrip(".;") not in ("", p.name, f"{p.name}=")


def _segment_ok(p: _Param, value: Any) -> bool:
    """A path value that routes as written: no empty, ``.`` or ``..`` segment, no ``/``."""
    segment = _path_value(p, value, str)
    return segment not in ("", ".", "..") and "/" not in segment


def _body_schema(op: Operation) -> dict[str, Any] | bool | None:
    if op.body_schema is None:
        if op.body_required:
            raise CannotGenerate(_no_json_body(op))
        return None
    return request_schema(op.body_schema)


def _no_json_body(op: Operation) -> str:
    kinds = op.body_media_types
    if not kinds:
        return "the required request body has no JSON media type"
    return f"request body is {' or '.join(kinds)} only"


def request_strategy(op: Operation) -> st.SearchStrategy[dict[str, Any]]:
    """Raw parts of a valid request: ``{"path": {name: v}, "query": {...}, "header": {...},
    "cookie": {...}, "body": v}``, a group left out when empty, ``"body"`` when none is sent.
    Optional parameters and an optional body are sometimes left out.  Raises CannotGenerate
    up front when the operation's requests cannot be generated."""
    params = _checked_params(op)
    groups: dict[str, st.SearchStrategy[Any]] = {}
    for where in _LOCATIONS:
        mine = [p for p in params if p.where == where]
        if mine:
            groups[where] = st.fixed_dictionaries(
                {p.name: _value_strategy(p) for p in mine if p.required},
                optional={p.name: _value_strategy(p) for p in mine if not p.required},
            )
    optional: dict[str, st.SearchStrategy[Any]] = {}
    schema = _body_schema(op)
    if schema is not None:
        validator = _validator(schema, "request body")
        body = _checked(_strategy(schema, None).filter(validator.is_valid), "request body")
        (groups if op.body_required else optional)["body"] = body
    return st.fixed_dictionaries(groups, optional=optional).map(_without_empty_groups)


def _without_empty_groups(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k == "body" or v}


# -- serialisation ----------------------------------------------------------------------------


def build_request(op: Operation, raw: Mapping[str, Any]) -> ApiRequest:
    """Serialise raw parts as the document's styles say.  Any JSON value is serialised (an
    invalid request carries wrong types too); this never raises."""
    params = _usable_params(op)
    parts = {where: _group(raw, where) for where in _LOCATIONS}

    def known(where: str, name: str) -> _Param:
        return params.get((where, name)) or _Param(
            name, where, False, _DEFAULT_STYLE[where], where in ("query", "cookie"), {}
        )

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in parts["path"]:
            return ""
        return _path_value(known("path", name), parts["path"][name], _quote)

    path = _TEMPLATE.sub(fill, op.path)
    query = [
        pair for n, v in _ordered(op, parts, "query") for pair in _pairs(known("query", n), v, str)
    ]
    headers = [
        (n, _header_value(known("header", n), v))
        for n, v in _ordered(op, parts, "header")
        if _TOKEN.match(n)
    ]
    cookies = [
        f"{k}={v}"
        for n, value in _ordered(op, parts, "cookie")
        if _TOKEN.match(n)
        for k, v in _pairs(known("cookie", n), value, _cookie_quote)
    ]
    if cookies:
        headers.append(("Cookie", _sendable_header("; ".join(cookies))))
    body = raw["body"] if isinstance(raw, Mapping) and "body" in raw else NO_BODY
    return ApiRequest(op.method.upper(), path, tuple(query), tuple(headers), body, _media(op))


def _group(raw: Any, where: str) -> Mapping[str, Any]:
    group = raw.get(where) if isinstance(raw, Mapping) else None
    return group if isinstance(group, Mapping) else {}


def _ordered(
    op: Operation, parts: Mapping[str, Mapping[str, Any]], where: str
) -> list[tuple[str, Any]]:
    """A group's values in the document's parameter order, names it does not know last."""
    group = parts[where]
    order = [
        str(p.get("name")) for p in op.parameters if isinstance(p, Mapping) and p.get("in") == where
    ]
    names = [n for n in order if n in group] + [str(n) for n in group if n not in order]
    return [(n, group[n]) for n in names]


def _media(op: Operation) -> str:
    return next((t for t in op.body_media_types if "json" in t.lower()), "application/json")


def _quote(s: str) -> str:
    return quote(s, safe="")


def _cookie_quote(s: str) -> str:
    return quote(s, safe=_COOKIE_SAFE)


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _json(value: Any, *, ascii_only: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"), default=str)


def _path_value(p: _Param, value: Any, enc: Callable[[str], str]) -> str:
    if p.json:
        return enc(_json(value))
    name = enc(p.name)
    if isinstance(value, list):
        items = [enc(_scalar(v)) for v in value]
        if p.style == "label":
            return "." + ("." if p.explode else ",").join(items)
        if p.style == "matrix":
            if not items:
                return f";{name}"
            if p.explode:
                return "".join(f";{name}={v}" for v in items)
            return f";{name}=" + ",".join(items)
        return ",".join(items)
    if isinstance(value, Mapping):
        pairs = [(enc(str(k)), enc(_scalar(v))) for k, v in value.items()]
        flat = [x for pair in pairs for x in pair]
        joined = [f"{k}={v}" for k, v in pairs]
        if p.style == "label":
            return "." + (".".join(joined) if p.explode else ",".join(flat))
        if p.style == "matrix":
            if not pairs:
                return f";{name}"
            return "".join(f";{j}" for j in joined) if p.explode else f";{name}=" + ",".join(flat)
        return ",".join(joined if p.explode else flat)
    text = enc(_scalar(value))
    if p.style == "label":
        return "." + text
    if p.style == "matrix":
        return f";{name}" + (f"={text}" if text else "")
    return text


def _pairs(p: _Param, value: Any, enc: Callable[[str], str]) -> list[tuple[str, str]]:
    """Query (or cookie) pairs of one parameter, each value passed through ``enc``."""
    if p.json:
        return [(p.name, enc(_json(value, ascii_only=p.where == "cookie")))]
    if p.style == "deepObject" and isinstance(value, Mapping):
        return [(f"{p.name}[{k}]", enc(_scalar(v))) for k, v in value.items()]
    delimiter = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(p.style, ",")
    if isinstance(value, list):
        items = [enc(_scalar(v)) for v in value]
        return [(p.name, v) for v in items] if p.explode else [(p.name, delimiter.join(items))]
    if isinstance(value, Mapping):
        pairs = [(str(k), enc(_scalar(v))) for k, v in value.items()]
        if p.explode:
            return pairs
        return [(p.name, delimiter.join(x for k, v in pairs for x in (enc(k), v)))]
    return [(p.name, enc(_scalar(value)))]


def _header_value(p: _Param, value: Any) -> str:
    return _sendable_header(_json(value, ascii_only=True) if p.json else _path_value(p, value, str))


def _sendable_header(text: str) -> str:
    """What httpx can send: visible ASCII and inner spaces (a generated value already is)."""
    return "".join(c if " " <= c <= "~" else quote(c, safe="") for c in text).strip(" ")


# -- invalid requests -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvalidRequest:
    """A request that breaks the schemas in exactly one way, said in ``description``."""

    description: str
    raw: dict[str, Any]


#: Wrong values per expected type: invalid.py's, but a boolean gets no "yes", which lenient
#: parsers (pydantic's, so FastAPI's) read as true.
_WRONG_VALUE: Final = {**_WRONG, "boolean": "not a boolean"}
_WIRE_WRONG: Final = {
    "integer": "not a number",
    "number": "not a number",
    "boolean": "not a boolean",
}


def invalid_requests(op: Operation, limit: int = 12) -> list[InvalidRequest]:
    """Up to ``limit`` requests, each a simplest valid request broken in one place: a required
    parameter, body or body property missing, a wrong type, a bound crossed, a value outside
    an enum.  Deterministic.  Raises CannotGenerate as request_strategy does; [] when no valid
    request can be built to start from."""
    params = _checked_params(op)
    schema = _body_schema(op)
    base = _base(params, schema)
    if base is None:
        return []
    kinds: list[list[InvalidRequest]] = [[], [], [], []]  # missing, type, bounds, enum
    for p in params:
        if p.required and p.where != "path":
            raw = _replace(base, p.where, p.name, _DROP)
            kinds[0].append(InvalidRequest(f"required {p.where} parameter {p.name!r} missing", raw))
    if schema is not None:
        _body_breaks(base, schema, op.body_required, kinds)
    for p in params:
        _param_breaks(base, p, kinds)
    out: list[InvalidRequest] = []
    for row in range(max(map(len, kinds))):
        out += [k[row] for k in kinds if row < len(k)]
    return out[:limit]


_DROP: Final = object()


def _replace(base: dict[str, Any], where: str, name: str | None, value: Any) -> dict[str, Any]:
    """A copy of ``base`` with one value replaced (``_DROP``: removed)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    if name is None:  # the body itself
        if value is _DROP:
            out.pop("body", None)
        else:
            out["body"] = value
        return out
    group = out.setdefault(where, {})
    if value is _DROP:
        group.pop(name, None)
    else:
        group[name] = value
    if not group:
        del out[where]
    return out


def _base(params: list[_Param], schema: Any) -> dict[str, Any] | None:
    base: dict[str, Any] = {}
    for p in params:
        if p.required:
            value = _simplest(p.schema, partial(_drawable, p), p.seeds)
            if value is _DROP:
                return None
            base.setdefault(p.where, {})[p.name] = value
    if schema is not None:
        body = _simplest(schema, lambda v: True, ())
        if body is _DROP:
            return None
        base["body"] = body
    return base


def _simplest(schema: Any, usable: Callable[[Any], bool], seeds: Sequence[Any]) -> Any:
    """A small valid value: the simplest by construction, else an example, else Hypothesis'
    minimal one (``_DROP`` when there is none)."""
    validator = jsonschema.Draft202012Validator(schema)
    candidates = [_simple(schema), *seeds]
    if isinstance(schema, Mapping):
        candidates += _schema_seeds(schema)
    for value in candidates:
        if validator.is_valid(value) and usable(value):
            return value
    from hypothesis import HealthCheck, Phase, find, settings

    quiet = settings(
        database=None,
        derandomize=True,
        max_examples=200,
        phases=(Phase.generate, Phase.shrink),  # no explain phase: seconds, for nothing here
        suppress_health_check=list(HealthCheck),
    )
    try:
        return find(_strategy(schema, None).filter(validator.is_valid), usable, settings=quiet)
    except HypothesisException:
        return _DROP


def _simple(schema: Any) -> Any:
    """simplest_value, through allOf, nullable alternatives and into objects and arrays."""
    core = _core_schema(schema)
    if not isinstance(core, Mapping) or "default" in core or "enum" in core or "const" in core:
        return simplest_value(core)
    types = _types(core) or set()
    if "object" in types:
        props = core.get("properties", {})
        return {k: _simple(props.get(k, True)) for k in core.get("required", [])}
    if "array" in types:
        high = core.get("maxItems")
        n = max(int(core.get("minItems", 0)), 1 if high is None or high >= 1 else 0)
        return [_simple(core.get("items", True))] * n
    return simplest_value(core)


def _types(schema: Any) -> set[str] | None:
    """The JSON types a schema allows, when it says (None: any)."""
    if not isinstance(schema, Mapping):
        return None
    if "allOf" in schema:
        return _types(_merge_all_of(schema))
    for key in ("oneOf", "anyOf"):
        if isinstance(schema.get(key), list):
            rest = {k: v for k, v in schema.items() if k != key}
            found = [_types(_merged(rest, b)) for b in schema[key]]
            known = [t for t in found if t is not None]
            return None if len(known) < len(found) else set().union(*known)
    if "const" in schema or "enum" in schema:
        values = [schema["const"]] if "const" in schema else list(schema["enum"] or [])
        return {_type_of(v) for v in values}
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {str(k) for k in kind}
    return None


def _allows(types: set[str], value: Any) -> bool:
    kind = _type_of(value)
    return kind in types or (kind == "integer" and "number" in types)


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "object"
    )


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _type_words(types: set[str]) -> str:
    return " or ".join("null" if t == "null" else _article(t) for t in sorted(types))


def _wrong_type(schema: Any, on_wire: bool) -> tuple[Any, str] | None:
    """A value of a type ``schema`` does not allow, and the words for what it wanted."""
    types = _types(schema)
    if not types:
        return None
    candidates: list[Any]
    if on_wire:  # a query, path, header or cookie value is text: only non-text types break
        if not types <= {"integer", "number", "boolean", "null"}:
            return None
        candidates = [_WIRE_WRONG[t] for t in sorted(types) if t in _WIRE_WRONG]
    else:
        candidates = [_WRONG_VALUE[t] for t in sorted(types) if t in _WRONG_VALUE] + [None, {}]
    for value in candidates:
        if not _allows(types, value):
            return value, _type_words(types)
    return None


def _core_schema(schema: Any) -> Any:
    """The schema a value's bounds live in: allOf merged, a nullable's non-null branch."""
    if not isinstance(schema, Mapping):
        return schema
    if "allOf" in schema:
        return _core_schema(_merge_all_of(schema))
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            real = [b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")]
            if len(real) == 1:
                rest = {k: v for k, v in schema.items() if k != key}
                return _core_schema(_merged(rest, real[0]))
    return schema


def _bound_breaks(schema: Any, base: Any) -> list[tuple[Any, str, str]]:
    """(value, keyword, words) for each bound of ``schema`` crossed, starting from ``base``."""
    core = _core_schema(schema)
    if not isinstance(core, Mapping):
        return []
    out: list[tuple[Any, str, str]] = []
    types = _types(core) or set()
    integral = "integer" in types and "number" not in types
    down = (lambda x: math.ceil(x) - 1) if integral else (lambda x: x - 1)
    up = (lambda x: math.floor(x) + 1) if integral else (lambda x: x + 1)
    numbers: list[tuple[str, Callable[[Any], Any], str]] = [
        ("minimum", down, "below minimum"),
        ("exclusiveMinimum", lambda x: x, "not above exclusiveMinimum"),
        ("maximum", up, "above maximum"),
        ("exclusiveMaximum", lambda x: x, "not below exclusiveMaximum"),
    ]
    for key, cross, words in numbers:
        bound = core.get(key)
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            value = cross(bound)
            if integral and value != int(value):
                value = math.floor(value) if "Min" in key else math.ceil(value)
            out.append((int(value) if integral else value, key, f"{words} {_num(bound)}"))
    low, high = core.get("minLength"), core.get("maxLength")
    text = base if isinstance(base, str) and base else "a"
    if isinstance(low, int) and low > 0:
        out.append(((text * low)[: low - 1], "minLength", f"shorter than minLength {low}"))
    if isinstance(high, int):
        out.append(((text * (high + 1))[: high + 1], "maxLength", f"longer than maxLength {high}"))
    low, high = core.get("minItems"), core.get("maxItems")
    items = base if isinstance(base, list) and base else [simplest_value(core.get("items", True))]
    if isinstance(low, int) and low > 0:
        out.append(((items * low)[: low - 1], "minItems", f"fewer than minItems {low}"))
    if isinstance(high, int):
        out.append(((items * (high + 1))[: high + 1], "maxItems", f"more than maxItems {high}"))
    return out


def _num(x: float) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _outside_enum(schema: Any) -> tuple[Any, str] | None:
    core = _core_schema(schema)
    if not isinstance(core, Mapping) or not isinstance(core.get("enum"), list) or not core["enum"]:
        return None
    values = core["enum"]
    if all(isinstance(v, str) for v in values):
        value: Any = "not-" + "-".join(values)[:40]
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        value = max(values) + 1
    else:
        return None
    shown = json_text(values[:5]) + (" …" if len(values) > 5 else "")
    return value, f"not in the enum {shown}"


def _without_keyword(schema: Any, key: str) -> Any:
    """The schema a value's bounds live in (_core_schema), one keyword taken out."""
    core = _core_schema(schema)
    return {k: v for k, v in core.items() if k != key} if isinstance(core, Mapping) else core


def _breaks_only(schema: Any, value: Any, key: str | None) -> bool:
    """``value`` is invalid against ``schema``, and (``key``) valid once that keyword is gone."""
    if jsonschema.Draft202012Validator(schema).is_valid(value):
        return False
    if key is None:
        return True
    return bool(jsonschema.Draft202012Validator(_without_keyword(schema, key)).is_valid(value))


def _body_breaks(
    base: dict[str, Any], schema: Any, required: bool, kinds: list[list[InvalidRequest]]
) -> None:
    body = base["body"]
    if required:
        kinds[0].append(
            InvalidRequest("required request body missing", _replace(base, "", None, _DROP))
        )
    core = _core_schema(schema)
    props = core.get("properties", {}) if isinstance(core, Mapping) else {}
    if isinstance(body, dict) and isinstance(core, Mapping):
        for name in core.get("required", []):
            if name in body:
                broken = {k: v for k, v in body.items() if k != name}
                if _breaks_only(schema, broken, None):
                    raw = _replace(base, "", None, broken)
                    kinds[0].append(InvalidRequest(f"required body property {name!r} missing", raw))
    wrong = _wrong_type(schema, on_wire=False)
    if wrong is not None and _breaks_only(schema, wrong[0], None):
        desc = f"body: {json_text(wrong[0])} instead of {wrong[1]}"
        kinds[1].append(InvalidRequest(desc, _replace(base, "", None, wrong[0])))
    _value_breaks(base, schema, body, "body", lambda v: _replace(base, "", None, v), kinds, False)
    if not (isinstance(body, dict) and isinstance(props, Mapping)):
        return
    for name, sub in props.items():
        current = body.get(name, _DROP)
        if current is _DROP:
            current = simplest_value(_core_schema(sub))

        def put(v: Any, name: str = name) -> dict[str, Any]:
            return _replace(base, "", None, {**body, name: v})

        def whole(v: Any, name: str = name) -> bool:
            return not jsonschema.Draft202012Validator(schema).is_valid({**body, name: v})

        wrong = _wrong_type(sub, on_wire=False)
        if wrong is not None and _breaks_only(sub, wrong[0], None) and whole(wrong[0]):
            kinds[1].append(
                InvalidRequest(
                    f"body.{name}: {json_text(wrong[0])} instead of {wrong[1]}", put(wrong[0])
                )
            )
        _value_breaks(base, sub, current, f"body.{name}", put, kinds, False, whole)


def _value_breaks(
    base: dict[str, Any],
    schema: Any,
    current: Any,
    label: str,
    put: Callable[[Any], dict[str, Any]],
    kinds: list[list[InvalidRequest]],
    on_wire: bool,
    whole: Callable[[Any], bool] = lambda v: True,
    usable: Callable[[Any], bool] = lambda v: True,
) -> None:
    for value, key, words in _bound_breaks(schema, current):
        if on_wire and key == "minItems" and not value:
            continue  # an empty list is sent as no value at all: "missing", not "too few"
        if _breaks_only(schema, value, key) and whole(value) and usable(value):
            kinds[2].append(InvalidRequest(f"{label} = {_shown(value)} {words}", put(value)))
    outside = _outside_enum(schema)
    if outside is not None:
        value, words = outside
        if _breaks_only(schema, value, "enum") and whole(value) and usable(value):
            kinds[3].append(InvalidRequest(f"{label} = {_shown(value)} {words}", put(value)))


def _shown(value: Any) -> str:
    """A value for a one-line description: JSON, or its start and its size when long."""
    text = json_text(value)
    if len(text) <= _SHOWN_MAX:
        return text
    if isinstance(value, str):
        return f'{json_text(value[:10])[:-1]}…" ({len(value)} characters)'
    if isinstance(value, list):
        return f"[{json_text(value[0])[:20]}, …] ({len(value)} items)"
    return text[: _SHOWN_MAX - 1] + "…"


_SHOWN_MAX: Final = 60


def _param_breaks(base: dict[str, Any], p: _Param, kinds: list[list[InvalidRequest]]) -> None:
    current = base.get(p.where, {}).get(p.name, _DROP)
    if current is _DROP:
        current = simplest_value(_core_schema(p.schema))
    label = f"{p.where} {p.name!r}"

    def put(v: Any) -> dict[str, Any]:
        return _replace(base, p.where, p.name, v)

    usable = partial(_sendable_value, p)
    wrong = _wrong_type(p.schema, on_wire=not p.json)
    if wrong is not None and _breaks_only(p.schema, wrong[0], None) and usable(wrong[0]):
        kinds[1].append(
            InvalidRequest(f"{label}: {json_text(wrong[0])} instead of {wrong[1]}", put(wrong[0]))
        )
    _value_breaks(base, p.schema, current, label, put, kinds, not p.json, usable=usable)


# -- reproducers ------------------------------------------------------------------------------


def _generated_headers(
    request: ApiRequest, given: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The request's own headers, except those the user gives (theirs are sent instead)."""
    names = {n.lower() for n, _ in given}
    return [(n, v) for n, v in request.headers if n.lower() not in names]


def curl_line(request: ApiRequest, base_url: str, headers: Sequence[tuple[str, str]]) -> str:
    """``curl -N -X METHOD 'url' -H ... -d '<json>'``: the request replayed, shell-quoted, the
    values of the user's ``headers`` redacted unless public."""
    parts = ["curl", "-N", "-X", request.method, request.url(redact_url(base_url))]
    for name, value in [*_generated_headers(request, headers), *shown_headers(headers)]:
        parts += ["-H", f"{name}: {value}"]
    if request.body is not NO_BODY:
        parts += ["-H", f"Content-Type: {request.content_type}", "-d", json_text(request.body)]
    return shlex.join(parts)


def check_line(request: ApiRequest, base_url: str, options: CheckOptions) -> str:
    """``stream-harness check 'url' --method M --body '<json>' --header ...``, redacted."""
    url = request.url(redact_url(base_url))
    parts = ["stream-harness", "check", url, "--method", request.method]
    if request.body is not NO_BODY:
        parts += ["--body", json_text(request.body)]
        if request.content_type != "application/json":
            parts += ["--header", f"Content-Type: {request.content_type}"]
    for name, value in [
        *_generated_headers(request, options.headers),
        *shown_headers(options.headers),
    ]:
        parts += ["--header", f"{name}: {value}"]
    if options.contract != DEFAULT_CONTRACT:
        parts += ["--contract", options.contract]
    return shlex.join(parts)
