"""Tests for decoders.addon.script: the addon script is found where Python imports it from."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mitmproxy.addons import script as mscript
from mitmproxy.test import taddons

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
    # only the standard finders: an editable install (`pip install -e`, as `make test` does)
    # adds its own, which maps 'addons' to the checkout whatever sys.path says
    standard = [f for f in sys.meta_path if getattr(f, "__module__", "").startswith("_frozen")]
    monkeypatch.setattr(sys, "meta_path", standard)
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    monkeypatch.delitem(sys.modules, "addons", raising=False)
    assert script_path() == CHECKOUT_PATH and not (tmp_path / CHECKOUT_PATH).exists()
    monkeypatch.setattr(sys, "path", [str(tmp_path / "nothing")])
    monkeypatch.delitem(sys.modules, "addons", raising=False)
    assert script_path() == CHECKOUT_PATH


def test_the_scripts_classes_are_registered_under_mutecheck_names(tmp_path: Path) -> None:
    """Next to another script whose classes have the same plain names."""
    other = tmp_path / "other.py"
    other.write_text(
        "class Media:\n    pass\n\n\nclass Marks:\n    pass\n\n\naddons = [Media(), Marks()]\n"
    )
    with taddons.context() as context:
        context.options.update(confdir=str(tmp_path / "conf"))
        context.master.addons.register(mscript.load_script(str(other)))
        context.master.addons.register(mscript.load_script(str(script_path())))
        lookup = context.master.addons.lookup
        assert {"media", "marks", "mutecheck.media", "mutecheck.marks"} <= set(lookup)
        assert sorted(name for name in lookup if name.startswith("mutecheck.")) == [
            "mutecheck.blocking",
            "mutecheck.folder",
            "mutecheck.judging",
            "mutecheck.marks",
            "mutecheck.media",
            "mutecheck.saving",
            "mutecheck.signaling",
        ]
