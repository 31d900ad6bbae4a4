"""``mutecheck watch CAPTURE|-``: the live view and alarm for a capture made elsewhere.

The capture is a file (followed while it grows, or read to its end) or standard input (``ssh
host dumpcap -w - | mutecheck watch -``); marks come from the keys or from an events file
the addon is writing (followed too). Same state, alarm and screen as ``mutecheck audit``.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from decoders.live.feed import feed_capture, feed_events, feed_events_once, start_thread
from decoders.live.screen import Refresher, Screen
from decoders.live.state import LiveState
from decoders.live.tail import FollowFile, LineTail

TICK_S = 0.05


@dataclass(frozen=True)
class WatchConfig:
    capture: Path | None
    """None: standard input."""
    events: Path | None = None
    local: tuple[str, ...] = ()
    follow: bool = True


def run_watch(config: WatchConfig, screen: Screen, stop: threading.Event) -> LiveState:
    """Watch until the capture ends, ``stop`` is set or q is pressed; returns the final state."""
    state = LiveState(local=config.local, on_alarm=screen.alarm)
    feeds_stop = threading.Event()
    threads = []
    if config.events is not None:
        if config.follow or config.capture is None:  # a pipe is live: so are its events
            threads.append(start_thread("events", feed_events, config.events, state, feeds_stop))
        else:  # a finished session: every mark is known before the first packet is judged
            feed_events_once(LineTail(config.events), state)
    source: BinaryIO | FollowFile
    if config.capture is None:
        source = sys.stdin.buffer
    elif config.follow:
        source = FollowFile(config.capture, feeds_stop)
    else:
        source = config.capture.open("rb")
    done = threading.Event()

    def read() -> None:
        damage = feed_capture(source, state)  # type: ignore[arg-type]
        if damage and not feeds_stop.is_set():
            screen.line(f"capture: {damage}")
        done.set()

    threads.append(start_thread("capture", read))
    screen.line(f"watching {config.capture or 'standard input'}")
    refresh = Refresher(screen)
    while not done.is_set() and not stop.is_set():
        for key in screen.pressed():
            if key in "mMuU":
                state.mark(time.time(), key in "mM")
                screen.line(f"mark: {'muted' if key in 'mM' else 'unmuted'} (key)")
            elif key in "qQ":
                stop.set()
        now = time.time()
        state.tick(now)
        refresh(state.snapshot, now)
        done.wait(TICK_S)
    feeds_stop.set()
    for thread in threads:
        thread.join(timeout=2)
    state.flush()
    if screen.refresh_s:
        screen.refresh(state.snapshot())
    return state
