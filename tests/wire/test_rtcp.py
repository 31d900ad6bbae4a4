"""RTCP parsing on compound packets made by aiortc (SRTCP by libsrtp), checked against tshark."""

from __future__ import annotations

import contextlib

import pytest
from helpers.packet_fixtures import PACKETS, golden, load
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
from decoders.wire.rtcp import (
    PSFB_APPLICATION,
    PSFB_PLI,
    RTPFB_NACK,
    ApplicationDefined,
    Goodbye,
    PayloadFeedback,
    ReceiverReport,
    ReportBlock,
    RtcpHeader,
    RtcpPacket,
    RtpFeedback,
    SdesChunk,
    SdesItem,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    parse_compound,
    parse_header,
)

PLAIN_FIXTURES = sorted(p.stem for p in PACKETS.glob("rtcp_*.bin"))

BLOCK = ReportBlock(
    ssrc=0x0A0B0C0D,
    fraction_lost=25,
    packets_lost=-3,
    highest_sequence=0x0001_0010,
    jitter=42,
    last_sr=0x12345678,
    delay_since_last_sr=65536,
)


def headers(data: bytes) -> list[RtcpHeader]:
    """Walk a compound packet with parse_header alone."""
    found = []
    offset = 0
    while offset < len(data):
        header = parse_header(data[offset:])
        found.append(header)
        offset += header.packet_length
    return found


def test_sender_report_and_sdes() -> None:
    assert parse_compound(load("rtcp_sr_sdes")) == [
        SenderReport(
            ssrc=0x1A2B3C4D,
            ntp_timestamp=0xE8F1_2345_8000_0000,
            rtp_timestamp=1_234_560,
            packet_count=250,
            octet_count=20_000,
            reports=(BLOCK,),
        ),
        SourceDescription(
            chunks=(SdesChunk(ssrc=0x1A2B3C4D, items=(SdesItem(1, b"{a1b2c3d4-cname}"),)),)
        ),
    ]


def test_receiver_report_and_goodbye() -> None:
    second = ReportBlock(0x0E0F1011, 0, 1_000_000, 99, 0, 0, 0)
    assert parse_compound(load("rtcp_rr_bye")) == [
        ReceiverReport(ssrc=0x55667788, reports=(BLOCK, second)),
        Goodbye(ssrcs=(0x55667788, 0x99AABBCC), reason=None),
    ]


def test_feedback_messages() -> None:
    receiver, nack, pli, remb = parse_compound(load("rtcp_rr_nack_pli_remb"))
    assert receiver == ReceiverReport(ssrc=0x55667788, reports=())
    # NACK of 100, 101, 105 (PID 100, BLP bits 0 and 4) and 130 (PID 130, BLP 0)
    assert nack == RtpFeedback(
        fmt=RTPFB_NACK,
        sender_ssrc=0x55667788,
        media_ssrc=0x1A2B3C4D,
        fci=bytes.fromhex("0064 0011 0082 0000"),
    )
    assert pli == PayloadFeedback(
        fmt=PSFB_PLI, sender_ssrc=0x55667788, media_ssrc=0xCAFEBABE, fci=b""
    )
    assert isinstance(remb, PayloadFeedback)
    assert remb.fmt == PSFB_APPLICATION
    assert remb.fci.startswith(b"REMB")


def test_application_defined_and_padded_goodbye() -> None:
    assert parse_compound(load("rtcp_app_bye_padded")) == [
        ReceiverReport(ssrc=0x55667788, reports=()),
        ApplicationDefined(subtype=3, ssrc=0x55667788, name="TEST", data=b"\x01\x02\x03\x04"),
        Goodbye(ssrcs=(0x55667788,), reason=b"bye now"),
    ]


def test_header_of_srtcp() -> None:
    assert parse_header(load("srtcp_sr_sdes")) == RtcpHeader(
        version=2, padding=False, count=1, packet_type=200, length_words=12, ssrc=0x1A2B3C4D
    )
    assert parse_header(load("srtcp_sr_sdes")).packet_length == 52


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # SDES: two chunks, the second with no items (four null octets)
        (
            "82ca0005 00000001 01026162 00000000 00000002 00000000",
            [
                SourceDescription(
                    chunks=(
                        SdesChunk(1, (SdesItem(1, b"ab"),)),
                        SdesChunk(2, ()),
                    )
                )
            ],
        ),
        # BYE without any SSRC
        ("80cb0000", [Goodbye(ssrcs=(), reason=None)]),
        # XR is kept opaque
        ("80cf0002 00000001 04000001", [UnknownRtcp(207, 0, bytes.fromhex("00000001 04000001"))]),
        # RR with a profile-specific extension after its (zero) report blocks
        ("80c90002 00000007 deadbeef", [ReceiverReport(7, (), bytes.fromhex("deadbeef"))]),
    ],
)
def test_annotated_packets(data: str, expected: list[RtcpPacket]) -> None:
    assert parse_compound(bytes.fromhex(data)) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "RTCP compound packet is empty"),
        ("80c9", "RTCP header truncated at byte 0"),
        ("40c90001 00000001", "RTCP version is 1"),
        ("80c90002 00000001", "RTCP length 2"),
        ("a0c90001 00000000", "RTCP padding count 0"),
        ("a0c90001 00000009", "RTCP padding count 9"),
        ("81c80001 00000001", "RTCP sender report sender info truncated"),
        ("81c90001 00000001", "RTCP receiver report report blocks truncated"),
        ("80c90000", "RTCP receiver report SSRC truncated"),
        ("81ca0001 00000001", "RTCP SDES chunk 0x00000001 has no end item"),
        ("82ca0002 00000001 00000000", "RTCP SDES chunk SSRC truncated at byte 8"),
        ("81ca0002 00000001 01050000", "RTCP SDES item 1 value truncated"),
        ("81ca0002 00000001 01014103", "RTCP SDES item 3 length truncated"),
        ("82cb0001 00000001", "RTCP BYE SSRC list truncated"),
        ("81cb0002 00000001 09000000", "RTCP BYE reason length 9"),
        ("80cc0001 00000001", "RTCP APP SSRC/name truncated"),
        ("81cd0001 00000001", "RTCP feedback \\(packet type 205\\) SSRCs truncated"),
    ],
)
def test_errors_name_the_field(data: str, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        parse_compound(bytes.fromhex(data))


def test_broken_length() -> None:
    with pytest.raises(MalformedPacket, match="RTCP length 13 \\(packet type 200\\) runs past"):
        parse_compound(load("broken_rtcp_length"))


def test_header_errors() -> None:
    with pytest.raises(MalformedPacket, match="RTCP header truncated: 7 of 8 bytes"):
        parse_header(bytes(7))
    with pytest.raises(MalformedPacket, match="RTCP version is 0"):
        parse_header(bytes(8))


@pytest.mark.parametrize("name", PLAIN_FIXTURES)
def test_header_walk_matches_compound(name: str) -> None:
    data = load(name)
    assert len(headers(data)) == len(parse_compound(data))
    assert sum(h.packet_length for h in headers(data)) == len(data)


@pytest.mark.parametrize("name", [*PLAIN_FIXTURES, "srtcp_sr_sdes"])
def test_cut_at_every_length(name: str) -> None:
    data = load(name)
    for end in range(len(data) + 1):
        for parse in (parse_compound, parse_header):
            with contextlib.suppress(MalformedPacket):
                parse(data[:end])


@pytest.mark.parametrize("name", sorted(golden("rtcp")))
def test_agrees_with_tshark(name: str) -> None:
    row = golden("rtcp")[name]
    data = load(name)
    if name.startswith("srtcp_"):
        header = parse_header(data)
        assert row["rtcp.pt"] == [str(header.packet_type)]
        assert row["rtcp.length"] == [str(header.length_words)]
        assert row["rtcp.senderssrc"] == [f"0x{header.ssrc:08x}"]
        return
    try:
        packets = parse_compound(data)
    except MalformedPacket:
        assert name.startswith("broken_")
        return
    found = headers(data)
    assert row["rtcp.pt"] == [str(h.packet_type) for h in found]
    assert row["rtcp.length"] == [str(h.length_words) for h in found]
    blocks: list[ReportBlock] = []
    senders: list[int] = []
    for packet in packets:
        if isinstance(packet, SenderReport):
            senders.append(packet.ssrc)
            assert row["rtcp.timestamp.ntp.msw"] == [str(packet.ntp_timestamp >> 32)]
            assert row["rtcp.timestamp.ntp.lsw"] == [str(packet.ntp_timestamp & 0xFFFFFFFF)]
            assert row["rtcp.timestamp.rtp"] == [str(packet.rtp_timestamp)]
            assert row["rtcp.sender.packetcount"] == [str(packet.packet_count)]
            assert row["rtcp.sender.octetcount"] == [str(packet.octet_count)]
            blocks += packet.reports
        elif isinstance(packet, ReceiverReport):
            senders.append(packet.ssrc)
            blocks += packet.reports
        elif isinstance(packet, RtpFeedback | PayloadFeedback):
            senders.append(packet.sender_ssrc)
        elif isinstance(packet, ApplicationDefined):
            assert row["rtcp.app.name"] == [packet.name]
            assert row["rtcp.app.subtype"] == [str(packet.subtype)]
    assert row["rtcp.senderssrc"] == [f"0x{s:08x}" for s in senders]
    assert row["rtcp.ssrc.fraction"] == [str(b.fraction_lost) for b in blocks]
    assert row["rtcp.ssrc.cum_nr"] == [str(b.packets_lost) for b in blocks]
    assert row["rtcp.ssrc.high_cycles"] == [str(b.highest_sequence >> 16) for b in blocks]
    assert row["rtcp.ssrc.high_seq"] == [str(b.highest_sequence & 0xFFFF) for b in blocks]
    assert row["rtcp.ssrc.jitter"] == [str(b.jitter) for b in blocks]
    assert row["rtcp.ssrc.lsr"] == [str(b.last_sr) for b in blocks]
    assert row["rtcp.ssrc.dlsr"] == [str(b.delay_since_last_sr) for b in blocks]
    feedback = [p for p in packets if isinstance(p, RtpFeedback | PayloadFeedback)]
    assert row["rtcp.rtpfb.fmt"] == [str(p.fmt) for p in feedback if isinstance(p, RtpFeedback)]
    assert row["rtcp.psfb.fmt"] == [str(p.fmt) for p in feedback if isinstance(p, PayloadFeedback)]
    assert row["rtcp.mediassrc"] == [f"0x{p.media_ssrc:08x}" for p in feedback]
    cnames = [
        item.value.decode()
        for packet in packets
        if isinstance(packet, SourceDescription)
        for chunk in packet.chunks
        for item in chunk.items
    ]
    reasons = [p.reason.decode() for p in packets if isinstance(p, Goodbye) and p.reason]
    assert row["rtcp.sdes.text"] == cnames + reasons  # tshark files a BYE reason here too


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    for parse in (parse_compound, parse_header):
        with contextlib.suppress(MalformedPacket):
            parse(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 31), st.integers(192, 210), st.binary(max_size=60), st.booleans())
def test_arbitrary_bodies_raise_only_malformed(
    count: int, packet_type: int, body: bytes, padding: bool
) -> None:
    body += bytes(-len(body) % 4)
    first = 0x80 | (0x20 if padding else 0) | count
    data = bytes([first, packet_type]) + (len(body) // 4).to_bytes(2, "big") + body
    try:
        packets = parse_compound(data)
    except MalformedPacket:
        return
    assert len(packets) == 1
