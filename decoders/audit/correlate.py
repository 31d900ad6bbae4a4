"""Proof by correlation: does a series sent while muted follow what the microphone heard?

When the signal played into the microphone is known (the lab's ``reference.wav``, or any WAV
with its start time), its loudness envelope is compared with a series observed while muted:
audio levels, payload sizes, telemetry values, decoded loudness. The series is sampled at its
own times; for each lag in a range the envelope is read at ``time - lag`` (the microphone hears
first, the network carries it later) and Spearman's rank correlation computed, so any
monotonic relation counts (levels in dBov, sizes in bytes, linear RMS in telemetry alike). The
best lag wins.

The p-value is a permutation test that accounts for the lag search: the series' values are cut
into blocks of about half a second, the blocks put in random order against the (fixed) times,
and the best correlation over all lags computed for each permutation; p is the share of
permutations doing at least as well as the real order (plus one, so p is never zero). Whole
blocks keep the series' own short-range rhythm (a plain shuffle would make smooth series look
significant too easily; a circular shift would be undone by the lag search). numpy only.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from typing import IO, Final

import numpy as np
import numpy.typing as npt

FRAME_S: Final = 0.02
"""Envelope frame: 20 ms, one Opus packet."""
FLOOR_DBFS: Final = -100.0
LAG_RANGE_S: Final = (-1.0, 2.0)
"""Seconds searched: the reference's start time is rarely known to better than a second."""
LAG_STEP_S: Final = 0.02
PERMUTATIONS: Final = 999
BLOCK_S: Final = 0.5
"""Permuted blocks: long enough to keep the series' own short-range rhythm."""
MIN_POINTS: Final = 8
PROVEN_P: Final = 0.01
PROVEN_R: Final = 0.3


@dataclass(frozen=True, slots=True)
class Envelope:
    """Loudness of the reference: dBFS per frame, frame centres in seconds from its start."""

    times_s: npt.NDArray[np.float64]
    dbfs: npt.NDArray[np.float64]
    start: float
    """When the reference started playing, on the capture's clock (epoch seconds)."""

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1] + FRAME_S / 2) if self.times_s.size else 0.0

    def at(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Envelope at epoch times ``t`` (linear interpolation; NaN outside the reference)."""
        offset = t - self.start
        out = np.interp(offset, self.times_s, self.dbfs, left=np.nan, right=np.nan)
        return np.asarray(out, np.float64)


@dataclass(frozen=True, slots=True)
class Correlation:
    """The best alignment of a series with the reference envelope."""

    r: float
    """Spearman's rank correlation at the best lag (-1 .. 1; > 0: louder mic, larger values)."""
    lag_s: float
    """Seconds the series trails the microphone by."""
    p_value: float
    points: int
    permutations: int
    series: str
    lag_range_s: tuple[float, float] = LAG_RANGE_S

    @property
    def proven(self) -> bool:
        """Follows the microphone beyond reasonable doubt (p < 0.01 and r > 0.3)."""
        return self.p_value < PROVEN_P and self.r > PROVEN_R

    def to_json(self) -> dict[str, object]:
        return {
            "series": self.series,
            "r": round(self.r, 4),
            "lag_s": round(self.lag_s, 3),
            "p_value": round(self.p_value, 5),
            "points": self.points,
            "permutations": self.permutations,
            "lag_range_s": [round(x, 3) for x in self.lag_range_s],
            "method": "spearman rank correlation, best lag, block permutation test",
            "proven": self.proven,
        }


def read_wav(fileobj: IO[bytes]) -> tuple[npt.NDArray[np.float64], int]:
    """Mono samples in -1..1 and the sample rate of an open PCM WAV file (8/16/24/32-bit).

    Raises ValueError for anything else.
    """
    try:
        with wave.open(fileobj, "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as error:
        raise ValueError(f"not a PCM WAV file ({error})") from None
    if rate <= 0 or channels <= 0:
        raise ValueError("WAV file without a sample rate or channels")
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw[: len(raw) // 3 * 3], np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        samples = value.astype(np.float64) / float(1 << 23)
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)
    else:
        raise ValueError(f"WAV sample width {width} bytes is not supported")
    usable = samples.size // channels * channels
    mono = samples[:usable].reshape(-1, channels).mean(axis=1)
    return np.asarray(mono, np.float64), rate


def loudness_envelope(
    samples: npt.NDArray[np.float64], rate: int, start: float, *, frame_s: float = FRAME_S
) -> Envelope:
    """RMS loudness in dBFS per ``frame_s`` frame (floored at -100 dBFS)."""
    size = max(1, round(rate * frame_s))
    frames = samples.size // size
    if frames == 0:
        return Envelope(np.zeros(0), np.zeros(0), start)
    blocks = samples[: frames * size].reshape(frames, size)
    rms = np.sqrt(np.mean(blocks * blocks, axis=1))
    with np.errstate(divide="ignore"):
        dbfs = np.maximum(20.0 * np.log10(rms), FLOOR_DBFS)
    times = (np.arange(frames) + 0.5) * (size / rate)
    return Envelope(times.astype(np.float64), dbfs.astype(np.float64), start)


def _ranks(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ranks along the rows of a 2-D array, ties given their average rank (as Spearman needs:
    breaking ties by position would correlate any two series with long runs of equal values)."""
    rows, n = x.shape
    order = np.argsort(x, axis=1, kind="stable")
    ordered = np.take_along_axis(x, order, axis=1)
    positions = np.broadcast_to(np.arange(n, dtype=np.int64), (rows, n))
    differs = ordered[:, 1:] != ordered[:, :-1]
    starts_group = np.concatenate([np.ones((rows, 1), np.bool_), differs], axis=1)
    ends_group = np.concatenate([differs, np.ones((rows, 1), np.bool_)], axis=1)
    first = np.maximum.accumulate(np.where(starts_group, positions, 0), axis=1)
    last = np.where(ends_group, positions, n)[:, ::-1]
    last = np.minimum.accumulate(last, axis=1)[:, ::-1]
    ranks = np.empty((rows, n), np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0, axis=1)
    return ranks


def _standardise(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    centred = x - x.mean(axis=-1, keepdims=True)
    norm = np.sqrt((centred * centred).sum(axis=-1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(norm > 0, centred / np.where(norm > 0, norm, 1.0), 0.0)
    return np.asarray(out, np.float64)


def correlate(
    times: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    envelope: Envelope,
    *,
    series: str,
    lag_range_s: tuple[float, float] = LAG_RANGE_S,
    lag_step_s: float = LAG_STEP_S,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> Correlation | None:
    """Best-lag Spearman correlation of ``values`` (at epoch ``times``) with the envelope.

    None when fewer than :data:`MIN_POINTS` points fall inside the reference at every lag, or
    the series does not vary.
    """
    t = np.asarray(times, np.float64)
    v = np.asarray(values, np.float64)
    keep = np.isfinite(t) & np.isfinite(v)
    t, v = t[keep], v[keep]
    if t.size < MIN_POINTS or np.ptp(v) == 0:
        return None
    lags = np.arange(lag_range_s[0], lag_range_s[1] + lag_step_s / 2, lag_step_s)
    env = envelope.at(t[None, :] - lags[:, None])  # (lags, points)
    inside = np.all(np.isfinite(env), axis=0)
    if int(inside.sum()) < MIN_POINTS:
        return None
    env, t, v = env[:, inside], t[inside], v[inside]
    n = v.size
    env_z = _standardise(_ranks(env))
    value_z = _standardise(_ranks(v[None, :]))[0]
    scores = env_z @ value_z  # Spearman's rho per lag
    best = int(np.argmax(scores))
    observed = float(scores[best])
    if n < 3 or permutations <= 0:
        return Correlation(observed, float(lags[best]), 1.0, n, 0, series, lag_range_s)
    rng = np.random.default_rng(seed)
    spacing = float(np.median(np.diff(t))) if n > 1 else BLOCK_S
    block = max(1, round(BLOCK_S / spacing)) if spacing > 0 else 1
    starts = np.arange(0, n, block)
    if starts.size < 3:
        return Correlation(observed, float(lags[best]), 1.0, n, 0, series, lag_range_s)
    pieces = [np.arange(s, min(s + block, n)) for s in starts.tolist()]
    null_best = np.empty(permutations)
    for k in range(permutations):
        index = np.concatenate([pieces[i] for i in rng.permutation(len(pieces))])
        null_best[k] = float((env_z @ value_z[index]).max())
    exceed = int((null_best >= observed - 1e-12).sum())
    p = (1 + exceed) / (1 + permutations)
    return Correlation(observed, float(lags[best]), p, n, permutations, series, lag_range_s)
