"""The rules the counter used to decide by itself, now in `offers.rules`: a code's own
expiry, a percent-off coupon's need for a bill, and the discount and benefit given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from o2oloop.offers.rules import (
    BILL_AMOUNT,
    EXPIRED,
    MIN_SPEND,
    OfferRules,
    RedemptionContext,
    Reward,
    benefit,
    code_expired,
    discount_at_counter,
    evaluate_claim,
    evaluate_redemption,
)

NOON = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


def _ctx(**kw: object) -> RedemptionContext:
    return RedemptionContext(at=NOON, store_id="s1", store_timezone="Asia/Shanghai", **kw)


def _rules(result: list) -> list[str]:
    return [v.rule for v in result]


def test_a_code_stops_working_at_its_stored_expiry_exactly() -> None:
    assert not code_expired(None, NOON)
    assert not code_expired(NOON + timedelta(microseconds=1), NOON)
    assert code_expired(NOON, NOON)
    assert _rules(evaluate_redemption(OfferRules(), _ctx(code_expires_at=NOON))) == [EXPIRED]
    assert evaluate_redemption(OfferRules(), _ctx(code_expires_at=NOON + timedelta(hours=1))) == []


def test_percent_off_needs_the_bill_at_the_counter_but_not_to_claim() -> None:
    rules = OfferRules(bill_required=True)
    assert _rules(evaluate_redemption(rules, _ctx())) == [BILL_AMOUNT]
    assert evaluate_redemption(rules, _ctx(bill_amount=0)) == []
    assert evaluate_claim(rules, _ctx()) == []


def test_a_missing_bill_is_reported_once_when_a_minimum_spend_already_says_so() -> None:
    rules = OfferRules(bill_required=True, min_spend=5_000)
    assert _rules(evaluate_redemption(rules, _ctx())) == [MIN_SPEND]


def test_the_benefit_in_words() -> None:
    assert benefit(Reward(set_name="two coffees", set_worth=6_000), 6_000) == (
        "give the set: two coffees"
    )
    assert benefit(Reward(discount_kind="percent_off", percent_off_bps=1_250), 300) == "12.5% off"
    assert benefit(Reward(discount_kind="amount_off", amount_off=500), 500) == "500 off"
    assert benefit(Reward(), 0) == "0 off"


def test_a_voucher_gives_its_whole_worth_and_other_offers_nothing() -> None:
    assert discount_at_counter(Reward(set_name="set", set_worth=12_800), 100) == 12_800
    assert discount_at_counter(Reward(), 10_000) == 0
    assert discount_at_counter(Reward(discount_kind="amount_off", amount_off=500), None) == 500


@given(
    bill=st.integers(0, 10**9),
    amount=st.integers(0, 10**7),
    bps=st.integers(0, 10_000),
    cap=st.none() | st.integers(0, 10**7),
)
def test_a_coupon_never_gives_more_than_the_bill_or_its_cap(
    bill: int, amount: int, bps: int, cap: int | None
) -> None:
    for reward in (
        Reward(discount_kind="amount_off", amount_off=amount, cap=cap),
        Reward(discount_kind="percent_off", percent_off_bps=bps, cap=cap),
    ):
        given_off = discount_at_counter(reward, bill)
        assert 0 <= given_off <= bill
        assert cap is None or given_off <= cap
