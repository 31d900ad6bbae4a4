"""``python -m decoders.cli``: the top group as a user runs it, usage errors on one line."""

from __future__ import annotations

import click
import pytest
from helpers.cli_run import run_mutecheck as run

from decoders.cli import LazyGroup, main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "--bogus"], "mutecheck analyze: No such option '--bogus'"),
        (["analyze", "--grace", "soon"], "mutecheck analyze: Invalid value for '--grace'"),
        (["streams"], "mutecheck streams: Missing argument 'CAPTURE'"),
        (["streams", "x", "--engine", "magic"], "mutecheck streams: Invalid value for '--engine'"),
        (["report", "x", "--htm", "y"], "Did you mean '--html'?"),
        (["decrypt"], "mutecheck decrypt: Missing argument"),
        (["import-rtpdump", "log"], "mutecheck import-rtpdump: Missing option"),
        (["signals", "x", "--top", "0"], "mutecheck signals: Invalid value for '--top'"),
        (["lab", "record", "--variant", "nope"], "mutecheck lab record: Invalid value"),
        (["lab", "nosuch"], "mutecheck lab: No such command 'nosuch'"),
        (["nosuch"], "mutecheck: No such command 'nosuch'"),
        (["mark", "bogus"], "mutecheck mark: argument state: invalid choice: 'bogus'"),
        (["mark", "muted", "--at", "x"], "mutecheck mark: argument --at: invalid float value"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    """Issue 13: click printed three lines (Usage, Try, Error); every command says one."""
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mutecheck: error: ") and message in lines[0], lines[0]
    assert lines[0].endswith(" -h)") or lines[0].endswith(" --help)")


def test_asking_for_nothing_still_shows_the_help() -> None:
    result = run()
    assert "Commands:" in result.stdout + result.stderr and "analyze" in result.stderr
    assert run("--help").returncode == 0 and run("analyze", "--help").returncode == 0


def test_each_command_is_its_own_modules() -> None:
    """The top group finds every command in its module under decoders/cli/, by its name."""
    assert isinstance(main, LazyGroup)
    context = click.Context(main, info_name="mutecheck")
    names = main.list_commands(context)
    assert names == sorted(LazyGroup.LAZY) and len(names) == 12
    for name in names:
        command = main.get_command(context, name)
        assert command is not None and command.name == name
        assert command.callback is not None
        module = LazyGroup.LAZY[name].split(":")[0]
        assert module.startswith("decoders.cli.") and command.callback.__module__ == module
    assert main.get_command(context, "nosuch") is None
