"""Frames to datagrams: link, network and transport layers, with IP and TCP reassembly.

:func:`decode_link` finds the network header behind a link-layer header (pure, so the bulk path
can mirror it). :class:`IPv4Packet`, :class:`IPv6Packet`, :class:`UdpPacket` and
:class:`TcpSegment` are pure parsers. :class:`Unwrapper` puts them together and keeps the state
that real captures need: IPv4/IPv6 fragments are reassembled, and TCP connections are put back
in order and cut into RFC 4571 frames (the 2-byte length prefix of RTP, RTCP, STUN and DTLS over
ICE-TCP). Everything it skips it counts, per layer, in :attr:`Unwrapper.counters`.
"""

from __future__ import annotations

import collections
import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from decoders.errors import MalformedPacket
from decoders.wire.capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NAMES,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_LEGACY,
    LINKTYPE_RAW_OPENBSD,
    Frame,
)
from decoders.wire.framing import (
    Framing,
    StreamFramer,
    detect,
    new_framer,
    rfc4571_payload,
    rfc7983_first_frame,
)

ETHERTYPE_IPV4: Final = 0x0800
ETHERTYPE_IPV6: Final = 0x86DD
VLAN_TPIDS: Final = frozenset({0x8100, 0x88A8, 0x9100})
"""Tag protocol identifiers of 802.1Q, 802.1ad (QinQ) and the older QinQ value."""

AF_INET: Final = 2
AF_INET6_VALUES: Final = frozenset({24, 28, 30})
"""BSD loopback address families for IPv6: NetBSD/OpenBSD, FreeBSD, Darwin."""

IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17
IPV6_HOP_BY_HOP: Final = 0
IPV6_ROUTING: Final = 43
IPV6_FRAGMENT: Final = 44
IPV6_AUTHENTICATION: Final = 51
IPV6_DESTINATION_OPTIONS: Final = 60

_IPV6_SKIPPED: Final = frozenset(
    {IPV6_HOP_BY_HOP, IPV6_ROUTING, IPV6_DESTINATION_OPTIONS, IPV6_AUTHENTICATION}
)
_RAW_LINKS: Final = frozenset({LINKTYPE_RAW, LINKTYPE_RAW_LEGACY, LINKTYPE_RAW_OPENBSD})
_SEQUENCE_MODULUS: Final = 1 << 32


# -- link layer ------------------------------------------------------------------------------
LINK_HEADER_MINIMUM: Final[dict[int, int]] = {
    LINKTYPE_ETHERNET: 14,
    LINKTYPE_LINUX_SLL: 16,
    LINKTYPE_LINUX_SLL2: 20,
    LINKTYPE_RAW: 1,
    LINKTYPE_RAW_LEGACY: 1,
    LINKTYPE_RAW_OPENBSD: 1,
    LINKTYPE_IPV4: 0,
    LINKTYPE_IPV6: 0,
    LINKTYPE_NULL: 4,
    LINKTYPE_LOOP: 4,
}
"""The link types :func:`decode_link` knows, and the fewest bytes each link header takes: a
shorter frame is ``malformed.<link name>``; a link type not listed is ``link.unsupported``.
(The bulk path counts both classes from this table without decoding the frames one by one.)"""


def decode_link(link_type: int, data: bytes) -> tuple[int, int] | None:
    """Find the network layer: ``(ethertype, offset of the network header)``.

    Returns ``None`` for a link type this module does not know, and raises
    :class:`MalformedPacket` when the link header is cut short. The ethertype is 0x0800 for
    IPv4 and 0x86DD for IPv6; other values (ARP, LLC lengths...) are returned as found, and 0
    means "not IP" where the link type has no ethertype (raw, BSD loopback).

    Ethernet (LINKTYPE 1, IEEE 802.3), any number of VLAN tags (802.1Q/802.1ad)::

        | destination(6) | source(6) | [TPID(2) TCI(2)]... | ethertype(2) | network header

    Linux cooked v1 (113): ``packet_type(2) arphrd(2) address_length(2) address(8)
    protocol(2)``; v2 (276): ``protocol(2) reserved(2) if_index(4) arphrd(2) packet_type(1)
    address_length(1) address(8)``; VLAN tags re-inserted by libpcap may follow either.
    Raw IP (101, and 12/14 of old BSD files): the IP version nibble; 228/229: IPv4/IPv6.
    BSD loopback NULL (0, host byte order) and LOOP (108, network byte order): a 4-byte
    address family, 2 for IPv4 and 24/28/30 for IPv6; either byte order is accepted for both.
    """
    if link_type == LINKTYPE_ETHERNET:
        if len(data) < LINK_HEADER_MINIMUM[LINKTYPE_ETHERNET]:
            raise MalformedPacket(f"ethernet header truncated ({len(data)} of 14 bytes)")
        return _skip_vlan_tags("ethernet", data, (data[12] << 8) | data[13], 14)
    if link_type == LINKTYPE_LINUX_SLL:
        if len(data) < LINK_HEADER_MINIMUM[LINKTYPE_LINUX_SLL]:
            raise MalformedPacket(f"sll header truncated ({len(data)} of 16 bytes)")
        return _skip_vlan_tags("sll", data, (data[14] << 8) | data[15], 16)
    if link_type == LINKTYPE_LINUX_SLL2:
        if len(data) < LINK_HEADER_MINIMUM[LINKTYPE_LINUX_SLL2]:
            raise MalformedPacket(f"sll2 header truncated ({len(data)} of 20 bytes)")
        return _skip_vlan_tags("sll2", data, (data[0] << 8) | data[1], 20)
    if link_type in _RAW_LINKS:
        if not data:
            raise MalformedPacket("raw ip packet is empty")
        version = data[0] >> 4
        return (ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6 if version == 6 else 0), 0
    if link_type == LINKTYPE_IPV4:
        return ETHERTYPE_IPV4, 0
    if link_type == LINKTYPE_IPV6:
        return ETHERTYPE_IPV6, 0
    if link_type in (LINKTYPE_NULL, LINKTYPE_LOOP):
        name = LINKTYPE_NAMES[link_type]
        if len(data) < LINK_HEADER_MINIMUM[link_type]:
            raise MalformedPacket(f"{name} header truncated ({len(data)} of 4 bytes)")
        return _address_family(data[:4], big_endian_first=link_type == LINKTYPE_LOOP), 4
    return None


def _skip_vlan_tags(name: str, data: bytes, ethertype: int, offset: int) -> tuple[int, int]:
    """IEEE 802.1Q: each tag is TPID(2) TCI(2), and the real ethertype follows the last."""
    while ethertype in VLAN_TPIDS:
        if len(data) < offset + 4:
            raise MalformedPacket(f"{name} vlan tag truncated at byte {offset}")
        ethertype = (data[offset + 2] << 8) | data[offset + 3]
        offset += 4
    return ethertype, offset


def _address_family(word: bytes, *, big_endian_first: bool) -> int:
    """BSD loopback header: the AF_ value, in the writer's byte order (tcpdump.org linktypes)."""
    orders: tuple[Literal["big", "little"], ...] = (
        ("big", "little") if big_endian_first else ("little", "big")
    )
    for order in orders:
        family = int.from_bytes(word, order)
        if family == AF_INET:
            return ETHERTYPE_IPV4
        if family in AF_INET6_VALUES:
            return ETHERTYPE_IPV6
    return 0


# -- network layer -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def format_address(packed: bytes) -> str:
    """4 or 16 bytes to text as tshark prints it (RFC 5952 compressed form for IPv6)."""
    return str(ipaddress.ip_address(packed))


@dataclass(frozen=True, slots=True)
class IPv4Packet:
    """An IPv4 packet (RFC 791), header fields decoded; ``payload`` ends at the total length."""

    header_length: int
    differentiated_services: int
    total_length: int
    identification: int
    dont_fragment: bool
    more_fragments: bool
    fragment_offset: int
    """In bytes (the header field times 8)."""
    time_to_live: int
    protocol: int
    header_checksum: int
    source: str
    destination: str
    options: bytes
    payload: bytes

    @property
    def is_fragment(self) -> bool:
        return self.more_fragments or self.fragment_offset != 0

    @classmethod
    def parse(cls, data: bytes) -> IPv4Packet:
        """Parse an IPv4 header and cut the payload at its total length (link padding dropped).

        ::

             0                   1                   2                   3
             0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |Version|  IHL  |Type of Service|          Total Length         |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |         Identification        |Flags|      Fragment Offset    |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |  Time to Live |    Protocol   |         Header Checksum       |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |                       Source Address                          |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |                    Destination Address                        |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |                    Options                    |    Padding    |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

        A total length of 0 is taken as "the rest of the frame", as Wireshark does for packets
        captured before TCP segmentation offload filled it in. The checksum is not verified
        (offload leaves it unset in captures taken on the sender).
        """
        if len(data) < 20:
            raise MalformedPacket(f"ipv4 header truncated ({len(data)} of 20 bytes)")
        version, header_length = data[0] >> 4, (data[0] & 0x0F) * 4
        if version != 4:
            raise MalformedPacket(f"ipv4 version field is {version}")
        if header_length < 20:
            raise MalformedPacket(f"ipv4 header length {header_length} is below 20")
        if len(data) < header_length:
            raise MalformedPacket(f"ipv4 options truncated ({len(data)} of {header_length} bytes)")
        total_length = (data[2] << 8) | data[3]
        end = total_length or len(data)
        if end < header_length:
            raise MalformedPacket(
                f"ipv4 total length {total_length} is below its header length {header_length}"
            )
        if end > len(data):
            raise MalformedPacket(
                f"ipv4 total length {total_length} exceeds the {len(data)} bytes captured"
            )
        flags_offset = (data[6] << 8) | data[7]
        return cls(
            header_length=header_length,
            differentiated_services=data[1],
            total_length=total_length,
            identification=(data[4] << 8) | data[5],
            dont_fragment=bool(flags_offset & 0x4000),
            more_fragments=bool(flags_offset & 0x2000),
            fragment_offset=(flags_offset & 0x1FFF) * 8,
            time_to_live=data[8],
            protocol=data[9],
            header_checksum=(data[10] << 8) | data[11],
            source=format_address(data[12:16]),
            destination=format_address(data[16:20]),
            options=data[20:header_length],
            payload=data[header_length:end],
        )


@dataclass(frozen=True, slots=True)
class IPv6Fragment:
    """The IPv6 Fragment extension header (RFC 8200 section 4.5)."""

    offset: int
    """In bytes (the header field times 8)."""
    more_fragments: bool
    identification: int


@dataclass(frozen=True, slots=True)
class IPv6Packet:
    """An IPv6 packet (RFC 8200) with its extension headers walked.

    ``protocol`` is the Next Header value where the walk stopped: the upper layer (UDP, TCP,
    ICMPv6...), ESP (50), No Next Header (59), or, when ``fragment`` is set, the header that
    starts the fragmentable part; ``payload`` is what follows.
    """

    traffic_class: int
    flow_label: int
    payload_length: int
    next_header: int
    hop_limit: int
    source: str
    destination: str
    extension_headers: tuple[int, ...]
    protocol: int
    fragment: IPv6Fragment | None
    payload: bytes

    @classmethod
    def parse(cls, data: bytes) -> IPv6Packet:
        """Parse the fixed header, then hop-by-hop, routing, destination options, AH, fragment.

        ::

             0                   1                   2                   3
             0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |Version| Traffic Class |           Flow Label                  |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |         Payload Length        |  Next Header  |   Hop Limit   |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |                  Source Address (128 bits)                    |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |               Destination Address (128 bits)                  |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

        Fragment header (8 bytes)::

            |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
            |                         Identification                        |

        A payload length of 0 (a jumbogram, or a capture taken before segmentation offload)
        is taken as "the rest of the frame".
        """
        if len(data) < 40:
            raise MalformedPacket(f"ipv6 header truncated ({len(data)} of 40 bytes)")
        version = data[0] >> 4
        if version != 6:
            raise MalformedPacket(f"ipv6 version field is {version}")
        payload_length = (data[4] << 8) | data[5]
        end = 40 + payload_length if payload_length else len(data)
        if end > len(data):
            raise MalformedPacket(
                f"ipv6 payload length {payload_length} exceeds the {len(data) - 40} bytes captured"
            )
        next_header = data[6]
        protocol, offset, headers = walk_ipv6_extensions(next_header, data, 40, end)
        fragment = None
        if protocol == IPV6_FRAGMENT:
            if end - offset < 8:
                raise MalformedPacket("ipv6 fragment header truncated")
            field = (data[offset + 2] << 8) | data[offset + 3]
            fragment = IPv6Fragment(
                offset=field & 0xFFF8,
                more_fragments=bool(field & 1),
                identification=int.from_bytes(data[offset + 4 : offset + 8], "big"),
            )
            headers += (IPV6_FRAGMENT,)
            protocol = data[offset]
            offset += 8
        return cls(
            traffic_class=((data[0] & 0x0F) << 4) | (data[1] >> 4),
            flow_label=((data[1] & 0x0F) << 16) | (data[2] << 8) | data[3],
            payload_length=payload_length,
            next_header=next_header,
            hop_limit=data[7],
            source=format_address(data[8:24]),
            destination=format_address(data[24:40]),
            extension_headers=headers,
            protocol=protocol,
            fragment=fragment,
            payload=data[offset:end],
        )


def walk_ipv6_extensions(
    next_header: int, data: bytes, offset: int, end: int
) -> tuple[int, int, tuple[int, ...]]:
    """Skip IPv6 extension headers (RFC 8200 section 4; AH: RFC 4302 section 2.2).

    Returns ``(protocol, offset, headers skipped)``, stopping at the first header that is not
    hop-by-hop, routing, destination options or AH (so at a fragment header, ESP, No Next
    Header or the upper layer). Options headers are ``next(1) length(1)`` with the length in
    8-byte units after the first 8; AH counts 4-byte units after the first 8.
    """
    headers: list[int] = []
    while next_header in _IPV6_SKIPPED:
        if end - offset < 2:
            raise MalformedPacket(f"ipv6 extension header {next_header} truncated")
        if next_header == IPV6_AUTHENTICATION:
            length = (data[offset + 1] + 2) * 4
        else:
            length = (data[offset + 1] + 1) * 8
        if end - offset < length:
            raise MalformedPacket(
                f"ipv6 extension header {next_header} length {length} exceeds the packet"
            )
        headers.append(next_header)
        next_header = data[offset]
        offset += length
    return next_header, offset, tuple(headers)


# -- transport layer ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UdpPacket:
    """A UDP datagram (RFC 768); ``payload`` ends where the length field says."""

    source_port: int
    destination_port: int
    length: int
    checksum: int
    payload: bytes

    @classmethod
    def parse(cls, data: bytes) -> UdpPacket:
        """Parse a UDP header; bytes past the length field (padding) are ignored.

        ::

             0      7 8     15 16    23 24    31
            +--------+--------+--------+--------+
            |     Source      |   Destination   |
            |      Port       |      Port       |
            +--------+--------+--------+--------+
            |     Length      |    Checksum     |
            +--------+--------+--------+--------+
            |          data octets ...
        """
        if len(data) < 8:
            raise MalformedPacket(f"udp header truncated ({len(data)} of 8 bytes)")
        length = (data[4] << 8) | data[5]
        if length < 8:
            raise MalformedPacket(f"udp length {length} is below the 8-byte header")
        if length > len(data):
            raise MalformedPacket(f"udp length {length} exceeds the {len(data)} bytes present")
        return cls(
            source_port=(data[0] << 8) | data[1],
            destination_port=(data[2] << 8) | data[3],
            length=length,
            checksum=(data[6] << 8) | data[7],
            payload=data[8:length],
        )


TCP_FIN: Final = 0x01
TCP_SYN: Final = 0x02
TCP_RST: Final = 0x04
TCP_PSH: Final = 0x08
TCP_ACK: Final = 0x10


@dataclass(frozen=True, slots=True)
class TcpSegment:
    """A TCP segment (RFC 9293); ``flags`` holds the low 8 flag bits (CWR..FIN)."""

    source_port: int
    destination_port: int
    sequence_number: int
    acknowledgment_number: int
    header_length: int
    flags: int
    window: int
    checksum: int
    urgent_pointer: int
    options: bytes
    payload: bytes

    @property
    def syn(self) -> bool:
        return bool(self.flags & TCP_SYN)

    @property
    def fin(self) -> bool:
        return bool(self.flags & TCP_FIN)

    @property
    def rst(self) -> bool:
        return bool(self.flags & TCP_RST)

    @classmethod
    def parse(cls, data: bytes) -> TcpSegment:
        """Parse a TCP header and its options; the payload is the rest of the IP payload.

        ::

             0                   1                   2                   3
             0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |          Source Port          |       Destination Port        |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |                        Sequence Number                        |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |                    Acknowledgment Number                      |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |  Data |       |C|E|U|A|P|R|S|F|                               |
            | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
            |       |       |R|E|G|K|H|T|N|N|                               |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |           Checksum            |         Urgent Pointer        |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
            |                           [Options]                           |
            +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        """
        if len(data) < 20:
            raise MalformedPacket(f"tcp header truncated ({len(data)} of 20 bytes)")
        header_length = (data[12] >> 4) * 4
        if header_length < 20:
            raise MalformedPacket(f"tcp data offset {header_length} is below 20")
        if header_length > len(data):
            raise MalformedPacket(f"tcp options truncated ({len(data)} of {header_length} bytes)")
        return cls(
            source_port=(data[0] << 8) | data[1],
            destination_port=(data[2] << 8) | data[3],
            sequence_number=int.from_bytes(data[4:8], "big"),
            acknowledgment_number=int.from_bytes(data[8:12], "big"),
            header_length=header_length,
            flags=data[13],
            window=(data[14] << 8) | data[15],
            checksum=(data[16] << 8) | data[17],
            urgent_pointer=(data[18] << 8) | data[19],
            options=data[20:header_length],
            payload=data[header_length:],
        )


# -- the stateful part -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Datagram:
    """One transport payload: a UDP datagram, or one message of a framed TCP stream.

    From TCP: the packet of an RFC 4571 frame (ICE-TCP), a whole TURN message (STUN or
    ChannelData with its padding, unwrapped later exactly as over UDP), or, with
    ``tunnel="tls"``, a whole TLS record (header included; its body is encrypted).
    """

    frame: int
    """Number of the frame that completed it (the last fragment or segment)."""
    timestamp_ns: int
    src: str
    src_port: int
    dst: str
    dst_port: int
    transport: Literal["udp", "tcp"]
    payload: bytes
    tunnel: str | None = None


_FragmentKey = tuple[str, str, str, int, int]


class _PartialDatagram:
    __slots__ = ("first_frame", "first_timestamp_ns", "pieces", "protocol", "size", "total")

    def __init__(self, frame: int, timestamp_ns: int) -> None:
        self.first_frame = frame
        self.first_timestamp_ns = timestamp_ns
        self.pieces: dict[int, bytes] = {}
        self.total: int | None = None
        self.protocol = -1
        self.size = 0

    def assemble(self) -> bytes | None:
        """The whole payload once every byte up to the last fragment's end has arrived."""
        if self.total is None or self.protocol < 0:
            return None
        covered = 0
        for offset in sorted(self.pieces):
            if offset > covered:
                return None
            covered = max(covered, offset + len(self.pieces[offset]))
        if covered < self.total:
            return None
        whole = bytearray(self.total)
        for offset in sorted(self.pieces, reverse=True):  # the earliest offset wins overlaps
            whole[offset : offset + len(self.pieces[offset])] = self.pieces[offset]
        return bytes(whole[: self.total])


class _Reassembly:
    """IP fragment reassembly (RFC 791 section 3.2, RFC 8200 section 4.5), bounded.

    A datagram still incomplete after ``timeout_frames`` frames or ``timeout_ns`` of capture
    time, or pushed out by ``max_pending`` newer ones, is dropped and counted incomplete.
    """

    def __init__(
        self,
        family: str,
        counters: collections.Counter[str],
        *,
        timeout_ns: int,
        timeout_frames: int,
        max_pending: int,
    ) -> None:
        self.family = family
        self.counters = counters
        self.timeout_ns = timeout_ns
        self.timeout_frames = timeout_frames
        self.max_pending = max_pending
        self.pending: dict[_FragmentKey, _PartialDatagram] = {}

    def add(
        self,
        key: _FragmentKey,
        frame: Frame,
        offset: int,
        more: bool,
        protocol: int,
        data: bytes,
    ) -> tuple[int, bytes] | None:
        """Add one fragment; returns ``(protocol, payload)`` when it completes a datagram."""
        if offset + len(data) > 65535:
            raise MalformedPacket(f"{self.family} fragment ends past 65535 bytes")
        partial = self.pending.get(key)
        if partial is None:
            while len(self.pending) >= self.max_pending:
                self._drop(next(iter(self.pending)))
            partial = self.pending[key] = _PartialDatagram(frame.number, frame.timestamp_ns)
        if offset not in partial.pieces or len(data) > len(partial.pieces[offset]):
            partial.size += len(data) - len(partial.pieces.get(offset, b""))
            partial.pieces[offset] = data
        if partial.size > 2 * 65535:  # overlapping copies beyond any real datagram
            self._drop(key)
            raise MalformedPacket(f"{self.family} fragments overlap beyond 65535 bytes")
        if offset == 0:
            partial.protocol = protocol
        if not more:
            partial.total = offset + len(data)
        whole = partial.assemble()
        if whole is None:
            return None
        del self.pending[key]
        self.counters[f"{self.family}.fragment.reassembled"] += 1
        return partial.protocol, whole

    def expire(self, frame: Frame) -> None:
        while self.pending:
            key = next(iter(self.pending))
            oldest = self.pending[key]
            if (
                frame.number - oldest.first_frame <= self.timeout_frames
                and frame.timestamp_ns - oldest.first_timestamp_ns <= self.timeout_ns
            ):
                return
            self._drop(key)

    def flush(self) -> None:
        while self.pending:
            self._drop(next(iter(self.pending)))

    def _drop(self, key: _FragmentKey) -> None:
        del self.pending[key]
        self.counters[f"{self.family}.fragment.incomplete"] += 1


_UNKNOWN: Final = 0
_FRAMED: Final = 1
_REJECTED: Final = 2
_CLOSED: Final = 3

_TcpKey = tuple[str, int, str, int]


class _TcpDirection:
    """One direction of one TCP connection: in-order bytes, then the framer that cuts them."""

    __slots__ = (
        "buffer",
        "detect_from",
        "framer",
        "framing",
        "key",
        "marks",
        "next_sequence",
        "pending",
        "pending_bytes",
        "status",
        "stream_start",
    )

    def __init__(self, key: _TcpKey) -> None:
        self.key = key
        self.next_sequence: int | None = None
        self.buffer = bytearray()
        self.pending: dict[int, bytes] = {}
        self.pending_bytes = 0
        self.status = _UNKNOWN
        self.stream_start = False
        self.detect_from = 0
        self.framing: Framing | None = None
        self.framer: StreamFramer | None = None
        self.marks: list[tuple[int, Frame]] = []
        """Before the framing is known: where each frame's bytes end in ``buffer``."""


class _TcpStreams:
    """Per-direction TCP reassembly (RFC 9293 section 3.10.7.4), cut into messages by framers.

    Each direction is framed on its own (:func:`decoders.wire.framing.detect` on its first
    bytes): RFC 4571 frames of ICE-TCP (RFC 6544), TURN over TCP (STUN and ChannelData, RFC
    8656 section 12.5), TLS records, or nothing ("tcp.unrecognised"). A capture that began
    mid-connection is framed only from where a chain of valid headers begins, so a TLS or HTTP
    connection is never read as RFC 4571 media. This is the only TCP reassembler: the bulk
    decoders (C and numpy) hand every TCP frame to this scalar path, so both engines agree on
    TCP by construction.

    Segments before the expected sequence number are trimmed (retransmissions), segments
    after it wait in a bounded buffer; when that overflows ("tcp.gap") the stream skips to the
    earliest waiting segment and the framer resynchronises. Per framing, counters count the
    bytes skipped to find a message start ("tcp.turn.skipped"), lost sync ("tcp.turn.resync")
    and a last message cut short ("tcp.turn.partial").
    """

    def __init__(
        self,
        counters: collections.Counter[str],
        emit: Callable[[Frame, _TcpKey, bytes, str | None], None],
        *,
        max_streams: int,
        max_pending_bytes: int,
    ) -> None:
        self.counters = counters
        self.emit = emit
        self.max_streams = max_streams
        self.max_pending_bytes = max_pending_bytes
        self.streams: collections.OrderedDict[_TcpKey, _TcpDirection] = collections.OrderedDict()

    def segment(self, frame: Frame, key: _TcpKey, tcp: TcpSegment) -> None:
        stream = self.streams.get(key)
        if stream is None or (tcp.syn and not _repeated_syn(stream, tcp.sequence_number)):
            if stream is not None:
                self._finish(stream)
            stream = self.streams[key] = _TcpDirection(key)
            while len(self.streams) > self.max_streams:
                _, evicted = self.streams.popitem(last=False)
                self.counters["tcp.stream.evicted"] += 1
                self._finish(evicted)
        else:
            self.streams.move_to_end(key)
        sequence = tcp.sequence_number
        if tcp.syn:  # the SYN takes one sequence number; data may follow it (TCP Fast Open)
            sequence = (sequence + 1) % _SEQUENCE_MODULUS
            if stream.next_sequence is None:
                stream.next_sequence = sequence
                stream.stream_start = True
        if stream.status in (_REJECTED, _CLOSED):
            return
        if tcp.payload:
            if stream.next_sequence is None:
                stream.next_sequence = sequence  # the capture started mid-connection
            self._add(frame, key, stream, sequence, tcp.payload)
        if tcp.rst and stream.status in (_UNKNOWN, _FRAMED):
            self._finish(stream)
        elif tcp.fin and stream.status in (_UNKNOWN, _FRAMED) and not stream.pending:
            fin_sequence = (sequence + len(tcp.payload)) % _SEQUENCE_MODULUS
            if stream.next_sequence in (None, fin_sequence):
                self._finish(stream)

    def _add(
        self, frame: Frame, key: _TcpKey, stream: _TcpDirection, sequence: int, payload: bytes
    ) -> None:
        assert stream.next_sequence is not None
        delta = _sequence_delta(sequence, stream.next_sequence)
        if delta + len(payload) <= 0:
            self.counters["tcp.retransmission"] += 1
            return
        if delta > 0:
            if sequence not in stream.pending or len(payload) > len(stream.pending[sequence]):
                stream.pending_bytes += len(payload) - len(stream.pending.get(sequence, b""))
                stream.pending[sequence] = payload
            if stream.pending_bytes > self.max_pending_bytes:
                self._skip_gap(stream)
                self._frames(frame, key, stream)
            return
        stream.buffer += payload[-delta:]
        stream.next_sequence = (sequence + len(payload)) % _SEQUENCE_MODULUS
        self._drain_pending(stream)
        self._frames(frame, key, stream)

    def _skip_gap(self, stream: _TcpDirection) -> None:
        """A hole never filled: drop what cannot complete and go on at the next bytes held."""
        assert stream.next_sequence is not None
        self.counters["tcp.gap"] += 1
        expected = stream.next_sequence
        stream.next_sequence = min(stream.pending, key=lambda s: _sequence_delta(s, expected))
        if stream.framer is not None:
            self._count_framer_end(stream)
            stream.framer.synced = False
        else:
            stream.buffer.clear()
            stream.marks.clear()
            stream.stream_start = False
            stream.detect_from = 0
        self._drain_pending(stream)

    def _drain_pending(self, stream: _TcpDirection) -> None:
        """Move waiting segments that now touch the in-order edge into the buffer."""
        progress = True
        while progress and stream.pending:
            progress = False
            assert stream.next_sequence is not None
            for sequence in list(stream.pending):
                payload = stream.pending[sequence]
                delta = _sequence_delta(sequence, stream.next_sequence)
                if delta > 0:
                    continue
                del stream.pending[sequence]
                stream.pending_bytes -= len(payload)
                if delta + len(payload) > 0:
                    stream.buffer += payload[-delta:]
                    stream.next_sequence = (sequence + len(payload)) % _SEQUENCE_MODULUS
                    progress = True

    def _frames(self, frame: Frame, key: _TcpKey, stream: _TcpDirection) -> None:
        if stream.status == _UNKNOWN:
            stream.marks.append((len(stream.buffer), frame))
            offset = self._detect(stream)
            if offset is not None:
                self._feed_marked(stream, offset)
            return
        data, stream.buffer = bytes(stream.buffer), bytearray()
        self._feed_framer(frame, key, stream, data)

    def _feed_marked(self, stream: _TcpDirection, offset: int) -> None:
        """The bytes held while detecting, each message with the frame that completed it."""
        buffer, marks = stream.buffer, stream.marks
        stream.buffer, stream.marks = bytearray(), []
        start = offset
        for end, marked in marks:
            if end > start:
                self._feed_framer(marked, stream.key, stream, bytes(buffer[start:end]))
                start = end

    def _feed_framer(self, frame: Frame, key: _TcpKey, stream: _TcpDirection, data: bytes) -> None:
        framer, framing = stream.framer, stream.framing
        assert framer is not None and framing is not None
        skipped, resyncs = framer.skipped_bytes, framer.resyncs
        messages = framer.feed(data)
        if framer.skipped_bytes != skipped:
            self.counters[f"tcp.{framing}.skipped"] += framer.skipped_bytes - skipped
        if framer.resyncs != resyncs:
            self.counters[f"tcp.{framing}.resync"] += framer.resyncs - resyncs
        for message in messages:
            if framing == "rfc4571":
                message = rfc4571_payload(message)
                if not message:
                    self.counters["tcp.rfc4571.empty"] += 1
                    continue
            self.emit(frame, key, message, "tls" if framing == "tls" else None)

    def _detect_at_end(self, stream: _TcpDirection) -> None:
        """The direction ends undecided: decide knowing no more bytes come, and frame it."""
        offset = self._detect(stream, final=True)
        if offset is not None:
            self._feed_marked(stream, offset)

    def _detect(self, stream: _TcpDirection, *, final: bool = False) -> int | None:
        """Decide the framing from the bytes so far: the offset of its first message, or None."""
        framing, offset = detect(
            bytes(stream.buffer),
            stream_start=stream.stream_start,
            start=0 if final else stream.detect_from,
            final=final,
        )
        if framing is None:
            stream.detect_from = offset
            return None
        if framing == "none":
            self.counters["tcp.unrecognised"] += 1
            stream.status = _REJECTED
            self._release(stream)
            return None
        if offset:
            self.counters[f"tcp.{framing}.skipped"] += offset
        stream.framing = framing
        stream.framer = new_framer(framing, synced=True)
        stream.status = _FRAMED
        return offset

    def _count_framer_end(self, stream: _TcpDirection) -> None:
        framer, framing = stream.framer, stream.framing
        assert framer is not None
        synced = framer.synced
        left = framer.flush()
        if left:
            self.counters[f"tcp.{framing}.partial" if synced else f"tcp.{framing}.skipped"] += (
                1 if synced else left
            )

    def _finish(self, stream: _TcpDirection) -> None:
        if stream.status == _UNKNOWN and stream.buffer and not stream.pending:
            self._detect_at_end(stream)
        if stream.status in (_UNKNOWN, _FRAMED):
            if stream.pending:
                self.counters["tcp.gap"] += 1  # what the framer holds is cut by the hole
            elif stream.framer is not None:
                self._count_framer_end(stream)
            elif stream.buffer:
                self.counters["tcp.unrecognised"] += 1
        stream.status = _CLOSED
        self._release(stream)

    @staticmethod
    def _release(stream: _TcpDirection) -> None:
        stream.buffer = bytearray()
        stream.pending.clear()
        stream.pending_bytes = 0
        stream.framer = None
        stream.marks = []

    def flush(self) -> None:
        for stream in self.streams.values():
            self._finish(stream)
        self.streams.clear()


def _repeated_syn(stream: _TcpDirection, sequence: int) -> bool:
    """A retransmitted SYN of the connection already tracked (not a new one on the same ports)."""
    if stream.status not in (_UNKNOWN, _FRAMED) or stream.next_sequence is None:
        return False
    return -(1 << 30) <= _sequence_delta(sequence + 1, stream.next_sequence) <= 0


def _sequence_delta(sequence: int, expected: int) -> int:
    """Signed distance between two 32-bit sequence numbers (RFC 9293 section 3.4, mod 2**32)."""
    delta = (sequence - expected) % _SEQUENCE_MODULUS
    return delta - _SEQUENCE_MODULUS if delta >= 1 << 31 else delta


class Unwrapper:
    """Frames in, datagrams out: link → IP (reassembled) → UDP, or TCP → framed messages.

    Feed frames in capture order with :meth:`feed`; call :meth:`flush` at the end of the
    capture. Memory is bounded by the limits given here, not by the capture's size. TLS
    records come out (``tunnel="tls"``) only with ``tls_records``: callers that classify
    payloads by their first byte never see encrypted bytes.
    """

    def __init__(
        self,
        *,
        fragment_timeout_ns: int = 30_000_000_000,
        fragment_timeout_frames: int = 10_000,
        max_fragmented_datagrams: int = 256,
        max_tcp_streams: int = 4096,
        max_tcp_pending_bytes: int = 256 * 1024,
        tls_records: bool = False,
    ) -> None:
        self.counters: collections.Counter[str] = collections.Counter()
        self.tls_records = tls_records
        limits = {
            "timeout_ns": fragment_timeout_ns,
            "timeout_frames": fragment_timeout_frames,
            "max_pending": max_fragmented_datagrams,
        }
        self._ipv4 = _Reassembly("ipv4", self.counters, **limits)
        self._ipv6 = _Reassembly("ipv6", self.counters, **limits)
        self._tcp = _TcpStreams(
            self.counters,
            self._emit_tcp,
            max_streams=max_tcp_streams,
            max_pending_bytes=max_tcp_pending_bytes,
        )
        self._out: list[Datagram] = []

    def feed(self, frame: Frame) -> list[Datagram]:
        """Decode one frame; returns the datagrams it completes (often one, maybe none)."""
        self._out = []
        if self._ipv4.pending:
            self._ipv4.expire(frame)
        if self._ipv6.pending:
            self._ipv6.expire(frame)
        try:
            link = decode_link(frame.link_type, frame.data)
        except MalformedPacket:
            self.counters[f"malformed.{LINKTYPE_NAMES[frame.link_type]}"] += 1
            return self._out
        if link is None:
            self.counters["link.unsupported"] += 1
            return self._out
        ethertype, offset = link
        data = frame.data[offset:] if offset else frame.data
        if ethertype == ETHERTYPE_IPV4:
            self._feed_ipv4(frame, data)
        elif ethertype == ETHERTYPE_IPV6:
            self._feed_ipv6(frame, data)
        else:
            self.counters["non-ip"] += 1
        return self._out

    def flush(self) -> list[Datagram]:
        """End of capture: count what was still incomplete; returns any last datagrams."""
        self._out = []
        self._ipv4.flush()
        self._ipv6.flush()
        self._tcp.flush()
        return self._out

    def _feed_ipv4(self, frame: Frame, data: bytes) -> None:
        try:
            packet = IPv4Packet.parse(data)
            protocol, payload = packet.protocol, packet.payload
            if packet.is_fragment:
                key = ("ipv4", packet.source, packet.destination, packet.identification, protocol)
                whole = self._ipv4.add(
                    key,
                    frame,
                    packet.fragment_offset,
                    packet.more_fragments,
                    protocol,
                    payload,
                )
                if whole is None:
                    return
                protocol, payload = whole
        except MalformedPacket:
            self.counters["malformed.ipv4"] += 1
            return
        self._transport(frame, protocol, packet.source, packet.destination, payload)

    def _feed_ipv6(self, frame: Frame, data: bytes) -> None:
        try:
            packet = IPv6Packet.parse(data)
            protocol, payload = packet.protocol, packet.payload
            fragment = packet.fragment
            if fragment is not None:
                if fragment.offset or fragment.more_fragments:
                    key = ("ipv6", packet.source, packet.destination, fragment.identification, 0)
                    whole = self._ipv6.add(
                        key, frame, fragment.offset, fragment.more_fragments, protocol, payload
                    )
                    if whole is None:
                        return
                    protocol, payload = whole
                protocol, offset, _ = walk_ipv6_extensions(protocol, payload, 0, len(payload))
                payload = payload[offset:]
        except MalformedPacket:
            self.counters["malformed.ipv6"] += 1
            return
        self._transport(frame, protocol, packet.source, packet.destination, payload)

    def _transport(self, frame: Frame, protocol: int, src: str, dst: str, data: bytes) -> None:
        if protocol == IPPROTO_UDP:
            try:
                udp = UdpPacket.parse(data)
            except MalformedPacket:
                self.counters["malformed.udp"] += 1
                return
            self._out.append(
                Datagram(
                    frame.number,
                    frame.timestamp_ns,
                    src,
                    udp.source_port,
                    dst,
                    udp.destination_port,
                    "udp",
                    udp.payload,
                )
            )
        elif protocol == IPPROTO_TCP:
            try:
                tcp = TcpSegment.parse(data)
            except MalformedPacket:
                self.counters["malformed.tcp"] += 1
                return
            self._tcp.segment(frame, (src, tcp.source_port, dst, tcp.destination_port), tcp)
        else:
            self.counters["non-udp"] += 1

    def _emit_tcp(self, frame: Frame, key: _TcpKey, payload: bytes, tunnel: str | None) -> None:
        if tunnel == "tls" and not self.tls_records:
            return
        src, src_port, dst, dst_port = key
        self._out.append(
            Datagram(
                frame.number,
                frame.timestamp_ns,
                src,
                src_port,
                dst,
                dst_port,
                "tcp",
                payload,
                tunnel,
            )
        )


__all__ = [
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "Datagram",
    "IPv4Packet",
    "IPv6Fragment",
    "IPv6Packet",
    "TcpSegment",
    "UdpPacket",
    "Unwrapper",
    "decode_link",
    "format_address",
    "rfc7983_first_frame",
    "walk_ipv6_extensions",
]
