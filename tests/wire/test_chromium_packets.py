"""Every parser on real Chromium packets from the lab sessions: whole, and cut at every length."""

from __future__ import annotations

import contextlib
import itertools
from collections import defaultdict
from pathlib import Path

import pytest
from helpers.corpus import browser_audio_ssrcs, call_sessions, call_shape, ssrc_roles_of

from decoders.errors import MalformedPacket
from decoders.wire import demux, dtls, framing, rtcp, rtp, stun
from decoders.wire.capture import CaptureReader
from decoders.wire.demux import PacketKind
from decoders.wire.net import Unwrapper

PER_KIND = 25


def real_datagrams(session: Path, per_kind: int = PER_KIND) -> dict[PacketKind, list[bytes]]:
    """The first datagrams of each kind, TURN wrappers (relayed calls) taken off."""
    found: dict[PacketKind, list[bytes]] = defaultdict(list)
    unwrapper = Unwrapper()
    with (session / "capture.pcapng").open("rb") as fo:
        for frame in CaptureReader(fo):
            for d in unwrapper.feed(frame):
                opened = demux.open_payload(d.payload)
                if len(found[opened.kind]) < per_kind:
                    found[opened.kind].append(opened.payload)
    return found


def tls_records(session: Path) -> list[bytes]:
    """Every TLS record of a capture (header included), as the TCP framing cuts them."""
    unwrapper = Unwrapper(tls_records=True)
    with (session / "capture.pcapng").open("rb") as fo:
        datagrams = [d for frame in CaptureReader(fo) for d in unwrapper.feed(frame)]
    datagrams += unwrapper.flush()
    assert {d.tunnel for d in datagrams} <= {"tls"}
    return [d.payload for d in datagrams]


def parse(kind: PacketKind, data: bytes) -> object:
    if kind is PacketKind.RTP:
        return rtp.RtpPacket.parse(data, srtp=True)
    if kind is PacketKind.RTCP:
        return rtcp.parse_header(data)
    if kind is PacketKind.STUN:
        return stun.parse(data)
    if kind is PacketKind.DTLS:
        return dtls.parse_records(data)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", [PacketKind.RTP, PacketKind.RTCP, PacketKind.STUN, PacketKind.DTLS]
)
def test_real_packets_parse_whole_and_cut(session_dir: Path, kind: PacketKind) -> None:
    packets = real_datagrams(session_dir)[kind]
    if not call_shape(session_dir).rtp_readable:
        # TURN over TLS: every byte of the connection is in TLS records, never classified
        # (test_real_tls_records reads those)
        assert packets == []
        return
    assert packets, f"the session has {kind} packets"
    for data in packets:
        whole = parse(kind, data)
        assert whole is not None
        for cut in range(len(data)):
            with contextlib.suppress(MalformedPacket):
                parse(kind, data[:cut])


TLS_SESSIONS = [p for p in call_sessions() if not call_shape(p).rtp_readable]


# only the calls relayed over TURN/TLS have a TLS connection in their capture
@pytest.mark.parametrize("session", TLS_SESSIONS, ids=[p.name for p in TLS_SESSIONS])
def test_real_tls_records(session: Path) -> None:
    """The proxy's TLS 1.2 connection to coturn, cut into records: handshake first, then one
    application-data record per relayed message (~50 a second each way)."""
    records = tls_records(session)
    headers = [framing.tls_record_header(r) for r in records]
    assert all(h is not None and h[2] == len(r) - 5 for h, r in zip(headers, records, strict=True))
    types = [h[0] for h in headers if h is not None]
    # handshake, change cipher spec, application data, and an alert (close_notify) at most
    assert types[0] == 22 and {20, 22, 23} <= set(types) <= {20, 21, 22, 23}
    assert types.count(21) <= 2
    assert {h[1] for h in headers if h is not None} <= {0x0301, 0x0303}  # TLS 1.0 hello, 1.2
    assert types.count(23) > 600
    for record in records[:PER_KIND]:
        for cut in range(framing.TLS_HEADER_LENGTH):
            assert framing.tls_record_header(record[:cut]) is None


def test_real_rtp_fields(session_dir: Path) -> None:
    packets = [
        rtp.RtpPacket.parse(d, srtp=True) for d in real_datagrams(session_dir, 200)[PacketKind.RTP]
    ]
    if not call_shape(session_dir).rtp_readable:  # TURN over TLS: no RTP header in sight
        assert packets == []
        return
    roles = ssrc_roles_of(session_dir)
    by_ssrc: dict[int, list[rtp.RtpPacket]] = defaultdict(list)
    for p in packets:
        by_ssrc[p.ssrc].append(p)
    # the browser's audio; the peer's when it talks back; video and RTX with video
    assert browser_audio_ssrcs(session_dir) <= set(by_ssrc)
    media = {(roles[ssrc].media, roles[ssrc].role) for ssrc in by_ssrc}
    shape = call_shape(session_dir)
    assert media <= {("audio", "media"), ("video", "media"), ("video", "rtx")}
    assert (("video", "media") in media) == shape.video
    assert len([s for s in by_ssrc if roles[s].media == "audio"]) == 1 + shape.peer_talks
    assert {p.version for p in packets} == {2}
    for ssrc, stream in by_ssrc.items():
        role = roles[ssrc]
        expected_type = {"audio": 111, "video": 96 if role.role == "media" else 97}
        assert {p.payload_type for p in stream} == {expected_type[role.media]}
        seqs = [p.sequence_number for p in stream]
        assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
        assert all(p.extension_profile == 0xBEDE for p in stream)
        if role.media == "audio":
            levels = [rtp.audio_level(p, 1) for p in stream]
            assert all(level is not None and 0 <= level.level <= 127 for level in levels)
        # sdes:mid (id 4) rides only on the first packets, as lab-facts.md measured
        assert any(e.id == 4 for e in stream[0].extensions)
