"""``mutecheck lab``: record real Chromium calls with known mute behaviour as session folders.

``lab record --variant V --out DIR`` records one session (``--relay udp|tcp|tls`` through the
lab's coturn, ``--peer-talks`` with the peer speaking back, ``--video`` with the camera too);
``lab record-all --out DIR`` records every variant into ``DIR/chromium-<variant>/`` sharing one
``DIR/reference.wav`` (this is how ``captures/`` is rebuilt), and with ``--relays``,
``--peer-talks`` or ``--video`` the corresponding extra sessions
(``chromium-<variant>-relay-<transport>``, ``-peer-talks``, ``-video``). Needs root and the
tools listed in ``captures/README.md``. A failed
run prints one line naming the step that failed and exits with code 2; every process and
network namespace it started is gone either way.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from decoders.lab.record import (
    ADDON,
    DEFAULT_DURATIONS,
    PEER_REFERENCE_NAME,
    VARIANTS,
    VIDEO_VARIANTS,
    LabError,
    record_session,
    session_name,
)
from decoders.lab.turn import RELAYS

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


def session_folder_name(
    variant: str, relay: str = "none", *, peer_talks: bool = False, video: bool = False
) -> str:
    """The corpus's folder for a recording: ``chromium-<variant>`` plus its call shape."""
    return session_name(variant, relay, peer_talks=peer_talks, video=video)


@dataclass(frozen=True, slots=True)
class Recording:
    """One session of a record-all plan."""

    variant: str
    relay: str = "none"
    peer_talks: bool = False
    video: bool = False

    @property
    def rtpdump(self) -> bool:
        """Relayed over TCP/TLS the capture cannot be decrypted: keep Chromium's own dump."""
        return self.relay in ("tcp", "tls")

    @property
    def name(self) -> str:
        return session_folder_name(
            self.variant, self.relay, peer_talks=self.peer_talks, video=self.video
        )


def corpus_plan(*, relays: bool, peer_talks: bool, video: bool) -> list[Recording]:
    """What ``record-all`` records: every variant, or the extra call shapes asked for.

    The extra shapes (relay over UDP, TCP and TLS; the peer talking back; video) are each
    recorded with a silent mute and a leaking one (:data:`VIDEO_VARIANTS`).
    """
    if not (relays or peer_talks or video):
        return [Recording(variant) for variant in VARIANTS]
    plan: list[Recording] = []
    if relays:
        plan += [Recording(v, relay) for relay in RELAYS if relay != "none" for v in VIDEO_VARIANTS]
    if peer_talks:
        plan += [Recording(v, peer_talks=True) for v in VIDEO_VARIANTS]
    if video:
        plan += [Recording(v, video=True) for v in VIDEO_VARIANTS]
    return plan


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
@click.option(
    "--relay",
    type=click.Choice(RELAYS),
    default="none",
    show_default=True,
    help="Relay the media through the lab's coturn over UDP, TCP or TLS "
    "(iceTransportPolicy relay; TCP and TLS go through the proxy with CONNECT).",
)
@click.option(
    "--peer-talks",
    is_flag=True,
    help="The peer sends its own speech (peer-reference.wav) back for the whole call.",
)
@click.option("--video", is_flag=True, help="The page also sends the fake camera (VP8 + RTX).")
def record(
    variant: str,
    out: Path,
    durations: tuple[float, float, float],
    shared_reference: Path | None,
    addon: bool,
    rtpdump: bool,
    relay: str,
    peer_talks: bool,
    video: bool,
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
            relay=relay,
            peer_talks=peer_talks,
            video=video,
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
@click.option(
    "--relays",
    is_flag=True,
    help="Record the relay corpus instead: track-disabled and ui-only relayed over UDP, TCP "
    "and TLS (chromium-<variant>-relay-<transport>/).",
)
@click.option(
    "--peer-talks",
    is_flag=True,
    help="Record track-disabled and ui-only with the peer talking back "
    "(chromium-<variant>-peer-talks/; shares OUT/peer-reference.wav).",
)
@click.option(
    "--video",
    is_flag=True,
    help="Record track-disabled and ui-only with video (chromium-<variant>-video/).",
)
def record_all(
    out: Path,
    durations: tuple[float, float, float],
    replace: bool,
    relays: bool,
    peer_talks: bool,
    video: bool,
) -> None:
    """Record every variant into OUT/chromium-<variant>/ (or the extra call shapes asked for).

    All or nothing: sessions are recorded into a staging folder inside OUT and moved into place
    only when every session succeeded, so a failed run leaves OUT as it was.
    """
    out = out.resolve()
    plan = corpus_plan(relays=relays, peer_talks=peer_talks, video=video)
    existing = [r.name for r in plan if (out / r.name).exists()]
    if existing and not replace:
        fail(f"{out} already has {', '.join(existing)} (use --replace to re-record)")
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".lab-staging-{os.getpid()}"
    staging.mkdir()
    total = time.monotonic()
    try:
        for recording in plan:
            started = time.monotonic()
            folder = staging / recording.name
            peer_reference = staging / PEER_REFERENCE_NAME if recording.peer_talks else None
            try:
                record_session(
                    recording.variant,
                    folder,
                    durations,
                    shared_reference=staging / REFERENCE_NAME,
                    relay=recording.relay,
                    peer_talks=recording.peer_talks,
                    video=recording.video,
                    shared_peer_reference=peer_reference,
                    rtpdump=recording.rtpdump,
                )
            except LabError as exc:
                fail(f"{recording.name}: {exc}")
            _report(folder, time.monotonic() - started, out / recording.name)
        for recording in plan:
            target = out / recording.name
            if target.exists():
                shutil.rmtree(target)
            (staging / recording.name).rename(target)
        for name in (REFERENCE_NAME, PEER_REFERENCE_NAME):
            if (staging / name).exists():
                (staging / name).replace(out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    click.echo(f"recorded {len(plan)} sessions into {out} in {time.monotonic() - total:.1f} s")


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
        shape = f" {s.shape}" if s.shape else ""
        lines.append(
            f"| `{s.variant}`{shape} | {muted.packets_per_second:.1f} "
            f"({unmuted.packets_per_second:.1f})"
            f" | {sizes} ({number(unmuted.payload_median)}) | {number(muted.level_median)} "
            f"({number(unmuted.level_median)}) | {muted.distinct_payloads} of "
            f"{muted.rtp_packets} | {muted.rtcp_packets} / {muted.stun_packets} | "
            f"{muted.telemetry_messages} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    lab()
