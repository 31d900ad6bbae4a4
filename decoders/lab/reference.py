"""The reference signal the lab's fake microphone plays: espeak-ng speech plus tone bursts.

Speech makes the muted/unmuted difference realistic for a voice codec (pauses, varying level);
tone bursts at distinct frequencies mark positions in the signal, so a decoded recording can
be aligned with the reference; a seeded -60 dBFS noise floor keeps speech pauses from being
digital silence, so silence on the wire can only come from muting. The same signal is written
twice: at 48 kHz for Chromium's ``--use-file-for-fake-audio-capture`` and at 16 kHz as the
committed ``reference.wav``.
Generation is deterministic for a given espeak-ng and sox version.
"""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

SPEECH_TEXT = (
    "This is the mutecheck reference signal. "
    "The quick brown fox jumps over the lazy dog. "
    "Counting now: one, two, three, four, five, six, seven, eight, nine, ten. "
    "She sells sea shells by the sea shore. "
    "A muted microphone should send no speech at all. "
)
MIC_SAMPLE_RATE = 48_000
REFERENCE_SAMPLE_RATE = 16_000
SPEECH_PEAK = 0.5  # speech peak amplitude, full scale = 1.0
TONE_AMPLITUDE = 0.25
TONE_FIRST_START_S = 1.0
TONE_PERIOD_S = 2.0
TONE_DURATION_S = 0.2
TONE_BASE_HZ = 400.0
TONE_STEP_HZ = 150.0
TONE_FADE_S = 0.01
NOISE_RMS = 0.001  # -60 dBFS room-noise floor: a live microphone is never digitally silent
NOISE_SEED = 6464
PEER_SPEECH_TEXT = (
    "Hello from the other side of the call. "
    "I am the remote participant, and I keep talking while you are muted. "
    "The weather today is grey, with a little rain in the afternoon. "
    "Please tell me when you can hear me again. "
)
PEER_VOICE = "en-gb-x-rp"
PEER_WORDS_PER_MINUTE = 150


@dataclass(frozen=True, slots=True)
class ToneBurst:
    """One sine burst in the reference: where it starts, how long it lasts, its frequency."""

    start_s: float
    duration_s: float
    frequency_hz: float


@dataclass(frozen=True, slots=True)
class Reference:
    """The files written by :func:`make_reference` and what they contain."""

    mic_path: Path
    reference_path: Path
    mic_sample_rate: int
    reference_sample_rate: int
    duration_s: float
    bursts: tuple[ToneBurst, ...]
    speech_text: str


def tone_bursts(duration_s: float) -> tuple[ToneBurst, ...]:
    """Burst k starts at 1 + 2k s and has frequency 400 + 150k Hz, so each one names its place."""
    bursts: list[ToneBurst] = []
    k = 0
    while TONE_FIRST_START_S + k * TONE_PERIOD_S + TONE_DURATION_S <= duration_s:
        bursts.append(
            ToneBurst(
                start_s=TONE_FIRST_START_S + k * TONE_PERIOD_S,
                duration_s=TONE_DURATION_S,
                frequency_hz=TONE_BASE_HZ + k * TONE_STEP_HZ,
            )
        )
        k += 1
    return tuple(bursts)


def mix_reference(
    speech: npt.NDArray[np.float64],
    bursts: tuple[ToneBurst, ...],
    sample_rate: int,
    duration_s: float,
) -> npt.NDArray[np.int16]:
    """Loop/trim `speech` (any level) to `duration_s`, normalise it, add bursts and noise."""
    total = round(duration_s * sample_rate)
    if speech.size == 0:
        raise ValueError("reference speech is empty")
    repeats = -(-total // speech.size)
    signal = np.tile(speech, repeats)[:total].astype(np.float64)
    peak = float(np.max(np.abs(signal)))
    if peak > 0.0:
        signal *= SPEECH_PEAK / peak
    signal += np.random.default_rng(NOISE_SEED).normal(0.0, NOISE_RMS, total)
    fade = int(TONE_FADE_S * sample_rate)
    for burst in bursts:
        start = round(burst.start_s * sample_rate)
        length = round(burst.duration_s * sample_rate)
        t = np.arange(length) / sample_rate
        tone = TONE_AMPLITUDE * np.sin(2.0 * np.pi * burst.frequency_hz * t)
        envelope = np.ones(length)
        envelope[:fade] = np.linspace(0.0, 1.0, fade)
        envelope[length - fade :] = np.linspace(1.0, 0.0, fade)
        end = min(start + length, total)
        signal[start:end] += (tone * envelope)[: end - start]
    return np.asarray(np.clip(np.round(signal * 32767.0), -32768, 32767), dtype=np.int16)


def read_wav_mono(path: Path) -> tuple[npt.NDArray[np.float64], int]:
    """Read a 16-bit mono PCM WAV as floats in [-1, 1) and its sample rate."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit mono WAV")
        rate = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    return samples, rate


def write_wav_mono(path: Path, samples: npt.NDArray[np.int16], sample_rate: int) -> None:
    """Write 16-bit mono PCM WAV."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(samples.astype("<i2").tobytes())


def resample_wav(source: Path, target: Path, sample_rate: int) -> None:
    """Resample a WAV with sox to 16-bit mono at `sample_rate`, dithering off (deterministic)."""
    subprocess.run(
        ["sox", "-D", str(source), "-b", "16", "-c", "1", "-r", str(sample_rate), str(target)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def synthesize_speech(
    text: str,
    sample_rate: int,
    work_dir: Path,
    *,
    voice: str = "en-us",
    words_per_minute: int = 165,
) -> npt.NDArray[np.float64]:
    """Speak `text` with espeak-ng (`voice`) and return it resampled to `sample_rate`."""
    raw = work_dir / f"speech-{voice}-espeak.wav"
    resampled = work_dir / f"speech-{voice}-{sample_rate}.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    resample_wav(raw, resampled, sample_rate)
    samples, _ = read_wav_mono(resampled)
    return samples


def make_reference(
    mic_path: Path, reference_path: Path, duration_s: float, work_dir: Path
) -> Reference:
    """Write the 48 kHz fake-microphone WAV and the 16 kHz reference WAV of the same signal."""
    bursts = tone_bursts(duration_s)
    speech = synthesize_speech(SPEECH_TEXT, MIC_SAMPLE_RATE, work_dir)
    write_wav_mono(
        mic_path, mix_reference(speech, bursts, MIC_SAMPLE_RATE, duration_s), MIC_SAMPLE_RATE
    )
    resample_wav(mic_path, reference_path, REFERENCE_SAMPLE_RATE)
    return Reference(
        mic_path=mic_path,
        reference_path=reference_path,
        mic_sample_rate=MIC_SAMPLE_RATE,
        reference_sample_rate=REFERENCE_SAMPLE_RATE,
        duration_s=duration_s,
        bursts=bursts,
        speech_text=SPEECH_TEXT,
    )


def make_peer_reference(path: Path, duration_s: float, work_dir: Path) -> Path:
    """The remote participant's speech (``peer-reference.wav``, 16 kHz): another voice, text.

    The lab's aiortc peer sends it back to the browser for the whole call (``--peer-talks``),
    so a capture holds speech in both directions and the other side talks while the user is
    muted. No tone bursts; the same -60 dBFS noise floor.
    """
    speech = synthesize_speech(
        PEER_SPEECH_TEXT,
        REFERENCE_SAMPLE_RATE,
        work_dir,
        voice=PEER_VOICE,
        words_per_minute=PEER_WORDS_PER_MINUTE,
    )
    write_wav_mono(
        path, mix_reference(speech, (), REFERENCE_SAMPLE_RATE, duration_s), REFERENCE_SAMPLE_RATE
    )
    return path
