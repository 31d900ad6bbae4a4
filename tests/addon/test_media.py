"""Tests for decoders.addon.media: UDP datagrams and TURN over TCP reach the monitor; other TCP
is decided once and then costs a lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.script_addons import ScriptAddons
from helpers.turn_stream import browser_rtp, lab_peer, turn_call
from mitmproxy import tcp, udp
from mitmproxy.test import taddons, tflow

from decoders.addon.media import TURN_DECISION_MESSAGES

SESSION = Path(__file__).resolve().parent.parent.parent / "captures" / "chromium-ui-only"


def test_udp_datagrams_reach_the_monitor(tctx: taddons.context, script: ScriptAddons) -> None:
    media = script.get("Media")
    flow = tflow.tudpflow(messages=[])
    for _, payload in browser_rtp(SESSION)[:10]:
        flow.messages.append(udp.UDPMessage(True, payload))
        media.udp_message(flow)
    assert script.monitor.counters["datagrams"] == 10 and script.monitor.counters["rtp"] > 0
    assert flow.id in script.recorder.relevant  # it gave a 'media' event


def test_a_turn_stream_is_framed_and_forgotten_at_its_end(
    tctx: taddons.context, script: ScriptAddons, tmp_path: Path
) -> None:
    media = script.get("Media")
    call = turn_call(browser_rtp(SESSION)[:20], lab_peer(SESSION))
    flow = tflow.ttcpflow(messages=[])
    flow.client_conn.timestamp_tls_setup = None  # a plain turn: URL
    for _, data in call.client:
        flow.messages.append(tcp.TCPMessage(True, data))
        media.tcp_message(flow)
    assert script.monitor.counters["turn_messages"] == len(call.client)
    assert media._tcp[flow.id] is not None and flow.id in script.recorder.relevant
    media.tcp_end(flow)
    assert media._tcp == {}
    script.done()
    lines = (tmp_path / "session" / "events.jsonl").read_text().splitlines()
    relays = [e for e in map(json.loads, lines) if e.get("phase") == "relay"]
    assert relays and relays[0]["transport"] == "turn-tcp"


@pytest.mark.parametrize("pieces", [1, TURN_DECISION_MESSAGES])
def test_short_pieces_are_decided_within_the_limit(
    tctx: taddons.context, script: ScriptAddons, pieces: int
) -> None:
    """Too short to tell: decided again on each message, then 'not TURN' for good."""
    media = script.get("Media")
    flow = tflow.ttcpflow(messages=[])
    for _ in range(pieces):
        flow.messages.append(tcp.TCPMessage(True, b"\x00"))
        media.tcp_message(flow)
    assert media._tcp == ({} if pieces < TURN_DECISION_MESSAGES else {flow.id: None})
