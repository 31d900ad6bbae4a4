"""The speech-activity timeline a leaked audio level exposes, and its check against the WebRTC
VAD on the lab's reference speech at the audit's own alignment.

The protocol (docs/methodology.md §10): the VAD is used as shipped (its default
aggressiveness); the rule's threshold and hangover are chosen on the five Chromium sessions
alone and must reach the target on the four Janus sessions (another app, another reference
recording); and each of the nine sessions, left out in turn, must reach it with the rule chosen
on the other eight."""

from __future__ import annotations

from functools import cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders.audit.analysis import Analysis, Inputs, analyze
from decoders.audit.correlate import read_wav
from decoders.audit.speech import (
    FRAME_S,
    HANGOVER_S,
    SPEECH_LEVEL,
    SpeechCase,
    agreement,
    choose_rule,
    describe,
    level_privacy,
    speech_activity,
    speech_flags,
)
from decoders.session.sdpsources import Cryptex

CAPTURES = Path(__file__).resolve().parents[2] / "captures"

LEAKING = (
    "chromium-ui-only",
    "chromium-ui-only-peer-talks",
    "chromium-ui-only-relay-tcp",
    "chromium-ui-only-relay-udp",
    "chromium-ui-only-video",
    "janus-audiobridge",
    "janus-echotest",
    "janus-echotest-ws",
    "janus-videocall",
    "janus-videoroom-streams",
)
"""The lab sessions whose audio level leaks sound while muted (a level is on the wire);
janus-videoroom-streams was recorded after the rule was chosen."""
SELECTION = tuple(name for name in LEAKING if name.startswith("chromium-"))
"""Where the rule is chosen: the Chromium lab page's sessions (one app, one reference)."""
HELD_OUT = tuple(name for name in LEAKING if name not in SELECTION)
"""Where it is tested: the Janus demos (another app, its own reference recording)."""
VAD_MODE = 0
"""The WebRTC VAD's aggressiveness (0-3) as the library ships it (its default, 0): not chosen
on these sessions. The other modes are checked too (test_the_protocol_holds_for_every_vad_mode)."""
TARGET = 0.90


def times(n: int, start: float = 100.0) -> np.ndarray:
    return start + FRAME_S * np.arange(n, dtype=np.float64)


def test_loud_packets_and_the_hangover_are_speech() -> None:
    loud, quiet = SPEECH_LEVEL - 10, 127
    levels = np.array([quiet] * 5 + [loud] * 10 + [quiet] * 30 + [loud] * 5 + [quiet] * 10)
    got = speech_activity(times(levels.size), levels)
    hang = round(HANGOVER_S / FRAME_S)
    assert got.speech_packets == 10 + hang + 5 + hang
    assert len(got.spurts) == 2
    first = got.spurts[0]
    assert first.start == pytest.approx(100.0 + 5 * FRAME_S)
    assert first.duration_s == pytest.approx((10 + hang) * FRAME_S)
    assert got.speech_s == pytest.approx((10 + hang + 5 + hang) * FRAME_S)
    assert got.threshold_dbov == -SPEECH_LEVEL
    assert describe(got.to_json()) == got.text()
    assert got.text().startswith(f"{got.speech_s:.1f} s of speech in 2 talk spurt(s)")


def test_silence_and_quiet_sound_are_no_speech() -> None:
    levels = np.array([127] * 20 + [SPEECH_LEVEL + 1] * 20)
    got = speech_activity(times(levels.size), levels)
    assert got.speech_packets == 0 and got.spurts == () and got.speech_s == 0.0
    assert got.text() == f"no speech: no packet at or above -{SPEECH_LEVEL} dBov among 40"


def test_a_gap_in_the_packets_ends_a_spurt() -> None:
    t = np.concatenate([times(10), times(10, start=110.0)])
    got = speech_activity(t, np.full(20, 10))
    assert [round(s.duration_s, 3) for s in got.spurts] == [0.2, 0.2]


def test_spurts_from_the_capture_start_in_json() -> None:
    got = speech_activity(times(10), np.full(10, 10)).to_json(origin=99.0)
    assert got["spurts"][0]["start_from_capture_start"] == pytest.approx(1.0)
    assert got["spurt_count"] == 1 and got["speech_packets"] == 10


@given(
    st.lists(st.integers(0, 127), min_size=1, max_size=300),
    st.floats(0.0, 1.0),
)
def test_speech_covers_every_loud_packet_and_only_the_hangover_after(
    levels: list[int], hangover: float
) -> None:
    lv = np.array(levels)
    t = times(lv.size)
    got = speech_flags(t, lv, hangover_s=hangover)
    loud = lv <= SPEECH_LEVEL
    assert got[loud].all()
    for i in np.flatnonzero(got & ~loud):
        before = np.flatnonzero(loud[: i + 1])
        assert before.size and t[i] - t[before[-1]] <= hangover + 1e-9
    activity = speech_activity(t, lv, hangover_s=hangover)
    assert activity.speech_packets == int(got.sum())
    assert activity.speech_s <= lv.size * FRAME_S + 1e-9


def test_times_and_levels_must_match() -> None:
    with pytest.raises(ValueError):
        speech_flags(times(3), np.zeros(2, np.int64))


@cache
def lab(name: str) -> Analysis:
    return analyze(Inputs(session_dir=CAPTURES / name))


@cache
def reference_vad(path: str, mode: int = VAD_MODE) -> np.ndarray:
    """The WebRTC VAD's decision per 20 ms frame of a reference WAV (webrtcvad-wheels, a dev
    dependency: imported here so that the other tests run without it)."""
    import webrtcvad

    with open(path, "rb") as fo:
        samples, rate = read_wav(fo)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    vad, size = webrtcvad.Vad(mode), round(rate * FRAME_S)
    return np.array(
        [
            vad.is_speech(pcm[2 * size * i : 2 * size * (i + 1)], rate)
            for i in range(len(samples) // size)
        ]
    )


@cache
def case(name: str, mode: int = VAD_MODE) -> SpeechCase:
    """The session's leaking window: its packets' levels as the finding read them, and the
    VAD's frames of its reference at the audit's own alignment."""
    analysis = lab(name)
    found = [f for f in analysis.findings if f.id == "audio-level-while-muted"]
    assert len(found) == 1, f"{name}: the audio level no longer leaks in one window"
    (finding,) = found
    reference, alignment = analysis.reference, analysis.reference.alignment
    assert reference.file and reference.start is not None
    assert alignment is not None and alignment.proven
    assert finding.series is not None
    t = finding.series.times
    levels = (-finding.series.values).astype(np.int64)
    assert finding.numbers["speech"]["speech_packets"] == speech_activity(t, levels).speech_packets
    vad = reference_vad(reference.file, mode)
    return SpeechCase(name, t, levels, vad, reference.start, alignment.lag_s)


def always_speech(found: SpeechCase) -> float:
    """The baseline to beat: the reference is mostly speech."""
    speech = np.ones(found.times_s.size, np.bool_)
    share, _ = agreement(
        speech, found.times_s, found.reference_speech, start=found.start, lag_s=found.lag_s
    )
    return share


def test_the_shipped_rule_is_the_one_chosen_on_the_chromium_sessions() -> None:
    chosen = choose_rule([case(name) for name in SELECTION])
    assert (chosen.threshold, chosen.hangover_s) == (SPEECH_LEVEL, HANGOVER_S)
    rule = f"-{chosen.threshold} dBov, {chosen.hangover_s * 1000:.0f} ms"
    print(f"chosen on {len(SELECTION)} Chromium sessions: {rule}, pooled {chosen.agreement:.3f}")


@pytest.mark.parametrize("name", HELD_OUT)
def test_the_timeline_agrees_with_the_vad_on_the_held_out_janus_sessions(name: str) -> None:
    """The target, on sessions the rule never saw: another app, another reference."""
    found = case(name)
    share, compared = found.agreement(SPEECH_LEVEL, HANGOVER_S)
    print(
        f"{name}: {share:.3f} of {compared} frames agree (always speech {always_speech(found):.3f})"
    )
    assert compared >= 0.9 * found.times_s.size
    assert share >= TARGET
    assert share > always_speech(found)


@pytest.mark.parametrize("name", LEAKING)
def test_each_session_left_out_meets_the_target(name: str) -> None:
    """Leave one session out: the rule chosen on all the others, scored on this one."""
    chosen = choose_rule([case(other) for other in LEAKING if other != name])
    share, _ = case(name).agreement(chosen.threshold, chosen.hangover_s)
    rule = f"-{chosen.threshold} dBov, {chosen.hangover_s * 1000:.0f} ms"
    print(f"{name} left out: {rule} -> {share:.3f}")
    assert share >= TARGET
    assert share > always_speech(case(name))


@pytest.mark.parametrize("mode", [1, 2, 3])
def test_the_protocol_holds_for_every_vad_mode(mode: int) -> None:
    """With a more aggressive VAD as the reference, the rule chosen on Chromium (another one)
    still meets the target on every Janus session: the result does not hang on that choice."""
    chosen = choose_rule([case(name, mode) for name in SELECTION])
    for name in HELD_OUT:
        share, _ = case(name, mode).agreement(chosen.threshold, chosen.hangover_s)
        assert share >= TARGET, (mode, name, share)


def test_choose_rule_takes_the_best_pooled_and_refuses_nothing_to_choose_from() -> None:
    t = times(40)
    levels = np.array([20] * 10 + [45] * 10 + [127] * 20)
    truth = np.array([True] * 20 + [False] * 20)
    made = SpeechCase("made", t, levels, truth, start=float(t[0]), lag_s=0.0)
    chosen = choose_rule([made], levels=[30, 50], hangovers_s=[0.0, 0.1])
    assert (chosen.threshold, chosen.hangover_s, chosen.agreement) == (50, 0.0, 1.0)
    # a tie goes to the first in grid order: -30 dBov with 200 ms bridges the quiet half too
    tied = choose_rule([made], levels=[30, 50], hangovers_s=[0.2, 0.0])
    assert (tied.threshold, tied.hangover_s) == (30, 0.2)
    with pytest.raises(ValueError, match="at least one case"):
        choose_rule([])


def test_a_session_without_a_leaking_level_has_no_timeline() -> None:
    analysis = lab("chromium-track-disabled")
    assert not [f for f in analysis.findings if "speech" in f.numbers]


def test_a_leaking_level_without_cryptex_recommends_it() -> None:
    privacy = lab("chromium-ui-only").level_privacy
    assert privacy is not None and not privacy.hidden
    assert privacy.cryptex.negotiated is False
    assert privacy.recommendation is not None and "'a=cryptex'" in privacy.recommendation
    assert privacy.text() == privacy.recommendation
    assert privacy.to_json()["recommendation"] == privacy.recommendation


def test_no_leak_no_recommendation() -> None:
    privacy = lab("chromium-track-disabled").level_privacy
    assert privacy is not None and privacy.recommendation is None and privacy.text() is None


def test_negotiated_cryptex_says_the_level_is_hidden(tmp_path: Path) -> None:
    session = CAPTURES / "chromium-ui-only"
    sdp = []
    for name in ("offer.sdp", "answer.sdp"):
        text = (session / name).read_text().replace("m=audio", "a=cryptex\r\nm=audio", 1)
        (tmp_path / name).write_text(text)
        sdp.append(tmp_path / name)
    privacy = analyze(Inputs(session_dir=session, sdp=tuple(sdp))).level_privacy
    assert privacy is not None and privacy.hidden and privacy.recommendation is None
    assert (privacy.text() or "").startswith("the audio level is hidden on the wire: cryptex")


def test_level_privacy_rules() -> None:
    no = Cryptex(False, "no a=cryptex in offer.sdp")
    unknown = Cryptex(None, "no SDP with audio")
    yes = Cryptex(True, "a=cryptex in both")
    assert level_privacy(no, leaked=False).text() is None
    assert "this session: no a=cryptex in offer.sdp" in (
        level_privacy(no, leaked=True).text() or ""
    )
    assert level_privacy(unknown, leaked=True).recommendation is not None
    assert level_privacy(yes, leaked=True).recommendation is None
    assert level_privacy(yes, leaked=False).hidden


@given(st.lists(st.tuples(st.floats(0.001, 1.0), st.integers(0, 127)), min_size=1, max_size=200))
def test_spurts_are_ordered_disjoint_and_cover_the_speech_packets(
    packets: list[tuple[float, int]],
) -> None:
    t = 100.0 + np.cumsum([gap for gap, _ in packets])
    levels = np.array([level for _, level in packets])
    got = speech_activity(t, levels)
    ends = [s.end for s in got.spurts]
    assert all(s.end > s.start for s in got.spurts)
    assert all(a.end <= b.start + 1e-9 for a, b in pairwise(got.spurts))
    for i in np.flatnonzero(got.speech):
        assert any(s.start <= t[i] < s.end for s in got.spurts)
    assert len(ends) <= got.speech_packets
