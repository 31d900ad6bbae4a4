"""How the monitor judges: its rules, limits and thresholds, and where it runs."""

from __future__ import annotations

from pathlib import Path

from mitmproxy import ctx
from mitmproxy.addonmanager import Loader
from mitmproxy.utils import human

from decoders.addon.guard import options_error
from decoders.addon.recorder import Recorder
from decoders.errors import MalformedPacket
from decoders.session.monitor import Settings
from decoders.session.rulefiles import builtin_path, rule_set


class Judging:
    """The options that set the monitor (rules, scan limit, grace, silence level, audio level
    id, the observer process), turned into its :class:`~decoders.session.monitor.Settings`
    whenever one of mutecheck's options changes; a value that does not fit is an OptionsError
    naming it."""

    name = "mutecheck.judging"  # mitmproxy's name for it (not the bare class name: no clash)

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "mutecheck_rules",
            str,
            "",
            """
            JSON file of extra mute-state rules, for services whose mute signal the generic
            recognisers miss: URL pattern + JSON path or regex -> muted/unmuted
            (docs/session-format.md, "Rule file"). Empty: only the built-in rules.
            """,
        )
        loader.add_option(
            "mutecheck_builtin_rules",
            bool,
            True,
            f"""
            Recognise the mute controls of the apps mutecheck knows (the Janus demos'
            AudioBridge, EchoTest, VideoCall and VideoRoom) with its built-in rule files, in
            the format of mutecheck_rules: {builtin_path()}
            """,
        )
        loader.add_option(
            "mutecheck_scan_limit",
            str,
            "256k",
            """
            Look at most at this much of each body or WebSocket message (after decompression),
            e.g. 64k or 1m. Larger ones are scanned up to the limit and a 'scan-limit' warning
            says what was not read (see mutecheck_block_unread for block mode).
            """,
        )
        loader.add_option(
            "mutecheck_grace_ms",
            int,
            200,
            """
            Milliseconds after each mute or unmute during which telemetry and audio do not count
            as findings: the browser needs a packet or two to follow a change.
            """,
        )
        loader.add_option(
            "mutecheck_hold_ms",
            int,
            300,
            """
            Milliseconds each RTP packet waits before it is judged (counted, warned about) by
            the mute state at its own time: a mark that reaches the proxy later but says the
            click came earlier (its 'at') decides for the packets sent after the click.
            """,
        )
        loader.add_option(
            "mutecheck_silence_level",
            int,
            100,
            """
            RFC 6464 audio level (-dBov: 0 is loudest, 127 is silence) from which an RTP packet
            counts as silent. A louder packet sent while muted is a finding.
            """,
        )
        loader.add_option(
            "mutecheck_observer",
            bool,
            True,
            """
            Judge the messages that need parsing in a process of its own (the proxy keeps only a
            keyword test and passes on at once); events and warnings are the same. Block mode
            always judges in the proxy, since it must decide before a message leaves.
            """,
        )
        loader.add_option(
            "mutecheck_audio_level_id",
            int,
            0,
            """
            RTP header extension id of the RFC 6464 audio level in the media the proxy carries
            (UDP modes, and TURN over TCP or TLS through CONNECT). 0: learn it from the SDP seen
            in the signaling.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if any(name.startswith("mutecheck_") for name in updated):
            self.recorder.configure(settings())


def settings() -> Settings:
    """The options as monitor settings; OptionsError naming any value that does not fit."""
    options = ctx.options
    try:
        scan_limit = human.parse_size(options.mutecheck_scan_limit)
    except ValueError:
        scan_limit = None
    if scan_limit is None or scan_limit <= 0:
        raise options_error(
            f"mutecheck_scan_limit {options.mutecheck_scan_limit!r} is not a size "
            "such as 64k, 256k or 1m"
        )
    if not 0 <= options.mutecheck_grace_ms <= 60_000:
        raise options_error(f"mutecheck_grace_ms {options.mutecheck_grace_ms!r} is not 0..60000")
    if not 0 <= options.mutecheck_hold_ms <= 60_000:
        raise options_error(f"mutecheck_hold_ms {options.mutecheck_hold_ms!r} is not 0..60000")
    if not 1 <= options.mutecheck_silence_level <= 127:
        raise options_error(
            f"mutecheck_silence_level {options.mutecheck_silence_level!r} is not 1..127"
        )
    if not 0 <= options.mutecheck_audio_level_id <= 255:
        raise options_error(
            f"mutecheck_audio_level_id {options.mutecheck_audio_level_id!r} is not 0..255"
        )
    path = Path(options.mutecheck_rules).expanduser() if options.mutecheck_rules else None
    try:
        rules = rule_set(path, builtin=options.mutecheck_builtin_rules)
    except (OSError, UnicodeDecodeError, MalformedPacket) as error:
        raise options_error(f"mutecheck_rules {options.mutecheck_rules!r}: {error}") from error
    return Settings(
        block=options.mutecheck_block,
        block_action=options.mutecheck_block_action,
        block_unread=options.mutecheck_block_unread,
        scan_limit=scan_limit,
        grace=options.mutecheck_grace_ms / 1000,
        hold=options.mutecheck_hold_ms / 1000,
        silence_level=options.mutecheck_silence_level,
        audio_level_id=options.mutecheck_audio_level_id or None,
        rules=rules,
    )
