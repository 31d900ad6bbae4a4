"""Judging media relayed through TLS: what record sizes and timing can tell while muted.

A channel (:mod:`decoders.media.channels`) is one direction of a TURN-over-TLS connection:
encrypted records, one per relayed packet. No SSRC, codec, audio level or decoded audio can be
seen; the sizes and the timing of the records can, and they are what the audit judges here,
per mute window, on the channels the muted side sends:

``tls-encoded-content-while-muted`` (content)
    the estimated payload sizes vary like coded sound: the rule of ``encoded-content-while-
    muted`` (at least 20 records, 8 distinct sizes, a size entropy of 3 bits or more, no size
    holding half of them; high from 4 bits). Silence is one repeated small frame. ChannelData
    padding makes sizes 4-byte steps, which lowers the entropy of speech by about 2 bits (it
    still measures 4-5 bits on the lab's speech). With video in the same connection (a BUNDLEd
    call; :attr:`~decoders.media.channels.TlsChannel.video_suspected`) only records of audio size
    are judged, and the finding says the sizes may mix video in.
``tls-new-channel-while-muted`` (metadata, medium)
    a relayed channel starts inside a mute window.
``tls-media-continues-while-muted`` (info)
    records keep coming while muted, one size dominating (silence frames), or DTX: far fewer
    records than unmuted with gaps of several frames.
``tls-no-media-while-muted`` (info)
    the record rate falls to at most :data:`NOTHING_RATE_RATIO` of the unmuted rate (RTCP and
    STUN consent checks go on at a few a second): no media was sent.

Each finding's evidence says it judged sizes and timing through TLS and that no audio level
could be seen. The verdict (:mod:`decoders.audit.verdict`) gives findings and "no leak" from
channels a lower confidence than from clear RTP.

Which channels the muted side sends: those :meth:`LocalSide.sends` names (by address and
port; a channel has no SSRC); when the side is unknown or known only by SSRCs, the TURN
client's direction (client to TURN server: a TURN server relays for its clients and is never
the muted user).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from decoders.audit.flags import FIRST, Finding, Series
from decoders.audit.local import LocalSide
from decoders.audit.measure import Distribution, distribution
from decoders.media.channels import LARGE_PAYLOAD, TlsChannel
from decoders.media.scan import StreamScan
from decoders.session.timeline import TRANSITION, UNMUTED, Timeline, Window
from decoders.wire.rowbuild import Rows

THROUGH_TLS: Final = (
    "judged through TLS: record sizes and timing only; no audio level could be seen "
    "(the media is encrypted inside TLS)"
)
MIN_RECORDS: Final = 20
MIN_DISTINCT_SIZES: Final = 8
MIN_SIZE_ENTROPY: Final = 3.0
HIGH_SIZE_ENTROPY: Final = 4.0
MAX_MODE_SHARE: Final = 0.5
NOTHING_RATE_RATIO: Final = 0.05
"""Muted records/s over unmuted records/s at or below which no media was sent: RTCP and STUN
consent checks are 1-2 records/s (a ratio of 0.02-0.04 at 50/s), Opus DTX 3-6 (0.06-0.12)."""
DTX_RATE_RATIO: Final = 0.5
DTX_GAP_MS: Final = 60.0
"""Three 20 ms frames: gaps this long or longer in most of the muted records are DTX."""


@dataclass(frozen=True, slots=True)
class ChannelPhase:
    """One channel in one phase (``window`` None: all of it)."""

    channel: int
    phase: str
    window: int | None
    seconds: float
    records: int
    sizes: Distribution | None
    """Estimated media payload sizes (with video suspected: those of audio size only)."""
    gap_p90_ms: float | None
    first_frame: int | None

    @property
    def records_per_second(self) -> float | None:
        return self.records / self.seconds if self.seconds > 0 else None

    def to_json(self) -> dict[str, Any]:
        rate = self.records_per_second
        return {
            "phase": self.phase,
            "window": self.window,
            "seconds": round(self.seconds, 4),
            "records": self.records,
            "records_per_second": None if rate is None else round(rate, 3),
            "estimated_payload_bytes": self.sizes.to_json() if self.sizes else None,
            "gap_p90_ms": None if self.gap_p90_ms is None else round(self.gap_p90_ms, 3),
            "first_frame": self.first_frame,
        }


@dataclass
class RelayedMeasurement:
    """Every channel, whether the muted side sends it, and each phase's records."""

    rows: Rows
    channels: list[TlsChannel]
    groups: list[npt.NDArray[np.int64]]
    labels: list[npt.NDArray[np.int16]]
    phases: dict[tuple[int, str, int | None], ChannelPhase]
    seconds: dict[int, float]

    def phase(self, channel: int, phase: str, window: int | None = None) -> ChannelPhase:
        return self.phases[(channel, phase, window)]

    def sent_by_muted_side(self, side: LocalSide) -> list[tuple[TlsChannel, str]]:
        """The channels judged for ``side``, each with how it was told."""
        out: list[tuple[TlsChannel, str]] = []
        for channel in self.channels:
            said = side.sends(channel.src, channel.src_port, -1)
            if said:
                out.append((channel, f"the muted side ({side.how})"))
            elif said is False and (side.addresses or channel.src in side.remote):
                continue
            elif channel.sender == "client":
                out.append((channel, "the TURN client's direction (the side is not known here)"))
        return out

    def window_rows(self, channel: int, window: int) -> npt.NDArray[np.int64]:
        chosen: npt.NDArray[np.int64] = self.groups[channel][self.labels[channel] == window]
        return chosen

    def to_json(self, side: LocalSide) -> list[dict[str, Any]]:
        judged = {c.index: how for c, how in self.sent_by_muted_side(side)}
        out = []
        for channel in self.channels:
            entry = channel.to_json()
            entry["judged"] = channel.index in judged
            entry["judged_as"] = judged.get(channel.index)
            entry["phases"] = {
                phase: self.phase(channel.index, phase).to_json()
                for phase in ("unmuted", "transition", "muted")
            }
            entry["phases"]["windows"] = [
                p.to_json()
                for (index, _, window), p in sorted(
                    self.phases.items(), key=lambda item: (item[0][0], item[0][2] or 0)
                )
                if index == channel.index and window is not None
            ]
            out.append(entry)
        return out


def _sizes(channel: TlsChannel, rows: Rows, sel: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    sizes = channel.payload_sizes(rows["length"][sel])
    return sizes[sizes <= LARGE_PAYLOAD] if channel.video_suspected else sizes


def _phase(
    channel: TlsChannel,
    rows: Rows,
    phase: str,
    window: int | None,
    sel: npt.NDArray[np.int64],
    seconds: float,
) -> ChannelPhase:
    ts = rows["timestamp_ns"][sel].astype(np.int64)
    p90: float | None = None
    if ts.size >= 2:
        p90 = float(np.percentile(np.diff(ts) / 1e6, 90))
    return ChannelPhase(
        channel=channel.index,
        phase=phase,
        window=window,
        seconds=seconds,
        records=int(sel.size),
        sizes=distribution(_sizes(channel, rows, sel)),
        gap_p90_ms=p90,
        first_frame=int(rows["frame"][sel[0]]) if sel.size else None,
    )


def measure_relayed(
    rows: Rows,
    channels: list[TlsChannel],
    groups: list[npt.NDArray[np.int64]],
    timeline: Timeline,
) -> RelayedMeasurement:
    """Each channel's records per phase: unmuted, transition, all muted, each mute window."""
    ts_all = rows["timestamp_ns"]
    span = (int(ts_all.min()) / 1e9, int(ts_all.max()) / 1e9) if len(rows) else None
    seconds = timeline.seconds(span)
    windows = [w.index for w in timeline.windows]
    labels: list[npt.NDArray[np.int16]] = []
    phases: dict[tuple[int, str, int | None], ChannelPhase] = {}
    for channel, group in zip(channels, groups, strict=True):
        label = timeline.segments(ts_all[group])
        labels.append(label)
        selections: list[tuple[str, int | None, npt.NDArray[np.bool_], float]] = [
            ("unmuted", None, label == UNMUTED, seconds[UNMUTED]),
            ("transition", None, label == TRANSITION, seconds[TRANSITION]),
            ("muted", None, label >= 0, sum(seconds[w] for w in windows)),
        ]
        selections += [("muted", w, label == w, seconds[w]) for w in windows]
        for phase, window, mask, phase_seconds in selections:
            phases[(channel.index, phase, window)] = _phase(
                channel, rows, phase, window, group[mask], phase_seconds
            )
    return RelayedMeasurement(rows, channels, list(groups), labels, phases, seconds)


def judge_relayed(scan: StreamScan | None, timeline: Timeline) -> RelayedMeasurement | None:
    """The one call of the analysis: the scan's TLS channels measured, or None if it has none."""
    if scan is None or not scan.channels:
        return None
    return measure_relayed(scan.rows, scan.channels, scan.channel_groups, timeline)


# -- findings ----------------------------------------------------------------------------------
def relayed_findings(
    measured: RelayedMeasurement | None, timeline: Timeline, side: LocalSide
) -> list[Finding]:
    """Every rule of the module docstring over the channels the muted side sends."""
    if measured is None:
        return []
    out: list[Finding] = []
    judged = measured.sent_by_muted_side(side)
    for window in timeline.windows:
        if measured.seconds.get(window.index, 0.0) <= 0:
            continue
        for channel, how in judged:
            out += _channel_window(measured, channel, how, window)
    return out


def _interval(ts: npt.NDArray[np.int64]) -> tuple[float, float] | None:
    return (int(ts.min()) / 1e9, int(ts.max()) / 1e9) if ts.size else None


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}/s"


def _channel_window(
    measured: RelayedMeasurement, channel: TlsChannel, how: str, window: Window
) -> list[Finding]:
    rows = measured.rows
    phase = measured.phase(channel.index, "muted", window.index)
    unmuted = measured.phase(channel.index, "unmuted")
    sel = measured.window_rows(channel.index, window.index)
    ts = rows["timestamp_ns"][sel].astype(np.int64)
    frames = tuple(int(f) for f in rows["frame"][sel[:FIRST]])
    common: dict[str, Any] = {
        "window": window.index,
        "stream": None,
        "stream_label": channel.label,
        "first_frames": frames,
    }
    video = (
        "; the connection also carries large records (video in the same relayed connection?): "
        f"only records of audio size (estimated payload <= {LARGE_PAYLOAD} bytes) were judged, "
        "and small video packets may still mix in"
        if channel.video_suspected
        else ""
    )
    base = {
        "through_tls": True,
        "channel_sender": channel.sender,
        "judged_as": how,
        "tls_record_overhead": channel.overhead.bytes,
        "tls_record_overhead_how": channel.overhead.how,
        "assumed_media_overhead": channel.media_overhead - channel.overhead.bytes,
        "video_suspected": channel.video_suspected,
        "records_per_second": _r(phase.records_per_second),
        "unmuted_records_per_second": _r(unmuted.records_per_second),
    }
    found: list[Finding] = []
    sizes, before = phase.sizes, unmuted.sizes
    rate, unmuted_rate = phase.records_per_second or 0.0, unmuted.records_per_second
    if (
        sizes is not None
        and sizes.count >= MIN_RECORDS
        and sizes.distinct >= MIN_DISTINCT_SIZES
        and sizes.entropy_bits >= MIN_SIZE_ENTROPY
        and sizes.mode_share <= MAX_MODE_SHARE
    ):
        found.append(
            Finding(
                id="tls-encoded-content-while-muted",
                severity="high" if sizes.entropy_bits >= HIGH_SIZE_ENTROPY else "medium",
                leak="content",
                title="relayed record sizes vary like coded sound while muted (through TLS)",
                interval=_interval(ts),
                numbers={
                    **base,
                    "records": sizes.count,
                    "distinct_sizes": sizes.distinct,
                    "size_entropy_bits": round(sizes.entropy_bits, 3),
                    "median_estimated_payload_bytes": sizes.median,
                    "commonest_size_share": round(sizes.mode_share, 4),
                    "unmuted_size_entropy_bits": _r(before.entropy_bits if before else None),
                    "unmuted_median_estimated_payload_bytes": before.median if before else None,
                },
                evidence=(
                    f"{THROUGH_TLS}. {sizes.count} records at {rate:.1f}/s in "
                    f"{sizes.distinct} different sizes (estimated payload {sizes.minimum}-"
                    f"{sizes.maximum} bytes, median {sizes.median:.0f}, entropy "
                    f"{sizes.entropy_bits:.1f} bits)"
                    + (
                        f"; unmuted: median {before.median:.0f} bytes, "
                        f"{before.entropy_bits:.1f} bits"
                        if before
                        else ""
                    )
                    + "; silence is one repeated small frame (0 bits), so these sizes carry "
                    "coded sound (encrypted sizes alone reveal speech)" + video
                ),
                series=Series(
                    "estimated payload size (bytes)",
                    ts.astype(np.float64) / 1e9,
                    channel.payload_sizes(rows["length"][sel]).astype(np.float64),
                ),
                **common,
            )
        )
    content = bool(found)
    first_label = measured.labels[channel.index][0] if measured.labels[channel.index].size else None
    if first_label == window.index:
        found.append(
            Finding(
                id="tls-new-channel-while-muted",
                severity="medium",
                leak="metadata",
                title="a new relayed channel started while muted (through TLS)",
                interval=_interval(ts),
                numbers={**base, "records": phase.records},
                evidence=(
                    f"{THROUGH_TLS}. {channel.label} sent its first application-data record "
                    f"(frame {channel.first_frame}) inside the mute window; {phase.records} "
                    "records while muted"
                ),
                **common,
            )
        )
    if content:
        return found
    ratio = rate / unmuted_rate if unmuted_rate else None
    gap = phase.gap_p90_ms
    if ratio is not None and ratio <= NOTHING_RATE_RATIO:
        found.append(
            Finding(
                id="tls-no-media-while-muted",
                severity="info",
                leak=None,
                title="no media was relayed while muted (through TLS)",
                interval=None,
                numbers={**base, "records": phase.records, "seconds": round(phase.seconds, 3)},
                evidence=(
                    f"{THROUGH_TLS}. The record rate fell from {_rate(unmuted_rate)} unmuted "
                    f"to {_rate(rate)} ({phase.records} records in {phase.seconds:.1f} s): "
                    "at most RTCP and STUN consent checks went on"
                ),
                **common,
            )
        )
    elif phase.records:
        dtx = ratio is not None and ratio < DTX_RATE_RATIO and gap is not None and gap >= DTX_GAP_MS
        share = f", {100 * sizes.mode_share:.0f}% of them one size" if sizes else ""
        found.append(
            Finding(
                id="tls-media-continues-while-muted",
                severity="info",
                leak=None,
                title="relayed records keep flowing while muted, sized like silence (through TLS)"
                + (" (DTX: only comfort-noise updates)" if dtx else ""),
                interval=_interval(ts),
                numbers={
                    **base,
                    "records": phase.records,
                    "dtx": dtx,
                    "gap_p90_ms": _r(gap),
                    "commonest_size_bytes": sizes.mode if sizes else None,
                    "commonest_size_share": _r(sizes.mode_share if sizes else None),
                    "distinct_sizes": sizes.distinct if sizes else None,
                },
                evidence=(
                    f"{THROUGH_TLS}. {phase.records} records ({rate:.1f}/s; unmuted "
                    f"{_rate(unmuted_rate)}) while muted{share}"
                    + (f", gaps up to {gap:.0f} ms (DTX)" if dtx and gap else "")
                    + "; nothing of the sound in their sizes"
                    + video
                ),
                **common,
            )
        )
    return found


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def no_leak_view(
    measured: RelayedMeasurement, side: LocalSide, window: int
) -> tuple[list[str], bool] | None:
    """For the verdict: how each judged channel showed "nothing left" in ``window``, and whether
    the same rule sees sound while unmuted. None when no channel is judged."""
    judged = measured.sent_by_muted_side(side)
    if not judged:
        return None
    how: list[str] = []
    sees_sound = False
    for channel, _ in judged:
        phase = measured.phase(channel.index, "muted", window)
        how.append(
            "no records through TLS" if phase.records == 0 else "sizes/timing through TLS only"
        )
        before = measured.phase(channel.index, "unmuted").sizes
        sees_sound = sees_sound or (before is not None and before.entropy_bits >= MIN_SIZE_ENTROPY)
    return how, sees_sound


__all__ = [
    "THROUGH_TLS",
    "ChannelPhase",
    "RelayedMeasurement",
    "judge_relayed",
    "measure_relayed",
    "no_leak_view",
    "relayed_findings",
]
