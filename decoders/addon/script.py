"""Where the addon script users load (``addons/mutecheck.py``) is, for programs that start
mitmdump with it (the lab): where Python imports it from, a wheel's ``addons`` package or a
checkout on the path, never a path guessed from where :mod:`decoders` sits."""

from __future__ import annotations

import importlib.util
from pathlib import Path

MODULE = "addons.mutecheck"
CHECKOUT_PATH = Path("addons", "mutecheck.py")
"""What is named when the script cannot be found (as the project lays it out)."""


def script_path() -> Path:
    """The script's file; :data:`CHECKOUT_PATH` (which does not exist) when ``addons`` is not
    importable, so that the caller can say so and run without it."""
    try:
        spec = importlib.util.find_spec(MODULE)
    except ImportError:  # no package 'addons' at all
        return CHECKOUT_PATH
    if spec is None or spec.origin is None:
        return CHECKOUT_PATH
    return Path(spec.origin)
