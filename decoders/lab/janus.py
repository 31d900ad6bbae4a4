"""Janus in the lab: record a real third-party app's mute (the Janus 1.1.2 demos from Debian).

Layout (the lab's two namespaces, :mod:`decoders.lab.record`)::

    namespace mutecheck-b-<tag>                     namespace mutecheck-p-<tag>
    Chromium (the tester; fake mic = reference)     janus -F <work>/janus (private config):
      DevTools pipe <- this process                   REST https :8089/janus, WSS :8989
      └─ HTTPS/WSS via mitmdump 127.0.0.1:8081         ICE on mcp0 only, no STUN/TURN
         (addons/mutecheck.py + allowlist.py)       demo pages https :8443 (our settings.js)
                                                    [--peer] a second Chromium (peer speech)
                                                    dumpcap on mcp0
    10.77.0.1/24  mcb0 ============ veth ============ mcp0  10.77.0.2/24

The demos are Debian's ``janus-demos`` pages, unchanged, served with a ``settings.js`` of ours
(the server URL of the chosen transport, ``iceServers: []``, ``token``/``apisecret`` defined).
Chromium is driven over the DevTools protocol (:mod:`decoders.lab.cdp`): open the demo, press
Start, join or call, wait until audio RTP flows, click the demo's own mute control with a
trusted mouse event, wait, click it again, wait, hang up. A capture-phase click listener
injected before the demo's scripts records the page's own click times: they are the
ground-truth timeline, and each is marked to the addon (``https://mutecheck.mark``) at once.
Chromium's plaintext RTP dump is kept; from it, per mute window, :mod:`decoders.lab.groundtruth`
decides ``expected.json`` (never from the tool under test).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from decoders import outputs
from decoders.errors import MalformedPacket
from decoders.lab import turn
from decoders.lab.record import (
    ADDON,
    ALLOWLIST,
    BROWSER_ADDRESS,
    BROWSER_INTERFACE,
    CAPTURE_FILTER,
    CHROMIUM,
    CHROMIUM_FLAGS,
    MARK_HOST,
    PEER_ADDRESS,
    PEER_INTERFACE,
    PEER_REFERENCE_NAME,
    PROXY_PORT,
    RTPDUMP_FLAGS,
    RTPDUMP_LOG,
    LabError,
    LabNetwork,
    _child_env,
    _file_entry,
    _place_reference,
    _refused_summary,
    _step,
    _wait_for_capture,
    create_network,
    mitmdump_command,
    tail_text,
    timeline_document,
    tool_versions,
    wait_for_log,
)

JANUS_BINARY: Final = "/usr/bin/janus"
DEMOS: Final = Path("/usr/share/janus/demos")
JANUS_LIBRARIES: Final = Path("/usr/lib/x86_64-linux-gnu/janus")
REST_PORT: Final = 8089
WSS_PORT: Final = 8989
PAGES_PORT: Final = 8443
RTP_PORTS: Final = (20000, 20199)
TRANSPORTS: Final = ("rest", "ws")
DEFAULT_DURATIONS: Final = (3.0, 4.0, 3.0)
READY_LINES: Final = {
    "rest": f"HTTPS webserver started (port {REST_PORT}",
    "ws": f"Secure Websockets server started (port {WSS_PORT})",
}
"""What Janus logs once the transport listens."""
USED_PLUGINS: Final = ("audiobridge", "videoroom", "echotest", "videocall")
UNUSED_PLUGINS: Final = (
    "duktape",
    "lua",
    "nosip",
    "recordplay",
    "sip",
    "streaming",
    "textroom",
    "voicemail",
)
UNUSED_TRANSPORTS: Final = ("mqtt", "nanomsg", "pfunix", "rabbitmq")
UNUSED_EVENTS: Final = ("gelfevh", "mqttevh", "nanomsgevh", "rabbitmqevh", "sampleevh", "wsevh")
REFERENCE_MARGIN_S: Final = 10.0
"""Fake-mic signal beyond the scenario: launching, joining and the first audio."""
ROOM: Final = 1234
ROOM_BITRATE: Final = 64000
"""VideoRoom publishers' bitrate cap (REMB), to keep the committed captures small."""
AUDIO_FLOWING_PACKETS: Final = 25
"""Outbound audio RTP packets (getStats) before the scenario starts: ~0.5 s of audio."""
TESTER: Final = "tester"
PROXY_BYPASS: Final = f"<-loopback>;{PEER_ADDRESS}:{PAGES_PORT}"
"""The demo pages (static files, no signaling) go straight to their server, not the proxy."""
PEER_NAME: Final = "peer"


@dataclass(frozen=True, slots=True)
class App:
    """One Janus demo: its page, its mute control, and what its call needs."""

    name: str
    page: str
    plugin: str
    mute_selector: str
    needs_peer: bool
    """The call needs a second participant (VideoCall has nobody to call otherwise)."""
    mute_does: str
    """What the demo's mute does, read from its JavaScript (captures/README.md measures it)."""
    script: str = ""
    """JavaScript the lab runs in the tester's page before the demo's own (after
    :data:`INSTRUMENT`): empty for the demos as shipped."""


#: The VideoRoom demo's Mute button as an app that mutes on the server would make it: a click
#: on ``#mute`` (the capture-phase listener on window runs before the button's own jQuery
#: handler, which it stops, after :data:`INSTRUMENT` has timed the click) sends Janus 1.x's
#: ``configure`` with ``streams: [{mid, send}]`` for the mid of the audio sender's transceiver.
STREAMS_MUTE: Final = """
(() => {
  let muted = false;
  addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("#mute") : null;
    if (!button || typeof sfutest === "undefined" || !sfutest) return;
    event.stopImmediatePropagation();
    event.preventDefault();
    const pc = sfutest.webrtcStuff && sfutest.webrtcStuff.pc;
    const audio = pc && pc.getTransceivers().find(
      (t) => t.sender && t.sender.track && t.sender.track.kind === "audio");
    if (!audio || audio.mid === null) return;
    muted = !muted;
    const streams = [{ mid: audio.mid, send: !muted }];
    sfutest.send({ message: { request: "configure", streams } });
    button.textContent = muted ? "Unmute" : "Mute";
  }, true);
})();
"""

APPS: Final = {
    app.name: app
    for app in (
        App(
            "janus-audiobridge",
            "audiobridgetest.html",
            "janus.plugin.audiobridge",
            "#toggleaudio",
            needs_peer=False,
            mute_does="sends {request: 'configure', muted: true} to the AudioBridge plugin; the "
            "track stays enabled (server-side mute: the mixer drops you)",
        ),
        App(
            "janus-videoroom",
            "videoroomtest.html",
            "janus.plugin.videoroom",
            "#mute",
            needs_peer=False,
            mute_does="janus.js muteAudio(): the audio sender's track.enabled = false; "
            "nothing is sent to Janus",
        ),
        App(
            "janus-videoroom-streams",
            "videoroomtest.html",
            "janus.plugin.videoroom",
            "#mute",
            needs_peer=False,
            mute_does="the VideoRoom demo's Mute button rewired by the lab to Janus 1.x's "
            "server-side form: configure {streams: [{mid: <the audio sender's mid>, send: "
            "false}]}; the track stays enabled (server-side: the plugin stops relaying the "
            "audio to the room)",
            script=STREAMS_MUTE,
        ),
        App(
            "janus-echotest",
            "echotest.html",
            "janus.plugin.echotest",
            "#toggleaudio",
            needs_peer=False,
            mute_does="sends {audio: false} to the EchoTest plugin; the track stays enabled "
            "(server-side: the plugin stops echoing the audio)",
        ),
        App(
            "janus-videocall",
            "videocalltest.html",
            "janus.plugin.videocall",
            "#toggleaudio",
            needs_peer=True,
            mute_does="sends {request: 'set', audio: false} to the VideoCall plugin; the track "
            "stays enabled (server-side: the plugin stops relaying the audio to the callee)",
        ),
    )
}

#: Runs in every document before the demo's own scripts: the page's own click times (capture
#: phase, so before the demo's handlers), when getUserMedia was called, the peer connections.
INSTRUMENT: Final = """
(() => {
  const SMALL_VIDEO = { width: { ideal: 160 }, height: { ideal: 120 }, frameRate: { ideal: 5 } };
  const state = { clicks: [], getusermedia: [], pcs: [] };
  Object.defineProperty(window, "__mutecheck", { value: state });
  addEventListener("click", (event) => {
    const el = event.target instanceof Element
      ? (event.target.closest("button, a, input") || event.target) : null;
    state.clicks.push({
      t_ms: performance.timeOrigin + event.timeStamp,
      id: el ? el.id : "",
      text: el ? (el.textContent || "").trim().slice(0, 40) : "",
      trusted: event.isTrusted,
    });
  }, true);
  const devices = navigator.mediaDevices;
  if (devices && devices.getUserMedia) {
    const original = devices.getUserMedia.bind(devices);
    devices.getUserMedia = (constraints) => {
      state.getusermedia.push(Date.now());
      // the fake camera small and slow: keeps the recordings small; the audio is untouched
      if (constraints && constraints.video) {
        constraints = Object.assign({}, constraints, { video: SMALL_VIDEO });
      }
      return original(constraints);
    };
  }
  const Native = window.RTCPeerConnection;
  if (Native) {
    window.RTCPeerConnection = class extends Native {
      constructor(...args) { super(...args); state.pcs.push(this); }
    };
  }
})();
"""

#: Outbound audio RTP packets of the page's open peer connections (getStats).
AUDIO_SENT_JS: Final = """(async () => {
  let sent = 0;
  for (const pc of window.__mutecheck.pcs) {
    if (pc.connectionState === "closed") continue;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "outbound-rtp" && r.kind === "audio") sent += r.packetsSent || 0;
    });
  }
  return sent;
})()"""

#: Inbound audio of the page's open peer connections (getStats): [packets, total audio energy].
RECEIVED_AUDIO_JS: Final = """(async () => {
  let packets = 0, energy = 0;
  for (const pc of window.__mutecheck.pcs) {
    if (pc.connectionState === "closed") continue;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "audio") {
        packets += r.packetsReceived || 0;
        energy += r.totalAudioEnergy || 0;
      }
    });
  }
  return [packets, energy];
})()"""
RECEIVED_SAMPLE_S: Final = 0.25
"""How often the receiving side's inbound audio is read during the phases."""
RECEIVED_SETTLE_S: Final = 0.3
"""A phase's first moments after a click are left out of its figures (the request's way to the
server, the jitter buffer)."""

#: The SDP of the connection that sends audio (its offer and answer).
SENDING_SDP_JS: Final = """(() => {
  for (const pc of window.__mutecheck.pcs) {
    const l = pc.localDescription, r = pc.remoteDescription;
    if (!l || !r) continue;
    if (!pc.getSenders().some((s) => s.track && s.track.kind === "audio")) continue;
    return l.type === "offer"
      ? { offer: l.sdp, answer: r.sdp } : { offer: r.sdp, answer: l.sdp, janus_offered: true };
  }
  return null;
})()"""


def janus_config(folder: Path, certificate: Path, key: Path) -> None:
    """Write Janus's whole private configuration into ``folder`` (never /etc/janus).

    ICE only on the peer namespace's veth (``interface``, ``nat.ice_enforce_list``), no
    STUN/TURN, RTP ports in :data:`RTP_PORTS`; the REST transport on HTTPS only, the WebSocket
    one on WSS only, both with the run's self-signed certificate; only the four demo plugins.
    """
    libs = JANUS_LIBRARIES

    def disable(prefix: str, names: tuple[str, ...]) -> str:
        return ",".join(f"libjanus_{prefix}{name}.so" for name in names)

    (folder / "janus.jcfg").write_text(
        f"""general: {{
	configs_folder = "{folder}"
	plugins_folder = "{libs / "plugins"}"
	transports_folder = "{libs / "transports"}"
	events_folder = "{libs / "events"}"
	loggers_folder = "{libs / "loggers"}"
	debug_level = 4
	interface = "{PEER_ADDRESS}"
	server_name = "mutecheck-lab"
}}
certificates: {{
}}
media: {{
	rtp_port_range = "{RTP_PORTS[0]}-{RTP_PORTS[1]}"
}}
nat: {{
	nice_debug = false
	ignore_mdns = true
	ice_enforce_list = "{PEER_INTERFACE}"
}}
plugins: {{
	disable = "{disable("", UNUSED_PLUGINS)}"
}}
transports: {{
	disable = "{disable("", UNUSED_TRANSPORTS)}"
}}
loggers: {{
	disable = "libjanus_jsonlog.so"
}}
events: {{
	broadcast = false
	disable = "{disable("", UNUSED_EVENTS)}"
}}
"""
    )
    certificates = f"""certificates: {{
	cert_pem = "{certificate}"
	cert_key = "{key}"
}}
"""
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
	json = "indented"
	base_path = "/janus"
	http = false
	https = true
	secure_port = {REST_PORT}
}}
admin: {{
	admin_http = false
	admin_https = false
}}
{certificates}"""
    )
    (folder / "janus.transport.websockets.jcfg").write_text(
        f"""general: {{
	json = "indented"
	ws = false
	wss = true
	wss_port = {WSS_PORT}
	wss_ip = "{PEER_ADDRESS}"
}}
admin: {{
	admin_ws = false
	admin_wss = false
}}
{certificates}"""
    )
    room = f"""room-{ROOM}: {{
	description = "Demo Room"
	secret = "adminpwd"
"""
    (folder / "janus.plugin.audiobridge.jcfg").write_text(
        f"general: {{\n}}\n{room}\tsampling_rate = 48000\n\trecord = false\n}}\n"
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text(
        f"general: {{\n}}\n{room}\tpublishers = 6\n\tbitrate = {ROOM_BITRATE}\n"
        "\tfir_freq = 10\n\trecord = false\n}\n"
    )
    for plugin in ("echotest", "videocall"):
        (folder / f"janus.plugin.{plugin}.jcfg").write_text("general: {\n}\n")


def server_url(transport: str) -> str:
    """The Janus API URL the demos use for ``transport`` (``rest`` or ``ws``)."""
    if transport == "rest":
        return f"https://{PEER_ADDRESS}:{REST_PORT}/janus"
    if transport == "ws":
        return f"wss://{PEER_ADDRESS}:{WSS_PORT}"
    raise ValueError(f"unknown transport {transport!r}; known: {', '.join(TRANSPORTS)}")


def settings_js(transport: str) -> str:
    """Our ``settings.js`` for the demos: our Janus, no ICE servers, token/apisecret defined
    (Debian's stock file leaves them undeclared and the demos' Start throws ReferenceError)."""
    return (
        "// mutecheck lab: the demos talk to the lab's Janus, with no STUN/TURN server\n"
        f"var server = {json.dumps(server_url(transport))};\n"
        "var iceServers = [];\n"
        "var token = null;\n"
        "var apisecret = null;\n"
    )


def page_url(app: App, *, dtx: bool) -> str:
    """The demo page's URL (VideoRoom's own ``?dtx=yes`` option munges ``usedtx=1`` in)."""
    query = "?" + urllib.parse.urlencode({"dtx": "yes"}) if dtx else ""
    return f"https://{PEER_ADDRESS}:{PAGES_PORT}/{app.page}{query}"


def session_name(app: str, transport: str = "rest", *, dtx: bool = False) -> str:
    """``janus-<demo>[-dtx][-ws]`` (``<demo>`` may name a variant: ``videoroom-streams``)."""
    return app + ("-dtx" if dtx else "") + ("-ws" if transport == "ws" else "")


# -- the demo pages' HTTPS server (run inside the peer namespace) ---------------------------------


class _DemoHandler(http.server.SimpleHTTPRequestHandler):
    """Debian's demo folder, with our settings.js in place of the stock one."""

    settings: bytes = b""

    def do_GET(self) -> None:
        if urllib.parse.urlsplit(self.path).path == "/settings.js":
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.send_header("Content-Length", str(len(self.settings)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(self.settings)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def serve_demos(
    address: str, port: int, certificate: Path, key: Path, settings: bytes, root: Path = DEMOS
) -> None:
    """Serve ``root`` over HTTPS with ``settings`` as ``/settings.js`` (until killed)."""
    handler = type(
        "DemoHandler",
        (_DemoHandler,),
        {"settings": settings, "__init__": _bind_directory(root)},
    )
    server = http.server.ThreadingHTTPServer((address, port), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"serving {root} on https://{address}:{port}", flush=True)
    server.serve_forever()


def _bind_directory(root: Path) -> Callable[..., None]:
    def init(self: _DemoHandler, *args: Any, **kwargs: Any) -> None:
        _DemoHandler.__init__(self, *args, directory=str(root), **kwargs)

    return init


# -- one recording --------------------------------------------------------------------------------


@dataclass
class _Run:
    """What the scenario measured (epoch seconds)."""

    events: list[dict[str, Any]]
    end_ms: float
    getusermedia_ms: float | None
    audio_flowing_ms: float
    sdp: dict[str, Any] | None
    clicks: list[dict[str, Any]]
    console: list[str]
    peer_console: list[str]
    received_by: str | None = None
    """Whose inbound audio was sampled: ``peer`` (the other participant), ``tester`` (EchoTest's
    echo), or None."""
    received: list[tuple[float, int, float]] = field(default_factory=list)
    """(epoch s, packets received, total audio energy) of that side's inbound audio."""


def _check_tools() -> None:
    import importlib.metadata

    if os.geteuid() != 0:
        raise RuntimeError("network namespaces need root")
    missing = [tool for tool in ("ip", "dumpcap", "espeak-ng", "sox") if shutil.which(tool) is None]
    if not os.access(JANUS_BINARY, os.X_OK):
        missing.append(f"{JANUS_BINARY} (Debian package janus)")
    if not (DEMOS / "videoroomtest.js").is_file():
        missing.append(f"{DEMOS} (Debian package janus-demos)")
    if not (DEMOS / "javascript" / "janus-gateway" / "janus.min.js").is_file():
        missing.append("janus.min.js (Debian package libjs-janus-gateway)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    try:
        importlib.metadata.version("mitmproxy")
    except importlib.metadata.PackageNotFoundError:
        missing.append("mitmproxy (Python package)")
    if missing:
        raise RuntimeError(f"missing: {', '.join(missing)}")


def _browser_command(
    lab: LabNetwork, namespace: str, name: str, mic: Path, extra: list[str]
) -> list[str]:
    home = lab.work / f"{name}-home"
    for sub in ("config", "cache", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return [
        *("ip", "netns", "exec", namespace, CHROMIUM),
        *[f for f in CHROMIUM_FLAGS if not f.startswith("--proxy-")],
        f"--user-data-dir={lab.work / f'{name}-profile'}",
        f"--use-file-for-fake-audio-capture={mic}",
        "--ignore-certificate-errors",  # the lab's self-signed and mitmproxy's certificates
        *extra,
    ]


def _browser_env(lab: LabNetwork, name: str) -> dict[str, str]:
    home = lab.work / f"{name}-home"
    return _child_env() | {
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }


def _mark(tab: Any, state: str, t_ms: float) -> None:
    """Tell the addon (through the proxy) the page's click time, as a tester marks it."""
    url = f"https://{MARK_HOST}/{state}?t={t_ms / 1000:.6f}&note=janus-click"
    tab.evaluate(
        f"fetch({json.dumps(url)}, {{mode: 'no-cors', cache: 'no-store'}})"
        ".then(() => true, (e) => String(e))",
        timeout=10,
    )


def _click_and_time(tab: Any, selector: str) -> dict[str, Any]:
    """A trusted click on ``selector``; the page's own record of it (``t_ms``: epoch ms)."""
    before = int(tab.evaluate("window.__mutecheck.clicks.length"))
    tab.click(selector)
    click = tab.wait_for(
        f"window.__mutecheck.clicks.length > {before} && window.__mutecheck.clicks[{before}]",
        timeout=5,
        what=f"click on {selector} seen by the page",
    )
    if not click.get("trusted"):
        raise RuntimeError(f"the click on {selector} was not trusted")
    return dict(click)


def _visible(selector: str) -> str:
    return (
        f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
        " return !!e && e.offsetParent !== null && !e.disabled; })()"
    )


def _start_and_join(tab: Any, app: App, name: str, *, call: str | None = None) -> None:
    """Press Start; register/join with ``name`` where the demo asks; call ``call`` if given."""
    tab.wait_for(_visible("#start"), timeout=15, what="the Start button")
    tab.click("#start")
    if app.name == "janus-echotest":
        return
    tab.wait_for(_visible("#username"), timeout=20, what="the name field")
    tab.type_into("#username", name)
    tab.click("#register")
    if call is not None:
        tab.wait_for(_visible("#peer"), timeout=20, what="the field for whom to call")
        tab.type_into("#peer", call)
        tab.click("#call")


def _pause(seconds: float, receiver: Any, samples: list[tuple[float, int, float]]) -> None:
    """Wait ``seconds``, reading ``receiver``'s inbound audio every :data:`RECEIVED_SAMPLE_S`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if receiver is not None:
            packets, energy = receiver.evaluate(RECEIVED_AUDIO_JS)
            samples.append((time.time(), int(packets), float(energy)))
        time.sleep(min(RECEIVED_SAMPLE_S, max(0.0, end - time.monotonic())))


def received_phases(
    samples: Sequence[tuple[float, int, float]], events: Sequence[dict[str, Any]], end_s: float
) -> list[dict[str, Any]]:
    """Per phase of the scenario (from each event's click, plus :data:`RECEIVED_SETTLE_S` after a
    click, to the next one or ``end_s``): the audio packets and energy per second the sampled
    side received, between the first and last samples inside it (None with fewer than two)."""
    phases: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        start = event["t_ms"] / 1000.0 + (RECEIVED_SETTLE_S if index else 0.0)
        stop = events[index + 1]["t_ms"] / 1000.0 if index + 1 < len(events) else end_s
        inside = [sample for sample in samples if start <= sample[0] <= stop]
        phase: dict[str, Any] = {
            "state": event["state"],
            "from": round(start, 3),
            "to": round(stop, 3),
            "packets_per_s": None,
            "audio_energy_per_s": None,
        }
        if len(inside) >= 2 and inside[-1][0] > inside[0][0]:
            span = inside[-1][0] - inside[0][0]
            phase["packets_per_s"] = round((inside[-1][1] - inside[0][1]) / span, 1)
            phase["audio_energy_per_s"] = round((inside[-1][2] - inside[0][2]) / span, 6)
        phases.append(phase)
    return phases


def _wait_audio(tab: Any, timeout: float = 30.0) -> None:
    tab.wait_for(
        f"{AUDIO_SENT_JS}.then((n) => n > {AUDIO_FLOWING_PACKETS})",
        timeout=timeout,
        what="outbound audio RTP",
    )


def _run_peer(lab: LabNetwork, app: App, mic: Path, transport: str) -> tuple[Any, Any]:
    """The second participant: headless Chromium in the server namespace, its own speech as mic,
    joined (or registered, for VideoCall) before the tester arrives."""
    from decoders.lab.cdp import Browser

    browser = Browser(
        _browser_command(lab, lab.peer_ns, "peer-chromium", mic, []),
        log=lab.work / "peer-chromium.log",
        env=_browser_env(lab, "peer-chromium"),
    )
    tab = browser.new_tab()
    tab.open(page_url(app, dtx=False), before_scripts=INSTRUMENT)
    _start_and_join(tab, app, PEER_NAME)
    if app.name == "janus-videocall":
        tab.wait_for(
            f"document.body.innerText.includes('Call someone') || {_visible('#peer')}",
            timeout=20,
            what="the peer registered",
        )
    else:
        _wait_audio(tab)
    return browser, tab


def _answer_call(peer_tab: Any) -> None:
    """VideoCall: the callee presses the dialog's Answer button."""
    peer_tab.wait_for(_visible(".bootbox .btn-success"), timeout=20, what="the incoming call")
    peer_tab.click(".bootbox .btn-success")


def _scenario(
    lab: LabNetwork,
    app: App,
    *,
    transport: str,
    dtx: bool,
    durations: tuple[float, float, float],
    mic: Path,
    peer_mic: Path | None,
    rtpdump: bool,
) -> _Run:
    from decoders.lab.cdp import Browser

    peer_browser = peer_tab = None
    if peer_mic is not None:
        peer_browser, peer_tab = _run_peer(lab, app, peer_mic, transport)
    browser = Browser(
        _browser_command(
            lab,
            lab.browser_ns,
            "chromium",
            mic,
            [
                f"--proxy-server=127.0.0.1:{PROXY_PORT}",
                f"--proxy-bypass-list={PROXY_BYPASS}",
                *(RTPDUMP_FLAGS if rtpdump else ()),
            ],
        ),
        log=lab.work / "chromium.log",
        env=_browser_env(lab, "chromium"),
    )
    try:
        tab = browser.new_tab()
        tab.open(page_url(app, dtx=dtx), before_scripts=INSTRUMENT + app.script)
        _start_and_join(tab, app, TESTER, call=PEER_NAME if app.name == "janus-videocall" else None)
        if app.name == "janus-videocall" and peer_tab is not None:
            _answer_call(peer_tab)
        _wait_audio(tab)
        tab.wait_for(_visible(app.mute_selector), timeout=20, what="the mute control")
        # what the server passed on: the other participant's inbound audio (EchoTest: the echo)
        receiver = (
            peer_tab if peer_tab is not None else tab if app.name == "janus-echotest" else None
        )
        received: list[tuple[float, int, float]] = []
        started = time.time() * 1000.0
        _mark(tab, "unmuted", started)
        events = [{"t_ms": started, "state": "unmuted"}]
        _pause(durations[0], receiver, received)
        for state, pause in (("muted", durations[1]), ("unmuted", durations[2])):
            t_ms = float(_click_and_time(tab, app.mute_selector)["t_ms"])
            _mark(tab, state, t_ms)
            events.append({"t_ms": t_ms, "state": state})
            _pause(pause, receiver, received)
        # read before hanging up: some demos reload the page once their session is destroyed
        sdp = tab.evaluate(SENDING_SDP_JS)
        gum = tab.evaluate("window.__mutecheck.getusermedia[0] || null")
        clicks = list(tab.evaluate("window.__mutecheck.clicks"))
        hangup = "#call" if app.name == "janus-videocall" else "#start"
        clicks.append(_click_and_time(tab, hangup))  # VideoCall: Hangup; the others: Stop
        end_ms = float(clicks[-1]["t_ms"])
        time.sleep(0.5)  # the hangup's last signaling through the proxy
        return _Run(
            events=events,
            end_ms=end_ms,
            getusermedia_ms=gum,
            audio_flowing_ms=started,
            sdp=sdp,
            clicks=clicks,
            console=list(tab.console),
            peer_console=list(peer_tab.console) if peer_tab is not None else [],
            received_by=None if receiver is None else "peer" if receiver is peer_tab else "tester",
            received=received,
        )
    finally:
        browser.close()
        if peer_browser is not None:
            peer_browser.close()


def record_janus(
    app_name: str,
    out_dir: Path,
    *,
    transport: str = "rest",
    peer: bool = False,
    dtx: bool = False,
    durations: tuple[float, float, float] = DEFAULT_DURATIONS,
    addon: Path | None = ADDON,
    rtpdump: bool = True,
    shared_reference: Path | None = None,
    shared_peer_reference: Path | None = None,
) -> Path:
    """Record one Janus demo call into ``out_dir`` (created; must hold no files).

    ``peer`` adds a second participant talking from the server side (always for VideoCall,
    which has nobody to call otherwise); ``dtx`` opens VideoRoom with its ``?dtx=yes`` option.
    Writes capture.pcapng, events.jsonl and flows.mitm (the addon), timeline.json (the page's
    click times), offer.sdp/answer.sdp (the sending connection's), chromium-stderr.log (the
    plaintext RTP dump), reference.wav (and peer-reference.wav), session.json and
    expected.json (:func:`decoders.lab.groundtruth.expected_document`). A failed step raises
    :class:`LabError`; every process and namespace of the run is gone either way.
    """
    started = time.time()
    clock = time.monotonic()
    out_dir = Path(out_dir).resolve()
    with _step("arguments"):
        if app_name not in APPS:
            raise ValueError(f"unknown app {app_name!r}; known: {', '.join(APPS)}")
        app = APPS[app_name]
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}; known: {', '.join(TRANSPORTS)}")
        if dtx and app.page != "videoroomtest.html":
            raise ValueError("--dtx is VideoRoom's own option (janus-videoroom apps only)")
        if len(durations) != 3 or any(not 0 < d <= 60 for d in durations):
            raise ValueError(f"durations must be three values in (0, 60] s, got {durations}")
        peer = peer or app.needs_peer
        out_dir.mkdir(parents=True, exist_ok=True)
        if any(out_dir.iterdir()):
            raise ValueError(f"{out_dir} is not empty")
        if addon is not None and not addon.is_file():
            addon = None
    with _step("tools"):
        _check_tools()
    work = Path(tempfile.mkdtemp(prefix="mutecheck-janus-"))
    tag = f"{os.getpid()}-{int(started * 1000) % 100000}"
    lab = LabNetwork(work=work, browser_ns=f"mutecheck-b-{tag}", peer_ns=f"mutecheck-p-{tag}")
    failure: BaseException | None = None
    try:
        length = sum(durations) + REFERENCE_MARGIN_S
        with _step("reference signal"):
            from decoders.lab.reference import (
                make_peer_reference,
                make_reference,
                resample_wav,
            )

            reference = make_reference(work / "mic.wav", work / "reference.wav", length, work)
            reference_name = _place_reference(work / "reference.wav", out_dir, shared_reference)
            peer_mic = peer_reference_name = None
            if peer:
                make_peer_reference(work / PEER_REFERENCE_NAME, length, work)
                peer_reference_name = _place_reference(
                    work / PEER_REFERENCE_NAME, out_dir, shared_peer_reference, PEER_REFERENCE_NAME
                )
                peer_mic = work / "peer-mic.wav"
                resample_wav(work / PEER_REFERENCE_NAME, peer_mic, reference.mic_sample_rate)
        with _step("network namespaces"):
            create_network(lab)
        with _step("capture"):
            dumpcap = lab.start(
                "dumpcap",
                [
                    *("ip", "netns", "exec", lab.peer_ns, "dumpcap", "-q", "-i", PEER_INTERFACE),
                    *("-f", CAPTURE_FILTER, "-w", str(out_dir / "capture.pcapng")),
                ],
            )
            dumpcap.stop_signal = signal.SIGINT
            _wait_for_capture(dumpcap, out_dir / "capture.pcapng", timeout=10)
        with _step("janus"):
            folder = work / "janus"
            folder.mkdir()
            certificate, key = folder / "cert.pem", folder / "key.pem"
            turn.write_certificate(PEER_ADDRESS, certificate, key)
            janus_config(folder, certificate, key)
            janus = lab.start(
                "janus",
                [
                    *("ip", "netns", "exec", lab.peer_ns, JANUS_BINARY),
                    *("-F", str(folder), "-C", str(folder / "janus.jcfg"), "--disable-colors"),
                ],
            )
            for line in READY_LINES.values():
                wait_for_log(janus, line, timeout=20)
        with _step("demo pages"):
            pages = lab.start(
                "pages",
                [
                    *("ip", "netns", "exec", lab.peer_ns, sys.executable, "-m", __name__),
                    *("serve", "--address", PEER_ADDRESS, "--port", str(PAGES_PORT)),
                    *("--certificate", str(certificate), "--key", str(key)),
                    *("--transport", transport),
                ],
            )
            wait_for_log(pages, "serving", timeout=20)
        with _step("proxy"):
            proxy_command = [
                *("ip", "netns", "exec", lab.browser_ns, *mitmdump_command()),
                *("--listen-host", "127.0.0.1", "--listen-port", str(PROXY_PORT)),
                *("--set", "connection_strategy=lazy", "--set", f"confdir={work / 'mitmproxy'}"),
                *("-s", str(ALLOWLIST)),
                *("--set", f"lab_refused_log={work / 'refused.jsonl'}"),
                # Janus's and the pages' certificates are the run's self-signed one
                *("--set", "ssl_insecure=true"),
            ]
            for port in (REST_PORT, WSS_PORT):
                proxy_command += ["--set", f"lab_allow={PEER_ADDRESS}:{port}"]
            if addon is not None:
                proxy_command += ["--set", f"lab_allow={MARK_HOST}"]
                proxy_command += ["-s", str(addon), "--set", f"mutecheck_dir={out_dir}"]
            proxy = lab.start("mitmdump", proxy_command, private_home=True)
            proxy.stop_signal = signal.SIGINT
            wait_for_log(proxy, "proxy listening at", timeout=30)
            log = proxy.log.read_text(errors="replace")
            if any(sign in log for sign in ("Traceback", "error in script", "Addon error")):
                raise RuntimeError(f"a proxy script failed to load: {tail_text(proxy.log, 12)}")
        with _step("scenario"):
            run = _scenario(
                lab,
                app,
                transport=transport,
                dtx=dtx,
                durations=durations,
                mic=reference.mic_path,
                peer_mic=peer_mic,
                rtpdump=rtpdump,
            )
        with _step("teardown"):
            time.sleep(0.3)
            for process in lab.processes:
                if process.name in ("dumpcap", "mitmdump", "janus") and not process.alive():
                    raise RuntimeError(f"{process.name} stopped early: {tail_text(process.log)}")
            problems = lab.cleanup()
            if problems:
                raise RuntimeError("; ".join(problems))
        with _step("session files"):
            _write_files(out_dir, lab, run, rtpdump)
        with _step("ground truth"):
            from decoders.lab.groundtruth import expected_document

            gum_s = run.getusermedia_ms / 1000.0 if run.getusermedia_ms else None
            expected = expected_document(
                out_dir, app=app.name, dtx=dtx, gum_s=gum_s, reference=out_dir / reference_name
            )
            outputs.write_text(out_dir / "expected.json", json.dumps(expected, indent=2) + "\n")
        with _step("session files"):
            document = _session_document(
                app=app,
                transport=transport,
                dtx=dtx,
                peer_reference_name=peer_reference_name,
                durations=durations,
                lab=lab,
                run=run,
                reference_name=reference_name,
                addon=addon,
                out_dir=out_dir,
                started=started,
                wall_time_s=time.monotonic() - clock,
            )
            outputs.write_text(out_dir / "session.json", json.dumps(document, indent=2) + "\n")
        return out_dir
    except BaseException as exc:
        failure = exc
        if (work / "janus.log").is_file() and not isinstance(exc, KeyboardInterrupt):
            with contextlib.suppress(OSError):  # Janus's own account of the failure
                shutil.copyfile(work / "janus.log", out_dir / "janus.log")
        raise
    finally:
        problems = lab.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        if problems and failure is None:
            raise LabError("cleanup", "; ".join(problems))


def _write_files(out_dir: Path, lab: LabNetwork, run: _Run, rtpdump: bool) -> None:
    for name in ("capture.pcapng", "flows.mitm", "events.jsonl"):
        if (out_dir / name).is_file():
            (out_dir / name).chmod(0o644)
    if run.sdp is None:
        raise RuntimeError("the page had no connection sending audio (no SDP)")
    outputs.write_text(out_dir / "offer.sdp", str(run.sdp["offer"]))
    outputs.write_text(out_dir / "answer.sdp", str(run.sdp["answer"]))
    if rtpdump:
        from decoders.session.sdp import parse_sdp

        video = video_payload_types(parse_sdp(str(run.sdp["offer"])))
        with (lab.work / "chromium.log").open(errors="replace") as source:
            kept = without_video_dump(source, video)
        outputs.write_text(out_dir / RTPDUMP_LOG, kept)
    page_timeline = {"events": run.events, "end_ms": run.end_ms}
    timeline = timeline_document(page_timeline)
    timeline["source"] = "lab-janus"
    timeline["clock"] = "epoch"
    outputs.write_text(out_dir / "timeline.json", json.dumps(timeline, indent=2) + "\n")


def video_payload_types(sdp: Any) -> frozenset[int]:
    """The payload types the SDP gives to video (the camera and its RTX)."""
    from decoders.session.sdp import payload_types

    return frozenset(pt for pt, (kind, _) in payload_types(sdp).items() if kind == "video")


def without_video_dump(lines: Iterable[str], video: frozenset[int]) -> str:
    """Chromium's log without the RTP dump lines of video packets (the camera is not what is
    judged and its hex is most of the log); audio, RTCP and every other line are kept."""
    from decoders.media.rtpdump import parse_dump_line

    kept: list[str] = []
    for line in lines:
        with contextlib.suppress(MalformedPacket):
            dumped = parse_dump_line(line)
            if (
                dumped is not None
                and len(dumped.data) >= 12
                and 128 <= dumped.data[0] < 192
                and not 192 <= dumped.data[1] <= 223  # RTCP packet types (RFC 5761)
                and dumped.data[1] & 0x7F in video
            ):
                continue
        kept.append(line)
    return "".join(kept)


def _session_document(
    *,
    app: App,
    transport: str,
    dtx: bool,
    peer_reference_name: str | None,
    durations: tuple[float, float, float],
    lab: LabNetwork,
    run: _Run,
    reference_name: str,
    addon: Path | None,
    out_dir: Path,
    started: float,
    wall_time_s: float,
) -> dict[str, Any]:
    import hashlib
    from datetime import UTC, datetime

    def epoch_s(value: float | None) -> float | None:
        return round(value / 1000.0, 6) if value is not None else None

    present = [
        p.name
        for p in sorted(out_dir.iterdir())
        if p.is_file() and p.name not in ("session.json", "report.json")
    ]
    return {
        "version": 1,
        "source": "lab",
        "kind": "chromium-janus",
        "created": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "variant": session_name(app.name, transport, dtx=dtx),
        "app": {
            "name": app.name,
            "server": "Janus " + _janus_version(),
            "plugin": app.plugin,
            "page": page_url(app, dtx=dtx),
            "mute_control": app.mute_selector,
            "mute_does": app.mute_does,
            "transport": transport,
            "server_url": server_url(transport),
            "opus_dtx": dtx,
        },
        "scenario": {
            "phases": ["unmuted", "muted", "unmuted"],
            "durations_s": list(durations),
            "peer_talks": peer_reference_name is not None,
            "getusermedia_called": epoch_s(run.getusermedia_ms),
            "audio_flowing": epoch_s(run.audio_flowing_ms),
            "start": epoch_s(run.events[0]["t_ms"]),
            "end": epoch_s(run.end_ms),
            "clicks": [
                {
                    "t": epoch_s(float(c["t_ms"])),
                    "id": c.get("id"),
                    "text": c.get("text"),
                    "trusted": c.get("trusted"),
                }
                for c in run.clicks
            ],
            "timeline_from": "the page's own click times (capture-phase listener, "
            "performance.timeOrigin + event.timeStamp)",
            "driver": "Chrome DevTools protocol over --remote-debugging-pipe; trusted clicks "
            "(Input.dispatchMouseEvent at the element's box)",
            "chromium_flags": [
                *[f for f in CHROMIUM_FLAGS if not f.startswith("--proxy-")],
                f"--proxy-server=127.0.0.1:{PROXY_PORT}",
                f"--proxy-bypass-list={PROXY_BYPASS}",
                "--ignore-certificate-errors",
                *RTPDUMP_FLAGS,
                "--remote-debugging-pipe",
                "--user-data-dir=<fresh temporary directory>",
                "--use-file-for-fake-audio-capture=<48 kHz copy of the reference>",
            ],
            "console_tail": run.console[-10:],
            "received": None
            if run.received_by is None
            else {
                "by": run.received_by,
                "what": "the inbound audio (getStats inbound-rtp, kind audio) of "
                + (
                    "the other participant: what the server passed on of the tester's"
                    if run.received_by == "peer"
                    else "the tester's own page: the echo the server sent back"
                ),
                "sample_s": RECEIVED_SAMPLE_S,
                "settle_s": RECEIVED_SETTLE_S,
                "phases": received_phases(run.received, run.events, run.end_ms / 1000.0),
            },
            "camera": "getUserMedia's video asked for 160x120 at 5 fps (by the injected script) "
            "to keep the recordings small; the audio constraints are the demo's own",
        },
        "clock": "epoch",
        "wall_time_s": round(wall_time_s, 2),
        "tools": tool_versions() | {"janus": _janus_version()},
        "network": {
            "mode": "netns-veth",
            "browser": {
                "namespace": lab.browser_ns,
                "interface": BROWSER_INTERFACE,
                "address": BROWSER_ADDRESS,
            },
            "peer": {
                "namespace": lab.peer_ns,
                "interface": PEER_INTERFACE,
                "address": PEER_ADDRESS,
                "role": "Janus (SFU) and the demo pages",
                "rtp_port_range": list(RTP_PORTS),
                "ports": {"pages": PAGES_PORT, "rest": REST_PORT, "wss": WSS_PORT},
            },
            "capture_interface": PEER_INTERFACE,
            "capture_filter": CAPTURE_FILTER,
        },
        "relay": {"transport": "none"},
        "rtpdump": f"{RTPDUMP_LOG}: Chromium's stderr with the RTP dump; the video packets' "
        "dump lines removed (audio and RTCP kept)",
        "proxy": {
            "program": "mitmdump",
            "listen": f"127.0.0.1:{PROXY_PORT} in the browser namespace",
            "scripts": [
                *(["addons/mutecheck.py"] if addon is not None else []),
                "decoders/lab/allowlist.py",
            ],
            "addon": addon is not None,
            "allowed": [
                *(f"{PEER_ADDRESS}:{p}" for p in (REST_PORT, WSS_PORT)),
                *([MARK_HOST] if addon else []),
            ],
            "page_marks": f"https://{MARK_HOST} (at the page's click times)" if addon else None,
            "refused": _refused_summary(lab.work / "refused.jsonl"),
        },
        "peer": {
            "kind": "headless Chromium in the server namespace, joined through the same demo"
            if peer_reference_name
            else None,
            "sent_speech": {"file": peer_reference_name} if peer_reference_name else None,
        },
        "reference": {
            "file": reference_name,
            "sha256": hashlib.sha256((out_dir / reference_name).read_bytes()).hexdigest(),
            "starts_near": "scenario.getusermedia_called (Chromium loops the file)",
        },
        "files": [_file_entry(out_dir / name) for name in present],
    }


def _janus_version() -> str:
    try:
        out = subprocess.run(
            [JANUS_BINARY, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for line in (out.stdout + out.stderr).splitlines():
        if "Janus" in line or "version" in line.lower():
            return line.strip()
    return "unknown"


def main(argv: list[str] | None = None) -> None:
    """``python -m decoders.lab.janus serve ...``: the demo pages' server (the lab runs it)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m decoders.lab.janus")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Janus demos over HTTPS with our settings.js")
    serve.add_argument("--address", required=True)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--certificate", type=Path, required=True)
    serve.add_argument("--key", type=Path, required=True)
    serve.add_argument("--transport", choices=TRANSPORTS, default="rest")
    serve.add_argument("--root", type=Path, default=DEMOS)
    args = parser.parse_args(argv)
    settings = settings_js(args.transport).encode()
    serve_demos(args.address, args.port, args.certificate, args.key, settings, args.root)


if __name__ == "__main__":
    main()
