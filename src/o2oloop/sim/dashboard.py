"""The demo city's dashboards: the worker's handlers keep the hourly aggregate on a real
server; the city runs no worker, so it recounts the weeks it has simulated, once a week and
at the end (a console opened while the city builds shows the weeks so far)."""

from __future__ import annotations

from datetime import timedelta

from o2oloop import clock
from o2oloop.dashboard import backfill
from o2oloop.sim.world import CityRun

EVERY = timedelta(days=7)


def _recount(run: CityRun) -> None:
    since = run.parts.get("dashboard_since")
    with run.db.transaction() as session:
        for merchant in run.merchants:
            backfill.rebuild(session, merchant_id=merchant.id, since=since)
    run.parts["dashboard_since"] = clock.now()


def end_of_day(run: CityRun) -> None:
    since = run.parts.get("dashboard_since")
    if since is None or clock.now() - since >= EVERY:
        _recount(run)


def finish(run: CityRun) -> None:
    _recount(run)
