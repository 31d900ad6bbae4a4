"""Wireshark's dissection of the findings' first frames (real tshark through pyshark): what the
reports show, that it agrees with mutecheck's own decoding, what it leaves out, and that a
missing or failing tshark costs one line, never the report."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders.audit.analysis import Analysis, Inputs, analyze
from decoders.audit.flags import Finding
from decoders.report import dissection, html, wireshark
from decoders.wire.capture import CaptureReader

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
GENERATED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOSTILE = '</td></tr><script>alert("ws")</script>\n<img src=x onerror=alert(1)>\u2028'


@pytest.fixture(scope="module")
def ui_only() -> Analysis:
    return analyze(Inputs(session_dir=CAPTURES / "chromium-ui-only"))


def _article(page: str, number: int) -> str:
    match = re.search(rf'<article [^>]*id="finding-{number}">(.*?)</article>', page, re.S)
    assert match is not None
    return match.group(1)


def _cells(section: str, name: str) -> list[str]:
    """The values a field has in the HTML dissection tables of ``section``."""
    pattern = rf'<td><code>{re.escape(name)}</code></td><td class="mono">([^<]*)</td>'
    return re.findall(pattern, section)


# -- the HTML report and the companion on a recorded call -----------------------------------------
def test_html_shows_wiresharks_dissection_of_each_findings_frames(ui_only: Analysis) -> None:
    media = ui_only.media
    assert media is not None and ui_only.findings
    page = html.render_html(ui_only, generated=GENERATED)
    assert 'id="dissection-note"' not in page
    for number, finding in enumerate(ui_only.findings, start=1):
        assert finding.stream is not None
        section = _article(page, number)
        frames = finding.first_frames[: dissection.PER_FINDING]
        label = ", ".join(map(str, frames))
        assert f"<summary>Wireshark's dissection of frames {label}</summary>" in section
        assert _cells(section, "frame.number") == [str(n) for n in frames]
        ssrc = next(s.ssrc for s in media.streams if s.index == finding.stream)
        assert _cells(section, "rtp.ssrc") == [f"0x{ssrc:08x}"] * len(frames)
        for frame in frames:  # the top layer open, the ones below it folded
            assert f'<summary>frame {frame} <span class="small">(frame:eth:ip:udp:rtp;' in section
        assert section.count('<details class="layer" open><summary>rtp <span') == len(frames)
        assert '<details class="layer"><summary>ip <span' in section


def test_dissection_agrees_with_our_decoding(ui_only: Analysis) -> None:
    """Sequence number, SSRC and RFC 6464 level of every dissected frame, as Wireshark reads
    them, equal mutecheck's packet table."""
    media = ui_only.media
    assert media is not None and ui_only.capture is not None
    level_id = ui_only.capture.level.extension_id
    chosen, result = wireshark.finding_dissections(ui_only)
    assert result.note is None
    numbers = sorted({n for frames in chosen for n in frames})
    assert [frame.number for frame in result.frames] == numbers
    for frame in result.frames:
        row = int(np.flatnonzero(media.rows["frame"] == frame.number)[0])
        assert frame.value("rtp.seq") == str(int(media.rows["sequence_number"][row]))
        assert int(frame.value("rtp.ssrc") or "", 16) == int(media.rows["ssrc"][row])
        assert frame.value("rtp.ext.rfc5285.id") == str(level_id)
        level = int(frame.value("rtp.ext.rfc5285.data") or "", 16) & 0x7F
        assert level == int(media.rows["audio_level"][row])
        assert frame.protocols.endswith(":rtp")


def test_companion_writes_the_dissections(ui_only: Analysis, tmp_path: Path) -> None:
    files = wireshark.write_wireshark(ui_only, tmp_path / "ws")
    text = (files.directory / wireshark.DISSECTIONS).read_text()
    assert "== F1 audio-level-while-muted (window 1): frame(s) 236, 237, 238" in text
    assert "      rtp.ssrc = 0x08d5a265    (Synchronization Source identifier: " in text
    assert "-- frame 238 (frame:eth:ip:udp:rtp)" in text
    readme = files.readme.read_text()
    assert f"| `{wireshark.DISSECTIONS}` | Wireshark's dissection of each finding's" in readme


def test_no_payload_bytes_in_the_reports(ui_only: Analysis, tmp_path: Path) -> None:
    """The SRTP payload and auth tag of each dissected frame appear in no report, in any
    spelling tshark uses (colon-separated or plain hex)."""
    page = html.render_html(ui_only, generated=GENERATED)
    files = wireshark.write_wireshark(ui_only, tmp_path / "ws")
    text = (files.directory / wireshark.DISSECTIONS).read_text()
    chosen, _ = wireshark.finding_dissections(ui_only)
    wanted = {n for frames in chosen for n in frames}
    assert ui_only.inputs.capture is not None
    with ui_only.inputs.capture.open("rb") as fo:
        datas = [f.data for f in CaptureReader(fo) if f.number in wanted]
    assert len(datas) == len(wanted)
    for data in datas:
        tail = data[-24:]  # the end of the encrypted payload and the 10-byte auth tag
        for spelling in (tail.hex(), tail.hex(":"), tail[-10:].hex(), tail[-10:].hex(":")):
            assert spelling not in page and spelling not in text
    for name in ("udp.payload", "srtp.enc_payload", "srtp.auth_tag", "data.data"):
        assert f"<code>{name}</code>" not in page and f" {name} = " not in text


# -- when tshark is missing or fails -----------------------------------------------------------
def _without_dissection(page: str) -> str:
    page = re.sub(r'\n  <details class="dissection">.*?\n  </details>', "", page, flags=re.S)
    return re.sub(r'<p class="small" id="dissection-note">[^<]*</p>', "", page)


def test_missing_tshark_is_one_line_and_the_report_is_whole(
    ui_only: Analysis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = html.render_html(ui_only, generated=GENERATED)
    monkeypatch.setenv("PATH", str(tmp_path))  # no tshark on it
    page = html.render_html(ui_only, generated=GENERATED)
    notes = re.findall(r'<p class="small" id="dissection-note">([^<]*)</p>', page)
    assert notes == [
        "Wireshark&#39;s dissection of the findings&#39; frames is not shown: tshark is not "
        "installed (apt-get install tshark)."
    ]
    assert 'class="dissection"' not in page
    assert _without_dissection(page) == _without_dissection(whole)
    files = wireshark.write_wireshark(ui_only, tmp_path / "ws")
    text = (files.directory / wireshark.DISSECTIONS).read_text()
    assert "# Wireshark's dissection of the findings' frames is not shown: tshark is not" in text
    assert "tshark is not installed" in files.readme.read_text()
    assert files.annotated is not None and files.copy is not None and files.copy.commented == 280


def test_failing_tshark_is_one_line(ui_only: Analysis, tmp_path: Path) -> None:
    """tshark refusing the file (not a capture) is said in one line with tshark's reason."""
    bogus = tmp_path / "capture.pcapng"
    bogus.write_bytes(b"not a capture at all\n" * 10)
    broken = dataclasses.replace(ui_only, inputs=dataclasses.replace(ui_only.inputs, capture=bogus))
    _, result = wireshark.finding_dissections(broken)
    assert result.frames == () and result.note is not None
    assert result.note.startswith(
        "Wireshark's dissection of the findings' frames is not shown: tshark (through pyshark) "
        "failed: tshark: The file "
    )
    assert "isn't a capture file" in result.note and "\n" not in result.note
    page = html.render_html(broken, generated=GENERATED)
    assert page.count('id="dissection-note"') == 1 and 'class="dissection"' not in page


def test_missing_pyshark_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyshark", None)  # what an install without it gives
    dissection._dissect.cache_clear()
    capture = CAPTURES / "chromium-ui-only" / "capture.pcapng"
    result = dissection.dissect(capture, [236], wireshark.frame_filter([236]))
    dissection._dissect.cache_clear()
    assert result.frames == ()
    assert result.note is not None and result.note.startswith(
        "Wireshark's dissection of the findings' frames is not shown: pyshark is not installed "
    )


def test_frames_tshark_does_not_show_are_named(tmp_path: Path) -> None:
    capture = CAPTURES / "chromium-ui-only" / "capture.pcapng"
    result = dissection.dissect(capture, [5, 10**9], wireshark.frame_filter([5, 10**9]))
    assert [f.number for f in result.frames] == [5]
    assert result.note == (
        "Wireshark's dissection is missing for frame(s) 1000000000: tshark did not show them"
    )


# -- escaping ------------------------------------------------------------------------------------
def test_a_hostile_dissected_field_is_escaped(ui_only: Analysis, tmp_path: Path) -> None:
    """A packet comment (``frame.comment``, dissected by tshark) holding markup and line breaks
    stays text in the HTML and on one line in dissections.txt."""
    assert ui_only.inputs.capture is not None
    first = ui_only.findings[0].first_frames[0]
    copy = tmp_path / "hostile.pcapng"
    wireshark.write_annotated(
        ui_only.inputs.capture, copy, lambda n: HOSTILE if n == first else None
    )
    hostile = dataclasses.replace(ui_only, inputs=dataclasses.replace(ui_only.inputs, capture=copy))
    _, result = wireshark.finding_dissections(hostile)
    assert result.note is None
    value = result.of([first])[0].value("frame.comment")
    assert value is not None and '<script>alert("ws")</script>' in value and "\u2028" in value
    page = html.render_html(hostile, generated=GENERATED)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;/td&gt;&lt;/tr&gt;&lt;script&gt;alert(&#34;ws&#34;)&lt;/script&gt;" in page
    files = wireshark.write_wireshark(hostile, tmp_path / "ws")
    text = (files.directory / wireshark.DISSECTIONS).read_text()
    shown = f"      frame.comment = {wireshark.one_line(value)}    "
    assert shown in text and "\\u2028" in shown and "\u2028" not in text


# -- choosing the frames, and what is shown ---------------------------------------------------
def _finding(frames: tuple[int, ...]) -> Finding:
    return Finding(
        id="x", severity="high", leak="content", title="t", window=0, interval=None,
        numbers={}, evidence="e", first_frames=frames,
    )  # fmt: skip


def test_finding_frames_limits() -> None:
    findings = [_finding(tuple(range(100 * i, 100 * i + 5))) for i in range(12)]
    chosen = dissection.finding_frames(findings)
    assert chosen[0] == (0, 1, 2) and all(len(c) <= dissection.PER_FINDING for c in chosen)
    assert len({n for c in chosen for n in c}) == dissection.MAX_FRAMES
    assert chosen[10] == () and chosen[11] == ()
    shared = dissection.finding_frames([_finding((7, 8, 9, 10))] * 40)
    assert shared == [(7, 8, 9)] * 40  # frames already chosen cost nothing


@given(
    name=st.text(st.sampled_from("abc._-"), min_size=1, max_size=12),
    word=st.sampled_from(sorted(dissection.LEFT_OUT_WORDS)),
    data=st.binary(min_size=dissection.MAX_BYTES + 1, max_size=64),
)
def test_shown_never_admits_payload_or_keys(name: str, word: str, data: bytes) -> None:
    assert not dissection.shown(f"{name}.{word}", "1", 1)
    assert not dissection.shown(f"x.{word}_{name}", "1", 1)
    assert not dissection.shown(f"data.{name}", "1", 1)
    assert not dissection.shown("x.y", data.hex(":"), len(data))
    assert dissection.shown("rtp.ext.rfc5285.data", data[:1].hex(), 1)


def test_shown_keeps_header_fields() -> None:
    assert dissection.shown("rtp.ssrc", "0x08d5a265", 4)
    assert not dissection.shown("tcp.segment_data", "00:01:02:03", 4)
    assert not dissection.shown("tls.app_data", "00:01", 2)
    assert dissection.shown("eth.src", "0a:a5:17:d5:42:6f", 6)
    assert not dissection.shown("eth.src_resolved", "0a:a5:17:d5:42:6f", 6)
    assert not dissection.shown("", "Timestamps", 0)


# -- pyshark's event loop: from a thread and from inside a running loop ------------------------
def test_works_inside_a_running_loop_and_in_a_thread() -> None:
    capture = CAPTURES / "chromium-ui-only" / "capture.pcapng"
    frames = [236, 300]  # not asked before: no cached answer
    expected = [236, 300]

    async def inside() -> dissection.Dissection:
        dissection._dissect.cache_clear()
        return dissection.dissect(capture, frames, wireshark.frame_filter(frames))

    assert [f.number for f in asyncio.run(inside()).frames] == expected
    seen: list[dissection.Dissection] = []

    def in_thread() -> None:
        dissection._dissect.cache_clear()
        seen.append(dissection.dissect(capture, frames, wireshark.frame_filter(frames)))

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join()
    assert [f.number for f in seen[0].frames] == expected and seen[0].note is None


def test_frames_that_are_not_ours_are_not_shown(ui_only: Analysis) -> None:
    """tshark's frame N of another capture (here another recorded call, as a capture numbered
    otherwise would give) is not mutecheck's frame N: its time differs, it is left out."""
    other = CAPTURES / "chromium-quiet" / "capture.pcapng"
    swapped = dataclasses.replace(
        ui_only, inputs=dataclasses.replace(ui_only.inputs, capture=other)
    )
    chosen, result = wireshark.finding_dissections(swapped)
    numbers = sorted({n for frames in chosen for n in frames})
    assert result.frames == ()
    assert result.note == (
        f"Wireshark's dissection of frame(s) {', '.join(map(str, numbers))} is not shown: "
        "tshark's frames of these numbers are not mutecheck's (their times differ)."
    )
    page = html.render_html(swapped, generated=GENERATED)
    assert page.count('id="dissection-note"') == 1 and 'class="dissection"' not in page
