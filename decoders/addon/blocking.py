"""Protective mode: while you are muted, volume telemetry does not leave."""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.addonmanager import Loader

from decoders.addon.guard import check_choices, guarded
from decoders.addon.recorder import Recorder
from decoders.session.monitor import BLOCK_ACTIONS, BLOCK_UNREAD

BLOCKED_HEADER = "blocked by mutecheck: volume telemetry while muted"


class Blocking:
    """The blocking options, and the monitor's judgement carried out: what it asks to drop is
    answered by the proxy (HTTP, 204) or dropped (WebSocket), what it asks to redact is replaced
    by the redacted body. The monitor decides (with these options in its settings; block mode
    judges in the proxy, since it must decide before a message leaves); listed after
    :class:`~decoders.addon.signaling.Signaling`, whose judgement it acts on."""

    name = "mutecheck.blocking"  # mitmproxy's name for it (not the bare class name: no clash)

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "mutecheck_block",
            bool,
            False,
            """
            Protective mode: while you are muted, stop volume telemetry from leaving (see
            mutecheck_block_action). Every stopped message is recorded as a 'blocked' event.
            """,
        )
        loader.add_option(
            "mutecheck_block_action",
            str,
            "drop",
            """
            What mutecheck_block does with a message that carries volume telemetry while muted:
            'drop' answers an HTTP request itself (204) and drops a WebSocket message; 'redact'
            sets the volume fields to null and lets the rest through (and drops when the body
            cannot be rewritten faithfully).
            """,
            choices=BLOCK_ACTIONS,
        )
        loader.add_option(
            "mutecheck_block_unread",
            str,
            "block",
            """
            What mutecheck_block does, while you are muted, with a message mutecheck could not
            read whole (longer than mutecheck_scan_limit, nested deeper than 40 levels, more
            than 20,000 values): 'block' (the default) drops it, since what was not read may be
            volume telemetry and protective mode must not be evaded by padding a message;
            'pass' lets it through unless the part that was read holds volume fields. Either
            way a 'scan-limit' warning says what was not read.
            """,
            choices=BLOCK_UNREAD,
        )

    def configure(self, updated: set[str]) -> None:
        check_choices(updated, ("mutecheck_block_unread", "mutecheck_block_action"))

    @guarded
    def request(self, flow: http.HTTPFlow) -> None:
        if not self.recorder.pending:
            return
        out = self.recorder.pending.pop(flow.id, None)
        if out is None:
            return
        if out.action == "drop":
            flow.response = http.Response.make(204, b"", {"X-Mutecheck": BLOCKED_HEADER})
        elif out.action == "redact" and out.replacement is not None:
            flow.request.content = out.replacement

    @guarded
    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if not self.recorder.pending:
            return
        out = self.recorder.pending.pop(flow.id, None)
        if out is None or flow.websocket is None:
            return
        last = flow.websocket.messages[-1]
        if out.action == "drop":
            last.drop()  # type: ignore[no-untyped-call]
        elif out.action == "redact" and out.replacement is not None:
            last.content = out.replacement
