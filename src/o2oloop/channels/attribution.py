"""Which channel brought a claim, and the funnel per channel: no cookies, only the token.

The link's token travels with the claim (`POST /v1/offers/{id}/claim?via=…`). The claim's
own token is its last touch; the first token the consumer ever claimed this offer through
is its first touch (kept in `consumer_touches`). Redemptions and revenue follow the code.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from o2oloop.auth.principal import Principal, get_owned, require_merchant_staff
from o2oloop.channels import counts, links, referrals
from o2oloop.channels.models import Channel, CodeAttribution, ConsumerTouch, Publication, Share
from o2oloop.codes.models import Code, Redemption, RedemptionState
from o2oloop.errors import NotFound
from o2oloop.merchants.models import Merchant
from o2oloop.offers.models import Offer
from o2oloop.visits.models import Visit

Model = Literal["first_touch", "last_touch"]


def resolve(
    session: Session, *, secret: str, token: str | None, offer_id: str
) -> tuple[Channel, str, Share | None] | None:
    """The channel and link a token names for this offer; None when it names nothing valid
    (forged, edited, another offer's link): such a token is ignored, never trusted."""
    link = links.parse_token(secret, token)
    if link is None:
        return None
    if link.kind == "publication":
        publication = session.get(Publication, link.id)
        if publication is None or publication.offer_id != offer_id:
            return None
        return publication.channel, publication.id, None
    share = session.get(Share, link.id)
    if share is None or share.offer_id != offer_id:
        return None
    return Channel.SHARE, share.id, share


def attribute_claim(
    session: Session, *, code: Code, token: str | None, secret: str
) -> CodeAttribution | None:
    """Record where a just-claimed code came from (in the claim's transaction)."""
    if code.consumer_id is None:
        return None
    found = resolve(session, secret=secret, token=token, offer_id=code.offer_id)
    touch = session.get(ConsumerTouch, (code.consumer_id, code.offer_id))
    if found is not None:
        channel, link_id, share = found
        if share is not None and not referrals.on_claim(session, share=share, code=code):
            channel, link_id = Channel.DIRECT, ""  # a refused self-referral brings nothing
        elif touch is None:
            touch = ConsumerTouch(
                consumer_id=code.consumer_id,
                offer_id=code.offer_id,
                channel=channel,
                link_id=link_id,
                at=code.claimed_at,
            )
            session.add(touch)
    else:
        channel, link_id = Channel.DIRECT, ""
    if touch is None and channel is Channel.DIRECT:
        return None
    attribution = CodeAttribution(
        code_id=code.id,
        merchant_id=code.merchant_id,
        offer_id=code.offer_id,
        first_channel=touch.channel if touch is not None else channel,
        first_link_id=touch.link_id if touch is not None else link_id,
        last_channel=channel,
        last_link_id=link_id,
        claimed_at=code.claimed_at,
    )
    session.add(attribution)
    session.flush()
    return attribution


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def funnel(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    offer_id: str | None,
    model: Model = "last_touch",
    by_link: bool = False,
) -> tuple[str, list[dict]]:
    """Impressions → clicks → claims → redemptions → revenue per channel (and link), for one
    offer or every offer of the merchant. Returns the currency and the rows."""
    require_merchant_staff(principal, merchant_id)
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no merchant with this id")
    if offer_id is not None:
        get_owned(session, Offer, offer_id, merchant_id=merchant_id, what="offer")
    channel_col = (
        CodeAttribution.first_channel if model == "first_touch" else CodeAttribution.last_channel
    )
    link_col = (
        CodeAttribution.first_link_id if model == "first_touch" else CodeAttribution.last_link_id
    )
    channel = func.coalesce(channel_col, Channel.DIRECT.value)
    link = func.coalesce(link_col, "")
    groups = (channel, link) if by_link else (channel,)
    revenue = func.coalesce(Visit.amount, Redemption.bill_amount, 0)
    statement = (
        select(
            *groups,
            func.count(Code.id),
            func.count(Redemption.id),
            func.coalesce(func.sum(revenue), 0),
        )
        .select_from(Code)
        .outerjoin(CodeAttribution, CodeAttribution.code_id == Code.id)
        .outerjoin(
            Redemption,
            and_(Redemption.code_id == Code.id, Redemption.state == RedemptionState.REDEEMED),
        )
        .outerjoin(Visit, Visit.redemption_id == Redemption.id)
        .where(Code.merchant_id == merchant_id, Code.consumer_id.is_not(None))
        .group_by(*groups)
    )
    if offer_id is not None:
        statement = statement.where(Code.offer_id == offer_id)
    rows: dict[tuple[str, str], dict] = {}
    for row in session.execute(statement):
        *group, claims, redemptions, amount = row
        key = (Channel(group[0]).value, group[1] if by_link else "")
        rows[key] = {"claims": claims, "redemptions": redemptions, "revenue": int(amount)}
    shown = counts.totals(session, merchant_id=merchant_id, offer_id=offer_id)
    for (ch, link_id), (impressions, clicks) in shown.items():
        key = (ch, link_id if by_link else "")
        row = rows.setdefault(key, {"claims": 0, "redemptions": 0, "revenue": 0})
        row["impressions"] = row.get("impressions", 0) + impressions
        row["clicks"] = row.get("clicks", 0) + clicks
    out = []
    for (ch, link_id), row in sorted(rows.items()):
        impressions, clicks = row.get("impressions", 0), row.get("clicks", 0)
        out.append(
            {
                "channel": ch,
                "link_id": link_id,
                "impressions": impressions,
                "clicks": clicks,
                "claims": row["claims"],
                "redemptions": row["redemptions"],
                "revenue": row["revenue"],
                "click_through_rate": _rate(clicks, impressions),
                "claim_rate": _rate(row["claims"], clicks),
                "redemption_rate": _rate(row["redemptions"], row["claims"]),
            }
        )
    return merchant.currency, out
