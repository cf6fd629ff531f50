"""Opening hours and slot capacity: pure functions over a store's weekly schedule.

Hours are local to the store. An interval whose close is at or before its open runs past
midnight into the next day ("18:00"–"02:00"), and belongs to the weekday it opens on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hhmm(value: str) -> time:
    """'HH:MM' → time; '24:00' is allowed as a close meaning end of day."""
    if len(value) != 5 or value[2] != ":" or not (value[:2] + value[3:]).isdigit():
        raise ValueError(f"{value!r} is not HH:MM")
    hour, minute = int(value[:2]), int(value[3:])
    if value == "24:00":
        return time(0, 0)
    if hour > 23 or minute > 59:
        raise ValueError(f"{value!r} is not a time of day")
    return time(hour, minute)


def _minutes(value: str) -> int:
    t = parse_hhmm(value)
    return t.hour * 60 + t.minute


def is_open(hours: Mapping[str, Sequence[Mapping[str, str]]], local: datetime) -> bool:
    """Whether the store is open at this store-local moment."""
    minute_of_day = local.hour * 60 + local.minute
    today = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    for interval in hours.get(today, ()):
        start, end = _minutes(interval["open"]), _minutes(interval["close"])
        if end > start and start <= minute_of_day < end:
            return True
        if end <= start and minute_of_day >= start:
            return True
    for interval in hours.get(yesterday, ()):
        start, end = _minutes(interval["open"]), _minutes(interval["close"])
        if end <= start and minute_of_day < end:
            return True
    return False


def capacity_at(
    capacity_per_hour: int, overrides: Sequence[Mapping[str, Any]], weekday: int, hour: int
) -> int:
    """Capacity of one hourly slot: an override for (weekday, hour) or the default."""
    name = WEEKDAYS[weekday]
    for override in overrides:
        if override["weekday"] == name and override["hour"] == hour:
            return int(override["capacity"])
    return capacity_per_hour
