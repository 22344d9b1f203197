"""Small inline-SVG plots for report.html: no JavaScript, no network, nothing to load.

Each function returns one ``<svg>`` element as a string, sized by ``viewBox`` so the page can
scale it.  Values are plain floats; empty input gives a plot that says so.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from html import escape

__all__ = ["cdf", "histogram", "series", "timeline", "waterfall"]

W, H = 640, 220
L, R, T, B = 56, 16, 14, 34  # margins: left, right, top, bottom
_COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c")


def _frame(body: str, x_label: str, y_label: str, label: str, h: float = H) -> str:
    return (
        f'<svg class="plot" viewBox="0 0 {W} {h:.0f}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{h - T - B:.0f}" fill="#fafafa" '
        f'stroke="#d4d4d4"/>{body}'
        f'<text x="{(W + L - R) / 2}" y="{h - 4:.0f}" text-anchor="middle" class="axis">'
        f"{escape(x_label)}</text>"
        f'<text x="12" y="{(h - B + T) / 2:.0f}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 12 {(h - B + T) / 2:.0f})">{escape(y_label)}</text></svg>'
    )


def _empty(label: str) -> str:
    return _frame(
        f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" class="axis">no data</text>',
        "",
        "",
        label,
    )


def _scale(lo: float, hi: float, a: float, b: float) -> tuple[float, float]:
    span = (hi - lo) or 1.0
    k = (b - a) / span
    return k, a - lo * k


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    if not (raw > 0 and math.isfinite(raw)):  # a range so small it underflows: label its ends
        return [lo, hi]
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * step:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _axes(x0: float, x1: float, y0: float, y1: float, y_ticks: bool = True, h: float = H) -> str:
    kx, bx = _scale(x0, x1, L, W - R)
    ky, by = _scale(y0, y1, h - B, T)
    parts = []
    for t in _ticks(x0, x1):
        x = kx * t + bx
        parts.append(
            f'<line x1="{x:.1f}" y1="{h - B:.0f}" x2="{x:.1f}" y2="{h - B + 4:.0f}" stroke="#737373"/>'
            f'<text x="{x:.1f}" y="{h - B + 15:.0f}" text-anchor="middle" class="tick">{_fmt(t)}</text>'
        )
    for t in _ticks(y0, y1, 4) if y_ticks else []:
        y = ky * t + by
        parts.append(
            f'<line x1="{L - 4}" y1="{y:.1f}" x2="{L}" y2="{y:.1f}" stroke="#737373"/>'
            f'<text x="{L - 6}" y="{y + 3:.1f}" text-anchor="end" class="tick">{_fmt(t)}</text>'
        )
    return "".join(parts)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:.3g}"


def cdf(values: Sequence[float], x_label: str, label: str = "CDF") -> str:
    """The empirical cumulative distribution of ``values`` (e.g. TTFB in ms)."""
    if not values:
        return _empty(label)
    xs = sorted(values)
    x0, x1 = xs[0], xs[-1] if xs[-1] > xs[0] else xs[0] + 1
    kx, bx = _scale(x0, x1, L, W - R)
    ky, by = _scale(0, 1, H - B, T)
    step = max(1, len(xs) // 400)  # at most ~400 points: the page stays small
    pts = [(kx * x + bx, ky * ((i + 1) / len(xs)) + by) for i, x in enumerate(xs)][::step]
    pts.append((kx * xs[-1] + bx, ky * 1 + by))
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    body = (
        _axes(x0, x1, 0, 1)
        + f'<polyline fill="none" stroke="{_COLORS[0]}" stroke-width="2" points="{path}"/>'
    )
    return _frame(body, x_label, "fraction ≤ x", label)


def histogram(
    values: Sequence[float],
    x_label: str,
    label: str = "histogram",
    bins: int = 30,
    weights: Sequence[float] | None = None,
) -> str:
    """Counts of ``values`` in ``bins`` equal bins; with ``weights``, each value counts as its
    weight (e.g. a histogram's buckets: value and count)."""
    if not values:
        return _empty(label)
    lo, hi = min(values), max(values)
    if hi <= lo:
        hi = lo + 1
    counts: list[float] = [0] * bins
    for i, v in enumerate(values):
        w = 1.0 if weights is None else weights[i]
        counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += w
    top = max(counts) or 1
    kx, bx = _scale(lo, hi, L, W - R)
    ky, by = _scale(0, top, H - B, T)
    width = (W - L - R) / bins
    bars = "".join(
        f'<rect x="{kx * (lo + i * (hi - lo) / bins) + bx:.1f}" y="{ky * c + by:.1f}" '
        f'width="{max(width - 1, 1):.1f}" height="{(H - B) - (ky * c + by):.1f}" fill="{_COLORS[0]}"/>'
        for i, c in enumerate(counts)
        if c
    )
    return _frame(_axes(lo, hi, 0, top) + bars, x_label, "count", label)


def series(
    lines: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    x_label: str,
    y_label: str,
    label: str,
) -> str:
    """Line plot of one or more named series of (x, y) points (e.g. events/s over time)."""
    pts = [p for _, s in lines for p in s]
    if not pts:
        return _empty(label)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y1 = max(p[1] for p in pts) or 1.0
    kx, bx = _scale(x0, x1, L, W - R)
    ky, by = _scale(0, y1, H - B, T)
    body = _axes(x0, x1, 0, y1)
    for i, (name, s) in enumerate(lines):
        color = _COLORS[i % len(_COLORS)]
        path = " ".join(f"{kx * x + bx:.1f},{ky * y + by:.1f}" for x, y in s)
        body += f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>'
        body += (
            f'<text x="{W - R - 4}" y="{T + 14 + 14 * i}" text-anchor="end" fill="{color}" '
            f'class="tick">{escape(name)}</text>'
        )
    return _frame(body, x_label, y_label, label)


def timeline(times_ms: Sequence[float], bad: Sequence[int], label: str = "event arrivals") -> str:
    """One stream: a tick per event at its arrival time; events with violations in red.  A
    long stream is sampled down to ``MAX_TICKS`` ticks (every broken event kept): a plot is read
    by a person, so its size follows what one can see, not the event count."""
    n = len(times_ms)
    if n <= MAX_TICKS:
        return waterfall([(label, 0.0, None, list(times_ms), [], set(bad))], label)
    red = sorted({i for i in bad if 0 <= i < n})[: MAX_TICKS // 2]
    step = -(-n // (MAX_TICKS - len(red)))
    keep = sorted({*range(0, n, step), n - 1, *red})
    shown = [times_ms[i] for i in keep]
    where = {i: j for j, i in enumerate(keep)}
    title = f"{label} (1 in {step} of {n} events shown, every broken one)"
    return waterfall([(title, 0.0, None, shown, [], {where[i] for i in red})], label)


#: The most event ticks one plot draws.
MAX_TICKS = 2000


def sampled_timeline(
    sample: Sequence[tuple[int, float]],
    n: int,
    step: int,
    bad: Mapping[int, float],
    label: str = "event arrivals",
) -> str:
    """:func:`timeline` of a stream too long to keep every arrival time: its ``sample``
    ((index, ms) of every ``step``-th event) and the times of the events that broke a rule."""
    red = dict(sorted(bad.items())[: MAX_TICKS // 2])
    points = sorted({**dict(sample), **red}.items())
    shown = [t for _, t in points]
    marked = {j for j, (i, _) in enumerate(points) if i in red}
    title = f"{label} (1 in {step} of {n} events shown, and the broken ones)"
    return waterfall([(title, 0.0, None, shown, [], marked)], label)


Stream = tuple[str, float, float | None, list[float], list[float], set[int]]
"""(name, start ms, first byte ms or None, event arrival ms, reconnect ms, bad event indexes)"""


def waterfall(
    streams: Sequence[Stream],
    label: str = "per-stream timeline",
    *,
    failed: Collection[int] = (),
    ends: Sequence[float | None] | None = None,
) -> str:
    """A row per stream: a bar from start to its last event, a diamond at first byte, a tick per
    event (red where it broke a rule) and a dashed mark at each reconnect.

    ``failed``: rows (indexes) whose bar is red -- the stream failed, perhaps with no event to
    blame (it ended without ``done``).  ``ends``: per row, where its bar ends when that is past
    its last event (a stream that went silent until a timeout)."""
    if not streams:
        return _empty(label)
    extra = [e for e in ends or () if e is not None]
    end = max([s[1] for s in streams] + [t for s in streams for t in s[3]] + extra + [1.0])
    start = min(s[1] for s in streams)
    row = min(22.0, (H - T - B) / len(streams))
    h = min(float(H), T + B + row * len(streams) + 8)  # one stream: a strip, not a tall box
    kx, bx = _scale(start, end, L, W - R)
    body = _axes(start, end, 0, 1, y_ticks=False, h=h)
    for i, (_name, s0, fb, events, reconnects, bad) in enumerate(streams):
        y = T + row * (i + 0.5)
        last = events[-1] if events else (fb if fb is not None else s0)
        stop = ends[i] if ends is not None and i < len(ends) else None
        if stop is not None and stop > last:
            last = stop
        bar = "#fca5a5" if i in failed else "#a3a3a3"
        body += (
            f'<line x1="{kx * s0 + bx:.1f}" y1="{y:.1f}" x2="{kx * last + bx:.1f}" y2="{y:.1f}" '
            f'stroke="{bar}" stroke-width="{max(row * 0.35, 1):.1f}"/>'
        )
        if fb is not None:
            x = kx * fb + bx
            body += f'<path d="M{x:.1f},{y - 4:.1f} l4,4 l-4,4 l-4,-4 z" fill="{_COLORS[3]}"/>'
        for j, t in enumerate(events):
            color = _COLORS[1] if j in bad else _COLORS[0]
            x = kx * t + bx
            body += (
                f'<line x1="{x:.1f}" y1="{y - row * 0.4:.1f}" x2="{x:.1f}" y2="{y + row * 0.4:.1f}" '
                f'stroke="{color}" stroke-width="1.5"/>'
            )
        for t in reconnects:
            x = kx * t + bx
            body += (
                f'<line x1="{x:.1f}" y1="{y - row * 0.5:.1f}" x2="{x:.1f}" y2="{y + row * 0.5:.1f}" '
                f'stroke="{_COLORS[4]}" stroke-dasharray="3,2" stroke-width="2"/>'
            )
    return _frame(body, "ms since the stream started", "", label, h)
