"""One session's task: analyze's result as rows, a failure as a row, remote sessions fetched."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
from helpers.corpus import lab_file, lab_session
from helpers.small_corpus import small_corpus

from decoders.audit.analysis import Inputs, analyze
from decoders.corpus.sources import content_hash, find_sessions, session_at
from decoders.corpus.task import analyse_session, one_session, summary
from decoders.report.analysis_json import report_document


def test_a_session_is_analysed_as_analyze_does(tmp_path: Path) -> None:
    folder = small_corpus(tmp_path) / "chromium-telemetry-http"
    session = session_at(str(folder))
    digest, size = content_hash(session)
    outcome = analyse_session(session, digest, size, str(tmp_path / "packets"))
    doc = report_document(analyze(Inputs(session_dir=folder)))
    (row,) = outcome.tables.sessions.to_pylist()
    assert row["verdict"] == doc["verdict"]["verdict"] == "metadata-leak"
    assert row["findings"] == len(doc["findings"]) and row["error"] is None
    assert row["content_hash"] == digest and row["input_bytes"] == size
    assert "../reference.wav" in row["inputs"] and "capture.pcapng" in row["inputs"]
    assert row["packets_written"]
    part = tmp_path / "packets" / f"session_id={session.session_id}" / f"{digest}.parquet"
    assert pq.read_table(part).num_rows == row["frames"]
    assert outcome.peak_rss_bytes > 10 << 20 and outcome.seconds > 0
    assert not (folder / "report.json").exists()  # nothing written beside the evidence
    assert summary([outcome])["workers"] == 1
    same = one_session(folder, doc, analyze(Inputs(session_dir=folder)).stream_table)
    assert same.sessions.drop_columns(["packets_written"]).equals(
        outcome.tables.sessions.drop_columns(["packets_written"])
    )
    assert same.findings.equals(outcome.tables.findings)
    assert same.streams.equals(outcome.tables.streams)


def test_a_broken_session_is_its_error_row(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pcapng"
    bad.write_bytes(b"this is not a capture at all")
    session = session_at(str(bad))
    outcome = analyse_session(session, *content_hash(session), None)
    (row,) = outcome.tables.sessions.to_pylist()
    assert row["error"].startswith("InputError: ") and "not a pcap or pcapng" in row["error"]
    assert row["exit_code"] == 2 and row["verdict"] is None and row["kind"] == "capture"
    broken = tmp_path / "broken"
    shutil.copytree(lab_session("ui-only"), broken)
    (broken / "timeline.json").write_text("{not json")
    outcome = analyse_session(session_at(str(broken)), "0" * 64, 0, None)
    assert outcome.tables.sessions["error"][0].as_py().startswith("InputError: ")


def test_a_session_on_another_filesystem_is_fetched_and_analysed(tmp_path: Path) -> None:
    """fsspec's in-memory filesystem stands for s3:// and the rest: the folder and the
    reference one level up are copied to a temporary folder, analysed, then removed."""
    corpus = small_corpus(tmp_path)
    fs = fsspec.filesystem("memory")
    root = f"/remote-{uuid.uuid4().hex}"
    try:
        for path in (corpus / "chromium-ui-only").iterdir():
            fs.pipe(f"{root}/chromium-ui-only/{path.name}", path.read_bytes())
        fs.pipe(f"{root}/reference.wav", lab_file("reference.wav").read_bytes())
        (remote,) = find_sessions([f"memory://{root}"])
        outcome = analyse_session(remote, *content_hash(remote), None)
    finally:
        fs.rm(root, recursive=True)
    local = session_at(str(corpus / "chromium-ui-only"))
    expected = analyse_session(local, *content_hash(local), None)
    assert outcome.tables.sessions["content_hash"] == expected.tables.sessions["content_hash"]
    ids = ["session_id", "path"]
    got, want = outcome.tables.sessions.to_pylist()[0], expected.tables.sessions.to_pylist()[0]
    assert got["path"] == f"memory://{root}/chromium-ui-only"
    for key in set(got) - {*ids, "warnings"}:
        assert got[key] == want[key], key
    assert outcome.tables.findings.drop_columns(["session_id"]).equals(
        expected.tables.findings.drop_columns(["session_id"])
    )
