"""A synthetic call whose streams change path halfway: the same SSRCs over a first leg, then a
second (ICE-TCP then UDP; direct UDP then TURN ChannelData), as a browser does after an ICE
restart or when it falls back to a relay."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Literal

from helpers import synthetic

from decoders.wire import pcapwriter
from decoders.wire.capture import LINKTYPE_ETHERNET

Leg = Literal["udp", "ice-tcp", "turn"]
BROWSER = "10.77.0.1"
#: leg -> (browser port, remote address, remote port)
LEG_ENDS: dict[str, tuple[int, str, int]] = {
    "ice-tcp": (50124, "10.77.0.2", 9),
    "udp": (50123, "10.77.0.2", 40404),
    "turn": (50125, "10.77.0.3", 3478),
}


def write_switching_call(
    path: Path, first: Leg, second: Leg, packets: int = 3000, switch_at: float = 0.5
) -> tuple[synthetic.SyntheticTruth, int]:
    """Write the call to ``path``, switching paths after ``switch_at`` of its datagrams;
    return its truth and the capture time (ns) of the switch."""
    truth = synthetic.SyntheticTruth()
    items = list(synthetic.datagrams(synthetic.Options(packets=packets), truth))
    switch = items[int(len(items) * switch_at)][0]
    tcp_seq = [1000, 5000]
    last = 0
    with path.open("wb") as fo:
        writer = pcapwriter.PcapWriter(fo, LINKTYPE_ETHERNET, nanosecond=True)
        for stamp, direction, payload in items:
            leg = first if stamp < switch else second
            port, remote, remote_port = LEG_ENDS[leg]
            ends = (BROWSER, port, remote, remote_port)
            src, sport, dst, dport = ends if direction == 0 else (ends[2], ends[3], *ends[:2])
            last = max(stamp, last + 1_000)
            if leg == "ice-tcp":
                framed = struct.pack("!H", len(payload)) + payload  # RFC 4571
                seq = tcp_seq[direction]
                tcp_seq[direction] = (seq + len(framed)) & 0xFFFFFFFF
                frame = pcapwriter.build_tcp_segment(
                    LINKTYPE_ETHERNET,
                    src,
                    sport,
                    dst,
                    dport,
                    framed,
                    sequence_number=seq,
                    acknowledgment_number=tcp_seq[1 - direction],
                )
            else:
                if leg == "turn":  # RFC 8656 §12.4 ChannelData, one channel per direction
                    payload = struct.pack("!HH", 0x4000 + direction, len(payload)) + payload
                frame = pcapwriter.build_udp_frame(
                    LINKTYPE_ETHERNET, src, sport, dst, dport, payload
                )
            writer.write(last, frame)
    return truth, switch
