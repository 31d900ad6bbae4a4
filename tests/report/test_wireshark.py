"""The Wireshark companion, checked by Wireshark itself (tshark): comments, Lua fields, profile."""

from __future__ import annotations

import bisect
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from decoders.audit.analysis import Analysis, Inputs, analyze
from decoders.report import wireshark
from decoders.session.timeline import MuteInterval, build_timeline
from decoders.wire.capture import CaptureReader, Frame

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
LUA_SESSIONS = ("chromium-ui-only", "chromium-dtx", "chromium-track-stopped")
PHASES = {-1: "unmuted", -2: "transition"}


def _frames(path: Path) -> list[Frame]:
    with path.open("rb") as fo:
        return list(CaptureReader(fo))


def _tshark(binary: str, *args: str, env: dict[str, str] | None = None) -> list[list[str]]:
    done = subprocess.run(
        [binary, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    return [line.split("\t") for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def ui_only(tmp_path_factory: pytest.TempPathFactory) -> tuple[Analysis, wireshark.WiresharkFiles]:
    analysis = analyze(Inputs(session_dir=CAPTURES / "chromium-ui-only"))
    out = tmp_path_factory.mktemp("ws")
    return analysis, wireshark.write_wireshark(analysis, out)


# -- pure helpers ----------------------------------------------------------------------------
def test_frame_ranges_and_filter() -> None:
    assert wireshark.frame_ranges([5, 1, 2, 3, 9, 10, 3]) == [(1, 3), (5, 5), (9, 10)]
    assert wireshark.frame_filter([5, 1, 2, 3, 9, 10]) == "frame.number in {1..3, 5, 9..10}"
    assert wireshark.frame_filter([]) == ""


def test_uat_strings_escape_quotes() -> None:
    assert wireshark._uat('frame.comment contains "x"') == '"frame.comment contains \\x22x\\x22"'
    assert wireshark._uat("a\\b") == '"a\\x5cb"'


def test_rtp_ports_cover_every_stream_with_few_ports() -> None:
    def media(*pairs: tuple[int, int]) -> Any:
        return SimpleNamespace(streams=[SimpleNamespace(src_port=a, dst_port=b) for a, b in pairs])

    assert wireshark.rtp_ports(media((5000, 6000), (6000, 5000))) == [5000]
    chosen = wireshark.rtp_ports(media((1, 9), (2, 9), (3, 9), (4, 8)))
    assert 9 in chosen and len(chosen) == 2
    assert wireshark.rtp_ports(None) == []
    assert wireshark.decode_as_entries([41384], [9]).splitlines()[1:] == [
        "decode_as_entry: udp.port,41384,(none),RTP",
        "decode_as_entry: udp.port,9,(none),RTCP",
    ]
    assert wireshark.tshark_decode_args([41384], []) == ["-d", "udp.port==41384,rtp"]


def _lua_phase(edges: list[tuple[int, int, str, int | None]], t_ns: int) -> str:
    """What the plugin's binary search computes (the last edge at or before the time)."""
    keys = [s * 1_000_000_000 + n for s, n, _, _ in edges]
    at = bisect.bisect_right(keys, t_ns) - 1
    return "unmuted" if at < 0 else edges[at][2]


def test_phase_edges_agree_with_the_timeline() -> None:
    base = 1_795_990_000.0
    timeline = build_timeline(
        [
            MuteInterval(base + 4.0883, base + 10.0904, "lab", "t"),
            MuteInterval(base + 10.3, base + 10.5, "lab", "t"),  # grace periods overlap
            MuteInterval(base + 20.0, base + 20.3, "lab", "t"),  # shorter than two graces
        ],
        capture_span=(base, base + 30),
    )
    edges = wireshark.phase_edges(timeline)
    rng = np.random.default_rng(11)
    points = [base + x for x in rng.uniform(-1, 31, 5000)]
    for s, n, _, _ in edges:
        points += [s + n / 1e9 + d for d in (-1e-9, 0.0, 1e-9)]
    times = np.array([int(np.round(p * 1e9)) for p in points], np.int64)
    labels = timeline.segments(times)
    for t, label in zip(times.tolist(), labels.tolist(), strict=True):
        assert _lua_phase(edges, t) == PHASES.get(label, "muted")


# -- the files ---------------------------------------------------------------------------------
def test_files_written(ui_only: tuple[Analysis, wireshark.WiresharkFiles]) -> None:
    _, files = ui_only
    names = {p.name for p in files.directory.iterdir()}
    assert names == {
        "annotated.pcapng",
        "filters.txt",
        "mutecheck.lua",
        "decode_as_entries",
        "dfilter_macros",
        "dfilters",
        "preferences",
        "README.md",
    }
    assert files.flagged_frames == 280
    assert files.copy is not None and files.copy.commented == 280 and not files.copy.renumbered
    readme = files.readme.read_text()
    assert "-d udp.port==41384,rtp" in readme and "content-leak" in readme
    plugin = files.plugin.read_text()
    assert "audio_level_id = 1," in plugin and "--@SETTINGS@" not in plugin
    assert "[54942] = true" in plugin and "[41384] = true" in plugin
    text = files.filters.read_text()
    assert 'frame.comment contains "mutecheck:"' in text
    assert "# mutecheck_F1: F1 audio-level-while-muted" in text


def test_annotated_copy_keeps_every_frame(
    ui_only: tuple[Analysis, wireshark.WiresharkFiles],
) -> None:
    analysis, files = ui_only
    assert analysis.inputs.capture is not None and files.annotated is not None
    original = _frames(analysis.inputs.capture)
    copy = _frames(files.annotated)
    assert len(copy) == len(original) == 756
    for a, b in zip(original, copy, strict=True):
        assert (a.number, a.timestamp_ns, a.link_type, a.original_length, a.data) == (
            b.number,
            b.timestamp_ns,
            b.link_type,
            b.original_length,
            b.data,
        )


def test_flags_follow_the_findings(ui_only: tuple[Analysis, wireshark.WiresharkFiles]) -> None:
    analysis, _ = ui_only
    marks = wireshark.flags(analysis)
    ids = [f.id for f in analysis.findings]
    for index, finding in enumerate(analysis.findings):
        frames = marks.frames[index].tolist()
        assert frames[: len(finding.first_frames)] == list(finding.first_frames)
        assert len(frames) == 280, ids[index]
    comment = marks.comment(236)
    assert comment is not None and comment.startswith("mutecheck: audio level -26 dBov while muted")
    assert "(F2 decoded-audio-while-muted, window 1)" in comment
    assert "91-byte payload" in comment
    assert marks.comment(1) is None


def test_silence_is_not_flagged(tmp_path: Path) -> None:
    analysis = analyze(Inputs(session_dir=CAPTURES / "chromium-track-disabled"))
    files = wireshark.write_wireshark(analysis, tmp_path)
    assert files.flagged_frames == 0
    text = files.filters.read_text()
    assert "mutecheck_flagged" not in text
    # the informational finding still gets a filter selecting the silence frames
    assert "media-continues-while-muted" in text and "frame.number in {" in text


# -- checked by tshark -------------------------------------------------------------------------
def test_tshark_shows_the_comments(
    tshark: str, ui_only: tuple[Analysis, wireshark.WiresharkFiles]
) -> None:
    _, files = ui_only
    assert files.annotated is not None
    rows = _tshark(
        tshark, "-r", str(files.annotated), "-Y", "frame.comment", "-T", "fields",
        "-e", "frame.number", "-e", "frame.comment",
    )  # fmt: skip
    marks = wireshark.flags(ui_only[0])
    assert [int(r[0]) for r in rows] == marks.flagged
    for number, comment in rows:
        assert comment == marks.comment(int(number))
        assert comment.startswith("mutecheck: audio level -")
        assert comment.split(" dBov")[0].split("-")[-1].isdigit()


def test_tshark_filters_select_the_flagged_frames(
    tshark: str, ui_only: tuple[Analysis, wireshark.WiresharkFiles]
) -> None:
    analysis, files = ui_only
    assert files.annotated is not None
    marks = wireshark.flags(analysis)
    for item in wireshark.named_filters(analysis, marks):
        rows = _tshark(
            tshark, "-r", str(files.annotated), "-Y", item.expression, "-T", "fields",
            "-e", "frame.number",
        )  # fmt: skip
        selected = [int(r[0]) for r in rows]
        if item.name.startswith("mutecheck_flagged"):
            assert selected == marks.flagged
        else:
            index = int(item.name.split("_")[1][1:]) - 1
            assert selected == sorted(marks.frames[index].tolist())


def _ours(analysis: Analysis, capture: Path) -> dict[int, tuple[str, str, str, str]]:
    """Per frame: (audio level, muted, window, phase) as the plugin should print them."""
    media = analysis.media
    assert media is not None
    levels = {
        int(f): str(int(v))
        for f, v in zip(media.rows["frame"], media.rows["audio_level"], strict=True)
        if v >= 0
    }
    frames = _frames(capture)
    times = np.array([f.timestamp_ns for f in frames], np.int64)
    labels = analysis.timeline.segments(times)
    windows = [
        (int(np.round(w.start * 1e9)), int(np.round(w.end * 1e9)), w.index + 1)
        for w in analysis.timeline.windows
    ]
    out = {}
    for frame, t, label in zip(frames, times.tolist(), labels.tolist(), strict=True):
        inside = [n for a, b, n in windows if a <= t < b]
        out[frame.number] = (
            levels.get(frame.number, ""),
            "1" if inside else "0",
            str(inside[0]) if inside else "",
            PHASES.get(label, "muted"),
        )
    return out


def _check_plugin(tshark: str, analysis: Analysis, out: Path) -> int:
    files = wireshark.write_wireshark(analysis, out)
    assert files.annotated is not None
    rows = _tshark(
        tshark, "-r", str(files.annotated), "-X", f"lua_script:{files.plugin}", "-T", "fields",
        "-e", "frame.number", "-e", "mutecheck.audio_level", "-e", "mutecheck.muted",
        "-e", "mutecheck.window", "-e", "mutecheck.phase",
    )  # fmt: skip
    theirs = {int(r[0]): tuple(r[1:5]) for r in rows}
    ours = _ours(analysis, files.annotated)
    assert theirs.keys() == ours.keys()
    differ = {n: (ours[n], theirs[n]) for n in ours if ours[n] != theirs[n]}
    assert not differ, list(differ.items())[:5]
    return sum(1 for v in ours.values() if v[0])


@pytest.mark.parametrize("session", LUA_SESSIONS)
def test_lua_fields_match_ours(tshark: str, session: str, tmp_path: Path) -> None:
    analysis = analyze(Inputs(session_dir=CAPTURES / session))
    with_level = _check_plugin(tshark, analysis, tmp_path)
    assert with_level > 100


def test_lua_fields_through_turn_and_another_extmap_id(
    tshark: str,
    tmp_path: Path,
    make_synthetic: Callable[..., tuple[bytes, Any]],
) -> None:
    data, truth = make_synthetic(
        packets=1500, transport="turn", audio_level_id=7, format="pcapng-2if"
    )
    capture = tmp_path / "synthetic.pcapng"
    capture.write_bytes(data)
    start, end = (t / 1e9 for t in truth.muted_ns)
    analysis = analyze(Inputs(capture=capture, muted=(f"{start:.6f}-{end:.6f}",), audio_level_id=7))
    assert analysis.capture is not None
    assert analysis.capture["audio_level"]["extension_id"] == 7
    assert _check_plugin(tshark, analysis, tmp_path / "ws") > 100


def test_profile_decodes_rtp_and_knows_the_macros(
    tshark: str, ui_only: tuple[Analysis, wireshark.WiresharkFiles], tmp_path: Path
) -> None:
    _, files = ui_only
    assert files.annotated is not None
    profile = tmp_path / "config" / "wireshark" / "profiles" / "mutecheck"
    profile.mkdir(parents=True)
    for path in files.profile:
        shutil.copy(path, profile / path.name)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}
    rows = _tshark(
        tshark, "-C", "mutecheck", "-r", str(files.annotated), "-Y", "rtp.ssrc",
        "-T", "fields", "-e", "rtp.ssrc",
        env=env,
    )  # fmt: skip
    assert len(rows) == 704 and {r[0] for r in rows} == {"0x08d5a265"}
    flagged = _tshark(
        tshark, "-C", "mutecheck", "-r", str(files.annotated), "-Y", "${mutecheck_F1}",
        "-T", "fields", "-e", "frame.number",
        env=env,
    )  # fmt: skip
    assert len(flagged) == 280
    # the column layout with the plugin's fields, as Wireshark's packet list shows it
    listing = subprocess.run(
        [tshark, "-C", "mutecheck", "-r", str(files.annotated), "-X",
         f"lua_script:{files.plugin}", "-Y", "frame.number == 236"],
        capture_output=True, text=True, check=True, timeout=120,
        env={**os.environ, **env},
    ).stdout  # fmt: skip
    assert "SRTP" in listing and " 26 " in listing
    assert "True muted mutecheck: audio level" in listing


def test_without_a_level_id_the_plugin_reads_no_level(
    tshark: str, ui_only: tuple[Analysis, wireshark.WiresharkFiles], tmp_path: Path
) -> None:
    analysis, files = ui_only
    assert analysis.capture is not None and files.annotated is not None
    blind = cast(Any, analysis)
    saved = blind.capture
    try:
        blind.capture = {**saved, "audio_level": {"extension_id": None, "source": "none"}}
        plugin = tmp_path / "mutecheck.lua"
        plugin.write_text(wireshark.lua_plugin(analysis))
    finally:
        blind.capture = saved
    assert "audio_level_id = nil," in plugin.read_text()
    rows = _tshark(
        tshark, "-r", str(files.annotated), "-X", f"lua_script:{plugin}",
        "-Y", "mutecheck.audio_level || !mutecheck.phase", "-T", "fields", "-e", "frame.number",
    )  # fmt: skip
    assert rows == []
