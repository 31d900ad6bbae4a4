"""Growing files: a capture read while it is written gives the frames of the finished file."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from decoders.live.tail import FollowFile, LineTail, TeeReader
from decoders.wire.capture import CaptureReader, open_capture

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "chromium-ui-only" / "capture.pcapng"


def _write_slowly(data: bytes, path: Path, done: threading.Event, piece: int = 997) -> None:
    """Append ``data`` in odd-sized pieces (blocks cut anywhere), as a writer would."""
    with path.open("wb") as handle:
        for start in range(0, len(data), piece):
            handle.write(data[start : start + piece])
            handle.flush()
            time.sleep(0.001)
    done.set()


def test_capture_read_while_written_equals_the_file(tmp_path: Path) -> None:
    path = tmp_path / "growing.pcapng"
    stop = threading.Event()
    writer = threading.Thread(target=_write_slowly, args=(CAPTURE.read_bytes(), path, stop))
    writer.start()  # the file does not exist yet when the reader starts waiting
    source = FollowFile(path, stop)
    frames = list(CaptureReader(source))  # type: ignore[arg-type]
    writer.join()
    with open_capture(CAPTURE) as reader:
        expected = list(reader)
    assert frames == expected and len(frames) == 756
    source.close()


def test_follow_file_returns_short_only_once_stopped(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    stop = threading.Event()
    source = FollowFile(path, stop, poll_s=0.01)
    assert source.read(2) == b"ab"
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    assert source.read(5) == b"c"  # what there is
    assert source.read(5) == b""  # waited for nothing more: the end
    assert time.monotonic() - started < 2
    source.close()


def test_line_tail_keeps_a_half_written_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    tail = LineTail(path)
    assert tail.lines() == []  # not there yet
    path.write_bytes(b'{"a": 1}\n{"b"')
    assert tail.lines() == [b'{"a": 1}\n']
    with path.open("ab") as handle:
        handle.write(b": 2}\n\n")
    assert tail.lines() == [b'{"b": 2}\n']
    assert tail.lines() == []


def test_tee_reader_copies_what_is_read_and_the_rest(tmp_path: Path) -> None:
    data = CAPTURE.read_bytes()
    copy = tmp_path / "copy.pcapng"
    reader = subprocess.Popen(["cat", str(CAPTURE)], stdout=subprocess.PIPE)
    assert reader.stdout is not None
    tee = TeeReader(reader.stdout, copy.open("wb"))
    frames = [frame for _, frame in zip(range(10), CaptureReader(tee), strict=False)]  # type: ignore[arg-type]
    assert len(frames) == 10 and 0 < copy.stat().st_size < len(data)
    tee.drain()
    tee.close()
    reader.wait()
    assert copy.read_bytes() == data
