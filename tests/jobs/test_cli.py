"""`o2oloop worker --once` runs the outbox's handlers and every periodic job's slot;
`o2oloop jobs list` and `jobs retry` show and re-drive dead jobs."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from o2oloop import clock, config
from o2oloop.bootstrap import bootstrap
from o2oloop.cli import app
from o2oloop.db import Database
from o2oloop.jobs.models import Job, JobState
from o2oloop.jobs.rows import insert_new, new_job


@pytest.fixture
def cli_db(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("O2O_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("O2O_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    db = Database.from_url(f"sqlite:///{tmp_path / 'o2oloop.db'}")
    yield db
    db.dispose()
    config.get_settings.cache_clear()


def test_worker_once_runs_every_periodic_job_of_the_wiring(cli_db: Database) -> None:
    result = CliRunner().invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "dead-lettered" in result.output
    with cli_db.reading() as session:
        ran = {job.handler: job.state for job in session.scalars(select(Job))}
    wired = set(bootstrap(config.get_settings()).periodic)
    assert {"analytics.nightly", "payments.deliver_provider_events"} <= wired
    assert ran == dict.fromkeys(wired, JobState.DONE)
    again = CliRunner().invoke(app, ["worker", "--once"])  # same slots: nothing runs again
    assert again.exit_code == 0 and "0 jobs done" in again.output


def test_jobs_list_and_retry(cli_db: Database) -> None:
    row = new_job(
        key="k", handler="probe.on", event_id="evt_1", max_attempts=3, run_after=clock.now()
    )
    row.update(state="dead", attempts=3, last_error="Traceback …\nProbeFailed: no luck")
    with cli_db.transaction() as session:
        insert_new(session, [row])
    listed = CliRunner().invoke(app, ["jobs", "list", "--state", "dead"])
    assert listed.exit_code == 0, listed.output
    first, counts = (json.loads(line) for line in listed.output.splitlines())
    assert (first["id"], first["last_error"]) == (row["id"], ["ProbeFailed: no luck"])
    assert counts["counts"]["dead"] == 1
    bad = CliRunner().invoke(app, ["jobs", "list", "--state", "asleep"])
    assert bad.exit_code != 0 and "pending" in bad.output
    retried = CliRunner().invoke(app, ["jobs", "retry", row["id"]])
    assert retried.exit_code == 0 and "pending again" in retried.output
    twice = CliRunner().invoke(app, ["jobs", "retry", row["id"]])
    assert twice.exit_code == 1 and "only a dead job" in twice.output
