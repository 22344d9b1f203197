"""The HTTP runner against a real uvicorn server with fake endpoints, and against replayed bytes."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fake_servers import FakeGatewayApp, prefab_stream
from http_fixtures import FakeRecordingChecker, closed_port, serving
from hypothesis import given, settings
from hypothesis import strategies as st

from harness._contracts.prefab import PrefabChecker
from harness._contracts.registry import get_checker
from harness._core.errors import TargetUnreachable, UsageError
from harness._core.http_rules import timing_buffered
from harness._core.options import CheckOptions
from harness._core.resume import ResumeTracker
from harness._core.rules import CATALOG, Severity
from harness._core.session import CheckResult, ContractChecker
from harness._core.sse import SSEDecoder
from harness._runners.http import run_url

pytestmark = pytest.mark.timeout(30)

SSE_OK = {"content-type": "text/event-stream", "cache-control": "no-cache"}


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serving(FakeGatewayApp()) as url:
        yield url


def check(url: str, checker: ContractChecker | None = None, **options: Any) -> CheckResult:
    return run_url(
        url, CheckOptions(**options), checker if checker is not None else PrefabChecker()
    )


def found(result: CheckResult) -> dict[str, str]:
    """Rule id -> severity of every violation (asserting each rule fired at most once)."""
    ids = [v.rule for v in result.violations]
    assert len(ids) == len(set(ids)), ids
    return {v.rule: v.severity.value for v in result.violations}


def timed(url: str, **options: Any) -> tuple[CheckResult, float]:
    t0 = time.monotonic()
    result = check(url, **options)
    return result, time.monotonic() - t0


def overhead(base: str) -> float:
    """Seconds a check of a stream that arrives at once takes here, now: the reference a
    deadline's cost is compared with (measured in the same test: the machine may be busy)."""
    return timed(f"{base}/sse/fast")[1]


# -- the catalog --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_id", "severity"),
    [
        ("http.status", Severity.ERROR),
        ("http.content-type", Severity.ERROR),
        ("http.cache-control", Severity.WARNING),
        ("timeout.first-byte", Severity.ERROR),
        ("timeout.idle", Severity.ERROR),
        ("timeout.total", Severity.ERROR),
        ("timing.buffered", Severity.WARNING),
        ("resume.no-id", Severity.ERROR),
        ("resume.ignored", Severity.ERROR),
        ("resume.gap", Severity.ERROR),
        ("resume.duplicate", Severity.ERROR),
    ],
)
def test_rule_when_module_imported_then_catalogued_with_severity(
    rule_id: str, severity: Severity
) -> None:
    assert CATALOG[rule_id].severity is severity
    assert CATALOG[rule_id].explanation


# -- good streams -------------------------------------------------------------------------------


def test_good_stream_when_checked_then_no_violations_and_sane_timing(base: str) -> None:
    result = check(f"{base}/sse/good")
    assert found(result) == {}
    assert result.ok and result.events == 5
    t = result.timing
    assert t.ttfb_ms is not None and t.first_event_ms is not None and t.duration_ms is not None
    assert 0 < t.ttfb_ms <= t.first_event_ms <= t.duration_ms
    assert len(result.event_times_ms) == 5
    assert result.event_times_ms == sorted(result.event_times_ms)
    assert result.event_times_ms[-1] <= t.duration_ms


def test_gateway_when_inputs_given_then_posts_inputs_json(base: str) -> None:
    checker = FakeRecordingChecker()
    result = check(f"{base}/invoke/batch_process", checker, inputs={"items": [1, 2]})
    assert found(result) == {}
    start = checker.json_events()[0]
    assert start == {
        "type": "start",
        "data": {"function": "batch_process", "inputs": {"items": [1, 2]}},
    }


def echoed(checker: FakeRecordingChecker) -> tuple[dict[str, Any], dict[str, str]]:
    events = checker.json_events()
    start = events[0]["data"]
    assert isinstance(start, dict)
    headers = {}
    for e in events[1:-1]:
        data = e["data"]
        assert isinstance(data, dict)
        headers[data["name"]] = data["value"]
    return start, headers


def test_request_when_sent_then_asks_for_an_uncompressed_uncached_event_stream(base: str) -> None:
    checker = FakeRecordingChecker()
    check(f"{base}/sse/echo-headers", checker)
    start, headers = echoed(checker)
    assert start["method"] == "GET"
    assert headers["accept"] == "text/event-stream"
    assert headers["accept-encoding"] == "identity"
    assert headers["cache-control"] == "no-cache"
    assert "last-event-id" not in headers


def test_request_when_body_and_method_given_then_sent_as_is(base: str) -> None:
    checker = FakeRecordingChecker()
    raw = '{"inputs": {"q": "x"}, "stream": true}'
    options = {"body": raw, "method": "put", "headers": (("X-Trace", "abc"),)}
    check(f"{base}/sse/echo-headers", checker, **options)
    start, headers = echoed(checker)
    assert start["method"] == "PUT" and start["body"] == raw
    assert headers["content-type"] == "application/json"


def test_inputs_and_body_when_both_given_then_usage_error(base: str) -> None:
    with pytest.raises(UsageError):
        check(f"{base}/sse/good", inputs={}, body="{}")


def test_fast_server_when_everything_sent_at_once_then_not_buffered(base: str) -> None:
    assert found(check(f"{base}/sse/fast")) == {}


def test_paced_server_when_events_100ms_apart_then_not_buffered(base: str) -> None:
    result = check(f"{base}/sse/paced?gap=0.1")
    assert found(result) == {}
    assert result.event_times_ms[-1] - result.event_times_ms[0] >= 350


# -- broken streams -------------------------------------------------------------------------------


def test_missing_done_when_stream_ends_then_contract_reports_it(base: str) -> None:
    assert found(check(f"{base}/sse/missing-done")) == {"seq.terminal": "error"}


def test_server_error_when_500_json_then_http_status_with_its_message(base: str) -> None:
    result = check(f"{base}/sse/error-500")
    assert found(result) == {"http.status": "error"}
    (v,) = result.violations
    assert "500" in v.message and "the model backend is unavailable" in v.message
    assert result.events == 0


def test_redirect_when_302_then_http_status_names_location_and_is_not_followed(base: str) -> None:
    result = check(f"{base}/sse/redirect")
    assert found(result) == {"http.status": "error"}
    assert "/sse/good" in result.violations[0].message
    assert result.events == 0


def test_wrong_content_type_when_body_is_sse_then_error_and_events_still_checked(base: str) -> None:
    result = check(f"{base}/sse/wrong-type")
    assert found(result) == {"http.content-type": "error"}
    assert "text/plain" in result.violations[0].message
    assert result.events == 5


def test_no_cache_control_when_missing_then_warning_only(base: str) -> None:
    result = check(f"{base}/sse/no-cache-control")
    assert found(result) == {"http.cache-control": "warning"}
    assert result.ok


def test_truncated_final_event_when_no_blank_line_then_sse_truncated(base: str) -> None:
    result = check(f"{base}/sse/truncated")
    assert found(result) == {"sse.truncated": "error"}
    assert result.events == 4


def test_buffered_burst_when_silence_then_all_at_end_then_warning(base: str) -> None:
    result = check(f"{base}/sse/buffered?delay=0.8")
    assert found(result) == {"timing.buffered": "warning"}
    assert result.ok


# -- deadlines ------------------------------------------------------------------------------------


def test_slow_first_byte_when_over_limit_then_timeout_costs_only_the_limit(base: str) -> None:
    ref = overhead(base)
    result, elapsed = timed(f"{base}/sse/slow-first-byte?delay=3", first_byte_timeout=0.3)
    assert found(result) == {"timeout.first-byte": "error"}
    assert 0.3 <= elapsed < 1.5 + 3 * ref, (elapsed, ref)  # the whole wait: 3 s
    assert result.events == 0


def test_stall_when_silent_mid_stream_then_timeout_idle_and_no_end_rules(base: str) -> None:
    ref = overhead(base)
    result, elapsed = timed(f"{base}/sse/stall?delay=3", idle_timeout=0.3)
    assert found(result) == {"timeout.idle": "error"}
    assert result.events == 2
    assert 0.3 <= elapsed < 1.5 + 3 * ref, (elapsed, ref)  # the whole wait: 3 s


def test_endless_drip_when_over_total_then_timeout_total(base: str) -> None:
    ref = overhead(base)
    result, elapsed = timed(f"{base}/sse/drip?gap=0.05&n=200", total_timeout=0.5)
    assert found(result) == {"timeout.total": "error"}
    assert 0 < result.events < 200
    assert 0.5 <= elapsed < 2.0 + 3 * ref, (elapsed, ref)  # the whole stream: 10 s


def test_closed_port_when_connecting_then_target_unreachable_one_line() -> None:
    url = f"http://127.0.0.1:{closed_port()}/sse/good"
    with pytest.raises(TargetUnreachable) as info:
        check(url, first_byte_timeout=2)
    assert info.value.exit_code == 3
    assert "\n" not in str(info.value) and "127.0.0.1" in str(info.value)
    assert info.value.__suppress_context__


def test_tls_when_server_speaks_plain_http_then_target_unreachable(base: str) -> None:
    with pytest.raises(TargetUnreachable, match="TLS"):
        check(base.replace("http://", "https://") + "/sse/good")


@pytest.mark.parametrize(
    "headers",
    [(("X-Api-Key", "key-abcdef-987\nX-Other: 1"),), (("X-Api-Key", "kéy-abcdef-987"),)],
)
def test_header_when_value_invalid_then_usage_error_without_the_value(
    base: str, headers: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(UsageError) as info:
        check(f"{base}/sse/good", headers=headers)
    assert "abcdef" not in str(info.value)


def test_url_when_not_http_then_usage_error() -> None:
    with pytest.raises(UsageError):
        check("ftp://127.0.0.1/x")


# -- secrets --------------------------------------------------------------------------------------

SECRET_HEADERS = (
    ("Authorization", "Bearer s3cr3t-token-value"),
    ("Cookie", "session=cookie-secret-123"),
    ("X-Api-Key", "key-abcdef-987"),
    ("X-Tenant", "tenant-private-42"),
)
SECRET_VALUES = ["s3cr3t-token-value", "cookie-secret-123", "key-abcdef-987", "tenant-private-42"]


def everything(result: CheckResult) -> str:
    return json.dumps(
        [
            result.to_json(),
            [(e.preview, e.id, [v.message for v in e.violations]) for e in result.transcript],
            result.extra,
        ]
    )


@pytest.mark.parametrize("path", ["/sse/echo-headers", "/sse/unauthorized"])
def test_header_values_when_echoed_by_server_then_never_in_result(base: str, path: str) -> None:
    checker = FakeRecordingChecker()
    result = check(f"{base}{path}", checker, headers=SECRET_HEADERS)
    if path == "/sse/echo-headers":
        assert echoed(checker)[1]["x-api-key"] == "key-abcdef-987"  # they were sent
    else:
        assert found(result) == {"http.status": "error"}
    text = everything(result)
    for secret in SECRET_VALUES:
        assert secret not in text


# -- resuming -------------------------------------------------------------------------------------


def test_resume_when_server_honours_last_event_id_then_clean_continuation(base: str) -> None:
    result = check(f"{base}/sse/good?gap=0.05", resume_after=2)
    assert found(result) == {}
    assert result.events == 5
    assert result.extra["reconnect_ms"] >= 0
    checker = FakeRecordingChecker()
    check(f"{base}/sse/good?gap=0.05", checker, resume_after=2)
    assert [e.id for e in checker.events] == ["1", "2", "3", "4", "5"]


def test_resume_when_retry_hint_then_waited_before_reconnecting(base: str) -> None:
    result = check(f"{base}/sse/retry?ms=300", resume_after=2)
    assert found(result) == {}
    assert 300 <= result.extra["reconnect_ms"] < 1500


def test_resume_when_retry_hint_too_long_then_capped_by_max_retry_wait(base: str) -> None:
    result = check(f"{base}/sse/retry?ms=60000", resume_after=2, max_retry_wait=0.2)
    assert found(result) == {}
    assert 200 <= result.extra["reconnect_ms"] < 1500


def test_resume_when_server_starts_over_then_only_resume_ignored(base: str) -> None:
    result = check(f"{base}/sse/resume-ignore", resume_after=2)
    assert found(result) == {"resume.ignored": "error"}  # and no seq.order for the 2nd start
    assert result.violations[0].event_index == 2
    assert result.transcript[2].violations == result.violations


def test_resume_when_server_skips_an_id_then_resume_gap(base: str) -> None:
    result = check(f"{base}/sse/resume-gap", resume_after=2)
    assert found(result) == {"resume.gap": "error"}
    assert result.violations[0].event_index == 2


def test_resume_when_server_repeats_last_event_then_resume_duplicate(base: str) -> None:
    result = check(f"{base}/sse/resume-duplicate", resume_after=2)
    assert found(result) == {"resume.duplicate": "error"}
    assert result.events == 6


def test_resume_when_events_have_no_ids_then_no_id_once_and_no_reconnect(base: str) -> None:
    result = check(f"{base}/sse/no-ids", resume_after=2)
    assert found(result) == {"resume.no-id": "error"}
    assert result.violations[0].event_index == 0
    assert result.events == 2
    assert "reconnect_ms" not in result.extra and "not attempted" in result.extra["resume"]


def test_resume_when_stream_shorter_than_k_then_checked_without_reconnect(base: str) -> None:
    result = check(f"{base}/sse/good", resume_after=10)
    assert found(result) == {}
    assert "not attempted" in result.extra["resume"]


def feed_ids(
    tracker: ResumeTracker, before: list[str], after: list[str], kind: str = "progress"
) -> list[str]:
    out = []
    for i, event_id in enumerate(before):
        out += [v.rule for v in tracker.feed(event_id, i, kind)]
    tracker.reconnect()
    for i, event_id in enumerate(after, len(before)):
        out += [v.rule for v in tracker.feed(event_id, i, kind)]
    return out


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (["1", "2"], ["3", "4"], []),
        (["1", "2"], ["4"], ["resume.gap"]),
        (["1", "2"], ["2", "3"], ["resume.duplicate"]),
        (["1", "2", "3"], ["1", "2", "3"], ["resume.ignored"]),
        (["1"], ["1"], ["resume.duplicate"]),  # one event before: an off-by-one, not a restart
        (["a", "b"], ["c"], []),  # opaque ids: no gap can be seen
        (["a", "b"], ["b"], ["resume.duplicate"]),
        (["a", "b"], ["a"], ["resume.ignored"]),
        (["1", "2"], ["3", "3", "4"], []),  # an event that set no id keeps the id in force
        (["", ""], [], ["resume.no-id"]),
        (["1", "2"], ["", "3"], ["resume.no-id"]),
        (["1", "2"], ["2", "1", "3"], ["resume.duplicate"]),
    ],
)
def test_resume_tracker_when_ids_fed_then_expected_rules(
    before: list[str], after: list[str], expected: list[str]
) -> None:
    assert feed_ids(ResumeTracker(), before, after) == expected


def test_resume_tracker_when_start_after_reconnect_then_ignored_and_silent() -> None:
    tracker = ResumeTracker(get_checker("prefab").roles.is_restart)
    assert feed_ids(tracker, ["1", "2"], ["3"], kind="start") == ["resume.ignored"]
    assert tracker.ignored
    assert tracker.feed("3", 9, "progress") == []


# -- the buffering heuristic ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttfb", "times", "end", "flagged"),
    [
        (5.0, [1005.0, 1006.0, 1007.0], 1008.0, True),  # silence, then one burst at the end
        (5.0, [6.0, 6.5, 7.0], 8.0, False),  # fast: no silence
        (5.0, [105.0, 205.0, 305.0, 405.0], 406.0, False),  # paced 100 ms
        (5.0, [2005.0, 2105.0, 2205.0], 2206.0, False),  # late, but paced
        (5.0, [1005.0, 1006.0], 1008.0, False),  # too few events
        (5.0, [1005.0, 1006.0, 1007.0], 3000.0, False),  # a burst, but not at the end
        (900.0, [901.0, 902.0, 903.0], 904.0, True),  # headers held back too (stock nginx)
        (300.0, [301.0, 302.0, 303.0], 304.0, False),  # the same, fast: nobody waited
    ],
)
def test_buffered_heuristic_when_arrival_times_then_flagged_only_for_a_final_burst(
    ttfb: float, times: list[float], end: float, flagged: bool
) -> None:
    assert (timing_buffered(ttfb, times, end) is not None) is flagged


# -- injected transports -------------------------------------------------------------------------


class ReplayStream(httpx.AsyncByteStream):
    """A fake response body that replays the given chunks, one read each."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def replaying(
    chunks: list[bytes], status: int = 200, headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers or SSE_OK, stream=ReplayStream(chunks))

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


STREAM = b"".join(e for _, e in prefab_stream(4)).replace(b"\n\nid: 3", b"\r\n\r\n: note\r\nid: 3")


@settings(max_examples=60)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_replayed_chunks_when_split_anywhere_then_same_events(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    checker = FakeRecordingChecker()
    result = run_url("http://fake/sse", CheckOptions(), checker, client=replaying(chunks))
    expected = SSEDecoder().feed(STREAM)
    assert [(e.data, e.event, e.id) for e in checker.events] == [
        (e.data, e.event, e.id) for e in expected
    ]
    assert found(result) == {}


def test_injected_client_when_it_follows_redirects_then_still_not_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"location": "http://fake/new"})
        return httpx.Response(200, headers=SSE_OK, stream=ReplayStream([STREAM]))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=True)
    result = run_url("http://fake/old", CheckOptions(), PrefabChecker(), client=client)
    assert found(result) == {"http.status": "error"}
    assert "http://fake/new" in result.violations[0].message


def test_injected_client_when_body_not_sse_then_content_type_and_no_events() -> None:
    client = replaying([b'{"ok": true}'], headers={"content-type": "application/json"})
    result = run_url("http://fake/x", CheckOptions(), PrefabChecker(), client=client)
    # The body is not ignored: it had bytes but no event (not the contract's end rules, though).
    # No http.cache-control: caching is judged on event streams only (issue 13).
    assert found(result) == {"http.content-type": "error", "sse.no-events": "error"}


def test_injected_client_when_server_compresses_anyway_then_body_decoded() -> None:
    headers = {**SSE_OK, "content-encoding": "gzip"}
    checker = FakeRecordingChecker()
    client = replaying([gzip.compress(STREAM)], headers=headers)
    result = run_url("http://fake/x", CheckOptions(), checker, client=client)
    assert found(result) == {}
    assert len(checker.events) == 6


def test_transport_when_connect_times_out_then_target_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    with pytest.raises(TargetUnreachable, match="timed out"):
        run_url("http://fake/x", CheckOptions(), FakeRecordingChecker(), client=client)


def test_transport_when_still_connecting_at_deadline_then_target_unreachable() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await request.extensions["trace"]("connection.connect_tcp.started", {})
        await asyncio.sleep(5)
        raise AssertionError("not reached")

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    options = CheckOptions(first_byte_timeout=0.2)
    with pytest.raises(TargetUnreachable, match=r"no connection within 0\.2 s"):
        run_url("http://fake/x", options, FakeRecordingChecker(), client=client)


def test_transport_when_connected_but_no_headers_then_timeout_first_byte() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await request.extensions["trace"]("http11.send_request_headers.started", {})
        await asyncio.sleep(5)
        raise AssertionError("not reached")

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    options = CheckOptions(first_byte_timeout=0.2)
    result = run_url("http://fake/x", options, FakeRecordingChecker(), client=client)
    assert found(result) == {"timeout.first-byte": "error"}


def test_resume_when_server_unreachable_on_reconnect_then_violation_and_first_part_kept() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "last-event-id" in request.headers:
            raise httpx.ConnectError("Connection refused", request=request)
        return httpx.Response(200, headers=SSE_OK, stream=ReplayStream([STREAM]))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    options = CheckOptions(resume_after=2)
    result = run_url("http://fake/x", options, PrefabChecker(), client=client)
    assert found(result) == {"resume.unreachable": "error"}
    assert result.events == 2
    assert "cannot reconnect to resume" in result.violations[0].message
