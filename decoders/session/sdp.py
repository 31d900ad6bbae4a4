"""SDP (RFC 8866): what a call negotiated: codecs, header-extension ids, SSRCs, keys, ICE, DTLS.

The analyser needs, above all, the id the audio-level header extension was given
(:func:`audio_level_extension_id`), the payload types (:func:`payload_types`), the SSRCs, the SDES
keys (``a=crypto``) and the DTLS role and fingerprints.

Session-level attributes are inherited by every media section that does not set its own:
fingerprint (RFC 8122 §5), setup (RFC 4145 §4), ice-ufrag/ice-pwd (RFC 8839 §5.4), extmap and
extmap-allow-mixed (RFC 8285 §5, §6), cryptex (RFC 9335), direction (RFC 8866 §6.7) and ``c=``
(RFC 8866 §5.7). A media section's own extmap replaces a session-level one with the same id. When an
attribute that should appear once appears twice, the first one counts.

Odd but readable SDP parses: unknown attributes (kept raw in ``attributes``), extra tokens, LF-only
line ends, blank lines, static payload types without ``a=rtpmap`` (RFC 3551 table), ``a=fmtp`` for
a payload type that has no ``a=rtpmap``, ``a=setup:holdconn``, ``m=`` ports with a count. A known
attribute whose value cannot be read, or a document that is not SDP at all, raises
``MalformedPacket("SDP <field> ...")``.

Why this is our own line walk and not ``aiortc.sdp.SessionDescription.parse`` (checked against
aiortc 1.16, see ``tests/session/test_sdp.py``): aiortc keeps codecs, extmaps, candidates, ICE
credentials, mid, direction, rtcp-mux and SSRCs, and our parser agrees with it on those for every
fixture it accepts (that test is the cross-check). But it drops ``a=crypto``,
``a=extmap-allow-mixed``, ``a=cryptex``, session-level extmap and direction, static payload types
that have no rtpmap, and unknown attributes; it merges session- and media-level fingerprints where
RFC 8122 says the media level replaces; and it rejects whole SDPs that real peers send (RFC 6464's
own ``a=extmap:1/sendrecv ... vad=on`` example, ``a=setup:holdconn``, ``a=fmtp`` without rtpmap,
``m=`` port counts), raising assorted ``ValueError``/``KeyError``/``AssertionError``/
``StopIteration``. A fallback for those would have to parse every field anyway, so calling aiortc
first would only add a second code path (and a 0.5 s import of aiortc, av and friends) that gives
the same answer where it works.
"""

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from decoders.errors import MalformedPacket

AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

#: What a payload type carries, by its encoding name: retransmission (RFC 4588 ``rtx``, its
#: ``apt=`` names the payload type it repeats), forward error correction (RFC 5109 ``ulpfec``,
#: RFC 8627 ``flexfec``) or redundancy (RFC 2198 ``red``: audio RED still carries the audio).
#: Every other encoding is the media itself.
ENCODING_ROLES: dict[str, str] = {
    "rtx": "rtx",
    "ulpfec": "fec",
    "flexfec": "fec",
    "flexfec-03": "fec",
    "red": "red",
}
#: ``a=ssrc-group`` semantics whose later SSRCs repeat or protect the first one (RFC 5576 §4.2):
#: FID with an RTX SSRC (RFC 4588 §8.3), FEC-FR (RFC 5956 §4.3) and its older name FEC.
SSRC_GROUP_ROLES: dict[str, str] = {"FID": "rtx", "FEC-FR": "fec", "FEC": "fec"}

# RFC 3551 §6 tables 4, 5: static payload types usable without rtpmap -> (name, clock, channels)
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int | None]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1),
    7: ("LPC", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    10: ("L16", 44100, 2),
    11: ("L16", 44100, 1),
    12: ("QCELP", 8000, 1),
    13: ("CN", 8000, 1),
    14: ("MPA", 90000, None),
    15: ("G728", 8000, 1),
    16: ("DVI4", 11025, 1),
    17: ("DVI4", 22050, 1),
    18: ("G729", 8000, 1),
    25: ("CelB", 90000, None),
    26: ("JPEG", 90000, None),
    28: ("nv", 90000, None),
    31: ("H261", 90000, None),
    32: ("MPV", 90000, None),
    33: ("MP2T", 90000, None),
    34: ("H263", 90000, None),
}

_MAX_DIGITS = 20  # no SDP number needs more; also keeps int() far from its 4300-digit limit
_MAX_LIFETIME_EXPONENT = 64  # SRTP lifetimes are at most 2^48 (RFC 3711 §9.2)

Attribute = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class Codec:
    """One payload type of an m= line: ``a=rtpmap`` (RFC 8866 §6.6) plus ``a=fmtp`` (§6.15).

    ``channels`` is the rtpmap's encoding parameter; for audio it defaults to 1 when omitted
    (RFC 8866 §6.6), for other media it is ``None`` unless given.
    """

    payload_type: int
    name: str
    clock_rate: int
    channels: int | None
    fmtp: str | None

    @property
    def parameters(self) -> dict[str, str | None]:
        """The fmtp parameters: ``"minptime=10;useinbandfec=1"`` -> ``{"minptime": "10", ...}``.

        A parameter without ``=`` (``"0-16"``, ``"111/111"``) maps to ``None``.
        """
        parameters: dict[str, str | None] = {}
        for item in (self.fmtp or "").split(";"):
            name, equals, value = item.strip().partition("=")
            if name:
                parameters.setdefault(name.strip(), value.strip() if equals else None)
        return parameters

    @property
    def role(self) -> str:
        """``media``, ``rtx``, ``fec`` or ``red`` (:data:`ENCODING_ROLES`)."""
        return ENCODING_ROLES.get(self.name.lower(), "media")

    @property
    def associated_payload_type(self) -> int | None:
        """RFC 4588 §8.1 ``a=fmtp:<pt> apt=<pt>``: the payload type an RTX one repeats."""
        value = self.parameters.get("apt")
        if value is None or not (value.isascii() and value.isdigit()) or int(value) > 127:
            return None
        return int(value)


@dataclass(frozen=True, slots=True)
class SsrcRole:
    """What one SSRC named in the SDP carries: the m= line's ``media`` and its ``role``.

    ``role`` is ``media``, or ``rtx``/``fec`` for the later SSRCs of an ``a=ssrc-group`` of
    :data:`SSRC_GROUP_ROLES`; ``protects`` is then the group's first (primary) SSRC.
    ``evidence`` is the SDP line that says so.
    """

    ssrc: int
    media: str
    role: str
    protects: int | None
    evidence: str


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One SDES ``a=crypto`` line (RFC 4568 §9.1).

    ``key``, ``lifetime`` and ``mki`` come from the first key parameter when its method is
    ``inline``: ``key`` is the decoded master key || master salt, ``lifetime`` the number of packets
    (``2^20`` -> 1048576), ``mki`` is (value, length in bytes). ``key_params`` keeps every key
    parameter as written (``"inline:...|2^20|1:4"``).
    """

    tag: int
    suite: str
    key_params: tuple[str, ...]
    key: bytes | None
    lifetime: int | None
    mki: tuple[int, int] | None
    session_params: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ``a=candidate`` line (RFC 8839 §5.1; ``tcptype`` RFC 6544 §4.5).

    ``transport`` is lowercased (Firefox writes ``UDP``); every other token is as written.
    """

    foundation: str
    component: int
    transport: str
    priority: int
    address: str
    port: int
    type: str
    tcp_type: str | None
    related_address: str | None
    related_port: int | None


@dataclass(frozen=True, slots=True)
class MediaSection:
    """One ``m=`` section with the session-level attributes it inherits already applied.

    ``codecs`` follow the m= line's order (the sender's preference); ``extmaps`` are (id, URI)
    pairs, session-level ones first; ``ssrcs`` are the SSRCs named by ``a=ssrc`` or
    ``a=ssrc-group`` in order of first mention; ``attributes`` are this section's own ``a=`` lines
    as (name, value) pairs, value ``None`` for a flag.
    """

    kind: str
    port: int
    protocol: str
    formats: tuple[str, ...]
    mid: str | None
    direction: str | None
    connection_address: str | None
    codecs: tuple[Codec, ...]
    extmaps: tuple[tuple[int, str], ...]
    ssrcs: tuple[int, ...]
    ssrc_groups: tuple[tuple[str, tuple[int, ...]], ...]
    crypto: tuple[CryptoAttribute, ...]
    fingerprints: tuple[tuple[str, str], ...]
    setup: str | None
    ice_ufrag: str | None
    ice_pwd: str | None
    candidates: tuple[Candidate, ...]
    rtcp_mux: bool
    extmap_allow_mixed: bool
    cryptex: bool
    attributes: tuple[Attribute, ...]

    def extension_id(self, uri: str) -> int | None:
        """The id negotiated for header extension ``uri`` in this section, or ``None``."""
        return next((number for number, known in self.extmaps if known == uri), None)

    def codec(self, payload_type: int) -> Codec | None:
        """The codec for ``payload_type`` in this section, or ``None``."""
        return next((codec for codec in self.codecs if codec.payload_type == payload_type), None)


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A parsed SDP document; the session-level fields are as written at session level."""

    origin: str | None
    session_name: str | None
    connection_address: str | None
    groups: tuple[tuple[str, tuple[str, ...]], ...]
    direction: str | None
    extmaps: tuple[tuple[int, str], ...]
    extmap_allow_mixed: bool
    cryptex: bool
    fingerprints: tuple[tuple[str, str], ...]
    setup: str | None
    ice_ufrag: str | None
    ice_pwd: str | None
    ice_lite: bool
    attributes: tuple[Attribute, ...]
    media: tuple[MediaSection, ...]

    @property
    def audio(self) -> tuple[MediaSection, ...]:
        """The ``m=audio`` sections, in order."""
        return tuple(section for section in self.media if section.kind == "audio")

    @property
    def bundle(self) -> tuple[str, ...]:
        """The mids of the first ``a=group:BUNDLE`` (RFC 8843 §7), or ``()``."""
        return next((mids for semantics, mids in self.groups if semantics == "BUNDLE"), ())


def parse_sdp(text: str) -> SessionDescription:
    """Parse an SDP document (RFC 8866 §5), one ``<type>=<value>`` per line::

        v=0                                           session part
        o=<username> <sess-id> <sess-version> IN IP4 <address>
        s=<session name>
        c=IN IP4 <address>                            optional here, inherited by media
        t=<start> <stop>
        a=<attribute>[:<value>]                       session-level attributes
        m=<media> <port>[/<count>] <proto> <fmt> ...  one media part per m= line
        c=IN IP4 <address>
        a=<attribute>[:<value>]                       media-level attributes

    Lines may end in CRLF, LF or CR; blank lines and whitespace around a line are ignored.
    """
    session, media_blocks = _walk(text)
    session_extmaps = _extmaps(session.attributes)
    described = SessionDescription(
        origin=session.first_line("o"),
        session_name=session.first_line("s"),
        connection_address=session.connection_address(),
        groups=tuple(_group(value) for value in session.values("group")),
        direction=session.direction(),
        extmaps=tuple(session_extmaps.items()),
        extmap_allow_mixed=session.has("extmap-allow-mixed"),
        cryptex=session.has("cryptex"),
        fingerprints=tuple(_fingerprint(value) for value in session.values("fingerprint")),
        setup=session.first_value("setup"),
        ice_ufrag=session.first_value("ice-ufrag"),
        ice_pwd=session.first_value("ice-pwd"),
        ice_lite=session.has("ice-lite"),
        attributes=tuple(session.attributes),
        media=(),
    )
    return replace(
        described, media=tuple(_media_section(block, described) for block in media_blocks)
    )


EXTENSION_ID_ONE_BYTE: Final = range(1, 15)
"""RFC 8285 §4.2: the one-byte header form carries ids 1-14 (15 is reserved, 0 is padding)."""
EXTENSION_ID_TWO_BYTE: Final = range(1, 256)
"""RFC 8285 §4.3: the two-byte form carries ids 1-255; an id outside it is on no packet."""


def audio_level_extension_id(sdp: SessionDescription) -> int | None:
    """The RFC 6464 audio-level extension id from the first audio section that negotiated it.

    An id no RTP header extension can carry (outside 1-255) is no id: None, and
    :func:`audio_level_extmap_problem` says why (the caller then infers it from the packets
    instead of reading an empty level column).
    """
    number = _audio_level_extmap(sdp)
    return number if number is not None and number in EXTENSION_ID_TWO_BYTE else None


def audio_level_extmap_problem(sdp: SessionDescription) -> str | None:
    """Why the SDP's audio-level extmap cannot be used, or None.

    Outside 1-255 no header form carries it (RFC 8285). Whether 15-255 is carried (two-byte
    form only) the packets tell: :func:`decoders.media.scan.scan_streams` warns when no audio
    packet carries the level at the id given.
    """
    number = _audio_level_extmap(sdp)
    if number is None:
        return None
    line = f"a=extmap:{number} {AUDIO_LEVEL_URI}"
    if number not in EXTENSION_ID_TWO_BYTE:
        return (
            f"SDP {line}: id {number} is outside 1-14 (one-byte header) and 1-255 (two-byte "
            "header, RFC 8285), so no packet can carry it; ignored"
        )
    return None


def _audio_level_extmap(sdp: SessionDescription) -> int | None:
    for section in sdp.audio:
        number = section.extension_id(AUDIO_LEVEL_URI)
        if number is not None:
            return number
    return None


def payload_types(sdp: SessionDescription) -> dict[int, tuple[str, Codec]]:
    """Payload type -> (media kind, codec) over all sections; the first section to use a PT wins."""
    table: dict[int, tuple[str, Codec]] = {}
    for section in sdp.media:
        for codec in section.codecs:
            table.setdefault(codec.payload_type, (section.kind, codec))
    return table


def ssrc_roles(sdp: SessionDescription) -> dict[int, SsrcRole]:
    """SSRC -> what it carries, over all sections; a group's role beats a plain ``a=ssrc``."""
    table: dict[int, SsrcRole] = {}
    for section in sdp.media:
        for semantics, members in section.ssrc_groups:
            role = SSRC_GROUP_ROLES.get(semantics.upper())
            if role is None or len(members) < 2:
                continue
            line = f"a=ssrc-group:{semantics} {' '.join(str(m) for m in members)}"
            primary = members[0]
            for ssrc in members[1:]:
                table.setdefault(ssrc, SsrcRole(ssrc, section.kind, role, primary, line))
        for ssrc in section.ssrcs:
            line = f"a=ssrc:{ssrc} in m={section.kind}"
            table.setdefault(ssrc, SsrcRole(ssrc, section.kind, "media", None, line))
    return table


def merge_descriptions(descriptions: Iterable[SessionDescription]) -> SessionDescription | None:
    """One description holding every m= section of ``descriptions`` (offers and answers of
    both sides), in order; the session-level fields are the first description's.

    Lookups that take "the first section" (:func:`payload_types`,
    :func:`audio_level_extension_id`) then prefer the earlier documents, and
    :func:`ssrc_roles` sees the SSRCs and groups that either side announced.
    """
    documents = list(descriptions)
    if not documents:
        return None
    media = tuple(section for document in documents for section in document.media)
    return replace(documents[0], media=media)


# --- the line walk ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Block:
    """The lines of the session part or of one media part, in order."""

    media_line: str | None
    lines: list[tuple[str, str]]
    attributes: list[Attribute]

    def first_line(self, kind: str) -> str | None:
        return next((value for line_type, value in self.lines if line_type == kind), None)

    def values(self, name: str) -> list[str]:
        return [value or "" for key, value in self.attributes if key == name]

    def first_value(self, name: str) -> str | None:
        return next((value.strip() for value in self.values(name)), None)

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.attributes)

    def direction(self) -> str | None:
        """RFC 8866 §6.7: the first of sendrecv/sendonly/recvonly/inactive."""
        return next((key for key, _ in self.attributes if key in DIRECTIONS), None)

    def connection_address(self) -> str | None:
        """RFC 8866 §5.7: ``c=IN IP4 <address>[/<ttl>[/<count>]]`` -> address."""
        value = self.first_line("c")
        if value is None:
            return None
        fields = value.split()
        if len(fields) < 3:
            raise MalformedPacket(f"SDP c= line {value!r} has fewer than 3 fields")
        return fields[2].split("/")[0]


def _walk(text: str) -> tuple[_Block, list[_Block]]:
    """Split the document into the session block and one block per ``m=`` line (RFC 8866 §5)."""
    session = _Block(media_line=None, lines=[], attributes=[])
    blocks: list[_Block] = []
    current = session
    seen_version = False
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not (line[0].isascii() and line[0].isalpha()):
            raise MalformedPacket(f"SDP line {number} is not <type>=<value>: {line[:40]!r}")
        line_type, value = line[0], line[2:]
        if not seen_version:
            if line_type != "v":
                raise MalformedPacket("SDP v= line missing: the document must start with v=")
            seen_version = True
        if line_type == "m":
            current = _Block(media_line=value, lines=[], attributes=[])
            blocks.append(current)
        elif line_type == "a":
            name, colon, attribute_value = value.partition(":")
            current.attributes.append((name, attribute_value if colon else None))
        current.lines.append((line_type, value))
    if not seen_version:
        raise MalformedPacket("SDP is empty: no v= line")
    return session, blocks


def _media_section(block: _Block, session: SessionDescription) -> MediaSection:
    """Build one media section, inheriting what RFC 8866 §5 lets the session level set."""
    kind, port, protocol, formats = _media_line(block.media_line or "")
    own_extmaps = _extmaps(block.attributes)
    extmaps = dict(session.extmaps)
    extmaps.update(own_extmaps)
    own_fingerprints = tuple(_fingerprint(value) for value in block.values("fingerprint"))
    own_address = block.connection_address()
    return MediaSection(
        kind=kind,
        port=port,
        protocol=protocol,
        formats=formats,
        mid=block.first_value("mid"),
        direction=block.direction() or session.direction,
        connection_address=own_address if own_address is not None else session.connection_address,
        codecs=_codecs(kind, formats, block) if _is_rtp(protocol) else (),
        extmaps=tuple(extmaps.items()),
        ssrcs=_ssrcs(block),
        ssrc_groups=tuple(_ssrc_group(value) for value in block.values("ssrc-group")),
        crypto=tuple(_crypto(value) for value in block.values("crypto")),
        fingerprints=own_fingerprints or session.fingerprints,
        setup=_first_set(block.first_value("setup"), session.setup),
        ice_ufrag=_first_set(block.first_value("ice-ufrag"), session.ice_ufrag),
        ice_pwd=_first_set(block.first_value("ice-pwd"), session.ice_pwd),
        candidates=tuple(_candidate(value) for value in block.values("candidate")),
        rtcp_mux=block.has("rtcp-mux"),
        extmap_allow_mixed=block.has("extmap-allow-mixed") or session.extmap_allow_mixed,
        cryptex=block.has("cryptex") or session.cryptex,
        attributes=tuple(block.attributes),
    )


def _first_set(own: str | None, inherited: str | None) -> str | None:
    return own if own is not None else inherited


# --- one helper per line format ----------------------------------------------------------------


def _decimal(text: str, field: str, maximum: int | None = None) -> int:
    """A non-negative ASCII decimal (the SDP grammar's ``1*DIGIT``), at most ``maximum``."""
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS:
        raise MalformedPacket(f"SDP {field} {text[:40]!r} is not a decimal number")
    number = int(text)
    if maximum is not None and number > maximum:
        raise MalformedPacket(f"SDP {field} {number} is larger than {maximum}")
    return number


def _is_rtp(protocol: str) -> bool:
    """RFC 8866 §5.14: RTP/AVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF, ... carry RTP payload types."""
    return "RTP/" in protocol.upper()


def _media_line(value: str) -> tuple[str, int, str, tuple[str, ...]]:
    """RFC 8866 §5.14: ``m=<media> <port>[/<number of ports>] <proto> <fmt> ...``."""
    fields = value.split()
    if len(fields) < 3:
        raise MalformedPacket(f"SDP m= line {value[:40]!r} has fewer than 3 fields")
    port = _decimal(fields[1].split("/")[0], "m= port", 65535)
    formats = tuple(fields[3:])
    if _is_rtp(fields[2]):
        for payload_type in formats:
            _decimal(payload_type, "m= payload type", 127)
    return fields[0], port, fields[2], formats


def _codecs(kind: str, formats: tuple[str, ...], block: _Block) -> tuple[Codec, ...]:
    """RFC 8866 §6.6 rtpmap + §6.15 fmtp for each payload type of the m= line, in its order."""
    rtpmaps: dict[int, tuple[str, int, int | None]] = {}
    for value in block.values("rtpmap"):
        payload_type, mapping = _rtpmap(value, kind)
        rtpmaps.setdefault(payload_type, mapping)
    fmtps: dict[int, str] = {}
    for value in block.values("fmtp"):
        payload_type_text, _, parameters = value.strip().partition(" ")
        payload_type = _decimal(payload_type_text, "a=fmtp payload type", 127)
        fmtps.setdefault(payload_type, parameters.strip())
    codecs: dict[int, Codec] = {}
    for payload_type in (int(text) for text in formats):
        known = rtpmaps.get(payload_type, STATIC_PAYLOAD_TYPES.get(payload_type))
        if known is not None and payload_type not in codecs:
            name, clock_rate, channels = known
            codecs[payload_type] = Codec(
                payload_type, name, clock_rate, channels, fmtps.get(payload_type)
            )
    return tuple(codecs.values())


def _rtpmap(value: str, kind: str) -> tuple[int, tuple[str, int, int | None]]:
    """RFC 8866 §6.6: ``a=rtpmap:<pt> <encoding name>/<clock rate>[/<encoding parameters>]``."""
    payload_type_text, _, description = value.strip().partition(" ")
    payload_type = _decimal(payload_type_text, "a=rtpmap payload type", 127)
    parts = description.strip().split("/")
    if len(parts) < 2 or not parts[0]:
        raise MalformedPacket(f"SDP a=rtpmap {value[:40]!r} is not <pt> <name>/<clock rate>")
    clock_rate = _decimal(parts[1], "a=rtpmap clock rate")
    channels: int | None = 1 if kind == "audio" else None
    if len(parts) > 2:
        channels = _decimal(parts[2], "a=rtpmap channels")
    return payload_type, (parts[0], clock_rate, channels)


def _extmaps(attributes: Iterable[Attribute]) -> dict[int, str]:
    """RFC 8285 §5: ``a=extmap:<id>[/<direction>] <URI> [<attributes>]`` -> {id: URI}."""
    extmaps: dict[int, str] = {}
    for name, value in attributes:
        if name != "extmap":
            continue
        fields = (value or "").split()
        if len(fields) < 2:
            raise MalformedPacket(f"SDP a=extmap {value!r} is not <id> <URI>")
        extmaps.setdefault(_decimal(fields[0].split("/")[0], "a=extmap id"), fields[1])
    return extmaps


def _fingerprint(value: str) -> tuple[str, str]:
    """RFC 8122 §5: ``a=fingerprint:<hash function> <fingerprint>``."""
    fields = value.split()
    if len(fields) < 2:
        raise MalformedPacket(f"SDP a=fingerprint {value[:40]!r} is not <hash> <fingerprint>")
    return fields[0], fields[1]


def _group(value: str) -> tuple[str, tuple[str, ...]]:
    """RFC 5888 §5: ``a=group:<semantics> <mid> ...``."""
    fields = value.split()
    if not fields:
        raise MalformedPacket("SDP a=group has no semantics")
    return fields[0], tuple(fields[1:])


def _ssrc_group(value: str) -> tuple[str, tuple[int, ...]]:
    """RFC 5576 §4.2: ``a=ssrc-group:<semantics> <ssrc-id> ...``."""
    fields = value.split()
    if not fields:
        raise MalformedPacket("SDP a=ssrc-group has no semantics")
    return fields[0], tuple(_decimal(ssrc, "a=ssrc-group SSRC", 0xFFFFFFFF) for ssrc in fields[1:])


def _ssrcs(block: _Block) -> tuple[int, ...]:
    """RFC 5576 §4.1 ``a=ssrc:<ssrc-id> <attribute>[:<value>]`` and §4.2 groups, first mention."""
    found: dict[int, None] = {}
    for name, value in block.attributes:
        if name == "ssrc":
            ssrc_text = (value or "").strip().partition(" ")[0]
            found.setdefault(_decimal(ssrc_text, "a=ssrc SSRC", 0xFFFFFFFF))
        elif name == "ssrc-group":
            for ssrc in _ssrc_group(value or "")[1]:
                found.setdefault(ssrc)
    return tuple(found)


def _candidate(value: str) -> Candidate:
    """RFC 8839 §5.1: ``<foundation> <component> <transport> <priority> <address> <port>
    typ <type> [raddr <address>] [rport <port>] *(<extension name> <extension value>)``."""
    fields = value.split()
    if len(fields) < 8 or fields[6] != "typ":
        raise MalformedPacket(f"SDP a=candidate {value[:60]!r} is not <...> typ <type>")
    extensions = dict(zip(fields[8::2], fields[9::2], strict=False))
    related_port = extensions.get("rport")
    return Candidate(
        foundation=fields[0],
        component=_decimal(fields[1], "a=candidate component", 256),
        transport=fields[2].lower(),
        priority=_decimal(fields[3], "a=candidate priority", 0xFFFFFFFF),
        address=fields[4],
        port=_decimal(fields[5], "a=candidate port", 65535),
        type=fields[7],
        tcp_type=extensions.get("tcptype"),
        related_address=extensions.get("raddr"),
        related_port=(
            None if related_port is None else _decimal(related_port, "a=candidate rport", 65535)
        ),
    )


def _crypto(value: str) -> CryptoAttribute:
    """RFC 4568 §9.1: ``a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]``."""
    fields = value.split()
    if len(fields) < 3:
        raise MalformedPacket(f"SDP a=crypto {value[:40]!r} is not <tag> <suite> <key-params>")
    key_params = tuple(fields[2].split(";"))
    method, _, key_info = key_params[0].partition(":")
    key: bytes | None = None
    lifetime: int | None = None
    mki: tuple[int, int] | None = None
    if method.lower() == "inline":
        key, lifetime, mki = _inline_key(key_info)
    return CryptoAttribute(
        tag=_decimal(fields[0], "a=crypto tag", 999999999),
        suite=fields[1],
        key_params=key_params,
        key=key,
        lifetime=lifetime,
        mki=mki,
        session_params=tuple(fields[3:]),
    )


def _inline_key(key_info: str) -> tuple[bytes, int | None, tuple[int, int] | None]:
    """RFC 4568 §6.1: ``<base64 key||salt>["|"<lifetime>]["|"<MKI value>":"<MKI length>]``."""
    key_salt, *extras = key_info.split("|")
    if len(extras) > 2:
        raise MalformedPacket(f"SDP a=crypto key {key_info[:40]!r} has too many '|' parts")
    try:
        key = base64.b64decode(key_salt + "=" * (-len(key_salt) % 4), validate=True)
    except (binascii.Error, ValueError) as error:  # ValueError: non-ASCII text
        raise MalformedPacket(f"SDP a=crypto key {key_salt[:40]!r} is not base64") from error
    if not key:
        raise MalformedPacket("SDP a=crypto key is empty")
    lifetime: int | None = None
    mki: tuple[int, int] | None = None
    for extra in extras:
        if ":" in extra:
            value_text, _, length_text = extra.partition(":")
            mki = (
                _decimal(value_text, "a=crypto MKI value"),
                _decimal(length_text, "a=crypto MKI length", 128),
            )
        elif extra.startswith("2^"):
            lifetime = 2 ** _decimal(extra[2:], "a=crypto lifetime", _MAX_LIFETIME_EXPONENT)
        else:
            lifetime = _decimal(extra, "a=crypto lifetime")
    return key, lifetime, mki
