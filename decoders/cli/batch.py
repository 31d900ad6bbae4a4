"""``mutecheck batch PATH... --out DIR``: every session under the paths, as Parquet tables.

Finds every session folder and bare capture under the paths (local paths, ``file://`` or any
fsspec URL whose package is installed), analyses each as ``mutecheck analyze`` does, one Dask
task per session (Dask's local scheduler by default, ``--scheduler ADDRESS`` for a running
``dask.distributed`` cluster), and writes ``sessions.parquet``, ``findings.parquet``,
``streams.parquet`` (and with ``--packets`` the ``packets/`` dataset) into DIR
(docs/corpus.md). Sessions unchanged since the last batch into DIR are skipped. A session that
fails is a row with its ``error``; the batch goes on. Exit code 0 when the tables were written
(whatever the verdicts), 2 on a usage error.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from decoders.cli.common import PATH, fail, os_reason, quiet_option

if TYPE_CHECKING:
    from decoders.corpus.run import Plan


def _rate_line(done: int, total: int, elapsed: float) -> str:
    """``12/25 sessions, 3.4/min, 4 s left`` (the rate and time left once one is done)."""
    if done == 0 or elapsed <= 0:
        return f"{done}/{total} sessions"
    per_minute = done / elapsed * 60
    left = (total - done) * elapsed / done
    return f"{done}/{total} sessions, {per_minute:.1f}/min, {_duration(left)} left"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """The progress line on stderr: redrawn in place on a terminal, else a line at each tenth."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = enabled and _isatty()
        self.started = time.monotonic()
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        line = _rate_line(done, total, time.monotonic() - self.started)
        if self.tty:
            click.echo(f"\r\033[K{line}", err=True, nl=done == total)
            return
        tenth = done * 10 // max(total, 1)
        if tenth != self.shown or done == total:
            self.shown = tenth
            click.echo(line, err=True)


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except ValueError:
        return False


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--out",
    "out",
    required=True,
    type=PATH,
    help="Folder of the tables (sessions.parquet, findings.parquet, streams.parquet, "
    "packets/); a later batch into it skips the sessions that have not changed.",
)
@click.option(
    "--packets",
    is_flag=True,
    help="Also write the per-packet table of every session (packets/, partitioned by session_id).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="A running dask.distributed scheduler (tcp://host:8786) to analyse on; the workers "
    "must reach the paths and --out (a shared path, or a URL of a filesystem they have).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    default=None,
    help="Processes of Dask's local scheduler (default: the CPUs; 1: serially in this "
    "process). Not with --scheduler.",
)
@quiet_option("No progress or summary; the exit code says whether the tables were written.")
def batch(
    paths: tuple[str, ...],
    out: Path,
    packets: bool,
    scheduler: str | None,
    workers: int | None,
    quiet: bool,
) -> None:
    """Analyse every session folder and capture under PATHS into Parquet tables in --out.

    PATHS are folders, captures, or fsspec URLs (file://…; s3://… with s3fs installed).
    """
    from decoders.corpus.run import connect, execute, write
    from decoders.corpus.task import summary

    if scheduler is not None and workers is not None:
        fail("--workers is for the local scheduler; a --scheduler cluster has its own workers")
    if out.exists() and not out.is_dir():
        fail(f"{out}: not a folder (--out)")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        client = None
        if scheduler is not None:
            try:
                client = stack.enter_context(connect(scheduler))
            except (OSError, ValueError) as error:
                fail(f"--scheduler {scheduler}: {error}")
        local_workers = workers or os.cpu_count() or 1
        todo = _plan(paths, out, packets, client, local_workers)
        if not quiet:
            click.echo(
                f"{len(todo.found)} session(s): {len(todo.todo)} to analyse, {todo.skipped} "
                f"unchanged since the last batch"
                + (f", {todo.dropped} gone" if todo.dropped else ""),
                err=True,
            )
        try:
            outcomes = execute(
                todo.todo,
                packets_dir=todo.packets_dir,
                workers=local_workers,
                progress=Progress(enabled=not quiet),
                client=client,
            )
            written = write(todo, outcomes)
        except OSError as error:
            fail(os_reason(error))
    if quiet:
        return
    failed = sum(1 for o in outcomes if o.tables.sessions["error"][0].as_py() is not None)
    elapsed = time.monotonic() - started
    stats = summary(outcomes)
    peaks = stats["peak_rss_bytes"]
    click.echo(
        f"analysed {len(outcomes)} session(s) in {_duration(elapsed)}"
        + (f" ({failed} failed: see the error column)" if failed else "")
        + (f"; peak RSS per worker up to {max(peaks.values()) / 2**20:.0f} MiB" if peaks else "")
    )
    click.echo(
        f"{out}: sessions.parquet ({written.sessions} rows), findings.parquet "
        f"({written.findings}), streams.parquet ({written.streams})"
        + (", packets/" if packets else "")
    )


def _plan(paths: tuple[str, ...], out: Path, packets: bool, client: Any, workers: int) -> Plan:
    """The batch's plan (:func:`decoders.corpus.run.plan`), or one line and exit code 2."""
    from decoders.corpus.run import plan
    from decoders.corpus.sources import SourceError

    try:
        todo = plan(paths, out, packets=packets, client=client, workers=workers)
    except SourceError as error:
        fail(str(error))
    except OSError as error:
        fail(os_reason(error))
    if not todo.found:
        fail(f"no session folder or capture under {', '.join(paths)}")
    return todo


if __name__ == "__main__":  # pragma: no cover
    batch()
