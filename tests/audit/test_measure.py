"""Tests for decoders.audit.measure: histogram statistics, phases, and a per-packet reference."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.audit.measure import (
    SILENCE_LEVEL,
    LocalSide,
    MediaMeasurement,
    SeriesSource,
    StreamInfo,
    byte_entropy,
    distribution,
    measure_media,
    measure_telemetry,
)
from decoders.audit.messages import TelemetryMessage
from decoders.media.scan import StreamScan, scan_streams
from decoders.session.timeline import TRANSITION, UNMUTED, MuteInterval, Timeline, build_timeline

BROWSER = LocalSide(frozenset({"10.77.0.1"}), how="test")
SyntheticFactory = Callable[..., tuple[bytes, Any]]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=200))
def test_distribution_matches_numpy(values: list[int]) -> None:
    array = np.array(values, np.int64)
    d = distribution(array)
    assert d is not None
    q1, median, q3 = np.percentile(array, [25, 50, 75])
    assert (d.q1, d.median, d.q3) == pytest.approx((q1, median, q3))
    assert (d.minimum, d.maximum, d.count) == (min(values), max(values), len(values))
    assert d.distinct == len(set(values))
    mode = max(set(values), key=lambda v: (values.count(v), -v))
    assert d.mode == mode and d.mode_share == values.count(mode) / len(values)
    shares = [values.count(v) / len(values) for v in set(values)]
    assert d.entropy_bits == pytest.approx(-sum(p * np.log2(p) for p in shares), abs=1e-9)


def test_distribution_entropy_examples() -> None:
    assert distribution(np.zeros(0, np.int64)) is None
    constant = distribution(np.full(50, 32, np.int64))
    assert constant is not None and constant.entropy_bits == 0.0 and constant.iqr == 0.0
    uniform = distribution(np.repeat(np.arange(8), 10))
    assert uniform is not None and uniform.entropy_bits == pytest.approx(3.0)
    assert uniform.to_json()["distinct"] == 8


def test_byte_entropy() -> None:
    assert byte_entropy([]) is None
    same = byte_entropy([b"\x01\x02\x03\x04"] * 10)
    assert same is not None and same.distinct_payloads == 1 and same.bits_per_byte == 2.0
    rng = np.random.default_rng(0)
    noisy = byte_entropy([rng.bytes(200) for _ in range(50)])
    assert noisy is not None and noisy.distinct_payloads == 50 and noisy.bits_per_byte > 7.9
    empty = byte_entropy([b"", b""])
    assert empty is not None and empty.bits_per_byte == 0.0


def test_local_side() -> None:
    assert LocalSide().sends("10.0.0.1", 5, 7) is None
    assert BROWSER.sends("10.77.0.1", 5, 7) is True
    assert BROWSER.sends("10.77.0.2", 5, 7) is False
    by_port = LocalSide(endpoints=frozenset({("10.0.0.1", 5)}))
    assert by_port.sends("10.0.0.1", 5, 1) and not by_port.sends("10.0.0.1", 6, 1)
    assert LocalSide(ssrcs=frozenset({7})).sends("x", 1, 7)
    assert BROWSER.to_json()["addresses"] == ["10.77.0.1"]


def synthetic_scan(
    tmp_path: Path, make_synthetic: SyntheticFactory, packets: int = 6000
) -> tuple[StreamScan, Timeline, list[npt.NDArray[np.int64]]]:
    data, truth = make_synthetic(packets=packets)
    path = tmp_path / "synthetic.pcap"
    path.write_bytes(data)
    scan = scan_streams(path)
    rows = scan.rows
    groups = scan.groups
    start, end = truth.muted_ns
    span = (int(rows["timestamp_ns"].min()) / 1e9, int(rows["timestamp_ns"].max()) / 1e9)
    timeline = build_timeline(
        [MuteInterval(start / 1e9, end / 1e9, "cli", "truth")], capture_span=span
    )
    return scan, timeline, groups


def measured(
    tmp_path: Path, make_synthetic: SyntheticFactory, local: LocalSide = BROWSER
) -> MediaMeasurement:
    scan, timeline, groups = synthetic_scan(tmp_path, make_synthetic)
    return measure_media(
        scan.rows,
        scan.streams,
        groups,
        timeline,
        local=local,
        auth_tag_length=scan.head.srtp_auth_tag_length,
    )


def test_synthetic_muted_audio(tmp_path: Path, make_synthetic: SyntheticFactory) -> None:
    media = measured(tmp_path, make_synthetic)
    browser = next(s for s in media.streams if s.ssrc == 0x1A2B3C4D)
    remote = next(s for s in media.streams if s.ssrc == 0x5E6F7081)
    video = next(s for s in media.streams if s.media == "video")
    assert browser.local is True and browser.judged
    assert remote.local is False and not remote.judged
    assert video.local is True and not video.judged
    assert browser.frame_ms == pytest.approx(20.0, abs=1.0)
    muted = media.phase(browser.index, "muted")
    assert muted.levels is not None and muted.levels.loud_packets == 0
    assert muted.levels.median == 127
    assert muted.sizes is not None and muted.sizes.distinct == 1 and muted.sizes.mode == 3
    assert muted.packets_per_second == pytest.approx(50, rel=0.05)
    assert muted.timing is not None and not muted.timing.dtx
    assert muted.timing.rate_ratio == pytest.approx(1.0, abs=0.06)
    unmuted = media.phase(browser.index, "unmuted")
    assert unmuted.levels is not None and unmuted.levels.loud_share == 1.0
    assert unmuted.sizes is not None and unmuted.sizes.entropy_bits > 4
    # one window: the window's stats are the muted phase's
    assert media.phase(browser.index, "muted", 0).packets == muted.packets
    # RTCP sender reports: about one a second in every phase
    assert unmuted.sender_reports_per_second == pytest.approx(1.0, abs=0.3)
    assert muted.to_json()["payload_bytes"]["mode"] == 3


def test_phases_agree_with_a_per_packet_loop(
    tmp_path: Path, make_synthetic: SyntheticFactory
) -> None:
    scan, timeline, groups = synthetic_scan(tmp_path, make_synthetic, packets=3000)
    media = measure_media(
        scan.rows,
        scan.streams,
        groups,
        timeline,
        local=BROWSER,
        auth_tag_length=scan.head.srtp_auth_tag_length,
    )
    rows = scan.rows
    for info, group in zip(media.streams, groups, strict=True):
        by_phase: dict[str, list[int]] = {"unmuted": [], "transition": [], "muted": []}
        for i in group.tolist():
            label = timeline.segment_at(int(rows["timestamp_ns"][i]) / 1e9)
            phase = (
                "unmuted" if label == UNMUTED else "transition" if label == TRANSITION else "muted"
            )
            by_phase[phase].append(i)
        for phase, members in by_phase.items():
            stats = media.phase(info.index, phase)
            assert stats.packets == len(members)
            assert stats.bytes == sum(int(rows["length"][i]) for i in members)
            levels = [int(rows["audio_level"][i]) for i in members if rows["audio_level"][i] >= 0]
            if levels:
                assert stats.levels is not None
                assert stats.levels.median == statistics.median(levels)
                assert stats.levels.loud_packets == sum(lv < SILENCE_LEVEL for lv in levels)
            else:
                assert stats.levels is None
            if members:
                assert stats.first_frame == int(rows["frame"][members[0]])


def test_extras_give_decoded_loudness_and_byte_entropy(
    tmp_path: Path, make_synthetic: SyntheticFactory
) -> None:
    scan, timeline, groups = synthetic_scan(tmp_path, make_synthetic, packets=3000)
    browser = next(i for i, s in enumerate(scan.streams) if s.ssrc == 0x1A2B3C4D)
    ts = scan.rows["timestamp_ns"][groups[browser]]
    labels = timeline.segments(ts)
    dbfs = np.where(labels >= 0, -112.0, -25.0)
    payloads = [
        b"\x00" * 3 if label >= 0 else bytes([i % 256]) * 40
        for i, label in enumerate(labels.tolist())
    ]
    extras = {0x1A2B3C4D: SeriesSource(ts, dbfs, payloads)}
    media = measure_media(scan.rows, scan.streams, groups, timeline, local=BROWSER, extras=extras)
    muted = media.phase(browser, "muted")
    assert muted.decoded is not None and muted.decoded.loud_packets == 0
    assert muted.decoded.median_dbfs == -112.0
    assert muted.byte_entropy is not None and muted.byte_entropy.distinct_payloads == 1
    unmuted = media.phase(browser, "unmuted")
    assert unmuted.decoded is not None and unmuted.decoded.loud_share == 1.0
    assert unmuted.to_json()["decoded"]["median_dbfs"] == -25.0


def test_several_windows_are_measured_apart(
    tmp_path: Path, make_synthetic: SyntheticFactory
) -> None:
    scan, _, groups = synthetic_scan(tmp_path, make_synthetic, packets=3000)
    rows = scan.rows
    first = int(rows["timestamp_ns"].min()) / 1e9
    span = (first, int(rows["timestamp_ns"].max()) / 1e9)
    timeline = build_timeline(
        [MuteInterval(1.0, 2.0, "cli", "a"), MuteInterval(5.0, 7.0, "cli", "b")],
        capture_span=span,
    )
    media = measure_media(rows, scan.streams, groups, timeline, local=BROWSER)
    for info in media.streams:
        total = media.phase(info.index, "muted").packets
        parts = [media.phase(info.index, "muted", w).packets for w in (0, 1)]
        assert total == sum(parts)
        assert media.window_rows(info.index, 1).size == parts[1]
    assert media.seconds[0] == pytest.approx(0.6) and media.seconds[1] == pytest.approx(1.6)


def test_measure_telemetry_labels_with_the_clock_offset() -> None:
    t0 = 1_795_989_000.0
    timeline = build_timeline(
        [MuteInterval(t0 + 4, t0 + 10, "lab", "x")], capture_span=None, clock_offset=1.0
    )
    messages = [
        TelemetryMessage(t0 + 2, "https://a/x", (("audioLevel", 0.1),)),
        TelemetryMessage(t0 + 5, "https://a/x", (("audioLevel", 0.2),)),
        TelemetryMessage(t0 + 6, "https://b/y", (("audioLevel", 0.2), ("vad", True))),
        TelemetryMessage(t0 + 9.9, "https://a/x", (("audioLevel", 0.4),)),  # +1 s: transition
    ]
    measurement = measure_telemetry(messages, timeline, source="events")
    assert measurement.labels == [UNMUTED, 0, 0, TRANSITION]
    muted = measurement.phases[("muted", None)]
    assert muted.messages == 2 and muted.endpoints == ("https://a/x", "https://b/y")
    assert muted.fields["audioLevel"] == (2, 0.2, 0.2, 1)
    assert measurement.phases[("muted", 0)].messages == 2
    assert [m.t for m in measurement.in_window(0)] == [t0 + 5, t0 + 6]
    assert measurement.phases[("unmuted", None)].to_json()["messages"] == 1


@pytest.mark.parametrize(
    ("media", "role", "local", "judged"),
    [
        ("audio", "media", None, True),
        ("audio", "red", True, True),  # RFC 2198 audio redundancy still carries the audio
        ("audio", "unknown", None, True),
        ("video", "media", True, False),
        ("video", "rtx", True, False),
        ("audio", "rtx", None, False),  # RTX of audio repeats packets, it adds nothing new
        ("video", "fec", True, False),
        ("audio", "media", False, False),  # the other side's
    ],
)
def test_only_streams_that_can_carry_the_microphone_are_judged(
    media: str, role: str, local: bool | None, judged: bool
) -> None:
    info = StreamInfo(
        index=0, src="a", src_port=1, dst="b", dst_port=2, ssrc=7, media=media, codec=None,
        clock_rate=None, packets=1, first_ns=0, last_ns=0, first_frame=1, local=local,
        frame_ms=None, role=role,
    )  # fmt: skip
    assert info.judged is judged
    assert info.to_json()["role"] == role and info.to_json()["legs"] == 1
