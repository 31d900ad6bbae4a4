"""The live view: a terminal screen refreshed a few times a second, with keys m, u and q.

Built on ``rich`` (``rich.live.Live`` redrawing a table): it only renders, so the audit
keeps its own loop, threads and timing, and the same loop drives plain lines when stdout is
not a terminal. mitmproxy's ``urwid`` would want to own the main loop (its own event loop and
input handling), for a screen that has nothing to edit or scroll.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import sys
import termios
import threading
import time
import tty
from typing import Final, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from decoders.live.alarm import Alarm
from decoders.live.state import Snapshot

REFRESH_PER_S: Final = 3
"""Redraws a second (each redraws the whole screen)."""
ALARM_REDRAW_S: Final = 0.1
"""An alarm redraws at once unless the screen was drawn this recently."""
METER_WIDTH: Final = 20
LOG_LINES: Final = 6
MAX_ROWS: Final = 8
"""Streams shown (audio first, busiest first); the rest are counted."""


def level_meter(level: int | None, width: int = METER_WIDTH) -> str:
    """An RFC 6464 level (0 loud .. 127 silence) as a bar over -80..0 dBov, and its value."""
    if level is None:
        return " " * width + "    - dBov"
    filled = max(0, min(width, round((80 - min(level, 80)) / 80 * width)))
    return "#" * filled + "." * (width - filled) + f" {-level:>4} dBov"


class LiveView:
    """The screen of ``mutecheck audit`` / ``watch`` on a terminal (a :class:`Screen`)."""

    refresh_s = 1 / REFRESH_PER_S

    def __init__(self, title: str, out: TextIO | None = None, keyboard: bool = True) -> None:
        self.title = title
        self.console = Console(file=out or sys.stdout)
        self.started = time.time()
        self.log: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self.alarm_lines: list[str] = []
        self._keys: list[str] = []
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._live = Live(
            self._render(), console=self.console, auto_refresh=False, screen=False, transient=False
        )
        self._live.start()
        self._last = 0.0
        self._terminal: list[object] | None = None
        self._stop = threading.Event()
        if keyboard and sys.stdin.isatty():
            self._terminal = termios.tcgetattr(sys.stdin.fileno())
            tty.setcbreak(sys.stdin.fileno())
            threading.Thread(target=self._read_keys, daemon=True).start()

    def _read_keys(self) -> None:
        fd = sys.stdin.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                key = os.read(fd, 1).decode(errors="replace")
                with self._lock:
                    self._keys.append(key)

    # -- Screen ---------------------------------------------------------------------------
    def line(self, text: str) -> None:
        """Shown at the next refresh (at most :data:`REFRESH_PER_S` a second)."""
        self.log.append(f"{time.strftime('%H:%M:%S')} {text}")
        self._redraw()

    def alarm(self, alarm: Alarm) -> None:
        """Shown at once (a burst of alarms: within :data:`ALARM_REDRAW_S`, or the next refresh)."""
        self.alarm_lines.append(f"{time.strftime('%H:%M:%S')} {alarm.line()}")
        self._redraw(force=time.monotonic() - self._last >= ALARM_REDRAW_S)

    def refresh(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._redraw()

    def pressed(self) -> str:
        with self._lock:
            keys, self._keys = "".join(self._keys), []
        return keys

    def close(self) -> None:
        self._stop.set()
        self._redraw(force=True)
        self._live.stop()
        if self._terminal is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._terminal)  # type: ignore[arg-type]
            self._terminal = None

    # -- drawing --------------------------------------------------------------------------
    def _redraw(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= 1 / REFRESH_PER_S:
            self._last = now
            self._live.update(self._render(), refresh=True)

    def _render(self) -> Group:
        snapshot = getattr(self, "_snapshot", None)
        parts: list[object] = [self._header(snapshot)]
        if self.alarm_lines:
            alarms = Text("\n".join(self.alarm_lines[-4:]), style="bold white on red")
            parts.append(Panel(alarms, title="ALARM", border_style="red"))
        parts.append(self._streams(snapshot))
        if snapshot is not None and snapshot.telemetry:
            parts.append(Panel("\n".join(snapshot.telemetry[-4:]), title="telemetry (addon)"))
        parts.append(Text(self._counts(snapshot), style="dim"))
        parts.append(Text("\n".join(getattr(self, "log", ())), style="dim"))
        return Group(*parts)  # type: ignore[arg-type]

    def _header(self, snapshot: Snapshot | None) -> Text:
        elapsed = time.time() - self.started
        text = Text(f"mutecheck {self.title}  {elapsed:6.1f} s   ", style="bold")
        if snapshot is None or snapshot.muted is None:
            text.append("mute state: unknown", style="yellow")
        elif snapshot.muted:
            since = time.strftime("%H:%M:%S", time.localtime(snapshot.mute_since or 0))
            text.append(f"MUTED ({snapshot.mute_source}, since {since})", style="bold red")
        else:
            since = time.strftime("%H:%M:%S", time.localtime(snapshot.mute_since or 0))
            text.append(f"unmuted ({snapshot.mute_source}, since {since})", style="green")
        text.append("   keys: m muted  u unmuted  q quit", style="dim")
        return text

    def _streams(self, snapshot: Snapshot | None) -> Text:
        """The outgoing streams as fixed-width lines (a rich Table costs ~5 ms a redraw)."""
        streams = sorted(
            snapshot.streams if snapshot is not None else (),
            key=lambda s: (not s.audio, -s.rate, s.name),
        )
        width = max([len(s.name) for s in streams[:MAX_ROWS]] + [len("stream")])
        lines = [
            "outgoing streams",
            f"  {'stream':<{width}}  {'kind':<5}  {'packets':>8}  {'pkt/s':>5}  "
            f"{'size B':>6}  audio level",
        ]
        for stream in streams[:MAX_ROWS]:
            size = "-" if stream.median_size is None else str(stream.median_size)
            meter = level_meter(stream.level) if stream.audio else ""
            lines.append(
                f"  {stream.name:<{width}}  {'audio' if stream.audio else 'other':<5}  "
                f"{stream.packets:>8}  {stream.rate:>5.0f}  {size:>6}  {meter}"
            )
        if len(streams) > MAX_ROWS:
            lines.append(f"  and {len(streams) - MAX_ROWS} more streams")
        text = Text("\n".join(lines))
        text.stylize("bold", 0, len(lines[0]))
        return text

    @staticmethod
    def _counts(snapshot: Snapshot | None) -> str:
        if snapshot is None:
            return "recorded: nothing yet"
        c = snapshot.counts
        events = sum(v for k, v in c.items() if k.startswith("events."))
        return (
            f"recorded: {c.get('frames', 0)} frames, {c.get('rtp', 0)} RTP, "
            f"{c.get('rtcp', 0)} RTCP, {c.get('stun', 0)} STUN, {c.get('dtls', 0)} DTLS, "
            f"{events} addon events, {c.get('alarms', 0)} alarms; audio level id "
            f"{snapshot.level_id if snapshot.level_id is not None else '?'}"
        )
