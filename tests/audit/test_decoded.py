"""Tests for decoders.audit.decoded: the decryption's series by SSRC, or why there are none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.corpus import lab_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoders.audit.decoded import DecodedAudio, KeysUnusable, decoded_audio, from_loudness
from decoders.media.decrypt import decoded_loudness
from decoders.session.keys import load_keys

CAPTURES = Path(__file__).resolve().parent.parent.parent / "captures"


def test_without_capture_or_keys(tmp_path: Path) -> None:
    assert decoded_audio(None, tmp_path / "keys.json").reason == "not measured: no capture"
    result = decoded_audio(tmp_path / "c.pcapng", None)
    assert not result.measured and "no keys" in result.reason
    assert result.to_json() == {"status": "not measured", "reason": result.reason, "streams": []}


def test_series_are_the_decryptions_by_ssrc() -> None:
    """Each stream the decryption decoded becomes the series of its SSRC, arrays unchanged."""
    folder = lab_session("ui-only-peer-talks", needs="keys.json")
    capture = folder / "capture.pcapng"
    loudness = decoded_loudness(capture, load_keys(folder / "keys.json"))
    assert len(loudness) == 2  # both sides talk
    result = from_loudness(loudness)
    assert result.measured and result.reason == "decoded 2 stream(s)"
    assert sorted(result.series) == sorted(key.ssrc for key in loudness)
    for key, value in loudness.items():
        series = result.series[key.ssrc]
        assert np.array_equal(series.timestamp_ns, value.timestamp_ns)
        assert series.dbfs is not None and np.array_equal(series.dbfs, value.dbfs, equal_nan=True)
        assert series.payloads == list(value.payloads) and len(value.payloads) > 500
    assert result.to_json()["streams"] == sorted(result.series)
    again = decoded_audio(capture, folder / "keys.json")  # keys read by the keys stage
    assert again.reason == result.reason and sorted(again.series) == sorted(result.series)


def test_failures_become_reasons(tmp_path: Path) -> None:
    folder = lab_session("track-disabled", needs="keys.json")
    broken = tmp_path / "c.pcapng"
    broken.write_bytes(b"not a capture at all" * 10)
    failed = decoded_audio(broken, folder / "keys.json")
    assert not failed.measured
    assert failed.reason.startswith("not measured: decryption failed (CaptureError: ")
    unread = decoded_audio(folder / "capture.pcapng", tmp_path / "none.json")
    assert unread.reason.startswith("not measured: the keys could not be read (FileNotFoundError")
    keyless = decoded_audio(folder / "capture.pcapng", tmp_path)  # a folder without key files
    assert (
        keyless.reason == f"not measured: {tmp_path}: no SRTP key: the folder's key files gave none"
    )
    with pytest.raises(KeysUnusable, match="no SRTP key: the folder's key files gave none"):
        decoded_audio(folder / "capture.pcapng", tmp_path, strict=True)
    assert from_loudness({}) == DecodedAudio(
        False, "not measured: the decryption returned no decoded stream"
    )


def test_lab_session_decodes() -> None:
    folder = lab_session("track-disabled", needs="keys.json")
    result = decoded_audio(folder / "capture.pcapng", folder / "keys.json")
    assert result.measured, result.reason
    (series,) = result.series.values()
    assert series.dbfs is not None and series.timestamp_ns.size == series.dbfs.size > 500


_KEYS_JSON = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["version", "keys", "profile", "key", "salt", "ssrc", "x"]),
                inner,
                max_size=5,
            )
        ),
        max_leaves=12,
    ).map(lambda doc: json.dumps(doc).encode()),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=_KEYS_JSON)
def test_any_named_keys_file_decodes_or_says_why(tmp_path: Path, content: bytes) -> None:
    """Issue 13 (Hypothesis over keys): a keys.json the user names is decoded, or refused with
    :class:`KeysUnusable` (one line, "decryption was not done"); the session's own keys never
    raise, they become "not measured" with the reason."""
    keys = tmp_path / "keys.json"
    keys.write_bytes(content)
    capture = lab_session("quiet") / "capture.pcapng"
    try:
        named = decoded_audio(capture, keys, strict=True)
    except KeysUnusable as error:
        assert str(error).startswith(f"--keys {keys}: ")
        assert str(error).endswith("; decryption was not done") and "\n" not in str(error)
    else:
        assert named.reason
    found = decoded_audio(capture, keys)
    assert found.measured or found.reason.startswith("not measured: ")
