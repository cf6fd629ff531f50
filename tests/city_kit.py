"""The shared small demo city's facts, for the city tests (built by tests/sim/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from o2oloop.db import Database
from o2oloop.sim.world import CityReport


@dataclass(frozen=True)
class SharedCity:
    path: Path
    report: CityReport
    # What `on_logins` was called with while the city built: (keys, visits so far).
    logins_seen: list[tuple[dict[str, str], int]]


@dataclass(frozen=True)
class City:
    """One test's own copy of the shared city."""

    db: Database
    report: CityReport
    logins_seen: list[tuple[dict[str, str], int]]
