"""Redemption latency at the counter while `o2oloop analyze` scores a million members.

Usage: ``python benchmarks/redemption_during_analyze.py [--members 1000000] [--merchants 100]
[--clients 8] [--before 10] [--during 60] [--url URL] [--keep DIR] [--prepare-only]``

1. **build**: a scratch database (SQLite by default, or ``--url`` an empty PostgreSQL
   database), migrated; ``--members`` members of ``--merchants`` merchants with their visits
   (BG/NBD, about nine per member) bulk-loaded as ``analyze.py`` loads them (``_bulkload``:
   chunked executemany / COPY, the migrations' indexes rebuilt after the rows); then the
   counter's tenant: one store, ``--clients`` terminals, a coupon and claimed codes
   (``redemption_http.prepare``).
   With ``--keep DIR`` the data are prepared once, untimed, under the shared lock
   (``--prepare-only``): the members and visits are loaded into ``DIR/o2oloop.db`` (or the
   ``--url`` database), ``o2oloop analyze`` scores them once (as the night before would
   have: its seconds and peak memory are reported), and ``--counters`` counter tenants with
   their codes are made, signed with the key kept in ``DIR``. A timed run then takes one
   unused counter and prepares nothing; the analysis rewrites the same scores.
2. **serve**: ``o2oloop serve --workers 2`` on the same database.
3. **before**: ``--clients`` tills redeem back to back for ``--before`` seconds (httpx
   clients, a fresh code and ``Idempotency-Key`` per request): the latency without analysis.
4. **during**: ``o2oloop analyze`` starts as its own process and the tills redeem for
   ``--during`` seconds while it runs; the run records whether it was still running when
   the load stopped (so every request waited behind it), and its seconds and peak memory
   once it ends (``--then stop`` ends it when the load stops, to keep an exclusive run short).

Prints one JSON object: both phases' rate, p50/p95/p99/max and failed requests, the
analysis's seconds, and the load average. Target: p99 during analysis ≤ 100 ms, none failed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import _support
import analyze
import numpy as np
import redemption_http

from o2oloop.db import Database


class Kept:
    """What ``--keep DIR`` holds beside the database: the finished load, the server's key,
    and counter tenants with their codes, each used by one timed run."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.loaded = directory / "members.json"
        self.counters = directory / "counters"

    def load_record(self) -> dict | None:
        return json.loads(self.loaded.read_text()) if self.loaded.exists() else None

    def record(self, loaded: dict) -> None:
        self.loaded.write_text(json.dumps(loaded))

    def secret(self) -> str:
        path = self.directory / "secret"
        if not path.exists():
            path.write_text(_support.secret_key())
        return path.read_text()

    def unused(self) -> list[Path]:
        return sorted(self.counters.glob("*.json")) if self.counters.exists() else []

    def add_counter(self, counter: dict) -> None:
        self.counters.mkdir(exist_ok=True)
        name = f"{time.time_ns()}.json"
        stored = {"tokens": [token for _, token in counter["tenant"].terminals], **counter}
        stored.pop("tenant")
        (self.counters / name).write_text(json.dumps(stored, default=str))

    def take_counter(self) -> dict:
        unused = self.unused()
        if not unused:
            raise SystemExit(f"no unused counter left in {self.counters}: run --prepare-only")
        counter = json.loads(unused[0].read_text())
        unused[0].rename(unused[0].with_suffix(".used"))
        return counter


def fresh_sqlite(path: Path) -> None:
    """An interrupted load leaves a file to throw away: start again from nothing."""
    for suffix in ("", "-wal", "-shm", "-writers.lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def load_members(url: str, args: argparse.Namespace, kept: Kept | None) -> dict:
    """The members and their visits, loaded now or (with `kept`) by an earlier run."""
    record = kept.load_record() if kept is not None else None
    if record is not None:
        if record["members"] != args.members or record["merchants"] != args.merchants:
            raise SystemExit(f"{kept.loaded} holds another size: {record}; use another --keep")
        return {**record, "reused": True}
    if url.startswith("sqlite:///"):
        fresh_sqlite(Path(url.removeprefix("sqlite:///")))
    db = _support.migrated(url)
    loaded = analyze._load(db, args.members, args.merchants, args.seed)
    db.dispose()
    record = {
        "members": args.members,
        "merchants": args.merchants,
        "visits": int(loaded["visits"]),
        "load_seconds": round(loaded["load_seconds"], 1),
        "rows_seconds": round(loaded["rows_seconds"], 1),
        "load_average_after": os.getloadavg(),
    }
    if kept is not None:
        kept.record(record)
    return {**record, "reused": False}


def make_counter(url: str, args: argparse.Namespace, secret: str) -> dict:
    db = _support.migrated(url)
    counter = redemption_http.prepare(
        db, secret=secret, clients=args.clients, count=args.codes, consumers=200
    )
    db.dispose()
    return counter


def server_env(url: str, tmpdir: Path, secret: str) -> dict[str, str]:
    return {
        **os.environ,
        "O2O_ENV": "development",
        "O2O_DATABASE_URL": url,
        "O2O_DATA_DIR": str(tmpdir),
        "O2O_SECRET_KEY": secret,
        "O2O_TERMINAL_ATTEMPTS_PER_MINUTE": "1000000000",
        "O2O_ACCESS_LOG": "false",
        # Its in-process worker would start the day's `analytics.nightly` slot, a second
        # analysis of every member as of now, inside a server process: the one measured
        # here is the `o2oloop analyze` this benchmark starts.
        "O2O_JOBS_IN_PROCESS": "false",
    }


def redeem_for(
    base: str, tokens: list[str], codes: list[str], seconds: float, samples: dict | None = None
) -> dict:
    return redemption_http.run_load(
        base, tokens, codes, processes=2, duration=seconds, bill=5000, keys=True, samples=samples
    )


def scoring_began(url: str, since: float) -> tuple[float | None, list[float]]:
    """When this run's per-merchant loop began (its platform model was saved just before)
    and when each merchant's scores were finished, as wall-clock seconds."""
    from sqlalchemy import select

    import o2oloop.models  # noqa: F401  (every table, so foreign keys resolve)
    from o2oloop.analytics.models import FittedModel

    def seconds(at: datetime) -> float:
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()

    db = Database.from_url(url)
    with db.reading() as session:
        rows = session.execute(select(FittedModel.merchant_id, FittedModel.computed_at)).all()
    db.dispose()
    fitted = [(merchant, seconds(at)) for merchant, at in rows if seconds(at) >= since]
    platform = [at for merchant, at in fitted if merchant is None]
    return (platform[0] if platform else None), sorted(at for m, at in fitted if m is not None)


def phase(samples: dict, chosen: np.ndarray) -> dict:
    latency = samples["latency_ms"][chosen]
    if not latency.size:
        return {"requests": 0}
    p50, p99 = np.percentile(latency, [50, 99])
    return {
        "requests": int(latency.size),
        "p50_ms": round(float(p50), 1),
        "p99_ms": round(float(p99), 1),
        "max_ms": round(float(latency.max()), 1),
        "failed": int((~samples["succeeded"][chosen]).sum()),
    }


def by_phase(url: str, samples: dict, started_wall: float, clock_offset: float) -> dict:
    """The tills' latency while the analysis read and fitted, and while it scored and wrote
    merchant after merchant."""
    began, finished = scoring_began(url, started_wall)
    sent_wall = samples["sent"] + clock_offset
    split = np.inf if began is None else began
    ended = float(sent_wall.max()) if sent_wall.size else split
    return {
        "scoring_began_seconds_into_load": (
            None if began is None else round(began - float(sent_wall.min()), 1)
        ),
        "merchants_scored_during_load": sum(1 for at in finished if at <= ended),
        "reading_and_fitting": phase(samples, sent_wall < split),
        "scoring_and_writing": phase(samples, sent_wall >= split),
    }


class Analysis:
    """`o2oloop analyze` as its own process: its seconds, exit status and peak memory."""

    def __init__(self, env: dict, log: Path) -> None:
        exe = Path(sys.executable).with_name("o2oloop")
        self.log = log
        self.started = time.perf_counter()
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(exe), "analyze", "--as-of", analyze.AS_OF.isoformat()],
                env={**env, "COLUMNS": "200"},  # its closing line unwrapped
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def running(self) -> bool:
        # Looked at, not reaped (Popen.poll would reap it, and its resource usage with it).
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.process.pid, flags) is None

    def stop(self) -> None:
        if self.running():
            # SIGTERM, not SIGINT: an interrupt waits for the running query to return.
            os.kill(self.process.pid, signal.SIGTERM)

    def finish(self) -> dict:
        _, status, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        said = self.log.read_text(errors="replace").strip().splitlines()
        return {
            "seconds": round(time.perf_counter() - self.started, 1),
            "exit_status": self.process.returncode,
            "peak_rss_mib": round(usage.ru_maxrss / 1024),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "said": said[-1:],
        }


def during_analysis(
    base: str, tokens: list[str], codes: list[str], env: dict, args: argparse.Namespace
) -> dict:
    """The tills' load while `o2oloop analyze` runs beside the server."""
    started_wall, clock_offset = time.time(), time.time() - time.perf_counter()
    analysis = Analysis(env, Path(env["O2O_DATA_DIR"]) / "analysis.log")
    time.sleep(args.lead)  # past its start-up, into reading and fitting
    running_at_start = analysis.running()
    samples: dict = {}
    load = redeem_for(base, tokens, codes, args.during, samples)
    still_running = analysis.running()
    if args.then == "stop":
        analysis.stop()
    return {
        "load": load,
        "phases": by_phase(env["O2O_DATABASE_URL"], samples, started_wall, clock_offset),
        "analysis_running_when_load_started": running_at_start,
        "analysis_still_running_when_load_stopped": still_running,
        "analysis": {**analysis.finish(), "stopped_after_load": args.then == "stop"},
    }


def prepare(url: str, args: argparse.Namespace, kept: Kept, env: dict) -> dict:
    """Load (unless loaded), analyse once (unless done) and top up the unused counters."""
    loaded = load_members(url, args, kept)
    if "first_analysis" not in loaded:
        first = Analysis(env, kept.directory / "first-analysis.log").finish()
        first["load_average_after"] = os.getloadavg()
        loaded = {**loaded, "first_analysis": first}
        kept.record({k: v for k, v in loaded.items() if k != "reused"})
    while len(kept.unused()) < args.counters:
        kept.add_counter(make_counter(url, args, env["O2O_SECRET_KEY"]))
    return {**loaded, "unused_counters": len(kept.unused())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--codes", type=int, default=60_000)
    parser.add_argument("--before", type=float, default=10.0)
    parser.add_argument("--during", type=float, default=60.0)
    parser.add_argument("--lead", type=float, default=5.0, help="seconds analyze runs first")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--url", default="")
    parser.add_argument(
        "--keep", default="", help="prepare the data in DIR once (--prepare-only), reuse after"
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="load, analyse once, make counters; untimed"
    )
    parser.add_argument("--counters", type=int, default=3, help="unused counters to prepare")
    parser.add_argument(
        "--then", choices=("wait", "stop"), default="wait", help="the analysis after the load"
    )
    args = parser.parse_args()
    tmpdir = Path(args.keep or tempfile.mkdtemp(prefix="o2o-analyze-counter-"))
    tmpdir.mkdir(parents=True, exist_ok=True)
    url = args.url or f"sqlite:///{(tmpdir / 'o2oloop.db').as_posix()}"
    kept = Kept(tmpdir) if args.keep else None
    secret = kept.secret() if kept is not None else _support.secret_key()
    env = server_env(url, tmpdir, secret)
    if args.prepare_only:
        if kept is None:
            raise SystemExit("--prepare-only needs --keep DIR")
        prepared = prepare(url, args, kept, env)
        _support.emit({"benchmark": "redemption_during_analyze", "prepared": prepared})
        return
    if kept is None:
        loaded = load_members(url, args, None)
        counter = make_counter(url, args, secret)
        tokens = [token for _, token in counter["tenant"].terminals]
    else:
        loaded = load_members(url, args, kept)
        counter = kept.take_counter()
        tokens = counter["tokens"]
    codes = counter["codes"]
    port = _support.free_port()
    server = redemption_http.start_server(env, port, tmpdir, tmpdir / "server.log")
    try:
        base = f"http://127.0.0.1:{port}"
        split = round(len(codes) * args.before / (args.before + args.during))
        before = redeem_for(base, tokens, codes[:split], args.before)
        during = during_analysis(base, tokens, codes[split:], env, args)
    finally:
        redemption_http.stop_server(server)
    p99 = during["load"]["latency_ms"]["p99"]
    _support.emit(
        {
            "benchmark": "redemption_during_analyze",
            "backend": Database.from_url(url).dialect,
            "members": args.members,
            "loaded": loaded,
            "clients": args.clients,
            "before_analysis": before,
            "during_analysis": during,
            "target": {"p99_ms": 100, "failed": 0},
            "met": p99 <= 100
            and not during["load"]["errors_by_status"]
            and during["analysis_still_running_when_load_stopped"]
            # the tills met its writes, not only its reading and fitting
            and during["phases"]["scoring_and_writing"]["requests"] > 0,
            "load_average": os.getloadavg(),
            **_support.machine(),
        }
    )


if __name__ == "__main__":
    main()
