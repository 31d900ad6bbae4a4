"""Tests for decoders.session.sdp: every field of every fixture, aiortc as an independent oracle,
odd-but-valid SDP, broken SDP, every prefix of every fixture, and Hypothesis.

Fixtures are written by tests/fixtures/make_sdp.py (aiortc_answer.sdp is aiortc's own output).
"""

import contextlib
import re
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import aiortc.sdp
import pylibsrtp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
from decoders.session.sdp import (
    AUDIO_LEVEL_URI,
    Candidate,
    Codec,
    CryptoAttribute,
    MediaSection,
    SessionDescription,
    SsrcRole,
    audio_level_extension_id,
    merge_descriptions,
    parse_sdp,
    payload_types,
    ssrc_roles,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sdp"
FIXTURE_NAMES = sorted(path.name for path in FIXTURES.glob("*.sdp"))

ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
SDES_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
TOFFSET = "urn:ietf:params:rtp-hdrext:toffset"

CHROMIUM_FINGERPRINT = (
    "F8:B4:4A:4F:CB:08:DB:0E:74:F1:F7:AA:B1:9F:AF:DB:"
    "F0:C3:E9:64:40:1D:CD:08:16:2A:68:19:B5:EF:CA:56"
)
FIREFOX_FINGERPRINT = (
    "15:BE:C7:BD:F2:1A:25:4D:F9:B1:B9:10:31:84:DC:35:"
    "B0:38:24:86:2C:20:1A:82:B5:48:AC:80:23:B3:AB:91"
)
ALLOW_MIXED_FINGERPRINT = (
    "8A:81:DD:2E:D9:F3:D8:C6:A6:75:FA:A6:1B:D5:D1:4A:"
    "81:84:CF:0B:43:2F:5F:52:87:AC:E6:36:50:4E:7B:29"
)
JITSI_FINGERPRINT = (
    "F3:BF:94:E1:EE:1F:46:0D:38:99:1A:2E:05:5A:43:B1:"
    "84:D3:9F:DB:D8:E4:AB:87:AF:46:13:80:76:66:A1:B0"
)
AIORTC_FINGERPRINTS = (
    (
        "sha-256",
        "18:FA:67:72:BF:BC:0F:1F:4C:97:F1:9E:08:6D:89:C3:"
        "C0:1F:8A:47:A6:F1:EA:33:5A:F7:CD:6D:28:8E:4F:6B",
    ),
    (
        "sha-384",
        "7A:9D:D4:2E:D9:5C:A2:A4:2E:FA:FA:9D:BC:6B:8C:53:E5:69:8F:80:E0:0A:31:85:"
        "38:C8:93:D1:DE:45:4A:D8:B7:38:80:A6:A6:ED:3D:A2:5E:9D:16:6A:C2:42:2B:DC",
    ),
    (
        "sha-512",
        "1A:5D:34:79:8C:2B:66:47:BB:F2:A3:3D:C9:78:47:E5:4D:4C:F9:54:EF:D8:9C:F8:"
        "4E:BD:C6:91:F8:94:E6:7D:68:61:15:15:0B:44:6D:87:15:1E:98:63:22:EB:C5:17:"
        "3E:9D:DB:62:49:2C:A4:9E:98:D2:97:07:F2:64:1C:DB",
    ),
)


def load(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode()


def raw_attributes(text: str) -> list[list[tuple[str, str | None]]]:
    """The a= lines of each part (session first), split at the first colon: a naive second walk."""
    parts: list[list[tuple[str, str | None]]] = [[]]
    for line in text.split("\r\n"):
        if line.startswith("m="):
            parts.append([])
        elif line.startswith("a="):
            name, colon, value = line[2:].partition(":")
            parts[-1].append((name, value if colon else None))
    return parts


def without_attributes(sdp: SessionDescription) -> SessionDescription:
    return replace(sdp, attributes=(), media=())


def section_fields(section: MediaSection) -> MediaSection:
    return replace(section, attributes=())


def media(**fields: object) -> MediaSection:
    """An expected MediaSection: defaults for what most sections leave unset."""
    values: dict[str, object] = {
        "mid": None,
        "direction": None,
        "connection_address": "0.0.0.0",
        "codecs": (),
        "extmaps": (),
        "ssrcs": (),
        "ssrc_groups": (),
        "crypto": (),
        "fingerprints": (),
        "setup": None,
        "ice_ufrag": None,
        "ice_pwd": None,
        "candidates": (),
        "rtcp_mux": False,
        "extmap_allow_mixed": False,
        "cryptex": False,
        "attributes": (),
    }
    values.update(fields)
    return MediaSection(**values)  # type: ignore[arg-type]


def session(**fields: object) -> SessionDescription:
    """An expected session part (attributes and media compared separately)."""
    values: dict[str, object] = {
        "origin": None,
        "session_name": "-",
        "connection_address": None,
        "groups": (),
        "direction": None,
        "extmaps": (),
        "extmap_allow_mixed": False,
        "cryptex": False,
        "fingerprints": (),
        "setup": None,
        "ice_ufrag": None,
        "ice_pwd": None,
        "ice_lite": False,
        "attributes": (),
        "media": (),
    }
    values.update(fields)
    return SessionDescription(**values)  # type: ignore[arg-type]


def host(
    foundation: str,
    transport: str,
    priority: int,
    address: str,
    port: int,
    tcp_type: str | None = None,
) -> Candidate:
    """A component-1 host candidate (no related address)."""
    return Candidate(
        foundation, 1, transport, priority, address, port, "host", tcp_type, None, None
    )


# --- every field of every fixture ----------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_attributes_are_every_a_line_in_order(name: str) -> None:
    text = load(name)
    sdp = parse_sdp(text)
    expected = raw_attributes(text)
    assert list(sdp.attributes) == expected[0]
    assert [list(section.attributes) for section in sdp.media] == expected[1:]


def test_chromium_offer() -> None:
    sdp = parse_sdp(load("chromium_offer.sdp"))
    assert without_attributes(sdp) == session(
        origin="- 6917458325417351842 2 IN IP4 127.0.0.1",
        groups=(("BUNDLE", ("0",)),),
    )
    assert [section_fields(section) for section in sdp.media] == [
        media(
            kind="audio",
            port=9,
            protocol="UDP/TLS/RTP/SAVPF",
            formats=("111", "63", "9", "0", "8", "13", "110", "126"),
            mid="0",
            direction="sendrecv",
            codecs=(
                Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1"),
                Codec(63, "red", 48000, 2, "111/111"),
                Codec(9, "G722", 8000, 1, None),
                Codec(0, "PCMU", 8000, 1, None),
                Codec(8, "PCMA", 8000, 1, None),
                Codec(13, "CN", 8000, 1, None),
                Codec(110, "telephone-event", 48000, 1, None),
                Codec(126, "telephone-event", 8000, 1, None),
            ),
            extmaps=((1, AUDIO_LEVEL_URI), (2, ABS_SEND_TIME), (3, TRANSPORT_CC), (4, SDES_MID)),
            ssrcs=(2233445566,),
            fingerprints=(("sha-256", CHROMIUM_FINGERPRINT),),
            setup="actpass",
            ice_ufrag="Xy7f",
            ice_pwd="q9Zk2Lm8Np4Rs6Tu0Vw3Yb5C",
            candidates=(
                host("1467250027", "udp", 2122260223, "10.77.0.1", 46243),
                host("2509425915", "tcp", 1518280447, "10.77.0.1", 9, "active"),
            ),
            rtcp_mux=True,
        )
    ]
    assert sdp.audio == sdp.media
    assert sdp.bundle == ("0",)
    assert audio_level_extension_id(sdp) == 1
    assert sdp.media[0].extension_id(SDES_MID) == 4
    assert sdp.media[0].extension_id("urn:example:unknown") is None
    assert sdp.media[0].codec(111) == Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1")
    assert sdp.media[0].codec(96) is None
    assert sdp.media[0].codecs[0].parameters == {"minptime": "10", "useinbandfec": "1"}
    assert sdp.media[0].codecs[1].parameters == {"111/111": None}


def test_aiortc_answer() -> None:
    sdp = parse_sdp(load("aiortc_answer.sdp"))
    assert without_attributes(sdp) == session(
        origin="- 3735928559 3735928559 IN IP4 0.0.0.0",
        groups=(("BUNDLE", ("0",)),),
    )
    assert [section_fields(section) for section in sdp.media] == [
        media(
            kind="audio",
            port=50000,
            protocol="UDP/TLS/RTP/SAVPF",
            formats=("111", "9", "0", "8"),
            mid="0",
            direction="sendrecv",
            connection_address="10.77.0.2",
            codecs=(
                Codec(111, "opus", 48000, 2, None),
                Codec(9, "G722", 8000, 1, None),
                Codec(0, "PCMU", 8000, 1, None),
                Codec(8, "PCMA", 8000, 1, None),
            ),
            # aiortc kept only the extensions it implements, with the offerer's ids
            extmaps=((1, AUDIO_LEVEL_URI), (4, SDES_MID)),
            ssrcs=(1122334455,),
            fingerprints=AIORTC_FINGERPRINTS,
            setup="active",
            ice_ufrag="Ab3d",
            ice_pwd="Rk2Qw8Zt5Yp1Xn7Lm4Vb6c",
            candidates=(
                Candidate(
                    "7d29cf5eeea026d170405008f4c01753",
                    1,
                    "udp",
                    2130706431,
                    "10.77.0.2",
                    50000,
                    "host",
                    None,
                    None,
                    None,
                ),
            ),
            rtcp_mux=True,
        )
    ]
    assert audio_level_extension_id(sdp) == 1
    assert payload_types(sdp) == {
        111: ("audio", Codec(111, "opus", 48000, 2, None)),
        9: ("audio", Codec(9, "G722", 8000, 1, None)),
        0: ("audio", Codec(0, "PCMU", 8000, 1, None)),
        8: ("audio", Codec(8, "PCMA", 8000, 1, None)),
    }


def test_firefox_offer() -> None:
    sdp = parse_sdp(load("firefox_offer.sdp"))
    fingerprints = (("sha-256", FIREFOX_FINGERPRINT),)
    assert without_attributes(sdp) == session(
        origin="mozilla...THIS_IS_SDPARTA-128.0 3829167465317260374 0 IN IP4 0.0.0.0",
        groups=(("BUNDLE", ("0", "1")),),
        fingerprints=fingerprints,
    )
    common: dict[str, object] = {
        "port": 9,
        "protocol": "UDP/TLS/RTP/SAVPF",
        "direction": "sendrecv",
        "fingerprints": fingerprints,  # inherited from the session level
        "setup": "actpass",
        "ice_ufrag": "e874cc64",
        "ice_pwd": "5f0c2e4c00d47ab948666a0da73a17c3",
        "rtcp_mux": True,
    }
    assert [section_fields(section) for section in sdp.media] == [
        media(
            kind="audio",
            formats=("109", "9", "0", "8", "101"),
            mid="0",
            codecs=(
                Codec(109, "opus", 48000, 2, "maxplaybackrate=48000;stereo=1;useinbandfec=1"),
                Codec(9, "G722", 8000, 1, None),
                Codec(0, "PCMU", 8000, 1, None),
                Codec(8, "PCMA", 8000, 1, None),
                Codec(101, "telephone-event", 8000, 1, "0-15"),
            ),
            extmaps=(
                (1, AUDIO_LEVEL_URI),
                (2, "urn:ietf:params:rtp-hdrext:csrc-audio-level"),
                (3, SDES_MID),
            ),
            ssrcs=(3570614608,),
            candidates=(
                host("0", "udp", 2122252543, "10.77.0.1", 52311),
                Candidate(
                    foundation="1",
                    component=1,
                    transport="udp",
                    priority=1686052863,
                    address="203.0.113.45",
                    port=52311,
                    type="srflx",
                    tcp_type=None,
                    related_address="10.77.0.1",
                    related_port=52311,
                ),
                Candidate(
                    foundation="2",
                    component=1,
                    transport="udp",
                    priority=92217087,
                    address="198.51.100.9",
                    port=61022,
                    type="relay",
                    tcp_type=None,
                    related_address="203.0.113.45",
                    related_port=52311,
                ),
                host("3", "tcp", 2105524479, "10.77.0.1", 9, "active"),
            ),
            **common,
        ),
        media(
            kind="video",
            formats=("120", "124", "126", "127"),
            mid="1",
            codecs=(
                Codec(120, "VP8", 90000, None, "max-fs=12288;max-fr=60"),
                Codec(124, "rtx", 90000, None, "apt=120"),
                Codec(
                    126,
                    "H264",
                    90000,
                    None,
                    "profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1",
                ),
                Codec(127, "rtx", 90000, None, "apt=126"),
            ),
            extmaps=(
                (3, SDES_MID),
                (4, ABS_SEND_TIME),
                (5, TOFFSET),
                (6, "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"),
                (7, TRANSPORT_CC),
            ),
            ssrcs=(1393486425, 2731530283),
            ssrc_groups=(("FID", (1393486425, 2731530283)),),
            **common,
        ),
    ]
    assert audio_level_extension_id(sdp) == 1
    assert {pt: kind for pt, (kind, _) in payload_types(sdp).items()} == {
        109: "audio",
        9: "audio",
        0: "audio",
        8: "audio",
        101: "audio",
        120: "video",
        124: "video",
        126: "video",
        127: "video",
    }
    assert [section.kind for section in sdp.audio] == ["audio"]


SDES_KEYS = (
    bytes.fromhex("3cedacc9328559dd7c823977f465ea763f2c50f4325f6aac9bed5a39638f"),
    bytes.fromhex("a5a3f69d897d184800159031a9130d5920c81ab604687f2cbf3f6fd79ed4"),
    bytes.fromhex("99f0d5770e56dafbd9b9bbc76f72884571a8061e1d2feac204d46d05"),
)


def test_sdes_offer() -> None:
    sdp = parse_sdp(load("sdes_offer.sdp"))
    assert without_attributes(sdp) == session(
        origin="mutecheck-sip 1718000000 1718000001 IN IP4 192.0.2.10",
        session_name="SIP Call",
        connection_address="192.0.2.10",
        direction="sendrecv",
    )
    assert [section_fields(section) for section in sdp.media] == [
        media(
            kind="audio",
            port=49170,
            protocol="RTP/SAVP",
            formats=("0", "8", "18", "9", "101"),
            direction="sendrecv",  # from the session level
            connection_address="192.0.2.10",  # from the session level
            codecs=(  # 0, 8, 18 and 9 have no rtpmap: RFC 3551 static payload types
                Codec(0, "PCMU", 8000, 1, None),
                Codec(8, "PCMA", 8000, 1, None),
                Codec(18, "G729", 8000, 1, "annexb=no"),
                Codec(9, "G722", 8000, 1, None),
                Codec(101, "telephone-event", 8000, 1, "0-16"),
            ),
            extmaps=((1, AUDIO_LEVEL_URI),),  # "1/sendrecv ... vad=on"
            crypto=(
                CryptoAttribute(
                    tag=1,
                    suite="AES_CM_128_HMAC_SHA1_80",
                    key_params=("inline:PO2syTKFWd18gjl39GXqdj8sUPQyX2qsm+1aOWOP",),
                    key=SDES_KEYS[0],
                    lifetime=None,
                    mki=None,
                    session_params=(),
                ),
                CryptoAttribute(
                    tag=2,
                    suite="AES_CM_128_HMAC_SHA1_32",
                    key_params=("inline:paP2nYl9GEgAFZAxqRMNWSDIGrYEaH8svz9v157U|2^20|1:4",),
                    key=SDES_KEYS[1],
                    lifetime=2**20,
                    mki=(1, 4),
                    session_params=(),
                ),
                CryptoAttribute(
                    tag=3,
                    suite="AEAD_AES_128_GCM",
                    key_params=("inline:mfDVdw5W2vvZubvHb3KIRXGoBh4dL+rCBNRtBQ==",),
                    key=SDES_KEYS[2],
                    lifetime=None,
                    mki=None,
                    session_params=("WSH=128", "UNENCRYPTED_SRTCP"),
                ),
            ),
        )
    ]
    assert audio_level_extension_id(sdp) == 1
    assert sdp.bundle == ()


@pytest.mark.parametrize(
    ("index", "profile"),
    [
        (0, pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80),
        (1, pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32),
        (2, pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM),
    ],
)
def test_sdes_keys_fit_libsrtp(index: int, profile: int) -> None:
    """libsrtp (an independent implementation) takes each decoded key for its suite and uses it."""
    crypto = parse_sdp(load("sdes_offer.sdp")).media[0].crypto[index]
    assert crypto.key is not None
    policy = pylibsrtp.Policy(
        key=crypto.key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
    )
    rtp = bytes.fromhex("80000001000000010000abcd") + bytes(20)
    assert len(pylibsrtp.Session(policy=policy).protect(rtp)) > len(rtp)


def test_allow_mixed_cryptex_offer() -> None:
    sdp = parse_sdp(load("allow_mixed_cryptex_offer.sdp"))
    assert without_attributes(sdp) == session(
        origin="- 1530474921843752071 2 IN IP4 127.0.0.1",
        groups=(("BUNDLE", ("0", "1", "2")),),
        extmap_allow_mixed=True,
    )
    common: dict[str, object] = {
        "port": 9,
        "fingerprints": (("sha-256", ALLOW_MIXED_FINGERPRINT),),
        "setup": "actpass",
        "ice_ufrag": "Pq4z",
        "ice_pwd": "Hn7Jd2Ks9Lf3Mg6Nb1Vc8Xz0",
        "extmap_allow_mixed": True,  # inherited from the session level
    }
    assert [section_fields(section) for section in sdp.media] == [
        media(
            kind="audio",
            protocol="UDP/TLS/RTP/SAVPF",
            formats=("111", "0"),
            mid="0",
            direction="sendonly",
            codecs=(
                Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1;usedtx=1"),
                Codec(0, "PCMU", 8000, 1, None),
            ),
            extmaps=((10, AUDIO_LEVEL_URI), (2, ABS_SEND_TIME), (3, TRANSPORT_CC), (4, SDES_MID)),
            ssrcs=(305419896,),
            candidates=(host("3873416302", "udp", 2122260223, "10.77.0.1", 40719),),
            rtcp_mux=True,
            cryptex=True,
            **common,
        ),
        media(
            kind="video",
            protocol="UDP/TLS/RTP/SAVPF",
            formats=("96", "97"),
            mid="1",
            direction="recvonly",
            codecs=(Codec(96, "VP8", 90000, None, None), Codec(97, "rtx", 90000, None, "apt=96")),
            extmaps=(
                (14, TOFFSET),
                (2, ABS_SEND_TIME),
                (3, TRANSPORT_CC),
                (4, SDES_MID),
                (
                    17,
                    "https://aomediacodec.github.io/av1-rtp-spec/"
                    "#dependency-descriptor-rtp-header-extension",
                ),
            ),
            rtcp_mux=True,
            cryptex=True,
            **common,
        ),
        media(
            kind="application",
            protocol="UDP/DTLS/SCTP",
            formats=("webrtc-datachannel",),
            mid="2",
            **common,
        ),
    ]
    assert audio_level_extension_id(sdp) == 10  # never assume id 1
    assert sdp.media[0].codecs[0].parameters == {
        "minptime": "10",
        "useinbandfec": "1",
        "usedtx": "1",
    }
    assert list(payload_types(sdp)) == [111, 0, 96, 97]


def test_jitsi_planb_offer() -> None:
    sdp = parse_sdp(load("jitsi_planb_offer.sdp"))
    assert without_attributes(sdp) == session(
        origin="- 1923518516 2 IN IP4 0.0.0.0",
        groups=(("BUNDLE", ("audio", "video", "data")),),
    )
    common: dict[str, object] = {
        "port": 1,
        "fingerprints": (("sha-256", JITSI_FINGERPRINT),),
        "setup": "actpass",
        "ice_ufrag": "1f4mr1hb7qkbq8",
        "ice_pwd": "548f206e824b58323423cb097f",
    }
    assert [section_fields(section) for section in sdp.media] == [
        media(
            kind="audio",
            protocol="RTP/SAVPF",
            formats=("111", "103", "104", "126"),
            mid="audio",
            direction="sendrecv",
            codecs=(
                Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1"),
                Codec(103, "ISAC", 16000, 1, None),
                Codec(104, "ISAC", 32000, 1, None),
                Codec(126, "telephone-event", 8000, 1, None),
            ),
            extmaps=((1, AUDIO_LEVEL_URI), (3, ABS_SEND_TIME)),
            ssrcs=(1516270433, 2805367148),  # plan-b: one section, several senders
            candidates=(
                host("1", "udp", 2130706431, "10.77.0.2", 10000),
                host("2", "tcp", 1694498815, "10.77.0.2", 4443, "passive"),
            ),
            rtcp_mux=True,
            **common,
        ),
        media(
            kind="video",
            protocol="RTP/SAVPF",
            formats=("100", "96"),
            mid="video",
            direction="sendrecv",
            codecs=(
                Codec(100, "VP8", 90000, None, None),
                Codec(96, "rtx", 90000, None, "apt=100"),
            ),
            extmaps=((3, ABS_SEND_TIME), (5, TRANSPORT_CC)),
            # 3333333333 has no a=ssrc line: only the SIM group names it
            ssrcs=(1111111111, 2222222222, 3333333333, 3444444444),
            ssrc_groups=(
                ("SIM", (1111111111, 2222222222, 3333333333)),
                ("FID", (1111111111, 3444444444)),
            ),
            rtcp_mux=True,
            **common,
        ),
        media(
            kind="application",
            protocol="DTLS/SCTP",
            formats=("5000",),
            mid="data",
            **common,
        ),
    ]
    assert audio_level_extension_id(sdp) == 1


def test_codec_roles_and_apt_of_real_offers() -> None:
    firefox = parse_sdp(load("firefox_offer.sdp"))
    video = next(section for section in firefox.media if section.kind == "video")
    roles = {c.payload_type: (c.role, c.associated_payload_type) for c in video.codecs}
    assert roles == {
        120: ("media", None),
        124: ("rtx", 120),
        126: ("media", None),
        127: ("rtx", 126),
    }
    chromium = parse_sdp(load("chromium_offer.sdp"))
    audio = {c.name: c.role for c in chromium.audio[0].codecs}
    assert audio["red"] == "red" and audio["opus"] == "media" and audio["CN"] == "media"


@pytest.mark.parametrize(
    ("fmtp", "apt"), [("apt=96", 96), ("apt=128", None), ("apt=x", None), (None, None)]
)
def test_associated_payload_type_only_when_it_is_one(fmtp: str | None, apt: int | None) -> None:
    assert Codec(97, "rtx", 90000, None, fmtp).associated_payload_type == apt


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("ulpfec", "fec"),
        ("flexfec-03", "fec"),
        ("FLEXFEC", "fec"),
        ("RED", "red"),
        ("VP8", "media"),
    ],
)
def test_encoding_roles(name: str, role: str) -> None:
    assert Codec(100, name, 90000, None, None).role == role


def test_ssrc_roles_from_groups_and_ssrc_lines() -> None:
    jitsi = ssrc_roles(parse_sdp(load("jitsi_planb_offer.sdp")))
    assert jitsi[3444444444] == SsrcRole(
        3444444444, "video", "rtx", 1111111111, "a=ssrc-group:FID 1111111111 3444444444"
    )
    assert {ssrc: (r.media, r.role) for ssrc, r in jitsi.items()} == {
        1516270433: ("audio", "media"),
        2805367148: ("audio", "media"),
        1111111111: ("video", "media"),
        2222222222: ("video", "media"),  # SIM: simulcast layers are media
        3333333333: ("video", "media"),
        3444444444: ("video", "rtx"),
    }
    firefox = ssrc_roles(parse_sdp(load("firefox_offer.sdp")))
    assert firefox[2731530283].role == "rtx" and firefox[1393486425].role == "media"


def test_ssrc_roles_fec_fr_group() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=video 9 RTP/AVPF 96 100\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:100 flexfec-03/90000\r\n"
        "a=ssrc-group:FEC-FR 11 22\r\na=ssrc:11 cname:x\r\na=ssrc:22 cname:x\r\n"
    )
    roles = ssrc_roles(parse_sdp(text))
    assert (roles[22].role, roles[22].protects, roles[11].role) == ("fec", 11, "media")


def test_merge_keeps_every_section_of_every_document() -> None:
    offer = parse_sdp(load("chromium_offer.sdp"))
    answer = parse_sdp(load("aiortc_answer.sdp"))
    merged = merge_descriptions([offer, answer])
    assert merged is not None
    assert merged.media == offer.media + answer.media
    assert merged.origin == offer.origin
    assert set(ssrc_roles(merged)) == set(ssrc_roles(offer)) | set(ssrc_roles(answer))
    assert merge_descriptions([]) is None


def test_records_are_frozen_and_hashable() -> None:
    sdp = parse_sdp(load("firefox_offer.sdp"))
    with pytest.raises(FrozenInstanceError):
        sdp.media[0].port = 1  # type: ignore[misc]
    assert hash(sdp) == hash(parse_sdp(load("firefox_offer.sdp")))


# --- aiortc as an independent oracle -------------------------------------------------------------

AIORTC_ACCEPTS = [name for name in FIXTURE_NAMES if name != "sdes_offer.sdp"]


def _aiortc_parameter(value: object) -> str | None:
    return None if value is None else str(value)


@pytest.mark.parametrize("name", AIORTC_ACCEPTS)
def test_agrees_with_aiortc(name: str) -> None:
    """On every field aiortc keeps, aiortc's parser and ours read the fixture the same way."""
    text = load(name)
    ours = parse_sdp(text)
    theirs = aiortc.sdp.SessionDescription.parse(text)
    assert ours.groups == tuple(
        (group.semantic, tuple(map(str, group.items))) for group in theirs.group
    )
    assert len(ours.media) == len(theirs.media)
    for section, reference in zip(ours.media, theirs.media, strict=True):
        assert (section.kind, section.port, section.protocol) == (
            reference.kind,
            reference.port,
            reference.profile,
        )
        assert section.mid == reference.rtp.muxId
        assert section.direction == reference.direction
        assert section.rtcp_mux == reference.rtcp_mux
        assert section.extmaps == tuple(
            (extension.id, extension.uri) for extension in reference.rtp.headerExtensions
        )
        assert {
            codec.payload_type: (f"{section.kind}/{codec.name}", codec.clock_rate, codec.channels)
            for codec in section.codecs
        } == {
            codec.payloadType: (codec.mimeType, codec.clockRate, codec.channels)
            for codec in reference.rtp.codecs
        }
        assert {codec.payload_type: codec.parameters for codec in section.codecs} == {
            codec.payloadType: {
                key: _aiortc_parameter(value) for key, value in codec.parameters.items()
            }
            for codec in reference.rtp.codecs
        }
        assert [
            (
                candidate.foundation,
                candidate.component,
                candidate.transport,
                candidate.priority,
                candidate.address,
                candidate.port,
                candidate.type,
                candidate.tcp_type,
                candidate.related_address,
                candidate.related_port,
            )
            for candidate in section.candidates
        ] == [
            (
                candidate.foundation,
                candidate.component,
                candidate.protocol.lower(),
                candidate.priority,
                candidate.ip,
                candidate.port,
                candidate.type,
                candidate.tcpType,
                candidate.relatedAddress,
                candidate.relatedPort,
            )
            for candidate in reference.ice_candidates
        ]
        assert reference.ice is not None
        assert (section.ice_ufrag, section.ice_pwd) == (
            reference.ice.usernameFragment,
            reference.ice.password,
        )
        assert set(section.ssrcs) == {info.ssrc for info in reference.ssrc} | {
            ssrc for group in reference.ssrc_group for ssrc in group.items
        }
        assert section.ssrc_groups == tuple(
            (group.semantic, tuple(int(ssrc) for ssrc in group.items))
            for group in reference.ssrc_group
        )
        assert reference.dtls is not None
        assert section.fingerprints == tuple(
            (fingerprint.algorithm, fingerprint.value)
            for fingerprint in reference.dtls.fingerprints
        )
        assert section.setup == aiortc.sdp.DTLS_ROLE_SETUP[reference.dtls.role]


@pytest.mark.parametrize(
    "text",
    [
        load("sdes_offer.sdp"),  # RFC 6464's own "a=extmap:1/sendrecv <uri> vad=on"
        "v=0\r\nm=audio 9 RTP/AVP 0\r\na=setup:holdconn\r\n",
        "v=0\r\nm=audio 9 RTP/AVP 18\r\na=fmtp:18 annexb=no\r\n",
        "v=0\r\nm=audio 49170/2 RTP/AVP 0\r\n",
    ],
)
def test_sdp_aiortc_rejects_and_we_read(text: str) -> None:
    """Why the module walks the lines itself: aiortc 1.16 refuses these whole documents."""
    with pytest.raises((ValueError, KeyError, AssertionError, StopIteration)):
        aiortc.sdp.SessionDescription.parse(text)
    assert len(parse_sdp(text).media) == 1


# --- odd but valid SDP ---------------------------------------------------------------------------


def test_line_endings_blank_lines_and_whitespace() -> None:
    crlf = load("chromium_offer.sdp")
    expected = parse_sdp(crlf)
    assert parse_sdp(crlf.replace("\r\n", "\n")) == expected
    assert parse_sdp(crlf.replace("\r\n", "\r")) == expected
    assert parse_sdp("\r\n" + crlf.replace("\r\n", "  \r\n\r\n")) == expected
    assert parse_sdp(crlf.rstrip("\r\n")) == expected


def test_minimal_sdp_without_media() -> None:
    sdp = parse_sdp("v=0\r\n")
    assert sdp == session(session_name=None)
    assert sdp.audio == ()
    assert audio_level_extension_id(sdp) is None
    assert payload_types(sdp) == {}


def test_session_level_attributes_are_inherited_and_overridden() -> None:
    sdp = parse_sdp(
        "v=0\r\n"
        "c=IN IP4 192.0.2.1/127\r\n"
        "a=ice-lite\r\n"
        "a=recvonly\r\n"
        "a=extmap:1 urn:example:session-one\r\n"
        "a=extmap:2 urn:example:session-two\r\n"
        "a=fingerprint:sha-256 AA:BB\r\n"
        "a=setup:passive\r\n"
        "a=ice-ufrag:sess\r\n"
        "a=ice-pwd:sessionpassword\r\n"
        "a=cryptex\r\n"
        "m=audio 9 RTP/AVP 0\r\n"
        "m=audio 9 RTP/AVP 0\r\n"
        "c=IN IP6 2001:db8::1\r\n"
        "a=inactive\r\n"
        "a=extmap:2 urn:example:media-two\r\n"
        "a=extmap:3 urn:example:media-three\r\n"
        "a=fingerprint:sha-1 CC:DD\r\n"
        "a=setup:holdconn\r\n"
        "a=ice-ufrag:media\r\n"
        "a=ice-pwd:mediapassword\r\n"
        "a=extmap-allow-mixed\r\n"
    )
    assert sdp.ice_lite
    assert sdp.cryptex
    assert not sdp.extmap_allow_mixed
    assert sdp.extmaps == ((1, "urn:example:session-one"), (2, "urn:example:session-two"))
    inherits, overrides = sdp.media
    assert (inherits.connection_address, inherits.direction) == ("192.0.2.1", "recvonly")
    assert inherits.extmaps == sdp.extmaps
    assert (inherits.fingerprints, inherits.setup) == ((("sha-256", "AA:BB"),), "passive")
    assert (inherits.ice_ufrag, inherits.ice_pwd) == ("sess", "sessionpassword")
    assert (inherits.cryptex, inherits.extmap_allow_mixed) == (True, False)
    assert (overrides.connection_address, overrides.direction) == ("2001:db8::1", "inactive")
    assert overrides.extmaps == (
        (1, "urn:example:session-one"),
        (2, "urn:example:media-two"),
        (3, "urn:example:media-three"),
    )
    # RFC 8122 §5: a media-level fingerprint replaces the session-level one
    assert (overrides.fingerprints, overrides.setup) == ((("sha-1", "CC:DD"),), "holdconn")
    assert (overrides.ice_ufrag, overrides.ice_pwd) == ("media", "mediapassword")
    assert (overrides.cryptex, overrides.extmap_allow_mixed) == (True, True)


def test_payload_types_without_rtpmap_and_stray_lines() -> None:
    section = parse_sdp(
        "v=0\r\n"
        "m=audio 49170/2 RTP/AVP 0 96 97 111 0\r\n"
        "a=rtpmap:111 opus/48000/2\r\n"
        "a=rtpmap:111 ignored/8000\r\n"
        "a=rtpmap:120 notinthemline/90000\r\n"
        "a=rtpmap:97 L16/16000\r\n"
        "a=fmtp:0 something\r\n"
        "a=fmtp:111 minptime=10; useinbandfec=1;;stereo\r\n"
        "a=fmtp:111 ignored=1\r\n"
        "a=fmtp:97\r\n"
    ).media[0]
    assert section.port == 49170
    assert section.codecs == (
        Codec(0, "PCMU", 8000, 1, "something"),  # static, fmtp without rtpmap
        Codec(97, "L16", 16000, 1, ""),  # 96: dynamic without rtpmap, unknown: left out
        Codec(111, "opus", 48000, 2, "minptime=10; useinbandfec=1;;stereo"),
    )
    assert section.codecs[2].parameters == {"minptime": "10", "useinbandfec": "1", "stereo": None}
    assert section.codecs[1].parameters == {}


def test_video_static_payload_type_and_non_rtp_sections() -> None:
    sdp = parse_sdp(
        "v=0\r\n"
        "m=video 9 RTP/AVP 31\r\n"
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
        "a=rtpmap:not-rtp at all\r\n"
        "a=fmtp:webrtc-datachannel max-message-size=100000\r\n"
        "m=image 9 udptl t38\r\n"
    )
    assert sdp.media[0].codecs == (Codec(31, "H261", 90000, None, None),)
    assert sdp.media[1].codecs == ()
    assert sdp.media[2].formats == ("t38",)
    assert payload_types(sdp) == {31: ("video", Codec(31, "H261", 90000, None, None))}


def test_payload_types_first_section_wins() -> None:
    sdp = parse_sdp(
        "v=0\r\n"
        "m=audio 9 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n"
        "m=video 9 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
    )
    assert payload_types(sdp) == {96: ("audio", Codec(96, "opus", 48000, 2, None))}


def test_audio_level_from_the_first_audio_section_that_has_it() -> None:
    sdp = parse_sdp(
        "v=0\r\n"
        f"m=video 9 RTP/AVP 96\r\na=extmap:1 {AUDIO_LEVEL_URI}\r\n"
        "m=audio 9 RTP/AVP 0\r\n"
        f"m=audio 9 RTP/AVP 0\r\na=extmap:7/sendonly {AUDIO_LEVEL_URI} vad=on\r\n"
    )
    assert audio_level_extension_id(sdp) == 7


def test_first_of_repeated_single_attributes_counts() -> None:
    section = parse_sdp(
        "v=0\r\nm=audio 9 RTP/AVP 0\r\n"
        "a=mid:first\r\na=mid:second\r\n"
        "a=sendonly\r\na=recvonly\r\n"
        "a=extmap:1 urn:example:first\r\na=extmap:1 urn:example:second\r\n"
    ).media[0]
    assert (section.mid, section.direction) == ("first", "sendonly")
    assert section.extmaps == ((1, "urn:example:first"),)


def test_unknown_and_valueless_attributes() -> None:
    sdp = parse_sdp(
        "v=0\r\ni=info\r\nu=http://example.com\r\nb=AS:30\r\na=x-vendor:thing:with:colons\r\n"
        "m=audio 9 RTP/AVP 0\r\nb=TIAS:64000\r\na=mid\r\na=ssrc:42\r\na=x-flag\r\n"
    )
    assert sdp.attributes == (("x-vendor", "thing:with:colons"),)
    section = sdp.media[0]
    assert section.attributes == (("mid", None), ("ssrc", "42"), ("x-flag", None))
    assert section.mid == ""
    assert section.ssrcs == (42,)


def test_candidate_extensions() -> None:
    section = parse_sdp(
        "v=0\r\nm=audio 9 RTP/AVP 0\r\n"
        "a=candidate:abc 2 TCP 1 fd00::1 0 typ prflx tcptype so raddr fd00::2 rport 7 "
        "generation 0 ufrag x network-cost 10 dangling\r\n"
        "a=candidate:m 1 udp 1 3f6b9c1e-8a2d-4e7f-b5c4-1d2e3f4a5b6c.local 5000 typ host\r\n"
    ).media[0]
    assert section.candidates == (
        Candidate("abc", 2, "tcp", 1, "fd00::1", 0, "prflx", "so", "fd00::2", 7),
        host("m", "udp", 1, "3f6b9c1e-8a2d-4e7f-b5c4-1d2e3f4a5b6c.local", 5000),
    )


KEY_30 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"  # bytes(range(30))
KEY_28_UNPADDED = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw"  # bytes(range(28)) without its "="


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_30}|1048576",
            (bytes(range(30)), 1048576, None),
        ),
        (
            f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_30}|7:1",
            (bytes(range(30)), None, (7, 1)),
        ),
        # no padding on a 28-byte key, and two key parameters: the first one counts
        (
            f"a=crypto:9 AEAD_AES_128_GCM inline:{KEY_28_UNPADDED};inline:AAAA",
            (bytes(range(28)), None, None),
        ),
        ("a=crypto:1 F8_128_HMAC_SHA1_80 x-other:opaque", (None, None, None)),
    ],
)
def test_crypto_variants(line: str, expected: tuple[object, object, object]) -> None:
    crypto = parse_sdp(f"v=0\r\nm=audio 9 RTP/SAVP 0\r\n{line}\r\n").media[0].crypto[0]
    assert (crypto.key, crypto.lifetime, crypto.mki) == expected
    assert crypto.key_params == tuple(line.split()[2].split(";"))


def test_session_level_crypto_and_candidates_are_not_media_attributes() -> None:
    sdp = parse_sdp(
        "v=0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n"
        "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\nm=audio 9 RTP/SAVP 0\r\n"
    )
    assert sdp.media[0].crypto == ()
    assert sdp.media[0].candidates == ()


# --- broken SDP ----------------------------------------------------------------------------------

M = "v=0\r\nm=audio 9 RTP/SAVP 0 111\r\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "SDP is empty"),
        ("\r\n \r\n", "SDP is empty"),
        ("hello", "SDP line 1 is not <type>=<value>"),
        ("v=0\r\n=x\r\n", "SDP line 2 is not"),
        ("v=0\r\n1=x\r\n", "SDP line 2 is not"),
        ("o=- 1 1 IN IP4 0.0.0.0\r\nv=0\r\n", "SDP v= line missing"),
        ("v=0\r\nc=IN IP4\r\n", "SDP c= line"),
        ("v=0\r\nm=audio 9\r\n", "SDP m= line"),
        ("v=0\r\nm=audio x RTP/AVP 0\r\n", "SDP m= port"),
        ("v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "SDP m= port 70000 is larger than 65535"),
        ("v=0\r\nm=audio \u0663 RTP/AVP 0\r\n", "SDP m= port"),
        ("v=0\r\nm=audio 9 RTP/AVP opus\r\n", "SDP m= payload type"),
        ("v=0\r\nm=audio 9 RTP/AVP 128\r\n", "SDP m= payload type"),
        (M + "c=IN\r\n", "SDP c= line"),
        (M + "a=rtpmap:x opus/48000\r\n", "SDP a=rtpmap payload type"),
        (M + "a=rtpmap:111 opus\r\n", "SDP a=rtpmap"),
        (M + "a=rtpmap:111 /48000\r\n", "SDP a=rtpmap"),
        (M + "a=rtpmap:111 opus/fast\r\n", "SDP a=rtpmap clock rate"),
        (M + "a=rtpmap:111 opus/48000/two\r\n", "SDP a=rtpmap channels"),
        (M + "a=fmtp:abc x=1\r\n", "SDP a=fmtp payload type"),
        (M + "a=extmap:1\r\n", "SDP a=extmap"),
        (M + "a=extmap:one urn:x\r\n", "SDP a=extmap id"),
        ("v=0\r\na=extmap:-1 urn:x\r\n", "SDP a=extmap id"),
        (M + "a=fingerprint:sha-256\r\n", "SDP a=fingerprint"),
        ("v=0\r\na=group:\r\n", "SDP a=group"),
        (M + "a=ssrc:abc cname:x\r\n", "SDP a=ssrc SSRC"),
        (M + "a=ssrc:4294967296 cname:x\r\n", "SDP a=ssrc SSRC 4294967296 is larger"),
        (M + "a=ssrc:" + "9" * 5000 + "\r\n", "SDP a=ssrc SSRC"),
        (M + "a=ssrc-group:FID 1 x\r\n", "SDP a=ssrc-group SSRC"),
        (M + "a=ssrc-group:\r\n", "SDP a=ssrc-group"),
        (M + "a=candidate:1 1 udp 1 10.0.0.1 9 host\r\n", "SDP a=candidate"),
        (M + "a=candidate:1 1 udp 1 10.0.0.1 9 typ\r\n", "SDP a=candidate"),
        (M + "a=candidate:1 x udp 1 10.0.0.1 9 typ host\r\n", "SDP a=candidate component"),
        (M + "a=candidate:1 1 udp -1 10.0.0.1 9 typ host\r\n", "SDP a=candidate priority"),
        (M + "a=candidate:1 1 udp 1 10.0.0.1 99999 typ host\r\n", "SDP a=candidate port"),
        (M + "a=candidate:1 1 udp 1 10.0.0.1 9 typ srflx rport x\r\n", "SDP a=candidate rport"),
        (M + "a=crypto:1 AES_CM_128_HMAC_SHA1_80\r\n", "SDP a=crypto"),
        (M + "a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n", "SDP a=crypto tag"),
        (M + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:@@@@\r\n", "SDP a=crypto key"),
        (M + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAAA\r\n", "SDP a=crypto key"),
        (M + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\r\n", "SDP a=crypto key is empty"),
        (M + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|2^99\r\n", "SDP a=crypto lifetime"),
        (M + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|2^x\r\n", "SDP a=crypto lifetime"),
        (M + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|x\r\n", "SDP a=crypto lifetime"),
        (M + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|1:x\r\n", "SDP a=crypto MKI length"),
        (M + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|x:1\r\n", "SDP a=crypto MKI value"),
        (M + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|1|2|3\r\n", "too many '|' parts"),
    ],
)
def test_broken_sdp_raises_malformed_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(MalformedPacket, match=re.escape(message)):
        parse_sdp(text)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_prefix_parses_or_raises_malformed(name: str) -> None:
    text = load(name)
    for length in range(len(text) + 1):
        with contextlib.suppress(MalformedPacket):
            parse_sdp(text[:length])


# --- Hypothesis ----------------------------------------------------------------------------------

FIXTURE_LINES = sorted(
    {line for name in FIXTURE_NAMES for line in load(name).split("\r\n") if line}
)


def _splice(parts: tuple[str, int, str]) -> str:
    line, position, junk = parts
    return line[:position] + junk + line[position:]


def _swap_token(parts: tuple[str, int, str]) -> str:
    line, index, token = parts
    tokens = line.split(" ")
    tokens[index % len(tokens)] = token
    return " ".join(tokens)


MEDIA_LINES = [line for line in FIXTURE_LINES if line.startswith("m=")]
SDP_LINES = st.one_of(
    st.sampled_from(FIXTURE_LINES),
    st.tuples(st.sampled_from(FIXTURE_LINES), st.integers(0, 120), st.text(max_size=6)).map(
        _splice
    ),
    st.tuples(st.sampled_from(FIXTURE_LINES), st.integers(0, 20), st.text(max_size=12)).map(
        _swap_token
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=500))
def test_arbitrary_text_raises_only_malformed(text: str) -> None:
    with contextlib.suppress(MalformedPacket):
        parse_sdp(text)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(MEDIA_LINES),
    st.lists(SDP_LINES, max_size=30),
    st.sampled_from(["\r\n", "\n"]),
)
def test_sdp_like_text_raises_only_malformed(
    media_line: str, lines: list[str], separator: str
) -> None:
    """Fixture lines, some with random text spliced in or a token swapped, after an m= line."""
    try:
        sdp = parse_sdp(separator.join(["v=0", media_line, *lines]))
    except MalformedPacket:
        return
    audio_level_extension_id(sdp)
    payload_types(sdp)
    for section in sdp.media:
        for codec in section.codecs:
            assert isinstance(codec.parameters, dict)


def test_non_ascii_crypto_key_is_malformed_not_a_crash() -> None:
    """Found by Hypothesis: base64 of non-ASCII text raised ValueError, not MalformedPacket."""
    text = "v=0\r\nm=audio 9 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\x80mfDV==\r\n"
    with pytest.raises(MalformedPacket, match="not base64"):
        parse_sdp(text)


_UI_ONLY_OFFER = Path(__file__).resolve().parents[2] / "captures/chromium-ui-only/offer.sdp"


def _with_level_id(number: int) -> str:
    text = _UI_ONLY_OFFER.read_text()
    line = "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level"
    assert line in text
    return text.replace(line, f"a=extmap:{number} urn:ietf:params:rtp-hdrext:ssrc-audio-level")


@settings(max_examples=80, deadline=None)
@given(number=st.integers(0, 5000) | st.sampled_from([0, 1, 14, 15, 16, 255, 256, 4096, 4351]))
def test_an_audio_level_id_no_header_can_carry_is_refused_with_a_reason(number: int) -> None:
    """Issue 13: an extmap id outside 1-14 (one-byte) or 1-255 (two-byte) was taken and
    emptied the level column; now it is no id, and the problem says why (RFC 8285)."""
    from decoders.session.sdp import audio_level_extmap_problem

    sdp = parse_sdp(_with_level_id(number))
    problem = audio_level_extmap_problem(sdp)
    if 1 <= number <= 255:
        assert audio_level_extension_id(sdp) == number and problem is None
    else:
        assert audio_level_extension_id(sdp) is None
        assert problem is not None and f"id {number} is outside 1-14" in problem
        assert "1-255 (two-byte header, RFC 8285)" in problem and problem.endswith("; ignored")
