"""The committed corpus: one complete session per variant, each showing on the wire what its way
of muting must show.

Everything is read with the project's own parsers (through ``decoders.lab.summary``); tshark
cross-checks the same captures in test_summary.py.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import statistics
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from decoders.cli.lab import REFERENCE_NAME, Recording, corpus_plan
from decoders.lab.record import (
    GAIN_VARIANTS,
    PEER_REFERENCE_NAME,
    TELEMETRY_VARIANTS,
    VARIANTS,
    session_name,
)
from decoders.lab.summary import (
    GRACE_S,
    LEVEL_SILENCE,
    SessionSummary,
    read_telemetry,
    summarize,
)

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
MAX_CORPUS_BYTES = 9_000_000
GAIN_SESSIONS = [session_name(v) for v in GAIN_VARIANTS]
"""Recorded one at a time with a long muted window (several readings of the study-shaped
telemetry): their own reference and their own budget."""
MAX_GAIN_SESSION_BYTES = 3_200_000
EXTRA = corpus_plan(relays=True, peer_talks=True, video=True)
"""The relayed, peer-talks and video sessions (track-disabled and ui-only each)."""
EXTRA_IDS = [r.name for r in EXTRA]
SessionCheck = Callable[[Path, str], SessionSummary]


@pytest.fixture(scope="module")
def summaries() -> dict[str, SessionSummary]:
    """Each session measured once per module run (a cache filled on first use)."""
    return {}


def summary_of(variant: str, summaries: dict[str, SessionSummary]) -> SessionSummary:
    if variant not in summaries:
        summaries[variant] = summarize(CAPTURES / session_name(variant))
    return summaries[variant]


def test_every_variant_is_recorded_and_the_corpus_is_small() -> None:
    folders = sorted(p.name for p in CAPTURES.glob("chromium-*") if p.is_dir())
    expected = [session_name(v) for v in VARIANTS] + EXTRA_IDS + GAIN_SESSIONS
    assert folders == sorted(expected)
    # the Janus (janus-*) and Firefox (firefox-*) sessions have their own budgets
    # (tests/lab/test_janus.py, tests/lab/test_firefox.py), and so do the long telemetry-gains
    # sessions (test_the_gains_session_sends_max_mean_min_readings)
    files = [
        p
        for p in CAPTURES.rglob("*")
        if p.is_file()
        and not p.relative_to(CAPTURES).parts[0].startswith(("janus-", "firefox-"))
        and p.relative_to(CAPTURES).parts[0] not in GAIN_SESSIONS
    ]
    assert sum(p.stat().st_size for p in files) <= MAX_CORPUS_BYTES
    # one reference signal, shared; one peer speech, shared by the peer-talks sessions
    assert [p.name for p in files].count(REFERENCE_NAME) == 1
    assert (CAPTURES / REFERENCE_NAME).is_file()
    assert [p.name for p in files].count(PEER_REFERENCE_NAME) == 1
    assert (CAPTURES / PEER_REFERENCE_NAME).is_file()


@pytest.mark.parametrize("variant", VARIANTS)
def test_session_is_complete(
    variant: str, check_session: SessionCheck, summaries: dict[str, SessionSummary]
) -> None:
    folder = CAPTURES / session_name(variant)
    summaries[variant] = check_session(folder, variant)
    session = json.loads((folder / "session.json").read_text())
    assert session["reference"]["file"] == f"../{REFERENCE_NAME}"
    durations = session["scenario"]["durations_s"]
    assert sum(durations) <= 20
    assert session["wall_time_s"] < 30


def assert_sends_silence(summary: SessionSummary) -> None:
    """50 packets/s of one repeated small silence frame, audio level 127 on every packet."""
    muted = summary.muted
    assert 45 <= muted.packets_per_second <= 55, muted.packets_per_second
    assert set(muted.audio_levels) == {LEVEL_SILENCE}
    assert max(muted.payload_bytes) <= 40, muted.payload_bytes
    # the encoder settles on one frame after a few packets
    assert muted.distinct_payloads <= 0.1 * muted.rtp_packets


def assert_sends_speech(summary: SessionSummary) -> None:
    """50 packets/s of changing coded audio with audio levels below silence."""
    muted = summary.muted
    assert 45 <= muted.packets_per_second <= 55, muted.packets_per_second
    assert muted.audio_levels.count(LEVEL_SILENCE) < 0.1 * len(muted.audio_levels)
    assert muted.distinct_payloads >= 0.9 * muted.rtp_packets
    assert muted.payload_median is not None and muted.payload_median > 40


@pytest.mark.parametrize("variant", ["track-disabled", "gain-zero"])
def test_silence_keeps_flowing(variant: str, summaries: dict[str, SessionSummary]) -> None:
    assert_sends_silence(summary_of(variant, summaries))
    assert summary_of(variant, summaries).muted.telemetry_messages == 0


@pytest.mark.parametrize("variant", ["track-stopped", "replace-null"])
def test_no_rtp_while_muted(variant: str, summaries: dict[str, SessionSummary]) -> None:
    summary = summary_of(variant, summaries)
    assert summary.muted.rtp_packets == 0
    assert summary.muted.seconds > 2
    assert summary.muted.stun_packets > 0  # the connection itself stays up (ICE consent)
    # and it comes back after unmuting, on the same stream
    assert 45 <= summary.unmuted.packets_per_second <= 55
    assert len(summary.browser_ssrcs) == 1


def test_ui_only_leaks_speech(summaries: dict[str, SessionSummary]) -> None:
    summary = summary_of("ui-only", summaries)
    assert_sends_speech(summary)
    muted, unmuted = summary.muted, summary.unmuted
    assert muted.level_median is not None and unmuted.level_median is not None
    assert muted.level_median < 45  # speech level, as loud as unmuted
    assert abs(muted.level_median - unmuted.level_median) <= 6


def test_quiet_leaks_quieter_speech(summaries: dict[str, SessionSummary]) -> None:
    summary = summary_of("quiet", summaries)
    assert_sends_speech(summary)
    muted, unmuted = summary.muted, summary.unmuted
    assert muted.level_median is not None and unmuted.level_median is not None
    # ~30 dB quieter (gain 0.03): above silence, well below the unmuted level
    assert unmuted.level_median + 15 <= muted.level_median < LEVEL_SILENCE - 20


def test_dtx_sends_few_tiny_packets(summaries: dict[str, SessionSummary]) -> None:
    summary = summary_of("dtx", summaries)
    muted = summary.muted
    assert 0 < muted.packets_per_second < 10, muted.packets_per_second
    assert min(muted.payload_bytes) <= 2  # DTX frames of a byte or two
    assert muted.payload_median is not None and muted.payload_median <= 32
    assert set(muted.audio_levels) == {LEVEL_SILENCE}
    session = json.loads((CAPTURES / "chromium-dtx" / "session.json").read_text())
    assert session["peer"]["answered_opus_dtx"] is True
    answer = (CAPTURES / "chromium-dtx" / "answer.sdp").read_text()
    assert "usedtx=1" in answer


@pytest.mark.parametrize("variant", TELEMETRY_VARIANTS)
def test_telemetry_leaks_levels(variant: str, summaries: dict[str, SessionSummary]) -> None:
    summary = summary_of(variant, summaries)
    assert_sends_silence(summary)  # the media is muted properly...
    muted = summary.muted
    # ...but the level of a cloned track goes out every 500 ms
    assert muted.telemetry_messages >= muted.seconds / 0.5 - 1
    assert len(muted.telemetry_levels) == muted.telemetry_messages
    # real microphone levels: never digital silence (pauses read the -60 dBFS noise floor)
    assert all(level > 0.0005 for level in muted.telemetry_levels)
    assert statistics.median(muted.telemetry_levels) > 0.01
    assert len(set(muted.telemetry_levels)) > muted.telemetry_messages // 2  # they change
    folder = CAPTURES / session_name(variant)
    timeline = json.loads((folder / "timeline.json").read_text())
    (window,) = timeline["muted"]
    transport = "http" if variant == "telemetry-http" else "websocket"
    for line in (folder / "peer-telemetry.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert record["transport"] == transport
        message = record["message"]
        assert set(message) >= {"audioLevel", "muted"}
        if window[0] + GRACE_S <= record["t"] <= window[1] - GRACE_S:
            assert message["muted"] is True
    assert len(read_telemetry(folder / "peer-telemetry.jsonl")) >= summary.unmuted.seconds / 0.5
    session = json.loads((folder / "session.json").read_text())
    assert session["page"]["telemetry_sent"] == session["peer"]["telemetry_received"]
    if session["proxy"]["addon"]:  # the addon saw them pass the proxy, and flagged them
        events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
        flagged = [
            e
            for e in events
            if e.get("kind") == "telemetry"
            and window[0] + GRACE_S <= e["t"] <= window[1] - GRACE_S
            and e.get("muted") is True
            and e.get("finding") is True
        ]
        assert len(flagged) >= muted.seconds / 0.5 - 1
        assert any(
            e.get("kind") == "warning" and e.get("code") == "telemetry-while-muted" for e in events
        )


@pytest.mark.parametrize("variant", GAIN_VARIANTS)
def test_the_gains_session_sends_max_mean_min_readings(
    variant: str, check_session: SessionCheck
) -> None:
    """The study's client in the lab page: media muted properly, but once per period the
    max, mean and min of the microphone's level go out, muted or not; the addon flags every
    reading sent while muted, and the muted window holds several of them."""
    folder = CAPTURES / session_name(variant)
    summary = check_session(folder, variant)
    assert_sends_silence(summary)
    assert sum(p.stat().st_size for p in folder.iterdir()) <= MAX_GAIN_SESSION_BYTES
    session = json.loads((folder / "session.json").read_text())
    period = session["page"]["gain_period_s"]
    (window,) = json.loads((folder / "timeline.json").read_text())["muted"]
    received = [json.loads(line) for line in (folder / "peer-telemetry.jsonl").open()]
    assert len(received) == session["page"]["telemetry_sent"]
    times = [r["t"] for r in received]
    assert all(abs(b - a - period) < 0.5 for a, b in itertools.pairwise(times))
    muted = [r for r in received if window[0] + GRACE_S <= r["t"] <= window[1] - GRACE_S]
    assert len(muted) >= 3 and all(r["message"]["muted"] is True for r in muted)
    for record in received:
        message = record["message"]
        assert record["transport"] == "http" and "audioLevel" not in message
        top, middle, bottom = (message[f"audio{n}Gain"] for n in ("Max", "Mean", "Min"))
        assert 60 >= top >= middle >= bottom >= 0 and top > bottom
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    flagged = [
        e
        for e in events
        if e.get("kind") == "telemetry"
        and window[0] + GRACE_S <= e["t"] <= window[1] - GRACE_S
        and e.get("finding") is True
    ]
    assert len(flagged) == len(muted)
    assert all(
        {f["path"] for f in e["fields"]} >= {"audioMaxGain", "audioMeanGain", "audioMinGain"}
        for e in flagged
    )


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v not in TELEMETRY_VARIANTS])
def test_no_telemetry_elsewhere(variant: str) -> None:
    assert not (CAPTURES / session_name(variant) / "peer-telemetry.jsonl").exists()


# -- relayed, peer-talks and video sessions -------------------------------------------------------
def extra_summary(recording: Recording, summaries: dict[str, SessionSummary]) -> SessionSummary:
    if recording.name not in summaries:
        summaries[recording.name] = summarize(CAPTURES / recording.name)
    return summaries[recording.name]


def tshark_fields(capture: Path, display_filter: str, *fields: str) -> list[list[str]]:
    """tshark's fields per frame matching `display_filter` (the independent reader)."""
    command = ["tshark", "-r", str(capture), "-d", "tcp.port==5349,tls", "-Y", display_filter]
    command += ["-T", "fields", *(part for field in fields for part in ("-e", field))]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    return [line.split("\t") for line in result.stdout.splitlines() if line]


@pytest.mark.parametrize("recording", EXTRA, ids=EXTRA_IDS)
def test_extra_session_is_complete_and_judged_by_its_packets(
    recording: Recording, check_session: SessionCheck, summaries: dict[str, SessionSummary]
) -> None:
    folder = CAPTURES / recording.name
    summary = check_session(folder, recording.variant)
    summaries[recording.name] = summary
    session = json.loads((folder / "session.json").read_text())
    assert session["reference"]["file"] == f"../{REFERENCE_NAME}"
    assert session["relay"]["transport"] == recording.relay
    assert session["scenario"]["peer_talks"] is recording.peer_talks
    assert session["scenario"]["video"] is recording.video
    assert session["wall_time_s"] < 30
    # what the browser sent while muted, from its own packets (decrypted, or its plaintext dump)
    if recording.variant == "ui-only":
        assert_sends_speech(summary)
    else:
        assert_sends_silence(summary)
    assert summary.source == ("rtpdump" if recording.relay in ("tcp", "tls") else "capture")


@pytest.mark.parametrize("recording", [r for r in EXTRA if r.relay != "none"], ids=lambda r: r.name)
def test_relayed_session_goes_through_coturn(recording: Recording) -> None:
    folder = CAPTURES / recording.name
    session = json.loads((folder / "session.json").read_text())
    relay = session["relay"]
    port = 5349 if recording.relay == "tls" else 3478
    assert relay["port"] == port and relay["address"] == session["network"]["peer"]["address"]
    assert relay["ice_transport_policy"] == "relay"
    assert relay["url"].startswith("turns:" if recording.relay == "tls" else "turn:")
    assert relay["through_proxy"] is (recording.relay != "udp")
    assert ("10.77.0.2:" + str(port) in session["proxy"]["allowed"]) is (recording.relay != "udp")
    capture = folder / "capture.pcapng"
    # every media packet of the call crosses the veth to or from the TURN port, nothing else
    assert tshark_fields(capture, f"!(udp.port=={port} || tcp.port=={port})", "frame.number") == []
    if recording.relay == "udp":
        # ChannelData (and Send/Data indications before the channel is bound) around SRTP
        summary = summarize(folder)
        assert summary.datagrams["turn-channel"] > 600
        assert summary.datagrams.get("turn-send", 0) + summary.datagrams.get("turn-data", 0) > 0
        assert summary.srtp_decrypted >= summary.browser_rtp_packets > 600
        return
    # TCP or TLS from the proxy (the browser's CONNECT tunnel) to coturn
    assert tshark_fields(capture, "udp", "frame.number") == []
    streams = tshark_fields(capture, f"tcp.dstport=={port} && tcp.len>0", "tcp.stream")
    assert len({stream for (stream,) in streams}) == 1
    assert len(streams) > 600  # a TURN message per segment, ~50/s each way
    dumped = summarize(folder)
    if recording.relay == "tcp":
        # TURN framing on the wire: ChannelData headers (0x40-0x4f) start the browser's segments
        firsts = Counter(
            int(payload[:2], 16) >> 4
            for (payload,) in tshark_fields(
                capture, f"tcp.dstport=={port} && tcp.len>0", "tcp.payload"
            )
        )
        assert firsts[4] >= dumped.browser_rtp_packets - 5
    else:
        # about one TLS application-data record (content type 23) per relayed message: this is
        # mitmproxy's own TLS to coturn, and it writes what it read at once, so messages that
        # reached it together share a record (~5-10 % here)
        records = tshark_fields(
            capture,
            f"tcp.dstport=={port} && tls.record.content_type==23",
            "tls.record.content_type",
        )
        count = sum(len(r[0].split(",")) for r in records)
        assert count >= 0.85 * dumped.browser_rtp_packets


@pytest.mark.parametrize("recording", [r for r in EXTRA if r.peer_talks], ids=lambda r: r.name)
def test_peer_talks_back_the_whole_call(
    recording: Recording, summaries: dict[str, SessionSummary]
) -> None:
    folder = CAPTURES / recording.name
    summary = extra_summary(recording, summaries)
    # both directions carry speech: the other participant talks while the user is muted
    muted = summary.muted
    assert len(muted.peer_audio_levels) >= 45 * muted.seconds
    assert statistics.median(muted.peer_audio_levels) < 45
    assert statistics.median(summary.unmuted.peer_audio_levels) < 45
    assert "a=sendrecv" in (folder / "answer.sdp").read_text()
    keys = json.loads((folder / "keys.json").read_text())
    assert len(keys["peer"]["ssrcs"]) >= 1
    session = json.loads((folder / "session.json").read_text())
    sent = session["peer"]["sent_speech"]
    assert sent["file"] == f"../{PEER_REFERENCE_NAME}"
    speech = (folder / sent["file"]).resolve().read_bytes()
    assert hashlib.sha256(speech).hexdigest() == sent["sha256"]
    assert speech != (CAPTURES / REFERENCE_NAME).read_bytes()


@pytest.mark.parametrize("recording", [r for r in EXTRA if r.video], ids=lambda r: r.name)
def test_video_session_has_audio_video_and_rtx(
    recording: Recording, summaries: dict[str, SessionSummary]
) -> None:
    folder = CAPTURES / recording.name
    summary = extra_summary(recording, summaries)
    others = dict(summary.other_browser_rtp)
    assert len(summary.browser_ssrcs) + len(others) >= 3
    offer = (folder / "offer.sdp").read_text()
    (group,) = [line for line in offer.splitlines() if line.startswith("a=ssrc-group:FID ")]
    video_ssrc, rtx_ssrc = (int(x) for x in group.split()[1:])
    assert set(others) == {video_ssrc, rtx_ssrc}
    assert others[video_ssrc] > 150  # VP8 frames, ~19 packets/s at 320x240
    assert others[rtx_ssrc] >= 1  # retransmissions and padding probes on the RTX SSRC
    answer = (folder / "answer.sdp").read_text()
    assert "VP8/90000" in answer and "apt=" in answer
    assert "a=ssrc-group:FID " in answer  # aiortc names its own (unused) video + RTX pair too
    session = json.loads((folder / "session.json").read_text())
    assert session["peer"]["video_frames_received"] > 100
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1_000_000
