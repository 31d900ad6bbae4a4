"""The scalar definition of a packet-table row, datagram by datagram."""

from __future__ import annotations

import io
import re
import struct
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decoders.wire import bulk, rowbuild, tshark, walk
from decoders.wire.demux import PacketKind
from decoders.wire.net import Datagram
from decoders.wire.rowbuild import (
    COLUMNS,
    KIND_CODES,
    TUNNEL_CODES,
    RowBuilder,
    datagram_row,
    vector_columns,
)
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


# -- one declaration of the columns ---------------------------------------------------------------

WALK_C = Path(rowbuild.__file__).with_name("_walk.c")
C_TYPES = {
    f"{sign}int{bits}_t": np.dtype(f"{'u' if sign else 'i'}{bits // 8}")
    for sign in ("", "u")
    for bits in (8, 16, 32, 64)
}


def _c_column_list() -> list[tuple[str, np.dtype[Any]]]:
    """The X(name, type) lines of _walk.c's VECTOR_COLUMNS list, in order."""
    source = WALK_C.read_text()
    block = source[source.index("#define VECTOR_COLUMNS(X)") :].split("\n\n", 1)[0]
    return [(name, C_TYPES[ctype]) for name, ctype in re.findall(r"X\((\w+), (\w+)\)", block)]


def _compare(
    place: str,
    found: Iterable[tuple[str, np.dtype[Any] | int]],
    expected: Mapping[str, type[np.generic]],
) -> list[str]:
    """What differs between a place's (name, dtype or item size) list and the declaration."""
    found = list(found)
    names = [name for name, _ in found]
    if names != list(expected):
        missing = [n for n in expected if n not in names]
        extra = [n for n in names if n not in expected]
        what = f"missing {missing}" if missing else ""
        what += f"{', ' if what else ''}not declared {extra}" if extra else ""
        return [f"{place}: {what or 'another order'} (declared: {list(expected)})"]
    problems = []
    for name, kind in found:
        want = np.dtype(expected[name])
        if isinstance(kind, int):
            same = kind == want.itemsize
        else:  # C has no bool: a bool column is a uint8_t there
            same = kind == want or (want == np.bool_ and kind == np.uint8)
        if not same:
            problems.append(f"{place}: {name} is {kind}, declared {want}")
    return problems


def _tshark_rtp_fields() -> dict[str, str]:
    """tshark's fields of one RTP packet with a one-byte header extension (audio level)."""
    fields = dict.fromkeys(tshark.FIELDS, "")
    fields.update({
        "frame.number": "1", "frame.time_epoch": "1700000000.000000001",
        "frame.protocols": "eth:ethertype:ip:udp:rtp", "ip.src": "10.0.0.1", "ip.dst": "10.0.0.2",
        "udp.srcport": "5000", "udp.dstport": "6000", "udp.length": "68", "rtp.p_type": "111",
        "rtp.marker": "0", "rtp.seq": "7", "rtp.timestamp": "960", "rtp.ssrc": "0xdeadbeef",
        "rtp.cc": "0", "rtp.ext": "1", "rtp.ext.len": "1", "rtp.ext.profile": "0xbede",
        "rtp.padding": "0", "rtp.payload": ":".join(["01"] * 40), "rtp.ext.rfc5285.id": "3",
        "rtp.ext.rfc5285.data": "aa",
    })  # fmt: skip
    return fields


def column_disagreements(columns: Mapping[str, type[np.generic]]) -> list[str]:
    """Every place that builds packet-table rows, held to a column declaration (``COLUMNS``)."""
    vector = vector_columns(columns)
    problems = _compare("decoders/wire/_walk.c VECTOR_COLUMNS(X)", _c_column_list(), vector)
    if bulk.ACCELERATED or walk.ACCELERATED:
        from decoders.wire import _walk  # type: ignore[attr-defined]

        built = getattr(_walk, "COLUMNS", ())
        problems += _compare("the built _walk module (rebuild it: make install)", built, vector)
    b = np.frombuffer(audio_packet(42, True) + bytes(256), np.uint8)
    one = np.ones(1, np.int64)
    net = bulk.NetColumns(
        np.ones(1, np.bool_), *(np.zeros(1, np.uint64) for _ in range(4)),
        one, one, np.zeros(1, np.int64), np.array([len(audio_packet(42, True))]), Counter(),
    )  # fmt: skip
    part, _, _ = bulk.vector_rows(b, net, 3)
    made_by_caller = ("frame", "timestamp_ns", "src_hi", "src_lo", "dst_hi", "dst_lo")
    # names only: RowBuilder's blocks (allocated from the declaration) cast on the copy
    wanted = {n: t for n, t in vector.items() if n not in made_by_caller}
    written = [(n, np.dtype(wanted[n])) for n in wanted if n in part]
    written += [(n, part[n].dtype) for n in part if n not in COLUMNS]
    problems += _compare("decoders/wire/bulk.py vector_rows", written, wanted)
    record = bytes.fromhex("17 0303 0020") + bytes(32)
    for label, row in (
        ("RTP", datagram_row(datagram(audio_packet(42, True)), 3, Counter())),
        ("RTCP", datagram_row(datagram(struct.pack("!BBHI", 0x80, 200, 1, 7)), 3, Counter())),
        ("TLS", datagram_row(Datagram(1, 1, "a", 1, "b", 2, "tcp", record, "tls"), 3, Counter())),
    ):
        found = [(n, np.dtype(columns.get(n, np.int64))) for n in row]
        problems += _compare(f"decoders/wire/rowbuild.py datagram_row ({label})", found, columns)
    (tshark_row,) = tshark._frame_rows(_tshark_rtp_fields(), 3, Counter(), srtp=True)
    found = [(n, np.dtype(columns.get(n, np.int64))) for n in columns if n in tshark_row]
    found += [(n, np.dtype(np.int64)) for n in tshark_row if n not in columns]
    problems += _compare("decoders/wire/tshark.py _frame_rows (FIELDS)", found, columns)
    builder = RowBuilder(3)
    builder.add_datagram(datagram(audio_packet(42, True)), Counter())
    table = builder.finish().columns
    problems += _compare(
        "decoders/wire/rowbuild.py RowBuilder.finish",
        [(n, c.dtype) for n, c in table.items()],
        columns,
    )
    return problems


def test_every_place_agrees_with_the_column_declaration() -> None:
    """rowbuild.COLUMNS is the packet table's one declaration: the C decoder's column list
    (read from _walk.c, and from the built module), the numpy decoder, the scalar rows, the
    tshark engine's rows and the finished table all hold to it; a failure names each place."""
    problems = column_disagreements(COLUMNS)
    assert not problems, "\n".join(problems)


def test_a_new_column_is_missing_from_every_place_until_added() -> None:
    """The check above can fail: a column declared and written nowhere is named everywhere."""
    problems = "\n".join(column_disagreements({**COLUMNS, "new_column": np.uint8}))
    for place in (
        "_walk.c VECTOR_COLUMNS",
        "bulk.py vector_rows",
        "datagram_row (RTP)",
        "tshark.py _frame_rows",
        "RowBuilder.finish",
    ):
        assert place in problems and "missing ['new_column']" in problems
    retyped = "\n".join(column_disagreements({**COLUMNS, "ssrc": np.uint16}))
    assert "_walk.c VECTOR_COLUMNS(X): ssrc is uint32, declared uint16" in retyped


def test_the_c_decoder_writes_the_kind_codes_of_the_table() -> None:
    """_walk.c's K_* codes are positions in KIND_CODES (TURN: ChannelData), tunnel 1 is
    ChannelData."""
    source = WALK_C.read_text()
    codes = dict(re.findall(r"K_(\w+) = (\d+)", source))
    assert codes, "no K_* enum in _walk.c"
    for name, code in codes.items():
        kind = PacketKind.TURN_CHANNEL if name == "TURN" else PacketKind[name]
        assert KIND_CODES.index(kind) == int(code), name
    assert "r->tunnel = 1;" in source and TUNNEL_CODES.index("turn-channel") == 1


def _forced_chunks(monkeypatch: pytest.MonkeyPatch, spill_rows: int) -> None:
    """Tiny blocks, no up-front reservation, and a table that goes to disk past ``spill_rows``
    rows: every path of a long capture, on a small one."""
    monkeypatch.setattr(bulk, "RESERVE_ROWS_MAX", 0)
    monkeypatch.setattr(rowbuild, "BLOCK_ROWS", 64)
    monkeypatch.setattr(rowbuild, "SCALAR_ROWS", 50)
    monkeypatch.setattr(rowbuild, "SPILL_ROWS", spill_rows)


def _same_table(a: rowbuild.Rows, b: rowbuild.Rows) -> None:
    assert len(a) == len(b) > 0
    for name, dtype in COLUMNS.items():
        assert a.columns[name].dtype == b.columns[name].dtype == np.dtype(dtype), name
        if name in ("src", "dst"):
            left = [a.addresses[i] for i in a.columns[name].tolist()]
            assert left == [b.addresses[i] for i in b.columns[name].tolist()], name
        else:
            assert np.array_equal(a.columns[name], b.columns[name]), name
    assert a.tls_hellos == b.tls_hellos


@pytest.mark.parametrize("use_c", [True, False] if bulk.ACCELERATED else [False])
def test_chunked_and_spilled_tables_equal_the_in_memory_one(
    session_dir: Path, use_c: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A lab capture read in 64-row chunks (50 rows of the scalar path at a time), kept in
    memory or spilled to disk after 100 rows, gives the table of the one-block read, column for
    column (TCP relays included: their rows come from the scalar path and are put back in frame
    order, on disk too)."""
    data = (session_dir / "capture.pcapng").read_bytes()
    whole = bulk.scan_file(io.BytesIO(data), 1, use_c=use_c)
    assert not any(isinstance(c, np.memmap) for c in whole.rows.columns.values())
    monkeypatch.setenv(rowbuild.SPILL_DIR_VARIABLE, str(tmp_path))
    for spill_rows in (1 << 40, 100):
        _forced_chunks(monkeypatch, spill_rows)
        chunked = bulk.scan_file(io.BytesIO(data), 1, chunk_size=4096, use_c=use_c)
        spilled = [isinstance(c, np.memmap) for c in chunked.rows.columns.values()]
        assert all(spilled) if spill_rows == 100 else not any(spilled)
        _same_table(chunked.rows, whole.rows)
        assert chunked.counters == whole.counters and chunked.frames == whole.frames
    assert not list(tmp_path.iterdir())  # the spilled columns' files were never linked


@pytest.mark.parametrize(
    "name", ["chromium-ui-only", "chromium-track-disabled-relay-tcp", "janus-videoroom"]
)
def test_a_spilled_table_gives_the_same_report(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The whole audit (streams, phases, decryption, findings, verdict) of a lab session reads
    a table spilled to disk in 64-row chunks exactly as the in-memory one: same report.json."""
    from decoders.audit.analysis import Inputs, analyze
    from decoders.report.analysis_json import report_document

    folder = Path(__file__).resolve().parents[2] / "captures" / name
    before = report_document(analyze(Inputs(session_dir=folder)))
    monkeypatch.setenv(rowbuild.SPILL_DIR_VARIABLE, str(tmp_path))
    _forced_chunks(monkeypatch, 100)
    spilled: list[bool] = []
    finish = RowBuilder.finish

    def watched(self: RowBuilder) -> rowbuild.Rows:
        rows = finish(self)
        spilled.append(self.spilled)
        return rows

    monkeypatch.setattr(RowBuilder, "finish", watched)
    after = report_document(analyze(Inputs(session_dir=folder)))
    assert spilled and all(spilled)
    assert after == before


def test_a_spill_folder_that_cannot_be_used_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A table that must go to disk, to a folder that does not exist: an OSError naming the
    folder and the variable that chooses another (the CLI prints it as one line)."""
    missing = tmp_path / "missing"
    monkeypatch.setenv(rowbuild.SPILL_DIR_VARIABLE, str(missing))
    _forced_chunks(monkeypatch, 100)
    data = Path(__file__).resolve().parents[2] / "captures/chromium-ui-only/capture.pcapng"
    with pytest.raises(OSError, match="MUTECHECK_SPILL_DIR") as raised:
        bulk.scan_file(io.BytesIO(data.read_bytes()), 1, chunk_size=4096)
    assert raised.value.filename == str(missing)
