"""Rule files: the built-in ones shipped with mutecheck, and a user's, read into rules.

The built-in rules recognise the mute controls of apps whose signal the generic recognisers
miss or cannot tell apart (the Janus demos: AudioBridge, EchoTest, VideoCall, VideoRoom). They
are ordinary rule files (``decoders/session/rules/*.json``, the format of ``mutecheck_rules``,
docs/session-format.md) so that users can read and copy them; the addon loads them unless
``mutecheck_builtin_rules`` is off, and ``mutecheck analyze`` when it replays ``flows.mitm``.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from decoders.errors import MalformedPacket
from decoders.session.signaling import MuteRule, load_rules

PACKAGE = "decoders.session"
FOLDER = "rules"


def builtin_files() -> list[tuple[str, str]]:
    """``(file name, text)`` of every built-in rule file, in name order."""
    folder = resources.files(PACKAGE).joinpath(FOLDER)
    found = [item for item in folder.iterdir() if item.name.endswith(".json")]
    return [(item.name, item.read_text(encoding="utf-8")) for item in sorted(found, key=_name)]


def _name(item: Traversable) -> str:
    return item.name


def builtin_path() -> str:
    """Where the built-in rule files are, for people to read (a folder of the package)."""
    return str(resources.files(PACKAGE).joinpath(FOLDER))


def builtin_rules() -> tuple[MuteRule, ...]:
    """Every built-in rule; a broken file is a bug, named with its file."""
    rules: list[MuteRule] = []
    for name, text in builtin_files():
        try:
            rules.extend(load_rules(text))
        except MalformedPacket as error:  # pragma: no cover - tests load every file
            raise MalformedPacket(f"built-in rule file {name}: {error}") from error
    return tuple(rules)


def read_rule_file(path: Path) -> tuple[MuteRule, ...]:
    """A user's rule file; OSError, UnicodeDecodeError or MalformedPacket when it does not do."""
    return load_rules(path.read_text(encoding="utf-8"))


def rule_set(user: Path | None, *, builtin: bool = True) -> tuple[MuteRule, ...]:
    """The rules to judge with: the built-in ones (unless ``builtin`` is off), then the user's."""
    rules = builtin_rules() if builtin else ()
    return rules + (read_rule_file(user) if user is not None else ())
