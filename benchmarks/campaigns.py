"""Campaigns at scale: launching to 100,000 members, and results with CUPED over 1,000,000.

Usage: ``python benchmarks/campaigns.py [--members 100000] [--results-members 1000000]
[--backend sqlite|postgresql|both] [--only launch|results|both] [--prepared DIR [--prepare]]
[--prefix NAME_]``; prints JSON.

Loading the members (and a million targets with their visits) takes longer than the timed
part. With ``--prepared DIR`` the loaded databases are kept (SQLite files in DIR, PostgreSQL
databases ``campaigns_*_prepared``) and reused: ``--prepare`` only builds the missing ones
(run it untimed), and a timed run launches on a fresh copy of the prepared launch database
(a file copy, or CREATE DATABASE … TEMPLATE) and reads results from the prepared one.
``--prefix`` goes before every database name (engineers sharing a server keep theirs apart).

Launch: consumers and consenting memberships are loaded in bulk (not timed); then, timed, a
"now" campaign is launched through the service layer (the audience SELECT, the keyed-hash
arms, the pre-period GROUP BY, the bulk INSERT of targets) and sent by `runner.send_all`
(consent re-check, caps, budget, one code, one inbox message and one code.claimed event per
treated member, in batches of 2,000 per transaction). Two floors are measured in the same
run: a plain SQLAlchemy bulk INSERT of as many rows as members, and of as many rows as the
launch wrote in all (targets, codes, claims, messages, contact windows, outbox). The load
average is printed beside each case: the machine is shared.

Results: 1,000,000 targets (10 % control) and their visits are loaded in bulk (not timed);
then `results.campaign_results` runs: the database sums each arm's sufficient statistics
(n, Σx, Σx² from the targets; Σy, Σy², Σxy from the targets their visits reach), then raw
and CUPED lifts, SRM, costs. The floor reads the same targets and visits once, summed with
nothing joined. Peak memory is the process's max RSS after it (with --prepared the load ran
in another process) and the traced Python heap peak of the results call alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from _support import (
    PG_URL,
    backends,
    drop_postgres_database,
    emit,
    fresh_postgres_database,
    machine,
    make_coupon,
    make_tenant,
    maxrss_mib,
    migrated,
    postgres_unavailable,
    scratch_url,
    secret_key,
    server_version,
)

from o2oloop import clock
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.campaigns import launch, results, runner, schemas, service
from o2oloop.campaigns.models import Campaign, CampaignTarget, ContactWindow
from o2oloop.campaigns.policy import Policy
from o2oloop.codes.models import Code, OfferClaim
from o2oloop.customers.models import Consumer, Membership
from o2oloop.db import Database
from o2oloop.jobs.models import OutboxEntry
from o2oloop.notify.models import Message
from o2oloop.visits.models import Visit

CHUNK = 20_000


def _load_members(db, merchant_id: str, n: int) -> None:
    now = clock.now()
    for start in range(0, n, CHUNK):
        ids = range(start, min(n, start + CHUNK))
        with db.transaction() as session:
            session.execute(
                insert(Consumer),
                [{"id": f"csm_b{i:09d}", "display_name": f"M{i}", "created_at": now} for i in ids],
            )
            session.execute(
                insert(Membership),
                [
                    {
                        "id": f"mem_b{i:09d}",
                        "merchant_id": merchant_id,
                        "consumer_id": f"csm_b{i:09d}",
                        "source": "pos",
                        "marketing_consent": True,
                        "consent_given_at": now,
                        "visit_count": 1,
                        "total_spent": 5000,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )


def _floor(db, rows: int, prefix: str = "floor") -> float:
    """A plain bulk insert of `rows` two-column rows (contact windows) in one transaction."""
    started = time.perf_counter()
    with db.transaction() as session:
        for start in range(0, rows, CHUNK):
            session.execute(
                insert(ContactWindow),
                [
                    {"consumer_id": f"{prefix}{i}", "scope": prefix, "last_contacted_at": None}
                    for i in range(start, min(rows, start + CHUNK))
                ],
            )
    return time.perf_counter() - started


def _pg_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _pg_exists(name: str) -> bool:
    engine = create_engine(PG_URL)
    with engine.connect() as connection:
        found = connection.scalar(
            text("select 1 from pg_database where datname = :name"), {"name": name}
        )
    engine.dispose()
    return bool(found)


def _pg_copy(template: str, name: str) -> str:
    drop_postgres_database(name)
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return _pg_url(name)


def _prepared(
    backend: str, name: str, store: Path | None, tmp: Path, build
) -> tuple[str, dict[str, str], bool]:
    """A database filled by `build(db) -> meta`: a scratch one, or the kept one under `store`
    (built when missing). Returns its URL, its meta and whether the run may write to it."""
    if store is None:
        db = migrated(scratch_url(backend, tmp, name))
        meta = build(db)
        url = db.engine.url.render_as_string(hide_password=False)
        db.dispose()
        return url, meta, True
    store.mkdir(parents=True, exist_ok=True)
    meta_file = store / f"{name}.{backend}.json"
    kept = store / f"{name}.db" if backend == "sqlite" else None
    ready = meta_file.exists() and (
        kept.exists() if kept is not None else _pg_exists(f"{name}_prepared")
    )
    if not ready:
        url = (
            f"sqlite:///{kept.as_posix()}"
            if kept is not None
            else fresh_postgres_database(f"{name}_prepared")
        )
        if kept is not None:
            kept.unlink(missing_ok=True)
        db = migrated(url)
        meta = build(db)
        if backend == "postgresql":  # what autovacuum does after a bulk load (off here)
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("ANALYZE"))
        meta_file.write_text(json.dumps(meta))
        db.dispose()
    meta = json.loads(meta_file.read_text())
    if kept is not None:
        return f"sqlite:///{kept.as_posix()}", meta, False
    return _pg_url(f"{name}_prepared"), meta, False


def _writable_copy(backend: str, name: str, url: str, tmp: Path) -> str:
    """A copy of a prepared database the timed run may change."""
    if backend == "sqlite":
        copy = tmp / f"{name}.db"
        shutil.copyfile(make_url(url).database, copy)
        return f"sqlite:///{copy.as_posix()}"
    return _pg_copy(f"{name}_prepared", name)


def _build_launch(members: int):
    def build(db: Database) -> dict[str, str]:
        tenant = make_tenant(db)
        offer_id = make_coupon(db, tenant)
        _load_members(db, tenant.merchant_id, members)
        with db.transaction() as session:
            cid = service.create_campaign(
                session,
                principal=tenant.admin,
                merchant_id=tenant.merchant_id,
                data=schemas.CampaignCreate(name="Everyone", offer_id=offer_id),
            ).id
        return {"merchant_id": tenant.merchant_id, "key_id": tenant.admin.key_id, "campaign": cid}

    return build


def bench_launch(
    backend: str, members: int, tmp: Path, store: Path | None, prepare_only: bool, prefix: str = ""
) -> dict[str, object]:
    name = f"{prefix}campaigns_launch_{members}"
    url, meta, writable = _prepared(backend, name, store, tmp, _build_launch(members))
    if prepare_only:
        return {"backend": backend, "prepared": name}
    if not writable:
        url = _writable_copy(backend, name, url, tmp)
    db = Database.from_url(url)
    try:
        policy = Policy(secret_key=secret_key(), platform_cap_days=1)
        admin = Principal(
            key_id=meta["key_id"], role=Role.MERCHANT_ADMIN, merchant_id=meta["merchant_id"]
        )
        cid = meta["campaign"]
        load_before = os.getloadavg()
        cpu = time.process_time()
        started = time.perf_counter()
        with db.transaction() as session:
            launch.transition(
                session,
                principal=admin,
                merchant_id=meta["merchant_id"],
                campaign_id=cid,
                action="launch",
                policy=policy,
            )
        targeted = time.perf_counter()
        sent = runner.send_all(db, policy=policy)
        done = time.perf_counter()
        cpu = time.process_time() - cpu
        load_after = os.getloadavg()
        with db.reading() as session:
            targets = session.scalar(select(func.count()).select_from(CampaignTarget))
            messages = session.scalar(select(func.count()).select_from(Message))
            written = sum(
                session.scalar(select(func.count()).select_from(table)) or 0
                for table in (CampaignTarget, Message, Code, OfferClaim, ContactWindow, OutboxEntry)
            )
        floor = _floor(db, members)
        floor_all = _floor(db, written, prefix="all")
        return {
            "backend": backend,
            "server": server_version(db),
            "members": members,
            "targets": targets,
            "sent": sent.sent,
            "messages": messages,
            "rows_written": written,
            "target_seconds": round(targeted - started, 2),
            "send_seconds": round(done - targeted, 2),
            "launch_total_seconds": round(done - started, 2),
            "launch_cpu_seconds_this_process": round(cpu, 2),
            "floor_bulk_insert_seconds": round(floor, 2),
            "floor_bulk_insert_rows": members,
            "floor_bulk_insert_all_rows_seconds": round(floor_all, 2),
            "launch_over_floor_all_rows": round((done - started) / floor_all, 1),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        }
    finally:
        db.dispose()
        if backend == "postgresql":
            drop_postgres_database(name)


def _load_results(db, campaign_id: str, merchant_id: str, store_id: str, n: int) -> None:
    rng = np.random.default_rng(1)
    now = clock.now()
    targeted = now - timedelta(days=20)
    until = targeted + timedelta(days=30)
    rates = rng.gamma(0.6, 1 / 30, n)
    arms = np.where(rng.random(n) < 0.1, "control", "treatment")
    pre = rng.poisson(rates * 90)
    post = rng.poisson(rates * 20 * np.where(arms == "treatment", 1.3, 1.0))
    for start in range(0, n, CHUNK):
        part = range(start, min(n, start + CHUNK))
        with db.transaction() as session:
            session.execute(
                insert(Consumer),
                [{"id": f"csm_r{i:09d}", "display_name": "", "created_at": now} for i in part],
            )
            session.execute(
                insert(CampaignTarget),
                [
                    {
                        "campaign_id": campaign_id,
                        "merchant_id": merchant_id,
                        "consumer_id": f"csm_r{i:09d}",
                        "member_id": None,
                        "occurrence": "launch",
                        "arm": str(arms[i]),
                        "state": "sent" if arms[i] == "treatment" else "held_out",
                        "targeted_at": targeted,
                        "measure_until": until,
                        "pre_visits": int(pre[i]),
                        "pre_spend": int(pre[i]) * 6000,
                    }
                    for i in part
                ],
            )
            visits = [
                {
                    "id": f"vis_r{i:09d}_{k}",
                    "merchant_id": merchant_id,
                    "store_id": store_id,
                    "consumer_id": f"csm_r{i:09d}",
                    "amount": 6000,
                    "currency": "CNY",
                    "occurred_at": targeted + timedelta(days=1 + k),
                    "source": "pos",
                    "items": [],
                    "created_at": now,
                }
                for i in part
                for k in range(int(post[i]))
            ]
            if visits:
                session.execute(insert(Visit), visits)


def _read_floor(db: Database, campaign_id: str) -> float:
    """The floor: each row results read, read once with nothing joined (the targets summed
    per arm, the merchant's visits summed)."""
    started = time.perf_counter()
    with db.reading() as session:
        campaign = session.get(Campaign, campaign_id)
        session.execute(
            select(CampaignTarget.arm, func.count(), func.sum(CampaignTarget.pre_visits))
            .where(CampaignTarget.campaign_id == campaign_id)
            .group_by(CampaignTarget.arm)
        ).all()
        session.execute(
            select(func.count(), func.sum(Visit.amount)).where(
                Visit.merchant_id == campaign.merchant_id
            )
        ).one()
    return time.perf_counter() - started


def _build_results(n: int):
    def build(db: Database) -> dict[str, str]:
        tenant = make_tenant(db)
        offer_id = make_coupon(db, tenant)
        with db.transaction() as session:
            cid = service.create_campaign(
                session,
                principal=tenant.admin,
                merchant_id=tenant.merchant_id,
                data=schemas.CampaignCreate(name="Big", offer_id=offer_id),
            ).id
        _load_results(db, cid, tenant.merchant_id, tenant.store_id, n)
        return {"campaign": cid}

    return build


def bench_results(
    backend: str, n: int, tmp: Path, store: Path | None, prepare_only: bool, prefix: str = ""
) -> dict[str, object]:
    name = f"{prefix}campaigns_results_{n}"
    (tmp / "results").mkdir(exist_ok=True)
    loading = time.perf_counter()
    url, meta, _ = _prepared(backend, name, store, tmp / "results", _build_results(n))
    loaded = time.perf_counter() - loading
    if prepare_only:
        return {"backend": backend, "prepared": name, "seconds": round(loaded, 1)}
    db = Database.from_url(url)
    try:
        load_before = os.getloadavg()
        tracemalloc.start()
        started = time.perf_counter()
        with db.reading() as session:
            out = results.campaign_results(
                session, campaign=session.get(Campaign, meta["campaign"])
            )
        seconds = time.perf_counter() - started
        _, heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        floor = _read_floor(db, meta["campaign"])
        return {
            "backend": backend,
            "targets": out["audience"],
            "setup_seconds_untimed": round(loaded, 1),
            "results_seconds": round(seconds, 2),
            "floor_read_seconds": round(floor, 2),
            "results_over_floor": round(seconds / floor, 1),
            "python_heap_peak_mib": round(heap_peak / 2**20, 1),
            "max_rss_mib": maxrss_mib(),
            "visits_lift_per_member_cuped": round(
                out["visits"]["cuped"]["difference_per_member"], 4
            ),
            "visits_interval_95": [round(x, 4) for x in out["visits"]["cuped"]["interval_95"]],
            "variance_reduction": round(out["visits"]["variance_reduction"], 3),
            "srm_p_value": round(out["srm"]["p_value"], 4),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        db.dispose()
        if backend == "postgresql" and store is None:
            drop_postgres_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--results-members", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--only", choices=["launch", "results", "both"], default="both")
    parser.add_argument("--prepared", type=Path, help="keep and reuse loaded databases here")
    parser.add_argument("--prepare", action="store_true", help="only build what --prepared lacks")
    parser.add_argument("--prefix", default="", help="before every database's name")
    args = parser.parse_args()
    if args.prepare and args.prepared is None:
        parser.error("--prepare needs --prepared DIR")
    out: dict[str, object] = {"benchmark": "campaigns", **machine(), "launch": [], "results": []}
    for backend in backends(args.backend):
        if backend == "postgresql" and (reason := postgres_unavailable()):
            out[f"{backend}_skipped"] = reason
            continue
        with tempfile.TemporaryDirectory() as tmp:
            if args.only in ("launch", "both"):
                out["launch"].append(  # type: ignore[attr-defined]
                    bench_launch(
                        backend, args.members, Path(tmp), args.prepared, args.prepare, args.prefix
                    )
                )
            if args.only in ("results", "both"):
                out["results"].append(  # type: ignore[attr-defined]
                    bench_results(
                        backend,
                        args.results_members,
                        Path(tmp),
                        args.prepared,
                        args.prepare,
                        args.prefix,
                    )
                )
    emit(out)


if __name__ == "__main__":
    main()
