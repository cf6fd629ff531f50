"""Stored-value cards in the demo city: top-ups with a bonus, spent visit by visit.

Gyms, schools and leisure places (and some restaurants) sell stored value: "pay 500, get
550". A regular tops up at the counter after a visit (the provider confirms the charge
tonight) and pays later visits from the balance at the terminal, until it runs low.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from o2oloop.ledger.service import InsufficientFunds
from o2oloop.merchants.models import Category
from o2oloop.sim.world import CityRun, Visit
from o2oloop.stored_value import service as stored_value

TIERS = [{"pay": 50_000, "bonus": 5_000}, {"pay": 100_000, "bonus": 15_000}]
SELLERS = (Category.FITNESS, Category.EDUCATION, Category.LEISURE)
TOP_UP_CHANCE = 0.05  # of a visit by a consumer with no balance here


def setup(session: Session, run: CityRun) -> None:
    for n, merchant in enumerate(run.merchants):
        if merchant.category not in SELLERS and n % 3:
            continue
        assert merchant.admin is not None
        stored_value.set_program(
            session, principal=merchant.admin, merchant_id=merchant.id, tiers=TIERS, active=True
        )
        merchant.sells_stored_value = True


def pay_visit(session: Session, run: CityRun, visit: Visit) -> None:
    """Pay the bill from the consumer's balance here, when it covers it."""
    if not visit.merchant.sells_stored_value or visit.consumer not in run.consumer_ids:
        return
    try:
        with session.begin_nested():
            stored_value.spend_at_terminal(
                session,
                principal=visit.store.terminal,
                consumer_id=run.consumer_ids[visit.consumer],
                amount=visit.amount,
            )
    except InsufficientFunds:
        return
    visit.paid_with_stored_value = True
    run.report.stored_value_spends += 1


def after_visit(session: Session, run: CityRun, visit: Visit) -> None:
    """A regular with no balance left sometimes tops up before leaving."""
    rng = run.rng("stored_value")
    if not visit.merchant.sells_stored_value or visit.paid_with_stored_value or visit.first:
        return
    if rng.random() >= TOP_UP_CHANCE:
        return
    stored_value.start_top_up(
        session,
        consumer_id=run.consumer_id(session, visit.consumer),
        merchant_id=visit.merchant.id,
        amount=int(rng.choice([t["pay"] for t in TIERS], p=[0.75, 0.25])),
    )
    run.report.top_ups += 1
