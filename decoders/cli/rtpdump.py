"""``mutecheck import-rtpdump``: Chromium's own plaintext RTP dump as a capture.

Chromium logs every RTP packet before encryption when asked (docs/decryption.md); this turns
that log into a pcapng with absolute timestamps, to see inside any real service's media. User
errors (a missing log, a log without dumps, a bad address or zone) print one line and exit
with code 2; the capture written holds decrypted media, so a privacy warning is printed.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta, timezone, tzinfo
from pathlib import Path

import click

from decoders.cli.common import fail, os_reason, privacy_warning, warn

_ENDPOINT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<v4>[0-9.]+)):(?P<port>\d{1,5})$")
_OFFSET = re.compile(r"^(?P<sign>[+-])(?P<hours>\d{1,2}):?(?P<minutes>\d{2})$")


def parse_endpoint(text: str) -> tuple[str, int]:
    """``a.b.c.d:port`` or ``[v6]:port`` -> (address, port); ValueError otherwise."""
    import ipaddress

    matched = _ENDPOINT.match(text.strip())
    if matched is None:
        raise ValueError(f"{text!r} is not ADDRESS:PORT (IPv6 in brackets)")
    address = matched["v6"] or matched["v4"]
    port = int(matched["port"])
    ipaddress.ip_address(address)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return address, port


def parse_zone(text: str) -> tzinfo:
    """``Z``/``UTC``, ``+HH:MM``/``-HHMM``, or an IANA zone name like ``Europe/Berlin``."""
    value = text.strip()
    if value.upper() in ("Z", "UTC"):
        return UTC
    matched = _OFFSET.match(value)
    if matched is not None:
        minutes = int(matched["hours"]) * 60 + int(matched["minutes"])
        if minutes >= 24 * 60:
            raise ValueError(f"UTC offset {text!r} out of range")
        return timezone(timedelta(minutes=-minutes if matched["sign"] == "-" else minutes))
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {text!r} (use +HH:MM or a name)") from error


@click.command("import-rtpdump")
@click.argument("log", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The pcapng to write.",
)
@click.option(
    "--local",
    default="10.0.0.1:50000",
    show_default=True,
    help="ADDRESS:PORT given to the browser (source of 'O' packets).",
)
@click.option(
    "--remote",
    default="10.0.0.2:50002",
    show_default=True,
    help="ADDRESS:PORT given to the other side (source of 'I' packets).",
)
@click.option(
    "--year", type=click.IntRange(1970, 9999), help="Year of the log (default: its mtime)."
)
@click.option(
    "--timezone",
    "zone_text",
    help="Zone of the log's local times: +HH:MM, Z, or a name (default: this machine's).",
)
def import_rtpdump(
    log: Path,
    output: Path,
    local: str,
    remote: str,
    year: int | None,
    zone_text: str | None,
) -> None:
    """Turn Chromium's RTP dump (its stderr LOG) into a pcapng with absolute timestamps.

    Start Chromium with --force-fieldtrials=WebRTC-Debugging-RtpDump/Enabled/
    --enable-logging=stderr --vmodule=srtp_session=1 and save its stderr to LOG.
    """
    import ipaddress

    from decoders.media.rtpdump import import_rtpdump as run_import

    try:
        zone = parse_zone(zone_text) if zone_text else None
        local_end, remote_end = parse_endpoint(local), parse_endpoint(remote)
        versions = {ipaddress.ip_address(end[0]).version for end in (local_end, remote_end)}
        if len(versions) > 1:
            raise ValueError(f"--local {local} and --remote {remote}: one IPv4, one IPv6")
        dump = run_import(log, output, year=year, zone=zone, local=local_end, remote=remote_end)
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(os_reason(exc))
    privacy_warning(str(output))
    kinds: dict[str, int] = {}
    for packet in dump.packets:
        kinds[packet.kind] = kinds.get(packet.kind, 0) + 1
    what = ", ".join(f"{n} {k.upper()}" for k, n in sorted(kinds.items()))
    click.echo(
        f"wrote {output}: {len(dump.packets)} packets ({what}; {dump.outbound} sent 'O', "
        f"{dump.inbound} received 'I')"
    )
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(dump.skipped.items()))
    if skipped:
        click.echo(f"skipped: {skipped}")
    if dump.mismatched:
        warn(
            f"{dump.mismatched} packets' log header and dump times differ "
            "by more than a second (commented in the capture)"
        )
