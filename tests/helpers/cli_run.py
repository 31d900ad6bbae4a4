"""Running the command line in tests: as a user does (a process), and what a user error is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import Result

ROOT = Path(__file__).resolve().parents[2]


def run_mutecheck(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m decoders.cli ARGS`` with this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "decoders.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def one_line_error(result: Result) -> str:
    """The one ``mutecheck: error:`` line of a run that failed with exit code 2."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("mutecheck: error:")]
    assert len(lines) == 1
    assert "Traceback" not in result.output
    return lines[0]
