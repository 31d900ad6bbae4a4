"""Headless Chromium over the DevTools pipe: it sees scripts, console, dialogs and requests."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from decoders import chromium as chromium_module
from decoders.report import browser
from decoders.report.browser import BrowserError, find_chromium, inspect_page


@pytest.fixture
def chromium() -> str:
    """Headless Chromium; skipped on a machine without it, never in CI."""
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI (.ci/run installs it)")
        pytest.skip("Chromium not installed")
    return path


def test_find_chromium_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CHROMIUM", str(fake))
    assert find_chromium() == str(fake)
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "missing"))
    monkeypatch.setattr(chromium_module, "CHROMIUM_CANDIDATES", ())
    assert find_chromium() is None


def test_missing_browser_is_a_browser_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    page = tmp_path / "p.html"
    page.write_text("<p>x</p>")
    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    with pytest.raises(BrowserError, match="not found"):
        inspect_page(page)


def test_a_quiet_page(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "quiet.html"
    page.write_text(
        "<!DOCTYPE html><title>quiet</title><body style='margin:0'>"
        "<div style='height:3000px;background:#0a0'>tall</div></body>"
    )
    run = inspect_page(page, questions={"title": "document.title"}, binary=chromium, width=640)
    assert run.answers == {"title": "quiet"}
    assert run.scripts == run.console == run.errors == []
    assert run.requests == run.dialogs == []
    assert run.screenshot.startswith(b"\x89PNG")
    assert run.size == (640, 3000)


def test_a_busy_page_is_seen(chromium: str, tmp_path: Path) -> None:
    """Everything a report must never do, done on purpose (loopback only)."""
    page = tmp_path / "busy.html"
    page.write_text(
        "<!DOCTYPE html><body><p>busy</p>"
        "<script>console.error('boom'); alert('hi'); fetch('http://127.0.0.1:9/x');</script>"
        "</body>"
    )
    run = inspect_page(
        page, questions={"scripts": "document.scripts.length"}, binary=chromium, screenshot=False
    )
    assert run.answers == {"scripts": 1}
    assert [s["url"] for s in run.scripts] == [page.resolve().as_uri()]
    assert {"type": "error", "text": "boom"} in run.console
    assert run.dialogs == ["hi"]
    assert run.requests == ["http://127.0.0.1:9/x"]
    assert run.errors  # the refused fetch is logged
    assert run.screenshot == b""


def scripted_page(folder: Path, script: str) -> Path:
    """A page that only runs ``script``."""
    page = folder / "scripted.html"
    page.write_text(f"<!DOCTYPE html><body><script>{script}</script></body>")
    return page


def test_what_a_page_does_just_after_its_load_is_seen(chromium: str, tmp_path: Path) -> None:
    """A request started after the load event, and its failure, are waited for (bounded)."""
    late = "onload = () => setTimeout(() => fetch('http://127.0.0.1:9/late'), 100);"
    run = inspect_page(scripted_page(tmp_path, late), binary=chromium, screenshot=False)
    assert run.requests == ["http://127.0.0.1:9/late"]
    assert run.errors


def test_settling_is_bounded(chromium: str, tmp_path: Path) -> None:
    """A page that never goes quiet is reported as it stands when the settle time is up."""
    page = scripted_page(tmp_path, "setInterval(() => console.log('tick'), 50);")
    started = time.monotonic()
    run = inspect_page(page, binary=chromium, screenshot=False, settle=1.0)
    assert time.monotonic() - started < 30
    assert {"type": "log", "text": "tick"} in run.console
