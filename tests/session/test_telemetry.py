"""Tests for decoders.session.telemetry: which fields are volume, in every body shape, redaction."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.session.payload import (
    RAW_TEXT_LENGTH,
    Unreadable,
    decode_content,
    format_path,
    parse_document,
    walk,
)
from decoders.session.telemetry import (
    VolumeField,
    find_loose_fields,
    find_volume_fields,
    is_volume_name,
    redact,
    varying,
    voice_active,
    volume_value,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "signaling"
WEBEX_PREFIX = "metrics[0].eventPayload(base64).intervals[0].audioTransmit[0].levels."
WEBEX_FIELDS = [
    (WEBEX_PREFIX + "audioMaxGain", -18.2),
    (WEBEX_PREFIX + "audioMeanGain", -41.5),
    (WEBEX_PREFIX + "audioMinGain", -70.1),
    (WEBEX_PREFIX + "audioMaxVolume", 0.31),
    (WEBEX_PREFIX + "audioMeanVolume", 0.04),
    (WEBEX_PREFIX + "audioMinVolume", 0.0),
]


def fields_of(body: bytes, coding: str | None = None) -> list[tuple[str, object]]:
    decoded = decode_content(body, coding, 1 << 20)
    document = parse_document(decoded.data, truncated=decoded.truncated)
    return [(item.path, item.value) for item in find_volume_fields(document)]


@pytest.mark.parametrize(
    "name",
    [
        "audioLevel",
        "level",
        "volume",
        "gain",
        "energy",
        "rms",
        "loudness",
        "db",
        "dBFS",
        "vad",
        "speaking",
        "isSpeaking",
        "AUDIO_LEVEL",
        "audio-level",
        "audiolevel",
        "micvolume",
        "audioMeanGain",
        "totalAudioEnergy",
        "inputLevel",
        "voiceActivityFlag",
        "levelMax",
        "mic_vol",
        "amplitude",
    ],
)
def test_volume_names(name: str) -> None:
    assert is_volume_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "logLevel",
        "batteryLevel",
        "zoomLevel",
        "qualityLevel",
        "compressionLevel",
        "audioLevelTimestamp",
        "levelId",
        "dbVersion",
        "dbName",
        "again",
        "packetsSent",
        "muted",
        "",
        "vadThreshold",
        "securityLevel",
    ],
)
def test_not_volume_names(name: str) -> None:
    assert not is_volume_name(name)


def test_values() -> None:
    assert volume_value("level", 3) == 3
    assert volume_value("level", -41.5) == -41.5
    assert volume_value("level", "-41.5") == -41.5
    assert volume_value("level", "42") == 42
    assert volume_value("level", "1e3") == 1000.0
    assert volume_value("level", "0.5e1") == 5
    assert volume_value("level", "loud") is None
    assert volume_value("level", True) is None
    assert volume_value("speaking", True) is True
    assert volume_value("vad", "false") is False
    assert volume_value("level", None) is None
    assert volume_value("level", "9" * 50) == int("9" * 50)


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (10**400, "1" + "0" * 400),
        (-(10**400), "-1" + "0" * 400),
        ("NaN", "NaN"),
        (" -Infinity ", "-Infinity"),
        ("inf", "inf"),
        ("1e999", "1e999"),
        ("-1.5E+400", "-1.5E+400"),
        ("7" * 400, "7" * 400),
        ("7" * 5000, "7" * 5000),
        (Unreadable("1e999"), "1e999"),
    ],
    ids=lambda value: str(value)[:12],
)
def test_unreadable_values(value: object, raw: str) -> None:
    """A number no float holds is still a measurement: Unreadable, with its text (shortened)."""
    found = volume_value("audioLevel", value)
    assert isinstance(found, Unreadable)
    assert found.raw == (raw if len(raw) <= RAW_TEXT_LENGTH else raw[:RAW_TEXT_LENGTH] + "…")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-2E+400"])
@pytest.mark.parametrize(
    ("frame", "path"),
    [
        ('{"stats":{"audioLevel":%s}}', "stats.audioLevel"),
        ('[{"x":1},{"micVolume":%s}]', "[1].micVolume"),
        ('{"payload":"%s"}', "payload(base64).audioLevel"),
        ("%s", "audioLevel"),
        ('{"inner":"{\\"audioLevel\\":%s}"}', "inner(json).audioLevel"),
        ("audioLevel=%s&x=1", "audioLevel"),
        ("payload=%s", "payload(base64).audioLevel"),
    ],
)
def test_non_finite_numbers_are_fields(literal: str, frame: str, path: str) -> None:
    """NaN, infinities and overflowing literals in JSON, base64 JSON, embedded JSON and forms:
    the field is reported with value None and the text it was written as."""
    inner = '{"audioLevel":' + literal + "}"
    if "base64" in path or frame == "%s":
        body = frame % b64(inner)
    elif "=" in frame:
        body = frame % urllib.parse.quote(literal)  # a form writes "+" as %2B
    else:
        body = frame % literal
    document = parse_document(body.encode())
    (found,) = find_volume_fields(document)
    assert (found.path, found.value, found.raw) == (path, None, literal)
    assert found.to_json() == {
        "path": path,
        "value": None,
        "raw": literal,
        "audio_context": found.audio_context,
    }


@pytest.mark.parametrize("digits", [400, 4301, 5000])
def test_huge_integers_are_fields(digits: int) -> None:
    """An integer beyond the float range, or longer than int() reads (which failed the whole
    body), is a field with its (shortened) text; the other fields still read normally."""
    number = "9" * digits
    document = parse_document(('{"audioLevel":' + number + ',"gain":0.5}').encode())
    assert document.syntax == "json"
    fields = find_volume_fields(document)
    assert [(item.path, item.value) for item in fields] == [("audioLevel", None), ("gain", 0.5)]
    assert fields[0].raw == (number if digits <= RAW_TEXT_LENGTH else number[:64] + "…")


def test_loose_fields_read_escaped_pairs_and_base64() -> None:
    """A body the parser could not read whole (cut at the scan limit) is searched as text: pairs
    escaped inside strings and whole base64-of-JSON strings count too."""
    encoded = b64('{"levels":{"audioMeanGain":-41.5}}')
    text = '{"a":"{\\"audioLevel\\":0.25}","b":"' + encoded + '","c":{"micVolume":NaN},"d":"xxxx'
    found = [(item.path, item.value, item.raw) for item in find_loose_fields(text)]
    assert found == [
        ("*(base64).levels.audioMeanGain", -41.5, None),
        ("*.audioLevel", 0.25, None),
        ("*.micVolume", None, "NaN"),
    ]


def test_unreadable_pickles() -> None:
    """Leaves cross to the observer process inside pickled state: the text survives."""
    import pickle

    value = pickle.loads(pickle.dumps(Unreadable("1e999")))
    assert isinstance(value, Unreadable) and value.raw == "1e999"


def test_webex_base64_telemetry() -> None:
    assert fields_of((FIXTURES / "webex_metrics.json").read_bytes()) == WEBEX_FIELDS


@pytest.mark.parametrize(
    ("suffix", "coding"), [("gz", "gzip"), ("deflate", "deflate"), ("br", "br"), ("zst", "zstd")]
)
def test_compressed_webex_telemetry(suffix: str, coding: str) -> None:
    body = (FIXTURES / f"webex_metrics.json.{suffix}").read_bytes()
    assert fields_of(body, coding) == WEBEX_FIELDS


def test_getstats_report_skips_lookalikes() -> None:
    body = (FIXTURES / "getstats_report.json").read_bytes()
    assert fields_of(body) == [
        ("stats[0].audioLevel", 0.2148),
        ("stats[0].totalAudioEnergy", 1.733),
        ("stats[1].voiceActivityFlag", True),
    ]


def test_form_signalr_and_lab_page() -> None:
    assert fields_of((FIXTURES / "form_telemetry.txt").read_bytes()) == [
        ("micLevel", 0.42),
        ("rms", -38.5),
    ]
    assert fields_of((FIXTURES / "signalr_records.txt").read_bytes()) == [
        ("#1.arguments[0].inputLevel", 0.37),
        ("#1.arguments[0].vad", True),
    ]
    assert fields_of((FIXTURES / "lab_page_telemetry.json").read_bytes()) == [
        ("audioLevel", 0.1234)
    ]


def test_audio_context() -> None:
    body = json.dumps({"audio": {"level": 1}, "misc": {"level": 2}}).encode()
    document = parse_document(body)
    assert [item.audio_context for item in find_volume_fields(document)] == [True, False]


def test_lists_of_samples_and_whole_body_base64() -> None:
    body = base64.b64encode(json.dumps({"audioLevels": [12, 40, 33]}).encode())
    assert fields_of(body) == [
        ("audioLevels[0]", 12),
        ("audioLevels[1]", 40),
        ("audioLevels[2]", 33),
    ]


def test_truncated_json_is_searched_loosely() -> None:
    body = json.dumps({"stats": {"audioLevel": 0.5, "muted": True}, "pad": "x" * 200}).encode()
    decoded = decode_content(body, None, 60)
    document = parse_document(decoded.data, truncated=decoded.truncated)
    fields = find_volume_fields(document)
    assert [(item.path, item.value, item.segments) for item in fields] == [
        ("*.audioLevel", 0.5, None)
    ]
    assert find_loose_fields('"logLevel": 3, "vad": true') == (
        VolumeField(path="*.vad", key="vad", value=True, audio_context=False),
    )


def test_max_fields() -> None:
    body = json.dumps({"levels": list(range(100))}).encode()
    assert len(find_volume_fields(parse_document(body), max_fields=10)) == 10


def test_varying_and_voice_active() -> None:
    same = find_volume_fields(parse_document(b'{"levels": [3, 3, 3]}'))
    changing = find_volume_fields(parse_document(b'{"levels": [3, 4, 3]}'))
    assert not varying(same) and varying(changing)
    assert voice_active(find_volume_fields(parse_document(b'{"speaking": true}')))
    assert not voice_active(find_volume_fields(parse_document(b'{"speaking": false, "level": 1}')))


def test_redact_webex_keeps_everything_else() -> None:
    body = (FIXTURES / "webex_metrics.json").read_bytes()
    document = parse_document(body)
    fields = find_volume_fields(document)
    out = redact(document, fields)
    assert out is not None
    again = parse_document(out)
    assert [(item.path, item.value) for item in find_volume_fields(again)] == []
    before = {format_path(leaf.path): leaf.value for leaf in walk(document)}
    after = {format_path(leaf.path): leaf.value for leaf in walk(again)}
    assert before.keys() == after.keys()
    redacted = {item.path for item in fields}
    assert all(after[path] is None for path in redacted)
    assert all(after[path] == before[path] for path in before.keys() - redacted)
    video_level = "metrics[0].eventPayload(base64).intervals[0].videoTransmit[0].levels.level"
    assert after[video_level] == 3  # a video level is not the microphone's


def test_redact_form_and_refusals() -> None:
    document = parse_document((FIXTURES / "form_telemetry.txt").read_bytes())
    out = redact(document, find_volume_fields(document))
    assert out == b"event=audio&micLevel=&rms=&session=abc123"
    loose = VolumeField(path="*.level", key="level", value=1, audio_context=False)
    assert redact(document, (loose,)) is None


KEYS = st.sampled_from(["level", "audioLevel", "gain", "x", "logLevel", "vad", "video"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON_VALUES, max_size=4) | st.lists(JSON_VALUES, max_size=4))
def test_any_json_redacts_to_no_fields(value: object) -> None:
    body = json.dumps(value).encode()
    document = parse_document(body)
    fields = find_volume_fields(document)
    out = redact(document, fields)
    assert out is not None
    assert find_volume_fields(parse_document(out)) == ()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_never_raises(text: str) -> None:
    find_volume_fields(parse_document(text.encode()))
