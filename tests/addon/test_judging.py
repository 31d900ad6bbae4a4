"""Tests for decoders.addon.judging: the options become the monitor's settings, or an
OptionsError naming the value that does not fit."""

from __future__ import annotations

import pytest
from helpers.script_addons import ScriptAddons
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy import exceptions
from mitmproxy.test import taddons

from decoders.session.rulefiles import builtin_rules


def test_defaults_are_the_monitor_defaults_with_the_builtin_rules(script: ScriptAddons) -> None:
    with taddons.context(script) as context:
        context.configure(script, mutecheck_builtin_rules=True)  # the default
        configured = script.monitor.settings
        assert (configured.scan_limit, configured.grace, configured.silence_level) == (
            256 * 1024,
            0.2,
            100,
        )
        assert configured.audio_level_id is None and configured.block is False
        assert [r.name for r in configured.rules] == [r.name for r in builtin_rules()]
        context.configure(script, mutecheck_scan_limit="1m", mutecheck_audio_level_id=3)
        assert script.monitor.settings.scan_limit == 1 << 20
        assert script.monitor.settings.audio_level_id == 3


@settings(max_examples=60, deadline=None)
@given(grace=st.integers(-(10**6), 10**6), level=st.integers(-300, 300))
def test_grace_and_silence_level_in_range_or_named(grace: int, level: int) -> None:
    script = ScriptAddons()
    with taddons.context(script) as context:
        fits = 0 <= grace <= 60_000 and 1 <= level <= 127
        if fits:
            context.configure(script, mutecheck_grace_ms=grace, mutecheck_silence_level=level)
            assert script.monitor.settings.grace == grace / 1000
            assert script.monitor.settings.silence_level == level
        else:
            with pytest.raises(exceptions.OptionsError, match=r"is not (0\.\.60000|1\.\.127)"):
                context.configure(script, mutecheck_grace_ms=grace, mutecheck_silence_level=level)
            assert script.monitor.settings.grace == 0.2  # rolled back: the settings before
