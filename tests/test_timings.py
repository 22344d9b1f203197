"""Arrival times in bounded memory (harness._core.timings), and the session's fast loop over a
chunk's events, which must keep exactly what the event-by-event path keeps."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from harness._contracts.registry import get_checker
from harness._core.session import TRANSCRIPT_HEAD, StreamSession
from harness._core.sse import SSEEvent
from harness._core.thresholds import metrics_from_check, percentile
from harness._core.timings import EXACT_TIMES, MAX_SAMPLES, ArrivalTimes, GapHistogram


def test_histogram_when_gaps_vary_then_percentiles_within_a_bucket_of_the_exact_ones() -> None:
    rng = random.Random(7)
    gaps = [rng.lognormvariate(0, 2) for _ in range(20_000)] + [0.0] * 3000
    h = GapHistogram()
    for g in gaps:
        h.add(g)
    for q in (1, 10, 50, 90, 99, 99.9, 100):
        exact = percentile(gaps, q)
        assert exact is not None
        got = h.percentile(q)
        assert got is not None and math.isclose(got, exact, rel_tol=1 / 128, abs_tol=1e-12), q
    assert h.count == len(gaps) and h.max == max(gaps) and h.min == 0.0
    assert math.isclose(h.summary()["mean"] or 0.0, sum(gaps) / len(gaps))


def test_arrivals_when_short_then_exact_and_when_long_then_bounded() -> None:
    a = ArrivalTimes()
    a.add(1.0, 3)
    a.add(2.5)
    exact = a.exact
    assert exact is not None and list(exact) == [1.0, 1.0, 1.0, 2.5] and a.gap_summary() is None
    assert a.span() == [1.0, 1.0, 1.0, 2.5]
    long = ArrivalTimes()
    t = 0.0
    for _ in range(3 * EXACT_TIMES // 1000):
        t += 1.0
        long.add(t, 1000)  # chunks of 1000 events 1 ms apart
    assert long.exact is None and long.count == 3 * EXACT_TIMES
    span = long.span()
    assert (len(span), span[0], span[-1]) == (long.count, 1.0, t)
    assert long.gaps is not None and long.gaps.count == long.count - 1
    stats = long.gap_summary()
    assert stats is not None and stats["p50"] == 0.0 and stats["max"] == 1.0
    assert MAX_SAMPLES <= len(long.samples) <= 2 * MAX_SAMPLES
    indexes, times = long.timeline()
    assert indexes == sorted(indexes) and indexes[-1] == long.count - 1
    assert all(times[j] == math.floor(i / 1000) + 1 for j, i in enumerate(indexes))


def _mix(n: int, broken: set[int]) -> list[bytes]:
    """A prefab stream whose progress counter goes down at the ``broken`` events."""
    parts = [b'data: {"type": "start", "data": {}}\n\n']
    for i in range(1, n + 1):
        if i % 3:
            current = 0 if i in broken else i
            parts.append(b'data: {"type": "progress", "data": {"current": %d}}\n\n' % current)
        else:
            parts.append(b'id: %d\ndata: {"type": "content", "data": "t%d"}\n\n' % (i, i % 5))
    parts.append(b'data: {"type": "done", "data": {}}\n\n')
    body = b"".join(parts)
    rng = random.Random(n)
    cuts = sorted(rng.sample(range(1, len(body)), 400))
    return [body[a:b] for a, b in itertools.pairwise([0, *cuts, len(body)])]


def _facts(s: StreamSession) -> object:
    r = s.finish(99.0)
    return (
        r.events,
        [(v.rule, v.message, v.event_index) for v in r.violations],
        [(e.index, e.kind, e.id, e.preview, e.time_ms, len(e.violations)) for e in r.transcript],
        r.first_content,
        list(r.event_times_ms),
    )


@pytest.mark.parametrize("max_events", [10**9, TRANSCRIPT_HEAD + 2500])
def test_session_when_fed_chunks_then_keeps_what_event_by_event_keeps(max_events: int) -> None:
    broken = {5, TRANSCRIPT_HEAD + 10, TRANSCRIPT_HEAD + 11, 2500, 2501, 2502, 4000, 5999}
    chunks = _mix(6000, broken)
    fast = StreamSession("t", get_checker("prefab"), start=0.0, max_events=max_events)
    slow = StreamSession("t", get_checker("prefab"), start=0.0, max_events=max_events)
    for i, chunk in enumerate(chunks):
        at = i * 0.001
        fast.feed_bytes(chunk, at)
        slow.record(chunk)
        for event in slow.decoder.feed(chunk, at):
            slow.feed_event(event, at)
    assert _facts(fast) == _facts(slow)


def test_session_when_long_then_gap_thresholds_come_from_the_histogram() -> None:
    s = StreamSession("t", get_checker("prefab"), start=0.0, max_events=10**9)
    s.feed_event(SSEEvent('{"type": "start", "data": {}}'), 0.0)
    for i in range(EXACT_TIMES + 10):
        s.feed_event(SSEEvent('{"type": "content", "data": "x"}'), i * 0.002)
    r = s.finish(1e6)
    assert list(r.event_times_ms) == [] and r.arrivals is not None and r.arrivals.exact is None
    gaps = metrics_from_check(r)["inter_event_ms"]
    assert isinstance(gaps, dict)
    assert math.isclose(gaps["p50"] or 0.0, 2.0, rel_tol=1 / 128) and gaps["min"] == 0.0


def test_arrivals_when_one_run_is_huge_then_the_sample_stays_bounded() -> None:
    a = ArrivalTimes()
    a.add(5.0, 3 * EXACT_TIMES)
    assert a.count == 3 * EXACT_TIMES and len(a.samples) <= 2 * MAX_SAMPLES
    assert a.gaps is not None and a.gaps.count == a.count - 1 and a.gaps.max == 0.0


def test_report_when_stream_outgrew_exact_times_then_timeline_drawn_from_the_sample() -> None:
    from harness._report.model import check_report

    s = StreamSession("t", get_checker("prefab"), start=0.0, max_events=10**9)
    s.feed_event(SSEEvent('{"type": "start", "data": {}}'), 0.0)
    for i in range(EXACT_TIMES + 5000):
        at = i * 0.001
        s.feed_event(SSEEvent('{"type": "content", "data": "x"}'), at)
        if i == EXACT_TIMES + 100:  # one broken event, late in the stream
            s.feed_event(SSEEvent('{"type": "content"}'), at)
    r = s.finish(1e3)
    assert r.arrivals is not None and r.arrivals.exact is None and not r.ok
    (plot,) = check_report(r, "stream-harness check t", ()).plots
    assert 'stroke="#dc2626"' in plot.svg  # the broken event's tick, in red
    assert plot.svg.count("<line") <= 2 * MAX_SAMPLES + 100  # a sample's ticks, not 105 000
