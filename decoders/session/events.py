"""``events.jsonl``: what the proxy saw during a call, one JSON object a line (format version 1).

The addon writes it while the call runs; the analyser reads it afterwards. Every line is a JSON
object with at least ``t`` (Unix epoch seconds, float, the proxy's clock) and ``kind``, one of
:data:`KINDS`; docs/session-format.md lists every field of every kind. Lines are written whole and
flushed one at a time, so a proxy killed with ``kill -9`` loses at most the line being written, and
:func:`read_events` skips such a cut last line.

:class:`MuteTimeline` merges the mute states of three sources (``mark``: the person testing;
``app``: what the app itself signalled; ``rule``: a user rule) into one timeline. A source
counts only when it changes its own state (an app repeating "unmuted" every ten seconds does not
undo a mark), and then the latest change of any source decides.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

from decoders.errors import MalformedPacket

FORMAT: Final = "mutecheck-events"
VERSION: Final = 1
KINDS: Final = ("session_start", "sdp", "mute", "telemetry", "blocked", "warning", "media")
SOURCES: Final = ("mark", "app", "rule")

Event = dict[str, Any]


def make_event(kind: str, t: float, **fields: Any) -> Event:
    """An event object: ``t`` and ``kind`` first, then the kind's fields."""
    if kind not in KINDS:
        raise ValueError(f"event kind {kind!r} is not one of {', '.join(KINDS)}")
    return {"t": round(t, 6), "kind": kind, **fields}


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""Made once: json.dumps with options builds a new encoder for every event the proxy writes."""


def encode_event(event: Event) -> str:
    """One line of JSON (no newline); NaN and infinities become null, unknown types text."""
    try:
        return _ENCODER.encode(event)
    except (ValueError, TypeError):
        return _ENCODER.encode(_plain(event))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class EventWriter:
    """Appends events to a file opened for binary writing, one line each, each line handed to
    the system at once (``open(path, "ab", buffering=0)``: one write call a line; through a text
    stream's write and flush a line cost the proxy ~10x more, measured with bench_addon.py)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.written = 0

    def write(self, event: Event) -> None:
        data = memoryview((encode_event(event) + "\n").encode())
        while data:
            count = self.stream.write(data)
            data = data[count if count is not None else len(data) :]
        self.stream.flush()  # nothing to do for an unbuffered file; a buffered one must not keep it
        self.written += 1

    def write_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.write(event)


def read_events(stream: IO[bytes]) -> Iterator[Event]:
    """The events of an open ``events.jsonl`` (binary mode), in file order.

    Blank lines are skipped; a last line without its newline that is not JSON is the line a
    killed writer was writing and is skipped too. Any other line that is not a JSON object with
    a numeric ``t`` and a string ``kind`` raises MalformedPacket naming the line.
    """
    number = 0
    for raw in stream:
        number += 1
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except ValueError as error:
            if not raw.endswith(b"\n"):
                return
            raise MalformedPacket(f"events.jsonl line {number} is not JSON: {error}") from error
        if not isinstance(event, dict):
            raise MalformedPacket(f"events.jsonl line {number} is not a JSON object")
        t = event.get("t")
        if not isinstance(t, int | float) or isinstance(t, bool):
            raise MalformedPacket(f"events.jsonl line {number} has no numeric t")
        if not isinstance(event.get("kind"), str):
            raise MalformedPacket(f"events.jsonl line {number} has no kind")
        yield event


@dataclass(frozen=True, slots=True)
class MuteChange:
    """The merged mute state changed at ``t`` because ``source`` said so."""

    t: float
    muted: bool
    source: str


class MuteTimeline:
    """Mute state over time, merged from marks, app signals and rules (see the module docstring).

    ``max_changes`` bounds the history kept for :meth:`state_at` and :meth:`intervals` (the oldest
    changes are forgotten first); the current state is always known.
    """

    def __init__(self, *, max_changes: int | None = None) -> None:
        self._changes: list[MuteChange] = []
        self._times: list[float] = []
        self._sources: dict[str, bool] = {}
        self._max_changes = max_changes

    @property
    def muted(self) -> bool | None:
        """The current merged state; None until some source said something."""
        return self._changes[-1].muted if self._changes else None

    @property
    def changed_at(self) -> float | None:
        """When the merged state last changed."""
        return self._changes[-1].t if self._changes else None

    @property
    def changes(self) -> tuple[MuteChange, ...]:
        return tuple(self._changes)

    def source_state(self, source: str) -> bool | None:
        """The last state ``source`` said, or None."""
        return self._sources.get(source)

    def update(self, t: float, muted: bool, source: str) -> tuple[bool, bool]:
        """``source`` says ``muted`` at ``t``: (did the source change, did the merged state)."""
        if source not in SOURCES:
            raise ValueError(f"mute source {source!r} is not one of {', '.join(SOURCES)}")
        if self._sources.get(source) == muted:
            return False, False
        self._sources[source] = muted
        current = self.muted
        position = bisect.bisect_right(self._times, t)
        before = self._changes[position - 1].muted if position else None
        if before == muted:
            return True, False
        self._changes.insert(position, MuteChange(t, muted, source))
        self._times.insert(position, t)
        following = position + 1
        if following < len(self._changes) and self._changes[following].muted == muted:
            del self._changes[following]  # a change told late made the next one a repeat
            del self._times[following]
        if self._max_changes is not None and len(self._changes) > self._max_changes:
            del self._changes[0]
            del self._times[0]
        return True, self.muted != current

    def state_at(self, t: float) -> bool | None:
        """The merged state at ``t`` (None before the first change)."""
        change = self.change_at(t)
        return None if change is None else change.muted

    def change_at(self, t: float) -> MuteChange | None:
        """The change in force at ``t``: the last one at or before it (None before the first)."""
        position = bisect.bisect_right(self._times, t)
        return self._changes[position - 1] if position else None

    def intervals(self, end: float | None = None) -> list[tuple[float, float]]:
        """The muted intervals ``(start, end)``; one still open ends at ``end`` (or +inf)."""
        result: list[tuple[float, float]] = []
        start: float | None = None
        for change in self._changes:
            if change.muted and start is None:
                start = change.t
            elif not change.muted and start is not None:
                result.append((start, change.t))
                start = None
        if start is not None:
            result.append((start, math.inf if end is None else end))
        return result

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> MuteTimeline:
        """The timeline the ``mute`` events of an events.jsonl describe (``at`` over ``t``)."""
        timeline = cls()
        for event in events:
            if event.get("kind") != "mute":
                continue
            state = event.get("state")
            source = event.get("source")
            if state not in ("muted", "unmuted") or source not in SOURCES:
                continue
            at = event.get("at")
            when = at if isinstance(at, int | float) and not isinstance(at, bool) else event["t"]
            timeline.update(float(when), state == "muted", str(source))
        return timeline
