"""The addon's classes as ``addons/mutecheck.py`` composes them, loaded in mitmproxy's test
context (its real options, commands and configure), for the tests of one class at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.script_addons import ScriptAddons
from mitmproxy.test import taddons


@pytest.fixture
def script() -> ScriptAddons:
    return ScriptAddons()


@pytest.fixture
def tctx(script: ScriptAddons, tmp_path: Path) -> Iterator[taddons.context]:
    """Judged in the proxy (no observer process), nothing saved unless a test asks."""
    with taddons.context(script) as context:
        context.configure(
            script,
            confdir=str(tmp_path / "conf"),
            mutecheck_dir=str(tmp_path / "session"),
            mutecheck_grace_ms=0,
            mutecheck_save_flows="none",
            mutecheck_observer=False,
        )
        yield context
    script.done()
