"""The platform admin's jobs over HTTP: list by state and handler with cursor paging, and
re-drive a dead job; every other key is refused."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from factories import bearer, make_tenant, platform_admin_key
from o2oloop import clock
from o2oloop.db import Database
from o2oloop.jobs.models import JobState
from o2oloop.jobs.rows import insert_new, jobs, new_job


def _jobs(db: Database, states: list[JobState], handler: str = "probe.on") -> list[str]:
    rows = []
    for n, state in enumerate(states):
        row = new_job(
            key=f"evt_{n}/{handler}",
            handler=handler,
            event_id=f"evt_{n}",
            max_attempts=3,
            run_after=clock.now() - timedelta(minutes=1),
        )
        row["state"] = state.value
        if state is JobState.DEAD:
            row.update(attempts=3, last_error="ProbeFailed: no luck")
        rows.append(row)
    with db.transaction() as session:
        insert_new(session, rows)
    return [row["id"] for row in rows]


@pytest.fixture
def admin(db: Database) -> dict[str, str]:
    return bearer(platform_admin_key(db))


def test_only_a_platform_admin_sees_or_retries_jobs(
    http: httpx.Client, db: Database, admin: dict[str, str]
) -> None:
    (dead,) = _jobs(db, [JobState.DEAD])
    tenant = make_tenant(db)
    assert http.get("/v1/admin/jobs").status_code == 401
    for key in (tenant.admin, tenant.terminal):
        refused = http.get("/v1/admin/jobs", headers=key)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert http.post(f"/v1/admin/jobs/{dead}/retry", headers=key).status_code == 403
    assert http.post(f"/v1/admin/jobs/{dead}/retry").status_code == 401
    missing = http.post("/v1/admin/jobs/job_00000000000000000000000000/retry", headers=admin)
    assert missing.status_code == 404


def test_jobs_are_listed_by_state_and_handler_a_page_at_a_time(
    http: httpx.Client, db: Database, admin: dict[str, str]
) -> None:
    dead = _jobs(db, [JobState.DEAD, JobState.DONE, JobState.DEAD, JobState.DEAD])
    _jobs(db, [JobState.DEAD], handler="webhooks.queue")
    first = http.get(
        "/v1/admin/jobs", params={"state": "dead", "handler": "probe.on", "limit": 2}, headers=admin
    ).json()
    assert len(first["data"]) == 2 and first["next_cursor"]
    rest = http.get(
        "/v1/admin/jobs",
        params={"state": "dead", "handler": "probe.on", "cursor": first["next_cursor"]},
        headers=admin,
    ).json()
    seen = [job["id"] for job in first["data"] + rest["data"]]
    assert sorted(seen) == sorted([dead[0], dead[2], dead[3]]) and rest["next_cursor"] is None
    assert {job["last_error"] for job in first["data"]} == {"ProbeFailed: no luck"}
    everything = http.get("/v1/admin/jobs", headers=admin).json()["data"]
    assert len(everything) == 5
    bad = http.get("/v1/admin/jobs", params={"state": "sleeping"}, headers=admin)
    assert bad.status_code == 422 and "state" in bad.json()["detail"]
    bad = http.get("/v1/admin/jobs", params={"cursor": "nonsense"}, headers=admin)
    assert bad.status_code == 422


def test_a_dead_job_is_re_driven_and_only_a_dead_one(
    http: httpx.Client, db: Database, admin: dict[str, str]
) -> None:
    dead, done = _jobs(db, [JobState.DEAD, JobState.DONE])
    retried = http.post(f"/v1/admin/jobs/{dead}/retry", headers=admin)
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert (body["state"], body["attempts"], body["last_error"]) == (
        "pending",
        0,
        "ProbeFailed: no luck",
    )
    with db.reading() as session:
        state = session.execute(
            jobs.select().with_only_columns(jobs.c.state).where(jobs.c.id == dead)
        ).scalar()
    assert state == "pending"
    again = http.post(f"/v1/admin/jobs/{dead}/retry", headers=admin)
    assert again.status_code == 409 and "pending" in again.json()["detail"]
    assert http.post(f"/v1/admin/jobs/{done}/retry", headers=admin).status_code == 409
