"""The raw-text and NDJSON framings, and the framing rules, sans-I/O."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness._contracts.registry import get_checker
from harness._core.errors import UsageError
from harness._core.framing import (
    NDJSON,
    SSE,
    TEXT,
    NDJSONDecoder,
    TextDecoder,
    choose_framing,
    framing_of_media_type,
    make_decoder,
)
from harness._core.session import StreamSession
from harness._core.sse import SSEEvent


def feed_all(decoder: NDJSONDecoder | TextDecoder, chunks: list[bytes]) -> list[SSEEvent]:
    out: list[SSEEvent] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.finish()


def cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c for c in cuts if c <= len(stream)}), len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


# -- NDJSON -----------------------------------------------------------------------------------


def reference_ndjson(stream: bytes, limit: int) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """Slow and literal: split on CR/LF/CRLF, skip blank lines, judge each line."""
    events, problems = [], {"ndjson.line-too-large": 0, "ndjson.not-json": 0}
    pos = 0
    for m in re.finditer(rb"[^\r\n]*(?:\r\n|\r|\n|$)", stream):
        raw = m.group()
        line = raw.rstrip(b"\r\n")
        start, pos = pos, pos + len(raw)
        if not line.strip():
            continue
        if len(line) > limit:
            problems["ndjson.line-too-large"] += 1
            continue
        try:
            text = line.decode()
            json.loads(text)
        except ValueError:
            problems["ndjson.not-json"] += 1
            continue
        events.append((text, start))
    return events, {k: v for k, v in problems.items() if v}


def test_ndjson_when_lines_end_in_cr_lf_crlf_then_one_event_per_line() -> None:
    events = feed_all(NDJSONDecoder(), [b'{"a":1}\r{"b":2}\n{"c":3}\r\n\n\r\n 4 \n'])
    assert [e.data for e in events] == ['{"a":1}', '{"b":2}', '{"c":3}', " 4 "]
    assert [e.offset for e in events] == [0, 8, 16, 28]
    assert {e.event for e in events} == {"message"}


def test_ndjson_when_last_line_has_no_line_end_then_accepted_at_finish() -> None:
    d = NDJSONDecoder()
    assert d.feed(b'{"a":1}\n{"done":true}') != []
    assert [e.data for e in d.finish()] == ['{"done":true}']


def test_ndjson_when_line_is_not_json_then_reported_once_with_count_and_skipped() -> None:
    d = NDJSONDecoder()
    events = feed_all(d, [b'{"a":1}\ndata: {"a":2}\nnope\n[1]\n'])
    assert [e.data for e in events] == ['{"a":1}', "[1]"]
    problem = d.problems["ndjson.not-json"]
    assert (problem.offset, problem.preview, problem.count) == (8, 'data: {"a":2}', 2)


def test_ndjson_when_line_over_limit_then_skipped_without_buffering() -> None:
    d = NDJSONDecoder(max_event_bytes=100)
    events = d.feed(b'{"ok":1}\n{"big":"')
    for _ in range(1000):  # 1 MB of one line, fed in pieces: never kept
        assert d.feed(b"x" * 1000) == []
        assert d._tail_len <= 100
    events += feed_all(d, [b'"}\n{"ok":2}\n'])
    assert [e.data for e in events] == ['{"ok":1}', '{"ok":2}']
    problem = d.problems["ndjson.line-too-large"]
    assert problem.offset == 9
    assert problem.size == len(b'{"big":"') + 1_000_000 + 2


_json_lines = st.sampled_from(
    [b'{"a": 1}', b"[1, 2]", b'"s\xc3\xa9"', b"3", b"", b"  ", b"not json", b"\xff\xfe", b'{"a"']
)


@given(
    lines=st.lists(st.tuples(_json_lines, st.sampled_from([b"\n", b"\r", b"\r\n"])), max_size=10),
    tail=_json_lines,
    cuts=st.lists(st.integers(0, 120), max_size=8),
    limit=st.sampled_from([4, 8, 1 << 20]),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_ndjson_agrees_with_reference_however_the_bytes_are_split(
    lines: list[tuple[bytes, bytes]], tail: bytes, cuts: list[int], limit: int
) -> None:
    stream = b"".join(line + end for line, end in lines) + tail
    d = NDJSONDecoder(max_event_bytes=limit)
    events = feed_all(d, cut(stream, cuts))
    expected, problems = reference_ndjson(stream, limit)
    assert [(e.data, e.offset) for e in events] == expected
    assert {rule: p.count for rule, p in d.problems.items()} == problems


# -- raw text -----------------------------------------------------------------------------------


def test_text_when_chunks_arrive_then_each_is_a_token() -> None:
    events = feed_all(TextDecoder(), [b"Hello", b", ", b"world"])
    assert [(e.data, e.event, e.offset) for e in events] == [
        ("Hello", "message", 0),
        (", ", "message", 5),
        ("world", "message", 7),
    ]


def test_text_when_character_torn_across_chunks_then_token_holds_it_whole() -> None:
    body = "你好".encode()
    events = feed_all(TextDecoder(), [body[:2], body[2:4], body[4:]])
    assert "".join(e.data for e in events) == "你好"
    assert not any(e.invalid_utf8 for e in events)


def test_text_when_invalid_utf8_or_torn_at_end_then_replaced_and_flagged() -> None:
    events = feed_all(TextDecoder(), [b"a\xffb", b"\xe4\xb8"])
    assert [(e.data, e.invalid_utf8) for e in events] == [("a\ufffdb", True), ("\ufffd", True)]


def test_text_when_chunk_over_limit_then_oversize_placeholder() -> None:
    events = feed_all(TextDecoder(max_event_bytes=4), [b"abc", b"abcdef"])
    assert [(e.data, e.oversize) for e in events] == [("abc", False), ("", True)]


@given(text=st.text(max_size=40), cuts=st.lists(st.integers(0, 160), max_size=10))
def test_text_tokens_join_to_the_text_however_the_bytes_are_split(
    text: str, cuts: list[int]
) -> None:
    events = feed_all(TextDecoder(), cut(text.encode(), cuts))
    assert "".join(e.data for e in events) == text
    assert all(e.data for e in events)


# -- choosing a framing, and the rules --------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "framing"),
    [
        ("text/event-stream; charset=utf-8", SSE),
        ("application/x-ndjson", NDJSON),
        ("Application/JSONL", NDJSON),
        ("text/plain; charset=utf-8", TEXT),
        ("application/octet-stream", TEXT),
        ("application/json", None),
        (None, None),
    ],
)
def test_framing_of_media_type(content_type: str | None, framing: str | None) -> None:
    assert framing_of_media_type(content_type) == framing


def test_choose_framing_when_contract_does_not_accept_it_then_contracts_first() -> None:
    assert choose_framing(TEXT, (SSE, TEXT)) == TEXT
    assert choose_framing(TEXT, (SSE,)) == SSE
    assert choose_framing(None, (NDJSON,)) == NDJSON
    with pytest.raises(ValueError, match="unknown framing"):
        make_decoder("xml")


def run_session(body: list[bytes], contract: str = "text", framing: str = SSE) -> list[str]:
    session = StreamSession("t", get_checker(contract), start=0.0, framing=framing)
    for chunk in body:
        session.feed_bytes(chunk, 0.0)
    return [f"{v.rule}: {v.message}" for v in session.finish(1.0).violations]


def test_sse_when_lines_lack_data_prefix_then_no_events_and_unknown_field() -> None:
    found = run_session([b"Hello\n\nworld\n\n"])
    assert any(v.startswith("sse.no-events: the body had 14 bytes") for v in found), found
    unknown = [v for v in found if v.startswith("sse.unknown-field")]
    assert len(unknown) == 1
    assert "'Hello' at byte 0" in unknown[0] and "1 more line like it" in unknown[0]


def test_sse_when_data_holds_an_unescaped_newline_then_unknown_field_warning() -> None:
    found = run_session([b"data: line1\nline2\n\n"])
    assert found == [
        "sse.unknown-field: the line 'line2' at byte 12 is not a field (data/event/id/retry) "
        "nor a comment; a client ignores it -- an unescaped newline inside data?"
    ]


def test_sse_when_only_known_fields_and_comments_then_no_framing_violation() -> None:
    assert run_session([b": hi\nretry: 10\nid: 1\nevent: message\ndata: x\n\n"]) == []


def test_text_framing_when_text_contract_then_tokens_conform() -> None:
    assert run_session([b"Hel", b"lo"], framing=TEXT) == []


def test_ndjson_framing_when_problems_then_one_violation_per_rule() -> None:
    session = StreamSession("t", get_checker("text"), start=0.0, framing=NDJSON, max_event_bytes=16)
    session.feed_bytes(b'"a"\nnope\n"' + b"x" * 40 + b'"\nno\n"b"', 0.0)
    result = session.finish(1.0)
    assert result.events == 2
    assert sorted(v.rule for v in result.violations) == ["ndjson.line-too-large", "ndjson.not-json"]
    assert "(and 1 more line like it)" in next(
        v.message for v in result.violations if v.rule == "ndjson.not-json"
    )


def test_session_when_rule_broken_the_same_way_on_every_event_then_reported_once_with_count() -> (
    None
):
    session = StreamSession("t", get_checker("text"), start=0.0)
    session.feed_bytes(b"event: bogus\ndata: x\n\n" * 11, 0.0)
    result = session.finish(1.0)
    unknown = [v for v in result.violations if v.rule == "event.unknown-type"]
    assert len(unknown) == 1
    assert unknown[0].event_index == 0
    assert unknown[0].message.endswith("(10 more events like this)")
    assert result.transcript[0].violations == unknown
    assert all(not e.violations for e in result.transcript[1:])


def test_transcript_when_json_escapes_non_ascii_then_shows_the_characters() -> None:
    session = StreamSession("t", get_checker("prefab"), start=0.0)
    body = (
        b'data: {"type":"start","data":{}}\n\n'
        b'data: {"type":"content","data":"\\u4f60\\u597d \\u0022q\\u0022"}\n\n'
        b'data: {"type":"content","data":7,"note":"\\u4e2d"}\n\n'
    )
    session.feed_bytes(body, 0.0)
    result = session.finish(1.0)
    assert result.transcript[1].preview == '{"type":"content","data":"你好 \\u0022q\\u0022"}'
    schema = next(v.message for v in result.violations if v.rule == "event.schema")
    assert '"note"' in schema and "\\u" not in schema


RAG_CONTRACT = """\
version: 1
name: rag
summary: plain data tokens, with the retrieval result as JSON
data: text
type: {from: event}
types:
  retrieval_done:
    data: json
    schema: {type: object, required: [documents], properties: {documents: {type: array}}}
  message:
    summary: a token
  error:
    schema: {type: string, minLength: 1}
order:
  pattern: retrieval_done message* error?
  failure: [error]
"""


@pytest.fixture
def rag(tmp_path: Path) -> str:
    path = tmp_path / "rag.yaml"
    path.write_text(RAG_CONTRACT)
    return str(path)


def rag_rules(contract: str, body: bytes) -> list[str]:
    session = StreamSession("t", get_checker(contract), start=0.0)
    session.feed_bytes(body, 0.0)
    return [v.rule for v in session.finish(1.0).violations]


def test_mixed_contract_when_json_event_beside_text_tokens_then_each_read_its_way(rag: str) -> None:
    good = b'event: retrieval_done\ndata: {"documents": [1]}\n\ndata: {not json\n\ndata: NaN\n\n'
    assert rag_rules(rag, good) == []
    bad = b'event: retrieval_done\ndata: {"docs": 1}\n\ndata: tok\n\n'
    assert rag_rules(rag, bad) == ["event.schema"]
    not_json = b"event: retrieval_done\ndata: documents\n\ndata: tok\n\n"
    assert rag_rules(rag, not_json) == ["sse.data-not-json"]
    failed = b"event: retrieval_done\ndata: NaN\n\nevent: error\ndata: boom\n\n"
    assert rag_rules(rag, failed)[:1] == ["sse.data-not-json"]


def test_mixed_contract_when_types_not_from_event_then_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "version: 1\nname: bad\ntype: {from: /type}\n"
        "types:\n  a: {data: text}\n  b:\norder: {pattern: a b}\n"
    )
    with pytest.raises(UsageError, match=r"/types/a/data: a type may read its data differently"):
        get_checker(str(path))
