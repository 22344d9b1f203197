"""The contract of an operation the OpenAPI document describes, when no named contract is given.

    document_checker(media_type, item_schema) -> ItemSchemaChecker

Without ``--contract`` or ``x-stream-contract``, an operation's stream is held to what the
document says of it: the framing of its media type (SSE, NDJSON/JSON Lines, raw text) with
the generic stream rules every contract brings (truncation, sizes, UTF-8, ...), and the OpenAPI
3.2 ``itemSchema`` of the media type, if there is one, on every item.  For SSE, an
``itemSchema`` with a ``data`` property describes the parsed event (``event``, ``data``,
``id``, ``retry``) -- a ``data`` whose schema is not a string, or which says
``contentMediaType: application/json``, is the event's data read as JSON; any other
``itemSchema`` describes the data itself, read as JSON when it is.  Pure: events in,
violations out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from harness._contracts.engine import ContractEngine
from harness._contracts.file import Contract, compile_contract
from harness._contracts.openapi_rules import ITEM_SCHEMA, item_schema
from harness._contracts.registry import builtin_contract
from harness._core.framing import NDJSON, SSE, TEXT
from harness._core.roles import Roles, roles_of
from harness._core.rules import Violation, violation
from harness._core.session import ContractChecker
from harness._core.sse import SSEEvent

__all__ = ["FRAMING_OF_MEDIA_TYPE", "ItemSchemaChecker", "document_checker", "generic_contract"]

#: The framing each streaming media type is read with (``application/json-seq`` has none yet).
FRAMING_OF_MEDIA_TYPE: Final = {
    "text/event-stream": SSE,
    "application/x-ndjson": NDJSON,
    "application/jsonl": NDJSON,
    "text/plain": TEXT,
}
_SSE_FIELDS: Final = frozenset({"data", "event", "id", "retry"})
#: The generic SSE contract takes any event name: its "unknown type" warning is not a finding.
_ANY_NAME: Final = "event.unknown-type-open"


@cache
def generic_contract(framing: str) -> Contract:
    """A contract with the generic stream rules only, for a stream the document describes:
    any item, in any order, a clean end of the stream as completion.  NDJSON is the built-in
    ``ndjson`` contract (an ``{"error": ...}`` line is the failure); SSE and raw text take any
    event name, and an ``error`` event is the failure (as the ``text`` contract has it)."""
    if framing == NDJSON:
        return builtin_contract("ndjson")
    document: dict[str, Any] = {
        "version": 1,
        "name": f"openapi-{framing}",
        "summary": f"any {framing} stream (the generic stream rules only)",
        "framing": [framing],
        "data": "text",
        "open": True,  # any event name: its "unknown type" warning is dropped (_ANY_NAME)
        "type": {"from": "event"},
        "types": {
            "message": {"summary": "an event"},
            "error": {"summary": "the failure, as text"},
        },
        "order": {"pattern": "message* error?"},
        "roles": {
            "content": [{"type": "message"}],
            "failure": [{"type": "error"}],
            "terminal": ["error"],
            "restart": [],
        },
    }
    return compile_contract(document, label=f"openapi-{framing}", base_uri="urn:openapi")


class ItemSchemaChecker:
    """A checker that holds every item to an ``itemSchema`` (if any), on top of ``inner``."""

    def __init__(
        self, inner: ContractChecker, framing: str, schema: Mapping[str, Any] | None
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.roles: Roles = roles_of(inner)
        self.framing = framing
        self.schema = schema
        self.validator = Draft202012Validator(dict(schema)) if schema is not None else None
        self.whole_event = framing == SSE and _describes_event(schema)
        data = schema["properties"]["data"] if schema is not None and self.whole_event else None
        #: ``data`` described as a JSON text (``contentMediaType``), checked by ``contentSchema``.
        self.encoded = isinstance(data, Mapping) and "json" in str(data.get("contentMediaType"))
        content = data.get("contentSchema") if self.encoded and isinstance(data, Mapping) else None
        self.content = Draft202012Validator(dict(content)) if isinstance(content, Mapping) else None
        self.data_is_json = not self.encoded and _data_is_json(data)
        self.index = 0

    def feed(self, event: SSEEvent) -> list[Violation]:
        index, self.index = self.index, self.index + 1
        found = [v for v in self.inner.feed(event) if v.rule != _ANY_NAME]
        if self.validator is not None:
            problem = self._problem(event)
            if problem is not None:
                found = [*found, violation(ITEM_SCHEMA, item_schema(*problem), index)]
        return found

    def finish(self, complete: bool = True) -> list[Violation]:
        return self.inner.finish(complete)

    def event_type(self, event: SSEEvent) -> str:
        if self.framing == SSE:
            return event.event
        return self.inner.event_type(event)

    def _problem(self, event: SSEEvent) -> tuple[str, str] | None:
        """Where the item breaks the schema and how, or None."""
        assert self.validator is not None
        text = event.data
        if self.framing == NDJSON:  # a line that is not JSON is the framing's finding
            value = _json_or_text(text, always=True)
            return None if value is _NOT_JSON else _first_error(self.validator, value, "")
        if not self.whole_event:
            value = _json_or_text(text) if self.framing == SSE else text
            return _first_error(self.validator, value, "")
        data: Any = text
        if self.data_is_json:
            data = _json_or_text(text, always=True)
            if data is _NOT_JSON:
                return "/data", "the data is not JSON"
        item: dict[str, Any] = {"event": event.event, "data": data}
        if event.id:
            item["id"] = event.id
        if event.retry is not None:
            item["retry"] = event.retry
        problem = _first_error(self.validator, item, "")
        if problem is not None or self.content is None:
            return problem
        decoded = _json_or_text(text, always=True)
        if decoded is _NOT_JSON:
            return "/data", "the data is not the JSON its contentMediaType says"
        return _first_error(self.content, decoded, "/data")


_NOT_JSON: Final = object()


def _first_error(validator: Draft202012Validator, item: Any, prefix: str) -> tuple[str, str] | None:
    error = best_match(validator.iter_errors(item))
    if error is None:
        return None
    return prefix + "".join(f"/{p}" for p in error.absolute_path), error.message


def document_checker(
    media_type: str, item_schema_: Mapping[str, Any] | None
) -> ItemSchemaChecker | None:
    """The checker of a stream the document describes as ``media_type`` (None: no framing
    reads that media type)."""
    framing = FRAMING_OF_MEDIA_TYPE.get(media_type)
    if framing is None:
        return None
    return ItemSchemaChecker(ContractEngine(generic_contract(framing)), framing, item_schema_)


def _describes_event(schema: Mapping[str, Any] | None) -> bool:
    """An SSE ``itemSchema`` of the parsed event: ``data`` among its properties, and no
    property that is not an SSE field."""
    props = (schema or {}).get("properties")
    return isinstance(props, Mapping) and "data" in props and set(props) <= _SSE_FIELDS


def _data_is_json(data: object) -> bool:
    """A ``data`` property whose schema is not a string's: the data is read as JSON."""
    if not isinstance(data, Mapping):
        return False
    kind = data.get("type")
    if kind is None:
        return any(k in data for k in ("properties", "items", "$ref", "required"))
    return kind not in ("string", ["string"])


def _json_or_text(data: str, *, always: bool = False) -> Any:
    """JSON when the text is JSON; else the text itself (``always``: a marker, not the text)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return _NOT_JSON if always else data
