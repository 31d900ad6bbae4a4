"""When the muted side cannot be told: judge the call once for each address that might be you.

With only a capture and a mute timeline, a call's audio travels both ways: the user's stream and
the other participants'. Judging every stream as the user's calls the others' speech a leak
(issue 11: 0.90 on a real SFU call). So when :mod:`decoders.audit.local` finds no side and more
than one address sends audio, each such address is taken in turn as the muted side and the audit
runs on its streams alone. When the verdict does not depend on it (no leak on every side, or only
telemetry, which the proxy saw from this browser), that is the verdict; otherwise, even when every
side leaks (the capture might hold no stream of yours), the verdict is ``inconclusive``: one
``muted-side-unknown`` finding per mute window says what each candidate would mean, and the
verdict's hint gives the exact ``--local`` argument(s) to pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from decoders.audit.flags import Finding
from decoders.audit.local import LocalSide
from decoders.audit.measure import MediaMeasurement
from decoders.audit.verdict import Verdict, WindowVerdict
from decoders.session.timeline import Timeline

FINDING_ID: Final = "muted-side-unknown"
_WORDS: Final = {
    "content-leak": "content leak",
    "metadata-leak": "metadata leak",
    "no-leak": "no leak",
    "inconclusive": "cannot tell",
}

Judge = Callable[[MediaMeasurement, LocalSide], tuple[list[Finding], Verdict]]
"""Runs the rules and the verdict on a measurement whose streams are labelled for one side."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One address that may be the muted side, and what the audit says if it is."""

    address: str
    streams: tuple[str, ...]
    """Labels of the audio streams it sends."""
    findings: tuple[Finding, ...]
    verdict: Verdict

    @property
    def argument(self) -> str:
        return f"--local {self.address}"

    def outcome(self, window: int | None = None) -> tuple[str, float, list[Finding]]:
        """(verdict, confidence, leak findings), for one window or the session."""
        if window is None:
            verdict, confidence = self.verdict.verdict, self.verdict.confidence
        else:
            judged = next((w for w in self.verdict.windows if w.window == window), None)
            verdict = judged.verdict if judged else "inconclusive"
            confidence = judged.confidence if judged else 0.0
        leaks = [
            f
            for f in self.findings
            if f.leak is not None
            and f.severity in ("medium", "high")
            and (window is None or f.window == window)
        ]
        return verdict, confidence, leaks

    def sentence(self, window: int | None = None) -> str:
        verdict, confidence, leaks = self.outcome(window)
        text = f"if {self.address} is you: {_WORDS[verdict]}"
        if verdict not in ("no-leak", "inconclusive"):
            text += f" ({confidence:.2f})"
        if leaks:
            where = sorted({f.stream_label or f.endpoint or "?" for f in leaks})
            ids = sorted({f.id for f in leaks})
            text += f": {', '.join(ids)} on {'; '.join(where)}"
        return text

    def to_json(self, window: int | None = None) -> dict[str, Any]:
        verdict, confidence, leaks = self.outcome(window)
        return {
            "address": self.address,
            "local_argument": self.argument,
            "verdict": verdict,
            "confidence": round(confidence, 3),
            "streams": list(self.streams),
            "findings": [
                {"id": f.id, "severity": f.severity, "stream_label": f.stream_label} for f in leaks
            ],
        }


def relabel(media: MediaMeasurement, side: LocalSide) -> MediaMeasurement:
    """The same measurement with each stream's ``local`` flag taken from ``side``."""
    streams = [
        dataclasses.replace(s, local=side.sends(s.src, s.src_port, s.ssrc)) for s in media.streams
    ]
    return dataclasses.replace(media, streams=streams)


def audio_senders(media: MediaMeasurement) -> list[str]:
    """Addresses that send a stream that would be judged (audio, not shown to be remote)."""
    return sorted({s.src for s in media.streams if s.judged})


def judge_candidates(
    media: MediaMeasurement, side: LocalSide, senders: Sequence[str], judge: Judge
) -> list[Candidate]:
    """The audit once per sender address taken as the muted side."""
    out: list[Candidate] = []
    for address in senders:
        candidate = LocalSide(
            frozenset({address}),
            how=f"candidate {address}",
            confidence="high",
            remote=side.remote,
        )
        relabelled = relabel(media, candidate)
        findings, verdict = judge(relabelled, candidate)
        streams = tuple(s.label for s in relabelled.streams if s.judged)
        out.append(Candidate(address, streams, tuple(findings), verdict))
    return out


def hint(candidates: Sequence[Candidate]) -> str:
    """The exact argument(s) to pass: ``--local A`` (one per line of choice)."""
    return " or ".join(c.argument for c in candidates)


def agreed(candidates: Sequence[Candidate]) -> Verdict | None:
    """The verdict when it does not depend on the side: every candidate gets the same one and
    none of them rests on a media finding (no leak, or telemetry, which is the proxy's view of
    this browser whichever address it has). A media leak on every side is no exception: the
    capture might hold no stream of yours at all. None otherwise."""
    verdicts = {c.verdict.verdict for c in candidates}
    if len(verdicts) != 1 or not candidates or verdicts == {"inconclusive"}:
        return None
    if any(f.stream is not None for c in candidates for f in c.outcome()[2]):
        return None
    weakest = min(candidates, key=lambda c: c.verdict.confidence)
    names = ", ".join(c.address for c in candidates)
    reason = (
        f"{weakest.verdict.reason}; the same whichever of {names} is you "
        f"(which side was muted is unknown: {hint(candidates)} says which)"
    )
    return dataclasses.replace(weakest.verdict, reason=reason)


def undecided(
    candidates: Sequence[Candidate], timeline: Timeline, side: LocalSide, first_index: int
) -> tuple[list[Finding], Verdict]:
    """Inconclusive: one finding per mute window listing the candidates, and the hint.

    ``first_index`` is where the new findings will sit in the analysis' list.
    """
    findings: list[Finding] = []
    windows: list[WindowVerdict] = []
    why, weak = _why(side)
    for window in timeline.windows:
        sentences = [c.sentence(window.index) for c in candidates]
        findings.append(
            Finding(
                id=FINDING_ID,
                severity="info",
                leak=None,
                title="which side is you cannot be told: the verdict depends on it",
                window=window.index,
                interval=None,
                numbers={
                    "candidates": [c.to_json(window.index) for c in candidates],
                    "hint": hint(candidates),
                },
                evidence=f"{why}; " + "; ".join(sentences) + weak,
            )
        )
        windows.append(
            WindowVerdict(
                window.index,
                "inconclusive",
                0.0,
                "; ".join(sentences),
                (first_index + len(findings) - 1,),
            )
        )
    session = "; ".join(c.sentence() for c in candidates)
    reason = f"{why}, and the verdict depends on it: {session}. Pass {hint(candidates)}{weak}"
    return findings, Verdict("inconclusive", 0.0, reason, tuple(windows), hint(candidates))


def _why(side: LocalSide) -> tuple[str, str]:
    """Why the side is unknown, and the weak hints (low-confidence clues) as a suffix."""
    low = [c for c in side.clues if c.confidence == "low"]
    text = (
        f"which side was muted is unknown ({side.how.removeprefix('unknown: ')})"
        if side.how.startswith("unknown: ")
        else "which side was muted is unknown (no --local, session.json, SDP, addon events, "
        "TURN, ICE-lite or media-server ICE evidence, or interface address)"
    )
    weak = "".join(f". A weak hint, not used: {c.detail}" for c in low)
    return text, weak
