"""Offer rule engine: pure tests, no database, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2oloop.offers.rules import (
    RULE_NAMES,
    OfferRules,
    RedemptionContext,
    TimeWindow,
    Violation,
    code_expires_at,
    discount_for,
    evaluate_claim,
    evaluate_redemption,
)

SHANGHAI = "Asia/Shanghai"
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
LATE = TimeWindow(time(22, 0), time(2, 0))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ctx(at: datetime, tz: str = SHANGHAI, **kw: Any) -> RedemptionContext:
    kw.setdefault("store_id", "s1")
    return RedemptionContext(at=at, store_timezone=tz, **kw)


def rules_of(result: list[Violation]) -> list[str]:
    return [v.rule for v in result]


def local_ctx(tz: str, *args: int, **kw: Any) -> RedemptionContext:
    """A context at a store-local wall-clock time (unambiguous times only)."""
    return ctx(datetime(*args, tzinfo=ZoneInfo(tz)).astimezone(UTC), tz, **kw)


# --- timezones -------------------------------------------------------------------------


def test_same_instant_inside_in_shanghai_outside_in_berlin() -> None:
    rules = OfferRules(time_windows=(TimeWindow(time(19, 0), time(21, 0)),))
    at = utc(2026, 5, 15, 11, 5)  # 19:05 in Shanghai, 13:05 in Berlin
    assert evaluate_redemption(rules, ctx(at, SHANGHAI)) == []
    [v] = evaluate_redemption(rules, ctx(at, BERLIN))
    assert v.rule == "time_window"
    assert v.reason == "valid only 19:00–21:00 store time; it is 13:05 in Europe/Berlin"


def test_reason_quotes_store_local_time() -> None:
    [v] = evaluate_redemption(OfferRules(time_windows=(LATE,)), ctx(utc(2026, 5, 15, 11, 5)))
    assert v == Violation(
        "time_window", "valid only 22:00–02:00 store time; it is 19:05 in Asia/Shanghai"
    )


def test_weekday_is_the_store_local_day() -> None:
    rules = OfferRules(weekdays=frozenset({4}))  # Fridays
    at = utc(2026, 5, 15, 20, 0)  # Fri 20:00 UTC = Fri 22:00 Berlin = Sat 04:00 Shanghai
    assert evaluate_redemption(rules, ctx(at, BERLIN)) == []
    [v] = evaluate_redemption(rules, ctx(at, SHANGHAI))
    assert v.rule == "weekday"
    assert "valid only on Fri; it is Sat 04:00 in Asia/Shanghai" in v.reason


def test_unknown_timezone_rejected() -> None:
    with pytest.raises(ValueError):
        ctx(utc(2026, 1, 1), "Mars/Olympus")


def test_naive_instants_rejected() -> None:
    with pytest.raises(ValueError):
        RedemptionContext(at=datetime(2026, 1, 1), store_id="s", store_timezone=SHANGHAI)
    with pytest.raises(ValueError):
        OfferRules(valid_until=datetime(2026, 1, 1))


# --- DST -------------------------------------------------------------------------------


def test_berlin_spring_forward_moves_window_with_wall_clock() -> None:
    rules = OfferRules(time_windows=(TimeWindow(time(3, 0), time(4, 0)),))
    # 2026-03-29 01:00 UTC is 03:00 CEST (clocks jumped 02:00 → 03:00); a fixed +1 offset
    # would say 02:00 and wrongly reject.
    assert evaluate_redemption(rules, ctx(utc(2026, 3, 29, 1, 0), BERLIN)) == []
    assert rules_of(evaluate_redemption(rules, ctx(utc(2026, 3, 29, 0, 59), BERLIN))) == [
        "time_window"
    ]
    # The day before, the same UTC time is 02:00 CET: outside.
    assert rules_of(evaluate_redemption(rules, ctx(utc(2026, 3, 28, 1, 0), BERLIN))) == [
        "time_window"
    ]
    assert evaluate_redemption(rules, ctx(utc(2026, 3, 28, 2, 0), BERLIN)) == []


def test_berlin_skipped_hour_window_never_matches_that_night() -> None:
    rules = OfferRules(time_windows=(TimeWindow(time(2, 0), time(3, 0)),))
    night = utc(2026, 3, 28, 23, 0)
    for minutes in range(0, 4 * 60, 5):
        at = night + timedelta(minutes=minutes)
        assert rules_of(evaluate_redemption(rules, ctx(at, BERLIN))) == ["time_window"], at


def test_berlin_fall_back_repeated_hour_matches_twice() -> None:
    rules = OfferRules(time_windows=(TimeWindow(time(2, 0), time(3, 0)),))
    assert evaluate_redemption(rules, ctx(utc(2026, 10, 25, 0, 30), BERLIN)) == []  # 02:30 CEST
    assert evaluate_redemption(rules, ctx(utc(2026, 10, 25, 1, 30), BERLIN)) == []  # 02:30 CET
    assert rules_of(evaluate_redemption(rules, ctx(utc(2026, 10, 25, 2, 0), BERLIN))) == [
        "time_window"
    ]  # 03:00 CET
    assert rules_of(evaluate_redemption(rules, ctx(utc(2026, 10, 24, 23, 59), BERLIN))) == [
        "time_window"
    ]  # 01:59 CEST


def test_new_york_window_follows_dst() -> None:
    rules = OfferRules(time_windows=(TimeWindow(time(9, 0), time(10, 0)),))
    # Before DST (EST, -5): 14:30 UTC is 09:30; after (EDT, -4): 13:30 UTC is 09:30.
    assert evaluate_redemption(rules, ctx(utc(2026, 3, 6, 14, 30), NEW_YORK)) == []
    assert rules_of(evaluate_redemption(rules, ctx(utc(2026, 3, 6, 13, 30), NEW_YORK))) == [
        "time_window"
    ]
    assert evaluate_redemption(rules, ctx(utc(2026, 3, 9, 13, 30), NEW_YORK)) == []
    assert rules_of(evaluate_redemption(rules, ctx(utc(2026, 3, 9, 14, 30), NEW_YORK))) == [
        "time_window"
    ]
    # And back on 2026-11-01.
    assert evaluate_redemption(rules, ctx(utc(2026, 10, 30, 13, 30), NEW_YORK)) == []
    assert evaluate_redemption(rules, ctx(utc(2026, 11, 2, 14, 30), NEW_YORK)) == []


# --- midnight-crossing windows ---------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "hh", "mm", "ok"),
    [
        (15, 23, 30, True),
        (16, 1, 30, True),
        (15, 22, 0, True),
        (16, 1, 59, True),
        (16, 2, 0, False),
        (15, 21, 59, False),
        (15, 12, 0, False),
    ],
)
def test_window_crossing_midnight(day: int, hh: int, mm: int, ok: bool) -> None:
    result = evaluate_redemption(
        OfferRules(time_windows=(LATE,)), local_ctx(SHANGHAI, 2026, 5, day, hh, mm)
    )
    assert rules_of(result) == ([] if ok else ["time_window"])


def test_window_belongs_to_the_day_it_starts() -> None:
    fridays_late = OfferRules(weekdays=frozenset({4}), time_windows=(LATE,))
    # 2026-05-15 is a Friday.
    assert evaluate_redemption(fridays_late, local_ctx(SHANGHAI, 2026, 5, 15, 23, 30)) == []
    assert (
        evaluate_redemption(fridays_late, local_ctx(SHANGHAI, 2026, 5, 16, 1, 0)) == []
    )  # Sat 01:00
    [v] = evaluate_redemption(fridays_late, local_ctx(SHANGHAI, 2026, 5, 15, 1, 0))  # Fri 01:00
    assert v.rule == "weekday"
    assert "started on Thu" in v.reason
    [v] = evaluate_redemption(fridays_late, local_ctx(SHANGHAI, 2026, 5, 16, 23, 0))  # Sat 23:00
    assert v.rule == "weekday"
    assert rules_of(evaluate_redemption(fridays_late, local_ctx(SHANGHAI, 2026, 5, 16, 3, 0))) == [
        "weekday",
        "time_window",
    ]
    assert rules_of(evaluate_redemption(fridays_late, local_ctx(SHANGHAI, 2026, 5, 15, 20, 0))) == [
        "time_window"
    ]


def test_without_windows_weekday_is_the_calendar_day() -> None:
    fridays = OfferRules(weekdays=frozenset({4}))
    assert rules_of(evaluate_redemption(fridays, local_ctx(SHANGHAI, 2026, 5, 16, 1, 0))) == [
        "weekday"
    ]


def test_several_windows_any_one_suffices() -> None:
    rules = OfferRules(time_windows=(TimeWindow(time(11, 0), time(14, 0)), LATE))
    assert evaluate_redemption(rules, local_ctx(SHANGHAI, 2026, 5, 15, 12, 0)) == []
    assert evaluate_redemption(rules, local_ctx(SHANGHAI, 2026, 5, 15, 23, 0)) == []
    [v] = evaluate_redemption(rules, local_ctx(SHANGHAI, 2026, 5, 15, 19, 5))
    assert (
        v.reason == "valid only 11:00–14:00, 22:00–02:00 store time; it is 19:05 in Asia/Shanghai"
    )


def test_equal_start_and_end_is_a_full_day_from_start() -> None:
    rules = OfferRules(
        weekdays=frozenset({4}), time_windows=(TimeWindow(time(10, 0), time(10, 0)),)
    )
    assert (
        evaluate_redemption(rules, local_ctx(SHANGHAI, 2026, 5, 16, 9, 59)) == []
    )  # Sat, Fri's window
    assert rules_of(evaluate_redemption(rules, local_ctx(SHANGHAI, 2026, 5, 16, 10, 0))) == [
        "weekday"
    ]


# --- dates -----------------------------------------------------------------------------

START = utc(2026, 5, 1)
END = utc(2026, 6, 1)
DATED = OfferRules(valid_from=START, valid_until=END)


def test_validity_dates_from_inclusive_until_exclusive() -> None:
    assert rules_of(evaluate_redemption(DATED, ctx(START - timedelta(seconds=1)))) == [
        "not_started"
    ]
    assert evaluate_redemption(DATED, ctx(START)) == []
    assert evaluate_redemption(DATED, ctx(END - timedelta(microseconds=1))) == []
    [v] = evaluate_redemption(DATED, ctx(END))
    assert v == Violation("expired", "offer ended 2026-06-01 08:00 Asia/Shanghai")
    assert rules_of(evaluate_claim(DATED, ctx(END))) == ["expired"]
    assert rules_of(evaluate_claim(DATED, ctx(START - timedelta(days=1)))) == ["not_started"]


def test_valid_until_must_follow_valid_from() -> None:
    with pytest.raises(ValueError):
        OfferRules(valid_from=END, valid_until=START)


def test_days_after_claim() -> None:
    rules = OfferRules(valid_days_after_claim=7)
    claimed = utc(2026, 5, 10, 12, 0)
    assert (
        evaluate_redemption(rules, ctx(claimed + timedelta(days=7, seconds=-1), claimed_at=claimed))
        == []
    )
    [v] = evaluate_redemption(rules, ctx(claimed + timedelta(days=7), claimed_at=claimed))
    assert v.rule == "expired_after_claim"
    assert "valid 7 days after claim" in v.reason
    # Nothing to count from without a claim; and it is no claim-time rule.
    assert evaluate_redemption(rules, ctx(claimed + timedelta(days=70))) == []
    assert evaluate_claim(rules, ctx(claimed + timedelta(days=70), claimed_at=claimed)) == []


def test_offer_end_and_claim_expiry_reported_together() -> None:
    rules = OfferRules(valid_until=END, valid_days_after_claim=1)
    result = evaluate_redemption(
        rules, ctx(END + timedelta(days=3), claimed_at=END - timedelta(days=1))
    )
    assert rules_of(result) == ["expired", "expired_after_claim"]


def test_code_expires_at() -> None:
    claimed = utc(2026, 5, 10)
    assert code_expires_at(OfferRules(), claimed) is None
    assert code_expires_at(OfferRules(valid_until=END), claimed) == END
    assert code_expires_at(OfferRules(valid_days_after_claim=3), claimed) == utc(2026, 5, 13)
    assert code_expires_at(OfferRules(valid_until=END, valid_days_after_claim=3), claimed) == utc(
        2026, 5, 13
    )
    late_claim = utc(2026, 5, 30)
    assert code_expires_at(OfferRules(valid_until=END, valid_days_after_claim=3), late_claim) == END


def test_code_expires_at_agrees_with_evaluation() -> None:
    rules = OfferRules(valid_until=END, valid_days_after_claim=3)
    for claimed in (utc(2026, 5, 10), utc(2026, 5, 30)):
        expiry = code_expires_at(rules, claimed)
        assert expiry is not None
        assert (
            evaluate_redemption(rules, ctx(expiry - timedelta(microseconds=1), claimed_at=claimed))
            == []
        )
        assert evaluate_redemption(rules, ctx(expiry, claimed_at=claimed)) != []


# --- store, limits, stock, new customers, min spend ------------------------------------

NOON = utc(2026, 5, 15, 4, 0)


def test_store_restriction() -> None:
    rules = OfferRules(store_ids=frozenset({"a", "b"}))
    assert evaluate_redemption(rules, ctx(NOON, store_id="a")) == []
    [v] = evaluate_redemption(rules, ctx(NOON, store_id="c"))
    assert v == Violation("store", "not valid at store c; valid only at a, b")
    assert evaluate_claim(rules, ctx(NOON, store_id="c")) == []


def test_per_customer_limit_boundary() -> None:
    rules = OfferRules(per_customer_limit=3)
    for evaluate in (evaluate_claim, evaluate_redemption):
        assert evaluate(rules, ctx(NOON, customer_redemptions=2)) == []
        [v] = evaluate(rules, ctx(NOON, customer_redemptions=3))
        assert v.rule == "per_customer_limit"
        assert "limit 3 per customer" in v.reason


def test_stock_boundary_is_a_claim_rule() -> None:
    rules = OfferRules(total_stock=100)
    assert evaluate_claim(rules, ctx(NOON, issued_count=99)) == []
    [v] = evaluate_claim(rules, ctx(NOON, issued_count=100))
    assert v == Violation("stock", "sold out: 100 of 100 already issued")
    # The last issued code must still be redeemable.
    assert evaluate_redemption(rules, ctx(NOON, issued_count=100)) == []
    assert rules_of(evaluate_claim(OfferRules(total_stock=0), ctx(NOON))) == ["stock"]


def test_new_customers_only() -> None:
    rules = OfferRules(new_customers_only=True)
    for evaluate in (evaluate_claim, evaluate_redemption):
        assert evaluate(rules, ctx(NOON, customer_is_new=True)) == []
        assert rules_of(evaluate(rules, ctx(NOON, customer_is_new=False))) == ["new_customers_only"]


def test_min_spend() -> None:
    rules = OfferRules(min_spend=5_000)
    assert evaluate_redemption(rules, ctx(NOON, bill_amount=5_000)) == []
    [v] = evaluate_redemption(rules, ctx(NOON, bill_amount=4_999, currency="CNY"))
    assert v == Violation("min_spend", "minimum spend 50.00 CNY; the bill is 49.99 CNY")
    assert rules_of(evaluate_redemption(rules, ctx(NOON))) == ["min_spend"]  # no bill: fail closed
    assert evaluate_claim(rules, ctx(NOON, bill_amount=1)) == []


def test_all_violations_returned_together() -> None:
    rules = OfferRules(
        valid_from=START,
        valid_until=END,
        valid_days_after_claim=1,
        weekdays=frozenset({0}),
        time_windows=(LATE,),
        store_ids=frozenset({"a"}),
        per_customer_limit=1,
        total_stock=10,
        new_customers_only=True,
        min_spend=10_000,
    )
    attempt = ctx(
        utc(2026, 6, 5, 4, 0),  # Fri 12:00 Shanghai, after the end
        store_id="b",
        claimed_at=utc(2026, 5, 20),
        bill_amount=100,
        customer_redemptions=1,
        issued_count=10,
        customer_is_new=False,
    )
    assert rules_of(evaluate_redemption(rules, attempt)) == [
        "expired",
        "expired_after_claim",
        "weekday",
        "time_window",
        "store",
        "per_customer_limit",
        "new_customers_only",
        "min_spend",
    ]
    assert rules_of(evaluate_claim(rules, attempt)) == [
        "expired",
        "per_customer_limit",
        "stock",
        "new_customers_only",
    ]
    covered = {"stock", "not_started", "bill_amount"}  # not broken by this attempt
    assert set(rules_of(evaluate_redemption(rules, attempt))) | covered == set(RULE_NAMES)


def test_rule_validation() -> None:
    for bad in (
        {"weekdays": frozenset({7})},
        {"weekdays": frozenset()},
        {"store_ids": frozenset()},
        {"per_customer_limit": 0},
        {"total_stock": -1},
        {"min_spend": -1},
        {"valid_days_after_claim": 0},
    ):
        with pytest.raises(ValueError):
            OfferRules(**bad)  # type: ignore[arg-type]


# --- discount_for ----------------------------------------------------------------------


def test_amount_off() -> None:
    assert discount_for("amount_off", 10_000, amount_off=2_000) == 2_000
    assert discount_for("amount_off", 1_500, amount_off=2_000) == 1_500  # never above the bill
    assert discount_for("amount_off", 10_000, amount_off=2_000, cap=500) == 500


def test_percent_off_rounds_half_up_and_caps() -> None:
    assert discount_for("percent_off", 10_000, percent_off_bps=1_500) == 1_500
    assert discount_for("percent_off", 5, percent_off_bps=1_000) == 1  # 0.5 → 1
    assert discount_for("percent_off", 4, percent_off_bps=1_000) == 0  # 0.4 → 0
    assert discount_for("percent_off", 15, percent_off_bps=1_000) == 2  # 1.5 → 2
    assert discount_for("percent_off", 10_000, percent_off_bps=5_000, cap=3_000) == 3_000
    assert discount_for("percent_off", 10_000, percent_off_bps=10_000) == 10_000


def test_discount_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        discount_for("percent_off", 100, percent_off_bps=10_001)
    with pytest.raises(ValueError):
        discount_for("amount_off", 100, amount_off=-1)
    with pytest.raises(ValueError):
        discount_for("amount_off", -1, amount_off=1)
    with pytest.raises(ValueError):
        discount_for("amount_off", 100)
    with pytest.raises(ValueError):
        discount_for("percent_off", 100, amount_off=5, percent_off_bps=5)
    with pytest.raises(ValueError):
        discount_for("free_lunch", 100, amount_off=5)  # type: ignore[arg-type]


# --- properties ------------------------------------------------------------------------

ZONES = st.sampled_from(
    [SHANGHAI, BERLIN, NEW_YORK, "UTC", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"]
)
INSTANTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
)


@st.composite
def contexts(draw: st.DrawFn) -> RedemptionContext:
    return RedemptionContext(
        at=draw(INSTANTS),
        store_id=draw(st.text(min_size=1, max_size=8)),
        store_timezone=draw(ZONES),
        claimed_at=draw(st.none() | INSTANTS),
        bill_amount=draw(st.none() | st.integers(0, 10**9)),
        customer_redemptions=draw(st.integers(0, 10**6)),
        issued_count=draw(st.integers(0, 10**9)),
        customer_is_new=draw(st.booleans()),
    )


@given(contexts())
def test_unrestricted_rules_never_violate(c: RedemptionContext) -> None:
    assert evaluate_redemption(OfferRules(), c) == []
    assert evaluate_claim(OfferRules(), c) == []


@given(
    bill=st.integers(0, 10**12),
    amount=st.integers(0, 10**12),
    bps=st.integers(0, 10_000),
    cap=st.none() | st.integers(0, 10**12),
)
def test_discount_within_bill(bill: int, amount: int, bps: int, cap: int | None) -> None:
    for d in (
        discount_for("amount_off", bill, amount_off=amount, cap=cap),
        discount_for("percent_off", bill, percent_off_bps=bps, cap=cap),
    ):
        assert 0 <= d <= bill
        assert cap is None or d <= cap


@given(bill=st.integers(0, 10**12), bps=st.integers(0, 10_000))
def test_percent_off_is_exact_half_up(bill: int, bps: int) -> None:
    # Integer arithmetic only: the error is at most half a minor unit, and a half rounds up.
    error = discount_for("percent_off", bill, percent_off_bps=bps) * 10_000 - bill * bps
    assert -5_000 < error <= 5_000


@given(contexts(), st.times())
def test_full_day_window_never_violates(c: RedemptionContext, start: time) -> None:
    """Decision: start == end is 24 h from start; 00:00–00:00 is the whole day."""
    for window in (TimeWindow(time(0, 0), time(0, 0)), TimeWindow(start, start)):
        assert evaluate_redemption(OfferRules(time_windows=(window,)), c) == []


@given(contexts(), st.sampled_from(list(range(7))))
def test_midnight_window_owns_exactly_one_weekday(c: RedemptionContext, day: int) -> None:
    """00:00–00:00 on one weekday passes exactly on that store-local calendar day."""
    rules = OfferRules(weekdays=frozenset({day}), time_windows=(TimeWindow(time(0), time(0)),))
    ok = evaluate_redemption(rules, c) == []
    assert ok == (c.local.weekday() == day)
