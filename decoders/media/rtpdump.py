"""Chromium's plaintext RTP dump: its stderr log -> a capture with correct absolute timestamps.

Chromium started with::

    --force-fieldtrials=WebRTC-Debugging-RtpDump/Enabled/ --enable-logging=stderr
    --vmodule=srtp_session=1        (stderr to a file; --log-file misses the renderer's lines)

logs every RTP and RTCP packet libwebrtc protects (``O``, before encryption) or unprotects
(``I``, after decryption) as one log message: Chromium's log header line, then the packet in
text2pcap form on a line of its own::

    [5008:5121:1129/221502.212865:VERBOSE1:third_party/webrtc/pc/srtp_session.cc:549]
    <blank>
    O 00:00:02.212 0000 90 ef 65 69 ee 4f 9d 85 c4 83 53 4f be de ... # RTP_DUMP

libwebrtc computes that time field wrongly (hours and minutes always come out 00: only the
seconds within the minute and the milliseconds are right, in UTC). The header before it carries
the local date and time to the microsecond (no year, no zone), taken as the message was logged:
that is the time used here, checked against the dump's own seconds and milliseconds.

The dump has no addresses: packets are written as UDP between a ``local`` endpoint (the browser,
source of ``O``) and a ``remote`` one, both chosen by the caller.
"""

from __future__ import annotations

import calendar
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import BinaryIO, Final

from decoders import outputs
from decoders.errors import MalformedPacket
from decoders.wire import demux

DEFAULT_LOCAL: Final = ("10.0.0.1", 50000)
DEFAULT_REMOTE: Final = ("10.0.0.2", 50002)
RTPDUMP_INTERFACE: Final = "chromium-rtpdump"
"""Name of the capture interface an imported dump is written on."""
MAX_UDP_PAYLOAD: Final = 65_507
"""The largest UDP payload over IPv4 (65,535 - 20 - 8): a dumped packet over it cannot be written
as one datagram; it is skipped and counted (``too large for UDP``)."""
MAX_LINE_BYTES: Final = 256 * 1024
"""The longest log line read. A dump line of the largest datagram takes ~197 kB (3 characters a
byte); a longer line is skipped and counted (``line too long``) without ever being held whole,
so memory stays bounded whatever the log holds."""
TIME_TOLERANCE_MS: Final = 1000
"""Largest disagreement between the log header's time and the dump's own seconds.milliseconds
before a packet is flagged (they are taken microseconds apart)."""

_HEADER = re.compile(
    r"\[(?:(?P<pid>\d+):)?(?:(?P<tid>\d+):)?(?P<month>\d{2})(?P<day>\d{2})/"
    r"(?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})\.(?P<micro>\d{6}):"
    r"(?P<level>[A-Z0-9_]+):(?P<source>[^\]]*)\]",
    re.ASCII,  # digits are 0-9 only: int() would read other scripts' digits too
)
_DUMP = re.compile(
    r"(?P<direction>[IO]) (?P<hours>\d{2}):(?P<minutes>\d{2}):(?P<seconds>\d{2})\.(?P<millis>\d{3})"
    r" (?P<offset>[0-9a-fA-F]+)(?P<hex>(?: [0-9a-fA-F]{2})*) # RTP_DUMP\s*$"
)


@dataclass(frozen=True, slots=True)
class LogHeader:
    """A Chromium log line's prefix: ``[pid:tid:MMDD/HHMMSS.uuuuuu:LEVEL:file:line]``."""

    pid: int | None
    tid: int | None
    month: int
    day: int
    hour: int
    minute: int
    second: int
    microsecond: int
    level: str
    source: str


def parse_log_header(line: str) -> LogHeader | None:
    """The log prefix at the start of ``line``, None when the line has none (or a bad date)."""
    matched = _HEADER.match(line)
    if matched is None:
        return None
    header = LogHeader(
        pid=int(matched["pid"]) if matched["pid"] else None,
        tid=int(matched["tid"]) if matched["tid"] else None,
        month=int(matched["month"]),
        day=int(matched["day"]),
        hour=int(matched["hour"]),
        minute=int(matched["minute"]),
        second=int(matched["second"]),
        microsecond=int(matched["micro"]),
        level=matched["level"],
        source=matched["source"],
    )
    if not (1 <= header.month <= 12 and header.hour < 24):
        return None
    if not 1 <= header.day <= calendar.monthrange(2000, header.month)[1]:  # 2000: a leap year
        return None
    if header.minute > 59 or header.second > 60:
        return None
    return header


@dataclass(frozen=True, slots=True)
class DumpLine:
    """One ``# RTP_DUMP`` line (text2pcap form): direction, libwebrtc's time field, the packet.

    ``field_ms`` is the time field's seconds-within-minute and milliseconds (0..59999), the only
    part libwebrtc gets right.
    """

    outbound: bool
    field_ms: int
    data: bytes


def parse_dump_line(line: str) -> DumpLine | None:
    """A dump line; None for any other line; MalformedPacket for a cut or garbled dump line.

    Format: ``(I|O) HH:MM:SS.mmm <offset> <hex byte> ... # RTP_DUMP``.
    """
    if "# RTP_DUMP" not in line:
        return None
    matched = _DUMP.search(line)
    if matched is None:
        raise MalformedPacket(
            f"RTP_DUMP line is not '(I|O) HH:MM:SS.mmm offset hex...': {line[:60]!r}"
        )
    data = bytes.fromhex(matched["hex"].replace(" ", ""))
    if not data:
        raise MalformedPacket("RTP_DUMP line has no packet bytes")
    seconds = int(matched["seconds"])
    if seconds > 59:
        raise MalformedPacket(f"RTP_DUMP time field seconds {seconds} out of range")
    return DumpLine(
        outbound=matched["direction"] == "O",
        field_ms=seconds * 1000 + int(matched["millis"]),
        data=data,
    )


@dataclass(frozen=True, slots=True)
class DumpedPacket:
    """A packet of the dump with its absolute time (nanoseconds since the epoch)."""

    line_number: int
    outbound: bool
    timestamp_ns: int
    data: bytes
    kind: str
    """``rtp``, ``rtcp`` or ``other`` (RFC 5761 §4 / RFC 7983)."""
    time_mismatch_ms: int
    """Header time minus the dump's own time field, within the minute (milliseconds)."""


@dataclass
class RtpDump:
    """The packets of a log, in log order, and what was skipped and why."""

    packets: list[DumpedPacket] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def outbound(self) -> int:
        return sum(1 for p in self.packets if p.outbound)

    @property
    def inbound(self) -> int:
        return len(self.packets) - self.outbound

    @property
    def mismatched(self) -> int:
        """Packets whose header and dump times disagree by more than the tolerance."""
        return sum(1 for p in self.packets if abs(p.time_mismatch_ms) > TIME_TOLERANCE_MS)


def header_time_ns(header: LogHeader, year: int, zone: tzinfo | None) -> int:
    """The header's local time as epoch nanoseconds; ``zone`` None means this machine's zone.
    ValueError when ``year`` has no such day (29 February of a common year)."""
    moment = datetime(
        year, header.month, header.day, header.hour, header.minute, min(header.second, 59)
    )
    aware = moment.astimezone() if zone is None else moment.replace(tzinfo=zone)
    whole = int(aware.timestamp())
    return (whole + (header.second == 60)) * 1_000_000_000 + header.microsecond * 1000


def parse_rtpdump(lines: Iterable[str], *, year: int, zone: tzinfo | None = None) -> RtpDump:
    """Every ``# RTP_DUMP`` packet of a Chromium stderr log, timed by its log header.

    ``year`` is the year of the first header (Chromium writes month and day only; a later
    header in an earlier month means the year turned). A dump line without a header before it
    is skipped (counted as ``no log header``), as is a garbled one (``malformed``).
    """
    dump = RtpDump()
    header: LogHeader | None = None
    current_year = year
    last_month: int | None = None
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_BYTES:  # read_log_lines keeps only the start of such a line
            dump.skipped["line too long"] += 1
            continue
        found = parse_log_header(line)
        if found is not None:
            if last_month is not None and found.month < last_month:
                current_year += 1
            last_month = found.month
            header = found
        try:
            dumped = parse_dump_line(line)
        except MalformedPacket:
            dump.skipped["malformed"] += 1
            continue
        if dumped is None:
            continue
        if header is None:
            dump.skipped["no log header"] += 1
            continue
        if len(dumped.data) > MAX_UDP_PAYLOAD:
            dump.skipped["too large for UDP"] += 1
            continue
        try:
            timestamp_ns = header_time_ns(header, current_year, zone)
        except ValueError:  # 29 February of a common year
            dump.skipped["bad log date"] += 1
            continue
        header_ms = header.second % 60 * 1000 + header.microsecond // 1000
        mismatch = (header_ms - dumped.field_ms + 30_000) % 60_000 - 30_000
        kind = demux.classify(dumped.data)
        dump.packets.append(
            DumpedPacket(
                line_number=number,
                outbound=dumped.outbound,
                timestamp_ns=timestamp_ns,
                data=dumped.data,
                kind=str(kind)
                if kind in (demux.PacketKind.RTP, demux.PacketKind.RTCP)
                else "other",
                time_mismatch_ms=mismatch,
            )
        )
    return dump


def write_pcapng(
    dump: RtpDump,
    out: BinaryIO,
    *,
    local: tuple[str, int] = DEFAULT_LOCAL,
    remote: tuple[str, int] = DEFAULT_REMOTE,
) -> int:
    """The dump as UDP over Ethernet in pcapng (ns timestamps, time order); packets written.

    Outbound packets go from ``local`` to ``remote``, inbound ones back. The interface is named
    :data:`RTPDUMP_INTERFACE` and records ``local`` as its address (``if_IPv4addr``): the
    browser's side, which the audit takes as the muted one. A packet whose two times disagree
    gets a comment.
    """
    from decoders.wire.capture import LINKTYPE_ETHERNET
    from decoders.wire.pcapwriter import PcapngWriter, build_udp_frame

    writer = PcapngWriter(out)
    interface = writer.add_interface(
        LINKTYPE_ETHERNET, ts_resolution_exp10=9, name=RTPDUMP_INTERFACE, addresses=(local[0],)
    )
    for packet in sorted(dump.packets, key=lambda p: p.timestamp_ns):
        src, dst = (local, remote) if packet.outbound else (remote, local)
        frame = build_udp_frame(LINKTYPE_ETHERNET, src[0], src[1], dst[0], dst[1], packet.data)
        comment = None
        if abs(packet.time_mismatch_ms) > TIME_TOLERANCE_MS:
            comment = (
                f"rtpdump line {packet.line_number}: log header and dump time differ by "
                f"{packet.time_mismatch_ms} ms"
            )
        writer.write(interface, packet.timestamp_ns, frame, comment=comment)
    return len(dump.packets)


def read_log_lines(handle: BinaryIO) -> Iterator[str]:
    """The lines of a log (UTF-8, errors replaced), each at most :data:`MAX_LINE_BYTES` + 1
    characters: of a longer line only its start is kept (enough to count it as too long)."""
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            rest = line
            while rest and not rest.endswith(b"\n"):  # discard the rest, a bounded step each
                rest = handle.readline(MAX_LINE_BYTES)
        yield line.decode("utf-8", "replace").rstrip("\r\n")


def log_year(path: Path, header: LogHeader | None) -> int:
    """The year a log was written: its modification time's, one less if the first header's
    month lies after that (a log from December modified in January)."""
    modified = datetime.fromtimestamp(path.stat().st_mtime)
    if header is not None and header.month > modified.month:
        return modified.year - 1
    return modified.year


def import_rtpdump(
    log: Path,
    out: Path,
    *,
    year: int | None = None,
    zone: tzinfo | None = None,
    local: tuple[str, int] = DEFAULT_LOCAL,
    remote: tuple[str, int] = DEFAULT_REMOTE,
) -> RtpDump:
    """Read a Chromium stderr log and write its dumped packets to ``out`` (pcapng).

    ``year`` defaults to the log file's (see :func:`log_year`), ``zone`` to this machine's.
    Raises ValueError when the log holds no dumped packet.
    """
    if year is None:
        with log.open("rb") as handle:
            headers = map(parse_log_header, read_log_lines(handle))
            first = next((h for h in headers if h is not None), None)
        year = log_year(log, first)
    with log.open("rb") as handle:
        dump = parse_rtpdump(read_log_lines(handle), year=year, zone=zone)
    if not dump.packets:
        reasons = ", ".join(f"{n} {why}" for why, n in dump.skipped.items())
        raise ValueError(
            f"{log}: no '# RTP_DUMP' packet with a log header"
            + (f" ({reasons})" if reasons else "")
            + "; was Chromium started with --force-fieldtrials=WebRTC-Debugging-RtpDump/Enabled/ "
            "--enable-logging=stderr --vmodule=srtp_session=1 and its stderr saved?"
        )
    with outputs.atomic_open(out) as handle:
        write_pcapng(dump, handle, local=local, remote=remote)
    return dump
