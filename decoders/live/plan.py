"""An unattended run's marks: ``--plan 6:mute,14:unmute``.

Each step is ``SECONDS:ACTION`` with SECONDS counted from the browser's start and ACTION one
of ``mute`` or ``unmute`` (``muted``/``unmuted`` are accepted too); the steps must be in
increasing time order.
"""

from __future__ import annotations

from dataclasses import dataclass

_ACTIONS = {"mute": True, "muted": True, "unmute": False, "unmuted": False}


@dataclass(frozen=True, slots=True)
class PlanStep:
    """At ``offset_s`` seconds after the browser started, mark ``muted``."""

    offset_s: float
    muted: bool


def parse_plan(text: str) -> tuple[PlanStep, ...]:
    """The steps of a plan; ValueError naming the bad step."""
    steps: list[PlanStep] = []
    for part in text.split(","):
        item = part.strip()
        seconds, colon, action = item.partition(":")
        if not colon or action.strip().lower() not in _ACTIONS:
            raise ValueError(f"plan step {item!r} is not SECONDS:mute or SECONDS:unmute")
        try:
            offset = float(seconds)
        except ValueError:
            raise ValueError(f"plan step {item!r}: {seconds!r} is not a number") from None
        if not 0 <= offset < 86400:
            raise ValueError(f"plan step {item!r}: time must be in [0, 86400) s")
        if steps and offset <= steps[-1].offset_s:
            raise ValueError(f"plan step {item!r} is not after the step before it")
        steps.append(PlanStep(offset, _ACTIONS[action.strip().lower()]))
    return tuple(steps)
