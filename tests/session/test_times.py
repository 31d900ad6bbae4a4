"""Tests for decoders.session.times: which numbers can be times, and the messages for the rest."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders.session.times import (
    EPOCH_CEIL,
    EPOCH_FLOOR,
    OFFSET_MAX,
    epoch_seconds,
    offset_seconds,
    timeline_seconds,
)


def test_plausible_times_pass_unchanged() -> None:
    assert epoch_seconds(1795990808.7065, "t") == 1795990808.7065
    assert epoch_seconds(1795990808, "t") == 1795990808.0
    assert timeline_seconds(0, "start") == 0.0
    assert timeline_seconds(12.5, "start") == 12.5
    assert timeline_seconds(EPOCH_CEIL, "end") == EPOCH_CEIL
    assert offset_seconds(-3600, "--clock-offset") == -3600.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, "t nan is not a finite number of seconds"),
        (math.inf, "t inf is not a finite number of seconds"),
        (-math.inf, "t -inf is not a finite number of seconds"),
        (1e308, "t 1e+308 is not a plausible time"),
        (-1.0, "t -1.0 is not a plausible time"),
        (5.0, "t 5.0 is not a plausible time"),  # 1970: no recording is that old
        (9999999999, "t 9999999999 is not a plausible time"),  # 2286
        (10**400, "t (an integer of about 401 digits) is not a time (too large)"),
        pytest.param(10**5000, "(an integer of about 5001 digits)", id="5000-digits"),
        ("1795990808", "t '1795990808' is not a number of seconds"),
        (True, "t True is not a number of seconds"),
        (None, "t None is not a number of seconds"),
        ([1795990808], "is not a number of seconds"),
    ],
)
def test_epoch_seconds_refuses_what_is_no_time(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        epoch_seconds(value, "t")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-0.5, "is negative"),
        (9999999999, "after 2100 as epoch seconds (leave the end out"),
        (math.nan, "not a finite number"),
        ("12", "not a number of seconds"),
    ],
)
def test_timeline_seconds_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        timeline_seconds(value, "muted[0][1]")


@pytest.mark.parametrize("value", [math.nan, math.inf, OFFSET_MAX * 2, "1"])
def test_offset_seconds_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="--clock-offset"):
        offset_seconds(value, "--clock-offset")


@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**600), max_value=10**600),
        st.text(max_size=5),
        st.booleans(),
        st.none(),
    )
)
def test_a_time_that_passes_is_in_range_and_anything_else_is_value_error(value: object) -> None:
    """Nothing but ValueError escapes, and what passes fits int64 nanoseconds."""
    try:
        t = epoch_seconds(value, "t")
    except ValueError:
        pass
    else:
        assert EPOCH_FLOOR <= t <= EPOCH_CEIL and t * 1e9 < 2**63
    try:
        s = timeline_seconds(value, "start")
    except ValueError:
        pass
    else:
        assert 0 <= s <= EPOCH_CEIL and s * 1e9 < 2**63
