"""Writing captures: pcap and pcapng writers, and builders of link-layer frames.

The writers are the inverse of :mod:`decoders.wire.capture`: the tests' and benchmarks'
synthetic capture generator (``tests/helpers/synthetic.py``), the tests and the Wireshark
companion files use them. :class:`PcapngWriter` can attach a comment
to a packet (``opt_comment``), which Wireshark shows and can filter on (``frame.comment``).

The builders make whole frames (link header, IPv4 or IPv6 by address family, UDP or TCP with
correct checksums), plus IP fragmentation and RFC 4571 framing for reassembly tests.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from typing import BinaryIO, Final, Literal

import numpy as np

from decoders.wire.capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_LEGACY,
    LINKTYPE_RAW_OPENBSD,
)
from decoders.wire.net import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_FRAGMENT,
    TCP_ACK,
    TCP_PSH,
)

ByteOrder = Literal["little", "big"]

_NS_PER_SECOND: Final = 1_000_000_000
_SHB: Final = 0x0A0D0D0A
_IDB: Final = 1
_EPB: Final = 6
_OPT_COMMENT: Final = 1
_SHB_USERAPPL: Final = 4
_IF_NAME: Final = 2
_IF_IPV4ADDR: Final = 4
_IF_IPV6ADDR: Final = 5
_IF_TSRESOL: Final = 9
_IF_TSOFFSET: Final = 14


def _prefix(byte_order: ByteOrder) -> str:
    if byte_order not in ("little", "big"):
        raise ValueError(f"byte_order must be 'little' or 'big', not {byte_order!r}")
    return "<" if byte_order == "little" else ">"


class PcapWriter:
    """Write a classic pcap file (draft-ietf-opsawg-pcap): one link type, µs or ns timestamps."""

    def __init__(
        self,
        fileobj: BinaryIO,
        link_type: int,
        *,
        nanosecond: bool = False,
        snaplen: int = 262144,
        byte_order: ByteOrder = "little",
    ) -> None:
        self._file = fileobj
        self._order = _prefix(byte_order)
        self.link_type = link_type
        self.nanosecond = nanosecond
        self.snaplen = snaplen
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        self._file.write(
            struct.pack(self._order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link_type)
        )

    def write(self, timestamp_ns: int, data: bytes, original_length: int | None = None) -> None:
        """Append one record; data beyond the snaplen is cut (the original length is kept).

        Microsecond files round the timestamp down to the microsecond.
        """
        seconds, fraction = divmod(timestamp_ns, _NS_PER_SECOND)
        if not 0 <= seconds < 1 << 32:
            raise ValueError(f"timestamp {timestamp_ns} ns does not fit a pcap record")
        if not self.nanosecond:
            fraction //= 1000
        captured = data[: self.snaplen] if self.snaplen else data
        original = len(data) if original_length is None else original_length
        header = struct.pack(self._order + "IIII", seconds, fraction, len(captured), original)
        self._file.write(header + captured)


def _option(order: str, code: int, value: bytes) -> bytes:
    """pcapng option: ``code(2) length(2) value``, padded to 4 bytes."""
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def _block(order: str, block_type: int, body: bytes) -> bytes:
    """pcapng block: ``type(4) total_length(4) body total_length(4)``, body padded to 4."""
    body += b"\x00" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack(order + "II", block_type, total) + body + struct.pack(order + "I", total)


def _end_options(order: str, options: list[bytes]) -> bytes:
    return b"".join(options) + struct.pack(order + "HH", 0, 0) if options else b""


class PcapngWriter:
    """Write a pcapng section (draft-ietf-opsawg-pcapng): interfaces, then Enhanced Packet Blocks.

    Creating a writer writes a Section Header Block; a second writer on the same file starts a
    new section (possibly in the other byte order), as pcapng allows.
    """

    def __init__(
        self,
        fileobj: BinaryIO,
        *,
        byte_order: ByteOrder = "little",
        application: str | None = "mutecheck",
    ) -> None:
        self._file = fileobj
        self._order = _prefix(byte_order)
        self._units: list[tuple[int, int]] = []  # (ticks per second, offset seconds)
        self._snaplens: list[int] = []
        options = []
        if application:
            options.append(_option(self._order, _SHB_USERAPPL, application.encode()))
        body = struct.pack(self._order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
        self._file.write(_block(self._order, _SHB, body + _end_options(self._order, options)))

    def add_interface(
        self,
        link_type: int,
        *,
        ts_resolution_exp10: int = 6,
        ts_resolution_exp2: int | None = None,
        ts_offset_seconds: int = 0,
        name: str | None = None,
        snaplen: int = 262144,
        addresses: Sequence[str] = (),
    ) -> int:
        """Write an Interface Description Block; returns the interface id for :meth:`write`.

        Timestamps tick in 10**-ts_resolution_exp10 seconds, or 2**-ts_resolution_exp2 when
        that is given (``if_tsresol``); ``ts_offset_seconds`` is written as ``if_tsoffset``;
        ``addresses`` (the interface's own) as ``if_IPv4addr`` (netmask 255.255.255.255) and
        ``if_IPv6addr`` (prefix length 128).
        """
        if ts_resolution_exp2 is not None:
            if not 0 <= ts_resolution_exp2 <= 127:
                raise ValueError("ts_resolution_exp2 must be within 0..127")
            resolution, units = 0x80 | ts_resolution_exp2, 2**ts_resolution_exp2
        else:
            if not 0 <= ts_resolution_exp10 <= 127:
                raise ValueError("ts_resolution_exp10 must be within 0..127")
            resolution, units = ts_resolution_exp10, 10**ts_resolution_exp10
        options = []
        if name is not None:
            options.append(_option(self._order, _IF_NAME, name.encode()))
        for text in addresses:
            address = ipaddress.ip_address(text)
            if address.version == 4:
                value = address.packed + b"\xff" * 4
                options.append(_option(self._order, _IF_IPV4ADDR, value))
            else:
                options.append(_option(self._order, _IF_IPV6ADDR, address.packed + bytes([128])))
        if resolution != 6:
            options.append(_option(self._order, _IF_TSRESOL, bytes([resolution])))
        if ts_offset_seconds:
            offset = struct.pack(self._order + "q", ts_offset_seconds)
            options.append(_option(self._order, _IF_TSOFFSET, offset))
        body = struct.pack(self._order + "HHI", link_type, 0, snaplen)
        self._file.write(_block(self._order, _IDB, body + _end_options(self._order, options)))
        self._units.append((units, ts_offset_seconds))
        self._snaplens.append(snaplen)
        return len(self._units) - 1

    def write(
        self,
        interface: int,
        timestamp_ns: int,
        data: bytes,
        *,
        comment: str | None = None,
        original_length: int | None = None,
    ) -> None:
        """Append an Enhanced Packet Block; the timestamp is rounded down to the tick."""
        if not 0 <= interface < len(self._units):
            raise ValueError(f"interface {interface} was not added to this section")
        units, offset = self._units[interface]
        ticks = ((timestamp_ns - offset * _NS_PER_SECOND) * units) // _NS_PER_SECOND
        if not 0 <= ticks < 1 << 64:
            raise ValueError(f"timestamp {timestamp_ns} ns does not fit a pcapng block")
        snaplen = self._snaplens[interface]
        captured = data[:snaplen] if snaplen else data
        original = len(data) if original_length is None else original_length
        head = struct.pack(
            self._order + "IIIII",
            interface,
            ticks >> 32,
            ticks & 0xFFFFFFFF,
            len(captured),
            original,
        )
        body = head + captured + b"\x00" * (-len(captured) % 4)
        if comment is not None:
            body += _end_options(
                # UTF-8 (pcapng); a lone surrogate (JSON can carry one) is written escaped
                self._order,
                [_option(self._order, _OPT_COMMENT, comment.encode("utf-8", "backslashreplace"))],
            )
        self._file.write(_block(self._order, _EPB, body))


# -- frame builders ------------------------------------------------------------------------------
def internet_checksum(data: bytes) -> int:
    """The 16-bit one's complement of the one's complement sum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    # big-endian 16-bit words summed in numpy: the synthetic benchmark writes a million frames
    total = int(np.frombuffer(data, dtype=">u2").sum(dtype=np.uint64))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _addresses(src: str, dst: str) -> tuple[bytes, bytes, int]:
    source, destination = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if source.version != destination.version:
        raise ValueError(f"{src} and {dst} are not of the same address family")
    return source.packed, destination.packed, source.version


def _pseudo_header(src: bytes, dst: bytes, protocol: int, length: int) -> bytes:
    """Checksum pseudo-header: RFC 768 (IPv4) or RFC 8200 section 8.1 (IPv6)."""
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, protocol, length)
    return src + dst + struct.pack("!I3xB", length, protocol)


def build_ip_packet(
    src: str,
    dst: str,
    protocol: int,
    payload: bytes,
    *,
    ttl: int = 64,
    identification: int = 0,
    dont_fragment: bool = False,
    differentiated_services: int = 0,
    options: bytes = b"",
    flow_label: int = 0,
) -> bytes:
    """An IPv4 (RFC 791, header checksum set) or IPv6 (RFC 8200) packet around ``payload``."""
    source, destination, version = _addresses(src, dst)
    if len(payload) + 20 + len(options) > 0xFFFF:
        raise ValueError(f"an IP packet of {len(payload)} payload bytes needs a jumbogram")
    if version == 4:
        if len(options) % 4 or len(options) > 40:
            raise ValueError("ipv4 options must be a multiple of 4 bytes, at most 40")
        header_length = 20 + len(options)
        header = struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | header_length // 4,
            differentiated_services,
            header_length + len(payload),
            identification,
            0x4000 if dont_fragment else 0,
            ttl,
            protocol,
            0,
            source,
            destination,
        )
        header += options
        checksum = internet_checksum(header)
        return header[:10] + struct.pack("!H", checksum) + header[12:] + payload
    first_word = (6 << 28) | (differentiated_services << 20) | (flow_label & 0xFFFFF)
    header = struct.pack("!IHBB", first_word, len(payload), protocol, ttl)
    return header + source + destination + payload


def _udp(source: bytes, destination: bytes, src_port: int, dst_port: int, payload: bytes) -> bytes:
    """UDP header (RFC 768) with its checksum; 0 is sent as 0xFFFF."""
    length = 8 + len(payload)
    header = struct.pack("!HHHH", src_port, dst_port, length, 0)
    checksum = internet_checksum(
        _pseudo_header(source, destination, IPPROTO_UDP, length) + header + payload
    )
    return header[:6] + struct.pack("!H", checksum or 0xFFFF) + payload


def _tcp(
    source: bytes,
    destination: bytes,
    src_port: int,
    dst_port: int,
    payload: bytes,
    *,
    sequence_number: int,
    acknowledgment_number: int,
    flags: int,
    window: int,
) -> bytes:
    """TCP header (RFC 9293) without options, with its checksum."""
    header = struct.pack(
        "!HHIIBBHHH",
        src_port,
        dst_port,
        sequence_number % (1 << 32),
        acknowledgment_number % (1 << 32),
        5 << 4,
        flags,
        window,
        0,
        0,
    )
    length = len(header) + len(payload)
    checksum = internet_checksum(
        _pseudo_header(source, destination, IPPROTO_TCP, length) + header + payload
    )
    return header[:16] + struct.pack("!H", checksum) + header[18:] + payload


def build_link_frame(
    link_type: int,
    packet: bytes,
    *,
    vlan: Sequence[int | tuple[int, int]] = (),
    src_mac: bytes = b"\x02\x00\x00\x00\x00\x01",
    dst_mac: bytes = b"\x02\x00\x00\x00\x00\x02",
    sll_packet_type: int = 0,
    null_byte_order: ByteOrder | None = None,
    null_inet6_family: int = 24,
) -> bytes:
    """Put an IP packet behind a link-layer header (the inverse of ``net.decode_link``).

    ``vlan`` lists tags outermost first: a VLAN id (802.1Q, TPID 0x8100) or ``(tpid, tci)``.
    NULL headers are little-endian and LOOP big-endian unless ``null_byte_order`` says.
    """
    if not packet or packet[0] >> 4 not in (4, 6):
        raise ValueError("packet must start with an IPv4 or IPv6 header")
    version = packet[0] >> 4
    ethertype = ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6
    tags = b"".join(
        struct.pack("!HH", *(tag if isinstance(tag, tuple) else (0x8100, tag))) for tag in vlan
    )
    if link_type == LINKTYPE_ETHERNET:
        return dst_mac + src_mac + tags + struct.pack("!H", ethertype) + packet
    if vlan:
        raise ValueError("vlan tags need an Ethernet link type")
    if link_type == LINKTYPE_LINUX_SLL:
        address = src_mac.ljust(8, b"\x00")
        return struct.pack("!HHH8sH", sll_packet_type, 1, 6, address, ethertype) + packet
    if link_type == LINKTYPE_LINUX_SLL2:
        address = src_mac.ljust(8, b"\x00")
        header = struct.pack("!HHIHBB8s", ethertype, 0, 1, 1, sll_packet_type, 6, address)
        return header + packet
    if link_type in (LINKTYPE_RAW, LINKTYPE_RAW_LEGACY, LINKTYPE_RAW_OPENBSD):
        return packet
    if link_type in (LINKTYPE_IPV4, LINKTYPE_IPV6):
        if (link_type == LINKTYPE_IPV4) != (version == 4):
            raise ValueError(f"link type {link_type} cannot carry IPv{version}")
        return packet
    if link_type in (LINKTYPE_NULL, LINKTYPE_LOOP):
        order = null_byte_order or ("little" if link_type == LINKTYPE_NULL else "big")
        family = 2 if version == 4 else null_inet6_family
        return family.to_bytes(4, order) + packet
    raise ValueError(f"cannot build frames for link type {link_type}")


def build_udp_frame(
    link_type: int,
    src: str,
    src_port: int,
    dst: str,
    dst_port: int,
    payload: bytes,
    *,
    vlan: Sequence[int | tuple[int, int]] = (),
    ttl: int = 64,
    identification: int = 0,
    null_byte_order: ByteOrder | None = None,
    null_inet6_family: int = 24,
) -> bytes:
    """A whole frame carrying one UDP datagram; IPv4 or IPv6 follows the addresses."""
    source, destination, _ = _addresses(src, dst)
    datagram = _udp(source, destination, src_port, dst_port, payload)
    packet = build_ip_packet(
        src, dst, IPPROTO_UDP, datagram, ttl=ttl, identification=identification
    )
    return build_link_frame(
        link_type,
        packet,
        vlan=vlan,
        null_byte_order=null_byte_order,
        null_inet6_family=null_inet6_family,
    )


def build_tcp_segment(
    link_type: int,
    src: str,
    src_port: int,
    dst: str,
    dst_port: int,
    payload: bytes,
    *,
    sequence_number: int,
    acknowledgment_number: int = 0,
    flags: int = TCP_ACK | TCP_PSH,
    window: int = 65535,
    vlan: Sequence[int | tuple[int, int]] = (),
    ttl: int = 64,
    identification: int = 0,
) -> bytes:
    """A whole frame carrying one TCP segment (no TCP options); flags as ``net.TCP_*`` bits."""
    source, destination, _ = _addresses(src, dst)
    segment = _tcp(
        source,
        destination,
        src_port,
        dst_port,
        payload,
        sequence_number=sequence_number,
        acknowledgment_number=acknowledgment_number,
        flags=flags,
        window=window,
    )
    packet = build_ip_packet(src, dst, IPPROTO_TCP, segment, ttl=ttl, identification=identification)
    return build_link_frame(link_type, packet, vlan=vlan)


def fragment_ip_packet(
    packet: bytes, fragment_size: int, *, identification: int = 0
) -> list[bytes]:
    """Split an IP packet from :func:`build_ip_packet` into fragments of its payload.

    ``fragment_size`` (a multiple of 8) bounds the payload bytes per fragment. IPv4 keeps
    the header's identification (RFC 791); IPv6 gets a Fragment header with
    ``identification`` right after the fixed header (RFC 8200 section 4.5).
    """
    if fragment_size <= 0 or fragment_size % 8:
        raise ValueError("fragment_size must be a positive multiple of 8")
    version = packet[0] >> 4
    if version == 4:
        header_length = (packet[0] & 0x0F) * 4
        header, payload = bytearray(packet[:header_length]), packet[header_length:]
    else:
        header, payload = bytearray(packet[:40]), packet[40:]
    pieces = [payload[i : i + fragment_size] for i in range(0, len(payload), fragment_size)]
    fragments = []
    for index, piece in enumerate(pieces):
        offset = index * fragment_size
        more = index < len(pieces) - 1
        if version == 4:
            struct.pack_into("!H", header, 2, len(header) + len(piece))
            flags = int.from_bytes(header[6:8], "big") & 0x4000
            struct.pack_into("!H", header, 6, flags | (0x2000 if more else 0) | offset // 8)
            struct.pack_into("!H", header, 10, 0)
            struct.pack_into("!H", header, 10, internet_checksum(bytes(header)))
            fragments.append(bytes(header) + piece)
        else:
            next_header = packet[6]
            fragment_header = struct.pack(
                "!BBHI", next_header, 0, offset | (1 if more else 0), identification
            )
            fixed = bytearray(header)
            struct.pack_into("!H", fixed, 4, 8 + len(piece))
            fixed[6] = IPV6_FRAGMENT
            fragments.append(bytes(fixed) + fragment_header + piece)
    return fragments


def rfc4571_frames(payloads: Iterable[bytes]) -> bytes:
    """RFC 4571 framing: each payload behind its 2-byte big-endian length."""
    out = bytearray()
    for payload in payloads:
        if len(payload) > 0xFFFF:
            raise ValueError("an RFC 4571 frame holds at most 65535 bytes")
        out += len(payload).to_bytes(2, "big") + payload
    return bytes(out)


__all__ = [
    "PcapWriter",
    "PcapngWriter",
    "build_ip_packet",
    "build_link_frame",
    "build_tcp_segment",
    "build_udp_frame",
    "fragment_ip_packet",
    "internet_checksum",
    "rfc4571_frames",
]
