"""The pure OpenAPI reader: streaming operations, $ref resolution, errors naming the pointer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness._contracts.openapi import load_document, streaming_operations
from harness._core.errors import UsageError

CHAT: dict[str, Any] = {
    "openapi": "3.2.0",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/api/debug/chat": {
            "post": {
                "operationId": "debugChat",
                "x-stream-contract": "llm-debug",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Chat"}}
                    },
                },
                "responses": {
                    "200": {
                        "content": {
                            "text/event-stream": {"itemSchema": {"$ref": "common.json#/Item"}}
                        }
                    },
                    "422": {"description": "bad"},
                },
            }
        },
        "/health": {"get": {"responses": {"200": {"content": {"application/json": {}}}}}},
    },
    "components": {
        "schemas": {
            "Chat": {
                "type": "object",
                "required": ["model_id"],
                "properties": {"model_id": {"enum": ["a", "b"]}},
            }
        }
    },
}


def write(tmp_path: Path, doc: dict[str, Any], name: str = "openapi.json") -> Path:
    (tmp_path / "common.json").write_text(json.dumps({"Item": {"type": "object"}}))
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_streaming_operations_when_sse_and_refs_then_resolved_and_json_ones_left_out(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, CHAT)
    (op,) = streaming_operations(load_document(path), path.parent)
    assert op.label == "POST /api/debug/chat" and op.operation_id == "debugChat"
    assert op.media_type == "text/event-stream" and op.contract == "llm-debug"
    assert op.body_schema is not None and op.body_schema["properties"]["model_id"]["enum"]
    assert op.body_required and op.item_schema == {"type": "object"}
    assert op.statuses == ("200", "422")
    assert len(streaming_operations(load_document(path), path.parent, every=True)) == 2


def test_load_document_when_yaml_then_read_like_json(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "openapi.yaml"
    path.write_text(yaml.safe_dump({**CHAT, "components": {"schemas": {"Chat": {}}}}))
    (tmp_path / "common.json").write_text(json.dumps({"Item": {}}))
    assert [o.label for o in streaming_operations(load_document(path), tmp_path)] == [
        "POST /api/debug/chat"
    ]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("#/components/schemas/Nope", "/paths/~1api~1debug~1chat/post/requestBody"),
        ("https://evil.example/x.json#/A", "is on another host; it is never fetched"),
        ("missing.json#/A", "cannot read 'missing.json'"),
    ],
)
def test_streaming_operations_when_ref_is_broken_then_one_line_naming_the_pointer(
    tmp_path: Path, ref: str, message: str
) -> None:
    doc = json.loads(json.dumps(CHAT))
    body = doc["paths"]["/api/debug/chat"]["post"]["requestBody"]
    body["content"]["application/json"]["schema"] = {"$ref": ref}
    path = write(tmp_path, doc)
    with pytest.raises(UsageError) as e:
        streaming_operations(load_document(path), path.parent)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_load_document_when_not_openapi_3_then_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, {"swagger": "2.0"})
    with pytest.raises(UsageError, match=r"/openapi must be a 3\.x"):
        load_document(path)
