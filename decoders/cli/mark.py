"""``mutecheck mark``: tell the proxy's mutecheck addon that you muted or unmuted.

The arguments are :mod:`decoders.session.mutemark`'s own (argparse, so ``mark -h`` is its help).
"""

from __future__ import annotations

import sys

import click


@click.command(
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
