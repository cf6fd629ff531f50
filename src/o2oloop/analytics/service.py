"""Customer analytics fed by SQL: fit, score, segment and materialise per merchant.

`analyze` reads one row per (merchant, member) aggregated by the database, fits BG/NBD and
Gamma-Gamma per merchant with NumPy/SciPy (the platform-wide fit stands in for merchants
with too few members), and replaces each merchant's rows in `member_scores`. Reads for the
API are plain, merchant-scoped queries over those rows; store load is computed on request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import numpy as np
import numpy.typing as npt
import polars as pl
from sqlalchemy import Float, case, cast, delete, extract, func, insert, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.analytics import segments as seg
from o2oloop.analytics.bgnbd import (
    BgNbdParams,
    expected_next_visit_days,
    expected_purchases,
    fit_bgnbd,
    probability_alive,
)
from o2oloop.analytics.gammagamma import (
    GammaGammaParams,
    conditional_expected_spend,
    customer_lifetime_value,
    fit_gammagamma,
)
from o2oloop.analytics.models import FittedModel, MemberScore, Segment, SpendingLevel
from o2oloop.analytics.rfm import rfm_scores
from o2oloop.analytics.schemas import MemberScoreRead
from o2oloop.auth.principal import Principal, require_merchant_admin, require_merchant_staff
from o2oloop.db import new_id
from o2oloop.errors import InvalidInput, NotFound
from o2oloop.merchants.hours import WEEKDAYS, capacity_at, is_open
from o2oloop.merchants.models import Merchant, Store
from o2oloop.pagination import paginate
from o2oloop.visits.models import Visit

FloatArray = npt.NDArray[np.float64]

# A merchant fits its own models from this many members (and repeat customers) upwards;
# below that its members are scored with the platform-wide models.
MIN_MEMBERS_TO_FIT = 200
MIN_REPEATERS_TO_FIT = 30
# Used only when even the whole platform has too little history to fit (a fresh install).
PRIOR_BGNBD = BgNbdParams(r=0.5, alpha=15.0, a=0.8, b=2.5, converged=False)
PRIOR_GG_SHAPE = (4.0, 3.0)  # (p, q); v is set so the mean spend is the observed one
CLV_HORIZON_DAYS = 365.0
CLV_DISCOUNT_RATE = 0.10
HOME_RESOLUTION = 7
DAY = 86_400.0
OFF_PEAK_UTILISATION = 0.3

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class Models:
    bgnbd: BgNbdParams
    gg: GammaGammaParams
    platform_fallback: bool
    customers: int


@dataclass(frozen=True, slots=True)
class AnalysisSummary:
    merchants: int
    members: int
    platform_fallbacks: int
    as_of: datetime
    seconds: float


# ---- reading visits ------------------------------------------------------------------------


def _epoch(session: Session, expression: Any) -> Any:
    """Seconds since 1970 of a UTC timestamp expression, as a float, on either backend."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(expression) - 2440587.5) * DAY
    return cast(extract("epoch", expression), Float)


def _day(session: Session, expression: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return func.date(expression)
    return func.date_trunc("day", func.timezone("UTC", expression))


def _member_frame(session: Session, *, merchant_id: str | None, as_of: datetime) -> pl.DataFrame:
    """One row per (merchant, member): visits, visit days, first/last visit, spend, coupons."""
    coupon = case(((Visit.code.is_not(None)) | (Visit.redemption_id.is_not(None)), 1), else_=0)
    query = (
        select(
            Visit.merchant_id,
            Visit.member_id,
            Visit.consumer_id,
            func.count().label("visits"),
            func.count(func.distinct(_day(session, Visit.occurred_at))).label("visit_days"),
            _epoch(session, func.min(Visit.occurred_at)).label("first"),
            _epoch(session, func.max(Visit.occurred_at)).label("last"),
            func.sum(Visit.amount).label("spent"),
            func.sum(coupon).label("coupon_visits"),
        )
        .where(Visit.member_id.is_not(None), Visit.occurred_at <= as_of)
        .group_by(Visit.merchant_id, Visit.member_id, Visit.consumer_id)
    )
    if merchant_id is not None:
        query = query.where(Visit.merchant_id == merchant_id)
    rows = session.execute(query).all()
    schema = {
        "merchant_id": pl.String,
        "member_id": pl.String,
        "consumer_id": pl.String,
        "visits": pl.Int64,
        "visit_days": pl.Int64,
        "first": pl.Float64,
        "last": pl.Float64,
        "spent": pl.Int64,
        "coupon_visits": pl.Int64,
    }
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    data = {
        name: [float(v) for v in col] if dtype == pl.Float64 else list(col)
        for (name, dtype), col in zip(schema.items(), columns, strict=True)
    }
    return pl.DataFrame(data, schema=schema)


def _home_cells(
    session: Session, *, merchant_id: str | None, as_of: datetime
) -> dict[str, str | None]:
    """member id → H3 cell (res 7) of the store the member visited most (ties: lowest id)."""
    query = (
        select(Visit.member_id, Visit.store_id, func.count().label("n"))
        .where(Visit.member_id.is_not(None), Visit.occurred_at <= as_of)
        .group_by(Visit.member_id, Visit.store_id)
    )
    if merchant_id is not None:
        query = query.where(Visit.merchant_id == merchant_id)
    rows = session.execute(query).all()
    if not rows:
        return {}
    member, store, count = zip(*rows, strict=True)
    frame = pl.DataFrame(
        {"member_id": list(member), "store_id": list(store), "n": list(count)},
        schema={"member_id": pl.String, "store_id": pl.String, "n": pl.Int64},
    )
    top = frame.sort(["member_id", "n", "store_id"], descending=[False, True, False]).unique(
        subset="member_id", keep="first", maintain_order=True
    )
    store_query = select(Store.id, Store.latitude, Store.longitude)
    if merchant_id is not None:
        store_query = store_query.where(Store.merchant_id == merchant_id)
    cells = {
        sid: h3.latlng_to_cell(lat, lng, HOME_RESOLUTION)
        for sid, lat, lng in session.execute(store_query).tuples()
    }
    return {m: cells.get(s) for m, s in zip(top["member_id"], top["store_id"], strict=True)}


@dataclass(frozen=True, slots=True)
class _History:
    """BG/NBD inputs in days, plus spend, for one population of members."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    m: FloatArray
    visits: FloatArray
    since: FloatArray
    last: FloatArray
    coupon_share: FloatArray


def _history(frame: pl.DataFrame, as_of_epoch: float) -> _History:
    visits = frame["visits"].to_numpy().astype(np.float64)
    days = frame["visit_days"].to_numpy().astype(np.float64)
    first = frame["first"].to_numpy()
    last = np.minimum(frame["last"].to_numpy(), as_of_epoch)
    x = np.maximum(days - 1.0, 0.0)
    T = np.maximum((as_of_epoch - first) / DAY, 0.0)
    t_x = np.where(x > 0, np.clip((last - first) / DAY, 1e-6, None), 0.0)
    t_x = np.minimum(t_x, T)
    # Visits on one day that straddle a clock tick can give t_x == T == 0 with x > 0.
    x = np.where(t_x > 0, x, 0.0)
    t_x = np.where(x > 0, t_x, 0.0)
    return _History(
        x=x,
        t_x=t_x,
        T=T,
        m=frame["spent"].to_numpy().astype(np.float64) / visits,
        visits=visits,
        since=np.maximum((as_of_epoch - last) / DAY, 0.0),
        last=last,
        coupon_share=frame["coupon_visits"].to_numpy().astype(np.float64) / visits,
    )


# ---- fitting ---------------------------------------------------------------------------


def _usable(params: BgNbdParams) -> bool:
    values = (params.r, params.alpha, params.a, params.b)
    return params.converged and all(math.isfinite(v) and v > 0 for v in values)


def _fit(h: _History) -> tuple[BgNbdParams | None, GammaGammaParams | None]:
    """Own models of a population, or None where it has too little history for one."""
    repeaters = int(np.count_nonzero(h.x))
    if h.x.size < MIN_MEMBERS_TO_FIT or repeaters < MIN_REPEATERS_TO_FIT:
        return None, None
    try:
        bg: BgNbdParams | None = fit_bgnbd(h.x, h.t_x, h.T)
    except (ValueError, FloatingPointError, ArithmeticError):
        bg = None
    if bg is not None and not _usable(bg):
        bg = None
    try:
        gg: GammaGammaParams | None = fit_gammagamma(h.x, h.m)
    except (ValueError, FloatingPointError, ArithmeticError):
        gg = None
    if gg is not None and not (gg.converged and gg.q > 1.0 and math.isfinite(gg.v)):
        gg = None
    return bg, gg


def _prior_gg(h: _History) -> GammaGammaParams:
    p, q = PRIOR_GG_SHAPE
    mean = float(np.mean(h.m)) if h.m.size else 1.0
    return GammaGammaParams(p=p, q=q, v=max(mean, 1.0) * (q - 1.0) / p, converged=False)


def _platform_models(h: _History) -> Models:
    bg, gg = _fit(h)
    return Models(
        bgnbd=bg or PRIOR_BGNBD,
        gg=gg or _prior_gg(h),
        platform_fallback=False,
        customers=int(h.x.size),
    )


def _stored_platform_models(session: Session) -> Models | None:
    row = session.scalar(
        select(FittedModel)
        .where(FittedModel.merchant_id.is_(None))
        .order_by(FittedModel.as_of.desc())
        .limit(1)
    )
    if row is None or row.gg_p is None or row.gg_q is None or row.gg_v is None:
        return None
    return Models(
        bgnbd=BgNbdParams(
            r=row.bgnbd_r,
            alpha=row.bgnbd_alpha,
            a=row.bgnbd_a,
            b=row.bgnbd_b,
            converged=row.bgnbd_converged,
        ),
        gg=GammaGammaParams(p=row.gg_p, q=row.gg_q, v=row.gg_v),
        platform_fallback=False,
        customers=row.customers,
    )


# ---- scoring ---------------------------------------------------------------------------


def _finite(values: FloatArray, fallback: FloatArray | float) -> FloatArray:
    return np.where(np.isfinite(values), values, fallback)


def score(h: _History, models: Models) -> dict[str, npt.NDArray[Any]]:
    """Every per-member figure from the history and the models (pure NumPy)."""
    bg, gg = models.bgnbd, models.gg
    p_alive = probability_alive(bg, h.x, h.t_x, h.T)
    expected_30 = expected_purchases(bg, 30.0, h.x, h.t_x, h.T)
    cycle = expected_next_visit_days(bg, h.x, h.t_x, h.T)
    spend = _finite(conditional_expected_spend(gg, h.x, h.m), h.m)
    clv = _finite(
        customer_lifetime_value(
            bg,
            gg,
            h.x,
            h.t_x,
            h.T,
            h.m,
            horizon_days=CLV_HORIZON_DAYS,
            discount_rate_annual=CLV_DISCOUNT_RATE,
        ),
        0.0,
    )
    r, f, m = rfm_scores(h.since, h.visits, h.m)
    codes = seg.segment_codes(
        visits=h.visits,
        days_since_last=h.since,
        age_days=h.T,
        p_alive=p_alive,
        buying_cycle_days=cycle,
        coupon_share=h.coupon_share,
        clv=clv,
        clv_threshold=seg.high_value_threshold(clv),
    )
    return {
        "p_alive": p_alive,
        "expected_30": expected_30,
        "cycle": cycle,
        "spend": spend,
        "clv": clv,
        "r": r,
        "f": f,
        "m": m,
        "segment": codes,
        "spending": seg.spending_codes(h.m),
    }


def _rows(
    frame: pl.DataFrame,
    h: _History,
    figures: dict[str, npt.NDArray[Any]],
    homes: dict[str, str | None],
    as_of: datetime,
    computed_at: datetime,
) -> list[dict[str, Any]]:
    next_epoch = h.last + figures["cycle"] * DAY
    spent = frame["spent"].to_list()
    rows = []
    for i, (merchant_id, member_id, consumer_id) in enumerate(
        zip(frame["merchant_id"], frame["member_id"], frame["consumer_id"], strict=True)
    ):
        cycle = float(figures["cycle"][i])
        next_at = (
            datetime.fromtimestamp(float(next_epoch[i]), UTC)
            if math.isfinite(cycle) and cycle < 3_650
            else None
        )
        r, f, m = int(figures["r"][i]), int(figures["f"][i]), int(figures["m"][i])
        rows.append(
            {
                "member_id": member_id,
                "merchant_id": merchant_id,
                "consumer_id": consumer_id,
                "as_of": as_of,
                "visits": int(h.visits[i]),
                "frequency": int(h.x[i]),
                "recency_days": float(h.t_x[i]),
                "age_days": float(h.T[i]),
                "days_since_last": float(h.since[i]),
                "total_spent": int(spent[i]),
                "average_spend": round(float(h.m[i])),
                "coupon_share": float(h.coupon_share[i]),
                "r_score": r,
                "f_score": f,
                "m_score": m,
                "rfm": f"{r}{f}{m}",
                "p_alive": float(figures["p_alive"][i]),
                "expected_visits_30d": float(figures["expected_30"][i]),
                "buying_cycle_days": cycle if math.isfinite(cycle) else None,
                "expected_next_visit_at": next_at,
                "expected_average_spend": round(float(figures["spend"][i])),
                "clv": round(float(figures["clv"][i])),
                "segment": seg.SEGMENT_ORDER[int(figures["segment"][i])],
                "spending_level": seg.SPENDING_ORDER[int(figures["spending"][i])],
                "home_cell": homes.get(member_id),
                "computed_at": computed_at,
            }
        )
    return rows


def _save_model(session: Session, merchant_id: str | None, models: Models, as_of: datetime) -> None:
    condition = (
        FittedModel.merchant_id.is_(None)
        if merchant_id is None
        else FittedModel.merchant_id == merchant_id
    )
    session.execute(delete(FittedModel).where(condition))
    session.add(
        FittedModel(
            id=new_id("fit"),
            merchant_id=merchant_id,
            as_of=as_of,
            customers=models.customers,
            platform_fallback=models.platform_fallback,
            bgnbd_r=models.bgnbd.r,
            bgnbd_alpha=models.bgnbd.alpha,
            bgnbd_a=models.bgnbd.a,
            bgnbd_b=models.bgnbd.b,
            bgnbd_converged=models.bgnbd.converged,
            gg_p=models.gg.p,
            gg_q=models.gg.q,
            gg_v=models.gg.v,
            computed_at=clock.now(),
        )
    )


def analyze(
    session: Session,
    *,
    merchant_id: str | None = None,
    as_of: datetime | None = None,
    progress: Progress | None = None,
) -> AnalysisSummary:
    """Fit, score and materialise every member of one merchant (or of all merchants).

    Replaces the merchant's rows in `member_scores` and its row in `fitted_models`; only
    flushes, the caller commits.
    """
    started = time.perf_counter()
    as_of = as_of or clock.now()
    if as_of.tzinfo is None:
        raise InvalidInput("as_of needs a timezone")
    as_of_epoch = as_of.timestamp()
    frame = _member_frame(session, merchant_id=merchant_id, as_of=as_of)
    homes = _home_cells(session, merchant_id=merchant_id, as_of=as_of)

    platform: Models | None = None
    if merchant_id is None:
        platform = _platform_models(_history(frame, as_of_epoch))
        _save_model(session, None, platform, as_of)

    parts = frame.partition_by("merchant_id", as_dict=True, maintain_order=True)
    if merchant_id is not None and not parts:
        parts = {(merchant_id,): frame}
    total, members, fallbacks = len(parts), 0, 0
    computed_at = clock.now()
    for done, (key, part) in enumerate(parts.items(), start=1):
        mid = str(key[0])
        session.execute(delete(MemberScore).where(MemberScore.merchant_id == mid))
        if part.height:
            h = _history(part, as_of_epoch)
            bg, gg = _fit(h)
            if bg is None or gg is None:
                if platform is None:
                    platform = _stored_platform_models(session) or _platform_models(
                        _history(_member_frame(session, merchant_id=None, as_of=as_of), as_of_epoch)
                    )
                fallbacks += 1
            models = Models(
                bgnbd=bg or platform.bgnbd,  # type: ignore[union-attr]
                gg=gg or platform.gg,  # type: ignore[union-attr]
                platform_fallback=bg is None or gg is None,
                customers=part.height,
            )
            figures = score(h, models)
            rows = _rows(part, h, figures, homes, as_of, computed_at)
            for start in range(0, len(rows), 10_000):
                session.execute(insert(MemberScore), rows[start : start + 10_000])
            _save_model(session, mid, models, as_of)
            members += part.height
        if progress is not None:
            progress(done, total, mid)
    session.flush()
    return AnalysisSummary(
        merchants=total,
        members=members,
        platform_fallbacks=fallbacks,
        as_of=as_of,
        seconds=time.perf_counter() - started,
    )


def run_for_merchant(
    session: Session, *, principal: Principal, merchant_id: str
) -> AnalysisSummary:
    """A merchant admin refreshes their own scores now."""
    require_merchant_admin(principal, merchant_id)
    if session.get(Merchant, merchant_id) is None:
        raise NotFound("no merchant with this id")
    return analyze(session, merchant_id=merchant_id)


# ---- reading scores ------------------------------------------------------------------------


def member_score(session: Session, *, member_id: str) -> MemberScoreRead | None:
    """The member's materialised score (the caller has checked the merchant)."""
    row = session.get(MemberScore, member_id)
    return MemberScoreRead.model_validate(row) if row is not None else None


def list_member_scores(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    segment: Segment | None = None,
    spending_level: SpendingLevel | None = None,
    min_clv: int | None = None,
    min_p_alive: float | None = None,
    max_p_alive: float | None = None,
    home_cell: str | None = None,
    next_visit_before: datetime | None = None,
    cursor: str | None,
    limit: int,
) -> tuple[list[MemberScore], str | None]:
    require_merchant_staff(principal, merchant_id)
    query = select(MemberScore).where(MemberScore.merchant_id == merchant_id)
    if segment is not None:
        query = query.where(MemberScore.segment == segment)
    if spending_level is not None:
        query = query.where(MemberScore.spending_level == spending_level)
    if min_clv is not None:
        query = query.where(MemberScore.clv >= min_clv)
    if min_p_alive is not None:
        query = query.where(MemberScore.p_alive >= min_p_alive)
    if max_p_alive is not None:
        query = query.where(MemberScore.p_alive <= max_p_alive)
    if home_cell is not None:
        query = query.where(MemberScore.home_cell == home_cell)
    if next_visit_before is not None:
        query = query.where(MemberScore.expected_next_visit_at < next_visit_before)
    return paginate(session, query, MemberScore.member_id, cursor=cursor, limit=limit)


def segment_sizes(
    session: Session, *, principal: Principal, merchant_id: str
) -> tuple[datetime | None, list[tuple[Segment, int, int, float]]]:
    """(as_of, [(segment, members, average CLV, average P(alive))]) for every segment."""
    require_merchant_staff(principal, merchant_id)
    rows = session.execute(
        select(
            MemberScore.segment,
            func.count(),
            func.avg(MemberScore.clv),
            func.avg(MemberScore.p_alive),
        )
        .where(MemberScore.merchant_id == merchant_id)
        .group_by(MemberScore.segment)
    ).all()
    as_of = session.scalar(
        select(func.max(MemberScore.as_of)).where(MemberScore.merchant_id == merchant_id)
    )
    found = {
        segment: (int(n), round(float(clv or 0)), float(p or 0)) for segment, n, clv, p in rows
    }
    sizes = [(s, *found.get(s, (0, 0, 0.0))) for s in seg.SEGMENT_ORDER]
    return as_of, sizes


# ---- store load ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    weekday: str
    hour: int
    open: bool
    capacity: int
    average_visits: float
    utilisation: float | None
    off_peak: bool


@dataclass(frozen=True, slots=True)
class Load:
    store: Store
    since: datetime
    until: datetime
    weeks: float
    visits: int
    slots: list[Slot]


def load_slots(
    local_times: list[datetime],
    *,
    weeks: float,
    opening_hours: dict[str, Any],
    capacity_per_hour: int,
    capacity_overrides: list[dict[str, Any]],
    off_peak_below: float = OFF_PEAK_UTILISATION,
) -> list[Slot]:
    """Average visits per weekday × hour against capacity; open slots under the threshold
    are off-peak. Pure: `local_times` are already in the store's timezone."""
    counts = np.zeros((7, 24), dtype=np.int64)
    if local_times:
        frame = pl.DataFrame({"at": local_times})
        grouped = frame.group_by(
            (pl.col("at").dt.weekday() - 1).alias("d"), pl.col("at").dt.hour().alias("h")
        ).len()
        for d, h, n in grouped.iter_rows():
            counts[int(d), int(h)] = int(n)
    reference_monday = datetime(2024, 1, 1)  # a Monday; only weekday and time matter
    slots = []
    for d, name in enumerate(WEEKDAYS):
        for hour in range(24):
            moment = reference_monday + timedelta(days=d, hours=hour, minutes=30)
            open_now = is_open(opening_hours, moment)
            capacity = capacity_at(capacity_per_hour, capacity_overrides, d, hour)
            average = counts[d, hour] / weeks
            utilisation = average / capacity if capacity > 0 else None
            slots.append(
                Slot(
                    weekday=name,
                    hour=hour,
                    open=open_now,
                    capacity=capacity,
                    average_visits=round(float(average), 3),
                    utilisation=round(utilisation, 4) if utilisation is not None else None,
                    off_peak=bool(
                        open_now and utilisation is not None and utilisation < off_peak_below
                    ),
                )
            )
    return slots


def store_load(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    store_id: str,
    weeks: int = 8,
    until: datetime | None = None,
) -> Load:
    """Visits per weekday × hour (store-local) over the last `weeks` weeks vs capacity."""
    from zoneinfo import ZoneInfo

    require_merchant_staff(principal, merchant_id)
    store = session.get(Store, store_id)
    if store is None or store.merchant_id != merchant_id:
        raise NotFound("no store with this id")
    end = until or clock.now()
    start = end - timedelta(weeks=weeks)
    zone = ZoneInfo(store.timezone)
    times = [
        at.astimezone(zone).replace(tzinfo=None)
        for at in session.scalars(
            select(Visit.occurred_at).where(
                Visit.store_id == store.id,
                Visit.merchant_id == merchant_id,
                Visit.occurred_at >= start,
                Visit.occurred_at < end,
            )
        )
    ]
    slots = load_slots(
        times,
        weeks=float(weeks),
        opening_hours=store.opening_hours,
        capacity_per_hour=store.capacity_per_hour,
        capacity_overrides=store.capacity_overrides,
    )
    return Load(
        store=store, since=start, until=end, weeks=float(weeks), visits=len(times), slots=slots
    )
