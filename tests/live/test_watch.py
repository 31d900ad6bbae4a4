"""``run_watch``: a finished capture read to its end, and a growing one followed until stopped."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

from decoders.live.screen import PlainLines
from decoders.live.watch import WatchConfig, run_watch

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_finished_session_read_to_its_end() -> None:
    folder = CAPTURES / "chromium-ui-only"
    out = io.StringIO()
    config = WatchConfig(
        folder / "capture.pcapng", folder / "events.jsonl", ("10.77.0.1",), follow=False
    )
    state = run_watch(config, PlainLines(out), threading.Event())
    assert state.counts["frames"] == 756 and len(state.alarms) == 1
    assert "ALARM: sound is leaving while muted: SSRC 0x08d5a265" in out.getvalue()


def test_followed_file_ends_when_stopped(tmp_path: Path) -> None:
    path = tmp_path / "capture.pcapng"
    data = (CAPTURES / "chromium-track-disabled" / "capture.pcapng").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    stop = threading.Event()

    def finish() -> None:
        time.sleep(0.3)
        with path.open("ab") as handle:
            handle.write(data[len(data) // 2 :])
        time.sleep(0.3)
        stop.set()

    threading.Thread(target=finish).start()
    state = run_watch(WatchConfig(path, follow=True), PlainLines(io.StringIO()), stop)
    assert state.counts["frames"] == 751 and state.alarms == []
