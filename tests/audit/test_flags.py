"""Tests for decoders.audit.flags: each rule on hand-made packet tables, thresholds included."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from decoders.audit import flags
from decoders.audit.activity import SHIPPED_ACCURACY
from decoders.audit.flags import (
    STREAM_RULES,
    Finding,
    StreamWindow,
    audio_level_while_muted,
    media_continues_while_muted,
    media_findings,
    no_media_while_muted,
    server_side_findings,
    strongest,
    telemetry_findings,
)
from decoders.audit.measure import (
    LocalSide,
    MediaMeasurement,
    SeriesSource,
    measure_media,
    measure_telemetry,
)
from decoders.audit.messages import TelemetryMessage
from decoders.audit.verdict import decide
from decoders.media.streams import stream_groups, stream_table
from decoders.session.timeline import MuteInterval, ScopedMute, Timeline, build_timeline
from decoders.wire.demux import PacketKind
from decoders.wire.rowbuild import COLUMNS, KIND_CODES, Rows

T0 = 1_795_989_000.0
ME, PEER = "10.0.0.1", "10.0.0.2"
LOCAL = LocalSide(frozenset({ME}), how="test")
WINDOW = (T0 + 10.0, T0 + 20.0)


@dataclass
class Packet:
    t: float
    size: int
    level: int = -1
    ssrc: int = 1
    src: str = ME
    pt: int = 111
    kind: PacketKind = PacketKind.RTP


def rows_of(packets: list[Packet]) -> Rows:
    packets = sorted(packets, key=lambda p: p.t)
    addresses = [ME, PEER]
    n = len(packets)
    columns = {name: np.zeros(n, dtype) for name, dtype in COLUMNS.items()}
    seq: dict[int, int] = {}
    for i, p in enumerate(packets):
        number = seq.get(p.ssrc, 0)
        seq[p.ssrc] = number + 1
        columns["frame"][i] = i + 1
        columns["timestamp_ns"][i] = round(p.t * 1e9)
        columns["src"][i] = addresses.index(p.src)
        columns["dst"][i] = 1 - addresses.index(p.src)
        columns["src_port"][i] = 5000 if p.src == ME else 6000
        columns["dst_port"][i] = 6000 if p.src == ME else 5000
        columns["kind"][i] = KIND_CODES.index(p.kind)
        columns["length"][i] = p.size + 12
        columns["payload_type"][i] = p.pt
        columns["sequence_number"][i] = number & 0xFFFF
        clock = 90 if p.pt == 96 else 48
        columns["rtp_timestamp"][i] = round((p.t - T0) * 1000 * clock) & 0xFFFFFFFF
        columns["ssrc"][i] = p.ssrc
        columns["payload_length"][i] = p.size
        columns["audio_level"][i] = p.level
        columns["voice"][i] = p.level >= 0
        columns["extension_profile"][i] = -1
    return Rows(columns, addresses)


PerPacket = int | Callable[[int, float], int]
"""A constant, or a function of (packet number, seconds)."""


def _value(given: PerPacket, i: int, t: float) -> int:
    return given(i, t) if callable(given) else given


def audio(
    start: float,
    end: float,
    sizes: PerPacket,
    levels: PerPacket,
    *,
    ssrc: int = 1,
    src: str = ME,
    step: float = 0.02,
) -> list[Packet]:
    times = np.arange(start, end, step).tolist()
    return [
        Packet(T0 + t, _value(sizes, i, t), _value(levels, i, t), ssrc=ssrc, src=src)
        for i, t in enumerate(times)
    ]


RNG = np.random.default_rng(3)
SPEECH_SIZES = RNG.integers(40, 120, 5000)
SPEECH_LEVELS = RNG.integers(15, 45, 5000)


def speech(i: int, _t: float) -> int:
    return int(SPEECH_SIZES[i % 5000])


def speech_level(i: int, _t: float) -> int:
    return int(SPEECH_LEVELS[i % 5000])


def timeline_for(rows: Rows, windows: list[tuple[float, float]] | None = None) -> Timeline:
    span = (int(rows["timestamp_ns"].min()) / 1e9, int(rows["timestamp_ns"].max()) / 1e9)
    intervals = [MuteInterval(a, b, "lab", "test") for a, b in (windows or [WINDOW])]
    return build_timeline(intervals, capture_span=span)


def measure(
    packets: list[Packet],
    local: LocalSide = LOCAL,
    windows: list[tuple[float, float]] | None = None,
    extras: dict[int, SeriesSource] | None = None,
) -> tuple[MediaMeasurement, Timeline]:
    rows = rows_of(packets)
    streams = stream_table(rows)
    groups = stream_groups(rows)
    timeline = timeline_for(rows, windows)
    return measure_media(rows, streams, groups, timeline, local=local, extras=extras), timeline


def findings_of(packets: list[Packet], **options: object) -> list[Finding]:
    media, timeline = measure(packets, **options)  # type: ignore[arg-type]
    return media_findings(media, timeline)


def ids(findings: list[Finding]) -> list[str]:
    return sorted(f.id for f in findings)


def call(
    muted_sizes: PerPacket, muted_levels: PerPacket, *, ssrc: int = 1, src: str = ME
) -> list[Packet]:
    """30 s: unmuted speech, then 10..20 s as given, then speech again."""
    return (
        audio(0, 10, speech, speech_level, ssrc=ssrc, src=src)
        + audio(10, 20, muted_sizes, muted_levels, ssrc=ssrc, src=src)
        + audio(20, 30, speech, speech_level, ssrc=ssrc, src=src)
    )


def test_speech_while_muted_is_a_content_leak() -> None:
    found = findings_of(call(speech, speech_level))
    assert ids(found) == ["audio-level-while-muted", "encoded-content-while-muted"]
    level = next(f for f in found if f.id == "audio-level-while-muted")
    assert level.severity == "high" and level.leak == "content" and level.window == 0
    assert level.numbers["loud_share"] == 1.0
    assert level.interval is not None
    assert WINDOW[0] + 0.2 <= level.interval[0] < level.interval[1] <= WINDOW[1] - 0.2
    assert len(level.first_frames) == 5 and level.stream_label is not None
    assert level.series is not None and level.series.values.max() < 0
    sizes = next(f for f in found if f.id == "encoded-content-while-muted")
    assert sizes.numbers["distinct_sizes"] > 50 and sizes.severity == "high"
    assert strongest(found) is not None


def test_each_stream_rule_is_a_documented_function_named_after_its_finding() -> None:
    assert flags.__doc__ is not None
    for rule in STREAM_RULES:
        finding = rule.__name__.replace("_", "-")
        assert rule.__doc__ is not None and rule.__doc__.startswith(f"``{finding}`` (")
        assert f"``{finding}`` (" in flags.__doc__  # the module's list of rules names it too
    assert len({rule.__name__ for rule in STREAM_RULES}) == len(STREAM_RULES) == 7


def test_a_rule_reads_one_stream_window_and_what_came_before() -> None:
    media, timeline = measure(call(speech, speech_level))
    (info,) = media.streams
    seen = StreamWindow.of(media, info, timeline.windows[0], timeline)
    assert seen.phase.packets == seen.rows.size == seen.times_ns.size > 400
    assert not seen.constant_bit_rate  # Opus (payload type 111, behaviour)
    level = audio_level_while_muted(seen, [])
    assert level is not None and level.id == "audio-level-while-muted"
    assert (level.window, level.stream, level.stream_label) == (0, info.index, info.label)
    assert no_media_while_muted(seen, [level]) is None  # packets were sent
    # packets flow: alone they would be "media continues"; after a content finding they are not
    alone = media_continues_while_muted(seen, [])
    assert alone is not None and alone.id == "media-continues-while-muted"
    assert media_continues_while_muted(seen, [level]) is None
    assert [f.id for f in media_findings(media, timeline)] == [
        "audio-level-while-muted",
        "encoded-content-while-muted",
    ]


def test_silence_frames_are_informational() -> None:
    found = findings_of(call(32, 127))
    assert ids(found) == ["media-continues-while-muted"]
    (info,) = found
    assert info.severity == "info" and info.leak is None
    assert info.numbers["commonest_size_bytes"] == 32 and info.numbers["dtx"] is False


def test_dtx_is_not_coded_content() -> None:
    # Opus DTX: a 35-byte and a 1-byte frame every 400 ms
    dtx = [
        Packet(T0 + t + d, size, 127)
        for t in np.arange(10.0, 20.0, 0.42)
        for d, size in ((0.0, 35), (0.02, 1))
    ]
    found = findings_of(audio(0, 10, speech, speech_level) + dtx + audio(20, 30, speech, 30))
    assert ids(found) == ["media-continues-while-muted"]
    assert found[0].numbers["dtx"] is True
    assert "DTX" in found[0].title


def test_nothing_sent_is_informational() -> None:
    found = findings_of(audio(0, 10, speech, speech_level) + audio(20, 30, speech, speech_level))
    assert ids(found) == ["no-media-while-muted"]
    assert found[0].numbers["packets"] == 0 and found[0].interval is None


@pytest.mark.parametrize(
    ("loud", "expected"),
    [
        (4, []),  # under 5 packets: the encoder settling, not a leak
        (10, []),  # 10 of ~490: 2 %, under 5 %
        (30, ["medium"]),  # 6 %: a burst of sound
        (120, ["high"]),  # 24 %
    ],
)
def test_audio_level_thresholds(loud: int, expected: list[str]) -> None:
    def level(i: int, _t: float) -> int:
        return 30 if 100 <= i < 100 + loud else 127

    found = [f for f in findings_of(call(32, level)) if f.id == "audio-level-while-muted"]
    assert [f.severity for f in found] == expected


def test_sizes_alone_without_levels_or_sdp() -> None:
    # encrypted media without the audio-level extension: only sizes can tell
    found = findings_of(call(speech, -1))
    assert ids(found) == ["encoded-content-while-muted"]


def test_a_few_sizes_are_not_coded_content() -> None:
    found = findings_of(call(lambda i, _t: 32 + i % 4, 127))
    assert ids(found) == ["media-continues-while-muted"]


def test_remote_and_video_streams_are_not_judged() -> None:
    mine = call(32, 127)
    theirs = call(speech, speech_level, ssrc=2, src=PEER)
    video = [
        Packet(T0 + t, int(s), ssrc=3, pt=96)
        for t, s in zip(np.arange(0, 30, 1 / 30), RNG.integers(900, 1200, 900), strict=False)
    ]
    assert ids(findings_of(mine + theirs + video)) == ["media-continues-while-muted"]
    # with the muted side unknown, every audio stream is judged
    unknown = findings_of(mine + theirs + video, local=LocalSide())
    assert "audio-level-while-muted" in ids(unknown)
    assert all(f.stream_label and "0x00000003" not in f.stream_label for f in unknown)


def test_new_stream_while_muted() -> None:
    late = audio(12, 16, 32, 127, ssrc=9)
    found = findings_of(call(32, 127) + late)
    new = [f for f in found if f.id == "new-stream-while-muted"]
    assert len(new) == 1 and new[0].severity == "medium" and new[0].leak == "metadata"
    assert new[0].stream_label is not None and "0x00000009" in new[0].stream_label


def test_findings_land_in_their_window() -> None:
    windows = [(T0 + 5.0, T0 + 8.0), (T0 + 10.0, T0 + 20.0)]
    packets = (
        audio(0, 5, speech, speech_level)
        + audio(5, 8, 32, 127)
        + audio(8, 10, speech, speech_level)
        + audio(10, 20, speech, speech_level)
        + audio(20, 30, speech, speech_level)
    )
    found = findings_of(packets, windows=windows)
    assert {(f.id, f.window) for f in found} == {
        ("media-continues-while-muted", 0),
        ("audio-level-while-muted", 1),
        ("encoded-content-while-muted", 1),
    }


def test_decoded_audio() -> None:
    packets = call(32, 127)
    ts = np.array(sorted(round(p.t * 1e9) for p in packets), np.int64)
    loud = (ts > (T0 + 12) * 1e9) & (ts < (T0 + 14) * 1e9)
    dbfs = np.where(loud, -30.0, -112.0)
    found = findings_of(packets, extras={1: SeriesSource(ts, dbfs)})
    decoded = [f for f in found if f.id == "decoded-audio-while-muted"]
    assert len(decoded) == 1 and decoded[0].severity == "high"
    assert decoded[0].numbers["loud_packets"] == pytest.approx(100, abs=1)
    assert decoded[0].interval is not None
    assert T0 + 12 <= decoded[0].interval[0] < decoded[0].interval[1] <= T0 + 14
    silent = findings_of(packets, extras={1: SeriesSource(ts, np.full(ts.shape, -112.0))})
    assert ids(silent) == ["media-continues-while-muted"]


def telemetry(messages: list[TelemetryMessage]) -> list[Finding]:
    timeline = build_timeline([MuteInterval(*WINDOW, "lab", "t")], capture_span=None)
    return telemetry_findings(measure_telemetry(messages, timeline, source="events"), timeline)


def test_volume_telemetry_severity() -> None:
    url = "https://metrics.example/v1"
    constant = [TelemetryMessage(T0 + t, url, (("micVolume", 0),)) for t in (11, 13, 15)]
    (finding,) = telemetry(constant)
    assert finding.severity == "medium" and finding.leak == "metadata"
    assert finding.endpoint == url and finding.series is None
    assert finding.numbers["messages"] == 3
    varying = [TelemetryMessage(T0 + t, url, (("audioLevel", t / 100),)) for t in (11, 13, 15)]
    (finding,) = telemetry(varying)
    assert finding.severity == "high" and finding.numbers["varying_fields"] == ["audioLevel"]
    assert finding.series is not None and finding.series.values.tolist() == [0.11, 0.13, 0.15]
    speaking = [TelemetryMessage(T0 + 12, url, (("isSpeaking", True),))]
    (finding,) = telemetry(speaking)
    assert finding.severity == "high" and finding.numbers["voice_activity_fields"]


def test_volume_telemetry_says_what_an_observer_could_infer() -> None:
    """Webex's minute record (research.md) is read by the activity model; one level is not."""
    url = "https://metrics.example/v1"
    levels = "(base64).audioTransmit[0].levels."
    minute = ((levels + "audioMaxGain", 30), (levels + "audioMeanGain", 28))
    webex = [
        TelemetryMessage(T0 + t, url, (*minute, (levels + "audioMinGain", 26 - t % 2)))
        for t in (11, 13, 15)
    ]
    (finding,) = telemetry(webex)
    inference = finding.numbers["observer_inference"]
    assert inference["max_field"] == levels + "audioMaxGain" and inference["readings"] == 3
    assert inference["likeliest"] == "vacuum"
    assert inference["accuracy"] == SHIPPED_ACCURACY[1]
    assert "what this lets an observer infer: " in finding.evidence
    assert "reads 3 reading(s) as vacuum 100%" in finding.evidence
    # readings every 2 s, not every minute: said, with the model's figures not applying
    assert inference["period_s"] == 2.0 and inference["same_period"] is False
    assert finding.evidence.endswith("so its accuracy figures do not apply")
    single = [TelemetryMessage(T0 + t, url, (("audioLevel", t / 100),)) for t in (11, 13, 15)]
    (finding,) = telemetry(single)
    assert finding.numbers["observer_inference"]["model"] is None
    assert finding.evidence.endswith("no activity model exists for the values that left")


def test_telemetry_outside_windows_and_per_endpoint() -> None:
    messages = [
        TelemetryMessage(T0 + 2, "https://a/x", (("audioLevel", 0.1),)),
        TelemetryMessage(T0 + 10.1, "https://a/x", (("audioLevel", 0.1),)),  # grace
        TelemetryMessage(T0 + 12, "https://a/x", (("audioLevel", 0.1),), "f1"),
        TelemetryMessage(T0 + 13, "wss://b/ws", (("level", 3),), "f2", 7),
    ]
    found = telemetry(messages)
    assert [(f.endpoint, f.first_messages) for f in found] == [
        ("https://a/x", ("f1",)),
        ("wss://b/ws", ("f2#7",)),
    ]


def pcmu(start: float, end: float, levels: PerPacket = -1) -> list[Packet]:
    """G.711 u-law (static payload type 0): 160 bytes every 20 ms, speech or silence."""
    packets = audio(start, end, 160, levels)
    for packet in packets:
        packet.pt = 0
    return packets


def test_constant_bit_rate_sizes_cannot_speak() -> None:
    """PCMU sends 160 bytes a packet whatever the microphone hears: the size rule says so
    instead of judging, and no "silence frames" are claimed; without a level the window
    cannot be judged (verdict), with one the level judges."""
    media, timeline = measure(pcmu(0, 30))
    (info,) = media.streams
    assert info.codec == "PCMU"
    found = media_findings(media, timeline)
    assert ids(found) == ["constant-bit-rate-sizes"]
    (cbr,) = found
    assert cbr.severity == "info" and cbr.leak is None
    assert cbr.title == "PCMU is constant-bit-rate: payload sizes cannot tell sound from silence"
    assert cbr.numbers["commonest_size_share"] == 1.0 and cbr.numbers["judged_by"] == []
    assert "cannot be judged" in cbr.evidence
    verdict = decide(found, timeline, media, None)
    assert verdict.verdict == "inconclusive"
    assert "PCMU is a constant-bit-rate codec" in verdict.reason
    loud = findings_of(pcmu(0, 30, speech_level))
    assert ids(loud) == ["audio-level-while-muted", "constant-bit-rate-sizes"]
    assert loud[1].numbers["judged_by"] == ["the audio level"]
    silent_media, silent_timeline = measure(pcmu(0, 30, 127))
    silent = media_findings(silent_media, silent_timeline)
    assert ids(silent) == ["constant-bit-rate-sizes", "media-continues-while-muted"]
    assert decide(silent, silent_timeline, silent_media, None).verdict == "no-leak"


def test_opus_sizes_still_speak() -> None:
    assert "constant-bit-rate-sizes" not in ids(findings_of(audio(0, 30, speech, -1)))


def server_mute(start: float, end: float | None) -> ScopedMute:
    return ScopedMute(
        start,
        end,
        "server",
        "Janus AudioBridge muted",
        "body.muted",
        True,
        "wss://10.77.0.2:8989/",
        "f1#4",
    )


def test_a_server_side_mute_is_named_only_when_the_sound_still_left() -> None:
    media, timeline = measure(audio(0, 30, speech, speech_level))
    found = media_findings(media, timeline)
    (named,) = server_side_findings(found, timeline, [server_mute(T0 + 10.02, T0 + 20.01)])
    assert named.id == "server-side-mute" and named.leak == "content" and named.severity == "high"
    assert named.title == (
        "the app muted you on its server; your microphone audio still went to the server"
    )
    assert named.numbers["shown_by"] == ["audio-level-while-muted", "encoded-content-while-muted"]
    assert "rule 'Janus AudioBridge muted': body.muted = true" in named.evidence
    assert named.first_messages == ("f1#4",) and named.stream == found[0].stream
    verdict = decide([*found, named], timeline, media, None)
    assert verdict.reason.startswith(named.title)
    assert verdict.confidence == decide(found, timeline, media, None).confidence
    assert server_side_findings(found, timeline, [server_mute(T0 + 25, None)]) == []
    silent_media, silent_timeline = measure(audio(0, 30, 33, 127))
    silent = media_findings(silent_media, silent_timeline)
    assert server_side_findings(silent, silent_timeline, [server_mute(T0 + 10, None)]) == []
