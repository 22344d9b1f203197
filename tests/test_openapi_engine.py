"""The openapi engine's pure parts: the document's contract (itemSchema, framing), the
document's rules, and the plan (which operations, which contracts, which base URL).  The
end-to-end runs against real FastAPI apps are in tests/test_openapi_cli.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness._contracts.catalog import load_all
from harness._contracts.openapi_contract import document_checker
from harness._contracts.openapi_rules import (
    content_type_mismatch,
    documented_status,
    undocumented_status,
)
from harness._core.errors import UsageError
from harness._core.options import CheckOptions
from harness._core.results import FunctionReport, OpenAPIResult, OperationReport
from harness._core.sse import SSEEvent
from harness._proptest.openapi import plan_openapi

load_all()


def ev(data: str, event: str = "message", id: str = "") -> SSEEvent:
    return SSEEvent(data, event, id, None, 0, None, False, False)


def rules(checker: Any, *events: SSEEvent) -> list[str]:
    found = [v.rule for e in events for v in checker.feed(e)]
    return found + [v.rule for v in checker.finish()]


# -- the document's contract ------------------------------------------------------------------

EVENT_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": ["token", "done"]},
        "data": {"type": "object", "required": ["text"]},
        "id": {"type": "string"},
    },
}


def test_item_schema_when_it_describes_the_event_then_event_name_and_json_data_checked() -> None:
    checker = document_checker("text/event-stream", EVENT_SCHEMA)
    assert rules(checker, ev('{"text": "a"}', "token"), ev('{"text": ""}', "done")) == []
    checker = document_checker("text/event-stream", EVENT_SCHEMA)
    found = [v for v in checker.feed(ev('{"txt": "a"}', "token"))]
    assert [v.rule for v in found] == ["openapi.item-schema"]
    assert "/data" in found[0].message and "'text' is a required property" in found[0].message
    checker = document_checker("text/event-stream", EVENT_SCHEMA)
    assert rules(checker, ev('{"text": "a"}', "other")) == ["openapi.item-schema"]
    checker = document_checker("text/event-stream", EVENT_SCHEMA)
    assert "not JSON" in checker.feed(ev("plain words", "token"))[0].message


def test_item_schema_when_data_is_a_json_string_then_content_schema_checks_it() -> None:
    schema = {
        "type": "object",
        "properties": {
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"type": "object", "required": ["n"]},
            }
        },
    }
    assert rules(document_checker("text/event-stream", schema), ev('{"n": 1}')) == []
    found = document_checker("text/event-stream", schema).feed(ev('{"m": 1}'))
    assert [v.rule for v in found] == ["openapi.item-schema"] and "/data" in found[0].message


def test_item_schema_when_it_describes_the_data_then_each_data_is_checked() -> None:
    schema = {"type": "object", "required": ["type"]}
    checker = document_checker("text/event-stream", schema)
    assert rules(checker, ev('{"type": "x"}'), ev('{"kind": "x"}')) == ["openapi.item-schema"]


def test_item_schema_when_ndjson_then_each_line_checked_and_not_json_left_to_the_framing() -> None:
    checker = document_checker("application/x-ndjson", {"type": "object", "required": ["n"]})
    assert rules(checker, ev('{"n": 1}'), ev('{"x": 1}')) == ["openapi.item-schema"]


def test_generic_sse_when_no_item_schema_then_any_event_name_passes_and_error_is_failure() -> None:
    checker = document_checker("text/event-stream", None)
    assert rules(checker, ev("hello", "whatever"), ev("more")) == []
    checker = document_checker("text/event-stream", None)
    assert checker.roles.is_failure(checker.event_type(ev("boom", "error")))
    assert rules(checker, ev("boom", "error"), ev("after")) == ["seq.after-terminal"]


def test_document_checker_when_media_type_has_no_framing_then_none() -> None:
    assert document_checker("application/json-seq", None) is None


# -- the document's rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "documented", "listed"),
    [
        (200, ["200", "422"], True),
        (404, ["200", "4XX"], True),
        (404, ["200", "default"], True),
        (404, ["200", "422"], False),
        (201, ["2xx"], True),
        (418, [], True),  # no responses listed: every status is documented
    ],
)
def test_documented_status(status: int, documented: list[str], listed: bool) -> None:
    assert documented_status(status, documented) is listed


def test_undocumented_status_when_5xx_then_left_to_the_answer_rules() -> None:
    assert undocumented_status(500, ["200"]) is None
    assert "HTTP 429 is not documented" in (undocumented_status(429, ["200", "422"]) or "")


def test_content_type_mismatch_ignores_parameters_and_case() -> None:
    assert content_type_mismatch("Text/Event-Stream; charset=utf-8", "text/event-stream") is None
    assert "application/json" in (content_type_mismatch("application/json", "text/plain") or "")
    assert "no Content-Type" in (content_type_mismatch(None, "text/event-stream") or "")


# -- the plan ---------------------------------------------------------------------------------


def _op(media: str | None, **extra: Any) -> dict[str, Any]:
    content = {media: {"schema": {"type": "string"}}} if media else {}
    return {"responses": {"200": {"description": "ok", "content": content}}, **extra}


DOC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/chat": {"post": _op("text/event-stream", operationId="chat")},
        "/lines": {"get": _op("application/x-ndjson", operationId="lines")},
        "/json": {"post": _op("application/json", operationId="asJson")},
        "/seq": {"get": _op("application/json-seq", operationId="seq")},
        "/named": {
            "get": _op("text/event-stream", operationId="named", **{"x-stream-contract": "nope"})
        },
    },
}


def write(tmp_path: Path, doc: dict[str, Any]) -> str:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def plan(tmp_path: Path, doc: dict[str, Any] = DOC, **kw: Any) -> Any:
    kw.setdefault("base_url", "http://127.0.0.1:9")
    return plan_openapi(write(tmp_path, doc), CheckOptions(), **kw)


def test_plan_when_no_operation_named_then_the_streaming_ones_with_their_contracts(
    tmp_path: Path,
) -> None:
    p = plan(tmp_path)
    got = {o.label: (o.contract, o.skipped) for o in p.operations}
    assert got["POST /chat"] == ("generic sse", None)
    assert got["GET /lines"] == ("generic ndjson", None)
    assert "x-stream-contract" in (got["GET /named"][1] or "")
    assert "not a framing" in (got["GET /seq"][1] or "")
    assert "POST /json" not in got and p.not_streaming == 1


def test_plan_when_operation_named_by_id_or_method_path_then_only_those(tmp_path: Path) -> None:
    p = plan(tmp_path, operations=["chat", "post /json"], contracts=["asJson=text"])
    assert [(o.label, o.contract) for o in p.operations] == [
        ("POST /chat", "generic sse"),
        ("POST /json", "text"),
    ]
    p = plan(tmp_path, operations=["asJson"])
    assert "give --contract" in (p.operations[0].skipped or "")


def test_plan_when_one_contract_for_all_then_it_wins_over_the_document(tmp_path: Path) -> None:
    p = plan(tmp_path, contracts=["text"])
    assert {o.contract for o in p.operations} == {"text"}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"operations": ["nope"]}, "--operation 'nope' is not in the document"),
        ({"contracts": ["chat=no-such-contract"]}, "no-such-contract"),
        ({"contracts": ["missingOp=text"]}, "no operation 'missingOp'"),
        ({"contracts": ["text", "prefab"]}, "--contract given twice"),
    ],
)
def test_plan_when_flags_name_nothing_then_one_usage_line(
    tmp_path: Path, kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        plan(tmp_path, **kw)


def test_plan_when_nothing_streams_then_usage_error_saying_what_to_do(tmp_path: Path) -> None:
    doc = {**DOC, "paths": {"/json": {"post": _op("application/json")}}}
    with pytest.raises(UsageError, match="no operation has a streaming response"):
        plan(tmp_path, doc)


def test_plan_base_url_from_servers_or_given(tmp_path: Path) -> None:
    doc = {
        **DOC,
        "servers": [
            {"url": "http://127.0.0.1:{port}/v1", "variables": {"port": {"default": "8123"}}}
        ],
    }
    assert plan(tmp_path, doc, base_url=None).base_url == "http://127.0.0.1:8123/v1"
    assert plan(tmp_path, doc, base_url="http://127.0.0.1:1/x/").base_url == "http://127.0.0.1:1/x"
    relative = {**DOC, "servers": [{"url": "/api"}]}
    with pytest.raises(UsageError, match="give --base-url"):
        plan(tmp_path, relative, base_url=None)


def test_plan_when_document_broken_then_the_pointer_is_named(tmp_path: Path) -> None:
    doc = {
        **DOC,
        "paths": {"/x": {"get": {"parameters": [{"in": "query"}], **_op("text/event-stream")}}},
    }
    with pytest.raises(UsageError, match="/paths/~1x/get/parameters/0"):
        plan(tmp_path, doc)


# -- the verdict ------------------------------------------------------------------------------


def test_verdict_when_every_operation_skipped_then_not_ok_and_shape_pinned() -> None:
    result = OpenAPIResult("spec.json", "http://h", [], [], skipped=[("GET /x", "why")])
    assert result.ok is False
    assert result.to_json() == {
        "ok": False,
        "violations": [],
        "operations": [],
        "skipped": [{"operation": "GET /x", "reason": "why"}],
    }
    op = OperationReport("GET /y", "y", "text", FunctionReport("GET /y", examples=3))
    result.operations.append(op)
    assert result.ok is True
    shown = result.to_json()["operations"][0]
    assert list(shown)[:7] == [
        "operation",
        "operation_id",
        "ok",
        "examples",
        "violations",
        "minimal_request",
        "reproducer",
    ]
    assert shown["minimal_request"] is None and shown["examples"] == 3
