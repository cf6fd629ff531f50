"""Settlement of many redemptions for many merchants: seconds and peak memory.

Usage: ``python benchmarks/settlement.py [--redemptions 1000000] [--merchants 1000]
[--backend sqlite|postgresql|both]``; prints JSON. The ledger is loaded in bulk (each
redemption a balanced 3-entry transaction: voucher escrow −x, merchant payable +(x − 5 %),
commission +5 %, escrow funded by one posting per merchant), then `settle_merchant` runs for
every merchant, one database transaction each, as `o2oloop settle` does; the timed part is
only the settlement. Settling holds no lines in Python (INSERT … SELECT in the database), so
memory does not grow with the batch size; peak RSS is the whole process including the bulk
load, and the heap peak of writing one merchant's CSV statement is measured by tracemalloc.
Scratch databases only (a temporary SQLite file, a fresh PostgreSQL
database next to O2O_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, text, update

from o2oloop import clock, migrations
from o2oloop.db import Database, new_id
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    TransactionKind,
)
from o2oloop.merchants.models import Category, Merchant
from o2oloop.money import Money
from o2oloop.reconciliation import service as reconciliation
from o2oloop.settlement import service as settlement
from o2oloop.settlement.models import SettlementBatch

sys.path.insert(0, str(Path(__file__).parent))
from ledger_postings import drop_postgres, fresh_postgres

CHUNK = 20_000


def load(db: Database, redemptions: int, merchants: int) -> list[str]:
    migrations.upgrade(db)
    now = clock.now() - timedelta(days=1)
    ids = [new_id("mer") for _ in range(merchants)]
    per_merchant = redemptions // merchants
    with db.transaction() as session:
        session.execute(
            insert(Merchant),
            [
                {
                    "id": m,
                    "name": f"Bench {n}",
                    "category": Category.CATERING,
                    "currency": "CNY",
                    "timezone": "Asia/Shanghai",
                    "country": "CN",
                    "commission_bps": 500,
                    "active": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, m in enumerate(ids)
            ],
        )
        clearing = ledger.provider_clearing(session, "CNY")
        accounts = {}
        for m in ids:
            escrow, payable, commission = (
                ledger.merchant_account(session, kind, m, "CNY")
                for kind in (
                    AccountKind.VOUCHER_ESCROW,
                    AccountKind.MERCHANT_PAYABLE,
                    AccountKind.PLATFORM_COMMISSION,
                )
            )
            accounts[m] = (escrow.id, payable.id, commission.id)
            ledger.post(
                session,
                kind=TransactionKind.ADJUSTMENT,
                entries=[
                    (clearing, Money(-1000 * per_merchant, "CNY")),
                    (escrow, Money(1000 * per_merchant, "CNY")),
                ],
                reference="bench funding",
            )
    transactions: list[dict[str, object]] = []
    entries: list[dict[str, object]] = []

    def flush() -> None:
        with db.transaction() as session:
            session.execute(insert(LedgerTransaction), transactions)
            session.execute(insert(LedgerEntry), entries)
        transactions.clear()
        entries.clear()

    for i in range(per_merchant * merchants):
        m = ids[i % merchants]
        escrow_id, payable_id, commission_id = accounts[m]
        tx = new_id("ltx")
        at = now + timedelta(microseconds=i)
        transactions.append(
            {
                "id": tx,
                "kind": TransactionKind.VOUCHER_REDEMPTION,
                "reference": "bench",
                "memo": "",
                "created_at": at,
            }
        )
        for account, amount in ((escrow_id, -1000), (payable_id, 950), (commission_id, 50)):
            entries.append(
                {
                    "transaction_id": tx,
                    "account_id": account,
                    "amount": amount,
                    "currency": "CNY",
                    "created_at": at,
                }
            )
        if len(transactions) >= CHUNK:
            flush()
    if transactions:
        flush()
    with db.transaction() as session:  # the cached balances the bulk load bypassed
        for escrow_id, payable_id, commission_id in accounts.values():
            for account, value in (
                (escrow_id, 0),
                (payable_id, 950 * per_merchant),
                (commission_id, 50 * per_merchant),
            ):
                session.execute(
                    update(LedgerAccount).where(LedgerAccount.id == account).values(balance=value)
                )
        if db.dialect == "postgresql":
            session.execute(text("ANALYZE"))
    return ids


def settle_all(db: Database, merchant_ids: list[str]) -> tuple[int, int]:
    cutoff = clock.now()
    paid = lines = 0
    for m in merchant_ids:
        with db.transaction() as session:
            batch = settlement.settle_merchant(session, merchant_id=m, cutoff=cutoff)
            if batch is not None:
                paid += batch.payout_amount > 0
                lines += batch.line_count
    return paid, lines


def measure(db: Database, args: argparse.Namespace) -> dict[str, object]:
    started = time.perf_counter()
    ids = load(db, args.redemptions, args.merchants)
    loaded = time.perf_counter() - started
    wall = time.perf_counter()
    paid, lines = settle_all(db, ids)
    wall = time.perf_counter() - wall
    with db.transaction() as session:
        agree = not any(check(session) for check in reconciliation.CHECKS[:5])
        batch_id = session.scalar(text("select id from settlement_batches limit 1"))
        batch = session.get(SettlementBatch, batch_id)
        assert batch is not None
        csv_started = time.perf_counter()
        tracemalloc.start()
        csv_bytes = len(settlement.statement_csv(session, batch))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        csv_seconds = time.perf_counter() - csv_started
    return {
        "load_seconds": round(loaded, 1),
        "settle_seconds": round(wall, 2),
        "merchants_paid": paid,
        "lines_settled": lines,
        "lines_per_second": round(lines / wall),
        "one_statement_csv_seconds": round(csv_seconds, 3),
        "one_statement_csv_heap_peak_mib": round(peak / 2**20, 2),
        "one_statement_csv_bytes": csv_bytes,
        "books_agree": agree,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redemptions", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=1000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    result: dict[str, object] = {
        "benchmark": "settlement",
        "redemptions": args.redemptions,
        "merchants": args.merchants,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as scratch:
            db = Database.from_url(f"sqlite:///{Path(scratch) / 'bench.db'}")
            result["sqlite"] = measure(db, args)
            db.dispose()
    if args.backend in ("postgresql", "both"):
        name = "o2o_bench_settlement"
        db = Database.from_url(fresh_postgres(name))
        try:
            result["postgresql"] = measure(db, args)
        finally:
            db.dispose()
            drop_postgres(name)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
