"""A batch: the plan (what changed), Dask's schedulers, and tables rewritten consistently."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster
from helpers.corpus import lab_session
from helpers.small_corpus import small_corpus

from decoders.corpus.run import PACKETS_DIR, Plan, execute, plan, write
from decoders.corpus.tables import TABLES

NAMES = tuple(TABLES)


def batch(roots: list[str], out: Path, *, packets: bool = False, **how: object) -> Plan:
    """One batch as the command runs it: plan, execute, write; the plan it followed."""
    todo = plan(roots, out, packets=packets)
    outcomes = execute(todo.todo, packets_dir=todo.packets_dir, **how)  # type: ignore[arg-type]
    write(todo, outcomes)
    return todo


def tables(out: Path) -> dict[str, list[dict[str, object]]]:
    return {name: pq.read_table(out / f"{name}.parquet").to_pylist() for name in NAMES}


def test_a_second_batch_skips_everything_and_a_change_redoes_one(tmp_path: Path) -> None:
    corpus, out = small_corpus(tmp_path), tmp_path / "out"
    first = batch([str(corpus)], out)
    assert (len(first.todo), first.skipped) == (3, 0)
    before = tables(out)
    assert [r["name"] for r in before["sessions"]] == [
        "chromium-telemetry-http",
        "chromium-track-disabled",
        "chromium-ui-only",
    ]
    again = batch([str(corpus)], out)
    assert (len(again.todo), again.skipped) == (0, 3)
    assert tables(out) == before
    with (corpus / "chromium-track-disabled" / "events.jsonl").open("ab") as fo:
        fo.write(b"\n")  # a blank line: the same events, other bytes
    changed = batch([str(corpus)], out)
    assert [t.session.name for t in changed.todo] == ["chromium-track-disabled"]
    after = tables(out)
    old = {r["name"]: r for r in before["sessions"]}
    new = {r["name"]: r for r in after["sessions"]}
    assert (
        new["chromium-track-disabled"]["content_hash"]
        != old["chromium-track-disabled"]["content_hash"]
    )
    assert new["chromium-ui-only"] == old["chromium-ui-only"]
    assert after["findings"] == before["findings"] and after["streams"] == before["streams"]


def test_sessions_gone_are_dropped_and_other_paths_kept(tmp_path: Path) -> None:
    corpus, out = small_corpus(tmp_path), tmp_path / "out"
    day2 = tmp_path / "day2"
    day2.mkdir()
    shutil.copy(lab_session("dtx") / "capture.pcapng", day2 / "call.pcapng")
    batch([str(corpus)], out)
    grown = batch([str(day2)], out)
    assert (len(grown.todo), grown.skipped) == (1, 0)
    names = [r["name"] for r in tables(out)["sessions"]]
    assert sorted(names) == sorted(
        ["chromium-telemetry-http", "chromium-track-disabled", "chromium-ui-only", "call.pcapng"]
    )
    shutil.rmtree(corpus / "chromium-ui-only")
    shrunk = batch([str(corpus)], out)
    assert (len(shrunk.todo), shrunk.skipped, shrunk.dropped) == (0, 2, 1)
    rows = tables(out)
    assert "chromium-ui-only" not in [r["name"] for r in rows["sessions"]]
    ids = {r["session_id"] for r in rows["sessions"]}
    assert {r["session_id"] for r in rows["streams"]} <= ids
    assert {r["session_id"] for r in rows["findings"]} <= ids


def test_packets_are_written_once_asked_and_stale_ones_removed(tmp_path: Path) -> None:
    corpus, out = small_corpus(tmp_path), tmp_path / "out"
    batch([str(corpus)], out)
    assert not (out / PACKETS_DIR).exists()
    asked = batch([str(corpus)], out, packets=True)
    assert len(asked.todo) == 3  # unchanged, but without their packet tables
    parts = sorted((out / PACKETS_DIR).glob("session_id=*/*.parquet"))
    assert len(parts) == 3
    with (corpus / "chromium-ui-only" / "events.jsonl").open("ab") as fo:
        fo.write(b"\n")
    batch([str(corpus)], out, packets=True)
    again = sorted((out / PACKETS_DIR).glob("session_id=*/*.parquet"))
    assert len(again) == 3 and again != parts  # the changed session's file replaced
    rows = {r["session_id"]: r for r in tables(out)["sessions"]}
    for part in again:
        sid = part.parent.name.removeprefix("session_id=")
        assert part.stem == rows[sid]["content_hash"]
        assert pq.read_table(part).num_rows == rows[sid]["frames"]


def test_a_broken_input_is_recorded_and_the_rest_go_on(tmp_path: Path) -> None:
    corpus, out = small_corpus(tmp_path), tmp_path / "out"
    (corpus / "junk.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 3)  # cut in its header
    (corpus / "chromium-track-disabled" / "timeline.json").write_text("[[1, 2")
    batch([str(corpus)], out)
    rows = {r["name"]: r for r in tables(out)["sessions"]}
    assert len(rows) == 4
    assert rows["junk.pcap"]["error"] is not None and rows["junk.pcap"]["exit_code"] == 2
    assert rows["chromium-track-disabled"]["error"].startswith("InputError: ")
    assert rows["chromium-ui-only"]["verdict"] == "content-leak"
    assert rows["chromium-telemetry-http"]["verdict"] == "metadata-leak"


def test_the_hashes_do_not_depend_on_the_threads_hashing(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path)
    one, two = (plan([str(corpus)], tmp_path / "out", workers=n).todo for n in (1, 2))
    assert [(t.session.url, t.content_hash, t.input_bytes) for t in one] == [
        (t.session.url, t.content_hash, t.input_bytes) for t in two
    ]
    assert len({t.content_hash for t in one}) == 3


def test_the_largest_sessions_run_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Largest first: a long session never starts last and keeps one worker busy alone."""
    from decoders.corpus import run

    corpus = small_corpus(tmp_path)
    todo = plan([str(corpus)], tmp_path / "out").todo
    started: list[int] = []
    analyse = run.analyse_session

    def recorded(session: object, digest: str, size: int, packets: str | None) -> object:
        started.append(size)
        return analyse(session, digest, size, packets)  # type: ignore[arg-type]

    monkeypatch.setattr(run, "analyse_session", recorded)
    outcomes = execute(todo, packets_dir=None, workers=1)
    assert started == sorted((t.input_bytes for t in todo), reverse=True)
    assert len(set(started)) == len(todo) == 3
    # the outcomes stay in the plan's order
    assert [o.tables.sessions["name"][0].as_py() for o in outcomes] == [
        t.session.name for t in todo
    ]


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The small corpus analysed serially (Dask's synchronous scheduler), with packets."""
    root = tmp_path_factory.mktemp("serial")
    corpus = small_corpus(root)
    batch([str(corpus)], root / "out", packets=True, workers=1)
    return corpus, root / "out"


def test_a_local_cluster_of_two_workers_gives_the_serial_tables(
    serial: tuple[Path, Path], tmp_path: Path
) -> None:
    corpus, serial_out = serial
    out = tmp_path / "cluster"
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        done: list[tuple[int, int]] = []
        todo = plan([str(corpus)], out, packets=True)
        outcomes = execute(
            todo.todo,
            packets_dir=todo.packets_dir,
            scheduler=cluster.scheduler_address,
            progress=lambda d, t: done.append((d, t)),
        )
        write(todo, outcomes)
    assert done == [(1, 3), (2, 3), (3, 3)]
    assert len({o.worker for o in outcomes}) >= 1
    for name in NAMES:
        cluster_rows = pq.read_table(out / f"{name}.parquet")
        serial_rows = pq.read_table(serial_out / f"{name}.parquet")
        assert cluster_rows.equals(serial_rows), name
    packet_files = sorted(p.relative_to(out) for p in out.glob("packets/*/*.parquet"))
    assert packet_files == sorted(
        p.relative_to(serial_out) for p in serial_out.glob("packets/*/*.parquet")
    )
    for part in packet_files:
        assert pq.read_table(out / part).equals(pq.read_table(serial_out / part))


def test_local_processes_give_the_serial_tables(serial: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, serial_out = serial
    done: list[tuple[int, int]] = []
    out = tmp_path / "processes"
    todo = plan([str(corpus)], out)
    write(
        todo,
        execute(todo.todo, packets_dir=None, workers=2, progress=lambda d, t: done.append((d, t))),
    )
    assert done[-1] == (3, 3)
    for name in ("findings", "streams"):
        assert pq.read_table(out / f"{name}.parquet").equals(
            pq.read_table(serial_out / f"{name}.parquet")
        )
    sessions = pq.read_table(out / "sessions.parquet").drop_columns(["packets_written"])
    assert sessions.equals(
        pq.read_table(serial_out / "sessions.parquet").drop_columns(["packets_written"])
    )


def test_a_worker_that_dies_costs_only_its_session(
    serial: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker analysing chromium-track-disabled ends abruptly (each time): that session is
    an error row, the other two are analysed as in the serial run."""
    from concurrent.futures import ProcessPoolExecutor

    from dask import multiprocessing
    from helpers.dying_worker import die_on

    from decoders.corpus import run

    def dying_pool(workers: int) -> ProcessPoolExecutor:
        context = multiprocessing.get_context()  # type: ignore[no-untyped-call]
        return ProcessPoolExecutor(
            workers, mp_context=context, initializer=die_on, initargs=("chromium-track-disabled",)
        )

    monkeypatch.setattr(run, "_process_pool", dying_pool)
    corpus, serial_out = serial
    out = tmp_path / "dying"
    done: list[tuple[int, int]] = []
    todo = plan([str(corpus)], out)
    write(
        todo,
        execute(todo.todo, packets_dir=None, workers=2, progress=lambda d, t: done.append((d, t))),
    )
    assert done[-1] == (3, 3)
    rows = {r["name"]: r for r in tables(out)["sessions"]}
    assert rows["chromium-track-disabled"]["error"] == "its worker process died"
    assert rows["chromium-track-disabled"]["exit_code"] == 1
    expected = {r["name"]: r for r in tables(serial_out)["sessions"]}
    for name in ("chromium-ui-only", "chromium-telemetry-http"):
        mine = {k: v for k, v in rows[name].items() if k != "packets_written"}
        assert mine == {k: v for k, v in expected[name].items() if k != "packets_written"}
