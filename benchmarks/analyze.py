"""Benchmark: `analyze` over N members and about 10 N visits (default 1,000,000 / 10,000,000).

Visits follow a known BG/NBD process (exact: given x repeats with the last at t_x, the others
are uniform on (0, t_x)); spends are Gamma around each member's own mean; one visit in ten
used a code. The data are bulk-loaded (not timed), then `analyze` runs in a fresh process so
its peak memory is its own. Prints one JSON object. Targets: under 120 s and 4 GiB.

    .venv/bin/python benchmarks/analyze.py [--customers N] [--merchants M] [--url URL]

Without --url a SQLite file in a temporary directory is used; give a PostgreSQL URL
(postgresql+psycopg://…, an empty database) to measure the production backend.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from itertools import repeat

import numpy as np
from _bulkload import bulk_loading

from o2oloop import migrations
from o2oloop.analytics.bgnbd import BgNbdParams, simulate_bgnbd
from o2oloop.db import Database

TRUE = BgNbdParams(r=2.0, alpha=25.0, a=1.0, b=12.0)
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
CHUNK = 200_000


def _ids(prefix: str, n: int, start: int = 0) -> list[str]:
    # Sortable, unique, the same shape as real ids (prefix + 26 base-32 characters).
    return [f"{prefix}_{i:026d}" for i in range(start, start + n)]


def _stamp(epoch: np.ndarray, sqlite: bool) -> list[str]:
    text = np.datetime_as_string(epoch.astype("datetime64[us]"), unit="us")
    return [t.replace("T", " ") for t in text] if sqlite else [t + "+00:00" for t in text]


def _load(db: Database, customers: int, merchants: int, seed: int) -> dict[str, float]:
    """Merchants, stores, consumers, their memberships and visits, as the product holds them.

    Members' counters (visits, spend, first and last visit) agree with their visits, as the
    visits service keeps them. Rows go in through `_bulkload` (indexes built once, after).
    """
    rng = np.random.default_rng(seed)
    sqlite = db.dialect == "sqlite"
    T = rng.uniform(30, 400, customers)
    x, t_x = simulate_bgnbd(TRUE, T, customers, rng)
    per = x + 1
    owner = np.repeat(np.arange(customers), per)
    first_epoch = AS_OF.timestamp() - T * 86_400
    # Offsets in days: the first visit at 0, the last repeat at t_x, the others uniform between.
    position = np.arange(owner.size) - np.repeat(np.cumsum(per) - per, per)
    last = position == np.repeat(per - 1, per)
    offset = np.where(position == 0, 0.0, rng.uniform(0, 1, owner.size) * t_x[owner])
    offset = np.where(last & (position > 0), t_x[owner], offset)
    occurred = first_epoch[owner] + offset * 86_400
    mean_spend = rng.gamma(6.0, 1_000.0, customers)
    amount = np.maximum(rng.gamma(4.0, mean_spend[owner] / 4.0), 100).astype(np.int64)
    coupon = rng.uniform(0, 1, owner.size) < 0.1
    merchant_of = rng.integers(0, merchants, customers)
    # Each merchant has two stores; four visits in five are at the first.
    store = merchant_of[owner] * 2 + (rng.uniform(0, 1, owner.size) >= 0.8)

    merchant_ids, store_ids = _ids("mer", merchants), _ids("sto", 2 * merchants)
    started = time.perf_counter()
    _merchants_and_stores(db, merchant_ids, store_ids)
    of_merchant = np.array(merchant_ids, dtype=object)[merchant_of]
    consumer_ids = np.array(_ids("csm", customers), dtype=object)
    member_ids = np.array(_ids("mem", customers), dtype=object)
    first_seen = _stamp(first_epoch * 1e6, sqlite)
    last_seen = _stamp((first_epoch + t_x * 86_400) * 1e6, sqlite)
    spent = np.bincount(owner, weights=amount, minlength=customers).astype(np.int64)
    with bulk_loading(db, ("consumers", "memberships", "visits")) as load:
        load(
            "consumers", ("id", "display_name", "created_at"),
            zip(consumer_ids.tolist(), repeat(""), first_seen),
        )  # fmt: skip
        load(
            "memberships",
            ("id", "merchant_id", "consumer_id", "source", "marketing_consent", "visit_count",
             "total_spent", "first_visit_at", "last_visit_at", "created_at", "updated_at"),
            zip(member_ids.tolist(), of_merchant.tolist(), consumer_ids.tolist(), repeat("pos"),
                repeat(False), per.astype(np.int64).tolist(), spent.tolist(), first_seen,
                last_seen, first_seen, last_seen),
        )  # fmt: skip
        codes = np.where(coupon, "K7QX2M9P", None)
        for start in range(0, owner.size, CHUNK):
            end = min(start + CHUNK, owner.size)
            who = owner[start:end]
            stamps = _stamp(occurred[start:end] * 1e6, sqlite)
            load(
                "visits",
                ("id", "merchant_id", "store_id", "consumer_id", "member_id", "amount", "currency",
                 "occurred_at", "source", "code", "items", "created_at"),
                zip([f"vis_{i:026d}" for i in range(start, end)], of_merchant[who].tolist(),
                    [store_ids[s] for s in store[start:end].tolist()], consumer_ids[who].tolist(),
                    member_ids[who].tolist(), amount[start:end].tolist(), repeat("CNY"), stamps,
                    repeat("pos"), codes[start:end].tolist(), repeat("[]"), stamps),
            )  # fmt: skip
        rows_seconds = time.perf_counter() - started
    return {
        "visits": float(owner.size),
        "load_seconds": time.perf_counter() - started,
        "rows_seconds": rows_seconds,
    }


def _merchants_and_stores(db: Database, merchant_ids: list[str], store_ids: list[str]) -> None:
    from sqlalchemy import insert

    from o2oloop.merchants.models import Merchant, Store

    with db.engine.begin() as conn:
        conn.execute(
            insert(Merchant),
            [
                {
                    "id": m, "name": m, "category": "catering", "currency": "CNY",
                    "timezone": "Asia/Shanghai", "country": "CN", "commission_bps": 500,
                    "active": True, "created_at": AS_OF, "updated_at": AS_OF,
                }
                for m in merchant_ids
            ],
        )  # fmt: skip
        conn.execute(
            insert(Store),
            [
                {
                    "id": s, "merchant_id": merchant_ids[i // 2], "name": s, "address": "",
                    "latitude": 31.0 + (i % 50) * 0.01, "longitude": 121.0 + (i // 50) * 0.01,
                    "timezone": "Asia/Shanghai", "opening_hours": {}, "capacity_per_hour": 50,
                    "capacity_overrides": [], "active": True, "created_at": AS_OF,
                    "updated_at": AS_OF,
                }
                for i, s in enumerate(store_ids)
            ],
        )  # fmt: skip


def _analyze_only(url: str) -> None:
    import o2oloop.models  # noqa: F401  (every table, so foreign keys resolve)
    from o2oloop.analytics import service as analytics

    db = Database.from_url(url)
    started = time.perf_counter()
    with db.transaction() as session:
        summary = analytics.analyze(session, as_of=AS_OF + timedelta(seconds=1))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "members": summary.members,
                "merchants": summary.merchants,
                "platform_fallbacks": summary.platform_fallbacks,
                "analyze_seconds": round(seconds, 2),
                "peak_memory_gib": round(peak / 2**30, 3),
            }
        )
    )
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--url", default="")
    parser.add_argument("--analyze-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.analyze_only:
        _analyze_only(args.url)
        return
    scratch = tempfile.mkdtemp(prefix="o2o-bench-")
    url = args.url or f"sqlite:///{scratch}/analyze.db"
    db = Database.from_url(url)
    migrations.upgrade(db)
    loaded = _load(db, args.customers, args.merchants, args.seed)
    db.dispose()
    child = subprocess.run(
        [sys.executable, __file__, "--analyze-only", "--url", url],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        json.dumps(
            {
                "benchmark": "analyze",
                "backend": db.dialect,
                "customers": args.customers,
                "visits": int(loaded["visits"]),
                "load_seconds": round(loaded["load_seconds"], 1),
                **result,
                "target_seconds": 120,
                "target_memory_gib": 4,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
