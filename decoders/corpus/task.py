"""One Dask task: one session analysed as ``mutecheck analyze`` does, into its table rows.

:func:`analyse_session` runs :func:`decoders.audit.analysis.analyze` on the session (a folder
as ``analyze SESSION_DIR``, a capture as ``analyze CAPTURE``, with analyze's defaults), turns
the report.json document :func:`decoders.report.analysis_json.report_document` makes into rows
(:mod:`decoders.corpus.tables`) and, when asked, writes the session's packet table into the
batch's ``packets/`` folder. Nothing it meets stops the corpus: a user error (what ``analyze``
would print as one line, exit code 2) or a crash (exit code 1) becomes the session's ``error``.

A session on a filesystem the worker cannot read as plain files (``s3://`` …) is first copied
into a temporary folder on the worker through fsspec (with the reference signal its
session.json names beside it), analysed there, and the copy removed.
"""

from __future__ import annotations

import posixpath
import resource
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decoders import __version__
from decoders.corpus.sources import Session, content_hash, read_manifest, session_at
from decoders.corpus.tables import SessionInfo, SessionTables, session_tables, write_packets
from decoders.errors import CaptureError, MalformedPacket
from decoders.media.streams import StreamStats


@dataclass(frozen=True)
class Outcome:
    """What a task sends back: the session's rows and how the run went (not in the tables:
    they differ from run to run)."""

    tables: SessionTables
    seconds: float
    peak_rss_bytes: int
    """The worker process's peak resident memory so far (Linux ``ru_maxrss``)."""
    worker: str


def analyse_session(
    session: Session, content_hash: str, input_bytes: int, packets_dir: str | None
) -> Outcome:
    """Analyse ``session`` (see the module docstring); never raises for the session's sake."""
    started = time.perf_counter()
    info = session_info(session, content_hash, input_bytes)
    base = session.filesystem()[1]
    try:
        if session.local:
            tables = _analysed(info, Path(base), session.kind, packets_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="mutecheck-batch-") as scratch:
                local = _fetch(session, Path(scratch))
                tables = _analysed(info, local, session.kind, packets_dir)
    except Exception as error:  # its row, never the run's end
        code = 2 if isinstance(error, ValueError | OSError | CaptureError | MalformedPacket) else 1
        tables = session_tables(info, None, [], error=_describe(error), exit_code=code)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return Outcome(tables, time.perf_counter() - started, usage.ru_maxrss * 1024, _worker_name())


def session_info(session: Session, content_hash: str, input_bytes: int) -> SessionInfo:
    """What the tables say of ``session`` besides its analysis."""
    fs, base = session.filesystem()
    manifest = (
        read_manifest(fs, posixpath.join(base, "session.json")) if _is_folder(session) else {}
    )
    return SessionInfo(
        session_id=session.session_id,
        path=session.url,
        name=session.name,
        kind=session.kind,
        inputs=tuple(_relative(session, p) for p in session.inputs),
        input_bytes=input_bytes,
        content_hash=content_hash,
        tool_version=__version__,
        manifest=manifest,
    )


def one_session(
    path: Path, doc: Mapping[str, Any], streams: Sequence[StreamStats]
) -> SessionTables:
    """The tables of one session analysed by ``mutecheck analyze`` (its report.json document
    and its stream table), with the same id, inputs and hash a batch gives it."""
    session = session_at(str(path))
    digest, size = content_hash(session)
    return session_tables(session_info(session, digest, size), doc, streams)


def _is_folder(session: Session) -> bool:
    return session.kind == "folder"


def _relative(session: Session, path: str) -> str:
    """An input's name as the tables show it: relative to the session folder (``../x`` for
    the shared reference), a bare capture by its name."""
    base = session.filesystem()[1]
    top = base if _is_folder(session) else posixpath.dirname(base)
    return posixpath.relpath(path, top)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return f"{type(error).__name__}: {text}"


def _analysed(info: SessionInfo, path: Path, kind: str, packets_dir: str | None) -> SessionTables:
    """The same analysis as ``mutecheck analyze PATH`` (its defaults; nothing written beside
    the session), as table rows; the packet table into ``packets_dir`` when given."""
    from decoders.audit.analysis import Inputs, analyze
    from decoders.report.analysis_json import report_document

    inputs = Inputs(session_dir=path) if kind == "folder" else Inputs(capture=path)
    result = analyze(inputs)
    doc = report_document(result)
    written = False
    if packets_dir is not None and result.media is not None:
        write_packets(Path(packets_dir), info.session_id, info.content_hash, result.media.rows)
        written = True
    return session_tables(info, doc, result.stream_table, packets=written)


def _fetch(session: Session, scratch: Path) -> Path:
    """A local copy of a session that is not on a local filesystem: its inputs, laid out as
    they are relative to the session (the shared reference one level up stays one level up)."""
    fs, base = session.filesystem()
    top = base if _is_folder(session) else posixpath.dirname(base)
    here = scratch / "session" / "inside"
    for path in session.inputs:
        target = (here / posixpath.relpath(path, top)).resolve()
        if not target.is_relative_to(scratch.resolve()):
            continue  # deeper than the one shared level the lab uses: not fetched
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(path, str(target))
    return here if _is_folder(session) else here / posixpath.basename(base)


def _worker_name() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Peak RSS per worker (the largest any of its tasks saw) and the analysis seconds."""
    peaks: dict[str, int] = {}
    for outcome in outcomes:
        peaks[outcome.worker] = max(peaks.get(outcome.worker, 0), outcome.peak_rss_bytes)
    return {
        "workers": len(peaks),
        "peak_rss_bytes": peaks,
        "analysis_seconds": sum(o.seconds for o in outcomes),
    }
