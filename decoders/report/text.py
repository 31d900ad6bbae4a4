"""Terminal output: the stream table, in the column order of Wireshark's RTP Streams window."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from decoders.media.streams import StreamStats

if TYPE_CHECKING:  # only a TLS-relayed capture loads the channel module
    from decoders.media.channels import TlsChannel

HEADERS = (
    "Source Address",
    "Source Port",
    "Destination Address",
    "Destination Port",
    "SSRC",
    "Payload",
    "Role",
    "Packets",
    "Lost",
    "Max Delta (ms)",
    "Max Jitter (ms)",
    "Mean Jitter (ms)",
    "Pkts/s",
    "Payload B min/med/max",
    "Audio level",
)


def _payload(s: StreamStats) -> str:
    pts = "/".join(str(p) for p in s.payload_types)
    name = s.codec or "?"
    return f"{name} ({pts})"


def _role(s: StreamStats) -> str:
    """``audio``, ``video rtx``, ``audio red``...; ``(inferred)`` when told by behaviour."""
    what = s.media if s.role in ("media", "unknown") else f"{s.media} {s.role}"
    return what + (" (inferred)" if s.role_source == "behaviour" else "")


def _level(s: StreamStats) -> str:
    if s.audio_level_packets == 0 or s.audio_level_median is None:
        return "-"
    share = 100.0 * s.audio_level_packets / s.packets
    return f"med -{s.audio_level_median:.0f} dBov ({share:.0f}%)"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def stream_rows(streams: Iterable[StreamStats]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for s in streams:
        lost = f"{s.lost} ({100.0 * s.lost / (s.packets + s.lost):.1f}%)" if s.packets else "0"
        rows.append(
            (
                s.src,
                str(s.src_port),
                s.dst,
                str(s.dst_port),
                s.ssrc_hex,
                _payload(s),
                _role(s),
                str(s.packets),
                lost,
                _fmt(s.max_delta_ms, 3),
                _fmt(s.max_jitter_ms, 3),
                _fmt(s.mean_jitter_ms, 3),
                _fmt(s.packets_per_second, 1),
                f"{s.payload_min}/{s.payload_median:.0f}/{s.payload_max}",
                _level(s),
            )
        )
    return rows


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def stream_table_text(streams: Sequence[StreamStats]) -> str:
    if not streams:
        return "no RTP streams found"
    return table(HEADERS, stream_rows(streams))


CHANNEL_TITLE = "relayed through TLS: sizes and timing only"
CHANNEL_HEADERS = (
    "Source Address",
    "Source Port",
    "Destination Address",
    "Destination Port",
    "Sender",
    "Records",
    "Recs/s",
    "Record B min/med/max",
    "Est. payload B (med)",
    "Gap ms med/p90/max",
    "TLS",
)


def channel_rows(channels: Iterable[TlsChannel]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for c in channels:
        video = " (video?)" if c.video_suspected else ""
        rows.append(
            (
                c.src,
                str(c.src_port),
                c.dst,
                str(c.dst_port),
                f"TURN {c.sender}",
                str(c.records),
                _fmt(c.records_per_second, 1),
                f"{c.record_min}/{c.record_median:.0f}/{c.record_max}",
                f"{c.payload_median:.0f}{video}",
                f"{_fmt(c.gap_median_ms, 0)}/{_fmt(c.gap_p90_ms, 0)}/{_fmt(c.gap_max_ms, 0)}",
                f"{c.tls_version or '?'} +{c.overhead.bytes}",
            )
        )
    return rows


def channel_table_text(channels: Sequence[TlsChannel]) -> str:
    """The TLS-relayed channels: a table, then how each was recognised and what was assumed."""
    if not channels:
        return ""
    lines = [CHANNEL_TITLE + " (encrypted: no SSRC, codec or audio level can be seen)"]
    lines.append(table(CHANNEL_HEADERS, channel_rows(channels)))
    first = channels[0]
    lines.append(
        f"est. payload = record - {first.overhead.bytes} (TLS: {first.overhead.how}) - "
        f"{first.media_overhead - first.overhead.bytes} (assumed: ChannelData 4, RTP 12, "
        "header extensions 8, SRTP tag 10)"
    )
    seen: set[tuple[str, ...]] = set()
    for c in channels:
        if c.evidence not in seen:
            seen.add(c.evidence)
            lines.append(
                f"recognised {c.src}:{c.src_port} <-> {c.dst}:{c.dst_port}: "
                + "; ".join(c.evidence)
            )
    return "\n".join(lines)
