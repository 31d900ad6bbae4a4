"""mutecheck's decoder pipeline: capture -> frames -> datagrams -> STUN/DTLS/RTP/RTCP -> streams."""

__version__ = "0.1.0"
