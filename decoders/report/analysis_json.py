"""``report.json``: one audit as a versioned JSON document (schema in docs/report-schema.md).

Bump :data:`REPORT_SCHEMA_VERSION` on any incompatible change; new fields may be added without
one. Times are Unix epoch seconds on the capture's clock, each with its distance from the
capture's first packet (``*_from_capture_start``) so it can be found in Wireshark; floats that
are not finite become null.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from decoders import __version__

if TYPE_CHECKING:
    from decoders.audit.analysis import Analysis
    from decoders.audit.flags import Finding
    from decoders.audit.measure import MediaMeasurement, TelemetryMeasurement
    from decoders.session.timeline import Timeline

REPORT_SCHEMA: Final = "mutecheck.report"
REPORT_SCHEMA_VERSION: Final = 1


def _since(t: float | None, first: float | None) -> float | None:
    if t is None or first is None:
        return None
    return round(t - first, 6)


def clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, tuples lists, keys text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return clean(value.item())
    return value


def timeline_json(timeline: Timeline, first: float | None) -> dict[str, Any]:
    windows = []
    for w in timeline.windows:
        judged = w.judged(timeline.grace)
        windows.append(
            {
                "index": w.index,
                "number": w.index + 1,
                "start": w.start,
                "end": w.end,
                "seconds": round(w.seconds, 6),
                "start_from_capture_start": _since(w.start, first),
                "end_from_capture_start": _since(w.end, first),
                "judged": list(judged) if judged else None,
                "sources": list(w.sources),
            }
        )
    return {
        "grace_s": timeline.grace,
        "clock_offset_s": timeline.clock_offset,
        "primary_sources": list(timeline.primary),
        "windows": windows,
        "sources": [i.to_json() for i in timeline.intervals],
        "warnings": list(timeline.warnings),
    }


def streams_json(media: MediaMeasurement) -> list[dict[str, Any]]:
    out = []
    for info in media.streams:
        phases: dict[str, Any] = {
            phase: media.phase(info.index, phase).to_json()
            for phase in ("unmuted", "transition", "muted")
        }
        phases["windows"] = [
            stats.to_json()
            for (stream, phase, window), stats in sorted(
                media.phases.items(), key=lambda item: (item[0][0], item[0][2] or 0)
            )
            if stream == info.index and phase == "muted" and window is not None
        ]
        entry = info.to_json()
        entry["judged"] = info.judged
        entry["phases"] = phases
        out.append(entry)
    return out


def telemetry_json(telemetry: TelemetryMeasurement) -> dict[str, Any]:
    return {
        "source": telemetry.source,
        "messages": len(telemetry.messages),
        "phases": {
            "unmuted": telemetry.phases[("unmuted", None)].to_json(),
            "transition": telemetry.phases[("transition", None)].to_json(),
            "muted": telemetry.phases[("muted", None)].to_json(),
            "windows": [
                p.to_json()
                for (phase, window), p in sorted(
                    telemetry.phases.items(), key=lambda item: item[0][1] or 0
                )
                if phase == "muted" and window is not None
            ],
        },
    }


def finding_json(index: int, finding: Finding, first: float | None) -> dict[str, Any]:
    interval = finding.interval
    return {
        "index": index,
        "id": finding.id,
        "severity": finding.severity,
        "leak": finding.leak,
        "title": finding.title,
        "window": finding.window,
        "stream": finding.stream,
        "stream_label": finding.stream_label,
        "endpoint": finding.endpoint,
        "interval": {
            "start": interval[0],
            "end": interval[1],
            "start_from_capture_start": _since(interval[0], first),
            "end_from_capture_start": _since(interval[1], first),
        }
        if interval
        else None,
        "numbers": finding.numbers,
        "evidence": finding.evidence,
        "first_frames": list(finding.first_frames),
        "first_messages": list(finding.first_messages),
        "correlation": finding.correlation.to_json() if finding.correlation else None,
    }


def report_document(analysis: Analysis) -> dict[str, Any]:
    """The whole report (docs/report-schema.md)."""
    media = analysis.media
    first = media.span[0] if media is not None and media.span else None
    verdict = analysis.verdict
    doc: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "version": REPORT_SCHEMA_VERSION,
        "tool": {"name": "mutecheck", "version": __version__},
        "verdict": verdict.to_json(),
        "windows": [w.to_json() for w in verdict.windows],
        "findings": [finding_json(i, f, first) for i, f in enumerate(analysis.findings)],
        "inputs": analysis.inputs.to_json(),
        "timeline": timeline_json(analysis.timeline, first),
        "capture": analysis.capture.to_json() if analysis.capture is not None else None,
        "muted_side": {
            **analysis.local.to_json(),
            "candidates": [c.to_json() for c in analysis.candidates],
        },
        "streams": streams_json(media) if media is not None else [],
        "relayed_tls": (
            analysis.relayed.to_json(analysis.local) if analysis.relayed is not None else []
        ),
        "telemetry": telemetry_json(analysis.telemetry),
        "events_file": analysis.events_check.to_json() if analysis.events_check else None,
        "decoded_audio": analysis.decoded.to_json(),
        "reference": analysis.reference.to_json(),
        "level_privacy": (
            analysis.level_privacy.to_json() if analysis.level_privacy is not None else None
        ),
        "warnings": list(analysis.warnings),
    }
    result: dict[str, Any] = clean(doc)
    return result
