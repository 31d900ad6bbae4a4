"""The threads that feed a :class:`~decoders.live.state.LiveState`.

:func:`feed_capture` reads a capture while it grows (a :class:`~decoders.live.tail.FollowFile`
or a pipe such as ``dumpcap -w -``) with the offline reader and unwrapper; :func:`feed_events`
follows the addon's ``events.jsonl`` and parses each line with the offline event reader.
Both stop when ``stop`` is set (the capture after reading what was written).
"""

from __future__ import annotations

import datetime
import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from decoders.errors import CaptureError, MalformedPacket
from decoders.live.state import LiveState
from decoders.live.tail import LineTail
from decoders.media.rtpdump import (
    LogHeader,
    header_time_ns,
    parse_dump_line,
    parse_log_header,
)
from decoders.session.events import UnusableLine, read_events
from decoders.wire.capture import CaptureReader
from decoders.wire.net import Datagram, Unwrapper

EVENTS_POLL_S = 0.05


def feed_capture(source: BinaryIO, state: LiveState) -> str | None:
    """Read frames until the source ends; returns the reader's damage note or error, if any."""
    try:
        reader = CaptureReader(source)
    except CaptureError as error:
        state.counts["capture.unreadable"] += 1
        return str(error)
    unwrapper = Unwrapper()
    for frame in reader:
        state.counts["frames"] += 1
        for datagram in unwrapper.feed(frame):
            state.on_datagram(datagram)
    for datagram in unwrapper.flush():
        state.on_datagram(datagram)
    return reader.damage


def feed_events_once(tail: LineTail, state: LiveState) -> int:
    """Hand the complete new lines of the events file to ``state``; returns how many."""
    lines = tail.lines()
    if not lines:
        return 0
    unusable: list[UnusableLine] = []
    count = 0
    for event in read_events(io.BytesIO(b"".join(lines)), unusable):
        state.on_event(dict(event))
        count += 1
    if unusable:
        state.counts["events.unusable"] += len(unusable)
    return count


def feed_events(path: Path, state: LiveState, stop: threading.Event) -> None:
    """Follow ``path`` until ``stop``; then read what is left."""
    tail = LineTail(path)
    while not stop.is_set():
        feed_events_once(tail, state)
        stop.wait(EVENTS_POLL_S)
    feed_events_once(tail, state)


DUMP_SOURCE = "browser(rtp-dump)"
"""The address the live state gives packets read from Chromium's RTP dump (it has none)."""
DUMP_PEER = "peer"


class DumpTail:
    """Follows Chromium's stderr log: each ``# RTP_DUMP`` line, timed by the log header last
    seen before it (the header often stands on the line before), as in the offline import."""

    def __init__(self, path: Path, year: int) -> None:
        self.lines = LineTail(path)
        self.year = year
        self.header: LogHeader | None = None

    def feed_once(self, state: LiveState) -> int:
        """Hand the new sent packets to ``state`` as datagrams from :data:`DUMP_SOURCE`."""
        count = 0
        for raw in self.lines.lines():
            line = raw.decode(errors="replace")
            self.header = parse_log_header(line) or self.header
            try:
                dumped = parse_dump_line(line)
            except MalformedPacket:
                state.counts["rtpdump.malformed"] += 1
                continue
            if dumped is None or not dumped.outbound or self.header is None:
                continue
            try:
                t_ns = header_time_ns(self.header, self.year, None)
            except ValueError:  # 29 February of a common year
                state.counts["rtpdump.bad log date"] += 1
                continue
            datagram = Datagram(0, t_ns, DUMP_SOURCE, 0, DUMP_PEER, 0, "udp", dumped.data)
            state.on_datagram(datagram)
            count += 1
        return count


def feed_rtpdump(path: Path, state: LiveState, stop: threading.Event) -> None:
    """Follow Chromium's stderr log until ``stop``; then read what is left."""
    tail = DumpTail(path, datetime.date.today().year)
    while not stop.is_set():
        tail.feed_once(state)
        stop.wait(EVENTS_POLL_S)
    tail.feed_once(state)


def start_thread(name: str, target: Callable[..., object], *args: object) -> threading.Thread:
    """A daemon thread running ``target(*args)``."""
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread
