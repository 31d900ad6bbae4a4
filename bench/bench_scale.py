"""Benchmark: one long video call of 1, 5 and 20 million packets, memory and speed.

Builds (once, cached under build/scale/) a long WebRTC call: a 1,000,000-packet piece from the
generator of tests/helpers/synthetic.py (two audio streams at 50 packets/s with audio levels, a
30 fps video stream with its RTX stream, RTCP and STUN, the browser's audio muted from 30 % to
50 % of the piece), played 5 and 20 times in a row with every stream carried on (see
:func:`capture`). On each size it runs, in child processes of this worktree's code,

    mutecheck streams F --json --no-progress
    mutecheck analyze F --timeline T --local 10.77.0.1 --json --report R

(T: one mute window per piece) and prints wall time, packets/s, the peak RSS (getrusage of the
child), the peak anonymous memory (RssAnon of /proc/PID/status sampled every 20 ms: what the
machine must hold, without the file pages of a packet table spilled to disk, which the kernel
can drop and read again), and bytes per packet fitted over the sizes (least squares: memory =
fixed + bytes/packet x packets). On the smallest size it also times ``tshark -T fields`` (the
fields of bench/bench_streams.py) in the same run and prints the ratio. Timings come from this
machine in this run; nothing here asserts a time.

    python bench/bench_scale.py [--sizes 1000000,5000000,20000000] [--no-tshark]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic capture generator: tests/helpers/

from helpers import synthetic  # noqa: E402

CACHE = ROOT / "build" / "scale"
LOCAL = "10.77.0.1"  # the synthetic call's browser side (the muted one)
TSHARK_FIELDS = ("rtp.ssrc", "rtp.seq", "rtp.timestamp", "rtp.p_type", "rtp.ext.rfc5285.data")


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    peak_rss: int  # bytes
    peak_anon: int  # bytes


def warm(path: Path) -> None:
    """Read the file once, so that the first command timed does not pay for a cold disk
    alone (the page cache keeps what fits)."""
    with path.open("rb", buffering=0) as fo:
        while fo.read(16 << 20):
            pass


PIECE = 1_000_000
"""Packets of the generated piece a long call is tiled from."""
FRAME_PAYLOAD = 14 + 20 + 8  # the synthetic frames: Ethernet, IPv4 without options, UDP
CLOCKS = {synthetic.OPUS_PT: 48000, synthetic.VP8_PT: 90000, synthetic.RTX_PT: 90000}
VIDEO_SSRC = 0x0BADCAFE  # the synthetic call's video stream (RTX repeats its packets)


def piece() -> Path:
    """The generated 1,000,000-packet call (a few minutes of Python, once)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"webrtc-{PIECE}-rtx.pcap"
    if not path.exists():
        started = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb", buffering=1 << 20) as fo:
            synthetic.write(fo, synthetic.Options(packets=PIECE, rtx=True))
        tmp.rename(path)
        took = time.perf_counter() - started
        print(f"generated {path.name}: {path.stat().st_size / 1e9:.1f} GB in {took:.0f} s")
    return path


def piece_muted() -> tuple[float, float]:
    """The piece's muted window, epoch seconds (the generator sets it before any packet)."""
    truth = synthetic.SyntheticTruth()
    for _ in synthetic.datagrams(synthetic.Options(packets=PIECE, rtx=True), truth):
        break
    start, end = truth.muted_ns
    return start / 1e9, end / 1e9


def capture(packets: int) -> tuple[Path, list[tuple[float, float]]]:
    """A call of ``packets`` packets (a multiple of the piece) and its muted windows.

    The generator writes some 10,000-30,000 packets/s in Python, so a long call is the
    generated piece played ``packets / PIECE`` times in a row: each copy later by the piece's
    length, every RTP stream's sequence numbers, RTP timestamps (by the elapsed time at its
    clock rate) and the RTX stream's original sequence numbers carried on, so that each stream
    runs on without a jump; one mute window per copy (the user mutes once an hour). The moved
    packets' UDP checksums are set to 0 (none, RFC 768). Cached under build/scale/.
    """
    copies, rest = divmod(packets, PIECE)
    if rest or copies < 1:
        raise SystemExit(f"--sizes must be multiples of {PIECE:,}")
    base = piece()
    mute_from, mute_to = piece_muted()
    path = CACHE / f"webrtc-{packets}-rtx.pcap"
    plan_file = CACHE / "piece-shift.json"
    if copies > 1 and (not path.exists() or not plan_file.exists()):
        import numpy as np  # only to tile

        body = np.fromfile(base, np.uint8)[24:]
        plan = _tile_plan(base, body)
        plan_file.write_text(json.dumps({"shift_s": plan.shift_s}))
        started = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        with base.open("rb") as fo, tmp.open("wb") as out:
            out.write(fo.read(24))
            for k in range(copies):
                out.write(plan.copy(body, k).data)
        tmp.rename(path)
        took = time.perf_counter() - started
        print(f"tiled {path.name}: {path.stat().st_size / 1e9:.1f} GB in {took:.0f} s")
    if copies == 1:
        return base, [(mute_from, mute_to)]
    shift = float(json.loads(plan_file.read_text())["shift_s"])
    return path, [(mute_from + k * shift, mute_to + k * shift) for k in range(copies)]


@dataclass(frozen=True)
class TilePlan:
    """Where the fields that move from copy to copy are in the piece, and by how much."""

    seconds: Any  # offsets (into the records after the file header) of the time fields
    micros: Any
    shift_s: float
    rtp: Any  # offsets of the RTP headers
    seq_step: Any  # per RTP header: its stream's packets (sequence numbers per copy)
    ts_step: Any  # per RTP header: RTP timestamp ticks per copy
    rtx: Any  # offsets of the RTX packets' original sequence numbers
    rtx_step: int

    def copy(self, body: Any, k: int) -> Any:
        import numpy as np

        if k == 0:
            return body
        out = body.copy()
        stamp_us = _get(body, self.seconds, 4, "<") * 1_000_000 + _get(body, self.micros, 4, "<")
        stamp_us += round(self.shift_s * 1e6) * k
        _put(out, self.seconds, stamp_us // 1_000_000, 4, "<")
        _put(out, self.micros, stamp_us % 1_000_000, 4, "<")
        seq = _get(body, self.rtp + 2, 2) + k * self.seq_step
        _put(out, self.rtp + 2, seq & 0xFFFF, 2, ">")
        rtp_ts = _get(body, self.rtp + 4, 4) + k * self.ts_step
        _put(out, self.rtp + 4, rtp_ts & 0xFFFFFFFF, 4, ">")
        original = _get(body, self.rtx, 2) + k * self.rtx_step
        _put(out, self.rtx, original & 0xFFFF, 2, ">")
        _put(out, self.rtp - 2, np.zeros(self.rtp.size, np.int64), 2, ">")  # UDP checksum
        return out


def _get(body: Any, at: Any, size: int, order: str = ">") -> Any:
    import numpy as np

    value = np.zeros(at.size, np.int64)
    for byte in range(size):
        shift = 8 * (size - 1 - byte) if order == ">" else 8 * byte
        value |= body[at + byte].astype(np.int64) << shift
    return value


def _put(body: Any, at: Any, value: Any, size: int, order: str) -> None:
    for byte in range(size):
        shift = 8 * (size - 1 - byte) if order == ">" else 8 * byte
        body[at + byte] = (value >> shift) & 0xFF


def _tile_plan(base: Path, body: Any) -> TilePlan:
    """Read the piece once: its records, and mutecheck's packet table of it."""
    import numpy as np

    from decoders.wire.bulk import scan_file
    from decoders.wire.demux import PacketKind
    from decoders.wire.rowbuild import KIND_CODES

    headers = []
    at = 0
    view = memoryview(body)
    while at + 16 <= len(body):
        headers.append(at)
        at += 16 + int.from_bytes(view[at + 8 : at + 12], "little")
    record = np.array(headers, np.int64)
    with base.open("rb") as fo:
        table = scan_file(fo, synthetic.Options().audio_level_id).rows
    if len(table) != record.size:
        raise SystemExit("the piece has records that are not one datagram each")
    c = table.columns
    stamp_us = _get(body, record, 4, "<") * 1_000_000 + _get(body, record + 4, 4, "<")
    shift_s = (int(stamp_us.max()) - int(stamp_us.min())) / 1e6 + 0.02
    is_rtp = c["kind"] == KIND_CODES.index(PacketKind.RTP)
    payload = record + 16 + FRAME_PAYLOAD
    ssrc = c["ssrc"][is_rtp]
    seq_step = np.zeros(ssrc.size, np.int64)
    for value in np.unique(ssrc):
        members = ssrc == value
        seq_step[members] = int(members.sum())
    clocks = [CLOCKS[int(t)] for t in c["payload_type"][is_rtp].tolist()]
    rtx_rows = is_rtp & (c["ssrc"] == synthetic.RTX_SSRC)
    return TilePlan(
        seconds=record,
        micros=record + 4,
        shift_s=shift_s,
        rtp=payload[is_rtp],
        seq_step=seq_step,
        ts_step=np.array([round(shift_s * clock) for clock in clocks], np.int64),
        rtx=payload[rtx_rows] + c["header_length"][rtx_rows].astype(np.int64),
        rtx_step=int(((c["ssrc"] == VIDEO_SSRC) & is_rtp).sum()),
    )


def _anon_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fo:
            for line in fo:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def timed(command: list[str], ok: tuple[int, ...] = (0,)) -> Run:
    """Wall time, peak RSS and sampled peak anonymous memory of one child process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak_anon = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_anon
        while not done.wait(0.02):
            peak_anon = max(peak_anon, _anon_bytes(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        raise SystemExit(f"{' '.join(command[:4])} failed ({code}): {err.decode()[-800:]}")
    return Run(elapsed, int(usage.ru_maxrss) * 1024, peak_anon)


def fit(points: list[tuple[int, int]]) -> tuple[float, float]:
    """Least squares ``bytes = fixed + per_packet * packets``: (fixed, per_packet)."""
    if len(points) < 2:
        packets, size = points[0]
        return 0.0, size / packets
    n = len(points)
    mx = sum(p for p, _ in points) / n
    my = sum(b for _, b in points) / n
    sxx = sum((p - mx) ** 2 for p, _ in points)
    slope = sum((p - mx) * (b - my) for p, b in points) / sxx
    return my - slope * mx, slope


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000000,5000000,20000000")
    parser.add_argument("--no-tshark", action="store_true")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    python = [sys.executable, "-m", "decoders.cli"]
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"machine: {total / 2**30:.1f} GiB RAM, {os.cpu_count()} cores")
    results: dict[str, list[tuple[int, Run]]] = {"streams": [], "analyze": []}
    for packets in sizes:
        path, windows = capture(packets)
        warm(path)
        report = CACHE / f"report-{packets}.json"
        timeline = CACHE / f"timeline-{packets}.json"
        timeline.write_text(json.dumps({"muted": [list(w) for w in windows]}))
        commands = {
            "streams": [*python, "streams", str(path), "--json", "--no-progress"],
            "analyze": [
                *python, "analyze", str(path), "--timeline", str(timeline),
                "--local", LOCAL, "--json", "--report", str(report),
            ],
        }  # fmt: skip
        size_gb = path.stat().st_size / 1e9
        for name, command in commands.items():
            run = timed(command, ok=(0, 3, 4, 5))
            results[name].append((packets, run))
            print(
                f"{packets:>11,} packets {size_gb:5.1f} GB  {name:8s} {run.seconds:7.1f} s  "
                f"{packets / run.seconds:10,.0f} packets/s  peak RSS {run.peak_rss / 2**20:6.0f} "
                f"MiB ({100 * run.peak_rss / total:4.1f} % of RAM)  "
                f"peak anon {run.peak_anon / 2**20:6.0f} MiB"
            )
        if packets == sizes[0] and not args.no_tshark and shutil.which("tshark"):
            fields = [arg for field in TSHARK_FIELDS for arg in ("-e", field)]
            command = [
                "tshark", "-n", "-r", str(path), "-d", "udp.port==40404,rtp", "-T", "fields",
                *fields,
            ]  # fmt: skip
            theirs = timed(command)
            ours = results["streams"][-1][1]
            print(
                f"{packets:>11,} packets {size_gb:5.1f} GB  tshark   {theirs.seconds:7.1f} s  "
                f"{packets / theirs.seconds:10,.0f} packets/s  peak RSS "
                f"{theirs.peak_rss / 2**20:6.0f} MiB"
            )
            ratio = theirs.seconds / ours.seconds
            print(f"ratio mutecheck streams / tshark -T fields: {ratio:.1f}x")
    for name, runs in results.items():
        fixed, per = fit([(p, r.peak_rss) for p, r in runs])
        fixed_a, per_a = fit([(p, r.peak_anon) for p, r in runs])
        print(
            f"{name:8s} peak RSS  = {fixed / 2**20:5.0f} MiB + {per:6.1f} bytes/packet; "
            f"peak anon = {fixed_a / 2**20:5.0f} MiB + {per_a:6.1f} bytes/packet"
        )


if __name__ == "__main__":
    main()
