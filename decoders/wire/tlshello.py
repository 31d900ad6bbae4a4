"""The clear part of a TLS handshake: ClientHello (SNI, ALPN) and ServerHello (version, cipher).

Everything after the hellos is encrypted; what the hellos say is what a capture can know
about a TLS connection: which protocol the client offered (ALPN ``stun.turn``, RFC 7443, marks
TURN over TLS), the server name, and the version and cipher suite the server chose, which fix
how many bytes each application-data record adds around its plaintext
(:func:`record_overhead`).

Pure: one record body (the 5-byte record header left out) in, a frozen dataclass out; None when
the record holds no hello (a later handshake message, or an encrypted one); a hello cut short
or inconsistent raises :class:`~decoders.errors.MalformedPacket` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from decoders.errors import MalformedPacket

CLIENT_HELLO: Final = 1
SERVER_HELLO: Final = 2
EXTENSION_SERVER_NAME: Final = 0
EXTENSION_ALPN: Final = 16
EXTENSION_SUPPORTED_VERSIONS: Final = 43
TLS12: Final = 0x0303
TLS13: Final = 0x0304
ALPN_TURN: Final = "stun.turn"
"""RFC 7443 section 3: the ALPN label of TURN (and STUN) over TLS."""

VERSION_NAMES: Final = {0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}


@dataclass(frozen=True, slots=True)
class TlsHello:
    """One ClientHello or ServerHello, as far as it is in clear.

    ``version`` is the negotiated one for a ServerHello (its ``supported_versions``
    extension when present: TLS 1.3 keeps 0x0303 in the legacy field), the highest offered
    for a ClientHello. ``cipher_suites`` holds the one chosen (ServerHello) or all offered.
    """

    handshake_type: int
    version: int
    cipher_suites: tuple[int, ...]
    server_name: str | None
    alpn: tuple[str, ...]

    @property
    def is_client(self) -> bool:
        return self.handshake_type == CLIENT_HELLO

    @property
    def version_name(self) -> str:
        return VERSION_NAMES.get(self.version, f"version 0x{self.version:04x}")


class _Reader:
    """Bounds-checked reads over one hello body; every short read names its field."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.at, self.what = data, 0, what

    def take(self, n: int, field: str) -> bytes:
        if self.at + n > len(self.data):
            raise MalformedPacket(f"TLS {self.what} has truncated {field}")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def number(self, n: int, field: str) -> int:
        return int.from_bytes(self.take(n, field), "big")

    def vector(self, length_bytes: int, field: str) -> bytes:
        return self.take(self.number(length_bytes, f"{field} length"), field)

    @property
    def left(self) -> int:
        return len(self.data) - self.at


def parse_hello(body: bytes) -> TlsHello | None:
    """The hello at the start of a handshake record's body, or None if there is none.

    RFC 8446 section 4.1.2 (and RFC 5246 section 7.4.1.2)::

        | msg_type (1) | length (3) | legacy_version (2) | random (32) | session_id <0..32> |
        ClientHello: | cipher_suites <2..2^16-2> | compression <1..2^8-1> | extensions <..> |
        ServerHello: | cipher_suite (2) | compression (1) | extensions <..> (optional in 1.2) |

    A hello longer than the record (split across records: rare, a hello is a few hundred
    bytes to 2 KB) raises MalformedPacket, as does one cut short.
    """
    if len(body) < 4 or body[0] not in (CLIENT_HELLO, SERVER_HELLO):
        return None
    kind = body[0]
    what = "ClientHello" if kind == CLIENT_HELLO else "ServerHello"
    length = int.from_bytes(body[1:4], "big")
    if len(body) < 4 + length:
        have = len(body) - 4
        raise MalformedPacket(f"TLS {what} has truncated message ({have} of {length} bytes)")
    r = _Reader(body[4 : 4 + length], what)
    legacy = r.number(2, "legacy_version")
    if legacy >> 8 != 3:
        raise MalformedPacket(f"TLS {what} has legacy_version 0x{legacy:04x}, not 0x03xx")
    r.take(32, "random")
    session_id = r.vector(1, "session_id")
    if len(session_id) > 32:
        raise MalformedPacket(f"TLS {what} has a session_id of {len(session_id)} bytes")
    if kind == CLIENT_HELLO:
        suites_bytes = r.vector(2, "cipher_suites")
        if len(suites_bytes) % 2:
            raise MalformedPacket("TLS ClientHello has an odd cipher_suites length")
        suites = tuple(
            int.from_bytes(suites_bytes[i : i + 2], "big") for i in range(0, len(suites_bytes), 2)
        )
        r.vector(1, "compression_methods")
    else:
        suites = (r.number(2, "cipher_suite"),)
        r.take(1, "compression_method")
    version, server_name = legacy, None
    alpn: tuple[str, ...] = ()
    if r.left:
        extensions = _Reader(r.vector(2, "extensions"), what)
        while extensions.left:
            ext_type = extensions.number(2, "extension type")
            data = extensions.vector(2, f"extension {ext_type}")
            if ext_type == EXTENSION_SUPPORTED_VERSIONS:
                version = _supported_version(data, kind, what)
            elif ext_type == EXTENSION_ALPN:
                alpn = _alpn(data, what)
            elif ext_type == EXTENSION_SERVER_NAME and kind == CLIENT_HELLO:
                server_name = _server_name(data, what)
    return TlsHello(kind, version, suites, server_name, alpn)


def _supported_version(data: bytes, kind: int, what: str) -> int:
    r = _Reader(data, what)
    if kind == SERVER_HELLO:
        return r.number(2, "supported_versions")
    listed = r.vector(1, "supported_versions")
    versions = [int.from_bytes(listed[i : i + 2], "big") for i in range(0, len(listed) - 1, 2)]
    real = [v for v in versions if v >> 8 == 3]  # GREASE values (0x?a?a) are not versions
    return max(real, default=TLS12)


def _alpn(data: bytes, what: str) -> tuple[str, ...]:
    r = _Reader(data, what)
    listed = _Reader(r.vector(2, "ALPN list"), what)
    names: list[str] = []
    while listed.left:
        names.append(listed.vector(1, "ALPN name").decode("ascii", "replace"))
    return tuple(names)


def _server_name(data: bytes, what: str) -> str | None:
    r = _Reader(data, what)
    listed = _Reader(r.vector(2, "server_name list"), what)
    while listed.left:
        name_type = listed.number(1, "server_name type")
        name = listed.vector(2, "server_name")
        if name_type == 0:
            return name.decode("ascii", "replace")
    return None


# -- what a record adds around its plaintext ----------------------------------------------------
_CHACHA20: Final = frozenset(range(0xCCA8, 0xCCAF))
_GCM: Final = frozenset([*range(0x009C, 0x00AE), *range(0xC02B, 0xC033)])
"""AES-GCM suites of RFC 5288, 5487 and 5289 (RSA, DH, PSK and ECDHE key exchanges)."""
_CCM: Final = frozenset([*range(0xC09C, 0xC0A0), *range(0xC0A4, 0xC0A8), 0xC0AC, 0xC0AD])
_CCM8: Final = frozenset([*range(0xC0A0, 0xC0A4), *range(0xC0A8, 0xC0AC), 0xC0AE, 0xC0AF])
"""AES-CCM and AES-CCM-8 suites (RFC 6655, 7251)."""
TLS12_AEAD_OVERHEAD: Final = 24
"""TLS 1.2 AES-GCM/CCM (RFC 5288, 6655): an 8-byte explicit nonce and a 16-byte tag."""
TLS13_OVERHEAD: Final = 17
"""TLS 1.3 (RFC 8446 section 5.2): the inner content type byte and a 16-byte AEAD tag
(record padding is possible but not used by common stacks)."""


@dataclass(frozen=True, slots=True)
class RecordOverhead:
    """Bytes an application-data record adds to its plaintext, and how that is known."""

    bytes: int
    how: str
    exact: bool
    """False when assumed (no ServerHello seen, or a CBC suite whose padding varies)."""


ASSUMED_OVERHEAD: Final = RecordOverhead(
    TLS12_AEAD_OVERHEAD,
    "assumed TLS 1.2 AES-GCM (8-byte nonce + 16-byte tag; no ServerHello in the capture)",
    False,
)


def record_overhead(server_hello: TlsHello | None) -> RecordOverhead:
    """What each application-data record adds, from the version and suite the server chose."""
    if server_hello is None or server_hello.is_client:
        return ASSUMED_OVERHEAD
    suite = server_hello.cipher_suites[0]
    said = f"ServerHello: {server_hello.version_name}, cipher suite 0x{suite:04x}"
    if server_hello.version == TLS13:
        return RecordOverhead(TLS13_OVERHEAD, f"{said} (content type byte + 16-byte tag)", True)
    if suite in _GCM or suite in _CCM:
        return RecordOverhead(24, f"{said} (AEAD: 8-byte nonce + 16-byte tag)", True)
    if suite in _CCM8:
        return RecordOverhead(16, f"{said} (AES-CCM-8: 8-byte nonce + 8-byte tag)", True)
    if suite in _CHACHA20:
        return RecordOverhead(16, f"{said} (ChaCha20-Poly1305: 16-byte tag)", True)
    return RecordOverhead(
        TLS12_AEAD_OVERHEAD,
        f"{said}: not an AEAD suite known here (a CBC suite pads each record); assumed 24 bytes",
        False,
    )


__all__ = [
    "ALPN_TURN",
    "ASSUMED_OVERHEAD",
    "CLIENT_HELLO",
    "SERVER_HELLO",
    "TLS12_AEAD_OVERHEAD",
    "TLS13_OVERHEAD",
    "RecordOverhead",
    "TlsHello",
    "parse_hello",
    "record_overhead",
]
