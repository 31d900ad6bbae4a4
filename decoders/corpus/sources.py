"""Where a corpus's sessions are: every session folder and bare capture under some paths.

A path is a local path or an fsspec URL (``file://``, and ``s3://``, ``gs://``, ``memory://`` …
when the user has that filesystem's package). Under it, a folder is **a session** when it holds
what the analyser reads first (a capture named as in :data:`decoders.session.folder.CAPTURE_NAMES`,
or ``events.jsonl``, ``flows.mitm``, ``session.json``); its sub-folders are not searched. Any
other folder is searched, and each capture file in it (``.pcap``, ``.pcapng``, ``.cap``, and
those ``.gz``) is a session of its own, as ``mutecheck analyze CAPTURE`` reads it. Hidden
folders (``.name``) and a folder the caller leaves out (the batch's own output) are skipped;
symbolic links are followed, each folder searched once.

Each session has a **content hash** (:func:`content_hash`): SHA-256 over the name, size and
bytes of every input file, in name order. The inputs of a folder are its files (not
``report.json``, which ``analyze`` writes there) plus the reference signal its ``session.json``
names outside it (the lab's ``../reference.wav``); of a bare capture, the capture.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import fsspec
from fsspec.implementations.local import LocalFileSystem

from decoders.session.folder import CAPTURE_NAMES

CAPTURE_SUFFIXES: Final = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz")
"""Names of bare captures found in a searched folder."""
SESSION_MARKERS: Final = (*CAPTURE_NAMES, "events.jsonl", "flows.mitm", "session.json")
"""A folder holding one of these is a session folder."""
OUTPUTS: Final = frozenset({"report.json"})
"""Files mutecheck itself writes into a session folder: not inputs."""
HASH_BLOCK: Final = 1 << 20


class SourceError(ValueError):
    """A path given to the batch that cannot be searched (one line)."""


@dataclass(frozen=True)
class Session:
    """One session of a corpus: where it is and what it is made of."""

    url: str
    """The folder or capture: an absolute local path, or the fsspec URL it was found at."""
    kind: str
    """``folder`` or ``capture``."""
    name: str
    """The folder's or the capture's own name."""
    inputs: tuple[str, ...]
    """Its input files (fsspec paths of its filesystem), in name order."""

    @property
    def session_id(self) -> str:
        """A stable short id (16 hex digits of SHA-256 over :attr:`url`)."""
        return session_id(self.url)

    def filesystem(self) -> tuple[fsspec.AbstractFileSystem, str]:
        """The filesystem the session is on and its path there."""
        fs, path = fsspec.core.url_to_fs(self.url)
        return fs, str(path)

    @property
    def local(self) -> bool:
        """On a filesystem this process reads as plain files (local paths, ``file://``)."""
        return isinstance(self.filesystem()[0], LocalFileSystem)


def session_id(url: str) -> str:
    """The stable id of the session at ``url`` (16 hex digits)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def url_of(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A local path as an absolute path, any other as its URL."""
    return path if isinstance(fs, LocalFileSystem) else str(fs.unstrip_protocol(path))


def is_capture_name(name: str) -> bool:
    return name.lower().endswith(CAPTURE_SUFFIXES)


def find_sessions(roots: Iterable[str], *, exclude: Iterable[str] = ()) -> list[Session]:
    """Every session under ``roots`` (see the module docstring), by URL, each once."""
    found: dict[str, Session] = {}
    for root in roots:
        try:
            fs, path = fsspec.core.url_to_fs(root)
        except (ImportError, ValueError) as error:
            raise SourceError(f"{root}: {error}") from None
        skip = {fsspec.core.url_to_fs(e)[1] for e in exclude}
        for session in _search(fs, str(path), root, skip):
            found.setdefault(session.url, session)
    return sorted(found.values(), key=lambda s: s.url)


def session_at(path: str) -> Session:
    """The session at ``path`` itself (a session folder or a capture), as a batch over it
    would find it: the same URL, id and inputs."""
    fs, found = fsspec.core.url_to_fs(path)
    found = str(found).rstrip("/") or "/"
    if not fs.isdir(found):
        return _capture(fs, found)
    entries = [(e["name"], _type(fs, e)) for e in fs.ls(found, detail=True)]
    files = {posixpath.basename(name): name for name, kind in entries if kind == "file"}
    return _folder(fs, found, files)


def _type(fs: fsspec.AbstractFileSystem, entry: dict[str, Any]) -> str:
    """``file`` or ``directory`` (what a symbolic link points to), else ``other``."""
    kind = str(entry.get("type"))
    if entry.get("islink") or kind == "other":
        name = entry["name"]
        kind = "directory" if fs.isdir(name) else "file" if fs.isfile(name) else "other"
    return kind


def _search(
    fs: fsspec.AbstractFileSystem, path: str, root: str, skip: set[str]
) -> Iterator[Session]:
    path = path.rstrip("/") or "/"
    if not fs.exists(path):
        raise SourceError(f"{root}: no such file or folder")
    if not fs.isdir(path):
        yield _capture(fs, path)
        return
    stack = [path]
    seen: set[str] = set()
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder) if isinstance(fs, LocalFileSystem) else folder
        if folder in skip or real in seen:
            continue  # the output, or a folder met before through a symbolic link
        seen.add(real)
        entries = [(e["name"], _type(fs, e)) for e in fs.ls(folder, detail=True)]
        files = {posixpath.basename(name): name for name, kind in entries if kind == "file"}
        if any(marker in files for marker in SESSION_MARKERS):
            yield _folder(fs, folder, files)
            continue
        for name in sorted(files):
            if is_capture_name(name):
                yield _capture(fs, files[name])
        subfolders = [name for name, kind in entries if kind == "directory"]
        stack += sorted(
            (s.rstrip("/") for s in subfolders if not posixpath.basename(s).startswith(".")),
            reverse=True,
        )


def _capture(fs: fsspec.AbstractFileSystem, path: str) -> Session:
    return Session(url_of(fs, path), "capture", posixpath.basename(path), (path,))


def _folder(fs: fsspec.AbstractFileSystem, folder: str, files: dict[str, str]) -> Session:
    inputs = [p for name, p in files.items() if name not in OUTPUTS and not name.startswith(".")]
    reference = _manifest_reference(fs, folder, files.get("session.json"))
    if reference is not None and reference not in inputs:
        inputs.append(reference)
    return Session(url_of(fs, folder), "folder", posixpath.basename(folder), tuple(sorted(inputs)))


def _manifest_reference(
    fs: fsspec.AbstractFileSystem, folder: str, manifest_path: str | None
) -> str | None:
    """The reference signal session.json names (``reference.file``, relative to the folder),
    when it exists: the analysis reads it, so it is an input."""
    manifest = read_manifest(fs, manifest_path)
    info = manifest.get("reference")
    name = info.get("file") if isinstance(info, dict) else None
    if not isinstance(name, str) or not name or posixpath.isabs(name):
        return None
    path = posixpath.normpath(posixpath.join(folder, name))
    return path if fs.isfile(path) else None


def read_manifest(fs: fsspec.AbstractFileSystem, path: str | None) -> dict[str, Any]:
    """session.json as a dict ({} when absent or not a JSON object)."""
    if path is None:
        return {}
    try:
        with fs.open(path, "rb") as fo:
            data = json.loads(fo.read())
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def content_hash(session: Session) -> tuple[str, int]:
    """SHA-256 (hex) over the name (relative to the session), size and bytes of each input,
    and their total size."""
    fs, base = session.filesystem()
    top = base if session.kind == "folder" else posixpath.dirname(base)
    digest = hashlib.sha256()
    total = 0
    for path in session.inputs:
        size = int(fs.size(path))
        digest.update(f"{posixpath.relpath(path, top)}\0{size}\0".encode())
        with fs.open(path, "rb") as fo:
            while block := fo.read(HASH_BLOCK):
                digest.update(block)
        total += size
    return digest.hexdigest(), total
