"""RTCP packets (RFC 3550 section 6, feedback RFC 4585) and compound packets.

Field meanings follow Wireshark's RTCP dissector (``rtcp.pt``, ``rtcp.length`` is the raw
"length in words minus one", ``rtcp.ssrc.cum_nr`` is signed, ...).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from decoders.errors import MalformedPacket

RTCP_VERSION = 2
HEADER_LENGTH = 8
COMMON_HEADER_LENGTH = 4
REPORT_BLOCK_LENGTH = 24
SENDER_INFO_LENGTH = 20

SENDER_REPORT = 200
RECEIVER_REPORT = 201
SOURCE_DESCRIPTION = 202
GOODBYE = 203
APPLICATION_DEFINED = 204
RTP_FEEDBACK = 205
PAYLOAD_FEEDBACK = 206
EXTENDED_REPORT = 207

PACKET_TYPE_NAMES = {
    SENDER_REPORT: "sender-report",
    RECEIVER_REPORT: "receiver-report",
    SOURCE_DESCRIPTION: "source-description",
    GOODBYE: "goodbye",
    APPLICATION_DEFINED: "application-defined",
    RTP_FEEDBACK: "rtp-feedback",
    PAYLOAD_FEEDBACK: "payload-feedback",
    EXTENDED_REPORT: "extended-report",
}

# RFC 4585 / RFC 5104 / RFC 8888 feedback message types (the FMT field).
RTPFB_NACK = 1
RTPFB_TRANSPORT_CC = 15
PSFB_PLI = 1
PSFB_SLI = 2
PSFB_RPSI = 3
PSFB_FIR = 4
PSFB_APPLICATION = 15

SDES_END = 0
SDES_CNAME = 1

_HEADER = struct.Struct("!BBHI")
_COMMON = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!QIII")
_REPORT_BLOCK = struct.Struct("!IB3sIIII")
_TWO_SSRCS = struct.Struct("!II")


@dataclass(frozen=True, slots=True)
class RtcpHeader:
    r"""The first 8 bytes of every RTCP packet (RFC 3550 section 6.4.1), clear even in SRTCP.

    ::

         0                   1                   2                   3
         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |V=2|P|   RC    |      PT       |             length            |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                 SSRC of sender / first source                 |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    ``length_words`` is the raw length field: the packet's size in 32-bit words minus one.
    """

    version: int
    padding: bool
    count: int
    packet_type: int
    length_words: int
    ssrc: int

    @property
    def packet_length(self) -> int:
        """The packet's size in bytes, header and padding included."""
        return 4 * (self.length_words + 1)


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """RFC 3550 section 6.4.1: reception statistics about one source."""

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    last_sr: int
    delay_since_last_sr: int


@dataclass(frozen=True, slots=True)
class SenderReport:
    """RFC 3550 section 6.4.1, PT 200; ``ntp_timestamp`` is the 64-bit fixed-point value."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...]
    profile_extension: bytes = b""


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RFC 3550 section 6.4.2, PT 201."""

    ssrc: int
    reports: tuple[ReportBlock, ...]
    profile_extension: bytes = b""


@dataclass(frozen=True, slots=True)
class SdesItem:
    """RFC 3550 section 6.5: one item (1 = CNAME, 2 = NAME, ..., 8 = PRIV) and its value."""

    type: int
    value: bytes


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """RFC 3550 section 6.5: the items describing one source."""

    ssrc: int
    items: tuple[SdesItem, ...]


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """RFC 3550 section 6.5, PT 202."""

    chunks: tuple[SdesChunk, ...]


@dataclass(frozen=True, slots=True)
class Goodbye:
    """RFC 3550 section 6.6, PT 203; ``reason`` is the raw text, None when absent."""

    ssrcs: tuple[int, ...]
    reason: bytes | None


@dataclass(frozen=True, slots=True)
class ApplicationDefined:
    """RFC 3550 section 6.7, PT 204; ``name`` is the four ASCII characters."""

    subtype: int
    ssrc: int
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class RtpFeedback:
    """RFC 4585 section 6.2, PT 205 (transport-layer feedback: NACK, transport-cc, ...)."""

    fmt: int
    sender_ssrc: int
    media_ssrc: int
    fci: bytes


TransportFeedback = RtpFeedback


@dataclass(frozen=True, slots=True)
class PayloadFeedback:
    """RFC 4585 section 6.3, PT 206 (PLI, FIR, REMB, ...)."""

    fmt: int
    sender_ssrc: int
    media_ssrc: int
    fci: bytes


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """Any other packet type (XR, ...): the body after the 4-byte common header."""

    packet_type: int
    count: int
    body: bytes


RtcpPacket = (
    SenderReport
    | ReceiverReport
    | SourceDescription
    | Goodbye
    | ApplicationDefined
    | RtpFeedback
    | PayloadFeedback
    | UnknownRtcp
)


def parse_header(data: bytes) -> RtcpHeader:
    """RFC 3550 section 6.4.1: the first 8 bytes of an RTCP or SRTCP packet."""
    if len(data) < HEADER_LENGTH:
        raise MalformedPacket(f"RTCP header truncated: {len(data)} of {HEADER_LENGTH} bytes")
    first, packet_type, length_words, ssrc = _HEADER.unpack_from(data)
    version = first >> 6
    if version != RTCP_VERSION:
        raise MalformedPacket(f"RTCP version is {version}, not 2")
    return RtcpHeader(
        version=version,
        padding=bool(first & 0x20),
        count=first & 0x1F,
        packet_type=packet_type,
        length_words=length_words,
        ssrc=ssrc,
    )


def parse_compound(data: bytes) -> list[RtcpPacket]:
    r"""RFC 3550 section 6.1: the packets of a plaintext compound RTCP packet, in order.

    Each packet is a 4-byte common header followed by ``4 * length`` bytes::

        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |V=2|P|   RC    |      PT       |             length            |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                 body ... [padding ... | count]                |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    Padding is honoured in whichever packet sets the P bit. Any broken packet raises
    MalformedPacket; SRTCP is not plaintext after its first 8 bytes (use parse_header).
    """
    if not data:
        raise MalformedPacket("RTCP compound packet is empty")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < COMMON_HEADER_LENGTH:
            raise MalformedPacket(f"RTCP header truncated at byte {offset}")
        first, packet_type, length_words = _COMMON.unpack_from(data, offset)
        version = first >> 6
        if version != RTCP_VERSION:
            raise MalformedPacket(f"RTCP version is {version}, not 2, at byte {offset}")
        end = offset + 4 * (length_words + 1)
        if end > len(data):
            raise MalformedPacket(
                f"RTCP length {length_words} (packet type {packet_type}) runs past the "
                f"{len(data)}-byte datagram at byte {offset}"
            )
        body = data[offset + COMMON_HEADER_LENGTH : end]
        if first & 0x20:
            padding_count = body[-1] if body else 0
            if padding_count == 0 or padding_count > len(body):
                raise MalformedPacket(
                    f"RTCP padding count {padding_count} does not fit packet type {packet_type}"
                )
            body = body[:-padding_count]
        packets.append(_parse_body(packet_type, first & 0x1F, bytes(body)))
        offset = end
    return packets


def _parse_body(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    """RFC 3550 / RFC 4585: dispatch one packet's body on its packet type."""
    if packet_type == SENDER_REPORT:
        return _parse_sender_report(count, body)
    if packet_type == RECEIVER_REPORT:
        return _parse_receiver_report(count, body)
    if packet_type == SOURCE_DESCRIPTION:
        return _parse_source_description(count, body)
    if packet_type == GOODBYE:
        return _parse_goodbye(count, body)
    if packet_type == APPLICATION_DEFINED:
        return _parse_application_defined(count, body)
    if packet_type in (RTP_FEEDBACK, PAYLOAD_FEEDBACK):
        return _parse_feedback(packet_type, count, body)
    return UnknownRtcp(packet_type=packet_type, count=count, body=body)


def _parse_report_blocks(
    count: int, data: bytes, offset: int, what: str
) -> tuple[ReportBlock, ...]:
    """RFC 3550 section 6.4.1: ``count`` consecutive 24-byte report blocks."""
    if len(data) < offset + REPORT_BLOCK_LENGTH * count:
        raise MalformedPacket(f"RTCP {what} report blocks truncated: {count} announced")
    blocks = []
    for index in range(count):
        ssrc, fraction, lost, highest, jitter, last_sr, delay = _REPORT_BLOCK.unpack_from(
            data, offset + REPORT_BLOCK_LENGTH * index
        )
        blocks.append(
            ReportBlock(
                ssrc=ssrc,
                fraction_lost=fraction,
                packets_lost=int.from_bytes(lost, "big", signed=True),
                highest_sequence=highest,
                jitter=jitter,
                last_sr=last_sr,
                delay_since_last_sr=delay,
            )
        )
    return tuple(blocks)


def _parse_sender_report(count: int, body: bytes) -> SenderReport:
    """RFC 3550 section 6.4.1: SSRC, sender info, report blocks, profile extension."""
    if len(body) < 4 + SENDER_INFO_LENGTH:
        raise MalformedPacket(f"RTCP sender report sender info truncated: {len(body)} bytes")
    (ssrc,) = struct.unpack_from("!I", body)
    ntp, rtp_timestamp, packets, octets = _SENDER_INFO.unpack_from(body, 4)
    start = 4 + SENDER_INFO_LENGTH
    reports = _parse_report_blocks(count, body, start, "sender report")
    return SenderReport(
        ssrc=ssrc,
        ntp_timestamp=ntp,
        rtp_timestamp=rtp_timestamp,
        packet_count=packets,
        octet_count=octets,
        reports=reports,
        profile_extension=body[start + REPORT_BLOCK_LENGTH * count :],
    )


def _parse_receiver_report(count: int, body: bytes) -> ReceiverReport:
    """RFC 3550 section 6.4.2: SSRC, report blocks, profile extension."""
    if len(body) < 4:
        raise MalformedPacket("RTCP receiver report SSRC truncated")
    (ssrc,) = struct.unpack_from("!I", body)
    reports = _parse_report_blocks(count, body, 4, "receiver report")
    return ReceiverReport(
        ssrc=ssrc, reports=reports, profile_extension=body[4 + REPORT_BLOCK_LENGTH * count :]
    )


def _parse_source_description(count: int, body: bytes) -> SourceDescription:
    """RFC 3550 section 6.5: ``count`` chunks, each SSRC + items + null octets to a word."""
    chunks = []
    offset = 0
    for _ in range(count):
        if len(body) < offset + 4:
            raise MalformedPacket(f"RTCP SDES chunk SSRC truncated at byte {offset}")
        (ssrc,) = struct.unpack_from("!I", body, offset)
        offset += 4
        items = []
        while True:
            if offset >= len(body):
                raise MalformedPacket(f"RTCP SDES chunk 0x{ssrc:08x} has no end item")
            item_type = body[offset]
            if item_type == SDES_END:
                offset += 1
                offset += -offset % 4
                break
            if offset + 2 > len(body):
                raise MalformedPacket(f"RTCP SDES item {item_type} length truncated")
            length = body[offset + 1]
            if offset + 2 + length > len(body):
                raise MalformedPacket(f"RTCP SDES item {item_type} value truncated")
            items.append(SdesItem(item_type, body[offset + 2 : offset + 2 + length]))
            offset += 2 + length
        chunks.append(SdesChunk(ssrc=ssrc, items=tuple(items)))
    return SourceDescription(chunks=tuple(chunks))


def _parse_goodbye(count: int, body: bytes) -> Goodbye:
    """RFC 3550 section 6.6: ``count`` SSRCs, then an optional length-prefixed reason."""
    end = 4 * count
    if len(body) < end:
        raise MalformedPacket(f"RTCP BYE SSRC list truncated: {count} announced")
    ssrcs = struct.unpack_from(f"!{count}I", body)
    reason: bytes | None = None
    if len(body) > end:
        length = body[end]
        if end + 1 + length > len(body):
            raise MalformedPacket(f"RTCP BYE reason length {length} runs past the packet")
        reason = body[end + 1 : end + 1 + length]
    return Goodbye(ssrcs=ssrcs, reason=reason)


def _parse_application_defined(subtype: int, body: bytes) -> ApplicationDefined:
    """RFC 3550 section 6.7: SSRC, 4-character name, application data."""
    if len(body) < 8:
        raise MalformedPacket("RTCP APP SSRC/name truncated")
    (ssrc,) = struct.unpack_from("!I", body)
    return ApplicationDefined(
        subtype=subtype, ssrc=ssrc, name=body[4:8].decode("latin-1"), data=body[8:]
    )


def _parse_feedback(packet_type: int, fmt: int, body: bytes) -> RtpFeedback | PayloadFeedback:
    """RFC 4585 section 6.1: sender SSRC, media SSRC, feedback control information."""
    if len(body) < 8:
        raise MalformedPacket(f"RTCP feedback (packet type {packet_type}) SSRCs truncated")
    sender_ssrc, media_ssrc = _TWO_SSRCS.unpack_from(body)
    kind = RtpFeedback if packet_type == RTP_FEEDBACK else PayloadFeedback
    return kind(fmt=fmt, sender_ssrc=sender_ssrc, media_ssrc=media_ssrc, fci=body[8:])
