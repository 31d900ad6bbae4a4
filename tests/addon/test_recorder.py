"""Tests for decoders.addon.recorder: the shared monitor and events.jsonl, in the proxy or in the
observer process, and what the classes tell each other through it."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.script_addons import ScriptAddons
from mitmproxy.test import taddons, tflow

from decoders.addon.recorder import MAX_INTERNAL_ERRORS, OPTION_NAMES
from decoders.session.monitor import FlowRef, Message, Outcome

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "signaling"
WEBEX = (FIXTURES / "webex_metrics.json").read_bytes()


def events(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def telemetry(flow_id: str) -> Message:
    return Message(
        flow=FlowRef(id=flow_id, type="http", url="https://m.example.org/v1", method="POST"),
        endpoint="https://m.example.org/v1",
        sent=True,
        content=WEBEX,
        label="POST https://m.example.org/v1",
    )


def test_the_first_event_opens_the_session_and_listeners_follow(
    tctx: taddons.context, script: ScriptAddons, tmp_path: Path
) -> None:
    recorder = script.recorder
    heard: list[str] = []
    recorder.opened.append(lambda folder: heard.append(f"opened {folder.name}"))
    recorder.closing.append(lambda: heard.append("closing"))
    recorder.emit(Outcome())  # nothing to write: nothing opens
    assert not recorder.is_open
    flow = tflow.tflow()
    recorder.mark(1.0, True, via="command")
    out = recorder.judge(telemetry(flow.id), 2.0, flow)
    assert out is not None and out.events and flow.id in recorder.relevant
    recorder.close()
    assert heard == ["opened session", "closing"]
    written = events(tmp_path / "session")
    assert [e["kind"] for e in written] == ["session_start", "mute", "telemetry", "warning"]
    assert list(written[0]["options"]) == list(OPTION_NAMES)  # type: ignore[call-overload]


def test_internal_errors_are_bounded(
    tctx: taddons.context, script: ScriptAddons, tmp_path: Path
) -> None:
    recorder = script.recorder
    recorder.open()
    flow = tflow.tflow()
    for _ in range(MAX_INTERNAL_ERRORS + 5):
        recorder.internal_error("request", (flow,), RuntimeError("boom"))
    recorder.internal_error("save", (tflow.tflow(),), RuntimeError("late"))
    assert recorder.errors == MAX_INTERNAL_ERRORS + 6 and recorder.relevant == {flow.id}
    recorder.close()
    warnings = [e for e in events(tmp_path / "session") if e["kind"] == "warning"]
    assert len(warnings) == MAX_INTERNAL_ERRORS
    assert warnings[0]["flow"] == {"id": flow.id} and warnings[0]["code"] == "internal-error"


def test_the_observer_judges_and_hands_the_monitor_back(
    script: ScriptAddons, tmp_path: Path
) -> None:
    recorder = script.recorder
    with taddons.context(script) as context:
        context.configure(script, mutecheck_dir=str(tmp_path / "s"), mutecheck_grace_ms=0)
        recorder.open()
        assert recorder.observer is not None and recorder.observer.alive
        state = recorder.mark(1.0, True, via="command")
        assert state["muted"] is True
        flow = tflow.tflow()
        assert recorder.judge(telemetry(flow.id), 2.0, flow) is None  # the observer judges
        assert flow.id in recorder.relevant
        context.configure(script, mutecheck_block=True)  # block mode: back into the proxy
        assert recorder.observer is None and recorder.monitor.muted
        recorder.finish()
        recorder.close()
    kinds = [e["kind"] for e in events(tmp_path / "s")]
    assert kinds[:4] == ["session_start", "mute", "telemetry", "warning"]  # by the observer
    assert kinds.count("telemetry") == 1
