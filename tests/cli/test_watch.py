"""``mutecheck watch``: a usage error as one line; the live view's plain lines on real captures
(a file, and standard input through a pipe)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from decoders.cli import main

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_a_missing_capture_is_one_line() -> None:
    result = CliRunner().invoke(main, ["watch", "no-such.pcapng"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.output.strip() == "mutecheck: error: no-such.pcapng: no such capture file"


def test_watch_a_session_prints_the_alarm_and_counts() -> None:
    folder = CAPTURES / "chromium-telemetry-ws"
    result = CliRunner().invoke(
        main,
        [
            *("watch", str(folder / "capture.pcapng"), "--events", str(folder / "events.jsonl")),
            *("--local", "10.77.0.1", "--no-follow"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ALARM: volume telemetry left while muted: ws://10.77.0.2:8080/ws" in result.output
    assert result.output.strip().endswith("753 frames, 702 RTP, 1 outgoing stream(s), 1 alarm(s)")


def test_watch_standard_input_through_a_pipe() -> None:
    capture = (CAPTURES / "chromium-ui-only" / "capture.pcapng").read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", "from decoders.cli import main; main()", "watch", "-"],
        input=capture,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.decode()
        .strip()
        .endswith("756 frames, 704 RTP, 1 outgoing stream(s), 0 alarm(s)")
    )
