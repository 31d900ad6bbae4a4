"""``mutecheck signals``: learn an app's own mute signal from one marked call.

The fields of the app's messages (flows.mitm) that change with the user's marks, ranked, and
written as a rule file for later calls without marks (``--write-rules``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from decoders.cli.common import Exit, at, fail, json_option, os_reason
from decoders.errors import MalformedPacket

if TYPE_CHECKING:
    from decoders.session.events import Event


@click.command()
@click.argument("session", type=click.Path(path_type=Path))
@click.option(
    "--write-rules",
    "rules_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the fields that follow the marks as a rule file "
    "(for --set mutecheck_rules=F and analyze --rules F).",
)
@json_option("Print the ranking as JSON.")
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
        fail(at(session, "no flows.mitm (record with --set mutecheck_save_flows=all)"))
    try:
        with flows.open("rb") as fo:
            items = read_flow_items(fo)
    except ImportError:
        fail("mutecheck signals needs mitmproxy to read flows.mitm")
    except ValueError as exc:
        fail(at(flows, exc))
    except OSError as exc:
        fail(os_reason(exc))
    messages = [(t, item) for t, item in items if isinstance(item, Message)]
    events = _signals_events(folder / "events.jsonl")
    marks = _marks_from_events(events) or _marks_from_flows(items)
    if not marks:
        fail(
            at(
                session,
                "no mute marks in events.jsonl or flows.mitm "
                "(mark the call: mutecheck mark muted|unmuted, docs/audit-playbook.md)",
            )
        )
    try:
        learned = learn(messages, marks, tolerance=tolerance)
    except ValueError as exc:
        fail(at(session, exc))
    document = rules_for_candidates(learned.candidates) if rules_path is not None else None
    replay = None
    if document is not None and document["rules"]:
        text = json.dumps(document, indent=2) + "\n"
        assert rules_path is not None
        try:
            from decoders import outputs

            outputs.write_text(rules_path, text)
        except OSError as exc:
            fail(at(rules_path, exc.strerror))
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
    sys.exit(Exit.OK if learned.following else Exit.INCONCLUSIVE)


def _signals_events(path: Path) -> list[Event]:
    from decoders.session.events import read_events

    if not path.is_file():
        return []
    try:
        with path.open("rb") as fo:
            return list(read_events(fo))
    except MalformedPacket as exc:
        fail(at(path, exc))


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
