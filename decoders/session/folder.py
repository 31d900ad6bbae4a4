"""The session folder: where each file of an audited call lives (docs/session-format.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CAPTURE_NAMES = ("capture.pcapng", "capture.pcap", "capture.pcapng.gz", "capture.pcap.gz")
SDP_NAMES = ("offer.sdp", "answer.sdp")


@dataclass(frozen=True, slots=True)
class SessionFiles:
    """Paths of one session's files; ``None`` where a file is absent."""

    folder: Path | None
    capture: Path
    sdp: tuple[Path, ...]
    events: Path | None
    timeline: Path | None
    keys: Path | None


def locate(path: Path, *, sdp: tuple[Path, ...] = ()) -> SessionFiles:
    """Resolve a capture file or a session folder into the files the analyser reads.

    Raises ``FileNotFoundError`` with a one-line message when there is no capture.
    """
    if path.is_dir():
        capture = next((path / n for n in CAPTURE_NAMES if (path / n).is_file()), None)
        if capture is None:
            found = sorted(p.name for p in path.glob("*.pcap*"))
            if len(found) == 1:
                capture = path / found[0]
            else:
                raise FileNotFoundError(
                    f"{path}: no capture.pcapng or capture.pcap in this session folder"
                )
        sdp_files = sdp or tuple(path / n for n in SDP_NAMES if (path / n).is_file())
        return SessionFiles(
            folder=path,
            capture=capture,
            sdp=sdp_files,
            events=_maybe(path / "events.jsonl"),
            timeline=_maybe(path / "timeline.json"),
            keys=_maybe(path / "keys.json"),
        )
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return SessionFiles(folder=None, capture=path, sdp=sdp, events=None, timeline=None, keys=None)


def _maybe(path: Path) -> Path | None:
    return path if path.is_file() else None
