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
from sqlalchemy import Float, case, cast, delete, extract, func, insert, select, text
from sqlalchemy.orm import Session

from o2oloop import clock, events
from o2oloop.analytics import segments as seg
from o2oloop.analytics import summary
from o2oloop.analytics.bgnbd import (
    BgNbdParams,
    expected_next_visit_days,
    expected_purchases,
    fit_bgnbd,
    probability_alive,
)
from o2oloop.analytics.events import MembersScored, SegmentChanged
from o2oloop.analytics.gammagamma import (
    GammaGammaParams,
    conditional_expected_spend,
    fit_gammagamma,
)
from o2oloop.analytics.models import FittedModel, MemberScore, Segment, SpendingLevel
from o2oloop.analytics.rfm import rfm_scores
from o2oloop.analytics.schemas import MemberScoreRead
from o2oloop.auth.principal import (
    Principal,
    get_owned,
    require_merchant_admin,
    require_merchant_staff,
    require_platform,
)
from o2oloop.db import Database, new_id
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
FRAME_CHUNK = 100_000  # (member, store) rows read into the frame at a time
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


def _member_frame(session: Session, *, merchant_id: str | None, as_of: datetime) -> pl.DataFrame:
    """One row per (merchant, member) — visits, first/last visit, spend, coupon visits and
    home cell — from one aggregate scan of the visits.

    The database groups by (member, store); Polars folds the stores into the member and picks
    the store visited most (ties: lowest id) as home.
    """
    coupon = case(((Visit.code.is_not(None)) | (Visit.redemption_id.is_not(None)), 1), else_=0)
    query = (
        select(
            func.min(Visit.merchant_id),
            Visit.member_id,
            func.min(Visit.consumer_id),
            Visit.store_id,
            func.count().label("visits"),
            _epoch(session, func.min(Visit.occurred_at)).label("first"),
            _epoch(session, func.max(Visit.occurred_at)).label("last"),
            func.sum(Visit.amount).label("spent"),
            func.sum(coupon).label("coupon_visits"),
        )
        .where(Visit.member_id.is_not(None), Visit.occurred_at <= as_of)
        # A member belongs to one merchant and one consumer: grouping by (member, store) is
        # enough, and far cheaper for SQLite's sorter than grouping by all four.
        .group_by(Visit.member_id, Visit.store_id)
    )
    if merchant_id is not None:
        query = query.where(Visit.merchant_id == merchant_id)
    if session.get_bind().dialect.name == "postgresql":
        # Let the one big aggregate hash in memory instead of spilling to disk (this
        # transaction only).
        session.execute(text("SET LOCAL work_mem = '256MB'"))
    schema = {
        "merchant_id": pl.String,
        "member_id": pl.String,
        "consumer_id": pl.String,
        "store_id": pl.String,
        "visits": pl.Int64,
        "first": pl.Float64,
        "last": pl.Float64,
        "spent": pl.Int64,
        "coupon_visits": pl.Int64,
    }
    # Fetched a chunk at a time, each into columns at once: a million members' rows held as
    # Python objects all at once were most of the analysis's peak memory. Core execution, as
    # the ORM would fetch every row first; no server-side cursor, whose plan PostgreSQL
    # chooses for the first rows rather than for all of them.
    result = session.connection().execute(query)
    by_store = pl.concat(
        [
            pl.DataFrame(schema=schema),
            *(
                pl.DataFrame(rows, schema=schema, orient="row")
                for rows in result.partitions(FRAME_CHUNK)
            ),
        ]
    )
    store_query = select(Store.id, Store.latitude, Store.longitude)
    if merchant_id is not None:
        store_query = store_query.where(Store.merchant_id == merchant_id)
    cells = pl.DataFrame(
        [
            (sid, h3.latlng_to_cell(lat, lng, HOME_RESOLUTION))
            for sid, lat, lng in session.execute(store_query)
        ],
        schema={"store_id": pl.String, "home_cell": pl.String},
        orient="row",
    )
    home = (
        by_store.sort(["member_id", "visits", "store_id"], descending=[False, True, False])
        .unique(subset="member_id", keep="first")
        .join(cells, on="store_id", how="left")
        .select("member_id", "home_cell")
    )
    return (
        by_store.group_by("merchant_id", "member_id", "consumer_id")
        .agg(
            pl.col("visits").sum(),
            pl.col("first").min(),
            pl.col("last").max(),
            pl.col("spent").sum(),
            pl.col("coupon_visits").sum(),
        )
        .join(home, on="member_id", how="left")
        .sort("merchant_id", "member_id")
    )


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
    first = frame["first"].to_numpy()
    last = np.minimum(frame["last"].to_numpy(), as_of_epoch)
    # Every recorded visit counts; the first starts the member's clock (BG/NBD x = visits - 1).
    # Ages are whole days, as BG/NBD is usually fed: identical histories then coincide, so fits
    # and predictions run once per distinct (x, t_x, T) rather than once per member.
    x = np.maximum(visits - 1.0, 0.0)
    T = np.rint(np.maximum((as_of_epoch - first) / DAY, 0.0))
    t_x = np.where(x > 0, np.clip(np.rint((last - first) / DAY), 1.0, None), 0.0)
    T = np.maximum(T, t_x)
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


def _usable_gg(params: GammaGammaParams) -> bool:
    """Finite, interior and with a finite mean spend (q > 1).

    L-BFGS-B sometimes stops in its line search a hair from the optimum and reports no
    convergence; interior parameters are still the fit, so they are kept.
    """
    values = (params.p, params.q, params.v)
    interior = all(math.isfinite(v) and v > 0 and abs(math.log(v)) < 17.0 for v in values)
    return interior and params.q > 1.0


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
    if gg is not None and not _usable_gg(gg):
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


def _discounted_visits(
    bg: BgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """Expected visits over the CLV horizon, each month's discounted to today.

    Times the expected spend per visit this is the CLV of gammagamma.customer_lifetime_value
    (visits valued at the end of their 30-day step), computed here once per distinct history.
    """
    steps = math.ceil(CLV_HORIZON_DAYS / 30.0)
    ends = np.minimum(np.arange(1, steps + 1) * 30.0, CLV_HORIZON_DAYS)
    cumulative = expected_purchases(bg, ends[:, None], x[None, :], t_x[None, :], T[None, :])
    visits = np.diff(cumulative, axis=0, prepend=0.0)
    discount = (1.0 + CLV_DISCOUNT_RATE) ** (-ends / 365.0)
    return discount @ visits


def score(h: _History, models: Models) -> dict[str, npt.NDArray[Any]]:
    """Every per-member figure from the history and the models (pure NumPy)."""
    bg, gg = models.bgnbd, models.gg
    # BG/NBD figures depend on (x, t_x, T) only: compute them once per distinct history.
    histories = np.stack([h.x, h.t_x, h.T], axis=1)
    distinct, back = np.unique(histories, axis=0, return_inverse=True)
    back = back.reshape(-1)
    ux, ut, uT = distinct[:, 0], distinct[:, 1], distinct[:, 2]
    p_alive = probability_alive(bg, ux, ut, uT)[back]
    # Where the closed form's hypergeometric term breaks down numerically (extreme fitted
    # parameters), fall back to P(alive) times the posterior mean rate over the window.
    rate = (bg.r + ux) / (bg.alpha + uT)
    expected_30 = _finite(
        expected_purchases(bg, 30.0, ux, ut, uT), probability_alive(bg, ux, ut, uT) * rate * 30.0
    )[back]
    cycle = expected_next_visit_days(bg, ux, ut, uT)[back]
    spend = _finite(conditional_expected_spend(gg, h.x, h.m), h.m)
    clv = _finite(spend * _discounted_visits(bg, ux, ut, uT)[back], 0.0)
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


_SCORE_COLUMNS = (
    "member_id", "merchant_id", "consumer_id", "as_of", "visits", "frequency", "recency_days",
    "age_days", "days_since_last", "total_spent", "average_spend", "coupon_share", "r_score",
    "f_score", "m_score", "rfm", "p_alive", "expected_visits_30d", "buying_cycle_days",
    "expected_next_visit_at", "expected_average_spend", "clv", "segment", "spending_level",
    "home_cell", "computed_at",
)  # fmt: skip
_TIMES = ("as_of", "expected_next_visit_at", "computed_at")
# A predicted cycle beyond ten years is no prediction: stored as unknown.
_MAX_CYCLE_DAYS = 3_650.0


def _score_frame(
    frame: pl.DataFrame,
    h: _History,
    figures: dict[str, npt.NDArray[Any]],
    as_of: datetime,
    computed_at: datetime,
) -> pl.DataFrame:
    """The member_scores rows of one merchant, column by column (no per-row Python)."""
    cycle = figures["cycle"]
    known = np.isfinite(cycle) & (cycle < _MAX_CYCLE_DAYS)
    next_us = np.where(known, (h.last + np.where(known, cycle, 0.0) * DAY) * 1e6, 0.0)
    r, f, m = (figures[k].astype(np.int64) for k in ("r", "f", "m"))
    segment_names = np.array([s.value for s in seg.SEGMENT_ORDER])
    spending_names = np.array([s.value for s in seg.SPENDING_ORDER])
    out = pl.DataFrame(
        {
            "member_id": frame["member_id"],
            "merchant_id": frame["merchant_id"],
            "consumer_id": frame["consumer_id"],
            "visits": h.visits.astype(np.int64),
            "frequency": h.x.astype(np.int64),
            "recency_days": h.t_x,
            "age_days": h.T,
            "days_since_last": h.since,
            "total_spent": frame["spent"],
            "average_spend": np.rint(h.m).astype(np.int64),
            "coupon_share": h.coupon_share,
            "r_score": r,
            "f_score": f,
            "m_score": m,
            "p_alive": figures["p_alive"],
            "expected_visits_30d": figures["expected_30"],
            "buying_cycle_days": pl.Series(np.where(known, cycle, 0.0)),
            "next_us": next_us.astype(np.int64),
            "known": known,
            "expected_average_spend": np.rint(figures["spend"]).astype(np.int64),
            "clv": np.rint(figures["clv"]).astype(np.int64),
            "segment": segment_names[figures["segment"]],
            "spending_level": spending_names[figures["spending"]],
            "home_cell": frame["home_cell"],
        }
    )
    return out.with_columns(
        pl.lit(as_of).alias("as_of"),
        pl.lit(computed_at).alias("computed_at"),
        pl.format("{}{}{}", "r_score", "f_score", "m_score").alias("rfm"),
        pl.when("known").then(pl.col("buying_cycle_days")).alias("buying_cycle_days"),
        pl.when("known")
        .then(pl.from_epoch("next_us", time_unit="us").dt.replace_time_zone("UTC"))
        .alias("expected_next_visit_at"),
    ).select(_SCORE_COLUMNS)


def _write_scores(session: Session, scores: pl.DataFrame) -> None:
    """Bulk-insert score rows through the driver: executemany on SQLite, COPY on PostgreSQL.

    Times are written in the text form SQLAlchemy itself uses on each backend, so the ORM
    reads them back as it would its own.
    """
    if scores.height == 0:
        return
    dialect = session.get_bind().dialect.name
    pattern = "%Y-%m-%d %H:%M:%S%.6f" if dialect == "sqlite" else "%Y-%m-%d %H:%M:%S%.6f+00:00"
    rendered = scores.with_columns(
        pl.col(c).dt.convert_time_zone("UTC").dt.strftime(pattern) for c in _TIMES
    )
    raw = session.connection().connection.driver_connection
    names = ", ".join(_SCORE_COLUMNS)
    if dialect == "sqlite":
        marks = ", ".join("?" for _ in _SCORE_COLUMNS)
        raw.executemany(  # type: ignore[union-attr]
            f"INSERT INTO member_scores ({names}) VALUES ({marks})", rendered.iter_rows()
        )
        return
    if dialect == "postgresql":
        with (
            raw.cursor() as cursor,
            cursor.copy(  # type: ignore[union-attr]
                f"COPY member_scores ({names}) FROM STDIN WITH (FORMAT csv)"
            ) as copy,
        ):
            for start in range(0, rendered.height, 100_000):
                copy.write(rendered.slice(start, 100_000).write_csv(include_header=False))
        return
    session.execute(insert(MemberScore), rendered.to_dicts())  # pragma: no cover - other backends


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


def _segments_of(session: Session, merchant_id: str) -> dict[str, str]:
    query = select(MemberScore.member_id, MemberScore.segment).where(
        MemberScore.merchant_id == merchant_id
    )
    return {member_id: segment.value for member_id, segment in session.execute(query)}


def _record_changes(
    session: Session,
    merchant_id: str,
    before: dict[str, str],
    scores: pl.DataFrame,
    as_of: datetime,
) -> None:
    """One event per member whose segment changed, and one for the merchant's new scores."""
    changed = [
        SegmentChanged(merchant_id=merchant_id, member_id=member, before=old, after=new)
        for member, new in scores.select("member_id", "segment").iter_rows()
        if (old := before.get(member)) != new
    ]
    changed.append(MembersScored(merchant_id=merchant_id, members=scores.height, as_of=as_of))
    events.record_all(session, changed)


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
    as_of = as_of.astimezone(UTC)
    as_of_epoch = as_of.timestamp()
    frame = _member_frame(session, merchant_id=merchant_id, as_of=as_of)

    platform: Models | None = None
    if merchant_id is None:
        platform = _platform_models(_history(frame, as_of_epoch))
        _save_model(session, None, platform, as_of)

    parts = frame.partition_by("merchant_id", as_dict=True, maintain_order=True)
    if merchant_id is not None and not parts:
        parts = {(merchant_id,): frame}
    total, members, fallbacks = len(parts), 0, 0
    computed_at = clock.now().astimezone(UTC)
    for done, (key, part) in enumerate(parts.items(), start=1):
        mid = str(key[0])
        before = _segments_of(session, mid)
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
            session.flush()
            scores = _score_frame(part, h, figures, as_of, computed_at)
            _write_scores(session, scores)
            _save_model(session, mid, models, as_of)
            _record_changes(session, mid, before, scores, as_of)
            members += part.height
        session.flush()
        summary.refresh(session, mid)
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


# Members written per transaction by `analyze_in_batches`: on SQLite each batch holds the
# writers' turn, and a till waits behind at most one (250 scores: about 20 ms beside a
# million members' scores; 1,000 held it for about 100 ms).
SCORE_BATCH = 250


def analyze_in_batches(
    db: Database,
    *,
    merchant_id: str | None = None,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    batch: int = SCORE_BATCH,
) -> AnalysisSummary:
    """`analyze` for a live platform: never one long write transaction.

    Visits are read in a read-only transaction (on SQLite it waits for no writer, and no
    writer waits for it), models are fitted and members scored outside any transaction,
    and a merchant's scores are then replaced `batch` members per short transaction, so a
    till's redemption never waits behind more than one batch. Between batches a merchant's
    scores are part old, part new; each row is whole.
    """
    started = time.perf_counter()
    as_of = _aware_utc(as_of or clock.now())
    as_of_epoch = as_of.timestamp()
    with db.reading() as session:
        frame = _member_frame(session, merchant_id=merchant_id, as_of=as_of)
        stored_platform = _stored_platform_models(session)
    platform: Models | None = None
    if merchant_id is None:
        platform = _platform_models(_history(frame, as_of_epoch))
        with db.transaction() as session:
            _save_model(session, None, platform, as_of)
    parts = frame.partition_by("merchant_id", as_dict=True, maintain_order=True)
    if merchant_id is not None and not parts:
        parts = {(merchant_id,): frame}
    total, members, fallbacks = len(parts), 0, 0
    computed_at = clock.now().astimezone(UTC)
    for done, (key, part) in enumerate(parts.items(), start=1):
        mid = str(key[0])
        models = None
        stale = _stale_members(db, mid, part)
        if part.height:
            h = _history(part, as_of_epoch)
            bg, gg = _fit(h)
            if bg is None or gg is None:
                if platform is None:
                    platform = stored_platform or _platform_models(
                        _history(_all_members(db, as_of), as_of_epoch)
                    )
                fallbacks += 1
            models = Models(
                bgnbd=bg or platform.bgnbd,  # type: ignore[union-attr]
                gg=gg or platform.gg,  # type: ignore[union-attr]
                platform_fallback=bg is None or gg is None,
                customers=part.height,
            )
            scores = _score_frame(part, h, score(h, models), as_of, computed_at)
            for start in range(0, scores.height, batch):
                _replace_scores(db, mid, scores.slice(start, batch), as_of)
            members += part.height
        with db.transaction() as session:
            # Members no longer there (erased, say) keep no score of an earlier run.
            for start in range(0, len(stale), batch):
                session.execute(
                    delete(MemberScore)
                    .where(
                        MemberScore.member_id.in_(stale[start : start + batch]),
                        MemberScore.computed_at < computed_at,
                    )
                    .execution_options(synchronize_session=False)
                )
            summary.refresh(session, mid)
            if models is not None:
                _save_model(session, mid, models, as_of)
                events.record(
                    session, MembersScored(merchant_id=mid, members=part.height, as_of=as_of)
                )
        if progress is not None:
            progress(done, total, mid)
    return AnalysisSummary(
        merchants=total,
        members=members,
        platform_fallbacks=fallbacks,
        as_of=as_of,
        seconds=time.perf_counter() - started,
    )


def _aware_utc(as_of: datetime) -> datetime:
    if as_of.tzinfo is None:
        raise InvalidInput("as_of needs a timezone")
    return as_of.astimezone(UTC)


def _all_members(db: Database, as_of: datetime) -> pl.DataFrame:
    with db.reading() as session:
        return _member_frame(session, merchant_id=None, as_of=as_of)


def _stale_members(db: Database, merchant_id: str, part: pl.DataFrame) -> list[str]:
    """The merchant's scored members that this run will not score again, found in a read:
    looking them up inside the final write transaction held the writers' turn for a walk
    over all of the merchant's scores (60 ms at 10,000 members)."""
    with db.reading() as session:
        stored = session.scalars(
            select(MemberScore.member_id).where(MemberScore.merchant_id == merchant_id)
        ).all()
    return sorted(set(stored) - set(part.get_column("member_id").to_list()))


def _replace_scores(db: Database, merchant_id: str, scores: pl.DataFrame, as_of: datetime) -> None:
    """One short transaction: these members' scores replaced, their segment changes recorded."""
    ids = scores.get_column("member_id").to_list()
    with db.transaction() as session:
        # The rows' old segments come back from the DELETE itself: one statement, not two,
        # while this transaction holds the writers' turn.
        before = dict(
            session.execute(
                delete(MemberScore)
                .where(MemberScore.member_id.in_(ids))
                .returning(MemberScore.member_id, MemberScore.segment)
                .execution_options(synchronize_session=False)
            ).all()
        )
        _write_scores(session, scores)
        events.record_all(
            session,
            [
                SegmentChanged(merchant_id=merchant_id, member_id=member, before=old, after=new)
                for member, new in scores.select("member_id", "segment").iter_rows()
                if (old := _value(before.get(member))) != new
            ],
        )


def _value(segment: Segment | None) -> str | None:
    return None if segment is None else segment.value


def run_for_merchant(
    session: Session, *, principal: Principal, merchant_id: str
) -> AnalysisSummary:
    """A merchant admin refreshes their own scores now, in the caller's transaction."""
    require_merchant_admin(principal, merchant_id)
    if session.get(Merchant, merchant_id) is None:
        raise NotFound("no merchant with this id")
    return analyze(session, merchant_id=merchant_id)


def refresh_merchant(db: Database, *, principal: Principal, merchant_id: str) -> AnalysisSummary:
    """A merchant admin refreshes their own scores now, in short transactions."""
    require_merchant_admin(principal, merchant_id)
    with db.reading() as session:
        if session.get(Merchant, merchant_id) is None:
            raise NotFound("no merchant with this id")
    return analyze_in_batches(db, merchant_id=merchant_id)


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
    session: Session, *, principal: Principal, merchant_id: str | None
) -> tuple[datetime | None, list[summary.SegmentSize], FittedModel | None]:
    """(as_of, [(segment, members, average CLV, average P(alive))], model) for every segment,
    of one merchant or (platform admins, merchant_id None) of the whole platform."""
    if merchant_id is None:
        require_platform(principal)
        model_scope: Any = FittedModel.merchant_id.is_(None)
    else:
        require_merchant_staff(principal, merchant_id)
        model_scope = FittedModel.merchant_id == merchant_id
    as_of, sizes = summary.segment_sizes(session, merchant_id)
    model = session.scalar(
        select(FittedModel).where(model_scope).order_by(FittedModel.as_of.desc()).limit(1)
    )
    return as_of, sizes, model


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
    return slots_from_counts(
        counts,
        weeks=weeks,
        opening_hours=opening_hours,
        capacity_per_hour=capacity_per_hour,
        capacity_overrides=capacity_overrides,
        off_peak_below=off_peak_below,
    )


def slots_from_counts(
    counts: npt.NDArray[np.int64],
    *,
    weeks: float,
    opening_hours: dict[str, Any],
    capacity_per_hour: int,
    capacity_overrides: list[dict[str, Any]],
    off_peak_below: float = OFF_PEAK_UTILISATION,
) -> list[Slot]:
    """`load_slots` from visits already counted per (weekday 0 = Monday, hour): for callers
    that count in SQL rather than fetch every visit."""
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
    store = get_owned(session, Store, store_id, merchant_id=merchant_id, what="store")
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
