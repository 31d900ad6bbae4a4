"""Terminal styling: colour only on a terminal, NO_COLOR and --no-color respected."""

from __future__ import annotations

import io

import click

from decoders.report import style
from decoders.report.style import Style, use_colour


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_on_a_terminal_only() -> None:
    assert use_colour(_Tty(), environ={})
    assert not use_colour(io.StringIO(), environ={})


def test_no_color_force_color_and_dumb_terminals() -> None:
    assert not use_colour(_Tty(), environ={"NO_COLOR": "1"})
    assert use_colour(_Tty(), environ={"NO_COLOR": ""})  # set but empty: ignored (no-color.org)
    assert use_colour(io.StringIO(), environ={"FORCE_COLOR": "1"})
    assert not use_colour(_Tty(), environ={"TERM": "dumb"})


def test_an_explicit_flag_beats_the_environment() -> None:
    assert use_colour(io.StringIO(), force=True, environ={"NO_COLOR": "1"})
    assert not use_colour(_Tty(), force=False, environ={"FORCE_COLOR": "1"})


def test_closed_stream_means_no_colour() -> None:
    stream = _Tty()
    stream.close()

    class Closed(io.StringIO):
        def isatty(self) -> bool:
            raise ValueError("I/O operation on closed file")

    assert not use_colour(Closed(), environ={})


def test_disabled_style_returns_text_unchanged() -> None:
    plain = Style(False)
    for text in (plain.verdict("content-leak"), plain.severity("high", "HIGH"), plain.bold("x")):
        assert "\x1b[" not in text
    assert plain.verdict("no-leak") == "no-leak"
    assert plain.severity("high", "HIGH") == "HIGH"


def test_enabled_style_colours_by_meaning() -> None:
    coloured = Style(True)
    red = coloured.verdict("content-leak")
    assert red.startswith("\x1b[") and "content-leak" in red
    assert click.unstyle(red) == "content-leak"
    assert coloured.verdict("content-leak") == click.style("content-leak", fg="red", bold=True)
    assert coloured.verdict("no-leak") == click.style("no-leak", fg="green", bold=True)
    assert coloured.severity("info") == click.style("info", fg="bright_black")
    assert coloured.paint("plain") == "plain"
    assert set(style.VERDICT_COLOURS) == {
        "content-leak",
        "metadata-leak",
        "no-leak",
        "inconclusive",
    }


def test_for_stream() -> None:
    assert not Style.for_stream(io.StringIO()).enabled
    assert Style.for_stream(io.StringIO(), force=True).enabled
