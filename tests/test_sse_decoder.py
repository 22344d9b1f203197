"""The SSE decoder against the WHATWG text, a spec-literal reference, and Hypothesis."""

from __future__ import annotations

import re
from itertools import accumulate

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import SSEDecoder, SSEEvent
from harness._core.sse import MAX_RETRY

# -- a reference decoder, written line by line from the WHATWG HTML event-stream text ----------


def reference_retry(value: str) -> int:
    """The spec's base-ten integer, capped where the decoder caps it (no int-string limit)."""
    digits = value.lstrip("0")
    return MAX_RETRY if len(digits) > len(str(MAX_RETRY)) else min(int(digits or "0"), MAX_RETRY)


def reference_decode(stream: bytes) -> tuple[list[tuple[str, str, str, int | None]], str]:
    """Slow and literal: decode the whole stream, split lines, apply the field rules."""
    events, last_id, _ = reference_decode_all(stream)
    return events, last_id


def reference_decode_all(
    stream: bytes,
) -> tuple[list[tuple[str, str, str, int | None]], str, int | None]:
    """The events, the last event id and the reconnection time the stream set, if any."""
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split("\r\n|\r|\n", text)
    lines.pop()  # the part after the last line end is not a line: discarded at end of stream
    events = []
    data, etype, last_id_buf, retry_ev = "", "", "", None
    last_id = ""
    retry: int | None = None
    for line in lines:
        if line == "":
            last_id = last_id_buf
            if data == "":
                etype, retry_ev = "", None
                continue
            if data.endswith("\n"):
                data = data[:-1]
            events.append((etype or "message", data, last_id, retry_ev))
            data, etype, retry_ev = "", "", None
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            name, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "event":
            etype = value
        elif name == "data":
            data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                last_id_buf = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry_ev = retry = reference_retry(value)
    return events, last_id, retry


def project(events: list[SSEEvent]) -> list[tuple[str, str, str, int | None]]:
    return [(e.event, e.data, e.id, e.retry) for e in events]


def decode_in_chunks(
    stream: bytes, cuts: list[int], max_event_bytes: int = 1 << 20
) -> tuple[list[SSEEvent], SSEDecoder]:
    d = SSEDecoder(max_event_bytes=max_event_bytes)
    out: list[SSEEvent] = []
    prev = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        out += d.feed(stream[prev:cut])
        prev = cut
    out += d.finish()
    return out, d


# -- example-based: each clause of the spec ---------------------------------------------------


def decode(stream: bytes) -> list[tuple[str, str, str, int | None]]:
    return project(decode_in_chunks(stream, [])[0])


def test_decoder_when_plain_data_then_message_event() -> None:
    assert decode(b"data: hello\n\n") == [("message", "hello", "", None)]


def test_decoder_when_multiple_data_lines_then_joined_with_lf() -> None:
    assert decode(b"data: a\ndata:b\ndata\n\n") == [("message", "a\nb\n", "", None)]


def test_decoder_when_only_one_leading_space_then_only_it_is_stripped() -> None:
    assert decode(b"data:  two\n\n") == [("message", " two", "", None)]


def test_decoder_when_event_field_then_type_set_and_reset_after_dispatch() -> None:
    assert decode(b"event: tick\ndata: 1\n\ndata: 2\n\n") == [
        ("tick", "1", "", None),
        ("message", "2", "", None),
    ]


def test_decoder_when_cr_crlf_lf_mixed_then_all_are_line_ends() -> None:
    assert decode(b"data: a\rdata: b\r\ndata: c\n\r\n") == [("message", "a\nb\nc", "", None)]


def test_decoder_when_crlf_torn_across_chunks_then_one_line_end() -> None:
    events, _ = decode_in_chunks(b"data: a\r\n\r\ndata: b\r\n\r\n", [8, 10])
    assert project(events) == [("message", "a", "", None), ("message", "b", "", None)]


def test_decoder_when_cr_ends_chunk_then_event_dispatched_without_waiting() -> None:
    d = SSEDecoder()
    assert [e.data for e in d.feed(b"data: now\r\r")] == ["now"]


def test_decoder_when_comment_lines_then_ignored() -> None:
    assert decode(b": ping\ndata: x\n: another\n\n") == [("message", "x", "", None)]


def test_decoder_when_leading_bom_then_dropped_once() -> None:
    assert decode(b"\xef\xbb\xbfdata: x\n\n") == [("message", "x", "", None)]
    # A second BOM is part of the first field name, which is then unknown and ignored.
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n") == []


def test_decoder_when_bom_split_across_chunks_then_still_dropped() -> None:
    events, _ = decode_in_chunks(b"\xef\xbb\xbfdata: x\n\n", [1, 2])
    assert project(events) == [("message", "x", "", None)]


def test_decoder_when_id_persists_then_later_events_carry_it() -> None:
    d = SSEDecoder()
    events = d.feed(b"id: 7\ndata: a\n\ndata: b\n\n")
    assert [e.id for e in events] == ["7", "7"]
    assert d.last_event_id == "7"


def test_decoder_when_id_contains_nul_then_ignored() -> None:
    assert decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [
        ("message", "a", "1", None),
        ("message", "b", "1", None),
    ]


def test_decoder_when_empty_id_then_last_event_id_reset() -> None:
    assert decode(b"id: 1\ndata: a\n\nid\ndata: b\n\n")[1] == ("message", "b", "", None)


def test_decoder_when_id_only_block_then_no_event_but_id_committed() -> None:
    d = SSEDecoder()
    assert d.feed(b"id: 9\n\n") == []
    assert d.last_event_id == "9"


def test_decoder_when_retry_all_digits_then_set() -> None:
    d = SSEDecoder()
    events = d.feed(b"retry: 1500\ndata: x\n\n")
    assert events[0].retry == 1500
    assert d.retry == 1500


@pytest.mark.parametrize("value", [b"+10", b"1_0", b"-1", b"1.5", b"", b"  10", b" 10 "])
def test_decoder_when_retry_not_all_ascii_digits_then_ignored(value: bytes) -> None:
    d = SSEDecoder()
    d.feed(b"retry:" + value + b"\ndata: x\n\n")
    assert d.retry is None


def test_decoder_when_unknown_field_or_no_colon_then_ignored() -> None:
    assert decode(b"foo: bar\nbaz\ndata: x\n\n") == [("message", "x", "", None)]


def test_decoder_when_empty_data_buffer_then_not_dispatched() -> None:
    assert decode(b"event: x\n\nretry: 5\n\n") == []


def test_decoder_when_data_field_empty_then_dispatched_with_empty_data() -> None:
    assert decode(b"data\n\n") == [("message", "", "", None)]


def test_decoder_when_stream_ends_mid_event_then_discarded_and_truncated() -> None:
    events, d = decode_in_chunks(b"data: a\n\ndata: b\n", [])
    assert project(events) == [("message", "a", "", None)]
    assert d.truncated


def test_decoder_when_stream_ends_on_partial_comment_then_not_truncated() -> None:
    _, d = decode_in_chunks(b"data: a\n\n: keep-alive", [])
    assert not d.truncated


def test_decoder_when_stream_ends_cleanly_then_not_truncated() -> None:
    _, d = decode_in_chunks(b"data: a\n\n", [])
    assert not d.truncated


def test_decoder_when_invalid_utf8_then_replaced_and_flagged() -> None:
    events, _ = decode_in_chunks(b"data: a\xffb\n\ndata: ok\n\n", [])
    assert events[0].data == "a\ufffdb"
    assert events[0].invalid_utf8
    assert not events[1].invalid_utf8


def test_decoder_when_multibyte_char_split_across_chunks_then_intact() -> None:
    raw = "data: 你好\n\n".encode()
    events, _ = decode_in_chunks(raw, [7, 8])
    assert events[0].data == "你好"
    assert not events[0].invalid_utf8


def test_decoder_records_byte_offset_of_each_event() -> None:
    stream = b"\xef\xbb\xbfid: 1\ndata: a\n\n: c\r\ndata: b\r\n\r\n"
    events, _ = decode_in_chunks(stream, [])
    assert [e.offset for e in events] == [3, 18]


def test_decoder_feed_at_stamps_arrival_time() -> None:
    d = SSEDecoder()
    assert [e.time for e in d.feed(b"data: a\n\ndata: b\n\n", at=12.5)] == [12.5, 12.5]


# -- bounded memory ---------------------------------------------------------------------------


def test_decoder_when_event_over_limit_then_placeholder_and_next_event_decoded() -> None:
    stream = b"data: " + b"x" * 100 + b"\n\ndata: next\n\n"
    events, _ = decode_in_chunks(stream, [], max_event_bytes=64)
    assert [(e.oversize, e.data) for e in events] == [(True, ""), (False, "next")]


def test_decoder_when_long_line_arrives_in_small_chunks_then_not_buffered() -> None:
    d = SSEDecoder(max_event_bytes=1024)
    out = d.feed(b"data: ")
    for _ in range(10_000):  # 10 MB of one line, 1 KB at a time
        out += d.feed(b"y" * 1000)
        assert d._tail_len <= 1024  # the decoder keeps nothing of the oversize line
    out += d.feed(b"\n\ndata: after\n\n")
    assert [(e.oversize, e.data) for e in out] == [(True, ""), (False, "after")]


def test_decoder_when_oversize_event_spans_many_lines_then_one_placeholder() -> None:
    stream = b"".join(b"data: %d\n" % i for i in range(1000)) + b"\ndata: z\n\n"
    events, _ = decode_in_chunks(stream, [50, 3000], max_event_bytes=200)
    assert [(e.oversize, e.data) for e in events] == [(True, ""), (False, "z")]


def test_decoder_when_crlf_torn_inside_an_event_then_size_counts_the_lf() -> None:
    """Found by Hypothesis: a chunk ending on the CR of a CRLF must not make the event look
    one byte smaller than it is -- oversize must not depend on where the stream was cut."""
    block = b'id: 1\r\ndata: {"type":"content","data":"t1"}\r\n'  # 45 bytes
    stream = block + b"\r\n"
    for cut in range(len(stream) + 1):
        events, _ = decode_in_chunks(stream, [cut], max_event_bytes=44)
        assert [e.oversize for e in events] == [True], cut


def test_decoder_when_retry_has_thousands_of_digits_then_capped_not_raised() -> None:
    d = SSEDecoder()
    assert d.feed(b"retry: " + b"9" * 5000 + b"\ndata: x\n\n")[0].retry == MAX_RETRY
    assert d.feed(b"retry: " + b"0" * 5000 + b"7\ndata: x\n\n")[0].retry == 7
    assert d.retry == 7


@pytest.mark.parametrize(
    ("chunks", "data"),
    [
        ([b"data: a\r\n\r\ndata: b\r\n", b"data: c\n\n"], ["a", "b\nc"]),
        ([b"\r\n\r\ndata\r\n", b"\n"], [""]),
        ([b"id: 1\r\n\r\ndata: x\r\nda", b"ta: y\n\n"], ["x\ny"]),
    ],
)
def test_decoder_when_crlf_bulk_chunk_leaves_lines_then_next_lf_chunk_reads_them_as_lines(
    chunks: list[bytes], data: list[str]
) -> None:
    d = SSEDecoder()
    events = [e for c in chunks for e in d.feed(c)]
    assert [e.data for e in events] == data


def test_decoder_when_crlf_bulk_chunk_ends_in_retry_line_then_retry_set() -> None:
    d = SSEDecoder()
    d.feed(b"\r\n\r\nretry:7\r\n")
    d.finish()  # the line may wait in the buffer until the stream ends, as on the LF path
    assert d.retry == 7


def test_decoder_rejects_nonpositive_limit() -> None:
    with pytest.raises(ValueError, match="max_event_bytes"):
        SSEDecoder(max_event_bytes=0)


# -- properties -------------------------------------------------------------------------------

_names = st.sampled_from(["data", "id", "event", "retry", "foo", "", "dat", "data "])
_values = st.text(alphabet=st.sampled_from([*list("ab 1:\x00é\ufeff"), "\ud7ff"]), max_size=6)
_line_ends = st.sampled_from([b"\n", b"\r", b"\r\n"])
_retry_values = (
    _values
    | st.from_regex(r"[0-9]{1,4}", fullmatch=True)
    | st.sampled_from(["0" * 4400 + "7", "9" * 4400, str(MAX_RETRY + 1), "00" + str(MAX_RETRY)])
)


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    """Arbitrary, often malformed, streams: random fields, comments, line ends, bad bytes."""
    return b"".join(draw(sse_lines()))


@st.composite
def chunked_sse_streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """A stream and where to cut it: anywhere, or at line boundaries, where a chunk that is a
    run of whole CRLF lines (the CRLF bulk path) meets one that is not."""
    parts = draw(sse_lines())
    stream = b"".join(parts)
    bounds = list(accumulate(map(len, parts)))
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=8))
    if bounds:
        cuts += draw(st.lists(st.sampled_from(bounds), max_size=4))
    # Where the line end changes kind, a cut puts a pure-CRLF chunk beside another kind.
    ends = [p[-2:] if p.endswith(b"\r\n") else p[-1:] for p in parts]
    switches = [b for b, e, f in zip(bounds, ends, ends[1:], strict=False) if e != f]
    if switches and draw(st.booleans()):
        cuts.append(draw(st.sampled_from(switches)))
    return stream, cuts


@st.composite
def sse_lines(draw: st.DrawFn) -> list[bytes]:
    """The lines (with their line ends) of an arbitrary stream, as ``sse_streams`` joins them."""
    parts: list[bytes] = []
    if draw(st.booleans()):
        parts.append(b"\xef\xbb\xbf")
    # Often one line end for the whole stream, or CRLF switching to LF part-way: servers do the
    # first, and a CRLF-only run is what takes the CRLF bulk path, which the switch then leaves.
    mode = draw(st.sampled_from(["fixed", "mixed", "switch"]))
    line_ends = st.just(draw(_line_ends)) if mode == "fixed" else _line_ends
    n_lines = draw(st.integers(0, 12))
    switch_at = draw(st.integers(0, n_lines)) if mode == "switch" else -1
    for i in range(n_lines):
        if mode == "switch":
            line_ends = st.just(b"\r\n" if i < switch_at else b"\n")
        kind = draw(st.integers(0, 9))
        if kind == 0:
            line = b""
        elif kind == 1:
            line = b":" + draw(_values).encode()
        elif kind == 2:
            line = draw(st.binary(max_size=4)).replace(b"\n", b"").replace(b"\r", b"")
        else:
            name = draw(_names).encode()
            sep = draw(st.sampled_from([b":", b": ", b":  ", b""]))
            value = draw(_retry_values if name == b"retry" else _values)
            line = name + sep + value.encode()
        parts.append(line + draw(line_ends))
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from([b"data: tail", b"", b":c", b"\r"])))
    return parts


_field_lines = st.sampled_from(
    [b"data: a", b"data", b"data:", b"event: e", b"id: 1", b"retry: 7", b"retry:7", b":c", b"x: y"]
)


@st.composite
def line_end_switching_streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """Event-shaped streams whose line ends change kind as they go (CRLF lines, then LF or CR
    lines, and back), cut at line boundaries: a chunk of whole CRLF lines takes the CRLF bulk
    path and must leave what it did not parse in a state any later path reads the same."""
    lines = draw(st.lists(_field_lines | st.just(b""), max_size=14))
    runs = draw(st.lists(st.tuples(_line_ends, st.integers(1, 6)), min_size=2, max_size=4))
    if draw(st.booleans()):
        runs[0] = (b"\r\n", runs[0][1])  # most often what servers send
    ends = [end for end, n in runs for _ in range(n)]
    ends += [ends[-1]] * len(lines)
    parts = [line + end for line, end in zip(lines, ends, strict=False)]
    bounds = list(accumulate(map(len, parts)))
    cuts = draw(st.lists(st.sampled_from(bounds), max_size=3)) if bounds else []
    switches = [b for b, e, f in zip(bounds, ends, ends[1 : len(parts)], strict=False) if e != f]
    if switches:
        cuts.append(draw(st.sampled_from(switches)))
    return b"".join(parts), cuts


@given(chunked=chunked_sse_streams())
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
def test_decoder_agrees_with_reference_however_the_bytes_are_split(
    chunked: tuple[bytes, list[int]],
) -> None:
    assert_agrees_with_reference(*chunked)


@given(chunked=line_end_switching_streams())
@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
def test_decoder_when_line_ends_change_kind_between_chunks_then_agrees_with_reference(
    chunked: tuple[bytes, list[int]],
) -> None:
    assert_agrees_with_reference(*chunked)


def assert_agrees_with_reference(stream: bytes, cuts: list[int]) -> None:
    events, d = decode_in_chunks(stream, cuts)
    expected, last_id, retry = reference_decode_all(stream)
    assert project(events) == expected
    assert d.last_event_id == last_id
    assert d.retry == retry
    whole, _ = decode_in_chunks(stream, [])
    assert [e.offset for e in events] == [e.offset for e in whole]


_event_names = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=8,
)
_event_data = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r"), max_size=20
)
_ids = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]), max_size=6
)


def encode(events: list[tuple[str, str, str, int | None]], line_end: bytes) -> bytes:
    out = []
    for etype, data, eid, retry in events:
        lines = [f"event: {etype}", f"id: {eid}"]
        if retry is not None:
            lines.append(f"retry: {retry}")
        lines += [f"data: {d}" for d in data.split("\n")]
        out.append(line_end.join(s.encode() for s in lines) + line_end + line_end)
    return b"".join(out)


@given(
    events=st.lists(
        st.tuples(_event_names, _event_data, _ids, st.none() | st.integers(0, 10**6)), max_size=8
    ),
    line_end=_line_ends,
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
@settings(max_examples=300)
def test_decoder_round_trips_encoded_events(
    events: list[tuple[str, str, str, int | None]], line_end: bytes, cuts: list[int]
) -> None:
    stream = encode(events, line_end)
    decoded, _ = decode_in_chunks(stream, [c for c in cuts if c <= len(stream)])
    assert project(decoded) == events


@given(
    n=st.integers(1, 40),
    layout=st.permutations(["id", "event", "data"]).flatmap(
        lambda p: st.sampled_from([p, [f for f in p if f != "id"], [f for f in p if f != "event"]])
    ),
    line_end=st.sampled_from([b"\n", b"\r\n"]),
    empty_event=st.booleans(),
    cuts=st.lists(st.integers(0, 3000), max_size=6),
    limit=st.sampled_from([30, 40, 44, 45, 46, 60, 1 << 20]),
)
def test_decoder_bulk_path_agrees_with_reference(
    n: int,
    layout: list[str],
    line_end: bytes,
    empty_event: bool,
    cuts: list[int],
    limit: int,
) -> None:
    """The C-level bulk path for uniform runs must give what the reference gives, and must
    hand an event that is too large to the general path at exactly the same size."""
    values = {
        "id": lambda i: b"id: %d" % i,
        "event": lambda i: b"event: " if empty_event and i % 3 == 0 else b"event: kind%d" % (i % 2),
        "data": lambda i: b'data: {"type":"content","data":"t%d"}' % i,
    }
    blocks = [b"".join(values[f](i) + line_end for f in layout) for i in range(n)]
    body = line_end.join(blocks) + line_end
    events, _ = decode_in_chunks(body, [c for c in cuts if c <= len(body)], max_event_bytes=limit)
    assert [e.oversize for e in events] == [len(b) > limit for b in blocks]
    expected = reference_decode(body)[0]
    fits = [e for e, b in zip(expected, blocks, strict=True) if len(b) <= limit]
    assert project([e for e in events if not e.oversize]) == fits
    whole, _ = decode_in_chunks(body, [], max_event_bytes=limit)
    assert [e.offset for e in events] == [e.offset for e in whole]
    starts = [sum(len(b) + len(line_end) for b in blocks[:i]) for i in range(n)]
    assert [e.offset for e in events] == starts


# -- comments do not count towards an event's size, and are not kept -------------------------


def reference_sized(stream: bytes, limit: int) -> list[tuple[bool, str]]:
    """Per block (the lines before a blank line): oversize when its lines other than comments,
    line ends included, pass ``limit``; else its data, if it has any."""
    out = []
    size, data = 0, []
    for m in re.finditer(rb"([^\r\n]*)(\r\n|\r|\n)", stream):
        line, end = m.groups()
        if not line:
            if size > limit:
                out.append((True, ""))
            elif data:
                out.append((False, "\n".join(data)))
            size, data = 0, []
        elif not line.startswith(b":"):
            size += len(line) + len(end)
            if line.startswith(b"data: "):
                data.append(line[6:].decode())
    return out


@st.composite
def commented_streams(draw: st.DrawFn) -> tuple[bytes, list[int], int]:
    """Events buried in comment lines, short and long, with any line ends, cut anywhere."""
    limit = draw(st.integers(8, 40))
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        for _ in range(draw(st.integers(0, 6))):
            kind = draw(st.sampled_from(["comment", "long comment", "data"]))
            if kind == "data":
                line = b"data: " + draw(st.text("abc", max_size=30)).encode()
            else:
                n = draw(st.integers(0, 8)) if kind == "comment" else draw(st.integers(40, 200))
                line = b":" + b"k" * n
            parts.append(line + draw(_line_ends))
        blank = draw(_line_ends)
        if blank == b"\n" and parts and parts[-1].endswith(b"\r"):
            blank = b"\r\n"  # a lone LF there would be the CR's CRLF, not a blank line
        parts.append(blank)
    stream = b"".join(parts)
    bounds = list(accumulate(map(len, parts)))
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=8))
    cuts += draw(st.lists(st.sampled_from(bounds), max_size=3))
    return stream, cuts, limit


@given(case=commented_streams())
@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
def test_decoder_when_comments_pass_the_limit_then_only_other_lines_count(
    case: tuple[bytes, list[int], int],
) -> None:
    stream, cuts, limit = case
    events, _ = decode_in_chunks(stream, cuts, max_event_bytes=limit)
    assert [(e.oversize, e.data) for e in events] == reference_sized(stream, limit)
    whole, _ = decode_in_chunks(stream, [], max_event_bytes=limit)
    assert [e.offset for e in events] == [e.offset for e in whole]


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"])
def test_decoder_when_many_comment_lines_before_an_event_then_event_kept_memory_flat(
    line_end: bytes,
) -> None:
    d = SSEDecoder(max_event_bytes=1024)
    comments = (b": keep-alive" + line_end) * 5000  # 70 KB of comments, no blank line
    out: list[SSEEvent] = []
    for i in range(0, len(comments), 4096):
        out += d.feed(comments[i : i + 4096])
        assert d._tail_len <= 1024 + 4096  # never more than the limit and one chunk
    out += d.feed(b"data: after" + line_end + line_end)
    assert [(e.oversize, e.data) for e in out] == [(False, "after")]
    assert out[0].offset == 0  # the event's block began with the first comment


def test_decoder_when_one_comment_line_is_megabytes_then_dropped_as_it_streams() -> None:
    d = SSEDecoder(max_event_bytes=1024)
    out = d.feed(b"data: a\n:")
    for _ in range(300):
        out += d.feed(b"x" * 10_000)
        assert d._tail_len <= 1024 + 10_000
    out += d.feed(b"\r")
    out += d.feed(b"\ndata: b\n\n")
    assert [(e.oversize, e.data) for e in out] == [(False, "a\nb")]


@pytest.mark.parametrize("cuts", [[], [3], [2, 3], [4]])
def test_decoder_when_crlf_of_a_comment_is_torn_then_it_does_not_count(cuts: list[int]) -> None:
    stream = b":c\r\ndata: xx\n\n"  # the data line is 9 bytes: exactly the limit
    events, _ = decode_in_chunks(stream, cuts, max_event_bytes=9)
    assert [(e.oversize, e.data, e.offset) for e in events] == [(False, "xx", 0)]
