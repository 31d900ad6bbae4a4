"""DTLS record parsing on a real DTLS-SRTP handshake (OpenSSL set up by aiortc), and tshark."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import pylibsrtp
import pytest
from helpers.packet_fixtures import PACKETS, golden, load
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
from decoders.session.keys import capture_flow_datagrams
from decoders.wire.dtls import (
    CLIENT_HELLO,
    DTLS_1_3,
    EXTENDED_MASTER_SECRET,
    HELLO_RETRY_REQUEST_RANDOM,
    SERVER_HELLO,
    USE_SRTP_EXTENSION,
    DtlsRecord,
    find_suite,
    parse_handshake_fragments,
    parse_hello,
    parse_records,
    suite_by_dtls_id,
)

DTLS_FIXTURES = sorted(p.stem for p in PACKETS.glob("dtls_*.bin"))


def summary(records: list[DtlsRecord]) -> list[tuple[str, int, int, str | None]]:
    return [(r.content_type_name, r.epoch, r.sequence_number, r.handshake_name) for r in records]


def test_client_hello_offers_srtp_profiles() -> None:
    data = load("dtls_client_hello")
    (record,) = parse_records(data)
    assert record.content_type == 22
    assert record.content_type_name == "handshake"
    assert record.version == 0xFEFF
    assert (record.epoch, record.sequence_number) == (0, 0)
    assert record.length == len(data) - 13
    assert record.offset == 0
    assert record.handshake_type == 1
    assert record.handshake_name == "client_hello"
    assert record.handshake_types == (1,)
    # aiortc offers AEAD_AES_256_GCM, AEAD_AES_128_GCM, AES128_CM_SHA1_80
    assert record.srtp_profiles == (8, 7, 1)


def test_server_flight_chooses_a_profile() -> None:
    data = load("dtls_server_hello_flight")
    records = parse_records(data)
    assert summary(records) == [
        ("handshake", 0, 0, "server_hello"),
        ("handshake", 0, 1, "certificate"),
        ("handshake", 0, 2, "certificate"),  # the certificate is fragmented over 3 records
        ("handshake", 0, 3, "certificate"),
        ("handshake", 0, 4, "server_key_exchange"),
        ("handshake", 0, 5, "certificate_request"),
        ("handshake", 0, 6, "server_hello_done"),
    ]
    assert records[0].srtp_profiles == (1,)
    suite = suite_by_dtls_id(records[0].srtp_profiles[0])
    assert suite is not None
    assert (suite.dtls_name, suite.rtp_tag_length) == ("SRTP_AES128_CM_SHA1_80", 10)
    assert all(r.srtp_profiles == () for r in records[1:])
    assert {r.version for r in records} == {0xFEFD}
    assert sum(13 + r.length for r in records) == len(data)
    assert [r.offset for r in records[:2]] == [0, 13 + records[0].length]


def test_client_flight_switches_to_epoch_1() -> None:
    records = parse_records(load("dtls_client_certificate_flight"))
    assert summary(records) == [
        ("handshake", 0, 1, "certificate"),
        ("handshake", 0, 2, "certificate"),
        ("handshake", 0, 3, "client_key_exchange"),
        ("handshake", 0, 4, "certificate_verify"),
        ("handshake", 0, 5, "certificate_verify"),
        ("change_cipher_spec", 0, 6, None),
        ("handshake", 1, 0, None),  # the encrypted Finished
    ]
    assert records[-1].handshake_types == ()


def test_server_finished_application_data_and_alert() -> None:
    assert summary(parse_records(load("dtls_server_finished_flight"))) == [
        ("change_cipher_spec", 0, 7, None),
        ("handshake", 1, 0, None),
    ]
    (data,) = parse_records(load("dtls_application_data"))
    assert (data.content_type, data.content_type_name, data.epoch, data.sequence_number) == (
        23,
        "application_data",
        1,
        1,
    )
    (alert,) = parse_records(load("dtls_close_notify"))
    assert (alert.content_type_name, alert.epoch, alert.sequence_number) == ("alert", 1, 2)


def test_fragmented_client_hello() -> None:
    (first,) = parse_records(load("dtls_client_hello_fragment_1"))
    assert first.handshake_name == "client_hello"
    assert first.srtp_profiles == (8, 7, 1)  # use_srtp sits in the first fragment
    (second,) = parse_records(load("dtls_client_hello_fragment_2"))
    assert (second.handshake_name, second.sequence_number) == ("client_hello", 1)
    assert second.srtp_profiles == ()


def test_every_partial_first_fragment_of_a_client_hello() -> None:
    """Whatever a first fragment holds, it is read as far as it goes, never raised on."""
    whole = load("dtls_client_hello")
    handshake = whole[13:]
    body = handshake[12:]
    seen = set()
    for cut in range(len(body)):
        message = handshake[:9] + cut.to_bytes(3, "big") + body[:cut]
        record = whole[:11] + len(message).to_bytes(2, "big") + message
        (parsed,) = parse_records(record)
        assert parsed.handshake_name == "client_hello"
        seen.add(parsed.srtp_profiles)
    assert seen == {(), (8, 7, 1)}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # DTLS 1.3 unified header 0b00101100: no CID, 16-bit sequence, length present, epoch 0
        ("2c 1234 0003 aabbcc", [(0x2C, 0, 0x1234, 3)]),
        # 0b00100011: 8-bit sequence, no length (runs to the end), epoch 3
        ("23 07 aabbccdd", [(0x23, 3, 7, 4)]),
        # a plaintext alert followed by a unified-header record
        ("15 fefd 0001 000000000005 0002 0100 2c 0001 0001 ff", [(21, 1, 5, 2), (0x2C, 0, 1, 1)]),
    ],
)
def test_annotated_records(data: str, expected: list[tuple[int, int, int, int]]) -> None:
    records = parse_records(bytes.fromhex(data))
    assert [(r.content_type, r.epoch, r.sequence_number, r.length) for r in records] == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "DTLS record header truncated: empty datagram"),
        ("16fefd 0000 000000000000 00", "DTLS record header truncated at byte 0"),
        ("16 0303 0000 000000000000 0000", "DTLS record version 0x0303"),
        ("16 fefd 0000 000000000000 0005 0000", "DTLS record length 5 runs past"),
        ("19 fefd 0001 000000000000 0000", "DTLS tls12_cid record at byte 0"),
        ("30 00 00", "DTLS 1.3 record at byte 0 carries a connection id"),
        ("2c 0001 00", "DTLS 1.3 unified header truncated"),
        ("2c 0001 0009 00", "DTLS 1.3 record length 9 runs past"),
        ("16 fefd 0000 000000000000 0004 01000000", "DTLS handshake header truncated"),
        (
            "16 fefd 0000 000000000000 000c 010000ff 0000 000000 0000ff",
            "DTLS handshake fragment length 255 runs past the record",
        ),
        (
            "16 fefd 0000 000000000000 000d 01000001 0000 000001 000001 00",
            "DTLS handshake fragment 1\\+1 exceeds message length 1",
        ),
        (
            "16 fefd 0000 000000000000 000d 02000001 0000 000000 000001 00",
            "DTLS server_hello truncated before its extensions end",
        ),
    ],
)
def test_errors_name_the_field(data: str, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        parse_records(bytes.fromhex(data))


def test_broken_use_srtp_extension() -> None:
    hello = bytes.fromhex("fefd") + bytes(32) + b"\x00" + b"\x00\x01" + b"\x00"
    extensions = bytes.fromhex("000e 0003 0002 00")  # list of one 2-byte profile, cut short
    body = hello + len(extensions).to_bytes(2, "big") + extensions
    message = b"\x02" + len(body).to_bytes(3, "big") + bytes(2) + bytes(3)
    message += len(body).to_bytes(3, "big") + body
    record = bytes.fromhex("16 fefd 0000 000000000000") + len(message).to_bytes(2, "big")
    with pytest.raises(MalformedPacket, match="DTLS server_hello use_srtp extension truncated"):
        parse_records(record + message)


def test_broken_record_length() -> None:
    with pytest.raises(MalformedPacket, match="DTLS record length 156 runs past"):
        parse_records(load("broken_dtls_record_length"))


@pytest.mark.parametrize("name", sorted(golden("dtls")))
def test_agrees_with_tshark(name: str) -> None:
    row = golden("dtls")[name]
    try:
        records = parse_records(load(name))
    except MalformedPacket:
        assert name.startswith("broken_")
        return
    assert row["dtls.record.content_type"] == [str(r.content_type) for r in records]
    assert row["dtls.record.version"] == [f"0x{r.version:04x}" for r in records]
    assert row["dtls.record.epoch"] == [str(r.epoch) for r in records]
    assert row["dtls.record.sequence_number"] == [str(r.sequence_number) for r in records]
    assert row["dtls.record.length"] == [str(r.length) for r in records]
    assert row["dtls.handshake.type"] == [str(t) for r in records for t in r.handshake_types]
    if row["dtls.use_srtp.protection_profile"]:  # tshark reads use_srtp of whole hellos only
        profiles = [f"0x{p:04x}" for r in records for p in r.srtp_profiles]
        assert row["dtls.use_srtp.protection_profile"] == profiles


@pytest.mark.parametrize("name", DTLS_FIXTURES)
def test_cut_at_every_length(name: str) -> None:
    data = load(name)
    for end in range(len(data) + 1):
        try:
            records = parse_records(data[:end])
        except MalformedPacket:
            continue
        assert records


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedPacket):
        parse_records(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 2, 11]), st.binary(max_size=120), st.booleans())
def test_arbitrary_handshakes_raise_only_malformed(
    handshake_type: int, body: bytes, partial: bool
) -> None:
    total = len(body) + (7 if partial else 0)
    message = bytes([handshake_type]) + total.to_bytes(3, "big") + bytes(5)
    message += len(body).to_bytes(3, "big") + body
    record = bytes.fromhex("16 fefd 0000 000000000000") + len(message).to_bytes(2, "big")
    try:
        (parsed,) = parse_records(record + message)
    except MalformedPacket as error:
        assert not partial or "use_srtp" in str(error)  # a partial hello is read as far as it goes
        return
    assert parsed.handshake_type == handshake_type


def hello(handshake_type: int, extensions: list[tuple[int, bytes]]) -> bytes:
    """A ClientHello (1) or ServerHello (2) record carrying ``extensions``."""
    body = bytes.fromhex("fefd") + bytes(32) + b"\x00"  # version, random, empty session id
    if handshake_type == 1:
        body += b"\x00" + bytes.fromhex("0002 c02b") + b"\x01\x00"  # cookie, suites, null
    else:
        body += bytes.fromhex("c02b 00")  # cipher suite, compression
    block = b"".join(t.to_bytes(2, "big") + len(d).to_bytes(2, "big") + d for t, d in extensions)
    body += len(block).to_bytes(2, "big") + block
    message = bytes([handshake_type]) + len(body).to_bytes(3, "big") + bytes(5)
    message += len(body).to_bytes(3, "big") + body
    return bytes.fromhex("16 fefd 0000 000000000000") + len(message).to_bytes(2, "big") + message


def test_profiles_from_a_hello_built_here() -> None:
    use_srtp = bytes.fromhex("0004 0001 0007 00")
    (record,) = parse_records(hello(2, [(10, b"\x00\x00"), (14, use_srtp), (43, b"")]))
    assert record.srtp_profiles == (1, 7)
    (record,) = parse_records(hello(1, [(23, b"")]))
    assert (record.handshake_name, record.srtp_profiles) == ("client_hello", ())


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([1, 2]),
    st.lists(st.tuples(st.sampled_from([10, 14, 43, 0xFF01]), st.binary(max_size=12)), max_size=4),
)
def test_arbitrary_hello_extensions(
    handshake_type: int, extensions: list[tuple[int, bytes]]
) -> None:
    try:
        (record,) = parse_records(hello(handshake_type, extensions))
    except MalformedPacket as error:
        assert "use_srtp" in str(error)
        return
    assert record.handshake_type == handshake_type
    assert len(record.srtp_profiles) <= 6


# -- the hello parser ---------------------------------------------------------------------------


def _hello_bodies() -> list[tuple[int, bytes]]:
    out = []
    for name in ("dtls_client_hello", "dtls_server_hello_flight"):
        for fragment in parse_handshake_fragments(load(name)):
            if fragment.message_type in (CLIENT_HELLO, SERVER_HELLO):
                out.append((fragment.message_type, fragment.fragment))
    return out


def test_real_hellos_parse() -> None:
    (client_type, client_body), (server_type, server_body) = _hello_bodies()
    client = parse_hello(client_type, client_body)
    server = parse_hello(server_type, server_body)
    assert client.version == 0xFEFD and len(client.random) == 32
    assert USE_SRTP_EXTENSION in client.extensions and EXTENDED_MASTER_SECRET in client.extensions
    assert set(client.srtp_profiles) >= {1}
    assert server.srtp_profiles == (1,)  # tshark_dtls.tsv: the server chose profile 1
    assert len(server.cipher_suites) == 1 and server.cipher_suites[0] in client.cipher_suites
    assert server.selected_version is None
    with pytest.raises(ValueError):
        parse_hello(11, client_body)


def test_hello_cut_at_every_length() -> None:
    for message_type, body in _hello_bodies():
        for cut in range(len(body)):
            with contextlib.suppress(MalformedPacket):
                parse_hello(message_type, body[:cut])


def test_handshake_datagrams_cut_at_every_length() -> None:
    for name in ("dtls_client_hello", "dtls_server_hello_flight"):
        data = load(name)
        for cut in range(len(data)):
            with contextlib.suppress(MalformedPacket):
                parse_handshake_fragments(data[:cut])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_malformed_from_the_hello_parsers(data: bytes) -> None:
    with contextlib.suppress(MalformedPacket):
        parse_handshake_fragments(data)
    for message_type in (CLIENT_HELLO, SERVER_HELLO):
        with contextlib.suppress(MalformedPacket):
            parse_hello(message_type, data)
        try:
            parse_hello(message_type, data, complete=False)
        except MalformedPacket as error:  # a first fragment is read as far as it goes
            assert "use_srtp" in str(error)


def test_a_first_fragment_keeps_what_it_holds() -> None:
    """Cut anywhere, a ClientHello's first fragment gives the fields before the cut."""
    ((message_type, body),) = [h for h in _hello_bodies() if h[0] == CLIENT_HELLO]
    whole = parse_hello(message_type, body)
    for cut in range(len(body)):
        part = parse_hello(message_type, body[:cut], complete=False)
        assert not part.complete
        assert part.random in (b"", whole.random)
        assert whole.extensions[: len(part.extensions)] == part.extensions
        assert part.srtp_profiles in ((), whole.srtp_profiles)


# -- SRTP protection suites ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_80"),
        ("srtp_aes128_cm_sha1_32", "AES_CM_128_HMAC_SHA1_32"),
        ("SRTP_AEAD_AES_256_GCM", "AEAD_AES_256_GCM"),
        (" aead_aes_128_gcm ", "AEAD_AES_128_GCM"),
    ],
)
def test_find_suite_accepts_both_spellings(name: str, expected: str) -> None:
    assert find_suite(name).name == expected


def test_suite_table() -> None:
    gcm = find_suite("AEAD_AES_256_GCM")
    assert (gcm.key_length, gcm.salt_length, gcm.rtp_tag_length, gcm.dtls_id) == (32, 12, 16, 8)
    short = find_suite("AES_CM_128_HMAC_SHA1_32")
    assert (short.rtp_tag_length, short.rtcp_tag_length) == (4, 10)
    assert suite_by_dtls_id(1) is find_suite("SRTP_AES128_CM_SHA1_80")
    assert suite_by_dtls_id(0x99) is None
    assert gcm.libsrtp_profile == pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM
    with pytest.raises(ValueError, match="unknown SRTP suite"):
        find_suite("F8_128_HMAC_SHA1_80")


def test_hello_fields_the_key_log_needs() -> None:
    """supported_versions (a DTLS 1.3 ServerHello's choice) when it is 2 bytes, else None;
    use_srtp needs its srtp_mki length byte (RFC 5764 section 4.1.1)."""
    body = hello(2, [(43, bytes.fromhex("fefc")), (14, bytes.fromhex("0002 0001 00"))])[25:]
    parsed = parse_hello(SERVER_HELLO, body)
    assert (parsed.selected_version, parsed.srtp_profiles, parsed.cipher_suites) == (
        0xFEFC,
        (1,),
        (0xC02B,),
    )
    assert parse_hello(SERVER_HELLO, hello(2, [(43, b"")])[25:]).selected_version is None
    with pytest.raises(MalformedPacket, match="use_srtp extension truncated"):
        parse_hello(SERVER_HELLO, hello(2, [(14, bytes.fromhex("0002 0001"))])[25:])


def test_hello_retry_request() -> None:
    """RFC 8446 section 4.1.3: a HelloRetryRequest is a ServerHello whose random is
    SHA-256("HelloRetryRequest")."""
    assert hashlib.sha256(b"HelloRetryRequest").digest() == HELLO_RETRY_REQUEST_RANDOM
    body = bytearray(hello(2, [(43, bytes.fromhex("fefc"))])[25:])
    assert not parse_hello(SERVER_HELLO, bytes(body)).is_hello_retry_request
    body[2:34] = HELLO_RETRY_REQUEST_RANDOM
    assert parse_hello(SERVER_HELLO, bytes(body)).is_hello_retry_request
    client = bytearray(hello(1, [])[25:])
    client[2:34] = HELLO_RETRY_REQUEST_RANDOM
    assert not parse_hello(CLIENT_HELLO, bytes(client)).is_hello_retry_request


def test_firefox_dtls13_records() -> None:
    """A real Firefox DTLS 1.3 handshake (tests/fixtures/make_dtls13.py): the ClientHello in two
    plain records (fragments), the ServerHello in a plain record followed by encrypted records
    in the unified header (epoch 2), the rest unified-header records only."""
    capture = Path(__file__).resolve().parents[1] / "fixtures" / "media" / "dtls13"
    datagrams = [d[4] for d in capture_flow_datagrams(capture / "capture.pcapng")]
    records = [parse_records(datagram) for datagram in datagrams]
    first, second, server = records[:3]
    assert [(r.version, r.handshake_name) for r in first + second] == [
        (0xFEFF, "client_hello"),
        (0xFEFF, "client_hello"),
    ]
    assert [r.messages[0].fragment_offset for r in first + second] == [
        0,
        len(first[0].messages[0].fragment),
    ]
    assert (server[0].version, server[0].handshake_name, server[0].epoch) == (
        0xFEFD,
        "server_hello",
        0,
    )
    assert {(r.content_type_name, r.version, r.epoch) for r in server[1:]} == {
        ("dtls13_ciphertext", 0xFEFC, 2)
    }
    hello_body = server[0].messages[0].fragment
    assert parse_hello(SERVER_HELLO, hello_body).selected_version == DTLS_1_3
    for later in records[3:]:
        assert all(r.content_type_name == "dtls13_ciphertext" for r in later)


def test_hello_survives_broken_records_after_it() -> None:
    """The real Firefox ServerHello datagram cut at every length, and with a DTLS 1.3 record
    carrying a connection id appended: the handshake fragments of the records before the
    broken one are kept; a broken first record is MalformedPacket."""
    capture = Path(__file__).resolve().parents[1] / "fixtures" / "media" / "dtls13"
    datagrams = [d[4] for d in capture_flow_datagrams(capture / "capture.pcapng")]
    flight = datagrams[2]
    hello_end = 13 + parse_records(flight)[0].length
    whole = parse_handshake_fragments(flight)
    assert [m.message_type for m in whole] == [SERVER_HELLO]
    for cut in range(len(flight)):
        if cut < hello_end:
            with pytest.raises(MalformedPacket):
                parse_handshake_fragments(flight[:cut])
        else:
            assert parse_handshake_fragments(flight[:cut]) == whole
    with_cid = flight + bytes.fromhex("3c 01 02 03 04 0010") + bytes(16)  # C, S, L bits set
    with pytest.raises(MalformedPacket, match="connection id"):
        parse_records(with_cid)
    assert parse_handshake_fragments(with_cid) == whole
