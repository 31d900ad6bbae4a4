"""Media relayed through TLS (TURN over TLS, ``turns:``): channels of record sizes and timing.

Over TLS the relayed media cannot be decrypted, but each relayed packet travels as one TLS
application-data record of its own size at its own time (RFC 8656 section 12.5: a ChannelData
message, padded to 4 bytes over TCP, around one SRTP packet). A proxy that terminates the
browser's TLS (mitmproxy) may put several messages that reach it together into one record;
those few records are larger. So each direction of such a connection is a *channel*: its
records, their rate and gaps, and the media sizes they imply.

A TLS connection in the packet table (``kind`` TLS rows, one per record) is a relayed-media
connection when:

- its records have the **rhythm** of media: in both directions, at least
  :data:`MIN_ACTIVE_SECONDS` one-second stretches with :data:`MIN_RECORDS_PER_SECOND`
  application-data records or more each, and records that are small (median body at most
  :data:`MAX_MEDIAN_RECORD` bytes). Ordinary HTTPS is a burst of large records then idle; a
  WebSocket sends a few messages a second;
- or there is **TURN evidence** and the rhythm holds in one direction (the other may be muted
  or stopped): the client offered ALPN ``stun.turn`` (RFC 7443), the server listens on a TURN
  port (:data:`TURN_PORTS`: 3478, 5349), or the session's SDP has a ``typ relay`` candidate on
  the server's address (a relayed transport address is allocated on the TURN server). Port 443
  alone is no evidence: it is every HTTPS server's. The ``raddr`` of a relay candidate is the
  client's own (often 0.0.0.0, hidden), so it says nothing about the connection.

Sizes: the record body minus the TLS overhead (:func:`decoders.wire.tlshello.record_overhead`:
from the ServerHello's version and cipher suite when the capture has it, else the 24 bytes of
TLS 1.2 AES-GCM, as coturn answers) is the ChannelData message (4-byte header + packet + up to
3 bytes of padding). The estimated media payload subtracts further :data:`ASSUMED_MEDIA_OVERHEAD`
bytes: the ChannelData header (4), the RTP header (12), one 4-byte block of one-byte header
extensions holding the audio level (8 in all) and the SRTP auth tag of AES_CM_80 (10). Those are
assumptions (a service may negotiate more extensions, another SRTP profile); they shift every
size by the same amount and change no spread, entropy or rate. RTCP and STUN consent checks travel
in the same channel (a few per second at most); video in a BUNDLEd call would too: its large
frames make the size distribution bimodal (:attr:`TlsChannel.large_share`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from decoders.wire.demux import PacketKind
from decoders.wire.framing import TLS_APPLICATION_DATA
from decoders.wire.rowbuild import Rows
from decoders.wire.tlshello import ALPN_TURN, RecordOverhead, TlsHello, record_overhead

if TYPE_CHECKING:
    from decoders.session.sdp import SessionDescription

TURN_PORTS: Final = frozenset({3478, 5349})
"""IANA's ports for STUN/TURN (3478) and STUN/TURN over TLS (5349)."""
HTTPS_PORT: Final = 443
MIN_RECORDS_PER_SECOND: Final = 10
"""Application-data records in one second from which a second counts as active (audio: 50)."""
MIN_ACTIVE_SECONDS: Final = 3
MAX_MEDIAN_RECORD: Final = 1400
"""Median record body (bytes) above which a direction is bulk data, not packet-by-packet media."""
CHANNEL_DATA_HEADER: Final = 4
ASSUMED_MEDIA_OVERHEAD: Final = {
    "channel_data_header": CHANNEL_DATA_HEADER,
    "rtp_header": 12,
    "header_extensions": 8,
    "srtp_auth_tag": 10,
}
"""Bytes between a ChannelData message and its encoded media payload, as assumed (see above)."""
LARGE_PAYLOAD: Final = 400
"""Estimated payloads larger than this are video frames (Opus speech at 20 ms: 30-200 bytes)."""
VIDEO_SHARE: Final = 0.05
"""Share of large records from which a channel is said to mix video in."""


@dataclass(frozen=True, slots=True)
class TlsChannel:
    """One direction of a TLS connection recognised as relayed media (see the module docstring).

    Sizes are of application-data records: ``record_*`` the record body, ``payload_*`` the
    estimated media payload (record - TLS overhead - :data:`ASSUMED_MEDIA_OVERHEAD`).
    """

    index: int
    src: str
    src_port: int
    dst: str
    dst_port: int
    sender: str
    """``client`` (the TURN client: the browser, or the proxy acting for it) or ``server``."""
    records: int
    other_records: int
    """Handshake, alert and change-cipher-spec records (not media)."""
    first_ns: int
    last_ns: int
    first_frame: int
    records_per_second: float
    active_seconds: int
    record_min: int
    record_median: float
    record_max: int
    payload_median: float
    gap_median_ms: float | None
    gap_p90_ms: float | None
    gap_max_ms: float | None
    large_share: float
    tls_version: str | None
    overhead: RecordOverhead
    evidence: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.src}:{self.src_port} -> {self.dst}:{self.dst_port} (TLS relay)"

    @property
    def media_overhead(self) -> int:
        """Bytes subtracted from a record body to estimate the media payload."""
        return self.overhead.bytes + sum(ASSUMED_MEDIA_OVERHEAD.values())

    @property
    def video_suspected(self) -> bool:
        return self.large_share >= VIDEO_SHARE

    def payload_sizes(self, record_lengths: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        """Estimated media payloads of these record bodies (never below 0)."""
        sizes = record_lengths.astype(np.int64) - self.media_overhead
        return np.maximum(sizes, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "label": self.label,
            "src": self.src,
            "src_port": self.src_port,
            "dst": self.dst,
            "dst_port": self.dst_port,
            "sender": self.sender,
            "records": self.records,
            "other_records": self.other_records,
            "first": self.first_ns / 1e9,
            "last": self.last_ns / 1e9,
            "first_frame": self.first_frame,
            "records_per_second": round(self.records_per_second, 3),
            "active_seconds": self.active_seconds,
            "record_bytes": {
                "min": self.record_min,
                "median": self.record_median,
                "max": self.record_max,
            },
            "estimated_payload_median": self.payload_median,
            "gaps_ms": {
                "median": _round(self.gap_median_ms),
                "p90": _round(self.gap_p90_ms),
                "max": _round(self.gap_max_ms),
            },
            "large_share": round(self.large_share, 4),
            "video_suspected": self.video_suspected,
            "tls_version": self.tls_version,
            "overheads": {
                "tls_record": self.overhead.bytes,
                "tls_record_how": self.overhead.how,
                "tls_record_exact": self.overhead.exact,
                **ASSUMED_MEDIA_OVERHEAD,
                "assumed": "ChannelData, RTP, header extension and SRTP tag sizes are assumed",
            },
            "evidence": list(self.evidence),
        }


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 3)


_Key = tuple[int, int, int, int]


def _directions(rows: Rows) -> dict[_Key, npt.NDArray[np.int64]]:
    """Row indices of every TLS record, by direction (src id, src port, dst id, dst port)."""
    tls = np.nonzero(rows.kind_mask(PacketKind.TLS))[0]
    out: dict[_Key, npt.NDArray[np.int64]] = {}
    if tls.size == 0:
        return out
    keys = np.stack(
        [rows["src"][tls], rows["src_port"][tls], rows["dst"][tls], rows["dst_port"][tls]]
    ).astype(np.int64)
    unique, inverse = np.unique(keys, axis=1, return_inverse=True)
    inverse = inverse.reshape(-1)
    for column in range(unique.shape[1]):
        src, sport, dst, dport = (int(v) for v in unique[:, column])
        out[(src, sport, dst, dport)] = tls[inverse == column]
    return out


def _active_seconds(ts_ns: npt.NDArray[np.int64]) -> int:
    """One-second stretches (from the first record) with :data:`MIN_RECORDS_PER_SECOND`."""
    if ts_ns.size == 0:
        return 0
    seconds = (ts_ns - ts_ns.min()) // 1_000_000_000
    return int((np.bincount(seconds) >= MIN_RECORDS_PER_SECOND).sum())


def _rhythm(rows: Rows, sel: npt.NDArray[np.int64]) -> tuple[bool, int]:
    """(media rhythm?, active seconds) of one direction's application-data records."""
    if sel.size == 0:
        return False, 0
    active = _active_seconds(rows["timestamp_ns"][sel])
    small = float(np.median(rows["length"][sel])) <= MAX_MEDIAN_RECORD
    return active >= MIN_ACTIVE_SECONDS and small, active


def relay_addresses(sdp: SessionDescription | None) -> frozenset[str]:
    """Addresses of the SDP's ``typ relay`` candidates: where TURN servers allocated."""
    if sdp is None:
        return frozenset()
    return frozenset(c.address for m in sdp.media for c in m.candidates if c.type == "relay")


def _server_end(
    a: tuple[str, int], b: tuple[str, int], hellos: dict[tuple[str, int, str, int], TlsHello]
) -> tuple[tuple[str, int], str]:
    """Which end is the TLS server, and how that is known."""
    for (src, sport, dst, dport), hello in hellos.items():
        if {(src, sport), (dst, dport)} == {a, b}:
            server = (dst, dport) if hello.is_client else (src, sport)
            return server, "ClientHello" if hello.is_client else "ServerHello"
    for end in (a, b):
        if end[1] in TURN_PORTS or end[1] == HTTPS_PORT:
            return end, f"port {end[1]}"
    return (a if a[1] < b[1] else b), "the lower port"


def tls_channels(
    rows: Rows,
    sdp: SessionDescription | None = None,
    *,
    relay: Iterable[str] = (),
) -> tuple[list[TlsChannel], list[npt.NDArray[np.int64]]]:
    """The relayed-media channels of the packet table, and each one's application-data rows.

    ``relay`` adds relay-candidate addresses known from elsewhere (e.g. trickled candidates).
    """
    relays = relay_addresses(sdp) | frozenset(relay)
    addresses = rows.addresses
    directions = _directions(rows)
    channels: list[TlsChannel] = []
    groups: list[npt.NDArray[np.int64]] = []
    done: set[_Key] = set()
    for key in sorted(directions, key=lambda k: int(rows["frame"][directions[k][0]])):
        if key in done:
            continue
        back = (key[2], key[3], key[0], key[1])
        done.update({key, back})
        pair = [k for k in (key, back) if k in directions]
        app = {
            k: directions[k][rows["payload_type"][directions[k]] == TLS_APPLICATION_DATA]
            for k in pair
        }
        rhythm = {k: _rhythm(rows, app[k]) for k in pair}
        a = (addresses[key[0]], key[1])
        b = (addresses[key[2]], key[3])
        server, server_how = _server_end(a, b, rows.tls_hellos)
        evidence = _turn_evidence(rows.tls_hellos, a, b, server, relays)
        both = len(pair) == 2 and all(r for r, _ in rhythm.values())
        one = any(r for r, _ in rhythm.values())
        if not (both or (evidence and one)):
            continue
        if both:
            active = min(n for _, n in rhythm.values())
            evidence.append(
                f"record rhythm: >= {MIN_RECORDS_PER_SECOND} small records/s both ways "
                f"in {active} one-second stretches"
            )
        evidence.append(f"server end {server[0]}:{server[1]} (from the {server_how})")
        server_hello = next(
            (h for k, h in rows.tls_hellos.items() if not h.is_client and (k[0], k[1]) == server),
            None,
        )
        overhead = record_overhead(server_hello)
        for k in pair:
            if app[k].size == 0:
                continue
            channels.append(
                _channel(rows, k, directions[k], app[k], server, overhead, server_hello, evidence)
            )
            groups.append(app[k])
    channels = [_reindexed(c, i) for i, c in enumerate(channels)]
    return channels, groups


def _turn_evidence(
    hellos: dict[tuple[str, int, str, int], TlsHello],
    a: tuple[str, int],
    b: tuple[str, int],
    server: tuple[str, int],
    relays: frozenset[str],
) -> list[str]:
    evidence: list[str] = []
    client = a if server == b else b
    hello = hellos.get((client[0], client[1], server[0], server[1]))
    if hello is not None and ALPN_TURN in hello.alpn:
        evidence.append(f"the ClientHello offers ALPN {ALPN_TURN!r} (RFC 7443)")
    if server[1] in TURN_PORTS:
        evidence.append(f"the server listens on TURN port {server[1]}")
    if server[0] in relays:
        evidence.append(f"the SDP has a 'typ relay' candidate on the server's address {server[0]}")
    return evidence


def _channel(
    rows: Rows,
    key: _Key,
    every: npt.NDArray[np.int64],
    app: npt.NDArray[np.int64],
    server: tuple[str, int],
    overhead: RecordOverhead,
    server_hello: TlsHello | None,
    evidence: Sequence[str],
) -> TlsChannel:
    src, dst = rows.addresses[key[0]], rows.addresses[key[2]]
    ts = rows["timestamp_ns"][app].astype(np.int64)
    lengths = rows["length"][app].astype(np.int64)
    span = (int(ts.max()) - int(ts.min())) / 1e9
    gaps = np.diff(ts).astype(np.float64) / 1e6
    median_gap = p90_gap = max_gap = None
    if gaps.size:
        median_gap, p90_gap = (float(x) for x in np.percentile(gaps, [50, 90]))
        max_gap = float(gaps.max())
    channel = TlsChannel(
        index=0,
        src=src,
        src_port=key[1],
        dst=dst,
        dst_port=key[3],
        sender="server" if (src, key[1]) == server else "client",
        records=int(app.size),
        other_records=int(every.size - app.size),
        first_ns=int(ts.min()),
        last_ns=int(ts.max()),
        first_frame=int(rows["frame"][app[0]]),
        records_per_second=app.size / span if span > 0 else 0.0,
        active_seconds=_active_seconds(ts),
        record_min=int(lengths.min()),
        record_median=float(np.median(lengths)),
        record_max=int(lengths.max()),
        payload_median=0.0,
        gap_median_ms=median_gap,
        gap_p90_ms=p90_gap,
        gap_max_ms=max_gap,
        large_share=0.0,
        tls_version=server_hello.version_name if server_hello is not None else None,
        overhead=overhead,
        evidence=tuple(evidence),
    )
    payloads = channel.payload_sizes(lengths)
    from dataclasses import replace

    return replace(
        channel,
        payload_median=float(np.median(payloads)),
        large_share=float((payloads > LARGE_PAYLOAD).mean()),
    )


def _reindexed(channel: TlsChannel, index: int) -> TlsChannel:
    from dataclasses import replace

    return replace(channel, index=index)


__all__ = [
    "ASSUMED_MEDIA_OVERHEAD",
    "LARGE_PAYLOAD",
    "MAX_MEDIAN_RECORD",
    "MIN_ACTIVE_SECONDS",
    "MIN_RECORDS_PER_SECOND",
    "TURN_PORTS",
    "TlsChannel",
    "relay_addresses",
    "tls_channels",
]
