"""Tests for decoders.report.analysis_json: the report document, and that the docs describe it."""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.corpus import lab_session

from decoders.audit.analysis import Inputs, analyze
from decoders.report.analysis_json import (
    REPORT_SCHEMA,
    REPORT_SCHEMA_VERSION,
    clean,
    report_document,
)

ROOT = Path(__file__).resolve().parent.parent.parent
CAPTURES = ROOT / "captures"
DOC = ROOT / "docs" / "report-schema.md"


@functools.cache
def document(name: str) -> dict[str, Any]:
    folder = lab_session(name)
    return report_document(analyze(Inputs(session_dir=folder)))


def test_clean() -> None:
    assert clean({"a": math.nan, 1: (1.5, math.inf), "n": np.int64(3)}) == {
        "a": None,
        "1": [1.5, None],
        "n": 3,
    }


@pytest.mark.parametrize("name", ["ui-only", "telemetry-http", "replace-null"])
def test_document_is_strict_json(name: str) -> None:
    doc = document(name)
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text) == doc
    assert doc["schema"] == REPORT_SCHEMA and doc["version"] == REPORT_SCHEMA_VERSION
    assert doc["verdict"]["exit_code"] in (0, 3, 4, 5)
    assert len(doc["windows"]) == len(doc["timeline"]["windows"]) == 1


def test_findings_point_at_streams_and_windows() -> None:
    doc = document("ui-only")
    for finding in doc["findings"]:
        assert finding["index"] == doc["findings"].index(finding)
        if finding["stream"] is not None:
            assert doc["streams"][finding["stream"]]["label"] == finding["stream_label"]
        assert finding["index"] in doc["windows"][finding["window"]]["findings"]
        interval = finding["interval"]
        window = doc["timeline"]["windows"][finding["window"]]
        assert window["start_from_capture_start"] <= interval["start_from_capture_start"]
        assert interval["end_from_capture_start"] <= window["end_from_capture_start"]
    stream = doc["streams"][0]
    assert set(stream["phases"]) == {"unmuted", "transition", "muted", "windows"}
    assert stream["phases"]["windows"][0]["window"] == 0


def documented_names() -> set[str]:
    return set(re.findall(r"`([a-z_][a-z0-9_-]*)`", DOC.read_text()))


def keys(value: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            out.add(key)
            if key not in ("fields", "skipped"):  # field paths and skip reasons are data
                out |= keys(item)
    elif isinstance(value, list):
        for item in value:
            out |= keys(item)
    return out


@pytest.mark.parametrize("name", ["ui-only", "telemetry-ws", "dtx", "track-stopped", "quiet"])
def test_every_field_is_documented(name: str) -> None:
    doc = document(name)
    names = documented_names()
    missing = sorted(k for k in keys(doc) if k not in names)
    assert not missing, f"fields missing from docs/report-schema.md: {missing}"


def test_documented_exit_codes_match() -> None:
    from decoders.audit.verdict import EXIT_CODES

    text = DOC.read_text()
    for verdict, code in EXIT_CODES.items():
        assert f"| {code} | `{verdict}` |" in text
