"""The report's timeline: what each stream and the telemetry did, on one time axis.

From an :class:`~decoders.audit.analysis.Analysis`, charts (:mod:`decoders.report.svg`) sharing
one axis in seconds since the capture's first packet, with the mute windows shaded (their grace
periods in grey): per stream the RFC 6464 audio level (dBov), the encoded payload size (bytes),
the packet rate (packets/s) and the decoded loudness (dBFS, when keys allowed decryption); per
telemetry field the values the app sent; and a lane per source of the mute timeline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
from markupsafe import Markup

from decoders.audit.measure import DECODED_SILENCE_DBFS, SILENCE_LEVEL
from decoders.report.svg import PALETTE, Band, Chart, Lane, Rule, Series, render, render_lanes

if TYPE_CHECKING:
    from decoders.audit.analysis import Analysis
    from decoders.audit.measure import MediaMeasurement, StreamInfo, TelemetryMeasurement
    from decoders.session.timeline import Timeline

MAX_STREAMS: Final = 4
"""Streams drawn per chart (those that could carry the microphone first); the rest are listed."""
MAX_FIELDS: Final = 4
"""Telemetry fields drawn (the most frequent first)."""
RATE_BIN_MIN_S: Final = 0.5
RATE_BINS_MAX: Final = 400
LEVEL_FLOOR_DBOV: Final = -127.0
LOUDNESS_FLOOR_DBFS: Final = -120.0


@dataclass(frozen=True)
class TimeAxis:
    """x = epoch seconds - ``origin``; the charts show ``[0, end]``."""

    origin: float
    end: float

    @property
    def x_range(self) -> tuple[float, float]:
        return (0.0, self.end)


def time_axis(analysis: Analysis) -> TimeAxis:
    """The capture's first packet is 0; the axis reaches the last packet, window or message."""
    times: list[float] = []
    media = analysis.media
    if media is not None and media.span is not None:
        times += list(media.span)
    offset = analysis.telemetry.clock_offset
    times += [m.t + offset for m in analysis.telemetry.messages]
    for window in analysis.timeline.windows:
        times += [window.start, window.end]
    times = [t for t in times if math.isfinite(t)]  # a time that is no time is not drawn
    if not times:
        return TimeAxis(0.0, 1.0)
    origin = media.span[0] if media is not None and media.span is not None else min(times)
    end = max(times) - origin
    return TimeAxis(origin, end if end > 0 and math.isfinite(end) else 1.0)


def mute_bands(timeline: Timeline, axis: TimeAxis) -> list[Band]:
    """Each window shaded, and its grace periods (judged neither muted nor unmuted) in grey."""
    bands: list[Band] = []
    g = timeline.grace
    for window in timeline.windows:
        start, end = window.start - axis.origin, window.end - axis.origin
        bands.append(Band(start, end, "muted", f"muted {window.index + 1}"))
        if g > 0:
            bands.append(Band(start - g, start + g, "grace"))
            bands.append(Band(end - g, end + g, "grace"))
    return bands


def plotted_streams(media: MediaMeasurement) -> list[StreamInfo]:
    """Streams to draw: could carry the microphone first, then audio, then by packets."""
    ordered = sorted(
        media.streams,
        key=lambda s: (not s.judged, s.media != "audio", -s.packets, s.index),
    )
    return ordered[:MAX_STREAMS]


def stream_name(info: StreamInfo) -> str:
    side = {True: "muted side", False: "other side", None: "side unknown"}[info.local]
    return f"{info.media} {info.src}:{info.src_port} SSRC 0x{info.ssrc:08x} ({side})"


def _seconds(media: MediaMeasurement, rows: np.ndarray, axis: TimeAxis) -> np.ndarray:
    return np.asarray(media.rows["timestamp_ns"][rows].astype(np.float64) / 1e9 - axis.origin)


def rate_bin_seconds(axis: TimeAxis) -> float:
    """Bin width for packet rates: 0.5 s, or wider so that a chart has at most 400 bins."""
    width = max(RATE_BIN_MIN_S, axis.end / RATE_BINS_MAX)
    if not math.isfinite(width):
        return RATE_BIN_MIN_S  # an axis without an end: time_axis never makes one
    nice = [0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0]
    return next((n for n in nice if n >= width), math.ceil(width / 600.0) * 600.0)


def rate_edges(end: float, bin_s: float) -> np.ndarray:
    """Bin edges from 0 to ``end``; a last bin shorter than half a bin joins the one before."""
    if not (math.isfinite(end) and math.isfinite(bin_s) and bin_s > 0):
        return np.array([0.0, 1.0])
    count = max(1, min(RATE_BINS_MAX * 2, math.floor(end / bin_s)))
    edges = np.arange(count + 1, dtype=np.float64) * bin_s
    if end - edges[-1] >= bin_s / 2 or (count == 1 and end > edges[-1]):
        edges = np.append(edges, end)
    else:
        edges[-1] = max(edges[-1], end)
    return edges


def media_charts(analysis: Analysis, axis: TimeAxis, bands: Sequence[Band]) -> list[Chart]:
    """Audio level, payload size, packet rate and decoded loudness, one series per stream."""
    media = analysis.media
    if media is None:
        return [
            Chart(
                "media",
                "",
                axis.x_range,
                bands=bands,
                empty_note="no capture: the media was not checked",
                height=110,
            )
        ]
    streams = plotted_streams(media)
    level: list[Series] = []
    size: list[Series] = []
    rate: list[Series] = []
    loudness: list[Series] = []
    bin_s = rate_bin_seconds(axis)
    edges = rate_edges(axis.end, bin_s)
    widths = np.diff(edges)
    for number, info in enumerate(streams):
        colour = PALETTE[number % len(PALETTE)]
        name = stream_name(info)
        rows = media.groups[info.index]
        x = _seconds(media, rows, axis)
        levels = media.rows["audio_level"][rows]
        has = levels >= 0
        if has.any():
            level.append(Series(name, x[has], -levels[has].astype(np.float64), "points", colour))
        size.append(Series(name, x, media.encoded_sizes(rows).astype(np.float64), "points", colour))
        counts, _ = np.histogram(x, bins=edges)
        rate.append(Series(name, edges, counts.astype(np.float64) / widths, "steps", colour))
        extra = media.extras.get(info.ssrc)
        if extra is not None and extra.dbfs is not None and extra.dbfs.size:
            dbfs = np.asarray(extra.dbfs, np.float64)
            dbfs = np.where(np.isfinite(dbfs), dbfs, LOUDNESS_FLOOR_DBFS)
            times = extra.timestamp_ns.astype(np.float64) / 1e9 - axis.origin
            loudness.append(
                Series(name, times, np.maximum(dbfs, LOUDNESS_FLOOR_DBFS), "points", colour)
            )
    hidden = len(media.streams) - len(streams)
    notes = (f"{hidden} more stream(s) not drawn: see the stream table",) if hidden else ()
    tag = media.auth_tag_length
    level_note = "no packet carries an RFC 6464 audio level"
    if analysis.capture is None or analysis.capture.level.extension_id is None:
        level_note += " (no extension id: no SDP and none could be inferred)"
    return [
        Chart(
            "Audio level in the RTP header (RFC 6464; sent in clear even with SRTP)",
            "audio level (dBov)",
            axis.x_range,
            level,
            y_range=(LEVEL_FLOOR_DBOV - 3, 3.0),
            y_ticks=[(float(v), f"{v}") for v in range(-120, 1, 20)],
            bands=bands,
            rules=[Rule(-SILENCE_LEVEL, f"silence below -{SILENCE_LEVEL} dBov")],
            empty_note=level_note,
            notes=notes,
        ),
        Chart(
            "Encoded payload size per packet"
            + (f" (SRTP auth tag of {tag} bytes removed)" if tag else ""),
            "payload (bytes)",
            axis.x_range,
            size,
            bands=bands,
            empty_note="no RTP packets",
            notes=notes,
        ),
        Chart(
            f"Packet rate ({bin_s:g} s bins)",
            "rate (packets/s)",
            axis.x_range,
            rate,
            bands=bands,
            empty_note="no RTP packets",
            notes=notes,
        ),
        Chart(
            "Decoded loudness per packet (decrypted and decoded audio)",
            "loudness (dBFS)",
            axis.x_range,
            loudness,
            y_range=(LOUDNESS_FLOOR_DBFS - 3, 3.0),
            y_ticks=[(float(v), f"{v}") for v in range(-120, 1, 20)],
            bands=bands,
            rules=[Rule(DECODED_SILENCE_DBFS, f"silence below {DECODED_SILENCE_DBFS:.0f} dBFS")],
            empty_note=analysis.decoded.reason,
            notes=notes,
        ),
    ]


def telemetry_charts(
    telemetry: TelemetryMeasurement, axis: TimeAxis, bands: Sequence[Band]
) -> list[Chart]:
    """One chart per volume-like field (the most frequent first), a series per endpoint."""
    if telemetry.source is None:
        return [
            Chart(
                "Telemetry",
                "",
                axis.x_range,
                bands=bands,
                empty_note="telemetry not checked: no events.jsonl or flows.mitm",
                height=110,
            )
        ]
    by_path: dict[str, dict[str, list[tuple[float, float | bool]]]] = {}
    for message in telemetry.messages:
        t = message.t + telemetry.clock_offset - axis.origin
        for path, value in message.fields:
            by_path.setdefault(path, {}).setdefault(message.endpoint, []).append((t, value))
    if not by_path:
        return [
            Chart(
                "Telemetry",
                "",
                axis.x_range,
                bands=bands,
                empty_note=f"no message with volume-like fields (source: {telemetry.source})",
                height=110,
            )
        ]
    ranked = sorted(by_path.items(), key=lambda item: (-sum(map(len, item[1].values())), item[0]))
    charts = []
    for path, endpoints in ranked[:MAX_FIELDS]:
        boolean = all(isinstance(v, bool) for values in endpoints.values() for _, v in values)
        series = []
        for number, (endpoint, values) in enumerate(sorted(endpoints.items())):
            xs = np.array([t for t, _ in values], np.float64)
            ys = np.array([float(v) for _, v in values], np.float64)
            colour = PALETTE[(number + 1) % len(PALETTE)]
            series.append(Series(endpoint, xs, ys, "points", colour, show_values=not boolean))
        count = sum(map(len, endpoints.values()))
        charts.append(
            Chart(
                f"Telemetry field {path} ({count} values)",
                "value (as sent)" if not boolean else "value",
                axis.x_range,
                series,
                y_range=(-0.2, 1.2) if boolean else None,
                y_ticks=[(0.0, "false"), (1.0, "true")] if boolean else None,
                bands=bands,
                height=150,
            )
        )
    hidden = len(ranked) - MAX_FIELDS
    if hidden > 0:
        last = charts[-1]
        charts[-1] = Chart(
            last.title,
            last.y_label,
            last.x_range,
            last.series,
            y_range=last.y_range,
            y_ticks=last.y_ticks,
            bands=last.bands,
            height=last.height,
            notes=(f"{hidden} more field(s) in the message table",),
        )
    return charts


def source_lanes(timeline: Timeline, axis: TimeAxis) -> list[Lane]:
    """What each source said was muted; the primary (judged) sources first."""
    by_source: dict[str, list[tuple[float, float]]] = {}
    for interval in timeline.intervals:
        by_source.setdefault(interval.source, []).append(
            (interval.start - axis.origin, interval.end - axis.origin)
        )
    order = sorted(by_source, key=lambda s: (s not in timeline.primary, s))
    lanes = []
    for number, source in enumerate(order):
        label = source + (" (judged)" if source in timeline.primary else "")
        lanes.append(Lane(label, by_source[source], PALETTE[number % len(PALETTE)]))
    return lanes


@dataclass(frozen=True)
class Figures:
    """The rendered charts, in page order."""

    mute_sources: Markup | None
    media: list[Markup]
    telemetry: list[Markup]


def figures(analysis: Analysis) -> Figures:
    """Every chart of the report's timeline section, rendered."""
    axis = time_axis(analysis)
    bands = mute_bands(analysis.timeline, axis)
    lanes = source_lanes(analysis.timeline, axis)
    sources = (
        render_lanes("Mute timeline by source", lanes, axis.x_range, "sources", bands=bands)
        if lanes
        else None
    )
    media = [
        render(chart, f"media-{number}")
        for number, chart in enumerate(media_charts(analysis, axis, bands))
    ]
    telemetry = [
        render(chart, f"telemetry-{number}")
        for number, chart in enumerate(telemetry_charts(analysis.telemetry, axis, bands))
    ]
    return Figures(sources, media, telemetry)
