"""The live view in a real pseudo-terminal (tmux), its screen text asserted; keys m and q."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from decoders.live.alarm import Alarm
from decoders.live.state import LiveState
from decoders.live.view import LiveView, level_meter

ROOT = Path(__file__).resolve().parents[2]


def test_level_meter() -> None:
    assert level_meter(0) == "#" * 20 + "    0 dBov"
    assert level_meter(40) == "#" * 10 + "." * 10 + "  -40 dBov"
    assert level_meter(127) == "." * 20 + " -127 dBov"
    assert level_meter(None).strip() == "- dBov"


def test_view_renders_to_a_file_without_a_keyboard() -> None:
    out = io.StringIO()
    view = LiveView("watch x", out=out, keyboard=False)
    view.line("proxy: up")
    view.alarm(Alarm(1.0, "telemetry", "wss://m.example/v1", "[high] level=3"))
    view.refresh(LiveState().snapshot())
    view.close()
    text = out.getvalue()
    assert "ALARM: volume telemetry left while muted: wss://m.example/v1" in text
    assert "mute state: unknown" in text and "proxy: up" in text


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _wait_for(name: str, ready: Callable[[str], bool], timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-t", name)
        if ready(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"screen never got there:\n{screen}")


def test_watch_screen_under_tmux(tmp_path: Path) -> None:
    name = f"mutecheck-view-{os.getpid()}"
    done = tmp_path / "done"
    command = (
        f"unset COLUMNS LINES; cd {ROOT} && PYTHONPATH={ROOT} {sys.executable} "
        "-c 'from decoders.cli import main; main()' "
        "watch captures/chromium-ui-only/capture.pcapng "
        "--events captures/chromium-ui-only/events.jsonl "
        f"--local 10.77.0.1; echo exit=$? > {done}; sleep 60"
    )
    _tmux("new-session", "-d", "-s", name, "-x", "220", "-y", "40", command)
    try:
        screen = _wait_for(name, lambda s: "756 frames" in s and "ALARM:" in s)
        assert "mutecheck watch" in screen and "unmuted (mark, since" in screen
        assert (
            "ALARM: sound is leaving while muted: SSRC 0x08d5a265 10.77.0.1:54942 -> "
            "10.77.0.2:41384: audio level -26 dBov" in screen
        )
        assert "outgoing streams" in screen and "pkt/s" in screen and "audio level" in screen
        row = next(
            line
            for line in screen.splitlines()
            if "SSRC 0x08d5a265 10.77.0.1:54942" in line and "ALARM" not in line
        )
        assert "audio" in row and "704" in row and "dBov" in row
        assert "keys: m muted  u unmuted  q quit" in screen
        _tmux("send-keys", "-t", name, "m")
        _wait_for(name, lambda s: "MUTED (mark, since" in s)
        _tmux("send-keys", "-t", name, "q")
        screen = _wait_for(name, lambda s: "1 outgoing stream(s), 1 alarm(s)" in s)
        deadline = time.monotonic() + 10
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.read_text().strip() == "exit=0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
