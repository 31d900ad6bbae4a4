"""The corpus tables: rows from report.json's document and the capture's tables, documented."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.corpus import lab_session

from decoders.audit.analysis import Analysis, Inputs, analyze
from decoders.corpus.tables import (
    CORPUS_SCHEMA_VERSION,
    FINDINGS,
    PACKETS,
    SESSIONS,
    STREAMS,
    SessionInfo,
    packet_table,
    read_table,
    session_tables,
    write_packets,
    write_table,
    write_tables,
)
from decoders.report.analysis_json import report_document
from decoders.wire.rowbuild import COLUMNS

ROOT = Path(__file__).resolve().parents[2]


def info(name: str = "chromium-ui-only", manifest: dict[str, object] | None = None) -> SessionInfo:
    return SessionInfo(
        session_id="0123456789abcdef",
        path=f"/corpus/{name}",
        name=name,
        kind="folder",
        inputs=("capture.pcapng", "../reference.wav"),
        input_bytes=1234,
        content_hash="ab" * 32,
        tool_version="0.1.0",
        manifest=manifest or {},
    )


@pytest.fixture(scope="module")
def leak() -> Analysis:
    return analyze(Inputs(session_dir=lab_session("ui-only")))


def test_session_rows_are_report_json(leak: Analysis) -> None:
    doc = report_document(leak)
    manifest = {"variant": "ui-only", "kind": "chromium-aiortc", "relay": {"transport": "tcp"}}
    tables = session_tables(info(manifest=manifest), doc, leak.stream_table)
    (row,) = tables.sessions.to_pylist()
    assert row["verdict"] == doc["verdict"]["verdict"] == "content-leak"
    assert row["confidence"] == doc["verdict"]["confidence"]
    assert row["exit_code"] == 5 and row["error"] is None
    assert (row["app"], row["variant"], row["relay"]) == ("chromium-aiortc", "ui-only", "tcp")
    assert row["findings"] == len(doc["findings"]) == tables.findings.num_rows
    assert row["content_findings"] == sum(f["leak"] == "content" for f in doc["findings"])
    assert [w["verdict"] for w in row["window_results"]] == [w["verdict"] for w in doc["windows"]]
    assert row["rtp_packets"] == doc["capture"]["datagrams"]["rtp"]
    assert tables.findings.column("id").to_pylist() == [f["id"] for f in doc["findings"]]


def test_stream_rows_per_phase_and_window(leak: Analysis) -> None:
    doc = report_document(leak)
    streams = session_tables(info(), doc, leak.stream_table).streams.to_pylist()
    whole = [r for r in streams if r["phase"] == "all"]
    assert [r["packets"] for r in whole] == [s["packets"] for s in doc["streams"]]
    assert all(r["judged"] is None for r in whole)
    for s in doc["streams"]:
        muted = [r for r in streams if r["stream"] == s["index"] and r["phase"] == "muted"]
        expected = [s["phases"]["muted"]] + s["phases"]["windows"]
        assert [(r["window"], r["packets"]) for r in muted] == [
            (p["window"], p["packets"]) for p in expected
        ]
        assert {r["judged"] for r in muted} == {s["judged"]}


def test_a_failed_session_is_a_row_with_its_error() -> None:
    tables = session_tables(info(), None, [], error="InputError: broken", exit_code=2)
    (row,) = tables.sessions.to_pylist()
    assert row["error"] == "InputError: broken" and row["exit_code"] == 2
    assert row["verdict"] is None and row["findings"] is None
    assert tables.findings.num_rows == tables.streams.num_rows == 0


def test_packet_table_is_the_pipelines_table(leak: Analysis, tmp_path: Path) -> None:
    assert leak.media is not None
    rows = leak.media.rows
    data = packet_table(rows)
    assert data.schema == PACKETS and data.column_names == list(COLUMNS)
    assert data.num_rows == len(rows)
    for i in np.linspace(0, len(rows) - 1, 25).astype(int):
        expected = rows.row(int(i))
        got = {name: data.column(name)[int(i)].as_py() for name in COLUMNS}
        assert got == expected
    path = write_packets(tmp_path, "0123456789abcdef", "cd" * 32, rows)
    assert path == tmp_path / "session_id=0123456789abcdef" / f"{'cd' * 32}.parquet"
    assert pq.read_table(path).num_rows == len(rows)


def test_tables_round_trip_and_other_versions_are_not_read(leak: Analysis, tmp_path: Path) -> None:
    tables = session_tables(info(), report_document(leak), leak.stream_table)
    written = write_tables(tmp_path, tables)
    assert [p.name for p in written] == [
        "sessions.parquet",
        "findings.parquet",
        "streams.parquet",
    ]
    again = read_table(tmp_path / "sessions.parquet", "sessions")
    assert again is not None and again.equals(tables.sessions)
    meta = pq.read_schema(tmp_path / "sessions.parquet").metadata
    assert meta[b"mutecheck.corpus.version"] == str(CORPUS_SCHEMA_VERSION).encode()
    other = tables.sessions.replace_schema_metadata({b"mutecheck.corpus.version": b"0"})
    pq.write_table(other, tmp_path / "old.parquet")
    assert read_table(tmp_path / "old.parquet", "sessions") is None
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    assert read_table(tmp_path / "bad.parquet", "sessions") is None
    assert read_table(tmp_path / "absent.parquet", "sessions") is None
    write_table(tmp_path / "one.parquet", pa.table({"x": [1]}))
    assert pq.read_table(tmp_path / "one.parquet").num_rows == 1


@pytest.mark.parametrize(
    ("table", "schema"),
    [("sessions", SESSIONS), ("findings", FINDINGS), ("streams", STREAMS), ("packets", PACKETS)],
)
def test_every_column_is_documented(table: str, schema: pa.Schema) -> None:
    """docs/corpus.md has a section per table listing each column as `name` | type."""
    text = (ROOT / "docs" / "corpus.md").read_text()
    section = re.search(rf"^## `{table}[^`]*`.*?(?=^## |\Z)", text, re.M | re.S)
    assert section is not None, f"docs/corpus.md has no section for {table}"
    documented = re.findall(r"^\| `([a-z_0-9]+)` \|", section.group(0), re.M)
    assert documented == schema.names


def test_a_failed_rewrite_leaves_the_three_old_tables(leak: Analysis, tmp_path: Path) -> None:
    tables = session_tables(info(), report_document(leak), leak.stream_table)
    write_tables(tmp_path, tables)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    other = session_tables(info("other"), report_document(leak), leak.stream_table)
    broken = {"sessions": other.sessions, "findings": other.findings, "streams": None}
    with pytest.raises((TypeError, AttributeError)):
        write_tables(tmp_path, broken)  # type: ignore[dict-item]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
