"""The one place the audit asks the decryption for decoded audio.

The decryption (:func:`decoders.media.decrypt.decoded_loudness`) turns SRTP into decoded audio:
``{stream key: LoudnessSeries}``, each series holding per-packet ``timestamp_ns``,
``sequence_number``, ``dbfs`` and the decrypted ``payloads``; the keys come from
:func:`decoders.session.keys.load_keys`. When there are no keys, or the keys cannot be read, or
decryption fails, the audit goes on without decoded audio and says why ("not measured: ...").

Streams are matched to the packet table's streams by SSRC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decoders.audit.measure import SeriesSource

if TYPE_CHECKING:  # the decryption loads SRTP and OpenSSL: only imported when there are keys
    from decoders.media.decrypt import LoudnessSeries
    from decoders.media.srtp import StreamKey
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
    from decoders.media.decrypt import decoded_loudness
    from decoders.session.keys import load_keys

    try:
        loaded = load_keys(keys)
    except Exception as error:  # OSError, a broken file (ValueError), a broken folder
        reason = f"the keys could not be read ({type(error).__name__}: {error})"
        if strict:
            raise KeysUnusable(
                f"--keys {keys}: {_strip(str(error), keys)}; decryption was not done"
            ) from None
        return not_measured(reason)
    if not loaded.keys and not loaded.plaintext:
        notes = "; ".join(loaded.notes)
        where = "the folder's key files gave" if keys.is_dir() else "it holds"
        reason = f"no SRTP key: {where} none" + (f" ({notes})" if notes else "")
        if strict:
            raise KeysUnusable(f"--keys {keys}: {reason}; decryption was not done")
        return not_measured(f"{keys}: {reason}")
    try:
        result = decoded_loudness(capture, loaded, sdp=sdp)
    except Exception as error:
        return not_measured(f"decryption failed ({type(error).__name__}: {error})")
    return from_loudness(result)


def _strip(message: str, path: Path) -> str:
    """The loader's message without the path it starts with (the error names it already)."""
    return message.removeprefix(f"{path}: ")


def from_loudness(result: Mapping[StreamKey, LoudnessSeries]) -> DecodedAudio:
    """Turn ``decoded_loudness``'s mapping into per-SSRC series (capture-clock timestamps)."""
    series: dict[int, SeriesSource] = {}
    for key, value in result.items():
        payloads = list(value.payloads) or None  # per packet, as timestamp_ns and dbfs
        series[key.ssrc] = SeriesSource(value.timestamp_ns, value.dbfs, payloads)
    if not series:
        return not_measured("the decryption returned no decoded stream")
    return DecodedAudio(True, f"decoded {len(series)} stream(s)", series)
