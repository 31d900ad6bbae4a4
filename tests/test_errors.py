"""The error types: one for malformed input, one for files that are not captures."""

from __future__ import annotations

from decoders.errors import CaptureError, MalformedPacket


def test_both_are_value_errors_and_distinct() -> None:
    assert issubclass(MalformedPacket, ValueError)
    assert issubclass(CaptureError, ValueError)
    assert not issubclass(MalformedPacket, CaptureError)
    assert not issubclass(CaptureError, MalformedPacket)
    assert str(MalformedPacket("RTP header truncated")) == "RTP header truncated"
