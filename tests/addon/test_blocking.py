"""Tests for decoders.addon.blocking: the monitor's judgement carried out on the flow."""

from __future__ import annotations

import pytest
from helpers.script_addons import ScriptAddons
from mitmproxy import exceptions, websocket
from mitmproxy.test import taddons, tflow
from wsproto.frame_protocol import Opcode

from decoders.addon.blocking import BLOCKED_HEADER
from decoders.session.monitor import Outcome


def test_drop_and_redact_an_http_request(tctx: taddons.context, script: ScriptAddons) -> None:
    blocking = script.get("Blocking")
    dropped, redacted, other = tflow.tflow(), tflow.tflow(), tflow.tflow()
    script.recorder.pending[dropped.id] = Outcome(action="drop")
    blocking.request(dropped)
    assert dropped.response is not None and dropped.response.status_code == 204
    assert dropped.response.headers["X-Mutecheck"] == BLOCKED_HEADER
    script.recorder.pending[redacted.id] = Outcome(action="redact", replacement=b'{"level":null}')
    blocking.request(redacted)
    assert redacted.response is None and redacted.request.content == b'{"level":null}'
    blocking.request(other)
    assert other.response is None and script.recorder.pending == {}


def test_drop_and_redact_a_websocket_message(tctx: taddons.context, script: ScriptAddons) -> None:
    blocking = script.get("Blocking")
    flow = tflow.twebsocketflow(messages=False)
    assert flow.websocket is not None
    flow.websocket.messages = []
    for action in ("drop", "redact"):
        message = websocket.WebSocketMessage(Opcode.TEXT, True, b'{"level": 0.3}')
        flow.websocket.messages.append(message)
        script.recorder.pending[flow.id] = Outcome(action=action, replacement=b'{"level": null}')
        blocking.websocket_message(flow)
    first, second = flow.websocket.messages
    assert first.dropped and not second.dropped and second.content == b'{"level": null}'


@pytest.mark.parametrize(
    ("option", "value"), [("mutecheck_block_action", "later"), ("mutecheck_block_unread", "")]
)
def test_values_outside_the_choices_are_refused(
    tctx: taddons.context, script: ScriptAddons, option: str, value: str
) -> None:
    with pytest.raises(exceptions.OptionsError, match=f"{option} {value!r} is not one of"):
        tctx.configure(script, **{option: value})
    assert script.monitor.settings.block_action == "drop"
    assert script.monitor.settings.block_unread == "block"
