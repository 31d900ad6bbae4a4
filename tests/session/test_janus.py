"""Tests for decoders.session.janus: the plugin of each handle, from messages janus.js sends."""

from __future__ import annotations

import json

import pytest
from helpers.janus_messages import (
    HANDLES,
    SESSION,
    attach,
    attached,
    event,
    message,
    server,
    transaction,
)
from hypothesis import given
from hypothesis import strategies as st

from decoders.session.janus import (
    MAX_HANDLES,
    MAX_MIDS,
    JanusHandles,
    attach_request,
    created_handle,
    event_streams,
    looks_like_janus,
    message_handle,
    plugin_event,
)

BRIDGE = "janus.plugin.audiobridge"
HANDLE = HANDLES[BRIDGE]


def records(data: bytes) -> list[object]:
    return [json.loads(data)]


def test_the_pieces_of_an_attach() -> None:
    tx = transaction(1)
    assert attach_request(json.loads(attach(BRIDGE, tx, "ws"))) == (tx, BRIDGE)
    assert created_handle(json.loads(attached(tx, HANDLE))) == (tx, HANDLE)
    assert plugin_event(event(BRIDGE, HANDLE, {"audiobridge": "joined"})) == (HANDLE, BRIDGE)
    ws = json.loads(message({"request": "configure", "muted": True}, tx, HANDLE, "ws"))
    assert message_handle(ws, "wss://10.77.0.2:8989/") == HANDLE
    rest = json.loads(message({"request": "configure", "muted": True}, tx, HANDLE, "rest"))
    assert "handle_id" not in rest
    assert message_handle(rest, f"https://h/janus/{SESSION}/{HANDLE}?x=1") == HANDLE
    assert message_handle(rest, f"https://h/janus/{SESSION}") is None
    assert message_handle({"request": "x"}, f"https://h/janus/{SESSION}/{HANDLE}") is None


@pytest.mark.parametrize("transport", ["ws", "rest"])
def test_handles_learned_from_attach_and_success(transport: str) -> None:
    handles = JanusHandles()
    tx = transaction(7)
    url = f"https://10.77.0.2:8089/janus/{SESSION}/{HANDLE}" if transport == "rest" else "wss://x/"
    request = message({"request": "configure", "muted": True}, tx, HANDLE, transport)  # type: ignore[arg-type]
    assert handles.plugin_of(records(request), url) is None
    handles.learn(records(attach(BRIDGE, tx, transport)), sent=True)  # type: ignore[arg-type]
    handles.learn(records(attached(transaction(99), 5)), sent=False)  # not our transaction
    assert len(handles) == 0
    handles.learn(records(attached(tx, HANDLE)), sent=False)
    assert handles.plugin_of(records(request), url) == BRIDGE


def test_the_answer_to_create_is_not_a_handle() -> None:
    handles = JanusHandles()
    create = {"janus": "create", "transaction": "abc"}
    handles.learn([create], sent=True)
    handles.learn([json.loads(attached("abc", SESSION))], sent=False)
    assert len(handles) == 0


def test_handles_learned_from_plugin_events_also_in_a_long_poll_list() -> None:
    handles = JanusHandles()
    handles.learn([json.loads(server([event(BRIDGE, HANDLE, {"result": "ok"})]))], sent=False)
    request = json.loads(message({"muted": True}, "t", HANDLE, "ws"))
    assert handles.plugin_of([request], "wss://x/") == BRIDGE


def test_the_table_is_bounded() -> None:
    handles = JanusHandles()
    for number in range(MAX_HANDLES + 10):
        handles.learn([event(BRIDGE, number, {})], sent=False)
    assert len(handles) == MAX_HANDLES
    assert handles.plugin_of([{"janus": "message", "handle_id": 0}], "") is None
    assert handles.plugin_of([{"janus": "message", "handle_id": MAX_HANDLES + 9}], "") == BRIDGE


def test_the_cheap_test() -> None:
    assert looks_like_janus(attach(BRIDGE, "t", "rest"))
    assert looks_like_janus(attached("t", 1))
    assert looks_like_janus(server(event(BRIDGE, 1, {})))
    assert not looks_like_janus(b'{"janus":"keepalive","transaction":"t"}')
    assert not looks_like_janus(b'{"attach": "success"}')


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_any_json_is_read_without_error(value: object) -> None:
    handles = JanusHandles()
    handles.learn([value], sent=True)
    handles.learn([value], sent=False)
    handles.plugin_of([value], "https://h/janus/1/2")


def test_stream_kinds_by_mid_from_events_and_sdp() -> None:
    """A plugin event that lists the handle's ``streams`` gives their kinds by mid (as Janus
    1.1.2's VideoRoom ``configured`` event does); an SDP the monitor read adds its own."""
    room = "janus.plugin.videoroom"
    handle = HANDLES[room]
    streams = [
        {"type": "audio", "mindex": 0, "mid": "0", "codec": "opus"},
        {"type": "video", "mindex": 1, "mid": "1", "codec": "vp8"},
        {"type": "data", "mindex": 2},
        "junk",
    ]
    configured = event(room, handle, {"videoroom": "event", "configured": "ok", "streams": streams})
    assert event_streams(configured) == (handle, {"0": "audio", "1": "video"})
    assert event_streams(event(room, handle, {"videoroom": "event", "streams": []})) is None
    assert event_streams(event(room, handle, {"videoroom": "joined"})) is None
    assert event_streams({"sender": handle, "plugindata": {"data": {"streams": streams}}}) is None
    handles = JanusHandles()
    url = f"https://10.77.0.2:8089/janus/{SESSION}/{handle}"
    request = records(message({"request": "configure"}, transaction(1), handle, "rest"))
    assert handles.kinds_of(request, url) is None
    handles.learn([[configured]], sent=False)  # a long poll's answer: a list
    assert handles.kinds_of(request, url) == {"0": "audio", "1": "video"}
    handles.learn_kinds(handle, {"2": "audio"})
    assert handles.kinds_of(request, url) == {"0": "audio", "1": "video", "2": "audio"}
    handles.learn_kinds(handle, {str(n): "video" for n in range(3 * MAX_MIDS)})
    assert len(handles.kinds_of(request, url) or {}) == MAX_MIDS
    assert handles.kinds_of(request, f"https://10.77.0.2:8089/janus/{SESSION}/1") is None
