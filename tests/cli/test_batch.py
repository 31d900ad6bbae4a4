"""``mutecheck batch`` as a user runs it: the committed captures/ into tables DuckDB and pandas
load, agreeing with analyze's report.json; ``analyze --parquet`` and ``streams --parquet``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from helpers.cli_run import run_mutecheck as run
from helpers.corpus import lab_session
from helpers.small_corpus import committed_sessions, small_corpus

from decoders.audit.analysis import Inputs, analyze
from decoders.cli.batch import _rate_line
from decoders.corpus.sources import session_id
from decoders.report.analysis_json import report_document

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mutecheck batch captures/ --out DIR``: the whole committed corpus, once, with the
    default local scheduler (processes)."""
    out = tmp_path_factory.mktemp("batch") / "corpus"
    result = run("batch", str(CAPTURES), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    sessions = len(committed_sessions())
    assert f"{sessions} session(s): {sessions} to analyse, 0 unchanged" in result.stderr
    assert re.search(
        rf"^{sessions}/{sessions} sessions, [\d.]+/min, 0 s left$", result.stderr, re.M
    )
    assert f"sessions.parquet ({sessions} rows)" in result.stdout
    return out


def test_the_tables_load_in_duckdb_and_pandas_and_agree_with_analyze(corpus: Path) -> None:
    frame = pd.read_parquet(corpus / "sessions.parquet")
    assert list(frame["path"]) == [str(p) for p in committed_sessions()]
    assert frame["error"].isna().all()
    findings = pd.read_parquet(corpus / "findings.parquet")
    streams = duckdb.sql(f"SELECT * FROM '{corpus / 'streams.parquet'}'").df()
    for folder in committed_sessions():  # ground truth: analyze's own document, in-process
        doc = report_document(analyze(Inputs(session_dir=folder)))
        row = frame[frame["path"] == str(folder)].iloc[0]
        sid = session_id(str(folder))
        assert row["session_id"] == sid
        assert row["verdict"] == doc["verdict"]["verdict"], folder.name
        assert row["confidence"] == pytest.approx(doc["verdict"]["confidence"])
        assert row["exit_code"] == doc["verdict"]["exit_code"]
        mine = findings[findings["session_id"] == sid].sort_values("index")
        assert list(mine["id"]) == [f["id"] for f in doc["findings"]], folder.name
        muted = streams[(streams.session_id == sid) & (streams.phase == "muted")]
        expected = sum(
            1 + len(s["phases"]["windows"]) for s in doc["streams"] if s["phases"]["muted"]
        )
        assert len(muted) == expected, folder.name


def test_the_documented_duckdb_example_runs(corpus: Path) -> None:
    """docs/corpus.md's leak rate per app and mute method, on the committed corpus."""
    text = (ROOT / "docs" / "corpus.md").read_text()
    sql = re.search(r"```sql\n(SELECT app, variant.*?;)\n```", text, re.S)
    assert sql is not None
    query = sql.group(1).replace("build/corpus", str(corpus))
    rates = {(a, m): (n, r) for a, m, n, r in duckdb.sql(query).fetchall()}
    frame = pd.read_parquet(corpus / "sessions.parquet")
    for (app, method), (count, rate) in rates.items():
        mine = frame[(frame.app == app) & (frame.variant == method)]
        assert count == len(mine)
        assert rate == pytest.approx(mine.verdict.isin(["content-leak", "metadata-leak"]).mean())
    assert rates[("chromium-aiortc", "ui-only")][1] == 1.0  # every ui-only call leaks
    assert rates[("chromium-aiortc", "track-disabled")][1] == 0.0


def test_a_second_batch_skips_every_session(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path)
    out = tmp_path / "out"
    first = run("batch", str(corpus), "--out", str(out), "--workers", "1")
    assert first.returncode == 0, first.stderr
    second = run("batch", str(corpus), "--out", str(out))
    assert second.returncode == 0, second.stderr
    assert "3 session(s): 0 to analyse, 3 unchanged since the last batch" in second.stderr
    assert "analysed 0 session(s)" in second.stdout


def test_analyze_and_streams_write_the_batchs_rows(corpus: Path, tmp_path: Path) -> None:
    folder = lab_session("ui-only")
    out = tmp_path / "one"
    result = run("analyze", str(folder), "--parquet", str(out), "--no-report", "-q")
    assert result.returncode == 5, result.stderr
    sid = session_id(str(folder))
    for name in ("sessions", "findings", "streams"):
        one = pq.read_table(out / f"{name}.parquet")
        everything = pq.read_table(corpus / f"{name}.parquet")
        assert one.equals(everything.filter(pc.equal(everything["session_id"], sid))), name
    streams_file = tmp_path / "streams.parquet"
    result = run("streams", str(folder), "--parquet", str(streams_file))
    assert result.returncode == 0, result.stderr
    whole = pq.read_table(out / "streams.parquet")
    assert pq.read_table(streams_file).equals(whole.filter(pc.equal(whole["phase"], "all")))
    report = json.loads(run("analyze", str(folder), "--json", "--no-report").stdout)
    assert (
        pq.read_table(out / "sessions.parquet")["verdict"][0].as_py()
        == report["verdict"]["verdict"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/corpus"], "/nonexistent/corpus: no such file or folder"),
        (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "--workers is for the local"),
        (["EMPTY"], "no session folder or capture under"),
        (["s3://bucket/corpus"], "s3://bucket/corpus: Install s3fs"),
        (["--scheduler", "nonsense://x"], "--scheduler nonsense://x: unknown address scheme"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    paths = [str(empty) if a == "EMPTY" else a for a in args]
    if paths[0].startswith("--"):
        paths.insert(0, str(lab_session("dtx")))
    result = run("batch", *paths, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mutecheck: error: ") and message in lines[0]


def test_the_progress_line() -> None:
    assert _rate_line(0, 25, 0.0) == "0/25 sessions"
    assert _rate_line(5, 25, 10.0) == "5/25 sessions, 30.0/min, 40 s left"
    assert _rate_line(1, 200, 60.0) == "1/200 sessions, 1.0/min, 3 h 19 min left"
    assert _rate_line(25, 25, 30.0) == "25/25 sessions, 50.0/min, 0 s left"


def test_scheduler_runs_the_batch_on_a_cluster(tmp_path: Path) -> None:
    """``--scheduler`` of a LocalCluster with two worker processes: the tables of the serial
    run, row for row, and the progress counted as the cluster's tasks finish."""
    from distributed import LocalCluster

    corpus = small_corpus(tmp_path)
    serial = run("batch", str(corpus), "--out", str(tmp_path / "serial"), "--workers", "1")
    assert serial.returncode == 0, serial.stderr
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        result = run(
            "batch",
            str(corpus),
            "--out",
            str(tmp_path / "cluster"),
            "--packets",
            "--scheduler",
            cluster.scheduler_address,
        )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^3/3 sessions, ", result.stderr, re.M)
    for name in ("findings", "streams"):
        assert pq.read_table(tmp_path / "cluster" / f"{name}.parquet").equals(
            pq.read_table(tmp_path / "serial" / f"{name}.parquet")
        )
    sessions = pq.read_table(tmp_path / "cluster" / "sessions.parquet")
    assert sessions.drop_columns(["packets_written"]).equals(
        pq.read_table(tmp_path / "serial" / "sessions.parquet").drop_columns(["packets_written"])
    )
    assert sessions["packets_written"].to_pylist() == [True, True, True]
    assert len(list((tmp_path / "cluster" / "packets").glob("session_id=*/*.parquet"))) == 3
