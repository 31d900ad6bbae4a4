"""STUN parsing on ICE and TURN messages made by aioice, checked against aioice and tshark."""

from __future__ import annotations

import contextlib
import struct

import pytest
from aioice import stun as aioice_stun
from helpers.packet_fixtures import PACKETS, golden, load
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
from decoders.wire import stun
from decoders.wire.stun import StunAttribute, StunMessage, parse, split_message_type

STUN_FIXTURES = sorted(
    p.stem for p in PACKETS.glob("*.bin") if p.stem.startswith(("stun_", "turn_"))
)
MESSAGES = [name for name in STUN_FIXTURES if not name.startswith("turn_channel_data")]
TRANSACTION = bytes.fromhex("a1b2c3d4e5f60718293a4b5c")


def message(name: str) -> StunMessage:
    parsed = parse(load(name))
    assert parsed is not None
    return parsed


def test_binding_request_of_the_controlling_agent() -> None:
    data = load("stun_binding_request")
    request = message("stun_binding_request")
    assert request.message_type == 0x0001
    assert request.message_class == "request"
    assert request.method == 0x001
    assert request.method_name == "binding"
    assert request.length == len(data) - 20
    assert request.transaction_id == TRANSACTION
    assert [a.type for a in request.attributes] == [
        stun.USERNAME,
        stun.PRIORITY,
        stun.ICE_CONTROLLING,
        stun.USE_CANDIDATE,
        stun.MESSAGE_INTEGRITY,
        stun.FINGERPRINT,
    ]
    assert request.attributes[0] == StunAttribute(0x0006, b"remoteUfrag:localUfrag")
    assert request.username == "remoteUfrag:localUfrag"
    assert request.priority == 1_853_817_087
    assert request.ice_controlling == 0x0123_4567_89AB_CDEF
    assert request.ice_controlled is None
    assert request.use_candidate is True
    assert request.has_message_integrity is True
    assert request.fingerprint_valid is True
    assert request.xor_mapped_address is None
    assert request.error_code is None
    assert request.data is None
    assert request.attribute(stun.MESSAGE_INTEGRITY) == data[-28:-8]
    assert request.attribute(stun.XOR_PEER_ADDRESS) is None
    assert request.from_libwebrtc is False  # no GOOG-NETWORK-INFO


def test_binding_request_of_the_controlled_agent() -> None:
    request = message("stun_binding_request_controlled")
    assert request.transaction_id == bytes(range(12))
    assert request.username == "localUfrag:remoteUfrag"
    assert request.ice_controlled == 7
    assert request.ice_controlling is None
    assert request.use_candidate is False


def test_binding_responses() -> None:
    ipv4 = message("stun_binding_success_ipv4")
    assert (ipv4.message_type, ipv4.message_class) == (0x0101, "success")
    assert ipv4.xor_mapped_address == ("192.0.2.10", 54321)
    ipv6 = message("stun_binding_success_ipv6")
    assert ipv6.xor_mapped_address == ("2001:db8::1:2", 40000)
    assert ipv6.fingerprint_valid is True
    error = message("stun_binding_error")
    assert (error.message_type, error.message_class) == (0x0111, "error")
    assert error.error_code == (487, "Role Conflict")


def test_indication_and_bare_request() -> None:
    keepalive = message("stun_binding_indication")
    assert (keepalive.message_class, keepalive.method_name) == ("indication", "binding")
    assert [a.type for a in keepalive.attributes] == [stun.FINGERPRINT]
    assert keepalive.fingerprint_valid is True
    assert keepalive.has_message_integrity is False
    bare = message("stun_binding_request_plain")
    assert bare.attributes == ()
    assert bare.length == 0
    assert bare.fingerprint_valid is None


def test_turn_allocation() -> None:
    request = message("turn_allocate_request")
    assert (request.method_name, request.message_class) == ("allocate", "request")
    assert request.lifetime == 600
    assert request.software == "aioice"
    assert request.attribute(stun.REQUESTED_TRANSPORT) == bytes([17, 0, 0, 0])
    unauthorized = message("turn_allocate_unauthorized")
    assert unauthorized.error_code == (401, "Unauthorized")
    assert unauthorized.attribute(stun.REALM) == b"example.org"
    assert unauthorized.attribute(stun.NONCE) == b"abcdef012345"
    success = message("turn_allocate_success")
    assert success.xor_relayed_address == ("198.51.100.7", 49152)
    assert success.xor_mapped_address == ("203.0.113.5", 61000)
    assert success.lifetime == 600
    assert success.has_message_integrity is True
    refresh = message("turn_refresh_request")
    assert (refresh.method_name, refresh.lifetime) == ("refresh", 0)


def test_turn_channel_bind_and_indications() -> None:
    bind = message("turn_channel_bind_request")
    assert bind.method_name == "channel-bind"
    assert bind.channel_number == 0x4000
    assert bind.xor_peer_address == ("192.0.2.99", 50000)
    send = message("turn_send_indication")
    assert (send.message_type, send.method_name, send.message_class) == (
        0x0016,
        "send",
        "indication",
    )
    assert send.data == load("stun_binding_request_controlled")
    assert send.xor_peer_address == ("192.0.2.99", 50000)
    data = message("turn_data_indication")
    assert (data.message_type, data.method_name) == (0x0017, "data")
    assert data.data == load("srtp_opus_one_byte")


def test_damaged_fingerprint_is_reported_not_raised() -> None:
    assert message("broken_stun_fingerprint").fingerprint_valid is False


def test_truncated_message() -> None:
    with pytest.raises(MalformedPacket, match="STUN message length 44 does not match the 40"):
        parse(load("broken_stun_truncated"))


@pytest.mark.parametrize(
    "name", ["rtp_opus_one_byte", "rtcp_sr_sdes", "dtls_client_hello", "turn_channel_data_udp"]
)
def test_other_protocols_are_not_stun(name: str) -> None:
    assert parse(load(name)) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", None),
        (bytes(7), None),
        (bytes(20), None),  # no magic cookie: classic RFC 3489 STUN is out of scope
        (b"\xc0\x01\x00\x00\x21\x12\xa4\x42" + bytes(12), None),  # top bits set
    ],
)
def test_not_stun(data: bytes, expected: None) -> None:
    assert parse(data) is expected


COOKIE = struct.pack("!I", stun.MAGIC_COOKIE)


def stun_bytes(message_type: int, attributes: bytes, transaction_id: bytes = TRANSACTION) -> bytes:
    return struct.pack("!HH", message_type, len(attributes)) + COOKIE + transaction_id + attributes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01\x00\x00" + COOKIE + bytes(4), "STUN header truncated: 12 of 20 bytes"),
        (stun_bytes(1, b"")[:2] + b"\x00\x02" + stun_bytes(1, b"")[4:] + b"ab", "not a multiple"),
        (stun_bytes(1, bytes.fromhex("0006 0005 61626364 65")), "STUN message length 9"),
        (stun_bytes(1, bytes.fromhex("0006 0005 61626364")), "STUN attribute 0x0006 length 5"),
        (stun_bytes(1, bytes.fromhex("0006 0004 ff616263")), "STUN USERNAME is not UTF-8"),
        (stun_bytes(1, bytes.fromhex("0024 0002 00010000")), "STUN PRIORITY has 2 bytes, not 4"),
        (stun_bytes(1, bytes.fromhex("0020 0004 00010000")), "STUN XOR-MAPPED-ADDRESS address"),
        (stun_bytes(1, bytes.fromhex("0020 0002 00010000")), "XOR-MAPPED-ADDRESS truncated"),
        (stun_bytes(1, bytes.fromhex("0001 0008 00030000 01020304")), "family 0x03"),
        (stun_bytes(0x111, bytes.fromhex("0009 0004 00000263")), "STUN ERROR-CODE 299"),
        (stun_bytes(0x111, bytes.fromhex("0009 0002 00000000")), "STUN ERROR-CODE truncated"),
        (stun_bytes(1, bytes.fromhex("8028 0002 00000000")), "STUN FINGERPRINT has 2 bytes"),
        (stun_bytes(1, bytes.fromhex("000c 0002 40000000")), "STUN CHANNEL-NUMBER has 2 bytes"),
    ],
)
def test_errors_name_the_field(data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        parse(data)


def test_first_attribute_of_a_type_wins() -> None:
    attributes = bytes.fromhex("0024 0004 00000001 0024 0004 00000002")
    parsed = parse(stun_bytes(1, attributes))
    assert parsed is not None
    assert parsed.priority == 1
    assert len(parsed.attributes) == 2


def test_mapped_address_is_not_xored() -> None:
    parsed = parse(stun_bytes(0x101, bytes.fromhex("0001 0008 0001 1234 c0000201")))
    assert parsed is not None
    assert parsed.mapped_address == ("192.0.2.1", 0x1234)


@pytest.mark.parametrize(
    ("message_type", "method", "message_class"),
    [
        (0x0001, 1, 0),
        (0x0011, 1, 1),
        (0x0101, 1, 2),
        (0x0111, 1, 3),
        (0x0113, 3, 3),
        (0x3FFF, 0xFFF, 3),
    ],
)
def test_split_message_type(message_type: int, method: int, message_class: int) -> None:
    assert split_message_type(message_type) == (method, message_class)


@pytest.mark.parametrize("name", MESSAGES)
def test_agrees_with_aioice(name: str) -> None:
    data = load(name)
    if name == "broken_stun_truncated":
        return
    theirs = aioice_stun.parse_message(data)
    ours = message(name)
    assert ours.method == theirs.message_method
    assert ours.transaction_id == theirs.transaction_id
    attrs = theirs.attributes
    assert ours.username == attrs.get("USERNAME")
    assert ours.priority == attrs.get("PRIORITY")
    assert ours.ice_controlling == attrs.get("ICE-CONTROLLING")
    assert ours.ice_controlled == attrs.get("ICE-CONTROLLED")
    assert ours.use_candidate == ("USE-CANDIDATE" in attrs)
    assert ours.xor_mapped_address == attrs.get("XOR-MAPPED-ADDRESS")
    assert ours.xor_peer_address == attrs.get("XOR-PEER-ADDRESS")
    assert ours.xor_relayed_address == attrs.get("XOR-RELAYED-ADDRESS")
    assert ours.error_code == attrs.get("ERROR-CODE")
    assert ours.data == attrs.get("DATA")
    assert ours.channel_number == attrs.get("CHANNEL-NUMBER")
    assert ours.lifetime == attrs.get("LIFETIME")
    assert ours.software == attrs.get("SOFTWARE")


CLASS_BITS = {"request": "0x0000", "indication": "0x0001", "success": "0x0010", "error": "0x0011"}


@pytest.mark.parametrize("name", [n for n in sorted(golden("stun")) if n in MESSAGES])
def test_agrees_with_tshark(name: str) -> None:
    row = golden("stun")[name]
    try:
        ours = message(name)
    except MalformedPacket:
        assert row["stun.type"] == []  # tshark does not take it for STUN either
        return
    assert row["stun.type"] == [f"0x{ours.message_type:04x}"]
    assert row["stun.type.class"] == [CLASS_BITS[ours.message_class]]
    assert row["stun.type.method"] == [f"0x{ours.method:04x}"]
    assert row["stun.length"] == [str(ours.length)]
    assert row["stun.id"] == [ours.transaction_id.hex()]
    assert row["stun.att.type"] == [f"0x{a.type:04x}" for a in ours.attributes]
    assert row["stun.att.username"] == ([ours.username] if ours.username else [])
    decoded = {
        stun.XOR_RELAYED_ADDRESS: ours.xor_relayed_address,
        stun.XOR_MAPPED_ADDRESS: ours.xor_mapped_address,
        stun.XOR_PEER_ADDRESS: ours.xor_peer_address,
    }
    addresses = [decoded[a.type] or ("?", 0) for a in ours.attributes if a.type in decoded]
    assert row["stun.att.ipv4"] + row["stun.att.ipv6"] == [host for host, _ in addresses]
    assert row["stun.att.port"] == [str(port) for _, port in addresses]
    assert row["stun.att.priority"] == ([str(ours.priority)] if ours.priority else [])
    tie_breaker = ours.ice_controlling if ours.ice_controlling is not None else ours.ice_controlled
    assert row["stun.att.tie-breaker"] == ([f"{tie_breaker:016x}"] if tie_breaker else [])
    if ours.error_code is not None:
        code, reason = ours.error_code
        assert row["stun.att.error.class"] == [str(code // 100)]
        assert row["stun.att.error"] == [str(code % 100)]
        assert row["stun.att.error.reason"] == [reason]
    assert row["stun.att.channelnum"] == (
        [f"0x{ours.channel_number:04x}"] if ours.channel_number is not None else []
    )
    assert row["stun.att.lifetime"] == ([str(ours.lifetime)] if ours.lifetime is not None else [])
    assert row["stun.att.software"] == ([ours.software] if ours.software else [])
    if ours.fingerprint_valid is not None:
        assert row["stun.att.crc32.status"] == [str(int(ours.fingerprint_valid))]


@pytest.mark.parametrize("name", STUN_FIXTURES)
def test_cut_at_every_length(name: str) -> None:
    data = load(name)
    for end in range(len(data) + 1):
        with contextlib.suppress(MalformedPacket):
            parse(data[:end])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedPacket):
        parse(data)


@settings(max_examples=400, deadline=None)
@given(
    st.integers(0, 0x3FFF),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    0x0001,
                    0x0006,
                    0x0009,
                    0x000C,
                    0x000D,
                    0x0012,
                    0x0013,
                    0x0016,
                    0x0020,
                    0x0024,
                    0x0025,
                    0x8022,
                    0x8028,
                    0x8029,
                    0x802A,
                    0x0008,
                    0xFFFF,
                ]
            ),
            st.binary(max_size=24),
        ),
        max_size=6,
    ),
)
def test_arbitrary_attributes_raise_only_malformed(
    message_type: int, attributes: list[tuple[int, bytes]]
) -> None:
    body = b"".join(
        struct.pack("!HH", kind, len(value)) + value + bytes(-len(value) % 4)
        for kind, value in attributes
    )
    try:
        parsed = parse(stun_bytes(message_type, body))
    except MalformedPacket:
        return
    assert parsed is not None
    assert [(a.type, a.value) for a in parsed.attributes] == attributes
