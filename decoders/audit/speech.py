"""What a leaked RFC 6464 audio level exposes: when the muted user spoke.

The audio level travels in clear in every packet's header, even with SRTP (unless cryptex,
RFC 9335, encrypts the header extensions). When it reports sound while muted, anyone on the
path can read a speech-activity timeline from it: per packet (one 20 ms frame) speech or not,
the talk spurts, the seconds of speech. The rule is a threshold on the level with a hangover
(speech goes on for :data:`HANGOVER_S` after the last loud packet, as voice-activity detectors
do over the short pauses inside words). Both were chosen held out (:func:`choose_rule`): on the
lab's Chromium sessions alone, against the WebRTC VAD run on their reference speech at the
alignment the audit found, and tested on the Janus sessions (another app) and session by
session left out (docs/methodology.md §10). numpy only; the VAD is needed by the tests alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from decoders.session.sdpsources import CRYPTEX_LINE, Cryptex

SPEECH_LEVEL: Final = 55
"""A packet whose level is at or above -55 dBov (the header's value <= 55) is loud enough to
be speech; chosen on the Chromium lab sessions alone (:func:`choose_rule`, docs/methodology.md
§10)."""
HANGOVER_S: Final = 0.16
"""Speech goes on this long after the last loud packet (8 frames of 20 ms); chosen with
:data:`SPEECH_LEVEL`."""
RULE_LEVELS: Final = tuple(range(25, 75, 5))
"""The thresholds :func:`choose_rule` tries: -25 to -70 dBov, every 5 dB."""
RULE_HANGOVERS_S: Final = tuple(round(0.02 * frames, 2) for frames in range(16))
"""The hangovers :func:`choose_rule` tries: 0 to 300 ms, every frame (20 ms)."""
FRAME_S: Final = 0.02
"""One packet's frame: a talk spurt ends one frame after its last packet."""
MAX_SPURTS_SHOWN: Final = 50
"""Talk spurts listed in report.json one by one (all are counted)."""


@dataclass(frozen=True, slots=True)
class TalkSpurt:
    """One stretch of speech, on the capture's clock (epoch seconds)."""

    start: float
    end: float

    @property
    def duration_s(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class SpeechActivity:
    """The speech-activity timeline of one stream in one mute window, from its audio levels."""

    packets: int
    """Packets with an audio level."""
    speech_packets: int
    speech_s: float
    spurts: tuple[TalkSpurt, ...]
    threshold_dbov: int
    hangover_s: float
    speech: npt.NDArray[np.bool_] = field(compare=False, repr=False)
    """Per packet (in the order given): speech or not."""

    @property
    def speech_share(self) -> float:
        return self.speech_packets / self.packets if self.packets else 0.0

    def text(self) -> str:
        return describe(self.to_json())

    def to_json(self, origin: float | None = None) -> dict[str, Any]:
        """``origin``: the capture's first packet, to give spurts from the capture's start."""

        def since(t: float) -> float | None:
            return round(t - origin, 3) if origin is not None else None

        return {
            "threshold_dbov": self.threshold_dbov,
            "hangover_s": self.hangover_s,
            "packets": self.packets,
            "speech_packets": self.speech_packets,
            "speech_s": round(self.speech_s, 3),
            "spurt_count": len(self.spurts),
            "spurts": [
                {
                    "start": s.start,
                    "end": s.end,
                    "start_from_capture_start": since(s.start),
                    "duration_s": round(s.duration_s, 3),
                }
                for s in self.spurts[:MAX_SPURTS_SHOWN]
            ],
        }


def speech_flags(
    times_s: npt.NDArray[np.float64],
    levels: npt.NDArray[np.integer[Any]],
    *,
    threshold: int = SPEECH_LEVEL,
    hangover_s: float = HANGOVER_S,
) -> npt.NDArray[np.bool_]:
    """Per packet: speech or not. ``levels`` are the header's values (0..127, -dBov), in time
    order; a packet is speech when loud (value <= ``threshold``) or within ``hangover_s``
    after a loud packet."""
    if times_s.shape != levels.shape:
        raise ValueError("times and levels differ in length")
    loud = levels.astype(np.int64) <= threshold
    if not loud.any():
        return np.zeros(levels.shape, np.bool_)
    # time of the latest loud packet at or before each packet
    marks = np.where(loud, times_s, -np.inf)
    last_loud = np.maximum.accumulate(marks)
    out: npt.NDArray[np.bool_] = (times_s - last_loud) <= hangover_s + 1e-9
    return out


def speech_activity(
    times_s: npt.NDArray[np.float64],
    levels: npt.NDArray[np.integer[Any]],
    *,
    threshold: int = SPEECH_LEVEL,
    hangover_s: float = HANGOVER_S,
) -> SpeechActivity:
    """The timeline of one stream's packets (``times_s`` on the capture's clock, ascending)."""
    speech = speech_flags(times_s, levels, threshold=threshold, hangover_s=hangover_s)
    spurts: list[TalkSpurt] = []
    if speech.any():
        edges = np.diff(np.concatenate(([0], speech.astype(np.int8), [0])))
        # a gap in the packets longer than the hangover (DTX, loss) ends a spurt too
        gap = np.flatnonzero(np.diff(times_s) > hangover_s + FRAME_S)
        cut = np.zeros(speech.size + 1, np.int8)
        cut[gap + 1] = 1
        starts = np.union1d(np.flatnonzero(edges == 1), np.flatnonzero(cut[:-1] & speech))
        ends = np.union1d(np.flatnonzero(edges == -1) - 1, gap[speech[gap]])
        for a, b in zip(starts, ends, strict=True):
            spurts.append(TalkSpurt(float(times_s[a]), float(times_s[b]) + FRAME_S))
    return SpeechActivity(
        packets=int(levels.size),
        speech_packets=int(speech.sum()),
        speech_s=float(sum(s.duration_s for s in spurts)),
        spurts=tuple(spurts),
        threshold_dbov=-threshold,
        hangover_s=hangover_s,
        speech=speech,
    )


def describe(doc: Mapping[str, Any]) -> str:
    """One line from :meth:`SpeechActivity.to_json`'s document (report.json's
    ``numbers.speech``): ``4.5 s of speech in 7 talk spurts (longest 1.1 s) ...``."""
    spurts = doc.get("spurts") or []
    threshold, packets = doc.get("threshold_dbov"), doc.get("packets")
    if not doc.get("spurt_count"):
        return f"no speech: no packet at or above {threshold} dBov among {packets}"
    longest = max(float(s["duration_s"]) for s in spurts) if spurts else 0.0
    return (
        f"{float(doc['speech_s']):.1f} s of speech in {doc['spurt_count']} talk spurt(s) "
        f"(longest {longest:.1f} s); {doc['speech_packets']} of {packets} packets at or above "
        f"{threshold} dBov, with a {float(doc['hangover_s']) * 1000:.0f} ms hangover"
    )


def agreement(
    speech: npt.NDArray[np.bool_],
    times_s: npt.NDArray[np.float64],
    reference_speech: npt.NDArray[np.bool_],
    *,
    start: float,
    lag_s: float,
    frame_s: float = FRAME_S,
) -> tuple[float, int]:
    """Frame-level agreement of a timeline with a voice-activity detector's frames of the
    reference signal: packet ``i`` (sent at ``times_s[i]``) is compared with the reference frame
    the microphone heard ``lag_s`` earlier, the reference starting at ``start`` (the audit's
    alignment: :attr:`decoders.audit.analysis.ReferenceInfo.start` and its lag). Returns the
    share of packets that agree and how many were compared (those within the reference)."""
    index = np.floor((times_s - lag_s - start) / frame_s).astype(np.int64)
    inside = (index >= 0) & (index < reference_speech.size)
    compared = int(inside.sum())
    if compared == 0:
        return 0.0, 0
    same = speech[inside] == reference_speech[index[inside]]
    return float(same.mean()), compared


@dataclass(frozen=True, slots=True)
class LevelPrivacy:
    """Whether the audio level is hidden on the wire (cryptex, RFC 9335, from the session's
    SDP), and what the app's makers should do when it is not and it leaked sound."""

    cryptex: Cryptex
    recommendation: str | None
    """Set when cryptex was not negotiated and ``audio-level-while-muted`` fired."""

    @property
    def hidden(self) -> bool:
        return self.cryptex.negotiated is True

    def text(self) -> str | None:
        """One line for people, or None when there is nothing to say."""
        if self.hidden:
            return (
                "the audio level is hidden on the wire: cryptex (RFC 9335) encrypts the RTP "
                f"header extensions ({self.cryptex.evidence})"
            )
        return self.recommendation

    def to_json(self) -> dict[str, Any]:
        return {
            **self.cryptex.to_json(),
            "level_hidden": self.hidden,
            "recommendation": self.recommendation,
            "text": self.text(),
        }


def level_privacy(cryptex: Cryptex, leaked: bool) -> LevelPrivacy:
    """``leaked``: an ``audio-level-while-muted`` finding fired."""
    advice = None
    if leaked and cryptex.negotiated is not True:
        advice = (
            "recommended to the app's makers: negotiate cryptex (RFC 9335), which encrypts "
            "the audio-level header on the wire: the SDP line "
            f"'{CRYPTEX_LINE}' in both the offer and the answer (session level or in each "
            f"m= section); this session: {cryptex.evidence}"
        )
    return LevelPrivacy(cryptex, advice)


# -- choosing the rule on some sessions, testing it on others --------------------------------------


@dataclass(frozen=True)
class SpeechCase:
    """One stream's packets in one mute window and a voice-activity detector's frames of the
    reference the microphone played, at the audit's alignment (see :func:`agreement`)."""

    name: str
    times_s: npt.NDArray[np.float64]
    levels: npt.NDArray[np.int64]
    reference_speech: npt.NDArray[np.bool_]
    start: float
    lag_s: float

    def agreement(self, threshold: int, hangover_s: float) -> tuple[float, int]:
        """Frame agreement of the rule (``threshold``, ``hangover_s``) with the detector, and
        the frames compared."""
        speech = speech_flags(self.times_s, self.levels, threshold=threshold, hangover_s=hangover_s)
        return agreement(
            speech, self.times_s, self.reference_speech, start=self.start, lag_s=self.lag_s
        )


@dataclass(frozen=True, slots=True)
class RuleChoice:
    """The rule :func:`choose_rule` found best, and its pooled agreement on the cases it saw."""

    threshold: int
    hangover_s: float
    agreement: float


def choose_rule(
    cases: Sequence[SpeechCase],
    levels: Sequence[int] = RULE_LEVELS,
    hangovers_s: Sequence[float] = RULE_HANGOVERS_S,
) -> RuleChoice:
    """The threshold and hangover whose timeline agrees best with the detector over all the
    frames of ``cases`` together (each compared frame counts once); ties go to the first in
    grid order (lower threshold value, i.e. louder, then shorter hangover)."""
    if not cases:
        raise ValueError("choosing a rule needs at least one case")
    best: RuleChoice | None = None
    for threshold in levels:
        for hangover in hangovers_s:
            results = [case.agreement(threshold, hangover) for case in cases]
            compared = sum(count for _, count in results)
            pooled = sum(share * count for share, count in results) / compared if compared else 0
            if best is None or pooled > best.agreement:
                best = RuleChoice(threshold, hangover, pooled)
    assert best is not None
    return best
