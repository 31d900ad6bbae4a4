"""``mutecheck report`` and the ``write_reports`` hook ``analyze --html/--wireshark`` calls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from decoders.audit.analysis import Inputs, analyze
from decoders.cli.report import Written, report, write_reports
from decoders.report.browser import find_chromium

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
SESSION = CAPTURES / "chromium-ui-only"


def test_report_writes_html_and_wireshark(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        report,
        [str(SESSION), "--html", str(tmp_path / "r.html"), "--wireshark", str(tmp_path / "ws")],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("content-leak (high confidence): ")
    assert lines[1] == f"HTML report: {tmp_path / 'r.html'}"
    assert lines[2].startswith(f"Wireshark files: {tmp_path / 'ws'} (annotated.pcapng with 280")
    assert "\x1b[" not in result.output  # not a terminal: no colour
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "ws" / "annotated.pcapng").is_file()
    assert (tmp_path / "ws" / "mutecheck.lua").is_file()


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(report, [str(SESSION), "--html", str(tmp_path / "r.html"), "-q"])
    assert result.exit_code == 0 and result.output == ""
    assert (tmp_path / "r.html").is_file()


def test_colour_when_asked(tmp_path: Path) -> None:
    out = str(tmp_path / "r.html")
    coloured = CliRunner().invoke(report, [str(SESSION), "--html", out, "--color"])
    assert coloured.exit_code == 0
    assert coloured.output.startswith("\x1b[")
    plain = CliRunner().invoke(report, [str(SESSION), "--html", out, "--no-color"])
    assert "\x1b[" not in plain.output


def test_a_capture_file_and_muted_intervals(tmp_path: Path) -> None:
    capture = str(CAPTURES / "chromium-track-disabled" / "capture.pcapng")
    bare = CliRunner().invoke(report, [capture, "--html", str(tmp_path / "a.html")])
    assert bare.exit_code == 0, bare.output
    assert bare.output.startswith("inconclusive")
    timed = CliRunner().invoke(
        report, [capture, "--html", str(tmp_path / "b.html"), "--muted", "4.1-10.1"]
    )
    assert timed.exit_code == 0, timed.output
    assert timed.output.startswith("no-leak")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(SESSION)], "nothing to write"),
        (["/no/such/session", "--html", "x.html"], "/no/such/session: no such file or folder"),
        ([str(SESSION), "--wireshark", "ws", "--screenshot", "x.png"], "--screenshot needs --html"),
        ([str(SESSION), "--html", "x.html", "--muted", "soon"], "is not START-END"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(report, args)
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.count("\n") == 1


def test_unwritable_output_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(report, [str(SESSION), "--html", str(blocker / "r.html")])
    assert result.exit_code == 2
    assert result.output.startswith("mutecheck: error: ")


def test_screenshot(tmp_path: Path) -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI")
        pytest.skip("Chromium not installed")
    shot = tmp_path / "r.png"
    result = CliRunner().invoke(
        report, [str(SESSION), "--html", str(tmp_path / "r.html"), "--screenshot", str(shot)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"Screenshot: {shot}"
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_write_reports_hook(tmp_path: Path) -> None:
    analysis = analyze(Inputs(session_dir=SESSION))
    assert write_reports(analysis, html=None, wireshark=None) == Written()
    written = write_reports(analysis, html=tmp_path / "r.html", wireshark=tmp_path / "ws")
    assert written.html == tmp_path / "r.html" and written.html.is_file()
    assert written.wireshark is not None and written.wireshark.flagged_frames == 280
    assert written.lines() == [
        f"HTML report: {tmp_path / 'r.html'}",
        f"Wireshark files: {tmp_path / 'ws'} (annotated.pcapng with 280 flagged frame(s); "
        "see README.md)",
    ]


def test_capture_damage_shows_on_the_terminal(tmp_path: Path) -> None:
    """Issue 13: ``report`` showed a damaged capture only in the HTML; the terminal says it
    too, on stderr, as ``streams`` and ``analyze`` do (the report is still written)."""
    folder = tmp_path / "session"
    folder.mkdir()
    for name in ("timeline.json", "offer.sdp", "answer.sdp", "keys.json"):
        (folder / name).write_bytes((SESSION / name).read_bytes())
    whole = (SESSION / "capture.pcapng").read_bytes()
    (folder / "capture.pcapng").write_bytes(whole[: len(whole) * 2 // 3 + 5])
    env = dict(os.environ, PYTHONPATH=str(CAPTURES.parent))
    run = subprocess.run(
        [sys.executable, "-m", "decoders.cli", "report", str(folder), "--html", "r.html"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0].startswith("content-leak")
    damage = [line for line in run.stderr.splitlines() if "capture damaged" in line]
    assert len(damage) == 1 and damage[0].startswith("mutecheck: warning: capture damaged: ")
    assert "truncated" in damage[0] and "everything before it was analysed" in damage[0]
    assert (tmp_path / "r.html").is_file()
    quiet = CliRunner().invoke(report, [str(folder), "--html", str(tmp_path / "q.html"), "-q"])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_many_warnings_are_cut_on_the_terminal() -> None:
    from decoders.cli.report import WARNINGS_SHOWN, warning_lines

    warnings = [f"mute window {i} lies outside the capture" for i in range(100)]
    lines = warning_lines([*warnings, "capture damaged: truncated record at byte 9"])
    assert lines[0] == "mutecheck: warning: capture damaged: truncated record at byte 9"
    assert len(lines) == WARNINGS_SHOWN + 1
    assert lines[-1] == "mutecheck: warning: and 81 more (all of them in the HTML report)"


def test_reports_replace_their_files_whole(tmp_path: Path) -> None:
    """Issue 13: the HTML report and every Wireshark file are renamed over, never rewritten in
    place (a browser or tshark reading one sees the old file or the new one)."""
    html, ws = tmp_path / "r.html", tmp_path / "ws"
    args = [str(SESSION), "--html", str(html), "--wireshark", str(ws)]
    assert CliRunner().invoke(report, args).exit_code == 0
    files = [html, *sorted(ws.iterdir())]
    assert len(files) >= 8
    keep = tmp_path / "links"
    keep.mkdir()
    for number, path in enumerate(files):
        path.write_bytes(b"old")
        os.link(path, keep / str(number))
    assert CliRunner().invoke(report, args).exit_code == 0
    assert all((keep / str(n)).read_bytes() == b"old" for n in range(len(files)))
    assert all(path.read_bytes() != b"old" for path in files)
    assert [p for p in tmp_path.rglob("*.partial")] == []
