"""Findings: what left during mute that should not have, each with the evidence a skeptic needs.

Every rule looks at one mute window at a time (the grace period already removed), and only at
streams that could carry the microphone: not video, and sent by the muted side (or every
stream, when the side is unknown). A finding has an id, a severity (``info`` < ``low`` <
``medium`` < ``high``), the kind of leak it shows (``content``: the sound itself or its
loudness, per packet; ``metadata``: facts about the sound; None: informational), the stream or
endpoint, the time interval, its numbers, and the first frames (or messages) that show it.

The media rules are one function each, run in the order of :data:`STREAM_RULES` over every
judged stream in every mute window (:class:`StreamWindow`); the telemetry and server-side
rules look across streams. Rules:

``audio-level-while-muted`` (content)
    the RFC 6464 audio level says there is sound (level < 100, i.e. louder than -100 dBov) in
    at least 5 packets and 5 % of the window's packets. High from 20 % or 50 packets (1 s).
``encoded-content-while-muted`` (content)
    payload sizes vary like coded sound: at least 20 packets, 8 distinct sizes, a size entropy of
    3 bits or more and no size holding half the packets. Silence is one repeated small frame
    (entropy ~0), Opus DTX two sizes; speech is dozens (~5 bits). Needs no keys and no SDP.
    High from 4 bits.
``decoded-audio-while-muted`` (content)
    decrypted, decoded audio louder than -80 dBFS in at least 5 packets and 5 % of them.
``volume-telemetry-while-muted`` (metadata)
    HTTP/WebSocket messages with volume-like fields while muted, per endpoint. High when the
    values change within the window or say someone speaks; medium when they are constant.
``new-stream-while-muted`` (metadata, medium)
    a stream that could carry the microphone starts inside a mute window.
``media-continues-while-muted`` (info)
    packets keep flowing while muted but carry silence (the WebRTC spec says a disabled track
    must send no media; Chromium sends a silence frame every 20 ms).
``no-media-while-muted`` (info)
    a stream that was sending before the window sends no RTP during it.
``server-side-mute`` (content, high)
    the app told its server that you were muted (a rule of scope ``server`` read its signal:
    AudioBridge ``muted: true``, EchoTest ``audio: false``, ...) and a content finding shows the
    microphone's sound still left the computer in that window: the server stops passing you on,
    but it still receives you. Not independent evidence: it names what the others show.
``constant-bit-rate-sizes`` (info)
    the stream's codec is constant-bit-rate (G.711 PCMU/PCMA, G.722, ...): every packet has the
    same size whatever the microphone hears, so payload sizes cannot tell sound from silence;
    the audio level and the decoded audio judge it, and without them the window is not judged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from decoders.audit.activity import infer, inference_numbers, inference_text
from decoders.audit.correlate import Correlation
from decoders.audit.measure import (
    DECODED_SILENCE_DBFS,
    SILENCE_LEVEL,
    MediaMeasurement,
    PhaseStats,
    StreamInfo,
    TelemetryMeasurement,
)
from decoders.audit.speech import speech_activity
from decoders.media.codecs import constant_bit_rate
from decoders.session.timeline import ScopedMute, Timeline, Window

SEVERITIES: Final = ("info", "low", "medium", "high")
FIRST: Final = 5
MIN_LOUD_PACKETS: Final = 5
MIN_LOUD_SHARE: Final = 0.05
HIGH_LOUD_SHARE: Final = 0.2
HIGH_LOUD_PACKETS: Final = 50
MIN_SIZE_PACKETS: Final = 20
MIN_DISTINCT_SIZES: Final = 8
MIN_SIZE_ENTROPY: Final = 3.0
HIGH_SIZE_ENTROPY: Final = 4.0
MAX_MODE_SHARE: Final = 0.5
CONTINUES_RATE: Final = 0.5
"""Packets/s from which media counts as still flowing."""
SERVER_SIDE: Final = "server-side-mute"
SERVER_SIDE_TITLE: Final = (
    "the app muted you on its server; your microphone audio still went to the server"
)
CBR_SIZES: Final = "constant-bit-rate-sizes"


@dataclass(frozen=True, slots=True)
class Series:
    """A per-packet (or per-message) series shown by a finding, for correlation."""

    name: str
    times: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Finding:
    """One finding (see the module docstring). ``interval`` is on the capture's clock."""

    id: str
    severity: str
    leak: str | None
    title: str
    window: int
    interval: tuple[float, float] | None
    numbers: dict[str, Any]
    evidence: str
    stream: int | None = None
    stream_label: str | None = None
    endpoint: str | None = None
    first_frames: tuple[int, ...] = ()
    first_messages: tuple[str, ...] = ()
    correlation: Correlation | None = None
    series: Series | None = field(default=None, compare=False, repr=False)

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self.severity)


def _interval(times_ns: npt.NDArray[np.int64]) -> tuple[float, float] | None:
    if times_ns.size == 0:
        return None
    return (int(times_ns.min()) / 1e9, int(times_ns.max()) / 1e9)


def _frames(media: MediaMeasurement, rows: npt.NDArray[np.int64]) -> tuple[int, ...]:
    return tuple(int(f) for f in media.rows["frame"][rows[:FIRST]])


def _pct(share: float) -> str:
    return f"{100.0 * share:.0f}%"


def _unmuted(media: MediaMeasurement, stream: int) -> PhaseStats:
    return media.phase(stream, "unmuted")


def media_findings(media: MediaMeasurement, timeline: Timeline) -> list[Finding]:
    """Every media rule over every judged stream and mute window."""
    out: list[Finding] = []
    for window in timeline.windows:
        if media.seconds.get(window.index, 0.0) <= 0:
            continue
        for info in media.streams:
            if not info.judged:
                continue
            out.extend(_stream_window(media, info, window, timeline))
    return out


@dataclass(frozen=True)
class StreamWindow:
    """One judged stream in one mute window: what every stream rule reads."""

    media: MediaMeasurement
    info: StreamInfo
    window: Window
    timeline: Timeline
    phase: PhaseStats
    """The stream's packets judged muted in the window (the grace period left out)."""
    unmuted: PhaseStats
    """The same stream while unmuted, to compare with."""
    rows: npt.NDArray[np.int64]
    """Row indices of the packets judged muted in the window, in capture order."""
    times_ns: npt.NDArray[np.int64]
    """Their capture times."""

    @classmethod
    def of(
        cls, media: MediaMeasurement, info: StreamInfo, window: Window, timeline: Timeline
    ) -> StreamWindow:
        rows = media.window_rows(info.index, window.index)
        return cls(
            media=media,
            info=info,
            window=window,
            timeline=timeline,
            phase=media.phase(info.index, "muted", window.index),
            unmuted=_unmuted(media, info.index),
            rows=rows,
            times_ns=media.rows["timestamp_ns"][rows],
        )

    @property
    def constant_bit_rate(self) -> bool:
        """The stream's codec codes every frame in the same number of bytes (G.711, G.722...)."""
        return constant_bit_rate(self.info.codec)

    @property
    def common(self) -> dict[str, Any]:
        """The fields every finding about this stream in this window shares."""
        return {
            "window": self.window.index,
            "stream": self.info.index,
            "stream_label": self.info.label,
        }


StreamRule = Callable[[StreamWindow, Sequence[Finding]], Finding | None]
"""A media rule: one stream in one mute window, and what the rules before it found there, to
the finding it makes (None: nothing to say)."""


def _stream_window(
    media: MediaMeasurement, info: StreamInfo, window: Window, timeline: Timeline
) -> list[Finding]:
    """The findings of :data:`STREAM_RULES`, in their order, for one stream in one window."""
    seen = StreamWindow.of(media, info, window, timeline)
    found: list[Finding] = []
    for rule in STREAM_RULES:
        finding = rule(seen, found)
        if finding is not None:
            found.append(finding)
    return found


def audio_level_while_muted(seen: StreamWindow, earlier: Sequence[Finding]) -> Finding | None:
    """``audio-level-while-muted`` (content): the RFC 6464 audio level, sent in clear even with
    SRTP, says there is sound (louder than -100 dBov) in at least 5 packets and 5 % of the
    window's; a muted microphone reads -127 dBov, so the level itself is the sound's loudness
    leaving. High from 20 % or 50 packets (1 s). ``numbers.speech``: what the level exposes, the
    speech-activity timeline of :mod:`decoders.audit.speech`."""
    levels = seen.phase.levels
    if not (
        levels is not None
        and levels.loud_packets >= MIN_LOUD_PACKETS
        and levels.loud_share >= MIN_LOUD_SHARE
    ):
        return None
    media, rows = seen.media, seen.rows
    level = media.rows["audio_level"][rows]
    loud = rows[(level >= 0) & (level < SILENCE_LEVEL)]
    has = level >= 0
    high = levels.loud_share >= HIGH_LOUD_SHARE or levels.loud_packets >= HIGH_LOUD_PACKETS
    before = seen.unmuted.levels
    speech = speech_activity(seen.times_ns[has].astype(np.float64) / 1e9, level[has])
    return Finding(
        id="audio-level-while-muted",
        severity="high" if high else "medium",
        leak="content",
        title="the audio-level header reports sound while muted",
        interval=_interval(media.rows["timestamp_ns"][loud]),
        numbers={
            "loud_packets": levels.loud_packets,
            "packets_with_level": levels.packets,
            "loud_share": round(levels.loud_share, 4),
            "median_level_dbov": -levels.median,
            "unmuted_median_level_dbov": -before.median if before else None,
            "silence_level_dbov": -SILENCE_LEVEL,
            "speech": speech.to_json(media.span[0] if media.span else None),
        },
        evidence=(
            f"{levels.loud_packets} of {levels.packets} packets "
            f"({_pct(levels.loud_share)}) carry an audio level louder than "
            f"-{SILENCE_LEVEL} dBov while muted; median -{levels.median:.0f} dBov"
            + (f" (unmuted: -{before.median:.0f} dBov)" if before else "")
            + "; a muted microphone reads -127 dBov (silence)"
        ),
        first_frames=_frames(media, loud),
        series=Series(
            "audio level (-dBov)",
            seen.times_ns[has].astype(np.float64) / 1e9,
            -level[has].astype(np.float64),
        ),
        **seen.common,
    )


def constant_bit_rate_sizes(seen: StreamWindow, earlier: Sequence[Finding]) -> Finding | None:
    """``constant-bit-rate-sizes`` (info): the stream's codec is constant-bit-rate, so every
    packet has the same size whatever the microphone hears and the size rule cannot speak; the
    finding says what judges the window instead (the audio level, the decoded audio), or that
    nothing can."""
    phase = seen.phase
    if not (seen.constant_bit_rate and phase.packets):
        return None
    info = seen.info
    sizes = phase.sizes
    judges = [
        name
        for name, present in (
            ("the audio level", phase.levels is not None),
            ("the decoded audio", phase.decoded is not None),
        )
        if present
    ]
    size_text = (
        f"{_pct(sizes.mode_share)} of the {sizes.count} packets are {sizes.mode} bytes"
        if sizes is not None
        else f"{phase.packets} packets"
    )
    return Finding(
        id=CBR_SIZES,
        severity="info",
        leak=None,
        title=f"{info.codec} is constant-bit-rate: payload sizes cannot tell sound from silence",
        interval=_interval(seen.times_ns),
        numbers={
            "codec": info.codec,
            "packets": phase.packets,
            "commonest_size_bytes": sizes.mode if sizes else None,
            "commonest_size_share": _r(sizes.mode_share if sizes else None, 4),
            "distinct_sizes": sizes.distinct if sizes else None,
            "judged_by": judges,
        },
        evidence=(
            f"{size_text} while muted: {info.codec} codes every 20 ms the same number of bytes "
            "whatever the microphone hears, so the sizes say nothing about the sound; "
            + (
                f"judged by {' and '.join(judges)} instead"
                if judges
                else "without the audio level or keys to decode it, this stream cannot be "
                "judged (pass --keys, or negotiate the audio-level header extension)"
            )
        ),
        first_frames=_frames(seen.media, seen.rows),
        **seen.common,
    )


def encoded_content_while_muted(seen: StreamWindow, earlier: Sequence[Finding]) -> Finding | None:
    """``encoded-content-while-muted`` (content): the encrypted payload sizes vary like coded
    sound (at least 20 packets, 8 distinct sizes, a size entropy of 3 bits or more, no size
    holding half of them). Silence is one repeated small frame and sizes alone reveal speech,
    so this needs no keys and no SDP. High from 4 bits. Left to :func:`constant_bit_rate_sizes`
    for a constant-bit-rate codec."""
    phase = seen.phase
    sizes = phase.sizes
    if seen.constant_bit_rate and phase.packets:
        return None
    if not (
        sizes is not None
        and sizes.count >= MIN_SIZE_PACKETS
        and sizes.distinct >= MIN_DISTINCT_SIZES
        and sizes.entropy_bits >= MIN_SIZE_ENTROPY
        and sizes.mode_share <= MAX_MODE_SHARE
    ):
        return None
    before_sizes = seen.unmuted.sizes
    ts = seen.times_ns
    return Finding(
        id="encoded-content-while-muted",
        severity="high" if sizes.entropy_bits >= HIGH_SIZE_ENTROPY else "medium",
        leak="content",
        title="payload sizes vary like coded sound while muted",
        interval=_interval(ts),
        numbers={
            "packets": sizes.count,
            "packets_per_second": _r(phase.packets_per_second, 2),
            "distinct_sizes": sizes.distinct,
            "size_entropy_bits": round(sizes.entropy_bits, 3),
            "median_bytes": sizes.median,
            "iqr_bytes": sizes.iqr,
            "commonest_size_share": round(sizes.mode_share, 4),
            "unmuted_size_entropy_bits": _r(before_sizes.entropy_bits if before_sizes else None, 3),
            "unmuted_median_bytes": before_sizes.median if before_sizes else None,
        },
        evidence=(
            f"{sizes.count} packets in {sizes.distinct} different sizes "
            f"({sizes.minimum}-{sizes.maximum} bytes, median {sizes.median:.0f}, "
            f"entropy {sizes.entropy_bits:.1f} bits)"
            + (
                f"; unmuted: median {before_sizes.median:.0f} bytes, "
                f"{before_sizes.entropy_bits:.1f} bits"
                if before_sizes
                else ""
            )
            + "; silence is one repeated small frame (0 bits). Encrypted sizes alone "
            "reveal speech (language, phrases)"
        ),
        first_frames=_frames(seen.media, seen.rows),
        series=Series(
            "payload size (bytes)",
            ts.astype(np.float64) / 1e9,
            seen.media.encoded_sizes(seen.rows).astype(np.float64),
        ),
        **seen.common,
    )


def decoded_audio_while_muted(seen: StreamWindow, earlier: Sequence[Finding]) -> Finding | None:
    """``decoded-audio-while-muted`` (content, high): with keys, the decrypted and decoded audio
    is louder than -80 dBFS in at least 5 packets and 5 % of them: the sound itself left."""
    decoded = seen.phase.decoded
    if not (
        decoded is not None
        and decoded.loud_packets >= MIN_LOUD_PACKETS
        and decoded.loud_share >= MIN_LOUD_SHARE
    ):
        return None
    media, info = seen.media, seen.info
    extra = media.extras[info.ssrc]
    assert extra.dbfs is not None
    labels = _extra_labels(media, info, seen.window, seen.timeline)
    times = extra.timestamp_ns[labels].astype(np.float64) / 1e9
    dbfs = extra.dbfs[labels]
    loud_times = times[dbfs > DECODED_SILENCE_DBFS]
    return Finding(
        id="decoded-audio-while-muted",
        severity="high",
        leak="content",
        title="decrypted audio is not silent while muted",
        interval=(float(loud_times.min()), float(loud_times.max())),
        numbers={
            "loud_packets": decoded.loud_packets,
            "packets": decoded.packets,
            "loud_share": round(decoded.loud_share, 4),
            "median_dbfs": round(decoded.median_dbfs, 2),
            "max_dbfs": round(decoded.max_dbfs, 2),
            "silence_dbfs": DECODED_SILENCE_DBFS,
        },
        evidence=(
            f"{decoded.loud_packets} of {decoded.packets} decoded packets "
            f"({_pct(decoded.loud_share)}) are louder than {DECODED_SILENCE_DBFS:.0f} "
            f"dBFS; median {decoded.median_dbfs:.0f} dBFS, peak {decoded.max_dbfs:.0f}"
        ),
        first_frames=_frames(media, seen.rows),
        series=Series("decoded loudness (dBFS)", times, dbfs),
        **seen.common,
    )


def new_stream_while_muted(seen: StreamWindow, earlier: Sequence[Finding]) -> Finding | None:
    """``new-stream-while-muted`` (metadata, medium): a stream that could carry the microphone
    sends its first packet inside the mute window: something started sending while you were
    muted."""
    media, info, phase = seen.media, seen.info, seen.phase
    labels = media.labels[info.index]
    first_label = labels[0] if labels.size else None
    if first_label != seen.window.index:
        return None
    sizes = phase.sizes
    return Finding(
        id="new-stream-while-muted",
        severity="medium",
        leak="metadata",
        title="a new stream started while muted",
        interval=_interval(seen.times_ns),
        numbers={
            "packets": phase.packets,
            "packets_per_second": _r(phase.packets_per_second, 2),
            "media": info.media,
            "median_bytes": sizes.median if sizes else None,
        },
        evidence=(
            f"{info.media} stream {info.label} sent its first packet (frame "
            f"{info.first_frame}) inside the mute window; {phase.packets} packets "
            "while muted"
        ),
        first_frames=_frames(media, seen.rows),
        **seen.common,
    )


def media_continues_while_muted(seen: StreamWindow, earlier: Sequence[Finding]) -> Finding | None:
    """``media-continues-while-muted`` (info): packets keep flowing while muted (0.5/s or more,
    or DTX updates) and no content rule fired, so they carry silence: nothing of the sound, but
    the WebRTC spec says a disabled track sends no media at all. Not said of a constant-bit-rate
    stream nothing can judge (silence or not: no level, no decoded audio)."""
    phase = seen.phase
    levels, decoded, sizes = phase.levels, phase.decoded, phase.sizes
    content = any(f.leak == "content" for f in earlier)
    unknown = seen.constant_bit_rate and levels is None and decoded is None
    rate = phase.packets_per_second or 0.0
    dtx = _dtx(phase)
    if content or unknown or not phase.packets or not (rate >= CONTINUES_RATE or dtx):
        return None
    return Finding(
        id="media-continues-while-muted",
        severity="info",
        leak=None,
        title="silence frames keep flowing while muted"
        + (" (DTX: only comfort-noise updates)" if dtx else ""),
        interval=_interval(seen.times_ns),
        numbers={
            "packets": phase.packets,
            "packets_per_second": _r(rate, 2),
            "unmuted_packets_per_second": _r(seen.unmuted.packets_per_second, 2),
            "dtx": dtx,
            "commonest_size_bytes": sizes.mode if sizes else None,
            "commonest_size_share": _r(sizes.mode_share if sizes else None, 4),
            "distinct_sizes": sizes.distinct if sizes else None,
            "median_level_dbov": -levels.median if levels else None,
        },
        evidence=(
            f"{phase.packets} packets ({rate:.1f}/s) while muted"
            + (f", {_pct(sizes.mode_share)} of them {sizes.mode} bytes" if sizes else "")
            + (", audio level silent" if levels and levels.loud_packets == 0 else "")
            + "; nothing of the sound, but the WebRTC spec says a muted track sends "
            "no media at all"
        ),
        first_frames=_frames(seen.media, seen.rows),
        **seen.common,
    )


def no_media_while_muted(seen: StreamWindow, earlier: Sequence[Finding]) -> Finding | None:
    """``no-media-while-muted`` (info): a stream that was sending before the window sends no
    RTP during it: what a correct mute looks like on the wire (RTCP and ICE checks may go on)."""
    phase, unmuted = seen.phase, seen.unmuted
    if not (phase.packets == 0 and seen.info.first_ns / 1e9 < seen.window.start):
        return None
    return Finding(
        id="no-media-while-muted",
        severity="info",
        leak=None,
        title="no media was sent while muted",
        interval=None,
        numbers={
            "packets": 0,
            "unmuted_packets_per_second": _r(unmuted.packets_per_second, 2),
            "rtcp_sender_reports": phase.sender_reports,
            "seconds": round(phase.seconds, 3),
        },
        evidence=(
            f"no RTP packet in {phase.seconds:.1f} s of mute (unmuted: "
            f"{unmuted.packets_per_second or 0:.1f}/s); {phase.sender_reports} RTCP "
            "sender report(s) and ICE checks may go on"
        ),
        **seen.common,
    )


STREAM_RULES: Final[tuple[StreamRule, ...]] = (
    audio_level_while_muted,
    constant_bit_rate_sizes,
    encoded_content_while_muted,
    decoded_audio_while_muted,
    new_stream_while_muted,
    media_continues_while_muted,
    no_media_while_muted,
)
"""The media rules, in the order their findings are listed; each sees what the earlier ones
found in the same stream and window (``media-continues-while-muted`` speaks only when no
content rule did). A new rule is a function of this shape added here."""


def server_side_findings(
    findings: list[Finding],
    timeline: Timeline,
    mutes: list[ScopedMute],
) -> list[Finding]:
    """``server-side-mute``: per window where the app told its server you were muted (a rule
    of scope ``server``; ``mutes`` on the capture's clock) and the sound still left."""
    out: list[Finding] = []
    severe: dict[int, list[Finding]] = {}
    for finding in findings:  # one pass: scanning every finding per window was quadratic
        if finding.leak == "content" and finding.severity in ("medium", "high"):
            severe.setdefault(finding.window, []).append(finding)
    for window in timeline.windows:
        content = severe.get(window.index)
        if not content:
            continue
        said = [
            m for m in mutes if m.start < window.end and (m.end is None or m.end > window.start)
        ]
        if not said:
            continue
        mute = said[0]
        top = max(
            content, key=lambda f: (f.correlation is not None and f.correlation.proven, f.rank)
        )
        value = (
            "null"
            if mute.value is None
            else repr(mute.value).replace("True", "true").replace("False", "false")
        )
        shown = sorted({f.title for f in content})
        out.append(
            Finding(
                id=SERVER_SIDE,
                severity="high",
                leak="content",
                title=SERVER_SIDE_TITLE,
                window=window.index,
                interval=top.interval,
                numbers={
                    "rule": mute.rule,
                    "path": mute.path,
                    "value": mute.value,
                    "signalled_at": mute.start,
                    "signalled_until": mute.end,
                    "endpoint": mute.endpoint,
                    "shown_by": sorted({f.id for f in content}),
                },
                evidence=(
                    f"the app told its server you were muted (rule {mute.rule!r}: "
                    f"{mute.path or 'the message'} = {value}"
                    + (f" to {mute.endpoint}" if mute.endpoint else "")
                    + f"), asking it to stop passing your voice on; but during mute window "
                    f"{window.index + 1} the microphone's sound still left the computer for the "
                    f"server: {'; '.join(shown)}"
                ),
                stream=top.stream,
                stream_label=top.stream_label,
                endpoint=mute.endpoint,
                first_frames=top.first_frames,
                first_messages=(mute.flow,) if mute.flow else (),
            )
        )
    return out


def _dtx(phase: PhaseStats) -> bool:
    return bool(phase.timing and phase.timing.dtx)


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _extra_labels(
    media: MediaMeasurement, info: StreamInfo, window: Window, timeline: Timeline
) -> npt.NDArray[np.int64]:
    """Which of the decryption's per-packet values fall in the window's muted part (their
    positions, labelled once per stream)."""
    return media.extra_window_rows(info.ssrc, window.index, timeline)


def telemetry_findings(telemetry: TelemetryMeasurement, timeline: Timeline) -> list[Finding]:
    """``volume-telemetry-while-muted``: per mute window and endpoint."""
    out: list[Finding] = []
    offset = telemetry.clock_offset
    for window in timeline.windows:
        messages = telemetry.in_window(window.index)
        by_endpoint: dict[str, list[Any]] = {}
        for message in messages:
            by_endpoint.setdefault(message.endpoint, []).append(message)
        for endpoint, chosen in sorted(by_endpoint.items()):
            values: dict[str, list[float | bool]] = {}
            for message in chosen:
                for path, value in message.fields:
                    values.setdefault(path, []).append(value)
            varying = [p for p, v in values.items() if len(set(v)) > 1]
            speaking = [p for p, v in values.items() if any(x is True for x in v)]
            high = bool(varying or speaking)
            times = np.array([m.t + offset for m in chosen], np.float64)
            best = max(values, key=lambda p: (len(set(values[p])), len(values[p])))
            series_times = np.array(
                [m.t + offset for m in chosen for p, _ in m.fields if p == best], np.float64
            )
            series_values = np.array(
                [float(v) for m in chosen for p, v in m.fields if p == best], np.float64
            )
            judged = window.judged(timeline.grace)
            seconds = judged[1] - judged[0] if judged else 0.0
            shown = ", ".join(
                f"{p} ({min(v):g}..{max(v):g})" if len(set(v)) > 1 else f"{p} = {v[0]!r}"
                for p, v in list(values.items())[:4]
            )
            inference = infer(chosen)
            out.append(
                Finding(
                    id="volume-telemetry-while-muted",
                    severity="high" if high else "medium",
                    leak="metadata",
                    title="volume telemetry was sent while muted",
                    window=window.index,
                    interval=(float(times.min()), float(times.max())),
                    numbers={
                        "messages": len(chosen),
                        "messages_per_second": round(len(chosen) / seconds, 3) if seconds else None,
                        "fields": {
                            p: {
                                "values": len(v),
                                "min": float(min(v)),
                                "max": float(max(v)),
                                "distinct": len(set(v)),
                            }
                            for p, v in sorted(values.items())
                        },
                        "varying_fields": sorted(varying),
                        "voice_activity_fields": sorted(speaking),
                        "observer_inference": inference_numbers(inference),
                    },
                    evidence=(
                        f"{len(chosen)} message(s) to {endpoint} while muted with volume-like "
                        f"fields: {shown}"
                        + ("; the values change while muted" if varying else "")
                        + ("; a voice-activity field says someone speaks" if speaking else "")
                        + f"; {inference_text(inference)}"
                    ),
                    endpoint=endpoint,
                    first_messages=tuple(m.reference for m in chosen[:FIRST]),
                    series=Series(f"telemetry {best}", series_times, series_values)
                    if len(set(values[best])) > 1
                    else None,
                )
            )
    return out


def strongest(findings: list[Finding]) -> Finding | None:
    """The finding to show first: content before metadata, then severity."""
    if not findings:
        return None
    order = {"content": 2, "metadata": 1, None: 0}
    return max(findings, key=lambda f: (order[f.leak], f.rank))
