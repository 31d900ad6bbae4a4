"""Capture + keys -> decrypted streams, decoded audio and loudness, on real and SDES captures."""

from __future__ import annotations

import base64
import json
import subprocess
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from helpers.corpus import browser_audio_ssrcs, call_shape, lab_session, ssrc_roles_of

from decoders.media.codecs import DIGITAL_SILENCE_DBFS
from decoders.media.decrypt import (
    LoudnessSeries,
    SessionDecryption,
    StreamKey,
    decoded_loudness,
    decrypt_capture,
    intervals_to_samples,
    read_media,
    write_plain_capture,
    write_wav,
)
from decoders.media.scan import load_sdp
from decoders.session.keys import KeySet, load_keys, load_keys_json, parse_srtp_key_option
from decoders.session.sdp import SessionDescription, parse_sdp

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
SDES = ROOT / "tests" / "fixtures" / "media" / "sdes"
LEVEL_TOLERANCE_DB = 4.0
"""-level vs decoded dBFS: "within a few dB" (the lab measured a median difference of 0.1-0.3 dB;
transition packets at each mute boundary differ more)."""


def _sdp(folder: Path) -> SessionDescription | None:
    return load_sdp(tuple(p for p in (folder / "offer.sdp", folder / "answer.sdp") if p.is_file()))


def _session(variant: str) -> Path:
    return lab_session(variant)


def _muted(folder: Path, grace_s: float = 0.2) -> list[tuple[int, int]]:
    timeline = json.loads((folder / "timeline.json").read_text())
    return [
        (round((start + grace_s) * 1e9), round((end - grace_s) * 1e9))
        for start, end in timeline["muted"]
    ]


# -- the lab sessions ---------------------------------------------------------------------------


def _browser_audio(folder: Path, streams: Iterable[StreamKey]) -> StreamKey:
    """The browser's own audio stream among ``streams`` (its SSRC in the offer's audio)."""
    shape, ssrcs = call_shape(folder), browser_audio_ssrcs(folder)
    (key,) = [k for k in streams if k.ssrc in ssrcs and k.src == shape.browser]
    return key


def test_every_lab_session_decrypts_and_decodes(session_dir: Path) -> None:
    result = decrypt_capture(
        session_dir / "capture.pcapng",
        load_keys_json(session_dir / "keys.json"),
        sdp=_sdp(session_dir),
    )
    assert result.failures == 0 and result.errors == [] and result.damage is None
    shape = call_shape(session_dir)
    if not shape.rtp_readable:
        # TURN over TLS: the SRTP is inside TLS records; nothing to decrypt or decode
        assert result.datagrams == [] and result.streams == [] and result.audio == {}
        assert result.audio_level_id == 1  # the SDP still says which id the level has
        return
    roles = ssrc_roles_of(session_dir)
    audio = {k: s for k, s in result.audio.items() if roles[k.ssrc].media == "audio"}
    browser = _browser_audio(session_dir, audio)
    # the browser's audio, and the peer's when it talks back
    assert len(audio) == (2 if shape.peer_talks else 1)
    assert {k.src == shape.browser for k in audio} == {True, False} if shape.peer_talks else {True}
    for stream in audio.values():
        assert stream.codec is not None and stream.codec.name == "opus"
        assert stream.codec_source == "sdp" and stream.payload_type == 111
        decoded = stream.audio
        assert decoded is not None and not decoded.decode_errors
        assert decoded.sequence_number.size == stream.decryption.packets
        assert np.isfinite(decoded.dbfs).all()
    assert browser in audio
    assert result.audio_level_id == 1
    # video and its retransmissions (RTX) decrypt but are never decoded as audio
    others = {k: s for k, s in result.audio.items() if k not in audio}
    assert {roles[k.ssrc].role for k in others} == ({"media", "rtx"} if shape.video else set())
    for stream in others.values():
        assert roles[stream.stream.ssrc].media == "video"
        assert stream.decryption.decrypted == stream.decryption.packets > 0
        assert stream.codec is None and stream.codec_source == "sdp" and stream.audio is None


def test_decoded_loudness_agrees_with_the_audio_level(session_dir: Path) -> None:
    loudness = decoded_loudness(
        session_dir / "capture.pcapng",
        load_keys_json(session_dir / "keys.json"),
        sdp=_sdp(session_dir),
    )
    shape = call_shape(session_dir)
    if not shape.rtp_readable:  # TURN over TLS: no audio in sight
        assert loudness == {}
        return
    # every audio stream: the browser's, and the peer's speech when it talks back (aiortc
    # writes the audio level too)
    assert len(loudness) == (2 if shape.peer_talks else 1)
    _browser_audio(session_dir, loudness)
    for series in loudness.values():
        has_level = series.audio_level >= 0
        assert has_level.mean() > 0.99
        claimed = np.maximum(
            -series.audio_level[has_level].astype(np.float64), DIGITAL_SILENCE_DBFS
        )
        measured = np.maximum(series.dbfs[has_level], DIGITAL_SILENCE_DBFS)
        agreeing = np.abs(measured - claimed) <= LEVEL_TOLERANCE_DB
        assert agreeing.mean() >= 0.9, f"only {agreeing.mean():.1%} within {LEVEL_TOLERANCE_DB} dB"
        assert np.corrcoef(claimed, measured)[0, 1] > 0.9


def test_loudness_series_shape(session_dir: Path) -> None:
    keys = load_keys_json(session_dir / "keys.json")
    loudness = decoded_loudness(session_dir / "capture.pcapng", keys, sdp=_sdp(session_dir))
    if not call_shape(session_dir).rtp_readable:  # TURN over TLS: no audio in sight
        assert loudness == {}
        return
    key = _browser_audio(session_dir, loudness)
    assert key.ssrc in keys.keys[0].ssrcs  # keys.json's browser half protects it
    for key, series in loudness.items():
        assert isinstance(key, StreamKey) and isinstance(series, LoudnessSeries)
        assert series.stream == key
        n = series.timestamp_ns.size
        for column in (
            series.sequence_number,
            series.extended_sequence,
            series.dbfs,
            series.audio_level,
        ):
            assert column.shape == (n,)
        assert len(series.payloads) == n
        assert np.all(np.diff(series.extended_sequence) >= 1)
        assert np.array_equal(series.sequence_number, series.extended_sequence & 0xFFFF)
        assert series.timestamp_ns.dtype == np.int64 and series.codec == "opus"
        assert series.sample_rate == 48000
        assert series.window_start_ns.size == series.window_dbfs.size > 0
        assert np.all(np.diff(series.window_start_ns) > 0)


def test_keylog_and_folder_keys_give_the_same_audio(session_dir: Path) -> None:
    capture = session_dir / "capture.pcapng"
    from_json = decoded_loudness(capture, load_keys_json(session_dir / "keys.json"))
    from_folder = decoded_loudness(capture, load_keys(session_dir))
    assert from_json.keys() == from_folder.keys()
    for key, series in from_json.items():
        assert np.array_equal(series.dbfs, from_folder[key].dbfs, equal_nan=True)


def test_without_sdp_the_codec_and_level_id_are_inferred(session_dir: Path) -> None:
    result = decrypt_capture(
        session_dir / "capture.pcapng", load_keys_json(session_dir / "keys.json")
    )
    if not call_shape(session_dir).rtp_readable:  # TURN over TLS: nothing to infer from
        assert result.audio == {} and result.audio_level_id is None
        return
    roles = ssrc_roles_of(session_dir)
    for key, stream in result.audio.items():
        if roles[key.ssrc].media == "audio":
            assert stream.codec is not None and stream.codec.name == "opus"
            assert stream.codec_source == "behaviour"
        else:  # VP8 (90 kHz timestamps, big frames) and its RTX are not taken for Opus
            assert stream.codec is None and stream.audio is None
    assert _browser_audio(session_dir, result.audio) in result.audio
    assert result.audio_level_id == 1


def _reference_correlation(
    decoded: npt.NDArray[np.float32], reference: npt.NDArray[np.float64]
) -> float:
    """Best normalised cross-correlation of decoded 48 kHz audio against the 16 kHz reference."""
    x = decoded[: decoded.size // 3 * 3].reshape(-1, 3).mean(axis=1).astype(np.float64)
    size = 1 << int(np.ceil(np.log2(reference.size + x.size)))
    products = np.fft.irfft(np.fft.rfft(reference, size) * np.conj(np.fft.rfft(x, size)), size)
    products = products[: reference.size - x.size + 1]
    running = np.concatenate([[0.0], np.cumsum(reference**2)])
    energy = (running[x.size :] - running[: -x.size])[: products.size]
    return float(np.max(products / (np.sqrt(energy * np.sum(x**2)) + 1e-20)))


def _reference(folder: Path) -> npt.NDArray[np.float64]:
    manifest = json.loads((folder / "session.json").read_text())
    with wave.open(str((folder / manifest["reference"]["file"]).resolve())) as handle:
        assert handle.getframerate() == 16000
        frames = handle.readframes(handle.getnframes())
    return np.frombuffer(frames, "<i2").astype(np.float64) / 32768


def test_ui_only_muted_window_is_speech_from_the_reference() -> None:
    folder = _session("ui-only")
    result = decrypt_capture(
        folder / "capture.pcapng", load_keys(folder), sdp=_sdp(folder), keep_pcm=True
    )
    audio = next(iter(result.audio.values())).audio
    assert audio is not None
    ((lo, hi),) = intervals_to_samples(audio, _muted(folder))
    muted = audio.pcm()[lo:hi]
    assert hi - lo > 48000 * 4
    level = 10 * np.log10(np.mean(muted.astype(np.float64) ** 2))
    assert level > -40, "the ui-only page keeps sending the microphone while 'muted'"
    assert _reference_correlation(muted, _reference(folder)) > 0.8


def test_track_disabled_muted_window_is_digital_silence() -> None:
    folder = _session("track-disabled")
    loudness = decoded_loudness(folder / "capture.pcapng", load_keys(folder), sdp=_sdp(folder))
    (series,) = loudness.values()
    ((start, end),) = _muted(folder)
    inside = (series.timestamp_ns >= start) & (series.timestamp_ns <= end)
    assert inside.sum() > 200
    assert np.all(series.dbfs[inside] <= DIGITAL_SILENCE_DBFS)
    windows = (series.window_start_ns >= start) & (series.window_start_ns + 100_000_000 <= end)
    assert np.all(series.window_dbfs[windows] <= DIGITAL_SILENCE_DBFS)
    before = series.timestamp_ns < start - 400_000_000
    assert np.median(series.dbfs[before]) > -45  # unmuted: the reference's speech


# -- SDES ---------------------------------------------------------------------------------------


def _sdes() -> tuple[SessionDecryption, dict[str, dict[str, object]]]:
    truth = json.loads((SDES / "truth.json").read_text())["streams"]
    sdp = load_sdp((SDES / "offer.sdp",))
    result = decrypt_capture(SDES / "capture.pcapng", load_keys(SDES / "offer.sdp"), sdp=sdp)
    return result, truth


def test_sdes_capture_decrypts_every_stream() -> None:
    result, truth = _sdes()
    assert result.failures == 0 and result.errors == []
    by_ssrc = {s.stream.ssrc: s for s in result.streams if s.kind == "rtp"}
    for name, expected in truth.items():
        stream = by_ssrc[int(str(expected["ssrc"]))]
        assert stream.key is not None and stream.key.suite.name == expected["suite"]
        assert base64.b64encode(stream.key.key_and_salt).decode() == expected["key"]
        assert stream.decrypted == stream.packets, name
    stream_a = by_ssrc[int(str(truth["A"]["ssrc"]))]
    assert stream_a.duplicates == 1
    rtcp = [s for s in result.streams if s.kind == "rtcp"]
    assert [s.decrypted for s in rtcp] == [truth["A"]["rtcp_reports"]]


def test_sdes_audio_levels_and_gaps() -> None:
    result, truth = _sdes()
    for name, expected in truth.items():
        stream = next(s for k, s in result.audio.items() if k.ssrc == expected["ssrc"])
        audio = stream.audio
        assert audio is not None and not audio.decode_errors
        if name == "A":
            assert audio.gaps == 1 and audio.duplicates == 1  # decoded once
            assert audio.sequence_number[0] == 65450 and audio.sequence_number[-1] == 65450 + 149
            assert audio.sequence_number.size == 149
        seconds = (audio.sample_offset + audio.samples / 2) / audio.sample_rate
        segments = expected["segments_dbfs"]
        assert isinstance(segments, list)
        for start, end, level in segments:
            inside = (seconds > start) & (seconds < end)
            values = audio.dbfs[inside]
            assert values.size > 10
            if level is None:
                assert np.all(values <= DIGITAL_SILENCE_DBFS), name
            else:
                assert np.all(np.abs(values - level) < 1.5), (name, values)
        if name in ("A", "C"):  # the audio level, computed from the input, agrees too
            has = stream.audio_level >= 0
            claimed = np.maximum(-stream.audio_level[has].astype(float), DIGITAL_SILENCE_DBFS)
            measured = np.maximum(audio.dbfs[has], DIGITAL_SILENCE_DBFS)
            assert np.mean(np.abs(claimed - measured) <= LEVEL_TOLERANCE_DB) >= 0.9


def test_sdes_wrong_key_fails_cleanly() -> None:
    wrong = parse_srtp_key_option("AES_CM_128_HMAC_SHA1_80:" + base64.b64encode(bytes(30)).decode())
    result = decrypt_capture(SDES / "capture.pcapng", KeySet((wrong,)))
    assert result.audio == {}
    assert all(s.key is None and s.decrypted == 0 for s in result.streams)
    assert len(result.errors) == len(result.streams) == 4
    assert all("no key authenticates" in error for error in result.errors)


def test_sdes_key_for_one_ssrc_only() -> None:
    truth = json.loads((SDES / "truth.json").read_text())["streams"]
    text = f"{truth['B']['ssrc']}:AEAD_AES_128_GCM:{truth['B']['key']}"
    result = decrypt_capture(SDES / "capture.pcapng", KeySet((parse_srtp_key_option(text),)))
    decrypted = {s.stream.ssrc for s in result.streams if s.key is not None}
    assert decrypted == {truth["B"]["ssrc"]}
    assert sum("no key for this stream" in e for e in result.errors) == 3


# -- writing ------------------------------------------------------------------------------------


def test_plain_capture_round_trip(tmp_path: Path) -> None:
    result, _ = _sdes()
    out = tmp_path / "plain.pcapng"
    assert write_plain_capture(result, out) == len(result.datagrams)
    again, damage, _ = read_media(out)
    assert damage is None
    plain = {
        d.frame: p for s in result.streams for d, p in zip(s.datagrams, s.plaintext, strict=True)
    }
    assert [d.data for d in again] == [plain[d.frame] for d in result.datagrams]
    assert [d.timestamp_ns for d in again] == [d.timestamp_ns for d in result.datagrams]
    assert [(d.src, d.src_port, d.dst, d.dst_port) for d in again] == [
        (d.src, d.src_port, d.dst, d.dst_port) for d in result.datagrams
    ]


def test_plain_capture_keeps_undecrypted_packets_with_a_comment(tmp_path: Path) -> None:
    wrong = parse_srtp_key_option("AES_CM_128_HMAC_SHA1_80:" + base64.b64encode(bytes(30)).decode())
    result = decrypt_capture(SDES / "capture.pcapng", KeySet((wrong,)))
    out = tmp_path / "plain.pcapng"
    write_plain_capture(result, out)
    again, _, _ = read_media(out)
    assert [d.data for d in again] == [d.data for d in result.datagrams]
    assert b"still encrypted: " in out.read_bytes()


def test_tshark_reads_the_plain_rtp(tmp_path: Path, tshark: str) -> None:
    result, truth = _sdes()
    out = tmp_path / "plain.pcapng"
    write_plain_capture(result, out)
    fields = subprocess.run(
        [
            tshark,
            "-r",
            str(out),
            "-d",
            "udp.port==40002,rtp",
            "-d",
            "udp.port==40006,rtp",
            "-Y",
            "rtp",
            "-T",
            "fields",
            "-e",
            "rtp.ssrc",
            "-e",
            "rtp.seq",
            "-e",
            "rtp.p_type",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    rows = [line.split("\t") for line in fields if line]
    ssrcs = {int(row[0], 16) for row in rows}
    assert ssrcs == {int(str(t["ssrc"])) for t in truth.values()}
    assert len(rows) == 250  # every RTP packet, the duplicate included
    a_rows = [int(r[1]) for r in rows if int(r[0], 16) == truth["A"]["ssrc"]]
    assert 65535 in a_rows and 0 in a_rows


def test_write_wav_and_intervals(tmp_path: Path) -> None:
    result, _ = _sdes()
    audio = next(s.audio for k, s in result.audio.items() if k.ssrc == 0x55667788)
    assert audio is not None
    samples = np.sin(np.arange(800) / 5).astype(np.float32) * 0.5
    write_wav(tmp_path / "x.wav", samples, 8000)
    with wave.open(str(tmp_path / "x.wav")) as handle:
        assert (handle.getnchannels(), handle.getsampwidth(), handle.getframerate()) == (1, 2, 8000)
        back = np.frombuffer(handle.readframes(800), "<i2") / 32768
    assert np.allclose(back, samples, atol=1 / 32768)
    first = int(audio.timestamp_ns[0])
    ranges = intervals_to_samples(
        audio,
        [(first + 100_000_000, first + 300_000_000), (0, 1), (first + 10**12, first + 2 * 10**12)],
    )
    assert ranges == [(800, 2400)]


def test_sdes_media_sent_over_real_loopback_and_captured_by_dumpcap(tmp_path: Path) -> None:
    """The SDES-protected datagrams go through the kernel for real: sent from one UDP socket
    to another on 127.0.0.1 while dumpcap captures `lo`; the capture decrypts as the original."""
    import os
    import shutil
    import socket
    import time

    from decoders.wire.capture import CaptureReader
    from decoders.wire.net import Unwrapper

    dumpcap = shutil.which("dumpcap")
    if dumpcap is None or os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with dumpcap (tshark) installed")
        pytest.skip("needs root and dumpcap")
    # the fixture's datagrams, in order, and which way each went
    datagrams: list[tuple[int, bytes]] = []
    first_src: tuple[str, int] | None = None
    with (SDES / "capture.pcapng").open("rb") as fo:
        unwrapper = Unwrapper()
        for frame in CaptureReader(fo):
            for d in unwrapper.feed(frame):
                first_src = first_src or (d.src, d.src_port)
                datagrams.append((0 if (d.src, d.src_port) == first_src else 1, d.payload))
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    pa, pb = a.getsockname()[1], b.getsockname()[1]
    out = tmp_path / "capture.pcapng"
    capture = subprocess.Popen(
        [dumpcap, "-q", "-i", "lo", "-f", f"udp and (port {pa} or port {pb})", "-w", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the capture filter is in place once the file exists
        for direction, payload in datagrams:
            sock, port = (a, pb) if direction == 0 else (b, pa)
            sock.sendto(payload, ("127.0.0.1", port))
            time.sleep(0.0005)
        time.sleep(0.5)
    finally:
        capture.terminate()
        capture.wait(timeout=10)
        a.close()
        b.close()
    sdp = load_sdp((SDES / "offer.sdp",))
    result = decrypt_capture(out, load_keys(SDES / "offer.sdp"), sdp=sdp)
    assert result.failures == 0 and result.errors == []
    by_ssrc = {s.stream.ssrc: s for s in result.streams if s.kind == "rtp"}
    original, truth = _sdes()
    before = {s.stream.ssrc: s.decrypted for s in original.streams if s.kind == "rtp"}
    for expected in truth.values():
        ssrc = int(str(expected["ssrc"]))
        assert by_ssrc[ssrc].decrypted == before[ssrc] > 0
        assert by_ssrc[ssrc].stream.src == "127.0.0.1"


@pytest.mark.parametrize("name", ["dtls13", "dtls13-wav"])
def test_firefox_dtls13_call_decodes_its_mute_window(name: str) -> None:
    """Real Firefox DTLS 1.3 calls keyed from their key log alone (tests/fixtures/make_dtls13.py
    with Firefox's fake microphone; the firefox lab's with the reference WAV): the offerer's
    microphone decodes to sound while unmuted, and to Firefox's 3-byte Opus silence frames
    (``dcfffe`` or ``fcfffe``, the TOC byte following the encoder's bandwidth: digital
    silence) in the window the page muted it with track.enabled = false."""
    folder = ROOT / "tests" / "fixtures" / "media" / name
    ((muted_at, unmuted_at),) = json.loads((folder / "timeline.json").read_text())["muted"]
    sdp = load_sdp((folder / "offer.sdp", folder / "answer.sdp"))
    (sender,) = parse_sdp((folder / "offer.sdp").read_text()).media[0].ssrcs
    series = decoded_loudness(folder / "capture.pcapng", load_keys(folder), sdp=sdp)
    (loudness,) = (s for key, s in series.items() if key.ssrc == sender)
    grace = 200_000_000
    time = loudness.timestamp_ns
    muted = (time > muted_at * 1e9 + grace) & (time < unmuted_at * 1e9)
    unmuted = (time < muted_at * 1e9) | (time > unmuted_at * 1e9 + grace)
    assert muted.sum() > 80 and unmuted.sum() > 80
    assert {len(loudness.payloads[i]) for i in np.flatnonzero(muted)} == {3}
    assert np.all(loudness.dbfs[muted] < DIGITAL_SILENCE_DBFS)
    assert np.nanpercentile(loudness.dbfs[unmuted], 90) > -40
