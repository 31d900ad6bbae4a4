"""Capture + keys -> per stream: decrypted RTP, decoded audio, loudness.

:func:`decrypt_capture` reads the SRTP/SRTCP datagrams of a capture (TURN wrappers removed),
decrypts every stream (:mod:`decoders.media.srtp`), decodes the audio streams
(:mod:`decoders.media.codecs`) and keeps what the audit, the CLI and Wireshark need:

- :func:`decoded_loudness` - per audio stream, per packet dBFS next to the packet's RFC 6464
  audio level (:class:`LoudnessSeries`), for the audit;
- :func:`write_plain_capture` - the media as plain RTP/RTCP in a pcapng (Wireshark's RTP Player);
- :func:`write_wav` - audio per stream.
"""

from __future__ import annotations

import wave
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from statistics import median
from typing import Final

import numpy as np
import numpy.typing as npt

from decoders import outputs
from decoders.errors import MalformedPacket
from decoders.media.codecs import (
    STATIC_AUDIO,
    AudioPacket,
    CodecInfo,
    DecodedAudio,
    codec_by_name,
    decode_stream,
    unwrap_sequence,
)
from decoders.media.levels import infer_audio_level_id
from decoders.media.srtp import (
    MediaDatagram,
    StreamDecryption,
    StreamKey,
    decrypt_datagrams,
    media_kind,
)
from decoders.session.keys import KeySet
from decoders.session.sdp import (
    Codec,
    SessionDescription,
    audio_level_extension_id,
    payload_types,
)
from decoders.wire import demux
from decoders.wire.rtp import RtpPacket, audio_level

__all__ = [
    "AudioStream",
    "LoudnessSeries",
    "SessionDecryption",
    "StreamKey",
    "decoded_loudness",
    "decrypt_capture",
    "decrypt_media",
    "read_media",
    "write_plain_capture",
    "write_wav",
]

OPUS_FRAME_STEPS: Final = frozenset({120, 240, 480, 960, 1920, 2880})
"""RTP timestamp steps of Opus frames (2.5-60 ms at 48 kHz), for guessing without SDP."""
AUDIO_PAYLOAD_MAX: Final = 400


@dataclass(frozen=True, slots=True)
class LoudnessSeries:
    """Decoded loudness of one audio stream, per packet in sequence order and per 100 ms.

    Per packet: ``timestamp_ns`` (capture time), ``sequence_number`` (RTP, 0..65535, to join
    with the packet table), ``extended_sequence`` (unwrapped), ``dbfs`` (RMS of the packet's
    decoded audio, NaN when it did not decode) and ``audio_level`` (the RFC 6464 level the
    packet carried, 0..127 = 0..-127 dBov, -1 when absent), ``payloads`` (the decrypted
    payloads). Per window: ``window_start_ns`` and ``window_dbfs`` (NaN where nothing decoded).
    """

    stream: StreamKey
    codec: str
    sample_rate: int
    timestamp_ns: npt.NDArray[np.int64]
    sequence_number: npt.NDArray[np.int64]
    extended_sequence: npt.NDArray[np.int64]
    dbfs: npt.NDArray[np.float64]
    audio_level: npt.NDArray[np.int16]
    window_start_ns: npt.NDArray[np.int64]
    window_dbfs: npt.NDArray[np.float64]
    payloads: tuple[bytes, ...] = ()


@dataclass
class AudioStream:
    """One decrypted RTP stream, decoded when its codec is known and decodable."""

    stream: StreamKey
    decryption: StreamDecryption
    payload_type: int
    codec: CodecInfo | None
    codec_source: str
    audio: DecodedAudio | None
    audio_level: npt.NDArray[np.int16]
    """RFC 6464 level per decoded packet (aligned with ``audio.sequence_number``), -1 absent."""
    payloads: tuple[bytes, ...] = ()
    """Decrypted payload per decoded packet (same alignment)."""

    def loudness(self) -> LoudnessSeries | None:
        if self.audio is None or self.codec is None:
            return None
        return LoudnessSeries(
            stream=self.stream,
            codec=self.codec.name,
            sample_rate=self.codec.sample_rate,
            timestamp_ns=self.audio.timestamp_ns,
            sequence_number=self.audio.sequence_number & 0xFFFF,
            extended_sequence=self.audio.sequence_number,
            dbfs=self.audio.dbfs,
            audio_level=self.audio_level,
            window_start_ns=self.audio.window_start_ns,
            window_dbfs=self.audio.window_dbfs,
            payloads=self.payloads,
        )


@dataclass
class SessionDecryption:
    """Everything :func:`decrypt_capture` found."""

    capture: Path
    keys: KeySet
    datagrams: list[MediaDatagram]
    streams: list[StreamDecryption]
    audio: dict[StreamKey, AudioStream] = field(default_factory=dict)
    audio_level_id: int | None = None
    damage: str | None = None
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def failures(self) -> int:
        return sum(s.failed for s in self.streams)

    @property
    def errors(self) -> list[str]:
        return [s.error for s in self.streams if s.error is not None]

    def plaintext(self) -> dict[int, bytes]:
        """Frame number -> decrypted bytes, for every packet that authenticated."""
        out: dict[int, bytes] = {}
        for stream in self.streams:
            for datagram, plain in zip(stream.datagrams, stream.plaintext, strict=True):
                if plain is not None:
                    out[datagram.frame] = plain
        return out


def read_media(capture: Path) -> tuple[list[MediaDatagram], str | None, Counter[str]]:
    """The RTP and RTCP datagrams of a capture in capture order, its damage, skipped counts."""
    from decoders.wire.capture import open_capture
    from decoders.wire.net import Datagram, Unwrapper

    out: list[MediaDatagram] = []
    skipped: Counter[str] = Counter()

    def take(datagrams: Iterable[Datagram]) -> None:
        for datagram in datagrams:
            opened = demux.open_payload(datagram.payload)
            if opened.turn_error is not None:
                skipped["malformed.turn"] += 1
                continue
            kind = media_kind(opened.kind)
            if kind is not None:
                out.append(
                    MediaDatagram(
                        frame=datagram.frame,
                        timestamp_ns=datagram.timestamp_ns,
                        src=datagram.src,
                        src_port=datagram.src_port,
                        dst=datagram.dst,
                        dst_port=datagram.dst_port,
                        transport=datagram.transport,
                        kind=kind,
                        data=opened.payload,
                    )
                )

    unwrapper = Unwrapper()
    with open_capture(capture) as reader:
        for frame in reader:
            take(unwrapper.feed(frame))
        damage = reader.damage
    take(unwrapper.flush())
    skipped.update(unwrapper.counters)
    return out, damage, skipped


def decrypt_capture(
    capture: Path,
    keys: KeySet,
    *,
    sdp: SessionDescription | None = None,
    decode: bool = True,
    keep_pcm: bool = False,
    audio_level_id: int | None = None,
) -> SessionDecryption:
    """Decrypt every SRTP/SRTCP stream of ``capture``; decode the audio streams.

    ``sdp`` names the codecs (payload types) and the audio-level extension id; without it the
    static payload types are decoded and a dynamic one is taken for Opus when its timestamps
    step like Opus frames. ``keep_pcm`` keeps the decoded samples (for WAV files).
    """
    datagrams, damage, skipped = read_media(capture)
    result = decrypt_media(
        datagrams,
        keys,
        sdp=sdp,
        decode=decode,
        keep_pcm=keep_pcm,
        audio_level_id=audio_level_id,
    )
    result.capture, result.damage, result.skipped = capture, damage, skipped
    return result


def decrypt_media(
    datagrams: list[MediaDatagram],
    keys: KeySet,
    *,
    sdp: SessionDescription | None = None,
    decode: bool = True,
    keep_pcm: bool = False,
    audio_level_id: int | None = None,
) -> SessionDecryption:
    """:func:`decrypt_capture` on datagrams already read (``capture`` is left empty)."""
    streams = decrypt_datagrams(datagrams, keys)
    result = SessionDecryption(Path(), keys, datagrams, streams)
    rtp_streams = [s for s in streams if s.kind == "rtp" and s.decrypted]
    parsed = {id(s): _parse_plain(s) for s in rtp_streams}
    if audio_level_id is None and sdp is not None:
        audio_level_id = audio_level_extension_id(sdp)
    if audio_level_id is None:
        sample = [p for s in rtp_streams for p, _ in parsed[id(s)][:200]]
        audio_level_id = infer_audio_level_id(sample).extension_id
    result.audio_level_id = audio_level_id
    negotiated = payload_types(sdp) if sdp is not None else {}
    for stream in rtp_streams:
        timed = parsed[id(stream)]
        if not timed:
            continue
        packets = [p for p, _ in timed]
        payload_type = Counter(p.payload_type for p in packets).most_common(1)[0][0]
        codec, source = _choose_codec(payload_type, packets, negotiated)
        audio: DecodedAudio | None = None
        levels = np.zeros(0, np.int16)
        payloads: tuple[bytes, ...] = ()
        if decode and codec is not None:
            main = [(p, t) for p, t in timed if p.payload_type == payload_type]
            audio = decode_stream(
                [AudioPacket(p.sequence_number, p.timestamp, t, p.payload) for p, t in main],
                codec,
                keep_pcm=keep_pcm,
            )
            levels, payloads = _aligned([p for p, _ in main], audio, audio_level_id)
        result.audio[stream.stream] = AudioStream(
            stream=stream.stream,
            decryption=stream,
            payload_type=payload_type,
            codec=codec,
            codec_source=source,
            audio=audio,
            audio_level=levels,
            payloads=payloads,
        )
    return result


def _parse_plain(stream: StreamDecryption) -> list[tuple[RtpPacket, int]]:
    """The authenticated packets of a stream, parsed, with their capture times (capture order;
    plaintext that does not parse as RTP is dropped)."""
    out: list[tuple[RtpPacket, int]] = []
    for datagram, plain in zip(stream.datagrams, stream.plaintext, strict=True):
        if plain is None:
            continue
        try:
            out.append((RtpPacket.parse(plain), datagram.timestamp_ns))
        except MalformedPacket:
            continue
    return out


def _choose_codec(
    payload_type: int,
    packets: Sequence[RtpPacket],
    negotiated: Mapping[int, tuple[str, Codec]],
) -> tuple[CodecInfo | None, str]:
    """The stream's codec from SDP, the static table, or Opus-like timing; and how we know."""
    if payload_type in negotiated:
        kind, entry = negotiated[payload_type]
        if kind != "audio":
            return None, "sdp"
        return codec_by_name(entry.name), "sdp"
    if payload_type in STATIC_AUDIO:
        return STATIC_AUDIO[payload_type], "static"
    if payload_type >= 96 and len(packets) >= 3:
        steps = [
            (b.timestamp - a.timestamp) % 2**32
            for a, b in pairwise(packets)
            if (b.sequence_number - a.sequence_number) % 65536 == 1
        ]
        sizes = [p.payload_length for p in packets]
        if steps and median(steps) in OPUS_FRAME_STEPS and median(sizes) < AUDIO_PAYLOAD_MAX:
            return codec_by_name("opus"), "behaviour"
    return None, "unknown"


def _aligned(
    packets: Sequence[RtpPacket], audio: DecodedAudio, extension_id: int | None
) -> tuple[npt.NDArray[np.int16], tuple[bytes, ...]]:
    """The RFC 6464 level (-1 when absent) and the payload of each decoded packet, in the
    decoder's order.

    ``packets`` are in the order given to the decoder, so unwrapping their sequence numbers
    the same way gives the decoder's extended numbers.
    """
    levels = np.full(audio.sequence_number.size, -1, np.int16)
    if not packets:
        return levels, ()
    extended = unwrap_sequence(np.array([p.sequence_number for p in packets], np.int64))
    by_sequence: dict[int, tuple[int, bytes]] = {}
    for number, packet in zip(extended.tolist(), packets, strict=True):
        level = None
        if extension_id is not None:
            try:
                level = audio_level(packet, extension_id)
            except MalformedPacket:
                level = None
        by_sequence.setdefault(number, (-1 if level is None else level.level, packet.payload))
    payloads: list[bytes] = []
    for i, number in enumerate(audio.sequence_number.tolist()):
        level_value, payload = by_sequence[number]
        levels[i] = level_value
        payloads.append(payload)
    return levels, tuple(payloads)


def decoded_loudness(
    capture: Path, keys: KeySet, *, sdp: SessionDescription | None = None
) -> dict[StreamKey, LoudnessSeries]:
    """Per decodable audio stream of ``capture``: per-packet dBFS and audio level, per 100 ms.

    Streams no key authenticates, and streams whose codec is unknown, are left out (see
    :func:`decrypt_capture` for the reasons).
    """
    result = decrypt_capture(capture, keys, sdp=sdp)
    out: dict[StreamKey, LoudnessSeries] = {}
    for key, stream in result.audio.items():
        series = stream.loudness()
        if series is not None:
            out[key] = series
    return out


# -- writing ------------------------------------------------------------------------------------


def write_plain_capture(result: SessionDecryption, out: Path) -> int:
    """The capture's RTP/RTCP as pcapng, decrypted where a key authenticated; packets written.

    Timestamps and addresses are the capture's (UDP over Ethernet, nanosecond timestamps).
    Packets that did not decrypt are written as they were, with a comment saying why, so the
    file stays packet-for-packet comparable with the capture's media.
    """
    from decoders.wire.capture import LINKTYPE_ETHERNET
    from decoders.wire.pcapwriter import PcapngWriter, build_udp_frame

    reasons: dict[int, str] = {}
    plain: dict[int, bytes] = {}
    for stream in result.streams:
        for datagram, data in zip(stream.datagrams, stream.plaintext, strict=True):
            if data is not None:
                plain[id(datagram)] = data
            else:
                reasons[id(datagram)] = stream.error or "did not authenticate"
    written = 0
    with outputs.atomic_open(out) as handle:
        writer = PcapngWriter(handle)
        interface = writer.add_interface(
            LINKTYPE_ETHERNET, ts_resolution_exp10=9, name="mutecheck-decrypted"
        )
        for datagram in result.datagrams:
            data = plain.get(id(datagram))
            comment = None
            if data is None:
                data = datagram.data
                comment = f"still encrypted: {reasons.get(id(datagram), 'no key')}"
            frame = build_udp_frame(
                LINKTYPE_ETHERNET,
                datagram.src,
                datagram.src_port,
                datagram.dst,
                datagram.dst_port,
                data,
            )
            writer.write(interface, datagram.timestamp_ns, frame, comment=comment)
            written += 1
    return written


def write_wav(path: Path, samples: npt.NDArray[np.float32], sample_rate: int) -> None:
    """16-bit mono PCM WAV (clipped to full scale)."""
    pcm = np.clip(np.round(samples.astype(np.float64) * 32768.0), -32768, 32767).astype("<i2")
    with outputs.atomic_open(path) as sink, wave.open(sink, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())


def intervals_to_samples(
    audio: DecodedAudio, intervals_ns: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Capture-time intervals -> sample ranges of ``audio`` (empty ranges dropped)."""
    out: list[tuple[int, int]] = []
    for start, end in intervals_ns:
        lo, hi = (int(v) for v in audio.sample_at([start, end]))
        lo, hi = max(lo, 0), min(hi, audio.length)
        if hi > lo:
            out.append((lo, hi))
    return out
