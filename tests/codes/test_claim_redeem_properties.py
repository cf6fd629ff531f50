"""Property: random interleavings of claim, redeem and undo never redeem a code twice and
never exceed the stock or a consumer's limit."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import func, select

import o2oloop.models  # noqa: F401
from factories import consumer_principal, make_consumer, make_offer, make_tenant, terminal_principal
from o2oloop import clock
from o2oloop.codes import service
from o2oloop.codes.models import Code, CodeState, Redemption, RedemptionState
from o2oloop.db import Base, Database
from o2oloop.errors import ProblemError
from o2oloop.offers.models import Offer

KEYS = service.Keys.from_secret("property-secret-" + "x" * 32)
STOCK, LIMIT = 6, 2


class ClaimRedeemUndo(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.db = Database.from_url(f"sqlite:///{self.folder.name}/p.db")
        Base.metadata.create_all(self.db.engine)
        self.clock = clock.FrozenClock(datetime(2026, 6, 1, 12, tzinfo=UTC))
        self.previous_clock = clock.install(self.clock)
        self.tenant = make_tenant(self.db)
        self.terminal = terminal_principal(self.tenant)
        self.offer_id = make_offer(
            self.db, self.tenant, total_stock=STOCK, per_customer_limit=LIMIT
        )
        self.consumers = [make_consumer(self.db)[0] for _ in range(4)]
        self.codes: list[str] = []
        self.redemptions: list[str] = []

    def teardown(self) -> None:
        clock.install(self.previous_clock)
        self.db.dispose()
        self.folder.cleanup()

    @rule(who=st.integers(0, 3))
    def claim(self, who: int) -> None:
        try:
            with self.db.transaction() as session:
                code = service.claim(
                    session,
                    principal=consumer_principal(self.consumers[who]),
                    offer_id=self.offer_id,
                    keys=KEYS,
                )
            self.codes.append(code.id)
        except ProblemError:
            pass

    @precondition(lambda self: self.codes)
    @rule(pick=st.integers(0, 10_000))
    def redeem(self, pick: int) -> None:
        text = KEYS.code_text(self.codes[pick % len(self.codes)])
        try:
            with self.db.transaction() as session:
                redeemed = service.redeem(
                    session,
                    principal=self.terminal,
                    code=text,
                    bill_amount=3000,
                    keys=KEYS,
                    rate_per_minute=100_000,
                )
            self.redemptions.append(redeemed.redemption.id)
        except (service.Refused, ProblemError):
            pass

    @precondition(lambda self: self.redemptions)
    @rule(pick=st.integers(0, 10_000))
    def undo(self, pick: int) -> None:
        try:
            with self.db.transaction() as session:
                service.undo(
                    session,
                    principal=self.terminal,
                    redemption_id=self.redemptions[pick % len(self.redemptions)],
                    grace=timedelta(minutes=10),
                )
        except ProblemError:
            pass

    @rule(minutes=st.integers(1, 15))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @invariant()
    def never_redeemed_twice_nor_over_stock(self) -> None:
        with self.db.transaction() as session:
            live = session.execute(
                select(Redemption.code_id, func.count())
                .where(Redemption.state == RedemptionState.REDEEMED)
                .group_by(Redemption.code_id)
            ).all()
            assert all(count == 1 for _, count in live)
            redeemed_codes = session.scalar(
                select(func.count()).select_from(Code).where(Code.state == CodeState.REDEEMED)
            )
            assert redeemed_codes == len(live)
            offer = session.get(Offer, self.offer_id)
            issued = session.scalar(select(func.count()).select_from(Code))
            assert issued == offer.issued_count <= STOCK
            assert offer.redeemed_count == len(live)
            per_consumer = session.execute(
                select(Code.consumer_id, func.count()).group_by(Code.consumer_id)
            ).all()
            assert all(count <= LIMIT for _, count in per_consumer)


TestClaimRedeemUndo = ClaimRedeemUndo.TestCase
TestClaimRedeemUndo.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
