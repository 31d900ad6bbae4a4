"""The lab peer's pure helpers, and its HTTP/WebSocket server against independent clients.

WebSocket frames are checked against wsproto (the RFC 6455 implementation mitmproxy uses):
wsproto's client frames must parse, our server frames must parse in wsproto, and a wsproto
client must complete the handshake and have its messages logged over a real socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import FrameProtocol, Opcode

from decoders.errors import MalformedPacket
from decoders.lab.peer import (
    MAX_BODY,
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    TELEMETRY_LOG,
    BrowserAnswerPeer,
    HttpRequest,
    MessageAssembler,
    Peer,
    SrtpKeys,
    WebSocketFrame,
    _sender_ssrc,
    answer_with_opus_dtx,
    apply_mask,
    connection_handler,
    encode_websocket_frame,
    http_response,
    is_websocket_upgrade,
    main,
    offers_opus_dtx,
    parse_websocket_frame,
    read_request,
    telemetry_record,
    tls_context,
    websocket_accept,
    websocket_handshake,
)
from decoders.lab.turn import write_certificate
from decoders.session.sdp import parse_sdp

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
SESSION = CAPTURES / "chromium-track-disabled"


def client_frames(payload: bytes, opcode: Opcode = Opcode.TEXT, *, fin: bool = True) -> bytes:
    """What a real client (wsproto) sends: a masked frame."""
    protocol = FrameProtocol(client=True, extensions=[])
    if opcode is Opcode.PING:
        return bytes(protocol.ping(payload))
    if opcode is Opcode.CLOSE:
        return bytes(protocol.close(1000, payload.decode()))
    data: bytes | str = payload.decode() if opcode is Opcode.TEXT else payload
    return bytes(protocol.send_data(data, fin=fin))


# -- RFC 6455 ----------------------------------------------------------------------------------
def test_websocket_accept_rfc_example() -> None:
    # RFC 6455 §1.3's worked example
    assert websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_parse_wsproto_client_frames(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    data = client_frames(payload, Opcode.BINARY)
    parsed = parse_websocket_frame(data)
    assert parsed is not None
    frame, used = parsed
    assert used == len(data)
    assert frame == WebSocketFrame(fin=True, opcode=OPCODE_BINARY, masked=True, payload=payload)


def test_parse_leaves_the_next_frame() -> None:
    data = client_frames(b'{"a": 1}') + client_frames(b"second")
    parsed = parse_websocket_frame(data)
    assert parsed is not None
    frame, used = parsed
    assert frame.payload == b'{"a": 1}' and frame.opcode == OPCODE_TEXT
    rest = parse_websocket_frame(data[used:])
    assert rest is not None and rest[0].payload == b"second" and rest[1] == len(data) - used


def test_control_frames_from_wsproto() -> None:
    ping = parse_websocket_frame(client_frames(b"hi", Opcode.PING))
    assert ping is not None and ping[0].opcode == OPCODE_PING and ping[0].payload == b"hi"
    close = parse_websocket_frame(client_frames(b"bye", Opcode.CLOSE))
    assert close is not None and close[0].opcode == OPCODE_CLOSE
    assert close[0].payload == struct.pack("!H", 1000) + b"bye"


@pytest.mark.parametrize("size", [0, 5, 125, 126, 1000, 65536])
def test_server_frames_parse_in_wsproto(size: int) -> None:
    payload = os.urandom(size)
    protocol = FrameProtocol(client=True, extensions=[])
    protocol.receive_bytes(encode_websocket_frame(OPCODE_BINARY, payload))
    (frame,) = protocol.received_frames()
    assert frame.opcode is Opcode.BINARY and frame.message_finished
    assert isinstance(frame.payload, bytes | bytearray) and bytes(frame.payload) == payload


@pytest.mark.parametrize("size", [0, 3, 126, 70000])
def test_encode_masked_round_trip(size: int) -> None:
    payload = os.urandom(size)
    data = encode_websocket_frame(OPCODE_TEXT, payload, fin=False, mask=b"\x01\x02\x03\x04")
    parsed = parse_websocket_frame(data)
    assert parsed == (WebSocketFrame(False, OPCODE_TEXT, True, payload), len(data))
    with pytest.raises(ValueError, match="4 bytes"):
        encode_websocket_frame(OPCODE_TEXT, b"x", mask=b"\x01")


def test_apply_mask_is_its_own_inverse() -> None:
    mask = b"\xa1\xb2\xc3\xd4"
    assert apply_mask(b"", mask) == b""
    assert apply_mask(b"\x00" * 6, mask) == mask + mask[:2]
    assert apply_mask(apply_mask(b"telemetry", mask), mask) == b"telemetry"


def test_cut_at_every_length() -> None:
    data = client_frames(b"x" * 300) + client_frames(b"", Opcode.PING)
    first = parse_websocket_frame(data)
    assert first is not None
    for cut in range(len(data) + 1):
        parsed = parse_websocket_frame(data[:cut])
        if cut < first[1]:
            assert parsed is None, cut
        else:
            assert parsed == first


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"\xc1\x80" + b"\x00" * 4, "RSV"),
        (b"\x83\x80" + b"\x00" * 4, "opcode"),
        (b"\x09\x80" + b"\x00" * 4, "control frame"),
        (b"\x89\xfe\x00\x7e" + b"\x00" * 4, "control frame"),
        (b"\x82\xff" + struct.pack("!Q", 1 << 63), "most significant bit"),
        (b"\x82\xff" + struct.pack("!Q", MAX_BODY + 1), "exceeds"),
    ],
)
def test_malformed_frames(data: bytes, field: str) -> None:
    with pytest.raises(MalformedPacket, match=field):
        parse_websocket_frame(data)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_malformed(data: bytes) -> None:
    try:
        parsed = parse_websocket_frame(data)
    except MalformedPacket:
        return
    if parsed is not None:
        frame, used = parsed
        assert 2 <= used <= len(data)
        assert frame.opcode in (0, 1, 2, 8, 9, 10)


def test_message_assembler_joins_fragments() -> None:
    assembler = MessageAssembler()
    assert assembler.add(WebSocketFrame(False, OPCODE_TEXT, True, b'{"audio')) is None
    assert assembler.add(WebSocketFrame(False, OPCODE_CONTINUATION, True, b'Level": ')) is None
    message = assembler.add(WebSocketFrame(True, OPCODE_CONTINUATION, True, b"0.1}"))
    assert message == (OPCODE_TEXT, b'{"audioLevel": 0.1}')
    assert assembler.add(WebSocketFrame(True, OPCODE_BINARY, True, b"\x00")) == (
        OPCODE_BINARY,
        b"\x00",
    )


def test_message_assembler_rejects_bad_sequences() -> None:
    with pytest.raises(MalformedPacket, match="continuation frame without a message"):
        MessageAssembler().add(WebSocketFrame(True, OPCODE_CONTINUATION, True, b""))
    assembler = MessageAssembler()
    assembler.add(WebSocketFrame(False, OPCODE_TEXT, True, b"a"))
    with pytest.raises(MalformedPacket, match="inside a fragmented message"):
        assembler.add(WebSocketFrame(True, OPCODE_TEXT, True, b"b"))
    with pytest.raises(ValueError, match="not a data frame"):
        MessageAssembler().add(WebSocketFrame(True, OPCODE_PONG, True, b""))


def upgrade_request(key: str = "dGhlIHNhbXBsZSBub25jZQ==") -> HttpRequest:
    headers = {
        "host": "10.77.0.2:8080",
        "upgrade": "websocket",
        "connection": "keep-alive, Upgrade",
        "sec-websocket-key": key,
        "sec-websocket-version": "13",
    }
    return HttpRequest(method="GET", path="/ws", headers=headers, body=b"")


def test_handshake() -> None:
    request = upgrade_request()
    assert is_websocket_upgrade(request)
    response = websocket_handshake(request)
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    assert response.endswith(b"\r\n\r\n")
    plain = HttpRequest(method="GET", path="/ws", headers={"host": "x"}, body=b"")
    assert not is_websocket_upgrade(plain)
    old = upgrade_request()
    old.headers["sec-websocket-version"] = "8"
    with pytest.raises(ValueError, match="Version"):
        websocket_handshake(old)


# -- HTTP --------------------------------------------------------------------------------------
def read(data: bytes) -> HttpRequest:
    async def run() -> HttpRequest:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_request(reader)

    return asyncio.run(run())


def test_read_request() -> None:
    request = read(
        b"POST /telemetry?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
        b"Content-Type: application/json\r\n\r\n{}"
    )
    assert request == HttpRequest(
        method="POST",
        path="/telemetry",
        headers={"host": "a", "content-length": "2", "content-type": "application/json"},
        body=b"{}",
    )


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: " + str(MAX_BODY + 1).encode() + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n",
    ],
)
def test_read_request_rejects(data: bytes) -> None:
    with pytest.raises(ValueError):
        read(data)


def test_http_response() -> None:
    assert http_response(404, "text/plain", b"no") == (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
        b"Cache-Control: no-store\r\nConnection: close\r\n\r\nno"
    )


# -- SDP: Opus DTX on the real Chromium offer and aiortc answer ---------------------------------
def test_opus_dtx_in_a_real_answer() -> None:
    offer = (SESSION / "offer.sdp").read_bytes().decode()
    answer = (SESSION / "answer.sdp").read_bytes().decode()
    assert not offers_opus_dtx(offer)
    dtx_offer = offer.replace("a=fmtp:111 minptime=10;useinbandfec=1", "a=fmtp:111 x=1;usedtx=1")
    assert dtx_offer != offer and offers_opus_dtx(dtx_offer)
    munged = answer_with_opus_dtx(answer)
    (opus,) = [c for c in parse_sdp(munged).audio[0].codecs if c.name == "opus"]
    assert opus.parameters == {"usedtx": "1"}
    assert munged.count("\r\n") == answer.count("\r\n") + 1
    assert answer_with_opus_dtx(munged) == munged  # idempotent
    with_fmtp = answer.replace(
        "a=rtpmap:111 opus/48000/2\r\n", "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 stereo=1\r\n"
    )
    (opus,) = [
        c for c in parse_sdp(answer_with_opus_dtx(with_fmtp)).audio[0].codecs if c.name == "opus"
    ]
    assert opus.fmtp == "stereo=1;usedtx=1"
    with pytest.raises(ValueError, match="no Opus"):
        answer_with_opus_dtx("v=0\r\nm=audio 9 RTP/AVP 0\r\n")
    assert not offers_opus_dtx("not sdp")


# -- secrets -----------------------------------------------------------------------------------
def test_srtp_keys_document() -> None:
    keys = SrtpKeys(
        profile="SRTP_AES128_CM_SHA1_80",
        dtls_role_peer="client",
        browser_key=b"\x01" * 16,
        browser_salt=b"\x02" * 14,
        peer_key=b"\x03" * 16,
        peer_salt=b"\x04" * 14,
        browser_ssrcs={7, 3},
        peer_ssrcs={9},
        keylog=[b"CLIENT_RANDOM aa bb"],
    )
    document = keys.to_json()
    assert document["dtls_role_browser"] == "server"
    assert document["browser"] == {
        "master_key": base64.b64encode(b"\x01" * 16).decode(),
        "master_salt": base64.b64encode(b"\x02" * 14).decode(),
        "ssrcs": [3, 7],
    }
    assert document["peer"]["ssrcs"] == [9]
    assert keys.keylog_text() == "CLIENT_RANDOM aa bb\n"


def test_sender_ssrc() -> None:
    rtp = bytes([0x90, 111, 0, 1]) + b"\x00" * 4 + struct.pack("!I", 0xDEADBEEF)
    rtcp = bytes([0x80, 201, 0, 1]) + struct.pack("!I", 42)
    assert _sender_ssrc(rtp) == 0xDEADBEEF
    assert _sender_ssrc(rtcp) == 42
    assert _sender_ssrc(rtp[:10]) is None


def test_telemetry_record() -> None:
    assert telemetry_record("http", "/telemetry", 12.3456789, b'{"audioLevel": 0.2}') == {
        "t": 12.345679,
        "transport": "http",
        "path": "/telemetry",
        "message": {"audioLevel": 0.2},
    }
    assert telemetry_record("websocket", "/ws", 1.0, b"\xff")["raw"] == "/w=="


# -- the server over real sockets ---------------------------------------------------------------
async def http_exchange(port: int, request: bytes, tls: ssl.SSLContext | None = None) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    writer.write(request)
    await writer.drain()
    response = await reader.read()
    writer.close()
    return response


async def websocket_client(
    port: int, messages: list[str], tls: ssl.SSLContext | None = None
) -> list[object]:
    """A wsproto client: handshake, messages (one fragmented), ping, close; returns its events."""
    connection = WSConnection(ConnectionType.CLIENT)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    events: list[object] = []

    async def receive_until(kind: type) -> None:
        while not any(isinstance(e, kind) for e in events):
            data = await asyncio.wait_for(reader.read(4096), 5)
            connection.receive_data(data or None)
            events.extend(connection.events())
            if not data:
                return

    writer.write(connection.send(Request(host="127.0.0.1", target="/ws")))
    await receive_until(AcceptConnection)
    for text in messages:
        writer.write(connection.send(TextMessage(data=text[:5], message_finished=False)))
        writer.write(connection.send(TextMessage(data=text[5:], message_finished=True)))
    writer.write(connection.send(Ping(payload=b"p")))
    await writer.drain()
    await receive_until(Pong)
    writer.write(connection.send(CloseConnection(code=1000)))
    await writer.drain()
    await receive_until(CloseConnection)
    writer.close()
    return events


def test_server_logs_http_and_websocket_telemetry(tmp_path: Path) -> None:
    async def run() -> tuple[list[bytes], list[object], Peer]:
        peer = Peer(tmp_path, b"<html>page</html>")
        server = await asyncio.start_server(connection_handler(peer), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            body = b'{"audioLevel": 0.25, "muted": true}'
            responses = [
                await http_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                await http_exchange(
                    port,
                    b"POST /telemetry HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
                ),
                await http_exchange(port, b"GET /nothing HTTP/1.1\r\n\r\n"),
                await http_exchange(port, b"POST /log HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"),
                await http_exchange(port, b"POST /log HTTP/1.1\r\nContent-Length: 1\r\n\r\n{"),
            ]
            messages = [json.dumps({"audioLevel": 0.5, "muted": True, "seq": n}) for n in (1, 2)]
            events = await websocket_client(port, messages)
            await peer.finish()
        return responses, events, peer

    responses, events, peer = asyncio.run(run())
    page, telemetry, missing, log, broken = responses
    assert page.startswith(b"HTTP/1.1 200 OK\r\n") and page.endswith(b"<html>page</html>")
    assert telemetry.startswith(b"HTTP/1.1 200 OK\r\n")
    assert missing.startswith(b"HTTP/1.1 404 ")
    assert log.endswith(b'{"ok": true}')
    assert broken.startswith(b"HTTP/1.1 400 ")
    assert any(isinstance(e, Pong) for e in events)
    assert not any(isinstance(e, Message) for e in events)
    lines = [json.loads(line) for line in (tmp_path / TELEMETRY_LOG).read_text().splitlines()]
    assert [(r["transport"], r["path"], r["message"]) for r in lines] == [
        ("http", "/telemetry", {"audioLevel": 0.25, "muted": True}),
        ("websocket", "/ws", {"audioLevel": 0.5, "muted": True, "seq": 1}),
        ("websocket", "/ws", {"audioLevel": 0.5, "muted": True, "seq": 2}),
    ]
    assert peer.telemetry_received == 3


def test_server_over_tls_serves_https_and_wss(tmp_path: Path) -> None:
    """With a certificate (the lab's own builder, for 127.0.0.1) the same server speaks HTTPS
    and WSS; a client that verifies against that certificate gets the page and its WebSocket,
    one that trusts only the system's CAs fails the handshake."""
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_certificate("127.0.0.1", certificate, key)
    trusting = ssl.create_default_context(cafile=certificate)
    stranger = ssl.create_default_context()

    async def run() -> tuple[bytes, list[object], str]:
        peer = Peer(tmp_path, b"<html>page</html>")
        server = await asyncio.start_server(
            connection_handler(peer), "127.0.0.1", 0, ssl=tls_context(certificate, key)
        )
        port = server.sockets[0].getsockname()[1]
        async with server:
            page = await http_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", trusting)
            events = await websocket_client(port, ['{"audioLevel": 0.5}'], trusting)
            try:
                await http_exchange(port, b"GET / HTTP/1.1\r\n\r\n", stranger)
                refused = ""
            except ssl.SSLCertVerificationError as error:
                refused = error.verify_message
            await peer.finish()
        return page, events, refused

    page, events, refused = asyncio.run(run())
    assert page.startswith(b"HTTP/1.1 200 OK\r\n") and page.endswith(b"<html>page</html>")
    assert any(isinstance(e, Pong) for e in events)
    lines = [json.loads(line) for line in (tmp_path / TELEMETRY_LOG).read_text().splitlines()]
    assert [(r["transport"], r["message"]) for r in lines] == [("websocket", {"audioLevel": 0.5})]
    assert refused == "self-signed certificate"


def test_tls_options_go_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--host", "127.0.0.1", "--port", "0", "--out", str(tmp_path), "--tls-cert", "c"])
    assert exit_info.value.code == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err


def test_page_opens_its_websocket_with_the_page_scheme() -> None:
    """wss: on an https page, ws: on http (the recorded corpus's pages are http)."""
    from importlib import resources

    page = resources.files("decoders.lab").joinpath("page.html").read_text()
    assert '`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`' in page
    assert "ws://${location.host}" not in page


def test_server_closes_unmasked_websocket(tmp_path: Path) -> None:
    async def run() -> bytes:
        peer = Peer(tmp_path, b"")
        server = await asyncio.start_server(connection_handler(peer), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = "\r\n".join(
                [
                    "GET /ws HTTP/1.1",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                    "Sec-WebSocket-Version: 13",
                    "",
                    "",
                ]
            )
            writer.write(head.encode() + encode_websocket_frame(OPCODE_TEXT, b"unmasked"))
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
        return data

    data = asyncio.run(run())
    head, _, frames = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert frames == encode_websocket_frame(OPCODE_CLOSE, struct.pack("!H", 1002))
    assert not (tmp_path / TELEMETRY_LOG).exists()


@pytest.mark.parametrize("talks", [False, True])
def test_answer_to_a_real_video_offer(tmp_path: Path, talks: bool) -> None:
    """Chromium's recorded audio+video offer: aiortc answers VP8 with RTX for the video; with
    ``talk`` the peer's speech makes the audio sendrecv (the peer-talks sessions)."""
    offer = (CAPTURES / "chromium-ui-only-video" / "offer.sdp").read_bytes().decode()
    talk = CAPTURES / "peer-reference.wav" if talks else None

    async def run() -> dict[str, str]:
        peer = Peer(tmp_path, b"", talk)
        answer = await peer.on_offer({"type": "offer", "sdp": offer})
        await peer.finish()
        return answer

    answer = asyncio.run(run())
    assert answer["type"] == "answer"
    assert (tmp_path / "answer.sdp").read_bytes().decode() == answer["sdp"]
    audio, video = answer["sdp"].split("m=video")
    assert ("a=sendrecv" if talks else "a=recvonly") in audio
    assert "a=recvonly" in video and "VP8/90000" in video
    assert "a=fmtp:97 apt=96" in video and "a=ssrc-group:FID " in video


def test_answers_as_dtls_server_when_asked(tmp_path: Path) -> None:
    """Firefox sessions: the peer answers a=setup:passive, so the browser is the DTLS client
    (Firefox's NSS logs its DTLS 1.2 secret only as the client)."""
    offer = (CAPTURES / "firefox-ui-only" / "offer.sdp").read_bytes().decode()
    assert "a=setup:actpass" in offer

    async def run(dtls_server: bool) -> str:
        peer = Peer(tmp_path / str(dtls_server), b"", dtls_server=dtls_server)
        (tmp_path / str(dtls_server)).mkdir()
        answer = await peer.on_offer({"type": "offer", "sdp": offer})
        await peer.finish()
        return answer["sdp"]

    assert "a=setup:passive" in asyncio.run(run(True))
    assert "a=setup:active" in asyncio.run(run(False))


def test_a_browser_answers_through_the_server(tmp_path: Path) -> None:
    """--browser-answers: the caller's offer goes to the answering page, its answer back."""
    offer = (CAPTURES / "firefox-ui-only-to-firefox" / "offer.sdp").read_bytes().decode()
    answer = (CAPTURES / "firefox-ui-only-to-firefox" / "answer.sdp").read_bytes().decode()

    def request(method: str, path: str, body: object = None) -> HttpRequest:
        data = json.dumps(body).encode() if body is not None else b""
        return HttpRequest(method, path, {}, data)

    async def run() -> tuple[dict[str, str], list[tuple[int, str, bytes]]]:
        peer = BrowserAnswerPeer(tmp_path, b"caller", b"answerer page")
        served = [await peer.handle(request("GET", "/answerer"))]
        call = asyncio.ensure_future(peer.on_offer({"type": "offer", "sdp": offer}))
        served.append(await peer.handle(request("GET", "/answerer/offer")))
        served.append(await peer.handle(request("POST", "/answerer/answer", {"sdp": answer})))
        served.append(
            await peer.handle(request("POST", "/answerer/stats", {"packets_received": 42}))
        )
        got = await call
        assert peer.frames_received == 42
        await peer.finish()
        return got, served

    got, served = asyncio.run(run())
    assert got == {"type": "answer", "sdp": answer}
    assert served[0] == (200, "text/html; charset=utf-8", b"answerer page")
    assert json.loads(served[1][2]) == {"type": "offer", "sdp": offer}
    assert (tmp_path / "offer.sdp").read_bytes().decode() == offer
    assert (tmp_path / "answer.sdp").read_bytes().decode() == answer
    assert not (tmp_path / "keys.json").exists()
