"""The generator runner: real worker processes running the fakes in tests/gen_targets/."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness._core.errors import TargetLoadError
from harness._core.options import CheckOptions
from harness._core.rules import CATALOG, Violation
from harness._core.session import CheckResult
from harness._core.sse import SSEEvent
from harness._runners.gen import GeneratorWorker, run_generator

pytestmark = pytest.mark.timeout(60)

HERE = Path(__file__).parent
FAKES = HERE / "gen_targets" / "fake_generators.py"
EXAMPLES = HERE.parent / "examples"
HOSTILE = HERE / "gen_targets" / "hostile_generators.py"
GEN_RULES = [
    "gen.raised",
    "gen.not-iterator",
    "gen.not-serializable",
    "gen.timeout",
    "gen.crashed",
    "gen.item-too-large",
    "gen.memory",
]


class FakeRecordingChecker:
    """Records what it is fed and reports nothing: the gen.* tests need no contract."""

    name = "fake-recording"

    def __init__(self) -> None:
        self.events: list[SSEEvent] = []
        self.complete: bool | None = None

    def feed(self, event: SSEEvent) -> list[Violation]:
        self.events.append(event)
        return []

    def finish(self, complete: bool = True) -> list[Violation]:
        self.complete = complete
        return []

    def event_type(self, event: SSEEvent) -> str:
        return "item"


def options(**kw: Any) -> CheckOptions:
    base: dict[str, Any] = {"first_byte_timeout": 10.0, "idle_timeout": 10.0, "total_timeout": 30.0}
    return CheckOptions(**(base | kw))


def run(
    worker: GeneratorWorker, fn: str, inputs: dict[str, Any] | None = None, **kw: Any
) -> tuple[CheckResult, FakeRecordingChecker]:
    checker = FakeRecordingChecker()
    return worker.run(f"{FAKES}:{fn}", inputs, options(**kw), checker), checker


def rules(result: CheckResult) -> list[str]:
    return [v.rule for v in result.violations]


def only(result: CheckResult, rule_id: str) -> str:
    assert rules(result) == [rule_id]
    return result.violations[0].message


@pytest.fixture(scope="module")
def worker() -> Iterator[GeneratorWorker]:
    with GeneratorWorker() as w:
        yield w


# -- the catalog ------------------------------------------------------------------------------


def test_gen_rules_when_registered_then_errors_with_explanations() -> None:
    for rule_id in GEN_RULES:
        assert CATALOG[rule_id].severity.value == "error"
        assert CATALOG[rule_id].explanation


# -- clean runs -------------------------------------------------------------------------------


def test_run_when_generator_is_clean_then_items_become_json_events(worker: GeneratorWorker) -> None:
    result, checker = run(worker, "counting", {"n": 3})
    assert result.violations == [] and result.ok
    assert result.events == 3 and checker.complete is True
    assert [e.id for e in checker.events] == ["0", "1", "2"]
    first = {"type": "progress", "data": {"i": 0, "text": "héllo ✓"}}
    assert checker.events[0].data == json.dumps(first, ensure_ascii=False)
    assert result.timing.first_event_ms is not None and result.timing.ttfb_ms is not None


@pytest.mark.parametrize(
    "fn", ["async_counting", "returns_list_iterator", "returns_custom_iterator"]
)
def test_run_when_async_generator_or_plain_iterator_then_accepted(
    worker: GeneratorWorker, fn: str
) -> None:
    result, checker = run(worker, fn, {"n": 3})
    assert result.violations == [] and result.events == 3 and checker.complete is True


def test_run_when_generator_yields_nothing_then_clean_and_complete(worker: GeneratorWorker) -> None:
    result, checker = run(worker, "counting", {"n": 0})
    assert result.violations == [] and result.events == 0 and checker.complete is True


def test_worker_when_runs_repeat_then_one_process_serves_them(worker: GeneratorWorker) -> None:
    pids = {run(worker, "pid")[1].events[0].data for _ in range(5)}
    assert len(pids) == 1 and worker.pid == int(pids.pop())


def test_run_when_generator_prints_everywhere_then_protocol_intact(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with GeneratorWorker() as fresh:  # started now, so its output lands in this capture
        result, checker = run(fresh, "noisy")
    assert result.violations == [] and result.events == 2
    assert [json.loads(e.data)["type"] for e in checker.events] == ["start", "done"]
    out, err = capfd.readouterr()
    assert "NOISY-MARKER printed between items" in err and "noisy stderr" in err
    assert "NOISY-MARKER" not in out  # the child's stdout goes to the parent's stderr


def test_run_when_directory_changes_then_worker_follows(
    worker: GeneratorWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _, checker = run(worker, "cwd")
    assert json.loads(checker.events[0].data) == str(tmp_path)


def test_run_when_previous_run_changed_directory_then_next_run_starts_in_ours(
    worker: GeneratorWorker, tmp_path: Path
) -> None:
    run(worker, "changes_directory", {"to": str(tmp_path)})
    _, checker = run(worker, "cwd")
    assert json.loads(checker.events[0].data) == os.getcwd()


def test_run_when_target_is_dotted_module_then_imported_from_cwd(
    worker: GeneratorWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FAKES.parent)
    result = worker.run("fake_generators:counting", {"n": 2}, options(), FakeRecordingChecker())
    assert result.violations == [] and result.events == 2


# -- gen.raised -------------------------------------------------------------------------------


def test_run_when_body_raises_type_error_then_gen_raised_at_user_line(
    worker: GeneratorWorker,
) -> None:
    result, checker = run(worker, "raises_inside", {"items": ["ok", 5]})
    message = only(result, "gen.raised")
    assert message.startswith("TypeError: object of type 'int' has no len()")
    assert "fake_generators.py:" in message and "in _helper_that_fails" in message
    assert "after 2 items" in message
    assert result.events == 2 and checker.complete is False  # no "missing done" on top


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        ("raises_before_first", "ValueError: failed during setup"),
        ("async_raises", "RuntimeError: async failure"),
        ("calls_sys_exit", "SystemExit: 4"),
    ],
)
def test_run_when_generator_raises_then_gen_raised(
    worker: GeneratorWorker, fn: str, expected: str
) -> None:
    pid = worker.pid
    result, _ = run(worker, fn)
    assert only(result, "gen.raised").startswith(expected)
    assert worker.pid == pid  # the worker survives the user's exceptions


# -- gen.not-iterator -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "kind"),
    [
        ("returns_list", "list"),
        ("returns_dict", "dict"),
        ("returns_none", "NoneType"),
        ("coroutine_without_yield", "coroutine"),
    ],
)
def test_run_when_function_returns_no_iterator_then_gen_not_iterator(
    worker: GeneratorWorker, fn: str, kind: str
) -> None:
    result, checker = run(worker, fn)
    message = only(result, "gen.not-iterator")
    assert f"returned {kind}" in message and f"{fn} returned" in message
    assert result.events == 0 and checker.complete is False


# -- gen.not-serializable ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("nan", "Out of range float"),
        ("inf", "Out of range float"),
        ("set", "Object of type set is not JSON serializable"),
        ("datetime", "Object of type datetime is not JSON serializable"),
        ("object", "Object of type object is not JSON serializable"),
        ("surrogate", "UnicodeEncodeError"),
        ("bytes", "Object of type bytes is not JSON serializable"),
    ],
)
def test_run_when_item_is_not_json_then_gen_not_serializable_and_run_stops(
    worker: GeneratorWorker, kind: str, error: str
) -> None:
    result, checker = run(worker, "yields_bad", {"kind": kind})
    message = only(result, "gen.not-serializable")
    assert message.startswith("item #1") and error in message
    assert result.events == 1 and checker.complete is False


# -- gen.timeout ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "limits", "expected", "events"),
    [
        ("hangs_before_first", {"first_byte_timeout": 0.5}, "first_byte_timeout = 0.5 s", 0),
        ("hangs_after_first", {"idle_timeout": 0.5}, "idle_timeout = 0.5 s", 1),
        (
            "trickles_forever",
            {"idle_timeout": 0.5, "total_timeout": 0.6},
            "total_timeout = 0.6 s",
            None,
        ),
    ],
)
def test_run_when_generator_is_too_slow_then_gen_timeout_costs_only_the_limit(
    worker: GeneratorWorker, fn: str, limits: dict[str, float], expected: str, events: int | None
) -> None:
    run(worker, "pid")  # warm: the timing below is the limit's, not a start-up's
    began = time.monotonic()
    run(worker, "pid")  # the reference: a quick run, now (the machine may be busy)
    ref = time.monotonic() - began
    pid = worker.pid
    began = time.monotonic()
    result, checker = run(worker, fn, None, **limits)
    elapsed = time.monotonic() - began
    assert expected in only(result, "gen.timeout")
    assert min(limits.values()) <= elapsed < min(limits.values()) + 2.0 + 5 * ref, (elapsed, ref)
    assert checker.complete is False
    if events is not None:
        assert result.events == events
    assert run(worker, "counting")[0].violations == []  # usable again: a new process
    assert worker.pid not in (None, pid)


def test_run_when_generator_started_a_process_then_timeout_kills_it_too(
    worker: GeneratorWorker,
) -> None:
    result, checker = run(worker, "spawns_sleeper", idle_timeout=0.5)
    assert rules(result) == ["gen.timeout"]
    sleeper = int(checker.events[0].data)
    deadline = time.monotonic() + 5
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(sleeper)


def test_run_when_generator_left_a_daemon_and_hangs_then_timeout_kills_the_daemon_too(
    worker: GeneratorWorker, tmp_path: Path
) -> None:
    checker = FakeRecordingChecker()
    target = f"{HOSTILE}:hostile_daemon_then_hang"
    inputs = {"pidfile": str(tmp_path / "pid")}
    result = worker.run(target, inputs, options(idle_timeout=0.5), checker)
    assert rules(result) == ["gen.timeout"]
    daemon = int(checker.events[0].data)  # in a session of its own: no group kill reaches it
    deadline = time.monotonic() + 5
    while _alive(daemon) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(daemon)
    assert run(worker, "counting")[0].violations == []


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "zombie" not in status


# -- gen.crashed ------------------------------------------------------------------------------


def test_run_when_generator_calls_os_exit_then_gen_crashed_and_next_run_works(
    worker: GeneratorWorker,
) -> None:
    result, checker = run(worker, "exits", {"code": 3})
    assert "exited with code 3 after 1 item" in only(result, "gen.crashed")
    assert result.events == 1 and checker.complete is False
    assert run(worker, "counting")[0].violations == []


def test_run_when_process_is_killed_then_gen_crashed_names_the_signal(
    worker: GeneratorWorker,
) -> None:
    result, _ = run(worker, "kills_itself")
    assert "killed by SIGKILL" in only(result, "gen.crashed")
    assert run(worker, "counting")[0].violations == []


# -- limits -----------------------------------------------------------------------------------


def test_run_when_generator_is_infinite_then_max_events_stops_and_closes_it(
    worker: GeneratorWorker, tmp_path: Path
) -> None:
    marker = tmp_path / "closed"
    result, checker = run(worker, "infinite", {"marker": str(marker)}, max_events=50)
    assert result.events == 50 and rules(result) == ["limit.max-events"]
    assert checker.complete is False
    assert marker.read_text() == "closed after 49"


def test_run_when_async_generator_is_infinite_then_max_events_stops_it(
    worker: GeneratorWorker,
) -> None:
    result, _ = run(worker, "async_infinite", max_events=20)
    assert result.events == 20 and rules(result) == ["limit.max-events"]


def test_worker_when_memory_limit_set_then_child_has_it_and_meets_memory_error() -> None:
    with GeneratorWorker(memory_limit=1 << 30) as limited:
        _, checker = run(limited, "memory_limit")
        assert int(checker.events[0].data) == 1 << 30
        pid = limited.pid
        result, _ = run(limited, "eats_memory", {"nbytes": 2 << 30})
        message = only(result, "gen.memory")
        assert message.startswith("the generator exceeded the worker's memory cap of 1024 MB")
        assert "fake_generators.py:" in message and "in eats_memory" in message
        assert run(limited, "counting")[0].violations == []
        assert limited.pid not in (None, pid)  # a process whose heap ran out is not reused


def test_worker_when_generator_fills_its_memory_then_gen_memory_not_a_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with GeneratorWorker(memory_limit=256 << 20) as limited:
        checker = FakeRecordingChecker()
        result = limited.run(f"{HOSTILE}:hostile_fills_memory", None, options(), checker)
        assert "memory cap of 256 MB" in only(result, "gen.memory")
        assert checker.complete is False
        assert run(limited, "counting")[0].violations == []
    assert "Traceback" not in capfd.readouterr().err


def test_worker_when_generator_raises_its_memory_cap_then_the_cap_holds() -> None:
    with GeneratorWorker(memory_limit=1 << 30) as limited:
        checker = FakeRecordingChecker()
        result = limited.run(f"{HOSTILE}:hostile_raises_memory_cap", None, options(), checker)
        assert result.violations == []
        # a hard limit: setrlimit to anything above it failed, the cap is what it was
        assert json.loads(checker.events[0].data) == {
            "raised": False,
            "soft": 1 << 30,
            "hard": 1 << 30,
        }


def test_worker_when_default_then_memory_limited_to_4_gib(worker: GeneratorWorker) -> None:
    _, checker = run(worker, "memory_limit")
    assert int(checker.events[0].data) == 4 << 30


# -- loading errors ---------------------------------------------------------------------------


def load_error(worker: GeneratorWorker, target: str, inputs: Any = None, **kw: Any) -> str:
    with pytest.raises(TargetLoadError) as info:
        worker.run(target, inputs, options(**kw), FakeRecordingChecker())
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_load_when_file_missing_then_target_load_error(worker: GeneratorWorker) -> None:
    assert "no such file: nowhere/missing.py" in load_error(worker, "nowhere/missing.py:fn")


def test_load_when_function_missing_then_suggests_close_names(worker: GeneratorWorker) -> None:
    message = load_error(worker, f"{FAKES}:countin")
    assert "has no function 'countin'" in message and "did you mean 'counting'" in message


def test_load_when_module_import_fails_then_says_why(worker: GeneratorWorker) -> None:
    message = load_error(worker, f"{FAKES.parent / 'fake_import_error.py'}:counting")
    assert "ModuleNotFoundError" in message
    assert "fake_dependency_that_is_not_installed" in message
    assert "fake_import_error.py:3" in message


def test_load_when_syntax_error_then_says_where(worker: GeneratorWorker, tmp_path: Path) -> None:
    bad = tmp_path / "fake_syntax.py"
    bad.write_text("def broken(:\n    yield 1\n")
    message = load_error(worker, f"{bad}:broken")
    assert "SyntaxError" in message and "fake_syntax.py:1" in message


def test_load_when_dotted_module_missing_then_target_load_error(worker: GeneratorWorker) -> None:
    assert "no module named 'fake_missing_module'" in load_error(worker, "fake_missing_module:fn")


@pytest.mark.parametrize("target", ["no_colon_here", "file.py:", ":fn", "a.py:not-a-name"])
def test_load_when_target_malformed_then_target_load_error(
    worker: GeneratorWorker, target: str
) -> None:
    load_error(worker, target)


def test_load_when_attribute_not_callable_then_target_load_error(worker: GeneratorWorker) -> None:
    assert "is a int, not a function" in load_error(worker, f"{FAKES}:not_callable")


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"itms": [1]}, "(itms): unexpected input 'itms'; missing input 'items'"),
        ({}, "(none): missing input 'items'"),
        ({"items": [], "label": "a", "extra": 1}, "unexpected input 'extra'"),
    ],
)
def test_load_when_inputs_do_not_fit_then_target_load_error(
    worker: GeneratorWorker, inputs: dict[str, Any], expected: str
) -> None:
    pid = worker.pid
    message = load_error(worker, f"{FAKES}:needs_items", inputs)
    assert expected in message and "needs_items(items, *, label='x')" in message
    assert worker.pid == pid  # a load error does not cost a new process


def test_load_when_import_hangs_then_total_timeout_bounds_it(
    worker: GeneratorWorker, tmp_path: Path
) -> None:
    slow = tmp_path / "fake_slow_import.py"
    slow.write_text("import time\ntime.sleep(60)\n\ndef fn():\n    yield 1\n")
    began = time.monotonic()
    assert "total_timeout = 0.5 s" in load_error(worker, f"{slow}:fn", total_timeout=0.5)
    assert time.monotonic() - began < 3.0
    assert run(worker, "counting")[0].violations == []


# -- life cycle -------------------------------------------------------------------------------


def test_worker_when_closed_then_process_gone_and_restartable() -> None:
    fresh = GeneratorWorker()
    assert fresh.pid is None  # started lazily
    run(fresh, "counting")
    pid = fresh.pid
    assert pid is not None
    fresh.close()
    assert fresh.pid is None and not _alive(pid)
    assert run(fresh, "counting")[0].violations == []
    fresh.close()


def test_run_generator_when_called_then_uses_options_inputs() -> None:
    checker = FakeRecordingChecker()
    target = f"{EXAMPLES / 'prefab_good.py'}:batch_process"
    result = run_generator(target, options(inputs={"items": [1, "a"]}), checker)
    assert result.violations == [] and result.events == 4
    types = [json.loads(e.data)["type"] for e in checker.events]
    assert types == ["start", "progress", "progress", "done"]


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.integers() | st.text(max_size=5), max_size=5))
def test_worker_when_many_examples_then_each_runs_in_the_same_process(
    worker: GeneratorWorker, items: list[Any]
) -> None:
    pid = worker.pid
    result, checker = run(worker, "needs_items", {"items": items})
    assert result.violations == [] and json.loads(checker.events[0].data) == len(items)
    assert pid is None or worker.pid == pid


# -- the example prefabs ----------------------------------------------------------------------

GOOD_INPUTS = [
    ("batch_process", {"items": [1, 2, 3]}),
    ("batch_process", {"items": []}),
    ("batch_process", {"items": [1, None]}),
    ("chat_stream", {"messages": [{"role": "user", "content": "héllo"}]}),
    ("chat_stream", {"messages": []}),
    ("process_lines", {"text": "a\nbé\nc", "start": -5}),
    ("process_lines", {"text": ""}),
]


@pytest.mark.parametrize(("fn", "inputs"), GOOD_INPUTS)
def test_prefab_good_when_run_then_no_generator_problems(
    worker: GeneratorWorker, fn: str, inputs: dict[str, Any]
) -> None:
    checker = FakeRecordingChecker()
    result = worker.run(f"{EXAMPLES / 'prefab_good.py'}:{fn}", inputs, options(), checker)
    assert result.violations == []
    types = [json.loads(e.data)["type"] for e in checker.events]
    assert types[0] == "start" and types[-1] in ("done", "error")


@pytest.mark.parametrize(("fn", "inputs"), GOOD_INPUTS)
def test_prefab_good_when_checked_by_prefab_contract_then_ok(
    worker: GeneratorWorker, fn: str, inputs: dict[str, Any]
) -> None:
    prefab = pytest.importorskip("harness._contracts.prefab")
    target = f"{EXAMPLES / 'prefab_good.py'}:{fn}"
    result = worker.run(target, inputs, options(), prefab.PrefabChecker())
    assert result.ok, result.violations


@pytest.mark.parametrize(
    ("fn", "inputs", "rule_id"),
    [
        ("batch_process", {"items": []}, "gen.raised"),
        (
            "chat_stream",
            {"messages": [{"role": "user", "content": "w " * 20}]},
            "gen.not-serializable",
        ),
    ],
)
def test_prefab_buggy_when_bug_input_then_generator_rule_fires(
    worker: GeneratorWorker, fn: str, inputs: dict[str, Any], rule_id: str
) -> None:
    checker = FakeRecordingChecker()
    result = worker.run(f"{EXAMPLES / 'prefab_buggy.py'}:{fn}", inputs, options(), checker)
    assert rules(result) == [rule_id]


def test_prefab_buggy_when_happy_path_then_no_generator_problems(worker: GeneratorWorker) -> None:
    checker = FakeRecordingChecker()
    target = f"{EXAMPLES / 'prefab_buggy.py'}:batch_process"
    assert worker.run(target, {"items": [1, 2]}, options(), checker).violations == []


def test_gen_when_item_over_max_event_bytes_then_gen_item_too_large_and_run_stops(
    worker: GeneratorWorker,
) -> None:
    from harness._contracts.prefab import PrefabChecker

    target = f"{FAKES}:yields_big_content"
    checker = PrefabChecker()
    result = worker.run(target, {"size": 5000}, options(max_event_bytes=1024), checker)
    assert [v.rule for v in result.violations] == ["gen.item-too-large"]
    message = result.violations[0].message
    assert re.fullmatch(
        r"item #1 \(dict\) is at least (\d+) bytes of JSON, more than --max-event-bytes = "
        r"1024; the run stopped there",
        message,
    ), message
    assert 1024 < int(message.split()[6]) <= 5029  # a floor of the real size, past the limit
    assert result.events == 1  # the start event; not the done after the large one
    small = worker.run(target, {"size": 10}, options(max_event_bytes=1024), PrefabChecker())
    assert small.violations == []


def test_gen_when_item_just_over_max_event_bytes_then_exact_size_named(
    worker: GeneratorWorker,
) -> None:
    # 1000 characters: within the limit as a floor, two bytes each in UTF-8, so serialised
    result, _ = run(worker, "yields_big_content", {"size": 1000, "char": "é"}, max_event_bytes=1500)
    assert "item #1 (dict) is 2031 bytes of JSON, more than" in only(result, "gen.item-too-large")


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text() | st.integers(), inner),
    max_leaves=60,
)


@given(item=JSON_VALUES, limit=st.integers(0, 400))
@settings(max_examples=300, deadline=None)
def test_json_size_floor_when_any_item_then_never_above_the_serialised_size(
    item: Any, limit: int
) -> None:
    from harness._runners.worker import _dumps, json_size_floor

    real = len(_dumps(item))
    floor = json_size_floor(item, limit)
    assert floor <= real or floor > limit  # exact below the limit; past it, stopped early
    if real <= limit:
        assert floor <= real


def test_json_size_floor_when_shared_string_then_stops_without_serialising() -> None:
    from harness._runners.worker import json_size_floor

    item = {"data": ["x" * 1022] * (1 << 20)}  # 8 MB in memory, 1 GiB of JSON
    began = time.monotonic()
    assert json_size_floor(item, 1 << 20) > 1 << 20
    assert time.monotonic() - began < 1.0  # it stopped at the limit, not at the end
    deep: Any = ["x" * 1022] * 2000  # 2 MB of JSON under 5 000 lists: past any recursion limit
    for _ in range(5000):
        deep = [deep]
    assert json_size_floor(deep, 1 << 20) > 1 << 20
    looped: list[Any] = []
    looped.append(looped)
    assert json_size_floor(looped, 100) < 100  # a cycle is json.dumps' to report
