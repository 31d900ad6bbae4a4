"""The head probe: the SRTP profile and an RTP sample from the first frames."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from helpers.corpus import call_shape

from decoders.wire.head import probe_head


def test_real_session_head(session_dir: Path) -> None:
    with (session_dir / "capture.pcapng").open("rb") as fo:
        head = probe_head(fo)
    if not call_shape(session_dir).rtp_readable:
        # TURN over TLS: the DTLS handshake and the RTP are inside TLS records; the probe
        # sees neither and says so (no profile, no sample) rather than guessing
        assert (head.srtp_profile, head.offered_profiles, head.rtp_packets) == (None, (), [])
        assert head.srtp_profile_name is None and head.srtp_auth_tag_length is None
        return
    # relayed over UDP or TCP too: the handshake and the media inside TURN are read
    assert head.srtp_profile == 1
    assert head.srtp_profile_name == "SRTP_AES128_CM_SHA1_80"
    assert head.srtp_auth_tag_length == 10
    assert 1 in head.offered_profiles
    assert len(head.rtp_packets) > 100


def test_frame_limit(make_synthetic: Any) -> None:
    data, _ = make_synthetic(packets=500)
    head = probe_head(io.BytesIO(data), max_frames=50)
    assert 0 < len(head.rtp_packets) < 50
    assert head.srtp_profile == 1 and head.offered_profiles == (7, 8, 1, 2)


def test_the_probe_reads_a_bounded_head() -> None:
    """Huge records: the probe stops after HEAD_BYTES, not after 5,000 frames of 16 MB each."""
    import struct

    from decoders.wire.head import HEAD_BYTES

    record = 1 << 20
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, record, 1)
    data = header + (struct.pack("<IIII", 0, 0, record, record) + bytes(record)) * 48
    source = io.BytesIO(data)
    head = probe_head(source)
    assert head.rtp_packets == []
    assert source.tell() <= HEAD_BYTES + 2 * record < len(data)
