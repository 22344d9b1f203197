"""The OpenAPI apps of ``tests/openapi_apps`` served for real, and their documents as files.

    with serving_apps() as urls:         urls["llm_debug"] == "http://127.0.0.1:<port>"
    spec_url(urls["llm_debug"])          -> ".../openapi.json", what FastAPI serves
    write_document("llm_debug", tmp_path, "yaml")  -> tmp_path / "llm_debug.yaml"

Each app runs on real uvicorn on 127.0.0.1 (a free port) in a thread of the test process,
through ``http_fixtures.serving`` (the socket is bound before the thread starts, and the
server's ``started`` flag is awaited: no fixed sleeps).  A test module binds the fixture with
``apps = pytest.fixture(scope="module", name="apps")(openapi_fixtures.apps)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from http_fixtures import serving
from openapi_apps import APPS

__all__ = ["apps", "document", "fetch_document", "serving_apps", "spec_url", "write_document"]


@contextmanager
def serving_apps(names: tuple[str, ...] = tuple(APPS)) -> Iterator[dict[str, str]]:
    """Serve each app named (all by default); yield name -> base URL."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(serving(APPS[name].app)) for name in names}


def apps() -> Iterator[dict[str, str]]:
    """The fixture: every app served for the whole module."""
    with serving_apps() as urls:
        yield urls


def spec_url(base_url: str) -> str:
    return f"{base_url}/openapi.json"


def document(name: str) -> dict[str, Any]:
    """The app's OpenAPI document, as FastAPI builds it (the same one ``/openapi.json`` serves)."""
    doc: dict[str, Any] = APPS[name].app.openapi()
    return doc


def fetch_document(base_url: str) -> dict[str, Any]:
    """``GET /openapi.json`` of a served app."""
    r = httpx.get(spec_url(base_url), timeout=10)
    r.raise_for_status()
    doc: dict[str, Any] = r.json()
    return doc


def write_document(
    name: str, directory: Path, fmt: Literal["json", "yaml"] = "json", **changes: Any
) -> Path:
    """The app's document written to ``directory/<name>.<fmt>``; ``changes`` replace top-level
    keys (``servers=[{"url": ...}]`` points a file at a served app)."""
    doc = {**document(name), **changes}
    path = directory / f"{name}.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), "utf-8")
    return path
