"""Redemptions per second through the real HTTP server, on SQLite and PostgreSQL.

Usage: ``python benchmarks/redemption_http.py [--db sqlite|postgresql|both] [--count 60000]
[--clients 32] [--workers 2] [--duration 20] [--load wrk|httpx] [--[no-]access-log]``

Per database:

1. **prepare**, through the service layer against the database the server will use:
   one merchant, ``--stores`` stores (1 by default), one terminal (and key) per client
   dealt round them, a published amount-off coupon with no stock limit, a few thousand
   consumers (``customers.service.sign_up``) and
   ``--count`` claimed codes spread over them. The codes are inserted in one transaction
   exactly as ``codes.service.claim`` stores them (the row of ``_new_code``, the per-consumer
   ``offer_claims`` count and the offer's ``issued_count``), in bulk instead of one claim
   (six statements) at a time; their text is re-derived with
   ``Keys.from_secret(secret).code_text(code_id)`` and one is checked with
   ``service.locate`` before the server starts.
2. **serve**: ``o2oloop serve --workers 2`` as a subprocess on a free loopback port, with
   ``O2O_DATA_DIR`` (a temp dir; the SQLite file lives there) or ``O2O_DATABASE_URL`` (a
   scratch PostgreSQL database), ``O2O_SECRET_KEY`` and a very large
   ``O2O_TERMINAL_ATTEMPTS_PER_MINUTE``, and ``O2O_ACCESS_LOG`` from ``--[no-]access-log``
   (on, the default setting). Its log
   goes to a file.
3. **load**: ``--clients`` concurrent clients, every request
   ``POST /v1/terminal/redemptions {"code": ..., "bill_amount": 5000}`` with a code never
   sent before and one of ``--clients`` terminal keys, back to back over keep-alive
   connections for ``--duration`` seconds. ``--load wrk`` (default; Debian package ``wrk``)
   drives them from wrk, a C load generator, with ``redemption_wrk.lua``: on a 2-core machine
   it leaves the cores to the server (its CPU time is reported). ``--load httpx`` runs the
   clients as ``httpx.Client`` threads spread over ``--load-processes`` processes instead.
4. **verify**: rows in ``redemptions``, redeemed ``codes``, accepted attempts and the offer's
   ``redeemed_count`` all agree with the number of 201s (wrk stops with up to one request per
   connection in flight; the server completes those, so up to ``--clients`` more rows).

Prints one JSON object per database, then a summary object.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import _support
import httpx
import numpy as np
from _support import start_server, stop_server, wait_ready
from sqlalchemy import func, insert, select

from o2oloop import clock
from o2oloop.codes import service
from o2oloop.codes.models import Code, CodeState, OfferClaim, Redemption, RedemptionAttempt
from o2oloop.customers import service as customers
from o2oloop.db import Database, new_id
from o2oloop.idempotency.models import IdempotencyRecord
from o2oloop.jobs.models import Job, JobState, OutboxEntry
from o2oloop.offers.models import Offer
from o2oloop.offers.rules import code_expires_at
from o2oloop.offers.service import rules_of

PHASES = ("keys", "no_keys", "keys_no_worker", "keys_worker", "floor")


# ---- preparation -----------------------------------------------------------------------------


def prepare(
    db: Database, *, secret: str, clients: int, count: int, consumers: int, stores: int = 1
) -> dict:
    t0 = time.perf_counter()
    tenant = _support.make_tenant(db, terminals=clients, stores=stores)
    offer_id = _support.make_coupon(db, tenant)
    keys = service.Keys.from_secret(secret)
    with db.transaction() as session:
        consumer_ids = [customers.sign_up(session)[0].id for _ in range(consumers)]
    with db.transaction() as session:
        offer = session.get(Offer, offer_id)
        assert offer is not None
        now = clock.now()
        expires: datetime | None = code_expires_at(rules_of(offer), now)
        rows, claims = [], Counter[str]()
        for n in range(count):
            code_id = new_id("cod")
            consumer_id = consumer_ids[n % consumers]
            claims[consumer_id] += 1
            rows.append(
                {
                    "id": code_id,
                    "merchant_id": offer.merchant_id,
                    "offer_id": offer.id,
                    "consumer_id": consumer_id,
                    "digest": keys.digest(keys.serial_for(code_id)),
                    "state": CodeState.ACTIVE,
                    "claimed_at": now,
                    "expires_at": expires,
                    "price_paid": 0,
                }
            )
        session.execute(
            insert(OfferClaim),
            [{"offer_id": offer.id, "consumer_id": c, "claimed": k} for c, k in claims.items()],
        )
        session.execute(insert(Code), rows)
        offer.issued_count += count
    texts = [keys.code_text(row["id"]) for row in rows]
    with db.transaction() as session:  # the server will find these codes: check one here
        found = service.locate(session, merchant_id=tenant.merchant_id, text=texts[-1], keys=keys)
        assert found.code is not None and found.code.id == rows[-1]["id"]
    return {
        "tenant": tenant,
        "offer_id": offer_id,
        "codes": texts,
        "seconds": round(time.perf_counter() - t0, 2),
    }


# ---- the server ------------------------------------------------------------------------------


def start_worker(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """`o2oloop worker` beside the server (how PostgreSQL deployments run the outbox)."""
    exe = Path(sys.executable).with_name("o2oloop")
    handle = log.open("wb")
    process = subprocess.Popen(
        [str(exe), "worker"],
        env=env,
        cwd=cwd,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()
    return process


def _tree(pid: int) -> list[int]:
    """The pid and its descendants, from /proc (Linux)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    todo.extend(int(child) for child in handle.read().split())
            except FileNotFoundError:
                pass
    return pids


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, IndexError):
            pass
    return total / ticks


# ---- optional profile of one worker with py-spy ----------------------------------------------


def start_profile(pids: list[int], args: argparse.Namespace, tmpdir: Path) -> Any:
    """`py-spy record` of one uvicorn worker during the load (if --py-spy and installed)."""
    if not args.py_spy:
        return None
    exe = Path(sys.executable).with_name("py-spy")
    workers = [pid for pid in pids if _is_worker(pid)]
    if not exe.exists() or not workers:
        return {"skipped": "py-spy not installed in the venv or no worker found"}
    out = Path(args.py_spy_raw) if args.py_spy_raw else tmpdir / "profile.txt"
    seconds = max(1, int(min(args.duration, 15)))
    command = [str(exe), "record", "-p", str(workers[0]), "-d", str(seconds), "-r", "200"]
    command += ["-f", "raw", "-o", str(out), "--nonblocking", "--full-filenames"]
    if args.py_spy_gil:
        command += ["--gil"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return {"process": process, "out": out, "pid": workers[0]}


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
    except FileNotFoundError:
        return False
    return b"spawn_main" in cmdline and b"resource_tracker" not in cmdline


def finish_profile(spy: Any) -> dict[str, Any] | None:
    """Collapsed stacks -> share of samples per function: self (leaf) and inclusive."""
    if spy is None or "process" not in spy:
        return spy
    try:
        _, err = spy["process"].communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy["process"].kill()
        return {"skipped": "py-spy did not finish"}
    if not spy["out"].exists():
        return {"skipped": f"py-spy failed: {err.decode(errors='replace')[-300:]}"}
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in spy["out"].read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        total += n
        leaf[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n

    def share(counter: Counter[str]) -> dict[str, float]:
        return {k: round(100 * v / max(total, 1), 1) for k, v in counter.most_common(25)}

    return {
        "worker_pid": spy["pid"],
        "samples": total,
        "note": "one worker, all threads, idle samples excluded (py-spy default); % of samples",
        "self_percent": share(leaf),
        "inclusive_percent": share(inclusive),
        "o2oloop_inclusive_percent": {
            k: round(100 * v / max(total, 1), 1)
            for k, v in [kv for kv in inclusive.most_common() if "o2oloop/" in kv[0]][:20]
        },
    }


def _frame(raw: str) -> str:
    """`function (path/to/module.py:123)` -> `function (package/module.py)`."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = path.split("/")
    if "/o2oloop/" in path and "site-packages/sqlalchemy" not in path:
        short = "/".join(parts[parts.index("o2oloop") :][-3:])
    elif "site-packages" in path:
        short = "/".join(parts[-2:])
    else:
        short = parts[-1]
    return f"{name} ({short})"


# ---- what PostgreSQL backends wait on during the load ------------------------------------------


class WaitSampler:
    """Samples pg_stat_activity of the scratch database every 100 ms (PostgreSQL only)."""

    def __init__(self, url: str, name: str) -> None:
        import threading

        self.url, self.name = url, name
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        conninfo = make_url(self.url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(conninfo, autocommit=True) as connection:
            while not self.stop.wait(0.1):
                rows = connection.execute(
                    "SELECT state, wait_event_type, wait_event, left(query, 40) "
                    "FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.name,),
                ).fetchall()
                self.samples += 1
                for state, kind, event, query in rows:
                    if state == "active" and kind == "Lock":  # which statement waits
                        self.counts[f"active: Lock/{event}: {' '.join(query.split())}"] += 1
                    elif state == "active":
                        self.counts[f"active: {kind or 'CPU'}/{event or '-'}"] += 1
                    else:
                        self.counts[str(state)] += 1

    def __enter__(self) -> WaitSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def result(self) -> dict[str, Any]:
        n = max(self.samples, 1)
        return {
            "samples": self.samples,
            "note": "mean number of the database's backends in each state per sample",
            "backends": {k: round(v / n, 2) for k, v in self.counts.most_common(12)},
        }


# ---- the load --------------------------------------------------------------------------------


def _client(
    base: str,
    token: str,
    codes: list[str],
    bill: int,
    keys: bool,
    start: Any,
    duration: float,
    out: dict[str, Any],
) -> None:
    latencies: list[float] = []
    sent: list[float] = []
    succeeded: list[bool] = []
    statuses: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        client.get("/healthz")  # open the keep-alive connection before the clock starts
        start.wait()
        t_begin = time.perf_counter()
        stop_at = t_begin + duration
        for code in codes:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            try:
                response = client.post(
                    "/v1/terminal/redemptions",
                    json={"code": code, "bill_amount": bill},
                    headers={"Idempotency-Key": f"till-{code}"} if keys else None,
                )
                statuses[str(response.status_code)] += 1
                succeeded.append(response.status_code == 201)
            except httpx.HTTPError as error:
                statuses[f"exception:{type(error).__name__}"] += 1
                succeeded.append(False)
            latencies.append(time.perf_counter() - t0)
            sent.append(t0)
        out.update(
            latencies=latencies,
            sent=sent,
            succeeded=succeeded,
            statuses=statuses,
            began=t_begin,
            ended=time.perf_counter(),
        )


def load_process(
    base: str,
    jobs: list[tuple[str, list[str]]],
    bill: int,
    keys: bool,
    ready: Any,
    go: Any,
    duration: float,
    results: Any,
) -> None:
    """A few clients as threads in one process; reports their figures through `results`."""
    import threading

    start = threading.Event()
    outs: list[dict[str, Any]] = [{} for _ in jobs]
    threads = [
        threading.Thread(
            target=_client, args=(base, token, codes, bill, keys, start, duration, out)
        )
        for (token, codes), out in zip(jobs, outs, strict=True)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # let every thread open its connection
    ready.release()
    go.wait()
    start.set()
    for thread in threads:
        thread.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put(
        {
            "latencies": [x for out in outs for x in out["latencies"]],
            "sent": [x for out in outs for x in out["sent"]],
            "succeeded": [x for out in outs for x in out["succeeded"]],
            "statuses": dict(sum((out["statuses"] for out in outs), Counter())),
            "began": min(out["began"] for out in outs),
            "ended": max(out["ended"] for out in outs),
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
        }
    )


def run_load(
    base: str,
    tokens: list[str],
    codes: list[str],
    *,
    processes: int,
    duration: float,
    bill: int,
    keys: bool,
    samples: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """`processes` processes of httpx tills redeeming for `duration` seconds; with `samples`,
    also each request's start (perf_counter, one clock across processes on Linux), latency
    in ms and whether it succeeded, put there."""
    clients = len(tokens)
    slices = [codes[i::clients] for i in range(clients)]  # distinct codes for every client
    ctx = multiprocessing.get_context("spawn")
    ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    groups = [list(range(p, clients, processes)) for p in range(processes)]
    workers = [
        ctx.Process(
            target=load_process,
            args=(
                base,
                [(tokens[i], slices[i]) for i in group],
                bill,
                keys,
                ready,
                go,
                duration,
                results,
            ),
        )
        for group in groups
        if group
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        if not ready.acquire(timeout=180):  # spawned processes import slowly on a busy machine
            raise RuntimeError("load processes did not get ready")
    go.set()
    parts = [results.get(timeout=duration + 120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    latencies = np.array([x for part in parts for x in part["latencies"]]) * 1000
    if samples is not None:
        samples["sent"] = np.array([x for part in parts for x in part["sent"]])
        samples["latency_ms"] = latencies
        samples["succeeded"] = np.array([x for part in parts for x in part["succeeded"]])
    statuses: Counter[str] = Counter()
    for part in parts:
        statuses.update(part["statuses"])
    elapsed = max(p["ended"] for p in parts) - min(p["began"] for p in parts)
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) if len(latencies) else (0, 0, 0)
    latency_ms = {"p50": p50, "p95": p95, "p99": p99}
    if len(latencies):
        latency_ms |= {"max": latencies.max(), "mean": latencies.mean()}
    return {
        "load_generator": f"httpx threads in {processes} processes",
        **_figures(statuses, elapsed, latency_ms),
        "load_generator_cpu_seconds": round(sum(p["cpu_seconds"] for p in parts), 1),
    }


def _figures(statuses: dict[str, int], seconds: float, latency_ms: dict[str, Any]) -> dict:
    """What either load generator reports, in one shape."""
    ok, requests = statuses.get("201", 0), sum(statuses.values())
    return {
        "requests": requests,
        "seconds": round(seconds, 2),
        "redemptions_201": ok,
        "redemptions_per_second": round(ok / seconds, 1),
        "requests_per_second": round(requests / seconds, 1),
        "latency_ms": {name: round(float(value), 1) for name, value in latency_ms.items()},
        "status_counts": dict(sorted(statuses.items())),
        "errors_by_status": {k: v for k, v in sorted(statuses.items()) if k != "201"},
    }


WRK_SCRIPT = Path(__file__).with_name("redemption_wrk.lua")


def run_wrk(
    base: str,
    tokens: list[str],
    codes: list[str],
    *,
    clients: int,
    duration: float,
    tmpdir: Path,
    keys: bool,
) -> dict[str, Any]:
    """The same load from wrk, a C load generator: it leaves the cores to the server."""
    import json
    import shutil

    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk); or use --load httpx")
    threads = min(2, clients)  # wrk needs at least one connection per thread
    plan = tmpdir / "codes.txt"
    # A till sends a fresh Idempotency-Key with every redemption (it retries with the same).
    plan.write_text(
        "".join(
            f"{tokens[i % len(tokens)]} {code}" + (f" till-{i}-{code[:4]}\n" if keys else "\n")
            for i, code in enumerate(codes)
        )
    )
    command = [exe, "-t", str(threads), "-c", str(clients), "-d", f"{duration:g}s"]
    command += ["--latency", "--timeout", "30s", "-s", str(WRK_SCRIPT), base, "--"]
    command += [str(plan), str(threads)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # earlier servers are counted there
    t0 = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next(x for x in finished.stdout.splitlines() if x.startswith('{"wrk"'))
    report = json.loads(line)
    statuses = {k: v for k, v in report["statuses"].items() if k != "200"}  # 200: out of codes
    latency_ms = {name: value / 1000 for name, value in report["latency_us"].items()}
    return {
        "load_generator": f"wrk (C), {threads} threads",
        **_figures(statuses, report["duration_us"] / 1e6, latency_ms),
        "socket_errors": {k: v for k, v in report["errors"].items() if v and k != "status"},
        "load_generator_cpu_seconds": round(wrk_cpu, 1),
        "load_wall_seconds": round(wall, 2),
    }


# ---- driver ------------------------------------------------------------------------------


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    name = f"o2o_bench_http_{os.getpid()}"
    secret = _support.secret_key()
    with tempfile.TemporaryDirectory(prefix="o2o-http-") as tmp:
        tmpdir = Path(tmp)
        url = _support.scratch_url(backend, tmpdir, name)
        try:
            db = _support.migrated(url)
            version = _support.server_version(db)
            prepared = prepare(
                db,
                secret=secret,
                clients=args.clients,
                count=args.count,
                consumers=args.consumers,
                stores=args.stores,
            )
            db.dispose()
            phases: dict[str, Any] = {}
            product = [phase for phase in args.phases if phase != "floor"]
            for phase in args.phases:
                if phase == "floor":
                    phases[phase] = run_floor(backend, url, args, tmpdir)
                else:
                    share = (product.index(phase), len(product))
                    phases[phase] = run_product(
                        backend, url, name, secret, prepared, args, tmpdir, phase=phase, share=share
                    )
        finally:
            if backend == "postgresql":
                _support.drop_postgres_database(name)
    rate = {k: v["redemptions_per_second"] for k, v in phases.items()}
    ratios = {}
    # The outbox's worker against none, in the same run: in-process on SQLite, a process
    # beside the server on PostgreSQL.
    pairs = [("keys", "no_keys"), ("keys", "keys_no_worker"), ("keys_worker", "keys")]
    pairs += [("keys", "floor"), ("no_keys", "floor")]
    for top, bottom in pairs:
        if top in rate and bottom in rate:
            ratios[f"{top}_over_{bottom}"] = round(rate[top] / max(rate[bottom], 0.1), 3)
    return {
        "benchmark": "redemption_http",
        "database": backend,
        "server": version,
        "workers": args.workers,
        "clients": args.clients,
        "stores": args.stores,
        "load": args.load,
        "duration_target_s": args.duration,
        "codes_prepared": args.count,
        "consumers": args.consumers,
        "prepare_seconds": prepared["seconds"],
        "access_log": args.access_log,
        "phases": phases,
        "ratios": ratios,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **_support.machine(),
    }


def _counts(url: str, offer_id: str) -> dict[str, int]:
    """What the database holds after a phase (read while the server is idle)."""
    db = Database.from_url(url)
    try:
        with db.reading() as session:
            offer = session.get(Offer, offer_id)
            assert offer is not None
            return {
                "redemption_rows": session.scalar(select(func.count()).select_from(Redemption)),
                "codes_redeemed": session.scalar(
                    select(func.count()).select_from(Code).where(Code.state == CodeState.REDEEMED)
                ),
                "accepted_attempts": session.scalar(
                    select(func.count())
                    .select_from(RedemptionAttempt)
                    .where(RedemptionAttempt.accepted.is_(True))
                ),
                "offer_redeemed_count": offer.redeemed_count,
                "idempotency_records": session.scalar(
                    select(func.count()).select_from(IdempotencyRecord)
                ),
            }
    finally:
        db.dispose()


def run_product(
    backend: str,
    url: str,
    name: str,
    secret: str,
    prepared: dict[str, Any],
    args: argparse.Namespace,
    tmpdir: Path,
    *,
    phase: str,
    share: tuple[int, int],
) -> dict[str, Any]:
    """One phase against `o2oloop serve`, with codes of its own (`share`: this phase's index
    and how many product phases split the codes)."""
    keys = phase != "no_keys"
    index, phases = share
    codes = prepared["codes"][index::phases]
    before = _counts(url, prepared["offer_id"])
    env = {
        **os.environ,
        "O2O_ENV": "development",
        "O2O_DATA_DIR": str(tmpdir),
        "O2O_SECRET_KEY": secret,
        "O2O_TERMINAL_ATTEMPTS_PER_MINUTE": "1000000000",
        "O2O_ACCESS_LOG": "true" if args.access_log else "false",
        # The in-process worker (SQLite) is on as shipped, off in the phase without one.
        "O2O_JOBS_IN_PROCESS": "false" if phase == "keys_no_worker" else "true",
    }
    env.pop("O2O_DATABASE_URL", None)
    if backend == "postgresql":
        env["O2O_DATABASE_URL"] = url
    port = _support.free_port()
    log = tmpdir / f"server-{phase}.log"
    process = worker = None
    try:
        asked = time.monotonic()
        process = start_server(env, port, tmpdir, log, args.workers)
        ready_seconds = round(time.monotonic() - asked, 1)
        if phase == "keys_worker":
            worker = start_worker(env, tmpdir, tmpdir / "worker.log")
        server_pids = _tree(process.pid)
        cpu_before = cpu_seconds(server_pids)
        tenant = prepared["tenant"]
        spy = start_profile(server_pids, args, tmpdir)
        sampler = WaitSampler(url, name) if backend == "postgresql" else None
        with sampler or contextlib.nullcontext():
            tokens = [token for _, token in tenant.terminals]
            base = f"http://127.0.0.1:{port}"
            if args.load == "wrk":
                load = run_wrk(
                    base,
                    tokens,
                    codes,
                    clients=args.clients,
                    duration=args.duration,
                    tmpdir=tmpdir,
                    keys=keys,
                )
            else:
                load = run_load(
                    base,
                    tokens,
                    codes,
                    processes=args.load_processes,
                    duration=args.duration,
                    bill=5000,
                    keys=keys,
                )
        server_cpu = cpu_seconds(server_pids) - cpu_before
        profile = finish_profile(spy)
        stop_server(process)
        process = None
    finally:
        if process is not None:
            stop_server(process)
        if worker is not None:
            stop_server(worker)
    after = _counts(url, prepared["offer_id"])
    jobs = _jobs(url)
    made = {k: after[k] - before[k] for k in after}
    ok = load["redemptions_201"]
    log_tail = log.read_text(errors="replace").splitlines()
    server_errors = [line for line in log_tail if "Traceback" in line or "ERROR" in line]
    kept_log = None
    if server_errors or load["errors_by_status"]:
        kept_log = Path(tempfile.gettempdir()) / f"o2o-bench-{backend}-{os.getpid()}-{phase}.log"
        kept_log.write_bytes(log.read_bytes())
    exceptions = Counter(
        line.strip()[:300]
        for line in log_tail
        if line[:1] != " " and ("Error:" in line or "Exception:" in line)
    )
    rows = made["redemption_rows"]
    return {
        "idempotency_keys": keys,
        "worker": _worker_of(backend, phase),
        "server_ready_seconds": ready_seconds,
        **load,
        "server_cpu_seconds": round(server_cpu, 1),
        "server_cpu_ms_per_request": round(1000 * server_cpu / max(load["requests"], 1), 2),
        "verified": {
            **made,
            # wrk stops with up to one request per connection in flight: the server finishes
            # those, so their rows exist without a 201 having been counted.
            "answered_after_stop": rows - ok,
            # Every code used means the load stopped early and the rate is a lower bound.
            "codes_ran_out": rows >= len(codes),
            "rows_equal_201s": rows
            == made["codes_redeemed"]
            == made["accepted_attempts"]
            == made["offer_redeemed_count"]
            and 0 <= rows - ok <= (args.clients if args.load == "wrk" else 0),
            # With keys, every answer is stored with its redemption (and only then).
            "answers_stored_with_redemptions": made["idempotency_records"] == (rows if keys else 0),
        },
        "server_log_error_lines": len(server_errors),
        "server_log_exceptions": dict(exceptions.most_common(5)),
        "server_log_kept_at": str(kept_log) if kept_log else None,
        "postgres_wait_events": sampler.result() if sampler else None,
        "outbox_after_phase": jobs,
        "profile": profile,
    }


def _worker_of(backend: str, phase: str) -> str:
    if phase == "keys_worker":
        return "o2oloop worker process beside the server"
    if backend == "sqlite" and phase != "keys_no_worker":
        return "in-process (as shipped on SQLite)"
    return "none"


def _jobs(url: str) -> dict[str, int]:
    """How far the outbox got: events written and dispatched, jobs done (all phases so far)."""
    db = Database.from_url(url)
    try:
        with db.reading() as session:
            return {
                "events": session.scalar(select(func.count()).select_from(OutboxEntry)) or 0,
                "events_dispatched": session.scalar(
                    select(func.count())
                    .select_from(OutboxEntry)
                    .where(OutboxEntry.dispatched_at.is_not(None))
                )
                or 0,
                "jobs_done": session.scalar(
                    select(func.count()).select_from(Job).where(Job.state == JobState.DONE)
                )
                or 0,
            }
    finally:
        db.dispose()


FLOOR_APP = Path(__file__).with_name("floor_app.py")


def run_floor(backend: str, url: str, args: argparse.Namespace, tmpdir: Path) -> dict[str, Any]:
    """The bare one-UPDATE endpoint (`floor_app.py`) through uvicorn with as many workers."""
    import secrets

    import floor_app

    codes = [secrets.token_hex(12) for _ in range(args.count)]
    db = Database.from_url(url)
    try:
        raw = db.engine.raw_connection()
        try:
            floor_app.prepare(raw.driver_connection, codes, sqlite=backend == "sqlite")
        finally:
            raw.close()
    finally:
        db.dispose()
    port = _support.free_port()
    command = [sys.executable, "-m", "uvicorn", "floor_app:app", "--app-dir", str(FLOOR_APP.parent)]
    command += ["--workers", str(args.workers), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning"]
    command += ["--access-log" if args.access_log else "--no-access-log"]
    env = {**os.environ, "FLOOR_DATABASE_URL": url}
    log = tmpdir / "floor.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle.close()
    try:
        wait_ready(process, port, log)
        pids = _tree(process.pid)
        cpu_before = cpu_seconds(pids)
        load = run_wrk(
            f"http://127.0.0.1:{port}",
            ["floor"],
            codes,
            clients=args.clients,
            duration=args.duration,
            tmpdir=tmpdir,
            keys=False,
        )
        server_cpu = cpu_seconds(pids) - cpu_before
    finally:
        stop_server(process)
    return {
        "endpoint": "bare FastAPI, one conditional UPDATE per request (benchmarks/floor_app.py)",
        **load,
        "server_cpu_seconds": round(server_cpu, 1),
        "server_cpu_ms_per_request": round(1000 * server_cpu / max(load["requests"], 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--count",
        type=int,
        default=60_000,
        help="claimed codes to prepare (more than the run can use)",
    )
    parser.add_argument("--consumers", type=int, default=2_000)
    parser.add_argument(
        "--stores",
        type=int,
        default=1,
        help="stores the terminals are dealt round (1: every till of one store, the worst case)",
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the server's per-request log line (O2O_ACCESS_LOG), on as by default",
    )
    parser.add_argument(
        "--load",
        choices=("wrk", "httpx"),
        default="wrk",
        help="load generator: wrk (C, needs the wrk package) or httpx threads in processes",
    )
    parser.add_argument("--load-processes", type=int, default=4, help="httpx load only")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of load in each phase"
    )
    parser.add_argument(
        "--phases",
        default="keys,no_keys,floor",
        help="in this order: keys (a fresh Idempotency-Key per request, as tills send), "
        "no_keys, keys_no_worker (keys, without SQLite's in-process worker), keys_worker "
        "(keys, with an `o2oloop worker` process beside the server), floor (the bare "
        "one-UPDATE endpoint, floor_app.py)",
    )
    parser.add_argument(
        "--py-spy", action="store_true", help="profile one worker with py-spy during the load"
    )
    parser.add_argument(
        "--py-spy-gil",
        action="store_true",
        help="only samples holding the GIL (Python's own CPU, not its waits in C)",
    )
    parser.add_argument("--py-spy-raw", help="keep py-spy's collapsed stacks in this file")
    args = parser.parse_args()
    args.consumers = max(1, min(args.consumers, args.count))
    args.phases = [phase.strip() for phase in args.phases.split(",") if phase.strip()]
    if not set(args.phases) <= set(PHASES):
        parser.error(f"--phases: {', '.join(PHASES)}")
    summary: dict[str, Any] = {"benchmark": "redemption_http", "summary": True}
    for backend in _support.backends(args.db):
        if backend == "postgresql" and (why := _support.postgres_unavailable()):
            summary[backend] = {"skipped": why}
            continue
        result = run(backend, args)
        _support.emit(result)
        summary[backend] = {
            "ratios": result["ratios"],
            **{
                phase: {
                    "redemptions_per_second": figures["redemptions_per_second"],
                    "latency_ms": figures["latency_ms"],
                    "server_cpu_ms_per_request": figures["server_cpu_ms_per_request"],
                    "errors_by_status": figures["errors_by_status"],
                    "verified": figures.get("verified", {}).get("rows_equal_201s"),
                }
                for phase, figures in result["phases"].items()
            },
        }
    _support.emit(summary)


if __name__ == "__main__":
    sys.exit(main())
