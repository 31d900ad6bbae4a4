"""Tests for decoders.session.sdpsources: the SDP of a session from every place it can be, on
the recorded corpus (offer/answer files, the addon's events, flows.mitm replayed) and on a
Janus-style JSON ``jsep`` message taken through the addon's own monitor."""

import json
import shutil
from pathlib import Path

import pytest

from decoders.audit.messages import replay_flows
from decoders.errors import MalformedPacket
from decoders.session.events import Event, read_events
from decoders.session.monitor import FlowRef, Message, Monitor
from decoders.session.sdp import parse_sdp, payload_types, ssrc_roles
from decoders.session.sdpsources import CRYPTEX_LINE, NO_SDP, cryptex, session_sdp

SESSION = Path(__file__).resolve().parents[2] / "captures" / "chromium-ui-only"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sdp"


def corpus_events() -> list[Event]:
    with (SESSION / "events.jsonl").open("rb") as fo:
        return list(read_events(fo))


def files() -> tuple[Path, Path]:
    return SESSION / "offer.sdp", SESSION / "answer.sdp"


def test_offer_and_answer_files_and_the_same_sdp_in_events_counted_once() -> None:
    found = session_sdp(files=files(), events=corpus_events())
    assert found.source == "offer.sdp + answer.sdp"
    assert [(d.found_in, d.role) for d in found.documents] == [
        ("offer.sdp", "offer"),
        ("answer.sdp", "answer"),
    ]
    assert found.description is not None
    offer = parse_sdp((SESSION / "offer.sdp").read_text())
    answer = parse_sdp((SESSION / "answer.sdp").read_text())
    assert found.description.media == offer.media + answer.media


def test_events_alone_give_both_directions() -> None:
    found = session_sdp(events=corpus_events())
    assert found.source == "events.jsonl (2 sdp events)"
    assert [(d.direction, d.role) for d in found.documents] == [
        ("sent", "offer"),
        ("received", "answer"),
    ]
    from_files = session_sdp(files=files()).description
    assert found.description is not None and from_files is not None
    assert ssrc_roles(found.description) == ssrc_roles(from_files)
    assert payload_types(found.description) == payload_types(from_files)


def test_flows_are_replayed_only_when_nothing_else_has_sdp() -> None:
    calls: list[int] = []

    def replay() -> list[Event]:
        calls.append(1)
        with (SESSION / "flows.mitm").open("rb") as fo:
            return replay_flows(fo)

    assert session_sdp(files=files(), flow_events=replay).source == "offer.sdp + answer.sdp"
    assert calls == []
    found = session_sdp(flow_events=replay)
    assert calls == [1]
    assert found.source == "flows.mitm (2 sdp messages)"
    assert [d.direction for d in found.documents] == ["sent", "received"]


def test_given_files_are_the_only_source(tmp_path: Path) -> None:
    given = tmp_path / "mine.sdp"
    shutil.copy(FIXTURES / "firefox_offer.sdp", given)
    found = session_sdp(given=(given,), files=files(), events=corpus_events())
    assert found.source == "--sdp"
    assert [d.found_in for d in found.documents] == [f"--sdp {given}"]
    assert found.description is not None
    assert 124 in payload_types(found.description)


def test_nothing_says_it_was_inferred() -> None:
    found = session_sdp(events=[{"kind": "mute", "t": 1.0}])
    assert (found.description, found.source, found.documents) == (None, NO_SDP, ())
    assert found.to_json() == {"source": NO_SDP, "documents": [], "skipped": []}


def test_a_broken_file_is_a_user_error_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "offer.sdp"
    broken.write_text("hello")
    with pytest.raises(MalformedPacket, match=str(broken)):
        session_sdp(files=(broken,))


def test_a_broken_event_is_skipped_and_listed() -> None:
    events: list[Event] = [{"kind": "sdp", "t": 1.0, "sdp": "v=0\r\nm=audio x"}]
    events += corpus_events()
    found = session_sdp(events=events)
    assert found.source == "events.jsonl (2 sdp events)"
    assert len(found.skipped) == 1 and found.skipped[0].startswith("events.jsonl event 1: SDP")


def test_janus_jsep_in_a_websocket_message_becomes_an_sdp_event_that_is_used() -> None:
    """Janus sends its offer inside JSON (``jsep``); the addon's monitor finds it."""
    sdp = (FIXTURES / "firefox_offer.sdp").read_text()
    body = {"janus": "event", "plugindata": {"plugin": "janus.plugin.videoroom", "data": {}}}
    body["jsep"] = {"type": "offer", "sdp": sdp}
    message = Message(
        flow=FlowRef(id="f1", type="websocket", url="wss://janus.test/", message=3),
        endpoint="wss://janus.test/",
        sent=False,
        content=json.dumps(body).encode(),
        label="WebSocket wss://janus.test/ (received)",
    )
    events = Monitor().observe(message, 1_764_000_000.0).events
    found = session_sdp(events=events)
    assert found.source == "events.jsonl (1 sdp event)"
    assert [(d.direction, d.role) for d in found.documents] == [("received", "offer")]
    assert found.description is not None
    roles = ssrc_roles(found.description)
    assert (roles[2731530283].role, roles[2731530283].media) == ("rtx", "video")


def with_cryptex(tmp_path: Path, name: str, *, session_level: bool = False) -> Path:
    """The lab's SDP file ``name`` with ``a=cryptex`` added (after ``t=`` for the session
    level, else in the m=audio section)."""
    lines = (SESSION / name).read_text().splitlines()
    at = next(
        i for i, line in enumerate(lines) if line.startswith("t=" if session_level else "m=audio")
    )
    lines.insert(at + 1, "a=cryptex")
    out = tmp_path / name
    out.write_text("\r\n".join(lines) + "\r\n")
    return out


def test_the_lab_negotiated_no_cryptex() -> None:
    found = cryptex(session_sdp(files=files()))
    assert found.negotiated is False
    assert found.evidence == "no a=cryptex in offer.sdp, answer.sdp"
    assert found.to_json()["line"] == CRYPTEX_LINE == "a=cryptex"


@pytest.mark.parametrize("session_level", [False, True])
def test_cryptex_in_offer_and_answer_is_negotiated(tmp_path: Path, session_level: bool) -> None:
    both = (
        with_cryptex(tmp_path, "offer.sdp", session_level=session_level),
        with_cryptex(tmp_path, "answer.sdp", session_level=session_level),
    )
    found = cryptex(session_sdp(files=both))
    assert found.negotiated is True
    assert found.evidence == "a=cryptex in both the offer and the answer (offer.sdp and answer.sdp)"


def test_cryptex_offered_but_not_answered_is_not_negotiated(tmp_path: Path) -> None:
    found = cryptex(
        session_sdp(files=(with_cryptex(tmp_path, "offer.sdp"), SESSION / "answer.sdp"))
    )
    assert found.negotiated is False and found.evidence == "no a=cryptex in answer.sdp"


def test_one_side_or_no_sdp_does_not_tell(tmp_path: Path) -> None:
    assert cryptex(session_sdp()).negotiated is None
    one = cryptex(session_sdp(files=(with_cryptex(tmp_path, "offer.sdp"),)))
    assert one.negotiated is None and "the other side's SDP was not seen" in one.evidence
