"""The packet fixtures of tests/fixtures/packets/ (written by tests/fixtures/make_packets.py)."""

from __future__ import annotations

from pathlib import Path

PACKETS = Path(__file__).resolve().parent.parent / "fixtures" / "packets"


def names(pattern: str) -> list[str]:
    """Fixture names (no extension) matching a glob such as ``rtp_*``."""
    return sorted(p.stem for p in PACKETS.glob(f"{pattern}.bin"))


def load(name: str) -> bytes:
    return (PACKETS / f"{name}.bin").read_bytes()


def golden(protocol: str) -> dict[str, dict[str, list[str]]]:
    """tshark's view of each fixture, field by field (multi-valued fields as lists)."""
    header, *lines = (PACKETS / f"tshark_{protocol}.tsv").read_text().splitlines()
    fields = header.split("\t")[1:]
    rows = {}
    for line in lines:
        name, *values = line.split("\t")
        rows[name] = {f: v.split(",") if v else [] for f, v in zip(fields, values, strict=True)}
    return rows
