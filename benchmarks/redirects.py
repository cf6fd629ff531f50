"""Tracking-link redirects per second over HTTP, each counting a click.

Usage: ``python benchmarks/redirects.py [--db sqlite|postgresql|both] [--duration 10]
[--connections 16]``

Per database: a merchant with a published coupon and one publication (through the service
layer), ``o2oloop serve --workers 2``, then wrk (Debian's ``wrk``) sending
``GET /t/{token}`` over ``--connections`` keep-alive connections for ``--duration`` seconds
(302s, not followed), and two floors in the same run: ``GET /healthz`` of the same server,
and a bare FastAPI endpoint (``floor_redirect.py``, through uvicorn with as many workers)
that reads the publication by primary key and answers the 302, nothing else. After the
server stops (which writes the last batch of counts), the clicks in ``channel_daily`` are
compared with the 302s wrk saw.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import _support
from sqlalchemy import func, select

from o2oloop.channels import links, publications
from o2oloop.channels.models import ChannelDaily
from o2oloop.channels.schemas import PublicationCreate


def _wrk(url: str, duration: float, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{int(duration)}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    figures: dict[str, Any] = {
        "raw_requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    }  # type: ignore[union-attr]
    figures["requests"] = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    for label in ("50%", "99%"):
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            figures[f"p{label[:-1]}_ms"] = (
                value / 1000 if unit == "us" else value * (1000 if unit == "s" else 1)
            )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non_2xx_3xx"] = int(non_2xx.group(1)) if non_2xx else 0
    return figures


FLOOR_APP = Path(__file__).with_name("floor_redirect.py")


def _bare_floor(url: str, link_id: str, args: argparse.Namespace, tmpdir: Path) -> dict:
    """The bare redirect endpoint through uvicorn with two workers, measured by wrk."""
    port = _support.free_port()
    command = [sys.executable, "-m", "uvicorn", "floor_redirect:app"]
    command += ["--app-dir", str(FLOOR_APP.parent), "--workers", "2", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    log = tmpdir / "floor.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command,
            env={**os.environ, "FLOOR_DATABASE_URL": url},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _support.wait_ready(process, port, log)
        return _wrk(f"http://127.0.0.1:{port}/t/{link_id}", args.duration, args.connections)
    finally:
        _support.stop_server(process)


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        name = "o2o_bench_redirects"
        url = _support.scratch_url(backend, tmpdir, name)
        secret = _support.secret_key()
        load_before = round(os.getloadavg()[0], 2)
        try:
            db = _support.migrated(url)
            tenant = _support.make_tenant(db)
            offer_id = _support.make_coupon(db, tenant)
            with db.transaction() as session:
                publication = publications.publish(
                    session, principal=tenant.admin, merchant_id=tenant.merchant_id,
                    offer_id=offer_id, data=PublicationCreate(channel="poster"),
                )  # fmt: skip
            token = links.token_for(secret, "publication", publication.id)
            with _support.serving(url, tmpdir, secret=secret) as base:
                redirects = _wrk(f"{base}/t/{token}", args.duration, args.connections)
                floor = _wrk(f"{base}/healthz", args.duration, args.connections)
            with db.reading() as session:
                clicks = session.scalar(select(func.sum(ChannelDaily.clicks))) or 0
            db.dispose()
            bare = _bare_floor(url, publication.id, args, tmpdir)
        finally:
            if backend == "postgresql":
                _support.drop_postgres_database(name)
    return {
        "benchmark": "redirects",
        "load_average_1m_before": load_before,
        "database": backend,
        "machine": _support.machine(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "connections": args.connections,
        "duration_s": args.duration,
        "redirects": redirects,
        "floor_healthz": floor,
        "floor_bare_redirect": bare,
        "redirects_over_bare": round(
            redirects["raw_requests_per_second"] / bare["raw_requests_per_second"], 2
        ),
        "clicks_counted": int(clicks),
        "clicks_match_302s": int(clicks) >= redirects["requests"] - redirects["non_2xx_3xx"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    for backend in _support.backends(args.db):
        if backend == "postgresql" and (why := _support.postgres_unavailable()):
            _support.emit({"benchmark": "redirects", "database": backend, "skipped": why})
            continue
        _support.emit(run(backend, args))


if __name__ == "__main__":
    sys.exit(main())
