"""Marking mute and unmute without a console: a URL only the proxy answers.

The person testing (or a script, or the lab's page) requests, through the proxy::

    http://mutecheck.mark/muted        the microphone is muted from now on
    http://mutecheck.mark/unmuted      ... unmuted
    http://mutecheck.mark/state        what the proxy believes now (nothing is marked)

``?t=<epoch seconds>`` says when it happened, if not now (a page can send
``(performance.timeOrigin + performance.now()) / 1000``); ``?note=<text>`` is kept as evidence.
The addon answers these requests itself with a small JSON document (and
``Access-Control-Allow-Origin: *``, so a page's ``fetch`` works); they never leave the machine.
``https://mutecheck.mark/...`` works too when the browser trusts mitmproxy's CA (or ignores
certificate errors).

From a shell: ``curl -x http://127.0.0.1:8080 http://mutecheck.mark/muted``, or
``python -m decoders.session.mutemark muted --proxy 127.0.0.1:8080``.
"""

from __future__ import annotations

import argparse
import json
import math
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

MARK_HOST = "mutecheck.mark"
STATE_WORDS = {
    "muted": True,
    "mute": True,
    "on": True,
    "unmuted": False,
    "unmute": False,
    "off": False,
}
"""Accepted spellings; ``on``/``off`` refer to mute (``mutecheck.mark on`` = muted)."""

MAX_NOTE = 200


@dataclass(frozen=True, slots=True)
class MarkRequest:
    """A request to the mark URL: ``muted`` None means "tell me the state" (``/state``)."""

    muted: bool | None
    at: float | None
    note: str | None


def parse_state(word: str) -> bool:
    """``muted``/``unmuted`` (and the spellings in :data:`STATE_WORDS`) -> True/False."""
    state = STATE_WORDS.get(word.strip().lower())
    if state is None:
        raise ValueError(f"mute state {word!r} is not muted or unmuted")
    return state


def is_mark_host(host: str) -> bool:
    return host.lower().rstrip(".") == MARK_HOST


def parse_mark_path(path: str) -> MarkRequest:
    """``/muted?t=...&note=...`` -> MarkRequest; ValueError with the reason for anything else."""
    parsed = urllib.parse.urlsplit(path)
    word = parsed.path.strip("/")
    query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
    at: float | None = None
    if query.get("t"):
        try:
            at = float(query["t"])
        except ValueError:
            raise ValueError(f"t={query['t']!r} is not epoch seconds") from None
        if not math.isfinite(at) or at < 0:
            raise ValueError(f"t={query['t']!r} is not epoch seconds")
    note = query.get("note") or None
    if note is not None:
        note = note[:MAX_NOTE]
    if word == "state":
        return MarkRequest(None, at, note)
    return MarkRequest(parse_state(word), at, note)


def mark_url(muted: bool | None, *, at: float | None = None, note: str | None = None) -> str:
    """The URL that marks ``muted`` (None: asks for the state)."""
    word = "state" if muted is None else ("muted" if muted else "unmuted")
    query: dict[str, str] = {}
    if at is not None:
        query["t"] = repr(at)
    if note:
        query["note"] = note
    suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
    return f"http://{MARK_HOST}/{word}{suffix}"


def send_mark(
    proxy: str,
    muted: bool | None,
    *,
    at: float | None = None,
    note: str | None = None,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """Ask the proxy at ``host:port`` to mark; returns its JSON answer (raises OSError)."""
    address = proxy if "://" in proxy else f"http://{proxy}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": address}))
    with opener.open(mark_url(muted, at=at, note=note), timeout=timeout) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 2, like every error of mutecheck."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"mutecheck: error: {self.prog}: {message} (see {self.prog} -h)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(
        prog="mutecheck mark",
        description="Tell a mitmproxy running the mutecheck addon that you muted or unmuted.",
    )
    parser.add_argument("state", choices=["muted", "unmuted", "state"])
    parser.add_argument("--proxy", default="127.0.0.1:8080", help="the proxy (host:port)")
    parser.add_argument("--note", help="a note kept with the mark")
    parser.add_argument("--at", type=float, help="when it happened (epoch seconds; default now)")
    arguments = parser.parse_args(argv)
    muted = None if arguments.state == "state" else parse_state(arguments.state)
    try:
        answer = send_mark(arguments.proxy, muted, at=arguments.at, note=arguments.note)
    except OSError as error:
        parser.exit(2, f"mutecheck: error: mutecheck mark: proxy {arguments.proxy}: {error}\n")
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
