"""Capture to stream table: engines, SDP, and what the head probe found."""

from __future__ import annotations

from pathlib import Path

import pytest

from decoders.media.scan import load_sdp, scan_streams


def test_engines_agree(session_dir: Path) -> None:
    fast = scan_streams(session_dir / "capture.pcapng", audio_level_id=1)
    scalar = scan_streams(session_dir / "capture.pcapng", audio_level_id=1, engine="scalar")
    assert [s for s in fast.streams] == [s for s in scalar.streams]
    assert fast.datagram_counts() == scalar.datagram_counts()
    assert fast.capture_format == scalar.capture_format == "pcapng"


def test_sdp_decides_codec_and_level(session_dir: Path) -> None:
    sdp = load_sdp((session_dir / "answer.sdp", session_dir / "offer.sdp"))
    assert sdp is not None
    scan = scan_streams(session_dir / "capture.pcapng", sdp=sdp)
    assert scan.level.source == "sdp" and scan.level.extension_id == 1
    assert scan.streams[0].codec == "opus" and scan.streams[0].codec_source == "sdp"


def test_given_id_wins(session_dir: Path) -> None:
    scan = scan_streams(session_dir / "capture.pcapng", audio_level_id=4)
    assert scan.level.source == "given"
    # id 4 is sdes:mid here: on the first packets only, and not a level
    assert scan.streams[0].audio_level_packets < scan.streams[0].packets


def test_unknown_engine(session_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        scan_streams(session_dir / "capture.pcapng", engine="psychic")
