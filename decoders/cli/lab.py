"""``mutecheck lab``: record real Chromium calls with known mute behaviour as session folders.

``--browser firefox`` records the same page and variants with Firefox ESR
(``firefox-<variant>``; ``--answerer firefox``: a second Firefox answers, DTLS 1.3,
``firefox-<variant>-to-firefox``).

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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

import click

from decoders.cli import common
from decoders.lab.record import (
    ADDON,
    ANSWERERS,
    BROWSERS,
    DEFAULT_DURATIONS,
    DEFAULT_GAIN_PERIOD_S,
    DURATIONS_RULE,
    GAIN_VARIANTS,
    PAGE_VARIANTS,
    PEER_REFERENCE_NAME,
    VARIANTS,
    VIDEO_VARIANTS,
    LabError,
    durations_allowed,
    record_session,
    session_name,
)
from decoders.lab.turn import RELAYS

JANUS_APPS = (
    "janus-audiobridge",
    "janus-videoroom",
    "janus-videoroom-streams",
    "janus-echotest",
    "janus-videocall",
)
"""The Janus demos the lab records (:mod:`decoders.lab.janus`, imported when used)."""
JANUS_TRANSPORTS = ("rest", "ws")
JANUS_DURATIONS_TEXT = "3,4,3"
JANUS_REFERENCE_NAME = "janus-reference.wav"
JANUS_PEER_REFERENCE_NAME = "janus-peer-reference.wav"

if TYPE_CHECKING:
    from collections.abc import Callable

    from decoders.cli.common import F
    from decoders.lab.summary import SessionSummary

REFERENCE_NAME = "reference.wav"
COMMAND: Final = "mutecheck lab"


def fail(message: str) -> NoReturn:
    """:func:`decoders.cli.common.fail` as ``mutecheck lab: error: ...``, on one line even when
    the message quotes a child's output over several (a failed step's stderr)."""
    common.fail(" ".join(message.split()), command=COMMAND)


def parse_durations(text: str) -> tuple[float, float, float]:
    """``"4,6,4"`` -> (4.0, 6.0, 4.0): seconds unmuted, muted, unmuted (:data:`DURATIONS_RULE`)."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"durations must be numbers, got {text!r}") from None
    if not durations_allowed(values):
        raise ValueError(f"durations must be {DURATIONS_RULE}, got {text!r}")
    return values[0], values[1], values[2]


def _durations_option(
    _context: click.Context, _parameter: click.Parameter, value: str | None
) -> tuple[float, float, float] | None:
    if value is None:
        return None
    try:
        return parse_durations(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Recording:
    """One session of a record-all plan."""

    variant: str
    relay: str = "none"
    peer_talks: bool = False
    video: bool = False
    browser: str = "chromium"
    answerer: str = "aiortc"

    @property
    def rtpdump(self) -> bool:
        """Relayed over TCP/TLS the capture cannot be decrypted: keep Chromium's own dump."""
        return self.relay in ("tcp", "tls")

    @property
    def name(self) -> str:
        return session_name(
            self.variant,
            self.relay,
            peer_talks=self.peer_talks,
            video=self.video,
            browser=self.browser,
            answerer=self.answerer,
        )


def corpus_plan(
    *,
    relays: bool,
    peer_talks: bool,
    video: bool,
    browser: str = "chromium",
    answerer: str = "aiortc",
) -> list[Recording]:
    """What ``record-all`` records: every variant, or the extra call shapes asked for.

    The extra shapes (relay over UDP, TCP and TLS; the peer talking back; video) are each
    recorded with a silent mute and a leaking one (:data:`VIDEO_VARIANTS`), with Chromium.
    ``browser`` ``firefox`` records every variant with Firefox (``firefox-<variant>``), and
    with ``answerer`` ``firefox`` (a second Firefox answers: DTLS 1.3) a silent and a leaking
    mute (``firefox-<variant>-to-firefox``).
    """
    if answerer != "aiortc":
        if browser != "firefox" or relays or peer_talks or video:
            raise ValueError("--answerer firefox records the base page with --browser firefox")
        return [Recording(v, browser=browser, answerer=answerer) for v in VIDEO_VARIANTS]
    if browser != "chromium":
        if relays or peer_talks or video:
            raise ValueError(
                "--browser firefox records the base variants: --relays, --peer-talks and "
                "--video are recorded with Chromium only"
            )
        return [Recording(variant, browser=browser) for variant in VARIANTS]
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
    if not (folder / "keys.json").is_file() and (folder / "peer-keylog.txt").is_file():
        # a browser answered: no exported keys to measure with, the ground truth says it
        _print_expected(folder)
        return
    try:
        click.echo("  " + summary_line(summarize(folder)))
    except Exception as exc:  # the recording stands; only the summary failed
        click.echo(f"  (no summary: {type(exc).__name__}: {exc})")


DURATIONS_HELP = "Seconds unmuted, muted, unmuted."
DEFAULT_DURATIONS_TEXT = ",".join(f"{d:g}" for d in DEFAULT_DURATIONS)


def durations_option(janus_flag: str) -> Callable[[F], F]:
    """``--durations`` of ``record`` and ``record-all``; ``janus_flag`` names the flag that
    records the Janus demos, whose default durations differ."""
    return click.option(
        "--durations",
        default=None,
        callback=_durations_option,
        help=f"{DURATIONS_HELP} [default: {DEFAULT_DURATIONS_TEXT}; "
        f"{janus_flag} {JANUS_DURATIONS_TEXT}]",
    )


def browser_option() -> Callable[[F], F]:
    """``--browser`` of ``record`` and ``record-all``."""
    return click.option(
        "--browser",
        type=click.Choice(BROWSERS),
        default="chromium",
        show_default=True,
        help="The browser that runs the lab page (firefox: Firefox ESR headless, its microphone "
        "a PulseAudio null sink, SSLKEYLOGFILE into the session as keylog.txt).",
    )


def answerer_option() -> Callable[[F], F]:
    """``--answerer`` of ``record`` and ``record-all``."""
    return click.option(
        "--answerer",
        type=click.Choice(ANSWERERS),
        default="aiortc",
        show_default=True,
        help="Who answers the call: the aiortc peer (exports the SRTP keys: keys.json), or, "
        "with --browser firefox, a second headless Firefox (DTLS 1.3; its own key log is "
        "peer-keylog.txt, no keys.json).",
    )


@click.group("lab")
def lab() -> None:
    """Record real Chromium (or Firefox) calls with known mute behaviour (needs root;
    captures/README.md)."""


@lab.command("record")
@click.option(
    "--variant", type=click.Choice(PAGE_VARIANTS), default=None, help="How the page mutes."
)
@click.option(
    "--app",
    type=click.Choice(JANUS_APPS),
    default=None,
    help="Record a Janus demo instead of the lab page (its own mute control, clicked).",
)
@click.option(
    "--transport",
    type=click.Choice(JANUS_TRANSPORTS),
    default="rest",
    show_default=True,
    help="--app: the Janus API transport (REST: HTTPS + long poll; ws: WSS).",
)
@click.option(
    "--peer",
    is_flag=True,
    help="--app: a second participant joins from the server side with its own speech "
    "(always for janus-videocall).",
)
@click.option("--dtx", is_flag=True, help="--app janus-videoroom: the demo's Opus DTX option.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Session folder to create (must be empty or absent).",
)
@durations_option("--app")
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
@browser_option()
@answerer_option()
@click.option(
    "--audio-processing",
    is_flag=True,
    help="The page leaves the browser's echo cancellation, noise suppression and gain control "
    "on (default: off, so the wire follows the reference signal).",
)
@click.option(
    "--gain-period",
    type=click.FloatRange(0.1, 3600),
    default=None,
    help="--variant telemetry-gains: seconds between readings (max/mean/min of the level) "
    f"[default: {DEFAULT_GAIN_PERIOD_S:g}, as in the PETS 2022 study].",
)
def record(
    variant: str | None,
    app: str | None,
    transport: str,
    peer: bool,
    dtx: bool,
    out: Path,
    durations: tuple[float, float, float] | None,
    shared_reference: Path | None,
    addon: bool,
    rtpdump: bool,
    relay: str,
    peer_talks: bool,
    video: bool,
    browser: str,
    answerer: str,
    audio_processing: bool,
    gain_period: float | None,
) -> None:
    """Record one session (the lab page's --variant, or a Janus demo's --app) into OUT."""
    if (variant is None) == (app is None):
        fail("give exactly one of --variant and --app")
    if browser != "chromium" and (app is not None or relay != "none" or peer_talks or video):
        fail(
            "--browser firefox records the lab page's --variant only (no --app, --relay, "
            "--peer-talks, --video)"
        )
    if app is not None:
        if relay != "none" or peer_talks or video:
            fail("--relay, --peer-talks and --video are for --variant (the lab page)")
        _record_app(app, out, transport, peer, dtx, durations, shared_reference, addon)
        return
    if transport != "rest" or peer or dtx:
        fail("--transport, --peer and --dtx are for --app (a Janus demo)")
    assert variant is not None
    if gain_period is not None and variant not in GAIN_VARIANTS:
        fail(f"--gain-period is for --variant {', '.join(GAIN_VARIANTS)}")
    durations = durations or DEFAULT_DURATIONS
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
            browser=browser,
            audio_processing=audio_processing,
            answerer=answerer,
            gain_period=gain_period or DEFAULT_GAIN_PERIOD_S,
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
@durations_option("--apps")
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
@click.option(
    "--apps",
    is_flag=True,
    help="Record the Janus demos instead (janus-<demo>/, VideoRoom also with Opus DTX; "
    "sharing OUT/janus-reference.wav and OUT/janus-peer-reference.wav).",
)
@browser_option()
@answerer_option()
def record_all(
    out: Path,
    durations: tuple[float, float, float] | None,
    replace: bool,
    relays: bool,
    peer_talks: bool,
    video: bool,
    apps: bool,
    browser: str,
    answerer: str,
) -> None:
    """Record every variant into OUT/chromium-<variant>/ (or the extra call shapes asked for).

    All or nothing: sessions are recorded into a staging folder inside OUT and moved into place
    only when every session succeeded, so a failed run leaves OUT as it was.
    """
    out = out.resolve()
    if apps:
        if browser != "chromium":
            fail("--apps records the Janus demos with Chromium, not --browser firefox")
        if relays or peer_talks or video:
            fail("--apps records the Janus demos; record --relays/--peer-talks/--video apart")
        _record_all_apps(out, durations, replace)
        return
    durations = durations or DEFAULT_DURATIONS
    try:
        plan = corpus_plan(
            relays=relays, peer_talks=peer_talks, video=video, browser=browser, answerer=answerer
        )
    except ValueError as exc:
        fail(str(exc))
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
                    browser=recording.browser,
                    answerer=recording.answerer,
                )
            except LabError as exc:
                fail(common.at(recording.name, exc))
            _report(folder, time.monotonic() - started, out / recording.name)
        _move_into_place(
            staging, out, [r.name for r in plan], (REFERENCE_NAME, PEER_REFERENCE_NAME)
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    click.echo(f"recorded {len(plan)} sessions into {out} in {time.monotonic() - total:.1f} s")


@dataclass(frozen=True, slots=True)
class AppRecording:
    """One Janus session of ``record-all --apps``."""

    app: str
    transport: str = "rest"
    peer: bool = False
    dtx: bool = False

    @property
    def name(self) -> str:
        from decoders.lab.janus import session_name

        return session_name(self.app, self.transport, dtx=self.dtx)


def apps_plan() -> list[AppRecording]:
    """Every demo; AudioBridge and VideoRoom with someone else talking in the room, VideoRoom
    also with the demo's Opus DTX option and with its Mute button rewired to Janus 1.x's
    server-side ``streams`` form, and EchoTest over WebSocket as well as REST."""
    return [
        AppRecording("janus-audiobridge", peer=True),
        AppRecording("janus-videoroom", peer=True),
        AppRecording("janus-videoroom", peer=True, dtx=True),
        AppRecording("janus-videoroom-streams", peer=True),
        AppRecording("janus-echotest"),
        AppRecording("janus-echotest", transport="ws"),
        AppRecording("janus-videocall", peer=True),
    ]


def _janus_durations(durations: tuple[float, float, float] | None) -> tuple[float, float, float]:
    return durations or parse_durations(JANUS_DURATIONS_TEXT)


def _record_app(
    app: str,
    out: Path,
    transport: str,
    peer: bool,
    dtx: bool,
    durations: tuple[float, float, float] | None,
    shared_reference: Path | None,
    addon: bool,
) -> None:
    from decoders.lab.janus import record_janus

    started = time.monotonic()
    try:
        folder = record_janus(
            app,
            out,
            transport=transport,
            peer=peer,
            dtx=dtx,
            durations=_janus_durations(durations),
            addon=ADDON if addon else None,
            shared_reference=shared_reference,
        )
    except LabError as exc:
        fail(str(exc))
    _report_app(folder, time.monotonic() - started)


def _report_app(folder: Path, seconds: float, name: Path | None = None) -> None:
    """Where the session is and its ground truth (expected.json)."""
    click.echo(f"recorded {name or folder} in {seconds:.1f} s")
    _print_expected(folder)


def _print_expected(folder: Path) -> None:
    """The session's ground truth in one line (expected.json)."""
    try:
        expected = json.loads((folder / "expected.json").read_text())
        click.echo(f"  expected: {expected['verdict']} ({'; '.join(expected['notes'])})")
    except (OSError, ValueError, KeyError) as exc:
        click.echo(f"  (no expected.json: {type(exc).__name__}: {exc})")


def _record_all_apps(
    out: Path, durations: tuple[float, float, float] | None, replace: bool
) -> None:
    """``record-all --apps``: all or nothing, through a staging folder like the variants."""
    from decoders.lab.janus import record_janus

    plan = apps_plan()
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
            try:
                record_janus(
                    recording.app,
                    folder,
                    transport=recording.transport,
                    peer=recording.peer,
                    dtx=recording.dtx,
                    durations=_janus_durations(durations),
                    shared_reference=staging / JANUS_REFERENCE_NAME,
                    shared_peer_reference=staging / JANUS_PEER_REFERENCE_NAME,
                )
            except LabError as exc:
                fail(common.at(recording.name, exc))
            _report_app(folder, time.monotonic() - started, out / recording.name)
        _move_into_place(
            staging, out, [r.name for r in plan], (JANUS_REFERENCE_NAME, JANUS_PEER_REFERENCE_NAME)
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    click.echo(f"recorded {len(plan)} sessions into {out} in {time.monotonic() - total:.1f} s")


@lab.command("summary")
@click.argument(
    "folders", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path)
)
@common.json_option("Print the measurements as JSON.")
def summary(folders: tuple[Path, ...], as_json: bool) -> None:
    """Measure recorded lab sessions: what the browser sent unmuted and muted (a table)."""
    from decoders.lab.summary import NoPeerKeys

    measured = []
    for folder in folders:
        try:
            measured.append(summarize(folder))
        except NoPeerKeys as exc:
            fail(common.at(folder, str(exc)))
        except (OSError, ValueError, KeyError) as exc:
            fail(common.at(folder, f"not a lab session folder: {type(exc).__name__}: {exc}"))
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


def _move_into_place(
    staging: Path, out: Path, sessions: list[str], shared: tuple[str, ...]
) -> None:
    """Every session recorded in ``staging`` replaces its namesake in ``out`` (all of them were
    recorded before any moves), then the shared reference signals."""
    for name in sessions:
        target = out / name
        if target.exists():
            shutil.rmtree(target)
        (staging / name).rename(target)
    for name in shared:
        if (staging / name).exists():
            (staging / name).replace(out / name)
