"""Redemption latency at the counter while `o2oloop analyze` scores a million members.

Usage: ``python benchmarks/redemption_during_analyze.py [--members 1000000] [--merchants 100]
[--clients 8] [--before 10] [--during 60] [--url URL] [--keep DIR] [--prepare-only]``

1. **build**: a scratch database (SQLite by default, or ``--url`` an empty PostgreSQL
   database), migrated; ``--members`` members of ``--merchants`` merchants with their visits
   (BG/NBD, about nine per member) bulk-loaded as ``analyze.py`` loads them (executemany /
   COPY); then the counter's tenant: one store, ``--clients`` terminals, a coupon and claimed
   codes (``redemption_http.prepare``). With ``--keep DIR`` (SQLite) the members and visits
   are loaded once into ``DIR/o2oloop.db`` (under the shared lock, ``--prepare-only``) and
   later runs reuse that file: each run adds a tenant and codes of its own, and the analysis
   rewrites the same scores.
2. **serve**: ``o2oloop serve --workers 2`` on the same database.
3. **before**: ``--clients`` tills redeem back to back for ``--before`` seconds (httpx
   clients, a fresh code and ``Idempotency-Key`` per request): the latency without analysis.
4. **during**: ``o2oloop analyze`` starts as its own process and the tills redeem for
   ``--during`` seconds while it runs; the run records whether it was still running when
   the load stopped (so every request waited behind it) and how long it took in all.

Prints one JSON object: both phases' rate, p50/p95/p99/max and failed requests, the
analysis's seconds, and the load average. Target: p99 during analysis ≤ 100 ms, none failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _support
import analyze
import redemption_http

from o2oloop.db import Database


def build(url: str, args: argparse.Namespace, secret: str, kept: Path | None) -> dict:
    """The million members and their visits (or those of `kept`), then the counter's tenant
    and codes."""
    db = _support.migrated(url)
    started = time.perf_counter()
    reused = kept is not None and kept.exists()
    if reused:
        loaded = json.loads(kept.read_text())
        if loaded["members"] != args.members or loaded["merchants"] != args.merchants:
            raise SystemExit(f"{kept} holds another size: {loaded}; use another --keep")
    else:
        visits = int(analyze._load(db, args.members, args.merchants, args.seed)["visits"])
        loaded = {"members": args.members, "merchants": args.merchants, "visits": visits}
        if kept is not None:
            kept.write_text(json.dumps(loaded))
    counter = redemption_http.prepare(
        db, secret=secret, clients=args.clients, count=args.codes, consumers=200
    )
    db.dispose()
    return {
        "loaded": {
            "members": args.members,
            "visits": int(loaded["visits"]),
            "reused": reused,
            "seconds": round(time.perf_counter() - started, 1),
        },
        "counter": counter,
    }


def server_env(url: str, tmpdir: Path, secret: str) -> dict[str, str]:
    return {
        **os.environ,
        "O2O_ENV": "development",
        "O2O_DATABASE_URL": url,
        "O2O_DATA_DIR": str(tmpdir),
        "O2O_SECRET_KEY": secret,
        "O2O_TERMINAL_ATTEMPTS_PER_MINUTE": "1000000000",
        "O2O_ACCESS_LOG": "false",
    }


def redeem_for(base: str, counter: dict, codes: list[str], seconds: float) -> dict:
    tokens = [token for _, token in counter["tenant"].terminals]
    return redemption_http.run_load(
        base, tokens, codes, processes=2, duration=seconds, bill=5000, keys=True
    )


def during_analysis(
    base: str, counter: dict, codes: list[str], env: dict, args: argparse.Namespace
) -> dict:
    """The tills' load while `o2oloop analyze` runs beside the server."""
    exe = Path(sys.executable).with_name("o2oloop")
    started = time.perf_counter()
    analysis = subprocess.Popen(
        [str(exe), "analyze", "--as-of", analyze.AS_OF.isoformat()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(args.lead)  # past its start-up, into reading and fitting
    load = redeem_for(base, counter, codes, args.during)
    still_running = analysis.poll() is None
    output, _ = analysis.communicate(timeout=3600)
    return {
        "load": load,
        "analysis_still_running_when_load_stopped": still_running,
        "analysis_seconds": round(time.perf_counter() - started, 1),
        "analysis_exit_status": analysis.returncode,
        "analysis_said": output.strip().splitlines()[-1:] if output else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--codes", type=int, default=40_000)
    parser.add_argument("--before", type=float, default=10.0)
    parser.add_argument("--during", type=float, default=60.0)
    parser.add_argument("--lead", type=float, default=5.0, help="seconds analyze runs first")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--url", default="")
    parser.add_argument(
        "--keep", default="", help="SQLite: load the members into DIR once, reuse them after"
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="load (into --keep) and stop, untimed"
    )
    args = parser.parse_args()
    tmpdir = Path(args.keep or tempfile.mkdtemp(prefix="o2o-analyze-counter-"))
    tmpdir.mkdir(parents=True, exist_ok=True)
    url = args.url or f"sqlite:///{(tmpdir / 'o2oloop.db').as_posix()}"
    secret = _support.secret_key()
    kept = tmpdir / "members.json" if args.keep and not args.url else None
    built = build(url, args, secret, kept)
    if args.prepare_only:
        _support.emit({"benchmark": "redemption_during_analyze", "prepared": built["loaded"]})
        return
    counter = built["counter"]
    codes = counter["codes"]
    env = server_env(url, tmpdir, secret)
    port = _support.free_port()
    server = redemption_http.start_server(env, port, tmpdir, tmpdir / "server.log")
    try:
        base = f"http://127.0.0.1:{port}"
        before = redeem_for(base, counter, codes[0::2], args.before)
        during = during_analysis(base, counter, codes[1::2], env, args)
    finally:
        redemption_http.stop_server(server)
    p99 = during["load"]["latency_ms"]["p99"]
    _support.emit(
        {
            "benchmark": "redemption_during_analyze",
            "backend": Database.from_url(url).dialect,
            "members": args.members,
            "loaded": built["loaded"],
            "clients": args.clients,
            "before_analysis": before,
            "during_analysis": during,
            "target": {"p99_ms": 100, "failed": 0},
            "met": p99 <= 100 and not during["load"]["errors_by_status"],
            "load_average": os.getloadavg(),
            **_support.machine(),
        }
    )


if __name__ == "__main__":
    main()
