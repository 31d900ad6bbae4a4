"""The terminal stream table."""

from __future__ import annotations

from pathlib import Path

from helpers.corpus import browser_audio_ssrcs, call_shape

from decoders.media.scan import scan_streams
from decoders.report.text import HEADERS, stream_rows, stream_table_text, table


def test_table_aligns_columns() -> None:
    out = table(("a", "long header"), [("xyz", "1"), ("q", "22")]).splitlines()
    assert out[0] == "a    long header"
    assert out[1] == "---  -----------"
    assert out[2].startswith("xyz  1")


def test_real_session_table(session_dir: Path) -> None:
    scan = scan_streams(session_dir / "capture.pcapng", audio_level_id=1)
    text = stream_table_text(scan.streams)
    if not call_shape(session_dir).rtp_readable:  # TURN over TLS: no RTP header in sight
        from decoders.report.text import CHANNEL_TITLE, channel_table_text

        assert scan.streams == [] and text == "no RTP streams found"
        assert channel_table_text(scan.channels).startswith(CHANNEL_TITLE)
        return
    assert text.splitlines()[0].startswith("Source Address  Source Port")
    rows = stream_rows(scan.streams)
    assert len(rows) == len(scan.streams) and all(len(r) == len(HEADERS) for r in rows)
    ssrcs = {f"0x{ssrc:08x}" for ssrc in browser_audio_ssrcs(session_dir)}
    (audio,) = [r for r in rows if r[4] in ssrcs]  # the browser's audio, by its SDP SSRC
    assert audio[4].startswith("0x") and len(audio[4]) == 10
    assert "dBov" in audio[-1]


def test_no_streams() -> None:
    assert stream_table_text([]) == "no RTP streams found"


def test_channel_table_names_what_was_assumed() -> None:
    import io

    from helpers.tls_relay import write_relay_capture

    from decoders.media.channels import tls_channels
    from decoders.report.text import CHANNEL_TITLE, channel_table_text
    from decoders.wire.bulk import scan_file

    buffer = io.BytesIO()
    write_relay_capture(buffer)
    channels, _ = tls_channels(scan_file(io.BytesIO(buffer.getvalue()), None).rows)
    text = channel_table_text(channels)
    assert text.startswith(CHANNEL_TITLE)
    assert "TURN client" in text and "TURN server" in text
    assert "est. payload = record - 24" in text and "assumed: ChannelData 4, RTP 12" in text
    assert "recognised 10.77.0.1:41234 <-> 10.77.0.3:5349" in text
    assert channel_table_text([]) == ""
