"""The bulk (numpy) path must mean exactly what the scalar path means, on every packet."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.corpus import browser_audio_ssrcs, call_shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoders.errors import CaptureError
from decoders.session.sdp import audio_level_extension_id, parse_sdp
from decoders.wire import bulk
from decoders.wire.bulk import scan_file
from decoders.wire.demux import PacketKind
from decoders.wire.rowbuild import COLUMNS, KIND_CODES, TUNNEL_CODES, Rows, scan_scalar

VARIANTS: list[dict[str, Any]] = [
    {},
    {"link": "vlan"},
    {"link": "qinq"},
    {"link": "sll"},
    {"link": "sll2"},
    {"link": "raw"},
    {"link": "ipv4"},
    {"link": "null"},
    {"ipv6": True},
    {"ipv6": True, "link": "sll2"},
    {"format": "pcap-ns"},
    {"format": "pcap-be"},
    {"format": "pcapng"},
    {"format": "pcapng-be"},
    {"format": "pcapng-2if"},
    {"transport": "ice-tcp"},
    {"transport": "ice-tcp", "ipv6": True, "format": "pcapng"},
    {"transport": "turn"},
    {"transport": "turn", "link": "sll"},
    *({"transport": "turn-tcp", "segments": m} for m in ("own", "coalesced", "split", "resent")),
    {"transport": "turn-tcp", "segments": "mid-stream", "ipv6": True},
    {"transport": "ice-tcp", "segments": "mid-stream"},
    {"transport": "turn-tls"},
    {"transport": "turn-tls", "segments": "mid-stream"},
    {"audio_level_id": 5},
]


def variant_id(v: dict[str, Any]) -> str:
    return "-".join(f"{k}={val}" for k, val in v.items()) or "baseline"


def assert_same_rows(a: Rows, b: Rows) -> None:
    assert len(a) == len(b)
    for name in COLUMNS:
        if name in ("src", "dst"):
            left = [a.addresses[i] for i in a.columns[name]]
            right = [b.addresses[i] for i in b.columns[name]]
            assert left == right, name
        else:
            mismatch = np.nonzero(a.columns[name] != b.columns[name])[0]
            first = mismatch[:5]
            assert mismatch.size == 0, (
                f"column {name} differs at rows {first.tolist()}: "
                f"{a.columns[name][first].tolist()} != {b.columns[name][first].tolist()}"
            )


#: the C decoder when it was built, and always the numpy one
DECODERS = [True, False] if bulk.ACCELERATED else [False]


def both(data: bytes, level_id: int | None, chunk_size: int = 1 << 20) -> tuple[Rows, Rows]:
    """The bulk rows (each decoder, checked equal) and the scalar rows of one capture."""
    rows, _counters, damage, frames = scan_scalar(io.BytesIO(data), level_id)
    results = [
        scan_file(io.BytesIO(data), level_id, chunk_size=chunk_size, use_c=c) for c in DECODERS
    ]
    for fast in results:
        assert fast.frames == frames
        assert fast.damage is None and damage is None
        assert +fast.counters == +_counters
    if len(results) == 2:
        assert_same_rows(results[0].rows, results[1].rows)
    return results[-1].rows, rows


def test_real_sessions_agree(session_dir: Path) -> None:
    sdp = parse_sdp((session_dir / "offer.sdp").read_text())
    level_id = audio_level_extension_id(sdp)
    data = (session_dir / "capture.pcapng").read_bytes()
    fast, scalar = both(data, level_id)
    assert_same_rows(fast, scalar)
    if not call_shape(session_dir).rtp_readable:
        # TURN over TLS: one row per TLS record (content type, body length), and no RTP row;
        # both paths agree on those rows above
        assert set(fast.columns["kind"].tolist()) == {KIND_CODES.index(PacketKind.TLS)}
        assert (fast.columns["payload_type"] == 23).sum() > 600  # application data
        assert (fast.columns["audio_level"] >= 0).sum() == 0
        return
    # and the audio level really was decoded on the browser's stream
    browser = np.isin(fast.columns["ssrc"], list(browser_audio_ssrcs(session_dir)))
    assert (fast.columns["audio_level"][browser] >= 0).sum() > 100


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_synthetic_variants_agree(variant: dict[str, Any], make_synthetic: Any) -> None:
    data, truth = make_synthetic(packets=1500, **variant)
    fast, scalar = both(data, truth.audio_level_id)
    assert_same_rows(fast, scalar)


def test_chunk_boundaries_do_not_matter(make_synthetic: Any) -> None:
    for fmt in ("pcap", "pcapng"):
        data, truth = make_synthetic(packets=1500, format=fmt)
        whole = scan_file(io.BytesIO(data), truth.audio_level_id).rows
        small = scan_file(io.BytesIO(data), truth.audio_level_id, chunk_size=4096).rows
        assert_same_rows(whole, small)


def test_gzip_capture(make_synthetic: Any) -> None:
    data, truth = make_synthetic(packets=800)
    plain = scan_file(io.BytesIO(data), truth.audio_level_id)
    packed = scan_file(io.BytesIO(gzip.compress(data)), truth.audio_level_id)
    assert_same_rows(plain.rows, packed.rows)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_truncated_capture_keeps_what_came_before(fmt: str, make_synthetic: Any) -> None:
    data, truth = make_synthetic(packets=600, format=fmt)
    cut = data[: len(data) - 37]
    fast = scan_file(io.BytesIO(cut), truth.audio_level_id)
    rows, _, damage, frames = scan_scalar(io.BytesIO(cut), truth.audio_level_id)
    assert fast.damage is not None and "truncated" in fast.damage
    assert damage is not None
    assert fast.frames == frames == truth.frames - 1
    assert_same_rows(fast.rows, rows)


def test_not_a_capture() -> None:
    with pytest.raises(CaptureError, match="not a pcap or pcapng"):
        scan_file(io.BytesIO(b"GET / HTTP/1.1\r\n\r\n"), None)
    with pytest.raises(CaptureError, match="empty"):
        scan_file(io.BytesIO(b""), None)


def _udp_capture(payloads: list[bytes]) -> bytes:
    from decoders.wire.capture import LINKTYPE_ETHERNET
    from decoders.wire.pcapwriter import PcapWriter, build_udp_frame

    out = io.BytesIO()
    writer = PcapWriter(out, LINKTYPE_ETHERNET, nanosecond=True)
    for i, payload in enumerate(payloads):
        frame = build_udp_frame(LINKTYPE_ETHERNET, "10.0.0.1", 5000, "10.0.0.2", 6000, payload)
        writer.write(1_700_000_000_000_000_000 + i * 20_000_000, frame)
    return out.getvalue()


rtp_like = st.builds(
    lambda first, second, rest, ext: bytes([first, second]) + rest[:10] + ext + rest[10:],
    st.integers(0x80, 0xBF),
    st.integers(0, 255),
    st.binary(min_size=0, max_size=40),
    st.one_of(
        st.just(b""),
        st.builds(
            lambda words, body: b"\xbe\xde" + bytes([0, words]) + body,
            st.integers(0, 3),
            st.binary(min_size=0, max_size=14),
        ),
        st.builds(
            lambda words, body: b"\x10\x00" + bytes([0, words]) + body,
            st.integers(0, 3),
            st.binary(min_size=0, max_size=14),
        ),
    ),
)
any_payload = st.one_of(
    rtp_like,
    st.binary(min_size=0, max_size=48),
    st.builds(
        lambda n, body: bytes([0x40, 0x00]) + n.to_bytes(2, "big") + body,
        st.integers(0, 60),
        rtp_like,
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(any_payload, min_size=1, max_size=30), st.booleans(), st.sampled_from([None, 1, 2, 14])
)
def test_property_fast_equals_scalar_on_arbitrary_datagrams(
    payloads: list[bytes], srtp: bool, level_id: int | None
) -> None:
    data = _udp_capture(payloads)
    rows, counters, _, _ = scan_scalar(io.BytesIO(data), level_id, srtp=srtp)
    for use_c in DECODERS:
        fast = scan_file(io.BytesIO(data), level_id, srtp=srtp, use_c=use_c)
        assert_same_rows(fast.rows, rows)
        assert +fast.counters == +counters


FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "captures").glob("*.pcap*"))


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_reader_fixtures_agree(fixture: Path) -> None:
    """Every reader fixture (odd blocks, damage, link types, TCP) means the same to both."""
    data = fixture.read_bytes()
    rows, counters, damage, frames = scan_scalar(io.BytesIO(data), 1)
    for use_c in DECODERS:
        fast = scan_file(io.BytesIO(data), 1, use_c=use_c)
        assert_same_rows(fast.rows, rows)
        assert (fast.damage is None) == (damage is None), (fast.damage, damage)
        assert +fast.counters == +counters
        assert fast.frames == frames


@pytest.mark.parametrize("segments", ["mixed", "mid-stream"])
def test_turn_over_tls_gives_one_row_per_record(segments: str, make_synthetic: Any) -> None:
    data, truth = make_synthetic(packets=800, transport="turn-tls", segments=segments)
    fast, scalar = both(data, truth.audio_level_id)
    assert_same_rows(fast, scalar)
    tls = fast["kind"] == KIND_CODES.index(PacketKind.TLS)
    application = tls & (fast["payload_type"] == 23)
    assert int(application.sum()) == truth.datagrams  # one record per relayed packet
    assert not (fast["kind"] == KIND_CODES.index(PacketKind.RTP)).any()
    assert (fast["tunnel"][tls] == TUNNEL_CODES.index("tls")).all()
    # each record: the padded ChannelData message (4 + packet + padding) + 24 bytes
    assert (fast["length"][application] % 4 == 0).all()


# -- capture headers and options: one meaning for both engines (issue 13) ----------------------
def _block(order: str, block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(order + "II", block_type, total) + body + struct.pack(order + "I", total)


def _option(order: str, code: int, value: bytes, declared: int | None) -> bytes:
    length = len(value) if declared is None else declared
    return struct.pack(order + "HH", code, length) + value + bytes(-len(value) % 4)


def _frame(link: int, seed: int) -> bytes:
    from decoders.wire.pcapwriter import build_udp_frame

    payload = bytes([0x80, 0x6F, 0, seed & 0xFF]) + bytes(8) + bytes(range(seed % 40))
    if link in (1, 101, 113, 228):
        return build_udp_frame(link, "10.0.0.1", 5000, "10.0.0.2", 6000, payload)
    return payload


options = st.lists(
    st.tuples(
        st.one_of(st.sampled_from([0, 1, 2, 4, 5, 9, 14]), st.integers(0, 0xFFFF)),
        st.one_of(
            st.binary(max_size=20),
            st.integers(0, 255).map(lambda b: bytes([b])),  # if_tsresol: any byte
            st.integers(-(2**63), 2**63 - 1).map(lambda v: struct.pack("<q", v)),
        ),
        st.one_of(st.none(), st.none(), st.integers(0, 0xFFFF)),  # a corrupt length
    ),
    max_size=4,
)
packets = st.lists(
    st.tuples(
        st.integers(0, 2),  # interface id (2 may be undescribed)
        st.one_of(  # timestamp high word: realistic, or anything
            st.just(0x5F5E1), st.integers(0, 2**32 - 1)
        ),
        st.integers(0, 2**32 - 1),
        st.integers(0, 60),  # frame seed
        st.sampled_from(["epb", "epb", "spb", "pb", "cut"]),
    ),
    max_size=6,
)


@st.composite
def pcapng_files(draw: st.DrawFn) -> bytes:
    order = draw(st.sampled_from(["<", ">"]))
    version = draw(st.sampled_from([1, 1, 1, 2]))
    shb_body = struct.pack(order + "IHHq", 0x1A2B3C4D, version, 0, -1)
    shb_body += b"".join(_option(order, *o) for o in draw(options))
    data = _block(order, 0x0A0D0D0A, shb_body)
    links = []
    for _ in range(draw(st.integers(0, 2))):
        link = draw(st.sampled_from([1, 101, 113, 228, 147, 0xFFFF]))
        links.append(link)
        body = struct.pack(order + "HHI", link, 0, draw(st.sampled_from([0, 10, 65535])))
        body += b"".join(_option(order, *o) for o in draw(options))
        data += _block(order, 1, body)
    for interface, high, low, seed, kind in draw(packets):
        frame = _frame(links[interface] if interface < len(links) else 1, seed)
        if kind == "spb":
            data += _block(order, 3, struct.pack(order + "I", len(frame)) + frame)
        elif kind == "pb":
            head = struct.pack(order + "HHIIII", interface, 0, high, low, len(frame), len(frame))
            data += _block(order, 2, head + frame)
        else:
            head = struct.pack(order + "IIIII", interface, high, low, len(frame), len(frame))
            block = _block(order, 6, head + frame)
            data += block[: len(block) // 2] if kind == "cut" else block
    return data


@st.composite
def pcap_files(draw: st.DrawFn) -> bytes:
    magic = draw(st.sampled_from(["d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d"]))
    order = "<" if magic in ("d4c3b2a1", "4d3cb2a1") else ">"
    link = draw(st.sampled_from([1, 101, 113, 228, 0, 108, 276, 147, 0xFFFF]))
    header = bytes.fromhex(magic) + struct.pack(
        order + "HHiIII",
        draw(st.integers(0, 0xFFFF)),
        draw(st.integers(0, 0xFFFF)),
        draw(st.integers(-(2**31), 2**31 - 1)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.integers(0, 2**32 - 1)),
        link | (draw(st.integers(0, 0xFFFF)) << 16),
    )
    data = header
    for _interface, seconds, fraction, seed, kind in draw(packets):
        frame = _frame(link, seed)
        length = len(frame) if kind != "cut" else draw(st.integers(0, 2**32 - 1))
        data += struct.pack(order + "IIII", seconds, fraction, length, len(frame)) + frame
    return data


def _agree(data: bytes) -> None:
    try:
        rows, counters, damage, frames = scan_scalar(io.BytesIO(data), 1)
    except CaptureError:
        for use_c in DECODERS:
            with pytest.raises(CaptureError):
                scan_file(io.BytesIO(data), 1, use_c=use_c)
        return
    for use_c in DECODERS:
        for chunk in (1 << 20, 64):
            fast = scan_file(io.BytesIO(data), 1, use_c=use_c, chunk_size=chunk)
            assert (fast.damage is None) == (damage is None), (fast.damage, damage)
            assert fast.frames == frames
            assert_same_rows(fast.rows, rows)
            assert +fast.counters == +counters


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(pcapng_files(), pcap_files()), st.booleans())
def test_property_capture_headers_and_options_mean_the_same_to_both(
    data: bytes, packed: bool
) -> None:
    """Any SHB, IDB options (if_tsresol of every byte, if_tsoffset, corrupt lengths), packet
    blocks and pcap headers: both engines read the same frames, rows, counters and damage,
    plain or gzip-compressed, and nothing raises but CaptureError."""
    _agree(gzip.compress(data, mtime=0) if packed else data)


def _pcapng(idb_options: bytes, packets: int, *, high: int = 0x5F5E1, block: bytes = b"") -> bytes:
    shb = _block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block("<", 1, struct.pack("<HHI", 1, 0, 65535) + idb_options)
    epbs = b""
    for i in range(packets):
        frame = _frame(1, i)
        epbs += _block("<", 6, struct.pack("<IIIII", 0, high, i, len(frame), len(frame)) + frame)
    return shb + idb + block + epbs


@pytest.mark.parametrize(
    ("data", "frames", "damage"),
    [
        # an option longer than its block (tshark: "Not enough data to handle option"): 0 frames
        (_pcapng(_option("<", 2, b"eth0", 100), 35), 0, "corrupt options"),
        # if_tsresol of 2^-63 and finer, 10^-30: exact times, no OverflowError
        *((_pcapng(_option("<", 9, bytes([0x80 | e]), None), 35), 35, None) for e in (63, 64, 127)),
        (_pcapng(_option("<", 9, bytes([30]), None), 35), 35, None),
        # if_tsoffset far in the future: times past int64 nanoseconds are damage
        (
            _pcapng(_option("<", 14, struct.pack("<q", 2**62), None), 35),
            0,
            "timestamp out of range",
        ),
        # a block claiming 4 GB: corruption, never a reason to buffer it
        (_pcapng(b"", 5, block=struct.pack("<II", 0xBAD0, 0xFFFFFFF0) + bytes(64)), 0, "corrupt"),
        # a second section of pcapng version 2, or with a wrong byte-order magic: both engines
        # read section headers through capture.py's functions and say the same thing
        (
            _pcapng(b"", 3)
            + _block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 2, 0, -1))
            + _pcapng(b"", 2),
            3,
            "unsupported pcapng version 2 in section header block at byte",
        ),
        (
            _pcapng(b"", 3)
            + _block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x11223344, 1, 0, -1))
            + _pcapng(b"", 2),
            3,
            "bad byte-order magic 0x44332211 in section header block at byte",
        ),
    ],
)
def test_damaged_interfaces_mean_the_same_to_both(
    data: bytes, frames: int, damage: str | None
) -> None:
    _agree(data)
    _, _, scalar_damage, scalar_frames = scan_scalar(io.BytesIO(data), 1)
    assert scalar_frames == frames
    assert (scalar_damage is None) == (damage is None)
    if damage is not None:
        assert damage in str(scalar_damage)
        assert damage in str(scan_file(io.BytesIO(data), 1).damage)


def test_fine_timestamp_resolution_is_exact() -> None:
    """2^-64 s ticks: ticks * 10^9 / 2^64 ns, rounded down, in both engines."""
    data = _pcapng(_option("<", 9, bytes([0x80 | 64]), None), 3, high=0xFFFFFFFF)
    expected = [((0xFFFFFFFF << 32 | i) * 10**9) >> 64 for i in range(3)]
    rows, _, damage, _ = scan_scalar(io.BytesIO(data), 1)
    assert damage is None
    assert rows.columns["timestamp_ns"].tolist() == expected
    for use_c in DECODERS:
        fast = scan_file(io.BytesIO(data), 1, use_c=use_c)
        assert fast.rows.columns["timestamp_ns"].tolist() == expected


def test_many_empty_records_cost_no_python_call_apiece() -> None:
    """Frames too short for their link are counted as the scalar path counts them."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    data = header + bytes(16 * 200_000)
    _, counters, _, frames = scan_scalar(io.BytesIO(data), 1)
    for use_c in DECODERS:
        fast = scan_file(io.BytesIO(data), 1, use_c=use_c)
        assert fast.frames == frames == 200_000
        assert +fast.counters == +counters == {"malformed.ethernet": 200_000}
    unknown = header[:20] + struct.pack("<I", 147) + bytes(16 * 1000)
    assert scan_file(io.BytesIO(unknown), 1).counters == {"link.unsupported": 1000}


def test_gzip_bomb_of_empty_records_stays_bounded(tmp_path: Path) -> None:
    """300 MB of zero-length records in 0.3 MB of gzip: the CLI reads it under a 512 MiB
    address-space limit (it used to inflate a megabyte of input into a gigabyte at once)."""
    from helpers.bounded import run_bounded, write_gzip_zero_records

    bomb = tmp_path / "bomb.pcap.gz"
    write_gzip_zero_records(bomb, 300_000_000)
    result = run_bounded("streams", str(bomb), limit=512 << 20)
    assert result.returncode == 0, result.stderr
    assert "18750000 frames" in result.stdout
    assert "malformed.ethernet 18750000" in result.stdout


def test_plain_file_of_empty_records_stays_bounded(tmp_path: Path) -> None:
    """The up-front row reservation follows what a file could hold, capped: 100 MB of empty
    records run under a 512 MiB address-space limit (they used to reserve 590 MB)."""
    from helpers.bounded import run_bounded

    capture = tmp_path / "empty.pcap"
    with capture.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for _ in range(25):
            out.write(bytes(4_000_000))
    result = run_bounded("streams", str(capture), limit=512 << 20)
    assert result.returncode == 0, result.stderr
    assert "malformed.ethernet 6250000" in result.stdout
