"""Volume telemetry, found generically: values whose names say they measure how loud the mic is.

No per-vendor code. A value counts when its field name (or, for list elements, the name of the
list) looks like an audio level, at any depth and in any case: ``audioLevel``, ``level``,
``volume``, ``gain``, ``energy``, ``rms``, ``loudness``, ``db``/``dBFS``, ``vad``, ``speaking``,
``amplitude`` … as whole words of the name (``audioMeanGain`` → audio, mean, gain) or as the end
of a one-word name (``audiolevel``). The value must be a number, a number in a string (form
bodies are all strings), or, for voice-activity names (``vad``, ``speaking``, ``talking``,
``voiceActivityFlag``), a boolean. A number no float holds (``NaN``, ``Infinity``, ``1e999``,
an integer of 400 or 5,000 digits, in JSON or in a string) is still a volume field: its value is
``None`` and ``raw`` keeps its text, so that an odd value never hides the field.

Names that measure something else are skipped: a word of the path such as ``video``,
``battery``, ``zoom``, ``log``, ``network``, ``quality`` (``logLevel``, ``video.level``,
``batteryLevel``), and names ending in ``id``, ``count``, ``timestamp``, ``threshold`` …
(``audioLevelTimestamp``).

The real case this was written for (research.md): Webex sent, once a minute, base64-encoded JSON
with ``audioTransmit`` interval records holding ``levels.audioMaxGain``, ``audioMeanGain`` and
``audioMinGain``; :func:`find_volume_fields` reports those as
``(base64).audioTransmit[0].levels.audioMeanGain`` and so on.

Bodies that do not parse (a JSON body cut at the scan limit, say) are still searched for
``"name": number`` pairs; such fields have ``segments=None`` (their place is unknown) and cannot be
redacted.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from decoders.session.payload import (
    TOO_DEEP,
    Document,
    Embedded,
    Leaf,
    Segment,
    Unreadable,
    embedded,
    exact_value,
    format_path,
    rewrite,
    walk,
)

LEVEL_WORDS = frozenset(
    {
        "level",
        "levels",
        "lvl",
        "volume",
        "vol",
        "gain",
        "energy",
        "rms",
        "loudness",
        "loud",
        "db",
        "dbfs",
        "dbov",
        "amplitude",
        "vad",
        "speaking",
        "talking",
    }
)
"""Words of a field name that make it a volume field."""

SUFFIX_WORDS = ("level", "levels", "volume", "gain", "energy", "loudness", "speaking", "dbfs")
"""Endings that make a one-word name (``audiolevel``, ``micvolume``) a volume field."""

VOICE_ACTIVITY_WORDS = frozenset({"vad", "speaking", "talking"})
"""Words of a name whose boolean value is voice activity (also ``voice`` + ``activity``)."""

UNRELATED_WORDS = frozenset(
    {
        "video",
        "battery",
        "zoom",
        "log",
        "logging",
        "debug",
        "trace",
        "network",
        "signal",
        "wifi",
        "cpu",
        "memory",
        "quality",
        "bitrate",
        "bandwidth",
        "screen",
        "brightness",
        "compression",
        "access",
        "security",
        "priority",
        "trust",
        "nesting",
        "indent",
        "alert",
        "severity",
        "risk",
        "tier",
        "again",
        "regain",
    }
)
"""A path word that says the value is not about the microphone."""

UNRELATED_LAST_WORDS = frozenset(
    {
        "id",
        "ids",
        "version",
        "count",
        "index",
        "time",
        "timestamp",
        "ts",
        "ms",
        "seconds",
        "duration",
        "interval",
        "number",
        "num",
        "type",
        "code",
        "name",
        "threshold",
        "limit",
        "setting",
        "settings",
    }
)
"""A last name word that says the value is not a measurement (``audioLevelTimestamp``)."""

AUDIO_WORDS = frozenset(
    {"audio", "mic", "microphone", "voice", "sound", "speech", "transmit", "tx", "input", "local"}
)
"""Path words that say the value is about the local microphone (reported as ``audio_context``)."""

MAX_FIELDS = 64

_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_NUMBER = re.compile(r"\s*-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")
_LOOSE_PAIR = re.compile(
    r'\\*"([A-Za-z_$][\w$-]{0,63})\\*"\s*:\s*'
    r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|true|false|NaN|-?Infinity)\b"
)
"""``"name": value`` in text, also escaped once or more inside a string (``\\"name\\":1``)."""
_LOOSE_BASE64 = re.compile(r'"((?:e[wy]|W[1-9y])[A-Za-z0-9+/_-]{10,}={0,2})"')
"""A string that may be base64 of a JSON object (``{"`` is ``ey``) or array."""
_NON_FINITE_WORDS = frozenset(
    {"nan", "-nan", "infinity", "-infinity", "+infinity", "inf", "-inf", "+inf"}
)
"""How JavaScript (``String(NaN)``, ``String(-Infinity)``) and C write numbers no float holds."""
_FLOAT_MAX = sys.float_info.max

Value = int | float | bool


@dataclass(frozen=True, slots=True)
class VolumeField:
    """One volume-like value: where it is (``path`` as text, ``segments`` to rewrite it)."""

    path: str
    key: str
    value: Value | None
    audio_context: bool
    record: int = 0
    segments: tuple[Segment, ...] | None = None
    raw: str | None = None
    """When ``value`` is None: the text of a number no float holds (``NaN``, ``1e999``)."""

    def to_json(self) -> dict[str, object]:
        if self.value is None:
            return {
                "path": self.path,
                "value": None,
                "raw": self.raw,
                "audio_context": self.audio_context,
            }
        return {"path": self.path, "value": self.value, "audio_context": self.audio_context}

    @property
    def shown(self) -> str:
        """The value as a warning line shows it."""
        return f"{self.raw} (unreadable)" if self.value is None else str(self.value)


def name_words(name: str) -> tuple[str, ...]:
    """``audioMeanGain`` -> ``("audio", "mean", "gain")``; ``audio_level`` -> audio, level."""
    return tuple(token.lower() for token in _TOKEN.findall(name))


@functools.lru_cache(maxsize=4096)
def is_volume_name(name: str) -> bool:
    """Does this field name say it measures a level (see the module docstring)?"""
    words = name_words(name)
    if not words or words[-1] in UNRELATED_LAST_WORDS:
        return False
    if any(word in UNRELATED_WORDS for word in words):
        return False
    if any(word in LEVEL_WORDS for word in words) or is_voice_activity_name(name):
        return True
    compact = "".join(words)
    return compact in LEVEL_WORDS or (len(words) == 1 and compact.endswith(SUFFIX_WORDS))


@functools.lru_cache(maxsize=4096)
def is_voice_activity_name(name: str) -> bool:
    """``vad``, ``isSpeaking``, ``talking``, ``voiceActivityFlag``: a boolean says "speaking"."""
    words = set(name_words(name))
    return bool(words & VOICE_ACTIVITY_WORDS) or {"voice", "activity"} <= words


def volume_value(name: str, value: object) -> Value | Unreadable | None:
    """The measurement a value holds for a volume name, or None (not a measurement).

    A number no float holds comes back :class:`~decoders.session.payload.Unreadable` (with its
    text when the parser kept it; a float that came out infinite has ``raw`` ``Infinity``
    until :func:`read_fields` reads its text again)."""
    if isinstance(value, bool):
        return value if is_voice_activity_name(name) else None
    if isinstance(value, int):
        if -_FLOAT_MAX <= value <= _FLOAT_MAX:
            return value
        return Unreadable(_int_text(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if isinstance(value, Unreadable):
            return value
        return Unreadable("NaN" if math.isnan(value) else ("-" if value < 0 else "") + "Infinity")
    if isinstance(value, str):
        if _NUMBER.fullmatch(value):
            text = value.strip()
            if "." not in text and "e" not in text and "E" not in text:
                try:
                    integer = int(text)
                except ValueError:  # more digits than int() reads
                    return Unreadable(text)
                return integer if -_FLOAT_MAX <= integer <= _FLOAT_MAX else Unreadable(text)
            number = float(text)  # any length: inf when it overflows, never an error
            if not math.isfinite(number):
                return Unreadable(text)
            return int(number) if number.is_integer() and "." not in text else number
        if len(value) <= 40:
            lowered = value.strip().lower()
            if lowered in ("true", "false") and is_voice_activity_name(name):
                return lowered == "true"
            if lowered in _NON_FINITE_WORDS:
                return Unreadable(value.strip())
    return None


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than str() writes
        return f"(an integer of {value.bit_length()} bits)"


@dataclass(slots=True)  # not frozen: made for every candidate field, and frozen init is slow
class VolumeSlot:
    """Where a document has a field with a volume-like name (its value may or may not be a
    measurement): what :func:`find_volume_fields` knows of a field before reading its value."""

    record: int
    segments: tuple[Segment, ...]
    key: str
    path: str
    audio_context: bool

    def field(self, raw: object) -> VolumeField | None:
        """The field, when ``raw`` (the value found at this place) is a measurement."""
        value = volume_value(self.key, raw)
        if value is None:
            return None
        unreadable = isinstance(value, Unreadable)
        return VolumeField(
            path=self.path,
            key=self.key,
            value=None if unreadable else value,
            audio_context=self.audio_context,
            record=self.record,
            segments=self.segments,
            raw=value.raw if isinstance(value, Unreadable) else None,
        )


def volume_slots(document: Document, leaves: Sequence[Leaf]) -> list[tuple[VolumeSlot, object]]:
    """The places of a parsed document whose names look like levels, in document order, each
    with the value it holds now."""
    several = len(document.records) > 1
    return [
        (
            VolumeSlot(
                record=leaf.record,
                segments=leaf.path,
                key=leaf.key,
                path=format_path(leaf.path, record=leaf.record if several else None),
                audio_context=_audio_path(leaf.path),
            ),
            leaf.value,
        )
        for leaf in leaves
        if leaf.key is not None and is_volume_name(leaf.key) and not _unrelated_path(leaf.path)
    ]


def find_volume_fields(
    document: Document, leaves: Sequence[Leaf] | None = None, *, max_fields: int = MAX_FIELDS
) -> tuple[VolumeField, ...]:
    """Every volume-like value of a document (at most ``max_fields``), in document order.

    ``leaves`` may pass ``list(walk(document))`` when several recognisers read one document.
    """
    if document.records:
        slots = volume_slots(document, walk(document) if leaves is None else leaves)
        return read_fields(slots, max_fields=max_fields, document=document)
    if document.text:
        return find_loose_fields(document.text, max_fields=max_fields)
    return ()


def read_fields(
    slots: Iterable[tuple[VolumeSlot, object]],
    *,
    max_fields: int = MAX_FIELDS,
    document: Document | None = None,
) -> tuple[VolumeField, ...]:
    """The fields of the slots whose values are measurements (at most ``max_fields``).

    ``document`` (the one the slots are in) lets a value that came out infinite be read again
    for the text it was written as (``1e999`` rather than ``Infinity``)."""
    fields: list[VolumeField] = []
    for slot, raw in slots:
        found = slot.field(raw)
        if found is not None:
            if (
                found.value is None
                and document is not None
                and isinstance(raw, float)
                and not isinstance(raw, Unreadable)
            ):
                exact = exact_value(document, slot.record, slot.segments)
                if isinstance(exact, Unreadable):
                    found = replace(found, raw=exact.raw)
            fields.append(found)
            if len(fields) >= max_fields:
                break
    return tuple(fields)


def find_loose_fields(text: str, *, max_fields: int = MAX_FIELDS) -> tuple[VolumeField, ...]:
    """``"name": number`` pairs in text that is not a parsed document (cut or broken JSON), or
    that the walk's limits did not read whole; also inside the whole base64-of-JSON strings the
    text holds (``*(base64).levels.gain``)."""
    fields: list[VolumeField] = []
    for match in _LOOSE_BASE64.finditer(text):
        inner = embedded(match.group(1))
        if inner is None or inner[0] is not Embedded.BASE64 or inner[1] is TOO_DEEP:
            continue
        for found in find_volume_fields(Document("json", "", [inner[1]]), max_fields=max_fields):
            fields.append(replace(found, path=f"*(base64).{found.path}", segments=None))
        if len(fields) >= max_fields:
            return tuple(fields[:max_fields])
    for match in _LOOSE_PAIR.finditer(text):
        name, raw = match.group(1), match.group(2)
        if not is_volume_name(name):
            continue
        value = volume_value(name, raw == "true" if raw in ("true", "false") else raw)
        if value is None:
            continue
        unreadable = isinstance(value, Unreadable)
        fields.append(
            VolumeField(
                path=f"*.{name}",
                key=name,
                value=None if unreadable else value,
                audio_context=False,
                raw=value.raw if isinstance(value, Unreadable) else None,
            )
        )
        if len(fields) >= max_fields:
            break
    return tuple(fields)


def varying(fields: tuple[VolumeField, ...]) -> bool:
    """Do the values under one name differ within the message (a list of samples, say)?"""
    seen: dict[str, Value | None] = {}
    for volume_field in fields:
        base = re.sub(r"\[\d+\]", "[]", volume_field.path)
        if base in seen and seen[base] != volume_field.value:
            return True
        seen.setdefault(base, volume_field.value)
    return False


def voice_active(fields: tuple[VolumeField, ...]) -> bool:
    """Does any voice-activity field say someone is speaking?"""
    return any(volume_field.value is True for volume_field in fields)


def redact(document: Document, fields: tuple[VolumeField, ...]) -> bytes | None:
    """The body with these fields set to ``null`` (``""`` in a form); None when impossible."""
    targets = []
    for volume_field in fields:
        if volume_field.segments is None:
            return None
        targets.append((volume_field.record, volume_field.segments))
    return rewrite(document, targets)


def _unrelated_path(path: tuple[Segment, ...]) -> bool:
    return any(isinstance(segment, str) and _unrelated(segment) for segment in path[:-1])


def _audio_path(path: tuple[Segment, ...]) -> bool:
    return any(isinstance(segment, str) and _audio(segment) for segment in path)


@functools.lru_cache(maxsize=4096)
def _unrelated(name: str) -> bool:
    return any(word in UNRELATED_WORDS for word in name_words(name))


@functools.lru_cache(maxsize=4096)
def _audio(name: str) -> bool:
    return any(word in AUDIO_WORDS for word in name_words(name))
