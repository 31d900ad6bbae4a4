"""The DevTools driver on a real headless Chromium: trusted clicks, typing, waiting, scripts
injected before the page's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from decoders.chromium import UNATTENDED_FLAGS, find_chromium
from decoders.lab.cdp import Browser, BrowserError

PAGE = """<!doctype html><html><body>
<script>window.ownScriptSaw = typeof window.injected;</script>
<input id="name"><button id="go" style="margin-top:1500px">Go</button>
<script>
window.seen = [];
document.getElementById("go").addEventListener("click", (e) => {
  window.seen.push({trusted: e.isTrusted, name: document.getElementById("name").value});
});
</script></body></html>"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chromium = find_chromium()
    assert chromium is not None, "chromium not installed"
    started = Browser(
        [chromium, *UNATTENDED_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"],
        log=tmp_path / "chromium.log",
    )
    yield started
    started.close()
    assert not started.alive()


def test_trusted_click_typing_and_injected_script(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(PAGE)
    tab = browser.new_tab()
    tab.open(page.as_uri(), before_scripts="window.injected = 1;")
    assert tab.evaluate("window.ownScriptSaw") == "number"  # ran before the page's script
    tab.type_into("#name", "tester")
    tab.click("#go")  # below the fold: scrolled into view first
    seen = tab.wait_for("window.seen.length && window.seen", timeout=5, what="the click")
    assert seen == [{"trusted": True, "name": "tester"}]
    assert tab.evaluate("Promise.resolve(6 * 7)") == 42


def test_errors_name_what_failed(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(PAGE)
    tab = browser.new_tab()
    tab.open(page.as_uri())
    with pytest.raises(BrowserError, match="no visible element #missing"):
        tab.click("#missing")
    with pytest.raises(BrowserError, match="page threw"):
        tab.evaluate("undefinedName.x")
    with pytest.raises(BrowserError, match="no never after 0 s"):
        tab.wait_for("false", timeout=0.2, what="never")
