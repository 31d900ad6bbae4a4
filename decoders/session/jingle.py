"""Jingle (XMPP) session descriptions, written out as the SDP they stand for.

Jitsi Meet and other XMPP services negotiate WebRTC media with Jingle stanzas instead of SDP
text. :func:`jingle_to_sdp` turns each ``<jingle>`` element of an ``session-initiate`` (the
offer) or ``session-accept`` (the answer) into an SDP document that :func:`parse_sdp` reads, using
the mapping the XEPs define:

- XEP-0166 ``<jingle action sid>`` / ``<content name>`` -> one ``m=`` section, ``a=mid:<name>``
- XEP-0167 ``<description media>`` + ``<payload-type id name clockrate channels>`` and its
  ``<parameter name value>`` -> ``a=rtpmap`` / ``a=fmtp``; ``<rtcp-mux/>`` -> ``a=rtcp-mux``
- XEP-0294 ``<rtp-hdrext id uri>`` -> ``a=extmap`` (the audio-level id lives here)
- XEP-0339 ``<source ssrc>`` + ``<parameter name value>`` -> ``a=ssrc``; ``<ssrc-group>``
- XEP-0338 ``<group semantics>`` -> ``a=group``
- XEP-0176 ``<transport ufrag pwd>`` + ``<candidate>`` -> ``a=ice-ufrag``, ``a=ice-pwd``,
  ``a=candidate``; XEP-0320 ``<fingerprint hash setup>`` -> ``a=fingerprint``, ``a=setup``

Elements are matched by local name (namespaces vary between versions). A stanza with a DOCTYPE
is refused (XMPP forbids DTDs, RFC 6120 §11.1), which also keeps entity expansion out.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Literal

JINGLE_NAMESPACE = "urn:xmpp:jingle:1"
ROLES: dict[str, Literal["offer", "answer"]] = {
    "session-initiate": "offer",
    "session-accept": "answer",
}

_TOKEN = re.compile(r"[!-~]+")
_TEXT = re.compile(r"[!-~][ -~]*")


@dataclass(frozen=True, slots=True)
class JingleDescription:
    """One ``<jingle>`` element as SDP text, with its action and what that makes it."""

    action: str
    role: Literal["offer", "answer"]
    sid: str | None
    sdp: str


def jingle_to_sdp(text: str) -> list[JingleDescription]:
    """The offers and answers in a stanza (or several, e.g. a BOSH ``<body>``); [] if none.

    Never raises: text that is not well-formed XML holds no Jingle description.
    """
    if JINGLE_NAMESPACE not in text or "<!DOCTYPE" in text.upper():
        return []
    try:
        root = ElementTree.fromstring(text)
    except (ElementTree.ParseError, ValueError):
        return []
    found: list[JingleDescription] = []
    for element in root.iter():
        if _local(element.tag) != "jingle":
            continue
        action = element.get("action", "")
        role = ROLES.get(action)
        if role is None:
            continue
        sdp = _session(element)
        if sdp is not None:
            found.append(JingleDescription(action, role, element.get("sid"), sdp))
    return found


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element if _local(child.tag) == name]


def _first(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    return next((child for child in element if _local(child.tag) == name), None)


def _token(value: str | None) -> str | None:
    """An attribute usable in an SDP line: one run of visible ASCII, else None."""
    return value if value is not None and _TOKEN.fullmatch(value) else None


def _text(value: str | None) -> str | None:
    """An attribute usable as the rest of an SDP line: visible ASCII and spaces."""
    return value if value is not None and _TEXT.fullmatch(value) else None


def _session(jingle: ElementTree.Element) -> str | None:
    """RFC 8866 §5: the session part, then one media part per ``<content>``."""
    contents = _children(jingle, "content")
    if not contents:
        return None
    lines = ["v=0", f"o=- {_digits(jingle.get('sid'))} 2 IN IP4 0.0.0.0", "s=-", "t=0 0"]
    for group in _children(jingle, "group"):
        semantics = _token(group.get("semantics"))
        names = [_token(content.get("name")) for content in _children(group, "content")]
        if semantics:
            lines.append(" ".join([f"a=group:{semantics}", *(name for name in names if name)]))
    for content in contents:
        lines.extend(_media(content))
    return "\r\n".join(lines) + "\r\n"


def _digits(sid: str | None) -> str:
    """A numeric session id for ``o=`` derived from the Jingle sid."""
    return str(sum((index + 1) * ord(char) for index, char in enumerate(sid or "")) or 1)


def _media(content: ElementTree.Element) -> list[str]:
    description = _first(content, "description")
    transport = _first(content, "transport")
    media = _token(description.get("media")) if description is not None else None
    media = media or "application"
    payloads = _children(description, "payload-type") if description is not None else []
    ids = [payload_id for p in payloads if (payload_id := _payload_id(p)) is not None]
    secure = transport is not None and _first(transport, "fingerprint") is not None
    if media == "application":
        lines = ["m=application 9 UDP/DTLS/SCTP webrtc-datachannel"]
    else:
        protocol = "UDP/TLS/RTP/SAVPF" if secure else "RTP/AVPF"
        lines = [" ".join([f"m={media} 9 {protocol}", *ids])]
    lines.append("c=IN IP4 0.0.0.0")
    name = _token(content.get("name"))
    if name:
        lines.append(f"a=mid:{name}")
    if transport is not None:
        lines.extend(_transport(transport))
    if description is not None:
        lines.extend(_description(description, payloads))
    return lines


def _payload_id(payload: ElementTree.Element) -> str | None:
    value = payload.get("id", "")
    return value if value.isascii() and value.isdigit() and int(value) <= 127 else None


def _description(
    description: ElementTree.Element, payloads: list[ElementTree.Element]
) -> list[str]:
    """XEP-0167 payload types, XEP-0294 header extensions, XEP-0339 sources."""
    lines: list[str] = []
    for payload in payloads:
        payload_id = _payload_id(payload)
        name = _token(payload.get("name"))
        clock_rate = payload.get("clockrate", "")
        if payload_id is None or name is None or not clock_rate.isdigit():
            continue
        channels = payload.get("channels", "")
        suffix = f"/{channels}" if channels.isdigit() and channels != "1" else ""
        lines.append(f"a=rtpmap:{payload_id} {name}/{clock_rate}{suffix}")
        parameters = [
            f"{key}={value}"
            for parameter in _children(payload, "parameter")
            if (key := _token(parameter.get("name"))) and (value := _token(parameter.get("value")))
        ]
        if parameters:
            lines.append(f"a=fmtp:{payload_id} {';'.join(parameters)}")
    for extension in _children(description, "rtp-hdrext"):
        number = extension.get("id", "")
        uri = _token(extension.get("uri"))
        if number.isascii() and number.isdigit() and uri:
            lines.append(f"a=extmap:{number} {uri}")
    if _first(description, "rtcp-mux") is not None:
        lines.append("a=rtcp-mux")
    for source in _children(description, "source"):
        ssrc = source.get("ssrc", "")
        if not (ssrc.isascii() and ssrc.isdigit()):
            continue
        parameters = [
            f"a=ssrc:{ssrc} {key}:{value}" if value else f"a=ssrc:{ssrc} {key}"
            for parameter in _children(source, "parameter")
            if (key := _token(parameter.get("name")))
            for value in [_text(parameter.get("value"))]
        ]
        lines.extend(parameters or [f"a=ssrc:{ssrc} cname:-"])
    for group in _children(description, "ssrc-group"):
        semantics = _token(group.get("semantics"))
        ssrcs = [
            value
            for source in _children(group, "source")
            if (value := source.get("ssrc", "")).isascii() and value.isdigit()
        ]
        if semantics and ssrcs:
            lines.append(" ".join([f"a=ssrc-group:{semantics}", *ssrcs]))
    return lines


def _transport(transport: ElementTree.Element) -> list[str]:
    """XEP-0176 ICE credentials and candidates, XEP-0320 DTLS fingerprint and setup."""
    lines: list[str] = []
    ufrag = _token(transport.get("ufrag"))
    password = _token(transport.get("pwd"))
    if ufrag:
        lines.append(f"a=ice-ufrag:{ufrag}")
    if password:
        lines.append(f"a=ice-pwd:{password}")
    for fingerprint in _children(transport, "fingerprint"):
        hash_name = _token(fingerprint.get("hash"))
        value = _token((fingerprint.text or "").strip())
        if hash_name and value:
            lines.append(f"a=fingerprint:{hash_name} {value}")
        setup = _token(fingerprint.get("setup"))
        if setup:
            lines.append(f"a=setup:{setup}")
    for candidate in _children(transport, "candidate"):
        line = _candidate(candidate)
        if line:
            lines.append(line)
    return lines


def _candidate(candidate: ElementTree.Element) -> str | None:
    """XEP-0176 §5: foundation component protocol priority ip port type [rel-addr rel-port]."""
    fields = [
        _token(candidate.get(name))
        for name in ("foundation", "component", "protocol", "priority", "ip", "port")
    ]
    kind = _token(candidate.get("type"))
    if any(value is None for value in fields) or kind is None:
        return None
    line = f"a=candidate:{' '.join(value for value in fields if value)} typ {kind}"
    related_address = _token(candidate.get("rel-addr"))
    related_port = _token(candidate.get("rel-port"))
    if related_address and related_port:
        line += f" raddr {related_address} rport {related_port}"
    generation = _token(candidate.get("generation"))
    if generation:
        line += f" generation {generation}"
    return line
