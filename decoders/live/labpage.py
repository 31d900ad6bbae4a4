"""The lab's call page served in the lab's namespaces, for auditing it like any web app.

The lab (:mod:`decoders.lab.record`) makes two network namespaces joined by a veth pair and
runs its aiortc peer in one. :func:`lab_page` does that much and no more (no proxy, no
capture, no browser): the peer serves ``page.html`` on ``https://10.77.0.2:8080`` with a
self-signed certificate made for the run (subjectAltName IP 10.77.0.2, the lab's one builder
:func:`decoders.lab.turn.write_certificate`), or on ``http://`` with ``tls=False``.
``mutecheck audit`` run inside the browser namespace (``ip netns exec NS mutecheck audit URL
--upstream-ca CERT``) brings its own proxy, capture and browser; the certificate is the CA the
proxy must trust for this server, as an internal CA for a self-hosted deployment. The page's
variant and timing travel in the URL (:func:`decoders.lab.record.page_query`); the page marks
nothing itself, so that the audit's plan is the only mark.

``python -m decoders.live.labpage --variant ui-only [--http]`` serves it until Ctrl-C and
prints the namespace, the URL and the certificate. Needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from decoders.lab import turn
from decoders.lab.record import (
    HTTP_PORT,
    PEER_ADDRESS,
    VARIANTS,
    LabNetwork,
    create_network,
    page_query,
)

DURATIONS = (1.0, 16.0, 3.0)
"""Unmuted, muted, unmuted seconds of the page's own scenario, from when it is connected (1 to
4 s after the browser starts, more on a busy machine): its muted span, from at most ~5 s to at
least ~18 s after the browser starts, holds a ``--plan 6:mute,14:unmute`` with room to spare."""


@dataclass(frozen=True)
class LabPage:
    """Where the page is: the namespace to run the browser in, its URL, its certificate."""

    namespace: str
    url: str
    peer_folder: Path
    """What the peer wrote (its SDP, keys, the telemetry it received): ground truth, not
    something an audit may read."""
    certificate: Path | None = None
    """The server's self-signed certificate (PEM), a CA file to trust for it; None on http."""


def page_url(
    variant: str, durations: tuple[float, float, float] = DURATIONS, *, tls: bool = True
) -> str:
    """The lab page's URL for ``variant`` (no marks: the page does not tell the addon)."""
    scheme = "https" if tls else "http"
    query = page_query(variant, durations, mark=False)
    return f"{scheme}://{PEER_ADDRESS}:{HTTP_PORT}/?{query}"


@contextlib.contextmanager
def lab_page(
    variant: str, durations: tuple[float, float, float] = DURATIONS, *, tls: bool = True
) -> Iterator[LabPage]:
    """Namespaces and the peer (HTTPS with a certificate made for this run unless ``tls`` is
    False), up while the block runs; all gone afterwards."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    tag = f"{os.getpid()}-{int(time.time() * 1000) % 100000}"
    work = Path(tempfile.mkdtemp(prefix=f"mutecheck-labpage-{tag}-"))
    lab = LabNetwork(work=work, browser_ns=f"mutecheck-b-{tag}", peer_ns=f"mutecheck-p-{tag}")
    try:
        create_network(lab)
        folder = work / "peer"
        folder.mkdir()
        command = [sys.executable, "-m", "decoders.lab.peer", "--out", str(folder)]
        command += ["--host", PEER_ADDRESS, "--port", str(HTTP_PORT)]
        certificate = None
        if tls:
            certificate, key = work / "lab-page-cert.pem", work / "lab-page-key.pem"
            turn.write_certificate(PEER_ADDRESS, certificate, key)
            command += ["--tls-cert", str(certificate), "--tls-key", str(key)]
        peer = lab.start("peer", ["ip", "netns", "exec", lab.peer_ns, *command], lines=True)
        lab.wait_event("listening", peer, timeout=30)
        url = page_url(variant, durations, tls=tls)
        yield LabPage(lab.browser_ns, url, folder, certificate)
    finally:
        lab.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variant", choices=VARIANTS, default="ui-only")
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    args = parser.parse_args(argv)
    with lab_page(args.variant, tls=not args.http) as page:
        print(f"namespace: {page.namespace}\nurl: {page.url}", flush=True)
        trust = f" --upstream-ca {page.certificate}" if page.certificate else ""
        print(f"certificate: {page.certificate or '(none: http)'}")
        print(f"audit it: ip netns exec {page.namespace} mutecheck audit '{page.url}'{trust} ...")
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):  # also when started in the background
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
