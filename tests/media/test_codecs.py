"""Audio decoding: G.711 against the standard library, Opus via libopus, gaps and loudness."""

from __future__ import annotations

import fractions
import random
import warnings

import av
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.media import codecs
from decoders.media.codecs import (
    OPUS,
    PCMA,
    PCMU,
    AudioPacket,
    G711Decoder,
    OpusDecoder,
    codec_by_name,
    constant_bit_rate,
    dbfs,
    decode_stream,
    energy_dbfs,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def _tone(frequency: float, amplitude: float, seconds: float, rate: int) -> npt.NDArray[np.float64]:
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * frequency * t)


def _opus(signal: npt.NDArray[np.float64]) -> list[bytes]:
    """libopus (through PyAV, an independent encoder) packets of 20 ms frames."""
    encoder = av.CodecContext.create("libopus", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate = 48000
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.bit_rate = 48000
    encoder.time_base = fractions.Fraction(1, 48000)
    encoder.options = {"frame_duration": "20", "application": "voip"}
    pcm = np.round(signal * 32767).astype(np.int16)
    out: list[bytes] = []
    for start in range(0, pcm.size, 960):
        frame = av.AudioFrame.from_ndarray(pcm[None, start : start + 960], "s16", "mono")
        frame.sample_rate = 48000
        frame.pts = start
        frame.time_base = encoder.time_base
        out += [bytes(p) for p in encoder.encode(frame)]
    return out


def _packets(payloads: list[bytes], step: int, first_sequence: int = 100) -> list[AudioPacket]:
    return [
        AudioPacket(
            sequence_number=(first_sequence + i) % 65536,
            rtp_timestamp=(7 + i * step) % 2**32,
            timestamp_ns=1_000_000_000 + i * 20_000_000,
            payload=payload,
        )
        for i, payload in enumerate(payloads)
    ]


# -- G.711 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("law", "reference"), [("mu", audioop.ulaw2lin), ("a", audioop.alaw2lin)])
def test_g711_tables_match_the_standard_library(law: str, reference: object) -> None:
    codes = bytes(range(256))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = np.frombuffer(reference(codes, 2), "<i2")  # type: ignore[operator]
    decoded = G711Decoder(law).decode(codes)
    assert decoded.dtype == np.float32
    assert np.array_equal(np.round(decoded * 32768).astype(np.int64), expected.astype(np.int64))


def test_g711_round_trip_level() -> None:
    pcm = np.round(_tone(1000, 0.5, 0.02, 8000) * 32767).astype("<i2").tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        encoded = audioop.lin2alaw(pcm, 2)
    assert dbfs(G711Decoder("a").decode(encoded)) == pytest.approx(-9.03, abs=0.1)
    with pytest.raises(ValueError):
        G711Decoder("x")


def test_codec_lookup() -> None:
    assert codec_by_name("OPUS") is OPUS and codec_by_name("pcmu") is PCMU
    assert codec_by_name("PCMA") is PCMA and codec_by_name("VP8") is None
    assert codecs.STATIC_AUDIO == {0: PCMU, 8: PCMA}
    with pytest.raises(ValueError):
        codecs.make_decoder(codecs.CodecInfo("G722", 8000, 16000, 0))


# -- loudness -----------------------------------------------------------------------------------


def test_dbfs() -> None:
    assert dbfs(np.ones(100)) == pytest.approx(0.0)
    assert dbfs(_tone(440, 1.0, 1.0, 48000)) == pytest.approx(-3.01, abs=0.01)
    assert dbfs(np.zeros(10)) == codecs.SILENCE_FLOOR_DBFS
    assert np.isnan(dbfs(np.zeros(0)))
    assert energy_dbfs(1e-30) == codecs.SILENCE_FLOOR_DBFS


# -- Opus ---------------------------------------------------------------------------------------


def test_opus_tone_decodes_at_its_level() -> None:
    signal = np.concatenate([_tone(440, 0.1, 1.0, 48000), _tone(1000, 0.4, 1.0, 48000)])
    audio = decode_stream(_packets(_opus(signal), 960), OPUS, keep_pcm=True)
    assert audio.decoder in ("libopus", "opus")
    assert audio.samples.tolist() == [960] * 100
    assert audio.sample_offset.tolist() == [960 * i for i in range(100)]
    assert audio.gaps == 0 and audio.duplicates == 0 and not audio.decode_errors
    first, second = audio.dbfs[5:45], audio.dbfs[55:95]
    assert np.all(np.abs(first - (-23.01)) < 1.0)
    assert np.all(np.abs(second - (-10.97)) < 1.0)
    assert audio.window_dbfs.size == 20
    assert np.all(np.abs(audio.window_dbfs[1:9] - (-23.01)) < 1.0)
    assert np.all(audio.window_coverage == 1.0)
    assert audio.window_start_ns[0] == 1_000_000_000
    assert audio.window_start_ns[1] - audio.window_start_ns[0] == 100_000_000
    assert audio.length == 96000 and audio.pcm().size == 96000


def test_delay_compensation_aligns_packets_with_their_input() -> None:
    """A tone that starts exactly at packet 10: only with the 312-sample shift does packet 9
    measure silence and packet 10 the tone."""
    signal = np.concatenate([np.zeros(9600), _tone(1000, 0.5, 0.4, 48000)])
    audio = decode_stream(_packets(_opus(signal), 960), OPUS)
    assert audio.dbfs[8] < -60
    assert audio.dbfs[10] == pytest.approx(-9.0, abs=1.5)


def test_any_input_order_gives_the_same_result() -> None:
    packets = _packets(_opus(_tone(600, 0.3, 0.6, 48000)), 960, first_sequence=65520)
    ordered = decode_stream(packets, OPUS)
    shuffled = list(packets)
    random.Random(3).shuffle(shuffled)
    other = decode_stream([*shuffled, packets[4], packets[9]], OPUS)
    assert other.duplicates == 2
    assert np.array_equal(other.sequence_number, ordered.sequence_number)
    assert np.allclose(other.dbfs, ordered.dbfs)
    assert ordered.sequence_number[0] == 65520 and ordered.sequence_number[-1] == 65520 + 29


def test_losses_and_dtx_pauses_are_gaps() -> None:
    packets = _packets(_opus(_tone(500, 0.3, 1.0, 48000)), 960)
    kept = [p for i, p in enumerate(packets) if i not in (10, 11, 30)]
    audio = decode_stream(kept, OPUS, keep_pcm=True)
    assert audio.gaps == 2
    assert audio.sample_offset[10] == 12 * 960  # packet 12 placed by its RTP timestamp
    pcm = audio.pcm()
    assert not pcm[10 * 960 : 12 * 960].any()
    assert audio.window_coverage[2] == pytest.approx(3 / 5)
    assert np.isfinite(audio.window_dbfs).all()
    # a long pause (DTX, or a muted sender that stopped) is shortened in the timeline
    late = AudioPacket(
        kept[-1].sequence_number + 1,
        (kept[-1].rtp_timestamp + 48000 * 60) % 2**32,
        kept[-1].timestamp_ns + 60 * 10**9,
        kept[5].payload,
    )
    paused = decode_stream([*kept, late], OPUS)
    assert paused.sample_offset[-1] - paused.sample_offset[-2] == 960 + 5 * 48000
    assert np.isnan(paused.window_dbfs[20:60]).all()
    assert paused.sample_at([late.timestamp_ns])[0] == paused.sample_offset[-1]


def test_undecodable_payloads_are_counted() -> None:
    packets = _packets(_opus(_tone(500, 0.3, 0.2, 48000)), 960)
    packets[3] = AudioPacket(packets[3].sequence_number, packets[3].rtp_timestamp, 0, b"")
    audio = decode_stream(packets, OPUS)
    assert sum(audio.decode_errors.values()) == 1
    assert np.isnan(audio.dbfs[3]) and audio.samples[3] == 0
    assert np.isfinite(audio.dbfs[4:]).all()
    with pytest.raises(ValueError, match="keep_pcm"):
        audio.pcm()


def test_g711_stream_and_empty_stream() -> None:
    pcm = np.round(_tone(1000, 0.5, 0.2, 8000) * 32767).astype("<i2").tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        payloads = [audioop.lin2ulaw(pcm[i : i + 320], 2) for i in range(0, len(pcm), 320)]
    audio = decode_stream(_packets(payloads, 160), PCMU)
    assert np.allclose(audio.dbfs, -9.03, atol=0.2)
    empty = decode_stream([], PCMU)
    assert empty.length == 0 and empty.window_dbfs.size == 0
    assert empty.sample_at([5]).tolist() == [0]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_opus_payloads_raise_only_value_error(payload: bytes) -> None:
    decoder = OpusDecoder()
    try:
        samples = decoder.decode(payload)
    except ValueError:
        return
    assert samples.dtype == np.float32 and samples.ndim == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_g711_decodes_any_bytes(payload: bytes) -> None:
    assert G711Decoder("mu").decode(payload).size == len(payload)


def test_constant_bit_rate_codecs() -> None:
    for name in ("PCMU", "pcma", "G722", " G729 ", "iLBC", "L16"):
        assert constant_bit_rate(name), name
    for name in ("opus", "opus?", "red", "telephone-event", "", None):
        assert not constant_bit_rate(name), name
