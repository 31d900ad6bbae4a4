"""Firefox in the lab: its profile, its microphone, one session recorded live, and the committed
Firefox sessions (captures/firefox-<variant>/) judged as their ground truth says.

The live test records from scratch (real Firefox ESR, PulseAudio, mitmdump, aiortc, dumpcap in
network namespaces); it needs root and the Debian packages firefox-esr, pulseaudio,
pulseaudio-utils and libnss3-tools, and is skipped only when Firefox is missing and the CI
variable is unset.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.corpus import EXPECTED_VERDICTS
from helpers.leftovers import lab_leftovers

from decoders.audit.analysis import Inputs, analyze
from decoders.lab import firefox
from decoders.lab.record import (
    BROWSER_ADDRESS,
    PEER_ADDRESS,
    VARIANTS,
    LabError,
    capture_filter,
    record_session,
    session_name,
)
from decoders.lab.summary import LEVEL_SILENCE, SessionSummary
from decoders.lab.turn import write_certificate
from decoders.media.decrypt import read_media
from decoders.media.srtp import decrypt_datagrams
from decoders.session.keys import load_keylog_keys, load_keys_json
from decoders.wire.capture import open_capture
from decoders.wire.net import Unwrapper

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
FIREFOX_SESSIONS = sorted(
    p for p in CAPTURES.glob("firefox-*") if p.is_dir() and not p.name.endswith("-to-firefox")
)
"""Firefox calling the aiortc peer (DTLS 1.2, Firefox the DTLS client, keys.json exported)."""
DTLS13_SESSIONS = sorted(CAPTURES.glob("firefox-*-to-firefox"))
"""Firefox calling a second Firefox (DTLS 1.3; no exported keys, both browsers' key logs)."""
EXPECTED = EXPECTED_VERDICTS
"""What each way of muting must be judged; the media verdict (expected.json) of the telemetry
variants is no-leak: their leak is the telemetry, not the media."""
MEDIA_EXPECTED = {v: "no-leak" if e == "metadata-leak" else e for v, e in EXPECTED.items()}
needs_firefox = pytest.mark.skipif(
    firefox.find_firefox() is None and not os.environ.get("CI"),
    reason="firefox-esr not installed",
)
LIVE_DURATIONS = (4.0, 6.0, 2.0)
"""Unmuted, muted, unmuted seconds of the live recordings. The muted phase is long enough for the
ground truth to prove the leak on its own: Firefox's microphone (the PulseAudio monitor) starts
0-1.7 s late, so the lag is searched over -1..+3 s, and over a 3 s window that search left the
permutation test at p = 0.002-0.007 against its 0.01 bar (once above it, in CI); over 6 s it is
0.001 in every run measured (4 of 4), as low as 999 permutations go."""
SessionCheck = Callable[[Path, str], SessionSummary]


def variant_of(folder: Path) -> str:
    return folder.name.removeprefix("firefox-").removesuffix("-to-firefox")


# -- the profile -------------------------------------------------------------------------------

PREF_LINE = re.compile(r'user_pref\("([^"]+)", (.+)\);')


def prefs_of(text: str) -> dict[str, object]:
    """user.js back to a dict (every line but the comment is one ``user_pref``)."""
    lines = text.splitlines()
    assert lines[0].startswith("//")
    parsed = [PREF_LINE.fullmatch(line) for line in lines[1:]]
    assert all(parsed), [line for line, m in zip(lines[1:], parsed, strict=True) if not m]
    return {m.group(1): json.loads(m.group(2)) for m in parsed if m}


def test_user_js_sends_everything_through_the_proxy_and_calls_no_one() -> None:
    prefs = prefs_of(firefox.user_js("127.0.0.1", 8081, ("10.77.0.2",)))
    assert prefs["network.proxy.type"] == 1
    for scheme in ("http", "ssl"):
        assert prefs[f"network.proxy.{scheme}"] == "127.0.0.1"
        assert prefs[f"network.proxy.{scheme}_port"] == 8081
    assert prefs["network.proxy.no_proxies_on"] == ""
    assert prefs["dom.securecontext.allowlist"] == "10.77.0.2"
    # the microphone is the null sink's monitor, granted without a prompt
    assert prefs["media.navigator.streams.fake"] is False
    assert prefs["media.navigator.permission.disabled"] is True
    assert prefs["media.audio_loopback_dev"] == firefox.LOOPBACK_DEVICE == "Monitor of Null Output"
    # no pref points anywhere outside the lab: every URL is empty or data:
    urls = {k: v for k, v in prefs.items() if isinstance(v, str) and "://" in v}
    assert urls == {}, urls
    for off in (
        "toolkit.telemetry.enabled",
        "datareporting.healthreport.uploadEnabled",
        "app.update.auto",
        "browser.safebrowsing.malware.enabled",
        "network.captive-portal-service.enabled",
        "network.connectivity-service.enabled",
        "dom.push.enabled",
        "media.gmp-manager.updateEnabled",
        "extensions.update.enabled",
    ):
        assert prefs[off] is False, off
    assert prefs["network.trr.mode"] == 5  # DNS over HTTPS off
    assert str(prefs["services.settings.server"]).startswith("data:")


def test_the_answering_firefox_uses_no_proxy() -> None:
    prefs = prefs_of(firefox.user_js("127.0.0.1", 8081, (), direct=True))
    assert prefs["network.proxy.type"] == 0
    assert not any(k.startswith("network.proxy.http") for k in prefs)
    assert prefs["toolkit.telemetry.enabled"] is False  # as quiet as the caller


def test_write_profile_makes_a_fresh_folder(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    firefox.write_profile(profile, "127.0.0.1", 8081, ("10.77.0.2",))
    assert [p.name for p in profile.iterdir()] == ["user.js"]
    with pytest.raises(FileExistsError):
        firefox.write_profile(profile, "127.0.0.1", 8081, ())


@pytest.mark.skipif(
    shutil.which("certutil") is None and not os.environ.get("CI"), reason="libnss3-tools missing"
)
def test_the_profile_trusts_the_certificate(tmp_path: Path) -> None:
    """certutil really writes the profile's NSS database, with the CA trusted for servers."""
    profile = tmp_path / "profile"
    firefox.write_profile(profile, "127.0.0.1", 8081, ())
    certificate, key = tmp_path / "ca.pem", tmp_path / "ca.key"
    write_certificate("10.77.0.2", certificate, key)
    firefox.trust_certificate(profile, certificate, "lab CA")
    assert (profile / "cert9.db").is_file()
    listed = subprocess.run(
        ["certutil", "-L", "-d", f"sql:{profile}"], capture_output=True, text=True, check=True
    ).stdout
    (line,) = [line for line in listed.splitlines() if line.startswith("lab CA")]
    assert line.split()[-1] == "C,,"
    with pytest.raises(RuntimeError, match="certutil"):
        firefox.trust_certificate(profile, tmp_path / "missing.pem")


def test_microphone_and_browser_commands(tmp_path: Path) -> None:
    command = firefox.pulseaudio_command(tmp_path, 48000)
    assert command[:2] == ["pulseaudio", "--system"]
    assert f"--load=module-native-protocol-unix socket={tmp_path}/native auth-anonymous=1" in (
        command
    )
    assert "--load=module-null-sink sink_name=fakemic rate=48000 channels=1" in command
    assert firefox.pulse_server(tmp_path) == f"unix:{tmp_path}/native"
    assert firefox.paplay_command(tmp_path / "m.wav") == [
        "paplay",
        "--device=fakemic",
        f"{tmp_path}/m.wav",
    ]
    assert firefox.firefox_command("/ff", tmp_path, "http://x/") == [
        "/ff",
        "--headless",
        "--no-remote",
        "--profile",
        str(tmp_path),
        "http://x/",
    ]


def test_names_filter_and_arguments(tmp_path: Path) -> None:
    assert session_name("ui-only", browser="firefox") == "firefox-ui-only"
    assert session_name("ui-only", browser="firefox", answerer="firefox") == (
        "firefox-ui-only-to-firefox"
    )
    with pytest.raises(LabError, match="only Firefox sessions"):
        record_session("ui-only", tmp_path / "c", answerer="firefox")
    # with its default route, the Firefox capture keeps whatever went anywhere else
    assert capture_filter("none", "firefox") == (
        f"(udp and host {BROWSER_ADDRESS} and host {PEER_ADDRESS}) or "
        f"(ip and not host {PEER_ADDRESS})"
    )
    with pytest.raises(LabError, match=r"'arguments'.*Chromium only"):
        record_session("ui-only", tmp_path / "a", browser="firefox", relay="udp")
    with pytest.raises(LabError, match="unknown browser"):
        record_session("ui-only", tmp_path / "b", browser="safari")


# -- what a Firefox session must hold ----------------------------------------------------------


def frames_elsewhere(capture: Path) -> list[str]:
    """Every captured frame that is not UDP between the browser and the peer."""
    out: list[str] = []
    unwrapper = Unwrapper()
    with open_capture(capture) as reader:
        for frame in reader:
            datagrams = unwrapper.feed(frame)
            if not datagrams:
                out.append(f"frame {frame.number}: not a datagram")
            for d in datagrams:
                if {d.src, d.dst} != {BROWSER_ADDRESS, PEER_ADDRESS} or d.transport != "udp":
                    out.append(f"frame {frame.number}: {d.src} -> {d.dst} {d.transport}")
    return out


def keylog_decrypts_the_browser(folder: Path) -> tuple[int, int]:
    """(packets, failures) of the browser's SRTP and SRTCP decrypted with keys from Firefox's
    own key log (keylog.txt) alone; also: those keys are the peer's exported ones."""
    keys = load_keylog_keys(folder / "keylog.txt", folder / "capture.pcapng")
    exported = load_keys_json(folder / "keys.json")
    assert {k.key_and_salt for k in exported.keys} <= {k.key_and_salt for k in keys.keys}
    datagrams, _, _ = read_media(folder / "capture.pcapng")
    sent = [d for d in datagrams if d.src == BROWSER_ADDRESS]
    streams = decrypt_datagrams(sent, keys)
    return sum(len(s.datagrams) for s in streams), sum(s.failed for s in streams)


def assert_firefox_session(
    folder: Path, variant: str, check_session: SessionCheck, *, unmuted_proof: bool = True
) -> None:
    """A complete lab session recorded with Firefox, judged as its ground truth says
    (``unmuted_proof``: the unmuted phases are long enough, 4 s, to correlate on their own)."""
    summary = check_session(folder, variant)
    session = json.loads((folder / "session.json").read_text())
    assert session["browser"] == "firefox" and session["kind"] == "firefox-aiortc"
    assert "Firefox/" in session["scenario"]["user_agent"]
    assert session["network"]["browser"]["default_route"] == f"via {PEER_ADDRESS}"
    # nothing left the lab: the proxy refused nothing, the capture holds only the call
    assert session["proxy"]["refused"] == []
    assert frames_elsewhere(folder / "capture.pcapng") == []
    # Firefox is the DTLS client; its own key log decrypts all it sent
    assert "a=setup:passive" in (folder / "answer.sdp").read_text()
    packets, failures = keylog_decrypts_the_browser(folder)
    assert packets >= summary.browser_rtp_packets > 100 and failures == 0
    # the ground truth from the packets, and the verdict that must agree with it
    expected = json.loads((folder / "expected.json").read_text())
    assert expected["verdict"] == MEDIA_EXPECTED[variant], expected["notes"]
    assert expected["source"].startswith("capture.pcapng decrypted with keys.json")
    # the WAV microphone reaches the wire: unmuted, the decoded loudness follows it closely
    if unmuted_proof:
        assert expected["unmuted"]["correlation"]["r"] > 0.8, expected["unmuted"]
    result = analyze(Inputs(session_dir=folder))
    assert result.verdict.verdict == EXPECTED[variant], result.verdict.reason
    assert result.verdict.confidence >= 0.75
    assert result.decoded.measured  # the audit decrypted it too (key log or keys.json)


@needs_firefox
def test_record_firefox_live(tmp_path: Path, check_session: SessionCheck) -> None:
    folder = record_session(
        "ui-only", tmp_path / "firefox-ui-only", LIVE_DURATIONS, browser="firefox"
    )
    assert_firefox_session(folder, "ui-only", check_session, unmuted_proof=False)
    summary = check_session(folder, "ui-only")
    assert summary.muted.level_median is not None and summary.muted.level_median < 45
    assert leftovers(folder) == []


@needs_firefox
def test_record_firefox_to_firefox_live(tmp_path: Path) -> None:
    """A second Firefox answers, live: DTLS 1.3, and the ground truth from the answering
    Firefox's key log. The recording's ground-truth step decrypts
    with the DTLS 1.3 key derivation of ``decoders.session.keys``."""
    folder = record_session(
        "ui-only",
        tmp_path / "firefox-ui-only-to-firefox",
        LIVE_DURATIONS,
        browser="firefox",
        answerer="firefox",
    )
    assert labels(folder / "keylog.txt") == labels(folder / "peer-keylog.txt") == DTLS13_LABELS
    expected = json.loads((folder / "expected.json").read_text())
    assert expected["verdict"] == "content-leak", expected["notes"]
    result = analyze(Inputs(session_dir=folder))
    assert result.verdict.verdict == "content-leak" and result.decoded.measured
    assert frames_elsewhere(folder / "capture.pcapng") == []
    assert leftovers(folder) == []


def leftovers(folder: Path) -> list[str]:
    """This test process's lab namespaces, and any process still using the session folder or a
    lab work folder of this process (Firefox, PulseAudio, paplay: all stopped by PID)."""
    pid = os.getpid()
    return lab_leftovers(f"mutecheck-lab-{pid}-", str(folder), namespace_mark=f"-{pid}-")


# -- the committed Firefox sessions ------------------------------------------------------------


MAX_FIREFOX_BYTES = 3_000_000


def test_the_firefox_sessions_have_their_own_small_budget() -> None:
    files = [p for folder in CAPTURES.glob("firefox-*") for p in folder.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= MAX_FIREFOX_BYTES
    assert not any(p.name == "reference.wav" for p in files)  # the shared one is used


def test_every_variant_is_recorded_with_firefox() -> None:
    assert [variant_of(p) for p in FIREFOX_SESSIONS] == sorted(VARIANTS)
    for folder in FIREFOX_SESSIONS:
        session = json.loads((folder / "session.json").read_text())
        assert session["reference"]["file"] == "../reference.wav"


@pytest.mark.parametrize("folder", FIREFOX_SESSIONS, ids=[p.name for p in FIREFOX_SESSIONS])
def test_committed_firefox_session(folder: Path, check_session: SessionCheck) -> None:
    assert_firefox_session(folder, variant_of(folder), check_session)


def test_firefox_track_disabled_sends_silence_frames_without_dtx() -> None:
    """What Firefox sends for ``track.enabled = false`` (captures/README.md)."""
    from decoders.lab.summary import summarize

    muted = summarize(CAPTURES / "firefox-track-disabled").muted
    assert 45 <= muted.packets_per_second <= 55
    assert set(muted.audio_levels) == {LEVEL_SILENCE}
    assert muted.distinct_payloads <= 0.1 * muted.rtp_packets


# -- Firefox calling Firefox: DTLS 1.3 -----------------------------------------------------------

DTLS13_LABELS = {
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
    "EXPORTER_SECRET",
}


def labels(keylog: Path) -> set[str]:
    return {line.split()[0] for line in keylog.read_text().splitlines() if not line.startswith("#")}


def test_firefox_to_firefox_sessions_are_recorded() -> None:
    assert [variant_of(p) for p in DTLS13_SESSIONS] == ["track-disabled", "ui-only"]


@pytest.mark.parametrize("folder", DTLS13_SESSIONS, ids=[p.name for p in DTLS13_SESSIONS])
def test_firefox_to_firefox_session(folder: Path) -> None:
    """A second Firefox answered: DTLS 1.3 (both key logs hold only TLS 1.3 labels), nothing
    left the lab, and the verdict, from the clear audio-level header, is the ground truth's."""
    variant = variant_of(folder)
    session = json.loads((folder / "session.json").read_text())
    assert session["peer"]["answerer"] == "firefox" and session["peer"]["frames_received"] > 500
    assert session["kind"] == "firefox-firefox"  # the corpus tables' app (decoders.corpus)
    assert not (folder / "keys.json").exists()
    assert labels(folder / "keylog.txt") == labels(folder / "peer-keylog.txt") == DTLS13_LABELS
    assert session["proxy"]["refused"] == []
    assert frames_elsewhere(folder / "capture.pcapng") == []
    expected = json.loads((folder / "expected.json").read_text())
    assert expected["verdict"] == MEDIA_EXPECTED[variant], expected["notes"]
    assert expected["source"].startswith("capture.pcapng decrypted with the keys of peer-keylog")
    result = analyze(Inputs(session_dir=folder))
    assert result.verdict.verdict == EXPECTED[variant], result.verdict.reason


@pytest.mark.parametrize("folder", DTLS13_SESSIONS, ids=[p.name for p in DTLS13_SESSIONS])
def test_firefox_to_firefox_decrypts_from_the_key_log_alone(folder: Path) -> None:
    """The calling Firefox's own key log (keylog.txt, DTLS 1.3 EXPORTER_SECRET) decrypts every
    RTP and RTCP packet it sent, with 0 failures, the audit decodes its audio, and the ground
    truth (from the answering Firefox's key log) recomputes the same. Needs the DTLS 1.3 key
    derivation of ``decoders.session.keys``."""
    keys = load_keylog_keys(folder / "keylog.txt", folder / "capture.pcapng")
    datagrams, _, _ = read_media(folder / "capture.pcapng")
    sent = [d for d in datagrams if d.src == BROWSER_ADDRESS]
    streams = decrypt_datagrams(sent, keys)
    assert {s.kind for s in streams} == {"rtp", "rtcp"}
    assert sum(len(s.datagrams) for s in streams) == len(sent) > 500
    assert sum(s.failed for s in streams) == 0
    result = analyze(Inputs(session_dir=folder))
    assert result.decoded.measured
    from decoders.lab.groundtruth import expected_document

    scenario = json.loads((folder / "session.json").read_text())["scenario"]
    again = expected_document(
        folder, app=folder.name, gum_s=scenario["microphone"]["playback_started"]
    )
    committed = json.loads((folder / "expected.json").read_text())
    assert again["muted_windows"][0]["rtp_packets"] == committed["muted_windows"][0]["rtp_packets"]
    assert again["verdict"] == committed["verdict"]
