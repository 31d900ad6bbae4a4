"""Learn an app's own mute signal from one call the tester marked (``mutecheck signals``).

The tester pressed the app's mute button and marked it (``mute`` events with source ``mark``).
Somewhere in what the app sent, or got back, a field may have changed at the same moments:
``"muted": true``, ``"audio": false``, ``"mic": "off"``, a field that is there only while muted.
:func:`learn` reads every HTTP body and WebSocket message of the call (the same decoding and walk
as the monitor: :mod:`decoders.session.payload`), follows every field over time, and ranks the
fields by how well they follow the marks.

**Which fields can rank.** A field is one path (a JSON path as telemetry events and rules write
it, or a form key) in the messages of one *channel*: transport (HTTP or WebSocket), direction
(``sent`` by the browser or ``received``) and endpoint pattern (the URL without query, with path
segments that look like ids, ``/janus/4711/815``, written as ``{id}``: a rule must match the next
call too). Two kinds:

- a **value** field takes at least two values, at most :data:`MAX_VALUES`, and every value it
  takes is state-like: a boolean, ``null``, the number or string 0 or 1, or a short word (an enum
  name: ``on``, ``muted``, ``sendonly``, ``stopped-talking``; no digits). Counters, timestamps,
  levels, ids and free text take other values and never rank;
- a **presence** field is one whose value is not such a state but which is there in some
  messages and missing in others that hold its parent object (``{"mutedSince": ...}`` only while
  muted).

**The score** of a field, in [0, 1], is ``agreement x transitions``:

1. Each value means the marked state in which it was *held* the longest (a field's state holds
   from one message to the next; before its first message it is unknown). A field whose values
   all mean the same state does not separate muted from unmuted and never ranks.
2. ``agreement``: the share of time, from the field's first message to the end of the session,
   in which the state the field says equals the marked state, leaving out ``tolerance`` seconds
   either side of each change of the marks (the app's message and the mark are never at the
   same instant).
3. ``transitions``: the changes of the marked state and the changes of the field's state, paired
   when they go the same way (to muted, or to unmuted) within ``tolerance`` seconds: matched /
   (mark changes + field changes - matched), a Jaccard index. A field's first message counts as a
   change only when a mark change to the same state is within the tolerance (an app that first
   says ``muted: true`` when you press mute). A field that changes when the marks do not, or does
   not change when they do, loses here.

A field **follows the marks** when its score is at least :data:`FOLLOWS_SCORE` (0.6) and it
matched at least two mark changes (one when the session has only one). A field that changed at
a mark but with one change missing or one extra scores at most 0.5: below the line.

:func:`rules_for_candidates` writes the value fields that follow as a rule file in the format of
``mutecheck_rules`` (docs/session-format.md); :func:`replay_rules` feeds the messages to the
addon's own :class:`~decoders.session.monitor.Monitor` with those rules and no marks, and says
which muted intervals they give. Nothing here reads files or clocks.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from decoders.session.events import MuteTimeline
from decoders.session.monitor import Message, Monitor, Settings
from decoders.session.payload import (
    Scalar,
    Segment,
    decode_content,
    format_path,
    parse_document,
    walk,
)
from decoders.session.signaling import RULES_VERSION, load_rules

MAX_VALUES = 5
"""More distinct values than this and a field is not a state (a level, a counter, an id)."""

DEFAULT_TOLERANCE = 2.0
"""Seconds between a mark and the app's message that still count as the same moment."""

FOLLOWS_SCORE = 0.6
"""The score from which a field is said to follow the marks."""

SCAN_LIMIT = 256 * 1024
MAX_PRESENCE_WORK = 5_000_000
"""Paths x messages of one channel beyond which presence fields are not followed there."""

Kind = Literal["value", "presence"]
Transport = Literal["http", "websocket"]
Direction = Literal["sent", "received"]

_WORD = re.compile(r"[a-z]+(?:[_\-][a-z]+)*|[A-Z]+(?:[_\-][A-Z]+)*|[A-Za-z][a-z]+(?:[A-Z][a-z]+)*")
MAX_WORD = 24
_ID_SEGMENT = re.compile(r"\d+|(?=[^/]*\d)[A-Za-z0-9_\-.~]{8,}")
"""A path segment that names one object (``4711``, ``3f9c0a12``, a UUID): ``{id}``."""

_PRESENT: tuple[str, Scalar] = ("presence", True)
_ABSENT: tuple[str, Scalar] = ("presence", False)

Token = tuple[str, Scalar]
"""A value as compared here: its kind and its value (strings in lower case)."""


@dataclass(frozen=True, slots=True)
class Channel:
    """Where a field travels: transport, direction and endpoint pattern."""

    transport: Transport
    direction: Direction
    endpoint: str
    """The endpoint with id-like path segments as ``{id}`` (``https://h/janus/{id}/{id}``)."""
    url_pattern: str
    """A regular expression for a rule's ``url``: this endpoint, any ids, any query."""

    @property
    def label(self) -> str:
        return f"{self.direction} {'WebSocket' if self.transport == 'websocket' else 'HTTP'}"


@dataclass(frozen=True, slots=True)
class Change:
    """The field took ``value`` at ``t`` (``None`` with ``present=False``: it went missing)."""

    t: float
    value: Scalar
    present: bool
    muted: bool
    """The state the value means (learned from the marks)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A field that changed at some mark, with its score (see the module docstring)."""

    channel: Channel
    path: str
    kind: Kind
    score: float
    agreement: float
    matched: int
    mark_changes: int
    field_changes: int
    messages: int
    muted_values: tuple[Scalar, ...]
    unmuted_values: tuple[Scalar, ...]
    changes: tuple[Change, ...]
    """Every change of value (not only of state), the first message included."""
    methods: tuple[str, ...] = ()

    @property
    def follows(self) -> bool:
        return self.score >= FOLLOWS_SCORE and self.matched >= min(2, self.mark_changes)

    def to_json(self, start: float) -> dict[str, Any]:
        return {
            "transport": self.channel.transport,
            "direction": self.channel.direction,
            "endpoint": self.channel.endpoint,
            "url_pattern": self.channel.url_pattern,
            "methods": list(self.methods),
            "path": self.path,
            "kind": self.kind,
            "score": round(self.score, 4),
            "agreement": round(self.agreement, 4),
            "matched_mark_changes": self.matched,
            "mark_changes": self.mark_changes,
            "field_changes": self.field_changes,
            "messages": self.messages,
            "follows": self.follows,
            "muted_values": list(self.muted_values),
            "unmuted_values": list(self.unmuted_values),
            "changes": [
                {
                    "t": round(c.t, 6),
                    "offset": round(c.t - start, 3),
                    "value": c.value,
                    "present": c.present,
                    "means": "muted" if c.muted else "unmuted",
                }
                for c in self.changes
            ],
        }


@dataclass(frozen=True, slots=True)
class Learned:
    """What :func:`learn` found: the marks, the candidates ranked, and what was read."""

    start: float
    end: float
    mark_changes: tuple[tuple[float, bool], ...]
    candidates: tuple[Candidate, ...]
    messages: int
    channels: int
    fields: int
    state_fields: int
    tolerance: float

    @property
    def following(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.follows)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "tolerance": self.tolerance,
            "follows_score": FOLLOWS_SCORE,
            "mark_changes": [
                {
                    "t": round(t, 6),
                    "offset": round(t - self.start, 3),
                    "state": "muted" if m else "unmuted",
                }
                for t, m in self.mark_changes
            ],
            "messages": self.messages,
            "channels": self.channels,
            "fields": self.fields,
            "state_fields": self.state_fields,
            "follows": bool(self.following),
            "candidates": [c.to_json(self.start) for c in self.candidates],
        }


# --- reading the messages ----------------------------------------------------------------------


def endpoint_pattern(endpoint: str) -> tuple[str, str]:
    """(display, rule regex) of an endpoint: id-like path segments become ``{id}`` / ``[^/]+``.

    >>> endpoint_pattern("https://h:8089/janus/4711/815")[0]
    'https://h:8089/janus/{id}/{id}'
    """
    parts = urlsplit(endpoint)
    base = f"{parts.scheme}://{parts.netloc}"
    shown = [base]
    pattern = ["^", re.escape(base)]
    for segment in parts.path.split("/")[1:]:
        if _ID_SEGMENT.fullmatch(segment):
            shown.append("/{id}")
            pattern.append("/[^/?#]+")
        else:
            shown.append("/" + segment)
            pattern.append(re.escape("/" + segment))
    pattern.append("(?:[?#]|$)")
    return "".join(shown), "".join(pattern)


@dataclass(slots=True)
class _Seen:
    """One parsed message: when, its values by path (the first of each), its object paths."""

    t: float
    values: dict[tuple[Segment, ...], Scalar]
    containers: set[tuple[Segment, ...]]


@dataclass(slots=True)
class _ChannelData:
    channel: Channel
    seen: list[_Seen] = field(default_factory=list)
    methods: set[str] = field(default_factory=set)


def _read(message: Message, t: float) -> _Seen | None:
    decoded = decode_content(message.content, message.content_encoding, SCAN_LIMIT)
    if decoded.error:
        return None
    document = parse_document(decoded.data, message.content_type, truncated=decoded.truncated)
    if not document.records:
        return None
    values: dict[tuple[Segment, ...], Scalar] = {}
    containers: set[tuple[Segment, ...]] = {()}
    for leaf in walk(document):
        values.setdefault(leaf.path, leaf.value)
        for cut in range(1, len(leaf.path)):
            containers.add(leaf.path[:cut])
    return _Seen(t, values, containers)


def _channels(items: Iterable[tuple[float, Message]]) -> tuple[list[_ChannelData], int]:
    by_key: dict[tuple[str, str, str], _ChannelData] = {}
    count = 0
    for t, message in items:
        count += 1
        transport: Transport = "websocket" if message.flow.type == "websocket" else "http"
        direction: Direction = "sent" if message.sent else "received"
        shown, pattern = endpoint_pattern(message.endpoint)
        key = (transport, direction, pattern)
        data = by_key.get(key)
        if data is None:
            data = by_key[key] = _ChannelData(Channel(transport, direction, shown, pattern))
        if message.flow.method:
            data.methods.add(message.flow.method)
        seen = _read(message, t)
        if seen is not None:
            data.seen.append(seen)
    return list(by_key.values()), count


def state_token(value: Scalar) -> Token | None:
    """The value as a state (see the module docstring), or None when it cannot be one."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", int(value)) if value in (0, 1) else None
    text = value.strip()
    if text in ("0", "1"):
        return ("text", text)
    if len(text) <= MAX_WORD and _WORD.fullmatch(text):
        return ("text", text.lower())
    return None


# --- the marks and the score -------------------------------------------------------------------


def mark_changes(marks: Iterable[tuple[float, bool]]) -> list[tuple[float, bool]]:
    """The changes of the marked state, in time order, from "not muted" before the first mark
    (docs/session-format.md: until a source has spoken, the state counts as not muted)."""
    changes: list[tuple[float, bool]] = []
    state = False
    for t, muted in sorted(marks):
        if muted != state:
            changes.append((t, muted))
            state = muted
    return changes


class _Marks:
    """The marked state over time, and the muted seconds up to any moment."""

    def __init__(self, changes: Sequence[tuple[float, bool]]) -> None:
        self.changes = list(changes)
        self.times = [t for t, _ in changes]
        self._muted_before: list[float] = []
        total = 0.0
        for position, (t, muted) in enumerate(changes):
            self._muted_before.append(total)
            if muted and position + 1 < len(changes):
                total += changes[position + 1][0] - t

    def state(self, t: float) -> bool:
        position = bisect.bisect_right(self.times, t)
        return self.changes[position - 1][1] if position else False

    def muted_until(self, t: float) -> float:
        """Seconds muted from the start up to ``t``."""
        position = bisect.bisect_right(self.times, t)
        if not position:
            return 0.0
        start, muted = self.changes[position - 1]
        return self._muted_before[position - 1] + (t - start if muted else 0.0)

    def muted_between(self, a: float, b: float) -> float:
        return self.muted_until(b) - self.muted_until(a)


@dataclass(frozen=True, slots=True)
class _Field:
    channel: _ChannelData
    path: tuple[Segment, ...]
    kind: Kind
    observations: tuple[tuple[float, Token, Scalar], ...]


def _fields(data: _ChannelData) -> tuple[list[_Field], int]:
    """The value and presence fields of a channel; and how many paths it had."""
    paths: dict[tuple[Segment, ...], None] = {}
    for seen in data.seen:
        for path in seen.values:
            paths.setdefault(path)
    out: list[_Field] = []
    presence_ok = len(paths) * len(data.seen) <= MAX_PRESENCE_WORK
    for path in paths:
        values: list[tuple[float, Token, Scalar]] = []
        state_like = True
        for seen in data.seen:
            if path in seen.values:
                value = seen.values[path]
                token = state_token(value)
                if token is None:
                    state_like = False
                    break
                values.append((seen.t, token, value))
        if state_like:
            distinct = {token for _, token, _ in values}
            if 2 <= len(distinct) <= MAX_VALUES:
                out.append(_Field(data, path, "value", tuple(values)))
            if len(distinct) >= 2:
                continue  # a state that changes: its presence says nothing more
        if not presence_ok or not path:
            continue
        parent = path[:-1]
        presence: list[tuple[float, Token, Scalar]] = []
        for seen in data.seen:
            if path in seen.values:
                presence.append((seen.t, _PRESENT, True))
            elif parent in seen.containers:
                presence.append((seen.t, _ABSENT, None))
        if any(token == _ABSENT for _, token, _ in presence) and any(
            token == _PRESENT for _, token, _ in presence
        ):
            out.append(_Field(data, path, "presence", tuple(presence)))
    return out, len(paths)


def _meanings(
    observations: Sequence[tuple[float, Token, Scalar]], marks: _Marks, end: float
) -> dict[Token, bool]:
    """What each value means: the marked state it was held in the longest."""
    muted: dict[Token, float] = {}
    held: dict[Token, float] = {}
    instants: dict[Token, list[bool]] = {}
    for position, (t, token, _) in enumerate(observations):
        until = observations[position + 1][0] if position + 1 < len(observations) else end
        until = max(until, t)
        muted[token] = muted.get(token, 0.0) + marks.muted_between(t, until)
        held[token] = held.get(token, 0.0) + (until - t)
        instants.setdefault(token, []).append(marks.state(t))
    meaning: dict[Token, bool] = {}
    for token, total in held.items():
        unmuted = total - muted[token]
        if muted[token] != unmuted:
            meaning[token] = muted[token] > unmuted
        else:  # held for no time: the marked state when it was said
            said = instants[token]
            meaning[token] = sum(said) * 2 > len(said)
    return meaning


def _agreement(
    states: Sequence[tuple[float, bool]], marks: _Marks, end: float, tolerance: float
) -> float:
    """Share of the known time, outside ``tolerance`` of each mark change, where the field's
    held state equals the marked one (all of the known time when the windows leave too
    little of it)."""
    if not states:
        return 0.0
    begin = states[0][0]
    if end <= begin:
        return 1.0 if states[-1][1] == marks.state(begin) else 0.0
    windows = [(t - tolerance, t + tolerance) for t, _ in marks.changes]
    cuts = {begin, end}
    cuts.update(t for t, _ in states)
    cuts.update(t for t, _ in marks.changes)
    for a, b in windows:
        cuts.update((a, b))
    edges = sorted(c for c in cuts if begin <= c <= end)
    times = [t for t, _ in states]
    agree = total = agree_all = total_all = 0.0
    for a, b in itertools.pairwise(edges):
        middle = (a + b) / 2
        said = states[bisect.bisect_right(times, middle) - 1][1]
        same = said == marks.state(middle)
        length = b - a
        total_all += length
        agree_all += length if same else 0.0
        if not any(x <= middle <= y for x, y in windows):
            total += length
            agree += length if same else 0.0
    if total >= max(1.0, 0.1 * total_all):
        return agree / total
    return agree_all / total_all if total_all else 0.0


def _transitions(
    states: Sequence[tuple[float, bool]], marks: _Marks, tolerance: float
) -> tuple[int, int]:
    """(matched, field changes): state changes paired with mark changes (module docstring)."""
    changes: list[tuple[float, bool]] = []
    for position, (t, muted) in enumerate(states):
        if position == 0:
            if any(m == muted and abs(mt - t) <= tolerance for mt, m in marks.changes):
                changes.append((t, muted))
        elif muted != states[position - 1][1]:
            changes.append((t, muted))
    free = list(marks.changes)
    matched = 0
    for t, muted in changes:
        near = [
            (abs(mt - t), i)
            for i, (mt, m) in enumerate(free)
            if m == muted and abs(mt - t) <= tolerance
        ]
        if near:
            free.pop(min(near)[1])
            matched += 1
    return matched, len(changes)


def _candidate(item: _Field, marks: _Marks, end: float, tolerance: float) -> Candidate | None:
    meaning = _meanings(item.observations, marks, end)
    if len(set(meaning.values())) < 2:
        return None  # every value means the same: it does not separate the states
    states: list[tuple[float, bool]] = []
    changes: list[Change] = []
    previous: Token | None = None
    for t, token, value in item.observations:
        muted = meaning[token]
        if not states or states[-1][1] != muted:
            states.append((t, muted))
        if token != previous:
            present = token != _ABSENT
            shown = value if item.kind == "value" else present
            changes.append(Change(t, shown, present, muted))
            previous = token
    matched, field_changes = _transitions(states, marks, tolerance)
    if not matched:
        return None
    agreement = _agreement(states, marks, end, tolerance)
    total = len(marks.changes) + field_changes - matched
    score = agreement * (matched / total if total else 0.0)
    first: dict[Token, Scalar] = {}
    for _, token, value in item.observations:
        first.setdefault(token, value if item.kind == "value" else token == _PRESENT)
    return Candidate(
        channel=item.channel.channel,
        path=format_path(item.path),
        kind=item.kind,
        score=score,
        agreement=agreement,
        matched=matched,
        mark_changes=len(marks.changes),
        field_changes=field_changes,
        messages=len(item.observations),
        muted_values=tuple(first[t] for t in first if meaning[t]),
        unmuted_values=tuple(first[t] for t in first if not meaning[t]),
        changes=tuple(changes),
        methods=tuple(sorted(item.channel.methods)),
    )


def learn(
    items: Iterable[tuple[float, Message]],
    marks: Iterable[tuple[float, bool]],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Learned:
    """Rank the fields of the messages by how well they follow the marks.

    ``items`` are the messages with the time they were seen; ``marks`` the tester's marks as
    (time, muted). Raises ValueError when the marks never say muted.
    """
    changes = mark_changes(marks)
    if not any(muted for _, muted in changes):
        raise ValueError("the marks never say muted")
    listed = sorted(items, key=lambda item: item[0])
    channels, count = _channels(listed)
    times = [t for t, _ in listed] + [t for t, _ in changes]
    start, end = min(times), max(times)
    marked = _Marks(changes)
    candidates: list[Candidate] = []
    paths = state_fields = 0
    for data in channels:
        found, seen_paths = _fields(data)
        paths += seen_paths
        state_fields += len(found)
        for item in found:
            candidate = _candidate(item, marked, end, tolerance)
            if candidate is not None:
                candidates.append(candidate)
    candidates.sort(
        key=lambda c: (
            -c.score,
            -c.matched,
            c.channel.direction != "sent",
            c.kind != "value",
            c.changes[0].t,
        )
    )
    return Learned(
        start=start,
        end=end,
        mark_changes=tuple(changes),
        candidates=tuple(candidates),
        messages=count,
        channels=len(channels),
        fields=paths,
        state_fields=state_fields,
        tolerance=tolerance,
    )


# --- rules -------------------------------------------------------------------------------------


def rule_for(candidate: Candidate) -> dict[str, Any] | None:
    """The ``mutecheck_rules`` rule that reads this field; None for a presence field (a rule
    matches what is in a message, and cannot say that a missing field means unmuted)."""
    if candidate.kind != "value":
        return None
    channel = candidate.channel
    return {
        "name": f"learned: {candidate.path} ({channel.label} {channel.endpoint})",
        "url": channel.url_pattern,
        "direction": channel.direction,
        "json_path": candidate.path,
        "muted": list(candidate.muted_values),
        "unmuted": list(candidate.unmuted_values),
    }


def rules_for_candidates(candidates: Iterable[Candidate], limit: int = 3) -> dict[str, Any]:
    """A rule file (docs/session-format.md, "Rule file") with the value fields that follow the
    marks, best first, at most ``limit``; checked with the addon's own loader."""
    rules = [
        rule
        for candidate in candidates
        if candidate.follows and (rule := rule_for(candidate)) is not None
    ][:limit]
    document = {"version": RULES_VERSION, "rules": rules}
    load_rules(json.dumps(document))  # the addon must accept what we write
    return document


@dataclass(frozen=True, slots=True)
class RuleReplay:
    """The muted intervals the rules give on the session's messages, without marks."""

    changes: tuple[tuple[float, bool], ...]
    intervals: tuple[tuple[float, float], ...]
    marked: tuple[tuple[float, float], ...]
    agreement: float
    """Share of the session's time where the rules' state equals the marks' state."""


def replay_rules(
    items: Iterable[tuple[float, Message]],
    rules_text: str,
    marks: Iterable[tuple[float, bool]],
) -> RuleReplay:
    """Feed the messages to the addon's monitor with the rule file and no marks."""
    monitor = Monitor(Settings(rules=load_rules(rules_text)))
    timeline = MuteTimeline()
    listed = sorted(items, key=lambda item: item[0])
    for t, message in listed:
        for event in monitor.observe(message, t).events:
            if event.get("kind") == "mute" and event.get("source") == "rule":
                timeline.update(float(event["t"]), event["state"] == "muted", "rule")
    marked_changes = mark_changes(marks)
    times = [t for t, _ in listed] + [t for t, _ in marked_changes]
    end = max(times) if times else 0.0
    start = min(times) if times else 0.0
    said = _Marks([(c.t, c.muted) for c in timeline.changes])
    truth = _Marks(marked_changes)
    intervals = _intervals(said.changes, end)
    marked = _intervals(truth.changes, end)
    if end > start:
        muted_both = sum(max(0.0, min(b, d) - max(a, c)) for a, b in intervals for c, d in marked)
        muted_said = sum(b - a for a, b in intervals)
        muted_true = sum(b - a for a, b in marked)
        disagree = muted_said + muted_true - 2 * muted_both
        agreement = 1.0 - disagree / (end - start)
    else:
        agreement = 1.0
    return RuleReplay(
        changes=tuple(said.changes),
        intervals=tuple(intervals),
        marked=tuple(marked),
        agreement=agreement,
    )


def _intervals(changes: Sequence[tuple[float, bool]], end: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    begin: float | None = None
    for t, muted in changes:
        if muted and begin is None:
            begin = t
        elif not muted and begin is not None:
            out.append((begin, t))
            begin = None
    if begin is not None:
        out.append((begin, max(end, begin)))
    return out


# --- what the terminal shows -------------------------------------------------------------------

SHOWN_CHANGES = 8


def describe(learned: Learned, *, session: str, top: int = 10, save: object = None) -> str:
    """The ranking as ``mutecheck signals`` prints it."""
    start = learned.start
    marks = ", ".join(
        f"{'muted' if muted else 'unmuted'} at +{t - start:.2f} s"
        for t, muted in learned.mark_changes
    )
    lines = [
        f"{session}: marks change {len(learned.mark_changes)} times ({marks})",
        f"read {learned.messages} messages in {learned.channels} channels: {learned.fields} "
        f"fields, {learned.state_fields} with state-like values that change "
        f"(tolerance {learned.tolerance:g} s)",
    ]
    if save not in (None, True, "all"):
        lines.append(
            f"note: flows were saved with mutecheck_save_flows={save}: only flows that gave "
            "events are here; record with mutecheck_save_flows=all to see every message"
        )
    shown = learned.candidates[:top]
    if shown:
        lines.append("")
        lines.append("score  agree  marks  field")
    for rank, candidate in enumerate(shown, start=1):
        lines.extend(_candidate_lines(rank, candidate, start))
    lines.append("")
    following = learned.following
    if following:
        best = following[0]
        lines.append(
            f"follows the marks: {best.path} in {best.channel.label} {best.channel.endpoint} "
            f"(score {best.score:.2f} >= {FOLLOWS_SCORE:.2f})"
            + (f", and {len(following) - 1} more" if len(following) > 1 else "")
        )
    else:
        best_note = (
            f"best {learned.candidates[0].score:.2f}: {learned.candidates[0].path}"
            if learned.candidates
            else "no field changed with any mark"
        )
        lines.append(
            f"no field follows the marks (no score reaches {FOLLOWS_SCORE:.2f}; {best_note})"
        )
        lines.append(
            f"  (marked more than {learned.tolerance:g} s away from the app's messages? "
            "--tolerance pairs them from further apart)"
        )
    return "\n".join(lines)


def _candidate_lines(rank: int, candidate: Candidate, start: float) -> list[str]:
    channel = candidate.channel
    methods = f" ({'/'.join(candidate.methods)})" if candidate.methods else ""
    if candidate.kind == "value":
        values = (
            f"muted = {_values(candidate.muted_values)}, "
            f"unmuted = {_values(candidate.unmuted_values)}"
        )
    else:
        present_means = "muted" if True in candidate.muted_values else "unmuted"
        values = f"present only while {present_means}"
    changes = [
        f"+{c.t - start:.2f} s {_value(c.value) if c.present else 'missing'}"
        for c in candidate.changes
    ]
    if len(changes) > SHOWN_CHANGES:
        changes = [*changes[:SHOWN_CHANGES], f"... ({len(changes) - SHOWN_CHANGES} more)"]
    return [
        f"{candidate.score:5.2f}  {candidate.agreement:5.2f}  "
        f"{candidate.matched}/{candidate.mark_changes}    "
        f"#{rank} {candidate.path}  [{candidate.kind}: {values}]",
        f"{'':21}{channel.label}{methods} {channel.endpoint}",
        f"{'':21}{len(candidate.changes) - 1} changes in {candidate.messages} messages: "
        + ", ".join(changes),
    ]


def _value(value: Scalar) -> str:
    return json.dumps(value)


def _values(values: Sequence[Scalar]) -> str:
    return " | ".join(_value(v) for v in values) or "-"
