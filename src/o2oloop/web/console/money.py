"""Money: balances, escrow, settlement batches with their statements, the stored-value
programme."""

from __future__ import annotations

from decimal import InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from o2oloop.errors import NotFound
from o2oloop.settlement import service as settlement
from o2oloop.stored_value import service as stored_value
from o2oloop.web import framework
from o2oloop.web.console import common
from o2oloop.web.console.offer_form import TIERS, to_major, to_minor
from o2oloop.web.forms import FormInvalid
from o2oloop.web.framework import CSRF, Form, MerchantPerson

router = APIRouter(include_in_schema=False, dependencies=CSRF)


def _program_values(program: object | None, currency: str) -> dict[str, str]:
    values: dict[str, str] = {"active": "1" if program is None or program.active else ""}  # type: ignore[attr-defined]
    for i, tier in enumerate(getattr(program, "tiers", None) or [], start=1):
        values[f"tier_pay_{i}"] = to_major(tier["pay"], currency)
        values[f"tier_bonus_{i}"] = to_major(tier.get("bonus", 0), currency)
    return values


def _page(
    request: Request,
    viewer: framework.Viewer,
    *,
    cursor: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        summary = settlement.merchant_summary(
            session, principal=viewer.principal, merchant_id=merchant.id
        )
        batches, next_cursor = settlement.list_batches(
            session, principal=viewer.principal, merchant_id=merchant.id, cursor=cursor, limit=25
        )
        try:
            program = stored_value.get_program(
                session, principal=viewer.principal, merchant_id=merchant.id
            )
        except NotFound:
            program = None
        holders, _ = stored_value.merchant_balances(
            session, principal=viewer.principal, merchant_id=merchant.id, cursor=None, limit=200
        )
    return framework.render(
        request,
        "console/money.html",
        {
            "merchant": merchant,
            "summary": summary,
            "batches": sorted(batches, key=lambda b: b.sequence, reverse=True),
            "next_cursor": next_cursor,
            "program": program,
            "holders": [h for h in holders if h.balance],
            "values": values if values is not None else _program_values(program, merchant.currency),
            "errors": errors or {},
            "tiers": range(1, TIERS + 1),
        },
        status=422 if errors else 200,
        timezone=merchant.timezone,
    )


@router.get("/console/money")
def money(
    request: Request,
    viewer: MerchantPerson,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    return _page(request, viewer, cursor=cursor)


@router.post("/console/money/stored-value")
def save_program(request: Request, viewer: MerchantPerson, form: Form) -> Response:
    with common.reading(request) as session:
        currency = common.merchant(session, viewer).currency
    tiers, errors = [], {}
    for i in range(1, TIERS + 1):
        pay, bonus = form.get(f"tier_pay_{i}", "").strip(), form.get(f"tier_bonus_{i}", "").strip()
        if not pay and not bonus:
            continue
        try:
            amount = to_minor(pay, currency)
            if amount <= 0:
                raise ValueError
            tiers.append({"pay": amount, "bonus": to_minor(bonus or "0", currency)})
        except (InvalidOperation, ValueError):
            errors[f"tier_{i}"] = "enter what the customer pays (more than 0) and the bonus"
    if not tiers and not errors:
        errors["tier_1"] = "give at least one tier"
    try:
        if errors:
            raise FormInvalid(errors)
        common.act(
            request, viewer, stored_value.set_program, tiers=tiers, active=form.get("active") == "1"
        )
    except FormInvalid as invalid:
        return _page(request, viewer, values=form, errors=invalid.errors)
    return framework.redirect("/console/money#stored-value", done="saved")


@router.get("/console/money/settlements/{settlement_id}/statement.csv")
def statement(request: Request, viewer: MerchantPerson, settlement_id: str) -> Response:
    with common.reading(request) as session:
        batch = settlement.get_batch(
            session,
            principal=viewer.principal,
            merchant_id=viewer.merchant_id,
            settlement_id=settlement_id,
        )
        body = settlement.statement_csv(session, batch)
    name = f"o2oloop-settlement-{batch.sequence}.csv"
    return Response(
        body,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
