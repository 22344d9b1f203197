"""``make bench``: stream-harness against its peers, measured side by side in one run.

Speed goals are ratios against a peer measured in the same process on the same input, so a
busy shared machine moves both numbers together.  Each figure is the best of ``--repeat`` runs.

    python -m bench                 # everything
    python -m bench decoder check   # some sections
"""

from __future__ import annotations

import argparse
import codecs
import gc
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator

import httpx_sse._decoders as peer
import jsonschema

from harness import SSEDecoder
from harness._contracts.registry import get_checker
from harness._core.framing import NDJSONDecoder
from harness._core.schemas import schema_validator

CHUNK = 64 * 1024
N_EVENTS = 200_000

# The reference input: ~40-byte content events with ids.
SHAPES: dict[str, bytes] = {
    "id+data (LF)": b'id: %d\ndata: {"type":"content","data":"tok"}\n\n',
    "data only (LF)": b'data: {"type":"content","data":"tok"}\n\n',
    "event+id+data (LF)": b'event: message\nid: %d\ndata: {"type":"content","data":"tok"}\n\n',
    "id+data (CRLF)": b'id: %d\r\ndata: {"type":"content","data":"tok"}\r\n\r\n',
}


def stream(shape: bytes, n: int = N_EVENTS) -> list[bytes]:
    """A prefab stream (start, n content events, done) cut into 64 KiB chunks."""
    start = shape.replace(b'{"type":"content","data":"tok"}', b'{"type":"start","data":{}}')
    done = shape.replace(b'{"type":"content","data":"tok"}', b'{"type":"done","data":{}}')
    parts = [start % 0 if b"%d" in start else start]
    parts += [shape % i if b"%d" in shape else shape for i in range(1, n + 1)]
    parts.append(done % (n + 1) if b"%d" in done else done)
    body = b"".join(parts)
    return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]


def best(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    """(events per second, events) of the fastest of ``repeat`` runs, for both contenders
    measured the same way."""
    times, count = [], 0
    for _ in range(repeat):
        gc.collect()
        gc.disable()  # as timeit does: the collector's schedule is noise, not the code measured
        try:
            t = time.perf_counter()
            count = fn()
            times.append(time.perf_counter() - t)
        finally:
            gc.enable()
    return count / min(times), count


# -- the contenders ---------------------------------------------------------------------------


def ours_decode(chunks: list[bytes]) -> int:
    d = SSEDecoder()
    n = 0
    for c in chunks:
        n += len(d.feed(c))
    return n


def peer_events(chunks: list[bytes]) -> Iterator[str]:
    """httpx-sse's decoder, fed the way its EventSource feeds it (text, then lines)."""
    text = codecs.getincrementaldecoder("utf-8")("replace")
    lines, sse = peer.SSELineDecoder(), peer.SSEDecoder()
    for c in chunks:
        for line in lines.decode(text.decode(c)):
            ev = sse.decode(line)
            if ev is not None:
                yield ev.data


def peer_decode(chunks: list[bytes]) -> int:
    return sum(1 for _ in peer_events(chunks))


def ours_check(chunks: list[bytes]) -> int:
    """Decode + parse + validate + sequence rules: what `check` and the Locust user run."""
    d = SSEDecoder()
    checker = get_checker("prefab")
    n = 0
    for c in chunks:
        for ev in d.feed(c):
            if checker.feed(ev):
                raise AssertionError("benchmark stream must conform")
            n += 1
    if checker.finish():
        raise AssertionError("benchmark stream must conform")
    return n


def naive_check(chunks: list[bytes], validator: jsonschema.protocols.Validator) -> int:
    """The naive stack: httpx-sse + json.loads + jsonschema per event."""
    n = 0
    for data in peer_events(chunks):
        validator.validate(json.loads(data))
        n += 1
    return n


# -- sections ---------------------------------------------------------------------------------


def section_decoder(repeat: int) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, shape in SHAPES.items():
        chunks = stream(shape)
        ours, n1 = best(lambda c=chunks: ours_decode(c), repeat)
        theirs, n2 = best(lambda c=chunks: peer_decode(c), repeat)
        assert n1 == n2, (n1, n2)
        goal = "≥ 2x" if name == "id+data (LF)" else ""
        rows.append(
            (
                f"decode {name}",
                f"{ours / 1e6:.2f} M/s",
                f"{theirs / 1e6:.2f} M/s",
                f"{ours / theirs:.2f}x {goal}",
            )
        )
    return rows


def section_check(repeat: int) -> list[tuple[str, str, str, str]]:
    validator = schema_validator("prefab/event.schema.json")
    rows = []
    for name in ("id+data (LF)", "id+data (CRLF)"):
        chunks = stream(SHAPES[name])
        ours, _ = best(lambda c=chunks: ours_check(c), repeat)
        small = stream(SHAPES[name], 20_000)  # the naive stack is slow: a smaller stream
        theirs, _ = best(lambda c=small: naive_check(c, validator), repeat)
        goal = "(goal ≥ 400 k/s, ≥ 30x)" if name == "id+data (LF)" else ""
        rows.append(
            (
                f"check {name}",
                f"{ours / 1e3:.0f} k/s",
                f"{theirs / 1e3:.1f} k/s",
                f"{ours / theirs:.1f}x {goal}",
            )
        )
    return rows


def section_memory(_: int) -> list[tuple[str, str, str, str]]:
    """Peak RSS while decoding 1 GiB: flat memory means the peak does not grow with it."""
    chunk = b"".join(b'id: %d\ndata: {"type":"content","data":"tok"}\n\n' % i for i in range(1500))
    giant = b"data: " + b"x" * (CHUNK - 6)  # plus one never-ending 256 MiB event
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    d = SSEDecoder()
    fed = 0
    t = time.perf_counter()
    while fed < 1 << 30:
        d.feed(chunk)
        fed += len(chunk)
    for _ in range((256 << 20) // CHUNK):
        d.feed(giant)
        fed += len(giant)
    secs = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    grew = (peak - before) / 1024
    return [
        (
            f"memory: 1.25 GiB stream ({fed / secs / 1e6:.0f} MB/s)",
            f"+{grew:.1f} MiB peak RSS",
            "",
            "flat (goal: < 16 MiB)",
        )
    ]


NDJSON_LINE = (
    b'{"model":"llama3.2","created_at":"2026-12-02T10:00:00Z",'
    b'"message":{"role":"assistant","content":"tok"},"done":false}\n'
)


def ndjson_baseline(chunks: list[bytes]) -> int:
    """The obvious way: the whole body, ``bytes.splitlines``, ``json.loads`` per line."""
    n = 0
    for line in b"".join(chunks).splitlines():
        if line:
            json.loads(line)
            n += 1
    return n


def ndjson_ours(chunks: list[bytes]) -> int:
    """Incremental, bounded, offsets and problems kept: what check and load run."""
    d = NDJSONDecoder()
    n = 0
    for c in chunks:
        n += len(d.feed(c))
    return n + len(d.finish())


def section_ndjson(repeat: int) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, end in (("LF", b"\n"), ("CRLF", b"\r\n")):
        body = NDJSON_LINE.replace(b"\n", end) * N_EVENTS
        chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
        ours, n1 = best(lambda c=chunks: ndjson_ours(c), repeat)
        theirs, n2 = best(lambda c=chunks: ndjson_baseline(c), repeat)
        assert n1 == n2 == N_EVENTS, (n1, n2)
        rows.append(
            (
                f"decode NDJSON ({name})",
                f"{ours / 1e6:.2f} M/s",
                f"{theirs / 1e6:.2f} M/s",
                f"{ours / theirs:.2f}x",
            )
        )
    return rows


SECTIONS: dict[str, Callable[[int], list[tuple[str, str, str, str]]]] = {
    "decoder": section_decoder,
    "ndjson": section_ndjson,
    "check": section_check,
    "memory": section_memory,
    "check_file": lambda r: __import__("bench.check_file").check_file.section_check_file(r),
    "contracts": lambda r: __import__("bench.contracts").contracts.section_contracts(r),
    "load_accuracy": lambda r: __import__(
        "bench.load_accuracy"
    ).load_accuracy.section_load_accuracy(r),
    "load_capacity": lambda r: __import__(
        "bench.load_capacity"
    ).load_capacity.section_load_capacity(r),
    "proptest": lambda r: __import__("bench.proptest").proptest.section_proptest(r),
    "llm": lambda r: __import__("bench.llm_bench").llm_bench.section_llm(r),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("sections", nargs="*", choices=[*SECTIONS, []], default=[])
    p.add_argument("--repeat", type=int, default=3)
    ns = p.parse_args(argv)
    rows = [("benchmark", "stream-harness", "peer", "ratio")]
    for name in ns.sections or list(SECTIONS):
        rows += SECTIONS[name](ns.repeat)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        sys.stdout.write(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
        )
        if i == 0:
            sys.stdout.write("  ".join("-" * w for w in widths) + "\n")
    sys.stdout.write(
        "\npeers: decode = httpx-sse 0.4.3's decoder; decode NDJSON = bytes.splitlines + "
        "json.loads on the whole body; check = httpx-sse + json.loads + "
        "jsonschema (Draft 2020-12) per event.\nEach figure is the best of --repeat runs, with the "
        "garbage collector paused while timing (as timeit does) for every contender alike.\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
