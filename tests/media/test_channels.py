"""Tests for decoders.media.channels: TLS connections carrying relayed media, and not HTTPS."""

from __future__ import annotations

import io
import ssl
from pathlib import Path

import numpy as np
from helpers.tls_relay import CLIENT, TURN_SERVER, WEB_SERVER, write_relay_capture

from decoders.media.channels import TlsChannel, relay_addresses, tls_channels
from decoders.session.sdp import parse_sdp
from decoders.wire.bulk import scan_file
from decoders.wire.rowbuild import Rows


def rows_of(**options: object) -> tuple[Rows, dict[str, int]]:
    buffer = io.BytesIO()
    truth = write_relay_capture(buffer, **options)  # type: ignore[arg-type]
    return scan_file(io.BytesIO(buffer.getvalue()), None).rows, truth.records


def by_sender(channels: list[TlsChannel]) -> dict[str, TlsChannel]:
    return {c.sender: c for c in channels}


def test_turn_over_tls_is_two_channels_and_https_is_none() -> None:
    rows, records = rows_of()
    channels, groups = tls_channels(rows)
    assert [(c.src, c.dst) for c in channels] == [(CLIENT, TURN_SERVER), (TURN_SERVER, CLIENT)]
    assert all(WEB_SERVER not in (c.src, c.dst) for c in channels)  # page loads, WebSocket
    up, down = by_sender(channels)["client"], by_sender(channels)["server"]
    assert up.records == records[f"{CLIENT}:41234->{TURN_SERVER}:5349"]
    assert down.records == records[f"{TURN_SERVER}:5349->{CLIENT}:41234"]
    assert [len(g) for g in groups] == [up.records, down.records]
    assert 45 < up.records_per_second < 55
    assert up.gap_median_ms is not None and 15 < up.gap_median_ms < 25
    assert up.tls_version == "TLS 1.2" and up.overhead.exact and up.overhead.bytes == 24
    assert any("rhythm" in e for e in up.evidence) and any("port 5349" in e for e in up.evidence)
    assert not up.video_suspected


def test_estimated_payloads_undo_the_overheads() -> None:
    rows, _ = rows_of(muted="silence")
    channels, groups = tls_channels(rows)
    up = by_sender(channels)["client"]
    sizes = up.payload_sizes(rows["length"][groups[up.index]])
    # a 35-byte silence frame: ChannelData 4 + 12 + 8 + 35 + 10 = 69, padded to 72
    assert int(np.bincount(sizes).argmax()) == 35 + 3


def test_tls_13_overhead_from_the_server_hello() -> None:
    rows, _ = rows_of(version=ssl.TLSVersion.TLSv1_3)
    up = by_sender(tls_channels(rows)[0])["client"]
    assert (up.tls_version, up.overhead.bytes) == ("TLS 1.3", 17)
    rows12, _ = rows_of()
    up12 = by_sender(tls_channels(rows12)[0])["client"]
    assert up.payload_median == up12.payload_median  # the same media either way


def test_one_way_media_needs_turn_evidence() -> None:
    # the peer sends nothing back: no rhythm both ways; port 5349 is the evidence
    rows, _ = rows_of(peer_talks=False)
    assert len(tls_channels(rows)[0]) == 2
    # on port 443 without ALPN nor SDP: nothing tells it from a one-way feed
    rows, _ = rows_of(peer_talks=False, port=443)
    assert tls_channels(rows)[0] == []
    rows, _ = rows_of(peer_talks=False, port=443, alpn=["stun.turn"])
    up = by_sender(tls_channels(rows)[0])["client"]
    assert any("ALPN 'stun.turn'" in e for e in up.evidence)


def test_relay_candidate_in_the_sdp_is_evidence() -> None:
    sdp = parse_sdp(
        "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
        f"a=candidate:1 1 udp 41885695 {TURN_SERVER} 49342 typ relay raddr 0.0.0.0 rport 0\r\n"
    )
    assert relay_addresses(sdp) == frozenset({TURN_SERVER})
    rows, _ = rows_of(peer_talks=False, port=443)
    channels, _ = tls_channels(rows, sdp)
    assert any("typ relay" in e for e in channels[0].evidence)


def test_lab_relay_tls_sessions() -> None:
    from helpers.corpus import lab_session

    from decoders.media.scan import scan_streams
    from decoders.session.sdp import parse_sdp as parse

    for variant in ("track-disabled-relay-tls", "ui-only-relay-tls"):
        folder = lab_session(variant)
        sdp = parse((folder / "offer.sdp").read_text())
        scan = scan_streams(folder / "capture.pcapng", sdp=sdp)
        assert scan.streams == []  # encrypted: no RTP can be seen
        up = by_sender(scan.channels)["client"]
        assert (up.src, up.dst_port) == ("10.77.0.1", 5349)
        assert 45 < up.records_per_second < 52 and up.overhead.bytes == 24
        assert up.tls_version == "TLS 1.2" and up.overhead.exact


def test_no_tls_no_channels(tmp_path: Path) -> None:
    from decoders.wire.rowbuild import empty_rows

    assert tls_channels(empty_rows()) == ([], [])
