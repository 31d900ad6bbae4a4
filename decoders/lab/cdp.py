"""Drive a headless Chromium over the DevTools protocol on a pipe, as a person would use a page.

The lab's third-party apps (the Janus demos) are pages we do not write: they are driven from
outside. Chromium starts with ``--remote-debugging-pipe`` (commands on fd 3, replies on fd 4,
the framing of :class:`decoders.report.browser._Pipe`, reused here), optionally inside a
network namespace (``ip netns exec`` keeps the two descriptors). A :class:`Tab` opens a URL
after injecting a script that runs before the page's own scripts, evaluates expressions, waits
for conditions, types text, and clicks elements with *trusted* mouse events
(``Input.dispatchMouseEvent`` at the middle of the element's box: the page sees
``isTrusted == true``, exactly as a real click).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from decoders.report.browser import BrowserError, _Pipe

__all__ = ["Browser", "BrowserError", "Tab"]

POLL_S: Final = 0.1


class Browser:
    """One Chromium process and its DevTools pipe; stop it with :meth:`close`."""

    def __init__(
        self, command: Sequence[str], *, log: Path, env: dict[str, str] | None = None
    ) -> None:
        """Start ``command`` (Chromium and its flags, ``--remote-debugging-pipe`` added), its
        stdout and stderr going to ``log``. In its own process group, stopped by its PID."""
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()

        def child_fds() -> None:
            # pipe ends to fds 3 and 4 (moved above 10 first so neither overwrites the other)
            reads = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            writes = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        self.log = log
        with log.open("wb") as sink:
            try:
                self.process = subprocess.Popen(
                    [*command, "--remote-debugging-pipe"],
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=sink,
                    close_fds=False,
                    preexec_fn=child_fds,
                    start_new_session=True,
                    env=env,
                )
            finally:
                os.close(to_chrome_r)
                os.close(from_chrome_w)
        self._write_fd = to_chrome_w
        self._read_fd = from_chrome_r
        self.pipe = _Pipe(to_chrome_w, from_chrome_r, self.process)

    def new_tab(self, *, timeout: float = 30.0) -> Tab:
        """A fresh page target, attached (flat session), with Page and Runtime enabled."""
        target = self.pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
        attached = self.pipe.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        tab = Tab(self, str(attached["sessionId"]))
        for domain in ("Page", "Runtime"):
            tab.send(f"{domain}.enable")
        return tab

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self, timeout: float = 10.0) -> None:
        """Ask Chromium to close, then stop its process group by its PID."""
        if self.alive():
            with contextlib.suppress(BrowserError, OSError):
                self.pipe.send("Browser.close", timeout=5.0)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, 9)
            self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, 9)  # stray children (renderer, GPU, network)
        for fd in (self._write_fd, self._read_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class Tab:
    """One page of a :class:`Browser` (a flat DevTools session)."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session
        self.console: list[str] = []

    def send(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        result = self.browser.pipe.send(method, params, session=self.session, **kw)
        self._drain()
        return result

    def _drain(self) -> None:
        """Keep the console and uncaught exceptions (for error messages); drop other events."""
        for event in self.browser.pipe.events:
            method = event.get("method")
            params = event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                args = params.get("args", [])
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
                self.console.append(f"{params.get('type')}: {text}"[:300])
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                exception = details.get("exception", {}).get("description") or details.get("text")
                self.console.append(f"exception: {exception}"[:300])
        self.browser.pipe.events.clear()
        del self.console[:-200]

    def open(self, url: str, *, before_scripts: str = "", timeout: float = 30.0) -> None:
        """Navigate to ``url``, ``before_scripts`` running in every document before its own."""
        if before_scripts:
            self.send("Page.addScriptToEvaluateOnNewDocument", {"source": before_scripts})
        self.send("Page.navigate", {"url": url}, timeout=timeout)
        self.wait_for("document.readyState === 'complete'", timeout=timeout, what=f"{url} loaded")

    def evaluate(self, expression: str, *, timeout: float = 30.0) -> Any:
        """The value of a JavaScript expression (promises awaited); page exceptions raise."""
        answer = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page threw on {expression[:60]!r}: {text}")
        return answer.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float, what: str) -> Any:
        """Poll ``expression`` until it is truthy; its value. Times out naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.browser.alive():
                raise BrowserError(f"Chromium exited ({self.browser.process.returncode})")
            with contextlib.suppress(BrowserError):
                value = self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                last = " | ".join(self.console[-4:])
                raise BrowserError(f"no {what} after {timeout:.0f} s (console: {last or '-'})")
            time.sleep(POLL_S)

    def box_centre(self, selector: str) -> tuple[float, float]:
        """Scroll the element into view; the middle of its box in CSS pixels."""
        found = self.evaluate(
            f"""(() => {{
                const el = document.querySelector({json.dumps(selector)});
                if (!el) return null;
                el.scrollIntoView({{block: "center", inline: "center"}});
                const r = el.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) return null;
                return [r.left + r.width / 2, r.top + r.height / 2];
            }})()"""
        )
        if not found:
            raise BrowserError(f"no visible element {selector}")
        return float(found[0]), float(found[1])

    def click(self, selector: str) -> None:
        """A trusted left click (press, release) at the middle of the element's box."""
        x, y = self.box_centre(selector)
        common = {"x": x, "y": y, "button": "left", "clickCount": 1}
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        self.send("Input.dispatchMouseEvent", {"type": "mousePressed", **common})
        self.send("Input.dispatchMouseEvent", {"type": "mouseReleased", **common})

    def type_into(self, selector: str, text: str) -> None:
        """Click the field and type ``text`` as keyboard input."""
        self.click(selector)
        self.send("Input.insertText", {"text": text})
