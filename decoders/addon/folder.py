"""The session folder: where a session's files go, and when a session starts and ends."""

from __future__ import annotations

from pathlib import Path

from mitmproxy import ctx
from mitmproxy.addonmanager import Loader

from decoders.addon.guard import guarded, options_error
from decoders.addon.recorder import Recorder


class SessionFolder:
    """``mutecheck_dir``: the session opens when mitmproxy runs (or at the first event), starts
    again in a new folder when the option changes, and ends when mitmproxy stops. Listed after
    the other classes, so that their ``done`` hooks run while the session is still open."""

    name = "mutecheck.folder"  # mitmproxy's name for it (not the bare class name: no clash)

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

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

    def configure(self, updated: set[str]) -> None:
        if "mutecheck_dir" not in updated:
            return
        text = ctx.options.mutecheck_dir
        if text:
            try:
                Path(text).expanduser().mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise options_error(f"mutecheck_dir {text!r} cannot be created: {error}") from error
        recorder = self.recorder
        if recorder.is_open:
            recorder.close()
            if recorder.running:
                recorder.open()

    @guarded
    def running(self) -> None:
        self.recorder.running = True
        if not self.recorder.is_open:
            self.recorder.open()

    @guarded
    def done(self) -> None:
        try:
            self.recorder.finish()
        finally:
            self.recorder.close()
