"""The one exception for malformed input.

Parsers return ``None`` for "not this protocol" and raise :class:`MalformedPacket`
for "this protocol, but broken"; the message names the field that did not fit.
"""


class MalformedPacket(ValueError):
    """Input that claims to be a protocol but does not parse as it."""


class CaptureError(ValueError):
    """A file that cannot be read as a capture at all (not a capture, empty, unknown format)."""
