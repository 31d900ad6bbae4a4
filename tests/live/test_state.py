"""The live state on real lab captures and events: the alarm where the audit finds a leak."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from decoders.live.alarm import Alarm
from decoders.live.state import JUDGE_DELAY_S, LiveState
from decoders.wire.capture import open_capture
from decoders.wire.net import Datagram, Unwrapper

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
BROWSER = "10.77.0.1"


def _datagrams(name: str) -> list[Datagram]:
    unwrapper = Unwrapper()
    out: list[Datagram] = []
    with open_capture(CAPTURES / name / "capture.pcapng") as reader:
        for frame in reader:
            out += unwrapper.feed(frame)
    return out + unwrapper.flush()


def _events(name: str) -> list[dict[str, Any]]:
    lines = (CAPTURES / name / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _replay(name: str, *, local: tuple[str, ...] = (BROWSER,)) -> tuple[LiveState, list[Alarm]]:
    fired: list[Alarm] = []
    state = LiveState(local=local, on_alarm=fired.append)
    for event in _events(name):
        state.on_event(event)
    for datagram in _datagrams(name):
        state.on_datagram(datagram)
    state.flush()
    return state, fired


@pytest.mark.parametrize(
    "name", ["chromium-ui-only", "chromium-ui-only-relay-udp", "chromium-ui-only-relay-tcp"]
)
def test_ui_only_alarms_once_inside_the_mute_window(name: str) -> None:
    state, fired = _replay(name)
    (alarm,) = fired
    (window,) = state.timeline.intervals()
    assert window[0] + 0.2 <= alarm.t < window[1]
    assert alarm.kind == "audio" and alarm.subject.startswith("SSRC 0x")
    assert f" {BROWSER}:" in alarm.subject
    assert state.level_id == 1  # from the SDP the addon recorded


@pytest.mark.parametrize(
    "name",
    ["chromium-track-disabled", "chromium-dtx", "chromium-replace-null", "chromium-gain-zero"],
)
def test_silent_mutes_raise_no_alarm(name: str) -> None:
    state, fired = _replay(name)
    assert fired == [] and state.alarms == []
    assert state.counts["rtp"] > 0


def test_telemetry_alarm_once_per_endpoint_and_window() -> None:
    state, fired = _replay("chromium-telemetry-ws")
    assert [a.kind for a in fired] == ["telemetry"]
    assert fired[0].subject == "ws://10.77.0.2:8080/ws"
    assert len(state.telemetry) == 8 and all("ws://10.77.0.2:8080/ws" in t for t in state.telemetry)
    fresh = LiveState()
    events = _events("chromium-telemetry-ws")
    first = next(i for i, e in enumerate(events) if e["kind"] == "telemetry" and e["finding"])
    for event in events[: first + 1]:
        fresh.on_event(event)
    assert "MUTED finding (medium) ws://10.77.0.2:8080/ws" in fresh.telemetry[-1]


def test_without_sdp_the_level_id_is_inferred() -> None:
    fired: list[Alarm] = []
    state = LiveState(local=(BROWSER,), on_alarm=fired.append)
    for event in _events("chromium-ui-only"):
        if event["kind"] == "mute":
            state.on_event(event)
    for datagram in _datagrams("chromium-ui-only"):
        state.on_datagram(datagram)
    state.flush()
    assert state.level_id == 1 and len(fired) == 1


def test_a_late_unmute_within_the_judge_delay_prevents_a_false_alarm() -> None:
    datagrams = [d for d in _datagrams("chromium-ui-only") if d.src == BROWSER]
    rtp = [d for d in datagrams if d.payload[0] >> 6 == 2 and d.payload[1] & 0x7F == 111]
    fired: list[Alarm] = []
    state = LiveState(local=(BROWSER,), audio_level_id=1, on_alarm=fired.append)
    start = rtp[100].timestamp_ns / 1e9
    state.mark(start - 5, True)
    for datagram in rtp[100:110]:  # sound, "muted" as far as known when captured
        state.on_datagram(datagram)
    state.mark(start - 1, False)  # the unmute arrives late, but before the judging
    assert state.tick(start + JUDGE_DELAY_S / 2) == []
    assert state.flush() == [] and fired == []


def test_malformed_rtp_is_counted_and_skipped() -> None:
    state = LiveState(audio_level_id=1)
    good = next(d for d in _datagrams("chromium-ui-only") if d.payload[0] >> 6 == 2)
    broken = Datagram(1, good.timestamp_ns, "a", 1, "b", 2, "udp", b"\x90\x6f" + bytes(10))
    state.on_datagram(broken)
    state.on_datagram(good)
    assert state.counts["rtp.malformed"] == 1 and state.counts["rtp"] == 2
    assert len(state.snapshot().streams) == 1


def test_snapshot_shows_rate_sizes_level_and_mute_source() -> None:
    state, _ = _replay("chromium-ui-only")
    last = max(d.timestamp_ns for d in _datagrams("chromium-ui-only")) / 1e9
    snapshot = state.snapshot(now=last)
    (stream,) = snapshot.streams
    assert stream.audio and 40 <= stream.rate <= 60
    assert stream.median_size is not None and 30 < stream.median_size < 130
    assert stream.level is not None
    assert snapshot.muted is False and snapshot.mute_source == "mark"
    assert snapshot.counts["alarms"] == 1 and len(snapshot.alarms) == 1


@pytest.mark.parametrize(
    ("name", "alarms"),
    [("chromium-ui-only", 1), ("chromium-track-disabled", 0), ("chromium-dtx", 0)],
)
def test_without_levels_sizes_decide(name: str, alarms: int) -> None:
    """An extmap id no packet carries: the audio stream has no level; its sizes are judged."""
    fired: list[Alarm] = []
    state = LiveState(local=(BROWSER,), audio_level_id=14, on_alarm=fired.append)
    for event in _events(name):
        if event["kind"] == "mute":
            state.on_event(event)
    datagrams = _datagrams(name)
    for datagram in datagrams:
        state.on_datagram(datagram)
        state.tick(datagram.timestamp_ns / 1e9)  # as live: judged as the packets come
    state.flush()
    assert len(fired) == alarms
    if alarms:
        (window,) = state.timeline.intervals()
        assert fired[0].kind == "audio-sizes" and window[0] < fired[0].t < window[1]
        assert fired[0].t - window[0] < 1.5  # about 20 packets after the grace


def test_telemetry_after_a_known_unmute_is_no_alarm() -> None:
    """The addon judged a message muted because the unmute mark reached it a moment later;
    the live state already knew (the audit marks it directly too): no alarm, as offline."""
    events = _events("chromium-telemetry-ws")
    finding = next(e for e in events if e["kind"] == "telemetry" and e["finding"])
    fired: list[Alarm] = []
    state = LiveState(on_alarm=fired.append)
    state.mark(float(finding["t"]) - 5, True)
    state.mark(float(finding["t"]) - 0.3, False)
    state.on_event(finding)
    assert fired == []
    state.mark(float(finding["t"]) - 0.1, True)
    state.on_event(finding)
    assert [a.kind for a in fired] == ["telemetry"]
