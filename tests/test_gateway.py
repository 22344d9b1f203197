"""The reference gateway on a real uvicorn server (a thread here, a subprocess for ``serve``),
with the functions of ``gateway_fixtures.py``, talked to by a real HTTP client."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_fixtures import EXE, MANIFEST, serve
from http_fixtures import serving

from harness._contracts.manifest import Manifest, load_manifest
from harness._contracts.prefab import PrefabChecker
from harness._core.options import CheckOptions
from harness._core.session import CheckResult
from harness._core.sse import SSEDecoder, SSEEvent
from harness._gateway.server import (
    NOT_AN_ITERATOR_CODE,
    NOT_SERIALIZABLE_CODE,
    RAISED_CODE,
    GatewayOptions,
    build_app,
)
from harness._runners.http import run_url

pytestmark = pytest.mark.timeout(30)


def manifest() -> Manifest:
    m, found = load_manifest(MANIFEST)
    assert m is not None, found
    return m


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serving(build_app(manifest(), "gateway_fixtures")) as url:
        yield url


@pytest.fixture(scope="module")
def fast_beat() -> Iterator[str]:
    options = GatewayOptions(heartbeat=0.05, send_timestamps=True, retry_ms=250)
    with serving(build_app(manifest(), "gateway_fixtures", options)) as url:
        yield url


def invoke(base: str, name: str, inputs: Any = None, **kw: Any) -> httpx.Response:
    body = {} if inputs is None else {"inputs": inputs}
    return httpx.post(f"{base}/invoke/{name}", json=body, timeout=10.0, **kw)


def events(response: httpx.Response) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out = decoder.feed(response.content)
    decoder.finish()
    assert not decoder.truncated
    return out


def items(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in events(response)]


def check(url: str, **options: Any) -> CheckResult:
    return run_url(url, CheckOptions(**options), PrefabChecker())


def wait_for(path: Path, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.01)
    return False


# -- the stream ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["count", "acount"])
def test_invoke_when_sync_or_async_generator_then_sse_framed_with_ids_and_headers(
    base: str, name: str
) -> None:
    r = invoke(base, name, {"n": 2})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"
    assert r.content.startswith(b"retry: 3000\n\n")
    evs = events(r)
    assert [e.id for e in evs] == ["0", "1", "2", "3"]
    assert [json.loads(e.data)["type"] for e in evs] == ["start", "progress", "progress", "done"]
    assert b'id: 1\ndata: {"type": "progress", "data": {"current": 1, "total": 2}}\n\n' in r.content


@pytest.mark.parametrize("name", ["count", "acount", "echo"])
def test_invoke_when_function_conforms_then_check_passes_end_to_end(base: str, name: str) -> None:
    inputs = {"text": "héllo ✓"} if name == "echo" else {"n": 3}
    result = check(f"{base}/invoke/{name}", inputs=inputs)
    assert result.ok, result.violations
    assert result.violations == []


def test_invoke_when_optional_input_omitted_then_manifest_default_used(base: str) -> None:
    assert [i["type"] for i in items(invoke(base, "count", {}))].count("progress") == 3


def test_invoke_when_non_ascii_then_sent_as_utf8_not_escaped(base: str) -> None:
    r = invoke(base, "echo", {"text": "héllo ✓", "mode": "upper"})
    assert "HÉLLO ✓".encode() in r.content
    assert items(r)[1] == {"type": "content", "data": "HÉLLO ✓"}


@pytest.mark.parametrize("name", ["count", "acount"])
@pytest.mark.parametrize(
    ("n", "delay"), [(0, 0), (255, 0), (256, 0), (257, 0), (1000, 0), (40, 1e-4)]
)
def test_invoke_when_generator_yields_fast_then_every_event_once_in_order(
    base: str, name: str, n: int, delay: float
) -> None:
    evs = events(invoke(base, name, {"n": n, "delay": delay}))
    assert [e.id for e in evs] == [str(i) for i in range(n + 2)]
    currents = [json.loads(e.data)["data"].get("current") for e in evs[1:-1]]
    assert currents == list(range(1, n + 1))


@pytest.mark.parametrize("name", ["count", "acount"])
def test_invoke_when_generator_slow_then_each_event_sent_as_it_is_yielded(
    base: str, name: str
) -> None:
    arrivals = []
    body = {"inputs": {"n": 3, "delay": 0.2}}
    with (
        httpx.Client(timeout=10.0) as client,
        client.stream("POST", f"{base}/invoke/{name}", json=body) as r,
    ):
        for line in r.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) == 4
    assert all(g > 0.1 for g in gaps[:3]), gaps  # start, 1, 2, 3: each 0.2 s after the last


# -- the gateway keeps the contract when the function does not ---------------------------------


@pytest.mark.parametrize(
    ("name", "inputs", "expected_types", "data"),
    [
        ("raises", {"after": 3}, ["start", "content", "content", "error"], "ValueError: boom"),
        ("araises", {}, ["start", "error"], "KeyError: 'missing'"),
    ],
)
def test_invoke_when_generator_raises_then_one_final_error_event_with_code(
    base: str, name: str, inputs: dict[str, Any], expected_types: list[str], data: str
) -> None:
    r = invoke(base, name, inputs)
    assert r.status_code == 200
    got = items(r)
    assert [i["type"] for i in got] == expected_types
    assert got[-1] == {"type": "error", "data": data, "error_code": RAISED_CODE}
    assert [e.id for e in events(r)] == [str(i) for i in range(len(expected_types))]
    assert check(f"{base}/invoke/{name}", inputs=inputs).ok


@pytest.mark.parametrize("kind", ["datetime", "nan"])
def test_invoke_when_item_not_json_then_error_event_and_generator_stopped(
    base: str, kind: str
) -> None:
    got = items(invoke(base, "bad_item", {"kind": kind}))
    assert [i["type"] for i in got] == ["start", "error"]
    assert got[-1]["error_code"] == NOT_SERIALIZABLE_CODE
    assert got[-1]["data"].startswith("item #1 cannot be sent as JSON")


def test_invoke_when_function_returns_a_list_then_not_an_iterator_error_event(base: str) -> None:
    got = items(invoke(base, "not_iterator"))
    assert got == [
        {
            "type": "error",
            "data": "it returned list, not an iterator",
            "error_code": NOT_AN_ITERATOR_CODE,
        }
    ]


# -- requests the gateway refuses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "needle"),
    [
        ({}, "'text' is a required property"),
        ({"text": 5}, "inputs.text: 5 is not of type 'string'"),
        ({"text": "x" * 21}, "inputs.text: "),
        ({"text": "a", "mode": "loud"}, "inputs.mode: 'loud' is not one of ['plain', 'upper']"),
        ({"text": "a", "times": -1}, "inputs.times: -1 is less than the minimum of 0"),
        ({"text": "a", "colour": "red"}, "'colour' was unexpected"),
        ([1, 2], "inputs must be a JSON object, not list"),
    ],
)
def test_invoke_when_inputs_break_the_manifest_then_422_json_error(
    base: str, inputs: Any, needle: str
) -> None:
    r = httpx.post(f"{base}/invoke/echo", json={"inputs": inputs}, timeout=10.0)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert error["code"] == "INVALID_INPUTS"
    assert needle in error["message"]


def test_invoke_when_several_inputs_wrong_then_each_listed(base: str) -> None:
    error = invoke(base, "echo", {"text": 1, "times": 9}).json()["error"]
    assert len(error["details"]) == 2


@pytest.mark.parametrize(
    ("method", "path", "content", "status", "code"),
    [
        ("POST", "/invoke/nope", b"{}", 404, "UNKNOWN_FUNCTION"),
        ("POST", "/invoke/vanished", b"{}", 501, "FUNCTION_NOT_FOUND"),
        ("POST", "/invoke/echo", b"{not json", 400, "INVALID_BODY"),
        ("POST", "/invoke/echo", b"[1]", 400, "INVALID_BODY"),
        ("GET", "/invoke/echo", b"", 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/nowhere", b"", 404, "NOT_FOUND"),
    ],
)
def test_request_when_refused_then_json_error_with_code(
    base: str, method: str, path: str, content: bytes, status: int, code: str
) -> None:
    r = httpx.request(method, base + path, content=content, timeout=10.0)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message"]


def test_invoke_when_body_too_large_then_413(base: str) -> None:
    big = b'{"inputs": {"text": "' + b"x" * (11 << 20) + b'"}}'
    r = httpx.post(f"{base}/invoke/echo", content=big, timeout=20.0)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "BODY_TOO_LARGE"


def test_unknown_function_message_lists_the_known_ones(base: str) -> None:
    assert "count" in invoke(base, "cuont").json()["error"]["message"]


# -- other routes -------------------------------------------------------------------------------


def test_healthz_then_200_json(base: str) -> None:
    r = httpx.get(f"{base}/healthz", timeout=5.0)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "functions": 11}


@pytest.mark.parametrize("path", ["/", "/functions"])
def test_functions_then_the_manifest_function_list(base: str, path: str) -> None:
    listed = httpx.get(base + path, timeout=5.0).json()["functions"]
    assert [f["name"] for f in listed] == [f.name for f in manifest().functions]
    echo = next(f for f in listed if f["name"] == "echo")
    assert echo["streaming"] is True
    assert echo["url"] == "/invoke/echo"
    assert echo["parameters"][1] == {
        "name": "mode",
        "type": "string",
        "required": False,
        "enum": ["plain", "upper"],
    }


def test_invoke_when_not_streaming_then_json_result(base: str) -> None:
    r = invoke(base, "add", {"a": 2, "b": 3})
    assert r.status_code == 200
    assert r.json() == {"result": {"sum": 5}}


# -- heartbeats, timestamps, resume -------------------------------------------------------------


def test_invoke_when_generator_slow_then_heartbeat_comments_and_stream_still_conforms(
    fast_beat: str,
) -> None:
    r = invoke(fast_beat, "count", {"n": 1, "delay": 0.4})
    assert r.content.count(b": ping\n\n") >= 3
    assert r.content.startswith(b"retry: 250\n\n")
    assert check(f"{fast_beat}/invoke/count", inputs={"n": 1, "delay": 0.3}).ok


def test_invoke_when_send_timestamps_then_each_event_preceded_by_its_send_time(
    fast_beat: str,
) -> None:
    t0 = time.time()
    r = invoke(fast_beat, "count", {"n": 2})
    t1 = time.time()
    blocks = [b for b in r.content.decode().split("\n\n") if "data:" in b]
    assert len(blocks) == 4
    for i, block in enumerate(blocks):
        lines = block.split("\n")
        assert lines[0].startswith(": sent=")
        assert t0 <= float(lines[0].removeprefix(": sent=")) <= t1
        assert lines[1] == f"id: {i}"
    assert check(f"{fast_beat}/invoke/count", inputs={"n": 2}).ok


def test_invoke_when_last_event_id_then_continues_after_it_with_original_ids(base: str) -> None:
    r = invoke(base, "count", {"n": 3}, headers={"Last-Event-ID": "1"})
    evs = events(r)
    assert [e.id for e in evs] == ["2", "3", "4"]
    assert [json.loads(e.data)["type"] for e in evs] == ["progress", "progress", "done"]


@pytest.mark.parametrize("header", ["abc", "-1", ""])
def test_invoke_when_last_event_id_not_ours_then_starts_over(base: str, header: str) -> None:
    evs = events(invoke(base, "count", {"n": 1}, headers={"Last-Event-ID": header}))
    assert [e.id for e in evs] == ["0", "1", "2"]


@pytest.mark.parametrize("name", ["count", "acount", "raises"])
def test_resume_check_when_reconnecting_then_no_resume_violation(base: str, name: str) -> None:
    inputs = {"after": 4} if name == "raises" else {"n": 4}
    result = check(f"{base}/invoke/{name}", inputs=inputs, resume_after=2, max_retry_wait=0.1)
    assert result.ok, result.violations
    assert result.events == len(items(invoke(base, name, inputs)))
    assert "reconnect_ms" in result.extra


# -- disconnects --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["endless", "aendless"])
def test_client_disconnect_when_streaming_then_generator_closed_and_finally_runs(
    base: str, name: str, tmp_path: Path
) -> None:
    marker = tmp_path / "closed"
    body = {"inputs": {"marker": str(marker)}}
    with (
        httpx.Client(timeout=10.0) as client,
        client.stream("POST", f"{base}/invoke/{name}", json=body) as r,
    ):
        seen = 0
        for line in r.iter_lines():
            seen += line.startswith("data:")
            if seen == 5:
                assert not marker.exists()  # still connected: still running
                break  # leaving iter_lines closes the connection
    assert wait_for(marker), "the generator's finally did not run after the client left"


def test_client_disconnect_when_sync_step_blocks_then_closed_after_the_step(
    base: str, tmp_path: Path
) -> None:
    marker = tmp_path / "closed"
    body = {"inputs": {"marker": str(marker), "delay": 0.5}}
    with httpx.Client(timeout=10.0) as client:
        with client.stream("POST", f"{base}/invoke/endless", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    break  # the start event: the generator is now sleeping in its next step
        t0 = time.monotonic()
        assert wait_for(marker)
        assert time.monotonic() - t0 < 2.0


def test_sync_generator_when_blocking_then_event_loop_still_serves(
    base: str, tmp_path: Path
) -> None:
    body = {"inputs": {"marker": str(tmp_path / "m"), "delay": 1.0}}
    with (
        httpx.Client(timeout=10.0) as client,
        client.stream("POST", f"{base}/invoke/endless", json=body) as r,
    ):
        next(line for line in r.iter_lines() if line.startswith("data:"))
        t0 = time.monotonic()
        assert httpx.get(f"{base}/healthz", timeout=5.0).status_code == 200
        took = time.monotonic() - t0
    # Against the same request with nothing blocking, measured now (the machine may be busy):
    # a blocked event loop would answer after the generator's 1 s step.
    t0 = time.monotonic()
    assert httpx.get(f"{base}/healthz", timeout=5.0).status_code == 200
    ref = time.monotonic() - t0
    assert took < 0.5 + 3 * ref, (took, ref)


# -- stream-harness serve, as a subprocess ------------------------------------------------------


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), "serve", *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_serve_when_real_process_then_streams_and_closes_generator_on_disconnect(
    tmp_path: Path,
) -> None:
    tests = Path(__file__).parent
    marker = tmp_path / "closed"
    log = tmp_path / "serve.log"
    module = str(tests / "gateway_fixtures.py")
    with serve(MANIFEST, module, "--send-timestamps", log=log) as served:
        assert served.url.startswith("http://127.0.0.1:")
        r = invoke(served.url, "count", {"n": 2})
        assert r.content.count(b": sent=") == 4
        body = {"inputs": {"marker": str(marker)}}
        with (
            httpx.Client(timeout=10.0) as client,
            client.stream("POST", f"{served.url}/invoke/endless", json=body) as stream,
        ):
            next(line for line in stream.iter_lines() if line.startswith("data:"))
        assert wait_for(marker), served.output()
    assert "manifest.missing-function" in served.output()  # "vanished" is not in the module


def test_serve_when_manifest_invalid_then_rules_on_stderr_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text('{"functions": [ // a comment\n]}')
    r = run_serve(str(bad), "--module", "x.py")
    assert r.returncode == 1
    assert "manifest.invalid-json" in r.stderr
    assert "nothing served" in r.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("missing.json", "--module", "m.py"), "no such manifest file"),
        ((str(MANIFEST), "--module", "no/such/file.py"), "no such file"),
        ((str(MANIFEST), "--module", "gateway_fixtures", "--port", "99999"), "must be 0..65535"),
        ((str(MANIFEST),), "--module"),
    ],
)
def test_serve_when_usage_error_then_one_line_and_exit_2(
    args: tuple[str, ...], needle: str
) -> None:
    r = run_serve(*args)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
