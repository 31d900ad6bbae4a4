"""Captures of media relayed through TLS (TURN over TLS), with HTTPS and WebSocket beside it.

The TLS handshakes are real (Python's ssl client and server, :mod:`helpers.tls_bytes`), so the
hellos carry a real version, cipher suite and ALPN. Each relayed packet then becomes one
application-data record of its ChannelData message (4-byte header, an SRTP packet of 12 + 8 +
payload + 10 bytes, padding to 4) plus the overhead of the negotiated version (24 for TLS 1.2
AES-GCM, 17 for TLS 1.3), at 50 packets a second as Chromium sends Opus. The record bodies are
random: they are encrypted on the wire.
"""

from __future__ import annotations

import random
import ssl
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Final, Literal

from helpers.tls_bytes import tls_connection

from decoders.wire import pcapwriter
from decoders.wire.capture import LINKTYPE_ETHERNET
from decoders.wire.framing import TlsRecordFramer

START_NS: Final = 1_790_000_000_000_000_000
CLIENT: Final = "10.77.0.1"
TURN_SERVER: Final = "10.77.0.3"
WEB_SERVER: Final = "10.77.0.9"
Muted = Literal["silence", "speech", "nothing", "dtx"]


@dataclass
class RelayTruth:
    muted: tuple[float, float]
    """The mute window (epoch seconds)."""
    records: dict[str, int] = field(default_factory=dict)
    """Application-data records per direction label ``src:port->dst:port``."""


def _records(data: bytes) -> list[bytes]:
    return TlsRecordFramer(synced=True).feed(data)


class _Writer:
    def __init__(self, writer: pcapwriter.PcapngWriter, interface: int) -> None:
        self.writer, self.interface = writer, interface
        self.frames: list[tuple[int, bytes]] = []
        self.sequence: dict[tuple[str, int, str, int], int] = {}

    def send(self, ts: int, src: str, sport: int, dst: str, dport: int, data: bytes) -> None:
        key = (src, sport, dst, dport)
        seq = self.sequence.get(key, 1000)
        self.sequence[key] = (seq + len(data)) & 0xFFFFFFFF
        frame = pcapwriter.build_tcp_segment(
            LINKTYPE_ETHERNET, src, sport, dst, dport, data, sequence_number=seq
        )
        self.frames.append((ts, frame))

    def close(self) -> None:
        for ts, frame in sorted(self.frames, key=lambda item: item[0]):
            self.writer.write(self.interface, ts, frame)


def _app_record(body_length: int, rng: random.Random) -> bytes:
    return struct.pack("!BHH", 23, 0x0303, body_length) + rng.randbytes(body_length)


def _channel_data_length(payload: int) -> int:
    packet = 12 + 8 + payload + 10
    return 4 + packet + (-packet % 4)


def write_relay_capture(
    fileobj: BinaryIO,
    *,
    muted: Muted = "silence",
    seconds: tuple[float, float, float] = (4.0, 6.0, 4.0),
    version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    alpn: list[str] | None = None,
    port: int = 5349,
    peer_talks: bool = True,
    https: bool = True,
    websocket: bool = True,
    seed: int = 3,
) -> RelayTruth:
    """One call relayed over TLS from :data:`CLIENT` to the TURN server, muted in the middle.

    ``muted``: what the client sends in the mute window: one repeated silence frame (35 bytes,
    Chromium's ``track.enabled = false``), speech sizes (a UI-only mute), nothing
    (``replaceTrack(null)``), or Opus DTX (a 1-byte frame every 400 ms).
    """
    rng = random.Random(seed)  # sizes and timing
    noise = random.Random(seed + 1)  # encrypted bytes
    writer = pcapwriter.PcapngWriter(fileobj)
    out = _Writer(writer, writer.add_interface(LINKTYPE_ETHERNET, ts_resolution_exp10=9))
    overhead = 17 if version == ssl.TLSVersion.TLSv1_3 else 24
    mute_from = START_NS + int(seconds[0] * 1e9)
    mute_to = mute_from + int(seconds[1] * 1e9)
    end = mute_to + int(seconds[2] * 1e9)
    truth = RelayTruth((mute_from / 1e9, mute_to / 1e9))
    client_port = 41234
    up = (CLIENT, client_port, TURN_SERVER, port)
    down = (TURN_SERVER, port, CLIENT, client_port)
    hello_up, hello_down = tls_connection([], version=version, alpn=alpn)
    ts = START_NS - 50_000_000
    for record in _records(hello_up):
        out.send(ts, *up, record)
        ts += 1_000_000
    for record in _records(hello_down):
        out.send(ts, *down, record)
        ts += 1_000_000
    counts = {up: 0, down: 0}
    for direction, talks in ((up, True), (down, peer_talks)):
        t = START_NS + (0 if direction == up else 7_000_000)
        size = 80
        next_control = START_NS + 500_000_000
        while t < end:
            in_mute = direction == up and mute_from <= t < mute_to
            payload: int | None
            if direction == up and in_mute:
                payload = {"silence": 35, "speech": None, "nothing": -1, "dtx": 1}[muted]
            else:
                payload = None
            if payload is None:
                size = min(120, max(35, size + rng.randrange(-14, 15)))
                payload = size if talks else -1
            dtx_skip = muted == "dtx" and in_mute and (t - mute_from) % 400_000_000 >= 20_000_000
            if payload >= 0 and not dtx_skip:
                jitter = rng.randrange(0, 1_500_000)
                body = _channel_data_length(payload) + overhead
                out.send(t + jitter, *direction, _app_record(body, noise))
                counts[direction] += 1
            if t >= next_control:  # RTCP or a STUN consent check, once a second
                out.send(t + 5_000_000, *direction, _app_record(4 + 64 + overhead, noise))
                counts[direction] += 1
                next_control += 1_000_000_000
            t += 20_000_000
    if https:
        _https(out, noise, START_NS + 1_000_000_000, 443, 50_001)
        _https(out, noise, mute_from + 2_000_000_000, 443, 50_002)
    if websocket:
        _websocket(out, noise, START_NS, end)
    for (src, sport, dst, dport), n in counts.items():
        truth.records[f"{src}:{sport}->{dst}:{dport}"] = n
    out.close()
    return truth


def _https(out: _Writer, rng: random.Random, at: int, port: int, client_port: int) -> None:
    """A page load: handshake, a request, 200 kB of 16 kB records in a burst, then idle."""
    request = b"GET /app.js HTTP/1.1\r\nHost: example.test\r\n\r\n" + b"c" * 300
    up, down = tls_connection([(True, request), (False, rng.randbytes(200_000))])
    ts = at
    for record in _records(up):
        out.send(ts, CLIENT, client_port, WEB_SERVER, port, record)
        ts += 300_000
    for record in _records(down):
        out.send(ts, WEB_SERVER, port, CLIENT, client_port, record)
        ts += 400_000  # a fast download: all of it within ~10 ms of records


def _websocket(out: _Writer, rng: random.Random, start: int, end: int) -> None:
    """A signalling WebSocket over TLS: 2 small messages a second each way for the whole call."""
    up, down = tls_connection([])
    ts = start + 3_000_000
    for record in _records(up):
        out.send(ts, CLIENT, 50_003, WEB_SERVER, 443, record)
    for record in _records(down):
        out.send(ts + 1_000_000, WEB_SERVER, 443, CLIENT, 50_003, record)
    t = start + 100_000_000
    while t < end:
        out.send(t, CLIENT, 50_003, WEB_SERVER, 443, _app_record(rng.randrange(40, 160), rng))
        out.send(t + 9_000_000, WEB_SERVER, 443, CLIENT, 50_003, _app_record(60, rng))
        t += 500_000_000
