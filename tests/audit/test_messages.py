"""Tests for decoders.audit.messages: telemetry from events, and flows replayed like the addon."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from helpers.corpus import lab_session
from mitmproxy import io as mitmio
from mitmproxy.test import tflow, tutils

from decoders.audit.messages import TelemetryMessage, replay_flows, telemetry_from_events
from decoders.session.events import make_event, read_events

CAPTURES = Path(__file__).resolve().parent.parent.parent / "captures"
T0 = 1_795_989_000.0


def test_telemetry_from_events() -> None:
    flow = {"id": "f1", "type": "websocket", "message": 4}
    events = [
        make_event(
            "telemetry",
            T0 + 2,
            endpoint="wss://a/ws",
            flow=flow,
            direction="sent",
            fields=[{"path": "audioLevel", "value": 0.2}, "junk", {"path": 3}],
        ),
        make_event(
            "telemetry",
            T0 + 1,
            endpoint="https://b",
            direction="sent",
            fields=[{"path": "vad", "value": True}],
        ),
        make_event(
            "telemetry",
            T0 + 3,
            endpoint="https://c",
            direction="received",
            fields=[{"path": "level", "value": 1}],
        ),
        make_event("telemetry", T0 + 4, endpoint="https://d", fields=[]),
        make_event("mute", T0, state="muted", source="mark"),
    ]
    messages = telemetry_from_events(events)
    assert messages == [
        TelemetryMessage(T0 + 1, "https://b", (("vad", True),)),
        TelemetryMessage(T0 + 2, "wss://a/ws", (("audioLevel", 0.2),), "f1", 4),
    ]
    assert messages[1].reference == "f1#4" and messages[0].reference == "?"


def flow_file(flows: list[Any]) -> io.BytesIO:
    buf = io.BytesIO()
    writer = mitmio.FlowWriter(buf)  # type: ignore[no-untyped-call]
    for flow in flows:
        writer.add(flow)
    buf.seek(0)
    return buf


def http_flow(url_host: str, path: str, content: bytes, t: float, method: bytes = b"POST") -> Any:
    request = tutils.treq(
        host=url_host,
        port=443,
        scheme=b"https",
        path=path.encode(),
        method=method,
        content=content,
    )
    request.timestamp_start, request.timestamp_end = t, t + 0.001
    request.headers["content-type"] = "application/json"
    flow = tflow.tflow(req=request)
    flow.response = None
    return flow


def mark(state: str, t: float) -> Any:
    flow = http_flow("mutecheck.mark", f"/{state}?t={t}", b"", t, method=b"GET")
    flow.request.scheme, flow.request.port = "http", 80
    return flow


def test_replay_gives_marks_and_telemetry() -> None:
    body = json.dumps({"stats": {"audioLevel": 0.25, "muted": True}}).encode()
    flows = [
        mark("muted", T0 + 1),
        http_flow("metrics.example", "/v1/stats", body, T0 + 2),
        http_flow("metrics.example", "/v1/other", b'{"hello": 1}', T0 + 3),
        mark("unmuted", T0 + 5),
    ]
    events = replay_flows(flow_file(flows))
    kinds = [(e["kind"], e.get("state"), e.get("source")) for e in events]
    assert ("mute", "muted", "mark") in kinds and ("mute", "unmuted", "mark") in kinds
    assert ("mute", "muted", "app") in kinds  # the body's "muted": true is an app signal
    (message,) = telemetry_from_events(events)
    assert message.endpoint == "https://metrics.example/v1/stats"
    assert message.fields == (("stats.audioLevel", 0.25),)
    assert message.t == pytest.approx(T0 + 2.001)


def test_replay_websocket_messages() -> None:
    flow = tflow.twebsocketflow()
    assert flow.websocket is not None
    for message, value in zip(flow.websocket.messages, (0.1, 0.2, 0.3), strict=True):
        message.content = json.dumps({"micLevel": value}).encode()
    events = replay_flows(flow_file([flow]))
    messages = telemetry_from_events(events)
    # the server's message (the third) is not telemetry
    assert [m.fields for m in messages] == [(("micLevel", 0.1),), (("micLevel", 0.2),)]
    assert [m.message for m in messages] == [0, 1]
    assert messages[0].endpoint.startswith("ws://")


def test_replay_the_research_telemetry_shape() -> None:
    # research.md: base64-encoded JSON, levels nested in an audioTransmit interval record
    record = {
        "intervals": [
            {
                "audioTransmit": [
                    {
                        "levels": {
                            "audioMaxGain": -12.5,
                            "audioMeanGain": -30.1,
                            "audioMinGain": -61.0,
                        }
                    }
                ]
            }
        ]
    }
    body = base64.b64encode(json.dumps(record).encode())
    flow = http_flow("metrics.example", "/metric/v1", body, T0 + 2)
    flow.request.headers["content-type"] = "text/plain"
    (message,) = telemetry_from_events(replay_flows(flow_file([flow])))
    # the whole body is base64 of JSON: paths start inside it
    assert dict(message.fields) == {
        "intervals[0].audioTransmit[0].levels.audioMaxGain": -12.5,
        "intervals[0].audioTransmit[0].levels.audioMeanGain": -30.1,
        "intervals[0].audioTransmit[0].levels.audioMinGain": -61.0,
    }


def test_not_a_flow_file() -> None:
    with pytest.raises(ValueError, match="not a mitmproxy flow file"):
        replay_flows(io.BytesIO(b"this is not tnetstring data at all"))


@pytest.mark.parametrize("variant", ["telemetry-http", "telemetry-ws"])
def test_replay_matches_the_live_addon(variant: str) -> None:
    folder = lab_session(variant, needs="flows.mitm")
    with (folder / "flows.mitm").open("rb") as fo:
        replayed = telemetry_from_events(replay_flows(fo))
    with (folder / "events.jsonl").open("rb") as fo:
        live = telemetry_from_events(read_events(fo))
    assert len(replayed) == len(live) >= 20
    for a, b in zip(replayed, live, strict=True):
        assert a.fields == b.fields and a.endpoint == b.endpoint
        assert a.t == pytest.approx(b.t, abs=0.01)
