"""Tests for decoders.addon.guard: no exception leaves a hook; declared choices are checked."""

from __future__ import annotations

from typing import Any

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow

from decoders.addon.guard import check_choices, guarded


class _Reporter:
    def __init__(self) -> None:
        self.reports: list[tuple[str, tuple[Any, ...], str]] = []

    def internal_error(self, hook: str, args: tuple[Any, ...], error: Exception) -> None:
        self.reports.append((hook, args, str(error)))


class _Feature:
    def __init__(self) -> None:
        self.recorder = _Reporter()

    @guarded
    def request(self, flow: Any) -> str:
        if flow is None:
            raise RuntimeError("boom")
        return "answered"


def test_a_hook_returns_its_value_or_reports_what_it_raised() -> None:
    feature = _Feature()
    flow = tflow.tflow()
    assert feature.request(flow) == "answered"
    assert feature.request(None) is None
    assert feature.recorder.reports == [("request", (None,), "boom")]
    assert feature.request.__name__ == "request"  # mitmproxy finds hooks by name


def test_choices_are_read_from_the_declaration() -> None:
    with taddons.context() as context:
        context.options.add_option("x_action", str, "drop", "what to do", ("drop", "redact"))
        context.options.add_option("x_dir", str, "", "where")
        context.options.update(x_action="explode", x_dir="anything")  # mitmproxy takes both
        check_choices({"x_dir"}, ("x_action", "x_dir"))  # only what was updated is checked
        with pytest.raises(
            exceptions.OptionsError, match="x_action 'explode' is not one of drop, redact"
        ):
            check_choices({"x_action"}, ("x_action",))
        check_choices({"x_dir"}, ("x_dir",))  # no choices declared: any text
        context.options.update(x_action="redact")
        check_choices({"x_action"}, ("x_action",))
