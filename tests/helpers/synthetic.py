"""Synthetic WebRTC captures with a known truth, for tests and the benchmark.

A synthetic session is what a real call puts on the wire, reproduced deterministically: two
audio streams (50 packets/s, Opus-like sizes, an RFC 6464 audio level at a chosen extension
id, a muted window with level 127 and a repeated silence-sized frame), a video stream (90 kHz,
several large packets per frame, transport-wide-cc extension; with ``rtx``, an RFC 4588
retransmission stream beside it), RTCP sender reports, STUN
consent checks and a DTLS handshake offering and choosing an SRTP profile - written through
any link type, IPv4 or IPv6, UDP, ICE-TCP (RFC 4571), TURN ChannelData over UDP, TURN over
TCP (ChannelData padded to 4, with Send/Data indications) or TURN over TLS (each message one
TLS 1.2 application-data record of plaintext + 24 bytes, after a handshake), pcap or pcapng.

Real sessions recorded by the lab are the ground truth for behaviour; synthetic ones are the
ground truth for encapsulation and scale.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final, Literal

from decoders.wire import pcapwriter
from decoders.wire.capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)

Link = Literal["ethernet", "vlan", "qinq", "sll", "sll2", "raw", "ipv4", "null"]
Transport = Literal["udp", "ice-tcp", "turn", "turn-tcp", "turn-tls"]
Segments = Literal["mixed", "own", "coalesced", "split", "resent", "mid-stream"]
"""How a TCP transport cuts its byte stream into segments: each message in its own segment,
several per segment, messages cut across segments, retransmitted and reordered segments, a
capture that starts inside a message; "mixed" does some of each (but starts cleanly)."""
Format = Literal["pcap", "pcap-ns", "pcap-be", "pcapng", "pcapng-2if", "pcapng-be"]

LINK_TYPES: Final[dict[str, int]] = {
    "ethernet": LINKTYPE_ETHERNET,
    "vlan": LINKTYPE_ETHERNET,
    "qinq": LINKTYPE_ETHERNET,
    "sll": LINKTYPE_LINUX_SLL,
    "sll2": LINKTYPE_LINUX_SLL2,
    "raw": LINKTYPE_RAW,
    "ipv4": LINKTYPE_IPV4,
    "null": LINKTYPE_NULL,
}
VLANS: Final[dict[str, tuple[int, ...]]] = {"vlan": (100,), "qinq": (200, 100)}

OPUS_PT: Final = 111
VP8_PT: Final = 96
RTX_PT: Final = 97
RTX_SSRC: Final = 0x0BADF00D
RTX_SHARE: Final = 0.04
"""With ``rtx``: the share of video packets sent again on the RTX stream, 40-80 ms later."""
SRTP_TAG: Final = 10
START_NS: Final = 1_764_000_000_000_000_000


@dataclass(frozen=True, slots=True)
class StreamTruth:
    """What a correct decoder must report for one stream."""

    src: str
    src_port: int
    dst: str
    dst_port: int
    ssrc: int
    payload_type: int
    media: str
    packets: int
    levels: bool


@dataclass
class SyntheticTruth:
    streams: list[StreamTruth] = field(default_factory=list)
    frames: int = 0
    datagrams: int = 0
    audio_level_id: int = 1
    muted_ns: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class Options:
    packets: int = 2000
    link: Link = "ethernet"
    ipv6: bool = False
    transport: Transport = "udp"
    format: Format = "pcap"
    audio_level_id: int = 1
    seed: int = 7
    rtx: bool = False
    """Add an RTX stream (SSRC :data:`RTX_SSRC`, PT :data:`RTX_PT`, a=fmtp apt=96) that repeats
    some video packets: the 2-byte original sequence number, then the payload, same timestamp."""
    segments: Segments = "mixed"


class _Rng:
    """Deterministic byte pool: encrypted payloads look random and cost nothing to make."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.pool = self.random.randbytes(1 << 16)
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.pool):
            self.at = self.random.randrange(0, 4096)
        out = self.pool[self.at : self.at + n]
        self.at += n + 7
        return out


def _rtp(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    extensions: bytes,
    payload: bytes,
    marker: bool = False,
) -> bytes:
    first = 0x80 | (0x10 if extensions else 0)
    head = struct.pack(
        "!BBHII", first, pt | (0x80 if marker else 0), seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc
    )
    if extensions:
        padded = extensions + b"\x00" * (-len(extensions) % 4)
        head += struct.pack("!HH", 0xBEDE, len(padded) // 4) + padded
    return head + payload


def _sender_report(
    ssrc: int, ntp: int, rtp_ts: int, packets: int, octets: int, tail: bytes
) -> bytes:
    # SRTCP: the first 8 bytes are clear, the rest is ciphertext, then E|index and the tag;
    # the sender's packet and octet counts wrap at 32 bits (RFC 3550 6.4.1): a long call's do
    report = struct.pack("!BBHI", 0x80, 200, 6, ssrc)
    counts = (rtp_ts & 0xFFFFFFFF, packets & 0xFFFFFFFF, octets & 0xFFFFFFFF)
    report += struct.pack("!QIII", ntp, *counts)
    return (
        report[:8]
        + tail[:20]
        + struct.pack("!I", 0x80000000 | (packets & 0x7FFFFFFF))
        + tail[20:30]
    )


def _stun_binding(transaction: bytes, username: bytes, response: bool) -> bytes:
    attrs = b""
    if not response:
        value = username + b"\x00" * (-len(username) % 4)
        attrs += struct.pack("!HH", 0x0006, len(username)) + value
        attrs += struct.pack("!HHI", 0x0024, 4, 0x6E7F1EFF)
    else:
        attrs += struct.pack("!HHBBH", 0x0020, 8, 0, 1, 0x1234 ^ 0x2112) + bytes(4)
    attrs += struct.pack("!HH", 0x0008, 20) + bytes(20)  # MESSAGE-INTEGRITY (not valid)
    kind = 0x0101 if response else 0x0001
    return struct.pack("!HHI", kind, len(attrs), 0x2112A442) + transaction + attrs


def _dtls_hello(handshake_type: int, profiles: tuple[int, ...], rng: _Rng) -> bytes:
    """A DTLS 1.2 ClientHello (1) or ServerHello (2) carrying the use_srtp extension."""
    srtp = struct.pack("!H", 2 * len(profiles)) + b"".join(struct.pack("!H", p) for p in profiles)
    srtp += b"\x00"  # empty MKI
    extensions = struct.pack("!HH", 14, len(srtp)) + srtp
    body = struct.pack("!H", 0xFEFD) + rng.take(32) + b"\x00"
    if handshake_type == 1:
        body += b"\x00"  # empty cookie
        body += struct.pack("!HH", 2, 0xC02B) + b"\x01\x00"
    else:
        body += struct.pack("!H", 0xC02B) + b"\x00"
    body += struct.pack("!H", len(extensions)) + extensions
    length = len(body)
    handshake = struct.pack("!B", handshake_type) + length.to_bytes(3, "big")
    handshake += struct.pack("!H", 0) + (0).to_bytes(3, "big") + length.to_bytes(3, "big") + body
    record = struct.pack("!BHH", 22, 0xFEFD, 0) + (handshake_type - 1).to_bytes(6, "big")
    return record + struct.pack("!H", len(handshake)) + handshake


@dataclass
class _Stream:
    src: int  # 0: browser side, 1: remote side
    ssrc: int
    pt: int
    media: str
    interval_ns: int
    clock: int
    seq: int
    ts: int
    next_ns: int
    packets: int = 0
    octets: int = 0
    left: int = 0  # video: packets still to send of the current frame
    frames: int = 0


def datagrams(options: Options, truth: SyntheticTruth) -> Iterator[tuple[int, int, bytes]]:
    """(timestamp_ns, direction 0/1, UDP payload) in capture order, ``options.packets`` of them."""
    rng = _Rng(options.seed)
    r = rng.random
    level_id = options.audio_level_id
    streams = [
        _Stream(
            0, 0x1A2B3C4D, OPUS_PT, "audio", 20_000_000, 48000, 1000, 123456, START_NS + 2_000_000
        ),
        _Stream(
            1, 0x5E6F7081, OPUS_PT, "audio", 20_000_000, 48000, 60000, 9999, START_NS + 11_000_000
        ),
        _Stream(
            0, 0x0BADCAFE, VP8_PT, "video", 33_333_333, 90000, 65000, 1 << 31, START_NS + 5_000_000
        ),
    ]
    # the muted window: 30 % to 50 % into the call, on the browser's audio stream
    total = options.packets
    seconds = total / 290.0  # packets/s: 2 x 50 audio, ~188 video, RTCP and STUN
    mute_from = START_NS + int(seconds * 0.3e9)
    mute_to = START_NS + int(seconds * 0.5e9)
    truth.muted_ns = (mute_from, mute_to)
    truth.audio_level_id = level_id
    emitted = 0
    now = START_NS
    # handshake first: STUN check both ways, DTLS hellos with use_srtp
    opening = [
        (0, _stun_binding(rng.take(12), b"abcd:efgh", False)),
        (1, _stun_binding(rng.take(12), b"efgh:abcd", True)),
        (0, _dtls_hello(1, (7, 8, 1, 2), rng)),
        (1, _dtls_hello(2, (1,), rng)),
    ]
    for direction, payload in opening:
        if emitted >= total:
            return
        now += 300_000
        yield now, direction, payload
        emitted += 1
    next_rtcp = START_NS + 1_000_000_000
    next_stun = START_NS + 2_500_000_000
    level = 40
    size = 80
    rtx = _Stream(0, RTX_SSRC, RTX_PT, "video", 0, 90000, 300, 0, 0)
    resend: list[tuple[int, int, int, int]] = []  # (due ns, timestamp, original seq, size)
    chance = random.Random(options.seed + 2)
    while emitted < total:
        s = min(streams, key=lambda x: x.next_ns)
        if resend and resend[0][0] <= s.next_ns:
            due, rtp_ts, original, length = resend.pop(0)
            ext = bytes([(3 << 4) | 1]) + struct.pack("!H", rtx.packets & 0xFFFF)
            payload = struct.pack("!H", original) + rng.take(length)
            yield due, 0, _rtp(RTX_PT, rtx.seq, rtp_ts, RTX_SSRC, ext, payload)
            rtx.seq = (rtx.seq + 1) & 0xFFFF
            rtx.packets += 1
            emitted += 1
            continue
        if next_rtcp <= s.next_ns:
            for st in streams:
                if emitted >= total:
                    break
                ntp = (next_rtcp // 1_000_000_000 + 2208988800) << 32
                yield (
                    next_rtcp,
                    st.src,
                    _sender_report(st.ssrc, ntp, st.ts, st.packets, st.octets, rng.take(30)),
                )
                emitted += 1
            next_rtcp += 1_000_000_000 + r.randrange(-50_000_000, 50_000_000)
            continue
        if next_stun <= s.next_ns:
            yield next_stun, 0, _stun_binding(rng.take(12), b"abcd:efgh", False)
            emitted += 1
            if emitted < total:
                yield next_stun + 400_000, 1, _stun_binding(rng.take(12), b"efgh:abcd", True)
                emitted += 1
            next_stun += 2_500_000_000
            continue
        t = s.next_ns + r.randrange(0, 1_500_000)
        if s.media == "audio":
            muted = s.src == 0 and mute_from <= t < mute_to
            if muted:
                lvl, payload_size = 127, 3
            else:
                level = min(90, max(15, level + r.randrange(-6, 7)))
                size = min(140, max(40, size + r.randrange(-12, 13)))
                lvl, payload_size = level, size
            ext = bytes([(level_id << 4) | 0, 0x80 | lvl])
            if s.packets < 40:
                ext += bytes([(4 << 4) | 0, ord("0")])  # sdes:mid "0" only at the start
            payload = rng.take(payload_size + SRTP_TAG)
            packet = _rtp(s.pt, s.seq, s.ts, s.ssrc, ext, payload)
            s.ts += 960
            s.next_ns += s.interval_ns
        else:
            # ~1.7 Mbit/s of 30 fps video: 6 packets a frame, 30 for a keyframe every 3 s,
            # the packets of one frame paced 1 ms apart, the marker on a frame's last packet
            if s.left == 0:
                s.left = 30 if s.frames % 90 == 0 else 6
                s.frames += 1
            s.left -= 1
            ext = bytes([(3 << 4) | 1]) + struct.pack("!H", s.packets & 0xFFFF)
            payload = rng.take(r.randrange(1000, 1180) + SRTP_TAG)
            packet = _rtp(s.pt, s.seq, s.ts, s.ssrc, ext, payload, marker=s.left == 0)
            if options.rtx and chance.random() < RTX_SHARE:
                later = t + chance.randrange(40_000_000, 80_000_000)
                resend.append((later, s.ts, s.seq, len(payload)))
                resend.sort()
            if s.left == 0:
                s.ts += 3000
                s.next_ns = START_NS + 5_000_000 + s.frames * s.interval_ns
            else:
                s.next_ns += 1_000_000
        s.seq = (s.seq + 1) & 0xFFFF
        s.packets += 1
        s.octets += len(packet) - 12
        yield t, s.src, packet
        emitted += 1
    truth.datagrams = emitted
    endpoints = _endpoints(options)
    for s in streams:
        (a, pa), (b, pb) = endpoints[s.src], endpoints[1 - s.src]
        truth.streams.append(
            StreamTruth(a, pa, b, pb, s.ssrc, s.pt, s.media, s.packets, s.media == "audio")
        )
    if rtx.packets:
        (a, pa), (b, pb) = endpoints[0], endpoints[1]
        truth.streams.append(
            StreamTruth(a, pa, b, pb, RTX_SSRC, RTX_PT, "video", rtx.packets, False)
        )


def _endpoints(options: Options) -> tuple[tuple[str, int], tuple[str, int]]:
    if options.ipv6:
        local, remote = "fd00:77::1", "fd00:77::2"
    else:
        local, remote = "10.77.0.1", "10.77.0.2"
    if options.transport in ("turn", "turn-tcp"):
        remote = "fd00:77::3478" if options.ipv6 else "10.77.0.3"
        return (local, 50123), (remote, 3478)
    if options.transport == "turn-tls":
        remote = "fd00:77::3478" if options.ipv6 else "10.77.0.3"
        return (local, 50123), (remote, 5349)
    if options.transport == "ice-tcp":
        return (local, 50123), (remote, 9)
    return (local, 50123), (remote, 40404)


def write(fileobj: BinaryIO, options: Options) -> SyntheticTruth:
    """Write one synthetic session to ``fileobj``; return what a decoder must find."""
    truth = SyntheticTruth()
    link_type = LINK_TYPES[options.link]
    vlans = VLANS.get(options.link, ())
    (local, lport), (remote, rport) = _endpoints(options)
    writer: pcapwriter.PcapWriter | pcapwriter.PcapngWriter
    interfaces = [0]
    order: Literal["little", "big"] = "big" if options.format.endswith("-be") else "little"
    if options.format.startswith("pcapng"):
        writer = pcapwriter.PcapngWriter(fileobj, byte_order=order)
        interfaces = [writer.add_interface(link_type, ts_resolution_exp10=9, name="veth0")]
        if options.format == "pcapng-2if":
            # a second interface of another link type and resolution: the other direction
            other = LINKTYPE_LINUX_SLL if link_type != LINKTYPE_LINUX_SLL else LINKTYPE_ETHERNET
            interfaces.append(writer.add_interface(other, ts_resolution_exp10=6, name="any"))
    else:
        writer = pcapwriter.PcapWriter(
            fileobj, link_type, nanosecond=options.format == "pcap-ns", byte_order=order
        )
    tcp_seq = [1000, 5000]
    frames = 0

    def emit(ts: int, direction: int, data: bytes) -> None:
        nonlocal frames
        frames += 1
        if isinstance(writer, pcapwriter.PcapngWriter):
            iface = interfaces[direction % len(interfaces)]
            lt = (
                link_type
                if iface == interfaces[0]
                else (LINKTYPE_LINUX_SLL if link_type != LINKTYPE_LINUX_SLL else LINKTYPE_ETHERNET)
            )
            writer.write(iface, ts, _frame(lt, direction, data))
        else:
            writer.write(ts, _frame(link_type, direction, data))

    def _frame(lt: int, direction: int, payload: bytes) -> bytes:
        src, sport, dst, dport = (
            (local, lport, remote, rport) if direction == 0 else (remote, rport, local, lport)
        )
        if options.transport in TCP_TRANSPORTS:
            seq = tcp_seq[direction]
            tcp_seq[direction] = (seq + len(payload)) & 0xFFFFFFFF
            return pcapwriter.build_tcp_segment(
                lt,
                src,
                sport,
                dst,
                dport,
                payload,
                sequence_number=seq,
                acknowledgment_number=tcp_seq[1 - direction],
                vlan=vlans,
            )
        return pcapwriter.build_udp_frame(lt, src, sport, dst, dport, payload, vlan=vlans)

    rng = random.Random(options.seed + 1)
    last = START_NS
    segmenter = _Segmenter(options.segments, rng, emit, tcp_seq)
    if options.transport == "turn-tls":
        for direction, record in _tls_handshake(rng):
            last += 1_000_000
            segmenter.send(last, direction, record)
    for stamp, direction, payload in datagrams(options, truth):
        ts = max(stamp, last + 1_000)  # a capture's clock only moves forward
        last = ts
        if options.transport == "turn":
            payload = struct.pack("!HH", 0x4000 + direction, len(payload)) + payload
            emit(ts, direction, payload)
        elif options.transport == "ice-tcp":
            segmenter.send(ts, direction, struct.pack("!H", len(payload)) + payload)
        elif options.transport == "turn-tcp":
            segmenter.send(ts, direction, _turn_tcp_message(direction, payload, rng))
        elif options.transport == "turn-tls":
            message = _turn_tcp_message(direction, payload, rng, indications=False)
            segmenter.send(ts, direction, _tls_record(23, rng.randbytes(len(message) + 24)))
        else:
            emit(ts, direction, payload)
    segmenter.close(last)
    if options.transport == "turn-tls":
        truth.streams.clear()  # encrypted: no RTP stream can be seen, only TLS records
    truth.frames = frames
    return truth


TCP_TRANSPORTS: Final = frozenset({"ice-tcp", "turn-tcp", "turn-tls"})
TLS_OVERHEAD: Final = 24
"""TLS 1.2 AES-GCM: an 8-byte explicit nonce and a 16-byte tag around each record's plaintext."""


def _turn_tcp_message(
    direction: int, payload: bytes, rng: random.Random, *, indications: bool = True
) -> bytes:
    """RFC 8656: ChannelData padded to 4 (TCP), or now and then a Send (client) or Data
    (server) indication carrying the datagram with XOR-PEER-ADDRESS and DATA."""
    if not indications or rng.random() >= 0.05:
        padding = bytes(-len(payload) % 4)
        return struct.pack("!HH", 0x4000 + direction, len(payload)) + payload + padding
    peer = struct.pack("!BBH", 0, 1, 40404 ^ 0x2112) + bytes(
        a ^ b for a, b in zip(bytes([10, 77, 0, 2]), b"\x21\x12\xa4\x42", strict=True)
    )
    attributes = struct.pack("!HH", 0x0012, 8) + peer
    attributes += struct.pack("!HH", 0x0013, len(payload)) + payload + bytes(-len(payload) % 4)
    message_type = 0x0016 if direction == 0 else 0x0017
    header = struct.pack("!HHI", message_type, len(attributes), 0x2112A442)
    return header + rng.randbytes(12) + attributes


def _tls_record(content_type: int, body: bytes) -> bytes:
    return struct.pack("!BHH", content_type, 0x0303, len(body)) + body


def _tls_handshake(rng: random.Random) -> list[tuple[int, bytes]]:
    """A TLS 1.2 handshake's records: a ClientHello without SNI or ALPN (as Chromium's to
    coturn by IP), a ServerHello choosing ECDHE-RSA-AES128-GCM (0xc02f), then random bodies."""
    suites = struct.pack("!5H", 0x1301, 0xC02B, 0xC02F, 0xCCA8, 0x009C)
    body = b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
    body += struct.pack("!H", len(suites)) + suites + b"\x01\x00" + struct.pack("!H", 0)
    hello = bytes([1]) + len(body).to_bytes(3, "big") + body
    answer = b"\x03\x03" + rng.randbytes(32) + b"\x00" + struct.pack("!HB", 0xC02F, 0)
    server = bytes([2]) + len(answer).to_bytes(3, "big") + answer + rng.randbytes(1200)
    return [
        (0, _tls_record(22, hello)),
        (1, _tls_record(22, server)),
        (0, _tls_record(22, rng.randbytes(70))),
        (0, _tls_record(20, b"\x01")),
        (0, _tls_record(22, rng.randbytes(40))),
        (1, _tls_record(20, b"\x01")),
        (1, _tls_record(22, rng.randbytes(40))),
    ]


class _Segmenter:
    """Cuts each direction's byte stream into TCP segments as :data:`Segments` says."""

    def __init__(
        self,
        mode: Segments,
        rng: random.Random,
        emit: Callable[[int, int, bytes], None],
        sequence: list[int],
    ) -> None:
        self.mode, self.rng, self.emit, self.sequence = mode, rng, emit, sequence
        self.pending = [b"", b""]
        self.held: list[tuple[int, int, bytes, int] | None] = [None, None]
        self.started = [False, False]

    def send(self, ts: int, direction: int, message: bytes) -> None:
        buffered = self.pending[direction] + message
        r = self.rng.random()
        mode = self.mode
        if mode == "own":
            cut = len(buffered)
        elif mode == "coalesced":
            if r < 0.6:
                self.pending[direction] = buffered
                return
            cut = len(buffered)
        elif mode == "split":
            cut = self.rng.randrange(1, len(buffered)) if r < 0.7 else len(buffered)
        else:  # mixed, resent, mid-stream: some coalesced, some split
            if r < 0.3:
                self.pending[direction] = buffered
                return
            cut = len(buffered) if self.rng.random() < 0.7 else self.rng.randrange(1, len(buffered))
        self.pending[direction] = buffered[cut:]
        self._segment(ts, direction, buffered[:cut])

    def _segment(self, ts: int, direction: int, data: bytes) -> None:
        sequence = self.sequence[direction]
        if self.mode == "mid-stream" and not self.started[direction]:
            self.started[direction] = True
            skip = min(7, len(data) - 1)  # the capture begins inside the first message
            self.sequence[direction] += skip
            self.emit(ts, direction, data[skip:])
            return
        self.started[direction] = True
        if self.mode == "resent":
            held = self.held[direction]
            if held is not None:  # the segment held back arrives after its successor
                self.held[direction] = None
                self.emit(ts, direction, data)
                self.sequence[direction] = held[3]
                self.emit(ts + 500, direction, held[2])
                self.sequence[direction] = (sequence + len(data)) & 0xFFFFFFFF
                return
            r = self.rng.random()
            if r < 0.1:
                self.emit(ts, direction, data)
                self.sequence[direction] = sequence
                self.emit(ts + 300, direction, data)  # retransmitted
                return
            if r < 0.2:
                self.held[direction] = (ts, direction, data, sequence)
                self.sequence[direction] = (sequence + len(data)) & 0xFFFFFFFF
                return
        self.emit(ts, direction, data)

    def close(self, last: int) -> None:
        for direction in (0, 1):
            held = self.held[direction]
            if held is not None:
                end = self.sequence[direction]
                self.sequence[direction] = held[3]
                self.emit(last + 500_000, direction, held[2])
                self.sequence[direction] = end
            if self.pending[direction]:
                self.emit(last + 1_000_000, direction, self.pending[direction])


__all__ = [
    "LINKTYPE_IPV4",
    "TCP_TRANSPORTS",
    "TLS_OVERHEAD",
    "Options",
    "StreamTruth",
    "SyntheticTruth",
    "datagrams",
    "write",
]
