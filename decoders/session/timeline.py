"""When the microphone was muted: intervals from every source, merged, on the capture's clock.

Sources (each interval keeps the name of the one it came from):

``lab``
    the lab's ground truth, ``timeline.json`` with ``"source": "lab"``;
``user``
    a timeline file someone wrote: JSON ``{"muted": [[start, end], ...]}`` or CSV lines
    ``start,end`` (a header line and ``#`` comments allowed);
``cli``
    ``--muted START-END`` on the command line (repeatable);
``mark``, ``app``, ``rule``
    the addon's ``mute`` events in ``events.jsonl`` (the person testing, the app's own
    signals, user rules), merged as the addon merges them
    (:class:`decoders.session.events.MuteTimeline`).

Times of 1e9 and more are Unix epoch seconds; smaller ones are seconds from the capture's first
packet. Every time passes :mod:`decoders.session.times` (finite, not negative, not after 2100):
anything else is a ValueError naming the file, line or flag, never a silently converted time.
``clock_offset`` (seconds) is added to every epoch time to put it on the capture's clock
(the timeline, the events and the proxy's flows share one clock; the capture may not).

Merging: the declared sources (``lab``, ``user``, ``cli``) are the truth when there is any;
their intervals are united into mute windows. Without them the addon's merged events decide.
Every other source is kept for comparison (:attr:`Timeline.intervals`).

Each window boundary gets a grace period on both sides (default 200 ms): the encoder's
transition packets and small clock differences are judged neither muted nor unmuted. A packet
is then *muted* (inside a window, beyond the grace), *transition* or *unmuted*. Nothing here
reads a file or a clock: callers open files and pass their text.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from decoders.session.events import SOURCES as EVENT_SOURCES
from decoders.session.events import Event, MuteTimeline
from decoders.session.times import EPOCH_MIN, offset_seconds, timeline_seconds

GRACE_DEFAULT: Final = 0.2
"""Seconds on each side of a mute/unmute left out of both phases."""
DECLARED: Final = ("lab", "user", "cli")
"""Sources that declare the truth; the addon's events are used only without them."""

UNMUTED: Final = -1
TRANSITION: Final = -2
"""Segment labels of :meth:`Timeline.segments`; a muted packet gets its window's index."""

_RANGE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*-\s*(\d+(?:\.\d*)?|\.\d+)?\s*$")


@dataclass(frozen=True, slots=True)
class MuteInterval:
    """One muted interval as a source gave it (``end`` None: still muted at the end).

    ``start``/``end`` are as written (epoch or relative); :class:`Timeline` holds them aligned.
    """

    start: float
    end: float | None
    source: str
    detail: str


@dataclass(frozen=True, slots=True)
class AlignedInterval:
    """A source's interval on the capture's clock (epoch seconds)."""

    start: float
    end: float
    source: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "source": self.source, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Window:
    """A merged mute window: ``[start, end)`` on the capture's clock, and who said so."""

    index: int
    start: float
    end: float
    sources: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def judged(self, grace: float) -> tuple[float, float] | None:
        """The part judged as muted (grace removed at both ends), or None when nothing is left."""
        start, end = self.start + grace, self.end - grace
        return (start, end) if end > start else None


@dataclass(frozen=True, slots=True)
class Timeline:
    """Mute windows on the capture's clock, with the grace period and every source's view."""

    windows: tuple[Window, ...]
    intervals: tuple[AlignedInterval, ...]
    primary: tuple[str, ...]
    grace: float = GRACE_DEFAULT
    clock_offset: float = 0.0
    warnings: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.windows

    def stretches(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Where the judged phase changes: ``labels[i]`` (a window index, :data:`TRANSITION` or
        :data:`UNMUTED`) holds from epoch ``edges[i]`` to ``edges[i+1]`` (the last to the end)."""
        return self._pieces()

    def _pieces(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Piecewise-constant labels: ``labels[i]`` holds from ``edges[i]`` to ``edges[i+1]``.

        O(w log w) for w windows: the edges are sorted once and every stretch is labelled by a
        binary search (:meth:`labels_at`), so 10,000 windows cost about what 10 do, times 1,000.
        """
        if not self.windows:
            return np.zeros(0, np.float64), np.zeros(0, np.int64)
        g = self.grace
        starts, ends, _ = self._bounds()
        points = np.unique(np.concatenate([starts - g, starts + g, ends - g, ends + g]))
        right = np.append(points[1:], np.inf)
        middle = np.where(np.isfinite(right), points + (right - points) / 2, points + 1.0)
        return points, self.labels_at(middle)

    def _bounds(
        self,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        starts = np.fromiter((w.start for w in self.windows), np.float64, len(self.windows))
        ends = np.fromiter((w.end for w in self.windows), np.float64, len(self.windows))
        index = np.fromiter((w.index for w in self.windows), np.int64, len(self.windows))
        return starts, ends, index

    def labels_at(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Per epoch time: the muted window's index, :data:`TRANSITION` or :data:`UNMUTED`.

        A window's judged part is ``[start + grace, end - grace)``; its transition zone reaches
        ``grace`` beyond both ends. The windows are disjoint (:func:`build_timeline` merges
        them), so at most one judged part holds a time: one binary search finds it, and one
        over the zones' starts with a running maximum of their ends tells whether any zone
        holds it. O((n + w) log w) for n times and w windows.
        """
        out = np.full(t.shape, UNMUTED, np.int64)
        if not self.windows or t.size == 0:
            return out
        g = self.grace
        starts, ends, index = self._bounds()
        order = np.argsort(starts, kind="stable")
        starts, ends, index = starts[order], ends[order], index[order]
        zone_hi = np.maximum.accumulate(ends + g)
        k = np.searchsorted(starts - g, t, side="right") - 1
        near = (k >= 0) & (zone_hi[np.maximum(k, 0)] > t)
        out[near] = TRANSITION
        keep = ends - g > starts + g
        j_lo, j_hi, j_index = starts[keep] + g, ends[keep] - g, index[keep]
        if j_lo.size:
            k = np.searchsorted(j_lo, t, side="right") - 1
            safe = np.maximum(k, 0)
            muted = (k >= 0) & (j_hi[safe] > t)
            out[muted] = j_index[safe[muted]]
        return out

    def _label_at(self, t: float) -> int:
        return int(self.labels_at(np.array([t], np.float64))[0])

    def segments(self, timestamp_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int16]:
        """Per timestamp: the muted window's index, :data:`TRANSITION` or :data:`UNMUTED`.

        Vectorised (a binary search per timestamp over the few window edges).
        """
        out = np.full(timestamp_ns.shape, UNMUTED, np.int16)
        if not self.windows or timestamp_ns.size == 0:
            return out
        edges, labels = self._pieces()
        edges_ns = to_ns(edges)
        where = np.searchsorted(edges_ns, timestamp_ns, side="right") - 1
        inside = where >= 0
        out[inside] = labels[where[inside]]
        return out

    def pieces(self, timestamp_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Per timestamp: which stretch between two phase edges it is in (0 before the first).

        Two packets with the same piece are in one unbroken stretch of one phase; gaps between
        packets of different pieces span another phase and are not inter-arrival times.
        """
        if not self.windows:
            return np.zeros(timestamp_ns.shape, np.int64)
        edges, _ = self._pieces()
        edges_ns = to_ns(edges)
        return np.asarray(np.searchsorted(edges_ns, timestamp_ns, side="right"), np.int64)

    def segment_at(self, t: float) -> int:
        """The label of one epoch time (see :meth:`segments`)."""
        return self._label_at(t) if self.windows else UNMUTED

    def seconds(self, span: tuple[float, float] | None) -> dict[int, float]:
        """Seconds of each label within ``span`` (the capture's first to last packet)."""
        out: dict[int, float] = {UNMUTED: 0.0, TRANSITION: 0.0}
        out.update({w.index: 0.0 for w in self.windows})
        if span is None or span[1] <= span[0]:
            return out
        lo, hi = span
        if not self.windows:
            out[UNMUTED] = hi - lo
            return out
        edges, _ = self._pieces()
        inner = edges[(edges > lo) & (edges < hi)]
        bounds = np.concatenate([[lo], inner, [hi]])
        lengths = np.diff(bounds)
        labels = self.labels_at(bounds[:-1] + lengths / 2)
        for label, length in zip(labels.tolist(), lengths.tolist(), strict=True):
            out[label] += length
        return out


_NS_LIMIT: Final = 9.2e18
"""Nanoseconds kept inside int64 (2**63 is about 9.223e18)."""


def to_ns(seconds: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Epoch seconds as int64 nanoseconds; an edge beyond int64 (only a window reaching past
    2262) is clamped to the largest (or smallest) value, past every packet, instead of wrapping
    around to a negative number."""
    return np.clip(np.round(seconds * 1e9), -_NS_LIMIT, _NS_LIMIT).astype(np.int64)


def parse_muted_arg(text: str) -> MuteInterval:
    """``--muted START-END`` (seconds; END may be left out: muted until the end)."""
    match = _RANGE.match(text)
    if match is None:
        raise ValueError(f"--muted {text!r} is not START-END (seconds, e.g. 12.5-18)")
    shown = text.strip() if len(text.strip()) <= 60 else text.strip()[:57] + "..."
    where = f"--muted {shown!r}:"
    start = timeline_seconds(float(match.group(1)), f"{where} start")
    end = timeline_seconds(float(match.group(2)), f"{where} end") if match.group(2) else None
    if end is not None and end <= start:
        raise ValueError(f"--muted {text!r} ends before it starts")
    return MuteInterval(start, end, "cli", f"--muted {text.strip()}")


def parse_timeline_text(text: str, name: str) -> list[MuteInterval]:
    """A timeline file's intervals: JSON (``{"muted": [[s, e], ...]}``) or CSV ``start,end``.

    A JSON file with ``"source": "lab"`` is the lab's ground truth; anything else is ``user``.
    Raises ValueError naming the file and the problem.
    """
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return _timeline_json(stripped, name)
    return _timeline_csv(text, name)


def _timeline_json(text: str, name: str) -> list[MuteInterval]:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{name}: not JSON ({error})") from None
    except RecursionError:
        raise ValueError(f"{name}: not a timeline (JSON nested too deep to read)") from None
    if isinstance(data, list):
        data = {"muted": data}
    if not isinstance(data, dict) or not isinstance(data.get("muted"), list):
        raise ValueError(f'{name}: no "muted" list of [start, end] pairs')
    clock = data.get("clock", "epoch")
    if clock not in ("epoch", "capture"):
        raise ValueError(f'{name}: clock {clock!r} is not "epoch" or "capture"')
    source = "lab" if data.get("source") == "lab" else "user"
    out = []
    for number, item in enumerate(data["muted"]):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ValueError(f"{name}: muted[{number}] is not a [start, end] pair")
        start = _seconds(item[0], f"{name}: muted[{number}][0]")
        end = None if item[1] is None else _seconds(item[1], f"{name}: muted[{number}][1]")
        if start is None:
            raise ValueError(f"{name}: muted[{number}] has no start")
        if end is not None and end <= start:
            raise ValueError(f"{name}: muted[{number}] ends before it starts")
        out.append(MuteInterval(start, end, source, name))
    return out


def _timeline_csv(text: str, name: str) -> list[MuteInterval]:
    out = []
    header_allowed = True
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        first_row, header_allowed = header_allowed, False
        if len(cells) < 2:
            raise ValueError(f"{name} line {number}: expected start,end")
        try:
            start = float(cells[0])
        except ValueError:
            if first_row:
                continue  # a header line
            raise ValueError(f"{name} line {number}: start {cells[0]!r} is not seconds") from None
        end: float | None
        try:
            end = float(cells[1]) if cells[1] else None
        except ValueError:
            raise ValueError(f"{name} line {number}: end {cells[1]!r} is not seconds") from None
        start = timeline_seconds(start, f"{name} line {number}: start")
        if end is not None:
            end = timeline_seconds(end, f"{name} line {number}: end")
        if end is not None and end <= start:
            raise ValueError(f"{name} line {number}: ends before it starts")
        out.append(MuteInterval(start, end, "user", name))
    return out


def _seconds(value: object, where: str) -> float | None:
    return None if value is None else timeline_seconds(value, where)


def intervals_from_events(events: Iterable[Event]) -> list[MuteInterval]:
    """The addon's mute intervals: per source (``mark``, ``app``, ``rule``) and merged.

    The merged ones (source ``events``, detail naming the sources of the changes) are what the
    addon itself believed; the per-source ones show who said what.
    """
    mute_events = [e for e in events if e.get("kind") == "mute"]
    out: list[MuteInterval] = []
    merged = MuteTimeline.from_events(mute_events)
    changes = merged.changes
    for start, end in merged.intervals():
        said = sorted({c.source for c in changes if c.t in (start, end)})
        out.append(MuteInterval(start, None if math.isinf(end) else end, "events", "+".join(said)))
    for source in EVENT_SOURCES:
        own = MuteTimeline.from_events(e for e in mute_events if e.get("source") == source)
        for start, end in own.intervals():
            out.append(
                MuteInterval(start, None if math.isinf(end) else end, source, "events.jsonl")
            )
    return out


@dataclass(frozen=True, slots=True)
class ScopedMute:
    """A mute the app signalled through a rule of a given scope (``server``: the app told its
    server), epoch seconds as the events say (``end`` None: still muted at the end)."""

    start: float
    end: float | None
    scope: str
    rule: str
    path: str | None
    value: Any
    endpoint: str | None
    flow: str | None
    """mitmproxy flow id (with ``#n`` for a WebSocket message)."""


def scoped_mutes(events: Iterable[Event], scope: str = "server") -> list[ScopedMute]:
    """The mute intervals that rule signals of ``scope`` give (``mute`` events of source
    ``rule`` whose evidence says that scope), per rule, in time order."""
    by_rule: dict[str, list[Event]] = {}
    for event in events:
        evidence = event.get("evidence")
        if (
            event.get("kind") == "mute"
            and event.get("source") == "rule"
            and isinstance(evidence, dict)
            and evidence.get("scope") == scope
        ):
            by_rule.setdefault(str(evidence.get("rule")), []).append(event)
    out: list[ScopedMute] = []
    for rule, said in by_rule.items():
        opened: Event | None = None
        for event in sorted(said, key=lambda e: float(e["t"])):
            if event.get("state") == "muted" and opened is None:
                opened = event
            elif event.get("state") == "unmuted" and opened is not None:
                out.append(_scoped(opened, float(event["t"]), scope, rule))
                opened = None
        if opened is not None:
            out.append(_scoped(opened, None, scope, rule))
    return sorted(out, key=lambda m: m.start)


def _scoped(event: Event, end: float | None, scope: str, rule: str) -> ScopedMute:
    evidence = event.get("evidence") or {}
    flow = event.get("flow") if isinstance(event.get("flow"), dict) else {}
    assert isinstance(flow, dict)
    ident = flow.get("id")
    reference = None
    if ident is not None:
        reference = str(ident) + (f"#{flow['message']}" if flow.get("message") is not None else "")
    return ScopedMute(
        start=float(event["t"]),
        end=end,
        scope=scope,
        rule=rule,
        path=evidence.get("path"),
        value=evidence.get("value"),
        endpoint=event.get("endpoint"),
        flow=reference,
    )


def build_timeline(
    intervals: Sequence[MuteInterval],
    *,
    capture_span: tuple[float, float] | None,
    grace: float = GRACE_DEFAULT,
    clock_offset: float = 0.0,
) -> Timeline:
    """Align every interval on the capture's clock and merge the primary ones into windows.

    ``capture_span`` is the capture's (first, last) packet time in epoch seconds; it anchors
    relative times and closes open intervals (without a capture, relative times raise
    ValueError and open intervals close at the latest time any source mentions).
    """
    if grace < 0 or not math.isfinite(grace):
        raise ValueError(f"grace {grace!r} must be finite seconds >= 0")
    clock_offset = offset_seconds(clock_offset, "--clock-offset")
    aligned: list[AlignedInterval] = []
    latest = max(
        [t for i in intervals for t in (i.start, i.end) if t is not None and t >= EPOCH_MIN],
        default=0.0,
    )
    for item in intervals:
        start = _align(item.start, capture_span, clock_offset, item)
        if item.end is not None:
            end = _align(item.end, capture_span, clock_offset, item)
        elif capture_span is not None:
            end = max(capture_span[1], start)
        else:
            end = max(latest + clock_offset, start)
        aligned.append(AlignedInterval(start, end, item.source, item.detail))
    present = {a.source for a in aligned}
    primary: tuple[str, ...]
    if present & set(DECLARED):
        primary = tuple(s for s in DECLARED if s in present)
    elif "events" in present:
        primary = ("events",)
    else:
        primary = ()
    windows = _merge([a for a in aligned if a.source in primary])
    warnings = _check(windows, capture_span, clock_offset)
    return Timeline(
        windows=tuple(windows),
        intervals=tuple(aligned),
        primary=primary,
        grace=grace,
        clock_offset=clock_offset,
        warnings=tuple(warnings),
    )


def _align(t: float, span: tuple[float, float] | None, offset: float, item: MuteInterval) -> float:
    if t >= EPOCH_MIN:
        return t + offset
    if span is None:
        raise ValueError(
            f"{item.detail}: {t:g} s is relative to the capture's first packet, "
            "but there is no captured packet to count from (no capture, or an empty one)"
        )
    return span[0] + t


def _merge(intervals: Sequence[AlignedInterval]) -> list[Window]:
    ordered = sorted(intervals, key=lambda a: (a.start, a.end))
    merged: list[tuple[float, float, set[str]]] = []
    for item in ordered:
        if merged and item.start <= merged[-1][1]:
            start, end, sources = merged[-1]
            merged[-1] = (start, max(end, item.end), sources | {item.source})
        else:
            merged.append((item.start, item.end, {item.source}))
    return [
        Window(index, start, end, tuple(sorted(sources)))
        for index, (start, end, sources) in enumerate(merged)
        if end > start
    ]


def _check(windows: Sequence[Window], span: tuple[float, float] | None, offset: float) -> list[str]:
    """Warnings for windows outside the capture, with a hint when a whole-hour shift fits."""
    if span is None or not windows:
        return []
    lo, hi = span
    out = []
    outside = 0
    for w in windows:
        if w.end <= lo or w.start >= hi:
            outside += 1
            out.append(
                f"mute window {w.index + 1} ({w.start:.3f}-{w.end:.3f}) lies outside the capture "
                f"({lo:.3f}-{hi:.3f}): check the clocks, or --clock-offset"
            )
        elif w.start < lo or w.end > hi:
            out.append(
                f"mute window {w.index + 1} is only partly inside the capture; "
                "only that part is judged"
            )
    if outside == len(windows):
        shift = lo - windows[0].start
        hours = round(shift / 3600)
        if hours and all(
            w.start + hours * 3600 < hi and w.end + hours * 3600 > lo for w in windows
        ):
            out.append(
                f"the timeline is about {hours:+d} h off the capture's clock (a time zone?); "
                f"try --clock-offset {offset + hours * 3600:g}"
            )
    return out
