"""Who was muted: the local side of the call, from every input that can tell, and how sure each is.

An audit judges only the streams the muted side sends; the other participants' incoming speech is
not a leak. Each input that says something about the muted side gives a :class:`Clue` with a
confidence, in this order of priority:

``certain``
    ``--local ADDR[:PORT]``: the user said so. Nothing else is consulted.
``high``
    session.json ``network.browser`` (the lab knows where the browser ran); the SDP the browser
    sent (events.jsonl: its SSRCs and ICE candidates); the addon's reverse-UDP ``media`` events
    (the browser's datagrams: their SSRC and client endpoint); ICE checks in the capture that
    carry the ufrag of the SDP the browser sent (a Binding request's USERNAME is
    ``remote_ufrag:local_ufrag``, so its sender is the local agent); a capture imported from
    Chromium's RTP dump (its interface address is the browser's: the dump marks each packet
    outgoing or incoming). A TURN server (it answers Allocate, ChannelBind, ... requests) is
    never the muted user: its address is marked *not* local with high confidence.
``medium``
    the one address that sends TURN requests (a TURN client: the capturing computer's, unless the
    capture was taken on the TURN server); ICE-lite: one side sends every ICE check and the other
    only answers, so the first is the full agent (a browser) and the second a server; a
    libwebrtc ICE agent (its checks carry GOOG-NETWORK-INFO) facing only libnice agents (USERNAME
    in their Binding success responses: a media server such as Janus): the first is the browser;
    the capture's interface addresses (pcapng ``if_IPv4addr``/``if_IPv6addr``: the capturing
    computer, the muted user's only when the capture was taken there); the non-loopback client
    address of the browser's connections to the proxy (events.jsonl ``flow.client``), when the
    capture shows it sending media.
``low``
    the ICE controlling agent (ICE-CONTROLLING, USE-CANDIDATE): usually the side that made the
    offer, which may be either participant. Shown as a hint, never used to decide.

The side is the union of the clues of the best confidence found; when two of them name
different addresses, the sources disagree and the side stays unknown. Parsing is left to the
wire modules: this module reads the capture only to collect the STUN messages and interfaces.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from decoders.errors import CaptureError, MalformedPacket
from decoders.session.events import Event

CONFIDENCES: Final = ("certain", "high", "medium", "assumed", "low", "none")
"""From surest to least sure. ``assumed``: the only address that sends audio was taken."""
DECIDING: Final = ("certain", "high", "medium")
"""Confidences that decide the side; ``low`` clues are hints only."""
MAX_STUN_FRAMES: Final = 128
"""STUN messages read from the capture (ICE checks and TURN requests come early in a call)."""
TURN_METHODS: Final = frozenset({0x003, 0x004, 0x006, 0x008, 0x009})
"""Allocate, Refresh, Send, CreatePermission, ChannelBind (RFC 8656): a client's requests."""
METHOD_BINDING: Final = 0x001


@dataclass(frozen=True, slots=True)
class Clue:
    """What one input says about the muted side, and how sure it is (:data:`CONFIDENCES`)."""

    source: str
    confidence: str
    detail: str
    addresses: frozenset[str] = frozenset()
    endpoints: frozenset[tuple[str, int]] = frozenset()
    ssrcs: frozenset[int] = frozenset()
    remote: frozenset[str] = frozenset()
    """Addresses shown *not* to be the muted side (a TURN server, an ICE-lite server)."""

    @property
    def claims(self) -> bool:
        return bool(self.addresses or self.endpoints or self.ssrcs)

    @property
    def claimed_addresses(self) -> frozenset[str]:
        return self.addresses | {address for address, _ in self.endpoints}

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "confidence": self.confidence,
            "detail": self.detail,
            "addresses": sorted(self.addresses),
            "endpoints": [f"{a}:{p}" for a, p in sorted(self.endpoints)],
            "ssrcs": sorted(self.ssrcs),
            "not_muted": sorted(self.remote),
        }


@dataclass(frozen=True, slots=True)
class LocalSide:
    """Who is the muted side: its addresses, (address, port) endpoints and SSRCs; ``how``.

    ``remote`` holds addresses shown not to be the muted side; ``clues`` every input's word.
    """

    addresses: frozenset[str] = frozenset()
    endpoints: frozenset[tuple[str, int]] = frozenset()
    ssrcs: frozenset[int] = frozenset()
    how: str = "unknown"
    confidence: str = "none"
    remote: frozenset[str] = frozenset()
    clues: tuple[Clue, ...] = ()

    @property
    def known(self) -> bool:
        return bool(self.addresses or self.endpoints or self.ssrcs)

    @property
    def sure(self) -> bool:
        """Certain or high: a leak found on its streams needs no caveat."""
        return self.known and self.confidence in ("certain", "high")

    def sends(self, src: str, src_port: int, ssrc: int) -> bool | None:
        """Does the muted side send this stream? None when the side is unknown."""
        if src in self.remote:
            return False
        if not self.known:
            return None
        return ssrc in self.ssrcs or (src, src_port) in self.endpoints or src in self.addresses

    def to_json(self) -> dict[str, Any]:
        return {
            "how": self.how,
            "confidence": self.confidence,
            "addresses": sorted(self.addresses),
            "endpoints": [f"{a}:{p}" for a, p in sorted(self.endpoints)],
            "ssrcs": sorted(self.ssrcs),
            "not_muted": sorted(self.remote),
            "evidence": [clue.to_json() for clue in self.clues],
        }


# -- inputs other than the capture -------------------------------------------------------------
def given_side(given: Sequence[str]) -> LocalSide:
    """``--local`` values: an address, or ``address:port`` (``[v6]:port`` for IPv6)."""
    addresses: set[str] = set()
    endpoints: set[tuple[str, int]] = set()
    for item in given:
        host, sep, port = item.rpartition(":")
        if sep and port.isdigit() and host and (host.count(":") == 0 or host.endswith("]")):
            endpoints.add((host.strip("[]"), int(port)))
        else:
            addresses.add(item.strip("[]"))
    clue = Clue("--local", "certain", "given on the command line", frozenset(addresses))
    return LocalSide(
        frozenset(addresses), frozenset(endpoints), frozenset(), "--local", "certain", clues=(clue,)
    )


def manifest_clue(manifest: dict[str, Any]) -> Clue | None:
    """session.json ``network.browser``: the lab's own record of where the browser ran."""
    network = manifest.get("network")
    browser = network.get("browser") if isinstance(network, dict) else None
    if not isinstance(browser, dict) or not isinstance(browser.get("address"), str):
        return None
    address = str(browser["address"])
    port = browser.get("ice_udp_port")
    return Clue(
        "session.json network.browser",
        "high",
        f"the lab ran the browser at {address}",
        frozenset({address}),
        frozenset({(address, port)}) if isinstance(port, int) else frozenset(),
    )


def _flow_client(event: Event) -> tuple[str, int] | None:
    flow = event.get("flow")
    client = flow.get("client") if isinstance(flow, dict) else None
    if not isinstance(client, str):
        return None
    host, sep, port = client.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def _routable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_unspecified)


def sent_ufrags(events: Iterable[Event]) -> frozenset[str]:
    """ICE ufrags of the SDP the browser sent (RFC 8839 ``a=ice-ufrag``)."""
    from decoders.session.sdp import parse_sdp

    ufrags: set[str] = set()
    for event in events:
        if event.get("kind") != "sdp" or event.get("direction") != "sent":
            continue
        text = event.get("sdp")
        if not isinstance(text, str):
            continue
        try:
            sdp = parse_sdp(text)
        except MalformedPacket:
            continue
        ufrags.update(m.ice_ufrag for m in sdp.media if m.ice_ufrag)
    return frozenset(ufrags)


def event_clues(events: Sequence[Event], seen: frozenset[str]) -> list[Clue]:
    """The SDP the browser sent, the addon's media events, the proxy's client addresses."""
    clues: list[Clue] = []
    ssrcs: set[int] = set()
    endpoints: set[tuple[str, int]] = set()
    for event in events:
        if event.get("kind") != "sdp" or event.get("direction") != "sent":
            continue
        parsed = event.get("parsed")
        for section in parsed.get("media", ()) if isinstance(parsed, dict) else ():
            if not isinstance(section, dict):
                continue
            ssrcs.update(s for s in section.get("ssrcs", ()) if isinstance(s, int))
            for candidate in section.get("candidates", ()):
                # "<transport> <address> <port> <type>": a relay candidate is an address the
                # TURN server allocated (its own address), never the browser's
                words = str(candidate).split()
                if len(words) >= 3 and words[2].isdigit() and words[3:4] != ["relay"]:
                    endpoints.add((words[1], int(words[2])))
    if ssrcs or endpoints:
        clues.append(
            Clue(
                "SDP the browser sent",
                "high",
                f"events.jsonl: {len(ssrcs)} SSRC(s) and {len(endpoints)} ICE candidate(s) "
                "in the SDP the browser sent",
                endpoints=frozenset(endpoints),
                ssrcs=frozenset(ssrcs),
            )
        )
    media_ssrcs: set[int] = set()
    media_endpoints: set[tuple[str, int]] = set()
    for event in events:
        if event.get("kind") == "media" and event.get("phase") == "stream":
            if isinstance(event.get("ssrc"), int):
                media_ssrcs.add(int(event["ssrc"]))
            client = _flow_client(event)
            if client is not None:
                media_endpoints.add(client)
    if media_ssrcs or media_endpoints:
        clues.append(
            Clue(
                "the addon's media events",
                "high",
                f"events.jsonl: the browser's own UDP media through the proxy "
                f"({len(media_ssrcs)} SSRC(s))",
                endpoints=frozenset(media_endpoints),
                ssrcs=frozenset(media_ssrcs),
            )
        )
    proxied = {
        client[0]
        for event in events
        if event.get("kind") != "media" and (client := _flow_client(event)) is not None
    }
    shown = frozenset(a for a in proxied if _routable(a) and a in seen)
    if shown:
        clues.append(
            Clue(
                "proxy client address",
                "medium",
                "events.jsonl: the browser's connections to the proxy came from "
                f"{', '.join(sorted(shown))}, which sends media in the capture",
                addresses=shown,
            )
        )
    return clues


# -- the capture -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StunSeen:
    """One STUN message in the capture, with its outer addresses."""

    src: str
    src_port: int
    dst: str
    dst_port: int
    message_class: str
    method: int
    username: str | None
    controlling: bool
    use_candidate: bool
    libwebrtc: bool = False
    """The message carries libwebrtc's GOOG-NETWORK-INFO attribute."""

    @property
    def ice_check(self) -> bool:
        """An ICE connectivity check: a Binding request with USERNAME (RFC 8445 section 7.1)."""
        return (
            self.message_class == "request"
            and self.method == METHOD_BINDING
            and self.username is not None
        )


@dataclass(frozen=True, slots=True)
class CaptureFacts:
    """What the capture says about who is who: interfaces and STUN messages."""

    interfaces: tuple[tuple[str | None, tuple[str, ...]], ...] = ()
    """(name, own addresses) of each capture interface."""
    stun: tuple[StunSeen, ...] = ()


def read_capture_facts(path: Path, stun_frames: Iterable[int]) -> CaptureFacts:
    """The capture's interfaces and the STUN messages of the given frames (the first
    :data:`MAX_STUN_FRAMES`), through the wire modules' own reader and parsers."""
    from decoders.wire import demux
    from decoders.wire.capture import CaptureReader
    from decoders.wire.net import Unwrapper

    stun_only = (demux.PacketKind.STUN,)
    wanted = set(sorted(stun_frames)[:MAX_STUN_FRAMES])
    last = max(wanted, default=0)
    seen: list[StunSeen] = []
    unwrapper = Unwrapper()
    try:
        with path.open("rb") as fo:
            reader = CaptureReader(fo)
            for frame in reader:
                if frame.number > last:
                    break
                if frame.number not in wanted:
                    continue
                for datagram in unwrapper.feed(frame):
                    opened = demux.open_payload(datagram.payload, parse=stun_only)
                    message = opened.stun
                    if opened.turn_error is not None or message is None:
                        continue
                    seen.append(
                        StunSeen(
                            datagram.src,
                            datagram.src_port,
                            datagram.dst,
                            datagram.dst_port,
                            message.message_class,
                            message.method,
                            message.username,
                            message.ice_controlling is not None,
                            message.use_candidate,
                            message.from_libwebrtc,
                        )
                    )
            interfaces = tuple((i.name, i.addresses) for i in reader.interfaces)
    except (OSError, CaptureError):
        return CaptureFacts()
    return CaptureFacts(interfaces, tuple(seen))


def capture_clues(facts: CaptureFacts, ufrags: frozenset[str], seen: frozenset[str]) -> list[Clue]:
    """Clues from the capture itself: ICE ufrags, TURN roles, ICE-lite, interfaces, ICE roles."""
    clues: list[Clue] = []
    checks = [s for s in facts.stun if s.ice_check]
    clues += _ufrag_clues(checks, ufrags)
    clues += _interface_clues(facts.interfaces, seen)
    clues += _turn_clues(facts.stun)
    clues += _ice_role_clues(facts.stun, checks)
    clues += _ice_agent_clues(facts.stun, checks)
    return clues


def _ufrag_clues(checks: Sequence[StunSeen], ufrags: frozenset[str]) -> list[Clue]:
    endpoints: set[tuple[str, int]] = set()
    matched = 0
    for check in checks:
        assert check.username is not None
        remote_ufrag, _, local_ufrag = check.username.partition(":")
        if local_ufrag in ufrags:
            endpoints.add((check.src, check.src_port))
            matched += 1
        elif remote_ufrag in ufrags:
            endpoints.add((check.dst, check.dst_port))
            matched += 1
    if not endpoints:
        return []
    return [
        Clue(
            "ICE checks with the browser's ufrag",
            "high",
            f"{matched} ICE check(s) name the ufrag of the SDP the browser sent "
            "(USERNAME is remote:local)",
            endpoints=frozenset(endpoints),
        )
    ]


def _interface_clues(
    interfaces: Sequence[tuple[str | None, tuple[str, ...]]], seen: frozenset[str]
) -> list[Clue]:
    from decoders.media.rtpdump import RTPDUMP_INTERFACE

    clues: list[Clue] = []
    dumped = {a for name, addresses in interfaces if name == RTPDUMP_INTERFACE for a in addresses}
    if dumped:
        clues.append(
            Clue(
                "Chromium RTP dump",
                "high",
                "imported from Chromium's RTP dump, which marks the browser's own packets "
                f"outgoing: they were written from {', '.join(sorted(dumped))}",
                addresses=frozenset(dumped),
            )
        )
    own = {a for name, addresses in interfaces if name != RTPDUMP_INTERFACE for a in addresses}
    shown = frozenset(own & seen)
    if shown and shown != seen:
        clues.append(
            Clue(
                "capture interface addresses",
                "medium",
                f"the capturing computer has {', '.join(sorted(shown))} (pcapng interface "
                "addresses): the muted user's when the capture was taken on their computer",
                addresses=shown,
            )
        )
    return clues


def _turn_clues(messages: Sequence[StunSeen]) -> list[Clue]:
    clients: set[str] = set()
    servers: set[str] = set()
    for m in messages:
        if m.method not in TURN_METHODS:
            continue
        if m.message_class in ("request", "indication") and m.method != 0x007:
            clients.add(m.src)
            servers.add(m.dst)
        elif m.message_class in ("success", "error"):
            servers.add(m.src)
            clients.add(m.dst)
    clients -= servers
    if not servers:
        return []
    clues = [
        Clue(
            "TURN server",
            "high",
            f"{', '.join(sorted(servers))} answers TURN requests: a relay, never the muted user",
            remote=frozenset(servers),
        )
    ]
    if len(clients) == 1:
        clues.append(
            Clue(
                "TURN client",
                "medium",
                f"{next(iter(clients))} is the only TURN client in the capture (the capturing "
                "computer's, unless the capture was taken on the relay)",
                addresses=frozenset(clients),
            )
        )
    return clues


def _ice_role_clues(messages: Sequence[StunSeen], checks: Sequence[StunSeen]) -> list[Clue]:
    senders = {c.src for c in checks}
    answering = {
        m.src for m in messages if m.method == METHOD_BINDING and m.message_class == "success"
    }
    lite = {c.dst for c in checks} - senders
    lite &= answering
    if lite:
        full = frozenset(c.src for c in checks if c.dst in lite)
        if len(full) == 1:
            return [
                Clue(
                    "ICE-lite peer",
                    "medium",
                    f"{next(iter(full))} sends every ICE check and {', '.join(sorted(lite))} "
                    "only answers: a full ICE agent (a browser) facing an ICE-lite server",
                    addresses=full,
                    remote=frozenset(lite),
                )
            ]
    controlling = frozenset(c.src for c in checks if c.controlling or c.use_candidate)
    if len(senders) > 1 and len(controlling) == 1:
        return [
            Clue(
                "ICE controlling agent",
                "low",
                f"{next(iter(controlling))} is the ICE controlling agent (ICE-CONTROLLING, "
                "USE-CANDIDATE): usually the side that made the offer, which may be either "
                "participant",
                addresses=controlling,
            )
        ]
    return []


def _ice_agent_clues(messages: Sequence[StunSeen], checks: Sequence[StunSeen]) -> list[Clue]:
    """A browser facing a media server: exactly one address sends ICE checks as libwebrtc does
    (GOOG-NETWORK-INFO: Chrome, Edge, Safari), and every other ICE agent answers checks as
    libnice does, echoing USERNAME in its Binding success responses (no browser's ICE does:
    libnice is the ICE agent of the Janus and Kurento media servers). Two browsers, or a
    browser facing any other ICE agent (Firefox, aiortc: possibly another participant), say
    nothing here."""
    browsers = {c.src for c in checks if c.libwebrtc}
    agents = {c.src for c in checks} | {m.src for m in messages if m.method == METHOD_BINDING}
    libnice = {
        m.src
        for m in messages
        if m.method == METHOD_BINDING and m.message_class == "success" and m.username is not None
    }
    others = agents - browsers
    if len(browsers) != 1 or not others or not others <= libnice:
        return []
    browser = next(iter(browsers))
    return [
        Clue(
            "libwebrtc browser facing a libnice server",
            "medium",
            f"{browser} sends ICE checks as libwebrtc does (GOOG-NETWORK-INFO: Chrome, Edge, "
            f"Safari) and {', '.join(sorted(others))} answers them as libnice does (USERNAME in "
            "Binding success responses: the ICE agent of media servers such as Janus)",
            addresses=frozenset(browsers),
            remote=frozenset(others),
        )
    ]


# -- all together ------------------------------------------------------------------------------
def combine(clues: Sequence[Clue]) -> LocalSide:
    """The side the best clues agree on (see the module docstring)."""
    remote = frozenset(
        a for c in clues if c.confidence in DECIDING and c.confidence != "medium" for a in c.remote
    )
    usable = [c for c in clues if c.claims and c.confidence in DECIDING]
    # a medium clue claiming a relay, or a medium "not local" contradicted by a surer clue
    usable = [c for c in usable if not (c.confidence == "medium" and c.claimed_addresses & remote)]
    surer = {a for c in usable if c.confidence != "medium" for a in c.claimed_addresses}
    remote |= frozenset(
        a for c in clues if c.confidence == "medium" for a in c.remote if a not in surer
    )
    if not usable:
        return LocalSide(remote=remote, clues=tuple(clues))
    best = min(CONFIDENCES.index(c.confidence) for c in usable)
    chosen = [c for c in usable if CONFIDENCES.index(c.confidence) == best]
    named = [c.claimed_addresses for c in chosen if c.claimed_addresses]
    if any(not (a & b) for i, a in enumerate(named) for b in named[i + 1 :]):
        sources = ", ".join(c.source for c in chosen)
        return LocalSide(
            how=f"unknown: the sources disagree ({sources})", remote=remote, clues=tuple(clues)
        )
    return LocalSide(
        frozenset().union(*(c.addresses for c in chosen)),
        frozenset().union(*(c.endpoints for c in chosen)),
        frozenset().union(*(c.ssrcs for c in chosen)),
        "; ".join(c.source for c in chosen),
        CONFIDENCES[best],
        remote,
        tuple(clues),
    )


def infer_local(
    given: Sequence[str],
    manifest: dict[str, Any],
    events: Sequence[Event],
    *,
    facts: CaptureFacts | None = None,
    seen: frozenset[str] = frozenset(),
) -> LocalSide:
    """Who was muted, from ``--local``, session.json, events.jsonl and the capture's facts.

    ``seen`` holds the addresses the capture's RTP streams use (clues about other addresses
    say nothing about this capture).
    """
    if given:
        return given_side(given)
    clues: list[Clue] = []
    lab = manifest_clue(manifest)
    if lab is not None:
        clues.append(lab)
    clues += event_clues(events, seen)
    if facts is not None:
        clues += capture_clues(facts, sent_ufrags(events), seen)
    return combine(clues)


def local_side(
    given: Sequence[str], manifest: dict[str, Any], events: Sequence[Event]
) -> LocalSide:
    """Who was muted from ``--local``, the lab's manifest or events.jsonl (no capture)."""
    return infer_local(given, manifest, events)


def assumed_side(side: LocalSide, address: str) -> LocalSide:
    """The only address that sends audio, taken as the muted side (the clues are kept)."""
    return LocalSide(
        frozenset({address}),
        how=f"assumed: {address} is the only address that sends audio in the capture",
        confidence="assumed",
        remote=side.remote,
        clues=side.clues,
    )
