"""The feeding threads: a capture written in real time and an events file followed live."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

from decoders.live.alarm import Alarm
from decoders.live.feed import (
    DUMP_SOURCE,
    DumpTail,
    feed_capture,
    feed_events,
    feed_events_once,
    start_thread,
)
from decoders.live.state import LiveState
from decoders.live.tail import FollowFile, LineTail

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
SESSION = CAPTURES / "chromium-ui-only"


def test_growing_capture_and_events_raise_the_alarm_while_written(tmp_path: Path) -> None:
    capture, events = tmp_path / "capture.pcapng", tmp_path / "events.jsonl"
    fired: list[Alarm] = []
    state = LiveState(local=("10.77.0.1",), on_alarm=fired.append)
    stop = threading.Event()
    threads = [
        start_thread("capture", feed_capture, FollowFile(capture, stop), state),
        start_thread("events", feed_events, events, state, stop),
    ]
    events.write_bytes((SESSION / "events.jsonl").read_bytes())
    data = (SESSION / "capture.pcapng").read_bytes()
    with capture.open("wb") as handle:
        for start in range(0, len(data), 4096):
            handle.write(data[start : start + 4096])
            handle.flush()
            time.sleep(0.002)
    deadline = time.monotonic() + 10
    while state.counts["frames"] < 756 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
    state.flush()
    assert state.counts["frames"] == 756 and state.counts["events.mute"] == 3
    assert len(fired) == 1


def test_events_once_counts_unusable_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = (SESSION / "events.jsonl").read_bytes().splitlines(keepends=True)
    mute = next(line for line in lines if b'"kind":"mute"' in line and b'"muted"' in line)
    path.write_bytes(mute + b"not json\n")
    state = LiveState()
    assert feed_events_once(LineTail(path), state) == 1
    assert state.counts["events.unusable"] == 1 and state.timeline.muted is True


def test_not_a_capture_is_reported_not_raised() -> None:
    state = LiveState()
    problem = feed_capture(io.BytesIO(b"GET / HTTP/1.1\r\n\r\n"), state)
    assert problem is not None and "not a pcap" in problem
    assert state.counts["capture.unreadable"] == 1


def test_rtpdump_lines_feed_the_sent_plaintext_packets(tmp_path: Path) -> None:
    log = CAPTURES / "chromium-ui-only-relay-tcp" / "chromium-stderr.log"
    from decoders.media.rtpdump import parse_rtpdump, read_log_lines

    with log.open("rb") as handle:
        dump = parse_rtpdump(read_log_lines(handle), year=2026)
    state = LiveState(local=(DUMP_SOURCE,))
    growing = tmp_path / "chromium.log"
    tail = DumpTail(growing, 2026)
    data = log.read_bytes()
    growing.write_bytes(data[: len(data) // 3])  # cut inside a line: it waits for the rest
    first = tail.feed_once(state)
    with growing.open("ab") as handle:
        handle.write(data[len(data) // 3 :])
    total = first + tail.feed_once(state)
    assert 0 < first < total == dump.outbound
    (stream,) = state.snapshot().streams
    assert stream.name.startswith("SSRC 0x") and DUMP_SOURCE in stream.name and stream.audio


def test_an_rtpdump_header_dated_29_february_of_a_common_year_is_counted(tmp_path: Path) -> None:
    header = "[5008:5121:0229/221502.212865:VERBOSE1:third_party/webrtc/pc/srtp_session.cc:549] "
    line = (
        "O 00:00:02.212 0000 90 ef 65 69 ee 4f 9d 85 c4 83 53 4f be de 00 01 40 30 10 97 # RTP_DUMP"
    )
    log = tmp_path / "chromium.log"
    log.write_text(f"{header}\n{line}\n")
    state = LiveState(local=(DUMP_SOURCE,))
    assert DumpTail(log, 2026).feed_once(state) == 0
    assert state.counts["rtpdump.bad log date"] == 1
    state = LiveState(local=(DUMP_SOURCE,))
    assert DumpTail(log, 2028).feed_once(state) == 1
