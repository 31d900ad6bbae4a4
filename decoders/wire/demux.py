"""Which protocol a datagram on a WebRTC 5-tuple carries, and TURN unwrapping.

RFC 7983 section 7 sorts packets by their first byte; RFC 5761 section 4 tells RTCP from
RTP by the second byte; RFC 8656 wraps media in ChannelData or Send/Data indications.
The ranges are module constants so the bulk (numpy) path can reuse the same rule.
:func:`open_payload` is the one chain every scalar path runs a datagram through: TURN
wrapper off, classify what is inside, parse its header when asked::

                 +----------------+
                 |        [0..3] -+--> STUN
                 |      [16..19] -+--> ZRTP
    packet -->   |      [20..63] -+--> DTLS
                 |      [64..79] -+--> TURN ChannelData
                 |    [128..191] -+--> RTP/RTCP (second byte 192..223: RTCP)
                 +----------------+
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Container
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from decoders.errors import MalformedPacket
from decoders.wire import dtls, rtp, stun
from decoders.wire.dtls import DtlsRecord
from decoders.wire.rtp import RtpPacket
from decoders.wire.stun import StunMessage

if TYPE_CHECKING:
    from decoders.wire.rtcp import RtcpHeader

STUN_RANGE = range(0, 4)
ZRTP_RANGE = range(16, 20)
DTLS_RANGE = range(20, 64)
TURN_CHANNEL_RANGE = range(64, 80)
RTP_RTCP_RANGE = range(128, 192)
RTCP_PACKET_TYPES = range(192, 224)

STUN_MIN_LENGTH = 20
ZRTP_MIN_LENGTH = 16
DTLS_MIN_LENGTH = 13
TURN_CHANNEL_MIN_LENGTH = 4
RTP_MIN_LENGTH = 12
RTCP_MIN_LENGTH = 8

CHANNEL_NUMBERS = range(0x4000, 0x5000)
CHANNEL_DATA_HEADER_LENGTH = 4

_CHANNEL_HEADER = struct.Struct("!HH")


class PacketKind(enum.StrEnum):
    """What a datagram's first bytes say it is."""

    STUN = "stun"
    ZRTP = "zrtp"
    DTLS = "dtls"
    TURN_CHANNEL = "turn-channel"
    RTP = "rtp"
    RTCP = "rtcp"
    OTHER = "other"
    TLS = "tls"
    """A TLS record of a TCP connection (never from the first byte: only a framed TLS stream)."""


def classify(payload: bytes) -> PacketKind:
    """RFC 7983 section 7 + RFC 5761 section 4: the kind, OTHER when too short for it."""
    if not payload:
        return PacketKind.OTHER
    first = payload[0]
    size = len(payload)
    if first in STUN_RANGE:
        return PacketKind.STUN if size >= STUN_MIN_LENGTH else PacketKind.OTHER
    if first in ZRTP_RANGE:
        return PacketKind.ZRTP if size >= ZRTP_MIN_LENGTH else PacketKind.OTHER
    if first in DTLS_RANGE:
        return PacketKind.DTLS if size >= DTLS_MIN_LENGTH else PacketKind.OTHER
    if first in TURN_CHANNEL_RANGE:
        return PacketKind.TURN_CHANNEL if size >= TURN_CHANNEL_MIN_LENGTH else PacketKind.OTHER
    if first in RTP_RTCP_RANGE and size >= 2:
        if payload[1] in RTCP_PACKET_TYPES:
            return PacketKind.RTCP if size >= RTCP_MIN_LENGTH else PacketKind.OTHER
        return PacketKind.RTP if size >= RTP_MIN_LENGTH else PacketKind.OTHER
    return PacketKind.OTHER


@dataclass(frozen=True, slots=True)
class ChannelData:
    r"""A TURN ChannelData message (RFC 8656 section 12.4)::

         0                   1                   2                   3
         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |         Channel Number        |            Length             |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                       Application Data  (Length bytes)        |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    ``padding_length`` counts the bytes after the data (padding, mandatory over TCP).
    """

    channel_number: int
    data: bytes
    padding_length: int


def parse_channel_data(payload: bytes) -> ChannelData | None:
    """RFC 8656 section 12.4: None unless the first byte is 64-79; broken -> MalformedPacket.

    The data may be followed by padding (to a 32-bit boundary over TCP, optional over UDP);
    trailing bytes are not data and are reported as ``padding_length``.
    """
    if not payload or payload[0] not in TURN_CHANNEL_RANGE:
        return None
    if len(payload) < CHANNEL_DATA_HEADER_LENGTH:
        raise MalformedPacket(f"TURN ChannelData header truncated: {len(payload)} bytes")
    channel_number, length = _CHANNEL_HEADER.unpack_from(payload)
    end = CHANNEL_DATA_HEADER_LENGTH + length
    if end > len(payload):
        raise MalformedPacket(
            f"TURN ChannelData length {length} runs past the {len(payload)}-byte payload"
        )
    return ChannelData(
        channel_number=channel_number,
        data=bytes(payload[CHANNEL_DATA_HEADER_LENGTH:end]),
        padding_length=len(payload) - end,
    )


_SEND_INDICATION = 0x0016
_DATA_INDICATION = 0x0017


def unwrap_turn(payload: bytes) -> tuple[str, bytes] | None:
    """RFC 8656 sections 11 and 12: the datagram a TURN wrapper carries, and the wrapper.

    ``("turn-channel", data)`` for ChannelData, ``("turn-send", data)`` for a Send
    indication and ``("turn-data", data)`` for a Data indication (their DATA attribute).
    None when the payload is no TURN wrapper (other STUN messages included); MalformedPacket
    when it claims to be one and is broken, e.g. an indication without DATA.
    """
    channel = parse_channel_data(payload)
    if channel is not None:
        return "turn-channel", channel.data
    if not stun.looks_like_stun(payload):
        return None
    message_type = int.from_bytes(payload[:2], "big")
    if message_type not in (_SEND_INDICATION, _DATA_INDICATION):
        return None
    message = stun.parse(payload)
    label = "turn-send" if message_type == _SEND_INDICATION else "turn-data"
    if message is None or message.data is None:
        raise MalformedPacket(f"TURN {label[5:]} indication has no DATA attribute")
    return label, message.data


def turn_tcp_frame_length(stream: bytes) -> int | None:
    """RFC 8656 section 12.5 / RFC 8489 section 6.2.2: size of the next message in a TCP stream.

    On TCP to a TURN server, STUN messages (20-byte header + length) and ChannelData (4-byte
    header + length, padded to 4) follow each other unframed. Returns the bytes the message
    at the start of ``stream`` takes, or None when fewer than 4 bytes are there or the first
    byte starts neither (the stream is not TURN, or framing was lost).
    """
    if len(stream) < CHANNEL_DATA_HEADER_LENGTH:
        return None
    length = int.from_bytes(stream[2:4], "big")
    if stream[0] in STUN_RANGE:
        return stun.HEADER_LENGTH + length
    if stream[0] in TURN_CHANNEL_RANGE:
        return CHANNEL_DATA_HEADER_LENGTH + length + (-length % 4)
    return None


class Opened(NamedTuple):
    """One datagram opened: what is inside its TURN wrapper, its kind, its header when asked.

    ``payload`` is the datagram a TURN wrapper carries (``tunnel`` names the wrapper:
    ``turn-channel``, ``turn-send`` or ``turn-data``), else the datagram itself. A wrapper that
    claims to be TURN and is broken leaves ``payload`` as it came, classified as it is, and
    says why in ``turn_error``. The header fields (``rtp``, ``rtcp``, ``stun``, ``dtls``) are
    filled for the kinds the caller asked for; a header that is broken says why in ``error``.

    Immutable like the parsers' frozen dataclasses, but a NamedTuple: one is built per datagram
    on the scalar path, and a frozen dataclass of nine fields costs several times as much to
    build (each field set through ``object.__setattr__``).
    """

    payload: bytes
    kind: PacketKind
    tunnel: str | None = None
    turn_error: str | None = None
    rtp: RtpPacket | None = None
    rtcp: RtcpHeader | None = None
    stun: StunMessage | None = None
    dtls: tuple[DtlsRecord, ...] | None = None
    error: str | None = None


def open_payload(payload: bytes, *, parse: Container[PacketKind] = (), srtp: bool = True) -> Opened:
    """RFC 8656 unwrapping, RFC 7983 classification, then the header of the kinds in ``parse``.

    RTP is parsed as SRTP by default (``srtp``: the padding count is encrypted), RTCP down to
    its first header (:func:`decoders.wire.rtcp.parse_header`), DTLS into its records. Never
    raises on malformed input: the problems are in ``turn_error`` and ``error``.
    """
    tunnel: str | None = None
    turn_error: str | None = None
    # only a first byte of 0 (Send/Data indications) or 64-79 (ChannelData) can be TURN
    if payload and (payload[0] in STUN_RANGE or payload[0] in TURN_CHANNEL_RANGE):
        try:
            unwrapped = unwrap_turn(payload)
        except MalformedPacket as problem:
            turn_error = str(problem)
        else:
            if unwrapped is not None:
                tunnel, payload = unwrapped
    kind = classify(payload)
    if kind not in parse:
        return Opened(payload, kind, tunnel, turn_error)
    try:
        if kind is PacketKind.RTP:
            packet = rtp.RtpPacket.parse(payload, srtp=srtp)
            return Opened(payload, kind, tunnel, turn_error, rtp=packet)
        if kind is PacketKind.RTCP:
            from decoders.wire import rtcp  # only the scalar paths need it; keeps start-up short

            header = rtcp.parse_header(payload)
            return Opened(payload, kind, tunnel, turn_error, rtcp=header)
        if kind is PacketKind.STUN:
            return Opened(payload, kind, tunnel, turn_error, stun=stun.parse(payload))
        if kind is PacketKind.DTLS:
            records = tuple(dtls.parse_records(payload))
            return Opened(payload, kind, tunnel, turn_error, dtls=records)
    except MalformedPacket as problem:
        return Opened(payload, kind, tunnel, turn_error, error=str(problem))
    return Opened(payload, kind, tunnel, turn_error)
