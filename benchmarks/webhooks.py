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
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import _support
import httpx

import o2oloop.models  # noqa: F401  (every table, as a worker has them)
from o2oloop.codes.events import CodeRedeemed
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks import deliveries, endpoints, schemas, signing
from o2oloop.webhooks.dispatch import Dispatcher
from o2oloop.webhooks.signing_secrets import new_secret

fork = multiprocessing.get_context("fork")
POLL = 0.02


class Receiver:
    """Answers 204 at once and notes when each event's first delivery arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                now = time.time()
                event_id = json.loads(body).get("event_id", "")
                with receiver.lock:
                    receiver.requests += 1
                    receiver.arrivals.setdefault(event_id, now)
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/o2oloop"

    def wait_for(self, events: set[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if events <= self.arrivals.keys():
                    return
            time.sleep(0.02)
        raise TimeoutError(f"not every delivery arrived within {timeout:g} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _settings(url: str, secret_key: str) -> Settings:
    return Settings(
        env="development", database_url=url, secret_key=secret_key, webhooks_allow_private=True
    )


def _work(url: str, secret_key: str, stop_file: str) -> None:
    """A worker process: sweep what is due, send it, record it; until the stop file exists."""
    code = 0
    try:
        settings = _settings(url, secret_key)
        dispatcher = Dispatcher(Database.from_url(url, pool_size=4), settings)
        while not os.path.exists(stop_file):
            if dispatcher.run_due() == 0:
                time.sleep(POLL)
        dispatcher.close()
    except BaseException:
        traceback.print_exc()
        code = 1
    os._exit(code)


def _write(db: Database, merchant_id: str, count: int, rate: float | None) -> dict[str, float]:
    """Queue `count` events' deliveries, one transaction each; event id -> commit time."""
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
            deliveries.on_domain_event(session, event)
        committed[event.event_id] = time.time()
    return committed


def _floor(url: str, requests: int, threads: int) -> float:
    """Signed POSTs/s of a bare client to the same receiver: no database, no worker."""
    secret = new_secret()
    body = '{"type":"code.redeemed","event_id":"floor","data":{}}'
    with httpx.Client(timeout=10) as client:

        def post(n: int) -> None:
            headers = signing.headers(
                [secret], msg_id=f"msg_{n}", timestamp=int(time.time()), body=body
            )
            client.post(url, content=body, headers=headers).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(post, range(requests)))
        return requests / (time.perf_counter() - started)


def _percentile(values: list[float], q: float) -> float:
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return round(values[index], 1)


def run(backend: str, workers: int, args: argparse.Namespace, tmpdir: Path) -> dict[str, Any]:
    name = f"o2o_bench_webhooks_{workers}_{os.getpid()}"
    url = _support.scratch_url(backend, tmpdir, name)
    stop_file = tmpdir / "stop"
    secret_key = _support.secret_key()
    receiver = Receiver()
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
                settings=_settings(url, secret_key),
            )
        # Throughput: a backlog queued first, then drained by the workers.
        started = time.perf_counter()
        burst = _write(db, tenant.merchant_id, args.events, None)
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
            paced = _write(db, tenant.merchant_id, offered, args.rate)
            achieved = offered / (time.perf_counter() - paced_started)
            receiver.wait_for(set(paced))
            with receiver.lock:
                latencies = sorted((receiver.arrivals[e] - t) * 1000 for e, t in paced.items())
        finally:
            stop_file.touch()
            for process in processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
        requests = receiver.requests
        floor = _floor(receiver.url, min(args.events, 2000), Settings().webhooks_concurrency)
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
        "commit_to_delivery_ms": {
            "p50": _percentile(latencies, 0.50),
            "p99": _percentile(latencies, 0.99),
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
            "benchmark": "webhooks",
            **_support.machine(),
            "load_average_before": [round(x, 2) for x in load],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "results": results,
        }
    )


if __name__ == "__main__":
    sys.exit(main())
