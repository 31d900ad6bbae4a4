"""Which numbers can be times: the one check every timeline, ``--muted`` and event time passes.

A mute window, a mark or a telemetry message is placed on the capture's clock and then turned
into nanoseconds (int64, as the packet table holds them). A time that is not a finite number, or
that lies far outside any plausible recording, must never be converted silently: a window ending
in the year 2286 overflows int64 nanoseconds and turned a leaking session into "no leak". So:

- **epoch seconds** (events.jsonl's ``t`` and ``at``, timeline times of 1e9 and more) must lie in
  [:data:`EPOCH_FLOOR`, :data:`EPOCH_CEIL`] (1990 to 2100);
- **seconds from the capture's first packet** (timeline times below :data:`EPOCH_MIN`) must be
  finite and not negative;
- a number is an ``int`` or ``float`` (never a ``bool`` or a string), and an integer too large
  for a float is no time either.

Anything else raises ValueError with a message naming where the value came from.
"""

from __future__ import annotations

import math
from typing import Final

EPOCH_MIN: Final = 1e9
"""Times at or above this are epoch seconds; below, seconds from the capture's first packet."""
EPOCH_FLOOR: Final = 631_152_000.0
"""1990-01-01T00:00:00Z: no recording mutecheck reads is older."""
EPOCH_CEIL: Final = 4_102_444_800.0
"""2100-01-01T00:00:00Z: later epoch times are corrupt (int64 nanoseconds end in 2262)."""
OFFSET_MAX: Final = EPOCH_CEIL
"""Largest ``--clock-offset`` (seconds, either sign): beyond it no time stays in range."""


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where} {_show(value)} is not a number of seconds")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{where} {_show(value)} is not a time (too large)") from None
    if not math.isfinite(number):
        raise ValueError(f"{where} {_show(value)} is not a finite number of seconds")
    return number


def epoch_seconds(value: object, where: str) -> float:
    """``value`` as Unix epoch seconds between 1990 and 2100; ValueError naming ``where``."""
    number = _number(value, where)
    if not EPOCH_FLOOR <= number <= EPOCH_CEIL:
        raise ValueError(
            f"{where} {_show(value)} is not a plausible time (epoch seconds between 1990 and 2100)"
        )
    return number


def timeline_seconds(value: object, where: str) -> float:
    """A timeline time: seconds from the capture's first packet (>= 0, < 1e9) or epoch seconds
    (1e9 up to 2100); ValueError naming ``where``."""
    number = _number(value, where)
    if number < 0:
        raise ValueError(f"{where} {_show(value)} is negative: times are seconds >= 0")
    if number > EPOCH_CEIL:
        raise ValueError(
            f"{where} {_show(value)} is after 2100 as epoch seconds "
            "(leave the end out to mean: until the end of the capture)"
        )
    return number


def offset_seconds(value: object, where: str) -> float:
    """A clock offset: finite seconds, at most :data:`OFFSET_MAX` either way."""
    number = _number(value, where)
    if abs(number) > OFFSET_MAX:
        raise ValueError(f"{where} {_show(value)} is more than a century: not a clock offset")
    return number


def _show(value: object) -> str:
    """The value for a message, cut short (a 5,000-digit integer stays readable)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        digits = int(value.bit_length() * math.log10(2)) + 1  # str() refuses > 4,300 digits
        return f"(an integer of about {digits} digits)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
