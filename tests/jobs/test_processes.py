"""Real worker processes: four on one PostgreSQL database share 2,000 jobs, some failing at
random, and none runs twice at once; a worker killed with SIGKILL mid-job leaves the job to
the next worker once its lease runs out (PostgreSQL and SQLite)."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import signal
import time
from collections import defaultdict
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from sqlalchemy import func, select

import jobs_kit
from jobs_kit import Probe, make_worker, probe_effects, probe_runs, runs_engine, runs_url, wiring
from o2oloop import events
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.jobs.models import Job, JobState

MAX_ATTEMPTS = 3  # jobs_kit.test_config


# Worker processes are forked from a server that imported the kit (and with it o2oloop)
# once: each starts at once, without an interpreter's start-up and the product's imports,
# and without the test process's threads and connections.
_PROCESSES = multiprocessing.get_context("forkserver")
_PROCESSES.set_forkserver_preload(["jobs_kit"])


def _spawn(
    db: Database, runs: str, name: str, tmp_path: Path, *, lease: float, until_empty: bool
) -> BaseProcess:
    url = db.engine.url.render_as_string(hide_password=False)
    errors = tmp_path / f"{name}.errors"
    process = _PROCESSES.Process(
        target=jobs_kit.worker_process,
        args=(url, runs, name, lease, until_empty, str(errors)),
        name=name,
    )
    process.start()
    return process


def _failure(tmp_path: Path, name: str) -> str:
    errors = tmp_path / f"{name}.errors"
    return errors.read_text()[-3000:] if errors.exists() else "(no traceback)"


def _record(db: Database, probes: list[Probe]) -> None:
    with db.transaction() as session:
        events.record_all(session, probes)


@pytest.mark.postgres
def test_four_worker_processes_share_2000_jobs_and_none_runs_twice_at_once(
    pg_db: Database, tmp_path: Path
) -> None:
    rng = random.Random(10)
    # 1,000 events × 2 handlers: most succeed at once, some fail a few times, some always.
    probes = [
        Probe(n=n, fail_times=rng.choice([0] * 14 + [1, 2, MAX_ATTEMPTS, 5])) for n in range(1000)
    ]
    runs = runs_url(pg_db, tmp_path)
    engine = runs_engine(runs, fresh=True)
    _record(pg_db, probes)
    started = time.monotonic()
    workers = [_spawn(pg_db, runs, f"p{n}", tmp_path, lease=30, until_empty=True) for n in range(4)]
    for worker in workers:
        worker.join(timeout=400)
        assert worker.exitcode == 0, _failure(tmp_path, worker.name)
    elapsed = time.monotonic() - started

    with pg_db.reading() as session:
        jobs = {(j.event_id, j.handler): j for j in session.scalars(select(Job))}
    with engine.connect() as connection:
        runs_of = defaultdict(list)
        for event_id, handler, pid, start, end in connection.execute(
            select(
                probe_runs.c.event_id,
                probe_runs.c.handler,
                probe_runs.c.pid,
                probe_runs.c.started,
                probe_runs.c.ended,
            )
        ):
            runs_of[(event_id, f"probe.{handler}")].append((start, end, pid))
        effects = dict(
            connection.execute(
                select(probe_effects.c.event_id, func.count()).group_by(probe_effects.c.event_id)
            ).all()
        )
    assert len(jobs) == 2000
    for probe in probes:
        dies = probe.fail_times >= MAX_ATTEMPTS
        want_runs = MAX_ATTEMPTS if dies else probe.fail_times + 1
        for handler in ("probe.on", "probe.after"):
            job = jobs[(probe.event_id, handler)]
            assert job.state is (JobState.DEAD if dies else JobState.DONE), (probe, job.last_error)
            assert job.attempts == want_runs
            spans = sorted(runs_of[(probe.event_id, handler)])
            assert len(spans) == want_runs, (probe, spans)
            for (_, end, _), (start, _, _) in itertools.pairwise(spans):
                assert end is not None and end <= start, f"{handler} ran twice at once: {spans}"
        assert effects.get(probe.event_id, 0) == (0 if dies else 1)
    pids = {pid for spans in runs_of.values() for _, _, pid in spans}
    assert len(pids) == 4  # every process took a share
    print(f"2,000 jobs in {elapsed:.1f} s, load average {os.getloadavg()}")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_worker_killed_mid_job_leaves_it_to_the_next(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, settings: Settings
) -> None:
    db: Database = request.getfixturevalue("sqlite_db" if backend == "sqlite" else "pg_db")
    runs = runs_url(db, tmp_path)
    engine = runs_engine(runs, fresh=True)
    jobs_kit.create_tables(db)
    probe = Probe(n=1, sleep_ms=60_000)  # the first run hangs until it is killed
    _record(db, [probe])
    doomed = _spawn(db, runs, "doomed", tmp_path, lease=1.0, until_empty=False)
    try:
        deadline = time.monotonic() + 180  # a first start waits for the server's imports
        while _hung(engine) == 0:
            assert doomed.is_alive(), _failure(tmp_path, "doomed")
            assert time.monotonic() < deadline, "the first worker never started the job"
            time.sleep(0.05)
    finally:
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.join()
    with db.reading() as session:
        held = session.scalar(select(Job).where(Job.handler == "probe.on"))
    assert (held.state, held.worker, held.attempts) == (JobState.RUNNING, "doomed", 1)

    heir = make_worker(db, wiring(settings, engine), "heir")
    deadline = time.monotonic() + 60
    while jobs_kit.unfinished(db):
        assert time.monotonic() < deadline, "the killed worker's job was never finished"
        heir.step()
        time.sleep(0.05)
    with db.reading() as session:
        jobs = {j.handler: j for j in session.scalars(select(Job))}
    for job in jobs.values():
        assert job.state is JobState.DONE
    on = jobs["probe.on"]
    assert (on.worker, on.attempts) == ("heir", 2)
    with db.engine.connect() as connection:
        effects = connection.scalar(select(func.count()).select_from(probe_effects))
    assert effects == 1  # the killed run's transaction never committed its effect


def _hung(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(jobs_kit.probe_hangs))
