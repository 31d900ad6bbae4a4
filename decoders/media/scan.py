"""Capture → stream table: the head probe, the negotiated SDP, and one of three engines.

Engines: ``fast`` (numpy bulk path, scalar fallback for unusual frames), ``scalar`` (every frame
through the per-packet parsers; the reference) and ``tshark`` (Wireshark's dissectors, slow,
for encapsulations our reader does not know).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from decoders.media.levels import LevelSource, infer_audio_level_id
from decoders.media.streams import StreamStats, stream_groups, stream_table

if TYPE_CHECKING:
    from decoders.media.channels import TlsChannel
    from decoders.session.sdp import SessionDescription
    from decoders.session.sdpsources import SessionSdp
from decoders.wire.capture import CaptureReader
from decoders.wire.demux import PacketKind
from decoders.wire.head import HeadSample, probe_head
from decoders.wire.rowbuild import KIND_CODES, Rows, scan_scalar
from decoders.wire.rtp import RtpPacket

ENGINES = ("fast", "scalar", "tshark")


@dataclass(frozen=True, slots=True)
class CaptureSummary:
    """What a scan read of a capture, as the audit reports it (report.json's ``capture``)."""

    file: Path
    format: str
    frames: int
    span: tuple[float, float] | None
    """Epoch seconds of the first and the last datagram (None: there was none)."""
    datagrams: Mapping[str, int]
    """Datagrams per kind seen (``rtp``, ``stun``, ...)."""
    skipped: Mapping[str, int]
    """What the reader and the parsers skipped, per reason (only reasons that occurred)."""
    damage: str | None
    level: LevelSource
    srtp_profile: str | None
    srtp_auth_tag_length: int | None
    sdp: SessionSdp | None = None
    """The session's SDP the streams were named with, and where it came from."""

    def to_json(self) -> dict[str, Any]:
        first, last = self.span if self.span is not None else (None, None)
        return {
            "file": str(self.file),
            "format": self.format,
            "frames": self.frames,
            "first": first,
            "last": last,
            "datagrams": dict(self.datagrams),
            "skipped": dict(self.skipped),
            "damage": self.damage,
            "audio_level": {
                "extension_id": self.level.extension_id,
                "source": self.level.source,
                "evidence": self.level.evidence,
            },
            "srtp_profile": self.srtp_profile,
            "srtp_auth_tag_length": self.srtp_auth_tag_length,
            "sdp": self.sdp.to_json() if self.sdp is not None else None,
        }


@dataclass(frozen=True)
class StreamScan:
    """One capture read into the packet table, its stream table and what the head probe saw."""

    capture: Path
    capture_format: str
    engine: str
    frames: int
    rows: Rows
    counters: Counter[str]
    damage: str | None
    level: LevelSource
    head: HeadSample
    sdp: SessionDescription | None
    streams: list[StreamStats]
    groups: list[npt.NDArray[np.int64]]
    """Each stream's packets (indices into ``rows``, capture order), in the order of ``streams``."""
    channels: list[TlsChannel] = field(default_factory=list)
    """Media relayed through TLS: one channel per direction (:mod:`decoders.media.channels`)."""
    channel_groups: list[npt.NDArray[np.int64]] = field(default_factory=list)
    """Each channel's application-data rows, in the same order."""

    def datagram_counts(self) -> dict[str, int]:
        kinds = self.rows.columns["kind"]
        counts = np.bincount(kinds.astype(np.int64), minlength=len(KIND_CODES))
        return {str(k): int(c) for k, c in zip(KIND_CODES, counts, strict=True) if c}

    @property
    def span(self) -> tuple[float, float] | None:
        """Epoch seconds of the first and the last datagram (None: there was none)."""
        if not len(self.rows):
            return None
        ts = self.rows["timestamp_ns"]
        return (int(ts.min()) / 1e9, int(ts.max()) / 1e9)

    def summary(self, sdp: SessionSdp | None = None) -> CaptureSummary:
        """What the audit reports of this scan; ``sdp``: the session's SDP it was named with."""
        return CaptureSummary(
            file=self.capture,
            format=self.capture_format,
            frames=self.frames,
            span=self.span,
            datagrams=self.datagram_counts(),
            skipped={k: v for k, v in sorted(self.counters.items()) if v},
            damage=self.damage,
            level=self.level,
            srtp_profile=self.head.srtp_profile_name,
            srtp_auth_tag_length=self.head.srtp_auth_tag_length,
            sdp=sdp,
        )


def load_sdp(paths: tuple[Path, ...]) -> SessionDescription | None:
    """Parse the first SDP file that has media; the offer usually comes first."""
    from decoders.session.sdp import parse_sdp  # only when there is SDP: keeps start-up short

    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        sdp = parse_sdp(text)
        if sdp.media:
            return sdp
    return None


def scan_streams(
    capture: Path,
    *,
    sdp: SessionDescription | None = None,
    audio_level_id: int | None = None,
    engine: str = "fast",
    progress: Callable[[int], None] | None = None,
) -> StreamScan:
    with capture.open("rb") as fo:
        head = probe_head(fo)
    if audio_level_id is not None:
        level = LevelSource(audio_level_id, "given", "--audio-level-id")
    elif sdp is not None and (found := _sdp_level_id(sdp)) is not None:
        level = LevelSource(found, "sdp", "a=extmap urn:ietf:params:rtp-hdrext:ssrc-audio-level")
    else:
        level = infer_audio_level_id(head.rtp_packets)
    problem = _sdp_level_problem(sdp) if sdp is not None and audio_level_id is None else None
    if problem is not None:
        evidence = level.evidence.removesuffix("; no SDP")
        level = replace(level, evidence=f"{evidence}; the SDP's id was unusable", warning=problem)
    ident = level.extension_id
    if engine == "fast":
        from decoders.wire.bulk import scan_file

        with capture.open("rb") as fo:
            result = scan_file(fo, ident, progress=progress)
        rows, counters, damage, frames = result.rows, result.counters, result.damage, result.frames
        fmt = result.format
    elif engine == "scalar":
        with capture.open("rb") as fo:
            rows, counters, damage, frames = scan_scalar(fo, ident)
        fmt = head_format(capture)
    elif engine == "tshark":
        from decoders.wire.tshark import scan_tshark

        rows, counters, damage, frames = scan_tshark(capture, ident)
        fmt = head_format(capture)
    else:
        raise ValueError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    groups = stream_groups(rows)
    streams = stream_table(rows, sdp, srtp_auth_tag_length=head.srtp_auth_tag_length, groups=groups)
    if level.warning is None and level.source in ("sdp", "given"):
        level = replace(level, warning=_level_missing(streams, level, head.rtp_packets))
    channels: list[TlsChannel] = []
    channel_groups: list[npt.NDArray[np.int64]] = []
    if rows.kind_mask(PacketKind.TLS).any():  # only then: keeps start-up short
        from decoders.media.channels import tls_channels

        channels, channel_groups = tls_channels(rows, sdp)
    return StreamScan(
        capture=capture,
        capture_format=fmt,
        engine=engine,
        frames=frames,
        rows=rows,
        counters=counters,
        damage=damage,
        level=level,
        head=head,
        sdp=sdp,
        streams=streams,
        groups=groups,
        channels=channels,
        channel_groups=channel_groups,
    )


def head_format(capture: Path) -> str:
    with capture.open("rb") as fo:
        return str(CaptureReader(fo).format)


def _sdp_level_id(sdp: SessionDescription) -> int | None:
    from decoders.session.sdp import audio_level_extension_id

    return audio_level_extension_id(sdp)


def _level_missing(
    streams: Sequence[StreamStats], level: LevelSource, sample: Sequence[RtpPacket]
) -> str | None:
    """A warning when there are audio streams but none of their packets carried the audio
    level at the id the SDP (or --audio-level-id) named: the level column would be empty
    without a word."""
    audio = [s for s in streams if s.media == "audio"]
    if not audio or any(s.audio_level_packets for s in audio):
        return None
    from decoders.session.sdp import EXTENSION_ID_ONE_BYTE

    said = "the SDP's a=extmap" if level.source == "sdp" else "--audio-level-id"
    behaves = infer_audio_level_id(sample).extension_id
    hint = (
        f"the packets carry one at id {behaves}: pass --audio-level-id {behaves}"
        if behaves is not None and behaves != level.extension_id
        else "the level column is empty"
    )
    form = (
        " (ids above 14 only fit the two-byte header form, RFC 8285 §4.3)"
        if level.extension_id is not None and level.extension_id not in EXTENSION_ID_ONE_BYTE
        else ""
    )
    where = f"id {level.extension_id} ({said}){form}"
    return f"no audio packet carries an audio level at {where}; {hint}"


def _sdp_level_problem(sdp: SessionDescription) -> str | None:
    from decoders.session.sdp import audio_level_extmap_problem

    return audio_level_extmap_problem(sdp)
