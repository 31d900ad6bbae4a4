"""Mute marks: the ``mutecheck.mark`` and ``mutecheck.state`` commands, and http://mutecheck.mark/.

The mark host is answered by the proxy itself: it is never resolved nor contacted, and a page or
a script can mark through the proxy (``/muted``, ``/unmuted``, ``/state``; ``?t=`` the epoch time
of the click, ``?note=``), with CORS headers so that a page of any origin may ask.
"""

from __future__ import annotations

import json
import time

from mitmproxy import command, exceptions, http
from mitmproxy.proxy import server_hooks

from decoders.addon.guard import guarded
from decoders.addon.recorder import Recorder
from decoders.session.mutemark import MARK_HOST, is_mark_host, parse_mark_path, parse_state

METADATA_KEY = "mutecheck"
"""``flow.metadata[METADATA_KEY] == "mark"``: a flow the proxy answered itself (not analysed)."""


class Marks:
    """Your marks of the microphone's state, by command or by URL, and what mutecheck believes."""

    name = "mutecheck.marks"  # mitmproxy's name for it (not the bare class name: no clash)

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    @command.command("mutecheck.mark")  # type: ignore[untyped-decorator]
    def mark(self, state: str) -> None:
        """Mark the microphone muted or unmuted from now on: mutecheck.mark muted|unmuted."""
        try:
            muted = parse_state(state)
        except ValueError as error:
            raise exceptions.CommandError(str(error)) from error
        self.recorder.mark(time.time(), muted, via="command")

    @command.command("mutecheck.state")  # type: ignore[untyped-decorator]
    def state(self) -> str:
        """What mutecheck believes now: muted, unmuted or unknown, and since when."""
        muted, since, _ = self.recorder.current()
        word = "unknown" if muted is None else ("muted" if muted else "unmuted")
        return (
            word if since is None else f"{word} since {time.strftime('%X', time.localtime(since))}"
        )

    @guarded
    def http_connect(self, flow: http.HTTPFlow) -> None:
        """Accept CONNECT to the mark host without trying to reach it."""
        if is_mark_host(flow.request.host):
            now = time.time()
            flow.response = http.Response(
                flow.request.data.http_version,
                200,
                b"Connection established",
                http.Headers(),
                b"",
                None,
                now,
                now,
            )

    @guarded
    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        """Never connect (nor resolve) the mark host, e.g. for TLS to https://mutecheck.mark."""
        address = data.server.address
        if address is not None and is_mark_host(str(address[0])):
            data.server.error = "mutecheck.mark is answered by the proxy itself"

    @guarded
    def request(self, flow: http.HTTPFlow) -> None:
        if _names_mark_host(flow.request):
            self._answer(flow)

    def _answer(self, flow: http.HTTPFlow) -> None:
        flow.metadata[METADATA_KEY] = "mark"
        self.recorder.relevant.add(flow.id)
        headers = {
            "Content-Type": "application/json",
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "no-store",
        }
        if flow.request.method == "OPTIONS":
            flow.response = http.Response.make(204, b"", headers)
            return
        try:
            request = parse_mark_path(flow.request.path)
        except ValueError as error:
            body = {"error": str(error), "usage": "/muted, /unmuted or /state; ?t=<epoch s>"}
            flow.response = http.Response.make(400, json.dumps(body), headers)
            return
        now = flow.request.timestamp_start or time.time()
        recorder = self.recorder
        if request.muted is not None:
            state = recorder.mark(now, request.muted, via="url", note=request.note, at=request.at)
            answer = {"marked": "muted" if request.muted else "unmuted", "t": now, **state}
        else:
            answer = recorder.current()[2]
        flow.response = http.Response.make(200, json.dumps(answer), headers)


def _names_mark_host(request: http.Request) -> bool:
    """Is ``request.pretty_host`` (the Host header, else the target) the mark host? Cheaply:
    almost no request names it, and pretty_host parses the header each time (~7 us)."""
    if is_mark_host(request.host):
        return True
    for name, value in request.data.headers.fields:
        if name.lower() == b"host":
            return MARK_HOST.encode() in value.lower() and is_mark_host(request.pretty_host)
    return False
