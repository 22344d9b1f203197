"""``suites/`` as CI runs them: ``stream-harness serve`` as a real subprocess on 127.0.0.1 for
each bundled example, and ``pytest --pyargs suites ... --junitxml`` as another, read back from
the JUnit report.  The good example passes every suite; in the buggy one each planted bug is
caught, under the right rule, by the suite that should catch it -- and by no other.

Both runs go in parallel (they take tens of seconds: 100 generated inputs per function, over
HTTP, and shrinking).  The seed is fixed and the Hypothesis database off, so they are
reproducible.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from gateway_fixtures import serve

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
MANIFEST = EXAMPLES / "prefab-manifest.json"
SEED = "20241023"
RUN_TIMEOUT = 540

#: The planted bugs of prefab_buggy.py, as the suites must report them: test id -> rules.
BUGGY_FAILURES = {
    "test_stream_conforms[batch_process]": {
        "gen.raised",  # an empty list: ZeroDivisionError, an error event from the gateway
        "progress.bounds",  # a list of odd length: 133 %
        "progress.current-le-total",  # ... and current 4 of total 3
    },
    "test_stream_conforms[chat_stream]": {
        "gen.not-serializable",  # a long message: a datetime in the done event
        "seq.first",  # no user message: the error event before start
    },
    "test_stream_conforms[process_lines]": {
        "progress.bounds",  # a negative start
        "seq.terminal",  # non-ASCII text: no done event
    },
}


@dataclass
class SuiteRun:
    returncode: int
    output: str
    cases: dict[str, tuple[str, str]]  # test id -> (outcome, failure text)

    def outcome(self, test_id: str) -> str:
        return self.cases[test_id][0]


def read_junit(path: Path) -> dict[str, tuple[str, str]]:
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, text = "passed", ""
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcome = kind
                text = f"{found.get('message', '')}\n{found.text or ''}"
        cases[case.get("name", "")] = (outcome, text)
    return cases


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SuiteRun]]:
    """Serve each example and run the suites against both at once."""
    tmp = tmp_path_factory.mktemp("suites")
    with ExitStack() as stack:
        procs = {}
        for name in ("good", "buggy"):
            served = stack.enter_context(
                serve(MANIFEST, str(EXAMPLES / f"prefab_{name}.py"), log=tmp / f"serve-{name}.log")
            )
            junit = tmp / f"{name}.xml"
            args = [sys.executable, "-m", "pytest", "--pyargs", "suites"]
            args += ["--stream-url", served.url, "--stream-manifest", str(MANIFEST)]
            args += ["--stream-seed", SEED, "--stream-database", "none"]
            args += ["--junitxml", str(junit), "-p", "no:cacheprovider", "-q"]
            log = (tmp / f"pytest-{name}.log").open("w")
            stack.callback(log.close)
            proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            stack.callback(_kill, proc)
            procs[name] = (proc, junit)
        out = {}
        for name, (proc, junit) in procs.items():
            code = proc.wait(RUN_TIMEOUT)
            output = (tmp / f"pytest-{name}.log").read_text()
            assert junit.exists(), output
            out[name] = SuiteRun(code, output, read_junit(junit))
        yield out


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_suites_when_good_example_then_every_suite_passes(runs: dict[str, SuiteRun]) -> None:
    good = runs["good"]
    assert good.returncode == 0, good.output
    assert len(good.cases) >= 12, good.output  # 4 per-function suites x 3 functions, and more
    assert {outcome for outcome, _ in good.cases.values()} == {"passed"}, good.output


def test_suites_when_buggy_example_then_each_planted_bug_caught_by_its_rule(
    runs: dict[str, SuiteRun],
) -> None:
    buggy = runs["buggy"]
    assert buggy.returncode == 1, buggy.output
    for test_id, rules in BUGGY_FAILURES.items():
        outcome, text = buggy.cases[test_id]
        assert outcome == "failure", (test_id, buggy.output)
        for rule_id in rules:
            assert rule_id in text, (test_id, rule_id, text)
        assert "minimal inputs" in text
        assert "reproduce: stream-harness check http://127.0.0.1:" in text


def test_suites_when_buggy_example_then_nothing_else_fails(runs: dict[str, SuiteRun]) -> None:
    """Invalid inputs and resumption are the gateway's business, and it gets them right
    whatever the functions do: only the contract suite fails."""
    buggy = runs["buggy"]
    others = {k: v for k, v in buggy.cases.items() if k not in BUGGY_FAILURES}
    assert others
    assert {outcome for outcome, _ in others.values()} == {"passed"}, buggy.output


def test_suites_when_buggy_example_then_the_empty_list_is_the_minimal_raise(
    runs: dict[str, SuiteRun],
) -> None:
    text = runs["buggy"].cases["test_stream_conforms[batch_process]"][1]
    assert 'gen.raised -- minimal inputs: {"items": []}' in text


def test_suites_when_no_target_given_then_every_test_skipped_with_the_reason(
    tmp_path: Path,
) -> None:
    junit = tmp_path / "none.xml"
    args = [sys.executable, "-m", "pytest", "--pyargs", "suites", "-p", "no:cacheprovider"]
    r = subprocess.run(
        [*args, "--junitxml", str(junit), "-q", "-rs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    cases = read_junit(junit)
    assert cases
    assert {outcome for outcome, _ in cases.values()} == {"skipped"}
    assert "--stream-manifest not given" in r.stdout
    assert "--stream-url not given" in r.stdout


# -- the plugin's fixtures in a user's own tests ------------------------------------------------

USER_TEST = """
from harness._contracts.manifest import Manifest


def test_batch(stream_check, stream_manifest: Manifest, stream_contract: str) -> None:
    assert stream_contract == "prefab"
    assert [f.name for f in stream_manifest.streaming] == [
        "batch_process", "chat_stream", "process_lines"
    ]
    result = stream_check("batch_process", {"items": [1, 2, 3]})
    assert result.ok, result.violations
    assert result.events == 5
    resumed = stream_check("batch_process", {"items": [1, 2, 3]}, resume_after=2,
                           max_retry_wait=0.1)
    assert resumed.ok and resumed.extra["reconnect_ms"] >= 0


def test_needs_no_target(stream_url: str) -> None:
    assert stream_url.startswith("http://127.0.0.1:")
"""


def test_plugin_fixtures_when_target_given_then_a_users_test_checks_streams(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_user.py").write_text(USER_TEST)
    with serve(MANIFEST, str(EXAMPLES / "prefab_good.py"), log=tmp_path / "serve.log") as served:
        args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_user.py"]
        r = subprocess.run(
            [*args, "--stream-url", served.url + "/", "--stream-manifest", str(MANIFEST)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed" in r.stdout
    assert f"stream-harness: url={served.url}/ manifest=" in r.stdout


def test_plugin_fixtures_when_no_target_then_skipped_not_failed(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TEST)
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test_user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 skipped" in r.stdout
    assert "--stream-manifest not given" in r.stdout or "--stream-url not given" in r.stdout
