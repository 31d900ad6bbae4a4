"""The SDP of a session, from wherever the session has it, merged into one description.

A session can hold its SDP in four places (docs/session-format.md): files named with ``--sdp``,
the folder's ``offer.sdp``/``answer.sdp``, the addon's ``sdp`` events in ``events.jsonl`` (both
directions: what the browser sent and what it received, JSON ``jsep`` of Janus and the like
included: the addon finds SDP at any depth of a message) and ``flows.mitm`` replayed through the
addon's recognisers. :func:`session_sdp` reads them in that order:

- ``--sdp`` files are the user's word: when given, they are the only source;
- otherwise the folder's files and the ``sdp`` events are taken together, and the flows are
  replayed only when neither had any SDP (replaying needs mitmproxy and reads every flow).

Every distinct document (same text after line ends are normalised = same document) adds all its
m= sections to one :class:`~decoders.session.sdp.SessionDescription`
(:func:`~decoders.session.sdp.merge_descriptions`), so that payload types, extmaps, SSRCs and
ssrc-groups announced by either side are known. ``source`` names where they came from, for the
stream table and the report: ``"offer.sdp + answer.sdp"``, ``"events.jsonl (2 sdp events)"``,
``"--sdp"``, ``"flows.mitm (2 sdp messages)"`` or ``"none: inferred from behaviour"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from decoders.errors import MalformedPacket
from decoders.session.events import Event

if (
    TYPE_CHECKING
):  # the SDP parser (aiortc's) is imported when an SDP is there: start-up stays short
    from decoders.session.sdp import SessionDescription

NO_SDP: Final = "none: inferred from behaviour"


@dataclass(frozen=True, slots=True)
class SdpDocument:
    """One SDP document of the session and where it was found."""

    description: SessionDescription
    found_in: str
    """``--sdp <path>``, ``offer.sdp``, ``events.jsonl event <n>`` or ``flows.mitm``."""
    direction: str | None
    """``sent``/``received`` for the addon's events, None for files."""
    role: str | None
    """``offer``/``answer`` when the event or the file name says so."""

    def to_json(self) -> dict[str, Any]:
        return {
            "found_in": self.found_in,
            "direction": self.direction,
            "role": self.role,
            "media": [section.kind for section in self.description.media],
        }


@dataclass(frozen=True, slots=True)
class SessionSdp:
    """Every SDP of a session merged (``description``, None without any) and its ``source``."""

    description: SessionDescription | None
    source: str
    documents: tuple[SdpDocument, ...] = ()
    skipped: tuple[str, ...] = ()
    """SDP found in events or flows that did not parse: where, and why."""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "documents": [document.to_json() for document in self.documents],
            "skipped": list(self.skipped),
        }


def session_sdp(
    *,
    given: Sequence[Path] = (),
    files: Sequence[Path] = (),
    events: Iterable[Event] = (),
    flow_events: Callable[[], Iterable[Event]] | None = None,
    events_name: str = "events.jsonl",
    flows_name: str = "flows.mitm",
) -> SessionSdp:
    """Gather the session's SDP (see the module docstring).

    ``given`` are ``--sdp`` files, ``files`` the folder's ``offer.sdp``/``answer.sdp``,
    ``events`` the addon's events, ``flow_events`` replays ``flows.mitm`` into events when
    called. A file that is not SDP raises :class:`MalformedPacket` naming the file (a user
    error); an event's SDP that does not parse is skipped and listed in ``skipped``.
    """
    if given:
        documents = [_file_document(path, f"--sdp {path}") for path in given]
        return _merged([("--sdp", documents)], ())
    parts: list[tuple[str, list[SdpDocument]]] = []
    skipped: list[str] = []
    if files:
        documents = [_file_document(path, path.name) for path in files]
        parts.append((" + ".join(path.name for path in files), documents))
    from_events = _event_documents(events, events_name, skipped)
    if from_events:
        parts.append((f"{events_name} ({_count(len(from_events), 'sdp event')})", from_events))
    if not parts and flow_events is not None:
        from_flows = _event_documents(flow_events(), flows_name, skipped, numbered=False)
        if from_flows:
            parts.append((f"{flows_name} ({_count(len(from_flows), 'sdp message')})", from_flows))
    return _merged(parts, tuple(skipped))


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _file_document(path: Path, found_in: str) -> SdpDocument:
    from decoders.session.sdp import parse_sdp

    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        description = parse_sdp(text)
    except MalformedPacket as error:
        raise MalformedPacket(f"{path}: {error}") from None
    stem = path.stem.lower()
    role = "offer" if "offer" in stem else "answer" if "answer" in stem else None
    return SdpDocument(description, found_in, None, role)


def _event_documents(
    events: Iterable[Event], name: str, skipped: list[str], *, numbered: bool = True
) -> list[SdpDocument]:
    """The ``sdp`` events' documents, both directions, in order."""
    documents: list[SdpDocument] = []
    for number, event in enumerate(events, start=1):
        text = event.get("sdp")
        if event.get("kind") != "sdp" or not isinstance(text, str):
            continue
        where = f"{name} event {number}" if numbered else name
        from decoders.session.sdp import parse_sdp

        try:
            description = parse_sdp(text)
        except MalformedPacket as error:
            skipped.append(f"{where}: {error}")
            continue
        direction, role = event.get("direction"), event.get("role")
        documents.append(
            SdpDocument(
                description,
                where,
                direction if isinstance(direction, str) else None,
                role if isinstance(role, str) else None,
            )
        )
    return documents


def _merged(parts: list[tuple[str, list[SdpDocument]]], skipped: tuple[str, ...]) -> SessionSdp:
    """Drop repeated documents (the same SDP in a file and in an event), name what is left."""
    seen: set[tuple[Any, ...]] = set()
    kept: list[SdpDocument] = []
    names: list[str] = []
    for name, documents in parts:
        fresh = []
        for document in documents:
            key = (document.description.origin, document.description.media)
            if key not in seen:
                seen.add(key)
                fresh.append(document)
        if fresh:
            names.append(name)
            kept += fresh
    with_media = [document for document in kept if document.description.media]
    if not with_media:
        return SessionSdp(None, NO_SDP, tuple(kept), skipped)
    from decoders.session.sdp import merge_descriptions

    description = merge_descriptions(document.description for document in with_media)
    if description is None:
        return SessionSdp(None, NO_SDP, tuple(kept), skipped)
    return SessionSdp(description, " + ".join(names), tuple(kept), skipped)


CRYPTEX_LINE: Final = "a=cryptex"
"""RFC 9335 §5.1: the SDP attribute that, in both the offer and the answer, encrypts the RTP
header extensions (the audio level among them)."""


@dataclass(frozen=True, slots=True)
class Cryptex:
    """Whether the session negotiated cryptex (RFC 9335): ``a=cryptex`` (session level, or in
    every ``m=audio`` section) in both the offer and the answer. ``negotiated`` is None when
    the SDP does not tell (none, or one side only)."""

    negotiated: bool | None
    evidence: str

    def to_json(self) -> dict[str, Any]:
        return {"negotiated": self.negotiated, "evidence": self.evidence, "line": CRYPTEX_LINE}


def cryptex(sdp: SessionSdp) -> Cryptex:
    """Read cryptex from the session's SDP documents: the last offer and the last answer (by
    their role; without roles, the last two documents with audio)."""
    audio = [d for d in sdp.documents if d.description.audio]
    if not audio:
        return Cryptex(None, "no SDP with audio: whether cryptex was negotiated is unknown")

    def has(document: SdpDocument) -> bool:
        return all(section.cryptex for section in document.description.audio)

    offers = [d for d in audio if d.role == "offer"]
    answers = [d for d in audio if d.role == "answer"]
    pair = [offers[-1], answers[-1]] if offers and answers else audio[-2:]
    said = [d for d in pair if has(d)]
    if len(pair) == 2 and len(said) == 2:
        where = " and ".join(d.found_in for d in pair)
        return Cryptex(True, f"{CRYPTEX_LINE} in both the offer and the answer ({where})")
    if said != pair:
        lacking = ", ".join(d.found_in for d in pair if d not in said)
        return Cryptex(False, f"no {CRYPTEX_LINE} in {lacking}")
    return Cryptex(
        None, f"{CRYPTEX_LINE} in {pair[0].found_in}, but the other side's SDP was not seen"
    )
