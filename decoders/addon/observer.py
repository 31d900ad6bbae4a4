"""The addon's judgement in a process of its own, so that parsing never holds up the proxy.

Inside mitmdump a message the recognisers must parse (a quality report, an SDP, a metrics blob)
costs two to three times what it costs alone, and the proxy waits for it: measured with
``bench/bench_addon.py``, the parsed ~12% of a call's WebSocket messages took 10-15% of the
proxy's throughput. With an :class:`Observer`, the proxy keeps only the cheap keyword test and
hands each message that needs parsing, pickled, through a pipe to ``python -m
decoders.addon.observer EVENTS``: the same :class:`~decoders.session.monitor.Monitor`, run
there, writes ``events.jsonl`` and sends back the lines to print, which the addon logs through
mitmproxy (so they show in mitmdump, mitmweb and the console alike).

Messages are judged in the order they were handed over, with the times the proxy recorded, so
the events are the ones the monitor would write in the proxy (tests/addon/test_observer.py
holds both to each other). What needs an answer at once stays synchronous: a mark's reply and
``mutecheck.state`` ask the observer and wait for it; block mode, which must decide before a
message leaves, does not use an observer at all (:meth:`Observer.hand_over` gives the monitor
back when it is switched on). If the proxy is killed, the observer judges what it was given and
exits at the end of the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from decoders.addon import helper
from decoders.addon.helper import HEADER
from decoders.session.events import Event, EventWriter, make_event
from decoders.session.monitor import FlowRef, Message, Monitor, Outcome, Transport

REPLY_TIMEOUT = 30.0

Log = Callable[[list[str], list[str]], None]
"""Receives (warnings, notices) lines from the observer."""


def _frame(*item: Any) -> bytes:
    return helper.frame(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))


class ObserverGone(RuntimeError):
    """The observer process ended or stopped answering."""


class Observer:
    """The proxy's end: hands over messages, asks for state, forwards the observer's log lines."""

    def __init__(self, events: Path, monitor: Monitor, log: Log) -> None:
        self._log = log
        self._buffer = b""
        self._replies: list[tuple[Any, ...]] = []
        self._process = helper.start("decoders.addon.observer", str(events))
        assert self._process.stdin is not None and self._process.stdout is not None
        self._pipe: IO[bytes] = self._process.stdin
        self._in = self._pipe.fileno()
        self._fd = self._process.stdout.fileno()
        os.set_blocking(self._fd, False)
        os.set_blocking(self._in, False)
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):  # outside an event loop: read when sending
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._fd, self._poll_quietly)
        self._send("init", monitor)

    # --- one way ----------------------------------------------------------------------------

    def observe(self, message: Message, t: float) -> None:
        self._send("observe", message, t)

    def datagram(self, flow: FlowRef, payload: bytes, sent: bool, t: float) -> None:
        self._send("datagram", flow, payload, sent, t)

    def stream(
        self, flow: FlowRef, data: bytes, sent: bool, t: float, transport: Transport
    ) -> None:
        """A piece of a TCP connection to a TURN server (framed in the observer)."""
        self._send("stream", flow, data, sent, t, transport)

    def stream_end(self, flow_id: str, t: float) -> None:
        self._send("stream_end", flow_id, t)

    def write(self, event: Event) -> None:
        """An event made by the proxy itself (an internal error), in order with the others."""
        self._send("event", event)

    def settings(self, monitor: Monitor) -> None:
        self._send("settings", monitor.settings)

    # --- with an answer ---------------------------------------------------------------------

    def mark(
        self, t: float, muted: bool, *, via: str, note: str | None = None, at: float | None = None
    ) -> dict[str, Any]:
        """Marks the state and returns the monitor's :meth:`~Monitor.state` after it."""
        self._send("mark", t, muted, via, note, at)
        return dict(self._wait("state")[1])

    def state(self) -> tuple[bool | None, float | None, dict[str, Any]]:
        """(muted, changed_at, Monitor.state()) as the observer knows them now."""
        self._send("state")
        reply = self._wait("state_full")
        return reply[1], reply[2], dict(reply[3])

    def hand_over(self) -> Monitor:
        """The observer's monitor, with everything it learned; the observer ends."""
        self._send("hand_over")
        monitor = self._wait("monitor")[1]
        assert isinstance(monitor, Monitor)
        self._end()
        return monitor

    def finish(self, t: float) -> None:
        """The session ends: the observer writes its last events and exits."""
        with contextlib.suppress(ObserverGone):
            self._send("finish", t)
            self._wait("finished")
        self._end()

    # --- the pipe ---------------------------------------------------------------------------

    def poll(self) -> None:
        """Reads what the observer sent (called by the event loop when there is something)."""
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self._forget_reader()
                break
            self._buffer += chunk
        while len(self._buffer) >= HEADER:
            size = int.from_bytes(self._buffer[:HEADER], "little")
            if len(self._buffer) < HEADER + size:
                break
            item = pickle.loads(self._buffer[HEADER : HEADER + size])
            self._buffer = self._buffer[HEADER + size :]
            if item[0] == "log":
                self._log(item[1], item[2])
            else:
                self._replies.append(item)

    def _poll_quietly(self) -> None:
        """poll() for the event loop: whatever happens stays here (the proxy goes on)."""
        try:
            self.poll()
        except Exception as error:  # a broken frame: nothing more will make sense
            self._forget_reader()
            self._log([f"mutecheck: the observer's answers stopped making sense ({error})"], [])

    def _send(self, *item: Any) -> None:
        """Writes a frame; while the pipe is full, reads what the observer says meanwhile (it
        may be waiting for room to say it: neither side ever waits for the other in a circle)."""
        data = memoryview(_frame(*item))
        while data:
            try:
                data = data[os.write(self._in, data) :]
            except BlockingIOError:
                readable, writable, _ = select.select([self._fd], [self._in], [], REPLY_TIMEOUT)
                if readable:
                    self.poll()
                elif not writable:
                    raise ObserverGone(
                        f"the observer took nothing for {REPLY_TIMEOUT:.0f} s"
                    ) from None
            except OSError as error:
                raise ObserverGone(f"the observer process went away ({error})") from error
        if self._loop is None:
            self.poll()

    def _wait(self, kind: str) -> tuple[Any, ...]:
        while True:
            self.poll()
            for index, reply in enumerate(self._replies):
                if reply[0] == kind:
                    del self._replies[index]
                    return reply
            ready, _, _ = select.select([self._fd], [], [], REPLY_TIMEOUT)
            if not ready:
                raise ObserverGone(f"the observer did not answer within {REPLY_TIMEOUT:.0f} s")
            if self._process.poll() is not None and not self._peek():
                raise ObserverGone("the observer process ended")

    def _peek(self) -> bool:
        try:
            chunk = os.read(self._fd, 65536)
        except (BlockingIOError, OSError):
            return False
        self._buffer += chunk
        return bool(chunk)

    def _forget_reader(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
            self._loop = None

    def _end(self) -> None:
        self._forget_reader()
        with contextlib.suppress(OSError):
            self._pipe.close()
        try:
            self._process.wait(REPLY_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        with contextlib.suppress(OSError):
            assert self._process.stdout is not None
            self._process.stdout.close()

    @property
    def alive(self) -> bool:
        return self._process.poll() is None


# --- the observer process ----------------------------------------------------------------------


class _Judge:
    """The observer's side: the monitor, events.jsonl, and the replies."""

    def __init__(self, events: IO[bytes], replies: IO[bytes]) -> None:
        self.writer = EventWriter(events)
        self.replies = replies
        self.monitor = Monitor()

    def reply(self, *item: Any) -> None:
        self.replies.write(_frame(*item))
        self.replies.flush()

    def emit(self, out: Outcome) -> None:
        self.writer.write_all(out.events)
        if out.warnings or out.notices:
            self.reply("log", out.warnings, out.notices)

    def handle(self, item: tuple[Any, ...]) -> bool:
        """One frame; False when the observer should stop."""
        kind = item[0]
        monitor = self.monitor
        if kind == "observe":
            self.emit(monitor.observe(item[1], item[2]))
        elif kind == "datagram":
            self.emit(monitor.observe_datagram(item[1], item[2], item[3], item[4]))
        elif kind == "stream":
            self.emit(monitor.observe_stream(*item[1:]))
        elif kind == "stream_end":
            self.emit(monitor.end_stream(item[1], item[2]))
        elif kind == "mark":
            _, t, muted, via, note, at = item
            self.emit(monitor.mark(t, muted, via=via, note=note, at=at))
            self.reply("state", monitor.state())
        elif kind == "state":
            timeline = monitor.timeline
            self.reply("state_full", timeline.muted, timeline.changed_at, monitor.state())
        elif kind == "event":
            self.writer.write(item[1])
        elif kind == "settings":
            monitor.settings = item[1]
        elif kind == "init":
            self.monitor = item[1]
        elif kind == "hand_over":
            self.reply("monitor", monitor)
            return False
        elif kind == "finish":
            self.emit(monitor.finish(item[1]))
            self.reply("finished")
            return False
        return True

    def fail(self, item: tuple[Any, ...], error: Exception) -> None:
        """A bug or an unforeseen input: a warning event, and the observer goes on (a request
        still gets its answer, so the proxy never waits in vain)."""
        line = f"mutecheck: observer failed on {item[0]} ({type(error).__name__}: {error})"
        event = make_event("warning", 0.0, code="internal-error", message=line)
        if item[0] == "observe" and isinstance(item[1], Message):
            event["t"] = round(item[2], 6)
            event["flow"] = {"id": item[1].flow.id}
        with contextlib.suppress(OSError, ValueError):
            self.writer.write(event)
        self.reply("log", [line], [])
        answers: dict[str, tuple[Any, ...]] = {
            "mark": ("state", {}),
            "state": ("state_full", None, None, {}),
            "finish": ("finished",),
            "hand_over": ("monitor", self.monitor),
        }
        if item[0] in answers:
            self.reply(*answers[item[0]])


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m decoders.addon.observer EVENTS.jsonl  (frames on stdin)")
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ends with its input, not with a Ctrl-C
    source, replies = sys.stdin.buffer, sys.stdout.buffer
    try:
        events = open(arguments[0], "ab", buffering=0)  # noqa: SIM115 - open for the whole run
    except OSError as error:
        print(f"mutecheck: cannot write {arguments[0]}: {error}", file=sys.stderr)
        return 1
    judge = _Judge(events, replies)
    with events:
        while True:
            data = helper.read_frame(source)
            if data is None:  # the end (or a last frame cut by a proxy that died)
                return 0
            item = pickle.loads(data)
            try:
                if not judge.handle(item):
                    return 0
            except BrokenPipeError:
                return 0
            except Exception as error:
                judge.fail(item, error)
                if item[0] in ("finish", "hand_over"):
                    return 0


if __name__ == "__main__":
    raise SystemExit(main())
