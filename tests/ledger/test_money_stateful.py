"""Random sequences of top-up / pay-succeed / pay-fail / spend / undo / settle / closure refund,
and (second machine) prepaid vouchers: buy / redeem / undo / refund / expire mixed in.

After every step: every transaction balances, no escrow is negative, each stored-value
balance is what a simple model says, money in equals money out plus balances, and the
reconciliation report is empty.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from factories import (
    PLATFORM,
    Tenant,
    consumer_principal,
    make_consumer,
    make_offer,
    make_tenant,
    terminal_principal,
)
from money_kit import CODE_SECRET, deliver, give_program, top_up
from o2oloop import clock
from o2oloop.clock import FrozenClock
from o2oloop.codes import service as codes
from o2oloop.codes import vouchers
from o2oloop.codes.models import Code, CodeState
from o2oloop.db import Database
from o2oloop.errors import ProblemError
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind, LedgerAccount
from o2oloop.payments.models import SandboxRecord
from o2oloop.reconciliation import service as reconciliation
from o2oloop.settlement import service as settlement
from o2oloop.stored_value import service as stored_value

BEHAVIOURS = st.sampled_from(["succeed", "succeed", "succeed", "fail", "decline", "timeout"])
TIERS = [{"pay": 10000, "bonus": 1000}, {"pay": 50000, "bonus": 8000}]


def _bonus(amount: int) -> int:
    return stored_value.bonus_for(TIERS, amount)


class Money(RuleBasedStateMachine):
    db: Database
    clock: FrozenClock
    code_secret = CODE_SECRET

    def __init__(self) -> None:
        super().__init__()
        db = self.db
        self.tenants = [make_tenant(db, commission_bps=bps) for bps in (500, 333)]
        self.merchants = [tenant.merchant_id for tenant in self.tenants]
        for merchant_id in self.merchants:
            give_program(db, merchant_id, TIERS)
        self.consumers = [make_consumer(db)[0] for _ in range(3)]
        self.balances = {(c, m): 0 for c in self.consumers for m in self.merchants}
        # intent id → (consumer, merchant, value, behaviour, when the provider was asked)
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
        # The provider hears of the charge only after the commit, at its next round.
        self.pending_top_ups[intent] = (consumer, merchant, value, behaviour, None)

    @rule()
    def provider_delivers(self) -> None:
        deliver(self.db, code_secret=self.code_secret)
        now = clock.now()
        for intent, (consumer, merchant, value, behaviour, at) in list(
            self.pending_top_ups.items()
        ):
            if at is None:  # asked for just now: its timeout starts now
                at = now
                self.pending_top_ups[intent] = (consumer, merchant, value, behaviour, at)
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


def _examples(db: Database, on_sqlite: int) -> int:
    """PostgreSQL runs half the sequences: each step costs it several times the round trips,
    and what it adds over SQLite (its locking and SQL) shows in the first few sequences."""
    return on_sqlite if db.dialect == "sqlite" else on_sqlite // 2


def test_money_state_machine(db: Database, frozen_clock: FrozenClock) -> None:
    Money.db, Money.clock = db, frozen_clock
    run_state_machine_as_test(
        Money,
        settings=settings(
            max_examples=_examples(db, 25),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


# ---- with prepaid vouchers (the codes domain) -------------------------------------------

VOUCHER_SECRET = "stateful-" + "v" * 40
PRICE = 8800


class MoneyWithVouchers(Money):
    code_secret = VOUCHER_SECRET

    def __init__(self) -> None:
        super().__init__()
        self.keys = codes.Keys.from_secret(VOUCHER_SECRET)
        self.offers = [
            make_offer(
                self.db,
                tenant,
                kind="voucher",
                title="Set for two",
                price=PRICE,
                face_value=12800,
                includes="two mains",
                valid_days_after_claim=2,
            )
            for tenant in self.tenants
        ]
        self.redemptions: list[tuple[str, Tenant]] = []

    def _active_codes(self) -> list[Code]:
        return [
            code for m in range(len(self.merchants)) for code in self._codes(m, CodeState.ACTIVE)
        ]

    def _codes(self, m: int, state: CodeState) -> list[Code]:
        with self.db.transaction() as session:
            return list(
                session.scalars(
                    select(Code)
                    .where(
                        Code.merchant_id == self.merchants[m],
                        Code.state == state,
                        Code.price_paid > 0,
                    )
                    .order_by(Code.id)
                )
            )

    @rule(c=st.integers(0, 2), m=st.integers(0, 1), behaviour=BEHAVIOURS)
    def buy_voucher(self, c: int, m: int, behaviour: str) -> None:
        try:
            with self.db.transaction() as session:
                vouchers.buy(
                    session,
                    principal=consumer_principal(self.consumers[c]),
                    offer_id=self.offers[m],
                    behaviour=behaviour,
                )
        except ProblemError:
            event("purchase refused")  # a rule of the offer refused: nothing was charged
            return
        self.provider_delivers()  # the charge succeeds or fails: a code, or nothing owed

    @rule(data=st.data())
    def redeem_voucher(self, data: st.DataObject) -> None:
        active = self._active_codes()
        if not active:
            return
        code = active[data.draw(st.integers(0, len(active) - 1))]
        tenant = self.tenants[self.merchants.index(code.merchant_id)]
        try:
            with self.db.transaction() as session:
                redeemed = codes.redeem(
                    session,
                    principal=terminal_principal(tenant),
                    code=self.keys.code_text(code.id),
                    bill_amount=None,
                    keys=self.keys,
                    rate_per_minute=1_000_000,
                )
                self.redemptions.append((redeemed.redemption.id, tenant))
            event("voucher redeemed")
        except (codes.Refused, ProblemError):
            event("redemption refused")  # expired, outside the offer's hours: nothing moved

    @rule(data=st.data())
    def undo_redemption(self, data: st.DataObject) -> None:
        if not self.redemptions:
            return
        redemption_id, tenant = self.redemptions.pop(
            data.draw(st.integers(0, len(self.redemptions) - 1))
        )
        try:
            with self.db.transaction() as session:
                codes.undo(
                    session,
                    principal=terminal_principal(tenant),
                    redemption_id=redemption_id,
                    grace=timedelta(minutes=10),
                )
            event("redemption undone")
        except ProblemError:
            event("undo refused")  # past the grace period

    @rule(data=st.data())
    def consumer_refunds(self, data: st.DataObject) -> None:
        active = self._active_codes()
        if not active:
            return
        code = active[data.draw(st.integers(0, len(active) - 1))]
        assert code.consumer_id is not None
        with self.db.transaction() as session:
            vouchers.refund_own(
                session, principal=consumer_principal(code.consumer_id), code_id=code.id
            )
        event("voucher refunded by its consumer")

    @rule()
    def expiry_refunds(self) -> None:
        self.clock.advance(timedelta(days=3))
        with self.db.transaction() as session:
            due = vouchers.expired_unused(session)
        for code_id in due:
            with self.db.transaction() as session:
                assert vouchers.refund_expired(session, code_id=code_id)
        if due:
            event("expired vouchers refunded")

    @invariant()
    def voucher_escrow_is_the_unused_paid_codes(self) -> None:
        for m, merchant in enumerate(self.merchants):
            unused = len(self._codes(m, CodeState.ACTIVE)) * PRICE
            with self.db.transaction() as session:
                account = ledger.merchant_account(
                    session, AccountKind.VOUCHER_ESCROW, merchant, "CNY"
                )
                assert ledger.balance(session, account).amount == unused


def test_money_state_machine_with_vouchers(db: Database, frozen_clock: FrozenClock) -> None:
    MoneyWithVouchers.db, MoneyWithVouchers.clock = db, frozen_clock
    run_state_machine_as_test(
        MoneyWithVouchers,
        settings=settings(
            max_examples=_examples(db, 20),
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
