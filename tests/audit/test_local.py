"""Tests for decoders.audit.local: every source that tells who was muted, and how sure it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.corpus import JANUS_DEMOS, janus_recording, lab_session
from helpers.packet_fixtures import load
from helpers.peer_talks import peer_talks

from decoders.audit.analysis import Inputs, analyze
from decoders.audit.local import (
    CaptureFacts,
    Clue,
    LocalSide,
    StunSeen,
    assumed_side,
    capture_clues,
    combine,
    event_clues,
    given_side,
    infer_local,
    local_side,
    read_capture_facts,
    sent_ufrags,
)
from decoders.media.rtpdump import RTPDUMP_INTERFACE
from decoders.media.scan import scan_streams
from decoders.session.events import Event, read_events
from decoders.wire.capture import LINKTYPE_ETHERNET
from decoders.wire.demux import PacketKind
from decoders.wire.pcapwriter import PcapngWriter, build_udp_frame

T0 = 1_795_989_000_000_000_000


def events_of(folder: Path) -> list[Event]:
    with (folder / "events.jsonl").open("rb") as fo:
        return list(read_events(fo))


def facts_of(capture: Path) -> tuple[CaptureFacts, frozenset[str]]:
    scan = scan_streams(capture)
    stun = scan.rows["frame"][scan.rows.kind_mask(PacketKind.STUN)].tolist()
    seen = frozenset(a for s in scan.streams for a in (s.src, s.dst))
    return read_capture_facts(capture, stun), seen


def browser_of(folder: Path) -> tuple[str, int]:
    browser = json.loads((folder / "session.json").read_text())["network"]["browser"]
    return browser["address"], browser["ice_udp_port"]


def test_given_is_certain_and_parses_ports() -> None:
    side = given_side(["10.0.0.1", "10.0.0.2:5000", "[fd00::1]:7", "fd00::2"])
    assert side.addresses == {"10.0.0.1", "fd00::2"}
    assert side.endpoints == {("10.0.0.2", 5000), ("fd00::1", 7)}
    assert side.confidence == "certain" and side.how == "--local" and side.sure
    # the user's word is final: nothing else is consulted
    manifest = {"network": {"browser": {"address": "10.9.9.9"}}}
    assert infer_local(["10.0.0.1"], manifest, []).addresses == {"10.0.0.1"}


def test_lab_session_manifest_and_sdp_agree() -> None:
    folder = lab_session("track-disabled")
    manifest = json.loads((folder / "session.json").read_text())
    side = local_side([], manifest, events_of(folder))
    address, port = browser_of(folder)
    assert side.confidence == "high"
    assert side.how == "session.json network.browser; SDP the browser sent"
    assert side.addresses == {address} and (address, port) in side.endpoints
    scan = scan_streams(folder / "capture.pcapng")
    (stream,) = scan.streams
    assert stream.ssrc in side.ssrcs and side.sends(stream.src, stream.src_port, stream.ssrc)
    assert [c.source for c in side.clues] == [
        "session.json network.browser",
        "SDP the browser sent",
    ]


def test_ice_checks_carry_the_browser_ufrag() -> None:
    """The SDP the browser sent names its ufrag; the capture's checks tie it to an endpoint."""
    folder = lab_session("ui-only")
    events = events_of(folder)
    ufrags = sent_ufrags(events)
    assert len(ufrags) == 1
    facts, seen = facts_of(folder / "capture.pcapng")
    checks = [s for s in facts.stun if s.ice_check]
    assert checks and all(s.username for s in checks)
    clues = {c.source: c for c in capture_clues(facts, ufrags, seen)}
    ufrag = clues["ICE checks with the browser's ufrag"]
    assert ufrag.confidence == "high"
    assert {a for a, _ in ufrag.endpoints} == {browser_of(folder)[0]}
    assert browser_of(folder) in ufrag.endpoints
    # without the SDP the same capture only hints: Chromium made the offer and controls ICE
    alone = infer_local([], {}, [], facts=facts, seen=seen)
    assert not alone.known and alone.confidence == "none"
    (hint,) = alone.clues
    assert hint.source == "ICE controlling agent" and hint.confidence == "low"
    assert hint.addresses == {browser_of(folder)[0]}


def test_events_sdp_media_and_proxy_clients() -> None:
    sdp = {
        "kind": "sdp",
        "direction": "sent",
        "parsed": {
            "media": [
                {
                    "ssrcs": [99],
                    # the relay candidate is the TURN server's allocation, not the browser
                    "candidates": ["udp 10.1.1.1 5555 host", "udp 10.0.0.5 49200 relay"],
                }
            ]
        },
    }
    received = {**sdp, "direction": "received"}
    media = {
        "kind": "media",
        "phase": "stream",
        "ssrc": 7,
        "flow": {"type": "udp", "client": "192.168.1.20:40000", "server": "10.0.0.5:3478"},
    }
    mark = {"kind": "mute", "flow": {"client": "192.168.1.20:5123"}}
    loopback = {"kind": "telemetry", "flow": {"client": "127.0.0.1:5123"}}
    seen = frozenset({"192.168.1.20", "10.0.0.5", "127.0.0.1"})
    clues = {c.source: c for c in event_clues([sdp, received, media, mark, loopback], seen)}
    assert clues["SDP the browser sent"].ssrcs == {99}
    assert clues["SDP the browser sent"].endpoints == {("10.1.1.1", 5555)}
    assert clues["the addon's media events"].ssrcs == {7}
    assert clues["the addon's media events"].endpoints == {("192.168.1.20", 40000)}
    proxy = clues["proxy client address"]
    assert proxy.confidence == "medium" and proxy.addresses == {"192.168.1.20"}
    # a proxy client the capture never shows says nothing about it
    assert "proxy client address" not in {c.source for c in event_clues([mark], frozenset())}


def test_relayed_lab_call_side_from_session_and_sdp() -> None:
    """A relay-only call: the browser's SDP holds only a relay candidate (on the TURN server's
    address); the side is still the browser, known for sure, not assumed."""
    folder = lab_session("ui-only-relay-tcp")
    result = analyze(Inputs(session_dir=folder))
    assert result.local.confidence == "high" and result.local.addresses == {"10.77.0.1"}
    assert "10.77.0.2" in result.local.remote


def test_turn_server_is_never_the_muted_side(tmp_path: Path) -> None:
    """aioice's TURN messages: the side sending Allocate/ChannelBind is the client."""
    client, server = ("192.0.2.10", 50000), ("198.51.100.1", 3478)
    path = tmp_path / "turn.pcapng"
    with path.open("wb") as fo:
        writer = PcapngWriter(fo)
        interface = writer.add_interface(LINKTYPE_ETHERNET)
        sequence = [
            (client, server, "turn_allocate_request"),
            (server, client, "turn_allocate_unauthorized"),
            (client, server, "turn_allocate_request"),
            (server, client, "turn_allocate_success"),
            (client, server, "turn_channel_bind_request"),
            (client, server, "turn_channel_data_udp"),
        ]
        for k, (src, dst, name) in enumerate(sequence):
            frame = build_udp_frame(LINKTYPE_ETHERNET, *src, *dst, load(name))
            writer.write(interface, T0 + k * 1_000_000, frame)
    facts = read_capture_facts(path, range(1, 7))
    assert len(facts.stun) == 5  # the ChannelData frame carries no STUN message
    clues = {c.source: c for c in capture_clues(facts, frozenset(), frozenset())}
    assert clues["TURN server"].remote == {server[0]} and clues["TURN server"].confidence == "high"
    assert clues["TURN client"].addresses == {client[0]}
    assert clues["TURN client"].confidence == "medium"
    side = combine(list(clues.values()))
    assert side.addresses == {client[0]} and side.remote == {server[0]}
    assert side.sends(server[0], 3478, 1) is False and side.sends(client[0], 50000, 1) is True


def test_ice_lite_and_controlling() -> None:
    def check(src: str, dst: str, *, controlling: bool = False) -> StunSeen:
        return StunSeen(src, 1, dst, 2, "request", 1, "a:b", controlling, controlling)

    def success(src: str, dst: str) -> StunSeen:
        return StunSeen(src, 2, dst, 1, "success", 1, None, False, False)

    lite = CaptureFacts(stun=(check("10.0.0.1", "10.0.0.9"), success("10.0.0.9", "10.0.0.1")))
    (clue,) = capture_clues(lite, frozenset(), frozenset())
    assert clue.source == "ICE-lite peer" and clue.confidence == "medium"
    assert clue.addresses == {"10.0.0.1"} and clue.remote == {"10.0.0.9"}
    # without an answer it may be a one-way capture: nothing is claimed
    assert (
        capture_clues(CaptureFacts(stun=(check("10.0.0.1", "10.0.0.9"),)), frozenset(), frozenset())
        == []
    )
    both = CaptureFacts(
        stun=(
            check("10.0.0.1", "10.0.0.9", controlling=True),
            check("10.0.0.9", "10.0.0.1"),
            success("10.0.0.9", "10.0.0.1"),
        )
    )
    (weak,) = capture_clues(both, frozenset(), frozenset())
    assert weak.confidence == "low" and weak.addresses == {"10.0.0.1"}
    assert not combine([weak]).known  # a hint never decides


def test_interface_addresses() -> None:
    seen = frozenset({"10.77.0.1", "10.77.0.2"})
    on_browser = CaptureFacts(interfaces=(("eth0", ("10.77.0.1", "fe80::1")),))
    (clue,) = capture_clues(on_browser, frozenset(), seen)
    assert clue.source == "capture interface addresses" and clue.confidence == "medium"
    assert clue.addresses == {"10.77.0.1"}
    # a capture on a machine that holds both ends (a lab's root namespace) says nothing
    both = CaptureFacts(interfaces=(("veth", ("10.77.0.1", "10.77.0.2")),))
    assert capture_clues(both, frozenset(), seen) == []
    dumped = CaptureFacts(interfaces=((RTPDUMP_INTERFACE, ("10.0.0.1",)),))
    (dump,) = capture_clues(dumped, frozenset(), seen)
    assert dump.source == "Chromium RTP dump" and dump.confidence == "high"


def test_interface_address_decides_a_two_way_capture(tmp_path: Path) -> None:
    """A capture whose pcapng interface records the browser's address: inferred (medium)."""
    merged = tmp_path / "merged.pcapng"
    browser, peer = peer_talks(lab_session("track-disabled"), lab_session("ui-only"), merged)
    recorded = tmp_path / "recorded.pcapng"
    from decoders.wire.capture import open_capture

    with open_capture(merged) as reader, recorded.open("wb") as fo:
        writer = PcapngWriter(fo)
        interface = writer.add_interface(
            LINKTYPE_ETHERNET, ts_resolution_exp10=9, name="eth0", addresses=(browser,)
        )
        for frame in reader:
            writer.write(interface, frame.timestamp_ns, frame.data)
    facts, seen = facts_of(recorded)
    side = infer_local([], {}, [], facts=facts, seen=seen)
    assert side.addresses == {browser} and side.confidence == "medium"
    assert peer not in side.addresses


def test_sources_that_disagree_leave_the_side_unknown() -> None:
    a = Clue("one", "high", "x", addresses=frozenset({"10.0.0.1"}))
    b = Clue("two", "high", "y", addresses=frozenset({"10.0.0.2"}))
    side = combine([a, b])
    assert not side.known and side.how == "unknown: the sources disagree (one, two)"
    # a surer source wins over a less sure one
    c = Clue("three", "medium", "z", addresses=frozenset({"10.0.0.2"}))
    assert combine([a, c]).addresses == {"10.0.0.1"} and combine([a, c]).confidence == "high"
    # a medium claim on an address a high clue shows is a relay is dropped
    relay = Clue("TURN server", "high", "r", remote=frozenset({"10.0.0.2"}))
    assert not combine([relay, c]).known and combine([relay, c]).remote == {"10.0.0.2"}


def test_assumed_side_keeps_the_evidence() -> None:
    hint = Clue("ICE controlling agent", "low", "h", addresses=frozenset({"10.0.0.1"}))
    side = assumed_side(LocalSide(remote=frozenset({"10.0.0.9"}), clues=(hint,)), "10.0.0.1")
    assert side.confidence == "assumed" and side.known and not side.sure
    assert side.how.startswith("assumed: 10.0.0.1")
    document = side.to_json()
    assert document["evidence"][0]["source"] == "ICE controlling agent"
    assert document["not_muted"] == ["10.0.0.9"]


def test_a_real_relayed_call_names_the_turn_client() -> None:
    """coturn in the lab (relay over UDP): the browser allocates, coturn answers."""
    folder = lab_session("ui-only-relay-udp")
    facts, seen = facts_of(folder / "capture.pcapng")
    side = infer_local([], {}, [], facts=facts, seen=seen)
    browser = browser_of(folder)[0]
    peer = json.loads((folder / "session.json").read_text())["network"]["peer"]["address"]
    assert side.how == "TURN client" and side.confidence == "medium"
    assert side.addresses == {browser} and side.remote == {peer}  # coturn runs beside the peer
    assert {c.source for c in side.clues} >= {"TURN server", "TURN client"}


def test_libwebrtc_browser_facing_a_libnice_server() -> None:
    """Chromium's checks carry GOOG-NETWORK-INFO; libnice (Janus) echoes USERNAME in its Binding
    success responses. Only that pair decides (medium); a browser facing any other ICE agent
    (aiortc, Firefox: possibly another participant) or another browser decides nothing."""

    def check(src: str, dst: str, *, libwebrtc: bool) -> StunSeen:
        return StunSeen(src, 1, dst, 2, "request", 1, "a:b", False, False, libwebrtc)

    def success(src: str, dst: str, *, echoed: bool) -> StunSeen:
        return StunSeen(src, 2, dst, 1, "success", 1, "b:a" if echoed else None, False, False)

    browser, server = "10.0.0.1", "10.0.0.9"
    janus = CaptureFacts(
        stun=(
            check(browser, server, libwebrtc=True),
            check(server, browser, libwebrtc=False),
            success(server, browser, echoed=True),
            success(browser, server, echoed=False),
        )
    )
    clues = {c.source: c for c in capture_clues(janus, frozenset(), frozenset())}
    clue = clues["libwebrtc browser facing a libnice server"]
    assert clue.confidence == "medium"
    assert clue.addresses == {browser} and clue.remote == {server}
    side = combine(list(clues.values()))
    assert side.addresses == {browser} and side.confidence == "medium"
    assert side.sends(server, 2, 7) is False
    other_agent = CaptureFacts(
        stun=(
            check(browser, server, libwebrtc=True),
            check(server, browser, libwebrtc=False),
            success(server, browser, echoed=False),
        )
    )
    two_browsers = CaptureFacts(
        stun=(
            check(browser, server, libwebrtc=True),
            check(server, browser, libwebrtc=True),
            success(server, browser, echoed=True),
        )
    )
    for facts in (other_agent, two_browsers):
        assert not combine(capture_clues(facts, frozenset(), frozenset())).known


@pytest.mark.parametrize("demo", JANUS_DEMOS)
def test_a_real_janus_call_names_the_browser(demo: str) -> None:
    """The recorded Janus demos, capture only: the browser (libwebrtc) faces Janus (libnice)."""
    folder = janus_recording(demo)
    facts, seen = facts_of(folder / "capture.pcapng")
    side = infer_local([], {}, [], facts=facts, seen=seen)
    assert side.how == "libwebrtc browser facing a libnice server"
    browser = json.loads((folder / "session.json").read_text())["network"]["browser"]["address"]
    assert side.addresses == {browser} and side.confidence == "medium"
    assert side.remote == seen - side.addresses
    checks = [s for s in facts.stun if s.ice_check]
    assert {s.src for s in checks if s.libwebrtc} == {browser}  # every check of Chromium's
    assert all(s.libwebrtc for s in checks if s.src == browser)


def test_a_real_call_with_an_aiortc_peer_stays_unknown() -> None:
    """The lab's peer is aiortc (another participant, not a server): nothing decides."""
    for variant in ("track-disabled-peer-talks", "ui-only-peer-talks"):
        facts, seen = facts_of(lab_session(variant) / "capture.pcapng")
        assert not infer_local([], {}, [], facts=facts, seen=seen).known
