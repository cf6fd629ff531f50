"""Offer rules as a pure function: given the rules and the moment, say every rule broken.

Nothing here touches the database or the clock. The service layer gathers the facts
(counts, whether the customer is new, the store's timezone) into a `RedemptionContext`;
this module decides. Returning *every* violation, not the first, lets the merchant's log
say all that was wrong at once, while the outside world still gets one uniform answer.

Conventions:
- Instants are timezone-aware and compared in UTC; `valid_from` is inclusive and
  `valid_until` exclusive, so consecutive offers can share a boundary without overlap.
- Weekdays and time windows are store-local: the UTC instant is converted with `zoneinfo`,
  so DST shifts move the window with the wall clock, as the merchant means it.
- Amounts are integer minor units, as everywhere in o2oloop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from o2oloop.money import Money

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Stable rule names: logs, metrics and tests key on these, so never rename them.
NOT_STARTED = "not_started"
EXPIRED = "expired"
EXPIRED_AFTER_CLAIM = "expired_after_claim"
WEEKDAY = "weekday"
TIME_WINDOW = "time_window"
STORE = "store"
PER_CUSTOMER_LIMIT = "per_customer_limit"
STOCK = "stock"
NEW_CUSTOMERS_ONLY = "new_customers_only"
MIN_SPEND = "min_spend"
BILL_AMOUNT = "bill_amount"
RULE_NAMES = (
    NOT_STARTED,
    EXPIRED,
    EXPIRED_AFTER_CLAIM,
    WEEKDAY,
    TIME_WINDOW,
    STORE,
    PER_CUSTOMER_LIMIT,
    STOCK,
    NEW_CUSTOMERS_ONLY,
    MIN_SPEND,
    BILL_AMOUNT,
)

DiscountKind = Literal["amount_off", "percent_off"]


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")


def _require_min(name: str, value: int | None, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}")


def _hhmm(t: time) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A store-local time of day range, start inclusive, end exclusive.

    `end <= start` runs past midnight (22:00–02:00), matching opening hours. `end == start`
    is therefore a full 24 hours from `start` (00:00–00:00 is the whole day): a zero-length
    window would be useless, and this keeps "end <= start" one rule. A window belongs to the
    weekday it starts on, so "Fridays 22:00–02:00" covers Saturday 01:00.
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("time windows are store-local: pass naive times")

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def started_on(self, local: datetime) -> int | None:
        """The weekday (0=Mon) of the occurrence containing `local`, or None if outside."""
        t = local.time()
        if not self.crosses_midnight:
            return local.weekday() if self.start <= t < self.end else None
        if t >= self.start:
            return local.weekday()
        if t < self.end:
            return (local.weekday() - 1) % 7
        return None

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}–{_hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class OfferRules:
    """What an offer allows. Every field defaults to "no restriction"."""

    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days_after_claim: int | None = None
    weekdays: frozenset[int] | None = None
    time_windows: tuple[TimeWindow, ...] = ()
    store_ids: frozenset[str] | None = None
    per_customer_limit: int | None = None
    total_stock: int | None = None
    new_customers_only: bool = False
    min_spend: int | None = None
    bill_required: bool = False  # a percent-off coupon: no bill, nothing to take a share of

    def __post_init__(self) -> None:
        _require_aware("valid_from", self.valid_from)
        _require_aware("valid_until", self.valid_until)
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until <= self.valid_from
        ):
            raise ValueError("valid_until must be after valid_from")
        _require_min("valid_days_after_claim", self.valid_days_after_claim, 1)
        _require_min("per_customer_limit", self.per_customer_limit, 1)
        _require_min("total_stock", self.total_stock, 0)
        _require_min("min_spend", self.min_spend, 0)
        if self.weekdays is not None and not self.weekdays <= frozenset(range(7)):
            raise ValueError("weekdays are 0 (Mon) … 6 (Sun)")
        if self.weekdays is not None and not self.weekdays:
            raise ValueError("an empty weekday set would never be valid; use None for any day")
        if self.store_ids is not None and not self.store_ids:
            raise ValueError("an empty store set would never be valid; use None for all stores")


@dataclass(frozen=True, slots=True)
class RedemptionContext:
    """The facts about one claim or redemption attempt, gathered by the service layer.

    `customer_redemptions` counts this customer's earlier claims (at claim time) or earlier
    redemptions (at redemption time) of this offer, not counting the current attempt.
    `issued_count` is how many codes of the offer exist already. `currency`, if given,
    only makes money in reasons readable ("50.00 CNY" rather than "5000").
    `code_expires_at` is the expiry stored with the code (or its batch) when it was issued.
    """

    at: datetime
    store_id: str
    store_timezone: str
    claimed_at: datetime | None = None
    code_expires_at: datetime | None = None
    bill_amount: int | None = None
    customer_redemptions: int = 0
    issued_count: int = 0
    customer_is_new: bool = False
    currency: str | None = None
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _require_aware("at", self.at)
        _require_aware("claimed_at", self.claimed_at)
        _require_aware("code_expires_at", self.code_expires_at)
        _require_min("bill_amount", self.bill_amount, 0)
        _require_min("customer_redemptions", self.customer_redemptions, 0)
        _require_min("issued_count", self.issued_count, 0)
        try:
            zone = ZoneInfo(self.store_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.store_timezone!r}") from exc
        object.__setattr__(self, "_zone", zone)

    @property
    def local(self) -> datetime:
        """The attempt's moment on the store's wall clock (DST-correct)."""
        return self.at.astimezone(self._zone)

    def local_str(self, instant: datetime) -> str:
        return f"{instant.astimezone(self._zone):%Y-%m-%d %H:%M} {self.store_timezone}"

    def money_str(self, amount: int) -> str:
        return Money(amount, self.currency).format() if self.currency else f"{amount}"


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: a stable `rule` name for code, a `reason` for the merchant."""

    rule: str
    reason: str


def code_expires_at(rules: OfferRules, claimed_at: datetime) -> datetime | None:
    """When a code claimed at `claimed_at` stops working: the earlier of the offer's end
    and `valid_days_after_claim` × 24 h after the claim; None if neither limits it.

    Days are exact 24-hour spans in UTC, so the expiry is the same instant everywhere and
    does not depend on DST in the store's zone.
    """
    _require_aware("claimed_at", claimed_at)
    candidates = []
    if rules.valid_until is not None:
        candidates.append(rules.valid_until)
    if rules.valid_days_after_claim is not None:
        candidates.append(claimed_at + timedelta(days=rules.valid_days_after_claim))
    return min(candidates) if candidates else None


def code_expired(expires_at: datetime | None, at: datetime) -> bool:
    """Whether a code with this stored expiry no longer works at `at` (expiry exclusive)."""
    return expires_at is not None and at >= expires_at


def _days(days: Iterable[int]) -> str:
    return ", ".join(DAY_NAMES[d] for d in sorted(days))


def _dates(rules: OfferRules, ctx: RedemptionContext) -> list[Violation]:
    out = []
    if rules.valid_from is not None and ctx.at < rules.valid_from:
        out.append(Violation(NOT_STARTED, f"offer starts {ctx.local_str(rules.valid_from)}"))
    if rules.valid_until is not None and ctx.at >= rules.valid_until:
        out.append(Violation(EXPIRED, f"offer ended {ctx.local_str(rules.valid_until)}"))
    return out


def _after_claim(rules: OfferRules, ctx: RedemptionContext) -> list[Violation]:
    # Without a claim time (e.g. a bulk-issued code) there is nothing to count from.
    if rules.valid_days_after_claim is None or ctx.claimed_at is None:
        return []
    deadline = ctx.claimed_at + timedelta(days=rules.valid_days_after_claim)
    if ctx.at < deadline:
        return []
    n = rules.valid_days_after_claim
    return [
        Violation(
            EXPIRED_AFTER_CLAIM,
            f"valid {n} day{'s' if n != 1 else ''} after claim; claimed "
            f"{ctx.local_str(ctx.claimed_at)}, expired {ctx.local_str(deadline)}",
        )
    ]


def _when(rules: OfferRules, ctx: RedemptionContext) -> list[Violation]:
    """Weekday and time-window rules on the store's wall clock.

    With time windows, the weekday that counts is the day the containing window started
    (Friday's 22:00–02:00 owns Saturday 01:00); outside every window it is the calendar day.
    """
    local = ctx.local
    now = f"{DAY_NAMES[local.weekday()]} {local:%H:%M} in {ctx.store_timezone}"
    out = []
    days = {local.weekday()}
    if rules.time_windows:
        started = {day for w in rules.time_windows if (day := w.started_on(local)) is not None}
        if started:
            days = started
        else:
            windows = ", ".join(str(w) for w in rules.time_windows)
            out.append(
                Violation(
                    TIME_WINDOW,
                    f"valid only {windows} store time; it is {local:%H:%M} in {ctx.store_timezone}",
                )
            )
    if rules.weekdays is not None and not days & rules.weekdays:
        reason = f"valid only on {_days(rules.weekdays)}; it is {now}"
        if days != {local.weekday()}:
            reason += f", inside the time window that started on {_days(days)}"
        # Put the weekday before the time window: the coarser rule reads first.
        out.insert(0, Violation(WEEKDAY, reason))
    return out


def _store(rules: OfferRules, ctx: RedemptionContext) -> list[Violation]:
    if rules.store_ids is None or ctx.store_id in rules.store_ids:
        return []
    allowed = sorted(rules.store_ids)
    shown = ", ".join(allowed[:3]) + (f" and {len(allowed) - 3} more" if len(allowed) > 3 else "")
    return [Violation(STORE, f"not valid at store {ctx.store_id}; valid only at {shown}")]


def _per_customer(rules: OfferRules, ctx: RedemptionContext, verb: str) -> list[Violation]:
    limit = rules.per_customer_limit
    if limit is None or ctx.customer_redemptions < limit:
        return []
    return [
        Violation(
            PER_CUSTOMER_LIMIT,
            f"limit {limit} per customer; this customer already {verb} {ctx.customer_redemptions}",
        )
    ]


def _stock(rules: OfferRules, ctx: RedemptionContext) -> list[Violation]:
    if rules.total_stock is None or ctx.issued_count < rules.total_stock:
        return []
    return [Violation(STOCK, f"sold out: {ctx.issued_count} of {rules.total_stock} already issued")]


def _new_only(rules: OfferRules, ctx: RedemptionContext) -> list[Violation]:
    if not rules.new_customers_only or ctx.customer_is_new:
        return []
    return [
        Violation(NEW_CUSTOMERS_ONLY, "for new customers only; this customer has visited before")
    ]


def _min_spend(rules: OfferRules, ctx: RedemptionContext) -> list[Violation]:
    if rules.min_spend is None or rules.min_spend == 0:
        return []
    need = ctx.money_str(rules.min_spend)
    if ctx.bill_amount is None:
        # Fail closed: a minimum that cannot be checked is not met.
        return [Violation(MIN_SPEND, f"minimum spend {need}; no bill amount was given")]
    if ctx.bill_amount >= rules.min_spend:
        return []
    return [
        Violation(MIN_SPEND, f"minimum spend {need}; the bill is {ctx.money_str(ctx.bill_amount)}")
    ]


def _code(ctx: RedemptionContext) -> list[Violation]:
    if not code_expired(ctx.code_expires_at, ctx.at):
        return []
    return [Violation(EXPIRED, "this code has expired")]


def _bill(rules: OfferRules, ctx: RedemptionContext, min_spend: list[Violation]) -> list[Violation]:
    # A missing bill already reported by the minimum spend is not reported twice.
    if not rules.bill_required or ctx.bill_amount is not None or min_spend:
        return []
    return [Violation(BILL_AMOUNT, "a percent-off coupon needs the bill amount")]


def evaluate_claim(rules: OfferRules, ctx: RedemptionContext) -> list[Violation]:
    """Every rule broken by claiming (or buying) one code now.

    Only who-and-when-may-take rules apply: dates, per-customer limit, stock and new
    customers only. Store, time of day and minimum spend are about the visit, checked at
    redemption. `ctx.customer_redemptions` counts this customer's earlier claims.
    """
    return [
        *_dates(rules, ctx),
        *_per_customer(rules, ctx, "claimed"),
        *_stock(rules, ctx),
        *_new_only(rules, ctx),
    ]


def evaluate_redemption(rules: OfferRules, ctx: RedemptionContext) -> list[Violation]:
    """Every rule broken by redeeming a code at this store, now, for this bill.

    Stock is deliberately not checked: it limits issuance, and the code being redeemed is
    already counted in `issued_count`, so checking it here would reject the last unit (or
    every bulk-issued code). The per-customer limit is checked against earlier redemptions,
    so one customer cannot use more codes than allowed however they got them. A direct use
    with no code yet issued should call `evaluate_claim` as well.
    """
    min_spend = _min_spend(rules, ctx)
    return [
        *_dates(rules, ctx),
        *_after_claim(rules, ctx),
        *_when(rules, ctx),
        *_store(rules, ctx),
        *_per_customer(rules, ctx, "redeemed"),
        *_new_only(rules, ctx),
        *min_spend,
        *_code(ctx),
        *_bill(rules, ctx, min_spend),
    ]


def discount_for(
    kind: DiscountKind,
    bill_amount: int,
    amount_off: int | None = None,
    percent_off_bps: int | None = None,
    cap: int | None = None,
) -> int:
    """A coupon's discount on a bill, in minor units, always within [0, bill_amount].

    Percent off is in basis points (1500 = 15 %) and rounds half up to the minor unit, the
    same rounding as commission shares; `cap` bounds either kind. Inputs that cannot be
    right (negative amounts, more than 100 %) raise rather than being clamped silently.
    """
    _require_min("bill_amount", bill_amount, 0)
    _require_min("cap", cap, 0)
    if kind == "amount_off":
        if amount_off is None or percent_off_bps is not None:
            raise ValueError("amount_off coupons need amount_off and no percent_off_bps")
        _require_min("amount_off", amount_off, 0)
        discount = amount_off
    elif kind == "percent_off":
        if percent_off_bps is None or amount_off is not None:
            raise ValueError("percent_off coupons need percent_off_bps and no amount_off")
        _require_min("percent_off_bps", percent_off_bps, 0)
        if percent_off_bps > 10_000:
            raise ValueError("percent_off_bps must be <= 10000")
        discount = (bill_amount * percent_off_bps + 5_000) // 10_000
    else:
        raise ValueError(f"unknown discount kind {kind!r}")
    if cap is not None:
        discount = min(discount, cap)
    return max(0, min(discount, bill_amount))


@dataclass(frozen=True, slots=True)
class Reward:
    """What the cashier gives for an offer: a coupon's discount, or a prepaid set."""

    discount_kind: DiscountKind | None = None  # a coupon's
    amount_off: int | None = None
    percent_off_bps: int | None = None
    cap: int | None = None
    set_name: str | None = None  # a voucher's set: what the cashier hands over …
    set_worth: int = 0  # … and what it is worth


def discount_at_counter(reward: Reward, bill_amount: int | None) -> int:
    """The discount a redemption records: a coupon's share of the bill (its amount off when
    no bill is given), a voucher's whole worth, nothing for other offers."""
    if reward.set_name is not None:
        return reward.set_worth
    if reward.discount_kind is None:
        return 0
    if bill_amount is None:
        return reward.amount_off or 0
    return discount_for(
        reward.discount_kind,
        bill_amount,
        amount_off=reward.amount_off,
        percent_off_bps=reward.percent_off_bps,
        cap=reward.cap,
    )


def benefit(reward: Reward, discount_amount: int) -> str:
    """What the cashier gives, in words."""
    if reward.set_name is not None:
        return f"give the set: {reward.set_name}"
    if reward.discount_kind == "percent_off":
        return f"{(reward.percent_off_bps or 0) / 100:g}% off"
    return f"{discount_amount} off"
