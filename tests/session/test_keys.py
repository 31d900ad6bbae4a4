"""Key sources: keys.json, SDES a=crypto, --srtp-key, and NSS key log + DTLS handshake."""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers.corpus import call_shape, lab_session
from helpers.tls_bytes import self_signed
from hypothesis import given, settings
from hypothesis import strategies as st
from OpenSSL import SSL

from decoders.errors import MalformedPacket
from decoders.session import keys as k
from decoders.session.sdp import parse_sdp
from decoders.wire.capture import LINKTYPE_ETHERNET
from decoders.wire.dtls import DTLS_1_3, HELLO_RETRY_REQUEST_RANDOM, find_suite
from decoders.wire.pcapwriter import PcapngWriter, build_udp_frame

ROOT = Path(__file__).resolve().parents[2]
PACKETS = ROOT / "tests" / "fixtures" / "packets"
SDES = ROOT / "tests" / "fixtures" / "media" / "sdes"


# -- keys ------------------------------------------------------------------------------------


def test_key_lengths_are_checked() -> None:
    suite = k.find_suite("AES_CM_128_HMAC_SHA1_80")
    with pytest.raises(ValueError, match="16-byte master key"):
        k.SrtpKey(suite, bytes(15), bytes(14), "test")
    with pytest.raises(ValueError, match="14-byte master salt"):
        k.SrtpKey(suite, bytes(16), bytes(12), "test")
    key = k.SrtpKey(suite, bytes(16), bytes(14), "test", ssrcs=frozenset({1}))
    assert key.key_and_salt == bytes(30)
    assert "0x00000001" in key.describe() and "00" * 8 not in key.describe()


def _key(
    source: str, ssrcs: frozenset[int] = frozenset(), sender: k.Endpoint | None = None
) -> k.SrtpKey:
    suite = k.find_suite("AES_CM_128_HMAC_SHA1_80")
    material = source.encode().ljust(30, b".")[:30]
    return k.SrtpKey(suite, material[:16], material[16:], source, frozenset(ssrcs), sender)


def test_candidates_order_and_restriction() -> None:
    wild = _key("wild")
    sent = _key("sent", sender=("10.0.0.1", 5000))
    named = _key("named", frozenset({7}))
    other = _key("other", frozenset({8}))
    keys = k.KeySet((wild, sent, named, other))
    assert keys.candidates(7, ("10.0.0.1", 5000)) == (named, sent, wild)
    assert keys.candidates(9, None) == (wild, sent)
    assert keys.candidates(8, ("10.0.0.9", 1)) == (other, wild, sent)


def test_keyset_addition_drops_repeats_keeps_notes() -> None:
    a = k.KeySet((_key("a"),), ("note a",))
    b = k.KeySet((_key("a"), _key("b")), ("note b",))
    both = a + b
    assert [key.source for key in both.keys] == ["a", "b"]
    assert both.notes == ("note a", "note b")
    assert len(both) == 2


# -- keys.json ----------------------------------------------------------------------------------


def test_keys_json_of_every_lab_session(session_dir: Path) -> None:
    document = json.loads((session_dir / "keys.json").read_text())
    found = k.load_keys_json(session_dir / "keys.json")
    assert [key.source for key in found.keys] == [
        "keys.json (browser sends)",
        "keys.json (peer sends)",
    ]
    browser, peer = found.keys
    assert browser.suite.dtls_name == document["profile"]
    assert browser.master_key == base64.b64decode(document["browser"]["master_key"])
    assert browser.master_salt == base64.b64decode(document["browser"]["master_salt"])
    assert browser.ssrcs == frozenset(document["browser"]["ssrcs"])
    assert peer.master_key == base64.b64decode(document["peer"]["master_key"])


GOOD_HALF = {
    "master_key": base64.b64encode(bytes(16)).decode(),
    "master_salt": "AAAAAAAAAAAAAAAAAAA=",
}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "not a JSON object"),
        ({"version": 2}, "version 2"),
        ({"version": 1}, "no profile"),
        ({"version": 1, "profile": "NOPE"}, "unknown SRTP suite"),
        ({"version": 1, "profile": "SRTP_AES128_CM_SHA1_80"}, "neither"),
        ({"version": 1, "profile": "SRTP_AES128_CM_SHA1_80", "browser": 3}, "not an object"),
        (
            {"version": 1, "profile": "SRTP_AES128_CM_SHA1_80", "browser": {"master_key": "!"}},
            "not base64",
        ),
        (
            {
                "version": 1,
                "profile": "SRTP_AES128_CM_SHA1_80",
                "peer": {**GOOD_HALF, "ssrcs": [-1]},
            },
            "32-bit",
        ),
        (
            {"version": 1, "profile": "SRTP_AES128_CM_SHA1_80", "peer": {"master_salt": "AA=="}},
            "missing",
        ),
    ],
)
def test_keys_json_errors_name_the_problem(document: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        k.keys_from_json(document)


def test_load_keys_json_rejects_non_json(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{")
    with pytest.raises(ValueError, match="not JSON"):
        k.load_keys_json(path)


# -- SDES ---------------------------------------------------------------------------------------


def test_sdes_keys_of_the_fixture_offer() -> None:
    truth = json.loads((SDES / "truth.json").read_text())["streams"]
    found = k.load_sdp_keys(SDES / "offer.sdp")
    assert found.notes == ()
    assert [key.suite.name for key in found.keys] == [
        "AES_CM_128_HMAC_SHA1_80",
        "AES_CM_128_HMAC_SHA1_32",
        "AEAD_AES_128_GCM",
    ]
    first, second, third = found.keys
    assert first.key_and_salt == base64.b64decode(truth["A"]["key"])
    assert first.ssrcs == frozenset({truth["A"]["ssrc"], truth["C"]["ssrc"]})
    assert second.mki == (1, 4)
    assert third.ssrcs == frozenset({truth["B"]["ssrc"]})
    assert third.master_salt == base64.b64decode(truth["B"]["key"])[16:]
    assert first.source.startswith("offer.sdp m=audio #0 a=crypto:1")


def test_sdes_unusable_lines_become_notes() -> None:
    sdp = parse_sdp(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/SAVP 0\r\n"
        "a=crypto:1 F8_128_HMAC_SHA1_80 inline:AAAA\r\n"
        "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n"
        "a=crypto:3 AES_CM_128_HMAC_SHA1_80 KEYMGT:opaque\r\n"
    )
    found = k.keys_from_sdp(sdp, "x.sdp")
    assert found.keys == ()
    assert len(found.notes) == 3
    assert "unknown SRTP suite" in found.notes[0]
    assert "needs 30 bytes" in found.notes[1]
    assert "no inline key" in found.notes[2]


def test_sdes_keys_from_addon_events(tmp_path: Path) -> None:
    offer = (SDES / "offer.sdp").read_text()
    events = [
        {"t": 1795989001.0, "kind": "session_start"},
        {"t": 1795989002.0, "kind": "sdp", "role": "offer", "sdp": offer},
        {"t": 1795989003.0, "kind": "sdp", "role": "answer", "sdp": "v=0\r\nbroken"},
        {"t": 1795989004.0, "kind": "sdp", "role": "answer", "sdp": "a=crypto:1 junk\r\n"},
    ]
    found = k.keys_from_events(events)
    assert len(found.keys) == 3
    assert found.keys[0].source.startswith("events.jsonl event 2 (offer)")
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events[:2]))
    assert len(k.load_event_keys(path).keys) == 3
    assert len(k.load_keys(path).keys) == 3


def test_sdes_keys_from_saved_flows(tmp_path: Path) -> None:
    from mitmproxy import io as mitmio
    from mitmproxy.test import tflow

    offer = (SDES / "offer.sdp").read_text()
    posted = tflow.tflow(resp=True)
    posted.request.set_text(json.dumps({"type": "offer", "sdp": offer}))
    posted.request.headers["content-type"] = "application/json"
    socket = tflow.twebsocketflow()
    assert socket.websocket is not None
    socket.websocket.messages[0].content = offer.encode()
    plain = tflow.tflow(resp=True)
    path = tmp_path / "flows.mitm"
    with path.open("wb") as stream:
        writer = mitmio.FlowWriter(stream)  # type: ignore[no-untyped-call]
        for flow in (plain, posted, socket):
            writer.add(flow)
    found = k.load_flow_keys(path)
    assert [key.source.split(" m=")[0] for key in found.keys] == [
        "flows.mitm flow 2 request",
        "flows.mitm flow 2 request",
        "flows.mitm flow 2 request",
    ]
    assert len(k.load_keys(path).keys) == 3  # the WebSocket copy adds nothing new
    folder = tmp_path / "session"
    folder.mkdir()
    path.rename(folder / "flows.mitm")
    assert k.KeySources.in_folder(folder).flows == folder / "flows.mitm"
    assert len(k.load_keys(folder).keys) == 3
    (folder / "events.jsonl").write_text("")
    assert k.KeySources.in_folder(folder).flows is None


# -- keys by hand -------------------------------------------------------------------------------

KEY30 = base64.b64encode(bytes(range(30))).decode()


@pytest.mark.parametrize(
    ("text", "ssrcs"),
    [
        (f"AES_CM_128_HMAC_SHA1_80:{KEY30}", set()),
        (f"0x1A2B3C4D:AES_CM_128_HMAC_SHA1_80:{KEY30}", {0x1A2B3C4D}),
        (f"439041101:aes_cm_128_hmac_sha1_80:{KEY30}", {439041101}),
        (f"deadbeef:SRTP_AES128_CM_SHA1_80:{KEY30.rstrip('=')}", {0xDEADBEEF}),
    ],
)
def test_srtp_key_option(text: str, ssrcs: set[int]) -> None:
    key = k.parse_srtp_key_option(text)
    assert key.key_and_salt == bytes(range(30))
    assert key.ssrcs == frozenset(ssrcs)
    assert key.source == "--srtp-key"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("AES_CM_128_HMAC_SHA1_80", "is not"),
        (f"1:2:AES_CM_128_HMAC_SHA1_80:{KEY30}", "is not"),
        (f"NOPE:{KEY30}", "unknown SRTP suite"),
        ("AES_CM_128_HMAC_SHA1_80:@@@@", "not base64"),
        (f"AEAD_AES_256_GCM:{KEY30}", "needs 44 bytes"),
        (f"0x1FFFFFFFF:AES_CM_128_HMAC_SHA1_80:{KEY30}", "SSRC"),
        (f"99999999999:AES_CM_128_HMAC_SHA1_80:{KEY30}", "SSRC"),
        (f"ssrc:AES_CM_128_HMAC_SHA1_80:{KEY30}", "SSRC"),
    ],
)
def test_srtp_key_option_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        k.parse_srtp_key_option(text)
    assert KEY30[8:] not in str(caught.value)  # never echo the key


# -- the NSS key log ----------------------------------------------------------------------------


def test_parse_keylog() -> None:
    random, secret = "ab" * 32, "cd" * 48
    text = (
        "# comment\n\nCLIENT_HANDSHAKE_TRAFFIC_SECRET 00 11\n"
        f"CLIENT_RANDOM {random} {secret}\r\n  CLIENT_RANDOM {random.upper()} {'ef' * 48}\n"
    )
    assert k.parse_keylog(text) == {bytes.fromhex(random): bytes.fromhex("ef" * 48)}
    with pytest.raises(MalformedPacket, match="line 2"):
        k.parse_keylog(f"\nCLIENT_RANDOM {random} {secret[:-2]}")
    with pytest.raises(MalformedPacket):
        k.parse_keylog("CLIENT_RANDOM zz")


NO_HANDSHAKE = "keylog.txt: the capture holds no complete DTLS ClientHello/ServerHello"


def test_keylog_of_every_lab_session_gives_the_exported_keys(session_dir: Path) -> None:
    """The peer's OpenSSL key log + the capture's handshake -> the keys aiortc exported.

    Relayed calls run the handshake inside TURN (ChannelData or Send/Data indications, over UDP
    or TCP): it is read there, between the outer addresses (the browser's leg to coturn). Over
    TURN/TLS the handshake is inside TLS records: the key log cannot be applied, and says so.
    """
    shape = call_shape(session_dir)
    exported = k.load_keys_json(session_dir / "keys.json")
    derived = k.load_keylog_keys(session_dir / "keylog.txt", session_dir / "capture.pcapng")
    handshakes = k.find_dtls_handshakes(k.capture_flow_datagrams(session_dir / "capture.pcapng"))
    if not shape.rtp_readable:
        assert handshakes == []
        assert derived.keys == ()
        assert derived.notes == (NO_HANDSHAKE,)
        return
    assert derived.notes == ()
    document = json.loads((session_dir / "keys.json").read_text())
    assert len(handshakes) == 1
    handshake = handshakes[0]
    assert handshake.version == k.DTLS_1_2
    assert handshake.extended_master_secret
    assert k.suite_by_dtls_id(handshake.srtp_profile or 0) is exported.keys[0].suite
    if shape.relay != "none":  # the other end of the browser's leg is the TURN server
        session = json.loads((session_dir / "session.json").read_text())
        relay = session["relay"]
        assert {handshake.client, handshake.server} & {(relay["address"], relay["port"])}
    by_sender = {key.sender: key for key in derived.keys}
    browser = next(key for key in derived.keys if key.sender and key.sender[0] == shape.browser)
    peer = next(key for key in derived.keys if key.sender and key.sender[0] != shape.browser)
    assert browser.key_and_salt == exported.keys[0].key_and_salt
    assert peer.key_and_salt == exported.keys[1].key_and_salt
    # the DTLS role decides the halves: the browser is the server in these sessions
    role = document["dtls_role_browser"]
    assert by_sender[handshake.server if role == "server" else handshake.client] is browser


def test_keylog_without_the_session_line_is_a_note(session_dir: Path) -> None:
    handshakes = k.find_dtls_handshakes(k.capture_flow_datagrams(session_dir / "capture.pcapng"))
    found = k.keys_from_keylog(k.KeyLog({bytes(32): bytes(48)}), handshakes, "other.txt")
    assert found.keys == ()
    if call_shape(session_dir).rtp_readable:
        assert "no CLIENT_RANDOM line" in found.notes[0]
    else:  # TURN over TLS: no handshake in sight, whatever the key log holds
        assert found.notes == (
            "other.txt: the capture holds no complete DTLS ClientHello/ServerHello",
        )
    assert "no complete DTLS" in k.keys_from_keylog(k.KeyLog(), [], "x").notes[0]


def test_keylog_reads_the_handshake_inside_turn(tmp_path: Path) -> None:
    """The DTLS datagrams of a relayed call, wrapped in ChannelData and in a Send indication,
    are found as the bare ones are (between the outer addresses); broken TURN is skipped."""
    bare = lab_session("ui-only")
    datagrams = k.capture_flow_datagrams(bare / "capture.pcapng")
    assert datagrams
    channel = bytes.fromhex("4000")
    capture = tmp_path / "capture.pcapng"
    with capture.open("wb") as fo:
        writer = PcapngWriter(fo)
        interface = writer.add_interface(LINKTYPE_ETHERNET, ts_resolution_exp10=9)
        for i, (src, sport, dst, dport, payload) in enumerate(datagrams):
            if i % 2:
                wrapped = channel + len(payload).to_bytes(2, "big") + payload
            else:
                wrapped = send_indication(payload)
            broken = channel + (len(payload) + 9).to_bytes(2, "big") + payload  # runs past
            for data in (wrapped, broken):
                frame = build_udp_frame(LINKTYPE_ETHERNET, src, sport, dst, dport, data)
                writer.write(interface, 1_000_000 * (i + 1), frame)
    assert k.capture_flow_datagrams(capture) == datagrams
    assert k.find_dtls_handshakes(datagrams) == k.find_dtls_handshakes(
        k.capture_flow_datagrams(capture)
    )


def send_indication(data: bytes) -> bytes:
    """A TURN Send indication (RFC 8656 section 11.1) carrying ``data`` in its DATA attribute."""
    padded = data + bytes(-len(data) % 4)
    attribute = (0x0013).to_bytes(2, "big") + len(data).to_bytes(2, "big") + padded
    header = (0x0016).to_bytes(2, "big") + len(attribute).to_bytes(2, "big")
    return header + (0x2112A442).to_bytes(4, "big") + bytes(12) + attribute


# a real handshake between two pyOpenSSL endpoints ------------------------------------------------

A_END, B_END = ("192.0.2.1", 5000), ("192.0.2.2", 6000)


def _context(
    cipher: str, version: int, ems: bool, profiles: bytes, log: list[bytes]
) -> SSL.Context:
    context = SSL.Context(SSL.DTLS_METHOD)
    private, certificate = self_signed("mutecheck")
    context.use_privatekey(private)
    context.use_certificate(certificate)
    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *_: True)
    context.set_tlsext_use_srtp(profiles)
    context.set_min_proto_version(version)
    context.set_max_proto_version(version)
    context.set_cipher_list(cipher.encode())
    if not ems:
        context.set_options(0x1)  # SSL_OP_NO_EXTENDED_MASTER_SECRET
    context.set_keylog_callback(lambda _connection, line: log.append(bytes(line)))
    return context


def _handshake(
    cipher: str, version: int, ems: bool, profiles: bytes
) -> tuple[SSL.Connection, SSL.Connection, list[k.FlowDatagram], str]:
    """Two pyOpenSSL DTLS endpoints over memory BIOs; the datagrams they exchanged; key log."""
    log: list[bytes] = []
    client = SSL.Connection(_context(cipher, version, ems, profiles, log))
    client.set_connect_state()
    server = SSL.Connection(_context(cipher, version, ems, profiles, []))
    server.set_accept_state()
    wire: list[k.FlowDatagram] = []

    def pump(
        source: SSL.Connection, sink: SSL.Connection, src: k.Endpoint, dst: k.Endpoint
    ) -> bool:
        moved = False
        while True:
            try:
                data = source.bio_read(65536)
            except SSL.WantReadError:
                return moved
            wire.append((src[0], src[1], dst[0], dst[1], data))
            sink.bio_write(data)
            moved = True

    for _ in range(20):
        for connection in (client, server):
            with contextlib.suppress(SSL.WantReadError):
                connection.do_handshake()
        if not pump(client, server, A_END, B_END) | pump(server, client, B_END, A_END):
            break
    text = b"\n".join(log).decode()
    return client, server, wire, text


@pytest.mark.parametrize(
    ("cipher", "version", "ems", "profiles"),
    [
        ("ECDHE-ECDSA-AES128-GCM-SHA256", 0xFEFD, True, b"SRTP_AES128_CM_SHA1_80"),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", 0xFEFD, True, b"SRTP_AEAD_AES_128_GCM"),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", 0xFEFD, False, b"SRTP_AES128_CM_SHA1_32"),
        ("ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0", 0xFEFF, True, b"SRTP_AEAD_AES_256_GCM"),
    ],
    ids=["dtls12-sha256-ems", "dtls12-sha384-gcm", "dtls12-sha384-no-ems", "dtls10"],
)
def test_keylog_keys_equal_openssl_exporter(
    cipher: str, version: int, ems: bool, profiles: bytes, tmp_path: Path
) -> None:
    client, server, wire, keylog = _handshake(cipher, version, ems, profiles)
    capture = tmp_path / "handshake.pcapng"
    with capture.open("wb") as handle:
        writer = PcapngWriter(handle)
        interface = writer.add_interface(LINKTYPE_ETHERNET)
        for number, (src, sport, dst, dport, data) in enumerate(wire):
            frame = build_udp_frame(LINKTYPE_ETHERNET, src, sport, dst, dport, data)
            writer.write(interface, 1_700_000_000 * 10**9 + number * 1000, frame)
    (tmp_path / "keylog.txt").write_text(keylog)
    found = k.load_keylog_keys(tmp_path / "keylog.txt", capture)
    assert found.notes == ()
    suite = k.find_suite(profiles.decode())
    size = suite.key_length + suite.salt_length
    material = client.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * size)
    assert material == server.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * size)
    client_key, server_key = found.keys
    length = suite.key_length
    assert client_key.master_key == material[:length]
    assert server_key.master_key == material[length : 2 * length]
    assert client_key.master_salt == material[2 * length : 2 * length + suite.salt_length]
    assert server_key.master_salt == material[2 * length + suite.salt_length :]
    assert client_key.sender == A_END and server_key.sender == B_END
    assert client_key.suite is suite
    handshake = k.find_dtls_handshakes(wire)[0]
    assert handshake.version == version
    assert handshake.extended_master_secret is ems
    assert handshake.client_random == client.client_random()
    assert handshake.server_random == server.server_random()


def test_unsupported_versions_and_profiles() -> None:
    master = k.KeyLog({bytes(32): bytes(48)})
    odd_version = k.DtlsHandshake(A_END, B_END, 0xFEFE, bytes(32), bytes(32), 0xC02B, True, 1)
    assert "0xfefe is not supported" in k.keys_from_keylog(master, [odd_version]).notes[0]
    no_srtp = k.DtlsHandshake(A_END, B_END, k.DTLS_1_2, bytes(32), bytes(32), 0xC02B, True, None)
    assert "no SRTP profile" in k.keys_from_keylog(master, [no_srtp]).notes[0]
    odd = k.DtlsHandshake(A_END, B_END, k.DTLS_1_2, bytes(32), bytes(32), 0xC02B, True, 0x99)
    assert "unsupported SRTP profile" in k.keys_from_keylog(master, [odd]).notes[0]
    exporter = k.KeyLog(exporter_secrets={bytes(32): bytes(32)})
    none = k.DtlsHandshake(A_END, B_END, DTLS_1_3, bytes(32), bytes(32), 0x1301, False, None)
    assert "offers no SRTP profile" in k.keys_from_keylog(exporter, [none]).notes[0]
    unknown = replace(none, offered_profiles=(0x99, 0x9A))
    assert k.keys_from_keylog(exporter, [unknown]).notes == (
        "key log: unsupported SRTP profile 0x0099, 0x009a",
    )
    sha384 = replace(none, cipher_suite=0x1302, offered_profiles=(1,))
    assert k.keys_from_keylog(exporter, [sha384]).notes == (
        "key log: a 32-byte EXPORTER_SECRET does not fit cipher suite 0x1302 (sha384)",
    )
    with pytest.raises(ValueError, match="exporter"):
        k.export_keying_material(bytes(48), bytes(32), bytes(32), b"x", 8, version=0x0303)


def test_fragmented_client_hello_is_reassembled() -> None:
    parts = [(PACKETS / f"dtls_client_hello_fragment_{i}.bin").read_bytes() for i in (1, 2)]
    whole = (PACKETS / "dtls_client_hello.bin").read_bytes()
    server = (PACKETS / "dtls_server_hello_flight.bin").read_bytes()
    joined = k.find_dtls_handshakes(
        [(*A_END, *B_END, parts[0]), (*A_END, *B_END, parts[1]), (*B_END, *A_END, server)]
    )
    single = k.find_dtls_handshakes([(*A_END, *B_END, whole), (*B_END, *A_END, server)])
    assert joined == single and len(single) == 1
    assert single[0].client == A_END and single[0].server == B_END


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_nothing(data: bytes) -> None:
    k.find_dtls_handshakes([(*A_END, *B_END, data), (*B_END, *A_END, data)])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_keylog_text_raises_only_malformed(text: str) -> None:
    with contextlib.suppress(MalformedPacket):
        k.parse_keylog(text)


# -- one session --------------------------------------------------------------------------------


def test_load_keys_of_a_folder_reads_every_source(session_dir: Path) -> None:
    found = k.load_keys(session_dir)
    sources = {key.source.split(" ")[0] for key in found.keys}
    if call_shape(session_dir).rtp_readable:
        assert sources == {"keys.json", "keylog.txt"}
    else:  # TURN over TLS: the key log has no handshake to apply to; keys.json still counts
        assert sources == {"keys.json"}
        assert NO_HANDSHAKE in found.notes
    assert len({key.key_and_salt for key in found.keys}) == 2


def test_load_session_keys_puts_keys_by_hand_first(tmp_path: Path) -> None:
    manual = k.parse_srtp_key_option(f"AES_CM_128_HMAC_SHA1_80:{KEY30}")
    sources = k.KeySources(sdp=(SDES / "offer.sdp",), manual=(manual,))
    found = k.load_session_keys(sources)
    assert found.keys[0] is manual and len(found.keys) == 4
    assert k.load_keys(SDES / "offer.sdp").keys == found.keys[1:]


def test_key_sources_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text("{}")
    (tmp_path / "offer.sdp").write_text("v=0\r\n")
    sources = k.KeySources.in_folder(tmp_path, keylog=tmp_path / "other.txt")
    assert sources.keys_json == tmp_path / "keys.json"
    assert sources.sdp == (tmp_path / "offer.sdp",)
    assert sources.keylog == tmp_path / "other.txt"
    assert sources.events is None


def test_sdes_keys_from_events_past_unusable_lines(tmp_path: Path) -> None:
    """A damaged line of events.jsonl (the audit counts it) does not cost the decryption."""
    offer = (SDES / "offer.sdp").read_text()
    path = tmp_path / "events.jsonl"
    good = json.dumps({"t": 1795989002.0, "kind": "sdp", "role": "offer", "sdp": offer})
    path.write_text('{"t": NaN, "kind": "session_start"}\n' + "[" * 100_000 + "\n" + good + "\n")
    assert len(k.load_event_keys(path).keys) == 3


# -- DTLS 1.3: the TLS 1.3 exporter and a real Firefox call ---------------------------------------

DTLS13 = ROOT / "tests" / "fixtures" / "media" / "dtls13"
FIREFOX_DTLS13 = pytest.mark.parametrize(
    "folder", [DTLS13, DTLS13.with_name("dtls13-wav")], ids=["fake-mic", "wav-mic"]
)
"""Real Firefox DTLS 1.3 calls: tests/fixtures/make_dtls13.py's, and the firefox lab's."""


def _tls13_pair(ciphersuite: bytes) -> tuple[SSL.Connection, SSL.Connection, list[bytes]]:
    """An OpenSSL TLS 1.3 client and server over memory BIOs, handshake done; the client's
    NSS-format key log lines."""
    log: list[bytes] = []

    def context(server: bool) -> SSL.Context:
        made = SSL.Context(SSL.TLS_METHOD)
        made.set_min_proto_version(SSL.TLS1_3_VERSION)
        made.set_tls13_ciphersuites(ciphersuite)
        if server:
            private, certificate = self_signed("mutecheck")
            made.use_privatekey(private)
            made.use_certificate(certificate)
        else:
            made.set_keylog_callback(lambda _connection, line: log.append(bytes(line)))
        return made

    client = SSL.Connection(context(False))
    client.set_connect_state()
    server = SSL.Connection(context(True))
    server.set_accept_state()
    for _ in range(10):
        for connection in (client, server):
            with contextlib.suppress(SSL.WantReadError):
                connection.do_handshake()
        for source, sink in ((client, server), (server, client)):
            with contextlib.suppress(SSL.WantReadError):
                sink.bio_write(source.bio_read(65536))
    return client, server, log


@pytest.mark.parametrize(
    ("ciphersuite", "digest"),
    [
        (b"TLS_AES_128_GCM_SHA256", "sha256"),
        (b"TLS_AES_256_GCM_SHA384", "sha384"),
        (b"TLS_CHACHA20_POLY1305_SHA256", "sha256"),
    ],
)
def test_tls13_exporter_equals_openssl(ciphersuite: bytes, digest: str) -> None:
    """RFC 8446 §7.5 from the key log's EXPORTER_SECRET, with the "tls13 " prefix, gives what
    OpenSSL's own exporter gives (SSL_export_keying_material), for every TLS 1.3 hash."""
    client, server, log = _tls13_pair(ciphersuite)
    assert client.get_cipher_name() == ciphersuite.decode()
    keylog = k.read_keylog(b"\n".join(log).decode())
    assert "CLIENT_TRAFFIC_SECRET_0" in keylog.labels and not keylog.master_secrets
    random = client.client_random()
    assert random is not None
    secret = keylog.exporter_secrets[random]
    suite = {b"TLS_AES_128_GCM_SHA256": 0x1301, b"TLS_AES_256_GCM_SHA384": 0x1302}
    assert k.tls13_digest(suite.get(ciphersuite, 0x1303)) == digest
    for length, context in ((60, None), (88, None), (60, b"mutecheck context")):
        expected = server.export_keying_material(k.DTLS_SRTP_LABEL, length, context)
        assert client.export_keying_material(k.DTLS_SRTP_LABEL, length, context) == expected
        derived = k.tls13_export(secret, k.DTLS_SRTP_LABEL, context or b"", length, digest)
        assert derived == expected
        dtls = k.tls13_export(secret, k.DTLS_SRTP_LABEL, context or b"", length, digest, b"dtls13")
        assert dtls != expected  # the prefix is part of every label


@settings(max_examples=100, deadline=None)
@given(
    st.binary(min_size=1, max_size=64),
    st.binary(max_size=80),
    st.integers(0, 255 * 32),
    st.sampled_from(["sha256", "sha384"]),
)
def test_hkdf_expand_equals_cryptography(
    secret: bytes, info: bytes, length: int, hash_name: str
) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    algorithm = hashes.SHA256() if hash_name == "sha256" else hashes.SHA384()
    expected = HKDFExpand(algorithm, length, info).derive(secret) if length else b""
    assert k.hkdf_expand(secret, info, length, hash_name) == expected


def test_hkdf_expand_refuses_too_long() -> None:
    with pytest.raises(ValueError, match="cannot give"):
        k.hkdf_expand(bytes(32), b"", 255 * 32 + 1, "sha256")
    with pytest.raises(ValueError, match="255 bytes"):
        k.hkdf_expand_label(bytes(32), bytes(250), b"", 16, "sha256")


def test_read_keylog_keeps_exporter_secrets_apart() -> None:
    random = "ab" * 32
    text = (
        f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {random} {'01' * 32}\n"
        f"EXPORTER_SECRET {random} {'02' * 32}\n"
        f"EXPORTER_SECRET {'cd' * 32} {'03' * 48}\n"
        f"CLIENT_RANDOM {'ef' * 32} {'04' * 48}\n# EXPORTER_SECRET x\n"
    )
    keylog = k.read_keylog(text)
    assert keylog.exporter_secrets == {
        bytes.fromhex(random): bytes.fromhex("02" * 32),
        bytes.fromhex("cd" * 32): bytes.fromhex("03" * 48),
    }
    assert keylog.master_secrets == {bytes.fromhex("ef" * 32): bytes.fromhex("04" * 48)}
    assert keylog.labels == {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "EXPORTER_SECRET", "CLIENT_RANDOM"}
    assert k.parse_keylog(text) == keylog.master_secrets
    with pytest.raises(MalformedPacket, match="line 2: EXPORTER_SECRET needs"):
        k.read_keylog(f"\nEXPORTER_SECRET {random} {'02' * 40}")
    with pytest.raises(MalformedPacket, match="line 1: EXPORTER_SECRET"):
        k.read_keylog(f"EXPORTER_SECRET {random[:-2]} {'02' * 32}")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["CLIENT_RANDOM", "EXPORTER_SECRET", "SERVER_TRAFFIC_SECRET_0", "#"]),
            st.binary(min_size=30, max_size=34),
            st.binary(min_size=30, max_size=50),
        ),
        max_size=6,
    )
)
def test_read_keylog_of_generated_lines(lines: list[tuple[str, bytes, bytes]]) -> None:
    """Every well-formed line is kept under its label; a badly sized one raises MalformedPacket."""
    text = "\n".join(f"{label} {random.hex()} {secret.hex()}" for label, random, secret in lines)
    sizes = {"CLIENT_RANDOM": (48,), "EXPORTER_SECRET": (32, 48)}
    broken = any(
        label in sizes and (len(random) != 32 or len(secret) not in sizes[label])
        for label, random, secret in lines
    )
    if broken:
        with pytest.raises(MalformedPacket):
            k.read_keylog(text)
        return
    keylog = k.read_keylog(text)
    for label, random, _ in lines:
        if label in sizes:
            wanted = keylog.master_secrets if label == "CLIENT_RANDOM" else keylog.exporter_secrets
            assert random in wanted
    assert keylog.labels == {label for label, _, _ in lines if label != "#"}
    assert {r for label, r, _ in lines if label == "CLIENT_RANDOM"} == set(keylog.master_secrets)


def _firefox_handshake(folder: Path = DTLS13) -> k.DtlsHandshake:
    (handshake,) = k.find_dtls_handshakes(k.capture_flow_datagrams(folder / "capture.pcapng"))
    return handshake


@FIREFOX_DTLS13
def test_firefox_dtls13_handshake(folder: Path) -> None:
    """Firefox's DTLS 1.3 hellos are plain DTLS records (the ClientHello in two fragments);
    the ServerHello names DTLS 1.3 in supported_versions and carries no use_srtp (it moved to
    the encrypted extensions), so the profiles are the ClientHello's offer."""
    handshake = _firefox_handshake(folder)
    assert handshake.version == DTLS_1_3
    assert handshake.cipher_suite == 0x1301  # TLS_AES_128_GCM_SHA256
    assert handshake.srtp_profile is None
    assert handshake.offered_profiles == (7, 8, 1, 2)
    keylog = k.read_keylog((folder / "keylog.txt").read_text())
    assert handshake.client_random in keylog.exporter_secrets
    assert not keylog.master_secrets
    assert {"CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"} <= keylog.labels


@FIREFOX_DTLS13
def test_firefox_dtls13_keys_one_pair_per_offered_profile(folder: Path) -> None:
    found = k.load_keylog_keys(folder / "keylog.txt", folder / "capture.pcapng")
    handshake = _firefox_handshake(folder)
    assert found.notes == ()
    assert [key.suite.dtls_id for key in found.keys] == [7, 7, 8, 8, 1, 1, 2, 2]
    assert [key.sender for key in found.keys] == [handshake.client, handshake.server] * 4
    secret = k.read_keylog((folder / "keylog.txt").read_text()).exporter_secrets[
        handshake.client_random
    ]
    gcm = find_suite("AEAD_AES_128_GCM")
    material = k.tls13_export(secret, k.DTLS_SRTP_LABEL, b"", 56, "sha256", b"dtls13")
    client, server = found.keys[:2]
    assert client.key_and_salt == material[:16] + material[32:44]
    assert server.key_and_salt == material[16:32] + material[44:]
    assert client.suite is gcm and server.suite is gcm


def test_firefox_dtls13_key_log_problems_are_notes(tmp_path: Path) -> None:
    """A key log that cannot key the DTLS 1.3 handshake says why, in one note."""
    handshake = _firefox_handshake()
    start = f"DTLS 1.3 handshake of {handshake.client[0]}:{handshake.client[1]} (client random "
    cases = {
        f"CLIENT_RANDOM {handshake.client_random.hex()} {'00' * 48}\n": (
            "holds only CLIENT_RANDOM lines (TLS/DTLS 1.2)"
        ),
        f"EXPORTER_SECRET {'77' * 32} {'00' * 32}\n": (
            "its 1 EXPORTER_SECRET line(s) are for other handshakes (77777777...)"
        ),
        f"CLIENT_TRAFFIC_SECRET_0 {handshake.client_random.hex()} {'00' * 32}\n": (
            "holds CLIENT_TRAFFIC_SECRET_0 but no EXPORTER_SECRET"
        ),
        "": "",
    }
    dtls12 = replace(handshake, version=k.DTLS_1_2, srtp_profile=7)
    exporter_only = k.read_keylog(f"EXPORTER_SECRET {'77' * 32} {'00' * 32}")
    (note,) = k.keys_from_keylog(exporter_only, [dtls12]).notes
    assert note.startswith("key log: no CLIENT_RANDOM line for the DTLS handshake of ")
    assert note.endswith("the key log holds EXPORTER_SECRET but no CLIENT_RANDOM")
    for text, why in cases.items():
        (tmp_path / "keylog.txt").write_text(text)
        found = k.load_keylog_keys(tmp_path / "keylog.txt", DTLS13 / "capture.pcapng")
        assert found.keys == ()
        (note,) = found.notes
        assert note.startswith(f"keylog.txt: no EXPORTER_SECRET line for the {start}")
        assert note.endswith(why)


def test_hello_retry_request_is_not_a_handshake() -> None:
    """A DTLS 1.3 HelloRetryRequest (a ServerHello with RFC 8446's fixed random) before the
    real ServerHello: the handshake is the real one's."""
    datagrams = k.capture_flow_datagrams(DTLS13 / "capture.pcapng")
    handshake = _firefox_handshake()
    index, server_flight = next(
        (i, d) for i, d in enumerate(datagrams) if handshake.server_random in d[4]
    )
    retry = server_flight[4].replace(handshake.server_random, HELLO_RETRY_REQUEST_RANDOM)
    with_retry = [*datagrams[:index], (*server_flight[:4], retry), *datagrams[index:]]
    assert k.find_dtls_handshakes(with_retry) == [handshake]
