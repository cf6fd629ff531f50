"""Campaign use cases: create, change, preview, move through the lifecycle, list.

draft → (launch) → scheduled (waits for its start) / running → paused ⇄ running → finished.
Only a draft's definition changes; a finished campaign stays as it was, for its results.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.analytics.models import MemberScore
from o2oloop.auth.principal import (
    Principal,
    get_owned,
    require_merchant_admin,
    require_merchant_staff,
    require_platform,
)
from o2oloop.campaigns import holdout
from o2oloop.campaigns.audience import audience_query, near_store_of
from o2oloop.campaigns.models import Campaign, CampaignState, TriggerKind
from o2oloop.campaigns.schemas import (
    Audience,
    CampaignCreate,
    CampaignUpdate,
    Preview,
    PreviewMember,
    Trigger,
)
from o2oloop.customers.models import Membership
from o2oloop.db import new_id
from o2oloop.errors import Conflict, InvalidInput, NotFound
from o2oloop.merchants.models import Merchant, Store
from o2oloop.notify import templates
from o2oloop.offers.models import DiscountKind, Offer, OfferKind, OfferState
from o2oloop.pagination import paginate

SAMPLE = 20


class AudienceEmpty(InvalidInput):
    slug, title = "audience-empty", "The audience matches nobody"


def require_access(principal: Principal, merchant_id: str | None, *, write: bool) -> None:
    """Merchant campaigns: the merchant's staff read, admins change. Platform: admins only."""
    if merchant_id is None:
        require_platform(principal)
    elif write:
        require_merchant_admin(principal, merchant_id)
    else:
        require_merchant_staff(principal, merchant_id)


def get_campaign(
    session: Session, *, principal: Principal, merchant_id: str | None, campaign_id: str
) -> Campaign:
    require_access(principal, merchant_id, write=False)
    if merchant_id is None:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.merchant_id is not None:
            raise NotFound("no campaign with this id")
        return campaign
    return get_owned(session, Campaign, campaign_id, merchant_id=merchant_id, what="campaign")


def max_discount(offer: Offer) -> int | None:
    """The most one code of the offer can take off a bill (None: no bound)."""
    if offer.discount_kind is DiscountKind.AMOUNT_OFF:
        amount = offer.amount_off or 0
        return min(amount, offer.discount_cap) if offer.discount_cap else amount
    return offer.discount_cap


def _offer(session: Session, merchant_id: str | None, offer_id: str | None) -> Offer:
    if offer_id is None:
        raise InvalidInput("a campaign needs an offer: its trigger issues a code of it")
    offer = session.get(Offer, offer_id)
    if offer is None or (merchant_id is not None and offer.merchant_id != merchant_id):
        raise NotFound("offer_id: no offer of this merchant with this id", field="offer_id")
    if offer.kind is not OfferKind.COUPON:
        raise InvalidInput(
            "offer_id: campaigns give coupons; a voucher is bought", field="offer_id"
        )
    if offer.state in (OfferState.ENDED,):
        raise InvalidInput("offer_id: this offer has ended", field="offer_id")
    if offer.state is OfferState.DRAFT:  # its codes would be refused at the till
        raise InvalidInput("offer_id: this offer is a draft; publish it first", field="offer_id")
    return offer


def _check_budget(offer: Offer, budget_codes: int | None, budget_discount: int | None) -> None:
    if budget_codes is not None and budget_codes < 1:
        raise InvalidInput("budget_codes is below one code", field="budget_codes")
    if budget_discount is None:
        return
    per_code = max_discount(offer)
    if per_code is None:
        raise InvalidInput(
            "a money budget needs an offer whose discount is bounded (amount off or a cap)",
            field="budget_discount",
        )
    if budget_discount < per_code:
        raise InvalidInput(
            f"budget_discount {budget_discount} is below one code's discount ({per_code})",
            field="budget_discount",
        )


def _check_message(channel: Any, subject: str, body: str) -> None:
    templates.validate(body, field="message_body")
    templates.validate(subject, field="message_subject")


def _check_holdout(share: float, measured: bool) -> int:
    # Any share above 0 keeps at least one bucket back, as the schema's "above 0" promises.
    bps = max(round(share * holdout.BUCKETS), 1) if share > 0 else 0
    if measured and bps == 0:
        raise InvalidInput(
            "holdout_share is 0: a measured campaign keeps a control group "
            "(turn measurement off explicitly with measured=false)",
            field="holdout_share",
        )
    return bps if measured else 0


def create_campaign(
    session: Session, *, principal: Principal, merchant_id: str | None, data: CampaignCreate
) -> Campaign:
    require_access(principal, merchant_id, write=True)
    offer = _offer(session, merchant_id, data.offer_id)
    _check_budget(offer, data.budget_codes, data.budget_discount)
    _check_message(data.channel, data.message_subject, data.message_body)
    _check_trigger(session, data.trigger, merchant_id)
    near_store_of(session, data.audience, merchant_id)
    now = clock.now()
    campaign = Campaign(
        id=new_id("cmp"),
        merchant_id=merchant_id,
        name=data.name,
        state=CampaignState.DRAFT,
        audience=data.audience.model_dump(mode="json"),
        trigger=data.trigger.model_dump(mode="json", exclude_none=True),
        offer_id=offer.id,
        code_valid_days=data.code_valid_days,
        channel=data.channel,
        message_subject=data.message_subject,
        message_body=data.message_body,
        holdout_bps=_check_holdout(data.holdout_share, data.measured),
        measured=data.measured,
        use_global_control=data.use_global_control,
        cap_days=data.cap_days,
        budget_codes=data.budget_codes,
        budget_discount=data.budget_discount,
        codes_issued=0,
        discount_committed=0,
        gross_margin_bps=round(data.gross_margin_share * 10_000),
        attribution_days=data.attribution_days,
        pre_period_days=data.pre_period_days,
        currency=offer.currency,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        created_at=now,
        updated_at=now,
    )
    session.add(campaign)
    session.flush()
    return campaign


def _check_trigger(session: Session, trigger: Trigger, merchant_id: str | None) -> None:
    if trigger.kind is TriggerKind.QUIET_SLOT:
        if merchant_id is None:
            raise InvalidInput("a quiet-slot trigger belongs to a merchant's campaign")
        if trigger.store_id is not None:
            store = session.get(Store, trigger.store_id)
            if store is None or store.merchant_id != merchant_id:
                raise NotFound("trigger.store_id: no store of this merchant with this id")


# Fields an update may set to null: no budget, no end; an offer is required (a clear 422).
_CLEARED_BY_NULL = frozenset({"budget_codes", "budget_discount", "ends_at", "offer_id"})


def update_campaign(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str | None,
    campaign_id: str,
    data: CampaignUpdate,
) -> Campaign:
    require_access(principal, merchant_id, write=True)
    campaign = get_campaign(
        session, principal=principal, merchant_id=merchant_id, campaign_id=campaign_id
    )
    if campaign.state is not CampaignState.DRAFT:
        raise Conflict(f"a {campaign.state.value} campaign's definition no longer changes")
    # A null leaves a field as it is, as every update of the API does; only these clear.
    changes = {
        name: value
        for name, value in data.model_dump(exclude_unset=True).items()
        if value is not None or name in _CLEARED_BY_NULL
    }
    offer = _offer(session, merchant_id, changes.get("offer_id", campaign.offer_id))
    _check_budget(
        offer,
        changes.get("budget_codes", campaign.budget_codes),
        changes.get("budget_discount", campaign.budget_discount),
    )
    _check_message(
        changes.get("channel", campaign.channel),
        changes.get("message_subject", campaign.message_subject),
        changes.get("message_body", campaign.message_body),
    )
    if "holdout_share" in changes or "measured" in changes:
        measured = changes.get("measured", campaign.measured)
        share = changes.get("holdout_share", campaign.holdout_bps / holdout.BUCKETS)
        campaign.holdout_bps = _check_holdout(share, measured)
        campaign.measured = measured
    if data.audience is not None:
        near_store_of(session, data.audience, merchant_id)
        campaign.audience = data.audience.model_dump(mode="json")
    if data.trigger is not None:
        _check_trigger(session, data.trigger, merchant_id)
        campaign.trigger = data.trigger.model_dump(mode="json", exclude_none=True)
    for name in ("name", "channel", "message_subject", "message_body", "ends_at"):
        if name in changes:
            setattr(campaign, name, changes[name])
    for name in ("budget_codes", "budget_discount"):
        if name in changes:
            setattr(campaign, name, changes[name])
    campaign.offer_id = offer.id
    campaign.currency = offer.currency
    campaign.updated_at = clock.now()
    session.flush()
    return campaign


def audience_of(campaign: Campaign) -> Audience:
    return Audience.model_validate(campaign.audience)


def trigger_of(campaign: Campaign) -> Trigger:
    return Trigger.model_validate(campaign.trigger)


def preview(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str | None,
    audience: Audience,
    offer_id: str | None = None,
    holdout_share: float = holdout.DEFAULT_HOLDOUT_BPS / holdout.BUCKETS,
    now: datetime | None = None,
) -> Preview:
    """How many, and who: the audience's size, the expected arms and a sample of members."""
    require_access(principal, merchant_id, write=False)
    now = now or clock.now()
    query = audience_query(
        session, audience=audience, merchant_id=merchant_id, now=now, offer_id=offer_id
    ).subquery()
    count = session.scalar(select(func.count()).select_from(query)) or 0
    rows = session.execute(
        select(
            query.c.member_id,
            query.c.consumer_id,
            MemberScore.segment,
            Membership.visit_count,
            Membership.last_visit_at,
            MemberScore.clv,
            MemberScore.p_alive,
        )
        .join(Membership, Membership.id == query.c.member_id)
        .outerjoin(MemberScore, MemberScore.member_id == query.c.member_id)
        .order_by(query.c.member_id)
        .limit(SAMPLE)
    ).all()
    control = round(count * holdout_share)
    return Preview(
        count=count,
        treatment_estimate=count - control,
        control_estimate=control,
        sample=[
            PreviewMember(
                member_id=r.member_id,
                consumer_id=r.consumer_id,
                segment=r.segment.value if r.segment is not None else None,
                visits=r.visit_count,
                days_since_last=round((now - r.last_visit_at).total_seconds() / 86400, 1)
                if r.last_visit_at is not None
                else None,
                clv=r.clv,
                p_alive=r.p_alive,
            )
            for r in rows
        ],
    )


def list_campaigns(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str | None,
    state: CampaignState | None = None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Campaign], str | None]:
    require_access(principal, merchant_id, write=False)
    query = select(Campaign).where(
        Campaign.merchant_id.is_(None)
        if merchant_id is None
        else Campaign.merchant_id == merchant_id
    )
    if state is not None:
        query = query.where(Campaign.state == state)
    return paginate(session, query, Campaign.id, cursor=cursor, limit=limit)


def merchant_name(session: Session, merchant_id: str | None) -> str:
    if merchant_id is None:
        return "o2oloop"
    merchant = session.get(Merchant, merchant_id)
    return merchant.name if merchant is not None else ""
