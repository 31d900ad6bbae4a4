"""Benchmark: hostile inputs against normal ones of the same size on disk (peak RSS and time).

Each bomb is a small file that used to cost gigabytes or minutes; each is run as the CLI runs
it (a child process; peak RSS from wait4) next to a normal input of about the same size on
disk, and the ratios are printed. Nothing here asserts: the tests bound memory with RLIMIT_AS.

    bomb                      command                      normal input of the same size
    gzip of zero records      streams BOMB.pcap.gz         synthetic WebRTC capture, gzip
    huge records (16 MB)      streams BOMB.pcap.gz         synthetic WebRTC capture, gzip
    10,000 mute windows       analyze CAPTURE --timeline   the same capture, one window
    a huge dump line (50 MB)  import-rtpdump LOG           a log of ordinary dump lines

    python bench/bench_bombs.py [--zeros-gb 1.5] [--windows 10000] [--line-mb 50]

The 10,000-window case measures decoders/session/timeline.py and the audit's per-window
measurement as they are on this branch (another change makes them linear).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_analyze import muted_window  # noqa: E402
from bench_streams import make_capture  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "bombs"
MAX_RECORD = 16 * 1024 * 1024
HEADER = "[5008:5121:1129/221502.212865:VERBOSE1:third_party/webrtc/pc/srtp_session.cc:549]"
DUMP = "O 00:00:02.212 0000 90 ef 65 69 ee 4f 9d 85 c4 83 53 4f be de 00 01 40 30 10 97"


def mutecheck() -> list[str]:
    found = shutil.which("mutecheck", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "decoders.cli"]


def run(command: list[str], timeout: float) -> tuple[float | None, int]:
    """Wall seconds (None when stopped at ``timeout``) and peak RSS (MiB) of one child; exit
    codes 0 and 2-5 are normal outcomes."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                return None, usage.ru_maxrss // 1024
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code not in (0, 2, 3, 4, 5):
            err.seek(0)
            raise SystemExit(f"{' '.join(command)} failed ({code}): {err.read().decode()[-500:]}")
    return elapsed, usage.ru_maxrss // 1024


def gzip_pcap(path: Path, records: list[tuple[int, int]]) -> Path:
    """A gzip pcap of (count, captured length) runs of zero-filled records, streamed."""
    if path.exists():
        return path
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 24)
    with path.open("wb") as out:
        out.write(packer.compress(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, MAX_RECORD, 1)))
        for count, length in records:
            head = struct.pack("<IIII", 0, 0, length, length)
            if length == 0:
                left = count * 16
                while left > 0:
                    out.write(packer.compress(zeros[: min(left, len(zeros))]))
                    left -= len(zeros)
                continue
            for _ in range(count):
                out.write(packer.compress(head))
                for start in range(0, length, len(zeros)):
                    out.write(packer.compress(zeros[: min(len(zeros), length - start)]))
        out.write(packer.flush())
    return path


def normal_gzip(size: int) -> Path:
    """A synthetic WebRTC capture, gzip-compressed to about ``size`` bytes."""
    probe = make_capture(20_000, "pcap")
    per_packet = len(gzip.compress(probe.read_bytes(), 6)) / 20_000
    packets = max(100, int(size / per_packet))
    plain = make_capture(packets, "pcap")
    path = CACHE / f"{plain.name}.gz"
    if not path.exists():
        with plain.open("rb") as src, gzip.open(path, "wb", 6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return path


def timeline(path: Path, packets: int, windows: int) -> Path:
    """``windows`` mute windows spread over the synthetic call (it lasts 5x its muted window)."""
    start, end = muted_window(packets)
    duration = (end - start) * 5
    first = start - duration * 0.3
    step = duration / windows
    muted = [[(first + i * step) / 1e9, (first + (i + 0.5) * step) / 1e9] for i in range(windows)]
    path.write_text(json.dumps({"version": 1, "clock": "epoch", "muted": muted}))
    return path


def dump_log(path: Path, *, line_mb: int, normal: bool) -> Path:
    if path.exists():
        return path
    with path.open("w") as out:
        if normal:  # ordinary lines until the same size
            block = (HEADER + "\n\n" + DUMP + " # RTP_DUMP\n") * 1000
            for _ in range(line_mb * (1 << 20) // len(block) + 1):
                out.write(block)
        else:
            out.write(HEADER + "\n\n" + DUMP)
            chunk = " 80" * ((1 << 20) // 3)  # 1 MiB of the line
            for _ in range(line_mb):
                out.write(chunk)
            out.write(" # RTP_DUMP\n" + HEADER + "\n\n" + DUMP + " # RTP_DUMP\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--zeros-gb", type=float, default=1.5, help="zero records, decompressed")
    parser.add_argument("--huge-records", type=int, default=96, help="16 MB records")
    parser.add_argument("--windows", type=int, default=10_000)
    parser.add_argument("--window-packets", type=int, default=200_000)
    parser.add_argument("--line-mb", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=300, help="seconds per run")
    parser.add_argument("--only", help="run only the bombs whose name contains this")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    cli = mutecheck()
    out = CACHE / "out.pcapng"
    cases: list[tuple[str, int, list[str], int, list[str]]] = []

    def size(*paths: Path) -> int:
        return sum(p.stat().st_size for p in paths)

    zeros = gzip_pcap(
        CACHE / f"zeros-{args.zeros_gb}.pcap.gz", [(int(args.zeros_gb * 1e9) // 16, 0)]
    )
    normal = normal_gzip(size(zeros))
    cases.append(("gzip of zero records", size(zeros), [*cli, "streams", str(zeros)],
                  size(normal), [*cli, "streams", str(normal)]))  # fmt: skip

    huge = gzip_pcap(CACHE / f"huge-{args.huge_records}.pcap.gz", [(args.huge_records, MAX_RECORD)])
    normal = normal_gzip(size(huge))
    cases.append(("huge records", size(huge), [*cli, "streams", str(huge)],
                  size(normal), [*cli, "streams", str(normal)]))  # fmt: skip

    capture = make_capture(args.window_packets, "pcap")
    many = timeline(CACHE / f"timeline-{args.windows}.json", args.window_packets, args.windows)
    one = timeline(CACHE / "timeline-1.json", args.window_packets, 1)
    analyze = [*cli, "analyze", str(capture), "--report", str(CACHE / "report.json")]
    cases.append((f"{args.windows:,} mute windows", size(capture, many),
                  [*analyze, "--timeline", str(many)],
                  size(capture, one), [*analyze, "--timeline", str(one)]))  # fmt: skip

    line = dump_log(CACHE / f"line-{args.line_mb}.log", line_mb=args.line_mb, normal=False)
    lines = dump_log(CACHE / f"lines-{args.line_mb}.log", line_mb=args.line_mb, normal=True)
    rtpdump = [*cli, "import-rtpdump", "-o", str(out), "--year", "2026"]
    cases.append((f"a {args.line_mb} MB dump line", size(line), [*rtpdump, str(line)],
                  size(lines), [*rtpdump, str(lines)]))  # fmt: skip

    print(f"{'bomb':<24} {'on disk':>9} {'time s':>8} {'RSS MiB':>8}   {'normal on disk':>14}"
          f" {'time s':>8} {'RSS MiB':>8}   {'time x':>7} {'RSS x':>6}")  # fmt: skip
    for name, bomb_size, bomb_cmd, normal_size, normal_cmd in cases:
        if args.only and args.only not in name:
            continue
        bomb_s, bomb_rss = run(bomb_cmd, args.timeout)
        normal_s, normal_rss = run(normal_cmd, args.timeout)
        took = f"{bomb_s:>8.2f}" if bomb_s is not None else f">{args.timeout:>7.0f}"
        ratio = f"{bomb_s / normal_s:>7.2f}" if bomb_s and normal_s else f"{'-':>7}"
        normal_took = f"{normal_s:>8.2f}" if normal_s is not None else f">{args.timeout:>7.0f}"
        print(
            f"{name:<24} {bomb_size / 1e6:>7.2f}MB {took} {bomb_rss:>8} "
            f"  {normal_size / 1e6:>12.2f}MB {normal_took} {normal_rss:>8} "
            f"  {ratio} {bomb_rss / max(normal_rss, 1):>6.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
