"""Tests for decoders.session.events: the events.jsonl writer and reader, the mute timeline."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
from decoders.session.events import (
    KINDS,
    EventWriter,
    MuteChange,
    MuteTimeline,
    UnusableLine,
    encode_event,
    event_problem,
    make_event,
    read_events,
)

ROOT = Path(__file__).resolve().parent.parent.parent
T0 = 1_795_989_000.0
"""A plausible epoch time (December 2026): the reader refuses times before 1990 or after 2100."""


def test_make_event_puts_t_and_kind_first() -> None:
    event = make_event("mute", 1795989023.0365123456, state="muted", source="mark")
    assert list(event) == ["t", "kind", "state", "source"]
    assert event["t"] == 1795989023.036512
    with pytest.raises(ValueError, match="kind 'nope'"):
        make_event("nope", 0.0)
    assert set(KINDS) == {
        "session_start",
        "sdp",
        "mute",
        "telemetry",
        "blocked",
        "warning",
        "media",
    }


def test_encode_event_is_one_line_of_strict_json() -> None:
    event = make_event("warning", 1.0, message="line\nbreak", values=[math.nan, math.inf, 1.5])
    line = encode_event(event)
    assert "\n" not in line
    assert json.loads(line) == {
        "t": 1.0,
        "kind": "warning",
        "message": "line\nbreak",
        "values": [None, None, 1.5],
    }
    odd = encode_event(make_event("warning", 1.0, raw=b"\xffab", path=Path("/x"), pair=(1, 2)))
    assert json.loads(odd)["raw"] == "\ufffdab" and json.loads(odd)["path"] == "/x"
    assert "Zoë" in encode_event(make_event("warning", 1.0, message="Zoë"))


@pytest.mark.parametrize("buffering", [0, -1], ids=["unbuffered", "buffered"])
def test_writer_flushes_every_line(tmp_path: Path, buffering: int) -> None:
    path = tmp_path / "events.jsonl"
    with path.open("ab", buffering=buffering) as stream:
        writer = EventWriter(stream)
        writer.write(make_event("session_start", T0 + 1, version=1))
        assert path.read_bytes().count(b"\n") == 1  # on disk before the file is closed
        writer.write_all(
            [
                make_event("mute", T0 + 2, state="muted", source="mark"),
                make_event("warning", T0 + 3),
            ]
        )
        assert path.read_bytes().count(b"\n") == 3
        assert writer.written == 3
    with path.open("rb") as stream:
        assert [event["t"] for event in read_events(stream)] == [T0 + 1, T0 + 2, T0 + 3]


def test_reader_skips_blank_lines_and_a_cut_last_line() -> None:
    data = b'{"t":1795989001,"kind":"warning"}\n\n{"t":1795989002.5,"kind":"x"}\n{"t":3,"kind":"mu'
    assert [event["t"] for event in read_events(io.BytesIO(data))] == [1795989001, 1795989002.5]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'{"t":1795989001,"kind":"x"}\nnot json\n{"t":1795989002,"kind":"x"}\n',
            "line 2 is not JSON",
        ),
        (b"[1, 2]\n", "line 1 is not a JSON object"),
        (b'{"kind":"mute"}\n', "line 1 has no usable t: t None is not a number"),
        (b'{"t":true,"kind":"mute"}\n', "line 1 has no usable t: t True is not a number"),
        (b'{"t":1795989001}\n', "line 1 has no kind"),
    ],
)
def test_reader_names_the_broken_line(data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        list(read_events(io.BytesIO(data)))


WRITER = """
import sys, time
from decoders.session.events import EventWriter, make_event
with open(sys.argv[1], "ab", buffering=0) as stream:
    writer = EventWriter(stream)
    n = 0
    while True:
        writer.write(make_event("telemetry", time.time(), n=n, fields=[{"path": "x" * 200}]))
        n += 1
"""


def test_kill_9_loses_at_most_the_line_being_written(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env)
    try:
        deadline = time.monotonic() + 10
        while (not path.exists() or path.stat().st_size < 200_000) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    with path.open("rb") as stream:
        events = list(read_events(stream))
    assert len(events) > 500
    assert [event["n"] for event in events] == list(range(len(events)))
    lines = path.read_bytes().split(b"\n")
    assert len(events) in (len(lines) - 1, len(lines))  # at most the last one is cut


def test_timeline_latest_change_of_any_source_wins() -> None:
    timeline = MuteTimeline()
    assert timeline.muted is None and timeline.changed_at is None
    assert timeline.update(10.0, False, "app") == (True, True)
    assert timeline.update(12.0, True, "mark") == (True, True)
    assert timeline.update(13.0, False, "app") == (False, False)  # the app repeats itself
    assert timeline.muted is True and timeline.changed_at == 12.0
    assert timeline.update(14.0, True, "app") == (True, False)  # agrees: no merged change
    assert timeline.update(20.0, False, "mark") == (True, True)
    assert timeline.update(25.0, True, "rule") == (True, True)
    assert timeline.changes == (
        MuteChange(10.0, False, "app"),
        MuteChange(12.0, True, "mark"),
        MuteChange(20.0, False, "mark"),
        MuteChange(25.0, True, "rule"),
    )
    assert [timeline.state_at(t) for t in (5, 10, 11, 12, 19.9, 20, 30)] == [
        None,
        False,
        False,
        True,
        True,
        False,
        True,
    ]
    assert timeline.intervals() == [(12.0, 20.0), (25.0, math.inf)]
    assert timeline.intervals(end=40.0) == [(12.0, 20.0), (25.0, 40.0)]
    assert timeline.source_state("app") is True and timeline.source_state("mark") is False
    with pytest.raises(ValueError, match="source 'user'"):
        timeline.update(1.0, True, "user")


def test_timeline_change_told_late() -> None:
    timeline = MuteTimeline()
    timeline.update(10.0, True, "app")
    assert timeline.update(8.0, True, "mark") == (True, False)  # now muted from 8, not 10
    assert timeline.changes == (MuteChange(8.0, True, "mark"),)
    assert timeline.update(9.0, False, "rule") == (True, True)
    assert timeline.intervals(end=11) == [(8.0, 9.0)]
    assert timeline.muted is False


def test_timeline_history_is_bounded() -> None:
    timeline = MuteTimeline(max_changes=3)
    for step in range(10):
        timeline.update(float(step), step % 2 == 0, "mark")
    assert len(timeline.changes) == 3 and timeline.muted is False
    assert timeline.state_at(0.5) is None  # forgotten


def test_timeline_from_events_of_a_session() -> None:
    events = [
        make_event("session_start", 1.0),
        make_event("mute", 2.0, state="muted", source="mark", at=1.5),
        make_event("mute", 3.0, state="muted", source="app"),
        make_event("mute", 4.0, state="unmuted", source="mark", at=None),
        make_event("mute", 5.0, state="sleepy", source="mark"),
        make_event("telemetry", 6.0),
    ]
    timeline = MuteTimeline.from_events(events)
    assert timeline.intervals() == [(1.5, 4.0)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 100, allow_nan=False),
            st.booleans(),
            st.sampled_from(["mark", "app", "rule"]),
        ),
        max_size=30,
    )
)
def test_timeline_changes_alternate_and_are_sorted(
    updates: list[tuple[float, bool, str]],
) -> None:
    timeline = MuteTimeline()
    for t, muted, source in updates:
        timeline.update(t, muted, source)
    changes = timeline.changes
    assert [c.t for c in changes] == sorted(c.t for c in changes)
    assert all(a.muted != b.muted for a, b in itertools.pairwise(changes))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_reader_raises_only_malformed_packet(data: bytes) -> None:
    with contextlib.suppress(MalformedPacket):
        list(read_events(io.BytesIO(data)))


LAB_EVENTS = sorted((ROOT / "captures").glob("*/events.jsonl"))


@pytest.mark.parametrize("path", LAB_EVENTS, ids=[p.parent.name for p in LAB_EVENTS])
def test_lab_sessions_events_agree_with_their_timeline(path: Path) -> None:
    """Sessions the lab recorded through mitmproxy with the addon: real Chromium, real marks."""
    with path.open("rb") as stream:
        events = list(read_events(stream))
    assert events[0]["kind"] == "session_start" and events[0]["version"] == 1
    assert {event["kind"] for event in events} <= set(KINDS)
    assert [event["t"] for event in events] == sorted(event["t"] for event in events)
    timeline_file = path.parent / "timeline.json"
    assert timeline_file.is_file(), "every lab session has its ground-truth timeline"
    declared = json.loads(timeline_file.read_text())["muted"]
    recorded = MuteTimeline.from_events(events).intervals()
    assert len(recorded) == len(declared)
    for (start, end), (declared_start, declared_end) in zip(recorded, declared, strict=True):
        assert start == pytest.approx(declared_start, abs=0.05)
        assert end == pytest.approx(declared_end, abs=0.05)


# -- lines that cannot be used (issue 13) ---------------------------------------------------

GOOD = (
    b'{"t":1795990809.49,"kind":"telemetry","direction":"sent","endpoint":"http://h/t",'
    b'"fields":[{"path":"audioLevel","value":0.09}]}\n'
)


def collect(data: bytes) -> tuple[list[dict[str, object]], list[UnusableLine]]:
    unusable: list[UnusableLine] = []
    events = list(read_events(io.BytesIO(data), unusable))
    return events, unusable


@pytest.mark.parametrize(
    ("line", "reason", "kind", "t"),
    [
        (b'{"t":NaN,"kind":"telemetry","fields":[]}', "t nan is not a finite", "telemetry", None),
        (b'{"t":Infinity,"kind":"mute"}', "t inf is not a finite", "mute", None),
        (b'{"t":-Infinity,"kind":"telemetry"}', "t -inf is not a finite", "telemetry", None),
        (b'{"t":1e308,"kind":"telemetry"}', "is not a plausible time", "telemetry", None),
        (b'{"t":-3,"kind":"telemetry"}', "is not a plausible time", "telemetry", None),
        (b'{"t":1' + b"0" * 400 + b',"kind":"sdp"}', "not a time (too large)", "sdp", None),
        (b'{"t":"1795990809","kind":"mute"}', "is not a number of seconds", "mute", None),
        (
            b'{"t":1795990809.5,"kind":"telemetry","fields":[{"path":"level","value":"0.3"}]}',
            "field 0 has a value '0.3', not a number",
            "telemetry",
            1795990809.5,
        ),
        (
            b'{"t":1795990809.5,"kind":"telemetry","fields":[{"path":"level","value":1'
            + b"0" * 400
            + b"}]}",
            "field 0 has a value too large",
            "telemetry",
            1795990809.5,
        ),
        (
            b'{"t":1795990809.5,"kind":"telemetry","fields":[{"path":"level","value":NaN}]}',
            "not a finite number",
            "telemetry",
            1795990809.5,
        ),
        (
            b'{"t":1795990809.5,"kind":"telemetry","fields":{"a":1}}',
            "no list of fields",
            "telemetry",
            1795990809.5,
        ),
        (
            b'{"t":1795990809.5,"kind":"telemetry","fields":[3]}',
            "field 0 is not an object",
            "telemetry",
            1795990809.5,
        ),
        (
            b'{"t":1795990809.5,"kind":"telemetry","fields":[],"direction":5}',
            "direction that is not text",
            "telemetry",
            1795990809.5,
        ),
        (
            b'{"t":1795990809.5,"kind":"telemetry","fields":[],"flow":[1]}',
            "flow that is not an object",
            "telemetry",
            1795990809.5,
        ),
        (
            b'{"t":1795990809.5,"kind":"mute","state":"sleepy","source":"mark"}',
            "state 'sleepy'",
            "mute",
            1795990809.5,
        ),
        (
            b'{"t":1795990809.5,"kind":"mute","state":"muted","source":"cat"}',
            "source 'cat'",
            "mute",
            1795990809.5,
        ),
        (
            b'{"t":1795990809.5,"kind":"mute","state":"muted","source":"mark","at":NaN}',
            "no usable at",
            "mute",
            1795990809.5,
        ),
        (b'{"t":1795990809.5,"kind":3}', "has no kind", None, 1795990809.5),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deep", None, None),
        (
            b'{"t":1795990809.5,"kind":"telemetry","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "nested too deep",
            "telemetry",
            1795990809.5,
        ),
        (
            b'{"t":1795990809.5,"kind":"telemetry","fields":[{"pa',
            "is not JSON",
            "telemetry",
            1795990809.5,
        ),
    ],
)
def test_unusable_lines_are_counted_with_what_can_still_be_read(
    line: bytes, reason: str, kind: str | None, t: float | None
) -> None:
    """Each class of damage: skipped and reported (line, reason, kind, t), never converted;
    the strict reader names the same line."""
    events, unusable = collect(GOOD + line + b"\n" + GOOD)
    assert len(events) == 2
    (lost,) = unusable
    assert lost.line == 2 and reason in lost.reason, lost.reason
    assert (lost.kind, lost.t) == (kind, t)
    assert lost.may_hide_evidence
    with pytest.raises(MalformedPacket, match=r"events\.jsonl line 2 "):
        list(read_events(io.BytesIO(GOOD + line + b"\n" + GOOD)))


def test_a_cut_last_line_is_counted_when_collecting() -> None:
    events, unusable = collect(GOOD + GOOD[:60])
    assert len(events) == 1
    (cut,) = unusable
    assert cut.line == 2 and cut.reason.startswith("is cut short")
    assert (cut.kind, cut.t) == ("telemetry", 1795990809.49)
    assert [e["t"] for e in read_events(io.BytesIO(GOOD + GOOD[:60]))] == [1795990809.49]


def test_harmless_kinds_hide_no_evidence() -> None:
    _, unusable = collect(
        b'{"t":1795990809.5,"kind":"session_start","x":NaN}\n{"t":NaN,"kind":"warning"}\n'
    )
    assert len(unusable) == 1 and not unusable[0].may_hide_evidence  # session_start is usable
    assert unusable[0].to_json() == {
        "line": 2,
        "reason": "has no usable t: t nan is not a finite number of seconds",
        "kind": "warning",
        "t": None,
    }


def test_null_values_are_the_documented_non_finite_numbers() -> None:
    event = make_event("telemetry", 1795990809.5, fields=[{"path": "level", "value": math.nan}])
    decoded = json.loads(encode_event(event))
    assert decoded["fields"][0]["value"] is None and event_problem(decoded) is None


HOSTILE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["t", "kind", "state", "source", "at", "fields", "direction", "flow"]),
            HOSTILE,
        ),
        max_size=3,
    ),
    st.sampled_from(["mute", "telemetry", "sdp", "session_start"]),
    st.integers(min_value=0, max_value=40),
)
def test_any_events_line_is_used_whole_or_counted(
    changes: list[tuple[str, object]], kind: str, cut: int
) -> None:
    """Hypothesis over events lines: a lab-shaped event with hostile values put in its fields
    (and sometimes cut short) is either usable (it passes event_problem: its t is a plausible
    epoch time) or counted as unusable; nothing else escapes, nothing is lost uncounted."""
    event: dict[str, object] = {
        "t": 1795990809.5,
        "kind": kind,
        "state": "muted",
        "source": "mark",
        "fields": [{"path": "audioLevel", "value": 0.1}],
    }
    for name, value in changes:
        event[name] = value if name != "fields" else [{"path": "audioLevel", "value": value}]
    try:
        line = json.dumps(event).encode()
    except ValueError:  # an integer too long to write
        return
    if cut:
        line = line[: max(1, len(line) - cut)]
    data = GOOD + line + b"\n"
    events, unusable = collect(data)
    assert len(events) + len(unusable) == 2
    for usable in events:
        assert event_problem(usable) is None
        assert 631_152_000 <= float(usable["t"]) <= 4_102_444_800
