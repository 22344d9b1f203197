"""OpenAPI documents, read without the network: the streaming operations they describe.

    load_document(path)            -> dict   (JSON or YAML; a broken file is one UsageError line)
    parse_document(text, shown)    -> dict   (the same, for a document fetched from a URL)
    streaming_operations(doc, base) -> [Operation]   every ``$ref`` resolved
    server_url(doc)                -> str | None     the first server, its variables filled

This is the pure first step of ``stream-harness openapi`` (issue 10): what to call and with
which schemas.  ``$ref`` may point inside the document (``#/components/...``) or at a file
relative to it (``common.yaml#/Item``); a reference to another host is refused, never
fetched.  Every problem names the JSON pointer where it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

from harness._core.errors import UsageError

__all__ = [
    "STREAMING_MEDIA_TYPES",
    "Operation",
    "load_document",
    "parse_document",
    "server_url",
    "streaming_operations",
]

#: Response media types that mean a stream; ``text/plain`` counts only with ``x-stream: true``.
STREAMING_MEDIA_TYPES: Final = (
    "text/event-stream",
    "application/x-ndjson",
    "application/jsonl",
    "application/json-seq",
)
_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace", "query")
_MAX_DEPTH: Final = 64


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation, its schemas resolved (no ``$ref`` left)."""

    method: str
    path: str
    operation_id: str | None
    media_type: str | None  # the streaming response media type, if the document gives one
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body_schema: dict[str, Any] | None = None
    body_required: bool = False
    statuses: tuple[str, ...] = ()
    item_schema: dict[str, Any] | None = None  # OpenAPI 3.2 ``itemSchema``
    contract: str | None = None  # ``x-stream-contract``
    #: Every media type of the request body, in document order ("why no JSON body?").
    body_media_types: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


def load_document(path: Path) -> dict[str, Any]:
    """Read an OpenAPI document (JSON, or YAML for any other suffix that does not parse as JSON)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"no such OpenAPI document: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read the OpenAPI document {path}: {e}") from None
    return parse_document(text, str(path))


def parse_document(text: str, shown: str) -> dict[str, Any]:
    """An OpenAPI document from its text (``shown`` names it in errors)."""
    doc = _parse(text, shown)
    if not isinstance(doc, dict):
        raise UsageError(f"{shown}: an OpenAPI document is an object, at /")
    version = doc.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        raise UsageError(f"{shown}: /openapi must be a 3.x version string, got {version!r}")
    return doc


def server_url(doc: Mapping[str, Any]) -> str | None:
    """The first ``servers`` entry's URL with its variables' defaults filled in (may be
    relative, e.g. ``/api``), or None when the document names no server."""
    servers = doc.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], Mapping):
        return None
    url = servers[0].get("url")
    if not isinstance(url, str) or not url:
        return None
    for name, var in (servers[0].get("variables") or {}).items():
        if isinstance(var, Mapping) and "default" in var:
            url = url.replace("{" + str(name) + "}", str(var["default"]))
    return url


def _parse(text: str, shown: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        if shown.endswith(".json"):
            raise UsageError(f"{shown}: not JSON: {e}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise UsageError(f"{shown}: not JSON or YAML{at}") from None


def streaming_operations(
    doc: Mapping[str, Any], base: Path | None = None, *, every: bool = False
) -> list[Operation]:
    """The operations with a streaming response (``every``: all of them), resolved."""
    resolver = _Resolver(doc, base)
    paths = doc.get("paths") or {}
    if not isinstance(paths, Mapping):
        raise UsageError("/paths must be an object")
    out = []
    for path, item in paths.items():
        pointer = "/paths/" + _escape(path)
        item = resolver.resolve(item, pointer)
        shared = item.get("parameters", [])
        for method in _METHODS:
            if isinstance(item.get(method), Mapping):
                op = _operation(resolver, method, path, item[method], shared, f"{pointer}/{method}")
                if every or op.media_type is not None:
                    out.append(op)
    return out


def _operation(
    r: _Resolver, method: str, path: str, raw: Mapping[str, Any], shared: Any, at: str
) -> Operation:
    params: dict[tuple[str, str], dict[str, Any]] = {}
    for where, group in (
        (at.rsplit("/", 1)[0] + "/parameters", shared),
        (f"{at}/parameters", raw.get("parameters", [])),
    ):
        for i, p in enumerate(group or []):
            p = r.deep(p, f"{where}/{i}")
            if "name" not in p or "in" not in p:
                raise UsageError(f"{where}/{i}: a parameter needs 'name' and 'in'")
            params[(p["in"], p["name"])] = p  # the operation's own override the path's
    body = r.deep(raw.get("requestBody") or {}, f"{at}/requestBody")
    content = body.get("content") or {}
    json_type = next((t for t in content if "json" in t), None)
    body_schema = content[json_type].get("schema", {}) if json_type else None
    media, item, statuses = _responses(r, raw.get("responses") or {}, f"{at}/responses")
    contract = raw.get("x-stream-contract")
    return Operation(
        method,
        path,
        raw.get("operationId"),
        media,
        list(params.values()),
        body_schema,
        bool(body.get("required", False)),
        statuses,
        item,
        contract if isinstance(contract, str) else None,
        tuple(str(t) for t in content),
    )


def _responses(
    r: _Resolver, responses: Mapping[str, Any], at: str
) -> tuple[str | None, dict[str, Any] | None, tuple[str, ...]]:
    media: str | None = None
    item: dict[str, Any] | None = None
    for status, response in responses.items():
        response = r.deep(response, f"{at}/{_escape(str(status))}")
        for kind, body in (response.get("content") or {}).items():
            bare = kind.split(";")[0].strip().lower()
            streaming = bare in STREAMING_MEDIA_TYPES or (
                bare == "text/plain" and (body or {}).get("x-stream") is True
            )
            if media is None and streaming and str(status).startswith("2"):
                media, item = bare, (body or {}).get("itemSchema")
    return media, item, tuple(str(s) for s in responses)


class _Resolver:
    """``$ref`` resolution: inside the document and in files next to it, never over a network."""

    def __init__(self, doc: Mapping[str, Any], base: Path | None) -> None:
        self.doc = doc
        self.base = base
        self.files: dict[Path, Any] = {}

    def resolve(self, node: Any, at: str) -> Any:
        """``node`` with a top-level ``$ref`` followed (chains too)."""
        for _ in range(_MAX_DEPTH):
            if not (isinstance(node, Mapping) and isinstance(node.get("$ref"), str)):
                return node
            node = self._target(node["$ref"], at)
        raise UsageError(f"{at}: $ref chain longer than {_MAX_DEPTH} (a cycle?)")

    def deep(self, node: Any, at: str, depth: int = 0) -> Any:
        """``node`` with every ``$ref`` in it replaced by its target (recursive schemas are cut
        at a fixed depth, as an empty schema)."""
        if depth > _MAX_DEPTH:
            return {}
        node = self.resolve(node, at)
        if isinstance(node, Mapping):
            return {k: self.deep(v, f"{at}/{_escape(str(k))}", depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self.deep(v, f"{at}/{i}", depth + 1) for i, v in enumerate(node)]
        return node

    def _target(self, ref: str, at: str) -> Any:
        where, _, fragment = ref.partition("#")
        if "://" in where or where.startswith("//"):
            raise UsageError(f"{at}/$ref: {ref!r} is on another host; it is never fetched")
        doc: Any = self.doc if not where else self._file(where, at)
        node = doc
        for part in [p for p in fragment.split("/") if p][:_MAX_DEPTH]:
            key = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            elif isinstance(node, Mapping) and key in node:
                node = node[key]
            else:
                raise UsageError(f"{at}/$ref: {ref!r} points at nothing")
        return node

    def _file(self, where: str, at: str) -> Any:
        if self.base is None:
            raise UsageError(f"{at}/$ref: {where!r} is a file, but the document has no directory")
        path = (self.base / unquote(where)).resolve()
        if path not in self.files:
            try:
                self.files[path] = _parse(path.read_text(encoding="utf-8-sig"), str(path))
            except OSError as e:
                raise UsageError(f"{at}/$ref: cannot read {where!r}: {e.strerror or e}") from None
        return self.files[path]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
