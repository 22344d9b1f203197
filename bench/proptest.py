"""Property testing: how long 100 examples of a correct function take, and how soon each of the
buggy example's planted bugs is found and shrunk.

    python -m bench.proptest            # this section alone
    python -m bench proptest            # through the bench runner (once registered there)

"ours" is ``run_manifest`` -- each example in the long-lived worker process (or over HTTP),
checked by the prefab contract.  The peer is the naive in-process loop a team would write
first: the same Hypothesis strategy, ``list(fn(**inputs))`` in the test process, every event
through ``json.dumps`` and ``jsonschema``.  It has no process isolation, no timeouts and no
shrinking across bugs, so it is a floor, not a rival: the ratio says what isolation costs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

from harness._contracts.manifest import FunctionSpec, Manifest, load_manifest
from harness._core.options import CheckOptions
from harness._core.schemas import schema_validator
from harness._proptest import (
    ExampleRun,
    FunctionStarted,
    inputs_strategy,
    json_text,
    run_manifest,
)
from harness._runners.gen import GeneratorWorker

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "examples" / "prefab-manifest.json"
GOOD = ROOT / "examples" / "prefab_good.py"
BUGGY = ROOT / "examples" / "prefab_buggy.py"
EXAMPLES = 100
SEED = 20240611

#: A correct function that does no simulated work: what an example costs the harness itself.
_TRIVIAL_MODULE = """
def count(text: str, n: int = 3):
    yield {"type": "start", "data": {"total": 3}}
    for i in range(1, 4):
        yield {"type": "progress", "data": {"current": i, "total": 3}}
    yield {"type": "done", "data": {"chars": len(text)}}
"""
_TRIVIAL_MANIFEST = {
    "functions": [
        {
            "name": "count",
            "streaming": True,
            "parameters": [
                {"name": "text", "type": "string", "required": True},
                {"name": "n", "type": "integer"},
            ],
        }
    ]
}

Row = tuple[str, str, str, str]


def section_proptest(repeat: int) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, GeneratorWorker() as worker:
        trivial_manifest, trivial_module = _trivial(Path(tmp))
        rows.append(_correct(trivial_manifest, trivial_module, "count", worker, repeat))
        for name in ("batch_process", "chat_stream", "process_lines"):
            rows.append(_correct(MANIFEST, GOOD, name, worker, repeat))
        rows += _bugs(worker)
        rows += _http(trivial_manifest, trivial_module, "count", worker, repeat)
    return rows


# -- correct functions ------------------------------------------------------------------------


def _correct(manifest: Path, module: Path, name: str, worker: GeneratorWorker, repeat: int) -> Row:
    runs: list[tuple[float, int]] = []
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        result = run_manifest(
            manifest,
            CheckOptions(),
            module=str(module),
            functions=[name],
            max_examples=EXAMPLES,
            seed=SEED,
            database=None,
            worker=worker,
        )
        elapsed = time.perf_counter() - started
        assert result.ok, f"{name} must conform for the benchmark"
        runs.append((elapsed, result.functions[0].examples))
    ours, examples = min(runs)
    spec = _spec(manifest, name)
    peer = min(_naive(spec, _import(module), name) for _ in range(max(1, repeat)))
    return (
        f"proptest {name}: {EXAMPLES} examples, worker",
        f"{ours:.2f} s ({ours / examples * 1000:.1f} ms/example)",
        f"{peer:.2f} s in-process",
        f"{ours / peer:.2f}x (goal: a few seconds)",
    )


def _naive(spec: FunctionSpec, module: ModuleType, name: str) -> float:
    """The in-process floor: the same strategy, list(fn(**inputs)), jsonschema per event."""
    validator = schema_validator("prefab/event.schema.json")
    fn = getattr(module, name)

    @settings(
        max_examples=EXAMPLES, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(inputs_strategy(spec))
    def naive(inputs: dict[str, Any]) -> None:
        for item in fn(**json.loads(json.dumps(inputs))):
            validator.validate(json.loads(json.dumps(item, allow_nan=False)))

    test: Callable[[], None] = hypothesis_seed(SEED)(naive)
    started = time.perf_counter()
    test()
    return time.perf_counter() - started


# -- the buggy example's bugs -----------------------------------------------------------------


def _bugs(worker: GeneratorWorker) -> list[Row]:
    """Per planted bug: the time and the example at which its rule first failed, and the
    minimal input it was shrunk to (the function's whole test, shrinking included, in the
    last column)."""
    first: dict[tuple[str, str], tuple[float, int]] = {}
    started: dict[str, float] = {}

    def on_event(event: object) -> None:
        if isinstance(event, ExampleRun) and event.rule is not None:
            key = (event.name, event.rule)
            if key not in first:
                first[key] = (time.perf_counter() - started[event.name], event.runs)
        elif isinstance(event, FunctionStarted):
            started[event.name] = time.perf_counter()

    result = run_manifest(
        MANIFEST,
        CheckOptions(),
        module=str(BUGGY),
        max_examples=EXAMPLES,
        seed=SEED,
        database=None,
        worker=worker,
        on_event=on_event,
    )
    rows: list[Row] = []
    for report in result.functions:
        for failure in report.failures:
            found_s, example = first[(report.name, failure.rule)]
            rows.append(
                (
                    f"find {report.name}: {failure.rule}",
                    f"{found_s:.2f} s (example #{example})",
                    _clip(json_text(failure.inputs)),
                    f"shrunk; whole test {report.duration_ms / 1000:.1f} s",
                )
            )
    return rows


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# -- over HTTP --------------------------------------------------------------------------------


def _http(
    manifest: Path, module: Path, name: str, worker: GeneratorWorker, repeat: int
) -> list[Row]:
    """The trivial function behind ``stream-harness serve`` (a separate process), against
    the same function in the worker."""
    try:
        server = _serve(manifest, module)
    except RuntimeError as e:
        return [(f"proptest {name}: {EXAMPLES} examples, HTTP", "n/a", "", str(e))]
    with server as url:
        times = []
        for _ in range(max(1, repeat)):
            started = time.perf_counter()
            result = run_manifest(
                manifest,
                CheckOptions(),
                url=url,
                functions=[name],
                max_examples=EXAMPLES,
                seed=SEED,
                database=None,
                invalid_inputs=False,
            )
            times.append((time.perf_counter() - started, result.functions[0].examples))
            assert result.ok, "the served function must conform for the benchmark"
    ours, examples = min(times)
    local = _correct(manifest, module, name, worker, 1)[1]
    return [
        (
            f"proptest {name}: {EXAMPLES} examples, HTTP",
            f"{ours:.2f} s ({ours / examples * 1000:.1f} ms/example)",
            f"worker: {local}",
            "stream-harness serve on loopback",
        )
    ]


@contextlib.contextmanager
def _serving(proc: subprocess.Popen[bytes], url: str) -> Iterator[str]:
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serve(manifest: Path, module: Path) -> contextlib.AbstractContextManager[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "stream-harness"
    cmd = [str(exe), "serve", str(manifest), "--module", str(module), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("`stream-harness serve` is not available")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return _serving(proc, f"http://127.0.0.1:{port}")
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("`stream-harness serve` did not start")


# -- helpers ----------------------------------------------------------------------------------


def _trivial(folder: Path) -> tuple[Path, Path]:
    module = folder / "bench_trivial_prefab.py"
    module.write_text(_TRIVIAL_MODULE, encoding="utf-8")
    manifest = folder / "prefab-manifest.json"
    manifest.write_text(json.dumps(_TRIVIAL_MANIFEST), encoding="utf-8")
    return manifest, module


def _spec(path: Path, name: str) -> FunctionSpec:
    manifest: Manifest | None
    manifest, found = load_manifest(path)
    assert manifest is not None, found
    spec = manifest.function(name)
    assert spec is not None
    return spec


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    rows = [("benchmark", "stream-harness", "peer", "ratio / note")]
    rows += section_proptest(int(os.environ.get("BENCH_REPEAT", "1")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        sys.stdout.write("\n")
        if i == 0:
            sys.stdout.write("  ".join("-" * w for w in widths) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
