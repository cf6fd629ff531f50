"""Campaign routes: merchants' campaigns and the platform's brand campaigns."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from o2oloop import clock
from o2oloop.campaigns import launch, results, schemas, service
from o2oloop.campaigns.models import CampaignState
from o2oloop.campaigns.policy import Policy
from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, problems
from o2oloop.pagination import Page, page_of

router = APIRouter(
    prefix="/v1/merchants/{merchant_id}/campaigns",
    tags=["campaigns"],
    responses=problems(401, 403, 404, 409, 422),
)
platform_router = APIRouter(
    prefix="/v1/platform/campaigns", tags=["campaigns"], responses=problems(401, 403, 404, 409, 422)
)


def _policy(request: Request) -> Policy:
    return Policy.from_settings(request.app.state.settings)


def _create(db: Any, caller: Any, merchant_id: str | None, data: schemas.CampaignCreate) -> Any:
    with db.transaction() as session:
        campaign = service.create_campaign(
            session, principal=caller, merchant_id=merchant_id, data=data
        )
        return schemas.CampaignRead.model_validate(campaign)


def _list(db: Any, caller: Any, merchant_id: str | None, state: Any, cursor: Any, limit: int):
    with db.reading() as session:
        rows, next_cursor = service.list_campaigns(
            session,
            principal=caller,
            merchant_id=merchant_id,
            state=state,
            cursor=cursor,
            limit=limit,
        )
        return page_of(schemas.CampaignRead, rows, next_cursor)


def _get(db: Any, caller: Any, merchant_id: str | None, campaign_id: str) -> Any:
    with db.reading() as session:
        campaign = service.get_campaign(
            session, principal=caller, merchant_id=merchant_id, campaign_id=campaign_id
        )
        return schemas.CampaignRead.model_validate(campaign)


def _transition(request: Request, db: Any, caller: Any, merchant_id: str | None, cid: str, action):
    with db.transaction() as session:
        campaign = launch.transition(
            session,
            principal=caller,
            merchant_id=merchant_id,
            campaign_id=cid,
            action=action,
            policy=_policy(request),
        )
        return schemas.CampaignRead.model_validate(campaign)


def _results(db: Any, caller: Any, merchant_id: str | None, campaign_id: str) -> dict[str, Any]:
    with db.reading() as session:
        campaign = service.get_campaign(
            session, principal=caller, merchant_id=merchant_id, campaign_id=campaign_id
        )
        return results.campaign_results(session, campaign=campaign)


def _preview(db: Any, caller: Any, merchant_id: str | None, data: schemas.PreviewRequest):
    with db.reading() as session:
        return service.preview(
            session,
            principal=caller,
            merchant_id=merchant_id,
            audience=data.audience,
            offer_id=data.offer_id,
            holdout_share=data.holdout_share,
        )


# ---- merchants' campaigns -------------------------------------------------------------------


@router.post("", status_code=201, dependencies=IDEMPOTENT)
def create(merchant_id: str, data: schemas.CampaignCreate, db: DB, caller: Caller):
    return _create(db, caller, merchant_id, data)


@router.get("")
def list_(
    merchant_id: str,
    db: DB,
    caller: Caller,
    state: CampaignState | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.CampaignRead]:
    return _list(db, caller, merchant_id, state, cursor, limit)


@router.post("/preview")
def preview(merchant_id: str, data: schemas.PreviewRequest, db: DB, caller: Caller):
    """How many members, and who, an audience reaches now (nothing is recorded)."""
    return _preview(db, caller, merchant_id, data)


@router.get("/{campaign_id}")
def get(merchant_id: str, campaign_id: str, db: DB, caller: Caller) -> schemas.CampaignRead:
    return _get(db, caller, merchant_id, campaign_id)


@router.patch("/{campaign_id}")
def update(
    merchant_id: str, campaign_id: str, data: schemas.CampaignUpdate, db: DB, caller: Caller
) -> schemas.CampaignRead:
    with db.transaction() as session:
        campaign = service.update_campaign(
            session, principal=caller, merchant_id=merchant_id, campaign_id=campaign_id, data=data
        )
        return schemas.CampaignRead.model_validate(campaign)


@router.get("/{campaign_id}/preview")
def preview_campaign(merchant_id: str, campaign_id: str, db: DB, caller: Caller) -> schemas.Preview:
    with db.reading() as session:
        campaign = service.get_campaign(
            session, principal=caller, merchant_id=merchant_id, campaign_id=campaign_id
        )
        return service.preview(
            session,
            principal=caller,
            merchant_id=merchant_id,
            audience=service.audience_of(campaign),
            offer_id=campaign.offer_id,
            holdout_share=campaign.holdout_bps / 10_000,
        )


@router.post("/{campaign_id}/transitions", dependencies=IDEMPOTENT)
def transition(
    request: Request,
    merchant_id: str,
    campaign_id: str,
    data: schemas.Transition,
    db: DB,
    caller: Caller,
) -> schemas.CampaignRead:
    """launch (draft → running or scheduled), pause, resume, finish."""
    return _transition(request, db, caller, merchant_id, campaign_id, data.action)


@router.get("/{campaign_id}/results")
def campaign_results(merchant_id: str, campaign_id: str, db: DB, caller: Caller) -> dict[str, Any]:
    return _results(db, caller, merchant_id, campaign_id)


@router.get("/-/funnel", tags=["campaigns"])
def funnel(merchant_id: str, db: DB, caller: Caller, offer_id: str | None = None):
    """Per offer and channel: claims → redemptions → revenue → repeat visits in 30/90 days."""
    with db.reading() as session:
        service.require_access(caller, merchant_id, write=False)
        return {
            "as_of": clock.now(),
            "rows": results.offer_funnel(session, merchant_id=merchant_id, offer_id=offer_id),
        }


# ---- platform brand campaigns ----------------------------------------------------------------


@platform_router.post("", status_code=201, dependencies=IDEMPOTENT)
def create_brand(data: schemas.CampaignCreate, db: DB, caller: Caller) -> schemas.CampaignRead:
    return _create(db, caller, None, data)


@platform_router.get("")
def list_brand(
    db: DB,
    caller: Caller,
    state: CampaignState | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.CampaignRead]:
    return _list(db, caller, None, state, cursor, limit)


@platform_router.post("/preview")
def preview_brand(data: schemas.PreviewRequest, db: DB, caller: Caller) -> schemas.Preview:
    return _preview(db, caller, None, data)


@platform_router.get("/{campaign_id}")
def get_brand(campaign_id: str, db: DB, caller: Caller) -> schemas.CampaignRead:
    return _get(db, caller, None, campaign_id)


@platform_router.post("/{campaign_id}/transitions", dependencies=IDEMPOTENT)
def transition_brand(
    request: Request, campaign_id: str, data: schemas.Transition, db: DB, caller: Caller
) -> schemas.CampaignRead:
    return _transition(request, db, caller, None, campaign_id, data.action)


@platform_router.get("/{campaign_id}/results")
def brand_results(campaign_id: str, db: DB, caller: Caller) -> dict[str, Any]:
    return _results(db, caller, None, campaign_id)
