"""What the mutecheck addon costs: HTTP and WebSocket throughput through mitmdump, with and without.

    PYTHONPATH=. python bench/bench_addon.py [--requests 10000] [--messages 50000]

One run: a local tornado server (its own process), then ``mitmdump -q`` on loopback twice, first
without the addon, then with ``-s addons/mutecheck.py`` and its defaults (session folder, the
flows that gave events saved to ``flows.mitm`` by the writer process); each time the same clients
send the same traffic through it:

- ``--requests`` HTTP POSTs (absolute-form, keep-alive, ``--connections`` clients in parallel);
- ``--messages`` WebSocket messages over ``--connections`` WebSockets (CONNECT + upgrade, as
  browsers do), in batches; the server answers a ``sync`` after each batch with its count, so the
  time covers delivery, not just sending.

The traffic is what a call page sends: mostly small JSON (chat, presence, pings), one message in
ten a quality report with volume-like fields (``audioLevel``, ``totalAudioEnergy``), one in a
hundred an SDP offer, one in a hundred a base64 metrics blob. The user is not muted, so nothing is
blocked; the addon still parses, records telemetry events and saves flows.

Prints requests/s and messages/s for both runs and the ratios (target >= 0.9). Not part of the
test suite; every phase has a deadline (``--deadline`` seconds) and everything started is stopped.

With two CPUs or more, mitmdump runs on one CPU and everything else (the clients, the server,
mitmdump's helper processes such as the addon's flow writer) on the others, the same for both
configurations (``--no-pin`` lets the scheduler place them): on a small, shared machine the
scheduler otherwise moves them around at random, and the ratio of one run to the next varies by
more than the addon costs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "addons" / "mutecheck.py"
OFFER = (ROOT / "tests" / "fixtures" / "signaling" / "whip_offer.sdp").read_bytes().decode()
BATCH = 500


def payload(number: int) -> bytes:
    """The number-th message of the traffic mix (deterministic)."""
    if number % 100 == 7:
        return json.dumps({"type": "offer", "sdp": OFFER, "seq": number}).encode()
    if number % 100 == 13:
        inner = json.dumps({"audioTransmit": [{"levels": {"audioMeanGain": -40 - number % 9}}]})
        return json.dumps(
            {"metrics": [{"eventPayload": base64.b64encode(inner.encode()).decode()}]}
        ).encode()
    if number % 10 == 3:
        return json.dumps(
            {
                "type": "stats",
                "seq": number,
                "stats": [
                    {"kind": "audio", "audioLevel": (number % 97) / 97, "totalAudioEnergy": 1.5},
                    {"kind": "video", "framesPerSecond": 30, "bytesSent": 1000 * number},
                ],
            }
        ).encode()
    kind = ("chat", "presence", "ping", "typing")[number % 4]
    return json.dumps({"type": kind, "seq": number, "room": "r1", "text": "hello there"}).encode()


# --- the server (its own process) --------------------------------------------------------------


def serve(port_file: Path) -> None:
    import tornado.httpserver
    import tornado.netutil
    import tornado.web
    import tornado.websocket

    class Api(tornado.web.RequestHandler):
        def post(self, path: str) -> None:
            self.write(b'{"ok":true}')

    class Socket(tornado.websocket.WebSocketHandler):
        count = 0

        def on_message(self, message: str | bytes) -> None:
            if message == "sync":
                self.write_message(f"ack {self.count}")
            else:
                self.count += 1

    async def main() -> None:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server = tornado.httpserver.HTTPServer(
            tornado.web.Application([(r"/ws", Socket), (r"/(.*)", Api)])
        )
        server.add_sockets(sockets)
        port_file.write_text(str(sockets[0].getsockname()[1]))
        await asyncio.Event().wait()

    asyncio.run(main())


# --- clients -----------------------------------------------------------------------------------


def http_client(proxy: int, server: int, numbers: range, deadline: float) -> None:
    connection = HTTPConnection("127.0.0.1", proxy, timeout=30)
    headers = {"Content-Type": "application/json"}
    for number in numbers:
        if time.monotonic() > deadline:
            raise TimeoutError("HTTP phase ran past its deadline")
        connection.request(
            "POST", f"http://127.0.0.1:{server}/api/{number % 7}", payload(number), headers
        )
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    connection.close()


def websocket_client(proxy: int, server: int, numbers: range, deadline: float) -> None:
    import wsproto
    from wsproto.events import AcceptConnection, Request, TextMessage

    sock = socket.create_connection(("127.0.0.1", proxy), timeout=30)
    authority = f"127.0.0.1:{server}"
    sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(4096)
    connection = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    sock.sendall(connection.send(Request(host=authority, target="/ws")))

    def wait_for(kind: type) -> object:
        while True:
            for event in connection.events():
                if isinstance(event, kind):
                    return event
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("WebSocket closed")
            connection.receive_data(data)

    wait_for(AcceptConnection)
    sent = 0
    for start in range(numbers.start, numbers.stop, BATCH):
        if time.monotonic() > deadline:
            raise TimeoutError("WebSocket phase ran past its deadline")
        chunk = b"".join(
            connection.send(TextMessage(data=payload(number).decode()))
            for number in range(start, min(start + BATCH, numbers.stop))
        )
        sock.sendall(chunk)
        sent += min(BATCH, numbers.stop - start)
        sock.sendall(connection.send(TextMessage(data="sync")))
        ack = wait_for(TextMessage)
        assert isinstance(ack, TextMessage)
        if ack.data != f"ack {sent}":
            raise RuntimeError(f"server counted {ack.data!r}, expected {sent}")
    sock.close()


def run_clients(
    client: Callable[[int, int, range, float], None],
    proxy: int,
    server: int,
    total: int,
    connections: int,
    deadline: float,
) -> float:
    """Split ``total`` over ``connections`` threads; returns the wall time."""
    share = -(-total // connections)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            client(proxy, server, range(index * share, min(total, (index + 1) * share)), deadline)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


# --- mitmdump ----------------------------------------------------------------------------------


def start_mitmdump(arguments: list[str], confdir: Path) -> tuple[subprocess.Popen[str], int]:
    beside = Path(sys.executable).parent / "mitmdump"
    binary = str(beside) if beside.is_file() else shutil.which("mitmdump") or "mitmdump"
    process = subprocess.Popen(
        [
            binary,
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            "0",
            "--set",
            f"confdir={confdir}",
            "--set",
            "termlog_verbosity=info",
            "--set",
            "flow_detail=0",
            *arguments,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = re.search(r"proxy listening at 127\.0\.0\.1:(\d+)", line)
        if match:
            threading.Thread(target=_drain, args=(process,), daemon=True).start()
            return process, int(match.group(1))
    stop(process)
    raise RuntimeError("mitmdump did not start")


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for _ in process.stdout:
        pass


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


def pin(pid: int, cpus: set[int] | None) -> None:
    """Keep a process, and the helper processes it started, on ``cpus`` (None: leave alone)."""
    if cpus is None:
        return
    with contextlib.suppress(OSError):
        os.sched_setaffinity(pid, cpus)


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux /proc; none elsewhere)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(word) for word in text.split()]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Totals:
    """One configuration over all rounds: operations, wall seconds, mitmdump CPU seconds."""

    requests: int = 0
    http_wall: float = 0.0
    http_cpu: float = 0.0
    messages: int = 0
    ws_wall: float = 0.0
    ws_cpu: float = 0.0
    rounds: list[tuple[float, float, float, float]] = field(default_factory=list)
    """Per round: HTTP wall, HTTP CPU, WebSocket wall, WebSocket CPU (seconds)."""


def measure(
    totals: Totals,
    arguments: list[str],
    server: int,
    requests: int,
    messages: int,
    options: argparse.Namespace,
    confdir: Path,
) -> None:
    """One round of one configuration: a fresh mitmdump, the HTTP phase, the WebSocket phase."""
    process, proxy = start_mitmdump(arguments, confdir)
    try:
        if options.cpus is not None:
            proxy_cpu, others = options.cpus
            pin(process.pid, proxy_cpu)
            time.sleep(0.5)  # the addon starts its helpers when the proxy runs
            for child in children(process.pid):
                pin(child, others)
        before = cpu_seconds(process.pid)
        deadline = time.monotonic() + options.deadline
        http_wall = run_clients(http_client, proxy, server, requests, options.connections, deadline)
        middle = cpu_seconds(process.pid)
        deadline = time.monotonic() + options.deadline
        ws_wall = run_clients(
            websocket_client, proxy, server, messages, options.connections, deadline
        )
        ws_cpu = cpu_seconds(process.pid) - middle
        http_cpu = middle - before
    finally:
        stop(process)
    totals.requests += requests
    totals.messages += messages
    totals.http_wall += http_wall
    totals.http_cpu += http_cpu
    totals.ws_wall += ws_wall
    totals.ws_cpu += ws_cpu
    totals.rounds.append((http_wall, http_cpu, ws_wall, ws_cpu))


def report(label: str, totals: Totals) -> None:
    http_rate = totals.requests / totals.http_wall
    ws_rate = totals.messages / totals.ws_wall
    print(
        f"{label:<26} HTTP {totals.requests:>6} requests {http_rate:7.0f}/s"
        f" ({totals.http_cpu / totals.requests * 1e6:5.0f} us CPU each)   WebSocket "
        f"{totals.messages:>6} messages {ws_rate:7.0f}/s"
        f" ({totals.ws_cpu / totals.messages * 1e6:4.0f} us CPU each)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (counts split)")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds per phase")
    parser.add_argument("--extra", action="append", default=[], help="more mitmdump arguments")
    parser.add_argument("--addon", type=Path, default=ADDON, help="the script to measure")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve)
        return 0
    available = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    options.cpus = None
    if not options.no_pin and len(available) >= 2:
        proxy_cpu = {max(available)}
        options.cpus = (proxy_cpu, available - proxy_cpu)
        pin(os.getpid(), options.cpus[1])
    with tempfile.TemporaryDirectory(prefix="bench-addon-") as scratch:
        work = Path(scratch)
        port_file = work / "port"
        server_process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port_file)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            if options.cpus is not None:
                pin(server_process.pid, options.cpus[1])
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or server_process.poll() is not None:
                    raise RuntimeError("the benchmark server did not start")
                time.sleep(0.05)
            server = int(port_file.read_text())
            confdir = work / "conf"
            print(
                f"{options.requests} HTTP requests and {options.messages} WebSocket messages per "
                f"configuration ({options.connections} connections each, {options.rounds} "
                "alternating rounds), through mitmdump on loopback",
                flush=True,
            )
            if options.cpus is not None:
                proxy_cpu, others = options.cpus
                print(
                    f"mitmdump pinned to CPU {min(proxy_cpu)}, clients, server and helpers to "
                    f"CPU {','.join(map(str, sorted(others)))}",
                    flush=True,
                )
            session = work / "session"
            configurations = {
                "mitmdump": [],
                f"mitmdump -s {options.addon.name}": [
                    "-s",
                    str(options.addon),
                    "--set",
                    f"mutecheck_dir={session}",
                    *options.extra,
                ],
            }
            totals = {label: Totals() for label in configurations}
            requests = -(-options.requests // options.rounds)
            messages = -(-options.messages // options.rounds)
            for _ in range(options.rounds):
                for label, arguments in configurations.items():
                    measure(totals[label], arguments, server, requests, messages, options, confdir)
            for label, total in totals.items():
                report(label, total)
            if (session / "events.jsonl").exists():
                lines = sum(1 for _ in (session / "events.jsonl").open())
                flows = session / "flows.mitm"
                saved = (
                    f", flows.mitm {flows.stat().st_size / 1e6:.1f} MB" if flows.exists() else ""
                )
                print(f"session folder: events.jsonl {lines} lines{saved}")
            plain, addon = totals.values()
            http_ratio = (addon.requests / addon.http_wall) / (plain.requests / plain.http_wall)
            ws_ratio = (addon.messages / addon.ws_wall) / (plain.messages / plain.ws_wall)
            pairs = list(zip(plain.rounds, addon.rounds, strict=True))
            http_cpu = statistics.median(a[1] / b[1] for a, b in pairs if b[1])
            ws_cpu = statistics.median(a[3] / b[3] for a, b in pairs if b[3])
            print(
                f"throughput ratio with/without the addon: HTTP {http_ratio:.2f}, "
                f"WebSocket {ws_ratio:.2f} (target >= 0.9)"
            )
            print(
                f"mitmdump CPU per operation, without/with (median of the rounds): "
                f"HTTP {http_cpu:.2f}, WebSocket {ws_cpu:.2f} (less sensitive to other load)"
            )
            http_rounds = " ".join(f"{a[0] / b[0]:.2f}" for a, b in pairs)
            ws_rounds = " ".join(f"{a[2] / b[2]:.2f}" for a, b in pairs)
            print(f"throughput ratio per round: HTTP {http_rounds}; WebSocket {ws_rounds}")
        finally:
            server_process.terminate()
            server_process.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
