"""What each RTP stream is: audio or video, the media itself or a repair stream beside it.

``role`` is ``media`` (the encoded audio or video), ``rtx`` (RFC 4588 retransmissions of another
stream's packets: old packets again, and Chromium's bandwidth probes, which are padding),
``fec`` (RFC 5109 / RFC 8627 forward error correction) or ``red`` (RFC 2198 redundancy: for audio
it still carries the audio, so it is judged as audio). Video, RTX and FEC streams cannot carry the
microphone; the audit does not judge them as muted audio.

With SDP (:func:`role_from_sdp`): the SSRC's ``a=ssrc-group`` (FID, FEC-FR) or ``a=ssrc`` line,
else its payload type's encoding name (``rtx`` with ``apt=``, ``ulpfec``, ``flexfec``, ``red``)
and the m= line it is on. Without SDP (:func:`roles_by_behaviour`), small named rules over what
the packets show, each returning the evidence it saw or None, tried in this order:

- :func:`repair_evidence` (first: RTX of video has video's clock and sizes too): on the same
  path as a video stream, the stream's RTP timestamps lie on that video's timeline (RTX repeats
  video packets with their own timestamps; its bandwidth probes carry the last frame's, advanced
  by the time since), while it sends far fewer packets than that stream;
- :func:`video_evidence`: a 90 kHz clock with several packets per RTP timestamp (a frame split
  into packets) or payloads far beyond audio sizes;
- :func:`audio_evidence`: an audio clock (8-48 kHz), one packet per timestamp, small payloads
  at a steady 10-60 ms spacing.

The original sequence number at the start of an RTX payload (RFC 4588 §4) is visible only in
plain RTP; in SRTP it is encrypted, so the rules above use only the clear header, sizes and
timing. A stream no rule recognises keeps its clock-rate guess and the role ``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from decoders.session.sdp import Codec, SsrcRole

AUDIO_CLOCKS: Final = (8000, 16000, 32000, 44100, 48000)
VIDEO_CLOCK: Final = 90000
BIG_PAYLOAD: Final = 600
"""Bytes: Opus tops out near 510 at 20 ms and G.711 at 160; video packets fill the MTU."""
PACKETS_PER_FRAME: Final = 1.3
"""Mean packets per RTP timestamp above which a stream splits frames (video)."""
SHARED_TIMESTAMPS: Final = 0.75
"""Share of a stream's RTP timestamps on a video stream's timeline for it to repair that one."""
NEAR_TICKS: Final = 90000
"""On a video's timeline: within one second (at 90 kHz) of one of its frames' timestamps.
Retransmissions carry a frame's own timestamp; bandwidth probes (padding) carry the last
frame's advanced by the time since, a few hundred ticks off. Independent streams start at
random 32-bit timestamps, so they land this close to a video's by chance almost never."""
SPARSE: Final = 0.5
"""A repair stream sends at most this share of the packets of the stream it repairs."""
AUDIO_SPACING_MS: Final = (10.0, 60.0)


@dataclass(frozen=True, slots=True)
class StreamRole:
    """What a stream is: ``media`` (audio/video/unknown), ``role``, who said it and how."""

    media: str
    role: str
    source: str
    """``sdp``, ``static`` (RFC 3551 payload type), ``behaviour`` or ``unknown``."""
    evidence: str
    repairs: int | None = None
    """For rtx/fec: the SSRC of the stream it repeats or protects, when known."""

    @property
    def carries_microphone(self) -> bool:
        """Could this stream carry the microphone? Not video, not a repair stream."""
        return self.media != "video" and self.role not in ("rtx", "fec")


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the packets of one stream show, for the rules (capture clock, clear RTP header)."""

    ssrc: int
    packets: int
    clock_rate: int | None
    packets_per_timestamp: float
    """Mean packets per run of one RTP timestamp (a video frame is one run of packets)."""
    payload_median: float
    payload_p90: float
    spacing_ms: float | None
    """Median time between packets of different RTP timestamps."""
    timestamps: npt.NDArray[np.uint32]
    """The RTP timestamp of each run of packets sharing one (a frame), in capture order."""
    path: tuple[str, int, str, int] | None = None
    """Source address and port, destination address and port, when known."""


def behaviour(
    ssrc: int,
    arrival_ns: npt.NDArray[np.int64],
    rtp_timestamp: npt.NDArray[np.uint32],
    payload_length: npt.NDArray[np.int64],
    clock_rate: int | None,
    path: tuple[str, int, str, int] | None = None,
) -> Behaviour:
    """Summarise one stream's packets (in capture order) for the rules, in linear time."""
    n = int(arrival_ns.size)
    starts = np.concatenate(([0], np.flatnonzero(rtp_timestamp[1:] != rtp_timestamp[:-1]) + 1))
    spacing = None
    if n and starts.size >= 2:
        spacing = float(np.median(np.diff(arrival_ns[starts]))) / 1e6
    median, p90 = (float(v) for v in np.percentile(payload_length, [50, 90])) if n else (0.0, 0.0)
    return Behaviour(
        ssrc=ssrc,
        packets=n,
        clock_rate=clock_rate,
        packets_per_timestamp=n / starts.size if n else 0.0,
        payload_median=median,
        payload_p90=p90,
        spacing_ms=spacing,
        timestamps=rtp_timestamp[starts] if n else rtp_timestamp[:0],
        path=path,
    )


def video_evidence(b: Behaviour) -> str | None:
    """90 kHz timestamps and frames split into packets, or payloads far beyond audio."""
    if b.clock_rate != VIDEO_CLOCK:
        return None
    if b.packets_per_timestamp >= PACKETS_PER_FRAME:
        return f"90 kHz timestamps, {b.packets_per_timestamp:.1f} packets per timestamp"
    if b.payload_p90 > BIG_PAYLOAD:
        return f"90 kHz timestamps, payloads up to {b.payload_p90:.0f} B (90th percentile)"
    return None


def repair_evidence(b: Behaviour, video: Behaviour) -> str | None:
    """On ``video``'s timestamps and path, with far fewer packets: RTX (or FEC) of it."""
    if b.ssrc == video.ssrc or b.packets > SPARSE * video.packets or b.timestamps.size == 0:
        return None
    if b.path is not None and video.path is not None and b.path != video.path:
        return None
    frames = np.unique(video.timestamps).astype(np.int64)
    if frames.size == 0:
        return None
    mine = b.timestamps.astype(np.int64)
    at = np.searchsorted(frames, mine)
    below = frames[np.maximum(at - 1, 0)]
    above = frames[np.minimum(at, frames.size - 1)]
    distance = np.minimum(np.abs(mine - below), np.abs(mine - above))
    share = float((distance <= NEAR_TICKS).mean())
    if share < SHARED_TIMESTAMPS:
        return None
    exact = float((distance == 0).mean())
    return (
        f"{100 * share:.0f}% of its RTP timestamps on video SSRC 0x{video.ssrc:08x}'s "
        f"({100 * exact:.0f}% equal to a frame's), same path, {b.packets} packets to its "
        f"{video.packets}"
    )


def audio_evidence(b: Behaviour) -> str | None:
    """An audio clock, one packet per timestamp, small payloads at a steady frame spacing."""
    if b.clock_rate not in AUDIO_CLOCKS or b.packets_per_timestamp >= PACKETS_PER_FRAME:
        return None
    if b.payload_p90 > BIG_PAYLOAD:
        return None
    low, high = AUDIO_SPACING_MS
    if b.spacing_ms is None or not low <= b.spacing_ms <= high:
        return None
    return (
        f"{b.clock_rate // 1000} kHz timestamps, one packet per timestamp every "
        f"{b.spacing_ms:.0f} ms, payload median {b.payload_median:.0f} B"
    )


def roles_by_behaviour(streams: Sequence[Behaviour]) -> list[StreamRole]:
    """Name each stream by the rules: video first, then what repeats a video, then audio."""
    videos = [b for b in streams if video_evidence(b) is not None]
    out: list[StreamRole] = []
    for b in streams:
        repaired = None
        if b.clock_rate not in AUDIO_CLOCKS:  # a repair stream keeps the video's 90 kHz clock
            repaired = next(
                ((v, why) for v in videos if (why := repair_evidence(b, v)) is not None), None
            )
        if repaired is not None:  # first: RTX of video has video's clock and sizes too
            out.append(StreamRole("video", "rtx", "behaviour", repaired[1], repaired[0].ssrc))
            continue
        seen = video_evidence(b)
        if seen is not None:
            out.append(StreamRole("video", "media", "behaviour", seen))
            continue
        seen = audio_evidence(b)
        if seen is not None:
            out.append(StreamRole("audio", "media", "behaviour", seen))
            continue
        media = "unknown"
        if b.clock_rate is not None:
            media = "video" if b.clock_rate == VIDEO_CLOCK else "audio"
        out.append(StreamRole(media, "unknown", "behaviour" if b.clock_rate else "unknown", ""))
    return out


def role_from_sdp(
    ssrc: int,
    payload_type: int,
    ssrcs: Mapping[int, SsrcRole],
    payload_types: Mapping[int, tuple[str, Codec]],
) -> StreamRole | None:
    """The SDP's word on a stream: its SSRC's group or line, else its payload type."""
    from_payload = payload_types.get(payload_type)
    known = ssrcs.get(ssrc)
    if known is not None and known.role != "media":
        return StreamRole(known.media, known.role, "sdp", known.evidence, known.protects)
    if from_payload is not None:
        kind, codec = from_payload
        evidence = f"a=rtpmap:{payload_type} {codec.name}/{codec.clock_rate} in m={kind}"
        if codec.associated_payload_type is not None:
            evidence += f", apt={codec.associated_payload_type}"
        return StreamRole(kind, codec.role, "sdp", evidence)
    if known is not None:
        return StreamRole(known.media, "media", "sdp", known.evidence)
    return None
