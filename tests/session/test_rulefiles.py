"""Tests for decoders.session.rulefiles: the built-in rule files load, and say what they claim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decoders.errors import MalformedPacket
from decoders.session.rulefiles import builtin_files, builtin_path, builtin_rules, rule_set

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "signaling" / "rules.json"


def test_every_builtin_file_is_a_rule_file_people_can_read() -> None:
    files = builtin_files()
    assert [name for name, _ in files] == [
        "janus-audiobridge.json",
        "janus-echotest.json",
        "janus-videocall.json",
        "janus-videoroom.json",
    ]
    for name, text in files:
        document = json.loads(text)
        assert document["version"] == 1 and len(document["about"]) > 80, name
        assert (Path(builtin_path()) / name).read_text(encoding="utf-8") == text


def test_builtin_rules_are_janus_server_side_mutes() -> None:
    rules = builtin_rules()
    assert [rule.janus_plugin for rule in rules] == [
        "janus.plugin.audiobridge",
        "janus.plugin.echotest",
        "janus.plugin.videocall",
        "janus.plugin.videoroom",
        "janus.plugin.videoroom",
    ]
    assert {rule.scope for rule in rules} == {"server"}
    assert {rule.direction for rule in rules} == {"sent"}
    assert [rule.needle for rule in rules] == [b"muted", b"audio", b"audio", b"audio", b"send"]
    assert [rule.media_kind for rule in rules] == [None, None, None, None, "audio"]


def test_rule_set_puts_the_users_rules_after_the_builtin_ones(tmp_path: Path) -> None:
    assert len(rule_set(None)) == len(builtin_rules())
    assert rule_set(None, builtin=False) == ()
    both = rule_set(FIXTURE)
    assert [rule.name for rule in both[-3:]] == [
        "example mute API",
        "example mute over WebSocket",
        "example mute endpoint",
    ]
    assert len(rule_set(FIXTURE, builtin=False)) == 3
    broken = tmp_path / "rules.json"
    broken.write_text('{"rules": [{"scope": "browser", "state": "muted"}]}')
    with pytest.raises(MalformedPacket, match="scope 'browser' is not server or client"):
        rule_set(broken)
    with pytest.raises(FileNotFoundError):
        rule_set(tmp_path / "missing.json")
