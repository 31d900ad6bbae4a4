"""Terminal styling: colour for verdicts and severities, and a progress bar, only where wanted.

Colour is on when the stream is a terminal and off when it is not (a pipe, a file, CI logs), when
``NO_COLOR`` is set to anything non-empty (https://no-color.org), or when ``TERM=dumb``.
``FORCE_COLOR`` (non-empty) turns it on regardless; an explicit ``--color/--no-color`` flag
(the ``force`` argument) beats both. Nothing here prints; callers pass the text through
:meth:`Style.paint` and friends and echo it themselves with ``click.echo(text,
color=style.enabled)`` (click otherwise strips colour whenever stdout is not a terminal, which
would defeat ``--color`` in a pipe).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Final, TextIO

import click

VERDICT_COLOURS: Final[Mapping[str, str]] = {
    "content-leak": "red",
    "metadata-leak": "yellow",
    "no-leak": "green",
    "inconclusive": "magenta",
}
SEVERITY_COLOURS: Final[Mapping[str, str]] = {
    "high": "red",
    "medium": "yellow",
    "low": "cyan",
    "info": "bright_black",
}
PROGRESS_MIN_BYTES: Final = 64 << 20
"""Captures from this size get a progress bar on a terminal (reading ~64 MiB takes a while)."""


def use_colour(
    stream: TextIO | None = None,
    *,
    force: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Whether to colour output written to ``stream`` (default stdout); see the module docstring."""
    if force is not None:
        return force
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("TERM") == "dumb":
        return False
    target = sys.stdout if stream is None else stream
    isatty = getattr(target, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False


class Style:
    """ANSI styling that does nothing when disabled, so callers need no ``if colour`` branches."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: TextIO | None = None, *, force: bool | None = None) -> Style:
        return cls(use_colour(stream, force=force))

    def paint(self, text: str, *, fg: str | None = None, bold: bool = False) -> str:
        if not self.enabled or (fg is None and not bold):
            return text
        return click.style(text, fg=fg, bold=bold or None)

    def bold(self, text: str) -> str:
        return self.paint(text, bold=True)

    def dim(self, text: str) -> str:
        return self.paint(text, fg="bright_black")

    def verdict(self, verdict: str, text: str | None = None) -> str:
        """``text`` (default: the verdict itself) in the verdict's colour, bold."""
        return self.paint(text or verdict, fg=VERDICT_COLOURS.get(verdict), bold=True)

    def severity(self, severity: str, text: str | None = None) -> str:
        """``text`` (default: the severity) in the severity's colour; high and medium bold."""
        return self.paint(
            text or severity,
            fg=SEVERITY_COLOURS.get(severity),
            bold=severity in ("high", "medium"),
        )


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
