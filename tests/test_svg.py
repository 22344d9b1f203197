"""Plots are well-formed SVG for any input, including none, one value and all-equal values."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from harness._report import svg as _svg

values = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=50)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


@given(values)
def test_cdf_histogram_timeline_are_well_formed(xs: list[float]) -> None:
    parse(_svg.cdf(xs, "ms"))
    parse(_svg.histogram(xs, "ms"))
    parse(_svg.timeline(sorted(xs), bad=[0]))
    parse(_svg.series([("a", list(enumerate(xs)))], "s", "events/s", "rate"))


def test_plot_without_data_says_so() -> None:
    assert "no data" in _svg.cdf([], "ms")


def test_histogram_draws_one_bar_per_nonempty_bin() -> None:
    root = parse(_svg.histogram([1, 1, 2, 3, 10], "ms", bins=5))
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect")][1:]  # the first is the frame
    assert len(bars) == 3  # bins over 1..10: {1, 1, 2}, {3}, {10}
