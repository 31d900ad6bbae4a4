"""What a recorded lab session shows on the wire, unmuted and muted: the corpus's measured facts.

Reads a session folder the lab wrote (capture, SDP, keys, timeline, the peer's telemetry log)
with the project's own parsers, decrypts every SRTP/SRTCP packet with the exported keys, and
sums up the browser's audio per phase: packets per second, payload sizes, RFC 6464 audio
levels, distinct decrypted payloads, telemetry messages. ``mutecheck lab record`` prints it and
``captures/README.md`` tabulates it. This is the lab checking itself, not the audit: it knows
the ground truth and which side is the browser.
"""

from __future__ import annotations

import base64
import json
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pylibsrtp

from decoders.errors import MalformedPacket
from decoders.lab.record import RTPDUMP_LOG
from decoders.media.rtpdump import parse_rtpdump
from decoders.session.sdp import audio_level_extension_id, parse_sdp
from decoders.wire.capture import open_capture
from decoders.wire.demux import PacketKind, classify, open_payload
from decoders.wire.dtls import find_suite
from decoders.wire.net import Datagram, Unwrapper
from decoders.wire.rtp import RtpPacket, audio_level

GRACE_S = 0.2
"""Seconds after each mute/unmute left out of both phases: the encoder's transition packets."""
LEVEL_SILENCE = 127


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """The browser's audio in one phase (transitions excluded, see :data:`GRACE_S`)."""

    phase: str
    seconds: float
    rtp_packets: int
    payload_bytes: tuple[int, ...]
    """Per RTP packet: the encoded frame's size (SRTP payload without the auth tag)."""
    audio_levels: tuple[int, ...]
    """Per RTP packet carrying it: the RFC 6464 level, 0 (loud) to 127 (silence)."""
    distinct_payloads: int
    """How many different decrypted payloads (a repeated silence frame counts once)."""
    telemetry_messages: int
    telemetry_levels: tuple[float, ...]
    rtcp_packets: int = 0
    """The browser's SRTCP packets (sender reports go on while RTP stops)."""
    stun_packets: int = 0
    """STUN in both directions (ICE consent checks go on whatever the media does)."""
    peer_audio_levels: tuple[int, ...] = ()
    """Per RTP packet the peer sent (``--peer-talks``): its RFC 6464 level."""

    @property
    def packets_per_second(self) -> float:
        return self.rtp_packets / self.seconds if self.seconds > 0 else 0.0

    @property
    def payload_median(self) -> float | None:
        return statistics.median(self.payload_bytes) if self.payload_bytes else None

    @property
    def level_median(self) -> float | None:
        return statistics.median(self.audio_levels) if self.audio_levels else None

    def as_dict(self) -> dict[str, Any]:
        sizes = self.payload_bytes
        return {
            "seconds": round(self.seconds, 3),
            "rtp_packets": self.rtp_packets,
            "packets_per_second": round(self.packets_per_second, 1),
            "payload_bytes": {
                "min": min(sizes) if sizes else None,
                "median": self.payload_median,
                "max": max(sizes) if sizes else None,
            },
            "audio_level_median": self.level_median,
            "audio_level_silent_share": (
                round(self.audio_levels.count(LEVEL_SILENCE) / len(self.audio_levels), 3)
                if self.audio_levels
                else None
            ),
            "distinct_payloads": self.distinct_payloads,
            "rtcp_packets": self.rtcp_packets,
            "stun_packets": self.stun_packets,
            "peer_rtp_packets": len(self.peer_audio_levels),
            "peer_audio_level_median": (
                statistics.median(self.peer_audio_levels) if self.peer_audio_levels else None
            ),
            "telemetry_messages": self.telemetry_messages,
            "telemetry_level_median": (
                statistics.median(self.telemetry_levels) if self.telemetry_levels else None
            ),
        }


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """A lab session's capture, decrypted and split at the ground-truth mute window."""

    variant: str
    frames: int
    datagrams: dict[str, int]
    audio_level_id: int | None
    browser_ssrcs: tuple[int, ...]
    srtp_decrypted: int
    srtp_failures: int
    rtp_with_audio_level: int
    browser_rtp_packets: int
    unmuted: PhaseStats
    muted: PhaseStats
    other_browser_rtp: tuple[tuple[int, int], ...] = ()
    """(SSRC, RTP packets) the browser sent on its other streams (video, RTX)."""
    peer_rtp_packets: int = 0
    """RTP packets the peer sent (it talks back with ``--peer-talks``)."""
    shape: str = ""
    """How the call differed from the plain lab call: e.g. ``relay-tcp``, ``peer-talks``,
    ``video`` (empty for a direct audio-only call)."""
    source: str = "capture"
    """Where the RTP was read: ``capture`` (SRTP decrypted with keys.json) or ``rtpdump``
    (Chromium's plaintext dump, for media relayed over TCP/TLS the capture cannot open)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "shape": self.shape,
            "frames": self.frames,
            "datagrams": self.datagrams,
            "audio_level_id": self.audio_level_id,
            "browser_ssrcs": list(self.browser_ssrcs),
            "browser_rtp_packets": self.browser_rtp_packets,
            "rtp_with_audio_level": self.rtp_with_audio_level,
            "srtp_decrypted": self.srtp_decrypted,
            "srtp_failures": self.srtp_failures,
            "other_browser_rtp": dict(self.other_browser_rtp),
            "peer_rtp_packets": self.peer_rtp_packets,
            "source": self.source,
            "unmuted": self.unmuted.as_dict(),
            "muted": self.muted.as_dict(),
        }


def srtp_session(half: dict[str, Any], profile: str) -> pylibsrtp.Session:
    """A receiving SRTP session for one direction of keys.json (any SSRC)."""
    srtp_profile = find_suite(profile).libsrtp_profile
    key = base64.b64decode(half["master_key"]) + base64.b64decode(half["master_salt"])
    policy = pylibsrtp.Policy(
        key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=srtp_profile
    )
    return pylibsrtp.Session(policy)


def read_datagrams(capture: Path) -> tuple[int, list[Datagram]]:
    """Every datagram of a capture, in order, with the number of frames read."""
    unwrapper = Unwrapper()
    datagrams: list[Datagram] = []
    frames = 0
    with open_capture(capture) as reader:
        for frame in reader:
            frames += 1
            datagrams.extend(unwrapper.feed(frame))
    datagrams.extend(unwrapper.flush())
    return frames, datagrams


def read_telemetry(path: Path) -> list[tuple[float, float | None]]:
    """(receipt time, audioLevel) of each message in the peer's ``peer-telemetry.jsonl``."""
    if not path.is_file():
        return []
    messages: list[tuple[float, float | None]] = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        message = record.get("message")
        level = message.get("audioLevel") if isinstance(message, dict) else None
        messages.append((float(record["t"]), float(level) if level is not None else None))
    return messages


def _phase_of(t: float, window: tuple[float, float], span: tuple[float, float]) -> str | None:
    """ "muted", "unmuted" or None (outside the scenario or within a transition's grace)."""
    start, end = span
    mute, unmute = window
    if not start + GRACE_S <= t <= end - GRACE_S:
        return None
    if mute + GRACE_S <= t <= unmute - GRACE_S:
        return "muted"
    if t < mute - GRACE_S or t > unmute + GRACE_S:
        return "unmuted"
    return None


@dataclass(frozen=True, slots=True)
class _Packet:
    """One media-path packet: when, from which address, its bytes, and whether in clear."""

    timestamp_ns: int
    src: str
    payload: bytes
    plaintext: bool


def _dumped_packets(log: Path, year: int, browser: str, peer: str) -> list[_Packet]:
    """Chromium's plaintext RTP/RTCP dump: outbound from the browser, inbound from the peer."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    dump = parse_rtpdump(lines, year=year)
    return [
        _Packet(p.timestamp_ns, browser if p.outbound else peer, p.data, plaintext=True)
        for p in dump.packets
    ]


def _unwrapped(payload: bytes, kinds: Counter[str]) -> bytes:
    """The datagram inside a TURN ChannelData or Send/Data indication (counted), else itself."""
    opened = open_payload(payload)
    if opened.turn_error is not None:
        kinds["turn-malformed"] += 1
    elif opened.tunnel is not None:
        kinds[opened.tunnel] += 1
    return opened.payload


class NoPeerKeys(ValueError):
    """The session has no ``keys.json``: the summary cannot decrypt its media."""


def summarize(folder: Path) -> SessionSummary:
    """Measure a lab session folder (one mute window, as the lab records).

    The browser's audio is its SSRCs of the offer's audio section; other RTP it sends (video,
    RTX) is only counted. Media relayed through the lab's coturn over UDP is read inside its
    TURN wrappers; coturn runs at the peer's address, so the direction reads the same.
    """
    session = json.loads((folder / "session.json").read_text())
    timeline = json.loads((folder / "timeline.json").read_text())
    if not (folder / "keys.json").is_file():
        raise NoPeerKeys(
            "no keys.json (the peer's exported keys) to decrypt with: a call a second browser "
            "answered has none; its expected.json holds the ground truth"
        )
    keys = json.loads((folder / "keys.json").read_text())
    offer = parse_sdp((folder / "offer.sdp").read_text())
    level_id = audio_level_extension_id(offer)
    audio_ssrcs = set(offer.audio[0].ssrcs) if offer.audio else set()
    (muted_window,) = timeline["muted"]
    window = (float(muted_window[0]), float(muted_window[1]))
    span = (float(session["scenario"]["start"]), float(session["scenario"]["end"]))
    browser = session["network"]["browser"]["address"]
    peer = session["network"]["peer"]["address"]
    tag_length = find_suite(keys["profile"]).rtp_tag_length
    sessions = {
        browser: srtp_session(keys["browser"], keys["profile"]),
        peer: srtp_session(keys["peer"], keys["profile"]),
    }

    frames, datagrams = read_datagrams(folder / "capture.pcapng")
    kinds: Counter[str] = Counter()
    packets = [
        _Packet(d.timestamp_ns, d.src, _unwrapped(d.payload, kinds), plaintext=False)
        for d in datagrams
    ]
    source = "capture"
    dump = folder / RTPDUMP_LOG
    if session.get("relay", {}).get("protocol") == "tcp" and dump.is_file():
        # relayed over TCP/TLS: the browser's plaintext RTP dump is the ground truth
        packets = _dumped_packets(dump, int(str(session["created"])[:4]), browser, peer)
        source = "rtpdump"
    decrypted = failures = with_level = browser_rtp = 0
    ssrcs: set[int] = set()
    sizes: dict[str, list[int]] = {"muted": [], "unmuted": []}
    levels: dict[str, list[int]] = {"muted": [], "unmuted": []}
    payloads: dict[str, set[bytes]] = {"muted": set(), "unmuted": set()}
    others: Counter[tuple[str, str]] = Counter()
    other_rtp: Counter[int] = Counter()
    peer_levels: dict[str, list[int]] = {"muted": [], "unmuted": []}
    peer_rtp = 0
    for datagram in packets:
        payload = datagram.payload
        kind = classify(payload)
        kinds[str(kind)] += 1
        phase = _phase_of(datagram.timestamp_ns / 1e9, window, span)
        if kind is PacketKind.STUN and phase is not None:
            others[(phase, "stun")] += 1
        if kind not in (PacketKind.RTP, PacketKind.RTCP) or datagram.src not in sessions:
            continue
        srtp = sessions[datagram.src]
        try:
            if kind is PacketKind.RTCP:
                if not datagram.plaintext:
                    srtp.unprotect_rtcp(payload)
                    decrypted += 1
                if datagram.src == browser and phase is not None:
                    others[(phase, "rtcp")] += 1
                continue
            plain = payload if datagram.plaintext else srtp.unprotect(payload)
            decrypted += not datagram.plaintext
        except pylibsrtp.Error:
            failures += 1
            continue
        try:
            packet = RtpPacket.parse(payload, srtp=not datagram.plaintext)
            clear = RtpPacket.parse(plain)
        except MalformedPacket:
            failures += 1
            continue
        if datagram.src != browser:
            peer_rtp += 1
            peer_level = audio_level(packet, level_id) if level_id is not None else None
            if phase is not None and peer_level is not None:
                peer_levels[phase].append(peer_level.level)
            continue
        if audio_ssrcs and packet.ssrc not in audio_ssrcs:
            other_rtp[packet.ssrc] += 1
            continue
        browser_rtp += 1
        ssrcs.add(packet.ssrc)
        level = audio_level(packet, level_id) if level_id is not None else None
        with_level += level is not None
        if phase is None:
            continue
        sizes[phase].append(
            len(clear.payload) if datagram.plaintext else len(packet.payload) - tag_length
        )
        payloads[phase].add(clear.payload)
        if level is not None:
            levels[phase].append(level.level)

    telemetry: dict[str, list[float | None]] = {"muted": [], "unmuted": []}
    for t, value in read_telemetry(folder / "peer-telemetry.jsonl"):
        phase = _phase_of(t, window, span)
        if phase is not None:
            telemetry[phase].append(value)

    muted_seconds = max(0.0, window[1] - window[0] - 2 * GRACE_S)
    unmuted_seconds = max(0.0, (span[1] - span[0]) - (window[1] - window[0]) - 4 * GRACE_S)

    def phase_stats(phase: str, seconds: float) -> PhaseStats:
        return PhaseStats(
            phase=phase,
            seconds=seconds,
            rtp_packets=len(sizes[phase]),
            payload_bytes=tuple(sizes[phase]),
            audio_levels=tuple(levels[phase]),
            distinct_payloads=len(payloads[phase]),
            telemetry_messages=len(telemetry[phase]),
            telemetry_levels=tuple(v for v in telemetry[phase] if v is not None),
            rtcp_packets=others[(phase, "rtcp")],
            stun_packets=others[(phase, "stun")],
            peer_audio_levels=tuple(peer_levels[phase]),
        )

    return SessionSummary(
        variant=str(session["variant"]),
        frames=frames,
        datagrams=dict(sorted(kinds.items())),
        audio_level_id=level_id,
        browser_ssrcs=tuple(sorted(ssrcs)),
        srtp_decrypted=decrypted,
        srtp_failures=failures,
        rtp_with_audio_level=with_level,
        browser_rtp_packets=browser_rtp,
        unmuted=phase_stats("unmuted", unmuted_seconds),
        muted=phase_stats("muted", muted_seconds),
        other_browser_rtp=tuple(sorted(other_rtp.items())),
        peer_rtp_packets=peer_rtp,
        shape=call_shape(session),
        source=source,
    )


def call_shape(session: dict[str, Any]) -> str:
    """``relay-<transport>``, ``peer-talks``, ``video`` from a session.json, joined by spaces."""
    parts = []
    relay = session.get("relay", {}).get("transport", "none")
    if relay != "none":
        parts.append(f"relay-{relay}")
    scenario = session.get("scenario", {})
    if scenario.get("peer_talks"):
        parts.append("peer-talks")
    if scenario.get("video"):
        parts.append("video")
    return " ".join(parts)


def summary_line(summary: SessionSummary) -> str:
    """One line for the terminal: what the browser sent while muted, against unmuted."""
    muted, unmuted = summary.muted, summary.unmuted

    def number(value: float | None, digits: int = 0) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    shape = f" ({summary.shape})" if summary.shape else ""
    return (
        f"{summary.variant}{shape}: muted {muted.packets_per_second:.1f} pkt/s "
        f"(unmuted {unmuted.packets_per_second:.1f}), payload median "
        f"{number(muted.payload_median)} B (unmuted {number(unmuted.payload_median)}), "
        f"audio level median {number(muted.level_median)} (unmuted "
        f"{number(unmuted.level_median)}), telemetry while muted {muted.telemetry_messages}, "
        f"SRTP decrypted {summary.srtp_decrypted}, failures {summary.srtp_failures}"
        + (", read from Chromium's plaintext RTP dump" if summary.source == "rtpdump" else "")
        + (
            f", other browser streams {dict(summary.other_browser_rtp)}"
            if summary.other_browser_rtp
            else ""
        )
        + (f", peer RTP {summary.peer_rtp_packets}" if summary.peer_rtp_packets else "")
    )
