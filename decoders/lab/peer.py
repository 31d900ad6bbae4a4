"""The lab's answering peer: serves the call page, answers its offer with aiortc, exports secrets.

Run as ``python -m decoders.lab.peer --host 10.77.0.2 --port 8080 --out <session dir>
[--talk <wav>] [--tls-cert PEM --tls-key PEM]`` (the lab starts it inside the peer's network
namespace). With ``--talk`` the peer sends that file (looped) as its own audio for the whole
call; otherwise it only receives. With ``--tls-cert`` it serves HTTPS (and WSS) instead of
HTTP; the page opens its WebSocket with the scheme of its own page. It speaks a tiny HTTP/1.1
(one request per connection) with the page, and RFC 6455 WebSocket on one path:

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
import ssl
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any, Final

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate, RTCDtlsTransport
from aiortc.rtp import is_rtcp

from decoders import outputs
from decoders.errors import MalformedPacket
from decoders.session.sdp import parse_sdp

MAX_BODY = 1 << 20
MAX_HEADERS = 100
TELEMETRY_LOG = "peer-telemetry.jsonl"


def emit(event: str, **fields: Any) -> None:
    """Report one progress event to the orchestrator (a JSON line on stdout)."""
    print(json.dumps({"event": event, **fields}), flush=True)


# -- secrets -----------------------------------------------------------------------------------
@dataclass
class SrtpKeys:
    """SRTP master keys, the DTLS key log and the SSRCs seen, filled in while the call runs."""

    profile: str = ""
    dtls_role_peer: str = ""
    browser_key: bytes = b""
    browser_salt: bytes = b""
    peer_key: bytes = b""
    peer_salt: bytes = b""
    browser_ssrcs: set[int] = field(default_factory=set)
    peer_ssrcs: set[int] = field(default_factory=set)
    keylog: list[bytes] = field(default_factory=list)

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

    def keylog_text(self) -> str:
        """The DTLS key log in NSS key log format, one secret a line."""
        return "".join(line.decode("ascii", "replace") + "\n" for line in self.keylog)


def _sender_ssrc(packet: bytes) -> int | None:
    """SSRC of an RTP packet (RFC 3550 §5.1, octets 8-11) or RTCP sender (§6.4, octets 4-7)."""
    offset = 4 if is_rtcp(packet) else 8
    if len(packet) < offset + 4:
        return None
    return int.from_bytes(packet[offset : offset + 4], "big")


@contextlib.contextmanager
def exporting_srtp_keys(keys: SrtpKeys) -> Iterator[None]:
    """Wrap aiortc's DTLS-SRTP setup to copy the keys out; record SSRCs and the DTLS key log.

    The keying material is RFC 5764 §4.2's: EXTRACTOR-dtls_srtp, laid out as client key,
    server key, client salt, server salt. The DTLS client's half protects what the client sends.
    The key log comes from OpenSSL's keylog callback on aiortc's DTLS context.
    """
    original_context = RTCCertificate._create_ssl_context
    original_setup = RTCDtlsTransport._setup_srtp
    original_send = RTCDtlsTransport._send_rtp
    original_rtp = RTCDtlsTransport._handle_rtp_data
    original_rtcp = RTCDtlsTransport._handle_rtcp_data

    def create_context(self: RTCCertificate, *args: Any, **kwargs: Any) -> Any:
        context = original_context(self, *args, **kwargs)
        context.set_keylog_callback(lambda _connection, line: keys.keylog.append(bytes(line)))
        return context

    def setup_srtp(self: RTCDtlsTransport) -> None:
        original_setup(self)
        connection = self._ssl
        if connection is None or self._rx_srtp is None:
            return  # aiortc found no common SRTP profile: nothing to export
        selected = connection.get_selected_srtp_profile()
        profile = next(p for p in SRTP_PROFILES if p.openssl_profile == selected)
        material = connection.export_keying_material(
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

    patches: list[tuple[type, str, Callable[..., Any], Callable[..., Any]]] = [
        (RTCCertificate, "_create_ssl_context", create_context, original_context),
        (RTCDtlsTransport, "_setup_srtp", setup_srtp, original_setup),
        (RTCDtlsTransport, "_send_rtp", send_rtp, original_send),
        (RTCDtlsTransport, "_handle_rtp_data", handle_rtp, original_rtp),
        (RTCDtlsTransport, "_handle_rtcp_data", handle_rtcp, original_rtcp),
    ]
    try:
        for owner, name, replacement, _ in patches:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, _, original in patches:
            setattr(owner, name, original)


# -- SDP: Opus DTX -----------------------------------------------------------------------------
_OPUS_RTPMAP = re.compile(
    r"^a=rtpmap:(\d+) opus/48000[^\r\n]*(\r?\n)", re.IGNORECASE | re.MULTILINE
)


def offers_opus_dtx(offer: str) -> bool:
    """RFC 7587 §6.1: does the offer ask for Opus DTX (``usedtx=1`` in an Opus fmtp)?"""
    try:
        sdp = parse_sdp(offer)
    except MalformedPacket:
        return False
    return any(
        codec.name.lower() == "opus" and codec.parameters.get("usedtx") == "1"
        for section in sdp.audio
        for codec in section.codecs
    )


def answer_with_opus_dtx(answer: str) -> str:
    """The answer with ``usedtx=1`` on its Opus payload type (RFC 7587 §6.1), fmtp added if absent.

    aiortc ignores the parameter; it tells the browser, which sends to us, to use DTX.
    """
    rtpmap = _OPUS_RTPMAP.search(answer)
    if rtpmap is None:
        raise ValueError("answer has no Opus payload type")
    payload_type, newline = rtpmap.group(1), rtpmap.group(2)
    fmtp = re.compile(rf"^(a=fmtp:{payload_type} )([^\r\n]*)", re.MULTILINE)
    existing = fmtp.search(answer)
    if existing is None:
        line = f"a=fmtp:{payload_type} usedtx=1{newline}"
        return answer[: rtpmap.end()] + line + answer[rtpmap.end() :]
    parameters = [p.strip() for p in existing.group(2).split(";") if p.strip()]
    parameters = [p for p in parameters if p.partition("=")[0].strip() != "usedtx"]
    value = ";".join([*parameters, "usedtx=1"])
    return answer[: existing.start(2)] + value + answer[existing.end(2) :]


# -- HTTP/1.1 ----------------------------------------------------------------------------------
@dataclass
class HttpRequest:
    """One parsed HTTP/1.1 request; header names lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> HttpRequest:
    """Read a request line, headers and a Content-Length body (no chunked bodies)."""
    request_line = (await reader.readline()).decode("latin-1").strip()
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise ValueError(f"bad request line {request_line!r}")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for count in range(MAX_HEADERS + 1):
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            break
        if count == MAX_HEADERS:
            raise ValueError("too many headers")
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if not 0 <= length <= MAX_BODY:
        raise ValueError(f"bad content-length {length}")
    body = await reader.readexactly(length) if length else b""
    return HttpRequest(method=method, path=target.split("?", 1)[0], headers=headers, body=body)


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


# -- WebSocket (RFC 6455), server side ---------------------------------------------------------
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPCODE_CONTINUATION = 0x0
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
MAX_CONTROL_PAYLOAD = 125


def websocket_accept(key: str) -> str:
    """RFC 6455 §4.2.2: Sec-WebSocket-Accept = base64(SHA-1(key + the GUID))."""
    digest = hashlib.sha1((key.strip() + WEBSOCKET_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def is_websocket_upgrade(request: HttpRequest) -> bool:
    """RFC 6455 §4.2.1: a GET with ``Upgrade: websocket``, ``Connection: Upgrade`` and a key."""
    connection = {
        token.strip().lower() for token in request.headers.get("connection", "").split(",")
    }
    return (
        request.method == "GET"
        and request.headers.get("upgrade", "").lower() == "websocket"
        and "upgrade" in connection
        and bool(request.headers.get("sec-websocket-key"))
    )


def websocket_handshake(request: HttpRequest) -> bytes:
    """RFC 6455 §4.2.2: the 101 response accepting the upgrade (no extensions, no subprotocol)."""
    if request.headers.get("sec-websocket-version") != "13":
        raise ValueError("unsupported Sec-WebSocket-Version")
    accept = websocket_accept(request.headers["sec-websocket-key"])
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    ).encode("ascii")


@dataclass(frozen=True, slots=True)
class WebSocketFrame:
    """One WebSocket frame; ``payload`` is already unmasked."""

    fin: bool
    opcode: int
    masked: bool
    payload: bytes


def parse_websocket_frame(buffer: bytes) -> tuple[WebSocketFrame, int] | None:
    """Parse the frame at the start of ``buffer``: (frame, bytes used), or None if incomplete.

    RFC 6455 §5.2::

         0                   1                   2                   3
         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
        +-+-+-+-+-------+-+-------------+-------------------------------+
        |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
        |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
        |N|V|V|V|       |S|             |   (if payload len==126/127)   |
        | |1|2|3|       |K|             |                               |
        +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
        |     Extended payload length continued, if payload len == 127  |
        + - - - - - - - - - - - - - - - +-------------------------------+
        |                               |Masking-key, if MASK set to 1  |
        +-------------------------------+-------------------------------+
        | Masking-key (continued)       |          Payload Data         |
        +-------------------------------- - - - - - - - - - - - - - - - +

    Raises MalformedPacket for RSV bits (no extension was negotiated), an unknown opcode, a
    fragmented or oversized control frame (§5.5), a 64-bit length with its top bit set or a
    payload above the peer's body limit.
    """
    if len(buffer) < 2:
        return None
    first, second = buffer[0], buffer[1]
    if first & 0x70:
        raise MalformedPacket("WebSocket RSV bits set without a negotiated extension")
    opcode = first & 0x0F
    if opcode not in (
        OPCODE_CONTINUATION,
        OPCODE_TEXT,
        OPCODE_BINARY,
        OPCODE_CLOSE,
        OPCODE_PING,
        OPCODE_PONG,
    ):
        raise MalformedPacket(f"WebSocket opcode {opcode:#x} is reserved")
    fin = bool(first & 0x80)
    masked = bool(second & 0x80)
    length = second & 0x7F
    offset = 2
    if length == 126:
        if len(buffer) < offset + 2:
            return None
        (length,) = struct.unpack_from("!H", buffer, offset)
        offset += 2
    elif length == 127:
        if len(buffer) < offset + 8:
            return None
        (length,) = struct.unpack_from("!Q", buffer, offset)
        offset += 8
        if length >> 63:
            raise MalformedPacket("WebSocket payload length has its most significant bit set")
    if opcode >= OPCODE_CLOSE and (length > MAX_CONTROL_PAYLOAD or not fin):
        raise MalformedPacket(f"WebSocket control frame {opcode:#x} is fragmented or too long")
    if length > MAX_BODY:
        raise MalformedPacket(f"WebSocket payload length {length} exceeds {MAX_BODY}")
    mask = b""
    if masked:
        if len(buffer) < offset + 4:
            return None
        mask = buffer[offset : offset + 4]
        offset += 4
    if len(buffer) < offset + length:
        return None
    payload = buffer[offset : offset + length]
    if masked:
        payload = apply_mask(payload, mask)
    return WebSocketFrame(fin=fin, opcode=opcode, masked=masked, payload=bytes(payload)), (
        offset + length
    )


def apply_mask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 §5.3: XOR with the 4-byte masking key, repeated (masking and unmasking alike)."""
    if not payload:
        return b""
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(len(payload), "big")


def encode_websocket_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """RFC 6455 §5.2: one frame; servers send unmasked frames, clients pass a 4-byte ``mask``."""
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if mask is not None else 0
    if len(payload) < 126:
        head = bytes([first, mask_bit | len(payload)])
    elif len(payload) < 1 << 16:
        head = bytes([first, mask_bit | 126]) + struct.pack("!H", len(payload))
    else:
        head = bytes([first, mask_bit | 127]) + struct.pack("!Q", len(payload))
    if mask is None:
        return head + payload
    if len(mask) != 4:
        raise ValueError("a WebSocket masking key is 4 bytes")
    return head + mask + apply_mask(payload, mask)


class MessageAssembler:
    """RFC 6455 §5.4: joins a data frame and its continuation frames into one message."""

    def __init__(self) -> None:
        self._opcode: int | None = None
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, frame: WebSocketFrame) -> tuple[int, bytes] | None:
        """Add a data frame; returns (opcode, message) once the message is complete."""
        if frame.opcode == OPCODE_CONTINUATION:
            if self._opcode is None:
                raise MalformedPacket("WebSocket continuation frame without a message")
        elif frame.opcode in (OPCODE_TEXT, OPCODE_BINARY):
            if self._opcode is not None:
                raise MalformedPacket("WebSocket data frame inside a fragmented message")
            self._opcode = frame.opcode
        else:
            raise ValueError(f"not a data frame: opcode {frame.opcode:#x}")
        self._size += len(frame.payload)
        if self._size > MAX_BODY:
            raise MalformedPacket(f"WebSocket message exceeds {MAX_BODY} bytes")
        self._parts.append(frame.payload)
        if not frame.fin:
            return None
        message = (self._opcode, b"".join(self._parts))
        self._opcode, self._parts, self._size = None, [], 0
        return message


async def websocket_session(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_message: Callable[[int, bytes], Awaitable[None]],
) -> None:
    """Serve one upgraded connection: messages to ``on_message``, pings answered, close echoed."""
    buffer = b""
    assembler = MessageAssembler()
    while True:
        try:
            parsed = parse_websocket_frame(buffer)
            if parsed is not None and not parsed[0].masked:
                raise MalformedPacket("WebSocket client frame is not masked")
        except MalformedPacket:
            close = struct.pack("!H", CLOSE_PROTOCOL_ERROR)
            writer.write(encode_websocket_frame(OPCODE_CLOSE, close))
            await writer.drain()
            raise
        if parsed is None:
            chunk = await reader.read(1 << 16)
            if not chunk:
                return
            buffer += chunk
            continue
        frame, used = parsed
        buffer = buffer[used:]
        if frame.opcode == OPCODE_CLOSE:
            writer.write(encode_websocket_frame(OPCODE_CLOSE, frame.payload[:2]))
            await writer.drain()
            return
        if frame.opcode == OPCODE_PING:
            writer.write(encode_websocket_frame(OPCODE_PONG, frame.payload))
            await writer.drain()
        elif frame.opcode != OPCODE_PONG:
            message = assembler.add(frame)
            if message is not None:
                await on_message(*message)


def telemetry_record(transport: str, path: str, received: float, body: bytes) -> dict[str, Any]:
    """One line of ``peer-telemetry.jsonl``: when and how a message came, and what it said."""
    record: dict[str, Any] = {"t": round(received, 6), "transport": transport, "path": path}
    try:
        record["message"] = json.loads(body)
    except ValueError:
        record["raw"] = base64.b64encode(body).decode("ascii")
    return record


# -- the call ----------------------------------------------------------------------------------
class Peer:
    """One call: the aiortc connection, the files it writes and the end-of-call signal."""

    def __init__(
        self,
        out_dir: Path,
        page: bytes,
        talk: Path | None = None,
        keylog_name: str = "keylog.txt",
        dtls_server: bool = False,
    ) -> None:
        self.out_dir = out_dir
        self.keylog_name = keylog_name
        self.dtls_server = dtls_server
        self.page = page
        self.talk = talk
        self.talk_track: MediaStreamTrack | None = None
        self.keys = SrtpKeys()
        self.pc: RTCPeerConnection | None = None
        self.done = asyncio.Event()
        self.frames_received = 0
        self.video_frames_received = 0
        self.telemetry_received = 0
        self.dtx = False
        self.consumers: list[asyncio.Task[None]] = []
        self.sockets: list[asyncio.StreamWriter] = []
        self._telemetry_log: IO[str] | None = None

    async def handle(self, request: HttpRequest) -> tuple[int, str, bytes]:
        """Route one request; returns status, content type and body."""
        if request.method == "GET" and request.path in ("/", "/index.html"):
            emit("http", path=request.path)
            return 200, "text/html; charset=utf-8", self.page
        if request.method != "POST":
            return 404, "text/plain", b"not found"
        if request.path == "/telemetry":
            self.log_telemetry("http", request.path, request.body)
            return 200, "application/json", b'{"ok": true}'
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

    def log_telemetry(self, transport: str, path: str, body: bytes) -> None:
        """Append one received telemetry message to ``peer-telemetry.jsonl`` (flushed)."""
        if self._telemetry_log is None:
            self._telemetry_log = (self.out_dir / TELEMETRY_LOG).open("a", encoding="utf-8")
        record = telemetry_record(transport, path, time.time(), body)
        self._telemetry_log.write(json.dumps(record) + "\n")
        self._telemetry_log.flush()
        self.telemetry_received += 1

    async def on_websocket_message(self, opcode: int, message: bytes) -> None:
        self.log_telemetry("websocket", "/ws", message)

    async def on_offer(self, offer: dict[str, Any]) -> dict[str, str]:
        """Answer the page's offer; no ICE servers, so only host candidates are gathered."""
        if self.pc is not None:
            raise ValueError("second offer")
        sdp = str(offer["sdp"])
        outputs.write_text(self.out_dir / "offer.sdp", sdp)
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
        if self.talk is not None:
            # the offer's audio transceiver gets our speech: the answer says sendrecv
            from aiortc.contrib.media import MediaPlayer

            player = MediaPlayer(str(self.talk), loop=True)
            if player.audio is None:
                raise ValueError(f"{self.talk} has no audio")
            self.talk_track = player.audio
            pc.addTrack(player.audio)
        answer = await pc.createAnswer()
        if self.dtls_server:
            # answer a=setup:passive: the browser becomes the DTLS client (Firefox's NSS logs
            # its DTLS 1.2 secrets to SSLKEYLOGFILE only as the client). Through the public API:
            # aiortc takes its DTLS role from the answer it is given (a=setup, RFC 5763 s5)
            answer = RTCSessionDescription(
                sdp=answer.sdp.replace("a=setup:active", "a=setup:passive"), type=answer.type
            )
        await pc.setLocalDescription(answer)
        answer = pc.localDescription
        answer_sdp = answer.sdp
        self.dtx = offers_opus_dtx(sdp)
        if self.dtx:
            answer_sdp = answer_with_opus_dtx(answer_sdp)
        outputs.write_text(self.out_dir / "answer.sdp", answer_sdp)
        emit("answered", dtx=self.dtx, talks=self.talk is not None)
        return {"type": answer.type, "sdp": answer_sdp}

    async def consume(self, track: MediaStreamTrack) -> None:
        """Pull decoded frames so the receiver's queue does not grow; count them."""
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                if track.kind == "video":
                    self.video_frames_received += 1
                else:
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
        """Close the call and the sockets; write keys.json and keylog.txt once the keys exist."""
        if self.pc is not None:
            await self.pc.close()
        if self.talk_track is not None:
            self.talk_track.stop()  # ends the player's decoding thread
        for task in self.consumers:
            task.cancel()
        for writer in self.sockets:
            writer.close()
        if self._telemetry_log is not None:
            self._telemetry_log.close()
        if self.keys.profile:
            text = json.dumps(self.keys.to_json(), indent=2) + "\n"
            outputs.write_text(self.out_dir / "keys.json", text)
        if self.keys.keylog:
            outputs.write_text(self.out_dir / self.keylog_name, self.keys.keylog_text())
        emit(
            "finished",
            frames_received=self.frames_received,
            video_frames_received=self.video_frames_received,
            telemetry_received=self.telemetry_received,
            keys=bool(self.keys.profile),
            keylog_lines=len(self.keys.keylog),
            dtx=self.dtx,
        )


ANSWER_TIMEOUT_S: Final = 30.0
"""How long the caller's offer waits for the answering browser's answer."""


class BrowserAnswerPeer(Peer):
    """The call answered by a second browser instead of aiortc (``--browser-answers``).

    The server still serves the caller's page and its reports; the offer is handed to the
    answering browser's page (``answerer.html`` at ``/answerer``, which fetches it from
    ``/answerer/offer`` and posts its answer to ``/answerer/answer``) and the answer back to the
    caller. No SRTP keys are exported (a browser keeps them): the answering browser's own key log
    is the session's second key source. ``frames_received`` counts the audio packets the
    answering browser reported (``/answerer/stats``).
    """

    def __init__(self, out_dir: Path, page: bytes, answerer_page: bytes) -> None:
        super().__init__(out_dir, page)
        self.answerer_page = answerer_page
        self.offer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handle(self, request: HttpRequest) -> tuple[int, str, bytes]:
        if request.method == "GET" and request.path == "/answerer":
            emit("http", path=request.path)
            return 200, "text/html; charset=utf-8", self.answerer_page
        if request.method == "GET" and request.path == "/answerer/offer":
            sdp = await self.offer
            return 200, "application/json", json.dumps({"type": "offer", "sdp": sdp}).encode()
        if request.method == "POST" and request.path == "/answerer/answer":
            answer = json.loads(request.body)
            if not self.answer.done():
                self.answer.set_result(str(answer["sdp"]))
            return 200, "application/json", b'{"ok": true}'
        if request.method == "POST" and request.path == "/answerer/stats":
            stats = json.loads(request.body)
            if "error" in stats:
                emit("error", path=request.path, message=str(stats["error"]))
            self.frames_received = max(self.frames_received, int(stats.get("packets_received", 0)))
            return 200, "application/json", b'{"ok": true}'
        return await super().handle(request)

    async def on_offer(self, offer: dict[str, Any]) -> dict[str, str]:
        if self.offer.done():
            raise ValueError("second offer")
        sdp = str(offer["sdp"])
        outputs.write_text(self.out_dir / "offer.sdp", sdp)
        self.offer.set_result(sdp)
        answer_sdp = await asyncio.wait_for(self.answer, ANSWER_TIMEOUT_S)
        outputs.write_text(self.out_dir / "answer.sdp", answer_sdp)
        emit("answered", dtx=False, talks=False, answerer="browser")
        return {"type": "answer", "sdp": answer_sdp}

    async def finish(self) -> None:
        for writer in self.sockets:
            writer.close()
        if self._telemetry_log is not None:
            self._telemetry_log.close()
        emit(
            "finished",
            frames_received=self.frames_received,
            video_frames_received=0,
            telemetry_received=self.telemetry_received,
            keys=False,
            keylog_lines=0,
            dtx=False,
        )


def connection_handler(
    peer: Peer,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """The server's per-connection coroutine: one HTTP request, or a WebSocket on ``/ws``."""

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_request(reader)
            if request.path == "/ws" and is_websocket_upgrade(request):
                writer.write(websocket_handshake(request))
                await writer.drain()
                emit("websocket", path=request.path)
                peer.sockets.append(writer)
                await websocket_session(reader, writer, peer.on_websocket_message)
                return
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

    return on_connection


def tls_context(certificate: Path, key: Path) -> ssl.SSLContext:
    """A server context for ``certificate`` and ``key`` (PEM files): HTTPS and WSS."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, key)
    return context


async def serve(
    host: str,
    port: int,
    out_dir: Path,
    page: bytes,
    talk: Path | None = None,
    tls: ssl.SSLContext | None = None,
    keylog_name: str = "keylog.txt",
    dtls_server: bool = False,
    answerer_page: bytes | None = None,
) -> None:
    """Serve the page and the call (over TLS with ``tls``) until the page reports done; the
    peer's DTLS key log goes to ``out_dir/keylog_name``; with ``dtls_server`` the peer answers
    ``a=setup:passive`` (the DTLS server) instead of aiortc's default, the client. With
    ``answerer_page`` a browser answers the call instead of aiortc (:class:`BrowserAnswerPeer`)."""
    peer = (
        Peer(out_dir, page, talk, keylog_name, dtls_server)
        if answerer_page is None
        else BrowserAnswerPeer(out_dir, page, answerer_page)
    )
    with exporting_srtp_keys(peer.keys):
        server = await asyncio.start_server(connection_handler(peer), host, port, ssl=tls)
        emit("listening", host=host, port=port, scheme="https" if tls else "http")
        async with server:
            await peer.done.wait()
            await asyncio.sleep(0.2)  # let the last RTCP and the page's close go by
            await peer.finish()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--talk", type=Path, default=None, help="WAV the peer sends, looped")
    parser.add_argument("--tls-cert", type=Path, default=None, help="PEM: serve HTTPS and WSS")
    parser.add_argument("--tls-key", type=Path, default=None, help="PEM key of --tls-cert")
    parser.add_argument(
        "--keylog-name",
        default="keylog.txt",
        help="file name of the peer's DTLS key log in --out (the browser may write keylog.txt)",
    )
    parser.add_argument(
        "--browser-answers",
        action="store_true",
        help="a browser opening /answerer answers the call instead of aiortc (no keys.json)",
    )
    parser.add_argument(
        "--dtls-server",
        action="store_true",
        help="answer a=setup:passive: the peer is the DTLS server, the browser the client",
    )
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    tls = tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    page = resources.files("decoders.lab").joinpath("page.html").read_bytes()
    answerer = (
        resources.files("decoders.lab").joinpath("answerer.html").read_bytes()
        if args.browser_answers
        else None
    )
    asyncio.run(
        serve(
            args.host,
            args.port,
            args.out,
            page,
            args.talk,
            tls,
            args.keylog_name,
            args.dtls_server,
            answerer,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
