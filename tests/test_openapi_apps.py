"""The targets of the ``stream-harness openapi`` tests, proven before the tool meets them.

Every app of ``tests/openapi_apps`` starts on uvicorn and serves its document; each planted
bug does what its module docstring says when hit directly with httpx, and each correct
operation conforms to its contract (``harness.check``, the tool's own checker) on the inputs
that matter -- empty strings, unicode, the bounds -- and answers bad input with a 422.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openapi_fixtures
import pytest
import yaml
from openapi_apps import APPS, TALLY, fake_item_schema, fake_llm_debug, fake_ndjson
from openapi_fixtures import document, fetch_document, write_document

from harness import CheckOptions, check
from harness._contracts.openapi import load_document, streaming_operations
from harness._core.sse import SSEDecoder, SSEEvent

pytestmark = pytest.mark.timeout(60)

apps = pytest.fixture(scope="module", name="apps")(openapi_fixtures.apps)


def post(url: str, body: object) -> httpx.Response:
    return httpx.post(url, json=body, timeout=5)


def sse_events(raw: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return [*decoder.feed(raw, at=0.0), *decoder.finish()]


def read_until_cut(method: str, url: str, **kwargs: Any) -> tuple[int, bytes, str]:
    """Status, the bytes that arrived, and how the body ended ("complete" or the error)."""
    got = b""
    with httpx.stream(method, url, timeout=httpx.Timeout(5, read=1.0), **kwargs) as r:
        try:
            for chunk in r.iter_bytes():
                got += chunk
        except (httpx.RemoteProtocolError, httpx.ReadTimeout) as e:
            return r.status_code, got, type(e).__name__
    return r.status_code, got, "complete"


def rules(url: str, contract: str, body: object = None, **headers: str) -> list[str]:
    """The rule ids ``harness.check`` reports for one request (errors and warnings)."""
    options = CheckOptions(
        contract=contract,
        method="POST" if body is not None else "GET",
        body=None if body is None else json.dumps(body),
        headers=(("Content-Type", "application/json"), *headers.items()),
        first_byte_timeout=5,
        idle_timeout=2,
        total_timeout=10,
    )
    return sorted({v.rule for v in check(url, options).violations})


# -- every app starts and serves its document -------------------------------------------------


@pytest.mark.parametrize("name", list(APPS))
def test_app_when_served_then_openapi_json_is_its_document_and_lists_streams(
    apps: dict[str, str], name: str, tmp_path: Path
) -> None:
    doc = fetch_document(apps[name])
    assert doc == document(name)
    assert doc["openapi"] == ("3.2.0" if name == "item_schema" else "3.1.0")
    for fmt in ("json", "yaml"):
        path = write_document(name, tmp_path, fmt)
        assert (json.loads if fmt == "json" else yaml.safe_load)(path.read_text()) == doc
        labels = {op.label for op in streaming_operations(load_document(path), tmp_path)}
        documented = set(getattr(APPS[name], "PLANTED", {})) - {"POST /v1/complete"}
        assert documented <= labels  # every planted bug but the JSON-documented one streams


# -- llm-debug chat ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [m for m in fake_llm_debug.MODELS if m != "llama-3-8b"])
@pytest.mark.parametrize("prompt", ["", "hello world", "这是 测试", " \t\n"])
def test_debug_chat_when_model_is_not_the_crashing_one_then_conforms(
    apps: dict[str, str], model: str, prompt: str
) -> None:
    body = {"model_id": model, "prompt": prompt, "stream": True}
    assert rules(apps["llm_debug"] + "/api/debug/chat", "llm-debug", body) == []


def test_debug_chat_when_model_is_llama_then_stream_cut_after_first_chunk(
    apps: dict[str, str],
) -> None:
    url = apps["llm_debug"] + "/api/debug/chat"
    body = {"model_id": "llama-3-8b", "prompt": "", "stream": True}
    status, got, end = read_until_cut("POST", url, json=body)
    assert status == 200 and end == "RemoteProtocolError"
    assert [json.loads(e.data) for e in sse_events(got)] == [{"content": "(empty)", "done": False}]
    assert "http.incomplete-body" in rules(url, "llm-debug", body)


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "hi"},  # model_id missing
        {"model_id": "gpt-5", "prompt": "hi"},  # not in the enum
        {"model_id": "qwen-7b", "prompt": 12345},  # wrong type
        {"model_id": "qwen-7b"},
    ],
)
def test_debug_chat_when_body_breaks_schema_then_422_json(
    apps: dict[str, str], body: dict[str, Any]
) -> None:
    r = post(apps["llm_debug"] + "/api/debug/chat", body)
    assert r.status_code == 422 and "detail" in r.json()


@pytest.mark.parametrize("text", ["", "one two three", "é " * 300])
def test_summarize_when_any_valid_text_then_conforms(apps: dict[str, str], text: str) -> None:
    for style in ("short", "bullets"):
        body = {"text": text, "style": style}
        assert rules(apps["llm_debug"] + "/api/debug/summarize", "llm-debug", body) == []
    r = post(apps["llm_debug"] + "/api/debug/summarize", {"text": "x" * 2001})
    assert r.status_code == 422


def test_chat_raw_when_prompt_missing_or_not_a_string_then_500_else_conforms(
    apps: dict[str, str],
) -> None:
    url = apps["llm_debug"] + "/api/debug/chat/raw"
    assert rules(url, "llm-debug", {"model_id": "gpt-4o-mini", "prompt": ""}) == []
    assert rules(url, "llm-debug", {"model_id": "claude-3-haiku", "prompt": "a b"}) == []
    for body in ({"model_id": "gpt-4o-mini"}, {"model_id": "gpt-4o-mini", "prompt": 5}):
        r = post(url, body)
        assert r.status_code == 500 and not r.headers["content-type"].startswith("text/event")
    for body in (
        {"model_id": "qwen-7b", "prompt": "x"},
        {"model_id": "gpt-4o-mini", "prompt": "x" * 201},
    ):
        assert post(url, body).status_code == 422


# -- agent-stages generator ----------------------------------------------------------------------


def agent_events(url: str, body: object) -> list[dict[str, Any]]:
    r = post(url, body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    return [json.loads(e.data) for e in sse_events(r.content)]


@pytest.mark.parametrize("goals", [[""], ["python"], ["a", "b", "c"], ["网页", "", "x y"]])
def test_generate_stream_when_at_most_three_goals_then_conforms(
    apps: dict[str, str], goals: list[str]
) -> None:
    url = apps["agent_stages"] + "/api/v1/roadmaps/generate-stream"
    assert rules(url, "agent-stages", {"goals": goals}) == []
    assert agent_events(url, {"goals": goals, "level": "advanced"})[-1]["type"] == "done"


@pytest.mark.parametrize("n", [4, 5, 8])
def test_generate_stream_when_more_than_three_goals_then_no_done(
    apps: dict[str, str], n: int
) -> None:
    url = apps["agent_stages"] + "/api/v1/roadmaps/generate-stream"
    events = agent_events(url, {"goals": [""] * n})
    assert [e["type"] for e in events][-2:] == ["chunk", "complete"]
    assert "done" not in {e["type"] for e in events}
    assert rules(url, "agent-stages", {"goals": [""] * n}) == ["seq.terminal"]


@pytest.mark.parametrize("body", [{"goals": []}, {"goals": [""] * 9}, {}, {"goals": "a"}])
def test_generate_stream_when_goals_break_schema_then_422(
    apps: dict[str, str], body: dict[str, Any]
) -> None:
    assert post(apps["agent_stages"] + "/api/v1/roadmaps/generate-stream", body).status_code == 422


def test_outline_stream_when_valid_then_conforms_and_bad_input_422(apps: dict[str, str]) -> None:
    url = apps["agent_stages"] + "/api/v1/roadmaps/outline-stream"
    for body in (
        {"topic": "x"},
        {"topic": "机器学习", "depth": 5},
        {"topic": "a" * 100, "depth": 1},
    ):
        assert rules(url, "agent-stages", body) == []
    for body in (
        {"topic": ""},
        {"topic": "x", "depth": 0},
        {"depth": 2},
        {"topic": "x", "depth": "2x"},
    ):
        assert post(url, body).status_code == 422


def test_preview_stream_when_goals_missing_then_streamed_instead_of_422(
    apps: dict[str, str],
) -> None:
    url = apps["agent_stages"] + "/api/v1/roadmaps/preview-stream"
    for body in ({}, {"goals": []}):
        assert agent_events(url, body)[-1]["type"] == "done"  # accepted: the planted bug
    r = httpx.post(url, timeout=5)  # no body at all: accepted too, not a 500
    assert r.status_code == 200 and json.loads(sse_events(r.content)[-1].data)["type"] == "done"
    assert rules(url, "agent-stages", {"goals": ["a", "b"]}) == []
    for body in ({"goals": "a"}, {"goals": ["a"] * 4}, {"goals": [3]}, {"goals": ["x" * 51]}):
        assert post(url, body).status_code == 422


# -- GET token streams ---------------------------------------------------------------------------


def test_stream_when_prompt_empty_then_200_and_cut_after_the_first_chunk(
    apps: dict[str, str],
) -> None:
    url = apps["token_stream"] + "/stream"
    for prompt in ("", "   "):
        status, got, end = read_until_cut("GET", url, params={"prompt": prompt})
        assert (status, got, end) == (200, b": tokens follow\n\n", "RemoteProtocolError")
    assert "http.incomplete-body" in rules(url + "?prompt=", "text")


@pytest.mark.parametrize("query", ["prompt=hi", "prompt=a+b&n=50", "prompt=%E4%BD%A0&n=1"])
def test_stream_when_prompt_has_words_then_conforms(apps: dict[str, str], query: str) -> None:
    assert rules(apps["token_stream"] + "/stream?" + query, "text") == []


def test_stream_when_query_breaks_schema_then_422(apps: dict[str, str]) -> None:
    base = apps["token_stream"] + "/stream"
    for query in ("", "?prompt=a&n=0", "?prompt=a&n=51", "?prompt=a&n=x", "?prompt=" + "a" * 201):
        assert httpx.get(base + query, timeout=5).status_code == 422


def test_count_when_valid_then_conforms_and_bad_header_or_bound_422(
    apps: dict[str, str],
) -> None:
    base = apps["token_stream"] + "/stream/count"
    assert rules(base + "?upto=0", "text") == []
    assert rules(base + "?upto=30", "text", **{"X-Trace-Id": "ab-1", "Cookie": "session=s"}) == []
    assert httpx.get(base + "?upto=31", timeout=5).status_code == 422
    assert (
        httpx.get(base + "?upto=1", headers={"X-Trace-Id": "UPPER"}, timeout=5).status_code == 422
    )


def test_quota_when_n_over_quota_then_undocumented_429(apps: dict[str, str]) -> None:
    base = apps["token_stream"] + "/stream/quota"
    assert rules(base + "?n=20", "text") == []
    assert httpx.get(base + "?n=21", timeout=5).status_code == 429
    assert set(document("token_stream")["paths"]["/stream/quota"]["get"]["responses"]) == {
        "200",
        "422",
    }


# -- NDJSON --------------------------------------------------------------------------------------


def test_generate_when_num_predict_negative_then_first_line_then_hang(
    apps: dict[str, str],
) -> None:
    url = apps["ndjson"] + "/api/generate"
    body = {"model": "m", "num_predict": -1}
    status, got, end = read_until_cut("POST", url, json=body)
    assert (status, end) == (200, "ReadTimeout")
    assert [json.loads(line)["done"] for line in got.splitlines()] == [False]
    assert fake_ndjson.HANG_SECONDS > 60


@pytest.mark.parametrize("n", [0, 1, 20, 1000])
def test_generate_when_num_predict_not_negative_then_conforms(apps: dict[str, str], n: int) -> None:
    body = {"model": "llama3.2", "prompt": "why is the sky blue", "num_predict": n}
    assert rules(apps["ndjson"] + "/api/generate", "ollama", body) == []
    assert rules(apps["ndjson"] + "/api/generate", "ollama", {"model": "x"}) == []


def test_chat_when_valid_then_conforms_and_bad_input_422(apps: dict[str, str]) -> None:
    url = apps["ndjson"] + "/api/chat"
    for content in ("", "hello there", "ü"):
        body = {"model": "m", "messages": [{"role": "user", "content": content}]}
        assert rules(url, "ollama", body) == []
    for body in (
        {"model": "m", "messages": []},
        {"model": "", "messages": [{"role": "user", "content": ""}]},
    ):
        assert post(url, body).status_code == 422


def test_pull_when_called_then_ndjson_lines_sent_as_application_json(
    apps: dict[str, str],
) -> None:
    r = post(apps["ndjson"] + "/api/pull", {"model": "m"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert [json.loads(line)["status"] for line in r.text.splitlines()][-1] == "success"
    content = document("ndjson")["paths"]["/api/pull"]["post"]["responses"]["200"]["content"]
    assert list(content) == ["application/x-ndjson"]


# -- OpenAPI 3.2 itemSchema ----------------------------------------------------------------------


def items(url: str) -> list[dict[str, Any]]:
    """The parsed events as OpenAPI 3.2 items: ``{"event", "data", "id"}``."""
    r = httpx.get(url, timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    return [{"event": e.event, "data": e.data, "id": e.id} for e in sse_events(r.content)]


def item_errors(url: str) -> list[str]:
    """What breaks the itemSchema, the JSON in ``data`` checked by its ``contentSchema`` too."""
    schema = fake_item_schema.ITEM_SCHEMA
    out = []
    for item in items(url):
        out += [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(item)]
        content = schema["properties"]["data"]["contentSchema"]
        out += [
            e.message
            for e in jsonschema.Draft202012Validator(content).iter_errors(json.loads(item["data"]))
        ]
    return out


@pytest.mark.parametrize("query", ["text=", "text=hello+world&upper=true", "text=" + "x" * 100])
def test_tokens_when_any_text_then_every_item_matches_item_schema(
    apps: dict[str, str], query: str
) -> None:
    url = apps["item_schema"] + "/v2/tokens?" + query
    assert item_errors(url) == []
    assert items(url)[-1]["event"] == "end"
    assert httpx.get(apps["item_schema"] + "/v2/tokens?text=" + "x" * 101).status_code == 422


def test_words_when_a_word_is_over_ten_chars_then_an_item_breaks_item_schema(
    apps: dict[str, str],
) -> None:
    base = apps["item_schema"] + "/v2/words?text="
    assert item_errors(base + "a" * 10 + "+b") == []
    assert [i["event"] for i in items(base + "a" * 11)] == ["truncated", "end"]
    assert len(item_errors(base + "a" * 11)) == 1
    doc = document("item_schema")["paths"]["/v2/words"]["get"]
    assert doc["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]["properties"][
        "event"
    ] == {"enum": ["token", "end"]}


# -- documented as application/json -------------------------------------------------------------


def test_complete_when_max_tokens_over_context_then_tokens_after_error(
    apps: dict[str, str],
) -> None:
    url = apps["json_documented"] + "/v1/complete"
    assert rules(url, "text", {"prompt": "a", "max_tokens": 8}) == []
    r = post(url, {"prompt": "", "max_tokens": 9})
    assert [e.event for e in sse_events(r.content)][-2:] == ["error", "message"]
    assert rules(url, "text", {"prompt": "", "max_tokens": 9}) != []
    content = document("json_documented")["paths"]["/v1/complete"]["post"]["responses"]["200"]
    assert list(content["content"]) == ["application/json"]


def test_echo_and_transcribe_when_called_then_conform(apps: dict[str, str]) -> None:
    base = apps["json_documented"]
    for text in ("", "a b c", "ö " * 100):
        assert rules(base + "/v1/echo", "text", {"text": text}) == []
    r = httpx.post(base + "/v1/transcribe", content=b"\x00" * 7, timeout=5)
    assert r.status_code == 200 and [e.data for e in sse_events(r.content)] == ["7", "bytes"]


def test_apps_each_have_a_correct_streaming_operation() -> None:
    for module in APPS.values():
        labels = {op.label for op in streaming_operations(module.app.openapi(), every=True)}
        assert labels - set(module.PLANTED), module.__name__


def test_tally_when_a_bug_fires_then_the_requests_handled_until_then_are_kept(
    apps: dict[str, str],
) -> None:
    TALLY.reset()
    base = apps["token_stream"] + "/stream/quota?n="
    for n in (1, 2, 21, 0, 22):  # n=0 is refused with a 422 before the handler: not counted
        httpx.get(base + str(n), timeout=5)
    assert TALLY.hits["GET /stream/quota"] == 4
    assert TALLY.first_bug == {"GET /stream/quota": 3}
