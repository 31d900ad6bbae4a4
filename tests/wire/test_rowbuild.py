"""The scalar definition of a packet-table row, datagram by datagram."""

from __future__ import annotations

import struct
from collections import Counter

from decoders.wire.demux import PacketKind
from decoders.wire.net import Datagram
from decoders.wire.rowbuild import COLUMNS, KIND_CODES, TUNNEL_CODES, RowBuilder, datagram_row
from decoders.wire.rtp import HeaderExtension, RtpPacket


def datagram(payload: bytes, frame: int = 1) -> Datagram:
    return Datagram(
        frame=frame,
        timestamp_ns=1_700_000_000_000_000_000 + frame,
        src="10.0.0.1",
        src_port=5000,
        dst="10.0.0.2",
        dst_port=6000,
        transport="udp",
        payload=payload,
    )


def audio_packet(level: int, voice: bool, padding: int = 0) -> bytes:
    return RtpPacket.build(
        payload_type=111,
        sequence_number=7,
        timestamp=960,
        ssrc=0xDEADBEEF,
        payload=b"\x01" * 40,
        extensions=(HeaderExtension(3, bytes([(0x80 if voice else 0) | level])),),
        extension_profile=0xBEDE,
        padding_length=padding,
    ).serialize()


def test_rtp_row_fields_and_audio_level() -> None:
    counters: Counter[str] = Counter()
    row = datagram_row(datagram(audio_packet(42, True)), 3, counters)
    assert set(row) == set(COLUMNS)
    assert row["kind"] == KIND_CODES.index(PacketKind.RTP)
    assert (row["payload_type"], row["sequence_number"], row["rtp_timestamp"]) == (111, 7, 960)
    assert row["ssrc"] == 0xDEADBEEF
    assert (row["audio_level"], row["voice"]) == (42, True)
    assert row["extension_profile"] == 0xBEDE
    assert row["extension_offset"] == 16 and row["extension_length"] == 4
    assert row["header_length"] == 20 and row["payload_length"] == 40
    assert not counters


def test_level_only_by_the_negotiated_id() -> None:
    row = datagram_row(datagram(audio_packet(42, False)), 1, Counter())
    assert row["audio_level"] == -1  # id 3 carries it, id 1 was asked for
    row = datagram_row(datagram(audio_packet(42, False)), None, Counter())
    assert row["audio_level"] == -1


def test_padding_is_read_only_for_plain_rtp() -> None:
    packet = audio_packet(10, False, padding=4)
    plain = datagram_row(datagram(packet), 3, Counter(), srtp=False)
    assert plain["padding_length"] == 4 and plain["payload_length"] == 40
    encrypted = datagram_row(datagram(packet), 3, Counter(), srtp=True)
    assert encrypted["padding_length"] == 0 and encrypted["payload_length"] == 44


def test_malformed_rtp_is_counted_not_raised() -> None:
    counters: Counter[str] = Counter()
    broken = audio_packet(10, False)[:14]  # the extension header is cut
    row = datagram_row(datagram(broken), 3, counters)
    assert row["malformed"] is True and counters["malformed.rtp"] == 1


def test_turn_channel_data_is_unwrapped() -> None:
    inner = audio_packet(5, True)
    wrapped = struct.pack("!HH", 0x4001, len(inner)) + inner
    row = datagram_row(datagram(wrapped), 3, Counter())
    assert row["tunnel"] == 1 and row["kind"] == KIND_CODES.index(PacketKind.RTP)
    assert row["audio_level"] == 5 and row["length"] == len(inner)


def test_rtcp_row_carries_sender_ssrc() -> None:
    sr = struct.pack("!BBHI", 0x80, 200, 6, 0x11223344) + bytes(20)
    row = datagram_row(datagram(sr), None, Counter())
    assert row["kind"] == KIND_CODES.index(PacketKind.RTCP)
    assert (row["payload_type"], row["ssrc"]) == (200, 0x11223344)


def test_builder_sorts_by_frame_and_maps_addresses() -> None:
    builder = RowBuilder(3)
    counters: Counter[str] = Counter()
    builder.add_datagram(datagram(audio_packet(1, True), frame=5), counters)
    builder.add_datagram(datagram(audio_packet(2, True), frame=2), counters)
    rows = builder.finish()
    assert rows["frame"].tolist() == [2, 5]
    assert rows["audio_level"].tolist() == [2, 1]
    assert rows.row(0)["src"] == "10.0.0.1" and rows.row(0)["kind"] == "rtp"


def test_tls_record_row_is_never_classified_by_its_bytes() -> None:
    record = bytes.fromhex("17 0303 0020") + bytes([0x80]) * 32  # 0x17 is in the DTLS range
    datagram = Datagram(7, 1_000, "10.0.0.1", 5349, "10.0.0.2", 40000, "tcp", record, "tls")
    row = datagram_row(datagram, None, Counter())
    assert row["kind"] == KIND_CODES.index(PacketKind.TLS)
    assert row["tunnel"] == TUNNEL_CODES.index("tls")
    assert (row["length"], row["payload_type"], row["malformed"]) == (32, 23, False)
    assert KIND_CODES[-1] is PacketKind.TLS and TUNNEL_CODES[-1] == "tls"  # codes appended


def test_builder_keeps_the_first_tls_hello_of_each_direction() -> None:
    import ssl

    from helpers.tls_bytes import tls_connection

    from decoders.wire.framing import TlsRecordFramer

    client, server = tls_connection([(True, b"x" * 50)], version=ssl.TLSVersion.TLSv1_3)
    builder = RowBuilder(None)
    counters: Counter[str] = Counter()
    for frame, (src, sport, dst, dport, data) in enumerate(
        [("10.0.0.1", 40000, "10.0.0.2", 443, client), ("10.0.0.2", 443, "10.0.0.1", 40000, server)]
    ):
        for record in TlsRecordFramer(synced=True).feed(data):
            builder.add_datagram(
                Datagram(frame, 1_000, src, sport, dst, dport, "tcp", record, "tls"), counters
            )
    broken = bytes.fromhex("16 0303 0008 01 000004 0303 ff")  # a ClientHello cut short
    builder.add_datagram(
        Datagram(9, 2_000, "10.0.0.3", 1, "10.0.0.2", 443, "tcp", broken, "tls"), counters
    )
    hellos = builder.finish().tls_hellos
    assert hellos[("10.0.0.1", 40000, "10.0.0.2", 443)].is_client
    assert hellos[("10.0.0.2", 443, "10.0.0.1", 40000)].version == 0x0304
    assert ("10.0.0.3", 1, "10.0.0.2", 443) not in hellos
    assert counters == Counter({"malformed.tls_hello": 1})
