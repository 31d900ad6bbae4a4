"""The packet table: one row per datagram, as numpy columns, built by either path.

:class:`RowBuilder` accepts rows two ways: vectorised (from :mod:`decoders.wire.bulk`, whole
chunks at once) and scalar (frames through :class:`~decoders.wire.net.Unwrapper`, then
:func:`~decoders.wire.demux.open_payload`: TURN unwrapping, classification, RTP/RTCP headers).
:func:`datagram_row` is the scalar definition of every column; the vectorised code in
:func:`decoders.wire.bulk.vector_rows` and the C decoder must agree with it on every packet
(tests/wire/test_bulk.py checks). :data:`COLUMNS` is the table's one declaration: every path
builds its rows from it, and tests/wire/test_rowbuild.py names any place that disagrees.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Final

import numpy as np
import numpy.typing as npt

from decoders.errors import MalformedPacket
from decoders.wire import demux, framing, rtp, tlshello
from decoders.wire.capture import CaptureReader, Frame
from decoders.wire.demux import PacketKind
from decoders.wire.net import Datagram, Unwrapper

KIND_CODES: Final[tuple[PacketKind, ...]] = (
    PacketKind.OTHER,
    PacketKind.STUN,
    PacketKind.ZRTP,
    PacketKind.DTLS,
    PacketKind.TURN_CHANNEL,
    PacketKind.RTP,
    PacketKind.RTCP,
    PacketKind.TLS,  # appended: the C decoder writes the codes above by position
)
TUNNEL_CODES: Final[tuple[str | None, ...]] = (
    None,
    "turn-channel",
    "turn-send",
    "turn-data",
    "tls",
)
TRANSPORT_CODES: Final = ("udp", "tcp")

#: Column name -> dtype. ``payload_type``/``ssrc`` hold the RTCP packet type and sender SSRC
#: on RTCP rows; on TLS rows ``payload_type`` is the record's content type (23: application
#: data) and ``length`` its body length (the 5-byte record header left out).
#: ``header_length`` is where the RTP payload starts inside the datagram.
COLUMNS: Final[dict[str, type[np.generic]]] = {
    "frame": np.int64,
    "timestamp_ns": np.int64,
    "src": np.int32,
    "src_port": np.uint16,
    "dst": np.int32,
    "dst_port": np.uint16,
    "transport": np.uint8,
    "tunnel": np.uint8,
    "kind": np.uint8,
    "malformed": np.bool_,
    "length": np.uint32,
    "payload_type": np.uint8,
    "marker": np.bool_,
    "sequence_number": np.uint16,
    "rtp_timestamp": np.uint32,
    "ssrc": np.uint32,
    "csrc_count": np.uint8,
    "header_length": np.uint16,
    "payload_length": np.uint32,
    "padding_length": np.uint8,
    "extension_profile": np.int32,
    "extension_offset": np.uint16,
    "extension_length": np.uint16,
    "audio_level": np.int16,
    "voice": np.bool_,
}


def vector_columns(columns: Mapping[str, type[np.generic]]) -> dict[str, type[np.generic]]:
    """What the vectorised decoders write per row (the C decoder in this order), from the
    declaration: addresses as 128-bit halves (IPv4 as ::ffff:a.b.c.d) until
    :meth:`RowBuilder.finish` maps them to ids; no transport (every vectorised row is UDP)."""
    halves = {name: np.uint64 for name in ("src_hi", "src_lo", "dst_hi", "dst_lo")}
    return {
        "frame": columns["frame"],
        "timestamp_ns": columns["timestamp_ns"],
        **halves,
        **{
            name: dtype
            for name, dtype in columns.items()
            if name not in ("frame", "timestamp_ns", "src", "dst", "transport")
        },
    }


VECTOR_COLUMNS: Final = vector_columns(COLUMNS)
BLOCK_ROWS: Final = 1 << 20
SPILL_ROWS: Final = 1 << 22
"""Rows a table keeps in memory at most (~270 MB); a longer capture's table goes to disk."""
SCALAR_ROWS: Final = 1 << 16
"""Rows of the scalar path gathered as dicts before they become a chunk of columns."""
SPILL_DIR_VARIABLE: Final = "MUTECHECK_SPILL_DIR"
"""Where a spilled table goes (default: the temporary directory, ``$TMPDIR`` or /tmp)."""


@dataclass
class Rows:
    """The packet table. ``columns`` maps each name of :data:`COLUMNS` to an array."""

    columns: dict[str, npt.NDArray[Any]]
    addresses: list[str]
    tls_hellos: dict[tuple[str, int, str, int], tlshello.TlsHello] = field(default_factory=dict)
    """The first TLS hello each TCP direction sent, by (src, src port, dst, dst port): what the
    clear part of a TLS handshake says (ALPN, version, cipher suite). Filled by the scalar TCP
    path, which every engine but tshark uses for TCP."""

    def __len__(self) -> int:
        return len(self.columns["frame"])

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self.columns[name]

    def kind_mask(self, kind: PacketKind) -> npt.NDArray[np.bool_]:
        return np.asarray(self.columns["kind"] == KIND_CODES.index(kind))

    def row(self, i: int) -> dict[str, object]:
        out: dict[str, object] = {name: col[i].item() for name, col in self.columns.items()}
        out["src"] = self.addresses[int(self.columns["src"][i])]
        out["dst"] = self.addresses[int(self.columns["dst"][i])]
        out["kind"] = str(KIND_CODES[int(self.columns["kind"][i])])
        out["tunnel"] = TUNNEL_CODES[int(self.columns["tunnel"][i])]
        out["transport"] = TRANSPORT_CODES[int(self.columns["transport"][i])]
        return out


def empty_rows() -> Rows:
    return Rows({name: np.zeros(0, dtype) for name, dtype in COLUMNS.items()}, [])


def datagram_row(
    datagram: Datagram, audio_level_id: int | None, counters: Counter[str], *, srtp: bool = True
) -> dict[str, int | bool | str | None]:
    """The scalar definition of one row (addresses still as text).

    With ``srtp`` (WebRTC media always is) the RTP padding count is not read: SRTP encrypts
    it, and the packet's last byte belongs to the auth tag.
    """
    row: dict[str, int | bool | str | None] = {name: 0 for name in COLUMNS}
    row.update(
        frame=datagram.frame,
        timestamp_ns=datagram.timestamp_ns,
        src=datagram.src,
        dst=datagram.dst,
        src_port=datagram.src_port,
        dst_port=datagram.dst_port,
        transport=TRANSPORT_CODES.index(datagram.transport),
        extension_profile=-1,
        audio_level=-1,
        malformed=False,
        voice=False,
        marker=False,
    )
    payload = datagram.payload
    tunnel: str | None = datagram.tunnel
    if tunnel == "tls":  # encrypted: never classified by its first byte (0x17 looks like DTLS)
        row.update(
            tunnel=TUNNEL_CODES.index(tunnel),
            kind=KIND_CODES.index(PacketKind.TLS),
            length=len(payload) - framing.TLS_HEADER_LENGTH,
            payload_type=payload[0],
        )
        return row
    opened = demux.open_payload(payload, parse=_ROW_HEADERS, srtp=srtp)
    if opened.turn_error is not None:
        counters["malformed.turn"] += 1
        row["malformed"] = True
    row["tunnel"] = TUNNEL_CODES.index(opened.tunnel or tunnel)
    row["length"] = len(opened.payload)
    kind = opened.kind
    row["kind"] = KIND_CODES.index(kind)
    if kind is PacketKind.RTP:
        packet = opened.rtp
        try:
            level = (
                rtp.audio_level(packet, audio_level_id)
                if packet is not None and audio_level_id
                else None
            )
        except MalformedPacket:
            packet = None
        if packet is None:
            counters["malformed.rtp"] += 1
            row["malformed"] = True
            return row
        row.update(
            payload_type=packet.payload_type,
            marker=packet.marker,
            sequence_number=packet.sequence_number,
            rtp_timestamp=packet.timestamp,
            ssrc=packet.ssrc,
            csrc_count=len(packet.csrcs),
            header_length=packet.payload_offset,
            payload_length=packet.payload_length,
            padding_length=packet.padding_length,
        )
        if packet.extension_profile is not None and packet.extension_offset is not None:
            row["extension_profile"] = packet.extension_profile
            row["extension_offset"] = packet.extension_offset
            row["extension_length"] = packet.payload_offset - packet.extension_offset
        if level is not None:
            row["audio_level"] = level.level
            row["voice"] = level.voice
    elif kind is PacketKind.RTCP:
        if opened.rtcp is None:
            counters["malformed.rtcp"] += 1
            row["malformed"] = True
            return row
        row["payload_type"] = opened.rtcp.packet_type
        row["ssrc"] = opened.rtcp.ssrc
    return row


_ROW_HEADERS: Final = (PacketKind.RTP, PacketKind.RTCP)


class TableChunks:
    """The finished rows of a packet table, chunk by chunk, in arrival order.

    Chunks stay in memory until they hold more than ``spill_rows`` rows; from then on every
    chunk is appended to one file per column (created unlinked in :func:`spill_dir`, so
    nothing is left behind) and :meth:`columns` maps those files back read-only: the table
    then lives in the page cache, which the kernel can drop and read again, not in the
    process's own memory. Either way the columns hold the same values.
    """

    def __init__(self, spill_rows: int | None = None) -> None:
        self.spill_rows = SPILL_ROWS if spill_rows is None else spill_rows
        self.rows = 0
        self._parts: list[dict[str, npt.NDArray[Any]]] = []
        self._files: dict[str, IO[bytes]] | None = None
        self.spilled = False

    def add(self, part: dict[str, npt.NDArray[Any]]) -> None:
        """One chunk (every name of :data:`COLUMNS`); the caller lets go of it."""
        n = len(part["frame"])
        if n == 0:
            return
        self.rows += n
        if self._files is None and self.rows > self.spill_rows:
            self._files = {name: _spill_file() for name in COLUMNS}
            self.spilled = True
            parts, self._parts = self._parts, []
            for earlier in parts:
                self._write(earlier)
        if self._files is not None:
            self._write(part)
        else:
            self._parts.append(part)

    def _write(self, part: dict[str, npt.NDArray[Any]]) -> None:
        assert self._files is not None
        for name, dtype in COLUMNS.items():
            try:
                self._files[name].write(np.ascontiguousarray(part.pop(name), dtype).data)
            except OSError as error:
                raise _spill_error(error) from error

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """One array per column; the chunks are let go of column by column (the table is
        never held twice)."""
        if self._files is not None:
            files, self._files = self._files, None
            return {
                name: _mapped(files.pop(name), dtype, self.rows) for name, dtype in COLUMNS.items()
            }
        parts, self._parts = self._parts, []
        if not parts:
            return {name: np.zeros(0, dtype) for name, dtype in COLUMNS.items()}
        if len(parts) == 1:
            return {
                name: parts[0][name].astype(dtype, copy=False) for name, dtype in COLUMNS.items()
            }
        out: dict[str, npt.NDArray[Any]] = {}
        for name, dtype in COLUMNS.items():
            out[name] = np.concatenate([part.pop(name) for part in parts]).astype(dtype, copy=False)
        return out

    @staticmethod
    def reorder(columns: dict[str, npt.NDArray[Any]], order: npt.NDArray[np.intp]) -> None:
        """Put every column in ``order``, one column at a time; a mapped column is gathered
        into a new file chunk by chunk."""
        for name in list(columns):
            column = columns.pop(name)
            if not isinstance(column, np.memmap):
                columns[name] = column[order]
                continue
            out = _spill_file()
            for at in range(0, len(order), BLOCK_ROWS):
                out.write(np.ascontiguousarray(column[order[at : at + BLOCK_ROWS]]).data)
            columns[name] = _mapped(out, column.dtype, len(order))


def spill_dir() -> str:
    """Where spilled tables go: ``$MUTECHECK_SPILL_DIR``, else the temporary directory."""
    return os.environ.get(SPILL_DIR_VARIABLE) or tempfile.gettempdir()


def _spill_file() -> IO[bytes]:
    try:
        return tempfile.TemporaryFile(dir=spill_dir())  # unlinked at once on Linux
    except OSError as error:
        raise _spill_error(error) from error


def _spill_error(error: OSError) -> OSError:
    """The error, naming the folder and how to choose another (the CLI prints one line)."""
    reason = f"{error.strerror or error}: cannot keep the packet table of a long capture there"
    return OSError(
        error.errno, f"{reason} (set {SPILL_DIR_VARIABLE} to another folder)", spill_dir()
    )


def _mapped(fileobj: IO[bytes], dtype: Any, rows: int) -> npt.NDArray[Any]:
    """The column written to ``fileobj``, mapped read-only; the file is closed (the mapping
    keeps it until the column is let go of)."""
    fileobj.flush()
    with fileobj:
        return np.memmap(fileobj, dtype=dtype, mode="r", shape=(rows,))


class RowBuilder:
    """Accumulates rows from both paths; :meth:`finish` sorts them into frame order.

    Vectorised rows are written into blocks of :data:`VECTOR_COLUMNS`; a full block becomes a
    chunk of the final columns (addresses mapped to ids) at once, kept by
    :class:`TableChunks` (in memory, or on disk past ``spill_rows``).
    """

    def __init__(
        self, audio_level_id: int | None, *, srtp: bool = True, spill_rows: int | None = None
    ) -> None:
        self.audio_level_id = audio_level_id
        self.srtp = srtp
        self._block: dict[str, npt.NDArray[Any]] | None = None
        self._filled = 0
        self._chunks = TableChunks(spill_rows)
        self._scalar: list[dict[str, int | bool | str | None]] = []
        self._unwrapper = Unwrapper(tls_records=True)
        self._address_ids: dict[str, int] = {}
        self._pair_ids: dict[tuple[int, int], int] = {}
        self._key_pairs: dict[int, tuple[int, int]] = {}
        self._known_keys = np.zeros(0, np.uint64)
        self._known_ids = np.zeros(0, np.int32)
        self.rows = empty_rows()
        self.vector_counters: Counter[str] = Counter()

    @property
    def spilled(self) -> bool:
        """Whether the table went to disk (see :class:`TableChunks`)."""
        return self._chunks.spilled

    # -- addresses ---------------------------------------------------------------------
    def _address(self, text: str) -> int:
        ident = self._address_ids.get(text)
        if ident is None:
            ident = self._address_ids[text] = len(self.rows.addresses)
            self.rows.addresses.append(text)
        return ident

    def _address_pairs(
        self, hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]
    ) -> npt.NDArray[np.int32]:
        """Map 128-bit addresses (IPv4 as ::ffff:a.b.c.d) to address-table ids.

        A capture holds few addresses: every packet is looked up by binary search in the
        sorted keys seen so far; unseen keys are learnt from a sample of the misses first, so
        the sort behind ``np.unique`` only ever runs on a few thousand values.
        """
        if len(hi) == 0:
            return np.zeros(0, np.int32)
        keys = lo ^ (hi * np.uint64(0x9E3779B97F4A7C15))
        for attempt in range(2):
            where = np.searchsorted(self._known_keys, keys)
            if len(self._known_keys):
                np.minimum(where, len(self._known_keys) - 1, out=where)
                hit = self._known_keys[where] == keys
                if bool(hit.all()):
                    break
                miss = np.nonzero(~hit)[0]
            else:
                miss = np.arange(len(keys))
            if attempt == 0:
                miss = miss[:: max(1, len(miss) // 4096)]
            _, first = np.unique(keys[miss], return_index=True)
            for i in miss[first]:
                pair = (int(hi[i]), int(lo[i]))
                self._pair_ids[pair] = self._address(format_address(*pair))
                self._key_pairs[int(keys[i])] = pair  # a 64-bit collision is not handled
            order = sorted(self._key_pairs)
            self._known_keys = np.array(order, np.uint64)
            self._known_ids = np.array(
                [self._pair_ids[self._key_pairs[k]] for k in order], np.int32
            )
        else:
            where = np.searchsorted(self._known_keys, keys)
        ids: npt.NDArray[np.int32] = self._known_ids[where]
        return ids

    # -- scalar ------------------------------------------------------------------------
    def add_frames(self, frames: Iterable[Frame], counters: Counter[str]) -> None:
        for frame in frames:
            for datagram in self._unwrapper.feed(frame):
                self.add_datagram(datagram, counters)

    def add_datagram(self, datagram: Datagram, counters: Counter[str]) -> None:
        self._add_scalar(datagram_row(datagram, self.audio_level_id, counters, srtp=self.srtp))
        if datagram.tunnel == "tls" and datagram.payload[:1] == b"\x16":
            self._tls_hello(datagram, counters)

    def _add_scalar(self, row: dict[str, int | bool | str | None]) -> None:
        """A scalar row; every :data:`SCALAR_ROWS` of them become a chunk of columns (a row
        as a dict costs ~1.2 KB: a long call relayed over TCP must not keep them)."""
        self._scalar.append(row)
        if len(self._scalar) >= SCALAR_ROWS:
            part = self._scalar_part()
            if part is not None:
                self._chunks.add(part)

    def _tls_hello(self, datagram: Datagram, counters: Counter[str]) -> None:
        """Keep the first hello of each direction (later handshake records are encrypted)."""
        key = (datagram.src, datagram.src_port, datagram.dst, datagram.dst_port)
        if key in self.rows.tls_hellos:
            return
        try:
            hello = tlshello.parse_hello(datagram.payload[framing.TLS_HEADER_LENGTH :])
        except MalformedPacket:
            counters["malformed.tls_hello"] += 1
            return
        if hello is not None:
            self.rows.tls_hellos[key] = hello

    def add_row(self, row: dict[str, int | bool | str | None]) -> None:
        """A row computed elsewhere (the tshark engine); missing columns are zero."""
        self._add_scalar({name: row.get(name, 0) for name in COLUMNS})

    def flush_scalar(self, counters: Counter[str]) -> None:
        for datagram in self._unwrapper.flush():
            self.add_datagram(datagram, counters)
        counters.update(self._unwrapper.counters)
        self._unwrapper.counters.clear()

    def _scalar_part(self) -> dict[str, npt.NDArray[Any]] | None:
        if not self._scalar:
            return None
        rows, self._scalar = self._scalar, []
        part: dict[str, npt.NDArray[Any]] = {}
        for name, dtype in COLUMNS.items():
            if name in ("src", "dst"):
                part[name] = np.array([self._address(str(r[name])) for r in rows], dtype)
            else:
                part[name] = np.array([r[name] for r in rows], dtype)
        return part

    # -- vectorised --------------------------------------------------------------------
    def add_vector(self, part: dict[str, npt.NDArray[Any]], keep: npt.NDArray[np.bool_]) -> None:
        """Rows of a vectorised decoder (all of :data:`VECTOR_COLUMNS`): those of ``keep``."""
        n = int(keep.sum())
        block, at = self.claim(n)
        for name in VECTOR_COLUMNS:
            block[name][at : at + n] = part[name][keep]
        self.commit(n)

    def reserve(self, rows: int) -> None:
        """Promise at most ``rows`` vectorised rows: columns are allocated once, untouched.

        The pages of an ``np.empty`` array cost nothing until written, so a generous bound
        (from the file size) spares copying per-chunk parts together at the end.
        """
        if self._block is None and rows > 0:
            self._block = _new_block(rows)

    def claim(self, rows: int) -> tuple[dict[str, npt.NDArray[Any]], int]:
        """Room for ``rows`` more vectorised rows: (columns, first free index) to write into."""
        if self._block is None or self._filled + rows > len(self._block["frame"]):
            self._finish_block()
            self._block = _new_block(max(rows, BLOCK_ROWS))
        return self._block, self._filled

    def commit(self, rows: int) -> None:
        self._filled += rows

    def _finish_block(self) -> None:
        """The current block's rows become a chunk of the final columns; the block goes."""
        raw, filled = self._block, self._filled
        self._block, self._filled = None, 0
        if raw is None or filled == 0:
            return
        part = {name: raw[name][:filled] for name in COLUMNS if name in raw}
        part["src"] = self._address_pairs(raw["src_hi"][:filled], raw["src_lo"][:filled])
        part["dst"] = self._address_pairs(raw["dst_hi"][:filled], raw["dst_lo"][:filled])
        part["transport"] = np.zeros(filled, np.uint8)
        del raw
        self._chunks.add(part)

    def finish(self) -> Rows:
        self._finish_block()
        scalar = self._scalar_part()
        if scalar is not None:
            self._chunks.add(scalar)
        if self._chunks.rows:
            columns = self._chunks.columns()
            frames = columns["frame"]
            if not bool(np.all(frames[1:] >= frames[:-1])):
                self._chunks.reorder(columns, np.argsort(frames, kind="stable"))
            self.rows.columns = columns
        return self.rows


def _new_block(rows: int) -> dict[str, npt.NDArray[Any]]:
    return {name: np.empty(rows, dtype) for name, dtype in VECTOR_COLUMNS.items()}


def format_address(hi: int, lo: int) -> str:
    """A 128-bit address of the vectorised columns (IPv4 as ::ffff:a.b.c.d) as text."""
    import ipaddress

    if hi == 0 and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def scan_scalar(
    fileobj: BinaryIO, audio_level_id: int | None, *, srtp: bool = True
) -> tuple[Rows, Counter[str], str | None, int]:
    """The whole capture through the scalar path: (rows, skipped counters, damage, frames)."""
    reader = CaptureReader(fileobj)
    builder = RowBuilder(audio_level_id, srtp=srtp)
    counters: Counter[str] = Counter()
    frames = 0
    for frame in reader:
        frames = frame.number  # Wireshark's numbering: some pcapng blocks count as frames
        builder.add_frames((frame,), counters)
    builder.flush_scalar(counters)
    return builder.finish(), counters, reader.damage, frames
