"""What every command shares: exit codes, the one error line, the progress bar, the options."""

from __future__ import annotations

import errno
import io
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from decoders.audit.verdict import EXIT_CODES
from decoders.cli import common
from decoders.cli.common import (
    Exit,
    at,
    error_line,
    fail,
    os_reason,
    progress_bar,
    show_progress,
)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_exit_codes_are_the_verdicts() -> None:
    """The table names the audit's verdict codes as the verdict module numbers them."""
    assert {v: Exit[v.upper().replace("-", "_")] for v in EXIT_CODES} == EXIT_CODES
    assert (Exit.OK, Exit.CRASH, Exit.USER_ERROR) == (0, 1, 2)


def test_fail_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        fail(at(Path("a/b.pcap"), "not a capture"))
    assert exited.value.code == 2
    assert capsys.readouterr() == ("", "mutecheck: error: a/b.pcap: not a capture\n")
    with pytest.raises(SystemExit):
        fail("bad", command="mutecheck lab")
    assert capsys.readouterr().err == "mutecheck lab: error: bad\n"
    assert error_line("x") == "mutecheck: error: x"


def test_os_reason_names_the_file() -> None:
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "cap.pcap")
    assert os_reason(missing) == "cap.pcap: No such file or directory"
    assert os_reason(missing, path="other") == "cap.pcap: No such file or directory"
    unnamed = OSError(errno.ENOSPC, "No space left on device")
    assert os_reason(unnamed, path=Path("out.wav")) == "out.wav: No space left on device"
    assert os_reason(OSError("plain")) == "plain"


def test_usage_errors_become_one_line() -> None:
    @click.group(cls=common.OneLineErrors, context_settings={"help_option_names": ["-h"]})
    def top() -> None:
        """A group."""

    @top.command()
    @common.json_option("Print JSON.")
    @common.grace_option("Grace.", limits=click.FloatRange(0, 60), default=0.2)
    def sub(as_json: bool, grace: float) -> None:
        click.echo(f"{as_json} {grace}")

    runner = CliRunner()
    assert runner.invoke(top, ["sub", "--json"], prog_name="m").output == "True 0.2\n"
    result = runner.invoke(top, ["sub", "--grace", "61"], prog_name="m")
    assert result.exit_code == 2
    assert result.stderr.startswith("mutecheck: error: m sub: Invalid value for '--grace'")
    assert result.stderr.endswith(" (see m sub --help)\n") and result.stderr.count("\n") == 1
    help_text = runner.invoke(top, ["sub", "-h"], prog_name="m").output
    assert "--grace SECONDS" in help_text and "[default: 0.2; 0<=x<=60]" in help_text


def test_warnings_are_one_prefixed_line(capsys: pytest.CaptureFixture[str]) -> None:
    common.warn(at("events.jsonl", "2 line(s) could not be used"))
    assert capsys.readouterr() == (
        "",
        "mutecheck: warning: events.jsonl: 2 line(s) could not be used\n",
    )
    assert common.warning_line("x") == "mutecheck: warning: x"


def test_privacy_warning(capsys: pytest.CaptureFixture[str]) -> None:
    common.privacy_warning("out.pcapng")
    err = capsys.readouterr().err
    assert err.startswith("mutecheck: warning: out.pcapng holds decrypted media")


def test_progress_only_for_big_inputs_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not show_progress(1 << 40, quiet=True, force=True)
    assert show_progress(10, force=True)
    assert not show_progress(1 << 40, force=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not show_progress(1 << 40)
    monkeypatch.setattr(sys, "stderr", _Tty())
    assert show_progress(common.PROGRESS_MIN_BYTES)
    assert not show_progress(common.PROGRESS_MIN_BYTES - 1)


def test_progress_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    with progress_bar(100, "x", enabled=False) as tick:
        tick(50)  # does nothing
    sink = io.StringIO()
    monkeypatch.setattr(sys, "stderr", sink)
    with progress_bar(100, "reading", enabled=True) as tick:
        tick(40)
        tick(100)
        tick(90)  # never backwards
    assert "reading" in sink.getvalue()
