"""The streams JSON document: schema name, version, and every stream field."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

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
    assert len(again["relayed_tls"]) == len(scan.channels)
    if not scan.streams:  # relayed through TLS: channels only
        assert again["relayed_tls"][0]["overheads"]["tls_record"] > 0
        return
    stream = again["streams"][0]
    assert stream["ssrc_hex"] == f"0x{stream['ssrc']:08x}"
    assert isinstance(stream["payload_types"], list)
