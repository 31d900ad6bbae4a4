"""The lab's answering peer: serves the call page, answers its offer with aiortc, exports secrets.

Run as ``python -m decoders.lab.peer --host 10.77.0.2 --port 8080 --out <session dir>`` (the
lab starts it inside the peer's network namespace). It speaks a tiny HTTP/1.1 (one request per
connection) with the page, and RFC 6455 WebSocket on one path:

- ``GET /``            the call page (``page.html``)
- ``POST /offer``      ``{"type": "offer", "sdp": ...}`` -> the answer, same shape
- ``POST /log``        a progress or error note from the page
- ``POST /telemetry``  a level-telemetry message (the telemetry variants); logged
- ``GET /ws``          WebSocket: every text or binary message is logged as telemetry
- ``POST /timeline``   the page's own mute/unmute times (epoch ms)
- ``POST /done``       the scenario is over: close the call, write the secrets, exit

It writes ``offer.sdp`` and ``answer.sdp`` (as exchanged), ``keys.json`` (the SRTP master keys,
from the DTLS exporter), ``keylog.txt`` (the DTLS key log, NSS format) and, when telemetry
arrived, ``peer-telemetry.jsonl`` into ``--out``, and reports progress to the orchestrator as one
JSON object per stdout line (``{"event": ...}``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import re
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate, RTCDtlsTransport
from aiortc.rtp import is_rtcp

from decoders.errors import MalformedPacket
from decoders.session.sdp import parse_sdp

MAX_BODY = 1 << 20
MAX_HEADERS = 100
TELEMETRY_LOG = "peer-telemetry.jsonl"


def emit(event: str, **fields: Any) -> None:
    """Report one progress event to the orchestrator (a JSON line on stdout)."""
    print(json.dumps({"event": event, **fields}), flush=True)


@dataclass
class SrtpKeys:
    """SRTP master keys and the SSRCs seen in each direction, filled in while the call runs."""

    profile: str = ""
    dtls_role_peer: str = ""
    browser_key: bytes = b""
    browser_salt: bytes = b""
    peer_key: bytes = b""
    peer_salt: bytes = b""
    browser_ssrcs: set[int] = field(default_factory=set)
    peer_ssrcs: set[int] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        """The ``keys.json`` document; "browser" is the stream the browser sends."""

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")

        return {
            "version": 1,
            "profile": self.profile,
            "dtls_role_browser": "client" if self.dtls_role_peer == "server" else "server",
            "browser": {
                "master_key": b64(self.browser_key),
                "master_salt": b64(self.browser_salt),
                "ssrcs": sorted(self.browser_ssrcs),
            },
            "peer": {
                "master_key": b64(self.peer_key),
                "master_salt": b64(self.peer_salt),
                "ssrcs": sorted(self.peer_ssrcs),
            },
        }


def _sender_ssrc(packet: bytes) -> int | None:
    """SSRC of an RTP packet (RFC 3550 §5.1, octets 8-11) or RTCP sender (§6.4, octets 4-7)."""
    offset = 4 if is_rtcp(packet) else 8
    if len(packet) < offset + 4:
        return None
    return int.from_bytes(packet[offset : offset + 4], "big")


@contextlib.contextmanager
def exporting_srtp_keys(keys: SrtpKeys) -> Iterator[None]:
    """Wrap aiortc's DTLS-SRTP setup to copy the keys out; record SSRCs in both directions.

    The keying material is RFC 5764 §4.2's: EXTRACTOR-dtls_srtp, laid out as client key,
    server key, client salt, server salt. The DTLS client's half protects what the client sends.
    """
    original_setup = RTCDtlsTransport._setup_srtp
    original_send = RTCDtlsTransport._send_rtp
    original_rtp = RTCDtlsTransport._handle_rtp_data
    original_rtcp = RTCDtlsTransport._handle_rtcp_data

    def setup_srtp(self: RTCDtlsTransport) -> None:
        original_setup(self)
        ssl = self._ssl
        if ssl is None or self._rx_srtp is None:
            return  # aiortc found no common SRTP profile: nothing to export
        selected = ssl.get_selected_srtp_profile()
        profile = next(p for p in SRTP_PROFILES if p.openssl_profile == selected)
        material = ssl.export_keying_material(
            b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length)
        )
        client = profile.get_key_and_salt(material, 0)
        server = profile.get_key_and_salt(material, 1)
        peer_half, browser_half = (server, client) if self._role == "server" else (client, server)
        keys.profile = profile.openssl_profile.decode("ascii")
        keys.dtls_role_peer = self._role
        keys.browser_key = browser_half[: profile.key_length]
        keys.browser_salt = browser_half[profile.key_length :]
        keys.peer_key = peer_half[: profile.key_length]
        keys.peer_salt = peer_half[profile.key_length :]

    async def send_rtp(self: RTCDtlsTransport, data: bytes) -> None:
        ssrc = _sender_ssrc(data)
        if ssrc is not None:
            keys.peer_ssrcs.add(ssrc)
        await original_send(self, data)

    async def handle_rtp(self: RTCDtlsTransport, data: bytes, arrival_time_ms: int) -> None:
        ssrc = _sender_ssrc(data)
        if ssrc is not None:
            keys.browser_ssrcs.add(ssrc)
        await original_rtp(self, data, arrival_time_ms)

    async def handle_rtcp(self: RTCDtlsTransport, data: bytes) -> None:
        ssrc = _sender_ssrc(data)
        if ssrc is not None:
            keys.browser_ssrcs.add(ssrc)
        await original_rtcp(self, data)

    patches: dict[str, Callable[..., Any]] = {
        "_setup_srtp": setup_srtp,
        "_send_rtp": send_rtp,
        "_handle_rtp_data": handle_rtp,
        "_handle_rtcp_data": handle_rtcp,
    }
    originals = {
        "_setup_srtp": original_setup,
        "_send_rtp": original_send,
        "_handle_rtp_data": original_rtp,
        "_handle_rtcp_data": original_rtcp,
    }
    try:
        for name, replacement in patches.items():
            setattr(RTCDtlsTransport, name, replacement)
        yield
    finally:
        for name, original in originals.items():
            setattr(RTCDtlsTransport, name, original)


@dataclass
class HttpRequest:
    """One parsed HTTP/1.1 request."""

    method: str
    path: str
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> HttpRequest:
    """Read a request line, headers and a Content-Length body (no chunked bodies)."""
    request_line = (await reader.readline()).decode("latin-1").strip()
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise ValueError(f"bad request line {request_line!r}")
    method, target, _ = parts
    length = 0
    while True:
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if not 0 <= length <= MAX_BODY:
        raise ValueError(f"bad content-length {length}")
    body = await reader.readexactly(length) if length else b""
    return HttpRequest(method=method, path=target.split("?", 1)[0], body=body)


def http_response(status: int, content_type: str, body: bytes) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
    head = (
        f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class Peer:
    """One call: the aiortc connection, the files it writes and the end-of-call signal."""

    def __init__(self, out_dir: Path, page: bytes) -> None:
        self.out_dir = out_dir
        self.page = page
        self.keys = SrtpKeys()
        self.pc: RTCPeerConnection | None = None
        self.done = asyncio.Event()
        self.frames_received = 0
        self.consumers: list[asyncio.Task[None]] = []

    async def handle(self, request: HttpRequest) -> tuple[int, str, bytes]:
        """Route one request; returns status, content type and body."""
        if request.method == "GET" and request.path in ("/", "/index.html"):
            emit("http", path=request.path)
            return 200, "text/html; charset=utf-8", self.page
        if request.method != "POST":
            return 404, "text/plain", b"not found"
        routes: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "/offer": self.on_offer,
            "/log": self.on_log,
            "/timeline": self.on_timeline,
            "/done": self.on_done,
        }
        route = routes.get(request.path)
        if route is None:
            return 404, "text/plain", b"not found"
        result = await route(json.loads(request.body))
        return 200, "application/json", json.dumps(result).encode()

    async def on_offer(self, offer: dict[str, Any]) -> dict[str, str]:
        """Answer the page's offer; no ICE servers, so only host candidates are gathered."""
        if self.pc is not None:
            raise ValueError("second offer")
        sdp = str(offer["sdp"])
        (self.out_dir / "offer.sdp").write_text(sdp, newline="")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            emit("track", kind=track.kind)
            self.consumers.append(asyncio.ensure_future(self.consume(track)))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            emit("connection", state=pc.connectionState)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription
        (self.out_dir / "answer.sdp").write_text(answer.sdp, newline="")
        emit("answered")
        return {"type": answer.type, "sdp": answer.sdp}

    async def consume(self, track: MediaStreamTrack) -> None:
        """Pull decoded frames so the receiver's queue does not grow; count them."""
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames_received += 1

    async def on_log(self, note: dict[str, Any]) -> dict[str, bool]:
        emit("page", data=note)
        return {"ok": True}

    async def on_timeline(self, timeline: dict[str, Any]) -> dict[str, bool]:
        emit("timeline", data=timeline)
        return {"ok": True}

    async def on_done(self, note: dict[str, Any]) -> dict[str, bool]:
        emit("page-done", data=note)
        self.done.set()
        return {"ok": True}

    async def finish(self) -> None:
        """Close the call and write keys.json (only once the keys exist)."""
        if self.pc is not None:
            await self.pc.close()
        for task in self.consumers:
            task.cancel()
        if self.keys.profile:
            text = json.dumps(self.keys.to_json(), indent=2) + "\n"
            (self.out_dir / "keys.json").write_text(text)
        emit("finished", frames_received=self.frames_received, keys=bool(self.keys.profile))


async def serve(host: str, port: int, out_dir: Path, page: bytes) -> None:
    """Serve the page and the call until the page reports done."""
    peer = Peer(out_dir, page)

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_request(reader)
            try:
                status, content_type, body = await peer.handle(request)
            except (ValueError, KeyError) as exc:
                emit("error", path=request.path, message=str(exc))
                status, content_type, body = 400, "text/plain", str(exc).encode()
            writer.write(http_response(status, content_type, body))
            await writer.drain()
        except (ValueError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    with exporting_srtp_keys(peer.keys):
        server = await asyncio.start_server(on_connection, host, port)
        emit("listening", host=host, port=port)
        async with server:
            await peer.done.wait()
            await asyncio.sleep(0.2)  # let the last RTCP and the page's close go by
            await peer.finish()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    page = resources.files("decoders.lab").joinpath("page.html").read_bytes()
    asyncio.run(serve(args.host, args.port, args.out, page))
    return 0


if __name__ == "__main__":
    sys.exit(main())
