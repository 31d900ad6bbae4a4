"""Tests for decoders.audit.relayed: judging TURN-over-TLS channels by sizes and timing."""

from __future__ import annotations

import io
from typing import Any

import pytest
from helpers.tls_relay import CLIENT, write_relay_capture

from decoders.audit.local import LocalSide
from decoders.audit.measure import measure_media
from decoders.audit.relayed import (
    THROUGH_TLS,
    measure_relayed,
    no_leak_view,
    relayed_findings,
)
from decoders.audit.verdict import TLS_CONTENT_CAP, TLS_NO_LEAK_CAP, decide
from decoders.media.channels import tls_channels
from decoders.session.timeline import MuteInterval, build_timeline
from decoders.wire.bulk import scan_file


def audit(muted: str, side: LocalSide | None = None, **options: Any) -> tuple[Any, ...]:
    buffer = io.BytesIO()
    truth = write_relay_capture(buffer, muted=muted, **options)  # type: ignore[arg-type]
    rows = scan_file(io.BytesIO(buffer.getvalue()), None).rows
    channels, groups = tls_channels(rows)
    ts = rows["timestamp_ns"]
    timeline = build_timeline(
        [MuteInterval(*truth.muted, "lab", "test")],
        capture_span=(int(ts.min()) / 1e9, int(ts.max()) / 1e9),
    )
    measured = measure_relayed(rows, channels, groups, timeline)
    side = side if side is not None else LocalSide()
    findings = relayed_findings(measured, timeline, side)
    return measured, timeline, findings, side


def ids(findings: list[Any]) -> list[str]:
    return [f.id for f in findings]


def test_speech_sizes_while_muted_are_a_content_leak_through_tls() -> None:
    measured, timeline, findings, side = audit("speech")
    (finding,) = findings
    assert finding.id == "tls-encoded-content-while-muted" and finding.leak == "content"
    assert finding.evidence.startswith(THROUGH_TLS)
    assert "no audio level could be seen" in finding.evidence
    assert finding.numbers["through_tls"] is True
    assert finding.numbers["distinct_sizes"] >= 8
    assert finding.stream is None and "(TLS relay)" in (finding.stream_label or "")
    media = measure_media(measured.rows, [], [], timeline, local=side)
    verdict = decide(findings, timeline, media, None, side=side, relayed=measured)
    assert verdict.verdict == "content-leak"
    assert verdict.confidence <= TLS_CONTENT_CAP  # lower than clear RTP (0.8-0.95)


@pytest.mark.parametrize(
    ("muted", "expected", "dtx"),
    [
        ("silence", "tls-media-continues-while-muted", False),
        ("dtx", "tls-media-continues-while-muted", True),
        ("nothing", "tls-no-media-while-muted", None),
    ],
)
def test_silence_dtx_and_nothing_are_no_leak(muted: str, expected: str, dtx: bool | None) -> None:
    measured, timeline, findings, side = audit(muted)
    assert ids(findings) == [expected]
    assert findings[0].leak is None and findings[0].evidence.startswith(THROUGH_TLS)
    if dtx is not None:
        assert findings[0].numbers["dtx"] is dtx
    view = no_leak_view(measured, side, 0)
    assert view is not None and view[1]  # the size rule sees sound while unmuted
    media = measure_media(measured.rows, [], [], timeline, local=side)
    verdict = decide(findings, timeline, media, None, side=side, relayed=measured)
    assert verdict.verdict == "no-leak"
    assert verdict.confidence <= TLS_NO_LEAK_CAP
    assert "judged through TLS" in verdict.reason


def test_only_the_muted_sides_channel_is_judged() -> None:
    # the peer talks through the relay while the user is muted: its channel is not the user's
    _, _, findings, _ = audit("silence", LocalSide(frozenset({CLIENT}), how="test"))
    assert ids(findings) == ["tls-media-continues-while-muted"]
    assert all(f.numbers["channel_sender"] == "client" for f in findings)
    # the side known as another address: no channel of it in this capture
    _, _, findings, _ = audit("speech", LocalSide(frozenset({"10.9.9.9"}), how="test"))
    assert findings == []


def test_lab_sessions_analyze() -> None:
    from helpers.corpus import lab_session

    from decoders.audit.analysis import Inputs, analyze

    silent = analyze(Inputs(session_dir=lab_session("track-disabled-relay-tls")))
    assert silent.verdict.verdict == "no-leak" and silent.verdict.exit_code == 0
    assert "judged through TLS" in silent.verdict.reason
    assert silent.verdict.confidence <= TLS_NO_LEAK_CAP
    leak = analyze(Inputs(session_dir=lab_session("ui-only-relay-tls")))
    assert leak.verdict.verdict == "content-leak" and leak.verdict.exit_code == 5
    top = [f for f in leak.findings if f.leak == "content"]
    assert [f.id for f in top] == ["tls-encoded-content-while-muted"]
    assert top[0].evidence.startswith(THROUGH_TLS)
    assert leak.relayed is not None and leak.relayed.channels[0].dst_port == 5349
