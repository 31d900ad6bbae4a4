"""The audit's Chromium: its flags, and mitmproxy's CA trusted where Chromium looks.

Chromium on Linux reads trusted CAs from the NSS database ``$HOME/.pki/nssdb`` (the one in
``--user-data-dir`` is ignored; lab-facts.md), so the audit gives Chromium a throwaway HOME
whose database trusts the proxy's CA (``certutil`` from Debian's ``libnss3-tools``), instead
of ``--ignore-certificate-errors``.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Final

from decoders.chromium import UNATTENDED_FLAGS
from decoders.lab.record import RTPDUMP_FLAGS

CA_NICKNAME = "mitmproxy"
HEADLESS_MEDIA_FLAGS = (
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
)
"""Headless has no one to allow the microphone: fake devices, no permission prompt."""
QUIET_FLAGS: Final = ("--disable-features=NetworkTimeServiceQuerying",)
"""Chromium's own background requests the audit's browser does not make, on top of
:data:`decoders.chromium.UNATTENDED_FLAGS` (which already stop component updates, sync and the
rest of the background networking): Chromium 156 in an audit of the lab page asked
``clients2.google.com/time/1/current`` (network time) at start-up; this stops it. Flags that
changed nothing in the proxy's log of a 25 s headless audit were left out
(--disable-client-side-phishing-detection, --disable-domain-reliability, --no-pings,
--safebrowsing-disable-auto-update,
--disable-component-extensions-with-background-pages, --metrics-recording-only,
--no-service-autorun, and disabling OptimizationHints, Translate, MediaRouter,
CertificateTransparencyComponentUpdater, OptimizationGuideManifestBroker, the on-device AI
features). Only one --disable-features counts (Chromium reads the last): keep them all here."""
BACKGROUND_HOSTS_LEFT: Final = ("accounts.google.com", "update.googleapis.com")
"""What the audit's Chromium still asks for by itself, found no flag for: ``ListAccounts``
(its sign-in service lists the Google accounts of every regular profile once the network is
up; a throwaway profile has none) and one on-demand component (the optimization guide's
on-device models manifest, ``ceofaddefefcbblgcgnibnonglccbfja``), which
``--disable-component-update`` does not cover. Through the proxy like everything else, so
they show in ``proxy.log`` and ``flows.mitm``; blocking them there would break auditing the
services that need them (Google Meet signs in at accounts.google.com)."""


def nss_database(home: Path) -> Path:
    """Where Chromium on Linux reads its trusted CAs for ``HOME=home``."""
    return home / ".pki" / "nssdb"


def trust_ca(home: Path, ca_certificate: Path) -> Path:
    """Create ``home``'s NSS database trusting ``ca_certificate`` for TLS servers; returns it.

    Raises RuntimeError when certutil is missing or fails.
    """
    certutil = shutil.which("certutil")
    if certutil is None:
        raise RuntimeError("certutil not found (Debian package libnss3-tools)")
    database = nss_database(home)
    database.mkdir(parents=True, exist_ok=True)
    target = f"sql:{database}"
    for command in (
        [certutil, "-N", "-d", target, "--empty-password"],
        [certutil, "-A", "-d", target, "-t", "C,,", "-n", CA_NICKNAME, "-i", str(ca_certificate)],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return database


def trusted_nicknames(home: Path) -> list[str]:
    """The certificates in ``home``'s NSS database (``certutil -L``)."""
    certutil = shutil.which("certutil") or "certutil"
    result = subprocess.run(
        [certutil, "-L", "-d", f"sql:{nss_database(home)}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = result.stdout.splitlines()[4:]  # a header of three lines and a blank one
    return [line[:60].strip() for line in lines if line.strip()]


def chromium_flags(
    *,
    url: str,
    proxy_port: int,
    profile: Path,
    headless: bool,
    fake_mic: Path | None = None,
) -> list[str]:
    """The flags for one audited page, the URL last.

    Everything through the proxy (loopback too), the plaintext RTP dump on stderr, a
    throwaway profile; headless (or with ``fake_mic``) with fake capture devices. A plain
    ``http:`` page is treated as a secure origin so that it may ask for the microphone.
    """
    flags = [f for f in UNATTENDED_FLAGS if headless or f != "--headless=new"]
    flags += [
        "--disable-breakpad",
        f"--proxy-server=127.0.0.1:{proxy_port}",
        "--proxy-bypass-list=<-loopback>",
        *RTPDUMP_FLAGS,
        *QUIET_FLAGS,
        f"--user-data-dir={profile}",
    ]
    if headless or fake_mic is not None:
        flags += HEADLESS_MEDIA_FLAGS
    if fake_mic is not None:
        flags.append(f"--use-file-for-fake-audio-capture={fake_mic}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http":
        flags.append(f"--unsafely-treat-insecure-origin-as-secure=http://{parts.netloc}")
    return [*flags, url]
