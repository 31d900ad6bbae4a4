"""A two-way call built from two lab sessions: the muted browser, and a peer that talks back.

The lab's aiortc peer sends no audio, so each committed capture shows one direction only. Here
the RTP the browser of ``talker`` sent (speech the whole call) is replayed as the peer of
``muted`` talking back to its browser (peer address and port -> browser address and port),
shifted onto ``muted``'s clock; everything of ``muted`` (STUN, DTLS, RTP, RTCP) is kept. The
result is what a capture of a real call shows when the other participant talks while the user
is muted: both directions, two SSRCs, speech on the incoming one.
"""

from __future__ import annotations

from pathlib import Path

from decoders.wire.capture import LINKTYPE_ETHERNET, CaptureReader
from decoders.wire.demux import PacketKind, classify
from decoders.wire.net import Datagram, Unwrapper
from decoders.wire.pcapwriter import PcapngWriter, build_udp_frame


def datagrams(capture: Path) -> list[Datagram]:
    unwrapper = Unwrapper()
    with capture.open("rb") as fo:
        out = [d for frame in CaptureReader(fo) for d in unwrapper.feed(frame)]
    return out + unwrapper.flush()


def peer_talks(muted: Path, talker: Path, out: Path) -> tuple[str, str]:
    """Write the merged capture to ``out``; returns (browser address, peer address)."""
    own = datagrams(muted / "capture.pcapng")
    rtp = [d for d in own if classify(d.payload) is PacketKind.RTP]
    browser, peer = (rtp[0].src, rtp[0].src_port), (rtp[0].dst, rtp[0].dst_port)
    speech = [
        d for d in datagrams(talker / "capture.pcapng") if classify(d.payload) is PacketKind.RTP
    ]
    shift = rtp[0].timestamp_ns - speech[0].timestamp_ns
    back = [
        Datagram(
            0, d.timestamp_ns + shift, peer[0], peer[1], browser[0], browser[1], "udp", d.payload
        )
        for d in speech
    ]
    merged = sorted(own + back, key=lambda d: d.timestamp_ns)
    with out.open("wb") as fo:
        writer = PcapngWriter(fo)
        interface = writer.add_interface(LINKTYPE_ETHERNET, ts_resolution_exp10=9)
        for d in merged:
            frame = build_udp_frame(
                LINKTYPE_ETHERNET, d.src, d.src_port, d.dst, d.dst_port, d.payload
            )
            writer.write(interface, d.timestamp_ns, frame)
    return browser[0], peer[0]
