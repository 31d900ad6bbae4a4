"""The lab proxy's allow list: the peer passes, everything else gets a 403 and is logged.

Unit tests use mitmproxy's own helpers (taddons, tflow); one test runs a real mitmdump with the
script and sends requests through it to a local server.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow, tutils

from decoders.lab import allowlist
from decoders.lab.allowlist import REFUSAL, AllowList, is_allowed


def proxy_context(addon: AllowList) -> taddons.context:
    """mitmproxy's test context with the addon loaded (taddons is untyped)."""
    return taddons.context(addon)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("10.77.0.2", 8080, True),
        ("10.77.0.2", 8081, False),
        ("10.77.0.20", 8080, False),
        ("peer.lab", 443, True),
        ("PEER.lab", 80, True),
        ("::1", 8080, True),
        ("accounts.google.com", 443, False),
    ],
)
def test_is_allowed(host: str, port: int, allowed: bool) -> None:
    assert is_allowed(host, port, ["10.77.0.2:8080", "peer.lab", "[::1]:8080"]) is allowed


def test_refuses_other_hosts_and_logs(tmp_path: Path) -> None:
    addon = AllowList()
    log = tmp_path / "refused.jsonl"
    with proxy_context(addon) as context:
        context.configure(addon, lab_allow=["10.77.0.2:8080"], lab_refused_log=str(log))
        ok = tflow.tflow(req=tutils.treq(host="10.77.0.2", port=8080, path="/offer"))
        addon.requestheaders(ok)
        assert ok.response is None
        google = tflow.tflow(req=tutils.treq(host="clients2.google.com", port=80, path="/time"))
        addon.requestheaders(google)
        assert google.response is not None and google.response.status_code == 403
        assert google.response.content == REFUSAL
        tunnel = tflow.tflow(
            req=tutils.treq(method=b"CONNECT", host="accounts.google.com", port=443, path=b"")
        )
        addon.http_connect(tunnel)
        assert tunnel.response is not None and tunnel.response.status_code == 403
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["kind"], r["host"], r["port"]) for r in records] == [
        ("request", "clients2.google.com", 80),
        ("connect", "accounts.google.com", 443),
    ]
    assert records[0]["path"] == "/time" and records[0]["method"] == "GET"
    assert addon.refused == 2


def test_refuses_everything_without_an_allow_list() -> None:
    addon = AllowList()
    with proxy_context(addon):
        flow = tflow.tflow()
        addon.requestheaders(flow)
        assert flow.response is not None and flow.response.status_code == 403


def test_bad_option_value() -> None:
    addon = AllowList()
    with (
        proxy_context(addon) as context,
        pytest.raises(exceptions.OptionsError, match="bad entry"),
    ):
        context.configure(addon, lab_allow=[":8080"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def origin() -> Iterator[int]:
    """A local HTTP server answering 200 "origin" to every GET."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"origin")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_real_mitmdump(tmp_path: Path, origin: int) -> None:
    port = free_port()
    log = tmp_path / "refused.jsonl"
    mitmdump = Path(sys.executable).with_name("mitmdump")
    command = [str(mitmdump)] if mitmdump.is_file() else [sys.executable, "-m", "mitmproxy"]
    process = subprocess.Popen(
        [
            *command,
            *("--listen-host", "127.0.0.1", "--listen-port", str(port)),
            *("--set", "connection_strategy=lazy", "--set", f"confdir={tmp_path / 'conf'}"),
            *("-s", allowlist.__file__, "--set", f"lab_allow=127.0.0.1:{origin}"),
            *("--set", f"lab_refused_log={log}"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"})
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with opener.open(f"http://127.0.0.1:{origin}/", timeout=5) as response:
                    assert response.read() == b"origin"
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open("http://update.googleapis.com/service/update2", timeout=5)
        assert refused.value.code == 403
        assert refused.value.read() == REFUSAL
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["host"], r["port"]) for r in records] == [("update.googleapis.com", 80)]
