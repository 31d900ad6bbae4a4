"""Janus in the lab: its private configuration, our settings.js, the demo list, the kept RTP dump,
the committed janus-* sessions, and one live recording (EchoTest, ~20 s)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from helpers.leftovers import lab_leftovers

from decoders.lab.janus import (
    APPS,
    DEMOS,
    JANUS_BINARY,
    PAGES_PORT,
    PROXY_BYPASS,
    REST_PORT,
    WSS_PORT,
    janus_config,
    page_url,
    received_phases,
    record_janus,
    server_url,
    session_name,
    settings_js,
    video_payload_types,
    without_video_dump,
)
from decoders.lab.record import CHROMIUM, MARK_HOST, PEER_ADDRESS, PEER_INTERFACE, LabError
from decoders.media.rtpdump import parse_dump_line
from decoders.session.sdp import parse_sdp

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
SESSIONS = sorted(CAPTURES.glob("janus-*/"))
EXPECTED = {
    "janus-audiobridge": "content-leak",
    "janus-echotest": "content-leak",
    "janus-echotest-ws": "content-leak",
    "janus-videocall": "content-leak",
    "janus-videoroom": "no-leak",
    "janus-videoroom-dtx": "no-leak",
    "janus-videoroom-streams": "content-leak",
}
"""What each demo's mute does to the sound (captures/README.md): the server-side mutes keep
sending the microphone (VideoRoom's too, when its button is rewired to Janus 1.x's ``streams``
form), VideoRoom's own track.enabled = false sends silence (or DTX)."""

needs_janus = pytest.mark.skipif(
    not (os.access(JANUS_BINARY, os.X_OK) and os.access(CHROMIUM, os.X_OK))
    and not os.environ.get("CI"),
    reason="janus or chromium not installed",
)


def test_config_is_private_bound_to_the_veth_and_has_no_stun(tmp_path: Path) -> None:
    janus_config(tmp_path, tmp_path / "cert.pem", tmp_path / "key.pem")
    main = (tmp_path / "janus.jcfg").read_text()
    assert f'configs_folder = "{tmp_path}"' in main
    assert f'interface = "{PEER_ADDRESS}"' in main
    assert f'ice_enforce_list = "{PEER_INTERFACE}"' in main
    text = "".join(p.read_text() for p in tmp_path.glob("*.jcfg"))
    assert "stun_server" not in text and "turn_server" not in text
    assert "/etc/janus" not in text
    http = (tmp_path / "janus.transport.http.jcfg").read_text()
    assert "http = false" in http and "https = true" in http and f"{REST_PORT}" in http
    ws = (tmp_path / "janus.transport.websockets.jcfg").read_text()
    assert "ws = false" in ws and "wss = true" in ws and f"{WSS_PORT}" in ws
    assert str(tmp_path / "cert.pem") in http and str(tmp_path / "cert.pem") in ws
    for plugin in ("audiobridge", "videoroom", "echotest", "videocall"):
        assert (tmp_path / f"janus.plugin.{plugin}.jcfg").is_file()


@pytest.mark.parametrize("transport", ["rest", "ws"])
def test_settings_js_defines_what_the_demos_need(transport: str) -> None:
    text = settings_js(transport)
    for name in ("server", "iceServers", "token", "apisecret"):
        assert f"var {name} =" in text
    assert "var iceServers = [];" in text
    assert json.dumps(server_url(transport)) in text
    assert server_url("rest") == f"https://{PEER_ADDRESS}:{REST_PORT}/janus"
    assert server_url("ws") == f"wss://{PEER_ADDRESS}:{WSS_PORT}"


def test_stock_settings_js_lacks_token_and_apisecret() -> None:
    """Why the lab serves its own settings.js (lab-facts.md): Debian's declares neither."""
    stock = (DEMOS / "settings.js").read_text()
    assert "var token" not in stock and "var apisecret" not in stock


def test_apps_and_names() -> None:
    assert set(APPS) == {
        "janus-audiobridge",
        "janus-videoroom",
        "janus-videoroom-streams",
        "janus-echotest",
        "janus-videocall",
    }
    assert APPS["janus-videocall"].needs_peer
    assert [name for name, app in APPS.items() if app.script] == ["janus-videoroom-streams"]
    assert "streams" in APPS["janus-videoroom-streams"].script
    assert page_url(APPS["janus-videoroom"], dtx=True).endswith("videoroomtest.html?dtx=yes")
    assert page_url(APPS["janus-echotest"], dtx=False) == (
        f"https://{PEER_ADDRESS}:{PAGES_PORT}/echotest.html"
    )
    assert session_name("janus-videoroom", dtx=True) == "janus-videoroom-dtx"
    assert session_name("janus-echotest", "ws") == "janus-echotest-ws"
    assert f"{PEER_ADDRESS}:{PAGES_PORT}" in PROXY_BYPASS  # static pages skip the proxy


def test_arguments_are_checked_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"arguments.*unknown app"):
        record_janus("janus-nothing", tmp_path / "a")
    with pytest.raises(LabError, match=r"arguments.*VideoRoom"):
        record_janus("janus-echotest", tmp_path / "b", dtx=True)
    with pytest.raises(LabError, match=r"arguments.*transport"):
        record_janus("janus-echotest", tmp_path / "c", transport="mqtt")


def test_without_video_dump_keeps_audio_and_rtcp() -> None:
    audio = "O 00:00:01.000 0000 80 6f 00 01 00 00 00 01 00 00 00 02 aa # RTP_DUMP\n"
    video = "O 00:00:01.001 0000 80 60 00 01 00 00 00 01 00 00 00 03 bb # RTP_DUMP\n"
    marker = "O 00:00:01.001 0000 80 e0 00 01 00 00 00 01 00 00 00 03 bb # RTP_DUMP\n"
    rtcp = "I 00:00:01.002 0000 80 c8 00 06 00 00 00 01 00 00 00 00 00 # RTP_DUMP\n"
    header = "[1:2:1203/153000.000000:VERBOSE1:srtp_session.cc:549]\n"
    text = without_video_dump([header, audio, video, marker, rtcp, "other\n"], frozenset({96}))
    assert text == header + audio + rtcp + "other\n"


@pytest.mark.parametrize("folder", SESSIONS, ids=[p.name for p in SESSIONS])
def test_committed_session(folder: Path) -> None:
    """Each committed janus-* session is whole, small, and its ground truth is as documented."""
    session = json.loads((folder / "session.json").read_text())
    for entry in session["files"]:
        data = (folder / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["name"]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1_500_000
    expected = json.loads((folder / "expected.json").read_text())
    assert expected["verdict"] == EXPECTED[folder.name]
    assert expected["source"].startswith("chromium-stderr.log")
    for window in expected["muted_windows"]:
        assert window["verdict"] == EXPECTED[folder.name]
    # the timeline is the page's own trusted clicks on the demo's mute control
    timeline = json.loads((folder / "timeline.json").read_text())
    clicks = session["scenario"]["clicks"]
    control = session["app"]["mute_control"].lstrip("#")
    mute_clicks = [c["t"] for c in clicks if c["id"] == control]
    assert len(mute_clicks) == 2 and all(c["trusted"] for c in clicks)
    assert timeline["muted"] == [mute_clicks]
    # the addon was marked at those click times, through the proxy
    marks = [
        json.loads(line)
        for line in (folder / "events.jsonl").read_text().splitlines()
        if '"source":"mark"' in line
    ]
    assert [round(m["at"], 3) for m in marks][1:] == [round(t, 3) for t in mute_clicks]
    # the kept RTP dump has no video packet left
    video = video_payload_types(parse_sdp((folder / "offer.sdp").read_text()))
    for line in (folder / "chromium-stderr.log").read_text().splitlines():
        dumped = parse_dump_line(line)
        if dumped is not None and not 192 <= dumped.data[1] <= 223:
            assert dumped.data[1] & 0x7F not in video
    assert MARK_HOST in session["proxy"]["allowed"]
    # what the server passed on (recorded from janus-videoroom-streams on): a server-side mute
    # was obeyed, the receiving side got no audio from the tester while muted
    received = session["scenario"].get("received")
    if received is not None:
        unmuted, muted, again = received["phases"]
        assert unmuted["packets_per_s"] > 40 and again["packets_per_s"] > 40
        assert muted["packets_per_s"] < 1 and muted["audio_energy_per_s"] < 0.001


def test_received_phases_from_samples() -> None:
    """Per phase: packets and energy per second between its first and last samples, from 0.3 s
    after a click; a phase with fewer than two samples says None."""
    events = [
        {"t_ms": 10_000.0, "state": "unmuted"},
        {"t_ms": 12_000.0, "state": "muted"},
        {"t_ms": 14_000.0, "state": "unmuted"},
    ]
    samples = [
        (10.0 + i * 0.25, 50 * i if i <= 8 else 400 + 50 * max(0, i - 16), 0.1 * i)
        for i in range(25)
    ]
    unmuted, muted, again = received_phases(samples, events, 14.2)
    assert (unmuted["state"], unmuted["from"], unmuted["to"]) == ("unmuted", 10.0, 12.0)
    assert unmuted["packets_per_s"] == 200.0  # 50 a sample, 4 samples a second
    assert (muted["from"], muted["to"]) == (12.3, 14.0)
    assert muted["packets_per_s"] == 0.0 and muted["audio_energy_per_s"] == pytest.approx(0.4)
    assert again["packets_per_s"] is None and again["audio_energy_per_s"] is None  # one sample
    assert received_phases([], events, 15.0)[0]["packets_per_s"] is None


def test_janus_sessions_have_their_own_small_budget() -> None:
    """Seven sessions and their two shared references: well under 8 MB all told."""
    files = [p for p in CAPTURES.glob("janus-*") if p.is_file()]
    files += [p for folder in SESSIONS for p in folder.iterdir()]
    assert {p.name for p in files} >= {"janus-reference.wav", "janus-peer-reference.wav"}
    assert sum(p.stat().st_size for p in files) < 8_000_000


def test_videoroom_dtx_sends_almost_nothing_while_muted() -> None:
    """The demo's own ?dtx=yes option: usedtx=1 negotiated, ~5 packets/s muted."""
    folder = CAPTURES / "janus-videoroom-dtx"
    assert "usedtx=1" in (folder / "offer.sdp").read_text()
    window = json.loads((folder / "expected.json").read_text())["muted_windows"][0]
    assert window["packets_per_s"] < 10


@needs_janus
def test_record_echotest_live(tmp_path: Path) -> None:
    """One live Janus recording: EchoTest over REST, its mute clicked; ~20 s."""
    out = tmp_path / "janus-echotest"
    record_janus("janus-echotest", out, durations=(2.0, 3.0, 2.0))
    for name in (
        "capture.pcapng",
        "events.jsonl",
        "flows.mitm",
        "timeline.json",
        "offer.sdp",
        "answer.sdp",
        "chromium-stderr.log",
        "reference.wav",
        "session.json",
        "expected.json",
    ):
        assert (out / name).is_file(), name
    expected = json.loads((out / "expected.json").read_text())
    assert expected["verdict"] == "content-leak", expected["notes"]
    window = expected["muted_windows"][0]
    assert window["packets_per_s"] > 40 and window["correlation"]["proven"]
    session = json.loads((out / "session.json").read_text())
    assert [c["trusted"] for c in session["scenario"]["clicks"]] == [True] * 4
    # EchoTest stopped echoing while muted: the tester's own inbound audio went to nothing
    received = session["scenario"]["received"]
    assert received["by"] == "tester"
    assert [p["state"] for p in received["phases"]] == ["unmuted", "muted", "unmuted"]
    unmuted, muted, again = received["phases"]
    assert unmuted["packets_per_s"] > 40 and again["packets_per_s"] > 40
    assert muted["packets_per_s"] < 1
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    # the app's own signal went through the proxy: EchoTest's {audio: false}
    app_signals = [e for e in events if e.get("kind") == "mute" and e.get("source") == "app"]
    marks = [e for e in events if e.get("kind") == "mute" and e.get("source") == "mark"]
    assert [m["state"] for m in marks] == ["unmuted", "muted", "unmuted"]
    assert app_signals or "audio" in (out / "flows.mitm").read_bytes().decode(errors="replace")
    assert (out / "capture.pcapng").stat().st_size > 50_000
    assert lab_leftovers(f"-{os.getpid()}-") == []
