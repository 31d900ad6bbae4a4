"""Plain lines: one stamped line per notable thing, flushed at once."""

from __future__ import annotations

import io
import re

from decoders.live.alarm import Alarm
from decoders.live.screen import PlainLines
from decoders.live.state import LiveState


def test_plain_lines_stamp_and_flush() -> None:
    out = io.StringIO()
    screen = PlainLines(out)
    screen.line("proxy: up")
    screen.alarm(Alarm(1.0, "telemetry", "wss://m.example/v1", "[high] level=3"))
    screen.refresh(LiveState().snapshot())  # no screen in plain lines
    assert screen.pressed() == ""
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d proxy: up", lines[0])
    assert lines[1].endswith(
        "ALARM: volume telemetry left while muted: wss://m.example/v1: [high] level=3"
    )
    assert len(lines) == 2
