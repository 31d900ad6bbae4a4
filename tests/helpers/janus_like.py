"""Synthetic Janus-like session folders: the signaling of Janus 1.1.2's demos, as mitmproxy saw it.

Built with mitmproxy's own test helpers (``tflow``, ``tutils``) and written with its
``FlowWriter`` (``flows.mitm``), plus the addon's ``events.jsonl`` with the tester's marks. The
messages follow janus.js and the plugins' documented API: ``create``/``attach``/``message``/
``trickle``/``keepalive`` with random transaction ids, session and handle ids, ``ack`` and
``event`` replies, ``webrtcup``/``media``/``slowlink`` notifications, and each demo's own mute
request:

- AudioBridge over WebSocket: ``{"request": "configure", "muted": true}`` (the first configure,
  with the offer, says ``muted: false``); the peer's talking notifications (with the
  ``audio-level-dBov-avg`` level) and the peer muting itself at other times arrive as noise;
- EchoTest over WebSocket: ``{"audio": false}`` (the first message, with the offer, says
  ``audio: true, video: true``); a video toggle and a bitrate change at other times;
- VideoCall over REST (HTTPS POST to ``/janus/<session>/<handle>``, events in long polls on
  ``/janus/<session>?rid=...``): ``{"request": "set", "audio": false}``; a video toggle and a
  bitrate change at other times.

``track``: the mute is a track-level mute the app never tells its server about (as VideoRoom's
``muteAudio()``), so no message changes with the marks.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mitmproxy import http
from mitmproxy import io as mitmio
from mitmproxy.test import tflow, tutils
from mitmproxy.websocket import WebSocketMessage
from wsproto.frame_protocol import Opcode

from decoders.session.events import EventWriter, make_event

Demo = Literal["audiobridge", "echotest", "videocall", "track"]
DEMOS: tuple[Demo, ...] = ("audiobridge", "echotest", "videocall", "track")
T0 = 1_796_000_000.0
HOST = "10.77.0.2"
PLUGINS = {
    "audiobridge": "janus.plugin.audiobridge",
    "echotest": "janus.plugin.echotest",
    "videocall": "janus.plugin.videocall",
    "track": "janus.plugin.videoroom",
}
SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
    "a=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=sendrecv\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:1111 cname:x\r\n"
)


@dataclass
class _Call:
    """The messages of one call as (time, sent, JSON), before they become flows."""

    rng: random.Random
    session_id: int
    handle_id: int
    items: list[tuple[float, bool, dict[str, Any]]] = field(default_factory=list)

    def tx(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(self.rng.choice(alphabet) for _ in range(12))

    def send(self, t: float, body: dict[str, Any], reply: dict[str, Any] | None = None) -> str:
        transaction = self.tx()
        self.items.append((t, True, {**body, "transaction": transaction}))
        if reply is not None:
            self.items.append((t + 0.004, False, {**reply, "transaction": transaction}))
        return transaction

    def message(self, t: float, body: dict[str, Any], *, jsep: bool = False) -> str:
        request: dict[str, Any] = {
            "janus": "message",
            "body": body,
            "session_id": self.session_id,
            "handle_id": self.handle_id,
        }
        if jsep:
            request["jsep"] = {"type": "offer", "sdp": SDP}
        ack = {"janus": "ack", "session_id": self.session_id}
        return self.send(t, request, ack)

    def event(
        self, t: float, plugin: str, data: dict[str, Any], transaction: str | None = None
    ) -> None:
        item: dict[str, Any] = {
            "janus": "event",
            "session_id": self.session_id,
            "sender": self.handle_id,
            "plugindata": {"plugin": plugin, "data": data},
        }
        if transaction is not None:
            item["transaction"] = transaction
        self.items.append((t, False, item))

    def notify(self, t: float, kind: str, **fields: Any) -> None:
        item = {"janus": kind, "session_id": self.session_id, "sender": self.handle_id, **fields}
        self.items.append((t, False, item))


def build_call(
    demo: Demo, mutes: Sequence[tuple[float, float]], duration: float, seed: int
) -> _Call:
    """The call's messages, times in seconds from the start."""
    rng = random.Random(seed)
    call = _Call(rng, rng.randrange(10**15, 10**16), rng.randrange(10**15, 10**16))
    plugin = PLUGINS[demo]
    call.send(0.2, {"janus": "create"}, {"janus": "success", "data": {"id": call.session_id}})
    call.send(
        0.25,
        {
            "janus": "attach",
            "plugin": plugin,
            "opaque_id": f"{demo}test-{call.tx()}",
            "session_id": call.session_id,
        },
        {"janus": "success", "session_id": call.session_id, "data": {"id": call.handle_id}},
    )
    name = plugin.rsplit(".", 1)[1]
    peer = rng.randrange(10**15, 10**16)
    if demo == "audiobridge":
        tx = call.message(0.4, {"request": "join", "room": 1234, "display": "tester"})
        call.event(
            0.41,
            plugin,
            {
                "audiobridge": "joined",
                "room": 1234,
                "id": rng.randrange(10**15, 10**16),
                "participants": [{"id": peer, "display": "peer", "setup": True, "muted": False}],
            },
            tx,
        )
        first: dict[str, Any] = {"request": "configure", "muted": False}
    elif demo == "echotest":
        first = {"audio": True, "video": True}
    elif demo == "videocall":
        tx = call.message(0.4, {"request": "register", "username": "tester"})
        call.event(0.41, plugin, {"videocall": "event", "result": {"event": "registered"}}, tx)
        first = {"request": "call", "username": "peer"}
    else:
        tx = call.message(0.4, {"request": "join", "ptype": "publisher", "room": 1234})
        call.event(0.41, plugin, {"videoroom": "joined", "room": 1234, "publishers": []}, tx)
        first = {"request": "configure", "audio": True, "video": True}
    tx = call.message(0.6, first, jsep=True)
    call.event(0.65, plugin, {name: "event", "result": "ok"}, tx)
    for index in range(4):
        candidate = (
            f"candidate:{rng.randrange(10**9)} 1 udp {2122260223 - index} 10.77.0.1 "
            f"{rng.randrange(40000, 60000)} typ host generation 0 ufrag MM6F network-id 1"
        )
        call.send(
            0.62 + 0.01 * index,
            {
                "janus": "trickle",
                "candidate": {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0},
                "session_id": call.session_id,
                "handle_id": call.handle_id,
            },
            {"janus": "ack", "session_id": call.session_id},
        )
    call.send(
        0.7,
        {
            "janus": "trickle",
            "candidate": {"completed": True},
            "session_id": call.session_id,
            "handle_id": call.handle_id,
        },
        {"janus": "ack", "session_id": call.session_id},
    )
    call.notify(1.1, "webrtcup")
    call.notify(1.3, "media", mid="0", type="audio", receiving=True)
    for t in _every(25.0, duration):  # janus.js keepAlivePeriod
        call.send(
            t,
            {"janus": "keepalive", "session_id": call.session_id},
            {"janus": "ack", "session_id": call.session_id},
        )
    lag = 0.012
    for start, end in mutes:
        if demo == "audiobridge":
            on: dict[str, Any] = {"request": "configure", "muted": True}
            off: dict[str, Any] = {"request": "configure", "muted": False}
        elif demo == "echotest":
            on, off = {"audio": False}, {"audio": True}
        elif demo == "videocall":
            on = {"request": "set", "audio": False}
            off = {"request": "set", "audio": True}
        else:
            continue  # a track-level mute: nothing goes to the server
        for t, body in ((start + lag, on), (end + lag, off)):
            tx = call.message(t, body)
            result: Any = {"event": "set"} if demo == "videocall" else "ok"
            call.event(t + 0.01, plugin, {name: "event", "result": result}, tx)
    _noise(call, demo, plugin, mutes, duration, peer)
    call.items.sort(key=lambda item: item[0])
    return call


def _every(period: float, duration: float) -> list[float]:
    return [period * k for k in range(1, int(duration / period) + 1)]


def _noise(
    call: _Call,
    demo: Demo,
    plugin: str,
    mutes: Sequence[tuple[float, float]],
    duration: float,
    peer: int,
) -> None:
    """What else happens in such a call, at times that have nothing to do with the marks."""
    rng = call.rng
    quiet = [(start - 2.5, end + 2.5) for start, end in mutes]
    times = [t for t in (2.0 + 1.7 * k for k in range(int(duration / 1.7))) if t < duration - 1]
    free = [t for t in times if not any(a <= t <= b for a, b in quiet)]
    if demo == "audiobridge":
        talking = True
        for t in times:  # the peer talks on and off all call long
            level = round(rng.uniform(25, 60), 2)
            data: dict[str, Any] = {
                "audiobridge": "talking" if talking else "stopped-talking",
                "room": 1234,
                "id": peer,
            }
            if not talking:
                data["audio-level-dBov-avg"] = level
            call.event(t + rng.uniform(0, 0.5), plugin, data)
            talking = not talking
        for t, muted in ((free[1], True), (free[3], False)):  # the peer mutes itself
            call.event(
                t + 0.3,
                plugin,
                {
                    "audiobridge": "event",
                    "room": 1234,
                    "participants": [
                        {"id": peer, "display": "peer", "setup": True, "muted": muted}
                    ],
                },
            )
    elif demo in ("echotest", "videocall"):
        wrap = {"request": "set"} if demo == "videocall" else {}
        name = plugin.rsplit(".", 1)[1]
        for t, body in (
            (free[1], {**wrap, "video": False}),
            (free[2], {**wrap, "video": True}),
            (free[-1], {**wrap, "bitrate": 256000}),
        ):
            tx = call.message(t, body)
            result: Any = {"event": "set"} if demo == "videocall" else "ok"
            call.event(t + 0.01, plugin, {name: "event", "result": result}, tx)
    call.notify(
        free[0] + 0.2, "slowlink", mid="0", media="audio", uplink=True, lost=rng.randrange(5, 40)
    )


# --- flows -------------------------------------------------------------------------------------


def _request(
    method: str, path: str, body: bytes, t: float, port: int, scheme: str = "https"
) -> http.Request:
    request = tutils.treq(
        host=HOST,
        port=port,
        scheme=scheme.encode(),
        method=method.encode(),
        path=path.encode(),
        content=body,
        authority=b"",
    )
    request.headers = http.Headers(host=f"{HOST}:{port}")
    if body:
        request.headers["content-type"] = "application/json"
    request.timestamp_start, request.timestamp_end = t, t + 0.001
    return request


def _response(body: bytes, t: float) -> http.Response:
    response = tutils.tresp(content=body)
    response.headers = http.Headers(content_type="application/json")
    response.timestamp_start, response.timestamp_end = t, t + 0.001
    return response


def _websocket_flow(call: _Call, t0: float) -> Any:
    flow = tflow.twebsocketflow()
    flow.request = _request("GET", "/", b"", t0 + 0.1, 8989)
    flow.request.headers["upgrade"] = "websocket"
    flow.request.headers["sec-websocket-protocol"] = "janus-protocol"
    assert flow.websocket is not None
    flow.websocket.messages = [
        WebSocketMessage(Opcode.TEXT, sent, json.dumps(body).encode(), t0 + t)
        for t, sent, body in call.items
    ]
    return flow


def _rest_flows(call: _Call, t0: float) -> list[Any]:
    """janus.js over REST: POSTs answered at once (success/ack), events in long polls."""
    flows: list[Any] = []
    events: list[tuple[float, dict[str, Any]]] = []
    pending: dict[str, dict[str, Any]] = {}
    for t, sent, body in call.items:
        if not sent:
            tx = body.get("transaction")
            if isinstance(tx, str) and tx in pending and body["janus"] in ("success", "ack"):
                pending[tx]["reply"] = (t, body)
            else:
                events.append((t, body))
            continue
        body = dict(body)
        session = body.pop("session_id", None)
        handle = body.pop("handle_id", None)
        path = "/janus" + (f"/{session}" if session else "") + (f"/{handle}" if handle else "")
        pending[body["transaction"]] = {"t": t, "path": path, "body": body}
    for entry in pending.values():
        request = _request(
            "POST", entry["path"], json.dumps(entry["body"]).encode(), t0 + entry["t"], 8089
        )
        reply_t, reply = entry.get("reply", (entry["t"] + 0.004, {"janus": "ack"}))
        flows.append(
            tflow.tflow(req=request, resp=_response(json.dumps(reply).encode(), t0 + reply_t))
        )
    poll_start = 0.3
    queue = sorted(events, key=lambda item: item[0])
    end = max(t for t, _, _ in call.items) + 1.0
    while poll_start < end:
        batch = [body for t, body in queue if poll_start <= t < poll_start + 30.0]
        first = min((t for t, _ in queue if t >= poll_start), default=None)
        if first is None or first >= poll_start + 30.0:
            answer_t, answer = poll_start + 30.0, [{"janus": "keepalive"}]
        else:
            answer_t = first
            answer = [body for t, body in queue if poll_start <= t <= first + 0.001][:10]
        del batch
        rid = int((t0 + poll_start) * 1000)
        request = _request(
            "GET", f"/janus/{call.session_id}?rid={rid}&maxev=10", b"", t0 + poll_start, 8089
        )
        request.headers.pop("content-type", None)
        flows.append(
            tflow.tflow(req=request, resp=_response(json.dumps(answer).encode(), t0 + answer_t))
        )
        poll_start = answer_t + 0.002
    return flows


def _mark_flow(muted: bool, at: float) -> Any:
    word = "muted" if muted else "unmuted"
    request = _request("GET", f"/{word}?t={at:.6f}&note=test", b"", at + 0.004, 80, "http")
    request.host = "mutecheck.mark"
    request.headers["host"] = "mutecheck.mark"
    return tflow.tflow(
        req=request, resp=_response(b'{"marked": "' + word.encode() + b'"}', at + 0.005)
    )


def write_session(
    folder: Path,
    demo: Demo,
    *,
    mutes: Sequence[tuple[float, float]] = ((8.0, 15.0), (24.0, 30.0)),
    duration: float = 40.0,
    seed: int = 7,
    mark_offset: float = 0.0,
    marks: bool = True,
    transport: Literal["ws", "rest"] | None = None,
) -> Path:
    """A session folder (flows.mitm, events.jsonl) of ``demo`` with these muted windows
    (seconds from the start); marks ``mark_offset`` seconds after the clicks (a human marks
    late). ``transport``: ws (default for AudioBridge, EchoTest, the track mute) or rest."""
    folder.mkdir(parents=True, exist_ok=True)
    call = build_call(demo, mutes, duration, seed)
    transport = transport or ("rest" if demo == "videocall" else "ws")
    flows = _rest_flows(call, T0) if transport == "rest" else [_websocket_flow(call, T0)]
    mark_times = [(T0 + 0.9 + mark_offset, False)]
    for start, end in mutes:
        mark_times += [(T0 + start + mark_offset, True), (T0 + end + mark_offset, False)]
    if marks:
        flows += [_mark_flow(muted, at) for at, muted in mark_times]
    with (folder / "flows.mitm").open("wb") as fo:
        writer = mitmio.FlowWriter(fo)  # type: ignore[no-untyped-call]
        for flow in flows:
            writer.add(flow)
    with (folder / "events.jsonl").open("wb") as fo:
        events = EventWriter(fo)
        events.write(make_event("session_start", T0, format="mutecheck-events", version=1))
        if marks:
            muted_now = False
            for at, muted in mark_times:
                events.write(
                    make_event(
                        "mute",
                        at + 0.004,
                        state="muted" if muted else "unmuted",
                        source="mark",
                        at=at,
                        evidence={"via": "url", "note": "test"},
                        repeated=muted == muted_now,
                        muted_now=muted,
                    )
                )
                muted_now = muted
    return folder
