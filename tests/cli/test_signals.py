"""``mutecheck signals`` as a user runs it: the ranking, the rule file, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.cli_run import run_mutecheck as run

ROOT = Path(__file__).resolve().parents[2]
UI_ONLY = ROOT / "captures" / "chromium-ui-only"


def test_signals_finds_the_lab_telemetry_pages_muted_field(tmp_path: Path) -> None:
    folder = ROOT / "captures" / "chromium-telemetry-ws"
    rules = tmp_path / "rules.json"
    result = run("signals", str(folder), "--write-rules", str(rules))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "marks change 2 times (muted at +" in out
    assert "#1 muted  [value: muted = true, unmuted = false]" in out
    assert "sent WebSocket ws://10.77.0.2:8080/ws" in out
    assert "follows the marks: muted in sent WebSocket" in out
    assert f"wrote 1 rule to {rules}" in out
    # the rules alone give the marked interval back (the page reports every 0.5 s)
    agreement = float(out.rsplit("agreement ", 1)[1].split()[0])
    assert agreement > 0.95
    (rule,) = json.loads(rules.read_text())["rules"]
    assert rule["json_path"] == "muted" and rule["muted"] == [True]
    assert rule["url"].startswith("^ws://10\\.77\\.0\\.2:8080/ws")


def test_signals_says_no_field_follows_on_a_page_that_sends_none(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    result = run("signals", str(UI_ONLY), "--write-rules", str(rules))
    assert result.returncode == 3, result.stderr
    assert "no field follows the marks (no score reaches 0.60" in result.stdout
    assert "wrote no rule file" in result.stdout and not rules.exists()


def test_signals_json(tmp_path: Path) -> None:
    result = run("signals", str(ROOT / "captures" / "chromium-telemetry-http"), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["follows"] is True and doc["follows_score"] == 0.6
    best = doc["candidates"][0]
    assert (best["path"], best["transport"], best["direction"]) == ("muted", "http", "sent")
    assert best["endpoint"] == "http://10.77.0.2:8080/telemetry" and best["methods"] == ["POST"]
    assert [c["means"] for c in best["changes"]] == ["unmuted", "muted", "unmuted"]
    documented = (ROOT / "docs" / "audit-playbook.md").read_text()
    for key in [*doc, *best]:
        assert f"`{key}`" in documented, f"{key} is not documented"


def test_signals_usage_errors(tmp_path: Path) -> None:
    result = run("signals", str(tmp_path))
    assert result.returncode == 2 and "no flows.mitm" in result.stderr
    (tmp_path / "flows.mitm").write_bytes(b"not a flow file")
    result = run("signals", str(tmp_path))
    assert result.returncode == 2 and "not a mitmproxy flow file" in result.stderr
    unmarked = tmp_path / "unmarked"
    unmarked.mkdir()
    (unmarked / "flows.mitm").write_bytes(
        (ROOT / "captures" / "chromium-telemetry-http" / "flows.mitm").read_bytes()
    )
    # the flows hold the lab page's mark requests: without events.jsonl they are the marks
    assert run("signals", str(unmarked)).returncode == 0
    assert "Traceback" not in result.stderr
