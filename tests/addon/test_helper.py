"""Tests for decoders.addon.helper: frames over pipes and starting a helper process."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.addon import helper


@settings(max_examples=100, deadline=None)
@given(items=st.lists(st.binary(max_size=300), max_size=8), cut=st.integers(0, 3000))
def test_frames_read_back_whole_and_a_cut_one_is_not_read(items: list[bytes], cut: int) -> None:
    stream = b"".join(helper.frame(item) for item in items)
    source = io.BytesIO(stream[:cut])
    back = []
    while (data := helper.read_frame(source)) is not None:
        back.append(data)
    whole, end = 0, 0
    for item in items:
        end += helper.HEADER + len(item)
        if end <= cut:
            whole += 1
    assert back == items[:whole]


def test_read_exactly_stops_at_the_end() -> None:
    assert helper.read_exactly(io.BytesIO(b"abc"), 2) == b"ab"
    assert helper.read_exactly(io.BytesIO(b"abc"), 5) == b"abc"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")
def test_widen_makes_a_pipe_hold_a_mebibyte() -> None:
    import fcntl

    read, write = os.pipe()
    with os.fdopen(read, "rb") as reader, os.fdopen(write, "wb") as writer:
        helper.widen(writer)
        assert fcntl.fcntl(reader.fileno(), fcntl.F_GETPIPE_SZ) == helper.PIPE_SIZE


def test_start_finds_the_package_without_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The addon may run from a checkout that is not installed: the helper must import anyway."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.chdir(tmp_path)
    process = helper.start("decoders.addon.flowfile", str(tmp_path / "flows.mitm"))
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline() == b"ready\n"
    assert os.getpgid(process.pid) != os.getpgid(os.getpid())  # ^C for mitmdump is not for it
    process.stdin.close()
    assert process.wait(30) == 0
    process.stdout.close()
