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

The floor beside it, in the same run: the same kind of signed body POSTed to the same
receiver by a bare httpx client with as many threads as a worker sends with, no database
(`delivered_share_of_floor` is the product's rate over it). The hop after the handler
(signing and POSTing) alone is `benchmarks/webhooks.py`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import _support

import o2oloop.models  # noqa: F401  (every table, as a worker has them)
from o2oloop import events
from o2oloop.bootstrap import bootstrap
from o2oloop.config import Settings
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
        settings = _support.webhook_settings(url, secret_key)
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


def run(backend: str, workers: int, args: argparse.Namespace, tmpdir: Path) -> dict[str, Any]:
    # O2O_BENCH_DB_PREFIX: whose scratch database this is, on a shared server.
    prefix = os.environ.get("O2O_BENCH_DB_PREFIX", "o2o_bench")
    name = f"{prefix}_outbox_{workers}_{os.getpid()}"
    url = _support.scratch_url(backend, tmpdir, name)
    stop_file = tmpdir / "stop"
    secret_key = _support.secret_key()
    receiver = _support.Receiver()
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
                settings=_support.webhook_settings(url, secret_key),
            )
        started = time.perf_counter()
        burst = _support.commit_redemptions(
            db, tenant.merchant_id, args.events, None, events.record
        )
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
            paced = _support.commit_redemptions(
                db, tenant.merchant_id, offered, args.rate, events.record
            )
            achieved = offered / (time.perf_counter() - paced_started)
            receiver.wait_for(set(paced), timeout=120)
            latencies = receiver.latencies_ms(paced)
        finally:
            stop_file.touch()
            for process in processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
        floor = _support.signed_posts_floor(
            receiver.url, min(args.events, 2000), Settings().webhooks_concurrency
        )
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
        "floor_bare_signed_posts_per_second": round(floor, 1),
        "delivered_share_of_floor": round(len(burst) / span / floor, 3),
        "latency_offered_per_second": args.rate,
        "latency_achieved_per_second": round(achieved, 1),
        "latency_events": len(latencies),
        "commit_to_delivery_ms": _support.latency_summary(latencies),
        "worker_poll_seconds": POLL,
    }


def main() -> None:
    _support.run_worker_configs("outbox", _support.delivery_arguments(__doc__ or ""), run)


if __name__ == "__main__":
    sys.exit(main())
