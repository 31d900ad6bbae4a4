"""Record one lab session: headless Chromium calls an aiortc peer across two network namespaces.

Layout (nothing can leave the machine: the namespaces have no default route and no IPv6)::

    namespace mutecheck-b-<tag>                         namespace mutecheck-p-<tag>
    Chromium (page, fake mic)                           peer.py (HTTP :8080 + WebSocket
      └─ HTTP via mitmdump 127.0.0.1:8081                 + aiortc), dumpcap
         (addons/mutecheck.py + allowlist.py)
    10.77.0.1/24  mcb0 ================ veth ================ mcp0  10.77.0.2/24

The page's signaling (HTTP and WebSocket) goes through mitmdump with the project's addon, which
writes ``events.jsonl`` into the session folder; every host but the peer is refused by the
proxy (``allowlist.py``). The media (UDP) goes straight over the veth pair and dumpcap records it.

:func:`record_session` runs every step, writes the session folder and removes every process,
namespace and temporary file it made, also when a step fails (:class:`LabError` names the step).
Needs root, ``ip``, ``dumpcap``, ``espeak-ng``, ``sox``, ``/usr/lib/chromium/chromium`` and
mitmproxy's ``mitmdump``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import decoders
from decoders import outputs
from decoders.addon.script import script_path
from decoders.chromium import UNATTENDED_FLAGS
from decoders.lab import firefox, turn

if TYPE_CHECKING:  # the reference needs numpy: imported when a session is recorded
    from decoders.lab.reference import Reference

VARIANTS = (
    "track-disabled",
    "track-stopped",
    "replace-null",
    "gain-zero",
    "ui-only",
    "telemetry-http",
    "telemetry-ws",
    "quiet",
    "dtx",
)
"""The page's mute implementations (``page.html``), in the corpus's order."""
TELEMETRY_VARIANTS = ("telemetry-http", "telemetry-ws")
BROWSERS = ("chromium", "firefox")
"""The browsers the lab page is recorded with (the same page and variants in both)."""
ANSWERERS = ("aiortc", "firefox")
"""Who answers the page's call: the aiortc peer, or a second Firefox (Firefox sessions)."""
GAIN_VARIANTS: Final = ("telemetry-gains",)
"""Page variants recorded one at a time, not by ``record-all``: the study-shaped telemetry
(max/mean/min of the level once per period) needs a muted window several periods long."""
PAGE_VARIANTS: Final = (*VARIANTS, *GAIN_VARIANTS)
"""Every mute implementation of ``page.html``."""
DEFAULT_GAIN_PERIOD_S: Final = 60.0
MAX_PHASE_S: Final = 60.0
"""The longest unmuted phase of a recording."""
MAX_MUTED_S: Final = 600.0
"""The longest muted phase: several one-minute telemetry-gains readings need minutes muted."""


def durations_allowed(durations: tuple[float, ...]) -> bool:
    """Three phases: unmuted and unmuted in (0, :data:`MAX_PHASE_S`], muted in
    (0, :data:`MAX_MUTED_S`] seconds."""
    limits = (MAX_PHASE_S, MAX_MUTED_S, MAX_PHASE_S)
    return len(durations) == 3 and all(
        0 < d <= limit for d, limit in zip(durations, limits, strict=True)
    )


DURATIONS_RULE: Final = (
    f"three seconds values: unmuted and unmuted in (0, {MAX_PHASE_S:g}], "
    f"muted in (0, {MAX_MUTED_S:g}]"
)
"""telemetry-gains: seconds between readings, one minute as in the PETS 2022 study."""
CHROMIUM = "/usr/lib/chromium/chromium"
BROWSER_ADDRESS = "10.77.0.1"
PEER_ADDRESS = "10.77.0.2"
PREFIX_LENGTH = 24
HTTP_PORT = 8080
PROXY_PORT = 8081  # on the browser namespace's loopback
MARK_HOST = "mutecheck.mark"  # answered by the addon inside the proxy (mute/unmute marks)
BROWSER_INTERFACE = "mcb0"
PEER_INTERFACE = "mcp0"
CAPTURE_FILTER = f"udp and host {BROWSER_ADDRESS} and host {PEER_ADDRESS}"
FIREFOX_CAPTURE_FILTER = f"({CAPTURE_FILTER}) or (ip and not host {PEER_ADDRESS})"
"""With Firefox the browser's namespace has a default route via the peer (which forwards
nothing), so that anything Firefox tries to send elsewhere reaches the wire, and the capture
keeps it: a complete session holds none."""
RELAY_CAPTURE_FILTER = (
    f"host {BROWSER_ADDRESS} and host {PEER_ADDRESS} and "
    f"(udp or (tcp and (port {turn.TURN_PORT} or port {turn.TURNS_PORT})))"
)
"""With a relay: the browser's leg to coturn as well (UDP 3478, or the proxy's TCP to 3478/5349)."""
VIDEO_VARIANTS = ("track-disabled", "ui-only")
"""The variants recorded with ``--video`` and ``--peer-talks`` in the corpus."""
REFERENCE_MARGIN_S = 4.0  # fake-mic signal beyond the scenario: launch and connection time
DEFAULT_DURATIONS = (4.0, 6.0, 4.0)
ADDON = script_path()
"""The project's mitmproxy addon (installed with the package, or a checkout's on the path)."""
ALLOWLIST = Path(__file__).resolve().parent / "allowlist.py"
REQUIRED_FILES = (
    "capture.pcapng",
    "offer.sdp",
    "answer.sdp",
    "timeline.json",
    "keys.json",
    "keylog.txt",
    "session.json",
)
"""Files every session folder holds."""
OPTIONAL_FILES = (
    "events.jsonl",
    "flows.mitm",
    "peer-telemetry.jsonl",
    "reference.wav",
    "peer-reference.wav",
    "chromium-stderr.log",
    "peer-keylog.txt",
    "expected.json",
)
"""Files a session holds when it has them: the addon's events and the proxy's flows (when the
addon ran), the telemetry the peer received, the references (unless shared ones are used),
Chromium's plaintext RTP dump (``rtpdump``), the peer's key log when the browser wrote
``keylog.txt`` (Firefox)."""
PEER_REFERENCE_NAME: Final = "peer-reference.wav"
TURN_READY_TIMEOUT_S = 15.0
"""How long coturn may take to open its listeners."""
TURN_LOG: Final = "turnserver.log"
"""coturn's log, kept in the session folder when a relayed recording fails."""
#: Chromium's plaintext RTP dump (before SRTP on the way out, after it on the way in)
RTPDUMP_FLAGS: Final = (
    "--force-fieldtrials=WebRTC-Debugging-RtpDump/Enabled/",
    "--enable-logging=stderr",  # --log-file misses the renderer's lines
    "--vmodule=srtp_session=1",
)
RTPDUMP_LOG: Final = "chromium-stderr.log"

CHROMIUM_FLAGS = (
    *UNATTENDED_FLAGS,
    "--disable-breakpad",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    f"--proxy-server=127.0.0.1:{PROXY_PORT}",
    "--proxy-bypass-list=<-loopback>",
)


class LabError(RuntimeError):
    """A lab step failed; ``step`` names it and the message says why."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"lab step '{step}' failed: {detail}")
        self.step = step


@contextlib.contextmanager
def _step(name: str) -> Iterator[None]:
    """Turn any failure inside the block into a LabError naming the step."""
    try:
        yield
    except LabError:
        raise
    except Exception as exc:
        raise LabError(name, f"{type(exc).__name__}: {exc}") from exc


def _run(command: Sequence[str], timeout: float = 30.0) -> str:
    """Run a short command; its stderr becomes the error message."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)}: exit {result.returncode}: {result.stderr.strip()}"
        )
    return result.stdout


def tail_text(path: Path, lines: int = 8) -> str:
    """Last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])


@dataclass
class LabProcess:
    """A child process the lab started; stopped by its PID (or process group) only."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    group: bool = False
    stop_signal: signal.Signals = signal.SIGTERM
    pump: threading.Thread | None = None
    """The thread reading its stdout event lines, if any."""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Send the stop signal, wait, then SIGKILL what is left."""
        if self.alive():
            self._signal(self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(timeout)
        if self.group:  # stray children of Chromium
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.group:
                os.killpg(self.popen.pid, sig)
            else:
                self.popen.send_signal(sig)


@dataclass
class LabNetwork:
    """Everything one recording owns, so that cleanup can find it."""

    work: Path
    browser_ns: str
    peer_ns: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[LabProcess] = field(default_factory=list)
    events: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    last_page_stage: str = "page not loaded"
    page_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    page_timeline: dict[str, Any] = field(default_factory=dict)

    def start(
        self,
        name: str,
        command: Sequence[str],
        *,
        lines: bool = False,
        group: bool = False,
        private_home: bool = False,
        env: dict[str, str] | None = None,
    ) -> LabProcess:
        """Start a process; with ``lines`` its stdout JSON lines go to ``events``.

        ``private_home`` points HOME, TMPDIR and the XDG dirs into the work directory, so
        whatever the program leaves behind (Chromium's crash-report and singleton dirs) goes
        away with it. ``env`` adds variables to the child's environment.
        """
        extra = env or {}
        env = _child_env() | extra
        if private_home:
            home = self.work / f"{name}-home"
            for sub in ("config", "cache", "tmp"):
                (home / sub).mkdir(parents=True, exist_ok=True)
            env |= {
                "HOME": str(home),
                "TMPDIR": str(home / "tmp"),
                "XDG_CONFIG_HOME": str(home / "config"),
                "XDG_CACHE_HOME": str(home / "cache"),
            }
        log = self.work / f"{name}.log"
        log_file = log.open("wb")
        popen = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if lines else log_file,
            stderr=log_file,
            start_new_session=group,
            env=env,
        )
        log_file.close()
        process = LabProcess(name=name, popen=popen, log=log, group=group)
        self.processes.append(process)
        if lines and popen.stdout is not None:
            process.pump = threading.Thread(target=self._pump, args=(popen.stdout,), daemon=True)
            process.pump.start()
        return process

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in stream:
            try:
                event = json.loads(raw)
            except ValueError:
                event = {"event": "output", "line": raw.decode(errors="replace").strip()}
            self.events.put(event if isinstance(event, dict) else {"event": "output"})

    def next_event(self, process: LabProcess, timeout: float, waiting_for: str) -> dict[str, Any]:
        """The peer's next event; notes page progress, fails on errors or a dead process.

        Every process of the lab must stay up while the call runs (the peer exits only after
        its last event): one that died fails the step at once, with the end of its log.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                stage = self.last_page_stage
                raise TimeoutError(f"no {waiting_for} after {timeout:.0f} s (page stage: {stage})")
            try:
                event = self.events.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                dead = next((p for p in (process, *self.processes) if not p.alive()), None)
                if dead is None:
                    continue
                if dead.pump is not None:  # its last lines may still be on their way
                    dead.pump.join(timeout=2)
                if not self.events.empty():
                    continue
                code = dead.popen.returncode
                raise RuntimeError(f"{dead.name} exited ({code}): {tail_text(dead.log)}") from None
            kind = event.get("event")
            data = event.get("data", {})
            if kind == "http":
                self.last_page_stage = "page loaded"
            elif kind == "page":
                self.last_page_stage = str(data.get("stage", "?"))
                self.page_notes[self.last_page_stage] = data
            elif kind == "timeline":
                self.page_timeline = data
            elif kind == "error":
                raise RuntimeError(f"peer error: {event}")
            elif kind == "page-done" and not data.get("ok", False):
                raise RuntimeError(f"page error: {data.get('error')}")
            return event

    def wait_event(self, wanted: str, process: LabProcess, timeout: float) -> dict[str, Any]:
        """Wait for the peer's `wanted` event (see :meth:`next_event`)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            event = self.next_event(process, remaining, f"'{wanted}'")
            if event.get("event") == wanted:
                return event

    def cleanup(self) -> list[str]:
        """Stop every process, kill anything left in the namespaces, delete them."""
        problems: list[str] = []
        while self.processes:
            process = self.processes.pop()
            try:
                process.stop()
            except Exception as exc:  # keep cleaning up
                problems.append(f"stop {process.name}: {exc}")
        while self.namespaces:
            namespace = self.namespaces.pop()
            try:
                for pid in _run(["ip", "netns", "pids", namespace]).split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                _run(["ip", "netns", "delete", namespace])
            except Exception as exc:
                problems.append(f"delete namespace {namespace}: {exc}")
        return problems


def _child_env() -> dict[str, str]:
    """The environment for children: this package importable, no proxy settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy") and key != "PYTHONPATH"
    }
    package_root = str(Path(decoders.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        [package_root, *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return env


def create_network(lab: LabNetwork, *, default_route: bool = False) -> None:
    """Two namespaces, a veth pair between them, addresses, IPv6 off, no default route (with
    ``default_route`` the browser's namespace gets one via the peer, which forwards nothing:
    what the browser tries to send anywhere else then shows in the capture instead of failing
    unseen inside the namespace)."""
    for namespace in (lab.browser_ns, lab.peer_ns):
        _run(["ip", "netns", "add", namespace])
        lab.namespaces.append(namespace)
    _run(
        [
            *("ip", "link", "add", BROWSER_INTERFACE, "netns", lab.browser_ns, "type", "veth"),
            *("peer", "name", PEER_INTERFACE, "netns", lab.peer_ns),
        ]
    )
    for namespace, interface, address in (
        (lab.browser_ns, BROWSER_INTERFACE, BROWSER_ADDRESS),
        (lab.peer_ns, PEER_INTERFACE, PEER_ADDRESS),
    ):
        # IPv6 off (where the kernel has it), written to /proc: no procps needed
        files = " ".join(
            f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6"
            for name in ("all", "default", "lo", interface)
        )
        script = f'for f in {files}; do if [ -e "$f" ]; then echo 1 > "$f"; fi; done'
        _run(["ip", "netns", "exec", namespace, "sh", "-c", script])
        _run(["ip", "-n", namespace, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", interface])
        _run(["ip", "-n", namespace, "link", "set", "lo", "up"])
        _run(["ip", "-n", namespace, "link", "set", interface, "up"])
        routes = _run(["ip", "-n", namespace, "route", "show", "default"]).strip()
        if routes:
            raise RuntimeError(f"namespace {namespace} has a default route: {routes}")
    if default_route:
        _run(["ip", "-n", lab.browser_ns, "route", "add", "default", "via", PEER_ADDRESS])


def _wait_for_capture(process: LabProcess, path: Path, timeout: float) -> None:
    """Wait until dumpcap has written its file header (after it accepted the filter)."""
    deadline = time.monotonic() + timeout
    while not (path.is_file() and path.stat().st_size > 0):
        if not process.alive():
            raise RuntimeError(f"{process.name} exited: {tail_text(process.log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.name} wrote no {path.name} after {timeout:.0f} s")
        time.sleep(0.05)


def _first_line(command: Sequence[str]) -> str:
    """First output line of a version command, or 'unknown'."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def tool_versions(browser: str = "chromium") -> dict[str, str]:
    """Versions of everything that shaped a session."""
    import importlib.metadata  # slow to import: only when a session is written

    if browser == "firefox":
        binary = firefox.find_firefox() or "firefox-esr"
        browsers = {
            "firefox": _first_line([binary, "--version"]),
            "pulseaudio": _first_line([firefox.PULSEAUDIO, "--version"]),
        }
    else:
        browsers = {"chromium": _first_line([CHROMIUM, "--version"])}
    versions = {
        **browsers,
        "dumpcap": _first_line(["dumpcap", "--version"]),
        "tshark": _first_line(["tshark", "--version"]),
        "espeak-ng": _first_line(["espeak-ng", "--version"]),
        "sox": _first_line(["sox", "--version"]),
        "python": sys.version.split()[0],
        "mutecheck": decoders.__version__,
        "platform": platform.platform(),
    }
    for package in (
        "mitmproxy",
        "aiortc",
        "aioice",
        "pylibsrtp",
        "av",
        "pyOpenSSL",
        "cryptography",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


_CANDIDATE = re.compile(
    r"^a=candidate:\S+ (\d+) udp \d+ (\S+) (\d+) typ host", re.IGNORECASE | re.MULTILINE
)


def host_candidate(sdp: str, address: str) -> int | None:
    """The RTP (component 1) UDP host-candidate port for `address` in an SDP, if any."""
    for component, candidate_address, port in _CANDIDATE.findall(sdp):
        if component == "1" and candidate_address == address:
            return int(port)
    return None


def timeline_document(page_timeline: dict[str, Any]) -> dict[str, Any]:
    """The ``timeline.json`` document from the page's report (epoch ms -> epoch s).

    ``muted`` holds [start, end] per mute window, from when the page began to mute to when it
    began to unmute; each event also has ``applied``, when the page's mute call returned.
    """
    changes: list[tuple[float, str]] = []
    events: list[dict[str, Any]] = []
    for event in page_timeline["events"]:
        state = str(event["state"])
        if state not in ("muted", "unmuted"):
            raise ValueError(f"page timeline has state {state!r}")
        t = round(float(event["t_ms"]) / 1000.0, 6)
        changes.append((t, state))
        entry: dict[str, Any] = {"t": t, "state": state}
        if event.get("applied_ms") is not None:
            entry["applied"] = round(float(event["applied_ms"]) / 1000.0, 6)
        events.append(entry)
    end = round(float(page_timeline["end_ms"]) / 1000.0, 6)
    muted: list[list[float]] = []
    for index, (t, state) in enumerate(changes):
        if state == "muted":
            following = [u for u, s in changes[index + 1 :] if s == "unmuted"]
            muted.append([t, following[0] if following else end])
    return {"version": 1, "source": "lab", "clock": "epoch", "muted": muted, "events": events}


def page_query(
    variant: str,
    durations: tuple[float, float, float],
    *,
    mark: bool,
    relay: str = "none",
    video: bool = False,
    processing: bool = False,
    gain_period: float = DEFAULT_GAIN_PERIOD_S,
) -> str:
    """The call page's query string: variant, durations in ms, the mark URL if wanted, the
    RTCConfiguration as JSON when the media is relayed, ``video=1`` to send the camera too,
    ``processing=1`` to leave the browser's audio processing on (echo cancellation, noise
    suppression, gain control; off by default), and for telemetry-gains the period between
    readings in ms."""
    fields = {"variant": variant, "durations": ",".join(str(round(d * 1000)) for d in durations)}
    if variant in GAIN_VARIANTS:
        fields["period"] = str(round(gain_period * 1000))
    if mark:
        fields["mark"] = f"http://{MARK_HOST}"
    if relay != "none":
        fields["ice"] = json.dumps(turn.ice_configuration(relay, PEER_ADDRESS), sort_keys=True)
    if video:
        fields["video"] = "1"
    if processing:
        fields["processing"] = "1"
    return urllib.parse.urlencode(fields, safe=",:/")


def capture_filter(relay: str, browser: str = "chromium") -> str:
    """dumpcap's filter: the media between the namespaces, and the TURN leg when relayed (with
    Firefox: also whatever went to any other address, see :data:`FIREFOX_CAPTURE_FILTER`)."""
    if browser == "firefox":
        return FIREFOX_CAPTURE_FILTER
    return CAPTURE_FILTER if relay == "none" else RELAY_CAPTURE_FILTER


def session_name(
    variant: str,
    relay: str = "none",
    *,
    peer_talks: bool = False,
    video: bool = False,
    browser: str = "chromium",
    answerer: str = "aiortc",
) -> str:
    """The corpus's folder: ``<browser>-<variant>[-relay-<r>][-peer-talks][-video]``, and
    ``-to-firefox`` when a second Firefox answered."""
    name = f"{browser}-{variant}"
    if relay != "none":
        name += f"-relay-{relay}"
    if peer_talks:
        name += "-peer-talks"
    if video:
        name += "-video"
    if answerer != "aiortc":
        name += f"-to-{answerer}"
    return name


def _file_entry(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"name": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _refused_summary(path: Path) -> list[dict[str, Any]]:
    """What the proxy refused, per (kind, host, port), from the allowlist's JSON lines."""
    counts: Counter[tuple[str, str, int]] = Counter()
    if path.is_file():
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                record = json.loads(line)
                counts[(str(record["kind"]), str(record["host"]), int(record["port"]))] += 1
    return [
        {"kind": kind, "host": host, "port": port, "count": count}
        for (kind, host, port), count in sorted(counts.items())
    ]


def _session_document(
    *,
    variant: str,
    durations: tuple[float, float, float],
    lab: LabNetwork,
    reference: Reference,
    reference_name: str,
    peer_reference_name: str | None,
    relay: str,
    video: bool,
    addon: Path | None,
    out_dir: Path,
    peer_finished: dict[str, Any],
    started: float,
    wall_time_s: float,
    browser: str = "chromium",
    audio_processing: bool = False,
    answerer: str = "aiortc",
    gain_period: float = DEFAULT_GAIN_PERIOD_S,
) -> dict[str, Any]:
    offer = (out_dir / "offer.sdp").read_text()
    answer = (out_dir / "answer.sdp").read_text()
    page_timeline = lab.page_timeline
    microphone = lab.page_notes.get("microphone", {})
    connected = lab.page_notes.get("connected", {})

    def epoch_s(value: Any) -> float | None:
        return round(float(value) / 1000.0, 6) if value is not None else None

    scripts = [str(Path(*ALLOWLIST.parts[-3:]))]  # decoders/lab/allowlist.py
    if addon is not None:
        scripts.insert(0, str(Path(*addon.parts[-2:])))  # addons/mutecheck.py
    present = [name for name in (*REQUIRED_FILES, *OPTIONAL_FILES) if (out_dir / name).is_file()]
    return {
        "version": 1,
        "source": "lab",
        "kind": f"{browser}-{answerer}",
        "browser": browser,
        "created": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "variant": variant,
        "scenario": {
            "phases": ["unmuted", "muted", "unmuted"],
            **({"audio_processing": True} if audio_processing else {}),
            "peer_talks": peer_reference_name is not None,
            "video": video,
            "durations_s": list(durations),
            "getusermedia_called": epoch_s(microphone.get("getusermedia_ms")),
            "connected": epoch_s(connected.get("connected_ms")),
            "start": round(float(page_timeline["events"][0]["t_ms"]) / 1000.0, 6),
            "end": epoch_s(page_timeline["end_ms"]),
            "microphone_label": microphone.get("label"),
            "user_agent": page_timeline.get("user_agent"),
            **_browser_document(browser, relay, microphone),
        },
        "clock": "epoch",
        "wall_time_s": round(wall_time_s, 2),
        "tools": tool_versions(browser),
        "network": {
            "mode": "netns-veth",
            "browser": {
                "namespace": lab.browser_ns,
                "interface": BROWSER_INTERFACE,
                "address": BROWSER_ADDRESS,
                "ice_udp_port": host_candidate(offer, BROWSER_ADDRESS),
                **({"default_route": f"via {PEER_ADDRESS}"} if browser == "firefox" else {}),
            },
            "peer": {
                "namespace": lab.peer_ns,
                "interface": PEER_INTERFACE,
                "address": PEER_ADDRESS,
                "ice_udp_port": host_candidate(answer, PEER_ADDRESS),
                "http_port": HTTP_PORT,
            },
            "capture_interface": PEER_INTERFACE,
            "capture_filter": capture_filter(relay, browser),
        },
        "relay": _relay_document(relay, offer),
        "proxy": {
            "program": "mitmdump",
            "listen": f"127.0.0.1:{PROXY_PORT} in the browser namespace",
            "scripts": scripts,
            "addon": addon is not None,
            "allowed": [
                f"{PEER_ADDRESS}:{HTTP_PORT}",
                *([MARK_HOST] if addon else []),
                *(
                    [f"{PEER_ADDRESS}:{turn.server_port(relay)}"]
                    if turn.server_protocol(relay) == "tcp" and relay != "none"
                    else []
                ),
            ],
            "page_marks": f"http://{MARK_HOST}" if addon else None,
            "refused": _refused_summary(lab.work / "refused.jsonl"),
        },
        "peer": {
            "answerer": answerer,
            "frames_received": peer_finished.get("frames_received"),
            "video_frames_received": peer_finished.get("video_frames_received", 0),
            "sent_speech": _peer_reference_document(out_dir, peer_reference_name),
            "telemetry_received": peer_finished.get("telemetry_received"),
            "answered_opus_dtx": peer_finished.get("dtx"),
            "keylog_lines": peer_finished.get("keylog_lines"),
        },
        "page": {
            "telemetry_sent": page_timeline.get("telemetry_sent", 0),
            **({"gain_period_s": gain_period} if variant in GAIN_VARIANTS else {}),
        },
        "reference": {
            "file": reference_name,
            "sha256": hashlib.sha256((out_dir / reference_name).read_bytes()).hexdigest(),
            "sample_rate": reference.reference_sample_rate,
            "fake_mic_sample_rate": reference.mic_sample_rate,
            "duration_s": reference.duration_s,
            "starts_near": "scenario.getusermedia_called (Chromium loops the file)"
            if browser == "chromium"
            else "scenario.microphone.playback_started (paplay plays it once)",
            "speech_text": reference.speech_text,
            "tone_bursts": [
                {"start_s": b.start_s, "duration_s": b.duration_s, "frequency_hz": b.frequency_hz}
                for b in reference.bursts
            ],
        },
        "files": [_file_entry(out_dir / name) for name in present if name != "session.json"],
    }


def _browser_document(browser: str, relay: str, microphone: dict[str, Any]) -> dict[str, Any]:
    """How the browser ran: Chromium's flags, or Firefox's flags, prefs and microphone."""
    if browser == "firefox":
        playback = microphone.get("playback_ms")
        return {
            "firefox_flags": [
                *firefox.FIREFOX_FLAGS,
                "--profile <fresh temporary profile: user.js below, the proxy's CA trusted>",
            ],
            "firefox_prefs": {
                **firefox.PREFS,
                "network.proxy.http": f"127.0.0.1:{PROXY_PORT} (also ssl)",
                "dom.securecontext.allowlist": PEER_ADDRESS,
            },
            "firefox_env": {
                "SSLKEYLOGFILE": f"<session>/{firefox.KEYLOG}",
                "PULSE_SERVER": "<the run's PulseAudio socket>",
            },
            "microphone": {
                "pulseaudio": "system mode, module-null-sink "
                f"sink_name={firefox.SINK} channels=1 (48 kHz)",
                "played": f"paplay --device={firefox.SINK} <48 kHz copy of the reference>",
                "recorded_from": firefox.LOOPBACK_DEVICE,
                "playback_started": round(float(playback) / 1000.0, 6) if playback else None,
            },
        }
    return {
        "chromium_flags": [
            *CHROMIUM_FLAGS,
            "--user-data-dir=<fresh temporary directory>",
            "--use-file-for-fake-audio-capture=<48 kHz copy of the reference>",
            *(
                ["--ignore-certificate-errors-spki-list=<the proxy's and coturn's keys>"]
                if relay == "tls"
                else []
            ),
            f"--unsafely-treat-insecure-origin-as-secure=http://{PEER_ADDRESS}:{HTTP_PORT}",
        ]
    }


def _peer_reference_document(out_dir: Path, name: str | None) -> dict[str, Any] | None:
    """What the peer sent back (``--peer-talks``): the file, its hash and what it says."""
    if name is None:
        return None
    from decoders.lab.reference import PEER_SPEECH_TEXT, PEER_VOICE

    return {
        "file": name,
        "sha256": hashlib.sha256((out_dir / name).read_bytes()).hexdigest(),
        "voice": PEER_VOICE,
        "speech_text": PEER_SPEECH_TEXT,
        "plays": "from the peer's first RTP packet, looped, for the whole call",
    }


def _relay_document(relay: str, offer: str) -> dict[str, Any]:
    """How the browser's media was relayed: the transport, coturn's address, the candidates."""
    if relay == "none":
        return {"transport": "none"}
    return {
        "transport": relay,
        "server": "coturn",
        "server_version": _first_line([turn.TURN_BINARY, "--version"]),
        "address": PEER_ADDRESS,
        "namespace": "peer",
        "url": turn.turn_url(relay, PEER_ADDRESS),
        "protocol": turn.server_protocol(relay),
        "port": turn.server_port(relay),
        "ports": {"udp": turn.TURN_PORT, "tcp": turn.TURN_PORT, "tls": turn.TURNS_PORT},
        "relay_ports": list(turn.RELAY_PORTS),
        "username": turn.TURN_USER,
        "realm": turn.TURN_REALM,
        "ice_transport_policy": "relay",
        "through_proxy": turn.server_protocol(relay) == "tcp",
        "browser_candidates": turn.relay_candidates(offer),
    }


def _check_tools(relay: str = "none", browser: str = "chromium") -> None:
    import importlib.metadata

    if os.geteuid() != 0:
        raise RuntimeError("network namespaces need root")
    missing = [tool for tool in ("ip", "dumpcap", "espeak-ng", "sox") if shutil.which(tool) is None]
    if relay != "none" and not os.access(turn.TURN_BINARY, os.X_OK):
        missing.append(f"{turn.TURN_BINARY} (Debian package coturn)")
    if browser == "chromium" and not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    if browser == "firefox":
        if firefox.find_firefox() is None:
            missing.append("firefox-esr")
        for tool, package in (
            (firefox.PULSEAUDIO, "pulseaudio"),
            (firefox.PAPLAY, "pulseaudio-utils"),
            (firefox.CERTUTIL, "libnss3-tools"),
        ):
            if shutil.which(tool) is None:
                missing.append(f"{tool} (Debian package {package})")
    try:
        importlib.metadata.version("mitmproxy")
    except importlib.metadata.PackageNotFoundError:
        missing.append("mitmproxy (Python package)")
    if missing:
        raise RuntimeError(f"missing: {', '.join(missing)}")


def _start_turnserver(lab: LabNetwork) -> str:
    """coturn in the peer's namespace from a private config; returns its key's SPKI hash.

    Its certificate, configuration, database and PID file live in the run's work directory;
    it is stopped by PID with the other processes. Waits until its listeners are up.
    """
    folder = lab.work / "turn"
    folder.mkdir()
    certificate, key = folder / "cert.pem", folder / "key.pem"
    spki = turn.write_certificate(PEER_ADDRESS, certificate, key)
    config = folder / "turnserver.conf"
    config.write_text(turn.turnserver_config(PEER_ADDRESS, folder, certificate, key))
    process = lab.start(
        "turnserver",
        ["ip", "netns", "exec", lab.peer_ns, turn.TURN_BINARY, "-c", str(config)],
    )
    wait_for_log(process, turn.READY_LINE, timeout=TURN_READY_TIMEOUT_S)
    return spki


def _trusted_keys(relay: str, turn_spki: str, proxy_confdir: Path) -> str:
    """Chromium's ``--ignore-certificate-errors-spki-list`` for a ``turns:`` relay, else "".

    Through the proxy Chromium sees mitmproxy's certificate for the TURN server (mitmproxy signs
    its leaf certificates with its CA's own key, so that key's hash covers them); coturn's is
    listed too, for a browser that reaches it directly.
    """
    if relay != "tls":
        return ""
    proxy_ca = proxy_confdir / "mitmproxy-ca.pem"
    return ",".join([turn.spki_sha256(proxy_ca.read_bytes()), turn_spki])


def mitmdump_command() -> list[str]:
    """mitmdump from this interpreter's environment."""
    script = Path(sys.executable).with_name("mitmdump")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from mitmproxy.tools.main import mitmdump; mitmdump()"]


def wait_for_log(process: LabProcess, pattern: str, timeout: float) -> None:
    """Wait until `pattern` appears in the process's log."""
    deadline = time.monotonic() + timeout
    while pattern not in process.log.read_text(errors="replace"):
        if not process.alive():
            raise RuntimeError(f"{process.name} exited: {tail_text(process.log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{process.name} not ready after {timeout:.0f} s: {tail_text(process.log)}"
            )
        time.sleep(0.05)


def _place_reference(
    generated: Path, out_dir: Path, shared: Path | None, name: str = "reference.wav"
) -> str:
    """Put the reference where the session finds it; returns its path relative to `out_dir`.

    With `shared`, sessions recorded alike share one file: it is written there if absent, and
    used if identical; a different signal (other durations) gets its own copy in `out_dir`.
    """
    data = generated.read_bytes()
    if shared is not None:
        shared = shared.resolve()
        if not shared.exists():
            shared.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(generated, shared)
        if shared.read_bytes() == data:
            return os.path.relpath(shared, out_dir)
    shutil.copyfile(generated, out_dir / name)
    return name


def record_session(
    variant: str,
    out_dir: Path,
    durations: tuple[float, float, float] = DEFAULT_DURATIONS,
    *,
    shared_reference: Path | None = None,
    addon: Path | None = ADDON,
    rtpdump: bool = False,
    relay: str = "none",
    peer_talks: bool = False,
    video: bool = False,
    shared_peer_reference: Path | None = None,
    browser: str = "chromium",
    audio_processing: bool = False,
    answerer: str = "aiortc",
    gain_period: float = DEFAULT_GAIN_PERIOD_S,
) -> Path:
    """Record one session of `variant` into the folder `out_dir` (created; must hold no files).

    `answerer` ``firefox`` (with `browser` ``firefox``): a second headless Firefox in the
    peer's namespace answers the call instead of aiortc (``peer.py --browser-answers``,
    ``answerer.html``), so the call is what two Firefoxes negotiate, DTLS 1.3; its own key log
    is ``peer-keylog.txt`` and there is no ``keys.json`` (nothing exports a browser's keys).

    With `audio_processing` the page leaves the browser's echo cancellation, noise suppression
    and gain control on (``session.json`` ``scenario.audio_processing``).

    `browser` is ``chromium`` (default) or ``firefox`` (Firefox ESR headless, its microphone a
    PulseAudio null sink playing the reference, ``SSLKEYLOGFILE`` = ``keylog.txt`` in the
    session: :mod:`decoders.lab.firefox`; the peer's own key log is then ``peer-keylog.txt``).

    With `rtpdump`, Chromium also logs every RTP/RTCP packet before encryption and after
    decryption (its WebRTC-Debugging-RtpDump field trial); the log is kept in the session as
    ``chromium-stderr.log``, for ``mutecheck import-rtpdump`` (docs/decryption.md).

    `relay` (``udp``, ``tcp``, ``tls``; default ``none``) runs coturn in the peer's namespace
    and makes the page relay its media through it over that transport (:mod:`decoders.lab.turn`).
    With `peer_talks` the peer sends its own speech (``peer-reference.wav``, shared like the
    reference through `shared_peer_reference`) back for the whole call; with `video` the page
    also sends the fake camera (VP8 with RTX as negotiated). `gain_period` is the seconds
    between the telemetry-gains variant's readings.

    `durations` are seconds unmuted, muted, unmuted. `shared_reference` is a reference WAV
    shared by several sessions (see :func:`_place_reference`); by default the session holds its
    own ``reference.wav``. `addon` is the mitmproxy addon run on the signaling (it writes
    ``events.jsonl``); ``None`` or a missing file runs the proxy with the allow list only.
    Returns the session folder. On failure a :class:`LabError` names the step; the folder keeps
    what was written so far, and every process, namespace and temporary file of the run is gone
    either way.
    """
    started = time.time()
    clock = time.monotonic()
    out_dir = Path(out_dir).resolve()
    with _step("arguments"):
        if variant not in PAGE_VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; known: {', '.join(PAGE_VARIANTS)}")
        if not 0.1 <= gain_period <= 3600:
            raise ValueError(f"the gain period must be in [0.1, 3600] s, got {gain_period}")
        if relay not in turn.RELAYS:
            raise ValueError(f"unknown relay {relay!r}; known: {', '.join(turn.RELAYS)}")
        if browser not in BROWSERS:
            raise ValueError(f"unknown browser {browser!r}; known: {', '.join(BROWSERS)}")
        if browser == "firefox" and (relay != "none" or peer_talks or video or rtpdump):
            raise ValueError(
                "Firefox sessions are recorded without --relay, --peer-talks, --video and "
                "--rtpdump (Chromium only)"
            )
        if answerer not in ANSWERERS:
            raise ValueError(f"unknown answerer {answerer!r}; known: {', '.join(ANSWERERS)}")
        if answerer != "aiortc" and browser != "firefox":
            raise ValueError("a browser answers only Firefox sessions (--browser firefox)")
        if not durations_allowed(tuple(durations)):
            raise ValueError(f"durations must be {DURATIONS_RULE}, got {durations}")
        out_dir.mkdir(parents=True, exist_ok=True)
        if any(out_dir.iterdir()):
            raise ValueError(f"{out_dir} is not empty")
        if addon is not None and not addon.is_file():
            addon = None
    with _step("tools"):
        _check_tools(relay, browser)
    tag = f"{os.getpid()}-{int(started * 1000) % 100000}"
    work = Path(tempfile.mkdtemp(prefix=f"mutecheck-lab-{tag}-"))
    lab = LabNetwork(work=work, browser_ns=f"mutecheck-b-{tag}", peer_ns=f"mutecheck-p-{tag}")
    failure: BaseException | None = None
    try:
        with _step("reference signal"):
            from decoders.lab.reference import make_reference

            reference = make_reference(
                work / "mic.wav",
                work / "reference.wav",
                sum(durations) + REFERENCE_MARGIN_S,
                work,
            )
            reference_name = _place_reference(work / "reference.wav", out_dir, shared_reference)
            peer_reference_name = None
            if peer_talks:
                from decoders.lab.reference import make_peer_reference

                make_peer_reference(
                    work / PEER_REFERENCE_NAME, sum(durations) + REFERENCE_MARGIN_S, work
                )
                peer_reference_name = _place_reference(
                    work / PEER_REFERENCE_NAME,
                    out_dir,
                    shared_peer_reference,
                    PEER_REFERENCE_NAME,
                )
        with _step("network namespaces"):
            create_network(lab, default_route=browser == "firefox")
        with _step("capture"):
            dumpcap = lab.start(
                "dumpcap",
                [
                    *("ip", "netns", "exec", lab.peer_ns, "dumpcap", "-q", "-i", PEER_INTERFACE),
                    *("-f", capture_filter(relay, browser)),
                    *("-w", str(out_dir / "capture.pcapng")),
                ],
            )
            dumpcap.stop_signal = signal.SIGINT  # dumpcap finishes the file on SIGINT
            _wait_for_capture(dumpcap, out_dir / "capture.pcapng", timeout=10)
        turn_spki = ""
        if relay != "none":
            with _step("turn server"):
                turn_spki = _start_turnserver(lab)
        with _step("peer"):
            peer_command = [sys.executable, "-m", "decoders.lab.peer", "--out", str(out_dir)]
            peer_command += ["--host", PEER_ADDRESS, "--port", str(HTTP_PORT)]
            if peer_reference_name is not None:
                peer_command += ["--talk", str((out_dir / peer_reference_name).resolve())]
            if answerer == "firefox":  # a second Firefox answers: DTLS 1.3, no exported keys
                peer_command += ["--browser-answers"]
            elif browser == "firefox":  # Firefox's SSLKEYLOGFILE is the session's keylog.txt
                peer_command += ["--keylog-name", firefox.PEER_KEYLOG, "--dtls-server"]
            in_namespace = ["ip", "netns", "exec", lab.peer_ns]
            peer = lab.start("peer", [*in_namespace, *peer_command], lines=True)
        with _step("proxy"):
            proxy_command = [
                *("ip", "netns", "exec", lab.browser_ns, *mitmdump_command()),
                *("--listen-host", "127.0.0.1", "--listen-port", str(PROXY_PORT)),
                *("--set", "connection_strategy=lazy", "--set", f"confdir={work / 'mitmproxy'}"),
                *("-s", str(ALLOWLIST), "--set", f"lab_allow={PEER_ADDRESS}:{HTTP_PORT}"),
                *("--set", f"lab_refused_log={work / 'refused.jsonl'}"),
            ]
            if turn.server_protocol(relay) == "tcp":  # TURN over TCP/TLS goes through CONNECT
                proxy_command += ["--set", f"lab_allow={PEER_ADDRESS}:{turn.server_port(relay)}"]
                # for turns: the proxy terminates the browser's TLS and opens its own to coturn,
                # whose certificate is the run's self-signed one
                proxy_command += ["--set", "ssl_insecure=true"]
            if addon is not None:  # the addon answers the mark host itself
                proxy_command += ["--set", f"lab_allow={MARK_HOST}"]
                proxy_command += ["-s", str(addon), "--set", f"mutecheck_dir={out_dir}"]
                # every flow: the lab page holds nothing private, and the corpus keeps it all
                proxy_command += ["--set", "mutecheck_save_flows=all"]
            proxy = lab.start("mitmdump", proxy_command, private_home=True)
            proxy.stop_signal = signal.SIGINT  # mitmdump flushes its files on SIGINT
            wait_for_log(proxy, "proxy listening at", timeout=30)
            if addon is not None:
                wait_for_log(proxy, f"Loading script {addon}", timeout=5)
            log = proxy.log.read_text(errors="replace")
            if any(sign in log for sign in ("Traceback", "error in script", "Addon error")):
                raise RuntimeError(f"a proxy script failed to load: {tail_text(proxy.log, 12)}")
        with _step("peer"):
            lab.wait_event("listening", peer, timeout=30)
        origin = f"http://{PEER_ADDRESS}:{HTTP_PORT}"
        query = page_query(
            variant,
            durations,
            mark=addon is not None,
            relay=relay,
            video=video,
            processing=audio_processing,
            gain_period=gain_period,
        )
        if browser == "firefox":
            with _step("microphone"):
                pulse_dir = _start_pulseaudio(lab, reference.mic_sample_rate)
            if answerer == "firefox":
                with _step("answerer"):
                    _start_answerer(lab, out_dir, f"{origin}/answerer")
                    wait_for_log_event(lab, peer, "/answerer")
            with _step("browser"):
                _start_firefox(lab, out_dir, pulse_dir, f"{origin}/?{query}")
                wait_page_stage(lab, "microphone", peer, timeout=60)
                lab.page_notes["microphone"]["playback_ms"] = time.time() * 1000.0
                lab.start(
                    "paplay",
                    firefox.paplay_command(reference.mic_path),
                    env={"PULSE_SERVER": firefox.pulse_server(pulse_dir)},
                )
                lab.wait_event("answered", peer, timeout=30)
        with _step("browser"):
            if browser == "chromium":
                _start_chromium(lab, relay, turn_spki, rtpdump, reference.mic_path, origin, query)
                lab.wait_event("answered", peer, timeout=30)
        with _step("scenario"):
            finished = lab.wait_event("finished", peer, timeout=sum(durations) + 30)
            if not lab.page_timeline:
                raise RuntimeError("the page sent no timeline")
            if not finished.get("keys") and answerer == "aiortc":
                raise RuntimeError("the peer exported no SRTP keys (DTLS never completed)")
            if answerer != "aiortc" and not finished.get("frames_received"):
                raise RuntimeError("the answering browser received no audio")
            peer.popen.wait(timeout=10)
        with _step("teardown"):
            time.sleep(0.3)  # let dumpcap see the last datagrams
            for process in lab.processes:
                if process.name not in ("dumpcap", "mitmdump", "turnserver"):
                    continue
                if not process.alive():
                    raise RuntimeError(f"{process.name} stopped early: {tail_text(process.log)}")
            problems = lab.cleanup()
            if problems:
                raise RuntimeError("; ".join(problems))
        with _step("session files"):
            if rtpdump:
                shutil.copyfile(lab.work / "chromium.log", out_dir / RTPDUMP_LOG)
                (out_dir / RTPDUMP_LOG).chmod(0o644)
            _finish_files(out_dir, variant, lab, addon, keys=answerer == "aiortc")
            document = _session_document(
                variant=variant,
                durations=durations,
                lab=lab,
                reference=reference,
                reference_name=reference_name,
                peer_reference_name=peer_reference_name,
                relay=relay,
                video=video,
                addon=addon,
                out_dir=out_dir,
                peer_finished=finished,
                started=started,
                browser=browser,
                audio_processing=audio_processing,
                answerer=answerer,
                wall_time_s=time.monotonic() - clock,
                gain_period=gain_period,
            )
            outputs.write_text(out_dir / "session.json", json.dumps(document, indent=2) + "\n")
        if browser == "firefox":
            with _step("ground truth"):
                write_expected(out_dir, variant)
        return out_dir
    except BaseException as exc:
        failure = exc
        raise
    finally:
        problems = lab.cleanup()
        if failure is not None and (work / TURN_LOG).is_file():
            with contextlib.suppress(OSError):  # coturn's own account of the failure
                shutil.copyfile(work / TURN_LOG, out_dir / TURN_LOG)
        shutil.rmtree(work, ignore_errors=True)
        if problems and failure is None:
            raise LabError("cleanup", "; ".join(problems))


def _start_chromium(
    lab: LabNetwork,
    relay: str,
    turn_spki: str,
    rtpdump: bool,
    mic: Path,
    origin: str,
    query: str,
) -> LabProcess:
    """Headless Chromium in the browser's namespace, its fake microphone playing ``mic``."""
    trusted = _trusted_keys(relay, turn_spki, lab.work / "mitmproxy")
    return lab.start(
        "chromium",
        [
            *("ip", "netns", "exec", lab.browser_ns, CHROMIUM, *CHROMIUM_FLAGS),
            *(RTPDUMP_FLAGS if rtpdump else ()),
            *([f"--ignore-certificate-errors-spki-list={trusted}"] if trusted else ()),
            f"--user-data-dir={lab.work / 'profile'}",
            f"--use-file-for-fake-audio-capture={mic}",
            f"--unsafely-treat-insecure-origin-as-secure={origin}",
            f"{origin}/?{query}",
        ],
        group=True,
        private_home=True,
    )


PULSE_READY_TIMEOUT_S: Final = 15.0


def _start_pulseaudio(lab: LabNetwork, sample_rate: int) -> Path:
    """The run's private PulseAudio with the null sink Firefox records; returns its socket
    folder. System mode runs as the ``pulse`` user, who must own that folder."""
    import pwd

    folder = lab.work / "pulse"
    folder.mkdir()
    user = pwd.getpwnam("pulse")
    os.chown(folder, user.pw_uid, user.pw_gid)
    lab.work.chmod(0o711)  # the pulse user may pass through the work directory, not list it
    process = lab.start("pulseaudio", firefox.pulseaudio_command(folder, sample_rate))
    socket = folder / firefox.PULSE_SOCKET
    deadline = time.monotonic() + PULSE_READY_TIMEOUT_S
    while not socket.exists():
        if not process.alive():
            raise RuntimeError(f"pulseaudio exited: {tail_text(process.log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"pulseaudio made no socket: {tail_text(process.log)}")
        time.sleep(0.05)
    return folder


def _start_firefox(lab: LabNetwork, out_dir: Path, pulse_dir: Path, url: str) -> LabProcess:
    """Headless Firefox ESR in the browser's namespace on a fresh profile (proxy, microphone
    and quiet prefs; the proxy's CA trusted), its key log into the session folder."""
    binary = firefox.find_firefox()
    if binary is None:
        raise RuntimeError("no Firefox (Debian package firefox-esr)")
    profile = lab.work / "firefox-profile"
    firefox.write_profile(profile, "127.0.0.1", PROXY_PORT, (PEER_ADDRESS,))
    firefox.trust_certificate(profile, lab.work / "mitmproxy" / "mitmproxy-ca-cert.pem")
    env = {
        "SSLKEYLOGFILE": str(out_dir / firefox.KEYLOG),
        "PULSE_SERVER": firefox.pulse_server(pulse_dir),
        "MOZ_HEADLESS": "1",
        # without it Firefox ignores services.settings.server and asks Mozilla for settings
        "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1",
        "MOZ_CRASHREPORTER_DISABLE": "1",
    }
    return lab.start(
        "firefox",
        [
            *("ip", "netns", "exec", lab.browser_ns),
            *firefox.firefox_command(binary, profile, url),
        ],
        group=True,
        private_home=True,
        env=env,
    )


def _start_answerer(lab: LabNetwork, out_dir: Path, url: str) -> LabProcess:
    """A second headless Firefox in the peer's namespace that answers the call
    (``answerer.html``): no proxy (it sits beside the lab's server), no microphone, its key log
    into the session as ``peer-keylog.txt``."""
    binary = firefox.find_firefox()
    if binary is None:
        raise RuntimeError("no Firefox (Debian package firefox-esr)")
    profile = lab.work / "answerer-profile"
    firefox.write_profile(profile, "127.0.0.1", PROXY_PORT, (), direct=True)
    env = {
        "SSLKEYLOGFILE": str(out_dir / firefox.PEER_KEYLOG),
        "MOZ_HEADLESS": "1",
        "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1",
    }
    return lab.start(
        "answerer",
        [*("ip", "netns", "exec", lab.peer_ns), *firefox.firefox_command(binary, profile, url)],
        group=True,
        private_home=True,
        env=env,
    )


def wait_for_log_event(
    lab: LabNetwork, process: LabProcess, path: str, timeout: float = 60
) -> None:
    """Wait until the peer served ``path`` (its ``http`` event)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = max(0.0, deadline - time.monotonic())
        event = lab.next_event(process, remaining, f"a request for {path}")
        if event.get("event") == "http" and event.get("path") == path:
            return


def wait_page_stage(lab: LabNetwork, stage: str, process: LabProcess, timeout: float) -> None:
    """Wait until the page reports ``stage`` (its ``POST /log``, relayed by the peer)."""
    deadline = time.monotonic() + timeout
    while stage not in lab.page_notes:
        remaining = max(0.0, deadline - time.monotonic())
        lab.next_event(process, remaining, f"page stage '{stage}'")


EXPECTED_NAME: Final = "expected.json"


def write_expected(folder: Path, variant: str) -> None:
    """``expected.json``: the session's ground truth measured from the browser's plaintext
    packets (:func:`decoders.lab.groundtruth.expected_document`; for Firefox the capture
    decrypted with the peer's exported keys)."""
    from decoders.lab.groundtruth import expected_document

    scenario = json.loads((folder / "session.json").read_text())["scenario"]
    # the reference starts when paplay started playing it (Chromium: at getUserMedia)
    started = scenario.get("microphone", {}).get("playback_started")
    expected = expected_document(
        folder, app=f"firefox-{variant}", dtx=variant == "dtx", gum_s=started
    )
    outputs.write_text(folder / EXPECTED_NAME, json.dumps(expected, indent=2) + "\n")


def _finish_files(
    out_dir: Path, variant: str, lab: LabNetwork, addon: Path | None, *, keys: bool = True
) -> None:
    """Write timeline.json, fix permissions, and check every expected file is there."""
    for name in ("capture.pcapng", "flows.mitm", "events.jsonl"):
        if (out_dir / name).is_file():
            (out_dir / name).chmod(0o644)  # dumpcap and mitmproxy create them owner-only
    outputs.write_text(
        out_dir / "timeline.json", json.dumps(timeline_document(lab.page_timeline), indent=2) + "\n"
    )
    expected = [name for name in REQUIRED_FILES if name != "session.json"]
    if not keys:  # a browser answered: its key log instead of exported keys
        expected = [name for name in expected if name != "keys.json"] + [firefox.PEER_KEYLOG]
    if addon is not None:
        expected.append("events.jsonl")
    if variant in (*TELEMETRY_VARIANTS, *GAIN_VARIANTS):
        expected.append("peer-telemetry.jsonl")
    missing = [name for name in expected if not (out_dir / name).is_file()]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}")
