"""Segments with written definitions: a pure function of each member's features.

Every member gets exactly one segment: the first definition below that holds, in this order.

1. **lapsed** — probably gone: P(alive) < 0.2, or no visit for more than
   max(90 days, 3 × their own buying cycle).
2. **new** — first visit within the last 30 days.
3. **coupon_only** — at least two visits, and every one of them used a code.
4. **at_risk** — slipping: P(alive) < 0.6, or no visit for more than
   max(30 days, 1.5 × their own buying cycle).
5. **high_value** — at least three visits and a lifetime value (CLV) in the merchant's
   top 20 % (and above zero).
6. **regular** — at least three visits, still active.
7. **occasional** — everyone else (one or two visits, still active, ordinary value).

Spending level: a member's average spend per visit ranked among the merchant's members
(mid-rank, so ties share a level) — bottom third **low**, middle third **medium**, top third
**high**.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from o2oloop.analytics.models import Segment, SpendingLevel

LAPSED_P_ALIVE = 0.2
LAPSED_MIN_DAYS = 90.0
LAPSED_CYCLES = 3.0
NEW_DAYS = 30.0
AT_RISK_P_ALIVE = 0.6
AT_RISK_MIN_DAYS = 30.0
AT_RISK_CYCLES = 1.5
REGULAR_VISITS = 3
HIGH_VALUE_TOP_SHARE = 0.2

# Stable order of the codes `segment_codes` returns.
SEGMENT_ORDER: tuple[Segment, ...] = (
    Segment.LAPSED,
    Segment.NEW,
    Segment.COUPON_ONLY,
    Segment.AT_RISK,
    Segment.HIGH_VALUE,
    Segment.REGULAR,
    Segment.OCCASIONAL,
)
SPENDING_ORDER: tuple[SpendingLevel, ...] = (
    SpendingLevel.LOW,
    SpendingLevel.MEDIUM,
    SpendingLevel.HIGH,
)

FloatLike = npt.ArrayLike


def high_value_threshold(clv: FloatLike) -> float:
    """The CLV at the start of the merchant's top 20 % (inf with no members)."""
    values = np.asarray(clv, dtype=np.float64)
    if values.size == 0:
        return float("inf")
    return float(np.quantile(values, 1.0 - HIGH_VALUE_TOP_SHARE))


def segment_codes(
    *,
    visits: FloatLike,
    days_since_last: FloatLike,
    age_days: FloatLike,
    p_alive: FloatLike,
    buying_cycle_days: FloatLike,
    coupon_share: FloatLike,
    clv: FloatLike,
    clv_threshold: float,
) -> npt.NDArray[np.int64]:
    """Index into SEGMENT_ORDER for each member (vectorised; all arrays the same length)."""
    n = np.asarray(visits, dtype=np.float64)
    since = np.asarray(days_since_last, dtype=np.float64)
    age = np.asarray(age_days, dtype=np.float64)
    alive = np.asarray(p_alive, dtype=np.float64)
    cycle = np.nan_to_num(np.asarray(buying_cycle_days, dtype=np.float64), nan=0.0, posinf=0.0)
    coupons = np.asarray(coupon_share, dtype=np.float64)
    value = np.asarray(clv, dtype=np.float64)

    lapsed = (alive < LAPSED_P_ALIVE) | (since > np.maximum(LAPSED_MIN_DAYS, LAPSED_CYCLES * cycle))
    new = age <= NEW_DAYS
    coupon_only = (n >= 2) & (coupons >= 1.0)
    at_risk = (alive < AT_RISK_P_ALIVE) | (
        since > np.maximum(AT_RISK_MIN_DAYS, AT_RISK_CYCLES * cycle)
    )
    high_value = (n >= REGULAR_VISITS) & (value > 0) & (value >= clv_threshold)
    regular = n >= REGULAR_VISITS
    conditions = [lapsed, new, coupon_only, at_risk, high_value, regular]
    codes = np.select(conditions, list(range(len(conditions))), default=len(conditions))
    return codes.astype(np.int64)


def segments(**features: FloatLike | float) -> list[Segment]:
    """The segment of each member, by the definitions in this module's docstring."""
    return [SEGMENT_ORDER[i] for i in segment_codes(**features)]  # type: ignore[arg-type]


def spending_codes(average_spend: FloatLike) -> npt.NDArray[np.int64]:
    """Index into SPENDING_ORDER: terciles of average spend within one merchant's members."""
    spend = np.asarray(average_spend, dtype=np.float64)
    if spend.size == 0:
        return np.zeros(0, dtype=np.int64)
    # Mid-rank, so ties share a level and a lone member or all-equal spends are "medium".
    ordered = np.sort(spend)
    below = np.searchsorted(ordered, spend, side="left")
    not_above = np.searchsorted(ordered, spend, side="right")
    mid_rank = (below + not_above) / (2.0 * spend.size)
    codes = np.where(mid_rank > 2 / 3, 2, np.where(mid_rank >= 1 / 3, 1, 0))
    return codes.astype(np.int64)
