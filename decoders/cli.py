"""The ``mutecheck`` command line.

User errors (missing files, not a capture, broken SDP) print one line and exit with code 2;
no traceback reaches the user.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NoReturn

import click

from decoders import __version__
from decoders.errors import CaptureError, MalformedPacket

if TYPE_CHECKING:
    from decoders.session.events import Event
    from decoders.session.folder import SessionFiles
    from decoders.session.sdpsources import SessionSdp

USER_ERROR = 2
PROGRESS_MIN_BYTES = 64 << 20


def fail(message: str) -> NoReturn:
    click.echo(f"mutecheck: error: {message}", err=True)
    sys.exit(USER_ERROR)


class LazyGroup(click.Group):
    """A group whose sub-commands live with their stage and are imported only when used.

    ``mutecheck streams`` on a big capture is timed against tshark; importing the lab, the
    audit and the decoders for every command would add to each run's start-up.
    """

    LAZY: ClassVar[dict[str, str]] = {
        "lab": "decoders.lab.cli:lab",
        "analyze": "decoders.audit.cli:analyze",
        "decrypt": "decoders.media.cli:decrypt",
        "import-rtpdump": "decoders.media.cli:import_rtpdump",
        "report": "decoders.report.cli:report",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.LAZY.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mutecheck")
def main() -> None:
    """Does the app really stop sending your microphone when you press mute?"""


@main.command()
@click.argument("capture", type=click.Path(path_type=Path))
@click.option(
    "--sdp",
    "sdp_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="SDP file (offer or answer) telling codecs and the audio-level extension id. "
    "Default: offer.sdp/answer.sdp of a session folder.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON (docs/streams-json.md)."
)
@click.option(
    "--engine",
    type=click.Choice(["fast", "scalar", "tshark"]),
    default="fast",
    show_default=True,
    help="fast: numpy bulk decoder; scalar: per-packet reference decoder; "
    "tshark: Wireshark's dissectors (slow; for encapsulations the fast reader does not know).",
)
@click.option(
    "--audio-level-id",
    type=click.IntRange(1, 255),
    default=None,
    help="RFC 6464 audio-level header-extension id, when neither SDP nor inference finds it.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: on a terminal, for large captures).",
)
def streams(
    capture: Path,
    sdp_files: tuple[Path, ...],
    as_json: bool,
    engine: str,
    audio_level_id: int | None,
    progress: bool | None,
) -> None:
    """List the RTP streams of CAPTURE (a pcap/pcapng file or a session folder)."""
    from decoders.media.scan import scan_streams
    from decoders.media.streams import joined_legs, leg_note
    from decoders.report.jsonout import streams_document
    from decoders.report.text import channel_table_text, stream_table_text
    from decoders.session.folder import locate

    try:
        files = locate(capture, sdp=sdp_files)
        found = _session_sdp(files, sdp_files)
        sdp = found.description
        size = files.capture.stat().st_size
        show = (
            progress
            if progress is not None
            else (sys.stderr.isatty() and size >= PROGRESS_MIN_BYTES)
        )
        if show:
            with click.progressbar(length=size, label="reading", file=sys.stderr) as bar:
                done = [0]

                def tick(total: int) -> None:
                    bar.update(total - done[0])
                    done[0] = total

                scan = scan_streams(
                    files.capture,
                    sdp=sdp,
                    audio_level_id=audio_level_id,
                    engine=engine,
                    progress=tick,
                )
        else:
            scan = scan_streams(
                files.capture, sdp=sdp, audio_level_id=audio_level_id, engine=engine
            )
    except (CaptureError, MalformedPacket) as exc:
        fail(f"{capture}: {exc}")
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))

    if as_json:
        doc = streams_document(
            capture=str(files.capture),
            capture_format=scan.capture_format,
            frames=scan.frames,
            datagrams=scan.datagram_counts(),
            counters=scan.counters,
            damage=scan.damage,
            level=scan.level,
            srtp_profile=scan.head.srtp_profile_name,
            streams=scan.streams,
            engine=engine,
            sdp=found.to_json(),
            channels=scan.channels,
        )
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(
            f"{files.capture}: {scan.frames} frames ({scan.capture_format}), engine {engine}"
        )
        kinds = ", ".join(f"{n} {k}" for k, n in scan.datagram_counts().items())
        click.echo(f"datagrams: {kinds or 'none'}")
        click.echo(scan.level.describe())
        click.echo(f"SDP: {found.source}")
        for note in found.skipped:
            click.echo(f"  skipped: {note}")
        if scan.head.srtp_profile_name:
            tag = scan.head.srtp_auth_tag_length
            click.echo(
                f"SRTP profile (DTLS use_srtp): {scan.head.srtp_profile_name}, {tag}-byte auth tag"
            )
        click.echo("")
        click.echo(stream_table_text(scan.streams))
        if scan.channels:
            click.echo("")
            click.echo(channel_table_text(scan.channels))
        joined = [legs for legs in joined_legs(scan.streams) if len(legs) > 1]
        if joined:
            click.echo("")
            click.echo("one stream across its legs (the audit measures each as one):")
            for legs in joined:
                click.echo("  " + leg_note(scan.streams, legs))
        skipped = {k: v for k, v in scan.counters.items() if v}
        if skipped:
            click.echo("")
            click.echo("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    if scan.damage:
        click.echo(
            f"mutecheck: warning: {scan.damage}; everything before it was analysed", err=True
        )


def _session_sdp(files: SessionFiles, given: tuple[Path, ...]) -> SessionSdp:
    """The session's SDP from --sdp, offer/answer, events.jsonl or flows.mitm (in that order)."""
    from decoders.session.events import read_events
    from decoders.session.sdpsources import session_sdp

    events: list[Event] = []
    if files.events is not None:
        with files.events.open("rb") as fo:
            events = list(read_events(fo))
    flows = files.folder / "flows.mitm" if files.folder is not None else None

    def replay() -> list[Event]:
        from decoders.audit.messages import replay_flows

        assert flows is not None
        try:
            with flows.open("rb") as fo:
                return replay_flows(fo)
        except ImportError:  # mitmproxy is optional for reading captures
            return []

    return session_sdp(
        given=given,
        files=() if given else files.sdp,
        events=events,
        flow_events=replay if flows is not None and flows.is_file() else None,
    )


@main.command(
    "mark",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    short_help="Tell the proxy's mutecheck addon that you muted or unmuted.",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def mark(args: tuple[str, ...]) -> None:
    """mutecheck mark muted|unmuted|state [--proxy HOST:PORT] [--note TEXT] [--at EPOCH]

    Sends the mark through the proxy to the addon's mark URL (docs/session-format.md), for
    scripts and for audits without the mitmproxy console. Try `mutecheck mark -h`.
    """
    from decoders.session.mutemark import main as mark_main

    sys.exit(mark_main(list(args)))


if __name__ == "__main__":  # pragma: no cover
    main()
