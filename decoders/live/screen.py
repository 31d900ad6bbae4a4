"""What the person sees: plain lines (stdout not a terminal), or the live view (a terminal).

Plain lines: one line per notable thing (start, marks, alarms, the end), flushed at once,
so a script or CI log sees an alarm the moment it fires.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from decoders.live.alarm import Alarm
from decoders.live.state import Snapshot


class Screen(Protocol):
    """Where the engine reports; ``pressed`` returns the keys pressed since the last call;
    ``refresh_s`` is how often it wants a snapshot (0: never, it shows none)."""

    refresh_s: float

    def line(self, text: str) -> None: ...

    def alarm(self, alarm: Alarm) -> None: ...

    def refresh(self, snapshot: Snapshot) -> None: ...

    def pressed(self) -> str: ...

    def close(self) -> None: ...


class PlainLines:
    """One line per event, on ``out`` (stdout by default), each stamped with the wall clock."""

    refresh_s = 0.0

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def line(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.out.write(f"{stamp} {text}\n")
        self.out.flush()

    def alarm(self, alarm: Alarm) -> None:
        self.line(alarm.line())

    def refresh(self, snapshot: Snapshot) -> None:
        del snapshot  # plain lines show no screen

    def pressed(self) -> str:
        return ""

    def close(self) -> None:
        self.out.flush()


class Refresher:
    """Calls ``screen.refresh`` with a fresh snapshot when the screen wants one."""

    def __init__(self, screen: Screen) -> None:
        self.screen = screen
        self._last = float("-inf")

    def __call__(self, snapshot: Callable[[], Snapshot], now: float) -> None:
        if self.screen.refresh_s and now - self._last >= self.screen.refresh_s:
            self._last = now
            self.screen.refresh(snapshot())


def live_screen(title: str) -> Screen:
    """The live view on a terminal (:mod:`decoders.live.view`), plain lines otherwise (a pipe,
    a CI log)."""
    if sys.stdout.isatty():
        from decoders.live.view import LiveView

        return LiveView(title)
    return PlainLines()
