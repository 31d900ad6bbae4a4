"""Decrypt + decode speed for one audio stream, as a multiple of real time (target >= 200x).

    PYTHONPATH=. python bench/bench_decrypt.py [--minutes 10] [--repeat 3]

Builds one SRTP-protected Opus stream of ``--minutes`` of audio (48 kHz mono, 20 ms frames,
32 kbit/s, speech-like: tone bursts with a noise floor, encoded by libopus through PyAV;
AES_CM_128_HMAC_SHA1_80 by libsrtp, with the RFC 6464 audio level) in a temporary pcapng, then
times :func:`decoders.media.decrypt.decrypt_media` on its datagrams - decrypting every
packet, parsing it, decoding every frame and measuring per-packet and per-100-ms loudness - and
prints the best of ``--repeat`` runs as the headline; then reading the capture alone, SRTP
alone, and the whole :func:`decrypt_capture` (read + decrypt + decode) for comparison. Exit
status 1 when the headline misses the target. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import fractions
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pylibsrtp
from aiortc import rtp as artp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

from decoders.media.decrypt import decrypt_capture, decrypt_media, read_media
from decoders.media.srtp import decrypt_datagrams
from decoders.session.keys import KeySet, SrtpKey
from decoders.wire.capture import LINKTYPE_ETHERNET
from decoders.wire.dtls import find_suite
from decoders.wire.pcapwriter import PcapngWriter, build_udp_frame

KEY = bytes(range(30))
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def opus_packets(seconds: float) -> list[bytes]:
    """Speech-like Opus: 300-3000 Hz bursts over a -60 dBFS noise floor, 20 ms frames."""
    rng = np.random.default_rng(1)
    rate, step = 48000, 960
    total = int(seconds * rate)
    t = np.arange(total) / rate
    envelope = (np.sin(2 * np.pi * 0.7 * t) > 0).astype(np.float64) * 0.2
    carrier = np.sin(2 * np.pi * (300 + 2700 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.13 * t))) * t)
    signal = envelope * carrier + rng.normal(0, 0.001, total)
    pcm = np.clip(np.round(signal * 32767), -32768, 32767).astype(np.int16)
    encoder = av.CodecContext.create("libopus", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate = rate
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.bit_rate = 32000
    encoder.time_base = fractions.Fraction(1, rate)
    encoder.options = {"frame_duration": "20", "application": "voip"}
    out: list[bytes] = []
    for start in range(0, total - step + 1, step):
        frame = av.AudioFrame.from_ndarray(pcm[None, start : start + step], "s16", "mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = encoder.time_base
        out += [bytes(p) for p in encoder.encode(frame)]
    return out


def write_capture(path: Path, payloads: list[bytes]) -> None:
    mapping = artp.HeaderExtensionsMap()
    mapping.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=1, uri=AUDIO_LEVEL_URI)]
        )
    )
    policy = pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    session = pylibsrtp.Session(policy)
    with path.open("wb") as handle:
        writer = PcapngWriter(handle)
        interface = writer.add_interface(LINKTYPE_ETHERNET, ts_resolution_exp10=9)
        for index, payload in enumerate(payloads):
            packet = artp.RtpPacket(
                payload_type=111,
                sequence_number=(40000 + index) % 65536,
                timestamp=(index * 960) % 2**32,
                ssrc=0x0BE7C4,
                payload=payload,
            )
            packet.extensions.audio_level = (True, 30)
            data = session.protect(packet.serialize(mapping))
            frame = build_udp_frame(LINKTYPE_ETHERNET, "10.0.0.1", 5000, "10.0.0.2", 5002, data)
            writer.write(interface, 1_800_000_000 * 10**9 + index * 20_000_000, frame)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    seconds = args.minutes * 60
    suite = find_suite("AES_CM_128_HMAC_SHA1_80")
    keys = KeySet((SrtpKey(suite, KEY[:16], KEY[16:], "bench"),))
    print(f"encoding {args.minutes:g} min of Opus ...", flush=True)
    payloads = opus_packets(seconds)
    audio_seconds = len(payloads) * 0.02
    with tempfile.TemporaryDirectory(prefix="mutecheck-bench-") as work:
        capture = Path(work) / "stream.pcapng"
        write_capture(capture, payloads)
        size = capture.stat().st_size
        print(f"{len(payloads)} packets, {audio_seconds:.0f} s of audio, {size / 1e6:.1f} MB")
        datagrams, _, _ = read_media(capture)
        best = end_to_end = reading = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = decrypt_media(datagrams, keys)
            best = min(best, time.perf_counter() - started)
            started = time.perf_counter()
            read_media(capture)
            reading = min(reading, time.perf_counter() - started)
            started = time.perf_counter()
            decrypt_capture(capture, keys)
            end_to_end = min(end_to_end, time.perf_counter() - started)
        stream = next(iter(result.audio.values()))
        assert result.failures == 0 and stream.audio is not None
        assert stream.audio.sequence_number.size == len(payloads)
        started = time.perf_counter()
        decrypt_datagrams(datagrams, keys)
        decrypt_s = time.perf_counter() - started
    ratio = audio_seconds / best
    print(
        f"reading the capture alone: {audio_seconds / reading:.0f}x; SRTP alone: "
        f"{audio_seconds / decrypt_s:.0f}x; end to end (read + decrypt + decode): "
        f"{audio_seconds / end_to_end:.0f}x real time"
    )
    print(
        f"decrypt + decode: {best:.2f} s for {audio_seconds:.0f} s of audio = {ratio:.0f}x real "
        f"time (target >= 200x) with {stream.audio.decoder}"
    )
    return 0 if ratio >= 200 else 1


if __name__ == "__main__":
    sys.exit(main())
