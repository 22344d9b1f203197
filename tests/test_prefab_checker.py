"""PrefabChecker: every rule it owns fires where it should, once, and clean streams stay clean."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness._contracts.prefab import _NO_VIOLATIONS, EVENT_TYPES, PrefabChecker
from harness._core.rules import CATALOG, Severity, Violation
from harness._core.session import ContractChecker, StreamSession
from harness._core.sse import SSEEvent

ERROR, WARNING = Severity.ERROR, Severity.WARNING
START: dict[str, Any] = {"type": "start"}
DONE: dict[str, Any] = {"type": "done"}

Item = dict[str, Any] | str | SSEEvent


def _event(item: Item) -> SSEEvent:
    if isinstance(item, SSEEvent):
        return item
    return SSEEvent(item if isinstance(item, str) else json.dumps(item, ensure_ascii=False))


def check(*items: Item, complete: bool = True) -> list[Violation]:
    """Feed a whole stream (dicts are sent as JSON, strings as they are) and finish it."""
    checker = PrefabChecker()
    found: list[Violation] = []
    for item in items:
        event = _event(item)
        found.extend(checker.feed(event))
        checker.event_type(event)
    found.extend(checker.finish(complete=complete))
    return found


def summary(found: list[Violation]) -> list[tuple[str, Severity, int | None]]:
    return [(v.rule, v.severity, v.event_index) for v in found]


def progress(**data: Any) -> dict[str, Any]:
    return {"type": "progress", "data": data}


# -- the guide's own streams are clean ------------------------------------------------------


def test_checker_when_batch_process_example_then_clean() -> None:
    items = ["a", "b", "c"]
    stream: list[Item] = [{"type": "start", "data": {"total": 3, "message": "开始处理 3 个项目"}}]
    for i, item in enumerate(items, 1):
        stream.append(
            progress(current=i, total=3, percentage=int(i / 3 * 100), item=item, result=i)
        )
    stream.append({"type": "done", "data": {"total": 3, "message": "所有项目处理完成"}})
    assert check(*stream) == []


def test_checker_when_llm_content_example_then_clean() -> None:
    tokens = ["Hel", "lo", ", ", "世界", ""]
    stream: list[Item] = [{"type": "start", "data": {"model": "gpt-4o-mini"}}]
    stream += [{"type": "content", "data": t} for t in tokens]
    stream.append({"type": "done", "data": {"finish_reason": "stop"}})
    assert check(*stream) == []


def test_checker_when_file_processing_example_then_clean() -> None:
    stream: list[Item] = [{"type": "start", "data": {"total_lines": 300}}]
    for processed in (100, 200, 300):
        pct = int(processed / 300 * 100)
        stream.append(progress(processed=processed, total=300, percentage=pct))
    stream.append({"type": "done", "data": {"processed": 300}})
    assert check(*stream) == []


def test_checker_when_progress_carries_only_percentage_then_clean() -> None:
    stream = [START, *(progress(percentage=p) for p in (0, 33, 66, 100)), DONE]
    assert check(*stream) == []


def test_checker_when_error_event_has_error_code_then_clean() -> None:
    stream = [
        START,
        progress(current=1, total=2),
        {"type": "error", "data": "division by zero", "error_code": "PROCESSING_ERROR"},
    ]
    assert check(*stream) == []


def test_checker_when_progress_data_is_any_json_then_clean() -> None:
    # my_stream_function / batch_yield / stream_with_resources yield arbitrary results.
    stream: list[Item] = [
        {"type": "start", "data": {"param": "test"}},
        {"type": "progress", "data": 42},
        {"type": "progress", "data": None},
        {"type": "progress", "data": "step two"},
        {"type": "progress", "data": [1, 2, 3]},
        progress(batch=[1, 2, 3], index=0),
        {"type": "content", "data": "x"},
        {"type": "done", "data": {"status": "completed"}},
    ]
    assert check(*stream) == []


def test_checker_when_start_and_done_have_no_data_then_clean() -> None:
    assert check(START, DONE) == []
    assert check({"type": "start", "data": {}}, {"type": "done", "data": {}}) == []


def test_checker_when_sse_event_name_set_then_ignored() -> None:
    stream = [
        SSEEvent('{"type": "start"}', event="done"),
        SSEEvent('{"type": "done"}', event="start"),
    ]
    assert check(*stream) == []


# -- one test per rule ----------------------------------------------------------------------


def test_feed_when_data_is_not_json_then_sse_data_not_json() -> None:
    found = check(START, "hello", DONE)
    assert summary(found) == [("sse.data-not-json", ERROR, 1)]
    assert "'hello' is not JSON" in found[0].message


def test_feed_when_data_is_python_repr_then_sse_data_not_json() -> None:
    found = check(START, "{'type': 'content', 'data': 'x'}", DONE)
    assert summary(found) == [("sse.data-not-json", ERROR, 1)]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_feed_when_json_has_non_finite_constant_then_sse_data_not_json(constant: str) -> None:
    found = check(START, f'{{"type": "progress", "data": {{"x": {constant}}}}}', DONE)
    assert summary(found) == [("sse.data-not-json", ERROR, 1)]
    assert f"{constant.lstrip('-')} is not a JSON number" in found[0].message


def test_feed_when_data_is_empty_then_sse_data_not_json() -> None:
    assert summary(check(START, "", DONE)) == [("sse.data-not-json", ERROR, 1)]


def test_feed_when_event_is_oversize_then_sse_event_too_large() -> None:
    found = check(START, SSEEvent("", offset=1234, oversize=True), DONE)
    assert summary(found) == [("sse.event-too-large", ERROR, 1)]
    assert "byte 1234" in found[0].message


def test_feed_when_invalid_utf8_then_warning_and_content_still_checked() -> None:
    bad = SSEEvent('{"type": "content", "data": "\ufffd"}', invalid_utf8=True)
    worse = SSEEvent('{"type": "content", "data": 5}', invalid_utf8=True)
    assert summary(check(START, bad, worse, DONE)) == [
        ("sse.invalid-utf8", WARNING, 1),
        ("sse.invalid-utf8", WARNING, 2),
        ("event.schema", ERROR, 2),
    ]


def test_feed_when_type_is_unknown_then_event_unknown_type() -> None:
    found = check(START, {"type": "finish", "data": {}}, DONE)
    assert summary(found) == [("event.unknown-type", ERROR, 1)]
    assert '"finish"' in found[0].message


def test_feed_when_content_data_is_not_a_string_then_event_schema() -> None:
    found = check(START, {"type": "content", "data": 5}, DONE)
    assert summary(found) == [("event.schema", ERROR, 1)]
    assert (
        found[0].message == 'the "content" event does not match its schema: data is 5, not a string'
    )


def test_feed_when_required_data_missing_then_event_schema() -> None:
    found = check(START, {"type": "content"}, {"type": "error", "error_code": "E"})
    assert summary(found) == [("event.schema", ERROR, 1), ("event.schema", ERROR, 2)]
    assert '"data" is missing' in found[0].message


def test_feed_when_extra_top_level_key_then_event_schema() -> None:
    found = check(START, {"type": "content", "data": "x", "message": "hi"}, DONE)
    assert summary(found) == [("event.schema", ERROR, 1)]
    assert 'unexpected key "message"' in found[0].message


def test_feed_when_error_code_on_non_error_event_then_event_schema() -> None:
    found = check(START, {"type": "done", "error_code": "X"})
    assert summary(found) == [("event.schema", ERROR, 1)]


@pytest.mark.parametrize(
    "value",
    [[1], "text", 5, None, True],
    ids=["array", "string", "number", "null", "bool"],
)
def test_feed_when_json_is_not_an_object_then_event_schema(value: object) -> None:
    found = check(START, json.dumps(value), DONE)
    assert summary(found) == [("event.schema", ERROR, 1)]
    assert "not a JSON object" in found[0].message


def test_feed_when_type_missing_or_not_a_string_then_event_schema() -> None:
    found = check(START, {"data": "x"}, {"type": 5}, {"type": None}, DONE)
    assert summary(found) == [("event.schema", ERROR, i) for i in (1, 2, 3)]
    assert 'no "type"' in found[0].message


def test_feed_when_progress_counter_is_bool_or_string_then_event_schema() -> None:
    found = check(START, progress(current=True), progress(total="5"), DONE)
    assert summary(found) == [("event.schema", ERROR, 1), ("event.schema", ERROR, 2)]
    assert "data.current is true, not a number" in found[0].message


def test_feed_when_start_or_done_data_not_object_then_event_schema() -> None:
    found = check({"type": "start", "data": "x"}, {"type": "done", "data": None})
    assert summary(found) == [("event.schema", ERROR, 0), ("event.schema", ERROR, 1)]


def test_feed_when_first_event_is_not_start_then_seq_first() -> None:
    found = check({"type": "content", "data": "x"}, DONE)
    assert summary(found) == [("seq.first", ERROR, 0)]
    assert found[0].message == 'the stream begins with a "content" event instead of "start"'


def test_feed_when_first_event_is_not_start_then_seq_first_only_once() -> None:
    stream = [progress(current=1), {"type": "content", "data": "x"}, progress(current=2), DONE]
    assert summary(check(*stream)) == [("seq.first", ERROR, 0)]


def test_feed_when_second_start_then_seq_order() -> None:
    found = check(START, {"type": "content", "data": "x"}, START, DONE)
    assert summary(found) == [("seq.order", ERROR, 2)]
    assert "first was event 0" in found[0].message


def test_feed_when_start_comes_late_then_seq_first_and_seq_order() -> None:
    found = check({"type": "content", "data": "x"}, START, DONE)
    assert summary(found) == [("seq.first", ERROR, 0), ("seq.order", ERROR, 1)]


def test_feed_when_event_after_done_then_seq_after_terminal() -> None:
    found = check(START, DONE, {"type": "content", "data": "x"})
    assert summary(found) == [("seq.after-terminal", ERROR, 2)]
    assert '"done" event (event 1)' in found[0].message


def test_feed_when_events_after_error_then_each_is_seq_after_terminal_only() -> None:
    # The client stopped reading at the error: nothing in the later events is checked.
    error = {"type": "error", "data": "boom", "error_code": "E"}
    found = check(START, error, "not json", DONE, SSEEvent("", oversize=True))
    assert summary(found) == [("seq.after-terminal", ERROR, i) for i in (2, 3, 4)]


def test_finish_when_no_terminal_event_then_seq_terminal() -> None:
    found = check(START, {"type": "content", "data": "x"})
    assert summary(found) == [("seq.terminal", ERROR, None)]
    assert "after 2 events" in found[0].message


def test_finish_when_stream_is_empty_then_seq_terminal() -> None:
    assert summary(check()) == [("seq.terminal", ERROR, None)]


def test_finish_when_incomplete_then_no_seq_terminal() -> None:
    assert check(START, {"type": "content", "data": "x"}, complete=False) == []


def test_finish_when_error_ends_the_stream_then_no_seq_terminal() -> None:
    assert check(START, {"type": "error", "data": "x", "error_code": "E"}) == []


def test_feed_when_current_greater_than_total_then_progress_current_le_total() -> None:
    found = check(START, progress(current=7, total=5), DONE)
    assert summary(found) == [("progress.current-le-total", ERROR, 1)]
    assert found[0].message == "progress current 7 is greater than total 5"


def test_feed_when_current_equals_total_then_clean() -> None:
    assert check(START, progress(current=5, total=5), DONE) == []


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"current": -1}, "progress current -1 is below the minimum 0"),
        ({"total": -3}, "progress total -3 is below the minimum 0"),
        ({"percentage": -0.5}, "progress percentage -0.5 is below the minimum 0"),
        ({"percentage": 130}, "progress percentage 130 is above the maximum 100"),
    ],
)
def test_feed_when_counter_out_of_range_then_progress_bounds(
    data: dict[str, Any], words: str
) -> None:
    found = check(START, progress(**data), DONE)
    assert summary(found) == [("progress.bounds", ERROR, 1)]
    assert found[0].message == words


def test_feed_when_current_goes_down_then_progress_monotonic_warning() -> None:
    stream = [START, progress(current=5), progress(message="no counter"), progress(current=4), DONE]
    found = check(*stream)
    assert summary(found) == [("progress.monotonic", WARNING, 3)]
    assert found[0].message == "progress current went down from 5 (event 1) to 4"


def test_feed_when_total_changes_then_progress_total_stable_warning() -> None:
    stream = [
        START,
        progress(current=1, total=10),
        progress(percentage=50),
        progress(total=12),
        DONE,
    ]
    found = check(*stream)
    assert summary(found) == [("progress.total-stable", WARNING, 3)]
    assert found[0].message == "progress total changed from 10 (event 1) to 12"


def test_feed_when_total_same_value_as_float_then_clean() -> None:
    assert check(START, progress(total=10), progress(total=10.0), DONE) == []


def test_feed_when_error_event_without_error_code_then_error_code_warning() -> None:
    found = check(START, {"type": "error", "data": "boom"})
    assert summary(found) == [("error.code", WARNING, 1)]


# -- one problem, one violation -------------------------------------------------------------


def test_feed_when_total_negative_then_only_progress_bounds() -> None:
    # current 3 > total -5 too, but the one problem is the negative total.
    found = check(START, progress(current=3, total=-5), DONE)
    assert summary(found) == [("progress.bounds", ERROR, 1)]


def test_feed_when_percentage_130_then_only_progress_bounds_not_event_schema() -> None:
    assert summary(check(START, progress(percentage=130), DONE)) == [("progress.bounds", ERROR, 1)]


def test_feed_when_counter_out_of_range_then_not_used_for_later_relations() -> None:
    stream = [START, progress(total=-1), progress(total=4), DONE]
    assert summary(check(*stream)) == [("progress.bounds", ERROR, 1)]


def test_feed_when_two_counters_out_of_range_then_one_progress_bounds() -> None:
    found = check(START, progress(current=-1, percentage=101), DONE)
    assert summary(found) == [("progress.bounds", ERROR, 1)]
    assert "current -1" in found[0].message
    assert "percentage 101" in found[0].message


def test_feed_when_bad_type_and_bad_range_then_one_of_each() -> None:
    found = check(START, progress(current=True, total=-5), DONE)
    assert summary(found) == [("event.schema", ERROR, 1), ("progress.bounds", ERROR, 1)]


def test_feed_when_unknown_type_with_other_faults_then_only_unknown_type() -> None:
    found = check(START, {"type": "finished", "data": 5, "extra": True}, DONE)
    assert summary(found) == [("event.unknown-type", ERROR, 1)]


def test_feed_when_first_event_unreadable_then_no_seq_first() -> None:
    found = check("garbage", {"type": "tick"}, SSEEvent("", oversize=True), START, DONE)
    assert summary(found) == [
        ("sse.data-not-json", ERROR, 0),
        ("event.unknown-type", ERROR, 1),
        ("sse.event-too-large", ERROR, 2),
    ]


def test_finish_when_last_event_unreadable_then_no_seq_terminal() -> None:
    # The unreadable last event may well have been the done event: report it once.
    assert summary(check(START, SSEEvent("", oversize=True))) == [("sse.event-too-large", ERROR, 1)]
    assert summary(check(START, '{"type": "done"')) == [("sse.data-not-json", ERROR, 1)]


def test_finish_when_last_event_has_unknown_type_then_seq_terminal() -> None:
    found = check(START, {"type": "finished"})
    assert summary(found) == [("event.unknown-type", ERROR, 1), ("seq.terminal", ERROR, None)]


def test_feed_when_invalid_done_event_then_it_still_ends_the_stream() -> None:
    found = check(START, {"type": "done", "data": "ok"}, {"type": "content", "data": "x"})
    assert summary(found) == [("event.schema", ERROR, 1), ("seq.after-terminal", ERROR, 2)]


def test_feed_when_invalid_start_event_first_then_no_seq_first() -> None:
    found = check({"type": "start", "data": [1]}, DONE)
    assert summary(found) == [("event.schema", ERROR, 0)]


def test_feed_when_invalid_progress_then_its_valid_counters_still_tracked() -> None:
    stream = [START, progress(current=5, total=True), progress(current=4), DONE]
    found = check(*stream)
    assert summary(found) == [("event.schema", ERROR, 1), ("progress.monotonic", WARNING, 2)]


def test_feed_when_error_code_empty_then_event_schema_not_error_code() -> None:
    found = check(START, {"type": "error", "data": "boom", "error_code": ""})
    assert summary(found) == [("event.schema", ERROR, 1)]
    assert "error_code is an empty string" in found[0].message


def test_feed_when_duplicate_keys_then_last_one_wins_on_both_paths() -> None:
    # Fast path (pydantic) and slow path (json.loads) both keep the last duplicate.
    ok = '{"type": "content", "data": 5, "data": "x"}'
    bad = '{"type": "content", "data": "x", "data": 5}'
    assert summary(check(START, ok, bad, DONE)) == [("event.schema", ERROR, 2)]


def test_feed_when_text_contains_nan_word_then_valid_via_slow_path() -> None:
    text = {"type": "content", "data": "NaN and Infinity are words"}
    assert check(START, text, DONE) == []


def test_feed_when_lone_surrogate_escape_then_valid_like_the_schema_says() -> None:
    # Valid JSON that the fast parser rejects: the slow path must accept it.
    assert check(START, '{"type": "content", "data": "\\ud800"}', DONE) == []


def test_feed_when_number_is_huge_then_valid_like_the_schema_says() -> None:
    assert check(START, '{"type": "progress", "data": {"current": 1e400}}', DONE) == []


# -- plumbing -------------------------------------------------------------------------------


def test_feed_when_event_valid_then_returns_shared_empty_list_untouched() -> None:
    checker = PrefabChecker()
    results = [checker.feed(_event(e)) for e in (START, {"type": "content", "data": "x"}, DONE)]
    assert all(r is _NO_VIOLATIONS for r in results)
    check(START, progress(current=2, total=1), "x", DONE)
    assert _NO_VIOLATIONS == []


def test_event_type_when_called_then_names_the_prefab_type_or_the_fault() -> None:
    checker = PrefabChecker()
    labels = {}
    items: list[Item] = [
        START,
        "x",
        "[1]",
        {"data": 1},
        {"type": "tick"},
        SSEEvent("", oversize=True),
        DONE,
    ]
    for item in items:
        event = _event(item)
        checker.feed(event)
        labels[event.data or "oversize"] = checker.event_type(event)
    assert list(labels.values()) == [
        "start",
        "(not json)",
        "(not an object)",
        "(no type)",
        "tick",
        "(oversize)",
        "done",
    ]
    # An event it did not just see (after the end, or from elsewhere) is read afresh.
    assert checker.event_type(SSEEvent('{"type": "progress", "data": 1}')) == "progress"


def test_checker_when_used_by_stream_session_then_violations_land_on_events() -> None:
    checker: ContractChecker = PrefabChecker()
    session = StreamSession("test", checker, start=0.0)
    session.feed_bytes(b'data: {"type": "start"}\n\ndata: {"type": "content", "data": 1}\n\n', 0.1)
    result = session.finish(0.2)
    assert [e.kind for e in result.transcript] == ["start", "content"]
    assert [v.rule for v in result.transcript[1].violations] == ["event.schema"]
    assert [v.rule for v in result.violations] == ["event.schema", "seq.terminal"]


OWN_RULES = {
    "event.schema": ERROR,
    "event.unknown-type": ERROR,
    "seq.first": ERROR,
    "seq.terminal": ERROR,
    "seq.after-terminal": ERROR,
    "seq.order": ERROR,
    "progress.current-le-total": ERROR,
    "progress.bounds": ERROR,
    "progress.monotonic": WARNING,
    "progress.total-stable": WARNING,
    "error.code": WARNING,
    "sse.event-too-large": ERROR,
    "sse.invalid-utf8": WARNING,
    "sse.data-not-json": ERROR,
}


@pytest.mark.parametrize("rule_id", sorted(OWN_RULES))
def test_catalog_when_prefab_imported_then_rule_registered_and_explained(rule_id: str) -> None:
    entry = CATALOG[rule_id]
    assert entry.severity is OWN_RULES[rule_id]
    assert entry.summary.endswith(".")
    assert "\n" not in entry.summary
    assert len(entry.explanation) > 80


def test_event_types_when_listed_then_match_the_guide() -> None:
    assert EVENT_TYPES == ("start", "progress", "content", "done", "error")
