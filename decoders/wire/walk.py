"""Record walkers: find where each packet record of a pcap/pcapng buffer starts.

The bulk path (:mod:`decoders.wire.bulk`) needs the offset, lengths and raw timestamp words
of every record before numpy can take over. Finding them is sequential, so there are two
implementations with one contract: :func:`py_walk_pcap` / :func:`py_walk_pcapng` here (the
reference) and the C versions in ``_walk.c`` (the fast ones, used when the extension was
built). A test asserts both fill identical arrays on every fixture.

Each walker fills the caller's preallocated arrays and returns ``(count, next_offset, status)``.
"""

from __future__ import annotations

import struct
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from decoders.wire.capture import MAX_BLOCK_OVERHEAD, NUMBERED_BLOCKS, PCAPNG_MAGIC

END: Final = 0
FULL: Final = 1
PARTIAL: Final = 2
SPECIAL: Final = 3
CORRUPT: Final = 4


_READ_BY_PYTHON: Final = (int.from_bytes(PCAPNG_MAGIC, "big"), 1)
"""Section Header and Interface Description blocks: the scalar reader's functions read them."""

NO_INTERFACE: Final = 0xFFFFFFFF
"""``iface`` value marking a pcapng Simple Packet Block (it has no interface id or timestamp)."""

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


class PcapWalker(Protocol):
    def __call__(
        self,
        buf: Any,
        start: int,
        big_endian: int,
        max_caplen: int,
        off: I64,
        caplen: U32,
        origlen: U32,
        ts_a: U32,
        ts_b: U32,
        /,
    ) -> tuple[int, int, int]: ...


class PcapngWalker(Protocol):
    def __call__(
        self,
        buf: Any,
        start: int,
        big_endian: int,
        max_caplen: int,
        off: I64,
        caplen: U32,
        origlen: U32,
        ts_a: U32,
        ts_b: U32,
        iface: U32,
        /,
    ) -> tuple[int, int, int]: ...


def py_walk_pcap(
    buf: Any,
    start: int,
    big_endian: int,
    max_caplen: int,
    off: I64,
    caplen: U32,
    origlen: U32,
    ts_a: U32,
    ts_b: U32,
    /,
) -> tuple[int, int, int]:
    """Walk classic pcap records: 16-byte header (ts_sec, ts_frac, incl_len, orig_len) + data."""
    header = struct.Struct(">IIII" if big_endian else "<IIII")
    unpack = header.unpack_from
    size = len(buf)
    capacity = min(len(off), len(caplen), len(origlen), len(ts_a), len(ts_b))
    pos = start
    count = 0
    while True:
        if pos == size:
            return count, pos, END
        if count >= capacity:
            return count, pos, FULL
        if size - pos < 16:
            return count, pos, PARTIAL
        seconds, fraction, included, original = unpack(buf, pos)
        if included > max_caplen:
            return count, pos, CORRUPT
        if included > size - pos - 16:
            return count, pos, PARTIAL
        ts_a[count] = seconds
        ts_b[count] = fraction
        caplen[count] = included
        origlen[count] = original
        off[count] = pos + 16
        count += 1
        pos += 16 + included


def py_walk_pcapng(
    buf: Any,
    start: int,
    big_endian: int,
    max_caplen: int,
    off: I64,
    caplen: U32,
    origlen: U32,
    ts_a: U32,
    ts_b: U32,
    iface: U32,
    /,
) -> tuple[int, int, int]:
    """Walk pcapng packet blocks (EPB, SPB, obsolete PB), skipping blocks of no interest.

    Stops at a Section Header or Interface Description block (status SPECIAL): those carry
    byte order, link type and timestamp resolution, which the Python reader owns; also at
    the blocks Wireshark numbers as frames, so frame numbers stay the same as Wireshark's.
    A block whose trailing length differs from its leading one, or longer than ``max_caplen``
    plus :data:`MAX_BLOCK_OVERHEAD`, is CORRUPT.
    """
    e = ">" if big_endian else "<"
    two = struct.Struct(e + "II").unpack_from
    epb = struct.Struct(e + "IIIII").unpack_from
    opb = struct.Struct(e + "HHIIII").unpack_from
    one = struct.Struct(e + "I").unpack_from
    size = len(buf)
    capacity = min(len(off), len(caplen), len(origlen), len(ts_a), len(ts_b), len(iface))
    pos = start
    count = 0
    while True:
        if pos == size:
            return count, pos, END
        if count >= capacity:
            return count, pos, FULL
        if size - pos < 12:
            return count, pos, PARTIAL
        block_type, total = two(buf, pos)
        if block_type in _READ_BY_PYTHON or block_type in NUMBERED_BLOCKS:
            return count, pos, SPECIAL
        if total < 12 or total & 3 or total > max_caplen + MAX_BLOCK_OVERHEAD:
            return count, pos, CORRUPT
        if total > size - pos:
            return count, pos, PARTIAL
        if one(buf, pos + total - 4)[0] != total:
            return count, pos, CORRUPT
        if block_type == 6:
            if total < 32:
                return count, pos, CORRUPT
            interface, high, low, included, original = epb(buf, pos + 8)
            if included > max_caplen or included > total - 32:
                return count, pos, CORRUPT
            iface[count], ts_a[count], ts_b[count] = interface, high, low
            caplen[count], origlen[count], off[count] = included, original, pos + 28
            count += 1
        elif block_type == 3:
            if total < 16:
                return count, pos, CORRUPT
            (original,) = one(buf, pos + 8)
            iface[count], ts_a[count], ts_b[count] = NO_INTERFACE, 0, 0
            caplen[count] = min(original, total - 16)
            origlen[count], off[count] = original, pos + 12
            count += 1
        elif block_type == 2:
            if total < 32:
                return count, pos, CORRUPT
            interface, _drops, high, low, included, original = opb(buf, pos + 8)
            if included > max_caplen or included > total - 32:
                return count, pos, CORRUPT
            iface[count], ts_a[count], ts_b[count] = interface, high, low
            caplen[count], origlen[count], off[count] = included, original, pos + 28
            count += 1
        pos += total


walk_pcap: PcapWalker
walk_pcapng: PcapngWalker
try:
    from decoders.wire import _walk  # type: ignore[attr-defined]

    walk_pcap = _walk.walk_pcap
    walk_pcapng = _walk.walk_pcapng
    ACCELERATED = True
except ImportError:  # built without a C compiler: same results, slower
    walk_pcap = py_walk_pcap
    walk_pcapng = py_walk_pcapng
    ACCELERATED = False
