"""The report's timeline charts, from real lab sessions."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from decoders.audit.analysis import Analysis, Inputs, analyze
from decoders.report import plots
from decoders.report.svg import Chart

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


@pytest.fixture(scope="module")
def ui_only() -> Analysis:
    return analyze(Inputs(session_dir=CAPTURES / "chromium-ui-only"))


@pytest.fixture(scope="module")
def telemetry_http() -> Analysis:
    return analyze(Inputs(session_dir=CAPTURES / "chromium-telemetry-http"))


def _charts(analysis: Analysis) -> dict[str, Chart]:
    axis = plots.time_axis(analysis)
    bands = plots.mute_bands(analysis.timeline, axis)
    return {c.y_label: c for c in plots.media_charts(analysis, axis, bands)}


def test_time_axis_starts_at_the_first_packet(ui_only: Analysis) -> None:
    axis = plots.time_axis(ui_only)
    assert ui_only.media is not None and ui_only.media.span is not None
    assert axis.origin == ui_only.media.span[0]
    assert axis.end == pytest.approx(ui_only.media.span[1] - ui_only.media.span[0])
    assert axis.x_range == (0.0, axis.end)


def test_mute_bands_are_the_windows_with_their_grace(ui_only: Analysis) -> None:
    axis = plots.time_axis(ui_only)
    bands = plots.mute_bands(ui_only.timeline, axis)
    window = ui_only.timeline.windows[0]
    muted = [b for b in bands if b.kind == "muted"]
    grace = [b for b in bands if b.kind == "grace"]
    assert len(muted) == 1 and len(grace) == 2
    assert muted[0].start == pytest.approx(window.start - axis.origin)
    assert muted[0].label == "muted 1"
    assert grace[0].end - grace[0].start == pytest.approx(2 * ui_only.timeline.grace)


def test_media_charts_hold_every_packet(ui_only: Analysis) -> None:
    media = ui_only.media
    assert media is not None
    charts = _charts(ui_only)
    assert set(charts) == {
        "audio level (dBov)",
        "payload (bytes)",
        "rate (packets/s)",
        "loudness (dBFS)",
    }
    rows = media.groups[0]
    level = charts["audio level (dBov)"].series[0]
    assert level.y.size == int((media.rows["audio_level"][rows] >= 0).sum()) == 704
    assert level.y.max() <= 0 and level.y.min() >= -127
    sizes = charts["payload (bytes)"].series[0]
    assert np.array_equal(sizes.y, media.encoded_sizes(rows).astype(np.float64))
    rate = charts["rate (packets/s)"].series[0]
    assert rate.kind == "steps" and rate.x.size == rate.y.size + 1
    counted = (rate.y * np.diff(rate.x)).sum()
    assert counted == pytest.approx(704, abs=0.5)
    assert np.median(rate.y) == pytest.approx(50, abs=1)
    loudness = charts["loudness (dBFS)"].series[0]
    assert loudness.y.size == 704 and loudness.y.max() < 0
    assert "muted side" in level.label and "0x08d5a265" in level.label


def test_silent_windows_show_silence(telemetry_http: Analysis) -> None:
    charts = _charts(telemetry_http)
    axis = plots.time_axis(telemetry_http)
    window = telemetry_http.timeline.windows[0]
    judged = window.judged(telemetry_http.timeline.grace)
    assert judged is not None
    level = charts["audio level (dBov)"].series[0]
    inside = (level.x >= judged[0] - axis.origin) & (level.x < judged[1] - axis.origin)
    assert inside.sum() > 200 and np.all(level.y[inside] == -127)


def test_telemetry_on_the_same_axis(telemetry_http: Analysis) -> None:
    axis = plots.time_axis(telemetry_http)
    charts = plots.telemetry_charts(telemetry_http.telemetry, axis, [])
    assert len(charts) == 1
    chart = charts[0]
    assert "audioLevel" in chart.title and "(28 values)" in chart.title
    series = chart.series[0]
    assert series.label == "http://10.77.0.2:8080/telemetry"
    assert series.show_values and series.x.size == 28
    messages = telemetry_http.telemetry.messages
    assert series.x[0] == pytest.approx(messages[0].t - axis.origin)
    assert series.x.min() >= 0 and series.x.max() <= axis.end + 1


def test_telemetry_not_checked_or_empty(ui_only: Analysis) -> None:
    axis = plots.time_axis(ui_only)
    [empty] = plots.telemetry_charts(ui_only.telemetry, axis, [])
    assert "no message with volume-like fields" in empty.empty_note
    no_capture = analyze(
        Inputs(events=CAPTURES / "chromium-telemetry-ws" / "events.jsonl", ignore=frozenset())
    )
    [media] = plots.media_charts(no_capture, plots.time_axis(no_capture), [])
    assert "no capture" in media.empty_note


def test_source_lanes(telemetry_http: Analysis) -> None:
    lanes = plots.source_lanes(telemetry_http.timeline, plots.time_axis(telemetry_http))
    names = [lane.label for lane in lanes]
    assert names[0] == "lab (judged)"
    assert "app" in names and "mark" in names


@pytest.mark.parametrize(("end", "bin_s"), [(14.1, 0.5), (14.3, 0.5), (0.2, 0.5), (3600, 10)])
def test_rate_edges(end: float, bin_s: float) -> None:
    edges = plots.rate_edges(end, bin_s)
    widths = np.diff(edges)
    assert edges[0] == 0 and edges[-1] == pytest.approx(max(end, bin_s))
    assert np.all(widths > 0) and np.all(widths >= bin_s / 2 - 1e-9)


def test_rate_bins_stay_few() -> None:
    assert plots.rate_bin_seconds(plots.TimeAxis(0, 14)) == 0.5
    assert plots.TimeAxis(0, 3600).end / plots.rate_bin_seconds(plots.TimeAxis(0, 3600)) <= 400


def test_figures_render_valid_svg(telemetry_http: Analysis) -> None:
    figures = plots.figures(telemetry_http)
    assert figures.mute_sources is not None
    assert len(figures.media) == 4 and len(figures.telemetry) == 1
    for svg in [figures.mute_sources, *figures.media, *figures.telemetry]:
        ET.fromstring(str(svg))
    clip = ".//{http://www.w3.org/2000/svg}clipPath"
    ids = [ET.fromstring(str(s)).find(clip) for s in figures.media]
    assert len({i.get("id") for i in ids if i is not None}) == 4  # unique in the page


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, 1e308])
def test_times_that_are_no_times_draw_no_crash(telemetry_http: Analysis, bad: float) -> None:
    """A telemetry time or window edge that is not finite (the reader refuses them; charts
    must hold even so): the axis keeps to the finite times, the charts render."""
    import dataclasses

    from decoders.audit.messages import TelemetryMessage

    telemetry = telemetry_http.telemetry
    odd = TelemetryMessage(t=bad, endpoint="http://x/t", fields=(("audioLevel", 0.5),))
    broken = dataclasses.replace(
        telemetry_http,
        telemetry=dataclasses.replace(
            telemetry, messages=[*telemetry.messages, odd], labels=[*telemetry.labels, -1]
        ),
    )
    axis = plots.time_axis(broken)
    if np.isfinite(bad):
        assert axis.end > 1e300
    else:
        assert axis == plots.time_axis(telemetry_http)
    figures = plots.figures(broken)
    for svg in [*figures.media, *figures.telemetry]:
        ET.fromstring(str(svg))
    assert plots.rate_bin_seconds(plots.TimeAxis(0.0, np.inf)) == plots.RATE_BIN_MIN_S
    assert plots.rate_edges(np.inf, 0.5).tolist() == [0.0, 1.0]
