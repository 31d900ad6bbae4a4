"""Regenerate the pictures of docs/reports.md from the default session (captures/chromium-ui-only).

    python docs/img/make_images.py    # writes docs/img/report.png and docs/img/wireshark.png

``report.png``: the HTML report (``mutecheck report ... --html``) as headless Chromium renders it,
the top of the page (verdict, timeline). ``wireshark.png``: Wireshark is a GUI and cannot run
headless here, so this is tshark 4's packet list with the companion's profile (its columns)
and Lua plugin, around the moment the page muted, plus the packet details of the first
flagged frame, rendered as an HTML page and photographed by the same headless Chromium.
Needs tshark and Chromium. The report's "generated" time is fixed so that reruns differ only
where the inputs do.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from decoders.audit.analysis import Analysis, Inputs, analyze  # noqa: E402
from decoders.report.browser import inspect_page  # noqa: E402
from decoders.report.html import write_html  # noqa: E402
from decoders.report.wireshark import write_wireshark  # noqa: E402

SESSION = ROOT / "captures" / "chromium-ui-only"
OUT = ROOT / "docs" / "img"
GENERATED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FRAMES = "frame.number >= 226 && frame.number <= 252"
FIELDS = (
    ("No.", "frame.number"),
    ("Time", "frame.time_relative"),
    ("Source", "ip.src"),
    ("Destination", "ip.dst"),
    ("Protocol", "_ws.col.Protocol"),
    ("Length", "frame.len"),
    ("Level (-dBov)", "mutecheck.audio_level"),
    ("Muted", "mutecheck.muted"),
    ("Phase", "mutecheck.phase"),
    ("Comment", "frame.comment"),
    ("Info", "_ws.col.Info"),
)
PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; font: 12px/1.35 "DejaVu Sans Mono", monospace; background: #fff; }}
h1 {{ font: 600 13px system-ui, sans-serif; margin: 0; padding: 8px 10px; background: #e8eaed;
     border-bottom: 1px solid #bbb; }}
.filter {{ padding: 5px 10px; background: #d5f5d5; border-bottom: 1px solid #bbb; }}
table {{ border-collapse: collapse; width: 100%; }}
th {{ background: #f1f1f1; text-align: left; font-weight: 600; border: 1px solid #ccc;
     padding: 2px 5px; font-family: system-ui, sans-serif; }}
td {{ padding: 1px 5px; white-space: nowrap; border-right: 1px solid #eee; }}
tr.flagged td {{ background: #fde2e1; }} tr.stun td {{ background: #eef6ff; }}
td.comment {{ max-width: 470px; overflow: hidden; text-overflow: ellipsis; }}
td.info {{ max-width: 190px; overflow: hidden; text-overflow: ellipsis; }}
pre {{ margin: 0; padding: 8px 10px; border-top: 2px solid #bbb; background: #fbfbfb; }}
p {{ font: 12px system-ui, sans-serif; color: #555; margin: 6px 10px; }}
</style></head><body>
<h1>{title}</h1><div class="filter">{command}</div>
<table><tr>{head}</tr>{rows}</table>
<pre>{details}</pre>
<p>tshark {version}: packet list with the mutecheck profile's columns and mutecheck.lua, then
the packet details of frame 236 (not a Wireshark GUI screenshot: tshark's output as HTML).</p>
</body></html>"""


def _tshark(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["tshark", *args], capture_output=True, text=True, check=True, env={**os.environ, **env}
    )
    return done.stdout


def report_png(analysis: Analysis, work: Path) -> None:
    page = write_html(analysis, work / "report.html", generated=GENERATED)
    run = inspect_page(page, width=1100, max_height=2350)
    assert not (run.console or run.errors or run.requests or run.scripts), run
    (OUT / "report.png").write_bytes(run.screenshot)


def wireshark_png(analysis: Analysis, work: Path) -> None:
    files = write_wireshark(analysis, work / "ws")
    assert files.annotated is not None
    profile = work / "config" / "wireshark" / "profiles" / "mutecheck"
    profile.mkdir(parents=True)
    for path in files.profile:
        shutil.copy(path, profile / path.name)
    env = {"XDG_CONFIG_HOME": str(work / "config"), "HOME": str(work)}
    common = ["-C", "mutecheck", "-r", str(files.annotated), "-X", f"lua_script:{files.plugin}"]
    fields = [x for _, name in FIELDS for x in ("-e", name)]
    listing = _tshark(*common, "-Y", FRAMES, "-T", "fields", "-E", "occurrence=f", *fields, env=env)
    rows = []
    for line in listing.splitlines():
        cells = line.split("\t")
        kind = "flagged" if cells[9] else "stun" if cells[4] == "STUN" else ""
        tds = []
        for (title, _), cell in zip(FIELDS, cells, strict=True):
            if title == "Time":
                cell = f"{float(cell):.6f}"
            if title == "Muted":
                cell = {"1": "True", "0": "False"}.get(cell, cell)
            css = {"Comment": "comment", "Info": "info"}.get(title, "")
            tds.append(f'<td class="{css}">{html.escape(cell)}</td>')
        rows.append(f'<tr class="{kind}">{"".join(tds)}</tr>')
    details = _tshark(*common, "-Y", "frame.number == 236", "-V", "-O", "pkt_comment,rtp,mutecheck",
                      env=env)  # fmt: skip
    version = _tshark("--version", env=env).splitlines()[0].split()[2]
    page = PAGE.format(
        title=html.escape(f"{files.annotated.name}: the moment the page muted"),
        command=html.escape(
            f"tshark -C mutecheck -X lua_script:mutecheck.lua -r annotated.pcapng -Y '{FRAMES}'"
        ),
        head="".join(f"<th>{html.escape(t)}</th>" for t, _ in FIELDS),
        rows="".join(rows),
        details=html.escape(details.strip()),
        version=html.escape(version),
    )
    (work / "wireshark.html").write_text(page, encoding="utf-8")
    run = inspect_page(work / "wireshark.html", width=1500, max_height=2000)
    assert not (run.console or run.errors or run.requests or run.scripts), run
    (OUT / "wireshark.png").write_bytes(run.screenshot)


def main() -> None:
    analysis = analyze(Inputs(session_dir=SESSION))
    with tempfile.TemporaryDirectory(prefix="mutecheck-docs-") as tmp:
        work = Path(tmp)
        report_png(analysis, work)
        wireshark_png(analysis, work)
    for name in ("report.png", "wireshark.png"):
        print(OUT / name, (OUT / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
