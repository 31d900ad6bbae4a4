"""Tests for decoders.wire.pcapwriter: what it writes, our reader and tshark read back alike."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

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
    CaptureReader,
    Frame,
    Interface,
    open_capture,
)
from decoders.wire.net import (
    TCP_ACK,
    TCP_SYN,
    IPv4Packet,
    TcpSegment,
    Unwrapper,
    decode_link,
)
from decoders.wire.pcapwriter import (
    PcapngWriter,
    PcapWriter,
    build_ip_packet,
    build_link_frame,
    build_tcp_segment,
    build_udp_frame,
    fragment_ip_packet,
    internet_checksum,
    rfc4571_frames,
)

needs_tshark = pytest.mark.skipif(
    shutil.which("tshark") is None and not os.environ.get("CI"), reason="tshark is not installed"
)

BASE_NS = 1_700_000_000_123_456_789
FAMILIES = {4: ("192.0.2.10", "198.51.100.20"), 6: ("2001:db8::10", "2001:db8:1::20")}
LINKS: list[tuple[int, tuple[int, ...]]] = [
    (LINKTYPE_ETHERNET, (4, 6)),
    (LINKTYPE_LINUX_SLL, (4, 6)),
    (LINKTYPE_LINUX_SLL2, (4, 6)),
    (LINKTYPE_RAW, (4, 6)),
    (LINKTYPE_RAW_LEGACY, (4, 6)),
    (LINKTYPE_RAW_OPENBSD, (4,)),
    (LINKTYPE_IPV4, (4,)),
    (LINKTYPE_IPV6, (6,)),
    (LINKTYPE_NULL, (4, 6)),
    (LINKTYPE_LOOP, (4, 6)),
]


def tshark_fields(path: Path, *fields: str, options: Iterable[str] = ()) -> list[list[str]]:
    command = ["tshark", "-r", str(path), *options, "-T", "fields", "-E", "occurrence=f"]
    for field in fields:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert "appears to be damaged" not in result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


def epoch_ns(text: str) -> int:
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])


def packets(link: int, families: tuple[int, ...]) -> list[tuple[int, bytes, int, int]]:
    """(timestamp, frame, source port, destination port) for each family, twice."""
    out = []
    for index in range(4):
        family = families[index % len(families)]
        src, dst = FAMILIES[family]
        vlan: tuple[int | tuple[int, int], ...] = (
            (100, (0x88A8, 7)) if link == LINKTYPE_ETHERNET and index % 2 else ()
        )
        payload = bytes([0x80, 111]) + bytes(range(index, index + 30))
        data = build_udp_frame(link, src, 5000 + index, dst, 6000 + index, payload, vlan=vlan)
        out.append((BASE_NS + index * 20_000_001, data, 5000 + index, 6000 + index))
    return out


# (name, pcapng?, byte order, resolution keyword, ticks per second, offset seconds)
VARIANTS: list[tuple[str, bool, str, dict[str, int], int, int]] = [
    ("pcap-usec-le", False, "little", {}, 10**6, 0),
    ("pcap-nsec-le", False, "little", {"nanosecond": 1}, 10**9, 0),
    ("pcap-usec-be", False, "big", {}, 10**6, 0),
    ("pcap-nsec-be", False, "big", {"nanosecond": 1}, 10**9, 0),
    ("pcapng-usec-le", True, "little", {}, 10**6, 0),
    ("pcapng-nsec-be", True, "big", {"ts_resolution_exp10": 9}, 10**9, 0),
    ("pcapng-msec-le", True, "little", {"ts_resolution_exp10": 3}, 10**3, 0),
    ("pcapng-pow2-le", True, "little", {"ts_resolution_exp2": 30}, 2**30, 0),
    (
        "pcapng-offset-be",
        True,
        "big",
        {"ts_resolution_exp10": 9, "ts_offset_seconds": 1000},
        10**9,
        1000,
    ),
]


def write_variant(
    out: io.BufferedWriter | io.BytesIO,
    variant: tuple[str, bool, str, dict[str, int], int, int],
    link: int,
    rows: list[tuple[int, bytes, int, int]],
) -> None:
    _, pcapng, order, resolution, _, _ = variant
    if pcapng:
        writer = PcapngWriter(out, byte_order="big" if order == "big" else "little")
        interface = writer.add_interface(link, name=f"if-{link}", **resolution)
        for index, (stamp, data, _, _) in enumerate(rows):
            writer.write(interface, stamp, data, comment=f"packet {index}")
    else:
        pcap = PcapWriter(
            out,
            link,
            nanosecond=bool(resolution.get("nanosecond")),
            byte_order="big" if order == "big" else "little",
        )
        for stamp, data, _, _ in rows:
            pcap.write(stamp, data)


def expected_ns(stamp: int, units: int, offset: int) -> int:
    ticks = (stamp - offset * 10**9) * units // 10**9
    return ticks * 10**9 // units + offset * 10**9


@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("link", LINKS, ids=[str(link[0]) for link in LINKS])
def test_round_trip_through_our_reader(
    variant: tuple[str, bool, str, dict[str, int], int, int], link: tuple[int, tuple[int, ...]]
) -> None:
    rows = packets(*link)
    buffer = io.BytesIO()
    write_variant(buffer, variant, link[0], rows)
    buffer.seek(0)
    reader = CaptureReader(buffer)
    frames = list(reader)
    _, pcapng, order, _, units, offset = variant
    assert reader.format == ("pcapng" if pcapng else "pcap")
    assert reader.byte_order == order
    assert reader.damage is None
    assert reader.interfaces[0].ts_units_per_second == units
    assert reader.interfaces[0].ts_offset_seconds == offset
    assert [f.timestamp_ns for f in frames] == [expected_ns(r[0], units, offset) for r in rows]
    assert [f.data for f in frames] == [r[1] for r in rows]
    assert {f.link_type for f in frames} == {link[0]}
    unwrapper = Unwrapper()
    datagrams = [d for f in frames for d in unwrapper.feed(f)]
    assert [(d.src_port, d.dst_port) for d in datagrams] == [(r[2], r[3]) for r in rows]
    assert not unwrapper.counters


def check_with_tshark(path: Path, rows: list[tuple[int, bytes, int, int]], comments: bool) -> None:
    with open_capture(path) as reader:
        frames = list(reader)
    seen = tshark_fields(
        path,
        "frame.time_epoch",
        "ip.src",
        "ipv6.src",
        "udp.srcport",
        "udp.dstport",
        "udp.checksum.status",
        "ip.checksum.status",
        "frame.comment",
        options=["-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"],
    )
    assert len(seen) == len(frames) == len(rows)
    for index, (row, frame, (_, _, sport, dport)) in enumerate(
        zip(seen, frames, rows, strict=True)
    ):
        assert epoch_ns(row[0]) == frame.timestamp_ns
        assert (row[1] or row[2]) in FAMILIES[4 if row[1] else 6]
        assert (int(row[3]), int(row[4])) == (sport, dport)
        assert row[5] == "1"  # good UDP checksum
        assert row[6] in ("1", "")  # good IPv4 header checksum (IPv6 has none)
        assert row[7] == (f"packet {index % 4}" if comments else "")


@needs_tshark
@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_tshark_reads_what_we_write(
    tmp_path: Path, variant: tuple[str, bool, str, dict[str, int], int, int]
) -> None:
    """Every link type: one pcap file each, or one pcapng file with an interface each."""
    name, pcapng, order, resolution, _, _ = variant
    if not pcapng:
        for link in LINKS:
            rows = packets(*link)
            path = tmp_path / f"{name}-{link[0]}.pcap"
            with path.open("wb") as out:
                write_variant(out, variant, link[0], rows)
            check_with_tshark(path, rows, comments=False)
        return
    path = tmp_path / f"{name}.pcapng"
    everything = []
    with path.open("wb") as out:
        writer = PcapngWriter(out, byte_order="big" if order == "big" else "little")
        for link in LINKS:
            interface = writer.add_interface(link[0], name=f"if-{link[0]}", **resolution)
            for index, row in enumerate(packets(*link)):
                writer.write(interface, row[0], row[1], comment=f"packet {index}")
                everything.append(row)
    check_with_tshark(path, everything, comments=True)


def test_pcap_header_bytes() -> None:
    buffer = io.BytesIO()
    PcapWriter(buffer, LINKTYPE_ETHERNET, snaplen=65535)
    assert buffer.getvalue() == bytes.fromhex(
        "d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000"
    )
    buffer = io.BytesIO()
    PcapWriter(buffer, LINKTYPE_LINUX_SLL2, nanosecond=True, byte_order="big")
    assert buffer.getvalue() == bytes.fromhex(
        "a1b23c4d 0002 0004 00000000 00000000 00040000 00000114"
    )


def test_pcap_record_bytes_and_microsecond_rounding() -> None:
    buffer = io.BytesIO()
    writer = PcapWriter(buffer, LINKTYPE_RAW)
    writer.write(1_000_000_002_999_999_999, b"\x45abc", original_length=1500)
    assert (
        buffer.getvalue()[24:] == bytes.fromhex("02ca9a3b 3f420f00 04000000 dc050000") + b"\x45abc"
    )


def test_snaplen_cuts_data_and_keeps_original_length() -> None:
    data = build_udp_frame(LINKTYPE_ETHERNET, "10.0.0.1", 1, "10.0.0.2", 2, bytes(100))
    pcap, pcapng = io.BytesIO(), io.BytesIO()
    PcapWriter(pcap, LINKTYPE_ETHERNET, snaplen=64).write(BASE_NS, data)
    writer = PcapngWriter(pcapng)
    writer.write(writer.add_interface(LINKTYPE_ETHERNET, snaplen=64), BASE_NS, data)
    for buffer in (pcap, pcapng):
        buffer.seek(0)
        (frame,) = CaptureReader(buffer)
        assert frame.data == data[:64]
        assert frame.original_length == len(data)


def test_sections_in_both_byte_orders(tmp_path: Path) -> None:
    path = tmp_path / "sections.pcapng"
    data = build_udp_frame(LINKTYPE_RAW, "10.0.0.1", 1, "10.0.0.2", 2, b"x")
    with path.open("wb") as out:
        first = PcapngWriter(out)
        first.write(first.add_interface(LINKTYPE_RAW, name="a"), BASE_NS, data)
        second = PcapngWriter(out, byte_order="big", application=None)
        second.add_interface(LINKTYPE_ETHERNET)
        ethernet = build_link_frame(LINKTYPE_ETHERNET, data)
        second.write(second.add_interface(LINKTYPE_RAW, ts_resolution_exp10=9), BASE_NS + 1, data)
        second.write(0, BASE_NS + 2, ethernet)
    with open_capture(path) as reader:
        frames = list(reader)
        assert reader.byte_order == "big"
        assert reader.interfaces == [
            Interface(LINKTYPE_RAW, 262144, 10**6, 0, "a"),
            Interface(LINKTYPE_ETHERNET, 262144, 10**6, 0, None),
            Interface(LINKTYPE_RAW, 262144, 10**9, 0, None),
        ]
    assert [(f.interface, f.timestamp_ns) for f in frames] == [
        (0, BASE_NS // 1000 * 1000),
        (2, BASE_NS + 1),
        (1, (BASE_NS + 2) // 1000 * 1000),
    ]
    if shutil.which("tshark"):
        rows = tshark_fields(path, "frame.time_epoch", "frame.section_number")
        assert [(epoch_ns(r[0]), r[1]) for r in rows] == [
            (f.timestamp_ns, s) for f, s in zip(frames, "122", strict=True)
        ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: PcapWriter(io.BytesIO(), 1, byte_order="middle"), "byte_order"),  # type: ignore[arg-type]
        (lambda: PcapWriter(io.BytesIO(), 1).write(-1, b""), "does not fit"),
        (lambda: PcapWriter(io.BytesIO(), 1).write(1 << 62, b""), "does not fit"),
        (lambda: PcapngWriter(io.BytesIO()).write(0, 0, b""), "interface 0 was not added"),
        (lambda: PcapngWriter(io.BytesIO()).add_interface(1, ts_resolution_exp2=128), "exp2"),
        (lambda: PcapngWriter(io.BytesIO()).add_interface(1, ts_resolution_exp10=-1), "exp10"),
        (lambda: build_udp_frame(1, "10.0.0.1", 1, "::1", 2, b""), "same address family"),
        (lambda: build_udp_frame(LINKTYPE_IPV4, "::1", 1, "::2", 2, b""), "cannot carry IPv6"),
        (lambda: build_udp_frame(147, "::1", 1, "::2", 2, b""), "link type 147"),
        (lambda: build_udp_frame(LINKTYPE_RAW, "::1", 1, "::2", 2, b"", vlan=(1,)), "vlan"),
        (lambda: build_link_frame(LINKTYPE_RAW, b"\x15"), "IPv4 or IPv6"),
        (lambda: build_ip_packet("::1", "::2", 17, bytes(70000)), "jumbogram"),
        (lambda: build_ip_packet("10.0.0.1", "10.0.0.2", 17, b"", options=b"\x01"), "options"),
        (lambda: fragment_ip_packet(build_ip_packet("::1", "::2", 17, b""), 12), "multiple of 8"),
        (lambda: rfc4571_frames([bytes(70000)]), "65535"),
    ],
)
def test_bad_arguments_raise_value_error(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=message):
        call()


def test_internet_checksum_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2
    # an odd length is padded with a zero byte: 0x2dcf9 folds to 0xdcfb
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6")) == 0xFFFF - 0xDCFB
    header = IPv4Packet.parse(build_ip_packet("10.0.0.1", "10.0.0.2", 17, b""))
    assert header.header_checksum != 0


def test_null_and_loop_header_options() -> None:
    packet = build_ip_packet("::1", "::2", 17, bytes(8))
    for link, order, family, expected in [
        (LINKTYPE_NULL, None, 24, b"\x18\x00\x00\x00"),
        (LINKTYPE_NULL, "big", 28, b"\x00\x00\x00\x1c"),
        (LINKTYPE_LOOP, None, 30, b"\x00\x00\x00\x1e"),
    ]:
        frame = build_link_frame(link, packet, null_byte_order=order, null_inet6_family=family)  # type: ignore[arg-type]
        assert frame[:4] == expected
        assert decode_link(link, frame) == (0x86DD, 4)


def test_rfc4571_frames() -> None:
    assert rfc4571_frames([b"ab", b"", b"c"]) == b"\x00\x02ab\x00\x00\x00\x01c"


@needs_tshark
def test_tcp_segments_and_fragments_are_valid_for_tshark(tmp_path: Path) -> None:
    syn = build_tcp_segment(
        LINKTYPE_ETHERNET,
        "10.0.0.1",
        40000,
        "10.0.0.2",
        443,
        b"",
        sequence_number=99,
        flags=TCP_SYN,
    )
    data = build_tcp_segment(
        LINKTYPE_ETHERNET,
        "2001:db8::1",
        40000,
        "2001:db8::2",
        443,
        rfc4571_frames([b"\x80" * 12]),
        sequence_number=(1 << 32) + 5,
        acknowledgment_number=7,
        vlan=(3,),
    )
    whole = build_ip_packet("10.0.0.1", "10.0.0.2", 17, bytes(3000), identification=9)
    fragments = [build_link_frame(LINKTYPE_ETHERNET, p) for p in fragment_ip_packet(whole, 1480)]
    path = tmp_path / "tcp.pcap"
    with path.open("wb") as out:
        writer = PcapWriter(out, LINKTYPE_ETHERNET)
        for index, frame in enumerate([syn, data, *fragments]):
            writer.write(BASE_NS + index, frame)
    rows = tshark_fields(
        path,
        "tcp.seq_raw",
        "tcp.ack_raw",
        "tcp.flags",
        "tcp.checksum.status",
        "ip.checksum.status",
        "ip.frag_offset",
        "ip.flags.mf",
        options=["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"],
    )
    assert rows[0][:4] == ["99", "0", "0x0002", "1"]
    assert rows[1][:4] == ["5", "7", "0x0018", "1"]
    assert [(r[4], r[5], r[6]) for r in rows[2:]] == [
        ("1", "0", "1"),
        ("1", "185", "1"),
        ("1", "370", "0"),
    ]
    segment = TcpSegment.parse(syn[34:])
    assert (segment.sequence_number, segment.flags) == (99, TCP_SYN)
    assert TcpSegment.parse(data[18 + 40 :]).flags == TCP_ACK | 0x08


def test_writer_output_is_readable_frame_by_frame() -> None:
    buffer = io.BytesIO()
    writer = PcapngWriter(buffer)
    interface = writer.add_interface(LINKTYPE_RAW, ts_resolution_exp10=9)
    payload = build_ip_packet("10.0.0.1", "10.0.0.2", 17, bytes(8))
    writer.write(interface, 5, payload, comment="é")  # odd-length UTF-8 comment gets padded
    buffer.seek(0)
    assert list(CaptureReader(buffer)) == [Frame(1, 5, LINKTYPE_RAW, 0, len(payload), payload)]


@pytest.mark.parametrize("byte_order", ["little", "big"])
def test_interface_addresses_round_trip(tmp_path: Path, byte_order: str) -> None:
    path = tmp_path / "addresses.pcapng"
    with path.open("wb") as fo:
        writer = PcapngWriter(fo, byte_order=byte_order)  # type: ignore[arg-type]
        interface = writer.add_interface(
            LINKTYPE_ETHERNET, name="browser", addresses=("10.77.0.1", "fd00:77::1")
        )
        frame = build_udp_frame(LINKTYPE_ETHERNET, "10.77.0.1", 5000, "10.77.0.2", 6000, b"x")
        writer.write(interface, BASE_NS, frame)
    with open_capture(path) as reader:
        frames = list(reader)
        assert reader.interfaces[0].addresses == ("10.77.0.1", "fd00:77::1")
        assert reader.interfaces[0].name == "browser"
    assert len(frames) == 1
    if shutil.which("tshark"):  # Wireshark reads the options we write as a valid block
        assert tshark_fields(path, "udp.srcport") == [["5000"]]


def test_a_comment_with_a_lone_surrogate_is_written_escaped() -> None:
    """Comments come from input text (finding titles may quote a JSON endpoint, and JSON can hold
    a lone surrogate): pcapng comments are UTF-8, so such a character is written escaped."""
    out = io.BytesIO()
    writer = PcapngWriter(out)
    interface = writer.add_interface(LINKTYPE_ETHERNET)
    writer.write(interface, 1_795_989_000_000_000_000, b"\x00" * 60, comment="a\ud800b é")
    data = out.getvalue()
    assert "a\\ud800b é".encode() in data
    assert len(list(CaptureReader(io.BytesIO(data)))) == 1
