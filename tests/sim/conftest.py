"""One small demo city, built once per test run and copied for each test that reads it.

Building a city is the slowest thing the suite does (a minute or two), and most city tests
only look at what one build left behind, so they share a build: the first test (of either
xdist worker) builds it under a file lock into the run's shared temporary folder, and each
test gets its own copy of the database file, so what one test writes no other sees.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from city_kit import City, SharedCity
from o2oloop import clock
from o2oloop.db import Database
from o2oloop.sim.city import build_city

SECRET = "s" * 40
# The end of the simulated period: the `frozen_clock` fixture's now, so tests that look
# back from now see the city's last days.
END = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SIZE = {"seed": 3, "merchants_count": 6, "consumers": 600, "days": 90}


def _run_folder(factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of this run that every xdist worker of it shares."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def shared_city(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> SharedCity:
    folder = _run_folder(tmp_path_factory)
    path, facts = folder / "small-city.db", folder / "small-city.pickle"
    with open(folder / "small-city.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not facts.exists():
            shutil.copy(sqlite_template, path)
            db = Database.from_url(f"sqlite:///{path}")
            seen: list[tuple[dict[str, str], int]] = []
            with clock.using(clock.FrozenClock(END)):
                report = build_city(
                    db,
                    secret_key=SECRET,
                    end=END,
                    on_logins=lambda r: seen.append((dict(r.keys), r.visits)),
                    **SIZE,
                )
            db.dispose()
            facts.write_bytes(pickle.dumps((report, seen)))
    report, seen = pickle.loads(facts.read_bytes())
    return SharedCity(path=path, report=report, logins_seen=seen)


@pytest.fixture
def city(shared_city: SharedCity, tmp_path: Path) -> Iterator[City]:
    """This test's own copy of the shared city."""
    path = tmp_path / "city.db"
    shutil.copy(shared_city.path, path)
    db = Database.from_url(f"sqlite:///{path}")
    yield City(db=db, report=shared_city.report, logins_seen=shared_city.logins_seen)
    db.dispose()
