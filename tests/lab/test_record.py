"""The lab records complete, decodable sessions; the committed sessions pass the same checks.

Checks use independent tools: tshark (RTP fields via decode-as) and pylibsrtp (decryption with
the exported keys). The live test needs root, Chromium, dumpcap, espeak-ng and sox; it is skipped
only when Chromium is missing and the CI variable is unset.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pylibsrtp
import pytest

from decoders.lab.record import (
    CHROMIUM,
    SESSION_FILES,
    VARIANTS,
    LabError,
    host_candidate,
    record_session,
    timeline_document,
)

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
COMMITTED = {"track-disabled": "chromium-track-disabled", "ui-only": "chromium-ui-only"}
GRACE_S = 0.2  # transition packets at each mute boundary may still carry sound
LEVEL_SILENT = 127

needs_tshark = pytest.mark.skipif(
    shutil.which("tshark") is None and not os.environ.get("CI"), reason="tshark not installed"
)
needs_chromium = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK) and not os.environ.get("CI"), reason="chromium not installed"
)


@dataclass(frozen=True, slots=True)
class Datagram:
    """One captured UDP datagram."""

    time: float
    source: str
    source_port: int
    destination_port: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class RtpRow:
    """tshark's view of one RTP packet (decode-as on the peer's port)."""

    time: float
    source: str
    ssrc: int
    sequence_number: int
    extension_ids: tuple[int, ...]
    extension_data: tuple[bytes, ...]


def tshark_fields(capture: Path, fields: list[str], *extra: str) -> list[list[str]]:
    command = ["tshark", "-n", "-r", str(capture), *extra, "-T", "fields", "-E", "separator=\t"]
    for name in fields:
        command += ["-e", name]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    return [line.split("\t") for line in output.stdout.splitlines() if line]


def udp_datagrams(capture: Path) -> list[Datagram]:
    fields = ["frame.time_epoch", "ip.src", "udp.srcport", "udp.dstport", "udp.payload"]
    return [
        Datagram(float(t), src, int(sport), int(dport), bytes.fromhex(payload.replace(":", "")))
        for t, src, sport, dport, payload in tshark_fields(capture, fields, "-Y", "udp")
    ]


def rtp_rows(capture: Path, peer_port: int) -> list[RtpRow]:
    fields = [
        "frame.time_epoch",
        "ip.src",
        "rtp.ssrc",
        "rtp.seq",
        "rtp.ext.rfc5285.id",
        "rtp.ext.rfc5285.data",
    ]
    rows = tshark_fields(capture, fields, "-d", f"udp.port=={peer_port},rtp", "-Y", "rtp.ssrc")
    return [
        RtpRow(
            time=float(t),
            source=src,
            ssrc=int(ssrc, 16),
            sequence_number=int(seq),
            extension_ids=tuple(int(i) for i in ids.split(",") if i),
            extension_data=tuple(bytes.fromhex(d.replace(":", "")) for d in data.split(",") if d),
        )
        for t, src, ssrc, seq, ids, data in rows
    ]


def audio_level_extmap_id(sdp: str) -> int:
    match = re.search(
        r"^a=extmap:(\d+)(?:/\w+)? urn:ietf:params:rtp-hdrext:ssrc-audio-level", sdp, re.M
    )
    assert match is not None, "offer has no ssrc-audio-level extmap"
    return int(match.group(1))


def is_rtcp(payload: bytes) -> bool:
    """RFC 5761 §4: RTCP packet types 192-223 share the second octet's range with RTP."""
    return len(payload) > 1 and 192 <= payload[1] <= 223


def rtp_payload(packet: bytes) -> bytes:
    """RFC 3550 §5.1/§5.3.1: skip the fixed header, CSRCs and the header extension."""
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        offset += 4 + 4 * int.from_bytes(packet[offset + 2 : offset + 4], "big")
    return packet[offset:]


def srtp_session(half: dict[str, Any]) -> pylibsrtp.Session:
    key = base64.b64decode(half["master_key"]) + base64.b64decode(half["master_salt"])
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    return pylibsrtp.Session(policy)


def in_window(t: float, window: list[float]) -> bool:
    return window[0] + GRACE_S <= t <= window[1] - GRACE_S


def check_session(folder: Path, variant: str) -> dict[str, Any]:
    """Assert a session folder is complete and behaves as its variant should; return stats."""
    for name in SESSION_FILES:
        assert (folder / name).is_file(), f"{name} missing"
    session = json.loads((folder / "session.json").read_text())
    timeline = json.loads((folder / "timeline.json").read_text())
    keys = json.loads((folder / "keys.json").read_text())
    offer = (folder / "offer.sdp").read_text()
    answer = (folder / "answer.sdp").read_text()

    assert session["version"] == 1 and session["variant"] == variant
    for entry in session["files"]:
        data = (folder / entry["name"]).read_bytes()
        assert len(data) == entry["bytes"] and hashlib.sha256(data).hexdigest() == entry["sha256"]
    durations = session["scenario"]["durations_s"]

    assert {k: timeline[k] for k in ("version", "source", "clock")} == {
        "version": 1,
        "source": "lab",
        "clock": "epoch",
    }
    assert [e["state"] for e in timeline["events"]] == ["unmuted", "muted", "unmuted"]
    (window,) = timeline["muted"]
    assert window == [timeline["events"][1]["t"], timeline["events"][2]["t"]]
    assert abs((window[1] - window[0]) - durations[1]) < 0.3

    assert keys["version"] == 1 and keys["profile"] == "SRTP_AES128_CM_SHA1_80"
    assert keys["dtls_role_browser"] in ("client", "server")
    browser_ssrcs = {int(s) for s in re.findall(r"^a=ssrc:(\d+) ", offer, re.M)}
    assert set(keys["browser"]["ssrcs"]) == browser_ssrcs
    for half in ("browser", "peer"):
        assert len(base64.b64decode(keys[half]["master_key"])) == 16
        assert len(base64.b64decode(keys[half]["master_salt"])) == 14

    browser = session["network"]["browser"]
    peer = session["network"]["peer"]
    assert host_candidate(offer, browser["address"]) == browser["ice_udp_port"]
    assert host_candidate(answer, peer["address"]) == peer["ice_udp_port"]

    # tshark: ~50 RTP packets/s from the browser, each with the offer's audio-level extension.
    capture = folder / "capture.pcapng"
    level_id = audio_level_extmap_id(offer)
    rows = [r for r in rtp_rows(capture, peer["ice_udp_port"]) if r.source == browser["address"]]
    assert {r.ssrc for r in rows} == browser_ssrcs
    start, end = session["scenario"]["start"], session["scenario"]["end"]
    rate = sum(start <= r.time <= end for r in rows) / (end - start)
    assert 45 <= rate <= 55, rate
    levels: dict[str, list[int]] = {"muted": [], "unmuted": []}
    for row in rows:
        assert level_id in row.extension_ids, row
        level = row.extension_data[row.extension_ids.index(level_id)][0] & 0x7F
        if in_window(row.time, window):
            levels["muted"].append(level)
        elif row.time < window[0] - GRACE_S or row.time > window[1] + GRACE_S:
            levels["unmuted"].append(level)
    assert statistics.median(levels["unmuted"]) < 60
    if variant == "track-disabled":
        assert set(levels["muted"]) == {LEVEL_SILENT}
    else:
        assert statistics.median(levels["muted"]) < 60
        assert levels["muted"].count(LEVEL_SILENT) < 0.1 * len(levels["muted"])

    # pylibsrtp: every SRTP/SRTCP datagram decrypts with its direction's key.
    sessions = {browser["address"]: srtp_session(keys["browser"])}
    sessions[peer["address"]] = srtp_session(keys["peer"])
    failures = 0
    decrypted = 0
    muted_payloads: list[bytes] = []
    for datagram in udp_datagrams(capture):
        if not 128 <= datagram.payload[0] <= 191:
            continue  # STUN, DTLS
        srtp = sessions[datagram.source]
        try:
            if is_rtcp(datagram.payload):
                srtp.unprotect_rtcp(datagram.payload)
            else:
                plain = srtp.unprotect(datagram.payload)
                if datagram.source == browser["address"] and in_window(datagram.time, window):
                    muted_payloads.append(rtp_payload(plain))
            decrypted += 1
        except pylibsrtp.Error:
            failures += 1
    assert failures == 0
    assert decrypted >= len(rows)
    # While muted, track-disabled sends the same small Opus silence frame over and over (the
    # encoder takes a few frames to settle on it); ui-only keeps sending real, changing audio.
    distinct = len(set(muted_payloads))
    sizes = [len(p) for p in muted_payloads]
    if variant == "track-disabled":
        assert max(sizes) <= 40, sizes
        assert distinct <= 0.1 * len(muted_payloads), distinct
    else:
        assert statistics.median(sizes) > 40, sizes
        assert distinct >= 0.9 * len(muted_payloads), distinct
    return {
        "rtp_packets": len(rows),
        "rtp_per_second": round(rate, 1),
        "decrypted": decrypted,
        "audio_level_id": level_id,
        "muted_window": window,
        "median_level_muted": statistics.median(levels["muted"]),
        "median_level_unmuted": statistics.median(levels["unmuted"]),
        "distinct_muted_payloads": distinct,
        "median_muted_payload_bytes": statistics.median(sizes),
    }


@needs_tshark
@pytest.mark.parametrize("variant", VARIANTS)
def test_committed_session(variant: str) -> None:
    folder = CAPTURES / COMMITTED[variant]
    assert folder.is_dir(), f"{folder} not recorded"
    check_session(folder, variant)


@needs_chromium
def test_record_session_live(tmp_path: Path) -> None:
    folder = record_session("track-disabled", tmp_path / "session", durations=(2.0, 3.0, 2.0))
    assert folder == tmp_path / "session"
    assert sorted(p.name for p in folder.iterdir()) == sorted(SESSION_FILES)
    stats = check_session(folder, "track-disabled")
    assert stats["rtp_packets"] > 300
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "mutecheck-" not in namespaces


def test_record_session_rejects_unknown_variant(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"lab step 'arguments' failed: .*unknown variant"):
        record_session("no-such-variant", tmp_path)


def test_timeline_document() -> None:
    page = {
        "events": [
            {"t_ms": 1_700_000_000_000.5, "state": "unmuted"},
            {"t_ms": 1_700_000_004_000.0, "state": "muted"},
            {"t_ms": 1_700_000_010_000.0, "state": "unmuted"},
        ],
        "end_ms": 1_700_000_014_000.0,
    }
    assert timeline_document(page) == {
        "version": 1,
        "source": "lab",
        "clock": "epoch",
        "muted": [[1_700_000_004.0, 1_700_000_010.0]],
        "events": [
            {"t": 1_700_000_000.0005, "state": "unmuted"},
            {"t": 1_700_000_004.0, "state": "muted"},
            {"t": 1_700_000_010.0, "state": "unmuted"},
        ],
    }


def test_timeline_document_open_mute_ends_at_scenario_end() -> None:
    page = {"events": [{"t_ms": 1000.0, "state": "muted"}], "end_ms": 3000.0}
    assert timeline_document(page)["muted"] == [[1.0, 3.0]]


def test_host_candidate() -> None:
    sdp = (
        "a=candidate:1 1 udp 2122260223 10.77.0.1 58969 typ host generation 0\r\n"
        "a=candidate:2 1 tcp 1518280447 10.77.0.1 9 typ host tcptype active\r\n"
    )
    assert host_candidate(sdp, "10.77.0.1") == 58969
    assert host_candidate(sdp, "10.77.0.2") is None
