"""The terminal summary: the verdict first, in plain words, then each finding with its numbers.

Works from the report document (:func:`decoders.report.analysis_json.report_document`), so a
saved ``report.json`` prints the same summary.
"""

from __future__ import annotations

from typing import Any, Final

from decoders.audit.speech import describe as describe_speech
from decoders.report.style import Style

HEADLINES: Final = {
    "content-leak": "LEAK: sound from your microphone left this computer while you were muted.",
    "metadata-leak": (
        "LEAK (metadata): not the sound itself, but information about it "
        "(how loud it was) left this computer while you were muted."
    ),
    "no-leak": "NO LEAK: nothing of your microphone's sound left this computer while muted.",
    "inconclusive": "CANNOT TELL whether anything left while you were muted.",
}
MEANINGS: Final = {
    "audio-level-while-muted": (
        "Every voice packet carries a loudness label that is not encrypted; while you were "
        "muted it said there was sound."
    ),
    "encoded-content-while-muted": (
        "The voice packets are encrypted, but their sizes changed the way speech does; a muted "
        "microphone sends one small packet of silence, always the same size."
    ),
    "decoded-audio-while-muted": (
        "With the session's keys the audio was decrypted and played back: it is not silent."
    ),
    "volume-telemetry-while-muted": (
        "The app sent measurements of how loud your microphone was to a server."
    ),
    "new-stream-while-muted": "A new audio connection started while you were muted.",
    "media-continues-while-muted": (
        "Packets of silence kept flowing (Chromium and Firefox both do this; they hold no sound)."
    ),
    "no-media-while-muted": "The app stopped sending audio while you were muted.",
    "server-side-mute": (
        "The app told its server that you were muted, so that the server stops passing your "
        "voice on to the others (whether it did cannot be seen from your side); but your browser "
        "kept sending your microphone to that server."
    ),
    "constant-bit-rate-sizes": (
        "This codec sends every packet at the same size, speech or silence: the sizes cannot "
        "tell, only the loudness label or the decoded audio can."
    ),
    "muted-side-unknown": (
        "The capture shows audio in both directions and nothing says which side is yours: "
        "the other person's speech is no leak of yours."
    ),
}


def _when(interval: dict[str, Any] | None) -> str:
    if not interval:
        return ""
    start = interval.get("start_from_capture_start")
    end = interval.get("end_from_capture_start")
    if start is None or end is None:
        return f"{interval['start']:.3f}-{interval['end']:.3f} (epoch s)"
    return f"{start:.2f}-{end:.2f} s into the capture"


def _window_line(window: dict[str, Any], verdict: dict[str, Any] | None) -> str:
    start = window.get("start_from_capture_start")
    end = window.get("end_from_capture_start")
    where = (
        f"{start:.2f}-{end:.2f} s into the capture"
        if start is not None and end is not None
        else f"{window['start']:.3f}-{window['end']:.3f} (epoch s)"
    )
    line = (
        f"  mute window {window['number']}: {where} ({window['seconds']:.1f} s; "
        f"from {', '.join(window['sources'])})"
    )
    if verdict is not None:
        line += f" -> {verdict['verdict']}"
    return line


def _finding_lines(finding: dict[str, Any], style: Style) -> list[str]:
    tag = finding["severity"].upper() if finding["severity"] != "info" else "info"
    tag = style.severity(finding["severity"], tag)
    lines = [f"  [{tag}] {finding['title']} (window {finding['window'] + 1}, {finding['id']})"]
    meaning = MEANINGS.get(finding["id"])
    if meaning:
        lines.append(f"      {meaning}")
    where = finding.get("stream_label") or finding.get("endpoint")
    if where:
        lines.append(f"      where: {where}")
    when = _when(finding.get("interval"))
    if when:
        lines.append(f"      when:  {when}")
    lines.append(f"      found: {finding['evidence']}")
    speech = (finding.get("numbers") or {}).get("speech")
    if speech:
        lines.append(f"      speech: {describe_speech(speech)} (what the level exposes)")
    correlation = finding.get("correlation")
    if correlation:
        verdict = (
            "it follows the microphone: proven"
            if correlation["proven"]
            else "no clear link to the microphone's signal"
        )
        lines.append(
            f"      proof: {correlation['series']} vs the reference signal: "
            f"r = {correlation['r']:.2f} at a lag of {correlation['lag_s']:.2f} s, "
            f"p = {correlation['p_value']:.3g} ({correlation['points']} points): {verdict}"
        )
    if finding.get("first_frames"):
        frames = ", ".join(str(f) for f in finding["first_frames"])
        lines.append(f"      see:   frames {frames} (Wireshark frame numbers)")
    elif finding.get("first_messages"):
        lines.append(f"      see:   flows {', '.join(finding['first_messages'])} (mitmproxy)")
    return lines


def summary_text(
    doc: dict[str, Any], *, report_path: str | None = None, style: Style | None = None
) -> str:
    """The summary of a report document, as lines for a terminal (coloured by ``style``)."""
    style = style or Style(False)
    verdict = doc["verdict"]
    lines = [style.verdict(verdict["verdict"], HEADLINES[verdict["verdict"]])]
    if verdict["verdict"] == "inconclusive":
        lines.append(f"  why: {verdict['reason']}")
        hint = verdict.get("hint")
        if hint and hint.startswith("--local"):
            lines.append(
                f"  to decide: run again with {hint} (the address of the computer that was muted)"
            )
        elif hint:
            lines.append(f"  to decide: {hint}")
    else:
        lines.append(
            f"  how sure: {verdict['confidence_label']} ({verdict['confidence']:.2f}); "
            f"{verdict['reason']}"
        )
    lines.append(f"  verdict: {verdict['verdict']} (exit code {verdict['exit_code']})")
    windows = doc["timeline"]["windows"]
    by_window = {w["window"]: w for w in doc.get("windows", [])}
    if windows:
        lines.append("")
        lines.append("When you were muted:")
        lines += [_window_line(w, by_window.get(w["index"])) for w in windows]
    findings = doc["findings"]
    leaks = [f for f in findings if f["leak"] is not None]
    infos = [f for f in findings if f["leak"] is None]
    if leaks:
        lines.append("")
        lines.append("What left while muted:")
        for finding in leaks:
            lines += _finding_lines(finding, style)
    if infos:
        lines.append("")
        lines.append("For information:")
        for finding in infos:
            lines += _finding_lines(finding, style)
    privacy = (doc.get("level_privacy") or {}).get("text")
    if privacy:
        lines.append("")
        lines.append("The audio level on the wire:")
        lines.append(f"  {privacy}")
    unchecked = _not_checked(doc)
    if unchecked:
        lines.append("")
        lines.append("Not checked:")
        lines += [f"  - {item}" for item in unchecked]
    if doc.get("streams"):
        lines.append("")
        sdp = (doc.get("capture") or {}).get("sdp") or {}
        named = f"; SDP: {sdp['source']}" if sdp.get("source") else ""
        lines.append(f"Streams (muted / unmuted{named}):")
        lines += ["  " + line for line in stream_lines(doc["streams"])]
    if doc.get("warnings"):
        lines.append("")
        lines.append("Warnings:")
        lines += [f"  - {w}" for w in doc["warnings"]]
    if report_path:
        lines.append("")
        lines.append(f"Full report: {report_path}")
    return "\n".join(lines)


def _not_checked(doc: dict[str, Any]) -> list[str]:
    out = []
    if doc.get("capture") is None:
        out.append("the media: no capture")
    if doc["telemetry"]["source"] is None:
        out.append("telemetry: no events.jsonl or flows.mitm")
    out += _unusable_events(doc.get("events_file"))
    decoded = doc["decoded_audio"]
    if decoded["status"] != "measured" and doc.get("capture") is not None:
        out.append(f"decoded audio: {decoded['reason'].removeprefix('not measured: ')}")
    reference = doc["reference"]
    if reference["status"] != "used":
        out.append(f"correlation with the microphone's signal: {reference['status']}")
    return out


def _unusable_events(check: dict[str, Any] | None) -> list[str]:
    """``events.jsonl: 3 of 38 lines could not be used (line 7 has no usable t: ...)``."""
    if not check or not check.get("unusable_count"):
        return []
    shown = check.get("unusable") or []
    first = f" (line {shown[0]['line']} {shown[0]['reason']})" if shown else ""
    name = str(check.get("file", "events.jsonl")).rsplit("/", 1)[-1]
    text = f"{name}: {check['unusable_count']} of {check['lines']} line(s) could not be used{first}"
    if check.get("replaced_by"):
        text += f"; the telemetry and mute signals were read from {check['replaced_by']} instead"
    elif check.get("may_hide_evidence"):
        text += "; what they said was not judged"
    return [text]


STREAM_HEADERS = ("stream", "media", "packets", "pkts/s", "payload B (median)", "level (median)")


def stream_lines(streams: list[dict[str, Any]]) -> list[str]:
    """A compact table of the streams: rates, sizes and levels while muted and unmuted."""
    from decoders.report.text import table

    def pair(stream: dict[str, Any], pick: Any) -> str:
        phases = stream.get("phases") or {}
        values = [pick(phases.get(name)) for name in ("muted", "unmuted")]
        return " / ".join("-" if v is None else v for v in values)

    def rate(phase: dict[str, Any] | None) -> str | None:
        value = (phase or {}).get("packets_per_second")
        return None if value is None else f"{value:.1f}"

    def size(phase: dict[str, Any] | None) -> str | None:
        sizes = (phase or {}).get("payload_bytes") or {}
        return None if sizes.get("median") is None else f"{sizes['median']:.0f}"

    def level(phase: dict[str, Any] | None) -> str | None:
        levels = (phase or {}).get("audio_level") or {}
        return None if levels.get("median_dbov") is None else f"{levels['median_dbov']:.0f} dBov"

    rows = []
    for stream in streams:
        media = f"{stream['media']} {stream.get('codec') or ''}".strip()
        if stream.get("sent_by_muted_side"):
            media += " (muted side)"
        rows.append(
            (
                stream["label"],
                media,
                str(stream["packets"]),
                pair(stream, rate),
                pair(stream, size),
                pair(stream, level),
            )
        )
    return table(STREAM_HEADERS, rows).splitlines()
