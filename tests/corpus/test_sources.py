"""Finding a corpus's sessions (folders and bare captures, local and fsspec) and their hash."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import fsspec
import pytest
from helpers.corpus import lab_file, lab_session
from helpers.small_corpus import committed_sessions, small_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.corpus.sources import (
    SourceError,
    content_hash,
    find_sessions,
    session_at,
    session_id,
)

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_every_committed_session_is_found_once() -> None:
    found = find_sessions([str(CAPTURES)])
    assert [s.url for s in found] == [str(p) for p in committed_sessions()]
    assert {s.kind for s in found} == {"folder"}
    ui = next(s for s in found if s.name == "chromium-ui-only")
    names = [Path(p).name for p in ui.inputs]
    assert "capture.pcapng" in names and "events.jsonl" in names
    assert str(CAPTURES / "reference.wav") in ui.inputs  # session.json's ../reference.wav


def test_bare_captures_nested_folders_hidden_and_excluded(tmp_path: Path) -> None:
    capture = lab_session("ui-only") / "capture.pcapng"
    (tmp_path / "day1" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "out").mkdir()
    shutil.copy(capture, tmp_path / "day1" / "a.pcapng")
    shutil.copy(capture, tmp_path / "day1" / "deep" / "b.pcap")
    (tmp_path / "day1" / "notes.txt").write_text("not a capture")
    shutil.copy(capture, tmp_path / ".hidden" / "c.pcapng")
    shutil.copy(capture, tmp_path / "out" / "d.pcapng")
    session = tmp_path / "session"
    shutil.copytree(lab_session("track-disabled"), session)
    shutil.copy(capture, session / "extra.pcapng")  # inside a session folder: part of it
    found = find_sessions([str(tmp_path)], exclude=[str(tmp_path / "out")])
    assert [(s.name, s.kind) for s in found] == [
        ("a.pcapng", "capture"),
        ("b.pcap", "capture"),
        ("session", "folder"),
    ]
    assert found[0].inputs == (str(tmp_path / "day1" / "a.pcapng"),)


def test_symbolic_links_are_followed_once(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path)
    (corpus / "linked").symlink_to(lab_session("dtx"))  # a session folder through a link
    (corpus / "loop").symlink_to(corpus)  # a loop back to the top
    names = [s.name for s in find_sessions([str(corpus)])]
    assert sorted(names) == sorted(
        ["chromium-telemetry-http", "chromium-track-disabled", "chromium-ui-only", "linked"]
    )


def test_a_path_given_twice_or_as_a_file_url_is_one_session(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path)
    plain = find_sessions([str(corpus)])
    both = find_sessions([str(corpus), f"file://{corpus}", str(corpus / "chromium-ui-only")])
    assert both == plain
    assert len(plain) == 3


def test_a_missing_path_is_one_line() -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        find_sessions(["/nonexistent/corpus"])


def test_content_hash_follows_every_input_and_nothing_else(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path)
    folder = corpus / "chromium-ui-only"
    first, size = content_hash(session_at(str(folder)))
    assert (
        size
        == sum(p.stat().st_size for p in folder.iterdir())
        + lab_file("reference.wav").stat().st_size
    )
    (folder / "report.json").write_text("{}")  # analyze's own output is not an input
    assert content_hash(session_at(str(folder)))[0] == first
    with (folder / "events.jsonl").open("ab") as fo:
        fo.write(b"\n")
    second = content_hash(session_at(str(folder)))[0]
    assert second != first
    with (corpus / "reference.wav").open("r+b") as fo:  # the shared reference, outside
        fo.seek(100)
        fo.write(b"\x01\x02")
    assert content_hash(session_at(str(folder)))[0] != second


@settings(max_examples=40, deadline=None)
@given(
    files=st.dictionaries(
        st.text(alphabet="abcdefgh", min_size=1, max_size=6).map(lambda n: n + ".pcap"),
        st.binary(max_size=64),
        min_size=1,
        max_size=4,
    ),
    flip=st.integers(min_value=0, max_value=10_000),
)
def test_the_hash_tells_contents_apart(files: dict[str, bytes], flip: int) -> None:
    """A folder of captures on fsspec's in-memory filesystem: each capture's hash is the same
    for the same bytes and differs when one byte changes."""
    fs = fsspec.filesystem("memory")
    root = f"/corpus-{uuid.uuid4().hex}"
    try:
        for name, data in files.items():
            fs.pipe(f"{root}/{name}", data)
        found = find_sessions([f"memory://{root}"])
        assert sorted(s.name for s in found) == sorted(files)
        hashes = {s.name: content_hash(s) for s in found}
        assert all(size == len(files[name]) for name, (_, size) in hashes.items())
        name = sorted(files)[0]
        data = bytearray(files[name] or b"\x00")
        data[flip % len(data)] ^= 0xFF
        fs.pipe(f"{root}/{name}", bytes(data))
        again = next(s for s in find_sessions([f"memory://{root}"]) if s.name == name)
        assert content_hash(again)[0] != hashes[name][0]
    finally:
        fs.rm(root, recursive=True)


def test_local_sessions_are_paths_and_others_urls() -> None:
    session = session_at(str(lab_session("ui-only")))
    assert session.url == str(lab_session("ui-only")) and session.local
    assert session.session_id == session_id(session.url) and len(session.session_id) == 16
    fs = fsspec.filesystem("memory")
    root = f"/ids-{uuid.uuid4().hex}"
    fs.pipe(f"{root}/one.pcapng", b"data")
    try:
        (remote,) = find_sessions([f"memory://{root}"])
        assert remote.url == f"memory://{root}/one.pcapng" and not remote.local
    finally:
        fs.rm(root, recursive=True)
