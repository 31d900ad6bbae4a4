"""The lab page in its namespaces: reachable from the browser side only, gone afterwards."""

from __future__ import annotations

import subprocess
import sys

import pytest

from decoders.live.labpage import DURATIONS, lab_page, page_url


def test_page_url_carries_variant_and_timing_but_no_mark() -> None:
    url = page_url("ui-only")
    assert url.startswith("http://10.77.0.2:8080/?variant=ui-only&durations=1000,16000,3000")
    assert "mark=" not in url
    connect_s = (1.0, 4.0)  # browser start to connected, quiet to busy machine
    assert DURATIONS[0] + connect_s[1] < 6.0 - 0.5  # muted before the plan's mute
    assert DURATIONS[0] + DURATIONS[1] + connect_s[0] > 14.0 + 2.0  # until after its unmute


def test_unknown_variant() -> None:
    with pytest.raises(ValueError, match="unknown variant"), lab_page("loud"):
        pass


def test_page_served_in_the_browser_namespace_then_gone() -> None:
    fetch = (
        "import urllib.request, sys; "
        "sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())"
    )
    with lab_page("track-disabled") as page:
        html = subprocess.run(
            ["ip", "netns", "exec", page.namespace, sys.executable, "-c", fetch, page.url],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        namespace = page.namespace
    assert "mutecheck lab call" in html
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert namespace not in listed
