"""Tests for decoders.audit.correlate: WAV reading, the envelope, lag search and p-values."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from helpers.corpus import lab_file
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.audit.correlate import (
    FLOOR_DBFS,
    Correlation,
    Envelope,
    _ranks,  # the tie handling is the subtle part
    correlate,
    loudness_envelope,
    read_wav,
)

REFERENCE = Path(__file__).resolve().parent.parent.parent / "captures" / "reference.wav"
START = 1_795_989_000.0


def grid(offset: float, n: int, step: float) -> npt.NDArray[np.float64]:
    """``n`` times ``step`` apart, starting ``offset`` after START (epoch seconds)."""
    return np.asarray(START + offset + np.arange(n) * step, np.float64)


def wav_bytes(samples: npt.NDArray[np.int64], width: int, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(8000)
        if width == 1:
            raw = (samples + 128).astype(np.uint8).tobytes()
        elif width == 3:
            raw = b"".join(int(s).to_bytes(3, "little", signed=True) for s in samples)
        else:
            raw = samples.astype(f"<i{width}").tobytes()
        out.writeframes(raw)
    return buf.getvalue()


@pytest.mark.parametrize(("width", "scale"), [(1, 128), (2, 32768), (3, 1 << 23), (4, 1 << 31)])
def test_read_wav_every_width(width: int, scale: int) -> None:
    values = np.array([0, scale // 2, -scale // 2, scale // 4], np.int64)
    samples, rate = read_wav(io.BytesIO(wav_bytes(values, width)))
    assert rate == 8000
    assert samples.tolist() == pytest.approx([0.0, 0.5, -0.5, 0.25])


def test_read_wav_mixes_channels_to_mono() -> None:
    interleaved = np.array([1000, 3000, -2000, 0], np.int64)
    samples, _ = read_wav(io.BytesIO(wav_bytes(interleaved, 2, channels=2)))
    assert samples.tolist() == pytest.approx([2000 / 32768, -1000 / 32768])


@pytest.mark.parametrize("data", [b"", b"RIFF", b"not a wave file at all" * 4])
def test_read_wav_rejects(data: bytes) -> None:
    with pytest.raises(ValueError, match="WAV"):
        read_wav(io.BytesIO(data))


def test_envelope_of_a_sine_and_of_silence() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    envelope = loudness_envelope(np.concatenate([tone, np.zeros(rate)]), rate, START)
    assert envelope.times_s.size == 100
    assert envelope.dbfs[:50] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    assert envelope.dbfs[50:].tolist() == [FLOOR_DBFS] * 50
    assert envelope.duration_s == pytest.approx(2.0)
    inside = envelope.at(np.array([START + 0.5, START + 1.5, START - 1, START + 5]))
    assert inside[0] == pytest.approx(envelope.dbfs[25], abs=0.1)
    assert np.isnan(inside[2]) and np.isnan(inside[3])


def speechy_envelope(seed: int = 1, seconds: float = 12.0) -> Envelope:
    """A random loud/quiet pattern like speech: bursts of 100-600 ms."""
    rng = np.random.default_rng(seed)
    frames = int(seconds / 0.02)
    dbfs = np.full(frames, -60.0)
    at = 0
    while at < frames:
        length = int(rng.integers(5, 30))
        if rng.random() < 0.6:
            dbfs[at : at + length] = -20.0 + 5 * rng.standard_normal(min(length, frames - at))
        at += length + int(rng.integers(5, 30))
    times = grid(0.01 - START, frames, 0.02)
    return Envelope(times, dbfs, START)


def test_a_delayed_copy_is_found_with_its_lag() -> None:
    envelope = speechy_envelope()
    rng = np.random.default_rng(7)
    times = grid(2.0, 300, 0.02)
    values = envelope.at(times - 0.3) + rng.normal(0, 2, times.size)
    result = correlate(times, values, envelope, series="levels")
    assert isinstance(result, Correlation)
    assert result.r > 0.7  # the noise scrambles the ranks of the quiet frames
    assert result.lag_s == pytest.approx(0.3, abs=0.021)
    assert result.p_value <= 0.01
    assert result.proven
    assert result.points >= 295  # points the envelope covers at every lag
    as_json = result.to_json()
    assert as_json["proven"] is True and as_json["series"] == "levels"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.integers(0, 4), min_size=6, max_size=6), min_size=1, max_size=4))
def test_ranks_average_ties(rows: list[list[int]]) -> None:
    x = np.array(rows, np.float64)
    ranks = _ranks(x)
    for row, got in zip(x, ranks, strict=True):
        expected = [
            float(np.mean([i for i, v in enumerate(sorted(row)) if v == value])) for value in row
        ]
        assert got.tolist() == expected


def test_runs_of_equal_values_do_not_correlate() -> None:
    envelope = Envelope(grid(0.01 - START, 600, 0.02), np.full(600, -60.0), START)
    envelope.dbfs[::7] = -20.0
    times = grid(1.0, 300, 0.02)
    values = np.where(np.arange(300) % 11 == 0, 5.0, 1.0)  # long runs of one value
    result = correlate(times, values, envelope, series="ties", permutations=99)
    assert result is not None and abs(result.r) < 0.3 and not result.proven


def test_monotonic_transform_does_not_matter() -> None:
    envelope = speechy_envelope()
    times = grid(2.0, 200, 0.02)
    values = envelope.at(times - 0.1)
    a = correlate(times, values, envelope, series="db", permutations=99)
    b = correlate(times, 10 ** (values / 20), envelope, series="linear", permutations=99)
    assert a is not None and b is not None
    assert a.r == pytest.approx(b.r) and a.lag_s == b.lag_s


def test_an_unrelated_series_is_not_proven() -> None:
    envelope = speechy_envelope(seed=1)
    other = speechy_envelope(seed=99)
    times = grid(2.0, 300, 0.02)
    result = correlate(times, other.at(times), envelope, series="other")
    assert result is not None
    assert result.p_value > 0.01
    assert not result.proven


def test_sparse_telemetry_like_series() -> None:
    envelope = speechy_envelope()
    times = grid(2.0, 12, 0.5)
    values = 10 ** (envelope.at(times - 0.15) / 20)
    result = correlate(times, values, envelope, series="telemetry", lag_range_s=(-0.3, 0.6))
    assert result is not None
    assert result.r > 0.9
    assert result.lag_range_s == (-0.3, 0.6)


def test_too_few_points_or_constant_values() -> None:
    envelope = speechy_envelope()
    times = grid(2.0, 5, 0.02)
    assert correlate(times, np.arange(5, dtype=np.float64), envelope, series="x") is None
    times = grid(2.0, 50, 0.02)
    assert correlate(times, np.ones(50), envelope, series="x") is None
    outside = grid(100.0, 50, 0.02)
    assert correlate(outside, np.arange(50, dtype=np.float64), envelope, series="x") is None


def test_nan_values_are_left_out() -> None:
    envelope = speechy_envelope()
    times = grid(2.0, 100, 0.02)
    values = envelope.at(times)
    values[::10] = np.nan
    result = correlate(times, values, envelope, series="x", permutations=49)
    assert result is not None and result.points == 90


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=8, max_size=60), st.integers(0, 5))
def test_r_and_p_stay_in_range(values: list[float], seed: int) -> None:
    envelope = speechy_envelope(seed=seed + 1)
    times = grid(1.0, len(values), 0.05)
    result = correlate(times, np.array(values), envelope, series="x", permutations=19, seed=seed)
    if result is not None:
        assert -1.0 - 1e-9 <= result.r <= 1.0 + 1e-9
        assert 0.0 < result.p_value <= 1.0


def test_the_lab_reference_wav() -> None:
    with lab_file(REFERENCE.name).open("rb") as fo:
        samples, rate = read_wav(fo)
    assert rate == 16000
    envelope = loudness_envelope(samples, rate, START)
    assert envelope.duration_s == pytest.approx(18.0, abs=0.05)
    # speech peak-normalised to 0.5, noise at -60 dBFS: loud frames and quiet ones
    assert envelope.dbfs.max() > -15
    assert np.percentile(envelope.dbfs, 5) < -50
