"""What every command shares: exit codes, the one error line, the progress bar, shared options.

A user error (a missing file, not a capture, a bad option) is one line on stderr,
``mutecheck: error: ...``, and exit code 2 (:func:`fail`, :class:`UsageLine`); an error about a
file names it first, ``path: reason`` (:func:`at`, :func:`os_reason`). Click's own usage errors
(three lines: Usage, Try, Error) become that one line too (:class:`OneLineErrors`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import IO, Any, Final, NoReturn, TextIO, TypeVar

import click

PROG: Final = "mutecheck"


class Exit(IntEnum):
    """mutecheck's exit codes, one table for every command.

    ``analyze`` exits with its verdict's code (:data:`decoders.audit.verdict.EXIT_CODES`, which
    these names mirror: a test holds them equal); ``signals`` exits 0 when a field follows the
    marks and 3 (cannot tell) when none does.
    """

    OK = 0
    """Success."""
    NO_LEAK = 0
    """``analyze``: nothing left while muted."""
    CRASH = 1
    """A bug: Python's own code for an exception nobody caught."""
    USER_ERROR = 2
    """Bad input or usage: one line on stderr said what."""
    INCONCLUSIVE = 3
    """Cannot tell: ``analyze`` could judge nothing, ``signals`` found no field."""
    METADATA_LEAK = 4
    CONTENT_LEAK = 5


# -- errors ---------------------------------------------------------------------------------------


def error_line(message: str, command: str = PROG) -> str:
    """``COMMAND: error: MESSAGE``, the shape of every user error on stderr."""
    return f"{command}: error: {message}"


def fail(message: str, *, command: str = PROG) -> NoReturn:
    """A user error: one line on stderr (:func:`error_line`), exit code 2."""
    click.echo(error_line(message, command), err=True)
    sys.exit(Exit.USER_ERROR)


def warning_line(message: str) -> str:
    """``mutecheck: warning: MESSAGE``: something the user should know; the command goes on."""
    return f"{PROG}: warning: {message}"


def warn(message: str) -> None:
    """:func:`warning_line` on stderr."""
    click.echo(warning_line(message), err=True)


def at(path: object, reason: object) -> str:
    """``path: reason``: an error about a file names the file first."""
    return f"{path}: {reason}"


def os_reason(error: OSError, path: object = None) -> str:
    """An OSError as ``path: reason`` (the file it names, else ``path``), or its text alone."""
    where = error.filename or path
    return at(where, error.strerror) if where else str(error)


PRIVACY_WARNING: Final = (
    "{what} holds decrypted media: whatever the microphone picked up "
    "(voices, conversations). Keep it private, share it only with consent, delete it when done."
)


def privacy_warning(what: str) -> None:
    """Say on stderr that the file or folder ``what`` holds what the microphone picked up."""
    warn(PRIVACY_WARNING.format(what=what))


class UsageLine(click.ClickException):
    """A click usage error (unknown option, bad value, missing argument) as one line, like
    every other error of mutecheck: ``mutecheck: error: mutecheck analyze: No such option
    '--htm' (see mutecheck analyze --help)``, exit code 2."""

    exit_code = Exit.USER_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(error_line(self.message), err=True, file=file)


def one_line(error: click.UsageError) -> UsageLine:
    """``error`` (click's three lines: Usage, Try, Error) as one line naming the command."""
    text = " ".join(error.format_message().split()).rstrip(".")
    context = error.ctx
    if context is None:
        return UsageLine(text)
    path = context.command_path
    helped = bool(context.help_option_names)
    return UsageLine(at(path, text) + (f" (see {path} --help)" if helped else ""))


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


# -- progress -------------------------------------------------------------------------------------

PROGRESS_MIN_BYTES: Final = 64 << 20
"""Inputs from this size get a progress bar on a terminal (unless asked otherwise).

One threshold for every bar (``streams`` and ``analyze`` reading a capture, ``report`` and
``analyze --wireshark`` annotating one): the two bars before it both used 64 MiB, and it
stays. ``mutecheck streams`` reads the first 64 MiB of ``make bench``'s capture (~80,000
packets) in about 2 s on a shared 2-core machine: below that a bar would only flash by; above
it the user waits long enough to want to see that work goes on.
"""


def show_progress(total_bytes: int, *, force: bool | None = None, quiet: bool = False) -> bool:
    """A progress bar (on stderr) for work over ``total_bytes``: on a terminal, big inputs only."""
    if quiet:
        return False
    if force is not None:
        return force
    return total_bytes >= PROGRESS_MIN_BYTES and _isatty(sys.stderr)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:
        return False


@contextmanager
def progress_bar(total_bytes: int, label: str, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yields ``tick(done_bytes)`` (cumulative) that moves a bar on stderr, or does nothing."""
    if not enabled:
        yield lambda _done: None
        return
    with click.progressbar(length=total_bytes, label=label, file=sys.stderr) as bar:
        seen = [0]

        def tick(done: int) -> None:
            bar.update(max(0, done - seen[0]))
            seen[0] = max(seen[0], done)

        yield tick


# -- options more than one command takes ---------------------------------------------------------
# Each declares the option's name, destination, type and metavar once; the help text is the
# command's own where the option means something a little different there (``--json`` prints
# each command's own document).

F = TypeVar("F", bound=Callable[..., Any])
PATH: Final = click.Path(path_type=Path)


def json_option(help: str) -> Callable[[F], F]:
    """``--json`` (``as_json``): print the command's result as JSON instead of text."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def sdp_option(help: str, *, dir_okay: bool = True) -> Callable[[F], F]:
    """``--sdp F`` (``sdp_files``, repeatable): the session's offer/answer SDP."""
    return click.option(
        "--sdp",
        "sdp_files",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=dir_okay),
        help=help,
    )


def muted_option(help: str) -> Callable[[F], F]:
    """``--muted START-END`` (repeatable): a mute interval given by hand."""
    return click.option("--muted", "muted", multiple=True, metavar="START-END", help=help)


def grace_option(help: str, *, limits: click.FloatRange, default: float | None) -> Callable[[F], F]:
    """``--grace SECONDS``: time around each mute/unmute judged neither muted nor unmuted.

    ``default`` None: the command applies the timeline's default itself (and says so in
    ``help``); else the default is shown. ``limits``: the values accepted.
    """
    return click.option(
        "--grace",
        "grace",
        type=limits,
        default=default,
        show_default=default is not None,
        metavar="SECONDS" if default is not None else None,
        help=help,
    )


def colour_option(help: str) -> Callable[[F], F]:
    """``--color/--no-color`` (``colour``; default: on a terminal, unless NO_COLOR is set)."""
    return click.option("--color/--no-color", "colour", default=None, help=help)


def quiet_option(help: str) -> Callable[[F], F]:
    """``--quiet``/``-q``."""
    return click.option("--quiet", "-q", is_flag=True, help=help)


def progress_option(help: str) -> Callable[[F], F]:
    """``--progress/--no-progress`` (default None: :func:`show_progress` decides)."""
    return click.option("--progress/--no-progress", default=None, help=help)


def audio_level_id_option() -> Callable[[F], F]:
    """``--audio-level-id N``: the RFC 6464 extension id when neither SDP nor inference finds it."""
    return click.option(
        "--audio-level-id",
        type=click.IntRange(1, 255),
        default=None,
        help="RFC 6464 audio-level header-extension id, when neither SDP nor inference finds it.",
    )
