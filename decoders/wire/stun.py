"""STUN messages (RFC 8489) with the ICE (RFC 8445) and TURN (RFC 8656) attributes.

Only messages carrying the magic cookie are STUN here; classic RFC 3489 STUN is out of scope.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from dataclasses import dataclass
from typing import Literal

from decoders.errors import MalformedPacket

HEADER_LENGTH = 20
MAGIC_COOKIE = 0x2112A442
FINGERPRINT_XOR = 0x5354554E

MessageClass = Literal["request", "indication", "success", "error"]

CLASS_NAMES: dict[int, MessageClass] = {
    0: "request",
    1: "indication",
    2: "success",
    3: "error",
}

METHOD_NAMES = {
    0x001: "binding",
    0x003: "allocate",
    0x004: "refresh",
    0x006: "send",
    0x007: "data",
    0x008: "create-permission",
    0x009: "channel-bind",
    0x00A: "connect",
    0x00B: "connection-bind",
    0x00C: "connection-attempt",
}

METHOD_BINDING = 0x001
METHOD_SEND = 0x006
METHOD_DATA = 0x007

MAPPED_ADDRESS = 0x0001
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
CHANNEL_NUMBER = 0x000C
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA = 0x0013
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_TRANSPORT = 0x0019
MESSAGE_INTEGRITY_SHA256 = 0x001C
XOR_MAPPED_ADDRESS = 0x0020
PRIORITY = 0x0024
USE_CANDIDATE = 0x0025
SOFTWARE = 0x8022
FINGERPRINT = 0x8028
ICE_CONTROLLED = 0x8029
ICE_CONTROLLING = 0x802A
GOOG_NETWORK_INFO = 0xC057
"""libwebrtc's own comprehension-optional attribute (network id and cost) in its ICE checks:
Chrome, Edge, Safari and native libwebrtc apps send it; libnice, ice4j, pion and Firefox do not."""

_HEADER = struct.Struct("!HHI12s")
_ATTRIBUTE_HEADER = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class StunAttribute:
    """One type-length-value attribute; ``value`` excludes the padding to 32 bits."""

    type: int
    value: bytes


@dataclass(frozen=True, slots=True)
class StunMessage:
    """A STUN message and the attributes mutecheck reads, decoded by name.

    Each convenience comes from the first attribute of its type (RFC 8489 section 14);
    ``fingerprint_valid`` is None without a FINGERPRINT attribute.
    """

    message_type: int
    message_class: MessageClass
    method: int
    method_name: str
    length: int
    transaction_id: bytes
    attributes: tuple[StunAttribute, ...]
    username: str | None = None
    mapped_address: tuple[str, int] | None = None
    xor_mapped_address: tuple[str, int] | None = None
    xor_peer_address: tuple[str, int] | None = None
    xor_relayed_address: tuple[str, int] | None = None
    priority: int | None = None
    use_candidate: bool = False
    ice_controlling: int | None = None
    ice_controlled: int | None = None
    error_code: tuple[int, str] | None = None
    data: bytes | None = None
    channel_number: int | None = None
    lifetime: int | None = None
    software: str | None = None
    has_message_integrity: bool = False
    fingerprint_valid: bool | None = None

    @property
    def from_libwebrtc(self) -> bool:
        """The message carries :data:`GOOG_NETWORK_INFO`: a libwebrtc ICE agent sent it."""
        return self.attribute(GOOG_NETWORK_INFO) is not None

    def attribute(self, attribute_type: int) -> bytes | None:
        """The value of the first attribute of that type, None when absent."""
        for attribute in self.attributes:
            if attribute.type == attribute_type:
                return attribute.value
        return None


def split_message_type(message_type: int) -> tuple[int, int]:
    """RFC 8489 section 5: the 14-bit type interleaves method bits M0-M11 and class bits C0-C1."""
    method = (
        (message_type & 0x000F) | ((message_type & 0x00E0) >> 1) | ((message_type & 0x3E00) >> 2)
    )
    message_class = ((message_type >> 4) & 0x1) | ((message_type >> 7) & 0x2)
    return method, message_class


def looks_like_stun(data: bytes) -> bool:
    """RFC 8489 section 5: the top two bits are zero and bytes 4-7 hold the magic cookie."""
    return (
        len(data) >= 8 and data[0] & 0xC0 == 0 and int.from_bytes(data[4:8], "big") == MAGIC_COOKIE
    )


def parse(data: bytes) -> StunMessage | None:
    r"""Parse one STUN message filling ``data`` exactly; None when it is not STUN.

    RFC 8489 section 5 header, then attributes (section 14), each padded to 32 bits::

         0                   1                   2                   3
         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |0 0|     STUN Message Type     |         Message Length        |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                         Magic Cookie                          |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                     Transaction ID (96 bits)                  |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |         Type                  |            Length             |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                   Value (variable, padded)               ....
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    Not STUN (None): shorter than 8 bytes, top bits set, or no magic cookie. Cookie present
    but broken (MalformedPacket): truncated header, length not a multiple of 4 or not
    matching the data, an attribute running past the message, or a bad known attribute.
    """
    if not looks_like_stun(data):
        return None
    if len(data) < HEADER_LENGTH:
        raise MalformedPacket(f"STUN header truncated: {len(data)} of {HEADER_LENGTH} bytes")
    message_type, length, _cookie, transaction_id = _HEADER.unpack_from(data)
    if length % 4:
        raise MalformedPacket(f"STUN message length {length} is not a multiple of 4")
    if HEADER_LENGTH + length != len(data):
        raise MalformedPacket(
            f"STUN message length {length} does not match the {len(data) - HEADER_LENGTH} "
            "bytes after the header"
        )
    attributes, offsets = _parse_attributes(data)
    method, class_bits = split_message_type(message_type)
    found = _decode_attributes(attributes, transaction_id)
    fingerprint_valid: bool | None = None
    for attribute, offset in zip(attributes, offsets, strict=True):
        if attribute.type == FINGERPRINT:
            fingerprint_valid = _fingerprint_matches(data, offset, attribute.value)
            break
    return StunMessage(
        message_type=message_type,
        message_class=CLASS_NAMES[class_bits],
        method=method,
        method_name=METHOD_NAMES.get(method, f"0x{method:03x}"),
        length=length,
        transaction_id=transaction_id,
        attributes=attributes,
        username=found.username,
        mapped_address=found.mapped_address,
        xor_mapped_address=found.xor_mapped_address,
        xor_peer_address=found.xor_peer_address,
        xor_relayed_address=found.xor_relayed_address,
        priority=found.priority,
        use_candidate=found.use_candidate,
        ice_controlling=found.ice_controlling,
        ice_controlled=found.ice_controlled,
        error_code=found.error_code,
        data=found.data,
        channel_number=found.channel_number,
        lifetime=found.lifetime,
        software=found.software,
        has_message_integrity=found.has_message_integrity,
        fingerprint_valid=fingerprint_valid,
    )


def _parse_attributes(data: bytes) -> tuple[tuple[StunAttribute, ...], list[int]]:
    """RFC 8489 section 14: type, length, value, zero to three bytes of padding."""
    attributes = []
    offsets = []
    offset = HEADER_LENGTH
    while offset < len(data):
        if offset + 4 > len(data):
            raise MalformedPacket(f"STUN attribute header truncated at byte {offset}")
        attribute_type, length = _ATTRIBUTE_HEADER.unpack_from(data, offset)
        start = offset + 4
        end = start + length + (-length % 4)
        if end > len(data):
            raise MalformedPacket(
                f"STUN attribute 0x{attribute_type:04x} length {length} runs past the message"
            )
        attributes.append(StunAttribute(attribute_type, bytes(data[start : start + length])))
        offsets.append(offset)
        offset = end
    return tuple(attributes), offsets


@dataclass(slots=True)
class _Conveniences:
    """The decoded attributes, filled while walking them (first of each type wins)."""

    username: str | None = None
    mapped_address: tuple[str, int] | None = None
    xor_mapped_address: tuple[str, int] | None = None
    xor_peer_address: tuple[str, int] | None = None
    xor_relayed_address: tuple[str, int] | None = None
    priority: int | None = None
    use_candidate: bool = False
    ice_controlling: int | None = None
    ice_controlled: int | None = None
    error_code: tuple[int, str] | None = None
    data: bytes | None = None
    channel_number: int | None = None
    lifetime: int | None = None
    software: str | None = None
    has_message_integrity: bool = False


def _decode_attributes(
    attributes: tuple[StunAttribute, ...], transaction_id: bytes
) -> _Conveniences:
    """RFC 8489 / 8445 / 8656: decode the first attribute of each type we know."""
    out = _Conveniences()
    seen: set[int] = set()
    for attribute in attributes:
        kind, value = attribute.type, attribute.value
        if kind in seen:
            continue
        seen.add(kind)
        if kind == USERNAME:
            out.username = _text(value, "USERNAME")
        elif kind == MAPPED_ADDRESS:
            out.mapped_address = _address(value, "MAPPED-ADDRESS", None)
        elif kind == XOR_MAPPED_ADDRESS:
            out.xor_mapped_address = _address(value, "XOR-MAPPED-ADDRESS", transaction_id)
        elif kind == XOR_PEER_ADDRESS:
            out.xor_peer_address = _address(value, "XOR-PEER-ADDRESS", transaction_id)
        elif kind == XOR_RELAYED_ADDRESS:
            out.xor_relayed_address = _address(value, "XOR-RELAYED-ADDRESS", transaction_id)
        elif kind == PRIORITY:
            out.priority = _unsigned(value, 4, "PRIORITY")
        elif kind == USE_CANDIDATE:
            out.use_candidate = True
        elif kind == ICE_CONTROLLING:
            out.ice_controlling = _unsigned(value, 8, "ICE-CONTROLLING")
        elif kind == ICE_CONTROLLED:
            out.ice_controlled = _unsigned(value, 8, "ICE-CONTROLLED")
        elif kind == ERROR_CODE:
            out.error_code = _error_code(value)
        elif kind == DATA:
            out.data = value
        elif kind == CHANNEL_NUMBER:
            out.channel_number = _unsigned(value, 4, "CHANNEL-NUMBER") >> 16
        elif kind == LIFETIME:
            out.lifetime = _unsigned(value, 4, "LIFETIME")
        elif kind == SOFTWARE:
            out.software = _text(value, "SOFTWARE")
        elif kind in (MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256):
            out.has_message_integrity = True
    return out


def _text(value: bytes, name: str) -> str:
    """RFC 8489 section 14: USERNAME, SOFTWARE, REALM and reason phrases are UTF-8."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedPacket(f"STUN {name} is not UTF-8") from error


def _unsigned(value: bytes, size: int, name: str) -> int:
    """RFC 8445 section 16.1 / RFC 8656 section 18: fixed-size big-endian integers."""
    if len(value) != size:
        raise MalformedPacket(f"STUN {name} has {len(value)} bytes, not {size}")
    return int.from_bytes(value, "big")


def _address(value: bytes, name: str, transaction_id: bytes | None) -> tuple[str, int]:
    """RFC 8489 sections 14.1-14.2: family, port and address, XORed with cookie (+ id)."""
    if len(value) < 4:
        raise MalformedPacket(f"STUN {name} truncated: {len(value)} bytes")
    family = value[1]
    port = int.from_bytes(value[2:4], "big")
    raw = value[4:]
    if family == 0x01:
        size = 4
    elif family == 0x02:
        size = 16
    else:
        raise MalformedPacket(f"STUN {name} family 0x{family:02x} is neither IPv4 nor IPv6")
    if len(raw) != size:
        raise MalformedPacket(f"STUN {name} address has {len(raw)} bytes, not {size}")
    if transaction_id is not None:
        port ^= MAGIC_COOKIE >> 16
        mask = (MAGIC_COOKIE.to_bytes(4, "big") + transaction_id)[:size]
        raw = bytes(a ^ b for a, b in zip(raw, mask, strict=True))
    address = ipaddress.IPv4Address(raw) if size == 4 else ipaddress.IPv6Address(raw)
    return str(address), port


def _error_code(value: bytes) -> tuple[int, str]:
    """RFC 8489 section 14.8: class (hundreds) in 3 bits, number in 8 bits, UTF-8 reason."""
    if len(value) < 4:
        raise MalformedPacket(f"STUN ERROR-CODE truncated: {len(value)} bytes")
    error_class = value[2] & 0x07
    number = value[3]
    if not 3 <= error_class <= 6 or number > 99:
        raise MalformedPacket(f"STUN ERROR-CODE {error_class}{number:02d} is out of range")
    return error_class * 100 + number, _text(value[4:], "ERROR-CODE reason")


def _fingerprint_matches(data: bytes, offset: int, value: bytes) -> bool:
    """RFC 8489 section 14.7: CRC-32 of the message up to FINGERPRINT, XOR 0x5354554e.

    The CRC covers the header with its length set to end just after the FINGERPRINT.
    """
    if len(value) != 4:
        raise MalformedPacket(f"STUN FINGERPRINT has {len(value)} bytes, not 4")
    covered = bytearray(data[:offset])
    struct.pack_into("!H", covered, 2, offset + 8 - HEADER_LENGTH)
    expected = (zlib.crc32(covered) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
    return expected == int.from_bytes(value, "big")
