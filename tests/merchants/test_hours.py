"""Opening hours, including hours that run past midnight."""

from __future__ import annotations

from datetime import datetime

from o2oloop.merchants.hours import capacity_at, is_open

LATE_BAR = {
    "fri": [{"open": "18:00", "close": "02:00"}],
    "sat": [{"open": "11:00", "close": "14:00"}],
}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute)  # 2026-11-20 is a Friday


def test_hours_past_midnight_belong_to_the_opening_day() -> None:
    assert is_open(LATE_BAR, at(20, 18))
    assert is_open(LATE_BAR, at(20, 23, 59))
    assert is_open(LATE_BAR, at(21, 1, 59))  # Saturday early morning: Friday's night
    assert not is_open(LATE_BAR, at(21, 2, 0))
    assert not is_open(LATE_BAR, at(20, 17, 59))
    assert is_open(LATE_BAR, at(21, 12))
    assert not is_open(LATE_BAR, at(22, 1))  # no Saturday night opening


def test_capacity_overrides_one_slot() -> None:
    overrides = [{"weekday": "fri", "hour": 20, "capacity": 80}]
    assert capacity_at(40, overrides, 4, 20) == 80
    assert capacity_at(40, overrides, 4, 21) == 40
    assert capacity_at(40, overrides, 3, 20) == 40
