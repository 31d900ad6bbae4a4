"""The Wireshark companion, checked by Wireshark itself (tshark): comments, Lua fields, profile."""

from __future__ import annotations

import bisect
import dataclasses
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoders.audit.analysis import Analysis, Inputs, analyze
from decoders.media.levels import LevelSource
from decoders.report import wireshark
from decoders.session.timeline import MuteInterval, build_timeline
from decoders.wire.capture import CaptureReader, Frame

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
LUA_SESSIONS = ("chromium-ui-only", "chromium-dtx", "chromium-track-stopped")
PHASES = {-1: "unmuted", -2: "transition"}
MAX_RANGES = wireshark.MAX_RANGES


def _frames(path: Path) -> list[Frame]:
    with path.open("rb") as fo:
        return list(CaptureReader(fo))


def _tshark(
    binary: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> list[list[str]]:
    done = subprocess.run(
        [binary, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    assert "Lua: Error" not in done.stderr and "lua_script" not in done.stderr, done.stderr
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
        "dissections.txt",
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
    assert analysis.capture.level.extension_id == 7
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
    unknown = LevelSource(None, "none", "no SDP and none inferred")
    blind = dataclasses.replace(
        analysis, capture=dataclasses.replace(analysis.capture, level=unknown)
    )
    plugin = tmp_path / "mutecheck.lua"
    plugin.write_text(wireshark.lua_plugin(blind))
    assert "audio_level_id = nil," in plugin.read_text()
    rows = _tshark(
        tshark, "-r", str(files.annotated), "-X", f"lua_script:{plugin}",
        "-Y", "mutecheck.audio_level || !mutecheck.phase", "-T", "fields", "-e", "frame.number",
    )  # fmt: skip
    assert rows == []


# -- names from the input stay data ----------------------------------------------------------
MARKER = "pwned"
RUN = f'io.open("{MARKER}","w"):close()'
PAYLOADS = (
    f"\n{RUN}\n-- ",
    f"\r{RUN}\r",
    f"]]{RUN}--[[",
    f'",{RUN},"',
    f'\\",{RUN},--',
    f"\u2028{RUN}\u2029\x85",
    "`<script>alert(1)</script>` [x](javascript:alert(1)) | # *",
)
"""Each would run (or break) Lua, a filter or Markdown if written as it came."""
TEXT_FILES = (
    "filters.txt",
    "mutecheck.lua",
    "decode_as_entries",
    "dfilter_macros",
    "dfilters",
    "preferences",
    "README.md",
)
SHOWN_ON = {
    # where text from the input may appear, by file: the line it is shown on starts so
    "filters.txt": ("# ",),
    "mutecheck.lua": ('    capture = "',),
    "dfilters": ('"',),
    "README.md": ("# Wireshark companion for ", "Written by mutecheck "),
}


def test_quoting_helpers() -> None:
    assert wireshark.one_line("a\n\r\x00\u2028\u2029\x85\u202e\\ é") == (
        "a\\x0a\\x0d\\x00\\u2028\\u2029\\x85\\u202e\\\\ é"
    )
    assert wireshark.lua_string('a\n"]]\\ é\x00') == '"a\\010\\034]]\\092 \\195\\169\\000"'
    assert wireshark.lua_string(Path("x\udcff")) == '"x\\255"'  # a path's undecodable byte
    assert wireshark.one_line("x\udcff\ud800") == "x\\xff\\ud800"
    assert wireshark.dfilter_string('a"\\\n é') == '"a\\x22\\x5c\\x0a \\xc3\\xa9"'
    assert wireshark.md_text("<b> [x](javascript:1) *e* `c` |") == (
        "\\<b\\> \\[x\\](javascript\\:1) \\*e\\* \\`c\\` \\|"
    )
    assert wireshark.md_code("a ``b`` <i>\n") == "``` a ``b`` <i>\\x0a ```"
    assert wireshark.comment_filter('say "hi"') == 'frame.comment contains "say \\x22hi\\x22"'
    assert wireshark._dfilters_name('a"b\\c\nd') == '"a\\"b\\\\\\\\c\\\\x0ad"'


def _lua_literal(text: str) -> bytes:
    """What Lua reads from a string literal written by :func:`wireshark.lua_string`."""
    assert text[0] == text[-1] == '"' and re.fullmatch(r"(?:[ !#-\[\]-~]|\\\d{3})*", text[1:-1])
    return re.sub(rb"\\(\d{3})", lambda m: bytes([int(m.group(1))]), text[1:-1].encode("ascii"))


def _with_capture(analysis: Analysis, capture: Path) -> Analysis:
    return dataclasses.replace(
        analysis, inputs=dataclasses.replace(analysis.inputs, capture=capture)
    )


any_text = st.text(st.characters(blacklist_categories=()), max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.one_of(any_text, st.builds("".join, st.lists(st.sampled_from(PAYLOADS) | any_text))))
def test_any_name_is_one_string_literal_in_the_plugin(
    ui_only: tuple[Analysis, wireshark.WiresharkFiles], name: str
) -> None:
    """Whatever the capture is called, the plugin differs only in that one literal, which Lua
    reads back as the name's bytes; every other file keeps the name on one line."""
    analysis, _ = ui_only
    plain = wireshark.lua_plugin(_with_capture(analysis, Path("plain")))
    plugin = wireshark.lua_plugin(_with_capture(analysis, Path(name)))
    literal = wireshark.lua_string(Path(name))
    assert plugin.replace(f"capture = {literal},", 'capture = "plain",', 1) == plain
    assert _lua_literal(literal) == wireshark._utf8(str(Path(name)))
    for shown in (wireshark.one_line(name), wireshark.md_text(name), wireshark.md_code(name)):
        assert len(f"x{shown}x".splitlines()) == 1 and "\x00" not in shown
        shown.encode("utf-8")  # writable


def _run_plugin(tshark: str, plugin: Path, capture: Path, cwd: Path) -> list[list[str]]:
    return _tshark(
        tshark, "-r", str(capture), "-X", f"lua_script:{plugin}", "-c", "40",
        "-T", "fields", "-e", "frame.number", "-e", "mutecheck.phase",
        cwd=cwd,
    )  # fmt: skip


def test_the_marker_check_can_fail(
    tshark: str, ui_only: tuple[Analysis, wireshark.WiresharkFiles], tmp_path: Path
) -> None:
    """The old plugin (the path raw in a comment) ran the payload: the check below sees it."""
    analysis, files = ui_only
    assert files.annotated is not None
    plugin = wireshark.lua_plugin(analysis)
    raw = plugin.replace(
        "local SETTINGS = {", f"-- settings for {PAYLOADS[0]}\nlocal SETTINGS = {{"
    )
    (tmp_path / "old.lua").write_text(raw)
    assert len(_run_plugin(tshark, tmp_path / "old.lua", files.annotated, tmp_path)) == 40
    assert (tmp_path / MARKER).exists()


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(name=st.builds("".join, st.lists(st.sampled_from(PAYLOADS) | any_text, min_size=1)))
def test_tshark_loads_the_plugin_for_any_name_and_runs_nothing(
    tshark: str, ui_only: tuple[Analysis, wireshark.WiresharkFiles], name: str
) -> None:
    analysis, files = ui_only
    assert files.annotated is not None
    run = files.directory.parent / "run-any"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    (run / "mutecheck.lua").write_text(wireshark.lua_plugin(_with_capture(analysis, Path(name))))
    rows = _run_plugin(tshark, run / "mutecheck.lua", files.annotated, run)
    assert len(rows) == 40 and {r[1] for r in rows} == {"unmuted"}
    assert sorted(p.name for p in run.iterdir()) == ["mutecheck.lua"]


def _hostile_session(root: Path) -> tuple[Path, str]:
    """chromium-telemetry-http in a folder whose path holds every payload, its telemetry
    endpoint and flow ids rewritten in events.jsonl to carry them too (NUL included)."""
    # a folder name that is not UTF-8 (bytes 0xff 0xe2) too
    folder = root.joinpath(*(f"s{i}{p}" for i, p in enumerate(PAYLOADS)), "bytes\udcff\udce2")
    shutil.copytree(CAPTURES / "chromium-telemetry-http", folder)
    endpoint = "http://x/" + "".join(PAYLOADS[:5]) + "\x00\u2028"
    events = folder / "events.jsonl"
    text = events.read_text().replace('"http://10.77.0.2:8080/telemetry"', json.dumps(endpoint))
    text = re.sub(
        r'"id":"([0-9a-f-]+)"', lambda m: '"id":' + json.dumps(f"{m.group(1)}{PAYLOADS[2]}"), text
    )
    events.write_text(text)
    (folder / "flows.mitm").unlink()  # the events are what is read
    return folder, endpoint


@pytest.fixture(scope="module")
def hostile(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Analysis, wireshark.WiresharkFiles, str]:
    folder, endpoint = _hostile_session(tmp_path_factory.mktemp("hostile"))
    analysis = analyze(Inputs(session_dir=folder))
    return analysis, wireshark.write_wireshark(analysis, folder.parent / "ws"), endpoint


def _read_dfilters(text: str) -> list[tuple[str, str]]:
    """Wireshark's reading of a ``dfilters`` line (ui/filter_files.c): a quoted name in which a
    backslash escapes the next character, then the expression to the end of the line."""
    out = []
    for line in text.split("\n"):
        if not line:
            continue
        assert line[0] == '"', line
        match = re.match(r'"((?:[^"\\]|\\.)*)" (.+)', line)
        assert match is not None, line
        out.append((re.sub(r"\\(.)", r"\1", match.group(1)), match.group(2)))
    return out


def test_hostile_names_reach_every_file_as_data(
    hostile: tuple[Analysis, wireshark.WiresharkFiles, str],
) -> None:
    analysis, files, endpoint = hostile
    assert analysis.verdict.verdict == "metadata-leak"
    assert any(f.endpoint == endpoint for f in analysis.findings)  # it did reach the analysis
    for name in TEXT_FILES:
        text = (files.directory / name).read_text()
        assert len(text.splitlines()) == text.count("\n"), name  # no other line break anywhere
        assert "\x00" not in text, name
        assert name in SHOWN_ON or MARKER not in text, name
        for line in text.splitlines():
            if MARKER in line:
                assert line.startswith(SHOWN_ON[name]), (name, line)
    filters = files.filters.read_text()
    assert wireshark.one_line(endpoint) in filters
    saved = _read_dfilters((files.directory / "dfilters").read_text())
    named = wireshark.named_filters(analysis, wireshark.flags(analysis))
    assert saved == [
        (wireshark.one_line(f"{f.name}: {f.description}"), f.expression) for f in named
    ]
    readme = files.readme.read_text()
    assert wireshark.md_code(analysis.inputs.capture) in readme
    assert "<script>" not in readme.replace(wireshark.md_code(analysis.inputs.capture), "")
    plugin = files.plugin.read_text()
    assert f"capture = {wireshark.lua_string(analysis.inputs.capture)}," in plugin
    assert MARKER not in plugin.replace(wireshark.lua_string(analysis.inputs.capture), "")


def test_hostile_names_run_nothing_under_tshark(
    tshark: str, hostile: tuple[Analysis, wireshark.WiresharkFiles, str], tmp_path: Path
) -> None:
    """The documented use (plugin, profile, every written filter and macro) with the hostile
    session: tshark loads everything, the fields are right and no payload ran."""
    analysis, files, _ = hostile
    assert files.annotated is not None
    profile = tmp_path / "config" / "wireshark" / "profiles" / "mutecheck"
    profile.mkdir(parents=True)
    for path in files.profile:
        shutil.copy(path, profile / path.name)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}
    run = tmp_path / "run"
    run.mkdir()
    common = ("-C", "mutecheck", "-r", str(files.annotated), "-X", f"lua_script:{files.plugin}")
    rows = _tshark(
        tshark, *common, "-T", "fields", "-e", "frame.number", "-e", "mutecheck.audio_level",
        "-e", "mutecheck.muted", "-e", "mutecheck.window", "-e", "mutecheck.phase",
        env=env, cwd=run,
    )  # fmt: skip
    assert {int(r[0]): tuple(r[1:5]) for r in rows} == _ours(analysis, files.annotated)
    written = _written_filters(files)
    assert written
    for name, _, expression in written:
        _tshark(tshark, *common, "-Y", expression, env=env, cwd=run)
        _tshark(tshark, *common, "-Y", f"${{{name}}}", env=env, cwd=run)
    assert list(run.iterdir()) == [] and not list(files.directory.parent.rglob(MARKER))


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# pcapng comments are UTF-8 (a lone surrogate has no UTF-8 form: the writer escapes it, see
# tests/wire/test_pcapwriter.py), so the texts here are the ones a comment can hold as they are
@given(texts=st.lists(st.text(st.characters(exclude_categories=("Cs",)), min_size=1,
                              max_size=30), min_size=2, max_size=5, unique=True))  # fmt: skip
def test_dfilter_strings_match_exactly(tshark: str, texts: list[str]) -> None:
    """A comment holding any text is selected by ``frame.comment == dfilter_string(text)``."""
    import tempfile

    from decoders.wire.pcapwriter import PcapngWriter

    texts = [t for t in texts if "\x00" not in t]  # a pcapng string option ends at NUL
    with tempfile.TemporaryDirectory() as folder:
        capture = Path(folder) / "c.pcapng"
        with capture.open("wb") as sink:
            writer = PcapngWriter(sink, application="test")
            iface = writer.add_interface(1)
            for n, text in enumerate(texts):
                writer.write(iface, n * 1000, bytes(60), comment=text)
        for n, text in enumerate(texts):
            expression = f"frame.comment == {wireshark.dfilter_string(text)}"
            rows = _tshark(tshark, "-r", str(capture), "-Y", expression, "-T", "fields",
                           "-e", "frame.number")  # fmt: skip
            assert rows == [[str(n + 1)]], (text, expression)


# -- every filter selects what it says ----------------------------------------------------------
Truth = tuple[str, str, str, str]  # audio level, muted, window, phase: as _ours gives them
DOCUMENTED: dict[str, Callable[[Truth], bool]] = {
    "mutecheck.muted == 1": lambda t: t[1] == "1",
    'mutecheck.phase == "muted"': lambda t: t[3] == "muted",
    'mutecheck.phase == "muted" && mutecheck.audio_level < 100': lambda t: (
        t[3] == "muted" and t[0] != "" and int(t[0]) < 100
    ),
    'mutecheck.phase == "transition"': lambda t: t[3] == "transition",
}
"""Each filter the docs, the plugin and the companion's README show, and what it selects."""
FILTER_USE = re.compile(
    r"""-Y '([^'\n]+)'|-Y "([^"\n]+)"|`(mutecheck\.[^`]*(?:==|<|>|&&|\|\|)[^`]*)`"""
)
"""A filter passed to tshark, or a comparison of a mutecheck field in a code span."""


def _documented(text: str) -> set[str]:
    return {a or b or c for a, b, c in FILTER_USE.findall(text)}


def _written_filters(files: wireshark.WiresharkFiles) -> list[tuple[str, str, str]]:
    """(name, description, expression) of every filter in the written filters.txt."""
    lines = files.filters.read_text().split("\n")
    return [
        (*lines[i - 1][2:].split(": ", 1), line)  # type: ignore[misc]
        for i, line in enumerate(lines)
        if line and not line.startswith("#")
    ]


def test_every_documented_filter_selects_what_it_says(
    tshark: str, ui_only: tuple[Analysis, wireshark.WiresharkFiles]
) -> None:
    analysis, files = ui_only
    assert files.annotated is not None
    sources = {
        str(path.relative_to(ROOT)): path.read_text()
        for path in [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("captures/*.md")]
    }
    sources["mutecheck.lua"] = (ROOT / "decoders" / "report" / "mutecheck.lua").read_text()
    sources["the companion's README.md"] = files.readme.read_text()
    found = {name: _documented(text) for name, text in sources.items()}
    for name in ("docs/reports.md", "mutecheck.lua", "the companion's README.md"):
        assert found[name], name
    unknown = {f for filters in found.values() for f in filters} - DOCUMENTED.keys()
    assert not unknown, f"a documented filter without its meaning in DOCUMENTED: {unknown}"
    truth = _ours(analysis, files.annotated)
    for expression, claim in DOCUMENTED.items():
        rows = _tshark(
            tshark, "-r", str(files.annotated), "-X", f"lua_script:{files.plugin}",
            "-Y", expression, "-T", "fields", "-e", "frame.number",
        )  # fmt: skip
        expected = sorted(n for n, t in truth.items() if claim(t))
        assert [int(r[0]) for r in rows] == expected, expression
        assert expected, expression
    # the filter the docs used to give tests only that the boolean is there: every frame
    bare = _tshark(
        tshark, "-r", str(files.annotated), "-X", f"lua_script:{files.plugin}",
        "-Y", "mutecheck.muted && mutecheck.audio_level < 100",
        "-T", "fields", "-e", "frame.number",
    )  # fmt: skip
    assert (
        len(bare) == 704
        and sum(DOCUMENTED["mutecheck.muted == 1"](t) for t in truth.values()) < 704
    )


@pytest.mark.parametrize(
    ("session", "max_ranges"),
    [
        ("chromium-ui-only", MAX_RANGES),
        ("chromium-ui-only", 3),  # the frames filters become stream-and-time filters
        ("chromium-track-disabled", MAX_RANGES),
        ("chromium-track-stopped", MAX_RANGES),
    ],
)
def test_every_written_filter_selects_what_it_says(
    tshark: str, session: str, max_ranges: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each filter of filters.txt, run by tshark with the plugin, against mutecheck's own
    per-frame phase, window and level and the analysis' streams."""
    monkeypatch.setattr(wireshark, "MAX_RANGES", max_ranges)
    analysis = analyze(Inputs(session_dir=CAPTURES / session))
    files = wireshark.write_wireshark(analysis, tmp_path)
    assert files.annotated is not None and analysis.media is not None
    media = analysis.media
    truth = _ours(analysis, files.annotated)
    marks = wireshark.flags(analysis)
    written = _written_filters(files)
    assert written
    for name, description, expression in written:
        rows = _tshark(
            tshark, "-r", str(files.annotated), "-X", f"lua_script:{files.plugin}",
            "-Y", expression, "-T", "fields", "-e", "frame.number",
        )  # fmt: skip
        selected = [int(r[0]) for r in rows]
        if name.startswith("mutecheck_flagged"):
            assert selected == marks.flagged
            continue
        index = int(name.split("_")[1][1:]) - 1
        finding = analysis.findings[index]
        assert finding.stream is not None
        stream_frames = set(media.rows["frame"][media.groups[finding.stream]].tolist())
        in_window = sorted(
            n
            for n in stream_frames
            if truth[n][3] == "muted" and truth[n][2] == str(finding.window + 1)
        )
        # every selected frame was judged muted, in the finding's window
        assert all(truth[n][3] == "muted" for n in selected), (name, expression)
        if "runs of frames, so: every packet of the stream" in description:
            assert expression.startswith("ip") and max_ranges < MAX_RANGES
            named = sorted((marks.frames | marks.context)[index].tolist())
            assert set(named) <= set(selected)  # the finding's frames and their neighbours
            assert all(named[0] <= n <= named[-1] for n in selected)
        elif finding.id == "audio-level-while-muted":
            assert selected == [n for n in in_window if truth[n][0] and int(truth[n][0]) < 100]
        elif finding.id in ("media-continues-while-muted", "encoded-content-while-muted"):
            assert selected == in_window, name  # the stream's packets judged muted
        elif finding.id == "no-media-while-muted":
            assert in_window == [] and not stream_frames & set(selected), name
        else:
            assert selected == sorted(marks.frames[index].tolist()), name


@given(description=st.one_of(any_text, st.sampled_from(PAYLOADS)))
def test_dfilters_names_read_back_as_shown(description: str) -> None:
    """A description (a finding's title can hold a codec name from the SDP) is read back by
    Wireshark's rules as its one-line form, the expression untouched."""
    item = wireshark.NamedFilter("mutecheck_F1", description, 'frame.comment contains "(F1 "')
    saved = _read_dfilters(wireshark.dfilters([item]))
    assert saved == [(wireshark.one_line(f"mutecheck_F1: {description}"), item.expression)]
    assert len(f"# {wireshark.one_line(description)}".splitlines()) == 1  # as in filters.txt
