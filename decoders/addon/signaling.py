"""HTTP bodies and WebSocket messages to the monitor: SDP, the app's mute signals, telemetry."""

from __future__ import annotations

import time
import urllib.parse

from mitmproxy import http

from decoders.addon.guard import guarded
from decoders.addon.marks import METADATA_KEY
from decoders.addon.recorder import Recorder
from decoders.session.monitor import FlowRef, Message, address_text, websocket_url, without_query

MAX_OPEN_WEBSOCKETS = 4096


class Signaling:
    """Each request, response and WebSocket message that may hold something a recogniser looks
    for goes to the monitor (most are skipped by a cheap keyword test first); what the monitor
    asks to drop or redact is left in ``recorder.pending`` for :class:`Blocking` to act on."""

    name = "mutecheck.signaling"  # mitmproxy's name for it (not the bare class name: no clash)

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._websockets: dict[str, tuple[FlowRef, str, str]] = {}

    @guarded
    def request(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(METADATA_KEY) == "mark":
            return  # answered by the proxy itself
        if flow.response is not None and flow.live:
            return  # answered by another addon: nothing leaves
        message = self._http_message(flow, flow.request, sent=True)
        if message is None:
            return
        when = flow.request.timestamp_end or flow.request.timestamp_start or time.time()
        out = self.recorder.judge(message, when, flow)
        if out is not None and out.action is not None:
            self.recorder.pending[flow.id] = out

    @guarded
    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response is None or flow.metadata.get(METADATA_KEY) == "mark":
            return
        message = self._http_message(flow, flow.response, sent=False)
        if message is not None:
            when = flow.response.timestamp_end or flow.response.timestamp_start or time.time()
            self.recorder.judge(message, when, flow)

    @guarded
    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None or not flow.websocket.messages:
            return
        index = len(flow.websocket.messages) - 1
        last = flow.websocket.messages[index]
        known = self._websockets.get(flow.id)
        if known is None:  # once per WebSocket: mitmproxy's URL properties are not cheap
            url = websocket_url(flow.request.pretty_url)
            endpoint = without_query(url)
            reference = FlowRef(
                id=flow.id,
                type="websocket",
                url=url[:2000],
                client=address_text(flow.client_conn.peername),
                server=address_text(flow.server_conn.address),
            )
            known = (reference, endpoint, f"WebSocket {endpoint}")
            if len(self._websockets) >= MAX_OPEN_WEBSOCKETS:
                del self._websockets[next(iter(self._websockets))]
            self._websockets[flow.id] = known
        reference, endpoint, label = known
        if self.recorder.monitor.skippable(
            last.content, url=reference.url or endpoint, sent=last.from_client
        ):
            return  # most messages: nothing any recogniser looks for
        message = Message(
            flow=reference,
            endpoint=endpoint,
            sent=last.from_client,
            content=last.content,
            label=label,
            message_index=index,
        )
        out = self.recorder.judge(message, last.timestamp or time.time(), flow)
        if out is not None and out.action is not None:
            self.recorder.pending[flow.id] = out

    @guarded
    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._websockets.pop(flow.id, None)

    def _http_message(
        self, flow: http.HTTPFlow, part: http.Request | http.Response, *, sent: bool
    ) -> Message | None:
        content = part.raw_content
        if content is None:
            return None  # streamed (stream_large_bodies): mitmproxy keeps no body to read
        monitor = self.recorder.monitor
        if (not sent or "?" not in flow.request.path) and monitor.skippable(
            content,
            url=flow.request.url if monitor.settings.rules else "",  # rules only need it
            sent=sent,
            content_encoding=part.headers.get("content-encoding"),
        ):
            return None  # nothing any recogniser looks for
        url = flow.request.url
        endpoint = without_query(url)
        query = urllib.parse.urlsplit(url).query if sent else ""
        if not content and not query:
            return None
        method = flow.request.method
        reference = FlowRef(
            id=flow.id,
            type="http",
            url=url[:2000],
            method=method,
            client=address_text(flow.client_conn.peername),
            server=address_text(flow.server_conn.address or (flow.request.host, flow.request.port)),
        )
        return Message(
            flow=reference,
            endpoint=endpoint,
            sent=sent,
            content=content,
            label=f"{method} {endpoint}" if sent else f"response to {method} {endpoint}",
            content_encoding=part.headers.get("content-encoding"),
            content_type=part.headers.get("content-type"),
            query=query,
        )
