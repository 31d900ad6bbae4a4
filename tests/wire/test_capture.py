"""Tests for decoders.wire.capture: pcap/pcapng reading, checked against tshark."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import subprocess
import tracemalloc
import zlib
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import CaptureError
from decoders.wire.capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    CaptureReader,
    Frame,
    GzipStream,
    Interface,
    open_capture,
)

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
GOOD = [
    "udp_ipv4_ethernet.pcap",
    "udp_ipv4_ethernet_ns.pcap",
    "udp_ipv4_ethernet.pcap.gz",
    "big_endian.pcap",
    "udp_ipv6_raw.pcapng",
    "merged.pcapng",
    "secrets.pcapng",
    "blocks.pcapng",
    "tcp_rfc4571.pcapng",
    "tcp_http.pcap",
    "link_sll.pcap",
    "link_sll2.pcap",
    "link_null.pcap",
    "link_loop.pcap",
    "link_vlan.pcap",
]
DAMAGED = ["truncated.pcap", "truncated.pcapng", "truncated.pcap.gz", "corrupt_length.pcap"]

needs_tshark = pytest.mark.skipif(
    shutil.which("tshark") is None and not os.environ.get("CI"), reason="tshark is not installed"
)


def tshark_fields(path: Path, *fields: str) -> list[list[str]]:
    """One row per frame; tshark exits non-zero on damaged files but still prints the rows."""
    command = ["tshark", "-r", str(path), "-T", "fields", "-E", "occurrence=f"]
    for field in fields:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return [line.split("\t") for line in result.stdout.splitlines()]


def epoch_ns(text: str) -> int:
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])


def read_all(path: Path) -> tuple[CaptureReader, list[Frame]]:
    with open_capture(path) as reader:
        return reader, list(reader)


# -- real files, every field ---------------------------------------------------------------
def test_pcap_header_and_first_frame_fields() -> None:
    reader, frames = read_all(CAPTURES / "udp_ipv4_ethernet.pcap")
    assert reader.format == "pcap"
    assert reader.byte_order == "little"
    assert reader.compressed is False
    assert reader.damage is None
    assert reader.interfaces == [Interface(LINKTYPE_ETHERNET, 262144, 1_000_000, 0, None)]
    assert len(frames) == 6
    first = frames[0]
    assert first.number == 1
    assert first.timestamp_ns == 1_704_164_645_100_000_000  # .100000001 cut to microseconds
    assert first.link_type == LINKTYPE_ETHERNET
    assert first.interface == 0
    assert first.original_length == 134
    assert len(first.data) == 134
    assert first.data[:12] == bytes.fromhex("20 53 45 4e 44 00 20 52 45 43 56 00")  # SEND, RECV
    assert first.data[12:14] == b"\x08\x00"
    assert first.data[46:50] == b"\x21\x12\xa4\x42"  # the STUN magic cookie behind IP and UDP
    assert [f.number for f in frames] == [1, 2, 3, 4, 5, 6]


def test_nanosecond_pcap_keeps_nanoseconds() -> None:
    reader, frames = read_all(CAPTURES / "udp_ipv4_ethernet_ns.pcap")
    assert reader.interfaces[0].ts_units_per_second == 1_000_000_000
    assert [f.timestamp_ns % 1_000_000_000 for f in frames] == [
        100_000_001,
        110_000_002,
        120_000_003,
        140_000_004,
        160_000_005,
        170_000_006,
    ]


def test_big_endian_pcap_reads_like_little_endian() -> None:
    big, big_frames = read_all(CAPTURES / "big_endian.pcap")
    _, little_frames = read_all(CAPTURES / "udp_ipv4_ethernet.pcap")
    assert big.byte_order == "big"
    assert big_frames == little_frames


def test_gzip_is_transparent() -> None:
    reader, frames = read_all(CAPTURES / "udp_ipv4_ethernet.pcap.gz")
    _, plain = read_all(CAPTURES / "udp_ipv4_ethernet.pcap")
    assert reader.compressed is True
    assert reader.format == "pcap"
    assert frames == plain


def test_pcapng_interface_from_text2pcap() -> None:
    reader, frames = read_all(CAPTURES / "udp_ipv6_raw.pcapng")
    assert reader.format == "pcapng"
    assert reader.interfaces == [
        Interface(LINKTYPE_RAW, 262144, 1_000_000_000, 0, "Fake IF, text2pcap")
    ]
    assert reader.interfaces[0].ts_resolution_ns == 1
    assert frames[0] == Frame(
        number=1,
        timestamp_ns=1_704_164_645_100_000_001,
        link_type=LINKTYPE_RAW,
        interface=0,
        original_length=len(frames[0].data),
        data=frames[0].data,
    )
    assert frames[0].data[0] >> 4 == 6


def test_merged_file_has_two_interfaces_in_time_order() -> None:
    reader, frames = read_all(CAPTURES / "merged.pcapng")
    assert [i.link_type for i in reader.interfaces] == [LINKTYPE_ETHERNET, LINKTYPE_RAW]
    assert [f.link_type for f in frames] == [LINKTYPE_ETHERNET, LINKTYPE_RAW] * 6
    assert [f.interface for f in frames] == [0, 1] * 6
    stamps = [f.timestamp_ns for f in frames]
    assert stamps == sorted(stamps)


def test_secrets_block_is_skipped() -> None:
    _, frames = read_all(CAPTURES / "secrets.pcapng")
    _, plain = read_all(CAPTURES / "udp_ipv4_ethernet.pcap")
    assert [f.data for f in frames] == [f.data for f in plain]


def test_blocks_sections_byte_orders_and_resolutions() -> None:
    with open_capture(CAPTURES / "blocks.pcapng") as reader:
        orders = [(frame.number, reader.byte_order) for frame in reader]
        interfaces = reader.interfaces
    assert orders == [
        (1, "little"),
        (3, "little"),
        (4, "little"),
        (5, "big"),
        (6, "big"),
        (7, "little"),
        (8, "little"),
    ]
    assert interfaces == [
        Interface(LINKTYPE_ETHERNET, 262144, 2**20, 0, "eth-pow2"),
        Interface(LINKTYPE_RAW, 65535, 10**9, 100, None),
        Interface(LINKTYPE_RAW, 262144, 10**6, 0, None),
        Interface(LINKTYPE_ETHERNET, 262144, 10**6, 0, "eth-usec"),
    ]
    assert interfaces[0].ts_resolution_ns == Fraction(10**9, 2**20)


def test_blocks_packet_kinds() -> None:
    _, frames = read_all(CAPTURES / "blocks.pcapng")
    by_number = {f.number: f for f in frames}
    # 2 is a custom block: Wireshark numbers it as a frame, it carries no packet
    assert sorted(by_number) == [1, 3, 4, 5, 6, 7, 8]
    # 1: EPB with 2**-20 s ticks, rounded down; 3: obsolete Packet Block
    assert by_number[1].timestamp_ns == 1_704_164_645_099_999_427
    assert by_number[3].timestamp_ns == 1_704_164_645_109_999_656
    # 4: Simple Packet Block: no timestamp of its own, the previous frame's
    assert by_number[4].timestamp_ns == by_number[3].timestamp_ns
    assert by_number[4].interface == 0
    # 5, 6: big-endian section with if_tsoffset = 100 s
    assert by_number[5].timestamp_ns == 1_704_164_645_100_000_001
    assert [by_number[n].interface for n in (5, 6, 7, 8)] == [1, 1, 3, 2]
    assert [by_number[n].link_type for n in (7, 8)] == [LINKTYPE_ETHERNET, LINKTYPE_RAW]


@needs_tshark
@pytest.mark.parametrize("name", GOOD + DAMAGED)
def test_frames_agree_with_tshark(name: str) -> None:
    path = CAPTURES / name
    rows = tshark_fields(
        path,
        "frame.number",
        "frame.time_epoch",
        "frame.len",
        "frame.cap_len",
        "frame.section_number",
        "frame.interface_id",
    )
    reader, frames = read_all(path)
    packets = [row for row in rows if row[2] != "" and int(row[3]) > 0 and row[1] != ""]
    spb_free = [f for f in frames if not (name == "blocks.pcapng" and f.number == 4)]
    assert [int(row[0]) for row in packets] == [f.number for f in spb_free]
    assert [epoch_ns(row[1]) for row in packets] == [f.timestamp_ns for f in spb_free]
    assert [int(row[2]) for row in packets] == [f.original_length for f in spb_free]
    assert [int(row[3]) for row in packets] == [len(f.data) for f in spb_free]
    if reader.format == "pcapng":
        # tshark shows section-local interface ids; ours index the reader's whole list
        sections: dict[tuple[str, str], int] = {}
        for row, frame in zip(packets, spb_free, strict=True):
            assert sections.setdefault((row[4], row[5]), frame.interface) == frame.interface
    assert (reader.damage is not None) == (name in DAMAGED)


# -- damage -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "good", "count", "damage"),
    [
        (
            "truncated.pcap",
            "udp_ipv4_ethernet.pcap",
            5,
            "truncated record (65 of 70 bytes) at byte 629 (after frame 5)",
        ),
        (
            "corrupt_length.pcap",
            "udp_ipv4_ethernet.pcap",
            4,
            "corrupt record length 2147483632 at byte 517 (after frame 4)",
        ),
        (
            "truncated.pcapng",
            "udp_ipv6_raw.pcapng",
            5,
            "truncated block (90 of 120 bytes) at byte 1044 (after frame 5)",
        ),
    ],
)
def test_damage_keeps_frames_before_it(name: str, good: str, count: int, damage: str) -> None:
    reader, frames = read_all(CAPTURES / name)
    _, expected = read_all(CAPTURES / good)
    assert frames == expected[:count]
    assert reader.damage == damage


def test_truncated_gzip_is_damage_not_an_exception() -> None:
    reader, frames = read_all(CAPTURES / "truncated.pcap.gz")
    _, expected = read_all(CAPTURES / "udp_ipv4_ethernet.pcap")
    assert frames == expected[: len(frames)]
    assert len(frames) == 5
    assert reader.damage is not None
    assert reader.damage.startswith("truncated record header at byte 629 (after frame 5)")
    assert "gzip" in reader.damage


def block_boundaries(data: bytes) -> set[int]:
    """Offsets where a record or block ends (an independent walk, for the cut test)."""
    ends: set[int] = set()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        position, order = 0, "<"
        while position + 12 <= len(data):
            if data[position : position + 4] == b"\x0a\x0d\x0d\x0a":
                order = "<" if data[position + 8 : position + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            position += struct.unpack_from(order + "I", data, position + 4)[0]
            ends.add(position)
        return ends
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    position = 24
    ends.add(position)
    while position + 16 <= len(data):
        position += 16 + struct.unpack_from(order + "I", data, position + 8)[0]
        ends.add(position)
    return ends


@pytest.mark.parametrize(
    "name",
    ["udp_ipv4_ethernet.pcap", "big_endian.pcap", "udp_ipv6_raw.pcapng", "blocks.pcapng"],
)
def test_cut_at_every_length(name: str) -> None:
    data = (CAPTURES / name).read_bytes()
    full = list(CaptureReader(io.BytesIO(data)))
    boundaries = block_boundaries(data)
    opened = 0
    for size in range(len(data) + 1):
        try:
            reader = CaptureReader(io.BytesIO(data[:size]))
        except CaptureError:
            assert size < min(boundaries)
            continue
        opened += 1
        frames = list(reader)
        assert frames == full[: len(frames)]
        assert (reader.damage is None) == (size in boundaries), size
    assert opened == len(data) + 1 - min(boundaries)


def test_cut_gzip_at_every_length() -> None:
    data = (CAPTURES / "udp_ipv4_ethernet.pcap.gz").read_bytes()
    full = list(CaptureReader(io.BytesIO(data)))
    for size in range(len(data) + 1):
        try:
            reader = CaptureReader(io.BytesIO(data[:size]))
        except CaptureError:
            continue
        frames = list(reader)
        assert frames == full[: len(frames)]
        assert (reader.damage is None) == (size == len(data))


# -- errors at open ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"hello world", "not a pcap or pcapng file (starts with 0x68656c6c)"),
        (b"\x7fE", "not a pcap or pcapng file (starts with 0x7f45)"),
        (b"\x34\xcd\xb2\xa1" + bytes(20), "modified (Kuznetzov) pcap format is not supported"),
        (b"\x28\xb5\x2f\xfd\x00", "it looks zstd-compressed"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header (6 of 24 bytes)"),
        (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00", "unreadable pcapng section header block"),
        (
            b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x11\x22\x33\x44",
            "bad byte-order magic 0x11223344",
        ),
        (
            b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x02\x00\x00\x00"
            + b"\xff" * 8
            + b"\x1c\x00\x00\x00",
            "unsupported pcapng version 2",
        ),
        (gzip.compress(b"", mtime=0), "empty file (after gzip)"),
        (gzip.compress(b"not a capture", mtime=0), "not a pcap or pcapng file"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt gzip data"),
    ],
)
def test_not_a_capture(data: bytes, message: str) -> None:
    with pytest.raises(CaptureError) as caught:
        CaptureReader(io.BytesIO(data))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_open_capture_errors_are_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pcap"
    with pytest.raises(CaptureError) as caught:
        open_capture(missing)
    assert str(caught.value) == f"{missing}: cannot open: No such file or directory"
    with pytest.raises(CaptureError, match="Is a directory"):
        open_capture(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello world")
    with pytest.raises(CaptureError) as caught:
        open_capture(str(text))
    assert str(caught.value) == f"{text}: not a pcap or pcapng file (starts with 0x68656c6c)"


def test_open_capture_closes_its_file() -> None:
    with open_capture(CAPTURES / "udp_ipv4_ethernet.pcap") as reader:
        frames = iter(reader)
        next(frames)
    with pytest.raises(ValueError, match="closed file"):
        next(frames)


def test_iteration_is_single_pass() -> None:
    reader = CaptureReader(io.BytesIO((CAPTURES / "udp_ipv4_ethernet.pcap").read_bytes()))
    assert len(list(reader)) == 6
    assert list(reader) == []


class Trickle:
    """A non-seekable stream that returns at most 3 bytes per read, like a slow pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = len(self._data)
        chunk = self._data[self._position : self._position + min(size, 3)]
        self._position += len(chunk)
        return chunk


@pytest.mark.parametrize(
    "name", ["udp_ipv4_ethernet.pcap", "udp_ipv4_ethernet.pcap.gz", "blocks.pcapng"]
)
def test_short_reads_from_a_pipe(name: str) -> None:
    data = (CAPTURES / name).read_bytes()
    trickled = list(CaptureReader(Trickle(data)))  # type: ignore[arg-type]
    assert trickled == list(CaptureReader(io.BytesIO(data)))


# -- fuzzing -------------------------------------------------------------------------------
def read_or_reject(data: bytes) -> None:
    try:
        reader = CaptureReader(io.BytesIO(data))
    except CaptureError:
        return
    for frame in reader:
        assert isinstance(frame.data, bytes)
        assert frame.number >= 1
    assert reader.damage is None or isinstance(reader.damage, str)


PREFIXES = [
    b"",
    b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(8) + b"\x00\x00\x04\x00\x01\x00\x00\x00",
    b"\xa1\xb2\x3c\x4d\x00\x02\x00\x04" + bytes(8) + b"\x00\x04\x00\x00\x00\x00\x00\x65",
    b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x01\x00\x00\x00"
    + b"\xff" * 8
    + b"\x1c\x00\x00\x00",
    b"\x0a\x0d\x0d\x0a\x00\x00\x00\x1c\x1a\x2b\x3c\x4d\x00\x01\x00\x00"
    + b"\xff" * 8
    + b"\x00\x00\x00\x1c",
]


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from(PREFIXES), rest=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_capture_error(prefix: bytes, rest: bytes) -> None:
    read_or_reject(prefix + rest)


FUZZ_BASES = [
    (CAPTURES / name).read_bytes()
    for name in ("udp_ipv4_ethernet.pcap", "blocks.pcapng", "udp_ipv4_ethernet.pcap.gz")
]


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(FUZZ_BASES),
    edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
)
def test_mutated_real_files_raise_only_capture_error(
    base: bytes, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(base)
    for position, value in edits:
        data[position % len(data)] = value
    read_or_reject(bytes(data))


def test_interface_addresses_if_ipv4addr_and_if_ipv6addr() -> None:
    """pcapng IDB options 4 and 5 (address + netmask, address + prefix); wrong sizes ignored."""

    def option(code: int, value: bytes) -> bytes:
        return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)

    def block(block_type: int, body: bytes) -> bytes:
        return (
            struct.pack("<II", block_type, len(body) + 12)
            + body
            + struct.pack("<I", len(body) + 12)
        )

    options = (
        option(2, b"eth0")
        + option(4, bytes([192, 168, 1, 7, 255, 255, 255, 0]))
        + option(4, bytes([10, 0, 0, 1]))  # too short: ignored
        + option(5, bytes.fromhex("fd000000000000000000000000000001") + bytes([64]))
        + option(0, b"")
    )
    data = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += block(1, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 262144) + options)
    reader = CaptureReader(io.BytesIO(data))
    assert list(reader) == []
    assert reader.interfaces == [
        Interface(LINKTYPE_ETHERNET, 262144, 1_000_000, 0, "eth0", ("192.168.1.7", "fd00::1"))
    ]


# -- bounded gzip (issue 13) ---------------------------------------------------------------------
def _gzip_bomb(zeros: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    chunk = bytes(1 << 22)
    parts = [packer.compress(header)]
    for _ in range(zeros // len(chunk)):
        parts.append(packer.compress(chunk))
    return b"".join([*parts, packer.flush()])


def test_gzip_stream_decompresses_no_more_than_asked() -> None:
    """A megabyte of compressed zeros holds a gigabyte: each read inflates only what it returns."""
    bomb = _gzip_bomb(256 << 20)
    stream = GzipStream(io.BytesIO(bomb))
    tracemalloc.start()
    try:
        assert len(stream.read(1 << 20)) == 1 << 20
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    assert stream.damage is None


def test_scalar_reader_on_a_gzip_bomb_stays_small() -> None:
    bomb = _gzip_bomb(256 << 20)
    tracemalloc.start()
    try:
        reader = CaptureReader(io.BytesIO(bomb))
        empty = sum(frame.data == b"" for frame, _ in zip(reader, range(100_000), strict=False))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert empty == 100_000
    assert peak < 8 << 20


def test_gzip_stream_keeps_bytes_before_damage_and_reads_members() -> None:
    data = bytes(range(256)) * 64
    packed = gzip.compress(data, mtime=0)
    both = GzipStream(io.BytesIO(packed + b"\x00\x00" + packed))
    assert both.read(1 << 20) == data + data and both.damage is None
    cut = GzipStream(io.BytesIO(packed[:-30]))
    got = cut.read(1 << 20)
    assert data.startswith(got) and len(got) > 0
    assert cut.damage == "gzip stream ends early"
    garbage = GzipStream(io.BytesIO(packed + b"junk"))
    assert garbage.read(1 << 20) == data
    assert garbage.damage is not None and "damaged" in garbage.damage
    with pytest.raises(ValueError, match="needs a size"):
        GzipStream(io.BytesIO(packed)).read()


def _pcapng_with_idb_options(options: bytes, packets: int) -> bytes:
    def block(block_type: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        total = 12 + len(body)
        return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)

    data = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += block(1, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 65535) + options)
    frame = bytes(12) + b"\x08\x06" + bytes(28)  # an ARP-typed frame: the reader decodes nothing
    for i in range(packets):
        data += block(6, struct.pack("<IIIII", 0, 0x5F5E1, i, len(frame), len(frame)) + frame)
    return data


@needs_tshark
@pytest.mark.parametrize(
    ("options", "frames"),
    [
        (struct.pack("<HH", 9, 8) + b"\x06\x00\x00\x00", 0),  # if_tsresol runs past the block
        (struct.pack("<HH", 2, 100) + b"eth0", 0),  # if_name runs past the block
        (struct.pack("<HHB3x", 9, 1, 0x80 | 63), 35),  # 2^-63 s ticks: fine, exact
        (struct.pack("<HHB3x", 9, 1, 0x80 | 127), 35),
    ],
)
def test_interface_options_read_as_tshark_reads_them(
    tmp_path: Path, options: bytes, frames: int
) -> None:
    """The meaning both engines share for a damaged IDB is Wireshark's: the file is damaged at
    that block and no frame after it is read (tshark: "Not enough data to handle option")."""
    path = tmp_path / "idb.pcapng"
    path.write_bytes(_pcapng_with_idb_options(options, 35))
    rows = tshark_fields(path, "frame.number")
    reader, ours = read_all(path)
    assert len(rows) == len(ours) == frames
    assert (reader.damage is None) == (frames > 0)
