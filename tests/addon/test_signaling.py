"""Tests for decoders.addon.signaling: HTTP and WebSocket messages reach the monitor; what it
asks to block is left for the blocking class, untouched here."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.script_addons import ScriptAddons
from mitmproxy import http, websocket
from mitmproxy.test import taddons, tflow
from wsproto.frame_protocol import Opcode

from decoders.addon.marks import METADATA_KEY

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "signaling"
WEBEX = (FIXTURES / "webex_metrics.json").read_bytes()


def post(url: str, body: bytes) -> http.HTTPFlow:
    return tflow.tflow(req=http.Request.make("POST", url, body))


def kinds(folder: Path) -> list[str]:
    lines = (folder / "events.jsonl").read_text().splitlines()
    return [json.loads(line)["kind"] for line in lines]


def test_messages_are_judged_and_blocking_is_left_pending(
    tctx: taddons.context, script: ScriptAddons, tmp_path: Path
) -> None:
    signaling = script.get("Signaling")
    tctx.configure(script, mutecheck_block=True)
    script.recorder.monitor.mark(1.0, True, via="command")
    flow = post("https://metrics.example.org/v1/m", WEBEX)
    signaling.request(flow)
    assert flow.response is None and flow.request.content == WEBEX  # not this class's job
    assert script.recorder.pending[flow.id].action == "drop"
    assert flow.id in script.recorder.relevant
    chat = post("https://call.example.org/chat", b'{"text": "hello"}')
    signaling.request(chat)
    assert chat.id not in script.recorder.pending and chat.id not in script.recorder.relevant
    assert kinds(tmp_path / "session") == ["session_start", "telemetry", "blocked", "warning"]


def test_the_proxys_own_answers_and_websockets(
    tctx: taddons.context, script: ScriptAddons, tmp_path: Path
) -> None:
    signaling = script.get("Signaling")
    mark = post("http://mutecheck.mark/muted", WEBEX)
    mark.metadata[METADATA_KEY] = "mark"
    signaling.request(mark)
    signaling.response(mark)
    assert not (tmp_path / "session" / "events.jsonl").exists()  # nothing judged, no session
    flow = tflow.twebsocketflow(messages=False)
    assert flow.websocket is not None
    presence = (FIXTURES / "jitsi_presence_muted.xml").read_bytes()
    flow.websocket.messages = [websocket.WebSocketMessage(Opcode.TEXT, True, presence)]
    signaling.websocket_message(flow)
    assert script.recorder.monitor.muted
    signaling.websocket_end(flow)
    assert signaling._websockets == {}
    assert kinds(tmp_path / "session") == ["session_start", "mute"]
