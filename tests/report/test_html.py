"""The HTML report: its content, its escaping of hostile traffic, and a real browser's view."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from decoders.audit.analysis import Analysis, Inputs, analyze
from decoders.report import html
from decoders.report.browser import find_chromium, inspect_page

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
GENERATED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

# attack strings, as traffic would carry them
ENDPOINT = 'http://evil.example/t?<script>alert("endpoint")</script>'
FIELD = '"><img src=x onerror=alert("field")>audioLevel'
FLOW = "<script>alert('flow')</script>"
SESSION_NAME = "s\"'><svg onload=alert('dir')>"
SDP_NAME = "<script>alert('sdp')</script>"
CODEC = "\"><img src=x onerror=alert('codec')>"
TOOL = "</td><script>alert('tool')</script>"
SECRET_KEY = "U0VDUkVUS0VZU0VDUkVUS0VZU0VDUkVUS0VZMTIzNA"
ACTIVE = "img,iframe,object,embed,link,base,form,meta[http-equiv=refresh]"
HANDLERS = "[...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))"
CHECKS = {
    "scripts": "document.scripts.length",
    "active": f"document.querySelectorAll('{ACTIVE}').length",
    "handlers": f"[...document.querySelectorAll('*')].filter(e => {HANDLERS}).length",
    "text": "document.body.innerText",
    "title": "document.title",
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.handlers += [(tag, name) for name, _ in attrs if name.lower().startswith("on")]


def _tags(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    return parser


@pytest.fixture
def chromium() -> str:
    """Headless Chromium; skipped on a machine without it, never in CI."""
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI (.ci/run installs it)")
        pytest.skip("Chromium not installed")
    return path


@pytest.fixture(scope="module")
def ui_only() -> Analysis:
    return analyze(Inputs(session_dir=CAPTURES / "chromium-ui-only"))


def _hostile_session(root: Path) -> Path:
    """A real session (telemetry over HTTP) whose traffic and files carry attack strings."""
    source = CAPTURES / "chromium-telemetry-http"
    folder = root / SESSION_NAME
    folder.mkdir()
    for name in ("capture.pcapng", "answer.sdp", "timeline.json", "keys.json"):
        shutil.copy(source / name, folder / name)
    offer = (source / "offer.sdp").read_text()
    offer = offer.replace("s=-", f"s={SDP_NAME}")
    offer = offer.replace("a=rtpmap:111 opus/48000/2", f"a=rtpmap:111 {CODEC}/48000/2")
    offer = offer.replace(
        "a=mid:0", f"a=mid:0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{SECRET_KEY}|2^31"
    )
    (folder / "offer.sdp").write_text(offer)
    events = []
    for line in (source / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("kind") == "telemetry":
            event["endpoint"] = ENDPOINT
            event["flow"]["id"] = FLOW
            for item in event["fields"]:
                item["path"] = FIELD
        events.append(json.dumps(event))
    (folder / "events.jsonl").write_text("\n".join(events) + "\n")
    manifest = json.loads((source / "session.json").read_text())
    manifest["tools"]["chromium"] = TOOL
    (folder / "session.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Analysis, str]:
    folder = _hostile_session(tmp_path_factory.mktemp("hostile"))
    analysis = analyze(Inputs(session_dir=folder))
    return analysis, html.render_html(analysis, generated=GENERATED)


# -- content -------------------------------------------------------------------------------------
def test_report_of_a_leak(ui_only: Analysis) -> None:
    page = html.render_html(ui_only, generated=GENERATED)
    assert "<title>mutecheck: content-leak - chromium-ui-only</title>" in page
    assert "LEAK: sound from your microphone left this computer while you were muted." in page
    assert "2026-11-30 12:00:00 UTC" in page
    for number, finding in enumerate(ui_only.findings, start=1):
        assert f'id="finding-{number}"' in page
        assert finding.evidence in page.replace("&#39;", "'")
    assert "frame.number in {236..240}" in page
    assert "0x08d5a265" in page and "opus/48000" in page
    assert page.count("<svg") == 6  # sources, 4 media charts, telemetry
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page.lower()
    assert "the media was not checked" not in page


def test_report_has_input_hashes_and_version(ui_only: Analysis) -> None:
    page = html.render_html(ui_only, generated=GENERATED)
    capture = CAPTURES / "chromium-ui-only" / "capture.pcapng"
    digest = hashlib.sha256(capture.read_bytes()).hexdigest()
    assert digest in page
    files = html.input_files(ui_only.inputs)
    roles = [f.role for f in files]
    assert roles[:4] == ["capture", "events", "timeline", "keys"]
    assert "manifest" in roles and "reference signal" in roles
    agree = {f.role: f.manifest for f in files}
    assert agree["capture"] == agree["keys"] == agree["SDP"] == "same"
    assert agree["reference signal"] == "same"
    assert "mutecheck 0.1.0" in page and "Tools that recorded the session" in page


def test_what_could_not_be_measured() -> None:
    analysis = analyze(
        Inputs(session_dir=CAPTURES / "chromium-track-disabled", ignore=frozenset({"keys", "sdp"}))
    )
    items = {i["what"]: i for i in html.measured(analysis)}
    assert items["Decoded audio (decryption)"]["status"] == "no"
    assert "no keys" in items["Decoded audio (decryption)"]["detail"]
    assert items["Audio level (RFC 6464)"]["status"] == "partly"  # inferred, no SDP
    assert items["Telemetry (HTTP/WebSocket)"]["status"] == "yes"
    page = html.render_html(analysis, generated=GENERATED)
    assert 'class="m-no"><b>Decoded audio (decryption)</b>' in page
    assert "What was negotiated (SDP)" not in page


def test_report_without_a_capture() -> None:
    analysis = analyze(Inputs(events=CAPTURES / "chromium-telemetry-ws" / "events.jsonl"))
    page = html.render_html(analysis, generated=GENERATED)
    assert "no capture: the media was not checked" in page
    assert "metadata-leak" in page
    assert "ws://10.77.0.2:8080/ws" in page


def test_redact_sdp() -> None:
    sdp = (
        "v=0\r\na=ice-pwd:7XKpV2rW4q0VHJN8zmdNTWbj\r\n"
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
        "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n"
        "k=base64:c2VjcmV0\r\na=fingerprint:sha-256 AB:CD\r\n"
    )  # fmt: skip
    shown = html.redact_sdp(sdp)
    assert "7XKpV2rW4q0VHJN8zmdNTWbj" not in shown and "PS1uQ" not in shown
    assert "c2VjcmV0" not in shown
    assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<removed>|2^20|1:32" in shown
    assert "a=fingerprint:sha-256 AB:CD" in shown


def test_write_html(ui_only: Analysis, tmp_path: Path) -> None:
    out = html.write_html(ui_only, tmp_path / "deep" / "report.html", generated=GENERATED)
    assert out.read_text(encoding="utf-8") == html.render_html(ui_only, generated=GENERATED)


# -- hostile traffic ------------------------------------------------------------------------------
def test_hostile_strings_are_escaped(hostile: tuple[Analysis, str]) -> None:
    analysis, page = hostile
    assert analysis.media is not None and analysis.media.streams[0].codec == CODEC
    assert analysis.telemetry.messages and analysis.telemetry.messages[0].endpoint == ENDPOINT
    assert "<script" not in page.lower()
    tags = _tags(page)
    assert not tags.handlers
    assert tags.tags.isdisjoint({"img", "iframe", "object", "embed", "script", "link", "base"})
    escaped = {
        "&lt;script&gt;alert(&#34;endpoint&#34;)&lt;/script&gt;",  # telemetry endpoint
        "&#34;&gt;&lt;img src=x onerror=alert(&#34;field&#34;)&gt;audioLevel",  # field name
        "&lt;script&gt;alert(&#39;flow&#39;)&lt;/script&gt;",  # flow id
        "s=&lt;script&gt;alert(&#39;sdp&#39;)&lt;/script&gt;",  # SDP text
        "&#34;&gt;&lt;img src=x onerror=alert(&#39;codec&#39;)&gt;",  # codec from SDP
        "&lt;/td&gt;&lt;script&gt;alert(&#39;tool&#39;)&lt;/script&gt;",  # session.json
        "&lt;svg onload=alert(&#39;dir&#39;)&gt;",  # the folder's name
    }
    missing = [e for e in escaped if e not in page]
    assert not missing


def test_no_keys_in_the_page(hostile: tuple[Analysis, str]) -> None:
    _, page = hostile
    assert SECRET_KEY not in page
    assert "inline:&lt;removed&gt;" in page
    keys = json.loads((CAPTURES / "chromium-telemetry-http" / "keys.json").read_text())
    for side in ("browser", "peer"):
        assert keys[side]["master_key"] not in page
        assert keys[side]["master_salt"] not in page
    offer = (CAPTURES / "chromium-telemetry-http" / "offer.sdp").read_text()
    [password] = re.findall(r"a=ice-pwd:(\S+)", offer)
    assert password not in page


def _assert_inert(run_text: str, run: object) -> None:
    from decoders.report.browser import PageRun

    assert isinstance(run, PageRun)
    assert run.scripts == [], run.scripts
    assert run.dialogs == []
    assert run.console == [], run.console
    assert run.errors == [], run.errors
    assert run.requests == [], run.requests
    answers = run.answers
    assert answers["scripts"] == 0 and answers["active"] == 0 and answers["handlers"] == 0
    assert run_text in answers["text"]


def test_hostile_page_in_chromium_runs_nothing(
    chromium: str, hostile: tuple[Analysis, str], tmp_path: Path
) -> None:
    _, page = hostile
    path = tmp_path / "hostile.html"
    path.write_text(page, encoding="utf-8")
    run = inspect_page(path, questions=CHECKS, binary=chromium)
    _assert_inert("<script>alert('flow')</script>", run)
    assert "<svg onload=alert('dir')>" in run.answers["title"]
    (tmp_path / "hostile.png").write_bytes(run.screenshot)
    assert run.screenshot.startswith(b"\x89PNG\r\n\x1a\n") and run.size[1] > 2000


def test_escaping_alone_is_enough(
    chromium: str, hostile: tuple[Analysis, str], tmp_path: Path
) -> None:
    """Without the Content-Security-Policy (a browser that ignores it) nothing runs either."""
    _, page = hostile
    bare = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    assert "Content-Security-Policy" not in bare
    path = tmp_path / "bare.html"
    path.write_text(bare, encoding="utf-8")
    run = inspect_page(path, questions=CHECKS, screenshot=False, binary=chromium)
    _assert_inert(ENDPOINT, run)


def test_real_report_in_chromium(chromium: str, ui_only: Analysis, tmp_path: Path) -> None:
    path = html.write_html(ui_only, tmp_path / "report.html", generated=GENERATED)
    run = inspect_page(path, questions=CHECKS, binary=chromium)
    _assert_inert("LEAK: sound from your microphone left this computer", run)
    assert run.answers["title"] == "mutecheck: content-leak - chromium-ui-only"
    shot = tmp_path / "report.png"
    shot.write_bytes(run.screenshot)
    assert shot.stat().st_size > 50_000 and run.size[0] == 1100


def test_a_leaking_level_shows_its_talk_spurts_and_the_cryptex_advice(ui_only: Analysis) -> None:
    page = html.render_html(ui_only, generated=GENERATED)
    level = next(f for f in ui_only.findings if f.id == "audio-level-while-muted")
    speech = level.numbers["speech"]
    assert "<dt>speech</dt>" in page and 'class="spurts"' in page
    assert page.count('<tr><td class="mono">') >= speech["spurt_count"]
    assert 'id="level-privacy"' in page
    assert "the SDP line &#39;a=cryptex&#39; in both the offer and the answer" in page
