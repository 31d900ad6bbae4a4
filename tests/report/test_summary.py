"""Tests for decoders.report.summary: verdict first, plain words, numbers, what was unchecked."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from helpers.corpus import lab_session

from decoders.audit.analysis import Inputs, analyze
from decoders.report.analysis_json import report_document
from decoders.report.summary import HEADLINES, MEANINGS, summary_text

CAPTURES = Path(__file__).resolve().parent.parent.parent / "captures"


@functools.cache
def document(name: str, ignore: frozenset[str] = frozenset()) -> dict[str, Any]:
    folder = lab_session(name)
    return report_document(analyze(Inputs(session_dir=folder, ignore=ignore)))


@pytest.mark.parametrize(
    ("name", "verdict"),
    [
        ("quiet", "content-leak"),
        ("telemetry-http", "metadata-leak"),
        ("gain-zero", "no-leak"),
    ],
)
def test_verdict_comes_first(name: str, verdict: str) -> None:
    text = summary_text(document(name))
    lines = text.splitlines()
    assert lines[0] == HEADLINES[verdict]
    assert lines[1].startswith("  how sure: high")
    assert f"verdict: {verdict}" in lines[2]


def test_findings_with_numbers_and_proof() -> None:
    text = summary_text(document("quiet"), report_path="/tmp/r.json")
    assert "What left while muted:" in text
    assert MEANINGS["audio-level-while-muted"] in text
    assert "280 of 280 packets" in text or "of 2" in text
    assert "dBov" in text and "entropy" in text
    assert "it follows the microphone: proven" in text
    assert "see:   frames" in text
    assert text.endswith("Full report: /tmp/r.json")
    # the leak findings come before the informational ones
    assert "For information:" not in text.split("What left while muted:")[0]


def test_informational_only() -> None:
    text = summary_text(document("replace-null"))
    assert "What left while muted:" not in text
    assert "For information:" in text and MEANINGS["no-media-while-muted"] in text


def test_not_checked_lists_what_is_missing() -> None:
    text = summary_text(document("dtx", frozenset({"keys", "events", "flows", "session"})))
    section = text.split("Not checked:")[1]
    assert "telemetry: no events.jsonl or flows.mitm" in section
    assert "decoded audio: no keys" in section
    assert "correlation with the microphone's signal" in section


def test_inconclusive_says_why() -> None:
    folder = lab_session("track-disabled")
    doc = report_document(analyze(Inputs(capture=folder / "capture.pcapng")))
    text = summary_text(doc)
    assert text.splitlines()[0] == HEADLINES["inconclusive"]
    assert text.splitlines()[1] == (
        "  why: no mute interval: no timeline, and no events.jsonl or flows.mitm to read marks or "
        "the app's own mute signals from"
    )
    assert text.splitlines()[2] == (
        "  to decide: mark mute and unmute with the addon (mutecheck mark muted|unmuted, or the "
        "mark URL), or pass --muted START-END"
    )


def test_a_saved_report_prints_the_same() -> None:
    doc = document("telemetry-ws")
    saved = json.loads(json.dumps(doc))
    assert summary_text(saved) == summary_text(doc)


def test_summary_ends_with_a_compact_stream_table() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "decoders.cli", "analyze", str(root / "captures" / "chromium-dtx"),
         "--no-report"],
        capture_output=True, text=True, check=False, cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = out.stdout
    header = "Streams (muted / unmuted; SDP: offer.sdp + answer.sdp):"
    assert header in text
    table = text.split(header, 1)[1]
    assert "stream" in table and "pkts/s" in table and "(muted side)" in table
    assert "-127 dBov / -29 dBov" in table  # DTX: silence while muted, speech otherwise


def test_a_leaking_level_shows_what_it_exposes_and_recommends_cryptex() -> None:
    doc = document("ui-only")
    text = summary_text(doc)
    level = next(f for f in doc["findings"] if f["id"] == "audio-level-while-muted")
    speech = [line for line in text.splitlines() if line.startswith("      speech: ")]
    assert len(speech) == 1  # one line for the one leaking window
    assert f"{level['numbers']['speech']['speech_s']:.1f} s of speech in" in speech[0]
    assert "The audio level on the wire:" in text
    assert "negotiate cryptex (RFC 9335)" in text and "'a=cryptex'" in text


def test_no_leaking_level_no_speech_line_and_no_advice() -> None:
    text = summary_text(document("gain-zero"))
    assert "speech:" not in text and "The audio level on the wire:" not in text
