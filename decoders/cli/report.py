"""``mutecheck report SESSION --html OUT.html [--wireshark DIR]``, and the hook ``analyze`` calls.

:func:`write_reports` writes the HTML report and/or the Wireshark companion files of an
analysis already made; ``analyze --html/--wireshark`` calls it after printing its summary. The
``report`` command analyses a session folder (or a capture) with the audit's defaults and
writes the reports only, printing where they are (``--quiet``: nothing but errors).
User errors print one line and exit with code 2, as everywhere in mutecheck.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from decoders import outputs
from decoders.cli.common import (
    at,
    colour_option,
    fail,
    grace_option,
    muted_option,
    os_reason,
    progress_bar,
    progress_option,
    quiet_option,
    show_progress,
    warning_line,
)
from decoders.report.style import Style

if TYPE_CHECKING:
    from decoders.audit.analysis import Analysis
    from decoders.report.wireshark import WiresharkFiles


@dataclass(frozen=True)
class Written:
    """What :func:`write_reports` wrote."""

    html: Path | None = None
    wireshark: WiresharkFiles | None = None

    def lines(self, style: Style | None = None) -> list[str]:
        """One line per report, for the terminal."""
        style = style or Style(False)
        out = []
        if self.html is not None:
            out.append(f"HTML report: {style.bold(str(self.html))}")
        if self.wireshark is not None:
            files = self.wireshark
            detail = f"{files.flagged_frames} flagged frame(s)"
            if files.annotated is not None:
                detail = f"{files.annotated.name} with " + detail
            out.append(
                f"Wireshark files: {style.bold(str(files.directory))} ({detail}; see README.md)"
            )
        return out


def write_reports(
    analysis_result: Analysis,
    *,
    html: Path | None,
    wireshark: Path | None,
    progress: bool | None = False,
) -> Written:
    """Write the HTML report to ``html`` and the Wireshark files into ``wireshark`` (each if given).

    ``progress``: a progress bar on stderr while copying a large capture (None: on a terminal,
    for captures from :data:`~decoders.cli.common.PROGRESS_MIN_BYTES`; False: never). Raises
    OSError when a file cannot be written.
    """
    html_path: Path | None = None
    files: WiresharkFiles | None = None
    if html is not None:
        from decoders.report.html import write_html

        html_path = write_html(analysis_result, html)
    if wireshark is not None:
        from decoders.report.wireshark import write_wireshark

        capture = analysis_result.inputs.capture
        size = capture.stat().st_size if capture is not None and capture.is_file() else 0
        enabled = show_progress(size, force=progress) if progress is not False else False
        with progress_bar(size, "annotating", enabled=enabled) as tick:
            files = write_wireshark(analysis_result, wireshark, progress=tick)
    return Written(html_path, files)


@click.command("report")
@click.argument("session", type=click.Path(path_type=Path))
@click.option(
    "--html",
    "html",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the self-contained HTML report here (verdict, timeline charts, findings, "
    "streams, what was measured, input hashes). Works offline; runs no script.",
)
@click.option(
    "--wireshark",
    "wireshark",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the Wireshark companion into this folder: annotated.pcapng (a comment on each "
    "flagged frame), filters, a profile (decode-as, filter macros, columns) and mutecheck.lua.",
)
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also save a full-page PNG of the HTML report (needs Chromium; with --html).",
)
@muted_option(
    "A mute interval in seconds (epoch, or from the capture's first packet); repeatable. "
    "Default: the session's timeline.json and the addon's marks."
)
@grace_option(
    "Seconds around each mute/unmute judged neither muted nor unmuted (default 0.2).",
    limits=click.FloatRange(min=0.0),
    default=None,
)
@quiet_option("Print nothing but errors.")
@colour_option("Colour the verdict (default: on a terminal, unless NO_COLOR is set).")
@progress_option("Progress bar while annotating (default: on a terminal, for large captures).")
def report(
    session: Path,
    html: Path | None,
    wireshark: Path | None,
    screenshot: Path | None,
    muted: tuple[str, ...],
    grace: float | None,
    quiet: bool,
    colour: bool | None,
    progress: bool | None,
) -> None:
    """Write the reports of SESSION (a session folder, or a capture file).

    \b
    mutecheck report captures/chromium-ui-only --html report.html
    mutecheck report captures/chromium-ui-only --html report.html --wireshark ws/
    """
    from decoders.audit.analysis import InputError, Inputs, analyze
    from decoders.errors import CaptureError, MalformedPacket
    from decoders.session.timeline import GRACE_DEFAULT

    if html is None and wireshark is None:
        fail("nothing to write: give --html OUT.html and/or --wireshark DIR")
    if screenshot is not None and html is None:
        fail("--screenshot needs --html (it is a picture of the HTML report)")
    if not session.exists():
        fail(at(session, "no such file or folder"))
    inputs = (
        Inputs(session_dir=session, muted=muted, grace=GRACE_DEFAULT if grace is None else grace)
        if session.is_dir()
        else Inputs(capture=session, muted=muted, grace=GRACE_DEFAULT if grace is None else grace)
    )
    try:
        result = analyze(inputs)
        written = write_reports(
            result, html=html, wireshark=wireshark, progress=False if quiet else progress
        )
    except (InputError, CaptureError, MalformedPacket) as error:
        text = str(error)  # the analysis names the file already when it knows it
        fail(text if text.startswith(str(session)) else at(session, text))
    except OSError as error:
        fail(os_reason(error))
    if screenshot is not None and written.html is not None:
        from decoders.report.browser import BrowserError, inspect_page

        try:
            page = inspect_page(written.html)
            outputs.write_bytes(screenshot, page.screenshot)
        except (BrowserError, OSError) as error:
            fail(f"screenshot: {error}")
    if quiet:
        return
    style = Style.for_stream(sys.stdout, force=colour)
    verdict = result.verdict
    # click.echo strips colour when stdout is no terminal unless told: the style decides
    lines = [f"{style.verdict(verdict.verdict)} ({verdict.label} confidence): {verdict.reason}"]
    lines += written.lines(style)
    if screenshot is not None:
        lines.append(f"Screenshot: {style.bold(str(screenshot))}")
    for line in lines:
        click.echo(line, color=style.enabled)
    for line in warning_lines(result.warnings):
        click.echo(line, err=True)


WARNINGS_SHOWN = 20
"""At most this many warnings on the terminal; the HTML report and report.json hold them all."""


def warning_lines(warnings: list[str]) -> list[str]:
    """The analysis's warnings (capture damage first) as ``mutecheck: warning:`` lines, as
    ``mutecheck streams`` shows damage: a damaged capture must not look whole on the terminal."""
    ordered = sorted(warnings, key=lambda w: not w.startswith("capture damaged"))
    out = [warning_line(w) for w in ordered[:WARNINGS_SHOWN]]
    if len(ordered) > WARNINGS_SHOWN:
        more = len(ordered) - WARNINGS_SHOWN
        out.append(warning_line(f"and {more} more (all of them in the HTML report)"))
    return out
