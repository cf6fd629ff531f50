"""Merchant webhooks: from the commit that queues a delivery to its signed POST arriving at
a receiver on loopback, with worker processes sending.

Usage: ``python benchmarks/webhooks.py [--events 1000] [--rate 20] [--seconds 5]
[--only sqlite-1|postgresql-1|postgresql-4]``; prints JSON.

What is timed is the webhooks half of the pipeline: each event is queued as the outbox
handler queues it (`deliveries.on_domain_event` on a CodeRedeemed, one transaction each, one
merchant, one endpoint), and worker processes claim due deliveries (`FOR NO KEY UPDATE SKIP
LOCKED` on PostgreSQL, the writers' turn on SQLite), sign, POST and record each attempt. The
hop before it, from a use case's commit through the outbox to the handler, is measured by
the spine's benchmark; a worker's sweep here polls every 20 ms.

- throughput: `--events` queued back to back, then the workers start; deliveries per second
  from their start to the last arrival (what the writer can queue is given beside it);
- latency: `--rate` events a second for `--seconds`; commit-to-arrival p50/p99 (the
  writer's clock after each commit, the receiver's at arrival: one machine).

The floor beside it, in the same run: the same kind of signed body POSTed to the same
receiver by a bare httpx client with as many threads as a worker sends with, no database.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import _support

import o2oloop.models  # noqa: F401  (every table, as a worker has them)
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks import deliveries, endpoints, schemas
from o2oloop.webhooks.dispatch import Dispatcher

fork = multiprocessing.get_context("fork")
POLL = 0.02
QUEUE = deliveries.on_domain_event  # what the outbox handler does with each event


def _work(url: str, secret_key: str, stop_file: str) -> None:
    """A worker process: sweep what is due, send it, record it; until the stop file exists."""
    code = 0
    try:
        settings = _support.webhook_settings(url, secret_key)
        dispatcher = Dispatcher(Database.from_url(url, pool_size=4), settings)
        while not os.path.exists(stop_file):
            if dispatcher.run_due() == 0:
                time.sleep(POLL)
        dispatcher.close()
    except BaseException:
        traceback.print_exc()
        code = 1
    os._exit(code)


def run(backend: str, workers: int, args: argparse.Namespace, tmpdir: Path) -> dict[str, Any]:
    name = f"o2o_bench_webhooks_{workers}_{os.getpid()}"
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
        # Throughput: a backlog queued first, then drained by the workers.
        started = time.perf_counter()
        burst = _support.commit_redemptions(db, tenant.merchant_id, args.events, None, QUEUE)
        queued = time.perf_counter() - started
        processes = [
            fork.Process(target=_work, args=(url, secret_key, str(stop_file)))
            for _ in range(workers)
        ]
        began = time.time()
        for process in processes:
            process.start()
        try:
            receiver.wait_for(set(burst))
            with receiver.lock:
                span = max(receiver.arrivals[e] for e in burst) - began
            offered = int(args.rate * args.seconds)
            paced_started = time.perf_counter()
            paced = _support.commit_redemptions(db, tenant.merchant_id, offered, args.rate, QUEUE)
            achieved = offered / (time.perf_counter() - paced_started)
            receiver.wait_for(set(paced))
            latencies = receiver.latencies_ms(paced)
        finally:
            stop_file.touch()
            for process in processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
        requests = receiver.requests
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
        "backlog_delivered_per_second": round(len(burst) / span, 1),
        "requests_at_receiver": requests,
        "queued_per_second": round(len(burst) / queued, 1),
        "floor_bare_signed_posts_per_second": round(floor, 1),
        "latency_offered_per_second": args.rate,
        "latency_achieved_per_second": round(achieved, 1),
        "latency_events": len(latencies),
        "commit_to_delivery_ms": _support.latency_summary(latencies),
        "worker_poll_seconds": POLL,
    }


def main() -> None:
    _support.run_worker_configs("webhooks", _support.delivery_arguments(__doc__ or ""), run)


if __name__ == "__main__":
    sys.exit(main())
