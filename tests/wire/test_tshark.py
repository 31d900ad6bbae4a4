"""Differential test: our decoders against tshark (Wireshark's dissectors) on the same files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decoders.media.scan import scan_streams
from decoders.wire import demux, rtp
from decoders.wire.bulk import scan_file
from decoders.wire.capture import CaptureReader
from decoders.wire.demux import PacketKind
from decoders.wire.net import Unwrapper
from decoders.wire.rowbuild import KIND_CODES
from decoders.wire.tshark import epoch_ns, run_fields

FIELDS = (
    "frame.number",
    "frame.time_epoch",
    "rtp.ssrc",
    "rtp.seq",
    "rtp.timestamp",
    "rtp.p_type",
    "rtp.marker",
    "rtp.ext.rfc5285.id",
    "rtp.ext.rfc5285.data",
)


def tshark_rtp(capture: Path, ports: set[int]) -> dict[int, dict[str, str]]:
    decode = [f"udp.port=={p},rtp" for p in sorted(ports)]
    out: dict[int, dict[str, str]] = {}
    for values in run_fields(
        capture, FIELDS, decode_as=decode, heuristics=(), display_filter="rtp.version == 2 && !rtcp"
    ):
        row = dict(zip(FIELDS, values, strict=False))
        out[int(row["frame.number"])] = row
    return out


def our_extensions(capture: Path) -> dict[int, rtp.RtpPacket]:
    """Every RTP packet by frame number, through the scalar path."""
    packets: dict[int, rtp.RtpPacket] = {}
    unwrapper = Unwrapper()
    with capture.open("rb") as fo:
        for frame in CaptureReader(fo):
            for d in unwrapper.feed(frame):
                if demux.classify(d.payload) is PacketKind.RTP:
                    packets[d.frame] = rtp.RtpPacket.parse(d.payload)
    return packets


def compare(capture: Path, level_id: int | None) -> int:
    with capture.open("rb") as fo:
        result = scan_file(fo, level_id)
    rows = result.rows
    is_rtp = rows["kind"] == KIND_CODES.index(PacketKind.RTP)
    ports = {int(p) for p in rows["dst_port"][is_rtp]} | {int(p) for p in rows["src_port"][is_rtp]}
    theirs = tshark_rtp(capture, ports)
    ours = {int(f): i for i, f in enumerate(rows["frame"]) if is_rtp[i]}
    assert set(ours) == set(theirs), "the same frames are RTP"
    packets = our_extensions(capture)
    for frame, i in ours.items():
        t = theirs[frame]
        assert int(rows["ssrc"][i]) == int(t["rtp.ssrc"], 16), frame
        assert int(rows["sequence_number"][i]) == int(t["rtp.seq"]), frame
        assert int(rows["rtp_timestamp"][i]) == int(t["rtp.timestamp"]), frame
        assert int(rows["payload_type"][i]) == int(t["rtp.p_type"]), frame
        assert bool(rows["marker"][i]) == (t["rtp.marker"] in ("1", "True")), frame
        assert int(rows["timestamp_ns"][i]) == epoch_ns(t["frame.time_epoch"]), frame
        ids = [int(x) for x in t["rtp.ext.rfc5285.id"].split(",") if x]
        data = [bytes.fromhex(x.replace(":", "")) for x in t["rtp.ext.rfc5285.data"].split(",")][
            : len(ids)
        ]
        mine = packets[frame].extensions
        assert [e.id for e in mine] == ids, frame
        assert [e.data for e in mine] == data, frame
        if level_id is not None and level_id in ids:
            level = data[ids.index(level_id)][0]
            assert int(rows["audio_level"][i]) == level & 0x7F
            assert bool(rows["voice"][i]) == bool(level & 0x80)
    return len(ours)


def test_real_sessions_match_tshark(session_dir: Path, tshark: str) -> None:
    assert compare(session_dir / "capture.pcapng", 1) > 100


@pytest.mark.parametrize(
    "variant",
    [{}, {"link": "sll2"}, {"link": "vlan", "ipv6": True}, {"format": "pcapng-2if"}],
    ids=lambda v: "-".join(map(str, v.values())) or "base",
)
def test_synthetic_matches_tshark(
    variant: dict[str, Any], make_synthetic: Any, tmp_path: Path, tshark: str
) -> None:
    data, truth = make_synthetic(packets=1500, **variant)
    capture = tmp_path / "capture.pcapng"
    capture.write_bytes(data)
    assert compare(capture, truth.audio_level_id) == sum(s.packets for s in truth.streams)


def test_tshark_engine_agrees_on_streams(session_dir: Path, tshark: str) -> None:
    fast = scan_streams(session_dir / "capture.pcapng", audio_level_id=1)
    slow = scan_streams(session_dir / "capture.pcapng", audio_level_id=1, engine="tshark")
    key = [(s.src, s.src_port, s.dst, s.dst_port, s.ssrc, s.packets) for s in fast.streams]
    assert key == [(s.src, s.src_port, s.dst, s.dst_port, s.ssrc, s.packets) for s in slow.streams]
    for a, b in zip(fast.streams, slow.streams, strict=True):
        assert a.audio_level_packets == b.audio_level_packets
        assert a.audio_level_median == b.audio_level_median
        assert a.payload_median == b.payload_median
        assert a.lost == b.lost
    assert np.array_equal(
        fast.rows["sequence_number"][fast.rows["kind"] == 5],
        slow.rows["sequence_number"][slow.rows["kind"] == 5],
    )
    _ = io


def tshark_ssrc_counts(capture: Path) -> dict[int, int]:
    """RTP packets per SSRC as tshark 4.0 finds them inside TURN over TCP.

    What works: port 3478 is STUN to tshark already (its STUN dissector reassembles TCP and
    splits STUN and ChannelData messages), and ``-o rtp.heuristic_rtp:TRUE`` lets the RTP
    heuristic claim each ChannelData payload. ``-d tcp.port==3478,stun`` adds nothing then;
    without the heuristic tshark shows the ChannelData payloads as plain data. Reordered
    segments need ``-o tcp.reassemble_out_of_order:TRUE`` (off by default in 4.0: tshark
    then loses most messages after the first out-of-order segment). One frame may
    hold several RTP packets (coalesced messages): every ``rtp.ssrc`` value counts.
    """
    counts: dict[int, int] = {}
    for (values,) in run_fields(
        capture,
        ("rtp.ssrc",),
        decode_as=(),
        heuristics=(),
        display_filter="rtp.version == 2 && !rtcp",
        options=("-o", "rtp.heuristic_rtp:TRUE", "-o", "tcp.reassemble_out_of_order:TRUE"),
    ):
        for ssrc in values.split(","):
            counts[int(ssrc, 16)] = counts.get(int(ssrc, 16), 0) + 1
    return counts


@pytest.mark.parametrize("segments", ["own", "coalesced", "split", "resent", "mixed"])
@pytest.mark.parametrize("engine", ["fast", "scalar"])
def test_turn_over_tcp_streams_match_tshark(
    segments: str, engine: str, make_synthetic: Any, tmp_path: Path, tshark: str
) -> None:
    data, truth = make_synthetic(packets=1500, transport="turn-tcp", segments=segments)
    capture = tmp_path / "capture.pcap"
    capture.write_bytes(data)
    theirs = tshark_ssrc_counts(capture)
    ours = scan_streams(capture, engine=engine)
    assert {s.ssrc: s.packets for s in ours.streams} == theirs
    assert theirs == {t.ssrc: t.packets for t in truth.streams}
