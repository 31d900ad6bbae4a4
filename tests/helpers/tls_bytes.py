"""Real TLS bytes: a handshake and application data between Python's ssl client and server.

Both ends run in memory (``ssl.MemoryBIO``) with a fresh self-signed certificate, so the
bytes are what a real TLS 1.2 or 1.3 connection sends, direction by direction.
"""

from __future__ import annotations

import datetime
import functools
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A fresh P-256 key and a self-signed certificate for it, valid from yesterday to tomorrow."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


@functools.cache
def _certificate_files() -> tuple[str, str]:
    key, cert = self_signed("localhost")
    folder = Path(tempfile.mkdtemp(prefix="mutecheck-tls-"))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(folder / "cert.pem"), str(folder / "key.pem")


def tls_connection(
    messages: list[tuple[bool, bytes]],
    *,
    version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    alpn: list[str] | None = None,
) -> tuple[bytes, bytes]:
    """``(client → server bytes, server → client bytes)`` of one connection.

    ``messages`` are ``(from_client, plaintext)`` written after the handshake, each with its
    own ``write`` (so each becomes its own record or records).
    """
    cert, key = _certificate_files()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    for context in (server_context, client_context):
        context.minimum_version = context.maximum_version = version
        if alpn:
            context.set_alpn_protocols(alpn)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_context.wrap_bio(s_in, s_out, server_side=True)
    upstream, downstream = bytearray(), bytearray()

    def pump() -> None:
        data = c_out.read()
        upstream.extend(data)
        s_in.write(data)
        data = s_out.read()
        downstream.extend(data)
        c_in.write(data)

    for _ in range(10):
        done = True
        for end in (client, server):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                done = False
        pump()
        if done:
            break
    for from_client, plaintext in messages:
        (client if from_client else server).write(plaintext)
        pump()
        (server if from_client else client).read(len(plaintext) + 1)
    pump()
    return bytes(upstream), bytes(downstream)
