"""Tests for decoders.session.monitor: the live judgement over real SDP, telemetry and RTP.

The media tests replay the browser's RTP of both lab sessions with their capture timestamps and
the page's own mute times (timeline.json) as marks: the ui-only session must warn, the
track-disabled one must not.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from helpers.hostile_bodies import LITERALS, SCAN_LIMIT, hostile_bodies, nested
from helpers.turn_stream import TurnCall, browser_rtp, cut, lab_peer, turn_call
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.session.events import Event, encode_event
from decoders.session.monitor import (
    FlowRef,
    Message,
    Monitor,
    Outcome,
    Settings,
    Transport,
    starts_turn_stream,
)
from decoders.session.payload import decode_content, parse_document
from decoders.session.sdp import parse_sdp
from decoders.session.signaling import load_rules
from decoders.session.telemetry import find_volume_fields

ROOT = Path(__file__).resolve().parent.parent.parent
CAPTURES = ROOT / "captures"
FIXTURES = ROOT / "tests" / "fixtures" / "signaling"
HTTP = FlowRef(id="f1", type="http", url="https://metrics.example.org/v1/m", method="POST")


def message(
    body: bytes,
    *,
    sent: bool = True,
    endpoint: str = "https://metrics.example.org/v1/m",
    encoding: str | None = None,
    content_type: str | None = None,
    query: str = "",
) -> Message:
    return Message(
        flow=FlowRef(id="f1", type="http", url=endpoint, method="POST"),
        endpoint=endpoint,
        sent=sent,
        content=body,
        label=f"POST {endpoint}",
        content_encoding=encoding,
        content_type=content_type,
        query=query,
    )


def kinds(out: Outcome) -> list[str]:
    return [event["kind"] for event in out.events]


def of_kind(out: Outcome, kind: str) -> list[Event]:
    return [event for event in out.events if event["kind"] == kind]


def test_start_event() -> None:
    event = Monitor().start(5.0, session_dir="/x")
    assert event == {
        "t": 5.0,
        "kind": "session_start",
        "format": "mutecheck-events",
        "version": 1,
        "session_dir": "/x",
    }


def test_sdp_offer_and_answer_are_recorded_and_learned() -> None:
    monitor = Monitor()
    out = monitor.observe(message((FIXTURES / "rtc_offer.json").read_bytes()), 1.0)
    (event,) = out.events
    assert event["kind"] == "sdp" and event["direction"] == "sent"
    assert (event["role"], event["role_from"], event["found_in"]) == (
        "offer",
        "type field",
        "json:sdp",
    )
    assert event["parsed"]["audio_level_extension_id"] == 1
    assert event["sdp"].startswith("v=0\r\n") and "converted_from" not in event
    assert event["flow"] == {"id": "f1", "type": "http", "url": HTTP.url, "method": "POST"}
    answer = monitor.observe(
        message((FIXTURES / "socketio_answer.txt").read_bytes(), sent=False), 2.0
    )
    assert [(e["direction"], e["role"]) for e in answer.events] == [("received", "answer")]
    jingle = monitor.observe(
        message((FIXTURES / "jitsi_session_initiate.xml").read_bytes(), sent=False), 3.0
    )
    assert jingle.events[0]["converted_from"] == "jingle"


def test_malformed_sdp_is_one_warning_per_endpoint() -> None:
    monitor = Monitor()
    offer = json.loads((FIXTURES / "rtc_offer.json").read_text())
    offer["sdp"] = offer["sdp"].replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus")
    body = json.dumps(offer).encode()
    first = monitor.observe(message(body), 1.0)
    assert [(e["kind"], e["code"]) for e in first.events] == [("warning", "malformed-sdp")]
    assert "rtpmap" in first.events[0]["message"]
    assert monitor.observe(message(body), 2.0).events == []


def test_media_of_the_ui_only_session_warns_while_muted() -> None:
    session = CAPTURES / "chromium-ui-only"
    events, warnings = replay_session(session)
    windows = [e for e in events if e.get("phase") == "muted-window"]
    assert 5 <= len(windows) <= 7  # six seconds muted, one window a second
    assert sum(w["packets"] for w in windows) == pytest.approx(300, abs=15)
    assert sum(w["not_silent"] for w in windows) > 250
    assert all(w["level_max"] < 100 for w in windows)
    assert warnings and "MUTED but audio is not silent" in warnings[0]
    ssrc = parse_sdp((session / "offer.sdp").read_bytes().decode()).audio[0].ssrcs[0]
    assert f"SSRC {ssrc}" in warnings[0]
    assert len(warnings) == 1  # one per mute interval and warn_interval (10 s)
    streams = [e for e in events if e.get("phase") == "stream"]
    assert [(s["ssrc"], s["audio_level_id"]) for s in streams] == [(ssrc, 1)]


def test_media_of_the_track_disabled_session_is_silent() -> None:
    events, warnings = replay_session(CAPTURES / "chromium-track-disabled")
    windows = [e for e in events if e.get("phase") == "muted-window"]
    assert windows and warnings == []
    assert all(w["not_silent"] == 0 for w in windows)
    # after the grace period every packet says 127 (silence)
    assert all(w["level_min"] == 127 for w in windows[1:])


def replay_session(
    session: Path, *, late: float = 0.0, settings: Settings | None = None
) -> tuple[list[Event], list[str]]:
    """Feed a lab session to a monitor: its SDP, the page's marks, the browser's RTP. ``late``:
    each mark reaches the monitor that many seconds after the click it reports (its ``at``)."""
    monitor = Monitor(settings)
    offer = json.dumps({"type": "offer", "sdp": (session / "offer.sdp").read_bytes().decode()})
    timeline = json.loads((session / "timeline.json").read_text())
    marks = [(event["t"], event["state"] == "muted") for event in timeline["events"]]
    flow = FlowRef(id="u1", type="udp", client="10.77.0.1:1", server="10.77.0.2:2")
    events: list[Event] = []
    warnings: list[str] = []

    def take(out: Outcome) -> None:
        events.extend(out.events)
        warnings.extend(out.warnings)

    packets = browser_rtp(session)
    take(monitor.observe(message(offer.encode()), packets[0][0] - 1))
    for t, payload in packets:
        while marks and marks[0][0] + late <= t:
            when, muted = marks.pop(0)
            at = when if late else None
            take(monitor.mark(when + late, muted, via="lab", at=at))
        take(monitor.observe_datagram(flow, payload, True, t))
    take(monitor.finish(packets[-1][0]))
    return events, warnings


def muted_windows(events: list[Event]) -> list[tuple[Any, ...]]:
    """What each muted window says, without the time it was written at."""
    return [
        (w["window"], w["packets"], w["payload_bytes"], w["not_silent"], w["level_min"])
        for w in events
        if w.get("phase") == "muted-window"
    ]


@pytest.mark.parametrize("session", ["chromium-track-disabled", "chromium-ui-only"])
def test_a_late_unmute_mark_takes_back_the_packets_sent_after_the_click(session: str) -> None:
    """The page's marks are HTTP requests that race the media through the proxy: the speech
    sent between the unmute click and the mark's arrival is not muted (and the packets between
    the mute click and its mark are). Each packet is held for ``Settings.hold`` and judged by
    the timeline as it stands then, which the marks' ``at`` dates back to the clicks: marks
    0.15 s late give exactly the windows and warnings of marks on time."""
    folder = CAPTURES / session
    on_time, warned = replay_session(folder)
    late, warned_late = replay_session(folder, late=0.15)
    assert muted_windows(late) == muted_windows(on_time) and muted_windows(on_time)
    assert warned_late == warned
    # judged as each packet came (no hold), the same late marks count the unmuted speech
    racing, warned_racing = replay_session(folder, late=0.15, settings=Settings(hold=0.0))
    assert muted_windows(racing) != muted_windows(on_time)
    first_racing, first = muted_windows(racing)[0][0], muted_windows(on_time)[0][0]
    assert first_racing[0] == pytest.approx(first[0] + 0.15, abs=0.03)  # muted 0.15 s late
    if session == "chromium-track-disabled":  # silent while muted, speech after the click
        assert warned == [] and any("not silent" in w for w in warned_racing)


def test_media_level_id_from_settings_and_unknown() -> None:
    packets = browser_rtp(CAPTURES / "chromium-ui-only")
    flow = FlowRef(id="u1", type="udp")
    unknown = Monitor()
    unknown.mark(0.0, True, via="test")
    events: list[Event] = []
    for t, payload in packets[:60]:
        events.extend(unknown.observe_datagram(flow, payload, True, t).events)
    events.extend(unknown.finish(packets[59][0]).events)
    windows = [e for e in events if e["phase"] == "muted-window"]
    assert all(w["audio_level_id"] is None and w["not_silent"] == 0 for w in windows)
    assert sum(w["without_level"] for w in windows) == 60
    configured = Monitor(Settings(audio_level_id=1, grace=0.0, hold=0.0))
    configured.mark(0.0, True, via="test")
    out = configured.observe_datagram(flow, packets[100][1], True, packets[100][0])
    assert kinds(out) == ["media", "warning"]
    assert out.events[0]["audio_level_id"] == 1


def test_a_stream_that_falls_quiet_is_judged_by_the_sessions_next_packet() -> None:
    """A loud muted packet, then nothing more on its stream: it is judged ``hold`` after it came
    by the packets' clock, which any later media of the session moves (here: media received),
    not left until the stream's own next packet or the end of the session."""
    (t, payload) = browser_rtp(CAPTURES / "chromium-ui-only")[100]
    monitor = Monitor(Settings(audio_level_id=1, grace=0.0, hold=0.3))
    monitor.mark(t - 5, True, via="test")
    sent, received = FlowRef(id="a", type="udp"), FlowRef(id="b", type="udp")
    assert kinds(monitor.observe_datagram(sent, payload, True, t)) == ["media"]  # held
    assert monitor.observe_datagram(received, payload, False, t + 0.1).events == []
    judged = monitor.observe_datagram(received, payload, False, t + 0.35)
    assert kinds(judged) == ["warning"] and judged.events[0]["t"] == t + 0.35
    assert "SSRC" in judged.warnings[0]
    (window,) = of_kind(monitor.finish(t + 1), "media")
    assert (window["packets"], window["not_silent"]) == (1, 1)


def test_media_through_turn_channel_and_not_rtp() -> None:
    (t, payload) = browser_rtp(CAPTURES / "chromium-ui-only")[100]
    monitor = Monitor(Settings(audio_level_id=1, grace=0.0, hold=0.0))
    monitor.mark(0.0, True, via="test")
    flow = FlowRef(id="u2", type="udp")
    channel = struct.pack("!HH", 0x4001, len(payload)) + payload
    out = monitor.observe_datagram(flow, channel, True, t)
    assert out.events[0]["via"] == "turn-channel"
    assert kinds(out) == ["media", "warning"]
    assert monitor.observe_datagram(flow, b"\x16\xfe\xfd" + bytes(20), True, t).events == []
    assert monitor.observe_datagram(flow, payload, False, t).events == []  # received
    assert monitor.observe_datagram(flow, payload[:12] + b"\xff", True, t).events == []
    assert monitor.observe_datagram(flow, b"\x40\x01\x00\xff", True, t).events == []


def test_telemetry_findings_and_severity() -> None:
    monitor = Monitor(Settings(grace=0.2, warn_interval=10.0))
    low = json.dumps({"audioLevel": 0.01}).encode()
    high = json.dumps({"audioLevel": 0.4}).encode()
    unmuted = monitor.observe(message(low), 1.0)
    (telemetry,) = unmuted.events
    assert telemetry["kind"] == "telemetry"
    assert (telemetry["muted"], telemetry["finding"], telemetry["severity"]) == (False, False, None)
    assert telemetry["fields"] == [{"path": "audioLevel", "value": 0.01, "audio_context": True}]
    assert telemetry["encoding"] == ["json"] and unmuted.warnings == []
    monitor.mark(2.0, True, via="test")
    grace = monitor.observe(message(low), 2.1)
    assert (grace.events[0]["grace"], grace.events[0]["finding"]) == (True, False)
    medium = monitor.observe(message(low), 3.0)
    assert medium.events[0]["severity"] == "medium"
    assert kinds(medium) == ["telemetry", "warning"]
    assert "MUTED but volume telemetry left [medium" in medium.warnings[0]
    assert "audioLevel=0.01" in medium.warnings[0]
    changed = monitor.observe(message(high), 4.0)
    assert changed.events[0]["severity"] == "high"
    assert changed.events[0]["changed"] == ["audioLevel"]
    assert changed.warnings == []  # rate limited within the interval
    later = monitor.observe(message(high), 14.5)
    assert "(1 more since the last warning)" in later.warnings[0]
    assert of_kind(later, "warning")[0]["repeats"] == 1
    monitor.mark(20.0, False, via="test")
    monitor.mark(30.0, True, via="test")
    again = monitor.observe(message(high), 31.0)
    assert again.events[0]["severity"] == "medium"  # a new interval: nothing to compare yet
    assert again.warnings  # a new interval warns at once


def test_voice_activity_and_varying_samples_are_high() -> None:
    monitor = Monitor(Settings(grace=0.0))
    monitor.mark(1.0, True, via="test")
    speaking = monitor.observe(message(b'{"speaking": true}'), 2.0)
    assert speaking.events[0]["severity"] == "high"
    samples = monitor.observe(message(b'{"levels": [1, 5, 2]}', endpoint="https://b/"), 2.0)
    assert samples.events[0]["severity"] == "high"


def test_app_signal_and_lab_page_telemetry() -> None:
    monitor = Monitor(Settings(grace=0.2))
    body = (FIXTURES / "lab_page_telemetry.json").read_bytes()
    first = monitor.observe(message(body), 10.0)
    assert kinds(first) == ["mute", "telemetry"]
    mute = first.events[0]
    assert (mute["state"], mute["source"], mute["muted_now"]) == ("muted", "app", True)
    assert mute["evidence"] == {"path": "muted", "value": True}
    assert first.events[1]["grace"] is True and first.warnings == []
    second = monitor.observe(message(body), 10.5)
    assert kinds(second) == ["telemetry", "warning"]  # the app repeats itself: no mute event
    received = monitor.observe(message(b'{"muted": false, "level": 3}', sent=False), 11.0)
    assert received.events == [] and monitor.muted


def test_jitsi_presence_over_the_monitor() -> None:
    monitor = Monitor()
    muted = monitor.observe(message((FIXTURES / "jitsi_presence_muted.xml").read_bytes()), 1.0)
    assert [e["state"] for e in of_kind(muted, "mute")] == ["muted"]
    unmuted = monitor.observe(message((FIXTURES / "jitsi_presence_unmuted.xml").read_bytes()), 2.0)
    assert [e["state"] for e in of_kind(unmuted, "mute")] == ["unmuted"] and not monitor.muted


def test_rules_set_the_state() -> None:
    rules = load_rules((FIXTURES / "rules.json").read_text())
    monitor = Monitor(Settings(rules=rules))
    body = json.dumps({"participant": {"audio": {"state": "off"}}}).encode()
    out = monitor.observe(message(body, endpoint="https://api.example.org/v1/calls/c9/state"), 1.0)
    (mute,) = out.events
    assert (mute["source"], mute["state"]) == ("rule", "muted")
    assert mute["evidence"] == {
        "rule": "example mute API",
        "value": "off",
        "path": "participant.audio.state",
    }
    assert out.notices == [
        "mutecheck: muted (rule 'example mute API' in POST https://api.example.org/v1/calls/c9/state)"
    ]
    # a rule matches a message with no recognisable words too (the URL alone)
    mute_api = monitor.observe(message(b"", endpoint="https://x/api/mute"), 2.0)
    assert mute_api.events == []  # empty body: no message at all
    mute_api = monitor.observe(message(b"1", endpoint="https://x/api/mute"), 2.0)
    assert mute_api.events == []  # already muted by rules: no change of the rule source


def test_marks_always_make_events() -> None:
    monitor = Monitor()
    first = monitor.mark(1.0, True, via="command")
    repeat = monitor.mark(2.0, True, via="url", note="again", at=1.9)
    assert first.events[0]["repeated"] is False and repeat.events[0]["repeated"] is True
    assert repeat.events[0]["evidence"] == {"via": "url", "note": "again"}
    assert repeat.events[0]["at"] == 1.9
    assert first.notices == ["mutecheck: marked muted (command)"]
    assert monitor.state() == {
        "muted": True,
        "since": 1.0,
        "sources": {"mark": True, "app": None, "rule": None},
    }


def test_block_drop_and_redact() -> None:
    body = (FIXTURES / "webex_metrics.json").read_bytes()
    dropping = Monitor(Settings(block=True, block_action="drop", grace=0.0))
    unmuted = dropping.observe(message(body), 1.0)
    assert unmuted.action is None
    dropping.mark(2.0, True, via="test")
    dropped = dropping.observe(message(body), 3.0)
    assert dropped.action == "drop" and dropped.replacement is None
    assert kinds(dropped) == ["telemetry", "blocked", "warning"]
    blocked = dropped.events[1]
    assert blocked["action"] == "dropped" and len(blocked["fields"]) == 6
    assert dropped.events[0]["blocked"] == "dropped"
    assert dropped.notices == [
        "mutecheck: dropped volume telemetry while muted: POST https://metrics.example.org/v1/m"
    ]

    redacting = Monitor(Settings(block=True, block_action="redact"))
    redacting.mark(2.0, True, via="test")
    redacted = redacting.observe(message(body), 3.0)
    assert redacted.action == "redact" and redacted.replacement is not None
    assert find_volume_fields(parse_document(redacted.replacement)) == ()
    assert redacted.events[1]["action"] == "redacted"


def test_redact_compressed_and_fallbacks() -> None:
    plain = (FIXTURES / "webex_metrics.json").read_bytes()
    monitor = Monitor(Settings(block=True, block_action="redact"))
    monitor.mark(0.0, True, via="test")
    declared = monitor.observe(message(gzip.compress(plain, mtime=0), encoding="gzip"), 1.0)
    assert declared.replacement is not None and declared.replacement.startswith(b"{")
    sniffed = monitor.observe(message(gzip.compress(plain, mtime=0)), 1.0)
    assert sniffed.replacement is not None and sniffed.replacement[:2] == b"\x1f\x8b"
    again = decode_content(sniffed.replacement, None, 1 << 20)
    assert find_volume_fields(parse_document(again.data)) == ()
    assert sniffed.events[0]["encoding"] == ["gzip", "json"]
    cut = Monitor(Settings(block=True, block_action="redact", scan_limit=100))
    cut.mark(0.0, True, via="test")
    truncated = cut.observe(message(b'{"audioLevel": 0.5, "pad": "' + b"x" * 200 + b'"}'), 1.0)
    (event,) = [event for event in truncated.events if event["kind"] == "telemetry"]
    assert truncated.action == "drop" and event["truncated"] is True
    query = monitor.observe(message(b"", query="vol=0.7&x=1"), 1.0)
    assert query.action == "drop"
    assert query.events[0]["fields"][0]["path"] == "query:vol"
    assert query.events[0]["encoding"] == ["query"]


def test_problem_bodies_warn_once_and_pass() -> None:
    monitor = Monitor()
    broken = monitor.observe(message(b'{"audioLevel": 0.3,', content_type="application/json"), 1.0)
    assert [(e["kind"], e.get("code")) for e in broken.events] == [
        ("warning", "malformed-body"),
        ("telemetry", None),
    ]
    assert broken.events[1]["fields"][0]["path"] == "*.audioLevel"
    again = monitor.observe(message(b'{"audioLevel": 0.3,', content_type="application/json"), 2.0)
    assert kinds(again) == ["telemetry"]
    undecodable = monitor.observe(message(b"not gzip", encoding="gzip"), 3.0)
    assert [e["code"] for e in of_kind(undecodable, "warning")] == ["undecodable-body"]
    assert undecodable.action is None


def test_cheap_skip_of_bodies_without_any_keyword() -> None:
    monitor = Monitor()
    assert monitor.observe(message(b'{"type":"ping","n":1}'), 1.0).events == []
    assert monitor.counters["messages"] == 1 and monitor.counters["parsed"] == 0
    assert monitor.observe(message(b""), 1.0).events == []


def test_state_stays_bounded() -> None:
    monitor = Monitor(Settings(grace=0.0))
    monitor.mark(0.0, True, via="test")
    for n in range(6000):
        monitor.observe(message(b'{"level": %d}' % n, endpoint=f"https://h/{n}"), 1.0 + n)
    assert len(monitor._last_values) == 4096
    assert len(monitor._warned) == 1024
    for n in range(400):  # 400 shapes: a key each (digits would make one shape)
        monitor.observe(message(b'{"level": 1, "k%s": 2}' % (b"x" * n)), 9000.0 + n)
    assert len(monitor._shapes) == 256
    packets = browser_rtp(CAPTURES / "chromium-ui-only")
    t, payload = packets[100]
    for n in range(400):
        rewritten = payload[:8] + struct.pack("!I", n) + payload[12:]
        monitor.observe_datagram(FlowRef(id="u", type="udp"), rewritten, True, t)
    assert len(monitor._streams) == 256


def test_skippable_is_a_safe_shortcut() -> None:
    monitor = Monitor()
    assert monitor.skippable(b'{"type":"ping","n":1}', url="wss://x/ws", sent=True)
    assert monitor.counters["skipped"] == 1
    assert not monitor.skippable(b'{"audioLevel":1}', url="wss://x/ws", sent=True)
    assert not monitor.skippable(b'{"Muted":true}', url="wss://x/ws", sent=True)
    assert not monitor.skippable(gzip.compress(b"{}", mtime=0), url="wss://x/ws", sent=True)
    assert not monitor.skippable(b"{}", url="https://x/", sent=True, content_encoding="br")
    rules = load_rules((FIXTURES / "rules.json").read_text())
    ruled = Monitor(Settings(rules=rules))
    assert not ruled.skippable(b"{}", url="https://x.example/api/mute", sent=True)
    assert ruled.skippable(b"{}", url="https://x.example/api/other", sent=True)
    # whatever skippable lets through, observe finds nothing in it
    for body in (b'{"type":"ping"}', b"hello", b"\x00\x01", b""):
        if monitor.skippable(body, url="u", sent=True):
            assert monitor.observe(message(body), 1.0).events == []


def test_flow_naming_helpers_shared_by_the_addon_and_the_replay() -> None:
    from decoders.session.monitor import address_text, websocket_url, without_query

    assert address_text(("10.0.0.1", 443)) == "10.0.0.1:443"
    assert address_text(("::1", 8080, 0, 0)) == "[::1]:8080"
    assert address_text(None) is None
    assert websocket_url("https://a.example/ws?x=1") == "wss://a.example/ws?x=1"
    assert websocket_url("http://a.example/ws") == "ws://a.example/ws"
    assert websocket_url("wss://a.example/ws") == "wss://a.example/ws"
    assert without_query("https://a.example/m?x=1#f") == "https://a.example/m"


# --- the shape shortcut: messages that repeat with new numbers ---------------------------------

OFFER_TEXT = (FIXTURES / "whip_offer.sdp").read_text()
_KEYS = [
    "audioLevel",
    "level",
    "level2",
    "audioMeanGain",
    "gain",
    "muted",
    "mic",
    "mic1",
    "isMuted",
    "enabled",
    "audio",
    "video",
    "stats",
    "kind",
    "data",
    "values",
    "sdp",
    "x",
    "0",
    "a-1",
    "energy",
]
_STRINGS = [
    "audio",
    "video",
    "on",
    "off",
    "true",
    "false",
    "12",
    "-3.5",
    "1e999",
    "1e308",
    "01",
    "hello 2024",
    "v=1 not sdp",
    "[01]",
    "[1, 2]",
    "e30=",
    OFFER_TEXT,
    json.dumps({"levels": {"audioMeanGain": -40}}),
    base64.b64encode(b'{"levels":{"audioMaxGain":-20}}').decode(),
    base64.b64encode(b'{"level":1}').decode(),
    "<audiomuted>true</audiomuted>",
    "x<audiomuted a='1'>false</audiomuted>",
    "caf\u00e9 1",
]


def _numbers() -> st.SearchStrategy[object]:
    return st.one_of(
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.sampled_from([0, 1e308, -1e308, 0.5]),
    )


_TREES = st.recursive(
    st.one_of(_numbers(), st.booleans(), st.none(), st.sampled_from(_STRINGS)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(_KEYS), children, max_size=5),
    ),
    max_leaves=25,
)


def _redigit(text: str, numbers: st.DataObject) -> str:
    """The same text with each digit drawn again: what no skeleton can tell apart."""
    return "".join(numbers.draw(st.sampled_from("0123456789")) if c.isdigit() else c for c in text)


def _renumber(node: object, numbers: st.DataObject) -> object:
    """The same document with other numbers (what a telemetry report looks like a second later),
    and sometimes other digits in its strings and keys."""
    if isinstance(node, dict):
        return {
            _redigit(key, numbers) if numbers.draw(st.booleans()) else key: _renumber(v, numbers)
            for key, v in node.items()
        }
    if isinstance(node, list):
        return [_renumber(value, numbers) for value in node]
    if isinstance(node, int | float) and not isinstance(node, bool):
        return numbers.draw(_numbers())
    if isinstance(node, str) and numbers.draw(st.booleans()):
        return _redigit(node, numbers)
    return node


@settings(max_examples=200, deadline=None)
@given(
    template=st.dictionaries(st.sampled_from(_KEYS), _TREES, min_size=1, max_size=5),
    data=st.data(),
    block=st.sampled_from([None, "drop", "redact"]),
)
def test_the_shape_shortcut_gives_what_the_full_parse_gives(
    template: dict[str, object], data: st.DataObject, block: str | None
) -> None:
    """A series of one message renumbered (with marks in between) through a monitor that may take
    the shortcut and one that never does: the same events, actions and rewritten bodies."""
    settings_ = Settings(grace=0, block=block is not None, block_action=block or "drop")
    fast, full = Monitor(settings_), Monitor(settings_)
    full._shapes = type(full._shapes)(0)  # remembers nothing: every message is parsed in full
    documents = [template] + [_renumber(template, data) for _ in range(6)]
    for number, document in enumerate(documents):
        t = 100.0 + number
        if number in (2, 5):
            for monitor in (fast, full):
                monitor.mark(t - 0.5, number == 2, via="command")
        body = json.dumps(document, allow_nan=True).encode()
        one, two = fast.observe(message(body), t), full.observe(message(body), t)
        assert one.events == two.events
        assert (one.action, one.replacement, one.warnings) == (
            two.action,
            two.replacement,
            two.warnings,
        )
    assert full.counters["shape_hits"] == 0


def test_repeated_telemetry_takes_the_shortcut() -> None:
    monitor = Monitor(Settings(grace=0))
    reports = [
        {"stats": [{"kind": "audio", "audioLevel": n / 10, "totalAudioEnergy": n}]}
        for n in range(5)
    ]
    outs = [
        monitor.observe(message(json.dumps(r).encode()), 10.0 + n) for n, r in enumerate(reports)
    ]
    assert monitor.counters["shape_hits"] == 4
    values = [[f["value"] for f in of_kind(out, "telemetry")[0]["fields"]] for out in outs]
    assert values == [[n / 10, n] for n in range(5)]
    # a string that changes makes another shape; an SDP or a mute signal is never remembered
    monitor.observe(message(b'{"sdp": ' + json.dumps(OFFER_TEXT).encode() + b', "level": 1}'), 20.0)
    out = monitor.observe(
        message(b'{"sdp": ' + json.dumps(OFFER_TEXT).encode() + b', "level": 2}'), 21.0
    )
    assert kinds(out) == ["sdp", "telemetry"] and monitor.counters["shape_hits"] == 4
    # digits of a \u escape are a letter: "\u0077=0" is "w=0", "\u0076=0" the start of an SDP
    for letter in ("w", "v"):  # the same bytes but one digit
        text = json.dumps(OFFER_TEXT).replace('"v=0', f'"\\u00{ord(letter):x}=0', 1).encode()
        out = monitor.observe(message(b'{"sdp": ' + text + b', "level": 3}'), 30.0)
    assert kinds(out) == ["sdp", "telemetry"]


# --- TURN over TCP ------------------------------------------------------------------------------

TCP = FlowRef(id="t1", type="tcp", client="127.0.0.1:50000", server="10.77.0.3:3478")


def relay_session(
    session: Path, seed: int, *, send_first: bool = True, transport: Transport = "turn-tcp"
) -> tuple[list[Event], list[str], TurnCall]:
    """A lab session's browser RTP relayed over one TURN/TCP connection, both directions cut
    at random places and interleaved in time, with the page's own mute times as marks."""
    monitor = Monitor()
    offer = json.dumps({"type": "offer", "sdp": (session / "offer.sdp").read_bytes().decode()})
    timeline = json.loads((session / "timeline.json").read_text())
    marks = [(event["t"], event["state"] == "muted") for event in timeline["events"]]
    call = turn_call(browser_rtp(session), lab_peer(session), send_first=send_first)
    pieces = sorted(
        [(t, True, data) for t, data in cut(call.client, seed)]
        + [(t, False, data) for t, data in cut(call.server, seed + 1)],
        key=lambda piece: piece[0],
    )
    events: list[Event] = []
    warnings: list[str] = []

    def take(out: Outcome) -> None:
        events.extend(out.events)
        warnings.extend(out.warnings)

    take(monitor.observe(message(offer.encode()), pieces[0][0] - 1))
    for t, sent, data in pieces:
        while marks and marks[0][0] <= t:
            when, muted = marks.pop(0)
            take(monitor.mark(when, muted, via="lab"))
        take(monitor.observe_stream(TCP, data, sent, t, transport))
    take(monitor.end_stream(TCP.id, pieces[-1][0]))
    assert len(monitor._relays) == 0  # the framers went with the connection
    take(monitor.finish(pieces[-1][0] + 1))
    return events, warnings, call


def test_relayed_media_of_the_ui_only_session_warns_while_muted() -> None:
    session = CAPTURES / "chromium-ui-only"
    events, warnings, call = relay_session(session, seed=3)
    windows = [e for e in events if e.get("phase") == "muted-window"]
    assert sum(w["packets"] for w in windows) == pytest.approx(300, abs=15)
    assert sum(w["not_silent"] for w in windows) > 250
    assert all(w["level_max"] < 100 and w["transport"] == "turn-tcp" for w in windows)
    ssrc = parse_sdp((session / "offer.sdp").read_bytes().decode()).audio[0].ssrcs[0]
    (stream,) = [e for e in events if e.get("phase") == "stream"]
    host, port = call.peer
    assert stream["ssrc"] == ssrc and stream["audio_level_id"] == 1
    assert stream["transport"] == "turn-tcp" and stream["turn_server"] == TCP.server
    assert (stream["via"], stream["peer"], stream["channel"]) == (
        "turn-send",
        f"{host}:{port}",
        None,
    )
    assert stream["flow"]["type"] == "tcp"
    assert len(warnings) == 1 and "MUTED but audio is not silent: TURN/TCP" in warnings[0]
    assert f"(peer {host}:{port}) SSRC {ssrc}" in warnings[0]
    (relay,) = [e for e in events if e.get("phase") == "relay"]
    assert relay["sent"] == {"messages": len(call.client), "skipped_bytes": 0}
    assert relay["received"] == {"messages": len(call.server), "skipped_bytes": 0}
    assert relay["transport"] == "turn-tcp" and relay["turn_server"] == TCP.server


def test_relayed_media_of_the_track_disabled_session_is_silent() -> None:
    events, warnings, call = relay_session(
        CAPTURES / "chromium-track-disabled", seed=5, send_first=False, transport="turn-tls"
    )
    windows = [e for e in events if e.get("phase") == "muted-window"]
    assert windows and warnings == []
    assert all(w["not_silent"] == 0 and w["transport"] == "turn-tls" for w in windows)
    assert all(w["level_min"] == 127 for w in windows[1:])
    (stream,) = [e for e in events if e.get("phase") == "stream"]
    host, port = call.peer
    assert (stream["via"], stream["peer"], stream["channel"]) == (
        "turn-channel",
        f"{host}:{port}",
        call.channel,
    )


def test_relayed_windows_match_the_udp_path() -> None:
    """The same packets, relayed over TCP as whole messages at their own times, give exactly
    the muted windows the UDP path gives (transport aside)."""
    session = CAPTURES / "chromium-ui-only"
    udp_events, _ = replay_session(session)
    monitor = Monitor()
    offer = json.dumps({"type": "offer", "sdp": (session / "offer.sdp").read_bytes().decode()})
    timeline = json.loads((session / "timeline.json").read_text())
    marks = [(event["t"], event["state"] == "muted") for event in timeline["events"]]
    packets = browser_rtp(session)
    call = turn_call(packets, lab_peer(session), send_first=False)
    events: list[Event] = []
    events += monitor.observe(message(offer.encode()), packets[0][0] - 1).events
    for t, data in call.client:
        while marks and marks[0][0] <= t:
            when, muted = marks.pop(0)
            events += monitor.mark(when, muted, via="lab").events
        events += monitor.observe_stream(TCP, data, True, t, "turn-tcp").events
    events += monitor.finish(packets[-1][0]).events

    def windows(of: list[Event]) -> list[tuple[Any, ...]]:
        return [
            (w["window"], w["packets"], w["payload_bytes"], w["not_silent"], w["level_min"])
            for w in of
            if w.get("phase") == "muted-window"
        ]

    assert windows(events) == windows(udp_events) and windows(events)


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=12_000), max_size=60))
def test_how_the_stream_is_cut_changes_nothing(cuts: list[int]) -> None:
    """Split or coalesced anywhere, the TURN messages give the events whole ones give."""
    packets = browser_rtp(CAPTURES / "chromium-ui-only")[200:260]
    call = turn_call(packets, lab_peer(CAPTURES / "chromium-ui-only"))
    stream = b"".join(data for _, data in call.client)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})

    def run(pieces: list[bytes]) -> list[Event]:
        monitor = Monitor(Settings(audio_level_id=1, grace=0.0))
        monitor.mark(1.0, True, via="test")
        events: list[Event] = []
        for piece in pieces:
            events += monitor.observe_stream(TCP, piece, True, 2.0, "turn-tcp").events
        return events + monitor.end_stream(TCP.id, 3.0).events

    whole = run([data for _, data in call.client])
    assert run([stream[a:b] for a, b in itertools.pairwise(bounds)]) == whole
    assert [e["phase"] for e in whole if e["kind"] == "media"] == [
        "stream",
        "muted-window",
        "relay",
    ]


def framing_warnings(out: Outcome) -> list[Event]:
    return [event for event in of_kind(out, "warning") if event["code"] == "turn-framing"]


def test_a_stream_picked_up_mid_message_resynchronises() -> None:
    """A connection first seen in the middle (a script reloaded during a call), and a few
    foreign bytes inside a stream in sync: counted, one warning, the media goes on."""
    packets = browser_rtp(CAPTURES / "chromium-ui-only")[200:300]
    call = turn_call(packets, lab_peer(CAPTURES / "chromium-ui-only"), send_first=False)
    stream = b"".join(data for _, data in call.client[40:])
    monitor = Monitor(Settings(audio_level_id=1, grace=0.0))
    monitor.mark(1.0, True, via="test")
    out = monitor.observe_stream(TCP, stream[57:], True, 2.0, "turn-tcp", synced=False)
    (warning,) = framing_warnings(out)
    assert "bytes sent were no whole TURN message" in warning["message"]
    windows = of_kind(monitor.finish(3.0), "media")
    picked_up = sum(w["packets"] for w in windows if w["phase"] == "muted-window")
    assert picked_up == len(call.client) - 40 - 1  # all but the message it began inside
    broken = Monitor(Settings(audio_level_id=1, grace=0.0))
    broken.mark(1.0, True, via="test")
    whole = [data for _, data in call.client]
    first = broken.observe_stream(
        TCP, b"".join(whole[:50]) + b"\xff\xfe\xfd", True, 2.0, "turn-tcp"
    )
    second = broken.observe_stream(TCP, b"".join(whole[50:]), True, 2.0, "turn-tcp")
    (warning,) = framing_warnings(first)
    assert "3 bytes sent" in warning["message"]
    assert not framing_warnings(second)  # once per connection: the rest is in the summary
    end = of_kind(broken.end_stream(TCP.id, 3.0), "media")
    assert sum(e["packets"] for e in end if e["phase"] == "muted-window") == len(packets)
    (relay,) = [e for e in end if e["phase"] == "relay"]
    assert relay["sent"] == {"messages": len(whole), "skipped_bytes": 3}


@pytest.mark.parametrize(
    ("first", "turn"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False),
        (b"EHLO mail.example.org\r\n", False),
        (b"SSH-2.0-OpenSSH_9.2\r\n", False),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40), False),  # a TLS ClientHello
        (b"", None),
        (b"\x00\x03\x00", None),  # too short to tell yet
        (b"\x40\x00", None),
        (
            b"\x00\x03\x00\x08\x21\x12\xa4\x42" + bytes(12) + b"\x00\x19\x00\x04\x11\x00\x00\x00",
            True,
        ),
        (b"\x00\x03\x00\x06\x21\x12\xa4\x42" + bytes(18), False),  # length not a multiple of 4
        (b"\x40\x00\x00\x04\x80\x6f\x00\x01", False),  # ChannelData too short for RTP
    ],
)
def test_which_tcp_streams_are_turn(first: bytes, turn: bool | None) -> None:
    assert starts_turn_stream(first) is turn


def test_real_turn_starts_are_turn() -> None:
    packets = browser_rtp(CAPTURES / "chromium-ui-only")[:3]
    call = turn_call(packets, lab_peer(CAPTURES / "chromium-ui-only"))
    assert starts_turn_stream(call.client[0][1])  # the Allocate request
    assert starts_turn_stream(call.client[-1][1])  # ChannelData carrying SRTP
    assert starts_turn_stream(call.client[-1][1][:-8]) is None  # cut: the rest may come


def test_media_is_judged_by_the_mute_state_at_its_own_time() -> None:
    """A replay of flows.mitm gives a TURN connection after the marks (flows are saved when they
    end): its packets still count as muted exactly inside the marked interval."""
    session = CAPTURES / "chromium-ui-only"
    in_order, _ = replay_session(session)  # each packet judged as it came, marks in between
    call = turn_call(browser_rtp(session), lab_peer(session))
    timeline = json.loads((session / "timeline.json").read_text())
    monitor = Monitor()
    offer = json.dumps({"type": "offer", "sdp": (session / "offer.sdp").read_bytes().decode()})
    events = monitor.observe(message(offer.encode()), 0.0).events
    for mark in timeline["events"]:
        events += monitor.mark(mark["t"], mark["state"] == "muted", via="lab").events
    for t, data in call.client:
        events += monitor.observe_stream(TCP, data, True, t, "turn-tcp").events
    events += monitor.finish(call.client[-1][0]).events

    def totals(of: list[Event]) -> tuple[int, int]:
        windows = [e for e in of if e.get("phase") == "muted-window"]
        return sum(w["packets"] for w in windows), sum(w["not_silent"] for w in windows)

    assert totals(events) == totals(in_order) and totals(events)[1] > 250
    (stream,) = [e for e in events if e.get("phase") == "stream"]
    assert stream["muted"] is False  # the first packet was sent before the mute


# --- what the limits cut off, and numbers no float holds (issue 13) ----------------------------

HOSTILE = hostile_bodies()


def evidence(out: Outcome) -> list[Event]:
    """The telemetry events with fields, and the scan-limit warnings, of an outcome."""
    return [
        event
        for event in out.events
        if (event["kind"] == "telemetry" and event["fields"])
        or (event["kind"] == "warning" and event["code"] == "scan-limit")
    ]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hidden_volume_field_is_never_silent(name: str) -> None:
    """Every body of the issue gives a telemetry event or a scan-limit warning; block mode drops
    it (whatever could not be read while muted included)."""
    body, coding = HOSTILE[name]
    watching = Monitor(Settings(grace=0.0))
    watching.mark(0.0, True, via="test")
    out = watching.observe(message(body, encoding=coding), 1.0)
    assert evidence(out), [e.get("code", e["kind"]) for e in out.events]
    blocking = Monitor(Settings(grace=0.0, block=True))
    blocking.mark(0.0, True, via="test")
    blocked = blocking.observe(message(body, encoding=coding), 1.0)
    assert blocked.action == "drop"
    assert len(of_kind(blocked, "blocked")) == 1


@pytest.mark.parametrize(
    ("name", "unread"),
    [
        ("depth-40", {"depth": {"limit": 40, "values": 1}}),
        ("depth-1000", {"depth": {"limit": 40, "values": 1}}),
        ("depth-60-base64-field", {"depth": {"limit": 40, "values": 1}}),
        ("leaves-20001", {"leaves": {"limit": 20_000}}),
        ("form-leaves-20001", {"leaves": {"limit": 20_000}}),
        (
            "base64-field-after-the-limit",
            {"bytes": {"read": SCAN_LIMIT, "unread": 1074, "limit": SCAN_LIMIT}},
        ),
        (
            "gzip-over-the-limit",
            {"bytes": {"read": SCAN_LIMIT, "unread": None, "limit": SCAN_LIMIT}},
        ),
    ],
)
def test_scan_limit_says_what_was_not_read(name: str, unread: dict[str, Any]) -> None:
    body, coding = HOSTILE[name]
    monitor = Monitor()
    (warning,) = of_kind(monitor.observe(message(body, encoding=coding), 1.0), "warning")
    assert warning["code"] == "scan-limit" and warning["unread"] == unread
    assert warning["muted"] is False and warning["repeats"] == 0
    assert warning["endpoint"] == "https://metrics.example.org/v1/m"
    assert "not fully read: POST https://metrics.example.org/v1/m" in warning["message"]


def test_json_nested_beyond_the_parser_is_a_depth_cut() -> None:
    body, _ = HOSTILE["depth-100000"]
    monitor = Monitor(Settings(scan_limit=1 << 20))
    out = monitor.observe(message(body), 1.0)
    assert [e.get("code") for e in of_kind(out, "warning")] == ["scan-limit"]  # no malformed-body
    assert of_kind(out, "warning")[0]["unread"] == {"depth": {"limit": "parser", "values": None}}
    (telemetry,) = of_kind(out, "telemetry")
    assert telemetry["fields"][0]["path"] == "*.audioLevel"  # searched as text


def test_a_cut_walk_searches_the_rest_as_text() -> None:
    """The field past the depth or value limit is still found, by its name (place unknown)."""
    for name in ("depth-40", "depth-1000", "leaves-20001", "base64-field-before-the-limit"):
        body, _ = HOSTILE[name]
        (telemetry,) = of_kind(Monitor().observe(message(body), 1.0), "telemetry")
        assert telemetry["unread"] is not None
        assert [f["value"] for f in telemetry["fields"]] in ([0.5], [0.25]), name
    visible_and_hidden = '{"audioLevel":0.1,"more":' + nested(45, '"micVolume":0.7') + "}"
    (telemetry,) = of_kind(
        Monitor().observe(message(visible_and_hidden.encode()), 1.0), "telemetry"
    )
    assert [(f["path"], f["value"]) for f in telemetry["fields"]] == [
        ("audioLevel", 0.1),
        ("*.micVolume", 0.7),
    ]


@pytest.mark.parametrize("literal", LITERALS)
def test_unreadable_values_are_reported_with_their_text(literal: str) -> None:
    monitor = Monitor(Settings(grace=0.0))
    monitor.mark(0.0, True, via="test")
    out = monitor.observe(message(b'{"stats":{"audioLevel":%s}}' % literal.encode()), 1.0)
    (telemetry,) = of_kind(out, "telemetry")
    shown = literal if len(literal) <= 64 else literal[:64] + "…"
    assert telemetry["fields"] == [
        {"path": "stats.audioLevel", "value": None, "raw": shown, "audio_context": True}
    ]
    assert telemetry["finding"] is True and telemetry["unread"] is None
    (warning,) = of_kind(out, "warning")
    assert f"stats.audioLevel={shown} (unreadable)" in warning["message"]
    assert json.loads(encode_event(telemetry)) == telemetry  # it is written as it is


def test_scan_limit_warnings_are_rate_limited_per_endpoint() -> None:
    body, _ = HOSTILE["depth-40"]
    monitor = Monitor(Settings(grace=0.0))
    first = monitor.observe(message(body), 1.0)
    assert len(of_kind(first, "warning")) == 1 and first.notices and not first.warnings
    for n in range(3):
        assert of_kind(monitor.observe(message(body), 2.0 + n), "warning") == []
    other = monitor.observe(message(body, endpoint="https://other.example/m"), 3.0)
    assert len(of_kind(other, "warning")) == 1
    later = of_kind(monitor.observe(message(body), 12.0), "warning")
    assert later[0]["repeats"] == 3 and "(3 more since the last warning)" in later[0]["message"]
    monitor.mark(13.0, True, via="test")  # a new mute interval: said at once, as a warning
    muted = monitor.observe(message(body), 13.5)
    (warning,) = [e for e in of_kind(muted, "warning") if e["code"] == "scan-limit"]
    assert warning["muted"] is True and warning["message"].startswith("mutecheck: MUTED and")
    assert any(line.startswith("mutecheck: MUTED and not fully read") for line in muted.warnings)


def test_block_unread_policy() -> None:
    """A body over the scan limit with no volume field in the part read: dropped while muted
    with block_unread=block (the default), passed with pass; never while unmuted."""
    body = b'{"pad":"' + b"x" * 300 + b'","audioLevel":0.5}'
    for policy, action in (("block", "drop"), ("pass", None)):
        monitor = Monitor(Settings(block=True, grace=0.0, scan_limit=100, block_unread=policy))  # type: ignore[arg-type]
        assert monitor.observe(message(body), 0.5).action is None  # not muted
        monitor.mark(1.0, True, via="test")
        out = monitor.observe(message(body), 2.0)
        assert out.action == action, policy
        assert [e["code"] for e in of_kind(out, "warning")] == ["scan-limit"]
        if action:
            (blocked,) = of_kind(out, "blocked")
            assert blocked["reason"] == "not fully read while muted" and blocked["fields"] == []
            assert blocked["unread"]["bytes"]["read"] == 100
    assert Settings().block_unread == "block"


def test_block_unread_drops_rather_than_redacts_a_cut_body() -> None:
    """Fields in the part read, more maybe in the rest: redaction would let the rest through."""
    wrapped = ('{"audioLevel":0.1,"more":' + nested(45, '"x":1') + "}").encode()
    for policy, action in (("block", "drop"), ("pass", "redact")):
        monitor = Monitor(
            Settings(block=True, block_action="redact", grace=0.0, block_unread=policy)  # type: ignore[arg-type]
        )
        monitor.mark(0.0, True, via="test")
        assert monitor.observe(message(wrapped), 1.0).action == action


def test_sent_bodies_over_the_scan_limit_are_never_skipped() -> None:
    monitor = Monitor(Settings(scan_limit=64))
    padding = b'{"x":"' + b"y" * 100 + b'"}'
    assert not monitor.skippable(padding, url="u", sent=True)
    assert monitor.skippable(padding, url="u", sent=False)  # received: read for SDP only
    assert monitor.skippable(b'{"x":"y"}', url="u", sent=True)


def test_ordinary_telemetry_says_nothing_was_cut() -> None:
    monitor = Monitor()
    out = monitor.observe(message(b'{"stats":{"audio":{"level":0.2}}}'), 1.0)
    assert kinds(out) == ["telemetry"] and out.events[0]["unread"] is None


def _hidden_body(depth: int, padding: int, literal: str, wrapper: str) -> tuple[bytes, str | None]:
    """A body with one volume field ``depth`` levels deep, after ``padding`` values."""
    field = f'"audioLevel":{literal}'
    inner = '{"a":' * depth + '{"pad":[' + ",".join(["0"] * padding) + "]," + field + "}"
    inner += "}" * depth
    if wrapper == "escaped":
        return json.dumps({"data": inner}).encode(), None
    if wrapper == "base64-field":
        return json.dumps({"payload": base64.b64encode(inner.encode()).decode()}).encode(), None
    if wrapper == "base64-body":
        return base64.b64encode(inner.encode()), None
    if wrapper == "gzip":
        return gzip.compress(inner.encode(), mtime=0), "gzip"
    return inner.encode(), None


@settings(max_examples=120, deadline=None)
@given(
    depth=st.one_of(st.integers(0, 60), st.sampled_from([999, 1500])),
    padding=st.one_of(st.integers(0, 30), st.sampled_from([19_999, 20_001])),
    literal=st.one_of(
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.integers(-(10**20), 10**20).map(str),
        st.sampled_from(LITERALS),
        st.integers(300, 6000).map(lambda n: "7" * n),
        st.sampled_from(['"NaN"', '"0.25"', '"-Infinity"', '"1e999"']),
    ),
    wrapper=st.sampled_from(["json", "escaped", "base64-field", "base64-body", "gzip"]),
    scan_limit=st.sampled_from([256, 4096, SCAN_LIMIT]),
    muted=st.booleans(),
)
def test_any_volume_field_gives_telemetry_or_a_scan_limit(
    depth: int, padding: int, literal: str, wrapper: str, scan_limit: int, muted: bool
) -> None:
    """Whatever the depth, the number of values before it, its value, how it is wrapped and
    the scan limit: a body with a volume field gives a telemetry event or a scan-limit warning,
    never nothing; in block mode while muted it never leaves."""
    body, coding = _hidden_body(depth, padding, literal, wrapper)
    monitor = Monitor(Settings(scan_limit=scan_limit, grace=0.0, block=True))
    if muted:
        monitor.mark(0.0, True, via="test")
    out = monitor.observe(message(body, encoding=coding), 1.0)
    assert evidence(out)
    if muted:
        assert out.action == "drop"


# --- Janus 1.x: a stream muted on the server by its mid ------------------------------------------


def _recorded_videoroom() -> tuple[Monitor, list[Event], str, str, str]:
    """The recorded VideoRoom call's messages through a monitor with the built-in rules; the
    session's URL, the publisher's handle URL (the handle that sent the offer) and the
    subscription's (the handle that answered Janus's offer)."""
    from decoders.audit.messages import read_flow_items
    from decoders.session.rulefiles import builtin_rules

    monitor = Monitor(Settings(rules=builtin_rules()))
    events: list[Event] = []
    publisher = subscriber = None
    with (CAPTURES / "janus-videoroom" / "flows.mitm").open("rb") as handle:
        for t, item in read_flow_items(handle):
            if isinstance(item, Message):
                events.extend(monitor.observe(item, t).events)
                if item.sent and b'"type":"offer"' in item.content:
                    publisher = item.flow.url
                if item.sent and b'"type":"answer"' in item.content:
                    subscriber = item.flow.url
    assert publisher is not None and subscriber is not None and subscriber != publisher
    return monitor, events, publisher.rsplit("/", 1)[0], publisher, subscriber


def _configure(url: str, streams: list[dict[str, Any]]) -> Message:
    body = json.dumps(
        {
            "janus": "message",
            "body": {"request": "configure", "streams": streams},
            "transaction": "x",
        },
        separators=(",", ":"),
    ).encode()
    return message(body, endpoint=url, content_type="application/json")


def test_janus_streams_send_false_mutes_the_audio_mid_only() -> None:
    """Janus 1.x's own server-side mute, ``streams: [{mid, send: false}]``, on the recorded
    VideoRoom call: the publisher's SDP (and Janus's ``configured`` event) say mid 0 is its
    audio, so send: false there is a mute; the same on mid 1 (its video) is not."""
    monitor, events, session_url, publisher, subscriber = _recorded_videoroom()
    # the demo's publish says audio: true (the older form); its Mute button acts in the page only
    said = [(e["state"], e["evidence"]["rule"]) for e in events if e["kind"] == "mute"]
    assert said == [("unmuted", "Janus VideoRoom publisher audio")]
    video = monitor.observe(_configure(publisher, [{"mid": "1", "send": False}]), 1e10)
    assert of_kind(video, "mute") == [] and not monitor.muted
    audio = monitor.observe(
        _configure(publisher, [{"mid": "1", "send": True}, {"mid": "0", "send": False}]), 1e10 + 1
    )
    (mute,) = of_kind(audio, "mute")
    assert (mute["state"], mute["source"]) == ("muted", "rule")
    assert mute["evidence"]["rule"] == "Janus VideoRoom publisher audio stream"
    assert (mute["evidence"]["mid"], mute["evidence"]["path"]) == ("0", "body.streams[1].send")
    assert mute["evidence"]["janus_plugin"] == "janus.plugin.videoroom"
    assert monitor.muted
    back = monitor.observe(_configure(publisher, [{"mid": "0", "send": True}]), 1e10 + 2)
    assert [e["state"] for e in of_kind(back, "mute")] == ["unmuted"] and not monitor.muted
    # the subscription's own streams request stops what the browser receives: not a mute
    # (its mid 0 is the peer's audio, as its answer and Janus's "attached" event say)
    assert (
        of_kind(
            monitor.observe(_configure(subscriber, [{"mid": "0", "send": False}]), 1e10 + 3), "mute"
        )
        == []
    )
    # a handle whose streams no SDP or event named: its mids say nothing
    stranger = monitor.observe(
        _configure(f"{session_url}/123456789", [{"mid": "0", "send": False}]), 1e10 + 3
    )
    assert of_kind(stranger, "mute") == []


def test_janus_stream_kinds_come_from_the_plugins_event_too() -> None:
    """A capture that starts after the offer: Janus's event listing the handle's ``streams``
    (``type`` and ``mid``) tells the kinds by itself."""
    from decoders.session.rulefiles import builtin_rules

    handle, session = 5_513_151_429_653_517, 7_824_675_767_367_472
    url = f"https://10.77.0.2:8089/janus/{session}/{handle}"
    monitor = Monitor(Settings(rules=builtin_rules()))
    configured = {
        "janus": "event",
        "session_id": session,
        "sender": handle,
        "plugindata": {
            "plugin": "janus.plugin.videoroom",
            "data": {
                "videoroom": "event",
                "configured": "ok",
                "streams": [
                    {"type": "video", "mindex": 0, "mid": "v", "codec": "vp8"},
                    {"type": "audio", "mindex": 1, "mid": "a", "codec": "opus"},
                ],
            },
        },
    }
    poll = f"https://10.77.0.2:8089/janus/{session}"
    monitor.observe(
        Message(
            flow=FlowRef(id="p", type="http", url=poll, method="GET"),
            endpoint=poll,
            sent=False,
            content=json.dumps([configured], indent=3).encode(),
            label=f"GET {poll}",
        ),
        1.0,
    )
    assert (
        of_kind(monitor.observe(_configure(url, [{"mid": "v", "send": False}]), 2.0), "mute") == []
    )
    (mute,) = of_kind(monitor.observe(_configure(url, [{"mid": "a", "send": False}]), 3.0), "mute")
    assert mute["evidence"]["mid"] == "a" and monitor.muted
