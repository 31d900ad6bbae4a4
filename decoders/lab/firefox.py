"""Firefox ESR in the lab: its throwaway profile, its microphone and how it is started.

Firefox has no "fake audio file" switch like Chromium's. Its microphone here is a PulseAudio
null sink: the lab starts a private PulseAudio (system mode, as root; its socket in the run's
folder), plays the 48 kHz reference into the sink with ``paplay --device=<sink>`` and Firefox
records the sink's monitor (``media.audio_loopback_dev="Monitor of Null Output"`` with
``media.navigator.streams.fake=false``). The profile's ``user.js`` sends all HTTP through the
lab's proxy, lets the plain-HTTP lab page use the microphone (``dom.securecontext.allowlist``),
grants it without a prompt and turns off everything that would try to reach Mozilla
(telemetry, updates, Safe Browsing, captive-portal and connectivity checks, push, remote
settings, DNS over HTTPS, the OpenH264 download, ...). ``SSLKEYLOGFILE`` makes Firefox's own
NSS write its (D)TLS secrets, the WebRTC DTLS ones included, to the session folder.

Everything here is pure (text and argument lists) except :func:`trust_certificate`, which runs
NSS's ``certutil`` on the profile.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Final

FIREFOX_CANDIDATES: Final = ("/usr/lib/firefox-esr/firefox-esr", "firefox-esr", "firefox")
"""Debian's Firefox ESR binary first (the /usr/bin name is a symlink to it)."""
PULSEAUDIO: Final = "pulseaudio"
PAPLAY: Final = "paplay"
CERTUTIL: Final = "certutil"
"""NSS's certificate tool (Debian package libnss3-tools)."""
SINK: Final = "fakemic"
"""The null sink the reference is played into."""
LOOPBACK_DEVICE: Final = "Monitor of Null Output"
"""What Firefox calls the null sink's monitor (the sink's description is "Null Output")."""
PULSE_SOCKET: Final = "native"
KEYLOG: Final = "keylog.txt"
"""Firefox's SSLKEYLOGFILE in the session folder (the browser's key log: what an auditor
without any lab hook gets)."""
PEER_KEYLOG: Final = "peer-keylog.txt"
"""The answering side's own DTLS key log (the aiortc peer's, or a second Firefox's), kept in
the session beside the calling browser's ``keylog.txt``; the ground truth's source when no one
exported keys (:func:`decoders.lab.groundtruth.packet_source`)."""

FIREFOX_FLAGS: Final = ("--headless", "--no-remote")

PREFS: Final[dict[str, bool | int | str]] = {
    # the microphone: the null sink's monitor, no prompt, no fake tone
    "media.navigator.streams.fake": False,
    "media.navigator.permission.disabled": True,
    "media.audio_loopback_dev": LOOPBACK_DEVICE,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    # host candidates with their real address (the page asks for the microphone first anyway)
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.default_address_only": False,
    "media.peerconnection.use_document_iceservers": True,
    # nothing leaves the lab: telemetry, studies, crash reports
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.server": "data:,",
    "toolkit.telemetry.shutdownPingSender.enabled": False,
    "toolkit.telemetry.newProfilePing.enabled": False,
    "toolkit.telemetry.firstShutdownPing.enabled": False,
    "toolkit.telemetry.updatePing.enabled": False,
    "toolkit.telemetry.bhrPing.enabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.usage.uploadEnabled": False,
    "app.normandy.enabled": False,
    "app.normandy.api_url": "",
    "app.shield.optoutstudies.enabled": False,
    "browser.crashReports.unsubmittedCheck.autoSubmit2": False,
    "browser.tabs.crashReporting.sendReport": False,
    "browser.ping-centre.telemetry": False,
    "browser.newtabpage.activity-stream.feeds.telemetry": False,
    "browser.newtabpage.activity-stream.telemetry": False,
    # updates of the browser, add-ons, search engines, plugins (OpenH264), remote settings
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "app.update.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "extensions.blocklist.enabled": False,
    "browser.search.update": False,
    "media.gmp-manager.updateEnabled": False,
    "media.gmp-manager.url": "data:,",
    "media.gmp-gmpopenh264.autoupdate": False,
    "media.gmp-widevinecdm.autoupdate": False,
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "security.remote_settings.intermediates.enabled": False,
    "security.remote_settings.crlite_filters.enabled": False,
    "security.OCSP.enabled": 0,
    # Safe Browsing, captive portal, connectivity, push, DNS over HTTPS, prefetching
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.safebrowsing.provider.google4.updateURL": "",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.trr.mode": 5,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.predictor.enabled": False,
    "network.http.speculative-parallel-limit": 0,
    "dom.push.enabled": False,
    "dom.push.connection.enabled": False,
    "geo.provider.network.url": "",
    "browser.region.network.url": "",
    "browser.region.update.enabled": False,
    "network.sntp.pools": "",
    # first-run pages and what they fetch
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "startup.homepage_welcome_url": "",
    "startup.homepage_welcome_url.additional": "",
    "browser.aboutwelcome.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.topsites": False,
    "browser.newtabpage.activity-stream.feeds.section.topstories": False,
    "browser.newtabpage.activity-stream.showSponsoredTopSites": False,
    "browser.topsites.contile.enabled": False,
    "browser.discovery.enabled": False,
    "browser.urlbar.suggest.searches": False,
    "browser.urlbar.merino.endpointURL": "",
    "browser.translations.enable": False,
    "browser.ml.enable": False,
    "browser.contentblocking.report.lockwise.enabled": False,
    "identity.fxaccounts.enabled": False,
    "privacy.trackingprotection.enabled": False,
    "browser.sessionstore.resume_from_crash": False,
    # no HTTPS upgrade of the plain-HTTP lab page's requests, no favicon fetch
    "dom.security.https_first": False,
    "dom.security.https_first_schemeless": False,
    "dom.security.https_only_mode": False,
    "browser.chrome.site_icons": False,
}
"""Preferences every lab profile gets (beside the proxy and the page origin)."""


def find_firefox() -> str | None:
    """The Firefox binary: Debian's ESR first, then what is on PATH."""
    for candidate in FIREFOX_CANDIDATES:
        path = candidate if candidate.startswith("/") else shutil.which(candidate)
        if path and Path(path).is_file():
            return path
    return None


def user_js(
    proxy_host: str, proxy_port: int, secure_hosts: tuple[str, ...], *, direct: bool = False
) -> str:
    """The profile's ``user.js``: :data:`PREFS`, every URL through the proxy at
    ``proxy_host:proxy_port`` (loopback included), ``secure_hosts`` treated as secure contexts
    (the plain-HTTP lab page may then ask for the microphone). ``direct``: no proxy at all (the
    answering Firefox, beside the lab's server in the peer's namespace)."""
    if direct:
        return _user_js({"network.proxy.type": 0, **PREFS})
    prefs: dict[str, bool | int | str] = {
        "network.proxy.type": 1,
        "network.proxy.http": proxy_host,
        "network.proxy.http_port": proxy_port,
        "network.proxy.ssl": proxy_host,
        "network.proxy.ssl_port": proxy_port,
        "network.proxy.share_proxy_settings": True,
        "network.proxy.no_proxies_on": "",
        "network.proxy.allow_hijacking_localhost": True,
        "network.proxy.socks_remote_dns": True,
        "dom.securecontext.allowlist": ",".join(secure_hosts),
        **PREFS,
    }
    return _user_js(prefs)


def _user_js(prefs: dict[str, bool | int | str]) -> str:
    lines = [
        "// mutecheck lab profile (decoders/lab/firefox.py): written per run, deleted after it",
        *(f"user_pref({json.dumps(name)}, {json.dumps(value)});" for name, value in prefs.items()),
    ]
    return "\n".join(lines) + "\n"


def write_profile(
    profile: Path,
    proxy_host: str,
    proxy_port: int,
    secure_hosts: tuple[str, ...],
    *,
    direct: bool = False,
) -> None:
    """A fresh profile folder holding only ``user.js`` (:func:`user_js`)."""
    profile.mkdir(parents=True, exist_ok=False)
    (profile / "user.js").write_text(user_js(proxy_host, proxy_port, secure_hosts, direct=direct))


def certutil_commands(
    profile: Path, certificate: Path, name: str, password_file: Path
) -> list[list[str]]:
    """Create the profile's NSS database with the empty password in ``password_file`` (an
    empty file: certutil then never asks on a terminal) and trust ``certificate`` as a CA for
    TLS servers in it."""
    database = f"sql:{profile}"
    return [
        [CERTUTIL, "-N", "-d", database, "-f", str(password_file)],
        [CERTUTIL, "-A", "-d", database, "-n", name, "-t", "C,,", "-i", str(certificate)],
    ]


def trust_certificate(profile: Path, certificate: Path, name: str = "mutecheck lab CA") -> None:
    """Run :func:`certutil_commands` (raises RuntimeError with certutil's message)."""
    password_file = profile / "nss-password.txt"
    password_file.write_text("")
    try:
        _run_certutil(certutil_commands(profile, certificate, name, password_file))
    finally:
        password_file.unlink()


def _run_certutil(commands: list[list[str]]) -> None:
    for command in commands:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise RuntimeError(f"{' '.join(command)}: exit {result.returncode}: {detail}")


def pulseaudio_command(socket_dir: Path, sample_rate: int) -> list[str]:
    """A private PulseAudio: system mode (the lab runs as root), no default script, one null
    sink (mono at ``sample_rate``), its socket ``socket_dir/native`` open to anyone (the folder
    must belong to the ``pulse`` user, whom system mode becomes)."""
    return [
        *(PULSEAUDIO, "--system", "--daemonize=no", "--disallow-exit", "--exit-idle-time=-1"),
        *("--use-pid-file=no", "-n", "--disable-shm=yes", "--log-target=stderr"),
        f"--load=module-native-protocol-unix socket={socket_dir / PULSE_SOCKET} auth-anonymous=1",
        f"--load=module-null-sink sink_name={SINK} rate={sample_rate} channels=1",
    ]


def pulse_server(socket_dir: Path) -> str:
    """``PULSE_SERVER`` for the clients of :func:`pulseaudio_command`."""
    return f"unix:{socket_dir / PULSE_SOCKET}"


def paplay_command(wav: Path) -> list[str]:
    """Play ``wav`` into the null sink once (Firefox hears it on the monitor)."""
    return [PAPLAY, f"--device={SINK}", str(wav)]


def firefox_command(binary: str, profile: Path, url: str) -> list[str]:
    """Headless Firefox on its own profile, no remote instance, opening ``url``."""
    return [binary, *FIREFOX_FLAGS, "--profile", str(profile), url]
