"""What each stream did in each phase: muted (per window and together), unmuted, transition.

Everything is vectorised over the packet table (:class:`decoders.wire.rowbuild.Rows`): the
streams are grouped once, every packet gets its phase from the timeline by one binary search,
and each (stream, phase) is a slice of index arrays. Sizes and levels are small integers, so
their medians, quartiles and entropies come from histograms (``np.bincount``) in linear time.
Capture timestamps only.

Per stream and phase:

- packets/s and bytes/s (UDP payload) over the phase's seconds inside the capture;
- the encoded frame size (RTP payload minus the SRTP auth tag when the profile is known):
  median, IQR, distinct sizes, Shannon entropy of the size distribution, the commonest size and
  its share. Silence is one repeated small frame (entropy ~0); sound is many sizes (~5 bits);
- inter-arrival times and DTX (far fewer packets than the stream's own frame rate, with gaps of
  several frames);
- the RFC 6464 audio level: median, packets louder than the silence threshold, the V bit share;
- RTCP sender reports of the stream's SSRC: how many and how often. SRTCP encrypts everything
  after the first 8 bytes, so the packet/octet counters cannot be read without keys; only
  the reports' count and rate are observable;
- decoded loudness (dBFS per packet) when the decryption supplies it, and byte entropy of the
  payloads when plaintext (or decrypted) payloads are supplied;
- telemetry messages with volume-like fields (:func:`measure_telemetry`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from decoders.audit.local import LocalSide
from decoders.audit.messages import TelemetryMessage
from decoders.media.streams import StreamStats
from decoders.session.timeline import TRANSITION, UNMUTED, Timeline
from decoders.wire.demux import PacketKind
from decoders.wire.rowbuild import Rows

SILENCE_LEVEL: Final = 100
"""RFC 6464 level at or above which a packet is silent (-100 dBov or quieter; 127 = digital
silence). Also the addon's default ``mutecheck_silence_level``."""
DECODED_SILENCE_DBFS: Final = -80.0
"""Decoded audio at or below this is silence (digital silence decodes to about -112 dBFS)."""
DTX_RATE_RATIO: Final = 0.5
DTX_GAP_FRAMES: Final = 3.0
RTCP_SENDER_REPORT: Final = 200
PHASES: Final = ("unmuted", "transition", "muted")

__all__ = ["LocalSide"]  # re-exported: measure_media takes one


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One RTP stream (Wireshark's key) and whether the muted side sends it."""

    index: int
    src: str
    src_port: int
    dst: str
    dst_port: int
    ssrc: int
    media: str
    codec: str | None
    clock_rate: int | None
    packets: int
    first_ns: int
    last_ns: int
    first_frame: int
    local: bool | None
    frame_ms: float | None
    """The stream's own packet interval (lower quartile of inter-arrival times)."""
    role: str = "media"
    """``media``, ``rtx``, ``fec``, ``red`` or ``unknown`` (:mod:`decoders.media.roles`)."""
    role_source: str = "unknown"
    legs: int = 1
    """Stream-table rows (5-tuple legs) joined into this one logical stream (same SSRC)."""

    @property
    def label(self) -> str:
        return f"{self.src}:{self.src_port} -> {self.dst}:{self.dst_port} SSRC 0x{self.ssrc:08x}"

    @property
    def judged(self) -> bool:
        """Could carry the microphone (not video, RTX or FEC; audio RED carries audio), and
        sent by the muted side (or the side is unknown)."""
        return self.media != "video" and self.role not in ("rtx", "fec") and self.local is not False

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "label": self.label,
            "src": self.src,
            "src_port": self.src_port,
            "dst": self.dst,
            "dst_port": self.dst_port,
            "ssrc": self.ssrc,
            "ssrc_hex": f"0x{self.ssrc:08x}",
            "media": self.media,
            "codec": self.codec,
            "clock_rate": self.clock_rate,
            "packets": self.packets,
            "first": self.first_ns / 1e9,
            "last": self.last_ns / 1e9,
            "first_frame": self.first_frame,
            "role": self.role,
            "role_source": self.role_source,
            "legs": self.legs,
            "sent_by_muted_side": self.local,
            "frame_ms": _round(self.frame_ms, 3),
        }


@dataclass(frozen=True, slots=True)
class Distribution:
    """A distribution of small integers (sizes in bytes, levels), from its histogram."""

    count: int
    median: float
    q1: float
    q3: float
    minimum: int
    maximum: int
    distinct: int
    entropy_bits: float
    mode: int
    mode_share: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "median": self.median,
            "iqr": self.iqr,
            "q1": self.q1,
            "q3": self.q3,
            "min": self.minimum,
            "max": self.maximum,
            "distinct": self.distinct,
            "entropy_bits": round(self.entropy_bits, 4),
            "mode": self.mode,
            "mode_share": round(self.mode_share, 4),
        }


@dataclass(frozen=True, slots=True)
class Timing:
    """Inter-arrival times in one phase, and whether they look like DTX."""

    median_ms: float
    p90_ms: float
    max_ms: float
    rate_ratio: float | None
    """Packets/s over the stream's own frame rate (1.0: every frame sent)."""
    dtx: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "median_ms": round(self.median_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "rate_ratio": _round(self.rate_ratio, 4),
            "dtx": self.dtx,
        }


@dataclass(frozen=True, slots=True)
class LevelStats:
    """RFC 6464 audio levels (0 loud .. 127 silence) of the packets that carry one."""

    packets: int
    median: float
    loud_packets: int
    """Packets louder than the silence threshold (level < :data:`SILENCE_LEVEL`)."""
    voice_share: float

    @property
    def loud_share(self) -> float:
        return self.loud_packets / self.packets if self.packets else 0.0

    @property
    def silent_share(self) -> float:
        return 1.0 - self.loud_share if self.packets else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "packets": self.packets,
            "median": self.median,
            "median_dbov": -self.median,
            "loud_packets": self.loud_packets,
            "loud_share": round(self.loud_share, 4),
            "silent_share": round(self.silent_share, 4),
            "silence_level": SILENCE_LEVEL,
            "voice_share": round(self.voice_share, 4),
        }


@dataclass(frozen=True, slots=True)
class DecodedStats:
    """Decoded loudness (dBFS per packet) from the decryption."""

    packets: int
    median_dbfs: float
    max_dbfs: float
    loud_packets: int

    @property
    def loud_share(self) -> float:
        return self.loud_packets / self.packets if self.packets else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "packets": self.packets,
            "median_dbfs": round(self.median_dbfs, 2),
            "max_dbfs": round(self.max_dbfs, 2),
            "loud_packets": self.loud_packets,
            "loud_share": round(self.loud_share, 4),
            "silence_dbfs": DECODED_SILENCE_DBFS,
        }


@dataclass(frozen=True, slots=True)
class ByteEntropy:
    """Entropy of plaintext or decrypted payload bytes, and how many payloads differ."""

    payloads: int
    distinct_payloads: int
    bits_per_byte: float

    def to_json(self) -> dict[str, Any]:
        return {
            "payloads": self.payloads,
            "distinct_payloads": self.distinct_payloads,
            "bits_per_byte": round(self.bits_per_byte, 4),
        }


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """One stream in one phase (``window`` set: one mute window; None: all of that phase)."""

    stream: int
    phase: str
    window: int | None
    seconds: float
    packets: int
    bytes: int
    sizes: Distribution | None
    timing: Timing | None
    levels: LevelStats | None
    sender_reports: int
    decoded: DecodedStats | None
    byte_entropy: ByteEntropy | None
    first_frame: int | None

    @property
    def packets_per_second(self) -> float | None:
        return self.packets / self.seconds if self.seconds > 0 else None

    @property
    def bytes_per_second(self) -> float | None:
        return self.bytes / self.seconds if self.seconds > 0 else None

    @property
    def sender_reports_per_second(self) -> float | None:
        return self.sender_reports / self.seconds if self.seconds > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "window": self.window,
            "seconds": round(self.seconds, 4),
            "packets": self.packets,
            "packets_per_second": _round(self.packets_per_second, 3),
            "bytes_per_second": _round(self.bytes_per_second, 1),
            "payload_bytes": self.sizes.to_json() if self.sizes else None,
            "interarrival": self.timing.to_json() if self.timing else None,
            "audio_level": self.levels.to_json() if self.levels else None,
            "rtcp_sender_reports": self.sender_reports,
            "rtcp_sender_reports_per_second": _round(self.sender_reports_per_second, 3),
            "decoded": self.decoded.to_json() if self.decoded else None,
            "payload_byte_entropy": self.byte_entropy.to_json() if self.byte_entropy else None,
            "first_frame": self.first_frame,
        }


@dataclass(frozen=True, slots=True)
class SeriesSource:
    """Per-packet extras the decryption may supply for one SSRC (capture-clock timestamps)."""

    timestamp_ns: npt.NDArray[np.int64]
    dbfs: npt.NDArray[np.float64] | None = None
    payloads: Sequence[bytes] | None = None


@dataclass
class MediaMeasurement:
    """The measured streams: per-stream row indices, per-packet labels and every phase."""

    rows: Rows
    streams: list[StreamInfo]
    groups: list[npt.NDArray[np.int64]]
    labels: list[npt.NDArray[np.int16]]
    phases: dict[tuple[int, str, int | None], PhaseStats]
    span: tuple[float, float] | None
    seconds: dict[int, float]
    auth_tag_length: int | None
    extras: dict[int, SeriesSource] = field(default_factory=dict)
    _window_rows: dict[int, dict[int, npt.NDArray[np.int64]]] = field(
        default_factory=dict, repr=False
    )
    _extra_rows: dict[int, dict[int, npt.NDArray[np.int64]]] = field(
        default_factory=dict, repr=False
    )

    def phase(self, stream: int, phase: str, window: int | None = None) -> PhaseStats:
        return self.phases[(stream, phase, window)]

    def window_rows(self, stream: int, window: int) -> npt.NDArray[np.int64]:
        """Row indices of ``stream``'s packets judged muted in ``window``, in capture order."""
        if stream not in self._window_rows:  # grouped once: a mask per window was quadratic
            self._window_rows[stream] = positions_by_label(self.labels[stream])
        chosen = self._window_rows[stream].get(window, _NO_ROWS)
        out: npt.NDArray[np.int64] = self.groups[stream][chosen]
        return out

    def extra_window_rows(
        self, ssrc: int, window: int, timeline: Timeline
    ) -> npt.NDArray[np.int64]:
        """Positions in ``extras[ssrc]`` (the decryption's per-packet values) judged muted in
        ``window``, in order."""
        if ssrc not in self._extra_rows:
            labels = timeline.segments(self.extras[ssrc].timestamp_ns)
            self._extra_rows[ssrc] = positions_by_label(labels)
        return self._extra_rows[ssrc].get(window, _NO_ROWS)

    def encoded_sizes(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return _encoded_sizes(self.rows, rows, self.auth_tag_length)


_NO_ROWS: Final[npt.NDArray[np.int64]] = np.zeros(0, np.int64)


def positions_by_label(labels: npt.NDArray[np.integer[Any]]) -> dict[int, npt.NDArray[np.int64]]:
    """Label -> the positions holding it, ascending: one stable sort, O(n log n) for any number
    of labels (a mask per mute window made 10,000 windows cost 10,000 passes)."""
    if labels.size == 0:
        return {}
    order = np.argsort(labels, kind="stable").astype(np.int64)
    ordered = labels[order]
    values, starts = np.unique(ordered, return_index=True)
    ends = [*starts[1:].tolist(), int(ordered.size)]
    return {
        int(v): order[a:b] for v, a, b in zip(values.tolist(), starts.tolist(), ends, strict=True)
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def distribution(values: npt.NDArray[np.integer[Any]]) -> Distribution | None:
    """Median, quartiles, distinct values and entropy of non-negative integers (histogram)."""
    if values.size == 0:
        return None
    counts = np.bincount(values.astype(np.int64))
    present = np.nonzero(counts)[0]
    share = counts[present] / values.size
    cumulative = np.cumsum(counts)
    mode_at = int(np.argmax(counts))
    return Distribution(
        count=int(values.size),
        median=_quantile(cumulative, 0.5),
        q1=_quantile(cumulative, 0.25),
        q3=_quantile(cumulative, 0.75),
        minimum=int(present[0]),
        maximum=int(present[-1]),
        distinct=int(present.size),
        entropy_bits=float(max(0.0, -(share * np.log2(share)).sum())),
        mode=mode_at,
        mode_share=float(counts[mode_at] / values.size),
    )


def _quantile(cumulative: npt.NDArray[np.int64], q: float) -> float:
    """numpy's default (linear) quantile of the values a histogram's cumulative counts hold."""
    n = int(cumulative[-1])
    position = q * (n - 1)
    low = math.floor(position)
    high = min(low + 1, n - 1)
    value_low = int(np.searchsorted(cumulative, low, side="right"))
    value_high = int(np.searchsorted(cumulative, high, side="right"))
    return float(value_low + (value_high - value_low) * (position - low))


def byte_entropy(payloads: Sequence[bytes]) -> ByteEntropy | None:
    """Shannon entropy (bits per byte) of the payloads' bytes together, and distinct payloads."""
    if not payloads:
        return None
    joined = np.frombuffer(b"".join(payloads), np.uint8)
    if joined.size == 0:
        return ByteEntropy(len(payloads), len(set(payloads)), 0.0)
    share = np.bincount(joined, minlength=256) / joined.size
    share = share[share > 0]
    return ByteEntropy(
        len(payloads), len(set(payloads)), float(max(0.0, -(share * np.log2(share)).sum()))
    )


def _encoded_sizes(
    rows: Rows, sel: npt.NDArray[np.int64], tag: int | None
) -> npt.NDArray[np.int64]:
    sizes = rows["payload_length"][sel].astype(np.int64)
    if tag:
        sizes = np.maximum(sizes - tag, 0)
    return sizes


def _timing(
    ts_ns: npt.NDArray[np.int64],
    pieces: npt.NDArray[np.int64],
    seconds: float,
    frame_ms: float | None,
) -> Timing | None:
    """Inter-arrival times between packets of one unbroken stretch of the phase."""
    if ts_ns.size < 2:
        return None
    same = pieces[1:] == pieces[:-1]
    gaps = np.diff(ts_ns)[same].astype(np.float64) / 1e6
    gaps = gaps[gaps >= 0]
    if gaps.size == 0:
        return None
    median, p90 = (float(x) for x in np.percentile(gaps, [50, 90]))
    ratio: float | None = None
    dtx = False
    if frame_ms and seconds > 0:
        ratio = (ts_ns.size / seconds) / (1000.0 / frame_ms)
        dtx = ratio < DTX_RATE_RATIO and p90 >= DTX_GAP_FRAMES * frame_ms
    return Timing(median, p90, float(gaps.max()), ratio, dtx)


def _levels(rows: Rows, sel: npt.NDArray[np.int64]) -> LevelStats | None:
    levels = rows["audio_level"][sel]
    has = levels >= 0
    count = int(has.sum())
    if count == 0:
        return None
    present = levels[has].astype(np.int64)
    counts = np.bincount(present, minlength=128)
    return LevelStats(
        packets=count,
        median=_quantile(np.cumsum(counts), 0.5),
        loud_packets=int(counts[:SILENCE_LEVEL].sum()),
        voice_share=float(rows["voice"][sel][has].mean()),
    )


def _decoded(dbfs: npt.NDArray[np.float64]) -> DecodedStats | None:
    values = dbfs[np.isfinite(dbfs)]
    if values.size == 0:
        return None
    return DecodedStats(
        packets=int(values.size),
        median_dbfs=float(np.median(values)),
        max_dbfs=float(values.max()),
        loud_packets=int((values > DECODED_SILENCE_DBFS).sum()),
    )


def _frame_ms(ts_ns: npt.NDArray[np.int64]) -> float | None:
    if ts_ns.size < 3:
        return None
    gaps = np.diff(ts_ns)
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return None
    return max(2.5, float(np.percentile(gaps, 25)) / 1e6)


def measure_media(
    rows: Rows,
    streams: Sequence[StreamStats],
    groups: Sequence[npt.NDArray[np.int64]],
    timeline: Timeline,
    *,
    local: LocalSide,
    auth_tag_length: int | None = None,
    extras: Mapping[int, SeriesSource] | None = None,
) -> MediaMeasurement:
    """Measure every stream in every phase.

    ``streams`` are the stream table's rows (:class:`decoders.media.streams.StreamStats`) and
    ``groups`` their packets' row indices in the same order; ``extras`` maps an SSRC to the
    decryption's per-packet loudness or payloads.
    """
    c = rows.columns
    extras = dict(extras or {})
    ts_all = c["timestamp_ns"]
    span = (int(ts_all.min()) / 1e9, int(ts_all.max()) / 1e9) if len(rows) else None
    seconds = timeline.seconds(span)
    windows = [w.index for w in timeline.windows]
    # RTCP sender reports: the few RTCP rows, labelled once
    rtcp = np.nonzero(rows.kind_mask(PacketKind.RTCP) & (c["payload_type"] == RTCP_SENDER_REPORT))[
        0
    ]
    rtcp_labels = timeline.segments(ts_all[rtcp])
    infos: list[StreamInfo] = []
    labels: list[npt.NDArray[np.int16]] = []
    phases: dict[tuple[int, str, int | None], PhaseStats] = {}
    for index, (stats, group) in enumerate(zip(streams, groups, strict=True)):
        ts = ts_all[group]
        frame_ms = _frame_ms(ts)
        info = StreamInfo(
            index=index,
            src=stats.src,
            src_port=stats.src_port,
            dst=stats.dst,
            dst_port=stats.dst_port,
            ssrc=stats.ssrc,
            media=stats.media,
            codec=stats.codec,
            clock_rate=stats.clock_rate,
            packets=stats.packets,
            first_ns=stats.first_ns,
            last_ns=stats.last_ns,
            first_frame=stats.first_frame,
            local=local.sends(stats.src, stats.src_port, stats.ssrc),
            frame_ms=frame_ms,
            role=stats.role,
            role_source=stats.role_source,
            legs=stats.legs,
        )
        infos.append(info)
        label = timeline.segments(ts)
        labels.append(label)
        pieces = timeline.pieces(ts)
        own_rtcp = rtcp_labels[c["ssrc"][rtcp] == stats.ssrc]
        extra = extras.get(stats.ssrc)
        extra_labels = timeline.segments(extra.timestamp_ns) if extra is not None else None
        selections: list[tuple[str, int | None, npt.NDArray[np.int64] | None, int, float]] = [
            (
                "unmuted",
                None,
                _where(label == UNMUTED),
                _count(own_rtcp == UNMUTED),
                seconds[UNMUTED],
            ),
            (
                "transition",
                None,
                _where(label == TRANSITION),
                _count(own_rtcp == TRANSITION),
                seconds[TRANSITION],
            ),
            (
                "muted",
                None,
                _where(label >= 0),
                _count(own_rtcp >= 0),
                sum(seconds[w] for w in windows),
            ),
        ]
        extra_by_window: dict[int, npt.NDArray[np.int64]] = {}
        if len(windows) > 1:
            by_window = positions_by_label(label)
            rtcp_by_window = positions_by_label(own_rtcp)
            if extra_labels is not None:
                extra_by_window = positions_by_label(extra_labels)
            selections += [
                (
                    "muted",
                    w,
                    by_window.get(w, _NO_ROWS),
                    len(rtcp_by_window.get(w, _NO_ROWS)),
                    seconds[w],
                )
                for w in windows
            ]
        elif windows:
            selections.append(("muted", windows[0], None, 0, seconds[windows[0]]))
        aggregate_muted: PhaseStats | None = None
        for phase, window, mask, rtcp_count, phase_seconds in selections:
            if mask is None:  # one window: the same as all of "muted"
                assert aggregate_muted is not None
                phases[(index, phase, window)] = _with_window(aggregate_muted, window)
                continue
            extra_mask = None
            if extra_labels is not None:
                extra_mask = (
                    extra_by_window.get(window, _NO_ROWS)
                    if window is not None
                    else _label_mask(extra_labels, phase, window)
                )
            stats_out = _phase(
                rows,
                index,
                phase,
                window,
                group[mask],
                pieces[mask],
                phase_seconds,
                frame_ms,
                auth_tag_length,
                rtcp_count,
                extra,
                extra_mask,
            )
            phases[(index, phase, window)] = stats_out
            if phase == "muted" and window is None:
                aggregate_muted = stats_out
    return MediaMeasurement(
        rows=rows,
        streams=infos,
        groups=list(groups),
        labels=labels,
        phases=phases,
        span=span,
        seconds=seconds,
        auth_tag_length=auth_tag_length,
        extras=extras,
    )


def _label_mask(
    labels: npt.NDArray[np.int16], phase: str, window: int | None
) -> npt.NDArray[np.int64]:
    """Positions of ``labels`` in a phase (a window's come from :func:`positions_by_label`)."""
    if phase == "unmuted":
        return _where(labels == UNMUTED)
    if phase == "transition":
        return _where(labels == TRANSITION)
    return _where(labels >= 0) if window is None else _where(labels == window)


def _where(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    return np.nonzero(mask)[0].astype(np.int64)


def _count(mask: npt.NDArray[np.bool_]) -> int:
    return int(np.count_nonzero(mask))


def _with_window(stats: PhaseStats, window: int | None) -> PhaseStats:
    return PhaseStats(
        stream=stats.stream,
        phase=stats.phase,
        window=window,
        seconds=stats.seconds,
        packets=stats.packets,
        bytes=stats.bytes,
        sizes=stats.sizes,
        timing=stats.timing,
        levels=stats.levels,
        sender_reports=stats.sender_reports,
        decoded=stats.decoded,
        byte_entropy=stats.byte_entropy,
        first_frame=stats.first_frame,
    )


def _phase(
    rows: Rows,
    stream: int,
    phase: str,
    window: int | None,
    sel: npt.NDArray[np.int64],
    pieces: npt.NDArray[np.int64],
    seconds: float,
    frame_ms: float | None,
    tag: int | None,
    sender_reports: int,
    extra: SeriesSource | None,
    extra_mask: npt.NDArray[np.int64] | None,
) -> PhaseStats:
    """``sel``: the phase's rows; ``extra_mask``: its positions in ``extra`` (ascending)."""
    c = rows.columns
    decoded: DecodedStats | None = None
    entropy: ByteEntropy | None = None
    if extra is not None and extra_mask is not None:
        if extra.dbfs is not None:
            decoded = _decoded(extra.dbfs[extra_mask])
        if extra.payloads is not None:
            chosen = extra_mask
            entropy = byte_entropy([extra.payloads[int(i)] for i in chosen])
    return PhaseStats(
        stream=stream,
        phase=phase,
        window=window,
        seconds=seconds,
        packets=int(sel.size),
        bytes=int(c["length"][sel].astype(np.int64).sum()),
        sizes=distribution(_encoded_sizes(rows, sel, tag)),
        timing=_timing(c["timestamp_ns"][sel], pieces, seconds, frame_ms),
        levels=_levels(rows, sel),
        sender_reports=sender_reports,
        decoded=decoded,
        byte_entropy=entropy,
        first_frame=int(c["frame"][sel[0]]) if sel.size else None,
    )


@dataclass(frozen=True, slots=True)
class TelemetryPhase:
    """Telemetry messages in one phase (or one mute window)."""

    phase: str
    window: int | None
    messages: int
    endpoints: tuple[str, ...]
    fields: dict[str, tuple[int, float | None, float | None, int]]
    """Field path -> (values, minimum, maximum, distinct values)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "window": self.window,
            "messages": self.messages,
            "endpoints": list(self.endpoints),
            "fields": {
                path: {"values": n, "min": lo, "max": hi, "distinct": distinct}
                for path, (n, lo, hi, distinct) in sorted(self.fields.items())
            },
        }


@dataclass
class TelemetryMeasurement:
    """Every telemetry message with its label on the capture's clock, and each phase's sum."""

    source: str | None
    """``events`` (events.jsonl), ``flows`` (flows.mitm replayed) or None (not checked)."""
    messages: list[TelemetryMessage]
    labels: list[int]
    phases: dict[tuple[str, int | None], TelemetryPhase]
    clock_offset: float = 0.0

    _by_label: dict[int, list[TelemetryMessage]] | None = field(default=None, repr=False)

    def in_window(self, window: int) -> list[TelemetryMessage]:
        if self._by_label is None:  # grouped once, not scanned per window
            self._by_label = {}
            for m, lab in zip(self.messages, self.labels, strict=True):
                self._by_label.setdefault(lab, []).append(m)
        return list(self._by_label.get(window, []))


def measure_telemetry(
    messages: Sequence[TelemetryMessage], timeline: Timeline, *, source: str | None
) -> TelemetryMeasurement:
    """Label each message (its time plus the clock offset) and sum up each phase."""
    offset = timeline.clock_offset
    times = np.fromiter((m.t + offset for m in messages), np.float64, len(messages))
    labels = timeline.labels_at(times).tolist()
    grouped: dict[int, list[TelemetryMessage]] = {}
    for m, lab in zip(messages, labels, strict=True):  # one pass, not one per window
        grouped.setdefault(lab, []).append(m)
    phases: dict[tuple[str, int | None], TelemetryPhase] = {}
    keys: list[tuple[str, int | None]] = [("unmuted", None), ("transition", None), ("muted", None)]
    keys += [("muted", w.index) for w in timeline.windows]
    for phase, window in keys:
        if phase == "unmuted":
            chosen = grouped.get(UNMUTED, [])
        elif phase == "transition":
            chosen = grouped.get(TRANSITION, [])
        elif window is None:
            chosen = [m for m, lab in zip(messages, labels, strict=True) if lab >= 0]
        else:
            chosen = grouped.get(window, [])
        values: dict[str, list[float]] = {}
        for m in chosen:
            for path, value in m.fields:
                values.setdefault(path, []).append(float(value))
        phases[(phase, window)] = TelemetryPhase(
            phase=phase,
            window=window,
            messages=len(chosen),
            endpoints=tuple(sorted({m.endpoint for m in chosen})),
            fields={path: (len(v), min(v), max(v), len(set(v))) for path, v in values.items()},
        )
    return TelemetryMeasurement(
        source=source,
        messages=list(messages),
        labels=labels,
        phases=phases,
        clock_offset=offset,
    )
