"""Random sequences of top-up / pay-succeed / pay-fail / spend / undo / settle / closure refund.

After every step: every transaction balances, no escrow is negative, each stored-value
balance is what a simple model says, money in equals money out plus balances, and the
reconciliation report is empty.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from factories import PLATFORM, make_consumer, make_tenant
from money_kit import deliver, give_program, top_up
from o2oloop import clock
from o2oloop.clock import FrozenClock
from o2oloop.db import Database
from o2oloop.errors import ProblemError
from o2oloop.ledger import reconciliation, settlement, stored_value
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind, LedgerAccount
from o2oloop.payments.models import SandboxRecord

BEHAVIOURS = st.sampled_from(["succeed", "succeed", "succeed", "fail", "decline", "timeout"])
TIERS = [{"pay": 10000, "bonus": 1000}, {"pay": 50000, "bonus": 8000}]


def _bonus(amount: int) -> int:
    return stored_value.bonus_for(TIERS, amount)


class Money(RuleBasedStateMachine):
    db: Database
    clock: FrozenClock

    def __init__(self) -> None:
        super().__init__()
        db = self.db
        self.merchants = []
        for bps in (500, 333):
            tenant = make_tenant(db, commission_bps=bps)
            give_program(db, tenant.merchant_id, TIERS)
            self.merchants.append(tenant.merchant_id)
        self.consumers = [make_consumer(db)[0] for _ in range(3)]
        self.balances = {(c, m): 0 for c in self.consumers for m in self.merchants}
        # intent id → (consumer, merchant, value, behaviour, created_at)
        self.pending_top_ups: dict[str, tuple[str, str, int, str, object]] = {}
        # (consumer, merchant, amount, behaviour) of closure refunds awaiting the provider
        self.pending_refunds: list[tuple[str, str, int, str]] = []
        self.spends: list[tuple[str, str, str, int]] = []  # (tx, consumer, merchant, amount)

    # ---- rules ---------------------------------------------------------------------------

    @rule(
        c=st.integers(0, 2),
        m=st.integers(0, 1),
        amount=st.integers(1, 80000),
        behaviour=BEHAVIOURS,
    )
    def top_up(self, c: int, m: int, amount: int, behaviour: str) -> None:
        consumer, merchant = self.consumers[c], self.merchants[m]
        intent = top_up(
            self.db, consumer_id=consumer, merchant_id=merchant, amount=amount, behaviour=behaviour
        )
        value = amount + _bonus(amount)
        self.pending_top_ups[intent] = (consumer, merchant, value, behaviour, clock.now())

    @rule()
    def provider_delivers(self) -> None:
        deliver(self.db)
        now = clock.now()
        for intent, (consumer, merchant, value, behaviour, at) in list(
            self.pending_top_ups.items()
        ):
            if behaviour == "timeout" and now - at < timedelta(minutes=30):  # type: ignore[operator]
                continue
            if behaviour == "succeed":
                self.balances[(consumer, merchant)] += value
            del self.pending_top_ups[intent]
        for consumer, merchant, amount, behaviour in self.pending_refunds:
            if behaviour != "succeed":
                self.balances[(consumer, merchant)] += amount
        self.pending_refunds = []

    @rule(minutes=st.integers(1, 45))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule(c=st.integers(0, 2), m=st.integers(0, 1), amount=st.integers(1, 60000))
    def spend(self, c: int, m: int, amount: int) -> None:
        consumer, merchant = self.consumers[c], self.merchants[m]
        try:
            with self.db.transaction() as session:
                tx, left = stored_value.spend(
                    session,
                    merchant_id=merchant,
                    consumer_id=consumer,
                    amount=amount,
                    reference="stateful",
                )
                tx_id = tx.id
        except ProblemError as error:
            assert error.slug == "insufficient-funds"
            assert amount > self.balances[(consumer, merchant)]
            return
        assert amount <= self.balances[(consumer, merchant)]
        self.balances[(consumer, merchant)] -= amount
        assert left.amount == self.balances[(consumer, merchant)]
        self.spends.append((tx_id, consumer, merchant, amount))

    @rule(data=st.data())
    def undo_a_spend(self, data: st.DataObject) -> None:
        if not self.spends:
            return
        index = data.draw(st.integers(0, len(self.spends) - 1))
        tx_id, consumer, merchant, amount = self.spends.pop(index)
        with self.db.transaction() as session:
            ledger.reverse(session, tx_id)
        self.balances[(consumer, merchant)] += amount

    @rule(m=st.integers(0, 1), behaviour=st.sampled_from(["succeed", "succeed", "fail"]))
    def settle(self, m: int, behaviour: str) -> None:
        with self.db.transaction() as session:
            settlement.settle_merchant(
                session, merchant_id=self.merchants[m], cutoff=clock.now(), behaviour=behaviour
            )

    @rule(m=st.integers(0, 1), behaviour=st.sampled_from(["succeed", "fail"]))
    def closure_refund(self, m: int, behaviour: str) -> None:
        merchant = self.merchants[m]
        with self.db.transaction() as session:
            operations = stored_value.refund_all(
                session, principal=PLATFORM, merchant_id=merchant, behaviour=behaviour
            )
            refunded = {op.consumer_id: op.amount for op in operations}
        for consumer in self.consumers:
            expected = self.balances[(consumer, merchant)]
            assert refunded.get(consumer, 0) == expected
            if expected:
                self.pending_refunds.append((consumer, merchant, expected, behaviour))
                self.balances[(consumer, merchant)] = 0
        # Spends the refunded balance would have covered can no longer be undone into it.
        self.spends = [s for s in self.spends if s[2] != merchant]

    # ---- invariants ----------------------------------------------------------------------

    @invariant()
    def books_agree(self) -> None:
        with self.db.transaction() as session:
            assert reconciliation.report(session) == []

    @invariant()
    def balances_match_the_model(self) -> None:
        with self.db.transaction() as session:
            for (consumer, merchant), expected in self.balances.items():
                account = ledger.stored_value_account(
                    session, consumer_id=consumer, merchant_id=merchant, currency="CNY"
                )
                assert ledger.balance(session, account).amount == expected

    @invariant()
    def money_in_equals_money_out_plus_balances(self) -> None:
        with self.db.transaction() as session:
            provider = dict(
                session.execute(
                    select(SandboxRecord.object, func.sum(SandboxRecord.amount))
                    .where(SandboxRecord.status == "succeeded")
                    .group_by(SandboxRecord.object)
                ).all()
            )
            money_in = int(provider.get("charge") or 0)
            money_out = int(provider.get("refund") or 0) + int(provider.get("payout") or 0)
            held = session.scalar(
                select(func.coalesce(func.sum(LedgerAccount.balance), 0)).where(
                    LedgerAccount.kind != AccountKind.PROVIDER_CLEARING
                )
            )
            assert money_in == money_out + int(held or 0)


def test_money_state_machine(db: Database, frozen_clock: FrozenClock) -> None:
    Money.db, Money.clock = db, frozen_clock
    run_state_machine_as_test(
        Money,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
