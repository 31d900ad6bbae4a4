"""TURN over TCP around the browser's real SRTP from a lab session, for the addon's tests.

A lab session's capture holds the browser's RTP as UDP datagrams. Relayed over TCP, the same
packets would travel as RFC 8656 messages on one connection to the TURN server: an Allocate
request, a ChannelBind request naming the peer, a Send indication for the first packet (before
the channel is bound), then ChannelData padded to 4 bytes (s12.5). The server answers with the
success responses. The STUN messages are built here field by field (RFC 8489 s5 and s14);
their integrity and fingerprint attributes are left out, as nothing here checks them.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
import json
import random
import struct
from dataclasses import dataclass
from pathlib import Path

from decoders.wire.capture import open_capture
from decoders.wire.demux import PacketKind, classify
from decoders.wire.net import Unwrapper

MAGIC_COOKIE = 0x2112A442
ALLOCATE_REQUEST = 0x0003
ALLOCATE_SUCCESS = 0x0103
CHANNEL_BIND_REQUEST = 0x0009
CHANNEL_BIND_SUCCESS = 0x0109
SEND_INDICATION = 0x0016
CHANNEL_NUMBER = 0x000C
XOR_PEER_ADDRESS = 0x0012
DATA = 0x0013
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_TRANSPORT = 0x0019
UDP_PROTOCOL = 17


def browser_rtp(session: Path) -> list[tuple[float, bytes]]:
    """(capture time, UDP payload) of every RTP packet the browser sent in a lab session."""
    browser = json.loads((session / "session.json").read_text())["network"]["browser"]["address"]
    unwrapper = Unwrapper()
    packets = []
    with open_capture(session / "capture.pcapng") as reader:
        for frame in reader:
            for datagram in unwrapper.feed(frame):
                if datagram.src == browser and classify(datagram.payload) is PacketKind.RTP:
                    packets.append((datagram.timestamp_ns / 1e9, datagram.payload))
    return packets


def lab_peer(session: Path) -> tuple[str, int]:
    """The address the browser sent its media to in the lab session (the relayed peer)."""
    peer = json.loads((session / "session.json").read_text())["network"]["peer"]
    return peer["address"], peer["ice_udp_port"]


def stun_message(
    message_type: int, transaction: bytes, attributes: list[tuple[int, bytes]]
) -> bytes:
    """RFC 8489 s5 header + s14 attributes, each padded to 32 bits."""
    body = b"".join(
        struct.pack("!HH", kind, len(value)) + value + bytes(-len(value) % 4)
        for kind, value in attributes
    )
    return struct.pack("!HHI", message_type, len(body), MAGIC_COOKIE) + transaction + body


def xor_address(host: str, port: int) -> bytes:
    """RFC 8489 s14.2 XOR-MAPPED-ADDRESS encoding (IPv4), as XOR-PEER/RELAYED-ADDRESS use."""
    packed = ipaddress.IPv4Address(host).packed
    cookie = MAGIC_COOKIE.to_bytes(4, "big")
    return struct.pack("!BBH", 0, 1, port ^ (MAGIC_COOKIE >> 16)) + bytes(
        a ^ b for a, b in zip(packed, cookie, strict=True)
    )


def channel_data(channel: int, data: bytes) -> bytes:
    """RFC 8656 s12.4, padded to a multiple of 4 as s12.5 requires over TCP."""
    return struct.pack("!HH", channel, len(data)) + data + bytes(-len(data) % 4)


@dataclass(frozen=True)
class TurnCall:
    """Both directions of one TURN/TCP connection, as whole messages with their times."""

    client: list[tuple[float, bytes]]
    server: list[tuple[float, bytes]]
    peer: tuple[str, int]
    channel: int
    media: int
    """How many of the client's messages carry an RTP packet (one Send indication + ChannelData)."""


def turn_call(
    packets: list[tuple[float, bytes]],
    peer: tuple[str, int],
    channel: int = 0x4000,
    *,
    send_first: bool = True,
) -> TurnCall:
    """The browser's RTP ``packets`` relayed to ``peer``: Allocate, ChannelBind, the first packet
    in a Send indication (with ``send_first``), the others as ChannelData on ``channel``."""
    start = packets[0][0] - 0.05
    tids = [bytes([n]) * 12 for n in range(1, 4)]
    peer_attribute = (XOR_PEER_ADDRESS, xor_address(*peer))
    client = [
        (
            start,
            stun_message(
                ALLOCATE_REQUEST, tids[0], [(REQUESTED_TRANSPORT, bytes([UDP_PROTOCOL, 0, 0, 0]))]
            ),
        ),
        (
            start + 0.01,
            stun_message(
                CHANNEL_BIND_REQUEST,
                tids[1],
                [(CHANNEL_NUMBER, struct.pack("!HH", channel, 0)), peer_attribute],
            ),
        ),
    ]
    rest = packets
    if send_first:
        first_t, first = packets[0]
        indication = stun_message(SEND_INDICATION, tids[2], [peer_attribute, (DATA, first)])
        client.append((first_t, indication))
        rest = packets[1:]
    client += [(t, channel_data(channel, payload)) for t, payload in rest]
    server = [
        (
            start + 0.005,
            stun_message(
                ALLOCATE_SUCCESS, tids[0], [(XOR_RELAYED_ADDRESS, xor_address("10.77.0.3", 49152))]
            ),
        ),
        (start + 0.015, stun_message(CHANNEL_BIND_SUCCESS, tids[1], [])),
    ]
    return TurnCall(client=client, server=server, peer=peer, channel=channel, media=len(packets))


def cut(messages: list[tuple[float, bytes]], seed: int) -> list[tuple[float, bytes]]:
    """The messages' bytes as a TCP reader might return them: cut at random places (split
    messages, up to a few run together), each piece at the time of the message holding its
    last byte (a read cannot return bytes before they were sent)."""
    rng = random.Random(seed)
    stream = b"".join(data for _, data in messages)
    ends = list(itertools.accumulate(len(data) for _, data in messages))
    pieces: list[tuple[float, bytes]] = []
    position = 0
    while position < len(stream):
        size = rng.choice((1, 3, 19, 20, 21, 57, 116, 150, 300))
        piece = stream[position : position + size]
        position += len(piece)
        pieces.append((messages[bisect.bisect_left(ends, position)][0], piece))
    return pieces
