"""Tests for decoders.cli.analyze: `mutecheck analyze` output, report.json and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import helpers.janus_messages as janus
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from helpers.corpus import lab_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoders.audit.verdict import EXIT_CODES
from decoders.cli.analyze import analyze
from decoders.session.keys import capture_flow_datagrams, find_dtls_handshakes

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


def test_parquet_tables_of_one_session(tmp_path: Path) -> None:
    """--parquet: batch's three tables for this session (docs/corpus.md; the rows equal a
    batch's: tests/cli/test_batch.py)."""
    result = CliRunner().invoke(
        analyze, [str(session("dtx")), "--parquet", str(tmp_path), "--no-report", "-q"]
    )
    assert result.exit_code == 0, result.output
    sessions = pq.read_table(tmp_path / "sessions.parquet").to_pylist()
    assert [(r["name"], r["verdict"], r["variant"]) for r in sessions] == [
        ("chromium-dtx", "no-leak", "dtx")
    ]
    assert pq.read_table(tmp_path / "findings.parquet").num_rows == sessions[0]["findings"]
    only_events = ["--events", str(session("dtx") / "events.jsonl"), "--parquet", str(tmp_path)]
    result = CliRunner().invoke(analyze, only_events)
    assert result.exit_code == 2 and "--parquet needs a session folder or a capture" in (
        result.output
    )


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
            "decoders.cli.analyze",
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


# -- damaged inputs never make a high-confidence "no leak" (issue 13) ------------------------------

LEAKING = {"telemetry-http": "metadata-leak", "ui-only": "content-leak"}
"""Lab sessions that leak, and how: any damage must leave the leak, inconclusive or exit 2."""


@contextmanager
def session_copy(name: str) -> Iterator[Path]:
    """A writable copy of a lab session (with the shared reference signal beside it)."""
    with tempfile.TemporaryDirectory() as top:
        folder = Path(top) / f"chromium-{name}"
        shutil.copytree(session(name), folder)
        shutil.copy(CAPTURES / "reference.wav", Path(top) / "reference.wav")
        yield folder


def run(args: list[str]) -> tuple[int, str, dict[str, object] | None]:
    result = CliRunner().invoke(analyze, [*args, "--no-report", "--json"])
    doc = json.loads(result.output) if result.exit_code in EXIT_CODES.values() else None
    return result.exit_code, result.output, doc


def assert_not_fooled(code: int, output: str, doc: dict[str, object] | None) -> None:
    """The leak, inconclusive, or one clear error line; "no leak" only below high confidence."""
    if code == 2:
        lines = [line for line in output.splitlines() if line]
        assert len(lines) == 1 and lines[0].startswith("mutecheck: error: "), output
        return
    assert code in EXIT_CODES.values(), output  # no traceback (exit 1)
    assert doc is not None
    verdict = doc["verdict"]
    assert isinstance(verdict, dict)
    if verdict["verdict"] == "no-leak":
        assert verdict["confidence_label"] != "high", verdict


def rewrite_events(folder: Path, change: Callable[[int, bytes], bytes]) -> int:
    """Rewrite each line of events.jsonl with ``change(index, line)``; the telemetry lines'
    count is returned."""
    path = folder / "events.jsonl"
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"".join(change(i, line) + b"\n" for i, line in enumerate(lines)))
    return sum(b'"kind":"telemetry"' in line for line in lines)


def with_t(value: str) -> Callable[[int, bytes], bytes]:
    def change(_: int, line: bytes) -> bytes:
        if b'"kind":"telemetry"' not in line:
            return line
        event = line.split(b",", 1)[1]
        return b'{"t":' + value.encode() + b"," + event

    return change


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e308", "-5", "1" + "0" * 400])
def test_damaged_event_times_fall_back_to_the_flows(value: str) -> None:
    """The issue's case: every telemetry line's t damaged turned a metadata leak into "no leak
    0.95" with no word. Now the lines are counted and shown, flows.mitm is read instead (the
    leak), and without flows "no leak" is at most medium and says why."""
    with session_copy("telemetry-http") as folder:
        count = rewrite_events(folder, with_t(value))
        code, output, doc = run([str(folder)])
        assert code == EXIT_CODES["metadata-leak"], output
        assert doc is not None
        events_file = doc["events_file"]
        assert isinstance(events_file, dict)
        assert events_file["unusable_count"] == count and events_file["replaced_by"] == "flows.mitm"
        summary = CliRunner().invoke(analyze, [str(folder), "--no-report"])
        assert summary.exit_code == EXIT_CODES["metadata-leak"]
        assert f"events.jsonl: {count} of 38 line(s) could not be used" in summary.output
        assert "were read from flows.mitm instead" in summary.output
        code, output, doc = run([str(folder), "--ignore", "flows"])
        assert code == EXIT_CODES["no-leak"] and doc is not None
        verdict = doc["verdict"]
        assert isinstance(verdict, dict)
        assert verdict["confidence"] == 0.6 and verdict["confidence_label"] == "medium"
        assert "what they said was not judged" in str(verdict["reason"])


@pytest.mark.parametrize(
    "change",
    [
        lambda line: line.replace(b'"value":', b'"value":"', 1).replace(
            b',"audio_context"', b'","audio_context"', 1
        ),
        lambda line: line.replace(b'"fields":[', b'"fields":{"x":[', 1).replace(
            b'],"encoding"', b']},"encoding"', 1
        ),
        lambda line: b"[" * 100_000 + b"]" * 100_000,
        lambda line: line[: len(line) // 2],
    ],
    ids=["value-as-text", "fields-not-a-list", "nested-100000-deep", "cut-in-half"],
)
def test_damaged_telemetry_lines_are_counted_and_never_hide_the_leak(
    change: Callable[[bytes], bytes],
) -> None:
    with session_copy("telemetry-http") as folder:
        rewrite_events(
            folder, lambda _, line: change(line) if b'"kind":"telemetry"' in line else line
        )
        for extra in ([], ["--ignore", "flows"]):
            code, output, doc = run([str(folder), *extra])
            assert_not_fooled(code, output, doc)
            assert doc is not None and doc["events_file"]["unusable_count"] == 28  # type: ignore[index]


@pytest.mark.parametrize(
    ("timeline", "message"),
    [
        ('{"muted": [[1795990791.1733, 9999999999]]}', "after 2100 as epoch seconds"),
        ('{"muted": [[NaN, 1795990797.1754]]}', "not a finite number"),
        ('{"muted": [[-1, 5]]}', "is negative"),
        ('{"muted": [["1795990791", 1795990797]]}', "not a number of seconds"),
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),
    ],
)
def test_damaged_timelines_are_one_line_errors(timeline: str, message: str) -> None:
    """A window ending in 2286 overflowed int64 nanoseconds: "no leak" on a leaking session."""
    with session_copy("ui-only") as folder:
        (folder / "timeline.json").write_text(timeline)
        code, output, _ = run([str(folder)])
        assert code == 2 and message in output
        assert_not_fooled(code, output, None)


@pytest.mark.parametrize(
    "args",
    [
        ["--muted", "1795990791.1733-9999999999"],
        ["--muted", "4-" + "9" * 400],
        ["--clock-offset", "nan"],
        ["--clock-offset", "1e300"],
        ["--reference-start", "inf"],
    ],
)
def test_damaged_times_on_the_command_line_are_one_line_errors(args: list[str]) -> None:
    with session_copy("ui-only") as folder:
        code, output, _ = run([str(folder), "--ignore", "timeline", *args])
        assert code == 2, output
        assert_not_fooled(code, output, None)


def test_unusable_events_are_shown_in_the_html(tmp_path: Path) -> None:
    with session_copy("telemetry-http") as folder:
        rewrite_events(folder, with_t("NaN"))
        page = tmp_path / "report.html"
        result = CliRunner().invoke(
            analyze, [str(folder), "--no-report", "--ignore", "flows", "--html", str(page)]
        )
        assert result.exit_code == 0, result.output
        html = page.read_text()
        assert "Events (events.jsonl)" in html
        assert "28 of 38 line(s) of events.jsonl could not be used" in html


HOSTILE_NUMBERS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e308",
    "-1",
    "1" + "0" * 400,
    '"x"',
    "null",
    "[]",
    "{}",
    "true",
]
EVENT_DAMAGE = st.one_of(
    st.tuples(st.just("t"), st.sampled_from(HOSTILE_NUMBERS)),
    st.tuples(st.just("value"), st.sampled_from(HOSTILE_NUMBERS)),
    st.tuples(st.just("at"), st.sampled_from(HOSTILE_NUMBERS)),
    st.tuples(st.just("cut"), st.integers(min_value=1, max_value=200).map(str)),
    st.tuples(st.just("garbage"), st.sampled_from(["\x00\xff", "{", "[" * 5000, "not json"])),
    st.tuples(st.just("kind"), st.sampled_from(HOSTILE_NUMBERS)),
)
TIMELINE_DAMAGE = st.one_of(
    st.none(),
    st.tuples(
        st.integers(min_value=0, max_value=1), st.sampled_from([*HOSTILE_NUMBERS, "9999999999"])
    ),
)


def damage_line(line: bytes, how: str, value: str) -> bytes:
    if how == "t":
        return b'{"t":' + value.encode() + b"," + line.split(b",", 1)[1]
    if how == "value" and b'"value":' in line:
        head, tail = line.split(b'"value":', 1)
        rest = tail.split(b",", 1)[1] if b"," in tail else b"}]}"
        return head + b'"value":' + value.encode() + b"," + rest
    if how == "at" and b'"at":' in line:
        head, tail = line.split(b'"at":', 1)
        return head + b'"at":' + value.encode() + b"," + tail.split(b",", 1)[1]
    if how == "kind":
        return line.replace(b'"kind":"', b'"kind":' + value.encode() + b',"was":"', 1)
    if how == "cut":
        return line[: max(1, len(line) - int(value))]
    if how == "garbage":
        return value.encode("latin-1")
    return line


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    name=st.sampled_from(sorted(LEAKING)),
    damage=st.dictionaries(st.integers(min_value=0, max_value=37), EVENT_DAMAGE, max_size=12),
    timeline=TIMELINE_DAMAGE,
    ignore_flows=st.booleans(),
)
def test_corrupting_a_leaking_session_never_gives_a_confident_no_leak(
    name: str,
    damage: dict[int, tuple[str, str]],
    timeline: tuple[int, str] | None,
    ignore_flows: bool,
) -> None:
    """The property of issue 13: damage to events.jsonl (any lines, any field, cut, garbage,
    deep nesting) and timeline.json of a leaking lab session (metadata: chromium-telemetry-http;
    content: chromium-ui-only) yields the leak, inconclusive, or one clear error line (exit
    2); never a high-confidence "no leak", never a traceback."""
    with session_copy(name) as folder:
        rewrite_events(
            folder, lambda i, line: damage_line(line, *damage[i]) if i in damage else line
        )
        if timeline is not None:
            path = folder / "timeline.json"
            document = json.loads(path.read_text())
            index, value = timeline
            text = json.dumps(document["muted"][0][index])
            path.write_text(path.read_text().replace(text, value, 1))
        code, output, doc = run([str(folder), *(["--ignore", "flows"] if ignore_flows else [])])
        assert_not_fooled(code, output, doc)


def test_volume_fields_without_a_readable_value_cap_no_leak() -> None:
    """The addon writes a non-finite volume value as null: a volume field left while muted,
    its value unknown; "no leak" is then at most medium and says so."""

    def nulls(_: int, line: bytes) -> bytes:
        if b'"kind":"telemetry"' not in line:
            return line
        event = json.loads(line)
        for item in event["fields"]:
            item["value"] = None
        return json.dumps(event).encode()

    with session_copy("telemetry-http") as folder:
        rewrite_events(folder, nulls)
        code, output, doc = run([str(folder), "--ignore", "flows"])
        assert code == 0 and doc is not None, output
        assert doc["events_file"]["unusable_count"] == 0  # type: ignore[index]
        verdict = doc["verdict"]
        assert isinstance(verdict, dict) and verdict["confidence_label"] == "medium"
        assert "12 telemetry message(s) sent while muted had volume fields" in str(
            verdict["reason"]
        )


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


OTHER_INPUTS = ("capture.pcapng", "keys.json", "offer.sdp", "answer.sdp", "flows.mitm")


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    name=st.sampled_from(sorted(LEAKING)),
    target=st.sampled_from(OTHER_INPUTS),
    how=st.sampled_from(("cut", "flip", "garbage", "empty")),
    where=st.floats(min_value=0.0, max_value=1.0),
    data=st.binary(min_size=1, max_size=64),
)
def test_damaging_any_other_input_never_gives_a_confident_no_leak(
    name: str, target: str, how: str, where: float, data: bytes
) -> None:
    """The same property for the session's other inputs: the capture, the keys, the SDP files
    and flows.mitm cut short, with bytes overwritten, replaced by garbage, or emptied."""
    with session_copy(name) as folder:
        path = folder / target
        if not path.is_file():
            return
        original = path.read_bytes()
        at = int(where * len(original))
        if how == "cut":
            damaged = original[:at]
        elif how == "flip":
            damaged = original[:at] + data + original[at + len(data) :]
        elif how == "garbage":
            damaged = data
        else:
            damaged = b""
        path.write_bytes(damaged)
        code, output, doc = run([str(folder)])
        assert_not_fooled(code, output, doc)


def test_a_damaged_flows_file_beside_good_events_is_a_warning() -> None:
    """Found by the property above: one byte of flows.mitm zeroed makes mitmproxy rebuild a
    flow with a KeyError. The session's events.jsonl still judges the call (a warning names
    the damage); flows.mitm named alone is one error line."""
    with session_copy("telemetry-http") as folder:
        path = folder / "flows.mitm"
        damaged = bytearray(path.read_bytes())
        damaged[int(0.90234375 * len(damaged))] = 0
        path.write_bytes(bytes(damaged))
        code, output, doc = run([str(folder)])
        assert code == 4 and doc is not None, output
        assert any("damaged mitmproxy flow file" in w for w in doc["warnings"])  # type: ignore[union-attr]
        code, output, _ = run(["--flows", str(path)])
        assert code == 2 and output.count("\n") == 1 and "damaged mitmproxy flow file" in output


@pytest.mark.parametrize("name", ["dtls13", "dtls13-wav"])
def test_firefox_dtls13_session_is_judged_on_decoded_audio(tmp_path: Path, name: str) -> None:
    """A real Firefox DTLS 1.3 call (timeline, SDP, capture and Firefox's NSS key log, no
    keys.json): the audit decrypts the muted side from the key log alone and judges the
    track.enabled mute on decoded audio. Both ends of these self-calls share one address, so the
    muted side is named with --local (the offerer: the DTLS server, a=setup:active answered)."""
    folder = ROOT / "tests" / "fixtures" / "media" / name
    (handshake,) = find_dtls_handshakes(capture_flow_datagrams(folder / "capture.pcapng"))
    local = f"{handshake.server[0]}:{handshake.server[1]}"
    report = tmp_path / "report.json"
    result = CliRunner().invoke(analyze, [str(folder), "--local", local, "--report", str(report)])
    assert result.exit_code == EXIT_CODES["no-leak"], result.output
    document = json.loads(report.read_text())
    assert document["decoded_audio"]["status"] == "measured"
    assert document["verdict"]["verdict"] == "no-leak"
    assert "decoded audio silent" in result.output


@pytest.mark.parametrize(
    ("name", "inference"),
    [
        ("telemetry-gains", "read"),  # the study's max/mean/min: the model reads it
        ("telemetry-http", "no model"),  # one audioLevel: no model exists for that shape
        ("ui-only", None),  # no telemetry at all: nothing to infer from
    ],
)
def test_the_observer_inference_in_the_terminal_json_and_html(
    tmp_path: Path, name: str, inference: str | None
) -> None:
    report, page = tmp_path / "report.json", tmp_path / "report.html"
    args = [str(session(name)), "--report", str(report), "--html", str(page)]
    result = CliRunner().invoke(analyze, args)
    assert result.exit_code in (4, 5), result.output
    findings = json.loads(report.read_text())["findings"]
    telemetry = [f for f in findings if f["id"] == "volume-telemetry-while-muted"]
    html = page.read_text()
    if inference is None:
        assert not telemetry and "observer infer" not in result.output
        assert "observer inference" not in html
        return
    (finding,) = telemetry
    numbers = finding["numbers"]["observer_inference"]
    assert "what this lets an observer infer: " in result.output
    assert "observer inference" in html
    if inference == "no model":
        assert numbers["model"] is None and numbers["likeliest"] is None
        assert "no activity model exists for the values that left" in result.output
        return
    fields = ("audioMaxGain", "audioMeanGain", "audioMinGain")
    assert (numbers["max_field"], numbers["mean_field"], numbers["min_field"]) == fields
    assert numbers["readings"] >= 3 and numbers["likeliest"] is not None
    assert numbers["period_s"] == pytest.approx(15, abs=0.5) and numbers["same_period"] is False
    shown = f"reads {numbers['readings']} reading(s) as {numbers['likeliest']} "
    assert shown in " ".join(result.output.split())
    assert "the model learnt one-minute readings" in " ".join(result.output.split())
    assert f"likeliest: {numbers['likeliest']}" in html and "same_period: no" in html
