"""The lab's TURN relay: coturn in the peer's namespace, and how the page is told to use it.

A relayed session (``mutecheck lab record --relay udp|tcp|tls``) runs Debian's ``turnserver``
(coturn) from a private configuration written here per run (never ``/etc``): long-term
credentials for one user, UDP + TCP on 3478, TLS on 5349 with a self-signed certificate made
for the run, listening and relaying on the peer's address only, no CLI. The page gets one
``turn:``/``turns:`` URL and ``iceTransportPolicy: "relay"``, so Chromium sends its media
through coturn over the chosen transport (RFC 8656; over TCP and TLS through the lab's proxy
with HTTP CONNECT, as a browser behind a proxy does).

Everything here is pure (text in, text out) except :func:`write_certificate`; record.py starts
and stops the server.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
from pathlib import Path
from typing import Any, Final

from decoders.session.sdp import parse_sdp

RELAYS: Final = ("none", "udp", "tcp", "tls")
"""How the browser's media travels: direct (``none``) or through coturn over UDP, TCP or TLS."""
TURN_PORT: Final = 3478
"""RFC 8656 §4: TURN over UDP and TCP."""
TURNS_PORT: Final = 5349
"""RFC 8656 §4: TURN over TLS."""
TURN_BINARY: Final = "/usr/bin/turnserver"
TURN_USER: Final = "mutecheck"
TURN_PASSWORD: Final = "lab-only-password"
TURN_REALM: Final = "mutecheck.lab"
RELAY_PORTS: Final = (49160, 49400)
"""coturn's relay port range (the peer reaches the browser's relayed address there)."""
READY_LINE: Final = "Total General servers"
"""What coturn 4.6 logs once every listener is open."""


def turn_url(relay: str, server: str) -> str:
    """The page's one TURN URL (RFC 7065) for `relay` (``udp``, ``tcp`` or ``tls``)."""
    if relay == "udp":
        return f"turn:{server}:{TURN_PORT}?transport=udp"
    if relay == "tcp":
        return f"turn:{server}:{TURN_PORT}?transport=tcp"
    if relay == "tls":
        return f"turns:{server}:{TURNS_PORT}?transport=tcp"
    raise ValueError(f"unknown relay {relay!r}; known: {', '.join(RELAYS[1:])}")


def server_port(relay: str) -> int:
    """The TURN server port the browser (or the proxy for it) talks to."""
    return TURNS_PORT if relay == "tls" else TURN_PORT


def server_protocol(relay: str) -> str:
    """The transport the browser's TURN leg uses on the wire: ``udp`` or ``tcp``."""
    return "udp" if relay == "udp" else "tcp"


def ice_configuration(relay: str, server: str) -> dict[str, Any]:
    """The RTCConfiguration the page uses: no servers at all, or one TURN server, relay only."""
    if relay == "none":
        return {"iceServers": []}
    return {
        "iceServers": [
            {"urls": [turn_url(relay, server)], "username": TURN_USER, "credential": TURN_PASSWORD}
        ],
        "iceTransportPolicy": "relay",
    }


def turnserver_config(address: str, work: Path, certificate: Path, key: Path) -> str:
    """coturn's configuration for one run: every file it writes lives under `work`.

    ``listening-ip``/``relay-ip`` pin it to `address` (the peer's namespace address); the
    relay range is :data:`RELAY_PORTS`; STUN stays on (without it Chromium's ICE gathering
    waits ~10 s); ``fingerprint`` adds FINGERPRINT to its messages (RFC 8489 §14.7).
    """
    lines = [
        f"listening-ip={address}",
        f"relay-ip={address}",
        f"listening-port={TURN_PORT}",
        f"tls-listening-port={TURNS_PORT}",
        f"min-port={RELAY_PORTS[0]}",
        f"max-port={RELAY_PORTS[1]}",
        "lt-cred-mech",
        f"user={TURN_USER}:{TURN_PASSWORD}",
        f"realm={TURN_REALM}",
        f"cert={certificate}",
        f"pkey={key}",
        "fingerprint",
        "no-cli",
        "no-dtls",
        "no-tlsv1",
        "no-tlsv1_1",
        "no-multicast-peers",
        f"allowed-peer-ip={address}",
        f"userdb={work / 'turndb'}",
        f"pidfile={work / 'turnserver.pid'}",
        "log-file=stdout",
        "simple-log",
        "verbose",
    ]
    return "".join(line + "\n" for line in lines)


def write_certificate(address: str, certificate: Path, key: Path) -> str:
    """A self-signed P-256 certificate for `address` (valid a day), written as PEM files.

    Returns the base64 SHA-256 of its SubjectPublicKeyInfo, the form Chromium's
    ``--ignore-certificate-errors-spki-list`` takes.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .sign(private_key, hashes.SHA256())
    )
    key.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return spki_sha256(certificate.read_bytes())


def spki_sha256(pem: bytes) -> str:
    """Base64 SHA-256 of the public key of the first certificate in `pem` (RFC 7469 §2.4)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    certificate = x509.load_pem_x509_certificates(pem)[0]
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def relay_candidates(sdp: str) -> list[dict[str, Any]]:
    """Every ``typ relay`` candidate of an SDP (its first section's), as session.json lists them."""
    sections = parse_sdp(sdp).media
    if not sections:
        return []
    return [
        {
            "component": c.component,
            "transport": c.transport,
            "address": c.address,
            "port": c.port,
            "related_address": c.related_address,
            "related_port": c.related_port,
        }
        for c in sections[0].candidates
        if c.type == "relay"
    ]
