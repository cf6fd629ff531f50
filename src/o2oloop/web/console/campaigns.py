"""Campaigns: the list, a draft with its audience counted before saving, launch and pause,
and the results against the holdout. Every rule is the campaigns service's."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from o2oloop.analytics.models import Segment
from o2oloop.campaigns import launch, results, schemas, service
from o2oloop.campaigns.models import Channel, TriggerKind
from o2oloop.campaigns.policy import Policy
from o2oloop.offers import service as offers
from o2oloop.offers.models import OfferKind, OfferState
from o2oloop.web import framework
from o2oloop.web.console import common
from o2oloop.web.forms import GENERAL, FormInvalid, attempt, parse
from o2oloop.web.framework import CSRF, FormLists, MerchantPerson

router = APIRouter(include_in_schema=False, dependencies=CSRF)
CHANNELS = (Channel.INBOX, Channel.SMS, Channel.EMAIL)
ACTIONS = ("launch", "pause", "resume", "finish")
# In the order a shop owner thinks of them: who is coming, who is slipping away.
SEGMENTS_SHOWN = (
    Segment.NEW,
    Segment.REGULAR,
    Segment.HIGH_VALUE,
    Segment.OCCASIONAL,
    Segment.AT_RISK,
    Segment.LAPSED,
    Segment.COUPON_ONLY,
)
# Form names for the schema's nested fields, so a refusal lands beside its field.
FIELDS = {"audience": "segments", "trigger": "trigger", "holdout_share": "holdout_percent"}


@router.get("/console/campaigns")
def campaign_list(request: Request, viewer: MerchantPerson) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        rows, _ = service.list_campaigns(
            session, principal=viewer.principal, merchant_id=merchant.id, cursor=None, limit=200
        )
    return framework.render(
        request,
        "console/campaigns.html",
        {"merchant": merchant, "campaigns": sorted(rows, key=lambda c: c.created_at, reverse=True)},
        timezone=merchant.timezone,
    )


def _coupons(session: Any, viewer: framework.Viewer) -> list[Any]:
    rows, _ = offers.list_offers(
        session,
        principal=viewer.principal,
        merchant_id=viewer.merchant_id,
        state=None,
        cursor=None,
        limit=200,
    )
    return [o for o in rows if o.kind is OfferKind.COUPON and o.state is not OfferState.ENDED]


def _number(form: dict[str, list[str]], name: str, errors: dict[str, str]) -> float | None:
    text = (form.get(name) or [""])[0].strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        errors[name] = "enter a number"
        return None


def _parse(form: dict[str, list[str]]) -> schemas.CampaignCreate:
    """The form's fields as the service's schema; what cannot be read, beside its field."""
    errors: dict[str, str] = {}
    one = {k: v[0] for k, v in form.items() if v}
    audience: dict[str, Any] = {"segments": form.get("segments") or None}
    for name in ("days_since_last_min", "p_alive_min"):
        value = _number(form, name, errors)
        if value is not None:
            audience[name] = value / 100 if name == "p_alive_min" else value
    holdout = _number(form, "holdout_percent", errors)
    values: dict[str, Any] = {
        "name": one.get("name", "").strip(),
        "offer_id": one.get("offer_id") or None,
        "channel": one.get("channel", Channel.INBOX.value),
        "message_subject": one.get("message_subject", "").strip(),
        "message_body": one.get("message_body", "").strip(),
        "audience": audience,
        "trigger": {"kind": TriggerKind.NOW.value},
        "holdout_share": 0.1 if holdout is None else holdout / 100,
    }
    if errors:
        raise FormInvalid(errors)
    return parse(schemas.CampaignCreate, values, FIELDS)


def _form_page(
    request: Request,
    viewer: framework.Viewer,
    form: dict[str, list[str]] | None = None,
    errors: dict[str, str] | None = None,
    preview: schemas.Preview | None = None,
) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        coupons = _coupons(session, viewer)
    form = form or {
        "holdout_percent": ["10"],
        "message_body": [schemas.CampaignCreate.model_fields["message_body"].default],
    }
    return framework.render(
        request,
        "console/campaign_form.html",
        {
            "merchant": merchant,
            "coupons": coupons,
            "values": {k: v[0] for k, v in form.items() if v},
            "chosen_segments": set(form.get("segments") or []),
            "segments": [s.value for s in SEGMENTS_SHOWN],
            "channels": [c.value for c in CHANNELS],
            "errors": errors or {},
            "preview": preview,
        },
        status=422 if errors else 200,
        timezone=merchant.timezone,
    )


@router.get("/console/campaigns/new")
def new_campaign(request: Request, viewer: MerchantPerson) -> Response:
    return _form_page(request, viewer)


@router.post("/console/campaigns")
def create_campaign(request: Request, viewer: MerchantPerson, form: FormLists) -> Response:
    """ "Count the audience" shows how many members the draft reaches and saves nothing;
    "Save draft" creates it."""
    db = common.db(request)
    try:
        data = _parse(form)
        if (form.get("intent") or [""])[0] == "preview":

            def count() -> schemas.Preview:
                with db.reading() as session:
                    return service.preview(
                        session,
                        principal=viewer.principal,
                        merchant_id=viewer.merchant_id,
                        audience=data.audience,
                        offer_id=data.offer_id,
                        holdout_share=data.holdout_share,
                    )

            return _form_page(request, viewer, form, preview=attempt(count))

        campaign = common.act(request, viewer, service.create_campaign, data=data)
    except FormInvalid as invalid:
        return _form_page(request, viewer, form, errors=invalid.errors)
    return framework.redirect(f"/console/campaigns/{campaign.id}", done="created")


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def lift_rows(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """The CUPED lift of visits and revenue, shaped for the table (no infinities from arms
    too small to tell; the verdict says whether the 95 % range excludes no effect)."""
    rows = []
    for name in ("visits", "revenue"):
        measured = outcome.get(name)
        if not measured:
            continue
        cuped = measured["cuped"]
        low, high = (_finite(v) for v in cuped["incremental_interval_95"])
        verdict = "unclear"
        if low is not None and low > 0:
            verdict = "lift"
        elif high is not None and high < 0:
            verdict = "harm"
        rows.append(
            {
                "name": name,
                "per_member": _finite(cuped["difference_per_member"]),
                "total": _finite(cuped["incremental"]),
                "low": low,
                "high": high,
                "verdict": verdict,
            }
        )
    return rows


def _campaign_page(
    request: Request, viewer: framework.Viewer, campaign_id: str, errors: dict[str, str]
) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        campaign = service.get_campaign(
            session,
            principal=viewer.principal,
            merchant_id=merchant.id,
            campaign_id=campaign_id,
        )
        offer = offers.get_offer(
            session, principal=viewer.principal, merchant_id=merchant.id, offer_id=campaign.offer_id
        )
        preview = None
        if campaign.state.value == "draft":
            preview = service.preview(
                session,
                principal=viewer.principal,
                merchant_id=merchant.id,
                audience=service.audience_of(campaign),
                offer_id=campaign.offer_id,
                holdout_share=campaign.holdout_bps / 10_000,
            )
        outcome = results.campaign_results(session, campaign=campaign)
    return framework.render(
        request,
        "console/campaign.html",
        {
            "merchant": merchant,
            "campaign": campaign,
            "offer": offer,
            "audience": service.audience_of(campaign),
            "preview": preview,
            "results": outcome,
            "lifts": lift_rows(outcome),
            "errors": errors,
        },
        status=409 if errors else 200,
        timezone=merchant.timezone,
    )


@router.get("/console/campaigns/{campaign_id}")
def campaign_page(request: Request, viewer: MerchantPerson, campaign_id: str) -> Response:
    return _campaign_page(request, viewer, campaign_id, {})


@router.post("/console/campaigns/{campaign_id}/transition")
def move_campaign(
    request: Request, viewer: MerchantPerson, campaign_id: str, form: FormLists
) -> Response:
    action = (form.get("action") or [""])[0]
    if action not in ACTIONS:
        return _campaign_page(request, viewer, campaign_id, {GENERAL: "choose what to do"})
    try:
        common.act(
            request,
            viewer,
            launch.transition,
            campaign_id=campaign_id,
            action=action,
            policy=Policy.from_settings(request.app.state.settings),
        )
    except FormInvalid as invalid:
        return _campaign_page(request, viewer, campaign_id, invalid.errors)
    return framework.redirect(f"/console/campaigns/{campaign_id}", done=action)
