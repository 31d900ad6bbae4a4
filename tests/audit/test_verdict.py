"""Tests for decoders.audit.verdict: per window, per session, confidence and exit codes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from decoders.audit.correlate import Correlation
from decoders.audit.flags import Finding
from decoders.audit.measure import LocalSide, MediaMeasurement, measure_media, measure_telemetry
from decoders.audit.verdict import EXIT_CODES, VERDICTS, confidence_label, decide
from decoders.media.scan import scan_streams
from decoders.session.timeline import MuteInterval, Timeline, build_timeline

SyntheticFactory = Callable[..., tuple[bytes, Any]]
BROWSER = LocalSide(frozenset({"10.77.0.1"}), how="test")


def synthetic(
    tmp_path: Path,
    make_synthetic: SyntheticFactory,
    *,
    local: LocalSide = BROWSER,
    extra_window: tuple[float, float] | None = None,
) -> tuple[MediaMeasurement, Timeline]:
    data, truth = make_synthetic(packets=4000)
    path = tmp_path / "s.pcap"
    path.write_bytes(data)
    scan = scan_streams(path)
    rows = scan.rows
    groups = scan.groups
    span = (int(rows["timestamp_ns"].min()) / 1e9, int(rows["timestamp_ns"].max()) / 1e9)
    intervals = [MuteInterval(truth.muted_ns[0] / 1e9, truth.muted_ns[1] / 1e9, "lab", "truth")]
    if extra_window:
        intervals.append(MuteInterval(*extra_window, "cli", "extra"))
    timeline = build_timeline(intervals, capture_span=span)
    media = measure_media(rows, scan.streams, groups, timeline, local=local)
    return media, timeline


def finding(leak: str | None, severity: str, window: int = 0, **kw: Any) -> Finding:
    return Finding(
        id=kw.pop("id", f"{leak}-thing"),
        severity=severity,
        leak=leak,
        title=f"{leak} left",
        window=window,
        interval=None,
        numbers={},
        evidence="",
        **kw,
    )


def test_exit_codes_are_distinct_and_documented() -> None:
    assert set(EXIT_CODES) == set(VERDICTS)
    assert EXIT_CODES["no-leak"] == 0
    assert len(set(EXIT_CODES.values())) == 4
    assert not {1, 2} & set(EXIT_CODES.values())  # crash and user error keep their codes


def test_no_timeline_is_inconclusive(tmp_path: Path, make_synthetic: SyntheticFactory) -> None:
    media, _ = synthetic(tmp_path, make_synthetic)
    empty = build_timeline([], capture_span=media.span)
    verdict = decide([], empty, media, None)
    assert verdict.verdict == "inconclusive" and "no mute interval" in verdict.reason
    assert verdict.exit_code == 3 and verdict.label == "none"
    assert verdict.hint is not None and "--muted START-END" in verdict.hint
    assert "mark mute and unmute" in verdict.hint
    read = decide([], empty, media, None, signals_read=True)
    assert read.reason.startswith("no mute interval: no timeline, no mark, and the app sent no")
    assert "track.enabled = false" in read.reason


def test_nothing_to_judge() -> None:
    timeline = build_timeline([MuteInterval(2e9, 2e9 + 5, "cli", "x")], capture_span=None)
    verdict = decide([], timeline, None, None)
    assert verdict.verdict == "inconclusive" and "nothing to judge" in verdict.reason


def test_silent_synthetic_call_is_no_leak(tmp_path: Path, make_synthetic: SyntheticFactory) -> None:
    media, timeline = synthetic(tmp_path, make_synthetic)
    verdict = decide([], timeline, media, None)
    assert verdict.verdict == "no-leak" and verdict.exit_code == 0
    assert "audio level silent" in verdict.reason and "telemetry not checked" in verdict.reason
    assert verdict.confidence == pytest.approx(0.9)
    telemetry = measure_telemetry([], timeline, source="events")
    assert decide([], timeline, media, telemetry).confidence == pytest.approx(0.95)
    assert verdict.to_json()["confidence_label"] == "high"


def test_content_beats_metadata_and_correlation_makes_it_certain(
    tmp_path: Path, make_synthetic: SyntheticFactory
) -> None:
    media, timeline = synthetic(tmp_path, make_synthetic)
    metadata = finding("metadata", "medium")
    verdict = decide([metadata], timeline, media, None)
    assert (verdict.verdict, verdict.confidence) == ("metadata-leak", 0.75)
    content = finding("content", "high", id="audio-level-while-muted")
    assert decide([metadata, content], timeline, media, None).verdict == "content-leak"
    sizes = finding("content", "medium", id="encoded-content-while-muted")
    assert decide([content, sizes], timeline, media, None).confidence == pytest.approx(0.9)
    proof = Correlation(0.9, 0.1, 0.001, 200, 999, "levels")
    proven = dataclasses.replace(content, correlation=proof)
    verdict = decide([proven], timeline, media, None)
    assert verdict.confidence == 0.99 and verdict.exit_code == 5


def test_informational_findings_do_not_make_a_leak(
    tmp_path: Path, make_synthetic: SyntheticFactory
) -> None:
    media, timeline = synthetic(tmp_path, make_synthetic)
    verdict = decide([finding(None, "info"), finding("content", "low")], timeline, media, None)
    assert verdict.verdict == "no-leak"


def test_worst_window_decides_and_windows_outside_are_skipped(
    tmp_path: Path, make_synthetic: SyntheticFactory
) -> None:
    media, timeline = synthetic(tmp_path, make_synthetic, extra_window=(3e9, 3e9 + 10))
    assert len(timeline.windows) == 2
    verdict = decide([finding("metadata", "high", window=0)], timeline, media, None)
    assert verdict.verdict == "metadata-leak"
    assert [w.verdict for w in verdict.windows] == ["metadata-leak", "inconclusive"]
    assert "outside the capture" in verdict.windows[1].reason
    assert "could not be judged" in verdict.reason
    assert verdict.windows[0].to_json()["findings"] == [0]


def test_only_remote_streams_is_inconclusive(
    tmp_path: Path, make_synthetic: SyntheticFactory
) -> None:
    nobody = LocalSide(frozenset({"192.0.2.99"}), how="test")
    media, timeline = synthetic(tmp_path, make_synthetic, local=nobody)
    verdict = decide([], timeline, media, None)
    assert verdict.verdict == "inconclusive" and "no audio stream" in verdict.reason


def test_telemetry_without_capture() -> None:
    timeline = build_timeline([MuteInterval(2e9, 2e9 + 5, "cli", "x")], capture_span=None)
    telemetry = measure_telemetry([], timeline, source="flows")
    assert "no capture" in decide([], timeline, None, telemetry).reason
    verdict = decide([finding("metadata", "high")], timeline, None, telemetry)
    assert verdict.verdict == "metadata-leak"


def test_confidence_labels() -> None:
    assert [confidence_label(c) for c in (0.99, 0.85, 0.7, 0.3)] == [
        "high",
        "high",
        "medium",
        "low",
    ]


@pytest.mark.parametrize(("confidence", "cap"), [("medium", 0.8), ("assumed", 0.75)])
def test_a_side_not_surely_known_caps_media_leaks(
    tmp_path: Path, make_synthetic: SyntheticFactory, confidence: str, cap: float
) -> None:
    side = dataclasses.replace(BROWSER, how="ICE-lite peer", confidence=confidence)
    media, timeline = synthetic(tmp_path, make_synthetic, local=side)
    content = [finding("content", "high", stream=0, id="a"), finding("content", "high", id="b")]
    sure = decide(content, timeline, media, None, side=dataclasses.replace(side, confidence="high"))
    assert sure.confidence == pytest.approx(0.9)
    capped = decide(content, timeline, media, None, side=side)
    assert capped.verdict == "content-leak" and capped.confidence == pytest.approx(cap)
    assert "--local ADDR to confirm" in capped.reason
    # proof by correlation says it is the microphone's, whoever sent it
    proof = Correlation(0.8, 0.1, 0.001, 200, 1000, "audio level")
    proven = [dataclasses.replace(content[0], correlation=proof)]
    assert decide(proven, timeline, media, None, side=side).confidence == pytest.approx(0.99)
    # telemetry is the proxy's view of this browser: not capped
    telemetry = [finding("metadata", "high")]
    assert decide(telemetry, timeline, media, None, side=side).confidence == pytest.approx(0.85)
    quiet = decide([], timeline, media, None, side=side)
    assert quiet.verdict == "no-leak"
    assert quiet.confidence == pytest.approx(
        decide(
            [], timeline, media, None, side=dataclasses.replace(side, confidence="high")
        ).confidence
        - 0.05
    )


def test_lost_input_caps_no_leak_in_the_windows_it_concerns(
    tmp_path: Path, make_synthetic: SyntheticFactory
) -> None:
    """Unusable events that could hold evidence: never a high-confidence "no leak"."""
    from decoders.audit.verdict import DAMAGED_NO_LEAK_CAP, Unread

    media, timeline = synthetic(tmp_path, make_synthetic)
    telemetry = measure_telemetry([], timeline, source="events")
    whole = decide([], timeline, media, telemetry)
    assert (whole.verdict, whole.label) == ("no-leak", "high")
    lost = Unread("3 of 9 line(s) of events.jsonl could not be used")
    capped = decide([], timeline, media, telemetry, unread=lost)
    assert capped.verdict == "no-leak" and capped.confidence == DAMAGED_NO_LEAK_CAP
    assert capped.label == "medium" and capped.reason.endswith(lost.note)
    assert capped.windows[0].confidence == DAMAGED_NO_LEAK_CAP
    elsewhere = decide([], timeline, media, telemetry, unread=Unread("x", frozenset({7})))
    assert elsewhere.confidence == whole.confidence  # a window it does not concern
    leak = decide([finding("metadata", "high")], timeline, media, telemetry, unread=lost)
    assert leak.verdict == "metadata-leak" and leak.confidence == 0.85  # leaks are not capped
