"""The lab page in its namespaces: reachable from the browser side only, gone afterwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from decoders.live.labpage import DURATIONS, lab_page, page_url


def test_page_url_carries_variant_and_timing_but_no_mark() -> None:
    url = page_url("ui-only")
    assert url.startswith("https://10.77.0.2:8080/?variant=ui-only&durations=1000,16000,3000")
    assert page_url("ui-only", tls=False).startswith("http://10.77.0.2:8080/?variant=ui-only&")
    assert "mark=" not in url
    connect_s = (1.0, 4.0)  # browser start to connected, quiet to busy machine
    assert DURATIONS[0] + connect_s[1] < 6.0 - 0.5  # muted before the plan's mute
    assert DURATIONS[0] + DURATIONS[1] + connect_s[0] > 14.0 + 2.0  # until after its unmute


def test_unknown_variant() -> None:
    with pytest.raises(ValueError, match="unknown variant"), lab_page("loud"):
        pass


FETCH = (
    "import ssl, sys, urllib.request; "
    "context = ssl.create_default_context(cafile=sys.argv[2] or None); "
    "sys.stdout.write(urllib.request.urlopen(sys.argv[1], context=context).read().decode())"
)


def _fetch(namespace: str, url: str, cafile: Path | None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", FETCH, url, str(cafile or "")]
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("tls", [True, False])
def test_page_served_in_the_browser_namespace_then_gone(tls: bool) -> None:
    """Over HTTPS the page verifies against its own certificate (an IP subjectAltName for
    10.77.0.2) and not against the system's CAs; over HTTP it needs none."""
    with lab_page("track-disabled", tls=tls) as page:
        fetched = _fetch(page.namespace, page.url, page.certificate)
        if tls:
            assert page.certificate is not None and page.certificate.is_file()
            untrusted = _fetch(page.namespace, page.url, None)
            assert untrusted.returncode != 0
            assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        else:
            assert page.certificate is None
        namespace = page.namespace
    assert fetched.returncode == 0, fetched.stderr
    assert "mutecheck lab call" in fetched.stdout
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert namespace not in listed
