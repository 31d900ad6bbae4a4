"""What the browser sent over HTTP and WebSocket: the addon's events, or its flows replayed.

The addon judges each message live and writes ``events.jsonl``. Afterwards the same judgement
can be made again from ``flows.mitm`` (mitmproxy's own save file): :func:`replay_flows` feeds
every saved request, response, WebSocket message and mute mark, in time order, to a fresh
:class:`decoders.session.monitor.Monitor`, the object the addon itself uses, and returns the
events it would have written. Both give :class:`TelemetryMessage` records and ``mute`` events for
the timeline; the audit judges "muted" with its own timeline, not the monitor's flag.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from decoders.session.events import Event

if TYPE_CHECKING:
    from decoders.session.signaling import MuteRule

Value = int | float | bool


@dataclass(frozen=True, slots=True)
class TelemetryMessage:
    """One message with volume-like fields, as the telemetry detector found them.

    ``t`` is the proxy's clock (epoch seconds); ``fields`` are ``(path, value)`` pairs such as
    ``("(base64).audioTransmit[0].levels.audioMeanGain", 0.31)``.
    """

    t: float
    endpoint: str
    fields: tuple[tuple[str, Value], ...]
    flow_id: str | None = None
    message: int | None = None

    @property
    def reference(self) -> str:
        """How to find it in mitmproxy: flow id, and message index for WebSocket."""
        ident = self.flow_id or "?"
        return ident if self.message is None else f"{ident}#{self.message}"


def telemetry_from_events(events: Iterable[Event]) -> list[TelemetryMessage]:
    """The ``telemetry`` events (sent by the browser) as messages, in time order."""
    out = []
    for event in events:
        if event.get("kind") != "telemetry" or event.get("direction", "sent") != "sent":
            continue
        fields: list[tuple[str, Value]] = []
        for item in event.get("fields") or ():
            if not isinstance(item, dict):
                continue
            path, value = item.get("path"), item.get("value")
            if isinstance(path, str) and isinstance(value, int | float | bool):
                fields.append((path, value))
        if not fields:
            continue
        flow = event.get("flow") if isinstance(event.get("flow"), dict) else {}
        assert isinstance(flow, dict)
        index = flow.get("message")
        out.append(
            TelemetryMessage(
                t=float(event["t"]),
                endpoint=str(event.get("endpoint") or flow.get("url") or "?"),
                fields=tuple(fields),
                flow_id=str(flow["id"]) if flow.get("id") is not None else None,
                message=index if isinstance(index, int) else None,
            )
        )
    out.sort(key=lambda m: m.t)
    return out


def replay_flows(fileobj: BinaryIO, rules: tuple[MuteRule, ...] | None = None) -> list[Event]:
    """The events the addon's monitor gives for the flows of an open ``flows.mitm``, judged
    with ``rules`` (default: the built-in ones, as the addon loads them).

    Needs mitmproxy (imported here). Raises ValueError when the file is not a flow file.
    """
    from decoders.session.monitor import Message, Monitor, Settings
    from decoders.session.mutemark import parse_mark_path
    from decoders.session.rulefiles import builtin_rules

    monitor = Monitor(Settings(rules=builtin_rules() if rules is None else rules))
    events: list[Event] = []
    for t, item in read_flow_items(fileobj):
        if isinstance(item, tuple):  # a mute mark: (path)
            try:
                request = parse_mark_path(item[0])
            except ValueError:
                continue
            if request.muted is not None:
                out = monitor.mark(t, request.muted, via="url", note=request.note, at=request.at)
                events.extend(out.events)
            continue
        assert isinstance(item, Message)
        events.extend(monitor.observe(item, t).events)
    return events


def read_flow_items(fileobj: BinaryIO) -> list[tuple[float, Any]]:
    """Every request, response and WebSocket message of an open ``flows.mitm`` as a
    :class:`~decoders.session.monitor.Message`, and every mark request as ``(path,)``, with the
    time mitmproxy saw it, in time order (file order among equal times).

    Needs mitmproxy (imported here). Raises ValueError when the file is not a flow file.
    """
    from mitmproxy import exceptions, http, io

    found: list[tuple[float, Any]] = []
    try:
        for flow in io.FlowReader(fileobj).stream():
            if isinstance(flow, http.HTTPFlow):
                found.extend(_flow_items(flow))
    except exceptions.FlowReadException as error:
        raise ValueError(f"not a mitmproxy flow file ({error})") from None
    except Exception as error:  # mitmproxy rebuilds damaged flow state with KeyError, TypeError...
        raise ValueError(
            f"damaged mitmproxy flow file after {len(found)} message(s) "
            f"({type(error).__name__}: {error})"
        ) from None
    order = sorted(range(len(found)), key=lambda i: (found[i][0], i))
    return [found[i] for i in order]


def _flow_items(flow: Any) -> list[tuple[float, Any]]:
    """(time, Message or (mark path,)) for one HTTP flow and its WebSocket messages."""
    from decoders.session.monitor import (
        FlowRef,
        Message,
        address_text,
        websocket_url,
        without_query,
    )
    from decoders.session.mutemark import is_mark_host

    request = flow.request
    url = request.pretty_url
    if is_mark_host(request.pretty_host):
        return [(request.timestamp_start or 0.0, (request.path,))]
    out: list[tuple[float, Any]] = []
    endpoint = without_query(url)
    client = address_text(flow.client_conn.peername)
    server = address_text(flow.server_conn.address)
    reference = FlowRef(
        id=flow.id,
        type="http",
        url=url[:2000],
        method=request.method,
        client=client,
        server=server,
    )
    query = urllib.parse.urlsplit(url).query
    if request.raw_content is not None and (request.raw_content or query):
        when = request.timestamp_end or request.timestamp_start or 0.0
        message = Message(
            flow=reference,
            endpoint=endpoint,
            sent=True,
            content=request.raw_content,
            label=f"{request.method} {endpoint}",
            content_encoding=request.headers.get("content-encoding"),
            content_type=request.headers.get("content-type"),
            query=query,
        )
        out.append((when, message))
    response = flow.response
    if response is not None and response.raw_content:
        when = response.timestamp_end or response.timestamp_start or 0.0
        message = Message(
            flow=reference,
            endpoint=endpoint,
            sent=False,
            content=response.raw_content,
            label=f"response to {request.method} {endpoint}",
            content_encoding=response.headers.get("content-encoding"),
            content_type=response.headers.get("content-type"),
        )
        out.append((when, message))
    if flow.websocket is not None:
        ws_url = websocket_url(url)
        for index, item in enumerate(flow.websocket.messages):
            ws_ref = FlowRef(
                id=flow.id,
                type="websocket",
                url=ws_url[:2000],
                client=client,
                server=server,
                message=index,
            )
            direction = "sent" if item.from_client else "received"
            message = Message(
                flow=ws_ref,
                endpoint=without_query(ws_url),
                sent=item.from_client,
                content=item.content,
                label=f"WebSocket {without_query(ws_url)} ({direction})",
            )
            out.append((item.timestamp or 0.0, message))
    return out
