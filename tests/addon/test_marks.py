"""Tests for decoders.addon.marks: the commands and the mark host, on the shared recorder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.script_addons import ScriptAddons
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow

from decoders.addon.marks import METADATA_KEY


def get(url: str, method: str = "GET") -> http.HTTPFlow:
    return tflow.tflow(req=http.Request.make(method, url))


def test_commands_mark_the_recorders_monitor(tctx: taddons.context, script: ScriptAddons) -> None:
    marks = script.get("Marks")
    assert tctx.command(marks.state) == "unknown"
    tctx.command(marks.mark, "muted")
    assert script.recorder.monitor.muted
    assert tctx.command(marks.state).startswith("muted since ")
    with pytest.raises(exceptions.CommandError, match="'loud' is not muted or unmuted"):
        tctx.command(marks.mark, "loud")
    assert "mutecheck.mark" in tctx.master.commands.commands


def test_the_mark_host_is_answered_and_other_requests_are_left_alone(
    tctx: taddons.context, script: ScriptAddons, tmp_path: Path
) -> None:
    marks = script.get("Marks")
    flow = get("http://mutecheck.mark/unmuted?note=by+hand")
    marks.request(flow)
    assert flow.response is not None and flow.response.status_code == 200
    assert json.loads(flow.response.content or b"")["marked"] == "unmuted"
    assert flow.metadata[METADATA_KEY] == "mark" and flow.id in script.recorder.relevant
    by_header = get("http://10.0.0.1/muted")
    by_header.request.headers["Host"] = "MuteCheck.Mark"
    marks.request(by_header)
    assert by_header.response is not None and script.recorder.monitor.muted
    other = get("http://example.org/muted")
    marks.request(other)
    assert other.response is None and METADATA_KEY not in other.metadata
    lines = (tmp_path / "session" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["session_start", "mute", "mute"]
