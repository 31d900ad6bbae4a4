"""RTP parsing on packets made by aiortc and libsrtp, checked field by field and against tshark."""

from __future__ import annotations

import pytest
from helpers.packet_fixtures import PACKETS, golden, load
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
from decoders.wire.rtp import (
    ONE_BYTE_PROFILE,
    TWO_BYTE_PROFILE,
    AudioLevel,
    HeaderExtension,
    RtpPacket,
    audio_level,
    pack_extension_elements,
    parse_audio_level,
    parse_extension_elements,
)

RTP_FIXTURES = sorted(p.stem for p in PACKETS.glob("rtp_*.bin"))
SRTP_FIXTURES = sorted(p.stem for p in PACKETS.glob("srtp_*.bin"))


def test_opus_packet_with_one_byte_extensions() -> None:
    data = load("rtp_opus_one_byte")
    packet = RtpPacket.parse(data)
    assert packet.version == 2
    assert packet.padding is False
    assert packet.extension is True
    assert packet.marker is True
    assert packet.payload_type == 111
    assert packet.sequence_number == 4242
    assert packet.timestamp == 1_234_560
    assert packet.ssrc == 0x1A2B3C4D
    assert packet.csrcs == ()
    assert packet.extension_profile == ONE_BYTE_PROFILE
    assert packet.extensions == (
        HeaderExtension(4, b"0"),
        HeaderExtension(1, b"\xa6"),
        HeaderExtension(3, b"\x02\x01"),
    )
    assert packet.extension_offset == 16
    assert packet.extension_data == bytes.fromhex("4030 10a6 3102 0100")
    assert packet.payload_offset == 24
    assert packet.payload_length == 3
    assert packet.padding_length == 0
    assert packet.padding_data == b""
    assert packet.payload == bytes.fromhex("f8fffe")
    assert audio_level(packet, 1) == AudioLevel(voice=True, level=38)
    assert audio_level(packet, 2) is None


def test_muted_packet_reports_silence() -> None:
    packet = RtpPacket.parse(load("rtp_opus_muted"))
    assert (packet.marker, packet.sequence_number, packet.timestamp) == (False, 65535, 0xFFFFFF00)
    assert packet.extensions == (HeaderExtension(1, b"\x7f"),)
    assert audio_level(packet, 1) == AudioLevel(voice=False, level=127)


def test_two_byte_extensions() -> None:
    packet = RtpPacket.parse(load("rtp_two_byte"))
    assert packet.extension_profile == TWO_BYTE_PROFILE
    assert packet.payload_type == 96
    assert packet.ssrc == 0xCAFEBABE
    assert packet.extensions == (
        HeaderExtension(20, b"high-resolution-layer"),
        HeaderExtension(1, b"\x85"),
    )
    assert audio_level(packet, 1) == AudioLevel(voice=True, level=5)
    assert packet.payload == b"\x90"
    assert packet.payload_offset == len(load("rtp_two_byte")) - 1


def test_csrcs_and_padding() -> None:
    data = load("rtp_csrc_padding")
    packet = RtpPacket.parse(data)
    assert packet.csrcs == (0x11111111, 0x22222222)
    assert packet.extension is False
    assert packet.extension_profile is None
    assert packet.extension_offset is None
    assert packet.extensions == ()
    assert packet.padding is True
    assert packet.padding_length == 7
    assert packet.padding_data == data[-7:]
    assert packet.padding_data[-1] == 7
    assert packet.payload_offset == 20
    assert packet.payload == bytes(160)
    assert packet.payload_length == 160


def test_srtp_header_is_the_plaintext_header() -> None:
    plain = RtpPacket.parse(load("rtp_opus_one_byte"))
    protected = RtpPacket.parse(load("srtp_opus_one_byte"), srtp=True)
    for field in ("marker", "payload_type", "sequence_number", "timestamp", "ssrc", "extensions"):
        assert getattr(protected, field) == getattr(plain, field)
    assert protected.payload_length == plain.payload_length + 10  # AES128_CM_SHA1_80 tag
    assert protected.payload != plain.payload


def test_srtp_padding_count_is_not_read() -> None:
    packet = RtpPacket.parse(load("srtp_csrc_padding"), srtp=True)
    assert packet.padding is True
    assert packet.padding_length == 0
    assert packet.payload_length == 160 + 7 + 10


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken_rtp_padding_count", "RTP padding count 255"),
        ("broken_rtp_extension_element", "RTP header extension element id 4 length 16"),
    ],
)
def test_broken_packets(name: str, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        RtpPacket.parse(load(name))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x00", "RTP header truncated"),
        (bytes([0x40]) + bytes(11), "RTP version is 1"),
        (bytes([0x81]) + bytes(11), "RTP CSRC list truncated"),
        (bytes([0x90]) + bytes(13), "RTP header extension profile/length truncated"),
        (bytes([0x90]) + bytes(11) + b"\xbe\xde\x00\x01", "RTP header extension truncated"),
        (bytes([0xA0]) + bytes(11), "RTP padding count 0"),
    ],
)
def test_header_errors_name_the_field(data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        RtpPacket.parse(data)


@pytest.mark.parametrize(
    ("profile", "block", "elements"),
    [
        # one-byte: padding byte, id 1 len 1, id 2 len 2, padding to the word
        (0xBEDE, "00 10 aa 21 bb cc 00 00", [(1, "aa"), (2, "bbcc")]),
        # one-byte: id 15 stops parsing, whatever follows
        (0xBEDE, "10 aa f0 ff 30 bb 00 00", [(1, "aa")]),
        # one-byte: a byte with id 0 is one byte of padding, whatever its length nibble
        (0xBEDE, "05 10 aa 00", [(1, "aa")]),
        # two-byte: padding, id 200 with 0 bytes, id 1 with 1 byte
        (0x1000, "00 c8 00 01 01 7f 00 00", [(200, ""), (1, "7f")]),
        # two-byte with application bits in the profile
        (0x100F, "05 02 aa bb", [(5, "aabb")]),
        # any other profile is opaque
        (0x1234, "10 aa 00 00", []),
    ],
)
def test_extension_elements(profile: int, block: str, elements: list[tuple[int, str]]) -> None:
    expected = tuple(HeaderExtension(i, bytes.fromhex(d)) for i, d in elements)
    assert parse_extension_elements(profile, bytes.fromhex(block)) == expected


@pytest.mark.parametrize(
    ("profile", "block"),
    [(0xBEDE, "1f aa bb 00"), (0x1000, "01 05 aa 00"), (0x1000, "00 00 00 07")],
)
def test_extension_element_overrun(profile: int, block: str) -> None:
    with pytest.raises(MalformedPacket, match="RTP header extension element"):
        parse_extension_elements(profile, bytes.fromhex(block))


def test_audio_level_element() -> None:
    assert parse_audio_level(b"\x80") == AudioLevel(voice=True, level=0)
    assert parse_audio_level(b"\x7f\x00") == AudioLevel(voice=False, level=127)
    with pytest.raises(MalformedPacket, match="RTP audio level element is empty"):
        parse_audio_level(b"")


@pytest.mark.parametrize("name", RTP_FIXTURES + SRTP_FIXTURES)
def test_round_trip(name: str) -> None:
    data = load(name)
    assert RtpPacket.parse(data, srtp=name.startswith("srtp_")).serialize() == data


@pytest.mark.parametrize("name", RTP_FIXTURES + SRTP_FIXTURES)
def test_cut_at_every_length(name: str) -> None:
    data = load(name)
    for end in range(len(data) + 1):
        for srtp in (False, True):
            try:
                packet = RtpPacket.parse(data[:end], srtp=srtp)
            except MalformedPacket:
                continue
            assert packet.serialize() == data[:end]


def test_build_matches_aiortc() -> None:
    packet = RtpPacket.build(
        payload_type=111,
        marker=True,
        sequence_number=4242,
        timestamp=1_234_560,
        ssrc=0x1A2B3C4D,
        extensions=[
            HeaderExtension(4, b"0"),
            HeaderExtension(1, b"\xa6"),
            HeaderExtension(3, b"\x02\x01"),
        ],
        payload=bytes.fromhex("f8fffe"),
    )
    assert packet.serialize() == load("rtp_opus_one_byte")


def test_pack_rejects_what_the_form_cannot_carry() -> None:
    with pytest.raises(ValueError, match="one-byte"):
        pack_extension_elements(ONE_BYTE_PROFILE, [HeaderExtension(15, b"x")])
    with pytest.raises(ValueError, match="two-byte"):
        pack_extension_elements(TWO_BYTE_PROFILE, [HeaderExtension(1, bytes(256))])
    with pytest.raises(ValueError, match="no RFC 8285 elements"):
        pack_extension_elements(0x1234, [HeaderExtension(1, b"x")])


@pytest.mark.parametrize("name", sorted(golden("rtp")))
def test_agrees_with_tshark(name: str) -> None:
    row = golden("rtp")[name]
    srtp = name.startswith("srtp_")
    try:
        packet = RtpPacket.parse(load(name), srtp=srtp)
    except MalformedPacket:
        assert name.startswith("broken_")
        return
    assert row["rtp.version"] == [str(packet.version)]
    assert row["rtp.padding"] == [str(int(packet.padding))]
    assert row["rtp.ext"] == [str(int(packet.extension))]
    assert row["rtp.cc"] == [str(len(packet.csrcs))]
    assert row["rtp.marker"] == [str(int(packet.marker))]
    assert row["rtp.p_type"] == [str(packet.payload_type)]
    assert row["rtp.seq"] == [str(packet.sequence_number)]
    assert row["rtp.timestamp"] == [str(packet.timestamp)]
    assert row["rtp.ssrc"] == [f"0x{packet.ssrc:08x}"]
    assert row["rtp.csrc.item"] == [f"0x{c:08x}" for c in packet.csrcs]
    if packet.extension_profile is not None:
        assert row["rtp.ext.profile"] == [f"0x{packet.extension_profile:04x}"]
        assert row["rtp.ext.len"] == [str(len(packet.extension_data) // 4)]
    assert row["rtp.ext.rfc5285.id"] == [str(e.id) for e in packet.extensions]
    assert row["rtp.ext.rfc5285.data"] == [e.data.hex() for e in packet.extensions]
    if packet.padding and not srtp:
        assert row["rtp.padding.count"] == [str(packet.padding_length)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.booleans())
def test_arbitrary_bytes_parse_or_raise_malformed(data: bytes, srtp: bool) -> None:
    try:
        packet = RtpPacket.parse(data, srtp=srtp)
    except MalformedPacket:
        return
    assert packet.serialize() == data
    assert packet.payload_offset + packet.payload_length + packet.padding_length == len(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=60), st.sampled_from([0xBEDE, 0x1000, 0x1003, 0xABCD]))
def test_arbitrary_extension_blocks(block: bytes, profile: int) -> None:
    header = bytes([0x90, 0x6F, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3])
    padded = block + bytes(-len(block) % 4)
    data = header + profile.to_bytes(2, "big") + (len(padded) // 4).to_bytes(2, "big") + padded
    try:
        packet = RtpPacket.parse(data)
    except MalformedPacket as error:
        assert "RTP header extension element" in str(error)
        return
    assert packet.extension_data == padded
    assert packet.serialize() == data


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 127),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=20)), max_size=5),
    st.binary(max_size=40),
    st.integers(0, 255),
)
def test_build_then_parse(
    payload_type: int,
    sequence_number: int,
    ssrc: int,
    csrcs: list[int],
    elements: list[tuple[int, bytes]],
    payload: bytes,
    padding_length: int,
) -> None:
    extensions = [HeaderExtension(i, d) for i, d in elements]
    packet = RtpPacket.build(
        payload_type=payload_type,
        sequence_number=sequence_number,
        timestamp=ssrc ^ 0xFFFF,
        ssrc=ssrc,
        csrcs=csrcs,
        extensions=extensions,
        payload=payload,
        padding_length=padding_length,
    )
    assert packet.payload_type == payload_type
    assert packet.sequence_number == sequence_number
    assert packet.ssrc == ssrc
    assert packet.csrcs == tuple(csrcs)
    assert packet.extensions == tuple(extensions)
    assert packet.payload == payload
    assert packet.padding_length == padding_length
    assert RtpPacket.parse(packet.serialize()) == packet
