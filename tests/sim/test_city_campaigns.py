"""The demo city runs campaigns with a true effect, and their results are there at once."""

from __future__ import annotations

from sqlalchemy import select

from o2oloop.campaigns.models import Campaign
from o2oloop.campaigns.results import campaign_results
from o2oloop.sim.city import build_city


def test_the_city_runs_its_demo_campaigns_and_measures_them(sqlite_db) -> None:
    report = build_city(
        sqlite_db, secret_key="s" * 40, seed=3, merchants_count=6, consumers=600, days=90
    )
    assert report.campaigns >= 2 and report.campaign_messages > 0
    with sqlite_db.reading() as session:
        campaigns = session.scalars(select(Campaign)).all()
        names = {c.name for c in campaigns}
        assert "Win back members at risk" in names
        measured = [campaign_results(session, campaign=c) for c in campaigns]
    assert any(r["sent"] > 0 and r["visits"] is not None for r in measured)
    srm = [
        (r["arms"], r["srm"], r["skipped"]) for r in measured if r["srm"] and r["srm"]["mismatch"]
    ]
    assert all(not r["srm"]["mismatch"] for r in measured if r["srm"]), srm
