"""SRTP/SRTCP decryption: real lab sessions, sequence wrap, reordering, wrong keys, MKI."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

import pylibsrtp
import pytest
from aiortc import rtp as artp
from helpers.corpus import call_shape
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.media.decrypt import read_media
from decoders.media.srtp import (
    CRYPTEX_REASON,
    MAX_PACKET,
    MediaDatagram,
    StreamKey,
    decrypt_datagrams,
    decrypt_stream,
    is_cryptex,
    media_kind,
    strip_mki,
)
from decoders.session.keys import (
    DTLS_SRTP_LABEL,
    DtlsHandshake,
    KeySet,
    SrtpKey,
    capture_flow_datagrams,
    find_dtls_handshakes,
    load_keylog_keys,
    load_keys_json,
    read_keylog,
    tls13_export,
)
from decoders.session.sdp import parse_sdp
from decoders.wire.demux import PacketKind
from decoders.wire.dtls import find_suite, suite_by_dtls_id

SUITE_80 = find_suite("AES_CM_128_HMAC_SHA1_80")
KEY = SrtpKey(SUITE_80, bytes(range(16)), bytes(range(16, 30)), "test")
WRONG = SrtpKey(SUITE_80, bytes(16), bytes(14), "wrong")
SSRC = 0x0A0B0C0D


def _sender(key: SrtpKey) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=key.key_and_salt,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=key.suite.libsrtp_profile,
    )
    return pylibsrtp.Session(policy)


def _rtp(sequence: int, ssrc: int = SSRC, size: int = 40) -> bytes:
    packet = artp.RtpPacket(
        payload_type=111,
        sequence_number=sequence % 65536,
        timestamp=(sequence * 960) % 2**32,
        ssrc=ssrc,
        payload=bytes([sequence % 251]) * size,
    )
    return packet.serialize()


def _datagram(
    data: bytes, index: int, kind: Literal["rtp", "rtcp"] = "rtp", src_port: int = 5000
) -> MediaDatagram:
    return MediaDatagram(
        frame=index + 1,
        timestamp_ns=index * 20_000_000,
        src="10.0.0.1",
        src_port=src_port,
        dst="10.0.0.2",
        dst_port=6000,
        transport="udp",
        kind=kind,
        data=data,
    )


# -- the lab sessions ---------------------------------------------------------------------------


def test_every_lab_session_decrypts_without_failure(session_dir: Path) -> None:
    datagrams, damage, _ = read_media(session_dir / "capture.pcapng")
    assert damage is None
    results = decrypt_datagrams(datagrams, load_keys_json(session_dir / "keys.json"))
    if not call_shape(session_dir).rtp_readable:
        # TURN over TLS: the SRTP is inside TLS records, so no SRTP/SRTCP datagram is seen and
        # the keys (keys.json has them) decrypt nothing
        assert datagrams == [] and results == []
        return
    assert sum(r.packets for r in results) == len(datagrams)
    kinds = {r.kind for r in results}
    assert "rtcp" in kinds
    for result in results:
        assert result.error is None, result.error
        assert result.failed == 0 and result.duplicates == 0
        assert result.decrypted == result.packets
        assert result.key is not None
        for datagram, plain in zip(result.datagrams, result.plaintext, strict=True):
            assert plain is not None
            assert plain[:2] == datagram.data[:2]  # header stays, payload decrypts
            assert len(plain) < len(datagram.data)  # the auth tag (and SRTCP index) are gone


def test_keylog_keys_alone_decrypt_every_lab_session(session_dir: Path) -> None:
    keys = load_keylog_keys(session_dir / "keylog.txt", session_dir / "capture.pcapng")
    datagrams, _, _ = read_media(session_dir / "capture.pcapng")
    results = decrypt_datagrams(datagrams, keys)
    if not call_shape(session_dir).rtp_readable:
        # TURN over TLS: neither the DTLS handshake (for the key log) nor the SRTP is in sight
        assert keys.keys == () and datagrams == [] and results == []
        return
    assert {r.kind for r in results} == {"rtp", "rtcp"}
    assert all(r.decrypted == r.packets > 0 for r in results)
    assert all(r.failed == 0 and r.error is None for r in results)
    for result in results:  # the key sent by the stream's source was the one that worked
        assert result.key is not None and result.key.sender is not None
        assert result.key.sender == (result.stream.src, result.stream.src_port)


# -- rollover counter, order, duplicates ---------------------------------------------------------


@pytest.mark.parametrize("order", ["capture", "shuffled", "reversed"])
def test_sequence_wrap_in_any_capture_order(order: str) -> None:
    sender = _sender(KEY)
    plain = [_rtp(sequence) for sequence in range(65000, 65000 + 1600)]  # wraps at 536
    protected = [sender.protect(p) for p in plain]
    indices = list(range(len(plain)))
    if order == "shuffled":
        random.Random(5).shuffle(indices)
    elif order == "reversed":
        indices.reverse()
    datagrams = [_datagram(protected[i], n) for n, i in enumerate(indices)]
    result = decrypt_stream(datagrams, KeySet((KEY,)))
    assert result.failed == 0 and result.error is None
    assert result.plaintext == [plain[i] for i in indices]


def test_duplicates_get_their_first_copy_plaintext() -> None:
    sender = _sender(KEY)
    protected = [sender.protect(_rtp(s)) for s in range(100, 110)]
    order = [0, 1, 2, 2, 3, 4, 4, 4, 5, 6, 7, 8, 9, 1]
    result = decrypt_stream(
        [_datagram(protected[i], n) for n, i in enumerate(order)], KeySet((KEY,))
    )
    assert result.failed == 0
    assert result.duplicates == 4
    assert result.plaintext == [_rtp(100 + i) for i in order]


def test_a_damaged_packet_fails_alone() -> None:
    sender = _sender(KEY)
    protected = [bytearray(sender.protect(_rtp(s))) for s in range(20)]
    protected[7][-1] ^= 0x01  # auth tag
    protected[12][20] ^= 0x80  # payload
    result = decrypt_stream(
        [_datagram(bytes(p), n) for n, p in enumerate(protected)], KeySet((KEY,))
    )
    assert result.failures == {"authentication failure": 2}
    assert [i for i, p in enumerate(result.plaintext) if p is None] == [7, 12]
    assert result.error is None


def test_first_packets_damaged_still_find_the_key() -> None:
    sender = _sender(KEY)
    protected = [bytearray(sender.protect(_rtp(s))) for s in range(20)]
    for index in (0, 1, 2):
        protected[index][-2] ^= 0xFF
    result = decrypt_stream(
        [_datagram(bytes(p), n) for n, p in enumerate(protected)], KeySet((WRONG, KEY))
    )
    assert result.key is KEY
    assert result.failures == {"authentication failure": 3}
    assert result.decrypted == 17


# -- keys ---------------------------------------------------------------------------------------


def test_wrong_key_fails_cleanly() -> None:
    sender = _sender(KEY)
    datagrams = [_datagram(sender.protect(_rtp(s)), n) for n, s in enumerate(range(30))]
    result = decrypt_stream(datagrams, KeySet((WRONG,)))
    assert result.key is None
    assert result.plaintext == [None] * 30
    assert result.failures == {"authentication failure": 30}
    assert result.error is not None
    assert "no key authenticates" in result.error
    assert "wrong" in result.error and "SSRC 0x0a0b0c0d" in result.error
    assert "00000000" not in result.error  # no key material in messages


def test_no_key_for_a_stream() -> None:
    other = SrtpKey(SUITE_80, bytes(16), bytes(14), "other", ssrcs=frozenset({1}))
    result = decrypt_stream([_datagram(_rtp(1), 0)], KeySet((other,)))
    assert result.error is not None and "no key for this stream" in result.error
    assert result.failures == {"no key": 1}
    with pytest.raises(ValueError):
        decrypt_stream([], KeySet())


def test_the_right_key_among_many() -> None:
    sender = _sender(KEY)
    datagrams = [_datagram(sender.protect(_rtp(s)), n) for n, s in enumerate(range(5))]
    keys = KeySet((WRONG, SrtpKey(SUITE_80, bytes(16), bytes([1] * 14), "also wrong"), KEY))
    result = decrypt_stream(datagrams, keys)
    assert result.key is KEY and result.failed == 0


@pytest.mark.parametrize(
    ("suite_name", "key_length", "salt_length"),
    [
        ("AES_CM_128_HMAC_SHA1_32", 16, 14),
        ("AEAD_AES_128_GCM", 16, 12),
        ("AEAD_AES_256_GCM", 32, 12),
    ],
)
def test_other_suites_rtp_and_rtcp(suite_name: str, key_length: int, salt_length: int) -> None:
    suite = find_suite(suite_name)
    key = SrtpKey(suite, bytes(range(key_length)), bytes(range(salt_length)), suite_name)
    sender = _sender(key)
    plain_rtp = [_rtp(s) for s in range(40)]
    report = bytes(artp.RtcpSrPacket(ssrc=SSRC, sender_info=artp.RtcpSenderInfo(1, 2, 3, 4)))
    datagrams = [_datagram(sender.protect(p), n) for n, p in enumerate(plain_rtp)]
    datagrams.append(_datagram(sender.protect_rtcp(report), 50, "rtcp"))
    results = decrypt_datagrams(datagrams, KeySet((WRONG, key)))
    assert [r.kind for r in results] == ["rtp", "rtcp"]
    assert results[0].plaintext == plain_rtp
    assert results[1].plaintext == [report]
    assert results[1].key is key


def test_mki_is_stripped_before_the_tag() -> None:
    suite = find_suite("AES_CM_128_HMAC_SHA1_32")
    key = SrtpKey(suite, bytes(range(16)), bytes(range(14)), "mki", mki=(7, 2))
    sender = _sender(key)
    plain = [_rtp(s) for s in range(10)]
    with_mki = [(p := sender.protect(x))[:-4] + b"\x00\x07" + p[-4:] for x in plain]
    assert strip_mki(with_mki[0], key, "rtp") == sender_copy(plain[0], key)
    result = decrypt_stream([_datagram(d, n) for n, d in enumerate(with_mki)], KeySet((key,)))
    assert result.plaintext == plain
    assert strip_mki(b"\x01", key, "rtp") == b"\x01"


def sender_copy(plain: bytes, key: SrtpKey) -> bytes:
    """The same packet protected by a fresh sender (same key, first packet: same bytes)."""
    return _sender(key).protect(plain)


def test_rtcp_replays_are_retried_in_a_fresh_context() -> None:
    sender = _sender(KEY)
    reports = [
        sender.protect_rtcp(
            bytes(artp.RtcpSrPacket(ssrc=SSRC, sender_info=artp.RtcpSenderInfo(i, i, i, i)))
        )
        for i in range(300)
    ]
    order = [*range(150, 300), *range(150)]  # the old half arrives after the window moved on
    result = decrypt_stream(
        [_datagram(reports[i], n, "rtcp") for n, i in enumerate(order)], KeySet((KEY,))
    )
    assert result.failed == 0 and result.decrypted == 300


def test_rtp_key_is_preferred_for_the_same_senders_rtcp() -> None:
    other = SrtpKey(SUITE_80, bytes([9] * 16), bytes([9] * 14), "peer")
    sender = _sender(KEY)
    datagrams = [_datagram(sender.protect(_rtp(s)), n) for n, s in enumerate(range(3))]
    report = bytes(artp.RtcpRrPacket(ssrc=0x0F0F0F0F, reports=[]))
    datagrams.append(_datagram(sender.protect_rtcp(report), 9, "rtcp"))
    results = decrypt_datagrams(datagrams, KeySet((other, KEY)))
    assert results[1].key is KEY and results[1].plaintext == [report]


def test_oversized_packets_fail_with_a_reason() -> None:
    sender = _sender(KEY)
    datagrams = [_datagram(sender.protect(_rtp(s)), n) for n, s in enumerate(range(3))]
    datagrams.append(_datagram(_rtp(3, size=MAX_PACKET), 3))
    result = decrypt_stream(datagrams, KeySet((KEY,)))
    assert result.failures == {f"longer than {MAX_PACKET} bytes": 1}


def test_cryptex_packets_are_refused_not_garbled() -> None:
    sender = _sender(KEY)
    plain = bytearray(_rtp(1))
    plain[0] |= 0x10  # X bit, then a cryptex extension header (RFC 9335 0xC0DE) + 1 word
    cryptex = (
        bytes(plain[:12]) + bytes.fromhex("c0de0001") + b"\x10\x7f\x00\x00" + bytes(plain[12:])
    )
    assert is_cryptex(cryptex) and not is_cryptex(_rtp(1)) and not is_cryptex(cryptex[:13])
    result = decrypt_stream([_datagram(sender.protect(cryptex), 0)], KeySet((KEY, WRONG)))
    assert result.decrypted == 0
    assert result.error is not None and "cryptex (RFC 9335)" in result.error
    assert result.failures == {CRYPTEX_REASON: 1}


def test_plain_rtp_passes_through() -> None:
    datagrams = [_datagram(_rtp(s), n) for n, s in enumerate(range(5))]
    result = decrypt_stream(datagrams, KeySet(plaintext=True))
    assert result.plaintext == [d.data for d in datagrams]
    assert result.key is None and result.error is None and result.failed == 0
    assert (KeySet() + KeySet(plaintext=True)).plaintext


def test_stream_key_and_kinds() -> None:
    datagram = _datagram(_rtp(1), 0)
    assert datagram.ssrc == SSRC
    assert datagram.stream == StreamKey("10.0.0.1", 5000, "10.0.0.2", 6000, "udp", SSRC)
    assert datagram.stream.describe() == "10.0.0.1:5000 -> 10.0.0.2:6000/udp SSRC 0x0a0b0c0d"
    assert _datagram(bytes(artp.RtcpRrPacket(ssrc=5, reports=[])), 0, "rtcp").ssrc == 5
    assert media_kind(PacketKind.RTP) == "rtp" and media_kind(PacketKind.RTCP) == "rtcp"
    assert media_kind(PacketKind.STUN) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=12, max_size=300), min_size=1, max_size=12))
def test_arbitrary_packets_never_raise_or_decrypt(payloads: list[bytes]) -> None:
    datagrams = [_datagram(bytes([0x80, 111]) + p[2:], n) for n, p in enumerate(payloads)]
    result = decrypt_stream(datagrams, KeySet((KEY, WRONG)))
    assert result.decrypted == 0 and result.error is not None


# -- DTLS 1.3: a real Firefox call keyed from its NSS key log ------------------------------------

DTLS13 = Path(__file__).resolve().parents[1] / "fixtures" / "media" / "dtls13"
FIREFOX_DTLS13 = pytest.mark.parametrize(
    "folder", [DTLS13, DTLS13.with_name("dtls13-wav")], ids=["fake-mic", "wav-mic"]
)
"""Real Firefox DTLS 1.3 calls: tests/fixtures/make_dtls13.py's, and the firefox lab's."""


@FIREFOX_DTLS13
def test_firefox_dtls13_key_log_decrypts_every_packet(folder: Path) -> None:
    """The "dtls13" exporter keys every RTP and RTCP packet of a real Firefox DTLS 1.3 call
    (0 failures); the chosen profile (AEAD_AES_128_GCM, encrypted on the wire) is the one that
    authenticates; each side's packets authenticate with its DTLS role's half: the answer says
    a=setup:active, so the answerer's SSRCs are the DTLS client's."""
    keys = load_keylog_keys(folder / "keylog.txt", folder / "capture.pcapng")
    datagrams, _, _ = read_media(folder / "capture.pcapng")
    results = decrypt_datagrams(datagrams, keys)
    assert "a=setup:active" in (folder / "answer.sdp").read_text()
    offerer = set(parse_sdp((folder / "offer.sdp").read_text()).media[0].ssrcs)
    answerer = set(parse_sdp((folder / "answer.sdp").read_text()).media[0].ssrcs)
    assert {(r.kind, r.stream.ssrc) for r in results} >= {
        (kind, ssrc) for kind in ("rtp", "rtcp") for ssrc in offerer
    }
    assert {r.stream.ssrc for r in results} <= offerer | answerer
    assert all(r.decrypted == r.packets > 0 and r.failed == 0 for r in results)
    handshake = _firefox_handshake(folder)
    for result in results:
        assert result.key is not None and result.key.suite is find_suite("AEAD_AES_128_GCM")
        sender = handshake.client if result.stream.ssrc in answerer else handshake.server
        assert result.key.sender == sender == (result.stream.src, result.stream.src_port)


@FIREFOX_DTLS13
def test_tls13_label_prefix_gives_keys_that_authenticate_nothing(folder: Path) -> None:
    """The same exporter with TLS 1.3's "tls13 " prefix instead of DTLS 1.3's "dtls13": every
    packet of the call fails authentication (the prefix is what makes the keys right)."""
    handshake = _firefox_handshake(folder)
    keylog = read_keylog((folder / "keylog.txt").read_text())
    secret = keylog.exporter_secrets[handshake.client_random]
    wrong = []
    for suite in map(suite_by_dtls_id, handshake.offered_profiles):
        assert suite is not None
        size = suite.key_length + suite.salt_length
        material = tls13_export(secret, DTLS_SRTP_LABEL, b"", 2 * size, "sha256")
        k, s = suite.key_length, suite.salt_length
        wrong += [
            SrtpKey(suite, material[:k], material[2 * k : 2 * k + s], "tls13 client"),
            SrtpKey(suite, material[k : 2 * k], material[2 * k + s :], "tls13 server"),
        ]
    datagrams, _, _ = read_media(folder / "capture.pcapng")
    results = decrypt_datagrams(datagrams, KeySet(tuple(wrong)))
    assert results and all(r.decrypted == 0 for r in results)
    assert all(r.error is not None and "no key authenticates" in r.error for r in results)


def _firefox_handshake(folder: Path) -> DtlsHandshake:
    datagrams = capture_flow_datagrams(folder / "capture.pcapng")
    (handshake,) = find_dtls_handshakes(datagrams)
    return handshake
