"""``mutecheck import-rtpdump``: Chromium's RTP dump as a capture; addresses, zones, user errors.

With ``decrypt`` on the capture it writes: test_decrypt.py.
"""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from helpers.cli_run import one_line_error as _one_line_error

from decoders.cli.rtpdump import import_rtpdump, parse_endpoint, parse_zone

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "tests" / "fixtures" / "media" / "rtpdump"


@click.group()
def main() -> None:
    """The command on a group, as the top group registers it."""


main.add_command(import_rtpdump)


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_import_rtpdump(tmp_path: Path) -> None:
    out = tmp_path / "dump.pcapng"
    result = run(
        "import-rtpdump",
        RECORDING / "chromium-stderr.log",
        "-o",
        out,
        "--timezone",
        "UTC",
        "--year",
        "2026",
        "--local",
        "[2001:db8::1]:5000",
        "--remote",
        "[2001:db8::2]:6000",
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: " in result.stdout and "RTP" in result.stdout
    assert "holds decrypted media" in result.stderr
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--local", "nowhere"], "ADDRESS:PORT"),
        (["--remote", "10.0.0.1:70000"], "out of range"),
        (["--timezone", "Mars/Olympus"], "unknown time zone"),
        (["--remote", "[::2]:5"], "one IPv4, one IPv6"),
    ],
)
def test_import_rtpdump_user_errors(tmp_path: Path, extra: list[str], message: str) -> None:
    log = RECORDING / "chromium-stderr.log"
    line = _one_line_error(run("import-rtpdump", log, "-o", tmp_path / "x.pcapng", *extra))
    assert message in line


def test_import_rtpdump_of_a_plain_log(tmp_path: Path) -> None:
    log = tmp_path / "chrome.log"
    log.write_text("[1:2:1129/221500.000000:INFO:x.cc:1] hello\n")
    line = _one_line_error(run("import-rtpdump", log, "-o", tmp_path / "x.pcapng"))
    assert "WebRTC-Debugging-RtpDump" in line
    missing = _one_line_error(run("import-rtpdump", tmp_path / "none.log", "-o", tmp_path / "y"))
    assert "none.log" in missing


def test_parse_endpoint_and_zone() -> None:
    assert parse_endpoint("10.0.0.1:5000") == ("10.0.0.1", 5000)
    assert parse_endpoint("[::1]:9") == ("::1", 9)
    for bad in ("10.0.0.1", "999.0.0.1:5", "[::1]:0", "host:80"):
        with pytest.raises(ValueError):
            parse_endpoint(bad)
    assert parse_zone("Z") is UTC
    assert parse_zone("+05:30") == timezone(timedelta(hours=5, minutes=30))
    assert parse_zone("-0800") == timezone(timedelta(hours=-8))
    assert str(parse_zone("Europe/Berlin")) == "Europe/Berlin"
    with pytest.raises(ValueError):
        parse_zone("+25:00")
