"""``mutecheck analyze``: did anything leave while muted? The verdict is the exit code.

Exit codes (``decoders.audit.verdict.EXIT_CODES``; all of mutecheck's:
:class:`decoders.cli.common.Exit`): 0 no leak, 3 inconclusive, 4 metadata leak, 5 content leak;
2 is a user error (one line on stderr), 1 a crash. An app's CI can run
``mutecheck analyze SESSION_DIR`` and fail on anything but 0.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from decoders import outputs
from decoders.audit.analysis import IGNORABLE, InputError, Inputs
from decoders.audit.analysis import analyze as run_analysis
from decoders.cli.common import (
    PATH,
    at,
    audio_level_id_option,
    colour_option,
    fail,
    grace_option,
    json_option,
    muted_option,
    os_reason,
    progress_bar,
    quiet_option,
    sdp_option,
    show_progress,
)
from decoders.errors import CaptureError, MalformedPacket
from decoders.session.timeline import GRACE_DEFAULT

if TYPE_CHECKING:
    from decoders.audit.analysis import Analysis


def _seconds(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        fail(f"{name} {text!r} is not a number of seconds")


@click.command()
@click.argument("session", required=False, type=PATH)
@click.option("--capture", type=PATH, help="Capture file (pcap/pcapng) of the call's media.")
@click.option("--events", type=PATH, help="The addon's events.jsonl (marks, telemetry, SDP).")
@click.option(
    "--flows",
    type=PATH,
    help="mitmproxy flows (flows.mitm): replayed through the addon's detector. "
    "Default: used when there is no events.jsonl.",
)
@click.option(
    "--rules",
    "rules",
    type=PATH,
    help="Rule file (the format of the addon's mutecheck_rules) for the app's own mute "
    "signals: flows.mitm is read again with it, beside the built-in rules.",
)
@click.option(
    "--builtin-rules/--no-builtin-rules",
    "builtin_rules",
    default=True,
    show_default=True,
    help="Read the apps' mute signals with mutecheck's built-in rules (the Janus demos).",
)
@click.option(
    "--timeline",
    type=PATH,
    help='Mute intervals: JSON {"muted": [[start, end], ...]} or CSV start,end lines.',
)
@click.option("--keys", type=PATH, help="SRTP keys (keys.json), to decode the audio.")
@sdp_option("Offer/answer SDP file.")
@click.option("--reference", type=PATH, help="WAV file played into the microphone.")
@click.option(
    "--reference-start",
    metavar="SECONDS",
    help="When the reference started (epoch s, or s from the first packet when < 1e9). "
    "Default: session.json's getUserMedia time.",
)
@muted_option(
    "A muted interval (repeatable). Epoch seconds when >= 1e9, "
    "else seconds from the capture's first packet."
)
@click.option(
    "--clock-offset",
    default="0",
    metavar="SECONDS",
    help="Added to timeline, event and flow times to put them on the capture's clock.",
)
@grace_option(
    "Seconds around each mute/unmute judged neither muted nor unmuted.",
    limits=click.FloatRange(0, 60),
    default=GRACE_DEFAULT,
)
@click.option(
    "--local",
    multiple=True,
    metavar="ADDR[:PORT]",
    help="Address (or address:port) of the muted side, when the session does not say. "
    "Without it the side is inferred (SDP, ICE, TURN, interface addresses); when it cannot "
    "be and the verdict depends on it, the verdict is inconclusive and names the --local to pass.",
)
@audio_level_id_option()
@click.option(
    "--ignore",
    multiple=True,
    type=click.Choice(IGNORABLE),
    help="Leave out a part of the session folder (repeatable), e.g. to check a verdict "
    "holds without SDP or keys.",
)
@json_option("Print report.json instead of the summary.")
@click.option(
    "--report",
    "report_path",
    type=PATH,
    help="Where to write report.json (default: in the session folder; a capture file "
    "analysed alone gets none unless this names one: evidence folders stay untouched).",
)
@click.option("--no-report", is_flag=True, help="Do not write report.json.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the self-contained HTML report here.",
)
@click.option(
    "--wireshark",
    "wireshark_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the Wireshark companion (annotated.pcapng, filters, profile, mutecheck.lua).",
)
@click.option(
    "--parquet",
    "parquet_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write this session as the tables of `mutecheck batch` (sessions.parquet, "
    "findings.parquet, streams.parquet; docs/corpus.md) into this folder.",
)
@quiet_option("Print nothing; the exit code is the verdict.")
@colour_option("Colour (default: on a terminal, unless NO_COLOR is set).")
def analyze(
    session: Path | None,
    capture: Path | None,
    events: Path | None,
    flows: Path | None,
    rules: Path | None,
    builtin_rules: bool,
    timeline: Path | None,
    keys: Path | None,
    sdp_files: tuple[Path, ...],
    reference: Path | None,
    reference_start: str | None,
    muted: tuple[str, ...],
    clock_offset: str,
    grace: float,
    local: tuple[str, ...],
    audio_level_id: int | None,
    ignore: tuple[str, ...],
    as_json: bool,
    report_path: Path | None,
    no_report: bool,
    html_path: Path | None,
    wireshark_dir: Path | None,
    parquet_dir: Path | None,
    quiet: bool,
    colour: bool | None,
) -> None:
    """Did anything leave the machine while the microphone was muted?

    SESSION is a session folder (capture.pcapng, events.jsonl, flows.mitm, timeline.json,
    keys.json, offer/answer.sdp, session.json) or a capture file; each part can also be named
    by its flag. Prints the verdict first, then the findings; writes report.json
    (docs/report-schema.md) into the session folder, or where --report says (a capture
    analysed alone gets none: nothing is written beside evidence). Exit code: 0 no leak,
    3 inconclusive, 4 metadata leak, 5 content leak, 2 user error.
    """
    from decoders.report.analysis_json import report_document
    from decoders.report.summary import summary_text

    folder = session if session is not None and session.is_dir() else None
    if session is not None and folder is None:
        if not session.exists():
            fail(at(session, "no such file or folder"))
        capture = capture or session
    if parquet_dir is not None and folder is None and capture is None:
        fail("--parquet needs a session folder or a capture (not only --events or --flows)")
    offset = _seconds(clock_offset, "--clock-offset")
    inputs = Inputs(
        session_dir=folder,
        capture=capture,
        events=events,
        flows=flows,
        timeline=timeline,
        keys=keys,
        sdp=sdp_files,
        reference=reference,
        reference_start=_seconds(reference_start, "--reference-start"),
        muted=muted,
        clock_offset=offset or 0.0,
        grace=grace,
        audio_level_id=audio_level_id,
        local=local,
        ignore=frozenset(ignore),
        rules=rules,
        builtin_rules=builtin_rules,
    )
    size = _capture_size(inputs)
    try:
        with progress_bar(
            size, "reading", enabled=show_progress(size, force=None, quiet=quiet or as_json)
        ) as tick:
            result = run_analysis(dataclasses.replace(inputs, progress=tick))
    except (InputError, CaptureError, MalformedPacket) as error:
        fail(str(error))
    except OSError as error:
        fail(os_reason(error))
    doc = report_document(result)
    written: str | None = None
    target = None if no_report else report_path or _default_report(result.inputs.session_dir)
    if target is not None:
        text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
        try:
            outputs.write_text(target, text)  # whole or not at all: others may be polling it
        except OSError as error:
            fail(at(target, f"cannot write the report ({error.strerror})"))
        written = str(target)
    if parquet_dir is not None:
        _write_parquet(parquet_dir, folder or capture, doc, result)
    from decoders.report.style import Style

    style = Style.for_stream(sys.stdout, force=colour)
    if not quiet:
        if as_json:
            click.echo(json.dumps(doc, indent=2, allow_nan=False))
        else:
            click.echo(summary_text(doc, report_path=written, style=style), color=style.enabled)
    if html_path is not None or wireshark_dir is not None:
        from decoders.cli.report import write_reports

        try:
            out = write_reports(
                result, html=html_path, wireshark=wireshark_dir, progress=False if quiet else None
            )
        except OSError as error:
            fail(os_reason(error))
        if not quiet and not as_json:
            for line in out.lines(style):
                click.echo(line, color=style.enabled)
    sys.exit(result.verdict.exit_code)


def _write_parquet(
    folder: Path, session: Path | None, doc: dict[str, Any], result: Analysis
) -> None:
    """The session as the corpus tables (the writer of ``mutecheck batch``)."""
    from decoders.corpus.tables import write_tables
    from decoders.corpus.task import one_session

    assert session is not None  # checked before the analysis
    try:
        write_tables(folder, one_session(session, doc, result.stream_table))
    except OSError as error:
        fail(os_reason(error, folder))


def _default_report(folder: Path | None) -> Path | None:
    """report.json's place without ``--report``: the session folder (docs/session-format.md);
    nothing for a capture (or files) given alone, whose folder may be someone's evidence."""
    return folder / "report.json" if folder is not None else None


def _capture_size(inputs: Inputs) -> int:
    """Bytes of the capture the analysis will read (0 when unknown), for the progress bar."""
    capture = inputs.capture
    if capture is None and inputs.session_dir is not None:
        from decoders.session.folder import CAPTURE_NAMES

        capture = next(
            (inputs.session_dir / n for n in CAPTURE_NAMES if (inputs.session_dir / n).is_file()),
            None,
        )
    try:
        return capture.stat().st_size if capture is not None else 0
    except OSError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    analyze()
