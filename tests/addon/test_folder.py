"""Tests for decoders.addon.folder: the session opens, moves to a new folder, and ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.script_addons import ScriptAddons
from mitmproxy import exceptions
from mitmproxy.test import taddons


def kinds(folder: Path) -> list[str]:
    lines = (folder / "events.jsonl").read_text().splitlines()
    return [json.loads(line)["kind"] for line in lines]


def test_a_session_per_folder(script: ScriptAddons, tmp_path: Path) -> None:
    folder = script.get("SessionFolder")
    with taddons.context(script) as context:
        context.configure(script, mutecheck_dir=str(tmp_path / "a"), mutecheck_observer=False)
        assert not (tmp_path / "a" / "events.jsonl").exists()  # created, not yet opened
        folder.running()
        folder.running()  # once only
        context.configure(script, mutecheck_dir=str(tmp_path / "b"))
        assert script.recorder.session_dir == tmp_path / "b"
        folder.done()
        assert not script.recorder.is_open
    assert kinds(tmp_path / "a") == ["session_start"]
    assert kinds(tmp_path / "b")[0] == "session_start"


def test_a_folder_that_cannot_be_made_is_refused(script: ScriptAddons, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with taddons.context(script) as context:
        with pytest.raises(exceptions.OptionsError, match="cannot be created"):
            context.configure(script, mutecheck_dir=str(tmp_path / "file" / "s"))
        assert context.options.mutecheck_dir == ""
