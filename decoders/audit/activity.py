"""Background activity from leaked volume telemetry (max/mean/min gain once a minute).

The PETS 2022 study ("Are You Really Muted?") showed that Webex's once-a-minute
``audioMaxGain``/``audioMeanGain``/``audioMinGain`` values, sent while muted, tell what the
user is doing. This module reads that study's public data format, turns readings into
features, trains and evaluates a small numpy model, and classifies new readings.

The format (one file per distance, e.g. ``new_data_10cm.txt``)::

    ./youtube_vids/classical_music.mp4.wav
    Maxs:[38, 37, ...]
    Means:[30, 24, ...]
    Mins:[13, 12, ...]

one value per minute of playback. Labels come from the clip path by the study's own
substrings (:data:`LABEL_RULES`); clips without a label are kept but unlabelled.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from decoders.audit.messages import TelemetryMessage, telemetry_from_events
from decoders.errors import MalformedPacket
from decoders.session.events import Event

CLASSES: Final = ("music", "cooking", "crowd", "dog", "keyboard", "vacuum")
"""The six background activities, in the model's output order."""

LABEL_RULES: Final = (
    ("classical_music", "music"),
    ("cooking", "cooking"),
    ("eating", "cooking"),
    ("crowd_talking", "crowd"),
    ("dog_barking", "dog"),
    ("key_board3", None),
    ("keyboard", "keyboard"),
    ("vaccume", "vacuum"),
    ("cleaning", "vacuum"),
)
"""Substring of the clip path -> class, first match wins (``key_board3`` has no label)."""

_SERIES: Final = ("Maxs", "Means", "Mins")
_SERIES_LINE: Final = re.compile(r"^(Maxs|Means|Mins):\[(.*)\]$")
_DISTANCE: Final = re.compile(r"(\d+)\s*cm", re.IGNORECASE)


def label_of(path: str) -> str | None:
    """The class of a clip by its path (:data:`LABEL_RULES`), or None: no label."""
    for substring, label in LABEL_RULES:
        if substring in path:
            return label
    return None


@dataclass(frozen=True)
class Reading:
    """One telemetry upload: the gain's max, mean and min over about a minute."""

    maximum: float
    mean: float
    minimum: float


@dataclass(frozen=True)
class Clip:
    """The readings of one clip played while muted, in order (one a minute)."""

    path: str
    label: str | None
    readings: tuple[Reading, ...]
    distance_cm: int | None = None
    index: int = 0
    """Position of the clip in its file (the same path can appear twice)."""


def distance_of(name: str) -> int | None:
    """The speaker distance named in a file name (``new_data_25cm.txt`` -> 25), or None."""
    found = _DISTANCE.search(name)
    return int(found.group(1)) if found else None


def _values(line: str, expected: str, number: int) -> list[float]:
    match = _SERIES_LINE.match(line)
    if match is None or match.group(1) != expected:
        raise MalformedPacket(f"line {number}: expected '{expected}:[...]', got {line[:40]!r}")
    body = match.group(2).strip()
    if not body:
        return []
    values: list[float] = []
    for item in body.split(","):
        text = item.strip()
        try:
            value = float(text)
        except ValueError:
            raise MalformedPacket(
                f"line {number}: {expected} value {text[:20]!r} is not a number"
            ) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise MalformedPacket(f"line {number}: {expected} value {text[:20]!r} is not finite")
        values.append(value)
    return values


def parse_clips(text: str, distance_cm: int | None = None) -> tuple[Clip, ...]:
    """Every clip of a file of that format; :class:`MalformedPacket` names the line that is not.

    Blank lines are ignored; each clip is a path line then the Maxs, Means and Mins lines, of
    equal length.
    """
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    clips: list[Clip] = []
    for start in range(0, len(lines), 4):
        block = lines[start : start + 4]
        number, path = block[0]
        if _SERIES_LINE.match(path):
            raise MalformedPacket(f"line {number}: expected a clip path, got {path[:40]!r}")
        if len(block) < 4:
            raise MalformedPacket(f"line {number}: clip {path[:40]!r} is truncated")
        series = [
            _values(line, name, n) for (n, line), name in zip(block[1:], _SERIES, strict=True)
        ]
        if len({len(s) for s in series}) != 1:
            raise MalformedPacket(f"line {number}: clip {path[:40]!r} has series of unequal length")
        readings = tuple(Reading(a, b, c) for a, b, c in zip(*series, strict=True))
        clips.append(Clip(path, label_of(path), readings, distance_cm, len(clips)))
    return tuple(clips)


def labelled(clips: Sequence[Clip]) -> tuple[Clip, ...]:
    """The clips with a label and at least one reading."""
    return tuple(c for c in clips if c.label is not None and c.readings)


# -- features -------------------------------------------------------------------------------------


def reading_features(readings: Sequence[Reading]) -> npt.NDArray[np.float64]:
    """One row per reading: max, mean, min, then the spreads max-min, max-mean, mean-min.

    The study's data carries its information in the spread within a minute (the mean alone
    scores 30-51 %), so the spreads are given to the model as they are, not left to it to find.
    """
    values = np.array([(r.maximum, r.mean, r.minimum) for r in readings], dtype=np.float64)
    values = values.reshape(-1, 3)
    top, middle, bottom = values[:, 0], values[:, 1], values[:, 2]
    return np.column_stack([top, middle, bottom, top - bottom, top - middle, middle - bottom])


def _expand(standard: npt.NDArray[np.float64], degree: int) -> npt.NDArray[np.float64]:
    """The standardised features, their pairwise products and squares (degree 2), and a 1."""
    columns = [standard]
    if degree >= 2:
        upper = np.triu_indices(standard.shape[1])
        columns.append((standard[:, :, None] * standard[:, None, :])[:, upper[0], upper[1]])
    columns.append(np.ones((standard.shape[0], 1)))
    return np.hstack(columns)


def _softmax(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float64)


# -- the models -----------------------------------------------------------------------------------

VOTE_FLOOR: Final = 1e-6
"""Added to every class's share of the neighbours' votes (a prototype model): a class no
neighbour votes for keeps a small probability, so a window of readings is not vetoed outright."""


class _Windows:
    """What every model does with readings: probabilities per reading, and per window."""

    classes: tuple[str, ...]

    def reading_probabilities(self, readings: Sequence[Reading]) -> npt.NDArray[np.float64]:
        """One row of class probabilities per reading."""
        raise NotImplementedError

    def window_probabilities(self, readings: Sequence[Reading], k: int) -> npt.NDArray[np.float64]:
        """Class probabilities of each window of ``k`` consecutive readings (one row a start).

        The readings' log-probabilities add up (each minute is another look at the same
        activity; the classes were weighted to equal priors in training, so no prior is
        counted twice), then are normalised again.
        """
        if k < 1:
            raise ValueError(f"window of {k} readings")
        if len(readings) < k:
            return np.zeros((0, len(self.classes)))
        logs = np.log(np.clip(self.reading_probabilities(readings), 1e-12, 1.0))
        total = np.cumsum(np.vstack([np.zeros((1, logs.shape[1])), logs]), axis=0)
        return _softmax(total[k:] - total[:-k])


def _standard(
    readings: Sequence[Reading],
    columns: tuple[int, ...],
    centre: npt.NDArray[np.float64],
    scale: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    return np.asarray((reading_features(readings)[:, list(columns)] - centre) / scale)


@dataclass(frozen=True)
class Model(_Windows):
    """Multinomial logistic regression on one reading's features (and their products).

    ``columns`` picks the features of :func:`reading_features` used; ``centre`` and ``scale``
    standardise them; ``weights`` maps the expanded features to one score per class.
    """

    classes: tuple[str, ...]
    columns: tuple[int, ...]
    degree: int
    centre: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]
    about: str = ""

    def reading_probabilities(self, readings: Sequence[Reading]) -> npt.NDArray[np.float64]:
        standard = _standard(readings, self.columns, self.centre, self.scale)
        return _softmax(_expand(standard, self.degree) @ self.weights)

    def to_json(self) -> dict[str, object]:
        return {
            "format": MODEL_FORMAT,
            "kind": "logistic",
            "classes": list(self.classes),
            "columns": list(self.columns),
            "degree": self.degree,
            "centre": self.centre.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "about": self.about,
        }

    @classmethod
    def from_json(cls, document: object) -> Model:
        """A model from :meth:`to_json`'s document; :class:`MalformedPacket` when it is not one."""
        document = _document(document, "logistic")
        try:
            classes = tuple(str(c) for c in document["classes"])
            columns = tuple(int(c) for c in document["columns"])
            degree = int(document["degree"])
            centre = np.array(document["centre"], dtype=np.float64)
            scale = np.array(document["scale"], dtype=np.float64)
            weights = np.array(document["weights"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedPacket(f"activity model: {error}") from None
        width = len(columns)
        expanded = width + (width * (width + 1) // 2 if degree >= 2 else 0) + 1
        if (
            not _standardises(columns, centre, scale)
            or weights.shape != (expanded, len(classes))
            or not np.all(np.isfinite(weights))
        ):
            raise MalformedPacket("activity model: its arrays do not fit together")
        about = str(document.get("about", ""))
        return cls(classes, columns, degree, centre, scale, weights, about)


@dataclass(frozen=True)
class PrototypeModel(_Windows):
    """k nearest neighbours over prototypes: each prototype the mean of a group of one class's
    training readings (standardised features), with the number of readings it stands for.

    A reading's ``k`` nearest training readings are approximated by its nearest prototypes,
    taken whole until their counts reach ``k`` (the last one in part); each class's share of
    those votes is divided by the class's number of training readings (equal priors), floored
    at :data:`VOTE_FLOOR` and normalised. Prototypes, not readings: the model ships averages of
    at least :attr:`Prototypes.smallest` readings, never one reading of the study's data.
    """

    classes: tuple[str, ...]
    columns: tuple[int, ...]
    centre: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    prototypes: npt.NDArray[np.float64]
    counts: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    totals: npt.NDArray[np.float64]
    k: int
    about: str = ""

    def reading_probabilities(self, readings: Sequence[Reading]) -> npt.NDArray[np.float64]:
        standard = _standard(readings, self.columns, self.centre, self.scale)
        distances = ((standard[:, None, :] - self.prototypes[None, :, :]) ** 2).sum(axis=2)
        order = np.argsort(distances, axis=1, kind="stable")
        counts = self.counts[order]
        before = np.cumsum(counts, axis=1) - counts
        taken = np.clip(self.k - before, 0.0, counts)
        labels = self.labels[order]
        votes = np.column_stack(
            [(taken * (labels == c)).sum(axis=1) for c in range(len(self.classes))]
        )
        shares = votes / self.totals + VOTE_FLOOR
        return np.asarray(shares / shares.sum(axis=1, keepdims=True), dtype=np.float64)

    def to_json(self) -> dict[str, object]:
        return {
            "format": MODEL_FORMAT,
            "kind": "prototypes",
            "classes": list(self.classes),
            "columns": list(self.columns),
            "centre": self.centre.tolist(),
            "scale": self.scale.tolist(),
            "k": self.k,
            "totals": self.totals.tolist(),
            "prototypes": [
                {"class": self.classes[int(label)], "readings": int(count), "at": row.tolist()}
                for row, count, label in zip(self.prototypes, self.counts, self.labels, strict=True)
            ],
            "about": self.about,
        }

    @classmethod
    def from_json(cls, document: object) -> PrototypeModel:
        """A model from :meth:`to_json`'s document; :class:`MalformedPacket` when it is not one."""
        document = _document(document, "prototypes")
        try:
            classes = tuple(str(c) for c in document["classes"])
            columns = tuple(int(c) for c in document["columns"])
            centre = np.array(document["centre"], dtype=np.float64)
            scale = np.array(document["scale"], dtype=np.float64)
            k = int(document["k"])
            totals = np.array(document["totals"], dtype=np.float64)
            entries = list(document["prototypes"])
            prototypes = np.array([e["at"] for e in entries], dtype=np.float64)
            counts = np.array([e["readings"] for e in entries], dtype=np.float64)
            labels = np.array([classes.index(str(e["class"])) for e in entries], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedPacket(f"activity model: {error}") from None
        if (
            not _standardises(columns, centre, scale)
            or k < 1
            or totals.shape != (len(classes),)
            or not np.all(totals > 0)
            or prototypes.shape != (len(entries), len(columns))
            or not entries
            or not np.all(np.isfinite(prototypes))
            or not np.all(counts > 0)
        ):
            raise MalformedPacket("activity model: its arrays do not fit together")
        about = str(document.get("about", ""))
        return cls(classes, columns, centre, scale, prototypes, counts, labels, totals, k, about)


AnyModel = Model | PrototypeModel
"""A trained activity model of either kind."""

MODEL_FORMAT: Final = "mutecheck-activity-1"


def _document(document: object, kind: str) -> dict[str, Any]:
    if not isinstance(document, dict) or document.get("format") != MODEL_FORMAT:
        raise MalformedPacket(f"not a mutecheck activity model (format {MODEL_FORMAT!r})")
    if document.get("kind", "logistic") != kind:
        raise MalformedPacket(f"activity model: of kind {document.get('kind')!r}, not {kind!r}")
    return document


def _standardises(
    columns: tuple[int, ...], centre: npt.NDArray[np.float64], scale: npt.NDArray[np.float64]
) -> bool:
    width = len(columns)
    return (
        centre.shape == (width,)
        and scale.shape == (width,)
        and all(0 <= c < 6 for c in columns)
        and bool(np.all(scale > 0))
    )


# -- training recipes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Logistic:
    """Train a :class:`Model`: which features, the expansion, the penalty and the steps."""

    columns: tuple[int, ...] = (0, 1, 2)
    degree: int = 2
    penalty: float = 1e-3
    steps: int = 3000
    rate: float = 0.5

    @property
    def name(self) -> str:
        columns = _column_names(self.columns)
        return f"logistic, {columns}, degree {self.degree}, penalty {self.penalty:g}"

    def fit(self, clips: Sequence[Clip], about: str = "") -> Model:
        """Full-batch gradient descent on the class-weighted log-loss (deterministic: no random
        start, no shuffling); every reading of every labelled clip is one example."""
        features, targets = _rows(clips)
        features = features[:, list(self.columns)]
        centre, scale = _centre_scale(features)
        design = _expand((features - centre) / scale, self.degree)
        count = len(CLASSES)
        onehot = np.eye(count)[targets]
        per_class = np.bincount(targets, minlength=count).clip(1)
        sample_weight = (len(targets) / (count * per_class))[targets][:, None] / len(targets)
        weights = np.zeros((design.shape[1], count))
        for _ in range(self.steps):
            error = (_softmax(design @ weights) - onehot) * sample_weight
            weights -= self.rate * (design.T @ error + self.penalty * weights)
        return Model(CLASSES, self.columns, self.degree, centre, scale, weights, about)


@dataclass(frozen=True)
class Prototypes:
    """Train a :class:`PrototypeModel`: k-means inside each class, one prototype per ``per``
    readings on average, groups of fewer than ``smallest`` readings merged into their nearest
    neighbours; ``k`` neighbours vote (at most the smallest class's number of readings: with
    equal priors more would only count whole classes)."""

    columns: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    per: int = 16
    k: int = 100
    iterations: int = 25
    smallest: int = 3

    @property
    def name(self) -> str:
        return (
            f"prototype k-NN, {_column_names(self.columns)}, "
            f"{self.per} readings a prototype, k {self.k}"
        )

    def fit(self, clips: Sequence[Clip], about: str = "") -> PrototypeModel:
        features, targets = _rows(clips)
        features = features[:, list(self.columns)]
        centre, scale = _centre_scale(features)
        standard = (features - centre) / scale
        groups, counts, labels = [], [], []
        for label in np.unique(targets):
            mine = standard[targets == label]
            at, sizes = _prototypes(mine, math.ceil(len(mine) / self.per), self)
            groups.append(at)
            counts.append(sizes)
            labels.append(np.full(len(sizes), label, dtype=np.int64))
        totals = np.bincount(targets, minlength=len(CLASSES)).astype(np.float64)
        present = totals[totals > 0]
        return PrototypeModel(
            CLASSES,
            self.columns,
            centre,
            scale,
            np.vstack(groups),
            np.concatenate(counts).astype(np.float64),
            np.concatenate(labels),
            totals.clip(1.0),
            int(min(self.k, present.min())),
            about,
        )


Recipe = Logistic | Prototypes
"""How to train a model (a candidate of the selection)."""


def _column_names(columns: tuple[int, ...]) -> str:
    names = ("max", "mean", "min", "max-min", "max-mean", "mean-min")
    return "/".join(names[c] for c in columns)


def _centre_scale(
    features: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    centre = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale == 0] = 1.0
    return centre, scale


def _nearest(
    points: npt.NDArray[np.float64], centres: npt.NDArray[np.float64]
) -> npt.NDArray[np.intp]:
    return np.asarray(((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1))


def _prototypes(
    points: npt.NDArray[np.float64], wanted: int, recipe: Prototypes
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """k-means of one class's readings (deterministic: starts at evenly spaced ranks of the
    feature sum), then groups smaller than ``recipe.smallest`` merged into the nearest others."""
    wanted = max(1, min(wanted, len(np.unique(points, axis=0))))
    order = np.argsort(points.sum(axis=1), kind="stable")
    centres = points[order[np.linspace(0, len(points) - 1, wanted).astype(int)]].copy()
    for _ in range(recipe.iterations):
        nearest = _nearest(points, centres)
        for j in range(len(centres)):
            if (nearest == j).any():
                centres[j] = points[nearest == j].mean(axis=0)
    nearest = _nearest(points, centres)
    sizes = np.bincount(nearest, minlength=len(centres))
    keep = sizes >= recipe.smallest
    if keep.any() and not keep.all():
        nearest = _nearest(points, centres[keep])
        centres = np.array([points[nearest == j].mean(axis=0) for j in range(int(keep.sum()))])
        sizes = np.bincount(nearest, minlength=len(centres))
    used = sizes > 0
    return centres[used], sizes[used].astype(np.int64)


CANDIDATES: Final[tuple[Recipe, ...]] = (
    Logistic(columns=(0, 1, 2), degree=1),
    Logistic(columns=(0, 1, 2), degree=2, penalty=1e-4),
    Logistic(columns=(0, 1, 2), degree=2, penalty=1e-3),
    Logistic(columns=(0, 1, 2), degree=2, penalty=1e-2),
    Logistic(columns=(0, 1, 2, 3, 4, 5), degree=2, penalty=1e-3),
    *(Prototypes(per=per, k=k) for per in (4, 8, 16, 32) for k in (25, 50, 100)),
)
"""The models the selection compares (:func:`select`), in the order ties are broken."""

CHOSEN: Final[Recipe] = Prototypes(per=4, k=50)
"""What :func:`select_across` picks on the study's two sessions (``new`` -> ``old`` and
``old`` -> ``new``; a test checks it with the data); the shipped model is this recipe trained
on all of ``new``. (:func:`select` inside ``new`` alone picks ``Prototypes(per=32, k=100)``,
which carries over worse: docs/methodology.md section 9.)"""


def _rows(clips: Sequence[Clip]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    chosen = labelled(clips)
    if not chosen:
        raise ValueError("no labelled clip with readings to learn from")
    features = np.vstack([reading_features(c.readings) for c in chosen])
    targets = np.concatenate(
        [np.full(len(c.readings), CLASSES.index(str(c.label))) for c in chosen]
    ).astype(np.int64)
    return features, targets


def train(clips: Sequence[Clip], recipe: Recipe = CHOSEN, about: str = "") -> AnyModel:
    """A model of ``recipe`` trained on every reading of every labelled clip; each class weighs
    the same in total (the sessions hold 2-6 times more of some classes than of others)."""
    return recipe.fit(clips, about)


# -- evaluation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """A model scored on windows of ``k`` consecutive readings of clips it never saw.

    ``confusion[i][j]``: windows of class ``classes[i]`` predicted as ``classes[j]``. Windows
    never cross a clip. The macro accuracy is the mean of the per-class recalls over the
    classes that have windows.
    """

    k: int
    classes: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    by_distance: tuple[tuple[int | None, float], ...]

    @property
    def windows(self) -> int:
        return sum(map(sum, self.confusion))

    @property
    def recalls(self) -> dict[str, float]:
        """Per class with windows: the share of its windows predicted right."""
        return {
            name: row[i] / sum(row)
            for i, (name, row) in enumerate(zip(self.classes, self.confusion, strict=True))
            if sum(row)
        }

    @property
    def macro_accuracy(self) -> float:
        recalls = self.recalls
        return sum(recalls.values()) / len(recalls) if recalls else float("nan")


def _confusion(model: AnyModel, clips: Sequence[Clip], k: int) -> npt.NDArray[np.int64]:
    count = len(model.classes)
    matrix = np.zeros((count, count), dtype=np.int64)
    for clip in labelled(clips):
        truth = model.classes.index(str(clip.label))
        predicted = model.window_probabilities(clip.readings, k).argmax(axis=1)
        matrix[truth] += np.bincount(predicted, minlength=count)
    return matrix


def _macro(matrix: npt.NDArray[np.int64]) -> float:
    totals = matrix.sum(axis=1)
    present = totals > 0
    return float(np.mean(np.diag(matrix)[present] / totals[present])) if present.any() else 0.0


def evaluate(model: AnyModel, clips: Sequence[Clip], k: int = 1) -> Evaluation:
    """Score ``model`` on every window of ``k`` readings of ``clips``, overall and per distance."""
    matrix = _confusion(model, clips, k)
    distances = sorted({c.distance_cm for c in clips}, key=lambda d: (d is None, d or 0))
    by_distance = tuple(
        (d, _macro(_confusion(model, [c for c in clips if c.distance_cm == d], k)))
        for d in distances
    )
    rows = tuple(tuple(int(v) for v in row) for row in matrix)
    return Evaluation(k, model.classes, rows, by_distance)


# -- model selection inside one session ---------------------------------------------------------

SELECTION_FOLDS: Final = 4
"""Folds of whole clips for :func:`select`'s cross-validation."""

SELECTION_WINDOWS: Final = (1, 3)
"""Readings per window scored in the selection: one minute decides, three minutes break ties."""


def clip_folds(clips: Sequence[Clip], folds: int = SELECTION_FOLDS) -> tuple[int, ...]:
    """The fold of each labelled clip (in :func:`labelled`'s order): sorted by class, distance,
    path and position, then dealt out in turn, so every class spreads over the folds as evenly
    as its clips allow. Deterministic; whole clips, so no window crosses from one fold to
    another."""
    chosen = labelled(clips)
    order = sorted(
        range(len(chosen)),
        key=lambda i: (
            CLASSES.index(str(chosen[i].label)),
            chosen[i].distance_cm or 0,
            chosen[i].path,
            chosen[i].index,
        ),
    )
    fold = [0] * len(chosen)
    for turn, i in enumerate(order):
        fold[i] = turn % folds
    return tuple(fold)


def cross_validate(
    recipe: Recipe,
    clips: Sequence[Clip],
    folds: int = SELECTION_FOLDS,
    windows: Sequence[int] = SELECTION_WINDOWS,
) -> tuple[float, ...]:
    """Macro accuracy of ``recipe`` per window length when each fold of whole clips
    (:func:`clip_folds`) is scored by a model trained on the other folds; the confusions of
    all folds are added up before the recalls are taken."""
    chosen = labelled(clips)
    if len(chosen) < folds:
        raise ValueError(f"a {folds}-fold selection needs at least {folds} labelled clips")
    fold = clip_folds(chosen, folds)
    count = len(CLASSES)
    totals = {k: np.zeros((count, count), dtype=np.int64) for k in windows}
    for held in range(folds):
        training = [c for c, f in zip(chosen, fold, strict=True) if f != held]
        testing = [c for c, f in zip(chosen, fold, strict=True) if f == held]
        model = recipe.fit(training)
        for k in windows:
            totals[k] += _confusion(model, testing, k)
    return tuple(_macro(totals[k]) for k in windows)


@dataclass(frozen=True)
class Selection:
    """Every candidate's cross-validated macro accuracy inside one session, and the choice.

    ``scores[i]`` holds ``candidates[i]``'s accuracy per window length of ``windows``; the
    chosen one is the best from one reading, then from three, then the first listed.
    """

    folds: int
    clips: int
    windows: tuple[int, ...]
    candidates: tuple[Recipe, ...]
    scores: tuple[tuple[float, ...], ...]

    @property
    def chosen(self) -> Recipe:
        best = max(range(len(self.candidates)), key=lambda i: (*self.scores[i], -i))
        return self.candidates[best]


def select(
    clips: Sequence[Clip],
    candidates: Sequence[Recipe] = CANDIDATES,
    folds: int = SELECTION_FOLDS,
) -> Selection:
    """Choose a model using only ``clips`` (one recording session): clip-grouped
    cross-validation of every candidate (:func:`cross_validate`)."""
    scores = tuple(cross_validate(r, clips, folds) for r in candidates)
    return Selection(folds, len(labelled(clips)), SELECTION_WINDOWS, tuple(candidates), scores)


# -- model selection across sessions --------------------------------------------------------------


@dataclass(frozen=True)
class CrossSelection:
    """Every candidate trained on all of one recording session and scored on each other one
    (leave-one-session-out), and the choice.

    ``scores[i][j]`` holds ``candidates[i]``'s macro accuracy per window length of ``windows``
    when trained on ``pairs[j][0]`` and tested on ``pairs[j][1]``. The chosen one has the best
    mean over the pairs from one reading, then from three, then is the first listed. The pairs
    that score the candidates are the ones the chosen recipe is then reported on: its figures
    include the choice (with two sessions there is none left to hold out).
    """

    pairs: tuple[tuple[str, str], ...]
    windows: tuple[int, ...]
    candidates: tuple[Recipe, ...]
    scores: tuple[tuple[tuple[float, ...], ...], ...]

    def mean(self, index: int) -> tuple[float, ...]:
        """``candidates[index]``'s accuracy per window length, averaged over the pairs."""
        rows = self.scores[index]
        return tuple(sum(row[w] for row in rows) / len(rows) for w in range(len(self.windows)))

    @property
    def chosen(self) -> Recipe:
        best = max(range(len(self.candidates)), key=lambda i: (*self.mean(i), -i))
        return self.candidates[best]


def select_across(
    sessions: Mapping[str, Sequence[Clip]],
    candidates: Sequence[Recipe] = CANDIDATES,
    windows: Sequence[int] = SELECTION_WINDOWS,
) -> CrossSelection:
    """Choose a model by how it carries over from one recording session to another: each
    candidate is trained on every session with labels and scored on each other one
    (:class:`CrossSelection`). Inside one session, cross-validation cannot see what changes
    between set-ups (loudness, distance, the clips themselves), and on the study's data its
    ranking does not follow the cross-session one (docs/methodology.md section 9)."""
    chosen = {name: labelled(clips) for name, clips in sessions.items()}
    chosen = {name: clips for name, clips in chosen.items() if clips}
    if len(chosen) < 2:
        raise ValueError("a selection across sessions needs two sessions with labelled clips")
    pairs = tuple((a, b) for a in chosen for b in chosen if a != b)
    scores = []
    for recipe in candidates:
        models = {name: recipe.fit(clips) for name, clips in chosen.items()}
        scores.append(
            tuple(
                tuple(evaluate(models[a], chosen[b], k).macro_accuracy for k in windows)
                for a, b in pairs
            )
        )
    return CrossSelection(pairs, tuple(windows), tuple(candidates), tuple(scores))


# -- files ----------------------------------------------------------------------------------------


def session_of(name: str) -> str:
    """The recording session a file belongs to: its name up to ``_data`` (``new_data_10cm.txt``
    -> ``new``), else its stem."""
    stem = name.rsplit(".", 1)[0]
    return stem.split("_data", 1)[0] if "_data" in stem else stem


def read_sessions(texts: Sequence[tuple[str, str]]) -> dict[str, tuple[Clip, ...]]:
    """(file name, text) pairs -> clips per session (:func:`session_of`), in the given order."""
    sessions: dict[str, list[Clip]] = {}
    for name, text in texts:
        sessions.setdefault(session_of(name), []).extend(parse_clips(text, distance_of(name)))
    return {session: tuple(clips) for session, clips in sessions.items()}


SHIPPED_MODEL: Final = "activity_model.json"
"""The model shipped in this package (its source and protocol: ``activity_model.md`` beside it)."""


def load_model(text: str) -> AnyModel:
    """A model from its JSON text (either kind); :class:`MalformedPacket` when it is not one."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise MalformedPacket(f"activity model is not JSON: {error}") from None
    if isinstance(document, dict) and document.get("kind") == "prototypes":
        return PrototypeModel.from_json(document)
    return Model.from_json(document)


@functools.cache
def shipped_model() -> AnyModel:
    """The model that ships with mutecheck (trained on the study's ``new`` session)."""
    text = resources.files(__package__ or "decoders.audit").joinpath(SHIPPED_MODEL).read_text()
    return load_model(text)


# -- telemetry seen by the addon ------------------------------------------------------------------


@dataclass(frozen=True)
class GainShape:
    """Three telemetry fields that behave as a minute's max, mean and min gain (by path)."""

    maximum: str
    mean: str
    minimum: str


MAX_FIELDS_PER_OBJECT: Final = 16
"""An object with more numbers is not a gain summary (and 16 fields are 3,360 ordered triples)."""

MAX_OBJECTS: Final = 64
"""Objects searched, in path order: a hostile body of thousands of objects costs no more."""


def _parent(path: str) -> str:
    return path.rpartition(".")[0]


def gain_shape(messages: Sequence[Mapping[str, float]]) -> GainShape | None:
    """Three fields of one object that behave as max >= mean >= min in every message, or None.

    Mapped by behaviour, not by name: in each message (field path -> value) the fields under
    one parent object are candidates; a triple counts when the three appear together in at
    least one message, are ordered the same way in every message that has them, and the top
    and bottom differ at least once (a flat triple tells nothing). Roles go by that order,
    whatever the names say. The first parent (in path order) with such a triple wins; objects
    of more than :data:`MAX_FIELDS_PER_OBJECT` numbers, and objects after the first
    :data:`MAX_OBJECTS`, are not searched.
    """
    by_parent: dict[str, set[str]] = {}
    for message in messages:
        for path in message:
            by_parent.setdefault(_parent(path), set()).add(path)
    for parent in sorted(by_parent)[:MAX_OBJECTS]:
        paths = sorted(by_parent[parent])
        if len(paths) > MAX_FIELDS_PER_OBJECT:
            continue
        for triple in itertools.permutations(paths, 3):
            if _ordered(messages, triple):
                return GainShape(*triple)
    return None


def _ordered(messages: Sequence[Mapping[str, float]], triple: tuple[str, str, str]) -> bool:
    top, middle, bottom = triple
    seen = spread = False
    for message in messages:
        if not all(p in message for p in triple):
            continue
        seen = True
        if not message[top] >= message[middle] >= message[bottom]:
            return False
        spread = spread or message[top] > message[bottom]
    return seen and spread


def telemetry_messages(events: Iterable[Event]) -> list[dict[str, float]]:
    """Each sent telemetry event's numbers (path -> value), in time order
    (:func:`decoders.audit.messages.telemetry_from_events` reads the events)."""
    return field_values(telemetry_from_events(events))


def field_values(messages: Iterable[TelemetryMessage]) -> list[dict[str, float]]:
    """Each message's finite numbers (booleans left out) as path -> value; empty ones dropped."""
    out = []
    for message in messages:
        values = {
            path: float(value)
            for path, value in message.fields
            if not isinstance(value, bool) and math.isfinite(value)
        }
        if values:
            out.append(values)
    return out


def telemetry_readings(
    messages: Sequence[Mapping[str, float]],
) -> tuple[GainShape, tuple[Reading, ...]] | None:
    """The readings of the messages that carry a max/mean/min triple (:func:`gain_shape`), or
    None when no three fields behave that way: no model exists for other shapes."""
    shape = gain_shape(messages)
    if shape is None:
        return None
    triple = (shape.maximum, shape.mean, shape.minimum)
    readings = tuple(
        Reading(m[shape.maximum], m[shape.mean], m[shape.minimum])
        for m in messages
        if all(p in m for p in triple)
    )
    return shape, readings


def in_range(model: AnyModel, readings: Sequence[Reading], spread: float = 3.0) -> float:
    """The share of readings whose values lie within ``spread`` standard deviations of the
    training data's mean: the model knows one app's gain scale (Webex: integers about 4-55);
    values on another scale are outside it, and its reading of them means nothing. A coarse
    check (the shipped model: max 9-69, mean 3-61, min -5 to 50): a scale that overlaps
    Webex's passes it without being Webex's."""
    if not readings:
        return 0.0
    features = reading_features(readings)[:, list(model.columns)]
    inside = np.abs(features - model.centre) <= spread * model.scale
    return float(inside.all(axis=1).mean())


# -- what an observer could infer (for the audit's findings) -------------------------------------

SHIPPED_ACCURACY: Final = {1: 0.825, 2: 0.856, 3: 0.860, 4: 0.864, 5: 0.864}
"""The shipped model's macro accuracy by readings per window, trained on the study's ``new``
session and tested on ``old`` (``mutecheck activity evaluate``; a test recomputes it when
``MUTECHECK_BGACTIVITY`` names the data). Its recipe was chosen by these figures and the
``old`` -> ``new`` ones (:func:`select_across`), so they include the choice."""

MODEL_PERIOD_S: Final = 60.0
"""The period of the readings the model learnt from: Webex sent one a minute."""

PERIOD_TOLERANCE: Final = 1.25
"""Readings whose period is within this factor of :data:`MODEL_PERIOD_S` count as the same."""


@dataclass(frozen=True)
class Inference:
    """What the activity model reads in telemetry that left while muted.

    ``shape`` None: no three fields behave as max/mean/min, and no model exists for what did
    leave (``reason`` says so). Otherwise ``shares`` is the share of windows per class,
    ``accuracy`` the model's measured macro accuracy at ``window`` readings (None when not
    measured), and ``on_scale`` the share of readings on the model's scale. ``period_s`` is the
    median time between consecutive readings (None with fewer than two): the model learnt
    one-minute readings (:data:`MODEL_PERIOD_S`), and its accuracy is for those.
    """

    readings: int
    shape: GainShape | None
    window: int = 1
    shares: tuple[tuple[str, float], ...] = ()
    accuracy: float | None = None
    on_scale: float = 0.0
    reason: str = ""
    period_s: float | None = None

    @property
    def same_period(self) -> bool | None:
        """Whether the readings come about once a minute, as the model's did (None: unknown)."""
        if self.period_s is None:
            return None
        ratio = self.period_s / MODEL_PERIOD_S
        return 1 / PERIOD_TOLERANCE <= ratio <= PERIOD_TOLERANCE

    @property
    def likeliest(self) -> str | None:
        return max(self.shares, key=lambda item: item[1])[0] if self.shares else None


def infer(
    messages: Sequence[TelemetryMessage],
    model: AnyModel | None = None,
    window: int = 1,
) -> Inference:
    """The model's reading of ``messages`` (telemetry sent while muted), by windows of
    ``window`` consecutive readings; the shipped model unless another is given."""
    found = telemetry_readings(field_values(messages))
    if found is None:
        reason = (
            "no three fields behave as a max, a mean and a min: "
            "no activity model exists for the values that left"
        )
        return Inference(0, None, window, reason=reason)
    shape, readings = found
    period = reading_period(messages, shape)
    chosen = model or shipped_model()
    rows = chosen.window_probabilities(readings, window)
    if not len(rows):
        reason = f"fewer than {window} readings"
        return Inference(len(readings), shape, window, reason=reason, period_s=period)
    counts = np.bincount(rows.argmax(axis=1), minlength=len(chosen.classes))
    shares = tuple(
        (name, float(count) / len(rows))
        for name, count in sorted(zip(chosen.classes, counts, strict=True), key=lambda c: -c[1])
        if count
    )
    accuracy = SHIPPED_ACCURACY.get(window) if model is None else None
    on_scale = in_range(chosen, readings)
    return Inference(len(readings), shape, window, shares, accuracy, on_scale, period_s=period)


def reading_period(messages: Sequence[TelemetryMessage], shape: GainShape) -> float | None:
    """The median seconds between consecutive messages that carry the whole max/mean/min
    triple (the proxy's clock), or None with fewer than two of them."""
    triple = {shape.maximum, shape.mean, shape.minimum}
    times = sorted(m.t for m in messages if triple <= {path for path, _ in m.fields})
    if len(times) < 2:
        return None
    return float(np.median(np.diff(times)))


def inference_numbers(inference: Inference) -> dict[str, object]:
    """The inference as a finding's numbers (report.json: ``observer_inference``)."""
    shape = inference.shape
    return {
        "model": SHIPPED_MODEL if shape is not None else None,
        "readings": inference.readings,
        "max_field": shape.maximum if shape else None,
        "mean_field": shape.mean if shape else None,
        "min_field": shape.minimum if shape else None,
        "window_readings": inference.window,
        "likeliest": inference.likeliest,
        "shares": [{"class": name, "share": round(share, 4)} for name, share in inference.shares],
        "accuracy": inference.accuracy,
        "on_scale": round(inference.on_scale, 4),
        "period_s": None if inference.period_s is None else round(inference.period_s, 3),
        "model_period_s": MODEL_PERIOD_S,
        "same_period": inference.same_period,
        "reason": inference.reason or None,
    }


def inference_text(inference: Inference) -> str:
    """One sentence: what the leaked values let an observer infer."""
    shape = inference.shape
    if shape is None or not inference.shares:
        return f"what this lets an observer infer: {inference.reason}"
    shares = ", ".join(f"{name} {share:.0%}" for name, share in inference.shares[:3])
    measured = (
        f"; the model's measured accuracy from {inference.window} reading(s): "
        f"{inference.accuracy:.0%} macro, on other recordings"
        if inference.accuracy is not None
        else ""
    )
    scale = (
        f"; {1 - inference.on_scale:.0%} of the values lie off the model's scale "
        "(it knows Webex's gain), so its reading of them means little"
        if inference.on_scale < 1
        else ""
    )
    return (
        f"what this lets an observer infer: {shape.maximum}, {shape.mean} and {shape.minimum} "
        f"behave as a max, mean and min; the background-activity model (PETS 2022 data) reads "
        f"{inference.readings} reading(s) as {shares}{measured}{scale}{_period_text(inference)}"
    )


def _period_text(inference: Inference) -> str:
    """What the readings' period means for the model's figures."""
    if inference.period_s is None:
        return "; one reading: its period is not known (the model learnt one-minute readings)"
    if inference.same_period:
        return f"; one reading every {inference.period_s:.0f} s, as the model learnt"
    return (
        f"; one reading every {inference.period_s:.0f} s, but the model learnt one-minute "
        "readings: over another period the max, mean and min spread differently, so its "
        "accuracy figures do not apply"
    )
