"""The record walkers: the C and the Python one fill identical arrays and stop alike."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.wire import walk

PCAPNG_START = 0  # filled per file: after the SHB and first IDB


def arrays(ng: bool, n: int = 100_000) -> list[Any]:
    return [np.zeros(n, np.int64)] + [np.zeros(n, np.uint32) for _ in range(5 if ng else 4)]


def run(fn: Any, data: bytes, start: int, ng: bool, n: int = 100_000) -> tuple[Any, ...]:
    out = arrays(ng, n)
    result = fn(data, start, 0, 1 << 20, *out)
    count = result[0]
    return (tuple(result), *(a[:count].tolist() for a in out))


def skip_to_packets(ng: bytes) -> int:
    """Offset after the Section Header and Interface Description blocks."""
    pos = 0
    while pos + 8 <= len(ng):
        kind, total = struct.unpack_from("<II", ng, pos)
        if kind not in (0x0A0D0D0A, 1):
            return pos
        pos += total
    return pos


needs_c = pytest.mark.skipif(not walk.ACCELERATED, reason="C walker not built")


@needs_c
def test_agree_on_synthetic_pcap(make_synthetic: Any) -> None:
    pcap, truth = make_synthetic(packets=700)
    c = run(walk.walk_pcap, pcap, 24, False)
    p = run(walk.py_walk_pcap, pcap, 24, False)
    assert c == p
    assert c[0] == (truth.frames, len(pcap), walk.END)


@needs_c
def test_agree_on_real_pcapng(session_dir: Path) -> None:
    ng = (session_dir / "capture.pcapng").read_bytes()
    start = skip_to_packets(ng)
    for cut in (len(ng), len(ng) - 5, len(ng) - 40, start + 100):
        c = run(walk.walk_pcapng, ng[:cut], start, True)
        p = run(walk.py_walk_pcapng, ng[:cut], start, True)
        assert c == p
    status = run(walk.walk_pcapng, ng, start, True)[0]
    assert status[2] == walk.END


@needs_c
def test_capacity_and_special_blocks(make_synthetic: Any) -> None:
    pcap, _ = make_synthetic(packets=300)
    assert run(walk.walk_pcap, pcap, 24, False, n=10)[0][2] == walk.FULL
    assert run(walk.walk_pcap, pcap, 24, False, n=10) == run(
        walk.py_walk_pcap, pcap, 24, False, n=10
    )
    ng, _ = make_synthetic(packets=300, format="pcapng")
    # starting on the section header: the Python reader must take over
    assert run(walk.walk_pcapng, ng, 0, True)[0] == (0, 0, walk.SPECIAL)
    assert run(walk.py_walk_pcapng, ng, 0, True)[0] == (0, 0, walk.SPECIAL)


@needs_c
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.booleans(), st.booleans())
def test_agree_on_arbitrary_bytes(data: bytes, ng: bool, big: bool) -> None:
    fns = (walk.walk_pcapng, walk.py_walk_pcapng) if ng else (walk.walk_pcap, walk.py_walk_pcap)
    results = []
    for fn in fns:
        out = arrays(ng, 64)
        r = fn(data, 0, int(big), 4096, *out)
        results.append((tuple(r), *(a[: r[0]].tolist() for a in out)))
    assert results[0] == results[1]
    assert results[0][0][2] in (walk.END, walk.FULL, walk.PARTIAL, walk.SPECIAL, walk.CORRUPT)


def test_python_walker_reports_corrupt_length() -> None:
    record = struct.pack("<IIII", 1, 2, 0x7FFFFFFF, 10)
    assert run(walk.py_walk_pcap, record, 0, False)[0] == (0, 0, walk.CORRUPT)
    ok = struct.pack("<IIII", 1, 2, 3, 3) + b"abc"
    assert run(walk.py_walk_pcap, ok + ok[:10], 0, False)[0] == (1, 19, walk.PARTIAL)


def test_built_walker_means_built_decoder() -> None:
    """Where the C extension was built, the bulk path must be using its decoder too."""
    from decoders.wire import bulk

    assert bulk.ACCELERATED == walk.ACCELERATED
