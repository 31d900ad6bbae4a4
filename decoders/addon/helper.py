"""Helper processes of the addon (the flow writer, the observer): starting one, and the frames
(4-byte little-endian length, then a pickle) they read and write over pipes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

HEADER = 4
PIPE_SIZE = 1 << 20
"""Bytes a pipe to a helper may hold (Linux raises it up to pipe-max-size, 1 MiB by default):
bursts do not block the proxy while the helper catches up."""


def start(module: str, *arguments: str) -> subprocess.Popen[bytes]:
    """``python -m module arguments`` with pipes on stdin and stdout, finding this package
    even when it is not installed (the addon may run from a checkout), in a session of its own:
    a Ctrl-C meant for mitmdump must not stop a helper before mitmdump's done hook has handed it
    the last things to write. OSError when it cannot be started."""
    root = str(Path(__file__).resolve().parent.parent.parent)
    path = os.environ.get("PYTHONPATH")
    process = subprocess.Popen(
        [sys.executable, "-m", module, *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": root if not path else root + os.pathsep + path},
        start_new_session=True,
    )
    assert process.stdin is not None
    widen(process.stdin)
    return process


def frame(data: bytes) -> bytes:
    """One frame around already pickled ``data``."""
    return len(data).to_bytes(HEADER, "little") + data


def read_exactly(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, or fewer when the stream ends first."""
    parts = []
    while size:
        part = stream.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def read_frame(stream: IO[bytes]) -> bytes | None:
    """The data of the next frame; None at the end (or a frame cut by a process that died)."""
    header = read_exactly(stream, HEADER)
    if len(header) < HEADER:
        return None
    size = int.from_bytes(header, "little")
    data = read_exactly(stream, size)
    return data if len(data) == size else None


def widen(pipe: IO[Any]) -> None:
    """Make the pipe hold PIPE_SIZE bytes where the system allows it (Linux)."""
    try:
        import fcntl  # POSIX only

        command = getattr(fcntl, "F_SETPIPE_SZ", None)
        if command is not None:
            fcntl.fcntl(pipe.fileno(), command, PIPE_SIZE)
    except (ImportError, OSError):
        pass  # a smaller pipe: the proxy waits for the helper sooner
