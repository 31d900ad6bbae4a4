"""Shared fixtures: the recorded sessions, synthetic captures, and tshark."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import synthetic
from helpers.corpus import call_sessions

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
SESSION_DIRS = [p for p in call_sessions() if (p / "capture.pcapng").is_file()]

SyntheticFactory = Callable[..., tuple[bytes, synthetic.SyntheticTruth]]


@pytest.fixture(params=SESSION_DIRS, ids=[p.name for p in SESSION_DIRS])
def session_dir(request: pytest.FixtureRequest) -> Path:
    """Each real Chromium session of the lab corpus (captures/chromium-*/): every mute
    variant, and every recorded call shape (relayed through TURN over UDP, TCP and TLS; the
    peer talking back; video). A test reads what the shape holds (helpers.corpus.call_shape)."""
    path: Path = request.param
    return path


@pytest.fixture
def make_synthetic() -> SyntheticFactory:
    """Build a synthetic capture in memory: (bytes, truth)."""

    def build(**options: object) -> tuple[bytes, synthetic.SyntheticTruth]:
        buf = io.BytesIO()
        truth = synthetic.write(buf, synthetic.Options(**options))  # type: ignore[arg-type]
        return buf.getvalue(), truth

    return build


@pytest.fixture
def tshark() -> str:
    """The tshark binary; skipped on a developer machine without it, never in CI."""
    path = shutil.which("tshark")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is required in CI (.ci/run installs it)")
        pytest.skip("tshark not installed")
    return path
