"""``mutecheck audit``: usage errors as one line with exit code 2 (the live runs are in
tests/live/test_audit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from decoders.cli import main

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "ftp://x/", "--out", "o"], "is not an http:// or https:// URL"),
        (["audit", "http://x/", "--out", "o", "--plan", "6:loud"], "is not SECONDS:mute"),
        (["audit", "http://x/", "--out", "o", "--duration", "0"], "--duration"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [*args], catch_exceptions=False)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mutecheck: error:") and message in lines[0]


def test_a_visible_browser_needs_a_display(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = CliRunner().invoke(main, ["audit", "http://x/", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "mutecheck: error: no display for a visible browser (DISPLAY is not set): add --headless"
    )
    assert not (tmp_path / "s").exists()


def test_audit_refuses_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "evidence.txt").write_text("keep")
    result = CliRunner().invoke(main, ["audit", "http://x/", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "must be an empty folder" in result.output


def test_upstream_ca_must_hold_a_pem_certificate(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    args = ["audit", "http://x/", "--out", str(tmp_path / "s"), "--upstream-ca", str(bad)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"mutecheck: error: {bad}: not a PEM certificate")
    assert not (tmp_path / "s").exists()
