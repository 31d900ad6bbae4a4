"""``mutecheck audit URL`` and ``mutecheck watch CAPTURE|-``: the command line of the live audit.

(Only click here; the engine is the rest of :mod:`decoders.live`.)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from decoders.cli import fail
from decoders.live.audit import Audit, AuditConfig, AuditError, check_url, run_audit
from decoders.live.plan import parse_plan
from decoders.live.screen import PlainLines, Screen


def _screen(title: str) -> Screen:
    """The live view on a terminal, plain lines otherwise (a pipe, a CI log)."""
    if sys.stdout.isatty():
        from decoders.live.view import LiveView

        return LiveView(title)
    return PlainLines()


@click.command("audit")
@click.argument("url")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The session folder to write (created; must be empty).",
)
@click.option(
    "--interface",
    default=None,
    help="Capture on this interface (default: the one that routes to the URL's host).",
)
@click.option("--headless", is_flag=True, help="No window; fake microphone and camera.")
@click.option(
    "--plan",
    default=None,
    metavar="PLAN",
    help="Marks for an unattended run: SECONDS:mute|unmute,... counted from the browser's start, "
    "e.g. 6:mute,14:unmute.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=1.0, max=86400.0),
    default=None,
    metavar="S",
    help="End the call after S seconds (default: q, Ctrl-C or closing the browser).",
)
@click.option(
    "--fake-mic",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A WAV file Chromium plays as the microphone (fake capture devices).",
)
def audit(
    url: str,
    out: Path,
    interface: str | None,
    headless: bool,
    plan: str | None,
    duration: float | None,
    fake_mic: Path | None,
) -> None:
    """Audit a web call app: proxy + addon, capture, Chromium, live alarm, then the report.

    Exit code: the verdict's (0 no leak, 3 inconclusive, 4 metadata leak, 5 content leak);
    2 for a usage error.
    """
    try:
        check_url(url)
        steps = parse_plan(plan) if plan else ()
    except ValueError as error:
        fail(str(error))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"{out}: must be an empty folder or not exist")
    if not headless and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        fail("no display for a visible browser (DISPLAY is not set): add --headless")
    config = AuditConfig(
        url=url,
        out=out,
        headless=headless,
        plan=steps,
        duration_s=duration,
        interface=interface,
        fake_mic=fake_mic.resolve() if fake_mic else None,
    )
    screen = _screen(f"audit {url}")

    def wire_quit(running: Audit) -> None:
        def on_interrupt(signum: int, frame: FrameType | None) -> None:
            del signum, frame
            running.quit.set()

        signal.signal(signal.SIGINT, on_interrupt)
        signal.signal(signal.SIGTERM, on_interrupt)

    try:
        result = run_audit(config, screen, on_start=wire_quit)
    except AuditError as error:
        screen.close()
        fail(str(error))
    finally:
        screen.close()
    click.echo(result.summary)
    click.echo(f"verdict: {result.verdict} (exit code {result.exit_code})")
    click.echo(f"session: {result.folder}")
    click.echo(f"report: {result.report_json}")
    click.echo(f"html: {result.report_html}")
    sys.exit(result.exit_code)


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
    screen = _screen(f"watch {capture}")
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
