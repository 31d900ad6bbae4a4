"""What the addon's classes share: the monitor, wherever it runs, and the session folder it writes.

One :class:`Recorder` is built by ``addons/mutecheck.py`` and handed to every addon class. It
holds the :class:`~decoders.session.monitor.Monitor`, in the proxy or (by default, unless
blocking) in an :class:`~decoders.addon.observer.Observer` process, and ``events.jsonl`` in the
session folder. Whichever runs the monitor writes the events; when the observer goes away, the
proxy takes over. Classes that keep something per session (the flow saver) listen for the folder
opening and closing.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mitmproxy import ctx, version
from mitmproxy import flow as mitmflow

import decoders
from decoders.addon.observer import Observer, ObserverGone
from decoders.session.events import EventWriter, make_event
from decoders.session.monitor import FlowRef, Message, Monitor, Outcome, Settings, Transport

MAX_INTERNAL_ERRORS = 100
OPTION_NAMES = (
    "mutecheck_dir",
    "mutecheck_block",
    "mutecheck_block_action",
    "mutecheck_block_unread",
    "mutecheck_rules",
    "mutecheck_builtin_rules",
    "mutecheck_scan_limit",
    "mutecheck_save_flows",
    "mutecheck_grace_ms",
    "mutecheck_hold_ms",
    "mutecheck_silence_level",
    "mutecheck_audio_level_id",
    "mutecheck_observer",
)
"""The options recorded in each session's ``session_start`` event, in this order."""


class Recorder:
    """The monitor (in the proxy or in the observer process), events.jsonl, and what the addon
    classes tell each other: the flows that gave events, the judgements blocking acts on."""

    def __init__(self) -> None:
        self.monitor = Monitor()
        self.session_dir: Path | None = None
        self.observer: Observer | None = None
        self.running = False
        self.errors = 0
        self.relevant: set[str] = set()
        """Flows that gave an event (or needed parsing): saved to flows.mitm when they end."""
        self.pending: dict[str, Outcome] = {}
        """Judgements that ask to drop or redact the message in hand, until blocking acts."""
        self.opened: list[Callable[[Path], None]] = []
        self.closing: list[Callable[[], None]] = []
        self._file: IO[bytes] | None = None
        self._writer: EventWriter | None = None
        self._unwritable = False

    @property
    def is_open(self) -> bool:
        return (self._writer or self.observer) is not None

    # --- the session folder -----------------------------------------------------------------

    def open(self) -> None:
        options = ctx.options
        if options.mutecheck_dir:
            folder = Path(options.mutecheck_dir).expanduser()
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            folder = Path(options.confdir).expanduser() / "mutecheck" / stamp
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._file = open(folder / "events.jsonl", "ab", buffering=0)  # noqa: SIM115
        except OSError as error:
            logging.error(f"mutecheck: cannot write to {folder}: {error}")
            self._unwritable = True  # until the options change; the proxy goes on regardless
            return
        self.session_dir = folder
        self._writer = EventWriter(self._file)
        start = self.monitor.start(
            time.time(),
            session_dir=str(folder.resolve()),
            versions={
                "mutecheck": decoders.__version__,
                "mitmproxy": version.VERSION,
                "python": sys.version.split()[0],
            },
            pid=os.getpid(),
            modes=list(options.mode),
            options={name: getattr(options, name) for name in OPTION_NAMES},
            rules=[rule.name for rule in self.monitor.settings.rules],
        )
        self._writer.write(start)
        logging.info(f"mutecheck: session folder {folder}")
        for listener in self.opened:
            listener(folder)
        if self._wants_observer():
            self._start_observer()

    def close(self) -> None:
        try:
            for listener in self.closing:
                listener()
            self._take_back()  # the monitor goes on into the next session, if any
        finally:
            if self._file is not None:
                self._file.close()
            self._file = None
            self._writer = None

    def finish(self) -> None:
        """The session ends: the last events (from the observer, if there is one)."""
        if self.observer is not None:
            observer, self.observer = self.observer, None
            observer.finish(time.time())
        else:
            self.emit(self.monitor.finish(time.time()))

    def emit(self, out: Outcome, item: mitmflow.Flow | None = None) -> None:
        if out.events and item is not None:
            self.relevant.add(item.id)  # saved to flows.mitm when it ends
        if out.events and not self.is_open and not self._unwritable:
            self.open()
        if self._writer is not None:
            self._writer.write_all(out.events)
        for line in out.warnings:
            logging.warning(line)
        for line in out.notices:
            logging.info(line)

    def internal_error(self, hook: str, args: tuple[Any, ...], error: Exception) -> None:
        """A bug or an unforeseen input: note it (bounded) and let the flow go on."""
        self.errors += 1
        if self.errors > MAX_INTERNAL_ERRORS:
            return
        flow_id = getattr(args[0], "id", None) if args else None
        line = f"mutecheck: {hook} failed ({type(error).__name__}: {error}); flow passed untouched"
        event = make_event("warning", time.time(), code="internal-error", message=line)
        if flow_id is not None:
            event["flow"] = {"id": flow_id}
            if hook != "save":
                self.relevant.add(flow_id)  # kept, to see what failed
        try:
            if self.observer is not None:
                self.observer.write(event)
            elif self._writer is not None:
                self._writer.write(event)
        except (OSError, ValueError, ObserverGone):
            pass
        logging.warning(line)

    # --- the monitor, wherever it runs ------------------------------------------------------

    def configure(self, settings: Settings) -> None:
        """New settings (the options changed): to the monitor, wherever it runs; the observer
        starts or stops with the options that want it."""
        self.monitor.settings = settings
        self._unwritable = False
        if self.observer is not None:
            if self._wants_observer():
                try:
                    self.observer.settings(self.monitor)
                except ObserverGone as error:
                    self._observer_lost(error)
            else:
                self._stop_observer()  # block mode: the proxy judges again
        elif self._writer is not None and self._wants_observer():
            self._start_observer()

    def judge(self, message: Message, t: float, item: mitmflow.Flow) -> Outcome | None:
        """The monitor's outcome for a message, or None when the observer judges it."""
        if self.observer is not None:
            try:
                self.observer.observe(message, t)
            except ObserverGone as error:
                self._observer_lost(error)
            else:
                self.relevant.add(item.id)  # it needed parsing: saved to flows.mitm
                return None
        out = self.monitor.observe(message, t)
        self.emit(out, item)
        return out

    def datagram(self, reference: FlowRef, payload: bytes, sent: bool, t: float) -> Outcome | None:
        """A UDP datagram to the monitor; None when the observer takes it."""
        if self.observer is not None:
            try:
                self.observer.datagram(reference, payload, sent, t)
            except ObserverGone as error:
                self._observer_lost(error)
            else:
                return None
        return self.monitor.observe_datagram(reference, payload, sent, t)

    def stream(
        self, reference: FlowRef, data: bytes, sent: bool, t: float, transport: Transport
    ) -> Outcome | None:
        """A piece of a TCP stream to a TURN server; None when the observer takes it."""
        if self.observer is not None:
            try:
                self.observer.stream(reference, data, sent, t, transport)
            except ObserverGone as error:
                self._observer_lost(error)
            else:
                return None
        return self.monitor.observe_stream(reference, data, sent, t, transport)

    def stream_end(self, flow_id: str, t: float) -> Outcome | None:
        if self.observer is not None:
            try:
                self.observer.stream_end(flow_id, t)
            except ObserverGone as error:
                self._observer_lost(error)
            else:
                return None
        return self.monitor.end_stream(flow_id, t)

    def current(self) -> tuple[bool | None, float | None, dict[str, Any]]:
        """(muted, since, Monitor.state()) now, from the observer if there is one."""
        if self.observer is not None:
            try:
                return self.observer.state()
            except ObserverGone as error:
                self._observer_lost(error)
        timeline = self.monitor.timeline
        return timeline.muted, timeline.changed_at, self.monitor.state()

    def mark(
        self, t: float, muted: bool, via: str, note: str | None = None, at: float | None = None
    ) -> dict[str, Any]:
        """Marks the state (in the observer, if there is one); the monitor's state after it."""
        if self.observer is not None:
            try:
                return self.observer.mark(t, muted, via=via, note=note, at=at)
            except ObserverGone as error:
                self._observer_lost(error)
        self.emit(self.monitor.mark(t, muted, via=via, note=note, at=at))
        return self.monitor.state()

    # --- the observer process ---------------------------------------------------------------

    def _wants_observer(self) -> bool:
        options = ctx.options
        return bool(options.mutecheck_observer) and not options.mutecheck_block

    def _start_observer(self) -> None:
        """Hand the monitor to an observer process, which writes events.jsonl from now on."""
        if self.session_dir is None or self._writer is None:
            return
        try:
            observer = Observer(self.session_dir / "events.jsonl", self.monitor, _log)
        except (OSError, ObserverGone) as error:
            logging.info(f"mutecheck: no observer process ({error}); judging in the proxy")
            return
        self.observer = observer
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None

    def _stop_observer(self) -> None:
        """Take the monitor back from the observer (for block mode) and write events again."""
        if self.observer is not None:
            self._take_back()
            self._reopen_writer()

    def _take_back(self) -> None:
        """The observer's monitor (with all it learned) back into the proxy; the observer ends."""
        observer, self.observer = self.observer, None
        if observer is None:
            return
        settings = self.monitor.settings
        try:
            self.monitor = observer.hand_over()
        except ObserverGone as error:
            logging.error(f"mutecheck: {error}; what it judged since is lost")
        self.monitor.settings = settings

    def _observer_lost(self, error: ObserverGone) -> None:
        logging.error(f"mutecheck: {error}; judging in the proxy from now on (its state is lost)")
        self.observer = None
        self._reopen_writer()

    def _reopen_writer(self) -> None:
        if self.session_dir is None:
            return
        try:
            self._file = open(self.session_dir / "events.jsonl", "ab", buffering=0)  # noqa: SIM115
        except OSError as error:
            logging.error(f"mutecheck: cannot write to {self.session_dir}: {error}")
            self._unwritable = True
            return
        self._writer = EventWriter(self._file)


def _log(warnings: list[str], notices: list[str]) -> None:
    """The observer's lines, through mitmproxy's log."""
    for line in warnings:
        logging.warning(line)
    for line in notices:
        logging.info(line)
