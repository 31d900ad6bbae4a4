"""Tests for decoders.wire.net: link, IP, UDP and TCP layers, reassembly, checked against tshark."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from helpers.packet_fixtures import load
from helpers.tls_bytes import tls_connection
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
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
    Frame,
    open_capture,
)
from decoders.wire.net import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    Datagram,
    IPv4Packet,
    IPv6Fragment,
    IPv6Packet,
    TcpSegment,
    UdpPacket,
    Unwrapper,
    decode_link,
    rfc7983_first_frame,
)
from decoders.wire.pcapwriter import (
    PcapWriter,
    build_ip_packet,
    build_link_frame,
    build_tcp_segment,
    build_udp_frame,
    fragment_ip_packet,
    rfc4571_frames,
)

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
needs_tshark = pytest.mark.skipif(
    shutil.which("tshark") is None and not os.environ.get("CI"), reason="tshark is not installed"
)


def tshark_fields(path: Path, *fields: str, options: Iterable[str] = ()) -> list[list[str]]:
    command = ["tshark", "-r", str(path), *options, "-T", "fields", "-E", "occurrence=a"]
    for field in fields:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return [line.split("\t") for line in result.stdout.splitlines()]


def frames_of(name: str) -> list[Frame]:
    with open_capture(CAPTURES / name) as reader:
        return list(reader)


def unwrap(frames: Iterable[Frame], unwrapper: Unwrapper | None = None) -> list[Datagram]:
    unwrapper = unwrapper or Unwrapper()
    out = [d for frame in frames for d in unwrapper.feed(frame)]
    return out + unwrapper.flush()


def frame(number: int, data: bytes, link: int = LINKTYPE_ETHERNET, time_ns: int = 0) -> Frame:
    return Frame(number, time_ns or number * 1_000_000, link, 0, len(data), data)


def write_pcap(path: Path, link: int, packets: list[bytes]) -> list[Frame]:
    with path.open("wb") as out:
        writer = PcapWriter(out, link, nanosecond=True)
        for index, data in enumerate(packets):
            writer.write(1_700_000_000_000_000_000 + index * 1000, data)
    with open_capture(path) as reader:
        return list(reader)


# -- decode_link ------------------------------------------------------------------------------
IPV4_HEAD = bytes.fromhex("45")
IPV6_HEAD = bytes.fromhex("60")
MACS = bytes(12)


@pytest.mark.parametrize(
    ("link", "data", "expected"),
    [
        (LINKTYPE_ETHERNET, MACS + b"\x08\x00" + IPV4_HEAD, (ETHERTYPE_IPV4, 14)),
        (LINKTYPE_ETHERNET, MACS + b"\x86\xdd" + IPV6_HEAD, (ETHERTYPE_IPV6, 14)),
        (LINKTYPE_ETHERNET, MACS + b"\x08\x06" + bytes(28), (0x0806, 14)),  # ARP
        (LINKTYPE_ETHERNET, MACS + b"\x00\x2e" + bytes(46), (0x002E, 14)),  # 802.3 length
        (LINKTYPE_ETHERNET, MACS + bytes.fromhex("8100 0005 0800") + IPV4_HEAD, (0x0800, 18)),
        (
            LINKTYPE_ETHERNET,
            MACS + bytes.fromhex("88a8 0064 8100 0007 86dd") + IPV6_HEAD,
            (0x86DD, 22),
        ),
        (
            LINKTYPE_ETHERNET,
            MACS + bytes.fromhex("9100 0001 9100 0002 8100 0003 0800"),
            (0x800, 26),
        ),
        (LINKTYPE_LINUX_SLL, bytes.fromhex("0004 0001 0006 020000000001 0000 0800"), (0x800, 16)),
        (LINKTYPE_LINUX_SLL, bytes(14) + bytes.fromhex("8100 0009 86dd"), (0x86DD, 20)),
        (
            LINKTYPE_LINUX_SLL2,
            bytes.fromhex("86dd 0000 00000003 0001 00 06") + bytes(8),
            (0x86DD, 20),
        ),
        (LINKTYPE_RAW, IPV4_HEAD, (ETHERTYPE_IPV4, 0)),
        (LINKTYPE_RAW, IPV6_HEAD, (ETHERTYPE_IPV6, 0)),
        (LINKTYPE_RAW, b"\x15", (0, 0)),
        (LINKTYPE_RAW_LEGACY, IPV6_HEAD, (ETHERTYPE_IPV6, 0)),
        (LINKTYPE_RAW_OPENBSD, IPV4_HEAD, (ETHERTYPE_IPV4, 0)),
        (LINKTYPE_IPV4, b"", (ETHERTYPE_IPV4, 0)),
        (LINKTYPE_IPV6, b"", (ETHERTYPE_IPV6, 0)),
        (LINKTYPE_NULL, b"\x02\x00\x00\x00", (ETHERTYPE_IPV4, 4)),
        (LINKTYPE_NULL, b"\x00\x00\x00\x02", (ETHERTYPE_IPV4, 4)),
        (LINKTYPE_NULL, b"\x1e\x00\x00\x00", (ETHERTYPE_IPV6, 4)),
        (LINKTYPE_NULL, b"\x00\x00\x00\x1c", (ETHERTYPE_IPV6, 4)),
        (LINKTYPE_NULL, b"\x07\x00\x00\x00", (0, 4)),
        (LINKTYPE_LOOP, b"\x00\x00\x00\x02", (ETHERTYPE_IPV4, 4)),
        (LINKTYPE_LOOP, b"\x18\x00\x00\x00", (ETHERTYPE_IPV6, 4)),
        (147, b"anything", None),
        (LINKTYPE_ETHERNET + 1000, b"", None),
    ],
)
def test_decode_link(link: int, data: bytes, expected: tuple[int, int] | None) -> None:
    assert decode_link(link, data) == expected


@pytest.mark.parametrize(
    ("link", "data", "message"),
    [
        (LINKTYPE_ETHERNET, bytes(13), "ethernet header truncated (13 of 14 bytes)"),
        (LINKTYPE_ETHERNET, MACS + b"\x81\x00\x00", "ethernet vlan tag truncated at byte 14"),
        (LINKTYPE_LINUX_SLL, bytes(15), "sll header truncated"),
        (LINKTYPE_LINUX_SLL2, bytes(19), "sll2 header truncated"),
        (LINKTYPE_RAW, b"", "raw ip packet is empty"),
        (LINKTYPE_NULL, b"\x02\x00", "null header truncated"),
        (LINKTYPE_LOOP, b"", "loop header truncated"),
    ],
)
def test_decode_link_truncated(link: int, data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_link(link, data)


@needs_tshark
@pytest.mark.parametrize(
    "name",
    ["link_sll.pcap", "link_sll2.pcap", "link_null.pcap", "link_loop.pcap", "link_vlan.pcap"],
)
def test_decode_link_on_real_frames_agrees_with_tshark(name: str) -> None:
    rows = tshark_fields(CAPTURES / name, "ip.version", "ipv6.version")
    for row, captured in zip(rows, frames_of(name), strict=True):
        link = decode_link(captured.link_type, captured.data)
        assert link is not None
        expected = ETHERTYPE_IPV4 if row[0] == "4" else ETHERTYPE_IPV6
        assert link[0] == expected
        assert captured.data[link[1]] >> 4 == (4 if row[0] == "4" else 6)


# -- parsers on real packets --------------------------------------------------------------------
def real_ipv4() -> bytes:
    return frames_of("udp_ipv4_ethernet.pcap")[0].data[14:]


def real_ipv6() -> bytes:
    return frames_of("udp_ipv6_raw.pcapng")[0].data


def real_tcp() -> bytes:
    return frames_of("tcp_rfc4571.pcapng")[1].data[34:]


def test_ipv4_fields() -> None:
    packet = IPv4Packet.parse(real_ipv4())
    assert packet.header_length == 20
    assert packet.differentiated_services == 0
    assert packet.total_length == 120
    assert packet.identification == 0x1234
    assert packet.dont_fragment is False
    assert packet.more_fragments is False
    assert packet.fragment_offset == 0
    assert packet.is_fragment is False
    assert packet.time_to_live == 255
    assert packet.protocol == 17
    assert packet.header_checksum == 0xBD09
    assert packet.source == "198.51.100.2"
    assert packet.destination == "192.0.2.1"
    assert packet.options == b""
    assert len(packet.payload) == 100


def test_ipv4_drops_ethernet_padding() -> None:
    rtcp_frame = frames_of("udp_ipv4_ethernet.pcap")[5].data  # a 60-byte padded frame
    packet = IPv4Packet.parse(rtcp_frame[14:])
    assert len(rtcp_frame) == 70
    assert len(packet.payload) == packet.total_length - 20 == 36


def test_ipv4_options_and_fragment_fields() -> None:
    data = build_ip_packet(
        "10.0.0.1", "10.0.0.2", 17, bytes(8), identification=7, options=b"\x94\x04\x00\x00"
    )
    fragment = bytearray(data)
    fragment[6:8] = (0x2000 | 3).to_bytes(2, "big")
    packet = IPv4Packet.parse(bytes(fragment))
    assert packet.header_length == 24
    assert packet.options == b"\x94\x04\x00\x00"  # router alert
    assert packet.more_fragments is True
    assert packet.fragment_offset == 24
    assert packet.is_fragment is True


def test_ipv4_total_length_zero_means_rest_of_frame() -> None:
    data = bytearray(build_ip_packet("10.0.0.1", "10.0.0.2", 6, bytes(40)))
    data[2:4] = b"\x00\x00"
    assert len(IPv4Packet.parse(bytes(data)).payload) == 40


def test_ipv6_fields() -> None:
    packet = IPv6Packet.parse(real_ipv6())
    assert packet.traffic_class == 0
    assert packet.flow_label == 0
    assert packet.payload_length == 100
    assert packet.next_header == 17
    assert packet.hop_limit == 32
    assert packet.source == "2001:db8:0:1::2"
    assert packet.destination == "2001:db8::1"
    assert packet.extension_headers == ()
    assert packet.protocol == 17
    assert packet.fragment is None
    assert len(packet.payload) == 100


def test_udp_fields() -> None:
    udp = UdpPacket.parse(IPv4Packet.parse(real_ipv4()).payload)
    assert udp.source_port == 3478
    assert udp.destination_port == 50000
    assert udp.length == 100
    assert udp.checksum == 0x32DA
    assert udp.payload[4:8] == b"\x21\x12\xa4\x42"
    assert len(udp.payload) == 92


def test_tcp_fields() -> None:
    tcp = TcpSegment.parse(real_tcp())
    assert tcp.source_port == 443
    assert tcp.destination_port == 50001
    assert tcp.sequence_number == 50
    assert tcp.acknowledgment_number == 0
    assert tcp.header_length == 20
    assert tcp.flags == TCP_ACK
    assert (tcp.syn, tcp.fin, tcp.rst) == (False, False, False)
    assert tcp.window == 8192
    assert tcp.checksum == 0xE349
    assert tcp.urgent_pointer == 0
    assert tcp.options == b""
    assert len(tcp.payload) == 80


def ipv6_with_extensions(*, esp: bool = False) -> bytes:
    """Hop-by-hop, destination options, routing (type 253, segments left 0), then UDP."""
    plain = build_udp_frame(
        LINKTYPE_RAW, "2001:db8::1", 5004, "2001:db8::2", 5006, b"\x80" + bytes(15)
    )
    udp = plain[40:]
    hop_by_hop = bytes([60, 0, 1, 4, 0, 0, 0, 0])
    destination = bytes([43, 1]) + bytes([1, 12]) + bytes(12)
    routing = bytes([50 if esp else 17, 0, 253, 0, 0, 0, 0, 0])
    body = hop_by_hop + destination + routing + (bytes(16) if esp else udp)
    header = bytearray(plain[:40])
    header[4:6] = len(body).to_bytes(2, "big")
    header[6] = 0
    return bytes(header) + body


def test_ipv6_extension_headers() -> None:
    packet = IPv6Packet.parse(ipv6_with_extensions())
    assert packet.next_header == 0
    assert packet.extension_headers == (0, 60, 43)
    assert packet.protocol == 17
    assert UdpPacket.parse(packet.payload).destination_port == 5006
    esp = IPv6Packet.parse(ipv6_with_extensions(esp=True))
    assert esp.protocol == 50
    assert esp.payload == bytes(16)


def test_ipv6_fragment_header() -> None:
    packet = build_ip_packet("fe80::1", "fe80::2", 17, bytes(100))
    first, second = fragment_ip_packet(packet, 64, identification=0xABCDEF01)
    parsed = IPv6Packet.parse(second)
    assert parsed.extension_headers == (44,)
    assert parsed.fragment == IPv6Fragment(
        offset=64, more_fragments=False, identification=0xABCDEF01
    )
    assert parsed.protocol == 17
    assert len(parsed.payload) == 36
    assert IPv6Packet.parse(first).fragment == IPv6Fragment(0, True, 0xABCDEF01)


ParserFn = Callable[[bytes], object]
PARSERS: list[tuple[str, ParserFn, Callable[[], bytes]]] = [
    ("ipv4", IPv4Packet.parse, real_ipv4),
    ("ipv6", IPv6Packet.parse, real_ipv6),
    ("ipv6-extensions", IPv6Packet.parse, ipv6_with_extensions),
    ("udp", UdpPacket.parse, lambda: IPv4Packet.parse(real_ipv4()).payload),
    ("tcp", TcpSegment.parse, real_tcp),
]


@pytest.mark.parametrize(("name", "parse", "sample"), PARSERS, ids=[p[0] for p in PARSERS])
def test_cut_at_every_length(name: str, parse: ParserFn, sample: Callable[[], bytes]) -> None:
    data = sample()
    parse(data)
    for size in range(len(data)):
        try:
            parse(data[:size])
        except MalformedPacket as error:
            assert str(error).startswith(name.split("-")[0])


@pytest.mark.parametrize(("name", "parse", "sample"), PARSERS, ids=[p[0] for p in PARSERS])
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=120))
def test_parsers_raise_only_malformed(
    name: str, parse: ParserFn, sample: Callable[[], bytes], data: bytes
) -> None:
    with contextlib.suppress(MalformedPacket):
        parse(data)


@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (IPv4Packet.parse, b"\x65" + bytes(19), "ipv4 version field is 6"),
        (IPv4Packet.parse, b"\x44" + bytes(19), "ipv4 header length 16 is below 20"),
        (IPv4Packet.parse, b"\x46" + bytes(19), "ipv4 options truncated"),
        (IPv4Packet.parse, b"\x45\x00\x00\x10" + bytes(16), "ipv4 total length 16 is below"),
        (IPv4Packet.parse, b"\x45\x00\x00\x30" + bytes(16), "ipv4 total length 48 exceeds"),
        (IPv6Packet.parse, b"\x40" + bytes(39), "ipv6 version field is 4"),
        (
            IPv6Packet.parse,
            b"\x60\x00\x00\x00\x00\x08\x11\x40" + bytes(32),
            "ipv6 payload length 8",
        ),
        (
            IPv6Packet.parse,
            b"\x60\x00\x00\x00\x00\x08\x00\x40" + bytes(32) + b"\x11\x01" + bytes(6),
            "ipv6 extension header 0 length 16 exceeds",
        ),
        (UdpPacket.parse, bytes(7), "udp header truncated"),
        (UdpPacket.parse, bytes(4) + b"\x00\x07" + bytes(2), "udp length 7 is below"),
        (UdpPacket.parse, bytes(4) + b"\x00\x09" + bytes(2), "udp length 9 exceeds"),
        (TcpSegment.parse, bytes(12) + b"\x40" + bytes(7), "tcp data offset 16 is below 20"),
        (TcpSegment.parse, bytes(12) + b"\x60" + bytes(7), "tcp options truncated"),
    ],
)
def test_malformed_messages_name_the_field(parse: ParserFn, data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket) as caught:
        parse(data)
    assert str(caught.value).startswith(message)


# -- the Unwrapper on real captures -------------------------------------------------------------
def udp_rows(path: Path) -> list[tuple[int, str, int, str, int, bytes]]:
    rows = tshark_fields(
        path,
        "frame.number",
        "ip.src",
        "ipv6.src",
        "udp.srcport",
        "ip.dst",
        "ipv6.dst",
        "udp.dstport",
        "udp.payload",
    )
    return [
        (int(r[0]), r[1] or r[2], int(r[3]), r[4] or r[5], int(r[6]), bytes.fromhex(r[7]))
        for r in rows
        if r[3]
    ]


UDP_FIXTURES = [
    "udp_ipv4_ethernet.pcap",
    "udp_ipv4_ethernet_ns.pcap",
    "udp_ipv6_raw.pcapng",
    "merged.pcapng",
    "blocks.pcapng",
    "link_sll.pcap",
    "link_sll2.pcap",
    "link_null.pcap",
    "link_loop.pcap",
    "link_vlan.pcap",
]


@needs_tshark
@pytest.mark.parametrize("name", UDP_FIXTURES)
def test_udp_datagrams_agree_with_tshark(name: str) -> None:
    unwrapper = Unwrapper()
    datagrams = unwrap(frames_of(name), unwrapper)
    mine = [(d.frame, d.src, d.src_port, d.dst, d.dst_port, d.payload) for d in datagrams]
    assert mine == udp_rows(CAPTURES / name)
    assert all(d.transport == "udp" and d.tunnel is None for d in datagrams)
    assert not unwrapper.counters


def test_udp_datagram_fields() -> None:
    first = unwrap(frames_of("udp_ipv4_ethernet.pcap"))[0]
    assert first.frame == 1
    assert first.timestamp_ns == 1_704_164_645_100_000_000
    assert (first.src, first.src_port, first.dst, first.dst_port) == (
        "198.51.100.2",
        3478,
        "192.0.2.1",
        50000,
    )
    assert first.transport == "udp"
    assert first.payload[:2] == b"\x00\x01" and len(first.payload) == 92
    assert first.tunnel is None


def test_link_variants_carry_the_same_payloads() -> None:
    expected = [d.payload for d in unwrap(frames_of("udp_ipv4_ethernet.pcap"))]
    for name in ("link_sll.pcap", "link_sll2.pcap", "link_null.pcap", "link_loop.pcap"):
        assert [d.payload for d in unwrap(frames_of(name))] == expected, name


@needs_tshark
def test_ice_tcp_frames_agree_with_tshark() -> None:
    path = CAPTURES / "tcp_rfc4571.pcapng"
    rows = tshark_fields(
        path, "frame.number", "rtp.rfc4571.len", options=["-d", "tcp.port==443,rtp"]
    )
    expected = [(int(r[0]), int(n)) for r in rows if r[1] for n in r[1].split(",")]
    datagrams = unwrap(frames_of("tcp_rfc4571.pcapng"))
    # the capture starts mid-connection: a frame comes out once the framing is confirmed,
    # still numbered by the frame that completed it
    assert sorted(((d.frame, len(d.payload)) for d in datagrams), key=lambda r: r[0]) == expected


def test_ice_tcp_payloads_equal_the_udp_ones() -> None:
    udp = unwrap(frames_of("udp_ipv4_ethernet.pcap"))
    unwrapper = Unwrapper()
    tcp = sorted(unwrap(frames_of("tcp_rfc4571.pcapng"), unwrapper), key=lambda d: d.frame)
    assert not unwrapper.counters
    assert all(d.transport == "tcp" for d in tcp)
    for port in (3478, 50000):
        tcp_port = 443 if port == 3478 else 50001
        assert [d.payload for d in tcp if d.src_port == tcp_port] == [
            d.payload for d in udp if d.src_port == port
        ]
    assert (tcp[0].src, tcp[0].src_port, tcp[0].dst, tcp[0].dst_port) == (
        "198.51.100.2",
        443,
        "192.0.2.1",
        50001,
    )


def test_http_over_tcp_is_counted_and_ignored() -> None:
    unwrapper = Unwrapper()
    assert unwrap(frames_of("tcp_http.pcap"), unwrapper) == []
    assert unwrapper.counters == {"tcp.unrecognised": 2}


# -- counters ----------------------------------------------------------------------------------
def test_counters_per_layer() -> None:
    unwrapper = Unwrapper()
    udp = build_udp_frame(LINKTYPE_ETHERNET, "10.0.0.1", 1, "10.0.0.2", 2, b"x")
    icmp = build_link_frame(LINKTYPE_ETHERNET, build_ip_packet("10.0.0.1", "10.0.0.2", 1, bytes(8)))
    bad_udp = bytearray(udp)
    bad_udp[14 + 20 + 4 : 14 + 20 + 6] = b"\x00\x40"
    bad_ipv6 = build_udp_frame(LINKTYPE_RAW, "::1", 1, "::2", 2, b"x")[:30]
    frames = [
        frame(1, MACS + b"\x08\x06" + bytes(28)),
        frame(2, b"whatever", link=147),
        frame(3, bytes(10)),
        frame(4, udp[:20]),
        frame(5, icmp),
        frame(6, bytes(bad_udp)),
        frame(7, bad_ipv6, link=LINKTYPE_RAW),
        frame(8, b"\x02\x00", link=LINKTYPE_NULL),
        frame(9, b"\x15" + bytes(30), link=LINKTYPE_RAW),
        frame(10, udp),
    ]
    datagrams = unwrap(frames, unwrapper)
    assert [d.frame for d in datagrams] == [10]
    assert unwrapper.counters == {
        "non-ip": 2,
        "link.unsupported": 1,
        "malformed.ethernet": 1,
        "malformed.ipv4": 1,
        "non-udp": 1,
        "malformed.udp": 1,
        "malformed.ipv6": 1,
        "malformed.null": 1,
    }


def test_udp_length_shorter_than_ip_payload() -> None:
    data = bytearray(build_udp_frame(LINKTYPE_RAW, "10.0.0.1", 1, "10.0.0.2", 2, b"abcdef"))
    data[20 + 4 : 20 + 6] = (8 + 3).to_bytes(2, "big")
    assert unwrap([frame(1, bytes(data), link=LINKTYPE_RAW)])[0].payload == b"abc"


def test_ipv6_extensions_and_esp_through_the_unwrapper() -> None:
    unwrapper = Unwrapper()
    frames = [
        frame(1, ipv6_with_extensions(), link=LINKTYPE_RAW),
        frame(2, ipv6_with_extensions(esp=True), link=LINKTYPE_RAW),
    ]
    datagrams = unwrap(frames, unwrapper)
    assert [(d.frame, d.dst_port, d.payload) for d in datagrams] == [(1, 5006, b"\x80" + bytes(15))]
    assert unwrapper.counters == {"non-udp": 1}


@needs_tshark
def test_ipv6_extensions_agree_with_tshark(tmp_path: Path) -> None:
    frames = write_pcap(tmp_path / "ext.pcap", LINKTYPE_RAW, [ipv6_with_extensions()])
    assert [(d.frame, d.src, d.src_port, d.dst, d.dst_port, d.payload) for d in unwrap(frames)] == (
        udp_rows(tmp_path / "ext.pcap")
    )


# -- IP fragments -------------------------------------------------------------------------------
def fragmented(src: str, dst: str, payload: bytes, size: int, ident: int = 0x4242) -> list[bytes]:
    whole = build_udp_frame(LINKTYPE_RAW, src, 4000, dst, 5000, payload, identification=ident)
    return [
        build_link_frame(LINKTYPE_ETHERNET, p)
        for p in fragment_ip_packet(whole, size, identification=ident)
    ]


PAYLOAD = bytes(range(256)) * 12


@needs_tshark
@pytest.mark.parametrize(("src", "dst"), [("10.1.1.1", "10.2.2.2"), ("2001:db8::a", "2001:db8::b")])
def test_fragments_reassemble_like_tshark(tmp_path: Path, src: str, dst: str) -> None:
    pieces = fragmented(src, dst, PAYLOAD, 1200)
    assert len(pieces) == 3
    frames = write_pcap(tmp_path / "frag.pcap", LINKTYPE_ETHERNET, pieces)
    unwrapper = Unwrapper()
    datagrams = unwrap(frames, unwrapper)
    assert [(d.frame, d.src, d.src_port, d.dst, d.dst_port, d.payload) for d in datagrams] == (
        udp_rows(tmp_path / "frag.pcap")
    )
    assert datagrams[0].frame == 3 and datagrams[0].payload == PAYLOAD
    family = "ipv4" if "." in src else "ipv6"
    assert unwrapper.counters == {f"{family}.fragment.reassembled": 1}


@pytest.mark.parametrize(("src", "dst"), [("10.1.1.1", "10.2.2.2"), ("fe80::1", "fe80::2")])
def test_fragments_out_of_order_and_duplicated(src: str, dst: str) -> None:
    a, b, c = fragmented(src, dst, PAYLOAD, 1200)
    frames = [frame(n, data) for n, data in enumerate([c, a, a, b], start=1)]
    datagrams = unwrap(frames)
    assert [(d.frame, d.payload) for d in datagrams] == [(4, PAYLOAD)]


def test_fragments_of_two_datagrams_interleaved() -> None:
    first = fragmented("10.1.1.1", "10.2.2.2", PAYLOAD, 1600, ident=1)
    second = fragmented("10.1.1.1", "10.2.2.2", PAYLOAD[::-1], 1600, ident=2)
    order = [first[0], second[0], second[1], first[1]]
    datagrams = unwrap(frame(n, data) for n, data in enumerate(order, start=1))
    assert [(d.frame, d.payload) for d in datagrams] == [(3, PAYLOAD[::-1]), (4, PAYLOAD)]


def test_ipv6_fragment_with_destination_options_inside() -> None:
    udp = build_udp_frame(LINKTYPE_RAW, "2001:db8::1", 1, "2001:db8::2", 2, PAYLOAD)[40:]
    inner = bytes([17, 0, 1, 4, 0, 0, 0, 0]) + udp
    packet = bytearray(build_ip_packet("2001:db8::1", "2001:db8::2", 60, inner))
    pieces = fragment_ip_packet(bytes(packet), 1024, identification=5)
    datagrams = unwrap(frame(n, p, link=LINKTYPE_RAW) for n, p in enumerate(pieces, start=1))
    assert [d.payload for d in datagrams] == [PAYLOAD]


def test_atomic_ipv6_fragment_is_not_held() -> None:
    packet = build_ip_packet("2001:db8::1", "2001:db8::2", 17, bytes(8))
    (atomic,) = fragment_ip_packet(packet, 64)
    unwrapper = Unwrapper()
    assert unwrapper.feed(frame(1, atomic, link=LINKTYPE_RAW)) == []  # UDP length 0: malformed
    assert unwrapper.counters == {"malformed.udp": 1}


def test_incomplete_fragments_are_counted() -> None:
    a, _, c = fragmented("10.1.1.1", "10.2.2.2", PAYLOAD, 1200)
    unwrapper = Unwrapper()
    assert unwrap([frame(1, a), frame(2, c)], unwrapper) == []
    assert unwrapper.counters == {"ipv4.fragment.incomplete": 1}


def test_fragments_expire_by_frames_and_by_time() -> None:
    a, b, _ = fragmented("10.1.1.1", "10.2.2.2", PAYLOAD, 1200)
    other = build_udp_frame(LINKTYPE_ETHERNET, "10.0.0.1", 1, "10.0.0.2", 2, b"x")
    by_frames = Unwrapper(fragment_timeout_frames=2)
    by_frames.feed(frame(1, a))
    by_frames.feed(frame(2, other))
    by_frames.feed(frame(3, other))
    assert by_frames.counters == {}
    by_frames.feed(frame(4, other))
    assert by_frames.counters == {"ipv4.fragment.incomplete": 1}
    assert by_frames.feed(frame(5, b)) == []  # its datagram is gone
    by_time = Unwrapper(fragment_timeout_ns=1_000_000_000)
    by_time.feed(frame(1, a, time_ns=1_000_000_000))
    by_time.feed(frame(2, other, time_ns=2_500_000_000))
    assert by_time.counters == {"ipv4.fragment.incomplete": 1}


def test_pending_fragment_datagrams_are_bounded() -> None:
    unwrapper = Unwrapper(max_fragmented_datagrams=4)
    for ident in range(10):
        unwrapper.feed(
            frame(ident + 1, fragmented("10.1.1.1", "10.2.2.2", PAYLOAD, 1200, ident)[0])
        )
    assert unwrapper.counters == {"ipv4.fragment.incomplete": 6}
    unwrapper.flush()
    assert unwrapper.counters == {"ipv4.fragment.incomplete": 10}


def test_fragment_past_64k_is_malformed() -> None:
    data = bytearray(build_ip_packet("10.1.1.1", "10.2.2.2", 17, bytes(16)))
    data[6:8] = (0x1FFF).to_bytes(2, "big")  # offset 65528 + 16 bytes
    data[10:12] = b"\x00\x00"
    unwrapper = Unwrapper()
    unwrapper.feed(frame(1, bytes(data), link=LINKTYPE_RAW))
    assert unwrapper.counters == {"malformed.ipv4": 1}


# -- ICE-TCP ------------------------------------------------------------------------------------
STUN = bytes.fromhex("0001 0000 2112a442") + bytes(12)
RTP = [bytes([0x80, 111, 0, n]) + bytes(8) + bytes([n]) * (20 + n) for n in range(4)]
CLIENT, SERVER = ("192.0.2.1", 50001), ("198.51.100.2", 443)


class Connection:
    """Builds the segments of one TCP connection, client to server, with real sequence numbers."""

    def __init__(self, isn: int = 1000, client: tuple[str, int] = CLIENT) -> None:
        self.isn = isn
        self.client = client
        self.frames: list[Frame] = []

    def segment(self, offset: int, payload: bytes, flags: int = TCP_ACK | TCP_PSH) -> Frame:
        data = build_tcp_segment(
            LINKTYPE_ETHERNET,
            *self.client,
            *SERVER,
            payload,
            sequence_number=self.isn + 1 + offset,
            flags=flags,
        )
        return frame(len(self.frames) + 1, data)

    def add(self, offset: int, payload: bytes, flags: int = TCP_ACK | TCP_PSH) -> Connection:
        self.frames.append(self.segment(offset, payload, flags))
        return self

    def syn(self) -> Connection:
        self.frames.append(self.segment(-1, b"", TCP_SYN))
        return self


def stream_bytes() -> bytes:
    return rfc4571_frames([STUN, *RTP])


def result(frames: list[Frame], unwrapper: Unwrapper | None = None) -> list[tuple[int, bytes]]:
    return [(d.frame, d.payload) for d in unwrap(frames, unwrapper)]


def test_tcp_in_order_with_handshake() -> None:
    data = stream_bytes()
    conn = Connection().syn().add(0, data[:30]).add(30, data[30:31]).add(31, data[31:])
    datagrams = unwrap(conn.frames)
    assert [(d.frame, d.payload) for d in datagrams] == [(2, STUN)] + [(4, p) for p in RTP]
    first = datagrams[0]
    assert (first.src, first.src_port, first.dst, first.dst_port, first.transport) == (
        "192.0.2.1",
        50001,
        "198.51.100.2",
        443,
        "tcp",
    )


def test_tcp_retransmissions_and_overlaps() -> None:
    data = stream_bytes()
    unwrapper = Unwrapper()
    conn = (
        Connection()
        .syn()
        .add(0, data[:50])
        .add(0, data[:50])
        .add(20, data[20:90])
        .add(90, data[90:])
    )
    assert result(conn.frames, unwrapper) == [
        (2, STUN),
        (4, RTP[0]),
        (5, RTP[1]),
        (5, RTP[2]),
        (5, RTP[3]),
    ]
    assert unwrapper.counters == {"tcp.retransmission": 1}


def test_tcp_out_of_order() -> None:
    data = stream_bytes()
    conn = Connection().syn().add(60, data[60:]).add(30, data[30:60]).add(0, data[:30])
    assert result(conn.frames) == [(4, STUN)] + [(4, p) for p in RTP]


def test_tcp_sequence_wraps_around() -> None:
    data = stream_bytes()
    conn = Connection(isn=(1 << 32) - 40).syn().add(0, data[:70]).add(70, data[70:])
    assert [p for _, p in result(conn.frames)] == [STUN, *RTP]


def test_tcp_mid_connection_start() -> None:
    data = stream_bytes()
    conn = Connection().add(0, data[:10]).add(10, data[10:])
    assert [p for _, p in result(conn.frames)] == [STUN, *RTP]


def test_tcp_gap_is_counted() -> None:
    data = stream_bytes()
    unwrapper = Unwrapper()
    conn = Connection().syn().add(0, data[:24]).add(40, data[40:])
    assert result(conn.frames, unwrapper) == [(2, STUN)]
    assert unwrapper.counters == {"tcp.gap": 1}
    bounded = Unwrapper(max_tcp_pending_bytes=16)  # gives up on the hole: resyncs after it
    assert result(conn.frames, bounded) == [(2, STUN)] + [(3, p) for p in RTP[1:]]
    assert bounded.counters == {
        "tcp.gap": 1,
        "tcp.rfc4571.partial": 1,  # the frame the hole cut
        "tcp.rfc4571.skipped": 16,  # the rest of it, after the hole
    }


def test_tcp_fin_with_partial_frame() -> None:
    data = stream_bytes()
    unwrapper = Unwrapper()
    conn = Connection().syn().add(0, data[:30], TCP_ACK | TCP_FIN)
    assert result(conn.frames, unwrapper) == [(2, STUN)]
    assert unwrapper.counters == {"tcp.rfc4571.partial": 1}
    later = Unwrapper()
    conn = Connection().syn().add(0, data[:30]).add(30, b"", TCP_ACK | TCP_RST)
    assert result(conn.frames, later) == [(2, STUN)]
    assert later.counters == {"tcp.rfc4571.partial": 1}


def test_tcp_port_reuse_starts_a_new_stream() -> None:
    data = stream_bytes()
    first = Connection().syn().add(0, data[:24], TCP_ACK | TCP_FIN)
    second = Connection(isn=777_777)
    second.frames = list(first.frames)
    second.syn().add(0, rfc4571_frames([RTP[2]]))
    assert result(second.frames) == [(2, STUN), (4, RTP[2])]


def test_tcp_retransmitted_syn_keeps_the_stream() -> None:
    data = stream_bytes()
    conn = Connection().syn().add(0, data[:30]).syn().add(30, data[30:])
    assert [p for _, p in result(conn.frames)] == [STUN, *RTP]


def test_tcp_streams_are_bounded() -> None:
    unwrapper = Unwrapper(max_tcp_streams=2)
    frames = []
    for port in (1, 2, 3):
        conn = Connection(client=("192.0.2.9", port)).syn().add(0, stream_bytes()[:30])
        frames += conn.frames
    unwrap(frames, unwrapper)
    assert unwrapper.counters == {"tcp.stream.evicted": 1, "tcp.rfc4571.partial": 3}


def test_tcp_tls_and_empty_frames() -> None:
    tls = bytes.fromhex("16030100f8010000f40303") + bytes(80)
    unwrapper = Unwrapper()
    assert result(Connection().syn().add(0, tls).frames, unwrapper) == []  # a record cut short
    assert unwrapper.counters == {"tcp.tls.partial": 1}
    empty = Unwrapper()
    frames = Connection().syn().add(0, rfc4571_frames([RTP[0], b"", RTP[1]])).frames
    assert result(frames, empty) == [(2, RTP[0]), (2, RTP[1])]
    assert empty.counters == {"tcp.rfc4571.empty": 1}


@pytest.mark.parametrize(
    ("length", "head", "expected"),
    [
        (20, STUN[:8], True),
        (24, STUN[:8], False),  # STUN length field disagrees with the frame
        (20, STUN[:5], None),
        (20, b"", None),
        (0, b"", False),
        (5635, bytes.fromhex("0100f4030301"), None),  # TLS ClientHello read as RFC 4571 ...
        (5635, bytes.fromhex("0100f40303010203"), False),  # ... fails the cookie check
        (100, bytes.fromhex("16fefd"), True),  # DTLS 1.2 handshake record
        (100, bytes.fromhex("16"), None),
        (100, bytes.fromhex("1603"), False),  # TLS, not DTLS
        (10, bytes.fromhex("16fe"), False),  # shorter than a DTLS record header
        (40, bytes.fromhex("2f"), True),  # DTLS 1.3 unified header
        (12, RTP[0][:8], True),
        (28, bytes.fromhex("80c8"), True),  # RTCP sender report
        (4, bytes.fromhex("80c8"), False),
        (100, b"GET / HTTP/1.1", False),
        (100, bytes([64]), False),
        (100, bytes([200]), False),
    ],
)
def test_rfc7983_first_frame(length: int, head: bytes, expected: bool | None) -> None:
    assert rfc7983_first_frame(length, head) is expected


def test_tcp_dtls_stream_is_accepted() -> None:
    record = bytes.fromhex("16fefd 0000 000000000000 0010") + bytes(16)
    frames = Connection().syn().add(0, rfc4571_frames([record])).frames
    assert result(frames) == [(2, record)]


# -- fuzzing the whole unwrapper ----------------------------------------------------------------
LINKS = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147]


@settings(max_examples=300, deadline=None)
@given(
    packets=st.lists(st.tuples(st.sampled_from(LINKS), st.binary(max_size=90)), max_size=8),
)
def test_unwrapper_never_raises_on_arbitrary_frames(packets: list[tuple[int, bytes]]) -> None:
    unwrapper = Unwrapper(max_tcp_streams=2, max_fragmented_datagrams=2)
    for number, (link, data) in enumerate(packets, start=1):
        for datagram in unwrapper.feed(frame(number, data, link=link)):
            assert datagram.frame == number
    unwrapper.flush()


def ip_frames() -> st.SearchStrategy[bytes]:
    """Valid headers with fuzzed fields: reaches the IP, UDP, TCP and reassembly code."""

    def mutate(base: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
        data = bytearray(base)
        for position, value in edits:
            data[position % len(data)] = value
        return bytes(data[: max(cut, 1)])

    bases = st.sampled_from(
        [
            build_udp_frame(LINKTYPE_ETHERNET, "10.0.0.1", 1, "10.0.0.2", 2, bytes(30)),
            build_udp_frame(LINKTYPE_ETHERNET, "::1", 1, "::2", 2, bytes(30)),
            build_tcp_segment(
                LINKTYPE_ETHERNET, *CLIENT, *SERVER, stream_bytes()[:40], sequence_number=5
            ),
            *fragmented("10.1.1.1", "10.2.2.2", bytes(64), 32),
            *fragmented("fe80::1", "fe80::2", bytes(64), 32),
            build_link_frame(LINKTYPE_ETHERNET, ipv6_with_extensions()),
        ]
    )
    edits = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=3)
    return st.builds(mutate, bases, edits, st.integers(1, 200))


@settings(max_examples=300, deadline=None)
@given(packets=st.lists(ip_frames(), max_size=8))
def test_unwrapper_never_raises_on_mutated_frames(packets: list[bytes]) -> None:
    unwrapper = Unwrapper()
    for number, data in enumerate(packets, start=1):
        unwrapper.feed(frame(number, data))
    unwrapper.flush()
    assert all(isinstance(k, str) and v > 0 for k, v in unwrapper.counters.items())


def test_overlapping_fragment_flood_is_bounded() -> None:
    unwrapper = Unwrapper()
    for index in range(100):
        data = bytearray(build_ip_packet("10.1.1.1", "10.2.2.2", 17, bytes(1480)))
        data[6:8] = (0x2000 | index).to_bytes(2, "big")  # more fragments, offsets 8 bytes apart
        unwrapper.feed(frame(index + 1, bytes(data), link=LINKTYPE_RAW))
    assert unwrapper.counters["ipv4.fragment.incomplete"] >= 1
    assert unwrapper.counters["malformed.ipv4"] >= 1


@settings(max_examples=300, deadline=None)
@given(link=st.sampled_from(LINKS), data=st.binary(max_size=40))
def test_decode_link_raises_only_malformed(link: int, data: bytes) -> None:
    try:
        result = decode_link(link, data)
    except MalformedPacket:
        return
    assert result is None or (0 <= result[1] <= len(data) and 0 <= result[0] <= 0xFFFF)


@pytest.mark.parametrize(
    "name", ["link_vlan.pcap", "link_sll.pcap", "link_sll2.pcap", "link_null.pcap"]
)
def test_decode_link_cut_at_every_length(name: str) -> None:
    real = frames_of(name)[0]
    for size in range(len(real.data) + 1):
        with contextlib.suppress(MalformedPacket):
            decode_link(real.link_type, real.data[:size])


# -- TURN over TCP and TLS ---------------------------------------------------------------------
TURN_MESSAGES = [
    load("turn_allocate_request"),
    load("turn_channel_data_tcp"),
    load("turn_send_indication"),
    load("turn_channel_data_tcp"),
    load("turn_data_indication"),
    load("turn_channel_data_tcp"),
]


def test_turn_over_tcp_split_and_coalesced() -> None:
    data = b"".join(TURN_MESSAGES)
    cuts = [0, 7, 30, 31, 90, len(data)]
    conn = Connection().syn()
    for a, b in itertools.pairwise(cuts):
        conn.add(a, data[a:b])
    unwrapper = Unwrapper()
    datagrams = unwrap(conn.frames, unwrapper)
    assert [d.payload for d in datagrams] == TURN_MESSAGES  # whole, padding included
    assert all(d.transport == "tcp" and d.tunnel is None for d in datagrams)
    assert not unwrapper.counters


def test_turn_over_tcp_mid_stream_resyncs_and_counts() -> None:
    data = b"".join(TURN_MESSAGES * 3)
    start = len(TURN_MESSAGES[0]) + 5  # inside the first ChannelData message
    conn = Connection().add(0, data[start:200]).add(200 - start, data[200:])
    unwrapper = Unwrapper()
    payloads = [d.payload for d in unwrap(conn.frames, unwrapper)]
    assert payloads == (TURN_MESSAGES * 3)[2:]
    assert unwrapper.counters == {"tcp.turn.skipped": len(TURN_MESSAGES[1]) - 5}


def test_tls_is_framed_as_records_never_as_rfc4571() -> None:
    """Issue 11: an HTTPS connection captured mid-stream gave one-packet "PCMU" streams."""
    _, server = tls_connection([(False, bytes([0x80 + n % 64]) * (300 + n)) for n in range(40)])
    for start in (0, 1, 5, 117, 1000, 2345):
        conn = Connection()
        for offset in range(start, len(server), 1448):
            conn.add(offset - start, server[offset : offset + 1448])
        datagrams = unwrap(conn.frames)
        assert datagrams and all(d.tunnel == "tls" for d in datagrams), start
        assert all(d.payload[0] in range(20, 24) for d in datagrams)
