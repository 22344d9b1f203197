"""The sans-I/O pieces under the Locust user: HTTP/1.1 un-framing, `: sent=` stamps, metrics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness._core.rules import Severity, Violation
from harness._core.thresholds import parse_threshold
from harness._load._metrics import LoadMetrics
from harness._load._stream import SentScanner
from harness._load._verdict import build_verdict, render_table
from harness._load._wire import Framing, ProtocolError, ResponseReader, build_request

BODY = b"id: 1\ndata: {}\n\n" * 5


def _chunked(body: bytes, size: int) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\nX: y\r\n\r\n"


def _feed_split(data: bytes, cuts: list[int]) -> tuple[ResponseReader, bytes]:
    r = ResponseReader()
    out, last = [], 0
    for cut in [*sorted(set(cuts)), len(data)]:
        out.append(r.feed(data[last:cut]))
        last = cut
    return r, b"".join(out)


@given(st.integers(1, 40), st.lists(st.integers(0, 400), max_size=12))
def test_reader_when_chunked_body_is_split_anywhere_then_body_is_exact(
    size: int, cuts: list[int]
) -> None:
    data = _chunked(BODY, size)
    r, body = _feed_split(data, [c for c in cuts if c <= len(data)])
    assert body == BODY
    assert r.done and r.framing is Framing.CHUNKED and r.status == 200


@given(st.lists(st.integers(0, 200), max_size=8))
def test_reader_when_content_length_then_stops_at_length(cuts: list[int]) -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY + b"EXTRA"
    r, body = _feed_split(data, [c for c in cuts if c <= len(data)])
    assert body == BODY and r.done and r.framing is Framing.LENGTH


def test_reader_when_close_delimited_then_done_only_at_eof() -> None:
    r = ResponseReader()
    assert r.feed(b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n") == (
        b"data: 1\n"
    )
    assert r.framing is Framing.CLOSE and not r.done
    assert r.header("CONTENT-TYPE") == "text/event-stream"
    assert r.eof() and r.done


def test_reader_when_chunked_body_is_cut_short_then_eof_says_incomplete() -> None:
    r = ResponseReader()
    r.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
    assert not r.eof()


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_reader_when_not_http_then_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        ResponseReader().feed(data)


def test_build_request_when_body_then_content_length_and_host() -> None:
    req = build_request("POST", "/x?a=1", "h:8", [("Accept", "text/event-stream")], b"{}")
    assert req.startswith(b"POST /x?a=1 HTTP/1.1\r\nHost: h:8\r\n")
    assert b"Content-Length: 2\r\n\r\n{}" in req
    assert b"gzip" not in req


@given(st.lists(st.integers(0, 120), max_size=10))
def test_sent_scanner_when_stamps_split_anywhere_then_all_found(cuts: list[int]) -> None:
    data = b"".join(b": sent=%d.5\nid: %d\ndata: x\n\n" % (i, i) for i in range(5))
    s = SentScanner()
    found: list[float] = []
    last = 0
    for cut in [*sorted(c for c in set(cuts) if c <= len(data)), len(data)]:
        found += s.feed(data[last:cut])
        last = cut
    assert found == [i + 0.5 for i in range(5)]


def test_sent_scanner_when_no_stamps_then_nothing() -> None:
    assert SentScanner().feed(b"data: sent=1\n\n: ping\n\n") == []


def test_metrics_when_merged_from_workers_then_sum_and_percentiles_match_one_process() -> None:
    one, a, b = LoadMetrics(), LoadMetrics(), LoadMetrics()
    for i in range(1, 1001):
        one.record("inter_event_ms", i / 10)
        (a if i % 2 else b).record("inter_event_ms", i / 10)
        one.count("streams")
        (a if i % 3 else b).count("streams")
    v = Violation("seq.terminal", Severity.ERROR, "no done")
    a.rule(v)
    b.rule(v, 2)
    master = LoadMetrics()
    master.merge(a.take())
    master.merge(b.take())
    assert a.counters["streams"] == 0  # take() starts afresh
    d1, dm = one.dists["inter_event_ms"], master.dists["inter_event_ms"]
    assert dm.count == d1.count == 1000 and dm.max == 100.0 and dm.min == 0.1
    assert dm.percentile(99) == d1.percentile(99)
    assert abs((dm.percentile(50) or 0) - 50.0) < 0.1  # 3 significant digits, sub-ms kept
    assert master.counters["streams"] == 1000
    assert master.rules["seq.terminal"].count == 3 and master.rules["seq.terminal"].streams == 2


def test_verdict_when_threshold_missed_then_not_ok_and_table_says_fail() -> None:
    m = LoadMetrics()
    for i in range(100):
        m.record("ttfb_ms", float(i))
        m.count("streams")
    verdict = build_verdict(
        m,
        [parse_threshold("ttfb_ms.p95<50"), parse_threshold("failure_rate<0.01")],
        {"duration_s": 2.0},
    )
    assert not verdict["ok"] and verdict["requests"] == 100
    first = verdict["thresholds"][0]
    assert first["expr"] == "ttfb_ms.p95<50" and not first["ok"]
    assert first["value"] == pytest.approx(94.0, rel=1e-3)  # nearest rank, 3 HDR digits
    assert verdict["thresholds"][1]["ok"]
    assert set(verdict["metrics"]["ttfb_ms"]) >= {"p50", "p90", "p95", "p99", "max"}
    assert render_table(verdict).rstrip().endswith("FAIL")


def test_verdict_when_no_thresholds_then_ok_means_no_failed_stream() -> None:
    m = LoadMetrics()
    m.count("streams", 3)
    assert build_verdict(m, [], {})["ok"]
    m.count("failures")
    assert not build_verdict(m, [], {})["ok"]


def test_verdict_when_generator_saturated_then_warns() -> None:
    m = LoadMetrics()
    m.cpu_max = 99.0
    m.count("arrivals_planned", 100)
    m.count("arrivals_started", 50)
    m.count("arrivals_dropped", 50)
    warnings = build_verdict(m, [], {"arrival_rate": 100, "duration_s": 1.0})["warnings"]
    assert any("CPU" in w for w in warnings)
    assert any("50.0 new streams/s of the 100/s" in w for w in warnings)


def test_verdict_when_the_loop_woke_late_then_it_says_busy_machine_and_by_how_much() -> None:
    m = LoadMetrics()
    m.count("streams", 2)
    m.count("lag_samples", 100)
    m.count("lag_late", 40)
    m.loop_lag_max_ms = 49.4
    (warning,) = build_verdict(m, [], {})["warnings"]
    assert "40% of its probes" in warning and "at most 49 ms late" in warning
    assert "busy" in warning and "not of how many streams" in warning
    assert "up to 49 ms long" in warning  # which timings, and by how much
    assert "too many streams" not in warning


def test_metrics_take_resets_in_place_so_an_open_streams_recorder_keeps_counting() -> None:
    m = LoadMetrics()
    gaps = m.dists["inter_event_ms"]  # what a stream's sink holds while the stream is open
    gaps.record(3.0)
    assert m.take()["dists"]["inter_event_ms"]["count"] == 1
    gaps.record(4.0)  # after the worker's report, before the stream ends
    assert m.take()["dists"]["inter_event_ms"]["count"] == 1
