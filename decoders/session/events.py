"""``events.jsonl``: what the proxy saw during a call, one JSON object a line (format version 1).

The addon writes it while the call runs; the analyser reads it afterwards. Every line is a JSON
object with at least ``t`` (Unix epoch seconds, float, the proxy's clock) and ``kind``, one of
:data:`KINDS`; docs/session-format.md lists every field of every kind. Lines are written whole and
flushed one at a time, so a proxy killed with ``kill -9`` loses at most the line being written, and
:func:`read_events` skips such a cut last line.

A line is *usable* when it is a JSON object whose ``t`` is a plausible epoch time
(:mod:`decoders.session.times`), whose ``kind`` is a string, and whose fields the analyser reads
have their documented types (:func:`event_problem`). The reader either raises on the first
unusable line (strict) or skips each one and reports it as an :class:`UnusableLine` (line
number, reason, and the kind and time when they could still be read), so that the audit can say
what it could not check instead of silently judging without it.

:class:`MuteTimeline` merges the mute states of three sources (``mark``: the person testing;
``app``: what the app itself signalled; ``rule``: a user rule) into one timeline. A source
counts only when it changes its own state (an app repeating "unmuted" every ten seconds does not
undo a mark), and then the latest change of any source decides.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

from decoders.errors import MalformedPacket
from decoders.session.times import epoch_seconds

FORMAT: Final = "mutecheck-events"
VERSION: Final = 1
KINDS: Final = ("session_start", "sdp", "mute", "telemetry", "blocked", "warning", "media")
SOURCES: Final = ("mark", "app", "rule")

HARMLESS: Final = ("session_start", "warning")
"""Kinds whose loss hides no evidence the audit judges (the findings are in other kinds)."""
TIMED: Final = ("telemetry", "blocked", "media")
"""Kinds that are evidence only at their own time: lost outside a mute window, nothing is lost."""

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class UnusableLine:
    """A line of ``events.jsonl`` that could not be used, and what could still be read of it."""

    line: int
    reason: str
    kind: str | None = None
    """The event's kind when it could be read (None: unknown, could have been any)."""
    t: float | None = None
    """The event's time when it could be read and is plausible."""

    @property
    def may_hide_evidence(self) -> bool:
        """Could the lost event have changed the verdict (anything but :data:`HARMLESS`)?"""
        return self.kind not in HARMLESS

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason, "kind": self.kind, "t": self.t}


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


def read_events(stream: IO[bytes], unusable: list[UnusableLine] | None = None) -> Iterator[Event]:
    """The usable events of an open ``events.jsonl`` (binary mode), in file order.

    Blank lines are skipped; a last line without its newline that is not JSON is the line a
    killed writer was writing. Strict (``unusable`` None): that cut line is skipped, and any
    other unusable line (:func:`event_problem`, or not JSON) raises MalformedPacket naming the
    line. Collecting (a list given): every unusable line, the cut one too, is appended to
    ``unusable`` and skipped.
    """
    number = 0
    for raw in stream:
        number += 1
        if not raw.strip():
            continue
        problem = _line_problem(raw, number)
        if isinstance(problem, dict):
            yield problem
        elif unusable is not None:
            unusable.append(problem)
        elif not problem.reason.startswith(CUT_SHORT):
            raise MalformedPacket(f"events.jsonl line {number} {problem.reason}")


CUT_SHORT: Final = "is cut short"
_HEAD = re.compile(
    rb'^\s*\{\s*"t"\s*:\s*(-?[0-9][0-9.eE+-]{0,30})\s*,\s*"kind"\s*:\s*"([a-z_]{1,20})"'
)
"""The start every line the addon writes has: time and kind, readable in a line cut short."""


def _line_problem(raw: bytes, number: int) -> Event | UnusableLine:
    """The event of one line, or why it cannot be used."""
    try:
        event = json.loads(raw)
    except RecursionError:
        return _unreadable(raw, number, "is JSON nested too deep to read")
    except ValueError as error:
        if not raw.endswith(b"\n"):
            return _unreadable(raw, number, f"{CUT_SHORT} (the proxy stopped while writing it)")
        return _unreadable(raw, number, f"is not JSON: {error}")
    if not isinstance(event, dict):
        return UnusableLine(number, "is not a JSON object")
    reason = event_problem(event)
    if reason is None:
        return event
    kind = event.get("kind")
    t: float | None = None
    with contextlib.suppress(ValueError):
        t = epoch_seconds(event.get("t"), "t")
    return UnusableLine(number, reason, kind if isinstance(kind, str) else None, t)


def _unreadable(raw: bytes, number: int, reason: str) -> UnusableLine:
    """An unparseable line, with its kind and time when its start still says them."""
    head = _HEAD.match(raw[:200])
    if head is None:
        return UnusableLine(number, reason)
    kind = head.group(2).decode()
    try:
        t: float | None = epoch_seconds(float(head.group(1)), "t")
    except ValueError:
        t = None
    return UnusableLine(number, reason, kind if kind in KINDS else None, t)


def event_problem(event: Event) -> str | None:
    """Why a decoded event cannot be used, or None: ``t`` a plausible epoch time, ``kind`` a
    string, and the fields the analyser reads of its kind of the documented type (a mute's
    ``state``, ``source`` and ``at``; a telemetry message's ``direction``, ``endpoint``, ``flow``
    and ``fields`` with finite numbers or booleans, null for a number that was not finite)."""
    try:
        epoch_seconds(event.get("t"), "t")
    except ValueError as error:
        return f"has no usable t: {error}"
    kind = event.get("kind")
    if not isinstance(kind, str):
        return "has no kind"
    if kind == "mute":
        return _mute_problem(event)
    if kind == "telemetry":
        return _telemetry_problem(event)
    if kind == "sdp" and not isinstance(event.get("sdp", ""), str):
        return "(sdp) has an sdp that is not text"
    return None


def _mute_problem(event: Event) -> str | None:
    if event.get("state") not in ("muted", "unmuted"):
        return f"(mute) has state {_short(event.get('state'))}, not muted or unmuted"
    if event.get("source") not in SOURCES:
        return f"(mute) has source {_short(event.get('source'))}, not one of {', '.join(SOURCES)}"
    at = event.get("at")
    if at is not None:
        try:
            epoch_seconds(at, "at")
        except ValueError as error:
            return f"(mute) has no usable at: {error}"
    return None


def _telemetry_problem(event: Event) -> str | None:
    for name in ("direction", "endpoint"):
        if not isinstance(event.get(name, ""), str | None):
            return f"(telemetry) has a {name} that is not text"
    if not isinstance(event.get("flow", {}), dict | None):
        return "(telemetry) has a flow that is not an object"
    fields = event.get("fields")
    if not isinstance(fields, list):
        return "(telemetry) has no list of fields"
    for index, item in enumerate(fields):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            return f"(telemetry) field {index} is not an object with a path"
        value = item.get("value")
        if value is None or isinstance(value, bool):
            continue
        if not isinstance(value, int | float):
            return f"(telemetry) field {index} has a value {_short(value)}, not a number"
        try:
            number = float(value)
        except OverflowError:
            return f"(telemetry) field {index} has a value too large for a number"
        if not math.isfinite(number):
            return f"(telemetry) field {index} has a value {value!r}, not a finite number"
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
