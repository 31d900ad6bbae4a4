"""The lab's TURN relay: the page's ICE configuration, coturn's private configuration, the
run's certificate and the relay candidates read back from a recorded offer."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

import pytest

from decoders.lab.turn import (
    RELAY_PORTS,
    RELAYS,
    TURN_PASSWORD,
    TURN_USER,
    ice_configuration,
    relay_candidates,
    server_port,
    server_protocol,
    spki_sha256,
    turn_url,
    turnserver_config,
    write_certificate,
)

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_turn_urls_per_transport() -> None:
    assert turn_url("udp", "10.77.0.2") == "turn:10.77.0.2:3478?transport=udp"
    assert turn_url("tcp", "10.77.0.2") == "turn:10.77.0.2:3478?transport=tcp"
    assert turn_url("tls", "10.77.0.2") == "turns:10.77.0.2:5349?transport=tcp"
    with pytest.raises(ValueError, match="unknown relay 'none'"):
        turn_url("none", "10.77.0.2")
    assert [server_port(r) for r in RELAYS[1:]] == [3478, 3478, 5349]
    assert [server_protocol(r) for r in RELAYS[1:]] == ["udp", "tcp", "tcp"]


def test_ice_configuration() -> None:
    assert ice_configuration("none", "10.77.0.2") == {"iceServers": []}
    relayed = ice_configuration("tcp", "10.77.0.2")
    assert relayed == {
        "iceServers": [
            {
                "urls": ["turn:10.77.0.2:3478?transport=tcp"],
                "username": TURN_USER,
                "credential": TURN_PASSWORD,
            }
        ],
        "iceTransportPolicy": "relay",
    }


def test_turnserver_config_is_private_to_the_run(tmp_path: Path) -> None:
    text = turnserver_config("10.77.0.2", tmp_path, tmp_path / "c.pem", tmp_path / "k.pem")
    lines = text.splitlines()
    for expected in (
        "listening-ip=10.77.0.2",
        "relay-ip=10.77.0.2",
        "listening-port=3478",
        "tls-listening-port=5349",
        f"min-port={RELAY_PORTS[0]}",
        f"max-port={RELAY_PORTS[1]}",
        "lt-cred-mech",
        f"user={TURN_USER}:{TURN_PASSWORD}",
        "fingerprint",
        "no-cli",
        f"cert={tmp_path / 'c.pem'}",
        f"pkey={tmp_path / 'k.pem'}",
    ):
        assert expected in lines
    # every file coturn writes (its database, its PID file) is inside the run's folder
    paths = [line.split("=", 1)[1] for line in lines if line.startswith(("userdb=", "pidfile="))]
    assert len(paths) == 2 and all(Path(p).parent == tmp_path for p in paths)
    assert "/etc" not in text and "/var" not in text


def test_certificate_and_its_spki_hash(tmp_path: Path) -> None:
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    spki = write_certificate("10.77.0.2", certificate, key)
    assert key.stat().st_mode & 0o077 == 0
    assert spki == spki_sha256(certificate.read_bytes())
    # the same hash as openssl computes it (Chromium's --ignore-certificate-errors-spki-list form)
    public = subprocess.run(
        ["openssl", "x509", "-in", str(certificate), "-noout", "-pubkey"],
        capture_output=True,
        check=True,
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=public,
        capture_output=True,
        check=True,
    ).stdout
    assert spki == base64.b64encode(hashlib.sha256(der).digest()).decode()
    text = subprocess.run(
        ["openssl", "x509", "-in", str(certificate), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:10.77.0.2" in text and "CN = 10.77.0.2" in text
    # a new run gets a new key
    assert write_certificate("10.77.0.2", tmp_path / "c2.pem", tmp_path / "k2.pem") != spki


@pytest.mark.parametrize("relay", RELAYS[1:])
def test_relay_candidates_of_a_recorded_offer(relay: str) -> None:
    offer = (CAPTURES / f"chromium-ui-only-relay-{relay}" / "offer.sdp").read_text()
    (candidate,) = relay_candidates(offer)
    assert candidate["address"] == "10.77.0.2" and candidate["component"] == 1
    assert candidate["transport"] == "udp"  # the relayed address is UDP whatever the leg
    assert RELAY_PORTS[0] <= candidate["port"] <= RELAY_PORTS[1]
    direct = (CAPTURES / "chromium-ui-only" / "offer.sdp").read_text()
    assert relay_candidates(direct) == []
