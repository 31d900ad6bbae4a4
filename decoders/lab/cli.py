"""``mutecheck lab``: record real Chromium calls with known mute behaviour as session folders.

``lab record --variant V --out DIR`` records one session; ``lab record-all --out DIR`` records
every variant into ``DIR/chromium-<variant>/`` sharing one ``DIR/reference.wav`` (this is how
``captures/`` is rebuilt). Needs root and the tools listed in ``captures/README.md``. A failed
run prints one line naming the step that failed and exits with code 2; every process and
network namespace it started is gone either way.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from decoders.lab.record import ADDON, DEFAULT_DURATIONS, VARIANTS, LabError, record_session

if TYPE_CHECKING:
    from decoders.lab.summary import SessionSummary

USER_ERROR = 2
REFERENCE_NAME = "reference.wav"


def fail(message: str) -> NoReturn:
    """One line on stderr, exit code 2."""
    click.echo(f"mutecheck lab: error: {' '.join(message.split())}", err=True)
    sys.exit(USER_ERROR)


def parse_durations(text: str) -> tuple[float, float, float]:
    """``"4,6,4"`` -> (4.0, 6.0, 4.0): seconds unmuted, muted, unmuted, each in (0, 60]."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"durations must be numbers, got {text!r}") from None
    if len(values) != 3 or not all(0 < value <= 60 for value in values):
        raise ValueError(f"durations must be three seconds values in (0, 60], got {text!r}")
    return values[0], values[1], values[2]


def _durations_option(
    _context: click.Context, _parameter: click.Parameter, value: str
) -> tuple[float, float, float]:
    try:
        return parse_durations(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def session_folder_name(variant: str) -> str:
    """The corpus's folder for a variant: ``chromium-<variant>``."""
    return f"chromium-{variant}"


def summarize(folder: Path) -> SessionSummary:
    """:func:`decoders.lab.summary.summarize`, imported on first use (it needs pylibsrtp)."""
    from decoders.lab.summary import summarize as measure

    return measure(folder)


def _report(folder: Path, seconds: float, name: Path | None = None) -> None:
    """Print where the session is (`name`, default `folder`) and what it shows."""
    from decoders.lab.summary import summary_line

    click.echo(f"recorded {name or folder} in {seconds:.1f} s")
    try:
        click.echo("  " + summary_line(summarize(folder)))
    except Exception as exc:  # the recording stands; only the summary failed
        click.echo(f"  (no summary: {type(exc).__name__}: {exc})")


DURATIONS_HELP = "Seconds unmuted, muted, unmuted."
DEFAULT_DURATIONS_TEXT = ",".join(f"{d:g}" for d in DEFAULT_DURATIONS)


@click.group("lab")
def lab() -> None:
    """Record real Chromium calls with known mute behaviour (needs root; captures/README.md)."""


@lab.command("record")
@click.option("--variant", type=click.Choice(VARIANTS), required=True, help="How the page mutes.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Session folder to create (must be empty or absent).",
)
@click.option(
    "--durations",
    default=DEFAULT_DURATIONS_TEXT,
    show_default=True,
    callback=_durations_option,
    help=DURATIONS_HELP,
)
@click.option(
    "--shared-reference",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Reference WAV shared with other sessions (written if absent, used if identical); "
    "default: the session folder's own reference.wav.",
)
@click.option(
    "--addon/--no-addon",
    default=True,
    show_default=True,
    help="Run addons/mutecheck.py on the signaling (writes events.jsonl).",
)
@click.option(
    "--rtpdump",
    is_flag=True,
    help="Also keep Chromium's plaintext RTP dump (chromium-stderr.log; see "
    "`mutecheck import-rtpdump`).",
)
def record(
    variant: str,
    out: Path,
    durations: tuple[float, float, float],
    shared_reference: Path | None,
    addon: bool,
    rtpdump: bool,
) -> None:
    """Record one session of VARIANT into OUT."""
    if addon and not ADDON.is_file():
        click.echo(f"note: {ADDON} not found: the proxy runs without it (no events.jsonl)")
    started = time.monotonic()
    try:
        folder = record_session(
            variant,
            out,
            durations,
            shared_reference=shared_reference,
            addon=ADDON if addon else None,
            rtpdump=rtpdump,
        )
    except LabError as exc:
        fail(str(exc))
    _report(folder, time.monotonic() - started)


@lab.command("record-all")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Corpus folder: gets chromium-<variant>/ per variant and one shared reference.wav.",
)
@click.option(
    "--durations",
    default=DEFAULT_DURATIONS_TEXT,
    show_default=True,
    callback=_durations_option,
    help=DURATIONS_HELP,
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace session folders that already exist (only after every variant recorded).",
)
def record_all(out: Path, durations: tuple[float, float, float], replace: bool) -> None:
    """Record every variant into OUT/chromium-<variant>/.

    All or nothing: sessions are recorded into a staging folder inside OUT and moved into place
    only when every variant succeeded, so a failed run leaves OUT as it was.
    """
    out = out.resolve()
    existing = [session_folder_name(v) for v in VARIANTS if (out / session_folder_name(v)).exists()]
    if existing and not replace:
        fail(f"{out} already has {', '.join(existing)} (use --replace to re-record)")
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".lab-staging-{os.getpid()}"
    staging.mkdir()
    total = time.monotonic()
    try:
        for variant in VARIANTS:
            started = time.monotonic()
            folder = staging / session_folder_name(variant)
            try:
                record_session(
                    variant, folder, durations, shared_reference=staging / REFERENCE_NAME
                )
            except LabError as exc:
                fail(f"{session_folder_name(variant)}: {exc}")
            _report(folder, time.monotonic() - started, out / session_folder_name(variant))
        for variant in VARIANTS:
            target = out / session_folder_name(variant)
            if target.exists():
                shutil.rmtree(target)
            (staging / session_folder_name(variant)).rename(target)
        if (staging / REFERENCE_NAME).exists():
            (staging / REFERENCE_NAME).replace(out / REFERENCE_NAME)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    click.echo(f"recorded {len(VARIANTS)} sessions into {out} in {time.monotonic() - total:.1f} s")


@lab.command("summary")
@click.argument(
    "folders", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON.")
def summary(folders: tuple[Path, ...], as_json: bool) -> None:
    """Measure recorded lab sessions: what the browser sent unmuted and muted (a table)."""
    measured = []
    for folder in folders:
        try:
            measured.append(summarize(folder))
        except (OSError, ValueError, KeyError) as exc:
            fail(f"{folder}: not a lab session folder: {type(exc).__name__}: {exc}")
    if as_json:
        click.echo(json.dumps([m.as_dict() for m in measured], indent=2))
    else:
        click.echo(summary_table(measured))


def summary_table(summaries: list[SessionSummary]) -> str:
    """A Markdown table of what each session sent while muted, against unmuted."""

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    lines = [
        "| variant | RTP packets/s muted (unmuted) | payload bytes muted: min-max, median "
        "(unmuted median) | audio level median muted (unmuted) | distinct payloads muted | "
        "SRTCP / STUN packets muted | telemetry messages muted |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        muted, unmuted = s.muted, s.unmuted
        sizes = (
            f"{min(muted.payload_bytes)}-{max(muted.payload_bytes)}, {number(muted.payload_median)}"
            if muted.payload_bytes
            else "-"
        )
        lines.append(
            f"| `{s.variant}` | {muted.packets_per_second:.1f} ({unmuted.packets_per_second:.1f})"
            f" | {sizes} ({number(unmuted.payload_median)}) | {number(muted.level_median)} "
            f"({number(unmuted.level_median)}) | {muted.distinct_payloads} of "
            f"{muted.rtp_packets} | {muted.rtcp_packets} / {muted.stun_packets} | "
            f"{muted.telemetry_messages} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    lab()
