"""Tests for decoders.wire.framing: TURN over TCP, TLS records and RFC 4571 on real bytes."""

from __future__ import annotations

import functools
import ssl

import pytest
from helpers.packet_fixtures import load
from helpers.tls_bytes import tls_connection
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
from decoders.wire.demux import unwrap_turn
from decoders.wire.framing import (
    Rfc4571Framer,
    StreamFramer,
    TlsRecordFramer,
    TurnTcpFramer,
    detect,
    rfc4571_payload,
    rfc7983_first_frame,
    tls_record_header,
)

TURN_MESSAGES = [
    load("turn_allocate_request"),
    load("turn_allocate_unauthorized"),
    load("turn_channel_data_tcp"),  # aioice padded it to 4 for TCP
    load("turn_send_indication"),
    load("turn_data_indication"),
    load("turn_channel_data_tcp"),
    load("turn_channel_bind_request"),
    load("turn_channel_data_tcp"),
]
TURN_STREAM = b"".join(TURN_MESSAGES)


def feed_in_chunks(framer: StreamFramer, data: bytes, cuts: list[int]) -> list[bytes]:
    out: list[bytes] = []
    previous = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        out += framer.feed(data[previous:cut])
        previous = max(previous, cut)
    return out


# -- TURN over TCP ------------------------------------------------------------------------------
def test_turn_stream_comes_out_message_by_message() -> None:
    framer = TurnTcpFramer(synced=True)
    assert framer.feed(TURN_STREAM) == TURN_MESSAGES
    assert (framer.synced, framer.skipped_bytes, framer.resyncs, framer.flush()) == (
        True,
        0,
        0,
        0,
    )
    channel = framer.feed(load("turn_channel_data_tcp"))[0]
    assert unwrap_turn(channel) == ("turn-channel", load("srtp_opus_one_byte"))


def test_turn_padding_belongs_to_the_channel_message() -> None:
    message = bytes.fromhex("4001 0005") + b"abcde" + bytes(3)
    framer = TurnTcpFramer(synced=True)
    assert framer.feed(message + message[:6]) == [message]
    assert framer.pending_bytes == 6
    assert framer.flush() == 6


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, len(TURN_STREAM)), max_size=12))
def test_turn_any_split_gives_the_same_messages(cuts: list[int]) -> None:
    assert feed_in_chunks(TurnTcpFramer(synced=True), TURN_STREAM, cuts) == TURN_MESSAGES


def channel_messages() -> st.SearchStrategy[list[bytes]]:
    """ChannelData and STUN-like messages whose bodies cannot fake a header (bytes >= 0x80)."""
    body = st.binary(min_size=0, max_size=300).map(lambda b: bytes(x | 0x80 for x in b))

    def channel(number: int, data: bytes) -> bytes:
        return (
            number.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data + bytes(-len(data) % 4)
        )

    def indication(data: bytes) -> bytes:
        data = data[: len(data) - len(data) % 4]
        return (
            bytes.fromhex("0017")
            + len(data).to_bytes(2, "big")
            + b"\x21\x12\xa4\x42"
            + (b"\x80" * 12)
            + data
        )

    one = st.one_of(
        st.builds(channel, st.integers(0x4000, 0x4FFF), body), st.builds(indication, body)
    )
    return st.lists(one, min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(messages=channel_messages(), start=st.integers(0, 2000), cuts=st.lists(st.integers()))
def test_turn_mid_stream_start_resyncs_on_the_next_message(
    messages: list[bytes], start: int, cuts: list[int]
) -> None:
    # a header cut in the middle can look like one claiming a long message: the framer waits
    # for those bytes rather than guess, so the stream goes on past the longest such claim
    trailer = [bytes.fromhex("4001 012c") + b"\x80" * 300] * 20
    stream = b"".join(messages + trailer)
    start %= len(b"".join(messages))
    starts = [sum(map(len, messages[:i])) for i in range(len(messages))]
    expected = [m for m, at in zip(messages, starts, strict=True) if at >= start]
    framer = TurnTcpFramer()
    out = feed_in_chunks(framer, stream[start:], cuts)
    assert out == expected + trailer
    first = starts[len(messages) - len(expected)] if expected else len(b"".join(messages))
    assert framer.skipped_bytes == first - start
    assert framer.synced


def test_turn_garbage_prefix_is_skipped_and_counted() -> None:
    garbage = bytes(range(0x80, 0xC0)) + b"\x40\x00\xff\xff"  # the last header is too long
    framer = TurnTcpFramer()
    assert framer.feed(garbage + TURN_STREAM) == TURN_MESSAGES
    assert framer.skipped_bytes == len(garbage)


def test_turn_lost_sync_is_counted_and_recovered() -> None:
    framer = TurnTcpFramer(synced=True)
    out = framer.feed(TURN_MESSAGES[0] + b"\xff\xfe\xfd" + TURN_STREAM)
    assert out == [TURN_MESSAGES[0], *TURN_MESSAGES]
    assert (framer.resyncs, framer.skipped_bytes) == (1, 3)


def test_turn_rfc5766_channel_numbers() -> None:
    message = bytes.fromhex("7fff 0004 01020304")
    assert TurnTcpFramer(synced=True).feed(message) == []  # not a header in RFC 8656
    assert TurnTcpFramer(synced=True, rfc5766_channels=True).feed(message) == [message]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(), max_size=5))
def test_framers_never_raise_on_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    for make in (TurnTcpFramer, TlsRecordFramer, Rfc4571Framer):
        for synced in (True, False):
            framer = make(synced=synced)
            try:
                out = feed_in_chunks(framer, data, cuts)
            except MalformedPacket:
                continue
            left = framer.flush()
            assert sum(map(len, out)) + framer.skipped_bytes + left == len(data)
    for stream_start in (True, False):
        framing, offset = detect(data, stream_start=stream_start)
        assert framing in (None, "none", "tls", "turn", "rfc4571")
        assert 0 <= offset <= max(len(data), 1)


# -- TLS records --------------------------------------------------------------------------------
@functools.cache
def https_connection() -> tuple[bytes, bytes]:
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    return tls_connection([(True, request), (False, b"x" * 40_000), (True, request)])


@pytest.fixture
def https() -> tuple[bytes, bytes]:
    return https_connection()


def test_tls_records_of_a_real_connection(https: tuple[bytes, bytes]) -> None:
    for direction in https:
        framer = TlsRecordFramer(synced=True)
        records = framer.feed(direction)
        assert b"".join(records) == direction
        headers = [tls_record_header(r) for r in records]
        assert all(
            h is not None and h[2] + 5 == len(r) for h, r in zip(headers, records, strict=True)
        )
        assert records[0][0] == 22 and records[-1][0] == 23


def test_tls_13_application_records_one_per_write() -> None:
    client, _ = tls_connection(
        [(True, bytes(100 + n)) for n in range(10)], version=ssl.TLSVersion.TLSv1_3
    )
    records = TlsRecordFramer(synced=True).feed(client)
    sizes = [len(r) - 5 for r in records if r[0] == 23][-10:]
    assert sizes == [100 + n + 17 for n in range(10)]  # + content type byte + 16-byte tag


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 41_000), cuts=st.lists(st.integers(), max_size=6))
def test_tls_mid_stream_start_resyncs(start: int, cuts: list[int]) -> None:
    data = https_connection()[1]
    start %= len(data)
    records = TlsRecordFramer(synced=True).feed(data)
    starts = [sum(map(len, records[:i])) for i in range(len(records))]
    expected = [r for r, at in zip(records, starts, strict=True) if at >= start]
    framer = TlsRecordFramer()
    out = feed_in_chunks(framer, data[start:], cuts)
    assert out == expected[: len(out)]
    assert len(out) >= len(expected) - 1


# -- RFC 4571 -----------------------------------------------------------------------------------
RTP_FRAMES = [bytes([0x80, 111, 0, n]) + bytes([0x80 | n % 64]) * (16 + 7 * n) for n in range(60)]
RFC4571_STREAM = b"".join(len(p).to_bytes(2, "big") + p for p in RTP_FRAMES)


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(), max_size=10))
def test_rfc4571_any_split(cuts: list[int]) -> None:
    out = feed_in_chunks(Rfc4571Framer(synced=True), RFC4571_STREAM, cuts)
    assert [rfc4571_payload(m) for m in out] == RTP_FRAMES


@settings(max_examples=100, deadline=None)
@given(start=st.integers(1, len(RFC4571_STREAM) - 1))
def test_rfc4571_mid_stream_detection_needs_a_chain(start: int) -> None:
    framing, offset = detect(RFC4571_STREAM[start:], stream_start=False)
    starts = [sum(len(p) + 2 for p in RTP_FRAMES[:i]) for i in range(len(RTP_FRAMES))]
    following = [at for at in starts if at >= start]
    if len(RFC4571_STREAM) - start > 4096 + 2 * 2000:  # room for any candidate to be decided
        assert (framing, offset + start) == ("rfc4571", following[0])
    elif len(following) < 5:
        assert framing is None  # never on fewer than five frames in a row
    else:
        assert framing is None or (framing, offset + start) == ("rfc4571", following[0])


def test_detect_at_stream_start(https: tuple[bytes, bytes]) -> None:
    assert detect(https[0], stream_start=True) == ("tls", 0)
    assert detect(https[1], stream_start=True) == ("tls", 0)
    assert detect(TURN_STREAM, stream_start=True) == ("turn", 0)
    assert detect(RFC4571_STREAM, stream_start=True) == ("rfc4571", 0)
    assert detect(b"GET / HTTP/1.1\r\n", stream_start=True) == ("none", 0)
    assert detect(b"\x16\x03", stream_start=True) == (None, 0)


@settings(max_examples=100, deadline=None)
@given(start=st.integers(0, 40_000))
def test_tls_is_never_read_as_rfc4571_or_turn(start: int) -> None:
    """The regression of issue 11: an HTTPS capture started mid-stream gave bogus RTP."""
    for data in https_connection():
        cut = data[start % len(data) :]
        framing, _ = detect(cut, stream_start=False)
        assert framing in ("tls", None)


@pytest.mark.parametrize(
    ("length", "head", "expected"),
    [
        (20, bytes.fromhex("0001 0000 2112a442"), True),
        (24, bytes.fromhex("0001 0000 2112a442"), False),
        (100, bytes.fromhex("1603"), False),  # TLS, not DTLS
        (12, bytes.fromhex("806f0000"), True),
        (0, b"", False),
        (20, b"", None),
    ],
)
def test_rfc7983_first_frame(length: int, head: bytes, expected: bool | None) -> None:
    assert rfc7983_first_frame(length, head) is expected
