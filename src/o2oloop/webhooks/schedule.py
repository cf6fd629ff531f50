"""When to try a delivery again, and when to give up on an endpoint: pure functions."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

# Most a receiver's Retry-After may push an attempt back.
MAX_RETRY_AFTER = timedelta(hours=24)


def next_attempt_delay(
    schedule: Sequence[float],
    attempts_made: int,
    *,
    jitter: float = 0.0,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> timedelta | None:
    """The wait before the next attempt after `attempts_made` attempts, or None when the
    schedule has run out. `schedule[i]` is the wait before attempt i + 1 (the first is
    normally 0: immediately). Jitter spreads retries by up to ±`jitter` of the wait, so an
    outage's backlog does not come back all at once; a receiver's Retry-After (429, 503) is
    honoured as a floor, up to a day."""
    if attempts_made >= len(schedule):
        return None
    base = float(schedule[attempts_made])
    if jitter and base:
        base *= 1 + (rng or random).uniform(-jitter, jitter)
    if retry_after is not None:
        base = max(base, min(retry_after, MAX_RETRY_AFTER.total_seconds()))
    return timedelta(seconds=max(base, 0.0))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given as delay-seconds; dates and junk are ignored."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def should_disable(
    *,
    failing_since: datetime | None,
    consecutive_failures: int,
    now: datetime,
    disable_after: timedelta,
    max_consecutive_failures: int,
) -> bool:
    """Whether an endpoint has failed long enough, or often enough in a row, to be disabled."""
    if consecutive_failures >= max_consecutive_failures:
        return True
    return failing_since is not None and now - failing_since >= disable_after


def is_success(status: int | None) -> bool:
    """2xx only: a redirect is a failure (never followed), as is any other answer."""
    return status is not None and 200 <= status < 300
