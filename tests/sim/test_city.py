"""The demo city runs the loop through the real services and is reproducible."""

from __future__ import annotations

from sqlalchemy import func, select

from o2oloop.codes.models import Redemption
from o2oloop.customers.models import Membership
from o2oloop.db import Database
from o2oloop.merchants.models import Merchant, Store
from o2oloop.sim.city import build_city
from o2oloop.visits.models import Visit


def _count(db: Database, model: type) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_small_city_runs_the_loop(sqlite_db: Database, frozen_clock) -> None:
    report = build_city(
        sqlite_db, secret_key="s" * 40, seed=3, merchants_count=6, consumers=300, days=60
    )
    assert _count(sqlite_db, Merchant) == 6
    assert _count(sqlite_db, Store) == 12
    assert _count(sqlite_db, Visit) == report.visits > 300
    assert _count(sqlite_db, Redemption) == report.redemptions > 0
    assert _count(sqlite_db, Membership) == report.relationships
    with sqlite_db.transaction() as session:
        first, last = session.execute(
            select(func.min(Visit.occurred_at), func.max(Visit.occurred_at))
        ).one()
    assert (last - first).days >= 45
    assert set(report.keys) >= {"platform_admin", "merchant_admin", "terminal", "consumer"}


def test_same_seed_same_city(sqlite_template, tmp_path, frozen_clock) -> None:
    import shutil

    counts = []
    for run in ("a", "b"):
        path = tmp_path / f"{run}.db"
        shutil.copy(sqlite_template, path)
        db = Database.from_url(f"sqlite:///{path}")
        report = build_city(
            db, secret_key="s" * 40, seed=11, merchants_count=4, consumers=150, days=30
        )
        counts.append((report.visits, report.claims, report.redemptions, report.relationships))
        db.dispose()
    assert counts[0] == counts[1]
