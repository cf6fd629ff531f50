"""Server time per console page (dashboard, members table): p50/p95 over real HTTP.

Two merchants: the demo city's busiest merchant (a database built by `o2oloop demo`, given
with --demo-db; skipped when absent) and a synthetic merchant with 100,000 members (scores,
memberships and eight weeks of visits bulk-inserted). Each page is requested by a signed-in
owner over loopback from uvicorn in this process; GET /healthz and a bare page (/reset: a
template and the session, no data) in the same run are the floors. The dashboard reads the
hourly aggregate (`store_hours`), which the synthetic merchant gets from the backfill
(`o2oloop dashboard rebuild`, timed as `backfill_seconds`). Targets: p95 ≤ 150 ms (demo
city), ≤ 400 ms (100,000).

    .venv/bin/python benchmarks/pages.py [--members 100000] [--requests 40] [--demo-db PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn
from _support import PLATFORM, emit, free_port, machine, make_tenant, migrated, secret_key
from sqlalchemy import func, insert, select

from o2oloop import clock, migrations
from o2oloop.analytics.models import MemberScore, Segment, SpendingLevel
from o2oloop.api import create_app
from o2oloop.auth.models import Role
from o2oloop.config import Settings
from o2oloop.customers.models import Consumer, Membership, MemberSource
from o2oloop.dashboard import backfill
from o2oloop.db import Database, new_id
from o2oloop.people import service as people
from o2oloop.people.models import Person
from o2oloop.visits.models import Visit, VisitSource

PASSWORD = "benchmark violin harbour"
PAGES = {"dashboard": "/console", "members": "/console/members"}


def _chunks(rows: list[dict], size: int = 5000):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def populate(db: Database, members: int) -> str:
    """A merchant with `members` members, their scores and eight weeks of visits."""
    tenant = make_tenant(db, stores=2)
    rng = random.Random(1)
    now = clock.now()
    segments = list(Segment)
    levels = list(SpendingLevel)
    consumers, memberships, scores, visits = [], [], [], []
    for n in range(members):
        consumer_id, member_id = new_id("con"), new_id("mem")
        first = now - timedelta(days=rng.uniform(1, 360))
        last = now - timedelta(days=rng.uniform(0, 60))
        consumers.append({"id": consumer_id, "display_name": "", "created_at": first})
        memberships.append(
            {
                "id": member_id,
                "merchant_id": tenant.merchant_id,
                "consumer_id": consumer_id,
                "source": MemberSource.POS,
                "marketing_consent": n % 3 == 0,
                "first_visit_at": first,
                "last_visit_at": last,
                "visit_count": rng.randint(1, 30),
                "total_spent": rng.randint(1000, 500000),
                "created_at": first,
                "updated_at": last,
            }
        )
        scores.append(
            {
                "member_id": member_id,
                "merchant_id": tenant.merchant_id,
                "consumer_id": consumer_id,
                "as_of": now,
                "visits": rng.randint(1, 30),
                "frequency": rng.randint(0, 29),
                "recency_days": 30.0,
                "age_days": 90.0,
                "days_since_last": 10.0,
                "total_spent": rng.randint(1000, 500000),
                "average_spend": rng.randint(1000, 20000),
                "coupon_share": rng.random(),
                "r_score": 3,
                "f_score": 3,
                "m_score": 3,
                "rfm": "333",
                "p_alive": rng.random(),
                "expected_visits_30d": rng.random() * 3,
                "buying_cycle_days": rng.uniform(3, 60),
                "expected_next_visit_at": now + timedelta(days=rng.uniform(-20, 40)),
                "expected_average_spend": rng.randint(1000, 20000),
                "clv": rng.randint(0, 800000),
                "segment": rng.choice(segments),
                "spending_level": rng.choice(levels),
                "home_cell": None,
                "computed_at": now,
            }
        )
        for _ in range(rng.choice((0, 1, 1, 2, 3))):  # about 150,000 visits in 8 weeks
            at = now - timedelta(days=rng.uniform(0, 56), hours=rng.uniform(0, 10))
            visits.append(
                {
                    "id": new_id("vis"),
                    "merchant_id": tenant.merchant_id,
                    "store_id": tenant.store_id,
                    "consumer_id": consumer_id,
                    "member_id": member_id,
                    "amount": rng.randint(1000, 30000),
                    "currency": "CNY",
                    "occurred_at": at,
                    "source": VisitSource.POS,
                    "items": [],
                    "created_at": at,
                }
            )
    with db.transaction() as session:
        for table, rows in (
            (Consumer, consumers),
            (Membership, memberships),
            (MemberScore, scores),
            (Visit, visits),
        ):
            for chunk in _chunks(rows):
                session.execute(insert(table), chunk)
    return tenant.merchant_id


def busiest_merchant(db: Database) -> str | None:
    with db.reading() as session:
        return session.scalar(
            select(Membership.merchant_id)
            .group_by(Membership.merchant_id)
            .order_by(func.count().desc())
            .limit(1)
        )


def owner_of(db: Database, merchant_id: str, email: str) -> str:
    with db.transaction() as session:
        if session.scalar(select(Person.id).where(Person.email == email)) is None:
            people.create_person(
                session,
                principal=PLATFORM,
                email=email,
                password=PASSWORD,
                role=Role.MERCHANT_ADMIN,
                merchant_id=merchant_id,
            )
    return email


def measure(db: Database, merchant_id: str, requests: int, label: str) -> dict[str, object]:
    email = owner_of(db, merchant_id, f"bench-{merchant_id[-8:]}@example.com")
    settings = Settings(env="test", secret_key=secret_key(), access_log=False)
    app = create_app(settings, db)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get("/signin").text)
            assert token
            client.post(
                "/signin", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
            )
            figures: dict[str, object] = {"merchant": label}
            floors = {"floor_healthz": "/healthz", "floor_bare_page": "/reset"}
            for name, path in {**floors, **PAGES}.items():
                assert client.get(path).status_code == 200  # warm
                times = []
                for _ in range(requests):
                    started = time.perf_counter()
                    answer = client.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200, (path, answer.status_code)
                times.sort()
                figures[name] = {
                    "p50_ms": round(statistics.median(times), 1),
                    "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
                    "requests": requests,
                }
            return figures
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def synthetic(path: Path, args: argparse.Namespace) -> dict[str, object]:
    """Build the 100,000-member merchant, count its hours (the backfill), measure."""
    db = migrated(f"sqlite:///{path}")
    started = time.perf_counter()
    merchant_id = populate(db, args.members)
    build = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    with db.transaction() as session:
        hours = backfill.rebuild(session, merchant_id=merchant_id)
    backfilled = round(time.perf_counter() - started, 1)
    figures = measure(db, merchant_id, args.requests, f"synthetic, {args.members} members")
    figures["build_seconds"] = build
    figures["backfill_seconds"] = backfilled
    figures["store_hours"] = hours
    db.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--demo-db", type=Path, default=Path(".o2oloop/o2oloop.db"))
    parser.add_argument(
        "--synthetic-db", type=Path, help="reuse a synthetic database built by an earlier run"
    )
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    if args.demo_db.exists():
        demo = Database.from_url(f"sqlite:///{args.demo_db}")
        migrations.upgrade(demo)
        merchant_id = busiest_merchant(demo)
        if merchant_id:
            with demo.reading() as session:
                count = session.scalar(
                    select(func.count()).where(Membership.merchant_id == merchant_id)
                )
            results.append(
                measure(demo, merchant_id, args.requests, f"demo city, busiest ({count} members)")
            )
        demo.dispose()
    if args.synthetic_db and args.synthetic_db.exists():
        db = migrated(f"sqlite:///{args.synthetic_db}")
        merchant_id = busiest_merchant(db)
        assert merchant_id
        results.append(measure(db, merchant_id, args.requests, "synthetic (reused)"))
        db.dispose()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(synthetic(Path(args.synthetic_db or f"{tmp}/pages.db"), args))
    emit(
        {
            "benchmark": "pages",
            "machine": machine(),
            "load_average": [round(n, 2) for n in os.getloadavg()],
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
