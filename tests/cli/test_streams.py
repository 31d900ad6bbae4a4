"""``mutecheck streams`` as a user runs it: real processes, real files, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers.cli_run import run_mutecheck as run

ROOT = Path(__file__).resolve().parents[2]
UI_ONLY = ROOT / "captures" / "chromium-ui-only"


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


def test_streams_reads_past_unusable_event_lines(tmp_path: Path) -> None:
    """events.jsonl is read for SDP only: a damaged line is a one-line warning, not the end."""
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


def test_streams_parquet_is_the_corpus_streams_table(tmp_path: Path) -> None:
    """--parquet F: each stream whole (phase `all`, joined across its legs), as the streams
    table of docs/corpus.md; a folder that cannot take it is one line."""
    import pyarrow.parquet as pq

    target = tmp_path / "streams.parquet"
    result = run("streams", str(UI_ONLY), "--parquet", str(target))
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(target).to_pylist()
    doc = json.loads(run("streams", str(UI_ONLY), "--json").stdout)
    assert {r["phase"] for r in rows} == {"all"}
    assert sorted((r["ssrc"], r["packets"]) for r in rows) == sorted(
        (s["ssrc"], s["packets"]) for s in doc["streams"]
    )
    bad = run("streams", str(UI_ONLY), "--parquet", str(tmp_path / "no" / "such.parquet"))
    assert bad.returncode == 2 and bad.stderr.count("mutecheck: error:") == 1
