"""``make bench`` section ``llm``: LLM metrics against a stub that knows its truth.

The stub (``tests/llm_stub.py``, a process of its own) is OpenAI-compatible: a role-only chunk
at once (not a token), the first token 300 ms after the request, then one every 20 ms, 64
tokens, a usage chunk, ``[DONE]``; its error variant ends every stream in an in-band
``{"error": ...}`` after HTTP 200.  A real ``stream-harness load --contract openai-chat`` run at
1, 100 and 1000 concurrent streams gives measured minus true for ``first_content_ms`` (TTFT),
``tpot_ms`` and ``output_tokens``, and the error variant's ``error_rate`` (must be 1.0).
Two truths: the stub's schedule (what a user of the endpoint was promised: its own lateness
under load, one asyncio loop writing to a thousand sockets, counts against it), and, per stream,
the time the stub actually wrote each token (``sid=`` stamps, joined with the load user's
``--sse-trace`` rows on ``CLOCK_MONOTONIC``, one clock for every process on the machine): that
one is the harness's own error.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STUB = ROOT / "tests" / "llm_stub.py"
FIRST_MS, GAP_MS, TOKENS = 300, 20, 64
TRUE_TPOT_MS = GAP_MS  # (end - first token) / (tokens - 1), the tail being the usage chunk
Row = tuple[str, str, str, str]


@contextlib.contextmanager
def stub_server() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(STUB), "--seconds", "900"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the LLM stub did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1/chat/completions"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()


def run_load(url: str, users: int, seconds: float, processes: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-m", "harness._cli.main", "load", url, "--contract",
                "openai-chat", "--users", str(users), "--spawn-rate", str(min(users, 500)),
                "--run-time", f"{seconds:g}s", "--processes", str(processes),
                "--format", "json", "--no-report"]  # fmt: skip
        r = subprocess.run(
            argv, cwd=tmp, capture_output=True, text=True, timeout=seconds + 180, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        return json.loads(r.stdout) if r.stdout.strip() else {}


def run_traced(url: str, query: str, users: int, seconds: float) -> tuple[list[float], list[float]]:
    """Per-stream error against what the stub wrote: (first-token arrival minus its write, in
    ms; measured TPOT minus the written one), from a Locust run with --sse-trace."""
    from bench.load_accuracy import LOCUSTFILE

    base, path = url.split("/v1/", 1)
    with tempfile.TemporaryDirectory() as tmp:
        trace = str(Path(tmp) / "trace")
        argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "Steady",
                "--host", base, "--sse-path", f"/v1/{path}{query}", "--sse-contract",
                "openai-chat", "-u", str(users), "-r", str(min(users, 500)),
                "--sse-run-time", f"{seconds:g}", "-t", f"{int(seconds) + 10}s",
                "--stop-timeout", "0", "--only-summary", "--sse-trace", trace]  # fmt: skip
        subprocess.run(argv, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=seconds + 120, check=False, stdin=subprocess.DEVNULL)  # fmt: skip
        rows = [r for f in Path(tmp).glob("trace.*.json") for r in json.loads(f.read_text())]
    with urllib.request.urlopen(f"{base}/stats", timeout=30) as resp:
        sends = json.loads(resp.read())["sends"]
    ttft, tpot = [], []
    for r in rows:
        written = sends.get(r["sid"])
        if not written or r.get("first_content_ms") is None:
            continue
        ttft.append((r["start"] + r["first_content_ms"] / 1000.0 - written[0]) * 1000.0)
        if r.get("tpot_ms") is not None and len(written) > 1:
            truth = (written[-1] - written[0]) * 1000.0 / (len(written) - 1)
            tpot.append(r["tpot_ms"] - truth)
    return ttft, tpot


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _d(m: dict[str, Any], name: str, key: str) -> float | None:
    value = m.get(name, {}).get(key)
    return None if value is None else float(value)


def _err(measured: float | None, truth: float) -> str:
    return "-" if measured is None else f"{measured - truth:+.2f} ms"


def section_llm(repeat: int) -> list[Row]:
    del repeat  # one run per size: each takes seconds of wall time
    rows: list[Row] = []
    query = f"?first_ms={FIRST_MS}&gap_ms={GAP_MS}&tokens={TOKENS}"
    with stub_server() as url:
        for users, processes in ((1, 1), (100, 1), (1000, 2)):
            seconds = 4.0 if users < 1000 else 6.0
            v = run_load(url + query, users, seconds, processes)
            m = v.get("metrics", {})
            if not m:
                rows.append((f"llm @{users} streams", "no data", "", "run failed"))
                continue
            goal = "(goal ≤ 2 ms p99)" if users == 100 else ""
            p50, p99 = _d(m, "first_content_ms", "p50"), _d(m, "first_content_ms", "p99")
            rows.append((f"llm @{users}: TTFT err p50/p99",
                         f"{_err(p50, FIRST_MS)} / {_err(p99, FIRST_MS)}", "", goal))  # fmt: skip
            t50, t99 = _d(m, "tpot_ms", "p50"), _d(m, "tpot_ms", "p99")
            tpot = f"{_err(t50, TRUE_TPOT_MS)} / {_err(t99, TRUE_TPOT_MS)}"
            rows.append((f"llm @{users}: TPOT err p50/p99", tpot, "", ""))
            lo, hi = _d(m, "output_tokens", "min"), _d(m, "output_tokens", "max")
            exact = lo == hi == TOKENS
            counted = "-" if lo is None or hi is None else f"{lo:g}..{hi:g} (true {TOKENS})"
            source = m.get("output_tokens_source") or ""
            rows.append((f"llm @{users}: output_tokens", counted, source,
                         "exact" if exact else "NOT exact"))  # fmt: skip
            rows.append((f"llm @{users}: streams, warnings", str(v.get("requests")),
                         "", "; ".join(v.get("warnings", []))[:120]))  # fmt: skip
            if users <= 100:  # against what the stub really wrote, stream by stream
                ttft, tpot = run_traced(url, query, users, seconds)
                a50, a99 = _pct(ttft, 50), _pct(ttft, 99)
                rows.append((f"llm @{users}: TTFT err vs written p50/p99",
                             f"{_err(a50, 0)} / {_err(a99, 0)}", f"{len(ttft)} streams",
                             "(goal ≤ 2 ms p99)" if users == 100 else ""))  # fmt: skip
                b50, b99 = _pct(tpot, 50), _pct(tpot, 99)
                rows.append((f"llm @{users}: TPOT err vs written p50/p99",
                             f"{_err(b50, 0)} / {_err(b99, 0)}", "", ""))  # fmt: skip
        v = run_load(url + query + "&error=overloaded_error&error_after=3", 10, 3.0)
        rate = v.get("metrics", {}).get("error_rate")
        rows.append(("llm error variant: error_rate", f"{rate}",
                     json.dumps(v.get("metrics", {}).get("errors_by_code", {})),
                     "must be 1.0" + (" ✓" if rate == 1.0 else " ✗")))  # fmt: skip
    return rows
