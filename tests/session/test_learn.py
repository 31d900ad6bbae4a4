"""Tests for decoders/session/learn.py: the lab's own recorded calls (captures/chromium-*),
synthetic Janus-like sessions (tests/helpers/janus_like.py) and the rule file run through the
real addon in mitmdump."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.corpus import (
    CAPTURES,
    JANUS_SENDS_MUTE,
    JANUS_TRACK_MUTE,
    base_sessions,
    call_sessions,
    janus_session,
    lab_session,
)
from helpers.janus_like import T0, write_session
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.audit.messages import read_flow_items
from decoders.session.events import read_events
from decoders.session.learn import (
    FOLLOWS_SCORE,
    Learned,
    describe,
    endpoint_pattern,
    learn,
    mark_changes,
    replay_rules,
    rules_for_candidates,
    state_token,
)
from decoders.session.monitor import FlowRef, Message
from decoders.session.signaling import load_rules

ROOT = Path(__file__).resolve().parent.parent.parent
ADDON = ROOT / "addons" / "mutecheck.py"
REAL_FIELD = {
    "audiobridge": ("body.muted", (True,), (False,)),
    "echotest": ("body.audio", (False,), (True,)),
    "videocall": ("body.audio", (False,), (True,)),
}


def session_messages(folder: Path) -> tuple[list[tuple[float, Message]], list[tuple[float, bool]]]:
    """The messages of flows.mitm and the marks of events.jsonl."""
    with (folder / "flows.mitm").open("rb") as fo:
        items = read_flow_items(fo)
    messages = [(t, item) for t, item in items if isinstance(item, Message)]
    marks: list[tuple[float, bool]] = []
    with (folder / "events.jsonl").open("rb") as fo:
        for event in read_events(fo):
            if event["kind"] == "mute" and event.get("source") == "mark":
                marks.append((float(event.get("at") or event["t"]), event["state"] == "muted"))
    return messages, marks


def learned_from(folder: Path, **options: Any) -> Learned:
    messages, marks = session_messages(folder)
    return learn(messages, marks, **options)


# --- the lab's own variants --------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["telemetry-http", "telemetry-ws"])
def test_the_lab_telemetry_pages_muted_field_is_the_top_candidate(variant: str) -> None:
    folder = lab_session(variant, needs="flows.mitm")
    learned = learned_from(folder)
    best = learned.candidates[0]
    assert (best.path, best.kind, best.channel.direction) == ("muted", "value", "sent")
    assert best.channel.transport == ("http" if variant == "telemetry-http" else "websocket")
    assert best.channel.endpoint.endswith("/telemetry" if variant == "telemetry-http" else "/ws")
    assert best.muted_values == (True,) and best.unmuted_values == (False,)
    assert best.follows and best.score > 0.95 and best.matched == 2
    # the page sends one message every 500 ms: the field changes right after each mark
    changes = [c for c in best.changes[1:]]
    assert [c.muted for c in changes] == [True, False]
    for change, (t, _) in zip(changes, learned.mark_changes, strict=True):
        assert 0 <= change.t - t < 0.6
    assert learned.following == (best,)


def test_the_lab_pages_without_a_mute_field_have_no_candidate_above_the_line() -> None:
    # every other variant's page sends /log, /offer, /timeline, /done and no mute state
    quiet = [p for p in call_sessions() if "telemetry" not in p.name]
    assert len(quiet) >= 10 and set(base_sessions()) - set(quiet) <= {
        CAPTURES / "chromium-telemetry-http",
        CAPTURES / "chromium-telemetry-ws",
    }
    for folder in quiet:
        learned = learned_from(folder)
        assert learned.mark_changes and learned.messages > 5, folder
        assert not learned.following, folder
        assert all(c.score < FOLLOWS_SCORE for c in learned.candidates), folder
        assert "no field follows the marks" in describe(learned, session=folder.name)


# --- synthetic Janus-like sessions -------------------------------------------------------------


@pytest.mark.parametrize("transport", ["ws", "rest"])
@pytest.mark.parametrize("demo", ["audiobridge", "echotest", "videocall"])
def test_the_janus_demos_mute_request_is_the_top_candidate(
    tmp_path: Path, demo: str, transport: str
) -> None:
    folder = write_session(tmp_path / demo, demo, transport=transport)  # type: ignore[arg-type]
    learned = learned_from(folder)
    path, muted, unmuted = REAL_FIELD[demo]
    best = learned.candidates[0]
    assert best.path == path and best.kind == "value"
    assert (best.muted_values, best.unmuted_values) == (muted, unmuted)
    assert best.channel.direction == "sent"
    if transport == "rest":
        assert best.channel.endpoint == "https://10.77.0.2:8089/janus/{id}/{id}"
        assert best.methods == ("POST",)
    else:
        assert best.channel.transport == "websocket"
    assert best.follows and best.matched == 4 and best.score > 0.95
    # the noise (keepalives, trickles, transactions, peers talking and muting, video toggles)
    # stays under the line
    assert [c for c in learned.candidates if c.follows] == [best]
    assert all(c.score <= 0.5 for c in learned.candidates[1:])


@pytest.mark.parametrize("transport", ["ws", "rest"])
def test_a_track_level_mute_gives_no_candidate(tmp_path: Path, transport: str) -> None:
    folder = write_session(tmp_path / "track", "track", transport=transport)  # type: ignore[arg-type]
    learned = learned_from(folder)
    assert learned.state_fields > 10  # plenty of fields change, none with the marks
    assert not learned.following
    assert all(c.score < FOLLOWS_SCORE for c in learned.candidates)
    assert rules_for_candidates(learned.candidates)["rules"] == []


@pytest.mark.parametrize("offset", [-1.5, -0.4, 0.7, 1.9])
def test_marks_a_little_off_the_click_still_pair(tmp_path: Path, offset: float) -> None:
    folder = write_session(tmp_path / "ab", "audiobridge", mark_offset=offset, seed=5)
    best = learned_from(folder).candidates[0]
    assert best.path == "body.muted" and best.follows


def test_marks_further_off_need_a_larger_tolerance(tmp_path: Path) -> None:
    # a lag well under the muted windows' length: values are still held mostly in their state
    mutes = ((8.0, 23.0), (35.0, 50.0))
    folder = write_session(
        tmp_path / "ab", "audiobridge", mark_offset=3.5, seed=5, mutes=mutes, duration=60.0
    )
    learned = learned_from(folder)
    assert not learned.following
    assert "--tolerance" in describe(learned, session="x")
    wider = learned_from(folder, tolerance=5.0)
    assert wider.candidates[0].path == "body.muted" and wider.candidates[0].follows
    assert [c.path for c in wider.following] == ["body.muted"]


@pytest.mark.parametrize("demo", ["audiobridge", "echotest", "videocall"])
def test_the_written_rules_give_the_marked_intervals_without_marks(
    tmp_path: Path, demo: str
) -> None:
    folder = write_session(tmp_path / demo, demo)  # type: ignore[arg-type]
    messages, marks = session_messages(folder)
    document = rules_for_candidates(learn(messages, marks).candidates)
    (rule,) = document["rules"]
    assert rule["json_path"] == REAL_FIELD[demo][0] and rule["direction"] == "sent"
    text = json.dumps(document)
    (loaded,) = load_rules(text)  # the addon's own loader
    # another call: new session and handle ids, new transactions, other mute times
    other = write_session(
        tmp_path / "other", demo, mutes=((5.0, 9.0), (18.0, 33.0)), seed=99, marks=False
    )  # type: ignore[arg-type]
    with (other / "flows.mitm").open("rb") as fo:
        later = [(t, m) for t, m in read_flow_items(fo) if isinstance(m, Message)]
    replay = replay_rules(
        later, text, [(T0 + 5.0, True), (T0 + 9.0, False), (T0 + 18.0, True), (T0 + 33.0, False)]
    )
    assert len(replay.intervals) == 2 and replay.agreement > 0.99
    for (a, b), (c, d) in zip(replay.intervals, replay.marked, strict=True):
        assert a == pytest.approx(c, abs=0.05) and b == pytest.approx(d, abs=0.05)
    assert loaded.url.search("wss://10.77.0.2:8989/") or loaded.url.search(
        "https://10.77.0.2:8089/janus/1/2"
    )


def test_the_addon_in_mitmdump_accepts_the_rule_file_and_replays_a_later_call(
    tmp_path: Path,
) -> None:
    folder = write_session(tmp_path / "marked", "videocall")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(rules_for_candidates(learned_from(folder).candidates)))
    later = write_session(
        tmp_path / "later", "videocall", mutes=((6.0, 12.0),), seed=3, marks=False
    )
    out = tmp_path / "replayed"
    mitmdump = Path(sys.executable).parent / "mitmdump"
    result = subprocess.run(
        [
            str(mitmdump),
            "-q",
            "-n",
            "-r",
            str(later / "flows.mitm"),
            "-s",
            str(ADDON),
            "--set",
            f"mutecheck_rules={rules}",
            "--set",
            f"mutecheck_dir={out}",
            "--set",
            "mutecheck_save_flows=none",
            "--set",
            "mutecheck_observer=false",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with (out / "events.jsonl").open("rb") as fo:
        mutes = [e for e in read_events(fo) if e["kind"] == "mute"]
    said = [(e["state"], round(e["t"] - T0, 1)) for e in mutes if e["source"] == "rule"]
    assert said == [("muted", 6.0), ("unmuted", 12.0)]
    assert not [e for e in mutes if e["source"] == "mark"]


# --- the pieces --------------------------------------------------------------------------------


def test_state_tokens() -> None:
    assert state_token(True) == ("bool", True)
    assert state_token(None) == ("null", None)
    assert state_token(1) == ("number", 1) and state_token(0.0) == ("number", 0)
    assert state_token("1") == ("text", "1")
    for word in ("on", "OFF", "muted", "sendonly", "stopped-talking", "audioOnly", "Muted"):
        assert state_token(word) is not None, word
    for value in (2, 0.25, 1795990804.7, "abc123", "aB3xY9kLmN0p", "x" * 40, "hello there world"):
        assert state_token(value) is None, value


def test_endpoint_patterns_generalise_ids() -> None:
    shown, pattern = endpoint_pattern("https://h:8089/janus/4711/8150000123")
    assert shown == "https://h:8089/janus/{id}/{id}"
    import re

    assert re.search(pattern, "https://h:8089/janus/1/2?rid=5")
    assert not re.search(pattern, "https://h:8089/janus/1")
    assert not re.search(pattern, "https://h:8089/janus/1/2/3")
    assert (
        endpoint_pattern("wss://h/v1/rooms/3f9c0a12-77aa/state")[0] == "wss://h/v1/rooms/{id}/state"
    )
    assert endpoint_pattern("https://h/api/v2/mute")[0] == "https://h/api/v2/mute"


def test_mark_changes_start_unmuted_and_drop_repeats() -> None:
    marks = [(5.0, True), (1.0, False), (6.0, True), (9.0, False), (9.5, False)]
    assert mark_changes(marks) == [(5.0, True), (9.0, False)]


def ws_message(t: float, body: Any, sent: bool = True, index: int = 0) -> tuple[float, Message]:
    reference = FlowRef("f", "websocket", "wss://app.example/rt", message=index)
    content = json.dumps(body).encode()
    return t, Message(reference, "wss://app.example/rt", sent, content, "WebSocket")


def test_a_field_present_only_while_muted_ranks_as_presence() -> None:
    items = []
    for second in range(30):
        body: dict[str, Any] = {"type": "state", "seq": second}
        if 10 <= second < 15:
            body["mutedSince"] = 1795990010.0
        items.append(ws_message(second + 0.05, body))
    learned = learn(items, [(10.0, True), (15.0, False)])
    best = learned.candidates[0]
    assert (best.path, best.kind, best.follows) == ("mutedSince", "presence", True)
    assert best.muted_values == (True,) and best.unmuted_values == (False,)
    assert rules_for_candidates(learned.candidates)["rules"] == []  # a rule cannot say "absent"
    assert "present only while muted" in describe(learned, session="s")


def test_a_field_that_changes_at_other_times_too_is_penalised() -> None:
    items = [ws_message(t / 2, {"mic": "on"}) for t in range(0, 8)]
    items += [ws_message(4.0, {"mic": "off"}), ws_message(6.0, {"mic": "on"})]  # marked
    items += [ws_message(12.0, {"mic": "off"}), ws_message(13.0, {"mic": "on"})]  # not marked
    items += [ws_message(20.0, {"mic": "on"})]
    learned = learn(items, [(4.0, True), (6.0, False)])
    (best,) = learned.candidates
    assert best.matched == 2 and best.field_changes == 4
    assert best.score == pytest.approx(best.agreement * 2 / 4)
    assert not best.follows


def test_no_mute_mark_is_an_error() -> None:
    with pytest.raises(ValueError, match="never say muted"):
        learn([ws_message(1.0, {"a": True})], [(0.5, False)])


def test_json_output_lists_changes_with_offsets(tmp_path: Path) -> None:
    folder = write_session(tmp_path / "ab", "audiobridge")
    document = learned_from(folder).to_json()
    best = document["candidates"][0]
    assert document["follows"] and best["follows"] and best["path"] == "body.muted"
    assert [c["means"] for c in best["changes"]] == [
        "unmuted",
        "muted",
        "unmuted",
        "muted",
        "unmuted",
    ]
    assert best["changes"][1]["offset"] == pytest.approx(8.0, abs=0.3)
    assert [m["state"] for m in document["mark_changes"]] == ["muted", "unmuted"] * 2


json_scalars = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["on", "off", "muted", "x1", "abc"]),
)
bodies = st.dictionaries(st.sampled_from(["a", "b", "mic", "state"]), json_scalars, max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 60), bodies, st.booleans()), max_size=40),
    st.lists(st.tuples(st.floats(0, 60), st.booleans()), min_size=1, max_size=6),
)
def test_scores_stay_in_range_and_ranked(
    messages: list[tuple[float, dict[str, Any], bool]], marks: list[tuple[float, bool]]
) -> None:
    items = [ws_message(t, body, sent) for t, body, sent in messages]
    marks = [*marks, (61.0, True)]
    learned = learn(items, marks)
    scores = [c.score for c in learned.candidates]
    assert scores == sorted(scores, reverse=True)
    for candidate in learned.candidates:
        assert 0.0 <= candidate.agreement <= 1.0 and 0.0 < candidate.score <= 1.0
        assert 1 <= candidate.matched <= candidate.mark_changes
        assert candidate.muted_values and candidate.unmuted_values
    load_rules(json.dumps(rules_for_candidates(learned.candidates)))


# --- the recorded Janus demos (captures/janus-*) -----------------------------------------------

JANUS_FIELD = {
    "janus-audiobridge": ("body.muted", (True,), (False,)),
    "janus-echotest": ("body.audio", (False,), (True,)),
    "janus-echotest-ws": ("body.audio", (False,), (True,)),
    "janus-videocall": ("body.audio", (False,), (True,)),
    "janus-videoroom-streams": ("body.streams[0].send", (False,), (True,)),
}


@pytest.mark.parametrize("name", JANUS_SENDS_MUTE)
def test_the_recorded_janus_demos_mute_request_is_the_top_candidate(name: str) -> None:
    folder = janus_session(name)
    messages, marks = session_messages(folder)
    learned = learn(messages, marks)
    path, muted, unmuted = JANUS_FIELD[name]
    best = learned.candidates[0]
    assert (best.path, best.kind, best.channel.direction) == (path, "value", "sent")
    assert (best.muted_values, best.unmuted_values) == (muted, unmuted)
    assert best.follows and best.score > 0.95
    assert [c for c in learned.candidates if c.follows] == [best]
    # the rule written from it gives the marked interval back without the marks
    text = json.dumps(rules_for_candidates(learned.candidates))
    replay = replay_rules(messages, text, marks)
    assert len(replay.intervals) == len(replay.marked) >= 1 and replay.agreement > 0.97


@pytest.mark.parametrize("name", JANUS_TRACK_MUTE)
def test_the_recorded_videoroom_track_mute_gives_no_candidate(name: str) -> None:
    learned = learned_from(janus_session(name))
    assert learned.mark_changes and learned.state_fields > 10
    assert not learned.following
    assert all(c.score < FOLLOWS_SCORE for c in learned.candidates)
