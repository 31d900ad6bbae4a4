"""RTP packets (RFC 3550), their header extensions (RFC 8285) and the audio level (RFC 6464).

The meaning of every field follows Wireshark's RTP dissector for the same bytes
(``rtp.seq``, ``rtp.ext.rfc5285.id``, ``rtp.ext.rfc5285.data``, ...), so the two can be
compared packet by packet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from decoders.errors import MalformedPacket

RTP_VERSION = 2
HEADER_LENGTH = 12
ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE = 0x1000
TWO_BYTE_PROFILE_MASK = 0xFFF0
ONE_BYTE_RESERVED_ID = 15

_FIXED_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class HeaderExtension:
    """One RFC 8285 header extension element: its local id and its data."""

    id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class AudioLevel:
    """RFC 6464 client-to-mixer audio level: voice flag, level in -dBov (127 = silence)."""

    voice: bool
    level: int


@dataclass(frozen=True, slots=True)
class RtpPacket:
    r"""An RTP packet as RFC 3550 section 5.1 lays it out.

    ::

         0                   1                   2                   3
         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |V=2|P|X|  CC   |M|     PT      |       sequence number         |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                           timestamp                           |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |           synchronization source (SSRC) identifier            |
        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
        |            contributing source (CSRC) identifiers             |
        |                             ....                              |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |      defined by profile       |           length              |  (if X)
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                 header extension (length words)               |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                    payload ...                                |
        |                               +-------------------------------+
        |                               | padding ...   | padding count |  (if P)
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    ``payload`` excludes RTP padding (``padding_data``, whose last byte is the count
    ``padding_length``). For SRTP the payload is ciphertext followed by the auth tag.
    ``extension_data`` is the raw extension block; ``extensions`` its RFC 8285 elements
    (empty for a profile that is neither one-byte 0xBEDE nor two-byte 0x100X).
    """

    version: int
    padding: bool
    extension: bool
    marker: bool
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    csrcs: tuple[int, ...]
    extension_profile: int | None
    extensions: tuple[HeaderExtension, ...]
    extension_offset: int | None
    payload_offset: int
    payload_length: int
    padding_length: int
    payload: bytes
    extension_data: bytes = b""
    padding_data: bytes = b""

    @classmethod
    def parse(cls, data: bytes, *, srtp: bool = False) -> RtpPacket:
        """Parse one RTP packet; raise MalformedPacket naming the field that does not fit.

        With ``srtp=True`` the padding count is not read: SRTP encrypts it and appends the
        auth tag after it, so the last byte is not the count. ``padding`` still reports the bit.
        """
        if len(data) < HEADER_LENGTH:
            raise MalformedPacket(f"RTP header truncated: {len(data)} of {HEADER_LENGTH} bytes")
        first, second, sequence_number, timestamp, ssrc = _FIXED_HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise MalformedPacket(f"RTP version is {version}, not 2")
        padding = bool(first & 0x20)
        extension = bool(first & 0x10)
        csrc_count = first & 0x0F

        offset = HEADER_LENGTH
        csrc_end = offset + 4 * csrc_count
        if len(data) < csrc_end:
            raise MalformedPacket(f"RTP CSRC list truncated: {csrc_count} CSRCs announced")
        csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset)
        offset = csrc_end

        extension_profile: int | None = None
        extension_offset: int | None = None
        extension_data = b""
        extensions: tuple[HeaderExtension, ...] = ()
        if extension:
            if len(data) < offset + 4:
                raise MalformedPacket("RTP header extension profile/length truncated")
            extension_profile, length_words = _EXTENSION_HEADER.unpack_from(data, offset)
            extension_offset = offset + 4
            offset = extension_offset + 4 * length_words
            if len(data) < offset:
                raise MalformedPacket(
                    f"RTP header extension truncated: {length_words} words announced"
                )
            extension_data = bytes(data[extension_offset:offset])
            extensions = parse_extension_elements(extension_profile, extension_data)

        padding_length = 0
        if padding and not srtp:
            padding_length = data[-1]
            if padding_length == 0 or padding_length > len(data) - offset:
                raise MalformedPacket(
                    f"RTP padding count {padding_length} does not fit the "
                    f"{len(data) - offset} bytes after the header"
                )
        payload_end = len(data) - padding_length
        return cls(
            version=version,
            padding=padding,
            extension=extension,
            marker=bool(second & 0x80),
            payload_type=second & 0x7F,
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=ssrc,
            csrcs=csrcs,
            extension_profile=extension_profile,
            extensions=extensions,
            extension_offset=extension_offset,
            payload_offset=offset,
            payload_length=payload_end - offset,
            padding_length=padding_length,
            payload=bytes(data[offset:payload_end]),
            extension_data=extension_data,
            padding_data=bytes(data[payload_end:]),
        )

    def serialize(self) -> bytes:
        """The wire bytes: header fields, raw ``extension_data``, ``payload``, ``padding_data``."""
        if len(self.extension_data) % 4:
            raise ValueError("RTP extension_data must be a whole number of 32-bit words")
        first = (
            (self.version << 6)
            | (self.padding << 5)
            | (self.extension << 4)
            | (len(self.csrcs) & 0x0F)
        )
        second = (self.marker << 7) | (self.payload_type & 0x7F)
        parts = [
            _FIXED_HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc),
            struct.pack(f"!{len(self.csrcs)}I", *self.csrcs),
        ]
        if self.extension:
            profile = self.extension_profile if self.extension_profile is not None else 0
            parts.append(_EXTENSION_HEADER.pack(profile, len(self.extension_data) // 4))
            parts.append(self.extension_data)
        parts.append(self.payload)
        parts.append(self.padding_data)
        return b"".join(parts)

    @classmethod
    def build(
        cls,
        *,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        payload: bytes = b"",
        marker: bool = False,
        csrcs: Iterable[int] = (),
        extensions: Iterable[HeaderExtension] = (),
        extension_profile: int | None = None,
        padding_length: int = 0,
    ) -> RtpPacket:
        """Make a packet from its fields (zero padding bytes); the result of parsing its bytes."""
        csrc_list = tuple(csrcs)
        elements = tuple(extensions)
        if len(csrc_list) > 15:
            raise ValueError("RTP allows at most 15 CSRCs")
        if not 0 <= padding_length <= 255:
            raise ValueError("RTP padding length must be 0..255")
        if elements and extension_profile is None:
            extension_profile = _choose_profile(elements)
        header = _FIXED_HEADER.pack(
            (RTP_VERSION << 6)
            | ((padding_length > 0) << 5)
            | ((extension_profile is not None) << 4)
            | len(csrc_list),
            (marker << 7) | payload_type,
            sequence_number,
            timestamp,
            ssrc,
        )
        parts = [header, struct.pack(f"!{len(csrc_list)}I", *csrc_list)]
        if extension_profile is not None:
            block = pack_extension_elements(extension_profile, elements)
            parts.append(_EXTENSION_HEADER.pack(extension_profile, len(block) // 4) + block)
        parts.append(payload)
        if padding_length:
            parts.append(bytes(padding_length - 1) + bytes([padding_length]))
        return cls.parse(b"".join(parts))


def is_one_byte_profile(profile: int) -> bool:
    """RFC 8285 section 4.2: the one-byte header form is announced by 0xBEDE."""
    return profile == ONE_BYTE_PROFILE


def is_two_byte_profile(profile: int) -> bool:
    """RFC 8285 section 4.3: the two-byte form is 0x100 plus 4 application bits."""
    return profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE


def parse_extension_elements(profile: int, block: bytes) -> tuple[HeaderExtension, ...]:
    """RFC 8285: the elements of an extension block; () for a profile that is not RFC 8285.

    One-byte form: a byte with id 0 is one padding byte, id 15 ends the block, the 4-bit
    length is len-1. (Wireshark skips only 0x00 bytes and would show 0x01-0x0F as an id-0
    element; RFC 8285 forbids such bytes, real senders never emit them.)
    Two-byte form: zero bytes are padding, then id byte and length byte (0 allowed).
    An element that runs past the block raises MalformedPacket.
    """
    if is_one_byte_profile(profile):
        return _parse_one_byte(block)
    if is_two_byte_profile(profile):
        return _parse_two_byte(block)
    return ()


def _parse_one_byte(block: bytes) -> tuple[HeaderExtension, ...]:
    """RFC 8285 section 4.2: one-byte header elements."""
    elements: list[HeaderExtension] = []
    offset = 0
    while offset < len(block):
        byte = block[offset]
        element_id = byte >> 4
        if element_id == 0:
            offset += 1
            continue
        if element_id == ONE_BYTE_RESERVED_ID:
            break
        length = (byte & 0x0F) + 1
        start = offset + 1
        if start + length > len(block):
            raise MalformedPacket(
                f"RTP header extension element id {element_id} length {length} "
                f"runs past the {len(block)}-byte block"
            )
        elements.append(HeaderExtension(element_id, bytes(block[start : start + length])))
        offset = start + length
    return tuple(elements)


def _parse_two_byte(block: bytes) -> tuple[HeaderExtension, ...]:
    """RFC 8285 section 4.3: two-byte header elements."""
    elements: list[HeaderExtension] = []
    offset = 0
    while offset < len(block):
        element_id = block[offset]
        if element_id == 0:
            offset += 1
            continue
        if offset + 2 > len(block):
            raise MalformedPacket(f"RTP header extension element id {element_id} length missing")
        length = block[offset + 1]
        start = offset + 2
        if start + length > len(block):
            raise MalformedPacket(
                f"RTP header extension element id {element_id} length {length} "
                f"runs past the {len(block)}-byte block"
            )
        elements.append(HeaderExtension(element_id, bytes(block[start : start + length])))
        offset = start + length
    return tuple(elements)


def pack_extension_elements(profile: int, elements: Iterable[HeaderExtension]) -> bytes:
    """RFC 8285: encode elements in the profile's form, zero-padded to a 32-bit boundary."""
    out = bytearray()
    for element in elements:
        if is_one_byte_profile(profile):
            if not 1 <= element.id <= 14 or not 1 <= len(element.data) <= 16:
                raise ValueError(f"one-byte header extension cannot carry {element!r}")
            out.append((element.id << 4) | (len(element.data) - 1))
        elif is_two_byte_profile(profile):
            if not 1 <= element.id <= 255 or len(element.data) > 255:
                raise ValueError(f"two-byte header extension cannot carry {element!r}")
            out += bytes((element.id, len(element.data)))
        else:
            raise ValueError(f"profile 0x{profile:04x} has no RFC 8285 elements")
        out += element.data
    out += bytes(-len(out) % 4)
    return bytes(out)


def _choose_profile(elements: tuple[HeaderExtension, ...]) -> int:
    """RFC 8285 section 4.1: use the one-byte form when every element fits it."""
    if all(1 <= e.id <= 14 and 1 <= len(e.data) <= 16 for e in elements):
        return ONE_BYTE_PROFILE
    return TWO_BYTE_PROFILE


def parse_audio_level(data: bytes) -> AudioLevel:
    """RFC 6464 section 3: V in the top bit, the level (0..127, -dBov) in the low seven bits.

    Only the first byte is read (the element is one byte; extra bytes are tolerated).
    """
    if not data:
        raise MalformedPacket("RTP audio level element is empty")
    return AudioLevel(voice=bool(data[0] & 0x80), level=data[0] & 0x7F)


def audio_level(packet: RtpPacket, extension_id: int) -> AudioLevel | None:
    """RFC 6464: the audio level carried under the negotiated extmap id, None when absent."""
    for element in packet.extensions:
        if element.id == extension_id:
            return parse_audio_level(element.data)
    return None
