"""A proxy killed with SIGKILL while its helper process (flow writer, observer) still works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def kill_proxy_after(body: str, helper: str) -> None:
    """Runs ``body`` (Python) in a process standing for the proxy, then SIGKILLs that process;
    ``helper`` is the expression naming the helper's Popen. Returns once the helper has ended."""
    script = textwrap.dedent(body) + textwrap.dedent(
        f"""
        print({helper}.pid, flush=True)
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proxy = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert proxy.returncode == -signal.SIGKILL, proxy.stderr
    pid = int(proxy.stdout)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "the helper did not end with its input"
