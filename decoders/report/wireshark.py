"""The Wireshark companion: the analysis as files an analyst opens in Wireshark or tshark.

:func:`write_wireshark` writes into one folder:

``annotated.pcapng``
    a copy of the capture, every frame as it was, with a packet comment on each flagged frame
    (``mutecheck: audio level -23 dBov while muted (F1 audio-level-while-muted, window 1)``);
    Wireshark shows it and filters on it (``frame.comment``).
``filters.txt``
    display filters: every flagged frame, then one per finding (for the annotated copy and,
    by frame number, for the original capture).
``decode_as_entries``, ``dfilter_macros``, ``dfilters``, ``preferences``
    a Wireshark configuration profile: RTP decoded on the streams' ports with no manual
    "Decode As", the filters as macros (``${mutecheck_flagged}``) and saved filters, and a
    column layout with the mutecheck fields.
``mutecheck.lua``
    a Lua postdissector adding ``mutecheck.audio_level`` (read under the negotiated extmap id),
    ``mutecheck.muted``, ``mutecheck.window`` and ``mutecheck.phase`` (the mute windows and
    grace periods of this analysis).
``dissections.txt``
    Wireshark's own dissection (tshark, through pyshark) of each finding's first frames: the
    protocol layers and their fields as tshark names them, payload bytes and keys left out
    (:mod:`decoders.report.dissection`); one line saying why when tshark is missing or failed.
``README.md``
    how to use them, with the equivalent tshark ``-d`` arguments.

Nothing from the input (the capture's path, codec names from the SDP, endpoints and flow ids
from the traffic) reaches a generated file as it came: the plugin holds it only as an escaped Lua
string literal (:func:`lua_string`), display filters quote strings (:func:`dfilter_string`), comment
lines and descriptions show it on one line with every control or line-breaking character escaped
(:func:`one_line`), the README as Markdown text or a code span (:func:`md_text`, :func:`md_code`),
the profile as UAT or ``dfilters`` quoted strings.

A frame is flagged when it is evidence of a leak finding: a packet whose audio level says
sound, every packet of a window whose sizes vary like speech, a packet whose decoded audio is
not silent, every packet of a stream that started while muted. Informational findings get a
filter but no comments; telemetry findings live in the proxy's flows, not in the capture.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

import numpy as np
import numpy.typing as npt

from decoders import __version__, outputs
from decoders.audit.measure import DECODED_SILENCE_DBFS, SILENCE_LEVEL
from decoders.report.dissection import MAX_BYTES as MAX_DISSECTED_BYTES
from decoders.report.dissection import DissectedFrame, Dissection, dissect, finding_frames
from decoders.wire.capture import CaptureReader, Interface
from decoders.wire.demux import PacketKind
from decoders.wire.pcapwriter import PcapngWriter
from decoders.wire.tshark import epoch_ns

if TYPE_CHECKING:
    from decoders.audit.analysis import Analysis
    from decoders.audit.flags import Finding
    from decoders.audit.measure import MediaMeasurement, StreamInfo
    from decoders.session.timeline import Timeline

ANNOTATED: Final = "annotated.pcapng"
PLUGIN: Final = "mutecheck.lua"
MAX_RANGES: Final = 400
"""A frame-number filter with more ranges than this is replaced by a stream-and-time filter."""
COMMENT_PREFIX: Final = "mutecheck: "
SOUND_WHILE_MUTED: Final = f'mutecheck.phase == "muted" && mutecheck.audio_level < {SILENCE_LEVEL}'
"""The frames judged muted whose audio level says sound (the audio-level finding's rule)."""
DISSECTIONS: Final = "dissections.txt"
PROFILE_NAME: Final = "mutecheck"
PROFILE_FILES: Final = ("decode_as_entries", "dfilter_macros", "dfilters", "preferences")


# -- quoting: nothing from the input reaches a generated file as it came ------------------------
def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a path (surrogate escape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def one_line(text: object) -> str:
    """Text shown on one line of a generated file (a ``#`` or ``--`` comment, a description).

    Every control, format, private-use, unassigned or surrogate character and every line or
    paragraph separator (``\\n``, ``\\r``, NUL, U+0085, U+2028, U+2029, bidi overrides ...) is
    written as a visible ``\\xNN``/``\\uNNNN`` escape and the backslash doubled, so the text can
    neither end the line it is on nor hide what it says.
    """
    out: list[str] = []
    for char in str(text):
        if char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp"):
            out.append(_escape(char))
        else:
            out.append(char)
    return "".join(out)


def _utf8(text: str) -> bytes:
    """The bytes of a text: a path's undecodable bytes (surrogate escapes) come back as they were,
    any other lone surrogate (JSON allows them) as its ``\\uNNNN`` escape."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return b"".join(
            c.encode("utf-8", "surrogateescape")
            if not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF
            else _escape(c).encode()
            for c in text
        )


def lua_string(text: object) -> str:
    """A Lua string literal holding ``text``'s UTF-8 bytes: printable ASCII as is, every other byte
    (quotes, backslash, controls, non-ASCII) as a three-digit decimal escape ``\\ddd``."""
    body = "".join(
        chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\{b:03d}" for b in _utf8(str(text))
    )
    return f'"{body}"'


def dfilter_string(text: str) -> str:
    """A display-filter string literal matching ``text`` exactly (Wireshark 4 syntax): printable
    ASCII as is, quotes, backslashes and every other byte of its UTF-8 as ``\\xNN``."""
    body = "".join(
        chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in _utf8(text)
    )
    return f'"{body}"'


_MD_PUNCTUATION: Final = frozenset("!#$&*.:<>@[\\]^_`{|}~")
"""What can start markup inside a line (links, autolinks, images, HTML, entities, emphasis, code,
table cells); the rest of ASCII punctuation only means something at the start of a line."""


def md_text(text: object) -> str:
    """Markdown text, inside a line, that renders as :func:`one_line` of ``text``: its markup
    characters backslash-escaped (CommonMark), so no link, autolink, image, HTML, entity,
    emphasis or table cell can come from it."""
    return "".join(f"\\{c}" if c in _MD_PUNCTUATION else c for c in one_line(text))


def md_code(text: object) -> str:
    """A Markdown code span showing :func:`one_line` of ``text`` verbatim (HTML stays text)."""
    shown = one_line(text)
    longest = max((len(run) for run in re.findall("`+", shown)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {shown} {fence}"


# -- display filters -------------------------------------------------------------------------
def frame_ranges(frames: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged runs of consecutive frame numbers."""
    out: list[tuple[int, int]] = []
    for number in sorted(set(frames)):
        if out and number == out[-1][1] + 1:
            out[-1] = (out[-1][0], number)
        else:
            out.append((number, number))
    return out


def frame_filter(frames: Iterable[int]) -> str:
    """``frame.number in {236..240, 250}`` (Wireshark 4 set syntax); empty for no frames."""
    ranges = frame_ranges(frames)
    if not ranges:
        return ""
    items = ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in ranges)
    return f"frame.number in {{{items}}}"


def _ip_field(address: str) -> str:
    return "ipv6" if ":" in address else "ip"


def _address(address: str) -> str:
    """An address as a filter literal: only ever an IP address (ValueError otherwise)."""
    return str(ipaddress.ip_address(address))


def _epoch(ns: int) -> str:
    """Epoch nanoseconds as exact decimal seconds (a float's ``%.9f`` is off by up to ~120 ns
    at today's epochs, enough to leave out a packet at the edge)."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def stream_filter(info: StreamInfo, interval_ns: tuple[int, int] | None = None) -> str:
    """The stream's packets (Wireshark's RTP stream key without the SSRC: its addresses and
    ports), optionally within an epoch interval in nanoseconds (both ends included)."""
    src, dst = _ip_field(info.src), _ip_field(info.dst)
    text = (
        f"{src}.src == {_address(info.src)} && udp.srcport == {int(info.src_port)} && "
        f"{dst}.dst == {_address(info.dst)} && udp.dstport == {int(info.dst_port)}"
    )
    if interval_ns is not None:
        text += (
            f" && frame.time_epoch >= {_epoch(interval_ns[0])}"
            f" && frame.time_epoch <= {_epoch(interval_ns[1])}"
        )
    return text


def comment_filter(tag: str) -> str:
    return f"frame.comment contains {dfilter_string(tag)}"


# -- flagged frames -----------------------------------------------------------------------------
@dataclass
class Flags:
    """Comments per frame number, and each finding's frames (finding index -> frame numbers)."""

    comments: dict[int, list[str]] = field(default_factory=dict)
    frames: dict[int, npt.NDArray[np.int64]] = field(default_factory=dict)
    context: dict[int, npt.NDArray[np.int64]] = field(default_factory=dict)
    """Informational findings: the frames they describe (no comment)."""

    def comment(self, frame: int) -> str | None:
        parts = self.comments.get(frame)
        return COMMENT_PREFIX + " | ".join(parts) if parts else None

    @property
    def flagged(self) -> list[int]:
        return sorted(self.comments)


def finding_tag(index: int, finding: Finding) -> str:
    """``(F1 audio-level-while-muted, window 1)``: unique per finding, filterable."""
    return f"(F{index + 1} {finding.id}, window {finding.window + 1})"


def _decoded_rows(
    media: MediaMeasurement, info: StreamInfo, rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The rows whose decoded audio is louder than silence, and that loudness (matched by time)."""
    extra = media.extras.get(info.ssrc)
    if extra is None or extra.dbfs is None or rows.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    loud = np.asarray(extra.dbfs, np.float64) > DECODED_SILENCE_DBFS
    times = np.asarray(extra.timestamp_ns, np.int64)[loud]
    values = np.asarray(extra.dbfs, np.float64)[loud]
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    row_times = media.rows["timestamp_ns"][rows].astype(np.int64)
    at = np.searchsorted(times, row_times)
    at_clipped = np.minimum(at, max(0, times.size - 1))
    hit = (times.size > 0) & (at < times.size) & (times[at_clipped] == row_times)
    return rows[hit], values[at_clipped[hit]]


def flags(analysis: Analysis) -> Flags:
    """Which frames each finding flags, and the comment each flagged frame gets."""
    out = Flags()
    media = analysis.media
    if media is None:
        return out
    by_index = {info.index: info for info in media.streams}
    frame_col = media.rows["frame"]
    for index, finding in enumerate(analysis.findings):
        if finding.stream is None or finding.stream not in by_index:
            continue
        info = by_index[finding.stream]
        rows = media.window_rows(info.index, finding.window)
        tag = finding_tag(index, finding)
        texts: list[str] = []
        chosen = np.zeros(0, np.int64)
        if finding.id == "audio-level-while-muted":
            level = media.rows["audio_level"][rows]
            keep = (level >= 0) & (level < SILENCE_LEVEL)
            chosen = rows[keep]
            texts = [f"audio level -{int(v)} dBov while muted {tag}" for v in level[keep]]
        elif finding.id == "encoded-content-while-muted":
            chosen = rows
            sizes = media.encoded_sizes(rows)
            texts = [
                f"{int(v)}-byte payload while muted, sizes vary like speech {tag}" for v in sizes
            ]
        elif finding.id == "decoded-audio-while-muted":
            chosen, values = _decoded_rows(media, info, rows)
            texts = [f"decoded audio {v:.0f} dBFS while muted {tag}" for v in values]
        elif finding.id == "new-stream-while-muted":
            chosen = rows
            texts = [f"new stream started while muted {tag}" for _ in range(rows.size)]
        elif finding.leak is None:
            out.context[index] = frame_col[rows].astype(np.int64)
            continue
        else:
            continue
        frames = frame_col[chosen].astype(np.int64)
        out.frames[index] = frames
        for number, text in zip(frames.tolist(), texts, strict=True):
            out.comments.setdefault(number, []).append(text)
    return out


# -- filters -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NamedFilter:
    name: str
    """A macro-safe name: ``mutecheck_flagged``, ``mutecheck_F1``, ``mutecheck_F1_frames``."""
    description: str
    expression: str


BY_STREAM: Final = (
    "more than {n} runs of frames, so: every packet of the stream's addresses and ports "
    "from its first frame to its last"
)
"""What a frames filter says when it had to become a stream-and-time filter."""


def _frames_or_stream(
    frames: npt.NDArray[np.int64], info: StreamInfo | None, media: MediaMeasurement | None
) -> tuple[str, str | None]:
    """The frames' filter, or (too many runs) the stream's from the first frame's time to the
    last's and a note saying so: it then selects more than the frames (their neighbours, RTCP,
    STUN)."""
    if len(frame_ranges(frames.tolist())) <= MAX_RANGES or info is None or media is None:
        return frame_filter(frames.tolist()), None
    times = media.rows["timestamp_ns"][np.isin(media.rows["frame"], frames)].astype(np.int64)
    interval = (int(times.min()), int(times.max()))
    return stream_filter(info, interval), BY_STREAM.format(n=MAX_RANGES)


def named_filters(analysis: Analysis, marks: Flags) -> list[NamedFilter]:
    """Every flagged frame, then per finding one filter for the annotated copy and one by frame."""
    out: list[NamedFilter] = []
    media = analysis.media
    infos = {i.index: i for i in media.streams} if media is not None else {}
    if marks.comments:
        out.append(
            NamedFilter(
                "mutecheck_flagged",
                "every frame mutecheck flagged (annotated.pcapng)",
                comment_filter(COMMENT_PREFIX.strip()),
            )
        )
        flagged = np.array(marks.flagged, np.int64)
        if len(frame_ranges(marks.flagged)) <= MAX_RANGES:
            out.append(
                NamedFilter(
                    "mutecheck_flagged_frames",
                    "every frame mutecheck flagged, by frame number (the original capture too)",
                    frame_filter(flagged.tolist()),
                )
            )
    for index, finding in enumerate(analysis.findings):
        label = f"F{index + 1} {finding.id} ({finding.severity}, window {finding.window + 1})"
        info = infos.get(finding.stream) if finding.stream is not None else None
        if index in marks.frames and marks.frames[index].size:
            out.append(
                NamedFilter(
                    f"mutecheck_F{index + 1}",
                    f"{label}: {finding.title} (annotated.pcapng)",
                    comment_filter(f"(F{index + 1} "),
                )
            )
            expression, note = _frames_or_stream(marks.frames[index], info, media)
            out.append(
                NamedFilter(
                    f"mutecheck_F{index + 1}_frames",
                    f"{label}: its frames by number (the original capture too)"
                    if note is None
                    else f"{label}: its frames ({note})",
                    expression,
                )
            )
        elif index in marks.context and marks.context[index].size:
            expression, note = _frames_or_stream(marks.context[index], info, media)
            out.append(
                NamedFilter(
                    f"mutecheck_F{index + 1}_frames",
                    f"{label}: {finding.title}" + ("" if note is None else f" ({note})"),
                    expression,
                )
            )
        elif info is not None and analysis.timeline.windows:
            window = analysis.timeline.windows[finding.window]
            judged = window.judged(analysis.timeline.grace) or (window.start, window.end)
            out.append(
                NamedFilter(
                    f"mutecheck_F{index + 1}",
                    f"{label}: {finding.title} (every packet of the stream's addresses and "
                    "ports while judged muted: RTCP and STUN, no RTP of it)",
                    stream_filter(info, (_epoch_ns(judged[0]), _epoch_ns(judged[1]))),
                )
            )
    return out


def filters_text(analysis: Analysis, filters: Sequence[NamedFilter]) -> str:
    """``filters.txt``: each filter under a ``#`` line saying what it selects."""
    capture = analysis.inputs.capture
    lines = [
        f"# mutecheck {__version__} display filters for {one_line(capture)} "
        f"(verdict: {one_line(analysis.verdict.verdict)})",
        "# Paste one into Wireshark's display filter bar or pass it to tshark -Y.",
        "",
    ]
    for item in filters:
        lines += [f"# {one_line(item.name)}: {one_line(item.description)}", item.expression, ""]
    named = {f.name.split("_")[1] for f in filters if f.name.startswith("mutecheck_F")}
    for index, finding in enumerate(analysis.findings):
        if f"F{index + 1}" in named:
            continue
        where = (
            f"mitmproxy flows {', '.join(finding.first_messages)}"
            if finding.first_messages
            else "no frames"
        )
        lines += [
            f"# F{index + 1} {one_line(finding.id)} (window {finding.window + 1}): not in the "
            f"capture ({one_line(finding.endpoint or 'no stream')}; {one_line(where)})",
            "",
        ]
    return "\n".join(lines)


def _uat(text: str) -> str:
    """A Wireshark UAT string field: quoted; quotes, backslashes, controls and every byte of a
    non-ASCII character as ``\\xNN``."""
    escaped = "".join(
        chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in _utf8(text)
    )
    return f'"{escaped}"'


def _dfilters_name(text: str) -> str:
    """A ``dfilters`` entry's name: quoted, ``\\`` and ``"`` backslash-escaped (Wireshark's
    filter-file reader), on one line."""
    shown = one_line(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{shown}"'


def dfilter_macros(filters: Sequence[NamedFilter]) -> str:
    """``dfilter_macros``: each filter as ``${name}`` in Wireshark's and tshark's filter bar."""
    header = "# mutecheck display filter macros: use as ${mutecheck_flagged}, ${mutecheck_F1}\n"
    return header + "".join(f"{_uat(f.name)},{_uat(f.expression)}\n" for f in filters)


def dfilters(filters: Sequence[NamedFilter]) -> str:
    """``dfilters``: the saved display filters of the profile (name, then the expression)."""
    return "".join(f"{_dfilters_name(f'{f.name}: {f.description}')} {f.expression}\n"
                   for f in filters)  # fmt: skip


# -- decode as -------------------------------------------------------------------------------
def rtp_ports(media: MediaMeasurement | None) -> list[int]:
    """The fewest UDP ports whose "Decode As RTP" covers every stream (either end matches)."""
    if media is None:
        return []
    pending = [(s.src_port, s.dst_port) for s in media.streams]
    chosen: list[int] = []
    while pending:
        counts: dict[int, int] = {}
        for pair in pending:
            for port in set(pair):
                counts[port] = counts.get(port, 0) + 1
        best = max(counts, key=lambda p: (counts[p], -p))
        chosen.append(best)
        pending = [pair for pair in pending if best not in pair]
    return sorted(chosen)


def rtcp_ports(media: MediaMeasurement | None, rtp: Sequence[int]) -> list[int]:
    """Ports of RTCP not on an RTP port (no rtcp-mux), to decode as RTCP."""
    if media is None:
        return []
    rows = media.rows
    rtcp = rows.kind_mask(PacketKind.RTCP) & (rows["transport"] == 0)
    ports = set(rows["src_port"][rtcp].tolist()) | set(rows["dst_port"][rtcp].tolist())
    # each RTCP flow needs one of its ports; use the lower unless one is already decoded as RTP
    pairs = set(zip(rows["src_port"][rtcp].tolist(), rows["dst_port"][rtcp].tolist(), strict=True))
    out: set[int] = set()
    for a, b in pairs:
        if a in rtp or b in rtp or a in out or b in out:
            continue
        out.add(min(a, b))
    return sorted(p for p in out if p in ports)


def decode_as_entries(rtp: Sequence[int], rtcp: Sequence[int]) -> str:
    """Wireshark's ``decode_as_entries`` profile file."""
    lines = [f"# mutecheck {__version__}: decode the RTP (and RTCP) ports of the analysed capture"]
    lines += [f"decode_as_entry: udp.port,{port},(none),RTP" for port in rtp]
    lines += [f"decode_as_entry: udp.port,{port},(none),RTCP" for port in rtcp]
    return "\n".join(lines) + "\n"


def tshark_decode_args(rtp: Sequence[int], rtcp: Sequence[int]) -> list[str]:
    """The same as tshark arguments: ``-d udp.port==41384,rtp``."""
    args: list[str] = []
    for port in rtp:
        args += ["-d", f"udp.port=={port},rtp"]
    for port in rtcp:
        args += ["-d", f"udp.port=={port},rtcp"]
    return args


COLUMNS: Final = (
    ("No.", "%m"),
    ("Time", "%t"),
    ("Source", "%s"),
    ("Destination", "%d"),
    ("Protocol", "%p"),
    ("Length", "%L"),
    ("Level (-dBov)", "%Cus:mutecheck.audio_level:0:R"),
    ("Muted", "%Cus:mutecheck.muted:0:R"),
    ("Phase", "%Cus:mutecheck.phase:0:R"),
    ("Comment", "%Cus:frame.comment:0:R"),
    ("Info", "%i"),
)


def preferences() -> str:
    """The profile's ``preferences``: columns for the mutecheck fields and the packet comment."""
    body = ", ".join(f'"{title}", "{fmt}"' for title, fmt in COLUMNS)
    head = f"# mutecheck {__version__}: columns for the mutecheck fields\n"
    return f"{head}gui.column.format: {body}\n"


# -- the Lua plugin ------------------------------------------------------------------------------
def _epoch_ns(t: float) -> int:
    """Epoch seconds to nanoseconds, rounded as the analysis rounds its window edges."""
    return int(np.round(t * 1e9))


def _ns(t: float) -> tuple[int, int]:
    """Epoch seconds to (seconds, nanoseconds), rounded as the analysis rounds its window edges."""
    total = _epoch_ns(t)
    return total // 1_000_000_000, total % 1_000_000_000


def phase_edges(timeline: Timeline) -> list[tuple[int, int, str, int | None]]:
    """Where the judged phase changes: (secs, nsecs, phase, window number or None), in order.

    The same pieces :meth:`~decoders.session.timeline.Timeline.segments` labels packets with:
    each window's edges with the grace period on both sides, labelled at their midpoints.
    """
    edges, labels = timeline.stretches()  # O(w log w): 10,000 windows stay cheap
    out: list[tuple[int, int, str, int | None]] = []
    for left, label in zip(edges.tolist(), labels.tolist(), strict=True):
        phase = "muted" if label >= 0 else "transition" if label == -2 else "unmuted"
        secs, nsecs = _ns(left)
        out.append((secs, nsecs, phase, label + 1 if label >= 0 else None))
    return out


def lua_settings(analysis: Analysis) -> str:
    """The plugin's settings block for this analysis."""
    found = analysis.capture.level if analysis.capture is not None else None
    level = found.extension_id if found is not None else None
    media = analysis.media
    ports = sorted({p for s in (media.streams if media else []) for p in (s.src_port, s.dst_port)})
    windows = []
    for w in analysis.timeline.windows:
        (s0, n0), (s1, n1) = _ns(w.start), _ns(w.end)
        windows.append(f"        {{{s0}, {n0}, {s1}, {n1}, {int(w.index) + 1}}},")
    edges = [
        f"        {{{s}, {n}, {lua_string(phase)}, {'nil' if number is None else int(number)}}},"
        for s, n, phase, number in phase_edges(analysis.timeline)
    ]
    source = found.source if found is not None else "none"
    # text from the input is held only in escaped string literals, never in a comment
    lines = [
        f"-- settings for the capture named below (mutecheck {__version__})",
        "local SETTINGS = {",
        f"    capture = {lua_string(analysis.inputs.capture or '')},",
        "    -- RFC 6464 audio level extmap id (how it was known: level_source); nil: not known,",
        "    -- no level read",
        f"    level_source = {lua_string(source)},",
        f"    audio_level_id = {'nil' if level is None else int(level)},",
        "    -- UDP ports of the RTP streams: only their packets are read for a level",
        "    rtp_ports = {" + ", ".join(f"[{int(p)}] = true" for p in ports) + "},",
        "    -- mute windows: {start secs, start nsecs, end secs, end nsecs, number} (epoch)",
        "    windows = {",
        *windows,
        "    },",
        f"    -- where the judged phase changes (grace {float(analysis.timeline.grace):g} s around "
        "each",
        "    -- mute and unmute): {secs, nsecs, phase, window number}",
        "    phase_edges = {",
        *edges,
        "    },",
        "}",
    ]
    return "\n".join(lines)


def lua_plugin(analysis: Analysis) -> str:
    """``mutecheck.lua`` with this analysis' settings."""
    from importlib.resources import files

    template = files("decoders.report").joinpath(PLUGIN).read_text("utf-8")
    return template.replace("--@SETTINGS@", lua_settings(analysis), 1)


# -- Wireshark's dissection of the findings' first frames ------------------------------------
def finding_dissections(analysis: Analysis) -> tuple[list[tuple[int, ...]], Dissection]:
    """Each finding's frames to show (:func:`~decoders.report.dissection.finding_frames`) and
    Wireshark's dissection of them all, from one tshark pass over the analysed capture."""
    chosen = finding_frames(analysis.findings)
    frames = sorted({n for numbers in chosen for n in numbers})
    dissection = dissect(analysis.inputs.capture, frames, frame_filter(frames))
    return chosen, _same_frames(analysis.media, dissection)


def _same_frames(media: MediaMeasurement | None, dissection: Dissection) -> Dissection:
    """The dissection without any frame whose time differs from mutecheck's frame of that
    number (tshark numbered the capture otherwise): another packet's dissection is no evidence."""
    if media is None or not dissection.frames:
        return dissection
    numbers = media.rows["frame"]
    kept: list[DissectedFrame] = []
    differ: list[int] = []
    for frame in dissection.frames:
        at = np.flatnonzero(numbers == frame.number)
        epoch = frame.value("frame.time_epoch")
        if at.size and epoch and epoch_ns(epoch) != int(media.rows["timestamp_ns"][at[0]]):
            differ.append(frame.number)
        else:
            kept.append(frame)
    if not differ:
        return dissection
    note = (
        f"Wireshark's dissection of frame(s) {', '.join(map(str, differ))} is not shown: "
        "tshark's frames of these numbers are not mutecheck's (their times differ)."
    )
    note = note if dissection.note is None else f"{dissection.note}; {note}"
    return dataclasses.replace(dissection, frames=tuple(kept), note=note)


def dissections_text(
    analysis: Analysis, chosen: Sequence[tuple[int, ...]], dissection: Dissection
) -> str:
    """``dissections.txt``: per finding its first frames (``chosen``, as
    :func:`finding_dissections` gives them), each layer and its fields.

    Everything tshark printed is shown with :func:`one_line`, so nothing from the capture can
    break a line or hide what it says.
    """
    lines = [
        f"# mutecheck {__version__}: Wireshark's dissection (tshark, through pyshark) of each "
        "finding's first frames",
        "# field = the value tshark shows    (the line Wireshark shows)",
        "# Left out: payload and data fields, byte strings longer than "
        f"{MAX_DISSECTED_BYTES} bytes, keys and passwords.",
        "",
    ]
    if dissection.note:
        lines += [f"# {one_line(dissection.note)}", ""]
    for index, (finding, numbers) in enumerate(zip(analysis.findings, chosen, strict=True)):
        frames = dissection.of(numbers)
        if not frames:
            continue
        shown = ", ".join(str(frame.number) for frame in frames)
        lines += [f"== F{index + 1} {one_line(finding.id)} (window {finding.window + 1}): "
                  f"frame(s) {shown}", ""]  # fmt: skip
        for frame in frames:
            lines.append(f"-- frame {frame.number} ({one_line(frame.protocols)})")
            for layer in frame.layers:
                lines.append(f"   {one_line(layer.name)}")
                lines += [
                    f"      {one_line(f.name)} = {one_line(f.value)}    ({one_line(f.line)})"
                    for f in layer.fields
                ]
            if frame.left_out:
                lines.append(f"   ({frame.left_out} payload, byte-string or key field(s) left out)")
            lines.append("")
    if not any(dissection.of(numbers) for numbers in chosen) and not dissection.note:
        lines.append("# No finding points at frames of the capture.")
    return "\n".join(lines) + "\n"


# -- the annotated copy --------------------------------------------------------------------------
@dataclass(frozen=True)
class CopyResult:
    frames: int
    commented: int
    renumbered: bool
    """True when the copy's frame numbers differ from the original's (records it could not copy,
    such as systemd journal blocks, were counted as frames there)."""
    damage: str | None


def _add_interface(writer: PcapngWriter, interface: Interface) -> int:
    units = interface.ts_units_per_second
    exp10 = round(math.log10(units)) if units > 0 else 6
    decimal = 10**exp10 == units
    return writer.add_interface(
        interface.link_type,
        ts_resolution_exp10=exp10 if decimal else 6,
        ts_resolution_exp2=None if decimal else units.bit_length() - 1,
        ts_offset_seconds=interface.ts_offset_seconds,
        name=interface.name,
        snaplen=interface.snaplen,
        addresses=interface.addresses,
    )


class _Counting:
    """A read-only file wrapper counting bytes read, for a progress bar."""

    def __init__(self, fileobj: BinaryIO, tick: Callable[[int], None] | None) -> None:
        self._file = fileobj
        self._tick = tick
        self.done = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._file.read(size)
        self.done += len(data)
        if self._tick is not None:
            self._tick(self.done)
        return data

    def close(self) -> None:
        self._file.close()


def write_annotated(
    capture: Path,
    out: Path,
    comments: Callable[[int], str | None],
    *,
    progress: Callable[[int], None] | None = None,
) -> CopyResult:
    """Copy ``capture`` to pcapng at ``out``, with ``comments(frame number)`` on its frames.

    Timestamps keep their resolution; every packet keeps its bytes and original length.
    """
    written = commented = 0
    renumbered = False
    with capture.open("rb") as raw, outputs.atomic_open(out) as sink:
        source = _Counting(raw, progress)
        reader = CaptureReader(source)  # type: ignore[arg-type]
        writer = PcapngWriter(sink, application=f"mutecheck {__version__}")
        ids: dict[int, int] = {}
        for frame in reader:
            if frame.interface not in ids:
                ids[frame.interface] = _add_interface(writer, reader.interfaces[frame.interface])
            written += 1
            renumbered = renumbered or frame.number != written
            text = comments(frame.number)
            commented += text is not None
            writer.write(
                ids[frame.interface],
                frame.timestamp_ns,
                frame.data,
                comment=text,
                original_length=frame.original_length,
            )
        damage = reader.damage
        reader.close()
    return CopyResult(written, commented, renumbered, damage)


# -- all of it -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WiresharkFiles:
    directory: Path
    annotated: Path | None
    plugin: Path
    filters: Path
    readme: Path
    profile: tuple[Path, ...]
    copy: CopyResult | None
    flagged_frames: int


def readme(
    analysis: Analysis,
    files: Sequence[str],
    rtp: Sequence[int],
    rtcp: Sequence[int],
    copy: CopyResult | None,
    marks: Flags,
    *,
    dissection_note: str | None = None,
) -> str:
    capture = analysis.inputs.capture
    decode = " ".join(tshark_decode_args(rtp, rtcp))
    level = analysis.capture.level.extension_id if analysis.capture is not None else None
    lines = [
        f"# Wireshark companion for {md_code(capture)}",
        "",
        f"Written by mutecheck {__version__}; verdict **{md_text(analysis.verdict.verdict)}** "
        f"({md_text(analysis.verdict.reason)}).",
        "",
        "| file | what |",
        "|---|---|",
    ]
    what = {
        ANNOTATED: f"the capture, a comment on each of its {len(marks.comments)} flagged frames",
        "filters.txt": "display filters: every flagged frame, and one per finding",
        PLUGIN: "Lua plugin: `mutecheck.audio_level`, `mutecheck.muted`, `mutecheck.window`, "
        "`mutecheck.phase`",
        "decode_as_entries": "profile: RTP decoded on the streams' ports",
        "dfilter_macros": "profile: the filters as macros, `${mutecheck_flagged}`",
        "dfilters": "profile: the filters as saved display filters",
        "preferences": "profile: columns for the audio level, mute state, phase and comment",
        DISSECTIONS: "Wireshark's dissection of each finding's first frames (tshark, through "
        "pyshark; no payload bytes)",
    }
    lines += [f"| `{name}` | {what.get(name, '')} |" for name in files]
    lines += [
        "",
        "## tshark",
        "",
        "```sh",
        f"tshark -r {ANNOTATED} {decode} -X lua_script:{PLUGIN} \\",
        f"    -Y '{SOUND_WHILE_MUTED}' \\",
        "    -T fields -e frame.number -e mutecheck.audio_level -e mutecheck.phase \\",
        "    -e frame.comment",
        "```",
        "",
        f"`{decode}` is the command-line form of `decode_as_entries`"
        + (" (RTP on these UDP ports)." if rtp else " (no RTP stream was found)."),
        "",
        "## Wireshark",
        "",
        "1. Copy this folder's `decode_as_entries`, `dfilter_macros`, `dfilters` and",
        "   `preferences` into a new profile folder, e.g.",
        "   `~/.config/wireshark/profiles/mutecheck/`, and pick the profile (Edit >",
        "   Configuration Profiles), or run `wireshark -C mutecheck` once it is there.",
        f"2. Open with the plugin: `wireshark -X lua_script:{PLUGIN} {ANNOTATED}` (or copy",
        f"   `{PLUGIN}` into the personal Lua plugins folder, Help > About > Folders).",
        "3. Filter with `${mutecheck_flagged}` or `${mutecheck_F1}`, or paste from `filters.txt`;",
        "   View > Packet Comments lists the comments (Statistics > Capture File Properties too).",
        "",
        "## Notes",
        "",
        f"- `mutecheck.audio_level` is read under extension id {md_text(level)} "
        "(RFC 6464; 0 is loudest, 127 silence) from plain RTP or TURN ChannelData over UDP."
        if level is not None
        else "- No audio-level extension id was known: the plugin reads no level.",
        "- `mutecheck.muted` is true inside a mute window; `mutecheck.phase` is what mutecheck "
        f"judged, with a grace period of {float(analysis.timeline.grace):g} s around each mute "
        "and unmute (`transition`).",
        "- Filter on a boolean field with `== 1`: a bare `mutecheck.muted` only tests that the "
        "field is there, and it is on every frame. `mutecheck.muted == 1` selects the frames "
        'inside a mute window, `mutecheck.phase == "muted"` those mutecheck judged as muted '
        "(the grace periods left out), "
        f"`{SOUND_WHILE_MUTED}` those that carried sound while judged muted.",
        "- Times in the report are seconds since the capture's first packet, as Wireshark's "
        "default time column.",
    ]
    if copy is not None and copy.renumbered:
        lines.append(
            "- Frame numbers differ between the annotated copy and the original (records that "
            "are not packets were counted there): use the comment filters on the copy."
        )
    if copy is not None and copy.damage:
        lines.append(f"- The capture is damaged ({md_text(copy.damage)}); the copy ends there.")
    if dissection_note is not None:
        lines.append(f"- {md_text(dissection_note)}")
    return "\n".join(lines) + "\n"


def write_wireshark(
    analysis: Analysis, directory: Path, *, progress: Callable[[int], None] | None = None
) -> WiresharkFiles:
    """Write the companion files into ``directory`` (created if needed); see the module docstring.

    ``progress(bytes read)`` is called while copying the capture.
    """
    directory.mkdir(parents=True, exist_ok=True)
    marks = flags(analysis)
    capture = analysis.inputs.capture
    copy: CopyResult | None = None
    annotated: Path | None = None
    written: list[str] = []
    if capture is not None:
        annotated = directory / ANNOTATED
        copy = write_annotated(capture, annotated, marks.comment, progress=progress)
        written.append(ANNOTATED)
    named = named_filters(analysis, marks)
    rtp = rtp_ports(analysis.media)
    rtcp = rtcp_ports(analysis.media, rtp)
    chosen, dissection = finding_dissections(analysis)
    texts = {
        "filters.txt": filters_text(analysis, named),
        PLUGIN: lua_plugin(analysis),
        "decode_as_entries": decode_as_entries(rtp, rtcp),
        "dfilter_macros": dfilter_macros(named),
        "dfilters": dfilters(named),
        "preferences": preferences(),
        DISSECTIONS: dissections_text(analysis, chosen, dissection),
    }
    for name, text in texts.items():
        outputs.write_text(directory / name, text)
        written.append(name)
    text = readme(analysis, written, rtp, rtcp, copy, marks, dissection_note=dissection.note)
    outputs.write_text(directory / "README.md", text)
    return WiresharkFiles(
        directory=directory,
        annotated=annotated,
        plugin=directory / PLUGIN,
        filters=directory / "filters.txt",
        readme=directory / "README.md",
        profile=tuple(directory / n for n in PROFILE_FILES),
        copy=copy,
        flagged_frames=len(marks.comments),
    )
