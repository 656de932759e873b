"""The retry timing in device/retry.py: the capped exponential backoff and its policy object."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.retry import Backoff, backoff

_DELAYS = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
_BAD = st.sampled_from([-1.0, -0.5, math.nan, math.inf, -math.inf])


def test_backoff_examples() -> None:
    assert [backoff(n, 1.0, 60.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(10**9, 1.0, 60.0) == 60.0  # no overflow
    assert backoff(10**9, 0.0, 60.0) == 0.0
    assert backoff(1, 10.0, 5.0) == 5.0  # the cap wins


@given(attempt=st.integers(min_value=1, max_value=5000), initial=_DELAYS, maximum=_DELAYS)
def test_backoff_doubles_up_to_the_cap(attempt: int, initial: float, maximum: float) -> None:
    delay = backoff(attempt, initial, maximum)
    following = backoff(attempt + 1, initial, maximum)
    assert 0.0 <= delay <= maximum
    assert following == min(2 * delay, maximum)  # doubling is exact in binary floating point
    assert following >= delay
    assert backoff(1, initial, maximum) == min(initial, maximum)


@given(
    attempt=st.integers(max_value=0) | st.just(1),
    initial=_DELAYS | st.sampled_from([-1.0, math.nan, math.inf]),
    maximum=_DELAYS | st.sampled_from([-0.5, math.nan, math.inf]),
)
def test_backoff_rejects_bad_input(attempt: int, initial: float, maximum: float) -> None:
    valid = attempt >= 1 and all(math.isfinite(v) and v >= 0 for v in (initial, maximum))
    if valid:
        assert backoff(attempt, initial, maximum) <= maximum
    else:
        with pytest.raises(ValueError):
            backoff(attempt, initial, maximum)


@given(attempt=st.integers(min_value=1, max_value=5000), initial=_DELAYS, maximum=_DELAYS)
def test_policy_delay_is_the_function(attempt: int, initial: float, maximum: float) -> None:
    assert Backoff(initial, maximum).delay(attempt) == backoff(attempt, initial, maximum)


@given(good=_DELAYS, bad=_BAD, bad_first=st.booleans())
def test_policy_is_checked_when_built(good: float, bad: float, bad_first: bool) -> None:
    with pytest.raises(ValueError):
        Backoff(bad, good) if bad_first else Backoff(good, bad)


def test_policy_rejects_attempt_zero_and_is_frozen() -> None:
    policy = Backoff(0.5, 30.0)
    with pytest.raises(ValueError):
        policy.delay(0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.initial = 1.0  # type: ignore[misc]
    assert [policy.delay(n) for n in (1, 2, 7, 8)] == [0.5, 1.0, 30.0, 30.0]
