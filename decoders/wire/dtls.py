"""DTLS records (RFC 6347 / RFC 9147), the clear hellos, and the SRTP protection suites.

Only the clear parts are decoded: record headers, the epoch-0 handshake messages, and the
ClientHello/ServerHello fields (random, cipher suites, extensions, the use_srtp profiles
offered or chosen: RFC 5764). The one hello parser of the project: the record view
(:func:`parse_records`) and the key log (:mod:`decoders.session.keys`) both read hellos here.
:data:`SUITES` is the one table of SRTP protection suites (SDES names, DTLS-SRTP profile ids,
key, salt and tag lengths) every path looks suites up in.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from decoders.errors import MalformedPacket

RECORD_HEADER_LENGTH = 13
HANDSHAKE_HEADER_LENGTH = 12
DTLS_MAJOR_VERSION = 0xFE

CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23
TLS12_CID = 25

CONTENT_TYPE_NAMES = {
    20: "change_cipher_spec",
    21: "alert",
    22: "handshake",
    23: "application_data",
    24: "heartbeat",
    25: "tls12_cid",
    26: "ack",
}

CLIENT_HELLO = 1
SERVER_HELLO = 2

HANDSHAKE_NAMES = {
    0: "hello_request",
    1: "client_hello",
    2: "server_hello",
    3: "hello_verify_request",
    4: "new_session_ticket",
    6: "hello_retry_request",
    8: "encrypted_extensions",
    11: "certificate",
    12: "server_key_exchange",
    13: "certificate_request",
    14: "server_hello_done",
    15: "certificate_verify",
    16: "client_key_exchange",
    20: "finished",
    24: "key_update",
}

USE_SRTP_EXTENSION: Final = 14  # RFC 5764 section 4.1.1
EXTENDED_MASTER_SECRET: Final = 23  # RFC 7627 section 5.1
SUPPORTED_VERSIONS: Final = 43  # RFC 8446 section 4.2.1
DTLS_1_0: Final = 0xFEFF
DTLS_1_2: Final = 0xFEFD
DTLS_1_3: Final = 0xFEFC


# -- SRTP protection suites ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SrtpSuite:
    """One SRTP protection suite under its SDES name (RFC 4568 section 6.2, RFC 7714 14.1).

    ``dtls_name``/``dtls_id`` name the same suite as a DTLS-SRTP protection profile (RFC 5764
    section 4.1.2, RFC 7714 section 14.2); ``libsrtp_profile`` is libsrtp's ``srtp_profile_t``
    value. ``rtcp_tag_length`` excludes the 4-byte E flag and SRTCP index that precede the tag.
    """

    name: str
    dtls_name: str
    dtls_id: int
    key_length: int
    salt_length: int
    rtp_tag_length: int
    rtcp_tag_length: int
    libsrtp_profile: int


SUITES: Final[tuple[SrtpSuite, ...]] = (
    SrtpSuite("AES_CM_128_HMAC_SHA1_80", "SRTP_AES128_CM_SHA1_80", 1, 16, 14, 10, 10, 1),
    SrtpSuite("AES_CM_128_HMAC_SHA1_32", "SRTP_AES128_CM_SHA1_32", 2, 16, 14, 4, 10, 2),
    SrtpSuite("AEAD_AES_128_GCM", "SRTP_AEAD_AES_128_GCM", 7, 16, 12, 16, 16, 7),
    SrtpSuite("AEAD_AES_256_GCM", "SRTP_AEAD_AES_256_GCM", 8, 32, 12, 16, 16, 8),
)


def find_suite(name: str) -> SrtpSuite:
    """The suite called ``name`` (SDES or DTLS-SRTP spelling, any case); ValueError otherwise."""
    wanted = name.strip().upper()
    for suite in SUITES:
        if wanted in (suite.name, suite.dtls_name):
            return suite
    known = ", ".join(suite.name for suite in SUITES)
    raise ValueError(f"unknown SRTP suite {name!r} (known: {known})")


def suite_by_dtls_id(profile: int) -> SrtpSuite | None:
    """RFC 5764 section 4.1.2: the suite of a use_srtp profile id, None when unsupported."""
    return next((suite for suite in SUITES if suite.dtls_id == profile), None)


# -- records ------------------------------------------------------------------------------------

_RECORD_HEADER = struct.Struct("!BHH6sH")


@dataclass(frozen=True, slots=True)
class DtlsRecord:
    """One DTLS record header and what its clear handshake content says.

    ``handshake_type``/``handshake_name`` are the first handshake message of an epoch-0
    handshake record (``handshake_types`` lists every message in it); ``srtp_profiles``
    are the use_srtp profiles of a ClientHello (offered) or ServerHello (chosen).
    ``offset`` is where the record header starts in the datagram.
    """

    content_type: int
    content_type_name: str
    version: int
    epoch: int
    sequence_number: int
    length: int
    handshake_type: int | None = None
    handshake_name: str | None = None
    srtp_profiles: tuple[int, ...] = ()
    handshake_types: tuple[int, ...] = ()
    offset: int = 0


def parse_records(data: bytes) -> list[DtlsRecord]:
    r"""The records of one datagram, in order (RFC 6347 section 4.1)::

         0                   1                   2                   3
         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |  content type |         version (0xFEFF/FD)   |     epoch     |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |     epoch     |           sequence number (48 bits)           |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                sequence number                |    length     |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |    length     |   fragment (length bytes) ...
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    A DTLS 1.3 unified header (first byte 0b001CSLEE, RFC 9147 section 4) without a
    connection id is decoded too: ``content_type`` is that first byte, ``version`` 0xFEFC,
    ``epoch`` the two low epoch bits and ``sequence_number`` the (encrypted) low 8 or 16
    bits. Records carrying a connection id cannot be delimited without the negotiated CID
    length and raise MalformedPacket, as does any truncated or overrunning record.
    """
    if not data:
        raise MalformedPacket("DTLS record header truncated: empty datagram")
    records: list[DtlsRecord] = []
    offset = 0
    while offset < len(data):
        if data[offset] & 0xE0 == 0x20:
            record, offset = _parse_unified_header(data, offset)
        else:
            record, offset = _parse_plaintext_header(data, offset)
        records.append(record)
    return records


def _parse_plaintext_header(data: bytes, offset: int) -> tuple[DtlsRecord, int]:
    """RFC 6347 section 4.1: DTLSPlaintext/DTLSCiphertext 13-byte record header."""
    if len(data) - offset < RECORD_HEADER_LENGTH:
        raise MalformedPacket(f"DTLS record header truncated at byte {offset}")
    content_type, version, epoch, sequence, length = _RECORD_HEADER.unpack_from(data, offset)
    if version >> 8 != DTLS_MAJOR_VERSION:
        raise MalformedPacket(f"DTLS record version 0x{version:04x} at byte {offset}")
    if content_type == TLS12_CID:
        raise MalformedPacket(
            f"DTLS tls12_cid record at byte {offset}: connection id length is not known"
        )
    start = offset + RECORD_HEADER_LENGTH
    if start + length > len(data):
        raise MalformedPacket(
            f"DTLS record length {length} runs past the datagram at byte {offset}"
        )
    handshake_types: tuple[int, ...] = ()
    profiles: tuple[int, ...] = ()
    if content_type == HANDSHAKE and epoch == 0:
        handshake_types, profiles = _parse_handshake_fragment(data[start : start + length])
    first = handshake_types[0] if handshake_types else None
    record = DtlsRecord(
        content_type=content_type,
        content_type_name=CONTENT_TYPE_NAMES.get(content_type, f"unknown-{content_type}"),
        version=version,
        epoch=epoch,
        sequence_number=int.from_bytes(sequence, "big"),
        length=length,
        handshake_type=first,
        handshake_name=None if first is None else HANDSHAKE_NAMES.get(first, f"unknown-{first}"),
        srtp_profiles=profiles,
        handshake_types=handshake_types,
        offset=offset,
    )
    return record, start + length


def _parse_unified_header(data: bytes, offset: int) -> tuple[DtlsRecord, int]:
    """RFC 9147 section 4: the DTLS 1.3 unified header (0 0 1 C S L E E)."""
    first = data[offset]
    if first & 0x10:
        raise MalformedPacket(
            f"DTLS 1.3 record at byte {offset} carries a connection id of unknown length"
        )
    sequence_size = 2 if first & 0x08 else 1
    has_length = bool(first & 0x04)
    header = 1 + sequence_size + (2 if has_length else 0)
    if len(data) - offset < header:
        raise MalformedPacket(f"DTLS 1.3 unified header truncated at byte {offset}")
    sequence = int.from_bytes(data[offset + 1 : offset + 1 + sequence_size], "big")
    if has_length:
        position = offset + 1 + sequence_size
        length = int.from_bytes(data[position : position + 2], "big")
        if offset + header + length > len(data):
            raise MalformedPacket(
                f"DTLS 1.3 record length {length} runs past the datagram at byte {offset}"
            )
    else:
        length = len(data) - offset - header
    record = DtlsRecord(
        content_type=first,
        content_type_name="dtls13_ciphertext",
        version=0xFEFC,
        epoch=first & 0x03,
        sequence_number=sequence,
        length=length,
        offset=offset,
    )
    return record, offset + header + length


def _parse_handshake_fragment(fragment: bytes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """RFC 6347 section 4.2.2: handshake messages in one record; hello use_srtp profiles.

    ::

        msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3) body

    A hello whose body is only partly in this record (DTLS fragmentation) is read as far
    as it goes; a later fragment (offset > 0) is only named, never read.
    """
    types: list[int] = []
    profiles: tuple[int, ...] = ()
    offset = 0
    while offset < len(fragment):
        if len(fragment) - offset < HANDSHAKE_HEADER_LENGTH:
            raise MalformedPacket(f"DTLS handshake header truncated at byte {offset}")
        msg_type = fragment[offset]
        total = int.from_bytes(fragment[offset + 1 : offset + 4], "big")
        fragment_offset = int.from_bytes(fragment[offset + 6 : offset + 9], "big")
        fragment_length = int.from_bytes(fragment[offset + 9 : offset + 12], "big")
        start = offset + HANDSHAKE_HEADER_LENGTH
        if start + fragment_length > len(fragment):
            raise MalformedPacket(
                f"DTLS handshake fragment length {fragment_length} runs past the record"
            )
        if fragment_offset + fragment_length > total:
            raise MalformedPacket(
                f"DTLS handshake fragment {fragment_offset}+{fragment_length} exceeds "
                f"message length {total}"
            )
        types.append(msg_type)
        if msg_type in (CLIENT_HELLO, SERVER_HELLO) and fragment_offset == 0 and not profiles:
            body = fragment[start : start + fragment_length]
            profiles = _hello_srtp_profiles(msg_type, body, complete=fragment_length == total)
        offset = start + fragment_length
    return tuple(types), profiles


class _TruncatedError(Exception):
    """A read ran past the available bytes of a hello."""


class _Reader:
    """Bounds-checked reads of TLS fixed fields and <length>-prefixed vectors (RFC 8446 s. 3)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def take(self, size: int) -> bytes:
        """The next ``size`` bytes; _TruncatedError when fewer remain."""
        if self.position + size > len(self.data):
            raise _TruncatedError
        chunk = self.data[self.position : self.position + size]
        self.position += size
        return chunk

    def number(self, size: int) -> int:
        """A big-endian unsigned integer of ``size`` bytes."""
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        """A vector whose length prefix takes ``length_size`` bytes."""
        return self.take(self.number(length_size))

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self.data) - self.position


def _hello_srtp_profiles(msg_type: int, body: bytes, *, complete: bool) -> tuple[int, ...]:
    """RFC 6347 section 4.2.1 / RFC 5246 section 7.4.1: walk a hello to its extensions.

    ClientHello: version, random, session_id<1>, cookie<1>, cipher_suites<2>,
    compression_methods<1>, extensions<2>. ServerHello: version, random, session_id<1>,
    cipher_suite(2), compression_method(1), extensions<2>. A complete hello that does
    not fit raises MalformedPacket; a partial first fragment yields what it holds.
    """
    name = HANDSHAKE_NAMES[msg_type]
    reader = _Reader(body)
    profiles: tuple[int, ...] = ()
    try:
        reader.take(2 + 32)
        reader.vector(1)
        if msg_type == CLIENT_HELLO:
            reader.vector(1)
            reader.vector(2)
            reader.vector(1)
        else:
            reader.take(3)
        if reader.remaining == 0:
            return ()
        declared = reader.number(2)
        block = reader.take(min(declared, reader.remaining))
        if len(block) < declared and complete:
            raise _TruncatedError
        extensions = _Reader(block)
        while extensions.remaining:
            extension_type = extensions.number(2)
            extension_data = extensions.vector(2)
            if extension_type == USE_SRTP_EXTENSION:
                profiles = _use_srtp_profiles(extension_data, name)
    except _TruncatedError:
        if complete:
            raise MalformedPacket(f"DTLS {name} truncated before its extensions end") from None
    return profiles


def _use_srtp_profiles(extension_data: bytes, name: str) -> tuple[int, ...]:
    """RFC 5764 section 4.1.1: SRTPProtectionProfiles<2..2^16-1> then srtp_mki<0..255>."""
    reader = _Reader(extension_data)
    try:
        listed = reader.vector(2)
        reader.vector(1)
    except _TruncatedError:
        raise MalformedPacket(f"DTLS {name} use_srtp extension truncated") from None
    if len(listed) % 2:
        raise MalformedPacket(f"DTLS {name} use_srtp profile list has odd length")
    return tuple(int.from_bytes(listed[i : i + 2], "big") for i in range(0, len(listed), 2))
