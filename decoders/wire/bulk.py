"""The bulk path: a whole capture to a columnar packet table, with numpy.

One meaning, two speeds. The scalar path (``capture`` → ``net`` → ``demux`` → ``rtp``) decodes
one frame at a time into frozen dataclasses; this module computes the same fields for every
frame at once as numpy columns. It handles the common shapes vectorially (Ethernet with VLAN
tags, Linux SLL/SLL2, raw IP, BSD loopback; IPv4 without fragmentation, IPv6 without extension
headers; UDP; TURN ChannelData) and hands every other frame (TCP/ICE-TCP, IP fragments, IPv6
extension headers, TURN Send/Data indications, unknown link types) to the scalar path, in
frame order, so stateful reassembly still sees each connection whole. A property test asserts
both paths produce the same rows on every fixture.

Memory stays bounded: the file is read in fixed-size chunks into one reused buffer (reading
into fresh memory or faulting in an mmap costs more than the decoding here), and the output
columns grow by the packet, never by the file size.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

import numpy as np
import numpy.typing as npt

from decoders.errors import CaptureError
from decoders.wire import demux, walk
from decoders.wire.capture import (
    LINKTYPE_NAMES,
    MAX_BLOCK_OVERHEAD,
    MAX_RECORD_LENGTH,
    NUMBERED_BLOCKS,
    PCAP_HEADER_LENGTH,
    PCAP_MAGIC,
    PCAPNG_MAGIC,
    TIMESTAMP_MAX_NS,
    TIMESTAMP_MIN_NS,
    Frame,
    GzipStream,
    Interface,
    file_format,
    parse_interface_description,
    parse_pcap_header,
    section_byte_order,
    section_header_problem,
)
from decoders.wire.demux import PacketKind
from decoders.wire.net import LINK_HEADER_MINIMUM, Datagram
from decoders.wire.rowbuild import (
    COLUMNS,
    KIND_CODES,
    TUNNEL_CODES,
    VECTOR_COLUMNS,
    RowBuilder,
    Rows,
    format_address,
)

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

CHUNK_SIZE: Final = 4 << 20  # fits the L3 cache: the walk and the decode then read it warm
MAX_CAPLEN: Final = MAX_RECORD_LENGTH
RESERVE_ROWS_MAX: Final = 1 << 22
"""Rows reserved up front at most (~360 MiB of address space, touched only as rows come)."""
_MIN_ROW_RECORD: Final = 16 + 20 + 8  # pcap record header + IPv4 + UDP header
_SLACK: Final = 256  # zero bytes after the data so short over-reads in gathers stay in bounds


KIND_OTHER: Final = KIND_CODES.index(PacketKind.OTHER)
KIND_STUN: Final = KIND_CODES.index(PacketKind.STUN)
KIND_ZRTP: Final = KIND_CODES.index(PacketKind.ZRTP)
KIND_DTLS: Final = KIND_CODES.index(PacketKind.DTLS)
KIND_TURN: Final = KIND_CODES.index(PacketKind.TURN_CHANNEL)
KIND_RTP: Final = KIND_CODES.index(PacketKind.RTP)
KIND_RTCP: Final = KIND_CODES.index(PacketKind.RTCP)
TUNNEL_CHANNEL: Final = TUNNEL_CODES.index("turn-channel")


_C_COUNTERS: Final = ("malformed.turn", "malformed.rtp", "non-ip", "non-udp", "malformed.udp")
C_COLUMNS: Final = tuple((name, np.dtype(t).itemsize) for name, t in VECTOR_COLUMNS.items())
"""What the C decoder must write, as its ``COLUMNS`` attribute says: (name, item size) each."""
_DECODE: Callable[..., tuple[int, int]] | None = None
try:
    from decoders.wire import _walk  # type: ignore[attr-defined]

    # the C decoder says which columns it writes (its VECTOR_COLUMNS list): a build that
    # disagrees with the declaration (or predates it) is not used; its kind codes are its own
    # (kinds appended after them, as TLS records from the scalar TCP path, leave them valid)
    if getattr(_walk, "COLUMNS", None) == C_COLUMNS and KIND_CODES[:7] == (
        PacketKind.OTHER, PacketKind.STUN, PacketKind.ZRTP, PacketKind.DTLS,
        PacketKind.TURN_CHANNEL, PacketKind.RTP, PacketKind.RTCP,
    ):  # fmt: skip
        _DECODE = _walk.decode
except ImportError:  # no C compiler at install time: the numpy decoder does the same work
    pass
ACCELERATED: Final = _DECODE is not None


_LINK_MINIMUM: Final = np.full(max(LINK_HEADER_MINIMUM) + 2, -1, np.int64)
"""LINK_HEADER_MINIMUM as a lookup table; -1 (the last entry too) = a link type not known."""
for _link, _minimum in LINK_HEADER_MINIMUM.items():
    _LINK_MINIMUM[_link] = _minimum


@dataclass
class _Interface:
    link_type: int
    ns_per_tick_num: int  # timestamp tick = num / den nanoseconds (exact, reduced)
    ns_per_tick_den: int
    offset_s: int = 0
    snaplen: int = 0

    @classmethod
    def of(cls, interface: Interface) -> _Interface:
        """The scalar reader's interface (one parser of the IDB for both engines)."""
        tick = interface.ts_resolution_ns
        return cls(
            interface.link_type,
            tick.numerator,
            tick.denominator,
            interface.ts_offset_seconds,
            interface.snaplen,
        )


@dataclass(frozen=True, slots=True)
class _Records:
    """The packet records of one chunk, as the walker found them (arrays indexed alike)."""

    buf: bytearray
    frame: I64
    ts: I64
    off: I64
    caplen: I64
    links: I64
    iface: I64
    origlen: npt.NDArray[np.uint32]


@dataclass
class ScanResult:
    """What the bulk path found: the table, counters of what was skipped, and damage."""

    rows: Rows
    counters: Counter[str] = field(default_factory=Counter)
    damage: str | None = None
    frames: int = 0
    vectorised_frames: int = 0
    format: str = ""
    bytes_read: int = 0


def _be16(b: U8, idx: I64) -> npt.NDArray[np.int64]:
    return (b[idx].astype(np.int64) << 8) | b[idx + 1]


def _be32(b: U8, idx: I64) -> npt.NDArray[np.int64]:
    return (
        (b[idx].astype(np.int64) << 24)
        | (b[idx + 1].astype(np.int64) << 16)
        | (b[idx + 2].astype(np.int64) << 8)
        | b[idx + 3]
    )


def walk_extension(
    b: U8, start: I64, length: I64, two_byte: Mask, target: int
) -> tuple[Mask, I64, I64, Mask]:
    """Walk RFC 8285 header-extension blocks of many packets at once.

    ``start``/``length`` locate each packet's extension data (after the 4-byte profile/length
    word). Every element is checked, as ``rtp.RtpPacket.parse`` does: one-byte form, id 0 is a
    padding byte and id 15 ends the block; two-byte form, id 0 is a padding byte. Returns
    (found ``target``, its data offset, its data length, block broken).
    """
    n = len(start)
    found = np.zeros(n, dtype=np.bool_)
    broken = np.zeros(n, dtype=np.bool_)
    data_at = np.zeros(n, dtype=np.int64)
    data_len = np.zeros(n, dtype=np.int64)
    pos = start.copy()
    end = start + length
    active = np.nonzero(length > 0)[0]
    while active.size:
        p = pos[active]
        e = end[active]
        first = b[p].astype(np.int64)
        tb = two_byte[active]
        ident = np.where(tb, first, first >> 4)
        size = np.where(tb, b[p + 1].astype(np.int64), (first & 0x0F) + 1)
        header = np.where(tb, 2, 1)
        padding = ident == 0
        stop = (~tb) & (ident == 15)
        element_end = p + header + size
        fits = (element_end <= e) & ~(tb & (p + 1 >= e))
        element = ~padding & ~stop
        hit = element & fits & (ident == target) & ~found[active]
        if hit.any():
            idx = active[hit]
            found[idx] = True
            data_at[idx] = p[hit] + header[hit]
            data_len[idx] = size[hit]
        broken[active[element & ~fits]] = True
        advance = np.where(padding, p + 1, element_end)
        keep = ~stop & (padding | fits) & (advance < e)
        pos[active] = advance
        active = active[keep]
    return found, data_at, data_len, broken


class BulkScanner:
    """Scan a capture (open binary file) into a :class:`Rows` table.

    ``audio_level_id`` is the negotiated RFC 6464 extmap id; ``None`` leaves levels empty
    (the streams stage may infer the id and rescan).
    """

    def __init__(
        self,
        audio_level_id: int | None = None,
        *,
        srtp: bool = True,
        chunk_size: int = CHUNK_SIZE,
        progress: Callable[[int], None] | None = None,
        use_c: bool = True,
    ) -> None:
        self.audio_level_id = audio_level_id
        self.chunk_size = chunk_size
        self.progress = progress
        self.builder = RowBuilder(audio_level_id, srtp=srtp)
        self.use_c = use_c
        self._fallback: list[Frame] = []
        self.result = ScanResult(rows=self.builder.rows)

    # -- reading ---------------------------------------------------------------------
    def scan(self, fileobj: BinaryIO) -> ScanResult:
        head = fileobj.read(4)
        if len(head) == 0:
            raise CaptureError("empty file")
        if head[:2] == b"\x1f\x8b":
            stream = GzipStream(fileobj, head)
            head = stream.read(4)
            if not head and stream.damage is not None:
                raise CaptureError(f"corrupt gzip data ({stream.damage})")
            fileobj = stream  # type: ignore[assignment]  # read/readinto are all _scan uses
        if not isinstance(fileobj, GzipStream):
            try:
                size = os.fstat(fileobj.fileno()).st_size
            except (AttributeError, OSError, ValueError):  # not a real file (e.g. BytesIO)
                size = 0
            # a vector row needs a record header, IPv4 and UDP (44 bytes at least); the
            # reservation is capped so that the address space stays bounded whatever the
            # file claims (more rows grow the table by blocks)
            self.builder.reserve(min(size // _MIN_ROW_RECORD, RESERVE_ROWS_MAX))
        self.result.format = file_format(head)
        self._scan(fileobj, head, pcapng=self.result.format == "pcapng")
        self._drain_fallback(final=True)
        self.builder.finish()
        self.result.counters.update(self.builder.vector_counters)
        return self.result

    def _scan(self, fileobj: BinaryIO, head: bytes, *, pcapng: bool) -> None:
        buf = bytearray(self.chunk_size + _SLACK)
        view = memoryview(buf)
        buf[:4] = head
        filled = 4
        base = 0  # file offset of buf[0]
        pos = 0  # parse position within buf
        eof = False
        self._interfaces: list[_Interface] = []
        self._big = 0
        self._stop = False
        self._section_seen = False
        self._last_ts = 0
        self._compressed_damage: str | None = None
        cap = max(1024, self.chunk_size // 48)
        off = np.empty(cap, np.int64)
        caplen, origlen, ts_a, ts_b, iface = (np.empty(cap, np.uint32) for _ in range(5))
        header_done = False
        while True:
            if not eof and filled < self.chunk_size:
                got = fileobj.readinto(view[filled : self.chunk_size])  # type: ignore[attr-defined]
                if not got:
                    eof = True
                    if isinstance(fileobj, GzipStream) and fileobj.damage:
                        self._compressed_damage = fileobj.damage
                else:
                    filled += got
                    self.result.bytes_read += got
                    continue
            data = view[:filled]
            if not header_done:
                need = 24 if not pcapng else 12
                if filled < need and not eof:
                    continue
                if not pcapng:
                    if filled < PCAP_HEADER_LENGTH:
                        raise CaptureError("truncated pcap file header")
                    interface = parse_pcap_header(bytes(buf[:PCAP_HEADER_LENGTH]))
                    self._big = int(PCAP_MAGIC[bytes(buf[:4])][0] == "big")
                    self._interfaces = [_Interface.of(interface)]
                    pos = PCAP_HEADER_LENGTH
                header_done = True
            if pcapng:
                count, nxt, status = walk.walk_pcapng(
                    data, pos, self._big, MAX_CAPLEN, off, caplen, origlen, ts_a, ts_b, iface
                )
            else:
                count, nxt, status = walk.walk_pcap(
                    data, pos, self._big, MAX_CAPLEN, off, caplen, origlen, ts_a, ts_b
                )
            if count:
                self._decode(
                    buf, filled, base, count, off, caplen, origlen, ts_a, ts_b, iface, pcapng
                )
                if self._stop:
                    return
            pos = nxt
            if status == walk.SPECIAL:
                consumed = self._special_block(buf, filled, pos, base)
                if consumed is not None:
                    pos += consumed
                    continue
                if self.result.damage is not None:
                    return
                status = walk.PARTIAL  # the block is not complete in the buffer yet
            if status == walk.FULL:
                continue
            if status == walk.CORRUPT:
                self._damage(f"corrupt record length at byte {base + pos}")
                return
            if status in (walk.PARTIAL, walk.END):
                if eof:
                    if pos < filled:
                        self._damage(f"truncated record at byte {base + pos}")
                    elif self._compressed_damage:
                        self._damage(f"compressed data damaged ({self._compressed_damage})")
                    if self.progress is not None:
                        self.progress(self.result.bytes_read)
                    return
                # move the unparsed tail to the front and read more
                tail = filled - pos
                if tail >= self.chunk_size:
                    # a single record larger than the buffer: grow it
                    self.chunk_size *= 2
                    newbuf = bytearray(self.chunk_size + _SLACK)
                    newbuf[:tail] = buf[pos:filled]
                    buf, view = newbuf, memoryview(newbuf)
                else:
                    buf[:tail] = buf[pos:filled]
                base += pos
                filled = tail
                pos = 0
                if self.progress is not None:
                    self.progress(self.result.bytes_read)

    def _damage(self, message: str) -> None:
        if self.result.format == "pcapng" and not self._section_seen:
            # without the first section header nothing can be read: not a capture at all
            raise CaptureError(f"unreadable pcapng section header block: {message}")
        self.result.damage = f"{message} (after frame {self.result.frames})"

    def _special_block(self, buf: bytearray, filled: int, pos: int, base: int) -> int | None:
        """Read the pcapng block at ``pos`` that the walker left to Python.

        Section Header (byte order, new interface list), Interface Description (link type,
        timestamp resolution), or a block Wireshark numbers as a frame. Returns its length, or
        ``None`` when it is not complete in the buffer or is damaged (``damage`` is set then).
        """
        if filled - pos < 12:
            return None
        at = base + pos
        raw_type = bytes(buf[pos : pos + 4])
        if raw_type == PCAPNG_MAGIC:
            magic = bytes(buf[pos + 8 : pos + 12])
            byte_order = section_byte_order(magic)
            if byte_order is None:
                self._damage(
                    f"bad byte-order magic 0x{magic.hex()} in section header block at byte {at}"
                )
                return None
            self._big = int(byte_order == "big")
        e = ">" if self._big else "<"
        block_type, total = struct.unpack_from(e + "II", buf, pos)
        if total < 12 or total % 4 or total > MAX_CAPLEN + MAX_BLOCK_OVERHEAD:
            self._damage(f"corrupt block length at byte {at}")
            return None
        if total > filled - pos:
            return None
        if struct.unpack_from(e + "I", buf, pos + total - 4)[0] != total:
            self._damage(f"corrupt block length at byte {at}")
            return None
        if raw_type == PCAPNG_MAGIC:
            problem = section_header_problem(bytes(buf[pos + 8 : pos + total - 4]), e)
            if problem is not None:
                self._damage(f"{problem} at byte {at}")
                return None
            self._interfaces = []  # interface ids are per section
            self._section_seen = True
        elif block_type == 1:
            interface = parse_interface_description(bytes(buf[pos + 8 : pos + total - 4]), e)
            if isinstance(interface, str):
                self._damage(f"{interface} at byte {at}")
                return None
            self._interfaces.append(_Interface.of(interface))
        elif block_type in NUMBERED_BLOCKS:
            self.result.frames += 1
        return int(total)

    # -- decoding ----------------------------------------------------------------------
    def _decode(
        self,
        buf: bytearray,
        filled: int,
        base: int,
        count: int,
        off_all: I64,
        caplen_all: npt.NDArray[np.uint32],
        origlen_all: npt.NDArray[np.uint32],
        ts_a_all: npt.NDArray[np.uint32],
        ts_b_all: npt.NDArray[np.uint32],
        iface_all: npt.NDArray[np.uint32],
        pcapng: bool,
    ) -> None:
        if pcapng:
            # damage stops the reading at the first bad packet, as the scalar reader does: a
            # packet naming an interface the section never described, or a time outside int64
            # nanoseconds (Wireshark fails the first the same way)
            raw_if = iface_all[:count]
            unknown = (raw_if != walk.NO_INTERFACE) & (raw_if >= len(self._interfaces))
            if not self._interfaces:
                unknown = np.ones(count, np.bool_)
            stop_at, problem = count, ""
            if unknown.any():
                stop_at = int(np.argmax(unknown))
                problem = "packet block for an undescribed interface"
            iface = raw_if[:stop_at].astype(np.int64)
            spb = iface == walk.NO_INTERFACE
            iface[spb] = 0
            ticks = (ts_a_all[:stop_at].astype(np.uint64) << np.uint64(32)) | ts_b_all[:stop_at]
            ts, bad = _pcapng_times(ticks, iface, spb, self._interfaces)
            if bad < stop_at:
                stop_at, problem = bad, "timestamp out of range in packet block"
            if stop_at < count:
                where = base + int(off_all[stop_at]) - 28
                self._damage(f"{problem} at byte {where}")
                self._stop = True
                count = stop_at
                iface, spb, ts = iface[:count], spb[:count], ts[:count]
                if count == 0:
                    return
        first_frame = self.result.frames + 1
        self.result.frames += count
        b = np.frombuffer(buf, dtype=np.uint8)
        off = off_all[:count].copy()
        caplen = caplen_all[:count].astype(np.int64)
        frame = np.arange(first_frame, first_frame + count, dtype=np.int64)
        # timestamps, link types
        if pcapng:
            if spb.any():
                snap = np.array([i.snaplen for i in self._interfaces], dtype=np.int64)[iface]
                capped = spb & (snap > 0) & (caplen > snap)
                caplen[capped] = snap[capped]
            links = np.array([i.link_type for i in self._interfaces], dtype=np.int64)[iface]
            if spb.any():
                ts[spb] = _carry_forward(ts, spb, self._last_ts)
            self._last_ts = int(ts[-1])
        else:
            iface = np.zeros(count, dtype=np.int64)
            link = self._interfaces[0].link_type
            links = np.full(count, link, dtype=np.int64)
            tick = self._interfaces[0].ns_per_tick_num
            ts = (
                ts_a_all[:count].astype(np.int64) * 1_000_000_000
                + ts_b_all[:count].astype(np.int64) * tick
            )
        b[filled : filled + _SLACK] = 0
        records = _Records(buf, frame, ts, off, caplen, links, iface, origlen_all[:count])
        if _DECODE is not None and self.use_c:
            self._decode_c(records)
            return
        vec, fallback = _vector_frames(b, off, caplen, links)
        if fallback.any():
            self._queue_fallback(records, np.nonzero(fallback)[0])
        self.result.counters.update(vec.counters)
        sel = vec.keep
        self.result.vectorised_frames += int(sel.sum()) + int(vec.dropped)
        self._drain_fallback(final=False)
        self._add_vector(b, frame[sel], ts[sel], vec)

    def _add_vector(self, b: U8, frame: I64, timestamp_ns: I64, net: NetColumns) -> None:
        """Rows of the numpy decoder (:func:`vector_rows`) into the table; STUN Send/Data
        indications (rare) go to the scalar path, which unwraps them."""
        builder = self.builder
        part, stun_wrapped, malformed = vector_rows(
            b, net, builder.audio_level_id, srtp=builder.srtp
        )
        builder.vector_counters.update(malformed)
        if stun_wrapped.any():
            counters: Counter[str] = Counter()
            for i in np.nonzero(stun_wrapped)[0]:
                start = int(net.payload[i])
                datagram = Datagram(
                    frame=int(frame[i]),
                    timestamp_ns=int(timestamp_ns[i]),
                    src=format_address(int(net.src_hi[i]), int(net.src_lo[i])),
                    src_port=int(net.src_port[i]),
                    dst=format_address(int(net.dst_hi[i]), int(net.dst_lo[i])),
                    dst_port=int(net.dst_port[i]),
                    transport="udp",
                    payload=bytes(b[start : start + int(net.length[i])]),
                )
                builder.add_datagram(datagram, counters)
            builder.vector_counters.update(counters)
        part["frame"] = frame
        part["timestamp_ns"] = timestamp_ns
        part["src_hi"], part["src_lo"] = net.src_hi, net.src_lo
        part["dst_hi"], part["dst_lo"] = net.dst_hi, net.dst_lo
        builder.add_vector(part, ~stun_wrapped)

    def _decode_c(self, records: _Records) -> None:
        """The same decoding as ``_vector_frames`` + ``vector_rows``, in one C pass that
        writes rows straight into the packet table."""
        assert _DECODE is not None
        r = records
        count = len(r.off)
        block, at = self.builder.claim(count)
        fallback = np.empty(count, np.int64)
        tally = np.zeros(5, np.uint64)
        written, n_fallback = _DECODE(
            r.buf, r.off, r.caplen.astype(np.uint32), r.links.astype(np.int32), r.ts,
            int(r.frame[0]),
            tuple(block[name] for name in VECTOR_COLUMNS), at, fallback, tally,
            self.audio_level_id or 0, int(self.builder.srtp),
        )  # fmt: skip
        self.builder.commit(written)
        if any(tally):
            counters = self.result.counters
            for name, value in zip(_C_COUNTERS, tally.tolist(), strict=True):
                if value:
                    counters[name] += value
        self._queue_fallback(records, fallback[:n_fallback])
        self.result.vectorised_frames += count - n_fallback
        if n_fallback:
            self._drain_fallback(final=False)

    def _queue_fallback(self, r: _Records, picked: npt.NDArray[np.int64]) -> None:
        """Hand the records at ``picked`` (indices into this chunk) to the scalar path.

        Frames whose link type the scalar path does not know, or too short for their link
        header, are counted here as it would count them (``link.unsupported``,
        ``malformed.<link>``), without building each one: they can yield nothing, and a
        capture of millions of empty records must not cost a Python call apiece.
        """
        if not picked.size:
            return
        links = r.links[picked]
        minimum = _LINK_MINIMUM[np.minimum(links, _LINK_MINIMUM.size - 1)]
        unsupported = minimum < 0
        short = ~unsupported & (r.caplen[picked] < minimum)
        counters = self.result.counters
        if unsupported.any():
            counters["link.unsupported"] += int(unsupported.sum())
        if short.any():
            values, counts = np.unique(links[short], return_counts=True)
            for link, n in zip(values.tolist(), counts.tolist(), strict=True):
                counters[f"malformed.{LINKTYPE_NAMES[link]}"] += n
        for i in picked[~(unsupported | short)].tolist():
            o = int(r.off[i])
            self._fallback.append(
                Frame(
                    number=int(r.frame[i]),
                    timestamp_ns=int(r.ts[i]),
                    link_type=int(r.links[i]),
                    interface=int(r.iface[i]),
                    original_length=int(r.origlen[i]),
                    data=bytes(r.buf[o : o + int(r.caplen[i])]),
                )
            )

    def _drain_fallback(self, *, final: bool) -> None:
        # Fallback frames are decoded by the scalar path in frame order; rows are sorted by
        # frame number at the end, so interleaving with vector rows needs no care here.
        if self._fallback:
            frames, self._fallback = self._fallback, []
            self.builder.add_frames(frames, self.result.counters)
        if final:
            self.builder.flush_scalar(self.result.counters)


_SAFE: Final = 1 << 62


def _pcapng_times(
    ticks: npt.NDArray[np.uint64], iface: I64, spb: Mask, interfaces: list[_Interface]
) -> tuple[I64, int]:
    """Packet times in nanoseconds, exact: ``ticks * num // den + offset`` per interface, as
    :meth:`Interface.timestamp_ns` computes them. int64 arithmetic where it provably cannot
    overflow (every real capture); Python integers otherwise (an ``if_tsresol`` of 2**-63 or
    finer, a huge ``if_tsoffset``). Returns the times (0 for Simple Packet Blocks, which carry
    the previous time) and the index of the first time outside int64 nanoseconds (or n).
    """
    n = len(ticks)
    ts = np.zeros(n, np.int64)
    bad = np.zeros(n, np.bool_)
    for k, interface in enumerate(interfaces):
        sel = np.nonzero((iface == k) & ~spb)[0]
        if not sel.size:
            continue
        t = ticks[sel]
        num, den = interface.ns_per_tick_num, interface.ns_per_tick_den
        offset_ns = interface.offset_s * 1_000_000_000
        if int(t.max()) * num < _SAFE and den < _SAFE and abs(offset_ns) < _SAFE:
            ts[sel] = (t.astype(np.int64) * num) // den + offset_ns
            continue
        exact = [(tick * num) // den + offset_ns for tick in t.tolist()]
        fits = np.array([TIMESTAMP_MIN_NS <= v <= TIMESTAMP_MAX_NS for v in exact], np.bool_)
        ts[sel] = [v if ok else 0 for v, ok in zip(exact, fits.tolist(), strict=True)]
        bad[sel] = ~fits
    return ts, int(np.argmax(bad)) if bad.any() else n


def _carry_forward(ts: I64, missing: Mask, before: int) -> I64:
    """Simple Packet Blocks have no timestamp: give them the previous packet's (``before``, the
    last time of the previous chunk, at the start; 0 at the start of the file)."""
    idx = np.where(~missing, np.arange(len(ts)), -1)
    np.maximum.accumulate(idx, out=idx)
    out = np.where(idx >= 0, ts[np.maximum(idx, 0)], before)
    return out[missing]


@dataclass
class NetColumns:
    """Where each vectorised frame's datagram is, and what carries it."""

    keep: Mask
    src_hi: npt.NDArray[np.uint64]
    src_lo: npt.NDArray[np.uint64]
    dst_hi: npt.NDArray[np.uint64]
    dst_lo: npt.NDArray[np.uint64]
    src_port: I64
    dst_port: I64
    payload: I64  # offset of the UDP payload in the chunk buffer
    length: I64
    counters: Counter[str]
    dropped: int = 0


_ETH: Final = 1
_NULL: Final = 0
_LOOP: Final = 108
_RAW: Final = 101
_RAW_ALT: Final = 12
_IPV4: Final = 228
_IPV6: Final = 229
_SLL: Final = 113
_SLL2: Final = 276
_VECTOR_LINKS: Final = (_ETH, _NULL, _LOOP, _RAW, _RAW_ALT, _IPV4, _IPV6, _SLL, _SLL2)
_ET_IPV4: Final = 0x0800
_ET_IPV6: Final = 0x86DD
_VLAN_TYPES: Final = (0x8100, 0x88A8, 0x9100)


def _vector_frames(b: U8, off: I64, caplen: I64, links: I64) -> tuple[NetColumns, Mask]:
    """Link, IP and UDP layers for all frames; returns columns and the fallback mask."""
    n = len(off)
    counters: Counter[str] = Counter()
    end = off + caplen
    ethertype = np.full(n, -1, dtype=np.int64)
    net = off.copy()
    # Ethernet, with any number of 802.1Q / 802.1ad tags (bounded by the frame length)
    eth = links == _ETH
    if eth.any():
        idx = np.nonzero(eth & (caplen >= 14))[0]
        et = _be16(b, off[idx] + 12)
        pos = off[idx] + 14
        for _ in range(8):
            tagged = np.isin(et, _VLAN_TYPES) & (pos + 4 <= end[idx])
            if not tagged.any():
                break
            et = np.where(tagged, _be16(b, pos + 2), et)
            pos = np.where(tagged, pos + 4, pos)
        # a tag that does not fit, or more tags than we follow: the scalar path explains it
        et = np.where(np.isin(et, _VLAN_TYPES), -1, et)
        ethertype[idx] = et
        net[idx] = pos
    sll = links == _SLL
    if sll.any():
        idx = np.nonzero(sll & (caplen >= 16))[0]
        ethertype[idx] = _be16(b, off[idx] + 14)
        net[idx] = off[idx] + 16
    sll2 = links == _SLL2
    if sll2.any():
        idx = np.nonzero(sll2 & (caplen >= 20))[0]
        ethertype[idx] = _be16(b, off[idx])
        net[idx] = off[idx] + 20
    raw = np.isin(links, (_RAW, _RAW_ALT))
    if raw.any():
        idx = np.nonzero(raw & (caplen >= 1))[0]
        version = b[off[idx]] >> 4
        ethertype[idx] = np.where(version == 4, _ET_IPV4, np.where(version == 6, _ET_IPV6, -2))
    ethertype[(links == _IPV4) & (caplen >= 1)] = _ET_IPV4
    ethertype[(links == _IPV6) & (caplen >= 1)] = _ET_IPV6
    null = np.isin(links, (_NULL, _LOOP))
    if null.any():
        idx = np.nonzero(null & (caplen >= 4))[0]
        le = b[off[idx]].astype(np.int64) | (b[off[idx] + 1].astype(np.int64) << 8)
        le |= (b[off[idx] + 2].astype(np.int64) << 16) | (b[off[idx] + 3].astype(np.int64) << 24)
        be = _be32(b, off[idx])
        family = np.where(le < 0x10000, le, be)  # written in either byte order
        ethertype[idx] = np.where(
            family == 2, _ET_IPV4, np.where(np.isin(family, (24, 28, 30)), _ET_IPV6, -2)
        )
        net[idx] = off[idx] + 4
    known_link = np.isin(links, _VECTOR_LINKS)
    fallback = ~known_link | (ethertype == -1)  # unknown link, or too short: scalar decides
    non_ip = known_link & (ethertype >= 0) & (ethertype != _ET_IPV4) & (ethertype != _ET_IPV6)
    non_ip |= ethertype == -2
    counters["non-ip"] += int(non_ip.sum())

    src_hi = np.zeros(n, np.uint64)
    src_lo = np.zeros(n, np.uint64)
    dst_hi = np.zeros(n, np.uint64)
    dst_lo = np.zeros(n, np.uint64)
    transport_at = np.zeros(n, np.int64)
    proto = np.full(n, -1, np.int64)
    ip_end = end.copy()
    # IPv4: no options limit, fragments to the scalar path (it reassembles)
    v4 = np.nonzero(~fallback & (ethertype == _ET_IPV4))[0]
    if v4.size:
        p = net[v4]
        short = p + 20 > end[v4]
        vihl = b[p].astype(np.int64)
        ihl = (vihl & 0x0F) * 4
        total = _be16(b, p + 2)
        frag = _be16(b, p + 6) & 0x3FFF
        bad = short | ((vihl >> 4) != 4) | (ihl < 20) | (total < ihl) | (p + total > end[v4])
        odd = ~bad & (frag != 0)
        fallback[v4[bad | odd]] = True  # the scalar path counts and explains them
        good = v4[~bad & ~odd]
        g = ~bad & ~odd
        pg = p[g]
        proto[good] = b[pg + 9]
        transport_at[good] = pg + ihl[g]
        ip_end[good] = pg + total[g]
        mapped = np.uint64(0xFFFF << 32)
        src_lo[good] = _be32(b, pg + 12).astype(np.uint64) | mapped
        dst_lo[good] = _be32(b, pg + 16).astype(np.uint64) | mapped
    v6 = np.nonzero(~fallback & (ethertype == _ET_IPV6))[0]
    if v6.size:
        p = net[v6]
        short = (p + 40 > end[v6]) | ((b[p] >> 4) != 6)
        nh = b[p + 6].astype(np.int64)
        plen = _be16(b, p + 4)
        simple = ~short & np.isin(nh, (6, 17)) & (plen > 0) & (p + 40 + plen <= end[v6])
        fallback[v6[~simple]] = True  # extension headers, or broken: scalar path
        good = v6[simple]
        pg = p[simple]
        proto[good] = nh[simple]
        transport_at[good] = pg + 40
        ip_end[good] = pg + 40 + plen[simple]
        for col, at in ((src_hi, 8), (src_lo, 16), (dst_hi, 24), (dst_lo, 32)):
            acc = np.zeros(good.size, np.uint64)
            for k in range(8):
                acc = (acc << np.uint64(8)) | b[pg + at + k].astype(np.uint64)
            col[good] = acc
    # TCP goes to the scalar path: reassembly and framing (ICE-TCP, TURN over TCP, TLS records)
    # live once, in net._TcpStreams + framing.py, so both engines agree on TCP by construction
    fallback |= proto == 6
    udp = np.nonzero(~fallback & (proto == 17))[0]
    other_proto = ~fallback & (proto >= 0) & (proto != 17)
    counters["non-udp"] += int(other_proto.sum())
    keep = np.zeros(n, np.bool_)
    sport = np.zeros(n, np.int64)
    dport = np.zeros(n, np.int64)
    payload = np.zeros(n, np.int64)
    length = np.zeros(n, np.int64)
    if udp.size:
        u = transport_at[udp]
        short = u + 8 > ip_end[udp]
        ulen = _be16(b, u + 4)
        bad = short | (ulen < 8) | (u + ulen > ip_end[udp])
        counters["malformed.udp"] += int(bad.sum())
        good = udp[~bad]
        ug = u[~bad]
        keep[good] = True
        sport[good] = _be16(b, ug)
        dport[good] = _be16(b, ug + 2)
        payload[good] = ug + 8
        length[good] = ulen[~bad] - 8
    cols = NetColumns(
        keep=keep,
        src_hi=src_hi[keep],
        src_lo=src_lo[keep],
        dst_hi=dst_hi[keep],
        dst_lo=dst_lo[keep],
        src_port=sport[keep],
        dst_port=dport[keep],
        payload=payload[keep],
        length=length[keep],
        counters=counters,
        dropped=int((~keep & ~fallback).sum()),
    )
    return cols, fallback


def scan_file(
    fileobj: BinaryIO,
    audio_level_id: int | None = None,
    *,
    srtp: bool = True,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
    use_c: bool = True,
) -> ScanResult:
    """Scan an open capture file into a packet table (see :class:`Rows`).

    ``use_c=False`` forces the numpy decoder even where the C one was built (tests hold both
    to the scalar parsers).
    """
    scanner = BulkScanner(
        audio_level_id, srtp=srtp, chunk_size=chunk_size, progress=progress, use_c=use_c
    )
    return scanner.scan(fileobj)


def vector_rows(
    b: U8, net: NetColumns, audio_level_id: int | None, *, srtp: bool = True
) -> tuple[dict[str, npt.NDArray[Any]], Mask, Counter[str]]:
    """TURN ChannelData, RFC 7983 classification, RTP and RTCP headers for every datagram.

    Returns the columns (all but frame/timestamp/addresses), a mask of STUN Send/Data
    indications, which the caller hands to the scalar path for unwrapping, and the counts of
    malformed datagrams per layer.
    """
    n = len(net.payload)
    p = net.payload.copy()
    length = net.length.copy()
    out: dict[str, npt.NDArray[Any]] = {name: np.zeros(n, dtype) for name, dtype in COLUMNS.items()}
    out["src_port"] = net.src_port
    out["dst_port"] = net.dst_port
    out["extension_profile"] = np.full(n, -1, np.int32)
    out["audio_level"] = np.full(n, -1, np.int16)
    malformed = np.zeros(n, np.bool_)
    counters = Counter[str]()
    first = np.where(length > 0, b[p].astype(np.int64), 256).astype(np.int64)
    # TURN ChannelData (RFC 8656 section 12): channel number 0x4000-0x4FFF, then a length
    channel = (first >= demux.TURN_CHANNEL_RANGE.start) & (first < demux.TURN_CHANNEL_RANGE.stop)
    if channel.any():
        idx = np.nonzero(channel)[0]
        ok = length[idx] >= 4
        inner = np.where(ok, _be16(b, p[idx] + 2), 0)
        ok &= 4 + inner <= length[idx]
        good = idx[ok]
        malformed[idx[~ok]] = True
        counters["malformed.turn"] += int((~ok).sum())
        out["tunnel"][good] = TUNNEL_CHANNEL
        p[good] += 4
        length[good] = inner[ok]
        first[good] = np.where(length[good] > 0, b[p[good]].astype(np.int64), 256)
    kind = np.full(n, KIND_OTHER, np.uint8)
    second = b[p + 1].astype(np.int64)
    is_stun = _in(first, demux.STUN_RANGE) & (length >= demux.STUN_MIN_LENGTH)
    kind[is_stun] = KIND_STUN
    kind[_in(first, demux.ZRTP_RANGE) & (length >= demux.ZRTP_MIN_LENGTH)] = KIND_ZRTP
    kind[_in(first, demux.DTLS_RANGE) & (length >= demux.DTLS_MIN_LENGTH)] = KIND_DTLS
    turn_left = _in(first, demux.TURN_CHANNEL_RANGE) & (length >= demux.TURN_CHANNEL_MIN_LENGTH)
    kind[turn_left] = KIND_TURN
    media = _in(first, demux.RTP_RTCP_RANGE)
    is_rtcp = media & _in(second, demux.RTCP_PACKET_TYPES) & (length >= demux.RTCP_MIN_LENGTH)
    is_rtp = media & ~_in(second, demux.RTCP_PACKET_TYPES) & (length >= demux.RTP_MIN_LENGTH)
    kind[is_rtcp] = KIND_RTCP
    kind[is_rtp] = KIND_RTP
    out["kind"] = kind
    out["length"] = length
    # STUN Send (0x0016) / Data (0x0017) indications carry relayed datagrams
    stun_type = np.where(is_stun, _be16(b, p), 0)
    stun_wrapped = is_stun & ((stun_type == 0x0016) | (stun_type == 0x0017))

    # RTCP: the first header is in clear even in SRTCP
    r = np.nonzero(is_rtcp)[0]
    if r.size:
        out["payload_type"][r] = second[r]
        out["ssrc"][r] = _be32(b, p[r] + 4)

    # RTP (RFC 3550 section 5.1, RFC 8285 header extensions)
    r = np.nonzero(is_rtp)[0]
    if r.size:
        pr = p[r]
        lr = length[r]
        f = first[r]
        csrc = f & 0x0F
        header = 12 + 4 * csrc
        has_ext = (f & 0x10) != 0
        has_pad = ((f & 0x20) != 0) & (not srtp)  # SRTP encrypts the padding count
        bad = header > lr
        ext_at = header + 4
        bad |= has_ext & (ext_at > lr)
        safe_ext = np.where(has_ext & ~bad, pr + header, pr)
        profile = np.where(has_ext & ~bad, _be16(b, safe_ext), -1)
        ext_len = np.where(has_ext & ~bad, _be16(b, safe_ext + 2) * 4, 0)
        payload_start = np.where(has_ext, ext_at + ext_len, header)
        bad |= payload_start > lr
        pad = np.where(has_pad & ~bad, b[pr + np.maximum(lr, 1) - 1], 0).astype(np.int64)
        bad |= has_pad & ((pad == 0) | (payload_start + pad > lr))
        # header extension elements: validate every one, pick out the audio level
        one_byte = profile == 0xBEDE
        two_byte = (profile & 0xFFF0) == 0x1000
        walked = ~bad & has_ext & (one_byte | two_byte) & (ext_len > 0)
        level = np.full(r.size, -1, np.int64)
        voice = np.zeros(r.size, np.bool_)
        if walked.any():
            w = np.nonzero(walked)[0]
            found, data_at, data_len, broken = walk_extension(
                b, pr[w] + ext_at[w], ext_len[w], two_byte[w], audio_level_id or 0
            )
            bad[w[broken]] = True
            if audio_level_id is not None:
                bad[w[found & (data_len < 1)]] = True  # an audio level is one byte, not zero
                hit = found & (data_len >= 1) & ~broken
                value = b[data_at[hit]].astype(np.int64)
                level[w[hit]] = value & 0x7F
                voice[w[hit]] = (value & 0x80) != 0
        good = r[~bad]
        g = ~bad
        malformed[r[bad]] = True
        counters["malformed.rtp"] += int(bad.sum())
        pg = pr[g]
        out["marker"][good] = (second[good] & 0x80) != 0
        out["payload_type"][good] = second[good] & 0x7F
        out["sequence_number"][good] = _be16(b, pg + 2)
        out["rtp_timestamp"][good] = _be32(b, pg + 4)
        out["ssrc"][good] = _be32(b, pg + 8)
        out["csrc_count"][good] = csrc[g]
        out["header_length"][good] = payload_start[g]
        out["padding_length"][good] = pad[g]
        out["payload_length"][good] = lr[g] - payload_start[g] - pad[g]
        ext_good = g & has_ext
        out["extension_profile"][r[ext_good]] = profile[ext_good]
        out["extension_offset"][r[ext_good]] = ext_at[ext_good]
        out["extension_length"][r[ext_good]] = ext_len[ext_good]
        out["audio_level"][good] = level[g]
        out["voice"][good] = voice[g]
    out["malformed"] = malformed
    return out, stun_wrapped, counters


def _in(values: npt.NDArray[np.int64], span: range) -> Mask:
    return np.asarray((values >= span.start) & (values < span.stop))


__all__ = ["BulkScanner", "ScanResult", "scan_file", "vector_rows", "walk_extension"]
