"""A merchant's scores summed by segment and CLV band, written whenever analysis writes them.

The dashboard's segment sizes and CLV distribution read these few dozen rows: counting them
from `member_scores` on every load walked the merchant's whole index twice (about 200 ms
at 100,000 members). Counted by the database from the rows just written, so the summary
always matches the scores it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from babel.numbers import get_currency_precision
from sqlalchemy import case, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from o2oloop.analytics import segments as seg
from o2oloop.analytics.models import MemberScore, ScoreSummary, Segment
from o2oloop.errors import NotFound
from o2oloop.merchants.models import Merchant

# CLV bands in major units of the merchant's currency (the last one is open-ended).
CLV_EDGES = (0, 50, 100, 200, 500, 1000, 2000, 5000)


@dataclass(frozen=True, slots=True)
class Band:
    low: int  # minor units
    high: int | None
    members: int


class SegmentSize(NamedTuple):
    segment: Segment
    members: int
    average_clv: int
    average_p_alive: float


def band_edges(currency: str) -> list[int]:
    """The bands' lower edges in the currency's minor units."""
    unit = 10 ** get_currency_precision(currency)
    return [edge * unit for edge in CLV_EDGES]


def refresh(session: Session, merchant_id: str) -> None:
    """Recount the merchant's summary from its scores, in the caller's transaction."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no merchant with this id")
    edges = band_edges(merchant.currency)
    band = case(
        *((MemberScore.clv < high, index) for index, high in enumerate(edges[1:])),
        else_=len(edges) - 1,
    )
    scored = (
        select(
            MemberScore.segment,
            band.label("band"),
            MemberScore.clv,
            MemberScore.p_alive,
            MemberScore.as_of,
        )
        .where(MemberScore.merchant_id == merchant_id)
        .subquery()
    )
    # Grouped outside the CASE: PostgreSQL cannot tell two bound copies of it are the same.
    counted = select(
        literal(merchant_id),
        scored.c.segment,
        scored.c.band,
        func.count(),
        func.sum(scored.c.clv),
        func.sum(scored.c.p_alive),
        func.max(scored.c.as_of),
    ).group_by(scored.c.segment, scored.c.band)
    session.execute(delete(ScoreSummary).where(ScoreSummary.merchant_id == merchant_id))
    session.execute(
        insert(ScoreSummary).from_select(
            ["merchant_id", "segment", "band", "members", "clv_sum", "p_alive_sum", "as_of"],
            counted,
        )
    )


def erase_scores(session: Session, consumer_id: str) -> int:
    """An erased consumer's scores go, and the summaries that counted them are recounted."""
    merchants = session.scalars(
        select(MemberScore.merchant_id).where(MemberScore.consumer_id == consumer_id).distinct()
    ).all()
    deleted = session.execute(
        delete(MemberScore)
        .where(MemberScore.consumer_id == consumer_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    for merchant_id in merchants:
        refresh(session, merchant_id)
    return deleted


def _scope(merchant_id: str | None) -> Any:
    return True if merchant_id is None else ScoreSummary.merchant_id == merchant_id


def segment_sizes(
    session: Session, merchant_id: str | None
) -> tuple[datetime | None, list[SegmentSize]]:
    """(as_of, every segment's size and averages) of one merchant or of the platform."""
    rows = session.execute(
        select(
            ScoreSummary.segment,
            func.sum(ScoreSummary.members),
            func.sum(ScoreSummary.clv_sum),
            func.sum(ScoreSummary.p_alive_sum),
        )
        .where(_scope(merchant_id))
        .group_by(ScoreSummary.segment)
    ).all()
    found = {
        segment: SegmentSize(segment, int(n), round(int(clv) / n), float(p) / n)
        for segment, n, clv, p in rows
        if n
    }
    as_of = session.scalar(select(func.max(ScoreSummary.as_of)).where(_scope(merchant_id)))
    return as_of, [found.get(s, SegmentSize(s, 0, 0, 0.0)) for s in seg.SEGMENT_ORDER]


def members(session: Session, merchant_id: str, segment: Segment | None = None) -> int:
    """How many members the merchant's last analysis scored (in one segment, if given)."""
    query = select(func.coalesce(func.sum(ScoreSummary.members), 0)).where(
        ScoreSummary.merchant_id == merchant_id
    )
    if segment is not None:
        query = query.where(ScoreSummary.segment == segment)
    return int(session.scalar(query) or 0)


def clv_bands(session: Session, merchant_id: str, currency: str) -> list[Band]:
    """Members per CLV band of the merchant, lowest band first."""
    counts = dict(
        session.execute(
            select(ScoreSummary.band, func.sum(ScoreSummary.members))
            .where(ScoreSummary.merchant_id == merchant_id)
            .group_by(ScoreSummary.band)
        ).all()
    )
    edges = band_edges(currency)
    return [
        Band(
            low=low,
            high=edges[i + 1] if i + 1 < len(edges) else None,
            members=int(counts.get(i) or 0),
        )
        for i, low in enumerate(edges)
    ]
