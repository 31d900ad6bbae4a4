"""Inline SVG charts for the HTML report: time series over a shared time axis, drawn by hand.

One chart is a time axis (seconds), a value axis with its unit, shaded intervals (the mute
windows and their grace periods), reference lines (a silence threshold) and series drawn as
points, lines or steps. Lanes (:func:`render_lanes`) draw intervals per source on the same axis.

Every text is escaped (:func:`markupsafe.escape`): series labels and titles may come from
captured traffic (telemetry field names, endpoints). Series with more points than the chart has
pixels are thinned to what can be seen: points to one per pixel they land on, lines to each
pixel column's minimum and maximum, so a million-packet capture still gives a small page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from markupsafe import Markup, escape

Floats = npt.NDArray[np.float64]

PALETTE: Final = ("#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#0e7490", "#a16207")
"""Series colours, in order; fixed here, never taken from the data."""
MUTED_FILL: Final = "#f4c7c3"
GRACE_FILL: Final = "#e7e5e4"
WIDTH: Final = 960
MAX_VALUE_LABELS: Final = 80
SPARSE_POINTS: Final = 200
_LEFT: Final = 70
_RIGHT: Final = 16
_TOP: Final = 28
_BOTTOM: Final = 40
_LEGEND: Final = 18
_FONT: Final = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'


@dataclass(frozen=True)
class Series:
    """One series: ``x`` in seconds on the chart's axis, ``y`` in the chart's unit."""

    label: str
    x: Floats
    y: Floats
    kind: Literal["points", "line", "steps"] = "points"
    colour: str = PALETTE[0]
    """For ``steps``, ``x`` holds the bin edges (one more than ``y``)."""
    show_values: bool = False
    """Write each point's value beside it (sparse series only: up to :data:`MAX_VALUE_LABELS`)."""


@dataclass(frozen=True)
class Band:
    """A shaded interval: a mute window (``muted``) or a grace period (``grace``)."""

    start: float
    end: float
    kind: Literal["muted", "grace"] = "muted"
    label: str | None = None


@dataclass(frozen=True)
class Rule:
    """A horizontal reference line, e.g. the silence threshold."""

    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    y_label: str
    """The value axis' name with its unit, e.g. ``audio level (dBov)``."""
    x_range: tuple[float, float]
    series: Sequence[Series] = ()
    x_label: str = "time since the capture's first packet (s)"
    y_range: tuple[float, float] | None = None
    """None: from the data (from 0 when every value is positive)."""
    y_ticks: Sequence[tuple[float, str]] | None = None
    """Fixed ticks (value, label), e.g. false/true; None: evenly spaced round numbers."""
    bands: Sequence[Band] = ()
    rules: Sequence[Rule] = ()
    height: int = 180
    empty_note: str = "no data"
    notes: Sequence[str] = field(default_factory=tuple)


def nice_ticks(low: float, high: float, target: int = 8) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(1, target)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = magnitude
    for multiple in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = multiple * magnitude
        if (high - low) / step <= target:
            break
    first = math.ceil(low / step - 1e-9) * step
    count = math.floor((high - first) / step + 1e-9) + 1
    return [round(first + i * step, 12) for i in range(max(0, count))]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """A tick's text with as many decimals as the spacing needs (``0.5``, ``10``, ``-120``)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = max(0, min(6, -math.floor(math.log10(step) + 1e-9))) if step > 0 else 0
    if step > 0 and round(step, decimals) != round(step, 12):
        decimals += 1
    text = f"{value:.{decimals}f}"
    return "0" if text.strip("-0.") == "" else text


def _data_range(chart: Chart) -> tuple[float, float]:
    if chart.y_range is not None:
        return chart.y_range
    values = [s.y[np.isfinite(s.y)] for s in chart.series if s.y.size]
    rules = [r.y for r in chart.rules]
    if not any(v.size for v in values) and not rules:
        return (0.0, 1.0)
    low = min([float(v.min()) for v in values if v.size] + rules)
    high = max([float(v.max()) for v in values if v.size] + rules)
    if low >= 0:
        low = 0.0
    if high <= low:
        high = low + 1.0
    pad = (high - low) * (0.2 if any(s.show_values for s in chart.series) else 0.08)
    return (low if low == 0.0 else low - pad, high + pad)


class _Frame:
    """Pixel geometry of one chart."""

    def __init__(
        self,
        width: int,
        height: int,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        *,
        top: int = _TOP,
    ) -> None:
        self.width, self.height = width, height
        self.left, self.top = _LEFT, top
        self.right = width - _RIGHT
        self.bottom = height - _BOTTOM
        self.x0, self.x1 = x_range
        if not (math.isfinite(self.x0) and math.isfinite(self.x1)):
            self.x0, self.x1 = 0.0, 1.0  # a range that is no range: an empty chart, not a crash
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1.0
        self.y0, self.y1 = y_range
        if not (math.isfinite(self.y0) and math.isfinite(self.y1)) or self.y1 <= self.y0:
            self.y0, self.y1 = 0.0, 1.0

    def px(self, x: Floats | float) -> Floats:
        scale = (self.right - self.left) / (self.x1 - self.x0)
        return np.asarray(self.left + (np.asarray(x, np.float64) - self.x0) * scale)

    def py(self, y: Floats | float) -> Floats:
        scale = (self.bottom - self.top) / (self.y1 - self.y0)
        return np.asarray(self.bottom - (np.asarray(y, np.float64) - self.y0) * scale)


def _n(value: float) -> str:
    """A coordinate with one decimal, without a trailing ``.0``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _clip(values: Floats, low: float, high: float) -> Floats:
    return np.clip(values, low, high)


def _points_path(frame: _Frame, series: Series) -> str:
    keep = np.isfinite(series.x) & np.isfinite(series.y)
    xs = _clip(frame.px(series.x[keep]), frame.left, frame.right)
    ys = _clip(frame.py(series.y[keep]), frame.top, frame.bottom)
    if xs.size == 0:
        return ""
    # one dot per pixel it lands on (dots are 3 px wide: the eye cannot tell more apart)
    cells = np.unique(np.stack([np.round(xs), np.round(ys)], axis=1), axis=0)
    return "".join(f"M{_n(x)} {_n(y)}h0" for x, y in cells)


def _line_path(frame: _Frame, series: Series) -> str:
    xs = frame.px(series.x)
    ys = frame.py(series.y)
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    good = np.isfinite(xs) & np.isfinite(ys)
    columns = frame.right - frame.left
    if good.sum() > 2 * columns:
        xs, ys = _thin_line(xs[good], ys[good])
        good = np.ones(xs.shape, np.bool_)
    ys = _clip(ys, frame.top, frame.bottom)
    parts: list[str] = []
    pen_down = False
    for x, y, ok in zip(xs, ys, good, strict=True):
        if not ok:
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{_n(float(x))} {_n(float(y))}")
        pen_down = True
    return "".join(parts)


def _thin_line(xs: Floats, ys: Floats) -> tuple[Floats, Floats]:
    """Per pixel column, the first, lowest and highest point: the line's visible envelope."""
    column = np.floor(xs).astype(np.int64)
    starts = np.concatenate([[0], np.nonzero(np.diff(column))[0] + 1])
    ends = np.concatenate([starts[1:], [xs.size]])
    out_x: list[float] = []
    out_y: list[float] = []
    for start, end in zip(starts, ends, strict=True):
        chunk = ys[start:end]
        lo, hi = int(np.argmin(chunk)) + start, int(np.argmax(chunk)) + start
        for index in sorted({int(start), lo, hi}):
            out_x.append(float(xs[index]))
            out_y.append(float(ys[index]))
    return np.array(out_x), np.array(out_y)


def _steps_path(frame: _Frame, series: Series) -> str:
    edges, values = series.x, series.y
    if values.size == 0 or edges.size != values.size + 1:
        return ""
    xs = _clip(frame.px(edges), frame.left, frame.right)
    ys = _clip(frame.py(values), frame.top, frame.bottom)
    parts = [f"M{_n(float(xs[0]))} {_n(float(ys[0]))}"]
    for i in range(values.size):
        parts.append(f"H{_n(float(xs[i + 1]))}")
        if i + 1 < values.size:
            parts.append(f"V{_n(float(ys[i + 1]))}")
    return "".join(parts)


def _series_svg(frame: _Frame, series: Series, clip: str, several: bool = False) -> str:
    colour = escape(series.colour)
    # several series: a little transparency shows where one hides another
    opacity = ' stroke-opacity="0.75"' if several else ""
    if series.kind == "points":
        path = _points_path(frame, series)
        size = "6" if series.x.size <= SPARSE_POINTS else "3.2"
        attrs = f'stroke="{colour}" stroke-width="{size}" stroke-linecap="round" fill="none"'
    elif series.kind == "line":
        path = _line_path(frame, series)
        attrs = f'stroke="{colour}" stroke-width="1.6" stroke-linejoin="round" fill="none"'
    else:
        path = _steps_path(frame, series)
        attrs = f'stroke="{colour}" stroke-width="1.8" fill="none"'
    if not path:
        return ""
    out = f'<path clip-path="url(#{clip})" {attrs}{opacity} d="{path}"/>'
    if series.kind == "points" and series.show_values and series.x.size <= MAX_VALUE_LABELS:
        out += _value_labels(frame, series)
    return out


def _value_labels(frame: _Frame, series: Series) -> str:
    keep = np.isfinite(series.x) & np.isfinite(series.y)
    xs = frame.px(series.x[keep])
    ys = frame.py(series.y[keep])
    parts = []
    for x, y, value in zip(xs, ys, series.y[keep], strict=True):
        if not (frame.left <= x <= frame.right and frame.top <= y <= frame.bottom):
            continue
        parts.append(
            f'<text x="{_n(float(x))}" y="{_n(float(y) - 7)}" font-size="9.5" '
            f'text-anchor="middle" fill="#333">{escape(f"{float(value):.3g}")}</text>'
        )
    return "".join(parts)


def _bands_svg(frame: _Frame, bands: Sequence[Band], *, labels: bool = True) -> list[str]:
    out = []
    texts = []
    grace_end = {b.start: b.end for b in bands if b.kind == "grace"}
    for band in sorted(bands, key=lambda b: b.kind == "grace"):  # grace drawn over muted
        if not (math.isfinite(band.start) and math.isfinite(band.end)):
            continue
        x0 = float(_clip(frame.px(band.start), frame.left, frame.right))
        x1 = float(_clip(frame.px(band.end), frame.left, frame.right))
        if x1 <= x0:
            continue
        fill = MUTED_FILL if band.kind == "muted" else GRACE_FILL
        opacity = "1" if band.kind == "muted" else "0.85"
        out.append(
            f'<rect x="{_n(x0)}" y="{frame.top}" width="{_n(x1 - x0)}" '
            f'height="{frame.bottom - frame.top}" fill="{fill}" fill-opacity="{opacity}"/>'
        )
        if band.label and labels:
            # after the grace period that covers the window's start, if there is one
            after = max([band.start, *(e for s, e in grace_end.items() if s < band.start < e)])
            x = float(_clip(frame.px(after), frame.left, frame.right))
            texts.append(
                f'<text x="{_n(x + 4)}" y="{frame.top + 12}" font-size="11" fill="#7f1d1d">'
                f"{escape(band.label)}</text>"
            )
    return out + texts


def _axes_svg(frame: _Frame, chart: Chart) -> list[str]:
    out = []
    x_ticks = nice_ticks(frame.x0, frame.x1, target=max(4, (frame.right - frame.left) // 80))
    for value in x_ticks:
        x = _n(float(frame.px(value)))
        out.append(
            f'<line x1="{x}" y1="{frame.top}" x2="{x}" y2="{frame.bottom}" stroke="#000" '
            'stroke-opacity="0.08"/>'
        )
        out.append(
            f'<text x="{x}" y="{frame.bottom + 14}" font-size="11" text-anchor="middle" '
            f'fill="#333">{escape(tick_label(value, x_ticks))}</text>'
        )
    if chart.y_ticks is not None:
        y_ticks = [(v, label) for v, label in chart.y_ticks]
    elif not any(s.x.size for s in chart.series):
        y_ticks = []  # nothing to read off an empty chart
    else:
        values = nice_ticks(frame.y0, frame.y1, target=4)
        y_ticks = [(v, tick_label(v, values)) for v in values]
    for value, label in y_ticks:
        y = _n(float(frame.py(value)))
        out.append(
            f'<line x1="{frame.left}" y1="{y}" x2="{frame.right}" y2="{y}" stroke="#000" '
            'stroke-opacity="0.08"/>'
        )
        out.append(
            f'<text x="{frame.left - 6}" y="{y}" dy="0.32em" font-size="11" text-anchor="end" '
            f'fill="#333">{escape(label)}</text>'
        )
    out.append(
        f'<rect x="{frame.left}" y="{frame.top}" width="{frame.right - frame.left}" '
        f'height="{frame.bottom - frame.top}" fill="none" stroke="#666" stroke-width="1"/>'
    )
    middle = (frame.top + frame.bottom) / 2
    out.append(
        f'<text transform="translate(14 {_n(middle)}) rotate(-90)" font-size="11.5" '
        f'text-anchor="middle" fill="#222">{escape(chart.y_label)}</text>'
    )
    out.append(
        f'<text x="{_n((frame.left + frame.right) / 2)}" y="{frame.height - 6}" '
        f'font-size="11.5" text-anchor="middle" fill="#222">{escape(chart.x_label)}</text>'
    )
    return out


def _rules_svg(frame: _Frame, rules: Sequence[Rule]) -> list[str]:
    out = []
    for rule in rules:
        if not frame.y0 <= rule.y <= frame.y1:
            continue
        y = _n(float(frame.py(rule.y)))
        out.append(
            f'<line x1="{frame.left}" y1="{y}" x2="{frame.right}" y2="{y}" stroke="#444" '
            'stroke-dasharray="5 4" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{frame.right - 4}" y="{y}" dy="-0.35em" font-size="10.5" '
            'text-anchor="end" fill="#333" stroke="#fff" stroke-width="3" '
            f'paint-order="stroke">{escape(rule.label)}</text>'
        )
    return out


def _legend_items(chart: Chart, left: float, right: float) -> list[tuple[float, int, str, str]]:
    """(x, row, text, colour) per labelled series, wrapping onto more rows at the right edge."""
    items = []
    x, row = left, 0
    for series in (s for s in chart.series if s.label):
        text = series.label if len(series.label) <= 70 else series.label[:67] + "..."
        span = 6.6 * len(text) + 30
        if x > left and x + span - 16 > right:
            x, row = left, row + 1
        items.append((x, row, text, series.colour))
        x += span
    return items


def _legend_svg(frame: _Frame, chart: Chart) -> list[str]:
    out = [
        f'<text x="{frame.left}" y="17" font-size="13" font-weight="600" fill="#111">'
        f"{escape(chart.title)}</text>"
    ]
    for x, row, text, colour in _legend_items(chart, frame.left, frame.right):
        y = 25 + _LEGEND * row
        out.append(
            f'<rect x="{_n(x)}" y="{y}" width="10" height="10" rx="2" fill="{escape(colour)}"/>'
        )
        out.append(
            f'<text x="{_n(x + 14)}" y="{y + 9}" font-size="11.5" fill="#222">{escape(text)}</text>'
        )
    return out


def render(chart: Chart, ident: str, *, width: int = WIDTH) -> Markup:
    """The chart as an ``<svg>`` element; ``ident`` makes its clip-path id unique in the page."""
    items = _legend_items(chart, _LEFT, width - _RIGHT)
    legend = _LEGEND * (max(row for _, row, _, _ in items) + 1) if items else 0
    frame = _Frame(
        width, chart.height + legend, chart.x_range, _data_range(chart), top=_TOP + legend
    )
    clip = f"clip-{escape(ident)}"
    body: list[str] = [
        f'<clipPath id="{clip}"><rect x="{frame.left}" y="{frame.top}" '
        f'width="{frame.right - frame.left}" height="{frame.bottom - frame.top}"/></clipPath>'
    ]
    body += _bands_svg(frame, chart.bands)
    body += _axes_svg(frame, chart)
    drawn = [_series_svg(frame, s, clip, len(chart.series) > 1) for s in chart.series]
    body += [d for d in drawn if d]
    body += _rules_svg(frame, chart.rules)
    if not any(drawn):
        body.append(
            f'<text x="{_n((frame.left + frame.right) / 2)}" '
            f'y="{_n((frame.top + frame.bottom) / 2 + 8)}" font-size="12.5" text-anchor="middle" '
            f'fill="#444">{escape(chart.empty_note)}</text>'
        )
    for number, note in enumerate(chart.notes):
        body.append(
            f'<text x="{frame.left + 6}" y="{frame.bottom - 6 - 13 * number}" font-size="10.5" '
            f'fill="#555">{escape(note)}</text>'
        )
    body += _legend_svg(frame, chart)
    return _svg(width, frame.height, chart.title, body)


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" {_FONT}>'
        f"<title>{escape(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


@dataclass(frozen=True)
class Lane:
    """One row of intervals (e.g. what one source said was muted)."""

    label: str
    intervals: Sequence[tuple[float, float]]
    colour: str = PALETTE[0]


def render_lanes(
    title: str,
    lanes: Sequence[Lane],
    x_range: tuple[float, float],
    ident: str,
    *,
    bands: Sequence[Band] = (),
    x_label: str = "time since the capture's first packet (s)",
    width: int = WIDTH,
) -> Markup:
    """Intervals per lane on the time axis, lane names on the left."""
    row = 22
    height = _TOP + _BOTTOM + row * max(1, len(lanes))
    frame = _Frame(width, height, x_range, (0.0, float(max(1, len(lanes)))))
    frame.left = _LEFT + 60
    body: list[str] = _bands_svg(frame, bands, labels=False)
    chart = Chart(title=title, y_label="", x_range=x_range, x_label=x_label, y_ticks=[])
    body += _axes_svg(frame, chart)
    for number, lane in enumerate(lanes):
        top = frame.top + number * row + 4
        body.append(
            f'<text x="{frame.left - 6}" y="{top + 10}" font-size="11" text-anchor="end" '
            f'fill="#222">{escape(lane.label)}</text>'
        )
        for start, end in lane.intervals:
            if not (math.isfinite(start) and math.isfinite(end)):
                continue
            x0 = float(_clip(frame.px(start), frame.left, frame.right))
            x1 = float(_clip(frame.px(end), frame.left, frame.right))
            body.append(
                f'<rect x="{_n(x0)}" y="{top}" width="{_n(max(1.5, x1 - x0))}" height="{row - 8}" '
                f'rx="3" fill="{escape(lane.colour)}" fill-opacity="0.8"/>'
            )
    body += _legend_svg(frame, chart)
    return _svg(width, height, title, body)
