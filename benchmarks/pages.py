"""Server time per page (dashboard, members table, the cashier's terminal): p50/p95 over HTTP.

Two merchants: the demo city's busiest merchant (a database built by `o2oloop demo`, given
with --demo-db; skipped when absent) and a synthetic merchant with 100,000 members (scores,
memberships and eight weeks of visits bulk-inserted, its score summary counted as the analysis
counts it). Each console page is requested by a signed-in owner, the terminal page by a
paired terminal, over loopback from uvicorn in this process; each figure is the server's own
time (measured inside it) and the client's wait. GET /healthz and a bare page (/reset: a
template and the session, no data) in the same run are the floors. The dashboard reads the
hourly aggregate (`store_hours`), which the synthetic merchant gets from the backfill
(`o2oloop dashboard rebuild`, timed as `backfill_seconds`). Targets: p95 ≤ 150 ms (demo
city), ≤ 400 ms (100,000).

    .venv/bin/python benchmarks/pages.py [--members 100000] [--requests 40] [--demo-db PATH]
        [--synthetic-db PATH [--prepare-only]]

With --synthetic-db the synthetic database is built once (--prepare-only stops there) and
reused by later runs, so a timed run only measures.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn
from _support import (
    PLATFORM,
    ServerTimes,
    emit,
    free_port,
    machine,
    make_tenant,
    migrated,
    percentiles,
    secret_key,
)
from sqlalchemy import func, insert, select

from o2oloop import clock
from o2oloop.analytics import summary
from o2oloop.analytics.models import MemberScore, Segment, SpendingLevel
from o2oloop.api import create_app
from o2oloop.auth.models import Role
from o2oloop.config import Settings
from o2oloop.customers.models import Consumer, Membership, MemberSource
from o2oloop.dashboard import backfill
from o2oloop.db import Database, new_id
from o2oloop.merchants.models import Terminal
from o2oloop.people import service as people
from o2oloop.people.models import Person
from o2oloop.terminal import pairing
from o2oloop.visits.models import Visit, VisitSource

PASSWORD = "benchmark violin harbour"
PAGES = {"dashboard": "/console", "members": "/console/members"}


def _chunks(rows: list[dict], size: int = 5000):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def populate(db: Database, members: int) -> str:
    """A merchant with `members` members, their scores and eight weeks of visits."""
    tenant = make_tenant(db, stores=2, terminals=1)
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
        summary.refresh(session, tenant.merchant_id)  # as the analysis does with its scores
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


def terminal_cookie(db: Database, merchant_id: str, secret: str) -> str:
    """The device cookie of one of the merchant's terminals, paired as a cashier pairs it."""
    with db.transaction() as session:
        terminal_id = session.scalar(
            select(Terminal.id).where(Terminal.merchant_id == merchant_id, Terminal.active)
        )
        assert terminal_id, "the merchant needs a terminal"
        made = pairing.start(
            session, principal=PLATFORM, merchant_id=merchant_id, terminal_id=terminal_id,
            secret_key=secret,
        )  # fmt: skip
        return pairing.complete(session, code=made.code, secret_key=secret).token


def _timed(client: httpx.Client, path: str, requests: int) -> list[float]:
    assert client.get(path).status_code == 200  # warm
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return times


def measure(db: Database, merchant_id: str, requests: int, label: str) -> dict[str, object]:
    """Each page `requests` times in turn: the server's own time (first byte in to last byte
    out, inside the server) and what the client waited, p50/p95."""
    email = owner_of(db, merchant_id, f"bench-{merchant_id[-8:]}@example.com")
    secret = secret_key()
    cookie = terminal_cookie(db, merchant_id, secret)
    settings = Settings(env="test", secret_key=secret, access_log=False)
    timed = ServerTimes(create_app(settings, db))
    port = free_port()
    config = uvicorn.Config(timed, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    try:
        with (
            httpx.Client(base_url=base, timeout=60) as owner,
            httpx.Client(base_url=base, cookies={"o2o_terminal": cookie}, timeout=60) as till,
        ):
            token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', owner.get("/signin").text)
            assert token
            owner.post(
                "/signin", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
            )
            figures: dict[str, object] = {"merchant": label}
            for name, (client, path) in {
                "floor_healthz": (owner, "/healthz"),
                "floor_bare_page": (owner, "/reset"),
                **{page: (owner, path) for page, path in PAGES.items()},
                "terminal": (till, "/terminal"),
            }.items():
                waited = _timed(client, path, requests)
                server_side = timed.times.pop(f"GET {path}")[1:]  # less the warm-up
                figures[name] = {
                    "server": percentiles(server_side),
                    "client": percentiles(waited),
                }
            return figures
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def build_synthetic(path: Path, members: int) -> dict[str, object]:
    """Build the synthetic merchant at `path` and count its hours (the backfill)."""
    db = migrated(f"sqlite:///{path}")
    started = time.perf_counter()
    merchant_id = populate(db, members)
    build = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    with db.transaction() as session:
        hours = backfill.rebuild(session, merchant_id=merchant_id)
    db.dispose()
    return {
        "build_seconds": build,
        "backfill_seconds": round(time.perf_counter() - started, 1),
        "store_hours": hours,
    }


def measure_database(path: Path, requests: int, label: str) -> dict[str, object]:
    """The busiest merchant of the database at `path` (migrated first), measured."""
    db = migrated(f"sqlite:///{path}")
    merchant_id = busiest_merchant(db)
    assert merchant_id, f"no merchant in {path}"
    with db.reading() as session:
        count = session.scalar(select(func.count()).where(Membership.merchant_id == merchant_id))
    figures = measure(db, merchant_id, requests, f"{label} ({count} members)")
    db.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--demo-db", type=Path, default=Path(".o2oloop/o2oloop.db"))
    parser.add_argument(
        "--synthetic-db", type=Path, help="the synthetic database: built there if absent, reused"
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="build the synthetic database and stop"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.synthetic_db or Path(tmp) / "pages.db"
        built = None if path.exists() else build_synthetic(path, args.members)
        if args.prepare_only:
            emit({"benchmark": "pages", "prepared": str(path), "built": built})
            return
        results: list[dict[str, object]] = []
        if args.demo_db.exists():
            results.append(measure_database(args.demo_db, args.requests, "demo city, busiest"))
        results.append(measure_database(path, args.requests, "synthetic") | {"built": built})
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
