"""The corpus tables (docs/corpus.md): sessions, findings, streams and packets, as Arrow.

One writer for every command: ``mutecheck batch`` (a corpus), ``analyze --parquet DIR`` (one
session) and ``streams --parquet F`` (one capture's stream table). The rows of a session come
from the same ``report.json`` document ``analyze`` writes (:func:`session_tables`), plus the
capture's stream table (the streams of ``mutecheck streams``, joined across their legs as the
audit measures them) and, on request, the per-packet table the pipeline already builds
(:data:`decoders.wire.rowbuild.COLUMNS`). Column names are stable; add columns, never rename.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from decoders import outputs
from decoders.media.streams import StreamStats
from decoders.wire.rowbuild import COLUMNS, KIND_CODES, TRANSPORT_CODES, TUNNEL_CODES, Rows

CORPUS_SCHEMA_VERSION: Final = 1
"""Bumped on an incompatible change of any table (a batch then redoes every session)."""
VERSION_KEY: Final = b"mutecheck.corpus.version"

WINDOW_RESULT = pa.struct(
    [
        ("window", pa.int32()),
        ("verdict", pa.string()),
        ("confidence", pa.float64()),
        ("reason", pa.string()),
        ("findings", pa.int32()),
    ]
)

SESSIONS = pa.schema(
    [
        ("session_id", pa.string()),
        ("path", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("inputs", pa.list_(pa.string())),
        ("input_bytes", pa.int64()),
        ("content_hash", pa.string()),
        ("tool_version", pa.string()),
        ("source", pa.string()),
        ("app", pa.string()),
        ("variant", pa.string()),
        ("relay", pa.string()),
        ("verdict", pa.string()),
        ("confidence", pa.float64()),
        ("confidence_label", pa.string()),
        ("reason", pa.string()),
        ("hint", pa.string()),
        ("exit_code", pa.int8()),
        ("windows", pa.int32()),
        ("window_results", pa.list_(WINDOW_RESULT)),
        ("findings", pa.int32()),
        ("content_findings", pa.int32()),
        ("metadata_findings", pa.int32()),
        ("streams", pa.int32()),
        ("judged_streams", pa.int32()),
        ("capture_format", pa.string()),
        ("frames", pa.int64()),
        ("rtp_packets", pa.int64()),
        ("rtcp_packets", pa.int64()),
        ("stun_packets", pa.int64()),
        ("capture_first", pa.float64()),
        ("capture_last", pa.float64()),
        ("capture_damage", pa.string()),
        ("telemetry_source", pa.string()),
        ("telemetry_messages", pa.int32()),
        ("muted_side", pa.string()),
        ("muted_side_confidence", pa.string()),
        ("decoded_audio", pa.string()),
        ("warnings", pa.list_(pa.string())),
        ("error", pa.string()),
        ("packets_written", pa.bool_()),
    ]
)

FINDINGS = pa.schema(
    [
        ("session_id", pa.string()),
        ("index", pa.int32()),
        ("id", pa.string()),
        ("severity", pa.string()),
        ("leak", pa.string()),
        ("title", pa.string()),
        ("window", pa.int32()),
        ("stream", pa.int32()),
        ("stream_label", pa.string()),
        ("endpoint", pa.string()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("start_from_capture_start", pa.float64()),
        ("end_from_capture_start", pa.float64()),
        ("evidence", pa.string()),
        ("first_frames", pa.list_(pa.int64())),
        ("first_messages", pa.list_(pa.string())),
        ("correlation_r", pa.float64()),
        ("correlation_lag_s", pa.float64()),
        ("correlation_p_value", pa.float64()),
        ("correlation_proven", pa.bool_()),
        ("numbers", pa.string()),
    ]
)

STREAMS = pa.schema(
    [
        ("session_id", pa.string()),
        ("stream", pa.int32()),
        ("label", pa.string()),
        ("src", pa.string()),
        ("src_port", pa.int32()),
        ("dst", pa.string()),
        ("dst_port", pa.int32()),
        ("ssrc", pa.int64()),
        ("media", pa.string()),
        ("codec", pa.string()),
        ("clock_rate", pa.int32()),
        ("role", pa.string()),
        ("legs", pa.int32()),
        ("sent_by_muted_side", pa.bool_()),
        ("judged", pa.bool_()),
        ("phase", pa.string()),
        ("window", pa.int32()),
        ("seconds", pa.float64()),
        ("packets", pa.int64()),
        ("packets_per_second", pa.float64()),
        ("bytes_per_second", pa.float64()),
        ("payload_median", pa.float64()),
        ("payload_iqr", pa.float64()),
        ("payload_distinct", pa.int32()),
        ("payload_entropy_bits", pa.float64()),
        ("audio_level_packets", pa.int64()),
        ("audio_level_median", pa.float64()),
        ("audio_level_loud_share", pa.float64()),
        ("rtcp_sender_reports", pa.int64()),
        ("decoded_median_dbfs", pa.float64()),
        ("decoded_loud_share", pa.float64()),
        ("lost", pa.int64()),
        ("max_jitter_ms", pa.float64()),
        ("first_frame", pa.int64()),
    ]
)

PACKET_DTYPES: Final[dict[str, pa.DataType]] = {
    name: pa.from_numpy_dtype(np.dtype(dtype)) for name, dtype in COLUMNS.items()
}
LABELLED: Final = {"src", "dst", "kind", "tunnel", "transport"}
"""Packet columns stored as their text (dictionary-encoded), not the pipeline's codes."""
PACKETS = pa.schema(
    [
        (name, pa.dictionary(pa.int32(), pa.string()) if name in LABELLED else dtype)
        for name, dtype in PACKET_DTYPES.items()
    ]
)
TABLES: Final[dict[str, pa.Schema]] = {
    "sessions": SESSIONS,
    "findings": FINDINGS,
    "streams": STREAMS,
}
PHASE_ORDER: Final = ("all", "unmuted", "transition", "muted")


@dataclass(frozen=True)
class SessionInfo:
    """What the batch knows of a session besides its analysis (docs/corpus.md, sessions)."""

    session_id: str
    path: str
    name: str
    kind: str
    inputs: tuple[str, ...]
    input_bytes: int
    content_hash: str
    tool_version: str
    manifest: Mapping[str, Any]


@dataclass(frozen=True)
class SessionTables:
    """One session's rows of each table (pyarrow tables with the schemas above)."""

    sessions: pa.Table
    findings: pa.Table
    streams: pa.Table

    def get(self, name: str) -> pa.Table:
        table: pa.Table = getattr(self, name)
        return table


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _get(doc: Mapping[str, Any] | None, *keys: str) -> Any:
    value: Any = doc
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def manifest_labels(manifest: Mapping[str, Any]) -> dict[str, str | None]:
    """``source``, ``app``, ``variant``, ``relay`` as session.json says them (else None)."""

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    return {
        "source": text(manifest.get("source")),
        "app": text(_get(manifest, "app", "name")) or text(manifest.get("kind")),
        "variant": text(manifest.get("variant")),
        "relay": text(_get(manifest, "relay", "transport")),
    }


def session_row(
    info: SessionInfo,
    doc: Mapping[str, Any] | None,
    *,
    error: str | None,
    exit_code: int | None,
    packets: bool,
) -> dict[str, Any]:
    """The session's row: its inputs and, from report.json's document, the results (without
    a document: ``error`` and the ``exit_code`` ``analyze`` would have given)."""
    verdict = doc.get("verdict", {}) if doc else {}
    findings = doc.get("findings", []) if doc else []
    streams = doc.get("streams", []) if doc else []
    capture = doc.get("capture") if doc else None
    datagrams = _get(capture, "datagrams") or {}
    leaks = [f.get("leak") for f in findings]
    return {
        "session_id": info.session_id,
        "path": info.path,
        "name": info.name,
        "kind": info.kind,
        "inputs": list(info.inputs),
        "input_bytes": info.input_bytes,
        "content_hash": info.content_hash,
        "tool_version": info.tool_version,
        **manifest_labels(info.manifest),
        "verdict": verdict.get("verdict"),
        "confidence": _finite(verdict.get("confidence")),
        "confidence_label": verdict.get("confidence_label"),
        "reason": verdict.get("reason"),
        "hint": verdict.get("hint"),
        "exit_code": verdict.get("exit_code") if doc else exit_code,
        "windows": len(_get(doc, "timeline", "windows") or []) if doc else None,
        "window_results": [
            {
                "window": w.get("window"),
                "verdict": w.get("verdict"),
                "confidence": _finite(w.get("confidence")),
                "reason": w.get("reason"),
                "findings": len(w.get("findings") or []),
            }
            for w in (doc.get("windows", []) if doc else [])
        ],
        "findings": len(findings) if doc else None,
        "content_findings": leaks.count("content") if doc else None,
        "metadata_findings": leaks.count("metadata") if doc else None,
        "streams": len(streams) if doc else None,
        "judged_streams": sum(1 for s in streams if s.get("judged")) if doc else None,
        "capture_format": _get(capture, "format"),
        "frames": _get(capture, "frames"),
        "rtp_packets": datagrams.get("rtp") if capture else None,
        "rtcp_packets": datagrams.get("rtcp") if capture else None,
        "stun_packets": datagrams.get("stun") if capture else None,
        "capture_first": _finite(_get(capture, "first")),
        "capture_last": _finite(_get(capture, "last")),
        "capture_damage": _get(capture, "damage"),
        "telemetry_source": _get(doc, "telemetry", "source"),
        "telemetry_messages": _get(doc, "telemetry", "messages"),
        "muted_side": _get(doc, "muted_side", "how"),
        "muted_side_confidence": _get(doc, "muted_side", "confidence"),
        "decoded_audio": _get(doc, "decoded_audio", "status"),
        "warnings": list(doc.get("warnings", [])) if doc else [],
        "error": error,
        "packets_written": packets,
    }


def finding_rows(session: str, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per finding of report.json, in its order."""
    rows = []
    for f in doc.get("findings", []):
        interval = f.get("interval") or {}
        correlation = f.get("correlation") or {}
        rows.append(
            {
                "session_id": session,
                "index": f.get("index"),
                "id": f.get("id"),
                "severity": f.get("severity"),
                "leak": f.get("leak"),
                "title": f.get("title"),
                "window": f.get("window"),
                "stream": f.get("stream"),
                "stream_label": f.get("stream_label"),
                "endpoint": f.get("endpoint"),
                "start": _finite(interval.get("start")),
                "end": _finite(interval.get("end")),
                "start_from_capture_start": _finite(interval.get("start_from_capture_start")),
                "end_from_capture_start": _finite(interval.get("end_from_capture_start")),
                "evidence": f.get("evidence"),
                "first_frames": list(f.get("first_frames") or []),
                "first_messages": list(f.get("first_messages") or []),
                "correlation_r": _finite(correlation.get("r")),
                "correlation_lag_s": _finite(correlation.get("lag_s")),
                "correlation_p_value": _finite(correlation.get("p_value")),
                "correlation_proven": correlation.get("proven") if correlation else None,
                "numbers": json.dumps(f.get("numbers") or {}, sort_keys=True, allow_nan=False),
            }
        )
    return rows


def capture_stream_rows(session: str, streams: Sequence[StreamStats]) -> list[dict[str, Any]]:
    """Phase ``all``: each stream of the capture's stream table, whole (as ``mutecheck
    streams`` measures it), in the audit's order; sides are not known here (null)."""
    rows = []
    for index, s in enumerate(streams):
        rows.append(
            {
                **_identity(session, index, s.src, s.src_port, s.dst, s.dst_port, s.ssrc),
                "media": s.media,
                "codec": s.codec,
                "clock_rate": s.clock_rate,
                "role": s.role,
                "legs": s.legs,
                "phase": "all",
                "seconds": _finite(s.duration_s),
                "packets": s.packets,
                "packets_per_second": _finite(s.packets_per_second),
                "bytes_per_second": _finite(s.bytes_per_second),
                "payload_median": _finite(s.payload_median),
                "audio_level_packets": s.audio_level_packets,
                "audio_level_median": _finite(s.audio_level_median),
                "lost": s.lost,
                "max_jitter_ms": _finite(s.max_jitter_ms),
                "first_frame": s.first_frame,
            }
        )
    return rows


def _identity(
    session: str, index: int, src: str, src_port: int, dst: str, dst_port: int, ssrc: int
) -> dict[str, Any]:
    return {
        "session_id": session,
        "stream": index,
        "label": f"{src}:{src_port} -> {dst}:{dst_port} SSRC 0x{ssrc:08x}",
        "src": src,
        "src_port": src_port,
        "dst": dst,
        "dst_port": dst_port,
        "ssrc": ssrc,
    }


def phase_stream_rows(session: str, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each stream of report.json per phase (unmuted, transition, muted) and per mute window
    (phase ``muted`` with its ``window``)."""
    rows = []
    for s in doc.get("streams", []):
        phases = s.get("phases") or {}
        listed = [phases.get(p) for p in PHASE_ORDER[1:]] + list(phases.get("windows") or [])
        for phase in listed:
            if not phase:
                continue
            sizes = phase.get("payload_bytes") or {}
            levels = phase.get("audio_level") or {}
            decoded = phase.get("decoded") or {}
            rows.append(
                {
                    **_identity(
                        session,
                        s["index"],
                        s["src"],
                        s["src_port"],
                        s["dst"],
                        s["dst_port"],
                        s["ssrc"],
                    ),
                    "media": s.get("media"),
                    "codec": s.get("codec"),
                    "clock_rate": s.get("clock_rate"),
                    "role": s.get("role"),
                    "legs": s.get("legs"),
                    "sent_by_muted_side": s.get("sent_by_muted_side"),
                    "judged": s.get("judged"),
                    "phase": phase.get("phase"),
                    "window": phase.get("window"),
                    "seconds": _finite(phase.get("seconds")),
                    "packets": phase.get("packets"),
                    "packets_per_second": _finite(phase.get("packets_per_second")),
                    "bytes_per_second": _finite(phase.get("bytes_per_second")),
                    "payload_median": _finite(sizes.get("median")),
                    "payload_iqr": _finite(sizes.get("iqr")),
                    "payload_distinct": sizes.get("distinct"),
                    "payload_entropy_bits": _finite(sizes.get("entropy_bits")),
                    "audio_level_packets": levels.get("packets"),
                    "audio_level_median": _finite(levels.get("median")),
                    "audio_level_loud_share": _finite(levels.get("loud_share")),
                    "rtcp_sender_reports": phase.get("rtcp_sender_reports"),
                    "decoded_median_dbfs": _finite(decoded.get("median_dbfs")),
                    "decoded_loud_share": _finite(decoded.get("loud_share")),
                    "first_frame": phase.get("first_frame"),
                }
            )
    return rows


def table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts; a missing column is null) as a table of ``schema``."""
    listed = list(rows)
    return pa.Table.from_pylist(
        [{name: row.get(name) for name in schema.names} for row in listed], schema=schema
    )


def session_tables(
    info: SessionInfo,
    doc: Mapping[str, Any] | None,
    streams: Sequence[StreamStats],
    *,
    error: str | None = None,
    exit_code: int | None = None,
    packets: bool = False,
) -> SessionTables:
    """A session's rows of every table; ``doc`` is its report.json document (None: the
    analysis failed with ``error``), ``streams`` its capture's stream table."""
    sid = info.session_id
    return SessionTables(
        sessions=table(
            [session_row(info, doc, error=error, exit_code=exit_code, packets=packets)], SESSIONS
        ),
        findings=table(finding_rows(sid, doc) if doc else [], FINDINGS),
        streams=table(
            capture_stream_rows(sid, streams) + (phase_stream_rows(sid, doc) if doc else []),
            STREAMS,
        ),
    )


def packet_table(rows: Rows) -> pa.Table:
    """The pipeline's packet table (:data:`COLUMNS`), the coded columns as their text."""
    arrays: list[pa.Array] = []
    for name, dtype in PACKET_DTYPES.items():
        column = rows[name]
        if name in ("src", "dst"):
            arrays.append(_labelled(column, rows.addresses))
        elif name == "kind":
            arrays.append(_labelled(column, [str(k) for k in KIND_CODES]))
        elif name == "tunnel":
            arrays.append(_labelled(column, [t or "" for t in TUNNEL_CODES], null_code=0))
        elif name == "transport":
            arrays.append(_labelled(column, list(TRANSPORT_CODES)))
        else:
            arrays.append(pa.array(column, type=dtype))
    return pa.Table.from_arrays(arrays, schema=PACKETS)


def _labelled(codes: Any, labels: Sequence[str], null_code: int | None = None) -> pa.Array:
    """Codes as a dictionary array of their labels (``null_code``: null, e.g. no tunnel)."""
    values = np.asarray(codes, dtype=np.int32)
    mask = values == null_code if null_code is not None else None
    indices = pa.array(values, mask=mask)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(labels), type=pa.string()))


def with_version(schema: pa.Schema) -> pa.Schema:
    return schema.with_metadata({VERSION_KEY: str(CORPUS_SCHEMA_VERSION).encode()})


def write_table(path: Path, data: pa.Table) -> None:
    """One table as one Parquet file, whole or not at all (:mod:`decoders.outputs`)."""
    with outputs.atomic_open(path) as fo:
        _fill(fo, data)


def _fill(fo: BinaryIO, data: pa.Table) -> None:
    data = data.replace_schema_metadata(with_version(data.schema).metadata)
    pq.write_table(data, fo, compression="zstd")


def write_tables(folder: Path, tables: SessionTables | Mapping[str, pa.Table]) -> list[Path]:
    """sessions.parquet, findings.parquet and streams.parquet in ``folder``: all three written
    to temporary files first, then renamed over the old ones one after the other, so that a
    reader finds the three of one run (but for that instant)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.parquet" for name in TABLES]
    with contextlib.ExitStack() as stack:
        for name, path in zip(TABLES, paths, strict=True):
            data = tables.get(name) if isinstance(tables, SessionTables) else tables[name]
            _fill(stack.enter_context(outputs.atomic_open(path)), data)
    return paths


def write_packets(folder: Path, session: str, content: str, rows: Rows) -> Path:
    """The packet table of one session: ``folder/session_id=ID/<content hash>.parquet``."""
    part = folder / f"session_id={session}"
    part.mkdir(parents=True, exist_ok=True)
    path = part / f"{content}.parquet"
    write_table(path, packet_table(rows))
    return path


def read_table(path: Path, name: str) -> pa.Table | None:
    """A table a batch wrote, or None when absent, unreadable or of another version."""
    if not path.is_file():
        return None
    try:
        data = pq.read_table(path)
    except (OSError, pa.ArrowException):
        return None
    version = (data.schema.metadata or {}).get(VERSION_KEY)
    if version != str(CORPUS_SCHEMA_VERSION).encode() or data.schema.names != TABLES[name].names:
        return None
    return data.cast(TABLES[name])
