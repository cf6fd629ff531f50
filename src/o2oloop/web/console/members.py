"""Members: a filterable, paged table of what was learned about each, and a member's page."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from o2oloop import clock
from o2oloop.analytics import member_table
from o2oloop.analytics import service as analytics
from o2oloop.analytics.models import Segment, SpendingLevel
from o2oloop.codes import service as codes
from o2oloop.customers import service as customers
from o2oloop.visits import service as visits
from o2oloop.web import framework
from o2oloop.web.console import common
from o2oloop.web.console.offer_form import to_minor
from o2oloop.web.framework import CSRF, MerchantPerson

router = APIRouter(include_in_schema=False, dependencies=CSRF)
Text = Annotated[str, Query(max_length=40)]


def _filters(
    values: dict[str, str], currency: str, timezone: str
) -> tuple[member_table.MemberFilter, dict[str, str]]:
    errors: dict[str, str] = {}
    segment = values["segment"] if values["segment"] in {s.value for s in Segment} else None
    level = values["spending"] if values["spending"] in {s.value for s in SpendingLevel} else None
    consent = {"yes": True, "no": False}.get(values["consent"])
    min_clv = None
    if values["min_clv"]:
        try:
            min_clv = to_minor(values["min_clv"], currency)
        except (ValueError, ArithmeticError):
            errors["min_clv"] = "enter an amount like 12.50"
    alive = {"likely": (0.6, None), "slipping": (0.2, 0.6), "gone": (None, 0.2)}.get(
        values["alive"], (None, None)
    )
    before = None
    if values["due_by"]:
        try:
            day = datetime.fromisoformat(values["due_by"]).date()
            before = datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(timezone))
        except ValueError:
            errors["due_by"] = "enter a date"
    where = member_table.MemberFilter(
        segment=Segment(segment) if segment else None,
        spending_level=SpendingLevel(level) if level else None,
        consent=consent,
        min_clv=min_clv,
        min_p_alive=alive[0],
        max_p_alive=alive[1],
        next_visit_before=before,
    )
    return where, errors


@router.get("/console/members")
def member_list(
    request: Request,
    viewer: MerchantPerson,
    segment: Text = "",
    spending: Text = "",
    consent: Text = "",
    min_clv: Text = "",
    alive: Text = "",
    due_by: Text = "",
    cursor: Annotated[str | None, Query(max_length=60)] = None,
) -> Response:
    values = {
        "segment": segment,
        "spending": spending,
        "consent": consent,
        "min_clv": min_clv,
        "alive": alive,
        "due_by": due_by,
    }
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        where, errors = _filters(values, merchant.currency, merchant.timezone)
        rows, total, next_cursor = member_table.member_rows(
            session,
            principal=viewer.principal,
            merchant_id=merchant.id,
            where=where,
            cursor=cursor,
            limit=50,
        )
    query = "&".join(f"{k}={v}" for k, v in values.items() if v)
    return framework.render(
        request,
        "console/members.html",
        {
            "merchant": merchant,
            "rows": rows,
            "total": total,
            "values": values,
            "errors": errors,
            "next_cursor": next_cursor,
            "query": query,
            "first_page": cursor is None,
        },
        status=422 if errors else 200,
        timezone=merchant.timezone,
    )


@router.get("/console/members/{member_id}")
def member_page(request: Request, viewer: MerchantPerson, member_id: str) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        membership, consumer = customers.get_member(
            session, principal=viewer.principal, merchant_id=merchant.id, member_id=member_id
        )
        score = analytics.member_score(session, member_id=membership.id)
        recent = visits.member_visits(
            session, merchant_id=merchant.id, member_id=membership.id, limit=50
        )
        held = codes.member_codes(
            session,
            principal=viewer.principal,
            merchant_id=merchant.id,
            consumer_id=membership.consumer_id,
        )
        store_names = {s.id: s.name for s in common.stores(session, viewer)}
        phone = customers.visible_phone(membership, consumer)
    return framework.render(
        request,
        "console/member.html",
        {
            "merchant": merchant,
            "member": membership,
            "score": score,
            "visits": recent,
            "codes": held,
            "store_names": store_names,
            "phone": phone,
            "now": clock.now(),
        },
        timezone=merchant.timezone,
    )
