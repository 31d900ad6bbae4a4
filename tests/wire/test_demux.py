"""RFC 7983 classification and TURN unwrapping on the real fixtures of every protocol."""

from __future__ import annotations

import contextlib

import pytest
from helpers.packet_fixtures import PACKETS, load
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
from decoders.wire import demux, dtls, rtcp, rtp, stun
from decoders.wire.demux import (
    ChannelData,
    PacketKind,
    classify,
    parse_channel_data,
    turn_tcp_frame_length,
    unwrap_turn,
)

ALL_FIXTURES = sorted(p.stem for p in PACKETS.glob("*.bin"))


def expected_kind(name: str) -> PacketKind:
    base = name.removeprefix("broken_")
    if base.startswith("turn_channel_data"):
        return PacketKind.TURN_CHANNEL
    for prefix, kind in (
        ("srtcp_", PacketKind.RTCP),
        ("rtcp_", PacketKind.RTCP),
        ("srtp_", PacketKind.RTP),
        ("rtp_", PacketKind.RTP),
        ("stun_", PacketKind.STUN),
        ("turn_", PacketKind.STUN),
        ("dtls_", PacketKind.DTLS),
    ):
        if base.startswith(prefix):
            return kind
    raise AssertionError(name)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_is_classified_as_what_it_is(name: str) -> None:
    assert classify(load(name)) is expected_kind(name)


def kind_by_rule(first: int, second: int) -> PacketKind:
    """RFC 7983 section 7 written out independently of the module's constants."""
    if first <= 3:
        return PacketKind.STUN
    if 16 <= first <= 19:
        return PacketKind.ZRTP
    if 20 <= first <= 63:
        return PacketKind.DTLS
    if 64 <= first <= 79:
        return PacketKind.TURN_CHANNEL
    if 128 <= first <= 191:
        # RFC 5761 section 4: RTCP packet types 192-223 = RTP marker bit + PT 64-95
        return PacketKind.RTCP if 192 <= second <= 223 else PacketKind.RTP
    return PacketKind.OTHER


def test_first_byte_ranges() -> None:
    for first in range(256):
        for second in (0, 111, 191, 192, 200, 223, 224, 255):
            data = bytes([first, second]) + bytes(30)
            assert classify(data) is kind_by_rule(first, second), data[:2].hex()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", PacketKind.OTHER),
        (bytes(19), PacketKind.OTHER),
        (bytes(20), PacketKind.STUN),
        (bytes([16]) + bytes(14), PacketKind.OTHER),
        (bytes([16]) + bytes(15), PacketKind.ZRTP),
        (bytes([22]) + bytes(11), PacketKind.OTHER),
        (bytes([22]) + bytes(12), PacketKind.DTLS),
        (bytes([0x40, 0, 0]), PacketKind.OTHER),
        (bytes([0x40, 0, 0, 0]), PacketKind.TURN_CHANNEL),
        (bytes([0x80]), PacketKind.OTHER),
        (bytes([0x80, 0x6F]) + bytes(9), PacketKind.OTHER),
        (bytes([0x80, 0x6F]) + bytes(10), PacketKind.RTP),
        (bytes([0x80, 0xC8]) + bytes(5), PacketKind.OTHER),
        (bytes([0x80, 0xC8]) + bytes(6), PacketKind.RTCP),
    ],
)
def test_too_short_for_its_kind_is_other(data: bytes, kind: PacketKind) -> None:
    assert classify(data) is kind


def test_constants_describe_the_rule() -> None:
    marker_and_pt_64_to_95 = range(0x80 | 64, 0x80 | 96)
    assert marker_and_pt_64_to_95 == demux.RTCP_PACKET_TYPES
    version_2 = range(0b1000_0000, 0b1100_0000)
    assert version_2 == demux.RTP_RTCP_RANGE
    channel_high_bytes = range(demux.CHANNEL_NUMBERS.start >> 8, demux.CHANNEL_NUMBERS.stop >> 8)
    assert channel_high_bytes == demux.TURN_CHANNEL_RANGE
    assert PacketKind.TURN_CHANNEL.value == "turn-channel"


def test_channel_data_over_udp() -> None:
    inner = load("srtp_opus_one_byte")
    data = load("turn_channel_data_udp")
    assert parse_channel_data(data) == ChannelData(
        channel_number=0x4000, data=inner, padding_length=0
    )
    assert unwrap_turn(data) == ("turn-channel", inner)
    assert classify(inner) is PacketKind.RTP


def test_channel_data_over_tcp_is_padded() -> None:
    inner = load("srtp_opus_one_byte")
    channel = parse_channel_data(load("turn_channel_data_tcp"))
    assert channel == ChannelData(channel_number=0x4000, data=inner, padding_length=3)


def test_send_and_data_indications() -> None:
    kind, inner = unwrap_turn(load("turn_send_indication")) or ("", b"")
    assert kind == "turn-send"
    assert inner == load("stun_binding_request_controlled")
    check = stun.parse(inner)
    assert check is not None
    assert check.method_name == "binding"
    assert unwrap_turn(load("turn_data_indication")) == ("turn-data", load("srtp_opus_one_byte"))


def test_indication_without_data_is_broken() -> None:
    with pytest.raises(MalformedPacket, match="TURN send indication has no DATA attribute"):
        unwrap_turn(load("turn_send_indication_no_data"))


@pytest.mark.parametrize(
    "name",
    [
        "stun_binding_request",
        "turn_allocate_request",
        "turn_channel_bind_request",
        "rtp_opus_one_byte",
        "rtcp_sr_sdes",
        "dtls_client_hello",
        "broken_stun_truncated",  # a broken binding response claims no TURN wrapping
    ],
)
def test_not_a_turn_wrapper(name: str) -> None:
    assert unwrap_turn(load(name)) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes([0x40, 0x00, 0x00]), "TURN ChannelData header truncated: 3 bytes"),
        (bytes([0x40, 0x00, 0x00, 0x05, 1, 2]), "TURN ChannelData length 5 runs past"),
    ],
)
def test_broken_channel_data(data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        unwrap_turn(data)


def test_empty_channel_data() -> None:
    assert unwrap_turn(bytes([0x4F, 0xFF, 0, 0])) == ("turn-channel", b"")
    assert parse_channel_data(b"") is None


def test_tcp_stream_to_a_turn_server_is_split_into_messages() -> None:
    messages = [
        load("turn_allocate_request"),
        load("turn_channel_data_tcp"),  # aioice padded it to 4 for TCP
        load("turn_send_indication"),
        load("turn_channel_data_tcp"),
    ]
    stream = b"".join(messages)
    found = []
    while stream:
        size = turn_tcp_frame_length(stream)
        assert size is not None
        found.append(stream[:size])
        stream = stream[size:]
    assert found == messages
    assert unwrap_turn(found[1]) == ("turn-channel", load("srtp_opus_one_byte"))


@pytest.mark.parametrize(
    ("stream", "size"),
    [
        (b"", None),
        (b"\x40\x00\x00", None),
        (b"\x40\x00\x00\x05", 12),
        (b"\x40\x00\x00\x08", 12),
        (b"\x00\x01\x00\x08", 28),
        (b"\x80\x6f\x00\x01", None),
    ],
)
def test_tcp_frame_length(stream: bytes, size: int | None) -> None:
    assert turn_tcp_frame_length(stream) == size


@pytest.mark.parametrize("name", [n for n in ALL_FIXTURES if n.startswith("turn_")])
def test_cut_at_every_length(name: str) -> None:
    data = load(name)
    for end in range(len(data) + 1):
        classify(data[:end])
        with contextlib.suppress(MalformedPacket):
            unwrap_turn(data[:end])


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=60))
def test_arbitrary_bytes(data: bytes) -> None:
    assert isinstance(classify(data), PacketKind)
    try:
        unwrapped = unwrap_turn(data)
    except MalformedPacket:
        return
    if unwrapped is not None:
        assert unwrapped[0] in {"turn-channel", "turn-send", "turn-data"}
        assert len(unwrapped[1]) <= len(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0x0016, 0x0017]), st.binary(max_size=40))
def test_arbitrary_indications(message_type: int, attributes: bytes) -> None:
    attributes += bytes(-len(attributes) % 4)
    data = (
        message_type.to_bytes(2, "big")
        + len(attributes).to_bytes(2, "big")
        + stun.MAGIC_COOKIE.to_bytes(4, "big")
        + bytes(12)
        + attributes
    )
    try:
        unwrapped = unwrap_turn(data)
    except MalformedPacket:
        return
    assert unwrapped is not None


# -- the one chain: TURN off, classify, parse --------------------------------------------------

EVERY_HEADER = frozenset({PacketKind.RTP, PacketKind.RTCP, PacketKind.STUN, PacketKind.DTLS})


def test_open_relayed_rtp() -> None:
    opened = demux.open_payload(load("turn_channel_data_udp"), parse=EVERY_HEADER)
    assert (opened.tunnel, opened.kind, opened.payload) == (
        "turn-channel",
        PacketKind.RTP,
        load("srtp_opus_one_byte"),
    )
    assert opened.rtp == rtp.RtpPacket.parse(load("srtp_opus_one_byte"), srtp=True)
    assert opened.turn_error is None and opened.error is None
    data = demux.open_payload(load("turn_data_indication"))
    assert (data.tunnel, data.kind, data.rtp) == ("turn-data", PacketKind.RTP, None)


def test_open_relayed_stun_and_plain_headers() -> None:
    opened = demux.open_payload(load("turn_send_indication"), parse=EVERY_HEADER)
    assert (opened.tunnel, opened.kind) == ("turn-send", PacketKind.STUN)
    assert opened.stun == stun.parse(load("stun_binding_request_controlled"))
    rtcp_packet = demux.open_payload(load("rtcp_sr_sdes"), parse=EVERY_HEADER)
    assert rtcp_packet.rtcp == rtcp.parse_header(load("rtcp_sr_sdes"))
    assert rtcp_packet.tunnel is None
    hello = demux.open_payload(load("dtls_client_hello"), parse=EVERY_HEADER)
    assert hello.dtls == tuple(dtls.parse_records(load("dtls_client_hello")))


def test_open_says_what_is_broken() -> None:
    outer = load("turn_send_indication_no_data")
    opened = demux.open_payload(outer, parse=EVERY_HEADER)
    assert opened.turn_error == "TURN send indication has no DATA attribute"
    assert (opened.payload, opened.kind, opened.tunnel) == (outer, PacketKind.STUN, None)
    broken = demux.open_payload(load("broken_rtp_extension_element"), parse=EVERY_HEADER)
    assert broken.kind is PacketKind.RTP and broken.rtp is None and broken.error


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=60), st.booleans())
def test_open_agrees_with_its_steps(data: bytes, srtp: bool) -> None:
    """Never raises; the same as unwrap_turn, classify and each header parser in turn."""
    opened = demux.open_payload(data, parse=EVERY_HEADER, srtp=srtp)
    try:
        unwrapped = unwrap_turn(data)
    except MalformedPacket as error:
        assert opened.turn_error == str(error)
        unwrapped = None
    inner = data if unwrapped is None else unwrapped[1]
    assert (opened.payload, opened.kind) == (inner, classify(inner))
    assert opened.tunnel == (None if unwrapped is None else unwrapped[0])
    parsers = {
        PacketKind.RTP: lambda: opened.rtp == rtp.RtpPacket.parse(inner, srtp=srtp),
        PacketKind.RTCP: lambda: opened.rtcp == rtcp.parse_header(inner),
        PacketKind.STUN: lambda: opened.stun == stun.parse(inner),
        PacketKind.DTLS: lambda: opened.dtls == tuple(dtls.parse_records(inner)),
    }
    if opened.kind in parsers:
        try:
            assert parsers[opened.kind]()
        except MalformedPacket as error:
            assert opened.error == str(error)
        else:
            assert opened.error is None
