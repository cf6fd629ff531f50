"""Shared helpers for the benchmark scripts: scratch databases, a minimal tenant, the server.

The scripts run as ``python benchmarks/<name>.py``, so this module is imported as
``_support`` (the script's directory is on ``sys.path``). Nothing here imports ``tests/``:
the setup goes through the service layer with a platform principal, like the test factories.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from o2oloop import migrations
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.bootstrap import bootstrap
from o2oloop.codes.events import CodeRedeemed
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.merchants import schemas as merchant_schemas
from o2oloop.merchants import service as merchants
from o2oloop.merchants.models import Category
from o2oloop.offers import schemas as offer_schemas
from o2oloop.offers import service as offers
from o2oloop.webhooks import signing
from o2oloop.webhooks.signing_secrets import new_secret

PG_URL = os.environ.get(
    "O2O_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PLATFORM = Principal(key_id="benchmarks", role=Role.PLATFORM_ADMIN)
BACKENDS = ("sqlite", "postgresql")


def backends(choice: str) -> list[str]:
    return list(BACKENDS) if choice == "both" else [choice]


def postgres_unavailable() -> str | None:
    """None when PostgreSQL answers, otherwise why not."""
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as error:  # any failure to connect means "not available"
        return f"{type(error).__name__}: {error}"


def fresh_postgres_database(name: str) -> str:
    """Drop and create a scratch database next to the test database; returns its URL."""
    drop_postgres_database(name)
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def postgres_database(name: str) -> str:
    """The URL of a database next to the test database, created if it is not there yet."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        found = "SELECT 1 FROM pg_database WHERE datname = :name"
        if connection.execute(text(found), {"name": name}).first() is None:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(name: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def scratch_url(backend: str, tmpdir: Path, name: str) -> str:
    """A fresh, empty database: a SQLite file under `tmpdir` or a new PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{(tmpdir / 'o2oloop.db').as_posix()}"
    return fresh_postgres_database(name)


def migrated(url: str, **kwargs: Any) -> Database:
    db = Database.from_url(url, **kwargs)
    migrations.upgrade(db)
    return wired(db)


def wired(db: Database) -> Database:
    """`db` running the product's in-transaction reactions (a store is indexed as placed)."""
    if not db.reactions:
        bootstrap(Settings(secret_key=secret_key()), db=db)
    return db


def server_version(db: Database) -> str:
    with db.engine.connect() as connection:
        if db.dialect == "sqlite":
            return "sqlite " + connection.execute(text("select sqlite_version()")).scalar_one()
        return connection.execute(text("show server_version")).scalar_one()


@dataclass
class Tenant:
    merchant_id: str
    store_id: str
    admin: Principal
    terminals: list[tuple[str, str]] = field(default_factory=list)  # (terminal id, key)


def make_tenant(db: Database, *, terminals: int = 0, stores: int = 1) -> Tenant:
    """A merchant with `stores` stores and `terminals` terminals dealt round them, through
    the service layer; `store_id` is the first store."""
    with wired(db).transaction() as session:
        merchant, _owner, _token, admin_key = merchants.create_merchant(
            session,
            principal=PLATFORM,
            data=merchant_schemas.MerchantCreate(
                name="Benchmark Noodles",
                category=Category.CATERING,
                currency="CNY",
                timezone="Asia/Shanghai",
                commission_bps=500,
            ),
        )
        admin = Principal(key_id=admin_key.id, role=Role.MERCHANT_ADMIN, merchant_id=merchant.id)
        store_ids = [
            merchants.create_store(
                session,
                principal=admin,
                merchant_id=merchant.id,
                data=merchant_schemas.StoreCreate(
                    name=f"Store {n + 1}",
                    address=f"{88 + n} Tianyaoqiao Rd",
                    latitude=31.19,
                    longitude=121.43,
                ),
            ).id
            for n in range(stores)
        ]
        tenant = Tenant(merchant_id=merchant.id, store_id=store_ids[0], admin=admin)
        for n in range(terminals):
            terminal, token, _ = merchants.create_terminal(
                session,
                principal=admin,
                merchant_id=merchant.id,
                store_id=store_ids[n % stores],
                data=merchant_schemas.TerminalCreate(name=f"Counter {n + 1}"),
            )
            tenant.terminals.append((terminal.id, token))
    return tenant


def make_coupon(db: Database, tenant: Tenant, **overrides: object) -> str:
    """A published amount-off coupon with no stock limit; returns its id."""
    values: dict[str, object] = {
        "kind": "coupon",
        "title": "10 off dinner",
        "discount_kind": "amount_off",
        "amount_off": 1000,
    }
    values.update(overrides)
    with db.transaction() as session:
        offer = offers.create_offer(
            session,
            principal=tenant.admin,
            merchant_id=tenant.merchant_id,
            data=offer_schemas.OfferCreate.model_validate(values),
        )
        offers.transition(
            session,
            principal=tenant.admin,
            merchant_id=tenant.merchant_id,
            offer_id=offer.id,
            action="publish",
        )
    return offer.id


def secret_key() -> str:
    return "bench-" + secrets.token_urlsafe(32)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def maxrss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def machine() -> dict[str, object]:
    return {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def emit(result: dict[str, object]) -> None:
    print(json.dumps(result, indent=2), flush=True)


# ---- server time per request ----------------------------------------------------------------


class ServerTimes:
    """ASGI wrapper: how long the server spends on each request, by path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: dict[str, list[float]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            key = f"{scope['method']} {scope['path']}"
            self.times.setdefault(key, []).append((time.perf_counter() - started) * 1000)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(at(0.95), 2),
        "max_ms": round(ordered[-1], 2),
    }


# ---- the server ------------------------------------------------------------------------------

SERVER_START_TIMEOUT = 300  # a loaded 2-core machine takes its time to import the app


def start_server(
    env: dict[str, str], port: int, cwd: Path, log: Path, workers: int = 2
) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("o2oloop")
    command = [str(exe), "serve", "--workers", str(workers), "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    handle = log.open("wb")
    process = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so we can stop it and its workers
    )
    handle.close()
    wait_ready(process, port, log)
    return process


def wait_ready(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    ready = 0
    while ready < 20:  # several answers in a row, so both workers are likely up
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}")
        try:
            ok = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            ready = ready + 1 if ok else 0
        except httpx.HTTPError:
            ready = 0
            time.sleep(0.1)


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)  # the group we created for it: uvicorn and its workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=5)


@contextmanager
def serving(url: str, tmpdir: Path, *, secret: str = "", workers: int = 2) -> Iterator[str]:
    """``o2oloop serve`` on the database at `url` for the block; yields its base URL.

    `secret` is the server's key (a fresh one if not given): pass the one that signed
    whatever the benchmark hands the server, such as tracking tokens.
    """
    env = {
        **os.environ,
        "O2O_ENV": "development",
        "O2O_DATA_DIR": str(tmpdir),
        "O2O_DATABASE_URL": url,
        "O2O_SECRET_KEY": secret or secret_key(),
    }
    port = free_port()
    process = start_server(env, port, tmpdir, tmpdir / "server.log", workers)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


# ---- a merchant's receiver on loopback: what the outbox and webhook benchmarks share -------


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

    def latencies_ms(self, committed: dict[str, float]) -> list[float]:
        """Commit to first arrival of each event, sorted (one machine, one clock)."""
        with self.lock:
            return sorted((self.arrivals[e] - t) * 1000 for e, t in committed.items())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def webhook_settings(url: str, secret_key: str) -> Settings:
    """A worker's settings: deliveries to loopback are allowed (the receiver is local)."""
    return Settings(
        env="development", database_url=url, secret_key=secret_key, webhooks_allow_private=True
    )


def commit_redemptions(
    db: Database,
    merchant_id: str,
    count: int,
    rate: float | None,
    put: Callable[[Session, CodeRedeemed], None],
) -> dict[str, float]:
    """Commit `count` redemption events, one transaction each, `put(session, event)` writing
    each: back to back, or `rate` a second. Event id -> the time its commit returned."""
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
            put(session, event)
        committed[event.event_id] = time.time()
    return committed


def signed_posts_floor(url: str, requests: int, threads: int) -> float:
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


def percentile(values: list[float], q: float) -> float:
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return round(values[index], 1)


def latency_summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "mean": round(statistics.fmean(latencies), 1),
    }


def delivery_arguments(doc: str) -> argparse.Namespace:
    """The options of the delivery benchmarks (outbox, webhooks)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--only", choices=("sqlite-1", "postgresql-1", "postgresql-4"))
    return parser.parse_args()


def run_worker_configs(
    benchmark: str,
    args: argparse.Namespace,
    run: Callable[[str, int, argparse.Namespace, Path], dict[str, Any]],
) -> None:
    """`run(backend, workers, args, directory)` for 1 worker on SQLite, 1 and 4 on
    PostgreSQL (or the one `--only` names); prints the JSON with the load average."""
    configs = [("sqlite", 1), ("postgresql", 1), ("postgresql", 4)]
    if args.only:
        backend, count = args.only.split("-")
        configs = [(backend, int(count))]
    unavailable = postgres_unavailable()
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
    emit(
        {
            "benchmark": benchmark,
            **machine(),
            "load_average_before": [round(x, 2) for x in load],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "results": results,
        }
    )
