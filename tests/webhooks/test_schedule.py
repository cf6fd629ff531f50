"""The retry schedule and the disable rule, as pure functions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from o2oloop.config import Settings
from o2oloop.webhooks import schedule

SPEC = [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]


def test_the_default_schedule_is_the_specs_example() -> None:
    assert Settings().webhooks_retry_schedule == SPEC
    waits = [schedule.next_attempt_delay(SPEC, n) for n in range(1, len(SPEC))]
    assert [w.total_seconds() for w in waits if w is not None] == SPEC[1:]
    # Ten attempts spanning 75 h 35 min 5 s, as the spec's table says; then no more.
    assert sum(SPEC) == 75 * 3600 + 35 * 60 + 5
    assert schedule.next_attempt_delay(SPEC, len(SPEC)) is None


@given(
    attempts=st.integers(min_value=0, max_value=len(SPEC) - 1),
    jitter=st.floats(min_value=0, max_value=1),
    seed=st.integers(),
)
def test_jitter_stays_within_its_fraction(attempts: int, jitter: float, seed: int) -> None:
    wait = schedule.next_attempt_delay(SPEC, attempts, jitter=jitter, rng=random.Random(seed))
    assert wait is not None
    base = SPEC[attempts]
    assert base * (1 - jitter) - 1e-6 <= wait.total_seconds() <= base * (1 + jitter) + 1e-6


def test_retry_after_is_a_floor_up_to_a_day() -> None:
    assert schedule.next_attempt_delay(SPEC, 1, retry_after=120) == timedelta(seconds=120)
    assert schedule.next_attempt_delay(SPEC, 2, retry_after=1) == timedelta(seconds=300)
    assert schedule.next_attempt_delay(SPEC, 1, retry_after=10**9) == timedelta(hours=24)
    assert schedule.parse_retry_after("30") == 30
    assert schedule.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert schedule.parse_retry_after("-5") is None


def test_an_endpoint_is_disabled_after_days_of_failure_or_many_in_a_row() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    rule = {"now": now, "disable_after": timedelta(days=5), "max_consecutive_failures": 100}
    assert not schedule.should_disable(failing_since=None, consecutive_failures=0, **rule)
    recent = now - timedelta(days=4, hours=23)
    assert not schedule.should_disable(failing_since=recent, consecutive_failures=99, **rule)
    assert schedule.should_disable(failing_since=recent, consecutive_failures=100, **rule)
    old = now - timedelta(days=5)
    assert schedule.should_disable(failing_since=old, consecutive_failures=1, **rule)


def test_only_2xx_is_success() -> None:
    assert [s for s in (None, 199, 200, 204, 299, 301, 410, 500) if schedule.is_success(s)] == [
        200,
        204,
        299,
    ]
