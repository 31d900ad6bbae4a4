"""Reading files that another process is still writing.

:class:`FollowFile` makes a growing file (dumpcap's pcapng) look like a pipe: ``read`` waits
until the bytes asked for are there, so the offline reader
(:class:`decoders.wire.capture.CaptureReader`) reads a capture while it is written, with no
second parser. :class:`LineTail` hands over the whole lines appended to a file (the addon's
``events.jsonl``), never a half-written one.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO, BinaryIO

POLL_S = 0.02
"""How long to sleep when the file has no new bytes yet."""


class FollowFile:
    """A read-only view of a file that waits for the writer; ends when ``stop`` is set.

    The file need not exist yet. After ``stop`` the bytes already written are still read out,
    then ``read`` returns what it has (possibly short): the reader sees the end.
    """

    def __init__(self, path: Path, stop: threading.Event, poll_s: float = POLL_S) -> None:
        self.path = path
        self.stop = stop
        self.poll_s = poll_s
        self._file: BinaryIO | None = None

    def _open(self) -> BinaryIO | None:
        if self._file is None:
            try:
                self._file = self.path.open("rb")
            except FileNotFoundError:
                return None
        return self._file

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes; waits for at least one byte unless stopped (-1: what is there)."""
        while True:
            handle = self._open()
            if handle is not None:
                chunk = handle.read(size)
                if chunk or size == 0:
                    return chunk
            if self.stop.is_set():
                handle = self._open()  # the writer may have finished in the meantime
                return handle.read(size) if handle is not None else b""
            self.stop.wait(self.poll_s)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class LineTail:
    """The complete lines appended to a file since the last call (the file may appear later)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def lines(self) -> list[bytes]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        return [line + b"\n" for line in complete if line.strip()]


class TeeReader:
    """Reads a pipe (``dumpcap -w -``) and copies every byte read into ``copy`` at once.

    dumpcap writes a pipe packet by packet (a file only every ~0.7 s), so the live view reads
    the pipe and the session's capture file is this copy. :meth:`drain` copies what the
    reader left unread (after damage), up to the pipe's end.
    """

    def __init__(self, source: IO[bytes], copy: IO[bytes]) -> None:
        self.source = source
        self.copy = copy

    def read(self, size: int = -1, /) -> bytes:
        read1 = getattr(self.source, "read1", None)
        data: bytes = read1(size) if read1 is not None and size > 0 else self.source.read(size)
        if data:
            self.copy.write(data)
            self.copy.flush()
        return data

    def drain(self) -> None:
        while self.read(1 << 16):
            pass

    def close(self) -> None:
        self.copy.close()
