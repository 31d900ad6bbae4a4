"""What every lab session must hold, shared by the live recording tests and the corpus tests."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from decoders.lab.record import REQUIRED_FILES, host_candidate
from decoders.lab.summary import SessionSummary, summarize
from decoders.lab.turn import RELAY_PORTS, relay_candidates
from decoders.session.sdp import AUDIO_LEVEL_URI, audio_level_extension_id, parse_sdp

SessionCheck = Callable[[Path, str], SessionSummary]


def addon_events(folder: Path, kind: str) -> list[dict[str, Any]]:
    """The addon's events of one kind from events.jsonl (docs/session-format.md)."""
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    return [event for event in events if event.get("kind") == kind]


def extmap_line(level_id: int) -> str:
    return f"a=extmap:{level_id} {AUDIO_LEVEL_URI}"


def assert_complete_session(folder: Path, variant: str) -> SessionSummary:
    """Assert `folder` is a complete lab session of `variant`; return its summary."""
    for name in REQUIRED_FILES:
        assert (folder / name).is_file(), f"{name} missing"
    session = json.loads((folder / "session.json").read_text())
    timeline = json.loads((folder / "timeline.json").read_text())
    keys = json.loads((folder / "keys.json").read_text())
    offer_text = (folder / "offer.sdp").read_bytes().decode()
    answer_text = (folder / "answer.sdp").read_bytes().decode()
    offer = parse_sdp(offer_text)

    # the manifest: every file it lists is there, byte for byte, and so is the reference
    assert session["version"] == 1 and session["variant"] == variant
    for entry in session["files"]:
        data = (folder / entry["name"]).read_bytes()
        assert len(data) == entry["bytes"], entry["name"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["name"]
    reference = (folder / session["reference"]["file"]).resolve()
    assert reference.is_file(), reference
    assert hashlib.sha256(reference.read_bytes()).hexdigest() == session["reference"]["sha256"]

    # the ground-truth timeline, as the page reported it
    durations = session["scenario"]["durations_s"]
    assert {k: timeline[k] for k in ("version", "source", "clock")} == {
        "version": 1,
        "source": "lab",
        "clock": "epoch",
    }
    events = timeline["events"]
    assert [e["state"] for e in events] == ["unmuted", "muted", "unmuted"]
    assert all(e["t"] <= e["applied"] < e["t"] + 1.0 for e in events)
    (window,) = timeline["muted"]
    assert window == [events[1]["t"], events[2]["t"]]
    assert abs((window[1] - window[0]) - durations[1]) < 0.3
    assert abs((events[1]["t"] - events[0]["t"]) - durations[0]) < 0.3
    assert session["scenario"]["start"] == events[0]["t"]
    assert abs((session["scenario"]["end"] - events[2]["t"]) - durations[2]) < 0.3

    # secrets: SRTP master keys for both directions, and the DTLS key log
    assert keys["version"] == 1 and keys["profile"] == "SRTP_AES128_CM_SHA1_80"
    assert keys["dtls_role_browser"] in ("client", "server")
    for half in ("browser", "peer"):
        assert len(base64.b64decode(keys[half]["master_key"])) == 16
        assert len(base64.b64decode(keys[half]["master_salt"])) == 14
    # the browser's audio SSRC, and (with video) its video and RTX SSRCs, all from its offer
    offered = {ssrc for section in offer.media for ssrc in section.ssrcs}
    assert set(offer.audio[0].ssrcs) <= set(keys["browser"]["ssrcs"]) <= offered
    keylog = (folder / "keylog.txt").read_text()
    assert re.fullmatch(r"(CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}\n)+", keylog), keylog

    # the SDP: the audio-level extension negotiated, in the addon's events or the SDP files
    level_id = audio_level_extension_id(offer)
    assert level_id is not None
    assert audio_level_extension_id(parse_sdp(answer_text)) == level_id
    if session["proxy"]["addon"]:
        # the addon saw the offer and the answer pass the proxy, with the extmap...
        sdps = addon_events(folder, "sdp")
        assert {e.get("role") for e in sdps} >= {"offer", "answer"}
        for event in sdps:
            assert extmap_line(level_id) in event["sdp"]
            assert event["parsed"]["audio_level_extension_id"] == level_id
        # ...and the page's marks, at the ground truth's times
        marks = [e for e in addon_events(folder, "mute") if e.get("source") == "mark"]
        assert [e["state"] for e in marks] == [e["state"] for e in events]
        assert all(abs(m["at"] - e["t"]) < 0.001 for m, e in zip(marks, events, strict=True))
    assert extmap_line(level_id) in offer_text

    browser = session["network"]["browser"]
    peer = session["network"]["peer"]
    relay = session.get("relay", {"transport": "none"})
    assert host_candidate(offer_text, browser["address"]) == browser["ice_udp_port"]
    if relay["transport"] != "none":  # relay only: the browser offers coturn's addresses alone
        assert browser["ice_udp_port"] is None
        candidates = relay["browser_candidates"]
        assert candidates and candidates == relay_candidates(offer_text)
        assert all(c["address"] == relay["address"] == peer["address"] for c in candidates)
        assert all(RELAY_PORTS[0] <= c["port"] <= RELAY_PORTS[1] for c in candidates)
    assert host_candidate(answer_text, peer["address"]) == peer["ice_udp_port"]
    allowed = session["proxy"]["allowed"]
    assert all(f"{r['host']}:{r['port']}" not in allowed for r in session["proxy"]["refused"])

    # the capture: RTP carrying the audio level, and keys that decrypt every SRTP/SRTCP packet
    # (relayed over TCP/TLS: Chromium's plaintext dump of the same packets, see summary.py)
    summary = summarize(folder)
    assert summary.audio_level_id == level_id
    assert summary.browser_ssrcs == tuple(sorted(offer.audio[0].ssrcs))
    others = {ssrc for ssrc, _ in summary.other_browser_rtp}
    assert set(summary.browser_ssrcs) | others == set(keys["browser"]["ssrcs"])
    assert summary.browser_rtp_packets > 100
    assert summary.rtp_with_audio_level == summary.browser_rtp_packets
    assert summary.srtp_failures == 0
    if summary.source == "capture":
        assert summary.srtp_decrypted == summary.datagrams["rtp"] + summary.datagrams["rtcp"]
        assert summary.datagrams.get("stun", 0) > 0 and summary.datagrams.get("dtls", 0) >= 4
    else:
        assert relay["protocol"] == "tcp" and summary.source == "rtpdump"
        assert summary.srtp_decrypted == 0
    # unmuted, every variant sends speech at 50 packets/s
    unmuted = summary.unmuted
    assert 45 <= unmuted.packets_per_second <= 55, unmuted.packets_per_second
    assert unmuted.level_median is not None and unmuted.level_median < 45
    assert unmuted.payload_median is not None and unmuted.payload_median > 50
    return summary


@pytest.fixture
def check_session() -> SessionCheck:
    """:func:`assert_complete_session`, for test modules (they cannot import each other)."""
    return assert_complete_session
