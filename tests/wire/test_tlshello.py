"""Tests for decoders.wire.tlshello: the hellos of real TLS connections, cut and fuzzed."""

from __future__ import annotations

import functools
import ssl

import pytest
from helpers.tls_bytes import tls_connection
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
from decoders.wire.framing import TLS_HEADER_LENGTH, TlsRecordFramer
from decoders.wire.tlshello import (
    ALPN_TURN,
    ASSUMED_OVERHEAD,
    TLS12,
    TLS13,
    TlsHello,
    parse_hello,
    record_overhead,
)


@functools.cache
def connection(version: ssl.TLSVersion, alpn: tuple[str, ...] = ()) -> tuple[list[bytes], ...]:
    """Both directions' records of a real connection: 10 client writes of 100..109 bytes."""
    client, server = tls_connection(
        [(True, bytes(100 + n)) for n in range(10)], version=version, alpn=list(alpn) or None
    )
    return tuple(TlsRecordFramer(synced=True).feed(d) for d in (client, server))


def first_hello(records: list[bytes]) -> TlsHello:
    hello = parse_hello(records[0][TLS_HEADER_LENGTH:])
    assert hello is not None
    return hello


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_real_hellos(version: ssl.TLSVersion) -> None:
    client, server = connection(version, (ALPN_TURN,))
    hello, answer = first_hello(client), first_hello(server)
    assert hello.is_client and not answer.is_client
    assert hello.alpn == (ALPN_TURN,)
    assert hello.server_name == "localhost"
    assert len(hello.cipher_suites) > 3
    assert answer.version == (TLS13 if version == ssl.TLSVersion.TLSv1_3 else TLS12)
    assert answer.cipher_suites[0] in hello.cipher_suites
    if version == ssl.TLSVersion.TLSv1_2:
        assert answer.alpn == (ALPN_TURN,)  # TLS 1.3 sends it encrypted (EncryptedExtensions)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_overhead_from_the_server_hello_matches_the_records(version: ssl.TLSVersion) -> None:
    client, server = connection(version)
    overhead = record_overhead(first_hello(server))
    assert overhead.exact
    sizes = [len(r) - TLS_HEADER_LENGTH for r in client if r[0] == 23][-10:]
    assert sizes == [100 + n + overhead.bytes for n in range(10)]
    assert overhead.bytes == (17 if version == ssl.TLSVersion.TLSv1_3 else 24)


def test_overhead_assumed_without_a_server_hello() -> None:
    client, _ = connection(ssl.TLSVersion.TLSv1_2)
    assert record_overhead(None) == ASSUMED_OVERHEAD
    assert record_overhead(first_hello(client)) == ASSUMED_OVERHEAD
    assert not ASSUMED_OVERHEAD.exact and "assumed" in ASSUMED_OVERHEAD.how


def test_overhead_of_other_suites() -> None:
    def server(suite: int) -> TlsHello:
        return TlsHello(2, TLS12, (suite,), None, ())

    assert record_overhead(server(0xCCA8)).bytes == 16  # ChaCha20-Poly1305
    assert record_overhead(server(0xC0AE)).bytes == 16  # AES-CCM-8
    assert record_overhead(server(0xC02F)).bytes == 24
    cbc = record_overhead(server(0x002F))
    assert not cbc.exact and "CBC" in cbc.how


def test_not_a_hello() -> None:
    client, _ = connection(ssl.TLSVersion.TLSv1_2)
    assert parse_hello(b"") is None
    assert parse_hello(bytes([11, 0, 0, 0])) is None  # a Certificate message
    later = [r for r in client if r[0] == 22][-1]  # Finished: encrypted, type byte random
    hello = parse_hello(later[TLS_HEADER_LENGTH:]) if later[5] not in (1, 2) else None
    assert hello is None


@pytest.mark.parametrize("direction", [0, 1])
def test_every_cut_raises_or_parses(direction: int) -> None:
    body = connection(ssl.TLSVersion.TLSv1_3, (ALPN_TURN,))[direction][0][TLS_HEADER_LENGTH:]
    whole = parse_hello(body)
    for cut in range(4, len(body)):
        with pytest.raises(MalformedPacket, match="truncated"):
            parse_hello(body[:cut])
    assert parse_hello(body + b"trailing") == whole


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([1, 2]))
def test_arbitrary_bytes_raise_only_malformed(data: bytes, kind: int) -> None:
    body = bytes([kind]) + len(data).to_bytes(3, "big") + data
    try:
        hello = parse_hello(body)
    except MalformedPacket:
        return
    assert hello is None or hello.handshake_type == kind
