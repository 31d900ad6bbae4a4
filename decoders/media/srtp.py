"""SRTP and SRTCP decryption (RFC 3711, RFC 7714) with libsrtp, one context per stream.

Offline decryption differs from a live receiver in three ways:

- Each stream gets its own libsrtp session, so one stream's state never disturbs another's.
- SRTP packets are decrypted in extended-sequence order, not capture order: libsrtp guesses
  the rollover counter (ROC, RFC 3711 §3.3.1) from the highest index it has seen, and feeding it
  packets in order makes that guess right across every sequence-number wrap; reordered packets
  then never look like replays.
- There is no replay window: an exact duplicate (a retransmitted or twice-captured datagram)
  gets the plaintext of its first copy; an SRTCP packet libsrtp refuses as a replay is retried
  in a fresh context (its index is explicit, RFC 3711 §3.4).

Only authenticated plaintext comes out: a packet that fails authentication yields ``None`` and
counts as a failure of its stream. A stream no key authenticates gets an ``error`` saying so,
never garbage audio.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import pylibsrtp

from decoders.media.streams import extended_sequence
from decoders.session.keys import KeySet, SrtpKey
from decoders.wire.demux import PacketKind

TRIAL_PACKETS: Final = 8
"""How many of a stream's first packets a candidate key may fail before it is given up."""
MAX_PACKET: Final = 1500 - 16 - 128
"""Largest packet pylibsrtp's buffer takes (its 1500 bytes minus the protect trailer)."""


@dataclass(frozen=True, slots=True)
class StreamKey:
    """An RTP stream as Wireshark's RTP Streams window keys it: 5-tuple and SSRC."""

    src: str
    src_port: int
    dst: str
    dst_port: int
    transport: str
    ssrc: int

    def describe(self) -> str:
        return (
            f"{self.src}:{self.src_port} -> {self.dst}:{self.dst_port}/{self.transport} "
            f"SSRC 0x{self.ssrc:08x}"
        )


@dataclass(frozen=True, slots=True)
class MediaDatagram:
    """One SRTP or SRTCP datagram of a capture (TURN wrappers already removed)."""

    frame: int
    timestamp_ns: int
    src: str
    src_port: int
    dst: str
    dst_port: int
    transport: str
    kind: Literal["rtp", "rtcp"]
    data: bytes

    @property
    def ssrc(self) -> int:
        """RTP SSRC (RFC 3550 §5.1, octets 8-11) or RTCP sender SSRC (§6.4, octets 4-7)."""
        start = 8 if self.kind == "rtp" else 4
        return int.from_bytes(self.data[start : start + 4], "big")

    @property
    def stream(self) -> StreamKey:
        return StreamKey(
            self.src, self.src_port, self.dst, self.dst_port, self.transport, self.ssrc
        )


@dataclass
class StreamDecryption:
    """The outcome for one stream: which key, what came out, what failed and why.

    ``plaintext`` is aligned with ``datagrams`` (capture order); ``None`` where a packet did not
    authenticate. ``failures`` counts failed packets by libsrtp's reason.
    """

    stream: StreamKey
    kind: Literal["rtp", "rtcp"]
    datagrams: list[MediaDatagram]
    plaintext: list[bytes | None]
    key: SrtpKey | None = None
    failures: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    error: str | None = None

    @property
    def packets(self) -> int:
        return len(self.datagrams)

    @property
    def decrypted(self) -> int:
        return sum(1 for p in self.plaintext if p is not None)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


_KEY_REASONS: Final = frozenset({"authentication failure", "failure"})
"""libsrtp's reasons that say "wrong key" (the others say the packet cannot be processed)."""
CRYPTEX_PROFILES: Final = (0xC0DE, 0xC2DE)
CRYPTEX_REASON: Final = "cryptex (RFC 9335) header encryption is not supported"


def is_cryptex(data: bytes) -> bool:
    """RFC 9335 §5.1: an X-bit packet whose extension profile is 0xC0DE or 0xC2DE.

    libsrtp without cryptex enabled would authenticate such a packet and then decrypt it at the
    wrong keystream offset - garbage audio - so these packets are refused instead.
    """
    if len(data) < 12 or not data[0] & 0x10:
        return False
    offset = 12 + 4 * (data[0] & 0x0F)
    if len(data) < offset + 2:
        return False
    return int.from_bytes(data[offset : offset + 2], "big") in CRYPTEX_PROFILES


def make_session(key: SrtpKey) -> pylibsrtp.Session:
    """A receiving libsrtp session for ``key`` (any inbound SSRC, no replay re-use)."""
    policy = pylibsrtp.Policy(
        key=key.key_and_salt,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
        srtp_profile=key.suite.libsrtp_profile,
    )
    return pylibsrtp.Session(policy)


def strip_mki(data: bytes, key: SrtpKey, kind: Literal["rtp", "rtcp"]) -> bytes:
    """RFC 3711 §3.1/§3.4: drop the MKI between the (E+index and) payload and the auth tag.

    The MKI is not authenticated, so the packet without it is what libsrtp checks.
    """
    if key.mki is None:
        return data
    tag = key.suite.rtp_tag_length if kind == "rtp" else key.suite.rtcp_tag_length
    size = key.mki[1]
    if len(data) < tag + size:
        return data
    return data[: len(data) - tag - size] + data[len(data) - tag :]


def _unprotect(
    session: pylibsrtp.Session, data: bytes, kind: Literal["rtp", "rtcp"]
) -> tuple[bytes | None, str | None]:
    """(plaintext, None) or (None, libsrtp's reason)."""
    if len(data) > MAX_PACKET:
        return None, f"longer than {MAX_PACKET} bytes"
    if kind == "rtp" and is_cryptex(data):
        return None, CRYPTEX_REASON
    try:
        if kind == "rtp":
            return bytes(session.unprotect(data)), None
        return bytes(session.unprotect_rtcp(data)), None
    except pylibsrtp.Error as error:
        return None, str(error)


def decrypt_stream(
    datagrams: Sequence[MediaDatagram],
    keys: KeySet,
    *,
    preferred: Sequence[SrtpKey] = (),
) -> StreamDecryption:
    """Decrypt one stream's datagrams (all RTP or all RTCP, same stream key).

    Candidate keys (``preferred`` first, then :meth:`KeySet.candidates`) are tried on the first
    :data:`TRIAL_PACKETS` packets; the first key that authenticates one of them decrypts the
    whole stream. With ``keys.plaintext`` the packets are taken as they are (plain RTP).
    """
    if not datagrams:
        raise ValueError("a stream has at least one datagram")
    first = datagrams[0]
    stream, kind = first.stream, first.kind
    result = StreamDecryption(stream, kind, list(datagrams), [None] * len(datagrams))
    if keys.plaintext:
        result.plaintext = [d.data for d in datagrams]
        return result
    order = _processing_order(datagrams)
    candidates: list[SrtpKey] = list(preferred)
    for key in keys.candidates(stream.ssrc, (stream.src, stream.src_port)):
        if key not in candidates:
            candidates.append(key)
    if not candidates:
        result.error = f"{stream.describe()}: no key for this stream (none given or found)"
        result.failures["no key"] = len(datagrams)
        return result
    reasons: set[str] = set()
    for key in candidates:
        session = make_session(key)
        for position, index in enumerate(order[:TRIAL_PACKETS]):
            data = strip_mki(datagrams[index].data, key, kind)
            plain, reason = _unprotect(session, data, kind)
            if plain is not None:
                result.key = key
                _decrypt_rest(result, session, order, position, plain)
                return result
            reasons.add(reason or "failure")
    if len(reasons) == 1 and not reasons & _KEY_REASONS:
        (reason,) = reasons
        result.error = f"{stream.describe()}: cannot decrypt: {reason}"
        result.failures[reason] = len(datagrams)
        return result
    tried = "; ".join(key.describe() for key in candidates)
    result.error = (
        f"{stream.describe()}: no key authenticates its packets (tried {len(candidates)}: "
        f"{tried}); the key is wrong or belongs to another stream"
        + (", or the capture starts after a sequence-number wrap" if kind == "rtp" else "")
    )
    result.failures["authentication failure"] = len(datagrams)
    return result


def _processing_order(datagrams: Sequence[MediaDatagram]) -> list[int]:
    """Indices in extended-sequence order for RTP (stable), capture order for RTCP."""
    if datagrams[0].kind != "rtp":
        return list(range(len(datagrams)))
    sequence = np.array([int.from_bytes(d.data[2:4], "big") for d in datagrams], np.int64)
    extended = extended_sequence(sequence)
    return [int(i) for i in np.argsort(extended, kind="stable")]


def _decrypt_rest(
    result: StreamDecryption,
    session: pylibsrtp.Session,
    order: Sequence[int],
    accepted_at: int,
    plain: bytes,
) -> None:
    """Fill ``result`` once the key is known: earlier trial packets failed, the rest follow."""
    key = result.key
    assert key is not None
    kind = result.kind
    datagrams = result.datagrams
    if accepted_at:
        result.failures["authentication failure"] += accepted_at
    seen: dict[bytes, bytes] = {}
    first_index = order[accepted_at]
    result.plaintext[first_index] = plain
    seen[datagrams[first_index].data] = plain
    for index in order[accepted_at + 1 :]:
        data = datagrams[index].data
        known = seen.get(data)
        if known is not None:
            result.plaintext[index] = known
            result.duplicates += 1
            continue
        decrypted, reason = _unprotect(session, strip_mki(data, key, kind), kind)
        if decrypted is None and kind == "rtcp" and reason is not None and "replay" in reason:
            decrypted, reason = _unprotect(make_session(key), strip_mki(data, key, kind), kind)
        if decrypted is None:
            result.failures[reason or "failure"] += 1
            continue
        result.plaintext[index] = decrypted
        seen[data] = decrypted


def decrypt_datagrams(datagrams: Iterable[MediaDatagram], keys: KeySet) -> list[StreamDecryption]:
    """Group datagrams into streams (RTP and RTCP apart) and decrypt each; RTP streams first.

    The key that decrypted a sender's RTP is tried first on the same sender's RTCP (one
    DTLS-SRTP or SDES context protects both).
    """
    groups: dict[tuple[str, StreamKey], list[MediaDatagram]] = {}
    for datagram in datagrams:
        groups.setdefault((datagram.kind, datagram.stream), []).append(datagram)
    results: list[StreamDecryption] = []
    proven: dict[tuple[str, int], list[SrtpKey]] = {}
    ordered = sorted(groups.items(), key=lambda item: (item[0][0] != "rtp", item[1][0].frame))
    for (kind, stream), members in ordered:
        sender = (stream.src, stream.src_port)
        result = decrypt_stream(members, keys, preferred=proven.get(sender, ()))
        if kind == "rtp" and result.key is not None:
            proven.setdefault(sender, [])
            if result.key not in proven[sender]:
                proven[sender].append(result.key)
        results.append(result)
    return results


def media_kind(kind: PacketKind) -> Literal["rtp", "rtcp"] | None:
    """The :class:`MediaDatagram` kind of a classified datagram, None for other protocols."""
    if kind is PacketKind.RTP:
        return "rtp"
    if kind is PacketKind.RTCP:
        return "rtcp"
    return None
