"""The synthetic capture generator: deterministic, readable by tshark, truthful."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

from helpers import synthetic

from decoders.wire.capture import CaptureReader


def test_deterministic(make_synthetic: Any) -> None:
    a, _ = make_synthetic(packets=500)
    b, _ = make_synthetic(packets=500)
    assert a == b
    c, _ = make_synthetic(packets=500, seed=8)
    assert a != c


def test_truth_counts(make_synthetic: Any) -> None:
    data, truth = make_synthetic(packets=3000)
    frames = list(CaptureReader(io.BytesIO(data)))
    assert len(frames) == truth.frames == truth.datagrams == 3000
    assert sum(s.packets for s in truth.streams) < 3000  # RTCP, STUN and DTLS besides
    media = sorted(s.media for s in truth.streams)
    assert media == ["audio", "audio", "video"]
    stamps = [f.timestamp_ns for f in frames]
    assert stamps == sorted(stamps)
    start, end = truth.muted_ns
    assert stamps[0] < start < end < stamps[-1]


def test_tshark_reads_every_variant(make_synthetic: Any, tmp_path: Path, tshark: str) -> None:
    for options in ({"link": "sll2"}, {"format": "pcapng-2if"}, {"transport": "ice-tcp"}):
        data, truth = make_synthetic(packets=400, **options)
        path = tmp_path / "x.pcapng"
        path.write_bytes(data)
        out = subprocess.run(
            [tshark, "-n", "-r", str(path), "-T", "fields", "-e", "frame.number"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert len(out.stdout.split()) == truth.frames


def test_options_are_documented() -> None:
    assert set(synthetic.LINK_TYPES) == {
        "ethernet",
        "vlan",
        "qinq",
        "sll",
        "sll2",
        "raw",
        "ipv4",
        "null",
    }
