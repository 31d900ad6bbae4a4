"""Benchmark: `mutecheck batch` over a corpus, serially and with 2 worker processes.

Builds a corpus (cached in bench/.cache/): every committed lab session of captures/ plus
synthetic session folders up to --sessions (default 200), --hours of them (default 3) 1-hour
calls. A synthetic session is a capture of tests/helpers/synthetic.py (two audio streams,
video, RTCP, STUN, DTLS; 4,000 to 16,000 packets, seeded per session; a 1-hour call is
1,044,000 packets, 290 a second), its mute window as timeline.json and the browser's address
in session.json, so each one is judged like a lab call. Then runs the batch --repeat
times (2) each way, alternated, each in a fresh child process and a fresh output folder
(nothing skipped): Dask's synchronous scheduler (serial, in that process) and its local
process scheduler with 2 workers; the best run of each counts. Prints
sessions/minute for both, their ratio (target >= 1.7 on 2 cores) and the peak RSS of each
worker process. Nothing here asserts a time; on a shared machine the ratio moves with the load,
so the same is measured for pure CPU work first (a busy loop in 1 process, then in 2 at once):
the speed-up the machine itself gives 2 processes at that moment, to read the batch's against.

    python bench/bench_batch.py [--sessions N] [--hours H] [--workers K] [--repeat R]
                                [--extra PATH ...]

--extra PATH (repeatable) adds what is at PATH (session folders, captures, folders of them)
to both runs as it is: the hook for long captures (e.g. 1-hour calls, a 20-million-packet
capture) whose own generator lives elsewhere. Their sessions are counted with the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic capture generator: tests/helpers/

from helpers import synthetic  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
TARGET = 1.7
BROWSER = "10.77.0.1"
"""The synthetic call's browser side (tests/helpers/synthetic.py), which the mute window mutes."""


def lab_sessions() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "captures").glob("*/capture.pcap*"))


HOUR_PACKETS = 290 * 3600
"""A synthetic call's packets in one hour (tests/helpers/synthetic.py sends 290 a second)."""


def synthetic_session(folder: Path, packets: int, seed: int) -> None:
    """A synthetic call with its mute window and the browser's address, judged like a lab one."""
    folder.mkdir(parents=True)
    options = synthetic.Options(packets=packets, seed=seed)
    with (folder / "capture.pcap").open("wb") as fo:
        truth = synthetic.write(fo, options)
    start, end = (t / 1e9 for t in truth.muted_ns)
    (folder / "timeline.json").write_text(json.dumps({"muted": [[start, end]]}))
    manifest = {
        "version": 1,
        "source": "synthetic",
        "kind": "synthetic",
        "variant": "synthetic",
        "network": {"browser": {"address": BROWSER}},
    }
    (folder / "session.json").write_text(json.dumps(manifest))


def build_corpus(total: int) -> Path:
    """The lab sessions (copied) and short synthetic ones up to ``total`` sessions; cached."""
    corpus = CACHE / f"batch-corpus-{total}"
    if (corpus / ".complete").exists():
        return corpus
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    started = time.perf_counter()
    lab = corpus / "lab"
    lab.mkdir()
    for folder in lab_sessions():
        shutil.copytree(folder, lab / folder.name)
    for name in ("reference.wav", "peer-reference.wav", "janus-reference.wav"):
        if (ROOT / "captures" / name).is_file():
            shutil.copy(ROOT / "captures" / name, lab / name)
    rng = random.Random(17)
    for index in range(max(0, total - len(lab_sessions()))):
        folder = corpus / "synthetic" / f"session-{index:04d}"
        synthetic_session(folder, rng.randint(4000, 16000), 1000 + index)
    return _complete(corpus, started)


def build_hours(count: int) -> Path | None:
    """``count`` synthetic 1-hour calls; cached."""
    if count <= 0:
        return None
    corpus = CACHE / f"batch-hours-{count}"
    if (corpus / ".complete").exists():
        return corpus
    shutil.rmtree(corpus, ignore_errors=True)
    started = time.perf_counter()
    for index in range(count):
        synthetic_session(corpus / f"hour-{index:02d}", HOUR_PACKETS, 5000 + index)
    return _complete(corpus, started)


def _complete(corpus: Path, started: float) -> Path:
    (corpus / ".complete").write_text("")
    size = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file())
    took = time.perf_counter() - started
    print(f"built {corpus.name}: {size / 1e6:.0f} MB in {took:.0f} s")
    return corpus


def run_once(paths: list[str], out: Path, workers: int) -> dict[str, object]:
    """One batch (plan, Dask tasks, tables) in this process; what it took."""
    from decoders.corpus.run import execute, plan, write
    from decoders.corpus.task import summary

    started = time.perf_counter()
    todo = plan(paths, out, workers=workers)  # hashed by as many threads as will analyse
    outcomes = execute(todo.todo, packets_dir=None, workers=workers)
    write(todo, outcomes)
    elapsed = time.perf_counter() - started
    failed = sum(1 for o in outcomes if o.tables.sessions["error"][0].as_py() is not None)
    stats = summary(outcomes)
    return {
        "sessions": len(outcomes),
        "failed": failed,
        "seconds": elapsed,
        "peak_rss_bytes": stats["peak_rss_bytes"],
    }


def timed_batch(paths: list[str], workers: int) -> dict[str, object]:
    """A batch in a fresh child process (``--child``) into a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        command = [
            sys.executable,
            __file__,
            "--child",
            str(workers),
            "--out",
            str(Path(scratch) / "out"),
            *paths,
        ]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise SystemExit(f"batch with {workers} worker(s) failed: {result.stderr[-2000:]}")
        stats: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
        return stats


def _spin(seconds: float) -> int:
    """Pure CPU work for about ``seconds``: loop iterations done."""
    end = time.perf_counter() + seconds
    done = 0
    while time.perf_counter() < end:
        sum(range(1000))
        done += 1
    return done


def machine_speedup(seconds: float = 3.0, workers: int = 2) -> float:
    """Iterations/s of ``workers`` busy processes at once over one alone, on this machine now."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_spin, [0.1] * workers))  # started and warm
        alone = pool.submit(_spin, seconds).result()
        together = sum(pool.map(_spin, [seconds] * workers))
    return together / alone


def report(label: str, stats: dict[str, object]) -> float:
    sessions = int(stats["sessions"])  # type: ignore[call-overload]
    seconds = float(stats["seconds"])  # type: ignore[arg-type]
    rate = sessions / seconds * 60
    peaks = stats["peak_rss_bytes"]
    assert isinstance(peaks, dict)
    rss = ", ".join(f"{v / 2**20:.0f} MiB" for v in sorted(peaks.values(), reverse=True))
    print(
        f"{label:<12} {sessions} sessions in {seconds:6.1f} s = {rate:6.1f} sessions/min; "
        f"{stats['failed']} failed; peak RSS per worker: {rss}"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=200, help="sessions in all")
    parser.add_argument("--hours", type=int, default=3, help="of them, 1-hour calls")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel run")
    parser.add_argument("--extra", action="append", default=[], metavar="PATH")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the best counts")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(run_once(args.paths, args.out, args.child)))
        return
    hours = min(max(args.hours, 0), args.sessions)
    corpus = build_corpus(args.sessions - hours)
    long = build_hours(hours)
    paths = [str(corpus), *([str(long)] if long else []), *args.extra]
    print(
        f"corpus: {' '.join(paths)} ({args.sessions} sessions, {hours} of them 1-hour calls); "
        f"{os.cpu_count()} CPUs (shared: figures move with the load)"
    )
    before = machine_speedup(workers=args.workers)
    serial, parallel = 0.0, 0.0
    for attempt in range(1, args.repeat + 1):  # alternated: a burst of load hits both alike
        serial = max(serial, report(f"serial #{attempt}", timed_batch(paths, 1)))
        label = f"{args.workers} workers #{attempt}"
        parallel = max(parallel, report(label, timed_batch(paths, args.workers)))
    after = machine_speedup(workers=args.workers)
    machine = (before + after) / 2
    print(
        f"machine: {args.workers} busy processes ran {before:.2f}x one alone before the runs, "
        f"{after:.2f}x after"
    )
    print(
        f"best of {args.repeat}: serial {serial:.1f} sessions/min, "
        f"{args.workers} workers {parallel:.1f} sessions/min"
    )
    ratio = parallel / serial
    verdict = "meets" if ratio >= TARGET else "below"
    print(
        f"speed-up {ratio:.2f}x with {args.workers} workers ({verdict} the {TARGET}x target; "
        f"the machine gave pure CPU work {machine:.2f}x on average)"
    )


if __name__ == "__main__":
    main()
