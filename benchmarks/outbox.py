"""The outbox end to end: from a use case's commit of a domain event, through fan-out and
the worker pool, to the merchant's signed webhook arriving at a receiver on loopback.

Usage: ``python benchmarks/outbox.py [--events 1000] [--rate 20] [--seconds 5]
[--only sqlite-1|postgresql-1|postgresql-4]``; prints JSON.

Each event is a CodeRedeemed recorded with `events.record` in a transaction of its own (as
the counter's commit writes it to the outbox); worker processes run `jobs.worker.Pool` with
`bootstrap`'s real wiring, so the `webhooks.queue` handler queues the delivery in the job's
transaction and the webhooks dispatcher sends it once that commits.

- throughput: `--events` written back to back (the write rate is given), then the workers,
  started and ready, begin; events delivered per second from then to the last arrival;
- latency: `--rate` events a second for `--seconds` while the workers run; commit-to-arrival
  p50/p99 (the writer's clock after each commit, the receiver's at arrival: one machine).

The hop after the handler (signing and POSTing) alone is `benchmarks/webhooks.py`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import _support

import o2oloop.models  # noqa: F401  (every table, as a worker has them)
import webhooks as hooks
from o2oloop import events
from o2oloop.bootstrap import bootstrap
from o2oloop.codes.events import CodeRedeemed
from o2oloop.db import Database
from o2oloop.jobs.worker import Config, Pool
from o2oloop.webhooks import endpoints, schemas

fork = multiprocessing.get_context("fork")
POLL = 0.02


def _work(url: str, secret_key: str, stop_file: str, ready_file: str, go_file: str) -> None:
    """A worker process: the pool with bootstrap's wiring, from the go file (so start-up is
    not timed) until the stop file exists."""
    code = 0
    try:
        settings = hooks._settings(url, secret_key)
        db = Database.from_url(url, pool_size=8)
        config = replace(Config.from_settings(settings), poll_seconds=POLL)
        pool = Pool(db, bootstrap(settings), config=config)
        Path(ready_file).touch()
        while not os.path.exists(go_file):
            time.sleep(0.005)
        pool.start()
        while not os.path.exists(stop_file):
            time.sleep(0.05)
        pool.shutdown()
    except BaseException:
        traceback.print_exc()
        code = 1
    os._exit(code)


def _write(db: Database, merchant_id: str, count: int, rate: float | None) -> dict[str, float]:
    """Commit `count` redemption events to the outbox, one transaction each."""
    committed: dict[str, float] = {}
    started = time.perf_counter()
    for n in range(count):
        if rate is not None:
            pause = started + n / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        event = CodeRedeemed(
            merchant_id=merchant_id,
            store_id="sto_bench",
            terminal_id=None,
            offer_id="off_bench",
            redemption_id=f"red_{n}",
            code_id=None,
            batch_id=None,
            consumer_id=None,
            bill_amount=12_800,
            discount_amount=1_000,
            currency="CNY",
        )
        with db.transaction() as session:
            events.record(session, event)
        committed[event.event_id] = time.time()
    return committed


def run(backend: str, workers: int, args: argparse.Namespace, tmpdir: Path) -> dict[str, Any]:
    name = f"o2o_bench_outbox_{workers}_{os.getpid()}"
    url = _support.scratch_url(backend, tmpdir, name)
    stop_file = tmpdir / "stop"
    secret_key = _support.secret_key()
    receiver = hooks.Receiver()
    try:
        db = _support.migrated(url)
        version = _support.server_version(db)
        tenant = _support.make_tenant(db)
        with db.transaction() as session:
            endpoints.create_endpoint(
                session,
                principal=tenant.admin,
                merchant_id=tenant.merchant_id,
                data=schemas.WebhookEndpointCreate(url=receiver.url, event_types=["code.redeemed"]),
                settings=hooks._settings(url, secret_key),
            )
        started = time.perf_counter()
        burst = _write(db, tenant.merchant_id, args.events, None)
        written = time.perf_counter() - started
        ready = [tmpdir / f"ready-{n}" for n in range(workers)]
        go_file = tmpdir / "go"
        processes = [
            fork.Process(
                target=_work, args=(url, secret_key, str(stop_file), str(flag), str(go_file))
            )
            for flag in ready
        ]
        for process in processes:
            process.start()
        while not all(flag.exists() for flag in ready):
            time.sleep(0.01)
        began = time.time()
        go_file.touch()
        try:
            receiver.wait_for(set(burst), timeout=300)
            with receiver.lock:
                span = max(receiver.arrivals[e] for e in burst) - began
            offered = int(args.rate * args.seconds)
            paced_started = time.perf_counter()
            paced = _write(db, tenant.merchant_id, offered, args.rate)
            achieved = offered / (time.perf_counter() - paced_started)
            receiver.wait_for(set(paced), timeout=120)
            with receiver.lock:
                latencies = sorted((receiver.arrivals[e] - t) * 1000 for e, t in paced.items())
        finally:
            stop_file.touch()
            for process in processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
        db.dispose()
    finally:
        receiver.close()
        if backend == "postgresql":
            _support.drop_postgres_database(name)
    return {
        "backend": backend,
        "server": version,
        "workers": workers,
        "events": args.events,
        "written_per_second": round(len(burst) / written, 1),
        "delivered_per_second_end_to_end": round(len(burst) / span, 1),
        "latency_offered_per_second": args.rate,
        "latency_achieved_per_second": round(achieved, 1),
        "latency_events": len(latencies),
        "commit_to_delivery_ms": {
            "p50": hooks._percentile(latencies, 0.50),
            "p99": hooks._percentile(latencies, 0.99),
            "mean": round(statistics.fmean(latencies), 1),
        },
        "worker_poll_seconds": POLL,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--only", choices=("sqlite-1", "postgresql-1", "postgresql-4"))
    args = parser.parse_args()
    configs = [("sqlite", 1), ("postgresql", 1), ("postgresql", 4)]
    if args.only:
        backend, count = args.only.split("-")
        configs = [(backend, int(count))]
    unavailable = _support.postgres_unavailable()
    results = []
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for backend, workers in configs:
            if backend == "postgresql" and unavailable:
                results.append({"backend": backend, "workers": workers, "skipped": unavailable})
                continue
            directory = Path(tmp) / f"{backend}-{workers}"
            directory.mkdir()
            results.append(run(backend, workers, args, directory))
    _support.emit(
        {
            "benchmark": "outbox",
            **_support.machine(),
            "load_average_before": [round(x, 2) for x in load],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "results": results,
        }
    )


if __name__ == "__main__":
    sys.exit(main())
