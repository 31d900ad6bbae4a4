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
``README.md``
    how to use them, with the equivalent tshark ``-d`` arguments.

A frame is flagged when it is evidence of a leak finding: a packet whose audio level says
sound, every packet of a window whose sizes vary like speech, a packet whose decoded audio is
not silent, every packet of a stream that started while muted. Informational findings get a
filter but no comments; telemetry findings live in the proxy's flows, not in the capture.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

import numpy as np
import numpy.typing as npt

from decoders import __version__, outputs
from decoders.audit.measure import DECODED_SILENCE_DBFS, SILENCE_LEVEL
from decoders.wire.capture import CaptureReader, Interface
from decoders.wire.demux import PacketKind
from decoders.wire.pcapwriter import PcapngWriter

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
PROFILE_NAME: Final = "mutecheck"
PROFILE_FILES: Final = ("decode_as_entries", "dfilter_macros", "dfilters", "preferences")


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


def stream_filter(info: StreamInfo, interval: tuple[float, float] | None = None) -> str:
    """The stream's packets (Wireshark's RTP stream key), optionally within an epoch interval."""
    src, dst = _ip_field(info.src), _ip_field(info.dst)
    text = (
        f"{src}.src == {info.src} && udp.srcport == {info.src_port} && "
        f"{dst}.dst == {info.dst} && udp.dstport == {info.dst_port}"
    )
    if interval is not None:
        text += (
            f" && frame.time_epoch >= {interval[0]:.9f} && frame.time_epoch <= {interval[1]:.9f}"
        )
    return text


def comment_filter(tag: str) -> str:
    return f'frame.comment contains "{tag}"'


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


def _frames_or_stream(
    frames: npt.NDArray[np.int64], info: StreamInfo | None, interval: tuple[float, float] | None
) -> str:
    if len(frame_ranges(frames.tolist())) <= MAX_RANGES or info is None:
        return frame_filter(frames.tolist())
    return stream_filter(info, interval)


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
            out.append(
                NamedFilter(
                    f"mutecheck_F{index + 1}_frames",
                    f"{label}: its frames by number (the original capture too)",
                    _frames_or_stream(marks.frames[index], info, finding.interval),
                )
            )
        elif index in marks.context and marks.context[index].size:
            out.append(
                NamedFilter(
                    f"mutecheck_F{index + 1}_frames",
                    f"{label}: {finding.title}",
                    _frames_or_stream(marks.context[index], info, finding.interval),
                )
            )
        elif info is not None and analysis.timeline.windows:
            window = analysis.timeline.windows[finding.window]
            judged = window.judged(analysis.timeline.grace) or (window.start, window.end)
            out.append(
                NamedFilter(
                    f"mutecheck_F{index + 1}",
                    f"{label}: {finding.title} (the stream during the window)",
                    stream_filter(info, judged),
                )
            )
    return out


def filters_text(analysis: Analysis, filters: Sequence[NamedFilter]) -> str:
    """``filters.txt``: each filter under a ``#`` line saying what it selects."""
    capture = analysis.inputs.capture
    lines = [
        f"# mutecheck {__version__} display filters for {capture} "
        f"(verdict: {analysis.verdict.verdict})",
        "# Paste one into Wireshark's display filter bar or pass it to tshark -Y.",
        "",
    ]
    for item in filters:
        lines += [f"# {item.name}: {item.description}", item.expression, ""]
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
            f"# F{index + 1} {finding.id} (window {finding.window + 1}): not in the capture "
            f"({finding.endpoint or 'no stream'}; {where})",
            "",
        ]
    return "\n".join(lines)


def _uat(text: str) -> str:
    """A Wireshark UAT string field: quoted, with quotes and backslashes as ``\\xNN``."""
    escaped = "".join(f"\\x{ord(c):02x}" if c in '"\\' or ord(c) < 32 else c for c in text)
    return f'"{escaped}"'


def dfilter_macros(filters: Sequence[NamedFilter]) -> str:
    """``dfilter_macros``: each filter as ``${name}`` in Wireshark's and tshark's filter bar."""
    header = "# mutecheck display filter macros: use as ${mutecheck_flagged}, ${mutecheck_F1}\n"
    return header + "".join(f"{_uat(f.name)},{_uat(f.expression)}\n" for f in filters)


def dfilters(filters: Sequence[NamedFilter]) -> str:
    """``dfilters``: the saved display filters of the profile (name, then the expression)."""
    return "".join(f'"{f.name}: {f.description.replace(chr(34), chr(39))}" {f.expression}\n'
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
def _ns(t: float) -> tuple[int, int]:
    """Epoch seconds to (seconds, nanoseconds), rounded as the analysis rounds its window edges."""
    total = int(np.round(t * 1e9))
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
    capture = analysis.capture or {}
    level = (capture.get("audio_level") or {}).get("extension_id")
    media = analysis.media
    ports = sorted({p for s in (media.streams if media else []) for p in (s.src_port, s.dst_port)})
    windows = []
    for w in analysis.timeline.windows:
        (s0, n0), (s1, n1) = _ns(w.start), _ns(w.end)
        windows.append(f"        {{{s0}, {n0}, {s1}, {n1}, {w.index + 1}}},")
    edges = [
        f'        {{{s}, {n}, "{phase}", {"nil" if number is None else number}}},'
        for s, n, phase, number in phase_edges(analysis.timeline)
    ]
    source = (capture.get("audio_level") or {}).get("source", "none")
    lines = [
        f"-- settings for {analysis.inputs.capture} (mutecheck {__version__})",
        "local SETTINGS = {",
        f"    -- RFC 6464 audio level extmap id ({source}); nil: not known, no level read",
        f"    audio_level_id = {'nil' if level is None else int(level)},",
        "    -- UDP ports of the RTP streams: only their packets are read for a level",
        "    rtp_ports = {" + ", ".join(f"[{p}] = true" for p in ports) + "},",
        "    -- mute windows: {start secs, start nsecs, end secs, end nsecs, number} (epoch)",
        "    windows = {",
        *windows,
        "    },",
        f"    -- where the judged phase changes (grace {analysis.timeline.grace:g} s around each",
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
) -> str:
    capture = analysis.inputs.capture
    decode = " ".join(tshark_decode_args(rtp, rtcp))
    level = ((analysis.capture or {}).get("audio_level") or {}).get("extension_id")
    lines = [
        f"# Wireshark companion for {capture}",
        "",
        f"Written by mutecheck {__version__}; verdict **{analysis.verdict.verdict}** "
        f"({analysis.verdict.reason}).",
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
    }
    lines += [f"| `{name}` | {what.get(name, '')} |" for name in files]
    lines += [
        "",
        "## tshark",
        "",
        "```sh",
        f"tshark -r {ANNOTATED} {decode} -X lua_script:{PLUGIN} \\",
        "    -Y 'mutecheck.muted && mutecheck.audio_level < 100' \\",
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
        f"- `mutecheck.audio_level` is read under extension id {level} "
        "(RFC 6464; 0 is loudest, 127 silence) from plain RTP or TURN ChannelData over UDP."
        if level is not None
        else "- No audio-level extension id was known: the plugin reads no level.",
        "- `mutecheck.muted` is true inside a mute window; `mutecheck.phase` is what mutecheck "
        f"judged, with a grace period of {analysis.timeline.grace:g} s around each mute and unmute "
        "(`transition`).",
        "- Times in the report are seconds since the capture's first packet, as Wireshark's "
        "default time column.",
    ]
    if copy is not None and copy.renumbered:
        lines.append(
            "- Frame numbers differ between the annotated copy and the original (records that "
            "are not packets were counted there): use the comment filters on the copy."
        )
    if copy is not None and copy.damage:
        lines.append(f"- The capture is damaged ({copy.damage}); the copy ends there.")
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
    chosen = named_filters(analysis, marks)
    rtp = rtp_ports(analysis.media)
    rtcp = rtcp_ports(analysis.media, rtp)
    texts = {
        "filters.txt": filters_text(analysis, chosen),
        PLUGIN: lua_plugin(analysis),
        "decode_as_entries": decode_as_entries(rtp, rtcp),
        "dfilter_macros": dfilter_macros(chosen),
        "dfilters": dfilters(chosen),
        "preferences": preferences(),
    }
    for name, text in texts.items():
        outputs.write_text(directory / name, text)
        written.append(name)
    outputs.write_text(directory / "README.md", readme(analysis, written, rtp, rtcp, copy, marks))
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
