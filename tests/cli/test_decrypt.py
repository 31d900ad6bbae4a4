"""``mutecheck decrypt`` (and with ``import-rtpdump``'s capture): outputs, warnings, user errors.

``import-rtpdump`` alone: test_rtpdump.py.
"""

from __future__ import annotations

import base64
import json
import os
import wave
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from helpers.cli_run import one_line_error
from helpers.corpus import lab_session

from decoders.cli.decrypt import decrypt
from decoders.cli.rtpdump import import_rtpdump

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
SDES = ROOT / "tests" / "fixtures" / "media" / "sdes"
RECORDING = ROOT / "tests" / "fixtures" / "media" / "rtpdump"
WRONG_KEY = "AES_CM_128_HMAC_SHA1_80:" + base64.b64encode(bytes(30)).decode()


@click.group()
def main() -> None:
    """The commands as the lead registers them on the main group."""


main.add_command(decrypt)
main.add_command(import_rtpdump)


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result: Result) -> str:
    return one_line_error(result)


def _folder(variant: str = "ui-only") -> Path:
    return lab_session(variant)


def test_commands_are_click_commands() -> None:
    assert isinstance(decrypt, click.Command) and decrypt.name == "decrypt"
    assert isinstance(import_rtpdump, click.Command) and import_rtpdump.name == "import-rtpdump"


def test_decrypt_a_session_folder() -> None:
    result = run("decrypt", _folder())
    assert result.exit_code == 0, result.output
    assert "704 packets" in result.stdout or "packets, " in result.stdout
    assert ", 0 failed; key: keys.json (browser sends)" in result.stdout
    assert "opus (sdp)" in result.stdout and "decoded with" in result.stdout
    assert "warning" not in result.stderr  # nothing written, no privacy warning


def test_decrypt_writes_pcapng_and_wav_with_a_privacy_warning(tmp_path: Path) -> None:
    out, wavs = tmp_path / "plain.pcapng", tmp_path / "wav"
    result = run("decrypt", _folder(), "--pcapng", out, "--wav", wavs)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000
    (wav,) = wavs.iterdir()
    with wave.open(str(wav)) as handle:
        assert handle.getframerate() == 48000 and handle.getnframes() > 48000 * 10
    assert result.stderr.count("holds decrypted media") == 2
    assert f"wrote {out}" in result.stdout


def test_decrypt_muted_only(tmp_path: Path) -> None:
    folder = _folder()
    muted = json.loads((folder / "timeline.json").read_text())["muted"]
    result = run("decrypt", folder, "--wav", tmp_path, "--muted-only")
    assert result.exit_code == 0, result.output
    files = sorted(tmp_path.iterdir())
    assert [f.name.endswith(f"-muted-{n}.wav") for n, f in enumerate(files, 1)] == [True] * len(
        muted
    )
    with wave.open(str(files[0])) as handle:
        seconds = handle.getnframes() / handle.getframerate()
    assert seconds == pytest.approx(muted[0][1] - muted[0][0], abs=0.1)
    assert "holds decrypted media" in result.stderr


def test_decrypt_json_summary() -> None:
    result = run("decrypt", SDES / "capture.pcapng", "--sdp", SDES / "offer.sdp", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert len(document["streams"]) == 4
    assert all(s["failed"] == 0 for s in document["streams"])
    codecs = sorted(s["audio"]["codec"] for s in document["streams"] if "audio" in s)
    assert codecs == ["PCMU", "opus", "opus"]
    assert document["written"] == []


def test_decrypt_with_a_key_by_hand() -> None:
    truth = json.loads((SDES / "truth.json").read_text())["streams"]["B"]
    key = f"0x{truth['ssrc']:08x}:AEAD_AES_128_GCM:{truth['key']}"
    result = run("decrypt", SDES / "capture.pcapng", "--srtp-key", key)
    assert result.exit_code == 0, result.output
    assert "50 decrypted, 0 failed; key: --srtp-key #1" in result.stdout
    assert result.stderr.count("no key for this stream") == 3


def test_wrong_key_is_one_clear_line() -> None:
    line = _one_line_error(run("decrypt", SDES / "capture.pcapng", "--srtp-key", WRONG_KEY))
    assert "no stream decrypted" in line and "no key authenticates" in line
    assert "AAAAAAAAAAAA" not in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decrypt", "/nonexistent/session"], "no such file"),
        (["decrypt", SDES / "capture.pcapng"], "no SRTP keys"),
        (["decrypt", SDES / "capture.pcapng", "--srtp-key", "AES:xx"], "unknown SRTP suite"),
        (["decrypt", SDES / "capture.pcapng", "--srtp-key", "nonsense"], "is not [SSRC:]"),
        (["decrypt", SDES / "truth.json", "--srtp-key", WRONG_KEY], "truth.json"),
        (["decrypt", SDES / "capture.pcapng", "--muted-only"], "needs --wav"),
    ],
)
def test_decrypt_user_errors(args: list[object], message: str) -> None:
    assert message in _one_line_error(run(*map(str, args)))


def test_muted_only_needs_a_timeline(tmp_path: Path) -> None:
    args = ["decrypt", SDES / "capture.pcapng", "--sdp", SDES / "offer.sdp", "--wav", tmp_path]
    assert "needs a timeline" in _one_line_error(run(*map(str, args), "--muted-only"))
    bad = tmp_path / "timeline.json"
    bad.write_text('{"muted": [[5, 1]]}')
    line = _one_line_error(run(*map(str, args), "--muted-only", "--timeline", str(bad)))
    assert "muted[0]" in line


def test_decrypt_plain_rtp_from_the_dump(tmp_path: Path) -> None:
    out = tmp_path / "dump.pcapng"
    log = RECORDING / "chromium-stderr.log"
    assert run("import-rtpdump", log, "-o", out, "--timezone", "Z").exit_code == 0
    result = run("decrypt", out, "--plain", "--wav", tmp_path / "wav")
    assert result.exit_code == 0, result.output
    assert "key: none (plain RTP)" in result.stdout and "opus (behaviour)" in result.stdout
    assert len(list((tmp_path / "wav").iterdir())) == 1
    assert "holds decrypted media" in result.stderr
    without = _one_line_error(run("decrypt", out, "--srtp-key", WRONG_KEY))
    assert "no stream decrypted" in without


def _stale(paths: list[Path], keep: Path) -> list[Path]:
    """Each path overwritten with b"old" and hard-linked under ``keep``: a file rewritten in
    place changes its link too, one replaced by a rename leaves the link with b"old"."""
    keep.mkdir()
    links = []
    for number, path in enumerate(paths):
        path.write_bytes(b"old")
        links.append(keep / str(number))
        os.link(path, links[-1])
    return links


def test_decrypt_and_import_replace_their_outputs_whole(tmp_path: Path) -> None:
    """Issue 13: every output appears whole or not at all (a temporary file renamed over it)."""
    out, wavs = tmp_path / "plain.pcapng", tmp_path / "wav"
    assert run("decrypt", _folder(), "--pcapng", out, "--wav", wavs).exit_code == 0
    dump = tmp_path / "dump.pcapng"
    log = RECORDING / "chromium-stderr.log"
    assert run("import-rtpdump", log, "-o", dump, "--timezone", "UTC").exit_code == 0
    outputs = [out, dump, *sorted(wavs.iterdir())]
    links = _stale(outputs, tmp_path / "links")
    assert run("decrypt", _folder(), "--pcapng", out, "--wav", wavs).exit_code == 0
    assert run("import-rtpdump", log, "-o", dump, "--timezone", "UTC").exit_code == 0
    assert all(link.read_bytes() == b"old" for link in links)
    assert all(path.stat().st_size > 10_000 for path in outputs)
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".partial")]
    assert leftovers == []


DTLS13 = ROOT / "tests" / "fixtures" / "media" / "dtls13"


def test_decrypt_a_firefox_dtls13_call_from_its_key_log(tmp_path: Path) -> None:
    """A folder with a Firefox DTLS 1.3 capture and its NSS key log: every RTP and RTCP
    packet of both sides decrypts, and the plain capture holds them all."""
    folder = tmp_path / "session"
    folder.mkdir()
    for name in ("capture.pcapng", "keylog.txt"):
        (folder / name).write_bytes((DTLS13 / name).read_bytes())
    result = run("decrypt", folder, "--pcapng", tmp_path / "plain.pcapng", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert len(document["streams"]) == 4 and document["notes"] == []
    for stream in document["streams"]:
        assert stream["failed"] == 0 and stream["decrypted"] == stream["packets"] > 100
        assert "keylog.txt (DTLS" in stream["key"] and "AEAD_AES_128_GCM" in stream["key"]
    assert (tmp_path / "plain.pcapng").stat().st_size > 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"CLIENT_RANDOM {'11' * 32} {'22' * 48}", "holds only CLIENT_RANDOM lines (TLS/DTLS 1.2)"),
        (f"EXPORTER_SECRET {'33' * 32} {'44' * 32}", "line(s) are for other handshakes (33333333"),
    ],
)
def test_firefox_key_log_that_does_not_fit_is_one_line(
    tmp_path: Path, line: str, message: str
) -> None:
    (tmp_path / "keylog.txt").write_text(line + "\n")
    args = ["decrypt", DTLS13 / "capture.pcapng", "--keylog", tmp_path / "keylog.txt"]
    error = _one_line_error(run(*map(str, args)))
    assert "no SRTP keys" in error and "no EXPORTER_SECRET line for the DTLS 1.3 handshake" in error
    assert message in error
