"""The ``mutecheck`` command line.

User errors (missing files, not a capture, broken SDP) print one line and exit with code 2;
no traceback reaches the user.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, NoReturn

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


class UsageLine(click.ClickException):
    """A click usage error (unknown option, bad value, missing argument) as one line, like
    every other error of mutecheck: ``mutecheck: error: mutecheck analyze: No such option
    '--htm' (see mutecheck analyze --help)``, exit code 2."""

    exit_code = USER_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"mutecheck: error: {self.message}", err=True, file=file)


def one_line(error: click.UsageError) -> UsageLine:
    """``error`` (click's three lines: Usage, Try, Error) as one line naming the command."""
    text = " ".join(error.format_message().split()).rstrip(".")
    context = error.ctx
    if context is None:
        return UsageLine(text)
    path = context.command_path
    helped = bool(context.help_option_names)
    return UsageLine(f"{path}: {text}" + (f" (see {path} --help)" if helped else ""))


class OneLineErrors(click.Group):
    """A group that turns click's usage errors, its own and its sub-commands', into one line
    (:func:`one_line`); asking for nothing (``mutecheck`` alone) still shows the help."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as error:
            raise one_line(error) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as error:
            raise one_line(error) from None


class LazyGroup(OneLineErrors):
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
        "audit": "decoders.live.commands:audit",
        "watch": "decoders.live.commands:watch",
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
    if scan.level.warning:
        click.echo(f"mutecheck: warning: {scan.level.warning}", err=True)
    if scan.damage:
        click.echo(
            f"mutecheck: warning: {scan.damage}; everything before it was analysed", err=True
        )


def _session_sdp(files: SessionFiles, given: tuple[Path, ...]) -> SessionSdp:
    """The session's SDP from --sdp, offer/answer, events.jsonl or flows.mitm (in that order)."""
    from decoders.session.events import UnusableLine, read_events
    from decoders.session.sdpsources import session_sdp

    events: list[Event] = []
    if files.events is not None:
        unusable: list[UnusableLine] = []
        with files.events.open("rb") as fo:
            events = list(read_events(fo, unusable))
        if unusable:  # read for SDP only: say what was left out, carry on
            first = unusable[0]
            click.echo(
                f"mutecheck: warning: {files.events}: {len(unusable)} line(s) could not be used "
                f"(line {first.line} {first.reason})",
                err=True,
            )
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


SIGNALS_NONE = 3
"""``mutecheck signals`` exit code when no field follows the marks (as analyze's inconclusive)."""


@main.command()
@click.argument("session", type=click.Path(path_type=Path))
@click.option(
    "--write-rules",
    "rules_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the fields that follow the marks as a rule file "
    "(for --set mutecheck_rules=F and analyze --rules F).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the ranking as JSON.")
@click.option(
    "--tolerance",
    type=click.FloatRange(0.05, 60),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="How far apart a mark and the app's message may be and still be the same moment.",
)
@click.option(
    "--top",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="How many candidates to list.",
)
def signals(
    session: Path, rules_path: Path | None, as_json: bool, tolerance: float, top: int
) -> None:
    """Learn an app's mute signal from one marked call: the fields of its messages that
    change with your marks, ranked (SESSION: a session folder with flows.mitm and marks).

    Exit code 0 when a field follows the marks, 3 when none does, 2 on a usage error.
    """
    from decoders.audit.messages import read_flow_items
    from decoders.session.learn import learn, replay_rules, rules_for_candidates
    from decoders.session.monitor import Message

    folder = session if session.is_dir() else session.parent
    flows = session if session.is_file() else session / "flows.mitm"
    if not flows.is_file():
        fail(f"{session}: no flows.mitm (record with --set mutecheck_save_flows=all)")
    try:
        with flows.open("rb") as fo:
            items = read_flow_items(fo)
    except ImportError:
        fail("mutecheck signals needs mitmproxy to read flows.mitm")
    except ValueError as exc:
        fail(f"{flows}: {exc}")
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
    messages = [(t, item) for t, item in items if isinstance(item, Message)]
    events = _signals_events(folder / "events.jsonl")
    marks = _marks_from_events(events) or _marks_from_flows(items)
    if not marks:
        fail(
            f"{session}: no mute marks in events.jsonl or flows.mitm "
            "(mark the call: mutecheck mark muted|unmuted, docs/audit-playbook.md)"
        )
    try:
        learned = learn(messages, marks, tolerance=tolerance)
    except ValueError as exc:
        fail(f"{session}: {exc}")
    document = rules_for_candidates(learned.candidates) if rules_path is not None else None
    replay = None
    if document is not None and document["rules"]:
        text = json.dumps(document, indent=2) + "\n"
        assert rules_path is not None
        try:
            from decoders import outputs

            outputs.write_text(rules_path, text)
        except OSError as exc:
            fail(f"{rules_path}: {exc.strerror}")
        replay = replay_rules(messages, text, marks)
    if as_json:
        out = learned.to_json()
        out["candidates"] = out["candidates"][:top]
        out["session"] = str(session)
        if rules_path is not None:
            out["rules_file"] = str(rules_path) if replay is not None else None
            out["rules"] = document
            if replay is not None:
                out["rules_replay"] = {
                    "intervals": [[round(a, 6), round(b, 6)] for a, b in replay.intervals],
                    "marked": [[round(a, 6), round(b, 6)] for a, b in replay.marked],
                    "agreement": round(replay.agreement, 4),
                }
        click.echo(json.dumps(out, indent=2))
    else:
        from decoders.session.learn import describe

        click.echo(describe(learned, session=str(session), top=top, save=_save_option(events)))
        if rules_path is not None:
            if replay is None:
                click.echo("wrote no rule file: no value field follows the marks")
            else:
                assert document is not None
                count = len(document["rules"])
                click.echo(f"wrote {count} rule{'s' if count != 1 else ''} to {rules_path}")
                click.echo(
                    "  this session's messages with the rules and without marks: "
                    + _spans(replay.intervals, learned.start)
                    + f" (marked: {_spans(replay.marked, learned.start)}); "
                    + f"agreement {replay.agreement:.2f}"
                )
    sys.exit(0 if learned.following else SIGNALS_NONE)


def _signals_events(path: Path) -> list[Event]:
    from decoders.session.events import read_events

    if not path.is_file():
        return []
    try:
        with path.open("rb") as fo:
            return list(read_events(fo))
    except MalformedPacket as exc:
        fail(f"{path}: {exc}")


def _marks_from_events(events: list[Event]) -> list[tuple[float, bool]]:
    marks = []
    for event in events:
        if event.get("kind") != "mute" or event.get("source") != "mark":
            continue
        if event.get("state") not in ("muted", "unmuted"):
            continue
        at = event.get("at")
        when = at if isinstance(at, int | float) and not isinstance(at, bool) else event["t"]
        marks.append((float(when), event["state"] == "muted"))
    return marks


def _marks_from_flows(items: list[tuple[float, object]]) -> list[tuple[float, bool]]:
    from decoders.session.mutemark import parse_mark_path

    marks = []
    for t, item in items:
        if isinstance(item, tuple):
            try:
                request = parse_mark_path(item[0])
            except ValueError:
                continue
            if request.muted is not None:
                marks.append((request.at if request.at is not None else t, request.muted))
    return marks


def _save_option(events: list[Event]) -> object:
    for event in events:
        if event.get("kind") == "session_start":
            options = event.get("options")
            if isinstance(options, dict):
                return options.get("mutecheck_save_flows")
    return None


def _spans(intervals: tuple[tuple[float, float], ...], start: float) -> str:
    if not intervals:
        return "never muted"
    return ", ".join(f"muted +{a - start:.2f}..+{b - start:.2f} s" for a, b in intervals)


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
    main(prog_name="mutecheck")  # as the installed command names itself in its messages
