"""Machine-readable output. The schema is documented in docs/streams-json.md; bump
``STREAMS_SCHEMA_VERSION`` on any incompatible change."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from decoders.media.levels import LevelSource
from decoders.media.streams import StreamStats, joined_legs

if TYPE_CHECKING:  # only a TLS-relayed capture loads the channel module
    from decoders.media.channels import TlsChannel

STREAMS_SCHEMA_VERSION = 1


def stream_json(s: StreamStats) -> dict[str, Any]:
    out = dataclasses.asdict(s)
    out["ssrc_hex"] = s.ssrc_hex
    out["payload_types"] = list(s.payload_types)
    return out


def streams_document(
    *,
    capture: str,
    capture_format: str,
    frames: int,
    datagrams: Mapping[str, int],
    counters: Mapping[str, int],
    damage: str | None,
    level: LevelSource,
    srtp_profile: str | None,
    streams: Sequence[StreamStats],
    engine: str,
    sdp: Mapping[str, Any] | None = None,
    channels: Sequence[TlsChannel] = (),
) -> dict[str, Any]:
    return {
        "schema": "mutecheck.streams",
        "version": STREAMS_SCHEMA_VERSION,
        "capture": capture,
        "format": capture_format,
        "engine": engine,
        "frames": frames,
        "datagrams": dict(datagrams),
        "skipped": dict(sorted(counters.items())),
        "damage": damage,
        "audio_level": {
            "extension_id": level.extension_id,
            "source": level.source,
            "evidence": level.evidence,
            **({"warning": level.warning} if level.warning else {}),
        },
        "srtp_profile": srtp_profile,
        "sdp": dict(sdp)
        if sdp is not None
        else {"source": _no_sdp(), "documents": [], "skipped": []},
        "streams": [stream_json(s) for s in streams],
        "joined_legs": [legs for legs in joined_legs(streams) if len(legs) > 1],
        "relayed_tls": [c.to_json() for c in channels],
    }


def _no_sdp() -> str:
    """The source named when a scan had no SDP (imported here: the SDP stage is slow to load)."""
    from decoders.session.sdpsources import NO_SDP

    return NO_SDP
