"""``suites/`` as CI runs them: ``stream-harness serve`` as a real subprocess on 127.0.0.1 for
each bundled example, and ``pytest --pyargs suites ... --junitxml`` as another, read back from
the JUnit report.  The good example passes every suite; in the buggy one each planted bug is
caught, under the right rule, by the suite that should catch it -- and by no other.

Both runs go in parallel (they take tens of seconds: 100 generated inputs per function, over
HTTP, and shrinking).  The seed is fixed and the Hypothesis database off, so they are
reproducible.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import fake_fastapi_streams
import pytest
from gateway_fixtures import serve
from http_fixtures import serving
from openapi_fixtures import serving_apps, spec_url, write_document

from harness._contracts.catalog import load_all

pytestmark = pytest.mark.timeout(600)
pytest_plugins = ["pytester"]

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


def test_suites_when_gateway_given_then_the_endpoint_check_is_deselected_with_the_reason(
    runs: dict[str, SuiteRun],
) -> None:
    good = runs["good"]
    assert not [case for case in good.cases if case.startswith("test_endpoint_conforms")]
    assert "test_stream_contract.py::test_endpoint_conforms deselected: not with " in good.output
    assert "2 deselected" in good.output


# -- one streaming endpoint: --stream-url without --stream-manifest ----------------------------

SUITE_FILES = ("test_invalid_inputs.py", "test_manifest.py", "test_resume.py")


@pytest.fixture(scope="module", autouse=True)
def suite_modules() -> None:
    """Import what the suites import once, before any ``pytester`` is set up: pytester forgets
    the modules imported during a test, and what stays would not know their second import --
    the rule registry would refuse the rules of a rule module imported again, and httpx (which
    imports httpcore on its first request and keeps its exception classes) would no longer
    recognise httpcore's errors."""
    load_all()
    for name in (
        "httpcore",
        "httpcore._backends.anyio",
        "suites.conftest",
        "harness._runners.check",
    ):
        importlib.import_module(name)
    for path in sorted((ROOT / "suites").glob("test_*.py")):
        importlib.import_module(f"suites.{path.stem}")


def run_suites(pytester: pytest.Pytester, *options: str) -> SuiteRun:
    """``pytest --pyargs suites OPTIONS``, in this process (a fresh pytest run in the pytester
    directory: a second of imports saved per run), read back from its JUnit report."""
    junit = pytester.path / "suites.xml"
    junit.unlink(missing_ok=True)
    args = ["--pyargs", "suites", "-p", "no:cacheprovider", "-q", "-rP", "--junitxml", str(junit)]
    # In one process, a module an earlier test imported (a gateway's target) cannot be
    # rewritten again: pytest's warning about it is not the suites' finding.
    args += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    r = pytester.runpytest_inprocess(*args, *options)
    output = r.stdout.str() + "\n" + r.stderr.str()
    return SuiteRun(int(r.ret), output, read_junit(junit) if junit.exists() else {})


@pytest.fixture(scope="module")
def roadmaps() -> Iterator[str]:
    """The fake FastAPI roadmap app, served by uvicorn on loopback: its base URL."""
    with serving(fake_fastapi_streams.app) as url:
        yield url + "/api/v1/roadmaps"


def test_suites_when_endpoint_url_and_contract_then_that_url_is_checked_and_the_rest_deselected(
    roadmaps: str, pytester: pytest.Pytester
) -> None:
    """The issue's command, against an endpoint that streams on GET: one real check (seven
    events read), and the gateway suites deselected -- nothing skipped, nothing vacuous."""
    url = f"{roadmaps}/stream?goal=go"
    run = run_suites(pytester, "--stream-url", url, "--stream-contract", "agent-stages")
    run_slash = run_suites(
        pytester, "--stream-url", f"{roadmaps}/stream/", "--stream-contract", "agent-stages"
    )
    # FastAPI redirects /stream/ to /stream: the URL is checked as given, and a 3xx fails.
    assert run_slash.returncode == 1 and "HTTP 307" in run_slash.output, run_slash.output
    assert run.returncode == 0, run.output
    assert run.cases == {
        "test_endpoint_conforms[GET /api/v1/roadmaps/stream?goal=go]": ("passed", "")
    }
    assert "1 passed, 7 deselected" in run.output
    assert "GET /api/v1/roadmaps/stream?goal=go: 7 events, contract agent-stages" in run.output
    for name in SUITE_FILES:
        assert f"{name} deselected: needs --stream-manifest" in run.output
    assert "test_openapi.py deselected: needs --stream-openapi" in run.output
    assert "test_stream_contract.py::test_stream_conforms deselected: needs --stream-manifest" in (
        run.output
    )
    assert "skipped" not in run.output and "need a target" not in run.output


def test_suites_when_body_given_from_a_file_then_the_endpoint_is_posted_it(
    roadmaps: str, pytester: pytest.Pytester
) -> None:
    # Several lines: read by the plugin (the "=" keeps pytest from reading "@body.json" as a
    # file of its own arguments, one per line).
    (pytester.path / "body.json").write_text('{\n  "goal": "rust"\n}\n')
    url = f"{roadmaps}/generate-stream"
    run = run_suites(
        pytester,
        "--stream-url",
        url,
        "--stream-contract",
        "agent-stages",
        "--stream-body=@body.json",
    )
    assert run.returncode == 0, run.output
    assert run.cases == {
        "test_endpoint_conforms[POST /api/v1/roadmaps/generate-stream]": ("passed", "")
    }
    assert ": 7 events, contract agent-stages" in run.output


@pytest.mark.parametrize(
    ("path", "extra", "expected"),
    [
        # The command, as given: no body, so GET, which the endpoint does not take.
        ("generate-stream", (), ["http.status (error): HTTP 405", "give --stream-method"]),
        ("no-such-stream", ("--stream-body", "{}"), ["HTTP 404", "give --stream-manifest"]),
        (
            "broken-stream",
            ("--stream-body", '{"goal": "x"}'),
            ["seq.terminal (error)", "1 violation in 3 events"],
        ),
        ("generate-stream", ("--stream-method", "PUT", "--stream-body", "{}"), ["HTTP 405"]),
    ],
)
def test_suites_when_endpoint_fails_then_a_failure_never_a_pass(
    roadmaps: str, pytester: pytest.Pytester, path: str, extra: tuple[str, ...], expected: list[str]
) -> None:
    url = f"{roadmaps}/{path}"
    run = run_suites(pytester, "--stream-url", url, "--stream-contract", "agent-stages", *extra)
    assert run.returncode == 1, run.output
    [(outcome, text)] = run.cases.values()
    assert outcome == "failure", run.output
    for words in expected:
        assert words in text, (words, text)
    assert f"reproduce: stream-harness check {url} --contract agent-stages" in text


def test_suites_when_header_given_then_it_is_sent_and_never_shown(
    roadmaps: str, pytester: pytest.Pytester
) -> None:
    url, body = f"{roadmaps}/private-stream", ("--stream-body", '{"goal": "x"}')
    key = fake_fastapi_streams.API_KEY
    ok = run_suites(
        pytester,
        "--stream-url",
        url,
        "--stream-contract",
        "agent-stages",
        *body,
        "--stream-header",
        f"X-Api-Key: {key}",
    )
    assert ok.returncode == 0, ok.output
    wrong = run_suites(
        pytester,
        "--stream-url",
        url,
        "--stream-contract",
        "agent-stages",
        *body,
        "--stream-header",
        "X-Api-Key: hunter2-not-it",
    )
    assert wrong.returncode == 1, wrong.output
    assert "HTTP 401" in wrong.output
    assert "--header 'X-Api-Key: [REDACTED]'" in wrong.output
    assert "hunter2-not-it" not in wrong.output


def test_suites_when_strict_then_a_warning_fails_the_endpoint(
    roadmaps: str, pytester: pytest.Pytester
) -> None:
    url = f"{roadmaps}/cached-stream"
    given = (
        "--stream-url",
        url,
        "--stream-contract",
        "agent-stages",
        "--stream-body",
        '{"goal": "x"}',
    )
    lenient = run_suites(pytester, *given)
    assert lenient.returncode == 0, lenient.output
    assert "http.cache-control (warning)" in lenient.output  # printed, not failed
    strict = run_suites(pytester, *given, "--stream-strict")
    assert strict.returncode == 1, strict.output
    [(_, text)] = strict.cases.values()
    assert "http.cache-control (error)" in text and "(a warning; --strict)" in text
    (pytester.path / "stream-harness.toml").write_text("strict = true\n")
    assert run_suites(pytester, *given).returncode == 1


def test_suites_when_no_target_given_then_everything_deselected_with_the_reasons(
    pytester: pytest.Pytester,
) -> None:
    """Not a pass: pytest's "no tests ran" (5), each suite naming the option it needs."""
    run = run_suites(pytester)
    assert run.returncode == 5, run.output
    assert run.cases == {}
    assert "8 deselected" in run.output
    assert "test_resume.py deselected: needs --stream-url and --stream-manifest" in run.output
    assert "test_manifest.py::test_manifest_is_valid deselected: needs --stream-manifest" in (
        run.output
    )
    assert "nothing to run: give --stream-url URL" in run.output


def test_suites_when_manifest_alone_then_only_its_validity_is_tested(
    pytester: pytest.Pytester,
) -> None:
    run = run_suites(pytester, "--stream-manifest", str(MANIFEST))
    assert run.returncode == 0, run.output
    assert run.cases == {"test_manifest_is_valid": ("passed", "")}
    assert "test_manifest.py::test_every_function_is_served deselected: needs --stream-url" in (
        run.output
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--stream-body", "{"), "--stream-body is not valid JSON"),
        (("--stream-body=@missing.json",), "--stream-body: cannot read missing.json"),
        (("--stream-method", "GE T"), "--stream-method: not an HTTP method"),
        (("--stream-header", "no colon"), "--stream-header: expected 'Name: value'"),
        (
            ("--stream-manifest", str(MANIFEST), "--stream-body", "{}"),
            "--stream-body applies to an endpoint checked alone",
        ),
        (("--stream-operation", "chat"), "--stream-operation needs --stream-openapi SPEC"),
        (("--stream-openapi", "missing.yaml"), "--stream-openapi: no such OpenAPI document"),
    ],
)
def test_suites_when_request_option_is_bad_then_usage_error_before_collection(
    pytester: pytest.Pytester, options: tuple[str, ...], message: str
) -> None:
    run = run_suites(pytester, "--stream-url", "http://127.0.0.1:9/x", *options)
    assert run.returncode == 4, run.output
    assert message in run.output
    assert "Traceback" not in run.output and run.cases == {}


# -- --stream-openapi: one test per operation ---------------------------------------------------


@pytest.fixture(scope="module")
def openapi_apps() -> Iterator[dict[str, str]]:
    with serving_apps(("token_stream", "json_documented")) as urls:
        yield urls


OPENAPI = ("--stream-seed", SEED, "--stream-database", "none")


def test_suites_when_openapi_given_then_one_test_per_operation_with_minimal_request_and_reproducer(
    openapi_apps: dict[str, str], pytester: pytest.Pytester
) -> None:
    """The token-stream app: GET /stream cut on an empty prompt, GET /stream/quota answering
    an undocumented 429, GET /stream/count correct -- three tests, two failures."""
    url = openapi_apps["token_stream"]
    run = run_suites(pytester, "--stream-openapi", spec_url(url), *OPENAPI)
    assert run.returncode == 1, run.output
    assert run.outcome("test_operation_conforms[GET /stream/count]") == "passed", run.output
    cut = run.cases["test_operation_conforms[GET /stream]"]
    assert cut[0] == "failure", run.output
    assert (
        '-- minimal request: {"method": "GET", "path": "/stream", "query": {"prompt": ""'
        in (cut[1])
    )
    assert f"reproduce: stream-harness check '{url}/stream?prompt=" in cut[1]
    assert f"or: curl -N -X GET '{url}/stream?prompt=" in cut[1]
    quota = run.cases["test_operation_conforms[GET /stream/quota]"]
    assert quota[0] == "failure", run.output
    assert "openapi.undocumented-status (error): HTTP 429 is not documented" in quota[1]
    assert len(run.cases) == 3, run.output
    assert "test_stream_contract.py::test_endpoint_conforms deselected: needs --stream-url" in (
        run.output
    )


def test_suites_when_every_operation_skipped_then_skips_with_reasons_and_not_a_pass(
    openapi_apps: dict[str, str], pytester: pytest.Pytester
) -> None:
    """A document read from a file, served at --stream-base-url: an operation documented as
    application/json without a contract, and one whose body cannot be generated."""
    doc = write_document("json_documented", pytester.path, "yaml")
    given = ("--stream-openapi", str(doc), "--stream-base-url", openapi_apps["json_documented"])
    named = ("--stream-operation", "echo", "--stream-operation", "POST /v1/transcribe")
    run = run_suites(pytester, *given, *named, *OPENAPI)
    assert run.returncode == 5, run.output
    assert {outcome for outcome, _ in run.cases.values()} == {"skipped"}, run.output
    echo = run.cases["test_operation_conforms[POST /v1/echo]"][1]
    assert "not documented as a stream" in echo and "give --stream-contract" in echo
    assert (
        "cannot generate its requests"
        in run.cases["test_operation_conforms[POST /v1/transcribe]"][1]
    )
    assert "every operation was skipped: nothing was tested" in run.output
    tested = run_suites(
        pytester, *given, "--stream-operation", "echo", "--stream-contract", "echo=text", *OPENAPI
    )
    assert tested.returncode == 0, tested.output
    assert tested.cases == {"test_operation_conforms[POST /v1/echo]": ("passed", "")}


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
