"""The review log: appends per second with checkpointing, proofs at a million entries, and
the storage each entry costs.

Usage: ``python benchmarks/reviews_log.py [--entries 1000000] [--appends 2000]
[--backend sqlite|postgresql|both]``; prints JSON. Entries are shaped like real review
entries (about 330 bytes of canonical JSON). "single" appends one entry per transaction
through `log.append` (what posting a review does), signing an Ed25519 checkpoint every 64
entries; "batched" appends 10,000 per transaction through the same function, which is also
how the log is filled to `--entries` before proofs are measured. Proof latencies are for
random entries of the full tree through `log.inclusion_proof` / `log.consistency_proof` on
a read session; verification is `merkle.verify_inclusion`. Floors measured in the same run:
SHA-256 of the entries alone (the hashing an append cannot avoid) and one primary-key read
of a stored node (what a proof's lookups cost at best).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import _support
from sqlalchemy import func, select, text

from o2oloop.reviews import log, merkle
from o2oloop.reviews.checkpoints import Signer
from o2oloop.reviews.models import LogCheckpoint, LogNode

CONFIG = log.LogConfig(Signer.from_seed("bench.o2oloop/reviews", os.urandom(32)))


def entry(n: int) -> dict[str, object]:
    return {
        "v": 1,
        "kind": "review",
        "review": f"rev_01jb{n:022d}",
        "version": 1,
        "merchant": "mer_01jb8zr4d6b6n8g8m0xv6q7w2k",
        "store": "sto_01jb8zr4d6b6n8g8m0xv6q7w2m",
        "rating": 1 + n % 5,
        "visit": {"source": "pos", "date": "2026-06-01", "code": n % 3 == 0, "campaign": False},
        "content": f"{n:064x}",
        "at": "2026-06-01T12:00:00Z",
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def single_appends(db, count: int, start: int) -> dict[str, float]:
    began = time.perf_counter()
    for n in range(start, start + count):
        with db.transaction() as session:
            log.append(session, [entry(n)], log=CONFIG)
    seconds = time.perf_counter() - began
    with db.reading() as session:
        checkpoints = session.scalar(select(func.count()).select_from(LogCheckpoint))
    return {"appends": count, "per_second": round(count / seconds, 1), "checkpoints": checkpoints}


def fill(db, total: int, start: int, batch: int = 10_000) -> dict[str, float]:
    began = time.perf_counter()
    n = start
    while n < total:
        size = min(batch, total - n)
        with db.transaction() as session:
            log.append(session, [entry(i) for i in range(n, n + size)], log=CONFIG)
        n += size
    seconds = time.perf_counter() - began
    return {"entries": total - start, "per_second": round((total - start) / seconds, 1)}


def hashing_floor(count: int) -> float:
    began = time.perf_counter()
    for n in range(count):
        merkle.leaf_hash(log.canonical(entry(n)))
    return round(count / (time.perf_counter() - began), 1)


def proofs(db, size: int, samples: int) -> dict[str, object]:
    rng = random.Random(7)
    generate, verify, consistency, floor = [], [], [], []
    with db.reading() as session:
        root = log.root_at(session, size)
        for _ in range(samples):
            index = rng.randrange(size)
            began = time.perf_counter()
            proof = log.inclusion_proof(session, index=index, tree_size=size)
            generate.append(time.perf_counter() - began)
            leaf = merkle.leaf_hash(log.entry(session, index).body)
            began = time.perf_counter()
            merkle.verify_inclusion(index, size, leaf, proof, root)
            verify.append(time.perf_counter() - began)
            first = rng.randrange(1, size)
            began = time.perf_counter()
            log.consistency_proof(session, first=first, second=size)
            consistency.append(time.perf_counter() - began)
            began = time.perf_counter()
            session.get(LogNode, (0, index))
            floor.append(time.perf_counter() - began)
            session.expunge_all()
    ms = 1000.0
    return {
        "tree_size": size,
        "samples": samples,
        "proof_hashes": len(proof),
        "inclusion_generate_ms": {
            "p50": round(pct(generate, 0.5) * ms, 3),
            "p99": round(pct(generate, 0.99) * ms, 3),
        },
        "inclusion_verify_us": {
            "p50": round(pct(verify, 0.5) * 1e6, 1),
            "p99": round(pct(verify, 0.99) * 1e6, 1),
        },
        "consistency_generate_ms": {
            "p50": round(pct(consistency, 0.5) * ms, 3),
            "p99": round(pct(consistency, 0.99) * ms, 3),
        },
        "floor_one_node_read_ms": {"p50": round(statistics.median(floor) * ms, 3)},
    }


def storage(db, backend: str, entries: int) -> dict[str, object]:
    with db.engine.connect() as connection:
        if backend == "sqlite":
            tables = {}
            try:
                rows = connection.exec_driver_sql(
                    "SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'review_log%' "
                    "OR name LIKE '%review_log%' GROUP BY name"
                ).all()
                tables = {name: int(size) for name, size in rows}
            except Exception:  # dbstat is an optional SQLite module
                pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
                page = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
                tables = {"database": pages * page}
        else:
            rows = connection.execute(
                text(
                    "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                    "WHERE relname IN ('review_log_entries', 'review_log_nodes')"
                )
            ).all()
            tables = {name: int(size) for name, size in rows}
    total = sum(tables.values())
    return {
        "bytes_per_entry": round(total / entries, 1),
        "by_table_bytes_per_entry": {k: round(v / entries, 1) for k, v in sorted(tables.items())},
        "entry_body_bytes": len(log.canonical(entry(123_456))),
    }


def run(backend: str, entries: int, appends: int, tmp: Path) -> dict[str, object]:
    url = _support.scratch_url(backend, tmp, "o2o_bench_reviews")
    db = _support.migrated(url)
    try:
        result: dict[str, object] = {"backend": backend, "server": _support.server_version(db)}
        result["single_appends_with_checkpoints"] = single_appends(db, appends, 0)
        began = time.perf_counter()
        result["batched_appends"] = fill(db, entries, appends)
        result["fill_seconds"] = round(time.perf_counter() - began, 1)
        result["proofs"] = proofs(db, entries, 1000)
        result["storage"] = storage(db, backend, entries)
        return result
    finally:
        db.dispose()
        if backend == "postgresql":
            _support.drop_postgres_database("o2o_bench_reviews")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    args = parser.parse_args()
    began = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for backend in _support.backends(args.backend):
            if backend == "postgresql" and (why := _support.postgres_unavailable()):
                results.append({"backend": backend, "skipped": why})
                continue
            results.append(run(backend, args.entries, args.appends, Path(scratch)))
    _support.emit(
        {
            "benchmark": "reviews_log",
            "machine": _support.machine(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "floor_hashing_entries_per_second": hashing_floor(100_000),
            "results": results,
            "wall_seconds": round(time.perf_counter() - began, 1),
            "max_rss_mib": _support.maxrss_mib(),
        }
    )


if __name__ == "__main__":
    main()
