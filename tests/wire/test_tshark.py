"""Differential test: our decoders against tshark (Wireshark's dissectors) on the same files."""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.corpus import call_shape

from decoders.media.scan import scan_streams
from decoders.wire import demux, rtp
from decoders.wire.bulk import scan_file
from decoders.wire.capture import CaptureReader
from decoders.wire.demux import PacketKind
from decoders.wire.net import Unwrapper
from decoders.wire.rowbuild import KIND_CODES, TUNNEL_CODES
from decoders.wire.tshark import dissection_args, epoch_ns, run_fields

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


TCP_OPTIONS = ("-o", "tcp.reassemble_out_of_order:TRUE")
"""Reordered TCP segments are reassembled (off by default in tshark 4.0)."""


def tshark_rtp(capture: Path, ports: set[int], *, turn: bool) -> dict[int, list[dict[str, str]]]:
    """tshark's RTP packets per frame: on ``ports`` by decode-as, and inside TURN ChannelData
    (its STUN dissector on the TURN port, over UDP or TCP) by the RTP-over-STUN heuristic."""
    decode = [f"udp.port=={p},rtp" for p in sorted(ports)]
    out: dict[int, list[dict[str, str]]] = {}
    for values in run_fields(
        capture,
        FIELDS,
        decode_as=decode,
        heuristics=("rtp_stun",) if turn else (),
        display_filter="rtp.version == 2 && !rtcp",
        options=TCP_OPTIONS,
    ):
        row = dict(zip(FIELDS, values, strict=False))
        packets = len(row["rtp.ssrc"].split(","))
        if packets == 1:
            out[int(row["frame.number"])] = [row]
        else:  # coalesced TURN messages: one value per packet (extensions left out)
            columns = {f: row[f].split(",") for f in FIELDS[2:7]}
            out[int(row["frame.number"])] = [
                {**row, **{f: v[n] for f, v in columns.items()}, "coalesced": "yes"}
                for n in range(packets)
            ]
    return out


def our_extensions(capture: Path) -> dict[int, list[rtp.RtpPacket]]:
    """Every RTP packet by frame number (TURN wrappers taken off), through the scalar path."""
    packets: dict[int, list[rtp.RtpPacket]] = defaultdict(list)
    unwrapper = Unwrapper()
    with capture.open("rb") as fo:
        datagrams = [d for frame in CaptureReader(fo) for d in unwrapper.feed(frame)]
    for d in datagrams + unwrapper.flush():
        opened = demux.open_payload(d.payload)
        if opened.kind is PacketKind.RTP:
            packets[d.frame].append(rtp.RtpPacket.parse(opened.payload))
    return packets


def compare(capture: Path, level_id: int | None) -> int:
    with capture.open("rb") as fo:
        result = scan_file(fo, level_id)
    rows = result.rows
    is_rtp = rows["kind"] == KIND_CODES.index(PacketKind.RTP)
    bare = is_rtp & (rows["tunnel"] == TUNNEL_CODES.index(None))
    ports = {int(p) for p in rows["dst_port"][bare]} | {int(p) for p in rows["src_port"][bare]}
    theirs = tshark_rtp(capture, ports, turn=bool((is_rtp & ~bare).any()))
    ours: dict[int, list[int]] = defaultdict(list)
    for i in np.nonzero(is_rtp)[0]:
        ours[int(rows["frame"][i])].append(int(i))
    assert set(ours) == set(theirs), "the same frames are RTP"
    packets = our_extensions(capture)
    for frame, indices in ours.items():
        assert len(indices) == len(theirs[frame]) == len(packets[frame]), frame
        for i, t, packet in zip(indices, theirs[frame], packets[frame], strict=True):
            compare_packet(rows, i, t, packet, level_id, frame)
    return sum(len(i) for i in ours.values())


def compare_packet(
    rows: Any, i: int, t: dict[str, str], packet: rtp.RtpPacket, level_id: int | None, frame: int
) -> None:
    """One RTP packet: our row and our parse against tshark's fields."""
    assert int(rows["ssrc"][i]) == int(t["rtp.ssrc"], 16), frame
    assert int(rows["sequence_number"][i]) == int(t["rtp.seq"]), frame
    assert int(rows["rtp_timestamp"][i]) == int(t["rtp.timestamp"]), frame
    assert int(rows["payload_type"][i]) == int(t["rtp.p_type"]), frame
    assert bool(rows["marker"][i]) == (t["rtp.marker"] in ("1", "True")), frame
    assert int(rows["timestamp_ns"][i]) == epoch_ns(t["frame.time_epoch"]), frame
    assert packet.ssrc == int(rows["ssrc"][i])
    if "coalesced" in t:
        return  # a frame of several packets: tshark's extension lists cannot be told apart
    ids = [int(x) for x in t["rtp.ext.rfc5285.id"].split(",") if x]
    data = [bytes.fromhex(x.replace(":", "")) for x in t["rtp.ext.rfc5285.data"].split(",")][
        : len(ids)
    ]
    assert [e.id for e in packet.extensions] == ids, frame
    assert [e.data for e in packet.extensions] == data, frame
    if level_id is not None and level_id in ids:
        level = data[ids.index(level_id)][0]
        assert int(rows["audio_level"][i]) == level & 0x7F
        assert bool(rows["voice"][i]) == bool(level & 0x80)


def compare_tls(capture: Path) -> int:
    """Our TLS rows against tshark's TLS records: the same frames, content types, lengths."""
    with capture.open("rb") as fo:
        rows = scan_file(fo, None).rows
    is_tls = rows["kind"] == KIND_CODES.index(PacketKind.TLS)
    ours: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for i in np.nonzero(is_tls)[0]:
        ours[int(rows["frame"][i])].append((int(rows["payload_type"][i]), int(rows["length"][i])))
    ports = {int(p) for p in rows["dst_port"][is_tls]} | {int(p) for p in rows["src_port"][is_tls]}
    fields = ("frame.number", "tls.record.content_type", "tls.record.length")
    theirs: dict[int, list[tuple[int, int]]] = {}
    for frame, types, lengths in run_fields(
        capture,
        fields,
        decode_as=[f"tcp.port=={p},tls" for p in sorted(ports)],
        heuristics=(),
        display_filter="tls.record",
        options=TCP_OPTIONS,
    ):
        pairs = zip(types.split(","), lengths.split(","), strict=True)
        theirs[int(frame)] = [(int(t), int(n)) for t, n in pairs]
    assert ours == theirs
    return sum(len(r) for r in ours.values())


def test_real_sessions_match_tshark(session_dir: Path, tshark: str) -> None:
    """Every RTP packet as tshark dissects it: direct, and inside TURN over UDP and TCP."""
    if not call_shape(session_dir).rtp_readable:
        # TURN over TLS: neither finds RTP; the TLS records are the same, one by one
        assert compare(session_dir / "capture.pcapng", 1) == 0
        assert compare_tls(session_dir / "capture.pcapng") > 700
        return
    assert compare(session_dir / "capture.pcapng", 1) > 100


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"link": "sll2"},
        {"link": "vlan", "ipv6": True},
        {"format": "pcapng-2if"},
        {"transport": "turn"},
        *({"transport": "turn-tcp", "segments": m} for m in ("own", "coalesced", "split")),
    ],
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
        assert (a.payload_min, a.payload_median, a.payload_max) == (
            b.payload_min,
            b.payload_median,
            b.payload_max,
        )
        assert a.lost == b.lost
    # every RTP packet the same, down to its lengths (inside TURN too, several per segment)
    for column in ("sequence_number", "ssrc", "length", "header_length", "payload_length"):
        assert np.array_equal(
            fast.rows[column][fast.rows["kind"] == 5], slow.rows[column][slow.rows["kind"] == 5]
        ), column
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
@pytest.mark.parametrize("engine", ["fast", "scalar", "tshark"])
def test_turn_over_tcp_streams_match_tshark(
    segments: str, engine: str, make_synthetic: Any, tmp_path: Path, tshark: str
) -> None:
    data, truth = make_synthetic(packets=1500, transport="turn-tcp", segments=segments)
    capture = tmp_path / "capture.pcap"
    capture.write_bytes(data)
    theirs = tshark_ssrc_counts(capture)
    ours = scan_streams(capture, engine=engine)
    assert {s.ssrc: s.packets for s in ours.streams} == theirs
    if engine == "tshark":  # a row per RTP packet, with the lengths the scalar path gives
        scalar = scan_streams(capture, engine="scalar").rows
        rtp = ours.rows["kind"] == 5
        for column in ("frame", "ssrc", "sequence_number", "length", "payload_length"):
            assert np.array_equal(ours.rows[column][rtp], scalar[column][scalar["kind"] == 5])
    assert theirs == {t.ssrc: t.packets for t in truth.streams}


def test_dissection_args_turn_the_rtp_heuristics_on() -> None:
    """The shared dissection options are what make tshark see RTP in a WebRTC capture: without
    them frame 236 of the recorded call is undissected UDP data, with them it is RTP."""
    capture = Path(__file__).resolve().parents[2] / "captures/chromium-ui-only/capture.pcapng"
    args = dissection_args()
    assert args[:2] == ["--enable-heuristic", "rtp_udp"]
    assert "tcp.reassemble_out_of_order:TRUE" in args
    one = "frame.number == 236"
    plain = list(run_fields(capture, ("frame.protocols",), heuristics=(), display_filter=one))
    fields = ("frame.protocols", "rtp.seq")
    tuned = list(run_fields(capture, fields, heuristics=(), display_filter=one, options=args))
    assert plain == [["eth:ethertype:ip:udp:data"]]
    assert tuned == [["eth:ethertype:ip:udp:rtp", "17672"]]
