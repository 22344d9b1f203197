"""Hostile targets end in a verdict: a raw-socket server on 127.0.0.1 misbehaves one way per
case, and ``stream-harness check`` must answer with the right exit code, the rule and a message a
person understands on one line -- no traceback, no "internal error", within its timeouts and in
bounded memory."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile_servers import (
    GOOD_BODY,
    RESET,
    SSE_HEAD,
    Reply,
    chunked,
    fixed,
    gzip_gzip_bomb,
    hostile_server,
)

EXE = Path(sys.executable).parent / "stream-harness"

pytestmark = pytest.mark.timeout(120)


def _encoded(encoding: bytes, body: bytes) -> Reply:
    head = SSE_HEAD + b"Content-Encoding: " + encoding + b"\r\nContent-Length: %d\r\n\r\n"
    return fixed(head % len(body) + body)


CASES: dict[str, tuple[Reply, str, str]] = {
    # name: (what the server sends, the rule, words the message must hold)
    "garbage-gzip": (_encoded(b"gzip", b"x" * 40), "http.decoding", "Content-Encoding: gzip"),
    "garbage-deflate": (_encoded(b"deflate", b"x" * 40), "http.decoding", "deflate"),
    "garbage-br": (_encoded(b"br", b"x" * 40), "http.decoding", "Content-Encoding: br"),
    "unknown-coding": (_encoded(b"zork", b"x" * 40), "http.decoding", "'zork'"),
    "gzip-gzip-bomb": (
        _encoded(b"gzip, gzip", gzip_gzip_bomb()),
        "http.decompression-bomb",
        "decompression bomb",
    ),
    "10MB-header-line": (
        fixed(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (10 << 20) + b"\r\n\r\n"),
        "http.protocol",
        "response head is larger than",
    ),
    "100000-headers": (
        fixed(b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 100_000 + b"\r\n"),
        "http.protocol",
        "response head is larger than",
    ),
    "no-blank-line": (
        fixed(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"),
        "http.protocol",
        "closed before the response head was complete",
    ),
    "http-0.9-body": (fixed(GOOD_BODY), "http.protocol", "status line (got 'event: progress')"),
    "garbage-status-line": (fixed(b"HELLO THERE\r\n\r\n"), "http.protocol", "'HELLO THERE'"),
    "101-without-upgrade": (
        fixed(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
        "http.protocol",
        "101 Switching Protocols, but the request asked for no upgrade",
    ),
    "304": (fixed(b"HTTP/1.1 304 Not Modified\r\n\r\n"), "http.status", "revalidation"),
    "cut-chunked-body": (
        fixed(SSE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(GOOD_BODY)[:40]),
        "http.incomplete-body",
        "chunked body had no last chunk",
    ),
    # A reset is no end of a body, even of one that ends at the close (a crashed backend).
    "reset-close-delimited": (
        fixed(SSE_HEAD + b"Connection: close\r\n\r\n" + GOOD_BODY[:60], 0.2, RESET),
        "http.incomplete-body",
        "the connection was reset",
    ),
    "reset-chunked": (
        fixed(
            SSE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(GOOD_BODY)[:60], 0.2, RESET
        ),
        "http.incomplete-body",
        "the connection was reset",
    ),
    "cut-content-length": (
        fixed(SSE_HEAD + b"Content-Length: 1000\r\n\r\n" + GOOD_BODY[:40]),
        "http.incomplete-body",
        "Content-Length",
    ),
}


def _check(url: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.monotonic()
    r = subprocess.run(
        [
            str(EXE),
            "check",
            url,
            "--no-report",
            "--format",
            "json",
            "--total-timeout",
            "20",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return r, time.monotonic() - t, rss_kb if rss_kb > before else 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_when_target_is_hostile_then_a_violation_with_a_readable_message(name: str) -> None:
    reply, rule_id, words = CASES[name]
    with hostile_server(reply) as url:
        r, seconds, rss_kb = _check(url)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    verdict = json.loads(r.stdout)
    found = [v for v in verdict["violations"] if v["rule"] == rule_id]
    assert found, verdict["violations"]
    message = found[0]["message"]
    assert words in message and "\n" not in message
    assert "h11" not in message and "bytearray" not in message and "_SWITCH" not in message
    assert seconds < 30
    assert rss_kb < 300 * 1024  # a 1 GB bomb, a 10 MB head: never held whole


def test_check_when_event_id_is_not_ascii_then_resume_bad_id_not_a_usage_error() -> None:
    body = "id: \u00e9t\u00e9\n".encode() + GOOD_BODY
    with hostile_server(fixed(SSE_HEAD + b"\r\n" + body)) as url:
        r, _, _ = _check(url, "--resume-after", "1")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "--header" not in r.stderr
    rules = {v["rule"]: v["message"] for v in json.loads(r.stdout)["violations"]}
    assert "'\u00e9t\u00e9'" in rules["resume.bad-id"]


def test_check_when_recording_outlasts_total_timeout_then_timeout_total_and_exit_at_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "long.sse"
    event = b'data: {"type": "content", "data": "tok"}\n\n'
    path.write_bytes(b'data: {"type": "start", "data": {}}\n\n' + event * 2_000_000)
    argv = [str(EXE), "check", str(path), "--no-report", "--format", "json"]
    t = time.monotonic()
    r = subprocess.run(
        [*argv, "--total-timeout", "0.3", "--max-events", "10000000"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    seconds = time.monotonic() - t
    assert r.returncode == 1, r.stderr
    verdict = json.loads(r.stdout)
    assert [v["rule"] for v in verdict["violations"]] == ["timeout.total"]
    assert 0 < verdict["events"] < 2_000_001
    assert seconds < 20  # the whole process, start-up included: it stopped, and exited


def test_check_when_body_is_an_html_page_then_content_type_but_no_cache_control_warning() -> None:
    page = b"<html><body>Service Unavailable</body></html>"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
    with hostile_server(fixed(head % len(page) + page)) as url:
        r, _, _ = _check(url)
    assert r.returncode == 1, r.stderr
    rules = {v["rule"] for v in json.loads(r.stdout)["violations"]}
    assert "http.content-type" in rules and "http.cache-control" not in rules


# -- hostile generators -----------------------------------------------------------------------
# A module:function target runs in the generator worker; these attack the worker, its pipe and
# the harness behind it.  Each must end in one gen.* violation, quickly and in bounded memory.

GEN_TARGETS = Path(__file__).parent / "gen_targets"

GEN_CASES: dict[str, tuple[str, dict[str, object], str, str]] = {
    # name: (function, or file:function, inputs, the rule, words the message must hold)
    "1GiB-of-json-from-8MB": (
        "hostile_huge_item",
        {"kind": "shared"},
        "gen.item-too-large",
        "item #0 (dict) is at least 1048",
    ),
    "two-byte-characters-over-the-limit": (
        "hostile_huge_item",
        {"kind": "bytes-like-text", "mib": 1},
        "gen.item-too-large",
        "item #0 (str) is 1048578 bytes of JSON, more than --max-event-bytes = 1048576",
    ),
    "lifts-the-memory-cap": (
        "hostile_lifts_memory_cap",
        {},
        "gen.memory",
        "the generator exceeded the worker's memory cap of 4096 MB: MemoryError at",
    ),
    "garbage-in-the-protocol-pipe": (
        "hostile_writes_protocol_garbage",
        {},
        "gen.crashed",
        "the worker's output is not the harness protocol: 'garbage'",
    ),
    "binary-item-in-the-protocol-pipe": (
        "hostile_writes_binary_item",
        {},
        "gen.crashed",
        "an item that is not UTF-8",
    ),
    "256MiB-line-in-the-protocol-pipe": (
        "hostile_floods_protocol_pipe",
        {},
        "gen.crashed",
        "not the harness protocol: a line of more than",
    ),
    "kill-0": (
        "hostile_kills_own_group",
        {},
        "gen.crashed",
        "the worker process was killed by SIGKILL",
    ),
    "kill-the-supervisor": (
        "hostile_kills_supervisor",
        {},
        "gen.crashed",
        "the worker process was killed by SIGKILL",
    ),
    "exits-while-imported": (
        "hostile_import_exits.py:stream",
        {},
        "gen.crashed",
        "the worker process exited with code 5 while loading the target",
    ),
    "garbage-while-imported": (
        "hostile_import_garbage.py:stream",
        {},
        "gen.crashed",
        "the worker's output is not the harness protocol: 'call me maybe'",
    ),
    "closes-the-protocol-pipe": (
        "hostile_closes_protocol_pipe",
        {},
        "gen.crashed",
        "the worker process exited with code 1 after 0 items",
    ),
    "killpg-of-its-parent": (
        "hostile_kills_parents_group",
        {},
        "gen.crashed",
        "the worker process was killed by SIGKILL",
    ),
}


def _check_generator(
    function: str, inputs: dict[str, object]
) -> tuple[subprocess.CompletedProcess[str], float, int]:
    target = function if ":" in function else f"hostile_generators.py:{function}"
    return _check(f"{GEN_TARGETS / target}", "--inputs", json.dumps(inputs))


def _one_violation(r: subprocess.CompletedProcess[str], rule_id: str) -> str:
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    verdict = json.loads(r.stdout)
    assert [v["rule"] for v in verdict["violations"]] == [rule_id], verdict["violations"]
    message: str = verdict["violations"][0]["message"]
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", sorted(GEN_CASES))
def test_check_when_generator_is_hostile_then_one_gen_violation(name: str) -> None:
    function, inputs, rule_id, words = GEN_CASES[name]
    r, seconds, rss_kb = _check_generator(function, inputs)
    assert words in _one_violation(r, rule_id)
    assert seconds < 30
    assert rss_kb < 300 * 1024  # the harness and the worker: no gigabyte frame, no 256 MiB line


def test_check_when_generator_yields_a_512MiB_string_then_no_second_copy_is_made() -> None:
    r, seconds, rss_kb = _check_generator("hostile_huge_item", {"kind": "string", "mib": 512})
    assert "is at least 536870" in _one_violation(r, "gen.item-too-large")
    assert seconds < 30
    assert rss_kb < (512 + 200) * 1024  # the worker holds the string once; no JSON text of it


def test_check_when_generator_leaves_a_daemon_and_dies_then_crashed_and_daemon_killed(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "daemon.pid"
    r, seconds, _ = _check_generator("hostile_daemon_then_crash", {"pidfile": str(pidfile)})
    # The daemon holds the worker's pipes open: only the worker's exit says it is gone.
    assert "the worker process exited with code 7 after 0 items" in _one_violation(r, "gen.crashed")
    assert seconds < 15  # not a timeout (--total-timeout is 20 s)
    daemon = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(daemon) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(daemon)  # in a session of its own, and still killed with the worker


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "zombie" not in status


def test_check_when_generator_prints_protocol_lines_to_stdout_then_a_clean_run() -> None:
    r, _, _ = _check_generator("hostile_prints_to_stdout", {})
    assert r.returncode == 0, (r.stdout, r.stderr)
    verdict = json.loads(r.stdout)  # stdout holds the verdict alone: the prints went to stderr
    assert verdict["violations"] == [] and verdict["events"] == 2
    assert 'item {"type": "error"}' in r.stderr and "garbage" in r.stderr
