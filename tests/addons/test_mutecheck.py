# mitmproxy's test helpers (taddons, tflow) and a few of its constructors carry no annotations:
# mypy: disable-error-code="no-untyped-call"
"""Tests for addons/mutecheck.py: mitmproxy's own test helpers, then a real mitmdump.

Unit tests drive the addon with ``taddons.context`` and ``tflow`` flows (mitmproxy's helpers, no
sockets). Live tests run the real ``mitmdump -s addons/mutecheck.py`` on a free loopback port with
a real tornado HTTP + WebSocket server behind it and real clients in front (http.client, wsproto
over CONNECT), a ``reverse:udp`` mode carrying the browser's RTP from a lab capture, and TURN over
TCP and TLS through CONNECT to a small TURN server carrying the same RTP relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path
from typing import Any

import helpers.janus_messages as janus
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket
import wsproto
import wsproto.utilities
from cryptography.hazmat.primitives import serialization
from helpers.hostile_bodies import hostile_bodies
from helpers.script_addons import ScriptAddons, judged_in_proxy
from helpers.turn_stream import (
    ALLOCATE_REQUEST,
    XOR_RELAYED_ADDRESS,
    TurnCall,
    browser_rtp,
    cut,
    lab_peer,
    stun_message,
    turn_call,
    xor_address,
)
from mitmproxy import certs, connection, exceptions, http, io, tcp, udp, websocket
from mitmproxy.addons import save
from mitmproxy.proxy import server_hooks
from mitmproxy.test import taddons, tflow
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import Opcode

from decoders.addon.recorder import OPTION_NAMES
from decoders.audit.messages import replay_flows
from decoders.session.events import read_events as read_event_stream
from decoders.session.monitor import Monitor
from decoders.session.payload import decode_content, parse_document
from decoders.session.rulefiles import builtin_rules
from decoders.session.sdp import parse_sdp
from decoders.session.telemetry import find_volume_fields
from decoders.wire.framing import TurnTcpFramer

ROOT = Path(__file__).resolve().parent.parent.parent
ADDON = ROOT / "addons" / "mutecheck.py"
FIXTURES = ROOT / "tests" / "fixtures" / "signaling"
CAPTURES = ROOT / "captures"
OFFER_JSON = (FIXTURES / "rtc_offer.json").read_bytes()
ANSWER_SDP = (FIXTURES / "aiortc_answer.sdp").read_bytes().decode()
WEBEX = (FIXTURES / "webex_metrics.json").read_bytes()
TIMEOUT = 15.0


def events_in(folder: Path) -> list[dict[str, Any]]:
    with (folder / "events.jsonl").open("rb") as stream:
        return list(read_event_stream(stream))


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["kind"] for event in events]


def request_flow(
    url: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    headers: dict[str | bytes, str | bytes] | None = None,
    at: float | None = None,
) -> http.HTTPFlow:
    request = http.Request.make(method, url, body, dict(headers or {}))
    if at is not None:
        request.timestamp_start = request.timestamp_end = at
    return tflow.tflow(req=request)


def muted_rtp(session: Path) -> list[bytes]:
    """The browser's RTP packets from the middle of the session's muted interval."""
    start, end = json.loads((session / "timeline.json").read_text())["muted"][0]
    return [payload for t, payload in browser_rtp(session) if start + 0.5 < t < end - 0.5]


@pytest.fixture
def addon() -> Any:
    return ScriptAddons(ADDON)


@pytest.fixture
def tctx(addon: Any, tmp_path: Path) -> Iterator[taddons.context]:
    with judged_in_proxy(addon, tmp_path) as context:
        yield context


# --- options -----------------------------------------------------------------------------------


def test_options_are_declared_with_help(addon: Any) -> None:
    with taddons.context(addon) as context:
        names = [n for n in context.options.keys() if n.startswith("mutecheck_")]  # noqa: SIM118
        assert sorted(names) == sorted(OPTION_NAMES)
        for name in names:
            assert len(context.options._options[name].help) > 60, name
        assert context.options.mutecheck_block is False
        assert context.options.mutecheck_scan_limit == "256k"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("mutecheck_block_action", "explode", "'explode' is not one of drop, redact"),
        ("mutecheck_block_unread", "maybe", "'maybe' is not one of block, pass"),
        ("mutecheck_save_flows", "false", "'false' is not one of relevant, all, none"),
        ("mutecheck_scan_limit", "lots", "'lots' is not a size"),
        ("mutecheck_scan_limit", "0", "'0' is not a size"),
        ("mutecheck_grace_ms", -1, "-1 is not 0..60000"),
        ("mutecheck_silence_level", 0, "0 is not 1..127"),
        ("mutecheck_silence_level", 128, "128 is not 1..127"),
        ("mutecheck_audio_level_id", 300, "300 is not 0..255"),
        ("mutecheck_rules", "/nonexistent/rules.json", "'/nonexistent/rules.json': "),
    ],
)
def test_bad_option_values_name_the_value(
    addon: Any, option: str, value: object, message: str
) -> None:
    with (
        taddons.context(addon) as context,
        pytest.raises(exceptions.OptionsError, match=re.escape(message)),
    ):
        context.configure(addon, **{option: value})


def test_bad_rules_file_and_unusable_folder(addon: Any, tmp_path: Path) -> None:
    broken = tmp_path / "rules.json"
    broken.write_text('{"rules": [{"url": "(", "state": "muted"}]}')
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with taddons.context(addon) as context:
        with pytest.raises(exceptions.OptionsError, match=r"rule 1 .*is not a regular expression"):
            context.configure(addon, mutecheck_rules=str(broken))
        with pytest.raises(exceptions.OptionsError, match="cannot be created"):
            context.configure(addon, mutecheck_dir=str(blocker / "session"))
        good = FIXTURES / "rules.json"
        context.configure(addon, mutecheck_rules=str(good), mutecheck_grace_ms=500)
        names = [rule.name for rule in addon.monitor.settings.rules]
        assert names == [rule.name for rule in builtin_rules()] + [
            "example mute API",
            "example mute over WebSocket",
            "example mute endpoint",
        ]
        assert addon.monitor.settings.grace == 0.5
        context.configure(addon, mutecheck_builtin_rules=False)
        assert len(addon.monitor.settings.rules) == 3


def test_loading_the_script_logs_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), taddons.context() as context:
        context.options.update(confdir=str(tmp_path))
        module = context.script(str(ADDON))
        assert [type(child).__name__ for child in module.addons] == [
            "Marks",
            "Signaling",
            "Media",
            "Blocking",
            "FlowSaving",
            "Judging",
            "SessionFolder",
        ]
        assert context.options.mutecheck_block_action == "drop"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# --- session folder ----------------------------------------------------------------------------


def saved(path: Path) -> list[Any]:
    with path.open("rb") as stream:
        return list(io.FlowReader(stream).stream())


def test_running_opens_the_session_and_saves_flows_there(tmp_path: Path) -> None:
    addon = ScriptAddons(ADDON)
    with taddons.context(save.Save(), addon) as context:  # mitmproxy's Save is loaded, unused
        context.configure(addon, mutecheck_dir=str(tmp_path / "s1"), mutecheck_save_flows="all")
        addon.running()
        (start,) = events_in(tmp_path / "s1")
        assert start["kind"] == "session_start" and start["version"] == 1
        assert start["options"]["mutecheck_dir"] == str(tmp_path / "s1")
        assert set(start["versions"]) == {"mutecheck", "mitmproxy", "python"}
        first, second = tflow.tflow(resp=True), tflow.tflow(resp=True)
        addon.request(first)
        addon.response(first)
        context.configure(addon, mutecheck_dir=str(tmp_path / "s2"))  # a new session
        assert kinds(events_in(tmp_path / "s2")) == ["session_start"]
        addon.request(second)
        addon.response(second)
        assert context.options.save_stream_file is None
        addon.done()
    assert [f.id for f in saved(tmp_path / "s1" / "flows.mitm")] == [first.id]
    assert [f.id for f in saved(tmp_path / "s2" / "flows.mitm")] == [second.id]


def test_flows_are_saved_when_mitmproxy_would_save_them(tmp_path: Path) -> None:
    """At the hooks mitmproxy's Save addon uses (addons/save.py), as the flows are then;
    flows that never ended at shutdown."""
    addon = ScriptAddons(ADDON)
    with taddons.context(addon) as context:
        context.configure(addon, mutecheck_dir=str(tmp_path / "s"), mutecheck_save_flows="all")
        addon.running()
        answered, failed, websocket = tflow.tflow(), tflow.tflow(), tflow.twebsocketflow()
        pending, udp_flow, tcp_flow = tflow.tflow(), tflow.tudpflow(), tflow.ttcpflow()
        for item in (answered, failed, websocket, pending):
            addon.request(item)
        addon.udp_start(udp_flow)
        addon.tcp_start(tcp_flow)
        answered.response = tflow.tresp()
        failed.error = tflow.terr()
        addon.response(answered)
        addon.error(failed)
        addon.response(websocket)  # not yet: a WebSocket is saved when it ends
        addon.udp_end(udp_flow)
        expected = answered.get_state()
        answered.request.content = b"changed after it was saved"
        addon.websocket_end(websocket)
        addon.done()  # saves what never ended: the pending request and the TCP flow
    flows = saved(tmp_path / "s" / "flows.mitm")
    order = (answered, failed, udp_flow, websocket, pending, tcp_flow)
    assert [f.id for f in flows] == [f.id for f in order]
    assert flows[0].get_state() == expected
    assert flows[3].websocket is not None and len(flows[3].websocket.messages) == 3


def test_save_stream_filter_chooses_the_flows_saved(tmp_path: Path) -> None:
    addon = ScriptAddons(ADDON)
    with taddons.context(save.Save(), addon) as context:
        context.configure(
            addon,
            mutecheck_dir=str(tmp_path / "s"),
            mutecheck_save_flows="all",
            save_stream_filter="~m POST",
        )
        addon.running()
        get, post = tflow.tflow(resp=True), request_flow("http://example.com/api", b"{}")
        post.response = tflow.tresp()
        for item in (get, post):
            addon.request(item)
            addon.response(item)
        with pytest.raises(exceptions.OptionsError, match="~nonsense"):
            context.configure(addon, save_stream_filter="~nonsense(")
        addon.done()
    assert [f.id for f in saved(tmp_path / "s" / "flows.mitm")] == [post.id]


def test_a_save_stream_file_of_the_user_is_left_alone(tmp_path: Path) -> None:
    addon = ScriptAddons(ADDON)
    with taddons.context(save.Save(), addon) as context:
        mine = str(tmp_path / "mine.mitm")
        context.options.update(save_stream_file=mine)
        context.configure(addon, mutecheck_dir=str(tmp_path / "s"), mutecheck_save_flows="all")
        addon.running()
        item = tflow.tflow(resp=True)
        addon.request(item)
        addon.response(item)
        assert context.options.save_stream_file == mine
        addon.done()
    assert not (tmp_path / "s" / "flows.mitm").exists()


def test_saving_can_be_turned_off_and_on(tmp_path: Path) -> None:
    addon = ScriptAddons(ADDON)
    with taddons.context(addon) as context:
        context.configure(addon, mutecheck_dir=str(tmp_path / "s"), mutecheck_save_flows="none")
        addon.running()
        skipped, kept = tflow.tflow(resp=True), tflow.tflow(resp=True)
        addon.request(skipped)
        addon.response(skipped)
        context.configure(addon, mutecheck_save_flows="all")
        addon.request(kept)
        addon.response(kept)
        addon.done()
    assert [f.id for f in saved(tmp_path / "s" / "flows.mitm")] == [kept.id]


def test_by_default_the_flows_that_gave_events_are_saved(tmp_path: Path) -> None:
    """'relevant': the offer, the mark, the WebSocket that carried presence and telemetry; not the
    page, not the WebSocket of chat only. Replaying them gives the events the proxy wrote."""
    addon = ScriptAddons(ADDON)
    with taddons.context(addon) as context:
        context.configure(addon, mutecheck_dir=str(tmp_path / "s"), mutecheck_grace_ms=0)
        assert context.options.mutecheck_save_flows == "relevant"
        addon.running()
        offer = request_flow(
            "https://call.example.org/offer",
            OFFER_JSON,
            headers={"content-type": "application/json"},
        )
        page = request_flow("https://call.example.org/app.js", b"console.log(1)")
        mark = request_flow("http://mutecheck.mark/muted", method="GET")
        for item in (offer, page, mark):
            addon.request(item)
            item.response = item.response or tflow.tresp()
            addon.response(item)
        talk, chat = websocket_flow(), websocket_flow()
        for item in (talk, chat):
            addon.request(item)
            addon.response(item)
        add_message(talk, (FIXTURES / "jitsi_presence_unmuted.xml").read_bytes())
        addon.websocket_message(talk)
        add_message(talk, b'{"stats": {"audio": {"level": 0.3}}}')
        addon.websocket_message(talk)
        add_message(chat, b'{"chat": "hi"}')
        addon.websocket_message(chat)
        for item in (talk, chat):
            addon.websocket_end(item)
        addon.done()
    folder = tmp_path / "s"
    assert [f.id for f in saved(folder / "flows.mitm")] == [offer.id, mark.id, talk.id]
    with (folder / "flows.mitm").open("rb") as stream:
        replayed = replay_flows(stream)
    written = [e for e in events_in(folder) if e["kind"] in {"sdp", "mute", "telemetry"}]
    assert [e["kind"] for e in replayed] == [e["kind"] for e in written]
    assert [e["kind"] for e in written] == ["sdp", "mute", "mute", "telemetry"]


def test_the_observer_process_judges_and_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """By default the messages that need parsing are judged in the observer process: the mark
    URL and mutecheck.state answer from it, its warnings reach mitmproxy's log, events.jsonl
    holds what the proxy would have written."""
    addon = ScriptAddons(ADDON)
    folder = tmp_path / "s"
    with caplog.at_level(logging.INFO), taddons.context(addon) as context:
        context.configure(addon, mutecheck_dir=str(folder), mutecheck_grace_ms=0)
        addon.running()
        assert addon._observer is not None and addon._observer.alive
        offer = request_flow(
            "https://call.example.org/offer",
            OFFER_JSON,
            headers={"content-type": "application/json"},
        )
        addon.request(offer)
        mark = request_flow("http://mutecheck.mark/muted", method="GET", at=time.time())
        addon.request(mark)
        assert mark.response is not None and json.loads(mark.response.content)["muted"] is True
        assert addon.state().startswith("muted since")
        telemetry = request_flow("https://metrics.example.org/v1/m", WEBEX)
        addon.request(telemetry)
        assert telemetry.response is None  # not blocking: it leaves
        addon.done()
    events = events_in(folder)
    assert kinds(events)[:3] == ["session_start", "sdp", "mute"]
    assert [e["finding"] for e in events if e["kind"] == "telemetry"] == [True]
    assert any("MUTED but volume telemetry left" in r.message for r in caplog.records)


def test_block_mode_takes_the_monitor_back_from_the_observer(tmp_path: Path) -> None:
    addon = ScriptAddons(ADDON)
    with taddons.context(addon) as context:
        context.configure(addon, mutecheck_dir=str(tmp_path / "s"), mutecheck_grace_ms=0)
        addon.running()
        addon.mark("muted")
        observer = addon._observer
        context.configure(addon, mutecheck_block=True)
        assert addon._observer is None and not observer.alive
        assert addon.monitor.muted  # what the observer knew
        telemetry = request_flow("https://metrics.example.org/v1/m", WEBEX)
        addon.request(telemetry)
        assert telemetry.response is not None and telemetry.response.status_code == 204
        context.configure(addon, mutecheck_block=False)  # and hands it over again
        assert addon._observer is not None and addon.state().startswith("muted")
        addon.done()
    assert [e["kind"] for e in events_in(tmp_path / "s")].count("blocked") == 1


def test_a_dead_observer_leaves_the_proxy_judging(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    addon = ScriptAddons(ADDON)
    with caplog.at_level(logging.INFO), taddons.context(addon) as context:
        context.configure(addon, mutecheck_dir=str(tmp_path / "s"), mutecheck_grace_ms=0)
        addon.running()
        assert addon._observer is not None
        addon._observer._process.kill()
        addon._observer._process.wait()
        for _ in range(2):  # the first may still fit in the pipe
            addon.request(request_flow("https://metrics.example.org/v1/m", WEBEX))
        assert addon._observer is None
        addon.done()
    assert any("judging in the proxy" in r.message for r in caplog.records)
    assert [e["kind"] for e in events_in(tmp_path / "s")][-1] == "telemetry"


def test_default_folder_is_under_confdir(tmp_path: Path) -> None:
    addon = ScriptAddons(ADDON)
    with taddons.context(addon) as context:
        context.configure(addon, confdir=str(tmp_path))
        addon.running()
        (folder,) = (tmp_path / "mutecheck").iterdir()
        assert re.fullmatch(r"\d{8}-\d{6}", folder.name)
        assert kinds(events_in(folder)) == ["session_start"]
        addon.done()


def test_an_unwritable_folder_is_one_error_and_the_proxy_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    addon = ScriptAddons(ADDON)
    (tmp_path / "s" / "events.jsonl").mkdir(parents=True)  # cannot be opened as a file
    with taddons.context(addon) as context, caplog.at_level(logging.ERROR):
        context.configure(addon, mutecheck_dir=str(tmp_path / "s"))
        addon.running()
        addon.mark("muted")
        addon.mark("unmuted")
        assert addon.monitor.muted is False
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "cannot write to" in errors[0]
        addon.done()


# --- marks -------------------------------------------------------------------------------------


def test_mark_command(tctx: taddons.context, addon: Any, tmp_path: Path) -> None:
    tctx.command(addon.mark, "muted")
    assert addon.monitor.muted
    assert tctx.command(addon.state).startswith("muted since ")
    with pytest.raises(exceptions.CommandError, match="'loud' is not muted or unmuted"):
        tctx.command(addon.mark, "loud")
    tctx.command(addon.mark, "unmuted")
    marks = [event for event in events_in(tmp_path / "session") if event["kind"] == "mute"]
    assert [(m["state"], m["source"], m["evidence"]["via"]) for m in marks] == [
        ("muted", "mark", "command"),
        ("unmuted", "mark", "command"),
    ]


def test_mark_url(tctx: taddons.context, addon: Any, tmp_path: Path) -> None:
    flow = request_flow("http://mutecheck.mark/muted?t=1795989023.5&note=lab", method="GET")
    addon.request(flow)
    assert flow.response is not None and flow.response.status_code == 200
    assert flow.response.headers["Access-Control-Allow-Origin"] == "*"
    answer = json.loads(flow.response.content or b"")
    assert answer["marked"] == "muted" and answer["muted"] is True
    assert answer["since"] == 1795989023.5
    bad = request_flow("http://mutecheck.mark/favicon.ico", method="GET")
    addon.request(bad)
    assert bad.response is not None and bad.response.status_code == 400
    preflight = request_flow("http://mutecheck.mark/muted", method="OPTIONS")
    addon.request(preflight)
    assert preflight.response is not None and preflight.response.status_code == 204
    state = request_flow("http://mutecheck.mark/state", method="GET")
    addon.request(state)
    assert state.response is not None
    assert json.loads(state.response.content or b"")["sources"]["mark"] is True
    addon.response(state)  # our own answer is not analysed
    (mute,) = [e for e in events_in(tmp_path / "session") if e["kind"] == "mute"]
    assert mute["at"] == 1795989023.5 and mute["evidence"] == {"via": "url", "note": "lab"}


def test_connect_to_the_mark_host_is_answered_without_connecting(
    tctx: taddons.context, addon: Any
) -> None:
    flow = request_flow("http://mutecheck.mark:443/", method="CONNECT")
    flow.request.host = "mutecheck.mark"
    addon.http_connect(flow)
    assert flow.response is not None and flow.response.status_code == 200
    other = request_flow("http://example.org:443/", method="CONNECT")
    addon.http_connect(other)
    assert other.response is None


def test_the_mark_host_is_never_contacted(tctx: taddons.context, addon: Any) -> None:
    for host, refused in (("mutecheck.mark", True), ("example.org", False)):
        server = connection.Server(address=(host, 443))
        addon.server_connect(server_hooks.ServerConnectionHookData(server, tflow.tclient_conn()))
        assert (server.error is not None) is refused


# --- HTTP --------------------------------------------------------------------------------------


def test_sdp_in_request_and_response(tctx: taddons.context, addon: Any, tmp_path: Path) -> None:
    flow = request_flow(
        "https://call.example.org/offer", OFFER_JSON, headers={"content-type": "application/json"}
    )
    addon.request(flow)
    flow.response = http.Response.make(
        200, json.dumps({"type": "answer", "sdp": ANSWER_SDP}), {"content-type": "application/json"}
    )
    addon.response(flow)
    sdps = [e for e in events_in(tmp_path / "session") if e["kind"] == "sdp"]
    assert [(e["direction"], e["role"]) for e in sdps] == [
        ("sent", "offer"),
        ("received", "answer"),
    ]
    assert sdps[0]["flow"]["url"] == "https://call.example.org/offer"
    assert sdps[0]["flow"]["method"] == "POST" and sdps[0]["flow"]["type"] == "http"
    assert sdps[0]["parsed"]["audio_level_extension_id"] == 1


def test_telemetry_while_muted_warns(
    tctx: taddons.context, addon: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    addon.mark("muted")
    flow = request_flow(
        "https://metrics.example.org/v1/m?x=1",
        WEBEX,  # Request.make compresses it as the header says
        headers={"content-encoding": "gzip"},
        at=time.time() + 1,
    )
    with caplog.at_level(logging.INFO):
        addon.request(flow)
    assert flow.response is None  # not blocking: it goes through
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("mutecheck: MUTED but volume telemetry left [medium")
    assert "POST https://metrics.example.org/v1/m:" in warnings[0]
    telemetry = [e for e in events_in(tmp_path / "session") if e["kind"] == "telemetry"]
    assert telemetry[0]["encoding"] == ["gzip", "json"] and telemetry[0]["finding"] is True
    assert telemetry[0]["endpoint"] == "https://metrics.example.org/v1/m"
    assert len(telemetry[0]["fields"]) == 6


def test_block_drop_http(tctx: taddons.context, addon: Any, tmp_path: Path) -> None:
    tctx.configure(addon, mutecheck_block=True)
    unmuted = request_flow("https://metrics.example.org/v1/m", WEBEX)
    addon.request(unmuted)
    assert unmuted.response is None
    addon.mark("muted")
    muted = request_flow("https://metrics.example.org/v1/m", WEBEX)
    addon.request(muted)
    assert muted.response is not None and muted.response.status_code == 204
    assert "mutecheck" in muted.response.headers["X-Mutecheck"]
    blocked = [e for e in events_in(tmp_path / "session") if e["kind"] == "blocked"]
    assert [b["action"] for b in blocked] == ["dropped"]
    other = request_flow("https://call.example.org/chat", b'{"text": "hello"}')
    addon.request(other)
    assert other.response is None


def test_block_redact_http_keeps_the_content_encoding(
    tctx: taddons.context, addon: Any, tmp_path: Path
) -> None:
    tctx.configure(addon, mutecheck_block=True, mutecheck_block_action="redact")
    addon.mark("muted")
    flow = request_flow(
        "https://metrics.example.org/v1/m",
        WEBEX,  # Request.make compresses it as the header says
        headers={"content-encoding": "gzip"},
    )
    addon.request(flow)
    assert flow.response is None
    assert flow.request.headers["content-encoding"] == "gzip"
    raw = flow.request.raw_content or b""
    decoded = decode_content(raw, "gzip", 1 << 20)
    assert decoded.layers == ("gzip",)
    assert find_volume_fields(parse_document(decoded.data)) == ()
    assert b"MQE" in decoded.data


# --- what the limits cut off, and numbers no float holds (issue 13) ----------------------------

HOSTILE = hostile_bodies()


def hidden_evidence(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        event
        for event in events
        if (event["kind"] == "telemetry" and event["fields"])
        or (event["kind"] == "warning" and event.get("code") == "scan-limit")
    ]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hidden_volume_fields_over_http(
    tctx: taddons.context, addon: Any, tmp_path: Path, name: str
) -> None:
    """Each body of issue 13 in an HTTP request: written as telemetry or scan-limit while it
    passes; with mutecheck_block the proxy answers 204 and nothing leaves."""
    body, coding = HOSTILE[name]
    headers = {"content-encoding": coding} if coding else {}
    addon.mark("muted")
    passed = request_flow("https://metrics.example.org/v1/m", body, headers=headers)
    passed.request.raw_content = body  # exactly these bytes (Request.make encodes by the header)
    addon.request(passed)
    assert passed.response is None
    assert hidden_evidence(events_in(tmp_path / "session"))
    tctx.configure(addon, mutecheck_block=True)
    stopped = request_flow("https://metrics.example.org/v1/other", body, headers=headers)
    stopped.request.raw_content = body
    addon.request(stopped)
    assert stopped.response is not None and stopped.response.status_code == 204
    assert [e["kind"] for e in events_in(tmp_path / "session")].count("blocked") == 1


@pytest.mark.parametrize(
    "name",
    [
        "depth-40",
        "depth-1000",
        "leaves-20001",
        "base64-field-after-the-limit",
        "json-NaN",
        "json-1e999",
        "json-5000-digits",
        "base64-body-Infinity",
        "form-NaN",
    ],
)
def test_hidden_volume_fields_over_websocket(
    tctx: taddons.context, addon: Any, tmp_path: Path, name: str
) -> None:
    body, _ = HOSTILE[name]
    addon.mark("muted")
    flow = websocket_flow()
    add_message(flow, body)
    addon.websocket_message(flow)
    assert flow.websocket is not None and not flow.websocket.messages[-1].dropped
    assert hidden_evidence(events_in(tmp_path / "session"))
    tctx.configure(addon, mutecheck_block=True)
    add_message(flow, body)
    addon.websocket_message(flow)
    assert flow.websocket.messages[-1].dropped


def test_block_unread_pass_lets_an_unread_body_go(
    tctx: taddons.context, addon: Any, tmp_path: Path
) -> None:
    """mutecheck_block_unread=pass: a body over the scan limit with no volume field in what was
    read leaves; the scan-limit warning stays."""
    tctx.configure(
        addon, mutecheck_block=True, mutecheck_block_unread="pass", mutecheck_scan_limit="1k"
    )
    addon.mark("muted")
    body = b'{"pad":"' + b"x" * 2000 + b'","audioLevel":0.5}'
    flow = request_flow("https://upload.example.org/f", body)
    addon.request(flow)
    assert flow.response is None
    (warning,) = [e for e in events_in(tmp_path / "session") if e["kind"] == "warning"]
    assert warning["code"] == "scan-limit" and warning["unread"]["bytes"]["read"] == 1024
    tctx.configure(addon, mutecheck_block_unread="block")
    again = request_flow("https://upload.example.org/f", body)
    addon.request(again)
    assert again.response is not None and again.response.status_code == 204


def test_hidden_volume_fields_in_the_observer_process(tmp_path: Path) -> None:
    """The same events when the observer process judges (the default without block mode)."""
    addon = ScriptAddons(ADDON)
    folder = tmp_path / "s"
    with taddons.context(addon) as context:
        context.configure(addon, mutecheck_dir=str(folder), mutecheck_grace_ms=0)
        addon.running()
        assert addon._observer is not None
        addon.mark("muted")
        for name in ("depth-40", "base64-field-after-the-limit", "json-1e999"):
            body, _ = HOSTILE[name]
            addon.request(request_flow(f"https://metrics.example.org/{name}", body))
        addon.done()
    events = events_in(folder)
    codes = [e.get("code") for e in events if e["kind"] == "warning"]
    assert codes.count("scan-limit") == 2
    raws = [f.get("raw") for e in events if e["kind"] == "telemetry" for f in e["fields"]]
    assert "1e999" in raws


# --- WebSocket ---------------------------------------------------------------------------------


def websocket_flow(*messages: websocket.WebSocketMessage) -> http.HTTPFlow:
    flow = tflow.twebsocketflow(messages=False)
    assert flow.websocket is not None
    flow.websocket.messages = list(messages)
    return flow


def add_message(flow: http.HTTPFlow, content: bytes, from_client: bool = True) -> None:
    assert flow.websocket is not None
    kind = Opcode.TEXT if content[:1] in b"{[<42" else Opcode.BINARY
    flow.websocket.messages.append(websocket.WebSocketMessage(kind, from_client, content))


def test_websocket_messages(tctx: taddons.context, addon: Any, tmp_path: Path) -> None:
    tctx.configure(addon, mutecheck_block=True)
    flow = websocket_flow()
    add_message(flow, (FIXTURES / "socketio_answer.txt").read_bytes(), from_client=False)
    addon.websocket_message(flow)
    add_message(flow, (FIXTURES / "jitsi_presence_muted.xml").read_bytes())
    addon.websocket_message(flow)
    assert addon.monitor.muted
    add_message(flow, gzip.compress(b'{"audioLevel": 0.4}', mtime=0))  # a binary frame
    addon.websocket_message(flow)
    assert flow.websocket is not None and flow.websocket.messages[-1].dropped
    add_message(flow, b'{"chat": "hi"}')
    addon.websocket_message(flow)
    assert not flow.websocket.messages[-1].dropped
    events = events_in(tmp_path / "session")
    assert kinds(events)[1:] == ["sdp", "mute", "telemetry", "blocked", "warning"]
    assert events[1]["flow"]["type"] == "websocket" and events[1]["flow"]["message"] == 0
    assert events[1]["flow"]["url"] == "ws://example.com/ws"
    assert events[2]["source"] == "app" and events[2]["evidence"]["xml"].startswith("<audiomuted")
    assert events[3]["encoding"] == ["gzip", "json"]


def test_websocket_redact(tctx: taddons.context, addon: Any) -> None:
    tctx.configure(addon, mutecheck_block=True, mutecheck_block_action="redact")
    addon.mark("muted")
    flow = websocket_flow()
    add_message(flow, b'42["stats",{"audio":{"level":0.31,"codec":"opus"}}]')
    addon.websocket_message(flow)
    assert flow.websocket is not None
    last = flow.websocket.messages[-1]
    assert not last.dropped
    assert last.content == b'42["stats",{"audio":{"level":null,"codec":"opus"}}]'


# --- UDP ---------------------------------------------------------------------------------------


def test_udp_media_while_muted(
    tctx: taddons.context, addon: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = CAPTURES / "chromium-ui-only"
    offer = json.dumps({"type": "offer", "sdp": (session / "offer.sdp").read_bytes().decode()})
    addon.request(request_flow("http://10.77.0.2:8080/offer", offer.encode()))
    addon.mark("muted")
    flow = tflow.tudpflow(messages=[])
    time.sleep(0.01)
    with caplog.at_level(logging.WARNING):
        for payload in muted_rtp(session)[:20]:  # at the browser's pace: one each 20 ms
            flow.messages.append(udp.UDPMessage(True, payload))
            addon.udp_message(flow)
            time.sleep(0.02)
    # warned live, once a packet has been held mutecheck_hold_ms (300) without an unmute mark
    assert any("MUTED but audio is not silent" in r.getMessage() for r in caplog.records)
    addon.done()
    media = [e for e in events_in(tmp_path / "session") if e["kind"] == "media"]
    assert media[0]["phase"] == "stream" and media[0]["audio_level_id"] == 1
    assert media[-1]["phase"] == "muted-window" and media[-1]["not_silent"] > 0


# --- TCP: TURN through CONNECT -----------------------------------------------------------------


def relayed_call(session: Path) -> tuple[TurnCall, int, int]:
    """The browser's RTP of a lab session relayed over TURN/TCP: 40 packets from before the
    mute, 40 from the middle of it. Also the offset of the first muted packet's message in the
    client's byte stream, and how many messages carry muted packets."""
    start, end = json.loads((session / "timeline.json").read_text())["muted"][0]
    packets = browser_rtp(session)
    before = [p for p in packets if p[0] < start - 0.5][-40:]
    during = [p for p in packets if start + 0.5 < p[0] < end - 0.5][:40]
    call = turn_call(before + during, lab_peer(session))
    boundary = sum(len(data) for _, data in call.client[: len(call.client) - len(during)])
    return call, boundary, len(during)


def pieces_of(data: bytes, seed: int) -> list[bytes]:
    """``data`` cut as TCP reads might return it (split messages, several run together)."""
    return [piece for _, piece in cut([(0.0, data)], seed)]


def tcp_flow(server: tuple[str, int], *, tls: bool) -> tcp.TCPFlow:
    flow = tflow.ttcpflow(messages=[])
    flow.server_conn.address = server
    if not tls:  # tflow's client did TLS with the proxy; a plain turn: client did not
        flow.client_conn.timestamp_tls_setup = None
    assert flow.client_conn.tls_established is tls
    return flow


def send_tcp(addon: Any, flow: tcp.TCPFlow, data: bytes, from_client: bool = True) -> None:
    flow.messages.append(tcp.TCPMessage(from_client, data))
    addon.tcp_message(flow)


@pytest.mark.parametrize(
    ("session", "tls"), [("chromium-ui-only", False), ("chromium-track-disabled", True)]
)
def test_turn_over_tcp_and_tls_media_while_muted(
    tctx: taddons.context,
    addon: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    session: str,
    tls: bool,
) -> None:
    """A relayed call through CONNECT: the client's stream cut anywhere, the server's answers
    in between, the mute marked in the middle of a message."""
    folder = CAPTURES / session
    offer = json.dumps({"type": "offer", "sdp": (folder / "offer.sdp").read_bytes().decode()})
    addon.request(request_flow("http://10.77.0.2:8080/offer", offer.encode()))
    call, boundary, muted_packets = relayed_call(folder)
    flow = tcp_flow(("10.77.0.3", 5349 if tls else 3478), tls=tls)
    stream = b"".join(data for _, data in call.client)
    answers = [data for _, data in call.server]
    with caplog.at_level(logging.WARNING):
        for number, piece in enumerate(pieces_of(stream[: boundary + 10], seed=2)):
            send_tcp(addon, flow, piece)
            if number < len(answers):
                send_tcp(addon, flow, answers[number], from_client=False)
        addon.mark("muted")  # the first muted packet's message is cut by the mark
        for piece in pieces_of(stream[boundary + 10 :], seed=3):
            send_tcp(addon, flow, piece)
        addon.mark("unmuted")
        addon.tcp_end(flow)
    assert addon._tcp == {} and len(addon.monitor._relays) == 0  # framers dropped at the end
    leaking = session == "chromium-ui-only"
    warned = [r.getMessage() for r in caplog.records if "MUTED but audio" in r.getMessage()]
    transport = "TURN/TLS" if tls else "TURN/TCP"
    assert len(warned) == (1 if leaking else 0)
    assert all(f"audio is not silent: {transport} " in line for line in warned)
    addon.done()
    media = [e for e in events_in(tmp_path / "session") if e["kind"] == "media"]
    (stream_event,) = [e for e in media if e["phase"] == "stream"]
    host, port = call.peer
    assert stream_event["transport"] == ("turn-tls" if tls else "turn-tcp")
    assert stream_event["turn_server"] == f"10.77.0.3:{5349 if tls else 3478}"
    assert (stream_event["via"], stream_event["peer"]) == ("turn-send", f"{host}:{port}")
    assert stream_event["audio_level_id"] == 1 and stream_event["flow"]["type"] == "tcp"
    windows = [e for e in media if e["phase"] == "muted-window"]
    assert sum(w["packets"] for w in windows) == muted_packets
    assert sum(w["not_silent"] for w in windows) == (muted_packets if leaking else 0)
    if not leaking:
        assert all(w["level_min"] == w["level_max"] == 127 for w in windows)
    (relay,) = [e for e in media if e["phase"] == "relay"]
    assert relay["sent"] == {"messages": len(call.client), "skipped_bytes": 0}
    assert relay["received"] == {"messages": len(call.server), "skipped_bytes": 0}


@pytest.mark.parametrize(
    "first",
    [
        (True, b"hello"),
        (False, b"220 smtp.example.org ESMTP\r\n"),  # the server speaks first
        (True, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(40)),  # TLS not intercepted
        (True, b"EHLO x\r\n"),
    ],
)
def test_other_tcp_is_decided_once_and_ignored(
    tctx: taddons.context, addon: Any, first: tuple[bool, bytes]
) -> None:
    addon.mark("muted")
    flow = tcp_flow(("192.0.2.1", 25), tls=False)
    send_tcp(addon, flow, first[1], from_client=first[0])
    assert addon._tcp == {flow.id: None}
    payload = browser_rtp(CAPTURES / "chromium-ui-only")[100][1]
    for _ in range(3):  # later bytes, even TURN-looking ones, are not looked at
        send_tcp(addon, flow, turn_call([(0.0, payload)], ("10.0.0.1", 9)).client[0][1])
    assert addon.monitor.counters["turn_messages"] == 0 and len(addon.monitor._relays) == 0
    addon.tcp_error(flow)
    assert addon._tcp == {} and addon._errors == 0


def test_a_broken_turn_stream_never_escapes_a_hook(
    tctx: taddons.context, addon: Any, tmp_path: Path
) -> None:
    addon.mark("muted")
    call = turn_call(browser_rtp(CAPTURES / "chromium-ui-only")[:5], ("10.77.0.2", 9))
    flow = tcp_flow(("10.77.0.3", 3478), tls=False)
    send_tcp(addon, flow, call.client[0][1])  # an Allocate: read as TURN
    for junk in (b"\xff" * 7, bytes(range(256)) * 8, b"\x40\x00\xff\xff", b"\x00\x16\x00\x04"):
        send_tcp(addon, flow, junk)
        send_tcp(addon, flow, junk, from_client=False)
    addon.tcp_end(flow)
    assert addon._errors == 0
    addon.done()
    events = events_in(tmp_path / "session")
    (warning,) = [e for e in events if e["kind"] == "warning"]
    assert warning["code"] == "turn-framing" and warning["flow"]["type"] == "tcp"


# --- robustness --------------------------------------------------------------------------------


class _Exploding(Monitor):
    """Our own monitor with a bug, to show a hook never lets it out (mitmproxy is not mocked)."""

    def observe(self, message: Any, t: float) -> Any:
        raise RuntimeError("boom")


def test_no_exception_escapes_a_hook(
    tctx: taddons.context, addon: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    addon.running()
    addon.monitor = _Exploding()
    flow = request_flow("https://metrics.example.org/v1/m", WEBEX)
    with caplog.at_level(logging.WARNING):
        assert addon.request(flow) is None
        addon.websocket_message(websocket_flow())  # no messages at all
    assert flow.response is None and flow.request.content == WEBEX
    (warning,) = [e for e in events_in(tmp_path / "session") if e["kind"] == "warning"]
    assert warning["code"] == "internal-error" and "RuntimeError: boom" in warning["message"]
    assert warning["flow"] == {"id": flow.id}
    assert any("request failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00" * 100,
        b"{" * 100_000,  # (a volume field of 5,000 digits is telemetry: see HOSTILE above)
        b"\x1f\x8b" + b"\x00" * 50,
        b"<" + b"a" * 10000,
        b"v=0\r\nm=audio 1 RTP/AVP 0\r\n",
        '{"a": "\ud800"}'.encode("utf-8", "surrogatepass"),
        gzip.compress(b"[" * 200_000, mtime=0),
    ],
)
def test_hostile_bodies_pass_untouched(tctx: taddons.context, addon: Any, body: bytes) -> None:
    tctx.configure(addon, mutecheck_block=True)
    addon.mark("muted")
    flow = request_flow(
        "https://x.example.org/p", body, headers={"content-type": "application/json"}
    )
    addon.request(flow)
    assert flow.response is None and flow.request.raw_content == body
    assert addon._errors == 0


def test_streamed_bodies_are_skipped(tctx: taddons.context, addon: Any) -> None:
    flow = request_flow("https://x.example.org/p", b"")
    flow.request.data.content = None  # what stream_large_bodies leaves
    addon.request(flow)
    assert addon._errors == 0


# --- live: a real mitmdump ---------------------------------------------------------------------


@dataclass
class Received:
    """What the upstream server got: (path, headers, body) per request; WebSocket messages."""

    http: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    websocket: list[str | bytes] = field(default_factory=list)


class Upstream:
    """A real HTTP + WebSocket server on 127.0.0.1 (tornado, a mitmproxy dependency), run in a
    thread. ``POST /offer`` answers with SDP; other paths record the body; ``/ws`` records every
    message and answers ``sync`` with ``ack <n>``."""

    def __init__(self) -> None:
        self.received = Received()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(TIMEOUT):
            raise RuntimeError("upstream server did not start")

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        received = self.received

        class Page(tornado.web.RequestHandler):
            def post(self, path: str) -> None:
                received.http.append((path, dict(self.request.headers), self.request.body))
                if path == "offer":
                    self.write({"type": "answer", "sdp": ANSWER_SDP})
                else:
                    self.write({"ok": True})

        class Socket(tornado.websocket.WebSocketHandler):
            def on_message(self, message: str | bytes) -> None:
                if message == "sync":
                    self.write_message(f"ack {len(received.websocket)}")
                else:
                    received.websocket.append(message)

        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(
            tornado.web.Application([(r"/ws", Socket), (r"/(.*)", Page)])
        )
        server.add_sockets(sockets)
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            server.stop()
            loop.close()


class Mitmdump:
    """``mitmdump -s addons/mutecheck.py`` on free loopback ports; ``lines`` is its output."""

    def __init__(self, arguments: list[str], confdir: Path) -> None:
        beside = Path(sys.executable).parent / "mitmdump"
        binary = str(beside) if beside.is_file() else shutil.which("mitmdump")
        assert binary is not None, "mitmdump comes with the mitmproxy dependency"
        command = [binary, "--listen-host", "127.0.0.1", "--set", f"confdir={confdir}"]
        if not any(argument.startswith("--mode") for argument in arguments):
            command += ["--listen-port", "0"]
        command += ["-s", str(ADDON), *arguments]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str) -> re.Match[str]:
        compiled = re.compile(pattern)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := compiled.search(line):
                    return match
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"mitmdump never printed {pattern!r}:\n" + "\n".join(self.lines))

    def port(self, what: str = r"HTTP\(S\) proxy") -> int:
        return int(self.wait_for(what + r" listening at 127\.0\.0\.1:(\d+)").group(1))

    def stop(self) -> int | None:
        """SIGTERM, so mitmproxy shuts down and runs ``done``; SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        return self.process.returncode


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mitmproxy confdir (its CA) for the live tests; never ~/.mitmproxy."""
    return tmp_path_factory.mktemp("mitmproxy-conf")


@pytest.fixture
def start_mitmdump(confdir: Path) -> Iterator[Any]:
    started: list[Mitmdump] = []

    def start(arguments: list[str]) -> Mitmdump:
        started.append(Mitmdump(arguments, confdir))
        return started[-1]

    try:
        yield start
    finally:
        for proxy in started:
            proxy.stop()


def proxy_request(
    proxy_port: int, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request in absolute form through the proxy (no proxy variables can route around it)."""
    connection = HTTPConnection("127.0.0.1", proxy_port, timeout=TIMEOUT)
    try:
        connection.request(method, url, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def mark(proxy_port: int, state: str) -> None:
    status, body = proxy_request(proxy_port, "GET", f"http://mutecheck.mark/{state}")
    assert status == 200 and json.loads(body)["marked"] == state


def mark_over_tls(proxy_port: int, state: str) -> None:
    """``https://mutecheck.mark/<state>`` through a CONNECT tunnel, as a page on HTTPS would."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # mitmproxy's certificate, from this test's confdir
    connection = HTTPSConnection("127.0.0.1", proxy_port, timeout=TIMEOUT, context=context)
    try:
        connection.set_tunnel("mutecheck.mark", 443)
        connection.request("GET", f"/{state}")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["marked"] == state
    finally:
        connection.close()


class WebSocketClient:
    """wsproto through the proxy the way browsers do it: CONNECT, then the upgrade inside."""

    def __init__(self, proxy_port: int, port: int, path: str) -> None:
        self.socket = socket.create_connection(("127.0.0.1", proxy_port), timeout=TIMEOUT)
        authority = f"127.0.0.1:{port}"
        self.socket.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = self.socket.recv(4096)
            assert chunk, "the proxy closed the CONNECT"
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply
        self.connection = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.socket.sendall(self.connection.send(Request(host=authority, target=path)))
        self._pending: list[Event] = []
        self._next(AcceptConnection)

    def _next(self, kind: type[Event]) -> Event:
        while True:
            for position, event in enumerate(self._pending):
                if isinstance(event, kind):
                    return self._pending.pop(position)
            data = self.socket.recv(65536)
            assert data, "the WebSocket closed"
            self.connection.receive_data(data)
            for event in self.connection.events():
                if isinstance(event, Ping):
                    self.socket.sendall(self.connection.send(event.response()))
                else:
                    self._pending.append(event)

    def send(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.socket.sendall(self.connection.send(TextMessage(data=message)))
        else:
            self.socket.sendall(self.connection.send(BytesMessage(data=message)))

    def sync(self) -> int:
        """How many messages the server holds, once everything sent before has arrived."""
        self.send("sync")
        event = self._next(TextMessage)
        assert isinstance(event, TextMessage) and event.data.startswith("ack ")
        return int(event.data[4:])

    def close(self) -> None:
        with contextlib.suppress(OSError, wsproto.utilities.LocalProtocolError):
            self.socket.sendall(self.connection.send(CloseConnection(code=1000)))
        self.socket.close()


def test_live_loading_prints_nothing_at_warning_level(confdir: Path, tmp_path: Path) -> None:
    """``mitmdump -s addons/mutecheck.py`` with only warnings shown prints nothing at all."""
    empty = tmp_path / "empty.mitm"
    empty.write_bytes(b"")
    beside = Path(sys.executable).parent / "mitmdump"
    binary = str(beside) if beside.is_file() else "mitmdump"
    result = subprocess.run(
        [
            binary,
            "-n",
            "-r",
            str(empty),
            "-s",
            str(ADDON),
            "--set",
            f"confdir={confdir}",
            "--set",
            "termlog_verbosity=warn",
            "--set",
            f"mutecheck_dir={tmp_path / 'session'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0
    assert result.stdout == "" and result.stderr == ""
    assert kinds(events_in(tmp_path / "session")) == ["session_start"]


def test_live_http_and_websocket_with_blocking(
    start_mitmdump: Any, upstream: Upstream, tmp_path: Path
) -> None:
    folder = tmp_path / "session"
    proxy = start_mitmdump(
        [
            "--set",
            f"mutecheck_dir={folder}",
            "--set",
            "mutecheck_block=true",
            "--set",
            "mutecheck_grace_ms=0",
        ]
    )
    port = proxy.port()
    base = f"http://127.0.0.1:{upstream.port}"
    status, answer = proxy_request(
        port, "POST", f"{base}/offer", OFFER_JSON, {"Content-Type": "application/json"}
    )
    assert status == 200 and json.loads(answer)["type"] == "answer"
    telemetry = json.dumps({"audioLevel": 0.21}).encode()
    assert proxy_request(port, "POST", f"{base}/telemetry", telemetry)[0] == 200  # not muted yet

    mark(port, "muted")
    gzipped = gzip.compress(WEBEX, mtime=0)
    status, body = proxy_request(
        port, "POST", f"{base}/metrics", gzipped, {"Content-Encoding": "gzip"}
    )
    assert (status, body) == (204, b"")  # blocked: it never reached the server
    assert proxy_request(port, "POST", f"{base}/chat", b'{"text":"hi"}')[0] == 200

    client = WebSocketClient(port, upstream.port, "/ws")
    try:
        client.send('{"type":"ping"}')
        client.send('{"stats":{"audio":{"level":0.33}}}')  # volume while muted: dropped
        assert client.sync() == 1
        client.send((FIXTURES / "jitsi_presence_unmuted.xml").read_text())  # the app: unmuted
        client.send('{"stats":{"audio":{"level":0.34}}}')  # now it may pass
        assert client.sync() == 3
    finally:
        client.close()
    mark(port, "unmuted")
    assert proxy_request(port, "POST", f"{base}/telemetry", telemetry)[0] == 200
    proxy.wait_for("mutecheck: MUTED but volume telemetry left")
    assert proxy.stop() == 0

    paths = [path for path, _, _ in upstream.received.http]
    assert paths == ["offer", "telemetry", "chat", "telemetry"]  # no "metrics"
    assert upstream.received.websocket == [
        '{"type":"ping"}',
        (FIXTURES / "jitsi_presence_unmuted.xml").read_text(),
        '{"stats":{"audio":{"level":0.34}}}',
    ]
    events = events_in(folder)
    assert events[0]["kind"] == "session_start"
    sdps = [(e["direction"], e["role"]) for e in events if e["kind"] == "sdp"]
    assert sdps == [("sent", "offer"), ("received", "answer")]
    mutes = [(e["source"], e["state"]) for e in events if e["kind"] == "mute"]
    assert mutes == [("mark", "muted"), ("app", "unmuted"), ("mark", "unmuted")]
    findings = [e for e in events if e["kind"] == "telemetry" and e["finding"]]
    assert [f["endpoint"] for f in findings] == [
        f"{base}/metrics",
        f"ws://127.0.0.1:{upstream.port}/ws",
    ]
    assert findings[0]["encoding"] == ["gzip", "json"]
    blocked = [(e["action"], e["flow"]["type"]) for e in events if e["kind"] == "blocked"]
    assert blocked == [("dropped", "http"), ("dropped", "websocket")]
    warnings = [e["code"] for e in events if e["kind"] == "warning"]
    assert warnings == ["telemetry-while-muted", "telemetry-while-muted"]
    with (folder / "flows.mitm").open("rb") as stream:
        flows = list(io.FlowReader(stream).stream())
    # the flows that gave events (not the chat), written by the addon's writer process
    assert [f.request.path for f in flows] == [
        "/offer",
        "/telemetry",
        "/muted",
        "/metrics",
        "/ws",
        "/unmuted",
        "/telemetry",
    ]
    assert flows[3].response.status_code == 204 and flows[4].websocket is not None
    saved_messages = flows[4].websocket.messages
    assert len(saved_messages) == 8 and saved_messages[1].dropped  # 4 sent, 2 syncs, 2 acks
    assert not any("Traceback" in line for line in proxy.lines)


def test_live_redact_lets_the_rest_through(
    start_mitmdump: Any, upstream: Upstream, tmp_path: Path
) -> None:
    folder = tmp_path / "session"
    proxy = start_mitmdump(
        [
            "--set",
            f"mutecheck_dir={folder}",
            "--set",
            "mutecheck_block=true",
            "--set",
            "mutecheck_block_action=redact",
            "--set",
            "mutecheck_grace_ms=0",
        ]
    )
    port = proxy.port()
    mark_over_tls(port, "muted")
    base = f"http://127.0.0.1:{upstream.port}"
    assert proxy_request(port, "POST", f"{base}/metrics", WEBEX)[0] == 200
    client = WebSocketClient(port, upstream.port, "/ws")
    try:
        client.send('{"audioLevel":0.5,"seq":7}')
        assert client.sync() == 1
    finally:
        client.close()
    assert proxy.stop() == 0
    ((path, _, body),) = upstream.received.http
    assert path == "metrics" and find_volume_fields(parse_document(body)) == ()
    assert json.loads(body)["metrics"][0]["metricName"] == "MQE"
    assert upstream.received.websocket == ['{"audioLevel":null,"seq":7}']
    events = events_in(folder)
    assert [e["action"] for e in events if e["kind"] == "blocked"] == ["redacted", "redacted"]
    (marked,) = [e for e in events if e["kind"] == "mute"]
    assert marked["evidence"] == {"via": "url"} and marked["state"] == "muted"


def test_live_udp_media_through_reverse_mode(
    start_mitmdump: Any, upstream: Upstream, tmp_path: Path
) -> None:
    """The browser's RTP from two lab sessions, replayed through ``reverse:udp`` while muted:
    ui-only (speech on the wire) warns, track-disabled (audio level 127, silence) does not."""
    folder = tmp_path / "session"
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(TIMEOUT)
    sessions = [CAPTURES / "chromium-ui-only", CAPTURES / "chromium-track-disabled"]
    try:
        target = receiver.getsockname()[1]
        proxy = start_mitmdump(
            [
                "--mode",
                "regular@0",
                "--mode",
                f"reverse:udp://127.0.0.1:{target}@0",
                "--set",
                f"mutecheck_dir={folder}",
                "--set",
                "mutecheck_grace_ms=0",
            ]
        )
        http_port = proxy.port()
        udp_port = proxy.port(r"reverse proxy to udp://127\.0\.0\.1:\d+")
        for session in sessions:  # the signaling says which extension id is the audio level
            offer = {"type": "offer", "sdp": (session / "offer.sdp").read_bytes().decode()}
            status, _ = proxy_request(
                http_port,
                "POST",
                f"http://127.0.0.1:{upstream.port}/offer",
                json.dumps(offer).encode(),
                {"Content-Type": "application/json"},
            )
            assert status == 200
        mark(http_port, "muted")
        forwarded = 0
        for session in sessions:
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                for payload in muted_rtp(session)[:25]:  # at the browser's pace (20 ms)
                    sender.sendto(payload, ("127.0.0.1", udp_port))
                    assert receiver.recv(2048) == payload  # mitmproxy forwarded it unchanged
                    forwarded += 1
                    time.sleep(0.02)
            finally:
                sender.close()
        assert forwarded == 50
        proxy.wait_for("MUTED but audio is not silent")
        # mitmproxy 12's Rust UDP server sometimes segfaults while shutting down, also without
        # any addon (mitmproxy/mitmproxy#7409, #5708); by then ``done`` has run (checked below)
        assert proxy.stop() in (0, -signal.SIGSEGV)
    finally:
        receiver.close()
    events = events_in(folder)
    ssrcs = [
        parse_sdp((session / "offer.sdp").read_bytes().decode()).audio[0].ssrcs[0]
        for session in sessions
    ]
    streams = [e for e in events if e["kind"] == "media" and e["phase"] == "stream"]
    assert [(s["ssrc"], s["audio_level_id"], s["flow"]["type"]) for s in streams] == [
        (ssrcs[0], 1, "udp"),
        (ssrcs[1], 1, "udp"),
    ]
    (warning,) = [e for e in events if e["kind"] == "warning"]
    assert warning["code"] == "media-while-muted" and f"SSRC {ssrcs[0]}" in warning["message"]
    windows = [e for e in events if e["kind"] == "media" and e["phase"] == "muted-window"]
    leaking = [w for w in windows if w["ssrc"] == ssrcs[0]]
    silent = [w for w in windows if w["ssrc"] == ssrcs[1]]
    assert sum(w["packets"] for w in leaking) == 25 and sum(w["not_silent"] for w in leaking) == 25
    assert sum(w["packets"] for w in silent) == 25 and sum(w["not_silent"] for w in silent) == 0
    assert all(w["level_min"] == 127 for w in silent)


class TurnServer:
    """A TURN server's TCP side on 127.0.0.1, enough for the addon to watch a relayed call: it
    cuts what it receives into TURN messages (the project's framer), answers each request with
    a success response (an Allocate with a relayed address) and keeps every byte. With a
    certificate it speaks TLS first, as a ``turns:`` server does."""

    def __init__(self, certificate: tuple[Path, Path] | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received: dict[int, bytearray] = {}
        self._tls: ssl.SSLContext | None = None
        if certificate is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*certificate)
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.listener.accept()
                thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        number = len(self.received)
        self.received[number] = buffer = bytearray()
        framer = TurnTcpFramer(synced=True)
        with contextlib.suppress(OSError), contextlib.closing(connection):
            if self._tls is not None:
                connection = self._tls.wrap_socket(connection, server_side=True)
            while data := connection.recv(65536):
                buffer += data
                for message in framer.feed(data):
                    kind = int.from_bytes(message[:2], "big")
                    if message[0] < 0x40 and kind & 0x0110 == 0:  # a request: answer it
                        attributes = []
                        if kind == ALLOCATE_REQUEST:
                            attributes = [(XOR_RELAYED_ADDRESS, xor_address("127.0.0.1", 49152))]
                        connection.sendall(stun_message(kind | 0x0100, message[8:20], attributes))

    def wait_for(self, connection: int, size: int) -> bytes:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            got = self.received.get(connection, b"")
            if len(got) >= size:
                return bytes(got)
            time.sleep(0.01)
        raise AssertionError(
            f"the TURN server got {len(self.received.get(connection, b''))} "
            f"of {size} bytes on connection {connection}"
        )

    def close(self) -> None:
        self.listener.close()
        for thread in self._threads:
            thread.join(TIMEOUT)


class TurnClient:
    """The browser's side: CONNECT through the proxy (as Chromium does for TURN over TCP and
    TLS), optionally TLS inside the tunnel, then TURN messages; requests wait for their answer."""

    def __init__(self, proxy_port: int, server_port: int, *, tls: bool) -> None:
        sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=TIMEOUT)
        authority = f"127.0.0.1:{server_port}"
        sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            assert chunk, "the proxy closed the CONNECT"
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # mitmproxy's certificate for the TURN server
            sock = context.wrap_socket(sock)
        self.socket = sock
        self.sent = 0

    def request(self, message: bytes) -> bytes:
        self.send(message)
        answer = b""
        while len(answer) < 20 or len(answer) < 20 + int.from_bytes(answer[2:4], "big"):
            chunk = self.socket.recv(4096)
            assert chunk, "the TURN server went away"
            answer += chunk
        assert answer[8:20] == message[8:20] and answer[0:2] == bytes([message[0] | 1, message[1]])
        return answer

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)
        self.sent += len(data)

    def send_cut(self, data: bytes, seed: int) -> None:
        """``data`` in pieces, so that mitmproxy reads messages split and run together."""
        for piece in pieces_of(data, seed):
            self.send(piece)
            time.sleep(0.002)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.socket.close()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the TURN server (with mitmproxy's own helper)."""
    key, certificate = certs.create_ca("mutecheck test TURN server", "127.0.0.1", 2048)
    key_file, certificate_file = folder / "turn-key.pem", folder / "turn-cert.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certificate_file, key_file


def test_live_turn_over_tcp_and_tls_through_connect(
    start_mitmdump: Any, upstream: Upstream, tmp_path: Path
) -> None:
    """Two relayed calls through a real mitmdump as Chromium sends them with a proxy: ui-only
    over TURN/TCP, track-disabled over TURN/TLS (the proxy terminates the browser's TLS and
    speaks TLS to a TURN server with a self-signed certificate). Muted in the middle: the
    speech relayed over TCP warns with its levels, the silence relayed over TLS does not."""
    folder = tmp_path / "session"
    plain, secure = TurnServer(), TurnServer(self_signed(tmp_path))
    sessions = [CAPTURES / "chromium-ui-only", CAPTURES / "chromium-track-disabled"]
    clients: list[TurnClient] = []
    try:
        proxy = start_mitmdump(
            [
                "--set",
                f"mutecheck_dir={folder}",
                "--set",
                "mutecheck_grace_ms=0",
                "--set",
                "ssl_insecure=true",
            ]
        )
        port = proxy.port()
        for session in sessions:  # the signaling says which extension id is the audio level
            offer = {"type": "offer", "sdp": (session / "offer.sdp").read_bytes().decode()}
            status, _ = proxy_request(
                port,
                "POST",
                f"http://127.0.0.1:{upstream.port}/offer",
                json.dumps(offer).encode(),
                {"Content-Type": "application/json"},
            )
            assert status == 200
        calls = [relayed_call(session) for session in sessions]
        for server, tls in ((plain, False), (secure, True)):
            clients.append(TurnClient(port, server.port, tls=tls))
        streams = [b"".join(data for _, data in call.client) for call, _, _ in calls]
        for client, call in zip(clients, calls, strict=True):
            client.request(call[0].client[0][1])  # Allocate
            client.request(call[0].client[1][1])  # ChannelBind
        cuts = [len(call[0].client[0][1]) + len(call[0].client[1][1]) for call in calls]
        for number, (client, stream, call) in enumerate(zip(clients, streams, calls, strict=True)):
            client.send_cut(stream[cuts[number] : call[1]], seed=number)  # unmuted
        for server, client in ((plain, clients[0]), (secure, clients[1])):
            server.wait_for(0, client.sent)  # mitmproxy has seen it all before the mark
        mark(port, "muted")
        for number, (client, stream, call) in enumerate(zip(clients, streams, calls, strict=True)):
            client.send_cut(stream[call[1] :], seed=10 + number)
        for server, client, stream in zip((plain, secure), clients, streams, strict=True):
            assert server.wait_for(0, client.sent) == stream  # forwarded unchanged
        mark(port, "unmuted")
        for client in clients:
            client.close()
        proxy.wait_for("MUTED but audio is not silent: TURN/TCP")
        time.sleep(0.3)  # the proxy sees both connections end
        assert proxy.stop() == 0
    finally:
        for client in clients:
            client.close()
        plain.close()
        secure.close()
    assert not any("Traceback" in line for line in proxy.lines)
    events = events_in(folder)
    ssrcs = [
        parse_sdp((session / "offer.sdp").read_bytes().decode()).audio[0].ssrcs[0]
        for session in sessions
    ]
    started = [e for e in events if e["kind"] == "media" and e["phase"] == "stream"]
    assert [(s["ssrc"], s["transport"], s["audio_level_id"], s["via"]) for s in started] == [
        (ssrcs[0], "turn-tcp", 1, "turn-send"),
        (ssrcs[1], "turn-tls", 1, "turn-send"),
    ]
    assert [s["turn_server"] for s in started] == [
        f"127.0.0.1:{plain.port}",
        f"127.0.0.1:{secure.port}",
    ]
    assert [s["peer"] for s in started] == ["{}:{}".format(*call.peer) for call, _, _ in calls]
    (warning,) = [e for e in events if e["kind"] == "warning"]
    assert warning["code"] == "media-while-muted" and f"SSRC {ssrcs[0]}" in warning["message"]
    windows = [e for e in events if e["kind"] == "media" and e["phase"] == "muted-window"]
    leaking = [w for w in windows if w["ssrc"] == ssrcs[0]]
    silent = [w for w in windows if w["ssrc"] == ssrcs[1]]
    muted_packets = [call[2] for call in calls]
    assert sum(w["packets"] for w in leaking) == muted_packets[0]
    assert sum(w["not_silent"] for w in leaking) == muted_packets[0]
    assert max(w["level_max"] for w in leaking) < 100
    assert sum(w["packets"] for w in silent) == muted_packets[1]
    assert all(w["level_min"] == w["level_max"] == 127 for w in silent)
    relays = sorted(
        (e for e in events if e["kind"] == "media" and e["phase"] == "relay"),
        key=lambda e: e["transport"],
    )
    assert [(r["transport"], r["sent"]) for r in relays] == [
        ("turn-tcp", {"messages": len(calls[0][0].client), "skipped_bytes": 0}),
        ("turn-tls", {"messages": len(calls[1][0].client), "skipped_bytes": 0}),
    ]
    assert all(r["received"] == {"messages": 2, "skipped_bytes": 0} for r in relays)


# --- the apps' own mute signals: Janus, as janus.js sends it -------------------------------------


def feed_janus(addon: Any, flows: list[http.HTTPFlow], transport: str) -> None:
    """Hand a Janus call's flows to the addon as mitmproxy would: each WebSocket message as it
    arrives; each REST request, then its response."""
    if transport == "rest":
        for flow in flows:
            response, flow.response = flow.response, None
            addon.request(flow)
            flow.response = response
            addon.response(flow)
        return
    (flow,) = flows
    assert flow.websocket is not None
    messages, flow.websocket.messages = flow.websocket.messages, []
    addon.request(flow)
    addon.response(flow)
    for item in messages:
        flow.websocket.messages.append(item)
        addon.websocket_message(flow)
    addon.websocket_end(flow)


JANUS_MUTES = [(3.0, 6.0), (8.0, 9.5)]


@pytest.mark.parametrize("transport", ["ws", "rest"])
@pytest.mark.parametrize("demo", ["audiobridge", "echotest", "videocall", "videoroom"])
def test_janus_demos_mute_controls_are_read_by_the_builtin_rules(
    tctx: taddons.context, addon: Any, tmp_path: Path, demo: str, transport: str
) -> None:
    t0 = 1_796_000_000.0
    steps = janus.demo_call(demo, transport, t0, JANUS_MUTES)  # type: ignore[arg-type]
    feed_janus(addon, janus.flows(steps, transport), transport)  # type: ignore[arg-type]
    rule_events = [
        e for e in events_in(tmp_path / "session") if e["kind"] == "mute" and e["source"] == "rule"
    ]
    plugin = janus.DEMO_PLUGIN[demo]
    name = builtin_rule_of(plugin)
    if demo == "videoroom":  # muteAudio() sends nothing: only the publish's audio: true
        assert [(e["state"], e["t"]) for e in rule_events] == [("unmuted", t0 + 0.5)]
        return
    first = [] if demo == "videocall" else [("unmuted", t0 + 0.5)]  # its publish: {request: set}
    expected = first + [
        (state, t0 + at)
        for start, end in JANUS_MUTES
        for state, at in (("muted", start), ("unmuted", end))
    ]
    assert [(e["state"], e["t"]) for e in rule_events] == expected
    muted = rule_events[len(first)]
    assert muted["evidence"]["rule"] == name
    assert muted["evidence"]["scope"] == "server"
    assert muted["evidence"]["janus_plugin"] == plugin
    assert muted["evidence"]["path"] == ("body.muted" if demo == "audiobridge" else "body.audio")
    assert muted["flow"]["type"] == ("websocket" if transport == "ws" else "http")
    assert addon.monitor.timeline.source_state("rule") is False


def builtin_rule_of(plugin: str) -> str:
    """The built-in rule for the plugin's older-API mute field (VideoRoom also has one for Janus
    1.x's ``streams``, the second in its file)."""
    return next(rule.name for rule in builtin_rules() if rule.janus_plugin == plugin)


def test_janus_rules_need_the_plugin_and_can_be_turned_off(
    tctx: taddons.context, addon: Any, tmp_path: Path
) -> None:
    """EchoTest's ``{"audio": false}`` to a handle the proxy never saw attached (nor heard
    from) is not read as a mute (the same body means something else to other plugins); without
    built-in rules the VideoCall ``set`` is not read either (the generic recognisers do not know
    ``audio``)."""
    t0 = 1_796_000_000.0
    steps = janus.demo_call("echotest", "ws", t0, JANUS_MUTES)
    unattached = [step for step in steps if step.sent and b'"attach"' not in step.content]
    feed_janus(addon, janus.flows(unattached, "ws"), "ws")
    tctx.configure(addon, mutecheck_builtin_rules=False)
    feed_janus(
        addon,
        janus.flows(janus.demo_call("videocall", "rest", t0 + 20, JANUS_MUTES), "rest"),
        "rest",
    )
    log = tmp_path / "session" / "events.jsonl"
    assert [e for e in (events_in(log.parent) if log.exists() else []) if e["kind"] == "mute"] == []
    assert addon.monitor.timeline.source_state("rule") is None


def test_janus_rest_call_through_the_observer_replays_the_same(tmp_path: Path) -> None:
    """With the observer process and the default 'relevant' flows, the attach (which holds no
    keyword) is judged and kept in flows.mitm, so a replay reads the same rule events."""
    addon = ScriptAddons(ADDON)
    folder = tmp_path / "s"
    t0 = 1_796_000_000.0
    with taddons.context(addon) as context:
        context.configure(addon, mutecheck_dir=str(folder), mutecheck_grace_ms=0)
        addon.running()
        assert addon._observer is not None
        steps = janus.demo_call("audiobridge", "rest", t0, JANUS_MUTES)
        feed_janus(addon, janus.flows(steps, "rest"), "rest")
        addon.done()
    written = [e for e in events_in(folder) if e["kind"] == "mute" and e["source"] == "rule"]
    assert [e["state"] for e in written] == ["unmuted", "muted", "unmuted", "muted", "unmuted"]
    start = events_in(folder)[0]
    assert start["options"]["mutecheck_builtin_rules"] is True
    assert start["rules"] == [rule.name for rule in builtin_rules()]
    with (folder / "flows.mitm").open("rb") as stream:
        replayed = [
            e for e in replay_flows(stream) if e["kind"] == "mute" and e["source"] == "rule"
        ]
    assert [(e["t"], e["state"]) for e in replayed] == [(e["t"], e["state"]) for e in written]
