"""Finding the files of a session folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from decoders.session.folder import locate


def test_session_folder(session_dir: Path) -> None:
    files = locate(session_dir)
    assert files.capture == session_dir / "capture.pcapng"
    assert files.sdp[0].name == "offer.sdp"
    assert files.timeline == session_dir / "timeline.json"
    assert files.keys == session_dir / "keys.json"


def test_plain_capture_and_explicit_sdp(tmp_path: Path) -> None:
    capture = tmp_path / "x.pcap"
    capture.write_bytes(b"")
    sdp = tmp_path / "a.sdp"
    files = locate(capture, sdp=(sdp,))
    assert files.folder is None and files.capture == capture and files.sdp == (sdp,)


def test_folder_with_one_other_capture(tmp_path: Path) -> None:
    (tmp_path / "call.pcapng").write_bytes(b"")
    assert locate(tmp_path).capture.name == "call.pcapng"


def test_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no capture"):
        locate(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        locate(tmp_path / "missing.pcap")
