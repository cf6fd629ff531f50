"""Nearby search latency with 100,000 stores and 300,000 published offers.

Usage: ``python benchmarks/nearby.py [--db sqlite|postgresql|both] [--stores 100000]
[--offers-per-store 3] [--requests 1000]``

Per database:

1. **load** in bulk (``executemany`` on SQLite, ``COPY`` on PostgreSQL): merchants of two
   stores each on average, stores scattered like a city of 100 x 100 km around Shanghai
   (a dense centre: half the stores within ~15 km), their H3 cells exactly as
   ``channels.store_index.index_store`` writes them, and published coupons of several kinds
   and values (3 per store by default, every offer valid at every store of its merchant);
   70 % of the stores carry a review rating (3.0-5.0), which sort=rating ranks by.
2. **in process**: ``channels.nearby.search`` in a read session, ``--requests`` times, from
   points drawn like the stores (consumers live where the shops are), with radius 500 m,
   1 km or 2 km and sort by distance, value or rating; p50/p99 per radius, per sort and
   overall. The
   floor beside it: the same read session running ``SELECT 1``.
3. **over HTTP**: ``o2oloop serve --workers 2`` and one keep-alive client sending the same
   queries (``GET /v1/offers/nearby`` with a consumer key); the floor is ``GET /healthz``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _support
import httpx
import numpy as np
from sqlalchemy import text

from o2oloop import clock
from o2oloop.channels import geo, nearby
from o2oloop.customers import service as customers
from o2oloop.db import Database

CENTRE = (31.23, 121.47)
RADII = (500, 1_000, 2_000)
SORTS = ("distance", "distance", "value", "rating")


def _bulk(raw: Any, sqlite: bool, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    names = ", ".join(columns)
    if sqlite:
        marks = ", ".join("?" for _ in columns)
        raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        return
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Half around a dense centre (sigma 15 km), half spread over 100 x 100 km."""
    dense = n // 2
    north = np.concatenate([rng.normal(0, 15_000, dense), rng.uniform(-50_000, 50_000, n - dense)])
    east = np.concatenate([rng.normal(0, 15_000, dense), rng.uniform(-50_000, 50_000, n - dense)])
    lat = CENTRE[0] + north / 111_195
    lng = CENTRE[1] + east / (111_195 * np.cos(np.radians(CENTRE[0])))
    return lat, lng


def load(db: Database, stores: int, offers_per_store: int, seed: int = 7) -> dict[str, float]:
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    sqlite = db.dialect == "sqlite"
    now = datetime(2026, 6, 1, tzinfo=UTC)
    stamp = now.isoformat(sep=" ") if not sqlite else now.strftime("%Y-%m-%d %H:%M:%S.%f")
    merchants = stores // 2
    hours = json.dumps({d: [{"open": "10:00", "close": "22:00"}] for d in _DAYS})
    categories = ("catering", "leisure", "fitness", "education", "retail")
    merchant_rows = [
        (f"mer_{i:026d}", f"Merchant {i}", categories[i % 5], "CNY", "Asia/Shanghai", "CN", 500,
         True, stamp, stamp)
        for i in range(merchants)
    ]  # fmt: skip
    owner = rng.integers(0, merchants, stores)
    owner[:merchants] = np.arange(merchants)  # every merchant has a store
    lat, lng = _points(rng, stores)
    store_rows = [
        (f"sto_{i:026d}", f"mer_{owner[i]:026d}", f"Store {i}", "", float(lat[i]), float(lng[i]),
         "Asia/Shanghai", hours, 50, "[]", True, stamp, stamp)
        for i in range(stores)
    ]  # fmt: skip
    rated = np.flatnonzero(rng.random(stores) < RATED_SHARE)  # sort=rating reads these
    averages = rng.uniform(3.0, 5.0, stores).round(2)
    counts = rng.integers(1, 300, stores)
    rating_rows = [(f"sto_{i:026d}", float(averages[i]), int(counts[i]), stamp) for i in rated]
    cell_rows = [
        (cell, f"sto_{i:026d}", f"mer_{owner[i]:026d}", *geo.unit_vector(lat[i], lng[i]))
        for i in range(stores)
        for cell in geo.cells_of(lat[i], lng[i])
    ]
    n_offers = stores * offers_per_store
    offer_owner = rng.integers(0, merchants, n_offers)
    amounts = rng.integers(1, 50, n_offers) * 100
    offer_rows = [
        (f"ofr_{i:026d}", f"mer_{offer_owner[i]:026d}", "coupon", "published", f"{i} off",
         "", "CNY", "amount_off", int(amounts[i]), "", "[]", "[]", False, 0, stamp, stamp)
        for i in range(n_offers)
    ]  # fmt: skip
    cell_rows.sort()  # in key order: index pages are filled once, not revisited at random
    tables = [
        ("merchants", ("id", "name", "category", "currency", "timezone", "country",
                       "commission_bps", "active", "created_at", "updated_at"), merchant_rows),
        ("stores", ("id", "merchant_id", "name", "address", "latitude", "longitude", "timezone",
                    "opening_hours", "capacity_per_hour", "capacity_overrides", "active",
                    "created_at", "updated_at"), store_rows),
        ("store_cells", ("cell", "store_id", "merchant_id", "x", "y", "z"), cell_rows),
        ("store_ratings", ("store_id", "average", "count", "updated_at"), rating_rows),
        ("offers", ("id", "merchant_id", "kind", "state", "title", "description", "currency",
                    "discount_kind", "amount_off", "includes", "topup_tiers", "time_windows",
                    "new_customers_only", "issued_count", "created_at", "updated_at"),
         offer_rows),
    ]  # fmt: skip
    pooled = db.engine.raw_connection()
    raw = pooled.driver_connection
    try:
        if sqlite:
            # A big enough page cache that a load never spills the same page to the WAL twice.
            raw.execute("PRAGMA cache_size = -262144")
        for table, columns, rows in tables:
            if sqlite:
                raw.execute("BEGIN")  # the driver autocommits each row otherwise
            _bulk(raw, sqlite, table, columns, rows)
            raw.commit()
            if sqlite:
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if sqlite:
            raw.execute("ANALYZE")
            raw.commit()
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # readers need not walk the WAL
        else:
            # As autovacuum would have by now: index-only scans find their pages all-visible.
            raw.autocommit = True
            raw.execute("VACUUM ANALYZE")
    finally:
        pooled.close()
    return {
        "merchants": merchants,
        "stores": stores,
        "store_cells": len(cell_rows),
        "rated_stores": len(rating_rows),
        "published_offers": n_offers,
        "load_seconds": round(time.perf_counter() - started, 1),
    }


RATED_SHARE = 0.7  # stores with published reviews, whose rating sort=rating ranks by
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def queries(n: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    lat, lng = _points(rng, n)
    return [
        {
            "lat": round(float(lat[i]), 6),
            "lng": round(float(lng[i]), 6),
            "radius_m": RADII[i % len(RADII)],
            "sort": SORTS[i % len(SORTS)],
        }
        for i in range(n)
    ]


def _percentiles(samples: list[float]) -> dict[str, float]:
    values = np.array(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "max_ms": round(float(values.max()), 2),
    }


def _figures(samples: list[float], qs: list[dict[str, Any]]) -> dict[str, Any]:
    figures: dict[str, Any] = {"all": _percentiles(samples)}
    for radius in RADII:
        figures[f"radius_{radius}"] = _percentiles(
            [s for s, q in zip(samples, qs, strict=True) if q["radius_m"] == radius]
        )
    for sort in dict.fromkeys(SORTS):
        figures[f"sort_{sort}"] = _percentiles(
            [s for s, q in zip(samples, qs, strict=True) if q["sort"] == sort]
        )
    return figures


def in_process(db: Database, qs: list[dict[str, Any]]) -> dict[str, Any]:
    now = clock.now()
    samples, floor, found = [], [], []
    for q in qs[:50]:  # warm the caches the server's workers would have warm
        with db.reading() as session:
            nearby.search(session, query=_query(q), now=now)
    for q in qs:
        t0 = time.perf_counter()
        with db.reading() as session:
            page, _ = nearby.search(session, query=_query(q), now=now)
        samples.append(time.perf_counter() - t0)
        found.append(len(page))
        t0 = time.perf_counter()
        with db.reading() as session:
            session.execute(text("SELECT 1"))
        floor.append(time.perf_counter() - t0)
    return {
        "search": _figures(samples, qs),
        "floor_select_1": _percentiles(floor),
        "mean_results_per_page": round(float(np.mean(found)), 1),
        "full_pages": sum(1 for n in found if n == 20),
    }


def _query(q: dict[str, Any]) -> nearby.NearbyQuery:
    return nearby.NearbyQuery(
        latitude=q["lat"], longitude=q["lng"], radius_m=q["radius_m"], sort=q["sort"]
    )


def over_http(base: str, key: str, qs: list[dict[str, Any]]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    samples, floor, statuses = [], [], {}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for q in qs[:50]:
            client.get("/v1/offers/nearby", params=q)
        for q in qs:
            t0 = time.perf_counter()
            answer = client.get("/v1/offers/nearby", params=q)
            samples.append(time.perf_counter() - t0)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            t0 = time.perf_counter()
            client.get("/healthz")
            floor.append(time.perf_counter() - t0)
    return {
        "search": _figures(samples, qs),
        "floor_healthz": _percentiles(floor),
        "statuses": statuses,
    }


def _prepared(backend: str, args: argparse.Namespace, tmpdir: Path) -> tuple[str, bool]:
    """The database's URL, and whether it must be loaded first.

    With ``--keep DIR`` the SQLite file (under DIR) and the PostgreSQL database
    ``--pg-database`` (``channels_nearby`` unless named) outlive the run, and a later run
    reuses them when they hold the asked number of stores: the load runs once (under the
    shared lock), the timed run only measures.
    """
    if not args.keep:
        return _support.scratch_url(backend, tmpdir, SCRATCH), True
    if backend == "sqlite":
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{(Path(args.keep) / 'nearby.db').as_posix()}"
    else:
        url = _support.postgres_database(args.pg_database)
    db = _support.migrated(url)
    try:
        with db.reading() as session:
            stores = session.scalar(text("SELECT count(*) FROM stores"))
            rated = session.scalar(text("SELECT count(*) FROM store_ratings"))
    finally:
        db.dispose()
    if stores == 0 or (stores == args.stores and rated):  # empty, or loaded as asked
        return url, stores == 0
    if backend == "postgresql":
        return _support.fresh_postgres_database(args.pg_database), True
    (Path(args.keep) / "nearby.db").unlink()
    return url, True


SCRATCH, KEPT = "o2o_bench_nearby", "channels_nearby"


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        url, empty = _prepared(backend, args, tmpdir)
        try:
            db = _support.migrated(url)
            version = _support.server_version(db)
            loaded = load(db, args.stores, args.offers_per_store) if empty else {"reused": url}
            if args.prepare_only:
                db.dispose()
                return {"benchmark": "nearby", "database": backend, "prepared": loaded}
            with db.transaction() as session:
                _consumer, key = customers.sign_up(session, display_name="Bench")
            qs = queries(args.requests)
            t0 = time.perf_counter()
            local = in_process(db, qs)
            local["seconds"] = round(time.perf_counter() - t0, 1)
            db.dispose()
            with _support.serving(url, tmpdir) as base:
                remote = over_http(base, key, qs)
        finally:
            if backend == "postgresql" and not args.keep:
                _support.drop_postgres_database(SCRATCH)
    return {
        "benchmark": "nearby",
        "database": backend,
        "server": version,
        "machine": _support.machine(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "loaded": loaded,
        "requests": args.requests,
        "in_process": local,
        "http": remote,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--stores", type=int, default=100_000)
    parser.add_argument("--offers-per-store", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--keep", metavar="DIR", help="keep the loaded databases and reuse them")
    parser.add_argument(
        "--pg-database", default=KEPT, help="the kept PostgreSQL database's name (with --keep)"
    )
    parser.add_argument("--prepare-only", action="store_true", help="load (or check), no timing")
    args = parser.parse_args()
    for backend in _support.backends(args.db):
        if backend == "postgresql" and (why := _support.postgres_unavailable()):
            _support.emit({"benchmark": "nearby", "database": backend, "skipped": why})
            continue
        _support.emit(run(backend, args))


if __name__ == "__main__":
    sys.exit(main())
