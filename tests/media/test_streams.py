"""Streams: the right streams, with the right numbers, on real and synthetic captures."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decoders.media.scan import load_sdp, scan_streams
from decoders.media.streams import extended_sequence, interarrival_jitter, stream_table
from decoders.wire.bulk import scan_file

SYNTHETIC = [
    {},
    {"link": "sll"},
    {"link": "sll2"},
    {"link": "vlan"},
    {"link": "qinq"},
    {"ipv6": True},
    {"format": "pcap-ns"},
    {"format": "pcapng-2if"},
    {"transport": "ice-tcp"},
    {"transport": "turn"},
    *({"transport": "turn-tcp", "segments": m} for m in ("own", "coalesced", "split", "resent")),
    {"transport": "turn-tcp", "segments": "mid-stream"},
    {"audio_level_id": 9},
]


@pytest.mark.parametrize(
    "variant", SYNTHETIC, ids=lambda v: "-".join(map(str, v.values())) or "base"
)
@pytest.mark.parametrize("engine", ["fast", "scalar"])
def test_synthetic_streams_match_truth(
    variant: dict[str, Any], engine: str, make_synthetic: Any, tmp_path: Path
) -> None:
    data, truth = make_synthetic(packets=3000, **variant)
    capture = tmp_path / "capture.pcap"
    capture.write_bytes(data)
    scan = scan_streams(capture, engine=engine)  # no SDP: the level id must be inferred
    assert scan.level.extension_id == truth.audio_level_id
    assert scan.level.source == "inferred"
    found = {(s.src, s.src_port, s.dst, s.dst_port, s.ssrc): s for s in scan.streams}
    expected = {(t.src, t.src_port, t.dst, t.dst_port, t.ssrc): t for t in truth.streams}
    assert set(found) == set(expected)
    for key, t in expected.items():
        s = found[key]
        assert s.packets == t.packets
        assert s.lost == 0 and s.duplicates == 0 and s.out_of_order == 0
        assert s.media == t.media
        assert s.payload_types == (t.payload_type,)
        assert (s.audio_level_packets == s.packets) is t.levels
        assert s.srtp_auth_tag_length == 10  # the synthetic DTLS ServerHello chose profile 1
        if t.media == "audio":
            assert s.clock_rate == 48000
            assert 45 < s.packets_per_second < 55
        else:
            assert s.clock_rate == 90000
        if variant.get("transport") == "ice-tcp":
            assert s.transport == "tcp"
        if variant.get("transport") == "turn":
            assert s.tunnel == "turn-channel"
        if variant.get("transport") == "turn-tcp":  # mostly ChannelData, some Send/Data
            assert s.transport == "tcp"


def test_real_session_streams(session_dir: Path) -> None:
    sdp = load_sdp((session_dir / "offer.sdp",))
    scan = scan_streams(session_dir / "capture.pcapng", sdp=sdp)
    assert scan.level.source == "sdp"
    audio = [s for s in scan.streams if s.media == "audio"]
    assert audio, "the browser's audio stream"
    browser = max(audio, key=lambda s: s.packets)
    assert browser.codec == "opus" and browser.clock_rate == 48000
    # 50 packets/s, less where muting stops or thins the stream (replace-null, stopped, DTX)
    thinned = any(v in session_dir.name for v in ("dtx", "replace-null", "track-stopped"))
    low = 10 if thinned else 45
    assert low < browser.packets_per_second < 55
    assert browser.audio_level_packets == browser.packets
    assert browser.srtp_auth_tag_length == 10
    # the same streams without SDP: the level id is inferred from behaviour
    bare = scan_streams(session_dir / "capture.pcapng")
    assert bare.level.source == "inferred"
    assert bare.level.extension_id == scan.level.extension_id
    assert [(s.ssrc, s.packets, s.audio_level_packets) for s in bare.streams] == [
        (s.ssrc, s.packets, s.audio_level_packets) for s in scan.streams
    ]


def test_extended_sequence_wraps() -> None:
    seq = np.array([65533, 65534, 65535, 0, 1, 3, 2], dtype=np.uint16)
    assert extended_sequence(seq).tolist() == [65533, 65534, 65535, 65536, 65537, 65539, 65538]


def test_jitter_matches_the_rfc_loop() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    arrival = (np.arange(n) * 20_000_000 + rng.integers(0, 3_000_000, n)).astype(np.int64)
    rtp_ts = (np.arange(n) * 960 + 77).astype(np.uint32)
    fast = interarrival_jitter(arrival, rtp_ts, 48000)
    j = 0.0
    expected = [0.0]
    for i in range(1, n):
        d = (arrival[i] - arrival[i - 1]) * 48000 / 1e9 - (int(rtp_ts[i]) - int(rtp_ts[i - 1]))
        j += (abs(d) - j) / 16
        expected.append(j * 1000 / 48000)
    assert np.allclose(fast, expected, rtol=1e-9, atol=1e-12)


def test_loss_duplicates_and_reordering(make_synthetic: Any) -> None:
    """Drop, duplicate and swap packets of a capture and count them back."""
    from decoders.wire.capture import CaptureReader
    from decoders.wire.pcapwriter import PcapWriter

    data, truth = make_synthetic(packets=3000)
    frames = list(CaptureReader(io.BytesIO(data)))
    rows = scan_file(io.BytesIO(data), truth.audio_level_id).rows
    audio_ssrc = truth.streams[0].ssrc
    audio_frames = [
        int(f)
        for f, s, k in zip(rows["frame"], rows["ssrc"], rows["kind"], strict=True)
        if s == audio_ssrc and k == 5
    ]
    drop = set(audio_frames[100:103])
    dup = audio_frames[200]
    swap = audio_frames[300], audio_frames[301]
    out = io.BytesIO()
    writer = PcapWriter(out, frames[0].link_type, nanosecond=True)
    by_number = {f.number: f for f in frames}
    for f in frames:
        if f.number in drop:
            continue
        if f.number == swap[0]:
            f = by_number[swap[1]]
        elif f.number == swap[1]:
            f = by_number[swap[0]]
        writer.write(f.timestamp_ns, f.data)
        if f.number == dup:
            writer.write(f.timestamp_ns + 1000, f.data)
    result = scan_file(io.BytesIO(out.getvalue()), truth.audio_level_id)
    stats = {s.ssrc: s for s in stream_table(result.rows)}[audio_ssrc]
    assert stats.lost == 3
    assert stats.duplicates == 1
    assert stats.out_of_order == 1
    assert stats.packets == truth.streams[0].packets - 3 + 1


@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 1000])
def test_median_of_counts_is_the_median(n: int) -> None:
    from decoders.media.streams import median_of_counts

    values = np.random.default_rng(n).integers(0, 300, n)
    assert median_of_counts(values) == float(np.median(values))
