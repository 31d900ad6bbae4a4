"""Tests for decoders.session.jingle: Jitsi-style Jingle stanzas written out as SDP."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.session.jingle import jingle_to_sdp
from decoders.session.sdp import parse_sdp

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "signaling"
INITIATE = (FIXTURES / "jitsi_session_initiate.xml").read_text()
ACCEPT = (FIXTURES / "jitsi_session_accept.xml").read_text()


def test_session_initiate_is_an_offer_with_every_mapped_field() -> None:
    (description,) = jingle_to_sdp(INITIATE)
    assert (description.action, description.role, description.sid) == (
        "session-initiate",
        "offer",
        "6g8bsr8g8ia0",
    )
    sdp = parse_sdp(description.sdp)
    audio, video = sdp.media
    assert (audio.kind, audio.mid, audio.protocol) == ("audio", "audio", "UDP/TLS/RTP/SAVPF")
    assert [(c.payload_type, c.name, c.clock_rate, c.channels) for c in audio.codecs] == [
        (111, "opus", 48000, 2),
        (126, "telephone-event", 8000, 1),
    ]
    assert audio.codecs[0].fmtp == "minptime=10;useinbandfec=1"
    assert audio.extmaps == (
        (1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        (5, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"),
    )
    assert audio.ssrcs == (1865522392,)
    assert ("ssrc", "1865522392 msid:mixedmslabel mixedlabelaudio0") in audio.attributes
    assert audio.ice_ufrag == "4f0qk1h0ri1ham" and audio.ice_pwd == "1ojf0m8a2dh9j8la3k0p5jsr2n"
    assert audio.setup == "actpass" and audio.fingerprints[0][0] == "sha-256"
    assert audio.rtcp_mux
    host, srflx = audio.candidates
    assert (host.address, host.port, host.type, host.transport) == (
        "10.77.0.2",
        10000,
        "host",
        "udp",
    )
    assert (srflx.type, srflx.related_address, srflx.related_port) == ("srflx", "10.77.0.2", 10000)
    assert [c.name for c in video.codecs] == ["VP8", "rtx"]
    assert video.codecs[1].fmtp == "apt=100"
    assert sdp.bundle == ("audio", "video")


def test_session_accept_is_an_answer() -> None:
    (description,) = jingle_to_sdp(ACCEPT)
    assert description.role == "answer"
    (audio,) = parse_sdp(description.sdp).media
    assert audio.setup == "active" and audio.ssrcs == (2738122117,)
    assert audio.candidates[0].port == 36762


def test_other_actions_and_other_xml_give_nothing() -> None:
    assert jingle_to_sdp(INITIATE.replace("session-initiate", "transport-info")) == []
    assert jingle_to_sdp("<presence/>") == []
    assert jingle_to_sdp(INITIATE[: len(INITIATE) // 2]) == []  # not well-formed
    doctype = '<!DOCTYPE x [<!ENTITY a "aaaa">]>' + INITIATE
    assert jingle_to_sdp(doctype) == []
    no_contents = '<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="s"/>'
    assert jingle_to_sdp(no_contents) == []


def test_values_that_cannot_go_into_sdp_are_left_out() -> None:
    odd = INITIATE.replace('name="opus"', 'name="op us"').replace('id="5"', 'id="x"')
    odd = odd.replace('ip="10.77.0.2"', 'ip="10.77.0.2&#10;a=evil"')
    (description,) = jingle_to_sdp(odd)
    assert "evil" not in description.sdp
    audio = parse_sdp(description.sdp).media[0]
    assert [c.payload_type for c in audio.codecs] == [126]
    assert audio.extmaps == ((1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),)
    assert len(audio.candidates) == 1


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(INITIATE)), st.text(max_size=20))
def test_damaged_stanzas_never_raise(position: int, noise: str) -> None:
    for description in jingle_to_sdp(INITIATE[:position] + noise + INITIATE[position:]):
        assert description.sdp.startswith("v=0\r\n")
