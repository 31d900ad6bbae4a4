"""``mutecheck audit URL``: one command for a whole audit.

Starts, in this order, and stops by process id whatever happened: mitmdump with the
mutecheck addon on a free loopback port (``-s addons/mutecheck.py``, writing ``events.jsonl``
and ``flows.mitm`` into the session folder); dumpcap on the interface that routes to the
service (or the one given) with a filter for UDP and the TURN/TLS ports, writing
``capture.pcapng``; Chromium with a throwaway profile and HOME whose NSS database trusts
mitmproxy's CA, the proxy, and its plaintext RTP dump on stderr. While the call runs, the
capture and the events feed the live state and its alarm; marks come from the plan, the keys
or the app's own signals (the addon). At the end: the RTP dump imported into
``rtpdump.pcapng``, the analysis of the folder, ``report.json`` and ``report.html``.

Process plumbing (start in a private HOME, stop by PID or group, waits on logs) is the lab's
(:mod:`decoders.lab.record`), as are the mitmdump command and the RTP-dump flags.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import decoders
from decoders import outputs
from decoders.chromium import find_chromium
from decoders.lab.record import (
    ADDON,
    RTPDUMP_LOG,
    LabNetwork,
    LabProcess,
    mitmdump_command,
    tail_text,
    wait_for_log,
)
from decoders.live.browser import chromium_flags, trust_ca
from decoders.live.feed import DUMP_SOURCE, feed_capture, feed_events, feed_rtpdump, start_thread
from decoders.live.plan import PlanStep
from decoders.live.screen import Refresher, Screen
from decoders.live.state import LiveState
from decoders.live.tail import TeeReader

CAPTURE_FILTER: Final = (
    "(udp and not port 53 and not port 5353) or (tcp and (port 3478 or port 5349))"
)
"""UDP media (not DNS/mDNS) and TURN over TCP/TLS (``turns:`` on 443 is left out: it would
take every HTTPS connection; the proxy sees that one)."""
CAPTURE_NAME: Final = "capture.pcapng"
RTPDUMP_CAPTURE: Final = "rtpdump.pcapng"
PROXY_LOG: Final = "proxy.log"
TICK_S: Final = 0.05
UPSTREAM_CHECK_S: Final = 0.5
"""How often the proxy's log is read for refused server certificates."""
GRANT_HINT: Final = (
    "no capture privileges: run as root, or grant dumpcap its capabilities with "
    "`sudo setcap cap_net_raw,cap_net_admin=eip $(command -v dumpcap)`; "
    "going on without the wire side (the addon and the RTP dump still record)"
)


DENIED: Final = ("do not have permission", "Operation not permitted")
"""What dumpcap says when it may not capture."""


class AuditError(RuntimeError):
    """The audit could not run (a missing tool, a process that would not start)."""


@dataclass(frozen=True)
class AuditConfig:
    url: str
    out: Path
    headless: bool = False
    plan: tuple[PlanStep, ...] = ()
    duration_s: float | None = None
    interface: str | None = None
    fake_mic: Path | None = None
    upstream_ca: Path | None = None
    """A CA (PEM) the proxy trusts for the audited servers as well as the usual public ones,
    e.g. a self-hosted deployment's internal CA. The proxy always verifies the servers."""


@dataclass
class AuditResult:
    folder: Path
    verdict: str = "inconclusive"
    exit_code: int = 3
    summary: str = ""
    report_json: Path | None = None
    report_html: Path | None = None
    alarms: int = 0
    not_recorded: list[str] = field(default_factory=list)
    ended_by: str = ""


def check_url(url: str) -> str:
    """The URL if it is http(s) with a host; ValueError otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return url


def check_ca_file(path: Path) -> Path:
    """``path`` if it holds at least one PEM certificate; ValueError naming the problem."""
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a PEM certificate file ({error})") from error
    return path


def upstream_bundle(extra: Path, folder: Path) -> Path:
    """A CA file for the proxy: the public CAs it trusts by default (certifi's, as mitmproxy
    does) followed by ``extra``. (``ssl_verify_upstream_trusted_ca`` replaces the default
    bundle; the audit adds to it.)"""
    import certifi

    bundle = folder / "upstream-ca.pem"
    public = Path(certifi.where()).read_bytes()
    bundle.write_bytes(public.rstrip(b"\n") + b"\n" + extra.read_bytes())
    return bundle


_CLIENT = re.compile(r"^\[[\d:.]+\]\[([^\]]+)\] ")
SERVER_TLS_FAILED: Final = "Server TLS handshake failed. "


class CertificateFailures:
    """The servers whose TLS handshake mitmproxy's log says failed, read as the log grows.

    mitmdump logs ``[time][client] server connect HOST:PORT`` then, on the same client
    connection, ``[time][client] Server TLS handshake failed. Certificate verify failed: ...``.
    """

    def __init__(self) -> None:
        self._servers: dict[str, str] = {}
        self._rest = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        """``(server, reason)`` for each failure in ``text`` (the log's next bytes), in order."""
        lines = (self._rest + text).split("\n")
        self._rest = lines.pop()
        failures = []
        for line in lines:
            match = _CLIENT.match(line)
            if match is None:
                continue
            client, said = match.group(1), line[match.end() :].rstrip()
            if said.startswith("server connect "):
                self._servers[client] = said.removeprefix("server connect ").split()[0]
            elif said.startswith(SERVER_TLS_FAILED):
                reason = said.removeprefix(SERVER_TLS_FAILED).strip()
                failures.append((self._servers.get(client, "a server"), reason))
        return failures


def url_server(url: str) -> str:
    """``HOST:PORT`` of an http(s) URL as mitmproxy's log names the server."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def route_interface(host: str) -> str | None:
    """The interface the kernel routes ``host`` through (``ip route get``), or None."""
    try:
        address = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)[0][4][0]
        out = subprocess.run(
            ["ip", "route", "get", str(address)],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError, socket.gaierror, IndexError):
        return None
    words = out.split()
    return words[words.index("dev") + 1] if "dev" in words[:-1] else None


def local_addresses() -> list[str]:
    """This machine's (this namespace's) addresses: the sending side of the call."""
    try:
        out = subprocess.run(
            ["ip", "-o", "addr", "show"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.splitlines():
        words = line.split()
        if len(words) > 3 and words[2] in ("inet", "inet6"):
            address = words[3].split("/")[0]
            if not address.startswith(("127.", "::1", "fe80:")):
                found.append(address)
    return found


def _capture_started(process: LabProcess, path: Path, timeout: float = 10.0) -> str | None:
    """None once dumpcap wrote its header; else why it did not (it exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size > 0:
            return None
        if not process.alive():
            text = process.log.read_text(errors="replace") if process.log.is_file() else ""
            if any(sign in text for sign in DENIED):
                return "no privileges"
            return tail_text(process.log) or f"dumpcap exited ({process.popen.returncode})"
        time.sleep(0.05)
    return f"dumpcap wrote no {path.name} after {timeout:.0f} s"


class Audit:
    """One audit run; :meth:`run` does it all and returns the result."""

    def __init__(self, config: AuditConfig, screen: Screen) -> None:
        self.config = config
        self.screen = screen
        self.out = config.out.resolve()
        self.result = AuditResult(self.out)
        self.stop = threading.Event()
        self.quit = threading.Event()
        """Set by Ctrl-C or the q key: end the call, then write the report."""
        self.proxy_port = 0
        self.started = 0.0
        self.local = local_addresses()
        self.state = LiveState(local=[*self.local, DUMP_SOURCE], on_alarm=screen.alarm)
        self._threads: list[threading.Thread] = []
        self._tee: TeeReader | None = None
        self._refused: set[str] = set()
        """Servers whose certificate the proxy refused, said once each."""
        self._upstream = CertificateFailures()
        self._proxy_log_read = 0

    # -- the whole run --------------------------------------------------------------------
    def run(self) -> AuditResult:
        chromium = find_chromium()
        if chromium is None:
            raise AuditError("Chromium not found (Debian package chromium, or set $CHROMIUM)")
        self.out.mkdir(parents=True, exist_ok=True)
        if any(self.out.iterdir()):
            raise AuditError(f"{self.out} is not empty")
        work = Path(tempfile.mkdtemp(prefix="mutecheck-audit-"))
        lab = LabNetwork(work=work, browser_ns="", peer_ns="")
        try:
            self._start_proxy(lab, work)
            capturing = self._start_capture(lab)
            self._start_browser(lab, work, chromium)
            self._start_feeds(None if capturing else work / "chromium.log")
            self._call(lab)
        finally:
            problems = lab.cleanup()  # reverse order: Chromium, dumpcap, mitmdump; by PID
            self.stop.set()
            for thread in self._threads:
                thread.join(timeout=10)
            self.state.flush()
            if (work / "chromium.log").is_file():
                shutil.copyfile(work / "chromium.log", self.out / RTPDUMP_LOG)
            if (work / "mitmdump.log").is_file():  # what the proxy saw, for the person
                shutil.copyfile(work / "mitmdump.log", self.out / PROXY_LOG)
            for name in (CAPTURE_NAME, "events.jsonl", "flows.mitm"):
                if (self.out / name).is_file():  # dumpcap and mitmproxy make them owner-only
                    (self.out / name).chmod(0o644)
            shutil.rmtree(work, ignore_errors=True)
            for problem in problems:
                self.screen.line(f"cleanup: {problem}")
        self._finish()
        return self.result

    # -- the children ---------------------------------------------------------------------
    def _start_proxy(self, lab: LabNetwork, work: Path) -> None:
        self.proxy_port = free_port()
        command = [
            *mitmdump_command(),
            *("--listen-host", "127.0.0.1", "--listen-port", str(self.proxy_port)),
            *("--set", f"confdir={work / 'mitmproxy'}"),
            # lazy: the browser's TLS with the proxy completes before the server is contacted,
            # so an unreachable server is a 502 page, not a failed handshake (as in the lab)
            *("--set", "connection_strategy=lazy"),
            *("-s", str(ADDON), "--set", f"mutecheck_dir={self.out}"),
        ]
        # mitmproxy verifies every server's certificate (ssl_insecure stays off, always);
        # --upstream-ca adds a CA to the public ones it trusts
        if self.config.upstream_ca is not None:
            bundle = upstream_bundle(self.config.upstream_ca, work)
            command += ["--set", f"ssl_verify_upstream_trusted_ca={bundle}"]
        proxy = lab.start("mitmdump", command, private_home=True)
        proxy.stop_signal = signal.SIGINT  # mitmdump flushes its files on SIGINT
        wait_for_log(proxy, "proxy listening at", timeout=30)
        wait_for_log(proxy, f"Loading script {ADDON}", timeout=5)
        log = proxy.log.read_text(errors="replace")
        if any(sign in log for sign in ("Traceback", "error in script", "Addon error")):
            raise AuditError(f"the addon failed to load: {tail_text(proxy.log, 12)}")
        self.screen.line(f"proxy: mitmdump with the mutecheck addon on 127.0.0.1:{self.proxy_port}")

    def _start_capture(self, lab: LabNetwork) -> bool:
        host = urllib.parse.urlsplit(self.config.url).hostname or ""
        interface = self.config.interface or route_interface(host)
        if interface is None:
            self.screen.line(f"capture: no route to {host}; going on without the wire side")
            self.result.not_recorded.append("capture (no route to the service)")
            return False
        dumpcap = shutil.which("dumpcap")
        if dumpcap is None:
            self.screen.line("capture: dumpcap not found (Debian package tshark)")
            self.result.not_recorded.append("capture (no dumpcap)")
            return False
        path = self.out / CAPTURE_NAME
        command = [dumpcap, "-q", "-i", interface, "-f", CAPTURE_FILTER, "-w", "-"]
        log = lab.work / "dumpcap.log"
        with log.open("wb") as errors:
            popen = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
            )
        process = LabProcess(name="dumpcap", popen=popen, log=log, stop_signal=signal.SIGINT)
        lab.processes.append(process)  # stopped by PID with the others (SIGINT ends the file)
        assert popen.stdout is not None
        self._tee = TeeReader(popen.stdout, path.open("wb"))
        self._threads.append(start_thread("capture", self._read_capture, self._tee))
        problem = _capture_started(process, path)
        if problem is not None:
            denied = problem == "no privileges"
            self.screen.line(GRANT_HINT if denied else f"capture failed: {problem}")
            self.result.not_recorded.append(f"capture ({problem})")
            process.stop()
            path.unlink(missing_ok=True)
            return False
        self.screen.line(f"capture: dumpcap on {interface} -> {path}")
        return True

    def _start_browser(self, lab: LabNetwork, work: Path, chromium: str) -> None:
        ca = work / "mitmproxy" / "mitmproxy-ca-cert.pem"
        home = work / "chromium-home"  # the HOME lab.start gives it (private_home)
        trust_ca(home, ca)
        flags = chromium_flags(
            url=self.config.url,
            proxy_port=self.proxy_port,
            profile=work / "profile",
            headless=self.config.headless,
            fake_mic=self.config.fake_mic,
        )
        lab.start("chromium", [chromium, *flags], group=True, private_home=True)
        self.started = time.time()
        self.screen.line(f"browser: Chromium on {self.config.url}")

    def _read_capture(self, tee: TeeReader) -> None:
        """The capture thread: parse what dumpcap sends, copying it into the session."""
        try:
            damage = feed_capture(tee, self.state)  # type: ignore[arg-type]
            if damage and self.state.counts["frames"] and not self.stop.is_set():
                self.screen.line(f"capture: {damage}")
            tee.drain()
        finally:
            tee.close()

    def _start_feeds(self, rtpdump: Path | None) -> None:
        """The addon's events; without the wire side, Chromium's plaintext RTP dump."""
        if rtpdump is not None:
            self._threads.append(
                start_thread("rtpdump", feed_rtpdump, rtpdump, self.state, self.stop)
            )
        events = self.out / "events.jsonl"
        self._threads.append(start_thread("events", feed_events, events, self.state, self.stop))

    # -- the call -------------------------------------------------------------------------
    def mark(self, muted: bool, note: str) -> None:
        """Tell the addon (it writes the mark into events.jsonl) and the live state."""
        from decoders.session.mutemark import send_mark

        t = time.time()
        self.state.mark(t, muted)
        try:
            send_mark(f"127.0.0.1:{self.proxy_port}", muted, at=t, note=note)
        except OSError as error:
            self.screen.line(f"mark failed: {error}")
            return
        self.screen.line(f"mark: {'muted' if muted else 'unmuted'} ({note})")

    def _check_upstream(self, proxy: LabProcess) -> None:
        """One line per server whose certificate the proxy refused; the audited server's
        ends the audit (the page cannot load), with what to do about it."""
        try:
            with proxy.log.open("rb") as log:
                log.seek(self._proxy_log_read)
                text = log.read()
        except OSError:
            return
        self._proxy_log_read += len(text)
        audited = url_server(self.config.url)
        for server, reason in self._upstream.feed(text.decode(errors="replace")):
            if server in self._refused:
                continue
            self._refused.add(server)
            if server == audited:
                raise AuditError(
                    f"the proxy refused {server}'s TLS certificate ({reason}); if you trust "
                    "that server, give the CA that issued its certificate with --upstream-ca PEM"
                )
            self.screen.line(f"upstream TLS: the proxy refused {server}'s certificate ({reason})")

    def _call(self, lab: LabNetwork) -> None:
        plan = list(self.config.plan)
        browser = next(p for p in lab.processes if p.name == "chromium")
        proxy = next(p for p in lab.processes if p.name == "mitmdump")
        refresh = Refresher(self.screen)
        checked = 0.0
        while True:
            now = time.time()
            if now - checked >= UPSTREAM_CHECK_S:
                self._check_upstream(proxy)
                checked = now
            elapsed = now - self.started
            while plan and elapsed >= plan[0].offset_s:
                step = plan.pop(0)
                self.mark(step.muted, f"plan {step.offset_s:g}s")
            for key in self.screen.pressed():
                if key in "mM":
                    self.mark(True, "key")
                elif key in "uU":
                    self.mark(False, "key")
                elif key in "qQ":
                    self.quit.set()
            self.state.tick(now)
            refresh(self.state.snapshot, now)
            if self.config.duration_s is not None and elapsed >= self.config.duration_s:
                self.result.ended_by = f"--duration {self.config.duration_s:g}"
                return
            if self.quit.is_set():
                self.result.ended_by = "quit"
                return
            if not browser.alive():
                self.result.ended_by = "the browser closed"
                return
            self.stop.wait(TICK_S)

    # -- the end --------------------------------------------------------------------------
    def _finish(self) -> None:
        self.screen.line(f"call over ({self.result.ended_by}); {len(self.state.alarms)} alarm(s)")
        self.result.alarms = len(self.state.alarms)
        self._import_dump()
        self._write_manifest()
        self._analyse()

    def _import_dump(self) -> None:
        from decoders.media.rtpdump import import_rtpdump

        log = self.out / RTPDUMP_LOG
        if not log.is_file():
            self.result.not_recorded.append("RTP dump (no Chromium log)")
            return
        try:
            dump = import_rtpdump(log, self.out / RTPDUMP_CAPTURE)
        except ValueError as error:
            self.result.not_recorded.append(f"RTP dump ({error})")
            return
        self.screen.line(
            f"RTP dump: {dump.outbound} sent, {dump.inbound} received -> "
            f"{self.out / RTPDUMP_CAPTURE}"
        )

    def _write_manifest(self) -> None:
        document: dict[str, Any] = {
            "version": 1,
            "source": "audit",
            "created": datetime.fromtimestamp(self.started or time.time(), UTC).isoformat(
                timespec="seconds"
            ),
            "mutecheck": decoders.__version__,
            "url": self.config.url,
            "headless": self.config.headless,
            "plan": [{"offset_s": s.offset_s, "muted": s.muted} for s in self.config.plan],
            "browser_started": self.started,
            "ended_by": self.result.ended_by,
            "local_addresses": self.local,
            "capture_filter": CAPTURE_FILTER,
            "not_recorded": self.result.not_recorded,
            "live_alarms": [
                {
                    "t": a.t,
                    "raised": self.state.raised.get(a),
                    "kind": a.kind,
                    "subject": a.subject,
                    "detail": a.detail,
                }
                for a in self.state.alarms
            ],
        }
        outputs.write_text(self.out / "session.json", json.dumps(document, indent=2) + "\n")

    def _analyse(self) -> None:
        from decoders.audit.analysis import Inputs, analyze
        from decoders.media.rtpdump import DEFAULT_LOCAL
        from decoders.report.analysis_json import report_document
        from decoders.report.html import write_html
        from decoders.report.summary import summary_text

        capture, local = self.out / CAPTURE_NAME, tuple(self.local)
        if not capture.is_file() and (self.out / RTPDUMP_CAPTURE).is_file():
            capture = self.out / RTPDUMP_CAPTURE  # no wire side: the plaintext dump
            local = (DEFAULT_LOCAL[0],)  # where the import puts the browser
            self.screen.line(f"analysing the RTP dump ({capture.name}): no wire capture")
        inputs = Inputs(
            session_dir=self.out, capture=capture if capture.is_file() else None, local=local
        )
        result = analyze(inputs)
        document = report_document(result)
        self.result.report_json = self.out / "report.json"
        outputs.write_text(
            self.result.report_json, json.dumps(document, indent=2, allow_nan=False) + "\n"
        )
        self.result.report_html = write_html(result, self.out / "report.html")
        self.result.verdict = result.verdict.verdict
        self.result.exit_code = result.verdict.exit_code
        self.result.summary = summary_text(document, report_path=str(self.result.report_json))
        for missing in self.result.not_recorded:
            self.screen.line(f"not recorded: {missing}")


def run_audit(
    config: AuditConfig, screen: Screen, on_start: Callable[[Audit], None] | None = None
) -> AuditResult:
    """Run one audit; ``on_start`` gets the :class:`Audit` first (to wire Ctrl-C to its quit)."""
    audit = Audit(config, screen)
    if on_start is not None:
        on_start(audit)
    return audit.run()
