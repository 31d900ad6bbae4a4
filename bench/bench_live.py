"""What the live view costs and how fast its alarm is: ``mutecheck watch -`` fed replayed traffic.

    PYTHONPATH=. python bench/bench_live.py [--rates 1000,5000] [--seconds 10] [--mute-at 4]

For each rate, one ``mutecheck watch - --events F --local 10.77.0.1`` process (plain lines, as
in a pipe; ``--view``: the live view in a pseudo-terminal) reads a pcapng stream written to its
standard input in real time: the sent audio of the lab's ui-only recording (speech, RFC 6464
levels around -25 dBov), replayed as rate/50 streams of 50 packets/s each (own SSRC and port),
every packet stamped with the wall clock when written. At ``--mute-at`` seconds a mute mark is
appended to the events file, as the addon writes it (the call's SDP events are there from the
start). Measured:

- alarm latency: from the writing of the first leaking packet (the first one after the mute
  and its 0.2 s grace) to the ALARM line on the watcher's stdout (target <= 1 s);
- CPU share: the watcher's user + system CPU time over the steady part of the run (from 1 s
  after it started to the end of the writing) divided by that wall time, in % of one core
  (target <= 10 % at 1,000 packets/s).

Not part of the test suite; each run ends by itself (``--seconds``) and its process is waited for.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from decoders.live.alarm import GRACE_S  # noqa: E402
from decoders.wire.capture import LINKTYPE_ETHERNET, open_capture  # noqa: E402
from decoders.wire.net import Unwrapper  # noqa: E402
from decoders.wire.pcapwriter import PcapngWriter, build_udp_frame  # noqa: E402

SESSION = ROOT / "captures" / "chromium-ui-only"
BROWSER, PEER = "10.77.0.1", "10.77.0.2"
PER_STREAM = 50
TICK_S = 0.01


def sent_audio() -> list[bytes]:
    """The RTP packets the browser sent in the recording (its only stream: the microphone)."""
    unwrapper = Unwrapper()
    payloads = []
    with open_capture(SESSION / "capture.pcapng") as reader:
        for frame in reader:
            for datagram in unwrapper.feed(frame):
                p = datagram.payload
                if datagram.src == BROWSER and p[0] >> 6 == 2 and not 192 <= p[1] <= 223:
                    payloads.append(p)
    return payloads


def mute_event(t: float) -> str:
    """A mark as the addon writes it (a real line of the recording, re-timed)."""
    for line in (SESSION / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["kind"] == "mute" and event["state"] == "muted":
            event["t"] = event["at"] = t
            return json.dumps(event) + "\n"
    raise SystemExit("the recording has no mute mark")


def sdp_events() -> str:
    lines = (SESSION / "events.jsonl").read_text().splitlines(keepends=True)
    return "".join(line for line in lines if json.loads(line)["kind"] == "sdp")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(
    rate: int, seconds: float, mute_at: float, payloads: list[bytes], view: bool = False
) -> dict[str, float]:
    streams = max(1, rate // PER_STREAM)
    frames = [
        [
            build_udp_frame(
                LINKTYPE_ETHERNET,
                BROWSER,
                40000 + s,
                PEER,
                50000 + s,
                p[:8] + (0x10000000 + s).to_bytes(4, "big") + p[12:],
            )
            for p in payloads
        ]
        for s in range(streams)
    ]
    work = Path(tempfile.mkdtemp(prefix="mutecheck-bench-live-"))
    events = work / "events.jsonl"
    events.write_text(sdp_events())  # the call's offer and answer, as the addon wrote them
    command = [sys.executable, "-c", "from decoders.cli import main; main()", "watch", "-"]
    command += ["--events", str(events), "--local", BROWSER]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if view:  # the live view: stdout is a 200x50 terminal (a pseudo-terminal read here)
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        env = dict(env, TERM="xterm-256color")
        env.pop("COLUMNS", None)
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=slave, stderr=slave, env=env, cwd=work
        )
        os.close(slave)
        output = os.fdopen(master, "rb", buffering=0)
    else:
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=work
        )
        assert child.stdout is not None
        output = child.stdout
    assert child.stdin is not None
    alarm_at: list[float] = []
    out_lines: list[str] = []

    def read_stdout() -> None:
        while True:
            try:
                raw = output.read(65536) if view else output.readline()
            except OSError:  # the pseudo-terminal closed with the child
                return
            if not raw:
                return
            text = raw.decode(errors="replace")
            out_lines.extend(text.splitlines())
            if "ALARM:" in text and not alarm_at:
                alarm_at.append(time.time())

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    writer = PcapngWriter(child.stdin)  # type: ignore[arg-type]
    interface = writer.add_interface(LINKTYPE_ETHERNET, ts_resolution_exp10=9)
    start = time.time()
    mute_t: float | None = None
    first_leak: float | None = None
    cpu_start: tuple[float, float] | None = None
    written = 0
    index = 0
    next_tick = start
    while True:
        now = time.time()
        if now - start >= seconds:
            break
        if cpu_start is None and now - start >= 1.0:
            cpu_start = (now, cpu_seconds(child.pid))
        if mute_t is None and now - start >= mute_at:
            mute_t = now
            with events.open("a") as handle:
                handle.write(mute_event(mute_t))
        due = int((now - start) * rate) - written
        for _ in range(max(0, due)):
            stamp = time.time()
            writer.write(interface, int(stamp * 1e9), frames[written % streams][index])
            if first_leak is None and mute_t is not None and stamp >= mute_t + GRACE_S:
                first_leak = stamp
            written += 1
            if written % streams == 0:
                index = (index + 1) % len(payloads)
        child.stdin.flush()
        next_tick += TICK_S
        time.sleep(max(0.0, next_tick - time.time()))
    end = time.time()
    assert cpu_start is not None
    cpu_used = cpu_seconds(child.pid) - cpu_start[1]
    child.stdin.close()
    child.wait(timeout=60)
    reader.join(timeout=10)
    latency = alarm_at[0] - first_leak if alarm_at and first_leak is not None else float("nan")
    return {
        "rate": rate,
        "packets": written,
        "achieved_rate": written / (end - start),
        "alarm_latency_s": latency,
        "cpu_percent": 100 * cpu_used / (end - cpu_start[0]),
        "summary": next(  # type: ignore[dict-item]
            (line.strip() for line in reversed(out_lines) if "frames," in line), ""
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", default="1000,5000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mute-at", type=float, default=4.0)
    parser.add_argument(
        "--view", action="store_true", help="run the watcher in a pseudo-terminal: the live view"
    )
    args = parser.parse_args()
    payloads = sent_audio()
    failed = False
    for rate in (int(r) for r in args.rates.split(",")):
        result = run(rate, args.seconds, args.mute_at, payloads, args.view)
        latency, cpu = result["alarm_latency_s"], result["cpu_percent"]
        targets = "latency <= 1 s" + (", CPU <= 10 %" if rate <= 1000 else "")
        ok = latency <= 1.0 and (rate > 1000 or cpu <= 10.0)
        failed |= not ok
        mode = "live view" if args.view else "plain lines"
        print(
            f"{mode} {rate:>5} packets/s ({result['achieved_rate']:.0f} written, "
            f"{result['packets']:.0f} packets): alarm latency {latency:.3f} s, "
            f"CPU {cpu:.1f} % of one core  [{targets}: {'met' if ok else 'NOT met'}]"
        )
        print(f"      watcher: {result['summary']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
