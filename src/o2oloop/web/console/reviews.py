"""Reviews of the merchant's stores: ratings, each review with its one reply, and where it
sits in the public, signed review log (so the owner sees nobody can quietly remove one)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from o2oloop.reviews import log, ratings, reading, replies, schemas, views
from o2oloop.web import framework
from o2oloop.web.console import common
from o2oloop.web.forms import FormInvalid, attempt_owned, parse
from o2oloop.web.framework import CSRF, Form, MerchantPerson

router = APIRouter(include_in_schema=False, dependencies=CSRF)
SHOWN = 50


def _page(
    request: Request,
    viewer: framework.Viewer,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    config = log.log_config(request.app.state.settings)
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        rows = reading.recent_reviews(session, merchant_id=merchant.id, limit=SHOWN)
        reviews = [views.review_read(session, r) for r in rows]
        summary = ratings.ratings(session, merchant_id=merchant.id)
        flagged = {r.id: r.flags for r in rows if r.flagged}
        checkpoint = log.latest_checkpoint(session)
        stores = {s.id: s.name for s in common.stores(session, viewer)}
    return framework.render(
        request,
        "console/reviews.html",
        {
            "merchant": merchant,
            "reviews": reviews,
            "ratings": summary,
            "flagged": flagged,
            "checkpoint": checkpoint,
            "origin": config.origin,
            "vkey": config.signer.vkey,
            "stores": stores,
            "errors": errors or {},
            "values": values or {},
        },
        status=422 if errors else 200,
        timezone=merchant.timezone,
    )


@router.get("/console/reviews")
def review_list(request: Request, viewer: MerchantPerson) -> Response:
    return _page(request, viewer)


@router.post("/console/reviews/{review_id}/reply")
def reply(request: Request, viewer: MerchantPerson, review_id: str, form: Form) -> Response:
    """The one reply a review gets; a second, or an empty one, is refused beside the box."""
    db = common.db(request)
    config = log.log_config(request.app.state.settings)
    text = form.get("text", "").strip()
    try:
        data = parse(schemas.ReplyCreate, {"text": text})

        def work() -> None:
            with db.transaction() as session:
                replies.reply(
                    session,
                    principal=viewer.principal,
                    review_id=review_id,
                    data=data,
                    log_config=config,
                )

        attempt_owned(work)
    except FormInvalid as invalid:
        message = invalid.errors.get("text") or next(iter(invalid.errors.values()))
        return _page(
            request, viewer, errors={review_id: message}, values={review_id: form.get("text", "")}
        )
    return framework.redirect("/console/reviews", done="replied")
