"""The committed lab corpus (captures/): a session a test needs must be there, never skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from decoders.lab.record import VARIANTS

CAPTURES = Path(__file__).resolve().parent.parent.parent / "captures"


def base_sessions() -> list[Path]:
    """The corpus's direct, audio-only, one-way calls: ``captures/chromium-<variant>/`` for
    each mute variant, in name order.

    The corpus also holds other call shapes (relayed through TURN, the peer talking back,
    video: ``chromium-<variant>-relay-<transport>`` and so on); tests/lab/test_corpus.py checks
    those, and a stage's tests take them up where that stage reads them.
    """
    return sorted(CAPTURES / f"chromium-{variant}" for variant in VARIANTS)


def call_sessions(*, tls: bool = True) -> list[Path]:
    """Every recorded session of the corpus (the base ones and the other call shapes), in name
    order; ``tls=False`` leaves out the calls relayed over TURN/TLS, whose media only sizes and
    timing can judge."""
    folders = sorted(p for p in CAPTURES.glob("chromium-*") if p.is_dir())
    return [p for p in folders if tls or not p.name.endswith("-relay-tls")]


def mute_variant(folder: Path) -> str:
    """How the page of ``captures/chromium-<variant>[-<call shape>]`` muted: its variant."""
    name = folder.name.removeprefix("chromium-")
    return max((v for v in VARIANTS if name == v or name.startswith(v + "-")), key=len)


def lab_session(variant: str, needs: str = "capture.pcapng") -> Path:
    """The folder of ``captures/chromium-<variant>/``; fails the test if ``needs`` is missing.

    The corpus is committed (rebuild it with ``mutecheck lab record-all --out captures
    --replace``), so a missing file is a broken checkout, not a reason to skip.
    """
    folder = CAPTURES / f"chromium-{variant}"
    if not (folder / needs).is_file():
        pytest.fail(f"{folder / needs} is missing from the committed lab corpus")
    return folder


def lab_file(name: str) -> Path:
    """A file at the top of captures/ (e.g. the shared reference.wav); fails if missing."""
    path = CAPTURES / name
    if not path.is_file():
        pytest.fail(f"{path} is missing from the committed lab corpus")
    return path


JANUS_DEMOS = (
    "audiobridge",
    "echotest",
    "echotest-ws",
    "videocall",
    "videoroom",
    "videoroom-dtx",
)
"""The recorded Janus demo sessions, ``captures/janus-<demo>/`` (the lab's ``--app``)."""


def janus_recording(demo: str, needs: str = "flows.mitm") -> Path:
    """The folder of ``captures/janus-<demo>/``; fails the test if ``needs`` is missing (the
    Janus sessions are committed like the rest of the corpus)."""
    folder = CAPTURES / f"janus-{demo}"
    if not (folder / needs).is_file():
        pytest.fail(f"{folder / needs} is missing from the committed lab corpus")
    return folder
