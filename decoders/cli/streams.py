"""``mutecheck streams``: every RTP stream of a capture, as Wireshark's RTP Streams window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from decoders.cli.common import (
    at,
    audio_level_id_option,
    fail,
    json_option,
    os_reason,
    progress_bar,
    progress_option,
    sdp_option,
    show_progress,
    warn,
)
from decoders.errors import CaptureError, MalformedPacket

if TYPE_CHECKING:
    from decoders.media.scan import StreamScan
    from decoders.session.events import Event
    from decoders.session.folder import SessionFiles
    from decoders.session.sdpsources import SessionSdp


@click.command()
@click.argument("capture", type=click.Path(path_type=Path))
@sdp_option(
    "SDP file (offer or answer) telling codecs and the audio-level extension id. "
    "Default: offer.sdp/answer.sdp of a session folder."
)
@json_option("Print machine-readable JSON (docs/streams-json.md).")
@click.option(
    "--engine",
    type=click.Choice(["fast", "scalar", "tshark"]),
    default="fast",
    show_default=True,
    help="fast: numpy bulk decoder; scalar: per-packet reference decoder; "
    "tshark: Wireshark's dissectors (slow; for encapsulations the fast reader does not know).",
)
@audio_level_id_option()
@progress_option("Progress bar (default: on a terminal, for large captures).")
@click.option(
    "--parquet",
    "parquet_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the streams (joined across their legs, as the audit measures them) as "
    "the streams table of `mutecheck batch` (phase `all`; docs/corpus.md) to this file.",
)
def streams(
    capture: Path,
    sdp_files: tuple[Path, ...],
    as_json: bool,
    engine: str,
    audio_level_id: int | None,
    progress: bool | None,
    parquet_file: Path | None,
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
        with progress_bar(size, "reading", enabled=show_progress(size, force=progress)) as tick:
            scan = scan_streams(
                files.capture, sdp=sdp, audio_level_id=audio_level_id, engine=engine, progress=tick
            )
    except (CaptureError, MalformedPacket) as exc:
        fail(at(capture, exc))
    except OSError as exc:
        fail(os_reason(exc))

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
    if parquet_file is not None:
        _write_parquet(parquet_file, capture, scan)
    if scan.level.warning:
        warn(scan.level.warning)
    if scan.damage:
        warn(f"{scan.damage}; everything before it was analysed")


def _write_parquet(path: Path, capture: Path, scan: StreamScan) -> None:
    """The capture's streams as the corpus's streams table (the writer of ``mutecheck batch``)."""
    from decoders.corpus.sources import session_at
    from decoders.corpus.tables import STREAMS, capture_stream_rows, table, write_table
    from decoders.media.streams import logical_streams

    joined, _ = logical_streams(scan.streams, scan.groups)
    rows = capture_stream_rows(session_at(str(capture)).session_id, joined)
    try:
        write_table(path, table(rows, STREAMS))
    except OSError as error:
        fail(os_reason(error, path))


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
            reason = f"{len(unusable)} line(s) could not be used (line {first.line} {first.reason})"
            warn(at(files.events, reason))
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
