"""The verdict: per mute window, then for the session, with a confidence and the reason.

``content-leak``
    the sound itself (or its per-packet loudness) left while muted: a content finding of
    medium severity or more (audio level, payload sizes, decoded audio).
``metadata-leak``
    no content, but facts about the sound did: volume telemetry, a new stream while muted.
``no-leak``
    the judged streams sent silence or nothing, and no telemetry carried volume.
``inconclusive``
    nothing can be judged, and the reason says why: no timeline, the timeline outside the
    capture, no audio stream from the muted side, nothing captured.

The session takes the worst window (content > metadata > no-leak); windows that cannot be
judged are skipped unless none can. Confidence is a number in 0..1 with a label (high from
0.85, medium from 0.6): a leak is surer with several independent signals and certain once it
correlates with the reference signal; "no leak" is surer when the evidence reads the sound
directly (audio level, decoded audio, no packets at all) than when only sizes are known, when
the same detectors do see sound while unmuted, and when telemetry was checked too.

When the muted side was only inferred with medium confidence, or assumed (the only address
that sends audio), a leak found on its streams is capped at :data:`SIDE_CAPS` (it might be
incoming), unless it correlates with the reference signal (then it is the microphone's), and the
reason says how the side was found. When the side cannot be told at all,
:mod:`decoders.audit.sides` judges each candidate instead.

Media relayed through TLS (:mod:`decoders.audit.relayed`) is judged from record sizes and
timing alone: a leak found only there is capped at :data:`TLS_CONTENT_CAP` (0.8), "no leak" at
:data:`TLS_NO_LEAK_CAP` (0.7), and the reason says it was judged through TLS.

When input that could have held evidence was lost before judging (lines of ``events.jsonl``
that could not be used, with no ``flows.mitm`` to read instead: :class:`Unread`), "no leak" in
the windows it concerns is capped at :data:`DAMAGED_NO_LEAK_CAP` (medium) and the reason says
what was lost: damaged input never makes a high-confidence "no leak".

The exit code of ``mutecheck analyze`` encodes the verdict (:data:`EXIT_CODES`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from decoders.audit.flags import SERVER_SIDE, Finding
from decoders.audit.local import LocalSide
from decoders.audit.measure import MediaMeasurement, TelemetryMeasurement
from decoders.media.codecs import constant_bit_rate
from decoders.session.timeline import Timeline, Window

if TYPE_CHECKING:
    from decoders.audit.relayed import RelayedMeasurement

VERDICTS: Final = ("no-leak", "metadata-leak", "content-leak", "inconclusive")
EXIT_CODES: Final = {"no-leak": 0, "inconclusive": 3, "metadata-leak": 4, "content-leak": 5}
"""0: no leak; 3: cannot tell; 4: metadata left; 5: content left. (1 is a crash, 2 a user error.)"""
_RANK: Final = {"no-leak": 0, "metadata-leak": 1, "content-leak": 2}
_SEVERE: Final = ("medium", "high")
SIDE_CAPS: Final = {"medium": 0.8, "assumed": 0.75}
"""Highest confidence of a media leak when the muted side is only inferred or assumed."""
TLS_CONTENT_CAP: Final = 0.8
"""Highest confidence of a content leak seen only in record sizes through TLS (RTP: 0.95)."""
TLS_NO_LEAK_CAP: Final = 0.7
"""Highest confidence of "no leak" when part of the media was judged through TLS."""
TLS_PREFIX: Final = "tls-"
MIN_NO_LEAK_S: Final = 1.0
"""Shortest judged mute window (grace removed) that can be called "no leak": a window of a few
milliseconds holds no packet even when the microphone leaks, and its emptiness proves nothing.
Leaks found in shorter windows still count."""
DAMAGED_NO_LEAK_CAP: Final = 0.6
"""Highest confidence of "no leak" in a window that lost input could have held evidence for."""


@dataclass(frozen=True, slots=True)
class Unread:
    """Input lost before judging that could have held evidence (e.g. unusable events)."""

    note: str
    """What was lost, for the reason, e.g. ``3 lines of events.jsonl could not be used``."""
    windows: frozenset[int] | None = None
    """The mute windows it concerns (None: any of them)."""

    def concerns(self, window: int) -> bool:
        return self.windows is None or window in self.windows


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    window: int
    verdict: str
    confidence: float
    reason: str
    findings: tuple[int, ...]
    """Indices into the analysis' findings list."""

    @property
    def label(self) -> str:
        return confidence_label(self.confidence) if self.verdict != "inconclusive" else "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "verdict": self.verdict,
            "confidence": round(self.confidence, 3),
            "confidence_label": self.label,
            "reason": self.reason,
            "findings": list(self.findings),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str
    confidence: float
    reason: str
    windows: tuple[WindowVerdict, ...]
    hint: str | None = None
    """What to pass to decide an inconclusive verdict, e.g. ``--local 10.0.0.1``."""

    @property
    def label(self) -> str:
        return confidence_label(self.confidence) if self.verdict != "inconclusive" else "none"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "confidence": round(self.confidence, 3),
            "confidence_label": self.label,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "hint": self.hint,
        }


NO_INTERVAL_HINT: Final = (
    "mark mute and unmute with the addon (mutecheck mark muted|unmuted, or the mark URL), "
    "or pass --muted START-END"
)
"""What decides a session without a mute interval."""


def no_interval_reason(signals_read: bool) -> str:
    """Why there is no mute interval: what was looked at."""
    if signals_read:
        return (
            "no mute interval: no timeline, no mark, and the app sent no mute signal mutecheck "
            "recognises (a mute that only silences the track in the browser, such as "
            "track.enabled = false, tells no server)"
        )
    return (
        "no mute interval: no timeline, and no events.jsonl or flows.mitm to read marks or "
        "the app's own mute signals from"
    )


def confidence_label(confidence: float) -> str:
    return "high" if confidence >= 0.85 else "medium" if confidence >= 0.6 else "low"


def decide(
    findings: Sequence[Finding],
    timeline: Timeline,
    media: MediaMeasurement | None,
    telemetry: TelemetryMeasurement | None,
    *,
    side: LocalSide | None = None,
    relayed: RelayedMeasurement | None = None,
    signals_read: bool = False,
    unread: Unread | None = None,
) -> Verdict:
    """Judge every window, then the session (see the module docstring). ``signals_read``:
    the addon's events (or flows) were read, so marks and the app's own signals were sought;
    ``unread``: what was lost, capping "no leak" in the windows it concerns."""
    if timeline.empty:
        return Verdict("inconclusive", 0.0, no_interval_reason(signals_read), (), NO_INTERVAL_HINT)
    checked_telemetry = telemetry is not None and telemetry.source is not None
    if media is None and not checked_telemetry:
        return Verdict(
            "inconclusive", 0.0, "nothing to judge: no capture and no telemetry source", ()
        )
    cap = SIDE_CAPS.get(side.confidence) if side is not None else None
    owned = findings_by_window(findings)
    windows = tuple(
        _capped(
            _window(w, findings, timeline, media, checked_telemetry, cap, relayed, side, owned),
            unread,
        )
        for w in timeline.windows
    )
    judged = [w for w in windows if w.verdict != "inconclusive"]
    if not judged:
        reasons = sorted({w.reason for w in windows})
        return Verdict("inconclusive", 0.0, "; ".join(reasons), windows)
    worst = max(_RANK[w.verdict] for w in judged)
    verdict = next(v for v, r in _RANK.items() if r == worst)
    same = [w for w in judged if w.verdict == verdict]
    if verdict == "no-leak":
        confidence = min(w.confidence for w in same)
        reason = (
            same[0].reason
            if len(same) == 1
            else f"all {len(same)} judged mute windows: nothing of the sound left"
        )
    else:
        best = max(same, key=lambda w: w.confidence)
        confidence = best.confidence
        reason = best.reason
        if len(windows) > 1:
            reason += f" (in {len(same)} of {len(windows)} mute windows)"
    lost = unread is not None and any(unread.concerns(w.window) for w in same)
    if verdict == "no-leak" and unread is not None and lost and unread.note not in reason:
        reason += f"; {unread.note}"
    skipped = len(windows) - len(judged)
    if skipped:
        reason += f"; {skipped} window(s) could not be judged"
    if cap is not None and side is not None and media is not None:
        reason += f"; the muted side was {_how(side)}: pass --local ADDR to confirm"
    return Verdict(verdict, confidence, reason, windows)


def _capped(verdict: WindowVerdict, unread: Unread | None) -> WindowVerdict:
    """ "No leak" in a window that lost input concerns: at most medium, and the reason says why."""
    if unread is None or verdict.verdict != "no-leak" or not unread.concerns(verdict.window):
        return verdict
    return WindowVerdict(
        verdict.window,
        verdict.verdict,
        min(verdict.confidence, DAMAGED_NO_LEAK_CAP),
        f"{verdict.reason}; {unread.note}",
        verdict.findings,
    )


def findings_by_window(findings: Sequence[Finding]) -> dict[int | None, list[int]]:
    """The positions of the findings of each window, in one pass (judging each window by
    scanning every finding made 10,000 windows quadratic)."""
    out: dict[int | None, list[int]] = {}
    for position, finding in enumerate(findings):
        out.setdefault(finding.window, []).append(position)
    return out


def _how(side: LocalSide) -> str:
    if side.confidence == "assumed":
        return side.how
    return f"inferred from {side.how} ({side.confidence} confidence)"


def _window(
    window: Window,
    findings: Sequence[Finding],
    timeline: Timeline,
    media: MediaMeasurement | None,
    checked_telemetry: bool,
    cap: float | None = None,
    relayed: RelayedMeasurement | None = None,
    side: LocalSide | None = None,
    owned: Mapping[int | None, list[int]] | None = None,
) -> WindowVerdict:
    if owned is None:
        owned = findings_by_window(findings)
    mine = owned.get(window.index, [])
    mine_findings = [findings[i] for i in mine]
    judged_part = window.judged(timeline.grace)
    if judged_part is None:
        return WindowVerdict(
            window.index,
            "inconclusive",
            0.0,
            f"mute window {window.index + 1} is shorter than the grace periods",
            tuple(mine),
        )
    in_capture = media is not None and media.seconds.get(window.index, 0.0) > 0
    content = [f for f in mine_findings if f.leak == "content" and f.severity in _SEVERE]
    metadata = [f for f in mine_findings if f.leak == "metadata" and f.severity in _SEVERE]
    if content:
        named = [f for f in content if f.id == SERVER_SIDE]  # names the others, adds nothing
        kinds = {f.id for f in content if f.id != SERVER_SIDE} or {f.id for f in content}
        confidence = min(0.95, 0.8 + 0.1 * (len(kinds) - 1))
        if cap is not None:
            confidence = min(confidence, cap)
        through_tls = all(f.id.startswith(TLS_PREFIX) for f in content if f.id != SERVER_SIDE)
        if through_tls:
            confidence = min(TLS_CONTENT_CAP, 0.7 + 0.05 * (len(kinds) - 1))
        if any(f.correlation is not None and f.correlation.proven for f in content):
            confidence = 0.9 if through_tls else 0.99
        top = named[0] if named else max(content, key=lambda f: f.rank)
        return WindowVerdict(
            window.index,
            "content-leak",
            confidence,
            f"{top.title} ({', '.join(sorted(kinds))})",
            tuple(mine),
        )
    if metadata:
        high = any(f.severity == "high" for f in metadata)
        confidence = 0.85 if high else 0.75
        if cap is not None and all(f.stream is not None for f in metadata):
            confidence = min(confidence, cap)
        if all(f.id.startswith(TLS_PREFIX) for f in metadata):
            confidence = min(confidence, TLS_NO_LEAK_CAP)
        if any(f.correlation is not None and f.correlation.proven for f in metadata):
            confidence = 0.95
        top = max(metadata, key=lambda f: f.rank)
        return WindowVerdict(
            window.index,
            "metadata-leak",
            confidence,
            f"{top.title} ({', '.join(sorted({f.id for f in metadata}))})",
            tuple(mine),
        )
    if media is None:
        return WindowVerdict(
            window.index,
            "inconclusive",
            0.0,
            "no capture: the media was not checked (telemetry showed nothing)",
            tuple(mine),
        )
    if not in_capture:
        return WindowVerdict(
            window.index,
            "inconclusive",
            0.0,
            f"mute window {window.index + 1} is outside the capture",
            tuple(mine),
        )
    judged_seconds = media.seconds.get(window.index, 0.0)  # grace removed, inside the capture
    if judged_seconds < MIN_NO_LEAK_S:
        return WindowVerdict(
            window.index,
            "inconclusive",
            0.0,
            f"mute window {window.index + 1} is too short to say nothing left "
            f"({judged_seconds * 1000:.0f} ms judged; a no-leak needs at least "
            f"{MIN_NO_LEAK_S:.0f} s, several packet intervals and DTX gaps)",
            tuple(mine),
        )
    judged_streams = [s for s in media.streams if s.judged]
    tls_view = _tls_view(relayed, side, window.index)
    if tls_view is not None:
        return _tls_no_leak(
            window, media, judged_streams, checked_telemetry, tuple(mine), cap, tls_view
        )
    if not judged_streams:
        return WindowVerdict(
            window.index,
            "inconclusive",
            0.0,
            "no audio stream from the muted side in the capture",
            tuple(mine),
        )
    return _no_leak(window, media, judged_streams, checked_telemetry, tuple(mine), cap)


def _no_leak(
    window: Window,
    media: MediaMeasurement,
    streams: Sequence[Any],
    checked_telemetry: bool,
    mine: tuple[int, ...],
    cap: float | None = None,
) -> WindowVerdict:
    """How sure is "nothing left": direct evidence, detectors that see sound, telemetry.

    A constant-bit-rate stream (G.711, G.722, ...) that sent packets while muted with neither
    audio level nor decoded audio cannot be judged: its sizes are the same for speech and
    silence, so the window is inconclusive rather than "no leak"."""
    direct = True
    how: list[str] = []
    blind = [
        info
        for info in streams
        if constant_bit_rate(info.codec)
        and (phase := media.phase(info.index, "muted", window.index)).packets
        and phase.levels is None
        and phase.decoded is None
    ]
    if blind:
        codecs = "/".join(sorted({str(info.codec) for info in blind}))
        return WindowVerdict(
            window.index,
            "inconclusive",
            0.0,
            f"mute window {window.index + 1}: {codecs} is a constant-bit-rate codec, so the "
            "packet sizes cannot tell sound from silence, and there is no audio level or key "
            "to read the sound itself (pass --keys, or a call that negotiates the audio level)",
            mine,
        )
    for info in streams:
        phase = media.phase(info.index, "muted", window.index)
        if phase.packets == 0:
            how.append("no packets")
        elif phase.decoded is not None:
            how.append("decoded audio silent")
        elif phase.levels is not None:
            how.append("audio level silent")
        else:
            direct = False
            how.append("sizes/timing only (encrypted, no audio level)")
    sees_sound = False
    for info in streams:
        before = media.phase(info.index, "unmuted")
        if before.levels is not None and before.levels.loud_share > 0.5:
            sees_sound = True
        if before.sizes is not None and before.sizes.entropy_bits >= 3.0:
            sees_sound = True
        if before.decoded is not None and before.decoded.loud_share > 0.5:
            sees_sound = True
    confidence = 0.5 + (0.3 if direct else 0.15) + (0.1 if sees_sound else 0.0)
    confidence += 0.05 if checked_telemetry else 0.0
    if cap is not None or any(s.local is None for s in streams):
        confidence -= 0.05
    parts = sorted(set(how))
    reason = f"nothing of the sound left during mute window {window.index + 1} ({', '.join(parts)})"
    if not checked_telemetry:
        reason += "; telemetry not checked (no events.jsonl or flows.mitm)"
    return WindowVerdict(window.index, "no-leak", min(0.95, confidence), reason, mine)


def _tls_view(
    relayed: RelayedMeasurement | None, side: LocalSide | None, window: int
) -> tuple[list[str], bool] | None:
    if relayed is None:
        return None
    from decoders.audit.relayed import no_leak_view

    return no_leak_view(relayed, side if side is not None else LocalSide(), window)


def _tls_no_leak(
    window: Window,
    media: MediaMeasurement,
    streams: Sequence[Any],
    checked_telemetry: bool,
    mine: tuple[int, ...],
    cap: float | None,
    view: tuple[list[str], bool],
) -> WindowVerdict:
    """ "No leak" with channels relayed through TLS: sizes and timing only, so less sure."""
    how, sees_sound = view
    confidence = 0.5 + 0.1 + (0.05 if sees_sound else 0.0) + (0.05 if checked_telemetry else 0.0)
    if cap is not None:
        confidence -= 0.05
    tls = (
        f"{', '.join(sorted(set(how)))}: judged through TLS from record sizes and timing, "
        "no audio level could be seen"
    )
    if streams:
        clear = _no_leak(window, media, streams, checked_telemetry, mine, cap)
        confidence = min(confidence, clear.confidence, TLS_NO_LEAK_CAP)
        return WindowVerdict(
            window.index, "no-leak", confidence, f"{clear.reason}; relayed: {tls}", mine
        )
    reason = f"nothing of the sound left during mute window {window.index + 1} ({tls})"
    if not checked_telemetry:
        reason += "; telemetry not checked (no events.jsonl or flows.mitm)"
    return WindowVerdict(window.index, "no-leak", min(confidence, TLS_NO_LEAK_CAP), reason, mine)
