"""One audit, start to end: session files in, measurements, findings and a verdict out.

:func:`analyze` reads what a session folder holds (or the files named one by one), in the
pipeline's order, one step each: :func:`resolve` (which files), :func:`read_signals` (events,
telemetry and mute signals), :func:`scan_capture` (the capture's packet table and streams),
:func:`mute_timeline` (the mute windows from every source), :func:`muted_side` (who the muted
side is), :func:`decode_audio` (when keys allow), the measurements per stream and phase,
:func:`measure_messages` (the telemetry), :func:`reference_signal` (the correlation's
reference), then :class:`Judging` and :func:`judge_sides`: the findings and the verdict.
User errors (a missing file, a broken timeline) raise :class:`InputError` (a ValueError) with
a one-line message.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from decoders.audit.correlate import (
    LAG_RANGE_S,
    Correlation,
    Envelope,
    correlate,
    loudness_envelope,
    read_wav,
)
from decoders.audit.decoded import DecodedAudio, KeysUnusable, decoded_audio, not_measured
from decoders.audit.flags import (
    Finding,
    media_findings,
    server_side_findings,
    telemetry_findings,
)
from decoders.audit.local import (
    CaptureFacts,
    LocalSide,
    assumed_side,
    infer_local,
    local_side,
    read_capture_facts,
)
from decoders.audit.measure import (
    MediaMeasurement,
    TelemetryMeasurement,
    measure_media,
    measure_telemetry,
)
from decoders.audit.messages import replay_flows, telemetry_from_events
from decoders.audit.relayed import RelayedMeasurement, judge_relayed, relayed_findings
from decoders.audit.sides import (
    Candidate,
    agreed,
    audio_senders,
    judge_candidates,
    relabel,
    undecided,
)
from decoders.audit.speech import LevelPrivacy, level_privacy
from decoders.audit.verdict import Unread, Verdict, decide
from decoders.errors import CaptureError, MalformedPacket
from decoders.media.scan import CaptureSummary, StreamScan, scan_streams
from decoders.media.streams import StreamStats, logical_streams
from decoders.session.events import TIMED, Event, UnusableLine, event_problem, read_events
from decoders.session.rulefiles import rule_set
from decoders.session.sdpsources import SessionSdp, cryptex
from decoders.session.signaling import MuteRule
from decoders.session.timeline import (
    GRACE_DEFAULT,
    UNMUTED,
    MuteInterval,
    ScopedMute,
    Timeline,
    build_timeline,
    intervals_from_events,
    parse_muted_arg,
    parse_timeline_text,
    scoped_mutes,
)
from decoders.session.times import EPOCH_MIN, timeline_seconds
from decoders.wire.demux import PacketKind

ALIGNED_LAG_S: Final = 0.5
"""Once the unmuted stream aligns the reference, leaks are searched within this of its lag."""
__all__ = ["Analysis", "InputError", "Inputs", "analyze", "local_side", "resolve"]

IGNORABLE: Final = ("sdp", "keys", "events", "flows", "timeline", "reference", "session")
"""Parts of a session folder ``--ignore`` can leave out (``session``: session.json)."""


class InputError(ValueError):
    """A user error: a missing or unreadable input, named in one line."""


@dataclass(frozen=True)
class Inputs:
    """What to analyse: a session folder and/or files named one by one (they take precedence)."""

    session_dir: Path | None = None
    capture: Path | None = None
    events: Path | None = None
    flows: Path | None = None
    timeline: Path | None = None
    keys: Path | None = None
    sdp: tuple[Path, ...] = ()
    reference: Path | None = None
    reference_start: float | None = None
    muted: tuple[str, ...] = ()
    clock_offset: float = 0.0
    grace: float = GRACE_DEFAULT
    audio_level_id: int | None = None
    local: tuple[str, ...] = ()
    ignore: frozenset[str] = frozenset()
    rules: Path | None = None
    """A rule file (the format of ``mutecheck_rules``) to read the app's mute signals with."""
    builtin_rules: bool = True
    """Read the apps' mute signals with the built-in rules too (docs/session-format.md)."""
    progress: Callable[[int], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Resolved:
    """The files actually read, and the manifest when there is one."""

    session_dir: Path | None
    capture: Path | None
    events: Path | None
    flows: Path | None
    timeline: Path | None
    keys: Path | None
    sdp: tuple[Path, ...]
    reference: Path | None
    reference_start: float | None
    reference_start_source: str | None
    telemetry_source: str | None
    manifest: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def text(path: Path | None) -> str | None:
            return None if path is None else str(path)

        return {
            "session_dir": text(self.session_dir),
            "capture": text(self.capture),
            "events": text(self.events),
            "flows": text(self.flows),
            "timeline": text(self.timeline),
            "keys": text(self.keys),
            "sdp": [str(p) for p in self.sdp],
            "reference": text(self.reference),
            "reference_start": self.reference_start,
            "reference_start_source": self.reference_start_source,
            "session_json": bool(self.manifest),
        }


@dataclass(frozen=True)
class ReferenceInfo:
    """The reference signal used for correlation, or why there is none."""

    status: str
    file: str | None = None
    start: float | None = None
    duration_s: float | None = None
    alignment: Correlation | None = None
    """The unmuted audio levels against the reference: checks the start time and the lag."""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "file": self.file,
            "start": self.start,
            "duration_s": self.duration_s,
            "alignment": self.alignment.to_json() if self.alignment else None,
        }


@dataclass(frozen=True)
class EventsCheck:
    """How much of ``events.jsonl`` could be used, and what was read instead of the rest."""

    file: str
    lines: int
    unusable: tuple[UnusableLine, ...]
    replaced_by: str | None = None
    """``flows.mitm`` when the telemetry and mute signals were read from it instead."""

    @property
    def damaged(self) -> bool:
        """Some lost line could have held evidence."""
        return any(u.may_hide_evidence for u in self.unusable)

    def summary(self) -> str:
        """``3 of 38 lines of events.jsonl could not be used (line 7 has no usable t: ...)``."""
        first = self.unusable[0]
        more = f"; {len(self.unusable) - 1} more" if len(self.unusable) > 1 else ""
        return (
            f"{len(self.unusable)} of {self.lines} line(s) of {Path(self.file).name} could not "
            f"be used (line {first.line} {first.reason}{more})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "lines": self.lines,
            "unusable_count": len(self.unusable),
            "unusable": [u.to_json() for u in self.unusable[:MAX_UNUSABLE_SHOWN]],
            "may_hide_evidence": self.damaged,
            "replaced_by": self.replaced_by,
        }


MAX_UNUSABLE_SHOWN: Final = 100
"""Unusable lines listed in report.json one by one (all are counted)."""


@dataclass
class Analysis:
    """Everything one audit found; :mod:`decoders.report.analysis_json` writes it out."""

    inputs: Resolved
    timeline: Timeline
    local: LocalSide
    media: MediaMeasurement | None
    telemetry: TelemetryMeasurement
    decoded: DecodedAudio
    reference: ReferenceInfo
    findings: list[Finding]
    verdict: Verdict
    capture: CaptureSummary | None
    """What was read of the capture (None: no capture)."""
    warnings: list[str]
    candidates: list[Candidate] = field(default_factory=list)
    """When the muted side is unknown: each address that may be it, judged as if it were."""
    relayed: RelayedMeasurement | None = None
    """Media relayed through TLS (TURN over TLS): channels judged by sizes and timing."""
    events_check: EventsCheck | None = None
    """How much of events.jsonl could be used (None: no events.jsonl read)."""
    level_privacy: LevelPrivacy | None = None
    """Whether cryptex hides the audio level on the wire, and the advice when it leaked
    (None: no capture)."""
    stream_table: list[StreamStats] = field(default_factory=list)
    """The capture's stream table, each SSRC joined across its legs: ``media.streams``' own
    rows, in the same order (empty: no capture)."""


def _given(path: Path | None, what: str) -> Path | None:
    if path is not None and not path.exists():
        raise InputError(f"{path}: no such file ({what})")
    return path


def resolve(inputs: Inputs) -> Resolved:
    """Fill in the session folder's files where no flag names one; check they exist."""
    ignore = inputs.ignore
    unknown = set(ignore) - set(IGNORABLE)
    if unknown:
        raise InputError(f"--ignore {sorted(unknown)[0]!r}: not one of {', '.join(IGNORABLE)}")
    folder = inputs.session_dir
    capture = _given(inputs.capture, "capture")
    events = _given(inputs.events, "events")
    flows = _given(inputs.flows, "flows")
    timeline = _given(inputs.timeline, "timeline")
    keys = _given(inputs.keys, "keys")
    reference = _given(inputs.reference, "reference")
    sdp = tuple(p for p in inputs.sdp if _given(p, "SDP"))
    manifest: dict[str, Any] = {}
    if folder is not None:
        if not folder.is_dir():
            raise InputError(f"{folder}: not a session folder")
        from decoders.session.folder import locate

        try:
            files = locate(folder)
        except FileNotFoundError:
            files = None
        if files is not None:
            capture = capture or files.capture
            sdp = sdp or files.sdp
            events = events or files.events
            timeline = timeline or files.timeline
            keys = keys or files.keys
        if keys is None and (folder / "keylog.txt").is_file():
            keys = folder  # the decryption reads the key log against the folder's capture
        if flows is None and (folder / "flows.mitm").is_file():
            flows = folder / "flows.mitm"
        if "session" not in ignore and (folder / "session.json").is_file():
            manifest = _manifest(folder / "session.json")
        if reference is None:
            reference = _manifest_reference(folder, manifest)
    explicit_flows = inputs.flows is not None
    sdp = () if "sdp" in ignore else sdp
    keys = None if "keys" in ignore else keys
    events = None if "events" in ignore else events
    flows = None if "flows" in ignore else flows
    timeline = None if "timeline" in ignore else timeline
    reference = None if "reference" in ignore else reference
    if capture is None and events is None and flows is None:
        raise InputError(
            "nothing to analyse: give a session folder, --capture, --events or --flows"
        )
    telemetry_source: str | None = None
    if flows is not None and (explicit_flows or events is None):
        telemetry_source = "flows"
    elif events is not None:
        telemetry_source = "events"
    start, start_source = inputs.reference_start, "--reference-start"
    if start is None and reference is not None:
        scenario = manifest.get("scenario")
        gum = scenario.get("getusermedia_called") if isinstance(scenario, dict) else None
        if isinstance(gum, int | float) and not isinstance(gum, bool):
            start, start_source = float(gum), "session.json scenario.getusermedia_called"
    return Resolved(
        session_dir=folder,
        capture=capture,
        events=events,
        flows=flows if telemetry_source == "flows" else None,
        timeline=timeline,
        keys=keys,
        sdp=sdp,
        reference=reference,
        reference_start=start,
        reference_start_source=start_source if start is not None else None,
        telemetry_source=telemetry_source,
        manifest=manifest,
    )


def _manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a JSON manifest ({error})") from None
    except RecursionError:
        raise InputError(f"{path}: not a JSON manifest (nested too deep to read)") from None
    return data if isinstance(data, dict) else {}


def _manifest_reference(folder: Path, manifest: dict[str, Any]) -> Path | None:
    info = manifest.get("reference")
    name = info.get("file") if isinstance(info, dict) else None
    candidates = [folder / name] if isinstance(name, str) else []
    candidates.append(folder / "reference.wav")
    return next((p for p in candidates if p.is_file()), None)


def _read_events(path: Path) -> tuple[list[Event], EventsCheck]:
    """The usable events, and every line that was not (counted, never a reason to stop)."""
    unusable: list[UnusableLine] = []
    with path.open("rb") as fo:
        events = list(read_events(fo, unusable))
    return events, EventsCheck(str(path), len(events) + len(unusable), tuple(unusable))


def _fallback_flows(inputs: Inputs, resolved: Resolved, check: EventsCheck | None) -> Path | None:
    """flows.mitm, to read instead of an events.jsonl whose lost lines could hold evidence."""
    if check is None or not check.damaged or "flows" in inputs.ignore:
        return None
    flows = inputs.flows or (
        resolved.session_dir / "flows.mitm" if resolved.session_dir is not None else None
    )
    return flows if flows is not None and flows.is_file() else None


def _flows_note(lost: list[UnusableLine], path: Path) -> str:
    first = lost[0]
    return (
        f"{len(lost)} event(s) replayed from {path.name} could not be used (event {first.line} "
        f"{first.reason}): what they said was not judged"
    )


def _joined(first: Unread | None, second: Unread | None) -> Unread | None:
    if first is None or second is None:
        return first or second
    windows = (
        None if first.windows is None or second.windows is None else first.windows | second.windows
    )
    return Unread(f"{first.note}; {second.note}", windows)


def _unread_values(events: list[Event], timeline: Timeline) -> Unread | None:
    """Telemetry sent in a mute window whose volume fields all had no readable value (the addon
    writes a non-finite or huge number as null): a volume field left, its value is unknown."""
    windows: set[int] = set()
    count = 0
    for event in events:
        fields = event.get("fields")
        if event.get("kind") != "telemetry" or not isinstance(fields, list) or not fields:
            continue
        if any(isinstance(f, dict) and f.get("value") is not None for f in fields):
            continue
        label = timeline.segment_at(float(event["t"]) + timeline.clock_offset)
        if label >= 0:
            windows.add(label)
            count += 1
    if not windows:
        return None
    return Unread(
        f"{count} telemetry message(s) sent while muted had volume fields without a readable "
        "value (not a finite number): what they carried was not judged",
        frozenset(windows),
    )


def _unread_scans(events: list[Event], timeline: Timeline) -> Unread | None:
    """Messages the browser sent in a mute window that the addon could not read whole (its
    ``scan-limit`` warnings: depth, leaves or bytes cut): a volume field in the unread part was
    not judged. Rate-limited warnings count the messages they stand for (``repeats``)."""
    windows: set[int] = set()
    count = 0
    for event in events:
        if event.get("kind") != "warning" or event.get("code") != "scan-limit":
            continue
        label = timeline.segment_at(float(event["t"]) + timeline.clock_offset)
        if label >= 0:
            windows.add(label)
            repeats = event.get("repeats")
            count += 1 + (repeats if isinstance(repeats, int) and repeats > 0 else 0)
    if not windows:
        return None
    return Unread(
        f"{count} message(s) sent while muted were not fully read (the addon's scan limits): "
        "volume fields in the unread part were not judged",
        frozenset(windows),
    )


def _unread(check: EventsCheck | None, timeline: Timeline) -> Unread | None:
    """What the lost lines of events.jsonl may hide, when nothing was read instead: the windows
    a lost telemetry/blocked/media line falls in, or every window when its time or kind is
    unknown or it was a mute or SDP line (those change the windows or the streams)."""
    if check is None or not check.damaged or check.replaced_by is not None:
        return None
    windows: set[int] = set()
    for line in check.unusable:
        if not line.may_hide_evidence:
            continue
        if line.kind not in TIMED or line.t is None:
            return Unread(f"{check.summary()}: what they said was not judged")
        label = timeline.segment_at(line.t + timeline.clock_offset)
        if label != UNMUTED and label >= 0:
            windows.add(label)
    if not windows:
        return None
    return Unread(f"{check.summary()}: what they said was not judged", frozenset(windows))


def _rules(inputs: Inputs) -> tuple[MuteRule, ...]:
    if inputs.rules is not None and not inputs.rules.is_file():
        raise InputError(f"{inputs.rules}: no such file (rules)")
    try:
        return rule_set(inputs.rules, builtin=inputs.builtin_rules)
    except (OSError, UnicodeDecodeError, MalformedPacket) as error:
        raise InputError(f"--rules {inputs.rules}: {error}") from None


def _replay(
    path: Path, rules: tuple[MuteRule, ...], lost: list[UnusableLine] | None = None
) -> list[Event]:
    """The events flows.mitm gives; with ``lost``, those that break the events format (a flow
    whose saved time is no plausible time) are left out and appended to it."""
    try:
        with path.open("rb") as fo:
            events = replay_flows(fo, rules)
    except ImportError:
        raise InputError("reading flows.mitm needs mitmproxy (pip install mitmproxy)") from None
    except ValueError as error:
        raise InputError(f"{path}: {error}") from None
    if lost is None:
        return events
    good = []
    for number, event in enumerate(events, start=1):
        reason = event_problem(event)
        if reason is None:
            good.append(event)
        else:
            kind = event.get("kind")
            lost.append(UnusableLine(number, reason, kind if isinstance(kind, str) else None))
    return good


def judged_rules(events: list[Event]) -> frozenset[str] | None:
    """The names of the rules the addon judged these events with (``session_start``'s
    ``rules``), or None when a session does not say (an addon before built-in rules)."""
    starts = [e for e in events if e.get("kind") == "session_start"]
    names: set[str] = set()
    for start in starts:
        given = start.get("rules")
        if not isinstance(given, list):
            return None
        names.update(str(name) for name in given)
    return frozenset(names) if starts else None


def _is_rule_signal(event: Event) -> bool:
    return event.get("kind") == "mute" and event.get("source") == "rule"


def _rule_signals(
    inputs: Inputs, resolved: Resolved, events: list[Event], rules: tuple[MuteRule, ...]
) -> tuple[list[Event], str | None]:
    """events.jsonl's events, with its rule signals read again from flows.mitm when the addon
    judged with other rules than asked for now (an older addon, ``--rules``, no built-ins);
    and a note saying so."""
    flows = inputs.flows or (
        resolved.session_dir / "flows.mitm" if resolved.session_dir is not None else None
    )
    if flows is None or not flows.is_file() or "flows" in inputs.ignore:
        return events, None
    wanted = frozenset(rule.name for rule in rules)
    if judged_rules(events) == wanted:
        return events, None
    try:
        replayed = [e for e in _replay(flows, rules) if _is_rule_signal(e)]
    except InputError as error:  # a damaged flows.mitm: events.jsonl's own judgement stands
        return events, f"{error}: the app's mute signals are those events.jsonl recorded"
    kept = [e for e in events if not _is_rule_signal(e)]
    if not replayed and len(kept) == len(events):
        return events, None  # no rule spoke, then or now: nothing worth a note
    note = (
        f"the app's mute signals were read again from {flows.name} with "
        f"{len(rules)} rule(s) ({len(replayed)} rule signal(s))"
    )
    return kept + replayed, note


def analyze(inputs: Inputs) -> Analysis:
    """Run the whole audit (see the module docstring): the steps below, in this order."""
    warnings: list[str] = []  # each step adds what the user should know, in pipeline order
    signals = read_signals(inputs, resolve(inputs), warnings)
    resolved = signals.resolved
    capture = scan_capture(inputs, signals, warnings)
    span = capture.scan.span if capture is not None else None
    timeline = mute_timeline(inputs, resolved, signals.mute_events, span, warnings)
    local = muted_side(inputs, signals, capture)
    decoded = decode_audio(inputs, resolved, capture, warnings)
    media = capture.measure(timeline, local, decoded) if capture is not None else None
    telemetry = measure_messages(signals, timeline)
    reference, envelope = reference_signal(resolved, span, media, warnings)
    judging = Judging.of(inputs, signals, capture, timeline, telemetry, reference, envelope)
    judged = judge_sides(judging, media, local, warnings)
    return Analysis(
        inputs=resolved,
        timeline=timeline,
        local=judged.local,
        media=judged.media,
        telemetry=telemetry,
        decoded=decoded,
        reference=reference,
        findings=judged.findings,
        verdict=judged.verdict,
        capture=capture.scan.summary(capture.sdp) if capture is not None else None,
        warnings=warnings,
        candidates=judged.candidates,
        relayed=judging.relayed,
        events_check=signals.check,
        level_privacy=(
            level_privacy(
                cryptex(capture.sdp),
                any(f.id == "audio-level-while-muted" for f in judged.findings),
            )
            if capture is not None
            else None
        ),
        stream_table=capture.streams if capture is not None else [],
    )


@dataclass(frozen=True)
class Signals:
    """What the session says besides the capture: its events, telemetry and mute signals."""

    resolved: Resolved
    """The files read (flows.mitm in place of an events.jsonl whose lost lines matter)."""
    events: list[Event]
    """events.jsonl's usable events."""
    check: EventsCheck | None
    """How much of events.jsonl could be used (None: none read)."""
    telemetry_events: list[Event]
    """The events the telemetry is read from: events.jsonl's, or flows.mitm's replayed."""
    mute_events: list[Event]
    """The events the mute signals are read from."""
    flows_lost: list[UnusableLine]
    """Events replayed from flows.mitm that could not be used."""

    @property
    def side_events(self) -> list[Event]:
        """The events that may say who the muted side is."""
        return self.events or self.telemetry_events


def read_signals(inputs: Inputs, resolved: Resolved, warnings: list[str]) -> Signals:
    """Read events.jsonl, or flows.mitm instead when lost lines of events.jsonl could hold
    evidence; replay flows.mitm for the telemetry when it is the source; gather the mute
    signals. Every line that could not be used is counted and said in ``warnings``."""
    rules = _rules(inputs)
    events: list[Event] = []
    check: EventsCheck | None = None
    if resolved.events:
        events, check = _read_events(resolved.events)
    fallback = _fallback_flows(inputs, resolved, check)
    if fallback is not None and check is not None:
        resolved = dataclasses.replace(resolved, flows=fallback, telemetry_source="flows")
        check = dataclasses.replace(check, replaced_by=fallback.name)
        warnings.append(
            f"{check.summary()}: the telemetry and the app's mute signals were read from "
            f"{fallback.name} instead"
        )
    elif check is not None and check.unusable:
        warnings.append(check.summary())
    telemetry_events = events
    flows_lost: list[UnusableLine] = []
    if resolved.telemetry_source == "flows" and resolved.flows is not None:
        telemetry_events = _replay(resolved.flows, rules, flows_lost)
        if flows_lost:
            warnings.append(_flows_note(flows_lost, resolved.flows))
    mute_events = events if events else telemetry_events
    if fallback is not None:
        # marks told only to the addon (its console command) are in events.jsonl alone
        kept = [e for e in events if e.get("kind") == "mute" and e.get("source") == "mark"]
        replayed = [e for e in telemetry_events if e.get("kind") == "mute"]
        mute_events = sorted(kept + replayed, key=lambda e: float(e["t"]))
    elif events:
        mute_events, note = _rule_signals(inputs, resolved, events, rules)
        if note is not None:
            warnings.append(note)
    return Signals(resolved, events, check, telemetry_events, mute_events, flows_lost)


@dataclass(frozen=True)
class ScannedCapture:
    """The capture read: its scan, the session's SDP its streams were named with, and the
    streams the audit judges (one per SSRC and sender, joined across its legs)."""

    scan: StreamScan
    sdp: SessionSdp
    streams: list[StreamStats]
    groups: list[npt.NDArray[np.int64]]
    """Each of ``streams``' packets (indices into ``scan.rows``), in the same order."""

    def measure(
        self, timeline: Timeline, local: LocalSide, decoded: DecodedAudio
    ) -> MediaMeasurement:
        """Every stream per phase (and per mute window), decoded audio included."""
        return measure_media(
            self.scan.rows,
            self.streams,
            self.groups,
            timeline,
            local=local,
            auth_tag_length=self.scan.head.srtp_auth_tag_length,
            extras=decoded.series,
        )


def scan_capture(inputs: Inputs, signals: Signals, warnings: list[str]) -> ScannedCapture | None:
    """Gather the session's SDP, scan the capture into its packet and stream tables, and join
    each SSRC's legs; None without a capture."""
    resolved = signals.resolved
    if resolved.capture is None:
        return None
    found_sdp = _session_sdp(inputs, resolved, signals.events, signals.telemetry_events)
    try:
        scan = scan_streams(
            resolved.capture,
            sdp=found_sdp.description,
            audio_level_id=inputs.audio_level_id,
            progress=inputs.progress,
        )
    except (CaptureError, MalformedPacket) as error:
        raise InputError(f"{resolved.capture}: {error}") from None
    streams, groups = logical_streams(scan.streams, scan.groups)
    if scan.damage:
        warnings.append(f"capture damaged: {scan.damage}; everything before it was analysed")
    if scan.level.warning:
        warnings.append(scan.level.warning)
    return ScannedCapture(scan, found_sdp, streams, groups)


def mute_timeline(
    inputs: Inputs,
    resolved: Resolved,
    mute_events: list[Event],
    span: tuple[float, float] | None,
    warnings: list[str],
) -> Timeline:
    """The mute windows from every source: timeline.json, ``--muted``, the events' signals."""
    intervals: list[MuteInterval] = []
    if resolved.timeline is not None:
        text = resolved.timeline.read_text(encoding="utf-8", errors="replace")
        try:
            intervals += parse_timeline_text(text, resolved.timeline.name)
        except ValueError as error:
            raise InputError(str(error)) from None
    for item in inputs.muted:
        try:
            intervals.append(parse_muted_arg(item))
        except ValueError as error:
            raise InputError(str(error)) from None
    intervals += intervals_from_events(mute_events)
    try:
        timeline = build_timeline(
            intervals, capture_span=span, grace=inputs.grace, clock_offset=inputs.clock_offset
        )
    except ValueError as error:
        raise InputError(str(error)) from None
    warnings += timeline.warnings
    return timeline


def muted_side(inputs: Inputs, signals: Signals, capture: ScannedCapture | None) -> LocalSide:
    """Who the muted side is: ``--local``, or what session.json, the events and the capture's
    ICE checks say (:func:`decoders.audit.local.infer_local`)."""
    facts: CaptureFacts | None = None
    seen: frozenset[str] = frozenset()
    if capture is not None and not inputs.local:
        scan = capture.scan
        seen = frozenset(a for s in scan.streams for a in (s.src, s.dst))
        stun_rows = scan.rows.kind_mask(PacketKind.STUN)
        facts = read_capture_facts(scan.capture, scan.rows["frame"][stun_rows].tolist())
    manifest = signals.resolved.manifest
    return infer_local(inputs.local, manifest, signals.side_events, facts=facts, seen=seen)


def decode_audio(
    inputs: Inputs, resolved: Resolved, capture: ScannedCapture | None, warnings: list[str]
) -> DecodedAudio:
    """The decoded audio of each stream when keys allow; keys named by ``--keys`` that give
    nothing are a user error, the session's own only a warning."""
    if capture is None:
        return not_measured("no capture")
    try:
        decoded = decoded_audio(
            resolved.capture,
            resolved.keys,
            sdp=capture.sdp.description,
            strict=inputs.keys is not None,
        )
    except KeysUnusable as error:
        raise InputError(str(error)) from None
    if resolved.keys is not None and not decoded.measured:
        warnings.append(f"decryption was not done: {decoded.reason.removeprefix('not measured: ')}")
    return decoded


def measure_messages(signals: Signals, timeline: Timeline) -> TelemetryMeasurement:
    """The telemetry messages (volume-like fields) per phase, from the telemetry's source."""
    source = signals.resolved.telemetry_source
    messages = telemetry_from_events(signals.telemetry_events) if source else []
    return measure_telemetry(messages, timeline, source=source)


def reference_signal(
    resolved: Resolved,
    span: tuple[float, float] | None,
    media: MediaMeasurement | None,
    warnings: list[str],
) -> tuple[ReferenceInfo, Envelope | None]:
    """The reference signal's loudness envelope, lined up with the unmuted audio levels."""
    reference, envelope = _reference(resolved, span, warnings)
    if envelope is not None:
        alignment = _alignment(media, envelope) if media is not None else None
        reference = dataclasses.replace(reference, alignment=alignment)
    return reference, envelope


@dataclass(frozen=True)
class Judging:
    """What judges a measurement, whoever the muted side is: the timeline, the telemetry and
    its findings, the TLS-relayed channels, the reference signal, the app's server-side mutes
    and what could not be read. Called with a measurement and a side: its findings and
    verdict (a :data:`decoders.audit.sides.Judge`)."""

    timeline: Timeline
    telemetry: TelemetryMeasurement
    side_free: list[Finding]
    """The telemetry's findings: the same whoever you are."""
    relayed: RelayedMeasurement | None
    envelope: Envelope | None
    alignment: Correlation | None
    server_mutes: list[ScopedMute]
    """The app's server-side mutes, on the capture's clock."""
    signals_read: bool
    unread: Unread | None

    @classmethod
    def of(
        cls,
        inputs: Inputs,
        signals: Signals,
        capture: ScannedCapture | None,
        timeline: Timeline,
        telemetry: TelemetryMeasurement,
        reference: ReferenceInfo,
        envelope: Envelope | None,
    ) -> Judging:
        resolved = signals.resolved
        offset = inputs.clock_offset
        return cls(
            timeline=timeline,
            telemetry=telemetry,
            side_free=telemetry_findings(telemetry, timeline),
            # media relayed through TLS: sizes and timing
            relayed=judge_relayed(capture.scan if capture is not None else None, timeline),
            envelope=envelope,
            alignment=reference.alignment,
            server_mutes=[
                dataclasses.replace(
                    m, start=m.start + offset, end=None if m.end is None else m.end + offset
                )
                for m in scoped_mutes(signals.mute_events, "server")
            ],
            signals_read=bool(signals.mute_events) or resolved.telemetry_source is not None,
            unread=_unread_all(signals, timeline),
        )

    def __call__(
        self, measured: MediaMeasurement | None, side: LocalSide
    ) -> tuple[list[Finding], Verdict]:
        timeline, envelope, alignment = self.timeline, self.envelope, self.alignment
        found = media_findings(measured, timeline) if measured is not None else []
        found += relayed_findings(self.relayed, timeline, side) + self.side_free
        if envelope is not None:
            lags = LAG_RANGE_S
            if alignment is not None and alignment.proven:
                # the unmuted stream fixes the reference's timing: search near its lag only
                lags = (alignment.lag_s - ALIGNED_LAG_S, alignment.lag_s + ALIGNED_LAG_S)
            found = [_correlated(f, envelope, lags) for f in found]
        found += server_side_findings(found, timeline, self.server_mutes)
        found.sort(key=lambda f: (f.window, f.leak is None, -f.rank, f.id))
        verdict = decide(
            found,
            timeline,
            measured,
            self.telemetry,
            side=side,
            relayed=self.relayed,
            signals_read=self.signals_read,
            unread=self.unread,
        )
        return found, verdict


def _unread_all(signals: Signals, timeline: Timeline) -> Unread | None:
    """Everything that could not be read and may hide evidence, joined."""
    events, lost, flows = signals.telemetry_events, signals.flows_lost, signals.resolved.flows
    unread = _joined(_unread(signals.check, timeline), _unread_values(events, timeline))
    unread = _joined(unread, _unread_scans(events, timeline))
    if any(u.may_hide_evidence for u in lost) and flows is not None:
        unread = _joined(unread, Unread(_flows_note(lost, flows)))
    return unread


@dataclass(frozen=True)
class Judged:
    """The findings and the verdict, with the side and measurement they were judged for."""

    local: LocalSide
    media: MediaMeasurement | None
    findings: list[Finding]
    verdict: Verdict
    candidates: list[Candidate]


def judge_sides(
    judging: Judging, media: MediaMeasurement | None, local: LocalSide, warnings: list[str]
) -> Judged:
    """The findings and the verdict. When the muted side is unknown: the one address that
    sends audio is taken as it (and the user told), or, when several do, each is judged as if
    it were; their verdict when they agree, else an undecided one naming the ``--local`` to
    pass."""
    senders = audio_senders(media) if media is not None and not local.known else []
    if media is not None and len(senders) == 1:
        local = assumed_side(local, senders[0])
        media = relabel(media, local)
        warnings.append(
            f"which side was muted is unknown: {senders[0]}, the only address that sends audio "
            f"in the capture, was taken as you (pass --local {senders[0]} to confirm)"
        )
    findings, verdict = judging(media, local)
    candidates: list[Candidate] = []
    if media is not None and len(senders) > 1:
        candidates = judge_candidates(media, local, senders, judging)
        same = agreed(candidates)
        if same is not None:
            verdict = same
        else:
            findings = [f for f in findings if f.stream is None]  # telemetry: whoever you are
            extra, verdict = undecided(candidates, judging.timeline, local, len(findings))
            findings += extra
        warnings.append(
            f"which side was muted is unknown and {len(senders)} addresses send audio: "
            f"pass {' or '.join(f'--local {a}' for a in senders)}"
        )
    return Judged(local, media, findings, verdict, candidates)


def _session_sdp(
    inputs: Inputs, resolved: Resolved, events: list[Event], telemetry_events: list[Event]
) -> SessionSdp:
    """Every SDP of the session (``--sdp``, offer/answer, events.jsonl, flows.mitm) merged;
    ``--ignore sdp`` leaves them all out, so that streams are named by behaviour."""
    from decoders.session.sdpsources import NO_SDP, session_sdp

    if "sdp" in inputs.ignore:
        return SessionSdp(None, NO_SDP + " (--ignore sdp)")
    flows = resolved.flows
    folder_flows = resolved.session_dir / "flows.mitm" if resolved.session_dir else None
    if flows is None and folder_flows is not None and folder_flows.is_file():
        flows = None if "flows" in inputs.ignore else folder_flows

    def replay() -> list[Event]:
        if resolved.telemetry_source == "flows":
            return telemetry_events  # already replayed for the telemetry
        assert flows is not None
        try:
            with flows.open("rb") as fo:
                return replay_flows(fo)
        except (ImportError, ValueError):
            return []  # the flows are read for SDP only when nothing else had it

    given = inputs.sdp
    try:
        return session_sdp(
            given=given,
            files=() if given else resolved.sdp,
            events=events,
            flow_events=replay if flows is not None else None,
        )
    except MalformedPacket as error:
        raise InputError(str(error)) from None


def _reference(
    resolved: Resolved, span: tuple[float, float] | None, warnings: list[str]
) -> tuple[ReferenceInfo, Envelope | None]:
    path = resolved.reference
    if path is None:
        return ReferenceInfo("not used: no reference signal"), None
    start = resolved.reference_start
    if start is None:
        warnings.append(f"{path}: reference signal without a start time (--reference-start)")
        return ReferenceInfo("not used: no start time", file=str(path)), None
    try:
        start = timeline_seconds(start, resolved.reference_start_source or "--reference-start")
    except ValueError as error:
        raise InputError(str(error)) from None
    if start < EPOCH_MIN:
        if span is None:
            raise InputError("a relative --reference-start needs a capture")
        start = span[0] + start
    try:
        with path.open("rb") as fo:
            samples, rate = read_wav(fo)
    except ValueError as error:
        raise InputError(f"{path}: {error}") from None
    envelope = loudness_envelope(samples, rate, start)
    return (
        ReferenceInfo("used", file=str(path), start=start, duration_s=envelope.duration_s),
        envelope,
    )


def _correlated(finding: Finding, envelope: Envelope, lags: tuple[float, float]) -> Finding:
    series = finding.series
    if series is None:
        return finding
    result = correlate(series.times, series.values, envelope, series=series.name, lag_range_s=lags)
    return dataclasses.replace(finding, correlation=result) if result else finding


def _alignment(media: MediaMeasurement, envelope: Envelope) -> Correlation | None:
    """Unmuted audio levels against the reference: does the reference line up at all?"""
    for info in media.streams:
        if not info.judged:
            continue
        rows = media.groups[info.index][media.labels[info.index] == -1]
        level = media.rows["audio_level"][rows]
        has = level >= 0
        if int(has.sum()) < 20:
            continue
        times = media.rows["timestamp_ns"][rows][has].astype(np.float64) / 1e9
        return correlate(
            times, -level[has].astype(np.float64), envelope, series="unmuted audio level"
        )
    return None
