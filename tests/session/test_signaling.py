"""Tests for decoders.session.signaling: SDP in every wrapping, mute signals, user rules."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
from decoders.session.payload import parse_document
from decoders.session.sdp import audio_level_extension_id, parse_sdp
from decoders.session.signaling import (
    FoundSdp,
    MuteSignal,
    describe_sdp,
    extract_sdp_blocks,
    find_mute_signals,
    find_sdp,
    load_rules,
    looks_like_sdp,
    match_rules,
    may_match,
    path_glob,
    rules_for,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "signaling"
OFFER = (FIXTURES / "whip_offer.sdp").read_bytes().decode()  # a lab session's, as recorded
ANSWER = (FIXTURES / "aiortc_answer.sdp").read_bytes().decode()
BROWSER_SSRC = parse_sdp(OFFER).audio[0].ssrcs[0]


def sdp_in(name: str) -> list[FoundSdp]:
    return find_sdp(parse_document((FIXTURES / name).read_bytes()))


@pytest.mark.parametrize(
    ("name", "text", "role", "role_from", "found_in"),
    [
        ("rtc_offer.json", OFFER, "offer", "type field", "json:sdp"),
        ("escaped_offer.json", OFFER, "offer", "type field", "json:payload(json).sdp"),
        ("socketio_answer.txt", ANSWER, "answer", "type field", "json:[1].description.sdp"),
        ("form_offer.txt", OFFER, "offer", "a=setup", "form:sdp"),
        ("whip_offer.sdp", OFFER, "offer", "a=setup", "text"),
        ("sip_invite.txt", OFFER, "offer", "sip", "sip"),
        ("sip_200_ok.txt", ANSWER, "answer", "sip", "sip"),
    ],
)
def test_real_sdp_in_every_wrapping(
    name: str, text: str, role: str, role_from: str, found_in: str
) -> None:
    assert sdp_in(name) == [FoundSdp(text, role, role_from, found_in)]  # type: ignore[arg-type]


def test_found_sdp_parses_to_the_session_facts() -> None:
    (found,) = sdp_in("escaped_offer.json")
    parsed = parse_sdp(found.text)
    assert audio_level_extension_id(parsed) == 1
    assert parsed.audio[0].ssrcs == (BROWSER_SSRC,)
    described = describe_sdp(parsed)
    assert described["audio_level_extension_id"] == 1
    (audio,) = described["media"]
    assert audio["kind"] == "audio" and audio["mid"] == "0" and audio["ssrcs"] == [BROWSER_SSRC]
    assert [1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"] in audio["extmaps"]
    assert audio["codecs"][0] == {
        "payload_type": 111,
        "name": "opus",
        "clock_rate": 48000,
        "channels": 2,
        "fmtp": "minptime=10;useinbandfec=1",
    }
    assert audio["setup"] == "actpass" and audio["cryptex"] is False
    assert audio["candidates"][0].startswith("udp 10.77.0.1 ")
    json.dumps(described)  # the event must be JSON


def test_jitsi_jingle_offer_and_answer() -> None:
    (offer,) = sdp_in("jitsi_session_initiate.xml")
    assert (offer.role, offer.role_from, offer.found_in, offer.converted_from) == (
        "offer",
        "jingle action",
        "jingle",
        "jingle",
    )
    parsed = parse_sdp(offer.text)
    assert [section.kind for section in parsed.media] == ["audio", "video"]
    assert parsed.bundle == ("audio", "video")
    assert audio_level_extension_id(parsed) == 1
    assert parsed.audio[0].ssrcs == (1865522392,)
    (answer,) = sdp_in("jitsi_session_accept.xml")
    assert answer.role == "answer"
    answered = parse_sdp(answer.text)
    assert answered.audio[0].ssrcs == (2738122117,) and answered.audio[0].setup == "active"


def test_sdp_inside_a_json_string_holding_xml_or_sip() -> None:
    stanza = (FIXTURES / "jitsi_session_initiate.xml").read_text()
    (found,) = find_sdp(parse_document(json.dumps({"stanza": stanza}).encode()))
    assert found.found_in == "json:stanza:jingle" and found.role == "offer"
    sip = (FIXTURES / "sip_invite.txt").read_bytes().decode()
    (found,) = find_sdp(parse_document(json.dumps({"msg": sip}).encode()))
    assert found.found_in == "json:msg:sip" and found.text == OFFER


def test_role_from_key_name_and_unknown() -> None:
    (found,) = find_sdp(parse_document(json.dumps({"localAnswer": OFFER}).encode()))
    assert (found.role, found.role_from) == ("answer", "key name")
    plain = OFFER.replace("a=setup:actpass\r\n", "")
    (found,) = find_sdp(parse_document(json.dumps({"blob": plain}).encode()))
    assert (found.role, found.role_from) == (None, None)


def test_several_sdps_and_surrounding_text() -> None:
    text = f"offer follows\n{OFFER}\nthen some words\n{ANSWER}trailer line without equals"
    assert extract_sdp_blocks(text) == [OFFER, ANSWER]
    assert extract_sdp_blocks("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n") == []  # no m= line
    assert [found.role for found in find_sdp(parse_document(text.encode()))] == ["offer", "answer"]


def test_looks_like_sdp() -> None:
    assert looks_like_sdp("v=0\r\no=...")
    assert looks_like_sdp("  v=0\n")
    assert not looks_like_sdp("v=01")
    assert not looks_like_sdp("v=0")


def test_broken_sdp_is_found_but_does_not_parse() -> None:
    broken = OFFER.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus")
    (found,) = find_sdp(parse_document(json.dumps({"type": "offer", "sdp": broken}).encode()))
    with pytest.raises(MalformedPacket, match="rtpmap"):
        parse_sdp(found.text)


def test_every_prefix_of_a_stanza_and_sip_message() -> None:
    for name in ("jitsi_session_initiate.xml", "sip_invite.txt", "rtc_offer.json"):
        data = (FIXTURES / name).read_bytes()
        for cut in range(0, len(data), 7):
            for found in find_sdp(parse_document(data[:cut], truncated=True)):
                with contextlib.suppress(MalformedPacket):
                    parse_sdp(found.text)


@pytest.mark.parametrize(
    ("body", "muted", "evidence"),
    [
        ({"muted": True}, True, {"path": "muted", "value": True}),
        ({"state": {"audioMuted": False}}, False, {"path": "state.audioMuted", "value": False}),
        ({"isMuted": "true"}, True, {"path": "isMuted", "value": "true"}),
        ({"mic": "off"}, True, {"path": "mic", "value": "off"}),
        ({"mic": True}, False, {"path": "mic", "value": True}),
        ({"audio": {"enabled": False}}, True, {"path": "audio.enabled", "value": False}),
        ({"self_mute": True}, True, {"path": "self_mute", "value": True}),
        (
            {"microphoneEnabled": "disabled"},
            True,
            {"path": "microphoneEnabled", "value": "disabled"},
        ),
    ],
)
def test_generic_mute_fields(body: object, muted: bool, evidence: dict[str, object]) -> None:
    assert find_mute_signals(parse_document(json.dumps(body).encode())) == [
        MuteSignal(muted, evidence)
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"video": {"muted": True}},
        {"videoMuted": True},
        {"remoteTracks": [{"muted": True}]},
        {"muted": 1},
        {"muted": "maybe"},
        {"unmuted": ["on"]},
        {"speaker": {"muted": True}},
        {"enabled": False},
        {"constraints": {"audio": True}},
    ],
)
def test_not_mute_fields(body: object) -> None:
    assert find_mute_signals(parse_document(json.dumps(body).encode())) == []


def test_jitsi_presence() -> None:
    muted = find_mute_signals(parse_document((FIXTURES / "jitsi_presence_muted.xml").read_bytes()))
    assert [signal.muted for signal in muted] == [True, True]
    assert muted[0].evidence["xml"].startswith("<audiomuted")
    assert muted[1].evidence == {"xml": "SourceInfo", "source": "3e0f55c4-a0"}
    unmuted = find_mute_signals(
        parse_document((FIXTURES / "jitsi_presence_unmuted.xml").read_bytes())
    )
    assert [signal.muted for signal in unmuted] == [False, False]
    inside_json = json.dumps({"xml": (FIXTURES / "jitsi_presence_muted.xml").read_text()})
    assert find_mute_signals(parse_document(inside_json.encode()))[0].muted is True


def test_lab_page_posts_muted_with_its_level() -> None:
    body = (FIXTURES / "lab_page_telemetry.json").read_bytes()
    assert find_mute_signals(parse_document(body)) == [
        MuteSignal(True, {"path": "muted", "value": True})
    ]


def test_rules_file_fixture() -> None:
    rules = load_rules((FIXTURES / "rules.json").read_text())
    assert [rule.name for rule in rules] == [
        "example mute API",
        "example mute over WebSocket",
        "example mute endpoint",
    ]
    api = "https://api.example.org/v1/calls/c1/state"
    chosen = rules_for(rules, api, sent=True)
    assert [rule.name for rule in chosen] == ["example mute API"]
    body = json.dumps({"participant": {"audio": {"state": "OFF"}}}).encode()
    (hit,) = match_rules(chosen, parse_document(body))
    assert (hit.rule, hit.muted, hit.value, hit.path) == (
        "example mute API",
        True,
        "OFF",
        "participant.audio.state",
    )
    live = json.dumps({"participant": {"audio": {"state": "live"}}}).encode()
    assert match_rules(chosen, parse_document(live))[0].muted is False
    assert match_rules(chosen, parse_document(b'{"participant": {"audio": {"state": 3}}}')) == []
    assert rules_for(rules, api, sent=False) == []


def test_regex_and_state_rules() -> None:
    rules = load_rules((FIXTURES / "rules.json").read_text())
    socket = rules_for(rules, "wss://rt.example.org/socket", sent=True)
    (hit,) = match_rules(socket, parse_document(b'{"ev":"media","mic":"off"}'))
    assert (hit.muted, hit.value, hit.path) == (True, "off", None)
    (hit,) = match_rules(socket, parse_document(b'x "mic":"on" y'))
    assert hit.muted is False
    mute = rules_for(rules, "https://x.example/api/mute", sent=True)
    (hit,) = match_rules(mute, parse_document(b""))
    assert hit.muted is True and hit.rule == "example mute endpoint"


def test_rule_value_comparison() -> None:
    text = json.dumps(
        {
            "rules": [
                {"url": "", "json_path": "*.on", "muted": [False, 0], "unmuted": [True]},
                {"url": "", "regex": "m=(\\w+)", "muted": [True], "unmuted": ["no"]},
            ]
        }
    )
    by_path, by_regex = load_rules(text)
    assert match_rules([by_path], parse_document(b'{"a": {"on": false}}'))[0].muted is True
    assert match_rules([by_path], parse_document(b'{"a": {"on": 0}}'))[0].muted is True
    assert match_rules([by_path], parse_document(b'{"a": {"on": true}}'))[0].muted is False
    assert match_rules([by_path], parse_document(b'{"a": {"on": 1}}')) == []
    assert match_rules([by_regex], parse_document(b"m=true"))[0].muted is True
    assert match_rules([by_regex], parse_document(b"m=NO"))[0].muted is False


def test_when_plugin_and_scope() -> None:
    """The fields the Janus rules need: other fields of the message (``when``), the plugin the
    message goes to (``janus_plugin``), and the kind of mute (``scope``), kept in the hit."""
    text = json.dumps(
        {
            "rules": [
                {
                    "name": "bridge",
                    "janus_plugin": "janus.plugin.audiobridge",
                    "when": {"janus": "message", "body.request": ["configure", "join"]},
                    "json_path": "body.muted",
                    "muted": True,
                    "unmuted": False,
                    "scope": "server",
                    "note": "read by people",
                }
            ]
        }
    )
    (rule,) = load_rules(text)
    assert rule.needle == b"muted" and rule.scope == "server"
    configure = parse_document(
        b'{"janus":"message","body":{"request":"configure","muted":true},"transaction":"t"}'
    )
    assert match_rules([rule], configure) == []  # the plugin is not known
    assert match_rules([rule], configure, plugin="janus.plugin.videoroom") == []
    (hit,) = match_rules([rule], configure, plugin="janus.plugin.audiobridge")
    assert (hit.muted, hit.path, hit.scope) == (True, "body.muted", "server")
    assert hit.evidence() == {
        "rule": "bridge",
        "value": True,
        "path": "body.muted",
        "scope": "server",
    }
    other = parse_document(b'{"janus":"message","body":{"request":"mute","muted":true}}')
    assert match_rules([rule], other, plugin="janus.plugin.audiobridge") == []
    event = parse_document(b'{"janus":"event","body":{"request":"join","muted":false}}')
    assert match_rules([rule], event, plugin="janus.plugin.audiobridge") == []


def test_media_kind_reads_a_value_beside_a_mid_of_that_kind() -> None:
    """``media_kind``: Janus 1.x names a stream by its mid; the mids' kinds come from the SDP."""
    text = json.dumps(
        {
            "rules": [
                {
                    "name": "stream",
                    "json_path": "body.streams[*].send",
                    "media_kind": "audio",
                    "muted": [False],
                    "unmuted": [True],
                }
            ]
        }
    )
    (rule,) = load_rules(text)
    assert (rule.media_kind, rule.needle) == ("audio", b"send")
    kinds = {"0": "audio", "1": "video"}
    both = parse_document(
        b'{"body":{"streams":[{"mid":"1","send":false},{"mid":"0","send":false}]}}'
    )
    (hit,) = match_rules([rule], both, kinds=kinds)
    assert (hit.muted, hit.mid, hit.path) == (True, "0", "body.streams[1].send")
    assert hit.evidence()["mid"] == "0"
    assert match_rules([rule], both) == []  # kinds unknown: nothing is read
    assert match_rules([rule], both, kinds={"0": "video", "1": "video"}) == []
    video = parse_document(b'{"body":{"streams":[{"mid":"1","send":false}]}}')
    assert match_rules([rule], video, kinds=kinds) == []
    number = parse_document(b'{"body":{"streams":[{"mid":0,"send":true}]}}')
    assert [h.muted for h in match_rules([rule], number, kinds=kinds)] == [False]
    for odd in (b'{"mid":true,"send":false}', b'{"send":false}', b'{"mid":null,"send":false}'):
        document = parse_document(b'{"body":{"streams":[' + odd + b"]}}")
        assert match_rules([rule], document, kinds=kinds) == []


def test_the_word_that_lets_other_messages_skip() -> None:
    def needle(path: str) -> bytes | None:
        return load_rules(json.dumps({"rules": [{"json_path": path, "muted": 1}]}))[0].needle

    assert needle("body.muted") == b"muted"
    assert needle("*.micState") == b"micstate"
    assert needle("items[*].on") is None  # too short to be worth it
    assert needle("payload(base64).muted") is None  # not in the bytes
    (regex,) = load_rules('{"rules": [{"regex": "mic=(on|off)", "muted": "off"}]}')
    assert regex.needle is None
    assert may_match(regex, b"anything")
    assert not may_match(load_rules('{"rules": [{"json_path": "a.muted", "muted": 1}]}')[0], b"{}")


def test_path_glob() -> None:
    assert path_glob("*.muted").fullmatch("a.b[2](json).muted")
    assert path_glob("$.items[*].mic").fullmatch("items[3].mic")
    assert not path_glob("items[0].mic").fullmatch("items[1].mic")
    assert path_glob("a.b").fullmatch("a.b") and not path_glob("a.b").fullmatch("aXb")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[]", '"rules" list'),
        ('{"version": 2, "rules": []}', "version 2"),
        ('{"rules": [3]}', "rule 1 is not an object"),
        ('{"rules": [{"url": "(", "state": "muted"}]}', "rule 1 .* url '\\(' is not a regular"),
        ('{"rules": [{"url": 3, "state": "muted"}]}', "url 3 is not a string"),
        ('{"rules": [{"state": "muted", "colour": 1}]}', "unknown field 'colour'"),
        ('{"rules": [{"state": "sleepy"}]}', "state 'sleepy'"),
        ('{"rules": [{"direction": "up", "state": "muted"}]}', "direction 'up'"),
        ('{"rules": [{"name": "n"}]}', "rule 1 \\('n'\\): needs state"),
        ('{"rules": [{"muted": ["x"]}]}', "need a json_path or regex"),
        ('{"rules": [{"json_path": "a", "regex": "b", "muted": [1]}]}', "not both"),
        ('{"rules": [{"json_path": "", "muted": [1]}]}', "json_path '' is not a path"),
        ('{"rules": [{"state": "muted", "muted": [1]}]}', "not both"),
        ('{"rules": [{"json_path": "a", "muted": [[1]]}]}', "not a JSON scalar"),
        ('{"rules": [{"state": "muted"}, {"regex": "(", "muted": ["x"]}]}', "rule 2"),
        ('{"rules": [{"state": "muted", "scope": "cloud"}]}', "scope 'cloud' is not server"),
        ('{"rules": [{"state": "muted", "janus_plugin": ""}]}', "janus_plugin '' is not a"),
        ('{"rules": [{"state": "muted", "when": []}]}', "when \\[\\] is not an object"),
        ('{"rules": [{"state": "muted", "when": {"a": []}}]}', "when 'a' has no value"),
        ('{"rules": [{"state": "muted", "when": {"": 1}}]}', "when has an empty path"),
        ('{"rules": [{"state": "muted", "when": {"a": [{}]}}]}', "not a JSON scalar"),
        ('{"rules": [{"state": "muted", "note": 3}]}', "note 3 is not a string"),
        ('{"rules": [{"json_path": "a", "muted": [1], "media_kind": "screen"}]}', "not audio or"),
        ('{"rules": [{"state": "muted", "media_kind": "audio"}]}', "media_kind needs a json_path"),
    ],
)
def test_bad_rule_files_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        load_rules(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_recognisers_never_raise(text: str) -> None:
    document = parse_document(text.encode())
    find_sdp(document)
    find_mute_signals(document)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_load_rules_raises_only_malformed_packet(text: str) -> None:
    with contextlib.suppress(MalformedPacket):
        load_rules(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"rules": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deep"),
        (
            '{"rules": [{"url": "x", "json_path": "a", "muted": [NaN], "unmuted": [0]}]}',
            "muted value nan is not a finite number",
        ),
        (
            '{"rules": [{"url": "x", "json_path": "a", "muted": [1], "unmuted": Infinity}]}',
            "unmuted value inf is not a finite number",
        ),
    ],
)
def test_rule_files_that_could_never_match_are_errors(text: str, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        load_rules(text)


_JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_RULE_FIELDS = ("name", "url", "direction", "json_path", "regex", "state", "muted", "unmuted",
                "when", "janus_plugin", "scope", "note")  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(
        st.dictionaries(st.sampled_from(_RULE_FIELDS), _JSON, min_size=1, max_size=7), max_size=3
    ),
    version=st.one_of(st.just(1), st.just(1), _JSON),
)
def test_rule_documents_of_any_shape_raise_only_malformed_packet(
    rules: list[dict[str, object]], version: object
) -> None:
    """Rule files as JSON documents with the real field names and values of any type (NaN,
    infinities, huge integers, nesting): a rule set or MalformedPacket, nothing else (issue 13)."""
    text = json.dumps({"version": version, "rules": rules})
    with contextlib.suppress(MalformedPacket):
        load_rules(text)
