"""``mutecheck decrypt``: SRTP to plain RTP for Wireshark's RTP player, and audio per stream.

User errors (missing files, no keys, a key that decrypts nothing) print one line and exit with
code 2. Whenever decrypted media or audio is written, a privacy warning is printed: those files
hold what the microphone picked up.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from decoders.cli.common import (
    at,
    fail,
    json_option,
    os_reason,
    privacy_warning,
    sdp_option,
    warn,
)
from decoders.errors import CaptureError, MalformedPacket

if TYPE_CHECKING:
    from decoders.media.decrypt import SessionDecryption
    from decoders.media.srtp import StreamDecryption


@click.command("decrypt")
@click.argument("session", type=click.Path(path_type=Path))
@click.option(
    "--pcapng",
    "pcapng_out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the media as plain RTP/RTCP (for Wireshark's RTP Player).",
)
@click.option(
    "--wav",
    "wav_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write each audio stream's decoded audio as a WAV file into this folder.",
)
@click.option(
    "--muted-only",
    is_flag=True,
    help="With --wav: write only the muted windows of the timeline (one file per window).",
)
@click.option(
    "--keys",
    "keys_json",
    type=click.Path(path_type=Path, dir_okay=False),
    help="keys.json with SRTP master keys. Default: the session folder's.",
)
@click.option(
    "--keylog",
    type=click.Path(path_type=Path, dir_okay=False),
    help="NSS key log (CLIENT_RANDOM lines for DTLS 1.2, EXPORTER_SECRET for DTLS 1.3) for "
    "the capture's DTLS handshake. "
    "Default: the session folder's keylog.txt.",
)
@sdp_option(
    "SDP file: codecs, audio-level id and SDES a=crypto keys. "
    "Default: offer.sdp/answer.sdp of a session folder.",
    dir_okay=False,
)
@click.option(
    "--srtp-key",
    "srtp_keys",
    multiple=True,
    metavar="[SSRC:]SUITE:BASE64",
    help="An SRTP master key||salt by hand (repeatable). SUITE e.g. AES_CM_128_HMAC_SHA1_80; "
    "without SSRC (hex with 0x, or decimal) the key is tried on every stream.",
)
@click.option(
    "--timeline",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Mute timeline for --muted-only. Default: the session folder's timeline.json.",
)
@click.option(
    "--plain",
    is_flag=True,
    help="The media is plain RTP, not SRTP (e.g. from import-rtpdump): decode it without keys.",
)
@json_option("Print a JSON summary.")
def decrypt(
    session: Path,
    pcapng_out: Path | None,
    wav_dir: Path | None,
    muted_only: bool,
    keys_json: Path | None,
    keylog: Path | None,
    sdp_files: tuple[Path, ...],
    srtp_keys: tuple[str, ...],
    timeline: Path | None,
    plain: bool,
    as_json: bool,
) -> None:
    """Decrypt the SRTP of SESSION (a session folder or a capture file) and decode its audio.

    Keys come from the folder (keys.json, keylog.txt with the capture's DTLS handshake, SDES
    a=crypto in offer/answer or events.jsonl) and from --keys, --keylog, --sdp, --srtp-key.
    """
    from decoders.media.decrypt import decrypt_capture, write_plain_capture
    from decoders.media.scan import load_sdp
    from decoders.session.folder import locate
    from decoders.session.keys import (
        KeySet,
        KeySources,
        load_session_keys,
        parse_srtp_key_option,
    )

    if muted_only and wav_dir is None:
        fail("--muted-only needs --wav DIR")
    try:
        files = locate(session, sdp=sdp_files)
        folder = files.folder
        sources = KeySources.in_folder(folder) if folder is not None else KeySources()
        sources = replace(
            sources,
            keys_json=keys_json or sources.keys_json,
            keylog=keylog or sources.keylog,
            sdp=files.sdp,
            manual=tuple(
                parse_srtp_key_option(text, f"--srtp-key #{n}")
                for n, text in enumerate(srtp_keys, 1)
            ),
        )
        keys = KeySet(plaintext=True) if plain else load_session_keys(sources, files.capture)
        if not keys.keys and not plain:
            hint = "; ".join(keys.notes)
            reason = (
                "no SRTP keys: give --srtp-key, --keys keys.json, --keylog with the "
                "capture's DTLS handshake, or SDP with a=crypto"
            )
            fail(at(session, reason + (f" ({hint})" if hint else "")))
        sdp = load_sdp(files.sdp) if files.sdp else None
        muted: list[tuple[int, int]] = []
        if muted_only:
            muted = _muted_intervals(timeline or (folder / "timeline.json" if folder else None))
        result = decrypt_capture(files.capture, keys, sdp=sdp, keep_pcm=wav_dir is not None)
    except (CaptureError, MalformedPacket, ValueError) as exc:
        fail(at(session, exc))
    except OSError as exc:
        fail(os_reason(exc))

    if not result.streams:
        fail(at(files.capture, "no RTP or RTCP in the capture"))
    decrypted_any = any(s.decrypted for s in result.streams)
    written: list[str] = []
    if pcapng_out is not None and decrypted_any:
        try:
            count = write_plain_capture(result, pcapng_out)
        except OSError as exc:
            fail(at(pcapng_out, exc.strerror))
        privacy_warning(str(pcapng_out))
        written.append(f"{pcapng_out}: {count} packets")
    if wav_dir is not None and decrypted_any:
        try:
            wav_dir.mkdir(parents=True, exist_ok=True)
            paths = _write_wavs(result, wav_dir, muted if muted_only else None)
        except OSError as exc:
            fail(at(exc.filename or wav_dir, exc.strerror))
        if paths:
            privacy_warning(f"{wav_dir}/ ({len(paths)} WAV file{'s' if len(paths) != 1 else ''})")
        written += [str(p) for p in paths]

    if as_json:
        click.echo(json.dumps(_summary(result, written), indent=2))
    else:
        _print_summary(result, written)
    for error in result.errors:
        warn(error)
    if result.damage:
        warn(f"{result.damage}; everything before it was decrypted")
    if not decrypted_any:
        fail(at(files.capture, f"no stream decrypted: {result.errors[0]}"))


def _muted_intervals(path: Path | None) -> list[tuple[int, int]]:
    """Muted [start, end) of a timeline file (JSON ``{"muted": [[s, e], ...]}``, epoch s), ns."""
    if path is None or not path.is_file():
        fail("--muted-only needs a timeline: --timeline FILE or timeline.json in the folder")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        fail(at(path, f"not JSON: {exc}"))
    muted = document.get("muted") if isinstance(document, dict) else document
    if not isinstance(muted, list):
        fail(at(path, 'no "muted" list of [start, end] pairs'))
    out: list[tuple[int, int]] = []
    for number, item in enumerate(muted):
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in item)
            or item[1] <= item[0]
        ):
            fail(at(path, f"muted[{number}] is not a [start, end] pair of epoch seconds"))
        out.append((round(item[0] * 1e9), round(item[1] * 1e9)))
    return out


def _write_wavs(
    result: SessionDecryption, folder: Path, muted: list[tuple[int, int]] | None
) -> list[Path]:
    """One WAV per decoded stream, or one per stream and muted window."""
    from decoders.media.decrypt import intervals_to_samples, write_wav

    paths: list[Path] = []
    for stream, audio_stream in result.audio.items():
        audio = audio_stream.audio
        if audio is None or audio.chunks is None:
            continue
        base = (
            f"{stream.src}_{stream.src_port}-{stream.dst}_{stream.dst_port}-{stream.ssrc:08x}"
        ).replace(":", "-")
        pcm = audio.pcm()
        if muted is None:
            path = folder / f"{base}.wav"
            write_wav(path, pcm, audio.sample_rate)
            paths.append(path)
            continue
        for number, (lo, hi) in enumerate(intervals_to_samples(audio, muted), 1):
            path = folder / f"{base}-muted-{number}.wav"
            write_wav(path, pcm[lo:hi], audio.sample_rate)
            paths.append(path)
    return paths


def _stream_line(stream: StreamDecryption) -> str:
    key = stream.key.describe() if stream.key is not None else "none"
    if _plain_stream(stream):
        key = "none (plain RTP)"
    return (
        f"{stream.kind.upper():4} {stream.stream.describe()}: {stream.packets} packets, "
        f"{stream.decrypted} decrypted, {stream.failed} failed"
        + (f", {stream.duplicates} duplicates" if stream.duplicates else "")
        + f"; key: {key}"
    )


def _plain_stream(stream: StreamDecryption) -> bool:
    """Was the stream taken as plain RTP (``--plain``)?"""
    return stream.key is None and stream.error is None and stream.decrypted == stream.packets


def _print_summary(result: SessionDecryption, written: list[str]) -> None:
    click.echo(f"{result.capture}: {len(result.datagrams)} SRTP/SRTCP datagrams")
    click.echo(f"keys: {len(result.keys)} candidate(s)")
    for note in result.keys.notes:
        click.echo(f"  note: {note}")
    for stream in result.streams:
        click.echo(_stream_line(stream))
        audio_stream = result.audio.get(stream.stream) if stream.kind == "rtp" else None
        if audio_stream is None:
            continue
        audio, codec = audio_stream.audio, audio_stream.codec
        if audio is None or codec is None:
            click.echo(f"     payload type {audio_stream.payload_type}: codec not decodable")
            continue
        levels = audio.dbfs[np.isfinite(audio.dbfs)]
        median = f"{float(np.median(levels)):.1f} dBFS" if levels.size else "n/a"
        click.echo(
            f"     {codec.name} ({audio_stream.codec_source}), "
            f"{audio.sequence_number.size} packets decoded with {audio.decoder}, "
            f"{audio.gaps} gaps, median {median}"
        )
    for line in written:
        click.echo(f"wrote {line}")


def _summary(result: SessionDecryption, written: list[str]) -> dict[str, Any]:
    streams = []
    for stream in result.streams:
        entry: dict[str, Any] = {
            "kind": stream.kind,
            "src": stream.stream.src,
            "src_port": stream.stream.src_port,
            "dst": stream.stream.dst,
            "dst_port": stream.stream.dst_port,
            "transport": stream.stream.transport,
            "ssrc": stream.stream.ssrc,
            "packets": stream.packets,
            "decrypted": stream.decrypted,
            "failed": stream.failed,
            "failures": dict(stream.failures),
            "duplicates": stream.duplicates,
            "key": stream.key.describe() if stream.key is not None else None,
            "error": stream.error,
        }
        audio_stream = result.audio.get(stream.stream) if stream.kind == "rtp" else None
        if (
            audio_stream is not None
            and audio_stream.audio is not None
            and audio_stream.codec is not None
        ):
            audio = audio_stream.audio
            levels = audio.dbfs[np.isfinite(audio.dbfs)]
            entry["audio"] = {
                "codec": audio_stream.codec.name,
                "codec_source": audio_stream.codec_source,
                "sample_rate": audio.sample_rate,
                "decoded_packets": int(audio.sequence_number.size),
                "gaps": audio.gaps,
                "decode_errors": dict(audio.decode_errors),
                "median_dbfs": float(np.median(levels)) if levels.size else None,
            }
        streams.append(entry)
    return {
        "capture": str(result.capture),
        "keys": [key.describe() for key in result.keys.keys],
        "notes": list(result.keys.notes),
        "streams": streams,
        "written": written,
        "damage": result.damage,
    }
