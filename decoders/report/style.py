"""Terminal styling: colour for verdicts and severities, only where wanted.

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
from collections.abc import Mapping
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
