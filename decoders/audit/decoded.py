"""The one place the audit asks the decryption for decoded audio (an adapter, lazily imported).

The decryption (``decoders.media.decrypt``) turns SRTP into decoded audio and exposes
``decoded_loudness(capture, keys, *, sdp=None) -> {stream key: series}``, each series holding
per-packet ``timestamp_ns``, ``sequence_number`` and ``dbfs`` arrays; the keys come from
``decoders.session.keys``. When either module is missing, there are no keys, or decryption
fails, the audit goes on without decoded audio and says why ("not measured: ...").

Stream keys are matched to the packet table's streams by SSRC; a key may be a tuple whose last
integer is the SSRC, or any object with an ``ssrc`` attribute.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decoders.audit.measure import SeriesSource
from decoders.session.sdp import SessionDescription


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """Decoded loudness per SSRC, or the reason there is none."""

    measured: bool
    reason: str
    series: Mapping[int, SeriesSource] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "measured" if self.measured else "not measured",
            "reason": self.reason,
            "streams": sorted(self.series),
        }


def not_measured(reason: str) -> DecodedAudio:
    return DecodedAudio(False, f"not measured: {reason}")


class KeysUnusable(ValueError):
    """Keys the user named (``--keys``) could not be read or hold no key: decryption was not
    done, and saying so beats an audit that quietly judges without it."""


def decoded_audio(
    capture: Path | None,
    keys: Path | None,
    *,
    sdp: SessionDescription | None = None,
    strict: bool = False,
) -> DecodedAudio:
    """Ask the decryption for every stream's decoded loudness (see the module docstring).

    ``strict`` (the keys were named by the user): keys that cannot be read, or that hold no
    key at all (a folder without key files, an empty keys.json), raise :class:`KeysUnusable`
    instead of returning "not measured".
    """
    if capture is None:
        return not_measured("no capture")
    if keys is None:
        return not_measured("no keys (keys.json) to decrypt the media")
    try:
        decrypt = importlib.import_module("decoders.media.decrypt")
        keys_module = importlib.import_module("decoders.session.keys")
    except ImportError as error:
        return not_measured(f"decryption unavailable ({error})")
    loudness = getattr(decrypt, "decoded_loudness", None)
    loader = _keys_loader(keys_module)
    if loudness is None or loader is None:
        return not_measured("decryption unavailable (no decoded_loudness or keys loader)")
    try:
        loaded = loader(keys)
    except Exception as error:  # OSError, a broken file (ValueError), a broken folder
        reason = f"the keys could not be read ({type(error).__name__}: {error})"
        if strict:
            raise KeysUnusable(
                f"--keys {keys}: {_strip(str(error), keys)}; decryption was not done"
            ) from None
        return not_measured(reason)
    if not getattr(loaded, "keys", True) and not getattr(loaded, "plaintext", False):
        notes = "; ".join(getattr(loaded, "notes", ()))
        where = "the folder's key files gave" if keys.is_dir() else "it holds"
        reason = f"no SRTP key: {where} none" + (f" ({notes})" if notes else "")
        if strict:
            raise KeysUnusable(f"--keys {keys}: {reason}; decryption was not done")
        return not_measured(f"{keys}: {reason}")
    try:
        result = loudness(capture, loaded, sdp=sdp)
    except Exception as error:
        return not_measured(f"decryption failed ({type(error).__name__}: {error})")
    return from_loudness(result)


def _strip(message: str, path: Path) -> str:
    """The loader's message without the path it starts with (the error names it already)."""
    return message.removeprefix(f"{path}: ")


def _keys_loader(module: Any) -> Callable[[Path], Any] | None:
    """``load_keys(path)``, ``read_keys(path)`` or ``parse_keys(text)`` of the keys module."""
    for name in ("load_keys", "read_keys"):
        function = getattr(module, name, None)
        if callable(function):
            return function  # type: ignore[no-any-return]
    parse = getattr(module, "parse_keys", None)
    if callable(parse):
        return lambda path: parse(path.read_text(encoding="utf-8"))
    return None


def from_loudness(result: Mapping[Any, Any]) -> DecodedAudio:
    """Turn ``decoded_loudness``'s mapping into per-SSRC series (capture-clock timestamps)."""
    series: dict[int, SeriesSource] = {}
    for key, value in result.items():
        ssrc = _ssrc_of(key)
        timestamps = getattr(value, "timestamp_ns", None)
        dbfs = getattr(value, "dbfs", None)
        if ssrc is None or timestamps is None or dbfs is None:
            continue
        ts = np.asarray(timestamps, np.int64)
        db = np.asarray(dbfs, np.float64)
        if ts.shape != db.shape:
            continue
        payloads = getattr(value, "payloads", None)
        kept = list(payloads) if payloads is not None and len(payloads) == ts.size else None
        series[ssrc] = SeriesSource(ts, db, kept if kept else None)
    if not series:
        return not_measured("the decryption returned no decoded stream")
    return DecodedAudio(True, f"decoded {len(series)} stream(s)", series)


def _ssrc_of(key: Any) -> int | None:
    ssrc = getattr(key, "ssrc", None)
    if isinstance(ssrc, int):
        return ssrc
    if isinstance(key, int):
        return key
    if isinstance(key, tuple):
        for item in reversed(key):
            if isinstance(item, int) and not isinstance(item, bool):
                return item
    return None
