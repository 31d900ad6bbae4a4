"""RTP streams and their statistics, as Wireshark's RTP Streams window shows them.

A stream is (source address, source port, destination address, destination port, SSRC).
Everything here works on the columnar packet table (:class:`decoders.wire.rowbuild.Rows`)
and uses capture timestamps only, never the wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from decoders.session.sdp import Codec, SessionDescription, SsrcRole
from decoders.media.roles import Behaviour, StreamRole, behaviour, role_from_sdp, roles_by_behaviour
from decoders.wire.demux import PacketKind
from decoders.wire.rowbuild import TRANSPORT_CODES, TUNNEL_CODES, Rows

KNOWN_CLOCK_RATES: Final = (8000, 16000, 32000, 44100, 48000, 90000)
#: Static RTP payload types (RFC 3551) - codec, clock rate, kind
STATIC_PAYLOAD_TYPES: Final = {
    0: ("PCMU", 8000, "audio"),
    3: ("GSM", 8000, "audio"),
    4: ("G723", 8000, "audio"),
    8: ("PCMA", 8000, "audio"),
    9: ("G722", 8000, "audio"),
    13: ("CN", 8000, "audio"),
    18: ("G729", 8000, "audio"),
    26: ("JPEG", 90000, "video"),
    34: ("H263", 90000, "video"),
}


@dataclass(frozen=True, slots=True)
class StreamStats:
    """One row of the stream table; names follow Wireshark's RTP Streams columns."""

    src: str
    src_port: int
    dst: str
    dst_port: int
    ssrc: int
    transport: str
    tunnel: str | None
    payload_types: tuple[int, ...]
    codec: str | None
    codec_source: str  # "sdp", "static", "behaviour" or "unknown"
    media: str  # "audio", "video" or "unknown"
    role: str  # "media", "rtx", "fec", "red" or "unknown" (decoders.media.roles)
    role_source: str  # "sdp", "static", "behaviour" or "unknown"
    role_evidence: str  # the SDP line or the behaviour rule that named it
    clock_rate: int | None
    packets: int
    first_ns: int
    last_ns: int
    duration_s: float
    packets_per_second: float
    bytes_per_second: float
    lost: int
    duplicates: int
    out_of_order: int
    sequence_errors: int
    max_delta_ms: float
    max_jitter_ms: float | None
    mean_jitter_ms: float | None
    payload_min: int
    payload_median: float
    payload_max: int
    audio_level_packets: int
    audio_level_median: float | None
    srtp_auth_tag_length: int | None
    first_frame: int
    legs: int = 1
    """1 for a row of the stream table; more for one SSRC joined across 5-tuples
    (:func:`logical_streams`)."""

    @property
    def ssrc_hex(self) -> str:
        return f"0x{self.ssrc:08x}"

    @property
    def carries_microphone(self) -> bool:
        """Not video, not a retransmission or FEC stream (audio RED carries the audio)."""
        return self.media != "video" and self.role not in ("rtx", "fec")


def stream_groups(rows: Rows) -> list[npt.NDArray[np.int64]]:
    """Indices of the well-formed RTP rows of ``rows`` per stream key, each in capture order,
    streams by first frame: the packets of each row of :func:`stream_table`, in its order.

    Streams are few and packets many: packets are first grouped by SSRC (its distinct values
    found on a sample, every packet placed by binary search, then an O(n) stable sort of the
    small group numbers); a group whose addresses or ports vary is split by the full key.
    """
    c = rows.columns
    idx = np.nonzero(rows.kind_mask(PacketKind.RTP) & ~c["malformed"])[0]
    if idx.size == 0:
        return []
    ssrc = c["ssrc"][idx]
    keys = np.unique(ssrc[:: max(1, ssrc.size // 4096)])
    where = np.minimum(np.searchsorted(keys, ssrc), keys.size - 1)
    if not bool(np.all(keys[where] == ssrc)):
        keys = np.unique(ssrc)
        where = np.searchsorted(keys, ssrc)
    counts = np.bincount(where, minlength=keys.size)
    small = where.astype(np.uint16) if keys.size < 65536 else where
    del ssrc, where  # packet-long: gone before the sort's own
    order = np.argsort(small, kind="stable")
    del small
    key_columns = ("src", "src_port", "dst", "dst_port", "transport")
    groups: list[npt.NDArray[np.int64]] = []
    for part in np.split(order, np.cumsum(counts)[:-1]):
        members = idx[part]
        if all(bool((c[k][members] == c[k][members[0]]).all()) for k in key_columns):
            groups.append(members)
            continue
        exact = np.stack([c[k][members].astype(np.int64) for k in key_columns], axis=1)
        _, inverse = np.unique(exact, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        for k in range(int(inverse.max()) + 1):
            groups.append(members[inverse == k])
    groups.sort(key=lambda g: int(rows.columns["frame"][g[0]]))
    return groups


LEG_OVERLAP_NS: Final = 2_000_000_000
"""Two legs of one SSRC from different addresses still join when they overlap this little
(packets in flight on the old path while the new one starts)."""


def legs_join(a: StreamStats, b: StreamStats) -> bool:
    """Are ``a`` and ``b`` legs of one logical stream: the same SSRC from the same sender?

    The sender can change its port, its transport (ICE-TCP then UDP), its candidate pair (an
    ICE restart) or go through a relay (TURN), but it sends one SSRC at a time: the same SSRC
    joins when it comes from the same address, or when the legs follow each other in time.
    The same SSRC coming back the other way (an echo) never joins.
    """
    if a.ssrc != b.ssrc:
        return False
    if (a.src, a.src_port, a.dst, a.dst_port) == (b.dst, b.dst_port, b.src, b.src_port):
        return False
    overlap = min(a.last_ns, b.last_ns) - max(a.first_ns, b.first_ns)
    return a.src == b.src or overlap < LEG_OVERLAP_NS


def joined_legs(streams: Sequence[StreamStats]) -> list[list[int]]:
    """Indices of ``streams`` per logical stream (:func:`legs_join` with every earlier leg)."""
    joined: list[list[int]] = []
    for index, stats in enumerate(streams):
        home = next(
            (legs for legs in joined if all(legs_join(streams[k], stats) for k in legs)), None
        )
        if home is None:
            joined.append([index])
        else:
            home.append(index)
    return joined


def leg_note(streams: Sequence[StreamStats], legs: Sequence[int]) -> str:
    """``SSRC 0x...: 2 legs joined (udp a:p -> b:q, turn/udp ...)``, for the stream table."""

    def leg(s: StreamStats) -> str:
        how = f"{s.tunnel}/{s.transport}" if s.tunnel else s.transport
        return f"{how} {s.src}:{s.src_port} -> {s.dst}:{s.dst_port}, {s.packets} packets"

    described = "; ".join(leg(streams[k]) for k in legs)
    return f"SSRC {streams[legs[0]].ssrc_hex}: {len(legs)} legs joined ({described})"


def logical_streams(
    streams: Sequence[StreamStats], groups: Sequence[npt.NDArray[np.int64]]
) -> tuple[list[StreamStats], list[npt.NDArray[np.int64]]]:
    """One stream per SSRC and sender across its legs (:func:`legs_join`), for the audit.

    ``streams`` are the stream table's rows and ``groups`` their packets' row indices, in the
    same order. A joined stream keeps its first leg's addresses, takes media, codec and role
    from its leg with the most packets, and counts its ``legs``; its packets are all its legs'
    packets in capture order. A stream of one leg is returned as it is.
    """
    out_streams: list[StreamStats] = []
    out_groups: list[npt.NDArray[np.int64]] = []
    for legs in joined_legs(streams):
        if len(legs) == 1:
            out_streams.append(streams[legs[0]])
            out_groups.append(groups[legs[0]])
            continue
        first = streams[legs[0]]
        main = max((streams[k] for k in legs), key=lambda leg: leg.packets)
        out_streams.append(
            replace(
                main,
                src=first.src,
                src_port=first.src_port,
                dst=first.dst,
                dst_port=first.dst_port,
                transport=first.transport,
                tunnel=first.tunnel,
                packets=sum(streams[k].packets for k in legs),
                first_ns=min(streams[k].first_ns for k in legs),
                last_ns=max(streams[k].last_ns for k in legs),
                first_frame=min(streams[k].first_frame for k in legs),
                legs=len(legs),
            )
        )
        out_groups.append(np.sort(np.concatenate([groups[k] for k in legs])))
    return out_streams, out_groups


def median_of_counts(values: npt.NDArray[Any]) -> float:
    """The median of small non-negative integers (sizes, levels) by counting, in O(n)."""
    counts = np.cumsum(np.bincount(values))
    n = int(counts[-1])
    low = int(np.searchsorted(counts, (n - 1) // 2, side="right"))
    high = int(np.searchsorted(counts, n // 2, side="right"))
    return (low + high) / 2


def extended_sequence(seq: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """Unwrap 16-bit sequence numbers (RFC 3550 appendix A.1) relative to the first."""
    s = seq.astype(np.int64)
    if s.size == 0:
        return s
    step = ((np.diff(s) + 32768) & 0xFFFF) - 32768
    out = np.empty_like(s)
    out[0] = s[0]
    np.cumsum(step, out=out[1:])
    out[1:] += s[0]
    return out


def _wrapped_steps(rtp_timestamp: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Differences of 32-bit RTP timestamps, taking wrap-around into account."""
    wide = rtp_timestamp.astype(np.int64)
    diff: npt.NDArray[np.int64] = np.subtract(wide[1:], wide[:-1])
    return ((diff + 2**31) & 0xFFFFFFFF) - 2**31


def interarrival_jitter(
    arrival_ns: npt.NDArray[np.int64], rtp_timestamp: npt.NDArray[np.integer], clock_rate: int
) -> npt.NDArray[np.float64]:
    """RFC 3550 section 6.4.1 jitter after each packet, in milliseconds.

    J(i) = J(i-1) + (|D(i-1,i)| - J(i-1)) / 16 is the first-order filter y = a*y + x with
    a = 15/16, x = |D|/16. It is evaluated in blocks of 64 packets: one matrix product gives
    each block's response from rest, and the state carried into a block is the sum of the
    earlier blocks' end values, each damped by a**64 per block (ten blocks back is below
    1e-17 of the value, so the sum stops there). Same numbers as the packet loop, no loop.
    """
    n = arrival_ns.size
    if n < 2:
        return np.zeros(n)
    arrival = arrival_ns.astype(np.float64) * (clock_rate / 1e9)
    d = np.diff(arrival)
    del arrival  # packet-long arrays go as soon as they are used: a long call's are large
    d -= _wrapped_steps(rtp_timestamp)
    a = 15.0 / 16.0
    block = 64
    m = -(-d.size // block)
    flat = np.zeros(m * block)
    np.divide(np.abs(d, out=d), 16.0, out=flat[: d.size])
    del d
    k = np.arange(block)
    powers = np.where(k[None, :] >= k[:, None], a ** (k[None, :] - k[:, None]), 0.0)
    local = flat.reshape(m, block) @ powers  # each block's response starting from J = 0
    del flat
    ends = local[:, -1].copy()
    carry = np.zeros(m)  # J just before each block
    damp = a**block
    for back in range(1, 11):
        carry[back:] += ends[:-back] * damp ** (back - 1)
    decay = a ** (k + 1)
    local += carry[:, None] * decay[None, :]
    out = np.zeros(n)
    np.multiply(local.reshape(-1)[: n - 1], 1000.0 / clock_rate, out=out[1:])
    return out


def _guess_clock_rate(
    arrival_ns: npt.NDArray[np.int64], rtp_ts: npt.NDArray[np.integer]
) -> int | None:
    """RTP clock rate from timestamp advance over capture time, snapped to a known rate."""
    if arrival_ns.size < 3:
        return None
    span_s = (int(arrival_ns[-1]) - int(arrival_ns[0])) / 1e9
    steps = _wrapped_steps(rtp_ts)
    advance = int(steps[np.abs(steps) < 2**30].sum())
    if span_s <= 0 or advance <= 0:
        return None
    rate = advance / span_s
    best = min(KNOWN_CLOCK_RATES, key=lambda r: abs(np.log(rate / r)))
    return best if abs(np.log(rate / best)) < 0.25 else None


@dataclass(frozen=True, slots=True)
class SequenceCounts:
    """What a stream's sequence numbers say (Wireshark's Lost, Sequence errors)."""

    unique: int
    lost: int
    out_of_order: int
    sequence_errors: int


def sequence_counts(seq: npt.NDArray[np.integer]) -> SequenceCounts:
    """Count distinct, lost, out-of-order and non-consecutive packets of one stream (its own
    function: the packet-long temporaries go before the next statistic is computed)."""
    ext = extended_sequence(seq)
    low = int(ext.min())
    expected = int(ext.max()) - low + 1
    seen = np.zeros(expected, np.bool_)
    seen[ext - low] = True
    unique = int(np.count_nonzero(seen))
    del seen
    running_max = np.maximum.accumulate(ext)
    out_of_order = int((ext[1:] < running_max[:-1]).sum())
    del running_max
    errors = int((np.diff(ext) != 1).sum())
    return SequenceCounts(unique, max(0, expected - unique), out_of_order, errors)


def jitter_summary(
    arrival_ns: npt.NDArray[np.int64], rtp_timestamp: npt.NDArray[np.integer], clock_rate: int
) -> tuple[float, float | None]:
    """The largest and the mean RFC 3550 jitter (ms) of one stream (the mean after the first
    packet; None for a single packet)."""
    jitter = interarrival_jitter(arrival_ns, rtp_timestamp, clock_rate)
    return float(jitter.max()), float(jitter[1:].mean()) if jitter.size > 1 else None


def stream_table(
    rows: Rows,
    sdp: SessionDescription | None = None,
    *,
    srtp_auth_tag_length: int | None = None,
    groups: Sequence[npt.NDArray[np.int64]] | None = None,
) -> list[StreamStats]:
    """Per-stream statistics over every well-formed RTP row of ``rows``; ``groups`` are those
    rows per stream (:func:`stream_groups`), when the caller has them already."""
    c = rows.columns
    negotiated: dict[int, tuple[str, Codec]] = {}
    announced: dict[int, SsrcRole] = {}
    if sdp is not None:
        from decoders.session.sdp import payload_types, ssrc_roles

        negotiated = payload_types(sdp)
        announced = ssrc_roles(sdp)
    out: list[StreamStats] = []
    said: list[StreamRole | None] = []
    shown: list[Behaviour] = []
    for g in stream_groups(rows) if groups is None else groups:
        ts = c["timestamp_ns"][g].astype(np.int64, copy=False)
        rtp_ts = c["rtp_timestamp"][g]
        pt_counts = np.bincount(c["payload_type"][g], minlength=128)
        values = np.nonzero(pt_counts)[0]
        main_pt = int(np.argmax(pt_counts))
        codec: str | None = None
        clock: int | None = None
        media = "unknown"
        source = "unknown"
        ssrc = int(c["ssrc"][g[0]])
        role = role_from_sdp(ssrc, main_pt, announced, negotiated)
        if main_pt in negotiated:
            kind, entry = negotiated[main_pt]
            codec, clock, media, source = entry.name, entry.clock_rate, kind, "sdp"
        elif main_pt in STATIC_PAYLOAD_TYPES:
            codec, clock, media = STATIC_PAYLOAD_TYPES[main_pt]
            source = "static"
            role = role or StreamRole(media, "media", "static", f"RFC 3551 payload type {main_pt}")
        if clock is None:
            # also used for timestamps of dynamic payload types with no SDP
            clock = _guess_clock_rate(ts, rtp_ts)
            if clock is not None:
                source = "behaviour"
        # one packet-long statistic after the other: a long call's arrays are large
        counts = sequence_counts(c["sequence_number"][g])
        max_jitter, mean_jitter = jitter_summary(ts, rtp_ts, clock) if clock else (None, None)
        plen = c["payload_length"][g].astype(np.int64)
        said.append(role)
        path = (
            rows.addresses[int(c["src"][g[0]])],
            int(c["src_port"][g[0]]),
            rows.addresses[int(c["dst"][g[0]])],
            int(c["dst_port"][g[0]]),
        )
        shown.append(behaviour(ssrc, ts, rtp_ts, plen, clock, path))
        if media == "unknown" and clock is not None:
            media = "video" if clock == 90000 else "audio"
            if codec is None and clock == 48000 and median_of_counts(plen) < 400:
                codec = "opus?"
        payload_min, payload_median, payload_max = (
            int(plen.min()),
            median_of_counts(plen),
            int(plen.max()),
        )
        del plen
        duration = (int(ts[-1]) - int(ts[0])) / 1e9
        levels = c["audio_level"][g]
        has_level = levels >= 0
        n = int(g.size)
        out.append(
            StreamStats(
                src=rows.addresses[int(c["src"][g[0]])],
                src_port=int(c["src_port"][g[0]]),
                dst=rows.addresses[int(c["dst"][g[0]])],
                dst_port=int(c["dst_port"][g[0]]),
                ssrc=int(c["ssrc"][g[0]]),
                transport=TRANSPORT_CODES[int(c["transport"][g[0]])],
                tunnel=TUNNEL_CODES[int(c["tunnel"][g[0]])],
                payload_types=tuple(int(v) for v in values),
                codec=codec,
                codec_source=source,
                media=media,
                role="unknown",
                role_source="unknown",
                role_evidence="",
                clock_rate=clock,
                packets=n,
                first_ns=int(ts[0]),
                last_ns=int(ts[-1]),
                duration_s=duration,
                packets_per_second=(n - 1) / duration if duration > 0 else 0.0,
                bytes_per_second=float(c["length"][g].sum(dtype=np.int64)) / duration
                if duration > 0
                else 0.0,
                lost=counts.lost,
                duplicates=n - counts.unique,
                out_of_order=counts.out_of_order,
                sequence_errors=counts.sequence_errors,
                max_delta_ms=float(np.diff(ts).max() / 1e6) if n > 1 else 0.0,
                max_jitter_ms=max_jitter,
                mean_jitter_ms=mean_jitter if n > 1 else None,
                payload_min=payload_min,
                payload_median=payload_median,
                payload_max=payload_max,
                audio_level_packets=int(has_level.sum()),
                audio_level_median=median_of_counts(levels[has_level]) if has_level.any() else None,
                srtp_auth_tag_length=srtp_auth_tag_length,
                first_frame=int(c["frame"][g[0]]),
            )
        )
    return _named(out, said, shown)


def _named(
    streams: list[StreamStats], said: list[StreamRole | None], shown: list[Behaviour]
) -> list[StreamStats]:
    """Each stream's role: the SDP's or the static payload type's word, else the behaviour
    rules' (which need every stream: a repair stream is told by the video it follows)."""
    inferred = roles_by_behaviour(shown) if not all(said) else [None] * len(streams)
    out = []
    for stats, sdp_role, behaviour_role in zip(streams, said, inferred, strict=True):
        role = sdp_role or behaviour_role
        if role is None:
            out.append(stats)
            continue
        media = role.media if role.media != "unknown" else stats.media
        codec = stats.codec
        if role.source == "behaviour" and role.role == "rtx" and codec is None:
            codec = "rtx?"
        out.append(
            replace(
                stats,
                media=media,
                codec=codec,
                role=role.role,
                role_source=role.source,
                role_evidence=role.evidence,
            )
        )
    return out
