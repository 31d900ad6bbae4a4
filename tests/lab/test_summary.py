"""The lab's session summary: phases, telemetry, and agreement with tshark on every session.

tshark is the independent check: with decode-as on the peer's media port it shows the RTP
header fields and RFC 8285 extension elements; the summary (our own parsers) must count the same
packets and read the same audio levels and payload sizes.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from decoders.lab.summary import (
    GRACE_S,
    PhaseStats,
    _phase_of,
    read_telemetry,
    srtp_session,
    summarize,
    summary_line,
)

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
SESSIONS = sorted(p for p in CAPTURES.glob("chromium-*") if (p / "session.json").is_file())


def relay_of(folder: Path) -> str:
    session = json.loads((folder / "session.json").read_text())
    return str(session.get("relay", {}).get("transport", "none"))


DIRECT = [p for p in SESSIONS if relay_of(p) == "none"]
"""Sessions whose media went straight between the namespaces (tshark reads them as RTP)."""
RELAYED_UDP = [p for p in SESSIONS if relay_of(p) == "udp"]


def test_phase_of() -> None:
    window, span = (10.0, 16.0), (6.0, 20.0)
    assert _phase_of(5.0, window, span) is None  # before the scenario
    assert _phase_of(6.0 + GRACE_S / 2, window, span) is None  # its first instant
    assert _phase_of(8.0, window, span) == "unmuted"
    assert _phase_of(10.0 + GRACE_S / 2, window, span) is None  # the mute transition
    assert _phase_of(10.0 + GRACE_S, window, span) == "muted"
    assert _phase_of(15.9, window, span) is None
    assert _phase_of(16.5, window, span) == "unmuted"
    assert _phase_of(19.9, window, span) is None


def test_read_telemetry(tmp_path: Path) -> None:
    path = tmp_path / "peer-telemetry.jsonl"
    assert read_telemetry(path) == []
    lines = [
        {"t": 1.5, "transport": "http", "path": "/telemetry", "message": {"audioLevel": 0.25}},
        {"t": 2.0, "transport": "websocket", "path": "/ws", "message": {"other": 1}},
        {"t": 2.5, "transport": "websocket", "path": "/ws", "raw": "AAE="},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert read_telemetry(path) == [(1.5, 0.25), (2.0, None), (2.5, None)]


def test_phase_stats() -> None:
    stats = PhaseStats("muted", 2.0, 4, (32, 32, 1, 40), (127, 127, 127, 20), 3, 1, (0.5,))
    assert stats.packets_per_second == 2.0
    assert stats.payload_median == 32 and stats.level_median == 127
    document = stats.as_dict()
    assert document["payload_bytes"] == {"min": 1, "median": 32.0, "max": 40}
    assert document["audio_level_silent_share"] == 0.75
    assert document["telemetry_level_median"] == 0.5
    assert (document["rtcp_packets"], document["stun_packets"]) == (0, 0)
    empty = PhaseStats("muted", 0.0, 0, (), (), 0, 0, ())
    assert empty.packets_per_second == 0.0 and empty.payload_median is None
    assert empty.as_dict()["audio_level_silent_share"] is None


def test_srtp_profiles() -> None:
    keys = {"master_key": "AAAAAAAAAAAAAAAAAAAAAA==", "master_salt": "AAAAAAAAAAAAAAAAAAA="}
    for name in ("SRTP_AES128_CM_SHA1_80", "SRTP_AES128_CM_SHA1_32"):
        assert srtp_session(keys, name) is not None
    with pytest.raises(ValueError, match="unknown SRTP suite"):
        srtp_session(keys, "SRTP_NULL_HMAC_SHA1_80")


def tshark_browser_rtp(folder: Path) -> list[tuple[int, int, int]]:
    """(sequence number, audio level, encrypted payload bytes) per browser audio packet."""
    session = json.loads((folder / "session.json").read_text())
    browser = session["network"]["browser"]["address"]
    port = session["network"]["peer"]["ice_udp_port"]
    summary = summarize(folder)
    summary_id = summary.audio_level_id
    (ssrc,) = summary.browser_ssrcs  # its audio (a video session sends video and RTX too)
    command = [
        *("tshark", "-n", "-r", str(folder / "capture.pcapng")),
        *("-d", f"udp.port=={port},rtp", "-Y", f"rtp.ssrc == {ssrc} && ip.src=={browser}"),
        *("-T", "fields", "-E", "separator=\t"),
        *("-e", "rtp.seq", "-e", "rtp.ext.rfc5285.id", "-e", "rtp.ext.rfc5285.data"),
        *("-e", "srtp.enc_payload"),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    rows = []
    for line in output.stdout.splitlines():
        seq, ids, data, payload = line.split("\t")
        id_list = [int(i) for i in ids.split(",") if i]
        data_list = [bytes.fromhex(d.replace(":", "")) for d in data.split(",") if d]
        level = data_list[id_list.index(summary_id)][0] & 0x7F if summary_id in id_list else -1
        size = len(bytes.fromhex(payload.replace(":", "")))
        rows.append((int(seq), level, size))
    return rows


@pytest.mark.parametrize("folder", DIRECT, ids=[p.name for p in DIRECT])
def test_agrees_with_tshark(folder: Path, tshark: str) -> None:
    summary = summarize(folder)
    rows = tshark_browser_rtp(folder)
    assert len(rows) == summary.browser_rtp_packets
    assert all(level >= 0 for _, level, _ in rows)  # tshark too sees the level on every packet
    # the phases are subsets of all packets: their levels and sizes occur in tshark's rows
    levels = Counter(level for _, level, _ in rows)
    sizes = Counter(size for _, _, size in rows)
    for phase in (summary.unmuted, summary.muted):
        assert not Counter(phase.audio_levels) - levels
        assert not Counter(phase.payload_bytes) - sizes


@pytest.mark.parametrize("folder", RELAYED_UDP, ids=[p.name for p in RELAYED_UDP])
def test_relayed_udp_agrees_with_tshark(folder: Path, tshark: str) -> None:
    """tshark's TURN dissector counts the browser's ChannelData messages: every RTP packet the
    summary decrypted travelled in one, beside a few RTCP and STUN ones."""
    summary = summarize(folder)
    command = [*("tshark", "-n", "-r", str(folder / "capture.pcapng"))]
    command += [*("-Y", "ip.src==10.77.0.1 && stun.channel", "-T", "fields", "-e", "stun.channel")]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    channels = output.stdout.split()
    assert summary.browser_rtp_packets <= len(channels) <= summary.browser_rtp_packets + 60
    assert len(set(channels)) == 1  # one channel bound to the peer


def test_summary_line() -> None:
    summary = summarize(CAPTURES / "chromium-ui-only")
    line = summary_line(summary)
    assert line.startswith("ui-only: muted 50.0 pkt/s (unmuted 50.0), payload median ")
    assert "failures 0" in line
    assert summary.as_dict()["muted"]["rtp_packets"] == summary.muted.rtp_packets
