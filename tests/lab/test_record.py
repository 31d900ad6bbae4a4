"""The lab records complete sessions live, cleans up after itself, and fails naming the step.

The live tests record from scratch (real Chromium, mitmdump, aiortc, dumpcap in network
namespaces): one silent variant and one leaking variant, one relayed through coturn over TCP,
then runs that fail on purpose. They need root, Chromium, dumpcap, espeak-ng, sox and coturn,
and are skipped only when Chromium is missing and the CI variable is unset.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from decoders.audit.analysis import Inputs, analyze
from decoders.lab import record
from decoders.lab.record import (
    CHROMIUM,
    OPTIONAL_FILES,
    REQUIRED_FILES,
    LabError,
    _place_reference,
    _refused_summary,
    capture_filter,
    host_candidate,
    mitmdump_command,
    page_query,
    record_session,
    session_name,
    timeline_document,
)
from decoders.lab.summary import LEVEL_SILENCE, SessionSummary
from decoders.lab.turn import TURN_PORT

needs_chromium = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK) and not os.environ.get("CI"),
    reason="chromium not installed",
)
LIVE_DURATIONS = (2.0, 3.0, 2.0)


def leftovers() -> list[str]:
    """Network namespaces and processes of this test process's lab runs that should be gone.

    Only ours: the namespaces and work folders carry the recording process's pid in their tag
    (``mutecheck-b-<pid>-…``, ``mutecheck-lab-<pid>-…``), and a process the lab failed to stop
    is still our child; another lab run on the same machine is none of these.
    """
    pid = os.getpid()
    namespaces = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False
    ).stdout
    found = [
        line
        for line in namespaces.splitlines()
        if line.startswith("mutecheck-") and f"-{pid}-" in line.split()[0]
    ]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        ours = parent == pid or f"mutecheck-lab-{pid}-" in cmdline
        if ours and ("mutecheck-lab-" in cmdline or "decoders.lab.peer" in cmdline):
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


@pytest.fixture(scope="module")
def live_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the live recordings of this module share (and their shared reference)."""
    return tmp_path_factory.mktemp("live-corpus")


@needs_chromium
@pytest.mark.parametrize("variant", ["track-disabled", "ui-only"])
def test_record_live(
    variant: str, live_corpus: Path, check_session: Callable[[Path, str], SessionSummary]
) -> None:
    target = live_corpus / f"chromium-{variant}"
    folder = record_session(
        variant, target, LIVE_DURATIONS, shared_reference=live_corpus / "reference.wav"
    )
    assert folder == target
    names = {p.name for p in folder.iterdir()}
    assert set(REQUIRED_FILES) <= names <= set(REQUIRED_FILES) | set(OPTIONAL_FILES)
    assert "reference.wav" not in names  # the shared one is used
    session = json.loads((folder / "session.json").read_text())
    assert session["reference"]["file"] == "../reference.wav"
    assert session["scenario"]["durations_s"] == list(LIVE_DURATIONS)
    summary = check_session(folder, variant)
    muted = summary.muted
    assert 45 <= muted.packets_per_second <= 55
    if variant == "track-disabled":  # silent: every muted packet says silence
        assert set(muted.audio_levels) == {LEVEL_SILENCE}
        assert muted.distinct_payloads <= 0.2 * muted.rtp_packets
    else:  # leaking: speech levels while muted, like unmuted
        assert muted.level_median is not None and muted.level_median < 45
        assert muted.distinct_payloads >= 0.9 * muted.rtp_packets
    assert leftovers() == []


@needs_chromium
def test_record_relay_tcp_live(
    live_corpus: Path, check_session: Callable[[Path, str], SessionSummary]
) -> None:
    """Through coturn over TCP, via the proxy's CONNECT: the whole session, from scratch."""
    target = live_corpus / "chromium-track-disabled-relay-tcp"
    folder = record_session(
        "track-disabled",
        target,
        LIVE_DURATIONS,
        shared_reference=live_corpus / "reference.wav",
        relay="tcp",
        rtpdump=True,  # the ground truth of what went through the relay
    )
    # complete: SDP and the page's marks in events.jsonl, timeline, keys, relay candidates
    summary = check_session(folder, "track-disabled")
    assert summary.source == "rtpdump"
    assert set(summary.muted.audio_levels) == {LEVEL_SILENCE}
    assert 45 <= summary.muted.packets_per_second <= 55
    session = json.loads((folder / "session.json").read_text())
    assert session["relay"]["transport"] == "tcp" and session["relay"]["port"] == TURN_PORT
    assert f"10.77.0.2:{TURN_PORT}" in session["proxy"]["allowed"]
    assert all(r["port"] != TURN_PORT for r in session["proxy"]["refused"])
    # the capture: the proxy's one TCP connection to coturn's port, carrying the call
    command = ["tshark", "-r", str(folder / "capture.pcapng"), "-T", "fields", "-e", "tcp.dstport"]
    command += ["-Y", "tcp.len > 0 && ip.src == 10.77.0.1"]
    ports = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    assert set(ports) == {str(TURN_PORT)}
    assert len(ports) >= summary.browser_rtp_packets
    udp = subprocess.run(
        ["tshark", "-r", str(folder / "capture.pcapng"), "-Y", "udp"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert udp == ""  # relay only: no direct media
    # the addon read the relayed media live, inside the proxy's CONNECT tunnel: the browser's
    # stream over TURN/TCP, silent in the muted window, and the connection's relay summary
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    media = [e for e in events if e.get("kind") == "media"]
    streams = [e for e in media if e.get("phase") == "stream"]
    assert streams and all(e["transport"] == "turn-tcp" for e in streams)
    assert {e["turn_server"] for e in streams} == {f"10.77.0.2:{TURN_PORT}"}
    windows = [e for e in media if e.get("phase") == "muted-window"]
    assert sum(e["packets"] for e in windows) >= 0.8 * 50 * LIVE_DURATIONS[1]
    # silent in the muted window: the unmuted speech that reaches the addon after the page's
    # unmute click but before its mark (an HTTP request racing the media through the same
    # proxy) is held (mutecheck_hold_ms) and taken back by the mark's own time
    assert sum(e["not_silent"] for e in windows) == 0
    assert not [e for e in events if e.get("code") == "media-while-muted"]
    (relayed,) = [e for e in media if e.get("phase") == "relay"]
    assert relayed["sent"]["messages"] >= summary.browser_rtp_packets
    assert relayed["sent"]["skipped_bytes"] == 0
    # and the capture alone is judged from the RTP inside TURN over TCP: a real mute, no leak
    verdict = analyze(Inputs(session_dir=folder))
    assert verdict.verdict.verdict == "no-leak", verdict.verdict.reason
    assert verdict.media is not None
    judged = [s for s in verdict.media.streams if s.judged]
    assert judged and all(s.src == "10.77.0.1" for s in judged)
    assert leftovers() == []


@needs_chromium
def test_turn_server_that_never_comes_up_fails_its_step_and_keeps_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from decoders.lab import turn

    monkeypatch.setattr(turn, "READY_LINE", "a line coturn never writes")
    monkeypatch.setattr(record, "TURN_READY_TIMEOUT_S", 2.0)
    with pytest.raises(LabError, match=r"turnserver not ready after 2 s") as failure:
        record_session("ui-only", tmp_path / "s", LIVE_DURATIONS, relay="udp")
    assert failure.value.step == "turn server"
    log = (tmp_path / "s" / record.TURN_LOG).read_text()
    assert "Coturn" in log and "UDP listener opened on: 10.77.0.2:3478" in log
    assert not (tmp_path / "s" / "session.json").exists()
    assert leftovers() == []


@needs_chromium
def test_failed_run_names_the_step_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a variant the page does not know: the page reports an error before it makes an offer
    monkeypatch.setattr(record, "PAGE_VARIANTS", (*record.PAGE_VARIANTS, "no-such-variant"))
    with pytest.raises(LabError, match=r"unknown variant no-such-variant") as failure:
        record_session("no-such-variant", tmp_path / "s", LIVE_DURATIONS)
    assert failure.value.step == "browser"
    assert str(failure.value).startswith("lab step 'browser' failed: ")
    assert leftovers() == []
    assert not (tmp_path / "s" / "session.json").exists()


@needs_chromium
def test_broken_addon_fails_the_proxy_step(tmp_path: Path) -> None:
    addon = tmp_path / "broken.py"
    addon.write_text('raise RuntimeError("boom")\n')
    with pytest.raises(LabError, match=r"script failed to load: .*boom") as failure:
        record_session("ui-only", tmp_path / "s", LIVE_DURATIONS, addon=addon)
    assert failure.value.step == "proxy"
    assert leftovers() == []


def test_rejects_unknown_variant_and_bad_durations(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"lab step 'arguments' failed: .*unknown variant"):
        record_session("no-such-variant", tmp_path / "a")
    with pytest.raises(LabError, match=r"durations must be three seconds values"):
        record_session("ui-only", tmp_path / "b", (1.0, 0.0, 1.0))
    with pytest.raises(LabError, match=r"muted in \(0, 600\], got \(61.0, 6.0, 4.0\)"):
        record_session("ui-only", tmp_path / "f", (61.0, 6.0, 4.0))
    with pytest.raises(LabError, match=r"lab step 'arguments' failed: .*unknown relay 'sctp'"):
        record_session("ui-only", tmp_path / "d", relay="sctp")
    with pytest.raises(LabError, match=r"the gain period must be in \[0.1, 3600\] s, got 0.0"):
        record_session("telemetry-gains", tmp_path / "e", gain_period=0.0)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("x")
    with pytest.raises(LabError, match=r"is not empty"):
        record_session("ui-only", tmp_path / "c")


def test_timeline_document() -> None:
    page = {
        "events": [
            {"t_ms": 1_700_000_000_000.5, "applied_ms": 1_700_000_000_000.5, "state": "unmuted"},
            {"t_ms": 1_700_000_004_000.0, "applied_ms": 1_700_000_004_001.0, "state": "muted"},
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
            {"t": 1_700_000_000.0005, "state": "unmuted", "applied": 1_700_000_000.0005},
            {"t": 1_700_000_004.0, "state": "muted", "applied": 1_700_000_004.001},
            {"t": 1_700_000_010.0, "state": "unmuted"},
        ],
    }


def test_timeline_document_open_mute_ends_at_scenario_end() -> None:
    page = {"events": [{"t_ms": 1000.0, "state": "muted"}], "end_ms": 3000.0}
    assert timeline_document(page)["muted"] == [[1.0, 3.0]]
    with pytest.raises(ValueError, match="state 'paused'"):
        timeline_document({"events": [{"t_ms": 1.0, "state": "paused"}], "end_ms": 2.0})


def test_host_candidate() -> None:
    sdp = (
        "a=candidate:1 1 udp 2122260223 10.77.0.1 58969 typ host generation 0\r\n"
        "a=candidate:2 1 tcp 1518280447 10.77.0.1 9 typ host tcptype active\r\n"
    )
    assert host_candidate(sdp, "10.77.0.1") == 58969
    assert host_candidate(sdp, "10.77.0.2") is None


def test_place_reference(tmp_path: Path) -> None:
    generated = tmp_path / "generated.wav"
    generated.write_bytes(b"RIFF one")
    shared = tmp_path / "corpus" / "reference.wav"
    first = tmp_path / "corpus" / "a"
    first.mkdir(parents=True)
    # absent: written there; identical: used; different: the session keeps its own copy
    assert _place_reference(generated, first, shared) == "../reference.wav"
    assert shared.read_bytes() == b"RIFF one" and not (first / "reference.wav").exists()
    second = tmp_path / "corpus" / "b"
    second.mkdir()
    assert _place_reference(generated, second, shared) == "../reference.wav"
    generated.write_bytes(b"RIFF two")
    third = tmp_path / "corpus" / "c"
    third.mkdir()
    assert _place_reference(generated, third, shared) == "reference.wav"
    assert (third / "reference.wav").read_bytes() == b"RIFF two"
    assert shared.read_bytes() == b"RIFF one"
    alone = tmp_path / "alone"
    alone.mkdir()
    assert _place_reference(generated, alone, None) == "reference.wav"


def test_refused_summary(tmp_path: Path) -> None:
    log = tmp_path / "refused.jsonl"
    assert _refused_summary(log) == []
    lines = [
        {"kind": "connect", "host": "accounts.google.com", "port": 443},
        {"kind": "request", "host": "clients2.google.com", "port": 80},
        {"kind": "connect", "host": "accounts.google.com", "port": 443},
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines) + "not json\n")
    assert _refused_summary(log) == [
        {"kind": "connect", "host": "accounts.google.com", "port": 443, "count": 2},
        {"kind": "request", "host": "clients2.google.com", "port": 80, "count": 1},
    ]


def test_page_query_and_capture_filter() -> None:
    query = urllib.parse.parse_qs(
        page_query("ui-only", (4.0, 6.0, 4.0), mark=True, relay="tls", video=True)
    )
    assert query["variant"] == ["ui-only"] and query["durations"] == ["4000,6000,4000"]
    assert query["video"] == ["1"] and query["mark"] == ["http://mutecheck.mark"]
    ice = json.loads(query["ice"][0])
    assert ice["iceTransportPolicy"] == "relay"
    assert ice["iceServers"][0]["urls"] == ["turns:10.77.0.2:5349?transport=tcp"]
    plain = urllib.parse.parse_qs(page_query("ui-only", (4.0, 6.0, 4.0), mark=False))
    assert set(plain) == {"variant", "durations"}
    processed = page_query("ui-only", (4.0, 6.0, 4.0), mark=False, processing=True)
    assert urllib.parse.parse_qs(processed)["processing"] == ["1"]
    # telemetry-gains: the period between readings, in ms (a minute unless told)
    gains = urllib.parse.parse_qs(page_query("telemetry-gains", (4.0, 60.0, 4.0), mark=False))
    assert gains["period"] == ["60000"]
    faster = page_query("telemetry-gains", (4.0, 6.0, 4.0), mark=False, gain_period=1.5)
    assert urllib.parse.parse_qs(faster)["period"] == ["1500"]
    assert capture_filter("none") == "udp and host 10.77.0.1 and host 10.77.0.2"
    relayed = capture_filter("tcp")
    assert "port 3478" in relayed and "port 5349" in relayed and relayed == capture_filter("tls")


def test_session_name() -> None:
    assert session_name("ui-only") == "chromium-ui-only"
    assert session_name("ui-only", "tls") == "chromium-ui-only-relay-tls"
    assert session_name("track-disabled", peer_talks=True) == "chromium-track-disabled-peer-talks"
    assert session_name("track-disabled", video=True) == "chromium-track-disabled-video"


def test_mitmdump_command() -> None:
    command = mitmdump_command()
    assert command[0].endswith("mitmdump") or "mitmproxy.tools.main" in command[-1]


@needs_chromium
def test_record_with_rtpdump_keeps_chromiums_plaintext(tmp_path: Path) -> None:
    """`lab record --rtpdump`: Chromium's own dump is kept and imports to exactly the packets
    of the capture once decrypted with the session's keys."""
    from collections import Counter
    from datetime import UTC

    from decoders.lab.record import RTPDUMP_LOG
    from decoders.media.decrypt import decrypt_capture, read_media
    from decoders.media.rtpdump import import_rtpdump
    from decoders.session.keys import load_keys_json

    session = record_session("ui-only", tmp_path / "s", (1.5, 1.5, 1.5), addon=None, rtpdump=True)
    log = session / RTPDUMP_LOG
    assert log.is_file()
    year = json.loads((session / "session.json").read_text())["created"][:4]
    dump = import_rtpdump(log, tmp_path / "dump.pcapng", year=int(year), zone=UTC)
    assert dump.outbound > 100 and dump.skipped == {}
    decrypted = decrypt_capture(
        session / "capture.pcapng", load_keys_json(session / "keys.json"), decode=False
    )
    assert decrypted.failures == 0
    plain = decrypted.plaintext()
    imported, damage, _ = read_media(tmp_path / "dump.pcapng")
    assert damage is None
    assert Counter(d.data for d in imported) == Counter(plain[d.frame] for d in decrypted.datagrams)
    assert leftovers() == []
