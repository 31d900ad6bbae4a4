"""What the browser and the service tell each other: SDP, mute state, and user rules for both.

**SDP anywhere** (:func:`find_sdp`): in JSON (any depth, also inside strings that hold JSON or
base64 of JSON), in form fields, as plain text (``application/sdp``, WHIP), in SIP messages over
WebSocket (RFC 7118: the body after the blank line) and in XMPP Jingle stanzas (converted by
:mod:`decoders.session.jingle`). Whether it is an offer or an answer comes from, in order: a
``type`` field beside it (``{"type": "offer", "sdp": ...}``, the RTCSessionDescription shape), a
key on its path that says ``offer``/``answer``, the Jingle action, SIP (request: offer, response:
answer), and last ``a=setup`` (RFC 5763 §5: only an offer says ``actpass``).

**Mute state the app sends** (:func:`find_mute_signals`): boolean fields named like ``muted``,
``audioMuted``, ``isMuted``, ``micMuted`` (true = muted) or ``mic``, ``microphone``,
``audioEnabled``, ``micOn`` (true or ``"on"`` = unmuted), at any depth, except under a path word
such as ``video``, ``camera``, ``screen`` or ``remote``; Jitsi presence
``<audiomuted>true</audiomuted>`` and its ``<SourceInfo>{"<endpoint>-a0": {"muted": true}}``.

**Rules** (:func:`load_rules`, :func:`match_rules`): a JSON file for services whose mute
signal is not generic, see ``docs/session-format.md``; the built-in ones
(:mod:`decoders.session.rulefiles`) are written in the same format. A rule may ask for
conditions on other fields of the message (``when``), for the Janus plugin the message goes to
(``janus_plugin``, known from :class:`decoders.session.janus.JanusHandles`), and say what kind
of mute its signal is (``scope``: ``server`` when the app tells its server).

Pure functions over parsed documents; nothing here does I/O, reads a clock or logs.
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from decoders.errors import MalformedPacket
from decoders.session.jingle import jingle_to_sdp
from decoders.session.payload import Document, Leaf, Scalar, format_path, walk
from decoders.session.sdp import SessionDescription, audio_level_extension_id

Role = Literal["offer", "answer"]
Direction = Literal["sent", "received", "any"]
Scope = Literal["server", "client"]
"""What kind of mute a rule's signal is: ``server`` (the app tells its server to stop passing
your audio on; the browser may go on sending it), ``client`` (the app mutes in the browser)."""
SCOPES: tuple[Scope, ...] = ("server", "client")

# --- SDP ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FoundSdp:
    """An SDP document found in a message: where, and what it is (offer, answer, unknown)."""

    text: str
    role: Role | None
    role_from: str | None
    found_in: str
    converted_from: str | None = None


_SDP_START = re.compile(r"(?:^|(?<=[\r\n]))v=0[ \t]*\r?\n", re.MULTILINE)
_SDP_LINE = re.compile(r"[a-zA-Z]=[^\r\n]*(?:\r\n|\n|\r|$)")
_SIP_REQUEST = re.compile(r"[A-Z]{3,10} (?:sips?|tel):\S+ SIP/2\.0\r?\n")
_SIP_RESPONSE = re.compile(r"SIP/2\.0 \d{3}[^\r\n]*\r?\n")
_SETUP = re.compile(r"^a=setup:(\w+)", re.MULTILINE)
_SDP_OR_MARKUP = frozenset("v<IS \r\n\t")
"""First characters of a string worth a closer look: SDP, XML, SIP (or leading space)."""


def looks_like_sdp(text: str) -> bool:
    """Does this string start with an SDP ``v=0`` line (RFC 8866 §5.1) and go on?"""
    head = text[:4] if text[:1] == "v" else text.lstrip()[:4]
    return head in ("v=0\r", "v=0\n")


def find_sdp(document: Document, leaves: Sequence[Leaf] | None = None) -> list[FoundSdp]:
    """Every SDP document in a message, in order (see the module docstring).

    ``leaves`` may pass ``list(walk(document))`` when several recognisers read one document.
    """
    found: list[FoundSdp] = []
    if document.records:
        several = len(document.records) > 1
        prefix = "form" if document.syntax == "form" else "json"
        for leaf in walk(document) if leaves is None else leaves:
            value = leaf.value
            if not isinstance(value, str) or value[:1] not in _SDP_OR_MARKUP:
                continue
            where = f"{prefix}:{format_path(leaf.path, record=leaf.record if several else None)}"
            if looks_like_sdp(value):
                role, role_from = _role_from_json(leaf)
                for block in extract_sdp_blocks(value):
                    found.append(_with_setup_role(FoundSdp(block, role, role_from, where)))
            elif value[:1] == "<" or value[:9] in ("INVITE si", "SIP/2.0 2"):
                found.extend(_from_text(value, where))
    elif document.text:
        found.extend(_from_text(document.text, "text"))
    return found


def _from_text(text: str, where: str) -> list[FoundSdp]:
    """SDP in XML (Jingle), SIP, or plain text."""
    if "urn:xmpp:jingle" in text:
        jingle = jingle_to_sdp(text)
        if jingle:
            location = "jingle" if where == "text" else f"{where}:jingle"
            return [
                FoundSdp(item.sdp, item.role, "jingle action", location, converted_from="jingle")
                for item in jingle
            ]
    sip_role: Role | None = None
    body = text
    if _SIP_REQUEST.match(text) or _SIP_RESPONSE.match(text):
        sip_role = "answer" if text.startswith("SIP/2.0") else "offer"
        _, separator, body = text.partition("\r\n\r\n")
        if not separator:
            _, separator, body = text.partition("\n\n")
        where = "sip" if where == "text" else f"{where}:sip"
    found: list[FoundSdp] = []
    for block in extract_sdp_blocks(body):
        role_from = "sip" if sip_role else None
        found.append(_with_setup_role(FoundSdp(block, sip_role, role_from, where)))
    return found


def extract_sdp_blocks(text: str) -> list[str]:
    """Each run of ``<letter>=<value>`` lines that starts with ``v=0`` (and has an ``m=``)."""
    blocks: list[str] = []
    position = 0
    while (start := _SDP_START.search(text, position)) is not None:
        end = start.start()
        while (line := _SDP_LINE.match(text, end)) is not None and line.end() > end:
            end = line.end()
        block = text[start.start() : end]
        if "\nm=" in block or "\rm=" in block:
            blocks.append(block)
        position = max(end, start.end())
    return blocks


def _role_from_json(leaf: Leaf) -> tuple[Role | None, str | None]:
    """The RTCSessionDescription ``type`` beside the SDP, else a key on its path."""
    if leaf.parent is not None:
        kind = leaf.parent.get("type")
        if isinstance(kind, str) and kind.lower() in ("offer", "answer", "pranswer"):
            return ("offer" if kind.lower() == "offer" else "answer"), "type field"
    for segment in reversed(leaf.path):
        if isinstance(segment, str):
            lowered = segment.lower()
            if "offer" in lowered:
                return "offer", "key name"
            if "answer" in lowered:
                return "answer", "key name"
    return None, None


def _with_setup_role(found: FoundSdp) -> FoundSdp:
    """RFC 5763 §5: the offerer says ``a=setup:actpass``; the answerer active or passive."""
    if found.role is not None:
        return found
    setups = set(_SETUP.findall(found.text))
    if "actpass" in setups:
        return FoundSdp(found.text, "offer", "a=setup", found.found_in, found.converted_from)
    if setups & {"active", "passive"}:
        return FoundSdp(found.text, "answer", "a=setup", found.found_in, found.converted_from)
    return found


def describe_sdp(sdp: SessionDescription) -> dict[str, Any]:
    """What an events.jsonl ``sdp`` event keeps of a parsed SDP (docs/session-format.md)."""
    return {
        "audio_level_extension_id": audio_level_extension_id(sdp),
        "bundle": list(sdp.bundle),
        "media": [
            {
                "kind": section.kind,
                "mid": section.mid,
                "port": section.port,
                "protocol": section.protocol,
                "direction": section.direction,
                "extmaps": [[number, uri] for number, uri in section.extmaps],
                "extmap_allow_mixed": section.extmap_allow_mixed,
                "cryptex": section.cryptex,
                "codecs": [
                    {
                        "payload_type": codec.payload_type,
                        "name": codec.name,
                        "clock_rate": codec.clock_rate,
                        "channels": codec.channels,
                        "fmtp": codec.fmtp,
                    }
                    for codec in section.codecs
                ],
                "ssrcs": list(section.ssrcs),
                "crypto": [
                    {"tag": crypto.tag, "suite": crypto.suite, "has_key": crypto.key is not None}
                    for crypto in section.crypto
                ],
                "setup": section.setup,
                "fingerprints": [[name, value] for name, value in section.fingerprints],
                "candidates": [
                    f"{c.transport} {c.address} {c.port} {c.type}" for c in section.candidates
                ],
            }
            for section in sdp.media
        ],
    }


# --- mute state the app sends ------------------------------------------------------------------

MUTED_NAMES = frozenset(
    {
        "muted",
        "ismuted",
        "mute",
        "audiomuted",
        "isaudiomuted",
        "audiomute",
        "muteaudio",
        "mutedaudio",
        "localaudiomuted",
        "micmuted",
        "ismicmuted",
        "mutemic",
        "microphonemuted",
        "ismicrophonemuted",
        "mutemicrophone",
        "selfmute",
        "selfmuted",
        "inputmuted",
    }
)
"""Compact names (lowercase letters and digits) whose true means the microphone is muted."""

ON_NAMES = frozenset(
    {
        "mic",
        "microphone",
        "micon",
        "micenabled",
        "ismicenabled",
        "microphoneon",
        "microphoneenabled",
        "audioenabled",
        "isaudioenabled",
        "audioon",
        "unmuted",
        "isunmuted",
        "micactive",
        "sendaudio",
    }
)
"""Compact names whose true (or ``"on"``) means the microphone is on."""

ON_PARENTS = frozenset({"audio", "mic", "microphone"})
ON_CHILDREN = frozenset({"enabled", "on", "active"})
"""``audio.enabled``, ``mic.on``: a parent and child name that together mean "mic on"."""

NOT_THE_MIC = frozenset(
    {"video", "camera", "cam", "screen", "screenshare", "share", "remote", "desktop", "speaker"}
)
"""A path word that says the field is about something else than the user's microphone."""

_TRUE_WORDS = {"true": True, "on": True, "enabled": True, "unmuted": True, "yes": True}
_FALSE_WORDS = {"false": False, "off": False, "disabled": False, "muted": False, "no": False}

_AUDIOMUTED = re.compile(r"<audiomuted\b[^>]*>\s*(true|false)\s*</audiomuted>", re.IGNORECASE)
_SOURCE_INFO = re.compile(r"<SourceInfo\b[^>]*>(.*?)</SourceInfo>", re.IGNORECASE | re.DOTALL)
_AUDIO_SOURCE = re.compile(r"-a\d+$")
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


@dataclass(frozen=True, slots=True)
class MuteSignal:
    """The app said the microphone is muted (True) or not; ``evidence`` says where."""

    muted: bool
    evidence: dict[str, Any]


def find_mute_signals(document: Document, leaves: Sequence[Leaf] | None = None) -> list[MuteSignal]:
    """Mute-state fields in a message the browser sent (see the module docstring)."""
    signals: list[MuteSignal] = []
    if document.records:
        several = len(document.records) > 1
        for leaf in walk(document) if leaves is None else leaves:
            state = _leaf_state(leaf)
            if state is not None:
                path = format_path(leaf.path, record=leaf.record if several else None)
                signals.append(MuteSignal(state, {"path": path, "value": leaf.value}))
            elif isinstance(leaf.value, str) and "<" in leaf.value:
                signals.extend(_xml_signals(leaf.value))
    elif "<" in document.text:
        signals.extend(_xml_signals(document.text))
    return signals


@functools.lru_cache(maxsize=4096)
def _compact(name: str) -> str:
    return "".join(word.lower() for word in _WORD.findall(name))


@functools.lru_cache(maxsize=4096)
def _not_the_mic(name: str) -> bool:
    return any(word.lower() in NOT_THE_MIC for word in _WORD.findall(name))


_STATE_NAMES = MUTED_NAMES | ON_NAMES | ON_CHILDREN


def _leaf_state(leaf: Leaf) -> bool | None:
    if leaf.key is None or not leaf.path or not isinstance(leaf.path[-1], str):
        return None  # the value of a field, not an element of a list
    if not isinstance(leaf.value, bool | str):
        return None
    key = _compact(leaf.key)
    if key not in _STATE_NAMES:
        return None
    names = [segment for segment in leaf.path if isinstance(segment, str)]
    if any(_not_the_mic(name) for name in names):
        return None
    if key in MUTED_NAMES:
        return _truth(leaf.value, strict=True)
    parent = _compact(names[-2]) if len(names) >= 2 else ""
    if key in ON_NAMES or (key in ON_CHILDREN and parent in ON_PARENTS):
        on = _truth(leaf.value, strict=False)
        return None if on is None else not on
    return None


def _truth(value: Scalar, *, strict: bool) -> bool | None:
    """A boolean, ``"true"``/``"false"``; without ``strict`` also on/off, enabled/disabled."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if not strict:
            if lowered in _TRUE_WORDS:
                return True
            if lowered in _FALSE_WORDS:
                return False
    return None


def _xml_signals(text: str) -> list[MuteSignal]:
    """Jitsi presence: ``<audiomuted>`` and the audio sources of ``<SourceInfo>``."""
    signals = [
        MuteSignal(match.group(1).lower() == "true", {"xml": match.group(0)[:200]})
        for match in _AUDIOMUTED.finditer(text)
    ]
    for match in _SOURCE_INFO.finditer(text):
        try:
            sources = json.loads(html.unescape(match.group(1)))
        except (ValueError, RecursionError):
            continue
        if not isinstance(sources, dict):
            continue
        for name, info in sources.items():
            if _AUDIO_SOURCE.search(name) and isinstance(info, dict):
                muted = info.get("muted")
                if isinstance(muted, bool):
                    signals.append(MuteSignal(muted, {"xml": "SourceInfo", "source": name}))
    return signals


# --- user rules --------------------------------------------------------------------------------

RULES_VERSION = 1
MEDIA_KINDS = ("audio", "video")


@dataclass(frozen=True, slots=True)
class Condition:
    """``when``: some value at a path of the same message equals one of ``values``."""

    path: re.Pattern[str]
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class MuteRule:
    """One rule: which messages it reads and how their content maps to a mute state."""

    name: str
    url: re.Pattern[str]
    direction: Direction
    json_path: re.Pattern[str] | None
    regex: re.Pattern[str] | None
    state: bool | None
    muted_values: tuple[Scalar, ...]
    unmuted_values: tuple[Scalar, ...]
    when: tuple[Condition, ...] = ()
    janus_plugin: str | None = None
    scope: Scope | None = None
    needle: bytes | None = None
    """A word every message this rule can match holds (its field name, lowercased): the
    cheap test that lets other messages skip parsing. None: no such word."""
    media_kind: str | None = None
    """``audio`` / ``video``: the value counts only when the object holding it names a ``mid``
    that the browser's SDP for that connection gave to a section of this kind (Janus 1.x
    ``streams: [{"mid": "0", "send": false}]``)."""


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that matched a message and the state it gives."""

    rule: str
    muted: bool
    value: Scalar
    path: str | None
    scope: Scope | None = None
    mid: str | None = None
    """The ``mid`` beside the value, for a rule with ``media_kind``."""

    def evidence(self) -> dict[str, Any]:
        """The ``evidence`` of the ``mute`` event (docs/session-format.md)."""
        out: dict[str, Any] = {"rule": self.rule, "value": self.value, "path": self.path}
        if self.scope is not None:
            out["scope"] = self.scope
        if self.mid is not None:
            out["mid"] = self.mid
        return out


def load_rules(text: str) -> tuple[MuteRule, ...]:
    """Parse a rule file; raises MalformedPacket naming the rule and field that do not fit.

    ``{"version": 1, "rules": [{"name", "url", "direction", "json_path" | "regex",
    "state" | "muted"/"unmuted"}, ...]}``; see docs/session-format.md for each field.
    """
    try:
        document = json.loads(text)
    except ValueError as error:
        raise MalformedPacket(f"rules file is not JSON: {error}") from error
    except RecursionError:
        raise MalformedPacket("rules file is JSON nested too deep to read") from None
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise MalformedPacket('rules file must be an object with a "rules" list')
    if document.get("version", RULES_VERSION) != RULES_VERSION:
        raise MalformedPacket(f"rules file version {document.get('version')!r} is not 1")
    return tuple(_rule(number, item) for number, item in enumerate(document["rules"], start=1))


_RULE_FIELDS = {
    "name",
    "url",
    "direction",
    "json_path",
    "regex",
    "state",
    "muted",
    "unmuted",
    "when",
    "janus_plugin",
    "scope",
    "media_kind",
    "note",
}


def _rule(number: int, item: object) -> MuteRule:
    if not isinstance(item, dict):
        raise MalformedPacket(f"rule {number} is not an object")
    name = str(item.get("name") or f"rule {number}")
    where = f"rule {number} ({name!r})"
    unknown = set(item) - _RULE_FIELDS
    if unknown:
        raise MalformedPacket(f"{where}: unknown field {sorted(unknown)[0]!r}")
    url = _pattern(where, "url", item.get("url", ""))
    direction = item.get("direction", "sent")
    if direction not in ("sent", "received", "any"):
        raise MalformedPacket(f"{where}: direction {direction!r} is not sent, received or any")
    json_path_text = item.get("json_path")
    regex_text = item.get("regex")
    if json_path_text is not None and regex_text is not None:
        raise MalformedPacket(f"{where}: give json_path or regex, not both")
    json_path = None
    if json_path_text is not None:
        if not isinstance(json_path_text, str) or not json_path_text:
            raise MalformedPacket(f"{where}: json_path {json_path_text!r} is not a path")
        json_path = path_glob(json_path_text)
    regex = None if regex_text is None else _pattern(where, "regex", regex_text)
    state_text = item.get("state")
    muted_values = _values(where, "muted", item.get("muted", []))
    unmuted_values = _values(where, "unmuted", item.get("unmuted", []))
    state: bool | None = None
    if state_text is not None:
        if state_text not in ("muted", "unmuted"):
            raise MalformedPacket(f"{where}: state {state_text!r} is not muted or unmuted")
        if muted_values or unmuted_values:
            raise MalformedPacket(f"{where}: give state or muted/unmuted values, not both")
        state = state_text == "muted"
    elif not (muted_values or unmuted_values):
        raise MalformedPacket(f"{where}: needs state, or muted/unmuted values to compare")
    elif json_path is None and regex is None:
        raise MalformedPacket(f"{where}: muted/unmuted values need a json_path or regex")
    plugin = item.get("janus_plugin")
    if plugin is not None and (not isinstance(plugin, str) or not plugin):
        raise MalformedPacket(f"{where}: janus_plugin {plugin!r} is not a plugin name")
    scope = item.get("scope")
    if scope is not None and scope not in SCOPES:
        raise MalformedPacket(f"{where}: scope {scope!r} is not server or client")
    note = item.get("note")
    if note is not None and not isinstance(note, str):
        raise MalformedPacket(f"{where}: note {note!r} is not a string")
    media_kind = item.get("media_kind")
    if media_kind is not None:
        if media_kind not in MEDIA_KINDS:
            raise MalformedPacket(f"{where}: media_kind {media_kind!r} is not audio or video")
        if json_path is None:
            raise MalformedPacket(f"{where}: media_kind needs a json_path (its object's mid)")
    return MuteRule(
        name,
        url,
        direction,
        json_path,
        regex,
        state,
        muted_values,
        unmuted_values,
        when=_conditions(where, item.get("when")),
        janus_plugin=plugin,
        scope=scope,
        needle=_needle(json_path_text) if regex is None else None,
        media_kind=media_kind,
    )


def _conditions(where: str, value: object) -> tuple[Condition, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not value:
        raise MalformedPacket(f"{where}: when {value!r} is not an object of path: value(s)")
    out = []
    for path, wanted in value.items():
        if not path:
            raise MalformedPacket(f"{where}: when has an empty path")
        values = _values(where, f"when {path!r}", wanted)
        if not values:
            raise MalformedPacket(f"{where}: when {path!r} has no value to compare")
        out.append(Condition(path_glob(path), values))
    return tuple(out)


_NAME_WORD = re.compile(r"[A-Za-z0-9_]{3,}")


def _needle(json_path: object) -> bytes | None:
    """The last field name of a JSON path, lowercased: it is in every message the path can
    match (unless escaped as ``\\uXXXX``, which no app does to a key)."""
    if not isinstance(json_path, str) or "(base64)" in json_path:
        return None
    words = _NAME_WORD.findall(json_path.rsplit(".", 1)[-1])
    return words[-1].lower().encode() if words else None


def _pattern(where: str, field: str, value: object) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise MalformedPacket(f"{where}: {field} {value!r} is not a string")
    try:
        return re.compile(value)
    except re.error as error:
        message = f"{where}: {field} {value!r} is not a regular expression: {error}"
        raise MalformedPacket(message) from error


def _values(where: str, field: str, value: object) -> tuple[Scalar, ...]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str | int | float | bool) and item is not None:
            raise MalformedPacket(f"{where}: {field} value {item!r} is not a JSON scalar")
        if isinstance(item, float) and not math.isfinite(item):
            # NaN equals nothing and the addon writes non-finite numbers as null: never matches
            raise MalformedPacket(f"{where}: {field} value {item!r} is not a finite number")
    return tuple(items)


def path_glob(text: str) -> re.Pattern[str]:
    """A path pattern (``state.audio.muted``, ``*.muted``, ``items[*].mic``) as a regex over
    :func:`~decoders.session.payload.format_path` output; ``*`` matches anything, dots too."""
    text = text.removeprefix("$.").removeprefix("$")
    return re.compile(".*".join(re.escape(part) for part in text.split("*")))


def rules_for(rules: Iterable[MuteRule], url: str, sent: bool) -> list[MuteRule]:
    """The rules whose URL pattern and direction fit a message."""
    side = "sent" if sent else "received"
    return [
        rule
        for rule in rules
        if rule.direction in ("any", side) and rule.url.search(url) is not None
    ]


def may_match(rule: MuteRule, lowered: bytes) -> bool:
    """Could the rule match a body (given lowercased)? False only when its word is missing."""
    return rule.needle is None or rule.needle in lowered


def match_rules(
    rules: Iterable[MuteRule],
    document: Document,
    *,
    plugin: str | None = None,
    kinds: Mapping[str, str] | None = None,
) -> list[RuleHit]:
    """The states the given rules (already chosen by :func:`rules_for`) read from a message;
    ``plugin`` is the Janus plugin the message is for, when known
    (:class:`decoders.session.janus.JanusHandles`); ``kinds`` maps each ``mid`` of the
    connection the message is about to its media kind, when known (rules with ``media_kind``
    read nothing without it)."""
    hits: list[RuleHit] = []
    for rule in rules:
        if rule.janus_plugin is not None and rule.janus_plugin != plugin:
            continue
        if rule.media_kind is not None and not kinds:
            continue
        if rule.when and not all(_holds(condition, document) for condition in rule.when):
            continue
        hit = _match(rule, document, kinds)
        if hit is not None:
            hits.append(hit)
    return hits


def _holds(condition: Condition, document: Document) -> bool:
    return any(
        condition.path.fullmatch(format_path(leaf.path))
        and any(_same(leaf.value, wanted) for wanted in condition.values)
        for leaf in walk(document)
    )


def _match(
    rule: MuteRule, document: Document, kinds: Mapping[str, str] | None = None
) -> RuleHit | None:
    if rule.json_path is not None:
        for leaf in walk(document):
            path = format_path(leaf.path)
            if rule.json_path.fullmatch(path):
                mid = None
                if rule.media_kind is not None:
                    mid = _mid_of(leaf)
                    if mid is None or kinds is None or kinds.get(mid) != rule.media_kind:
                        continue  # another kind's stream, or one no SDP named
                state = _rule_state(rule, leaf.value)
                if state is not None:
                    return RuleHit(rule.name, state, leaf.value, path, rule.scope, mid)
        return None
    if rule.regex is not None:
        match = rule.regex.search(document.text)
        if match is None:
            return None
        value = match.group(1) if rule.regex.groups else match.group(0)
        state = _rule_state(rule, value)
        return None if state is None else RuleHit(rule.name, state, value, None, rule.scope)
    if rule.state is None:
        return None
    return RuleHit(rule.name, rule.state, None, None, rule.scope)


def _mid_of(leaf: Leaf) -> str | None:
    """The ``mid`` of the object holding a value (a string, or a whole number as text)."""
    mid = None if leaf.parent is None else leaf.parent.get("mid")
    if isinstance(mid, bool):
        return None
    if isinstance(mid, int):
        return str(mid)
    return mid if isinstance(mid, str) else None


def _rule_state(rule: MuteRule, value: Scalar) -> bool | None:
    if rule.state is not None:
        return rule.state
    if any(_same(value, candidate) for candidate in rule.muted_values):
        return True
    if any(_same(value, candidate) for candidate in rule.unmuted_values):
        return False
    return None


def _same(value: Scalar, candidate: Scalar) -> bool:
    """JSON equality, strings without regard to case; a regex group compares as text."""
    if isinstance(value, str) and not isinstance(candidate, str):
        return value.strip().lower() == json.dumps(candidate)
    if isinstance(value, bool) or isinstance(candidate, bool):
        return isinstance(value, bool) and isinstance(candidate, bool) and value == candidate
    if isinstance(value, str) and isinstance(candidate, str):
        return value.strip().lower() == candidate.strip().lower()
    return value == candidate
