"""tshark as a peer: an alternative (slow) engine and the oracle of the differential tests.

tshark's RTP heuristic is off by default, so RTP shows as ``data`` unless told: this module
enables the UDP/STUN heuristics, or takes explicit ``decode-as`` ports.

The engine runs ``tshark -T fields`` itself rather than through pyshark: pyshark has no
field-selected output (its EK parser fails on ``-T ek -e ...``: no ``frame`` layer), so it
makes tshark print and parses the whole dissection of every frame. Measured on 2026-12-03
(2 shared cores, load 5-6, best of runs): building the table here took 0.78 s on
captures/chromium-ui-only (756 frames) and 4.4 s on a synthetic 20,000-packet capture, while
only iterating pyshark's packets (no field read yet) took 1.6 s / 15.3 s (``use_ek``), 2.0 s /
20.3 s (``use_json``) and 6.0 s (PDML, small capture): 2-8x slower. ``mutecheck streams
--engine tshark`` takes 1.6-1.8 s and 5.8 s on those captures. pyshark serves where a handful
of frames is dissected in full: :mod:`decoders.report.dissection`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

from decoders.errors import CaptureError
from decoders.wire.demux import PacketKind
from decoders.wire.rowbuild import KIND_CODES, TRANSPORT_CODES, TUNNEL_CODES, RowBuilder, Rows

FIELDS: tuple[str, ...] = (
    "frame.number",
    "frame.time_epoch",
    "frame.protocols",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "udp.srcport",
    "udp.dstport",
    "udp.length",
    "tcp.srcport",
    "tcp.dstport",
    "stun.channel",
    "rtp.p_type",
    "rtp.marker",
    "rtp.seq",
    "rtp.timestamp",
    "rtp.ssrc",
    "rtp.cc",
    "rtp.ext",
    "rtp.ext.len",
    "rtp.ext.profile",
    "rtp.padding",
    "rtp.padding.count",
    "rtp.payload",
    "rtp.ext.rfc5285.id",
    "rtp.ext.rfc5285.data",
    "rtcp.pt",
    "rtcp.senderssrc",
)
HEURISTICS = ("rtp_udp", "rtp_stun")
PREFERENCES: tuple[tuple[str, str], ...] = (("tcp.reassemble_out_of_order", "TRUE"),)
"""tshark preferences of mutecheck's dissection: TCP reassembly across reordered segments."""


def dissection_args(
    heuristics: Sequence[str] = HEURISTICS, preferences: Sequence[tuple[str, str]] = PREFERENCES
) -> list[str]:
    """The tshark arguments of mutecheck's dissection, shared by the tshark engine and the
    reports' dissection of findings' frames: ``--enable-heuristic rtp_udp ... -o name:value``."""
    args: list[str] = []
    for h in heuristics:
        args += ["--enable-heuristic", h]
    for name, value in preferences:
        args += ["-o", f"{name}:{value}"]
    return args


def tshark_path() -> str:
    path = shutil.which("tshark")
    if path is None:
        raise CaptureError("tshark is not installed (apt-get install tshark)")
    return path


def run_fields(
    capture: Path,
    fields: Sequence[str] = FIELDS,
    *,
    decode_as: Sequence[str] = (),
    heuristics: Sequence[str] = HEURISTICS,
    display_filter: str | None = None,
    options: Sequence[str] = (),
) -> Iterator[list[str]]:
    """Yield one list of field values per frame (multi-valued fields comma-separated).

    ``options`` go to tshark as they are (e.g. ``("-o", "rtp.heuristic_rtp:TRUE")``).
    """
    command = [tshark_path(), "-n", "-r", str(capture), "-T", "fields", "-E", "separator=\t"]
    command += list(options)
    command += ["-E", "occurrence=a", "-E", "aggregator=,"]
    command += dissection_args(heuristics, ())
    for d in decode_as:
        command += ["-d", d]
    if display_filter:
        command += ["-Y", display_filter]
    for f in fields:
        command += ["-e", f]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8"
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        yield line.rstrip("\n").split("\t")
    _, err = proc.communicate()
    if proc.returncode not in (0, 2):  # 2: tshark read a damaged capture partially
        raise CaptureError(
            f"tshark failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}"
        )


def epoch_ns(text: str) -> int:
    return int(Decimal(text) * 1_000_000_000)


def _first(value: str) -> str:
    return value.split(",")[-1] if value else ""


def scan_tshark(
    capture: Path, audio_level_id: int | None, *, srtp: bool = True
) -> tuple[Rows, Counter[str], str | None, int]:
    """Build the packet table from tshark's dissection: a row per RTP packet (several when TURN
    messages over TCP share a segment), else a row per frame with a datagram.

    With ``srtp`` (WebRTC media always is) the RTP padding count is not read, as the scalar
    path does not: SRTP encrypts it, and the packet's last byte (which tshark takes for the
    count) belongs to the auth tag.
    """
    builder = RowBuilder(audio_level_id, srtp=srtp)
    counters: Counter[str] = Counter()
    frames = 0
    for values in run_fields(capture, options=dissection_args((), PREFERENCES)):
        frames += 1
        v = dict(zip(FIELDS, values + [""] * (len(FIELDS) - len(values)), strict=True))
        for row in _frame_rows(v, audio_level_id, counters, srtp=srtp):
            builder.add_row(row)
    return builder.finish(), counters, None, frames


def _frame_rows(
    v: dict[str, str], audio_level_id: int | None, counters: Counter[str], *, srtp: bool
) -> list[dict[str, int | bool | str | None]]:
    """The rows of one frame's tshark fields (none when it holds no UDP/TCP datagram)."""
    protocols = v["frame.protocols"].split(":")
    src = _first(v["ip.src"]) or _first(v["ipv6.src"])
    dst = _first(v["ip.dst"]) or _first(v["ipv6.dst"])
    if "udp" in protocols:
        transport, sport, dport = "udp", v["udp.srcport"], v["udp.dstport"]
    elif "tcp" in protocols:
        transport, sport, dport = "tcp", v["tcp.srcport"], v["tcp.dstport"]
    else:
        counters["non-udp"] += 1
        return []
    if not (src and dst and sport and dport):
        counters["tshark.incomplete"] += 1
        return []
    kind = PacketKind.OTHER
    if "rtp" in protocols:
        kind = PacketKind.RTP
    elif "rtcp" in protocols:
        kind = PacketKind.RTCP
    elif "dtls" in protocols:
        kind = PacketKind.DTLS
    elif "stun" in protocols:
        kind = PacketKind.STUN
    row: dict[str, int | bool | str | None] = {
        "frame": int(v["frame.number"]),
        "timestamp_ns": epoch_ns(v["frame.time_epoch"]),
        "src": src,
        "dst": dst,
        "src_port": int(_first(sport)),
        "dst_port": int(_first(dport)),
        "transport": TRANSPORT_CODES.index(transport),
        "tunnel": TUNNEL_CODES.index("turn-channel" if v["stun.channel"] else None),
        "kind": KIND_CODES.index(kind),
        "malformed": "_ws.malformed" in protocols,
        "length": int(_first(v["udp.length"]) or 8) - 8 if transport == "udp" else 0,
        "extension_profile": -1,
        "audio_level": -1,
        "voice": False,
        "marker": False,
    }
    if kind is PacketKind.RTP and v["rtp.seq"]:
        return _rtp_rows(row, v, audio_level_id, counters, srtp=srtp)
    if kind is PacketKind.RTCP and v["rtcp.pt"]:
        row["payload_type"] = int(v["rtcp.pt"].split(",")[0])
        row["ssrc"] = int(v["rtcp.senderssrc"].split(",")[0] or "0", 0)
    return [row]


def _rtp_rows(
    row: dict[str, int | bool | str | None],
    v: dict[str, str],
    audio_level_id: int | None,
    counters: Counter[str],
    *,
    srtp: bool,
) -> list[dict[str, int | bool | str | None]]:
    """One row per RTP packet of the frame (multi-valued fields split per packet).

    Each packet's length is its header, its ``rtp.payload`` and the padding tshark took off;
    fields present only on some packets (extension profile and length, padding count) are
    handed out by the packet's X and P bits. When a frame holds several packets (coalesced
    TURN messages), tshark's header-extension element lists cannot be told apart per packet:
    those packets get no audio level (counted as ``tshark.extensions-unattributed``).
    """
    ssrcs = v["rtp.ssrc"].split(",")
    count = len(ssrcs)

    def each(name: str) -> list[str]:
        values = v[name].split(",") if v[name] else []
        return values if len(values) == count else [""] * count

    def listed(name: str) -> list[str]:
        return v[name].split(",") if v[name] else []

    extensions = iter(zip(listed("rtp.ext.profile"), listed("rtp.ext.len"), strict=False))
    paddings = iter(listed("rtp.padding.count"))
    payloads = v["rtp.payload"].split(",") if v["rtp.payload"] else []
    if count > 1:
        counters["tshark.extensions-unattributed"] += count
    rows = []
    for n in range(count):
        out = dict(row)
        cc = int(each("rtp.cc")[n] or 0)
        header = 12 + 4 * cc
        if _flag(each("rtp.ext")[n]):
            profile, words = next(extensions, ("", ""))
            if profile:
                out["extension_profile"] = int(profile, 0)
                out["extension_offset"] = header + 4
                out["extension_length"] = 4 * int(words or 0)
                header += 4 + 4 * int(words or 0)
        removed = int(next(paddings, "0") or 0) if _flag(each("rtp.padding")[n]) else 0
        if len(payloads) == count:  # the bytes tshark saw: header, payload, what it removed
            out["length"] = header + len(payloads[n].replace(":", "")) // 2 + removed
        elif v["stun.channel"]:  # an empty payload has no field: the ChannelData header
            out["length"] = max(0, int(out["length"] or 0) - 4)
        padding = 0 if srtp else removed
        out.update(
            payload_type=int(each("rtp.p_type")[n]),
            marker=_flag(each("rtp.marker")[n]),
            sequence_number=int(each("rtp.seq")[n]),
            rtp_timestamp=int(each("rtp.timestamp")[n]),
            ssrc=int(ssrcs[n], 0),
            csrc_count=cc,
            header_length=header,
            padding_length=padding,
            payload_length=max(0, int(out["length"] or 0) - header - padding),
        )
        if count == 1 and audio_level_id is not None and v["rtp.ext.rfc5285.id"]:
            _audio_level(out, v, audio_level_id)
        rows.append(out)
    return rows


def _flag(value: str) -> bool:
    return value in ("1", "True")


def _audio_level(
    row: dict[str, int | bool | str | None], v: dict[str, str], audio_level_id: int
) -> None:
    ids = v["rtp.ext.rfc5285.id"].split(",")
    data = v["rtp.ext.rfc5285.data"].split(",")
    for ident, blob in zip(ids, data, strict=False):
        if int(ident) == audio_level_id and blob:
            byte = int(blob.replace(":", "")[:2], 16)
            row["audio_level"] = byte & 0x7F
            row["voice"] = bool(byte & 0x80)
            break
