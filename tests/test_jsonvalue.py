"""Valid JSON that ``json.loads`` refuses -- integers of more than 4 300 digits, nesting about a
thousand deep -- is read as JSON (harness/_core/jsonvalue.py), judged by the schema, and
warned about once (``json.huge-integer``, ``json.too-deep``), in SSE data and NDJSON lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from contract_fixtures import check_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from harness._contracts.engine import ContractEngine
from harness._contracts.file import Contract, compile_contract
from harness._core import jsonvalue
from harness._core.framing import NDJSONDecoder
from harness._core.jsonvalue import HugeInt, _Ints, _parse, depth_of, loads
from harness._core.options import CheckOptions
from harness._core.session import StreamSession
from harness._core.sse import SSEEvent
from harness._runners.check import check

BIG = "1" + "7" * 5000  # 5001 digits
DEEP = "[" * 1000 + "]" * 1000

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, indent=st.sampled_from([None, 0, 2]))
def test_iterative_parser_agrees_with_json_loads(value: Any, indent: int | None) -> None:
    text = json.dumps(value, indent=indent)
    assert _parse(text, _Ints(), None)[0] == json.loads(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet='[]{}",:0123456789.eE-+ truefalsnu\\x', max_size=30))
def test_iterative_parser_rejects_exactly_what_json_loads_rejects(text: str) -> None:
    try:
        expected: Any = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            _parse(text, _Ints(), None)
    else:
        assert _parse(text, _Ints(), None)[0] == expected


def test_loads_when_integer_over_the_digit_limit_then_exact_value_and_a_note() -> None:
    value, note = loads(f'{{"n": {BIG}, "m": -{BIG}}}')
    assert isinstance(value["n"], HugeInt)
    assert value["n"] // 10**5000 == 1 and value["n"] % 10**18 == int("7" * 18)
    assert value["m"] == -value["n"]
    assert note is not None and (note.digits, note.depth, note.exact) == (5001, 0, True)
    assert str(value["n"]) == "177777777777...777777 (5001 digits)"
    assert sys.get_int_max_str_digits() == 4300  # the process's limit is left alone


def test_loads_when_integer_beyond_exact_digits_then_beyond_every_bound() -> None:
    digits = "9" * (jsonvalue.EXACT_DIGITS + 1)
    [high, low], note = loads(f"[{digits}, -{digits}]")
    assert note is not None and not note.exact
    assert high > 10**4300 and low < -(10**4300)


def test_loads_when_nesting_deeper_than_json_loads_then_the_value_and_its_depth() -> None:
    text = '{"a": ' * 3000 + "[1, {}, []]" + "}" * 3000
    value, note = loads(text)
    assert note is not None and note.depth == 3002
    for _ in range(3000):
        value = value["a"]
    assert value == [1, {}, []]
    assert depth_of(loads(DEEP)[0]) == 1000


@pytest.mark.parametrize(
    "text",
    ["[" * 2000 + "]" * 1999, "[" * 2000 + "1,]" + "]" * 1999, "[" * 2000 + "]" * 2001],
)
def test_loads_when_deep_but_broken_then_json_decode_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(text)


def sse(*datas: str) -> bytes:
    return b"".join(f"data: {d}\n\n".encode() for d in datas)


def rules(body: bytes, contract: str = "prefab") -> list[tuple[str, int | None]]:
    return [(v.rule, v.event_index) for v in check_bytes(contract, body).violations]


def test_sse_when_progress_total_has_5001_digits_then_json_and_a_warning_only() -> None:
    body = sse(
        '{"type": "start"}',
        f'{{"type": "progress", "data": {{"current": 1, "total": {BIG}}}}}',
        '{"type": "done"}',
    )
    assert rules(body) == [("json.huge-integer", 1)]


def test_sse_when_deep_nesting_then_json_and_a_warning_only() -> None:
    body = sse(f'{{"type": "x", "a": {DEEP}}}')
    session = StreamSession("test", ContractEngine(compiled({"type": "object"})), start=0.0)
    session.feed_bytes(body, 0.0)
    found = session.finish(0.0).violations
    assert [(v.rule, v.event_index) for v in found] == [("json.too-deep", 0)]
    assert found[0].message.startswith("the data nests 1001 levels deep: valid JSON")


def compiled(schema: dict[str, Any]) -> Contract:
    doc = {"version": 1, "name": "t", "type": {"from": "/type"}, "types": {"x": {"schema": schema}}}
    return compile_contract(doc, label="t.yaml", base_uri="file:///tmp/t.yaml")


def run(contract: Contract, *datas: str) -> list[tuple[str, str]]:
    engine = ContractEngine(contract)
    found = [v for d in datas for v in engine.feed(SSEEvent(d))]
    return [(v.rule, v.message) for v in found + engine.finish()]


def test_schema_when_huge_integer_over_maximum_then_event_schema_names_it() -> None:
    schema = {"properties": {"n": {"type": "integer", "maximum": 100}}}
    [(rule, message), (warning, _)] = run(compiled(schema), f'{{"type": "x", "n": {BIG}}}')
    assert (rule, warning) == ("event.schema", "json.huge-integer")
    assert "177777777777...777777 (5001 digits) is above the maximum 100" in message
    assert run(compiled(schema), f'{{"type": "x", "n": -{BIG}}}')[0][0] == "json.huge-integer"


def test_schema_when_recursive_schema_deeper_than_validator_then_not_judged_warning() -> None:
    schema = {"$defs": {"a": {"type": "array", "items": {"$ref": "#/$defs/a"}}}}
    schema["properties"] = {"a": {"$ref": "#/$defs/a"}}
    [(rule, message)] = run(compiled(schema), f'{{"type": "x", "a": {DEEP}}}')
    assert rule == "json.too-deep"
    assert message.startswith("the data nests 1001 levels deep")
    assert "its schema could not be checked that deep, so it was not judged" in message
    assert run(compiled(schema), '{"type": "x", "a": [[[]]]}') == []


def test_ndjson_when_lines_hold_huge_integers_or_deep_nesting_then_events_not_problems() -> None:
    decoder = NDJSONDecoder()
    lines = [f'{{"n": {BIG}}}', DEEP, '{"a": 1}']
    body = "\n".join(lines).encode() + b"\n"
    events = decoder.feed(body[:7]) + decoder.feed(body[7:]) + decoder.finish()
    assert [e.data for e in events] == lines
    assert decoder.problems == {}


def test_ndjson_ollama_when_eval_count_has_5001_digits_then_a_warning_only(
    tmp_path: Path,
) -> None:
    chunk = {"model": "m", "created_at": "2026-12-02T00:00:00Z", "done": False}
    final = {
        **chunk,
        "done": True,
        "done_reason": "stop",
        "total_duration": 1,
        "load_duration": 1,
        "prompt_eval_count": 1,
        "prompt_eval_duration": 1,
        "eval_duration": 1,
    }
    first = json.dumps({**chunk, "message": {"role": "assistant", "content": "hi"}})
    last = json.dumps({**final, "message": {"role": "assistant", "content": ""}})
    last = last[:-1] + f', "eval_count": {BIG}}}'
    path = tmp_path / "chat.ndjson"
    path.write_text(f"{first}\n{last}\n", encoding="utf-8")
    found = check(str(path), CheckOptions(contract="ollama")).violations
    assert [v.rule for v in found] == ["json.huge-integer"]
