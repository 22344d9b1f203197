"""``check FILE`` as a user runs it: the whole CLI in a subprocess on a recording of the prefab
mix (half progress, half content events), beside the core alone (decoder + checker, in this
process, on the same file) and the naive stack (httpx-sse + ``json.loads`` + jsonschema), with
the peak RSS of each whole process.  Also the import time of ``from harness import SSEDecoder``
in a fresh interpreter, beside ``import h11`` for scale.

``BENCH_CHECK_EVENTS`` sets the size (default 5 000 000).  The naive stack reads the first
``BENCH_NAIVE_EVENTS`` of it only (default 300 000: it is ~50x slower); its rate is per event
all the same.  The CLI runs with ``--total-timeout 3600``: on a loaded machine 5 M events may
take longer than the default 120 s, which would be a (correct) ``timeout.total``.

Also the core on progress-only beside content-only events (the invariant path must cost no
more than the plain one), and the machine's load while measuring: on a shared machine every
figure moves with it, the ratios much less.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.__main__ import CHUNK

Row = tuple[str, str, str, str]
NAIVE_EVENTS = int(os.environ.get("BENCH_NAIVE_EVENTS", "300000"))

# Each command runs under a fresh parent that prints the child's peak RSS (KB), its wall time
# and its CPU time (user + system): on a shared machine the CPU time moves much less with the
# load, and the contenders run one after the other, under whatever load there is then.
_PROBE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(r.returncode, u.ru_maxrss, time.perf_counter() - t, u.ru_utime + u.ru_stime)"
)


def write_mix(path: Path, n: int) -> None:
    half = n // 2
    with path.open("wb") as f:
        f.write(b'id: 0\ndata: {"type": "start", "data": {"total": %d}}\n\n' % half)
        buf, p = [], 0
        for i in range(1, n + 1):
            if i % 2:
                p += 1
                buf.append(
                    b'id: %d\ndata: {"type": "progress", "data": {"current": %d, "total": %d}}'
                    b"\n\n" % (i, p, half)
                )
            else:
                buf.append(b'id: %d\ndata: {"type": "content", "data": "tok"}\n\n' % i)
            if len(buf) >= 10_000:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))
        f.write(b'id: %d\ndata: {"type": "done", "data": {"total": %d}}\n\n' % (n + 1, half))


def _probe(argv: list[str], cwd: Path) -> tuple[int, float, float, float]:
    """(exit code, peak RSS MB, seconds, CPU seconds) of ``argv`` run alone."""
    r = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, cwd=cwd, check=True
    )
    code, kb, secs, cpu = r.stdout.split()[-4:]
    return int(code), int(kb) / 1024, float(secs), float(cpu)


_CORE = f"""
import sys, time
CHUNK = {CHUNK}
from harness import SSEDecoder
from harness._contracts.registry import get_checker
d, c, n = SSEDecoder(max_event_bytes=1 << 20), get_checker("prefab"), 0
t, cpu = time.perf_counter(), time.process_time()
with open(sys.argv[1], "rb") as f:
    while chunk := f.read(CHUNK):
        for ev in d.feed(chunk):
            if c.feed(ev):
                raise SystemExit("the benchmark stream must conform")
            n += 1
assert not c.finish()
print(n / (time.perf_counter() - t), n / (time.process_time() - cpu))
"""

_NAIVE = """
import itertools, json, sys, time
sys.path.insert(0, %r)
import jsonschema
from bench.__main__ import peer_events
from harness._core.schemas import schema_validator
v, n = schema_validator("prefab/event.schema.json"), 0
def chunks(path):
    with open(path, "rb") as f:
        while chunk := f.read(%d):
            yield chunk
t, cpu = time.perf_counter(), time.process_time()
for data in itertools.islice(peer_events(chunks(sys.argv[1])), %d):
    v.validate(json.loads(data))
    n += 1
print(n / (time.perf_counter() - t), n / (time.process_time() - cpu))
"""


def _rate_and_rss(code: str, path: Path, cwd: Path) -> tuple[float, float, float]:
    """(events/s wall, events/s CPU, peak RSS MB) of a contender's loop."""
    script = cwd / "contender.py"
    script.write_text(code)
    out = cwd / "rate.txt"
    wrapper = f"import runpy, sys; sys.argv = [{str(script)!r}, {str(path)!r}]; "
    wrapper += "import contextlib, io; f = io.StringIO()\nwith contextlib.redirect_stdout(f): "
    wrapper += f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    wrapper += f"open({str(out)!r}, 'w').write(f.getvalue())"
    _, rss, _, _ = _probe([sys.executable, "-c", wrapper], cwd)
    wall, cpu = out.read_text().split()[-2:]
    return float(wall), float(cpu), rss


def import_time(statement: str, repeat: int) -> float:
    """Best wall time (ms) of ``statement`` in a fresh interpreter, interpreter start excluded."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    runs = []
    for _ in range(max(3, repeat)):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        runs.append(float(r.stdout))
    return min(runs) * 1000


def _kind_stream(kind: str, n: int) -> list[bytes]:
    parts = [b'id: 0\ndata: {"type": "start", "data": {"total": %d}}\n\n' % n]
    if kind == "progress":
        line = b'id: %d\ndata: {"type": "progress", "data": {"current": %d, "total": %d}}\n\n'
        parts += [line % (i, i, n) for i in range(1, n + 1)]
    else:
        line = b'id: %d\ndata: {"type": "content", "data": "tok"}\n\n'
        parts += [line % i for i in range(1, n + 1)]
    parts.append(b'id: %d\ndata: {"type": "done", "data": {"total": %d}}\n\n' % (n + 1, n))
    body = b"".join(parts)
    return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]


def progress_vs_content(repeat: int, n: int = 200_000) -> Row:
    """The core on progress-only and on content-only events, best of ``repeat`` each."""
    from bench.__main__ import best, ours_check

    rates, sizes = {}, {}
    for kind in ("progress", "content"):
        chunks = _kind_stream(kind, n)
        sizes[kind] = sum(map(len, chunks)) / (n + 2)
        rates[kind], _ = best(lambda c=chunks: ours_check(c), repeat)
    # A progress event is half again as long as a content one: per byte is the fair measure of
    # what the invariant path costs beside the plain one.
    per_byte = (rates["progress"] * sizes["progress"]) / (rates["content"] * sizes["content"])
    return (
        f"  core, {n // 1000} k progress-only vs content-only events",
        f"{rates['progress'] / 1e3:.0f} k/s",
        f"content {rates['content'] / 1e3:.0f} k/s",
        f"{rates['progress'] / rates['content']:.2f}x per event, {per_byte:.2f}x per byte "
        "(goal: as fast)",
    )


def load_row() -> Row:
    one, five, _ = os.getloadavg()
    return ("  machine load while measuring", f"{one:.1f} (1 min)", f"{five:.1f} (5 min)",
            f"on {os.cpu_count()} cores")  # fmt: skip


def section_check_file(repeat: int) -> list[Row]:
    n = int(os.environ.get("BENCH_CHECK_EVENTS", "5000000"))
    root = str(Path(__file__).resolve().parent.parent)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        path = cwd / "big.sse"
        write_mix(path, n)
        exe = Path(sys.executable).parent / "stream-harness"
        argv = [str(exe), "check", str(path), "--max-events", str(2 * n), "--report-dir", "rep"]
        argv += ["--total-timeout", "3600"]
        code, cli_rss, secs, cpu = _probe(argv, cwd)
        if code != 0:
            raise SystemExit(f"check {path} exited {code}: the benchmark stream must conform")
        cli, cli_cpu = (n + 2) / secs, (n + 2) / cpu
        core, core_cpu, core_rss = _rate_and_rss(_CORE, path, cwd)
        naive, naive_cpu, naive_rss = _rate_and_rss(_NAIVE % (root, CHUNK, NAIVE_EVENTS), path, cwd)
        m = f"{n / 1e6:g} M"
        rows += [
            (
                f"check FILE, {m} prefab mix (whole CLI, report written)",
                f"{cli / 1e3:.0f} k/s, {cli_rss:.0f} MB",
                f"naive {naive / 1e3:.1f} k/s, {naive_rss:.0f} MB",
                f"{cli / naive:.1f}x (goal ≥ 400 k/s, ≥ 30x, < 150 MB)",
            ),
            (
                "  the same by CPU time (startup included)",
                f"{cli_cpu / 1e3:.0f} k/s",
                f"naive {naive_cpu / 1e3:.1f} k/s",
                f"{cli_cpu / naive_cpu:.1f}x",
            ),
            (
                f"  core alone (decoder + checker), {m}",
                f"{core / 1e3:.0f} k/s, {core_rss:.0f} MB",
                f"by CPU time {core_cpu / 1e3:.0f} k/s",
                f"CLI at {100 * cli / core:.0f} % of the core, by CPU time "
                f"{100 * cli_cpu / core_cpu:.0f} % (goal ≥ 80 %)",
            ),
        ]
    rows.append(progress_vs_content(repeat))
    rows.append(load_row())
    ours = import_time("from harness import SSEDecoder", repeat)
    h11 = import_time("import h11", repeat)
    rows.append(
        ("import: from harness import SSEDecoder", f"{ours:.1f} ms", f"import h11 {h11:.1f} ms", "")
    )
    return rows
