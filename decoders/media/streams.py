"""RTP streams and their statistics, as Wireshark's RTP Streams window shows them.

A stream is (source address, source port, destination address, destination port, SSRC).
Everything here works on the columnar packet table (:class:`decoders.wire.rowbuild.Rows`)
and uses capture timestamps only, never the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from decoders.session.sdp import SessionDescription
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

    @property
    def ssrc_hex(self) -> str:
        return f"0x{self.ssrc:08x}"


def _stream_groups(rows: Rows, mask: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.int64]]:
    """Indices of ``rows`` per stream key, each in capture order, streams by first frame.

    Streams are few and packets many: packets are first grouped by SSRC (its distinct values
    found on a sample, every packet placed by binary search, then an O(n) stable sort of the
    small group numbers); a group whose addresses or ports vary is split by the full key.
    """
    idx = np.nonzero(mask)[0]
    if idx.size == 0:
        return []
    c = rows.columns
    ssrc = c["ssrc"][idx]
    keys = np.unique(ssrc[:: max(1, ssrc.size // 4096)])
    where = np.minimum(np.searchsorted(keys, ssrc), keys.size - 1)
    if not bool(np.all(keys[where] == ssrc)):
        keys = np.unique(ssrc)
        where = np.searchsorted(keys, ssrc)
    small = where.astype(np.uint16) if keys.size < 65536 else where
    order = np.argsort(small, kind="stable")
    counts = np.bincount(where, minlength=keys.size)
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
    ts_step = _wrapped_steps(rtp_timestamp)
    d = np.abs(np.diff(arrival) - ts_step) / 16.0
    a = 15.0 / 16.0
    block = 64
    m = -(-d.size // block)
    flat = np.zeros(m * block)
    flat[: d.size] = d
    x = flat.reshape(m, block)
    k = np.arange(block)
    powers = np.where(k[None, :] >= k[:, None], a ** (k[None, :] - k[:, None]), 0.0)
    local = x @ powers  # each block's response starting from J = 0
    ends = local[:, -1]
    carry = np.zeros(m)  # J just before each block
    damp = a**block
    for back in range(1, 11):
        carry[back:] += ends[:-back] * damp ** (back - 1)
    decay = a ** (k + 1)
    j = (local + carry[:, None] * decay[None, :]).reshape(-1)[: d.size]
    out = np.zeros(n)
    out[1:] = j * (1000.0 / clock_rate)
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


def stream_table(
    rows: Rows,
    sdp: SessionDescription | None = None,
    *,
    srtp_auth_tag_length: int | None = None,
) -> list[StreamStats]:
    """Per-stream statistics over every well-formed RTP row of ``rows``."""
    c = rows.columns
    rtp_mask = rows.kind_mask(PacketKind.RTP) & ~c["malformed"]
    negotiated = {}
    if sdp is not None:
        from decoders.session.sdp import payload_types

        negotiated = payload_types(sdp)
    out: list[StreamStats] = []
    for g in _stream_groups(rows, rtp_mask):
        ts = c["timestamp_ns"][g].astype(np.int64)
        seq = c["sequence_number"][g]
        rtp_ts = c["rtp_timestamp"][g]
        pt_counts = np.bincount(c["payload_type"][g], minlength=128)
        values = np.nonzero(pt_counts)[0]
        main_pt = int(np.argmax(pt_counts))
        codec: str | None = None
        clock: int | None = None
        media = "unknown"
        source = "unknown"
        if main_pt in negotiated:
            kind, entry = negotiated[main_pt]
            codec, clock, media, source = entry.name, entry.clock_rate, kind, "sdp"
        elif main_pt in STATIC_PAYLOAD_TYPES:
            codec, clock, media = STATIC_PAYLOAD_TYPES[main_pt]
            source = "static"
        if clock is None:
            # also used for timestamps of dynamic payload types with no SDP
            clock = _guess_clock_rate(ts, rtp_ts)
            if clock is not None:
                source = "behaviour"
        plen = c["payload_length"][g].astype(np.int64)
        if media == "unknown" and clock is not None:
            media = "video" if clock == 90000 else "audio"
            if codec is None and clock == 48000 and median_of_counts(plen) < 400:
                codec = "opus?"
        ext = extended_sequence(seq)
        low = int(ext.min())
        expected = int(ext.max()) - low + 1
        seen = np.zeros(expected, np.bool_)
        seen[ext - low] = True
        unique = int(np.count_nonzero(seen))
        steps = np.diff(ext)
        running_max = np.maximum.accumulate(ext)
        out_of_order = int((ext[1:] < running_max[:-1]).sum())
        duration = (int(ts[-1]) - int(ts[0])) / 1e9
        jitter = interarrival_jitter(ts, rtp_ts, clock) if clock else None
        levels = c["audio_level"][g].astype(np.int64)
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
                clock_rate=clock,
                packets=n,
                first_ns=int(ts[0]),
                last_ns=int(ts[-1]),
                duration_s=duration,
                packets_per_second=(n - 1) / duration if duration > 0 else 0.0,
                bytes_per_second=float(c["length"][g].astype(np.int64).sum()) / duration
                if duration > 0
                else 0.0,
                lost=max(0, expected - unique),
                duplicates=n - unique,
                out_of_order=out_of_order,
                sequence_errors=int((steps != 1).sum()),
                max_delta_ms=float(np.diff(ts).max() / 1e6) if n > 1 else 0.0,
                max_jitter_ms=float(jitter.max()) if jitter is not None else None,
                mean_jitter_ms=float(jitter[1:].mean()) if jitter is not None and n > 1 else None,
                payload_min=int(plen.min()),
                payload_median=median_of_counts(plen),
                payload_max=int(plen.max()),
                audio_level_packets=int(has_level.sum()),
                audio_level_median=median_of_counts(levels[has_level]) if has_level.any() else None,
                srtp_auth_tag_length=srtp_auth_tag_length,
                first_frame=int(c["frame"][g[0]]),
            )
        )
    return out
