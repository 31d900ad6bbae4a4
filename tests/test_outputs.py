"""Tests for decoders.outputs: a file appears whole or not at all."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from decoders import outputs


def test_write_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    outputs.write_text(target, '{"old": true}\n')
    outputs.write_text(target, '{"new": "é"}\n')
    assert target.read_text(encoding="utf-8") == '{"new": "é"}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.pcapng"
    outputs.write_bytes(target, b"old")
    with pytest.raises(RuntimeError, match="half way"), outputs.atomic_open(target) as handle:
        handle.write(b"new but unfinished")
        raise RuntimeError("half way")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.pcapng"]


def test_a_missing_folder_names_the_target(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "report.json"
    with pytest.raises(FileNotFoundError) as caught:
        outputs.write_text(target, "{}")
    assert caught.value.filename == str(target)


def test_permissions_are_those_of_a_plain_open(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.html"
    outputs.write_text(fresh, "<p>")
    umask = os.umask(0o022)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600
    kept = tmp_path / "kept.json"
    kept.write_text("{}")
    kept.chmod(0o640)
    outputs.write_text(kept, "[]")
    assert kept.stat().st_mode & 0o777 == 0o640


def test_a_reader_never_sees_a_part(tmp_path: Path) -> None:
    """Two writers rewrite one file while a reader polls it: every read is one whole version
    (writing in place gave the reader empty or cut files)."""
    target = tmp_path / "report.json"
    versions = {bytes([65 + n]) * 200_000 for n in range(2)}
    outputs.write_bytes(target, next(iter(versions)))
    stop = threading.Event()

    def write(data: bytes) -> None:
        while not stop.is_set():
            outputs.write_bytes(target, data)

    writers = [threading.Thread(target=write, args=(v,)) for v in versions]
    for thread in writers:
        thread.start()
    seen = []
    try:
        for _ in range(300):
            seen.append(target.read_bytes())
    finally:
        stop.set()
        for thread in writers:
            thread.join()
    assert all(data in versions for data in seen)
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@settings(max_examples=50, deadline=None)
@given(
    name=st.text(
        st.characters(exclude_characters="/\0", exclude_categories=["Cs"]), min_size=1, max_size=40
    )
)
def test_any_file_name(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    assume(name not in (".", "..") and len(name.encode("utf-8", "surrogatepass")) <= 200)
    folder = tmp_path_factory.mktemp("names")
    outputs.write_bytes(folder / name, b"data")
    assert (folder / name).read_bytes() == b"data"
    assert [p.name for p in folder.iterdir()] == [name]


def test_text_a_path_cannot_encode_is_written_escaped(tmp_path: Path) -> None:
    """A folder name's bytes that are not UTF-8 reach a report as lone surrogates: written as
    their escape, never a crash (``mutecheck report`` of such a folder wrote nothing before)."""
    target = tmp_path / "report.html"
    outputs.write_text(target, "<p>/tmp/x\udcffy</p>")
    assert target.read_bytes() == b"<p>/tmp/x\\udcffy</p>"


def test_report_of_a_folder_whose_name_is_not_utf8(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    from helpers.corpus import lab_session

    folder = Path(os.fsdecode(bytes(tmp_path) + b"/x\xffy"))
    shutil.copytree(lab_session("ui-only"), folder)
    html = tmp_path / "r.html"
    done = subprocess.run(
        [sys.executable, "-m", "decoders.cli", "report", str(folder), "--html", str(html), "-q"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"x\\udcffy" in html.read_bytes()
