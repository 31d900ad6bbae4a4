"""Where the RFC 6464 audio level is: from SDP, or inferred from the packets' behaviour."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import median

from decoders.wire.rtp import RtpPacket

MIN_PACKETS = 20
PRESENCE = 0.9
AUDIO_PAYLOAD_MAX = 400


@dataclass(frozen=True, slots=True)
class LevelSource:
    """Which header-extension id carries the audio level, and how we know."""

    extension_id: int | None
    source: str  # "sdp", "given", "inferred" or "none"
    evidence: str
    warning: str | None = None
    """What was wrong with the SDP's audio-level extmap, when something was."""

    def describe(self) -> str:
        if self.extension_id is None:
            return f"audio level: not found ({self.evidence})"
        return f"audio level: extension id {self.extension_id} ({self.source}: {self.evidence})"


def infer_audio_level_id(packets: Iterable[RtpPacket]) -> LevelSource:
    """Find the extension id that behaves like an RFC 6464 audio level.

    An audio level is a 1-byte element present on (nearly) every packet of an audio-like
    stream (small payloads). That rules out ``sdes:mid`` (sent only at the start), and
    abs-send-time/transport-cc (3 and 2 bytes). Among candidates the one whose level values
    vary most wins; a constant 127 (silence) still counts, other constants do not.
    """
    by_ssrc: dict[int, list[RtpPacket]] = defaultdict(list)
    for packet in packets:
        by_ssrc[packet.ssrc].append(packet)
    scores: dict[int, tuple[int, int, int]] = {}
    for ssrc_packets in by_ssrc.values():
        if len(ssrc_packets) < MIN_PACKETS:
            continue
        if median(p.payload_length for p in ssrc_packets) > AUDIO_PAYLOAD_MAX:
            continue
        seen: dict[int, list[int]] = defaultdict(list)
        for p in ssrc_packets:
            for element in p.extensions:
                if len(element.data) == 1:
                    seen[element.id].append(element.data[0] & 0x7F)
        for ident, values in seen.items():
            if len(values) < PRESENCE * len(ssrc_packets):
                continue
            distinct = len(set(values))
            if distinct == 1 and values[0] != 127:
                continue
            old = scores.get(ident, (0, 0, 0))
            scores[ident] = (old[0] + 1, old[1] + distinct, old[2] + len(values))
    if not scores:
        return LevelSource(None, "none", "no 1-byte extension behaves like an audio level")
    best = max(scores, key=lambda i: (scores[i][1], scores[i][0]))
    streams, distinct, count = scores[best]
    return LevelSource(
        best,
        "inferred",
        f"1-byte element on every packet of {streams} audio-like stream(s), "
        f"{distinct} distinct levels in {count} packets; no SDP",
    )
