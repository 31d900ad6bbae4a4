"""Record one lab session: headless Chromium calls an aiortc peer across two network namespaces.

Layout (nothing can leave the machine: the namespaces have no default route and no IPv6)::

    namespace mutecheck-b-<pid>               namespace mutecheck-p-<pid>
    Chromium (page, fake mic)  mcb0 ==veth== mcp0  peer.py (HTTP :8080 + aiortc), dumpcap
    10.77.0.1/24                                   10.77.0.2/24

:func:`record_session` runs every step, writes the session folder and removes every process,
namespace and temporary file it made, also when a step fails (:class:`LabError` names the step).
Needs root, ``ip``, ``dumpcap``, ``espeak-ng``, ``sox`` and ``/usr/lib/chromium/chromium``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import decoders
from decoders.lab.reference import Reference, make_reference

VARIANTS = ("track-disabled", "ui-only")
CHROMIUM = "/usr/lib/chromium/chromium"
BROWSER_ADDRESS = "10.77.0.1"
PEER_ADDRESS = "10.77.0.2"
PREFIX_LENGTH = 24
HTTP_PORT = 8080
BROWSER_INTERFACE = "mcb0"
PEER_INTERFACE = "mcp0"
CAPTURE_FILTER = f"udp and host {BROWSER_ADDRESS} and host {PEER_ADDRESS}"
REFERENCE_MARGIN_S = 4.0  # fake-mic signal beyond the scenario: launch and connection time
SESSION_FILES = (
    "capture.pcapng",
    "offer.sdp",
    "answer.sdp",
    "timeline.json",
    "keys.json",
    "reference.wav",
    "session.json",
)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-breakpad",
    "--mute-audio",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
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


def _tail(path: Path, lines: int = 8) -> str:
    """Last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])


@dataclass
class _Process:
    """A child process the lab started; stopped by its PID (or process group) only."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    group: bool = False
    stop_signal: signal.Signals = signal.SIGTERM

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
class _Lab:
    """Everything one recording owns, so that cleanup can find it."""

    work: Path
    browser_ns: str
    peer_ns: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[_Process] = field(default_factory=list)
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
    ) -> _Process:
        """Start a process; with ``lines`` its stdout JSON lines go to ``events``.

        ``private_home`` points HOME, TMPDIR and the XDG dirs into the work directory, so
        whatever the program leaves behind (Chromium's crash-report and singleton dirs) goes
        away with it.
        """
        env = _child_env()
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
        process = _Process(name=name, popen=popen, log=log, group=group)
        self.processes.append(process)
        if lines and popen.stdout is not None:
            threading.Thread(target=self._pump, args=(popen.stdout,), daemon=True).start()
        return process

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in stream:
            try:
                event = json.loads(raw)
            except ValueError:
                event = {"event": "output", "line": raw.decode(errors="replace").strip()}
            self.events.put(event if isinstance(event, dict) else {"event": "output"})

    def next_event(self, process: _Process, timeout: float, waiting_for: str) -> dict[str, Any]:
        """The peer's next event; notes page progress, fails on errors or a dead peer."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                stage = self.last_page_stage
                raise TimeoutError(f"no {waiting_for} after {timeout:.0f} s (page stage: {stage})")
            try:
                event = self.events.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                if not process.alive():
                    raise RuntimeError(
                        f"{process.name} exited ({process.popen.returncode}): {_tail(process.log)}"
                    ) from None
                continue
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

    def wait_event(self, wanted: str, process: _Process, timeout: float) -> dict[str, Any]:
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


def _create_network(lab: _Lab) -> None:
    """Two namespaces, a veth pair between them, addresses, IPv6 off, no default route."""
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
        settings = [f"net.ipv6.conf.{name}.disable_ipv6=1" for name in ("all", "default", "lo")]
        settings.append(f"net.ipv6.conf.{interface}.disable_ipv6=1")
        _run(["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", *settings])
        _run(["ip", "-n", namespace, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", interface])
        _run(["ip", "-n", namespace, "link", "set", "lo", "up"])
        _run(["ip", "-n", namespace, "link", "set", interface, "up"])
        routes = _run(["ip", "-n", namespace, "route", "show", "default"]).strip()
        if routes:
            raise RuntimeError(f"namespace {namespace} has a default route: {routes}")


def _wait_for_capture(process: _Process, path: Path, timeout: float) -> None:
    """Wait until dumpcap has written its file header (after it accepted the filter)."""
    deadline = time.monotonic() + timeout
    while not (path.is_file() and path.stat().st_size > 0):
        if not process.alive():
            raise RuntimeError(f"{process.name} exited: {_tail(process.log)}")
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


def tool_versions() -> dict[str, str]:
    """Versions of everything that shaped a session."""
    versions = {
        "chromium": _first_line([CHROMIUM, "--version"]),
        "dumpcap": _first_line(["dumpcap", "--version"]),
        "tshark": _first_line(["tshark", "--version"]),
        "espeak-ng": _first_line(["espeak-ng", "--version"]),
        "sox": _first_line(["sox", "--version"]),
        "python": sys.version.split()[0],
        "mutecheck": decoders.__version__,
        "platform": platform.platform(),
    }
    for package in ("aiortc", "aioice", "pylibsrtp", "av", "pyOpenSSL", "cryptography"):
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
    """The ``timeline.json`` document from the page's report (epoch ms -> epoch s)."""
    changes: list[tuple[float, str]] = []
    for event in page_timeline["events"]:
        state = str(event["state"])
        if state not in ("muted", "unmuted"):
            raise ValueError(f"page timeline has state {state!r}")
        changes.append((round(float(event["t_ms"]) / 1000.0, 6), state))
    end = round(float(page_timeline["end_ms"]) / 1000.0, 6)
    muted: list[list[float]] = []
    for index, (t, state) in enumerate(changes):
        if state == "muted":
            following = [u for u, s in changes[index + 1 :] if s == "unmuted"]
            muted.append([t, following[0] if following else end])
    events = [{"t": t, "state": state} for t, state in changes]
    return {"version": 1, "source": "lab", "clock": "epoch", "muted": muted, "events": events}


def _file_entry(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"name": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _session_document(
    *,
    variant: str,
    durations: tuple[float, float, float],
    lab: _Lab,
    reference: Reference,
    out_dir: Path,
    peer_finished: dict[str, Any],
    started: float,
    wall_time_s: float,
) -> dict[str, Any]:
    offer = (out_dir / "offer.sdp").read_text()
    answer = (out_dir / "answer.sdp").read_text()
    page_timeline = lab.page_timeline
    microphone = lab.page_notes.get("microphone", {})
    connected = lab.page_notes.get("connected", {})

    def epoch_s(value: Any) -> float | None:
        return round(float(value) / 1000.0, 6) if value is not None else None

    return {
        "version": 1,
        "source": "lab",
        "kind": "chromium-aiortc",
        "created": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "variant": variant,
        "scenario": {
            "phases": ["unmuted", "muted", "unmuted"],
            "durations_s": list(durations),
            "getusermedia_called": epoch_s(microphone.get("getusermedia_ms")),
            "connected": epoch_s(connected.get("connected_ms")),
            "start": round(float(page_timeline["events"][0]["t_ms"]) / 1000.0, 6),
            "end": epoch_s(page_timeline["end_ms"]),
            "microphone_label": microphone.get("label"),
            "user_agent": page_timeline.get("user_agent"),
            "chromium_flags": [
                *CHROMIUM_FLAGS,
                "--user-data-dir=<fresh temporary directory>",
                "--use-file-for-fake-audio-capture=<48 kHz copy of reference.wav>",
                f"--unsafely-treat-insecure-origin-as-secure=http://{PEER_ADDRESS}:{HTTP_PORT}",
            ],
        },
        "clock": "epoch",
        "wall_time_s": round(wall_time_s, 2),
        "tools": tool_versions(),
        "network": {
            "mode": "netns-veth",
            "browser": {
                "namespace": lab.browser_ns,
                "interface": BROWSER_INTERFACE,
                "address": BROWSER_ADDRESS,
                "ice_udp_port": host_candidate(offer, BROWSER_ADDRESS),
            },
            "peer": {
                "namespace": lab.peer_ns,
                "interface": PEER_INTERFACE,
                "address": PEER_ADDRESS,
                "ice_udp_port": host_candidate(answer, PEER_ADDRESS),
                "http_port": HTTP_PORT,
            },
            "capture_interface": PEER_INTERFACE,
            "capture_filter": CAPTURE_FILTER,
        },
        "peer": {"frames_received": peer_finished.get("frames_received")},
        "reference": {
            "file": "reference.wav",
            "sample_rate": reference.reference_sample_rate,
            "fake_mic_sample_rate": reference.mic_sample_rate,
            "duration_s": reference.duration_s,
            "starts_near": "scenario.getusermedia_called (Chromium loops the file)",
            "speech_text": reference.speech_text,
            "tone_bursts": [
                {"start_s": b.start_s, "duration_s": b.duration_s, "frequency_hz": b.frequency_hz}
                for b in reference.bursts
            ],
        },
        "files": [_file_entry(out_dir / name) for name in SESSION_FILES if name != "session.json"],
    }


def _check_tools() -> None:
    if os.geteuid() != 0:
        raise RuntimeError("network namespaces need root")
    missing = [tool for tool in ("ip", "dumpcap", "espeak-ng", "sox") if shutil.which(tool) is None]
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    if missing:
        raise RuntimeError(f"missing: {', '.join(missing)}")


def record_session(
    variant: str, out_dir: Path, durations: tuple[float, float, float] = (4.0, 6.0, 4.0)
) -> Path:
    """Record one session of `variant` into the folder `out_dir` (created; must hold no files).

    `durations` are seconds unmuted, muted, unmuted. Returns the session folder. On failure a
    :class:`LabError` names the step; the folder keeps what was written so far, and every
    process, namespace and temporary file of the run is gone either way.
    """
    started = time.time()
    clock = time.monotonic()
    out_dir = Path(out_dir).resolve()
    with _step("arguments"):
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
        if len(durations) != 3 or any(not 0 < d <= 60 for d in durations):
            raise ValueError(f"durations must be three values in (0, 60] s, got {durations}")
        out_dir.mkdir(parents=True, exist_ok=True)
        if any(out_dir.iterdir()):
            raise ValueError(f"{out_dir} is not empty")
    with _step("tools"):
        _check_tools()
    work = Path(tempfile.mkdtemp(prefix="mutecheck-lab-"))
    tag = f"{os.getpid()}-{int(started * 1000) % 100000}"
    lab = _Lab(work=work, browser_ns=f"mutecheck-b-{tag}", peer_ns=f"mutecheck-p-{tag}")
    failure: BaseException | None = None
    try:
        with _step("reference signal"):
            reference = make_reference(
                work / "mic.wav",
                out_dir / "reference.wav",
                sum(durations) + REFERENCE_MARGIN_S,
                work,
            )
        with _step("network namespaces"):
            _create_network(lab)
        with _step("capture"):
            dumpcap = lab.start(
                "dumpcap",
                [
                    *("ip", "netns", "exec", lab.peer_ns, "dumpcap", "-q", "-i", PEER_INTERFACE),
                    *("-f", CAPTURE_FILTER, "-w", str(out_dir / "capture.pcapng")),
                ],
            )
            dumpcap.stop_signal = signal.SIGINT  # dumpcap finishes the file on SIGINT
            _wait_for_capture(dumpcap, out_dir / "capture.pcapng", timeout=10)
        with _step("peer"):
            peer_command = [sys.executable, "-m", "decoders.lab.peer", "--out", str(out_dir)]
            peer_command += ["--host", PEER_ADDRESS, "--port", str(HTTP_PORT)]
            in_namespace = ["ip", "netns", "exec", lab.peer_ns]
            peer = lab.start("peer", [*in_namespace, *peer_command], lines=True)
            lab.wait_event("listening", peer, timeout=30)
        with _step("browser"):
            origin = f"http://{PEER_ADDRESS}:{HTTP_PORT}"
            query = f"variant={variant}&durations=" + ",".join(
                str(round(d * 1000)) for d in durations
            )
            lab.start(
                "chromium",
                [
                    *("ip", "netns", "exec", lab.browser_ns, CHROMIUM, *CHROMIUM_FLAGS),
                    f"--user-data-dir={work / 'profile'}",
                    f"--use-file-for-fake-audio-capture={reference.mic_path}",
                    f"--unsafely-treat-insecure-origin-as-secure={origin}",
                    f"{origin}/?{query}",
                ],
                group=True,
                private_home=True,
            )
            lab.wait_event("answered", peer, timeout=30)
        with _step("scenario"):
            finished = lab.wait_event("finished", peer, timeout=sum(durations) + 30)
            if not lab.page_timeline:
                raise RuntimeError("the page sent no timeline")
            if not finished.get("keys"):
                raise RuntimeError("the peer exported no SRTP keys (DTLS never completed)")
            peer.popen.wait(timeout=10)
        with _step("teardown"):
            time.sleep(0.3)  # let dumpcap see the last datagrams
            if not dumpcap.alive():
                raise RuntimeError(f"dumpcap stopped early: {_tail(dumpcap.log)}")
            problems = lab.cleanup()
            if problems:
                raise RuntimeError("; ".join(problems))
        with _step("session files"):
            (out_dir / "capture.pcapng").chmod(0o644)  # dumpcap creates it owner-only
            (out_dir / "timeline.json").write_text(
                json.dumps(timeline_document(lab.page_timeline), indent=2) + "\n"
            )
            missing = [
                n for n in SESSION_FILES if n != "session.json" and not (out_dir / n).is_file()
            ]
            if missing:
                raise RuntimeError(f"missing {', '.join(missing)}")
            document = _session_document(
                variant=variant,
                durations=durations,
                lab=lab,
                reference=reference,
                out_dir=out_dir,
                peer_finished=finished,
                started=started,
                wall_time_s=time.monotonic() - clock,
            )
            (out_dir / "session.json").write_text(json.dumps(document, indent=2) + "\n")
        return out_dir
    except BaseException as exc:
        failure = exc
        raise
    finally:
        problems = lab.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        if problems and failure is None:
            raise LabError("cleanup", "; ".join(problems))
