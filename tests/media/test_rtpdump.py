"""Chromium's RTP dump: the log format, time repair, and a real recording against its capture."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.errors import MalformedPacket
from decoders.media.decrypt import decoded_loudness, decrypt_capture, read_media
from decoders.media.rtpdump import (
    DEFAULT_LOCAL,
    DEFAULT_REMOTE,
    MAX_LINE_BYTES,
    MAX_UDP_PAYLOAD,
    RTPDUMP_INTERFACE,
    import_rtpdump,
    log_year,
    parse_dump_line,
    parse_log_header,
    parse_rtpdump,
    read_log_lines,
    write_pcapng,
)
from decoders.media.scan import scan_streams
from decoders.session.keys import KeySet, load_keys_json
from decoders.wire.capture import open_capture

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "tests" / "fixtures" / "media" / "rtpdump"
LOG = RECORDING / "chromium-stderr.log"
HEADER = "[5008:5121:1129/221502.212865:VERBOSE1:third_party/webrtc/pc/srtp_session.cc:549] "
LINE = "O 00:00:02.212 0000 90 ef 65 69 ee 4f 9d 85 c4 83 53 4f be de 00 01 40 30 10 97 # RTP_DUMP"


def _recording_year() -> int:
    created = json.loads((RECORDING / "session.json").read_text())["created"]
    return datetime.fromisoformat(created).year


# -- the format ---------------------------------------------------------------------------------


def test_log_header() -> None:
    header = parse_log_header(HEADER)
    assert header is not None
    assert (header.pid, header.tid, header.month, header.day) == (5008, 5121, 11, 29)
    assert (header.hour, header.minute, header.second, header.microsecond) == (22, 15, 2, 212865)
    assert header.level == "VERBOSE1"
    assert header.source == "third_party/webrtc/pc/srtp_session.cc:549"
    older = parse_log_header("[1129/221502.000001:INFO:srtp_session.cc(549)] text")
    assert older is not None and older.pid is None and older.source == "srtp_session.cc(549)"
    assert parse_log_header("no header") is None
    assert parse_log_header("[1:2:1329/221502.212865:INFO:x.cc:1]") is None  # month 13
    assert parse_log_header("[1:2:1129/256102.212865:INFO:x.cc:1]") is None  # hour 25
    assert parse_log_header("[1:2:1131/221502.212865:INFO:x.cc:1]") is None  # 31 November
    assert parse_log_header("[1:2:0230/221502.212865:INFO:x.cc:1]") is None  # 30 February
    assert parse_log_header(HEADER.replace("1129/", "11\u0a691/")) is None  # a Gurmukhi 3
    leap = parse_log_header(HEADER.replace("1129/", "0229/"))
    assert leap is not None and (leap.month, leap.day) == (2, 29)


def test_29_february_counts_only_in_a_leap_year() -> None:
    """Chromium's header has no year: 29 February is skipped and counted in a common year,
    never a traceback (found by the fuzz test below)."""
    lines = [HEADER.replace("1129/", "0229/"), LINE, HEADER, LINE]
    common = parse_rtpdump(lines, year=2026)
    assert len(common.packets) == 1 and common.skipped == {"bad log date": 1}
    leap = parse_rtpdump(lines, year=2028)
    assert len(leap.packets) == 2 and not leap.skipped


def test_dump_line() -> None:
    dumped = parse_dump_line(LINE)
    assert dumped is not None
    assert dumped.outbound and dumped.field_ms == 2212
    assert dumped.data == bytes.fromhex(
        "90ef6569ee4f9d85c483534fbede0001403010 97".replace(" ", "")
    )
    inbound = parse_dump_line("I 00:00:59.999 000000 80 c9 00 01 # RTP_DUMP  ")
    assert inbound is not None and not inbound.outbound and inbound.field_ms == 59999
    assert parse_dump_line("ordinary log line") is None
    for broken in (
        "O 00:00:02.212 0000 # RTP_DUMP",
        "O 00:00:02.212 0000 9 # RTP_DUMP",
        "X 00:00:02.212 0000 90 # RTP_DUMP",
        "O 00:00:61.212 0000 90 # RTP_DUMP",
    ):
        with pytest.raises(MalformedPacket):
            parse_dump_line(broken)


def test_dump_line_cut_at_every_length() -> None:
    for cut in range(len(LINE) + 1):
        with contextlib.suppress(MalformedPacket):
            parse_dump_line(LINE[:cut])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_lines_raise_only_malformed(text: str) -> None:
    parse_log_header(text)
    with contextlib.suppress(MalformedPacket):
        parse_dump_line(text)
    with contextlib.suppress(MalformedPacket):
        parse_dump_line(text + " # RTP_DUMP")
    parse_rtpdump([HEADER, text, text + " # RTP_DUMP"], year=2026, zone=UTC)


# -- time repair --------------------------------------------------------------------------------


def test_header_time_is_used_and_checked() -> None:
    dump = parse_rtpdump([HEADER, "", LINE], year=2026, zone=UTC)
    (packet,) = dump.packets
    expected = datetime(2026, 11, 29, 22, 15, 2, 212865, tzinfo=UTC)
    assert packet.timestamp_ns == round(expected.timestamp() * 1e6) * 1000
    assert packet.time_mismatch_ms == 0 and dump.mismatched == 0
    assert packet.kind == "rtp" and packet.line_number == 3
    late = parse_rtpdump([HEADER, LINE.replace("02.212", "05.300")], year=2026, zone=UTC)
    assert late.packets[0].time_mismatch_ms == -3088 and late.mismatched == 1
    wrapped = parse_rtpdump(
        [HEADER.replace("221502.212865", "221559.999000"), LINE.replace("02.212", "00.001")],
        year=2026,
        zone=UTC,
    )
    assert wrapped.packets[0].time_mismatch_ms == -2  # across the minute


def test_zone_and_year() -> None:
    berlin = timezone(timedelta(hours=1))
    here = parse_rtpdump([HEADER, LINE], year=2026, zone=berlin).packets[0]
    utc = parse_rtpdump([HEADER, LINE], year=2026, zone=UTC).packets[0]
    assert utc.timestamp_ns - here.timestamp_ns == 3600 * 10**9
    december = HEADER.replace("1129/", "1231/")
    january = HEADER.replace("1129/", "0101/")
    turned = parse_rtpdump([december, LINE, january, LINE], year=2026, zone=UTC)
    first, second = (p.timestamp_ns for p in turned.packets)
    assert datetime.fromtimestamp(first / 1e9, UTC).year == 2026
    assert datetime.fromtimestamp(second / 1e9, UTC).year == 2027


def test_lines_without_a_header_are_skipped() -> None:
    dump = parse_rtpdump([LINE, "O 00:00:02.212 0000 zz # RTP_DUMP", HEADER, LINE], year=2026)
    assert len(dump.packets) == 1
    assert dump.skipped == {"no log header": 1, "malformed": 1}
    assert dump.outbound == 1 and dump.inbound == 0


def test_log_year_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text("")
    stamp = datetime(2027, 1, 2, 12, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    assert log_year(path, parse_log_header(HEADER)) == 2026  # a November header in January
    assert log_year(path, parse_log_header(HEADER.replace("1129/", "0101/"))) == 2027
    assert log_year(path, None) == 2027


# -- a real recording ---------------------------------------------------------------------------


def test_real_dump_matches_the_decrypted_capture(tmp_path: Path) -> None:
    """Chromium's own plaintext dump == the capture decrypted with the lab's keys, packet for
    packet; the repaired timestamps land within a few ms of the capture's."""
    out = tmp_path / "dump.pcapng"
    dump = import_rtpdump(LOG, out, year=_recording_year(), zone=UTC)  # the lab runs in UTC
    assert dump.skipped == {} and dump.mismatched == 0
    assert dump.outbound > 150 and dump.inbound >= 1
    assert max(abs(p.time_mismatch_ms) for p in dump.packets) <= 1
    decrypted = decrypt_capture(
        RECORDING / "capture.pcapng", load_keys_json(RECORDING / "keys.json"), decode=False
    )
    assert decrypted.failures == 0
    plain = decrypted.plaintext()
    browser = json.loads((RECORDING / "session.json").read_text())["network"]["browser"]
    captured: dict[bytes, list[tuple[int, bool]]] = defaultdict(list)
    for datagram in decrypted.datagrams:
        captured[plain[datagram.frame]].append(
            (datagram.timestamp_ns, datagram.src == browser["address"])
        )
    imported, damage, _ = read_media(out)
    assert damage is None
    assert len(imported) == len(decrypted.datagrams)
    offsets = []
    for datagram in imported:
        matches = captured[datagram.data]
        assert matches, f"dumped packet not in the capture: {datagram.data[:12].hex()}"
        timestamp, from_browser = matches.pop(0)
        assert from_browser == (datagram.src == DEFAULT_LOCAL[0])
        offsets.append((timestamp - datagram.timestamp_ns) / 1e6)
    assert not any(captured.values())
    assert max(abs(o) for o in offsets) < 10
    assert abs(float(np.median(offsets))) < 3


def test_imported_dump_feeds_the_stream_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "dump.pcapng"
    import_rtpdump(
        LOG,
        out,
        year=_recording_year(),
        zone=UTC,
        local=("10.1.1.1", 1000),
        remote=("10.1.1.2", 2000),
    )
    scan = scan_streams(out)
    (stream,) = scan.streams
    assert (stream.src, stream.src_port, stream.dst, stream.dst_port) == (
        "10.1.1.1",
        1000,
        "10.1.1.2",
        2000,
    )
    keys = load_keys_json(RECORDING / "keys.json")
    assert stream.ssrc in keys.keys[0].ssrcs
    assert stream.audio_level_packets == stream.packets
    assert scan.level.extension_id == 1
    with open_capture(out) as reader:  # the browser's side, recorded as the interface's address
        list(reader)
        assert [(i.name, i.addresses) for i in reader.interfaces] == [
            (RTPDUMP_INTERFACE, ("10.1.1.1",))
        ]


def test_imported_dump_decodes_to_the_same_audio(tmp_path: Path) -> None:
    """Plain RTP from the dump and SRTP from the capture decode to the same loudness."""
    out = tmp_path / "dump.pcapng"
    import_rtpdump(LOG, out, year=_recording_year(), zone=UTC)
    from_dump = decoded_loudness(out, KeySet(plaintext=True))
    from_capture = decoded_loudness(
        RECORDING / "capture.pcapng", load_keys_json(RECORDING / "keys.json")
    )
    ((dump_key, dump_series),) = from_dump.items()
    ((capture_key, capture_series),) = from_capture.items()
    assert dump_key.ssrc == capture_key.ssrc
    assert np.array_equal(dump_series.sequence_number, capture_series.sequence_number)
    assert np.array_equal(dump_series.dbfs, capture_series.dbfs)
    assert np.array_equal(dump_series.audio_level, capture_series.audio_level)
    assert np.max(np.abs(dump_series.timestamp_ns - capture_series.timestamp_ns)) < 10_000_000


def test_a_log_without_dumps_is_a_clear_error(tmp_path: Path) -> None:
    log = tmp_path / "chrome.log"
    log.write_text(HEADER + "\nnothing here\n")
    with pytest.raises(ValueError, match="no '# RTP_DUMP' packet"):
        import_rtpdump(log, tmp_path / "out.pcapng")
    log.write_text(LINE + "\n")
    with pytest.raises(ValueError, match="1 no log header"):
        import_rtpdump(log, tmp_path / "out.pcapng")
    assert DEFAULT_REMOTE != DEFAULT_LOCAL


# -- hostile logs (issue 13) ----------------------------------------------------------------------
def _dump_line(size: int) -> str:
    return "O 00:00:02.212 0000" + " 80" * size + " # RTP_DUMP"


def test_a_datagram_too_large_for_udp_is_counted_not_a_crash(tmp_path: Path) -> None:
    lines = [HEADER, _dump_line(MAX_UDP_PAYLOAD + 1), HEADER, _dump_line(MAX_UDP_PAYLOAD), LINE]
    dump = parse_rtpdump(lines, year=2026)
    assert dump.skipped == {"too large for UDP": 1}
    assert [len(p.data) for p in dump.packets] == [MAX_UDP_PAYLOAD, 20]
    log = tmp_path / "chrome.log"
    log.write_text("\n".join(lines) + "\n")
    import_rtpdump(log, tmp_path / "out.pcapng", year=2026)
    with open_capture(tmp_path / "out.pcapng") as reader:
        assert [len(f.data) for f in reader] == [14 + 20 + 8 + MAX_UDP_PAYLOAD, 14 + 20 + 8 + 20]


def test_log_lines_are_read_in_bounded_pieces() -> None:
    text = (HEADER + "\n" + "x" * (3 * MAX_LINE_BYTES) + "\r\n" + LINE + "\n").encode()
    lines = list(read_log_lines(io.BytesIO(text)))
    assert lines[0] == HEADER and lines[2] == LINE
    assert len(lines) == 3 and MAX_LINE_BYTES < len(lines[1]) <= MAX_LINE_BYTES + 1
    dump = parse_rtpdump(lines, year=2026)
    assert dump.skipped == {"line too long": 1} and len(dump.packets) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.just(HEADER),
            st.just(LINE),
            st.integers(0, 70_000).map(_dump_line),
            st.text(max_size=80),
            st.builds(lambda d: HEADER.replace("1129/", d), st.from_regex(r"\A\d{4}/\Z")),
        ),
        max_size=12,
    )
)
def test_arbitrary_logs_import_or_fail_cleanly(lines: list[str]) -> None:
    """Any mix of headers, dump lines of any size and noise: packets and counted skips only,
    and every packet kept can be written."""
    dump = parse_rtpdump(lines, year=2026)
    assert all(len(p.data) <= MAX_UDP_PAYLOAD for p in dump.packets)
    write_pcapng(dump, io.BytesIO())


def test_a_50_mb_dump_line_stays_bounded(tmp_path: Path) -> None:
    """It used to take 5.8 GB; now it is skipped, counted, under a 1 GiB address-space limit."""
    from helpers.bounded import run_bounded

    log = tmp_path / "chrome.log"
    with log.open("w") as out:
        out.write(HEADER + "\n" + "O 00:00:02.212 0000")
        chunk = " 80" * (1 << 20)
        for _ in range(17):  # ~53 MB
            out.write(chunk)
        out.write(" # RTP_DUMP\n" + HEADER + "\n" + LINE + "\n")
    result = run_bounded("import-rtpdump", str(log), "-o", str(tmp_path / "out.pcapng"))
    assert result.returncode == 0, result.stderr
    assert "1 packets" in result.stdout
    assert "skipped: 1 line too long" in result.stdout
