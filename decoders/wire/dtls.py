"""DTLS records (RFC 6347 / RFC 9147), the clear hellos, and the SRTP protection suites.

Only the clear parts are decoded: record headers, the epoch-0 handshake messages, and the
ClientHello/ServerHello fields (random, cipher suites, extensions, the use_srtp profiles
offered or chosen: RFC 5764). The one hello parser of the project: the record view
(:func:`parse_records`) and the key log (:mod:`decoders.session.keys`) both read hellos here.
:data:`SUITES` is the one table of SRTP protection suites (SDES names, DTLS-SRTP profile ids,
key, salt and tag lengths) every path looks suites up in.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
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
HELLO_RETRY_REQUEST_RANDOM: Final = bytes.fromhex(  # RFC 8446 section 4.1.3: SHA-256 of
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"  # "HelloRetryRequest"
)


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
    ``offset`` is where the record header starts in the datagram; ``messages`` are the
    handshake message fragments of an epoch-0 handshake record (what a key log reassembles).
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
    messages: tuple[HandshakeMessage, ...] = ()


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
    return list(_records(data))


def _records(data: bytes) -> Iterator[DtlsRecord]:
    """The records of :func:`parse_records`, one at a time (MalformedPacket where one breaks)."""
    if not data:
        raise MalformedPacket("DTLS record header truncated: empty datagram")
    offset = 0
    while offset < len(data):
        if data[offset] & 0xE0 == 0x20:
            record, offset = _parse_unified_header(data, offset)
        else:
            record, offset = _parse_plaintext_header(data, offset)
        yield record


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
    messages: tuple[HandshakeMessage, ...] = ()
    if content_type == HANDSHAKE and epoch == 0:
        messages = _handshake_messages(data[start : start + length])
    handshake_types = tuple(message.message_type for message in messages)
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
        srtp_profiles=_first_hello_profiles(messages),
        handshake_types=handshake_types,
        offset=offset,
        messages=messages,
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


# -- handshake messages and hellos --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandshakeMessage:
    """One handshake message fragment (RFC 6347 section 4.2.2) of an epoch-0 record."""

    message_type: int
    length: int
    message_seq: int
    fragment_offset: int
    fragment: bytes


def parse_handshake_fragments(datagram: bytes) -> list[HandshakeMessage]:
    """The epoch-0 handshake message fragments of a DTLS datagram, in order.

    Read as :func:`parse_records` reads records (records of other types or epochs hold none),
    up to the first record that cannot be read: the records before it still count. A DTLS 1.3
    ServerHello shares its datagram with encrypted records, and one of those cut short by the
    capture, or carrying a connection id, must not cost the hello. MalformedPacket when the
    first record cannot be read.
    """
    messages: list[HandshakeMessage] = []
    read = 0
    try:
        for record in _records(datagram):
            messages.extend(record.messages)
            read += 1
    except MalformedPacket:
        if read == 0:
            raise
    return messages


def _handshake_messages(fragment: bytes) -> tuple[HandshakeMessage, ...]:
    """RFC 6347 section 4.2.2: the handshake messages in one record's fragment.

    ::

        msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3) body
    """
    messages: list[HandshakeMessage] = []
    offset = 0
    while offset < len(fragment):
        if len(fragment) - offset < HANDSHAKE_HEADER_LENGTH:
            raise MalformedPacket(f"DTLS handshake header truncated at byte {offset}")
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
        messages.append(
            HandshakeMessage(
                message_type=fragment[offset],
                length=total,
                message_seq=int.from_bytes(fragment[offset + 4 : offset + 6], "big"),
                fragment_offset=fragment_offset,
                fragment=fragment[start : start + fragment_length],
            )
        )
        offset = start + fragment_length
    return tuple(messages)


def _first_hello_profiles(messages: tuple[HandshakeMessage, ...]) -> tuple[int, ...]:
    """The use_srtp profiles of the first hello (its first fragment) that lists any.

    A hello whose body is only partly in this record (DTLS fragmentation) is read as far as
    it goes; a later fragment (offset > 0) is only named, never read.
    """
    for message in messages:
        if message.message_type in (CLIENT_HELLO, SERVER_HELLO) and message.fragment_offset == 0:
            complete = len(message.fragment) == message.length
            hello = parse_hello(message.message_type, message.fragment, complete=complete)
            if hello.srtp_profiles:
                return hello.srtp_profiles
    return ()


@dataclass(frozen=True, slots=True)
class Hello:
    r"""The clear fields of a DTLS ClientHello or ServerHello body (RFC 6347 section 4.2.1)::

        ClientHello                              ServerHello
        +---------------------------------+      +---------------------------------+
        | client_version (2)              |      | server_version (2)              |
        | random (32)                     |      | random (32)                     |
        | session_id <0..32>              |      | session_id <0..32>              |
        | cookie <0..2^8-1>               |      | cipher_suite (2)                |
        | cipher_suites <2..2^16-2>       |      | compression_method (1)          |
        | compression_methods <1..2^8-1>  |      | extensions <0..2^16-1>          |
        | extensions <0..2^16-1>          |      +---------------------------------+
        +---------------------------------+

    ``cipher_suites`` has the offered suites (ClientHello) or the chosen one (ServerHello);
    ``extensions`` the extension types in order; ``srtp_profiles`` the use_srtp profiles;
    ``selected_version`` the supported_versions choice of a (D)TLS 1.3 ServerHello (None
    when absent or not 2 bytes). ``complete`` is False for a first fragment read as far as it
    goes: the fields past its end keep their empty values.
    """

    message_type: int
    version: int = 0
    random: bytes = b""
    session_id: bytes = b""
    cipher_suites: tuple[int, ...] = ()
    extensions: tuple[int, ...] = ()
    srtp_profiles: tuple[int, ...] = ()
    selected_version: int | None = None
    complete: bool = True

    @property
    def is_hello_retry_request(self) -> bool:
        """A (D)TLS 1.3 HelloRetryRequest: a ServerHello whose random is the fixed value of
        RFC 8446 section 4.1.3 (the client answers with a second ClientHello)."""
        return self.message_type == SERVER_HELLO and self.random == HELLO_RETRY_REQUEST_RANDOM


class _End(Exception):
    """A partial hello (a first fragment) ends here: what was read so far is the answer."""


class _Cursor:
    """Bounds-checked reads of TLS fields and <length>-prefixed vectors (RFC 8446 s. 3).

    A read past the end raises MalformedPacket naming the field, or :class:`_End` when the
    data is a first fragment (``partial``) that simply stops there.
    """

    def __init__(self, data: bytes, truncated: str, *, partial: bool = False) -> None:
        self.data = data
        self.position = 0
        self.truncated = truncated
        self.partial = partial

    def take(self, size: int, field: str) -> bytes:
        """The next ``size`` bytes."""
        if self.position + size > len(self.data):
            if self.partial:
                raise _End
            raise MalformedPacket(f"{self.truncated} ({field} at byte {self.position})")
        chunk = self.data[self.position : self.position + size]
        self.position += size
        return chunk

    def number(self, size: int, field: str) -> int:
        """A big-endian unsigned integer of ``size`` bytes."""
        return int.from_bytes(self.take(size, field), "big")

    def vector(self, length_size: int, field: str, *, cut: bool = False) -> bytes:
        """A vector whose length prefix takes ``length_size`` bytes; with ``cut``, a partial
        cursor returns what the data holds of it."""
        length = self.number(length_size, field + " length")
        if cut and self.partial:
            length = min(length, self.remaining)
        return self.take(length, field)

    def broken(self, reason: str) -> None:
        """A field that cannot be right: MalformedPacket, or the end of a partial read."""
        if self.partial:
            raise _End
        raise MalformedPacket(reason)

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self.data) - self.position


def parse_hello(message_type: int, body: bytes, *, complete: bool = True) -> Hello:
    """A ClientHello (1) or ServerHello (2) body (RFC 6347 4.2.1, RFC 5246 7.4.1).

    A complete hello whose fields overrun raises MalformedPacket naming the field; with
    ``complete=False`` (the first fragment of a fragmented hello) the body is read as far as
    it goes. A broken use_srtp extension raises either way. ValueError when ``message_type``
    is not a hello.
    """
    if message_type not in (CLIENT_HELLO, SERVER_HELLO):
        raise ValueError(f"handshake type {message_type} is not a hello")
    name = f"DTLS {HANDSHAKE_NAMES[message_type]}"
    draft = _Draft()
    cursor = _Cursor(body, f"{name} truncated before its extensions end", partial=not complete)
    with contextlib.suppress(_End):
        _read_hello(cursor, message_type, name, draft)
    return Hello(
        message_type=message_type,
        version=draft.version,
        random=draft.random,
        session_id=draft.session_id,
        cipher_suites=draft.cipher_suites,
        extensions=tuple(draft.extensions),
        srtp_profiles=draft.srtp_profiles,
        selected_version=draft.selected_version,
        complete=complete,
    )


@dataclass(slots=True)
class _Draft:
    """A hello's fields as far as they have been read."""

    version: int = 0
    random: bytes = b""
    session_id: bytes = b""
    cipher_suites: tuple[int, ...] = ()
    extensions: list[int] = field(default_factory=list)
    srtp_profiles: tuple[int, ...] = ()
    selected_version: int | None = None


def _read_hello(cursor: _Cursor, message_type: int, name: str, draft: _Draft) -> None:
    """Read the hello's fields into ``draft`` in wire order (a partial read keeps what came
    before its end)."""
    draft.version = cursor.number(2, "version")
    draft.random = cursor.take(32, "random")
    draft.session_id = cursor.vector(1, "session_id")
    if message_type == CLIENT_HELLO:
        cursor.vector(1, "cookie")
        listed = cursor.vector(2, "cipher_suites")
        if len(listed) % 2:
            cursor.broken(f"{name} cipher_suites has odd length {len(listed)}")
        draft.cipher_suites = _pairs(listed)
        cursor.vector(1, "compression_methods")
    else:
        draft.cipher_suites = (cursor.number(2, "cipher_suite"),)
        cursor.take(1, "compression_method")
    if cursor.remaining == 0:
        return
    block = cursor.vector(2, "extensions", cut=True)
    extensions = _Cursor(block, cursor.truncated, partial=cursor.partial)
    while extensions.remaining:
        extension_type = extensions.number(2, "extension type")
        data = extensions.vector(2, f"extension {extension_type}")
        draft.extensions.append(extension_type)
        if extension_type == USE_SRTP_EXTENSION:
            draft.srtp_profiles = _use_srtp_profiles(data, name)
        elif extension_type == SUPPORTED_VERSIONS and message_type == SERVER_HELLO:
            draft.selected_version = int.from_bytes(data, "big") if len(data) == 2 else None


def _use_srtp_profiles(data: bytes, name: str) -> tuple[int, ...]:
    """RFC 5764 section 4.1.1: SRTPProtectionProfiles<2..2^16-1>, then srtp_mki<0..255>."""
    cursor = _Cursor(data, f"{name} use_srtp extension truncated")
    listed = cursor.vector(2, "profiles")
    cursor.vector(1, "srtp_mki")
    if len(listed) % 2:
        raise MalformedPacket(f"{name} use_srtp profile list has odd length")
    return _pairs(listed)


def _pairs(data: bytes) -> tuple[int, ...]:
    """A list of 16-bit numbers (cipher suites, profiles)."""
    return tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
