"""``mutecheck watch CAPTURE|-``: the live view and alarm for a capture made elsewhere.

The engine is :mod:`decoders.live.watch`; only the command line is here.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from decoders.cli.common import fail
from decoders.live.screen import live_screen


@click.command("watch")
@click.argument("capture")
@click.option(
    "--events",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The addon's events.jsonl (followed while it is written): SDP, marks, telemetry.",
)
@click.option(
    "--local",
    multiple=True,
    metavar="ADDR",
    help="Address of the side that mutes (repeatable); default: every RTP stream is judged.",
)
@click.option(
    "--follow/--no-follow",
    default=None,
    help="Keep reading a capture file as it grows until q or Ctrl-C (default for a file); "
    "--no-follow reads it to its end and exits. Standard input is read to its end.",
)
def watch(capture: str, events: Path | None, local: tuple[str, ...], follow: bool | None) -> None:
    """The live view and alarm for a capture made elsewhere (CAPTURE, or - for a pipe).

    ``ssh host dumpcap -w - | mutecheck watch - --events events.jsonl``. Marks come from the
    keys (m muted, u unmuted) or the events file. Exit code 0; 2 for a usage error.
    """
    from decoders.live.watch import WatchConfig, run_watch

    if capture != "-" and not Path(capture).is_file():
        fail(f"{capture}: no such capture file")
    config = WatchConfig(
        capture=None if capture == "-" else Path(capture),
        events=events,
        local=local,
        follow=capture != "-" and follow is not False,
    )
    screen = live_screen(f"watch {capture}")
    stop = run_watch_signals()
    try:
        state = run_watch(config, screen, stop)
    finally:
        screen.close()
    counts = state.snapshot().counts
    click.echo(
        f"{counts.get('frames', 0)} frames, {counts.get('rtp', 0)} RTP, "
        f"{len(state.snapshot().streams)} outgoing stream(s), {len(state.alarms)} alarm(s)"
    )


def run_watch_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM: the watch ends after reading what it has."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop
