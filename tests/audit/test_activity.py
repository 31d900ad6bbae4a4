"""decoders.audit.activity: the telemetry format's parser, features, model and evaluation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders.audit import activity
from decoders.audit.messages import telemetry_from_events
from decoders.errors import MalformedPacket
from decoders.session.events import make_event, read_events

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "activity"
A_FILE = FIXTURES / "a_data_10cm.txt"


def test_parse_reads_every_clip_of_the_fixture() -> None:
    clips = activity.parse_clips(A_FILE.read_text(), distance_cm=10)
    assert [c.label for c in clips] == [
        "music", "cooking", "crowd", "dog", "keyboard", "vacuum", None
    ]  # fmt: skip
    assert [len(c.readings) for c in clips] == [12, 10, 11, 9, 10, 8, 4]
    first = clips[0]
    assert first.path == "./youtube_vids/classical_music.mp4.wav"
    assert first.readings[0] == activity.Reading(39, 29, 15)
    assert first.distance_cm == 10 and [c.index for c in clips] == list(range(7))
    assert len(activity.labelled(clips)) == 6


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("./youtube_vids/classical_music.mp4.wav", "music"),
        ("./youtube_vids/eating.mp4.wav", "cooking"),
        ("./youtube_vids/cooking_11-22.mp4.wav", "cooking"),
        ("./youtube_vids/crowd_talking2.mp4.wav", "crowd"),
        ("./youtube_vids/dog_barking3.mp4.wav", "dog"),
        ("./youtube_vids/keyboard4.mp4.wav 25 cm", "keyboard"),
        ("./youtube_vids/key_board3.mp4.wav", None),
        ("./youtube_vids/vaccume.mp4.wav", "vacuum"),
        ("./youtube_vids/cleaning2.mp4.wav", "vacuum"),
        ("./youtube_vids/punk_music.mp4.wav", None),
    ],
)
def test_labels_follow_the_readme_rules(path: str, label: str | None) -> None:
    assert activity.label_of(path) == label


def test_distance_comes_from_the_file_name() -> None:
    assert activity.distance_of("new_data_25cm.txt") == 25
    assert activity.distance_of("telemetry.txt") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.wav\nMaxs:[1]\nMeans:[1]\n", "line 1: clip 'a.wav' is truncated"),
        ("a.wav\nMaxs:[1, 2]\nMeans:[1]\nMins:[1]", "line 1: clip 'a.wav' has series of unequal"),
        ("a.wav\nMeans:[1]\nMaxs:[1]\nMins:[1]", "line 2: expected 'Maxs:[...]'"),
        ("a.wav\nMaxs:[1, x]\nMeans:[1]\nMins:[1]", "line 2: Maxs value 'x' is not a number"),
        ("a.wav\nMaxs:[nan]\nMeans:[1]\nMins:[1]", "line 2: Maxs value 'nan' is not finite"),
        ("Maxs:[1]\nMeans:[1]\nMins:[1]\nx", "line 1: expected a clip path"),
    ],
)
def test_malformed_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(MalformedPacket, match="^" + message.replace("[", r"\[")):
        activity.parse_clips(text)


@given(st.text())
def test_arbitrary_text_gives_clips_or_the_one_error(text: str) -> None:
    try:
        clips = activity.parse_clips(text)
    except MalformedPacket:
        return
    assert all(isinstance(c, activity.Clip) for c in clips)


@given(st.lists(st.tuples(st.integers(0, 90), st.integers(0, 90), st.integers(0, 90)), max_size=30))
def test_written_series_parse_back(values: list[tuple[int, int, int]]) -> None:
    series = [", ".join(str(v[i]) for v in values) for i in range(3)]
    text = f"./x/dog_barking.wav\nMaxs:[{series[0]}]\nMeans:[{series[1]}]\nMins:[{series[2]}]\n"
    (clip,) = activity.parse_clips(text)
    assert clip.label == "dog"
    assert [(r.maximum, r.mean, r.minimum) for r in clip.readings] == values


# -- features, model, evaluation -----------------------------------------------------------------

B_FILE = FIXTURES / "b_data_10cm.txt"


def _session(path: Path) -> tuple[activity.Clip, ...]:
    return activity.parse_clips(path.read_text(), activity.distance_of(path.name))


def test_features_are_the_values_and_their_spreads() -> None:
    rows = activity.reading_features([activity.Reading(40, 30, 10), activity.Reading(5, 5, 5)])
    assert rows.tolist() == [[40, 30, 10, 30, 10, 20], [5, 5, 5, 0, 0, 0]]
    assert activity.reading_features([]).shape == (0, 6)


def test_a_model_trained_on_one_session_tells_the_other() -> None:
    model = activity.train(_session(A_FILE), activity.Training(steps=500))
    result = activity.evaluate(model, _session(B_FILE), k=1)
    assert result.windows == 12 + 10 + 11 + 9 + 10 + 8  # the unlabelled clip is left out
    assert result.macro_accuracy > 0.95
    assert set(result.recalls) == set(activity.CLASSES)
    assert result.by_distance[0][0] == 10


def test_windows_never_cross_a_clip() -> None:
    model = activity.train(_session(A_FILE), activity.Training(steps=200))
    clips = activity.labelled(_session(B_FILE))
    for k in (1, 3, 9):
        result = activity.evaluate(model, clips, k=k)
        assert result.windows == sum(max(0, len(c.readings) - k + 1) for c in clips)


def test_window_probabilities_add_the_readings_up() -> None:
    model = activity.train(_session(A_FILE), activity.Training(steps=200))
    readings = _session(B_FILE)[3].readings
    single = model.reading_probabilities(readings)
    windows = model.window_probabilities(readings, 3)
    assert windows.shape == (len(readings) - 2, 6)
    assert np.allclose(windows.sum(axis=1), 1.0)
    by_hand = np.log(single[1:4]).sum(axis=0)
    assert np.allclose(windows[1], np.exp(by_hand) / np.exp(by_hand).sum())
    assert model.window_probabilities(readings[:2], 3).shape == (0, 6)
    with pytest.raises(ValueError):
        model.window_probabilities(readings, 0)


def test_model_json_round_trip_and_refusals() -> None:
    model = activity.train(_session(A_FILE), activity.Training(steps=50), about="test")
    again = activity.Model.from_json(json.loads(json.dumps(model.to_json())))
    readings = _session(B_FILE)[0].readings
    assert np.allclose(again.reading_probabilities(readings), model.reading_probabilities(readings))
    assert again.about == "test"
    with pytest.raises(MalformedPacket, match="not a mutecheck activity model"):
        activity.Model.from_json({"format": "other"})
    broken = {**model.to_json(), "weights": [[1.0]]}
    with pytest.raises(MalformedPacket, match="do not fit together"):
        activity.Model.from_json(broken)


def test_training_needs_labelled_readings() -> None:
    with pytest.raises(ValueError, match="no labelled clip"):
        activity.train([activity.Clip("x/punk_music.wav", None, (activity.Reading(1, 1, 1),))])


def test_sessions_come_from_the_file_names() -> None:
    assert activity.session_of("new_data_10cm.txt") == "new"
    assert activity.session_of("mine.txt") == "mine"
    sessions = activity.read_sessions([(A_FILE.name, A_FILE.read_text())])
    assert list(sessions) == ["a"] and len(sessions["a"]) == 7


# -- the shipped model and the study's own data -------------------------------------------------


def test_the_shipped_model_loads_and_names_its_source() -> None:
    model = activity.shipped_model()
    assert model.classes == activity.CLASSES
    assert model.columns == activity.Training().columns and model.degree == 2
    assert "new" in model.about and "activity_model.md" in model.about
    # a loud, flat minute (max, mean and min close together) reads as the vacuum cleaner
    (row,) = model.reading_probabilities([activity.Reading(30, 28, 26)])
    assert activity.CLASSES[int(row.argmax())] == "vacuum"


def _data_folder() -> Path:
    """The study's files when MUTECHECK_BGACTIVITY names their folder, else the fixtures."""
    folder = os.environ.get("MUTECHECK_BGACTIVITY")
    return Path(folder) if folder else FIXTURES


def test_cross_session_evaluation_on_the_data_meets_its_target() -> None:
    """With the study's data: trained on new, tested on old, >= 80 % from one reading and
    >= 85 % from three (the issue's targets); with the fixtures, a near-perfect split."""
    folder = _data_folder()
    real = folder != FIXTURES
    files = sorted(folder.glob("*.txt"))
    sessions = activity.read_sessions([(f.name, f.read_text()) for f in files])
    source, target = ("new", "old") if real else ("a", "b")
    model = activity.train(sessions[source])
    single = activity.evaluate(model, sessions[target], 1).macro_accuracy
    three = activity.evaluate(model, sessions[target], 3).macro_accuracy
    assert (single, three) >= ((0.80, 0.85) if real else (0.95, 0.95))
    if real:  # the shipped model is that very model, with the accuracy it states
        shipped = activity.shipped_model()
        assert np.allclose(shipped.weights, model.weights)
        for k, stated in activity.SHIPPED_ACCURACY.items():
            measured = activity.evaluate(model, sessions[target], k).macro_accuracy
            assert abs(measured - stated) < 0.001


# -- telemetry seen by the addon ------------------------------------------------------------------

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
WEBEX = "(base64).audioTransmit[0].levels."


def _webex_event(maximum: float, mean: float, minimum: float) -> dict[str, object]:
    """A telemetry event as the addon writes it for Webex's minute record (research.md)."""
    fields = [
        {"path": WEBEX + name, "value": value, "audio_context": True}
        for name, value in (
            ("audioMaxGain", maximum),
            ("audioMeanGain", mean),
            ("audioMinGain", minimum),
        )
    ]
    fields.append({"path": "(base64).audioTransmit[0].sampleCount", "value": 60})
    return make_event("telemetry", 1.0, direction="sent", fields=fields, muted=True)


def test_a_webex_record_maps_to_max_mean_min_by_behaviour() -> None:
    events = [_webex_event(38, 30, 13), _webex_event(37, 24, 12), _webex_event(31, 28, 26)]
    found = activity.telemetry_readings(activity.telemetry_messages(events))
    assert found is not None
    shape, readings = found
    assert shape == activity.GainShape(
        WEBEX + "audioMaxGain", WEBEX + "audioMeanGain", WEBEX + "audioMinGain"
    )
    assert readings[0] == activity.Reading(38, 30, 13) and len(readings) == 3
    assert activity.in_range(activity.shipped_model(), readings) == 1.0


def test_roles_come_from_the_values_not_the_names() -> None:
    messages = [{"s.a": 2.0, "s.b": 9.0, "s.c": 5.0}, {"s.a": 1.0, "s.b": 7.0, "s.c": 7.0}]
    assert activity.gain_shape(messages) == activity.GainShape("s.b", "s.c", "s.a")
    # flat, or not in the same order every time: no such shape
    assert activity.gain_shape([{"s.a": 1.0, "s.b": 1.0, "s.c": 1.0}]) is None
    assert (
        activity.gain_shape([{"a": 3.0, "b": 2.0, "c": 1.0}, {"a": 1.0, "b": 2.0, "c": 3.0}])
        is None
    )


def test_values_of_another_scale_are_out_of_the_models_range() -> None:
    readings = [activity.Reading(0.9, 0.5, 0.01)] * 3
    assert activity.in_range(activity.shipped_model(), readings) == 0.0
    assert activity.in_range(activity.shipped_model(), []) == 0.0


@pytest.mark.parametrize("session", ["chromium-telemetry-http", "chromium-telemetry-ws"])
def test_the_lab_telemetry_is_of_another_shape(session: str) -> None:
    """The lab page sends one audioLevel twice a second: no model exists for that shape."""
    with (CAPTURES / session / "events.jsonl").open("rb") as stream:
        messages = activity.telemetry_messages(read_events(stream))
    assert len(messages) > 10 and all(list(m) == ["audioLevel"] for m in messages)
    assert activity.telemetry_readings(messages) is None


def test_infer_reads_leaked_webex_minutes_with_the_measured_accuracy() -> None:
    events = [_webex_event(30, 28, 26)] * 3 + [_webex_event(52, 15, 5)]
    messages = telemetry_from_events(events)
    result = activity.infer(messages)
    assert result.readings == 4 and result.shape is not None
    (other,) = activity.shipped_model().reading_probabilities([activity.Reading(52, 15, 5)])
    assert result.shares == (("vacuum", 0.75), (activity.CLASSES[int(other.argmax())], 0.25))
    assert result.likeliest == "vacuum"
    assert result.accuracy == activity.SHIPPED_ACCURACY[1] and result.on_scale == 1.0
    longer = activity.infer(messages, window=3)
    assert longer.accuracy == activity.SHIPPED_ACCURACY[3] and sum(s for _, s in longer.shares) == 1
    assert activity.infer(messages, window=5).reason == "fewer than 5 readings"


def test_infer_names_no_model_for_the_lab_pages_single_level() -> None:
    with (CAPTURES / "chromium-telemetry-ws" / "events.jsonl").open("rb") as stream:
        messages = telemetry_from_events(read_events(stream))
    result = activity.infer(messages)
    assert result.shape is None and result.shares == () and result.likeliest is None
    assert "no activity model exists" in result.reason


def test_a_hostile_message_of_many_objects_is_searched_within_bounds() -> None:
    many = {f"o{i:04d}.f{j}": float((i * 7 + j * 13) % 5) for i in range(2000) for j in range(16)}
    wide = {f"w.f{j}": float(j) for j in range(40)}  # too many numbers for a gain summary
    found = activity.gain_shape([many, wide])  # bounded: it returns, quickly
    assert found is None or found.maximum.startswith("o")
    assert activity.gain_shape([wide]) is None
