"""Chromium's flags, and mitmproxy's real CA trusted in the NSS database Chromium reads."""

from __future__ import annotations

from pathlib import Path

from mitmproxy.certs import CertStore

from decoders.lab.record import RTPDUMP_FLAGS
from decoders.live.browser import (
    CA_NICKNAME,
    QUIET_FLAGS,
    chromium_flags,
    nss_database,
    trust_ca,
    trusted_nicknames,
)


def test_mitmproxy_ca_lands_in_home_pki_nssdb(tmp_path: Path) -> None:
    CertStore.from_store(tmp_path / "confdir", "mitmproxy", 2048)
    ca = tmp_path / "confdir" / "mitmproxy-ca-cert.pem"
    home = tmp_path / "home"
    database = trust_ca(home, ca)
    assert database == home / ".pki" / "nssdb" == nss_database(home)
    assert (database / "cert9.db").is_file()
    assert trusted_nicknames(home) == [CA_NICKNAME]


def test_flags_headless_proxy_dump_and_url_last(tmp_path: Path) -> None:
    flags = chromium_flags(
        url="http://10.77.0.2:8080/?variant=x",
        proxy_port=4321,
        profile=tmp_path / "p",
        headless=True,
        fake_mic=tmp_path / "mic.wav",
    )
    assert flags[-1] == "http://10.77.0.2:8080/?variant=x"
    assert "--headless=new" in flags and "--proxy-server=127.0.0.1:4321" in flags
    assert "--proxy-bypass-list=<-loopback>" in flags
    assert all(flag in flags for flag in RTPDUMP_FLAGS)
    assert f"--use-file-for-fake-audio-capture={tmp_path / 'mic.wav'}" in flags
    assert "--unsafely-treat-insecure-origin-as-secure=http://10.77.0.2:8080" in flags
    assert not any("ignore-certificate-errors" in flag for flag in flags)
    assert all(flag in flags for flag in QUIET_FLAGS)
    assert len([f for f in flags if f.startswith("--disable-features=")]) == 1  # the last wins


def test_visible_browser_uses_the_real_microphone(tmp_path: Path) -> None:
    flags = chromium_flags(
        url="https://call.example.org/", proxy_port=1, profile=tmp_path, headless=False
    )
    assert "--headless=new" not in flags
    assert not any(flag.startswith("--use-fake") for flag in flags)
    assert not any(flag.startswith("--unsafely-treat") for flag in flags)
