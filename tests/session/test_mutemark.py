"""Tests for decoders.session.mutemark: the mark URL, its parser, and the client helper."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from decoders.session.mutemark import (
    MARK_HOST,
    MarkRequest,
    is_mark_host,
    main,
    mark_url,
    parse_mark_path,
    parse_state,
    send_mark,
)


def test_states() -> None:
    assert parse_state("muted") is True and parse_state(" Unmuted ") is False
    assert parse_state("on") is True and parse_state("off") is False
    with pytest.raises(ValueError, match="'loud' is not muted or unmuted"):
        parse_state("loud")


def test_host() -> None:
    assert is_mark_host("mutecheck.mark") and is_mark_host("MuteCheck.Mark.")
    assert not is_mark_host("mutecheck.mark.example.org")


@pytest.mark.parametrize(
    ("path", "request_"),
    [
        ("/muted", MarkRequest(True, None, None)),
        ("/unmuted/", MarkRequest(False, None, None)),
        ("/state", MarkRequest(None, None, None)),
        ("/muted?t=1795989023.0365&note=button", MarkRequest(True, 1795989023.0365, "button")),
        ("/unmuted?t=&note=", MarkRequest(False, None, None)),
    ],
)
def test_parse_mark_path(path: str, request_: MarkRequest) -> None:
    assert parse_mark_path(path) == request_


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/", "'' is not muted"),
        ("/favicon.ico", "'favicon.ico' is not muted"),
        ("/muted?t=soon", "t='soon' is not epoch seconds"),
        ("/muted?t=nan", "t='nan' is not epoch seconds"),
        ("/muted?t=-1", "t='-1' is not epoch seconds"),
    ],
)
def test_bad_mark_paths(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mark_path(path)


def test_mark_url_round_trips() -> None:
    url = mark_url(True, at=1795989023.0365, note="a b&c")
    assert url.startswith(f"http://{MARK_HOST}/muted?")
    assert parse_mark_path(url[len(f"http://{MARK_HOST}") :]) == MarkRequest(
        True, 1795989023.0365, "a b&c"
    )
    assert mark_url(None) == f"http://{MARK_HOST}/state"
    long_note = parse_mark_path("/muted?note=" + "x" * 500).note
    assert long_note is not None and len(long_note) == 200


class _FakeProxy(http.server.BaseHTTPRequestHandler):
    """Answers like the addon would; records the absolute-form request line a proxy gets."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = json.dumps({"marked": "muted", "muted": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def proxy_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_send_mark_goes_through_the_proxy(proxy_port: int) -> None:
    _FakeProxy.seen.clear()
    answer = send_mark(f"127.0.0.1:{proxy_port}", True, note="x")
    assert answer == {"marked": "muted", "muted": True}
    assert _FakeProxy.seen == ["http://mutecheck.mark/muted?note=x"]


def test_main(proxy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["muted", "--proxy", f"127.0.0.1:{proxy_port}"]) == 0
    assert json.loads(capsys.readouterr().out)["marked"] == "muted"
    with pytest.raises(SystemExit) as stopped:
        main(["muted", "--proxy", "127.0.0.1:1"])
    assert stopped.value.code == 2
