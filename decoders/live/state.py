"""The live state of an audit: mute state, outgoing streams, telemetry, counts and alarms.

Fed from two sides, each through the offline path's own parsers: datagrams of the growing
capture (:class:`decoders.wire.net.Unwrapper` output; TURN unwrapped with
:func:`decoders.wire.demux.unwrap_turn`, classified with :func:`decoders.wire.demux.classify`,
parsed with :class:`decoders.wire.rtp.RtpPacket`) and the addon's events (SDP for the
audio-level extmap via :mod:`decoders.session.sdp`, mute changes merged by
:class:`decoders.session.events.MuteTimeline`, telemetry). Thread-safe: the capture and the
events are read in their own threads, the screen reads :meth:`LiveState.snapshot`.

A loud packet is judged :data:`JUDGE_DELAY_S` after it was captured, so that a mute change
the addon writes a moment later (an unmute just before the packet) is known when it is judged.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from decoders.errors import MalformedPacket
from decoders.live.alarm import GRACE_S, Alarm, event_alarm, loud, packet_alarm, sizes_alarm
from decoders.media.levels import AUDIO_PAYLOAD_MAX, infer_audio_level_id
from decoders.session.events import SOURCES, MuteTimeline
from decoders.session.sdp import audio_level_extension_id, parse_sdp, payload_types
from decoders.wire import demux
from decoders.wire.demux import PacketKind
from decoders.wire.net import Datagram
from decoders.wire.rtp import RtpPacket, audio_level

JUDGE_DELAY_S: Final = 0.25
RATE_WINDOW_S: Final = 1.0
INFER_AFTER: Final = 100
"""RTP packets of one stream collected to infer the audio-level id when no SDP named it."""
INFER_KEEP: Final = 20_000
"""At most this many packets wait for the inference (then the oldest are judged without)."""
TELEMETRY_KEPT: Final = 8


@dataclass
class StreamState:
    """One outgoing RTP stream (5-tuple + SSRC, as Wireshark's RTP Streams)."""

    name: str
    ssrc: int
    payload_type: int = -1
    packets: int = 0
    payload_bytes: int = 0
    last_level: int | None = None
    leveled: int = 0
    recent: collections.deque[tuple[float, int]] = field(
        default_factory=lambda: collections.deque(maxlen=4096)
    )

    @property
    def audio(self) -> bool:
        return self.leveled > 0


@dataclass(frozen=True, slots=True)
class StreamView:
    """What the screen shows of one stream."""

    name: str
    audio: bool
    packets: int
    rate: float
    """Packets per second over the last :data:`RATE_WINDOW_S`."""
    median_size: int | None
    level: int | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    muted: bool | None
    mute_source: str | None
    mute_since: float | None
    streams: tuple[StreamView, ...]
    telemetry: tuple[str, ...]
    counts: dict[str, int]
    alarms: tuple[Alarm, ...]
    level_id: int | None


class LiveState:
    """Everything the live view shows; ``on_alarm`` is called once per alarm, as it fires."""

    def __init__(
        self,
        *,
        local: Iterable[str] = (),
        audio_level_id: int | None = None,
        on_alarm: Callable[[Alarm], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self.local = frozenset(local)
        self.level_id = audio_level_id
        self._level_from = "given" if audio_level_id else None
        self.on_alarm = on_alarm
        self.clock = clock
        self.timeline = MuteTimeline()
        self.streams: dict[tuple[str, int, str, int, int], StreamState] = {}
        self.counts: collections.Counter[str] = collections.Counter()
        self.telemetry: collections.deque[str] = collections.deque(maxlen=TELEMETRY_KEPT)
        self.alarms: list[Alarm] = []
        self.raised: dict[Alarm, float] = {}
        """When each alarm was raised (this process's clock): its latency is ``raised - t``."""
        self._alarmed: set[tuple[str, float]] = set()
        self._pending: collections.deque[tuple[float, str, int]] = collections.deque()
        self._sample: list[RtpPacket] = []
        self._per_ssrc: collections.Counter[int] = collections.Counter()
        self._unleveled: list[tuple[float, str, RtpPacket]] = []
        self._audio_types: set[int] | None = None
        """Audio payload types from the SDP (None: no SDP, audio is told by sizes)."""

    # -- mute state -----------------------------------------------------------------------
    def mark(self, t: float, muted: bool, source: str = "mark") -> None:
        """A mute change known here first (a key, a plan step); the addon logs it too."""
        with self._lock:
            self.timeline.update(t, muted, source if source in SOURCES else "mark")

    # -- the addon's events ---------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        alarm: Alarm | None = None
        with self._lock:
            kind = str(event.get("kind"))
            self.counts[f"events.{kind}"] += 1
            if kind == "mute" and event.get("state") in ("muted", "unmuted"):
                source = str(event.get("source", "mark"))
                at = event.get("at", event.get("t"))
                if source in SOURCES and isinstance(at, int | float):
                    self.timeline.update(float(at), event["state"] == "muted", source)
            elif kind == "sdp":
                self._sdp(event)
            elif kind == "telemetry":
                endpoint = event.get("endpoint", "?")
                state = "MUTED" if event.get("muted") else "unmuted"
                finding = f" finding ({event.get('severity')})" if event.get("finding") else ""
                self.telemetry.append(f"{_clock(event.get('t'))} {state}{finding} {endpoint}")
            alarm = event_alarm(event)
            if alarm is not None and self.timeline.state_at(alarm.t) is not True:
                alarm = None  # the addon learnt of an unmute late (a mark is a request away)
            if alarm is not None and not self._first(alarm):
                alarm = None
        if alarm is not None:
            self._fire(alarm)

    def _sdp(self, event: dict[str, Any]) -> None:
        text = event.get("sdp")
        if not isinstance(text, str):
            return
        try:
            sdp = parse_sdp(text)
        except (MalformedPacket, ValueError):
            self.counts["sdp.malformed"] += 1
            return
        audio = {pt for pt, (kind, _) in payload_types(sdp).items() if kind == "audio"}
        self._audio_types = (self._audio_types or set()) | audio
        found = audio_level_extension_id(sdp)
        if found and self._level_from in (None, "inferred"):
            self.level_id, self._level_from = found, "sdp"

    # -- the capture ----------------------------------------------------------------------
    def on_datagram(self, datagram: Datagram) -> None:
        with self._lock:
            self._datagram(datagram)

    def _datagram(self, datagram: Datagram) -> None:
        self.counts["datagrams"] += 1
        payload = datagram.payload
        try:
            inner = demux.unwrap_turn(payload)
        except MalformedPacket:
            self.counts["turn.malformed"] += 1
            return
        if inner is not None:
            payload = inner[1]
        kind = demux.classify(payload)
        self.counts[kind.value] += 1
        if kind is not PacketKind.RTP:
            return
        if self.local and datagram.src not in self.local:
            return
        try:
            packet = RtpPacket.parse(payload, srtp=True)
        except MalformedPacket:
            self.counts["rtp.malformed"] += 1
            return
        t = datagram.timestamp_ns / 1e9
        key = (datagram.src, datagram.src_port, datagram.dst, datagram.dst_port, packet.ssrc)
        stream = self.streams.get(key)
        if stream is None:
            name = (
                f"SSRC 0x{packet.ssrc:08x} {datagram.src}:{datagram.src_port} -> "
                f"{datagram.dst}:{datagram.dst_port}"
            )
            stream = self.streams[key] = StreamState(name, packet.ssrc)
        stream.packets += 1
        stream.payload_type = packet.payload_type
        stream.payload_bytes += packet.payload_length
        stream.recent.append((t, packet.payload_length))
        if self.level_id is None:
            self._infer(t, stream.name, packet)
            return
        self._level(t, stream, packet)

    def _level(self, t: float, stream: StreamState, packet: RtpPacket) -> None:
        assert self.level_id is not None
        try:
            found = audio_level(packet, self.level_id)
        except MalformedPacket:
            self.counts["rtp.malformed_level"] += 1
            return
        if found is None:
            return
        stream.leveled += 1
        stream.last_level = found.level
        if loud(found.level):
            self._pending.append((t, stream.name, found.level))

    def _infer(self, t: float, name: str, packet: RtpPacket) -> None:
        """No SDP yet: keep the first packets and infer the id as the offline path does, once
        a stream has :data:`INFER_AFTER` of them."""
        if len(self._sample) >= INFER_KEEP:
            del self._sample[0], self._unleveled[0]
        self._sample.append(packet)
        self._unleveled.append((t, name, packet))
        self._per_ssrc[packet.ssrc] += 1
        if self._per_ssrc[packet.ssrc] < INFER_AFTER:
            return
        source = infer_audio_level_id(self._sample)
        self._sample, self._per_ssrc = [], collections.Counter()
        if source.extension_id is not None:
            self.level_id, self._level_from = source.extension_id, "inferred"
            by_name = {s.name: s for s in self.streams.values()}
            for at, stream_name, kept in self._unleveled:
                self._level(at, by_name[stream_name], kept)
        self._unleveled = []

    # -- judging --------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> list[Alarm]:
        """Judge the loud packets old enough to be judged; fire and return new alarms."""
        now = self.clock() if now is None else now
        fired: list[Alarm] = []
        with self._lock:
            while self._pending and now - self._pending[0][0] >= JUDGE_DELAY_S:
                t, name, level = self._pending.popleft()
                change = self.timeline.change_at(t)
                since = change.t if change is not None and change.muted else None
                alarm = packet_alarm(t, name, level, since)
                if alarm is not None and self._first(alarm):
                    fired.append(alarm)
            fired += self._judge_sizes(now)
        for alarm in fired:
            self._fire(alarm)
        return fired

    def _judge_sizes(self, now: float) -> list[Alarm]:
        """Audio streams without levels: their sizes since the mute (called under the lock)."""
        change = self.timeline.change_at(now - JUDGE_DELAY_S)
        if change is None or not change.muted:
            return []
        fired = []
        start, end = change.t + GRACE_S, now - JUDGE_DELAY_S
        for stream in self.streams.values():
            if stream.leveled or not self._audio_like(stream):
                continue
            sizes = []
            for at, size in reversed(stream.recent):
                if at < start:
                    break
                if at <= end:
                    sizes.append(size)
            alarm = sizes_alarm(end, stream.name, sizes)
            if alarm is not None and self._first(alarm):
                fired.append(alarm)
        return fired

    def _audio_like(self, stream: StreamState) -> bool:
        """Audio by the SDP's payload types, or without SDP by its small payloads."""
        if self._audio_types is not None:
            return stream.payload_type in self._audio_types
        sizes = sorted(size for _, size in stream.recent)
        return bool(sizes) and sizes[len(sizes) // 2] <= AUDIO_PAYLOAD_MAX

    def flush(self) -> list[Alarm]:
        """End of input: judge everything still waiting."""
        return self.tick(float("inf"))

    def _first(self, alarm: Alarm) -> bool:
        """Once per subject and mute window (called under the lock)."""
        change = self.timeline.change_at(alarm.t)
        key = (alarm.subject, change.t if change is not None else 0.0)
        if key in self._alarmed:
            return False
        self._alarmed.add(key)
        self.alarms.append(alarm)
        return True

    def _fire(self, alarm: Alarm) -> None:
        self.counts["alarms"] += 1
        self.raised[alarm] = self.clock()
        if self.on_alarm is not None:
            self.on_alarm(alarm)

    # -- the screen -----------------------------------------------------------------------
    def snapshot(self, now: float | None = None) -> Snapshot:
        now = self.clock() if now is None else now
        with self._lock:
            views = []
            for stream in self.streams.values():
                latest = stream.recent[-1][0] if stream.recent else now
                horizon = max(now, latest) - RATE_WINDOW_S
                window = []
                for at, size in reversed(stream.recent):  # newest first: stop at the horizon
                    if at <= horizon:
                        break
                    window.append(size)
                sizes = sorted(window)
                views.append(
                    StreamView(
                        stream.name,
                        stream.audio,
                        stream.packets,
                        len(window) / RATE_WINDOW_S,
                        sizes[len(sizes) // 2] if sizes else None,
                        stream.last_level,
                    )
                )
            last = self.timeline.changes[-1] if self.timeline.changes else None
            return Snapshot(
                muted=last.muted if last else None,
                mute_source=last.source if last else None,
                mute_since=last.t if last else None,
                streams=tuple(views),
                telemetry=tuple(self.telemetry),
                counts=dict(self.counts),
                alarms=tuple(self.alarms),
                level_id=self.level_id,
            )


def _clock(t: object) -> str:
    if not isinstance(t, int | float):
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(float(t)))
