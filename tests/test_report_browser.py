"""report.html in a real headless browser: it loads without errors and its plots render.

Chromium comes from Debian's packages (.ci/run installs it when it is missing); where it cannot
be had, these tests skip and say why.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import harness._catalog  # noqa: F401  (registers every rule)
from harness._core.rules import violation
from harness._core.session import CheckResult, Timing, TranscriptEntry
from harness._report import svg as _svg
from harness._report.model import Case, Plot, Report, StreamArtifact, check_report
from harness._report.write import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (Debian package 'chromium'; .ci/run installs it)",
    ),
]
BLUE, RED = (37, 99, 235), (220, 38, 38)


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp / 'profile'}",
    ]  # fmt: skip
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90, check=False
    )


def load_report() -> Report:
    """A report with every kind of plot, as a load run makes, and a failing stream."""
    rng = random.Random(7)
    ttfb = [rng.lognormvariate(3, 0.4) for _ in range(300)]
    gaps = [rng.expovariate(1 / 40) for _ in range(2000)]
    rate = [(t, 800 + 200 * rng.random()) for t in range(60)]
    streams: list[_svg.Stream] = []
    for i in range(12):
        start = i * 40.0
        events = [start + 30 + 25 * j + rng.random() * 5 for j in range(20)]
        streams.append(
            (
                f"stream {i}",
                start,
                start + 20,
                events,
                [start + 300] if i == 3 else [],
                {5} if i == 7 else set(),
            )
        )
    transcript = [
        TranscriptEntry(i, "content", str(i), '{"type": "content", "data": "tok"}', 10.0 * i)
        for i in range(30)
    ]
    bad = violation("seq.after-terminal", "an event came after done", 17)
    transcript[17].violations.append(bad)
    result = CheckResult(
        "http://127.0.0.1/x", "prefab", 30, [bad], Timing(1, 2, 300), transcript, raw=b"data: x\n\n"
    )
    return Report(
        command="load",
        title="http://127.0.0.1:8000/invoke/chat",
        verdict={"ok": False, "requests": 300, "failures": 1},
        cases=[
            Case("ttfb_ms.p95<800"),
            Case("seq.after-terminal", failures=[("seq.after-terminal", "1 stream")]),
        ],
        streams=[StreamArtifact("stream-17", result, ["stream-harness check stream-17.sse"])],
        plots=[
            Plot("TTFB distribution", _svg.cdf(ttfb, "ms"), "CDF"),
            Plot("inter-event gaps", _svg.histogram(gaps, "ms")),
            Plot(
                "events/s and active streams",
                _svg.series(
                    [("events/s", rate), ("active", [(t, 200.0) for t in range(60)])],
                    "s",
                    "",
                    "rate",
                ),
            ),
            Plot("per-stream timeline", _svg.waterfall(streams)),
        ],
    )


def render(report: Report, tmp: Path) -> tuple[Path, str, str]:
    out = tmp / "report"
    write_report(report, out)
    page = (out / "report.html").as_uri()
    shot = tmp / "screenshot.png"
    r = chromium("--window-size=1200,2400", f"--screenshot={shot}", page, tmp=tmp)
    assert shot.exists(), r.stderr[-2000:]
    dom = chromium("--dump-dom", page, tmp=tmp)
    return shot, dom.stdout, r.stderr + dom.stderr


def colour_share(png: Path, rgb: tuple[int, int, int]) -> float:
    from PIL import Image

    with Image.open(png) as img:
        pixels = list(img.convert("RGB").get_flattened_data())
        near = sum(1 for p in pixels if all(abs(a - b) <= 12 for a, b in zip(p, rgb, strict=True)))
        return near / len(pixels)


def drawn_shares(html: Path, shot: Path, tmp: Path) -> tuple[float, float]:
    """The shares of ``shot`` (a screenshot of ``html``) in BLUE and in RED that its plots
    drew: less what the same page shows with its ``<svg>``s removed (red is in text too)."""
    blank = tmp / "no-plots.html"
    blank.write_text(re.sub(r"<svg.*?</svg>", "", html.read_text(), flags=re.S))
    blank_shot = tmp / "no-plots.png"
    r = chromium("--window-size=1200,2400", f"--screenshot={blank_shot}", blank.as_uri(), tmp=tmp)
    assert blank_shot.exists(), r.stderr[-2000:]
    blue, red = (colour_share(shot, c) - colour_share(blank_shot, c) for c in (BLUE, RED))
    return blue, red


def test_load_report_renders_every_plot_without_errors(tmp_path: Path) -> None:
    shot, dom, log = render(load_report(), tmp_path)
    assert "Uncaught" not in log and "SyntaxError" not in log  # no script errors
    assert dom.count("<svg") == 4  # four plots in the rendered DOM
    assert "per-stream timeline" in dom and "seq.after-terminal" in dom
    # The plots are drawn, not blank: their blue strokes and the red bad events show.
    html = tmp_path / "report" / "report.html"
    blue, red = drawn_shares(html, shot, tmp_path)
    assert blue > 0.0005
    assert red > 0.00002


def test_check_report_screenshot_shows_the_failure(tmp_path: Path) -> None:
    transcript = [TranscriptEntry(i, "progress", str(i), "{}", 5.0 * i) for i in range(5)]
    v = violation("progress.current-le-total", "progress current 4 is greater than total 3", 3)
    transcript[3].violations.append(v)
    result = CheckResult(
        "gen.py:f",
        "prefab",
        5,
        [v],
        Timing(0.1, 0.2, 25),
        transcript,
        [5.0 * i for i in range(5)],
        raw=b"",
    )
    shot, dom, log = render(check_report(result, "stream-harness check gen.py:f", ()), tmp_path)
    assert "Uncaught" not in log
    assert "FAIL" in dom and "progress.current-le-total" in dom
    assert colour_share(shot, RED) > 0.0005  # the FAIL badge and the red rows
