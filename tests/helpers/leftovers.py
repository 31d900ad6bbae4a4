"""What a live lab test may leave behind: network namespaces and processes that mention it."""

from __future__ import annotations

import subprocess
from pathlib import Path


def lab_leftovers(*marks: str, namespace_mark: str | None = None) -> list[str]:
    """The network namespaces whose name holds ``namespace_mark`` (default: any of ``marks``)
    and the processes whose command line holds any of ``marks`` (``PID: command``)."""
    names = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False
    ).stdout
    wanted = (namespace_mark,) if namespace_mark is not None else marks
    found = [line for line in names.splitlines() if any(m in line for m in wanted)]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmdline for m in marks):
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found
