"""Building the demo city from the command line, in the foreground or behind the server.

`o2oloop up` on a new database starts `o2oloop demo --progress-file …` as a child process,
waits only until the city's merchants and logins exist (seconds), prints them and serves;
the months of visits and the analysis fill in behind, with progress at /demo-city.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from o2oloop.analytics import service as analytics
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.sim import progress
from o2oloop.sim.city import build_city
from o2oloop.sim.world import CityReport, Progress

Remember = Callable[[dict[str, str]], None]
LOGINS_TIMEOUT_SECONDS = 120


def build(
    settings: Settings,
    db: Database,
    *,
    seed: int,
    consumers: int,
    merchants: int,
    days: int,
    remember: Remember,
    console: Console,
    progress_file: Path | None = None,
) -> CityReport:
    """Build the city and learn every member; report progress as a bar or, behind a server,
    as a line every tenth and in `progress_file`."""
    started = time.perf_counter()
    behind = progress_file is not None
    step = {"shown": -1}

    def note(state: progress.State, **fields: object) -> None:
        if progress_file is not None:
            progress.write(progress_file, state=state, **fields)

    def logins_ready(report: CityReport) -> None:
        remember({**report.keys, **report.logins})
        note("logins_ready", done=0, total=0, seconds=time.perf_counter() - started)

    parent = os.getppid()

    def days_done(_what: str, done: int, total: int) -> None:
        if behind and os.getppid() != parent:  # the server is gone: so is its city
            raise SystemExit("the server that started the demo city has stopped")
        note("logins_ready", done=done, total=total, seconds=time.perf_counter() - started)
        tenth = 10 * done // max(total, 1)
        if behind and tenth > step["shown"]:
            step["shown"] = tenth
            console.print(
                f"demo city: {done:,} of {total:,} visits simulated "
                f"({10 * tenth}%, {time.perf_counter() - started:.0f} s)",
                highlight=False,
            )

    def run(on_days: Progress) -> CityReport:
        return build_city(
            db,
            secret_key=settings.secret_key,
            seed=seed,
            merchants_count=merchants,
            consumers=consumers,
            days=days,
            progress=on_days,
            on_logins=logins_ready,
        )

    note("starting", seed=seed, consumers=consumers, merchants=merchants, days=days)
    try:
        report = run(days_done) if behind else _with_bar(run, console)
        note("analysing", seconds=time.perf_counter() - started)
        analytics.analyze_in_batches(db)  # short writes: the server keeps answering
    except BaseException as failed:
        note("failed", error=type(failed).__name__)
        raise
    seconds = time.perf_counter() - started
    note("ready", seconds=seconds, summary=summary(report, seed, seconds))
    console.print(summary(report, seed, seconds), highlight=False)
    return report


def _with_bar(run: Callable[[Progress], CityReport], console: Console) -> CityReport:
    from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    columns = (*Bar.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    with Bar(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("simulating visits", total=None)

        def advance(_what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run(advance)
        bar.update(task, description="learning every member")
    return report


def summary(report: CityReport, seed: int, seconds: float) -> str:
    return (
        f"demo city (seed {seed}) ready in {seconds:.0f} s: {report.merchants} merchants, "
        f"{report.stores} stores, {report.consumers:,} consumers, {report.visits:,} visits, "
        f"{report.redemptions:,} codes redeemed, {report.vouchers_bought:,} vouchers bought, "
        f"{report.top_ups:,} stored-value top-ups, {report.settlements:,} settlement batches"
    )


def start_behind(settings: Settings, *, consumers: int) -> subprocess.Popen[bytes]:
    """`o2oloop demo` as a child process writing its progress beside the database."""
    path = progress.path_in(settings.data_dir)
    path.unlink(missing_ok=True)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "o2oloop.cli",
            "demo",
            "--consumers",
            str(consumers),
            "--progress-file",
            str(path),
        ]
    )


def wait_for_logins(child: subprocess.Popen[bytes], path: Path) -> None:
    """Until the city's logins exist; an error if the child died before that."""
    deadline = time.monotonic() + LOGINS_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        state = (progress.read(path) or {}).get("state")
        if state in ("logins_ready", "analysing", "ready"):
            return
        if child.poll() is not None or state == "failed":
            raise RuntimeError("the demo city stopped before its logins existed (see above)")
        time.sleep(0.1)
    raise RuntimeError(f"the demo city had no logins after {LOGINS_TIMEOUT_SECONDS} s")


def stop(child: subprocess.Popen[bytes] | None) -> None:
    """When the server stops, the city stops with it (a new `up` says how to rebuild)."""
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
