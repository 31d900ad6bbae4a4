"""decoders.audit.activity: the telemetry format's parser, features, model and evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders.audit import activity
from decoders.errors import MalformedPacket

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
