"""Capture to stream table: engines, SDP, and what the head probe found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.corpus import browser_audio_ssrcs, call_shape, lab_session, ssrc_roles_of

from decoders.media.scan import StreamScan, load_sdp, scan_streams
from decoders.media.streams import stream_table
from decoders.session.sdpsources import SessionSdp
from decoders.wire.demux import PacketKind


def test_engines_agree(session_dir: Path) -> None:
    fast = scan_streams(session_dir / "capture.pcapng", audio_level_id=1)
    scalar = scan_streams(session_dir / "capture.pcapng", audio_level_id=1, engine="scalar")
    assert [s for s in fast.streams] == [s for s in scalar.streams]
    assert fast.datagram_counts() == scalar.datagram_counts()
    assert fast.capture_format == scalar.capture_format == "pcapng"


def test_groups_are_each_streams_packets(session_dir: Path) -> None:
    """The scan offers the packets of each row of its stream table (what the audit measures):
    every well-formed RTP row in exactly one group, in capture order, of the stream's key."""
    scan = scan_streams(session_dir / "capture.pcapng")
    rows = scan.rows
    rtp = rows.kind_mask(PacketKind.RTP) & ~rows["malformed"]
    assert len(scan.groups) == len(scan.streams)
    assert sum(group.size for group in scan.groups) == int(rtp.sum())
    for stats, group in zip(scan.streams, scan.groups, strict=True):
        assert group.size == stats.packets and bool(np.all(np.diff(group) > 0))
        assert bool(rtp[group].all()) and int(rows["frame"][group[0]]) == stats.first_frame
        assert set(rows["ssrc"][group].tolist()) == {stats.ssrc}
        assert {rows.addresses[int(a)] for a in rows["src"][group]} == {stats.src}
    assert stream_table(rows, srtp_auth_tag_length=scan.head.srtp_auth_tag_length) == scan.streams


def test_summary_is_what_the_scan_read(tmp_path: Path) -> None:
    """The capture part of report.json, typed: every field from the scan, in the report's order."""
    folder = lab_session("ui-only")
    scan = scan_streams(folder / "capture.pcapng")
    ts = scan.rows["timestamp_ns"]
    summary = scan.summary()
    assert summary.span == scan.span == (int(ts.min()) / 1e9, int(ts.max()) / 1e9)
    assert summary.level == scan.level and summary.sdp is None
    assert summary.to_json() == {
        "file": str(folder / "capture.pcapng"),
        "format": "pcapng",
        "frames": 756,
        "first": summary.span[0],
        "last": summary.span[1],
        "datagrams": {"stun": 26, "dtls": 5, "rtp": 704, "rtcp": 21},
        "skipped": {},
        "damage": None,
        "audio_level": {
            "extension_id": 1,
            "source": "inferred",
            "evidence": scan.level.evidence,
        },
        "srtp_profile": "SRTP_AES128_CM_SHA1_80",
        "srtp_auth_tag_length": 10,
        "sdp": None,
    }
    sdp = SessionSdp(None, "none: inferred from behaviour")
    assert scan.summary(sdp).to_json()["sdp"] == sdp.to_json()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes((folder / "capture.pcapng").read_bytes()[:200])  # the header, no frame
    empty = scan_streams(cut).summary()
    assert (empty.frames, empty.span, dict(empty.datagrams)) == (0, None, {})
    assert empty.damage == "truncated record at byte 164 (after frame 0)"
    assert (empty.to_json()["first"], empty.to_json()["last"]) == (None, None)


def _no_rtp_in_sight(scan: StreamScan) -> None:
    """TURN over TLS: the table has the TLS records and no RTP stream (only sizes and timing)."""
    counts = scan.datagram_counts()
    assert set(counts) == {"tls"} and counts["tls"] > 500
    assert scan.streams == []


def test_sdp_decides_codec_and_level(session_dir: Path) -> None:
    sdp = load_sdp((session_dir / "answer.sdp", session_dir / "offer.sdp"))
    assert sdp is not None
    scan = scan_streams(session_dir / "capture.pcapng", sdp=sdp)
    assert scan.level.source == "sdp" and scan.level.extension_id == 1
    if not call_shape(session_dir).rtp_readable:
        _no_rtp_in_sight(scan)
        return
    roles = ssrc_roles_of(session_dir)
    assert {s.ssrc for s in scan.streams} >= browser_audio_ssrcs(session_dir)
    for stream in scan.streams:  # every stream named by the SDP: Opus, VP8 or its RTX
        role = roles[stream.ssrc]
        assert (stream.media, stream.role) == (role.media, role.role)
        assert stream.codec_source == stream.role_source == "sdp"
        expected = {"audio": "opus", "video": "VP8" if role.role == "media" else "rtx"}
        assert stream.codec == expected[role.media]


def test_given_id_wins(session_dir: Path) -> None:
    scan = scan_streams(session_dir / "capture.pcapng", audio_level_id=4)
    assert scan.level.source == "given"
    if not call_shape(session_dir).rtp_readable:
        _no_rtp_in_sight(scan)
        return
    # id 4 is sdes:mid here: on the first packets only, and not a level
    audio = [s for s in scan.streams if s.ssrc in browser_audio_ssrcs(session_dir)]
    assert len(audio) == 1
    assert 0 < audio[0].audio_level_packets < audio[0].packets


def test_unknown_engine(session_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        scan_streams(session_dir / "capture.pcapng", engine="psychic")


def _offer_with_level_id(folder: Path, number: int, out: Path) -> Path:
    text = (folder / "offer.sdp").read_text()
    line = "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level"
    assert line in text
    out.write_text(text.replace(line, f"a=extmap:{number} {line.split(' ', 1)[1]}"))
    return out


@pytest.mark.parametrize("number", [0, 256, 300, 4096])
def test_an_unusable_sdp_level_id_is_inferred_and_warned(tmp_path: Path, number: int) -> None:
    """Issue 13: an SDP audio-level id no header can carry emptied the level column without a
    word; now the id is read from the packets and the scan carries the warning."""
    folder = lab_session("ui-only")
    sdp = load_sdp([_offer_with_level_id(folder, number, tmp_path / "offer.sdp")])
    scan = scan_streams(folder / "capture.pcapng", sdp=sdp)
    assert scan.level.extension_id == 1 and scan.level.source == "inferred"
    assert scan.level.warning is not None and f"id {number} is outside 1-14" in scan.level.warning
    audio = [s for s in scan.streams if s.media == "audio"]
    assert audio and all(s.audio_level_packets == s.packets for s in audio)


def test_an_sdp_level_id_the_packets_do_not_carry_is_warned(tmp_path: Path) -> None:
    folder = lab_session("ui-only")
    sdp = load_sdp([_offer_with_level_id(folder, 20, tmp_path / "offer.sdp")])
    scan = scan_streams(folder / "capture.pcapng", sdp=sdp)
    assert scan.level.extension_id == 20 and scan.level.source == "sdp"
    assert scan.level.warning == (
        "no audio packet carries an audio level at id 20 (the SDP's a=extmap) (ids above 14 "
        "only fit the two-byte header form, RFC 8285 §4.3); the packets carry one at id 1: "
        "pass --audio-level-id 1"
    )
    given = scan_streams(folder / "capture.pcapng", sdp=sdp, audio_level_id=1)
    assert given.level.warning is None
    plain = scan_streams(folder / "capture.pcapng", sdp=load_sdp([folder / "offer.sdp"]))
    assert plain.level.warning is None and plain.level.source == "sdp"
