"""Finding headless Chromium and the flags every unattended run shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from decoders import chromium


def test_environment_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CHROMIUM", str(fake))
    assert chromium.find_chromium() == str(fake)


def test_nothing_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(chromium, "CHROMIUM_CANDIDATES", ("/nonexistent/chromium",))
    assert chromium.find_chromium() is None


def test_unattended_flags_keep_it_quiet() -> None:
    flags = set(chromium.UNATTENDED_FLAGS)
    assert {"--headless=new", "--disable-background-networking", "--disable-sync"} <= flags
    assert "--disable-component-update" in flags and "--no-first-run" in flags
    assert os.path.isabs(chromium.CHROMIUM_CANDIDATES[0])
