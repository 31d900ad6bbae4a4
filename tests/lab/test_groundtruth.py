"""Ground truth from the plaintext RTP dump, on the committed Janus sessions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from decoders.lab.groundtruth import SILENCE_DBFS, SOUND_DBFS, expected_document

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


@pytest.mark.parametrize(
    ("name", "verdict"),
    [("janus-audiobridge", "content-leak"), ("janus-videoroom", "no-leak")],
)
def test_recomputed_from_the_dump(name: str, verdict: str) -> None:
    folder = CAPTURES / name
    committed = json.loads((folder / "expected.json").read_text())
    again = expected_document(folder, app=name)
    assert again["verdict"] == committed["verdict"] == verdict
    window, kept = again["muted_windows"][0], committed["muted_windows"][0]
    for key in ("rtp_packets", "audio_level_median", "decoded_dbfs_median"):
        assert window[key] == kept[key], key
    if verdict == "content-leak":
        assert window["decoded_dbfs_median"] > SOUND_DBFS and window["correlation"]["proven"]
    else:
        assert window["decoded_dbfs_median"] < SILENCE_DBFS
        assert window["audio_level_median"] == 127


def test_without_the_reference_sound_is_not_proven(tmp_path: Path) -> None:
    """No microphone signal, no correlation: a window with sound stays undetermined."""
    folder = tmp_path / "s"
    shutil.copytree(CAPTURES / "janus-echotest", folder)
    session = json.loads((folder / "session.json").read_text())
    session["reference"]["file"] = "missing.wav"
    (folder / "session.json").write_text(json.dumps(session))
    document = expected_document(folder, app="janus-echotest")
    assert document["verdict"] == "undetermined"
    assert document["muted_windows"][0]["correlation"] is None


def test_dump_without_audio_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    shutil.copytree(CAPTURES / "janus-echotest", folder)
    (folder / "chromium-stderr.log").write_text("nothing dumped\n")
    with pytest.raises(ValueError, match="no outbound Opus RTP"):
        expected_document(folder, app="janus-echotest")
