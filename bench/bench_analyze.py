"""Benchmark: `mutecheck analyze` with a timeline against `mutecheck streams`, same capture.

Uses the 1,000,000-packet synthetic capture of bench/bench_streams.py (generated once, cached)
and its muted window (30 % to 50 % into the call, the browser's audio stream; the muted side is
10.77.0.1). Times the best of --repeat runs of each command as a child process and prints both
and the ratio; the target is analyze <= 1.5x streams. Nothing here asserts a time.

    python bench/bench_analyze.py [--packets N] [--repeat K] [--format pcap|pcapng]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic capture generator: tests/helpers/
sys.path.insert(0, str(ROOT / "bench"))

from bench_streams import make_capture  # noqa: E402
from helpers import synthetic  # noqa: E402

TARGET = 1.5


def commands() -> tuple[list[str], list[str]]:
    """How to run `streams` and `analyze`: the installed entry point when it has both."""
    mutecheck = shutil.which("mutecheck", path=str(Path(sys.executable).parent))
    if mutecheck:
        probe = subprocess.run([mutecheck, "analyze", "--help"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [mutecheck, "streams"], [mutecheck, "analyze"]
    python = sys.executable
    return [python, "-m", "decoders.cli", "streams"], [python, "-m", "decoders.cli", "analyze"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--format", default="pcap", choices=("pcap", "pcapng"))
    args = parser.parse_args()
    path = make_capture(args.packets, args.format)
    streams_cmd, analyze_cmd = commands()
    start_ns, end_ns = muted_window(args.packets)
    muted = f"{start_ns / 1e9:.6f}-{end_ns / 1e9:.6f}"
    report = ROOT / "bench" / ".cache" / "bench-report.json"
    runs = {
        "streams": [*streams_cmd, str(path), "--json", "--no-progress"],
        "analyze": [
            *analyze_cmd,
            str(path),
            "--muted",
            muted,
            "--local",
            "10.77.0.1",
            "--json",
            "--report",
            str(report),
        ],
    }
    best: dict[str, float] = {}
    rss: dict[str, int] = {}
    for name, command in runs.items():
        for _ in range(args.repeat):
            seconds_taken, peak = timed(command)
            best[name] = min(best.get(name, float("inf")), seconds_taken)
            rss[name] = max(rss.get(name, 0), peak)
        print(
            f"{name:8s} {best[name]:6.2f} s  {args.packets / best[name]:12,.0f} packets/s  "
            f"peak RSS {rss[name] / 1024:6.0f} MiB   ({' '.join(command[-6:])})"
        )
    ratio = best["analyze"] / best["streams"]
    verdict = "within" if ratio <= TARGET else "OVER"
    print(f"ratio analyze/streams: {ratio:.2f}x ({verdict} the {TARGET}x target)")


def muted_window(packets: int) -> tuple[int, int]:
    """The synthetic call's muted window (epoch ns): its generator sets it before any packet."""
    truth = synthetic.SyntheticTruth()
    for _ in synthetic.datagrams(synthetic.Options(packets=packets), truth):
        break
    return truth.muted_ns


def timed(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process; exit codes 0-5 are verdicts."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3, 4, 5):
        raise SystemExit(f"{' '.join(command[:3])} failed ({code}): {err.decode()[-500:]}")
    return elapsed, int(usage.ru_maxrss)


if __name__ == "__main__":
    main()
