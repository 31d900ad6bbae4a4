"""``mutecheck audit`` end to end: headless Chromium audits the lab's own page in the lab's
namespaces, with a plan, and nothing it started is left afterwards.

The page is served over HTTPS with a certificate made for the run; the audit is given it with
``--upstream-ca`` (the proxy verifies every server; Chromium trusts only the proxy's CA).
One run audits the plain-HTTP page too, and one shows the refusal without ``--upstream-ca``.

Live runs (about 25 s each; root, Chromium, dumpcap, mitmdump, espeak-ng, sox, certutil).
The page's variant travels in its URL; the audit knows nothing of it. Its scenario (1 s
unmuted, 16 s muted, 3 s unmuted from when it connects) holds the plan's 6..14 s window.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mitmproxy.http import HTTPFlow
from mitmproxy.io import FlowReader

from decoders.lab.record import MARK_HOST
from decoders.lab.reference import make_reference
from decoders.live.audit import (
    CAPTURE_FILTER,
    CertificateFailures,
    check_ca_file,
    check_url,
    free_port,
    local_addresses,
    route_interface,
    upstream_bundle,
    url_server,
)
from decoders.live.browser import BACKGROUND_HOSTS_LEFT
from decoders.live.labpage import LabPage, lab_page

PLAN = "6:mute,14:unmute"
MUTE_AT, UNMUTE_AT = 6.0, 14.0
DURATION = "20"


@pytest.fixture(scope="module")
def mic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab's fake microphone: speech and tone bursts (the same signal as the corpus)."""
    work = tmp_path_factory.mktemp("mic")
    make_reference(work / "mic.wav", work / "reference.wav", 30.0, work)
    return work / "mic.wav"


def _processes_naming(text: str) -> list[str]:
    """Command lines of running processes that mention ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command and str(os.getpid()) != entry.name:
            found.append(command)
    return found


def _trust(page: LabPage) -> tuple[str, ...]:
    """The page's certificate as the audit's --upstream-ca (none for http)."""
    return ("--upstream-ca", str(page.certificate)) if page.certificate else ()


def _audit(
    variant: str, out: Path, mic: Path, *, wrapper: tuple[str, ...] = (), tls: bool = True
) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run the audit inside the lab's browser namespace; check nothing it started is left."""
    with lab_page(variant, tls=tls) as page:
        command = [
            *("ip", "netns", "exec", page.namespace, *wrapper, sys.executable, "-c"),
            "from decoders.cli import main; main()",
            *("audit", page.url, "--headless", "--plan", PLAN, "--duration", DURATION),
            *("--out", str(out), "--fake-mic", str(mic), *_trust(page)),
        ]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        left = subprocess.run(
            ["ip", "netns", "pids", page.namespace], capture_output=True, text=True, check=True
        ).stdout.split()
        assert left == [], f"processes left in the browser namespace: {left}"
    assert _processes_naming(str(out)) == []  # no mitmdump/dumpcap/chromium anywhere
    session = json.loads((out / "session.json").read_text())
    for name in ("events.jsonl", "flows.mitm", "chromium-stderr.log"):
        assert (out / name).is_file(), name
    assert (out / "capture.pcapng").is_file() is not bool(session["not_recorded"])
    for name in ("rtpdump.pcapng", "report.json", "report.html"):
        assert (out / name).is_file(), name
        assert str(out / name) in done.stdout or name == "rtpdump.pcapng"
    _only_the_audited_host(out, session["url"])
    return done, session


REQUEST_LINE = re.compile(r"^\S+: [A-Z]+ (https?)://([^/:\s?]+|\[[^\]]+\])")


def _hosts(out: Path) -> set[str]:
    """Every host the session's proxy.log shows a request to, and every flow's host."""
    hosts = set()
    for line in (out / "proxy.log").read_text(errors="replace").splitlines():
        match = REQUEST_LINE.match(line)
        if match:
            hosts.add(match.group(2))
    with (out / "flows.mitm").open("rb") as file:
        for flow in FlowReader(file).stream():
            if isinstance(flow, HTTPFlow):
                hosts.add(flow.request.host)
    return hosts


def _only_the_audited_host(out: Path, url: str) -> None:
    """Chromium's own background requests are stopped (network time: QUIET_FLAGS), but for
    the two no flag stops (BACKGROUND_HOSTS_LEFT): the proxy saw the page and the marks."""
    hosts = _hosts(out)
    audited = urllib.parse.urlsplit(url).hostname
    assert {audited, MARK_HOST} <= hosts
    assert hosts - {audited, MARK_HOST} <= set(BACKGROUND_HOSTS_LEFT), hosts
    assert "clients2.google.com" not in hosts


def _marks(out: Path) -> list[tuple[str, float]]:
    lines = (out / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    return [(e["state"], e["at"]) for e in events if e["kind"] == "mute" and e["source"] == "mark"]


def test_ui_only_alarm_in_the_window_and_content_leak(tmp_path: Path, mic: Path) -> None:
    out = tmp_path / "ui-only"
    done, session = _audit("ui-only", out, mic)
    assert done.returncode == 5, done.stdout + done.stderr
    assert "verdict: content-leak (exit code 5)" in done.stdout
    alarm_lines = [line for line in done.stdout.splitlines() if "ALARM:" in line]
    assert alarm_lines and "sound is leaving while muted: SSRC 0x" in alarm_lines[0]
    # the plan's marks are in events.jsonl, through the addon
    marks = _marks(out)
    assert [state for state, _ in marks] == ["muted", "unmuted"]
    muted_at, unmuted_at = marks[0][1], marks[1][1]
    assert abs(muted_at - session["browser_started"] - MUTE_AT) < 1.0
    assert abs(unmuted_at - session["browser_started"] - UNMUTE_AT) < 1.0
    (alarm,) = session["live_alarms"]
    assert alarm["kind"] == "audio"
    assert muted_at + 0.2 <= alarm["t"] < unmuted_at  # fired for a packet inside the window
    assert 0 <= alarm["raised"] - alarm["t"] <= 1.0  # within a second of that packet
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"]["verdict"] == "content-leak"


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_track_disabled_no_alarm_and_no_leak(tmp_path: Path, mic: Path, tls: bool) -> None:
    out = tmp_path / "track-disabled"
    done, session = _audit("track-disabled", out, mic, tls=tls)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ALARM" not in done.stdout
    assert session["live_alarms"] == []
    assert [state for state, _ in _marks(out)] == ["muted", "unmuted"]
    assert "verdict: no-leak (exit code 0)" in done.stdout


def test_telemetry_ws_alarm_names_the_endpoint(tmp_path: Path, mic: Path) -> None:
    out = tmp_path / "telemetry-ws"
    done, session = _audit("telemetry-ws", out, mic)
    alarm_lines = [line for line in done.stdout.splitlines() if "ALARM:" in line]
    assert alarm_lines, done.stdout + done.stderr
    assert "volume telemetry left while muted: wss://10.77.0.2:8080/ws" in alarm_lines[0]
    assert [a["kind"] for a in session["live_alarms"]] == ["telemetry"]
    assert 0 <= session["live_alarms"][0]["raised"] - session["live_alarms"][0]["t"] <= 1.0
    assert done.returncode == 4, done.stdout + done.stderr  # a metadata leak, no sound


def test_without_capture_privileges_it_says_how_and_goes_on(tmp_path: Path, mic: Path) -> None:
    """dumpcap without CAP_NET_RAW/CAP_NET_ADMIN (dropped from the bounding set): one line on
    how to grant them; the alarm and the verdict come from Chromium's plaintext RTP dump."""
    out = tmp_path / "no-privileges"
    wrapper = ("setpriv", "--bounding-set", "-net_raw,-net_admin")
    done, session = _audit("ui-only", out, mic, wrapper=wrapper)
    hints = [line for line in done.stdout.splitlines() if "no capture privileges" in line]
    assert len(hints) == 1 and "setcap cap_net_raw,cap_net_admin=eip" in hints[0]
    assert session["not_recorded"] == ["capture (no privileges)"]
    assert "not recorded: capture (no privileges)" in done.stdout
    alarm_lines = [line for line in done.stdout.splitlines() if "ALARM:" in line]
    assert alarm_lines and "browser(rtp-dump)" in alarm_lines[0]
    assert done.returncode == 5, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"]["verdict"] == "content-leak"


def test_without_upstream_ca_the_https_page_fails_in_one_line(tmp_path: Path) -> None:
    """The proxy verifies the server: without --upstream-ca the lab page's self-signed
    certificate is refused, and the audit says so in one line and ends (exit 2), at once."""
    out = tmp_path / "untrusted"
    with lab_page("ui-only") as page:
        command = [
            *("ip", "netns", "exec", page.namespace, sys.executable, "-c"),
            "from decoders.cli import main; main()",
            *("audit", page.url, "--headless", "--plan", PLAN, "--duration", DURATION),
            *("--out", str(out)),
        ]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        took = time.monotonic() - started
        left = subprocess.run(
            ["ip", "netns", "pids", page.namespace], capture_output=True, text=True, check=True
        ).stdout.split()
    assert left == [] and _processes_naming(str(out)) == []
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        "mutecheck: error: the proxy refused 10.77.0.2:8080's TLS certificate (Certificate "
        "verify failed: self-signed certificate); if you trust that server, give the CA that "
        "issued its certificate with --upstream-ca PEM"
    )
    assert took < float(DURATION)  # ended when the proxy refused, not at --duration
    assert "Certificate verify failed" in (out / "proxy.log").read_text()


PROXY_LOG_EXCERPT = """\
[18:46:22.034][127.0.0.1:43114] client connect
[18:46:22.048][127.0.0.1:43114] error establishing server connection: [Errno -3] Temporary \
failure in name resolution
127.0.0.1:43114: GET http://clients2.google.com/time/1/current?cup2key=ML-DS…
 << [Errno -3] Temporary failure in name resolution
[18:46:22.157][127.0.0.1:43106] server connect 10.77.0.2:8080
[18:46:22.172][127.0.0.1:43136] client connect
[18:46:22.173][127.0.0.1:43106] Server TLS handshake failed. Certificate verify failed: \
self-signed certificate
127.0.0.1:43106: GET https://10.77.0.2:8080/?variant=ui-only&durations=1000,… HTTP/2.0
 << Certificate verify failed: self-signed certificate
[18:46:22.180][127.0.0.1:43106] server disconnect 10.77.0.2:8080
"""
"""From a real audit of the HTTPS lab page without --upstream-ca (mitmdump 12)."""


def test_certificate_failures_in_the_proxy_log_however_it_is_cut() -> None:
    expected = [("10.77.0.2:8080", "Certificate verify failed: self-signed certificate")]
    for size in (1, 7, 64, len(PROXY_LOG_EXCERPT)):
        reader = CertificateFailures()
        pieces = range(0, len(PROXY_LOG_EXCERPT), size)
        found = [f for i in pieces for f in reader.feed(PROXY_LOG_EXCERPT[i : i + size])]
        assert found == expected, size
    assert url_server("https://10.77.0.2:8080/?x=1") == "10.77.0.2:8080"
    assert url_server("https://call.example.org/room") == "call.example.org:443"
    assert url_server("http://[fd00::2]/") == "[fd00::2]:80"


def test_upstream_ca_adds_to_the_public_cas(tmp_path: Path) -> None:
    """--upstream-ca adds a CA: the bundle mitmproxy gets is certifi's followed by it."""
    import ssl

    import certifi

    from decoders.lab.turn import write_certificate

    write_certificate("10.77.0.2", tmp_path / "ca.pem", tmp_path / "key.pem")
    assert check_ca_file(tmp_path / "ca.pem") == tmp_path / "ca.pem"
    bundle = upstream_bundle(tmp_path / "ca.pem", tmp_path)
    public = ssl.create_default_context(cafile=certifi.where()).cert_store_stats()["x509_ca"]
    both = ssl.create_default_context(cafile=bundle).cert_store_stats()["x509"]
    assert both == public + 1
    assert bundle.read_bytes().endswith((tmp_path / "ca.pem").read_bytes())
    with pytest.raises(ValueError, match="not a PEM certificate"):
        check_ca_file(tmp_path / "key.pem")


def test_check_url_takes_http_and_https_only() -> None:
    assert check_url("https://call.example.org/room") == "https://call.example.org/room"
    for bad in ("ftp://x/", "call.example.org", "http:///nohost"):
        with pytest.raises(ValueError, match="not an http"):
            check_url(bad)


def test_route_and_addresses_of_this_namespace() -> None:
    assert route_interface("127.0.0.1") == "lo"
    assert route_interface("no-such-host.invalid") is None
    assert all(not a.startswith("127.") for a in local_addresses())
    port = free_port()
    assert 1024 <= port < 65536
    assert "udp" in CAPTURE_FILTER and "3478" in CAPTURE_FILTER and "5349" in CAPTURE_FILTER


def test_ctrl_c_ends_the_call_and_still_reports(tmp_path: Path, mic: Path) -> None:
    """SIGINT (Ctrl-C) mid-call: the call ends, the report is written, nothing is left."""
    out = tmp_path / "interrupted"
    with lab_page("track-disabled") as page:
        command = [
            *("ip", "netns", "exec", page.namespace, sys.executable, "-c"),
            "from decoders.cli import main; main()",
            *("audit", page.url, "--headless", "--plan", PLAN),
            *("--out", str(out), "--fake-mic", str(mic), *_trust(page)),
        ]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        time.sleep(MUTE_AT + 12.0)  # past the plan's unmute: the call is interrupted
        child.send_signal(signal.SIGINT)
        stdout, _ = child.communicate(timeout=90)
        left = subprocess.run(
            ["ip", "netns", "pids", page.namespace], capture_output=True, text=True, check=True
        ).stdout.split()
    assert left == [] and _processes_naming(str(out)) == []
    assert child.returncode == 0, stdout
    assert "call over (quit)" in stdout and "verdict: no-leak (exit code 0)" in stdout
    assert json.loads((out / "session.json").read_text())["ended_by"] == "quit"
    assert (out / "report.html").is_file() and (out / "capture.pcapng").stat().st_size > 0


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _screen_when(name: str, ready: Callable[[str], bool], timeout: float = 40.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-t", name, "-S", "-200")
        if ready(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"the screen never got there:\n{screen}")


def test_live_view_keys_under_tmux(tmp_path: Path, mic: Path) -> None:
    """The audit's live view in a terminal: keys m and u mark through the addon, the alarm
    shows on the screen, q ends the call and the report follows."""
    out, done = tmp_path / "keys", tmp_path / "exit"
    root = Path(__file__).resolve().parents[2]
    name = f"mutecheck-audit-{os.getpid()}"
    with lab_page("ui-only") as page:
        command = (
            f"unset COLUMNS LINES; ip netns exec {page.namespace} env PYTHONPATH={root} "
            f"{sys.executable} -c 'from decoders.cli import main; main()' audit '{page.url}' "
            f"--headless --out {out} --fake-mic {mic} --upstream-ca {page.certificate}; "
            f"echo $? > {done}; sleep 60"
        )
        _tmux("new-session", "-d", "-s", name, "-x", "200", "-y", "50", command)
        try:
            screen = _screen_when(name, lambda s: "browser: Chromium" in s)
            started = time.monotonic()
            assert "mutecheck audit https://10.77.0.2:8080/" in screen
            assert "keys: m muted  u unmuted  q quit" in screen
            time.sleep(max(0.0, started + MUTE_AT - time.monotonic()))
            _tmux("send-keys", "-t", name, "m")
            screen = _screen_when(name, lambda s: "ALARM: sound is leaving while muted" in s)
            assert "MUTED (mark, since" in screen and "mark: muted (key)" in screen
            row = next(line for line in screen.splitlines() if line.startswith("  SSRC 0x"))
            assert "audio" in row and "dBov" in row
            time.sleep(max(0.0, started + UNMUTE_AT - time.monotonic()))
            _tmux("send-keys", "-t", name, "u")
            _screen_when(name, lambda s: "mark: unmuted (key)" in s)
            _tmux("send-keys", "-t", name, "q")
            screen = _screen_when(name, lambda s: "verdict: content-leak (exit code 5)" in s)
            assert "call over (quit); 1 alarm(s)" in screen
            _screen_when(name, lambda s: done.is_file() and done.read_text().strip() == "5")
        finally:
            subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
        left = subprocess.run(
            ["ip", "netns", "pids", page.namespace], capture_output=True, text=True, check=True
        ).stdout.split()
    assert left == []
    assert [state for state, _ in _marks(out)] == ["muted", "unmuted"]


def test_chromium_trusts_the_proxy_for_https(tmp_path: Path) -> None:
    """HTTPS through the proxy without --ignore-certificate-errors: Chromium completes TLS with
    mitmproxy's certificate (its CA is in the throwaway HOME's NSS database) and sends the
    request, which the proxy logs (the server is not there: a 502). Without that database
    entry the proxy logs "The client does not trust the proxy's certificate" instead."""
    out = tmp_path / "https"
    with lab_page("ui-only") as page:
        command = [
            *("ip", "netns", "exec", page.namespace, sys.executable, "-c"),
            "from decoders.cli import main; main()",
            *("audit", "https://10.77.0.2:8443/", "--headless", "--duration", "6"),
            *("--out", str(out)),
        ]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 3, done.stdout + done.stderr  # no call, no mute: inconclusive
    log = (out / "proxy.log").read_text()
    assert "GET https://10.77.0.2:8443/" in log
    assert "does not trust the proxy's certificate for 10.77.0.2" not in log


def test_closing_the_browser_ends_the_call(tmp_path: Path, mic: Path) -> None:
    """The browser gone (here: its main process killed) ends the call; the report follows."""
    out = tmp_path / "closed"
    with lab_page("ui-only") as page:
        command = [
            *("ip", "netns", "exec", page.namespace, sys.executable, "-c"),
            "from decoders.cli import main; main()",
            *("audit", page.url, "--headless", "--plan", PLAN),
            *("--out", str(out), "--fake-mic", str(mic), *_trust(page)),
        ]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        time.sleep(UNMUTE_AT + 2.0)
        browsers = [
            int(line.split()[0])
            for line in subprocess.run(
                ["ps", "-o", "pid=,cmd=", "--ppid", str(child.pid)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.splitlines()
            if "chromium" in line
        ]
        assert len(browsers) == 1
        os.kill(browsers[0], signal.SIGKILL)
        stdout, _ = child.communicate(timeout=90)
        left = subprocess.run(
            ["ip", "netns", "pids", page.namespace], capture_output=True, text=True, check=True
        ).stdout.split()
    assert left == [] and _processes_naming(str(out)) == []
    assert "call over (the browser closed)" in stdout
    assert child.returncode == 5, stdout  # ui-only: the muted window was recorded whole
    assert json.loads((out / "session.json").read_text())["ended_by"] == "the browser closed"
