"""mutecheck for mitmproxy: what the browser tells a call service while you are muted.

    mitmdump -s addons/mutecheck.py --set mutecheck_dir=SESSION_DIR

Records SDP offers and answers, the mute state (your marks, the app's own signals, your rules)
and volume telemetry in ``SESSION_DIR/events.jsonl`` (docs/session-format.md); prints one warning
line when volume telemetry, or RTP audio that is not silent (over UDP, or relayed through a TURN
server over TCP or TLS by way of the proxy), leaves while you are muted; with
``mutecheck_block`` it stops such telemetry. Mark mute and unmute with the command
``mutecheck.mark muted|unmuted`` or by requesting ``http://mutecheck.mark/muted`` (``/unmuted``)
through the proxy. The logic lives in :mod:`decoders.session.monitor`; this class only adapts
mitmproxy's flows to it. Unless blocking, the monitor runs in an observer process
(:mod:`decoders.addon.observer`), so that parsing a message never holds up the proxy. No hook
lets an exception out: a failure becomes a ``warning`` event and the flow passes untouched.

Events carry the time mitmproxy recorded for each message, so saved flows can be analysed again
offline: ``mitmdump -n -r SESSION_DIR/flows.mitm -s addons/mutecheck.py --set
mutecheck_dir=NEW_DIR --set mutecheck_save_flows=none``. ``flows.mitm`` holds the flows that gave
events (``mutecheck_save_flows``), written by :mod:`decoders.addon.flowfile`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Concatenate

from mitmproxy import command, ctx, exceptions, flowfilter, http, tcp, udp, version
from mitmproxy import flow as mitmflow
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy import server_hooks
from mitmproxy.utils import human

try:
    import decoders
except ImportError:  # run from a checkout that is not installed: the package is next door
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import decoders

from decoders.errors import MalformedPacket
from decoders.session.events import EventWriter, make_event
from decoders.addon.flowfile import FlowFile
from decoders.session.monitor import (
    BLOCK_ACTIONS,
    BLOCK_UNREAD,
    FlowRef,
    Message,
    Monitor,
    Outcome,
    Settings,
    Transport,
    address_text,
    starts_turn_stream,
    websocket_url,
    without_query,
)
from decoders.session.mutemark import MARK_HOST, is_mark_host, parse_mark_path, parse_state
from decoders.addon.observer import Observer, ObserverGone
from decoders.session.rulefiles import builtin_path, rule_set

MAX_INTERNAL_ERRORS = 100
MAX_OPEN_WEBSOCKETS = 4096
MAX_OPEN_TCP = 4096
TURN_DECISION_BYTES = 4100
TURN_DECISION_MESSAGES = 8
"""A TCP flow whose first client bytes are too short to tell TURN from other TCP is decided
again on the next message, up to this many bytes and messages; then it is not TURN."""
METADATA_KEY = "mutecheck"
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
    "mutecheck_silence_level",
    "mutecheck_audio_level_id",
    "mutecheck_observer",
)
SAVE_CHOICES = ("relevant", "all", "none")
BLOCKED_HEADER = "blocked by mutecheck: volume telemetry while muted"


def _guarded[**P, R](
    hook: Callable[Concatenate[MuteCheck, P], R],
) -> Callable[Concatenate[MuteCheck, P], R | None]:
    """Run a hook; an exception becomes a warning event and the flow goes on untouched."""

    @functools.wraps(hook)
    def run(self: MuteCheck, /, *args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return hook(self, *args, **kwargs)
        except Exception as error:  # the proxy must keep working whatever a body holds
            self.internal_error(hook.__name__, args, error)
            return None

    return run


class MuteCheck:
    """The mitmproxy addon: options, the ``mutecheck.mark`` command and the flow hooks."""

    def __init__(self) -> None:
        self.monitor = Monitor()
        self.session_dir: Path | None = None
        self._file: IO[bytes] | None = None
        self._writer: EventWriter | None = None
        self._observer: Observer | None = None
        self._flows: FlowFile | None = None
        self._unsaved: dict[str, mitmflow.Flow] = {}
        self._relevant: set[str] = set()
        self._save_filter: flowfilter.TFilter | None = None
        self._running = False
        self._errors = 0
        self._websockets: dict[str, tuple[FlowRef, str, str]] = {}
        self._tcp: dict[str, tuple[FlowRef, Transport] | None] = {}
        self._unwritable = False

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "mutecheck_dir",
            str,
            "",
            """
            Session folder for this call: events.jsonl (and flows.mitm) are written there;
            created if missing, appended to if it exists. Empty: a new folder
            <confdir>/mutecheck/<start time>, printed at startup.
            """,
        )
        loader.add_option(
            "mutecheck_block",
            bool,
            False,
            """
            Protective mode: while you are muted, stop volume telemetry from leaving (see
            mutecheck_block_action). Every stopped message is recorded as a 'blocked' event.
            """,
        )
        loader.add_option(
            "mutecheck_block_action",
            str,
            "drop",
            """
            What mutecheck_block does with a message that carries volume telemetry while muted:
            'drop' answers an HTTP request itself (204) and drops a WebSocket message; 'redact'
            sets the volume fields to null and lets the rest through (and drops when the body
            cannot be rewritten faithfully).
            """,
            choices=BLOCK_ACTIONS,
        )
        loader.add_option(
            "mutecheck_block_unread",
            str,
            "block",
            """
            What mutecheck_block does, while you are muted, with a message mutecheck could not
            read whole (longer than mutecheck_scan_limit, nested deeper than 40 levels, more
            than 20,000 values): 'block' (the default) drops it, since what was not read may be
            volume telemetry and protective mode must not be evaded by padding a message;
            'pass' lets it through unless the part that was read holds volume fields. Either
            way a 'scan-limit' warning says what was not read.
            """,
            choices=BLOCK_UNREAD,
        )
        loader.add_option(
            "mutecheck_rules",
            str,
            "",
            """
            JSON file of extra mute-state rules, for services whose mute signal the generic
            recognisers miss: URL pattern + JSON path or regex -> muted/unmuted
            (docs/session-format.md, "Rule file"). Empty: only the built-in rules.
            """,
        )
        loader.add_option(
            "mutecheck_builtin_rules",
            bool,
            True,
            f"""
            Recognise the mute controls of the apps mutecheck knows (the Janus demos'
            AudioBridge, EchoTest, VideoCall and VideoRoom) with its built-in rule files, in
            the format of mutecheck_rules: {builtin_path()}
            """,
        )
        loader.add_option(
            "mutecheck_scan_limit",
            str,
            "256k",
            """
            Look at most at this much of each body or WebSocket message (after decompression),
            e.g. 64k or 1m. Larger ones are scanned up to the limit and a 'scan-limit' warning
            says what was not read (see mutecheck_block_unread for block mode).
            """,
        )
        loader.add_option(
            "mutecheck_save_flows",
            str,
            "relevant",
            """
            Which flows to save to SESSION_DIR/flows.mitm (mitmproxy's format, at the moments
            save_stream_file saves them, honouring save_stream_filter) for re-analysis:
            'relevant' the flows that gave an event (SDP, mute marks and signals, telemetry,
            blocks, warnings; with the observer process, every flow it had to parse), all the
            analysis uses, and no cookies of the rest of your browsing; 'all' every flow (each
            costs the proxy ~40 us, and its writer process ~200 us); 'none'. Nothing while you
            set save_stream_file yourself.
            """,
            choices=SAVE_CHOICES,
        )
        loader.add_option(
            "mutecheck_grace_ms",
            int,
            200,
            """
            Milliseconds after each mute or unmute during which telemetry and audio do not count
            as findings: the browser needs a packet or two to follow a change.
            """,
        )
        loader.add_option(
            "mutecheck_silence_level",
            int,
            100,
            """
            RFC 6464 audio level (-dBov: 0 is loudest, 127 is silence) from which an RTP packet
            counts as silent. A louder packet sent while muted is a finding.
            """,
        )
        loader.add_option(
            "mutecheck_observer",
            bool,
            True,
            """
            Judge the messages that need parsing in a process of its own (the proxy keeps only a
            keyword test and passes on at once); events and warnings are the same. Block mode
            always judges in the proxy, since it must decide before a message leaves.
            """,
        )
        loader.add_option(
            "mutecheck_audio_level_id",
            int,
            0,
            """
            RTP header extension id of the RFC 6464 audio level in the media the proxy carries
            (UDP modes, and TURN over TCP or TLS through CONNECT). 0: learn it from the SDP seen
            in the signaling.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        options = ctx.options
        if "mutecheck_dir" in updated and options.mutecheck_dir:
            folder = Path(options.mutecheck_dir).expanduser()
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise _options_error(
                    f"mutecheck_dir {options.mutecheck_dir!r} cannot be created: {error}"
                ) from error
        if any(name.startswith("mutecheck_") for name in updated):
            self.monitor.settings = self._settings()
            self._unwritable = False
            if self._observer is not None:
                if self._wants_observer():
                    try:
                        self._observer.settings(self.monitor)
                    except ObserverGone as error:
                        self._observer_lost(error)
                else:
                    self._stop_observer()  # block mode: the proxy judges again
            elif self._writer is not None and self._wants_observer():
                self._start_observer()
        if "save_stream_filter" in updated and "save_stream_filter" in options:
            text = options.save_stream_filter
            try:
                self._save_filter = flowfilter.parse(text) if text else None
            except ValueError as error:
                raise _options_error(f"save_stream_filter {text!r}: {error}") from error
        if "mutecheck_dir" in updated and (self._writer or self._observer) is not None:
            self._close()
            if self._running:
                self._open()
        elif updated & {"mutecheck_save_flows", "save_stream_file"} and self.session_dir:
            self._save_flows(self.session_dir)

    def _settings(self) -> Settings:
        """The options as monitor settings; OptionsError naming any value that does not fit."""
        options = ctx.options
        if options.mutecheck_save_flows not in SAVE_CHOICES:
            raise _options_error(
                f"mutecheck_save_flows {options.mutecheck_save_flows!r} is not "
                f"one of {', '.join(SAVE_CHOICES)}"
            )
        if options.mutecheck_block_unread not in BLOCK_UNREAD:
            raise _options_error(
                f"mutecheck_block_unread {options.mutecheck_block_unread!r} is not "
                f"one of {', '.join(BLOCK_UNREAD)}"
            )
        if options.mutecheck_block_action not in BLOCK_ACTIONS:
            raise _options_error(
                f"mutecheck_block_action {options.mutecheck_block_action!r} is not "
                f"one of {', '.join(BLOCK_ACTIONS)}"
            )
        try:
            scan_limit = human.parse_size(options.mutecheck_scan_limit)
        except ValueError:
            scan_limit = None
        if scan_limit is None or scan_limit <= 0:
            raise _options_error(
                f"mutecheck_scan_limit {options.mutecheck_scan_limit!r} is not a size "
                "such as 64k, 256k or 1m"
            )
        if not 0 <= options.mutecheck_grace_ms <= 60_000:
            raise _options_error(
                f"mutecheck_grace_ms {options.mutecheck_grace_ms!r} is not 0..60000"
            )
        if not 1 <= options.mutecheck_silence_level <= 127:
            raise _options_error(
                f"mutecheck_silence_level {options.mutecheck_silence_level!r} is not 1..127"
            )
        if not 0 <= options.mutecheck_audio_level_id <= 255:
            raise _options_error(
                f"mutecheck_audio_level_id {options.mutecheck_audio_level_id!r} is not 0..255"
            )
        path = Path(options.mutecheck_rules).expanduser() if options.mutecheck_rules else None
        try:
            rules = rule_set(path, builtin=options.mutecheck_builtin_rules)
        except (OSError, UnicodeDecodeError, MalformedPacket) as error:
            raise _options_error(f"mutecheck_rules {options.mutecheck_rules!r}: {error}") from error
        return Settings(
            block=options.mutecheck_block,
            block_action=options.mutecheck_block_action,
            block_unread=options.mutecheck_block_unread,
            scan_limit=scan_limit,
            grace=options.mutecheck_grace_ms / 1000,
            silence_level=options.mutecheck_silence_level,
            audio_level_id=options.mutecheck_audio_level_id or None,
            rules=rules,
        )

    @_guarded
    def running(self) -> None:
        self._running = True
        if self._writer is None:
            self._open()

    @_guarded
    def done(self) -> None:
        try:
            for item in list(self._unsaved.values()):  # never ended: saved as they are, as
                self._keep(item)  # mitmproxy's Save addon does
            if self._observer is not None:
                observer, self._observer = self._observer, None
                observer.finish(time.time())
            else:
                self._emit(self.monitor.finish(time.time()))
        finally:
            self._close()

    # --- the session folder -----------------------------------------------------------------

    def _open(self) -> None:
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
        self._save_flows(folder)
        if self._wants_observer():
            self._start_observer()

    # --- the observer process ---------------------------------------------------------------

    def _wants_observer(self) -> bool:
        options = ctx.options
        return bool(options.mutecheck_observer) and not options.mutecheck_block

    def _start_observer(self) -> None:
        """Hand the monitor to an observer process, which writes events.jsonl from now on."""
        if self.session_dir is None or self._writer is None:
            return
        try:
            observer = Observer(self.session_dir / "events.jsonl", self.monitor, self._observer_log)
        except (OSError, ObserverGone) as error:
            logging.info(f"mutecheck: no observer process ({error}); judging in the proxy")
            return
        self._observer = observer
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None

    def _stop_observer(self) -> None:
        """Take the monitor back from the observer (for block mode) and write events again."""
        if self._observer is not None:
            self._take_back()
            self._reopen_writer()

    def _take_back(self) -> None:
        """The observer's monitor (with all it learned) back into the proxy; the observer ends."""
        observer, self._observer = self._observer, None
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
        self._observer = None
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

    def _observer_log(self, warnings: list[str], notices: list[str]) -> None:
        for line in warnings:
            logging.warning(line)
        for line in notices:
            logging.info(line)

    def _judge(self, message: Message, t: float, item: mitmflow.Flow) -> Outcome | None:
        """The monitor's outcome for a message, or None when the observer judges it."""
        if self._observer is not None:
            try:
                self._observer.observe(message, t)
            except ObserverGone as error:
                self._observer_lost(error)
            else:
                self._relevant.add(item.id)  # it needed parsing: saved to flows.mitm
                return None
        out = self.monitor.observe(message, t)
        self._emit(out, item)
        return out

    def _current(self) -> tuple[bool | None, float | None, dict[str, Any]]:
        """(muted, since, Monitor.state()) now, from the observer if there is one."""
        if self._observer is not None:
            try:
                return self._observer.state()
            except ObserverGone as error:
                self._observer_lost(error)
        timeline = self.monitor.timeline
        return timeline.muted, timeline.changed_at, self.monitor.state()

    def _mark(
        self, t: float, muted: bool, via: str, note: str | None = None, at: float | None = None
    ) -> dict[str, Any]:
        """Marks the state (in the observer, if there is one); the monitor's state after it."""
        if self._observer is not None:
            try:
                return self._observer.mark(t, muted, via=via, note=note, at=at)
            except ObserverGone as error:
                self._observer_lost(error)
        self._emit(self.monitor.mark(t, muted, via=via, note=note, at=at))
        return self.monitor.state()

    def _save_flows(self, folder: Path) -> None:
        """Save flows to SESSION_DIR/flows.mitm (appending), unless the user saves them."""
        options = ctx.options
        theirs = "save_stream_file" in options and options.save_stream_file
        if options.mutecheck_save_flows == "none" or theirs:
            self._close_flows()
            return
        path = folder / "flows.mitm"
        if self._flows is not None and self._flows.path == path:
            return
        self._close_flows()
        try:
            self._flows = FlowFile(path)
        except OSError as error:
            logging.error(f"mutecheck: cannot save flows to {path}: {error}")
            return
        if self._flows.problem:
            logging.info(f"mutecheck: {self._flows.problem}; the proxy writes flows.mitm itself")

    def _close_flows(self) -> None:
        if self._flows is not None:
            flows, self._flows = self._flows, None
            flows.close()
            if flows.problem:
                logging.warning(f"mutecheck: flows.mitm: {flows.problem}")

    def _close(self) -> None:
        try:
            self._close_flows()
            self._take_back()  # the monitor goes on into the next session, if any
        finally:
            if self._file is not None:
                self._file.close()
            self._file = None
            self._writer = None

    def _started(self, item: mitmflow.Flow) -> None:
        """A flow to save when it ends (or at shutdown, if it never does)."""
        if self._flows is not None:
            self._unsaved[item.id] = item

    def _keep(self, item: mitmflow.Flow) -> None:
        """Save a flow now, at the moments mitmproxy's Save addon does; failures are reported."""
        self._unsaved.pop(item.id, None)
        relevant = item.id in self._relevant
        self._relevant.discard(item.id)
        if self._flows is None or not (relevant or ctx.options.mutecheck_save_flows == "all"):
            return
        try:
            if self._save_filter is None or flowfilter.match(self._save_filter, item):
                self._flows.add(item)
        except Exception as error:  # the proxy must keep working whatever a flow holds
            self.internal_error("save", (item,), error)

    def _emit(self, out: Outcome, item: mitmflow.Flow | None = None) -> None:
        if out.events and item is not None:
            self._relevant.add(item.id)  # saved to flows.mitm when it ends
        if out.events and self._writer is None and self._observer is None and not self._unwritable:
            self._open()
        if self._writer is not None:
            self._writer.write_all(out.events)
        for line in out.warnings:
            logging.warning(line)
        for line in out.notices:
            logging.info(line)

    def internal_error(self, hook: str, args: tuple[Any, ...], error: Exception) -> None:
        """A bug or an unforeseen input: note it (bounded) and let the flow go on."""
        self._errors += 1
        if self._errors > MAX_INTERNAL_ERRORS:
            return
        flow_id = getattr(args[0], "id", None) if args else None
        line = f"mutecheck: {hook} failed ({type(error).__name__}: {error}); flow passed untouched"
        event = make_event("warning", time.time(), code="internal-error", message=line)
        if flow_id is not None:
            event["flow"] = {"id": flow_id}
            if hook != "save":
                self._relevant.add(flow_id)  # kept, to see what failed
        try:
            if self._observer is not None:
                self._observer.write(event)
            elif self._writer is not None:
                self._writer.write(event)
        except (OSError, ValueError, ObserverGone):
            pass
        logging.warning(line)

    # --- marks ------------------------------------------------------------------------------

    @command.command("mutecheck.mark")  # type: ignore[untyped-decorator]
    def mark(self, state: str) -> None:
        """Mark the microphone muted or unmuted from now on: mutecheck.mark muted|unmuted."""
        try:
            muted = parse_state(state)
        except ValueError as error:
            raise exceptions.CommandError(str(error)) from error
        self._mark(time.time(), muted, via="command")

    @command.command("mutecheck.state")  # type: ignore[untyped-decorator]
    def state(self) -> str:
        """What mutecheck believes now: muted, unmuted or unknown, and since when."""
        muted, since, _ = self._current()
        word = "unknown" if muted is None else ("muted" if muted else "unmuted")
        return (
            word if since is None else f"{word} since {time.strftime('%X', time.localtime(since))}"
        )

    def _answer_mark(self, flow: http.HTTPFlow) -> None:
        flow.metadata[METADATA_KEY] = "mark"
        self._relevant.add(flow.id)
        headers = {
            "Content-Type": "application/json",
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "no-store",
        }
        if flow.request.method == "OPTIONS":
            flow.response = http.Response.make(204, b"", headers)
            return
        try:
            request = parse_mark_path(flow.request.path)
        except ValueError as error:
            body = {"error": str(error), "usage": "/muted, /unmuted or /state; ?t=<epoch s>"}
            flow.response = http.Response.make(400, json.dumps(body), headers)
            return
        now = flow.request.timestamp_start or time.time()
        if request.muted is not None:
            state = self._mark(now, request.muted, via="url", note=request.note, at=request.at)
            answer = {"marked": "muted" if request.muted else "unmuted", "t": now, **state}
        else:
            answer = self._current()[2]
        flow.response = http.Response.make(200, json.dumps(answer), headers)

    # --- hooks ------------------------------------------------------------------------------

    @_guarded
    def http_connect(self, flow: http.HTTPFlow) -> None:
        """Accept CONNECT to the mark host without trying to reach it."""
        if is_mark_host(flow.request.host):
            now = time.time()
            flow.response = http.Response(
                flow.request.data.http_version,
                200,
                b"Connection established",
                http.Headers(),
                b"",
                None,
                now,
                now,
            )

    @_guarded
    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        """Never connect (nor resolve) the mark host, e.g. for TLS to https://mutecheck.mark."""
        address = data.server.address
        if address is not None and is_mark_host(str(address[0])):
            data.server.error = "mutecheck.mark is answered by the proxy itself"

    @_guarded
    def request(self, flow: http.HTTPFlow) -> None:
        self._started(flow)
        if _names_mark_host(flow.request):
            self._answer_mark(flow)
            return
        if flow.response is not None and flow.live:
            return  # answered by another addon: nothing leaves
        message = self._http_message(flow, flow.request, sent=True)
        if message is None:
            return
        when = flow.request.timestamp_end or flow.request.timestamp_start or time.time()
        out = self._judge(message, when, flow)
        if out is None:
            return
        if out.action == "drop":
            flow.response = http.Response.make(204, b"", {"X-Mutecheck": BLOCKED_HEADER})
        elif out.action == "redact" and out.replacement is not None:
            flow.request.content = out.replacement

    @_guarded
    def response(self, flow: http.HTTPFlow) -> None:
        try:
            self._observe_response(flow)
        finally:
            if flow.websocket is None:  # a WebSocket is saved when it ends
                self._keep(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:
            self._keep(flow)

    def _observe_response(self, flow: http.HTTPFlow) -> None:
        if flow.response is None or flow.metadata.get(METADATA_KEY) == "mark":
            return
        message = self._http_message(flow, flow.response, sent=False)
        if message is not None:
            when = flow.response.timestamp_end or flow.response.timestamp_start or time.time()
            self._judge(message, when, flow)

    @_guarded
    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None or not flow.websocket.messages:
            return
        index = len(flow.websocket.messages) - 1
        last = flow.websocket.messages[index]
        known = self._websockets.get(flow.id)
        if known is None:  # once per WebSocket: mitmproxy's URL properties are not cheap
            url = websocket_url(flow.request.pretty_url)
            endpoint = without_query(url)
            reference = FlowRef(
                id=flow.id,
                type="websocket",
                url=url[:2000],
                client=address_text(flow.client_conn.peername),
                server=address_text(flow.server_conn.address),
            )
            known = (reference, endpoint, f"WebSocket {endpoint}")
            if len(self._websockets) >= MAX_OPEN_WEBSOCKETS:
                del self._websockets[next(iter(self._websockets))]
            self._websockets[flow.id] = known
        reference, endpoint, label = known
        if self.monitor.skippable(
            last.content, url=reference.url or endpoint, sent=last.from_client
        ):
            return  # most messages: nothing any recogniser looks for
        message = Message(
            flow=reference,
            endpoint=endpoint,
            sent=last.from_client,
            content=last.content,
            label=label,
            message_index=index,
        )
        out = self._judge(message, last.timestamp or time.time(), flow)
        if out is None:
            return
        if out.action == "drop":
            last.drop()  # type: ignore[no-untyped-call]
        elif out.action == "redact" and out.replacement is not None:
            last.content = out.replacement

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._websockets.pop(flow.id, None)
        self._keep(flow)

    # the other flows are saved when they end; TCP to a TURN server is read for media
    def tcp_start(self, flow: mitmflow.Flow) -> None:
        self._started(flow)

    def udp_start(self, flow: mitmflow.Flow) -> None:
        self._started(flow)

    def dns_request(self, flow: mitmflow.Flow) -> None:
        self._started(flow)

    def tcp_end(self, flow: mitmflow.Flow) -> None:
        try:
            self._tcp_ended(flow)
        finally:
            self._keep(flow)

    tcp_error = tcp_end

    def udp_end(self, flow: mitmflow.Flow) -> None:
        self._keep(flow)

    udp_error = dns_response = dns_error = udp_end

    @_guarded
    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        """TURN over TCP (or TLS the proxy terminated) through CONNECT: the pieces go to the
        monitor (in the observer), which frames them; any other TCP costs a dict lookup."""
        if flow.id not in self._tcp:
            self._tcp_decide(flow)  # hands over the messages so far if it is TURN
            return
        known = self._tcp[flow.id]
        if known is not None:
            self._tcp_piece(flow, known, flow.messages[-1])

    def _tcp_decide(self, flow: tcp.TCPFlow) -> None:
        """Is a TCP flow TURN? Decided on its first client bytes (a few messages at most, while
        they are too short to tell), then remembered until it ends."""
        messages = flow.messages
        head = b""
        for message in messages:
            if not message.from_client:
                if not head:  # the server spoke first: not TURN
                    break
                continue
            head += message.content
            if len(head) >= TURN_DECISION_BYTES:
                break
        verdict = starts_turn_stream(head) if head else False
        if verdict is None and len(messages) < TURN_DECISION_MESSAGES:
            return  # too short to tell: the next message decides
        if len(self._tcp) >= MAX_OPEN_TCP:
            del self._tcp[next(iter(self._tcp))]
        if not verdict:
            self._tcp[flow.id] = None
            return
        transport: Transport = "turn-tls" if flow.client_conn.tls_established else "turn-tcp"
        reference = FlowRef(
            id=flow.id,
            type="tcp",
            client=address_text(flow.client_conn.peername),
            server=address_text(flow.server_conn.address),
        )
        known = (reference, transport)
        self._tcp[flow.id] = known
        self._relevant.add(flow.id)  # media evidence: saved to flows.mitm when it ends
        for message in messages:  # from its first byte (also after a script reload mid-call)
            self._tcp_piece(flow, known, message)

    def _tcp_piece(
        self, flow: tcp.TCPFlow, known: tuple[FlowRef, Transport], message: tcp.TCPMessage
    ) -> None:
        reference, transport = known
        when = message.timestamp or time.time()
        if self._observer is not None:
            try:
                self._observer.stream(
                    reference, message.content, message.from_client, when, transport
                )
            except ObserverGone as error:
                self._observer_lost(error)
            else:
                return
        self._emit(
            self.monitor.observe_stream(
                reference, message.content, message.from_client, when, transport
            ),
            flow,
        )

    @_guarded
    def _tcp_ended(self, flow: mitmflow.Flow) -> None:
        if self._tcp.pop(flow.id, None) is None:
            return
        messages = getattr(flow, "messages", None)
        when = (messages[-1].timestamp if messages else None) or time.time()  # replays alike
        if self._observer is not None:
            try:
                self._observer.stream_end(flow.id, when)
            except ObserverGone as error:
                self._observer_lost(error)
            else:
                return
        self._emit(self.monitor.end_stream(flow.id, when), flow)

    @_guarded
    def udp_message(self, flow: udp.UDPFlow) -> None:
        if not flow.messages:
            return
        last = flow.messages[-1]
        reference = FlowRef(
            id=flow.id,
            type="udp",
            client=address_text(flow.client_conn.peername),
            server=address_text(flow.server_conn.address),
        )
        when = last.timestamp or time.time()
        if self._observer is not None:
            try:
                self._observer.datagram(reference, last.content, last.from_client, when)
            except ObserverGone as error:
                self._observer_lost(error)
            else:
                return
        self._emit(
            self.monitor.observe_datagram(reference, last.content, last.from_client, when), flow
        )

    def _http_message(
        self, flow: http.HTTPFlow, part: http.Request | http.Response, *, sent: bool
    ) -> Message | None:
        content = part.raw_content
        if content is None:
            return None  # streamed (stream_large_bodies): mitmproxy keeps no body to read
        monitor = self.monitor
        if (not sent or "?" not in flow.request.path) and monitor.skippable(
            content,
            url=flow.request.url if monitor.settings.rules else "",  # rules only need it
            sent=sent,
            content_encoding=part.headers.get("content-encoding"),
        ):
            return None  # nothing any recogniser looks for
        url = flow.request.url
        endpoint = without_query(url)
        query = urllib.parse.urlsplit(url).query if sent else ""
        if not content and not query:
            return None
        method = flow.request.method
        reference = FlowRef(
            id=flow.id,
            type="http",
            url=url[:2000],
            method=method,
            client=address_text(flow.client_conn.peername),
            server=address_text(flow.server_conn.address or (flow.request.host, flow.request.port)),
        )
        return Message(
            flow=reference,
            endpoint=endpoint,
            sent=sent,
            content=content,
            label=f"{method} {endpoint}" if sent else f"response to {method} {endpoint}",
            content_encoding=part.headers.get("content-encoding"),
            content_type=part.headers.get("content-type"),
            query=query,
        )


def _names_mark_host(request: http.Request) -> bool:
    """Is ``request.pretty_host`` (the Host header, else the target) the mark host? Cheaply:
    almost no request names it, and pretty_host parses the header each time (~7 us)."""
    if is_mark_host(request.host):
        return True
    for name, value in request.data.headers.fields:
        if name.lower() == b"host":
            return MARK_HOST.encode() in value.lower() and is_mark_host(request.pretty_host)
    return False


def _options_error(message: str) -> exceptions.OptionsError:
    return exceptions.OptionsError(message)  # type: ignore[no-untyped-call]


addons = [MuteCheck()]
