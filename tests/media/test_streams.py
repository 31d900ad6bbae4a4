"""Streams: the right streams, with the right numbers, on real and synthetic captures."""

from __future__ import annotations

import io
import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.corpus import browser_audio_ssrcs, call_shape, mute_variant
from helpers.legs import Leg, write_switching_call
from hypothesis import given
from hypothesis import strategies as st

from decoders.media.scan import load_sdp, scan_streams
from decoders.media.streams import (
    StreamStats,
    extended_sequence,
    interarrival_jitter,
    jitter_summary,
    joined_legs,
    leg_note,
    legs_join,
    logical_streams,
    sequence_counts,
    stream_table,
)
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
    shape = call_shape(session_dir)
    bare = scan_streams(session_dir / "capture.pcapng")
    if not shape.rtp_readable:
        # TURN over TLS: the media is inside TLS records, so no RTP stream, and no level id
        # to infer without SDP; the records themselves are in the table (one row each)
        assert scan.streams == bare.streams == []
        assert set(scan.datagram_counts()) == {"tls"}
        assert (bare.level.extension_id, bare.level.source) == (None, "none")
        return
    audio = [s for s in scan.streams if s.media == "audio"]
    (browser,) = [
        s for s in audio if s.ssrc in browser_audio_ssrcs(session_dir) and s.src == shape.browser
    ]
    # the peer's speech comes back on a stream of its own when it talks
    incoming = [s for s in audio if s is not browser]
    assert len(incoming) == (1 if shape.peer_talks else 0)
    assert all(s.dst == shape.browser for s in incoming)
    # 50 packets/s, less where muting stops or thins the stream (replace-null, stopped, DTX)
    thinned = mute_variant(session_dir) in ("dtx", "replace-null", "track-stopped")
    for stream, low in [(browser, 10 if thinned else 45), *((s, 45) for s in incoming)]:
        assert stream.codec == "opus" and stream.clock_rate == 48000
        assert low < stream.packets_per_second < 55
        assert stream.audio_level_packets == stream.packets
        assert stream.srtp_auth_tag_length == 10
    # through a TURN relay: the browser's leg to coturn, ChannelData over UDP or TCP
    if shape.relay != "none":
        assert (browser.transport, browser.tunnel) == (shape.relay, "turn-channel")
    else:
        assert (browser.transport, browser.tunnel) == ("udp", None)
    # the same streams without SDP: the level id is inferred from behaviour
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


# -- one logical stream per SSRC across its legs -------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [("ice-tcp", "udp"), ("udp", "turn")])
def test_one_ssrc_over_two_paths_is_one_logical_stream(
    tmp_path: Path, first: Leg, second: Leg
) -> None:
    path = tmp_path / "switch.pcap"
    truth, _ = write_switching_call(path, first, second)
    scan = scan_streams(path)
    assert len(scan.streams) == 2 * len(truth.streams)  # the table shows each leg
    assert sorted(map(len, joined_legs(scan.streams))) == [2, 2, 2]
    streams, groups = logical_streams(scan.streams, scan.groups)
    assert {s.ssrc: (s.packets, s.legs) for s in streams} == {
        t.ssrc: (t.packets, 2) for t in truth.streams
    }
    for stats, group in zip(streams, groups, strict=True):
        assert group.size == stats.packets and bool(np.all(np.diff(group) > 0))
        assert set(scan.rows["ssrc"][group].tolist()) == {stats.ssrc}
        legs = [s for s in scan.streams if s.ssrc == stats.ssrc]
        assert (stats.src, stats.src_port) == (legs[0].src, legs[0].src_port)
        assert (stats.first_ns, stats.last_ns) == (legs[0].first_ns, legs[1].last_ns)


def leg(src: str, dst: str, first_s: float, last_s: float, ssrc: int = 7) -> StreamStats:
    (a, pa), (b, pb) = (x.split(":") for x in (src, dst))
    base = stream_table_row()
    return replace(
        base,
        src=a,
        src_port=int(pa),
        dst=b,
        dst_port=int(pb),
        ssrc=ssrc,
        first_ns=int(first_s * 1e9),
        last_ns=int(last_s * 1e9),
    )


def stream_table_row() -> StreamStats:
    path = Path(__file__).resolve().parents[2] / "captures" / "chromium-ui-only" / "capture.pcapng"
    return scan_streams(path).streams[0]


def test_legs_join_only_the_same_sender() -> None:
    a = leg("10.0.0.1:5000", "10.0.0.2:6000", 0, 10)
    assert legs_join(a, leg("10.0.0.1:5002", "10.0.0.3:3478", 9, 20))  # same source, overlap
    assert legs_join(a, leg("192.0.2.7:5000", "10.0.0.2:6000", 11, 20))  # after it: moved
    assert legs_join(a, leg("192.0.2.7:5000", "10.0.0.2:6000", 9, 20))  # 1 s in flight
    assert not legs_join(a, leg("192.0.2.7:5000", "10.0.0.2:6000", 5, 20))  # two senders
    assert not legs_join(a, leg("10.0.0.2:6000", "10.0.0.1:5000", 11, 20))  # an echo back
    assert not legs_join(a, leg("10.0.0.1:5000", "10.0.0.2:6000", 11, 20, ssrc=8))
    streams = [a, leg("10.0.0.2:6000", "10.0.0.1:5000", 0, 10), leg("10.0.0.1:1", "x:2", 10, 20)]
    assert joined_legs(streams) == [[0, 2], [1]]
    assert leg_note(streams, [0, 2]) == (
        "SSRC 0x00000007: 2 legs joined (udp 10.0.0.1:5000 -> 10.0.0.2:6000, 704 packets; "
        "udp 10.0.0.1:1 -> x:2, 704 packets)"
    )


@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=300))
def test_property_sequence_counts_follow_the_packets(numbers: list[int]) -> None:
    """Unwrapped sequence numbers counted packet by packet: distinct, lost (the gaps between
    the lowest and the highest), behind an earlier packet, and steps other than +1."""
    counts = sequence_counts(np.array(numbers, np.uint16))
    unwrapped = [numbers[0]]
    for number in numbers[1:]:
        unwrapped.append(unwrapped[-1] + ((number - unwrapped[-1] + 32768) & 0xFFFF) - 32768)
    distinct = set(unwrapped)
    assert counts.unique == len(distinct)
    assert counts.lost == max(unwrapped) - min(unwrapped) + 1 - len(distinct)
    behind = sum(1 for k in range(1, len(unwrapped)) if unwrapped[k] < max(unwrapped[:k]))
    assert counts.out_of_order == behind
    steps = sum(1 for a, b in itertools.pairwise(unwrapped) if b - a != 1)
    assert counts.sequence_errors == steps


def test_jitter_summary_is_the_largest_and_the_mean_after_the_first() -> None:
    arrival = np.array([0, 20_000_000, 45_000_000, 60_000_000], np.int64)
    stamps = np.array([0, 960, 1920, 2880], np.uint32)
    jitter = interarrival_jitter(arrival, stamps, 48000)
    assert jitter_summary(arrival, stamps, 48000) == (jitter.max(), jitter[1:].mean())
    assert jitter.max() > 0
    assert jitter_summary(arrival[:1], stamps[:1], 48000) == (0.0, None)
