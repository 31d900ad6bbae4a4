"""Benchmark: `mutecheck streams` against tshark on the same synthetic capture, same run.

Generates (once, cached) a realistic WebRTC capture of 1,000,000 packets - two audio streams
at 50 packets/s with audio-level extensions, a video stream with large payloads, STUN and RTCP
interleaved - as classic pcap and as pcapng, then times the full per-packet extraction of
`mutecheck streams` and of

    tshark -r F -d udp.port==P,rtp -T fields -e rtp.ssrc -e rtp.seq -e rtp.timestamp
           -e rtp.p_type -e rtp.ext.rfc5285.data

printing packets/s for each, the ratio, and the peak RSS of each process. Timings come from
this machine in this run only; nothing here asserts a time.

    python bench/bench_streams.py [--packets N] [--repeat K] [--no-tshark]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic capture generator: tests/helpers/

from helpers import synthetic  # noqa: E402

CACHE = ROOT / "bench" / ".cache"


def make_capture(packets: int, fmt: str) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    suffix = "pcapng" if fmt.startswith("pcapng") else "pcap"
    path = CACHE / f"webrtc-{packets}-{fmt}.{suffix}"
    if not path.exists():
        started = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fo:
            synthetic.write(fo, synthetic.Options(packets=packets, format=fmt))  # type: ignore[arg-type]
        tmp.rename(path)
        took = time.perf_counter() - started
        print(f"generated {path.name}: {path.stat().st_size / 1e6:.0f} MB in {took:.1f} s")
    return path


def timed(command: list[str]) -> tuple[float, int, bytes]:
    """Wall seconds, peak RSS (KiB) and stdout of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = b"", b""
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0,):
        raise SystemExit(f"{command[0]} failed ({proc.returncode}): {err.decode()[-500:]}")
    return elapsed, int(usage.ru_maxrss), out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of mutecheck; the best counts")
    parser.add_argument("--no-tshark", action="store_true")
    args = parser.parse_args()
    mutecheck = shutil.which("mutecheck", path=str(Path(sys.executable).parent)) or "mutecheck"
    from decoders.wire import bulk, walk

    walker = "C extension" if walk.ACCELERATED else "pure Python (extension not built)"
    decoder = "C single pass" if bulk.ACCELERATED else "numpy (C decoder not available)"
    print(f"record walker: {walker}; packet decoder: {decoder}")
    results: list[tuple[str, float, float, float | None]] = []
    for fmt in ("pcap", "pcapng"):
        path = make_capture(args.packets, fmt)
        size_mb = path.stat().st_size / 1e6
        best = float("inf")
        rss = 0
        for _ in range(args.repeat):
            command = [mutecheck, "streams", str(path), "--json", "--no-progress"]
            seconds, peak, _ = timed(command)
            best = min(best, seconds)
            rss = max(rss, peak)
        ours = args.packets / best
        print(
            f"{fmt:7s} {size_mb:6.0f} MB  mutecheck streams: {best:6.2f} s  "
            f"{ours:12,.0f} packets/s  peak RSS {rss / 1024:6.0f} MiB"
        )
        ratio: float | None = None
        if not args.no_tshark and shutil.which("tshark"):
            command = [
                "tshark", "-n", "-r", str(path), "-d", "udp.port==40404,rtp", "-T", "fields",
                "-e", "rtp.ssrc", "-e", "rtp.seq", "-e", "rtp.timestamp", "-e", "rtp.p_type",
                "-e", "rtp.ext.rfc5285.data",
            ]  # fmt: skip
            seconds, peak, _ = timed(command)
            theirs = args.packets / seconds
            ratio = ours / theirs
            print(
                f"{fmt:7s} {size_mb:6.0f} MB  tshark -T fields:  {seconds:6.2f} s  "
                f"{theirs:12,.0f} packets/s  peak RSS {peak / 1024:6.0f} MiB"
            )
            print(f"{fmt:7s} ratio mutecheck/tshark: {ratio:.1f}x")
        results.append((fmt, best, ours, ratio))
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"(bench driver peak RSS {self_rss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
