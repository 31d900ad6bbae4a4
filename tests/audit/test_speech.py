"""The speech-activity timeline a leaked audio level exposes, and its check against the WebRTC
VAD on the lab's reference speech at the audit's own alignment."""

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
    agreement,
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
)
"""The lab sessions whose audio level leaks sound while muted (a level is on the wire)."""
VAD_MODE = 2
"""The WebRTC VAD's aggressiveness (0-3): 2, 'aggressive'."""
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
def reference_vad(path: str) -> np.ndarray:
    """The WebRTC VAD's decision per 20 ms frame of a reference WAV (webrtcvad-wheels, a dev
    dependency: imported here so that the other tests run without it)."""
    import webrtcvad

    with open(path, "rb") as fo:
        samples, rate = read_wav(fo)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    vad, size = webrtcvad.Vad(VAD_MODE), round(rate * FRAME_S)
    return np.array(
        [
            vad.is_speech(pcm[2 * size * i : 2 * size * (i + 1)], rate)
            for i in range(len(samples) // size)
        ]
    )


@pytest.mark.parametrize("name", LEAKING)
def test_the_timeline_agrees_with_the_webrtc_vad_on_the_reference(name: str) -> None:
    analysis = lab(name)
    found = [f for f in analysis.findings if f.id == "audio-level-while-muted"]
    assert found, f"{name}: the audio level no longer leaks"
    reference, alignment = analysis.reference, analysis.reference.alignment
    assert reference.file and reference.start is not None
    assert alignment is not None and alignment.proven
    vad = reference_vad(reference.file)
    for finding in found:
        assert finding.series is not None
        t = finding.series.times
        levels = (-finding.series.values).astype(np.int64)
        activity = speech_activity(t, levels)
        assert finding.numbers["speech"]["speech_packets"] == activity.speech_packets
        share, compared = agreement(
            activity.speech, t, vad, start=reference.start, lag_s=alignment.lag_s
        )
        # the reference is mostly speech: "always speech" is the baseline to beat
        always, _ = agreement(
            np.ones(t.size, np.bool_), t, vad, start=reference.start, lag_s=alignment.lag_s
        )
        print(f"{name} window {finding.window}: {share:.3f} of {compared} frames agree")
        print(f"  ('always speech' agrees on {always:.3f})")
        assert compared >= 0.9 * t.size
        assert share >= TARGET
        assert share > always


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
