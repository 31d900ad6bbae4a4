"""Capture files to frames: a streaming reader for pcap and pcapng over an open binary file.

The reader yields one :class:`Frame` (timestamp, link type, bytes) per packet record and decodes
nothing above the file format; :mod:`decoders.wire.net` takes it from there. It never loads the
whole file: records are read one at a time, so memory stays bounded by the largest record.

Damage is not an exception. A file that is not a capture at all raises :class:`CaptureError`
when the reader is created; a file that is cut short or corrupt further in yields every frame
before the damage, stops, and says where in :attr:`CaptureReader.damage`.

Formats: pcap (draft-ietf-opsawg-pcap; microsecond magic ``a1b2c3d4`` and nanosecond magic
``a1b23c4d``, either byte order) and pcapng (draft-ietf-opsawg-pcapng: several sections, each
with its own byte order; Enhanced, Simple and obsolete Packet Blocks; other blocks skipped by
length), optionally gzip-compressed as Wireshark writes and reads them.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType
from typing import BinaryIO, Final, Literal, Protocol, Self

from decoders.errors import CaptureError

# LINKTYPE_* values (tcpdump.org link-layer header types) that the unwrapping layer knows.
LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW_LEGACY: Final = 12  # DLT_RAW on most BSDs, found in old files instead of 101
LINKTYPE_RAW_OPENBSD: Final = 14  # DLT_RAW on OpenBSD
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276

LINKTYPE_NAMES: Final[dict[int, str]] = {
    LINKTYPE_NULL: "null",
    LINKTYPE_ETHERNET: "ethernet",
    LINKTYPE_RAW_LEGACY: "raw",
    LINKTYPE_RAW_OPENBSD: "raw",
    LINKTYPE_RAW: "raw",
    LINKTYPE_LOOP: "loop",
    LINKTYPE_LINUX_SLL: "sll",
    LINKTYPE_IPV4: "ipv4",
    LINKTYPE_IPV6: "ipv6",
    LINKTYPE_LINUX_SLL2: "sll2",
}

MAX_RECORD_LENGTH: Final = 16 * 1024 * 1024
"""Largest packet record accepted; a longer length field is taken as corruption."""
MAX_BLOCK_OVERHEAD: Final = 64
"""A pcapng block may be at most :data:`MAX_RECORD_LENGTH` plus this long (both engines): a
longer length field is corruption, never a reason to buffer gigabytes."""
TIMESTAMP_MIN_NS: Final = -(2**63)
TIMESTAMP_MAX_NS: Final = 2**63 - 1
"""Frame times are int64 nanoseconds since the epoch (years 1677 to 2262). A pcapng packet whose
ticks, resolution and if_tsoffset put it outside is taken as corruption, like a bad length:
reading stops there with damage (a pcap record cannot get there: 32-bit seconds)."""

PCAP_MAGIC: Final[dict[bytes, tuple[Literal["little", "big"], int]]] = {
    b"\xd4\xc3\xb2\xa1": ("little", 1_000_000),
    b"\xa1\xb2\xc3\xd4": ("big", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("little", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": ("big", 1_000_000_000),
}
"""pcap magic -> (byte order, timestamp units per second)."""
PCAPNG_MAGIC: Final = b"\x0a\x0d\x0d\x0a"
"""The first bytes of a pcapng file: a Section Header Block's type, the same in both orders."""
PCAP_HEADER_LENGTH: Final = 24
_MODIFIED_PCAP_MAGIC: Final = (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34")
_OTHER_FORMATS: Final[dict[bytes, str]] = {
    b"\x28\xb5\x2f\xfd": "zstd-compressed",
    b"\xfd\x37\x7a\x58": "xz-compressed",
    b"\x04\x22\x4d\x18": "lz4-compressed",
    b"\x42\x5a\x68": "bzip2-compressed",
}
_GZIP_MAGIC: Final = b"\x1f\x8b"

_SHB: Final = 0x0A0D0D0A
_IDB: Final = 0x00000001
_PACKET_BLOCK: Final = 0x00000002  # obsolete
_SPB: Final = 0x00000003
_EPB: Final = 0x00000006
_BYTE_ORDER_MAGIC: Final = 0x1A2B3C4D
NUMBERED_BLOCKS: Final = frozenset(
    {0x00000009, 0x00000204, 0x00000208, 0x00000216, 0x00000BAD, 0x40000BAD}
)
"""Blocks that carry no packet but that Wireshark numbers as frames (systemd journal export,
sysdig events, custom blocks); counting them keeps :attr:`Frame.number` equal to Wireshark's."""

_OPT_ENDOFOPT: Final = 0
_IF_NAME: Final = 2
_IF_IPV4ADDR: Final = 4
_IF_IPV6ADDR: Final = 5
_IF_TSRESOL: Final = 9
_IF_TSOFFSET: Final = 14


@dataclass(frozen=True, slots=True)
class Frame:
    """One packet record: what the capture file holds, undecoded."""

    number: int
    """1-based position among the packet records, as Wireshark's ``frame.number``."""
    timestamp_ns: int
    """Capture time, nanoseconds since the Unix epoch."""
    link_type: int
    """LINKTYPE_* value of the interface the packet was captured on."""
    interface: int
    """Index into :attr:`CaptureReader.interfaces` (Wireshark's ``frame.interface_id``)."""
    original_length: int
    """Length of the packet on the wire; ``len(data)`` is less when the snapshot length cut it."""
    data: bytes


@dataclass(frozen=True, slots=True)
class Interface:
    """A capture interface: pcap's file header, or a pcapng Interface Description Block."""

    link_type: int
    snaplen: int
    ts_units_per_second: int = 1_000_000
    """Timestamp ticks per second: 10**n or 2**n (pcapng ``if_tsresol``), 10**6 by default."""
    ts_offset_seconds: int = 0
    """pcapng ``if_tsoffset``: seconds added to every timestamp of this interface."""
    name: str | None = None
    addresses: tuple[str, ...] = ()
    """pcapng ``if_IPv4addr`` / ``if_IPv6addr``: the capturing interface's own addresses."""

    @property
    def ts_resolution_ns(self) -> Fraction:
        """Length of one timestamp tick in nanoseconds (exact)."""
        return Fraction(1_000_000_000, self.ts_units_per_second)

    def timestamp_ns(self, ticks: int) -> int:
        """Ticks since the epoch to nanoseconds, rounded down (as Wireshark does)."""
        return (ticks * 1_000_000_000) // self.ts_units_per_second + (
            self.ts_offset_seconds * 1_000_000_000
        )


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


class GzipStream:
    """Gzip decompression in bounded steps over an open file: the one gzip reader of every path.

    ``read(size)`` decompresses at most ``size`` bytes (``zlib`` ``max_length``; the compressed
    input not yet needed waits in ``unconsumed_tail``), so memory stays bounded by the caller's
    chunk whatever the compression ratio: a small file of compressed zeros cannot expand into
    gigabytes. Concatenated members are read one after the other, as gzip(1) does. Damage (a
    corrupt stream, a member cut short) is not an exception: every byte before it is returned,
    reading ends, and :attr:`damage` says why. (``gzip.GzipFile`` raises ``EOFError`` on a
    truncated member instead.)
    """

    STEP: Final = 1 << 16
    """Compressed bytes read from the file at a time."""

    __slots__ = ("_decompressor", "_ended", "_fed", "_pending", "_raw", "damage")

    def __init__(self, raw: _Readable, head: bytes = b"") -> None:
        self._raw = raw
        self._pending = head
        """compressed input read but not yet fed (the caller's already-read head, or the
        unconsumed tail of the last step)"""
        self._decompressor = zlib.decompressobj(wbits=31)
        self._ended = False
        self._fed = False
        """the current member has begun (a stream may end cleanly only between members)"""
        self.damage: str | None = None

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` decompressed bytes (fewer only at the end or at damage)."""
        if size < 0:
            raise ValueError("GzipStream.read needs a size: it never reads without bound")
        out = bytearray()
        while len(out) < size and not self._ended:
            data = self._pending or self._raw.read(self.STEP)
            self._pending = b""
            if not data:
                self._ended = True
                if self._fed:
                    self.damage = "gzip stream ends early"
                    out += self._decompressor.flush()
                break
            if not self._fed:
                data = data.lstrip(b"\x00")  # zero padding between members, as gzip(1) allows
                if not data:
                    continue
                self._fed = True
            try:
                out += self._decompressor.decompress(data, size - len(out))
            except zlib.error as exc:
                self.damage = f"gzip stream damaged: {exc}"
                self._ended = True
                break
            self._pending = self._decompressor.unconsumed_tail
            if self._decompressor.eof:
                rest = self._decompressor.unused_data
                self._decompressor = zlib.decompressobj(wbits=31)
                self._fed = False
                self._pending = rest
        return bytes(out)

    def readinto(self, view: memoryview) -> int:
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """The underlying file belongs to the caller."""


class _Source:
    """Reads exact byte counts from a file, counting the offset; gzip damage is a short read."""

    __slots__ = ("_file", "_prefix", "error", "offset")

    def __init__(self, fileobj: _Readable, prefix: bytes) -> None:
        self._file = fileobj
        self._prefix = prefix
        self.offset = 0
        self.error: str | None = None

    def read(self, size: int) -> bytes:
        parts: list[bytes] = []
        missing = size
        if self._prefix and missing:
            head, self._prefix = self._prefix[:missing], self._prefix[missing:]
            parts.append(head)
            missing -= len(head)
        while missing > 0 and self.error is None:
            chunk = self._file.read(missing)
            if not chunk:
                damage = getattr(self._file, "damage", None)
                if damage is not None:
                    self.error = f"gzip: {damage}" if "gzip" not in damage else damage
                break
            parts.append(chunk)
            missing -= len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.offset += len(data)
        return data


class CaptureReader:
    """Stream the frames of a pcap or pcapng capture from an open binary file.

    ``CaptureReader(fileobj)`` reads the file header (raising :class:`CaptureError` if this is
    not a capture); iterating yields :class:`Frame` records in file order. Iteration is single
    pass, like a file's lines. After it ends, :attr:`damage` says where a truncated or corrupt
    file stopped being readable (``None`` for a clean end).
    """

    format: Literal["pcap", "pcapng"]
    byte_order: Literal["little", "big"]
    compressed: bool
    interfaces: list[Interface]
    damage: str | None

    def __init__(self, fileobj: BinaryIO) -> None:
        self._owned: list[_Readable] = []
        self.interfaces = []
        self.damage = None
        self.compressed = False
        self._frames = 0
        source: _Readable = fileobj
        magic = _read_up_to(fileobj, 4)
        if magic[:2] == _GZIP_MAGIC:
            self.compressed = True
            inner = GzipStream(fileobj, magic)
            magic = inner.read(4)
            if not magic and inner.damage is not None:
                raise CaptureError(f"corrupt gzip data ({inner.damage})")
            source = inner
        self._source = _Source(source, magic)
        if not magic:
            raise CaptureError("empty file (after gzip)" if self.compressed else "empty file")
        self.format = file_format(magic)
        if self.format == "pcap":
            self.byte_order = PCAP_MAGIC[magic][0]
            self._open_pcap()
        else:
            self.byte_order = "little"
            self._open_pcapng()
        self._iterator: Iterator[Frame] = (
            self._iter_pcap() if self.format == "pcap" else self._iter_pcapng()
        )

    # -- life cycle --------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        return self._iterator

    def close(self) -> None:
        """Close what this reader opened (a gzip layer, or the file of :func:`open_capture`)."""
        while self._owned:
            self._owned.pop().close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def offset(self) -> int:
        """Bytes of the (decompressed) capture read so far."""
        return self._source.offset

    # -- helpers -----------------------------------------------------------------------
    def _stop(self, what: str, at: int) -> None:
        reason = f"; {self._source.error}" if self._source.error else ""
        self.damage = f"{what} at byte {at} (after frame {self._frames}){reason}"

    # -- pcap --------------------------------------------------------------------------
    def _open_pcap(self) -> None:
        """The pcap file header (:func:`parse_pcap_header`), after which records follow."""
        header = self._source.read(PCAP_HEADER_LENGTH)
        if len(header) < PCAP_HEADER_LENGTH:
            raise CaptureError(f"truncated pcap file header ({len(header)} of 24 bytes)")
        self.interfaces.append(parse_pcap_header(header))

    def _iter_pcap(self) -> Iterator[Frame]:
        """Records: ``ts_seconds(4) ts_fraction(4) captured_length(4) original_length(4) data``."""
        source = self._source
        header = struct.Struct("<IIII" if self.byte_order == "little" else ">IIII")
        interface = self.interfaces[0]
        link, units = interface.link_type, interface.ts_units_per_second
        scale = 1_000_000_000 // units
        while True:
            start = source.offset
            head = source.read(16)
            if len(head) < 16:
                if head or source.error:
                    self._stop("truncated record header", start)
                return
            seconds, fraction, captured, original = header.unpack(head)
            if captured > MAX_RECORD_LENGTH:
                self._stop(f"corrupt record length {captured}", start)
                return
            data = source.read(captured)
            if len(data) < captured:
                self._stop(f"truncated record ({len(data)} of {captured} bytes)", start)
                return
            self._frames += 1
            yield Frame(
                self._frames, seconds * 1_000_000_000 + fraction * scale, link, 0, original, data
            )

    # -- pcapng ------------------------------------------------------------------------
    def _open_pcapng(self) -> None:
        # The first Section Header Block must be whole: without it nothing can be read.
        self._section: list[int] = []
        self._last_timestamp = 0
        block = self._read_block()
        if block is None or isinstance(block, str):
            raise CaptureError(f"unreadable pcapng section header block: {block or 'empty'}")
        problem = self._section_header(block[1], "<" if self.byte_order == "little" else ">")
        if problem is not None:
            raise CaptureError(problem)

    def _read_block(self) -> tuple[int, bytes] | str | None:
        """Read one block (RFC-draft pcapng section 3.1); returns (type, body) or a damage text.

        ``block_type(4) block_total_length(4) body(...) block_total_length(4)``; the length
        counts all of it and is a multiple of 4. A Section Header Block's body starts with the
        byte-order magic 0x1A2B3C4D, which sets the byte order of its whole section.
        """
        source = self._source
        head = source.read(8)
        if not head and not source.error:
            return None
        if len(head) < 8:
            return "truncated block header"
        order = "<" if self.byte_order == "little" else ">"
        (block_type,) = struct.unpack(order + "I", head[:4])
        if block_type == _SHB:
            magic = source.read(4)
            if len(magic) < 4:
                return "truncated section header block"
            byte_order = section_byte_order(magic)
            if byte_order is None:
                return f"bad byte-order magic 0x{magic.hex()} in section header block"
            self.byte_order = byte_order
            order = "<" if self.byte_order == "little" else ">"
            consumed = magic
        else:
            consumed = b""
        (total,) = struct.unpack(order + "I", head[4:])
        if (
            total < 12 + len(consumed)
            or total % 4
            or total > MAX_RECORD_LENGTH + MAX_BLOCK_OVERHEAD
        ):
            return f"corrupt block length {total}"
        rest = source.read(total - 8 - len(consumed))
        if len(rest) < total - 8 - len(consumed):
            return f"truncated block ({len(rest) + 8 + len(consumed)} of {total} bytes)"
        (trailer,) = struct.unpack(order + "I", rest[-4:])
        if trailer != total:
            return f"block length {total} does not match its trailer {trailer}"
        return block_type, consumed + rest[:-4]

    def _iter_pcapng(self) -> Iterator[Frame]:
        while True:
            start = self._source.offset
            block = self._read_block()
            if block is None:
                return
            if isinstance(block, str):
                self._stop(block, start)
                return
            block_type, body = block
            order = "<" if self.byte_order == "little" else ">"
            problem: str | None = None
            frame: Frame | None = None
            if block_type == _SHB:
                problem = self._section_header(body, order)
            elif block_type == _IDB:
                problem = self._interface_description(body, order)
            elif block_type == _EPB:
                problem, frame = self._packet(body, order, obsolete=False)
            elif block_type == _PACKET_BLOCK:
                problem, frame = self._packet(body, order, obsolete=True)
            elif block_type == _SPB:
                problem, frame = self._simple_packet(body, order)
            elif block_type in NUMBERED_BLOCKS:
                self._frames += 1
            # any other block (name resolution, statistics, secrets...) is skipped
            if problem is not None:
                self._stop(problem, start)
                return
            if frame is not None:
                yield frame

    def _section_header(self, body: bytes, order: str) -> str | None:
        problem = section_header_problem(body, order)
        if problem is None:
            self._section = []
        return problem

    def _interface_description(self, body: bytes, order: str) -> str | None:
        interface = parse_interface_description(body, order)
        if isinstance(interface, str):
            return interface
        self._section.append(len(self.interfaces))
        self.interfaces.append(interface)
        return None

    def _packet(
        self, body: bytes, order: str, *, obsolete: bool
    ) -> tuple[str | None, Frame | None]:
        """EPB body: ``interface_id(4) ts_high(4) ts_low(4) captured_len(4) original_len(4)
        data options``; the obsolete Packet Block has ``interface_id(2) drops_count(2)``
        in place of the 4-byte interface id.
        """
        kind = "packet block" if obsolete else "enhanced packet block"
        if len(body) < 20:
            return f"truncated {kind}", None
        if obsolete:
            local, _drops, high, low, captured, original = struct.unpack(
                order + "HHIIII", body[:20]
            )
        else:
            local, high, low, captured, original = struct.unpack(order + "IIIII", body[:20])
        if captured > len(body) - 20 or captured > MAX_RECORD_LENGTH:
            return f"captured length {captured} exceeds its {kind}", None
        if local >= len(self._section):
            return f"{kind} names interface {local}, not described in its section", None
        number = self._section[local]
        interface = self.interfaces[number]
        timestamp = interface.timestamp_ns((high << 32) | low)
        if not TIMESTAMP_MIN_NS <= timestamp <= TIMESTAMP_MAX_NS:
            return f"timestamp out of range in {kind}", None
        self._last_timestamp = timestamp
        self._frames += 1
        frame = Frame(
            self._frames, timestamp, interface.link_type, number, original, body[20 : 20 + captured]
        )
        return None, frame

    def _simple_packet(self, body: bytes, order: str) -> tuple[str | None, Frame | None]:
        """SPB body: ``original_len(4) data``; interface 0 of the section, no timestamp.

        The captured length is the smallest of the original length, the interface's snaplen
        and the data area. Without a timestamp the frame takes the previous frame's (or 0).
        """
        if len(body) < 4:
            return "truncated simple packet block", None
        if not self._section:
            return "simple packet block before any interface description block", None
        (original,) = struct.unpack(order + "I", body[:4])
        number = self._section[0]
        interface = self.interfaces[number]
        captured = min(original, len(body) - 4)
        if interface.snaplen:
            captured = min(captured, interface.snaplen)
        self._frames += 1
        frame = Frame(
            self._frames,
            self._last_timestamp,
            interface.link_type,
            number,
            original,
            body[4 : 4 + captured],
        )
        return None, frame


def file_format(magic: bytes) -> Literal["pcap", "pcapng"]:
    """What a capture's first four bytes (gzip taken off) say it is; CaptureError naming what
    it looks like otherwise. Both engines open files through this one check."""
    if magic in PCAP_MAGIC:
        return "pcap"
    if magic == PCAPNG_MAGIC:
        return "pcapng"
    if magic in _MODIFIED_PCAP_MAGIC:
        raise CaptureError(
            "modified (Kuznetzov) pcap format is not supported; "
            "convert it with: editcap -F pcap IN OUT"
        )
    hint = next((n for m, n in _OTHER_FORMATS.items() if magic.startswith(m)), None)
    text = f"not a pcap or pcapng file (starts with 0x{magic.hex()})"
    raise CaptureError(text + (f"; it looks {hint}" if hint else ""))


def parse_pcap_header(header: bytes) -> Interface:
    """The pcap file header (draft-ietf-opsawg-pcap section 4), 24 bytes from its magic.

    ``magic(4) major(2) minor(2) reserved1(4) reserved2(4) snaplen(4) linktype+fcs(4)``;
    the link type is the low 16 bits of the last word (the rest is FCS information).
    """
    byte_order, units = PCAP_MAGIC[header[:4]]
    order = "<" if byte_order == "little" else ">"
    snaplen, link = struct.unpack(order + "II", header[16:24])
    return Interface(link & 0xFFFF, snaplen, units)


def section_byte_order(magic: bytes) -> Literal["little", "big"] | None:
    """The byte order a Section Header Block's byte-order magic (its body's first four bytes)
    sets for its section; None when the magic is wrong."""
    if struct.unpack("<I", magic)[0] == _BYTE_ORDER_MAGIC:
        return "little"
    if struct.unpack(">I", magic)[0] == _BYTE_ORDER_MAGIC:
        return "big"
    return None


def section_header_problem(body: bytes, order: str) -> str | None:
    """What is wrong with a Section Header Block body, or None when it starts a readable section.

    SHB body: ``byte_order_magic(4) major(2) minor(2) section_length(8) options``; version 1.
    """
    if len(body) < 16:
        return "truncated section header block"
    (major,) = struct.unpack(order + "H", body[4:6])
    if major != 1:
        return f"unsupported pcapng version {major} in section header block"
    return None


def parse_interface_description(body: bytes, order: str) -> Interface | str:
    """An Interface Description Block's body, or the damage text that stops the reading.

    IDB body: ``link_type(2) reserved(2) snaplen(4) options``. Options used: if_name (2,
    UTF-8), if_IPv4addr (4: address and netmask, 4 bytes each), if_IPv6addr (5: 16-byte
    address and a prefix length), if_tsresol (9, one byte: high bit clear = 10**-n seconds,
    set = 2**-n seconds), if_tsoffset (14, signed 64-bit seconds). An address option of the
    wrong size is ignored, as Wireshark does. An option whose length runs past the end of the
    block makes the block corrupt: the file is damaged from there on (Wireshark's pcapng reader
    fails the block the same way, "option length too long for remaining block"). Both engines
    read interfaces through this one function.
    """
    if len(body) < 8:
        return "truncated interface description block"
    link, snaplen = struct.unpack(order + "H2xI", body[:8])
    options = _options(body[8:], order)
    if options is None:
        return "corrupt options in interface description block"
    units, offset, name = 1_000_000, 0, None
    addresses: list[str] = []
    for code, value in options:
        if code == _IF_TSRESOL and len(value) >= 1:
            exponent = value[0] & 0x7F
            units = 2**exponent if value[0] & 0x80 else 10**exponent
        elif code == _IF_TSOFFSET and len(value) >= 8:
            (offset,) = struct.unpack(order + "q", value[:8])
        elif code == _IF_NAME:
            name = value.decode("utf-8", "replace").rstrip("\x00")
        elif code == _IF_IPV4ADDR and len(value) == 8:
            addresses.append(str(ipaddress.IPv4Address(value[:4])))
        elif code == _IF_IPV6ADDR and len(value) == 17:
            addresses.append(str(ipaddress.IPv6Address(value[:16])))
    return Interface(link, snaplen, units, offset, name, tuple(addresses))


def _options(data: bytes, order: str) -> list[tuple[int, bytes]] | None:
    """pcapng options: ``code(2) length(2) value padded to 4``, ended by code 0 or the block end."""
    options: list[tuple[int, bytes]] = []
    position = 0
    while len(data) - position >= 4:
        code, length = struct.unpack(order + "HH", data[position : position + 4])
        if code == _OPT_ENDOFOPT:
            break
        end = position + 4 + length
        if end > len(data):
            return None
        options.append((code, data[position + 4 : end]))
        position = end + (-length % 4)
    return options


def _read_up_to(fileobj: _Readable, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at end of file."""
    parts: list[bytes] = []
    missing = size
    while missing > 0:
        chunk = fileobj.read(missing)
        if not chunk:
            break
        parts.append(chunk)
        missing -= len(chunk)
    return b"".join(parts)


def open_capture(path: str | os.PathLike[str]) -> CaptureReader:
    """Open a capture file by path; use the reader as a context manager to close it.

    Every failure (missing, unreadable, a directory, not a capture) is a one-line
    :class:`CaptureError` that names the path.
    """
    try:
        fileobj: BinaryIO = open(path, "rb")  # noqa: SIM115 - the reader owns and closes it
    except OSError as exc:
        raise CaptureError(f"{os.fspath(path)}: cannot open: {exc.strerror or exc}") from None
    try:
        reader = CaptureReader(fileobj)
    except CaptureError as exc:
        fileobj.close()
        raise CaptureError(f"{os.fspath(path)}: {exc}") from None
    except OSError as exc:
        fileobj.close()
        raise CaptureError(f"{os.fspath(path)}: cannot read: {exc.strerror or exc}") from None
    reader._owned.insert(0, fileobj)
    return reader


__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NAMES",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "LINKTYPE_RAW_LEGACY",
    "LINKTYPE_RAW_OPENBSD",
    "MAX_BLOCK_OVERHEAD",
    "MAX_RECORD_LENGTH",
    "NUMBERED_BLOCKS",
    "PCAPNG_MAGIC",
    "PCAP_HEADER_LENGTH",
    "PCAP_MAGIC",
    "TIMESTAMP_MAX_NS",
    "TIMESTAMP_MIN_NS",
    "CaptureError",
    "CaptureReader",
    "Frame",
    "GzipStream",
    "Interface",
    "file_format",
    "open_capture",
    "parse_interface_description",
    "parse_pcap_header",
    "section_byte_order",
    "section_header_problem",
]
