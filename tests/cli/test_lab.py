"""``mutecheck lab``: options, one-line errors with exit code 2, record-all's all-or-nothing.

Recording itself is tested live in test_record.py; here the recorder is replaced where a test
needs a run that succeeds or fails without Chromium.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from decoders.cli import lab as cli
from decoders.cli.lab import corpus_plan, lab, parse_durations
from decoders.lab.record import VARIANTS, LabError, session_name

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_parse_durations() -> None:
    assert parse_durations("4,6,4") == (4.0, 6.0, 4.0)
    assert parse_durations("0.5, 1.5 ,2") == (0.5, 1.5, 2.0)
    assert parse_durations("4,190,4") == (4.0, 190.0, 4.0)  # minutes muted: telemetry-gains
    for bad in ("4,6", "4,6,4,4", "a,b,c", "0,1,1", "61,1,1", "1,601,1", "1,1,61", ""):
        with pytest.raises(ValueError, match="durations"):
            parse_durations(bad)


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(lab, ["--help"])
    assert result.exit_code == 0
    assert "record " in result.output and "record-all" in result.output
    result = CliRunner().invoke(lab, ["record", "--help"])
    assert all(variant in result.output for variant in VARIANTS)


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    for args in (
        ["record", "--variant", "nope", "--out", str(tmp_path / "x")],
        ["record", "--variant", "ui-only", "--out", str(tmp_path / "x"), "--durations", "1,2"],
        ["record", "--variant", "ui-only"],
    ):
        assert runner.invoke(lab, args).exit_code == 2, args


def test_failed_step_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    result = CliRunner().invoke(
        lab, ["record", "--variant", "ui-only", "--out", str(tmp_path / "full")]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mutecheck lab: error: lab step 'arguments' failed: ")


def fake_recorder(fail_on: str | None) -> object:
    """Stands in for record_session: copies a committed session, or fails like the lab."""

    def record(
        variant: str,
        out_dir: Path,
        durations: tuple[float, float, float],
        *,
        shared_reference: Path | None = None,
        addon: Path | None = None,
        relay: str = "none",
        peer_talks: bool = False,
        video: bool = False,
        shared_peer_reference: Path | None = None,
        rtpdump: bool = False,
        browser: str = "chromium",
        answerer: str = "aiortc",
    ) -> Path:
        if variant == fail_on:
            raise LabError("browser", "chromium exited (1): something\nwith a second line")
        out_dir.mkdir(parents=True)
        (out_dir / "session.json").write_text(f'{{"variant": "{variant}"}}')
        if shared_reference is not None and not shared_reference.exists():
            shared_reference.write_bytes(b"RIFF")
        if shared_peer_reference is not None and not shared_peer_reference.exists():
            shared_peer_reference.write_bytes(b"RIFF peer")
        # TCP/TLS relays keep Chromium's plaintext dump (their ground truth)
        assert rtpdump is (relay in ("tcp", "tls"))
        return out_dir

    return record


def unmeasurable(folder: Path) -> None:
    raise ValueError(f"cannot measure {folder}")


def test_record_all_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "record_session", fake_recorder(fail_on=None))
    monkeypatch.setattr(cli, "summarize", unmeasurable)
    out = tmp_path / "corpus"
    result = CliRunner().invoke(lab, ["record-all", "--out", str(out), "--durations", "1,1,1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(session_name(v) for v in VARIANTS), "reference.wav"]
    )
    assert f"recorded {len(VARIANTS)} sessions" in result.output
    assert "(no summary: ValueError: cannot measure" in result.output

    # existing sessions: refused without --replace
    result = CliRunner().invoke(lab, ["record-all", "--out", str(out)])
    assert result.exit_code == 2 and "--replace" in result.stderr

    # a failure half-way leaves the corpus as it was, and no staging folder
    (out / "chromium-ui-only" / "marker").write_text("old")
    monkeypatch.setattr(cli, "record_session", fake_recorder(fail_on="quiet"))
    result = CliRunner().invoke(lab, ["record-all", "--out", str(out), "--replace"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("mutecheck lab: error: chromium-quiet: lab step 'browser' failed:")
    assert (out / "chromium-ui-only" / "marker").exists()
    assert not any(p.name.startswith(".lab-staging") for p in out.iterdir())

    # --replace after a full run replaces every session
    monkeypatch.setattr(cli, "record_session", fake_recorder(fail_on=None))
    result = CliRunner().invoke(lab, ["record-all", "--out", str(out), "--replace"])
    assert result.exit_code == 0
    assert not (out / "chromium-ui-only" / "marker").exists()


def test_corpus_plan() -> None:
    assert [r.name for r in corpus_plan(relays=False, peer_talks=False, video=False)] == [
        session_name(v) for v in VARIANTS
    ]
    extra = corpus_plan(relays=True, peer_talks=True, video=True)
    assert [r.name for r in extra] == [
        "chromium-track-disabled-relay-udp",
        "chromium-ui-only-relay-udp",
        "chromium-track-disabled-relay-tcp",
        "chromium-ui-only-relay-tcp",
        "chromium-track-disabled-relay-tls",
        "chromium-ui-only-relay-tls",
        "chromium-track-disabled-peer-talks",
        "chromium-ui-only-peer-talks",
        "chromium-track-disabled-video",
        "chromium-ui-only-video",
    ]
    assert [r.rtpdump for r in extra].count(True) == 4
    assert [r.name for r in corpus_plan(relays=False, peer_talks=False, video=True)] == [
        "chromium-track-disabled-video",
        "chromium-ui-only-video",
    ]


def test_firefox_plan_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = corpus_plan(relays=False, peer_talks=False, video=False, browser="firefox")
    assert [r.name for r in plan] == [f"firefox-{v}" for v in VARIANTS]
    with pytest.raises(ValueError, match="Chromium only"):
        corpus_plan(relays=True, peer_talks=False, video=False, browser="firefox")
    monkeypatch.setattr(cli, "record_session", fake_recorder(fail_on=None))
    monkeypatch.setattr(cli, "summarize", unmeasurable)
    out = tmp_path / "corpus"
    result = CliRunner().invoke(lab, ["record-all", "--browser", "firefox", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(r.name for r in plan), "reference.wav"]
    )
    for args in (
        ["record", "--browser", "firefox", "--variant", "ui-only", "--relay", "udp"],
        ["record", "--browser", "firefox", "--app", "janus-echotest"],
        ["record-all", "--browser", "firefox", "--video"],
        ["record-all", "--browser", "firefox", "--apps"],
    ):
        bad = CliRunner().invoke(lab, [*args, "--out", str(tmp_path / "x")])
        assert bad.exit_code == 2, (args, bad.output)
        assert len(bad.output.strip().splitlines()) == 1 and "firefox" in bad.output.lower()


def test_record_all_extra_shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "record_session", fake_recorder(fail_on=None))
    monkeypatch.setattr(cli, "summarize", unmeasurable)
    out = tmp_path / "corpus"
    result = CliRunner().invoke(
        lab, ["record-all", "--out", str(out), "--relays", "--peer-talks", "--video"]
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    plan = corpus_plan(relays=True, peer_talks=True, video=True)
    assert names == sorted([*(r.name for r in plan), "reference.wav", "peer-reference.wav"])
    assert "recorded 10 sessions" in result.output


def test_record_passes_the_call_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def record(variant: str, out_dir: Path, *args: object, **kwargs: object) -> Path:
        seen.update(kwargs, variant=variant)
        shutil.copytree(CAPTURES / "chromium-ui-only-relay-tls", out_dir)
        return out_dir

    monkeypatch.setattr(cli, "record_session", record)
    result = CliRunner().invoke(
        lab,
        [
            *("record", "--variant", "ui-only", "--relay", "tls", "--out", str(tmp_path / "s")),
            *("--peer-talks", "--video", "--rtpdump"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen["relay"] == "tls" and seen["peer_talks"] is True and seen["video"] is True
    assert "read from Chromium's plaintext RTP dump" in result.output
    bad = CliRunner().invoke(
        lab, ["record", "--variant", "ui-only", "--relay", "sctp", "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2
    # telemetry-gains takes the period between its readings (a minute unless told)
    seen.clear()
    gains = ["record", "--variant", "telemetry-gains", "--out", str(tmp_path / "g")]
    result = CliRunner().invoke(lab, [*gains, "--gain-period", "15"])
    assert result.exit_code == 0, result.output
    assert seen["variant"] == "telemetry-gains" and seen["gain_period"] == 15.0
    wrong = ["record", "--variant", "ui-only", "--gain-period", "15", "--out", str(tmp_path / "u")]
    result = CliRunner().invoke(lab, wrong)
    assert result.exit_code == 2
    assert "--gain-period is for --variant telemetry-gains" in result.output


def test_record_prints_the_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def copy(variant: str, out_dir: Path, *args: object, **kwargs: object) -> Path:
        shutil.copytree(CAPTURES / f"chromium-{variant}", out_dir)
        return out_dir

    monkeypatch.setattr(cli, "record_session", copy)
    monkeypatch.setattr(cli, "ADDON", tmp_path / "missing.py")
    result = CliRunner().invoke(
        lab, ["record", "--variant", "track-disabled", "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    assert "not found: the proxy runs without it" in result.output
    assert "track-disabled: muted 50.0 pkt/s" in result.output
    assert "audio level median 127" in result.output


def test_summary_command(tmp_path: Path) -> None:
    folders = [str(CAPTURES / "chromium-ui-only"), str(CAPTURES / "chromium-track-disabled")]
    result = CliRunner().invoke(lab, ["summary", *folders])
    assert result.exit_code == 0, result.output
    header, rule, *rows = result.output.strip().splitlines()
    assert header.startswith("| variant | RTP packets/s muted") and rule.startswith("|---|")
    assert rows[0].startswith("| `ui-only` | 50.0 (")
    assert rows[1].startswith("| `track-disabled` | 50.0 (")
    assert "| 127 (" in rows[1]
    result = CliRunner().invoke(lab, ["summary", "--json", *folders])
    assert [s["variant"] for s in json.loads(result.output)] == ["ui-only", "track-disabled"]
    result = CliRunner().invoke(lab, ["summary", str(tmp_path)])
    assert result.exit_code == 2
    assert (
        result.stderr.startswith("mutecheck lab: error: ") and "not a lab session" in result.stderr
    )
    # a call a second Firefox answered has no exported keys: one line saying so
    result = CliRunner().invoke(lab, ["summary", str(CAPTURES / "firefox-ui-only-to-firefox")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "no keys.json" in result.stderr and "expected.json" in result.stderr


def test_app_options_are_checked(tmp_path: Path) -> None:
    """--app and --variant exclude each other; each one's options are refused with the other."""
    runner = CliRunner()
    cases = [
        ["record", "--out", str(tmp_path / "a")],
        ["record", "--variant", "ui-only", "--app", "janus-echotest", "--out", str(tmp_path / "b")],
        ["record", "--app", "janus-echotest", "--relay", "udp", "--out", str(tmp_path / "c")],
        ["record", "--variant", "ui-only", "--dtx", "--out", str(tmp_path / "d")],
        ["record-all", "--apps", "--video", "--out", str(tmp_path / "e")],
    ]
    for arguments in cases:
        result = runner.invoke(lab, arguments)
        assert result.exit_code == 2, arguments
        assert result.output.count("\n") == 1 and "mutecheck lab: error:" in result.output
    assert not any(tmp_path.iterdir())


def test_apps_plan_covers_the_four_demos() -> None:
    from decoders.cli.lab import JANUS_APPS, apps_plan
    from decoders.lab.janus import APPS

    plan = apps_plan()
    assert {r.app for r in plan} == {
        "janus-audiobridge",
        "janus-videoroom",
        "janus-videoroom-streams",
        "janus-echotest",
        "janus-videocall",
    }
    assert set(JANUS_APPS) == set(APPS) == {r.app for r in plan}
    names = [r.name for r in plan]
    assert len(set(names)) == len(names)
    assert "janus-videoroom-dtx" in names and "janus-echotest-ws" in names
