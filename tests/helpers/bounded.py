"""Run the CLI under an address-space limit, and write the hostile inputs that must stay in it.

Memory bounds are checked by what the kernel allows (``RLIMIT_AS``), never by timing: a run
that tries to hold a bomb in memory fails with MemoryError instead of passing slowly.
"""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GIB = 1 << 30


def run_bounded(
    *args: str, limit: int = GIB, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``mutecheck ARGS`` in a subprocess whose address space may not exceed ``limit`` bytes."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "decoders.cli", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        preexec_fn=cap,
        timeout=timeout,
        check=False,
    )


def write_gzip_zero_records(path: Path, size: int, *, link_type: int = 1) -> None:
    """A gzip pcap: a file header, then ``size`` zero bytes (16-byte records of zero length,
    a million of them per ~16 kB compressed)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, link_type)
    zeros = bytes(1 << 24)
    with path.open("wb") as out:
        out.write(packer.compress(header))
        left = size
        while left > 0:
            out.write(packer.compress(zeros[: min(left, len(zeros))]))
            left -= len(zeros)
        out.write(packer.flush())
