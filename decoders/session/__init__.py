"""What was negotiated and when the user was muted: SDP, signaling, timeline, keys."""
