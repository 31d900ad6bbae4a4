"""The command line as a user runs it: real processes, real files, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
UI_ONLY = ROOT / "captures" / "chromium-ui-only"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "decoders.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_streams_on_a_session_folder() -> None:
    result = run("streams", str(UI_ONLY))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Source Address" in out and "SSRC" in out and "Max Jitter (ms)" in out
    assert "opus (111)" in out
    assert "audio level: extension id 1 (sdp" in out
    assert "SRTP_AES128_CM_SHA1_80" in out


def test_streams_json_is_documented_schema() -> None:
    result = run("streams", str(UI_ONLY), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "mutecheck.streams" and doc["version"] == 1
    assert doc["audio_level"] == {
        "extension_id": 1,
        "source": "sdp",
        "evidence": "a=extmap urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    }
    (stream,) = [s for s in doc["streams"] if s["media"] == "audio"]
    documented = (ROOT / "docs" / "streams-json.md").read_text()
    for key in stream:
        assert f"`{key}`" in documented or key in documented, f"{key} is not documented"
    assert stream["codec"] == "opus" and stream["clock_rate"] == 48000
    assert doc["datagrams"]["rtp"] == stream["packets"]


def test_streams_without_sdp_says_inferred(tmp_path: Path) -> None:
    capture = tmp_path / "call.pcapng"
    capture.write_bytes((UI_ONLY / "capture.pcapng").read_bytes())
    result = run("streams", str(capture))
    assert result.returncode == 0, result.stderr
    assert "audio level: extension id 1 (inferred" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"hello, this is not a capture at all\n", "not a pcap or pcapng file"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "pcap"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(content)
    result = run("streams", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mutecheck: error:") and message in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_file_and_empty_folder(tmp_path: Path) -> None:
    for target in (tmp_path / "nope.pcap", tmp_path):
        result = run("streams", str(target))
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


def test_broken_sdp_is_a_user_error(tmp_path: Path) -> None:
    sdp = tmp_path / "offer.sdp"
    sdp.write_text("v=0\r\nm=audio notaport RTP/SAVPF 111\r\n")
    result = run("streams", str(UI_ONLY / "capture.pcapng"), "--sdp", str(sdp))
    assert result.returncode == 2
    assert "SDP" in result.stderr and "Traceback" not in result.stderr


def test_truncated_capture_warns_and_keeps_results(tmp_path: Path) -> None:
    data = (UI_ONLY / "capture.pcapng").read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[: len(data) * 2 // 3 + 5])
    result = run("streams", str(cut), "--json")
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["damage"] and "truncated" in doc["damage"]
    assert doc["streams"] and doc["streams"][0]["packets"] > 300
    assert "warning" in result.stderr and "everything before it was analysed" in result.stderr


@pytest.mark.parametrize("engine", ["scalar", "tshark"])
def test_engines_agree_on_the_table(engine: str, tshark: str) -> None:
    fast = json.loads(run("streams", str(UI_ONLY), "--json").stdout)
    other = json.loads(run("streams", str(UI_ONLY), "--json", "--engine", engine).stdout)
    keys = ("src", "src_port", "dst", "dst_port", "ssrc", "packets", "lost", "audio_level_median")
    assert [{k: s[k] for k in keys} for s in fast["streams"]] == [
        {k: s[k] for k in keys} for s in other["streams"]
    ]


def test_mark_without_a_proxy_is_a_one_line_error() -> None:
    result = run("mark", "muted", "--proxy", "127.0.0.1:9")
    assert result.returncode == 2
    assert "mutecheck mark: proxy 127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
    assert run("mark", "-h").returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "--bogus"], "mutecheck analyze: No such option '--bogus'"),
        (["analyze", "--grace", "soon"], "mutecheck analyze: Invalid value for '--grace'"),
        (["streams"], "mutecheck streams: Missing argument 'CAPTURE'"),
        (["streams", "x", "--engine", "magic"], "mutecheck streams: Invalid value for '--engine'"),
        (["report", "x", "--htm", "y"], "Did you mean '--html'?"),
        (["decrypt"], "mutecheck decrypt: Missing argument"),
        (["import-rtpdump", "log"], "mutecheck import-rtpdump: Missing option"),
        (["signals", "x", "--top", "0"], "mutecheck signals: Invalid value for '--top'"),
        (["lab", "record", "--variant", "nope"], "mutecheck lab record: Invalid value"),
        (["lab", "nosuch"], "mutecheck lab: No such command 'nosuch'"),
        (["nosuch"], "mutecheck: No such command 'nosuch'"),
        (["mark", "bogus"], "mutecheck mark: argument state: invalid choice: 'bogus'"),
        (["mark", "muted", "--at", "x"], "mutecheck mark: argument --at: invalid float value"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    """Issue 13: click printed three lines (Usage, Try, Error); every command says one."""
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mutecheck: error: ") and message in lines[0], lines[0]
    assert lines[0].endswith(" -h)") or lines[0].endswith(" --help)")


def test_asking_for_nothing_still_shows_the_help() -> None:
    result = run()
    assert "Commands:" in result.stdout + result.stderr and "analyze" in result.stderr
    assert run("--help").returncode == 0 and run("analyze", "--help").returncode == 0


def test_streams_shows_media_relayed_through_tls() -> None:
    folder = ROOT / "captures" / "chromium-ui-only-relay-tls"
    result = run("streams", str(folder))
    assert result.returncode == 0, result.stderr
    assert "no RTP streams found" in result.stdout
    assert "relayed through TLS: sizes and timing only" in result.stdout
    assert "TURN client" in result.stdout and "TLS 1.2 +24" in result.stdout
    doc = json.loads(run("streams", str(folder), "--json").stdout)
    client = next(c for c in doc["relayed_tls"] if c["sender"] == "client")
    documented = (ROOT / "docs" / "streams-json.md").read_text()
    for key in client:
        assert f"`{key}`" in documented or key in documented, f"{key} is not documented"
    assert client["dst_port"] == 5349 and client["overheads"]["tls_record"] == 24


# --- mutecheck signals -------------------------------------------------------------------------


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


def test_streams_reads_past_unusable_event_lines(tmp_path: Path) -> None:
    """events.jsonl is read for SDP only: a damaged line is a one-line warning, not the end."""
    import shutil

    folder = tmp_path / "session"
    shutil.copytree(UI_ONLY, folder)
    lines = (folder / "events.jsonl").read_bytes().splitlines()
    lines[0] = b'{"t":NaN,' + lines[0].split(b",", 1)[1]
    lines.insert(1, b"[" * 100_000 + b"]" * 100_000)
    (folder / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    result = run("streams", str(folder))
    assert result.returncode == 0, result.stderr
    assert "opus (111)" in result.stdout
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("mutecheck: warning: ") and "2 line(s) could not be used" in warning


def test_an_unusable_sdp_level_id_is_a_warning_and_the_levels_stay(tmp_path: Path) -> None:
    """Issue 13: ``a=extmap:300 ...ssrc-audio-level`` emptied the level column silently."""
    line = "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level"
    folder = tmp_path / "session"
    shutil.copytree(UI_ONLY, folder)
    for name in ("offer.sdp", "answer.sdp"):
        text = (folder / name).read_text()
        (folder / name).write_text(text.replace(line, line.replace(":1 ", ":300 ")))
    result = run("streams", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("mutecheck: warning: SDP a=extmap:300 ")
    assert "outside 1-14 (one-byte header) and 1-255 (two-byte header" in warning
    doc = json.loads(result.stdout)
    assert doc["audio_level"]["extension_id"] == 1 and doc["audio_level"]["source"] == "inferred"
    assert "id 300 is outside" in doc["audio_level"]["warning"]
    (audio,) = [s for s in doc["streams"] if s["media"] == "audio"]
    assert audio["audio_level_median"] is not None
    verdict = run("analyze", str(folder), "--no-report")
    assert verdict.returncode == 5, verdict.stderr
    assert "SDP a=extmap:300 urn:ietf:params:rtp-hdrext:ssrc-audio-level: id 300" in verdict.stdout
