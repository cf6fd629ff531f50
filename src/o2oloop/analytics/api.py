"""Routes for merchants' customer analytics: scored members, segment sizes, store load."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from o2oloop.analytics import schemas, service
from o2oloop.analytics.models import FittedModel, Segment, SpendingLevel
from o2oloop.analytics.summary import SegmentSize
from o2oloop.db import answer_not_bound
from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, Reading, problems
from o2oloop.pagination import Page
from o2oloop.validation import Instant

router = APIRouter(
    prefix="/v1/merchants/{merchant_id}",
    tags=["analytics"],
    responses=problems(401, 403, 404, 422),
)

platform_router = APIRouter(
    prefix="/v1/analytics", tags=["analytics"], responses=problems(401, 403, 422)
)

Probability = Annotated[float | None, Query(ge=0, le=1)]


@router.get("/analytics/members")
def list_scored_members(
    merchant_id: str,
    session: Reading,
    caller: Caller,
    segment: Segment | None = None,
    spending_level: SpendingLevel | None = None,
    min_clv: Annotated[int | None, Query(ge=0, le=10**12)] = None,
    min_p_alive: Probability = None,
    max_p_alive: Probability = None,
    home_cell: Annotated[str | None, Query(max_length=16)] = None,
    next_visit_before: Annotated[
        Instant | None, Query(description="Expected next visit before this time")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.MemberScoreRead]:
    """Members with segment, CLV, P(alive) and expected next visit, as of the last analysis."""
    rows, next_cursor = service.list_member_scores(
        session,
        principal=caller,
        merchant_id=merchant_id,
        segment=segment,
        spending_level=spending_level,
        min_clv=min_clv,
        min_p_alive=min_p_alive,
        max_p_alive=max_p_alive,
        home_cell=home_cell,
        next_visit_before=next_visit_before,
        cursor=cursor,
        limit=limit,
    )
    return Page(
        data=[schemas.MemberScoreRead.model_validate(r) for r in rows],
        next_cursor=next_cursor,
    )


def _sizes(
    merchant_id: str | None,
    as_of: datetime | None,
    sizes: list[SegmentSize],
    model: FittedModel | None,
) -> schemas.SegmentSizes:
    return schemas.SegmentSizes(
        merchant_id=merchant_id,
        as_of=as_of,
        total=sum(n for _, n, _, _ in sizes),
        segments=[
            schemas.SegmentSize(segment=s, members=n, average_clv=clv, average_p_alive=p)
            for s, n, clv, p in sizes
        ],
        model=schemas.FittedModelRead.model_validate(model) if model is not None else None,
    )


@router.get("/analytics/segments")
def segment_sizes(merchant_id: str, session: Reading, caller: Caller) -> schemas.SegmentSizes:
    """How many members each segment holds, with their average CLV and P(alive)."""
    return _sizes(
        merchant_id,
        *service.segment_sizes(session, principal=caller, merchant_id=merchant_id),
    )


@platform_router.get("/segments")
def platform_segment_sizes(session: Reading, caller: Caller) -> schemas.SegmentSizes:
    """Platform admins: segment sizes over every merchant's members, and the platform model."""
    return _sizes(None, *service.segment_sizes(session, principal=caller, merchant_id=None))


@router.post("/analytics/run", dependencies=IDEMPOTENT)
def run_analysis(merchant_id: str, db: DB, caller: Caller) -> schemas.AnalysisRun:
    """Re-fit and re-score this merchant's members now (the worker also does it daily)."""
    with answer_not_bound():  # many short transactions, and safe to run again
        summary = service.refresh_merchant(db, principal=caller, merchant_id=merchant_id)
    return schemas.AnalysisRun(
        merchants=summary.merchants,
        members=summary.members,
        platform_fallbacks=summary.platform_fallbacks,
        as_of=summary.as_of,
        seconds=round(summary.seconds, 3),
    )


@router.get("/stores/{store_id}/load")
def store_load(
    merchant_id: str,
    store_id: str,
    session: Reading,
    caller: Caller,
    weeks: Annotated[int, Query(ge=1, le=52)] = 8,
) -> schemas.StoreLoad:
    """Average visits per weekday × hour (store-local) against capacity; off-peak slots marked."""
    load = service.store_load(
        session, principal=caller, merchant_id=merchant_id, store_id=store_id, weeks=weeks
    )
    return schemas.StoreLoad(
        store_id=load.store.id,
        timezone=load.store.timezone,
        since=load.since,
        until=load.until,
        weeks=load.weeks,
        visits=load.visits,
        off_peak_threshold=service.OFF_PEAK_UTILISATION,
        slots=[
            schemas.LoadSlot(
                weekday=s.weekday,
                hour=s.hour,
                open=s.open,
                capacity=s.capacity,
                average_visits=s.average_visits,
                utilisation=s.utilisation,
                off_peak=s.off_peak,
            )
            for s in load.slots
        ],
    )
