"""Headless Chromium, as the lab and the report's page checks run it: where it is, and the
flags that keep an unattended instance quiet (no first-run UI, no sync, no update or
background requests that would try to leave the machine; lab-facts.md)."""

from __future__ import annotations

import os
import shutil
from typing import Final

CHROMIUM_CANDIDATES: Final = (
    "/usr/lib/chromium/chromium",  # Debian: the binary itself, not the /usr/bin wrapper script
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)

UNATTENDED_FLAGS: Final = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
)


def find_chromium() -> str | None:
    """The Chromium binary: ``$CHROMIUM``, then the usual names."""
    given = os.environ.get("CHROMIUM")
    for candidate in ([given] if given else []) + list(CHROMIUM_CANDIDATES):
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            return path
    return None
