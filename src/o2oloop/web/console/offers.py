"""Offers: list, create and edit every kind with every rule, preview, publish/pause/end,
bulk batches with their CSV."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from o2oloop.codes import codec, export, qr
from o2oloop.codes import service as codes
from o2oloop.errors import Conflict
from o2oloop.offers import schemas
from o2oloop.offers import service as offers
from o2oloop.offers.models import Offer, OfferKind, OfferState
from o2oloop.validation import FORM
from o2oloop.web import framework
from o2oloop.web.console import common
from o2oloop.web.console import offer_form as forms
from o2oloop.web.forms import FormInvalid, message_of, parse, problem_errors
from o2oloop.web.framework import CSRF, Form, FormLists, MerchantPerson

router = APIRouter(include_in_schema=False, dependencies=CSRF)

KINDS = [k.value for k in OfferKind]
# Sample codes for the preview are keyed apart from every real code: they redeem nowhere.
PREVIEW_KEYS = codes.Keys.from_secret("o2oloop/console/preview-only")
STATES = [s.value for s in OfferState]


@router.get("/console/offers")
def offer_list(
    request: Request,
    viewer: MerchantPerson,
    state: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    chosen = OfferState(state) if state in STATES else None
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        rows, next_cursor = offers.list_offers(
            session,
            principal=viewer.principal,
            merchant_id=merchant.id,
            state=chosen,
            cursor=cursor,
            limit=50,
        )
        return framework.render(
            request,
            "console/offers.html",
            {
                "merchant": merchant,
                "offers": sorted(rows, key=lambda o: o.created_at, reverse=True),
                "state": state,
                "states": STATES,
                "next_cursor": next_cursor,
            },
            timezone=merchant.timezone,
        )


def _form_page(
    request: Request,
    viewer: framework.Viewer,
    *,
    offer: Offer | None,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        stores = common.stores(session, viewer)
    return framework.render(
        request,
        "console/offer_form.html",
        {
            "merchant": merchant,
            "offer": offer,
            "stores": stores,
            "values": values,
            "errors": errors,
            "kinds": KINDS,
            "windows": range(1, forms.WINDOWS + 1),
            "tiers": range(1, forms.TIERS + 1),
            "full": offer is None or offer.state is OfferState.DRAFT,
        },
        status=status,
        timezone=merchant.timezone,
    )


@router.get("/console/offers/new")
def new_offer(
    request: Request, viewer: MerchantPerson, kind: Annotated[str, Query(max_length=20)] = "coupon"
) -> Response:
    values = {"kind": kind if kind in KINDS else "coupon", "discount_kind": "amount_off"}
    return _form_page(request, viewer, offer=None, values=values, errors={})


def _parse(form: dict[str, list[str]], currency: str, timezone: str) -> schemas.OfferCreate:
    parsed = forms.parse_form(form, currency=currency, timezone=timezone)
    try:
        data = schemas.OfferCreate.model_validate(parsed.values, context=FORM)
    except ValidationError as error:
        errors = dict(parsed.errors)
        for item in error.errors():
            name = forms.field_of([str(p) for p in item.get("loc", ())])
            errors.setdefault(name, message_of(dict(item)))
        raise FormInvalid(errors) from None
    if parsed.errors:
        raise FormInvalid(parsed.errors)
    return data


@router.post("/console/offers/new")
def create_offer(request: Request, viewer: MerchantPerson, form: FormLists) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
    try:
        data = _parse(form, merchant.currency, merchant.timezone)
        offer = common.act(request, viewer, offers.create_offer, data=data)
    except FormInvalid as invalid:
        return _form_page(
            request,
            viewer,
            offer=None,
            values=forms.form_echo(form),
            errors=invalid.errors,
            status=422,
        )
    return framework.redirect(f"/console/offers/{offer.id}", done="created")


def _get(request: Request, viewer: framework.Viewer, offer_id: str) -> Offer:
    with common.reading(request) as session:
        return offers.get_offer(
            session, principal=viewer.principal, merchant_id=viewer.merchant_id, offer_id=offer_id
        )


def _offer_page(
    request: Request,
    viewer: framework.Viewer,
    offer_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        offer = offers.get_offer(
            session, principal=viewer.principal, merchant_id=merchant.id, offer_id=offer_id
        )
        batches = codes.list_batches(
            session, principal=viewer.principal, merchant_id=merchant.id, offer_id=offer_id
        )
        stores = {s.id: s.name for s in common.stores(session, viewer)}
        return framework.render(
            request,
            "console/offer.html",
            {
                "merchant": merchant,
                "offer": offer,
                "batches": batches,
                "store_names": stores,
                "sample": codec.new_code(PREVIEW_KEYS.code).code,
                "errors": errors or {},
                "values": values or {},
            },
            status=422 if errors else 200,
            timezone=merchant.timezone,
        )


@router.get("/console/offers/{offer_id}")
def offer_page(request: Request, viewer: MerchantPerson, offer_id: str) -> Response:
    return _offer_page(request, viewer, offer_id)


@router.get("/console/offers/{offer_id}/preview.svg")
def offer_preview(
    request: Request,
    viewer: MerchantPerson,
    offer_id: str,
    sample: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """The QR of the page's sample code: only codes of the preview key (they redeem nowhere)."""
    _get(request, viewer, offer_id)
    try:
        parsed = codec.parse(sample, PREVIEW_KEYS.code)
    except codec.InvalidCode:
        parsed = codec.new_code(PREVIEW_KEYS.code)
    return Response(qr.qr_svg(parsed.payload, scale=6), media_type="image/svg+xml")


@router.get("/console/offers/{offer_id}/edit")
def edit_offer(request: Request, viewer: MerchantPerson, offer_id: str) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        offer = offers.get_offer(
            session, principal=viewer.principal, merchant_id=merchant.id, offer_id=offer_id
        )
    values = forms.form_values(offer, timezone=merchant.timezone)
    return _form_page(request, viewer, offer=offer, values=values, errors={})


@router.post("/console/offers/{offer_id}/edit")
def save_offer(
    request: Request, viewer: MerchantPerson, offer_id: str, form: FormLists
) -> Response:
    offer = _get(request, viewer, offer_id)
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
    try:
        if offer.state is OfferState.DRAFT:
            data = _parse(form, merchant.currency, merchant.timezone)
            common.act(request, viewer, offers.revise_draft, offer_id=offer_id, data=data)
        else:
            update = _parse_update(form, merchant.currency, merchant.timezone)
            common.act(request, viewer, offers.update_offer, offer_id=offer_id, data=update)
    except FormInvalid as invalid:
        values = forms.form_values(offer, timezone=merchant.timezone)
        values.update(forms.form_echo(form))
        return _form_page(
            request, viewer, offer=offer, values=values, errors=invalid.errors, status=422
        )
    return framework.redirect(f"/console/offers/{offer_id}", done="saved")


def _parse_update(form: dict[str, list[str]], currency: str, timezone: str) -> schemas.OfferUpdate:
    parsed = forms.parse_form(form, currency=currency, timezone=timezone)
    wanted = {k: parsed.values[k] for k in ("title", "description", "valid_until", "total_stock")}
    wanted = {k: v for k, v in wanted.items() if k in parsed.values}
    errors = {k: v for k, v in parsed.errors.items() if k in ("valid_until", "total_stock")}
    if errors:
        raise FormInvalid(errors)
    return parse(schemas.OfferUpdate, wanted)


@router.post("/console/offers/{offer_id}/state")
def change_state(request: Request, viewer: MerchantPerson, offer_id: str, form: Form) -> Response:
    action = form.get("action", "")
    if action not in offers.TRANSITIONS:
        return framework.redirect(f"/console/offers/{offer_id}")
    db = common.db(request)
    try:
        with db.transaction() as session:
            offers.transition(
                session,
                principal=viewer.principal,
                merchant_id=viewer.merchant_id,
                offer_id=offer_id,
                action=action,
            )
    except Conflict as error:
        return _offer_page(request, viewer, offer_id, errors=problem_errors(error))
    done = {"publish": "published", "pause": "paused", "end": "ended"}[action]
    return framework.redirect(f"/console/offers/{offer_id}", done=done)


@router.post("/console/offers/{offer_id}/batches")
def issue_batch(request: Request, viewer: MerchantPerson, offer_id: str, form: Form) -> Response:
    text = form.get("count", "").strip().replace(",", "")
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        return _offer_page(
            request,
            viewer,
            offer_id,
            errors={"count": "enter how many codes, from 1 to 1,000,000"},
            values={"count": text},
        )
    try:
        common.act(request, viewer, codes.issue_batch, offer_id=offer_id, count=int(text))
    except FormInvalid as invalid:
        errors = {"count": invalid.errors.get("__all__", "")}
        return _offer_page(request, viewer, offer_id, errors=errors, values={"count": text})
    return framework.redirect(f"/console/offers/{offer_id}#batches", done="created")


@router.get("/console/batches/{batch_id}/codes.csv")
def batch_csv(request: Request, viewer: MerchantPerson, batch_id: str) -> Response:
    with common.reading(request) as session:
        batch = codes.get_batch(
            session, principal=viewer.principal, merchant_id=viewer.merchant_id, batch_id=batch_id
        )
    keys = codes.Keys.from_secret(request.app.state.settings.secret_key)
    return StreamingResponse(
        export.batch_csv(keys.code, batch.batch_no, batch.count),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="o2oloop-batch-{batch.batch_no}.csv"',
            "Content-Length": str(export.batch_csv_size(batch.count)),
        },
    )
