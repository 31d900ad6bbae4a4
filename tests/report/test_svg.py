"""Hand-built SVG charts: well-formed, escaped, thinned for big captures, readable axes."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from decoders.report.svg import (
    Band,
    Chart,
    Lane,
    Rule,
    Series,
    nice_ticks,
    render,
    render_lanes,
    tick_label,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize(
    ("low", "high", "target", "expected"),
    [
        (0.0, 14.1, 8, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]),
        (0.0, 14.1, 6, [0.0, 2.5, 5.0, 7.5, 10.0, 12.5]),
        (-127.0, 0.0, 8, [-120.0, -100.0, -80.0, -60.0, -40.0, -20.0, 0.0]),
        (0.0, 1.0, 6, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (3.0, 3.0, 8, [3.0]),
    ],
)
def test_nice_ticks(low: float, high: float, target: int, expected: list[float]) -> None:
    assert nice_ticks(low, high, target=target) == pytest.approx(expected)


def test_nice_ticks_are_round_and_cover() -> None:
    for low, high in [(0.0, 0.137), (1795.2, 1809.7), (-3.3, 7.9), (0.0, 3600.0)]:
        ticks = nice_ticks(low, high)
        assert 2 <= len(ticks) <= 9
        assert low <= ticks[0] and ticks[-1] <= high
        steps = np.diff(ticks)
        assert np.allclose(steps, steps[0])
        mantissa = steps[0] / 10 ** np.floor(np.log10(steps[0]))
        assert round(float(mantissa), 6) in (1.0, 2.0, 2.5, 5.0)


def test_tick_labels() -> None:
    assert [tick_label(v, [0, 0.5, 1]) for v in (0, 0.5, 1)] == ["0", "0.5", "1.0"]
    assert tick_label(-120, [-120, -100]) == "-120"
    assert tick_label(-0.0, [0, 2]) == "0"
    assert tick_label(0.25, [0, 0.25, 0.5]) == "0.25"


def test_chart_is_well_formed_with_labelled_axes_and_bands() -> None:
    x = np.linspace(0, 10, 500)
    chart = Chart(
        "Audio level",
        "audio level (dBov)",
        (0.0, 10.0),
        [Series("stream A", x, -np.abs(np.sin(x)) * 100, "points")],
        bands=[Band(4, 8, "muted", "muted 1"), Band(3.8, 4.2, "grace")],
        rules=[Rule(-100, "silence below -100 dBov")],
        y_range=(-130, 3),
    )
    root = _parse(render(chart, "a"))
    texts = _texts(root)
    assert "audio level (dBov)" in texts
    assert "time since the capture's first packet (s)" in texts
    assert {"0", "2", "4", "6", "8", "10"} <= set(texts)
    assert "muted 1" in texts and "silence below -100 dBov" in texts and "stream A" in texts
    assert root.find(f"{SVG}title") is not None
    fills = [r.get("fill") for r in root.iter(f"{SVG}rect")]
    assert "#f4c7c3" in fills and "#e7e5e4" in fills
    assert root.get("viewBox") == "0 0 960 198"


def test_every_text_is_escaped() -> None:
    chart = Chart(
        HOSTILE,
        HOSTILE,
        (0.0, 1.0),
        [Series(HOSTILE, np.array([0.5]), np.array([1.0]), colour='red" onload="x')],
        bands=[Band(0.1, 0.2, "muted", HOSTILE)],
        rules=[Rule(0.5, HOSTILE)],
        empty_note=HOSTILE,
        notes=[HOSTILE],
    )
    markup = str(render(chart, 'id" onload="y'))
    assert "<script" not in markup and "<img" not in markup
    assert '" onload=' not in markup  # only inside escaped attribute values
    root = _parse(markup)
    assert all(not attr.startswith("on") for el in root.iter() for attr in el.attrib)
    assert any(HOSTILE in text for text in _texts(root))
    lanes = str(render_lanes(HOSTILE, [Lane(HOSTILE, [(0.1, 0.4)])], (0.0, 1.0), "z"))
    assert "<script" not in lanes and HOSTILE in "".join(_texts(_parse(lanes)))


def test_a_million_points_make_a_small_chart() -> None:
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(0, 3600, 1_000_000))
    y = rng.integers(0, 128, x.size).astype(np.float64)
    points = render(Chart("big", "y", (0, 3600), [Series("s", x, -y, "points")]), "p")
    line = render(Chart("big", "y", (0, 3600), [Series("s", x, -y, "line")]), "l")
    assert len(points) < 1_500_000  # one dot per pixel at most: random noise is the worst case
    assert len(line) < 100_000
    _parse(points)
    _parse(line)


def test_line_keeps_the_envelope_when_thinned() -> None:
    x = np.linspace(0, 100, 200_000)
    y = np.zeros_like(x)
    y[123_456] = 50.0  # one spike must survive thinning
    markup = str(render(Chart("spike", "y", (0, 100), [Series("s", x, y, "line")],
                              y_range=(0, 50)), "s"))  # fmt: skip
    path = next(p.get("d") for p in _parse(markup).iter(f"{SVG}path"))
    assert path is not None
    ys = [float(v) for v in re.findall(r"[ML][\d.]+ ([\d.]+)", path)]
    assert min(ys) == pytest.approx(28.0 + 18.0, abs=0.6)  # the top of the plot area


def test_steps_and_gaps() -> None:
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    rates = Series("s", edges, np.array([50.0, 0.0, 50.0]), "steps")
    markup = str(render(Chart("rate", "packets/s", (0, 3), [rates]), "r"))
    d = next(p.get("d") for p in _parse(markup).iter(f"{SVG}path"))
    assert d is not None and d.startswith("M") and d.count("H") == 3 and d.count("V") == 2
    x = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([1.0, np.nan, 2.0, 3.0])
    line = str(render(Chart("gap", "y", (0, 3), [Series("s", x, y, "line")]), "g"))
    d = next(p.get("d") for p in _parse(line).iter(f"{SVG}path"))
    assert d is not None and d.count("M") == 2  # the pen lifts over the gap


def test_empty_chart_says_why() -> None:
    markup = render(Chart("Decoded", "dBFS", (0, 10), [], empty_note="not measured: no keys"), "e")
    assert "not measured: no keys" in _texts(_parse(markup))


def test_value_labels_on_sparse_series() -> None:
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([0.0253, 0.1, 0.133])
    markup = render(Chart("t", "v", (0, 4), [Series("e", x, y, show_values=True)]), "v")
    texts = _texts(_parse(markup))
    assert {"0.0253", "0.1", "0.133"} <= set(texts)
    dense = np.linspace(0, 4, 500)
    many = render(Chart("t", "v", (0, 4), [Series("e", dense, dense, show_values=True)]), "w")
    assert "0.0253" not in _texts(_parse(many)) and len(_texts(_parse(many))) < 40


def test_lanes() -> None:
    markup = render_lanes(
        "Mute timeline", [Lane("lab (judged)", [(1.0, 4.0)]), Lane("app", [(1.2, 4.3), (6, 7)])],
        (0.0, 10.0), "lanes", bands=[Band(1.0, 4.0, "muted", "muted 1")],
    )  # fmt: skip
    root = _parse(markup)
    texts = _texts(root)
    assert "lab (judged)" in texts and "app" in texts
    assert "muted 1" not in texts  # the lanes name their windows themselves
    assert len([r for r in root.iter(f"{SVG}rect") if r.get("rx") == "3"]) == 3


def test_ranges_and_bands_that_are_no_numbers_render() -> None:
    """Non-finite axis ranges, bands and lane intervals: an empty chart, never a crash."""
    inf, nan = float("inf"), float("nan")
    chart = Chart(
        "odd",
        "value",
        (0.0, inf),
        [Series("s", np.array([1.0, inf, nan]), np.array([1.0, 2.0, 3.0]))],
        y_range=(nan, 1.0),
        bands=[Band(nan, 5.0), Band(1.0, inf, "grace")],
    )
    ET.fromstring(str(render(chart, "odd")))
    lanes = [Lane("mark", [(0.0, inf), (nan, 2.0), (1.0, 2.0)])]
    svg = str(render_lanes("lanes", lanes, (-inf, inf), "lanes"))
    ET.fromstring(svg)
    assert "nan" not in svg and "inf" not in svg
