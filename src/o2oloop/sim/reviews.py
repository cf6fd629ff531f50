"""Reviews in the demo city: consumers review a share of their verified visits, with ratings
drawn around each merchant's true quality; merchants reply to some; one review that gave
away a phone number is hidden by moderation; the log is checkpointed, so `o2oloop reviews
verify` has a real log to check.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from sqlalchemy.orm import Session

from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.config import Settings
from o2oloop.errors import ProblemError
from o2oloop.reviews import log, moderation, replies, service
from o2oloop.reviews.schemas import HideCreate, ReplyCreate, ReviewCreate
from o2oloop.sim.world import CityRun, Visit

SHARE = 0.06  # of visits reviewed
REPLY_SHARE = 0.3
MODERATOR = Principal(key_id="demo", role=Role.PLATFORM_ADMIN)
WORDS = {
    1: "Disappointing, would not come back.",
    2: "Below what the photos promised.",
    3: "Fine, nothing special.",
    4: "Good value, friendly staff.",
    5: "Excellent, we will be back soon!",
}


class CityReviews:
    """The reviews part's own state over one run."""

    def __init__(self, run: CityRun) -> None:
        self.run = run
        self.rng: np.random.Generator = run.rng("reviews")
        self.quality = {m.id: float(self.rng.uniform(2.8, 4.8)) for m in run.merchants}
        self.posted: list[str] = []
        self.leaky: str | None = None

    @cached_property
    def log_config(self) -> log.LogConfig:
        return log.log_config(Settings(secret_key=self.run.secret_key))

    def rating(self, merchant_id: str) -> int:
        return int(np.clip(round(self.rng.normal(self.quality[merchant_id], 0.9)), 1, 5))


def _state(run: CityRun) -> CityReviews:
    state = run.parts.get("reviews")
    if state is None:
        state = run.parts["reviews"] = CityReviews(run)
    return state


def after_visit(session: Session, run: CityRun, visit: Visit) -> None:
    """Some consumers review the visit on their way out; the merchant may answer."""
    state = _state(run)
    if visit.visit_id is None or state.rng.random() >= SHARE:
        return
    rating = state.rating(visit.merchant.id)
    text = WORDS[rating]
    if state.leaky is None and rating <= 2:
        text += f" Call me on {run.phone_of(visit.consumer)} to explain."
    consumer = Principal(
        key_id="demo", role=Role.CONSUMER, consumer_id=run.consumer_id(session, visit.consumer)
    )
    try:
        review = service.post_review(
            session,
            principal=consumer,
            data=ReviewCreate(visit_id=visit.visit_id, rating=rating, text=text),
            log_config=state.log_config,
        )
    except ProblemError:
        return  # e.g. a visit not linked to this consumer: nothing was written
    state.posted.append(review.id)
    if "Call me" in text:
        state.leaky = review.id
    run.report.reviews += 1
    if state.rng.random() < REPLY_SHARE:
        merchant = Principal(
            key_id="demo", role=Role.MERCHANT_ADMIN, merchant_id=review.merchant_id
        )
        answer = "Thank you for coming!" if rating >= 4 else "Sorry, we will do better."
        replies.reply(
            session,
            principal=merchant,
            review_id=review.id,
            data=ReplyCreate(text=answer),
            log_config=state.log_config,
        )
        run.report.review_replies += 1


def finish(session: Session, run: CityRun) -> None:
    """Moderation hides the review that published a phone number; a last checkpoint."""
    state = _state(run)
    if state.leaky is not None:
        moderation.hide(
            session,
            principal=MODERATOR,
            review_id=state.leaky,
            data=HideCreate(reason="personal_data"),
            log_config=state.log_config,
        )
        run.report.reviews_hidden += 1
    log.checkpoint(session, log=state.log_config, force=True)
