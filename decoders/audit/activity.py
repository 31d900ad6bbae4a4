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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from decoders.errors import MalformedPacket

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
