"""The demo city runs campaigns with a true effect, and their results are there at once."""

from __future__ import annotations

from sqlalchemy import select

from city_kit import City
from o2oloop.campaigns.models import Campaign
from o2oloop.campaigns.results import campaign_results


def test_the_city_runs_its_demo_campaigns_and_measures_them(city: City, frozen_clock) -> None:
    report = city.report
    assert report.campaigns >= 2 and report.campaign_messages > 0
    with city.db.reading() as session:
        campaigns = session.scalars(select(Campaign)).all()
        names = {c.name for c in campaigns}
        assert "Win back members at risk" in names
        measured = [campaign_results(session, campaign=c) for c in campaigns]
    assert any(r["sent"] > 0 and r["visits"] is not None for r in measured)
    srm = [
        (r["arms"], r["srm"], r["skipped"]) for r in measured if r["srm"] and r["srm"]["mismatch"]
    ]
    assert all(not r["srm"]["mismatch"] for r in measured if r["srm"]), srm
