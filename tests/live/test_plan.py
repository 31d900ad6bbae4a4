"""``--plan``: SECONDS:mute|unmute steps in time order; anything else one clear ValueError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders.live.plan import PlanStep, parse_plan


def test_steps_in_order() -> None:
    assert parse_plan("6:mute,14:unmute") == (PlanStep(6.0, True), PlanStep(14.0, False))
    assert parse_plan(" 0.5:Muted , 2:unmuted") == (PlanStep(0.5, True), PlanStep(2.0, False))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("6", "is not SECONDS:mute"),
        ("6:shout", "is not SECONDS:mute"),
        ("six:mute", "is not a number"),
        ("-1:mute", "time must be"),
        ("nan:mute", "time must be"),
        ("6:mute,6:unmute", "is not after"),
        ("14:mute,6:unmute", "is not after"),
    ],
)
def test_bad_steps_name_the_step(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_plan(text)


@given(st.text(max_size=40))
def test_any_text_is_a_plan_or_a_value_error(text: str) -> None:
    try:
        steps = parse_plan(text)
    except ValueError:
        return
    offsets = [step.offset_s for step in steps]
    assert offsets == sorted(set(offsets)) and all(0 <= o < 86400 for o in offsets)
