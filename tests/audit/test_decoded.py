"""Tests for decoders.audit.decoded: the adapter degrades, and maps the decryption's series."""

from __future__ import annotations

import importlib
import json
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.corpus import lab_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoders.audit.decoded import DecodedAudio, KeysUnusable, decoded_audio, from_loudness

CAPTURES = Path(__file__).resolve().parent.parent.parent / "captures"


@dataclass(frozen=True)
class Key:
    src: str
    ssrc: int


@dataclass(frozen=True)
class Series:
    timestamp_ns: Any
    dbfs: Any
    payloads: tuple[bytes, ...] = ()


def test_without_capture_or_keys(tmp_path: Path) -> None:
    assert decoded_audio(None, tmp_path / "keys.json").reason == "not measured: no capture"
    result = decoded_audio(tmp_path / "c.pcapng", None)
    assert not result.measured and "no keys" in result.reason
    assert result.to_json() == {"status": "not measured", "reason": result.reason, "streams": []}


def test_missing_decryption_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(name: str) -> types.ModuleType:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(importlib, "import_module", refuse)
    result = decoded_audio(tmp_path / "c.pcapng", tmp_path / "keys.json")
    assert not result.measured and "decryption unavailable" in result.reason


def fake_modules(
    monkeypatch: pytest.MonkeyPatch, loudness: Any, *, loader: str = "load_keys"
) -> None:
    decrypt = types.ModuleType("fake_decrypt")
    decrypt.decoded_loudness = loudness  # type: ignore[attr-defined]
    keys = types.ModuleType("fake_keys")
    setattr(keys, loader, lambda value: ("keys", value))
    modules = {"decoders.media.decrypt": decrypt, "decoders.session.keys": keys}
    monkeypatch.setattr(importlib, "import_module", modules.__getitem__)


def test_series_are_mapped_by_ssrc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[Any] = []

    def loudness(capture: Path, keys: Any, *, sdp: Any = None) -> dict[Any, Series]:
        seen.append((capture, keys, sdp))
        return {
            Key("10.0.0.1", 7): Series([1, 2, 3], [-20.0, -30.0, -112.0], (b"a", b"b", b"c")),
            ("10.0.0.2", 5000, 8): Series(np.array([4]), np.array([-50.0])),
            "no ssrc": Series([1], [1.0]),
            Key("x", 9): Series([1, 2], [1.0]),  # shapes differ: left out
        }

    fake_modules(monkeypatch, loudness)
    result = decoded_audio(tmp_path / "c.pcapng", tmp_path / "keys.json")
    assert result.measured and sorted(result.series) == [7, 8]
    assert result.series[7].dbfs is not None and result.series[7].dbfs.tolist()[0] == -20.0
    assert result.series[7].payloads == [b"a", b"b", b"c"]
    assert result.series[8].payloads is None  # no payloads kept
    assert seen[0][1] == ("keys", tmp_path / "keys.json")
    assert result.to_json()["streams"] == [7, 8]


def test_parse_keys_loader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    keys_file.write_text("{}")
    fake_modules(monkeypatch, lambda c, k, sdp=None: {7: Series([1], [-3.0])}, loader="parse_keys")
    assert decoded_audio(tmp_path / "c.pcapng", keys_file).measured


def test_failures_become_reasons(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(capture: Path, keys: Any, *, sdp: Any = None) -> dict[Any, Any]:
        raise RuntimeError("bad tag")

    fake_modules(monkeypatch, broken)
    result = decoded_audio(tmp_path / "c.pcapng", tmp_path / "keys.json")
    assert not result.measured and "decryption failed (RuntimeError: bad tag)" in result.reason
    fake_modules(monkeypatch, lambda c, k, sdp=None: {}, loader="unrelated")
    assert (
        "no decoded_loudness or keys loader"
        in decoded_audio(tmp_path / "c.pcapng", tmp_path / "keys.json").reason
    )
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
