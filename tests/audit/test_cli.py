"""Tests for decoders.audit.cli: `mutecheck analyze` output, report.json and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helpers.janus_messages as janus
import pytest
from click.testing import CliRunner
from helpers.corpus import lab_session

from decoders.audit.cli import analyze
from decoders.audit.verdict import EXIT_CODES

ROOT = Path(__file__).resolve().parent.parent.parent
CAPTURES = ROOT / "captures"


def session(name: str) -> Path:
    return lab_session(name)


@pytest.mark.parametrize(
    ("name", "verdict"),
    [("ui-only", "content-leak"), ("telemetry-ws", "metadata-leak"), ("track-disabled", "no-leak")],
)
def test_summary_report_and_exit_code(tmp_path: Path, name: str, verdict: str) -> None:
    report = tmp_path / "report.json"
    result = CliRunner().invoke(analyze, [str(session(name)), "--report", str(report)])
    assert result.exit_code == EXIT_CODES[verdict], result.output
    first = result.output.splitlines()[0]
    assert first.startswith(("LEAK", "NO LEAK"))
    assert f"verdict: {verdict} (exit code {EXIT_CODES[verdict]})" in result.output
    assert f"Full report: {report}" in result.output
    doc = json.loads(report.read_text())
    assert doc["schema"] == "mutecheck.report" and doc["verdict"]["verdict"] == verdict


def test_json_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        analyze, [str(session("quiet")), "--json", "--no-report", "--ignore", "keys"]
    )
    assert result.exit_code == 5
    doc = json.loads(result.output)
    assert doc["verdict"]["exit_code"] == 5
    assert doc["decoded_audio"]["status"] == "not measured"
    assert not (tmp_path / "report.json").exists()


def test_parts_by_flags(tmp_path: Path) -> None:
    folder = session("telemetry-http")
    args = [
        "--capture",
        str(folder / "capture.pcapng"),
        "--flows",
        str(folder / "flows.mitm"),
        "--timeline",
        str(folder / "timeline.json"),
        "--grace",
        "0.3",
        "--report",
        str(tmp_path / "r.json"),
    ]
    result = CliRunner().invoke(analyze, args)
    assert result.exit_code == 4, result.output
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["telemetry"]["source"] == "flows"
    assert doc["timeline"]["grace_s"] == 0.3


def test_capture_file_as_argument_without_timeline() -> None:
    folder = session("track-disabled")
    result = CliRunner().invoke(analyze, [str(folder / "capture.pcapng"), "--no-report"])
    assert result.exit_code == 3
    assert result.output.startswith("CANNOT TELL")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/session"], "no such file or folder"),
        (["--capture", "/no/such.pcap"], "no such file"),
        ([], "nothing to analyse"),
        (["--muted", "3-1", "--capture", "{capture}"], "ends before it starts"),
        (["--clock-offset", "soon", "--capture", "{capture}"], "--clock-offset"),
        (["--reference-start", "x", "--capture", "{capture}"], "--reference-start"),
        (["--capture", "{timeline}"], "{timeline}"),
    ],
)
def test_user_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    folder = session("track-disabled")
    names = {"capture": str(folder / "capture.pcapng"), "timeline": str(folder / "timeline.json")}
    args = [a.format(**names) for a in args]
    result = CliRunner().invoke(analyze, [*args, "--no-report"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("mutecheck: error: ")
    assert message.format(**names) in lines[0]


def test_unwritable_report(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "report.json"
    result = CliRunner().invoke(analyze, [str(session("dtx")), "--report", str(target)])
    assert result.exit_code == 2 and "cannot write the report" in result.output


def test_runs_as_a_module(tmp_path: Path) -> None:
    folder = session("replace-null")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "decoders.audit.cli",
            str(folder),
            "--report",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("NO LEAK")


def test_rules_options_and_the_hint(tmp_path: Path) -> None:
    """``--no-builtin-rules`` leaves a Janus EchoTest call without a mute interval (the
    one-line hint says what to do); ``--rules F`` reads the app's signal with the user's rule;
    the built-in rule names the server-side mute in the summary."""
    folder = tmp_path / "s"
    janus.janus_session(folder, lab_session("ui-only"), "echotest", "ws")
    bare = CliRunner().invoke(analyze, [str(folder), "--no-report", "--no-builtin-rules"])
    assert bare.exit_code == EXIT_CODES["inconclusive"]
    lines = bare.output.splitlines()
    assert lines[1].startswith("  why: no mute interval: no timeline, no mark, and the app sent")
    assert lines[2] == (
        "  to decide: mark mute and unmute with the addon (mutecheck mark muted|unmuted, or the "
        "mark URL), or pass --muted START-END"
    )
    rules = tmp_path / "rules.json"
    rules.write_text('{"rules": [{"json_path": "body.audio", "muted": false, "unmuted": true}]}')
    own = CliRunner().invoke(
        analyze, [str(folder), "--no-report", "--no-builtin-rules", "--rules", str(rules)]
    )
    assert own.exit_code == EXIT_CODES["content-leak"]
    builtin = CliRunner().invoke(analyze, [str(folder), "--no-report"])
    assert builtin.exit_code == EXIT_CODES["content-leak"]
    assert (
        "the app muted you on its server; your microphone audio still went to the server"
        in builtin.output.splitlines()[1]
    )
    missing = CliRunner().invoke(analyze, [str(folder), "--rules", str(tmp_path / "no.json")])
    assert missing.exit_code == 2 and "no such file (rules)" in missing.output


def _mutecheck(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "decoders.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def test_a_bare_capture_gets_nothing_written_beside_it(tmp_path: Path) -> None:
    """Issue 13: analysing a capture file alone wrote report.json into its folder (someone's
    evidence); now only --report writes one there. A session folder keeps its report.json."""
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    capture = evidence / "capture.pcapng"
    capture.write_bytes((session("ui-only") / "capture.pcapng").read_bytes())
    before = sorted(p.name for p in evidence.iterdir())
    proc = _mutecheck("analyze", str(capture), "--muted", "4.2-10.1", cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 5, err
    assert sorted(p.name for p in evidence.iterdir()) == before
    assert not (tmp_path / "report.json").exists()
    assert "Full report" not in out
    proc = _mutecheck(
        "analyze", str(capture), "--muted", "4.2-10.1", "--report", "r.json", cwd=tmp_path
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 5 and "Full report: r.json" in out, err
    assert json.loads((tmp_path / "r.json").read_text())["verdict"]["verdict"] == "content-leak"
    folder = tmp_path / "session"
    shutil.copytree(session("ui-only"), folder)
    proc = _mutecheck("analyze", str(folder))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 5 and f"Full report: {folder / 'report.json'}" in out, err
    assert json.loads((folder / "report.json").read_text())["schema"] == "mutecheck.report"


def test_concurrent_runs_never_show_a_partial_report(tmp_path: Path) -> None:
    """Issue 13: a reader polling report.json while runs wrote it saw it empty about half the
    time. Three runs on one session folder at once; every read of report.json is whole JSON."""
    folder = tmp_path / "session"
    shutil.copytree(session("ui-only"), folder)
    target = folder / "report.json"
    target.write_text("{}")
    link = tmp_path / "the-old-report.json"
    os.link(target, link)  # a second name of the old file: rewritten in place, it would change
    runs = [_mutecheck("analyze", str(folder), "-q") for _ in range(3)]
    reads = whole = 0
    while any(run.poll() is None for run in runs):
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        reads += 1
        document = json.loads(text)  # a part or an empty file would not parse
        whole += document == {} or document.get("schema") == "mutecheck.report"
    for run in runs:
        run.communicate(timeout=120)
        assert run.returncode == 5
    assert reads == whole
    assert json.loads(target.read_text())["verdict"]["verdict"] == "content-leak"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    assert link.read_text() == "{}"  # renamed over, not rewritten in place


def _keys_folder(path: Path) -> None:
    path.mkdir()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_keys_folder, "no SRTP key: the folder's key files gave none"),
        (lambda p: p.write_text("garbage"), "not JSON"),
        (lambda p: p.write_text("{}"), "version None is not 1"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00"), "decryption was not done"),
    ],
)
def test_keys_that_give_no_key_are_a_one_line_error(
    tmp_path: Path, make: Any, message: str
) -> None:
    """Issue 13: ``--keys DIR`` (or a key file that cannot be read) silently skipped the
    decryption; now it is one line and exit 2, saying decryption was not done."""
    keys = tmp_path / "keys"
    make(keys)
    proc = _mutecheck("analyze", str(session("quiet")), "--keys", str(keys), "--no-report")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, out + err
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"mutecheck: error: --keys {keys}: ") and message in line
    assert line.endswith("; decryption was not done")


def test_a_session_whose_keys_are_broken_warns(tmp_path: Path) -> None:
    """The session folder's own keys.json, broken: the audit goes on without decoding and the
    summary warns that decryption was not done and why."""
    folder = tmp_path / "session"
    shutil.copytree(session("quiet"), folder)
    (folder / "keys.json").write_text("{broken")
    (folder / "keylog.txt").unlink(missing_ok=True)
    proc = _mutecheck("analyze", str(folder), "--no-report")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 5, err
    assert "decryption was not done: the keys could not be read (ValueError:" in out
