"""Audio decoding of RTP payloads: Opus (RFC 7587, via PyAV/libopus) and G.711 µ-law/A-law.

A stream is decoded in sequence order. Lost packets and DTX pauses are **explicit gaps**: no
audio is invented for them (no loss concealment), they stay silent in the PCM and are left out
of every measurement. Loudness is measured two ways:

- per packet: RMS of the audio the packet carries, in dBFS (``10·log10(mean(x²))`` with full
  scale 1.0, as WebRTC's RFC 6464 audio level measures it, so ``-level ≈ dBFS``). The codec's
  delay is compensated: the window is shifted by the decoder delay (Opus: 312 samples, 6.5 ms),
  so the packet's own input audio is what gets measured;
- per 100 ms of stream time, for timelines.

Values are floored at :data:`SILENCE_FLOOR_DBFS`; below :data:`DIGITAL_SILENCE_DBFS` (less than
one 16-bit step RMS) a signal is digital silence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from decoders.media.streams import extended_sequence

SILENCE_FLOOR_DBFS: Final = -127.0
"""Lowest loudness reported (RFC 6464's scale ends at -127 dBov)."""
DIGITAL_SILENCE_DBFS: Final = -90.0
"""Below one 16-bit LSB RMS (-90.3 dBFS): digital silence."""
WINDOW_S: Final = 0.1
MAX_GAP_S: Final = 5.0
"""A gap in RTP time longer than this is shortened to it in the sample timeline (an RTP
timestamp jump of hours would otherwise allocate hours of silence); capture times stay exact."""

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class CodecInfo:
    """A decodable audio codec: RTP clock, decoded sample rate and the decoder's delay."""

    name: str
    clock_rate: int
    sample_rate: int
    delay_samples: int


OPUS: Final = CodecInfo("opus", 48000, 48000, 312)
"""RFC 7587 §4.1: Opus RTP clock is always 48 kHz. Delay: libopus's lookahead at 48 kHz for
the VoIP application WebRTC uses (2.5 ms + 4 ms delay compensation)."""
PCMU: Final = CodecInfo("PCMU", 8000, 8000, 0)
PCMA: Final = CodecInfo("PCMA", 8000, 8000, 0)
STATIC_AUDIO: Final = {0: PCMU, 8: PCMA}
"""RFC 3551 §6 static payload types that are decoded."""


CONSTANT_BIT_RATE: Final = frozenset(
    {
        "pcmu",
        "pcma",
        "g722",
        "g723",
        "g726-16",
        "g726-24",
        "g726-32",
        "g726-40",
        "g728",
        "g729",
        "gsm",
        "l8",
        "l16",
        "dvi4",
        "ilbc",
    }
)
"""Audio codecs that code every frame in the same number of bytes (RFC 3551 §4.5: G.711,
G.722, G.723, G.726, G.728, G.729, GSM, L8/L16, DVI4; iLBC per mode, RFC 3952): the payload
size says nothing about the sound (G.729 Annex B's 2-byte SID frames aside)."""


def constant_bit_rate(name: str | None) -> bool:
    """Is this codec (an SDP encoding name or the stream table's, any case) constant-bit-rate?"""
    return name is not None and name.strip().lower() in CONSTANT_BIT_RATE


def codec_by_name(name: str) -> CodecInfo | None:
    """The codec of an SDP ``a=rtpmap`` encoding name (any case), None when not decodable."""
    return {"opus": OPUS, "pcmu": PCMU, "pcma": PCMA}.get(name.strip().lower())


# -- decoders -----------------------------------------------------------------------------------


class AudioDecoder(Protocol):
    """Turns one RTP payload into mono float32 samples; ValueError when it cannot."""

    def decode(self, payload: bytes) -> F32: ...


class OpusDecoder:
    """Opus through PyAV (libopus when FFmpeg has it, else FFmpeg's own decoder), mono 48 kHz."""

    def __init__(self, sample_rate: int = 48000) -> None:
        import av

        name = "libopus" if "libopus" in av.codecs_available else "opus"
        self.name = name
        context = av.CodecContext.create(name, "r")
        if not isinstance(context, av.AudioCodecContext):
            raise TypeError(f"{name} is not an audio decoder")
        context.sample_rate = sample_rate
        context.layout = "mono"
        self._context = context
        self._packet = av.Packet
        self._errors: tuple[type[BaseException], ...] = (av.error.FFmpegError, ValueError)

    def decode(self, payload: bytes) -> F32:
        if not payload:
            raise ValueError("empty Opus payload")
        try:
            frames = self._context.decode(self._packet(payload))
        except self._errors as error:
            raise ValueError(f"Opus decoder: {error}") from error
        parts = [_frame_samples(frame) for frame in frames]
        if not parts:
            return np.zeros(0, np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _frame_samples(frame: Any) -> F32:
    """A decoded frame's samples as mono float32; packed mono s16/flt read straight from its
    buffer (the common case, several times faster than ``to_ndarray``)."""
    if frame.layout.nb_channels == 1 and frame.format.name in ("s16", "flt"):
        dtype = np.int16 if frame.format.name == "s16" else np.float32
        samples = np.frombuffer(frame.planes[0], dtype, count=frame.samples)
        return _mono_float(samples)
    return _mono_float(frame.to_ndarray())


def _mono_float(array: npt.NDArray[Any]) -> F32:
    """A decoded frame (planar or packed, int16 or float) as mono float32 in [-1, 1)."""
    samples = array.reshape(-1) if array.ndim == 1 or array.shape[0] == 1 else array.mean(axis=0)
    if samples.dtype == np.int16:
        return np.multiply(samples, np.float32(1 / 32768), dtype=np.float32)
    return samples.astype(np.float32, copy=False)


def _ulaw_table() -> F32:
    """ITU-T G.711 µ-law expansion of all 256 codes (complemented code, bias 0x84)."""
    code = np.arange(256, dtype=np.int32) ^ 0xFF
    exponent = (code >> 4) & 0x07
    magnitude = (((code & 0x0F) << 3) + 0x84) << exponent
    linear = np.where(code & 0x80, 0x84 - magnitude, magnitude - 0x84)
    return (linear / 32768.0).astype(np.float32)


def _alaw_table() -> F32:
    """ITU-T G.711 A-law expansion of all 256 codes (even bits inverted, segments 0..7)."""
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code >> 4) & 0x07
    mantissa = (code & 0x0F) << 4
    linear = np.where(segment == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(segment - 1, 0))
    linear = np.where(code & 0x80, linear, -linear)
    return (linear / 32768.0).astype(np.float32)


ULAW_TABLE: Final = _ulaw_table()
ALAW_TABLE: Final = _alaw_table()


class G711Decoder:
    """G.711 (RFC 3551 §4.5.14): one byte per sample at 8 kHz, expanded by table."""

    def __init__(self, law: str) -> None:
        if law not in ("mu", "a"):
            raise ValueError("law is 'mu' or 'a'")
        self._table = ULAW_TABLE if law == "mu" else ALAW_TABLE

    def decode(self, payload: bytes) -> F32:
        return self._table[np.frombuffer(payload, np.uint8)]


def make_decoder(codec: CodecInfo) -> AudioDecoder:
    """A fresh decoder for ``codec``."""
    if codec.name == "opus":
        return OpusDecoder(codec.sample_rate)
    if codec.name in ("PCMU", "PCMA"):
        return G711Decoder("mu" if codec.name == "PCMU" else "a")
    raise ValueError(f"no decoder for {codec.name}")


# -- loudness -----------------------------------------------------------------------------------


def dbfs(samples: npt.NDArray[np.floating[Any]]) -> float:
    """RMS level in dBFS (full scale 1.0), floored at :data:`SILENCE_FLOOR_DBFS`; NaN if empty."""
    if samples.size == 0:
        return float("nan")
    power = float(np.dot(samples, samples)) / samples.size
    return energy_dbfs(power)


def energy_dbfs(mean_square: float) -> float:
    """``10·log10(mean square)`` floored at :data:`SILENCE_FLOOR_DBFS`."""
    floor = 10 ** (SILENCE_FLOOR_DBFS / 10)
    return float(10 * np.log10(max(mean_square, floor)))


# -- a whole stream -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """What decoding needs from one decrypted RTP packet."""

    sequence_number: int
    rtp_timestamp: int
    timestamp_ns: int
    payload: bytes


@dataclass
class DecodedAudio:
    """A decoded stream: per-packet loudness, per-100-ms loudness, and optionally the PCM.

    Per packet (decode order = extended sequence order, duplicates dropped):
    ``sequence_number`` (extended), ``timestamp_ns`` (capture), ``sample_offset`` (where its
    audio starts in the stream's sample timeline), ``samples`` (0 when it did not decode) and
    ``dbfs`` (NaN when it did not decode). Per window of :data:`WINDOW_S`: ``window_start_ns``
    (capture clock, interpolated between packets), ``window_dbfs`` (NaN when no packet covered
    it) and ``window_coverage`` (fraction of the window that had decoded audio).
    """

    codec: CodecInfo
    decoder: str
    sequence_number: I64
    timestamp_ns: I64
    sample_offset: I64
    samples: I64
    dbfs: F64
    window_start_ns: I64
    window_dbfs: F64
    window_coverage: F64
    duplicates: int = 0
    gaps: int = 0
    decode_errors: Counter[str] = field(default_factory=Counter)
    chunks: list[F32] | None = None

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    @property
    def length(self) -> int:
        """Samples in the timeline (gaps included)."""
        if self.sample_offset.size == 0:
            return 0
        return int((self.sample_offset + self.samples).max())

    def pcm(self) -> F32:
        """The whole timeline as float32, zeros in gaps (needs ``keep_pcm=True``)."""
        if self.chunks is None:
            raise ValueError("the PCM was not kept (decode with keep_pcm=True)")
        out = np.zeros(self.length, np.float32)
        for offset, chunk in zip(self.sample_offset.tolist(), self.chunks, strict=True):
            out[offset : offset + chunk.size] = chunk
        return out

    def sample_at(self, timestamp_ns: npt.ArrayLike) -> I64:
        """Capture times -> sample positions, interpolated between packets (clipped to the ends)."""
        if self.timestamp_ns.size == 0:
            return np.zeros(np.shape(timestamp_ns), np.int64)
        position = np.interp(
            np.asarray(timestamp_ns, np.float64),
            self.timestamp_ns.astype(np.float64),
            self.sample_offset.astype(np.float64),
        )
        return np.asarray(np.round(position), np.int64)


def decode_stream(
    packets: Sequence[AudioPacket],
    codec: CodecInfo,
    *,
    keep_pcm: bool = False,
    decoder: AudioDecoder | None = None,
) -> DecodedAudio:
    """Decode ``packets`` (any order) in sequence order and measure them (:class:`DecodedAudio`)."""
    decoder = decoder if decoder is not None else make_decoder(codec)
    ordered, duplicates = _in_sequence_order(packets)
    n = len(ordered)
    extended = np.array([e for e, _ in ordered], np.int64)
    arrival = np.array([p.timestamp_ns for _, p in ordered], np.int64)
    offsets = np.zeros(n, np.int64)
    sizes = np.zeros(n, np.int64)
    head_energy = np.zeros(n)  # energy of each chunk's first `delay` samples
    tail_energy = np.zeros(n)  # and of the rest
    errors: Counter[str] = Counter()
    chunks: list[F32] | None = [] if keep_pcm else None
    ratio = codec.sample_rate / codec.clock_rate
    max_gap = int(MAX_GAP_S * codec.sample_rate)
    delay = codec.delay_samples
    gaps = 0
    window = round(WINDOW_S * codec.sample_rate)
    windows = _WindowSums(window)
    batch: list[F32] = []
    batch_start = 0
    position = 0
    last_timestamp = 0
    empty = np.zeros(0, np.float32)
    for i, (_, packet) in enumerate(ordered):
        if i:
            step = ((packet.rtp_timestamp - last_timestamp + 2**31) % 2**32) - 2**31
            expected = position + int(sizes[i - 1])
            gap = round(step * ratio) - int(sizes[i - 1])
            if gap > 0:
                gaps += 1
            position = expected + min(max(gap, 0), max_gap)
        last_timestamp = packet.rtp_timestamp
        offsets[i] = position
        try:
            audio = decoder.decode(packet.payload)
        except ValueError as error:
            errors[str(error).split(":")[0]] += 1
            audio = empty
        sizes[i] = audio.size
        batch.append(audio)
        if chunks is not None:
            chunks.append(audio)
        if len(batch) == _BATCH or i == n - 1:
            part = slice(batch_start, i + 1)
            _measure(batch, offsets[part], head_energy[part], tail_energy[part], delay, windows)
            batch, batch_start = [], i + 1
    window_energy, window_count = windows.energy, windows.count
    level = _packet_dbfs(offsets, sizes, head_energy, tail_energy, delay)
    starts, window_level, coverage = _windows(window_energy, window_count, window)
    window_ns = _interpolate_ns(starts * window, offsets, arrival, sizes, codec.sample_rate)
    return DecodedAudio(
        codec=codec,
        decoder=getattr(decoder, "name", type(decoder).__name__),
        sequence_number=extended,
        timestamp_ns=arrival,
        sample_offset=offsets,
        samples=sizes,
        dbfs=level,
        window_start_ns=window_ns,
        window_dbfs=window_level,
        window_coverage=coverage,
        duplicates=duplicates,
        gaps=gaps,
        decode_errors=errors,
        chunks=chunks,
    )


def unwrap_sequence(numbers: npt.NDArray[np.int64]) -> I64:
    """RFC 3550 A.1 extended sequence numbers, the lowest kept in 0..65535 whatever the input
    order (so the same packets always get the same numbers)."""
    extended = extended_sequence(numbers)
    if extended.size == 0:
        return extended
    return extended - (int(extended.min()) // 65536) * 65536


def _in_sequence_order(packets: Sequence[AudioPacket]) -> tuple[list[tuple[int, AudioPacket]], int]:
    """(extended sequence number, packet) sorted, first copy of each number kept; duplicates."""
    numbers = np.array([p.sequence_number for p in packets], np.int64)
    extended = unwrap_sequence(numbers).tolist()
    order = sorted(range(len(packets)), key=lambda i: extended[i])
    out: list[tuple[int, AudioPacket]] = []
    duplicates = 0
    for i in order:
        if out and out[-1][0] == extended[i]:
            duplicates += 1
            continue
        out.append((extended[i], packets[i]))
    return out, duplicates


_BATCH: Final = 1024
"""Packets measured together (one numpy pass per batch instead of several per packet)."""


class _WindowSums:
    """Energy and sample count per fixed window of the sample timeline, grown as needed."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.energy = np.zeros(0)
        self.count = np.zeros(0, np.int64)

    def add(self, index: I64, energy: F64, count: I64) -> None:
        size = int(index.max()) + 1
        if size > self.energy.size:
            grow = max(size, 2 * self.energy.size)
            self.energy = np.concatenate([self.energy, np.zeros(grow - self.energy.size)])
            self.count = np.concatenate([self.count, np.zeros(grow - self.count.size, np.int64)])
        np.add.at(self.energy, index, energy)
        np.add.at(self.count, index, count)


def _measure(
    batch: Sequence[F32], offsets: I64, head: F64, tail: F64, delay: int, windows: _WindowSums
) -> None:
    """Head/tail energies of each chunk of ``batch`` and their window sums.

    One running sum of squares over the batch's samples gives both: a chunk's energies are
    differences of it, and so is the energy between any two timeline positions (the sum is
    flat across gaps), so windows only need the running sum at their boundaries.
    """
    sizes = np.array([chunk.size for chunk in batch], np.int64)
    total = int(sizes.sum())
    if total == 0:
        return
    cumulative = np.zeros(total + 1)
    np.cumsum(np.square(np.concatenate(batch), dtype=np.float64), out=cumulative[1:])
    starts = np.zeros(sizes.size, np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    middle = starts + np.minimum(sizes, delay)
    head[:] = cumulative[middle] - cumulative[starts]
    tail[:] = cumulative[starts + sizes] - cumulative[middle]
    window = windows.window
    first, end = int(offsets[0]), int(offsets[-1] + sizes[-1])
    boundaries = np.arange(-(-first // window) * window, end, window, dtype=np.int64)
    points = np.unique(np.concatenate([[first], boundaries, [end]]))
    chunk = np.searchsorted(offsets, points, side="right") - 1
    inside = np.minimum(points - offsets[chunk], sizes[chunk])
    before = starts[chunk] + inside  # batch samples before each point
    windows.add(points[:-1] // window, np.diff(cumulative[before]), np.diff(before))


def _packet_dbfs(offsets: I64, sizes: I64, head: F64, tail: F64, delay: int) -> F64:
    """Each packet's level over its own samples shifted by the decoder delay.

    The window [offset + delay, offset + size + delay) is the packet's tail plus the head of the
    next packet when that one follows without a gap (else the missing part counts as absent).
    """
    n = offsets.size
    out = np.full(n, np.nan)
    for i in range(n):
        size = int(sizes[i])
        if size == 0:
            continue
        energy, counted = float(tail[i]), max(size - delay, 0)
        if i + 1 < n and sizes[i + 1] and offsets[i + 1] == offsets[i] + size:
            energy += float(head[i + 1])
            counted += min(delay, int(sizes[i + 1]))
        if counted == 0:
            energy, counted = float(head[i]), min(delay, size)
        out[i] = energy_dbfs(energy / counted)
    return out


def _windows(energy: F64, count: npt.NDArray[np.int64], window: int) -> tuple[I64, F64, F64]:
    """Window indices, their dBFS (NaN where nothing decoded) and coverage fractions."""
    filled = np.nonzero(count)[0]
    if filled.size == 0:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    last = int(filled[-1]) + 1
    starts = np.arange(last, dtype=np.int64)
    level = np.full(last, np.nan)
    floor = 10 ** (SILENCE_FLOOR_DBFS / 10)
    power = energy[filled] / count[filled]
    level[filled] = 10 * np.log10(np.maximum(power, floor))
    coverage = count[:last] / window
    return starts, level, coverage


def _interpolate_ns(sample: I64, offsets: I64, arrival: I64, sizes: I64, rate: int) -> I64:
    """Sample positions -> capture ns, through the packets that decoded (extrapolated at the
    ends at the nominal sample rate)."""
    good = sizes > 0
    if not good.any():
        return np.zeros(sample.size, np.int64)
    anchors = offsets[good].astype(np.float64)
    base = int(arrival[good][0])
    times = (arrival[good] - base).astype(np.float64)
    wanted = sample.astype(np.float64)
    position = np.interp(wanted, anchors, times)
    per_sample = 1e9 / rate
    position = np.where(
        wanted < anchors[0], times[0] + (wanted - anchors[0]) * per_sample, position
    )
    position = np.where(
        wanted > anchors[-1], times[-1] + (wanted - anchors[-1]) * per_sample, position
    )
    return np.asarray(np.round(position), np.int64) + base
