"""The JSON Schemas that define the contracts, and validators for them.

The files under ``schemas/`` are the single source of truth for event shapes: teams writing
clients in other languages read them, and the harness validates against them.  A schema refers
to its siblings by relative ``$ref`` (``"start.schema.json"``), which resolves against its own
``$id``; :func:`registry` registers every schema under its ``$id`` so those references resolve
offline -- nothing is ever fetched over the network.

Where the files are: an installed wheel carries them inside the package, at
``harness/_data/schemas`` (``pyproject.toml`` force-includes ``schemas/`` there); an editable
install or a source checkout has no ``_data`` and reads ``<repo>/schemas`` directly, so an edit
to a schema takes effect without reinstalling.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

# jsonschema ships no type information (no py.typed); referencing, its resolver, does.
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

__all__ = ["BASE_URI", "load_schema", "registry", "resources", "schema_validator", "schemas_dir"]

#: The ``$id`` prefix of every bundled schema: ``BASE_URI + "prefab/start.schema.json"``.
BASE_URI = "https://stream-harness.example/schemas/"

_SUFFIX = ".schema.json"


@functools.cache
def schemas_dir() -> Traversable:
    """The directory holding the schemas: packaged data first, else the source checkout."""
    packaged = files("harness") / "_data" / "schemas"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "schemas"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"stream-harness is installed without its schemas: neither {packaged} nor {checkout} "
        "exists; reinstall the package"
    )


def _locate(relpath: str) -> Traversable:
    node = schemas_dir()
    for part in relpath.split("/"):
        node = node / part
    return node


@functools.cache
def load_schema(relpath: str) -> Mapping[str, Any]:
    """The schema at ``relpath`` under :func:`schemas_dir`, e.g. ``"prefab/event.schema.json"``.

    Cached and shared: treat the result as read-only.
    """
    schema = json.loads(_locate(relpath).read_text(encoding="utf-8"))
    if not isinstance(schema, dict) or not isinstance(schema.get("$id"), str):
        raise ValueError(f"schema {relpath} must be a JSON object with an $id")
    return schema


def _schema_paths(node: Traversable, prefix: str = "") -> Iterator[str]:
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            yield from _schema_paths(child, f"{prefix}{child.name}/")
        elif child.name.endswith(_SUFFIX):
            yield prefix + child.name


@functools.cache
def resources() -> tuple[tuple[str, Resource[Any]], ...]:
    """``($id, resource)`` for every schema under :func:`schemas_dir`."""
    found = []
    for relpath in _schema_paths(schemas_dir()):
        schema = load_schema(relpath)
        found.append((str(schema["$id"]), Resource.from_contents(schema)))
    return tuple(found)


@functools.cache
def registry() -> Registry[Any]:
    """Every schema under :func:`schemas_dir`, registered under its ``$id``."""
    return Registry().with_resources(resources())


@functools.cache
def schema_validator(relpath: str) -> Any:
    """A draft 2020-12 ``jsonschema`` validator for the schema at ``relpath``.

    Its ``$ref``s resolve through :func:`registry`.  Typed ``Any`` because ``jsonschema`` has no
    type information; it is a ``jsonschema.Draft202012Validator``.
    """
    return Draft202012Validator(load_schema(relpath), registry=registry())
