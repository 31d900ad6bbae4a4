"""The committed lab corpus (captures/): a session a test needs must be there, never skipped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from decoders.lab.record import PAGE_VARIANTS, VARIANTS
from decoders.session.sdp import SsrcRole, merge_descriptions, parse_sdp, ssrc_roles

CAPTURES = Path(__file__).resolve().parent.parent.parent / "captures"


def base_sessions() -> list[Path]:
    """The corpus's direct, audio-only, one-way calls: ``captures/chromium-<variant>/`` for
    each mute variant, in name order.

    The corpus also holds other call shapes (relayed through TURN, the peer talking back,
    video: ``chromium-<variant>-relay-<transport>`` and so on); tests/lab/test_corpus.py checks
    those, and a stage's tests take them up where that stage reads them.
    """
    return sorted(CAPTURES / f"chromium-{variant}" for variant in VARIANTS)


def call_sessions(*, tls: bool = True) -> list[Path]:
    """Every recorded session of the corpus (the base ones and the other call shapes), in name
    order; ``tls=False`` leaves out the calls relayed over TURN/TLS, whose media only sizes and
    timing can judge."""
    folders = sorted(p for p in CAPTURES.glob("chromium-*") if p.is_dir())
    return [p for p in folders if tls or not p.name.endswith("-relay-tls")]


def mute_variant(folder: Path) -> str:
    """How the page of ``captures/<browser>-<variant>[-<call shape>]`` muted: its variant
    (browser ``chromium`` or ``firefox``)."""
    name = folder.name.removeprefix("chromium-").removeprefix("firefox-")
    return max((v for v in PAGE_VARIANTS if name == v or name.startswith(v + "-")), key=len)


def lab_session(variant: str, needs: str = "capture.pcapng") -> Path:
    """The folder of ``captures/chromium-<variant>/``; fails the test if ``needs`` is missing.

    The corpus is committed (rebuild it with ``mutecheck lab record-all --out captures
    --replace``), so a missing file is a broken checkout, not a reason to skip.
    """
    folder = CAPTURES / f"chromium-{variant}"
    if not (folder / needs).is_file():
        pytest.fail(f"{folder / needs} is missing from the committed lab corpus")
    return folder


def lab_file(name: str) -> Path:
    """A file at the top of captures/ (e.g. the shared reference.wav); fails if missing."""
    path = CAPTURES / name
    if not path.is_file():
        pytest.fail(f"{path} is missing from the committed lab corpus")
    return path


@dataclass(frozen=True, slots=True)
class CallShape:
    """How a recorded call travelled, from its ``session.json`` (written by the lab)."""

    relay: str
    """``none`` (direct UDP), or the TURN transport of the browser's leg: ``udp``, ``tcp``,
    ``tls`` (through coturn)."""
    peer_talks: bool
    """The peer sent its own speech back: audio both ways."""
    video: bool
    """The browser sent its camera too (VP8 + RTX beside the audio)."""
    browser: str
    """The browser's address (with a TCP/TLS relay: the proxy's, on the same host)."""

    @property
    def rtp_readable(self) -> bool:
        """Whether the capture shows RTP headers: not when TURN runs over TLS (the media is
        inside TLS records: only their sizes and timing can be seen)."""
        return self.relay != "tls"


def call_shape(folder: Path) -> CallShape:
    """The call shape of a lab session folder (base sessions: direct UDP, one way, audio)."""
    session = json.loads((folder / "session.json").read_text())
    scenario = session["scenario"]
    return CallShape(
        relay=(session.get("relay") or {}).get("transport", "none"),
        peer_talks=bool(scenario.get("peer_talks", False)),
        video=bool(scenario.get("video", False)),
        browser=session["network"]["browser"]["address"],
    )


def browser_audio_ssrcs(folder: Path) -> frozenset[int]:
    """The SSRCs of the browser's audio: the audio section of its offer (the lab's browser is
    the offerer)."""
    offer = parse_sdp((folder / "offer.sdp").read_text())
    return frozenset(s for m in offer.media if m.kind == "audio" for s in m.ssrcs)


def ssrc_roles_of(folder: Path) -> dict[int, SsrcRole]:
    """What each SSRC of the session's offer and answer is (audio, video, RTX...)."""
    described = merge_descriptions(
        parse_sdp((folder / name).read_text()) for name in ("offer.sdp", "answer.sdp")
    )
    assert described is not None
    return ssrc_roles(described)


JANUS_SENDS_MUTE = (
    "janus-audiobridge",
    "janus-echotest",
    "janus-echotest-ws",
    "janus-videocall",
    "janus-videoroom-streams",
)
"""The recorded Janus demos whose mute button tells Janus (a server-side mute)."""
JANUS_TRACK_MUTE = ("janus-videoroom", "janus-videoroom-dtx")
"""The recorded Janus demos whose mute is ``track.enabled = false`` (nothing sent to Janus)."""


def janus_session(name: str, needs: str = "flows.mitm") -> Path:
    """The folder of ``captures/<name>/`` (``janus-<demo>[-dtx][-ws]``); fails the test if
    ``needs`` is missing (the recorded Janus sessions are committed like the rest)."""
    folder = CAPTURES / name
    if not (folder / needs).is_file():
        pytest.fail(f"{folder / needs} is missing from the committed lab corpus")
    return folder


JANUS_DEMOS = (
    "audiobridge",
    "echotest",
    "echotest-ws",
    "videocall",
    "videoroom",
    "videoroom-dtx",
    "videoroom-streams",
)
"""The recorded Janus demo sessions, ``captures/janus-<demo>/`` (the lab's ``--app``)."""


def janus_recording(demo: str, needs: str = "flows.mitm") -> Path:
    """The folder of ``captures/janus-<demo>/`` (a name of :data:`JANUS_DEMOS`)."""
    return janus_session(f"janus-{demo}", needs)


EXPECTED_VERDICTS = {
    "track-disabled": "no-leak",
    "track-stopped": "no-leak",
    "replace-null": "no-leak",
    "gain-zero": "no-leak",
    "dtx": "no-leak",
    "ui-only": "content-leak",
    "quiet": "content-leak",
    "telemetry-http": "metadata-leak",
    "telemetry-ws": "metadata-leak",
    "telemetry-gains": "metadata-leak",
}
"""How the lab page's mute implementations must be judged, whichever browser recorded them."""
