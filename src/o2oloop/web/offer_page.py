"""The consumer's landing page of an offer, where tracking links and shares lead.

Public and server-rendered: the offer, its merchant and stores (nearest first when the link
carries the visitor's position, with today's hours and whether each is open now), a QR of
the claim link for a phone, and a share button. The claim itself is the API's
(`POST /v1/offers/{id}/claim?via=…`): the page's script sends it with the consumer's key
from the app, carrying the link's token, so the claim is attributed to the channel or the
friend that brought it. A page of an ended offer says so, with 410.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from o2oloop import clock
from o2oloop.channels import landing
from o2oloop.codes import qr
from o2oloop.db import Database
from o2oloop.web import framework
from o2oloop.web.framework import Reader

router = APIRouter(include_in_schema=False)


def claim_link(request: Request, offer_id: str, via: str | None) -> str:
    """The page's own address with only the token: what the QR gives a phone."""
    base = str(request.base_url).rstrip("/")
    return f"{base}/offers/{offer_id}" + (f"?{urlencode({'via': via})}" if via else "")


@router.get("/offers/{offer_id}")
def offer_page(
    offer_id: str,
    request: Request,
    viewer: Reader,
    via: Annotated[str | None, Query(max_length=80)] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lng: Annotated[float | None, Query(ge=-180, le=180)] = None,
) -> Response:
    db: Database = request.app.state.db
    at = (lat, lng) if lat is not None and lng is not None else None
    with db.reading() as session:
        page = landing.landing(
            session,
            offer_id=offer_id,
            secret=request.app.state.settings.secret_key,
            via=via,
            at=at,
            now=clock.now(),
        )
        session.expunge_all()
    link = claim_link(request, offer_id, page.via)
    svg = qr.qr_svg(link, scale=5, border=2).decode()
    return framework.render(
        request,
        "offer/offer.html",
        {"page": page, "offer": page.offer, "claim_link": link, "qr_svg": Markup(svg)},
        status=410 if page.ended else 200,
        viewer=viewer,
    )
