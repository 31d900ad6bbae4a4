"""Tests for decoders.media.roles: what a stream is, from the SDP (real offers) and by behaviour
(each rule alone, then the whole table on recorded and synthetic captures)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import synthetic

from decoders.media.roles import (
    Behaviour,
    StreamRole,
    audio_evidence,
    behaviour,
    repair_evidence,
    role_from_sdp,
    roles_by_behaviour,
    video_evidence,
)
from decoders.media.scan import scan_streams
from decoders.session.sdp import parse_sdp, payload_types, ssrc_roles

ROOT = Path(__file__).resolve().parents[2]
SDP = ROOT / "tests" / "fixtures" / "sdp"


def sdp_tables(name: str) -> tuple[dict[int, object], dict[int, object]]:
    sdp = parse_sdp((SDP / name).read_text())
    return dict(ssrc_roles(sdp)), dict(payload_types(sdp))


def test_sdp_names_the_fid_ssrc_rtx_even_with_the_video_payload_type() -> None:
    ssrcs, pts = sdp_tables("firefox_offer.sdp")
    role = role_from_sdp(2731530283, 120, ssrcs, pts)  # type: ignore[arg-type]
    assert role == StreamRole(
        "video", "rtx", "sdp", "a=ssrc-group:FID 1393486425 2731530283", 1393486425
    )
    assert not role.carries_microphone


def test_sdp_names_an_unannounced_ssrc_by_its_payload_type() -> None:
    ssrcs, pts = sdp_tables("firefox_offer.sdp")
    role = role_from_sdp(0x1234, 124, ssrcs, pts)  # type: ignore[arg-type]
    assert role is not None
    assert (role.media, role.role, role.source) == ("video", "rtx", "sdp")
    assert role.evidence == "a=rtpmap:124 rtx/90000 in m=video, apt=120"
    media = role_from_sdp(1393486425, 120, ssrcs, pts)  # type: ignore[arg-type]
    assert media is not None and (media.media, media.role) == ("video", "media")
    assert role_from_sdp(0x1234, 55, ssrcs, pts) is None  # type: ignore[arg-type]


def test_audio_red_is_audio_and_carries_the_microphone() -> None:
    ssrcs, pts = sdp_tables("chromium_offer.sdp")
    role = role_from_sdp(0x1234, 63, ssrcs, pts)  # type: ignore[arg-type]
    assert role is not None and (role.media, role.role) == ("audio", "red")
    assert role.carries_microphone


def shape(
    ssrc: int,
    clock: int | None,
    *,
    frames: int = 200,
    per_frame: int = 1,
    size: int = 80,
    step: int = 960,
    every_ms: float = 20.0,
    timestamps: np.ndarray | None = None,
) -> Behaviour:
    ts = timestamps if timestamps is not None else (np.arange(frames) * step).astype(np.uint32)
    rtp = np.repeat(ts, per_frame).astype(np.uint32)
    arrival = (np.arange(rtp.size) * every_ms * 1e6 / per_frame).astype(np.int64)
    return behaviour(ssrc, arrival, rtp, np.full(rtp.size, size, np.int64), clock)


def test_video_rule() -> None:
    assert video_evidence(shape(1, 90000, per_frame=6, size=1100, step=3000)) == (
        "90 kHz timestamps, 6.0 packets per timestamp"
    )
    assert video_evidence(shape(1, 90000, size=1100, step=3000)) == (
        "90 kHz timestamps, payloads up to 1100 B (90th percentile)"
    )
    assert video_evidence(shape(1, 90000, size=80, step=3000)) is None  # small, one per frame
    assert video_evidence(shape(1, 48000, per_frame=6, size=1100)) is None


def test_audio_rule() -> None:
    assert audio_evidence(shape(1, 48000)) == (
        "48 kHz timestamps, one packet per timestamp every 20 ms, payload median 80 B"
    )
    assert audio_evidence(shape(1, 8000, size=160, step=160)) is not None
    assert audio_evidence(shape(1, 90000)) is None
    assert audio_evidence(shape(1, 48000, size=1000)) is None
    assert audio_evidence(shape(1, 48000, every_ms=200.0)) is None
    assert audio_evidence(shape(1, 48000, per_frame=3)) is None


def test_repair_rule_needs_the_video_timeline_its_path_and_few_packets() -> None:
    video = shape(1, 90000, frames=300, per_frame=6, size=1100, step=3000)
    some = video.timestamps[::25]
    rtx = shape(2, 90000, timestamps=some, size=1100, every_ms=500.0)
    assert repair_evidence(rtx, video) == (
        "100% of its RTP timestamps on video SSRC 0x00000001's (100% equal to a frame's), "
        f"same path, {some.size} packets to its {video.packets}"
    )
    # bandwidth probes: the last frame's timestamp advanced by the time since (recorded:
    # 623526701 after a frame at 623526071), and one probe at 0 before any frame
    probes = np.concatenate(([0], some[1:] + 630)).astype(np.uint32)
    probing = shape(3, None, timestamps=probes, size=265, every_ms=3.0)
    assert repair_evidence(probing, video) is not None
    elsewhere = replace(probing, path=("10.0.0.1", 1, "10.0.0.2", 2))
    assert repair_evidence(elsewhere, replace(video, path=("10.0.0.1", 1, "10.0.0.3", 2))) is None
    other = shape(4, 90000, timestamps=some + 2_000_000, size=1100, every_ms=500.0)
    assert repair_evidence(other, video) is None  # its own timeline
    dense = shape(5, 90000, timestamps=video.timestamps, per_frame=6, size=1100)
    assert repair_evidence(dense, video) is None  # as many packets: not a repair stream
    assert repair_evidence(video, video) is None


def test_roles_by_behaviour_say_they_were_inferred() -> None:
    video = shape(1, 90000, frames=300, per_frame=6, size=1100, step=3000)
    rtx = shape(2, 90000, timestamps=video.timestamps[::25], size=1100, every_ms=500.0)
    audio = shape(3, 48000)
    odd = shape(4, None, timestamps=(np.arange(200) * 960 + 1_000_000_000).astype(np.uint32))
    roles = roles_by_behaviour([audio, video, rtx, odd])
    assert [(r.media, r.role, r.source) for r in roles] == [
        ("audio", "media", "behaviour"),
        ("video", "media", "behaviour"),
        ("video", "rtx", "behaviour"),
        ("unknown", "unknown", "unknown"),
    ]
    assert roles[2].repairs == 1
    assert [r.carries_microphone for r in roles] == [True, False, False, True]


@pytest.mark.parametrize("transport", ["udp", "turn", "ice-tcp"])
def test_synthetic_video_rtx_and_audio_named_without_sdp(tmp_path: Path, transport: str) -> None:
    path = tmp_path / "rtx.pcap"
    with path.open("wb") as fo:
        truth = synthetic.write(
            fo,
            synthetic.Options(packets=6000, rtx=True, transport=transport),  # type: ignore[arg-type]
        )
    streams = {s.ssrc: s for s in scan_streams(path).streams}
    assert set(streams) == {t.ssrc for t in truth.streams}
    rtx = streams[synthetic.RTX_SSRC]
    assert (rtx.media, rtx.role, rtx.role_source) == ("video", "rtx", "behaviour")
    assert rtx.packets == next(t.packets for t in truth.streams if t.ssrc == synthetic.RTX_SSRC)
    assert "video SSRC 0x0badcafe" in rtx.role_evidence
    for t in truth.streams:
        if t.ssrc != synthetic.RTX_SSRC:
            assert (streams[t.ssrc].media, streams[t.ssrc].role) == (t.media, "media")
    assert [s.carries_microphone for s in streams.values()].count(True) == 2


def test_recorded_chromium_call_by_sdp_and_by_behaviour() -> None:
    session = ROOT / "captures" / "chromium-ui-only"
    alone = scan_streams(session / "capture.pcapng").streams
    assert [(s.media, s.role, s.role_source) for s in alone] == [("audio", "media", "behaviour")]
    sdp = parse_sdp((session / "offer.sdp").read_text())
    told = scan_streams(session / "capture.pcapng", sdp=sdp).streams
    assert [(s.media, s.role, s.role_source) for s in told] == [("audio", "media", "sdp")]
    assert told[0].role_evidence.startswith("a=rtpmap:111 opus/48000")
