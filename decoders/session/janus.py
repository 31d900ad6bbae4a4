"""Which Janus plugin a message talks to: the handles of the Janus API, learned as they are made.

Janus (an open-source WebRTC server) carries every plugin's requests in one envelope, over
WebSocket (subprotocol ``janus-protocol``) or HTTP (the REST transport)::

    {"janus": "attach", "plugin": "janus.plugin.audiobridge", "opaque_id": "...",
     "transaction": "Xk2..."}                                  browser -> Janus
    {"janus": "success", "transaction": "Xk2...", "data": {"id": 2731...}}  Janus -> browser
    {"janus": "message", "body": {"request": "configure", "muted": true},
     "transaction": "...", "session_id": 8801..., "handle_id": 2731...}    browser -> Janus
    {"janus": "event", "sender": 2731..., "plugindata": {"plugin": "janus.plugin.audiobridge",
     "data": {...}}}                                           Janus -> browser

Over WebSocket a request names its handle in ``handle_id``; over HTTP janus.js posts it to
``<server>/<session id>/<handle id>`` and the attach to ``<server>/<session id>`` (the answer
is the HTTP response). The ``body`` alone does not say which plugin it is for: ``{"audio":
false}`` means "stop relaying my audio" to the EchoTest plugin and something else elsewhere.
So :class:`JanusHandles` remembers the plugin of each handle: from the attach request and its
``success`` answer (paired by transaction), and from any event a plugin sends (``sender`` and
``plugindata.plugin``). Rules with ``janus_plugin`` (docs/session-format.md) then ask
:meth:`JanusHandles.plugin_of` for the plugin of a message.

Janus 1.x names a stream of a handle's PeerConnection by its ``mid`` alone (VideoRoom's
``configure`` with ``streams: [{"mid": "0", "send": false}]``). Which mid is the audio the
browser sends is said by the offer the browser sent on that handle (its ``jsep``; only
publishers send offers) and by the plugin's events that list the handle's own ``streams``
(``{"type": "audio", "mid": "0", ...}``; a subscription's list names each stream's ``feed_id``
and is left out): :meth:`JanusHandles.kinds_of` gives that map for a message, for rules with
``media_kind``. A subscription's handle therefore has none, and its ``streams`` requests (which
stop what the browser receives) are never read as a mute.

Pure functions and a bounded table; nothing here does I/O, reads a clock or logs.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Final

MAX_HANDLES: Final = 1024
MAX_PENDING: Final = 256
"""Handles and unanswered attach requests remembered (least recently used forgotten)."""

_REST_HANDLE: Final = re.compile(r"/(\d+)/(\d+)/?$")
"""A REST request to a handle: ``.../<session id>/<handle id>`` (query removed)."""

_MARKERS: Final = (b'"attach"', b'"success"', b'"plugindata"')


def looks_like_janus(data: bytes) -> bool:
    """Might these bytes be a Janus API message that teaches a handle's plugin (an attach, its
    success answer, or a plugin event)? A cheap test on the raw bytes, before parsing."""
    if b'"janus"' not in data:
        return False
    return any(marker in data for marker in _MARKERS)


def _handle_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def attach_request(record: Any) -> tuple[str, str] | None:
    """``(transaction, plugin)`` of an attach request, else None."""
    if not isinstance(record, dict) or record.get("janus") != "attach":
        return None
    plugin, transaction = record.get("plugin"), record.get("transaction")
    if isinstance(plugin, str) and isinstance(transaction, str):
        return transaction, plugin
    return None


def created_handle(record: Any) -> tuple[str, int] | None:
    """``(transaction, handle id)`` of a ``success`` answer that carries a new id, else None.

    The answer to ``create`` has the same shape (a session id): only a transaction that was an
    attach makes it a handle (:class:`JanusHandles` checks)."""
    if not isinstance(record, dict) or record.get("janus") != "success":
        return None
    data, transaction = record.get("data"), record.get("transaction")
    if not isinstance(data, dict) or not isinstance(transaction, str):
        return None
    handle = _handle_id(data.get("id"))
    return None if handle is None else (transaction, handle)


def plugin_event(record: Any) -> tuple[int, str] | None:
    """``(handle id, plugin)`` of a message a plugin sent (``sender`` + ``plugindata``)."""
    if not isinstance(record, dict) or "janus" not in record:
        return None
    plugindata = record.get("plugindata")
    handle = _handle_id(record.get("sender"))
    if handle is None or not isinstance(plugindata, dict):
        return None
    plugin = plugindata.get("plugin")
    return (handle, plugin) if isinstance(plugin, str) else None


def message_handle(record: Any, url: str) -> int | None:
    """The handle a request goes to: ``handle_id`` (WebSocket), else the REST URL's last id."""
    if not isinstance(record, dict) or "janus" not in record:
        return None
    handle = _handle_id(record.get("handle_id"))
    if handle is not None:
        return handle
    match = _REST_HANDLE.search(url.split("?", 1)[0].split("#", 1)[0])
    return int(match.group(2)) if match else None


def event_streams(record: Any) -> tuple[int, dict[str, str]] | None:
    """``(handle id, {mid: kind})`` of a plugin event that lists the handle's ``streams``."""
    if not isinstance(record, dict) or "janus" not in record:
        return None
    handle = _handle_id(record.get("sender"))
    plugindata = record.get("plugindata")
    data = plugindata.get("data") if isinstance(plugindata, dict) else None
    streams = data.get("streams") if isinstance(data, dict) else None
    if handle is None or not isinstance(streams, list):
        return None
    kinds: dict[str, str] = {}
    for stream in streams[:MAX_MIDS]:
        if not isinstance(stream, dict):
            continue
        mid, kind = stream.get("mid"), stream.get("type")
        if isinstance(mid, str) and isinstance(kind, str) and "feed_id" not in stream:
            kinds[mid] = kind  # a subscription's streams (feed_id: whose) are not the browser's
    return (handle, kinds) if kinds else None


MAX_MIDS: Final = 64
"""Streams of one handle remembered."""


class JanusHandles:
    """The plugin of each Janus handle seen so far, and the kind of each stream (mid) of its
    PeerConnection (bounded)."""

    def __init__(self) -> None:
        self._plugins: OrderedDict[int, str] = OrderedDict()
        self._pending: OrderedDict[str, str] = OrderedDict()
        self._kinds: OrderedDict[int, dict[str, str]] = OrderedDict()

    def learn(self, records: list[Any], *, sent: bool) -> None:
        """Take what a message (its JSON records) says about handles and plugins."""
        for record in records:
            items = record if isinstance(record, list) else [record]  # long poll: a list
            for item in items:
                self._learn_one(item, sent)

    def _learn_one(self, record: Any, sent: bool) -> None:
        if sent:
            attach = attach_request(record)
            if attach is not None:
                _put(self._pending, attach[0], attach[1], MAX_PENDING)
            return
        created = created_handle(record)
        if created is not None:
            plugin = self._pending.pop(created[0], None)
            if plugin is not None:
                _put(self._plugins, created[1], plugin, MAX_HANDLES)
            return
        event = plugin_event(record)
        if event is not None:
            _put(self._plugins, event[0], event[1], MAX_HANDLES)
        streams = event_streams(record)
        if streams is not None:
            self.learn_kinds(*streams)

    def learn_kinds(self, handle: int, kinds: dict[str, str]) -> None:
        """The kinds of ``handle``'s streams by mid (from its SDP or a plugin event)."""
        known = self._kinds.get(handle, {})
        merged = {**known, **kinds}
        if len(merged) > MAX_MIDS:
            merged = dict(list(merged.items())[-MAX_MIDS:])
        _put(self._kinds, handle, merged, MAX_HANDLES)

    def kinds_of(self, records: list[Any], url: str) -> dict[str, str] | None:
        """The kinds by mid of the handle a request (the first record naming one) goes to."""
        handle = self.handle_of(records, url)
        return None if handle is None else self._kinds.get(handle)

    @staticmethod
    def handle_of(records: list[Any], url: str) -> int | None:
        """The handle a request (the first record naming one) goes to."""
        for record in records:
            handle = message_handle(record, url)
            if handle is not None:
                return handle
        return None

    def plugin_of(self, records: list[Any], url: str) -> str | None:
        """The plugin a request (the first record naming a handle) is for, when known."""
        for record in records:
            handle = message_handle(record, url)
            if handle is not None:
                return self._plugins.get(handle)
        return None

    def __len__(self) -> int:
        return len(self._plugins)


def _put(table: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > size:
        table.popitem(last=False)
