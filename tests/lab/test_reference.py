"""The reference signal: tone bursts where they are announced, speech level, noise floor, files.

The mixing is checked on synthetic speech (pure numpy); the files are made with the real
espeak-ng and sox (skipped when they are missing, never in CI) and checked with numpy's FFT.
"""

from __future__ import annotations

import os
import shutil
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from decoders.lab.reference import (
    MIC_SAMPLE_RATE,
    NOISE_RMS,
    REFERENCE_SAMPLE_RATE,
    SPEECH_PEAK,
    TONE_AMPLITUDE,
    TONE_DURATION_S,
    ToneBurst,
    make_reference,
    mix_reference,
    read_wav_mono,
    tone_bursts,
    write_wav_mono,
)

needs_tools = pytest.mark.skipif(
    (shutil.which("espeak-ng") is None or shutil.which("sox") is None) and not os.environ.get("CI"),
    reason="espeak-ng or sox not installed",
)
RATE = 16_000


def rms_db(samples: npt.NDArray[np.float64]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(samples**2))))


def test_tone_bursts_name_their_place() -> None:
    bursts = tone_bursts(18.0)
    assert len(bursts) == 9
    assert bursts[0] == ToneBurst(start_s=1.0, duration_s=TONE_DURATION_S, frequency_hz=400.0)
    assert bursts[-1] == ToneBurst(start_s=17.0, duration_s=TONE_DURATION_S, frequency_hz=1600.0)
    assert [b.start_s for b in bursts] == [1.0 + 2 * k for k in range(9)]
    assert len({b.frequency_hz for b in bursts}) == 9
    assert tone_bursts(1.1) == ()
    assert len(tone_bursts(1.2)) == 1  # a burst that just fits


def test_mix_reference_levels_bursts_and_noise() -> None:
    # "speech": a 200 Hz tone, 0.5 s on, 0.5 s off, at an arbitrary level
    t = np.arange(RATE) / RATE
    speech = np.where(t < 0.5, 0.1 * np.sin(2 * np.pi * 200 * t), 0.0)
    bursts = tone_bursts(6.0)
    mixed = mix_reference(speech, bursts, RATE, 6.0).astype(np.float64) / 32768.0
    assert mixed.size == 6 * RATE
    # speech peak normalised (plus noise), looped every second
    assert abs(float(np.max(np.abs(mixed[: RATE // 2]))) - SPEECH_PEAK) < 0.01
    # between speech and bursts: the -60 dBFS noise floor, never digital silence
    pause = mixed[int(0.6 * RATE) : int(0.9 * RATE)]
    assert abs(rms_db(pause) - 20 * np.log10(NOISE_RMS)) < 1.0
    assert np.count_nonzero(pause) > 0.9 * pause.size
    # each burst at its frequency and time; it overlaps the 200 Hz "speech", so look above 300 Hz
    for burst in bursts:
        start = round((burst.start_s + 0.02) * RATE)
        segment = mixed[start : start + round(0.16 * RATE)]
        spectrum = np.abs(np.fft.rfft(segment * np.hanning(segment.size)))
        freqs = np.fft.rfftfreq(segment.size, 1.0 / RATE)
        high = freqs > 300
        peak = float(freqs[high][int(np.argmax(spectrum[high]))])
        assert abs(peak - burst.frequency_hz) < 15, (burst, peak)
    with pytest.raises(ValueError, match="empty"):
        mix_reference(np.zeros(0), bursts, RATE, 1.0)


def test_mix_reference_is_deterministic_and_clipped() -> None:
    speech = np.random.default_rng(1).normal(0, 1, RATE)
    first = mix_reference(speech, tone_bursts(3.0), RATE, 3.0)
    assert first.dtype == np.int16
    assert np.array_equal(first, mix_reference(speech, tone_bursts(3.0), RATE, 3.0))
    assert int(np.max(np.abs(first.astype(np.int32)))) <= round(
        (SPEECH_PEAK + TONE_AMPLITUDE + 6 * NOISE_RMS) * 32767
    )


def test_wav_round_trip(tmp_path: Path) -> None:
    samples = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    write_wav_mono(tmp_path / "x.wav", samples, 8000)
    read, rate = read_wav_mono(tmp_path / "x.wav")
    assert rate == 8000
    assert np.array_equal(np.round(read * 32768).astype(np.int16), samples)
    with wave.open(str(tmp_path / "stereo.wav"), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00" * 8)
    with pytest.raises(ValueError, match="16-bit mono"):
        read_wav_mono(tmp_path / "stereo.wav")


@needs_tools
def test_make_reference_with_espeak_and_sox(tmp_path: Path) -> None:
    first = make_reference(tmp_path / "mic.wav", tmp_path / "ref.wav", 8.0, tmp_path)
    assert first.mic_sample_rate == MIC_SAMPLE_RATE
    assert first.reference_sample_rate == REFERENCE_SAMPLE_RATE
    assert first.bursts == tone_bursts(8.0)
    mic, mic_rate = read_wav_mono(first.mic_path)
    reference, reference_rate = read_wav_mono(first.reference_path)
    assert (mic_rate, reference_rate) == (MIC_SAMPLE_RATE, REFERENCE_SAMPLE_RATE)
    assert mic.size == 8 * MIC_SAMPLE_RATE
    assert abs(reference.size - 8 * REFERENCE_SAMPLE_RATE) <= 1
    # speech is there: loud 100 ms blocks, and the level varies (pauses between words)
    blocks = reference[: reference.size // 1600 * 1600].reshape(-1, 1600)
    levels = 10 * np.log10(np.mean(blocks**2, axis=1))
    assert np.percentile(levels, 90) > -25
    assert np.percentile(levels, 90) - np.percentile(levels, 10) > 15
    assert float(np.min(levels)) > -70  # the noise floor: never digital silence
    for burst in first.bursts:
        start = round((burst.start_s + 0.02) * REFERENCE_SAMPLE_RATE)
        segment = reference[start : start + round(0.16 * REFERENCE_SAMPLE_RATE)]
        tone = TONE_AMPLITUDE * np.sin(
            2 * np.pi * burst.frequency_hz * np.arange(segment.size) / REFERENCE_SAMPLE_RATE
        )
        # the burst is the strongest component at its frequency: correlate with a pure tone
        spectrum = np.abs(np.fft.rfft(segment))
        freqs = np.fft.rfftfreq(segment.size, 1 / REFERENCE_SAMPLE_RATE)
        index = int(np.argmin(np.abs(freqs - burst.frequency_hz)))
        assert spectrum[index] > 0.3 * np.abs(np.fft.rfft(tone))[index]
    # deterministic for the same tools: a second run writes identical files
    second = make_reference(tmp_path / "mic2.wav", tmp_path / "ref2.wav", 8.0, tmp_path)
    assert second.mic_path.read_bytes() == first.mic_path.read_bytes()
    assert second.reference_path.read_bytes() == first.reference_path.read_bytes()


@needs_tools
def test_peer_reference_is_another_voice(tmp_path: Path) -> None:
    """The peer's speech: 16 kHz, its own text and voice, and the corpus's file is this one."""
    from decoders.lab.reference import make_peer_reference

    captures = Path(__file__).resolve().parents[2] / "captures"
    committed = captures / "peer-reference.wav"
    path = make_peer_reference(tmp_path / "peer.wav", 18.0, tmp_path)
    samples, rate = read_wav_mono(path)
    assert rate == REFERENCE_SAMPLE_RATE and samples.size == 18 * REFERENCE_SAMPLE_RATE
    blocks = samples[: samples.size // 1600 * 1600].reshape(-1, 1600)
    levels = 10 * np.log10(np.mean(blocks**2, axis=1))
    assert np.percentile(levels, 90) > -25  # speech
    assert float(np.min(levels)) > -70  # the noise floor
    # deterministic: the corpus's shared peer-reference.wav (18 s) is exactly this signal
    assert path.read_bytes() == committed.read_bytes()
    microphone, _ = read_wav_mono(captures / "reference.wav")
    assert not np.array_equal(samples, microphone)
