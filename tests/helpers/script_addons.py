"""An addon script's classes (``addons = [...]``), loaded afresh and driven one hook at a time.

``mitmdump -s addons/mutecheck.py`` loads the script's ``addons`` list; each hook goes to each
class in the list's order (mitmproxy's ``AddonManager.invoke_addon_sync``: the classes that
have the hook, called in turn). :class:`ScriptAddons` does the same for a test: registered with
``taddons.context(addons)``, its ``addons`` attribute makes mitmproxy load every class (options,
commands, configure) as it does a script's, and ``addons.request(flow)`` calls each class's
``request`` in order. The commands and the state the tests read come from the class that holds
them; nothing is replaced.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

# the two modules that define the hooks (hooks.all_hooks is filled as they are imported)
import mitmproxy.eventsequence
import mitmproxy.proxy.server_hooks  # noqa: F401
from mitmproxy import hooks
from mitmproxy.test import taddons

MUTECHECK = Path(__file__).resolve().parent.parent.parent / "addons" / "mutecheck.py"
"""The script users load."""
_LOADED = itertools.count()
_NOT_DRIVEN = {"load", "configure", "add_log"}
"""Hooks mitmproxy itself sends to the classes (through the ``addons`` attribute), and one it
warns about."""


def load_script(path: Path) -> ModuleType:
    """The script as a fresh module (new instances of its classes), as mitmproxy loads it."""
    spec = importlib.util.spec_from_file_location(f"{path.stem}_script_{next(_LOADED)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _driver(name: str) -> Callable[..., None]:
    def drive(self: ScriptAddons, *args: Any) -> None:
        for child in self.addons:
            hook = getattr(child, name, None)
            if hook is not None:
                hook(*args)

    drive.__name__ = name
    return drive


class ScriptAddons:
    """The classes of ``addons/mutecheck.py`` as one object for the tests: hooks go to each in
    turn; ``mark``/``state`` are the commands; ``monitor`` and the internal state the tests
    read are those of the class (or the shared recorder) that holds them."""

    def __init__(self, path: Path = MUTECHECK) -> None:
        self.module = load_script(path)
        self.addons: list[Any] = list(self.module.addons)
        self.recorder = self.module.recorder

    def get(self, kind: str) -> Any:
        """The class of that name in the list."""
        (found,) = [child for child in self.addons if type(child).__name__ == kind]
        return found

    @property
    def mark(self) -> Any:
        return self.get("Marks").mark

    @property
    def state(self) -> Any:
        return self.get("Marks").state

    @property
    def monitor(self) -> Any:
        return self.recorder.monitor

    @monitor.setter
    def monitor(self, value: Any) -> None:
        self.recorder.monitor = value

    @property
    def _observer(self) -> Any:
        return self.recorder.observer

    @property
    def _errors(self) -> int:
        return int(self.recorder.errors)

    @property
    def _tcp(self) -> dict[str, Any]:
        return dict(self.get("Media")._tcp)


for _name in hooks.all_hooks:
    if _name not in _NOT_DRIVEN:
        setattr(ScriptAddons, _name, _driver(_name))


@contextlib.contextmanager
def judged_in_proxy(script: ScriptAddons, folder: Path) -> Iterator[taddons.context]:
    """mitmproxy's test context for ``script``: judged in the proxy (no observer process; the
    tests read the monitor), nothing saved unless a test asks (saving has its own tests), the
    session in ``folder/session``; the script's ``done`` once the block ends."""
    with taddons.context(script) as context:
        context.configure(
            script,
            confdir=str(folder / "conf"),
            mutecheck_dir=str(folder / "session"),
            mutecheck_grace_ms=0,
            mutecheck_save_flows="none",
            mutecheck_observer=False,
        )
        yield context
    script.done()
