"""The addon's classes as ``addons/mutecheck.py`` composes them, loaded in mitmproxy's test
context (its real options, commands and configure), for the tests of one class at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.script_addons import ScriptAddons, judged_in_proxy
from mitmproxy.test import taddons


@pytest.fixture
def script() -> ScriptAddons:
    return ScriptAddons()


@pytest.fixture
def tctx(script: ScriptAddons, tmp_path: Path) -> Iterator[taddons.context]:
    """Judged in the proxy (no observer process), nothing saved unless a test asks."""
    with judged_in_proxy(script, tmp_path) as context:
        yield context
