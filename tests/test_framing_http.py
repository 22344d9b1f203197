"""check over real HTTP (uvicorn on 127.0.0.1) and recorded files, in each framing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from harness._core.options import CheckOptions
from harness._runners.check import check
from tests.http_fixtures import serving

EXE = str(Path(sys.executable).parent / "stream-harness")
TOKENS = ["Hel", "lo", ", ", "世界", "!"]
LINES_CONTRACT = """\
version: 1
name: lines
summary: NDJSON tokens, then one done line
framing: ndjson
headers: {X-Accel-Buffering: "no"}
type: {from: /type}
types:
  token:
    schema: {type: object, required: [type, text], properties: {text: {type: string}}}
  done:
    schema: {type: object, required: [type]}
order:
  pattern: token* done
"""


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _streaming(parts: list[bytes], media_type: str, **headers: str) -> Response:
    headers = {"Cache-Control": "no-cache", **headers}
    return StreamingResponse(_chunks(parts), media_type=media_type, headers=headers)


async def plain(request: Request) -> Response:
    """A FastAPI-style StreamingResponse of bare characters."""
    return _streaming([t.encode() for t in TOKENS], "text/plain")


def _ndjson_lines(broken: bool) -> list[bytes]:
    lines = [json.dumps({"type": "token", "text": t}).encode() + b"\n" for t in TOKENS]
    if broken:
        lines[1] = b"data: not json\r\n"
    last = json.dumps({"type": "done"}).encode()  # no final line end: JSON Lines allows it
    return [*lines, last]


async def ndjson(request: Request) -> Response:
    broken = request.query_params.get("broken") == "1"
    headers = {} if request.query_params.get("no_header") else {"X-Accel-Buffering": "no"}
    return _streaming(_ndjson_lines(broken), "application/x-ndjson", **headers)


async def sse_no_data(request: Request) -> Response:
    return _streaming([b"Hello\n\n", b"world\n\n"], "text/event-stream")


async def sse_tokens(request: Request) -> Response:
    return _streaming([b"data: Hel\n\n", b"data: lo\n\n"], "text/event-stream")


async def cacheable(request: Request) -> Response:
    """Tokens served without Cache-Control: only the warning http.cache-control."""
    return StreamingResponse(_chunks([b"Hel", b"lo"]), media_type="text/plain")


APP = Starlette(
    routes=[
        Route("/plain", plain),
        Route("/ndjson", ndjson),
        Route("/sse-no-data", sse_no_data),
        Route("/sse", sse_tokens),
        Route("/cacheable", cacheable),
    ]
)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serving(APP) as url:
        yield url


@pytest.fixture
def lines_contract(tmp_path: Path) -> str:
    path = tmp_path / "lines.yaml"
    path.write_text(LINES_CONTRACT)
    return str(path)


def rules(target: str, contract: str) -> list[str]:
    return [v.rule for v in check(target, CheckOptions(contract=contract)).violations]


def test_plain_text_stream_when_text_contract_then_each_chunk_a_token(base: str) -> None:
    result = check(f"{base}/plain", CheckOptions(contract="text"))
    assert result.violations == []
    assert "".join(e.preview for e in result.transcript) == "".join(TOKENS)
    assert result.events >= 1


def test_plain_text_stream_when_sse_only_contract_then_content_type(base: str) -> None:
    assert "http.content-type" in rules(f"{base}/plain", "prefab")


def test_sse_tokens_when_text_contract_then_still_conform(base: str) -> None:
    assert rules(f"{base}/sse", "text") == []


def test_sse_body_without_data_lines_then_no_events_and_unknown_field(base: str) -> None:
    assert sorted(rules(f"{base}/sse-no-data", "text")) == ["sse.no-events", "sse.unknown-field"]


def test_ndjson_stream_when_conforming_then_no_violation(base: str, lines_contract: str) -> None:
    result = check(f"{base}/ndjson", CheckOptions(contract=lines_contract))
    assert result.violations == []
    assert result.events == len(TOKENS) + 1


def test_ndjson_stream_when_line_not_json_then_ndjson_not_json(
    base: str, lines_contract: str
) -> None:
    assert rules(f"{base}/ndjson?broken=1", lines_contract) == ["ndjson.not-json"]


def test_ndjson_stream_when_required_header_missing_then_http_header(
    base: str, lines_contract: str
) -> None:
    result = check(f"{base}/ndjson?no_header=1", CheckOptions(contract=lines_contract))
    assert [(v.rule, v.message) for v in result.violations] == [
        (
            "http.header",
            "the response has no x-accel-buffering header; the contract requires "
            "x-accel-buffering: no",
        )
    ]


def test_sse_stream_when_ndjson_contract_then_content_type_names_ndjson(
    base: str, lines_contract: str
) -> None:
    result = check(f"{base}/sse", CheckOptions(contract=lines_contract))
    messages = [v.message for v in result.violations if v.rule == "http.content-type"]
    assert len(messages) == 1
    assert messages[0].endswith("; this contract's streams are application/x-ndjson")


@pytest.mark.parametrize("suffix", [".ndjson", ".jsonl"])
def test_recorded_ndjson_file_when_checked_then_read_as_lines(
    tmp_path: Path, lines_contract: str, suffix: str
) -> None:
    path = tmp_path / f"stream{suffix}"
    path.write_bytes(b"".join(_ndjson_lines(broken=False)).replace(b"\n", b"\r\n"))
    proc = subprocess.run(
        [EXE, "check", str(path), "--contract", lines_contract],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_missing_ndjson_recording_then_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [EXE, "check", str(tmp_path / "gone.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no such file" in proc.stderr


# -- load: the Locust user's stream reader, on real sockets ------------------------------------


class _Sink:
    def gaps(self, first_ms: float, zeros: int) -> None:
        pass

    def server_delays(self, values_ms: list[float]) -> None:
        pass

    def events(self, n: int, at: float) -> None:
        pass


def load_stream(url: str, contract: str) -> tuple[int, list[str]]:
    from harness._load._client import Connection, parse_target
    from harness._load._stream import StreamSpec, run_stream

    t = parse_target(url)
    result = run_stream(
        StreamSpec(url, contract=contract),
        lambda timeout: Connection(t, timeout),
        _Sink(),
        authority=t.authority,
        path=t.path,
    )
    return result.events, [v.rule for v in result.violations]


def test_load_stream_when_ndjson_then_read_by_the_contracts_framing(
    base: str, lines_contract: str
) -> None:
    assert load_stream(f"{base}/ndjson", lines_contract) == (len(TOKENS) + 1, [])
    assert load_stream(f"{base}/ndjson?broken=1", lines_contract)[1] == ["ndjson.not-json"]
    assert load_stream(f"{base}/ndjson?no_header=1", lines_contract)[1] == ["http.header"]


def test_load_stream_when_plain_text_then_text_contract_reads_tokens(base: str) -> None:
    events, found = load_stream(f"{base}/plain", "text")
    assert events >= 1 and found == []


def test_load_stream_when_strict_then_a_warning_fails_the_stream(base: str) -> None:
    from harness._load._client import Connection, parse_target
    from harness._load._stream import StreamSpec, run_stream

    t = parse_target(f"{base}/cacheable")
    results = [
        run_stream(
            StreamSpec(f"{base}/cacheable", contract="text", strict=s),
            lambda timeout: Connection(t, timeout),
            _Sink(),
            authority=t.authority,
            path=t.path,
        )
        for s in (False, True)
    ]
    assert [r.ok for r in results] == [True, False]
    assert results[1].failed_rules == ["http.cache-control"]


def test_plain_text_stream_when_sse_only_contract_then_no_events_says_the_body_was_read(
    base: str,
) -> None:
    """A text/plain body checked as SSE: besides the Content-Type, the body is not ignored --
    it had bytes but no event, and the message says so (in check and under load alike)."""
    assert sorted(rules(f"{base}/plain", "prefab")) == ["http.content-type", "sse.no-events"]
    events, found = load_stream(f"{base}/plain", "prefab")
    assert (events, sorted(found)) == (0, ["http.content-type", "sse.no-events"])
