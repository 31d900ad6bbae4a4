"""The alarm rules, on the addon's real events and the audit's thresholds."""

from __future__ import annotations

import json
from pathlib import Path

from decoders.audit.measure import SILENCE_LEVEL
from decoders.live.alarm import GRACE_S, Alarm, event_alarm, loud, packet_alarm, sizes_alarm

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def _events(name: str) -> list[dict[str, object]]:
    lines = (CAPTURES / name / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_loud_is_the_audits_threshold() -> None:
    assert loud(0) and loud(SILENCE_LEVEL - 1)
    assert not loud(SILENCE_LEVEL) and not loud(127) and not loud(None)


def test_packet_alarm_only_when_muted_past_the_grace() -> None:
    assert packet_alarm(10.0, "s", 30, None) is None  # not muted
    assert packet_alarm(10.0, "s", 30, 10.0 - GRACE_S / 2) is None  # the encoder's last frames
    assert packet_alarm(10.0, "s", 127, 5.0) is None  # silence
    alarm = packet_alarm(10.0, "SSRC 0x1", 30, 5.0)
    assert alarm == Alarm(10.0, "audio", "SSRC 0x1", "audio level -30 dBov (silence is -127)")
    assert alarm.line() == (
        "ALARM: sound is leaving while muted: SSRC 0x1: audio level -30 dBov (silence is -127)"
    )


def test_telemetry_finding_while_muted_names_the_endpoint() -> None:
    events = _events("chromium-telemetry-ws")
    alarms = [a for a in map(event_alarm, events) if a is not None]
    findings = [e for e in events if e["kind"] == "telemetry" and e["muted"] and e["finding"]]
    assert findings and len(alarms) == len([e for e in findings if not e.get("grace")])
    assert {a.subject for a in alarms} == {"ws://10.77.0.2:8080/ws"}
    assert (
        alarms[0]
        .line()
        .startswith(
            "ALARM: volume telemetry left while muted: ws://10.77.0.2:8080/ws: [medium] audioLevel="
        )
    )
    unmuted = [e for e in events if e["kind"] == "telemetry" and not e["muted"]]
    assert unmuted and all(event_alarm(e) is None for e in unmuted)


def test_relayed_media_warning_and_other_events() -> None:
    warning = {
        "t": 5.0,
        "kind": "warning",
        "code": "media-while-muted",
        "message": "mutecheck: MUTED but audio is not silent: ...",
        "flow": {"client": "127.0.0.1:5000", "server": "10.77.0.2:3478"},
    }
    alarm = event_alarm(warning)
    assert alarm is not None and alarm.kind == "relayed-media"
    assert alarm.subject == "127.0.0.1:5000 -> 10.77.0.2:3478"
    assert all(event_alarm(e) is None for e in _events("chromium-ui-only"))


def test_sizes_alarm_uses_the_audits_thresholds() -> None:
    speech = [40 + (i * 37) % 70 for i in range(40)]  # dozens of sizes
    alarm = sizes_alarm(3.0, "SSRC 0x1", speech)
    assert alarm is not None and alarm.kind == "audio-sizes"
    assert alarm.line().startswith("ALARM: sound is probably leaving while muted: SSRC 0x1: 40")
    assert sizes_alarm(3.0, "s", [33] * 50) is None  # one repeated silence frame
    assert sizes_alarm(3.0, "s", [1, 32] * 25) is None  # DTX: two sizes
    assert sizes_alarm(3.0, "s", speech[:10]) is None  # too few to judge
