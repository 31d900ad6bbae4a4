"""``mutecheck activity train | evaluate | classify`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.cli_run import run_mutecheck as run

from decoders.session.events import EventWriter, make_event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "activity"
A_FILE = FIXTURES / "a_data_10cm.txt"


def test_train_writes_a_model_that_classify_uses(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    result = run("activity", "train", str(A_FILE), "-o", str(model))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"trained on 6 clips, 60 readings; wrote {model}\n"
    result = run("activity", "classify", str(FIXTURES / "b_data_10cm.txt"), "--model", str(model),
                 "--json", "--window", "3")  # fmt: skip
    assert result.returncode == 0, result.stderr
    windows = json.loads(result.stdout)
    assert len(windows) == (12 + 10 + 11 + 9 + 10 + 8 + 4) - 7 * 2
    first = windows[0]
    assert first["clip"] == 0 and first["window_start"] == 0 and first["readings"] == 3
    assert first["path"] == "./youtube_vids/classical_music.mp4.wav"
    assert set(first["probabilities"]) == {"music", "cooking", "crowd", "dog", "keyboard", "vacuum"}
    right = [w["class"] == w["label"] for w in windows if w["label"]]
    assert sum(right) / len(right) > 0.9


def test_classify_with_the_shipped_model_prints_a_line_per_window() -> None:
    result = run("activity", "classify", str(A_FILE))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 12 + 10 + 11 + 9 + 10 + 8 + 4
    assert lines[0].startswith("clip 0 ./youtube_vids/classical_music.mp4.wav minute 0: ")


def test_evaluate_trains_on_each_session_and_tests_on_the_other() -> None:
    result = run("activity", "evaluate", str(FIXTURES), "--windows", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "session a: 6 labelled clips, 60 readings" in out
    assert "train on a, test on b (macro accuracy: mean of per-class recalls)" in out
    assert "train on b, test on a" in out
    assert "confusion (rows: true, columns: predicted), 2 readings" in out
    # the model is chosen by how it carries over between the sessions, and the choice printed
    assert "model selection across sessions (leave-one-session-out)" in out
    assert "a -> b" in out and "b -> a" in out and "the choice saw them" in out
    assert out.count("  chosen: ") == 1 and out.count("  * ") == 1
    result = run("activity", "evaluate", str(FIXTURES), "--json")
    (first, second) = json.loads(result.stdout)
    assert (second["train"], second["test"]) == ("b", "a")
    assert (first["train"], first["test"]) == ("a", "b")
    assert [w["k"] for w in first["windows"]] == [1, 2, 3, 4, 5]
    assert first["windows"][0]["macro_accuracy"] > 0.95
    assert sum(map(sum, first["windows"][0]["confusion"])) == 60
    selection = first["selection"]
    assert selection == second["selection"] and selection["protocol"] == "across sessions"
    assert selection["pairs"] == [{"train": "a", "test": "b"}, {"train": "b", "test": "a"}]
    names = [c["model"] for c in selection["candidates"]]
    assert selection["chosen"] in names and len(names) == 17
    best = max(selection["candidates"], key=lambda c: c["mean_macro_accuracy"])
    assert best["model"] == selection["chosen"]
    chosen = next(c for c in selection["candidates"] if c["model"] == selection["chosen"])
    assert chosen["macro_accuracy"][0][0] == first["windows"][0]["macro_accuracy"]


def test_evaluate_within_chooses_inside_each_training_session() -> None:
    result = run("activity", "evaluate", str(FIXTURES), "--windows", "2", "--within")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "model selection inside a only: 4-fold cross-validation over 6 whole clips" in out
    assert "across sessions" not in out
    assert out.count("  chosen: ") == 2 and out.count("  * ") == 2
    result = run("activity", "evaluate", str(FIXTURES), "--json", "--within")
    (first, _) = json.loads(result.stdout)
    selection = first["selection"]
    assert selection["protocol"] == "inside the training session"
    assert selection["folds"] == 4 and selection["clips"] == 6 and selection["windows"] == [1, 3]
    best = max(selection["candidates"], key=lambda c: c["cross_validated_macro_accuracy"])
    assert best["model"] == selection["chosen"]


def test_train_can_select_inside_its_data_first(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    result = run("activity", "train", "--select", str(A_FILE), "-o", str(model))
    assert result.returncode == 0, result.stderr
    assert "model selection inside a only: 4-fold cross-validation over 6 whole clips" in (
        result.stdout
    )
    chosen = result.stdout.split("  chosen: ")[1].splitlines()[0]
    assert json.loads(model.read_text())["about"].startswith(chosen + "; trained by")


def test_train_selects_across_sessions_when_its_data_holds_two(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    result = run("activity", "train", "--select", str(FIXTURES), "-o", str(model))
    assert result.returncode == 0, result.stderr
    assert "model selection across sessions (leave-one-session-out)" in result.stdout
    assert "inside a" not in result.stdout
    chosen = result.stdout.split("  chosen: ")[1].splitlines()[0]
    about = json.loads(model.read_text())["about"]
    assert about == f"{chosen}; trained by mutecheck activity train on sessions a, b"
    assert "trained on 12 clips, 120 readings" in result.stdout


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    result = run("activity", "evaluate", str(A_FILE))
    assert result.returncode == 2
    assert result.stderr == (
        "mutecheck: error: evaluate needs two recording sessions with labels "
        "(e.g. new_*.txt and old_*.txt)\n"
    )
    broken = tmp_path / "x_data_10cm.txt"
    broken.write_text("a.wav\nMaxs:[1, x]\nMeans:[1]\nMins:[1]\n")
    result = run("activity", "classify", str(broken))
    assert result.returncode == 2
    assert result.stderr == f"mutecheck: error: {broken}: line 2: Maxs value 'x' is not a number\n"
    result = run("activity", "classify", str(A_FILE), "--model", str(A_FILE))
    assert result.returncode == 2 and "activity model is not JSON" in result.stderr
    result = run("activity", "train", str(tmp_path / "none.txt"), "-o", str(tmp_path / "m"))
    assert result.returncode == 2 and "none.txt: no such file or folder" in result.stderr


CAPTURES = Path(__file__).resolve().parents[2] / "captures"
LEVELS = "(base64).audioTransmit[0].levels."


def _events(path: Path, minutes: list[tuple[float, float, float]]) -> None:
    """An events.jsonl with one Webex-shaped telemetry event a minute (names scrambled: the
    roles must come from the values)."""
    with path.open("wb") as stream:
        writer = EventWriter(stream)
        for minute, (top, middle, bottom) in enumerate(minutes):
            fields = [
                {"path": LEVELS + "g1", "value": bottom},
                {"path": LEVELS + "g2", "value": top},
                {"path": LEVELS + "g3", "value": middle},
            ]
            writer.write(
                make_event("telemetry", 1.8e9 + 60 * minute, direction="sent", fields=fields)
            )


def test_classify_reads_the_addons_telemetry_by_behaviour(tmp_path: Path) -> None:
    _events(tmp_path / "events.jsonl", [(30, 28, 26)] * 4)
    result = run("activity", "classify", str(tmp_path), "--json", "--window", "2")
    assert result.returncode == 0, result.stderr
    windows = json.loads(result.stdout)
    assert [w["window_start"] for w in windows] == [0, 1, 2]
    assert {w["class"] for w in windows} == {"vacuum"}
    assert f"max = {LEVELS}g2, mean = {LEVELS}g3, min = {LEVELS}g1" in result.stderr
    assert "warning" not in result.stderr


def test_classify_warns_about_values_of_another_scale(tmp_path: Path) -> None:
    _events(tmp_path / "events.jsonl", [(0.9, 0.5, 0.1)])
    result = run("activity", "classify", str(tmp_path / "events.jsonl"))
    assert result.returncode == 0, result.stderr
    assert (
        "mutecheck: warning: 100% of the readings lie outside the scale the model was trained on"
        in result.stderr
    )


def test_classify_says_no_model_exists_for_the_lab_pages_single_level() -> None:
    result = run("activity", "classify", str(CAPTURES / "chromium-telemetry-http"))
    assert result.returncode == 3, result.stderr
    assert result.stdout.endswith(
        "none with three fields that behave as a max, a mean and a min: "
        "no activity model exists for that shape\n"
    )
