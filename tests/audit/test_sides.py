"""Tests for decoders.audit.sides: a two-way capture whose muted side nothing tells.

Issue 11's acceptance: on a capture that shows both directions of a call, where the other
participant talks while the user is muted by a real mute, ``analyze --capture --timeline`` never
reports a high-confidence leak. The two-way captures are built from the lab corpus
(:mod:`helpers.peer_talks`: the speech of the ui-only session's browser replayed as the peer
talking back).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.corpus import lab_session
from helpers.peer_talks import peer_talks

from decoders.audit.analysis import Analysis, Inputs, analyze
from decoders.audit.local import LocalSide
from decoders.audit.sides import FINDING_ID, audio_senders, hint, relabel
from decoders.cli.analyze import analyze as analyze_command
from decoders.report.analysis_json import report_document
from decoders.report.html import render_html
from decoders.report.summary import summary_text

REAL_MUTES = ("track-disabled", "replace-null", "track-stopped", "dtx", "gain-zero")


_BUILT: dict[tuple[str, str], tuple[Path, str, str]] = {}


@pytest.fixture(scope="module", autouse=True)
def _build_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    folder = tmp_path_factory.mktemp("two-way")
    _BUILT[("", "")] = (folder, "", "")
    yield
    _BUILT.clear()


def two_way(muted: str, talker: str = "ui-only") -> tuple[Path, str, str]:
    """(capture, browser address, peer address), built once per module."""
    if (muted, talker) not in _BUILT:
        out = _BUILT[("", "")][0] / f"{muted}+{talker}.pcapng"
        browser, peer = peer_talks(lab_session(muted), lab_session(talker), out)
        _BUILT[(muted, talker)] = (out, browser, peer)
    return _BUILT[(muted, talker)]


def analysed(muted: str, talker: str = "ui-only", **extra: object) -> Analysis:
    capture, _, _ = two_way(muted, talker)
    timeline = lab_session(muted) / "timeline.json"
    return analyze(Inputs(capture=capture, timeline=timeline, **extra))  # type: ignore[arg-type]


@pytest.mark.parametrize("muted", REAL_MUTES)
def test_peer_talks_while_muted_is_never_a_high_confidence_leak(muted: str) -> None:
    _, browser, peer = two_way(muted)
    result = analysed(muted)
    assert result.verdict.verdict == "inconclusive" and result.verdict.exit_code == 3
    assert result.verdict.hint == f"--local {browser} or --local {peer}"
    assert not [f for f in result.findings if f.leak is not None]
    (finding,) = result.findings
    assert finding.id == FINDING_ID and finding.window == 0
    outcome = {c["address"]: c["verdict"] for c in finding.numbers["candidates"]}
    assert outcome == {browser: "no-leak", peer: "content-leak"}
    assert f"if {browser} is you: no leak" in finding.evidence
    assert f"if {peer} is you: content leak" in finding.evidence
    assert [c.address for c in result.candidates] == [browser, peer]
    # the hint is right: given, the verdict is the real mute's
    decided = analysed(muted, local=(browser,))
    assert decided.verdict.verdict == "no-leak"
    assert all(f.severity == "info" for f in decided.findings)


def test_the_hint_in_terminal_json_and_html() -> None:
    _, browser, peer = two_way("track-disabled")
    result = analysed("track-disabled")
    doc = report_document(result)
    assert doc["verdict"]["hint"] == f"--local {browser} or --local {peer}"
    assert [c["local_argument"] for c in doc["muted_side"]["candidates"]] == [
        f"--local {browser}",
        f"--local {peer}",
    ]
    assert doc["muted_side"]["confidence"] == "none"
    assert {e["source"] for e in doc["muted_side"]["evidence"]} == {"ICE controlling agent"}
    text = summary_text(json.loads(json.dumps(doc)))
    assert f"to decide: run again with --local {browser} or --local {peer}" in text
    html = render_html(result)
    assert f"<code>--local {browser} or --local {peer}</code>" in html


def test_cli_exit_code_and_hint(tmp_path: Path) -> None:
    capture, browser, _ = two_way("track-disabled")
    timeline = lab_session("track-disabled") / "timeline.json"
    args = ["--capture", str(capture), "--timeline", str(timeline), "--no-report", "--no-color"]
    result = CliRunner().invoke(analyze_command, args)
    assert result.exit_code == 3, result.output
    assert f"--local {browser}" in result.output
    decided = CliRunner().invoke(analyze_command, [*args, "--local", browser])
    assert decided.exit_code == 0, decided.output


def test_the_sdp_in_events_decides_with_high_confidence() -> None:
    events = lab_session("track-disabled") / "events.jsonl"
    result = analysed("track-disabled", events=events)
    assert result.local.confidence == "high" and not result.candidates
    assert result.verdict.verdict == "no-leak" and result.verdict.confidence >= 0.85


def test_a_leak_on_every_side_is_still_no_leak_of_yours_until_you_say() -> None:
    """Both directions carry speech while muted: inconclusive, each candidate a content leak."""
    _, browser, peer = two_way("ui-only", talker="quiet")
    result = analysed("ui-only", talker="quiet")
    assert result.verdict.verdict == "inconclusive"
    assert result.verdict.hint == f"--local {browser} or --local {peer}"
    assert {c.verdict.verdict for c in result.candidates} == {"content-leak"}
    decided = analysed("ui-only", talker="quiet", local=(browser,))
    assert decided.verdict.verdict == "content-leak" and decided.verdict.confidence >= 0.85
    assert decided.media is not None
    mine = {s.label for s in decided.media.streams if s.src == browser}
    assert {f.stream_label for f in decided.findings if f.leak} == mine


def test_silence_on_every_side_is_no_leak() -> None:
    """Neither direction sends sound while muted: no leak, whichever address is you."""
    result = analysed("track-disabled", talker="gain-zero")
    assert {c.verdict.verdict for c in result.candidates} == {"no-leak"}
    assert result.verdict.verdict == "no-leak"
    assert "the same whichever of" in result.verdict.reason


def test_relabel_and_senders() -> None:
    result = analysed("track-disabled")
    assert result.media is not None
    _, browser, peer = two_way("track-disabled")
    assert audio_senders(result.media) == [browser, peer]
    mine = relabel(result.media, LocalSide(frozenset({browser}), confidence="high"))
    assert [s.local for s in mine.streams] == [s.src == browser for s in mine.streams]
    assert audio_senders(mine) == [browser]
    assert hint(result.candidates) == f"--local {browser} or --local {peer}"


# -- the lab's real two-way recordings (the aiortc peer talks back the whole call) -------------
PEER_TALKS = {"track-disabled-peer-talks": "no-leak", "ui-only-peer-talks": "content-leak"}


@pytest.mark.parametrize("name", list(PEER_TALKS))
def test_real_peer_talks_capture_and_timeline_alone(name: str) -> None:
    """Capture + timeline only: nothing in it says which side is you, so no leak is claimed."""
    folder = lab_session(name)
    network = json.loads((folder / "session.json").read_text())["network"]
    browser, peer = network["browser"]["address"], network["peer"]["address"]
    result = analyze(Inputs(capture=folder / "capture.pcapng", timeline=folder / "timeline.json"))
    assert result.verdict.verdict == "inconclusive" and result.verdict.exit_code == 3
    assert not [f for f in result.findings if f.leak is not None]
    assert result.verdict.hint == f"--local {browser} or --local {peer}"
    outcome = {c.address: c.verdict.verdict for c in result.candidates}
    assert outcome[browser] == PEER_TALKS[name]
    assert outcome[peer] == "content-leak"  # the peer's speech, were it you
    decided = analyze(
        Inputs(
            capture=folder / "capture.pcapng",
            timeline=folder / "timeline.json",
            local=(browser,),
        )
    )
    assert decided.verdict.verdict == PEER_TALKS[name]


@pytest.mark.parametrize("name", list(PEER_TALKS))
def test_real_peer_talks_whole_session(name: str) -> None:
    """With the session folder the side is known (high): the peer's speech is never judged."""
    folder = lab_session(name)
    browser = json.loads((folder / "session.json").read_text())["network"]["browser"]["address"]
    result = analyze(Inputs(session_dir=folder))
    assert result.local.confidence == "high" and not result.candidates
    assert result.verdict.verdict == PEER_TALKS[name] and result.verdict.confidence >= 0.85
    assert result.media is not None
    judged = [s for s in result.media.streams if s.judged]
    assert judged and all(s.src == browser for s in judged)
    assert all(
        f.stream_label is None or f.stream_label.startswith(browser) for f in result.findings
    )
