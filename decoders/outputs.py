"""Every file mutecheck writes appears whole or not at all.

A reader polling ``report.json`` while another run wrote it saw an empty file about half the
time (issue 13): files were opened in place and filled. Here a file is written to a temporary
file in the same folder (same file system), flushed to disk, given the permissions a plain
``open`` would have given it, then moved over the target with :func:`os.replace`, which is
atomic: a reader sees the old file or the new one, never a part. When writing fails, the
temporary file is removed and the target is left as it was.

Every writer of an output (report.json, the HTML report, the Wireshark companion, decrypted
captures and WAV files, imported RTP dumps, rule files, screenshots, the lab's session files)
goes through :func:`atomic_open`, :func:`write_text` or :func:`write_bytes`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

_PREFIX: Final = "."
_SUFFIX: Final = ".partial"


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """A binary file to fill; on leaving the block without an error it becomes ``path``.

    Raises OSError naming ``path`` when the folder cannot take the temporary file (a missing
    folder, no permission); errors inside the block remove the temporary file and propagate.
    """
    path = Path(path)
    folder = path.parent
    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f"{_PREFIX}{path.name}.", suffix=_SUFFIX, dir=folder
        )
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from error
    done = False
    try:
        with open(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _mode(path))
        os.replace(temporary, path)
        done = True
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def write_bytes(path: Path, data: bytes) -> None:
    """``path`` holds ``data``, atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as handle:
        handle.write(data)


def write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """``path`` holds ``text`` (newlines as given), atomically (see :func:`atomic_open`).

    A character the encoding cannot hold is written as its backslash escape: a path's bytes
    that are not UTF-8 reach Python as lone surrogates (``\udcff``), and a report naming such a
    folder must still be written."""
    write_bytes(path, text.encode(encoding, "backslashreplace"))


def _mode(path: Path) -> int:
    """The permissions a plain ``open(path, "w")`` would leave: the old file's when it is
    replaced, else 0o666 less the umask (mkstemp's own 0o600 would hide reports from others)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
