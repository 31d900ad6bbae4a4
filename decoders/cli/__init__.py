"""The ``mutecheck`` command line, on top of every stage: one module per command.

``streams``, ``analyze``, ``report``, ``decrypt``, ``import-rtpdump`` (:mod:`.rtpdump`),
``signals``, ``mark``, ``lab``, ``audit``, ``watch`` and ``batch`` each live in their own module;
:mod:`.common` holds what they share (the exit codes, the one error line, the progress bar,
the options several commands take). No stage imports this package. User errors (missing
files, not a capture, broken SDP) print one line and exit with code 2; no traceback reaches
the user.
"""

from __future__ import annotations

import importlib
from typing import ClassVar

import click

from decoders import __version__
from decoders.cli.common import OneLineErrors


class LazyGroup(OneLineErrors):
    """The top group: each command's module is imported only when that command is used.

    ``mutecheck streams`` on a big capture is timed against tshark; importing the lab, the
    audit and the decoders for every command would add to each run's start-up.
    """

    LAZY: ClassVar[dict[str, str]] = {
        "activity": "decoders.cli.activity:activity",
        "analyze": "decoders.cli.analyze:analyze",
        "audit": "decoders.cli.audit:audit",
        "batch": "decoders.cli.batch:batch",
        "decrypt": "decoders.cli.decrypt:decrypt",
        "import-rtpdump": "decoders.cli.rtpdump:import_rtpdump",
        "lab": "decoders.cli.lab:lab",
        "mark": "decoders.cli.mark:mark",
        "report": "decoders.cli.report:report",
        "signals": "decoders.cli.signals:signals",
        "streams": "decoders.cli.streams:streams",
        "watch": "decoders.cli.watch:watch",
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
