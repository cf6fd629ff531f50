"""Bulk issuance end to end, against a plain insert of as many rows, on SQLite and PostgreSQL.

Usage: ``python benchmarks/bulk_issuance.py [--db sqlite|postgresql|both] [--count 1000000]``

Per database (a fresh migrated SQLite file in a temp dir, a fresh PostgreSQL database):

* **issuance**: ``codes.service.issue_batch(count)`` in one transaction, then every code
  derived and rendered by ``codes.export.batch_csv`` (the brand's CSV, ``index,code,qr_payload``,
  exactly what ``o2oloop codes issue`` writes and the HTTP export sends) and written to a temp
  file. codes/s is for the whole thing. It runs in a fresh child process so ``ru_maxrss`` is this
  work's own peak; a second child repeats it under ``tracemalloc`` for the Python-heap peak
  (tracing slows every allocation, so its timing is reported apart and not used; by default
  only on the first database, see ``--trace``).
* **plain insert**: ``count`` random 16-byte digests into a table with a UNIQUE index in the
  same database. SQLite: ``executemany`` in one transaction, same PRAGMAs as the app.
  PostgreSQL: ``COPY ... FROM STDIN (FORMAT BINARY)`` through psycopg, the fastest plain way.
  ``ratio`` = issuance codes/s ÷ plain insert rows/s.
* **redeem path**: ``codec.parse`` + ``service.locate`` of 10,000 random codes of the batch
  in one read transaction, to show batch codes verify with no row per code (the ``codes``
  table stays empty).

Prints one JSON object per database, then a summary object.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import random
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import _support
import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from o2oloop.codes import codec, export, service
from o2oloop.codes.models import BatchCodeUse, Code, CodeBatch
from o2oloop.db import Database

SECRET = "bench-bulk-issuance-" + "k" * 32  # fixed so child processes share the key


def _in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run one phase in a fresh process: its ru_maxrss is then that phase's own peak."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# ---- phases (each runs in its own process) -------------------------------------------------


def issuance(
    url: str, merchant_id: str, offer_id: str, count: int, out: str, traced: bool
) -> dict[str, Any]:
    keys = service.Keys.from_secret(SECRET)
    b"".join(export.batch_csv(keys.code, 1, 1000))  # warm the key schedule and numpy tables
    db = Database.from_url(url)
    with db.engine.connect():
        pass  # open the pool's first connection outside the timing
    operator = _support.PLATFORM
    baseline_rss = _support.maxrss_mib()
    if traced:
        tracemalloc.start()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    with db.transaction() as session:
        batch = service.issue_batch(
            session, principal=operator, merchant_id=merchant_id, offer_id=offer_id, count=count
        )
    t_issued = time.perf_counter()
    render_s = write_s = 0.0
    with open(out, "wb") as handle:
        parts = export.batch_csv(keys.code, batch.batch_no, batch.count)
        while True:
            a = time.perf_counter()
            part = next(parts, None)
            b = time.perf_counter()
            render_s += b - a
            if part is None:
                break
            handle.write(part)
            write_s += time.perf_counter() - b
    total_s = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    peak = tracemalloc.get_traced_memory()[1] if traced else None
    if traced:
        tracemalloc.stop()
    result: dict[str, Any] = {
        "batch_no": batch.batch_no,
        "batch_id": batch.id,
        "count": count,
        "seconds_total": round(total_s, 3),
        "seconds_cpu": round(cpu_s, 3),
        "seconds_issue_batch_transaction": round(t_issued - t0, 4),
        "seconds_derive_and_render_csv": round(render_s, 3),
        "seconds_file_write": round(write_s, 3),
        "codes_per_second": round(count / total_s),
        "csv_bytes": os.path.getsize(out),
        "rss_mib_before": baseline_rss,
        "peak_rss_mib": _support.maxrss_mib(),
    }
    if peak is not None:
        result["tracemalloc_peak_mib"] = round(peak / 2**20, 1)
    # The file is what a brand receives: check it has every row, all distinct, and parses.
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    texts = {row[1] for row in rows[1:]}
    assert len(rows) == count + 1 and len(texts) == count, "CSV lost or duplicated codes"
    assert result["csv_bytes"] == export.batch_csv_size(count)
    last = codec.parse(rows[-1][2], keys.code)
    assert (last.batch_no, last.index) == (batch.batch_no, count - 1)
    result["csv_rows_verified"] = count
    db.dispose()
    return result


def plain_insert(url: str, count: int) -> dict[str, Any]:
    blob = os.urandom(16 * count)
    digests = [blob[i : i + 16] for i in range(0, 16 * count, 16)]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        connection = sqlite3.connect(parsed.database, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            connection.execute(f"PRAGMA {pragma}")
        connection.execute("DROP TABLE IF EXISTS bench_plain")
        connection.execute("CREATE TABLE bench_plain (digest BLOB NOT NULL)")
        connection.execute("CREATE UNIQUE INDEX uq_bench_plain_digest ON bench_plain (digest)")
        t0, cpu0 = time.perf_counter(), time.process_time()
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO bench_plain (digest) VALUES (?)", ((d,) for d in digests)
        )
        connection.execute("COMMIT")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        rows = connection.execute("SELECT count(*) FROM bench_plain").fetchone()[0]
        connection.execute("DROP TABLE bench_plain")
        connection.close()
        method = "sqlite3 executemany, one transaction (WAL, synchronous=NORMAL)"
    else:
        conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute("DROP TABLE IF EXISTS bench_plain")
            connection.execute("CREATE TABLE bench_plain (digest bytea NOT NULL)")
            connection.execute("CREATE UNIQUE INDEX uq_bench_plain_digest ON bench_plain (digest)")
            t0, cpu0 = time.perf_counter(), time.process_time()
            with (
                connection.transaction(),
                connection.cursor() as cursor,
                cursor.copy("COPY bench_plain (digest) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(["bytea"])
                for digest in digests:
                    copy.write_row((digest,))
            seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            rows = connection.execute("SELECT count(*) FROM bench_plain").fetchone()[0]
            connection.execute("DROP TABLE bench_plain")
        method = "psycopg COPY FROM STDIN (FORMAT BINARY), one transaction, index built inline"
    assert rows == count
    return {
        "method": method,
        "rows": count,
        "seconds": round(seconds, 3),
        "seconds_cpu_this_process": round(cpu, 3),
        "rows_per_second": round(count / seconds),
    }


def redeem_path(url: str, merchant_id: str, batch_no: int, count: int, n: int) -> dict[str, Any]:
    keys = service.Keys.from_secret(SECRET)
    rng = random.Random(20261123)
    indices = [rng.randrange(count) for _ in range(n)]
    texts = [codec.derive_batch_code(keys.code, batch_no, i) for i in indices]
    db = Database.from_url(url)
    t0 = time.perf_counter()
    for text in texts:
        codec.parse(text, keys.code)
    parse_s = time.perf_counter() - t0
    with db.transaction() as session:
        t0 = time.perf_counter()
        for text, index in zip(texts, indices, strict=True):
            found = service.locate(session, merchant_id=merchant_id, text=text, keys=keys)
            assert found.index == index and found.batch is not None
        locate_s = time.perf_counter() - t0
        code_rows = session.scalar(select(func.count()).select_from(Code))
        use_rows = session.scalar(select(func.count()).select_from(BatchCodeUse))
        batch_rows = session.scalar(select(func.count()).select_from(CodeBatch))
    db.dispose()
    return {
        "codes": n,
        "parse_only_codes_per_second": round(n / parse_s),
        "parse_and_locate_codes_per_second": round(n / locate_s),
        "seconds_parse_and_locate": round(locate_s, 3),
        "note": "one read transaction; locate = parse + batch by batch_no + used? + offer",
        "rows_in_codes_table": code_rows,
        "rows_in_batch_code_uses": use_rows,
        "rows_in_code_batches": batch_rows,
    }


# ---- driver ------------------------------------------------------------------------------


def run(backend: str, count: int, redeem_checks: int, trace: bool) -> dict[str, Any]:
    name = f"o2o_bench_bulk_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="o2o-bulk-") as tmp:
        tmpdir = Path(tmp)
        url = _support.scratch_url(backend, tmpdir, name)
        try:
            db = _support.migrated(url)
            version = _support.server_version(db)
            tenant = _support.make_tenant(db)
            offer_id = _support.make_coupon(db, tenant)
            db.dispose()
            out = str(tmpdir / "codes.csv")
            timed = _in_child(issuance, url, tenant.merchant_id, offer_id, count, out, False)
            traced = (
                _in_child(issuance, url, tenant.merchant_id, offer_id, count, out, True)
                if trace
                else None
            )
            plain = _in_child(plain_insert, url, count)
            check = _in_child(
                redeem_path, url, tenant.merchant_id, timed["batch_no"], count, redeem_checks
            )
        finally:
            if backend == "postgresql":
                _support.drop_postgres_database(name)
    issuance_result = {k: v for k, v in timed.items() if k != "batch_id"}
    if traced is not None:
        issuance_result.update(
            tracemalloc_peak_mib=traced["tracemalloc_peak_mib"],
            tracemalloc_bytes_per_code=round(traced["tracemalloc_peak_mib"] * 2**20 / count, 1),
            traced_run_seconds_total=traced["seconds_total"],
            traced_run_peak_rss_mib=traced["peak_rss_mib"],
        )
    else:
        issuance_result["tracemalloc_peak_mib"] = "not traced on this database (see --trace)"
    return {
        "benchmark": "bulk_issuance",
        "database": backend,
        "server": version,
        "count": count,
        "issuance": issuance_result,
        "plain_insert": plain,
        "ratio_issuance_over_plain_insert": round(
            timed["codes_per_second"] / plain["rows_per_second"], 2
        ),
        # SQLite runs in-process, so CPU seconds are the whole cost and immune to other
        # load on the machine; for PostgreSQL the server's CPU is not in this figure.
        "ratio_by_cpu_seconds": round(plain["seconds_cpu_this_process"] / timed["seconds_cpu"], 2)
        if backend == "sqlite"
        else None,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "redeem_path": check,
        **_support.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--redeem-checks", type=int, default=10_000)
    parser.add_argument(
        "--trace",
        choices=("first", "all", "none"),
        default="first",
        help="where to repeat issuance under tracemalloc (its timing is not used); the "
        "heap does not depend on the database, since issue_batch writes a single row",
    )
    args = parser.parse_args()
    if not 1 <= args.count <= service.MAX_BATCH:
        parser.error(f"--count must be 1..{service.MAX_BATCH}")
    summary: dict[str, Any] = {"benchmark": "bulk_issuance", "summary": True, "count": args.count}
    for n, backend in enumerate(_support.backends(args.db)):
        if backend == "postgresql" and (why := _support.postgres_unavailable()):
            summary["postgresql"] = {"skipped": why}
            continue
        trace = args.trace == "all" or (args.trace == "first" and n == 0)
        result = run(backend, args.count, min(args.redeem_checks, args.count), trace)
        _support.emit(result)
        summary[backend] = {
            "codes_per_second": result["issuance"]["codes_per_second"],
            "plain_insert_rows_per_second": result["plain_insert"]["rows_per_second"],
            "ratio": result["ratio_issuance_over_plain_insert"],
            "peak_rss_mib": result["issuance"]["peak_rss_mib"],
            "tracemalloc_peak_mib": result["issuance"]["tracemalloc_peak_mib"],
            "redeem_path_codes_per_second": result["redeem_path"][
                "parse_and_locate_codes_per_second"
            ],
        }
    _support.emit(summary)


if __name__ == "__main__":
    sys.exit(main())
