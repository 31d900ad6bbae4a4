"""Janus API messages exactly as janus.js 1.1.2 (libjs-janus-gateway) and Janus send them.

The browser side is built as janus.js builds it (``/usr/share/javascript/janus-gateway/
janus.js``): the request object's keys in its order, ``JSON.stringify`` (no spaces), a
12-character transaction; over WebSocket ``session_id`` and ``handle_id`` are added to the
object, over HTTP the request is POSTed to ``<server>/<session>`` (attach) or
``<server>/<session>/<handle>`` (message). Janus answers with its own JSON (indented by 3, its
default ``json = "indented"``). The plugin bodies are the demos' own
(``/usr/share/janus/demos/*.js``):

- audiobridgetest.js: publish ``{request: "configure", muted: false}`` with the offer; the Mute
  button ``{request: "configure", muted: !audioenabled}``;
- echotest.js: first ``{audio: true, video: true}``; the button ``{audio: audioenabled}``;
- videocalltest.js: ``{request: "set", audio: audioenabled}``;
- videoroomtest.js: publish ``{request: "configure", audio: useAudio, video: true}``; the Mute
  button calls ``sfutest.muteAudio()`` (``track.enabled = false``) and sends nothing.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Transport = Literal["ws", "rest"]
SERVER_WS = "wss://10.77.0.2:8989/"
SERVER_REST = "https://10.77.0.2:8089/janus"
SESSION = 4_501_337_700_112_233
HANDLES = {
    "janus.plugin.audiobridge": 1_834_226_004_917_551,
    "janus.plugin.echotest": 2_911_840_557_126_045,
    "janus.plugin.videocall": 6_277_015_340_982_113,
    "janus.plugin.videoroom": 7_150_432_998_650_027,
}
DEMO_PLUGIN = {
    "audiobridge": "janus.plugin.audiobridge",
    "echotest": "janus.plugin.echotest",
    "videocall": "janus.plugin.videocall",
    "videoroom": "janus.plugin.videoroom",
}
OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}


def browser(request: dict[str, Any]) -> bytes:
    """``JSON.stringify(request)``."""
    return json.dumps(request, separators=(",", ":")).encode()


def server(answer: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    """Janus's indented JSON."""
    return json.dumps(answer, indent=3).encode()


def transaction(n: int) -> str:
    """A 12-character transaction, as ``Janus.randomString(12)`` makes (fixed for tests)."""
    return f"tR{n:04d}xQz9Kp"[:12]


def attach(plugin: str, tx: str, transport: Transport) -> bytes:
    request: dict[str, Any] = {
        "janus": "attach",
        "plugin": plugin,
        "opaque_id": f"{plugin.rsplit('.', 1)[-1]}test-Ab3dE6gH1jK2",
        "transaction": tx,
    }
    if transport == "ws":
        request["session_id"] = SESSION
    return browser(request)


def attached(tx: str, handle: int) -> bytes:
    return server(
        {"janus": "success", "session_id": SESSION, "transaction": tx, "data": {"id": handle}}
    )


def message(
    body: dict[str, Any], tx: str, handle: int, transport: Transport, jsep: bool = False
) -> bytes:
    request: dict[str, Any] = {"janus": "message", "body": body, "transaction": tx}
    if jsep:
        request["jsep"] = OFFER
    if transport == "ws":
        request["session_id"] = SESSION
        request["handle_id"] = handle
    return browser(request)


def ack(tx: str) -> bytes:
    return server({"janus": "ack", "session_id": SESSION, "transaction": tx})


def event(plugin: str, handle: int, data: dict[str, Any], tx: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"janus": "event", "session_id": SESSION}
    if tx is not None:
        answer["transaction"] = tx
    answer["sender"] = handle
    answer["plugindata"] = {"plugin": plugin, "data": data}
    return answer


@dataclass(frozen=True)
class Step:
    """One message of a demo's call: who sends it, the bytes, the HTTP path (REST), when."""

    t: float
    sent: bool
    content: bytes
    path: str
    answer: bytes | None = None
    """REST: the HTTP response to this request (the attach's success, the message's ack)."""


def publish_body(demo: str) -> dict[str, Any]:
    return {
        "audiobridge": {"request": "configure", "muted": False},
        "echotest": {"audio": True, "video": True},
        "videocall": {"request": "set"},
        "videoroom": {"request": "configure", "audio": True, "video": True},
    }[demo]


def mute_body(demo: str, muted: bool) -> dict[str, Any] | None:
    """What the demo's mute control sends (None: VideoRoom sends nothing)."""
    if demo == "audiobridge":
        return {"request": "configure", "muted": muted}
    if demo == "echotest":
        return {"audio": not muted}
    if demo == "videocall":
        return {"request": "set", "audio": not muted}
    return None


def demo_call(
    demo: str, transport: Transport, t0: float, mutes: list[tuple[float, float]]
) -> list[Step]:
    """A demo's signaling: attach, publish (with the offer), then the mute control pressed at
    each ``(start, end)`` (seconds after ``t0``), as janus.js sends it."""
    plugin = DEMO_PLUGIN[demo]
    handle = HANDLES[plugin]
    session_path = f"/janus/{SESSION}"
    handle_path = f"{session_path}/{handle}"
    steps: list[Step] = []
    number = 0

    def next_tx() -> str:
        nonlocal number
        number += 1
        return transaction(number)

    tx = next_tx()
    if transport == "ws":
        steps.append(Step(t0, True, attach(plugin, tx, transport), "/"))
        steps.append(Step(t0 + 0.01, False, attached(tx, handle), "/"))
    else:
        steps.append(
            Step(t0, True, attach(plugin, tx, transport), session_path, attached(tx, handle))
        )
    tx = next_tx()
    publish = message(publish_body(demo), tx, handle, transport, jsep=True)
    if transport == "ws":
        steps.append(Step(t0 + 0.5, True, publish, "/"))
        steps.append(Step(t0 + 0.51, False, ack(tx), "/"))
    else:
        steps.append(Step(t0 + 0.5, True, publish, handle_path, ack(tx)))
    done = event(plugin, handle, {"result": "ok"}, tx)
    if transport == "ws":
        steps.append(Step(t0 + 0.7, False, server(done), "/"))
    else:  # the long poll's answer: a list (maxev=10)
        steps.append(Step(t0 + 0.7, False, server([done]), f"{session_path}?rid=1&maxev=10"))
    for start, end in mutes:
        for at, muted in ((start, True), (end, False)):
            body = mute_body(demo, muted)
            if body is None:
                continue
            tx = next_tx()
            request = message(body, tx, handle, transport)
            if transport == "ws":
                steps.append(Step(t0 + at, True, request, "/"))
                steps.append(Step(t0 + at + 0.01, False, ack(tx), "/"))
            else:
                steps.append(Step(t0 + at, True, request, handle_path, ack(tx)))
    return steps


def flows(steps: list[Step], transport: Transport) -> list[Any]:
    """The mitmproxy flows of a call: one WebSocket flow (``janus-protocol``), or an HTTP flow
    per REST request (the long poll's answers as GET responses), with the steps' times."""
    from mitmproxy import http, websocket
    from mitmproxy.test import tflow
    from wsproto.frame_protocol import Opcode

    if transport == "ws":
        flow = tflow.twebsocketflow(messages=False)
        flow.request.scheme, flow.request.host, flow.request.port = "https", "10.77.0.2", 8989
        flow.request.path = "/"
        flow.request.headers["sec-websocket-protocol"] = "janus-protocol"
        assert flow.websocket is not None
        flow.websocket.messages = [
            websocket.WebSocketMessage(Opcode.TEXT, step.sent, step.content, step.t)
            for step in steps
        ]
        return [flow]
    out = []
    for step in steps:
        method = "POST" if step.sent else "GET"
        url = f"https://10.77.0.2:8089{step.path}"
        body = step.content if step.sent else b""
        headers = {"content-type": "application/json"} if step.sent else {}
        request = http.Request.make(method, url, body, headers)
        request.timestamp_start = request.timestamp_end = step.t - (0 if step.sent else 0.3)
        answer = step.answer if step.sent else step.content
        response = http.Response.make(200, answer or b"", {"content-type": "application/json"})
        response.timestamp_start = response.timestamp_end = step.t + 0.005
        out.append(tflow.tflow(req=request, resp=response))
    return out


SESSION_FILES = ("capture.pcapng", "offer.sdp", "answer.sdp", "session.json", "keys.json")


def janus_session(
    folder: Path,
    lab: Path,
    demo: str,
    transport: Transport,
    *,
    judged: bool = False,
) -> tuple[float, float]:
    """A session folder: a lab call's capture, SDP and keys (no timeline.json, no marks) with
    a Janus demo's signaling in flows.mitm whose mute control is pressed at the lab's own mute
    and unmute times. events.jsonl holds only the ``session_start`` of an addon that did not
    know the built-in rules, or (``judged``) what the addon with them writes. Returns the lab's
    mute interval."""
    from mitmproxy import io

    from decoders.audit.messages import replay_flows
    from decoders.session.rulefiles import builtin_rules

    folder.mkdir(parents=True, exist_ok=True)
    for name in SESSION_FILES:
        if (lab / name).is_file():
            shutil.copy(lab / name, folder / name)
    start, end = json.loads((lab / "timeline.json").read_text())["muted"][0]
    t0 = start - 3.0
    steps = demo_call(demo, transport, t0, [(3.0, 3.0 + end - start)])
    with (folder / "flows.mitm").open("wb") as fo:
        writer = io.FlowWriter(fo)
        for flow in flows(steps, transport):
            writer.add(flow)
    first: dict[str, Any] = {"t": t0 - 5, "kind": "session_start", "format": "mutecheck-events"}
    first["version"] = 1
    lines = [first]
    if judged:
        first["rules"] = [rule.name for rule in builtin_rules()]
        with (folder / "flows.mitm").open("rb") as fo:
            lines += [e for e in replay_flows(fo) if e["kind"] == "mute"]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (folder / "events.jsonl").write_text(text, encoding="utf-8")
    return start, end
