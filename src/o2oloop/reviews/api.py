"""Routes: the public log (key, checkpoint, entries, proofs), reviews and ratings (public),
posting and editing (consumers), replies (merchants), moderation (platform)."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse

from o2oloop.errors import NotFound
from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, problems
from o2oloop.pagination import Page
from o2oloop.reviews import log, moderation, ratings, reading, replies, schemas, service, views

router = APIRouter(prefix="/v1", tags=["reviews"], responses=problems(401, 403, 404, 409, 422))

Index = Annotated[int, Query(ge=0, le=2**53)]
Size = Annotated[
    int, Query(ge=1, le=2**53, description="a tree this large (404 if the log is not yet)")
]
StoreFilter = Annotated[str | None, Query(max_length=40)]


def _log(request: Request) -> log.LogConfig:
    return log.log_config(request.app.state.settings)


def _b64(values: list[bytes]) -> list[str]:
    return [base64.b64encode(v).decode() for v in values]


@router.get("/reviews/log/key")
def log_key(request: Request) -> schemas.LogKeyRead:
    """The log's origin and the verifier key its checkpoints are signed with."""
    config = _log(request)
    return schemas.LogKeyRead(origin=config.origin, vkey=config.signer.vkey)


@router.get("/reviews/log/checkpoint", response_class=PlainTextResponse)
def latest_checkpoint(db: DB) -> PlainTextResponse:
    """The latest signed checkpoint, a C2SP signed note (text/plain)."""
    with db.reading() as session:
        row = log.latest_checkpoint(session)
        if row is None:
            raise NotFound("no checkpoint has been signed yet")
        return PlainTextResponse(row.note)


@router.get("/reviews/log/entries/{index}")
def log_entry(index: Annotated[int, Path(ge=0, le=2**53)], db: DB) -> schemas.EntryRead:
    with db.reading() as session:
        return views.entry_read(session, index)


@router.get("/reviews/log/proofs/inclusion")
def inclusion_proof(index: Index, size: Size, db: DB) -> schemas.InclusionProofRead:
    """The hashes that lead from entry `index` to the root of the tree of `size` entries."""
    with db.reading() as session:
        proof = log.inclusion_proof(session, index=index, tree_size=size)
    return schemas.InclusionProofRead(index=index, tree_size=size, proof=_b64(proof))


@router.get("/reviews/log/proofs/consistency")
def consistency_proof(first: Size, second: Size, db: DB) -> schemas.ConsistencyProofRead:
    """The hashes that show the tree of `first` entries is a prefix of that of `second`."""
    with db.reading() as session:
        proof = log.consistency_proof(session, first=first, second=second)
    return schemas.ConsistencyProofRead(first=first, second=second, proof=_b64(proof))


@router.get("/reviews/photos/{photo_id}", responses={200: {"content": {"image/jpeg": {}}}})
def review_photo(photo_id: str, db: DB) -> Response:
    with db.reading() as session:
        row = views.photo(session, photo_id)
        if row is None:
            raise NotFound("no shown photo with this id")
        return Response(row.data, media_type=row.media_type)


@router.get("/me/reviewable-visits")
def reviewable_visits(
    request: Request, db: DB, caller: Caller
) -> list[schemas.ReviewableVisitRead]:
    """The caller's verified visits that can still be reviewed."""
    with db.reading() as session:
        return reading.reviewable_visits(
            session,
            principal=caller,
            window_days=request.app.state.settings.reviews_window_days,
        )


@router.post("/reviews", status_code=201, dependencies=IDEMPOTENT)
def post_review(
    data: schemas.ReviewCreate, request: Request, db: DB, caller: Caller
) -> schemas.ReviewRead:
    """Review a verified visit of yours (once, within the window); it is logged publicly."""
    with db.transaction() as session:
        review = service.post_review(
            session,
            principal=caller,
            data=data,
            log_config=_log(request),
            window_days=request.app.state.settings.reviews_window_days,
        )
        return views.review_read(session, review)


@router.get("/reviews/{review_id}")
def get_review(review_id: str, db: DB) -> schemas.ReviewRead:
    with db.reading() as session:
        return views.review_read(session, reading.get_review(session, review_id))


@router.post("/reviews/{review_id}/versions", status_code=201, dependencies=IDEMPOTENT)
def edit_review(
    review_id: str, data: schemas.ReviewUpdate, request: Request, db: DB, caller: Caller
) -> schemas.ReviewRead:
    """A new version of your review; the previous one stays in the log."""
    with db.transaction() as session:
        review = service.edit_review(
            session, principal=caller, review_id=review_id, data=data, log_config=_log(request)
        )
        return views.review_read(session, review)


@router.post("/reviews/{review_id}/reply", status_code=201, dependencies=IDEMPOTENT)
def reply(
    review_id: str, data: schemas.ReplyCreate, request: Request, db: DB, caller: Caller
) -> schemas.ReviewRead:
    """The merchant's one reply to a review of its store."""
    with db.transaction() as session:
        replies.reply(
            session, principal=caller, review_id=review_id, data=data, log_config=_log(request)
        )
        return views.review_read(session, reading.get_review(session, review_id))


@router.post("/reviews/{review_id}/moderation", status_code=201, dependencies=IDEMPOTENT)
def hide(
    review_id: str, data: schemas.HideCreate, request: Request, db: DB, caller: Caller
) -> schemas.ReviewRead:
    """Hide a review's content or its reply (platform moderators; logged with the reason)."""
    with db.transaction() as session:
        review = moderation.hide(
            session, principal=caller, review_id=review_id, data=data, log_config=_log(request)
        )
        return views.review_read(session, review)


@router.get("/reviews")
def list_reviews(
    merchant_id: Annotated[str, Query(max_length=40)],
    db: DB,
    store_id: StoreFilter = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.ReviewRead]:
    """A merchant's reviews, public: what each says, or the moderation notice in its place."""
    with db.reading() as session:
        rows, next_cursor = reading.list_reviews(
            session, merchant_id=merchant_id, store_id=store_id, cursor=cursor, limit=limit
        )
        return Page(data=[views.review_read(session, r) for r in rows], next_cursor=next_cursor)


@router.get("/ratings")
def merchant_ratings(
    merchant_id: Annotated[str, Query(max_length=40)], db: DB, store_id: StoreFilter = None
) -> schemas.RatingsRead:
    """Ratings of a merchant or one of its stores, with and without campaign-code visits."""
    with db.reading() as session:
        return ratings.ratings(session, merchant_id=merchant_id, store_id=store_id)


@router.get("/merchants/{merchant_id}/reviews/signals")
def review_signals(
    merchant_id: str, db: DB, caller: Caller, cursor: Cursor = None, limit: Limit = 50
) -> Page[schemas.ReviewSignalRead]:
    """Reviews that raised a fraud signal (bursts from new members, one phone everywhere)."""
    with db.reading() as session:
        rows, next_cursor = ratings.flagged_reviews(
            session, principal=caller, merchant_id=merchant_id, cursor=cursor, limit=limit
        )
        return Page(
            data=[
                schemas.ReviewSignalRead(
                    review_id=r.id,
                    store_id=r.store_id,
                    rating=r.rating,
                    posted_at=r.posted_at,
                    flags=r.flags,
                )
                for r in rows
            ],
            next_cursor=next_cursor,
        )
