"""The HTML report: one self-contained page for the reader of an audit.

:func:`render_html` turns an :class:`~decoders.audit.analysis.Analysis` into a single HTML
document that works offline in any browser: the verdict, the timeline charts (inline SVG,
:mod:`decoders.report.plots`), every finding with its evidence, its first frames and
Wireshark's dissection of them (:mod:`decoders.report.dissection`), the stream table, what
could and could not be measured, the SDP as negotiated (key material removed) and, for
reproducibility, the SHA-256 of every input and the tool's version.

Safety: the page is rendered by Jinja2 with autoescaping, so every string that came from
captured traffic (telemetry endpoints and field names, SDP, codec names, flow ids) is escaped;
only the charts are inserted as markup, and :mod:`decoders.report.svg` escapes the text in them.
A Content-Security-Policy forbids scripts and every network fetch. No keys and no audio are
written: ``a=crypto`` keys and ``a=ice-pwd`` are removed from the SDP shown.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import platform
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jinja2
import numpy as np

from decoders import __version__, outputs
from decoders.audit.speech import describe as describe_speech
from decoders.report.plots import figures, time_axis
from decoders.report.summary import HEADLINES, MEANINGS
from decoders.report.wireshark import finding_dissections, frame_filter
from decoders.session.timeline import TRANSITION, UNMUTED

if TYPE_CHECKING:
    from decoders.audit.analysis import Analysis, Resolved
    from decoders.audit.flags import Finding
    from decoders.audit.measure import MediaMeasurement, PhaseStats

MAX_MESSAGES: Final = 500
"""Telemetry messages listed in the table; the charts show them all."""
MAX_SDP_CHARS: Final = 20_000
_CRYPTO = re.compile(r"^(a=crypto:\S+\s+\S+\s+inline:)[^|\s]+", re.MULTILINE | re.IGNORECASE)
_ICE_PWD = re.compile(r"^(a=ice-pwd:)\S*", re.MULTILINE | re.IGNORECASE)
_KEY_LINE = re.compile(r"^(k=)\S*", re.MULTILINE)


@cache
def _template() -> jinja2.Template:
    source = importlib.resources.files("decoders.report").joinpath("report.html").read_text("utf-8")
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.from_string(source)


def redact_sdp(text: str) -> str:
    """The SDP without key material: ``a=crypto`` inline keys, ``a=ice-pwd`` and ``k=`` lines."""
    text = _CRYPTO.sub(r"\1<removed>", text)
    text = _ICE_PWD.sub(r"\1<removed>", text)
    return _KEY_LINE.sub(r"\1<removed>", text)


def sha256_file(path: Path) -> str:
    with path.open("rb") as fo:
        return hashlib.file_digest(fo, "sha256").hexdigest()


def _fmt(value: Any, digits: int = 4) -> str:
    """A value for a table cell: numbers to ``digits`` significant figures, None as a dash."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if not np.isfinite(number):
            return "\u2013"
        return f"{number:.{digits}g}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_fmt(v, digits)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v, digits) for v in value) or "\u2013"
    return str(value)


def _seconds(t: float | None, origin: float) -> str:
    return "\u2013" if t is None else f"{t - origin:.3f}"


@dataclass(frozen=True)
class _Input:
    role: str
    path: str
    bytes: str
    sha256: str
    manifest: str


def _manifest_hashes(manifest: dict[str, Any]) -> dict[str, str]:
    """File name -> SHA-256 as session.json recorded them (``files``, and ``reference``)."""
    out: dict[str, str] = {}
    listed = manifest.get("files")
    entries = listed if isinstance(listed, list) else []
    if isinstance(listed, dict):
        entries = [{"name": k, **v} for k, v in listed.items() if isinstance(v, dict)]
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str):
            out[str(entry.get("name"))] = entry["sha256"]
    reference = manifest.get("reference")
    if isinstance(reference, dict) and isinstance(reference.get("sha256"), str):
        out["reference"] = reference["sha256"]
    return out


def input_files(resolved: Resolved) -> list[_Input]:
    """Every file the analysis read, with its size and SHA-256 (and whether session.json agrees)."""
    roles: list[tuple[str, Path | None]] = [
        ("capture", resolved.capture),
        ("events", resolved.events),
        ("flows", resolved.flows),
        ("timeline", resolved.timeline),
        ("keys", resolved.keys),
        *(("SDP", p) for p in resolved.sdp),
        ("reference signal", resolved.reference),
    ]
    if resolved.session_dir is not None and resolved.manifest:
        roles.append(("manifest", resolved.session_dir / "session.json"))
    recorded_hashes = _manifest_hashes(resolved.manifest)
    out = []
    for role, path in roles:
        if path is None or not path.is_file():
            continue
        digest = sha256_file(path)
        recorded = recorded_hashes.get("reference" if role == "reference signal" else path.name)
        if role == "manifest" or recorded is None:
            agrees = "\u2013"
        else:
            agrees = "same" if recorded == digest else "DIFFERENT (changed since recording)"
        out.append(_Input(role, str(path), str(path.stat().st_size), digest, agrees))
    return out


def _phase_row(name: str, phase: PhaseStats) -> dict[str, str]:
    sizes, levels, decoded = phase.sizes, phase.levels, phase.decoded
    return {
        "name": name,
        "seconds": _fmt(phase.seconds, 3),
        "packets": str(phase.packets),
        "rate": _fmt(phase.packets_per_second, 3),
        "median": _fmt(sizes.median if sizes else None),
        "entropy": f"{sizes.entropy_bits:.2f}" if sizes else "\u2013",
        "distinct": str(sizes.distinct) if sizes else "\u2013",
        "level": f"-{levels.median:.0f}" if levels else "\u2013",
        "decoded": f"{decoded.median_dbfs:.1f}" if decoded else "\u2013",
        "sender_reports": str(phase.sender_reports),
    }


def _streams(media: MediaMeasurement | None) -> list[dict[str, Any]]:
    if media is None:
        return []
    out = []
    windows = sorted({w for (_, phase, w) in media.phases if phase == "muted" and w is not None})
    for info in media.streams:
        phases = [
            _phase_row("unmuted", media.phase(info.index, "unmuted")),
            _phase_row("muted (all windows)", media.phase(info.index, "muted")),
        ]
        if len(windows) > 1:
            phases += [
                _phase_row(f"muted, window {w + 1}", media.phase(info.index, "muted", w))
                for w in windows
            ]
        phases.append(_phase_row("transition (grace)", media.phase(info.index, "transition")))
        side = {True: "muted side", False: "other side", None: "unknown"}[info.local]
        codec = info.codec or "?"
        rate = f"/{info.clock_rate}" if info.clock_rate else ""
        out.append(
            {
                "number": info.index + 1,
                "src": info.src,
                "src_port": info.src_port,
                "dst": info.dst,
                "dst_port": info.dst_port,
                "ssrc": f"0x{info.ssrc:08x}",
                "payload": f"{info.media} {codec}{rate}",
                "packets": info.packets,
                "side": side,
                "judged": "yes" if info.judged else "no",
                "phases": phases,
            }
        )
    return out


def _correlation(finding: Finding) -> str | None:
    result = finding.correlation
    if result is None:
        return None
    data = result.to_json()
    verdict = (
        "it follows the microphone's signal: proven"
        if data.get("proven")
        else "no clear link to the microphone's signal"
    )
    return (
        f"{data.get('series')} against the reference signal: r = {_fmt(data.get('r'), 3)} "
        f"at a lag of {_fmt(data.get('lag_s'), 3)} s, p = {_fmt(data.get('p_value'), 3)} "
        f"({data.get('points')} points): {verdict}"
    )


def _findings(findings: Sequence[Finding], origin: float) -> list[dict[str, Any]]:
    out = []
    for number, finding in enumerate(findings, start=1):
        interval = finding.interval
        when = (
            f"{interval[0] - origin:.3f} s to {interval[1] - origin:.3f} s after the capture's "
            "first packet"
            if interval is not None
            else None
        )
        out.append(
            {
                "number": number,
                "id": finding.id,
                "severity": finding.severity,
                "leak": finding.leak,
                "title": finding.title,
                "window": finding.window + 1,
                "meaning": MEANINGS.get(finding.id),
                "where": finding.stream_label or finding.endpoint,
                "when": when,
                "evidence": finding.evidence,
                "correlation": _correlation(finding),
                "first_frames": ", ".join(str(f) for f in finding.first_frames),
                "frame_filter": frame_filter(finding.first_frames),
                "first_messages": ", ".join(finding.first_messages),
                "numbers": [
                    (k.replace("_", " "), _fmt(v))
                    for k, v in finding.numbers.items()
                    if k != "speech"
                ],
                "speech": _speech(finding.numbers.get("speech")),
            }
        )
    return out


def _speech(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a leaked audio level exposes, for the template: its line and its talk spurts
    (start from the capture's start when known, duration)."""
    if not doc:
        return None
    return {
        "text": describe_speech(doc),
        "spurts": [
            (_fmt(s.get("start_from_capture_start")), _fmt(s["duration_s"]))
            for s in doc.get("spurts", [])
        ],
    }


def wireshark_dissections(analysis: Analysis) -> dict[str, Any]:
    """Wireshark's dissection of each finding's first frames, for the template: ``note`` (one
    line when it could not be had, else None) and ``by_finding`` (finding number -> its frames
    and their label), from :func:`~decoders.report.wireshark.finding_dissections`."""
    chosen, dissection = finding_dissections(analysis)
    by_finding: dict[int, dict[str, Any]] = {}
    for number, frames in enumerate(chosen, start=1):
        dissected = dissection.of(frames)
        if dissected:
            label = ", ".join(str(frame.number) for frame in dissected)
            by_finding[number] = {"label": label, "frames": dissected}
    return {"note": dissection.note, "by_finding": by_finding}


def _phase_name(label: int) -> str:
    if label == UNMUTED:
        return "unmuted"
    if label == TRANSITION:
        return "transition"
    return f"muted (window {label + 1})"


def _messages(analysis: Analysis, origin: float) -> tuple[list[dict[str, Any]], int]:
    telemetry = analysis.telemetry
    rows = []
    pairs = list(zip(telemetry.messages, telemetry.labels, strict=True))
    for message, label in pairs[:MAX_MESSAGES]:
        rows.append(
            {
                "time": f"{message.t + telemetry.clock_offset - origin:.3f}",
                "phase": _phase_name(label),
                "endpoint": message.endpoint,
                "fields": [(path, _fmt(value, 6)) for path, value in message.fields],
                "reference": message.reference,
            }
        )
    return rows, max(0, len(pairs) - MAX_MESSAGES)


def _item(what: str, status: str, detail: str) -> dict[str, str]:
    return {"what": what, "status": status, "detail": detail}


def measured(analysis: Analysis) -> list[dict[str, str]]:
    """What could and could not be measured, each with a yes / partly / no and the reason."""
    items = []
    capture = analysis.capture
    if capture is None:
        items.append(_item("Media (capture)", "no", "no capture: packets were not checked"))
    else:
        kinds = ", ".join(f"{n} {k}" for k, n in capture.datagrams.items())
        damage = capture.damage
        items.append(
            _item(
                "Media (capture)",
                "partly" if damage else "yes",
                f"{capture.frames} frames ({capture.format}): "
                f"{kinds or 'no datagrams'}"
                + (f"; damaged: {damage}, read up to it" if damage else ""),
            )
        )
        level = capture.level
        if level.extension_id is None:
            items.append(
                _item(
                    "Audio level (RFC 6464)",
                    "no",
                    f"no extension id: {level.evidence or 'no SDP and none inferred'}",
                )
            )
        else:
            how = {"sdp": "negotiated in SDP", "given": "given", "inferred": "inferred"}.get(
                level.source, level.source
            )
            status = "yes" if level.source in ("sdp", "given") else "partly"
            items.append(
                _item(
                    "Audio level (RFC 6464)",
                    status,
                    f"extension id {level.extension_id} ({how}: {level.evidence})",
                )
            )
        profile = capture.srtp_profile
        items.append(
            _item(
                "Encrypted payload sizes",
                "yes",
                f"SRTP profile {profile}, {capture.srtp_auth_tag_length}-byte auth tag "
                "removed from each size"
                if profile
                else "no DTLS-SRTP profile seen: sizes include any auth tag",
            )
        )
    decoded = analysis.decoded
    items.append(
        _item("Decoded audio (decryption)", "yes" if decoded.measured else "no", decoded.reason)
    )
    timeline = analysis.timeline
    if timeline.empty:
        items.append(_item("Mute timeline", "no", "no mute interval from any source"))
    else:
        others = sorted({i.source for i in timeline.intervals} - set(timeline.primary))
        items.append(
            _item(
                "Mute timeline",
                "yes",
                f"{len(timeline.windows)} window(s) from {', '.join(timeline.primary)}; other "
                f"sources compared: {', '.join(others) or 'none'}",
            )
        )
    local = analysis.local
    if local.known:
        said = "yes" if local.sure else "partly"
        side = local.how
        if not local.sure and local.confidence != "assumed":
            side += f" ({local.confidence} confidence)"
    else:
        said = "no"
        side = (
            "unknown: each address that sends audio was judged as if it were you"
            if analysis.candidates
            else "unknown"
        )
    items.append(_item("Which side was muted", said, side))
    telemetry = analysis.telemetry
    items.append(
        _item(
            "Telemetry (HTTP/WebSocket)",
            "yes" if telemetry.source else "no",
            f"{len(telemetry.messages)} message(s) with volume-like fields, from "
            f"{'events.jsonl' if telemetry.source == 'events' else 'flows.mitm (replayed)'}"
            if telemetry.source
            else "not checked: no events.jsonl or flows.mitm",
        )
    )
    check = analysis.events_check
    if check is not None and check.unusable:
        detail = check.summary()
        if check.replaced_by:
            detail += f"; the telemetry and mute signals were read from {check.replaced_by}"
        elif check.damaged:
            detail += "; what they said was not judged"
        items.append(_item("Events (events.jsonl)", "partly", detail))
    reference = analysis.reference
    items.append(
        _item(
            "Correlation with the microphone's signal",
            "yes" if reference.status == "used" else "no",
            reference.status
            + (f" ({reference.file}, {_fmt(reference.duration_s, 3)} s)" if reference.file else ""),
        )
    )
    return items


def _sdp_docs(paths: Iterable[Path]) -> list[dict[str, Any]]:
    docs = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        shown = redact_sdp(text.replace("\r\n", "\n"))
        if len(shown) > MAX_SDP_CHARS:
            shown = shown[:MAX_SDP_CHARS] + "\n[... cut]"
        docs.append({"name": path.name, "lines": shown.count("\n") + 1, "text": shown})
    return docs


def _lab_tools(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    tools = manifest.get("tools")
    if not isinstance(tools, dict):
        return []
    return [(str(k), _fmt(v)) for k, v in sorted(tools.items())]


def _title(analysis: Analysis) -> str:
    resolved = analysis.inputs
    if resolved.session_dir is not None:
        return resolved.session_dir.resolve().name
    if resolved.capture is not None:
        return resolved.capture.name
    return "session"


def render_html(analysis: Analysis, *, generated: datetime | None = None) -> str:
    """The whole report as one HTML document (see the module docstring)."""
    axis = time_axis(analysis)
    origin = axis.origin
    verdict = analysis.verdict
    by_window = {w.window: w for w in verdict.windows}
    windows = []
    for window in analysis.timeline.windows:
        judged = by_window.get(window.index)
        windows.append(
            {
                "number": window.index + 1,
                "start": _seconds(window.start, origin),
                "end": _seconds(window.end, origin),
                "seconds": f"{window.seconds:.3f}",
                "sources": ", ".join(window.sources),
                "verdict": judged.verdict if judged else None,
                "confidence": f"{judged.label} ({judged.confidence:.2f})"
                if judged and judged.verdict != "inconclusive"
                else None,
                "reason": judged.reason if judged else "",
            }
        )
    messages, hidden = _messages(analysis, origin)
    skipped = analysis.capture.skipped if analysis.capture is not None else {}
    media = analysis.media
    start = (
        datetime.fromtimestamp(media.span[0], UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        if media is not None and media.span is not None
        else None
    )
    context = {
        "title": _title(analysis),
        "generated": (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "capture_start": start,
        "tool": {
            "version": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "verdict": {
            "verdict": verdict.verdict,
            "headline": HEADLINES.get(verdict.verdict, verdict.verdict),
            "label": verdict.label,
            "confidence": f"{verdict.confidence:.2f}",
            "reason": verdict.reason,
            "hint": verdict.hint,
        },
        "windows": windows,
        "grace": f"{analysis.timeline.grace:g}",
        "clock_offset": f"{analysis.timeline.clock_offset:g}",
        "muted_side": analysis.local.how,
        "figures": figures(analysis),
        "messages": messages,
        "messages_hidden": hidden,
        "findings": _findings(analysis.findings, origin),
        "dissections": wireshark_dissections(analysis),
        "level_privacy": analysis.level_privacy.text() if analysis.level_privacy else None,
        "streams": _streams(media),
        "has_capture": analysis.capture is not None,
        "measured": measured(analysis),
        "warnings": list(analysis.warnings),
        "skipped": ", ".join(f"{k} {v}" for k, v in skipped.items()),
        "sdp": _sdp_docs(analysis.inputs.sdp),
        "inputs": input_files(analysis.inputs),
        "lab_tools": _lab_tools(analysis.inputs.manifest),
    }
    return _template().render(context)


def write_html(analysis: Analysis, path: Path, *, generated: datetime | None = None) -> Path:
    """Render the report and write it to ``path`` (UTF-8); returns the path."""
    text = render_html(analysis, generated=generated)
    path.parent.mkdir(parents=True, exist_ok=True)
    outputs.write_text(path, text)  # whole or not at all: a browser may be reloading it
    return path
