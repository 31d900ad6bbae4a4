"""SRTP keys: where they come from and which stream each one protects.

Four sources, one result (:class:`KeySet`):

- ``keys.json`` written by the lab peer (DTLS-SRTP keys it exported, already split by sender);
- SDES ``a=crypto`` lines of SDP (RFC 4568): offer, answer, the addon's ``events.jsonl`` or the
  proxy's saved flows;
- keys given by hand: ``--srtp-key [SSRC:]SUITE:BASE64`` (:func:`parse_srtp_key_option`);
- an NSS key log plus the DTLS handshake in the capture: for DTLS 1.0/1.2 the master secret
  (``CLIENT_RANDOM <client random> <master secret>``) goes through the RFC 5705 exporter, for
  DTLS 1.3 the exporter secret (``EXPORTER_SECRET <client random> <secret>``) through the
  TLS 1.3 exporter with DTLS 1.3's "dtls13" label prefix; the label is ``EXTRACTOR-dtls_srtp``
  and the result is split as RFC 5764 §4.2 says (client key, server key, client salt, server
  salt); the DTLS client's half protects what the client sends. DTLS 1.3 encrypts the chosen
  SRTP profile, so each profile the ClientHello offers gives a pair (decryption keeps the one
  that authenticates).

Parsers here (:func:`find_dtls_handshakes`, :func:`read_keylog`, ...) work on bytes and text
only; the ``load_*`` functions read files. The DTLS hellos are read by :mod:`decoders.wire.dtls`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from decoders.errors import MalformedPacket
from decoders.session.sdp import SessionDescription, parse_sdp
from decoders.wire.dtls import (
    CLIENT_HELLO,
    DTLS_1_0,
    DTLS_1_2,
    DTLS_1_3,
    EXTENDED_MASTER_SECRET,
    SERVER_HELLO,
    HandshakeMessage,
    Hello,
    SrtpSuite,
    find_suite,
    parse_handshake_fragments,
    parse_hello,
    suite_by_dtls_id,
)

# -- keys ---------------------------------------------------------------------------------------

Endpoint = tuple[str, int]
"""(address, port) of a media sender."""


@dataclass(frozen=True, slots=True)
class SrtpKey:
    """A master key and salt, and what we know about the streams it protects.

    ``ssrcs``: the SSRCs it protects (empty: not known, the key is tried on every stream).
    ``sender``: the (address, port) that sends with it, when known (a hint, not a restriction:
    ICE may move media to another candidate pair). ``mki``: (value, length in bytes) when the
    packets carry a Master Key Identifier (RFC 3711 §3.1). ``source`` says where the key came
    from, for messages; it never contains key material.
    """

    suite: SrtpSuite
    master_key: bytes
    master_salt: bytes
    source: str
    ssrcs: frozenset[int] = frozenset()
    sender: Endpoint | None = None
    mki: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if len(self.master_key) != self.suite.key_length:
            raise ValueError(
                f"{self.source}: {self.suite.name} needs a {self.suite.key_length}-byte master "
                f"key, got {len(self.master_key)} bytes"
            )
        if len(self.master_salt) != self.suite.salt_length:
            raise ValueError(
                f"{self.source}: {self.suite.name} needs a {self.suite.salt_length}-byte master "
                f"salt, got {len(self.master_salt)} bytes"
            )

    @property
    def key_and_salt(self) -> bytes:
        """Master key || master salt, as libsrtp and SDES ``inline:`` want it."""
        return self.master_key + self.master_salt

    def describe(self) -> str:
        """Where the key came from and what it is for, without the key itself."""
        parts = [self.source, self.suite.name]
        if self.ssrcs:
            parts.append("SSRC " + ",".join(f"0x{s:08x}" for s in sorted(self.ssrcs)))
        if self.sender is not None:
            parts.append(f"sent by {self.sender[0]}:{self.sender[1]}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class KeySet:
    """Every key found for a session, and notes on sources that gave none.

    ``plaintext`` says the media is not encrypted at all (plain RTP, e.g. a capture imported
    from Chromium's RTP dump): decryption then passes every packet through unchanged.
    """

    keys: tuple[SrtpKey, ...] = ()
    notes: tuple[str, ...] = ()
    plaintext: bool = False

    def __len__(self) -> int:
        return len(self.keys)

    def __add__(self, other: KeySet) -> KeySet:
        keys = list(self.keys)
        for key in other.keys:
            if not any(_same_key(key, known) for known in keys):
                keys.append(key)
        return KeySet(tuple(keys), self.notes + other.notes, self.plaintext or other.plaintext)

    def candidates(self, ssrc: int, sender: Endpoint | None = None) -> tuple[SrtpKey, ...]:
        """The keys that may protect a stream, the likeliest first.

        A key restricted to other SSRCs is left out. Among the rest: keys naming this SSRC, then
        keys sent by ``sender``, then the others, each group in the order the keys were added.
        """

        def rank(key: SrtpKey) -> int:
            if ssrc in key.ssrcs:
                return 0
            if sender is not None and key.sender == sender:
                return 1
            return 2

        usable = [key for key in self.keys if not key.ssrcs or ssrc in key.ssrcs]
        return tuple(sorted(usable, key=rank))


def _same_key(a: SrtpKey, b: SrtpKey) -> bool:
    return a.suite == b.suite and a.key_and_salt == b.key_and_salt and a.ssrcs == b.ssrcs


# -- keys.json ----------------------------------------------------------------------------------


def keys_from_json(document: Any, source: str = "keys.json") -> KeySet:
    """The lab's ``keys.json`` (captures/README.md): ``browser`` and ``peer`` halves.

    Each half has base64 ``master_key`` and ``master_salt`` and the ``ssrcs`` it protects;
    ``profile`` is the DTLS-SRTP profile. Raises ValueError naming what does not fit.
    """
    if not isinstance(document, dict):
        raise ValueError(f"{source}: not a JSON object")
    if document.get("version") != 1:
        raise ValueError(f"{source}: version {document.get('version')!r} is not 1")
    profile = document.get("profile")
    if not isinstance(profile, str):
        raise ValueError(f"{source}: no profile")
    suite = find_suite(profile)
    keys: list[SrtpKey] = []
    for side in ("browser", "peer"):
        half = document.get(side)
        if half is None:
            continue
        if not isinstance(half, dict):
            raise ValueError(f"{source}: {side} is not an object")
        ssrcs = half.get("ssrcs", [])
        if not isinstance(ssrcs, list) or not all(
            isinstance(s, int) and 0 <= s < 1 << 32 for s in ssrcs
        ):
            raise ValueError(f"{source}: {side}.ssrcs is not a list of 32-bit integers")
        keys.append(
            SrtpKey(
                suite=suite,
                master_key=_base64_field(half, "master_key", f"{source} {side}"),
                master_salt=_base64_field(half, "master_salt", f"{source} {side}"),
                source=f"{source} ({side} sends)",
                ssrcs=frozenset(ssrcs),
            )
        )
    if not keys:
        raise ValueError(f"{source}: neither a browser nor a peer key")
    return KeySet(tuple(keys))


def _base64_field(half: Mapping[str, Any], name: str, where: str) -> bytes:
    value = half.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{where}: {name} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{where}: {name} is not base64") from error


def load_keys_json(path: Path) -> KeySet:
    """Read a ``keys.json`` file (see :func:`keys_from_json`)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{path}: not JSON: {error}") from error
    return keys_from_json(document, source=path.name)


# -- SDES (RFC 4568) ----------------------------------------------------------------------------


def keys_from_sdp(sdp: SessionDescription, source: str = "SDP") -> KeySet:
    """SDES keys of every ``a=crypto`` line with an ``inline:`` key (RFC 4568 §9.1).

    The key of a description protects what its author sends (RFC 4568 §6.1), so it is tied to
    the SSRCs the same m= section declares with ``a=ssrc`` (none declared: tried on every
    stream). An offer's alternatives all become candidates; decryption keeps the one that
    authenticates. Unknown suites and keys of the wrong length become notes.
    """
    keys: list[SrtpKey] = []
    notes: list[str] = []
    for index, section in enumerate(sdp.media):
        for crypto in section.crypto:
            where = f"{source} m={section.kind} #{index} a=crypto:{crypto.tag}"
            if crypto.key is None:
                notes.append(f"{where}: no inline key")
                continue
            try:
                suite = find_suite(crypto.suite)
            except ValueError as error:
                notes.append(f"{where}: {error}")
                continue
            if len(crypto.key) != suite.key_length + suite.salt_length:
                notes.append(
                    f"{where}: {suite.name} needs {suite.key_length + suite.salt_length} bytes "
                    f"of key and salt, the line has {len(crypto.key)}"
                )
                continue
            keys.append(
                SrtpKey(
                    suite=suite,
                    master_key=crypto.key[: suite.key_length],
                    master_salt=crypto.key[suite.key_length :],
                    source=where,
                    ssrcs=frozenset(section.ssrcs),
                    mki=crypto.mki,
                )
            )
    return KeySet(tuple(keys), tuple(notes))


def keys_from_events(lines: Iterable[Mapping[str, Any]]) -> KeySet:
    """SDES keys of the SDP the addon saw (``kind == "sdp"`` events of ``events.jsonl``)."""
    found = KeySet()
    for number, event in enumerate(lines, 1):
        text = event.get("sdp")
        if event.get("kind") != "sdp" or not isinstance(text, str) or "a=crypto" not in text:
            continue
        role = event.get("role") or "sdp"
        try:
            found = found + keys_from_sdp(parse_sdp(text), f"events.jsonl event {number} ({role})")
        except MalformedPacket as error:
            found = found + KeySet(notes=(f"events.jsonl event {number}: {error}",))
    return found


def keys_from_messages(messages: Iterable[tuple[str, bytes, str | None]]) -> KeySet:
    """SDES keys of the SDP inside signaling messages: (where, body, content type) each.

    Bodies are read as the addon reads them (:func:`decoders.session.payload.parse_document`,
    :func:`decoders.session.signaling.find_sdp`): SDP in JSON, forms, SIP or plain text.
    """
    from decoders.session.payload import parse_document
    from decoders.session.signaling import find_sdp

    found = KeySet()
    for where, body, content_type in messages:
        if b"a=crypto" not in body:
            continue
        for sdp in find_sdp(parse_document(body, content_type)):
            try:
                found = found + keys_from_sdp(parse_sdp(sdp.text), where)
            except MalformedPacket as error:
                found = found + KeySet(notes=(f"{where}: {error}",))
    return found


def load_flow_keys(path: Path) -> KeySet:
    """SDES keys of the SDP in a mitmproxy flow file (``flows.mitm``): requests, responses and
    WebSocket messages."""
    from mitmproxy import http, io

    def messages() -> Iterator[tuple[str, bytes, str | None]]:
        with path.open("rb") as stream:
            flows = iter(io.FlowReader(stream).stream())
            for number in itertools.count(1):
                try:
                    flow = next(flows)
                except StopIteration:
                    return
                except Exception:  # damaged state (KeyError, TypeError...): keys read so far stay
                    return
                if not isinstance(flow, http.HTTPFlow):
                    continue
                where = f"{path.name} flow {number}"
                for part, message in (("request", flow.request), ("response", flow.response)):
                    if message is not None and message.raw_content:
                        body = message.get_content(strict=False) or message.raw_content
                        yield f"{where} {part}", body, message.headers.get("content-type")
                for index, frame in enumerate(flow.websocket.messages if flow.websocket else ()):
                    yield f"{where} websocket message {index + 1}", frame.content, None

    return keys_from_messages(messages())


def load_sdp_keys(path: Path) -> KeySet:
    """SDES keys of an SDP file."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return keys_from_sdp(parse_sdp(text), path.name)


def load_event_keys(path: Path) -> KeySet:
    """SDES keys of the SDP recorded in an ``events.jsonl`` (its usable lines: the audit counts
    and shows the others; one damaged line must not cost the decryption)."""
    from decoders.session.events import UnusableLine, read_events

    unusable: list[UnusableLine] = []
    with path.open("rb") as stream:
        return keys_from_events(read_events(stream, unusable))


# -- keys by hand -------------------------------------------------------------------------------

_HEX_DIGITS = re.compile(r"[0-9a-fA-F]{1,8}")


def parse_ssrc(text: str) -> int:
    """An SSRC written as ``0x1234abcd``, decimal, or bare hex with a letter (``deadbeef``)."""
    value = text.strip()
    if value.lower().startswith("0x") and _HEX_DIGITS.fullmatch(value[2:]):
        return int(value[2:], 16)
    if value.isdigit() and len(value) <= 10 and int(value) < 1 << 32:
        return int(value)
    if _HEX_DIGITS.fullmatch(value):
        return int(value, 16)
    raise ValueError(f"SSRC {text!r} is not a 32-bit number (hex with 0x, or decimal)")


def parse_srtp_key_option(text: str, source: str = "--srtp-key") -> SrtpKey:
    """``[SSRC:]SUITE:BASE64`` -> a key; BASE64 is master key || master salt (as SDES writes it).

    Without an SSRC the key is tried on every stream. Raises ValueError with a one-line reason.
    """
    parts = text.strip().split(":")
    if len(parts) == 2:
        ssrcs: frozenset[int] = frozenset()
        suite_text, material = parts
    elif len(parts) == 3:
        ssrcs = frozenset({parse_ssrc(parts[0])})
        suite_text, material = parts[1], parts[2]
    else:
        raise ValueError(f"{source} {_redact(text)!r} is not [SSRC:]SUITE:BASE64")
    suite = find_suite(suite_text)
    material = material.strip()
    try:
        raw = base64.b64decode(material + "=" * (-len(material) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{source}: the key of {_redact(text)!r} is not base64") from error
    if len(raw) != suite.key_length + suite.salt_length:
        raise ValueError(
            f"{source}: {suite.name} needs {suite.key_length + suite.salt_length} bytes of key "
            f"and salt, got {len(raw)}"
        )
    return SrtpKey(
        suite=suite,
        master_key=raw[: suite.key_length],
        master_salt=raw[suite.key_length :],
        source=source,
        ssrcs=ssrcs,
    )


def _redact(text: str) -> str:
    """The option text with its key material cut short (messages never print whole keys)."""
    head, _, material = text.rpartition(":")
    return f"{head}:{material[:4]}..." if head else f"{text[:4]}..."


# -- NSS key log --------------------------------------------------------------------------------

_KEYLOG_LINE = re.compile(r"(CLIENT_RANDOM|EXPORTER_SECRET)\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)")
_KEYLOG_LABEL = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class KeyLog:
    """What an NSS key log holds for DTLS-SRTP, by client random.

    ``master_secrets``: ``CLIENT_RANDOM`` lines (TLS/DTLS 1.2 and earlier: the master secret);
    ``exporter_secrets``: ``EXPORTER_SECRET`` lines (TLS/DTLS 1.3: the exporter master
    secret); ``labels``: every label the log holds (for messages about what is missing).
    """

    master_secrets: Mapping[bytes, bytes] = field(default_factory=dict)
    exporter_secrets: Mapping[bytes, bytes] = field(default_factory=dict)
    labels: frozenset[str] = frozenset()


def read_keylog(text: str) -> KeyLog:
    """NSS key log format: ``<LABEL> <64 hex: client random> <hex: secret>`` a line.

    ``CLIENT_RANDOM`` carries a 48-byte master secret, ``EXPORTER_SECRET`` a 32- or 48-byte
    exporter secret (the cipher suite's hash length). Comments (``#``), blank lines and the
    other labels (``CLIENT_HANDSHAKE_TRAFFIC_SECRET`` ...) are only named in ``labels``; a
    ``CLIENT_RANDOM`` or ``EXPORTER_SECRET`` line of the wrong shape raises MalformedPacket
    naming its line number.
    """
    masters: dict[bytes, bytes] = {}
    exporters: dict[bytes, bytes] = {}
    labels: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        label = stripped.split(maxsplit=1)[0] if stripped else ""
        if not _KEYLOG_LABEL.fullmatch(label):
            continue
        labels.add(label)
        if label not in ("CLIENT_RANDOM", "EXPORTER_SECRET"):
            continue
        matched = _KEYLOG_LINE.fullmatch(stripped)
        sizes = (96,) if label == "CLIENT_RANDOM" else (64, 96)
        if matched is None or len(matched[2]) != 64 or len(matched[3]) not in sizes:
            wanted = {
                "CLIENT_RANDOM": "a 96-hex-digit master secret",
                "EXPORTER_SECRET": "a 64- or 96-hex-digit exporter secret",
            }[label]
            raise MalformedPacket(
                f"key log line {number}: {label} needs a 64-hex-digit client random and {wanted}"
            )
        target = masters if label == "CLIENT_RANDOM" else exporters
        target[bytes.fromhex(matched[2])] = bytes.fromhex(matched[3])
    return KeyLog(masters, exporters, frozenset(labels))


def parse_keylog(text: str) -> dict[bytes, bytes]:
    """The ``CLIENT_RANDOM`` lines of an NSS key log: client random -> master secret (see
    :func:`read_keylog`)."""
    return dict(read_keylog(text).master_secrets)


# -- DTLS handshakes ---------------------------------------------------------------------------

#: Cipher suites whose TLS 1.2 PRF hash is SHA-384 (RFC 5288, 5289, 5487, 6655 ...); every
#: other TLS 1.2 suite uses SHA-256 (RFC 5246 §5).
SHA384_SUITES: Final = frozenset(
    {0x009D, 0x009F, 0x00A1, 0x00A3, 0x00A5, 0x00A7, 0x00A9, 0x00AB, 0x00AD, 0x00AF, 0x00B1}
    | {0x00B3, 0x00B5, 0x00B7, 0x00B9, 0xC024, 0xC026, 0xC028, 0xC02A, 0xC02C, 0xC02E}
    | {0xC030, 0xC032, 0xC038, 0xC03B, 0xC0A1, 0xC0A3, 0xC0A5, 0xC0A7, 0xC0A9, 0xC0AB}
    | {0xC0AF, 0xD002}
)


@dataclass(frozen=True, slots=True)
class DtlsHandshake:
    """What a key log needs from one DTLS handshake seen in a capture.

    ``version`` is the negotiated one (a DTLS 1.3 ServerHello's supported_versions);
    ``srtp_profile`` the ServerHello's use_srtp choice (DTLS 1.0/1.2: in DTLS 1.3 the choice is
    in the encrypted extensions, so it is None), ``offered_profiles`` the ClientHello's list.
    """

    client: Endpoint
    server: Endpoint
    version: int
    client_random: bytes
    server_random: bytes
    cipher_suite: int
    extended_master_secret: bool
    srtp_profile: int | None
    offered_profiles: tuple[int, ...] = ()


FlowDatagram = tuple[str, int, str, int, bytes]
"""(source address, source port, destination address, destination port, UDP payload)."""


def find_dtls_handshakes(datagrams: Iterable[FlowDatagram]) -> list[DtlsHandshake]:
    """Pair each ServerHello with the latest ClientHello sent the other way on the same 5-tuple.

    Datagrams that are not DTLS (first byte outside 20..63, RFC 7983) are skipped; fragmented
    hellos are reassembled; a broken DTLS datagram is skipped (the handshake retransmits).
    Duplicates (retransmitted flights) give one handshake. A DTLS 1.3 HelloRetryRequest is
    not a handshake: the ServerHello after the client's second ClientHello is.
    """
    assembler = _HelloAssembler()
    clients: dict[tuple[Endpoint, Endpoint], Hello] = {}
    found: dict[tuple[bytes, bytes], DtlsHandshake] = {}
    for src, src_port, dst, dst_port, payload in datagrams:
        if not payload or not 20 <= payload[0] <= 63:
            continue
        try:
            fragments = parse_handshake_fragments(payload)
        except MalformedPacket:
            continue
        sender, receiver = (src, src_port), (dst, dst_port)
        for hello in assembler.add(sender, receiver, fragments):
            if hello.message_type == CLIENT_HELLO:
                clients[(sender, receiver)] = hello
                continue
            client_hello = clients.get((receiver, sender))
            if client_hello is None or hello.is_hello_retry_request:
                continue
            both = set(client_hello.extensions) & set(hello.extensions)
            handshake = DtlsHandshake(
                client=receiver,
                server=sender,
                version=hello.selected_version or hello.version,
                client_random=client_hello.random,
                server_random=hello.random,
                cipher_suite=hello.cipher_suites[0],
                extended_master_secret=EXTENDED_MASTER_SECRET in both,
                srtp_profile=hello.srtp_profiles[0] if hello.srtp_profiles else None,
                offered_profiles=client_hello.srtp_profiles,
            )
            found.setdefault((handshake.client_random, handshake.server_random), handshake)
    return list(found.values())


class _HelloAssembler:
    """Joins hello fragments per (sender, receiver, message_seq) (RFC 6347 §4.2.3)."""

    def __init__(self) -> None:
        self._parts: dict[tuple[Endpoint, Endpoint, int, int], dict[int, bytes]] = {}

    def add(
        self, sender: Endpoint, receiver: Endpoint, fragments: Iterable[HandshakeMessage]
    ) -> list[Hello]:
        complete: list[Hello] = []
        for fragment in fragments:
            if fragment.message_type not in (CLIENT_HELLO, SERVER_HELLO):
                continue
            key = (sender, receiver, fragment.message_seq, fragment.message_type)
            parts = self._parts.setdefault(key, {})
            parts[fragment.fragment_offset] = fragment.fragment
            body = _joined(parts, fragment.length)
            if body is None:
                continue
            del self._parts[key]
            try:
                complete.append(parse_hello(fragment.message_type, body))
            except MalformedPacket:
                continue
        return complete


def _joined(parts: Mapping[int, bytes], length: int) -> bytes | None:
    """The message when its fragments cover 0..length, else None."""
    out = bytearray(length)
    covered = 0
    for offset in sorted(parts):
        chunk = parts[offset]
        if offset > covered:
            return None
        out[offset : offset + len(chunk)] = chunk
        covered = max(covered, offset + len(chunk))
    return bytes(out) if covered >= length else None


# -- the exporter -------------------------------------------------------------------------------


def p_hash(digest: str, secret: bytes, seed: bytes, length: int) -> bytes:
    """RFC 5246 §5: P_hash(secret, seed) = HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + ...)."""
    out = bytearray()
    a = seed
    while len(out) < length:
        a = hmac.digest(secret, a, digest)
        out += hmac.digest(secret, a + seed, digest)
    return bytes(out[:length])


def tls12_prf(secret: bytes, label: bytes, seed: bytes, length: int, digest: str) -> bytes:
    """RFC 5246 §5: PRF(secret, label, seed) = P_<hash>(secret, label + seed)."""
    return p_hash(digest, secret, label + seed, length)


def tls10_prf(secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """RFC 4346 §5 (TLS 1.1, used by DTLS 1.0): P_MD5(S1, ...) XOR P_SHA-1(S2, ...)."""
    half = (len(secret) + 1) // 2
    md5 = p_hash("md5", secret[:half], label + seed, length)
    sha1 = p_hash("sha1", secret[len(secret) - half :], label + seed, length)
    return bytes(x ^ y for x, y in zip(md5, sha1, strict=True))


def export_keying_material(
    master_secret: bytes,
    client_random: bytes,
    server_random: bytes,
    label: bytes,
    length: int,
    *,
    version: int = DTLS_1_2,
    cipher_suite: int = 0,
) -> bytes:
    """RFC 5705 §4 without context: PRF(master_secret, label, client_random + server_random).

    DTLS 1.2 uses the TLS 1.2 PRF with SHA-384 for the suites of :data:`SHA384_SUITES` and
    SHA-256 otherwise; DTLS 1.0 the TLS 1.1 PRF. With the extended master secret (RFC 7627) only
    the master secret's derivation changes, and a key log already holds the master secret.
    """
    seed = client_random + server_random
    if version == DTLS_1_0:
        return tls10_prf(master_secret, label, seed, length)
    if version == DTLS_1_2:
        digest = "sha384" if cipher_suite in SHA384_SUITES else "sha256"
        return tls12_prf(master_secret, label, seed, length, digest)
    raise ValueError(f"no RFC 5705 exporter for DTLS version 0x{version:04x}")


TLS13_LABEL_PREFIX: Final = b"tls13 "
"""RFC 8446 §7.1: the prefix of every TLS 1.3 HKDF label."""
DTLS13_LABEL_PREFIX: Final = b"dtls13"
"""RFC 9147 §5.9: DTLS 1.3 uses "dtls13" (no space) where TLS 1.3 has "tls13 "."""
TLS13_SHA384_SUITES: Final = frozenset({0x1302})
"""RFC 8446 B.4: TLS_AES_256_GCM_SHA384; the other TLS 1.3 suites hash with SHA-256."""


def hkdf_expand(secret: bytes, info: bytes, length: int, digest: str) -> bytes:
    """RFC 5869 §2.3: T(1) | T(2) | ..., T(i) = HMAC(secret, T(i-1) | info | i)."""
    size = hashlib.new(digest).digest_size
    if not 0 <= length <= 255 * size:
        raise ValueError(f"HKDF-Expand cannot give {length} bytes with {digest}")
    out = bytearray()
    block = b""
    for counter in range(1, -(-length // size) + 1):
        block = hmac.digest(secret, block + info + bytes([counter]), digest)
        out += block
    return bytes(out[:length])


def hkdf_expand_label(
    secret: bytes,
    label: bytes,
    context: bytes,
    length: int,
    digest: str,
    prefix: bytes = TLS13_LABEL_PREFIX,
) -> bytes:
    """RFC 8446 §7.1: HKDF-Expand(secret, HkdfLabel, length), where HkdfLabel is
    ``uint16 length || opaque label<7..255> = prefix + label || opaque context<0..255>``."""
    full = prefix + label
    if len(full) > 255 or len(context) > 255:
        raise ValueError("HKDF label or context longer than 255 bytes")
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return hkdf_expand(secret, info, length, digest)


def tls13_export(
    exporter_secret: bytes,
    label: bytes,
    context: bytes,
    length: int,
    digest: str,
    prefix: bytes = TLS13_LABEL_PREFIX,
) -> bytes:
    """RFC 8446 §7.5: TLS-Exporter(label, context, length) from the exporter master secret
    (a key log's ``EXPORTER_SECRET``)::

        HKDF-Expand-Label(Derive-Secret(secret, label, ""), "exporter", Hash(context), length)

    where Derive-Secret(secret, label, "") = HKDF-Expand-Label(secret, label, Hash(""),
    Hash.length). ``prefix`` is the HKDF label prefix: "tls13 " for TLS 1.3,
    :data:`DTLS13_LABEL_PREFIX` for DTLS 1.3.
    """
    empty_hash = hashlib.new(digest, b"").digest()
    derived = hkdf_expand_label(exporter_secret, label, empty_hash, len(empty_hash), digest, prefix)
    context_hash = hashlib.new(digest, context).digest()
    return hkdf_expand_label(derived, b"exporter", context_hash, length, digest, prefix)


def tls13_digest(cipher_suite: int) -> str:
    """The hash of a TLS 1.3 cipher suite (RFC 8446 B.4)."""
    return "sha384" if cipher_suite in TLS13_SHA384_SUITES else "sha256"


DTLS_SRTP_LABEL: Final = b"EXTRACTOR-dtls_srtp"


def dtls_srtp_keys(
    handshake: DtlsHandshake, secret: bytes, source: str = "key log"
) -> tuple[SrtpKey, ...]:
    """RFC 5764 §4.2: the client's and the server's SRTP master keys from the exporter.

    The keying material is client_write_SRTP_master_key, server_write_SRTP_master_key,
    client_write_SRTP_master_salt, server_write_SRTP_master_salt; each side's key protects what
    that side sends (its SRTP and SRTCP).

    DTLS 1.0/1.2: ``secret`` is the master secret, the profile the ServerHello's; two keys.
    DTLS 1.3: ``secret`` is the exporter secret (:func:`tls13_export` with the "dtls13" label
    prefix and the suite's hash) and the chosen profile is encrypted, so every supported
    profile the ClientHello offered gives its pair of keys (decryption keeps the one that
    authenticates); ValueError when none is supported.
    """
    if handshake.version == DTLS_1_3:
        profiles = (
            (handshake.srtp_profile,)
            if handshake.srtp_profile is not None
            else handshake.offered_profiles
        )
        if not profiles:
            raise ValueError(f"{source}: the DTLS ClientHello offers no SRTP profile (use_srtp)")
    elif handshake.srtp_profile is None:
        raise ValueError(f"{source}: the DTLS handshake negotiated no SRTP profile (use_srtp)")
    else:
        profiles = (handshake.srtp_profile,)
    suites = [suite for suite in map(suite_by_dtls_id, profiles) if suite is not None]
    if not suites:
        listed = ", ".join(f"0x{profile:04x}" for profile in profiles)
        raise ValueError(f"{source}: unsupported SRTP profile {listed}")
    keys: list[SrtpKey] = []
    for suite in suites:
        size = 2 * (suite.key_length + suite.salt_length)
        material = dtls_exporter(handshake, secret, size, source)
        keys.extend(_split_keys(handshake, suite, material, source))
    return tuple(keys)


def dtls_exporter(
    handshake: DtlsHandshake, secret: bytes, length: int, source: str = "key log"
) -> bytes:
    """``length`` bytes of EXTRACTOR-dtls_srtp keying material for ``handshake`` (no context):
    the RFC 5705 PRF from the master secret up to DTLS 1.2, the TLS 1.3 exporter with the
    "dtls13" label prefix from the exporter secret for DTLS 1.3. ValueError (naming
    ``source``) when an exporter secret's length does not fit the suite's hash."""
    if handshake.version != DTLS_1_3:
        return export_keying_material(
            secret,
            handshake.client_random,
            handshake.server_random,
            DTLS_SRTP_LABEL,
            length,
            version=handshake.version,
            cipher_suite=handshake.cipher_suite,
        )
    digest = tls13_digest(handshake.cipher_suite)
    if len(secret) != hashlib.new(digest).digest_size:
        raise ValueError(
            f"{source}: a {len(secret)}-byte EXPORTER_SECRET does not fit cipher suite "
            f"0x{handshake.cipher_suite:04x} ({digest})"
        )
    return tls13_export(secret, DTLS_SRTP_LABEL, b"", length, digest, DTLS13_LABEL_PREFIX)


def _split_keys(
    handshake: DtlsHandshake, suite: SrtpSuite, material: bytes, source: str
) -> tuple[SrtpKey, SrtpKey]:
    """RFC 5764 §4.2: client key, server key, client salt, server salt."""
    k, s = suite.key_length, suite.salt_length
    client = SrtpKey(
        suite=suite,
        master_key=material[:k],
        master_salt=material[2 * k : 2 * k + s],
        source=f"{source} (DTLS client {handshake.client[0]}:{handshake.client[1]} sends)",
        sender=handshake.client,
    )
    server = SrtpKey(
        suite=suite,
        master_key=material[k : 2 * k],
        master_salt=material[2 * k + s :],
        source=f"{source} (DTLS server {handshake.server[0]}:{handshake.server[1]} sends)",
        sender=handshake.server,
    )
    return client, server


def keys_from_keylog(
    keylog: KeyLog,
    handshakes: Sequence[DtlsHandshake],
    source: str = "key log",
) -> KeySet:
    """SRTP keys of every handshake whose client random the key log knows: its
    ``CLIENT_RANDOM`` line for DTLS 1.0/1.2, its ``EXPORTER_SECRET`` line for DTLS 1.3.
    Every handshake that gives no key is a note saying why."""
    keys: list[SrtpKey] = []
    notes: list[str] = []
    if not handshakes:
        notes.append(f"{source}: the capture holds no complete DTLS ClientHello/ServerHello")
    for handshake in handshakes:
        if handshake.version == DTLS_1_3:
            label, secrets = "EXPORTER_SECRET", keylog.exporter_secrets
        elif handshake.version in (DTLS_1_0, DTLS_1_2):
            label, secrets = "CLIENT_RANDOM", keylog.master_secrets
        else:
            notes.append(f"{source}: DTLS version 0x{handshake.version:04x} is not supported")
            continue
        secret = secrets.get(handshake.client_random)
        if secret is None:
            notes.append(_missing_secret(keylog, handshake, label, secrets, source))
            continue
        try:
            keys.extend(dtls_srtp_keys(handshake, secret, source))
        except ValueError as error:
            notes.append(str(error))
    return KeySet(tuple(keys), tuple(notes))


def _missing_secret(
    keylog: KeyLog,
    handshake: DtlsHandshake,
    label: str,
    secrets: Mapping[bytes, bytes],
    source: str,
) -> str:
    """Why the key log has no secret for a handshake, as far as the log shows it."""
    name = "DTLS 1.3" if handshake.version == DTLS_1_3 else "DTLS"
    note = (
        f"{source}: no {label} line for the {name} handshake of "
        f"{handshake.client[0]}:{handshake.client[1]} (client random "
        f"{handshake.client_random[:4].hex()}...)"
    )
    if secrets:
        others = ", ".join(f"{random[:4].hex()}..." for random in list(secrets)[:3])
        return f"{note}; its {len(secrets)} {label} line(s) are for other handshakes ({others})"
    if keylog.labels == {"CLIENT_RANDOM"}:
        return f"{note}; the key log holds only CLIENT_RANDOM lines (TLS/DTLS 1.2)"
    if keylog.labels:
        return f"{note}; the key log holds {', '.join(sorted(keylog.labels))} but no {label}"
    return note


def capture_flow_datagrams(capture: Path) -> list[FlowDatagram]:
    """The DTLS-looking UDP/TCP datagrams of a capture, as :data:`FlowDatagram` tuples.

    A relayed call runs its DTLS handshake inside TURN (ChannelData, Send/Data indications,
    over UDP or TCP): the datagram inside is taken, with the outer addresses (those of the
    browser's leg to the TURN server, as the streams are keyed). A broken TURN wrapper is
    skipped (the handshake retransmits); TLS records (TURN over TLS) are never read.
    """
    from decoders.wire import demux
    from decoders.wire.capture import open_capture
    from decoders.wire.net import Datagram, Unwrapper

    out: list[FlowDatagram] = []

    def take(datagrams: Iterable[Datagram]) -> None:
        for datagram in datagrams:
            opened = demux.open_payload(datagram.payload)
            if opened.turn_error is None and opened.kind is demux.PacketKind.DTLS:
                out.append(
                    (
                        datagram.src,
                        datagram.src_port,
                        datagram.dst,
                        datagram.dst_port,
                        opened.payload,
                    )
                )

    unwrapper = Unwrapper()
    with open_capture(capture) as reader:
        for frame in reader:
            take(unwrapper.feed(frame))
    take(unwrapper.flush())
    return out


def load_keylog_keys(keylog: Path, capture: Path) -> KeySet:
    """SRTP keys from an NSS key log file and the DTLS handshakes of a capture."""
    secrets = read_keylog(keylog.read_text(encoding="utf-8", errors="replace"))
    handshakes = find_dtls_handshakes(capture_flow_datagrams(capture))
    return keys_from_keylog(secrets, handshakes, keylog.name)


# -- one session --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeySources:
    """The key files of one session (any may be absent) and keys given by hand."""

    keys_json: Path | None = None
    keylog: Path | None = None
    sdp: tuple[Path, ...] = ()
    events: Path | None = None
    flows: Path | None = None
    manual: tuple[SrtpKey, ...] = field(default_factory=tuple)

    @classmethod
    def in_folder(cls, folder: Path, **overrides: Any) -> KeySources:
        """The usual files of a session folder: keys.json, keylog.txt, offer/answer, events;
        the proxy's flows only when there are no events (the addon records their SDP)."""

        def maybe(name: str) -> Path | None:
            path = folder / name
            return path if path.is_file() else None

        found = cls(
            keys_json=maybe("keys.json"),
            keylog=maybe("keylog.txt"),
            sdp=tuple(p for p in (maybe("offer.sdp"), maybe("answer.sdp")) if p is not None),
            events=maybe("events.jsonl"),
            flows=None if maybe("events.jsonl") else maybe("flows.mitm"),
        )
        return replace(found, **overrides)


def load_session_keys(sources: KeySources, capture: Path | None = None) -> KeySet:
    """Every key the sources give: by hand first, then keys.json, the key log, SDP, events,
    flows.

    Raises ValueError (or MalformedPacket, a ValueError) naming a file that is broken.
    """
    found = KeySet(sources.manual)
    loaders: list[tuple[Path | None, Callable[[Path], KeySet]]] = [
        (sources.keys_json, load_keys_json),
    ]
    if capture is not None:
        captured = capture
        loaders.append((sources.keylog, lambda path: load_keylog_keys(path, captured)))
    loaders += [(path, load_sdp_keys) for path in sources.sdp]
    loaders.append((sources.events, load_event_keys))
    loaders.append((sources.flows, load_flow_keys))
    for path, loader in loaders:
        if path is not None:
            found = found + loader(path)
    return found


def load_keys(path: Path) -> KeySet:
    """Keys from one path: a session folder (every source in it, the key log read against the
    folder's capture), a ``keys.json``, an SDP file, an ``events.jsonl`` or a ``flows.mitm``."""
    if path.is_dir():
        from decoders.session.folder import CAPTURE_NAMES

        capture = next((path / n for n in CAPTURE_NAMES if (path / n).is_file()), None)
        return load_session_keys(KeySources.in_folder(path), capture)
    if path.suffix == ".sdp":
        return load_sdp_keys(path)
    if path.suffix == ".jsonl":
        return load_event_keys(path)
    if path.suffix == ".mitm":
        return load_flow_keys(path)
    return load_keys_json(path)
