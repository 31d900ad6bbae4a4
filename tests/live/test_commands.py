"""The click commands: usage errors as one line with exit code 2; watch on real captures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from decoders.cli import main

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "ftp://x/", "--out", "o"], "is not an http:// or https:// URL"),
        (["audit", "http://x/", "--out", "o", "--plan", "6:loud"], "is not SECONDS:mute"),
        (["audit", "http://x/", "--out", "o", "--duration", "0"], "--duration"),
        (["watch", "no-such.pcapng"], "no-such.pcapng: no such capture file"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [*args], catch_exceptions=False)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mutecheck: error:") and message in lines[0]


def test_a_visible_browser_needs_a_display(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = CliRunner().invoke(main, ["audit", "http://x/", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "mutecheck: error: no display for a visible browser (DISPLAY is not set): add --headless"
    )
    assert not (tmp_path / "s").exists()


def test_audit_refuses_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "evidence.txt").write_text("keep")
    result = CliRunner().invoke(main, ["audit", "http://x/", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "must be an empty folder" in result.output


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
