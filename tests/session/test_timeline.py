"""Tests for decoders.session.timeline: every source, alignment, merging, grace, labels."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.session.events import make_event
from decoders.session.timeline import (
    GRACE_DEFAULT,
    TRANSITION,
    UNMUTED,
    MuteInterval,
    build_timeline,
    intervals_from_events,
    parse_muted_arg,
    parse_timeline_text,
    scoped_mutes,
)

T0 = 1_795_989_000.0
SPAN = (T0, T0 + 20.0)
CAPTURES = Path(__file__).resolve().parent.parent.parent / "captures"


def ns(t: float) -> int:
    return round(t * 1e9)


def test_muted_arg_relative_and_epoch() -> None:
    assert parse_muted_arg("12.5-18") == MuteInterval(12.5, 18.0, "cli", "--muted 12.5-18")
    epoch = parse_muted_arg("1795989006.518-1795989012.5192")
    assert (epoch.start, epoch.end) == (1795989006.518, 1795989012.5192)
    assert parse_muted_arg(" 3 - ").end is None  # muted until the end


@pytest.mark.parametrize("text", ["", "5", "a-b", "10-5", "5-5", "-3-4", "1e3-2e3"])
def test_muted_arg_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--muted"):
        parse_muted_arg(text)


def test_relative_times_count_from_the_first_packet() -> None:
    timeline = build_timeline([parse_muted_arg("4-10")], capture_span=SPAN)
    (window,) = timeline.windows
    assert (window.start, window.end) == (T0 + 4, T0 + 10)
    assert window.sources == ("cli",)
    assert timeline.primary == ("cli",)


def test_relative_time_needs_a_capture() -> None:
    with pytest.raises(ValueError, match="no captured packet"):
        build_timeline([parse_muted_arg("4-10")], capture_span=None)


def test_clock_offset_moves_epoch_times_only() -> None:
    intervals = [MuteInterval(T0 + 4, T0 + 10, "lab", "t"), parse_muted_arg("12-14")]
    timeline = build_timeline(intervals, capture_span=SPAN, clock_offset=0.5)
    assert [(w.start, w.end) for w in timeline.windows] == [
        (T0 + 4.5, T0 + 10.5),
        (T0 + 12, T0 + 14),
    ]
    assert timeline.clock_offset == 0.5


def test_open_interval_ends_with_the_capture() -> None:
    timeline = build_timeline([parse_muted_arg("15-")], capture_span=SPAN)
    assert timeline.windows[0].end == SPAN[1]


def test_lab_timeline_json() -> None:
    text = json.dumps(
        {"version": 1, "source": "lab", "clock": "epoch", "muted": [[T0 + 4, T0 + 10]]}
    )
    (interval,) = parse_timeline_text(text, "timeline.json")
    assert interval == MuteInterval(T0 + 4, T0 + 10, "lab", "timeline.json")


def test_user_timeline_json_and_csv() -> None:
    (a, b) = parse_timeline_text('{"muted": [[1, 2], [5, null]]}', "mine.json")
    assert (a.source, a.start, a.end, b.end) == ("user", 1.0, 2.0, None)
    csv_text = "# my marks\nstart,end\n1,2\n\n5.5, 7\n"
    rows = parse_timeline_text(csv_text, "mine.csv")
    assert [(r.start, r.end, r.source) for r in rows] == [(1.0, 2.0, "user"), (5.5, 7.0, "user")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"muted": 3}', 'no "muted"'),
        ('{"muted": [[1]]}', "pair"),
        ('{"muted": [[2, 1]]}', "ends before"),
        ('{"muted": [["a", 1]]}', "not a number"),
        ('{"muted": [[1, 2]], "clock": "tz"}', "clock"),
        ("1,2\nx,3\n", "not seconds"),
        ("1\n", "expected start,end"),
        ("3,1\n", "ends before"),
    ],
)
def test_timeline_text_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_timeline_text(text, "t")


def test_events_give_per_source_and_merged_intervals() -> None:
    events = [
        make_event("mute", T0 + 1, state="muted", source="mark", at=T0 + 1.0),
        make_event("mute", T0 + 1.2, state="muted", source="app"),
        make_event("mute", T0 + 7, state="unmuted", source="mark", at=T0 + 7.0),
        make_event("mute", T0 + 7.3, state="unmuted", source="app"),
        make_event("telemetry", T0 + 3, fields=[]),
    ]
    intervals = intervals_from_events(events)
    by_source = {(i.source, i.start, i.end) for i in intervals}
    assert ("events", T0 + 1, T0 + 7) in by_source  # the addon's merged view
    assert ("mark", T0 + 1, T0 + 7) in by_source
    assert ("app", T0 + 1.2, T0 + 7.3) in by_source
    timeline = build_timeline(intervals, capture_span=SPAN)
    assert timeline.primary == ("events",)
    assert [(w.start, w.end) for w in timeline.windows] == [(T0 + 1, T0 + 7)]


def test_declared_sources_win_over_events_and_unite() -> None:
    intervals = [
        MuteInterval(T0 + 4, T0 + 10, "lab", "timeline.json"),
        MuteInterval(T0 + 9, T0 + 12, "cli", "--muted"),
        MuteInterval(T0 + 1, T0 + 2, "events", "mark"),
    ]
    timeline = build_timeline(intervals, capture_span=SPAN)
    assert timeline.primary == ("lab", "cli")
    (window,) = timeline.windows
    assert (window.start, window.end, window.sources) == (T0 + 4, T0 + 12, ("cli", "lab"))
    assert len(timeline.intervals) == 3  # every source stays visible


def test_segments_and_grace() -> None:
    timeline = build_timeline([MuteInterval(T0 + 4, T0 + 10, "lab", "t")], capture_span=SPAN)
    assert timeline.grace == GRACE_DEFAULT
    times = [T0 + 1, T0 + 3.75, T0 + 4.1, T0 + 4.25, T0 + 9.7, T0 + 9.9, T0 + 10.1, T0 + 11]
    labels = timeline.segments(np.array([ns(t) for t in times], np.int64)).tolist()
    assert labels == [UNMUTED, UNMUTED, TRANSITION, 0, 0, TRANSITION, TRANSITION, UNMUTED]
    assert [timeline.segment_at(t) for t in times] == labels


def test_seconds_per_label() -> None:
    timeline = build_timeline(
        [MuteInterval(T0 + 4, T0 + 10, "lab", "t"), MuteInterval(T0 + 12, T0 + 13, "lab", "t")],
        capture_span=SPAN,
        grace=0.25,
    )
    seconds = timeline.seconds(SPAN)
    assert seconds[0] == pytest.approx(5.5)
    assert seconds[1] == pytest.approx(0.5)
    assert seconds[TRANSITION] == pytest.approx(2.0)
    assert seconds[UNMUTED] == pytest.approx(12.0)
    assert sum(seconds.values()) == pytest.approx(20.0)


def test_window_shorter_than_grace_is_all_transition() -> None:
    timeline = build_timeline([MuteInterval(T0 + 4, T0 + 4.3, "lab", "t")], capture_span=SPAN)
    assert timeline.windows[0].judged(timeline.grace) is None
    labels = timeline.segments(np.array([ns(T0 + 4.15)], np.int64))
    assert labels.tolist() == [TRANSITION]


def test_warnings_outside_capture_and_time_zone_hint() -> None:
    shifted = [MuteInterval(T0 + 4 - 3600, T0 + 10 - 3600, "lab", "t")]
    timeline = build_timeline(shifted, capture_span=SPAN)
    assert any("outside the capture" in w for w in timeline.warnings)
    assert any("--clock-offset 3600" in w for w in timeline.warnings)
    partly = build_timeline([MuteInterval(T0 - 2, T0 + 3, "lab", "t")], capture_span=SPAN)
    assert any("partly inside" in w for w in partly.warnings)
    fixed = build_timeline(shifted, capture_span=SPAN, clock_offset=3600)
    assert fixed.warnings == ()


def test_empty_and_invalid_grace() -> None:
    assert build_timeline([], capture_span=SPAN).empty
    with pytest.raises(ValueError, match="grace"):
        build_timeline([], capture_span=SPAN, grace=-1)
    with pytest.raises(ValueError, match="grace"):
        build_timeline([], capture_span=SPAN, grace=math.nan)


def test_every_lab_timeline_parses(session_dir: Path) -> None:
    path = session_dir / "timeline.json"
    intervals = parse_timeline_text(path.read_text(), path.name)
    assert intervals and all(i.source == "lab" for i in intervals)
    assert all(i.end is not None and i.end > i.start for i in intervals)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 19, allow_nan=False), st.floats(0.01, 5, allow_nan=False)),
        max_size=6,
    ),
    st.floats(0, 1, allow_nan=False),
    st.lists(st.floats(-2, 22, allow_nan=False), min_size=1, max_size=40),
)
def test_vectorised_labels_agree_with_scalar(
    spans: list[tuple[float, float]], grace: float, times: list[float]
) -> None:
    intervals = [MuteInterval(T0 + s, T0 + s + d, "cli", "x") for s, d in spans]
    timeline = build_timeline(intervals, capture_span=SPAN, grace=grace)
    # windows are disjoint and ordered
    for a, b in zip(timeline.windows, timeline.windows[1:], strict=False):
        assert a.end < b.start
    stamps = np.array([ns(T0 + t) for t in times], np.int64)
    labels = timeline.segments(stamps).tolist()
    for t, stamp, label in zip(times, stamps.tolist(), labels, strict=True):
        exact = timeline.segment_at(stamp / 1e9)
        if all(
            abs(stamp / 1e9 - e) > 1e-6
            for w in timeline.windows
            for e in (w.start - grace, w.start + grace, w.end - grace, w.end + grace)
        ):
            assert label == exact, (t, label, exact)
    total = timeline.seconds(SPAN)
    assert sum(total.values()) == pytest.approx(20.0)


def test_lab_corpus_file_shape() -> None:
    found = sorted(CAPTURES.glob("chromium-*/timeline.json"))
    assert found, "the lab corpus has timelines"


def test_scoped_mutes_per_rule_from_server_side_rule_signals() -> None:
    def rule(t: float, state: str, name: str, scope: str | None = "server") -> dict[str, object]:
        evidence: dict[str, object] = {"rule": name, "value": state == "muted", "path": "body.x"}
        if scope:
            evidence["scope"] = scope
        return make_event(
            "mute",
            t,
            state=state,
            source="rule",
            evidence=evidence,
            flow={"id": "f", "message": 3},
            endpoint="wss://j/",
        )

    events = [
        rule(T0 + 1, "muted", "a"),
        rule(T0 + 2, "muted", "b", scope=None),  # a rule that does not say: not server-side
        rule(T0 + 3, "unmuted", "a"),
        make_event("mute", T0 + 4, state="muted", source="app", evidence={"path": "muted"}),
        rule(T0 + 5, "muted", "a"),
    ]
    mutes = scoped_mutes(events)
    assert [(m.start, m.end, m.rule) for m in mutes] == [(T0 + 1, T0 + 3, "a"), (T0 + 5, None, "a")]
    assert (mutes[0].path, mutes[0].value, mutes[0].flow, mutes[0].endpoint) == (
        "body.x",
        True,
        "f#3",
        "wss://j/",
    )
    assert scoped_mutes(events, "client") == []


# -- times that are no times (issue 13) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"muted": [[1795990791.17, 9999999999]]}', "muted[0][1] 9999999999 is after 2100"),
        ('{"muted": [[NaN, 5]]}', "muted[0][0] nan is not a finite number"),
        ('{"muted": [[1, Infinity]]}', "muted[0][1] inf is not a finite number"),
        ('{"muted": [[-Infinity, 5]]}', "is not a finite number"),
        ('{"muted": [[1e308, null]]}', "is after 2100"),
        ('{"muted": [[-1, 5]]}', "is negative"),
        ('{"muted": [["4", 5]]}', "is not a number of seconds"),
        ('{"muted": [[true, 5]]}', "is not a number of seconds"),
        ('{"muted": [[1, ' + "9" * 400 + "]]}", "not a time (too large)"),
        ("4,9999999999\n", "line 1: end 9999999999.0 is after 2100"),
        ("nan,5\n", "line 1: start nan is not a finite number"),
        ("1,inf\n", "line 1: end inf is not a finite number"),
        ("start,end\n-2,5\n", "line 2: start -2.0 is negative"),
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),
        ('{"muted": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deep"),
    ],
)
def test_timeline_times_that_are_no_times_are_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_timeline_text(text, "timeline.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1795990791.1733-9999999999", "end 9999999999.0 is after 2100"),
        ("4-" + "9" * 400, "end inf is not a finite number"),
        ("9" * 400 + "-", "start inf is not a finite number"),
    ],
)
def test_muted_arg_times_that_are_no_times(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_muted_arg(text)


@pytest.mark.parametrize("offset", [math.nan, math.inf, -math.inf, 1e300])
def test_clock_offset_must_be_a_clock_offset(offset: float) -> None:
    with pytest.raises(ValueError, match="--clock-offset"):
        build_timeline([parse_muted_arg("4-10")], capture_span=SPAN, clock_offset=offset)


def test_window_edges_past_int64_nanoseconds_clamp_instead_of_wrapping() -> None:
    """A window ending after 2262 (built by hand: the parsers refuse it) still covers every
    packet after its start; before the clamp its end wrapped to a negative nanosecond count
    and the packets counted as unmuted."""
    far = MuteInterval(T0 + 4, 1e10, "user", "by hand")
    timeline = build_timeline([far], capture_span=SPAN, grace=0.0)
    stamps = np.array([ns(T0 + 1), ns(T0 + 5), ns(T0 + 19)], np.int64)
    assert timeline.segments(stamps).tolist() == [UNMUTED, 0, 0]
    assert timeline.pieces(stamps).tolist() == [0, 1, 1]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True),
                st.integers(min_value=-(10**30), max_value=10**30),
                st.sampled_from(["x", True, None, [], {}]),
            ),
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True),
                st.integers(min_value=-(10**30), max_value=10**30),
                st.sampled_from(["x", True, None, [], {}]),
            ),
        ),
        max_size=4,
    ),
    st.sampled_from(["json", "csv"]),
)
def test_any_timeline_parses_into_int64_safe_windows_or_raises_value_error(
    pairs: list[tuple[object, object]], form: str
) -> None:
    """Hypothesis over timeline files: every interval that is accepted lies within 0..2100
    (so its nanoseconds fit int64), and anything else is a ValueError, never another error."""
    if form == "json":
        text = json.dumps({"muted": [list(p) for p in pairs]})
    else:
        text = "".join(f"{a},{'' if b is None else b}\n" for a, b in pairs)
    try:
        intervals = parse_timeline_text(text, "timeline")
    except ValueError:
        return
    for interval in intervals:
        for t in (interval.start, interval.end):
            assert t is None or (math.isfinite(t) and 0 <= t <= 4_102_444_800.0)
    if intervals:
        timeline = build_timeline(intervals, capture_span=SPAN)
        stamps = np.array([ns(SPAN[0]), ns(SPAN[1])], np.int64)
        assert timeline.segments(stamps).shape == (2,)
