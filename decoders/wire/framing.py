"""Cutting a TCP byte stream into messages: RFC 4571, TURN over TCP, TLS records.

The one owner of "where does the next message start" on a TCP connection. Pure and
incremental: no sockets, no files; feed the in-order bytes of one direction as they come and
get the complete messages back. :mod:`decoders.wire.net` (captures) and the mitmproxy addon
(live flows) both use it.

Three framings, one per class, all with the same small API:

- :meth:`~StreamFramer.feed` ``(data) -> list[bytes]``: the messages that ``data`` completes,
  each one whole (header included);
- :attr:`~StreamFramer.synced`: True while the framer knows where messages start;
- :attr:`~StreamFramer.skipped_bytes`: bytes thrown away while looking for a message start
  (a capture that begins inside a message, or a stream that lost its framing);
- :attr:`~StreamFramer.resyncs`: how often a header in sync turned out invalid;
- :meth:`~StreamFramer.flush` ``() -> int``: end of stream; returns (and forgets) the bytes
  of a last message that never completed.

A framer that does not know where messages start (``synced=False``: a capture that began
mid-connection) resynchronises on the first offset where a *chain* of valid headers begins:
the message there and the ``chain - 1`` messages after it all start with a valid header, and
it waits for those bytes rather than guess. Random bytes rarely pass a chain of two headers.
:func:`detect` decides which framing a direction uses from its first bytes.
"""

from __future__ import annotations

from typing import Final, Literal

from decoders.wire import demux, stun

# -- RFC 4571 --------------------------------------------------------------------------------


def rfc7983_first_frame(frame_length: int, head: bytes) -> bool | None:
    """Does an RFC 4571 stream start like ICE-TCP media? ``None``: need more bytes.

    ``head`` is the start of the first frame's payload (up to 8 bytes are used). The first
    byte must fall in an RFC 7983 range, and the frame must be consistent with it: STUN
    (0-3) has the magic cookie and a length field 20 short of the frame; DTLS (20-63) in its
    classic form has version byte 0xFE; RTP/RTCP (128-191) is at least 8 bytes. TLS (``16 03``)
    and HTTP start streams that fail these checks within their first 10 bytes.
    """
    if frame_length == 0:
        return False
    if not head:
        return None
    first = head[0]
    if first <= 3:
        if frame_length < 20:
            return False
        if len(head) < 8:
            return None
        stun_length = (head[2] << 8) | head[3]
        return head[4:8] == b"\x21\x12\xa4\x42" and stun_length + 20 == frame_length
    if 20 <= first <= 63:
        if first > 25:
            return True
        if frame_length < 13:
            return False
        if len(head) < 2:
            return None
        return head[1] == 0xFE
    if 128 <= first <= 191:
        return frame_length >= 8
    return False


Buffer = bytes | bytearray

_INVALID: Final = -1
_MORE: Final = 0

DEFAULT_MAX_SYNC_LENGTH: Final = 4096
"""Largest message a framer accepts while resynchronising (not once in sync): media over
TCP is a few hundred bytes per message, and a smaller bound makes random bytes sync less."""


class StreamFramer:
    """The shared machinery: a buffer, the in-sync loop and the chained-header resync.

    Subclasses define :meth:`_size`: the total size of the message whose header is at
    ``at``, ``0`` when more bytes are needed to tell, ``-1`` when no valid header is there.
    With ``resync`` the test is the strict one used to find a message start.
    """

    def __init__(
        self,
        *,
        synced: bool = False,
        chain: int = 2,
        max_sync_length: int = DEFAULT_MAX_SYNC_LENGTH,
    ) -> None:
        if chain < 1:
            raise ValueError(f"chain must be at least 1, not {chain}")
        self.synced = synced
        self.chain = chain
        self.max_sync_length = max_sync_length
        self.skipped_bytes = 0
        self.resyncs = 0
        self._buffer = bytearray()

    @property
    def pending_bytes(self) -> int:
        """Bytes held back: the start of a message not yet complete, or an undecided offset."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add the next in-order bytes; returns the messages they complete, in order."""
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        position = 0
        while position < len(buffer):
            if not self.synced:
                start = self._find_chain(position)
                self.skipped_bytes += start - position
                position = start
                if not self.synced:
                    break
            size = self._size(buffer, position, resync=False)
            if size == _MORE:
                break
            if size == _INVALID:
                self.synced = False
                self.resyncs += 1
                continue
            if len(buffer) - position < size:
                break
            out.append(bytes(buffer[position : position + size]))
            position += size
        del buffer[:position]
        return out

    def flush(self) -> int:
        """End of the stream: forget what is buffered and return its size (0: ended cleanly)."""
        left = len(self._buffer)
        self._buffer = bytearray()
        return left

    def _find_chain(self, position: int) -> int:
        """The first offset from ``position`` where a chain may begin; sets ``synced`` if it does.

        Offsets before the returned one start no chain and may be dropped; at the returned
        offset either a chain begins (``synced`` is set) or more bytes are needed to tell.
        """
        buffer = self._buffer
        for start in range(position, len(buffer)):
            verdict = self.chain_at(buffer, start)
            if verdict is None:
                return start
            if verdict:
                self.synced = True
                return start
        return len(buffer)

    def chain_at(self, buffer: Buffer, start: int) -> bool | None:
        """Does a chain of :attr:`chain` valid headers begin at ``start``? None: need more bytes."""
        at = start
        for link in range(self.chain):
            if at >= len(buffer):
                return None
            size = self._size(buffer, at, resync=True)
            if size == _INVALID:
                return False
            if size == _MORE:
                return None
            if size > self.max_sync_length:
                return False
            at += size
            if link == self.chain - 1:
                return True
        return True

    def _size(self, buffer: Buffer, at: int, *, resync: bool) -> int:
        raise NotImplementedError


class Rfc4571Framer(StreamFramer):
    """RFC 4571 section 2: each packet after a 16-bit length (ICE-TCP, RFC 6544)::

         0                   1                   2                   3
         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
        ---------------------------------------------------------------
        |             LENGTH            |  RTP or RTCP packet ...       |
        ---------------------------------------------------------------

    Messages come out with their 2-byte length prefix (:func:`rfc4571_payload` drops it).
    In sync every length is trusted (the framing carries no check); to resynchronise a frame
    must be non-empty and start like ICE-TCP media (:func:`rfc7983_first_frame`).
    """

    def _size(self, buffer: Buffer, at: int, *, resync: bool) -> int:
        if len(buffer) - at < 2:
            return _MORE
        length = (buffer[at] << 8) | buffer[at + 1]
        if resync:
            verdict = rfc7983_first_frame(length, bytes(buffer[at + 2 : at + 2 + min(length, 8)]))
            if verdict is None:
                return _MORE
            if not verdict:
                return _INVALID
        return 2 + length


def rfc4571_payload(message: bytes) -> bytes:
    """The packet inside one message of :class:`Rfc4571Framer`."""
    return message[2:]


class TurnTcpFramer(StreamFramer):
    """TURN over TCP (RFC 8656 section 12.5, RFC 5766 section 11.5): STUN and ChannelData.

    On a TCP connection to a TURN server the two kinds of message follow each other
    unframed, each carrying its own length::

        STUN (RFC 8489 section 5)             ChannelData (RFC 8656 section 12.4)
        |0 0| type (14) | length      |       | channel number | length       |
        |   magic cookie 0x2112A442   |       | application data ... | padding |
        |   transaction id (96)  ...  |

    A STUN message takes 20 + length bytes (length is a multiple of 4); a ChannelData
    message takes 4 + length bytes plus padding to a multiple of 4 (mandatory over TCP). The
    messages come out whole, ChannelData with its padding, so that
    :func:`decoders.wire.demux.unwrap_turn` reads them as it reads UDP datagrams.

    A header is valid when it is STUN (top two bits 0, the magic cookie, length % 4 == 0) or
    ChannelData with a channel number in :data:`decoders.wire.demux.CHANNEL_NUMBERS` (RFC 8656:
    0x4000-0x4FFF), or 0x4000-0x7FFF with ``rfc5766_channels`` (RFC 5766 allowed them).
    """

    def __init__(
        self,
        *,
        synced: bool = False,
        chain: int = 2,
        max_sync_length: int = DEFAULT_MAX_SYNC_LENGTH,
        rfc5766_channels: bool = False,
    ) -> None:
        super().__init__(synced=synced, chain=chain, max_sync_length=max_sync_length)
        self.last_channel = 0x7F if rfc5766_channels else 0x4F

    def _size(self, buffer: Buffer, at: int, *, resync: bool) -> int:
        available = len(buffer) - at
        first = buffer[at]
        if first < 0x40:
            if available < 8:
                return _MORE
            length = (buffer[at + 2] << 8) | buffer[at + 3]
            if length % 4 or buffer[at + 4 : at + 8] != _MAGIC_COOKIE:
                return _INVALID
            return stun.HEADER_LENGTH + length
        if first <= self.last_channel:
            if available < demux.CHANNEL_DATA_HEADER_LENGTH:
                return _MORE
            length = (buffer[at + 2] << 8) | buffer[at + 3]
            return demux.CHANNEL_DATA_HEADER_LENGTH + length + (-length % 4)
        return _INVALID


_MAGIC_COOKIE: Final = stun.MAGIC_COOKIE.to_bytes(4, "big")

TLS_HEADER_LENGTH: Final = 5
TLS_CONTENT_TYPES: Final = range(20, 24)
"""change_cipher_spec (20), alert (21), handshake (22), application_data (23)."""
TLS_APPLICATION_DATA: Final = 23
TLS_VERSIONS: Final = range(0x0301, 0x0305)
TLS_MAX_RECORD_LENGTH: Final = 2**14 + 2048
"""RFC 5246 section 6.2.3: TLSCiphertext.length is at most 2^14 + 2048."""


class TlsRecordFramer(StreamFramer):
    """TLS records (RFC 5246 section 6.2, RFC 8446 section 5.1), header included::

        | type (1) | legacy_record_version (2) | length (2) | fragment (length) ...

    A header is valid with a type of 20-23, a version of 0x0301-0x0304 (TLS 1.0-1.3; TLS 1.3
    writes 0x0303) and a length of at most 2^14 + 2048 (also while resynchronising).
    """

    def __init__(self, *, synced: bool = False, chain: int = 2) -> None:
        super().__init__(
            synced=synced, chain=chain, max_sync_length=TLS_HEADER_LENGTH + TLS_MAX_RECORD_LENGTH
        )

    def _size(self, buffer: Buffer, at: int, *, resync: bool) -> int:
        if len(buffer) - at < TLS_HEADER_LENGTH:
            return _MORE
        record = tls_record_header(bytes(buffer[at : at + TLS_HEADER_LENGTH]))
        if record is None:
            return _INVALID
        return TLS_HEADER_LENGTH + record[2]


def tls_record_header(header: bytes) -> tuple[int, int, int] | None:
    """``(content type, version, length)`` of a valid TLS record header, else None."""
    if len(header) < TLS_HEADER_LENGTH or header[0] not in TLS_CONTENT_TYPES:
        return None
    version = (header[1] << 8) | header[2]
    length = (header[3] << 8) | header[4]
    if version not in TLS_VERSIONS or length > TLS_MAX_RECORD_LENGTH:
        return None
    return header[0], version, length


# -- which framing ----------------------------------------------------------------------------
Framing = Literal["rfc4571", "turn", "tls", "none"]

MID_STREAM_CHAINS: Final[dict[Framing, int]] = {"tls": 3, "turn": 4, "rfc4571": 5}
"""Headers in a row needed to accept a framing when the capture began mid-connection."""
DETECT_LIMIT: Final = 64 * 1024
"""Offsets of a direction tried before giving up on finding a framing ("none")."""
DETECT_BUFFER_LIMIT: Final = DETECT_LIMIT + 3 * (TLS_HEADER_LENGTH + TLS_MAX_RECORD_LENGTH)
"""Bytes after which an offset still undecided (a chain of long records) counts as "none"."""


def new_framer(framing: Framing, *, synced: bool) -> StreamFramer:
    """The framer for a framing :func:`detect` found (at the offset it returned)."""
    if framing == "rfc4571":
        return Rfc4571Framer(synced=synced)
    if framing == "turn":
        return TurnTcpFramer(synced=synced)
    if framing == "tls":
        return TlsRecordFramer(synced=synced)
    raise ValueError(f"no framer for {framing!r}")


def detect(
    data: bytes, *, stream_start: bool, start: int = 0, final: bool = False
) -> tuple[Framing | None, int]:
    """Which framing the first bytes of one TCP direction use: ``(framing, offset)``.

    With ``stream_start`` (the SYN was seen) the first message starts at byte 0: a TLS
    record header, a STUN message (TURN over TCP) or an RFC 4571 frame of ICE-TCP media
    (:func:`rfc7983_first_frame`), tried in that order. Otherwise (a capture that began
    mid-connection) byte 0 if a chain of :data:`FIRST_SEGMENT_CHAIN` headers begins there (or
    of two or more that ends exactly with the bytes so far: a first segment of whole
    messages), else the first offset where a chain of :data:`MID_STREAM_CHAINS` headers of
    one framing begins; an RFC 4571 frame is never accepted on one valid-looking header.

    Returns ``(framing, offset of its first message)``, ``("none", ...)`` when nothing fits
    (in :data:`DETECT_LIMIT` bytes mid-stream), or ``(None, offset)``: more bytes needed, and
    offsets before ``offset`` need not be tried again (pass it back as ``start``).
    With ``final`` (the stream ended) no more bytes will come: a chain cut by the end counts
    when its complete messages (two at least) run up to the end.
    """
    if stream_start:
        undecided = False
        for framing in _FRAMINGS:
            if framing == "turn" and data and data[0] >= 0x40:
                continue  # a TURN connection opens with STUN (Allocate, or its response)
            verdict = _new_tester(framing, chain=1).chain_at(data, 0)
            if verdict:
                return framing, 0
            undecided = undecided or verdict is None
        return (None, 0) if undecided else ("none", 0)
    if start == 0 and not final:
        found = _first_segment_chain(data)
        if found != "none":
            return found, 0
    testers = [(f, _new_tester(f, chain=c)) for f, c in MID_STREAM_CHAINS.items()]
    for offset in range(start, min(len(data), DETECT_LIMIT)):
        undecided = False
        for framing, tester in testers:
            verdict = tester.chain_at(data, offset)
            if verdict is None and final:
                verdict = _runs_to_the_end(tester, data, offset)
            if verdict:
                return framing, offset
            undecided = undecided or verdict is None
        if undecided:
            return ("none", offset) if len(data) >= DETECT_BUFFER_LIMIT else (None, offset)
    if len(data) >= DETECT_LIMIT or final:
        return "none", min(len(data), DETECT_LIMIT)
    return None, len(data)


def _runs_to_the_end(tester: StreamFramer, data: bytes, offset: int) -> bool:
    """Complete valid messages from ``offset`` (two at least) up to the end, the last maybe cut."""
    at, count = offset, 0
    while len(data) - at > 0:
        size = tester._size(data, at, resync=True)
        if size == _INVALID or size > tester.max_sync_length:
            return False
        if size == _MORE or at + size > len(data):
            break
        at, count = at + size, count + 1
    return count >= 2


FIRST_SEGMENT_CHAIN: Final = 3
"""Headers in a row needed at byte 0 of a mid-connection capture (senders write whole
messages, so the first captured segment usually starts with one)."""


def _first_segment_chain(data: bytes) -> Framing | None:
    """Mid-stream, at byte 0: a chain of :data:`FIRST_SEGMENT_CHAIN` valid headers, or of at
    least two that ends exactly where the bytes end. None: undecided; "none": neither."""
    undecided = False
    for framing in _FRAMINGS:
        tester = _new_tester(framing, chain=FIRST_SEGMENT_CHAIN)
        verdict = tester.chain_at(data, 0)
        if verdict:
            return framing
        if verdict is None:
            at, count = 0, 0
            while at < len(data):
                size = tester._size(data, at, resync=True)
                if size <= 0 or size > tester.max_sync_length:
                    break
                at, count = at + size, count + 1
            if at == len(data) and count >= 2:
                return framing
            undecided = True
    return None if undecided else "none"


_FRAMINGS: Final[tuple[Framing, ...]] = ("tls", "turn", "rfc4571")


def _new_tester(framing: Framing, *, chain: int) -> StreamFramer:
    framer = new_framer(framing, synced=False)
    framer.chain = chain
    return framer


__all__ = [
    "DEFAULT_MAX_SYNC_LENGTH",
    "DETECT_BUFFER_LIMIT",
    "DETECT_LIMIT",
    "MID_STREAM_CHAINS",
    "TLS_APPLICATION_DATA",
    "TLS_CONTENT_TYPES",
    "TLS_HEADER_LENGTH",
    "TLS_MAX_RECORD_LENGTH",
    "TLS_VERSIONS",
    "Framing",
    "Rfc4571Framer",
    "StreamFramer",
    "TlsRecordFramer",
    "TurnTcpFramer",
    "detect",
    "new_framer",
    "rfc4571_payload",
    "rfc7983_first_frame",
]
