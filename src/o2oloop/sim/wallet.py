"""The demo consumer's wallet: codes to try at the demo terminal right away.

The printed consumer is a real app user of the city, a customer of the first merchant (whose
terminal is printed too). At the end of the run they hold an unused welcome coupon with no
time rule, the money-off coupon, and a bought set package, so each can be redeemed (or
refused, with a reason) at the demo terminal.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from o2oloop.codes import service as codes
from o2oloop.codes import vouchers
from o2oloop.errors import ProblemError
from o2oloop.offers import schemas as offer_schemas
from o2oloop.offers import service as offers
from o2oloop.sim.world import CityRun

WELCOME = {"kind": "coupon", "title": "Welcome back: 10 off", "discount_kind": "amount_off",
           "amount_off": 1000}  # fmt: skip


def fill(session: Session, run: CityRun, consumer: int) -> None:
    merchant = run.merchants[0]
    assert merchant.admin is not None
    welcome = offers.create_offer(
        session,
        principal=merchant.admin,
        merchant_id=merchant.id,
        data=offer_schemas.OfferCreate.model_validate(WELCOME),
    )
    offers.transition(
        session, principal=merchant.admin, merchant_id=merchant.id, offer_id=welcome.id,
        action="publish",
    )  # fmt: skip
    app = run.app(session, consumer)
    for offer_id in (welcome.id, *merchant.coupon_ids):
        try:
            with session.begin_nested():
                codes.claim(session, principal=app, offer_id=offer_id, keys=run.code_keys)
        except ProblemError:  # e.g. already claimed as often as allowed
            continue
    if merchant.voucher_id is not None:
        with session.begin_nested():
            vouchers.buy(session, principal=app, offer_id=merchant.voucher_id)
