"""A recorded session's ground truth, from the browser's plaintext packets (never from the audit).

For a third-party app the lab cannot know in advance whether a mute stops the sound: it is
measured. The browser's own dump of what it sent (``chromium-stderr.log``, before SRTP) gives,
for the sending audio stream, every packet's RFC 6464 audio level and its Opus payload. Firefox
has no such dump: there the capture's SRTP is decrypted with the keys the lab's peer exported
from its side of the DTLS handshake (``keys.json``, OpenSSL's exporter in aiortc: not the
browser's key log, and not mutecheck's own key derivation), which gives the same packets. Per mute
window of ``timeline.json`` (from a short grace after the click to the unmute click) and for the
unmuted time around it, this module measures:

- packets per second, and the median audio level (0 = loud, 127 = silence);
- the decoded loudness (:func:`decoders.media.codecs.decode_stream`, median dBFS per packet,
  and the share of packets louder than :data:`SOUND_DBFS`);
- Spearman's correlation of the decoded loudness with the microphone's signal
  (``reference.wav``, :func:`decoders.audit.correlate.correlate`), at the lag the unmuted
  phase found (the reference's start is only known to about a second).

The window's verdict: **content leak** when sound kept leaving (median decoded loudness above
:data:`SILENCE_DBFS`, i.e. not digital silence, and the loudness follows the microphone's
signal, p < 0.01 and r > 0.3: a quiet leak, e.g. speech 30 dB down at ~-60 dBFS, is one too);
**no leak** when it did not (fewer than :data:`SILENT_RATE` packets/s, or median decoded
loudness below :data:`SILENCE_DBFS`); anything between is ``undetermined`` and the recording
should not be used as a fixture. The numbers go into ``expected.json`` with a note per window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from decoders.errors import MalformedPacket
from decoders.lab.firefox import PEER_KEYLOG

GRACE_S: Final = 0.2
"""Skipped after each mute click: the mute takes a frame or two to reach the encoder."""
SOUND_DBFS: Final = -50.0
"""Loud: the share of packets above this is reported per window (speech is ~-30 dBFS)."""
SILENCE_DBFS: Final = -80.0
"""Median decoded loudness below this: digital silence (the reference's floor is -60 dBFS)."""
SILENT_RATE: Final = 5.0
"""Fewer audio packets per second than this: nothing (or only DTX comfort noise) was sent."""
LAG_SEARCH_S: Final = 0.3
"""The muted window's correlation searches this around the unmuted phase's lag."""
RTPDUMP_LOG: Final = "chromium-stderr.log"
PEER_KEYS: Final = "keys.json"
"""The SRTP keys the lab's peer exported (``decoders.lab.peer``): the source when no dump."""
UNMUTED_LAG_S: Final = (-1.0, 3.0)
"""Lags searched on the unmuted phase (the fake mic starts when getUserMedia is called)."""


@dataclass(frozen=True, slots=True)
class _Stream:
    ssrc: int
    payload_type: int
    times: np.ndarray[Any, np.dtype[np.float64]]
    """Epoch seconds per packet (send order)."""
    levels: np.ndarray[Any, np.dtype[np.float64]]
    """Audio level per packet (NaN without the extension)."""
    dbfs: np.ndarray[Any, np.dtype[np.float64]]
    """Decoded loudness per packet (NaN when it did not decode)."""
    series: str = "decoded loudness (plaintext RTP dump)"
    """What the correlation's series is called (names the packets' source)."""


def _dumped_packets(folder: Path) -> Iterator[tuple[int, bytes]]:
    """(epoch ns, plaintext RTP) of every outbound RTP packet in Chromium's dump."""
    from decoders.media.rtpdump import log_year, parse_log_header, parse_rtpdump

    log = folder / RTPDUMP_LOG
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    first = next((h for h in map(parse_log_header, lines) if h is not None), None)
    dump = parse_rtpdump(lines, year=log_year(log, first))
    for dumped in dump.packets:
        if dumped.outbound and dumped.kind == "rtp":
            yield dumped.timestamp_ns, dumped.data


def _decrypted_packets(folder: Path, source: str) -> Iterator[tuple[int, bytes]]:
    """(capture ns, plaintext RTP) of every RTP packet the browser sent in the capture,
    decrypted with the peer's exported keys (``keys.json``, source ``keys``) or the keys of the
    answering browser's own key log (``peer-keylog.txt``, source ``keylog``); a packet that does
    not authenticate is left out (the lab's tests hold the count of those at 0)."""
    from decoders.media.decrypt import read_media
    from decoders.media.srtp import decrypt_datagrams
    from decoders.session.keys import load_keylog_keys, load_keys_json

    browser = json.loads((folder / "session.json").read_text())["network"]["browser"]["address"]
    capture = folder / "capture.pcapng"
    keys = (
        load_keys_json(folder / PEER_KEYS)
        if source == "keys"
        else load_keylog_keys(folder / PEER_KEYLOG, capture)
    )
    if not keys.keys:
        raise ValueError(f"{folder}: no SRTP key from {PEER_KEYLOG}: {'; '.join(keys.notes)}")
    datagrams, _, _ = read_media(capture)
    sent = [d for d in datagrams if d.kind == "rtp" and d.src == browser]
    for stream in decrypt_datagrams(sent, keys):
        for datagram, plain in zip(stream.datagrams, stream.plaintext, strict=True):
            if plain is not None:
                yield datagram.timestamp_ns, plain


def packet_source(folder: Path) -> str:
    """Where the session's plaintext comes from: ``rtpdump`` (Chromium's dump), ``keys`` (the
    peer's exported keys) or ``keylog`` (the answering browser's key log)."""
    if (folder / RTPDUMP_LOG).is_file():
        return "rtpdump"
    if (folder / "session.json").is_file():
        if (folder / PEER_KEYS).is_file():
            return "keys"
        if (folder / PEER_KEYLOG).is_file():
            return "keylog"
    raise ValueError(
        f"{folder}: neither {RTPDUMP_LOG} nor {PEER_KEYS} or {PEER_KEYLOG} with session.json"
    )


SOURCES: Final = {
    "rtpdump": f"{RTPDUMP_LOG}: Chromium's plaintext RTP dump (outbound, before SRTP); "
    "never mutecheck analyze",
    "keys": f"capture.pcapng decrypted with {PEER_KEYS}, the SRTP keys the lab's aiortc peer "
    "exported from its own side of the DTLS handshake (not the browser's key log); never "
    "mutecheck analyze",
    "keylog": f"capture.pcapng decrypted with the keys of {PEER_KEYLOG}, the answering "
    "Firefox's own key log (not the calling browser's keylog.txt); never mutecheck analyze",
}


SERIES: Final = {
    "rtpdump": "plaintext RTP dump",
    "keys": f"capture decrypted with {PEER_KEYS}",
    "keylog": f"capture decrypted with {PEER_KEYLOG}",
}


def _sending_audio(folder: Path) -> _Stream:
    """The browser's outbound Opus stream with the most packets, decoded."""
    from decoders.media.codecs import OPUS, AudioPacket, decode_stream
    from decoders.session.sdp import audio_level_extension_id, parse_sdp, payload_types
    from decoders.wire.rtp import RtpPacket, audio_level

    offer = parse_sdp((folder / "offer.sdp").read_text())
    opus = {
        pt
        for pt, (kind, codec) in payload_types(offer).items()
        if kind == "audio" and codec.name.lower() == "opus"
    }
    level_id = audio_level_extension_id(offer)
    source = packet_source(folder)
    plain = _dumped_packets(folder) if source == "rtpdump" else _decrypted_packets(folder, source)
    by_ssrc: dict[int, list[tuple[int, RtpPacket]]] = {}
    for timestamp_ns, data in plain:
        try:
            packet = RtpPacket.parse(data)
        except MalformedPacket:
            continue
        if packet.payload_type in opus:
            by_ssrc.setdefault(packet.ssrc, []).append((timestamp_ns, packet))
    if not by_ssrc:
        raise ValueError(f"{folder}: no outbound Opus RTP packet ({SOURCES[source]})")
    ssrc, packets = max(by_ssrc.items(), key=lambda item: len(item[1]))
    decoded = decode_stream(
        [AudioPacket(p.sequence_number, p.timestamp, t, p.payload) for t, p in packets], OPUS
    )
    # decode order is sequence order; map back to the packets by sequence number
    loudness = dict(
        zip((int(s) & 0xFFFF for s in decoded.sequence_number), decoded.dbfs, strict=True)
    )
    levels = []
    for _, packet in packets:
        found = audio_level(packet, level_id) if level_id is not None else None
        levels.append(float(found.level) if found is not None else float("nan"))
    return _Stream(
        ssrc=ssrc,
        payload_type=packets[0][1].payload_type,
        times=np.array([t / 1e9 for t, _ in packets], np.float64),
        levels=np.array(levels, np.float64),
        dbfs=np.array(
            [float(loudness.get(p.sequence_number, float("nan"))) for _, p in packets],
            np.float64,
        ),
        series=f"decoded loudness ({SERIES[source]})",
    )


def _median(values: np.ndarray[Any, np.dtype[np.float64]]) -> float | None:
    finite = values[np.isfinite(values)]
    return round(float(np.median(finite)), 1) if finite.size else None


def _measure(
    stream: _Stream, start: float, end: float, envelope: Any, lag_range: tuple[float, float]
) -> dict[str, Any]:
    from decoders.audit.correlate import correlate

    inside = (stream.times >= start) & (stream.times < end)
    dbfs = stream.dbfs[inside]
    count = int(inside.sum())
    duration = max(end - start, 1e-9)
    loud = dbfs[np.isfinite(dbfs)]
    numbers: dict[str, Any] = {
        "start": round(start, 3),
        "end": round(end, 3),
        "rtp_packets": count,
        "packets_per_s": round(count / duration, 1),
        "audio_level_median": _median(stream.levels[inside]),
        "decoded_dbfs_median": _median(dbfs),
        "share_louder_than_sound_dbfs": round(float((loud > SOUND_DBFS).mean()), 3)
        if loud.size
        else None,
        "correlation": None,
    }
    if envelope is not None and count:
        found = correlate(
            stream.times[inside],
            np.nan_to_num(dbfs, nan=-120.0),
            envelope,
            series=stream.series,
            lag_range_s=lag_range,
        )
        numbers["correlation"] = found.to_json() if found is not None else None
    return numbers


def _window_verdict(numbers: dict[str, Any]) -> tuple[str, str]:
    rate, median = numbers["packets_per_s"], numbers["decoded_dbfs_median"]
    proof = numbers["correlation"]
    if rate < SILENT_RATE:
        return "no-leak", f"{rate} audio packets/s: nothing but DTX or nothing at all was sent"
    if median is not None and median < SILENCE_DBFS:
        return (
            "no-leak",
            f"decoded audio is silence (median {median} dBFS, audio level "
            f"{numbers['audio_level_median']})",
        )
    if median is not None and median > SILENCE_DBFS and proof is not None and proof["proven"]:
        return (
            "content-leak",
            f"sound kept leaving: {rate} packets/s, median {median} dBFS, audio level "
            f"{numbers['audio_level_median']}, follows the microphone (r = {proof['r']}, "
            f"p = {proof['p_value']})",
        )
    return "undetermined", f"neither silent nor proven sound (median {median} dBFS, {proof})"


def _reference_of(folder: Path) -> Path | None:
    """session.json's reference file (relative to the folder), else the folder's reference.wav."""
    manifest = folder / "session.json"
    if manifest.is_file():
        name = json.loads(manifest.read_text()).get("reference", {}).get("file")
        if isinstance(name, str) and (folder / name).is_file():
            return folder / name
    return folder / "reference.wav" if (folder / "reference.wav").is_file() else None


def expected_document(
    folder: Path,
    *,
    app: str,
    dtx: bool = False,
    gum_s: float | None = None,
    reference: Path | None = None,
) -> dict[str, Any]:
    """``expected.json`` for a recorded session folder (see the module docstring).

    ``gum_s`` is when the page called getUserMedia (epoch s), where the reference starts;
    default: session.json's, else the first unmuted time minus five seconds (the lag search
    on the unmuted phase covers the rest). ``reference`` is the microphone's signal (default:
    session.json's ``reference.file``, else ``reference.wav``); without it no correlation is
    measured and no window can be proven a content leak.
    """
    from decoders.audit.correlate import loudness_envelope, read_wav

    timeline = json.loads((folder / "timeline.json").read_text())
    windows = [(float(a), float(b)) for a, b in timeline["muted"]]
    events = timeline["events"]
    call_start = float(events[0]["t"])
    stream = _sending_audio(folder)
    if gum_s is None and (folder / "session.json").is_file():
        scenario = json.loads((folder / "session.json").read_text()).get("scenario", {})
        gum_s = scenario.get("getusermedia_called")
    envelope = None
    if reference is None:
        reference = _reference_of(folder)
    if reference is not None and reference.is_file():
        with reference.open("rb") as handle:
            samples, rate = read_wav(handle)
        start = gum_s if gum_s is not None else call_start - 5.0
        envelope = loudness_envelope(samples, rate, start)
    # unmuted: before the first mute, and after the last unmute until the last packet
    first_mute = windows[0][0] if windows else float(stream.times[-1])
    unmuted = _measure(stream, call_start, first_mute, envelope, UNMUTED_LAG_S)
    # the unmuted phase fixes the lag only when its own correlation is proven (a 3 s phase often
    # is not, and on a loaded machine its best lag can be anywhere): else search the whole range
    found = unmuted["correlation"]
    lag = found["lag_s"] if found and found.get("proven") else None
    lag_range = (lag - LAG_SEARCH_S, lag + LAG_SEARCH_S) if lag is not None else UNMUTED_LAG_S
    measured = []
    for start, end in windows:
        numbers = _measure(stream, start + GRACE_S, end, envelope, lag_range)
        verdict, why = _window_verdict(numbers)
        measured.append({"verdict": verdict, "why": why, **numbers})
    verdicts = {w["verdict"] for w in measured}
    overall = (
        "content-leak"
        if "content-leak" in verdicts
        else "undetermined"
        if "undetermined" in verdicts or not measured
        else "no-leak"
    )
    return {
        "version": 1,
        "app": app,
        "opus_dtx": dtx,
        "verdict": overall,
        "source": SOURCES[packet_source(folder)],
        "stream": {"ssrc": stream.ssrc, "payload_type": stream.payload_type, "codec": "opus"},
        "method": {
            "grace_s": GRACE_S,
            "sound_dbfs": SOUND_DBFS,
            "silence_dbfs": SILENCE_DBFS,
            "silent_packets_per_s": SILENT_RATE,
            "correlation": "decoded loudness vs reference.wav envelope, Spearman, lag from the "
            f"unmuted phase +/- {LAG_SEARCH_S} s when proven there, else searched over "
            f"{UNMUTED_LAG_S[0]:+.0f}..{UNMUTED_LAG_S[1]:+.0f} s, proven = p < 0.01 and r > 0.3",
        },
        "unmuted": unmuted,
        "muted_windows": measured,
        "notes": [w["why"] for w in measured],
        "measured": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
