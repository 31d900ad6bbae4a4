"""The live judgement: messages and datagrams in; events, warnings and block decisions out.

The mitmproxy addon hands every HTTP body, WebSocket message and UDP datagram to a
:class:`Monitor` together with the time it saw it, writes the events it returns to
``events.jsonl``, prints its warnings, and applies its decision (drop, or replace the body). All
the logic lives here, testable without a proxy.

For a message: decode the body once (bounded by the scan limit), skip it cheaply when it holds
none of the words anything below looks for, then

1. SDP: every offer/answer becomes an ``sdp`` event; its audio-level extension id is learned
   (per SSRC) for the media path;
2. mute state: signals the browser sent and user rules update the :class:`MuteTimeline`
   (``mute`` events when a source changes its state);
3. telemetry (only what the browser sends): volume-like fields become a ``telemetry`` event; while
   muted it is a finding (``medium``; ``high`` when the values change while muted, vary within the
   message, or say someone is speaking) with a warning line, except in the grace period just after
   a change of state; with blocking on, the message is dropped or the fields redacted.

What the limits leave unread of a message the browser sent (bytes past the scan limit, values
nested deeper than :data:`~decoders.session.payload.MAX_DEPTH` or than the JSON parser goes,
values after :data:`~decoders.session.payload.MAX_LEAVES`) is never silent: a ``scan-limit``
warning says what was not read (per endpoint: the first in each mute interval, then one per
``warn_interval`` with a count), the unread part is searched for ``"name": number`` pairs, and
with blocking on, a message not fully read while muted is dropped unless ``block_unread`` is
``pass``.

For a datagram the browser sent: TURN wrappers are removed, RTP parsed, and its RFC 6464 audio
level read with the id the SDP negotiated (or the one configured). While muted (the state at the
packet's own time, so that a replay where a connection comes after its marks judges alike),
packets are summed per stream in windows (``media`` events); a level louder than the silence
threshold outside the grace period gives a warning. Each packet is judged ``Settings.hold``
after it came, by the packets' own clock (at the first packet of the session, sent or received,
past that; or when the state turns unmuted or the session ends), by the timeline as it stands
then. The clock is the packets' and not the wall's, so that a replay judges as the live run did;
a stream that falls quiet right after a loud muted packet is still warned about as soon as any
other media of the session moves on. A mark that reaches the proxy late but dates
the click it reports (its ``at``) judges the packets sent after the click by the new state, so
the speech that races an unmute mark through the proxy is no false alarm. A TCP connection to
a TURN server (TURN over TCP, or over TLS that the proxy terminated) arrives as pieces of a
byte stream (:meth:`Monitor.observe_stream`): one
:class:`~decoders.wire.framing.TurnTcpFramer` per direction cuts it back into whole TURN
messages, and each message the browser sent takes the datagram path above. ChannelBind
requests say which peer a channel reaches, so media events name the peer.

Memory is bounded: per-endpoint and per-stream state lives in small LRU tables.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from decoders.errors import MalformedPacket
from decoders.session.events import FORMAT, VERSION, Event, MuteTimeline, make_event
from decoders.session.janus import JanusHandles, looks_like_janus
from decoders.session.payload import (
    MAX_DEPTH,
    Cuts,
    Decoded,
    Document,
    Embedded,
    Leaf,
    Segment,
    decode_content,
    parse_document,
    recompress,
    sniff_compression,
    walk,
)
from decoders.session.sdp import AUDIO_LEVEL_URI, SessionDescription, parse_sdp
from decoders.session.signaling import (
    MuteRule,
    describe_sdp,
    find_mute_signals,
    find_sdp,
    match_rules,
    may_match,
    rules_for,
)
from decoders.session.telemetry import (
    MAX_FIELDS,
    VolumeField,
    VolumeSlot,
    find_loose_fields,
    find_volume_fields,
    read_fields,
    redact,
    varying,
    voice_active,
    volume_slots,
)
from decoders.wire import stun
from decoders.wire.demux import (
    CHANNEL_DATA_HEADER_LENGTH,
    CHANNEL_NUMBERS,
    PacketKind,
    classify,
    open_payload,
    parse_channel_data,
)
from decoders.wire.framing import DEFAULT_MAX_SYNC_LENGTH, TurnTcpFramer, detect
from decoders.wire.rtp import audio_level

BlockAction = Literal["drop", "redact"]
BLOCK_ACTIONS: tuple[BlockAction, ...] = ("drop", "redact")
BlockUnread = Literal["block", "pass"]
BLOCK_UNREAD: tuple[BlockUnread, ...] = ("block", "pass")
"""What block mode does with a message sent while muted that the limits kept it from reading
whole: ``block`` drops it (what was not read may be volume telemetry), ``pass`` lets it go."""

RTP_SILENCE = 127
"""RFC 6464 §3: 127 is -127 dBov, digital silence."""

Transport = Literal["udp", "turn-tcp", "turn-tls"]
"""How media reached the proxy: UDP datagrams, or a TCP connection to a TURN server (TLS
terminated by the proxy for ``turn-tls``)."""

TRANSPORT_NAMES: dict[str, str] = {"udp": "UDP", "turn-tcp": "TURN/TCP", "turn-tls": "TURN/TLS"}

_CHANNEL_BIND_REQUEST = b"\x00\x09"
_SEND_INDICATION = b"\x00\x16"
"""STUN message types (RFC 8489 s5, RFC 8656 s18) read here by their first two bytes, so that
only the rare messages that name a peer are parsed."""


def starts_turn_stream(data: bytes) -> bool | None:
    """Do the first bytes a client sent on a TCP connection say TURN (RFC 8656 s12.5)?
    None: too few bytes to tell yet.

    A STUN message (top two bits zero, the magic cookie at offset 4, a length that is a
    multiple of 4: an Allocate request, as every TURN client starts; the framing module's
    :func:`~decoders.wire.framing.detect` decides), or a whole ChannelData message on a
    channel number RFC 8656 allows (0x4000-0x4FFF) whose data is a media datagram (RFC 7983:
    RTP, RTCP, DTLS or STUN). Text protocols start with letters that look like a channel
    number, but claim a length no media message has (``GET`` would be 17,748 bytes).
    """
    if data[:1] and data[0] in CHANNEL_FIRST_BYTES:
        if len(data) < CHANNEL_DATA_HEADER_LENGTH:
            return None
        length = int.from_bytes(data[2:4], "big")
        size = CHANNEL_DATA_HEADER_LENGTH + length + (-length % 4)
        if size > DEFAULT_MAX_SYNC_LENGTH:
            return False
        if len(data) < size:
            return None
        channel = parse_channel_data(data[:size])
        return channel is not None and classify(channel.data) in _MEDIA_KINDS
    framing, _ = detect(data, stream_start=True)
    return None if framing is None else framing == "turn"


CHANNEL_FIRST_BYTES = range(CHANNEL_NUMBERS.start >> 8, CHANNEL_NUMBERS.stop >> 8)
_MEDIA_KINDS = (PacketKind.RTP, PacketKind.RTCP, PacketKind.DTLS, PacketKind.STUN)
_RTP_ONLY = (PacketKind.RTP,)


_KEYWORDS = re.compile(
    rb"v=0|mute|mic|audio|level|lvl|vol|gain|energy|rms|loud|db|vad|speak|talk|voice|amplitude"
    rb"|jingle|eyj|eya|ewo|w3s|wyj"
)
"""Words one of the recognisers needs (searched in the lowercased body: one C pass each, much
faster than a case-insensitive regex); a body without any is not parsed at all."""


_ZEROS = bytes.maketrans(b"123456789", b"000000000")
SHAPE_MAX_BYTES = 8192
_DIGIT_SENSITIVE = frozenset("v<IS \r\n\t{[eW")
"""First characters of the strings whose digits some recogniser reads: SDP, markup and SIP
(``find_sdp``), JSON and base64 inside a string (``embedded``)."""


def _skeleton(data: bytes) -> bytes:
    """The body with every digit written as ``0`` (one C pass, well under a microsecond)."""
    return data.translate(_ZEROS)


def _digits_inert(leaves: list[Leaf]) -> bool:
    """Would changing digits (and only digits) leave every recogniser but the volume one with
    the same answer? No key holds a digit, and no string with a digit is of a kind whose digits
    are read (see _DIGIT_SENSITIVE). Numbers and numeric strings are read again every time."""
    for leaf in leaves:
        for segment in leaf.path:
            if isinstance(segment, str) and _HAS_DIGIT.search(segment):
                return False
        value = leaf.value
        if isinstance(value, str) and value[:1] in _DIGIT_SENSITIVE and _HAS_DIGIT.search(value):
            return False
    return True


_HAS_DIGIT = re.compile(r"\d")


@dataclass(slots=True)
class _Shape:
    """What parsing a JSON message found, for the next messages with the same skeleton.

    Telemetry repeats one message with new numbers (a report a second). Two bodies with the same
    skeleton differ only in digits (bodies with ``\\u`` escapes, whose digits are letters, are
    left out); when no key holds a digit and no string whose digits matter
    does (:func:`_digits_inert`), only the volume recogniser can answer differently. So a message
    whose parse found no SDP, no mute signal, no embedded document and used no rule (only those
    are kept) finds the same again, and only the volume fields need reading, at the places kept
    here (their values are judged again). About a third of the cost of such a message inside the
    proxy; tests/session/test_monitor.py holds the shortcut to the full parse on generated
    message series."""

    records: int
    slots: tuple[VolumeSlot, ...]

    def read(self, document: Document) -> tuple[VolumeField, ...] | None:
        """The volume fields of a document with this shape; None when it turns out not to be."""
        if document.error or document.syntax != "json" or len(document.records) != self.records:
            return None
        if document.prefix or document.separator or document.suffix:
            return None
        found: list[tuple[VolumeSlot, object]] = []
        for slot in self.slots:
            node: Any = document.records[slot.record]
            for segment in slot.segments:
                if not _holds(node, segment):
                    return None
                node = node[segment]
            if isinstance(node, dict | list):
                return None
            found.append((slot, node))
        return read_fields(found, document=document)


def _with_loose(fields: tuple[VolumeField, ...], text: str) -> tuple[VolumeField, ...]:
    """``fields`` and the ``"name": number`` pairs of ``text`` they do not already hold (by name
    and value): a walk the limits cut searches the body as text too."""
    seen = {(item.key, item.value, item.raw) for item in fields}
    loose = [
        item for item in find_loose_fields(text) if (item.key, item.value, item.raw) not in seen
    ]
    return (fields + tuple(loose))[:MAX_FIELDS]


def _holds(node: Any, segment: Segment) -> bool:
    """Does ``node[segment]`` exist (a dict key, or a list position)?"""
    if isinstance(segment, str):
        return isinstance(node, dict) and segment in node
    return isinstance(segment, int) and isinstance(node, list) and 0 <= segment < len(node)


def _embedded(path: tuple[Segment, ...]) -> bool:
    return any(isinstance(segment, Embedded) for segment in path)


class _Lru[K, V]:
    """A dict that forgets its least recently used entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def values(self) -> list[V]:
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


@dataclass(frozen=True, slots=True)
class Settings:
    """What the addon's options say (see addons/mutecheck.py for each option's help)."""

    block: bool = False
    block_action: BlockAction = "drop"
    block_unread: BlockUnread = "block"
    scan_limit: int = 256 * 1024
    grace: float = 0.2
    silence_level: int = 100
    audio_level_id: int | None = None
    rules: tuple[MuteRule, ...] = ()
    warn_interval: float = 10.0
    media_window: float = 1.0
    hold: float = 0.3
    """Seconds each RTP packet waits before it is judged (counted, warned about) by the mute
    state at its own time: a mark that arrives later but says the state changed earlier (its
    ``at``: the page's click, whose mark races the media through the proxy) decides for the
    packets sent after that time."""

    @property
    def janus(self) -> bool:
        """Does a rule ask for the Janus plugin of a message (so handles must be learned)?"""
        return any(rule.janus_plugin is not None for rule in self.rules)


@dataclass(frozen=True, slots=True)
class FlowRef:
    """Which flow (and which message of it) an event is about."""

    id: str
    type: Literal["http", "websocket", "udp", "tcp"]
    url: str | None = None
    method: str | None = None
    client: str | None = None
    server: str | None = None
    message: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            name: value
            for name in ("id", "type", "url", "method", "client", "server", "message")
            if (value := getattr(self, name)) is not None
        }


def address_text(address: tuple[Any, ...] | None) -> str | None:
    """``host:port`` (``[v6]:port``) of a mitmproxy connection address, as events show it."""
    if not address:
        return None
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def websocket_url(url: str) -> str:
    """The ws:// or wss:// URL of a WebSocket opened by an http(s):// upgrade request."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url


def without_query(url: str) -> str:
    """The endpoint a message went to: its URL without query and fragment."""
    return url.split("?", 1)[0].split("#", 1)[0]


@dataclass(frozen=True, slots=True)
class Message:
    """One HTTP body or WebSocket message. ``sent``: it goes from the browser to the service.

    ``endpoint`` identifies where it goes without the query (``https://host/path``,
    ``wss://host/socket``); ``label`` is the short human description used in warnings;
    ``message_index`` is the position of a WebSocket message in its flow.
    """

    flow: FlowRef
    endpoint: str
    sent: bool
    content: bytes
    label: str
    content_encoding: str | None = None
    content_type: str | None = None
    query: str = ""
    message_index: int | None = None

    def flow_json(self) -> dict[str, Any]:
        """The flow reference for events, with the message index when there is one."""
        reference = self.flow.to_json()
        if self.message_index is not None:
            reference["message"] = self.message_index
        return reference

    @property
    def description(self) -> str:
        """``label``, with the direction for WebSocket messages."""
        if self.message_index is not None:
            return f"{self.label} ({'sent' if self.sent else 'received'})"
        return self.label


@dataclass(slots=True)
class Outcome:
    """What the addon must do: write ``events``, print ``warnings`` (warning level) and
    ``notices`` (info), and drop the message or put ``replacement`` (the decoded body, already
    re-compressed for codings that were sniffed rather than declared) in its place."""

    events: list[Event] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    action: BlockAction | None = None
    replacement: bytes | None = None


@dataclass(slots=True)
class _Stream:
    ssrc: int
    flow: FlowRef
    window_start: float | None = None
    packets: int = 0
    payload_bytes: int = 0
    not_silent: int = 0
    without_level: int = 0
    level_min: int | None = None
    level_max: int | None = None
    level_id: int | None = None
    transport: Transport = "udp"
    peer: str | None = None
    held: deque[tuple[float, int, int | None]] = field(default_factory=deque)
    """Packets not judged yet: (time, payload bytes, audio level)."""


@dataclass(slots=True)
class _Relay:
    """A TCP connection to a TURN server: a framer per direction, and what they cut."""

    flow: FlowRef
    transport: Transport
    framers: dict[bool, TurnTcpFramer] = field(default_factory=dict)
    messages: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})
    lost_sync: bool = False

    def framer(self, sent: bool, synced: bool) -> TurnTcpFramer:
        framer = self.framers.get(sent)
        if framer is None:
            framer = self.framers[sent] = TurnTcpFramer(synced=synced)
        return framer

    def direction(self, sent: bool) -> dict[str, Any]:
        framer = self.framers.get(sent)
        return {
            "messages": self.messages[sent],
            "skipped_bytes": 0 if framer is None else framer.skipped_bytes,
        }


@dataclass(slots=True)
class _Warned:
    interval: float | None
    last: float
    suppressed: int = 0


class Monitor:
    """The state of one session: mute timeline, learned SDP facts, per-endpoint values."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._screened: tuple[MuteRule, ...] | None = None
        self._screen: tuple[tuple[bytes | None, bool, MuteRule], ...] = ()
        self._screen_janus = False
        self._screen_plain: tuple[tuple[bytes | None, bool, MuteRule], ...] = ()
        self.timeline = MuteTimeline(max_changes=4096)
        self.counters: dict[str, int] = {
            "messages": 0,
            "skipped": 0,
            "parsed": 0,
            "shape_hits": 0,
            "datagrams": 0,
            "rtp": 0,
            "rtp_malformed": 0,
            "turn_messages": 0,
        }
        self._last_values: _Lru[tuple[str, str], tuple[float | None, object]] = _Lru(4096)
        self._warned: _Lru[tuple[str, str], _Warned] = _Lru(1024)
        self._streams: _Lru[tuple[str, int], _Stream] = _Lru(256)
        self._relays: _Lru[str, _Relay] = _Lru(256)
        self._channels: _Lru[tuple[str, int], str] = _Lru(1024)
        self._ssrc_level_ids: _Lru[int, int] = _Lru(1024)
        self._level_id: int | None = None
        self._shapes: _Lru[tuple[str | None, bytes], _Shape] = _Lru(256)
        self._janus = JanusHandles()
        self._sent_kinds: dict[str, str] = {}
        """Media kind by mid in the latest SDP the browser sent (for ``media_kind`` rules)."""
        self._message_kinds: dict[str, str] = {}
        """The same, from an offer in the message being read (empty if it sent none): a Janus
        handle's streams are learned from the offers sent on it, so only a publishing handle
        (Janus: "only publishers send offers") has them, never a subscription, whose own
        ``streams: [{mid, send: false}]`` stops what the browser receives, not what it sends."""
        self._next_sweep = float("-inf")

    # --- state ---------------------------------------------------------------------------------

    @property
    def muted(self) -> bool:
        return self.timeline.muted is True

    def in_grace(self, t: float) -> bool:
        """Is ``t`` within the grace period after the last change of mute state?"""
        changed = self.timeline.changed_at
        return changed is not None and 0 <= t - changed < self.settings.grace

    def start(self, t: float, **info: Any) -> Event:
        """The ``session_start`` event."""
        return make_event("session_start", t, format=FORMAT, version=VERSION, **info)

    def state(self) -> dict[str, Any]:
        """What the proxy believes now (for ``/state`` of the mark URL)."""
        return {
            "muted": self.timeline.muted,
            "since": self.timeline.changed_at,
            "sources": {
                source: self.timeline.source_state(source) for source in ("mark", "app", "rule")
            },
        }

    # --- marks and signals ----------------------------------------------------------------------

    def mark(
        self,
        t: float,
        muted: bool,
        *,
        via: str,
        note: str | None = None,
        at: float | None = None,
    ) -> Outcome:
        """The person testing says ``muted`` (at ``at``, default ``t``); always an event."""
        out = Outcome()
        before = self.muted
        source_changed, _ = self.timeline.update(t if at is None else at, muted, "mark")
        evidence: dict[str, Any] = {"via": via}
        if note:
            evidence["note"] = note
        out.events.append(
            make_event(
                "mute",
                t,
                state="muted" if muted else "unmuted",
                source="mark",
                at=at,
                evidence=evidence,
                repeated=not source_changed,
                muted_now=self.muted,
            )
        )
        out.notices.append(f"mutecheck: marked {'muted' if muted else 'unmuted'} ({via})")
        self._after_change(t, before, out)
        return out

    def _signal(
        self,
        t: float,
        muted: bool,
        source: Literal["app", "rule"],
        evidence: dict[str, Any],
        message: Message,
        out: Outcome,
    ) -> None:
        before = self.muted
        source_changed, merged_changed = self.timeline.update(t, muted, source)
        if not source_changed:
            return
        state = "muted" if muted else "unmuted"
        out.events.append(
            make_event(
                "mute",
                t,
                state=state,
                source=source,
                evidence=evidence,
                flow=message.flow_json(),
                endpoint=message.endpoint,
                muted_now=self.muted,
            )
        )
        if merged_changed:
            what = "app signal" if source == "app" else f"rule {evidence.get('rule')!r}"
            out.notices.append(f"mutecheck: {state} ({what} in {message.description})")
        self._after_change(t, before, out)

    def _after_change(self, t: float, before: bool, out: Outcome) -> None:
        """Unmuted now: each stream's held packets are judged and its muted window ends where
        the state changed (which a mark may date before it was heard of)."""
        if before and not self.muted:
            for stream in self._streams.values():
                self._flush(stream, t, out, end=self.timeline.changed_at)

    # --- messages -------------------------------------------------------------------------------

    def skippable(
        self, content: bytes, *, url: str, sent: bool, content_encoding: str | None = None
    ) -> bool:
        """Would :meth:`observe` certainly find nothing in this body (sent without a query)?

        True when no rule can match it (by URL, direction and the rule's field name), no content
        coding is declared or sniffed, it teaches no Janus handle (when a rule needs them), and
        none of the words a recogniser needs is in the body: a cheap test the addon makes before
        it builds a :class:`Message`, since most messages of a call are of that kind.
        """
        settings = self.settings
        if content_encoding or sniff_compression(content) is not None:
            return False
        if sent and len(content) > settings.scan_limit:
            return False  # what lies past the limit is not read: observe() says so
        lowered = content[: settings.scan_limit].lower()
        if settings.rules:
            # cheapest test first: a rule's word must be in the body, and a rule for a Janus
            # plugin needs a Janus API message (every one has a "janus" key); the URL pattern
            # (a regex) is searched only for the rules that pass (same answer as rules_for)
            if self._screened is not settings.rules:  # once per rule set, not per message
                self._screened = settings.rules
                self._screen = tuple(
                    (r.needle, r.janus_plugin is not None, r) for r in settings.rules
                )
                self._screen_janus = settings.janus
                self._screen_plain = tuple(item for item in self._screen if not item[1])
            janus_body = b'"janus"' in lowered
            side = "sent" if sent else "received"
            for needle, for_janus, rule in self._screen if janus_body else self._screen_plain:
                if (needle is not None and needle not in lowered) or (for_janus and not janus_body):
                    continue
                if rule.direction in ("any", side) and rule.url.search(url) is not None:
                    return False
            if (
                self._screen_janus
                and janus_body
                and looks_like_janus(content[: settings.scan_limit])
            ):
                return False
        if _KEYWORDS.search(lowered) is None:
            self.counters["skipped"] += 1
            return True
        return False

    def observe(self, message: Message, t: float) -> Outcome:
        """One HTTP body or WebSocket message, seen at ``t``."""
        out = Outcome()
        self.counters["messages"] += 1
        settings = self.settings
        rules = (
            rules_for(settings.rules, message.flow.url or message.endpoint, message.sent)
            if settings.rules
            else []
        )
        query_fields: tuple[VolumeField, ...] = ()
        if message.sent and message.query and _KEYWORDS.search(message.query.encode().lower()):
            query = parse_document(message.query.encode(), "application/x-www-form-urlencoded")
            query_fields = tuple(
                replace(item, path=f"query:{item.path}", segments=None)
                for item in find_volume_fields(query)
            )
        if not message.content and not query_fields:
            return out
        decoded = decode_content(message.content, message.content_encoding, settings.scan_limit)
        if decoded.error:
            self._warn_once(
                out, t, "undecodable-body", message, f"body does not decode ({decoded.error})"
            )
        document: Document | None = None
        body_fields: tuple[VolumeField, ...] = ()
        cuts = Cuts()
        lowered = decoded.data.lower()
        if rules:
            rules = [rule for rule in rules if may_match(rule, lowered)]
        janus = settings.janus and looks_like_janus(decoded.data)
        if rules or janus or _KEYWORDS.search(lowered):
            self.counters["parsed"] += 1
            shape_key = None
            if (
                message.sent
                and not rules
                and not janus
                and not decoded.truncated
                and not decoded.error
                and len(decoded.data) <= SHAPE_MAX_BYTES
                and b"\\u" not in decoded.data  # the digits of \u0076 are a letter's
            ):
                shape_key = (message.content_type, _skeleton(decoded.data))
            document = parse_document(
                decoded.data, message.content_type, truncated=decoded.truncated
            )
            shape = self._shapes.get(shape_key) if shape_key is not None else None
            known = shape.read(document) if shape is not None else None
            if known is not None:
                self.counters["shape_hits"] += 1
                body_fields = known
            else:
                body_fields = self._parse(document, message, rules, shape_key, t, out, cuts)
        unread: dict[str, Any] | None = None
        if message.sent and (decoded.truncated or cuts or (document and document.too_deep)):
            unread = self._unread(message, decoded, document, cuts)
            if document is not None and cuts and document.syntax == "json":
                body_fields = _with_loose(body_fields, document.text)  # what the walk left
            self._scan_limit(message, unread, t, out)
        if message.sent and (query_fields or body_fields):
            self._telemetry(query_fields, body_fields, document, decoded, message, t, out, unread)
        elif unread is not None and self.muted and self._blocks_unread():
            self._block_unread(message, unread, t, out)
        return out

    def _blocks_unread(self) -> bool:
        return self.settings.block and self.settings.block_unread == "block"

    def _unread(
        self, message: Message, decoded: Decoded, document: Document | None, cuts: Cuts
    ) -> dict[str, Any]:
        """What the limits kept from being read, as the ``unread`` field of events says it."""
        unread: dict[str, Any] = {}
        if decoded.truncated:
            coded = bool(decoded.layers)
            unread["bytes"] = {
                "read": len(decoded.data),
                "unread": None if coded else len(message.content) - len(decoded.data),
                "limit": self.settings.scan_limit,
            }
        if document is not None and document.too_deep:
            unread["depth"] = {"limit": "parser", "values": None}
        elif cuts.deep:
            unread["depth"] = {"limit": MAX_DEPTH, "values": cuts.deep}
        if cuts.leaves is not None:
            unread["leaves"] = {"limit": cuts.leaves}
        return unread

    def _scan_limit(self, message: Message, unread: dict[str, Any], t: float, out: Outcome) -> None:
        """The ``scan-limit`` warning: the first per endpoint in each mute interval, then one
        per warn_interval with the count of those not written since."""
        muted = self.muted
        parts = []
        if "bytes" in unread:
            cut = unread["bytes"]
            total = "" if cut["unread"] is None else f" of {cut['read'] + cut['unread']}"
            parts.append(f"{cut['read']}{total} bytes read (mutecheck_scan_limit)")
        if "depth" in unread:
            depth = unread["depth"]
            if depth["values"] is None:
                parts.append("JSON nested deeper than the parser reads (searched as text)")
            else:
                parts.append(f"{depth['values']} values nested deeper than {MAX_DEPTH} levels")
        if "leaves" in unread:
            parts.append(f"stopped after {unread['leaves']['limit']} values")
        line = (
            f"mutecheck: {'MUTED and ' if muted else ''}not fully read: {message.description}: "
            f"{'; '.join(parts)}: volume telemetry in the rest would not be seen"
        )
        suppressed = self._rate_limited(("scan-limit", message.endpoint), t)
        if suppressed is None:
            return
        if suppressed:
            line += f" ({suppressed} more since the last warning)"
        (out.warnings if muted else out.notices).append(line)
        out.events.append(
            make_event(
                "warning",
                t,
                code="scan-limit",
                message=line,
                flow=message.flow_json(),
                endpoint=message.endpoint,
                unread=unread,
                muted=muted,
                repeats=suppressed,
            )
        )

    def _block_unread(
        self, message: Message, unread: dict[str, Any], t: float, out: Outcome
    ) -> None:
        """Block mode, muted, a message not fully read and no volume field in what was read:
        dropped (``block_unread``), since the unread part may carry volume telemetry."""
        out.action = "drop"
        out.events.append(
            make_event(
                "blocked",
                t,
                action="dropped",
                endpoint=message.endpoint,
                flow=message.flow_json(),
                fields=[],
                reason="not fully read while muted",
                unread=unread,
            )
        )
        out.notices.append(
            f"mutecheck: dropped a message not fully read while muted: {message.description}"
        )

    def _parse(
        self,
        document: Document,
        message: Message,
        rules: list[MuteRule],
        shape_key: tuple[str | None, bytes] | None,
        t: float,
        out: Outcome,
        cuts: Cuts,
    ) -> tuple[VolumeField, ...]:
        """Every recogniser over a parsed body; remembers its shape when the next message with
        the same skeleton can skip this (see :class:`_Shape`). ``cuts`` is told what the walk's
        limits left unread."""
        if document.error and not document.too_deep:  # too deep: a scan-limit warning says it
            self._warn_once(out, t, "malformed-body", message, document.error)
        leaves = walk(document, cuts=cuts)
        sdps = self._sdp(document, leaves, message, t, out)
        signals = find_mute_signals(document, leaves)[:1] if message.sent else []
        for signal in signals:
            self._signal(t, signal.muted, "app", signal.evidence, message, out)
        plugin: str | None = None
        kinds: dict[str, str] | None = self._sent_kinds
        if self.settings.janus and document.syntax == "json":
            url = message.flow.url or ""
            if self._message_kinds:
                handle = self._janus.handle_of(document.records, url)
                if handle is not None:
                    self._janus.learn_kinds(handle, self._message_kinds)
            self._janus.learn(document.records, sent=message.sent)
            if rules:
                plugin = self._janus.plugin_of(document.records, url)
                if self._janus.handle_of(document.records, url) is not None:
                    kinds = self._janus.kinds_of(document.records, url)  # that handle's own
        for hit in match_rules(rules, document, plugin=plugin, kinds=kinds):
            evidence = hit.evidence()
            if plugin is not None:
                evidence["janus_plugin"] = plugin
            self._signal(t, hit.muted, "rule", evidence, message, out)
        if not message.sent:
            return ()
        if not document.records:
            return find_volume_fields(document, leaves)
        slots = volume_slots(document, leaves)
        if (
            shape_key is not None
            and not sdps
            and not signals
            and document.error is None
            and document.syntax == "json"
            and not (document.prefix or document.separator or document.suffix)
            and not cuts
            and len(slots) <= MAX_FIELDS
            and not any(_embedded(leaf.path) for leaf in leaves)
            and _digits_inert(leaves)
        ):
            shape = _Shape(len(document.records), tuple(slot for slot, _ in slots))
            self._shapes.put(shape_key, shape)
        return read_fields(slots, document=document)

    def _sdp(
        self, document: Document, leaves: list[Leaf], message: Message, t: float, out: Outcome
    ) -> int:
        """Records the SDP documents of a message; how many there were (parsed or not)."""
        found_sdps = find_sdp(document, leaves)
        self._message_kinds = {}
        for found in found_sdps:
            try:
                parsed, described = _parsed_sdp(found.text)
            except MalformedPacket as error:
                self._warn_once(out, t, "malformed-sdp", message, f"SDP does not parse: {error}")
                continue
            self._learn(parsed)
            if message.sent:
                kinds = {section.mid: section.kind for section in parsed.media if section.mid}
                self._sent_kinds = kinds
                if found.role == "offer":  # a publisher's: a Janus subscriber answers
                    self._message_kinds = kinds
            event = make_event(
                "sdp",
                t,
                direction="sent" if message.sent else "received",
                role=found.role,
                role_from=found.role_from,
                found_in=found.found_in,
                flow=message.flow_json(),
                endpoint=message.endpoint,
                sdp=found.text,
                parsed=described,
            )
            if found.converted_from:
                event["converted_from"] = found.converted_from
            out.events.append(event)
        return len(found_sdps)

    def _learn(self, sdp: SessionDescription) -> None:
        """Remember the audio-level extension id, per SSRC and as the latest one."""
        for section in sdp.audio:
            number = section.extension_id(AUDIO_LEVEL_URI)
            if number is None:
                continue
            self._level_id = number
            for ssrc in section.ssrcs:
                self._ssrc_level_ids.put(ssrc, number)

    def _telemetry(
        self,
        query_fields: tuple[VolumeField, ...],
        body_fields: tuple[VolumeField, ...],
        document: Document | None,
        decoded: Decoded,
        message: Message,
        t: float,
        out: Outcome,
        unread: dict[str, Any] | None = None,
    ) -> None:
        fields = query_fields + body_fields
        muted = self.muted
        grace = muted and self.in_grace(t)
        interval = self.timeline.changed_at if muted else None
        changed: list[str] = []
        if muted:
            for item in fields:
                key = (message.endpoint, item.path)
                previous = self._last_values.get(key)
                if previous is not None and previous[0] == interval and previous[1] != item.value:
                    changed.append(item.path)
                self._last_values.put(key, (interval, item.value))
        finding = muted and not grace
        severity: str | None = None
        if finding:
            lively = bool(changed) or varying(fields) or voice_active(fields)
            severity = "high" if lively else "medium"
        blocked: str | None = None
        if muted and self.settings.block:
            whole = unread is None or not self._blocks_unread()
            blocked = self._block(query_fields, body_fields, document, decoded, out, whole)
        layers = [*decoded.layers, document.syntax] if document is not None else ["query"]
        out.events.append(
            make_event(
                "telemetry",
                t,
                endpoint=message.endpoint,
                flow=message.flow_json(),
                direction="sent",
                fields=[item.to_json() for item in fields],
                encoding=layers,
                truncated=decoded.truncated,
                muted=muted,
                grace=grace,
                finding=finding,
                severity=severity,
                changed=changed,
                blocked=blocked,
                unread=unread,
            )
        )
        if blocked:
            out.events.append(
                make_event(
                    "blocked",
                    t,
                    action=blocked,
                    endpoint=message.endpoint,
                    flow=message.flow_json(),
                    fields=[item.path for item in fields],
                    reason="volume telemetry while muted",
                    unread=unread,
                )
            )
            out.notices.append(
                f"mutecheck: {blocked} volume telemetry while muted: {message.description}"
            )
        if finding:
            shown = ", ".join(f"{item.path}={item.shown}" for item in fields[:4])
            more = f" (+{len(fields) - 4} more)" if len(fields) > 4 else ""
            why = "values change while muted" if severity == "high" else "fields present"
            line = (
                f"mutecheck: MUTED but volume telemetry left [{severity}: {why}]: "
                f"{message.description}: {shown}{more}"
            )
            self._warn(out, t, "telemetry-while-muted", message.endpoint, line, message.flow_json())

    def _block(
        self,
        query_fields: tuple[VolumeField, ...],
        body_fields: tuple[VolumeField, ...],
        document: Document | None,
        decoded: Decoded,
        out: Outcome,
        whole: bool = True,
    ) -> str:
        """Decide drop or redact; redaction falls back to dropping when it cannot be faithful,
        and is not tried on a body not read ``whole`` (its unread part may hold more)."""
        if (
            self.settings.block_action == "redact"
            and whole
            and not query_fields
            and document is not None
        ):
            body = redact(document, body_fields)
            if body is not None:
                out.action = "redact"
                out.replacement = recompress(body, decoded.sniffed) if decoded.sniffed else body
                return "redacted"
        out.action = "drop"
        return "dropped"

    # --- media ----------------------------------------------------------------------------------

    def observe_datagram(self, flow: FlowRef, payload: bytes, sent: bool, t: float) -> Outcome:
        """One UDP datagram (``sent``: from the browser), seen at ``t``."""
        out = Outcome()
        if sent:
            self.counters["datagrams"] += 1
            self._media(flow, payload, t, "udp", out)
        self._sweep(t, out)
        return out

    def observe_stream(
        self,
        flow: FlowRef,
        data: bytes,
        sent: bool,
        t: float,
        transport: Transport,
        synced: bool = True,
    ) -> Outcome:
        """A piece of a TCP connection to a TURN server (``sent``: from the browser), as one
        read of the proxy returned it at ``t``: messages may be split or run together.
        ``synced``: the first piece of each direction starts a message (the connection was
        seen from its start); otherwise the framer looks for the next whole message."""
        out = Outcome()
        relay = self._relays.get(flow.id)
        if relay is None:
            relay = _Relay(flow, transport)
            self._relays.put(flow.id, relay)
        framer = relay.framer(sent, synced)
        messages = framer.feed(data)
        relay.messages[sent] += len(messages)
        if framer.skipped_bytes and not relay.lost_sync:
            relay.lost_sync = True
            line = (
                f"mutecheck: {TRANSPORT_NAMES[transport]} {flow.client} -> {flow.server}: "
                f"{framer.skipped_bytes} bytes {'sent' if sent else 'received'} were no whole "
                "TURN message; skipped to the next one (later skips: the relay event at the end)"
            )
            out.events.append(
                make_event("warning", t, code="turn-framing", message=line, flow=flow.to_json())
            )
        if sent:
            self.counters["turn_messages"] += len(messages)
            for message in messages:
                self._media(flow, message, t, transport, out)
        self._sweep(t, out)
        return out

    def end_stream(self, flow_id: str, t: float) -> Outcome:
        """A TCP connection to a TURN server ended: its framers go, its windows are written,
        and a ``relay`` summary says what was read."""
        out = Outcome()
        relay = self._relays.pop(flow_id)
        if relay is not None:
            self._end_relay(relay, t, out)
        return out

    def _end_relay(self, relay: _Relay, t: float, out: Outcome) -> None:
        for stream in self._streams.values():
            if stream.flow.id == relay.flow.id:
                self._flush(stream, t, out)
        out.events.append(
            make_event(
                "media",
                t,
                phase="relay",
                flow=relay.flow.to_json(),
                transport=relay.transport,
                turn_server=relay.flow.server,
                sent=relay.direction(True),
                received=relay.direction(False),
            )
        )

    def _media(
        self, flow: FlowRef, payload: bytes, t: float, transport: Transport, out: Outcome
    ) -> None:
        """One datagram the browser sent (or one TURN message it sent over TCP)."""
        if payload[:2] == _CHANNEL_BIND_REQUEST and classify(payload) is PacketKind.STUN:
            self._bind(flow.id, payload)
            return
        wrapper = payload
        opened = open_payload(payload, parse=_RTP_ONLY, srtp=True)
        if opened.turn_error is not None or opened.kind is not PacketKind.RTP:
            return
        via = opened.tunnel
        packet = opened.rtp
        if packet is None:
            self.counters["rtp_malformed"] += 1
            return
        self.counters["rtp"] += 1
        level_id = (
            self.settings.audio_level_id or self._ssrc_level_ids.get(packet.ssrc) or self._level_id
        )
        level: int | None = None
        if level_id:
            try:
                found = audio_level(packet, level_id)
            except MalformedPacket:
                found = None
            level = None if found is None else found.level
        key = (flow.id, packet.ssrc)
        stream = self._streams.get(key)
        if stream is None:
            change = self.timeline.change_at(t)  # at the packet's time: a replay comes later
            stream = _Stream(packet.ssrc, flow, level_id=level_id, transport=transport)
            self._streams.put(key, stream)
            event = make_event(
                "media",
                t,
                phase="stream",
                flow=flow.to_json(),
                ssrc=packet.ssrc,
                payload_type=packet.payload_type,
                audio_level_id=level_id,
                via=via,
                muted=change is not None and change.muted,
                transport=transport,
            )
            if via is not None:
                event["turn_server"] = flow.server
                event["peer"], event["channel"] = self._peer(flow.id, via, wrapper)
                stream.peer = event["peer"]
            out.events.append(event)
        stream.level_id = level_id
        stream.held.append((t, packet.payload_length, level))
        self._judge(stream, t - self.settings.hold, t, out)

    def _sweep(self, t: float, out: Outcome) -> None:
        """Judge every stream's packets held past ``Settings.hold`` at ``t``, the time of any
        media of the session: a stream that fell quiet is not left holding a loud muted packet
        until its own next one. At most a few times a hold (a pass over the streams costs their
        number, not to be paid per packet)."""
        hold = self.settings.hold
        if t < self._next_sweep or hold <= 0:
            return  # with no hold, each packet was judged as it came
        self._next_sweep = t + hold / 4
        until = t - hold
        for stream in self._streams.values():
            if stream.held and stream.held[0][0] <= until:
                self._judge(stream, until, t, out)

    def _judge(self, stream: _Stream, until: float, now: float, out: Outcome) -> None:
        """Judge the held packets of ``stream`` sent up to ``until`` by the mute state at their
        own time as the timeline says it now (a mark heard late but dated earlier counts), and
        write events at ``now``: a muted packet is counted (and warned about when loud outside
        the grace period); a window ends at the first packet ``media_window`` after its start,
        or where the state turned unmuted."""
        held = stream.held
        timeline = self.timeline
        while held and held[0][0] <= until:
            t, size, level = held.popleft()
            change = timeline.change_at(t)
            if change is None or not change.muted:
                if stream.window_start is not None:
                    self._write_window(stream, t if change is None else change.t, now, out)
                continue
            start = stream.window_start
            if start is not None and t - start >= self.settings.media_window:
                self._write_window(stream, t, now, out)
            if stream.window_start is None:
                stream.window_start = t
            stream.packets += 1
            stream.payload_bytes += size
            if level is None:
                stream.without_level += 1
                continue
            stream.level_min = level if stream.level_min is None else min(stream.level_min, level)
            stream.level_max = level if stream.level_max is None else max(stream.level_max, level)
            grace = 0 <= t - change.t < self.settings.grace
            if level < self.settings.silence_level and not grace:
                stream.not_silent += 1
                self._warn_media(stream, level, now, change.t, out)

    def _warn_media(
        self, stream: _Stream, level: int, now: float, interval: float | None, out: Outcome
    ) -> None:
        flow = stream.flow
        peer = f" (peer {stream.peer})" if stream.peer else ""
        line = (
            f"mutecheck: MUTED but audio is not silent: {TRANSPORT_NAMES[stream.transport]} "
            f"{flow.client} -> {flow.server}{peer} "
            f"SSRC {stream.ssrc}: audio level -{level} dBov "
            f"(silence is -{RTP_SILENCE}, threshold -{self.settings.silence_level})"
        )
        key = f"{flow.id}/{stream.ssrc}"
        self._warn(out, now, "media-while-muted", key, line, flow.to_json(), interval)

    def _bind(self, flow_id: str, payload: bytes) -> None:
        """RFC 8656 s12.1: a ChannelBind request names the peer its channel number reaches."""
        try:
            message = stun.parse(payload)
        except MalformedPacket:
            return
        if message is None or message.channel_number is None:
            return
        if message.xor_peer_address is not None:
            host, port = message.xor_peer_address
            self._channels.put((flow_id, message.channel_number), address_text((host, port)) or "")

    def _peer(self, flow_id: str, via: str, wrapper: bytes) -> tuple[str | None, int | None]:
        """(peer address, channel number) of a TURN-wrapped datagram, when they are known."""
        if via == "turn-channel":
            channel = parse_channel_data(wrapper)
            if channel is None:
                return None, None
            return self._channels.get((flow_id, channel.channel_number)), channel.channel_number
        if wrapper[:2] == _SEND_INDICATION:
            try:
                message = stun.parse(wrapper)
            except MalformedPacket:
                return None, None
            if message is not None and message.xor_peer_address is not None:
                return address_text(message.xor_peer_address), None
        return None, None

    def _flush(self, stream: _Stream, t: float, out: Outcome, end: float | None = None) -> None:
        """Judge every held packet of a stream now and end its muted window (at ``end``, default
        ``t``: when the state changed, or the session or connection ended)."""
        self._judge(stream, float("inf"), t, out)
        self._write_window(stream, t if end is None else end, t, out)

    def _write_window(self, stream: _Stream, end: float, now: float, out: Outcome) -> None:
        """Write the muted window of a stream (ending at ``end``) as a ``media`` event at
        ``now``; start over."""
        if stream.window_start is None:
            return
        out.events.append(
            make_event(
                "media",
                now,
                phase="muted-window",
                flow=stream.flow.to_json(),
                ssrc=stream.ssrc,
                window=[round(stream.window_start, 6), round(end, 6)],
                packets=stream.packets,
                payload_bytes=stream.payload_bytes,
                audio_level_id=stream.level_id,
                transport=stream.transport,
                not_silent=stream.not_silent,
                without_level=stream.without_level,
                level_min=stream.level_min,
                level_max=stream.level_max,
            )
        )
        stream.window_start = None
        stream.packets = stream.payload_bytes = stream.not_silent = stream.without_level = 0
        stream.level_min = stream.level_max = None

    def finish(self, t: float) -> Outcome:
        """End of the session: flush what is still open."""
        out = Outcome()
        for relay in self._relays.values():
            self._end_relay(relay, t, out)
        self._relays = _Lru(256)
        for stream in self._streams.values():
            self._flush(stream, t, out)
        return out

    # --- warnings -------------------------------------------------------------------------------

    def _warn(
        self,
        out: Outcome,
        t: float,
        code: str,
        key: str,
        line: str,
        flow: dict[str, Any],
        interval: float | None = None,
    ) -> None:
        """A finding's warning: the first in each mute interval (``interval``: when it began,
        default the current one), then one per warn_interval."""
        suppressed = self._rate_limited((code, key), t, interval)
        if suppressed is None:
            return
        if suppressed:
            line += f" ({suppressed} more since the last warning)"
        out.warnings.append(line)
        out.events.append(
            make_event("warning", t, code=code, message=line, flow=flow, repeats=suppressed)
        )

    def _rate_limited(
        self, key: tuple[str, str], t: float, interval: float | None = None
    ) -> int | None:
        """The first warning of ``key`` in each mute interval, then one per warn_interval:
        None when this one is suppressed (and counted), else how many were since the last."""
        if interval is None:
            interval = self.timeline.changed_at
        state = self._warned.get(key)
        if (
            state is not None
            and state.interval == interval
            and t - state.last < self.settings.warn_interval
        ):
            state.suppressed += 1
            return None
        suppressed = state.suppressed if state is not None and state.interval == interval else 0
        self._warned.put(key, _Warned(interval, t))
        return suppressed

    def _warn_once(self, out: Outcome, t: float, code: str, message: Message, text: str) -> None:
        """A problem with the input: one warning per endpoint and problem, then silence."""
        if (code, message.endpoint) in self._warned:
            return
        self._warned.put((code, message.endpoint), _Warned(None, t))
        line = f"mutecheck: {message.description}: {text} (passed through untouched)"
        out.events.append(
            make_event(
                "warning",
                t,
                code=code,
                message=line,
                flow=message.flow_json(),
                endpoint=message.endpoint,
            )
        )


@functools.lru_cache(maxsize=64)
def _parsed_sdp(text: str) -> tuple[SessionDescription, dict[str, Any]]:
    """Parse and describe an SDP once: signaling repeats the same offer (renegotiation,
    retransmission, several listeners), and parsing is the dearest step of a message.
    The description is only ever serialised, never changed, so sharing it is safe."""
    parsed = parse_sdp(text)
    return parsed, describe_sdp(parsed)
