"""A batch over a corpus: find the sessions, skip those unchanged, analyse the rest with Dask,
and rewrite the tables.

:func:`plan` finds the sessions (:func:`decoders.corpus.sources.find_sessions`), hashes their
inputs (one Dask task each: on the cluster when there is one, else in threads here) and reads
the tables an earlier batch left in the output folder: a session whose path,
content hash and mutecheck version are those of its row there is **kept** (not analysed again);
the others are **to do**. :func:`execute` runs one Dask task per session to do
(:func:`decoders.corpus.task.analyse_session`): with ``scheduler`` None on this machine, Dask's
local scheduler (``workers`` processes; one: in this process, serially), else on the
``dask.distributed`` cluster at that address. :func:`write` puts the kept rows and the new ones
together (sessions in path order) and rewrites each table whole (a reader sees the old file or
the new one), then removes the packet files no row names any more.

Rows of an earlier batch whose session lies under one of this batch's paths but was not found
again (deleted) are dropped; rows under other paths are kept, so a corpus can grow a folder at
a time into one output.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from decoders import __version__
from decoders.corpus.sources import Session, content_hash, find_sessions, url_of
from decoders.corpus.tables import TABLES, read_table, write_tables
from decoders.corpus.task import Outcome, analyse_session

PACKETS_DIR: Final = "packets"

Progress = Callable[[int, int], None]
"""Called with (sessions done, sessions to do) as tasks finish."""


@dataclass(frozen=True)
class Todo:
    """A session to analyse, with the hash of the inputs it will be analysed from."""

    session: Session
    content_hash: str
    input_bytes: int


@dataclass(frozen=True)
class Plan:
    """What a batch will do."""

    out: Path
    packets: bool
    found: list[Session]
    todo: list[Todo]
    kept: dict[str, pa.Table] = field(default_factory=dict)
    """The earlier tables' rows that stay (skipped sessions, sessions under other paths)."""
    skipped: int = 0
    dropped: int = 0

    @property
    def packets_dir(self) -> str | None:
        return str(self.out / PACKETS_DIR) if self.packets else None


def plan(
    roots: Sequence[str],
    out: Path,
    *,
    packets: bool = False,
    client: Any = None,
    workers: int | None = None,
) -> Plan:
    """The sessions under ``roots`` and which of them need analysing (module docstring).
    The inputs are hashed on the ``dask.distributed`` cluster of ``client`` (where the
    analysis will read them), else here by ``workers`` of Dask's threads (SHA-256 runs outside
    the GIL; default: one per CPU), as many as the analysis will use."""
    out = Path(os.path.abspath(out))  # as fsspec names local paths (symlinks kept)
    found = find_sessions(roots, exclude=[str(out)])
    hashes = _hashes(found, client, workers)
    previous = {name: read_table(out / f"{name}.parquet", name) for name in TABLES}
    earlier = previous["sessions"]
    rows = {r["path"]: r for r in earlier.to_pylist()} if earlier is not None else {}
    if earlier is not None and any(previous[n] is None for n in TABLES):
        rows = {}  # a table is missing or unreadable: redo everything, rewrite all consistently
    todo: list[Todo] = []
    keep: list[str] = []
    for session, (digest, size) in zip(found, hashes, strict=True):
        row = rows.get(session.url)
        if row is not None and _unchanged(row, digest, packets):
            keep.append(row["session_id"])
        else:
            todo.append(Todo(session, digest, size))
    seen = {s.url for s in found}
    roots_searched = [_prefix(r) for r in roots]
    others = [
        row["session_id"]
        for path, row in rows.items()
        if path not in seen and not any(_under(path, r) for r in roots_searched)
    ]
    dropped = sum(
        1 for path in rows if path not in seen and any(_under(path, r) for r in roots_searched)
    )
    wanted = pa.array(keep + others, type=pa.string())
    kept = {
        name: _rows_of(previous[name], wanted)
        for name in TABLES
        if rows and previous[name] is not None
    }
    return Plan(out, packets, found, todo, kept, skipped=len(keep), dropped=dropped)


def _hashes(found: Sequence[Session], client: Any, workers: int | None) -> list[tuple[str, int]]:
    """:func:`content_hash` of each session, one Dask task each."""
    if not found:
        return []
    if client is not None:
        futures = client.map(content_hash, list(found), pure=False)
        results: list[tuple[str, int]] = client.gather(futures)
        return results
    from dask.base import compute
    from dask.delayed import delayed

    run: Any = compute  # dask's compute is not typed
    tasks = [delayed(content_hash, pure=False)(s) for s in found]
    return list(run(*tasks, scheduler="threads", num_workers=workers))


def _unchanged(row: dict[str, Any], digest: str, packets: bool) -> bool:
    if row["content_hash"] != digest or row["tool_version"] != __version__:
        return False
    wants_packets = packets and not row["packets_written"]
    return not (wants_packets and row["error"] is None and row["frames"] is not None)


def _prefix(root: str) -> str:
    fs, path = fsspec.core.url_to_fs(root)
    return url_of(fs, str(path).rstrip("/") or "/")


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _rows_of(data: pa.Table | None, ids: pa.Array) -> pa.Table:
    assert data is not None
    return data.filter(pc.is_in(data["session_id"], value_set=ids))


def execute(
    todo: Sequence[Todo],
    *,
    packets_dir: str | None,
    scheduler: str | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    client: Any = None,
) -> list[Outcome]:
    """One Dask task per session (module docstring); the outcomes in ``todo``'s order.
    ``client``: a connected ``dask.distributed`` client to use instead of ``scheduler``."""
    if not todo:
        return []
    if client is not None:
        return _on_cluster(todo, packets_dir, client, progress)
    if scheduler is not None:
        with connect(scheduler) as client:
            return _on_cluster(todo, packets_dir, client, progress)
    return _on_this_machine(todo, packets_dir, workers, progress)


def connect(address: str) -> Any:
    """A ``dask.distributed`` client of the scheduler at ``address`` (a context manager);
    OSError when it cannot be reached, ValueError when the address is not one."""
    import distributed

    client_of: Any = distributed.Client  # dask.distributed is not typed
    return client_of(address)


def _on_this_machine(
    todo: Sequence[Todo], packets_dir: str | None, workers: int, progress: Progress | None
) -> list[Outcome]:
    """Dask's local scheduler: serially in this process (``workers`` 1), else ``workers``
    processes, one session at a time each (``chunksize`` 1: sessions are big and uneven).

    A worker process that dies (a crash, the kernel's OOM killer) breaks the process pool and
    Dask's computation with it; the sessions done by then are kept (each result is taken as it
    arrives), those sent to a worker and not done are each run again alone in a new pool (the
    one that dies again is recorded as its session's error), and the rest go on.
    """
    from concurrent.futures.process import BrokenProcessPool

    outcomes: dict[int, Outcome] = {}
    groups = [list(range(len(todo)))]
    pool: Any = None
    try:
        while groups:
            group = groups.pop(0)
            if workers > 1 and pool is None:
                pool = _process_pool(workers)
            started: set[int] = set()
            try:
                _compute(todo, group, packets_dir, pool, outcomes, started, progress)
            except BrokenProcessPool:
                pool.shutdown(wait=False, cancel_futures=True)
                pool = None
                lost = [i for i in group if i not in outcomes]
                if len(group) == 1:
                    outcomes[group[0]] = _lost(todo[group[0]], "its worker process died")
                    _tell(progress, len(outcomes), len(todo))
                    continue
                suspects = [[i] for i in lost if i in started]
                rest = [i for i in lost if i not in started]
                groups[:0] = suspects + ([rest] if rest else [])
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return [outcomes[i] for i in range(len(todo))]


def _process_pool(workers: int) -> Any:
    """Worker processes started as Dask's processes scheduler starts them (its context)."""
    from concurrent.futures import ProcessPoolExecutor

    from dask import multiprocessing

    context: Any = multiprocessing.get_context  # not typed
    return ProcessPoolExecutor(workers, mp_context=context())


def _compute(
    todo: Sequence[Todo],
    group: list[int],
    packets_dir: str | None,
    pool: Any,
    outcomes: dict[int, Outcome],
    started: set[int],
    progress: Progress | None,
) -> None:
    """The sessions ``group`` indexes, one Dask task each; each outcome into ``outcomes`` as it
    arrives and each task sent into ``started``."""
    from dask.base import compute
    from dask.callbacks import Callback
    from dask.delayed import delayed

    tasks = {}
    # the largest sessions first, so that no worker is left with a long one at the end while
    # the others idle: Dask's local scheduler runs independent tasks in descending key order
    # (its tie-break), so the keys rank them by size, the largest the highest
    for rank, i in enumerate(_largest_first(todo, group)):
        t = todo[i]
        task = delayed(analyse_session, pure=False)(
            t.session,
            t.content_hash,
            t.input_bytes,
            packets_dir,
            dask_key_name=f"mutecheck-session-{len(group) - rank:08d}",
        )
        tasks[task.key] = (i, task)

    class Collected(Callback):
        def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
            if key in tasks:
                started.add(tasks[key][0])

        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            if key in tasks and isinstance(result, Outcome):
                outcomes[tasks[key][0]] = result
                _tell(progress, len(outcomes), len(todo))

    run: Any = compute  # dask's compute and Callback are not typed
    collected: Any = Collected
    how: dict[str, Any] = {"scheduler": "synchronous"}
    if pool is not None:
        how = {"scheduler": "processes", "pool": pool, "chunksize": 1}
    with collected():
        run(*(task for _, task in tasks.values()), **how)


def _largest_first(todo: Sequence[Todo], indices: Iterable[int]) -> list[int]:
    """``indices`` of ``todo``, the largest inputs first."""
    return sorted(indices, key=lambda i: todo[i].input_bytes, reverse=True)


def _tell(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _lost(todo: Todo, why: str) -> Outcome:
    """The error row of a session whose task never came back."""
    from decoders.corpus.tables import session_tables
    from decoders.corpus.task import session_info

    info = session_info(todo.session, todo.content_hash, todo.input_bytes)
    return Outcome(session_tables(info, None, [], error=why, exit_code=1), 0.0, 0, "")


def _on_cluster(
    todo: Sequence[Todo], packets_dir: str | None, client: Any, progress: Progress | None
) -> list[Outcome]:
    """The tasks on a running ``dask.distributed`` cluster; a task its worker died in (or that
    could not be sent) becomes that session's error row."""
    import distributed

    completed: Any = distributed.as_completed  # dask.distributed is not typed
    # the largest sessions first (the scheduler runs what is sent first first), so that no
    # worker is left with a long one at the end
    order = _largest_first(todo, range(len(todo)))
    futures = client.map(
        analyse_session,
        [todo[i].session for i in order],
        [todo[i].content_hash for i in order],
        [todo[i].input_bytes for i in order],
        [packets_dir] * len(todo),
        pure=False,
    )
    index = {f.key: i for i, f in zip(order, futures, strict=True)}
    outcomes: list[Outcome | None] = [None] * len(todo)
    for done, future in enumerate(completed(futures), start=1):
        i = index[future.key]
        try:
            outcomes[i] = future.result()
        except Exception as error:  # a lost worker: that session's error
            outcomes[i] = _lost(todo[i], f"{type(error).__name__}: {error}")
        _tell(progress, done, len(todo))
    return [o for o in outcomes if o is not None]


@dataclass(frozen=True)
class Written:
    """The tables a batch wrote."""

    sessions: int
    findings: int
    streams: int
    files: list[Path]


def write(batch: Plan, outcomes: Sequence[Outcome]) -> Written:
    """The kept rows and the new ones, each table rewritten whole; stale packet files removed."""
    pieces: dict[str, list[pa.Table]] = {name: [] for name in TABLES}
    for name, data in batch.kept.items():
        pieces[name].append(data)
    for outcome in outcomes:
        for name in TABLES:
            pieces[name].append(outcome.tables.get(name))
    tables = {
        name: pa.concat_tables(parts).cast(TABLES[name]) if parts else TABLES[name].empty_table()
        for name, parts in pieces.items()
    }
    tables["sessions"] = tables["sessions"].sort_by([("path", "ascending")])
    for name in ("findings", "streams"):  # stable: each session's rows keep their order
        tables[name] = tables[name].sort_by([("session_id", "ascending")])
    files = write_tables(batch.out, tables)
    _prune_packets(batch.out / PACKETS_DIR, tables["sessions"])
    return Written(
        tables["sessions"].num_rows, tables["findings"].num_rows, tables["streams"].num_rows, files
    )


def _prune_packets(folder: Path, sessions: pa.Table) -> None:
    """Keep each session's current packet file (``<content hash>.parquet``), nothing else."""
    if not folder.is_dir():
        return
    current = {
        f"session_id={r['session_id']}": f"{r['content_hash']}.parquet"
        for r in sessions.select(["session_id", "content_hash", "packets_written"]).to_pylist()
        if r["packets_written"]
    }
    for part in folder.iterdir():
        keep = current.get(part.name)
        if keep is None or not part.is_dir():
            if part.is_dir():
                shutil.rmtree(part)
            continue
        for path in part.iterdir():
            if path.name != keep:
                path.unlink()
