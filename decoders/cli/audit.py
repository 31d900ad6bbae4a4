"""``mutecheck audit URL``: proxy + addon, capture, Chromium, live alarm, then the report.

The engine is :mod:`decoders.live.audit`; only the command line is here.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType

import click

from decoders.cli.common import fail
from decoders.live.audit import (
    Audit,
    AuditConfig,
    AuditError,
    check_ca_file,
    check_url,
    run_audit,
)
from decoders.live.plan import parse_plan
from decoders.live.screen import live_screen


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
@click.option(
    "--upstream-ca",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    metavar="PEM",
    help="Also trust this CA for the audited servers, e.g. a self-hosted deployment's internal "
    "CA (the proxy always verifies the servers' certificates).",
)
def audit(
    url: str,
    out: Path,
    interface: str | None,
    headless: bool,
    plan: str | None,
    duration: float | None,
    fake_mic: Path | None,
    upstream_ca: Path | None,
) -> None:
    """Audit a web call app: proxy + addon, capture, Chromium, live alarm, then the report.

    Exit code: the verdict's (0 no leak, 3 inconclusive, 4 metadata leak, 5 content leak);
    2 for a usage error.
    """
    try:
        check_url(url)
        steps = parse_plan(plan) if plan else ()
        if upstream_ca is not None:
            check_ca_file(upstream_ca)
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
        upstream_ca=upstream_ca.resolve() if upstream_ca else None,
    )
    screen = live_screen(f"audit {url}")

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
