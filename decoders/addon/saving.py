"""``flows.mitm`` in the session folder: the flows that gave events, for re-analysis.

Saved at the moments mitmproxy's own ``Save`` addon saves them (an HTTP flow when it is answered
or fails, a WebSocket, TCP, UDP or DNS flow when it ends, the rest at shutdown), honouring
``save_stream_filter``, written by :class:`~decoders.addon.flowfile.FlowFile`'s writer process.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mitmproxy import ctx, flowfilter, http
from mitmproxy import flow as mitmflow
from mitmproxy.addonmanager import Loader

from decoders.addon.flowfile import FlowFile
from decoders.addon.guard import check_choices, guarded, options_error
from decoders.addon.recorder import Recorder

SAVE_CHOICES = ("relevant", "all", "none")


class FlowSaving:
    """``mutecheck_save_flows``: which flows go to SESSION_DIR/flows.mitm. Listed after the
    classes that read flows, so that a flow is saved once they have seen it whole."""

    name = "mutecheck.saving"  # mitmproxy's name for it (not the bare class name: no clash)

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._flows: FlowFile | None = None
        self._unsaved: dict[str, mitmflow.Flow] = {}
        self._filter: flowfilter.TFilter | None = None
        recorder.opened.append(self._open)
        recorder.closing.append(self._close)

    def load(self, loader: Loader) -> None:
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

    def configure(self, updated: set[str]) -> None:
        check_choices(updated, ("mutecheck_save_flows",))
        options = ctx.options
        if "save_stream_filter" in updated and "save_stream_filter" in options:
            text = options.save_stream_filter
            try:
                self._filter = flowfilter.parse(text) if text else None
            except ValueError as error:
                raise options_error(f"save_stream_filter {text!r}: {error}") from error
        if "mutecheck_dir" in updated and self.recorder.is_open:
            return  # a new folder: the flows follow when it opens
        folder = self.recorder.session_dir
        if updated & {"mutecheck_save_flows", "save_stream_file"} and folder is not None:
            self._open(folder)

    # a flow is saved when it ends, or at shutdown if it never does

    @guarded
    def request(self, flow: http.HTTPFlow) -> None:
        self._started(flow)

    @guarded
    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:  # a WebSocket is saved when it ends
            self._keep(flow)

    error = response

    @guarded
    def tcp_start(self, flow: mitmflow.Flow) -> None:
        self._started(flow)

    udp_start = dns_request = tcp_start

    @guarded
    def tcp_end(self, flow: mitmflow.Flow) -> None:
        self._keep(flow)

    websocket_end = tcp_error = udp_end = udp_error = dns_response = dns_error = tcp_end

    @guarded
    def done(self) -> None:
        for item in list(self._unsaved.values()):  # never ended: saved as they are, as
            self._keep(item)  # mitmproxy's Save addon does

    def _started(self, item: mitmflow.Flow) -> None:
        if self._flows is not None:
            self._unsaved[item.id] = item

    def _keep(self, item: mitmflow.Flow) -> None:
        """Save a flow now, at the moments mitmproxy's Save addon does; failures are reported."""
        self._unsaved.pop(item.id, None)
        relevant = self.recorder.relevant
        chosen = item.id in relevant
        relevant.discard(item.id)
        if self._flows is None or not (chosen or ctx.options.mutecheck_save_flows == "all"):
            return
        try:
            if self._filter is None or flowfilter.match(self._filter, item):
                self._flows.add(item)
        except Exception as error:  # the proxy must keep working whatever a flow holds
            self.recorder.internal_error("save", (item,), error)

    # the session folder opens and closes

    def _open(self, folder: Path) -> None:
        """Save flows to SESSION_DIR/flows.mitm (appending), unless the user saves them."""
        options = ctx.options
        theirs = "save_stream_file" in options and options.save_stream_file
        if options.mutecheck_save_flows == "none" or theirs:
            self._close()
            return
        path = folder / "flows.mitm"
        if self._flows is not None and self._flows.path == path:
            return
        self._close()
        try:
            self._flows = FlowFile(path)
        except OSError as error:
            logging.error(f"mutecheck: cannot save flows to {path}: {error}")
            return
        if self._flows.problem:
            logging.info(f"mutecheck: {self._flows.problem}; the proxy writes flows.mitm itself")

    def _close(self) -> None:
        if self._flows is not None:
            flows, self._flows = self._flows, None
            flows.close()
            if flows.problem:
                logging.warning(f"mutecheck: flows.mitm: {flows.problem}")
