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


@pytest.mark.parametrize("recipe", [activity.Logistic(steps=500), activity.CHOSEN])
def test_a_model_trained_on_one_session_tells_the_other(recipe: activity.Recipe) -> None:
    model = activity.train(_session(A_FILE), recipe)
    result = activity.evaluate(model, _session(B_FILE), k=1)
    assert result.windows == 12 + 10 + 11 + 9 + 10 + 8  # the unlabelled clip is left out
    assert result.macro_accuracy > 0.95
    assert set(result.recalls) == set(activity.CLASSES)
    assert result.by_distance[0][0] == 10


def test_prototypes_are_averages_of_several_readings() -> None:
    """The prototype model ships group means, never one reading; k is capped by the smallest
    class (with equal priors, more neighbours would only count whole classes)."""
    clips = _session(A_FILE)
    recipe = activity.Prototypes(per=4, k=100)
    model = recipe.fit(clips)
    assert isinstance(model, activity.PrototypeModel)
    assert model.counts.min() >= recipe.smallest and model.counts.sum() == 60
    assert model.k == 8  # the smallest class (vacuum) has 8 readings
    per_class = np.bincount(model.labels, weights=model.counts, minlength=6)
    assert per_class.tolist() == [12, 10, 11, 9, 10, 8]
    probabilities = model.reading_probabilities(clips[3].readings)
    assert np.allclose(probabilities.sum(axis=1), 1.0) and (probabilities > 0).all()


def test_clip_folds_hold_whole_clips_and_spread_each_class() -> None:
    clips = activity.labelled(_session(A_FILE) + _session(B_FILE))
    folds = activity.clip_folds(clips, 4)
    assert len(folds) == len(clips) == 12 and set(folds) == {0, 1, 2, 3}
    for label in activity.CLASSES:  # the two clips of a class never share a fold
        assert len({f for c, f in zip(clips, folds, strict=True) if c.label == label}) == 2


def test_selection_sees_only_its_session_and_picks_the_best_cross_validated() -> None:
    """A small selection run on the fixtures' two sessions together (a slice: two candidates)."""
    clips = _session(A_FILE) + _session(B_FILE)
    candidates = (activity.Logistic(steps=200), activity.Prototypes(per=4, k=25))
    selection = activity.select(clips, candidates, folds=2)
    assert selection.folds == 2 and selection.clips == 12 and selection.windows == (1, 3)
    assert len(selection.scores) == 2 and all(len(s) == 2 for s in selection.scores)
    best = max(range(2), key=lambda i: (*selection.scores[i], -i))
    assert selection.chosen == candidates[best]
    assert selection.scores[0] == activity.cross_validate(candidates[0], clips, folds=2)
    with pytest.raises(ValueError, match="at least 13 labelled clips"):
        activity.select(clips, candidates, folds=13)


def test_selection_across_sessions_scores_each_candidate_on_the_other_session() -> None:
    """Each candidate trained on one fixture session and tested on the other, both ways; the
    choice is the best mean from one reading, then three, then the first listed."""
    sessions = {"a": _session(A_FILE), "b": _session(B_FILE)}
    candidates = (activity.Logistic(steps=200), activity.Prototypes(per=4, k=25))
    selection = activity.select_across(sessions, candidates)
    assert selection.pairs == (("a", "b"), ("b", "a")) and selection.windows == (1, 3)
    for i, recipe in enumerate(candidates):
        for j, (train_on, test_on) in enumerate(selection.pairs):
            model = recipe.fit(sessions[train_on])
            for w, k in enumerate(selection.windows):
                scored = activity.evaluate(model, sessions[test_on], k).macro_accuracy
                assert selection.scores[i][j][w] == scored
        assert selection.mean(i) == tuple(
            (selection.scores[i][0][w] + selection.scores[i][1][w]) / 2 for w in range(2)
        )
    best = max(range(2), key=lambda i: (*selection.mean(i), -i))
    assert selection.chosen == candidates[best]
    tie = activity.CrossSelection(
        selection.pairs, (1, 3), candidates, (((0.5, 0.6), (0.7, 0.6)), ((0.7, 0.6), (0.5, 0.6)))
    )
    assert tie.chosen == candidates[0]  # equal means: the first listed
    with pytest.raises(ValueError, match="two sessions with labelled clips"):
        activity.select_across({"a": sessions["a"]}, candidates)


def test_windows_never_cross_a_clip() -> None:
    model = activity.train(_session(A_FILE), activity.Logistic(steps=200))
    clips = activity.labelled(_session(B_FILE))
    for k in (1, 3, 9):
        result = activity.evaluate(model, clips, k=k)
        assert result.windows == sum(max(0, len(c.readings) - k + 1) for c in clips)


def test_window_probabilities_add_the_readings_up() -> None:
    model = activity.train(_session(A_FILE), activity.Logistic(steps=200))
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


@pytest.mark.parametrize(
    ("recipe", "field"),
    [(activity.Logistic(steps=50), "weights"), (activity.Prototypes(per=4), "totals")],
)
def test_model_json_round_trip_and_refusals(recipe: activity.Recipe, field: str) -> None:
    model = activity.train(_session(A_FILE), recipe, about="test")
    again = activity.load_model(json.dumps(model.to_json()))
    assert type(again) is type(model)
    readings = _session(B_FILE)[0].readings
    assert np.allclose(again.reading_probabilities(readings), model.reading_probabilities(readings))
    assert again.about == "test"
    with pytest.raises(MalformedPacket, match="not a mutecheck activity model"):
        activity.load_model(json.dumps({"format": "other"}))
    broken = {**model.to_json(), field: [[1.0]]}
    with pytest.raises(MalformedPacket, match="do not fit together"):
        activity.load_model(json.dumps(broken))


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
    assert isinstance(model, activity.PrototypeModel) and activity.CHOSEN in activity.CANDIDATES
    assert model.classes == activity.CLASSES and model.columns == activity.CHOSEN.columns
    assert model.counts.min() >= activity.Prototypes().smallest  # averages, not readings
    assert "new" in model.about and "activity_model.md" in model.about
    # a loud, flat minute (max, mean and min close together) reads as the vacuum cleaner
    (row,) = model.reading_probabilities([activity.Reading(30, 28, 26)])
    assert activity.CLASSES[int(row.argmax())] == "vacuum"


def _data_folder() -> Path:
    """The study's files when MUTECHECK_BGACTIVITY names their folder, else the fixtures."""
    folder = os.environ.get("MUTECHECK_BGACTIVITY")
    return Path(folder) if folder else FIXTURES


def test_the_shipped_model_is_the_one_chosen_across_sessions_with_the_accuracy_it_states() -> None:
    """With the study's data: the selection across its two sessions picks :data:`CHOSEN`
    (inside ``new`` alone it would pick another), the shipped model is that recipe trained on
    all of ``new``, and tested on ``old`` it scores what :data:`SHIPPED_ACCURACY` states
    (82.5 % from one reading, 86.0 % from three; docs/methodology.md section 9). With the
    fixtures, a near-perfect split."""
    folder = _data_folder()
    real = folder != FIXTURES
    files = sorted(folder.glob("*.txt"))
    sessions = activity.read_sessions([(f.name, f.read_text()) for f in files])
    source, target = ("new", "old") if real else ("a", "b")
    model = activity.train(sessions[source])
    single = activity.evaluate(model, sessions[target], 1).macro_accuracy
    three = activity.evaluate(model, sessions[target], 3).macro_accuracy
    if not real:
        assert (single, three) >= (0.95, 0.95)
        return
    across = activity.select_across(sessions)
    assert across.chosen == activity.CHOSEN
    assert across.pairs == (("new", "old"), ("old", "new"))
    assert activity.select(sessions[source]).chosen != activity.CHOSEN
    shipped = activity.shipped_model()
    assert isinstance(shipped, activity.PrototypeModel) and isinstance(
        model, activity.PrototypeModel
    )
    assert np.allclose(shipped.prototypes, model.prototypes)
    assert np.array_equal(shipped.counts, model.counts) and shipped.k == model.k
    for k, stated in activity.SHIPPED_ACCURACY.items():
        measured = activity.evaluate(model, sessions[target], k).macro_accuracy
        assert abs(measured - stated) < 0.001
    assert (activity.SHIPPED_ACCURACY[1], activity.SHIPPED_ACCURACY[3]) >= (0.80, 0.85)


# -- telemetry seen by the addon ------------------------------------------------------------------

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
WEBEX = "(base64).audioTransmit[0].levels."


def _webex_event(maximum: float, mean: float, minimum: float, t: float = 1.0) -> dict[str, object]:
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
    return make_event("telemetry", t, direction="sent", fields=fields, muted=True)


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
    readings = [(30, 28, 26)] * 3 + [(52, 39, 16)]
    events = [_webex_event(*r, t=100.0 + 60 * i) for i, r in enumerate(readings)]
    messages = telemetry_from_events(events)
    result = activity.infer(messages)
    assert result.readings == 4 and result.shape is not None
    assert result.period_s == 60.0 and result.same_period is True
    assert "one reading every 60 s, as the model learnt" in activity.inference_text(result)
    (other,) = activity.shipped_model().reading_probabilities([activity.Reading(52, 39, 16)])
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


def test_a_reading_period_other_than_a_minute_is_said() -> None:
    every_ten = [_webex_event(30, 28, 26, t=10.0 * i) for i in range(4)]
    result = activity.infer(telemetry_from_events(every_ten))
    assert result.period_s == 10.0 and result.same_period is False
    assert "accuracy figures do not apply" in activity.inference_text(result)
    numbers = activity.inference_numbers(result)
    assert (numbers["period_s"], numbers["model_period_s"], numbers["same_period"]) == (
        10.0,
        60.0,
        False,
    )
    alone = activity.infer(telemetry_from_events(every_ten[:1]))
    assert alone.period_s is None and alone.same_period is None
    assert "its period is not known" in activity.inference_text(alone)


GAINS = CAPTURES / "chromium-telemetry-gains"


def test_the_lab_gains_session_is_read_as_max_mean_min_every_period() -> None:
    """The committed telemetry-gains session (the study's client in the lab page): its three
    fields map to max/mean/min by behaviour, the model reads every reading, and the period the
    page was recorded with (session.json) is the one measured from the proxy's clock."""
    with (GAINS / "events.jsonl").open("rb") as stream:
        messages = telemetry_from_events(read_events(stream))
    session = json.loads((GAINS / "session.json").read_text())
    period = session["page"]["gain_period_s"]
    assert len(messages) == session["page"]["telemetry_sent"] >= 3
    result = activity.infer(messages)
    assert result.shape == activity.GainShape("audioMaxGain", "audioMeanGain", "audioMinGain")
    assert result.readings == len(messages) and sum(s for _, s in result.shares) == 1
    assert result.period_s is not None and abs(result.period_s - period) < 0.5
    assert result.same_period is (period == activity.MODEL_PERIOD_S)
    peer = [json.loads(line)["message"] for line in (GAINS / "peer-telemetry.jsonl").open()]
    for message in peer:  # integers on the page's scale: dB above -60 dBFS, 0..60
        values = [message[f"audio{name}Gain"] for name in ("Max", "Mean", "Min")]
        assert all(isinstance(v, int) and 0 <= v <= 60 for v in values)
        assert values == sorted(values, reverse=True) and values[0] > values[2]
