"""Server time per page: the cashier's terminal page (and its code check) on a demo city.

    python benchmarks/pages_terminal.py [--database sqlite:///….db] [--requests 200]

(The console's pages, dashboard and members table, are measured by benchmarks/pages.py.)

Without --database a small demo city is built first (its build time is reported). The app
runs in uvicorn on a free local port; a client sends what a browser sends (the device
cookie, the form's CSRF token and idempotency key) one request at a time, and the server
time of each request (first byte in to last byte out, measured inside the server) gives
p50/p95. `/healthz` in the same run is the floor: what any request costs here.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from _support import ServerTimes, emit, free_port, machine, migrated, percentiles, secret_key
from sqlalchemy import select

from o2oloop import clock
from o2oloop.api import create_app
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.codes import service as codes
from o2oloop.config import Settings
from o2oloop.customers.models import Consumer
from o2oloop.db import Database
from o2oloop.merchants.models import Terminal
from o2oloop.offers.models import Offer, OfferKind, OfferState
from o2oloop.terminal import pairing


def _city(url: str, secret: str) -> float:
    from o2oloop.analytics import service as analytics
    from o2oloop.sim.city import build_city

    db = migrated(url)
    started = time.perf_counter()
    build_city(db, secret_key=secret, seed=7, merchants_count=6, consumers=1500, days=90)
    with db.transaction() as session:
        analytics.analyze(session)
    db.dispose()
    return time.perf_counter() - started


def _codes(db: Database, terminal: Terminal, secret: str, count: int) -> list[str]:
    """Fresh claimed codes of a free coupon of the terminal's merchant with no time rule."""
    keys = codes.Keys.from_secret(secret)
    with db.transaction() as session:
        offers = session.scalars(
            select(Offer).where(
                Offer.merchant_id == terminal.merchant_id,
                Offer.kind == OfferKind.COUPON,
                Offer.state == OfferState.PUBLISHED,
            )
        ).all()
        offer = next(o for o in offers if not o.time_windows and not o.per_customer_limit)
        consumers = session.scalars(select(Consumer.id).limit(count)).all()
        texts = []
        for consumer_id in consumers:
            principal = Principal(key_id="bench", role=Role.CONSUMER, consumer_id=consumer_id)
            code = codes.claim(session, principal=principal, offer_id=offer.id, keys=keys)
            texts.append(keys.code_text(code.id))
    return texts


def _welcome_coupon(db: Database, terminal: Terminal) -> None:
    """A coupon with no rules, so every check of the run is a valid code."""
    from o2oloop.offers import schemas as offer_schemas
    from o2oloop.offers import service as offers

    admin = Principal(key_id="bench", role=Role.PLATFORM_ADMIN)
    with db.transaction() as session:
        offer = offers.create_offer(
            session,
            principal=admin,
            merchant_id=terminal.merchant_id,
            data=offer_schemas.OfferCreate.model_validate(
                {
                    "kind": "coupon",
                    "title": "Bench 5 off",
                    "discount_kind": "amount_off",
                    "amount_off": 500,
                }
            ),
        )
        offers.transition(
            session, principal=admin, merchant_id=terminal.merchant_id, offer_id=offer.id,
            action="publish",
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", help="an existing demo city (default: build a small one)")
    parser.add_argument("--secret", help="the city's O2O_SECRET_KEY (with --database)")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory()
    built = None
    secret = args.secret or secret_key()
    url = args.database
    if url is None:
        url = f"sqlite:///{(Path(scratch.name) / 'city.db').as_posix()}"
        built = _city(url, secret)
    db = migrated(url)
    with db.reading() as session:
        terminal = session.scalars(select(Terminal).where(Terminal.active).limit(1)).one()
        session.expunge(terminal)
    _welcome_coupon(db, terminal)
    texts = _codes(db, terminal, secret, args.requests)
    with db.transaction() as session:
        made = pairing.start(
            session, principal=Principal(key_id="bench", role=Role.PLATFORM_ADMIN),
            merchant_id=terminal.merchant_id, terminal_id=terminal.id, secret_key=secret,
        )  # fmt: skip
        token = pairing.complete(session, code=made.code, secret_key=secret).token
    settings = Settings(env="test", data_dir=Path(scratch.name), secret_key=secret)
    timed = ServerTimes(create_app(settings, db))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(timed, port=port, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, cookies={"o2o_terminal": token}, timeout=30) as client:
        for _ in range(20):  # warm up
            client.get("/healthz")
            client.get("/terminal")
        timed.times.clear()
        for text in texts:
            client.get("/healthz")
            page = client.get("/terminal")
            assert page.status_code == 200, page.text[:300]
            token_field = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            key_field = re.search(r'name="form_key" value="([^"]+)"', page.text)
            assert token_field and key_field
            check = client.post(
                "/terminal/check",
                data={
                    "csrf_token": token_field.group(1),
                    "form_key": key_field.group(1),
                    "code": text,
                    "bill": "128",
                },
            )
            assert check.status_code == 200 and "Valid code" in check.text, check.text[:300]
    server.should_exit = True
    thread.join(timeout=10)
    result = {
        "benchmark": "pages_terminal",
        "database": db.dialect,
        "demo_city_build_seconds": None if built is None else round(built, 1),
        "requests_each": len(texts),
        "floor GET /healthz": percentiles(timed.times["GET /healthz"]),
        "GET /terminal": percentiles(timed.times["GET /terminal"]),
        "POST /terminal/check (typed code, preview)": percentiles(
            timed.times["POST /terminal/check"]
        ),
        "machine": machine(),
        "measured_at": clock.now().isoformat(),
    }
    db.dispose()
    emit(result)


if __name__ == "__main__":
    main()
