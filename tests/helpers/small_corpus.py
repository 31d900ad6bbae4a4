"""A small corpus of real lab sessions in a temporary folder, for the batch's tests.

Three committed sessions (a content leak, no leak, a metadata leak) copied with the shared
reference signal their session.json names (``../reference.wav``), so a test may change, break
or add to them; the whole captures/ is run once (tests/cli/test_batch.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

from helpers.corpus import CAPTURES, lab_file, lab_session

SMALL: Final = ("ui-only", "track-disabled", "telemetry-http")


def small_corpus(folder: Path) -> Path:
    """``folder/corpus`` holding chromium-<variant>/ for each of :data:`SMALL` and the shared
    reference.wav beside them."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    for variant in SMALL:
        shutil.copytree(lab_session(variant), corpus / f"chromium-{variant}")
    shutil.copy(lab_file("reference.wav"), corpus / "reference.wav")
    return corpus


def committed_sessions() -> list[Path]:
    """Every committed session folder (one holding a capture), found without the batch's code."""
    return sorted(p.parent for p in CAPTURES.glob("*/capture.pcap*"))
