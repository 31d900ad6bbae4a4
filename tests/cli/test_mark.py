"""``mutecheck mark`` as a user runs it: the mark's own arguments, one-line errors."""

from __future__ import annotations

from helpers.cli_run import run_mutecheck as run


def test_mark_without_a_proxy_is_a_one_line_error() -> None:
    result = run("mark", "muted", "--proxy", "127.0.0.1:9")
    assert result.returncode == 2
    assert "mutecheck mark: proxy 127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
    assert run("mark", "-h").returncode == 0
