"""timing.buffered against real nginx: Debian's stock ``proxy_buffering on`` holds the whole
response back -- the headers too -- and both `check` and `load` must say so; ``proxy_buffering
off`` and ``X-Accel-Buffering: no`` must not be flagged.  Skips (and says why) without nginx."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import serving
from nginx_fixtures import nginx_in_front, upstream_app

EXE = [sys.executable, "-m", "harness._cli.main"]

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def nginx() -> Iterator[str]:
    with serving(upstream_app()) as base, nginx_in_front(base.split("//")[1].rstrip("/")) as url:
        yield url


def _run(tmp: Path, *args: str) -> tuple[int, Any, str]:
    r = subprocess.run(
        [*EXE, *args, "--format", "json", "--no-report"],
        capture_output=True, text=True, timeout=90, cwd=tmp, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr


def _rules(verdict: dict[str, Any]) -> set[str]:
    return {v["rule"] for v in verdict["violations"]}


def test_check_through_nginx_when_buffering_on_then_timing_buffered(
    nginx: str, tmp_path: Path
) -> None:
    code, v, err = _run(tmp_path, "check", f"{nginx}/on/s")
    assert code == 0, err  # a warning: the stream itself conforms
    assert _rules(v) == {"timing.buffered"}, v["violations"]
    # The headers were held with the events: ttfb is the end of the stream, not a fast head.
    assert v["timing"]["ttfb_ms"] > 500
    (msg,) = [x["message"] for x in v["violations"]]
    assert "headers" in msg and "proxy_buffering off" in msg


@pytest.mark.parametrize("path", ["/off/s", "/on/s?accel=no"])
def test_check_through_nginx_when_not_buffering_then_clean(
    nginx: str, tmp_path: Path, path: str
) -> None:
    code, v, err = _run(tmp_path, "check", nginx + path)
    assert code == 0 and v["violations"] == [], (err, v)
    assert v["timing"]["ttfb_ms"] < 200  # the head came at once


def test_load_through_nginx_when_buffering_on_then_every_stream_counted_buffered(
    nginx: str, tmp_path: Path
) -> None:
    code, v, err = _run(tmp_path, "load", f"{nginx}/on/s", "--users", "2", "--run-time", "3s",
                        "--threshold", "buffered_streams<1")  # fmt: skip
    assert code == 1, err
    assert v["requests"] >= 2
    rules = {x["rule"]: x for x in v["violations"]}
    assert (
        set(rules) == {"timing.buffered"} and rules["timing.buffered"]["streams"] == v["requests"]
    )
    assert v["metrics"]["buffered_streams"] == v["requests"]


def test_load_through_nginx_when_buffering_off_then_no_stream_buffered(
    nginx: str, tmp_path: Path
) -> None:
    code, v, err = _run(tmp_path, "load", f"{nginx}/off/s", "--users", "2", "--run-time", "2s",
                        "--threshold", "buffered_streams<1")  # fmt: skip
    assert code == 0, err
    assert v["violations"] == [] and v["metrics"]["buffered_streams"] == 0
