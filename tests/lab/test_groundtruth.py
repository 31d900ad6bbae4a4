"""Ground truth from the plaintext packets: Chromium's RTP dump (the committed Janus sessions)
or the capture decrypted with the peer's exported keys (the committed Firefox sessions)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from decoders.lab.groundtruth import (
    SILENCE_DBFS,
    SOUND_DBFS,
    SOURCES,
    expected_document,
    packet_source,
)

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


@pytest.mark.parametrize(
    ("name", "verdict"),
    [
        ("firefox-quiet", "content-leak"),
        ("firefox-ui-only", "content-leak"),
        ("firefox-track-disabled", "no-leak"),
        ("firefox-dtx", "no-leak"),
    ],
)
def test_recomputed_from_the_decrypted_capture(name: str, verdict: str) -> None:
    """Firefox has no plaintext dump: the capture decrypted with keys.json gives the packets."""
    folder = CAPTURES / name
    assert packet_source(folder) == "keys"
    committed = json.loads((folder / "expected.json").read_text())
    scenario = json.loads((folder / "session.json").read_text())["scenario"]
    again = expected_document(
        folder, app=name, dtx=name.endswith("dtx"), gum_s=scenario["microphone"]["playback_started"]
    )
    assert again["verdict"] == committed["verdict"] == verdict
    assert again["source"] == committed["source"] == SOURCES["keys"]
    window, kept = again["muted_windows"][0], committed["muted_windows"][0]
    for key in ("rtp_packets", "audio_level_median", "decoded_dbfs_median"):
        assert window[key] == kept[key], key
    if verdict == "content-leak":
        # quiet: speech 30 dB down, between silence and loud, yet following the microphone
        assert window["decoded_dbfs_median"] > SILENCE_DBFS and window["correlation"]["proven"]
        assert "capture decrypted with keys.json" in window["correlation"]["series"]


def test_a_session_without_a_packet_source_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    shutil.copytree(CAPTURES / "firefox-ui-only", folder)
    (folder / "keys.json").unlink()
    (folder / "peer-keylog.txt").unlink()
    with pytest.raises(ValueError, match=r"neither chromium-stderr\.log nor keys\.json or"):
        expected_document(folder, app="x")


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
