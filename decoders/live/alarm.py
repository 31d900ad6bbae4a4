"""The alarm rules: what, while muted, means the microphone is leaving the machine.

Three rules, each with the same meaning as the offline audit and the addon:

- an outgoing RTP packet whose RFC 6464 audio level (from the extmap id the SDP negotiated)
  is louder than :data:`decoders.audit.measure.SILENCE_LEVEL`, outside the grace period after
  a mute (:data:`decoders.session.timeline.GRACE_DEFAULT`);
- a volume-telemetry message the addon reported as a finding while muted (``telemetry``
  event with ``muted`` and ``finding``);
- the addon's own warning that relayed media it read was not silent (``media-while-muted``);
- for an audio stream that carries no audio level, payload sizes that vary like coded sound
  (the offline finding ``encoded-content-while-muted``: its thresholds, over the packets
  sent since the mute and its grace).

Each rule turns one observation into an :class:`Alarm` or None; :mod:`.state` decides when.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from decoders.audit.flags import (
    MAX_MODE_SHARE,
    MIN_DISTINCT_SIZES,
    MIN_SIZE_ENTROPY,
    MIN_SIZE_PACKETS,
)
from decoders.audit.measure import SILENCE_LEVEL, distribution
from decoders.session.timeline import GRACE_DEFAULT

GRACE_S: Final = GRACE_DEFAULT
"""Seconds after a mute in which sound is still expected (the encoder's last frames)."""


@dataclass(frozen=True, slots=True)
class Alarm:
    """Sound (or its level) left while muted: ``t`` when it left, ``subject`` what carried it."""

    t: float
    kind: str
    """``audio`` (an RTP stream's level), ``audio-sizes`` (its sizes, when it has no level),
    ``telemetry`` (an endpoint) or ``relayed-media``."""
    subject: str
    detail: str

    def line(self) -> str:
        """One line for a person: what, where, how loud."""
        what = {
            "audio": "sound is leaving while muted",
            "telemetry": "volume telemetry left while muted",
            "relayed-media": "sound is leaving while muted (relayed)",
            "audio-sizes": "sound is probably leaving while muted",
        }.get(self.kind, self.kind)
        return f"ALARM: {what}: {self.subject}: {self.detail}"


def loud(level: int | None) -> bool:
    """RFC 6464 level (0 loud .. 127 silence) says sound."""
    return level is not None and level < SILENCE_LEVEL


def packet_alarm(
    t: float, stream: str, level: int | None, muted_since: float | None
) -> Alarm | None:
    """An outgoing audio packet at ``t``; ``muted_since`` is when the mute in force began."""
    if muted_since is None or not loud(level) or t - muted_since < GRACE_S:
        return None
    return Alarm(t, "audio", stream, f"audio level -{level} dBov (silence is -127)")


def sizes_alarm(t: float, stream: str, sizes: list[int]) -> Alarm | None:
    """Payload sizes of an audio stream without levels, sent while muted (after the grace)."""
    if len(sizes) < MIN_SIZE_PACKETS:
        return None
    found = distribution(np.asarray(sizes, dtype=np.int64))
    if (
        found is None
        or found.distinct < MIN_DISTINCT_SIZES
        or found.entropy_bits < MIN_SIZE_ENTROPY
        or found.mode_share > MAX_MODE_SHARE
    ):
        return None
    detail = (
        f"{found.count} packets in {found.distinct} sizes ({found.minimum}-{found.maximum} "
        f"bytes, entropy {found.entropy_bits:.1f} bits): sizes vary like coded sound"
    )
    return Alarm(t, "audio-sizes", stream, detail)


def event_alarm(event: dict[str, Any]) -> Alarm | None:
    """An addon event that is itself a leak while muted (telemetry finding, relayed media)."""
    kind = event.get("kind")
    t = float(event.get("t", 0.0))
    if kind == "telemetry" and event.get("muted") and event.get("finding"):
        if event.get("grace"):
            return None
        fields = event.get("fields") or []
        shown = ", ".join(
            f"{f.get('path')}={f.get('value')}" for f in fields[:3] if isinstance(f, dict)
        )
        severity = event.get("severity") or "finding"
        return Alarm(t, "telemetry", str(event.get("endpoint", "?")), f"[{severity}] {shown}")
    if kind == "warning" and event.get("code") == "media-while-muted":
        flow = event.get("flow") or {}
        subject = f"{flow.get('client', '?')} -> {flow.get('server', '?')}"
        return Alarm(t, "relayed-media", subject, str(event.get("message", "")))
    return None
