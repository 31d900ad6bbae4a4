"""Tests for decoders.addon.script: the addon script is found where Python imports it from."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from decoders.addon.script import CHECKOUT_PATH, script_path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_checkouts_script_is_found_when_it_is_on_the_path() -> None:
    found = script_path()
    assert found.is_file() and found.parts[-2:] == ("addons", "mutecheck.py")
    assert found.resolve() == (ROOT / "addons" / "mutecheck.py").resolve()


def test_without_the_package_the_checkout_path_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another folder first on the path with an 'addons' package that lacks the script, then no
    'addons' at all: the path the project would have it at, which does not exist."""
    (tmp_path / "addons").mkdir()
    (tmp_path / "addons" / "__init__.py").write_text("")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    monkeypatch.delitem(sys.modules, "addons", raising=False)
    assert script_path() == CHECKOUT_PATH and not (tmp_path / CHECKOUT_PATH).exists()
    monkeypatch.setattr(sys, "path", [str(tmp_path / "nothing")])
    monkeypatch.delitem(sys.modules, "addons", raising=False)
    assert script_path() == CHECKOUT_PATH
