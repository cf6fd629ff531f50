"""Channels routes: nearby offers, publications and their links, funnels, shares, referrals."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from o2oloop import clock
from o2oloop.channels import (
    attribution,
    geo,
    links,
    nearby,
    offpeak,
    publications,
    referrals,
    schemas,
    shares,
)
from o2oloop.channels.counts import Counts
from o2oloop.channels.models import Channel, Publication, Share
from o2oloop.codes import codec, qr
from o2oloop.codes.schemas import ClaimedCode
from o2oloop.codes.service import Keys, wallet_state
from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, problems
from o2oloop.merchants.models import Category
from o2oloop.offers.models import Offer, OfferKind
from o2oloop.offers.schemas import OfferRead
from o2oloop.pagination import Page

router = APIRouter(prefix="/v1", tags=["channels"], responses=problems(401, 403, 404, 409, 422))
tracking_router = APIRouter(tags=["channels"])


def _shaped(found: nearby.NearbyOffer) -> schemas.NearbyOfferRead:
    offer, store = found.offer, found.store
    return schemas.NearbyOfferRead(
        offer_id=offer.id,
        merchant_id=offer.merchant_id,
        kind=offer.kind,
        title=offer.title,
        currency=offer.currency,
        discount_kind=offer.discount_kind,
        amount_off=offer.amount_off,
        percent_off_bps=offer.percent_off_bps,
        price=offer.price,
        face_value=offer.face_value,
        value=found.value,
        distance_m=round(found.distance_m, 1),
        store=schemas.NearbyStoreRead(
            id=store.id,
            merchant_id=store.merchant_id,
            name=store.name,
            latitude=store.latitude,
            longitude=store.longitude,
            category=store.category,
            open_now=found.open_now,
            rating=found.rating,
        ),
    )


@router.get("/offers/nearby")
def nearby_offers(
    request: Request,
    db: DB,
    caller: Caller,
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude in degrees")],
    lng: Annotated[float, Query(ge=-180, le=180, description="Longitude in degrees")],
    radius_m: Annotated[float, Query(gt=0, le=nearby.MAX_RADIUS_M)],
    coords: Annotated[
        Literal["wgs84", "gcj02"],
        Query(description="gcj02 for coordinates from a Chinese map app; converted to WGS-84"),
    ] = "wgs84",
    category: Category | None = None,
    kind: OfferKind | None = None,
    open_now: Annotated[bool | None, Query(description="Open now in the store's timezone")] = None,
    sort: nearby.Sort = "distance",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> schemas.NearbyPage:
    """Published offers of active stores within the radius, each with its nearest store."""
    if coords == "gcj02":
        lat, lng = geo.gcj02_to_wgs84(lat, lng)
    query = nearby.NearbyQuery(
        latitude=lat,
        longitude=lng,
        radius_m=radius_m,
        category=category,
        kind=kind,
        open_now=open_now,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    with db.reading() as session:
        found, next_cursor = nearby.search(session, query=query, now=clock.now())
    counts_of(request).impressions([f.offer.id for f in found], Channel.IN_APP)
    return schemas.NearbyPage(data=[_shaped(f) for f in found], next_cursor=next_cursor)


def counts_of(request: Request) -> Counts:
    return request.app.state.channel_counts


def _secret(request: Request) -> str:
    return request.app.state.settings.secret_key


def _publication_read(request: Request, publication: Publication) -> schemas.PublicationRead:
    token = links.token_for(_secret(request), "publication", publication.id)
    base = str(request.base_url).rstrip("/")
    read = schemas.PublicationRead.model_validate(publication)
    read.token = token
    read.short_url = f"{base}/t/{token}"
    read.landing_url = f"{base}/offers/{publication.offer_id}?" + publications.landing_query(
        publication, token
    )
    read.qr_png_url = (
        f"{base}/v1/merchants/{publication.merchant_id}/publications/{publication.id}/qr.png"
    )
    return read


@router.post(
    "/merchants/{merchant_id}/offers/{offer_id}/publications",
    status_code=201,
    dependencies=IDEMPOTENT,
)
def publish(
    merchant_id: str,
    offer_id: str,
    data: schemas.PublicationCreate,
    request: Request,
    db: DB,
    caller: Caller,
) -> schemas.PublicationRead:
    """Publish an offer to a channel: a tracking link (and its QR image) of its own."""
    with db.transaction() as session:
        publication = publications.publish(
            session, principal=caller, merchant_id=merchant_id, offer_id=offer_id, data=data
        )
        return _publication_read(request, publication)


@router.get("/merchants/{merchant_id}/offers/{offer_id}/publications")
def list_publications(
    merchant_id: str,
    offer_id: str,
    request: Request,
    db: DB,
    caller: Caller,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.PublicationRead]:
    with db.reading() as session:
        rows, next_cursor = publications.list_publications(
            session,
            principal=caller,
            merchant_id=merchant_id,
            offer_id=offer_id,
            cursor=cursor,
            limit=limit,
        )
        return Page(data=[_publication_read(request, p) for p in rows], next_cursor=next_cursor)


@router.get(
    "/merchants/{merchant_id}/publications/{publication_id}/qr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def publication_qr(
    merchant_id: str, publication_id: str, request: Request, db: DB, caller: Caller
) -> Response:
    """The tracking link as a QR image, for a printed poster."""
    with db.reading() as session:
        publication = publications.get_publication(
            session, principal=caller, merchant_id=merchant_id, publication_id=publication_id
        )
        url = _publication_read(request, publication).short_url
    return Response(qr.qr_png(url), media_type="image/png")


_ENDED = """<!doctype html><html lang="en"><meta charset="utf-8">
<title>This offer has ended</title><body><h1>This offer has ended</h1>
<p>The link still works, but the offer behind it is no longer available.</p></body></html>"""


@tracking_router.get(
    "/t/{token}",
    response_class=RedirectResponse,
    status_code=302,
    responses={404: {"description": "Not a link we issued"}, 410: {"description": "Ended"}},
)
async def follow_link(token: str, request: Request, db: DB) -> Response:
    """A tracking link: counts the click and redirects to the offer, token and UTM tags on.

    One indexed read on the driver (on the event loop on SQLite, whose readers wait on
    nobody) and a click added to the in-memory counts, written in batches off the loop."""
    secret = _secret(request)
    try:
        followed = await db.run_reading(
            lambda transaction: publications.follow(transaction, secret=secret, token=token)
        )
    except publications.LinkEnded:
        return HTMLResponse(_ENDED, status_code=410)
    counts = counts_of(request)
    if counts.click(followed.offer_id, followed.channel, followed.link_id):
        await run_in_threadpool(counts.flush)
    return RedirectResponse(followed.location, status_code=302)


@router.get("/merchants/{merchant_id}/offers/{offer_id}/funnel")
def offer_funnel(
    merchant_id: str,
    offer_id: str,
    db: DB,
    caller: Caller,
    model: attribution.Model = "last_touch",
    by_link: bool = False,
) -> schemas.Funnel:
    """Impressions, clicks, claims, redemptions and revenue of one offer, per channel."""
    with db.reading() as session:
        currency, rows = attribution.funnel(
            session,
            principal=caller,
            merchant_id=merchant_id,
            offer_id=offer_id,
            model=model,
            by_link=by_link,
        )
    return schemas.Funnel(offer_id=offer_id, model=model, currency=currency, rows=rows)


@router.get("/merchants/{merchant_id}/funnel")
def merchant_funnel(
    merchant_id: str, db: DB, caller: Caller, model: attribution.Model = "last_touch"
) -> schemas.Funnel:
    """The funnel per channel over every offer of the merchant."""
    with db.reading() as session:
        currency, rows = attribution.funnel(
            session, principal=caller, merchant_id=merchant_id, offer_id=None, model=model
        )
    return schemas.Funnel(offer_id=None, model=model, currency=currency, rows=rows)


def _share_read(request: Request, share: Share) -> schemas.ShareRead:
    token = links.token_for(_secret(request), "share", share.id)
    read = schemas.ShareRead.model_validate(share)
    read.token = token
    read.short_url = f"{str(request.base_url).rstrip('/')}/t/{token}"
    return read


@router.post("/offers/{offer_id}/shares", status_code=201, dependencies=IDEMPOTENT)
def share_offer(
    offer_id: str, data: schemas.ShareCreate, request: Request, db: DB, caller: Caller
) -> schemas.ShareRead:
    """A consumer's own share link; friends who claim through it are attributed to them."""
    with db.transaction() as session:
        share = shares.share(session, principal=caller, offer_id=offer_id, note=data.note)
        return _share_read(request, share)


@router.get("/consumers/me/shares")
def my_shares(
    request: Request, db: DB, caller: Caller, cursor: Cursor = None, limit: Limit = 50
) -> Page[schemas.ShareRead]:
    with db.reading() as session:
        rows, next_cursor = shares.my_shares(session, principal=caller, cursor=cursor, limit=limit)
        return Page(data=[_share_read(request, s) for s in rows], next_cursor=next_cursor)


@router.put("/merchants/{merchant_id}/referral-program")
def set_referral_program(
    merchant_id: str, data: schemas.ReferralProgramIn, db: DB, caller: Caller
) -> schemas.ReferralProgramRead:
    """What a sharer earns for each friend's verified visit, and the cap per period."""
    with db.transaction() as session:
        program = referrals.set_program(
            session, principal=caller, merchant_id=merchant_id, data=data
        )
        return schemas.ReferralProgramRead.model_validate(program)


@router.get("/merchants/{merchant_id}/top-sharers")
def top_sharers(
    merchant_id: str, db: DB, caller: Caller, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[schemas.TopSharer]:
    with db.reading() as session:
        rows = referrals.top_sharers(
            session, principal=caller, merchant_id=merchant_id, limit=limit
        )
    return [schemas.TopSharer(**row) for row in rows]


@router.post("/merchants/{merchant_id}/stores/{store_id}/offpeak/proposals", status_code=201)
def propose_offpeak(
    merchant_id: str, store_id: str, data: schemas.ProposalsCreate, db: DB, caller: Caller
) -> list[schemas.ProposalRead]:
    """Windowed offers for this store's quiet hours, sized to their free capacity."""
    with db.transaction() as session:
        rows = offpeak.propose(
            session,
            principal=caller,
            merchant_id=merchant_id,
            store_id=store_id,
            below=data.below,
            amount_off=data.amount_off,
            weeks=data.weeks,
        )
        return [schemas.ProposalRead.model_validate(r) for r in rows]


@router.post(
    "/merchants/{merchant_id}/offpeak/proposals/{proposal_id}/accept", dependencies=IDEMPOTENT
)
def accept_offpeak(
    merchant_id: str, proposal_id: str, data: schemas.ProposalAccept, db: DB, caller: Caller
) -> OfferRead:
    with db.transaction() as session:
        offer = offpeak.accept(
            session,
            principal=caller,
            merchant_id=merchant_id,
            proposal_id=proposal_id,
            weeks=data.weeks,
        )
        return OfferRead.model_validate(offer)


@router.post("/offers/{offer_id}/slot-claims", status_code=201, dependencies=IDEMPOTENT)
def claim_slot(
    offer_id: str, data: schemas.SlotClaimCreate, request: Request, db: DB, caller: Caller
) -> ClaimedCode:
    """A code of an off-peak offer for one hour; each hour's codes are capped."""
    keys = Keys.from_secret(_secret(request))
    with db.transaction() as session:
        code = offpeak.claim_slot(
            session, principal=caller, offer_id=offer_id, slot_start=data.slot_start, keys=keys
        )
        offer = session.get(Offer, offer_id)
        assert offer is not None
        text = keys.code_text(code.id)
        return ClaimedCode(
            id=code.id,
            offer_id=code.offer_id,
            merchant_id=code.merchant_id,
            offer_title=offer.title,
            state=wallet_state(code, clock.now()),
            code=text,
            qr_payload=codec.qr_payload(text),
            claimed_at=code.claimed_at,
            expires_at=code.expires_at,
            redeemed_at=code.redeemed_at,
        )


@router.get("/merchants/{merchant_id}/stores/{store_id}/offpeak/effect")
def offpeak_effect(
    merchant_id: str,
    store_id: str,
    db: DB,
    caller: Caller,
    weeks: Annotated[int, Query(ge=1, le=52)] = 4,
) -> schemas.SteeringEffect:
    """Load before and after steering: visits per slot, peak overflow, off-peak utilisation."""
    with db.reading() as session:
        return schemas.SteeringEffect(
            **offpeak.effect(
                session, principal=caller, merchant_id=merchant_id, store_id=store_id, weeks=weeks
            )
        )
