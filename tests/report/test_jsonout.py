"""The streams JSON document: schema name, version, and every stream field."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from helpers.corpus import browser_audio_ssrcs, call_shape

from decoders.media.scan import scan_streams
from decoders.report.jsonout import STREAMS_SCHEMA_VERSION, streams_document


def test_document_round_trips_through_json(session_dir: Path) -> None:
    scan = scan_streams(session_dir / "capture.pcapng", audio_level_id=1)
    doc = streams_document(
        capture="c.pcapng",
        capture_format=scan.capture_format,
        frames=scan.frames,
        datagrams=scan.datagram_counts(),
        counters=Counter({"b": 2, "a": 1}),
        damage=None,
        level=scan.level,
        srtp_profile=scan.head.srtp_profile_name,
        streams=scan.streams,
        engine="fast",
        channels=scan.channels,
    )
    again = json.loads(json.dumps(doc))
    assert again["version"] == STREAMS_SCHEMA_VERSION
    assert list(again["skipped"]) == ["a", "b"]
    assert again["audio_level"]["source"] == "given"
    assert again["datagrams"] == scan.datagram_counts()
    assert len(again["relayed_tls"]) == len(scan.channels)
    if not call_shape(session_dir).rtp_readable:
        # TURN over TLS: the records are counted, no RTP stream to list, the channels instead
        assert again["streams"] == [] and set(again["datagrams"]) == {"tls"}
        assert again["relayed_tls"][0]["overheads"]["tls_record"] > 0
        return
    assert len(again["streams"]) == len(scan.streams)
    (stream,) = [s for s in again["streams"] if s["ssrc"] in browser_audio_ssrcs(session_dir)]
    assert stream["ssrc_hex"] == f"0x{stream['ssrc']:08x}"
    assert isinstance(stream["payload_types"], list) and stream["payload_types"] == [111]
