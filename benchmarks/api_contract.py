"""The API keeps its own contract: schemathesis against the live server, every check, every phase.

Usage: ``python benchmarks/api_contract.py [--db sqlite|postgresql] [--max-examples 30]
[--max-time SECONDS] [--seed N] [--as admin,merchant] [--tag TAG …] [--report-dir DIR]``

1. **prepare**: a scratch database, migrated; a platform admin key; one merchant (through the
   service layer) with a store, a terminal and a published coupon, and its admin key.
2. **serve**: ``o2oloop serve`` as a subprocess (uvicorn, one worker) on a free loopback port.
3. **run**: ``schemathesis run <server>/openapi.json --checks all --phases
   examples,coverage,fuzzing,stateful`` once per key (``--as``), each with its own
   ``Authorization`` header, ``--max-examples`` cases per operation and phase, the settings
   of ``schemathesis.toml`` beside this script, and ``contract_hooks.py`` (a fresh
   Idempotency-Key per request, as tills send them).

Prints one JSON object: per key, the exit status, the failures schemathesis found (by check
and operation) and the seconds it took. Exits non-zero if any run failed, so the test suite
runs the same script with a few examples and asserts it passes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import _support
import httpx

from o2oloop.auth import service as keys
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.db import Database
from o2oloop.merchants import schemas as merchant_schemas
from o2oloop.merchants import service as merchants
from o2oloop.merchants.models import Category

PHASES = "examples,coverage,fuzzing,stateful"
CONFIG = Path(__file__).with_name("schemathesis.toml")
SERVER_START_TIMEOUT = 120


def prepare(db: Database) -> dict[str, str]:
    """The keys the runs present: a platform admin's and a merchant admin's."""
    with db.transaction() as session:
        _, admin_token = keys.issue_key(session, role=Role.PLATFORM_ADMIN, label="contract")
        merchant, _owner, merchant_token, merchant_key = merchants.create_merchant(
            session,
            principal=_support.PLATFORM,
            data=merchant_schemas.MerchantCreate(
                name="Contract Teahouse",
                category=Category.CATERING,
                currency="CNY",
                timezone="Asia/Shanghai",
                commission_bps=500,
            ),
        )
        owner = Principal(key_id=merchant_key.id, role=Role.MERCHANT_ADMIN, merchant_id=merchant.id)
        store = merchants.create_store(
            session,
            principal=owner,
            merchant_id=merchant.id,
            data=merchant_schemas.StoreCreate(
                name="Xuhui", address="88 Tianyaoqiao Rd", latitude=31.19, longitude=121.43
            ),
        )
        merchants.create_terminal(
            session,
            principal=owner,
            merchant_id=merchant.id,
            store_id=store.id,
            data=merchant_schemas.TerminalCreate(name="Counter 1"),
        )
    tenant = _support.Tenant(merchant_id=merchant.id, store_id=store.id, admin=owner)
    _support.make_coupon(db, tenant)
    return {"admin": admin_token, "merchant": merchant_token}


@contextlib.contextmanager
def serving(url: str, data_dir: Path, log: Path) -> Iterator[str]:
    """The real server as a subprocess; yields its base URL and stops it after."""
    port = _support.free_port()
    env = {
        **os.environ,
        "O2O_DATABASE_URL": url,
        "O2O_DATA_DIR": str(data_dir),
        "O2O_SECRET_KEY": _support.secret_key(),
        "O2O_ACCESS_LOG": "false",
    }
    exe = Path(sys.executable).with_name("o2oloop")
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base, server, log)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _wait_for(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {SERVER_START_TIMEOUT} s")


def run_schemathesis(
    base: str,
    token: str,
    *,
    max_examples: int,
    max_time: int | None,
    seed: int,
    report: Path,
    tags: list[str],
) -> dict[str, object]:
    """One schemathesis run with one key: its exit status and what it found."""
    exe = Path(sys.executable).with_name("schemathesis")
    command = [
        str(exe),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--phases",
        PHASES,
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",  # Hypothesis describing strategies in two threads trips CPython 3.11's AST parser
        "--no-color",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "30",
    ]
    if max_time is not None:
        command += ["--max-time", str(max_time)]
    for tag in tags:
        command += ["--include-tag", tag]
    t0 = time.perf_counter()
    done = subprocess.run(  # in the report's folder, which keeps schemathesis's cache too
        command, capture_output=True, text=True, env=os.environ | _NO_TTY, cwd=report.parent
    )
    report.write_text(done.stdout + done.stderr)
    return {
        "exit_status": done.returncode,
        "seconds": round(time.perf_counter() - t0, 1),
        "failures": _failures(done.stdout),
        "summary": _summary(done.stdout),
        "log": str(report),
    }


_NO_TTY = {
    "NO_COLOR": "1",
    "COLUMNS": "200",
    "TERM": "dumb",
    "SCHEMATHESIS_HOOKS": "contract_hooks",
    "PYTHONPATH": str(Path(__file__).parent),
}


def _failures(output: str) -> list[str]:
    """Each failure as schemathesis names it: the operation and the broken check."""
    found: list[str] = []
    operation = ""
    for line in output.splitlines():
        if re.match(r"^=+ WARNINGS =+$", line.strip()):
            break  # the warnings list operations, not failures
        header = re.match(r"_+ (\w+ /\S*) _+$", line.strip())
        if header:
            operation = header.group(1)
        elif re.match(r"^\s*- [A-Z]", line) and operation:
            found.append(f"{operation}: {line.strip()[2:]}")
    return found


def _summary(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return "\n".join(lines[-12:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=_support.BACKENDS, default="sqlite")
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument("--max-time", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--as", dest="who", default="admin,merchant")
    parser.add_argument("--report-dir", type=Path, default=None)
    parser.add_argument(
        "--tag", action="append", default=[], help="only operations with this tag (repeatable)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="o2o-contract-"))
    reports = args.report_dir or workdir
    reports.mkdir(parents=True, exist_ok=True)
    url = _support.scratch_url(args.db, workdir, "o2o_bench_contract")
    db = _support.migrated(url)
    tokens = prepare(db)
    db.engine.dispose()
    runs: dict[str, object] = {}
    with serving(url, workdir, workdir / "server.log") as base:
        for who in args.who.split(","):
            runs[who] = run_schemathesis(
                base,
                tokens[who],
                max_examples=args.max_examples,
                max_time=args.max_time,
                seed=args.seed,
                report=reports / f"schemathesis-{who}.txt",
                tags=args.tag,
            )
    result = {
        "benchmark": "api_contract",
        "db": args.db,
        "checks": "all",
        "phases": PHASES,
        "max_examples": args.max_examples,
        "tags": args.tag or "all",
        "load_average": os.getloadavg(),
        "runs": runs,
        **_support.machine(),
    }
    _support.emit(result)
    return 0 if all(run["exit_status"] == 0 for run in runs.values()) else 1  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
