"""Tests for decoders.addon.saving: which flows go to flows.mitm, and when."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.script_addons import ScriptAddons
from mitmproxy import io
from mitmproxy.test import taddons, tflow


def saved(path: Path) -> list[Any]:
    with path.open("rb") as stream:
        return list(io.FlowReader(stream).stream())


def test_relevant_flows_are_saved_when_they_end(script: ScriptAddons, tmp_path: Path) -> None:
    saving = script.get("FlowSaving")
    with taddons.context(script) as context:
        context.configure(script, mutecheck_dir=str(tmp_path / "s"), mutecheck_observer=False)
        script.recorder.open()  # the session opens: the saver opens flows.mitm with it
        kept, ignored, never_ended = tflow.tflow(resp=True), tflow.tflow(resp=True), tflow.tflow()
        for item in (kept, ignored, never_ended):
            saving.request(item)
        script.recorder.relevant.update({kept.id, never_ended.id})
        saving.response(kept)
        saving.response(ignored)
        assert script.recorder.relevant == {never_ended.id}
        saving.done()  # what never ended is saved as it is
        script.recorder.close()
    assert [f.id for f in saved(tmp_path / "s" / "flows.mitm")] == [kept.id, never_ended.id]


def test_nothing_is_saved_with_none_or_a_save_file_of_yours(
    script: ScriptAddons, tmp_path: Path
) -> None:
    saving = script.get("FlowSaving")
    with taddons.context(script) as context:
        context.configure(script, mutecheck_dir=str(tmp_path / "s"), mutecheck_save_flows="none")
        script.recorder.open()
        item = tflow.tflow(resp=True)
        saving.request(item)
        saving.response(item)
        assert not (tmp_path / "s" / "flows.mitm").exists()
        context.configure(script, mutecheck_save_flows="all")  # on again: the file opens
        again = tflow.tflow(resp=True)
        saving.request(again)
        saving.response(again)
        script.recorder.close()
    assert [f.id for f in saved(tmp_path / "s" / "flows.mitm")] == [again.id]
