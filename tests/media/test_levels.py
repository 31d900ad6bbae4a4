"""Audio-level inference: the id that behaves like RFC 6464 levels, and only that one."""

from __future__ import annotations

from pathlib import Path

from helpers.corpus import call_shape

from decoders.media.levels import infer_audio_level_id
from decoders.wire.head import probe_head
from decoders.wire.rtp import HeaderExtension, RtpPacket


def packet(i: int, extensions: tuple[HeaderExtension, ...], size: int = 80) -> RtpPacket:
    raw = RtpPacket.build(
        payload_type=111,
        sequence_number=i,
        timestamp=960 * i,
        ssrc=1234,
        payload=bytes(size),
        extensions=extensions,
        extension_profile=0xBEDE if extensions else None,
    ).serialize()
    return RtpPacket.parse(raw, srtp=True)


def test_real_sessions_infer_the_negotiated_id(session_dir: Path) -> None:
    with (session_dir / "capture.pcapng").open("rb") as fo:
        head = probe_head(fo)
    found = infer_audio_level_id(head.rtp_packets)
    if not call_shape(session_dir).rtp_readable:
        # TURN over TLS: no RTP header in sight, so no id to infer, and it says so
        assert head.rtp_packets == []
        assert (found.extension_id, found.source) == (None, "none")
        return
    assert found.extension_id == 1 and found.source == "inferred"
    assert "audio-like" in found.evidence


def test_mid_at_the_start_and_transport_cc_are_not_levels() -> None:
    packets = []
    for i in range(200):
        ext = [HeaderExtension(7, bytes([(i * 7) % 60 + 10])), HeaderExtension(3, b"\x00\x01")]
        if i < 40:
            ext.append(HeaderExtension(4, b"0"))
        packets.append(packet(i, tuple(ext)))
    assert infer_audio_level_id(packets).extension_id == 7


def test_constant_non_silence_is_not_a_level_but_silence_is() -> None:
    constant = [packet(i, (HeaderExtension(2, b"\x30"),)) for i in range(100)]
    assert infer_audio_level_id(constant).extension_id is None
    silent = [packet(i, (HeaderExtension(2, b"\xff"),)) for i in range(100)]
    assert infer_audio_level_id(silent).extension_id == 2


def test_video_sized_streams_and_short_samples_are_ignored() -> None:
    video = [packet(i, (HeaderExtension(5, bytes([i % 90])),), size=1100) for i in range(100)]
    assert infer_audio_level_id(video).extension_id is None
    few = [packet(i, (HeaderExtension(5, bytes([i % 90])),)) for i in range(5)]
    found = infer_audio_level_id(few)
    assert found.extension_id is None and found.source == "none"
    assert "not found" in found.describe()
