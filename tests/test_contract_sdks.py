"""openai-chat and anthropic-messages against the real SDKs, over loopback.

A fake server of ours on 127.0.0.1 serves a stream; the real ``openai`` / ``anthropic`` client
(``base_url`` pointed at it, a dummy key, strict response validation, no retries) consumes it
twice -- iterating the raw stream, and through the SDK's accumulating ``.stream()`` helper --
and the contract checks the same bytes.  Two properties, over hand-written streams and
Hypothesis mutants:

- a stream the contract accepts is consumed by the SDK without error (a stream that ends in
  the server's own error object is accepted, and the SDK raises exactly that error -- its way
  of reporting a server-side failure);
- a stream the SDK rejects is flagged by the contract.

The contract is stricter than the SDK on purpose (a missing ``[DONE]``, a changed ``model``, a
second ``finish_reason`` pass the SDK silently); the converse must never happen.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from contract_fixtures import (
    DONE,
    FakeLLMApp,
    anthropic_event,
    anthropic_stream,
    check_bytes,
    fake_llm_server,
    openai_chunk,
    openai_stream,
    openai_usage,
    sse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)

Served = tuple[str, FakeLLMApp]
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def llm() -> Iterator[Served]:
    with pytest.MonkeyPatch.context() as mp:
        for var in PROXY_VARS:  # loopback only, whatever the environment says
            mp.delenv(var, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1")
        with fake_llm_server() as served:
            yield served


# -- consuming a stream with the SDKs ---------------------------------------------------------

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def openai_outcome(served: Served, body: bytes, usage: bool) -> Exception | None:
    """What the ``openai`` SDK makes of ``body``: None, or the exception it raised."""
    url, app = served
    model = app.register(body)
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if usage else {}
    client = openai.OpenAI(
        base_url=f"{url}/v1",
        api_key="sk-test-not-a-key",
        max_retries=0,
        timeout=10,
        _strict_response_validation=True,
    )
    try:
        for _ in client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, **extra
        ):
            pass
        with client.chat.completions.stream(model=model, messages=MESSAGES, **extra) as stream:
            for _ in stream:
                pass
            stream.get_final_completion()
    except (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError):
        return None  # the helper reports a legitimate finish_reason this way, by design
    except Exception as e:
        return e
    finally:
        client.close()
    return None


def anthropic_outcome(served: Served, body: bytes, strict: bool = True) -> Exception | None:
    """What the ``anthropic`` SDK makes of ``body``: None, or the exception it raised.

    ``strict=False`` is the SDK as users run it (its default): it passes over event types it
    does not know, as Anthropic's docs ask of every client."""
    url, app = served
    model = app.register(body)
    client = anthropic.Anthropic(
        base_url=url,
        api_key="sk-ant-test-not-a-key",
        max_retries=0,
        timeout=10,
        _strict_response_validation=strict,
    )
    try:
        for _ in client.messages.create(model=model, max_tokens=16, messages=MESSAGES, stream=True):
            pass
        with client.messages.stream(model=model, max_tokens=16, messages=MESSAGES) as stream:
            for _ in stream:
                pass
            stream.get_final_message()
    except Exception as e:
        return e
    finally:
        client.close()
    return None


def agree(
    contract: str,
    body: bytes,
    outcome: Exception | None,
    server_error: str | None,
    designed: type[Exception],
    request: object = None,
) -> bool:
    """Assert the two properties for one stream; return whether the contract accepted it."""
    result = check_bytes(contract, body, request=request)
    if server_error is not None and result.ok:
        # The server reported a failure the protocol's way: the SDK raises it, as designed.
        assert isinstance(outcome, designed), outcome
        assert server_error in str(outcome)
        return True
    if result.ok:
        assert outcome is None, f"the contract accepted a stream the SDK rejects: {outcome!r}"
    if outcome is not None:
        assert not result.ok, f"the SDK rejects ({outcome!r}) what the contract accepts"
    return result.ok


# -- openai-chat ------------------------------------------------------------------------------

ASKED = {"stream_options": {"include_usage": True}}
ERROR = {"error": {"message": "the model crashed", "type": "InternalServerError", "code": 500}}


def _mutate_chunk(i: int, change: Callable[[dict[str, Any]], Any]) -> list[Any]:
    events = copy.deepcopy(openai_stream())
    change(events[i])
    return events


def _call(index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """The first fragment of a tool call: its id and name, and the start of its arguments."""
    return {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _args(index: int, arguments: str) -> dict[str, Any]:
    """A later fragment of a tool call: more of its arguments."""
    return {"index": index, "function": {"arguments": arguments}}


OPENAI_CASES: dict[str, tuple[list[Any], bool]] = {
    # name: (events, include_usage asked)
    "conforming": (openai_stream(), False),
    "conforming-usage": (openai_stream(usage=True), True),
    "conforming-two-choices": (
        [
            openai_chunk({"role": "assistant", "content": "a"}, index=0),
            openai_chunk({"role": "assistant", "content": "b"}, index=1),
            openai_chunk({}, "stop", index=0),
            openai_chunk({}, "length", index=1),
            DONE,
        ],
        False,
    ),
    "conforming-tool-call": (
        [
            openai_chunk(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"index": 0, "id": "c1", "type": "function", "function": {"name": "f"}}
                    ],
                }
            ),
            openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
            openai_chunk({}, "tool_calls"),
            DONE,
        ],
        False,
    ),
    "conforming-two-tool-calls": (
        [
            openai_chunk({"role": "assistant", "content": None}),
            openai_chunk({"tool_calls": [_call(0, "c1", "get_weather", "")]}),
            openai_chunk({"tool_calls": [_args(0, '{"city": ')]}),
            openai_chunk({"tool_calls": [_args(0, '"Paris"}'), _call(1, "c2", "get_time", "")]}),
            openai_chunk({"tool_calls": [_args(1, "{}")]}),
            openai_chunk({}, "tool_calls"),
            DONE,
        ],
        False,
    ),
    "tool-call-name-repeated": (
        [
            openai_chunk({"role": "assistant", "tool_calls": [_call(0, "c1", "f", "{")]}),
            openai_chunk(
                {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "}"}}]}
            ),
            openai_chunk({}, "tool_calls"),
            DONE,
        ],
        False,
    ),
    "tool-call-first-without-id": (
        [
            openai_chunk({"role": "assistant", "tool_calls": [_args(0, "{}")]}),
            openai_chunk({}, "tool_calls"),
            DONE,
        ],
        False,
    ),
    "tool-call-arguments-not-json": (
        [
            openai_chunk({"role": "assistant", "tool_calls": [_call(0, "c1", "f", '{"a": ')]}),
            openai_chunk({}, "tool_calls"),
            DONE,
        ],
        False,
    ),
    "server-error": ([*openai_stream()[:2], ERROR, DONE], False),
    "not-json": ([openai_stream()[0], "{'a': 1}", DONE], False),
    "wrong-object": (_mutate_chunk(1, lambda c: c.update(object="chat.completion")), False),
    "role-user": (_mutate_chunk(0, lambda c: c["choices"][0]["delta"].update(role="user")), False),
    "bad-finish-reason": (
        _mutate_chunk(4, lambda c: c["choices"][0].update(finish_reason="end")),
        False,
    ),
    "no-id": (_mutate_chunk(2, lambda c: c.pop("id")), False),
    "content-not-string": (
        _mutate_chunk(2, lambda c: c["choices"][0]["delta"].update(content=["x"])),
        False,
    ),
    "choice-without-index": (_mutate_chunk(2, lambda c: c["choices"][0].pop("index")), False),
    "created-as-string": (_mutate_chunk(1, lambda c: c.update(created="yesterday")), False),
    "usage-on-content": (
        _mutate_chunk(1, lambda c: c.update(usage={"prompt_tokens": 1, "total_tokens": 1})),
        False,
    ),
    "error-without-message": ([openai_stream()[0], {"error": {"code": 500}}, DONE], False),
    "error-not-an-object": ([openai_stream()[0], {"error": "boom"}, DONE], False),
    "done-first": ([DONE], False),
    "no-done": (openai_stream()[:-1], False),
    "after-done": ([*openai_stream(), openai_chunk({"content": "x"})], False),
    "model-changes": (_mutate_chunk(2, lambda c: c.update(model="other")), False),
    "finishes-twice": ([*openai_stream()[:-1], openai_chunk({}, "length"), DONE], False),
    "never-finishes": ([*openai_stream()[:-2], DONE], False),
    "usage-total-wrong": ([*openai_stream()[:-1], openai_usage(5, 3, total=9), DONE], True),
    "usage-missing": (openai_stream(), True),
    "usage-unasked": (openai_stream(usage=True), False),
}


@pytest.mark.parametrize("name", sorted(OPENAI_CASES))
def test_openai_sdk_when_stream_served_then_sdk_and_contract_agree(llm: Served, name: str) -> None:
    events, usage = OPENAI_CASES[name]
    body = sse(events)
    outcome = openai_outcome(llm, body, usage)
    server_error = "the model crashed" if name == "server-error" else None
    request = {"model": "m", "stream": True, **(ASKED if usage else {})}
    accepted = agree("openai-chat", body, outcome, server_error, openai.APIError, request)
    assert accepted == name.startswith(("conforming", "server-error")), name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("tool-call-name-repeated", "fragment.first"),
        ("tool-call-first-without-id", "fragment.first"),
        ("tool-call-arguments-not-json", "fragment.json"),
    ],
)
def test_openai_contract_when_tool_call_fragments_broken_then_their_rule(
    name: str, rule: str
) -> None:
    events, _ = OPENAI_CASES[name]
    assert {v.rule for v in check_bytes("openai-chat", sse(events)).violations} == {rule}


def test_openai_sdk_when_tool_calls_stream_then_reads_what_the_contract_joined(llm: Served) -> None:
    url, app = llm
    model = app.register(sse(OPENAI_CASES["conforming-two-tool-calls"][0]))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0, timeout=10)
    try:
        with client.chat.completions.stream(model=model, messages=MESSAGES) as stream:
            for _ in stream:
                pass
            calls = stream.get_final_completion().choices[0].message.tool_calls or []
    finally:
        client.close()
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("c1", "get_weather", {"city": "Paris"}),
        ("c2", "get_time", {}),
    ]


def test_openai_sdk_rejects_what_the_contract_flags_as_malformed(llm: Served) -> None:
    """The SDK really does reject the malformed streams above (the test is not vacuous)."""
    for name in ("not-json", "wrong-object", "bad-finish-reason", "no-id", "content-not-string"):
        events, usage = OPENAI_CASES[name]
        assert openai_outcome(llm, sse(events), usage) is not None, name


# Mutations a gateway bug produces; each keeps the stream a list of events.
Mutation = Callable[[st.DrawFn, list[Any]], None]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=4,
)
CHUNK_KEYS = ["id", "object", "created", "model", "choices", "usage", "system_fingerprint"]
CHOICE_KEYS = ["index", "delta", "finish_reason", "logprobs"]
DELTA_KEYS = ["role", "content", "tool_calls", "refusal"]


def _some_chunk(draw: st.DrawFn, events: list[Any]) -> dict[str, Any] | None:
    chunks = [
        e
        for e in events
        if isinstance(e, dict)
        and isinstance(e.get("choices"), list)
        and e["choices"]
        and isinstance(e["choices"][0], dict)
    ]
    return draw(st.sampled_from(chunks)) if chunks else None


def _set_top(draw: st.DrawFn, events: list[Any]) -> None:
    if (c := _some_chunk(draw, events)) is not None:
        c[draw(st.sampled_from(CHUNK_KEYS))] = draw(JSON)


def _drop_top(draw: st.DrawFn, events: list[Any]) -> None:
    if (c := _some_chunk(draw, events)) is not None:
        c.pop(draw(st.sampled_from(CHUNK_KEYS)), None)


def _set_choice(draw: st.DrawFn, events: list[Any]) -> None:
    if (c := _some_chunk(draw, events)) is not None:
        values = st.sampled_from(["stop", "length", "tool_calls", "eos", None, 0, 1]) | JSON
        c["choices"][0][draw(st.sampled_from(CHOICE_KEYS))] = draw(values)


def _set_delta(draw: st.DrawFn, events: list[Any]) -> None:
    c = _some_chunk(draw, events)
    if c is not None and isinstance(c["choices"][0].get("delta"), dict):
        values = st.sampled_from(["assistant", "user", "tool", None, "x"]) | JSON
        c["choices"][0]["delta"][draw(st.sampled_from(DELTA_KEYS))] = draw(values)


def _insert(draw: st.DrawFn, events: list[Any]) -> None:
    extra = st.sampled_from(
        [DONE, "not json", ERROR, {"error": {}}, openai_usage(), openai_chunk({"content": "z"})]
    )
    events.insert(draw(st.integers(0, len(events))), draw(extra))


def _delete(draw: st.DrawFn, events: list[Any]) -> None:
    if events:
        del events[draw(st.integers(0, len(events) - 1))]


MUTATIONS: list[Mutation] = [_set_top, _drop_top, _set_choice, _set_delta, _insert, _delete]


@st.composite
def openai_streams(draw: st.DrawFn) -> tuple[list[Any], bool]:
    usage = draw(st.booleans())
    events = copy.deepcopy(
        openai_stream(draw(st.lists(st.text(max_size=3), max_size=3)), usage=usage)
    )
    for mutate in draw(st.lists(st.sampled_from(MUTATIONS), max_size=2)):
        mutate(draw, events)
    return events, usage


@SETTINGS
@given(openai_streams())
def test_openai_sdk_when_stream_mutated_then_contract_accepts_only_what_sdk_consumes(
    llm: Served, case: tuple[list[Any], bool]
) -> None:
    events, usage = case
    body = sse(events)
    error = next(
        (e for e in events if isinstance(e, dict) and isinstance(e.get("error"), dict)), None
    )
    message = error["error"].get("message") if error else None
    request = {"model": "m", "stream": True, **(ASKED if usage else {})}
    outcome = openai_outcome(llm, body, usage)
    agree("openai-chat", body, outcome, message, openai.APIError, request)


# -- anthropic-messages -------------------------------------------------------------------------

OVERLOADED = anthropic_event("error", error={"type": "overloaded_error", "message": "Overloaded"})


def _mutate_event(i: int, change: Callable[[dict[str, Any]], Any]) -> list[Any]:
    events = copy.deepcopy(anthropic_stream())
    change(events[i][1])
    return events


ANTHROPIC_CASES: dict[str, list[Any]] = {
    "conforming": anthropic_stream(),
    "conforming-no-blocks": anthropic_stream([]),
    "server-error": [*anthropic_stream()[:4], OVERLOADED],
    "not-json": [*anthropic_stream()[:3], ("content_block_delta", "{bad"), *anthropic_stream()[4:]],
    "name-and-type-disagree": _mutate_event(2, lambda d: d.update(type="content_block_stop")),
    "bad-stop-reason": _mutate_event(-2, lambda d: d["delta"].update(stop_reason="finished")),
    "role-user": _mutate_event(0, lambda d: d["message"].update(role="user")),
    "no-usage": _mutate_event(-2, lambda d: d.pop("usage")),
    "delta-without-index": _mutate_event(3, lambda d: d.pop("index")),
    "block-first": anthropic_stream()[2:],
    "delta-before-block": [e for i, e in enumerate(anthropic_stream()) if i != 2],
    "no-message-stop": anthropic_stream()[:-1],
    "after-stop": [*anthropic_stream(), anthropic_event("ping")],
    "index-skips": _mutate_event(6, lambda d: d.update(index=5)),
    "unknown-event": [
        *anthropic_stream()[:2],
        ("completion", {"type": "completion"}),
        *anthropic_stream()[2:],
    ],
}


@pytest.mark.parametrize("name", sorted(ANTHROPIC_CASES))
def test_anthropic_sdk_when_stream_served_then_sdk_and_contract_agree(
    llm: Served, name: str
) -> None:
    body = sse(ANTHROPIC_CASES[name])
    # New event types may appear (Anthropic's docs): the SDK's default mode passes over them,
    # and the contract, open to new types, warns.  Strict validation knows only today's types.
    outcome = anthropic_outcome(llm, body, strict=name != "unknown-event")
    server_error = "Overloaded" if name == "server-error" else None
    accepted = agree("anthropic-messages", body, outcome, server_error, anthropic.APIStatusError)
    assert accepted == name.startswith(("conforming", "server-error", "unknown-event")), name


def test_anthropic_contract_when_unknown_event_type_then_one_warning_and_order_unmoved() -> None:
    result = check_bytes("anthropic-messages", sse(ANTHROPIC_CASES["unknown-event"]))
    assert [(v.rule, v.severity.value) for v in result.violations] == [
        ("event.unknown-type-open", "warning")
    ]
    assert result.ok


def test_anthropic_sdk_rejects_what_the_contract_flags_as_malformed(llm: Served) -> None:
    for name in (
        "not-json",
        "bad-stop-reason",
        "role-user",
        "no-usage",
        "block-first",
        "delta-before-block",
    ):
        assert anthropic_outcome(llm, sse(ANTHROPIC_CASES[name])) is not None, name


EVENT_NAMES = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
]


@st.composite
def anthropic_streams(draw: st.DrawFn) -> list[Any]:
    blocks = draw(st.lists(st.lists(st.text(max_size=3), max_size=2), max_size=2))
    events = copy.deepcopy(anthropic_stream(blocks))
    for _ in range(draw(st.integers(0, 2))):
        action = draw(st.sampled_from(["set", "drop", "insert", "delete", "rename"]))
        i = draw(st.integers(0, len(events) - 1))
        _, data = events[i]
        if action == "set":
            data[draw(st.sampled_from(["index", "type", "delta", "usage", "message"]))] = draw(JSON)
        elif action == "drop" and len(data) > 1:
            data.pop(draw(st.sampled_from(sorted(k for k in data if k != "type"))))
        elif action == "insert":
            events.insert(i, copy.deepcopy(draw(st.sampled_from(events))))
        elif action == "delete":
            del events[i]
        elif action == "rename":
            events[i] = (draw(st.sampled_from(EVENT_NAMES)), data)
    return events


@SETTINGS
@given(anthropic_streams())
def test_anthropic_sdk_when_stream_mutated_then_contract_accepts_only_what_sdk_consumes(
    llm: Served, events: list[Any]
) -> None:
    body = sse(events)
    agree("anthropic-messages", body, anthropic_outcome(llm, body), None, anthropic.APIStatusError)


def test_fake_server_when_sdk_calls_then_request_reached_it(llm: Served) -> None:
    _, app = llm
    before = len(app.requests)
    assert openai_outcome(llm, sse(openai_stream()), False) is None
    assert len(app.requests) == before + 2
    assert app.requests[-1]["stream"] is True
    assert json.dumps(app.requests[-1]["messages"]) == json.dumps(MESSAGES)
