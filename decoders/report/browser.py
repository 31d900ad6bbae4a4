"""Open a page in headless Chromium and say what it did: a screenshot, its console, its requests.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ended by a NUL byte, commands on fd 3, replies and events on fd 4), so nothing listens
on a port. :func:`inspect_page` loads one local file in a fresh profile and reports the console
messages and log errors, every network request beyond the page itself, the scripts the page ran
(the debugger sees each one parsed), JavaScript dialogs, answers to DOM questions asked after
the load, and a full-page PNG. Used by the report tests and to make the documentation's
screenshots; ``mutecheck report --screenshot`` uses it too.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from decoders.chromium import UNATTENDED_FLAGS, find_chromium

FLAGS: Final = (*UNATTENDED_FLAGS, "--hide-scrollbars", "--remote-debugging-pipe")


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or did not answer in time."""


@dataclass
class PageRun:
    """What one page load did."""

    url: str
    console: list[dict[str, Any]] = field(default_factory=list)
    """Console API calls (``console.log`` ...) and uncaught exceptions."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Log entries of level error (CSP violations, failed loads ...)."""
    requests: list[str] = field(default_factory=list)
    """URLs requested other than the page itself."""
    scripts: list[dict[str, Any]] = field(default_factory=list)
    """Scripts parsed while the page loaded (ours, asked after the load, are not counted)."""
    dialogs: list[str] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)
    screenshot: bytes = b""
    size: tuple[int, int] = (0, 0)


class _Pipe:
    """The DevTools protocol over Chromium's debugging pipe."""

    def __init__(self, write_fd: int, read_fd: int, process: subprocess.Popen[bytes]) -> None:
        self._write = write_fd
        self._read = read_fd
        self._process = process
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._read], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise BrowserError(f"Chromium closed its pipe (exit {self._process.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        command: dict[str, Any] = {"id": ident, "method": method, "params": dict(params or {})}
        if session is not None:
            command["sessionId"] = session
        data = json.dumps(command).encode() + b"\0"
        while data:
            written = os.write(self._write, data)
            data = data[written:]
        deadline = time.monotonic() + timeout
        while True:
            message = self._message(deadline)
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, method: str, *, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            message = self._message(deadline)
            self.events.append(message)
            if message.get("method") == method:
                return message


def _spawn(binary: str, profile: str) -> tuple[subprocess.Popen[bytes], int, int]:
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def child_fds() -> None:
        # In the child, before exec: the pipe ends go to fds 3 and 4, where Chromium expects
        # them (first moved above 10 so that neither overwrites the other). Python's own fds
        # are not inheritable (PEP 446), so with close_fds=False only these two are passed on.
        reads = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        writes = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.dup2(reads, 3)
        os.dup2(writes, 4)

    try:
        process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=child_fds,
        )
    finally:
        os.close(to_chrome_r)
        os.close(from_chrome_w)
    return process, to_chrome_w, from_chrome_r


def inspect_page(
    path: Path,
    *,
    width: int = 1100,
    questions: Mapping[str, str] | None = None,
    screenshot: bool = True,
    max_height: int = 16000,
    timeout: float = 60.0,
    settle: float = 10.0,
    binary: str | None = None,
) -> PageRun:
    """Load ``path`` in headless Chromium and report what it did (see the module docstring).

    ``questions`` maps a name to a JavaScript expression evaluated after the load (by the
    debugger, not the page); the answers come back in :attr:`PageRun.answers`. After the load
    event, up to ``settle`` seconds go to letting the page's requests end (a refused fetch is
    logged only once it has failed), so what it did is not cut short by a fast load.
    """
    chromium = binary or find_chromium()
    if chromium is None:
        raise BrowserError("Chromium not found (install chromium, or set CHROMIUM)")
    url = path.resolve().as_uri()
    run = PageRun(url)
    with tempfile.TemporaryDirectory(prefix="mutecheck-chromium-") as profile:
        process, write_fd, read_fd = _spawn(chromium, profile)
        pipe = _Pipe(write_fd, read_fd, process)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
            attached = pipe.send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )
            session = attached["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network", "Debugger"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            pipe.events.clear()
            pipe.send("Page.navigate", {"url": url}, session=session)
            _wait_load(pipe, session, timeout)
            _settle(pipe, session, settle)
            _collect(run, pipe.events, session)
            pipe.send("Debugger.disable", session=session)
            for name, expression in (questions or {}).items():
                answer = pipe.send(
                    "Runtime.evaluate",
                    {"expression": expression, "returnByValue": True},
                    session=session,
                )
                run.answers[name] = answer.get("result", {}).get("value")
            if screenshot:
                run.screenshot, run.size = _screenshot(pipe, session, width, max_height)
            _collect(run, pipe.events, session, scripts=False)
            with contextlib.suppress(BrowserError):
                pipe.send("Browser.close", timeout=10.0)
        finally:
            os.close(write_fd)
            os.close(read_fd)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return run


def _wait_load(pipe: _Pipe, session: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for event in pipe.events:
            if event.get("sessionId") != session:
                continue
            if event.get("method") == "Page.javascriptDialogOpening" and not event.get("handled"):
                pipe.send("Page.handleJavaScriptDialog", {"accept": False}, session=session)
                event["handled"] = True
            if event.get("method") == "Page.loadEventFired":
                return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError("the page did not finish loading")
        pipe.events.append(pipe._message(deadline))


_QUIET: Final = 0.3
"""Seconds without any event, once no request is open, after which a page counts as settled."""


def _settle(pipe: _Pipe, session: str, limit: float) -> None:
    """Read events until every request the page started has ended and nothing came for a moment.

    Bounded by ``limit`` seconds: a page that keeps a request open (or keeps polling) is reported
    as it stands then.
    """
    deadline = time.monotonic() + limit
    seen = 0
    open_requests: set[str] = set()
    while True:
        for event in pipe.events[seen:]:
            if event.get("sessionId") != session:
                continue
            method = event.get("method")
            ident = event.get("params", {}).get("requestId")
            if method == "Network.requestWillBeSent" and ident:
                open_requests.add(str(ident))
            elif method in ("Network.loadingFinished", "Network.loadingFailed") and ident:
                open_requests.discard(str(ident))
            elif method == "Page.javascriptDialogOpening" and not event.get("handled"):
                pipe.send("Page.handleJavaScriptDialog", {"accept": False}, session=session)
                event["handled"] = True
        seen = len(pipe.events)
        now = time.monotonic()
        if now >= deadline:
            return
        wait = deadline if open_requests else min(deadline, now + _QUIET)
        try:
            pipe.events.append(pipe._message(wait))
        except BrowserError:
            if time.monotonic() < wait:
                raise  # the pipe closed: not a quiet page
            if not open_requests:
                return


def _collect(
    run: PageRun, events: Sequence[dict[str, Any]], session: str, *, scripts: bool = True
) -> None:
    for event in events:
        if event.get("sessionId") != session or event.get("seen"):
            continue
        event["seen"] = True
        method = event.get("method")
        params = event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            args = params.get("args", [])
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
            run.console.append({"type": params.get("type"), "text": text})
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            run.console.append({"type": "exception", "text": details.get("text")})
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                run.errors.append({"source": entry.get("source"), "text": entry.get("text")})
        elif method == "Network.requestWillBeSent":
            request_url = params.get("request", {}).get("url", "")
            if request_url != run.url:
                run.requests.append(request_url)
        elif method == "Debugger.scriptParsed" and scripts:
            run.scripts.append({"url": params.get("url"), "length": params.get("length")})
        elif method == "Page.javascriptDialogOpening":
            run.dialogs.append(str(params.get("message")))


def _screenshot(
    pipe: _Pipe, session: str, width: int, max_height: int
) -> tuple[bytes, tuple[int, int]]:
    metrics = pipe.send("Page.getLayoutMetrics", session=session)
    content = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
    height = int(min(max_height, max(1, round(content.get("height", 900)))))
    pipe.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        session=session,
    )
    shot = pipe.send(
        "Page.captureScreenshot",
        {"format": "png", "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}},
        session=session,
    )
    return base64.b64decode(shot["data"]), (width, height)
