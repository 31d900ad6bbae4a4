"""What the session says besides the media: what was negotiated, when the user was muted, which
messages carried the microphone's loudness or the app's mute state, and the keys.

Read by the analysis and, live, by the addon; nothing here reads a capture's media.

- The session folder and its events: :mod:`~decoders.session.folder` (where each file of an
  audited call lives), :mod:`~decoders.session.events` (``events.jsonl``, the addon's record).
- What was negotiated: :mod:`~decoders.session.sdp` (SDP: codecs, header-extension ids, SSRCs,
  keys, ICE, DTLS), :mod:`~decoders.session.sdpsources` (a session's SDP from wherever it has
  it, merged), :mod:`~decoders.session.jingle` (Jingle/XMPP descriptions as SDP).
- What the app says: :mod:`~decoders.session.signaling` (SDP and mute state in signaling
  messages, and rules for both), :mod:`~decoders.session.rulefiles` with ``rules/`` (the
  built-in rule files for the apps' own mute signals, and a user's),
  :mod:`~decoders.session.janus` (which Janus plugin a message talks to),
  :mod:`~decoders.session.payload` (what a message body holds as data),
  :mod:`~decoders.session.telemetry` (volume telemetry, found generically),
  :mod:`~decoders.session.learn` (an app's mute signal learned from one marked call).
- The live judgement: :mod:`~decoders.session.monitor` (messages and datagrams in; events,
  warnings and block decisions out), :mod:`~decoders.session.mutemark` (marking mute through
  the proxy).
- When the user was muted: :mod:`~decoders.session.timeline` (mute intervals from every
  source, merged, on the capture's clock), :mod:`~decoders.session.times` (which numbers can
  be times).
- The keys: :mod:`~decoders.session.keys` (SRTP keys: where they come from, which stream each
  protects).
"""
