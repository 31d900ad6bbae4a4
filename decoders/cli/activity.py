"""``mutecheck activity``: what a muted user's background activity looks like to whoever
receives the app's volume telemetry (max/mean/min gain once a minute).

``train`` fits the model on files of the PETS 2022 format, ``evaluate`` trains on one
recording session and scores the others (the only honest figure: windows never cross clips
and never appear in both), ``classify`` prints one prediction per window of a file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from decoders.cli.common import Exit, OneLineErrors, at, fail, json_option, os_reason, warn
from decoders.errors import MalformedPacket
from decoders.outputs import write_text

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from decoders.audit.activity import AnyModel, Clip, CrossSelection, Evaluation, Selection

DATA = click.Path(exists=False, path_type=Path)


@click.group(cls=OneLineErrors)
def activity() -> None:
    """Background activity from leaked volume telemetry (max/mean/min once a minute)."""


def _files(paths: Sequence[Path]) -> list[Path]:
    """The files named, a folder's ``*.txt`` files in name order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(path.glob("*.txt"))
            if not inside:
                fail(at(path, "no .txt file of volume telemetry in this folder"))
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            fail(at(path, "no such file or folder"))
    return found


def _sessions(paths: Sequence[Path]) -> dict[str, tuple[Clip, ...]]:
    from decoders.audit.activity import read_sessions

    texts = []
    for path in _files(paths):
        try:
            texts.append((path.name, path.read_text(encoding="utf-8")))
        except OSError as error:
            fail(os_reason(error, path))
        except UnicodeDecodeError:
            fail(at(path, "not a text file of volume telemetry"))
    try:
        return read_sessions(texts)
    except MalformedPacket as error:
        fail(at(_culprit(paths, texts, error), error))


def _culprit(paths: Sequence[Path], texts: list[tuple[str, str]], error: Exception) -> str:
    """The file whose text the parser refused (the first that does not parse)."""
    from decoders.audit.activity import parse_clips

    for path in _files(paths):
        try:
            parse_clips(path.read_text(encoding="utf-8"))
        except MalformedPacket:
            return str(path)
    return ", ".join(name for name, _ in texts)


def _model(path: Path | None) -> AnyModel:
    from decoders.audit.activity import load_model, shipped_model

    if path is None:
        return shipped_model()
    try:
        return load_model(path.read_text(encoding="utf-8"))
    except OSError as error:
        fail(os_reason(error, path))
    except (MalformedPacket, UnicodeDecodeError) as error:
        fail(at(path, error))


def _readings(clips: Sequence[Clip]) -> int:
    return sum(len(c.readings) for c in clips)


@activity.command()
@click.argument("data", nargs=-1, required=True, type=DATA)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--select",
    "choose",
    is_flag=True,
    help="Choose the model among the candidates first: across the recording sessions when "
    "DATA holds two or more with labels (as evaluate does), else by clip-grouped "
    "cross-validation inside DATA (default: the recipe the shipped model was chosen with).",
)
def train(data: tuple[Path, ...], output: Path, choose: bool) -> None:
    """Train the model on every labelled clip of DATA (files or folders of that format)."""
    from decoders.audit.activity import CHOSEN, labelled, select, select_across
    from decoders.audit.activity import train as fit

    sessions = _sessions(data)
    clips = labelled([c for s in sessions.values() for c in s])
    if not clips:
        fail("no labelled clip with readings in " + ", ".join(map(str, data)))
    recipe = CHOSEN
    if choose and sum(1 for s in sessions.values() if labelled(s)) >= 2:
        across = select_across(sessions)
        click.echo(_across_text(across))
        recipe = across.chosen
    elif choose:
        try:
            selection = select(clips)
        except ValueError as error:
            fail(str(error))
        click.echo(_selection_text(", ".join(sessions), selection))
        recipe = selection.chosen
    about = f"{recipe.name}; trained by mutecheck activity train on sessions {', '.join(sessions)}"
    model = fit(clips, recipe, about=about)
    write_text(output, json.dumps(model.to_json(), indent=1) + "\n")
    click.echo(f"trained on {len(clips)} clips, {_readings(clips)} readings; wrote {output}")


@activity.command()
@click.argument("data", nargs=-1, required=True, type=DATA)
@click.option(
    "--windows",
    "max_k",
    type=click.IntRange(1, 60),
    default=5,
    show_default=True,
    help="Score windows of 1 up to this many consecutive readings (minutes).",
)
@click.option(
    "--within",
    is_flag=True,
    help="Choose the model inside each training session instead (clip-grouped "
    "cross-validation; it never sees another session, and on the study's data it picks a "
    "model that carries over worse).",
)
@json_option("Print the figures and confusion matrices as JSON.")
def evaluate(data: tuple[Path, ...], max_k: int, within: bool, as_json: bool) -> None:
    """Choose a model, train it on all of one recording session of DATA and test it on each
    other one (sessions by file name: new_data_10cm.txt is session 'new', distance 10 cm;
    windows never cross clips). The choice: every candidate trained on each session and
    scored on the others, best mean from one reading (leave-one-session-out; the figures then
    include the choice), or with --within, clip-grouped cross-validation inside the training
    session alone."""
    from decoders.audit.activity import Selection, labelled, select, select_across
    from decoders.audit.activity import evaluate as score
    from decoders.audit.activity import train as fit

    sessions = {name: labelled(clips) for name, clips in _sessions(data).items()}
    sessions = {name: clips for name, clips in sessions.items() if clips}
    if len(sessions) < 2:
        fail("evaluate needs two recording sessions with labels (e.g. new_*.txt and old_*.txt)")
    across = None if within else select_across(sessions)
    results = []
    for source, training in sessions.items():
        selection: Selection | CrossSelection
        if across is None:
            try:
                selection = select(training)
            except ValueError as error:
                fail(f"session {source}: {error}")
        else:
            selection = across
        model = fit(training, selection.chosen)
        for target, testing in sessions.items():
            if target != source:
                scores = [score(model, testing, k) for k in range(1, max_k + 1)]
                results.append((source, target, selection, scores))
    if as_json:
        click.echo(json.dumps([_json(*result) for result in results], indent=1))
        return
    for name, clips in sessions.items():
        click.echo(f"session {name}: {len(clips)} labelled clips, {_readings(clips)} readings")
    if across is not None:
        click.echo("")
        click.echo(_across_text(across))
        click.echo(
            "  (the figures below are the chosen candidate's own from this table: the choice "
            "saw them, and with two sessions none is left to hold out)"
        )
    for source, target, selection, scores in results:
        click.echo("")
        if isinstance(selection, Selection):
            click.echo(_selection_text(source, selection))
        click.echo(_text(source, target, scores))


def _across_text(selection: CrossSelection) -> str:
    windows = " / ".join(f"{k}" for k in selection.windows)
    heads = [f"{a} -> {b}" for a, b in selection.pairs] + ["mean"]
    width = 8 * len(selection.windows) + 2 * (len(selection.windows) - 1) - 1
    lines = [
        "model selection across sessions (leave-one-session-out): each candidate trained on "
        "all of one session and tested on the other; chosen by the mean macro accuracy from "
        f"1 reading (ties: 3); figures from {windows} readings",
        "    " + "  ".join(f"{h:<{width}}" for h in heads),
    ]
    chosen = selection.chosen
    for i, recipe in enumerate(selection.candidates):
        mark = "*" if recipe == chosen else " "
        cells = [*selection.scores[i], selection.mean(i)]
        figures = "  ".join(" / ".join(_percent(v) for v in cell) for cell in cells)
        lines.append(f"  {mark} {figures}  {recipe.name}")
    lines.append(f"  chosen: {chosen.name}")
    return "\n".join(lines)


def _selection_text(source: str, selection: Selection) -> str:
    windows = " / ".join(f"{k} reading{'s' if k > 1 else ''}" for k in selection.windows)
    lines = [
        f"model selection inside {source} only: {selection.folds}-fold cross-validation over "
        f"{selection.clips} whole clips (macro accuracy, {windows})"
    ]
    chosen = selection.chosen
    for recipe, scores in zip(selection.candidates, selection.scores, strict=True):
        mark = "*" if recipe == chosen else " "
        figures = " / ".join(_percent(v) for v in scores)
        lines.append(f"  {mark} {figures}  {recipe.name}")
    lines.append(f"  chosen: {chosen.name}")
    return "\n".join(lines)


def _across_json(selection: CrossSelection) -> dict[str, object]:
    return {
        "protocol": "across sessions",
        "pairs": [{"train": a, "test": b} for a, b in selection.pairs],
        "windows": list(selection.windows),
        "chosen": selection.chosen.name,
        "candidates": [
            {
                "model": recipe.name,
                "macro_accuracy": [list(row) for row in selection.scores[i]],
                "mean_macro_accuracy": list(selection.mean(i)),
            }
            for i, recipe in enumerate(selection.candidates)
        ],
    }


def _json(
    source: str, target: str, selection: Selection | CrossSelection, scores: Sequence[Evaluation]
) -> dict[str, object]:
    from decoders.audit.activity import CrossSelection

    return {
        "train": source,
        "test": target,
        "selection": _across_json(selection)
        if isinstance(selection, CrossSelection)
        else {
            "protocol": "inside the training session",
            "folds": selection.folds,
            "clips": selection.clips,
            "windows": list(selection.windows),
            "chosen": selection.chosen.name,
            "candidates": [
                {"model": recipe.name, "cross_validated_macro_accuracy": list(values)}
                for recipe, values in zip(selection.candidates, selection.scores, strict=True)
            ],
        },
        "windows": [
            {
                "k": e.k,
                "windows": e.windows,
                "macro_accuracy": e.macro_accuracy,
                "recalls": e.recalls,
                "by_distance_cm": [
                    {"distance_cm": d, "macro_accuracy": a} for d, a in e.by_distance
                ],
                "classes": list(e.classes),
                "confusion": [list(row) for row in e.confusion],
            }
            for e in scores
        ],
    }


def _percent(value: float) -> str:
    return f"{100 * value:5.1f} %"


def _text(source: str, target: str, scores: Sequence[Evaluation]) -> str:
    lines = [f"train on {source}, test on {target} (macro accuracy: mean of per-class recalls)"]
    for e in scores:
        near = "  ".join(
            f"{d if d is not None else '?'} cm {_percent(a)}" for d, a in e.by_distance
        )
        minutes = "1 reading " if e.k == 1 else f"{e.k} readings"
        lines.append(f"  {minutes}: {_percent(e.macro_accuracy)}   {near}   ({e.windows} windows)")
    for e in (scores[0], scores[-1]) if len(scores) > 1 else scores[:1]:
        lines.append(
            f"  per class, {e.k} reading{'s' if e.k > 1 else ''}: "
            + "  ".join(f"{name} {_percent(r)}" for name, r in e.recalls.items())
        )
        lines.extend(_matrix(e))
    return "\n".join(lines)


def _matrix(e: Evaluation) -> list[str]:
    width = max(8, *(len(c) + 1 for c in e.classes))
    head = (
        "  confusion (rows: true, columns: predicted), " + f"{e.k} reading{'s' if e.k > 1 else ''}"
    )
    rows = [head, "    " + " " * width + "".join(f"{c:>{width}}" for c in e.classes)]
    for name, row in zip(e.classes, e.confusion, strict=True):
        rows.append("    " + f"{name:<{width}}" + "".join(f"{v:>{width}}" for v in row))
    return rows


def _event_clips(path: Path, model: AnyModel) -> list[Clip]:
    """The readings of the addon's telemetry events (events.jsonl) that have the max/mean/min
    shape, as one clip; exit 3 with one line when no fields of that shape left."""
    from decoders.audit.activity import Clip, in_range, telemetry_messages, telemetry_readings
    from decoders.session.events import UnusableLine, read_events

    unusable: list[UnusableLine] = []
    try:
        with path.open("rb") as stream:
            messages = telemetry_messages(read_events(stream, unusable))
    except OSError as error:
        fail(os_reason(error, path))
    if unusable:
        warn(at(path, f"{len(unusable)} unusable lines skipped (first: line {unusable[0].line})"))
    found = telemetry_readings(messages)
    if found is None:
        click.echo(
            f"{path}: {len(messages)} telemetry messages, none with three fields that behave as "
            "a max, a mean and a min: no activity model exists for that shape"
        )
        sys.exit(Exit.INCONCLUSIVE)
    shape, readings = found
    click.echo(
        f"{path}: {len(readings)} readings; max = {shape.maximum}, mean = {shape.mean}, "
        f"min = {shape.minimum} (by behaviour: max >= mean >= min in every message)",
        err=True,
    )
    share = in_range(model, readings)
    if share < 1:
        warn(f"{1 - share:.0%} of the readings lie outside the scale the model was trained on")
    return [Clip(str(path), None, readings)]


@activity.command()
@click.argument("file", type=DATA)
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A model from 'mutecheck activity train' (default: the one shipped).",
)
@click.option(
    "--window",
    "k",
    type=click.IntRange(1, 60),
    default=1,
    show_default=True,
    help="Consecutive readings (minutes) per prediction.",
)
@json_option("Print the predictions as JSON: one object per window.")
def classify(file: Path, model_path: Path | None, k: int, as_json: bool) -> None:
    """One prediction per window of FILE: clip, window start, predicted class and the
    probabilities of every class. FILE: a file of the study's format, or the addon's
    events.jsonl (or a session folder holding it), whose telemetry fields are mapped to
    max/mean/min by how they behave."""
    model = _model(model_path)
    events = file / "events.jsonl" if file.is_dir() else file
    if events.name.endswith(".jsonl"):
        clips = _event_clips(events, model)
    else:
        clips = [c for s in _sessions([file]).values() for c in s]
    predictions = [
        _prediction(model, clip, start, k, row)
        for clip in clips
        for start, row in enumerate(model.window_probabilities(clip.readings, k))
    ]
    if as_json:
        click.echo(json.dumps(predictions, indent=1))
        return
    for p in predictions:
        chance = max(p["probabilities"].values())
        where = f"clip {p['clip']} {p['path']} minute {p['window_start']}"
        click.echo(f"{where}: {p['class']} ({chance:.0%})")


def _prediction(
    model: AnyModel, clip: Clip, start: int, k: int, row: npt.NDArray[np.float64]
) -> dict[str, Any]:
    return {
        "clip": clip.index,
        "path": clip.path,
        "label": clip.label,
        "window_start": start,
        "readings": k,
        "class": model.classes[int(row.argmax())],
        "probabilities": {c: round(float(p), 4) for c, p in zip(model.classes, row, strict=True)},
    }
