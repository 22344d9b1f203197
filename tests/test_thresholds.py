"""Threshold gates: the syntax, its one-line errors, and evaluation against metrics."""

from __future__ import annotations

import pytest

from harness._core.errors import UsageError
from harness._core.thresholds import evaluate, parse_threshold, percentile


@pytest.mark.parametrize(
    ("text", "metric", "key", "op", "limit"),
    [
        ("ttfb_ms.p95<800", "ttfb_ms", "p95", "<", 800.0),
        (" inter_event_ms.max < 2000 ", "inter_event_ms", "max", "<", 2000.0),
        ("inter_event_ms.p99.9<=5", "inter_event_ms", "p99.9", "<=", 5.0),
        ("failure_rate<0.01", "failure_rate", None, "<", 0.01),
        ("failure_rate<1%", "failure_rate", None, "<", 0.01),
        ("events_per_s>20", "events_per_s", None, ">", 20.0),
        ("ttfb_ms<0.5s", "ttfb_ms", None, "<", 500.0),
        ("duration_ms.median<100ms", "stream_ms", "p50", "<", 100.0),
        ("stream_ms.avg>=1e3", "stream_ms", "mean", ">=", 1000.0),
    ],
)
def test_parse_when_valid_then_fields(
    text: str, metric: str, key: str | None, op: str, limit: float
) -> None:
    t = parse_threshold(text)
    assert (t.metric, t.key, t.op, t.limit) == (metric, key, op, limit)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty --threshold"),
        ("ttfb_ms", "no comparison"),
        ("tffb_ms<5", "did you mean 'ttfb_ms'"),
        ("ttfb_ms.p<5", "unknown statistic 'p'"),
        ("ttfb_ms.p0<5", "between 0 and 100"),
        ("ttfb_ms<fast", "'fast' is not a number"),
        ("ttfb_ms==5", "use <, <=, > or >="),
        ("failure_rate.p95<1", "failure_rate is one number"),
        ("events_per_s>5ms", "unit 'ms' does not apply"),
        ("ttfb_ms<nan", "is not a number"),
    ],
)
def test_parse_when_invalid_then_one_line_usage_error(text: str, says: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_threshold(text)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_evaluate_when_distribution_then_stat_or_worst_value() -> None:
    metrics = {
        "ttfb_ms": {"p95": 700.0, "max": 900.0, "min": 10.0},
        "events_per_s": {"min": 15.0, "max": 40.0},
        "failure_rate": 0.02,
        "reconnect_ms": {"p95": None},
    }
    got = evaluate(
        [
            parse_threshold(t)
            for t in (
                "ttfb_ms.p95<800",
                "ttfb_ms<800",
                "events_per_s>10",
                "failure_rate<0.01",
                "reconnect_ms.p95<100",
                "queue_ms.p99<5",
            )
        ],
        metrics,
    )
    assert [(r.expr, r.ok, r.value) for r in got] == [
        ("ttfb_ms.p95<800", True, 700.0),
        ("ttfb_ms<800", False, 900.0),  # bare: every stream (the max)
        ("events_per_s>10", True, 15.0),  # bare '>': the min
        ("failure_rate<0.01", False, 0.02),
        ("reconnect_ms.p95<100", False, None),  # not measured: fails, loudly
        ("queue_ms.p99<5", False, None),
    ]
    assert got[0].to_json() == {"expr": "ttfb_ms.p95<800", "ok": True, "value": 700.0}


def test_evaluate_when_single_check_number_then_every_stat_is_it() -> None:
    (r,) = evaluate([parse_threshold("ttfb_ms.p99<500")], {"ttfb_ms": 120.0})
    assert r.ok and r.value == 120.0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0 and percentile([], 50) is None
