"""A mitmproxy script for the lab: refuse (HTTP 403) every host that is not the lab's peer.

Even with background networking off, Chromium tries Google hosts (time, update and component
checks). The lab's proxy answers those itself, so nothing leaves the machine and the attempts
are on record::

    mitmdump -s decoders/lab/allowlist.py --set lab_allow=10.77.0.2:8080 \\
        --set lab_refused_log=refused.jsonl --set connection_strategy=lazy

``lab_allow`` lists ``host:port`` (or ``host`` for any port); plain requests, WebSocket upgrades
and CONNECT tunnels to anything else get a 403 before any upstream connection is made (with
``connection_strategy=lazy``). Each refusal is one JSON line in ``lab_refused_log``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from mitmproxy import ctx, exceptions, http
from mitmproxy.addonmanager import Loader

REFUSAL = b"mutecheck lab: this host is not part of the lab\n"


def is_allowed(host: str, port: int, allowed: Sequence[str]) -> bool:
    """Whether ``host:port`` matches an entry ``host:port`` or ``host`` (any port)."""
    host = host.lower().strip("[]")
    for entry in allowed:
        name, colon, entry_port = entry.lower().rpartition(":")
        if not colon or not entry_port.isdigit():
            name, entry_port = entry.lower(), ""
        if name.strip("[]") == host and (not entry_port or int(entry_port) == port):
            return True
    return False


class AllowList:
    """Answers 403 to requests and CONNECTs for hosts outside ``lab_allow``."""

    def __init__(self) -> None:
        self.refused = 0

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "lab_allow",
            Sequence[str],
            [],
            "Hosts the lab's browser may reach, as host:port or host (any port). Every other "
            "request or CONNECT is answered with 403 by the proxy itself.",
        )
        loader.add_option(
            "lab_refused_log",
            str,
            "",
            "File to append one JSON line to for each refused request (empty: do not log).",
        )

    def configure(self, updated: set[str]) -> None:
        if "lab_allow" in updated:
            for entry in ctx.options.lab_allow:
                if not entry or entry.startswith(":"):
                    message = f"lab_allow: bad entry {entry!r}"
                    raise exceptions.OptionsError(message)  # type: ignore[no-untyped-call]

    def _refuse(self, flow: http.HTTPFlow, kind: str) -> None:
        request = flow.request
        if flow.response is not None:
            return  # answered inside the proxy by another addon: nothing leaves
        if is_allowed(request.host, request.port, ctx.options.lab_allow):
            return
        flow.response = http.Response.make(403, REFUSAL, {"Content-Type": "text/plain"})
        self.refused += 1
        path = ctx.options.lab_refused_log
        if path:
            record = {
                "t": round(time.time(), 6),
                "kind": kind,
                "method": request.method,
                "host": request.host,
                "port": request.port,
                "path": request.path if kind == "request" else "",
            }
            with open(path, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._refuse(flow, "connect")

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._refuse(flow, "request")


addons = [AllowList()]
