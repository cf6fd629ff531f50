"""Ledger postings per second: balanced 3-entry transactions on SQLite and PostgreSQL.

Usage: ``python benchmarks/ledger_postings.py [--postings 5000] [--threads 8] [--no-postgres]``;
prints JSON. Each posting is what a stored-value spend or voucher redemption writes: escrow
−x, merchant payable +(x − commission), platform commission +commission, through
`ledger.post` (guarded conditional UPDATEs of the cached balances, one transaction row, three
entry rows). "per_commit" runs one posting per database transaction (what an API request
does); "threads" runs that from several threads at once on PostgreSQL, spread over 100
merchants. Scratch databases only: a temporary SQLite file and a freshly created PostgreSQL
database next to O2O_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import _support
from sqlalchemy.orm import Session

from o2oloop import migrations
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.db import Database
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind, TransactionKind
from o2oloop.merchants import schemas
from o2oloop.merchants import service as merchants
from o2oloop.merchants.models import Category
from o2oloop.money import Money

PLATFORM = Principal(key_id="bench", role=Role.PLATFORM_ADMIN)
MERCHANTS = 100


def prepare(db: Database) -> list[tuple[str, str, str]]:
    """100 merchants, each with a well-funded voucher escrow; their three account ids."""
    migrations.upgrade(db)
    accounts = []
    with db.transaction() as session:
        clearing = ledger.provider_clearing(session, "CNY")
        for n in range(MERCHANTS):
            merchant, *_ = merchants.create_merchant(
                session,
                principal=PLATFORM,
                data=schemas.MerchantCreate(name=f"Bench {n}", category=Category.CATERING),
            )
            escrow = ledger.merchant_account(
                session, AccountKind.VOUCHER_ESCROW, merchant.id, "CNY"
            )
            ledger.post(
                session,
                kind=TransactionKind.ADJUSTMENT,
                entries=[(clearing, Money(-(10**12), "CNY")), (escrow, Money(10**12, "CNY"))],
                reference="bench funding",
            )
            accounts.append(merchant.id)
    return [(m, "", "") for m in accounts]


def _post(session: Session, merchant_id: str, amount: int) -> None:
    escrow = ledger.merchant_account(session, AccountKind.VOUCHER_ESCROW, merchant_id, "CNY")
    ledger.pay_merchant_from(
        session,
        kind=TransactionKind.VOUCHER_REDEMPTION,
        source=escrow,
        merchant_id=merchant_id,
        amount=Money(amount, "CNY"),
        commission_bps=500,
        reference="bench",
    )


def one_posting(db: Database, merchant_id: str, amount: int) -> None:
    with db.transaction() as session:
        _post(session, merchant_id, amount)


def run_batched(db: Database, merchant_ids: list[str], count: int, per_commit: int) -> float:
    """Many postings per database transaction: the ledger's own cost without the fsync."""
    start = time.perf_counter()
    done = 0
    while done < count:
        with db.transaction() as session:
            for i in range(done, min(done + per_commit, count)):
                _post(session, merchant_ids[i % len(merchant_ids)][0], 100 + i % 900)
        done = min(done + per_commit, count)
    return count / (time.perf_counter() - start)


def run_serial(db: Database, merchant_ids: list[str], count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        one_posting(db, merchant_ids[i % len(merchant_ids)][0], 100 + i % 900)
    return count / (time.perf_counter() - start)


def run_threads(db: Database, merchant_ids: list[str], count: int, threads: int) -> float:
    per_thread = count // threads
    barrier = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            one_posting(db, merchant_ids[(t * 7919 + i) % len(merchant_ids)][0], 100 + i % 900)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    return per_thread * threads / (time.perf_counter() - start)


def check(db: Database) -> bool:
    from o2oloop.reconciliation import service as reconciliation

    # Ledger checks only: the benchmark funds escrow without a provider charge on purpose.
    with db.transaction() as session:
        return not any(check(session) for check in reconciliation.CHECKS[:5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postings", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    result: dict[str, object] = {
        "benchmark": "ledger_postings",
        "entries_per_posting": 3,
        "postings": args.postings,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }
    with tempfile.TemporaryDirectory() as scratch:
        db = Database.from_url(f"sqlite:///{Path(scratch) / 'bench.db'}")
        ids = prepare(db)
        one_posting(db, ids[0][0], 100)  # warm up
        result["sqlite"] = {
            "postings_per_second_per_commit": round(run_serial(db, ids, args.postings)),
            "postings_per_second_100_per_commit": round(run_batched(db, ids, args.postings, 100)),
            "books_agree": check(db),
        }
        db.dispose()
    if not args.no_postgres:
        name = "o2o_bench_ledger"
        db = Database.from_url(_support.fresh_postgres_database(name), pool_size=args.threads + 2)
        try:
            ids = prepare(db)
            one_posting(db, ids[0][0], 100)
            result["postgresql"] = {
                "postings_per_second_per_commit": round(run_serial(db, ids, args.postings)),
                "postings_per_second_100_per_commit": round(
                    run_batched(db, ids, args.postings, 100)
                ),
                "threads": args.threads,
                "postings_per_second_threads": round(
                    run_threads(db, ids, args.postings, args.threads)
                ),
                "books_agree": check(db),
            }
        finally:
            db.dispose()
            _support.drop_postgres_database(name)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
